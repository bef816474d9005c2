//! The evaluation-grade lighting rate (亮灯率) now, per road, road class,
//! district and city: every lamp of the inventory counted, not only those
//! whose SLC answers, so the rate cannot read higher than an inspector's
//! count. This is the rule's only home; an auditor recomputes it from here.
//!
//! # One verdict per lamp
//!
//! Every lamp of the inventory gets one of: not expected, lit, dark,
//! unknown, estimated lit, estimated dark. (A lamp of an unknown cabinet is
//! counted nowhere; the configuration check refuses one.)
//!
//! 1. **Lamp with an SLC, SLC online**: the lighting rule
//!    ([`crate::lighting`], through [`LiveState::lighting`]) on the SLC's
//!    last reading — not expected; lit (expected, drawing more than its
//!    profile's threshold, no lamp failure); else dark.
//! 2. **Lamp with an SLC, SLC offline or never polled**: whether it should
//!    be lit is [`lighting::expected_unobserved`] — the schedule for a lamp
//!    a calendar governs, else its circuit's contactor when the cabinet's
//!    RTU is online and not commanded off by the last confirmed command.
//!    "No": not expected. Otherwise — yes, or nothing tells — **unknown**:
//!    nobody can see whether it burns.
//! 3. **Lamp without an SLC**: [`lighting::expected_unobserved`] the same
//!    way (it has no relay: it burns when its circuit is energised). "No":
//!    not expected; nothing tells (no schedule, no online RTU): unknown;
//!    "yes": estimated from its cabinet's meter (4), or unknown when the
//!    cabinet has no online RTU that reports its active power.
//! 4. **The estimate, per cabinet.** The cabinet RTU meters the cabinet, not
//!    each circuit: its active power is one figure for all its circuits, so
//!    the estimate is a count for the cabinet, never a finding about a
//!    particular lamp.
//!    - `P = max(0, RTU active power − Σ power measured by the cabinet's
//!      online SLCs)` (W): what the lamps without an SLC draw;
//!    - `n` = the cabinet's lamps without an SLC that should be lit (3);
//!    - `mean` = the mean `rated_power_w` of those of the `n` that have one;
//!    - `k = min(n, round(P ÷ mean))`, rounding half away from zero;
//!    - `k` of them are estimated lit, `n − k` estimated dark; with no
//!      `mean` (none of them has a rated power) all `n` are unknown.
//!
//!    What the subtraction cannot see is in `P` too: the lamps of offline
//!    SLCs (what they draw now is not known), controllers' standby, line
//!    losses. The rounding absorbs less than half a mean lamp of it; the
//!    cap at `n` bounds the rest. The estimate assumes lamps at full power:
//!    a cabinet-wide dimmer (voltage regulator) lowers `P` and with it `k`.
//! 5. **Sharing `k` among roads.** The `n` lamps are grouped by road (those
//!    without a road form one group). A group of `n_g` lamps gets
//!    `floor(k × n_g ÷ n)`; the lamps left over go one each to the groups
//!    with the largest remainders `(k × n_g) mod n`, a tie to the group
//!    whose first lamp comes first in `lamps.csv` (the largest-remainder
//!    method). Within a group the first lamps in `lamps.csv` order are the
//!    estimated lit ones (the counts do not depend on which).
//!
//! # The counts
//!
//! For each road, each district's `(no road)` row (its lamps without a
//! road), each road class of a district and of the city, each district and
//! the city:
//!
//! - `lamps_total`: the lamps of the inventory there;
//! - `lamps_expected_lit`: those that should be lit — lit, dark and unknown;
//! - `lamps_lit`: lit and estimated lit; `lamps_dark`: dark and estimated
//!   dark; `lamps_unknown`; `lamps_estimated`: estimated lit and dark;
//! - `lighting_rate = lamps_lit ÷ D`, where `D = lamps_expected_lit` under
//!   `figures.unknown_counts_as = "dark"` (the default) and
//!   `D = lamps_expected_lit − lamps_unknown` under `"excluded"`; `null`
//!   when `D = 0`.
//!
//! Per road also: `class`; `lamps_planned` (from `roads.csv`);
//! `installation_rate` (装灯率) `= lamps_total ÷ lamps_planned`, `null` where
//! not planned (or 0); `dark_cap` = `figures.dark_caps` for `lamps_total`;
//! `over_cap` = the dark lamps — `lamps_dark`, plus `lamps_unknown` under
//! `"dark"` — above `dark_cap`; `target` = `figures.lighting_targets` of
//! its class; `meets_target` = `lighting_rate ≥ target` and not `over_cap`
//! (`null` with a `null` rate). The `(no road)` row has no class, cap or
//! target. Per road class: the roads of that class (`roads`), their counts
//! summed, the rate, `target`, `meets_target = lighting_rate ≥ target`, and
//! `roads_over_cap`. A district and the city count all their lamps, those
//! without a road too, and list the classes they have roads of.
//!
//! Everything comes from one copy of the live state, taken in one pass
//! under its read lock; the estimate and the sums are made after the lock
//! is released.

use super::config::{FiguresSettings, UnknownPolicy};
use super::ratio;
use crate::inventory::{Road, RoadClass};
use crate::lighting;
use crate::state::LiveState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// The name of the row of a district's lamps without a road.
pub const NO_ROAD: &str = "(no road)";

/// What the evaluation finds for one lamp now (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    NotExpected,
    Lit,
    Dark,
    Unknown,
    EstimatedLit,
    EstimatedDark,
}

/// The lamps of one scope by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LightingCounts {
    pub lamps_total: u64,
    /// Lit, dark and unknown: the lamps that should be lit.
    pub lamps_expected_lit: u64,
    /// Lit, estimated lit included.
    pub lamps_lit: u64,
    /// Dark, estimated dark included.
    pub lamps_dark: u64,
    /// Should be lit (or nothing tells), and nobody can see whether they are.
    pub lamps_unknown: u64,
    /// Lamps without an SLC whose state is estimated from their cabinet's meter.
    pub lamps_estimated: u64,
}

impl LightingCounts {
    fn count(&mut self, v: Verdict) {
        self.lamps_total += 1;
        let (expected, lit, dark, unknown, estimated) = match v {
            Verdict::NotExpected => (0, 0, 0, 0, 0),
            Verdict::Lit => (1, 1, 0, 0, 0),
            Verdict::Dark => (1, 0, 1, 0, 0),
            Verdict::Unknown => (1, 0, 0, 1, 0),
            Verdict::EstimatedLit => (1, 1, 0, 0, 1),
            Verdict::EstimatedDark => (1, 0, 1, 0, 1),
        };
        self.lamps_expected_lit += expected;
        self.lamps_lit += lit;
        self.lamps_dark += dark;
        self.lamps_unknown += unknown;
        self.lamps_estimated += estimated;
    }

    fn add(&mut self, o: &LightingCounts) {
        self.lamps_total += o.lamps_total;
        self.lamps_expected_lit += o.lamps_expected_lit;
        self.lamps_lit += o.lamps_lit;
        self.lamps_dark += o.lamps_dark;
        self.lamps_unknown += o.lamps_unknown;
        self.lamps_estimated += o.lamps_estimated;
    }

    /// Lit ÷ should be lit, the unknown ones counted by `policy`.
    pub fn lighting_rate(&self, policy: UnknownPolicy) -> Option<f64> {
        lighting_rate(
            self.lamps_lit,
            self.lamps_expected_lit,
            self.lamps_unknown,
            policy,
        )
    }

    /// The dark lamps a cap is held against: the unknown ones too when they
    /// count as dark.
    pub fn dark_counted(&self, policy: UnknownPolicy) -> u64 {
        match policy {
            UnknownPolicy::Dark => self.lamps_dark + self.lamps_unknown,
            UnknownPolicy::Excluded => self.lamps_dark,
        }
    }
}

/// THE dark-lamp cap rule: a road is over its cap when its dark lamps
/// (the unknown ones too under `"dark"`) are more than `cap`. Now, and at
/// every tick the sampler credits (`super::sampler`), both ways.
pub fn over_cap(counts: &LightingCounts, cap: u64, policy: UnknownPolicy) -> bool {
    counts.dark_counted(policy) > cap
}

/// THE lighting rate (module doc, "The counts"): `lit ÷ D`, `D` the lamps
/// that should be lit, less the unknown ones under `"excluded"`; `None`
/// when `D = 0`. Lamps now and lamp-seconds over a window
/// (`super::evaluation_window`) both go through here, in whole numbers (a
/// window's are lamp-milliseconds), so a window whose lamps held still
/// gives the rate now to the last digit.
pub fn lighting_rate(lit: u64, expected: u64, unknown: u64, policy: UnknownPolicy) -> Option<f64> {
    let den = match policy {
        UnknownPolicy::Dark => expected,
        // `unknown ≤ expected` by construction; saturating keeps a
        // malformed stored row from panicking a figure.
        UnknownPolicy::Excluded => expected.saturating_sub(unknown),
    };
    ratio(lit, den)
}

/// Whether a lighting rate reaches its class's target; `None` with no rate.
/// A road now must also keep within its dark-lamp cap (`RoadRow`).
pub fn meets_target(rate: Option<f64>, target: f64) -> Option<bool> {
    rate.map(|r| r >= target)
}

/// One road's evaluation, or a district's lamps without a road.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoadRow {
    /// The road's id; `null` for the district's lamps without a road.
    pub road: Option<String>,
    /// The road's name, or `(no road)`.
    pub name: String,
    pub district: String,
    /// `null` for `(no road)`.
    pub class: Option<RoadClass>,
    #[serde(flatten)]
    pub counts: LightingCounts,
    pub lighting_rate: Option<f64>,
    /// Lamps planned on the road (装灯), where `roads.csv` gives them.
    pub lamps_planned: Option<u32>,
    /// 装灯率: lamps in the inventory ÷ lamps planned.
    pub installation_rate: Option<f64>,
    /// The most dark lamps a road of its size may have.
    pub dark_cap: Option<u64>,
    /// More dark lamps than `dark_cap` (unknown ones counted as dark under
    /// `unknown_counts_as = "dark"`).
    pub over_cap: Option<bool>,
    /// The lighting-rate target of its class.
    pub target: Option<f64>,
    /// `lighting_rate ≥ target` and not `over_cap`; `null` with a `null` rate.
    pub meets_target: Option<bool>,
}

/// 装灯率: the lamps the inventory puts on a road ÷ the lamps planned on it;
/// `None` where nothing is planned (or 0). Now and over windows alike.
pub fn installation_rate(lamps: u64, planned: Option<u32>) -> Option<f64> {
    planned.and_then(|p| ratio(lamps, u64::from(p)))
}

impl RoadRow {
    fn road(r: &Road, counts: LightingCounts, s: &FiguresSettings) -> Self {
        let policy = s.unknown_counts_as;
        let rate = counts.lighting_rate(policy);
        let cap = s.dark_caps.cap(counts.lamps_total);
        let over_cap = over_cap(&counts, cap, policy);
        let target = s.lighting_targets.of(r.class);
        Self {
            road: Some(r.id.clone()),
            name: r.name.clone(),
            district: r.district.clone(),
            class: Some(r.class),
            counts,
            lighting_rate: rate,
            lamps_planned: r.lamps_planned,
            installation_rate: installation_rate(counts.lamps_total, r.lamps_planned),
            dark_cap: Some(cap),
            over_cap: Some(over_cap),
            target: Some(target),
            meets_target: meets_target(rate, target).map(|m| m && !over_cap),
        }
    }

    fn no_road(district: &str, counts: LightingCounts, policy: UnknownPolicy) -> Self {
        Self {
            road: None,
            name: NO_ROAD.into(),
            district: district.into(),
            class: None,
            counts,
            lighting_rate: counts.lighting_rate(policy),
            lamps_planned: None,
            installation_rate: None,
            dark_cap: None,
            over_cap: None,
            target: None,
            meets_target: None,
        }
    }
}

/// One road class within a district or the city.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClassRow {
    pub class: RoadClass,
    /// Roads of this class in the scope.
    pub roads: u64,
    #[serde(flatten)]
    pub counts: LightingCounts,
    pub lighting_rate: Option<f64>,
    pub target: f64,
    /// `lighting_rate ≥ target`; `null` with a `null` rate.
    pub meets_target: Option<bool>,
    /// Roads of this class over their dark-lamp cap.
    pub roads_over_cap: u64,
}

/// A district's or the city's evaluation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScopeRow {
    /// `city` or the district id.
    pub scope: String,
    pub name: String,
    #[serde(flatten)]
    pub counts: LightingCounts,
    pub lighting_rate: Option<f64>,
    /// The road classes it has roads of, in class order.
    pub classes: Vec<ClassRow>,
}

/// The evaluation of the whole city at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub at: DateTime<Utc>,
    pub unknown_counts_as: UnknownPolicy,
    /// By district in inventory order: its roads in `roads.csv` order, then
    /// its `(no road)` row if it has lamps without a road.
    pub roads: Vec<RoadRow>,
    pub districts: Vec<ScopeRow>,
    pub city: ScopeRow,
    /// Every lamp's verdict, by inventory position.
    #[serde(skip)]
    pub verdicts: Vec<Verdict>,
}

/// How many of a cabinet's `expected` lamps without an SLC are lit, from
/// its RTU's active power `rtu_w`, the power its online SLCs measure
/// `slc_w`, and the rated power of those lamps (`rated_sum` over the
/// `rated_n` that have one): step 4 of the module doc. `None`: no basis.
pub fn estimate_lit(
    rtu_w: f64,
    slc_w: f64,
    expected: u64,
    rated_sum: f64,
    rated_n: u64,
) -> Option<u64> {
    if rated_n == 0 || rated_sum.is_nan() || rated_sum <= 0.0 {
        return None;
    }
    let mean = rated_sum / rated_n as f64;
    // `max` drops a NaN from a meter that reads garbage: nothing is drawn.
    let plain = (rtu_w - slc_w).max(0.0);
    // `as` saturates: an absurd reading is capped like any other.
    Some(((plain / mean).round() as u64).min(expected))
}

/// Shares `k` lamps among groups of `sizes` lamps (Σ sizes ≥ k) by the
/// largest-remainder method, ties to the earlier group: step 5.
pub fn apportion(k: u64, sizes: &[u64]) -> Vec<u64> {
    let n: u64 = sizes.iter().sum();
    if n == 0 {
        return vec![0; sizes.len()];
    }
    let k = k.min(n);
    let mut share: Vec<u64> = sizes.iter().map(|&g| k * g / n).collect();
    let left = k - share.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    // A stable sort keeps the earlier group first among equal remainders.
    order.sort_by_key(|&g| std::cmp::Reverse(k * sizes[g] % n));
    for &g in order.iter().take(left as usize) {
        share[g] += 1;
    }
    share
}

/// What one cabinet's lamps without an SLC that should be lit add up to.
#[derive(Debug, Default, Clone)]
struct Pending {
    lamps: u64,
    rated_sum: f64,
    rated_n: u64,
    /// (road position or `u32::MAX` for none, lamps), in order of first lamp.
    groups: Vec<(u32, u64)>,
}

/// Every lamp's verdict: one pass under the state's read lock, the
/// estimate after it.
fn verdicts(live: &LiveState) -> Vec<Verdict> {
    let inv = &*live.inventory;
    let cabinets = inv.cabinets.len();
    let mut verdicts: Vec<Verdict> = Vec::with_capacity(inv.lamps.len());
    // Lamps without an SLC that should be lit, waiting for their cabinet's
    // estimate (their place in `verdicts` holds estimated dark meanwhile).
    let mut waiting: Vec<(usize, usize)> = Vec::new();
    let mut rtu_w: Vec<Option<f64>> = vec![None; cabinets];
    let mut slc_w = vec![0.0f64; cabinets];
    {
        let inner = live.read();
        for (ci, c) in inv.cabinets.iter().enumerate() {
            let rtu = &inner.rtus[ci];
            if c.rtu.is_some() && rtu.online {
                rtu_w[ci] = rtu.reading.as_ref().and_then(|r| r.active_power);
            }
        }
        for (li, lamp) in inv.lamps.iter().enumerate() {
            let Some(ci) = inv.cabinet_of_lamp(li) else {
                verdicts.push(Verdict::NotExpected);
                continue;
            };
            let slc = &inner.lamps[li];
            let has_slc = lamp.slc.is_some();
            let v = if has_slc && slc.online {
                slc_w[ci] += slc.reading.as_ref().and_then(|r| r.power).unwrap_or(0.0);
                let j = live.lighting(&inner, li);
                match (j.expected, j.lit) {
                    (false, _) => Verdict::NotExpected,
                    (true, true) => Verdict::Lit,
                    (true, false) => Verdict::Dark,
                }
            } else {
                let commanded = if has_slc { inner.commanded[li] } else { None };
                let expected = lighting::expected_unobserved(
                    inner.scheduled[li],
                    live.contactor(&inner, li),
                    commanded,
                );
                match expected {
                    Some(false) => Verdict::NotExpected,
                    Some(true) if !has_slc => {
                        waiting.push((li, ci));
                        Verdict::EstimatedDark
                    }
                    _ => Verdict::Unknown,
                }
            };
            verdicts.push(v);
        }
    }
    // The lock is released: the estimate per cabinet.
    let mut pending: Vec<Pending> = vec![Pending::default(); cabinets];
    // Each waiting lamp's group within its cabinet.
    let mut group_of: Vec<usize> = Vec::with_capacity(waiting.len());
    for &(li, ci) in &waiting {
        let p = &mut pending[ci];
        p.lamps += 1;
        if let Some(w) = inv.lamps[li].rated_power_w {
            p.rated_sum += w;
            p.rated_n += 1;
        }
        let road = inv.road_of_lamp(li).map_or(u32::MAX, |r| r as u32);
        let g = match p.groups.iter().position(|(r, _)| *r == road) {
            Some(g) => g,
            None => {
                p.groups.push((road, 0));
                p.groups.len() - 1
            }
        };
        p.groups[g].1 += 1;
        group_of.push(g);
    }
    // Per cabinet and group: how many are still to be marked lit; `None`
    // where there is no basis (the lamps are unknown).
    let mut lit_left: Vec<Option<Vec<u64>>> = vec![None; cabinets];
    for (ci, p) in pending.iter().enumerate() {
        if p.lamps == 0 {
            continue;
        }
        let k = rtu_w[ci].and_then(|w| estimate_lit(w, slc_w[ci], p.lamps, p.rated_sum, p.rated_n));
        if let Some(k) = k {
            let sizes: Vec<u64> = p.groups.iter().map(|g| g.1).collect();
            lit_left[ci] = Some(apportion(k, &sizes));
        }
    }
    // In `lamps.csv` order, so the first lamps of a group are the lit ones.
    for (&(li, ci), &g) in waiting.iter().zip(&group_of) {
        verdicts[li] = match lit_left[ci].as_mut() {
            None => Verdict::Unknown,
            Some(left) if left[g] > 0 => {
                left[g] -= 1;
                Verdict::EstimatedLit
            }
            Some(_) => Verdict::EstimatedDark,
        };
    }
    verdicts
}

/// Accumulates one road class of one scope.
#[derive(Debug, Clone, Copy, Default)]
struct ClassSum {
    roads: u64,
    counts: LightingCounts,
    over_cap: u64,
}

impl ClassSum {
    fn add(&mut self, o: &ClassSum) {
        self.roads += o.roads;
        self.counts.add(&o.counts);
        self.over_cap += o.over_cap;
    }
}

fn class_rows(sums: &[ClassSum; 6], s: &FiguresSettings) -> Vec<ClassRow> {
    RoadClass::ALL
        .into_iter()
        .zip(sums)
        .filter(|(_, c)| c.roads > 0)
        .map(|(class, c)| {
            let rate = c.counts.lighting_rate(s.unknown_counts_as);
            let target = s.lighting_targets.of(class);
            ClassRow {
                class,
                roads: c.roads,
                counts: c.counts,
                lighting_rate: rate,
                target,
                meets_target: meets_target(rate, target),
                roads_over_cap: c.over_cap,
            }
        })
        .collect()
}

/// The evaluation now, under `settings`' policy, targets and caps.
pub fn evaluate(live: &LiveState, settings: &FiguresSettings) -> Evaluation {
    let at = Utc::now();
    let inv = &*live.inventory;
    let verdicts = verdicts(live);
    let policy = settings.unknown_counts_as;
    let districts = inv.districts.len();
    let mut per_road = vec![LightingCounts::default(); inv.roads.len()];
    let mut no_road = vec![LightingCounts::default(); districts];
    let mut per_district = vec![LightingCounts::default(); districts];
    for (li, &v) in verdicts.iter().enumerate() {
        let Some(d) = inv
            .cabinet_of_lamp(li)
            .and_then(|c| inv.district_of_cabinet(c))
        else {
            continue;
        };
        per_district[d].count(v);
        match inv.road_of_lamp(li) {
            Some(r) => per_road[r].count(v),
            None => no_road[d].count(v),
        }
    }
    let mut rows: Vec<Vec<RoadRow>> = vec![Vec::new(); districts];
    let mut classes = vec![[ClassSum::default(); 6]; districts];
    for (r, road) in inv.roads.iter().enumerate() {
        let Some(d) = inv.district_position(&road.district) else {
            continue;
        };
        let row = RoadRow::road(road, per_road[r], settings);
        let sum = &mut classes[d][road.class as usize];
        sum.roads += 1;
        sum.counts.add(&row.counts);
        sum.over_cap += u64::from(row.over_cap == Some(true));
        rows[d].push(row);
    }
    let mut city = LightingCounts::default();
    let mut city_classes = [ClassSum::default(); 6];
    let mut scope_rows = Vec::with_capacity(districts);
    for (d, district) in inv.districts.iter().enumerate() {
        if no_road[d].lamps_total > 0 {
            rows[d].push(RoadRow::no_road(&district.id, no_road[d], policy));
        }
        city.add(&per_district[d]);
        for (c, sum) in city_classes.iter_mut().zip(&classes[d]) {
            c.add(sum);
        }
        scope_rows.push(ScopeRow {
            scope: district.id.clone(),
            name: district.name.clone(),
            counts: per_district[d],
            lighting_rate: per_district[d].lighting_rate(policy),
            classes: class_rows(&classes[d], settings),
        });
    }
    Evaluation {
        at,
        unknown_counts_as: policy,
        roads: rows.into_iter().flatten().collect(),
        districts: scope_rows,
        city: ScopeRow {
            scope: "city".into(),
            name: "city".into(),
            counts: city,
            lighting_rate: city.lighting_rate(policy),
            classes: class_rows(&city_classes, settings),
        },
        verdicts,
    }
}

/// The evaluation now, reused for up to `ttl` and made stale at once by a
/// confirmed command or a new schedule expectation, as `super::NowCache`
/// keeps the summary: each computation walks every lamp under the state's
/// read lock. One caller computes while the others wait for its result.
#[derive(Debug)]
pub struct EvaluationCache {
    ttl: std::time::Duration,
    settings: FiguresSettings,
    slot: parking_lot::Mutex<Option<(std::time::Instant, u64, Arc<Evaluation>)>>,
}

impl EvaluationCache {
    pub fn new(ttl: std::time::Duration, settings: FiguresSettings) -> Self {
        Self {
            ttl,
            settings,
            slot: parking_lot::Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &FiguresSettings {
        &self.settings
    }

    /// The evaluation now, from the cache when it is fresh. Blocks while
    /// another caller computes it: call it off the async workers.
    pub fn get(&self, live: &LiveState) -> Arc<Evaluation> {
        let mut slot = self.slot.lock();
        let writes = live.writes_applied();
        match &*slot {
            Some((at, w, e)) if at.elapsed() < self.ttl && *w == writes => e.clone(),
            _ => {
                let at = std::time::Instant::now();
                let e = Arc::new(evaluate(live, &self.settings));
                *slot = Some((at, writes, e.clone()));
                e
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Cabinet, District, Framing, Inventory, Lamp, RtuSpec, SlcSpec};
    use crate::state::{PollOutcome, Reading, RtuReading, SlcReading};
    use crate::topology::{DeviceKey, PollClass, Topology};
    use Verdict::*;

    #[test]
    fn the_estimate_rounds_caps_and_needs_a_rating() {
        // 350 W over 120 W a lamp: 2.92 → 3.
        assert_eq!(estimate_lit(450.0, 100.0, 5, 600.0, 5), Some(3));
        // Half a lamp rounds up: 150 W at 100 W a lamp is 2 (1.5 → 2).
        assert_eq!(estimate_lit(150.0, 0.0, 4, 400.0, 4), Some(2));
        // Less than half a lamp of standby and losses is no lamp.
        assert_eq!(estimate_lit(1049.0, 1000.0, 4, 400.0, 4), Some(0));
        // The SLCs measure more than the meter: nothing, not below 0.
        assert_eq!(estimate_lit(100.0, 300.0, 4, 400.0, 4), Some(0));
        // 10 lamps' worth on a cabinet of 3 expected: 3.
        assert_eq!(estimate_lit(1000.0, 0.0, 3, 300.0, 3), Some(3));
        // The mean is over the lamps with a rating: 2 of 3 rated 150 W.
        assert_eq!(estimate_lit(300.0, 0.0, 3, 300.0, 2), Some(2));
        assert_eq!(estimate_lit(300.0, 0.0, 3, 0.0, 0), None, "no rating");
        assert_eq!(estimate_lit(f64::NAN, 0.0, 3, 300.0, 3), Some(0));
    }

    #[test]
    fn the_largest_remainder_shares_the_estimate() {
        // 3 of 5: quotas 1.2, 1.2, 0.6 → 1, 1, 0 and the one left over to
        // the largest remainder (0.6).
        assert_eq!(apportion(3, &[2, 2, 1]), [1, 1, 1]);
        // 1 of 4 over two groups of 2: a tie (0.5, 0.5) → the first group.
        assert_eq!(apportion(1, &[2, 2]), [1, 0]);
        // 7 of 10 over 5, 3, 2: 3.5, 2.1, 1.4 → 3, 2, 1, one left → group 0.
        assert_eq!(apportion(7, &[5, 3, 2]), [4, 2, 1]);
        assert_eq!(apportion(0, &[3, 4]), [0, 0]);
        assert_eq!(apportion(7, &[3, 4]), [3, 4]);
        assert_eq!(apportion(2, &[]), Vec::<u64>::new());
    }

    fn district(id: &str) -> District {
        District {
            at: String::new(),
            id: id.into(),
            name: format!("District {id}"),
        }
    }

    fn cabinet(id: &str, district: &str, rtu: bool) -> Cabinet {
        Cabinet {
            at: String::new(),
            id: id.into(),
            district: district.into(),
            name: String::new(),
            lat: None,
            lon: None,
            circuits: 2,
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

    /// A lamp: `slc` with an SLC, on `road`, of `rated` W.
    fn lamp(id: &str, cab: &str, circuit: u8, road: Option<&str>, slc: bool, rated: f64) -> Lamp {
        Lamp {
            at: String::new(),
            id: id.into(),
            cabinet: cab.into(),
            circuit,
            lat: None,
            lon: None,
            rated_power_w: Some(rated),
            slc: slc.then(|| SlcSpec {
                id: format!("S-{id}"),
                profile: "slc-a-unit".into(),
                unit: 2,
                index: None,
            }),
            road: road.map(str::to_string),
        }
    }

    fn road(id: &str, district: &str, class: RoadClass, planned: Option<u32>) -> Road {
        Road {
            at: String::new(),
            id: id.into(),
            name: format!("Road {id}"),
            district: district.into(),
            class,
            lamps_planned: planned,
        }
    }

    fn slc(on: bool, power: f64, flags: u16) -> Result<Reading, crate::state::FailReason> {
        Ok(Reading::Slc(SlcReading {
            on,
            dim_level: 100.0,
            voltage: Some(220.0),
            current: None,
            power: Some(power),
            power_factor: None,
            energy_kwh: None,
            burning_hours: None,
            fault_flags: flags,
        }))
    }

    fn rtu(contactors: [bool; 2], power: f64) -> Result<Reading, crate::state::FailReason> {
        Ok(Reading::Rtu(RtuReading {
            contactors: contactors.to_vec(),
            voltage: [Some(220.0); 3],
            current: [None; 3],
            active_power: Some(power),
            energy_kwh: None,
            door_alarm: false,
            leakage_alarm: false,
        }))
    }

    fn poll(
        live: &LiveState,
        class: PollClass,
        results: Vec<(DeviceKey, Result<Reading, crate::state::FailReason>)>,
    ) {
        live.apply(
            PollOutcome {
                endpoint: 0,
                class,
                at: Utc::now(),
                connected: true,
                sent: true,
                elapsed: std::time::Duration::ZERO,
                reads_ok: 0,
                reads_failed: 0,
                results,
            },
            false,
        );
    }

    /// The hand-worked city. D1: cabinet K1 (RTU online, circuits 1 and 2
    /// closed, 450 W) and K2 (RTU never answered); D2: K3 (no RTU). Roads A
    /// (D1, main, 10 planned), B (D1, branch), C (D2, landscape).
    ///
    /// | # | lamp | cab | circ | road | SLC | state | verdict |
    /// |---|---|---|---|---|---|---|---|
    /// | 0 | s1 | K1 | 1 | A | yes | on, 100 W | lit |
    /// | 1 | s2 | K1 | 1 | A | yes | on, lamp failure, 0 W | dark |
    /// | 2 | s3 | K1 | 2 | B | yes | never answered, contactor 2 closed | unknown |
    /// | 3 | s4 | K1 | 2 | B | yes | relay off, 0 W | not expected |
    /// | 4–7 | p1–p4 | K1 | 1 | A, A, B, B | no | 100 W rated | estimated |
    /// | 8 | p5 | K1 | 2 | — | no | 200 W rated | estimated |
    /// | 9 | s5 | K2 | 1 | B | yes | on, 100 W, 220 V | lit |
    /// | 10 | p6 | K2 | 1 | B | no | no RTU answer | unknown |
    /// | 11 | p7 | K2 | 1 | B | no | scheduled off | not expected |
    /// | 12 | p8 | K3 | 1 | C | no | scheduled on, no RTU | unknown |
    /// | 13 | p9 | K3 | 1 | C | no | no schedule, no RTU | unknown |
    /// | 14 | s6 | K3 | 1 | C | yes | scheduled on, on, 100 W | lit |
    /// | 15 | s7 | K3 | 1 | C | yes | never answered, scheduled off | not expected |
    ///
    /// K1's estimate: P = 450 − 100 (s1; s2 and s4 draw 0; s3 is offline)
    /// = 350 W; n = 5 (p1–p5, both circuits closed); mean = (4 × 100 + 200)
    /// ÷ 5 = 120 W; k = round(2.92) = 3. Shared over A (2 lamps), B (2),
    /// no road (1): 3 × 2 ÷ 5 = 1.2, 1.2, 0.6 → 1, 1, 0, and the one left to
    /// the largest remainder, no road: A 1 (p1 lit, p2 dark), B 1 (p3 lit,
    /// p4 dark), no road 1 (p5 lit).
    fn city() -> LiveState {
        let inv = Inventory::new(
            vec![district("D1"), district("D2")],
            vec![
                cabinet("K1", "D1", true),
                cabinet("K2", "D1", true),
                cabinet("K3", "D2", false),
            ],
            vec![
                lamp("s1", "K1", 1, Some("A"), true, 100.0),
                lamp("s2", "K1", 1, Some("A"), true, 100.0),
                lamp("s3", "K1", 2, Some("B"), true, 100.0),
                lamp("s4", "K1", 2, Some("B"), true, 100.0),
                lamp("p1", "K1", 1, Some("A"), false, 100.0),
                lamp("p2", "K1", 1, Some("A"), false, 100.0),
                lamp("p3", "K1", 1, Some("B"), false, 100.0),
                lamp("p4", "K1", 1, Some("B"), false, 100.0),
                lamp("p5", "K1", 2, None, false, 200.0),
                lamp("s5", "K2", 1, Some("B"), true, 100.0),
                lamp("p6", "K2", 1, Some("B"), false, 100.0),
                lamp("p7", "K2", 1, Some("B"), false, 100.0),
                lamp("p8", "K3", 1, Some("C"), false, 100.0),
                lamp("p9", "K3", 1, Some("C"), false, 100.0),
                lamp("s6", "K3", 1, Some("C"), true, 100.0),
                lamp("s7", "K3", 1, Some("C"), true, 100.0),
            ],
        )
        .with_roads(vec![
            road("A", "D1", RoadClass::Main, Some(10)),
            road("B", "D1", RoadClass::Branch, None),
            road("C", "D2", RoadClass::Landscape, None),
        ]);
        let live = LiveState::new(Arc::new(inv), &Topology { endpoints: vec![] }, 3);
        poll(
            &live,
            PollClass::Rtu,
            vec![(DeviceKey::Rtu(0), rtu([true, true], 450.0))],
        );
        let lamp = DeviceKey::Lamp;
        poll(
            &live,
            PollClass::Slc,
            vec![
                (lamp(0), slc(true, 100.0, 0)),
                (lamp(1), slc(true, 0.0, crate::state::LAMP_FAILURE_BIT)),
                (lamp(3), slc(false, 0.0, 0)),
                (lamp(9), slc(true, 100.0, 0)),
                (lamp(14), slc(true, 100.0, 0)),
            ],
        );
        let mut scheduled = vec![None; 16];
        scheduled[11] = Some(false);
        scheduled[12] = Some(true);
        scheduled[14] = Some(true);
        scheduled[15] = Some(false);
        live.set_scheduled(scheduled);
        live
    }

    /// total, expected, lit, dark, unknown, estimated
    fn counts(c: [u64; 6]) -> LightingCounts {
        LightingCounts {
            lamps_total: c[0],
            lamps_expected_lit: c[1],
            lamps_lit: c[2],
            lamps_dark: c[3],
            lamps_unknown: c[4],
            lamps_estimated: c[5],
        }
    }

    #[test]
    fn every_lamp_of_the_hand_worked_city_has_its_verdict() {
        let live = city();
        let e = evaluate(&live, &FiguresSettings::default());
        assert_eq!(
            e.verdicts,
            [
                Lit,
                Dark,
                Unknown,
                NotExpected,
                EstimatedLit,
                EstimatedDark,
                EstimatedLit,
                EstimatedDark,
                EstimatedLit,
                Lit,
                Unknown,
                NotExpected,
                Unknown,
                Unknown,
                Lit,
                NotExpected,
            ]
        );
    }

    #[test]
    fn the_hand_worked_city_under_both_policies() {
        let live = city();
        let dark = evaluate(&live, &FiguresSettings::default());
        let excluded = evaluate(
            &live,
            &FiguresSettings {
                unknown_counts_as: UnknownPolicy::Excluded,
                ..FiguresSettings::default()
            },
        );
        // Counts do not depend on the policy; rates and caps do.
        for e in [&dark, &excluded] {
            let names: Vec<_> = e
                .roads
                .iter()
                .map(|r| (r.district.as_str(), r.name.as_str()))
                .collect();
            assert_eq!(
                names,
                [
                    ("D1", "Road A"),
                    ("D1", "Road B"),
                    ("D1", NO_ROAD),
                    ("D2", "Road C")
                ]
            );
            // A: s1 s2 p1 p2, all expected: lit s1 p1, dark s2 p2, p1 p2 estimated.
            assert_eq!(e.roads[0].counts, counts([4, 4, 2, 2, 0, 2]));
            // B: s3 s4 p3 p4 s5 p6 p7; expected s3 p3 p4 s5 p6; lit p3 s5;
            // dark p4; unknown s3 p6; estimated p3 p4.
            assert_eq!(e.roads[1].counts, counts([7, 5, 2, 1, 2, 2]));
            // No road: p5, estimated lit.
            assert_eq!(e.roads[2].counts, counts([1, 1, 1, 0, 0, 1]));
            assert_eq!(e.roads[2].road, None);
            // C: p8 p9 s6 s7; expected p8 p9 s6; lit s6; unknown p8 p9.
            assert_eq!(e.roads[3].counts, counts([4, 3, 1, 0, 2, 0]));
            // Districts: the sums of their rows; the city: of the districts.
            assert_eq!(e.districts[0].counts, counts([12, 10, 5, 3, 2, 5]));
            assert_eq!(e.districts[1].counts, counts([4, 3, 1, 0, 2, 0]));
            assert_eq!(e.city.counts, counts([16, 13, 6, 3, 4, 5]));
            // A: 4 lamps of 10 planned; under 100 lamps, 2 dark allowed.
            assert_eq!(e.roads[0].installation_rate, Some(0.4));
            assert_eq!(e.roads[0].dark_cap, Some(2));
            assert_eq!(e.roads[1].installation_rate, None, "none planned");
            assert_eq!(e.roads[2].dark_cap, None, "no road, no cap");
        }
        let rates = |e: &Evaluation| -> Vec<Option<f64>> {
            e.roads
                .iter()
                .map(|r| r.lighting_rate)
                .chain(e.districts.iter().map(|d| d.lighting_rate))
                .chain([e.city.lighting_rate])
                .collect()
        };
        // Dark: lit ÷ expected. A 2/4, B 2/5, no road 1/1, C 1/3; D1 5/10,
        // D2 1/3; city 6/13.
        assert_eq!(
            rates(&dark),
            [0.5, 0.4, 1.0, 1.0 / 3.0, 0.5, 1.0 / 3.0, 6.0 / 13.0].map(Some)
        );
        // Excluded: lit ÷ (expected − unknown). A 2/4, B 2/3, no road 1/1,
        // C 1/1; D1 5/8, D2 1/1; city 6/9.
        assert_eq!(
            rates(&excluded),
            [0.5, 2.0 / 3.0, 1.0, 1.0, 0.625, 1.0, 6.0 / 9.0].map(Some)
        );
        // B's dark lamps against its cap of 2: p4 and, counted dark, s3 and
        // p6 = 3 > 2; excluded, p4 alone. C: 2 unknown = 2, not over.
        let caps =
            |e: &Evaluation| -> Vec<Option<bool>> { e.roads.iter().map(|r| r.over_cap).collect() };
        assert_eq!(caps(&dark), [Some(false), Some(true), None, Some(false)]);
        assert_eq!(
            caps(&excluded),
            [Some(false), Some(false), None, Some(false)]
        );
        // Targets: A main 0.98 (0.5: no), B branch 0.96 (no), C landscape
        // 0.95: 1/3 no, excluded 1.0 yes.
        let meets = |e: &Evaluation| -> Vec<Option<bool>> {
            e.roads.iter().map(|r| r.meets_target).collect()
        };
        assert_eq!(meets(&dark), [Some(false), Some(false), None, Some(false)]);
        assert_eq!(
            meets(&excluded),
            [Some(false), Some(false), None, Some(true)]
        );
        // Classes: D1 has main (A) and branch (B); D2 landscape (C); the
        // city all three, each one road.
        type ClassFigures = (RoadClass, u64, Option<f64>, Option<bool>, u64);
        let classes = |s: &ScopeRow| -> Vec<ClassFigures> {
            s.classes
                .iter()
                .map(|c| {
                    (
                        c.class,
                        c.roads,
                        c.lighting_rate,
                        c.meets_target,
                        c.roads_over_cap,
                    )
                })
                .collect()
        };
        assert_eq!(
            classes(&dark.districts[0]),
            [
                (RoadClass::Main, 1, Some(0.5), Some(false), 0),
                (RoadClass::Branch, 1, Some(0.4), Some(false), 1),
            ]
        );
        assert_eq!(
            classes(&excluded.city),
            [
                (RoadClass::Main, 1, Some(0.5), Some(false), 0),
                (RoadClass::Branch, 1, Some(2.0 / 3.0), Some(false), 0),
                (RoadClass::Landscape, 1, Some(1.0), Some(true), 0),
            ]
        );
        assert_eq!(dark.city.classes[2].target, 0.95);
    }

    #[test]
    fn an_open_contactor_takes_its_circuit_out_of_what_should_be_lit() {
        let live = city();
        // K1 opens circuit 1: s1, s2 and p1–p4 should not be lit; s1 now
        // reads 0 W and 0 V. The meter reads 200 W: p5 alone (200 W rated)
        // should be lit, 200 ÷ 200 = 1 lamp: estimated lit.
        poll(
            &live,
            PollClass::Rtu,
            vec![(DeviceKey::Rtu(0), rtu([false, true], 200.0))],
        );
        poll(
            &live,
            PollClass::Slc,
            vec![(DeviceKey::Lamp(0), slc(true, 0.0, 0))],
        );
        let e = evaluate(&live, &FiguresSettings::default());
        assert_eq!(
            &e.verdicts[..9],
            [
                NotExpected,
                NotExpected,
                Unknown,
                NotExpected,
                NotExpected,
                NotExpected,
                NotExpected,
                NotExpected,
                EstimatedLit,
            ]
        );
        // Road A has nothing that should be lit: no rate, no verdict.
        assert_eq!(e.roads[0].counts, counts([4, 0, 0, 0, 0, 0]));
        assert_eq!(
            (e.roads[0].lighting_rate, e.roads[0].meets_target),
            (None, None)
        );
        assert_eq!(e.roads[0].over_cap, Some(false));
        // The RTU goes offline (3 failed polls): K1's lamps without an SLC
        // are unknown; s3 stays unknown.
        for _ in 0..3 {
            poll(
                &live,
                PollClass::Rtu,
                vec![(DeviceKey::Rtu(0), Err(crate::state::FailReason::Timeout))],
            );
        }
        let e = evaluate(&live, &FiguresSettings::default());
        assert_eq!(&e.verdicts[4..9], [Unknown; 5]);
    }
}
