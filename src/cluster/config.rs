//! The `[cluster]` settings: whether this gateway is one instance of several
//! sharing one PostgreSQL, its name among them, and how long a lease on an
//! endpoint lasts without renewal.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// Off: one gateway polls every endpoint of the inventory (SQLite
    /// allowed). On: the endpoints are shared out among the instances by
    /// leases in the store's PostgreSQL (`store.url` must be `postgres://`).
    pub enabled: bool,
    /// This instance's name among the others: unique per running process.
    /// Unset: the host name.
    pub instance_id: Option<String>,
    /// How long a lease lasts unless its holder renews it (every third of
    /// it); an instance that dies is replaced within about this long.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            instance_id: None,
            lease_ttl: Duration::from_secs(15),
        }
    }
}

/// Longest an instance id may be: it goes into MQTT topics and labels.
const MAX_ID: usize = 128;
/// Shorter leases leave the renewal (a third of it) too little time for a
/// database round trip on a busy server.
const MIN_TTL: Duration = Duration::from_secs(1);

impl ClusterSettings {
    /// `instance_id`, or the host name when it is unset (`lamp-gateway` if
    /// the system gives none).
    pub fn instance_id(&self) -> String {
        match &self.instance_id {
            Some(id) => id.clone(),
            None => host_name(),
        }
    }

    /// Values that parse but make no sense, by key. (That cluster mode needs
    /// PostgreSQL is checked with the store's settings, in `validate`.)
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.lease_ttl < MIN_TTL {
            out.push((
                "cluster.lease_ttl".into(),
                format!("must be at least {}", humantime::format_duration(MIN_TTL)),
            ));
        }
        if let Some(id) = &self.instance_id {
            if let Err(e) = check_id(id) {
                out.push(("cluster.instance_id".into(), e));
            }
        }
        out
    }
}

/// An instance id is a topic level and a label value: 1–128 printable ASCII
/// bytes without `/`, `+`, `#` or spaces.
pub(super) fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > MAX_ID {
        return Err(format!("must be 1 to {MAX_ID} characters"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !c.is_ascii_graphic() || matches!(c, '/' | '+' | '#'))
    {
        return Err(format!(
            "`{}` may not be in an instance id (printable ASCII without `/`, `+`, `#`)",
            c.escape_default()
        ));
    }
    Ok(())
}

/// The node name `uname` gives; what an operator sees in `hostname`.
fn host_name() -> String {
    let uname = rustix::system::uname();
    let name = uname.nodename().to_string_lossy();
    if check_id(&name).is_ok() {
        name.into_owned()
    } else {
        "lamp-gateway".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_a_single_gateway_with_fifteen_second_leases() {
        let s: ClusterSettings = serde_json::from_str("{}").unwrap();
        assert!(!s.enabled);
        assert_eq!(s.lease_ttl, Duration::from_secs(15));
        assert!(!s.instance_id().is_empty());
        assert!(s.problems().is_empty());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(serde_json::from_str::<ClusterSettings>(r#"{"lease": "1s"}"#).is_err());
        let s: ClusterSettings =
            serde_json::from_str(r#"{"lease_ttl": "200ms", "instance_id": "a/b"}"#).unwrap();
        let keys: Vec<String> = s.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["cluster.lease_ttl", "cluster.instance_id"]);
    }
}
