//! The alarm engine: judges the conditions (rules.rs) after every applied
//! batch, on the state task, and keeps every alarm's lifecycle.
//!
//! Its rules: a condition raises an alarm once it has held for its kind's
//! debounce (per district); a standing alarm clears at the first judgement
//! without its condition; a condition back within `alarms.hysteresis` of
//! the clear reopens the same alarm (`occurrences` + 1, acknowledgement
//! kept), later it raises a new one. A cleared alarm closes once it is
//! acknowledged and the hysteresis has passed, or `alarms.auto_close_after`
//! after the clear; an admin may close a standing alarm (a false alarm: its
//! condition raises nothing more until it has cleared once). Every change
//! bumps the alarm's `version` and goes to every [`AlarmSink`] in order.
//!
//! Only what changed costs anything: per subject the engine keeps a bit per
//! kind for "held at the last judgement" and one for "raised", and looks up
//! an alarm only where a bit differs or a held condition waits out its
//! debounce.

use super::config::{AlarmSettings, KindRule};
use super::filter::AlarmFilter;
use super::layout::Layout;
use super::model::{Alarm, AlarmChange, AlarmKind, AlarmState, ChangeKind, DeviceKind};
use super::rules::{self, bit, Mask, Suppress, Tolerances};
use super::AlarmSink;
use crate::state::{Applied, Inner, LiveState, Sink};
use crate::topology::{PollClass, Topology};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlarmError {
    #[error("no open alarm {0}")]
    NotOpen(i64),
    #[error("alarm {0} is already acknowledged")]
    AlreadyAcknowledged(i64),
    #[error("alarm {0} still stands: only an admin closes an alarm before it clears")]
    Standing(i64),
}

/// What an alarm is about: one of the layout's subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Which {
    Lamp(usize),
    Rtu(usize),
    Circuit(usize),
    Endpoint(usize),
}

type Key = (AlarmKind, DeviceKind, String);

/// The settings with every kind's rule filled in per district.
#[derive(Debug)]
struct Prepared {
    settings: AlarmSettings,
    /// By district position; the last entry is for subjects without one.
    rules: Vec<[KindRule; 14]>,
}

impl Prepared {
    fn new(settings: AlarmSettings, layout: &Layout) -> Prepared {
        let table = |d: &str| AlarmKind::ALL.map(|k| settings.rule(k, d));
        let mut rules: Vec<_> = layout
            .inventory
            .districts
            .iter()
            .map(|d| table(&d.id))
            .collect();
        rules.push(table(""));
        Prepared { settings, rules }
    }

    fn rule(&self, district: Option<usize>, kind: AlarmKind) -> KindRule {
        let d = district.unwrap_or(self.rules.len() - 1);
        self.rules[d.min(self.rules.len() - 1)][kind as usize]
    }
}

/// Per subject: conditions held at the last judgement, and alarms raised.
#[derive(Debug, Default)]
struct Bits {
    held: Vec<Mask>,
    raised: Vec<Mask>,
}

impl Bits {
    fn new(n: usize) -> Bits {
        Bits {
            held: vec![0; n],
            raised: vec![0; n],
        }
    }
}

#[derive(Debug, Default)]
struct Book {
    /// Every alarm not closed, by id.
    open: BTreeMap<i64, Alarm>,
    /// The latest alarm of each subject and kind (standing or cleared).
    current: HashMap<Key, i64>,
    /// Conditions waiting out their debounce: since when they hold.
    pending: HashMap<Key, DateTime<Utc>>,
    lamps: Bits,
    rtus: Bits,
    circuits: Bits,
    endpoints: Bits,
    /// When each endpoint came back from `endpoint_down`: its devices not
    /// polled since are not judged for `comms_lost`.
    endpoint_back: Vec<Option<DateTime<Utc>>>,
    /// Circuits whose SLCs are all silent under a supply loss.
    circuit_explains: Vec<rules::Explains>,
    /// Districts whose standing set changed since the last `take_dirty`.
    dirty: BTreeSet<String>,
}

impl Book {
    fn for_layout(layout: &Layout) -> Book {
        Book {
            lamps: Bits::new(layout.inventory.lamps.len()),
            rtus: Bits::new(layout.inventory.cabinets.len()),
            circuits: Bits::new(layout.circuits.len()),
            endpoints: Bits::new(layout.endpoints.len()),
            endpoint_back: vec![None; layout.endpoints.len()],
            circuit_explains: vec![rules::Explains::default(); layout.circuits.len()],
            ..Book::default()
        }
    }

    fn bits(&mut self, which: Which) -> (&mut Mask, &mut Mask) {
        let (b, i) = match which {
            Which::Lamp(i) => (&mut self.lamps, i),
            Which::Rtu(i) => (&mut self.rtus, i),
            Which::Circuit(i) => (&mut self.circuits, i),
            Which::Endpoint(i) => (&mut self.endpoints, i),
        };
        (&mut b.held[i], &mut b.raised[i])
    }
}

/// The subject's names as an alarm carries them.
struct Subject {
    device_kind: DeviceKind,
    device_id: String,
    circuit: Option<u8>,
    cabinet: Option<String>,
    district: String,
    district_pos: Option<usize>,
}

fn subject(layout: &Layout, which: Which, kind: AlarmKind) -> Subject {
    let inv = &layout.inventory;
    let cabinet_named = |c: Option<usize>| {
        let cab = c.map(|c| &inv.cabinets[c]);
        (
            cab.map(|c| c.id.clone()),
            cab.map(|c| c.district.clone()).unwrap_or_default(),
            c.and_then(|c| inv.district_of_cabinet(c)),
        )
    };
    match which {
        Which::Lamp(l) => {
            let (cabinet, district, district_pos) = cabinet_named(inv.cabinet_of_lamp(l));
            Subject {
                device_kind: DeviceKind::Lamp,
                device_id: inv.lamps[l].id.clone(),
                circuit: Some(inv.lamps[l].circuit),
                cabinet,
                district,
                district_pos,
            }
        }
        Which::Rtu(c) => {
            let (cabinet, district, district_pos) = cabinet_named(Some(c));
            let cab = &inv.cabinets[c];
            // The RTU's flags are the cabinet's (its door, its leakage); its
            // silence is the RTU's.
            let (device_kind, device_id) = if kind == AlarmKind::CommsLost {
                (
                    DeviceKind::Rtu,
                    cab.rtu
                        .as_ref()
                        .map_or_else(|| cab.id.clone(), |r| r.id.clone()),
                )
            } else {
                (DeviceKind::Cabinet, cab.id.clone())
            };
            Subject {
                device_kind,
                device_id,
                circuit: None,
                cabinet,
                district,
                district_pos,
            }
        }
        Which::Circuit(k) => {
            let circ = &layout.circuits[k];
            let (cabinet, district, district_pos) = cabinet_named(Some(circ.cabinet));
            Subject {
                device_kind: DeviceKind::Circuit,
                device_id: circ.id.clone(),
                circuit: Some(circ.number),
                cabinet,
                district,
                district_pos,
            }
        }
        Which::Endpoint(e) => {
            let part = &layout.endpoints[e];
            let (cabinet, district, district_pos) = cabinet_named(part.cabinet);
            Subject {
                device_kind: DeviceKind::Endpoint,
                device_id: part.address.clone(),
                circuit: None,
                cabinet,
                district,
                district_pos,
            }
        }
    }
}

/// What the gateway saw, kept with the alarm when it is raised.
fn detail(layout: &Layout, inner: &Inner, which: Which, kind: AlarmKind) -> serde_json::Value {
    use serde_json::json;
    match which {
        Which::Lamp(l) => {
            let d = &inner.lamps[l];
            let mut v = json!({
                "slc": layout.inventory.lamps[l].slc.as_ref().map(|s| s.id.clone()),
                "rated_power_w": layout.inventory.lamps[l].rated_power_w,
            });
            if let Some(r) = &d.reading {
                v["on"] = json!(r.on);
                v["dim_level"] = json!(r.dim_level);
                v["voltage"] = json!(r.voltage);
                v["power"] = json!(r.power);
                v["fault_flags"] = json!(r.fault_flags);
            }
            if kind == AlarmKind::CommsLost {
                v["reason"] = json!(d.last_error);
                v["last_seen"] = json!(d.last_seen);
            }
            v
        }
        Which::Rtu(c) => {
            let d = &inner.rtus[c];
            let mut v = json!({});
            if kind == AlarmKind::CommsLost {
                v["reason"] = json!(d.last_error);
                v["last_seen"] = json!(d.last_seen);
            }
            v
        }
        Which::Circuit(k) => {
            let circ = &layout.circuits[k];
            let ids = |ls: &[usize]| -> Vec<String> {
                ls.iter()
                    .map(|&l| layout.inventory.lamps[l].id.clone())
                    .collect()
            };
            let contactor = inner
                .rtus
                .get(circ.cabinet)
                .filter(|r| r.online)
                .and_then(|r| r.reading.as_ref())
                .and_then(|r| r.contactors.get(usize::from(circ.number) - 1).copied());
            let voltages: Vec<Option<f64>> = circ
                .slc_lamps
                .iter()
                .map(|&l| inner.lamps[l].reading.as_ref().and_then(|r| r.voltage))
                .collect();
            json!({
                "lamps": ids(&circ.lamps),
                "contactor_closed": contactor,
                "scheduled_closed": inner
                    .scheduled_contactors
                    .get(&(circ.cabinet, circ.number))
                    .copied(),
                "slc_voltages": voltages,
                "slcs_online": circ.slc_lamps.iter().filter(|&&l| inner.lamps[l].online).count(),
            })
        }
        Which::Endpoint(e) => {
            let part = &layout.endpoints[e];
            json!({
                "devices": part.rtus.len() + part.lamps.len(),
                "reason": part
                    .rtus
                    .iter()
                    .map(|&r| &inner.rtus[r].last_error)
                    .chain(part.lamps.iter().map(|&l| &inner.lamps[l].last_error))
                    .flatten()
                    .next(),
            })
        }
    }
}

/// The alarm engine. One per gateway; the state task offers it every batch
/// (as a [`Sink`]), the API acknowledges and closes through it, its task
/// closes what is due (`run`).
#[derive(Debug)]
pub struct Alarms {
    live: RwLock<Arc<LiveState>>,
    layout: RwLock<Arc<Layout>>,
    prepared: RwLock<Arc<Prepared>>,
    book: Mutex<Book>,
    sinks: RwLock<Vec<Arc<dyn AlarmSink>>>,
    last_id: AtomicI64,
    /// Where the open alarms are written after they change (`alarms.file`).
    snapshot: RwLock<Option<std::path::PathBuf>>,
    /// A change since the last snapshot.
    unsaved: std::sync::atomic::AtomicBool,
    /// Changes handed to the sinks since start.
    pub changes_total: std::sync::atomic::AtomicU64,
}

impl Alarms {
    pub fn new(settings: AlarmSettings, live: Arc<LiveState>, topology: &Topology) -> Arc<Alarms> {
        let layout = Arc::new(Layout::new(live.inventory.clone(), topology));
        let prepared = Arc::new(Prepared::new(settings, &layout));
        Arc::new(Alarms {
            book: Mutex::new(Book::for_layout(&layout)),
            live: RwLock::new(live),
            layout: RwLock::new(layout),
            prepared: RwLock::new(prepared),
            sinks: RwLock::new(Vec::new()),
            last_id: AtomicI64::new(0),
            snapshot: RwLock::new(None),
            unsaved: Default::default(),
            changes_total: Default::default(),
        })
    }

    pub fn settings(&self) -> AlarmSettings {
        self.prepared.read().settings.clone()
    }

    /// Adds a consumer of every change from now on.
    pub fn add_sink(&self, sink: Arc<dyn AlarmSink>) {
        self.sinks.write().push(sink);
    }

    fn emit(&self, changes: Vec<AlarmChange>) {
        if changes.is_empty() {
            return;
        }
        self.changes_total
            .fetch_add(changes.len() as u64, Ordering::Relaxed);
        self.unsaved.store(true, Ordering::Release);
        for c in &changes {
            tracing::info!(
                alarm = c.alarm.id,
                kind = %c.alarm.kind,
                change = c.change.as_str(),
                device_kind = c.alarm.device_kind.as_str(),
                device_id = %c.alarm.device_id,
                district = %c.alarm.district,
                severity = c.alarm.severity.as_str(),
                "alarm"
            );
        }
        let changes: Arc<[AlarmChange]> = changes.into();
        for sink in self.sinks.read().iter() {
            sink.offer_alarms(changes.clone());
        }
    }

    /// A new id above every id given or restored: milliseconds × 4096.
    fn next_id(&self, at: DateTime<Utc>) -> i64 {
        let base = at.timestamp_millis().max(0) << 12;
        let mut last = self.last_id.load(Ordering::Relaxed);
        loop {
            let id = base.max(last + 1);
            match self
                .last_id
                .compare_exchange(last, id, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return id,
                Err(now) => last = now,
            }
        }
    }

    /// Takes back the alarms the store had open at start (before the first
    /// batch): a condition that still holds continues its alarm, one that
    /// does not clears it at the first judgement. Alarms of subjects the
    /// inventory no longer has are closed.
    pub fn restore(&self, alarms: Vec<Alarm>, now: DateTime<Utc>) {
        let layout = self.layout.read().clone();
        let mut book = self.book.lock();
        let mut changes = Vec::new();
        for a in alarms {
            if a.state == AlarmState::Closed || book.open.contains_key(&a.id) {
                continue;
            }
            self.last_id.fetch_max(a.id, Ordering::Relaxed);
            let Some(which) = find(&layout, &a) else {
                let mut a = a;
                close(&mut a, now, "inventory");
                changes.push(change(ChangeKind::Closed, now, &a));
                continue;
            };
            if a.state.is_standing() {
                let (held, raised) = book.bits(which);
                *held |= bit(a.kind);
                *raised |= bit(a.kind);
            }
            book.current
                .insert((a.kind, a.device_kind, a.device_id.clone()), a.id);
            book.dirty.insert(a.district.clone());
            book.open.insert(a.id, a);
        }
        drop(book);
        self.emit(changes);
    }

    /// A reload: the new generation's live state and layout. Open alarms
    /// stay (by device id); conditions waiting out a debounce start again.
    pub fn rewire(&self, live: Arc<LiveState>, topology: &Topology, settings: AlarmSettings) {
        let layout = Arc::new(Layout::new(live.inventory.clone(), topology));
        let prepared = Arc::new(Prepared::new(settings, &layout));
        let open: Vec<Alarm> = {
            let mut book = self.book.lock();
            let open = std::mem::take(&mut book.open).into_values().collect();
            *book = Book::for_layout(&layout);
            open
        };
        *self.live.write() = live;
        *self.layout.write() = layout;
        *self.prepared.write() = prepared;
        self.restore(open, Utc::now());
    }

    /// Judges every subject the batch's endpoint and class carry.
    pub fn evaluate(&self, batch: &Applied) {
        let live = self.live.read().clone();
        let layout = self.layout.read().clone();
        let prepared = self.prepared.read().clone();
        if !prepared.settings.enabled {
            return;
        }
        let e = batch.endpoint as usize;
        if e >= layout.endpoints.len() {
            return;
        }
        let at = batch.at;
        let inner = live.read();
        let mut book = self.book.lock();
        let mut changes = Vec::new();
        let mut judge = |book: &mut Book, which: Which, holds: Mask, known: Mask| {
            let (held, raised) = book.bits(which);
            let old = *held;
            let new = (old & !known) | (holds & known);
            *held = new;
            let todo = (old ^ new) | (new & !*raised);
            for kind in rules::kinds(todo) {
                if let Some(c) = self.settle(
                    book,
                    &layout,
                    &prepared,
                    &inner,
                    which,
                    kind,
                    new & bit(kind) != 0,
                    at,
                ) {
                    changes.push(c);
                }
            }
        };
        let down = rules::endpoint_down(&inner, &layout, e);
        let was_down = book.endpoints.held[e] & bit(AlarmKind::EndpointDown) != 0;
        judge(
            &mut book,
            Which::Endpoint(e),
            if down {
                bit(AlarmKind::EndpointDown)
            } else {
                0
            },
            bit(AlarmKind::EndpointDown),
        );
        if was_down && !down {
            book.endpoint_back[e] = Some(at);
        }
        let back = book.endpoint_back[e];
        for &c in &layout.endpoints[e].circuits {
            let (j, explains) = rules::circuit(&inner, &layout, c);
            book.circuit_explains[c] = explains;
            judge(&mut book, Which::Circuit(c), j.holds, j.known);
        }
        let polled_before_back = |last: Option<DateTime<Utc>>| match (back, last) {
            (Some(b), Some(l)) => l < b,
            _ => false,
        };
        match batch.class {
            PollClass::Rtu => {
                for &r in &layout.endpoints[e].rtus {
                    let suppress = Suppress {
                        endpoint: down || polled_before_back(inner.rtus[r].last_poll),
                        circuit: false,
                        burning: false,
                    };
                    let j = rules::rtu(&inner, r, suppress);
                    judge(&mut book, Which::Rtu(r), j.holds, j.known);
                }
            }
            PollClass::Slc => {
                let inv = &layout.inventory;
                for &l in &layout.endpoints[e].lamps {
                    let district = inv
                        .cabinet_of_lamp(l)
                        .and_then(|c| inv.district_of_cabinet(c));
                    let tol = Tolerances {
                        dimming: prepared.rule(district, AlarmKind::DimmingFailure).tolerance,
                        power: prepared.rule(district, AlarmKind::PowerAbnormal).tolerance,
                    };
                    let explains = book
                        .circuit_explains
                        .get(layout.lamp_circuit[l])
                        .copied()
                        .unwrap_or_default();
                    let suppress = Suppress {
                        endpoint: down || polled_before_back(inner.lamps[l].last_poll),
                        circuit: explains.silence,
                        burning: explains.burning,
                    };
                    let j =
                        rules::lamp(&live, &inner, l, inv.lamps[l].rated_power_w, tol, suppress);
                    judge(&mut book, Which::Lamp(l), j.holds, j.known);
                }
            }
        }
        drop(book);
        drop(inner);
        self.emit(changes);
    }

    /// One subject's condition of one kind judged at `at`.
    #[allow(clippy::too_many_arguments)]
    fn settle(
        &self,
        book: &mut Book,
        layout: &Layout,
        prepared: &Prepared,
        inner: &Inner,
        which: Which,
        kind: AlarmKind,
        holds: bool,
        at: DateTime<Utc>,
    ) -> Option<AlarmChange> {
        let subj = subject(layout, which, kind);
        let key: Key = (kind, subj.device_kind, subj.device_id.clone());
        let current = book.current.get(&key).copied();
        if !holds {
            book.pending.remove(&key);
            *book.bits(which).1 &= !bit(kind);
            let a = book.open.get_mut(&current?)?;
            if !a.state.is_standing() {
                return None;
            }
            a.state = AlarmState::Cleared;
            a.cleared_at = Some(at);
            a.version += 1;
            book.dirty.insert(a.district.clone());
            return Some(change(ChangeKind::Cleared, at, a));
        }
        if let Some(a) = current.and_then(|id| book.open.get_mut(&id)) {
            if a.state.is_standing() {
                *book.bits(which).1 |= bit(kind);
                return None;
            }
            let hysteresis =
                chrono::Duration::from_std(prepared.settings.hysteresis).unwrap_or_default();
            if a.cleared_at.is_some_and(|c| at - c <= hysteresis) {
                a.state = if a.acknowledged_at.is_some() {
                    AlarmState::Acknowledged
                } else {
                    AlarmState::Active
                };
                a.cleared_at = None;
                a.occurrences += 1;
                a.version += 1;
                book.dirty.insert(a.district.clone());
                let c = change(ChangeKind::Reopened, at, a);
                *book.bits(which).1 |= bit(kind);
                return Some(c);
            }
        }
        let rule = prepared.rule(subj.district_pos, kind);
        if !rule.enabled {
            return None;
        }
        let since = *book.pending.entry(key.clone()).or_insert(at);
        let debounce = chrono::Duration::from_std(rule.debounce).unwrap_or_default();
        if at - since < debounce {
            return None;
        }
        book.pending.remove(&key);
        let deadline = chrono::Duration::from_std(prepared.settings.deadlines.of(rule.severity))
            .unwrap_or(chrono::Duration::days(1));
        let mut detail = detail(layout, inner, which, kind);
        if since < at {
            detail["condition_since"] = serde_json::json!(since);
        }
        let alarm = Alarm {
            id: self.next_id(at),
            kind,
            severity: rule.severity,
            state: AlarmState::Active,
            device_kind: subj.device_kind,
            device_id: subj.device_id,
            circuit: subj.circuit,
            cabinet: subj.cabinet,
            district: subj.district,
            raised_at: at,
            acknowledged_at: None,
            acknowledged_by: None,
            comment: None,
            cleared_at: None,
            closed_at: None,
            occurrences: 1,
            deadline: at + deadline,
            overdue: false,
            detail,
            version: 1,
        };
        let c = change(ChangeKind::Raised, at, &alarm);
        *book.bits(which).1 |= bit(kind);
        book.dirty.insert(alarm.district.clone());
        book.current.insert(key, alarm.id);
        book.open.insert(alarm.id, alarm);
        Some(c)
    }

    /// Closes what is due at `now`: cleared and acknowledged past the
    /// hysteresis, or cleared for `auto_close_after`.
    pub fn tick(&self, now: DateTime<Utc>) {
        let prepared = self.prepared.read().clone();
        let hysteresis =
            chrono::Duration::from_std(prepared.settings.hysteresis).unwrap_or_default();
        let auto =
            chrono::Duration::from_std(prepared.settings.auto_close_after).unwrap_or_default();
        let mut book = self.book.lock();
        let due: Vec<i64> = book
            .open
            .values()
            .filter(|a| {
                a.cleared_at.is_some_and(|c| {
                    (a.acknowledged_at.is_some() && now - c >= hysteresis) || now - c >= auto
                })
            })
            .map(|a| a.id)
            .collect();
        let mut changes = Vec::new();
        for id in due {
            let by = if book.open[&id].acknowledged_at.is_some() {
                "acknowledged"
            } else {
                "auto"
            };
            if let Some(c) = take_closed(&mut book, id, now, by) {
                changes.push(c);
            }
        }
        drop(book);
        self.emit(changes);
    }

    /// An operator acknowledges an open alarm with a comment.
    pub fn acknowledge(
        &self,
        id: i64,
        by: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<Alarm, AlarmError> {
        let hysteresis = chrono::Duration::from_std(self.prepared.read().settings.hysteresis)
            .unwrap_or_default();
        let mut book = self.book.lock();
        let a = book.open.get_mut(&id).ok_or(AlarmError::NotOpen(id))?;
        if a.acknowledged_at.is_some() {
            return Err(AlarmError::AlreadyAcknowledged(id));
        }
        a.acknowledged_at = Some(now);
        a.acknowledged_by = Some(by.to_string());
        a.comment = Some(comment.to_string());
        if a.state == AlarmState::Active {
            a.state = AlarmState::Acknowledged;
        }
        a.version += 1;
        let mut changes = vec![change(ChangeKind::Acknowledged, now, a)];
        let mut result = a.clone();
        book.dirty.insert(result.district.clone());
        if result.cleared_at.is_some_and(|c| now - c >= hysteresis) {
            if let Some(c) = take_closed(&mut book, id, now, "acknowledged") {
                result = c.alarm.clone();
                changes.push(c);
            }
        }
        drop(book);
        self.emit(changes);
        Ok(result.as_of(now))
    }

    /// Closes an alarm: once cleared anyone who may acknowledge it; while it
    /// stands only an admin (`force`).
    pub fn close(
        &self,
        id: i64,
        by: &str,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<Alarm, AlarmError> {
        let mut book = self.book.lock();
        let a = book.open.get(&id).ok_or(AlarmError::NotOpen(id))?;
        if a.state.is_standing() && !force {
            return Err(AlarmError::Standing(id));
        }
        let c = take_closed(&mut book, id, now, by).ok_or(AlarmError::NotOpen(id))?;
        let result = c.alarm.clone();
        drop(book);
        self.emit(vec![c]);
        Ok(result)
    }

    /// An open alarm (not closed) by id, as of `now`.
    pub fn get(&self, id: i64, now: DateTime<Utc>) -> Option<Alarm> {
        self.book.lock().open.get(&id).map(|a| a.as_of(now))
    }

    /// Every alarm not closed, newest first, as of `now`.
    pub fn open(&self, now: DateTime<Utc>) -> Vec<Alarm> {
        self.book
            .lock()
            .open
            .values()
            .rev()
            .map(|a| a.as_of(now))
            .collect()
    }

    /// The open alarms `filter` lets through, newest first, as of `now`:
    /// only those are copied out (a list asks for a few of thousands).
    pub fn open_matching(&self, filter: &AlarmFilter, now: DateTime<Utc>) -> Vec<Alarm> {
        self.book
            .lock()
            .open
            .values()
            .rev()
            .filter(|a| filter.matches(a, now))
            .map(|a| a.as_of(now))
            .collect()
    }

    /// Calls `f` on every open alarm, newest first, with whether it is
    /// overdue as of `now`, without copying any: for counts. `f` runs under
    /// the engine's lock, so it must only look.
    pub fn for_each_open(&self, now: DateTime<Utc>, mut f: impl FnMut(&Alarm, bool)) {
        for a in self.book.lock().open.values().rev() {
            f(a, a.overdue_at(now));
        }
    }

    /// The standing alarms (active or acknowledged).
    pub fn standing(&self, now: DateTime<Utc>) -> Vec<Alarm> {
        self.book
            .lock()
            .open
            .values()
            .rev()
            .filter(|a| a.state.is_standing())
            .map(|a| a.as_of(now))
            .collect()
    }

    /// Every district of the inventory.
    pub fn layout_districts(&self) -> Vec<String> {
        self.layout
            .read()
            .inventory
            .districts
            .iter()
            .map(|d| d.id.clone())
            .collect()
    }

    /// Districts whose standing set changed since the last call (for the
    /// retained active sets on MQTT).
    pub fn take_dirty(&self) -> BTreeSet<String> {
        std::mem::take(&mut self.book.lock().dirty)
    }

    /// Writes the open alarms to `path` after every change from now on.
    pub fn keep_snapshot(&self, path: std::path::PathBuf) {
        *self.snapshot.write() = Some(path);
        self.unsaved.store(true, Ordering::Release);
    }

    /// Writes the open alarms if they changed since the last write: whole,
    /// to a temporary file renamed over the old one, so a kill leaves the
    /// old or the new, never a torn one.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = self.snapshot.read().clone() else {
            return Ok(());
        };
        if !self.unsaved.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let open: Vec<Alarm> = self.book.lock().open.values().cloned().collect();
        let bytes = serde_json::to_vec(&open).expect("alarms serialise");
        let result = crate::atomic_file::write(&path, &bytes);
        if result.is_err() {
            self.unsaved.store(true, Ordering::Release);
        }
        result
    }

    /// Closes what is due every `alarms.tick` and saves the open alarms,
    /// until cancelled (then saves once more).
    pub async fn run(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        loop {
            let tick = self.prepared.read().settings.tick;
            let stop = tokio::select! {
                () = cancel.cancelled() => true,
                () = tokio::time::sleep(tick) => false,
            };
            if !stop {
                self.tick(Utc::now());
            }
            let me = self.clone();
            let saved = tokio::task::spawn_blocking(move || me.save()).await;
            if let Ok(Err(e)) = saved {
                let path = self.snapshot.read().clone().unwrap_or_default();
                tracing::warn!(path = %path.display(), error = %e, "cannot save the open alarms");
            }
            if stop {
                return;
            }
        }
    }
}

/// The open alarms a previous run saved (`Alarms::save`); none when the
/// file is absent. A file that cannot be read is set aside
/// (`<file>.bad-<unix seconds>`) with an error logged: it never stops a start.
pub fn read_snapshot(path: &std::path::Path) -> Vec<Alarm> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read the saved open alarms");
            return Vec::new();
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            let aside = path.with_extension(format!("json.bad-{}", Utc::now().timestamp()));
            let _ = std::fs::rename(path, &aside);
            tracing::error!(path = %path.display(), aside = %aside.display(), error = %e, "the saved open alarms are damaged; set aside");
            Vec::new()
        }
    }
}

fn change(change: ChangeKind, at: DateTime<Utc>, a: &Alarm) -> AlarmChange {
    AlarmChange {
        change,
        at,
        alarm: a.as_of(at),
    }
}

fn close(a: &mut Alarm, now: DateTime<Utc>, by: &str) {
    a.state = AlarmState::Closed;
    a.closed_at = Some(now);
    a.version += 1;
    a.detail["closed_by"] = serde_json::json!(by);
}

/// Closes an open alarm and forgets it (the store keeps it).
fn take_closed(book: &mut Book, id: i64, now: DateTime<Utc>, by: &str) -> Option<AlarmChange> {
    let mut a = book.open.remove(&id)?;
    close(&mut a, now, by);
    let key = (a.kind, a.device_kind, a.device_id.clone());
    if book.current.get(&key) == Some(&id) {
        book.current.remove(&key);
    }
    book.dirty.insert(a.district.clone());
    Some(change(ChangeKind::Closed, now, &a))
}

/// The subject of a stored alarm in this layout.
fn find(layout: &Layout, a: &Alarm) -> Option<Which> {
    let inv = &layout.inventory;
    match a.device_kind {
        DeviceKind::Lamp => inv.lamp_position(&a.device_id).map(Which::Lamp),
        DeviceKind::Rtu => inv.rtu_position(&a.device_id).map(Which::Rtu),
        DeviceKind::Cabinet => inv
            .cabinets
            .iter()
            .position(|c| c.id == a.device_id)
            .map(Which::Rtu),
        DeviceKind::Circuit => layout
            .circuit_index
            .get(&a.device_id)
            .copied()
            .map(Which::Circuit),
        DeviceKind::Endpoint => layout
            .endpoints
            .iter()
            .position(|e| e.address == a.device_id)
            .map(Which::Endpoint),
    }
}

/// The state's handle on the engine: every applied batch is judged on the
/// state task, right after it was applied.
#[derive(Debug)]
pub struct AlarmJudge(pub Arc<Alarms>);

impl Sink for AlarmJudge {
    fn offer(&self, batch: Arc<Applied>) {
        self.0.evaluate(&batch);
    }
}
