//! The physical model: one cabinet (RTU, contactors, metering) and its SLCs.
//!
//! State is kept compact (about 40 bytes per SLC, one `Vec` per endpoint)
//! because one process carries 100,000 SLCs. Time advances lazily: energy,
//! burning hours and random failures are brought up to date when the
//! endpoint is touched, at most once per simulated second unless a state
//! change forces it, so an idle lamp costs nothing.

use crate::fault::{RtuFault, SlcFault};
use lamp_profile::Quantity;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Instant;

/// What an SLC's registers read, in engineering units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlcValues {
    pub switch: bool,
    /// Percent, 0–100.
    pub dim_level: f64,
    pub voltage: f64,
    pub current: f64,
    /// W.
    pub power: f64,
    pub power_factor: f64,
    /// kWh.
    pub energy: f64,
    pub burning_hours: f64,
    /// Bit 0 lamp failure, bit 1 over-voltage, bit 2 under-voltage.
    pub fault_flags: u16,
    pub comm_ok: bool,
}

impl SlcValues {
    /// The value a profile field of quantity `q` encodes (None: not this device's).
    pub fn get(&self, q: Quantity) -> Option<f64> {
        Some(match q {
            Quantity::Switch => f64::from(u8::from(self.switch)),
            Quantity::DimLevel => self.dim_level,
            Quantity::Voltage => self.voltage,
            Quantity::Current => self.current,
            Quantity::Power => self.power,
            Quantity::PowerFactor => self.power_factor,
            Quantity::Energy => self.energy,
            Quantity::BurningHours => self.burning_hours,
            Quantity::FaultFlags => f64::from(self.fault_flags),
            Quantity::CommOk => f64::from(u8::from(self.comm_ok)),
            _ => return None,
        })
    }
}

/// What a cabinet RTU's registers read, in engineering units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtuValues {
    /// Circuit n is `contactors[n - 1]`; true = closed (energised).
    pub contactors: Vec<bool>,
    /// Phases A, B, C (V).
    pub voltage: [f64; 3],
    /// Phases A, B, C (A).
    pub current: [f64; 3],
    /// W.
    pub active_power: f64,
    /// kWh.
    pub energy: f64,
    pub door_alarm: bool,
    pub leakage_alarm: bool,
}

impl RtuValues {
    /// The value a profile field of quantity `q` encodes (None: not this device's).
    pub fn get(&self, q: Quantity) -> Option<f64> {
        let b = |x: bool| f64::from(u8::from(x));
        Some(match q {
            Quantity::Contactor(n) => b(*self.contactors.get(usize::from(n).checked_sub(1)?)?),
            Quantity::VoltageA => self.voltage[0],
            Quantity::VoltageB => self.voltage[1],
            Quantity::VoltageC => self.voltage[2],
            Quantity::CurrentA => self.current[0],
            Quantity::CurrentB => self.current[1],
            Quantity::CurrentC => self.current[2],
            Quantity::ActivePower => self.active_power,
            Quantity::CabinetEnergy => self.energy,
            Quantity::DoorAlarm => b(self.door_alarm),
            Quantity::LeakageAlarm => b(self.leakage_alarm),
            _ => return None,
        })
    }
}

/// Simulated time in seconds; stops while frozen so tests can compare exact values.
pub(crate) struct Clock {
    inner: Mutex<(f64, Option<Instant>)>,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            inner: Mutex::new((0.0, Some(Instant::now()))),
        }
    }
    pub fn now(&self) -> f64 {
        let g = self.inner.lock();
        g.0 + g.1.map_or(0.0, |s| s.elapsed().as_secs_f64())
    }
    pub fn set_frozen(&self, frozen: bool) {
        let mut g = self.inner.lock();
        match (frozen, g.1) {
            (true, Some(since)) => *g = (g.0 + since.elapsed().as_secs_f64(), None),
            (false, None) => g.1 = Some(Instant::now()),
            _ => {}
        }
    }
    pub fn frozen(&self) -> bool {
        self.inner.lock().1.is_none()
    }
}

/// splitmix64: cheap, stateless, good enough to make noise and ratings
/// reproducible from the seed.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub(crate) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x5EED, |h, p| mix(h ^ mix(*p)))
}

/// Uniform in [-1, 1).
pub(crate) fn unit_noise(parts: &[u64]) -> f64 {
    (hash(parts) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

const NOMINAL_V: f64 = 220.0;
const DRIVER_EFFICIENCY: f64 = 0.97;
const LIT_PF: f64 = 0.95;
const RATINGS_W: [u16; 3] = [60, 100, 150];
/// Advance at most this often (simulated seconds) unless forced.
const QUANTUM_S: f64 = 1.0;

#[derive(Debug, Clone)]
pub(crate) struct Slc {
    pub on: bool,
    pub failed: bool,
    /// Tenths of a percent, so vendor B's 0.1 % resolution survives.
    pub dim_tenths: u16,
    pub rated_w: u16,
    pub energy_kwh: f64,
    pub burning_h: f64,
}

/// One endpoint's cabinet: RTU state, the SLCs behind it, their comm faults.
pub(crate) struct Cabinet {
    pub index: usize,
    seed: u64,
    pub slcs: Vec<Slc>,
    pub contactors: Vec<bool>,
    pub door: bool,
    pub leakage: bool,
    pub rtu_fault: RtuFault,
    energy_kwh: f64,
    last_t: f64,
    rng: fastrand::Rng,
    /// Only SLCs with a comm fault have an entry: most never do.
    pub comm_faults: HashMap<u32, SlcFault>,
    /// Values an SLC showed when it went silent (block layout keeps serving them).
    snapshots: HashMap<u32, SlcValues>,
}

impl Cabinet {
    pub fn new(index: usize, slcs: usize, circuits: u8, seed: u64, now: f64) -> Cabinet {
        let e = index as u64;
        let slcs = (0..slcs as u64)
            .map(|j| {
                let rated_w = RATINGS_W[(hash(&[seed, 1, e, j]) % 3) as usize];
                // A lamp that has been in service for a while: up to ~4 years of nights.
                let burning_h = (hash(&[seed, 2, e, j]) % 16_000) as f64;
                Slc {
                    on: true,
                    failed: false,
                    dim_tenths: 1000,
                    rated_w,
                    energy_kwh: burning_h * f64::from(rated_w) * 0.8 / 1000.0,
                    burning_h,
                }
            })
            .collect();
        Cabinet {
            index,
            seed,
            slcs,
            contactors: vec![true; usize::from(circuits.max(1))],
            door: false,
            leakage: false,
            rtu_fault: RtuFault::default(),
            energy_kwh: (hash(&[seed, 3, e]) % 500_000) as f64 / 10.0,
            last_t: now,
            rng: fastrand::Rng::with_seed(hash(&[seed, 4, e])),
            comm_faults: HashMap::new(),
            snapshots: HashMap::new(),
        }
    }

    pub fn circuit_of(&self, slc: usize) -> usize {
        slc % self.contactors.len()
    }

    /// Supply voltage at this cabinet at simulated second `tick`.
    fn supply_v(&self, channel: u64, tick: u64) -> f64 {
        let e = self.index as u64;
        NOMINAL_V
            + 3.0 * unit_noise(&[self.seed, 5, e])
            + 2.5 * unit_noise(&[self.seed, 6, e, channel, tick])
    }

    fn slc_power(&self, j: usize) -> f64 {
        let s = &self.slcs[j];
        if self.contactors[self.circuit_of(j)] && s.on && !s.failed {
            f64::from(s.rated_w) * f64::from(s.dim_tenths) / 1000.0 * DRIVER_EFFICIENCY
        } else {
            0.0
        }
    }

    /// Brings accumulators up to `now`; `force` skips the quantum (before a
    /// state change, so the old state is billed up to the change).
    pub fn advance(&mut self, now: f64, failure_rate_per_hour: f64, force: bool) {
        let dt = now - self.last_t;
        if dt <= 0.0 || (!force && dt < QUANTUM_S) {
            return;
        }
        // Poisson: the chance of at least one failure in dt, whatever dt is.
        let p_fail = -(-failure_rate_per_hour * dt / 3600.0).exp_m1();
        let mut total_w = 0.0;
        for j in 0..self.slcs.len() {
            let p = self.slc_power(j);
            if p <= 0.0 {
                continue;
            }
            total_w += p;
            let s = &mut self.slcs[j];
            s.energy_kwh += p * dt / 3.6e6;
            s.burning_h += dt / 3600.0;
            if p_fail > 0.0 && self.rng.f64() < p_fail {
                s.failed = true;
            }
        }
        self.energy_kwh += total_w * dt / 3.6e6;
        self.last_t = now;
    }

    /// Live values of SLC `j`, ignoring comm faults.
    pub fn live_slc(&self, j: usize, now: f64) -> SlcValues {
        let s = &self.slcs[j];
        let energised = self.contactors[self.circuit_of(j)];
        let voltage = if energised {
            self.supply_v(100 + j as u64, now as u64)
        } else {
            0.0
        };
        let power = self.slc_power(j);
        let power_factor = if power > 0.0 { LIT_PF } else { 0.0 };
        let current = if power > 0.0 {
            power / (voltage * power_factor)
        } else {
            0.0
        };
        let mut fault_flags = u16::from(s.failed);
        if voltage > 242.0 {
            fault_flags |= 2;
        }
        if energised && voltage < 198.0 {
            fault_flags |= 4;
        }
        SlcValues {
            switch: s.on,
            dim_level: f64::from(s.dim_tenths) / 10.0,
            voltage,
            current,
            power,
            power_factor,
            energy: s.energy_kwh,
            burning_hours: s.burning_h,
            fault_flags,
            comm_ok: true,
        }
    }

    /// Values as the field bus sees them: frozen with `comm_ok = false` while silent.
    pub fn observed_slc(&self, j: usize, now: f64) -> SlcValues {
        match self.snapshots.get(&(j as u32)) {
            Some(v) => v.clone(),
            None => self.live_slc(j, now),
        }
    }

    pub fn is_silent(&self, j: usize) -> bool {
        self.snapshots.contains_key(&(j as u32))
    }

    pub fn rtu(&self, now: f64) -> RtuValues {
        let tick = now as u64;
        let mut current = [0.0; 3];
        let mut active_power = 0.0;
        for j in 0..self.slcs.len() {
            let p = self.slc_power(j);
            if p > 0.0 {
                let v = self.supply_v(100 + j as u64, tick);
                current[self.circuit_of(j) % 3] += p / (v * LIT_PF);
                active_power += p;
            }
        }
        RtuValues {
            contactors: self.contactors.clone(),
            voltage: [0, 1, 2].map(|ph| self.supply_v(ph, tick)),
            current,
            active_power,
            energy: self.energy_kwh,
            door_alarm: self.door,
            leakage_alarm: self.leakage,
        }
    }

    /// The fault SLC `j` has now (the default when it has none).
    pub fn slc_fault(&self, j: usize) -> SlcFault {
        let mut f = self
            .comm_faults
            .get(&(j as u32))
            .copied()
            .unwrap_or_default();
        f.failed = self.slcs[j].failed;
        f
    }

    pub fn set_slc_fault(&mut self, j: usize, fault: SlcFault, now: f64) {
        let key = j as u32;
        self.slcs[j].failed = fault.failed;
        if fault.silent && !self.snapshots.contains_key(&key) {
            let mut v = self.live_slc(j, now);
            v.comm_ok = false;
            self.snapshots.insert(key, v);
        } else if !fault.silent {
            self.snapshots.remove(&key);
        }
        if fault.is_comm_fault() {
            self.comm_faults.insert(key, fault);
        } else {
            self.comm_faults.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contactor_cuts_voltage_and_power_of_its_circuit_only() {
        let mut c = Cabinet::new(0, 8, 4, 7, 0.0);
        c.contactors[1] = false;
        for j in [1, 5] {
            let v = c.live_slc(j, 0.0);
            assert_eq!(
                (v.voltage, v.power, v.current, v.power_factor),
                (0.0, 0.0, 0.0, 0.0)
            );
        }
        let lit = c.live_slc(0, 0.0);
        assert!(lit.power > 0.0 && (210.0..230.0).contains(&lit.voltage));
        assert!((lit.current - lit.power / (lit.voltage * 0.95)).abs() < 1e-12);
        let rtu = c.rtu(0.0);
        let sum: f64 = (0..8).map(|j| c.live_slc(j, 0.0).power).sum();
        assert!((rtu.active_power - sum).abs() < 1e-9);
        assert_eq!(rtu.current[1], 0.0, "circuit 2 is phase B, and open");
    }

    #[test]
    fn time_bills_energy_and_hours_in_quanta() {
        let mut c = Cabinet::new(0, 2, 4, 7, 0.0);
        let before = c.live_slc(0, 0.0);
        c.advance(0.5, 0.0, false);
        assert_eq!(
            c.live_slc(0, 0.5).energy,
            before.energy,
            "below the quantum"
        );
        c.advance(3600.0, 0.0, false);
        let after = c.live_slc(0, 3600.0);
        assert!((after.burning_hours - before.burning_hours - 1.0).abs() < 1e-9);
        assert!((after.energy - before.energy - before.power / 1000.0).abs() < 1e-9);
        assert_eq!(c.live_slc(0, 3600.0).fault_flags, 0);
    }

    #[test]
    fn lamps_fail_at_the_configured_rate_and_noise_is_reproducible() {
        let mut c = Cabinet::new(3, 200, 4, 9, 0.0);
        c.advance(3600.0, 0.5, false);
        let failed = c.slcs.iter().filter(|s| s.failed).count();
        assert!((50..150).contains(&failed), "{failed} of 200 at 0.5/h");
        let f = c.slcs.iter().position(|s| s.failed).unwrap();
        let v = c.live_slc(f, 3600.0);
        assert_eq!((v.fault_flags, v.power), (1, 0.0));
        let (a, b) = (Cabinet::new(3, 5, 4, 9, 0.0), Cabinet::new(3, 5, 4, 9, 0.0));
        assert_eq!(a.live_slc(4, 12.0), b.live_slc(4, 12.0));
        assert_ne!(a.live_slc(4, 12.0).voltage, a.live_slc(4, 13.0).voltage);
    }
}
