//! The engine: on every tick (and at once when the book changes) it works
//! out what every governed lamp and circuit should be now (plan.rs), and
//! where that differs from what it last commanded, issues the command
//! through the control path — SLC writes for lamps, RTU contactor writes for
//! circuits — as `source: schedule`, naming program, rule and switch point.
//! Read-back confirms as for manual commands; a target that failed is tried
//! again after `schedule.retry_after`. A circuit's contactor is written when
//! it should close or open, not when its lamps only dim.
//!
//! Each tick also counts every district's targets — by scheduled and
//! effective level, held, set by a shift, agreeing with their device, by
//! program — and offers its sinks (MQTT's retained
//! `{root}/{district}/schedule/state`) the summaries that differ from the
//! ones it offered last.
//!
//! The plan is rebuilt in one place (`Schedule::current`), when the book,
//! the groups or the inventory changed; a rebuild whose book or groups
//! differ makes a new version of them (history.rs), which the store keeps so
//! that past energy baselines follow the schedule then in force.
//!
//! Catch-up needs no special case: at start nothing has been commanded, so
//! the first tick enforces what should be now (a restart at 21:00 switches
//! on what should be on).
//!
//! Precedence: a manual command (API, MQTT) on a target holds it — until
//! its `expires_at`, or without one until the target's next switch point —
//! above emergency shifts and calendars; when the hold ends the target goes
//! to what the schedule says then. Holds are kept in a file beside the book
//! and re-armed after a restart.

use super::clock::{Clock, SystemClock};
use super::history::{Groups, ScheduleVersion, VersionContent, VersionSink};
use super::model::Book;
use super::plan::{Event, Plan, Source, Target};
use super::summary::{device_level, DistrictSummary, ScheduleSink, ScheduleState, Tally};
use super::ScheduleSettings;
use crate::auth::{Principal, Role};
use crate::control::{
    Action, Command, CommandObserver, Control, FailCause, Governs, Selector,
    Source as CommandSource, Submission, TargetState,
};
use crate::inventory::Inventory;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule file {path}: {detail}")]
    File { path: String, detail: String },
    #[error("{0}")]
    Invalid(String),
}

/// A manual command holding a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hold {
    pub since: DateTime<Utc>,
    /// `None`: until the target's next switch point.
    pub until: Option<DateTime<Utc>>,
    pub level: f64,
    pub command: String,
}

#[derive(Debug, Default, Clone)]
struct TargetRun {
    /// The level last commanded, and whether it was confirmed.
    commanded: Option<f64>,
    confirmed: bool,
    /// When its command failed, on the monotonic clock: a retry waits real
    /// time whatever the schedule's clock does.
    failed_at: Option<std::time::Instant>,
}

/// One target as `/schedules/state` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TargetNow {
    pub target: String,
    pub kind: &'static str,
    pub district: String,
    /// What the calendar (with shifts) says now.
    pub scheduled: Option<f64>,
    /// After a manual hold.
    pub effective: Option<f64>,
    pub source: Option<Source>,
    pub program: Option<String>,
    pub rule: Option<String>,
    /// The level the engine last commanded and whether it was confirmed.
    pub commanded: Option<f64>,
    pub confirmed: bool,
}

#[derive(Debug)]
pub struct Schedule {
    settings: ScheduleSettings,
    book_path: PathBuf,
    holds_path: PathBuf,
    tz: Tz,
    control: Arc<Control>,
    book: RwLock<Arc<Book>>,
    /// Held across an edit's read, change and save, so two writers (the
    /// API, the TALQ API) never lose each other's change.
    editing: Mutex<()>,
    /// The plan in force and what it was built from (see `current`).
    current: RwLock<Option<Current>>,
    /// Taken to rebuild the plan, so one change makes one version.
    rebuild: Mutex<()>,
    /// Where each new version goes (the store), `keep_versions`.
    versions: RwLock<Vec<Arc<dyn VersionSink>>>,
    clock: RwLock<Arc<dyn Clock>>,
    wake: Notify,
    runs: Mutex<HashMap<String, TargetRun>>,
    holds: Mutex<BTreeMap<String, Hold>>,
    /// Ticks done, for tests and `/metrics`.
    ticks: std::sync::atomic::AtomicU64,
    /// Cluster mode: which endpoints' devices this instance commands.
    here: RwLock<Option<Here>>,
    /// Where districts' summaries go, and the ones last offered.
    sinks: RwLock<Vec<Arc<dyn ScheduleSink>>>,
    offered: Mutex<BTreeMap<String, DistrictSummary>>,
}

/// The plan in force, the groups it was built with, and the version (book
/// and groups) it stands for.
#[derive(Debug, Clone)]
struct Current {
    plan: Arc<Plan>,
    groups: Groups,
    version: Arc<ScheduleVersion>,
}

/// Cluster mode: whether this instance commands the devices behind an
/// endpoint (by its key: `host:port`, `serial:PATH`, `dtu:ID`) — those it
/// polls. The schedule of a device runs on the instance that polls it, so
/// it runs once city-wide: never on two instances (one holds the lease),
/// and across a failover the new holder, which had not commanded the
/// device, commands what should be now at its next tick.
#[derive(Clone)]
pub struct Here(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for Here {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Here(..)")
    }
}

fn schedule_principal() -> Principal {
    Principal {
        name: "schedule".into(),
        role: Role::Admin,
        district: None,
    }
}

/// The target's key: the lamp id, or `CABINET#n` as control names circuits.
pub fn target_key(inv: &Inventory, t: Target) -> String {
    match t {
        Target::Lamp(l) => inv.lamps[l].id.clone(),
        Target::Circuit(c, n) => format!("{}#{n}", inv.cabinets[c].id),
    }
}

/// A lamp's command for a level: a level of 100 % too is written as a dim
/// level (with the relay on), since `on` alone switches the relay and
/// leaves the SLC at the level it was dimmed to (a night's 50 % would
/// otherwise come back the next evening).
fn lamp_action(level: f64) -> Action {
    if level <= 0.0 {
        Action::Off
    } else {
        Action::Dim {
            level: level.min(100.0),
        }
    }
}

/// A circuit's contactor: closed or open.
fn circuit_action(level: f64) -> Action {
    if level > 0.0 {
        Action::On
    } else {
        Action::Off
    }
}

impl Schedule {
    /// Loads the book and the holds (absent files: empty) and registers with
    /// the control (it learns manual holds, and leaves the expiry of
    /// overrides on governed lamps to the schedule).
    pub fn start(
        settings: &ScheduleSettings,
        tz: Tz,
        control: Arc<Control>,
    ) -> Result<Arc<Schedule>, ScheduleError> {
        let book_path = settings.file.clone();
        let book = load_book(&book_path)?;
        let holds_path = book_path.with_extension("holds.json");
        let bad = |detail: String| ScheduleError::File {
            path: holds_path.display().to_string(),
            detail,
        };
        let holds = match crate::atomic_file::read_if_present(&holds_path)
            .map_err(|e| bad(e.to_string()))?
        {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?,
            None => BTreeMap::new(),
        };
        let s = Arc::new(Schedule {
            settings: settings.clone(),
            book_path,
            holds_path,
            tz,
            control: control.clone(),
            book: RwLock::new(Arc::new(book)),
            editing: Mutex::new(()),
            current: RwLock::new(None),
            rebuild: Mutex::new(()),
            versions: RwLock::new(Vec::new()),
            clock: RwLock::new(Arc::new(SystemClock)),
            wake: Notify::new(),
            runs: Mutex::new(HashMap::new()),
            holds: Mutex::new(holds),
            ticks: Default::default(),
            here: RwLock::new(None),
            sinks: RwLock::new(Vec::new()),
            offered: Mutex::new(BTreeMap::new()),
        });
        control.observe(Arc::new(Observer(Arc::downgrade(&s))));
        control.set_governor(Arc::new(Governor(Arc::downgrade(&s))));
        Ok(s)
    }

    /// Runs the engine on another clock (tests, the demo's fast night).
    pub fn use_clock(&self, clock: Arc<dyn Clock>) {
        *self.clock.write() = clock;
        self.wake.notify_one();
    }

    /// Cluster mode: command only the devices `here` says this instance
    /// polls (see [`Here`]).
    pub fn only_where(&self, here: Here) {
        *self.here.write() = Some(here);
        self.wake.notify_one();
    }

    /// Ticks at once (after the clock was moved).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.read().now()
    }

    /// Offers every district's summary to `sink` from the next tick on,
    /// then each again when it changes.
    pub fn add_sink(&self, sink: Arc<dyn ScheduleSink>) {
        self.sinks.write().push(sink);
        // Everything again: the new sink has seen nothing.
        self.offered.lock().clear();
        self.wake.notify_one();
    }

    /// The districts' summaries as last offered to the sinks.
    pub fn summaries(&self) -> BTreeMap<String, DistrictSummary> {
        self.offered.lock().clone()
    }

    pub fn ticks(&self) -> u64 {
        self.ticks.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    pub fn book(&self) -> Arc<Book> {
        self.book.read().clone()
    }

    pub fn holds(&self) -> BTreeMap<String, Hold> {
        self.holds.lock().clone()
    }

    /// The plan for the current inventory, groups and book.
    pub fn plan(&self) -> Arc<Plan> {
        self.current().0
    }

    /// The plan for the current inventory, groups and book, and the version
    /// of the book and groups it is built from. The plan is rebuilt here,
    /// and only here, when one of them changed: the one place a change of
    /// the plan is noticed. A rebuild whose book or groups differ from the
    /// last version's makes a new version, effective now on the engine's
    /// clock, and offers it to the version sinks (`history`); a new
    /// inventory alone makes none.
    pub fn current(&self) -> (Arc<Plan>, Arc<ScheduleVersion>) {
        let inv = self.control.wiring().live.inventory.clone();
        let groups = self.control.groups();
        let book = self.book();
        let fresh = |c: &Current| {
            Arc::ptr_eq(&c.plan.inventory, &inv)
                && Arc::ptr_eq(&c.plan.book, &book)
                && c.groups == groups
        };
        if let Some(c) = self.current.read().as_ref().filter(|c| fresh(c)) {
            return (c.plan.clone(), c.version.clone());
        }
        let _one = self.rebuild.lock();
        // Another caller may have rebuilt it meanwhile.
        let previous = self.current.read().clone();
        if let Some(c) = previous.as_ref().filter(|c| fresh(c)) {
            return (c.plan.clone(), c.version.clone());
        }
        let plan = Arc::new(self.plan_over(book.clone(), inv, &groups));
        let same = previous
            .as_ref()
            .filter(|c| Arc::ptr_eq(&c.plan.book, &book) && c.groups == groups)
            .map(|c| c.version.clone());
        let version = match same {
            Some(v) => v,
            None => {
                let made = ScheduleVersion::new(self.now(), &book, &groups);
                match previous.as_ref().map(|c| &c.version) {
                    // Replaced by an equal book: the same version goes on.
                    Some(v) if v.digest == made.digest => v.clone(),
                    _ => {
                        tracing::info!(effective = %made.effective, digest = %made.digest, "schedule version");
                        for sink in self.versions.read().iter() {
                            sink.offer_version(&made);
                        }
                        Arc::new(made)
                    }
                }
            }
        };
        *self.current.write() = Some(Current {
            plan: plan.clone(),
            groups,
            version: version.clone(),
        });
        (plan, version)
    }

    fn plan_over(&self, book: Arc<Book>, inventory: Arc<Inventory>, groups: &Groups) -> Plan {
        Plan::new(
            book,
            inventory,
            groups,
            self.tz,
            (self.settings.centre_lat, self.settings.centre_lon),
        )
    }

    /// The plan a recorded version makes over `inventory` (today's), in the
    /// city's time zone and with this engine's settings: a past piece of a
    /// window (`history`).
    pub fn plan_of(&self, content: VersionContent, inventory: Arc<Inventory>) -> Plan {
        self.plan_over(Arc::new(content.book), inventory, &content.groups)
    }

    /// Offers every new version to `sink` from now on, starting with the
    /// one in force now (the store: it keeps one only when it differs from
    /// the version it has in force at its time).
    pub fn keep_versions(&self, sink: Arc<dyn VersionSink>) {
        self.versions.write().push(sink.clone());
        let (_, version) = self.current();
        sink.offer_version(&version);
    }

    /// Rebuilds the plan now if the groups or the inventory changed (a
    /// reload, a group set through the API), so that its version takes
    /// effect at the change rather than at the next tick, and ticks.
    pub fn refresh_plan(&self) {
        self.current();
        self.wake.notify_one();
    }

    /// Replaces the book after checking it against the inventory and the
    /// groups, and writes it to its file (atomically); the engine applies
    /// it at once.
    pub fn replace_book(&self, book: Book) -> Result<(), ScheduleError> {
        let _editing = self.editing.lock();
        self.save_book(book)
    }

    /// One edit of the book: `change` works on a copy of it, which is then
    /// checked and saved as [`Schedule::replace_book`] does; an error of
    /// either leaves the book as it was. Edits are one at a time.
    pub fn edit_book<T, E: From<ScheduleError>>(
        &self,
        change: impl FnOnce(&mut Book) -> Result<T, E>,
    ) -> Result<T, E> {
        let _editing = self.editing.lock();
        let mut book = (*self.book()).clone();
        let out = change(&mut book)?;
        self.save_book(book)?;
        Ok(out)
    }

    fn save_book(&self, book: Book) -> Result<(), ScheduleError> {
        let mut problems = book.problems();
        let inv = self.control.wiring().live.inventory.clone();
        problems.extend(Plan::check_scopes(&book, &inv, &self.control.groups()));
        if !problems.is_empty() {
            return Err(ScheduleError::Invalid(problems.join("; ")));
        }
        crate::atomic_file::write(
            &self.book_path,
            &serde_json::to_vec_pretty(&book).expect("plain data"),
        )
        .map_err(|e| ScheduleError::File {
            path: self.book_path.display().to_string(),
            detail: e.to_string(),
        })?;
        *self.book.write() = Arc::new(book);
        // The version takes effect now, not at the engine's next tick.
        self.refresh_plan();
        Ok(())
    }

    /// Runs until `cancel`.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            self.tick();
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.tick) => {}
            }
        }
    }

    /// One comparison of what should be with what was commanded.
    pub fn tick(self: &Arc<Self>) {
        let now = self.now();
        let plan = self.plan();
        let inv = plan.inventory.clone();
        let live = self.control.wiring().live.clone();
        let released = self.release_holds(&plan, now);
        let holds = self.holds.lock().clone();
        let mut expect: Vec<Option<bool>> = vec![None; inv.lamps.len()];
        // Lamps whose level comes from their circuit's contactor.
        let mut circuit_level: HashMap<(usize, u8), f64> = HashMap::new();
        // level bits and note → targets of one command.
        let mut lamp_batches: BTreeMap<(u64, String), Vec<String>> = BTreeMap::new();
        let mut circuit_commands: Vec<(String, u8, f64, String)> = Vec::new();
        // Per cabinet: whether its devices are commanded here (cluster
        // mode: its endpoint's lease is held here).
        // Polled once at least, too: a command to a device this instance
        // has not read yet would fail `offline` when the lease was just
        // taken.
        let here = self.here.read().clone();
        let mine: Vec<bool> = match &here {
            None => vec![true; inv.cabinets.len()],
            Some(h) => {
                let polled: std::collections::HashSet<String> = live
                    .read()
                    .endpoints
                    .iter()
                    .filter(|e| e.polled)
                    .map(|e| e.address.clone())
                    .collect();
                inv.cabinets
                    .iter()
                    .map(|c| {
                        c.link.as_ref().is_none_or(|link| {
                            let key = link.key();
                            (h.0)(&key) && polled.contains(&key)
                        })
                    })
                    .collect()
            }
        };
        // Cluster mode: and the device itself read here once — an endpoint
        // whose RTU was polled may not have polled its SLCs yet, and a
        // command to them would fail `offline`.
        let read_here: Option<(Vec<bool>, Vec<bool>)> = here.as_ref().map(|_| {
            let inner = live.read();
            (
                inner.lamps.iter().map(|d| d.last_poll.is_some()).collect(),
                inner.rtus.iter().map(|d| d.last_poll.is_some()).collect(),
            )
        });
        let mut runs = self.runs.lock();
        for key in &released {
            runs.remove(key);
        }
        // One evaluation per signature (plan.rs): targets alike share it
        // (shared, not copied: a tick over 100,000 lamps allocates per
        // signature, not per lamp).
        let mut memo: HashMap<super::plan::Signature, Option<Arc<Event>>> = HashMap::new();
        // Each district's summary (by district position).
        let mut tallies: Vec<Tally> = inv.districts.iter().map(|_| Tally::default()).collect();
        let district_of = |t: Target| match t {
            Target::Lamp(l) => inv
                .cabinet_of_lamp(l)
                .and_then(|c| inv.district_of_cabinet(c)),
            Target::Circuit(c, _) => inv.district_of_cabinet(c),
        };
        for t in plan.targets() {
            let event = memo
                .entry(plan.signature(t))
                .or_insert_with(|| plan.level_at(t, now).map(Arc::new))
                .clone();
            let tally = district_of(t).and_then(|d| tallies.get_mut(d));
            let Some(event) = event else {
                if let Some(tally) = tally {
                    tally.target(t);
                    tally.none += 1;
                    tally.unknown += 1;
                }
                continue;
            };
            // A lamp's key is its id, borrowed; only circuits make one.
            let key: std::borrow::Cow<'_, str> = match t {
                Target::Lamp(l) => std::borrow::Cow::Borrowed(inv.lamps[l].id.as_str()),
                t => std::borrow::Cow::Owned(target_key(&inv, t)),
            };
            let hold = holds.get(key.as_ref());
            let level = hold.map_or(event.level, |h| h.level);
            if let Some(tally) = tally {
                tally.target(t);
                match hold {
                    Some(h) => tally.held.push((event.clone(), h.level)),
                    None => tally.follows(&event),
                }
            }
            match t {
                Target::Lamp(l) => expect[l] = Some(level > 0.0),
                Target::Circuit(c, n) => {
                    circuit_level.insert((c, n), level);
                }
            }
            if hold.is_some() {
                continue;
            }
            let cabinet = match t {
                Target::Lamp(l) => inv.cabinet_position(&inv.lamps[l].cabinet),
                Target::Circuit(c, _) => Some(c),
            };
            let unread = read_here.as_ref().is_some_and(|(lamps, rtus)| match t {
                Target::Lamp(l) => !lamps.get(l).copied().unwrap_or(false),
                Target::Circuit(c, _) => !rtus.get(c).copied().unwrap_or(false),
            });
            if cabinet.is_some_and(|c| !mine[c]) || unread {
                // Another instance's: forgotten, so that when this one
                // takes the lease it commands what should be then.
                runs.remove(key.as_ref());
                continue;
            }
            if !runs.contains_key(key.as_ref()) {
                runs.insert(key.to_string(), TargetRun::default());
            }
            let run = runs.get_mut(key.as_ref()).expect("just inserted");
            let retry = run
                .failed_at
                .is_some_and(|f| f.elapsed() >= self.settings.retry_after);
            // A contactor is closed or open: a circuit's point from 100 to
            // 50 % (its lamps dim) writes nothing to it.
            let wanted = match t {
                Target::Lamp(_) => event.level,
                Target::Circuit(..) if event.level > 0.0 => 100.0,
                Target::Circuit(..) => 0.0,
            };
            if run.commanded == Some(wanted) && !retry {
                continue;
            }
            run.commanded = Some(wanted);
            run.confirmed = false;
            run.failed_at = None;
            let note = format!("{} {} {}", event.program, event.rule, event.point);
            match t {
                Target::Lamp(_) => lamp_batches
                    .entry((event.level.to_bits(), note))
                    .or_default()
                    .push(key.into_owned()),
                Target::Circuit(c, n) => {
                    circuit_commands.push((inv.cabinets[c].id.clone(), n, wanted, note))
                }
            }
        }
        drop(runs);
        // Whether the devices agree, as last read (before the lamps that
        // follow their circuits are filled in: `expect` holds the lamp
        // targets only here).
        {
            let inner = live.read();
            for (l, want) in expect.iter().enumerate() {
                let Some(want) = want else { continue };
                let t = Target::Lamp(l);
                if let Some(tally) = district_of(t).and_then(|d| tallies.get_mut(d)) {
                    let want = if *want { 100.0 } else { 0.0 };
                    tally.agreement(Some(want), device_level(&inner, t));
                }
            }
            for (&(c, n), level) in &circuit_level {
                let t = Target::Circuit(c, n);
                if let Some(tally) = district_of(t).and_then(|d| tallies.get_mut(d)) {
                    tally.agreement(Some(*level), device_level(&inner, t));
                }
            }
        }
        self.offer_summaries(&inv, tallies, now);
        // Lamps without an assignment of their own follow their circuit.
        for (l, lamp) in inv.lamps.iter().enumerate() {
            if expect[l].is_none() {
                if let Some(c) = inv.cabinet_position(&lamp.cabinet) {
                    if let Some(level) = circuit_level.get(&(c, lamp.circuit)) {
                        expect[l] = Some(*level > 0.0);
                    }
                }
            }
        }
        live.set_scheduled(expect);
        live.set_scheduled_contactors(
            circuit_level
                .iter()
                .map(|(&at, &level)| (at, level > 0.0))
                .collect(),
        );
        for ((bits, note), lamps) in lamp_batches {
            self.issue(
                Selector::Lamps(lamps),
                lamp_action(f64::from_bits(bits)),
                note,
            );
        }
        for (cabinet, circuit, level, note) in circuit_commands {
            self.issue(
                Selector::Circuit { cabinet, circuit },
                circuit_action(level),
                note,
            );
        }
        self.ticks
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Offers the sinks each district's summary that differs from the one
    /// offered last.
    fn offer_summaries(&self, inv: &Inventory, tallies: Vec<Tally>, now: DateTime<Utc>) {
        let summaries: Vec<DistrictSummary> = inv
            .districts
            .iter()
            .zip(tallies)
            .map(|(d, t)| t.summary(&d.id))
            .collect();
        let sinks = self.sinks.read().clone();
        let mut offered = self.offered.lock();
        // A district no longer in the inventory is no longer summarised.
        offered.retain(|d, _| inv.district_position(d).is_some());
        let at = now.with_timezone(&self.tz).to_rfc3339();
        for summary in summaries {
            if offered.get(&summary.district) == Some(&summary) {
                continue;
            }
            let state = ScheduleState {
                at: at.clone(),
                summary: &summary,
            };
            for sink in &sinks {
                sink.offer_state(&state);
            }
            offered.insert(summary.district.clone(), summary);
        }
    }

    fn issue(self: &Arc<Self>, selector: Selector, action: Action, note: String) {
        let sub = Submission {
            actor: "schedule".into(),
            source: CommandSource::Schedule,
            selector,
            action,
            expires_at: None,
            idempotency_key: None,
            note: Some(note),
        };
        let cell = match self.control.submit(&schedule_principal(), sub) {
            Ok(cell) => cell,
            Err(e) => {
                tracing::warn!(error = %e, "schedule command refused");
                return;
            }
        };
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let command = cell.wait().await;
            let Some(me) = me.upgrade() else { return };
            let mut runs = me.runs.lock();
            for t in &command.targets {
                if let Some(run) = runs.get_mut(&t.id) {
                    if t.state == TargetState::Confirmed {
                        run.confirmed = true;
                    } else {
                        run.failed_at = Some(std::time::Instant::now());
                    }
                }
            }
            // Why, by kind: an endpoint down reads differently from a
            // city of timeouts.
            let mut why: BTreeMap<&str, usize> = BTreeMap::new();
            for t in command
                .targets
                .iter()
                .filter(|t| t.state != TargetState::Confirmed)
            {
                let reason = match &t.reason {
                    Some(FailCause::Offline) => "offline",
                    Some(FailCause::Timeout) => "timeout",
                    Some(FailCause::Exception { .. }) => "exception",
                    Some(FailCause::Transport { .. }) => "transport",
                    Some(FailCause::Mismatch { .. }) => "mismatch",
                    Some(FailCause::ShuttingDown) => "shutting_down",
                    Some(FailCause::NotHeld) => "not_held",
                    None => "unknown",
                };
                *why.entry(reason).or_default() += 1;
            }
            let failed: usize = why.values().sum();
            if failed > 0 {
                tracing::warn!(command = %command.id, failed, reasons = ?why, "schedule command not confirmed everywhere: tried again later");
            }
        });
    }

    /// Ends the holds that are over; returns their targets.
    fn release_holds(&self, plan: &Plan, now: DateTime<Utc>) -> Vec<String> {
        let mut holds = self.holds.lock();
        let inv = &plan.inventory;
        let mut over = Vec::new();
        for (key, h) in holds.iter() {
            let ended = match h.until {
                Some(until) => until <= now,
                None => {
                    let target = key_target(inv, key);
                    target
                        .and_then(|t| plan.next_event(t, h.since))
                        .is_none_or(|e| e.at <= now)
                }
            };
            if ended {
                over.push(key.clone());
            }
        }
        for k in &over {
            holds.remove(k);
            tracing::info!(target = %k, "manual hold over: back to the schedule");
        }
        if !over.is_empty() {
            self.save_holds(&holds);
        }
        over
    }

    /// Ends the manual holds on `targets` now (a TALQ CMS ending its
    /// override): they go back to what the schedule says, from a tick
    /// started at once. Returns the targets that were held.
    pub fn release(&self, targets: &[String]) -> Vec<String> {
        let mut holds = self.holds.lock();
        let ended: Vec<String> = targets
            .iter()
            .filter(|t| holds.remove(t.as_str()).is_some())
            .cloned()
            .collect();
        if ended.is_empty() {
            return ended;
        }
        self.save_holds(&holds);
        drop(holds);
        {
            // Nothing commanded: the next tick commands the plan's level.
            let mut runs = self.runs.lock();
            for t in &ended {
                runs.remove(t);
            }
        }
        tracing::info!(
            targets = ended.len(),
            "manual holds ended on request: back to the schedule"
        );
        self.wake.notify_one();
        ended
    }

    fn save_holds(&self, holds: &BTreeMap<String, Hold>) {
        let bytes = serde_json::to_vec_pretty(holds).expect("plain data");
        if let Err(e) = crate::atomic_file::write(&self.holds_path, &bytes) {
            tracing::error!(path = %self.holds_path.display(), error = %e, "cannot keep the manual holds");
        }
    }

    /// A manual command completed: its confirmed targets are held.
    fn manual(&self, command: &Command) {
        if matches!(
            command.source,
            CommandSource::Schedule | CommandSource::Expiry
        ) {
            return;
        }
        let level = match command.action {
            Action::On => 100.0,
            Action::Off => 0.0,
            Action::Dim { level } => level,
        };
        // Only what a calendar governs is held: the rest has no schedule to
        // go back to.
        let plan = self.plan();
        let governed = |key: &str| match key_target(&plan.inventory, key) {
            Some(Target::Lamp(l)) => plan.governs_lamp(l),
            Some(t @ Target::Circuit(..)) => plan.targets().any(|x| x == t),
            None => false,
        };
        let mut holds = self.holds.lock();
        let mut changed = false;
        for t in command
            .targets
            .iter()
            .filter(|t| t.state == TargetState::Confirmed && governed(&t.id))
        {
            holds.insert(
                t.id.clone(),
                Hold {
                    since: self.now(),
                    until: command.expires_at,
                    level,
                    command: command.id.clone(),
                },
            );
            self.runs.lock().remove(&t.id);
            changed = true;
        }
        if changed {
            self.save_holds(&holds);
            drop(holds);
            self.wake.notify_one();
        }
    }

    /// Every governed target now, as `/schedules/state` shows it.
    pub fn state_now(&self, district: Option<&str>) -> Vec<TargetNow> {
        let now = self.now();
        let plan = self.plan();
        let inv = &plan.inventory;
        let holds = self.holds.lock().clone();
        let runs = self.runs.lock().clone();
        let mut memo: HashMap<super::plan::Signature, Option<Event>> = HashMap::new();
        plan.targets()
            .filter_map(|t| {
                let (kind, d) = match t {
                    Target::Lamp(l) => {
                        ("lamp", inv.cabinet(&inv.lamps[l].cabinet)?.district.clone())
                    }
                    Target::Circuit(c, _) => ("circuit", inv.cabinets[c].district.clone()),
                };
                if district.is_some_and(|x| x != d) {
                    return None;
                }
                let key = target_key(inv, t);
                let ev: Option<Event> = memo
                    .entry(plan.signature(t))
                    .or_insert_with(|| plan.level_at(t, now))
                    .clone();
                let hold = holds.get(&key);
                let run = runs.get(&key);
                Some(TargetNow {
                    kind,
                    district: d,
                    scheduled: ev.as_ref().map(|e| e.level),
                    effective: hold.map(|h| h.level).or(ev.as_ref().map(|e| e.level)),
                    source: if hold.is_some() {
                        Some(Source::Override)
                    } else {
                        ev.as_ref().map(|e| e.source)
                    },
                    program: ev.as_ref().map(|e| e.program.clone()),
                    rule: ev.as_ref().map(|e| format!("{} {}", e.rule, e.point)),
                    commanded: run.and_then(|r| r.commanded),
                    confirmed: run.is_some_and(|r| r.confirmed),
                    target: key,
                })
            })
            .collect()
    }
}

/// The target a key names in an inventory.
pub fn key_target(inv: &Inventory, key: &str) -> Option<Target> {
    if let Some(l) = inv.lamp_position(key) {
        return Some(Target::Lamp(l));
    }
    let (cab, n) = key.rsplit_once('#')?;
    Some(Target::Circuit(inv.cabinet_position(cab)?, n.parse().ok()?))
}

/// Reads a book file; absent is an empty book.
pub fn load_book(path: &std::path::Path) -> Result<Book, ScheduleError> {
    let bad = |detail: String| ScheduleError::File {
        path: path.display().to_string(),
        detail,
    };
    let Some(bytes) = crate::atomic_file::read_if_present(path).map_err(|e| bad(e.to_string()))?
    else {
        return Ok(Book::default());
    };
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| bad(format!("{}: {}", e.path(), e.inner())))
}

#[derive(Debug)]
struct Observer(std::sync::Weak<Schedule>);

impl CommandObserver for Observer {
    fn completed(&self, command: &Command) {
        if let Some(s) = self.0.upgrade() {
            s.manual(command);
        }
    }
}

#[derive(Debug)]
struct Governor(std::sync::Weak<Schedule>);

impl Governs for Governor {
    fn governs(&self, lamp: &str) -> bool {
        let Some(s) = self.0.upgrade() else {
            return false;
        };
        let plan = s.plan();
        plan.inventory
            .lamp_position(lamp)
            .is_some_and(|l| plan.governs_lamp(l))
    }
}
