//! Live state: the latest values and online status of every RTU and SLC, and
//! the online/offline transitions, fed by the pollers through one channel.

mod carry;
pub mod metrics;
mod name;
mod reading;
#[cfg(test)]
mod spec;
mod view;

pub use name::{device_name, DeviceName};
pub use reading::{FailReason, Reading, RtuReading, SlcReading, LAMP_FAILURE_BIT};
pub use view::{LampView, RtuView};

use crate::inventory::Inventory;
use crate::lighting::{LampFacts, Lighting};
use crate::topology::{DeviceKey, PollClass, Topology};
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How many transitions the state keeps in memory for the API.
const RECENT_TRANSITIONS: usize = 10_000;

/// What one poll cycle of one class on one endpoint produced.
#[derive(Debug)]
pub struct PollOutcome {
    pub endpoint: u32,
    pub class: PollClass,
    pub at: DateTime<Utc>,
    pub connected: bool,
    /// False for polls that were due but not sent (backoff, DTU absent): they
    /// fail their devices but are no poll cycle of the endpoint.
    pub sent: bool,
    pub elapsed: Duration,
    pub reads_ok: u32,
    pub reads_failed: u32,
    pub results: Vec<(DeviceKey, Result<Reading, FailReason>)>,
}

/// A command write that an endpoint's poller carried out and read back: a
/// fact about the lamp, like a sample, that the state applies (it is the only
/// writer of the live state). The poller waits for `applied` before it
/// reports the target confirmed, so a confirmed command is already what the
/// lighting rate sees.
#[derive(Debug)]
pub struct ConfirmedWrite {
    pub key: DeviceKey,
    /// The switch state the lighting rule now takes for the lamp.
    pub commanded_on: bool,
    pub applied: oneshot::Sender<()>,
}

/// What the pollers send the state, in the order they happened.
#[derive(Debug)]
pub enum Report {
    Poll(PollOutcome),
    Write(ConfirmedWrite),
    /// Cluster mode: this instance stopped polling an endpoint (another
    /// instance holds its lease now). Its devices go back to not observed
    /// here — never polled, no reading — with no transition: they are not
    /// offline, another instance watches them; so this instance neither
    /// shows nor republishes their last state as if it were current.
    Released {
        endpoint: u32,
        devices: Vec<DeviceKey>,
    },
}

/// One reading the state took. Lamp samples carry the lighting rule's
/// verdict at that moment and the commanded state it used, so the store keeps
/// the same facts the figures now judge by.
#[derive(Debug, Clone)]
pub struct Sample {
    pub key: DeviceKey,
    pub reading: Reading,
    /// `Some` for lamp samples.
    pub lamp: Option<LampVerdict>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LampVerdict {
    pub commanded: Option<bool>,
    pub lighting: Lighting,
}

/// What one applied poll outcome brought: the samples taken and the
/// transitions they caused. Every sink (store, MQTT) gets each batch once.
#[derive(Debug, Clone)]
pub struct Applied {
    pub endpoint: u32,
    pub class: PollClass,
    pub at: DateTime<Utc>,
    pub samples: Vec<Sample>,
    pub transitions: Vec<Transition>,
}

/// What one applied outcome adds to the counters: its successful samples,
/// its transitions and the district position of each.
#[derive(Debug, Default)]
pub struct Counts {
    pub samples: u64,
    pub transitions: u64,
    pub districts: Vec<usize>,
}

/// A consumer of applied batches. `offer` must not wait on a database, a
/// broker or another task: a sink that cannot deliver a batch now keeps it
/// (queue, spool) and delivers it later; it never drops it silently. The
/// store's sink appends the batch to its spool right here (one write to the
/// page cache; a sync with `store.fsync`), so that it survives a kill from
/// the moment the state counts it.
pub trait Sink: Send + Sync + std::fmt::Debug {
    fn offer(&self, batch: Arc<Applied>);
}

/// A device came online or went offline (上线/离线), named as MQTT events
/// name it (`name::device_name`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transition {
    pub at: DateTime<Utc>,
    #[serde(skip)]
    pub key: DeviceKey,
    /// `lamp` or `rtu`.
    pub device_kind: &'static str,
    /// The lamp id for lamps, the RTU id for RTUs.
    pub device_id: String,
    /// The SLC of a lamp: the device that answers or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slc_id: Option<String>,
    pub district: String,
    pub online: bool,
    /// The failure that took it offline.
    pub reason: Option<FailReason>,
}

impl Transition {
    /// The key of the store's `transitions` table: the controller that
    /// answers, `slc` by SLC id or `rtu` by RTU id (the online rates over
    /// windows count controllers).
    pub fn controller(&self) -> (&'static str, &str) {
        match (self.key, &self.slc_id) {
            (DeviceKey::Lamp(_), Some(slc)) => ("slc", slc),
            (DeviceKey::Lamp(_), None) => ("slc", ""),
            (DeviceKey::Rtu(_), _) => ("rtu", &self.device_id),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeviceLive<R> {
    pub reading: Option<R>,
    pub online: bool,
    pub consecutive_failures: u32,
    /// Time of the last successful poll.
    pub last_seen: Option<DateTime<Utc>>,
    pub last_poll: Option<DateTime<Utc>>,
    pub last_error: Option<FailReason>,
    /// When the current online/offline status began.
    pub since: Option<DateTime<Utc>>,
}

impl<R> Default for DeviceLive<R> {
    fn default() -> Self {
        Self {
            reading: None,
            online: false,
            consecutive_failures: 0,
            last_seen: None,
            last_poll: None,
            last_error: None,
            since: None,
        }
    }
}

impl<R> DeviceLive<R> {
    /// Applies one poll result; returns the new online status if it changed.
    /// Online while the last poll succeeded or fewer than `offline_after`
    /// consecutive polls have failed; offline until the first success.
    fn apply(
        &mut self,
        at: DateTime<Utc>,
        result: Result<R, FailReason>,
        offline_after: u32,
    ) -> Option<bool> {
        self.last_poll = Some(at);
        match result {
            Ok(r) => {
                self.reading = Some(r);
                self.consecutive_failures = 0;
                self.last_seen = Some(at);
                self.last_error = None;
            }
            Err(e) => {
                self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                // A unit probed at its slower cadence keeps showing the
                // failure that put it there.
                if e != FailReason::Deferred || self.last_error.is_none() {
                    self.last_error = Some(e);
                }
            }
        }
        let online = self.consecutive_failures == 0
            || (self.online && self.consecutive_failures < offline_after);
        if online != self.online || self.since.is_none() {
            let changed = online != self.online;
            self.online = online;
            self.since = Some(at);
            if changed {
                return Some(online);
            }
        }
        None
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EndpointLive {
    pub address: String,
    pub connected: bool,
    /// Completed poll cycles per class (rtu, slc).
    pub cycles: [u64; 2],
    pub last_cycle_ms: [f64; 2],
    pub reads_ok: u64,
    pub reads_failed: u64,
    /// Every class of device the endpoint has (RTU, SLCs) has had a poll
    /// outcome — answered or not — so the live state tells of them what
    /// the field does, not what a start knows.
    pub polled: bool,
    /// The classes (rtu, slc) the endpoint polls, and of them those not
    /// polled yet.
    #[serde(skip)]
    classes: [bool; 2],
    #[serde(skip)]
    waiting: [bool; 2],
}

impl EndpointLive {
    fn new(spec: &crate::topology::EndpointSpec) -> Self {
        let mut classes = [false; 2];
        for r in &spec.reads {
            classes[r.class as usize] = true;
        }
        Self::unpolled(spec.address.clone(), classes)
    }

    fn unpolled(address: String, classes: [bool; 2]) -> Self {
        Self {
            address,
            classes,
            waiting: classes,
            ..Self::default()
        }
    }
}

#[derive(Debug)]
pub struct Inner {
    pub lamps: Vec<DeviceLive<SlcReading>>,
    /// The switch state the last confirmed command gave each lamp; `None`
    /// until a command is confirmed, when the lamp's own relay state counts.
    pub commanded: Vec<Option<bool>>,
    /// What the schedule says each lamp should be now (`None`: no calendar
    /// governs it); written by the schedule engine, read by the lighting rule.
    pub scheduled: Vec<Option<bool>>,
    /// What the schedule says each contactor it drives should be now
    /// (closed: `true`), by cabinet position and circuit number; a circuit
    /// the schedule does not drive (its lamps switched by their SLCs, the
    /// contactor left closed) is absent. Written with `scheduled`.
    pub scheduled_contactors: HashMap<(usize, u8), bool>,
    pub rtus: Vec<DeviceLive<RtuReading>>,
    pub endpoints: Vec<EndpointLive>,
    pub recent_transitions: VecDeque<Transition>,
    pub transitions_total: u64,
    /// `transitions_total` by district position, for a district token's count.
    pub transitions_by_district: Vec<u64>,
    pub samples_total: u64,
    pub failures_by_kind: std::collections::BTreeMap<&'static str, u64>,
}

impl Inner {
    /// Transitions since start of devices in `district`.
    pub fn transitions_in(&self, inventory: &Inventory, district: &str) -> u64 {
        inventory
            .district_position(district)
            .map_or(0, |d| self.transitions_by_district[d])
    }
}

#[derive(Debug)]
pub struct LiveState {
    pub inventory: Arc<Inventory>,
    offline_after: u32,
    /// Power above which a lamp that is on counts as lit, from its SLC's
    /// profile; by lamp position (0 for lamps without an SLC).
    lit_threshold_w: Vec<f64>,
    inner: RwLock<Inner>,
    /// Confirmed command writes applied: what the API's caches check, so a
    /// confirmed command is in the figures now as soon as it says confirmed.
    writes_applied: AtomicU64,
}

impl LiveState {
    /// An endpoint no longer polled here (`Report::Released`): its devices
    /// and the endpoint as if never polled by this instance.
    pub fn forget(&self, endpoint: u32, devices: &[DeviceKey]) {
        let mut inner = self.inner.write();
        for key in devices {
            match *key {
                DeviceKey::Lamp(i) => {
                    if let Some(d) = inner.lamps.get_mut(i as usize) {
                        *d = DeviceLive::default();
                    }
                }
                DeviceKey::Rtu(i) => {
                    if let Some(d) = inner.rtus.get_mut(i as usize) {
                        *d = DeviceLive::default();
                    }
                }
            }
        }
        if let Some(e) = inner.endpoints.get_mut(endpoint as usize) {
            let address = std::mem::take(&mut e.address);
            *e = EndpointLive::unpolled(address, e.classes);
        }
    }

    pub fn new(inventory: Arc<Inventory>, topology: &Topology, offline_after: u32) -> Self {
        let inner = Inner {
            lamps: vec![DeviceLive::default(); inventory.lamps.len()],
            commanded: vec![None; inventory.lamps.len()],
            scheduled: vec![None; inventory.lamps.len()],
            scheduled_contactors: HashMap::new(),
            rtus: vec![DeviceLive::default(); inventory.cabinets.len()],
            endpoints: topology.endpoints.iter().map(EndpointLive::new).collect(),
            recent_transitions: VecDeque::new(),
            transitions_total: 0,
            transitions_by_district: vec![0; inventory.districts.len()],
            samples_total: 0,
            failures_by_kind: Default::default(),
        };
        let mut lit_threshold_w = vec![0.0; inventory.lamps.len()];
        for dev in topology.endpoints.iter().flat_map(|e| &e.devices) {
            if let DeviceKey::Lamp(i) = dev.key {
                lit_threshold_w[i as usize] = dev.profile.lit_threshold_w;
            }
        }
        Self {
            inventory,
            offline_after,
            lit_threshold_w,
            inner: RwLock::new(inner),
            writes_applied: AtomicU64::new(0),
        }
    }

    /// The lighting rule's verdict for one lamp now (see `crate::lighting`):
    /// its SLC's last reading, the last confirmed command, and its circuit's
    /// contactor when the cabinet's RTU is online.
    pub fn lighting(&self, inner: &Inner, lamp: usize) -> Lighting {
        self.facts(inner, lamp)
            .map_or_else(Lighting::default, |f| f.judge())
    }

    /// What the lighting rule looks at for one lamp; `None` before its SLC's
    /// first successful poll.
    fn facts(&self, inner: &Inner, lamp: usize) -> Option<LampFacts> {
        let d = &inner.lamps[lamp];
        let r = d.reading.as_ref()?;
        let contactor_closed = self.contactor(inner, lamp);
        Some(LampFacts {
            online: d.online,
            relay_on: r.on,
            power_w: r.power,
            voltage_v: r.voltage,
            lamp_failure: r.lamp_failure(),
            commanded: inner.commanded[lamp],
            contactor_closed,
            lit_threshold_w: self.lit_threshold_w[lamp],
            scheduled: inner.scheduled[lamp],
        })
    }

    /// The contactor of the lamp's circuit, when its cabinet's RTU is online
    /// and has reported (a circuit the RTU does not report counts open);
    /// `None` otherwise.
    pub fn contactor(&self, inner: &Inner, lamp: usize) -> Option<bool> {
        let circuit = usize::from(self.inventory.lamps[lamp].circuit);
        self.inventory
            .cabinet_of_lamp(lamp)
            .map(|c| &inner.rtus[c])
            .filter(|rtu| rtu.online)
            .and_then(|rtu| rtu.reading.as_ref())
            .map(|rtu| {
                rtu.contactors
                    .get(circuit.wrapping_sub(1))
                    .copied()
                    .unwrap_or(false)
            })
    }

    /// Each lamp's lit threshold (W) by position (0 for lamps without an SLC).
    pub fn lit_thresholds(&self) -> &[f64] {
        &self.lit_threshold_w
    }

    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, Inner> {
        self.inner.read()
    }

    /// Applies one poll outcome and counts it. The samples are copied into
    /// the returned batch only when `keep_samples` (some sink wants them).
    pub fn apply(&self, outcome: PollOutcome, keep_samples: bool) -> Applied {
        let (applied, counts) = self.apply_uncounted(outcome, keep_samples);
        self.count(counts);
        applied
    }

    /// Adds what one applied outcome brought to the counters
    /// (`lampgw_device_samples_total`, `lampgw_transitions_total`).
    pub fn count(&self, counts: Counts) {
        let mut inner = self.inner.write();
        inner.samples_total += counts.samples;
        inner.transitions_total += counts.transitions;
        for d in counts.districts {
            inner.transitions_by_district[d] += 1;
        }
    }

    /// Applies one poll outcome without counting its samples and
    /// transitions yet: [`run`] counts them once every sink has taken the
    /// batch, so a sample counted is one the store has on its spool.
    pub fn apply_uncounted(&self, outcome: PollOutcome, keep_samples: bool) -> (Applied, Counts) {
        let mut counts = Counts::default();
        let mut transitions = Vec::new();
        // Sized once: a batch is every device of the endpoint's class.
        let mut samples = Vec::with_capacity(if keep_samples {
            outcome.results.len()
        } else {
            0
        });
        let mut guard = self.inner.write();
        let inner = &mut *guard;
        let at = outcome.at;
        for (key, result) in outcome.results {
            if let Ok(r) = &result {
                counts.samples += 1;
                if keep_samples {
                    samples.push(Sample {
                        key,
                        reading: r.clone(),
                        lamp: None,
                    });
                }
            }
            if let Err(e) = &result {
                *inner.failures_by_kind.entry(e.kind()).or_default() += 1;
            }
            let reason = result.as_ref().err().cloned();
            let changed = match (key, result) {
                (DeviceKey::Lamp(i), r) => {
                    let r = r.and_then(|r| match r {
                        Reading::Slc(s) => Ok(s),
                        Reading::Rtu(_) => Err(mismatch()),
                    });
                    inner.lamps[i as usize].apply(at, r, self.offline_after)
                }
                (DeviceKey::Rtu(i), r) => {
                    let r = r.and_then(|r| match r {
                        Reading::Rtu(s) => Ok(s),
                        Reading::Slc(_) => Err(mismatch()),
                    });
                    inner.rtus[i as usize].apply(at, r, self.offline_after)
                }
            };
            // Names are looked up only for the rare transition, not per sample.
            if let Some(online) = changed {
                let name = device_name(&self.inventory, key);
                transitions.push(Transition {
                    at,
                    key,
                    device_kind: name.device_kind,
                    device_id: name.device_id.to_string(),
                    slc_id: name.slc_id.map(str::to_string),
                    district: name.district.to_string(),
                    online,
                    reason: if online { None } else { reason },
                });
            }
        }
        if let Some(ep) = inner.endpoints.get_mut(outcome.endpoint as usize) {
            let c = outcome.class as usize;
            ep.connected = outcome.connected;
            if outcome.sent {
                ep.cycles[c] += 1;
                ep.last_cycle_ms[c] = outcome.elapsed.as_secs_f64() * 1e3;
            }
            ep.reads_ok += u64::from(outcome.reads_ok);
            ep.reads_failed += u64::from(outcome.reads_failed);
            ep.waiting[c] = false;
            ep.polled = !ep.waiting.contains(&true);
        }
        // The verdicts are taken once the whole outcome is applied, as the
        // figures now would see it.
        for sample in &mut samples {
            if let DeviceKey::Lamp(i) = sample.key {
                let i = i as usize;
                sample.lamp = Some(LampVerdict {
                    commanded: inner.commanded[i],
                    lighting: self.lighting(inner, i),
                });
            }
        }
        counts.transitions = transitions.len() as u64;
        for t in &transitions {
            if let Some(d) = self.inventory.district_position(&t.district) {
                counts.districts.push(d);
            }
            if inner.recent_transitions.len() == RECENT_TRANSITIONS {
                inner.recent_transitions.pop_front();
            }
            inner.recent_transitions.push_back(t.clone());
        }
        let applied = Applied {
            endpoint: outcome.endpoint,
            class: outcome.class,
            at,
            samples,
            transitions,
        };
        (applied, counts)
    }

    /// Applies a confirmed command write: the lighting rule takes the lamp's
    /// switch state from it from now on.
    fn apply_write(&self, write: &ConfirmedWrite) {
        if let DeviceKey::Lamp(i) = write.key {
            self.inner.write().commanded[i as usize] = Some(write.commanded_on);
            self.writes_applied.fetch_add(1, Ordering::Release);
        }
    }

    /// The schedule's expectation for every lamp, by position; a vector of
    /// another length (an inventory the engine has not caught up with) is
    /// ignored. The one thing besides the state task that writes the state:
    /// an expectation, not a fact about a device.
    pub fn set_scheduled(&self, scheduled: Vec<Option<bool>>) {
        let mut inner = self.inner.write();
        if scheduled.len() == inner.scheduled.len() && inner.scheduled != scheduled {
            inner.scheduled = scheduled;
            // Cached figures were computed on the old expectation.
            self.writes_applied.fetch_add(1, Ordering::Release);
        }
    }

    /// The schedule's expectation for the contactors it drives (see
    /// [`Inner::scheduled_contactors`]); entries naming a cabinet this
    /// inventory does not have are dropped.
    pub fn set_scheduled_contactors(&self, mut contactors: HashMap<(usize, u8), bool>) {
        let cabinets = self.inventory.cabinets.len();
        contactors.retain(|&(c, _), _| c < cabinets);
        self.inner.write().scheduled_contactors = contactors;
    }

    /// How many confirmed command writes have been applied: a view of the
    /// state computed before the number last changed may judge a lamp by a
    /// command it no longer has.
    pub fn writes_applied(&self) -> u64 {
        self.writes_applied.load(Ordering::Acquire)
    }

    /// True once every endpoint has been polled at least once, each class of
    /// device it has, so "now" answers describe the city rather than the
    /// gateway's start.
    pub fn all_polled(&self) -> bool {
        self.inner.read().endpoints.iter().all(|e| e.polled)
    }

    /// Full poll cycles completed: the least number of SLC (or, for endpoints
    /// without SLCs, RTU) cycles any endpoint has completed.
    pub fn full_cycles(&self) -> u64 {
        let inner = self.inner.read();
        inner
            .endpoints
            .iter()
            .map(|e| {
                if e.cycles[1] > 0 {
                    e.cycles[1]
                } else {
                    e.cycles[0]
                }
            })
            .min()
            .unwrap_or(0)
    }
}

/// A reading of the wrong kind for its device: the poller decodes by the
/// device's own profile, so this would be a bug; count it rather than panic.
fn mismatch() -> FailReason {
    FailReason::Protocol {
        detail: "reading does not match the device kind".into(),
    }
}

/// The state task: applies outcomes until every poller has stopped, so that
/// nothing a poller produced before shutdown is lost.
pub async fn run(
    state: Arc<LiveState>,
    mut reports: mpsc::Receiver<Report>,
    sinks: Vec<Arc<dyn Sink>>,
) {
    while let Some(report) = reports.recv().await {
        let outcome = match report {
            Report::Poll(outcome) => outcome,
            Report::Write(write) => {
                state.apply_write(&write);
                // The poller may have stopped waiting (shutdown): nothing to tell.
                let _ = write.applied.send(());
                continue;
            }
            Report::Released { endpoint, devices } => {
                state.forget(endpoint, &devices);
                continue;
            }
        };
        let (applied, counts) = state.apply_uncounted(outcome, !sinks.is_empty());
        for t in applied.transitions.iter().filter(|t| !t.online) {
            tracing::info!(
                device_kind = t.device_kind,
                device_id = %t.device_id,
                slc_id = ?t.slc_id,
                district = %t.district,
                online = t.online,
                reason = ?t.reason,
                "device went offline"
            );
        }
        if !sinks.is_empty() {
            let applied = Arc::new(applied);
            for sink in &sinks {
                sink.offer(applied.clone());
            }
        }
        // Counted once the sinks have it: the store appends it to its spool
        // in `offer`, so what `/metrics` counts as polled survives a kill.
        state.count(counts);
    }
}
