//! `[schedule]` settings.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleSettings {
    /// Run the night plan. Off: lamps switch only on commands.
    pub enabled: bool,
    /// The book (programs, calendars, assignments, emergency shifts) as
    /// JSON; the API's edits are written back to it. Relative to
    /// `paths.data`. Absent: an empty book.
    pub file: PathBuf,
    /// How often the engine compares what should be with what was
    /// commanded (it also wakes at once when the book changes).
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// A target whose command failed (offline, no read-back) is tried again
    /// after this long.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// The city centre, for the sun at cabinets without coordinates.
    pub centre_lat: f64,
    pub centre_lon: f64,
}

impl Default for ScheduleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            file: PathBuf::from("schedule.json"),
            tick: Duration::from_secs(5),
            retry_after: Duration::from_secs(60),
            // Jinan.
            centre_lat: 36.65,
            centre_lon: 117.12,
        }
    }
}

impl ScheduleSettings {
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.tick.is_zero() {
            out.push(("schedule.tick".into(), "must be above zero".into()));
        }
        if !(-90.0..=90.0).contains(&self.centre_lat) {
            out.push(("schedule.centre_lat".into(), "must be within ±90".into()));
        }
        if !(-180.0..=180.0).contains(&self.centre_lon) {
            out.push(("schedule.centre_lon".into(), "must be within ±180".into()));
        }
        out
    }
}
