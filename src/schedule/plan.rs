//! What every lamp and circuit should be at any moment, from the book and
//! the inventory. The rules, in one place:
//!
//! - A lamp follows the most specific assignment whose scope holds it
//!   (lamps > group > circuit > cabinet > district > city; among equals,
//!   the one listed last). Its SLC is switched at every switch point that
//!   applies to it (a point's `group` and `alternate` narrow it).
//! - A circuit of a cabinet with an RTU follows the most specific assignment
//!   of city, district, cabinet or circuit scope that holds it; its
//!   contactor closes at a point for all lamps with a level above 0 and
//!   opens at one with level 0 (a contactor is all or nothing, so points
//!   for part of the lamps do not move it).
//! - The program of a local date is the calendar's first matching rule by
//!   priority, else its default; none: the target is left as it is.
//! - The level at a moment is that of the last switch point at or before it,
//!   looking back over the previous local day (a lamp switched on at
//!   yesterday's sunset is on at 02:00).
//! - An emergency shift active at a moment and holding the target (the
//!   most specific one) forces its level, or moves the target's switch-on
//!   points (level above 0 after a 0) earlier and switch-off points later.
//! - Sun events are at the cabinet's lat/lon (the city centre when it has
//!   none); a point at a sun event that does not happen is skipped.
//! - A lamp's scheduled burning time (the energy baseline's) follows its SLC
//!   when it has one and a calendar governs it, else its circuit's contactor
//!   when a calendar governs that, else nothing: it is the time in which
//!   that target's level is above 0, by the level rule above; before the
//!   first switch point the plan knows of, the lamp counts as off. Over a
//!   window in which the book or groups changed, each version's plan gives
//!   its part (`history`).

use super::model::{Alternate, Assignment, Book, EmergencyShift, Level, Scope, SunEvent, When};
use super::sun::sun_times;
use crate::calendar::Spans;
use crate::inventory::Inventory;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Sunrise and sunset of a day, either absent in polar day or night.
type SunPair = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Something the plan switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// A lamp by inventory position (its SLC).
    Lamp(usize),
    /// A circuit of a cabinet (by position) with an RTU, 1-based.
    Circuit(usize, u8),
}

/// What a target's events depend on (see [`Plan::signature`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    circuit: bool,
    assignment: Option<usize>,
    cabinet: Option<usize>,
    subsets: u128,
    shifts: u128,
    target: Option<Target>,
}

/// Where a level comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
// Named apart from `control::Source` (a command's origin) in the document.
#[schema(as = LevelSource)]
pub enum Source {
    Calendar,
    Emergency,
    Override,
}

/// One switch event of a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    /// Percent, 0 to 100.
    pub level: f64,
    pub source: Source,
    pub program: String,
    /// The calendar rule (or shift id) and the switch point.
    pub rule: String,
    pub point: String,
}

/// The book laid over the inventory: who follows which assignment, where
/// each lamp stands in its circuit and groups, where the sun is.
#[derive(Debug)]
pub struct Plan {
    pub book: Arc<Book>,
    pub inventory: Arc<Inventory>,
    tz: Tz,
    lamp_assignment: Vec<Option<usize>>,
    circuit_assignment: BTreeMap<(usize, u8), usize>,
    /// 1-based position of each lamp along its circuit.
    circuit_position: Vec<u32>,
    /// Group → lamp position → 1-based position in the group.
    groups: HashMap<String, HashMap<usize, u32>>,
    coords: Vec<(f64, f64)>,
    /// Every (group, alternate) subset the programs' points name, for
    /// [`Plan::signature`].
    subsets: Vec<(Option<String>, Option<Alternate>)>,
    /// Sun times by (cabinet, local date).
    sun: Mutex<HashMap<(usize, NaiveDate), SunPair>>,
}

impl Plan {
    /// `groups` are the control's (settings and API); `centre` is the city
    /// centre for cabinets without coordinates.
    pub fn new(
        book: Arc<Book>,
        inventory: Arc<Inventory>,
        groups: &BTreeMap<String, Vec<String>>,
        tz: Tz,
        centre: (f64, f64),
    ) -> Plan {
        let inv = &inventory;
        let group_pos: HashMap<String, HashMap<usize, u32>> = groups
            .iter()
            .map(|(name, ids)| {
                let m = ids
                    .iter()
                    .filter_map(|id| inv.lamp_position(id))
                    .enumerate()
                    .map(|(k, p)| (p, k as u32 + 1))
                    .collect();
                (name.clone(), m)
            })
            .collect();
        let mut seen: HashMap<(&str, u8), u32> = HashMap::new();
        let circuit_position = inv
            .lamps
            .iter()
            .map(|l| {
                let n = seen.entry((l.cabinet.as_str(), l.circuit)).or_default();
                *n += 1;
                *n
            })
            .collect();
        let coords = inv
            .cabinets
            .iter()
            .map(|c| match (c.lat, c.lon) {
                (Some(lat), Some(lon)) => (lat, lon),
                _ => centre,
            })
            .collect();
        let mut subsets: Vec<(Option<String>, Option<Alternate>)> = book
            .programs
            .iter()
            .flat_map(|p| &p.points)
            .filter(|p| p.group.is_some() || p.alternate.is_some())
            .map(|p| (p.group.clone(), p.alternate))
            .collect();
        subsets.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        subsets.dedup();
        let mut plan = Plan {
            subsets,
            book,
            tz,
            lamp_assignment: Vec::new(),
            circuit_assignment: BTreeMap::new(),
            circuit_position,
            groups: group_pos,
            coords,
            sun: Mutex::new(HashMap::new()),
            inventory,
        };
        // Who follows which assignment: the scope rule is `scope_holds`'s.
        plan.lamp_assignment = (0..plan.inventory.lamps.len())
            .map(|l| plan.most_specific(Target::Lamp(l)))
            .collect();
        for (c, cab) in plan.inventory.cabinets.iter().enumerate() {
            if cab.rtu.is_none() {
                continue;
            }
            for circuit in 1..=cab.circuits {
                if let Some(a) = plan.most_specific(Target::Circuit(c, circuit)) {
                    plan.circuit_assignment.insert((c, circuit), a);
                }
            }
        }
        plan
    }

    /// The most specific assignment whose scope holds the target (the last
    /// listed among equals).
    fn most_specific(&self, t: Target) -> Option<usize> {
        self.book
            .assignments
            .iter()
            .enumerate()
            .filter(|(_, a)| self.scope_holds(&a.scope, t))
            .max_by_key(|(i, a)| (a.scope.specificity(), *i))
            .map(|(i, _)| i)
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// Every target a calendar governs: each lamp with an SLC that follows
    /// an assignment, each circuit of an RTU that does.
    pub fn targets(&self) -> impl Iterator<Item = Target> + '_ {
        let lamps = self
            .lamp_assignment
            .iter()
            .enumerate()
            .filter(|(l, a)| a.is_some() && self.inventory.lamps[*l].slc.is_some())
            .map(|(l, _)| Target::Lamp(l));
        lamps.chain(
            self.circuit_assignment
                .keys()
                .map(|&(c, n)| Target::Circuit(c, n)),
        )
    }

    /// Whether a lamp follows a calendar (its SLC or its circuit).
    pub fn governs_lamp(&self, lamp: usize) -> bool {
        self.lamp_assignment.get(lamp).is_some_and(Option::is_some)
            || self.inventory.lamps.get(lamp).is_some_and(|l| {
                self.inventory
                    .cabinet_position(&l.cabinet)
                    .is_some_and(|c| self.circuit_assignment.contains_key(&(c, l.circuit)))
            })
    }

    fn assignment(&self, t: Target) -> Option<&Assignment> {
        let i = match t {
            Target::Lamp(l) => (*self.lamp_assignment.get(l)?)?,
            Target::Circuit(c, n) => *self.circuit_assignment.get(&(c, n))?,
        };
        self.book.assignments.get(i)
    }

    fn cabinet_of(&self, t: Target) -> Option<usize> {
        match t {
            Target::Lamp(l) => self.inventory.cabinet_of_lamp(l),
            Target::Circuit(c, _) => Some(c),
        }
    }

    fn sun(
        &self,
        cabinet: usize,
        date: NaiveDate,
    ) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
        let mut cache = self.sun.lock();
        if cache.len() > 100_000 {
            cache.clear();
        }
        *cache.entry((cabinet, date)).or_insert_with(|| {
            let (lat, lon) = self.coords[cabinet];
            sun_times(lat, lon, date).map_or((None, None), |s| (s.sunrise, s.sunset))
        })
    }

    /// Sun times of a cabinet on a local date.
    pub fn sun_of_cabinet(&self, cabinet: usize, date: NaiveDate) -> SunPair {
        self.sun(cabinet, date)
    }

    /// Whether a switch point's subset takes in the target.
    fn applies(&self, t: Target, group: Option<&str>, alternate: Option<Alternate>) -> bool {
        match t {
            Target::Circuit(..) => group.is_none() && alternate.is_none(),
            Target::Lamp(l) => {
                let pos = match group {
                    Some(g) => match self.groups.get(g).and_then(|m| m.get(&l)) {
                        Some(p) => *p,
                        None => return false,
                    },
                    None => self.circuit_position[l],
                };
                match alternate {
                    None => true,
                    Some(Alternate::Odd) => pos % 2 == 1,
                    Some(Alternate::Even) => pos % 2 == 0,
                }
            }
        }
    }

    /// The calendar's events of the target on a local date, in time order,
    /// before emergency shifts; and the points skipped (no sun event).
    fn calendar_events(&self, t: Target, date: NaiveDate, skipped: &mut Vec<String>) -> Vec<Event> {
        let Some(a) = self.assignment(t) else {
            return Vec::new();
        };
        let Some(cal) = self.book.calendar(&a.calendar) else {
            return Vec::new();
        };
        let Some((program_id, rule)) = cal.program_for(date) else {
            return Vec::new();
        };
        let Some(program) = self.book.program(program_id) else {
            return Vec::new();
        };
        let cabinet = self.cabinet_of(t);
        let mut out = Vec::new();
        for p in &program.points {
            if !self.applies(t, p.group.as_deref(), p.alternate) {
                continue;
            }
            // A contactor only follows the points for every lamp.
            let at = match p.when() {
                Ok(When::Fixed(m)) => {
                    let local = super::model::local_time(date, m);
                    self.tz
                        .from_local_datetime(&local)
                        .earliest()
                        .map(|t| t.with_timezone(&Utc))
                }
                Ok(When::Sun(ev, offset)) => {
                    let (rise, set) = cabinet.map_or((None, None), |c| self.sun(c, date));
                    let base = if ev == SunEvent::Sunrise { rise } else { set };
                    base.map(|b| b + Duration::minutes(i64::from(offset)))
                }
                Err(_) => None,
            };
            let Some(at) = at else {
                skipped.push(format!("{}: {} has no sun event that day", date, p.label()));
                continue;
            };
            out.push(Event {
                at,
                level: p.level.percent(),
                source: Source::Calendar,
                program: program.id.clone(),
                rule: rule.clone(),
                point: p.label(),
            });
        }
        out.sort_by_key(|e| e.at);
        out
    }

    /// The most specific emergency shift holding the target active at `at`.
    fn shift_at(&self, t: Target, at: DateTime<Utc>) -> Option<&EmergencyShift> {
        self.book
            .emergency_shifts
            .iter()
            .enumerate()
            .filter(|(_, s)| s.active_at(at) && self.scope_holds(&s.scope, t))
            .max_by_key(|(i, s)| (s.scope.specificity(), *i))
            .map(|(_, s)| s)
    }

    fn scope_holds(&self, scope: &Scope, t: Target) -> bool {
        let inv = &self.inventory;
        match t {
            Target::Lamp(l) => {
                let lamp = &inv.lamps[l];
                let district = inv.cabinet(&lamp.cabinet).map(|c| c.district.as_str());
                match scope {
                    Scope::City => true,
                    Scope::District(d) => district == Some(d.as_str()),
                    Scope::Cabinet(c) => lamp.cabinet == *c,
                    Scope::Circuit { cabinet, circuit } => {
                        lamp.cabinet == *cabinet && lamp.circuit == *circuit
                    }
                    Scope::Group(g) => self.groups.get(g).is_some_and(|m| m.contains_key(&l)),
                    Scope::Lamps(ids) => ids.contains(&lamp.id),
                }
            }
            Target::Circuit(c, n) => {
                let cab = &inv.cabinets[c];
                match scope {
                    Scope::City => true,
                    Scope::District(d) => cab.district == *d,
                    Scope::Cabinet(id) => cab.id == *id,
                    Scope::Circuit { cabinet, circuit } => cab.id == *cabinet && *circuit == n,
                    _ => false,
                }
            }
        }
    }

    /// The target's events from the local day before `from`'s to the one
    /// after `to`'s, shifts applied, in time order.
    pub fn events_between(
        &self,
        t: Target,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        skipped: &mut Vec<String>,
    ) -> Vec<Event> {
        let first = from.with_timezone(&self.tz).date_naive() - Duration::days(1);
        let last = to.with_timezone(&self.tz).date_naive();
        let mut events = Vec::new();
        let mut d = first;
        while d <= last {
            events.extend(self.calendar_events(t, d, skipped));
            d += Duration::days(1);
        }
        // Shifts move switch-on earlier and switch-off later where they
        // are active at the moved time, or force their level.
        let mut prev = 0.0;
        for e in &mut events {
            let on = e.level > 0.0 && prev == 0.0;
            let off = e.level == 0.0 && prev > 0.0;
            prev = e.level;
            let moved = if on {
                self.shift_at(t, e.at)
                    .filter(|s| s.force.is_none() && s.on_earlier_min > 0)
                    .map(|s| (e.at - Duration::minutes(i64::from(s.on_earlier_min)), s))
            } else if off {
                self.shift_at(t, e.at)
                    .filter(|s| s.force.is_none() && s.off_later_min > 0)
                    .map(|s| (e.at + Duration::minutes(i64::from(s.off_later_min)), s))
            } else {
                None
            };
            if let Some((at, s)) = moved {
                e.at = at;
                e.source = Source::Emergency;
                e.rule = format!("shift {}", s.id);
            }
        }
        // Forced periods: the level at their start, the calendar's again at
        // their end.
        for s in self
            .book
            .emergency_shifts
            .iter()
            .filter(|s| s.force.is_some())
        {
            if !self.scope_holds(&s.scope, t)
                || s.until < from - Duration::days(1)
                || s.from > to + Duration::days(1)
            {
                continue;
            }
            events.retain(|e| !(s.from <= e.at && e.at < s.until) || e.source == Source::Emergency);
            events.push(Event {
                at: s.from,
                level: s.force.map_or(0.0, Level::percent),
                source: Source::Emergency,
                program: String::new(),
                rule: format!("shift {}", s.id),
                point: "force".into(),
            });
            events.sort_by_key(|e| e.at);
            let back = events
                .iter()
                .rev()
                .find(|e| e.at < s.from && e.source == Source::Calendar)
                .cloned();
            if let Some(mut back) = back {
                back.at = s.until;
                back.rule = format!("{} (after shift {})", back.rule, s.id);
                events.push(back);
            }
        }
        events.sort_by_key(|e| e.at);
        events
    }

    /// The target's level at `at` and the event that set it; `None` when
    /// no calendar says anything about it then.
    pub fn level_at(&self, t: Target, at: DateTime<Utc>) -> Option<Event> {
        let mut skipped = Vec::new();
        self.events_between(t, at, at, &mut skipped)
            .into_iter()
            .rev()
            .find(|e| e.at <= at)
    }

    /// Targets with the same signature have the same events: the same
    /// assignment and cabinet (calendar, program, sun), the same subsets of
    /// the programs' points, the same emergency shifts holding them. The
    /// engine evaluates one target per signature and a tick over 100,000
    /// lamps costs one evaluation per cabinet and subset instead.
    pub fn signature(&self, t: Target) -> Signature {
        let assignment = match t {
            Target::Lamp(l) => self.lamp_assignment.get(l).copied().flatten(),
            Target::Circuit(c, n) => self.circuit_assignment.get(&(c, n)).copied(),
        };
        let mut subsets: u128 = 0;
        let mut shifts: u128 = 0;
        let exact = self.subsets.len() > 128 || self.book.emergency_shifts.len() > 128;
        if !exact {
            for (i, (g, a)) in self.subsets.iter().enumerate() {
                if self.applies(t, g.as_deref(), *a) {
                    subsets |= 1 << i;
                }
            }
            for (i, sh) in self.book.emergency_shifts.iter().enumerate() {
                if self.scope_holds(&sh.scope, t) {
                    shifts |= 1 << i;
                }
            }
        }
        Signature {
            circuit: matches!(t, Target::Circuit(..)),
            assignment,
            cabinet: self.cabinet_of(t),
            subsets,
            shifts,
            // Too many to fold: each target its own.
            target: exact.then_some(t),
        }
    }

    /// The next event of the target after `after` (within two days).
    pub fn next_event(&self, t: Target, after: DateTime<Utc>) -> Option<Event> {
        let mut skipped = Vec::new();
        self.events_between(t, after, after + Duration::days(1), &mut skipped)
            .into_iter()
            .find(|e| e.at > after)
    }

    /// What a lamp's burning time follows (module doc): its SLC's target,
    /// else its circuit's, else `None` (nothing switches it on a plan).
    pub fn burning_target(&self, lamp: usize) -> Option<Target> {
        let l = self.inventory.lamps.get(lamp)?;
        if l.slc.is_some() && self.lamp_assignment.get(lamp).is_some_and(Option::is_some) {
            return Some(Target::Lamp(lamp));
        }
        let c = self.inventory.cabinet_position(&l.cabinet)?;
        self.circuit_assignment
            .contains_key(&(c, l.circuit))
            .then_some(Target::Circuit(c, l.circuit))
    }

    /// The id of the calendar a lamp follows: its SLC's assignment, else
    /// its circuit's (as `burning_target` picks the target).
    pub fn calendar_of_lamp(&self, lamp: usize) -> Option<&str> {
        let t = self.burning_target(lamp)?;
        self.assignment(t).map(|a| a.calendar.as_str())
    }

    /// The spans of [from, to) in which the target's level is above 0, in
    /// time order, as microseconds since the epoch.
    pub fn on_spans(&self, t: Target, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(i64, i64)> {
        let (from_us, to_us) = (from.timestamp_micros(), to.timestamp_micros());
        let mut skipped = Vec::new();
        let mut spans = Vec::new();
        // Switched on since (µs), while the level is above 0.
        let mut on_since: Option<i64> = None;
        for e in self.events_between(t, from, to, &mut skipped) {
            let at = e.at.timestamp_micros().max(from_us);
            if at >= to_us {
                break;
            }
            match (e.level > 0.0, on_since) {
                (true, None) => on_since = Some(at),
                (false, Some(since)) => {
                    if at > since {
                        spans.push((since, at));
                    }
                    on_since = None;
                }
                _ => {}
            }
        }
        if let Some(since) = on_since.filter(|&s| s < to_us) {
            spans.push((since, to_us));
        }
        spans
    }

    /// Every lamp's [`Plan::on_spans`] over [from, to) of its burning target
    /// (by inventory position; `None` where no calendar governs it). Lamps
    /// of one signature share one list, computed once: a city is a few
    /// evaluations per cabinet, not one per lamp.
    pub fn burning_spans(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Option<Spans>> {
        let mut memo: HashMap<Signature, Spans> = HashMap::new();
        (0..self.inventory.lamps.len())
            .map(|l| {
                let t = self.burning_target(l)?;
                let spans = memo
                    .entry(self.signature(t))
                    .or_insert_with(|| self.on_spans(t, from, to).into())
                    .clone();
                Some(spans)
            })
            .collect()
    }

    /// The events of a local date (preview), and the points skipped.
    pub fn day(&self, t: Target, date: NaiveDate) -> (Vec<Event>, Vec<String>) {
        let tz = self.tz;
        let start = tz
            .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest();
        let Some(start) = start.map(|s| s.with_timezone(&Utc)) else {
            return (Vec::new(), Vec::new());
        };
        let end = start + Duration::days(1);
        let mut skipped = Vec::new();
        let events = self
            .events_between(t, start, end - Duration::seconds(1), &mut skipped)
            .into_iter()
            .filter(|e| start <= e.at && e.at < end)
            .collect();
        skipped.retain(|s| s.starts_with(&date.to_string()));
        (events, skipped)
    }

    /// Problems of the book that need the inventory and the groups: scopes
    /// and points naming what is not there.
    pub fn check_scopes(
        book: &Book,
        inventory: &Inventory,
        groups: &BTreeMap<String, Vec<String>>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let scope_problem = |s: &Scope| -> Option<String> {
            match s {
                Scope::City => None,
                Scope::District(d) => inventory
                    .district(d)
                    .is_none()
                    .then(|| format!("unknown district `{d}`")),
                Scope::Cabinet(c) => inventory
                    .cabinet(c)
                    .is_none()
                    .then(|| format!("unknown cabinet `{c}`")),
                Scope::Circuit { cabinet, circuit } => match inventory.cabinet(cabinet) {
                    None => Some(format!("unknown cabinet `{cabinet}`")),
                    Some(c) if *circuit == 0 || *circuit > c.circuits => Some(format!(
                        "cabinet `{cabinet}` has circuits 1..={}, not {circuit}",
                        c.circuits
                    )),
                    Some(_) => None,
                },
                Scope::Group(g) => {
                    (!groups.contains_key(g)).then(|| format!("unknown group `{g}`"))
                }
                Scope::Lamps(ids) => ids
                    .iter()
                    .find(|l| inventory.lamp_position(l).is_none())
                    .map(|l| format!("unknown lamp `{l}`")),
            }
        };
        for (i, a) in book.assignments.iter().enumerate() {
            if let Some(p) = scope_problem(&a.scope) {
                out.push(format!("assignments[{i}].scope: {p}"));
            }
        }
        for (i, s) in book.emergency_shifts.iter().enumerate() {
            if let Some(p) = scope_problem(&s.scope) {
                out.push(format!("emergency_shifts[{i}].scope: {p}"));
            }
        }
        for (i, p) in book.programs.iter().enumerate() {
            for (j, pt) in p.points.iter().enumerate() {
                if let Some(g) = &pt.group {
                    if !groups.contains_key(g) {
                        out.push(format!(
                            "programs[{i}].points[{j}].group: unknown group `{g}`"
                        ));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Cabinet, District, Framing, Lamp, RtuSpec, SlcSpec};

    const TZ: Tz = chrono_tz::Asia::Shanghai;

    fn local(s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        TZ.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
    }

    fn cabinet(id: &str, rtu: bool) -> Cabinet {
        Cabinet {
            at: String::new(),
            id: id.into(),
            district: "D01".into(),
            name: String::new(),
            lat: None,
            lon: None,
            circuits: 1,
            endpoint: None,
            link: None,
            framing: Framing::Tcp,
            rtu: rtu.then(|| RtuSpec {
                id: format!("R-{id}"),
                profile: "rtu-cabinet".into(),
                unit: 1,
            }),
        }
    }

    fn lamp(id: &str, cab: &str, slc: bool) -> Lamp {
        Lamp {
            at: String::new(),
            id: id.into(),
            cabinet: cab.into(),
            circuit: 1,
            lat: None,
            lon: None,
            rated_power_w: Some(100.0),
            slc: slc.then(|| SlcSpec {
                id: format!("S-{id}"),
                profile: "slc-a-unit".into(),
                unit: 2,
                index: None,
            }),
            road: None,
        }
    }

    /// C1 has an RTU, C2 none. L1 and L5 (SLC) and L2 (no SLC) on C1, L3 (no
    /// SLC) and L4 (SLC) on C2. The city's night: on at 18:00, 50 % at
    /// 22:00, off at 06:00.
    fn plan() -> Plan {
        let inventory = Inventory::new(
            vec![District {
                at: String::new(),
                id: "D01".into(),
                name: String::new(),
            }],
            vec![cabinet("C1", true), cabinet("C2", false)],
            vec![
                lamp("L1", "C1", true),
                lamp("L2", "C1", false),
                lamp("L3", "C2", false),
                lamp("L4", "C2", true),
                lamp("L5", "C1", true),
            ],
        );
        let book: Book = serde_json::from_value(serde_json::json!({
            "programs": [{"id": "night", "points": [
                {"at": "18:00", "level": "on"},
                {"at": "22:00", "level": 50},
                {"at": "06:00", "level": "off"}
            ]}],
            "calendars": [{"id": "city", "rules": [], "default_program": "night"}],
            "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
        }))
        .unwrap();
        Plan::new(
            Arc::new(book),
            Arc::new(inventory),
            &BTreeMap::new(),
            TZ,
            (36.65, 117.12),
        )
    }

    #[test]
    fn a_lamp_burns_on_its_slc_else_its_contactor_else_nothing() {
        let p = plan();
        assert_eq!(p.burning_target(0), Some(Target::Lamp(0)));
        assert_eq!(p.burning_target(1), Some(Target::Circuit(0, 1)));
        assert_eq!(p.burning_target(2), None);
        assert_eq!(p.burning_target(3), Some(Target::Lamp(3)));
    }

    #[test]
    fn the_burning_time_is_the_time_above_zero() {
        let p = plan();
        let us = |s: &str| local(s).timestamp_micros();
        // Noon to noon: 18:00 to 06:00, the dimmed hours included.
        let night = p.on_spans(
            Target::Lamp(0),
            local("2025-03-15 12:00"),
            local("2025-03-16 12:00"),
        );
        assert_eq!(
            night,
            vec![(us("2025-03-15 18:00"), us("2025-03-16 06:00"))]
        );
        // A window that starts with the lamp on starts its span; one that
        // ends with it on ends it.
        let evening = p.on_spans(
            Target::Circuit(0, 1),
            local("2025-03-15 20:00"),
            local("2025-03-16 02:00"),
        );
        assert_eq!(
            evening,
            vec![(us("2025-03-15 20:00"), us("2025-03-16 02:00"))]
        );
        let day = p.on_spans(
            Target::Lamp(0),
            local("2025-03-16 07:00"),
            local("2025-03-16 17:00"),
        );
        assert!(day.is_empty());
        // Lamps of one signature share one list; a lamp nothing switches
        // has none.
        let all = p.burning_spans(local("2025-03-15 12:00"), local("2025-03-16 12:00"));
        assert_eq!(all.len(), 5);
        assert!(all[2].is_none());
        let (l1, l5) = (all[0].as_ref().unwrap(), all[4].as_ref().unwrap());
        assert!(Arc::ptr_eq(l1, l5));
        assert_eq!(&l1[..], &night[..]);
        assert_eq!(&all[3].as_ref().unwrap()[..], &night[..]);
    }
}
