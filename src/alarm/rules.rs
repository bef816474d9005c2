//! When each kind's condition holds: THE alarm conditions, judged on the
//! live state right after a batch was applied. Pure: no lifecycle here.
//!
//! - Lamp (SLC online, with a reading): the SLC's flags (`lamp_failure`,
//!   `relay_fault`, `over_voltage`, `under_voltage`); `lamp_out_at_night`:
//!   the lighting rule expects it lit, its SLC measures supply
//!   (≥ `ENERGISED_MIN_V`, or no voltage register), it is not lit and has no
//!   lamp-failure flag (a lamp without supply is its circuit's
//!   `supply_loss`, a failed lamp its own `lamp_failure`); `day_burner`: the
//!   schedule (or, for a lamp no calendar governs, the last confirmed
//!   command) has it off, but it draws more than its lit threshold (or, with
//!   no power register, its relay is on with supply); `dimming_failure`:
//!   rated power known, on and lit at a level below 100 %, power off
//!   rated × level by more than the tolerance × rated; `power_abnormal`: the
//!   same at 100 %.
//! - Lamp offline: only `comms_lost` is judged (its other conditions keep
//!   what they were: nothing is known). `comms_lost` is suppressed while its
//!   endpoint is down, while its circuit has lost supply with every SLC on
//!   it silent or its contactor is open, and until it has been polled once after its endpoint came
//!   back.
//! - RTU: `leakage` and `door_open` from its flags; `comms_lost` as lamps.
//! - Circuit: `supply_loss`: it should be energised — its RTU online
//!   reports the contactor closed; with no RTU online, the plan (schedule or
//!   last command) has a lamp on it on — and either every online SLC on it
//!   that measures voltage measures below `ENERGISED_MIN_V` (at least one
//!   does), or (two or more SLCs) every SLC on it is offline while other
//!   devices on its endpoint answer; `contactor_failure`: its RTU online
//!   reports the contactor open while an online SLC on it measures supply
//!   (current through an open contact), or while the plan has a lamp on it
//!   on (the contactor did not follow); or reports it closed while the
//!   schedule, which drives this contactor, has it open (welded contacts, a
//!   hand switch left on; a contactor the schedule does not drive — lamps
//!   switched by their SLCs — stays closed by day and is not judged so). A
//!   contactor reported closed with
//!   dead lamps is `supply_loss`: without a current meter per circuit the
//!   gateway cannot tell a contact that does not close from a cable cut at
//!   the cabinet, and the repair crew checks both.
//! - Endpoint: `endpoint_down`: every device on it that has been polled
//!   failed its latest poll, and at least one is offline.

use super::layout::Layout;
use super::model::AlarmKind;
use crate::lighting::ENERGISED_MIN_V;
use crate::state::{Inner, LiveState};

/// One bit per kind.
pub type Mask = u16;

pub const fn bit(kind: AlarmKind) -> Mask {
    1 << kind as u16
}

pub const LAMP_FLAGS: Mask = bit(AlarmKind::LampFailure)
    | bit(AlarmKind::RelayFault)
    | bit(AlarmKind::OverVoltage)
    | bit(AlarmKind::UnderVoltage);
/// The kinds judged on a lamp with a reading.
pub const LAMP_READING: Mask = LAMP_FLAGS
    | bit(AlarmKind::LampOutAtNight)
    | bit(AlarmKind::DayBurner)
    | bit(AlarmKind::DimmingFailure)
    | bit(AlarmKind::PowerAbnormal);
pub const RTU_READING: Mask = bit(AlarmKind::Leakage) | bit(AlarmKind::DoorOpen);
pub const COMMS: Mask = bit(AlarmKind::CommsLost);

/// The kinds whose bits are set in `mask`.
pub fn kinds(mask: Mask) -> impl Iterator<Item = AlarmKind> {
    AlarmKind::ALL
        .into_iter()
        .filter(move |k| mask & bit(*k) != 0)
}

/// Tolerances a lamp is judged by (from its district's rules).
#[derive(Debug, Clone, Copy)]
pub struct Tolerances {
    pub dimming: f64,
    pub power: f64,
}

/// A judgement: the bits that hold among the bits that could be judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judged {
    pub holds: Mask,
    pub known: Mask,
}

impl Judged {
    /// `old` with the judged bits replaced.
    pub fn over(self, old: Mask) -> Mask {
        (old & !self.known) | (self.holds & self.known)
    }
}

/// Why a device's `comms_lost` is not judged now.
#[derive(Debug, Clone, Copy, Default)]
pub struct Suppress {
    /// Its endpoint is down (the root cause) or came back and has not
    /// polled it since.
    pub endpoint: bool,
    /// Its circuit lost supply with every SLC on it silent.
    pub circuit: bool,
    /// Its circuit's contactor is closed against the schedule: it burns
    /// because of the contactor (that circuit's `contactor_failure`), not
    /// as a day burner of its own.
    pub burning: bool,
}

/// What a circuit's state explains about its lamps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Explains {
    /// Its SLCs' silence (their `comms_lost` is suppressed).
    pub silence: bool,
    /// Its lamps burning while the schedule has them off.
    pub burning: bool,
}

/// A device without a fresh reading: only `comms_lost` is judged — it holds
/// while the device is offline (once polled) and nothing suppresses it.
fn comms<R>(d: &crate::state::DeviceLive<R>, suppressed: bool) -> Judged {
    let lost = !d.online && d.last_poll.is_some() && !suppressed;
    Judged {
        holds: if lost { COMMS } else { 0 },
        known: COMMS,
    }
}

pub fn lamp(
    live: &LiveState,
    inner: &Inner,
    lamp: usize,
    rated_power_w: Option<f64>,
    tol: Tolerances,
    suppress: Suppress,
) -> Judged {
    let d = &inner.lamps[lamp];
    let Some(r) = d.reading.as_ref().filter(|_| d.online) else {
        return comms(d, suppress.endpoint || suppress.circuit);
    };
    let threshold = live.lit_thresholds()[lamp];
    let mut holds: Mask = 0;
    for (flag, kind) in [
        (1u16, AlarmKind::LampFailure),
        (2, AlarmKind::OverVoltage),
        (4, AlarmKind::UnderVoltage),
        (8, AlarmKind::RelayFault),
    ] {
        if r.fault_flags & flag != 0 {
            holds |= bit(kind);
        }
    }
    let supplied = r.voltage.is_none_or(|v| v >= ENERGISED_MIN_V);
    let verdict = live.lighting(inner, lamp);
    if verdict.expected && supplied && !verdict.lit && !r.lamp_failure() {
        holds |= bit(AlarmKind::LampOutAtNight);
    }
    let planned = inner.scheduled[lamp].or(inner.commanded[lamp]);
    let burning = match r.power {
        Some(p) => p > threshold,
        None => r.on && r.voltage.is_some_and(|v| v >= ENERGISED_MIN_V),
    };
    if planned == Some(false) && burning && !suppress.burning {
        holds |= bit(AlarmKind::DayBurner);
    }
    if let (Some(rated), Some(p)) = (rated_power_w.filter(|w| *w > 0.0), r.power) {
        if r.on && p > threshold && !r.lamp_failure() {
            let level = r.dim_level.clamp(0.0, 100.0);
            let off_by = (p - rated * level / 100.0).abs();
            if level < 100.0 {
                if off_by > tol.dimming * rated {
                    holds |= bit(AlarmKind::DimmingFailure);
                }
            } else if off_by > tol.power * rated {
                holds |= bit(AlarmKind::PowerAbnormal);
            }
        }
    }
    Judged {
        holds,
        known: LAMP_READING | COMMS,
    }
}

pub fn rtu(inner: &Inner, cabinet: usize, suppress: Suppress) -> Judged {
    let d = &inner.rtus[cabinet];
    let Some(r) = d.reading.as_ref().filter(|_| d.online) else {
        return comms(d, suppress.endpoint);
    };
    let mut holds = 0;
    if r.leakage_alarm {
        holds |= bit(AlarmKind::Leakage);
    }
    if r.door_alarm {
        holds |= bit(AlarmKind::DoorOpen);
    }
    Judged {
        holds,
        known: RTU_READING | COMMS,
    }
}

/// A circuit's conditions, and what they explain about its lamps: silence
/// of its SLCs (their `comms_lost` is then suppressed) when it lost supply
/// with every SLC silent, or its contactor is open (SLCs powered from the
/// circuit go dark with it every morning); lamps burning by day when its
/// contactor is stuck closed against the schedule.
pub fn circuit(inner: &Inner, layout: &Layout, c: usize) -> (Judged, Explains) {
    let circ = &layout.circuits[c];
    let contactor = inner
        .rtus
        .get(circ.cabinet)
        .filter(|r| r.online)
        .and_then(|r| r.reading.as_ref())
        .and_then(|r| r.contactors.get(usize::from(circ.number) - 1).copied());
    let planned_on = circ
        .lamps
        .iter()
        .any(|&l| inner.scheduled[l].or(inner.commanded[l]) == Some(true));
    let mut measured = 0usize;
    let mut supplied = 0usize;
    let mut online = 0usize;
    for &l in &circ.slc_lamps {
        let d = &inner.lamps[l];
        if !d.online {
            continue;
        }
        online += 1;
        if let Some(v) = d.reading.as_ref().and_then(|r| r.voltage) {
            measured += 1;
            if v >= ENERGISED_MIN_V {
                supplied += 1;
            }
        }
    }
    let should = contactor.unwrap_or(planned_on);
    let dead_lamps = measured > 0 && supplied == 0;
    let silent = circ.slc_lamps.len() >= 2
        && online == 0
        && circ
            .slc_lamps
            .iter()
            .all(|&l| inner.lamps[l].last_poll.is_some())
        && endpoint_answers(inner, layout, circ.cabinet, c);
    let mut holds = 0;
    if should && (dead_lamps || silent) {
        holds |= bit(AlarmKind::SupplyLoss);
    }
    // What the schedule drives this contactor to, where it drives it.
    let driven = inner
        .scheduled_contactors
        .get(&(circ.cabinet, circ.number))
        .copied();
    let stuck_open = contactor == Some(false) && (supplied > 0 || planned_on);
    // Closed while the plan has it open: welded contacts, or the cabinet's
    // hand switch left on. Only where the schedule drives the contactor: a
    // city that switches by SLC keeps its contactors closed by day.
    let stuck_closed = contactor == Some(true) && driven == Some(false);
    if stuck_open || stuck_closed {
        holds |= bit(AlarmKind::ContactorFailure);
    }
    let known = bit(AlarmKind::SupplyLoss) | bit(AlarmKind::ContactorFailure);
    (
        Judged { holds, known },
        Explains {
            silence: (should && silent) || contactor == Some(false),
            burning: stuck_closed,
        },
    )
}

/// Whether some device on the endpoint of the circuit's cabinet, other than
/// the circuit's own SLCs, answered its latest poll.
fn endpoint_answers(inner: &Inner, layout: &Layout, cabinet: usize, c: usize) -> bool {
    let e = layout
        .rtu_endpoint
        .get(cabinet)
        .copied()
        .unwrap_or(u32::MAX);
    let e = if e == u32::MAX {
        match layout.circuits[c].slc_lamps.first() {
            Some(&l) => layout.lamp_endpoint[l],
            None => return false,
        }
    } else {
        e
    };
    let Some(part) = layout.endpoints.get(e as usize) else {
        return false;
    };
    part.rtus
        .iter()
        .any(|&r| inner.rtus[r].consecutive_failures == 0 && inner.rtus[r].last_poll.is_some())
        || part.lamps.iter().any(|&l| {
            layout.lamp_circuit[l] != c
                && inner.lamps[l].consecutive_failures == 0
                && inner.lamps[l].last_poll.is_some()
        })
}

/// Nothing on the endpoint answered its latest poll, and something on it is
/// offline (the online rule's debounce has run out).
pub fn endpoint_down(inner: &Inner, layout: &Layout, e: usize) -> bool {
    let Some(part) = layout.endpoints.get(e) else {
        return false;
    };
    // Devices not polled yet (another class's first poll still due) say
    // nothing either way: an RTU polled every 5 s goes offline before the
    // SLCs behind the same dead link were polled once.
    let rtus = part.rtus.iter().map(|&r| &inner.rtus[r]);
    let lamps = part.lamps.iter().map(|&l| &inner.lamps[l]);
    let failed_r = rtus
        .clone()
        .all(|d| d.last_poll.is_none() || d.consecutive_failures > 0);
    let failed_l = lamps
        .clone()
        .all(|d| d.last_poll.is_none() || d.consecutive_failures > 0);
    let offline_r = rtus.clone().any(|d| !d.online && d.last_poll.is_some());
    let offline_l = lamps.clone().any(|d| !d.online && d.last_poll.is_some());
    failed_r && failed_l && (offline_r || offline_l)
}
