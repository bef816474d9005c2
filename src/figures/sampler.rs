//! The evaluation over time: every `figures.evaluation_interval` the
//! evaluation now ([`super::evaluation::evaluate`], every lamp of the
//! inventory one verdict) is taken, and the time since the last one is
//! added, as lamp-time per verdict, to the running totals of the UTC hour
//! of each road and of each district's lamps on no road. The windowed
//! figures (`super::evaluation_window`) add those totals up: the same
//! verdicts as the figures now, so one rule holds now and over a window.
//!
//! # The rule
//!
//! 0. **The first verdicts wait for the field.** A run takes its first tick
//!    once every endpoint has been polled once, each class of device it
//!    has, answered or not (what `/readyz` waits for), or a minute (or one
//!    `evaluation_interval` if longer) after its start if some endpoint has
//!    still told nothing by then (a dial-in DTU that has not called). Before that the gateway has not heard from the
//!    field yet, and every lamp would be judged unknown (or dark) for the
//!    first interval of every start; the wait is time not evaluated (it
//!    lowers `coverage`, never a rate).
//! 1. **A verdict stands until the next tick.** The counts taken at tick
//!    `k` (lamps expected lit, lit, dark, unknown, estimated of each scope)
//!    are credited for the time from tick `k` to tick `k + 1`, times the
//!    number of lamps: lamp-milliseconds, whole numbers. The first tick of
//!    a run credits nothing (nothing was seen before it); the stop credits
//!    the last tick's counts up to the stop.
//!    A road's tick also stands for its dark-lamp cap
//!    ([`super::evaluation::over_cap`] against the cap for its size then):
//!    while over, the time is credited to its time over the cap, counting
//!    its dark lamps only and counting the unknown ones dark (both, so a
//!    window can follow either policy); the most dark lamps of its credited
//!    ticks are kept, each way.
//! 2. **A stall is not seen.** The time credited for one tick is the
//!    monotonic time since the previous one, at most `2 ×
//!    evaluation_interval` — room for the runtime's jitter and a slow
//!    evaluation, not for a process that was suspended, a runtime that was
//!    blocked or a clock that jumped: past the cap nobody looked, so the
//!    rest counts as not evaluated (it lowers `coverage`, never a rate).
//! 3. **Hours.** The credited span starts at the previous tick's wall-clock
//!    time (or where the last span ended, if the clock was set back: time is
//!    never counted twice) and is split at UTC hour boundaries; each part
//!    goes to its hour. Every scope's row of an hour also carries the time
//!    credited to that hour (`sampled_ms`).
//! 4. **Running totals, one row per run.** A tick hands the store the
//!    totals so far of every scope of each hour it touched, with the run's
//!    id and a tick number (`seq`) one higher than the last: the row of
//!    (hour, district, road, run) keeps the highest `seq`, so writing it
//!    again (a replay from the spool, or rows held in memory written ahead
//!    of older spooled ones) never counts twice nor goes back. A restart
//!    is a new run with rows of its own, added to the earlier run's in the
//!    same hour, never replacing them. A reload keeps the run: its
//!    verdicts come from the new live state from the next tick on.
//! 5. **Durability.** The rows go through the store's spool like samples:
//!    a database outage delays them and loses none. A kill loses only the
//!    time since the last tick — at most one `evaluation_interval` (two
//!    after a stall) — since every tick's totals are in the spool when the
//!    tick ends; a clean stop loses nothing.

use super::config::FiguresSettings;
use super::config::UnknownPolicy;
use super::evaluation::{evaluate, over_cap, Evaluation, LightingCounts};
use crate::state::LiveState;
use crate::store::{EvaluationRow, StoreEvaluation};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const HOUR_MS: i64 = 3_600_000;
/// How often the start looks whether every endpoint has been polled, and
/// how long it waits at least for a silent one (rule 0).
const FIELD_CHECK: Duration = Duration::from_millis(100);
const FIELD_WAIT: Duration = Duration::from_secs(60);

/// One scope: the district's id and the road's (`""`: its lamps on no road).
pub type Scope = (String, String);

/// The evaluation's counts of every scope at one tick.
#[derive(Debug, Clone)]
pub struct Observation {
    pub wall: DateTime<Utc>,
    pub mono: Instant,
    /// Each scope's counts and, for a road, its dark-lamp cap.
    pub scopes: Vec<(Scope, LightingCounts, Option<u64>)>,
}

impl Observation {
    /// The scopes of an evaluation: every road, and every district's `(no
    /// road)` row, with zero counts where it has no lamps on no road (its
    /// row carries the district's evaluated time).
    pub fn of(e: &Evaluation, wall: DateTime<Utc>, mono: Instant) -> Self {
        let mut scopes: Vec<(Scope, LightingCounts, Option<u64>)> =
            Vec::with_capacity(e.roads.len() + e.districts.len());
        let mut has_no_road = std::collections::HashSet::new();
        for r in &e.roads {
            let road = r.road.clone().unwrap_or_default();
            if road.is_empty() {
                has_no_road.insert(r.district.as_str());
            }
            scopes.push(((r.district.clone(), road), r.counts, r.dark_cap));
        }
        for d in &e.districts {
            if !has_no_road.contains(d.scope.as_str()) {
                scopes.push((
                    (d.scope.clone(), String::new()),
                    LightingCounts::default(),
                    None,
                ));
            }
        }
        Self { wall, mono, scopes }
    }
}

/// Lamp-milliseconds of one scope over one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LampMs {
    expected_lit: i64,
    lit: i64,
    dark: i64,
    unknown: i64,
    estimated: i64,
    over_cap: i64,
    over_cap_with_unknown: i64,
    dark_max: i64,
    dark_with_unknown_max: i64,
}

impl LampMs {
    /// One tick's counts standing `ms`; `cap` the road's dark-lamp cap
    /// (`None` for a district's lamps on no road).
    fn add(&mut self, c: &LightingCounts, cap: Option<u64>, ms: i64) {
        let n = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let lamps = |v: u64| n(v).saturating_mul(ms);
        self.expected_lit += lamps(c.lamps_expected_lit);
        self.lit += lamps(c.lamps_lit);
        self.dark += lamps(c.lamps_dark);
        self.unknown += lamps(c.lamps_unknown);
        self.estimated += lamps(c.lamps_estimated);
        if let Some(cap) = cap {
            // Both readings of the rule, so a window follows the policy in
            // force when it is read, as its rates do.
            if over_cap(c, cap, UnknownPolicy::Excluded) {
                self.over_cap += ms;
            }
            if over_cap(c, cap, UnknownPolicy::Dark) {
                self.over_cap_with_unknown += ms;
            }
            self.dark_max = self
                .dark_max
                .max(n(c.dark_counted(UnknownPolicy::Excluded)));
            self.dark_with_unknown_max = self
                .dark_with_unknown_max
                .max(n(c.dark_counted(UnknownPolicy::Dark)));
        }
    }
}

#[derive(Debug, Default)]
struct Hour {
    sampled_ms: i64,
    scopes: BTreeMap<Scope, LampMs>,
}

/// What one tick (or the stop) did.
#[derive(Debug)]
pub struct Step {
    /// The totals to hand to the store.
    pub rows: Vec<EvaluationRow>,
    /// Monotonic time since the previous tick, and the part credited.
    pub elapsed: Duration,
    pub credited: Duration,
}

impl Step {
    /// More time passed than a tick may stand for (rule 2).
    pub fn stalled(&self) -> bool {
        self.elapsed > self.credited
    }
}

/// The running totals of one run (rules 1–4), with no I/O: the task feeds
/// it observations and hands its rows to the store.
#[derive(Debug)]
pub struct Accumulator {
    run_id: String,
    cap: Duration,
    seq: i64,
    hours: BTreeMap<i64, Hour>,
    last: Option<Observation>,
    /// Where the counted time ends on the wall clock (ms since the epoch).
    counted_to_ms: i64,
}

impl Accumulator {
    /// `cap`: the most time one tick's verdicts stand for.
    pub fn new(run_id: &str, cap: Duration) -> Self {
        Self {
            run_id: run_id.to_string(),
            cap,
            seq: 0,
            hours: BTreeMap::new(),
            last: None,
            counted_to_ms: i64::MIN,
        }
    }

    /// A tick: the previous observation's verdicts credited up to this one,
    /// which is kept for the next.
    pub fn observe(&mut self, obs: Observation) -> Step {
        let step = self.credit(obs.mono);
        self.last = Some(obs);
        step
    }

    /// The stop: the last observation's verdicts credited up to `mono`.
    pub fn close(&mut self, mono: Instant) -> Step {
        let step = self.credit(mono);
        self.last = None;
        step
    }

    fn credit(&mut self, mono: Instant) -> Step {
        let Some(last) = &self.last else {
            return Step {
                rows: Vec::new(),
                elapsed: Duration::ZERO,
                credited: Duration::ZERO,
            };
        };
        let elapsed = mono.saturating_duration_since(last.mono);
        let credited = elapsed.min(self.cap);
        // Whole milliseconds: the sums stay exact; what is cut (under a
        // millisecond a tick) is left uncounted, never counted twice.
        let mut left = i64::try_from(credited.as_millis()).unwrap_or(i64::MAX);
        let mut at = last.wall.timestamp_millis().max(self.counted_to_ms);
        let mut touched = Vec::new();
        while left > 0 {
            let hour = at.div_euclid(HOUR_MS) * HOUR_MS;
            let part = left.min(hour + HOUR_MS - at);
            let h = self.hours.entry(hour).or_default();
            h.sampled_ms += part;
            for (scope, counts, cap) in &last.scopes {
                match h.scopes.get_mut(scope) {
                    Some(ms) => ms.add(counts, *cap, part),
                    None => {
                        let mut ms = LampMs::default();
                        ms.add(counts, *cap, part);
                        h.scopes.insert(scope.clone(), ms);
                    }
                }
            }
            touched.push(hour);
            at += part;
            left -= part;
        }
        if touched.is_empty() {
            return Step {
                rows: Vec::new(),
                elapsed,
                credited,
            };
        }
        self.counted_to_ms = at;
        self.seq += 1;
        let mut rows = Vec::new();
        for hour in &touched {
            let h = &self.hours[hour];
            for ((district, road), ms) in &h.scopes {
                rows.push(EvaluationRow {
                    hour_us: hour * 1000,
                    district: district.clone(),
                    road: road.clone(),
                    run_id: self.run_id.clone(),
                    seq: self.seq,
                    sampled_ms: h.sampled_ms,
                    expected_lit_ms: ms.expected_lit,
                    lit_ms: ms.lit,
                    dark_ms: ms.dark,
                    unknown_ms: ms.unknown,
                    estimated_ms: ms.estimated,
                    over_cap_ms: ms.over_cap,
                    over_cap_with_unknown_ms: ms.over_cap_with_unknown,
                    dark_max: ms.dark_max,
                    dark_with_unknown_max: ms.dark_with_unknown_max,
                });
            }
        }
        // Time only moves on (rule 3): hours before the last one touched
        // get nothing more, and their last rows were just handed over.
        let current = *touched.last().expect("touched is not empty");
        self.hours = self.hours.split_off(&current);
        Step {
            rows,
            elapsed,
            credited,
        }
    }
}

/// What the sampler task reads: the live state of the current generation
/// (a reload replaces it) and where the rows go.
#[derive(Debug)]
struct Shared {
    live: parking_lot::Mutex<Arc<LiveState>>,
    settings: Arc<FiguresSettings>,
    store: Arc<StoreEvaluation>,
}

/// The running sampler.
#[derive(Debug)]
pub struct Running {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Running {
    /// A reload's new live state: evaluated from the next tick on, in the
    /// same run (its totals go on).
    pub fn rewire(&self, live: Arc<LiveState>) {
        *self.shared.live.lock() = live;
    }

    /// Waits for the task, which ends once the stopper fires after handing
    /// the store its last totals. Call before the store drains.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "evaluation sampler task failed");
        }
    }
}

/// Starts the sampler on `live`, its rows to `store`, until `cancel`.
pub fn start(
    live: Arc<LiveState>,
    settings: &FiguresSettings,
    store: Arc<StoreEvaluation>,
    cancel: CancellationToken,
) -> Running {
    let shared = Arc::new(Shared {
        live: parking_lot::Mutex::new(live),
        settings: Arc::new(settings.clone()),
        store,
    });
    let task = tokio::spawn(run(shared.clone(), cancel));
    Running { shared, task }
}

async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let every = shared.settings.evaluation_interval;
    // Shared with each tick's blocking job; a job that panicked (a bug)
    // leaves it as it was before its own update, so the run goes on.
    let acc = Arc::new(parking_lot::Mutex::new(Accumulator::new(
        shared.store.run_id(),
        every * 2,
    )));
    // Rule 0: the first verdicts wait for the field to be known.
    let start = Instant::now();
    let patience = every.max(FIELD_WAIT);
    while !shared.live.lock().clone().all_polled() && start.elapsed() < patience {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(FIELD_CHECK) => {}
        }
    }
    let mut tick = tokio::time::interval(every);
    // After a slow tick the next comes a whole interval later, not at once:
    // the time between is credited (up to the cap) either way.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let (shared, acc) = (shared.clone(), acc.clone());
        // A walk over every lamp and a row per road: off the async workers,
        // which the pollers and the state task share.
        let job = tokio::task::spawn_blocking(move || {
            let live = shared.live.lock().clone();
            let (wall, mono) = (Utc::now(), Instant::now());
            let e = evaluate(&live, &shared.settings);
            let step = acc.lock().observe(Observation::of(&e, wall, mono));
            let rows = step.rows.len();
            let stalled = step.stalled().then_some((step.elapsed, step.credited));
            shared.store.offer(step.rows);
            (mono.elapsed(), rows, stalled)
        });
        match job.await {
            Ok((took, rows, stalled)) => {
                if let Some((elapsed, credited)) = stalled {
                    tracing::warn!(
                        elapsed_ms = elapsed.as_millis() as u64,
                        credited_ms = credited.as_millis() as u64,
                        "evaluation sampler late: the time past 2 × figures.evaluation_interval counts as not evaluated"
                    );
                }
                tracing::debug!(
                    took_ms = took.as_secs_f64() * 1e3,
                    rows,
                    "evaluation sampled"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "evaluation tick failed; the previous verdicts stand until the next tick, at most 2 × figures.evaluation_interval");
            }
        }
    }
    let step = acc.lock().close(Instant::now());
    shared.store.offer(step.rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [expected, lit, dark, unknown, estimated] lamps.
    fn counts(c: [u64; 5]) -> LightingCounts {
        LightingCounts {
            lamps_total: c[0],
            lamps_expected_lit: c[0],
            lamps_lit: c[1],
            lamps_dark: c[2],
            lamps_unknown: c[3],
            lamps_estimated: c[4],
        }
    }

    fn scope(d: &str, r: &str) -> Scope {
        (d.to_string(), r.to_string())
    }

    fn wall(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// (hour, district, road, seq, sampled, [expected, lit, dark, unknown,
    /// estimated] lamp-ms) of each row.
    type RowFigures = (String, String, String, i64, i64, [i64; 5]);
    fn figures(rows: &[EvaluationRow]) -> Vec<RowFigures> {
        rows.iter()
            .map(|r| {
                let hour = DateTime::from_timestamp_micros(r.hour_us).unwrap();
                (
                    hour.format("%H:%M").to_string(),
                    r.district.clone(),
                    r.road.clone(),
                    r.seq,
                    r.sampled_ms,
                    [
                        r.expected_lit_ms,
                        r.lit_ms,
                        r.dark_ms,
                        r.unknown_ms,
                        r.estimated_ms,
                    ],
                )
            })
            .collect()
    }

    fn row(hour: &str, d: &str, r: &str, seq: i64, sampled: i64, ms: [i64; 5]) -> RowFigures {
        (hour.into(), d.into(), r.into(), seq, sampled, ms)
    }

    /// Road A: 4 lamps expected, 3 lit, 1 dark (estimated); D1's lamps on
    /// no road: 2 expected, 1 lit, 1 unknown.
    fn obs(at: &str, mono: Instant) -> Observation {
        Observation {
            wall: wall(at),
            mono,
            scopes: vec![
                (scope("D1", "A"), counts([4, 3, 1, 0, 1]), Some(2)),
                (scope("D1", ""), counts([2, 1, 0, 1, 0]), None),
            ],
        }
    }

    #[test]
    fn a_tick_across_an_hour_boundary_splits_at_the_hour() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new("run-a", Duration::from_secs(120));
        // The first tick credits nothing: nothing was seen before it.
        let first = acc.observe(obs("2025-03-15T10:59:30Z", t0));
        assert!(first.rows.is_empty());
        // 60 s later: 30 s of it before 11:00, 30 s after. Road A's 4
        // expected lamps × 30 s = 120,000 lamp-ms in each hour, 3 lit ×
        // 30 s = 90,000, 1 dark and estimated = 30,000; no road 2 × 30 s =
        // 60,000 expected, 30,000 lit, 30,000 unknown.
        let step = acc.observe(obs("2025-03-15T11:00:30Z", t0 + Duration::from_secs(60)));
        assert_eq!(step.credited, Duration::from_secs(60));
        assert!(!step.stalled());
        assert_eq!(
            figures(&step.rows),
            [
                row("10:00", "D1", "", 1, 30_000, [60_000, 30_000, 0, 30_000, 0]),
                row(
                    "10:00",
                    "D1",
                    "A",
                    1,
                    30_000,
                    [120_000, 90_000, 30_000, 0, 30_000]
                ),
                row("11:00", "D1", "", 1, 30_000, [60_000, 30_000, 0, 30_000, 0]),
                row(
                    "11:00",
                    "D1",
                    "A",
                    1,
                    30_000,
                    [120_000, 90_000, 30_000, 0, 30_000]
                ),
            ]
        );
        // The next minute, with road A all lit now, touches 11:00 only:
        // the minute credits the verdicts of 11:00:30 (3 lit, 1 dark) —
        // 11:00's running total grows to 90 s; 10:00 is written no more.
        let mut lit = obs("2025-03-15T11:01:30Z", t0 + Duration::from_secs(120));
        lit.scopes[0].1 = counts([4, 4, 0, 0, 0]);
        let step = acc.observe(lit);
        assert_eq!(
            figures(&step.rows),
            [
                row(
                    "11:00",
                    "D1",
                    "",
                    2,
                    90_000,
                    [180_000, 90_000, 0, 90_000, 0]
                ),
                row(
                    "11:00",
                    "D1",
                    "A",
                    2,
                    90_000,
                    [360_000, 270_000, 90_000, 0, 90_000]
                ),
            ]
        );
        // The stop 15 s later credits the all-lit verdicts: A + 4 × 15 s
        // expected and lit.
        let last = acc.close(t0 + Duration::from_secs(135));
        assert_eq!(
            figures(&last.rows),
            [
                row(
                    "11:00",
                    "D1",
                    "",
                    3,
                    105_000,
                    [210_000, 105_000, 0, 105_000, 0]
                ),
                row(
                    "11:00",
                    "D1",
                    "A",
                    3,
                    105_000,
                    [420_000, 330_000, 90_000, 0, 90_000]
                ),
            ]
        );
    }

    #[test]
    fn a_road_over_its_cap_is_timed_both_ways_and_its_worst_tick_kept() {
        // Road A, cap 1: 10:00 one dark lamp and one unknown (over only if
        // the unknown one counts dark); 10:00:40 three dark (over either
        // way); 10:01:00 none dark. The no-road row has no cap: nothing.
        let t0 = Instant::now();
        let road = |at: &str, secs: u64, c: [u64; 5]| Observation {
            wall: wall(at),
            mono: t0 + Duration::from_secs(secs),
            scopes: vec![
                (scope("D1", "A"), counts(c), Some(1)),
                (scope("D1", ""), counts([9, 0, 9, 0, 0]), None),
            ],
        };
        let mut acc = Accumulator::new("run-a", Duration::from_secs(120));
        acc.observe(road("2025-03-15T10:00:00Z", 0, [4, 2, 1, 1, 0]));
        acc.observe(road("2025-03-15T10:00:40Z", 40, [4, 1, 3, 0, 0]));
        let step = acc.observe(road("2025-03-15T10:01:00Z", 60, [4, 4, 0, 0, 0]));
        let a = step.rows.iter().find(|r| r.road == "A").unwrap();
        assert_eq!(
            (
                a.over_cap_ms,
                a.over_cap_with_unknown_ms,
                a.dark_max,
                a.dark_with_unknown_max
            ),
            (20_000, 60_000, 3, 3)
        );
        let none = step.rows.iter().find(|r| r.road.is_empty()).unwrap();
        assert_eq!(
            (
                none.over_cap_ms,
                none.over_cap_with_unknown_ms,
                none.dark_max
            ),
            (0, 0, 0)
        );
        // The last tick (none dark) is credited only by the next one.
        let step = acc.observe(road("2025-03-15T10:02:00Z", 120, [4, 4, 0, 0, 0]));
        let a = step.rows.iter().find(|r| r.road == "A").unwrap();
        assert_eq!((a.over_cap_ms, a.dark_max), (20_000, 3));
    }

    #[test]
    fn a_stall_counts_at_most_twice_the_interval() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new("run-a", Duration::from_secs(120));
        acc.observe(obs("2025-03-15T10:00:00Z", t0));
        // The process was suspended for 10 minutes: only 2 of them count.
        let step = acc.observe(obs("2025-03-15T10:10:00Z", t0 + Duration::from_secs(600)));
        assert!(step.stalled());
        assert_eq!(
            (step.elapsed, step.credited),
            (Duration::from_secs(600), Duration::from_secs(120))
        );
        assert_eq!(
            figures(&step.rows)[1],
            row(
                "10:00",
                "D1",
                "A",
                1,
                120_000,
                [480_000, 360_000, 120_000, 0, 120_000]
            )
        );
        // The next tick counts from 10:10 (its wall time), not from where
        // the credited span ended: the gap stays uncounted.
        let step = acc.observe(obs("2025-03-15T10:11:00Z", t0 + Duration::from_secs(660)));
        assert_eq!(figures(&step.rows)[1].4, 180_000);
    }

    #[test]
    fn a_clock_set_back_never_counts_time_twice() {
        let t0 = Instant::now();
        let mut acc = Accumulator::new("run-a", Duration::from_secs(120));
        acc.observe(obs("2025-03-15T10:59:00Z", t0));
        // 10:59 → 11:00: 60 s in 10:00.
        acc.observe(obs("2025-03-15T11:00:00Z", t0 + Duration::from_secs(60)));
        // The clock is set back 10 minutes: the next minute is counted on
        // from 11:00 (where the counted time ends), not in 10:00 again,
        // whose total was already handed over.
        let step = acc.observe(obs("2025-03-15T10:51:00Z", t0 + Duration::from_secs(120)));
        let rows = figures(&step.rows);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].0.as_str(), rows[0].4), ("11:00", 60_000));
    }

    #[test]
    fn scopes_of_an_evaluation_give_every_district_its_no_road_row() {
        use crate::figures::evaluation::RoadRow;
        let road = |d: &str, r: Option<&str>, c: LightingCounts| RoadRow {
            road: r.map(String::from),
            name: String::new(),
            district: d.into(),
            class: None,
            counts: c,
            lighting_rate: None,
            lamps_planned: None,
            installation_rate: None,
            dark_cap: None,
            over_cap: None,
            target: None,
            meets_target: None,
        };
        let district = |id: &str| crate::figures::evaluation::ScopeRow {
            scope: id.into(),
            name: String::new(),
            counts: LightingCounts::default(),
            lighting_rate: None,
            classes: vec![],
        };
        let e = Evaluation {
            at: Utc::now(),
            unknown_counts_as: Default::default(),
            roads: vec![
                road("D1", Some("A"), counts([4, 3, 1, 0, 1])),
                road("D1", None, counts([2, 1, 0, 1, 0])),
                road("D2", Some("B"), counts([1, 1, 0, 0, 0])),
            ],
            districts: vec![district("D1"), district("D2")],
            city: district("city"),
            verdicts: vec![],
        };
        let o = Observation::of(&e, Utc::now(), Instant::now());
        let scopes: Vec<(&str, &str, u64)> = o
            .scopes
            .iter()
            .map(|((d, r), c, _)| (d.as_str(), r.as_str(), c.lamps_expected_lit))
            .collect();
        // D2 has no lamps on no road: a zero row that carries its time.
        assert_eq!(
            scopes,
            [("D1", "A", 4), ("D1", "", 2), ("D2", "B", 1), ("D2", "", 0)]
        );
    }
}
