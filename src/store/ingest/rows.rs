//! What the store writes: rows keyed by the inventory's string ids, built from
//! the state's applied batches. Times are whole microseconds since the Unix
//! epoch (UTC), the precision both databases keep, so a value read back equals
//! the one written and a replayed row has the same key as the first copy.
//!
//! Sample rows share their id and district text with the [`Naming`] they
//! were made from (`Arc<str>`): a row costs no allocation of its own, and
//! the rows waiting in memory hold no copies of the same few strings.
//!
//! Spool encoding: a sample row is written as a JSON array of its fields in
//! declared order (no field names: a third of the bytes to write and parse
//! on the state task); the derived `Deserialize` reads that array and also
//! the object form of spool lines written before, so an old spool replays
//! as it is. A field is only ever added at the end, with `#[serde(default)]`,
//! so an older, shorter array still reads.

use crate::alarm::Alarm;
use crate::control::{Action, Command};
use crate::inventory::Inventory;
use crate::state::{Applied, FailReason, Reading};
use crate::topology::DeviceKey;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LampRow {
    pub time_us: i64,
    #[serde(deserialize_with = "shared_text")]
    pub lamp_id: Arc<str>,
    #[serde(deserialize_with = "shared_text")]
    pub district: Arc<str>,
    pub on: bool,
    pub dim_level: f64,
    pub voltage_v: Option<f64>,
    pub current_a: Option<f64>,
    pub power_w: Option<f64>,
    pub power_factor: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub burning_hours: Option<f64>,
    pub fault_flags: i32,
    /// The switch state of the last confirmed command, `None` before one.
    #[serde(default)]
    pub commanded: Option<bool>,
    /// The lighting rule's verdict at this sample (`crate::lighting`).
    #[serde(default)]
    pub should_be_lit: bool,
    #[serde(default)]
    pub lit: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RtuRow {
    pub time_us: i64,
    #[serde(deserialize_with = "shared_text")]
    pub rtu_id: Arc<str>,
    #[serde(deserialize_with = "shared_text")]
    pub district: Arc<str>,
    pub circuits: i16,
    /// Bit n-1 set: the contactor of circuit n is closed.
    pub contactors: i32,
    pub voltage_v: [Option<f64>; 3],
    pub current_a: [Option<f64>; 3],
    pub active_power_w: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub door_alarm: bool,
    pub leakage_alarm: bool,
}

/// Serialises a row as the array of its fields, in declared order (the
/// spool encoding in the module doc; the derived `Deserialize` reads it).
macro_rules! serialize_as_array {
    ($row:ty, $($field:ident),+ $(,)?) => {
        impl Serialize for $row {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeTuple;
                let mut t = s.serialize_tuple([$(stringify!($field)),+].len())?;
                $(t.serialize_element(Plain::of(&self.$field))?;)+
                t.end()
            }
        }
    };
}

/// A field as it is spooled: an `Arc<str>` as its text (serde's own impl
/// for `Arc` needs its `rc` feature, which would rebuild every crate on
/// serde for two fields).
trait Plain {
    type Out: Serialize + ?Sized;
    fn of(&self) -> &Self::Out;
}

impl Plain for Arc<str> {
    type Out = str;
    fn of(&self) -> &str {
        self
    }
}

macro_rules! plain_as_is {
    ($($t:ty),+) => {$(
        impl Plain for $t {
            type Out = $t;
            fn of(&self) -> &$t {
                self
            }
        }
    )+};
}

plain_as_is!(
    i64,
    i32,
    i16,
    bool,
    f64,
    Option<f64>,
    Option<bool>,
    [Option<f64>; 3]
);

/// Reads a spooled id or district into its own `Arc<str>` (a replay; rows
/// made on the state task share [`Naming`]'s).
fn shared_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    let s: std::borrow::Cow<'de, str> = Deserialize::deserialize(d)?;
    Ok(Arc::from(s.as_ref()))
}

serialize_as_array!(
    LampRow,
    time_us,
    lamp_id,
    district,
    on,
    dim_level,
    voltage_v,
    current_a,
    power_w,
    power_factor,
    energy_kwh,
    burning_hours,
    fault_flags,
    commanded,
    should_be_lit,
    lit,
);

serialize_as_array!(
    RtuRow,
    time_us,
    rtu_id,
    district,
    circuits,
    contactors,
    voltage_v,
    current_a,
    active_power_w,
    energy_kwh,
    door_alarm,
    leakage_alarm,
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRow {
    pub time_us: i64,
    pub device_kind: String,
    pub device_id: String,
    pub district: String,
    pub online: bool,
    /// The failure kind that took the device offline.
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// The lamp-time of one scope — a road, or (`road` empty) a district's
/// lamps on no road — over one UTC hour as one gateway run has counted it
/// so far (`crate::figures::sampler`): a running total, written again at
/// every evaluation tick with a higher `seq`. The `evaluation_hourly` row of
/// (hour, district, road, run) keeps the highest `seq`, so a replay, or held
/// rows written ahead of older spooled ones, never take a total back; each
/// run has its own rows, so a restart adds to the hour rather than
/// replacing what the run before counted. Lamp-milliseconds, whole numbers,
/// so sums are exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationRow {
    /// Start of the UTC hour, µs.
    pub hour_us: i64,
    pub district: String,
    /// The road's id; `""` for the district's lamps without a road (every
    /// district has this row, so its `sampled_ms` is the district's).
    pub road: String,
    pub run_id: String,
    /// The run's tick that wrote this total; later ticks have higher ones.
    pub seq: i64,
    /// Milliseconds of the hour the run's verdicts stand for.
    pub sampled_ms: i64,
    /// Lamp-milliseconds per verdict group (`figures::evaluation`):
    /// expected lit (lit + dark + unknown), lit, dark, unknown, and of the
    /// lit and dark those estimated from the cabinet meter.
    pub expected_lit_ms: i64,
    pub lit_ms: i64,
    pub dark_ms: i64,
    pub unknown_ms: i64,
    pub estimated_ms: i64,
    /// Of a road (0 on the `""` row): milliseconds its dark lamps were over
    /// the cap for its size, counting the dark ones only, and counting the
    /// unknown ones dark too (`figures.unknown_counts_as` picks one when
    /// read); and the most dark lamps at one tick, each way. Absent in a
    /// spool written before they existed: 0.
    #[serde(default)]
    pub over_cap_ms: i64,
    #[serde(default)]
    pub over_cap_with_unknown_ms: i64,
    #[serde(default)]
    pub dark_max: i64,
    #[serde(default)]
    pub dark_with_unknown_max: i64,
}

/// One version of what the schedule's plan is built from
/// (`crate::schedule::history`): the book and control groups as JSON, with
/// when it took effect. Inserted only when its content differs from the
/// version in force at its time (backlog invariant 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleVersionRow {
    pub effective_us: i64,
    /// SHA-256 of `content`, hex.
    pub digest: String,
    pub content: String,
}

impl ScheduleVersionRow {
    pub fn new(v: &crate::schedule::history::ScheduleVersion) -> Self {
        Self {
            effective_us: micros(v.effective),
            digest: v.digest.clone(),
            content: v.content.clone(),
        }
    }
}

/// One completed command: a row of the audit trail of remote control,
/// carried through the backlog and spool like samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRow {
    pub command_id: String,
    pub created_us: i64,
    pub completed_us: i64,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub level: Option<f64>,
    pub kind: String,
    pub selector: String,
    pub expires_us: Option<i64>,
    pub targets: i32,
    pub confirmed: i32,
    pub failed: i32,
    pub districts: String,
    pub outcome: String,
}

impl CommandRow {
    pub fn new(c: &Command) -> Self {
        let (action, level) = match c.action {
            Action::On => ("on", None),
            Action::Off => ("off", None),
            Action::Dim { level } => ("dim", Some(level)),
        };
        let mut districts: Vec<&str> = c.targets.iter().map(|t| t.district.as_str()).collect();
        districts.sort_unstable();
        districts.dedup();
        let outcome: Vec<Value> = c
            .targets
            .iter()
            .map(|t| serde_json::json!({"id": t.id, "state": t.state, "reason": t.reason, "attempts": t.attempts}))
            .collect();
        let tally = c.tally();
        let text = |v: &dyn erased::Json| v.json();
        CommandRow {
            command_id: c.id.clone(),
            created_us: micros(c.created_at),
            completed_us: micros(c.completed_at.unwrap_or(c.created_at)),
            actor: c.actor.clone(),
            source: text(&c.source),
            action: action.into(),
            level,
            kind: c.kind.into(),
            selector: c.selector.to_string(),
            expires_us: c.expires_at.map(micros),
            targets: c.targets.len() as i32,
            confirmed: tally.confirmed as i32,
            failed: tally.failed as i32,
            districts: serde_json::to_string(&districts).unwrap_or_else(|_| "[]".into()),
            outcome: Value::Array(outcome).to_string(),
        }
    }
}

mod erased {
    /// A serialisable value as its bare JSON text (`"api"`, not `"\"api\""`).
    pub(super) trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::String(s)) => s,
                Ok(v) => v.to_string(),
                Err(_) => String::new(),
            }
        }
    }
}

/// One unit of the backlog and of the spool: what one applied poll outcome
/// brought, ready to write.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lamps: Vec<LampRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtus: Vec<RtuRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<TransitionRow>,
    /// Completed commands (the audit trail).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<CommandRow>,
    /// Alarm changes: the whole record after each (`alarm::AlarmChange::alarm`),
    /// kept by id at the highest version. Absent from spool lines written
    /// before alarms were stored, which read as none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<Alarm>,
    /// The evaluation's running hourly totals ([`EvaluationRow`]); absent
    /// from spool lines written before they were stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluation: Vec<EvaluationRow>,
    /// Versions of the schedule ([`ScheduleVersionRow`]); absent from spool
    /// lines written before they were stored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule_versions: Vec<ScheduleVersionRow>,
}

impl Batch {
    pub fn rows(&self) -> usize {
        self.lamps.len()
            + self.rtus.len()
            + self.transitions.len()
            + self.commands.len()
            + self.alarms.len()
            + self.evaluation.len()
            + self.schedule_versions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows() == 0
    }

    pub fn append(&mut self, other: &Batch) {
        self.lamps.extend_from_slice(&other.lamps);
        self.rtus.extend_from_slice(&other.rtus);
        self.commands.extend_from_slice(&other.commands);
        self.transitions.extend_from_slice(&other.transitions);
        self.alarms.extend_from_slice(&other.alarms);
        self.evaluation.extend_from_slice(&other.evaluation);
        self.schedule_versions
            .extend_from_slice(&other.schedule_versions);
    }

    /// Moves `other`'s rows behind these (no copy when this one is empty).
    pub fn absorb(&mut self, other: Batch) {
        if self.is_empty() {
            *self = other;
            return;
        }
        self.lamps.extend(other.lamps);
        self.rtus.extend(other.rtus);
        self.transitions.extend(other.transitions);
        self.commands.extend(other.commands);
        self.alarms.extend(other.alarms);
        self.evaluation.extend(other.evaluation);
        self.schedule_versions.extend(other.schedule_versions);
    }

    /// The alarms to write: the highest version of each id, in id order (one
    /// upsert must not touch a row twice, which PostgreSQL refuses).
    pub fn latest_alarms(&self) -> Vec<&Alarm> {
        let mut latest: std::collections::BTreeMap<i64, &Alarm> = std::collections::BTreeMap::new();
        for a in &self.alarms {
            let e = latest.entry(a.id).or_insert(a);
            if a.version > e.version {
                *e = a;
            }
        }
        latest.into_values().collect()
    }

    /// The evaluation totals to write: the highest `seq` of each (hour,
    /// district, road, run), in key order (one upsert must not touch a row
    /// twice, which PostgreSQL refuses).
    pub fn latest_evaluation(&self) -> Vec<&EvaluationRow> {
        type Key<'a> = (i64, &'a str, &'a str, &'a str);
        let mut latest: std::collections::BTreeMap<Key<'_>, &EvaluationRow> =
            std::collections::BTreeMap::new();
        for r in &self.evaluation {
            let key = (
                r.hour_us,
                r.district.as_str(),
                r.road.as_str(),
                r.run_id.as_str(),
            );
            let e = latest.entry(key).or_insert(r);
            if r.seq > e.seq {
                *e = r;
            }
        }
        latest.into_values().collect()
    }

    /// The schedule versions to write, in the order they took effect (each
    /// is compared with the one in force before it, which may be in the
    /// same chunk).
    pub fn versions_in_order(&self) -> Vec<&ScheduleVersionRow> {
        let mut v: Vec<&ScheduleVersionRow> = self.schedule_versions.iter().collect();
        v.sort_by_key(|r| r.effective_us);
        v
    }

    /// The earliest sample or transition time in the batch, if any (what
    /// the rollups depend on; alarms, commands and evaluation totals are
    /// not rolled up).
    pub fn min_time_us(&self) -> Option<i64> {
        let l = self.lamps.iter().map(|r| r.time_us);
        let r = self.rtus.iter().map(|r| r.time_us);
        let t = self.transitions.iter().map(|r| r.time_us);
        l.chain(r).chain(t).min()
    }
}

/// A time as the rows carry it: whole microseconds since the epoch.
pub fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn detail(reason: &FailReason) -> Option<String> {
    match reason {
        FailReason::Connect { detail }
        | FailReason::Transport { detail }
        | FailReason::Protocol { detail } => Some(detail.clone()),
        FailReason::Exception { code } => Some(format!("exception {code:#04x}")),
        FailReason::Timeout
        | FailReason::NodeSilent
        | FailReason::Backoff
        | FailReason::Deferred
        | FailReason::DtuAbsent => None,
    }
}

/// Ids and districts by device position, looked up once so that turning a
/// batch into rows costs a reference count per id rather than a map lookup
/// or an allocation. Each district's text is one `Arc` shared by all its
/// devices.
pub struct Naming {
    lamp_ids: Vec<Arc<str>>,
    lamp_districts: Vec<Arc<str>>,
    rtu_ids: Vec<Arc<str>>,
    rtu_districts: Vec<Arc<str>>,
}

impl Naming {
    pub fn new(inv: &Inventory) -> Self {
        fn intern<'a>(
            seen: &mut std::collections::HashMap<&'a str, Arc<str>>,
            d: &'a str,
        ) -> Arc<str> {
            seen.entry(d).or_insert_with(|| Arc::from(d)).clone()
        }
        let mut seen = std::collections::HashMap::new();
        let cabinet_districts: Vec<Arc<str>> = inv
            .cabinets
            .iter()
            .map(|c| intern(&mut seen, &c.district))
            .collect();
        let lamp_districts = inv
            .lamps
            .iter()
            .map(|l| {
                inv.cabinet_position(&l.cabinet)
                    .map_or_else(|| intern(&mut seen, ""), |i| cabinet_districts[i].clone())
            })
            .collect();
        Self {
            lamp_ids: inv.lamps.iter().map(|l| Arc::from(l.id.as_str())).collect(),
            lamp_districts,
            rtu_ids: inv
                .cabinets
                .iter()
                .map(|c| Arc::from(c.rtu.as_ref().map_or("", |r| r.id.as_str())))
                .collect(),
            rtu_districts: cabinet_districts,
        }
    }

    pub fn batch(&self, applied: &Arc<Applied>) -> Batch {
        let time_us = micros(applied.at);
        let mut batch = Batch::default();
        for sample in &applied.samples {
            match (&sample.key, &sample.reading) {
                (DeviceKey::Lamp(i), Reading::Slc(s)) => batch.lamps.push(LampRow {
                    time_us,
                    lamp_id: self.lamp_ids[*i as usize].clone(),
                    district: self.lamp_districts[*i as usize].clone(),
                    on: s.on,
                    dim_level: s.dim_level,
                    voltage_v: s.voltage,
                    current_a: s.current,
                    power_w: s.power,
                    power_factor: s.power_factor,
                    energy_kwh: s.energy_kwh,
                    burning_hours: s.burning_hours,
                    fault_flags: i32::from(s.fault_flags),
                    commanded: sample.lamp.and_then(|v| v.commanded),
                    should_be_lit: sample.lamp.is_some_and(|v| v.lighting.expected),
                    lit: sample.lamp.is_some_and(|v| v.lighting.lit),
                }),
                (DeviceKey::Rtu(i), Reading::Rtu(r)) => batch.rtus.push(RtuRow {
                    time_us,
                    rtu_id: self.rtu_ids[*i as usize].clone(),
                    district: self.rtu_districts[*i as usize].clone(),
                    circuits: r.contactors.len() as i16,
                    contactors: r
                        .contactors
                        .iter()
                        .enumerate()
                        .fold(0, |acc, (n, &closed)| acc | (i32::from(closed) << n)),
                    voltage_v: r.voltage,
                    current_a: r.current,
                    active_power_w: r.active_power,
                    energy_kwh: r.energy_kwh,
                    door_alarm: r.door_alarm,
                    leakage_alarm: r.leakage_alarm,
                }),
                // The state already counted a kind mismatch as a failure.
                _ => {}
            }
        }
        for t in &applied.transitions {
            let (device_kind, device_id) = t.controller();
            batch.transitions.push(TransitionRow {
                time_us: micros(t.at),
                device_kind: device_kind.to_string(),
                device_id: device_id.to_string(),
                district: t.district.clone(),
                online: t.online,
                reason: t.reason.as_ref().map(|r| r.kind().to_string()),
                detail: t.reason.as_ref().and_then(detail),
            });
        }
        batch
    }
}

/// Counts only: the lists hold every lamp of the city.
impl std::fmt::Debug for Naming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Naming")
            .field("lamps", &self.lamp_ids.len())
            .field("rtus", &self.rtu_ids.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(hour_us: i64, road: &str, run: &str, seq: i64, lit_ms: i64) -> EvaluationRow {
        EvaluationRow {
            hour_us,
            district: "D1".into(),
            road: road.into(),
            run_id: run.into(),
            seq,
            sampled_ms: seq * 1000,
            expected_lit_ms: lit_ms,
            lit_ms,
            dark_ms: 0,
            unknown_ms: 0,
            estimated_ms: 0,
            over_cap_ms: 0,
            over_cap_with_unknown_ms: 0,
            dark_max: 0,
            dark_with_unknown_max: 0,
        }
    }

    #[test]
    fn a_chunk_writes_each_evaluation_key_once_at_its_latest_tick() {
        // Three ticks of road A in run r1 absorbed into one chunk, the
        // newest first (held rows ahead of spooled ones); run r2's and the
        // next hour's rows are keys of their own.
        let mut chunk = Batch::default();
        for rows in [
            vec![total(0, "A", "r1", 3, 30)],
            vec![total(0, "A", "r1", 1, 10), total(0, "A", "r2", 1, 5)],
            vec![
                total(0, "A", "r1", 2, 20),
                total(3_600_000_000, "A", "r1", 3, 7),
            ],
        ] {
            chunk.absorb(Batch {
                evaluation: rows,
                ..Batch::default()
            });
        }
        assert_eq!(chunk.rows(), 5);
        let latest: Vec<(i64, &str, i64, i64)> = chunk
            .latest_evaluation()
            .iter()
            .map(|r| (r.hour_us, r.run_id.as_str(), r.seq, r.lit_ms))
            .collect();
        assert_eq!(
            latest,
            [
                (0, "r1", 3, 30),
                (0, "r2", 1, 5),
                (3_600_000_000, "r1", 3, 7)
            ]
        );
        // Not rolled up: no sample time.
        assert_eq!(chunk.min_time_us(), None);
    }

    /// A spool line as this version writes it: sample rows as arrays of
    /// their fields.
    fn lamp(on: bool) -> LampRow {
        LampRow {
            time_us: 1_764_770_000_123_456,
            lamp_id: "LX-0001-001".into(),
            district: "D01".into(),
            on,
            dim_level: 100.0,
            voltage_v: Some(230.5),
            current_a: None,
            power_w: Some(98.25),
            power_factor: Some(0.95),
            energy_kwh: Some(1234.567),
            burning_hours: None,
            fault_flags: 9,
            commanded: Some(true),
            should_be_lit: true,
            lit: on,
        }
    }

    fn rtu() -> RtuRow {
        RtuRow {
            time_us: 1_764_770_000_123_456,
            rtu_id: "RTU-0001".into(),
            district: "D01".into(),
            circuits: 4,
            contactors: 0b1011,
            voltage_v: [Some(231.0), None, Some(229.5)],
            current_a: [Some(1.5), Some(0.0), None],
            active_power_w: Some(812.0),
            energy_kwh: None,
            door_alarm: true,
            leakage_alarm: false,
        }
    }

    #[test]
    fn sample_rows_are_spooled_as_arrays_and_read_back_equal() {
        let b = Batch {
            lamps: vec![lamp(true), lamp(false)],
            rtus: vec![rtu()],
            ..Batch::default()
        };
        let line = serde_json::to_string(&b).unwrap();
        assert_eq!(
            line,
            r#"{"lamps":[[1764770000123456,"LX-0001-001","D01",true,100.0,230.5,null,98.25,0.95,1234.567,null,9,true,true,true],[1764770000123456,"LX-0001-001","D01",false,100.0,230.5,null,98.25,0.95,1234.567,null,9,true,true,false]],"rtus":[[1764770000123456,"RTU-0001","D01",4,11,[231.0,null,229.5],[1.5,0.0,null],812.0,null,true,false]]}"#
        );
        assert_eq!(serde_json::from_str::<Batch>(&line).unwrap(), b);
    }

    /// Spool lines written before the array encoding (rows as objects, by
    /// field name; older still without the lighting fields) read as the
    /// same rows: an old spool replays.
    #[test]
    fn a_spool_line_of_the_object_encoding_reads_as_the_same_rows() {
        let old = r#"{"lamps":[{"time_us":1764770000123456,"lamp_id":"LX-0001-001","district":"D01","on":true,"dim_level":100.0,"voltage_v":230.5,"current_a":null,"power_w":98.25,"power_factor":0.95,"energy_kwh":1234.567,"burning_hours":null,"fault_flags":9,"commanded":true,"should_be_lit":true,"lit":true}],"rtus":[{"time_us":1764770000123456,"rtu_id":"RTU-0001","district":"D01","circuits":4,"contactors":11,"voltage_v":[231.0,null,229.5],"current_a":[1.5,0.0,null],"active_power_w":812.0,"energy_kwh":null,"door_alarm":true,"leakage_alarm":false}]}"#;
        let b: Batch = serde_json::from_str(old).unwrap();
        assert_eq!(b.lamps, [lamp(true)]);
        assert_eq!(b.rtus, [rtu()]);
        let older = r#"{"lamps":[{"time_us":1,"lamp_id":"L","district":"D","on":false,"dim_level":0.0,"voltage_v":null,"current_a":null,"power_w":null,"power_factor":null,"energy_kwh":null,"burning_hours":null,"fault_flags":0}]}"#;
        let b: Batch = serde_json::from_str(older).unwrap();
        assert_eq!(b.lamps[0].commanded, None);
        assert!(!b.lamps[0].should_be_lit && !b.lamps[0].lit);
    }

    /// Rows made from one naming share its texts: no allocation per row.
    #[test]
    fn rows_share_the_namings_texts() {
        let n = Naming {
            lamp_ids: vec!["L1".into()],
            lamp_districts: vec!["D01".into()],
            rtu_ids: vec![],
            rtu_districts: vec![],
        };
        let row = |at| {
            n.batch(&Arc::new(Applied {
                endpoint: 0,
                class: crate::topology::PollClass::Slc,
                at,
                samples: vec![crate::state::Sample {
                    key: DeviceKey::Lamp(0),
                    reading: Reading::Slc(crate::state::SlcReading {
                        on: true,
                        dim_level: 100.0,
                        voltage: None,
                        current: None,
                        power: None,
                        power_factor: None,
                        energy_kwh: None,
                        burning_hours: None,
                        fault_flags: 0,
                    }),
                    lamp: None,
                }],
                transitions: vec![],
            }))
            .lamps
            .remove(0)
        };
        let (a, b) = (row(Utc::now()), row(Utc::now()));
        assert!(Arc::ptr_eq(&a.lamp_id, &n.lamp_ids[0]));
        assert!(Arc::ptr_eq(&a.district, &b.district));
    }

    #[test]
    fn a_spool_line_carries_the_totals_and_an_older_line_reads_without_them() {
        let b = Batch {
            evaluation: vec![total(0, "", "r1", 1, 10)],
            ..Batch::default()
        };
        let line = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Batch>(&line).unwrap(), b);
        let old: Batch = serde_json::from_str(r#"{"lamps":[]}"#).unwrap();
        assert!(old.evaluation.is_empty());
    }

    /// A schedule version rides a spool line whole, and an older line (from
    /// before versions were stored) reads as none; a chunk writes its
    /// versions in the order they took effect.
    #[test]
    fn a_spool_line_carries_schedule_versions_in_time_order() {
        let v = |us: i64, d: &str| ScheduleVersionRow {
            effective_us: us,
            digest: d.into(),
            content: format!("{{\"book\":{{}},\"groups\":{{\"{d}\":[]}}}}"),
        };
        let b = Batch {
            schedule_versions: vec![v(20, "b"), v(10, "a")],
            ..Batch::default()
        };
        let line = serde_json::to_string(&b).unwrap();
        assert_eq!(serde_json::from_str::<Batch>(&line).unwrap(), b);
        assert_eq!(b.rows(), 2);
        let order: Vec<&str> = b
            .versions_in_order()
            .iter()
            .map(|r| r.digest.as_str())
            .collect();
        assert_eq!(order, ["a", "b"]);
        let old: Batch = serde_json::from_str(r#"{"lamps":[]}"#).unwrap();
        assert!(old.schedule_versions.is_empty());
    }
}
