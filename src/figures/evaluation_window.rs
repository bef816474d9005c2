//! The evaluation-grade lighting figures over a window [from, to): per
//! road, road class, district and city, from the lamp-time the evaluation
//! sampler counted (`super::sampler`: the verdicts of
//! `super::evaluation` — the figures now — each standing until the next
//! tick). An auditor recomputes them from `evaluation_hourly` by this doc.
//!
//! # The figures
//!
//! - **Hours.** The hours that start in [from, to) (as the district
//!   lighting rollup counts them), every gateway run's rows of them added
//!   up: a restart's two runs in one hour are both counted, once each.
//! - **Lamp-seconds** of a scope: `lamps_expected_lit_seconds` (lamps that
//!   should be lit × the time they were judged so: lit, dark and unknown),
//!   `lamps_lit_seconds` (estimated lit included), `lamps_dark_seconds`
//!   (estimated dark included), `lamps_unknown_seconds`,
//!   `lamps_estimated_seconds`. Summed as whole lamp-milliseconds, so a
//!   figure does not depend on the order of its terms.
//! - **`lighting_rate`** = `lamps_lit_seconds ÷ D` by THE formula of the
//!   figures now ([`super::evaluation::lighting_rate`]): `D` the expected
//!   lamp-seconds, less the unknown ones under `figures.unknown_counts_as =
//!   "excluded"`; `null` when `D = 0`. Over a window in which every verdict
//!   held still it is the rate now, to the last digit.
//! - **Per road** (the current inventory's roads, in `roads.csv` order by
//!   district): its counts, rate, `target` of its class and `meets_target`
//!   = `lighting_rate ≥ target` and `over_cap_seconds = 0` (`null` with a
//!   `null` rate). **The dark-lamp cap over a window**: at every tick the
//!   sampler holds the road's dark lamps against the cap for its size then
//!   by THE rule of the figures now ([`super::evaluation::over_cap`]), and
//!   credits the tick's time to `over_cap_seconds` when over; both ways at
//!   once (dark lamps only, and the unknown ones counted dark), so the
//!   window follows `unknown_counts_as` as set when it is read.
//!   `dark_lamps_max` is the most dark lamps at one tick, the same way;
//!   `dark_cap` the cap for the road's size now. An inspector may come at
//!   any moment: a road over its cap at any time of the window did not
//!   meet its target, however good its rate. Each district's lamps
//!   on no road are its `(no road)` row (no class, no target), listed when
//!   it has lamps on no road now or lamp-time there in the window.
//! - **Per road class** of a district and of the city: the roads of that
//!   class (`roads`, in the current inventory), their lamp-seconds summed,
//!   the rate, `target`, `meets_target` (the rate's), `roads_over_cap`
//!   (its roads with `over_cap_seconds > 0`).
//! - **A district** counts all its rows, its `(no road)` row too, and rows
//!   of roads no longer in the inventory (time that was seen; they are in no
//!   road or class row); **the city** counts every row, those of districts
//!   no longer in the inventory too.
//! - **`observed_seconds`**: the time the evaluation covered — a district's
//!   from its `(no road)` rows (written every tick), the city's per hour
//!   and run the longest of its districts'; **`coverage`** = that ÷ the
//!   length of the hours counted (up to now for the hour under way); `null`
//!   when no hour has begun. Time the gateway did not run, or a stalled
//!   sampler did not count, lowers coverage, not the rate.

use super::config::{FiguresSettings, UnknownPolicy};
use super::evaluation::{installation_rate, lighting_rate, meets_target, NO_ROAD};
use super::window::{self, WindowError};
use crate::inventory::{Inventory, RoadClass};
use crate::store::read::evaluation::EvaluationTotals;
use crate::store::Db;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

const HOUR_US: i64 = 3_600_000_000;

/// Lamp-milliseconds of one scope over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LampMs {
    pub expected_lit: u64,
    pub lit: u64,
    pub dark: u64,
    pub unknown: u64,
    pub estimated: u64,
}

impl LampMs {
    fn of(t: &EvaluationTotals) -> Self {
        // A negative sum can only be a damaged row: nothing, not a panic.
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            expected_lit: n(t.expected_lit_ms),
            lit: n(t.lit_ms),
            dark: n(t.dark_ms),
            unknown: n(t.unknown_ms),
            estimated: n(t.estimated_ms),
        }
    }

    fn add(&mut self, o: &LampMs) {
        self.expected_lit += o.expected_lit;
        self.lit += o.lit;
        self.dark += o.dark;
        self.unknown += o.unknown;
        self.estimated += o.estimated;
    }

    fn is_zero(&self) -> bool {
        *self == LampMs::default()
    }

    pub fn lighting_rate(&self, policy: UnknownPolicy) -> Option<f64> {
        lighting_rate(self.lit, self.expected_lit, self.unknown, policy)
    }

    fn seconds(&self) -> LampSeconds {
        let s = |ms: u64| ms as f64 / 1000.0;
        LampSeconds {
            lamps_expected_lit_seconds: s(self.expected_lit),
            lamps_lit_seconds: s(self.lit),
            lamps_dark_seconds: s(self.dark),
            lamps_unknown_seconds: s(self.unknown),
            lamps_estimated_seconds: s(self.estimated),
        }
    }
}

/// A road's dark-lamp cap over the window under one policy (module doc):
/// the time over it and the worst tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CapTime {
    over_ms: u64,
    dark_max: u64,
}

impl CapTime {
    fn of(t: &EvaluationTotals, policy: UnknownPolicy) -> Self {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        match policy {
            UnknownPolicy::Dark => Self {
                over_ms: n(t.over_cap_with_unknown_ms),
                dark_max: n(t.dark_with_unknown_max),
            },
            UnknownPolicy::Excluded => Self {
                over_ms: n(t.over_cap_ms),
                dark_max: n(t.dark_max),
            },
        }
    }
}

/// A scope's lamp-seconds over the window (module doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LampSeconds {
    /// Lamps that should have been lit × the time: lit, dark and unknown.
    pub lamps_expected_lit_seconds: f64,
    /// Lit, estimated lit included.
    pub lamps_lit_seconds: f64,
    /// Dark, estimated dark included.
    pub lamps_dark_seconds: f64,
    /// Should have been lit (or nothing told), and nobody could see.
    pub lamps_unknown_seconds: f64,
    /// Lamps without an SLC estimated from their cabinet's meter.
    pub lamps_estimated_seconds: f64,
}

/// One road over the window, or a district's lamps on no road.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoadWindow {
    /// The road's id; `null` for the district's lamps without a road.
    pub road: Option<String>,
    /// The road's name, or `(no road)`.
    pub name: String,
    pub district: String,
    /// `null` for `(no road)`.
    pub class: Option<RoadClass>,
    #[serde(flatten)]
    pub seconds: LampSeconds,
    pub lighting_rate: Option<f64>,
    /// The lighting-rate target of its class.
    pub target: Option<f64>,
    /// `lighting_rate ≥ target` and never over its dark-lamp cap in the
    /// window (`over_cap_seconds = 0`); `null` with a `null` rate or no
    /// class.
    pub meets_target: Option<bool>,
    /// The most dark lamps a road of its size may have (its size now).
    pub dark_cap: Option<u64>,
    /// The most dark lamps at one evaluation tick of the window (the
    /// unknown ones counted dark under `unknown_counts_as = "dark"`).
    pub dark_lamps_max: Option<u64>,
    /// Time in the window its dark lamps were over the cap for its size.
    pub over_cap_seconds: Option<f64>,
    /// Lamps the inventory puts on the road (as of the report).
    pub lamps_total: u64,
    /// Lamps planned on the road (装灯), where `roads.csv` gives them.
    pub lamps_planned: Option<u32>,
    /// 装灯率: `lamps_total ÷ lamps_planned`; `null` where not planned.
    pub installation_rate: Option<f64>,
    /// The sums the seconds are made from.
    #[serde(skip)]
    pub ms: LampMs,
}

/// One road class of a district or the city over the window.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClassWindow {
    pub class: RoadClass,
    /// Roads of this class in the scope (the current inventory).
    pub roads: u64,
    #[serde(flatten)]
    pub seconds: LampSeconds,
    pub lighting_rate: Option<f64>,
    pub target: f64,
    /// `lighting_rate ≥ target`; `null` with a `null` rate.
    pub meets_target: Option<bool>,
    /// Roads of this class over their dark-lamp cap at some time in the
    /// window.
    pub roads_over_cap: u64,
    #[serde(skip)]
    pub ms: LampMs,
}

/// A district or the city over the window.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScopeWindow {
    /// `city` or the district id.
    pub scope: String,
    pub name: String,
    #[serde(flatten)]
    pub seconds: LampSeconds,
    pub lighting_rate: Option<f64>,
    /// The time the evaluation covered, in seconds.
    pub observed_seconds: f64,
    /// `observed_seconds` ÷ the length of the hours counted (up to now).
    pub coverage: Option<f64>,
    /// The road classes it has roads of, in class order.
    pub classes: Vec<ClassWindow>,
    #[serde(skip)]
    pub ms: LampMs,
}

/// The evaluation over a window, of the city or of one district.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvaluationWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub unknown_counts_as: UnknownPolicy,
    /// By district in inventory order: its roads in `roads.csv` order,
    /// then its `(no road)` row.
    pub roads: Vec<RoadWindow>,
    pub districts: Vec<ScopeWindow>,
    /// `None` for one district.
    pub city: Option<ScopeWindow>,
}

/// The length (µs) of the hours starting in [from, to), each up to `now`.
pub fn hours_length_us(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let (from, to, now) = (
        from.timestamp_micros(),
        to.timestamp_micros(),
        now.timestamp_micros(),
    );
    let mut hour = from.div_euclid(HOUR_US) * HOUR_US;
    if hour < from {
        hour += HOUR_US;
    }
    let mut total = 0;
    while hour < to {
        total += ((hour + HOUR_US).min(now) - hour).max(0);
        hour += HOUR_US;
    }
    total
}

/// Sums of one road class in a scope.
#[derive(Debug, Clone, Copy, Default)]
struct ClassSum {
    roads: u64,
    over_cap: u64,
    ms: LampMs,
}

fn class_rows(sums: &[ClassSum; 6], s: &FiguresSettings) -> Vec<ClassWindow> {
    RoadClass::ALL
        .into_iter()
        .zip(sums)
        .filter(|(_, c)| c.roads > 0)
        .map(|(class, c)| {
            let rate = c.ms.lighting_rate(s.unknown_counts_as);
            let target = s.lighting_targets.of(class);
            ClassWindow {
                class,
                roads: c.roads,
                seconds: c.ms.seconds(),
                lighting_rate: rate,
                target,
                meets_target: meets_target(rate, target),
                roads_over_cap: c.over_cap,
                ms: c.ms,
            }
        })
        .collect()
}

/// The figures from the totals the store gave (module doc): `totals` of
/// [`Db::evaluation_totals`] for `district` (or all), `city_sampled_ms` of
/// [`Db::evaluation_sampled_ms`] city-wide (unused for one district).
#[allow(clippy::too_many_arguments)]
pub fn fold(
    inventory: &Inventory,
    settings: &FiguresSettings,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    district: Option<&str>,
    now: DateTime<Utc>,
    totals: &[EvaluationTotals],
    city_sampled_ms: i64,
) -> EvaluationWindow {
    let policy = settings.unknown_counts_as;
    let possible_us = hours_length_us(from, to, now);
    let coverage = |ms: i64| {
        (possible_us > 0).then(|| (ms.max(0) as f64 * 1000.0 / possible_us as f64).min(1.0))
    };
    let by_scope: HashMap<(&str, &str), &EvaluationTotals> = totals
        .iter()
        .map(|t| ((t.district.as_str(), t.road.as_str()), t))
        .collect();
    let mut on_no_road = vec![0u64; inventory.districts.len()];
    let mut on_road = vec![0u64; inventory.roads.len()];
    for li in 0..inventory.lamps.len() {
        match inventory.road_of_lamp(li) {
            Some(r) => on_road[r] += 1,
            None => {
                if let Some(d) = inventory
                    .cabinet_of_lamp(li)
                    .and_then(|c| inventory.district_of_cabinet(c))
                {
                    on_no_road[d] += 1;
                }
            }
        }
    }
    let mut roads = Vec::new();
    let mut districts = Vec::new();
    let mut city_classes = [ClassSum::default(); 6];
    for (d, dist) in inventory.districts.iter().enumerate() {
        if district.is_some_and(|id| id != dist.id) {
            continue;
        }
        let mut classes = [ClassSum::default(); 6];
        for (ri, r) in inventory
            .roads
            .iter()
            .enumerate()
            .filter(|(_, r)| r.district == dist.id)
        {
            let ms = by_scope
                .get(&(dist.id.as_str(), r.id.as_str()))
                .map_or_else(LampMs::default, |t| LampMs::of(t));
            let rate = ms.lighting_rate(policy);
            let target = settings.lighting_targets.of(r.class);
            let caps = by_scope
                .get(&(dist.id.as_str(), r.id.as_str()))
                .map_or_else(CapTime::default, |t| CapTime::of(t, policy));
            let sum = &mut classes[r.class as usize];
            sum.roads += 1;
            sum.over_cap += u64::from(caps.over_ms > 0);
            sum.ms.add(&ms);
            roads.push(RoadWindow {
                road: Some(r.id.clone()),
                name: r.name.clone(),
                district: dist.id.clone(),
                class: Some(r.class),
                seconds: ms.seconds(),
                lighting_rate: rate,
                target: Some(target),
                meets_target: meets_target(rate, target).map(|m| m && caps.over_ms == 0),
                dark_cap: Some(settings.dark_caps.cap(on_road[ri])),
                dark_lamps_max: Some(caps.dark_max),
                over_cap_seconds: Some(caps.over_ms as f64 / 1000.0),
                lamps_total: on_road[ri],
                lamps_planned: r.lamps_planned,
                installation_rate: installation_rate(on_road[ri], r.lamps_planned),
                ms,
            });
        }
        let no_road = by_scope.get(&(dist.id.as_str(), ""));
        let ms = no_road.map_or_else(LampMs::default, |t| LampMs::of(t));
        if on_no_road[d] > 0 || !ms.is_zero() {
            roads.push(RoadWindow {
                road: None,
                name: NO_ROAD.into(),
                district: dist.id.clone(),
                class: None,
                seconds: ms.seconds(),
                lighting_rate: ms.lighting_rate(policy),
                target: None,
                meets_target: None,
                dark_cap: None,
                dark_lamps_max: None,
                over_cap_seconds: None,
                lamps_total: on_no_road[d],
                lamps_planned: None,
                installation_rate: None,
                ms,
            });
        }
        // Every row of the district: its roads, no road, and roads gone
        // from the inventory since.
        let mut all = LampMs::default();
        for t in totals.iter().filter(|t| t.district == dist.id) {
            all.add(&LampMs::of(t));
        }
        for (c, sum) in city_classes.iter_mut().zip(&classes) {
            c.roads += sum.roads;
            c.over_cap += sum.over_cap;
            c.ms.add(&sum.ms);
        }
        let sampled = no_road.map_or(0, |t| t.sampled_ms);
        districts.push(ScopeWindow {
            scope: dist.id.clone(),
            name: dist.name.clone(),
            seconds: all.seconds(),
            lighting_rate: all.lighting_rate(policy),
            observed_seconds: sampled.max(0) as f64 / 1000.0,
            coverage: coverage(sampled),
            classes: class_rows(&classes, settings),
            ms: all,
        });
    }
    let city = district.is_none().then(|| {
        let mut all = LampMs::default();
        for t in totals {
            all.add(&LampMs::of(t));
        }
        ScopeWindow {
            scope: "city".into(),
            name: "city".into(),
            seconds: all.seconds(),
            lighting_rate: all.lighting_rate(policy),
            observed_seconds: city_sampled_ms.max(0) as f64 / 1000.0,
            coverage: coverage(city_sampled_ms),
            classes: class_rows(&city_classes, settings),
            ms: all,
        }
    });
    EvaluationWindow {
        from,
        to,
        unknown_counts_as: policy,
        roads,
        districts,
        city,
    }
}

/// The evaluation over [from, to) (at most `window::MAX_WINDOW`) of the
/// city, or of `district` only, as of `now`: two reads of
/// `evaluation_hourly`, one row per road whatever the window's length.
pub async fn load(
    db: &Db,
    inventory: &Inventory,
    settings: &FiguresSettings,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    district: Option<&str>,
    now: DateTime<Utc>,
) -> Result<EvaluationWindow, WindowError> {
    window::check(from, to, None)?;
    let totals = db.evaluation_totals(from, to, district).await?;
    let city_sampled_ms = match district {
        None => db.evaluation_sampled_ms(from, to, None).await?,
        Some(_) => 0,
    };
    Ok(fold(
        inventory,
        settings,
        from,
        to,
        district,
        now,
        &totals,
        city_sampled_ms,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Backend, Batch, EvaluationRow};

    /// D1 North: roads A (main) and B (branch), a lamp on no road. D2 South:
    /// road C (landscape), every lamp on it.
    fn inventory(dir: &std::path::Path) -> Inventory {
        std::fs::write(dir.join("districts.csv"), "id,name\nD1,North\nD2,South\n").unwrap();
        std::fs::write(
            dir.join("cabinets.csv"),
            "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
             K1,D1,,,,2,,,,,\n\
             K2,D2,,,,2,,,,,\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("roads.csv"),
            "id,name,district,class\nA,Road A,D1,main\nB,Road B,D1,branch\nC,Road C,D2,landscape\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("lamps.csv"),
            "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index,road\n\
             a1,K1,1,,,100,,,,,A\n\
             b1,K1,1,,,100,,,,,B\n\
             n1,K1,2,,,100,,,,,\n\
             c1,K2,1,,,100,,,,,C\n",
        )
        .unwrap();
        let (inv, issues) = crate::inventory::load_dir(dir);
        assert!(issues.is_empty(), "{issues:?}");
        inv
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A row of `seconds` figures: [sampled, expected, lit, dark, unknown,
    /// estimated].
    fn row(hour: &str, d: &str, road: &str, run: &str, seq: i64, s: [i64; 6]) -> EvaluationRow {
        EvaluationRow {
            hour_us: t(hour).timestamp_micros(),
            district: d.into(),
            road: road.into(),
            run_id: run.into(),
            seq,
            sampled_ms: s[0] * 1000,
            expected_lit_ms: s[1] * 1000,
            lit_ms: s[2] * 1000,
            dark_ms: s[3] * 1000,
            unknown_ms: s[4] * 1000,
            estimated_ms: s[5] * 1000,
            over_cap_ms: 0,
            over_cap_with_unknown_ms: 0,
            dark_max: 0,
            dark_with_unknown_max: 0,
        }
    }

    const H0: &str = "2025-03-15T10:00:00Z";
    const H1: &str = "2025-03-15T11:00:00Z";

    /// Run r1 evaluated 10:00–10:30 (its last total, seq 7, and a stale one,
    /// seq 3, arriving after it, as a replay behind held rows would); the
    /// gateway was down 10:30–10:40; run r2 evaluated 10:40–11:10. Per
    /// scope, in seconds [sampled, expected, lit, dark, unknown, estimated]:
    ///
    /// | run, hour | A (4 lamps) | B (2) | D1 no road (1) | C (3) | D2 no road |
    /// |---|---|---|---|---|---|
    /// | r1 10:00 | 1800: 7200, 5400, 1800, 0, 1800 | 3600, 1800, 0, 1800, 0 | 1800, 1800, 0, 0, 1800 | 5400, 5400, 0, 0, 0 | 0 |
    /// | r2 10:00 | 1200: 4800, 4800, 0, 0, 0 | 2400, 2400, 0, 0, 0 | 1200, 0, 1200, 0, 1200 | 3600, 2400, 1200, 0, 0 | 0 |
    /// | r2 11:00 | 600: 2400, 2400, 0, 0, 0 | 1200, 1200, 0, 0, 0 | 600, 600, 0, 0, 600 | 1800, 1800, 0, 0, 0 | 0 |
    ///
    /// and r2 at 11:00 on road Z of D1, gone from the inventory since: 600
    /// expected, 600 dark.
    fn rows() -> Vec<Vec<EvaluationRow>> {
        let r1 = |seq, stale: bool| {
            let k = if stale { 3 } else { 1 };
            let s = |v: [i64; 6]| v.map(|x| x / k);
            vec![
                row(
                    H0,
                    "D1",
                    "A",
                    "r1",
                    seq,
                    s([1800, 7200, 5400, 1800, 0, 1800]),
                ),
                row(H0, "D1", "B", "r1", seq, s([1800, 3600, 1800, 0, 1800, 0])),
                row(H0, "D1", "", "r1", seq, s([1800, 1800, 1800, 0, 0, 1800])),
                row(H0, "D2", "C", "r1", seq, s([1800, 5400, 5400, 0, 0, 0])),
                row(H0, "D2", "", "r1", seq, s([1800, 0, 0, 0, 0, 0])),
            ]
        };
        let r2 = vec![
            row(H0, "D1", "A", "r2", 2, [1200, 4800, 4800, 0, 0, 0]),
            row(H0, "D1", "B", "r2", 2, [1200, 2400, 2400, 0, 0, 0]),
            row(H0, "D1", "", "r2", 2, [1200, 1200, 0, 1200, 0, 1200]),
            row(H0, "D2", "C", "r2", 2, [1200, 3600, 2400, 1200, 0, 0]),
            row(H0, "D2", "", "r2", 2, [1200, 0, 0, 0, 0, 0]),
            row(H1, "D1", "A", "r2", 3, [600, 2400, 2400, 0, 0, 0]),
            row(H1, "D1", "B", "r2", 3, [600, 1200, 1200, 0, 0, 0]),
            row(H1, "D1", "", "r2", 3, [600, 600, 600, 0, 0, 600]),
            row(H1, "D1", "Z", "r2", 3, [600, 600, 0, 600, 0, 0]),
            row(H1, "D2", "C", "r2", 3, [600, 1800, 1800, 0, 0, 0]),
            row(H1, "D2", "", "r2", 3, [600, 0, 0, 0, 0, 0]),
        ];
        vec![r1(7, false), r1(3, true), r2]
    }

    async fn store(dir: &std::path::Path) -> Db {
        store_of(dir, rows()).await
    }

    async fn store_of(dir: &std::path::Path, batches: Vec<Vec<EvaluationRow>>) -> Db {
        let db = Db::connect_lazy(&Backend::Sqlite(dir.join("store.db")), 1)
            .unwrap()
            .unwrap();
        db.migrate().await.unwrap();
        for rows in batches {
            db.write(&Batch {
                evaluation: rows,
                ..Batch::default()
            })
            .await
            .unwrap();
        }
        db
    }

    /// [expected, lit, dark, unknown, estimated] in seconds.
    fn secs(s: &LampSeconds) -> [f64; 5] {
        [
            s.lamps_expected_lit_seconds,
            s.lamps_lit_seconds,
            s.lamps_dark_seconds,
            s.lamps_unknown_seconds,
            s.lamps_estimated_seconds,
        ]
    }

    #[tokio::test]
    async fn time_over_the_dark_cap_adds_up_its_worst_tick_is_kept_and_it_fails_the_target() {
        // Over-cap figures [over, over with unknown, dark max, dark with
        // unknown max] on the rows of `rows()`: A r1 10:00 [0, 0, 1, 1],
        // A r2 10:00 [300 s, 300 s, 3, 3]; B r1 10:00 [0, 1800 s, 0, 2],
        // B r2 11:00 [0, 600 s, 0, 1]; the stale r1 total (seq 3) says A
        // was over 3600 s: never counted.
        let mut batches = rows();
        for r in batches.iter_mut().flatten() {
            let f: [i64; 4] = match (r.road.as_str(), r.run_id.as_str(), r.seq, r.hour_us) {
                ("A", "r1", 7, _) => [0, 0, 1, 1],
                ("A", "r1", 3, _) => [3_600_000, 3_600_000, 9, 9],
                ("A", "r2", _, h) if h == t(H0).timestamp_micros() => [300_000, 300_000, 3, 3],
                ("B", "r1", 7, _) => [0, 1_800_000, 0, 2],
                ("B", "r2", _, h) if h == t(H1).timestamp_micros() => [0, 600_000, 0, 1],
                _ => continue,
            };
            r.over_cap_ms = f[0];
            r.over_cap_with_unknown_ms = f[1];
            r.dark_max = f[2];
            r.dark_with_unknown_max = f[3];
        }
        let dir = tempfile::tempdir().unwrap();
        let inv = inventory(dir.path());
        let db = store_of(dir.path(), batches).await;
        let excluded = FiguresSettings {
            unknown_counts_as: UnknownPolicy::Excluded,
            ..FiguresSettings::default()
        };
        let now = t("2025-03-15T11:10:00Z");
        let (from, to) = (t(H0), t("2025-03-15T12:00:00Z"));
        let caps = |w: &EvaluationWindow| -> Vec<(Option<f64>, Option<u64>, Option<u64>)> {
            w.roads
                .iter()
                .map(|r| (r.over_cap_seconds, r.dark_lamps_max, r.dark_cap))
                .collect()
        };
        let cap1 = FiguresSettings::default().dark_caps.cap(1);
        let w = load(&db, &inv, &FiguresSettings::default(), from, to, None, now)
            .await
            .unwrap();
        assert_eq!(
            caps(&w),
            [
                (Some(300.0), Some(3), Some(cap1)),
                (Some(2400.0), Some(2), Some(cap1)),
                (None, None, None),
                (Some(0.0), Some(0), Some(cap1)),
            ]
        );
        let wx = load(&db, &inv, &excluded, from, to, None, now)
            .await
            .unwrap();
        assert_eq!(
            caps(&wx),
            [
                (Some(300.0), Some(3), Some(cap1)),
                (Some(0.0), Some(0), Some(cap1)),
                (None, None, None),
                (Some(0.0), Some(0), Some(cap1)),
            ]
        );
        // B meets its branch target under "excluded" (rate 1) and was never
        // over its cap counting dark lamps only.
        assert_eq!(wx.roads[1].meets_target, Some(true));
        let over = |w: &EvaluationWindow| -> Vec<(RoadClass, u64)> {
            let city = w.city.as_ref().unwrap();
            city.classes
                .iter()
                .map(|c| (c.class, c.roads_over_cap))
                .collect()
        };
        assert_eq!(
            over(&w),
            [
                (RoadClass::Main, 1),
                (RoadClass::Branch, 1),
                (RoadClass::Landscape, 0)
            ]
        );
        assert_eq!(
            over(&wx),
            [
                (RoadClass::Main, 1),
                (RoadClass::Branch, 0),
                (RoadClass::Landscape, 0)
            ]
        );

        // A rate that meets its target does not, over its cap: road C with
        // a landscape target the rate passes.
        let lenient = FiguresSettings {
            lighting_targets: crate::figures::config::LightingTargets {
                landscape: 0.5,
                ..Default::default()
            },
            ..excluded.clone()
        };
        let w = load(&db, &inv, &lenient, from, to, None, now)
            .await
            .unwrap();
        assert_eq!(w.roads[3].meets_target, Some(true));
        let mut batches = rows();
        for r in batches.iter_mut().flatten() {
            if r.road == "C" && r.run_id == "r2" && r.hour_us == t(H1).timestamp_micros() {
                r.over_cap_ms = 1;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let db = store_of(dir.path(), batches).await;
        let w = load(&db, &inv, &lenient, from, to, None, now)
            .await
            .unwrap();
        assert_eq!(w.roads[3].meets_target, Some(false));
        assert_eq!(w.roads[3].over_cap_seconds, Some(0.001));
    }

    #[tokio::test]
    async fn two_runs_in_one_hour_add_up_and_a_stale_total_never_replaces_a_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let inv = inventory(dir.path());
        let db = store(dir.path()).await;
        let dark = FiguresSettings::default();
        let excluded = FiguresSettings {
            unknown_counts_as: UnknownPolicy::Excluded,
            ..FiguresSettings::default()
        };
        let now = t("2025-03-15T11:10:00Z");
        let (from, to) = (t(H0), t("2025-03-15T12:00:00Z"));
        let w = load(&db, &inv, &dark, from, to, None, now).await.unwrap();
        let wx = load(&db, &inv, &excluded, from, to, None, now)
            .await
            .unwrap();
        let names: Vec<&str> = w.roads.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Road A", "Road B", NO_ROAD, "Road C"]);
        // r1's seq 7 total (not the stale seq 3 written after it) + r2's.
        // A: 7200 + 4800 + 2400 = 14400 expected; 5400 + 4800 + 2400 =
        // 12600 lit; 1800 dark, estimated.
        assert_eq!(
            secs(&w.roads[0].seconds),
            [14400.0, 12600.0, 1800.0, 0.0, 1800.0]
        );
        // B: 3600 + 2400 + 1200 = 7200; lit 5400; 1800 unknown.
        assert_eq!(
            secs(&w.roads[1].seconds),
            [7200.0, 5400.0, 0.0, 1800.0, 0.0]
        );
        // D1 no road: 3600; lit 1800 + 600 = 2400; dark 1200; all estimated.
        assert_eq!(
            secs(&w.roads[2].seconds),
            [3600.0, 2400.0, 1200.0, 0.0, 3600.0]
        );
        // C: 10800; lit 9600; dark 1200.
        assert_eq!(
            secs(&w.roads[3].seconds),
            [10800.0, 9600.0, 1200.0, 0.0, 0.0]
        );
        let rates = |w: &EvaluationWindow| -> Vec<Option<f64>> {
            w.roads
                .iter()
                .map(|r| r.lighting_rate)
                .chain(w.districts.iter().map(|d| d.lighting_rate))
                .chain(w.city.iter().map(|c| c.lighting_rate))
                .collect()
        };
        // D1 counts Z too: expected 14400 + 7200 + 3600 + 600 = 25800, lit
        // 12600 + 5400 + 2400 = 20400, unknown 1800. D2 = C. City: 36600
        // expected, 30000 lit, 1800 unknown.
        assert_eq!(
            rates(&w),
            [
                12600.0 / 14400.0,
                5400.0 / 7200.0,
                2400.0 / 3600.0,
                9600.0 / 10800.0,
                20400.0 / 25800.0,
                9600.0 / 10800.0,
                30000.0 / 36600.0
            ]
            .map(Some)
        );
        // Excluded: B 5400 / (7200 − 1800) = 1; D1 20400 / 24000; city
        // 30000 / 34800.
        assert_eq!(
            rates(&wx),
            [
                12600.0 / 14400.0,
                1.0,
                2400.0 / 3600.0,
                9600.0 / 10800.0,
                20400.0 / 24000.0,
                9600.0 / 10800.0,
                30000.0 / 34800.0
            ]
            .map(Some)
        );
        // Targets: A main 0.98 (0.875 no); B branch 0.96 (0.75 no, excluded
        // 1 yes); C landscape 0.95 (0.889 no); no road none.
        let meets = |w: &EvaluationWindow| -> Vec<Option<bool>> {
            w.roads.iter().map(|r| r.meets_target).collect()
        };
        assert_eq!(meets(&w), [Some(false), Some(false), None, Some(false)]);
        assert_eq!(meets(&wx), [Some(false), Some(true), None, Some(false)]);
        // Classes of the city: main (A), branch (B), landscape (C).
        let city = w.city.as_ref().unwrap();
        let classes: Vec<(RoadClass, u64, Option<f64>, f64)> = city
            .classes
            .iter()
            .map(|c| (c.class, c.roads, c.lighting_rate, c.target))
            .collect();
        assert_eq!(
            classes,
            [
                (RoadClass::Main, 1, Some(0.875), 0.98),
                (RoadClass::Branch, 1, Some(0.75), 0.96),
                (RoadClass::Landscape, 1, Some(9600.0 / 10800.0), 0.95),
            ]
        );
        assert_eq!(
            wx.city.as_ref().unwrap().classes[1].meets_target,
            Some(true)
        );
        // Observed: D1 1800 (r1) + 1200 + 600 (r2) = 3600 s of the 3600 +
        // 600 s of the hours so far (11:00 is under way at 11:10): 6/7.
        for s in [&w.districts[0], &w.districts[1], city] {
            assert_eq!(s.observed_seconds, 3600.0, "{}", s.scope);
            assert_eq!(s.coverage, Some(3600.0 / 4200.0), "{}", s.scope);
        }
    }

    #[tokio::test]
    async fn only_the_hours_starting_in_the_window_and_one_district() {
        let dir = tempfile::tempdir().unwrap();
        let inv = inventory(dir.path());
        let db = store(dir.path()).await;
        let s = FiguresSettings::default();
        let now = t("2025-03-15T13:00:00Z");
        // From 10:30: the 10:00 hour does not start in it; 11:00 does.
        let w = load(
            &db,
            &inv,
            &s,
            t("2025-03-15T10:30:00Z"),
            t("2025-03-15T12:00:00Z"),
            Some("D1"),
            now,
        )
        .await
        .unwrap();
        assert!(w.city.is_none());
        assert_eq!(w.districts.len(), 1);
        let names: Vec<&str> = w.roads.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Road A", "Road B", NO_ROAD]);
        assert_eq!(secs(&w.roads[0].seconds), [2400.0, 2400.0, 0.0, 0.0, 0.0]);
        assert_eq!(w.roads[0].meets_target, Some(true), "1 ≥ 0.98");
        // D1: A 2400 + B 1200 + no road 600 + Z 600 = 4800 expected; 4200
        // lit; 600 s observed of the one whole hour counted.
        let d1 = &w.districts[0];
        assert_eq!(secs(&d1.seconds)[..2], [4800.0, 4200.0]);
        assert_eq!(
            (d1.observed_seconds, d1.coverage),
            (600.0, Some(600.0 / 3600.0))
        );
        // A window in which no hour starts: nothing counted, no coverage.
        let w = load(
            &db,
            &inv,
            &s,
            t("2025-03-15T10:10:00Z"),
            t("2025-03-15T10:50:00Z"),
            None,
            now,
        )
        .await
        .unwrap();
        assert_eq!(w.city.as_ref().unwrap().lighting_rate, None);
        assert_eq!(w.city.as_ref().unwrap().coverage, None);
        // Bad windows are refused before the store is asked.
        assert!(matches!(
            load(&db, &inv, &s, t(H1), t(H0), None, now).await,
            Err(WindowError::BadInput(_))
        ));
    }

    #[test]
    fn a_window_of_steady_verdicts_gives_the_rate_now_to_the_last_digit() {
        use crate::figures::evaluation::LightingCounts;
        let dir = tempfile::tempdir().unwrap();
        let inv = inventory(dir.path());
        // 13 lamps should be lit, 10 lit, 1 unknown, for 123,457 ms in
        // uneven ticks: the window's lamp-ms are the counts × the time.
        let now_counts = LightingCounts {
            lamps_total: 14,
            lamps_expected_lit: 13,
            lamps_lit: 10,
            lamps_dark: 2,
            lamps_unknown: 1,
            lamps_estimated: 0,
        };
        let ms = 123_457;
        let totals = [EvaluationTotals {
            district: "D2".into(),
            road: "C".into(),
            sampled_ms: ms,
            expected_lit_ms: 13 * ms,
            lit_ms: 10 * ms,
            dark_ms: 2 * ms,
            unknown_ms: ms,
            estimated_ms: 0,
            over_cap_ms: 0,
            over_cap_with_unknown_ms: 0,
            dark_max: 0,
            dark_with_unknown_max: 0,
        }];
        for policy in [UnknownPolicy::Dark, UnknownPolicy::Excluded] {
            let s = FiguresSettings {
                unknown_counts_as: policy,
                ..FiguresSettings::default()
            };
            let w = fold(&inv, &s, t(H0), t(H1), None, t(H1), &totals, ms);
            let c = w.roads.iter().find(|r| r.name == "Road C").unwrap();
            assert_eq!(
                c.lighting_rate,
                now_counts.lighting_rate(policy),
                "{policy:?}"
            );
            assert!(c.lighting_rate.is_some());
        }
    }

    #[test]
    fn the_hours_counted_end_at_now() {
        // 10:20–13:00 at 12:15: 11:00 (whole) and 12:00 (15 min so far).
        let len = hours_length_us(
            t("2025-03-15T10:20:00Z"),
            t("2025-03-15T13:00:00Z"),
            t("2025-03-15T12:15:00Z"),
        );
        assert_eq!(len, (3600 + 900) * 1_000_000);
        // A window entirely in the future counts nothing yet.
        assert_eq!(hours_length_us(t(H1), t("2025-03-15T12:00:00Z"), t(H0)), 0);
    }
}
