//! The `[dialin]` settings: where cellular DTUs dial in, how long one may take
//! to register, the heartbeat they send when idle.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialInSettings {
    /// `ip:port` the DTUs connect to, e.g. `0.0.0.0:9502`; unset, no listener.
    pub listen: Option<String>,
    /// Longest a new connection may take to send its registration id.
    #[serde(with = "humantime_serde")]
    pub registration_timeout: Duration,
    /// The DTUs' idle heartbeat: `hb` (literal ASCII) or `hex:FE01…`; unset,
    /// none.
    pub heartbeat: Heartbeat,
    /// Unregistered connections from one IP address at a time; a further one
    /// is closed at once.
    pub max_pending_per_peer: u32,
}

impl Default for DialInSettings {
    fn default() -> Self {
        Self {
            listen: None,
            registration_timeout: Duration::from_secs(10),
            heartbeat: Heartbeat::default(),
            max_pending_per_peer: 1,
        }
    }
}

impl DialInSettings {
    /// `listen` as an address, if it is set and parses.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }

    /// Values that parse but make no sense, by key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut need = |ok: bool, key: &str, msg: String| {
            if !ok {
                out.push((format!("dialin.{key}"), msg));
            }
        };
        if let Some(l) = &self.listen {
            need(
                l.parse::<SocketAddr>().is_ok(),
                "listen",
                format!("`{l}` is not an `ip:port` address (e.g. `0.0.0.0:9502`)"),
            );
        }
        need(
            !self.registration_timeout.is_zero(),
            "registration_timeout",
            "must be above zero".into(),
        );
        need(
            self.max_pending_per_peer >= 1,
            "max_pending_per_peer",
            "must be at least 1".into(),
        );
        out
    }
}

/// The bytes a DTU sends when idle (USR DTUs: `www.usr.cn` by default), which
/// the Modbus framing over a dial-in connection drops. Written `hb` (the
/// literal ASCII bytes) or `hex:FE01…` (any bytes); at most
/// [`Heartbeat::MAX_LEN`] bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Heartbeat(Option<Arc<[u8]>>);

impl Heartbeat {
    pub const MAX_LEN: usize = 64;

    /// `None` when the DTUs send no heartbeat.
    pub fn bytes(&self) -> Option<Arc<[u8]>> {
        self.0.clone()
    }
}

impl std::str::FromStr for Heartbeat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = match s.strip_prefix("hex:") {
            Some(h) => {
                let digits: String = h.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                hex::decode(&digits)
                    .map_err(|e| format!("heartbeat `{s}`: not hex after `hex:` ({e})"))?
            }
            None => s.as_bytes().to_vec(),
        };
        if bytes.is_empty() {
            return Err("heartbeat is empty: leave the key out for none".into());
        }
        if bytes.len() > Self::MAX_LEN {
            return Err(format!(
                "heartbeat is {} bytes; at most {} are allowed",
                bytes.len(),
                Self::MAX_LEN
            ));
        }
        Ok(Heartbeat(Some(bytes.into())))
    }
}

impl<'de> Deserialize<'de> for Heartbeat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Heartbeat(none)"),
            Some(b) => write!(f, "Heartbeat(\"{}\")", super::printable(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::load;

    #[test]
    fn dialin_section_parses() {
        let s = load(
            "[dialin]\nlisten = \"0.0.0.0:9502\"\nregistration_timeout = \"5s\"\n\
             heartbeat = \"www.usr.cn\"\nmax_pending_per_peer = 4\n",
        )
        .unwrap();
        let d = &s.dialin;
        assert_eq!(d.listen.as_deref(), Some("0.0.0.0:9502"));
        assert_eq!(d.listen_addr(), Some("0.0.0.0:9502".parse().unwrap()));
        assert_eq!(d.registration_timeout, std::time::Duration::from_secs(5));
        assert_eq!(d.heartbeat.bytes().as_deref(), Some(&b"www.usr.cn"[..]));
        assert_eq!(d.max_pending_per_peer, 4);
        assert!(s.problems().is_empty(), "{:?}", s.problems());

        let hex = load("[dialin]\nheartbeat = \"hex:FE01 0a\"\n").unwrap();
        assert_eq!(
            hex.dialin.heartbeat.bytes().as_deref(),
            Some(&[0xFE, 0x01, 0x0A][..])
        );
    }

    #[test]
    fn defaults_mean_no_listener() {
        let s = load("").unwrap();
        assert_eq!(s.dialin.listen, None);
        assert_eq!(
            s.dialin.registration_timeout,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(s.dialin.heartbeat.bytes(), None);
        assert_eq!(s.dialin.max_pending_per_peer, 1);
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = load("[dialin]\nlisten = \"0.0.0.0:9502\"\nheart_beat = \"hb\"\n").unwrap_err();
        assert!(err.contains("heart_beat"), "{err}");
    }

    #[test]
    fn bad_heartbeat_hex_is_a_clear_error() {
        let err = load("[dialin]\nheartbeat = \"hex:FE0\"\n").unwrap_err();
        assert!(err.contains("dialin.heartbeat"), "{err}");
        assert!(err.contains("not hex after `hex:`"), "{err}");
        let err = load("[dialin]\nheartbeat = \"hex:zz\"\n").unwrap_err();
        assert!(err.contains("not hex after `hex:`"), "{err}");
        let err = load("[dialin]\nheartbeat = \"\"\n").unwrap_err();
        assert!(err.contains("heartbeat is empty"), "{err}");
    }

    #[test]
    fn nonsense_values_are_problems() {
        let s = load(
            "[dialin]\nlisten = \"dtu.city\"\nregistration_timeout = \"0s\"\n\
             max_pending_per_peer = 0\n",
        )
        .unwrap();
        let keys: Vec<String> = s.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "dialin.listen",
                "dialin.registration_timeout",
                "dialin.max_pending_per_peer"
            ]
        );
    }
}
