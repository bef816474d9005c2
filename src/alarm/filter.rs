//! Which alarms a list shows: one filter for the engine's open alarms
//! (matched here, in memory) and the store's closed ones (the same fields
//! rendered as SQL by `store::read::alarms`), so the API's and the
//! console's lists mean one thing whichever side an alarm comes from. The
//! store's tests check both renderings let the same alarms through.

use super::model::{Alarm, AlarmKind, AlarmState, Severity};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Every field left empty or `None` lets all through; the fields that are
/// set must all hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmFilter {
    /// Any of these states (empty: any state).
    pub states: BTreeSet<AlarmState>,
    pub kind: Option<AlarmKind>,
    pub severity: Option<Severity>,
    pub district: Option<String>,
    /// The districts the caller may see (`auth::Principal`'s scope); `None`
    /// for a city-wide caller. An empty list sees nothing.
    pub visible: Option<Vec<String>>,
    pub cabinet: Option<String>,
    pub device_id: Option<String>,
    /// Standing and past the deadline as of `now` (`Alarm::overdue_at`), or
    /// (with `false`) not.
    pub overdue: Option<bool>,
    /// Raised at or after this.
    pub raised_from: Option<DateTime<Utc>>,
    /// Raised before this.
    pub raised_to: Option<DateTime<Utc>>,
}

impl AlarmFilter {
    /// Whether `a` passes, with `overdue` judged as of `now`.
    pub fn matches(&self, a: &Alarm, now: DateTime<Utc>) -> bool {
        (self.states.is_empty() || self.states.contains(&a.state))
            && self.kind.is_none_or(|k| k == a.kind)
            && self.severity.is_none_or(|s| s == a.severity)
            && self.district.as_ref().is_none_or(|d| *d == a.district)
            && self
                .visible
                .as_ref()
                .is_none_or(|v| v.contains(&a.district))
            && self
                .cabinet
                .as_ref()
                .is_none_or(|c| a.cabinet.as_ref() == Some(c))
            && self.device_id.as_ref().is_none_or(|d| *d == a.device_id)
            && self.overdue.is_none_or(|o| o == a.overdue_at(now))
            && self.raised_from.is_none_or(|t| a.raised_at >= t)
            && self.raised_to.is_none_or(|t| a.raised_at < t)
    }
}
