//! Report by exception: which devices need their state published (a value
//! moved beyond its deadband, a status changed, a refresh is due) and which
//! events the batches raise (online/offline, alarms raised/cleared).

use super::payload::{EventKind, SLC_FAULTS};
use crate::state::{Applied, DeviceLive, FailReason, Inner, Reading, RtuReading, SlcReading};
use crate::topology::{DeviceKey, PollClass, Topology};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy)]
pub struct Deadbands {
    pub power: f64,
    pub voltage: f64,
    pub current: f64,
}

/// An event before it is given ids, district and sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub key: DeviceKey,
    pub alarm: Option<&'static str>,
    pub reason: Option<FailReason>,
}

/// The values a published lamp state carried, to compare new samples with.
#[derive(Debug, Clone, PartialEq)]
struct SlcSnap {
    on: bool,
    dim: f64,
    voltage: Option<f64>,
    current: Option<f64>,
    power: Option<f64>,
    faults: u16,
}

#[derive(Debug, Clone, PartialEq)]
struct RtuSnap {
    contactors: Vec<bool>,
    voltage: [Option<f64>; 3],
    current: [Option<f64>; 3],
    power: Option<f64>,
    door: bool,
    leakage: bool,
}

#[derive(Debug)]
struct Memo<S> {
    /// Values of the last state handed to the broker.
    published: Option<S>,
    /// Last fault flags (or RTU alarms) seen, for alarm events.
    seen_alarms: Option<u16>,
    /// A first "online" after start is not an event: the retained state
    /// tells it. Later ones are.
    ever_online: bool,
    queued: bool,
}

impl<S> Default for Memo<S> {
    fn default() -> Self {
        Self {
            published: None,
            seen_alarms: None,
            ever_online: false,
            queued: false,
        }
    }
}

#[derive(Debug)]
pub struct Tracker {
    bands: Deadbands,
    lamps: Vec<Memo<SlcSnap>>,
    rtus: Vec<Memo<RtuSnap>>,
    dirty: VecDeque<DeviceKey>,
    /// Devices per endpoint and class, and whether they were announced: the
    /// first batch of an endpoint publishes every device of it, so a device
    /// that was never reachable still shows up as offline.
    endpoint_devices: Vec<[Vec<DeviceKey>; 2]>,
    announced: Vec<[bool; 2]>,
}

fn moved(a: Option<f64>, b: Option<f64>, band: f64) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => (x - y).abs() > band,
        (None, None) => false,
        _ => true,
    }
}

const RTU_ALARMS: [(u16, &str); 2] = [(1, "door"), (2, "leakage")];

fn rtu_alarm_bits(r: &RtuReading) -> u16 {
    u16::from(r.door_alarm) | u16::from(r.leakage_alarm) << 1
}

impl Tracker {
    pub fn new(topology: &Topology, lamps: usize, cabinets: usize, bands: Deadbands) -> Self {
        let endpoint_devices = topology
            .endpoints
            .iter()
            .map(|e| {
                let mut per: [Vec<DeviceKey>; 2] = Default::default();
                for d in &e.devices {
                    per[d.class() as usize].push(d.key);
                }
                per
            })
            .collect::<Vec<_>>();
        Self {
            bands,
            lamps: (0..lamps).map(|_| Memo::default()).collect(),
            rtus: (0..cabinets).map(|_| Memo::default()).collect(),
            dirty: VecDeque::new(),
            announced: vec![[false; 2]; endpoint_devices.len()],
            endpoint_devices,
        }
    }

    fn mark(&mut self, key: DeviceKey) {
        let queued = match key {
            DeviceKey::Lamp(i) => &mut self.lamps[i as usize].queued,
            DeviceKey::Rtu(i) => &mut self.rtus[i as usize].queued,
        };
        if !*queued {
            *queued = true;
            self.dirty.push_back(key);
        }
    }

    pub fn pop_dirty(&mut self) -> Option<DeviceKey> {
        let key = self.dirty.pop_front()?;
        match key {
            DeviceKey::Lamp(i) => self.lamps[i as usize].queued = false,
            DeviceKey::Rtu(i) => self.rtus[i as usize].queued = false,
        }
        Some(key)
    }

    /// Puts a device back at the front (it could not be handed over now).
    pub fn unpop(&mut self, key: DeviceKey) {
        let queued = match key {
            DeviceKey::Lamp(i) => &mut self.lamps[i as usize].queued,
            DeviceKey::Rtu(i) => &mut self.rtus[i as usize].queued,
        };
        if !*queued {
            *queued = true;
            self.dirty.push_front(key);
        }
    }

    pub fn pending(&self) -> usize {
        self.dirty.len()
    }

    /// Takes one applied batch: marks what must be published, returns events.
    pub fn apply(&mut self, batch: &Applied) -> Vec<RawEvent> {
        let mut events = Vec::new();
        let class = match batch.class {
            PollClass::Rtu => 0,
            PollClass::Slc => 1,
        };
        if let Some(done) = self
            .announced
            .get_mut(batch.endpoint as usize)
            .map(|a| &mut a[class])
        {
            if !*done {
                *done = true;
                let keys = self.endpoint_devices[batch.endpoint as usize][class].clone();
                for k in keys {
                    self.mark(k);
                }
            }
        }
        for sample in &batch.samples {
            self.sample(batch.at, sample.key, &sample.reading, &mut events);
        }
        for t in &batch.transitions {
            self.mark(t.key);
            let ever = match t.key {
                DeviceKey::Lamp(i) => &mut self.lamps[i as usize].ever_online,
                DeviceKey::Rtu(i) => &mut self.rtus[i as usize].ever_online,
            };
            let kind = if t.online {
                let first = !*ever;
                *ever = true;
                if first {
                    continue;
                }
                EventKind::CameOnline
            } else {
                EventKind::WentOffline
            };
            events.push(RawEvent {
                at: t.at,
                kind,
                key: t.key,
                alarm: None,
                reason: t.reason.clone(),
            });
        }
        events
    }

    fn sample(
        &mut self,
        at: DateTime<Utc>,
        key: DeviceKey,
        reading: &Reading,
        events: &mut Vec<RawEvent>,
    ) {
        let (bits, names, publish): (u16, &[(u16, &'static str)], bool) = match (key, reading) {
            (DeviceKey::Lamp(i), Reading::Slc(r)) => {
                let m = &self.lamps[i as usize];
                let publish = m.published.as_ref().is_none_or(|p| self.slc_moved(p, r));
                (r.fault_flags, &SLC_FAULTS, publish)
            }
            (DeviceKey::Rtu(i), Reading::Rtu(r)) => {
                let m = &self.rtus[i as usize];
                let publish = m.published.as_ref().is_none_or(|p| self.rtu_moved(p, r));
                (rtu_alarm_bits(r), &RTU_ALARMS, publish)
            }
            _ => return,
        };
        let seen = match key {
            DeviceKey::Lamp(i) => &mut self.lamps[i as usize].seen_alarms,
            DeviceKey::Rtu(i) => &mut self.rtus[i as usize].seen_alarms,
        };
        if let Some(prev) = seen.replace(bits) {
            for (mask, name) in names {
                if (prev ^ bits) & mask != 0 {
                    events.push(RawEvent {
                        at,
                        kind: if bits & mask != 0 {
                            EventKind::AlarmRaised
                        } else {
                            EventKind::AlarmCleared
                        },
                        key,
                        alarm: Some(name),
                        reason: None,
                    });
                }
            }
        }
        if publish {
            self.mark(key);
        }
    }

    fn slc_moved(&self, p: &SlcSnap, r: &SlcReading) -> bool {
        let b = &self.bands;
        p.on != r.on
            || (p.dim - r.dim_level).abs() >= 0.5
            || p.faults != r.fault_flags
            || moved(p.power, r.power, b.power)
            || moved(p.voltage, r.voltage, b.voltage)
            || moved(p.current, r.current, b.current)
    }

    fn rtu_moved(&self, p: &RtuSnap, r: &RtuReading) -> bool {
        let b = &self.bands;
        p.contactors != r.contactors
            || p.door != r.door_alarm
            || p.leakage != r.leakage_alarm
            || moved(p.power, r.active_power, b.power)
            || (0..3).any(|k| {
                moved(p.voltage[k], r.voltage[k], b.voltage)
                    || moved(p.current[k], r.current[k], b.current)
            })
    }

    /// Compares the whole live state, for when batches had to be trimmed.
    pub fn rescan(&mut self, live: &Inner, at: DateTime<Utc>) -> Vec<RawEvent> {
        let mut events = Vec::new();
        for i in 0..self.lamps.len() {
            if let Some(r) = &live.lamps[i].reading {
                self.sample(
                    at,
                    DeviceKey::Lamp(i as u32),
                    &Reading::Slc(r.clone()),
                    &mut events,
                );
            }
        }
        for i in 0..self.rtus.len() {
            if let Some(r) = &live.rtus[i].reading {
                self.sample(
                    at,
                    DeviceKey::Rtu(i as u32),
                    &Reading::Rtu(r.clone()),
                    &mut events,
                );
            }
        }
        events
    }

    /// Every device polled at least once is published again (after a
    /// reconnect, and at the refresh interval).
    pub fn mark_all(&mut self, live: &Inner) {
        for i in 0..self.lamps.len() {
            if live.lamps[i].last_poll.is_some() {
                self.mark(DeviceKey::Lamp(i as u32));
            }
        }
        for i in 0..self.rtus.len() {
            if live.rtus[i].last_poll.is_some() {
                self.mark(DeviceKey::Rtu(i as u32));
            }
        }
    }

    /// Remembers what a lamp state about to be published carries.
    pub fn record_lamp(&mut self, i: usize, live: &DeviceLive<SlcReading>) {
        self.lamps[i].published = live.reading.as_ref().map(|r| SlcSnap {
            on: r.on,
            dim: r.dim_level,
            voltage: r.voltage,
            current: r.current,
            power: r.power,
            faults: r.fault_flags,
        });
    }

    pub fn record_rtu(&mut self, i: usize, live: &DeviceLive<RtuReading>) {
        self.rtus[i].published = live.reading.as_ref().map(|r| RtuSnap {
            contactors: r.contactors.clone(),
            voltage: r.voltage,
            current: r.current,
            power: r.active_power,
            door: r.door_alarm,
            leakage: r.leakage_alarm,
        });
    }
}
