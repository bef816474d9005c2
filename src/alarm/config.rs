//! `[alarms]` settings: per kind a debounce, a severity and a tolerance,
//! optionally per district; repair deadlines per severity; the reopen
//! hysteresis and auto-close; webhooks.

use super::model::{AlarmKind, Severity};
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmSettings {
    /// Evaluate alarms. Off: no alarm is raised (the MQTT state still
    /// carries the flags).
    pub enabled: bool,
    /// The open alarms as of their last change, relative to `paths.data`:
    /// what a restart takes back when the store cannot answer at start.
    pub file: PathBuf,
    /// Each webhook's queue is a folder in here, relative to `paths.data`.
    pub webhook_dir: PathBuf,
    /// A condition that returns within this long after it cleared reopens
    /// the same alarm (its `occurrences` grows) instead of raising a new one.
    #[serde(with = "humantime_serde")]
    pub hysteresis: Duration,
    /// A cleared alarm nobody acknowledged is closed this long after it
    /// cleared.
    #[serde(with = "humantime_serde")]
    pub auto_close_after: Duration,
    /// How often the engine closes what is due and re-publishes the active
    /// sets (conditions are evaluated at every poll).
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// At most this many alarms in a district's retained active set on MQTT;
    /// past it the message carries counts only.
    pub mqtt_active_limit: usize,
    pub deadlines: Deadlines,
    /// Per kind; a kind not named keeps its defaults.
    pub kinds: BTreeMap<AlarmKind, KindSettings>,
    /// Per district, per kind: what differs from `kinds` there.
    pub districts: BTreeMap<String, BTreeMap<AlarmKind, KindSettings>>,
    pub webhooks: Vec<WebhookSettings>,
}

impl Default for AlarmSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            file: PathBuf::from("alarms.open.json"),
            webhook_dir: PathBuf::from("webhooks"),
            hysteresis: Duration::from_secs(600),
            auto_close_after: Duration::from_secs(24 * 3600),
            tick: Duration::from_secs(5),
            mqtt_active_limit: 500,
            deadlines: Deadlines::default(),
            kinds: BTreeMap::new(),
            districts: BTreeMap::new(),
            webhooks: Vec::new(),
        }
    }
}

/// Repair time allowed per severity (defaults after common city rules).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deadlines {
    #[serde(with = "humantime_serde")]
    pub emergency: Duration,
    #[serde(with = "humantime_serde")]
    pub serious: Duration,
    #[serde(with = "humantime_serde")]
    pub ordinary: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self {
            emergency: Duration::from_secs(3600),
            serious: Duration::from_secs(3 * 24 * 3600),
            ordinary: Duration::from_secs(24 * 3600),
        }
    }
}

impl Deadlines {
    pub fn of(&self, severity: Severity) -> Duration {
        match severity {
            Severity::Emergency => self.emergency,
            Severity::Serious => self.serious,
            Severity::Ordinary => self.ordinary,
        }
    }
}

/// One kind's settings; every field optional, so a district names only what
/// differs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindSettings {
    /// Off: this kind is never raised (there).
    pub enabled: Option<bool>,
    /// The condition must hold this long before the alarm is raised.
    #[serde(default, rename = "for", with = "humantime_serde")]
    pub debounce: Option<Duration>,
    pub severity: Option<Severity>,
    /// For `dimming_failure` and `power_abnormal`: how far power may be off
    /// what the level asks, as a fraction of rated power.
    pub tolerance: Option<f64>,
}

/// A kind's settings with every default filled in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KindRule {
    pub enabled: bool,
    pub debounce: Duration,
    pub severity: Severity,
    pub tolerance: f64,
}

impl AlarmKind {
    /// The debounce and tolerance a kind has unless the settings say otherwise.
    fn default_rule(self) -> KindRule {
        let debounce = Duration::from_secs(match self {
            // A lamp switched on takes a poll or two to show its power.
            AlarmKind::LampOutAtNight => 120,
            AlarmKind::DayBurner | AlarmKind::DimmingFailure | AlarmKind::PowerAbnormal => 300,
            AlarmKind::SupplyLoss | AlarmKind::ContactorFailure => 60,
            // Flags are the device's own verdict; comms loss has the online
            // rule's own debounce (`poll.offline_after`).
            _ => 0,
        });
        let tolerance = match self {
            AlarmKind::DimmingFailure => 0.15,
            _ => 0.25,
        };
        KindRule {
            enabled: true,
            debounce,
            severity: self.default_severity(),
            tolerance,
        }
    }
}

impl KindSettings {
    fn over(&self, mut rule: KindRule) -> KindRule {
        if let Some(v) = self.enabled {
            rule.enabled = v;
        }
        if let Some(v) = self.debounce {
            rule.debounce = v;
        }
        if let Some(v) = self.severity {
            rule.severity = v;
        }
        if let Some(v) = self.tolerance {
            rule.tolerance = v;
        }
        rule
    }
}

impl AlarmSettings {
    /// The rule for `kind` in `district`: the district's settings over the
    /// kind's, over the defaults.
    pub fn rule(&self, kind: AlarmKind, district: &str) -> KindRule {
        let mut rule = kind.default_rule();
        if let Some(k) = self.kinds.get(&kind) {
            rule = k.over(rule);
        }
        if let Some(k) = self.districts.get(district).and_then(|d| d.get(&kind)) {
            rule = k.over(rule);
        }
        rule
    }

    /// Values that parse but make no sense, as (key, problem).
    pub fn problems(&self, districts: &[&str]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.tick.is_zero() {
            out.push(("alarms.tick".into(), "must be above zero".into()));
        }
        if self.auto_close_after < self.hysteresis {
            out.push((
                "alarms.auto_close_after".into(),
                "must be at least alarms.hysteresis (a cleared alarm can reopen until then)".into(),
            ));
        }
        for s in Severity::ALL {
            if self.deadlines.of(s).is_zero() {
                out.push((
                    format!("alarms.deadlines.{}", s.as_str()),
                    "must be above zero".into(),
                ));
            }
        }
        let mut tolerance = |key: String, k: &KindSettings| {
            if let Some(t) = k.tolerance {
                if !(0.0..=10.0).contains(&t) || t.is_nan() {
                    out.push((
                        key,
                        format!("tolerance {t} must be a fraction of rated power in 0..=10"),
                    ));
                }
            }
        };
        for (kind, k) in &self.kinds {
            tolerance(format!("alarms.kinds.{kind}.tolerance"), k);
        }
        for (d, kinds) in &self.districts {
            for (kind, k) in kinds {
                tolerance(format!("alarms.districts.{d}.{kind}.tolerance"), k);
            }
        }
        for d in self.districts.keys() {
            if !districts.contains(&d.as_str()) {
                out.push((
                    format!("alarms.districts.{d}"),
                    "names a district the inventory does not have".into(),
                ));
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            // The URL, the name and the backoff: `webhook::problems`.
            for d in &w.districts {
                if !districts.contains(&d.as_str()) {
                    out.push((
                        format!("alarms.webhooks[{i}].districts"),
                        format!("`{d}` is not a district of the inventory"),
                    ));
                }
            }
            if w.timeout.is_zero() {
                out.push((
                    format!("alarms.webhooks[{i}].timeout"),
                    "must be above zero".into(),
                ));
            }
        }
        out
    }
}

/// Where alarm changes are posted (SMS gateways, WeChat Work, a work-order
/// system): every change that passes the filters, in order, through a
/// durable queue of its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// A name for logs, metrics and the queue's folder; default `webhook-N`.
    #[serde(default)]
    pub name: Option<String>,
    pub url: String,
    /// Only these kinds (empty: all).
    #[serde(default)]
    pub kinds: Vec<AlarmKind>,
    #[serde(default)]
    pub severities: Vec<Severity>,
    #[serde(default)]
    pub districts: Vec<String>,
    /// Signs each body: `X-Lampgw-Signature: sha256=<hex HMAC-SHA256>`.
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde(default = "webhook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries back off from 1 s doubling up to this.
    #[serde(default = "webhook_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
}

fn webhook_timeout() -> Duration {
    Duration::from_secs(10)
}

fn webhook_max_backoff() -> Duration {
    Duration::from_secs(300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_district_overrides_the_kind_which_overrides_the_default() {
        let s: AlarmSettings = toml_like(
            r#"{"kinds": {"lamp_out_at_night": {"for": "5m", "severity": "serious"}},
                "districts": {"D03": {"lamp_out_at_night": {"for": "10m"}}}}"#,
        );
        let city = s.rule(AlarmKind::LampOutAtNight, "D01");
        assert_eq!(city.debounce, Duration::from_secs(300));
        assert_eq!(city.severity, Severity::Serious);
        let d03 = s.rule(AlarmKind::LampOutAtNight, "D03");
        assert_eq!(d03.debounce, Duration::from_secs(600));
        assert_eq!(d03.severity, Severity::Serious);
        assert_eq!(
            s.rule(AlarmKind::Leakage, "D03").severity,
            Severity::Emergency
        );
        assert!(s
            .problems(&["D01"])
            .iter()
            .any(|(k, _)| k == "alarms.districts.D03"));
        assert!(s.problems(&["D01", "D03"]).is_empty());
    }

    fn toml_like(json: &str) -> AlarmSettings {
        serde_json::from_str(json).unwrap()
    }
}
