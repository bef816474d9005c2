//! The figures from alarms: repairs over a window, and THE facility intact
//! rate (设施完好率), now and over a window. Pure over the alarm records (the
//! store's for windows, the engine's standing ones for now), except [`load`].
//!
//! **Facilities** are the inventory's lamps, its circuits — the (cabinet,
//! circuit number) pairs that have a lamp on them — and its cabinets, each
//! in the district of its cabinet (a lamp or cabinet without a known
//! district is no facility of any scope).
//!
//! **A facility is faulty** while an alarm stands on it whose kind's
//! [`AlarmKind::facility`] is that facility's kind: the lamp kinds on a
//! lamp, `supply_loss` and `contactor_failure` on a circuit, `leakage` on a
//! cabinet. **Comms loss is no fault**: `comms_lost`, `endpoint_down` (and
//! `door_open`) make nothing faulty, so a lamp whose SLC is offline, or
//! behind an endpoint that is down, is intact unless it has a fault alarm —
//! one raised before it went silent keeps standing, since the engine clears
//! nothing it cannot see. Silence is what the online rates count; the intact
//! rate counts broken parts. An alarm of a facility the inventory no longer
//! has counts for nothing.
//!
//! **An alarm stands** from `raised_at` until `cleared_at`, or `closed_at`
//! if it was closed without clearing (an admin closing a false alarm), or
//! for ever (to the window's end) if neither. The record is the alarm's
//! latest, so an alarm that cleared and reopened within the hysteresis
//! stands through the short gap, and is one repair, at its last clear.
//!
//! - **Now**: facility intact rate = facilities with no standing fault
//!   alarm / facilities ([`intact_now`], and `Summary::facility_intact_rate`);
//!   per road class, lamps on its roads with no fault alarm standing on the
//!   lamp or its circuit / those lamps ([`intact_by_class_now`]).
//! - **Over a window [from, to)**: Σ over facilities of the seconds of the
//!   window in which no fault alarm stood on it ÷ (facilities × window
//!   seconds). Alarms overlapping on one facility count once (their spans
//!   are merged). [`load`] ends the window at now if `to` is later: nothing
//!   is known of the future, and a standing alarm must not be projected
//!   into it.
//! - **Per road class** (the evaluation's 设施完好率 on roads, with its own
//!   target for landscape lighting): over the lamps on roads of the class
//!   in the scope, Σ of the seconds in which no fault alarm stood on the
//!   lamp *or on its circuit* (a circuit without supply, or with a contactor
//!   that does not follow, leaves its lamps unfit for use) ÷ (lamps ×
//!   window seconds); spans merged per lamp. Circuits and cabinets belong to
//!   no road and count only in the scope's own rate above. `target` is
//!   `figures.intact_targets` of the class (`landscape`, else `roads`);
//!   `meets_target` = rate ≥ target. A class is listed where the scope has
//!   a road of it.
//! - **Raised / cleared by kind**: alarms of every kind (faults or not)
//!   whose `raised_at` / `cleared_at` is in [from, to), in the district they
//!   were raised in (the city counts every alarm, also those of a district
//!   the inventory no longer has).
//! - **Time to repair**: `cleared_at − raised_at` of the alarms cleared in
//!   the window, by severity: the mean and the 90th percentile by nearest
//!   rank (the ⌈0.9·n⌉-th smallest); an alarm closed without clearing was
//!   not repaired and is not among them. **Within deadline**: of those,
//!   the share with `cleared_at ≤ deadline`, by severity and overall.
//! - **Open overdue** at the window's end: alarms standing at `to` whose
//!   deadline is before `to`.
//!
//! Every ratio is `null` where its denominator is 0 (no facilities, an
//! empty window, no repair).

use super::config::IntactTargets;
use super::window::WindowError;
use crate::alarm::{Alarm, AlarmKind, Facility, Severity};
use crate::inventory::{Inventory, RoadClass};
use crate::store::Db;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The repairs of one severity over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RepairFigures {
    /// Alarms of this severity cleared in the window.
    pub cleared: u64,
    /// Mean time to repair (raised → cleared), seconds.
    pub mean_seconds: Option<f64>,
    /// 90th percentile (nearest rank) of the time to repair, seconds.
    pub p90_seconds: Option<f64>,
    /// Of `cleared`, those cleared at or before their deadline.
    pub within_deadline: u64,
    /// `within_deadline / cleared`.
    pub within_deadline_share: Option<f64>,
}

/// The alarm figures of one scope over a window; `src/figures/alarms.rs`
/// defines each (README "Figures from alarms").
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlarmFigures {
    /// Alarms raised in the window, every kind.
    pub raised: u64,
    pub raised_by_kind: BTreeMap<AlarmKind, u64>,
    /// Alarms cleared in the window, every kind.
    pub cleared: u64,
    pub cleared_by_kind: BTreeMap<AlarmKind, u64>,
    /// Time to repair of the alarms cleared in the window, by severity.
    pub repair: BTreeMap<Severity, RepairFigures>,
    /// Alarms cleared in the window at or before their deadline.
    pub within_deadline: u64,
    /// `within_deadline / cleared`.
    pub within_deadline_share: Option<f64>,
    /// Standing at the window's end and past their deadline there.
    pub open_overdue: u64,
    /// Lamps, circuits and cabinets of the scope.
    pub facilities: u64,
    /// `facilities × window seconds`.
    pub facility_seconds: f64,
    /// Facility-seconds with a fault alarm standing (overlaps counted once).
    pub facility_fault_seconds: f64,
    /// `facility_seconds − facility_fault_seconds`.
    pub facility_intact_seconds: f64,
    /// `facility_intact_seconds / facility_seconds` (设施完好率 over the window).
    pub facility_intact_rate: Option<f64>,
}

/// The facility intact rate of one road class's lamps over a window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClassIntact {
    pub class: RoadClass,
    /// Roads of this class in the scope.
    pub roads: u64,
    /// Lamps on them.
    pub lamps: u64,
    /// `lamps × window seconds`.
    pub lamp_seconds: f64,
    /// Lamp-seconds with a fault alarm standing on the lamp or its circuit.
    pub lamp_fault_seconds: f64,
    /// `1 − lamp_fault_seconds / lamp_seconds`.
    pub facility_intact_rate: Option<f64>,
    /// `figures.intact_targets` of the class.
    pub target: f64,
    /// `facility_intact_rate ≥ target`; `null` with a `null` rate.
    pub meets_target: Option<bool>,
}

/// One scope's alarm figures.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlarmScope {
    /// `city` or the district id.
    pub scope: String,
    pub name: String,
    #[serde(flatten)]
    pub figures: AlarmFigures,
    /// The intact rate per road class (module doc), in class order.
    pub classes: Vec<ClassIntact>,
}

/// The alarm figures over a window: every district (inventory order) and
/// the city.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AlarmWindow {
    pub from: DateTime<Utc>,
    /// The window's end: the `to` asked for, or now if that is earlier.
    pub to: DateTime<Utc>,
    pub window_seconds: f64,
    pub districts: Vec<AlarmScope>,
    /// `null` for one district's figures (a district filter or token).
    pub city: Option<AlarmScope>,
}

impl AlarmWindow {
    /// The figures of a scope (`city` or a district id), if the window has it.
    pub fn scope(&self, scope: &str) -> Option<&AlarmScope> {
        self.districts
            .iter()
            .chain(self.city.as_ref())
            .find(|s| s.scope == scope)
    }
}

/// The facility intact rate of one scope now.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IntactNow {
    /// `city` or the district id.
    pub scope: String,
    pub name: String,
    /// Lamps, circuits and cabinets.
    pub facilities: u64,
    /// Facilities with no standing fault alarm.
    pub intact: u64,
    /// `intact / facilities`.
    pub facility_intact_rate: Option<f64>,
    pub faulty_lamps: u64,
    pub faulty_circuits: u64,
    pub faulty_cabinets: u64,
}

/// Each faulty facility's district position and fault spans (µs).
type FaultSpans = HashMap<Place, (usize, Vec<(i64, i64)>)>;

/// One facility, by inventory position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Lamp(usize),
    /// Cabinet position, circuit number.
    Circuit(usize, u8),
    Cabinet(usize),
}

/// The facilities of the inventory: how many per district, and where a
/// fault alarm sits.
struct Facilities<'a> {
    inv: &'a Inventory,
    circuits: HashSet<(usize, u8)>,
    /// [lamps, circuits, cabinets] per district position.
    per: Vec<[u64; 3]>,
}

impl<'a> Facilities<'a> {
    fn new(inv: &'a Inventory) -> Self {
        let mut per = vec![[0u64; 3]; inv.districts.len()];
        let mut circuits = HashSet::new();
        for (li, lamp) in inv.lamps.iter().enumerate() {
            let Some(c) = inv.cabinet_of_lamp(li) else {
                continue;
            };
            let Some(d) = inv.district_of_cabinet(c) else {
                continue;
            };
            per[d][0] += 1;
            if circuits.insert((c, lamp.circuit)) {
                per[d][1] += 1;
            }
        }
        for c in 0..inv.cabinets.len() {
            if let Some(d) = inv.district_of_cabinet(c) {
                per[d][2] += 1;
            }
        }
        Self { inv, circuits, per }
    }

    fn total(&self, d: usize) -> u64 {
        self.per[d].iter().sum()
    }

    /// The facility a fault alarm makes faulty, and its district position;
    /// `None` for a kind that is no fault, or a facility not in the inventory.
    fn locate(&self, a: &Alarm) -> Option<(Place, usize)> {
        let inv = self.inv;
        let cabinet = |id: &str| {
            let c = inv.cabinet_position(id)?;
            Some((c, inv.district_of_cabinet(c)?))
        };
        match a.kind.facility()? {
            Facility::Lamp => {
                let l = inv.lamp_position(&a.device_id)?;
                let d = inv.district_of_cabinet(inv.cabinet_of_lamp(l)?)?;
                Some((Place::Lamp(l), d))
            }
            Facility::Circuit => {
                let (c, d) = cabinet(a.cabinet.as_deref()?)?;
                let n = a.circuit?;
                self.circuits
                    .contains(&(c, n))
                    .then_some((Place::Circuit(c, n), d))
            }
            // A leakage alarm names its cabinet as its device too.
            Facility::Cabinet => {
                let (c, d) = cabinet(a.cabinet.as_deref().unwrap_or(&a.device_id))?;
                Some((Place::Cabinet(c), d))
            }
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn seconds(us: i128) -> f64 {
    us as f64 / 1e6
}

fn share(num: i128, den: i128) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// When an alarm stops standing (µs), or `None` while it stands.
fn ends(a: &Alarm) -> Option<i64> {
    a.cleared_at.or(a.closed_at).map(micros)
}

/// The ⌈0.9·n⌉-th smallest of `sorted` (nearest rank).
fn p90(sorted: &[i64]) -> Option<i64> {
    let n = sorted.len();
    // ⌈9n/10⌉ in integers, so 0.9 × 10 is exactly 9.
    let rank = (9 * n).div_ceil(10);
    (rank > 0).then(|| sorted[rank - 1])
}

/// What one scope sums while the alarms are read.
#[derive(Debug, Default, Clone)]
struct Acc {
    raised: [u64; AlarmKind::ALL.len()],
    cleared: [u64; AlarmKind::ALL.len()],
    /// Times to repair (µs) by `Severity` position.
    repairs: [Vec<i64>; 3],
    within: [u64; 3],
    overdue: u64,
    fault_us: i128,
}

fn severity_pos(s: Severity) -> usize {
    Severity::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

fn kind_pos(k: AlarmKind) -> usize {
    AlarmKind::ALL.iter().position(|x| *x == k).unwrap_or(0)
}

impl Acc {
    fn figures(mut self, facilities: u64, window_us: i64) -> AlarmFigures {
        let by_kind = |counts: &[u64]| -> BTreeMap<AlarmKind, u64> {
            AlarmKind::ALL
                .into_iter()
                .zip(counts.iter().copied())
                .collect()
        };
        let mut repair = BTreeMap::new();
        let (mut cleared_all, mut within_all) = (0u64, 0u64);
        for (i, severity) in Severity::ALL.into_iter().enumerate() {
            let times = &mut self.repairs[i];
            times.sort_unstable();
            let n = times.len() as u64;
            let sum: i128 = times.iter().map(|&t| i128::from(t)).sum();
            cleared_all += n;
            within_all += self.within[i];
            repair.insert(
                severity,
                RepairFigures {
                    cleared: n,
                    mean_seconds: (n > 0).then(|| seconds(sum) / n as f64),
                    p90_seconds: p90(times).map(|t| seconds(i128::from(t))),
                    within_deadline: self.within[i],
                    within_deadline_share: super::ratio(self.within[i], n),
                },
            );
        }
        let total = i128::from(facilities) * i128::from(window_us);
        let intact = total - self.fault_us;
        AlarmFigures {
            raised: self.raised.iter().sum(),
            raised_by_kind: by_kind(&self.raised),
            cleared: self.cleared.iter().sum(),
            cleared_by_kind: by_kind(&self.cleared),
            repair,
            within_deadline: within_all,
            within_deadline_share: super::ratio(within_all, cleared_all),
            open_overdue: self.overdue,
            facilities,
            facility_seconds: seconds(total),
            facility_fault_seconds: seconds(self.fault_us),
            facility_intact_seconds: seconds(intact),
            facility_intact_rate: share(intact, total),
        }
    }
}

/// Merges spans (µs) and returns their total length.
fn merged_length(spans: &mut [(i64, i64)]) -> i128 {
    spans.sort_unstable();
    let mut total: i128 = 0;
    let mut current: Option<(i64, i64)> = None;
    for &(s, e) in spans.iter() {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += i128::from(ce - cs);
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += i128::from(ce - cs);
    }
    total
}

/// The alarm figures over [from, to) of every district and the city, from
/// the alarms that stood at some time in it (any others change nothing).
pub fn window(
    inv: &Inventory,
    alarms: &[Alarm],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    targets: &IntactTargets,
) -> AlarmWindow {
    let fac = Facilities::new(inv);
    let n = inv.districts.len();
    let city = n;
    let (f, t) = (micros(from), micros(to).max(micros(from)));
    let mut acc = vec![Acc::default(); n + 1];
    let mut faults: FaultSpans = HashMap::new();
    for a in alarms {
        let scopes = [inv.district_position(&a.district), Some(city)];
        let raised = micros(a.raised_at);
        let end = ends(a);
        let k = kind_pos(a.kind);
        let sev = severity_pos(a.severity);
        let raised_in = (f..t).contains(&raised);
        let cleared_in = a.cleared_at.map(micros).filter(|c| (f..t).contains(c));
        let overdue_at_end = raised <= t && end.is_none_or(|e| e > t) && micros(a.deadline) < t;
        for s in scopes.into_iter().flatten() {
            let x = &mut acc[s];
            x.raised[k] += u64::from(raised_in);
            if let Some(c) = cleared_in {
                x.cleared[k] += 1;
                x.repairs[sev].push(c - raised);
                x.within[sev] += u64::from(a.cleared_at <= Some(a.deadline));
            }
            x.overdue += u64::from(overdue_at_end);
        }
        if let Some((place, d)) = fac.locate(a) {
            let (s, e) = (raised.max(f), end.unwrap_or(t).min(t));
            if s < e {
                faults
                    .entry(place)
                    .or_insert((d, Vec::new()))
                    .1
                    .push((s, e));
            }
        }
    }
    let window_us = t - f;
    let classes = by_class(inv, &faults, window_us, targets);
    for (_, (d, mut spans)) in faults {
        let len = merged_length(&mut spans);
        acc[d].fault_us += len;
        acc[city].fault_us += len;
    }
    let mut facilities_city = 0;
    let mut acc = acc.into_iter();
    let districts = inv
        .districts
        .iter()
        .enumerate()
        .zip(acc.by_ref())
        .map(|((d, district), x)| {
            let facilities = fac.total(d);
            facilities_city += facilities;
            AlarmScope {
                scope: district.id.clone(),
                name: district.name.clone(),
                figures: x.figures(facilities, window_us),
                classes: classes[d].clone(),
            }
        })
        .collect();
    let city = acc.next().unwrap_or_default();
    AlarmWindow {
        from,
        to: DateTime::from_timestamp_micros(t).unwrap_or(to),
        window_seconds: seconds(i128::from(window_us)),
        districts,
        city: Some(AlarmScope {
            scope: "city".into(),
            name: "city".into(),
            figures: city.figures(facilities_city, window_us),
            classes: classes[n].clone(),
        }),
    }
}

/// [roads, lamps, fault] per road class of every district position, the
/// city last: the roads of each class, the lamps on them, and Σ
/// `fault(lamp, its circuit)` over those lamps — fault time over a window,
/// 1 or 0 now. One tally for both, so now and a window count the same
/// lamps of the same roads.
fn class_sums(
    inv: &Inventory,
    mut fault: impl FnMut(Place, Option<Place>) -> i128,
) -> Vec<[[i128; 3]; RoadClass::ALL.len()]> {
    let n = inv.districts.len();
    let mut sums = vec![[[0i128; 3]; RoadClass::ALL.len()]; n + 1];
    for r in &inv.roads {
        if let Some(d) = inv.district_position(&r.district) {
            sums[d][r.class as usize][0] += 1;
            sums[n][r.class as usize][0] += 1;
        }
    }
    for li in 0..inv.lamps.len() {
        let Some(road) = inv.road_of_lamp(li).map(|r| &inv.roads[r]) else {
            continue;
        };
        let Some(d) = inv.district_position(&road.district) else {
            continue;
        };
        let lamp = &inv.lamps[li];
        let circuit = inv
            .cabinet_of_lamp(li)
            .map(|c| Place::Circuit(c, lamp.circuit));
        let f = fault(Place::Lamp(li), circuit);
        for scope in [d, n] {
            let x = &mut sums[scope][road.class as usize];
            x[1] += 1;
            x[2] += f;
        }
    }
    sums
}

/// The per-class intact rates (module doc) of every district position, the
/// city last, from the fault spans (already clipped to the window) of each
/// place.
fn by_class(
    inv: &Inventory,
    faults: &FaultSpans,
    window_us: i64,
    targets: &IntactTargets,
) -> Vec<Vec<ClassIntact>> {
    let sums = class_sums(inv, |lamp, circuit| {
        let mut spans: Vec<(i64, i64)> = [Some(lamp), circuit]
            .into_iter()
            .flatten()
            .filter_map(|p| faults.get(&p))
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        merged_length(&mut spans)
    });
    sums.into_iter()
        .map(|per| {
            RoadClass::ALL
                .into_iter()
                .zip(per)
                .filter(|(_, x)| x[0] > 0)
                .map(|(class, [roads, lamps, fault])| {
                    let total = lamps * i128::from(window_us);
                    let rate = share(total - fault, total);
                    let target = targets.of(class);
                    ClassIntact {
                        class,
                        roads: roads as u64,
                        lamps: lamps as u64,
                        lamp_seconds: seconds(total),
                        lamp_fault_seconds: seconds(fault),
                        facility_intact_rate: rate,
                        target,
                        meets_target: rate.map(|r| r >= target),
                    }
                })
                .collect()
        })
        .collect()
}

/// The facility intact rate now of every district (inventory order), then
/// the city, from the standing alarms (any others are ignored).
pub fn intact_now(inv: &Inventory, standing: &[Alarm]) -> Vec<IntactNow> {
    let fac = Facilities::new(inv);
    let n = inv.districts.len();
    let mut faulty: HashSet<Place> = HashSet::new();
    // [lamps, circuits, cabinets] faulty per district position, city last.
    let mut per = vec![[0u64; 3]; n + 1];
    for a in standing.iter().filter(|a| a.state.is_standing()) {
        let Some((place, d)) = fac.locate(a) else {
            continue;
        };
        // Two alarms on one facility make it faulty once.
        if !faulty.insert(place) {
            continue;
        }
        let i = match place {
            Place::Lamp(_) => 0,
            Place::Circuit(..) => 1,
            Place::Cabinet(_) => 2,
        };
        per[d][i] += 1;
        per[n][i] += 1;
    }
    let one = |scope: &str, name: &str, facilities: u64, f: [u64; 3]| {
        let intact = facilities - f.iter().sum::<u64>();
        IntactNow {
            scope: scope.to_string(),
            name: name.to_string(),
            facilities,
            intact,
            facility_intact_rate: super::ratio(intact, facilities),
            faulty_lamps: f[0],
            faulty_circuits: f[1],
            faulty_cabinets: f[2],
        }
    };
    let mut out: Vec<IntactNow> = inv
        .districts
        .iter()
        .enumerate()
        .map(|(d, district)| one(&district.id, &district.name, fac.total(d), per[d]))
        .collect();
    let all = (0..n).map(|d| fac.total(d)).sum();
    out.push(one("city", "city", all, per[n]));
    out
}

/// The facility intact rate now of one road class's lamps.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClassIntactNow {
    pub class: RoadClass,
    /// Roads of this class in the scope.
    pub roads: u64,
    /// Lamps on them.
    pub lamps: u64,
    /// Of them, lamps with a fault alarm standing on the lamp or its circuit.
    pub faulty_lamps: u64,
    /// `1 − faulty_lamps / lamps`.
    pub facility_intact_rate: Option<f64>,
    /// `figures.intact_targets` of the class.
    pub target: f64,
    /// `facility_intact_rate ≥ target`; `null` with a `null` rate.
    pub meets_target: Option<bool>,
}

/// The per-class intact rates now (module doc: a window's rule at one
/// moment) of every district position, the city last, from the standing
/// alarms (any others are ignored).
pub fn intact_by_class_now(
    inv: &Inventory,
    standing: &[Alarm],
    targets: &IntactTargets,
) -> Vec<Vec<ClassIntactNow>> {
    let fac = Facilities::new(inv);
    let faulty: HashSet<Place> = standing
        .iter()
        .filter(|a| a.state.is_standing())
        .filter_map(|a| fac.locate(a).map(|(p, _)| p))
        .collect();
    let sums = class_sums(inv, |lamp, circuit| {
        let f = faulty.contains(&lamp) || circuit.is_some_and(|c| faulty.contains(&c));
        i128::from(f)
    });
    sums.into_iter()
        .map(|per| {
            RoadClass::ALL
                .into_iter()
                .zip(per)
                .filter(|(_, x)| x[0] > 0)
                .map(|(class, [roads, lamps, faulty])| {
                    let rate = share(lamps - faulty, lamps);
                    let target = targets.of(class);
                    ClassIntactNow {
                        class,
                        roads: roads as u64,
                        lamps: lamps as u64,
                        faulty_lamps: faulty as u64,
                        facility_intact_rate: rate,
                        target,
                        meets_target: rate.map(|r| r >= target),
                    }
                })
                .collect()
        })
        .collect()
}

/// The alarm figures over [from, to) from the store's `alarms` table: of
/// every district and the city, or (`district`) of that district only. The
/// window ends at now if `to` is later (module doc); a window that starts
/// after now is empty.
pub async fn load(
    db: &Db,
    inv: &Inventory,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    district: Option<&str>,
    targets: &IntactTargets,
) -> Result<AlarmWindow, WindowError> {
    let to = to.min(Utc::now()).max(from);
    let alarms = if to > from {
        db.alarms_in_window(from, to, district).await?
    } else {
        Vec::new()
    };
    let mut w = window(inv, &alarms, from, to, targets);
    if let Some(d) = district {
        w.districts.retain(|s| s.scope == d);
        w.city = None;
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alarm::{AlarmState, DeviceKind};
    use crate::inventory::{Cabinet, District, Framing, Lamp};
    use chrono::Duration;

    /// D1: cabinet K1 (lamps A, B on circuit 1, C on circuit 2), cabinet K2
    /// (lamp D on circuit 1). D2: cabinet K3 (lamp E on circuit 1). D3:
    /// nothing. Facilities: D1 4 lamps + 3 circuits (K1/1, K1/2, K2/1) + 2
    /// cabinets = 9; D2 1 + 1 + 1 = 3; D3 0; city 12.
    fn city() -> Inventory {
        let district = |id: &str| District {
            at: String::new(),
            id: id.into(),
            name: format!("{id} name"),
        };
        let cabinet = |id: &str, d: &str| Cabinet {
            at: String::new(),
            id: id.into(),
            district: d.into(),
            name: String::new(),
            lat: None,
            lon: None,
            circuits: 2,
            endpoint: None,
            link: None,
            framing: Framing::Tcp,
            rtu: None,
        };
        let lamp = |id: &str, c: &str, n: u8| Lamp {
            at: String::new(),
            id: id.into(),
            cabinet: c.into(),
            circuit: n,
            lat: None,
            lon: None,
            rated_power_w: None,
            slc: None,
            road: None,
        };
        Inventory::new(
            vec![district("D1"), district("D2"), district("D3")],
            vec![
                cabinet("K1", "D1"),
                cabinet("K2", "D1"),
                cabinet("K3", "D2"),
            ],
            vec![
                lamp("A", "K1", 1),
                lamp("B", "K1", 1),
                lamp("C", "K1", 2),
                lamp("D", "K2", 1),
                lamp("E", "K3", 1),
            ],
        )
    }

    /// `city()` with roads: R1 (D1, main) has A, B and D; R2 (D1,
    /// landscape) has C; R3 (D2, secondary) has E; R4 (D2, branch) none.
    fn city_with_roads() -> Inventory {
        use crate::inventory::Road;
        let mut inv = city();
        for (lamp, road) in [
            ("A", "R1"),
            ("B", "R1"),
            ("D", "R1"),
            ("C", "R2"),
            ("E", "R3"),
        ] {
            let l = inv.lamp_position(lamp).unwrap();
            inv.lamps[l].road = Some(road.into());
        }
        let road = |id: &str, d: &str, class: RoadClass| Road {
            at: String::new(),
            id: id.into(),
            name: id.into(),
            district: d.into(),
            class,
            lamps_planned: None,
        };
        inv.with_roads(vec![
            road("R1", "D1", RoadClass::Main),
            road("R2", "D1", RoadClass::Landscape),
            road("R3", "D2", RoadClass::Secondary),
            road("R4", "D2", RoadClass::Branch),
        ])
    }

    fn t0() -> DateTime<Utc> {
        "2026-03-01T00:00:00Z".parse().unwrap()
    }

    fn at(s: i64) -> DateTime<Utc> {
        t0() + Duration::seconds(s)
    }

    /// An alarm of `kind` on `device` (a lamp id, `K/n` for a circuit, or
    /// a cabinet), raised at `raised` seconds after t0, with its default
    /// severity's repair time: emergency 1 h, serious 3 days, ordinary 24 h.
    fn alarm(kind: AlarmKind, device: &str, district: &str, raised: i64) -> Alarm {
        let severity = kind.default_severity();
        let repair = match severity {
            Severity::Emergency => 3600,
            Severity::Serious => 3 * 86400,
            Severity::Ordinary => 86400,
        };
        let (device_kind, cabinet, circuit) = match kind.facility() {
            Some(Facility::Circuit) => {
                let (c, n) = device.split_once('/').unwrap();
                (DeviceKind::Circuit, Some(c.into()), n.parse().ok())
            }
            Some(Facility::Cabinet) => (DeviceKind::Cabinet, Some(device.into()), None),
            _ => (DeviceKind::Lamp, None, None),
        };
        Alarm {
            id: raised,
            kind,
            severity,
            state: AlarmState::Active,
            device_kind,
            device_id: device.into(),
            circuit,
            cabinet,
            district: district.into(),
            raised_at: at(raised),
            acknowledged_at: None,
            acknowledged_by: None,
            comment: None,
            cleared_at: None,
            closed_at: None,
            occurrences: 1,
            deadline: at(raised + repair),
            overdue: false,
            detail: serde_json::json!({}),
            version: 1,
        }
    }

    fn cleared(mut a: Alarm, at_s: i64) -> Alarm {
        a.state = AlarmState::Cleared;
        a.cleared_at = Some(at(at_s));
        a
    }

    fn close(got: Option<f64>, want: Option<f64>, what: &str) {
        match (got, want) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{what}: {g} != {w}"),
            _ => assert_eq!(got, want, "{what}"),
        }
    }

    /// The window [t0, t0 + 10000 s) with:
    /// 1. lamp_failure on A (D1, ordinary), raised at −500, cleared at 1000;
    /// 2. power_abnormal on A (D1, ordinary), raised 500, cleared 3000 —
    ///    overlapping 1 on the same lamp;
    /// 3. supply_loss on K1/1 (D1, serious), raised 2000, still standing;
    /// 4. leakage on K2 (D1, emergency: deadline 4000 + 3600 = 7600), raised
    ///    4000, cleared 9000, past its deadline;
    /// 5. comms_lost on D (D1), raised 1000, standing: no fault;
    /// 6. lamp_failure on E (D2), raised 6000, deadline moved to 7000,
    ///    standing;
    /// 7. lamp_failure on C (D1), raised 7000, closed at 7500 without
    ///    clearing (a false alarm).
    fn scenario() -> Vec<Alarm> {
        let mut six = alarm(AlarmKind::LampFailure, "E", "D2", 6000);
        six.deadline = at(7000);
        let mut seven = alarm(AlarmKind::LampFailure, "C", "D1", 7000);
        seven.state = AlarmState::Closed;
        seven.closed_at = Some(at(7500));
        vec![
            cleared(alarm(AlarmKind::LampFailure, "A", "D1", -500), 1000),
            cleared(alarm(AlarmKind::PowerAbnormal, "A", "D1", 500), 3000),
            alarm(AlarmKind::SupplyLoss, "K1/1", "D1", 2000),
            cleared(alarm(AlarmKind::Leakage, "K2", "D1", 4000), 9000),
            alarm(AlarmKind::CommsLost, "D", "D1", 1000),
            six,
            seven,
        ]
    }

    /// The scenario's window per road class, by hand, over [0, 10000):
    /// - A: its own faults [0, 1000) ∪ [500, 3000), its circuit K1/1's
    ///   supply loss [2000, 10000): faulty the whole 10000 s;
    /// - B (K1/1): its circuit's 8000 s; D (K2/1): K2's leakage is the
    ///   cabinet's, comms loss no fault: 0 s;
    /// - C (K1/2): its false alarm [7000, 7500): 500 s;
    /// - E (K3/1): [6000, 10000): 4000 s.
    ///
    /// D1 main (A, B, D): 1 − 18000 / 30000 = 0.4 against 0.95; D1
    /// landscape (C): 1 − 500 / 10000 = 0.95 against 0.90, met; D2
    /// secondary (E): 0.6; D2 branch (R4, no lamp): no rate. The city the
    /// same per class.
    #[test]
    fn the_intact_rate_per_road_class_counts_a_lamp_out_by_its_circuit() {
        let w = window(
            &city_with_roads(),
            &scenario(),
            t0(),
            at(10_000),
            &IntactTargets::default(),
        );
        type Row = (RoadClass, u64, u64, f64, Option<f64>, f64, Option<bool>);
        let classes = |scope: &str| -> Vec<Row> {
            w.scope(scope)
                .unwrap()
                .classes
                .iter()
                .map(|c| {
                    (
                        c.class,
                        c.roads,
                        c.lamps,
                        c.lamp_fault_seconds,
                        c.facility_intact_rate,
                        c.target,
                        c.meets_target,
                    )
                })
                .collect()
        };
        let d1 = classes("D1");
        assert_eq!(d1.len(), 2, "{d1:?}");
        assert_eq!(d1[0].0, RoadClass::Main);
        assert_eq!((d1[0].1, d1[0].2, d1[0].3), (1, 3, 18_000.0));
        close(d1[0].4, Some(0.4), "D1 main");
        assert_eq!((d1[0].5, d1[0].6), (0.95, Some(false)));
        assert_eq!(d1[1].0, RoadClass::Landscape);
        close(d1[1].4, Some(0.95), "D1 landscape");
        assert_eq!((d1[1].5, d1[1].6), (0.90, Some(true)));
        let d2 = classes("D2");
        assert_eq!(d2.len(), 2, "{d2:?}");
        assert_eq!((d2[0].0, d2[0].3), (RoadClass::Secondary, 4000.0));
        close(d2[0].4, Some(0.6), "D2 secondary");
        assert_eq!((d2[1].0, d2[1].2, d2[1].4), (RoadClass::Branch, 0, None));
        assert_eq!(d2[1].6, None);
        assert!(classes("D3").is_empty());
        let city = classes("city");
        assert_eq!(
            city.iter().map(|c| (c.0, c.2)).collect::<Vec<_>>(),
            [
                (RoadClass::Main, 3),
                (RoadClass::Secondary, 1),
                (RoadClass::Branch, 0),
                (RoadClass::Landscape, 1)
            ]
        );
        close(city[0].4, Some(0.4), "city main");
    }

    /// Now, the scenario's alarms in the states they were left in: standing
    /// are 3 (K1/1 supply loss), 5 (comms loss, no fault) and 6 (E). D1 main
    /// (A, B on K1/1; D on K2/1): 2 of 3 faulty, 1/3; D1 landscape (C): 1;
    /// D2 secondary (E): 0; D2 branch: no lamp, no rate.
    #[test]
    fn the_intact_rate_per_road_class_now_counts_a_lamp_out_by_its_circuit() {
        let now = intact_by_class_now(&city_with_roads(), &scenario(), &IntactTargets::default());
        type Row = (RoadClass, u64, u64, u64, Option<f64>, Option<bool>);
        let rows = |d: usize| -> Vec<Row> {
            now[d]
                .iter()
                .map(|c| {
                    (
                        c.class,
                        c.roads,
                        c.lamps,
                        c.faulty_lamps,
                        c.facility_intact_rate,
                        c.meets_target,
                    )
                })
                .collect()
        };
        assert_eq!(
            rows(0),
            [
                (RoadClass::Main, 1, 3, 2, Some(1.0 / 3.0), Some(false)),
                (RoadClass::Landscape, 1, 1, 0, Some(1.0), Some(true)),
            ]
        );
        assert_eq!(
            rows(1),
            [
                (RoadClass::Secondary, 1, 1, 1, Some(0.0), Some(false)),
                (RoadClass::Branch, 1, 0, 0, None, None),
            ]
        );
        assert!(rows(2).is_empty());
        let city = rows(3);
        assert_eq!(
            city[0],
            (RoadClass::Main, 1, 3, 2, Some(1.0 / 3.0), Some(false))
        );
        assert_eq!(city.len(), 4);
    }

    #[test]
    fn a_window_of_overlapping_early_and_open_alarms() {
        let w = window(
            &city(),
            &scenario(),
            t0(),
            at(10_000),
            &IntactTargets::default(),
        );
        assert_eq!(w.window_seconds, 10_000.0);
        assert_eq!(w.districts.len(), 3);
        let d1 = &w.scope("D1").unwrap().figures;
        // Raised in [0, 10000): 2, 3, 4, 5, 7 (1 was raised at −500).
        assert_eq!(d1.raised, 5);
        assert_eq!(d1.raised_by_kind[&AlarmKind::LampFailure], 1);
        assert_eq!(d1.raised_by_kind[&AlarmKind::PowerAbnormal], 1);
        assert_eq!(d1.raised_by_kind[&AlarmKind::SupplyLoss], 1);
        assert_eq!(d1.raised_by_kind[&AlarmKind::Leakage], 1);
        assert_eq!(d1.raised_by_kind[&AlarmKind::CommsLost], 1);
        assert_eq!(d1.raised_by_kind[&AlarmKind::DoorOpen], 0);
        // Cleared in the window: 1, 2, 4 (7 was closed, not repaired).
        assert_eq!(d1.cleared, 3);
        assert_eq!(d1.cleared_by_kind[&AlarmKind::LampFailure], 1);
        // Ordinary repairs: 1 took 1000 − (−500) = 1500 s, 2 took 3000 − 500
        // = 2500 s: mean 2000; p90 is the ⌈1.8⌉ = 2nd smallest, 2500. Both
        // within their 24 h.
        let ord = &d1.repair[&Severity::Ordinary];
        assert_eq!(ord.cleared, 2);
        close(ord.mean_seconds, Some(2000.0), "ordinary mean");
        close(ord.p90_seconds, Some(2500.0), "ordinary p90");
        assert_eq!(ord.within_deadline, 2);
        close(ord.within_deadline_share, Some(1.0), "ordinary share");
        // Emergency: 4 took 5000 s, cleared at 9000 after its 7600 deadline.
        let em = &d1.repair[&Severity::Emergency];
        close(em.mean_seconds, Some(5000.0), "emergency mean");
        close(em.p90_seconds, Some(5000.0), "emergency p90");
        close(em.within_deadline_share, Some(0.0), "emergency share");
        // Serious: none cleared (3 still stands).
        let se = &d1.repair[&Severity::Serious];
        assert_eq!(se.cleared, 0);
        assert_eq!(
            (se.mean_seconds, se.p90_seconds, se.within_deadline_share),
            (None, None, None)
        );
        // Overall 2 of 3 within deadline.
        close(d1.within_deadline_share, Some(2.0 / 3.0), "d1 share");
        // At 10000, 3 (deadline 2000 + 259200) and 5 (1000 + 86400) stand
        // within their deadlines: none overdue in D1.
        assert_eq!(d1.open_overdue, 0);
        // Faulty facility-seconds in D1: lamp A [0, 1000) ∪ [500, 3000) =
        // 3000 (1 clipped at the window's start, the overlap once); circuit
        // K1/1 [2000, 10000) = 8000 (open at the end); cabinet K2 [4000,
        // 9000) = 5000; lamp C [7000, 7500) = 500 (stood until closed);
        // lamp D's comms loss nothing. 3000 + 8000 + 5000 + 500 = 16500 of
        // 9 × 10000 = 90000: intact 73500 / 90000.
        assert_eq!(d1.facilities, 9);
        assert_eq!(d1.facility_seconds, 90_000.0);
        assert_eq!(d1.facility_fault_seconds, 16_500.0);
        assert_eq!(d1.facility_intact_seconds, 73_500.0);
        close(
            d1.facility_intact_rate,
            Some(73_500.0 / 90_000.0),
            "d1 rate",
        );

        let d2 = &w.scope("D2").unwrap().figures;
        // 6 raised at 6000, open at 10000 past its 7000 deadline; lamp E
        // faulty [6000, 10000) = 4000 of 3 × 10000: 26000 / 30000.
        assert_eq!((d2.raised, d2.cleared, d2.open_overdue), (1, 0, 1));
        assert_eq!(d2.within_deadline_share, None);
        assert_eq!(d2.facility_fault_seconds, 4000.0);
        close(
            d2.facility_intact_rate,
            Some(26_000.0 / 30_000.0),
            "d2 rate",
        );

        // D3 has no facilities: its rate is null.
        let d3 = &w.scope("D3").unwrap().figures;
        assert_eq!((d3.facilities, d3.facility_intact_rate), (0, None));

        // The city: 6 raised, 3 cleared, 1 overdue; 20500 faulty of 120000.
        let c = &w.city.as_ref().unwrap().figures;
        assert_eq!((c.raised, c.cleared, c.open_overdue), (6, 3, 1));
        assert_eq!(c.facilities, 12);
        close(
            c.facility_intact_rate,
            Some(99_500.0 / 120_000.0),
            "city rate",
        );
        close(c.within_deadline_share, Some(2.0 / 3.0), "city share");
    }

    #[test]
    fn an_alarm_standing_through_the_whole_window_counts_it_all() {
        // supply_loss on K3/1 (D2) raised a day before, standing after: the
        // circuit is faulty all 10000 s, 1 of D2's 3 facilities: 20000 /
        // 30000. Not raised in the window, not overdue (3 days).
        let a = alarm(AlarmKind::SupplyLoss, "K3/1", "D2", -86400);
        let w = window(&city(), &[a], t0(), at(10_000), &IntactTargets::default());
        let d2 = &w.scope("D2").unwrap().figures;
        assert_eq!((d2.raised, d2.open_overdue), (0, 0));
        assert_eq!(d2.facility_fault_seconds, 10_000.0);
        close(d2.facility_intact_rate, Some(2.0 / 3.0), "rate");
    }

    #[test]
    fn the_90th_percentile_is_the_nearest_rank_for_even_and_odd_counts() {
        // Ten ordinary repairs of 10, 20, …, 100 s (given out of order):
        // ⌈0.9 × 10⌉ = 9th smallest = 90; mean 550 / 10 = 55.
        let ten: Vec<Alarm> = [70, 10, 100, 40, 30, 90, 20, 60, 50, 80]
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                let raised = 100 * i as i64;
                cleared(alarm(AlarmKind::LampFailure, "B", "D1", raised), raised + d)
            })
            .collect();
        let w = window(&city(), &ten, t0(), at(10_000), &IntactTargets::default());
        let ord = &w.scope("D1").unwrap().figures.repair[&Severity::Ordinary];
        assert_eq!(ord.cleared, 10);
        close(ord.p90_seconds, Some(90.0), "p90 of 10");
        close(ord.mean_seconds, Some(55.0), "mean of 10");
        // Eleven, adding 110: ⌈9.9⌉ = 10th smallest = 100; mean 660 / 11 = 60.
        let mut eleven = ten;
        eleven.push(cleared(
            alarm(AlarmKind::LampFailure, "B", "D1", 5000),
            5110,
        ));
        let w = window(
            &city(),
            &eleven,
            t0(),
            at(10_000),
            &IntactTargets::default(),
        );
        let ord = &w.scope("D1").unwrap().figures.repair[&Severity::Ordinary];
        close(ord.p90_seconds, Some(100.0), "p90 of 11");
        close(ord.mean_seconds, Some(60.0), "mean of 11");
        assert_eq!(p90(&[]), None);
        assert_eq!(p90(&[7]), Some(7));
    }

    #[test]
    fn an_empty_window_has_null_ratios() {
        // No alarms: no repairs (null), nothing overdue, every facility
        // intact (rate 1 where there are facilities, null in D3).
        let w = window(&city(), &[], t0(), at(3600), &IntactTargets::default());
        let d1 = &w.scope("D1").unwrap().figures;
        assert_eq!((d1.raised, d1.cleared, d1.open_overdue), (0, 0, 0));
        for r in d1.repair.values() {
            assert_eq!((r.mean_seconds, r.p90_seconds), (None, None));
            assert_eq!(r.within_deadline_share, None);
        }
        assert_eq!(d1.within_deadline_share, None);
        close(d1.facility_intact_rate, Some(1.0), "d1");
        assert_eq!(w.scope("D3").unwrap().figures.facility_intact_rate, None);
        // A window of no length: no facility-seconds, every rate null.
        let w = window(&city(), &scenario(), t0(), t0(), &IntactTargets::default());
        let c = &w.city.as_ref().unwrap().figures;
        assert_eq!(c.facility_seconds, 0.0);
        assert_eq!(c.facility_intact_rate, None);
        assert_eq!((c.raised, c.cleared), (0, 0));
    }

    #[test]
    fn intact_now_counts_each_faulty_facility_once_and_no_comms_loss() {
        // Standing: lamp_failure and power_abnormal on A (one lamp),
        // supply_loss on K1/1, comms_lost on D (no fault) in D1; leakage on
        // K3 in D2; a cleared lamp_failure on E (not standing); a lamp not
        // in the inventory.
        let standing = vec![
            alarm(AlarmKind::LampFailure, "A", "D1", 0),
            alarm(AlarmKind::PowerAbnormal, "A", "D1", 10),
            alarm(AlarmKind::SupplyLoss, "K1/1", "D1", 20),
            alarm(AlarmKind::CommsLost, "D", "D1", 30),
            alarm(AlarmKind::Leakage, "K3", "D2", 40),
            cleared(alarm(AlarmKind::LampFailure, "E", "D2", 50), 60),
            alarm(AlarmKind::LampFailure, "GONE", "D1", 70),
        ];
        let now = intact_now(&city(), &standing);
        let scopes: Vec<&str> = now.iter().map(|s| s.scope.as_str()).collect();
        assert_eq!(scopes, ["D1", "D2", "D3", "city"]);
        // D1: 9 facilities, lamp A and circuit K1/1 faulty: 7 / 9.
        assert_eq!(
            (now[0].facilities, now[0].intact, now[0].faulty_lamps),
            (9, 7, 1)
        );
        assert_eq!((now[0].faulty_circuits, now[0].faulty_cabinets), (1, 0));
        close(now[0].facility_intact_rate, Some(7.0 / 9.0), "d1");
        // D2: 3 facilities, cabinet K3 faulty: 2 / 3.
        assert_eq!((now[1].intact, now[1].faulty_cabinets), (2, 1));
        close(now[1].facility_intact_rate, Some(2.0 / 3.0), "d2");
        assert_eq!(now[2].facility_intact_rate, None);
        // City: 12 facilities, 3 faulty: 9 / 12.
        assert_eq!((now[3].facilities, now[3].intact), (12, 9));
        close(now[3].facility_intact_rate, Some(0.75), "city");
    }
}
