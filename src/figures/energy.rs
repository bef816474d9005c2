//! Energy (能耗), the energy saving rate (节电率), and every lamp's burning
//! hours and switch counts, from the hourly rollups. The rules, so that an
//! auditor can recompute each figure from the store's tables:
//!
//! - **Counters.** An SLC's and an RTU meter's `energy_kwh` are counters:
//!   each reading adds its positive delta over the counter's previous
//!   reading, if that one is at most an hour older, to the UTC hour the
//!   reading is in; a counter reset adds 0, and so does the first reading
//!   after a longer silence (`store::db::sqlite::rollup`: `lamp_hourly`,
//!   `circuit_hourly`, `road_hourly` for the SLCs, `cabinet_hourly` for the
//!   meters). Both sources follow the same rule, so a gap in polling
//!   leaves both short alike and their difference means what it says.
//! - **A cabinet's hour** is billed from its RTU's meter (`meter_kwh`) when
//!   the meter gave a reading in that hour, else from its SLCs (Σ of its
//!   circuits' `energy_kwh`): a cabinet whose RTU went silent falls back to
//!   its SLCs for those hours.
//! - **Energy** of a cabinet, a district or the city over a bucket is the sum
//!   of its cabinet-hours whose hour starts in the bucket; buckets are the
//!   city's local days or months (`crate::calendar`). Beside it:
//!   `meter_kwh` (the metered cabinet-hours' meter), `slc_kwh` (every
//!   SLC delta, metered hours or not), `metered_slc_kwh` (the SLCs' in the
//!   metered hours) and `difference_kwh = meter_kwh − metered_slc_kwh`
//!   (line losses, lamps without an SLC, or a meter fault), with the
//!   number of cabinet-hours billed from each (`meter_hours`, `slc_hours`)
//!   and the `source`: `meter`, `slc`, `meter_and_slc`, or `none`.
//! - **A circuit or a road** is billed from its SLCs only: an RTU meters its
//!   whole cabinet, and neither a circuit nor a road has a meter of its own.
//!   Lamps without an SLC add nothing there.
//! - **Saving rate** over a window = 1 − actual ÷ baseline (`null` when the
//!   baseline is 0), per district; the city's is Σ actual ÷ Σ baseline of
//!   its districts.
//!   - *actual*: the energy above over the window.
//!   - *baseline from the schedule*: Σ over lamps of rated power × the time
//!     the plan has the lamp's burning target above 0 % (`schedule::plan`:
//!     `Plan::burning_target`, `Plan::on_spans`), i.e. what the lamps
//!     would have drawn at 100 % with neither dimming nor smart switching,
//!     counted where the lamp's energy is in the actual: every hour its
//!     cabinet's meter read; in the other hours, for a lamp with an SLC,
//!     weighted by the share of its circuit's SLC lamps that reported in
//!     that hour (`circuit_hourly.lamps` ÷ the circuit's SLCs), so a
//!     silent SLC does not count as saved energy; a lamp without an SLC
//!     outside metered hours is measured by nothing and counts nothing.
//!   - a lamp *no calendar governs*: rated power × its own measured on-time
//!     (`lamp_hourly.on_seconds`), so only its dimming saves; one without an
//!     SLC has no baseline (`lamps_without_baseline`: where it is metered,
//!     its energy is in the actual, so the saving is understated, never
//!     overstated). A lamp without a rated power has none either.
//!   - *settings*: `[figures.energy] baseline_kwh_per_day` gives a
//!     district's measured pre-retrofit energy; × window seconds ÷ 86,400
//!     it replaces the district's computed baseline, which is still shown.
//!   - The schedule is the one in force at each moment of the window
//!     (`schedule::history`): the window is cut where a recorded version of
//!     the book and groups took effect, each piece's plan (its version over
//!     today's inventory) gives the lamps' time above 0 % there, and a
//!     lamp's spans are those of every piece joined. Before the first
//!     recorded version, the earliest; a lamp governed in only part of the
//!     window counts its scheduled time there and nothing elsewhere (it is
//!     not measured-on-time then: understated, never overstated).
//! - **Maintenance**, per lamp over a window: burning hours = Σ
//!   `lamp_hourly.on_seconds` ÷ 3600 (time the SLC reported its relay on),
//!   switches = Σ `lamp_hourly.switches`, energy = Σ `lamp_hourly.energy_kwh`.

use super::config::EnergySettings;
use crate::calendar::Spans;
use crate::inventory::Inventory;
use crate::store::read::energy::{CircuitHour, LampTotals, MeterHour, RoadHour};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

const HOUR_US: i64 = 3_600_000_000;

/// Where a figure's energy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnergySource {
    /// Every billed hour from the cabinet meter.
    Meter,
    /// Every billed hour from the SLCs.
    Slc,
    /// Some hours from the meter, the others from the SLCs.
    MeterAndSlc,
    /// No reading at all.
    None,
}

/// The sums behind one energy figure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EnergySums {
    pub meter_kwh: f64,
    /// The SLCs' kWh in the metered hours.
    pub metered_slc_kwh: f64,
    /// The SLCs' kWh in every hour.
    pub slc_kwh: f64,
    pub meter_hours: u64,
    pub slc_hours: u64,
}

impl EnergySums {
    /// One cabinet-hour: the meter's when it read, else the SLCs'.
    fn cabinet_hour(meter: Option<f64>, slc: Option<f64>) -> Self {
        let s = slc.unwrap_or(0.0);
        match meter {
            Some(m) => Self {
                meter_kwh: m,
                metered_slc_kwh: s,
                slc_kwh: s,
                meter_hours: 1,
                slc_hours: 0,
            },
            None => Self {
                slc_kwh: s,
                slc_hours: u64::from(slc.is_some()),
                ..Self::default()
            },
        }
    }

    /// One circuit- or road-hour: the SLCs'.
    fn slc_hour(kwh: f64) -> Self {
        Self {
            slc_kwh: kwh,
            slc_hours: 1,
            ..Self::default()
        }
    }

    pub fn add(&mut self, o: &EnergySums) {
        self.meter_kwh += o.meter_kwh;
        self.metered_slc_kwh += o.metered_slc_kwh;
        self.slc_kwh += o.slc_kwh;
        self.meter_hours += o.meter_hours;
        self.slc_hours += o.slc_hours;
    }

    /// The figure: the meter where it read, the SLCs elsewhere.
    pub fn energy_kwh(&self) -> f64 {
        self.meter_kwh + (self.slc_kwh - self.metered_slc_kwh)
    }

    pub fn source(&self) -> EnergySource {
        match (self.meter_hours > 0, self.slc_hours > 0) {
            (true, false) => EnergySource::Meter,
            (false, true) => EnergySource::Slc,
            (true, true) => EnergySource::MeterAndSlc,
            (false, false) => EnergySource::None,
        }
    }

    pub fn figures(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> EnergyFigures {
        let metered = self.meter_hours > 0;
        EnergyFigures {
            from,
            to,
            energy_kwh: self.energy_kwh(),
            source: self.source(),
            meter_kwh: metered.then_some(self.meter_kwh),
            slc_kwh: self.slc_kwh,
            metered_slc_kwh: metered.then_some(self.metered_slc_kwh),
            difference_kwh: metered.then_some(self.meter_kwh - self.metered_slc_kwh),
            meter_hours: self.meter_hours,
            slc_hours: self.slc_hours,
        }
    }
}

/// The energy of one thing over one bucket (or the whole window).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EnergyFigures {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// kWh: the meter's in the hours it read, the SLCs' in the others.
    pub energy_kwh: f64,
    pub source: EnergySource,
    /// kWh of the cabinet meters in the hours they read; `null` when none read.
    pub meter_kwh: Option<f64>,
    /// kWh of the SLCs in every hour (Σ of their counters' deltas).
    pub slc_kwh: f64,
    /// kWh of the SLCs in the hours a meter read; `null` when none read.
    pub metered_slc_kwh: Option<f64>,
    /// `meter_kwh − metered_slc_kwh`: line losses, lamps without an SLC, or a
    /// meter fault; `null` when no meter read.
    pub difference_kwh: Option<f64>,
    /// Cabinet-hours billed from a meter.
    pub meter_hours: u64,
    /// Cabinet-hours (circuit- or road-hours for a circuit or a road) billed
    /// from SLCs.
    pub slc_hours: u64,
}

/// The bucket an hour starting at `hour_us` counts in, if any.
fn bucket_of(bounds: &[(i64, i64)], hour_us: i64) -> Option<usize> {
    let i = bounds.partition_point(|b| b.1 <= hour_us);
    bounds.get(i).filter(|b| b.0 <= hour_us).map(|_| i)
}

fn micros(bounds: &[(DateTime<Utc>, DateTime<Utc>)]) -> Vec<(i64, i64)> {
    bounds
        .iter()
        .map(|(a, b)| (a.timestamp_micros(), b.timestamp_micros()))
        .collect()
}

/// Every cabinet-hour of a window: the meter's kWh where it read, the Σ of
/// its circuits' SLC kWh where they reported.
#[derive(Debug, Default)]
pub struct CabinetHours {
    /// (cabinet, hour) → (meter kWh, SLC kWh). Ordered, so that sums are
    /// added in one order and the same question gets the same last digit.
    hours: BTreeMap<(u32, i64), (Option<f64>, Option<f64>)>,
}

impl CabinetHours {
    pub fn new(meters: &[MeterHour], circuits: &[CircuitHour]) -> Self {
        let mut hours: BTreeMap<(u32, i64), (Option<f64>, Option<f64>)> = BTreeMap::new();
        for m in meters.iter().filter(|m| m.samples > 0) {
            hours.entry((m.cabinet, m.hour_us)).or_default().0 = Some(m.meter_kwh);
        }
        for c in circuits {
            let slc = &mut hours.entry((c.cabinet, c.hour_us)).or_default().1;
            *slc = Some(slc.unwrap_or(0.0) + c.energy_kwh);
        }
        Self { hours }
    }

    pub fn metered(&self, cabinet: u32, hour_us: i64) -> bool {
        self.hours
            .get(&(cabinet, hour_us))
            .is_some_and(|h| h.0.is_some())
    }

    /// Per cabinet position, per bucket.
    pub fn by_cabinet(
        &self,
        cabinets: usize,
        bounds: &[(DateTime<Utc>, DateTime<Utc>)],
    ) -> Vec<Vec<EnergySums>> {
        let b = micros(bounds);
        let mut out = vec![vec![EnergySums::default(); b.len()]; cabinets];
        for (&(c, hour), &(meter, slc)) in &self.hours {
            if let (Some(row), Some(i)) = (out.get_mut(c as usize), bucket_of(&b, hour)) {
                row[i].add(&EnergySums::cabinet_hour(meter, slc));
            }
        }
        out
    }
}

/// Per circuit (cabinet position, circuit), per bucket, from the SLCs.
pub fn by_circuit(
    circuits: &[CircuitHour],
    bounds: &[(DateTime<Utc>, DateTime<Utc>)],
) -> HashMap<(u32, u8), Vec<EnergySums>> {
    let b = micros(bounds);
    let mut out: HashMap<(u32, u8), Vec<EnergySums>> = HashMap::new();
    for c in circuits {
        if let Some(i) = bucket_of(&b, c.hour_us) {
            out.entry((c.cabinet, c.circuit))
                .or_insert_with(|| vec![EnergySums::default(); b.len()])[i]
                .add(&EnergySums::slc_hour(c.energy_kwh));
        }
    }
    out
}

/// Per (district, road; `""` for no road), per bucket, from the SLCs.
pub fn by_road(
    roads: &[RoadHour],
    bounds: &[(DateTime<Utc>, DateTime<Utc>)],
) -> HashMap<(String, String), Vec<EnergySums>> {
    let b = micros(bounds);
    let mut out: HashMap<(String, String), Vec<EnergySums>> = HashMap::new();
    for r in roads {
        if let Some(i) = bucket_of(&b, r.hour_us) {
            out.entry((r.district.clone(), r.road.clone()))
                .or_insert_with(|| vec![EnergySums::default(); b.len()])[i]
                .add(&EnergySums::slc_hour(r.energy_kwh));
        }
    }
    out
}

/// What an energy answer is cut by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum By {
    City,
    District,
    Cabinet,
    Circuit,
    Road,
}

impl std::str::FromStr for By {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "city" => Ok(By::City),
            "district" => Ok(By::District),
            "cabinet" => Ok(By::Cabinet),
            "circuit" => Ok(By::Circuit),
            "road" => Ok(By::Road),
            other => Err(format!(
                "by `{other}` is not city, district, cabinet, circuit or road"
            )),
        }
    }
}

/// The energy of one thing: the window and each bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnergyRow {
    /// `city` (the answer's scope: the city, or the one district), or what
    /// `by` names.
    pub kind: By,
    /// The district, cabinet or road id; a circuit is `CABINET/n`; `null`
    /// for the lamps of a district on no road.
    pub id: Option<String>,
    pub name: String,
    pub district: Option<String>,
    pub cabinet: Option<String>,
    pub circuit: Option<u8>,
    pub road: Option<String>,
    /// Lamps of the inventory in it, and those with an SLC.
    pub lamps: u64,
    pub slcs: u64,
    pub total: EnergyFigures,
    pub buckets: Vec<EnergyFigures>,
}

/// Lamps and SLCs per position of `n` things, a lamp counted where `key`
/// puts it: one pass over the lamps, whatever the number of things.
fn tally(inv: &Inventory, n: usize, key: impl Fn(usize) -> Option<usize>) -> Vec<(u64, u64)> {
    let mut out = vec![(0, 0); n];
    for (i, l) in inv.lamps.iter().enumerate() {
        if let Some(t) = key(i).and_then(|k| out.get_mut(k)) {
            t.0 += 1;
            t.1 += u64::from(l.slc.is_some());
        }
    }
    out
}

fn district_of_lamp(inv: &Inventory, lamp: usize) -> Option<usize> {
    inv.cabinet_of_lamp(lamp)
        .and_then(|c| inv.district_of_cabinet(c))
}

/// The rows of an energy answer: `scope` is the district positions it
/// covers (`city` names the scope row: the city's or the district's).
#[derive(Debug)]
pub struct EnergyQuery<'a> {
    pub inventory: &'a Inventory,
    pub bounds: &'a [(DateTime<Utc>, DateTime<Utc>)],
    pub scope: &'a [usize],
    /// The scope row's id and name when `by` is `city`.
    pub city: (&'a str, &'a str),
    pub by: By,
}

impl EnergyQuery<'_> {
    fn row(&self, sums: &[EnergySums], head: RowHead) -> EnergyRow {
        let (from, to) = (
            self.bounds.first().map_or_else(Utc::now, |b| b.0),
            self.bounds.last().map_or_else(Utc::now, |b| b.1),
        );
        let mut total = EnergySums::default();
        for s in sums {
            total.add(s);
        }
        EnergyRow {
            kind: head.kind,
            id: head.id,
            name: head.name,
            district: head.district,
            cabinet: head.cabinet,
            circuit: head.circuit,
            road: head.road,
            lamps: head.lamps.0,
            slcs: head.lamps.1,
            total: total.figures(from, to),
            buckets: sums
                .iter()
                .zip(self.bounds)
                .map(|(s, &(a, b))| s.figures(a, b))
                .collect(),
        }
    }

    /// The answer's rows: the city's, districts' and cabinets' from the
    /// cabinets' sums, circuits' and roads' from their own.
    pub fn rows(
        &self,
        cabinets: &[Vec<EnergySums>],
        circuits: &HashMap<(u32, u8), Vec<EnergySums>>,
        roads: &HashMap<(String, String), Vec<EnergySums>>,
    ) -> Vec<EnergyRow> {
        let inv = self.inventory;
        let n = self.bounds.len();
        let in_scope = |c: usize| {
            inv.district_of_cabinet(c)
                .is_some_and(|d| self.scope.contains(&d))
        };
        let sum_cabinets = |pick: &dyn Fn(usize) -> bool| {
            let mut out = vec![EnergySums::default(); n];
            for (c, sums) in cabinets.iter().enumerate() {
                if pick(c) {
                    for (o, s) in out.iter_mut().zip(sums) {
                        o.add(s);
                    }
                }
            }
            out
        };
        let empty = vec![EnergySums::default(); n];
        match self.by {
            By::City => {
                let sums = sum_cabinets(&in_scope);
                let per = tally(inv, inv.districts.len(), |l| district_of_lamp(inv, l));
                let lamps = self
                    .scope
                    .iter()
                    .fold((0, 0), |a, &d| (a.0 + per[d].0, a.1 + per[d].1));
                vec![self.row(
                    &sums,
                    RowHead::new(By::City, Some(self.city.0), self.city.1, lamps),
                )]
            }
            By::District => {
                let per = tally(inv, inv.districts.len(), |l| district_of_lamp(inv, l));
                self.scope
                    .iter()
                    .map(|&d| {
                        let sums = sum_cabinets(&|c| inv.district_of_cabinet(c) == Some(d));
                        let dist = &inv.districts[d];
                        let mut head =
                            RowHead::new(By::District, Some(&dist.id), &dist.name, per[d]);
                        head.district = Some(dist.id.clone());
                        self.row(&sums, head)
                    })
                    .collect()
            }
            By::Cabinet => {
                let per = tally(inv, inv.cabinets.len(), |l| inv.cabinet_of_lamp(l));
                inv.cabinets
                    .iter()
                    .enumerate()
                    .filter(|(c, _)| in_scope(*c))
                    .map(|(c, cab)| {
                        let mut head = RowHead::new(By::Cabinet, Some(&cab.id), &cab.name, per[c]);
                        head.district = Some(cab.district.clone());
                        head.cabinet = Some(cab.id.clone());
                        self.row(cabinets.get(c).unwrap_or(&empty), head)
                    })
                    .collect()
            }
            By::Circuit => {
                let mut lamps: HashMap<(usize, u8), (u64, u64)> = HashMap::new();
                for (i, l) in inv.lamps.iter().enumerate() {
                    if let Some(c) = inv.cabinet_of_lamp(i) {
                        let n = lamps.entry((c, l.circuit)).or_default();
                        n.0 += 1;
                        n.1 += u64::from(l.slc.is_some());
                    }
                }
                let mut out = Vec::new();
                for (c, cab) in inv
                    .cabinets
                    .iter()
                    .enumerate()
                    .filter(|(c, _)| in_scope(*c))
                {
                    for circuit in 1..=cab.circuits {
                        let id = format!("{}/{circuit}", cab.id);
                        let counts = lamps.get(&(c, circuit)).copied().unwrap_or_default();
                        let mut head = RowHead::new(By::Circuit, Some(&id), &id, counts);
                        head.district = Some(cab.district.clone());
                        head.cabinet = Some(cab.id.clone());
                        head.circuit = Some(circuit);
                        let sums = circuits.get(&(c as u32, circuit)).unwrap_or(&empty);
                        out.push(self.row(sums, head));
                    }
                }
                out
            }
            By::Road => {
                let per_road = tally(inv, inv.roads.len(), |l| inv.road_of_lamp(l));
                let no_road = tally(inv, inv.districts.len(), |l| match inv.road_of_lamp(l) {
                    Some(_) => None,
                    None => district_of_lamp(inv, l),
                });
                let mut out = Vec::new();
                for &d in self.scope {
                    let dist = &inv.districts[d];
                    for (r, road) in inv.roads.iter().enumerate() {
                        if road.district != dist.id {
                            continue;
                        }
                        let mut head =
                            RowHead::new(By::Road, Some(&road.id), &road.name, per_road[r]);
                        head.district = Some(dist.id.clone());
                        head.road = Some(road.id.clone());
                        let key = (dist.id.clone(), road.id.clone());
                        out.push(self.row(roads.get(&key).unwrap_or(&empty), head));
                    }
                    // Lamps on no road: their own row, as the lighting rate
                    // has, when the district has any.
                    let lamps = no_road[d];
                    let key = (dist.id.clone(), String::new());
                    if lamps.0 > 0 || roads.contains_key(&key) {
                        let mut head = RowHead::new(By::Road, None, "(no road)", lamps);
                        head.district = Some(dist.id.clone());
                        out.push(self.row(roads.get(&key).unwrap_or(&empty), head));
                    }
                }
                out
            }
        }
    }
}

/// The naming part of an [`EnergyRow`].
struct RowHead {
    kind: By,
    id: Option<String>,
    name: String,
    district: Option<String>,
    cabinet: Option<String>,
    circuit: Option<u8>,
    road: Option<String>,
    lamps: (u64, u64),
}

impl RowHead {
    fn new(kind: By, id: Option<&str>, name: &str, lamps: (u64, u64)) -> Self {
        Self {
            kind,
            id: id.map(str::to_string),
            name: name.to_string(),
            district: None,
            cabinet: None,
            circuit: None,
            road: None,
            lamps,
        }
    }
}

/// Where a baseline comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BaselineSource {
    /// From rated powers × the schedule's burning time (and the measured
    /// on-time of lamps no calendar governs).
    Computed,
    /// The measured pre-retrofit figure of `[figures.energy]`.
    Settings,
    /// The city: some districts from the settings, the others computed.
    SettingsAndComputed,
}

/// The energy a saving is measured against, with its inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Baseline {
    /// kWh the saving is measured against: the settings' where given, else
    /// the computed one.
    pub kwh: f64,
    /// `null` only for a scope without districts.
    pub source: Option<BaselineSource>,
    /// kWh computed from rated powers and the schedule (measured on-time
    /// for lamps no calendar governs), whatever the source.
    pub computed_kwh: f64,
    /// The settings' measured pre-retrofit kWh per day (summed over the
    /// districts that have one, for the city); `null` when none.
    pub settings_kwh_per_day: Option<f64>,
    /// That figure scaled to the window.
    pub settings_kwh: Option<f64>,
    /// Σ rated power of the lamps in the computed baseline, kW.
    pub rated_kw: f64,
    /// Lamp-hours the schedule has the governed lamps above 0 % in the
    /// window, by the schedule in force at each moment of it (its recorded
    /// versions).
    pub scheduled_lamp_hours: f64,
    /// Those of them counted: where the lamp's energy was measured (metered
    /// cabinet-hours; SLC-reported hours weighted by the circuit's share).
    pub counted_lamp_hours: f64,
    /// Measured on-hours of the lamps with an SLC that no calendar governs.
    pub measured_lamp_hours: f64,
    pub lamps: u64,
    /// Lamps a calendar governs (burning time from the schedule).
    pub lamps_scheduled: u64,
    /// Lamps with an SLC and no calendar (burning time as measured).
    pub lamps_measured: u64,
    /// Lamps without a baseline: no rated power, or no SLC and no calendar.
    pub lamps_without_baseline: u64,
}

impl Baseline {
    fn add(&mut self, o: &Baseline) {
        self.kwh += o.kwh;
        self.computed_kwh += o.computed_kwh;
        self.settings_kwh_per_day = sum_opt(self.settings_kwh_per_day, o.settings_kwh_per_day);
        self.settings_kwh = sum_opt(self.settings_kwh, o.settings_kwh);
        self.rated_kw += o.rated_kw;
        self.scheduled_lamp_hours += o.scheduled_lamp_hours;
        self.counted_lamp_hours += o.counted_lamp_hours;
        self.measured_lamp_hours += o.measured_lamp_hours;
        self.lamps += o.lamps;
        self.lamps_scheduled += o.lamps_scheduled;
        self.lamps_measured += o.lamps_measured;
        self.lamps_without_baseline += o.lamps_without_baseline;
        self.source = match (self.source, o.source) {
            (None, s) | (s, None) => s,
            (Some(a), Some(b)) if a == b => Some(a),
            _ => Some(BaselineSource::SettingsAndComputed),
        };
    }
}

fn sum_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// The saving rate of one scope over the window, with its inputs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SavingFigures {
    /// `city` or the district id.
    pub scope: String,
    pub name: String,
    pub actual: EnergyFigures,
    pub baseline: Baseline,
    /// `baseline.kwh − actual.energy_kwh`.
    pub saved_kwh: f64,
    /// 节电率: `1 − actual.energy_kwh ÷ baseline.kwh`; `null` when the
    /// baseline is 0.
    pub saving_rate: Option<f64>,
}

/// What the saving rate of a window needs.
#[derive(Debug)]
pub struct SavingInputs<'a> {
    pub inventory: &'a Inventory,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Per lamp position, the scheduled burning spans over the window by the
    /// schedule in force at each moment (`schedule::history::burning_spans`:
    /// lamps alike share one list); empty (or `None` for a lamp) where no
    /// calendar governs in any of it.
    pub spans: &'a [Option<Spans>],
    pub hours: &'a CabinetHours,
    pub circuits: &'a [CircuitHour],
    /// Measured totals of the lamps with an SLC no calendar governs.
    pub measured: &'a [LampTotals],
    pub settings: &'a EnergySettings,
}

impl SavingInputs<'_> {
    /// The lamps whose baseline is their measured on-time: those with an
    /// SLC that no calendar governs (their ids, for `Db::lamp_totals`).
    pub fn measured_lamps<'i>(
        inventory: &'i Inventory,
        spans: &[Option<Spans>],
        scope: &[usize],
    ) -> Vec<&'i str> {
        inventory
            .lamps
            .iter()
            .enumerate()
            .filter(|(i, l)| {
                l.slc.is_some()
                    && spans.get(*i).is_none_or(Option::is_none)
                    && district_of_lamp(inventory, *i).is_some_and(|d| scope.contains(&d))
            })
            .map(|(_, l)| l.id.as_str())
            .collect()
    }

    /// Each district's saving (positions `scope`), then the scope's total
    /// named `city` (id, name).
    pub fn saving(
        &self,
        scope: &[usize],
        city: (&str, &str),
    ) -> (Vec<SavingFigures>, SavingFigures) {
        let inv = self.inventory;
        let window_s = (self.to - self.from).num_milliseconds() as f64 / 1000.0;
        let bounds = [(self.from, self.to)];
        let energy = self.hours.by_cabinet(inv.cabinets.len(), &bounds);
        let computed = self.computed(scope);
        let mut districts = Vec::new();
        let (mut actual, mut baseline) = (EnergySums::default(), Baseline::default());
        for (&d, mut b) in scope.iter().zip(computed) {
            let dist = &inv.districts[d];
            let mut sums = EnergySums::default();
            for (c, e) in energy.iter().enumerate() {
                if inv.district_of_cabinet(c) == Some(d) {
                    sums.add(&e[0]);
                }
            }
            b.source = Some(BaselineSource::Computed);
            b.kwh = b.computed_kwh;
            if let Some(kwh) = self.settings.baseline_kwh(&dist.id, window_s) {
                b.settings_kwh_per_day = self.settings.baseline_kwh_per_day.get(&dist.id).copied();
                b.settings_kwh = Some(kwh);
                b.kwh = kwh;
                b.source = Some(BaselineSource::Settings);
            }
            actual.add(&sums);
            baseline.add(&b);
            districts.push(self.figures(&dist.id, &dist.name, &sums, b));
        }
        let total = self.figures(city.0, city.1, &actual, baseline);
        (districts, total)
    }

    fn figures(
        &self,
        id: &str,
        name: &str,
        actual: &EnergySums,
        baseline: Baseline,
    ) -> SavingFigures {
        let used = actual.energy_kwh();
        SavingFigures {
            scope: id.to_string(),
            name: name.to_string(),
            actual: actual.figures(self.from, self.to),
            saved_kwh: baseline.kwh - used,
            saving_rate: (baseline.kwh > 0.0).then(|| 1.0 - used / baseline.kwh),
            baseline,
        }
    }

    /// The computed baseline of each district of `scope` (in its order).
    fn computed(&self, scope: &[usize]) -> Vec<Baseline> {
        let inv = self.inventory;
        let mut per: Vec<Baseline> = vec![Baseline::default(); inv.districts.len()];
        // SLC lamps per circuit, and those that reported per circuit-hour.
        let mut slcs: HashMap<(u32, u8), u32> = HashMap::new();
        for (i, l) in inv.lamps.iter().enumerate() {
            if let (Some(c), true) = (inv.cabinet_of_lamp(i), l.slc.is_some()) {
                *slcs.entry((c as u32, l.circuit)).or_default() += 1;
            }
        }
        let reported: HashMap<(u32, u8, i64), u32> = self
            .circuits
            .iter()
            .map(|c| ((c.cabinet, c.circuit, c.hour_us), c.lamps))
            .collect();
        let measured: HashMap<&str, &LampTotals> = self
            .measured
            .iter()
            .map(|m| (m.lamp_id.as_str(), m))
            .collect();
        let (from_us, to_us) = (self.from.timestamp_micros(), self.to.timestamp_micros());
        // Lamps alike (circuit, SLC or not, district, one shared list of
        // spans, told apart by its address) are counted once: rated watts
        // and lamps per group, the groups in inventory order (so the sums
        // are added in one order).
        let mut index: HashMap<LampGroup, usize> = HashMap::new();
        let mut groups: Vec<(LampGroup, &Spans, f64, u64)> = Vec::new();
        for (i, l) in inv.lamps.iter().enumerate() {
            let (Some(c), Some(d)) = (inv.cabinet_of_lamp(i), district_of_lamp(inv, i)) else {
                continue;
            };
            if !scope.contains(&d) {
                continue;
            }
            let b = &mut per[d];
            b.lamps += 1;
            let Some(rated_w) = l.rated_power_w.filter(|w| *w > 0.0) else {
                b.lamps_without_baseline += 1;
                continue;
            };
            match self.spans.get(i).and_then(Option::as_ref) {
                Some(spans) => {
                    b.lamps_scheduled += 1;
                    b.rated_kw += rated_w / 1000.0;
                    let key = (c as u32, l.circuit, l.slc.is_some(), d, spans.as_ptr());
                    let g = *index.entry(key).or_insert_with(|| {
                        groups.push((key, spans, 0.0, 0));
                        groups.len() - 1
                    });
                    groups[g].2 += rated_w;
                    groups[g].3 += 1;
                }
                None if l.slc.is_some() => {
                    b.lamps_measured += 1;
                    b.rated_kw += rated_w / 1000.0;
                    let on_s = measured.get(l.id.as_str()).map_or(0.0, |m| m.on_seconds);
                    b.measured_lamp_hours += on_s / 3600.0;
                    b.computed_kwh += rated_w * on_s / 3.6e6;
                }
                None => b.lamps_without_baseline += 1,
            }
        }
        for ((cabinet, circuit, slc, d, _), spans, rated_w, lamps) in groups {
            let circuit_slcs = slcs.get(&(cabinet, circuit)).copied().unwrap_or(0);
            // The share of the lamp's time whose energy was measured, per hour.
            let weight = |hour: i64| -> f64 {
                if self.hours.metered(cabinet, hour) {
                    1.0
                } else if slc && circuit_slcs > 0 {
                    let n = reported
                        .get(&(cabinet, circuit, hour))
                        .copied()
                        .unwrap_or(0);
                    (f64::from(n) / f64::from(circuit_slcs)).min(1.0)
                } else {
                    0.0
                }
            };
            let (mut scheduled_s, mut counted_s) = (0.0, 0.0);
            for &(a, b) in spans.iter() {
                let (a, b) = (a.max(from_us), b.min(to_us));
                let mut at = a;
                while at < b {
                    let hour = at - at.rem_euclid(HOUR_US);
                    let end = (hour + HOUR_US).min(b);
                    let s = (end - at) as f64 / 1e6;
                    scheduled_s += s;
                    counted_s += s * weight(hour);
                    at = end;
                }
            }
            let b = &mut per[d];
            b.scheduled_lamp_hours += scheduled_s * lamps as f64 / 3600.0;
            b.counted_lamp_hours += counted_s * lamps as f64 / 3600.0;
            b.computed_kwh += rated_w * counted_s / 3.6e6;
        }
        scope.iter().map(|&d| per[d].clone()).collect()
    }
}

/// Cabinet position, circuit, has an SLC, district position, the address of
/// the shared spans.
type LampGroup = (u32, u8, bool, usize, *const (i64, i64));

/// One lamp's burning hours, switch count and energy over a window.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LampMaintenance {
    pub lamp_id: String,
    pub district: String,
    pub cabinet: String,
    pub circuit: u8,
    pub road: Option<String>,
    /// `null` for a lamp without an SLC: nothing measures it.
    pub slc_id: Option<String>,
    pub rated_power_w: Option<f64>,
    /// Hours the SLC reported its relay on (`null` without an SLC).
    pub burning_hours: Option<f64>,
    /// On/off changes (`null` without an SLC).
    pub switches: Option<u64>,
    /// kWh of its SLC's counter (`null` without an SLC).
    pub energy_kwh: Option<f64>,
    /// Hours of the window with a sample from its SLC.
    pub hours_reported: u64,
}

/// The maintenance figures of the lamps at `lamps` (positions) from their
/// totals; a lamp with an SLC and no rolled-up hour has zeros.
pub fn maintenance(
    inv: &Inventory,
    lamps: &[usize],
    totals: &[LampTotals],
) -> Vec<LampMaintenance> {
    let totals: HashMap<&str, &LampTotals> =
        totals.iter().map(|t| (t.lamp_id.as_str(), t)).collect();
    lamps
        .iter()
        .filter_map(|&i| {
            let l = inv.lamps.get(i)?;
            let t = totals.get(l.id.as_str());
            let slc = l.slc.is_some();
            let district = district_of_lamp(inv, i)
                .map(|d| inv.districts[d].id.clone())
                .unwrap_or_default();
            Some(LampMaintenance {
                lamp_id: l.id.clone(),
                district,
                cabinet: l.cabinet.clone(),
                circuit: l.circuit,
                road: l.road.clone(),
                slc_id: l.slc.as_ref().map(|s| s.id.clone()),
                rated_power_w: l.rated_power_w,
                burning_hours: slc.then(|| t.map_or(0.0, |t| t.on_seconds / 3600.0)),
                switches: slc.then(|| t.map_or(0, |t| u64::try_from(t.switches).unwrap_or(0))),
                energy_kwh: slc.then(|| t.map_or(0.0, |t| t.energy_kwh)),
                hours_reported: t.map_or(0, |t| u64::try_from(t.hours).unwrap_or(0)),
            })
        })
        .collect()
}

/// The longest window of the maintenance figures: a year of a page of lamps'
/// hours (the energy and saving windows are `window::MAX_WINDOW`'s).
pub const MAX_MAINTENANCE_WINDOW: chrono::Duration = chrono::Duration::days(366);

/// Checks a maintenance window: `from` before `to`, at most a year.
pub fn check_maintenance_window(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(), super::window::WindowError> {
    use super::window::WindowError;
    if to <= from {
        return Err(WindowError::BadInput(format!(
            "`from` ({from}) must be before `to` ({to})"
        )));
    }
    if to - from > MAX_MAINTENANCE_WINDOW {
        return Err(WindowError::BadInput(format!(
            "a maintenance window may span at most {} days, this one spans {:.1}",
            MAX_MAINTENANCE_WINDOW.num_days(),
            (to - from).num_seconds() as f64 / 86_400.0
        )));
    }
    Ok(())
}

/// The answer of `/metrics/energy`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnergyReport {
    /// `city` or the district id.
    pub scope: String,
    pub name: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub by: By,
    /// `day` or `month`; `null`: one bucket, the window.
    pub bucket: Option<crate::calendar::Bucket>,
    pub time_zone: String,
    pub rows: Vec<EnergyRow>,
}

/// The answer of `/metrics/saving`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavingReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub window_seconds: f64,
    pub time_zone: String,
    /// The scope's: the city's, or the one district's.
    pub total: SavingFigures,
    /// Each district of the scope.
    pub districts: Vec<SavingFigures>,
}

/// A page of `/metrics/maintenance`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenancePage {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Lamps in the scope.
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    /// Inventory order.
    pub items: Vec<LampMaintenance>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Cabinet, District, Framing, Lamp, RtuSpec, SlcSpec};

    /// Midnight 2025-03-15 in Shanghai (UTC+8): the day's first hour.
    fn t0() -> DateTime<Utc> {
        "2025-03-14T16:00:00Z".parse().unwrap()
    }

    fn h(n: i64) -> i64 {
        t0().timestamp_micros() + n * HOUR_US
    }

    fn cabinet(id: &str, rtu: bool) -> Cabinet {
        Cabinet {
            at: String::new(),
            id: id.into(),
            district: "D01".into(),
            name: format!("Cabinet {id}"),
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

    fn lamp(id: &str, cab: &str, circuit: u8, rated: Option<f64>, slc: bool) -> Lamp {
        Lamp {
            at: String::new(),
            id: id.into(),
            cabinet: cab.into(),
            circuit,
            lat: None,
            lon: None,
            rated_power_w: rated,
            slc: slc.then(|| SlcSpec {
                id: format!("S-{id}"),
                profile: "slc-a-unit".into(),
                unit: 2,
                index: None,
            }),
            road: None,
        }
    }

    /// D01: C1 with an RTU (L1 100 W with SLC and L2 150 W without, both on
    /// circuit 1); C2 without (L3 200 W with SLC on circuit 1; L4 100 W
    /// without SLC on circuit 1; L5 80 W and L6 of no rated power, both with
    /// SLC, on circuit 2).
    fn city() -> Inventory {
        Inventory::new(
            vec![District {
                at: String::new(),
                id: "D01".into(),
                name: "North".into(),
            }],
            vec![cabinet("C1", true), cabinet("C2", false)],
            vec![
                lamp("L1", "C1", 1, Some(100.0), true),
                lamp("L2", "C1", 1, Some(150.0), false),
                lamp("L3", "C2", 1, Some(200.0), true),
                lamp("L4", "C2", 1, Some(100.0), false),
                lamp("L5", "C2", 2, Some(80.0), true),
                lamp("L6", "C2", 2, None, true),
            ],
        )
    }

    fn meter(cabinet: u32, hour: i64, kwh: f64) -> MeterHour {
        MeterHour {
            cabinet,
            hour_us: h(hour),
            meter_kwh: kwh,
            samples: 360,
        }
    }

    fn slc(cabinet: u32, circuit: u8, hour: i64, lamps: u32, kwh: f64) -> CircuitHour {
        CircuitHour {
            cabinet,
            circuit,
            hour_us: h(hour),
            lamps,
            energy_kwh: kwh,
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    /// C1 (position 0): meter 2.0 kWh in hour 0 and nothing in hour 1; its
    /// SLCs 0.8 + 0.7 in hour 0 (two circuits) and 0.9 in hour 1. Hour 1
    /// falls back to the SLCs: 2.0 + 0.9 = 2.9 kWh; SLCs 2.4 in all, 1.5 of
    /// them in the metered hour: 2.0 − 1.5 = 0.5 kWh the SLCs do not see.
    /// Hour 30 is the next local day (00:00 + 30 h = 06:00 on the 16th).
    #[test]
    fn a_cabinet_hour_is_the_meter_where_it_read_else_the_slcs() {
        let hours = CabinetHours::new(
            &[meter(0, 0, 2.0), meter(1, 30, 4.0)],
            &[
                slc(0, 1, 0, 1, 0.8),
                slc(0, 2, 0, 1, 0.7),
                slc(0, 1, 1, 1, 0.9),
                slc(0, 1, 30, 1, 1.25),
            ],
        );
        let day = chrono::Duration::days(1);
        let bounds = [(t0(), t0() + day), (t0() + day, t0() + day * 2)];
        let c = hours.by_cabinet(2, &bounds);
        let d1 = c[0][0].figures(bounds[0].0, bounds[0].1);
        close(d1.energy_kwh, 2.9);
        assert_eq!(d1.source, EnergySource::MeterAndSlc);
        close(d1.meter_kwh.unwrap(), 2.0);
        close(d1.slc_kwh, 2.4);
        close(d1.metered_slc_kwh.unwrap(), 1.5);
        close(d1.difference_kwh.unwrap(), 0.5);
        assert_eq!((d1.meter_hours, d1.slc_hours), (1, 1));
        // Day 2 of C1: SLCs only; of C2: its meter only.
        let d2 = c[0][1].figures(bounds[1].0, bounds[1].1);
        assert_eq!(d2.source, EnergySource::Slc);
        close(d2.energy_kwh, 1.25);
        assert_eq!(d2.meter_kwh, None);
        assert_eq!(d2.difference_kwh, None);
        let c2 = c[1][1].figures(bounds[1].0, bounds[1].1);
        assert_eq!(c2.source, EnergySource::Meter);
        close(c2.energy_kwh, 4.0);
        close(c2.difference_kwh.unwrap(), 4.0);
        assert_eq!(
            c[1][0].figures(bounds[0].0, bounds[0].1).source,
            EnergySource::None
        );
        // A circuit is its SLCs', whatever the meter says.
        let circuits = by_circuit(&[slc(0, 1, 0, 1, 0.8), slc(0, 1, 1, 1, 0.9)], &bounds);
        let c11 = circuits[&(0, 1)][0].figures(bounds[0].0, bounds[0].1);
        close(c11.energy_kwh, 1.7);
        assert_eq!(c11.source, EnergySource::Slc);
        assert_eq!(c11.slc_hours, 2);
    }

    /// An hour counts in the bucket its start is in: a window from 00:30
    /// leaves the 00:00 hour out.
    #[test]
    fn hours_count_in_the_bucket_they_start_in() {
        let b = micros(&[(
            t0() + chrono::Duration::minutes(30),
            t0() + chrono::Duration::hours(2),
        )]);
        assert_eq!(bucket_of(&b, h(0)), None);
        assert_eq!(bucket_of(&b, h(1)), Some(0));
        assert_eq!(bucket_of(&b, h(2)), None);
    }

    /// The window is hours 0 and 1. Every governed lamp is scheduled on for
    /// both (7,200 s); C1 (position 0) metered only in hour 0; circuit C1/1
    /// reported its one SLC in hour 1; circuit C2/1 (its one SLC, L3)
    /// reported in hour 0 only. Counted hours:
    /// L1 (SLC, C1): hour 0 metered, hour 1 its circuit reported → 2 h × 100 W = 0.2 kWh;
    /// L2 (no SLC, C1): hour 0 metered, hour 1 measured by nothing → 1 h × 150 W = 0.15 kWh;
    /// L3 (SLC, C2): hour 0 reported, hour 1 not → 1 h × 200 W = 0.2 kWh;
    /// L4 (no SLC, C2, no meter): 0 h;
    /// L5 (SLC, no calendar): measured on 5,400 s × 80 W = 0.12 kWh;
    /// L6: no rated power, no baseline.
    /// Baseline 0.67 kWh. Actual: C1 meter 0.30 (hour 0) + SLCs 0.09
    /// (hour 1) + C2 SLCs 0.15 + 0.05 (hour 0) + 0.04 (hour 1) = 0.63 kWh.
    /// Saving 1 − 0.63 ÷ 0.67 = 0.04 ÷ 0.67.
    #[test]
    fn the_saving_counts_scheduled_time_where_the_energy_was_measured() {
        let inv = city();
        let on: Spans = vec![(h(0), h(2))].into();
        let spans = vec![
            Some(on.clone()),
            Some(on.clone()),
            Some(on.clone()),
            Some(on),
            None,
            None,
        ];
        assert_eq!(
            SavingInputs::measured_lamps(&inv, &spans, &[0]),
            vec!["L5", "L6"]
        );
        let circuits = [
            slc(0, 1, 0, 1, 0.08),
            slc(0, 1, 1, 1, 0.09),
            slc(1, 1, 0, 1, 0.15),
            slc(1, 2, 0, 1, 0.05),
            slc(1, 2, 1, 1, 0.04),
        ];
        let hours = CabinetHours::new(&[meter(0, 0, 0.30)], &circuits);
        let measured = [LampTotals {
            lamp_id: "L5".into(),
            hours: 2,
            samples: 720,
            on_seconds: 5400.0,
            switches: 1,
            energy_kwh: 0.09,
        }];
        let mut settings = EnergySettings::default();
        let inputs = |settings: &EnergySettings| {
            SavingInputs {
                inventory: &inv,
                from: t0(),
                to: t0() + chrono::Duration::hours(2),
                spans: &spans,
                hours: &hours,
                circuits: &circuits,
                measured: &measured,
                settings,
            }
            .saving(&[0], ("city", "city"))
        };
        let (districts, city) = inputs(&settings);
        let d = &districts[0];
        assert_eq!(d.scope, "D01");
        close(d.actual.energy_kwh, 0.63);
        close(d.actual.meter_kwh.unwrap(), 0.30);
        close(d.actual.difference_kwh.unwrap(), 0.30 - 0.08);
        let b = &d.baseline;
        assert_eq!(b.source, Some(BaselineSource::Computed));
        close(b.kwh, 0.67);
        close(b.computed_kwh, 0.67);
        close(b.rated_kw, 0.63);
        close(b.scheduled_lamp_hours, 8.0);
        close(b.counted_lamp_hours, 4.0);
        close(b.measured_lamp_hours, 1.5);
        assert_eq!(
            (
                b.lamps,
                b.lamps_scheduled,
                b.lamps_measured,
                b.lamps_without_baseline
            ),
            (6, 4, 1, 1)
        );
        close(d.saving_rate.unwrap(), 0.04 / 0.67);
        close(d.saved_kwh, 0.04);
        assert_eq!(city.scope, "city");
        assert_eq!(city.saving_rate, d.saving_rate);
        // A measured 12 kWh a day before the retrofit: 1 kWh over two hours.
        settings.baseline_kwh_per_day.insert("D01".into(), 12.0);
        let (districts, city) = inputs(&settings);
        let b = &districts[0].baseline;
        assert_eq!(b.source, Some(BaselineSource::Settings));
        close(b.kwh, 1.0);
        close(b.computed_kwh, 0.67);
        assert_eq!(b.settings_kwh_per_day, Some(12.0));
        close(districts[0].saving_rate.unwrap(), 0.37);
        close(city.saving_rate.unwrap(), 0.37);
    }

    #[test]
    fn no_baseline_no_rate() {
        let inv = city();
        let hours = CabinetHours::default();
        let (districts, _) = SavingInputs {
            inventory: &inv,
            from: t0(),
            to: t0() + chrono::Duration::hours(1),
            spans: &[],
            hours: &hours,
            circuits: &[],
            measured: &[],
            settings: &EnergySettings {
                baseline_kwh_per_day: BTreeMap::new(),
            },
        }
        .saving(&[0], ("city", "city"));
        // No plan: the SLC lamps with a rated power (L1, L3, L5) are measured,
        // none was on, so 0 kWh of baseline; L2, L4 (no SLC) and L6 (no
        // rated power) have none.
        assert_eq!(districts[0].baseline.lamps_measured, 3);
        assert_eq!(districts[0].baseline.lamps_without_baseline, 3);
        assert_eq!(districts[0].saving_rate, None);
        assert_eq!(districts[0].actual.source, EnergySource::None);
    }

    #[test]
    fn maintenance_is_null_for_a_lamp_nothing_measures() {
        let inv = city();
        let totals = [LampTotals {
            lamp_id: "L1".into(),
            hours: 3,
            samples: 1000,
            on_seconds: 9000.0,
            switches: 4,
            energy_kwh: 0.25,
        }];
        let m = maintenance(&inv, &[0, 1, 2], &totals);
        assert_eq!(m[0].burning_hours, Some(2.5));
        assert_eq!(m[0].switches, Some(4));
        assert_eq!(m[0].hours_reported, 3);
        assert_eq!(m[0].district, "D01");
        assert_eq!(m[1].burning_hours, None);
        assert_eq!(m[1].switches, None);
        // An SLC without a rolled-up hour has reported nothing: zeros.
        assert_eq!(m[2].burning_hours, Some(0.0));
        assert_eq!(m[2].switches, Some(0));
    }
}
