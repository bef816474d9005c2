//! The switch points coming up for a set of targets, counted: "at 17:12
//! 1,204 lamps on (program night, rule default sunset-10)" — what an
//! operator checks before the night starts. Targets of one signature
//! (`Plan::signature`) share their events, so a city of 100,000 lamps costs
//! one evaluation per signature, as the engine's tick does.

use super::plan::{Plan, Target};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// One switch point and how many targets it switches.
#[derive(Debug, Clone, PartialEq)]
pub struct Upcoming {
    pub at: DateTime<Utc>,
    /// Percent, 0 to 100.
    pub level: f64,
    pub program: String,
    /// The calendar rule (or shift) and the switch point.
    pub rule: String,
    /// Lamps switched by their SLC.
    pub lamps: usize,
    /// Circuits switched by their cabinet's contactor.
    pub circuits: usize,
}

/// The events in (after, until] of the targets `keep` admits, in time
/// order, at most `limit` of them.
pub fn upcoming(
    plan: &Plan,
    keep: impl Fn(Target) -> bool,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Vec<Upcoming> {
    let mut memo: HashMap<super::plan::Signature, Vec<super::plan::Event>> = HashMap::new();
    // (at, level in thousandths, program, rule) → (lamps, circuits)
    type Point = (DateTime<Utc>, i64, String, String);
    let mut counted: BTreeMap<Point, (usize, usize)> = BTreeMap::new();
    for t in plan.targets().filter(|&t| keep(t)) {
        let events = memo.entry(plan.signature(t)).or_insert_with(|| {
            let mut skipped = Vec::new();
            plan.events_between(t, after, until, &mut skipped)
                .into_iter()
                .filter(|e| e.at > after && e.at <= until)
                .collect()
        });
        for e in events.iter() {
            let key = (
                e.at,
                (e.level * 1000.0).round() as i64,
                e.program.clone(),
                format!("{} {}", e.rule, e.point),
            );
            let n = counted.entry(key).or_default();
            match t {
                Target::Lamp(_) => n.0 += 1,
                Target::Circuit(..) => n.1 += 1,
            }
        }
    }
    counted
        .into_iter()
        .take(limit)
        .map(|((at, level, program, rule), (lamps, circuits))| Upcoming {
            at,
            level: level as f64 / 1000.0,
            program,
            rule,
            lamps,
            circuits,
        })
        .collect()
}
