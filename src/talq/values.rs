//! The shapes of TALQ values the devices and the overrides both write:
//! times, levels, commands.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// RFC 3339 with milliseconds and `Z`.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A percentage as TALQ's whole `DimLevel`.
pub(super) fn whole(level: f64) -> u8 {
    level.round().clamp(0.0, 100.0) as u8
}

/// A `LevelState`.
pub(super) fn level_state(level: u8) -> Value {
    json!({"name": "LevelState", "value": level})
}

/// A `Command` of a level, for a reason (`override`, `program`, `default`).
pub(super) fn command(level: u8, reason: &str) -> Value {
    json!({"state": level_state(level), "reason": reason})
}
