//! A district's night plan at a glance, as each tick of the engine leaves
//! it: targets counted by scheduled and effective level, held, set by a
//! shift, agreeing with their device, by program. The engine offers the
//! summaries that changed to its sinks (MQTT retains them at
//! `{root}/{district}/schedule/state`); `/schedules/state` and the summary
//! judge agreement by the one [`device_level`].

use super::plan::{Event, Source, Target};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many targets stand at one level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LevelCount {
    /// Percent, 0 to 100; `null` for targets no program sets today.
    pub level: Option<f64>,
    pub targets: usize,
}

/// One district's night plan as of a tick: what MQTT retains at
/// `{root}/{district}/schedule/state`. The engine offers it to its sinks
/// when it differs from the one it offered last (and every district at the
/// first tick after a sink is added), not every tick.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DistrictSummary {
    pub district: String,
    /// Governed targets: lamps (their SLCs) and circuits (their contactors).
    pub targets: usize,
    pub lamps: usize,
    pub circuits: usize,
    /// By the level the calendar (with emergency shifts) says now, lowest
    /// first.
    pub scheduled: Vec<LevelCount>,
    /// By the level after manual holds, lowest first.
    pub effective: Vec<LevelCount>,
    /// Held by a manual command.
    pub overridden: usize,
    /// Set by an emergency shift (and not held).
    pub emergency: usize,
    /// Whether the device is on where the effective level is on and off
    /// where it is off (a lamp's SLC as last read, a circuit's contactor as
    /// its RTU last reported); `unknown`: not read yet, or no level today.
    pub agree: usize,
    pub disagree: usize,
    pub unknown: usize,
    /// The programs in force now, with how many targets follow each.
    pub programs: BTreeMap<String, usize>,
}

/// A district's summary and the schedule clock's time of the tick that
/// made it (RFC 3339, the city's offset).
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleState<'a> {
    pub at: String,
    #[serde(flatten)]
    pub summary: &'a DistrictSummary,
}

/// Where the engine offers districts' summaries (MQTT's retained
/// `{root}/{district}/schedule/state`). Called from the tick: it must not
/// wait.
pub trait ScheduleSink: Send + Sync + std::fmt::Debug {
    fn offer_state(&self, state: &ScheduleState<'_>);
}

/// Counting one tick's targets into districts' summaries.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) lamps: usize,
    pub(super) circuits: usize,
    /// The tick's events (shared per signature, so a district has a few)
    /// and how many targets not held follow each: counted by pointer in
    /// the loop over every target, resolved to levels and programs once.
    pub(super) events: Vec<(Arc<Event>, usize)>,
    /// Held targets: what the schedule says, and the hold's level.
    pub(super) held: Vec<(Arc<Event>, f64)>,
    /// Targets no program sets today.
    pub(super) none: usize,
    pub(super) agree: usize,
    pub(super) disagree: usize,
    pub(super) unknown: usize,
}

fn bump(v: &mut Vec<(Option<u64>, usize)>, level: Option<f64>, n: usize) {
    let bits = level.map(f64::to_bits);
    match v.iter_mut().find(|(b, _)| *b == bits) {
        Some(x) => x.1 += n,
        None => v.push((bits, n)),
    }
}

fn levels(v: Vec<(Option<u64>, usize)>) -> Vec<LevelCount> {
    let mut out: Vec<LevelCount> = v
        .into_iter()
        .map(|(b, n)| LevelCount {
            level: b.map(f64::from_bits),
            targets: n,
        })
        .collect();
    out.sort_by(|a, b| {
        a.level
            .unwrap_or(-1.0)
            .partial_cmp(&b.level.unwrap_or(-1.0))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

impl Tally {
    pub(super) fn target(&mut self, t: Target) {
        match t {
            Target::Lamp(_) => self.lamps += 1,
            Target::Circuit(..) => self.circuits += 1,
        }
    }

    pub(super) fn follows(&mut self, event: &Arc<Event>) {
        match self.events.iter_mut().find(|(e, _)| Arc::ptr_eq(e, event)) {
            Some(x) => x.1 += 1,
            None => self.events.push((event.clone(), 1)),
        }
    }

    pub(super) fn summary(self, district: &str) -> DistrictSummary {
        let (mut scheduled, mut effective) = (Vec::new(), Vec::new());
        let mut programs: BTreeMap<String, usize> = BTreeMap::new();
        let mut emergency = 0;
        for (e, n) in &self.events {
            bump(&mut scheduled, Some(e.level), *n);
            bump(&mut effective, Some(e.level), *n);
            *programs.entry(e.program.clone()).or_default() += n;
            if e.source == Source::Emergency {
                emergency += n;
            }
        }
        for (e, level) in &self.held {
            bump(&mut scheduled, Some(e.level), 1);
            bump(&mut effective, Some(*level), 1);
            *programs.entry(e.program.clone()).or_default() += 1;
        }
        if self.none > 0 {
            bump(&mut scheduled, None, self.none);
            bump(&mut effective, None, self.none);
        }
        DistrictSummary {
            district: district.to_string(),
            targets: self.lamps + self.circuits,
            lamps: self.lamps,
            circuits: self.circuits,
            scheduled: levels(scheduled),
            effective: levels(effective),
            overridden: self.held.len(),
            emergency,
            agree: self.agree,
            disagree: self.disagree,
            unknown: self.unknown,
            programs,
        }
    }

    pub(super) fn agreement(&mut self, want: Option<f64>, device: Option<f64>) {
        match (want, device) {
            (Some(w), Some(d)) if (w > 0.0) == (d > 0.0) => self.agree += 1,
            (Some(_), Some(_)) => self.disagree += 1,
            _ => self.unknown += 1,
        }
    }
}

/// What a target's device last reported, percent (0 when off): a lamp's
/// SLC (its dim level, at least 1 when on), a circuit's contactor (100
/// closed); `None` before the first reading. One rule for
/// `/schedules/state` and the MQTT summary.
pub fn device_level(inner: &crate::state::Inner, t: Target) -> Option<f64> {
    match t {
        Target::Lamp(l) => {
            inner.lamps.get(l)?.reading.as_ref().map(
                |r| {
                    if r.on {
                        r.dim_level.max(1.0)
                    } else {
                        0.0
                    }
                },
            )
        }
        Target::Circuit(c, n) => {
            let r = inner.rtus.get(c)?.reading.as_ref()?;
            let closed = *r.contactors.get(usize::from(n).checked_sub(1)?)?;
            Some(if closed { 100.0 } else { 0.0 })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn event(level: f64, source: Source, program: &str) -> Arc<Event> {
        Arc::new(Event {
            at: Utc::now(),
            level,
            source,
            program: program.into(),
            rule: "default".into(),
            point: "sunset".into(),
        })
    }

    #[test]
    fn a_district_summary_counts_levels_holds_shifts_and_programs() {
        let night = event(100.0, Source::Calendar, "night");
        // Equal events of two signatures count together.
        let night_too = event(100.0, Source::Calendar, "night");
        let fog = event(100.0, Source::Emergency, "night");
        let dim = event(50.0, Source::Calendar, "late");
        let mut t = Tally::default();
        for (e, n) in [(&night, 3), (&night_too, 2), (&fog, 1), (&dim, 4)] {
            for _ in 0..n {
                t.target(Target::Lamp(0));
                t.follows(e);
            }
        }
        t.target(Target::Circuit(0, 1));
        t.held.push((night.clone(), 0.0));
        t.target(Target::Circuit(0, 2));
        t.none += 1;
        let s = t.summary("D01");
        assert_eq!((s.targets, s.lamps, s.circuits), (12, 10, 2));
        let pairs = |v: &[LevelCount]| v.iter().map(|c| (c.level, c.targets)).collect::<Vec<_>>();
        assert_eq!(
            pairs(&s.scheduled),
            [(None, 1), (Some(50.0), 4), (Some(100.0), 7)]
        );
        assert_eq!(
            pairs(&s.effective),
            [(None, 1), (Some(0.0), 1), (Some(50.0), 4), (Some(100.0), 6)]
        );
        assert_eq!((s.overridden, s.emergency), (1, 1));
        assert_eq!(
            s.programs,
            BTreeMap::from([("late".to_string(), 4), ("night".to_string(), 7)])
        );
    }
}
