//! The `[poll]` settings, and what one endpoint's poller takes of them.

use crate::control::ControlSettings;
use crate::dialin::Registry;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollSettings {
    /// How often every single-lamp controller is read.
    #[serde(with = "humantime_serde")]
    pub slc_interval: Duration,
    /// How often every cabinet RTU is read.
    #[serde(with = "humantime_serde")]
    pub rtu_interval: Duration,
    /// Limit on one Modbus request; tokio-modbus has none of its own.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Consecutive failed polls after which a device counts as offline.
    pub offline_after: u32,
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Longest wait between probes of a unit that keeps timing out while its
    /// neighbours answer (its own backoff, from one interval doubling).
    #[serde(with = "humantime_serde")]
    pub unit_backoff_max: Duration,
    /// Unmapped registers a read may span to join two fields into one request.
    pub max_gap: u16,
    /// Capacity of the channel from the pollers to the live state.
    pub outcome_channel: usize,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            slc_interval: Duration::from_secs(10),
            rtu_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            offline_after: 3,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            unit_backoff_max: Duration::from_secs(60),
            max_gap: 0,
            outcome_channel: 4096,
        }
    }
}

impl PollSettings {
    /// Values that parse but make no sense, by key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut need = |ok: bool, key: &str, msg: &str| {
            if !ok {
                out.push((format!("poll.{key}"), msg.to_string()));
            }
        };
        need(
            self.offline_after >= 1,
            "offline_after",
            "must be at least 1",
        );
        need(
            !self.request_timeout.is_zero(),
            "request_timeout",
            "must be above zero",
        );
        need(
            !self.connect_timeout.is_zero(),
            "connect_timeout",
            "must be above zero",
        );
        need(
            self.reconnect_min <= self.reconnect_max,
            "reconnect_min",
            "must not exceed reconnect_max",
        );
        need(
            self.outcome_channel >= 1,
            "outcome_channel",
            "must be at least 1",
        );
        out
    }
}

/// What one endpoint's poller needs: its cadence and timeouts, how often a
/// command write is tried, and where dial-in DTUs are found.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub slc_interval: Duration,
    pub rtu_interval: Duration,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub unit_backoff_max: Duration,
    /// Tries per command target on transport failures.
    pub max_attempts: u32,
    /// The DTUs that dialled in (`dtu:` endpoints); none without `[dialin]`.
    pub dialin: Option<Arc<Registry>>,
}

impl PollerConfig {
    pub fn new(s: &PollSettings, control: &ControlSettings) -> Self {
        Self {
            max_attempts: control.max_attempts.max(1),
            slc_interval: s.slc_interval,
            rtu_interval: s.rtu_interval,
            request_timeout: s.request_timeout,
            connect_timeout: s.connect_timeout,
            reconnect_min: s.reconnect_min,
            reconnect_max: s.reconnect_max,
            unit_backoff_max: s.unit_backoff_max,
            dialin: None,
        }
    }
}
