//! The physical model: one cabinet (RTU, contactors, metering) and its SLCs.
//!
//! State is kept compact (about 40 bytes per SLC, one `Vec` per endpoint)
//! because one process carries 100,000 SLCs. Time advances lazily: energy,
//! burning hours and random failures are brought up to date when the
//! endpoint is touched, at most once per simulated second unless a state
//! change forces it, so an idle lamp costs nothing.
//!
//! A lit lamp draws its rated power × dim level / 100, within ±1.5 % (each
//! lamp its own deviation, fixed by the seed), from a circuit that has
//! supply: its contactor really closed (a stuck one stays where it is) and
//! no cut downstream.

use crate::fault::{CircuitFault, RtuFault, SlcFault};
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
/// A lamp's power at full level is its rated power within ± this fraction.
const POWER_SPREAD: f64 = 0.015;
const LIT_PF: f64 = 0.95;
const RATINGS_W: [u16; 3] = [60, 100, 150];
/// Advance at most this often (simulated seconds) unless forced.
const QUANTUM_S: f64 = 1.0;

#[derive(Debug, Clone)]
pub(crate) struct Slc {
    /// The relay as last written (see `stuck_on`).
    pub on: bool,
    pub failed: bool,
    /// Day burner: the relay is on whatever `on` says.
    pub stuck_on: bool,
    /// Its power is scaled: the factor is in the cabinet's fault map (a
    /// flag here keeps this struct at 24 bytes).
    pub scaled: bool,
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
    /// Circuit n's contactor as last written is `contactors[n - 1]` (a
    /// stuck one does not follow: see [`Cabinet::contact_closed`]).
    pub contactors: Vec<bool>,
    pub circuit_faults: Vec<CircuitFault>,
    /// Load (W) on circuit n besides its SLC lamps is `plain_w[n - 1]`: the
    /// lamps without an SLC, which only the RTU meters. Drawn while the
    /// circuit has supply.
    pub plain_w: Vec<f64>,
    pub door: bool,
    pub leakage: bool,
    pub rtu_fault: RtuFault,
    energy_kwh: f64,
    last_t: f64,
    rng: fastrand::Rng,
    /// Only SLCs with a fault beyond lamp failure and a stuck relay have an
    /// entry: most never do.
    pub faults: HashMap<u32, SlcFault>,
    /// Values an SLC showed when it went silent (block layout keeps serving
    /// them), by its own `silent` fault or a cut of its circuit that
    /// silences it.
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
                    stuck_on: false,
                    scaled: false,
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
            circuit_faults: vec![CircuitFault::default(); usize::from(circuits.max(1))],
            plain_w: vec![0.0; usize::from(circuits.max(1))],
            door: false,
            leakage: false,
            rtu_fault: RtuFault::default(),
            energy_kwh: (hash(&[seed, 3, e]) % 500_000) as f64 / 10.0,
            last_t: now,
            rng: fastrand::Rng::with_seed(hash(&[seed, 4, e])),
            faults: HashMap::new(),
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

    /// Where circuit `c`'s (0-based) contacts really are: a stuck contactor
    /// stays put, the RTU's auxiliary contact reads this.
    pub fn contact_closed(&self, c: usize) -> bool {
        match self.circuit_faults[c].stuck {
            Some(s) => s.closed,
            None => self.contactors[c],
        }
    }

    /// Whether circuit `c` (0-based) carries supply to its lamps.
    fn supplied(&self, c: usize) -> bool {
        self.contact_closed(c) && self.circuit_faults[c].cut.is_none()
    }

    /// Whether circuit `c`'s (0-based) SLCs died with its supply.
    fn muted(&self, c: usize) -> bool {
        self.circuit_faults[c].cut.is_some_and(|cut| !cut.answers)
    }

    /// SLCs on circuit `c` (0-based).
    fn on_circuit(&self, c: usize) -> impl Iterator<Item = usize> {
        (c..self.slcs.len()).step_by(self.contactors.len())
    }

    fn slc_power(&self, j: usize) -> f64 {
        let s = &self.slcs[j];
        if self.supplied(self.circuit_of(j)) && (s.on || s.stuck_on) && !s.failed {
            let deviation = POWER_SPREAD * unit_noise(&[self.seed, 9, self.index as u64, j as u64]);
            let scale = if s.scaled {
                self.faults
                    .get(&(j as u32))
                    .and_then(|f| f.power_scale)
                    .unwrap_or(1.0)
            } else {
                1.0
            };
            f64::from(s.rated_w) * f64::from(s.dim_tenths) / 1000.0 * (1.0 + deviation) * scale
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
        total_w += self.plain_power();
        self.energy_kwh += total_w * dt / 3.6e6;
        self.last_t = now;
    }

    /// The load of lamps without an SLC on circuits with supply (W).
    fn plain_power(&self) -> f64 {
        (0..self.plain_w.len())
            .filter(|&c| self.supplied(c))
            .map(|c| self.plain_w[c])
            .sum()
    }

    /// Live values of SLC `j`, ignoring comm faults.
    pub fn live_slc(&self, j: usize, now: f64) -> SlcValues {
        let s = &self.slcs[j];
        let energised = self.supplied(self.circuit_of(j));
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
            switch: s.on || s.stuck_on,
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
        for (c, &p) in self.plain_w.iter().enumerate() {
            if p > 0.0 && self.supplied(c) {
                current[c % 3] += p / (self.supply_v(c as u64 % 3, tick) * LIT_PF);
                active_power += p;
            }
        }
        RtuValues {
            contactors: (0..self.contactors.len())
                .map(|c| self.contact_closed(c))
                .collect(),
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
        let mut f = self.faults.get(&(j as u32)).copied().unwrap_or_default();
        f.failed = self.slcs[j].failed;
        f.stuck_on = self.slcs[j].stuck_on;
        f
    }

    pub fn set_slc_fault(&mut self, j: usize, fault: SlcFault, now: f64) {
        let key = j as u32;
        let s = &mut self.slcs[j];
        s.failed = fault.failed;
        if fault.stuck_on && !s.stuck_on && !s.on {
            // Stuck while off: the lamp burns at full level.
            s.dim_tenths = 1000;
        }
        s.stuck_on = fault.stuck_on;
        s.scaled = fault.power_scale.is_some();
        let silent = fault.silent || self.muted(self.circuit_of(j));
        if silent {
            self.go_quiet(j, now);
        } else {
            self.snapshots.remove(&key);
        }
        if fault.is_extra() {
            self.faults.insert(key, fault);
        } else {
            self.faults.remove(&key);
        }
    }

    /// SLC `j` stops answering with the values it shows now (if it has not already).
    fn go_quiet(&mut self, j: usize, now: f64) {
        if !self.snapshots.contains_key(&(j as u32)) {
            let mut v = self.live_slc(j, now);
            v.comm_ok = false;
            self.snapshots.insert(j as u32, v);
        }
    }

    /// The fault of circuit `c` (0-based).
    pub fn circuit_fault(&self, c: usize) -> CircuitFault {
        self.circuit_faults[c]
    }

    /// Replaces the fault of circuit `c` (0-based). SLCs a cut silences go
    /// quiet with the values they showed before it.
    pub fn set_circuit_fault(&mut self, c: usize, fault: CircuitFault, now: f64) {
        let mutes = fault.cut.is_some_and(|cut| !cut.answers);
        let slcs: Vec<usize> = self.on_circuit(c).collect();
        if mutes {
            for &j in &slcs {
                self.go_quiet(j, now);
            }
        }
        self.circuit_faults[c] = fault;
        if !mutes {
            for j in slcs {
                if !self.faults.get(&(j as u32)).is_some_and(|f| f.silent) {
                    self.snapshots.remove(&(j as u32));
                }
            }
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
    fn field_faults_bill_what_really_burns() {
        use crate::fault::{StuckContactor, SupplyCut};
        // 4 SLCs on 2 circuits: 0 and 2 on circuit 1, 1 and 3 on circuit 2.
        let mut c = Cabinet::new(0, 4, 2, 7, 0.0);
        let lit: Vec<SlcValues> = (0..4).map(|j| c.live_slc(j, 0.0)).collect();
        c.set_circuit_fault(
            0,
            CircuitFault {
                cut: Some(SupplyCut { answers: true }),
                stuck: None,
            },
            0.0,
        );
        c.contactors[1] = false;
        c.set_circuit_fault(
            1,
            CircuitFault {
                cut: None,
                stuck: Some(StuckContactor { closed: true }),
            },
            0.0,
        );
        c.set_slc_fault(
            3,
            SlcFault {
                stuck_on: true,
                power_scale: Some(2.0),
                ..SlcFault::default()
            },
            0.0,
        );
        c.slcs[3].on = false;
        c.advance(3600.0, 0.0, false);
        for j in [0, 2] {
            let v = c.live_slc(j, 3600.0);
            assert_eq!(
                (v.energy, v.burning_hours),
                (lit[j].energy, lit[j].burning_hours)
            );
        }
        let v = c.live_slc(3, 3600.0);
        assert!(v.switch && (v.power - 2.0 * lit[3].power).abs() < 1e-9);
        assert!((v.energy - lit[3].energy - v.power / 1000.0).abs() < 1e-9);
        assert!((v.burning_hours - lit[3].burning_hours - 1.0).abs() < 1e-9);
        assert_eq!(c.rtu(3600.0).contactors, [true, true]);
        let cabinet: f64 = [1, 3].map(|j| c.live_slc(j, 3600.0).power).iter().sum();
        assert!((c.rtu(3600.0).active_power - cabinet).abs() < 1e-9);
    }

    #[test]
    fn lamps_without_slc_load_the_rtu_meter_only() {
        // 4 SLCs on 4 circuits; 300 W of lamps without SLC on circuit 1
        // (phase A), 150 W on circuit 2 (phase B).
        let mut c = Cabinet::new(0, 4, 4, 7, 0.0);
        let slcs = |c: &Cabinet| (0..4).map(|j| c.live_slc(j, 0.0).power).sum::<f64>();
        let before = c.rtu(0.0);
        c.plain_w[0] = 300.0;
        c.plain_w[1] = 150.0;
        let after = c.rtu(0.0);
        assert!((after.active_power - slcs(&c) - 450.0).abs() < 1e-9);
        let phase_a = 300.0 / (after.voltage[0] * LIT_PF);
        assert!((after.current[0] - before.current[0] - phase_a).abs() < 1e-9);
        assert_eq!(after.current[2], before.current[2], "nothing on phase C");
        // An open contactor takes its circuit's plain lamps off the meter.
        c.contactors[0] = false;
        assert!((c.rtu(0.0).active_power - slcs(&c) - 150.0).abs() < 1e-9);
        // The cabinet meter bills them; the SLCs' own meters do not.
        let slc_energy: f64 = (0..4).map(|j| c.live_slc(j, 0.0).energy).sum();
        let (meter, watts) = (c.rtu(0.0).energy, c.rtu(0.0).active_power);
        c.advance(3600.0, 0.0, false);
        assert!((c.rtu(3600.0).energy - meter - watts / 1000.0).abs() < 1e-9);
        let slc_after: f64 = (0..4).map(|j| c.live_slc(j, 3600.0).energy).sum();
        assert!((slc_after - slc_energy - slcs(&c) / 1000.0).abs() < 1e-9);
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

    #[test]
    fn per_slc_state_stays_compact() {
        assert!(
            std::mem::size_of::<Slc>() <= 24,
            "{}",
            std::mem::size_of::<Slc>()
        );
    }

    #[test]
    fn power_is_rated_times_level() {
        let mut c = Cabinet::new(0, 40, 4, 7, 0.0);
        for j in 0..40 {
            let rated = f64::from(c.slcs[j].rated_w);
            let full = c.live_slc(j, 0.0).power;
            assert!(
                (full - rated).abs() <= rated * POWER_SPREAD,
                "{full} of {rated}"
            );
            c.slcs[j].dim_tenths = 300;
            let dim = c.live_slc(j, 0.0).power;
            assert!((dim - full * 0.3).abs() < 1e-9, "{dim} at 30 % of {full}");
        }
    }

    #[test]
    fn cut_circuit_is_dead_past_the_contactor() {
        use crate::fault::SupplyCut;
        let mut c = Cabinet::new(0, 8, 4, 7, 0.0);
        c.slcs[5].dim_tenths = 500;
        let before = c.rtu(0.0);
        let share: f64 = [1, 5].map(|j| c.live_slc(j, 0.0).current).iter().sum();
        let cut = CircuitFault {
            cut: Some(SupplyCut::default()),
            stuck: None,
        };
        c.set_circuit_fault(1, cut, 0.0);
        for j in [1, 5] {
            let v = c.live_slc(j, 0.0);
            assert_eq!((v.voltage, v.current, v.power), (0.0, 0.0, 0.0), "{j}");
            assert_eq!((v.switch, v.fault_flags, v.comm_ok), (true, 0, true), "{j}");
            assert!(!c.is_silent(j));
        }
        assert_eq!(c.live_slc(5, 0.0).dim_level, 50.0, "as commanded");
        assert!(c.live_slc(0, 0.0).power > 0.0 && c.live_slc(2, 0.0).voltage > 200.0);
        let after = c.rtu(0.0);
        assert_eq!(after.contactors, [true; 4], "the contactor is fine");
        assert!((before.current[1] - after.current[1] - share).abs() < 1e-9);
        assert_eq!(
            (before.current[0], before.current[2]),
            (after.current[0], after.current[2])
        );

        // Dead SLCs: they go quiet with the values they had, and talk again
        // when the supply is back — unless silent on their own.
        let dead = CircuitFault {
            cut: Some(SupplyCut { answers: false }),
            stuck: None,
        };
        c.set_circuit_fault(1, CircuitFault::default(), 0.0);
        let lit = c.live_slc(1, 0.0);
        c.set_slc_fault(
            5,
            SlcFault {
                silent: true,
                ..Default::default()
            },
            0.0,
        );
        c.set_circuit_fault(1, dead, 0.0);
        assert!(c.is_silent(1) && c.is_silent(5) && !c.is_silent(0));
        let quiet = c.observed_slc(1, 0.0);
        assert_eq!((quiet.power, quiet.comm_ok), (lit.power, false));
        assert_eq!(c.live_slc(1, 0.0).power, 0.0);
        c.set_slc_fault(5, SlcFault::default(), 0.0);
        assert!(c.is_silent(5), "still without supply");
        c.set_slc_fault(
            5,
            SlcFault {
                silent: true,
                ..Default::default()
            },
            0.0,
        );
        c.set_circuit_fault(1, CircuitFault::default(), 0.0);
        assert!(!c.is_silent(1) && c.is_silent(5));
        assert_eq!(c.circuit_fault(1), CircuitFault::default());
    }

    #[test]
    fn stuck_contactor_keeps_its_real_position() {
        use crate::fault::StuckContactor;
        let mut c = Cabinet::new(0, 8, 4, 7, 0.0);
        let welded = CircuitFault {
            cut: None,
            stuck: Some(StuckContactor { closed: true }),
        };
        c.set_circuit_fault(2, welded, 0.0);
        c.contactors[2] = false; // the write lands, the contacts stay
        assert!(c.rtu(0.0).contactors[2]);
        assert!(c.live_slc(2, 0.0).power > 0.0 && c.live_slc(6, 0.0).voltage > 200.0);
        let jammed = CircuitFault {
            cut: None,
            stuck: Some(StuckContactor { closed: false }),
        };
        c.set_circuit_fault(0, jammed, 0.0);
        assert!(!c.rtu(0.0).contactors[0], "written closed, reads open");
        assert_eq!(c.live_slc(4, 0.0).voltage, 0.0);
        c.set_circuit_fault(2, CircuitFault::default(), 0.0);
        assert!(!c.rtu(0.0).contactors[2], "follows the last write again");
    }

    #[test]
    fn power_scale_and_stuck_relay() {
        let mut c = Cabinet::new(0, 4, 4, 7, 0.0);
        let right = c.live_slc(1, 0.0);
        let half = SlcFault {
            power_scale: Some(0.5),
            ..Default::default()
        };
        c.set_slc_fault(1, half, 0.0);
        let v = c.live_slc(1, 0.0);
        assert!((v.power - right.power * 0.5).abs() < 1e-9);
        assert!((v.current - right.current * 0.5).abs() < 1e-9);
        assert_eq!(c.slc_fault(1), half);
        c.set_slc_fault(1, SlcFault::default(), 0.0);
        assert_eq!(c.live_slc(1, 0.0).power, right.power);
        assert!(c.faults.is_empty());

        // Stuck while off: it burns at full level; while on: at its level.
        c.slcs[2].on = false;
        c.slcs[2].dim_tenths = 400;
        c.slcs[3].dim_tenths = 600;
        let day = SlcFault {
            stuck_on: true,
            ..Default::default()
        };
        c.set_slc_fault(2, day, 0.0);
        c.set_slc_fault(3, day, 0.0);
        c.slcs[3].on = false;
        assert!(c.faults.is_empty(), "kept in the compact state");
        assert_eq!(c.slc_fault(3), day);
        let (v2, v3) = (c.live_slc(2, 0.0), c.live_slc(3, 0.0));
        assert_eq!(
            (v2.switch, v2.dim_level, v3.switch, v3.dim_level),
            (true, 100.0, true, 60.0)
        );
        assert!(v2.power > 0.0 && v3.power > 0.0);
        c.set_slc_fault(3, SlcFault::default(), 0.0);
        assert!(!c.live_slc(3, 0.0).switch, "the last write holds again");
    }
}
