//! The columns of the tables the writer fills in bulk, each listed once with
//! its PostgreSQL array type and how a row gives its value. The two dialects'
//! bulk writes (SQLite: multi-row VALUES; PostgreSQL: one UNNEST of arrays)
//! are generated from these lists, so a new column is one line here.
//!
//! Each macro takes the emitter to expand (`$emit!`, defined next to the
//! dialect) and its leading arguments, then hands it: the table, the row
//! type, and `column "pg type" |row| value` per column.

macro_rules! lamp_sample_columns {
    ($emit:ident!($($args:tt)*)) => {
        $emit!(($($args)*) "lamp_samples", $crate::store::ingest::rows::LampRow,
            time "timestamptz" |r| $crate::store::db::StoreTime::from_micros(r.time_us),
            lamp_id "text" |r| &*r.lamp_id,
            district "text" |r| &*r.district,
            is_on "bool" |r| r.on,
            dim_level "float8" |r| r.dim_level,
            voltage_v "float8" |r| r.voltage_v,
            current_a "float8" |r| r.current_a,
            power_w "float8" |r| r.power_w,
            power_factor "float8" |r| r.power_factor,
            energy_kwh "float8" |r| r.energy_kwh,
            burning_hours "float8" |r| r.burning_hours,
            fault_flags "int4" |r| r.fault_flags,
            commanded "bool" |r| r.commanded,
            should_be_lit "bool" |r| r.should_be_lit,
            lit "bool" |r| r.lit,
        )
    };
}

macro_rules! rtu_sample_columns {
    ($emit:ident!($($args:tt)*)) => {
        $emit!(($($args)*) "rtu_samples", $crate::store::ingest::rows::RtuRow,
            time "timestamptz" |r| $crate::store::db::StoreTime::from_micros(r.time_us),
            rtu_id "text" |r| &*r.rtu_id,
            district "text" |r| &*r.district,
            circuits "int2" |r| r.circuits,
            contactors "int4" |r| r.contactors,
            voltage_a_v "float8" |r| r.voltage_v[0],
            voltage_b_v "float8" |r| r.voltage_v[1],
            voltage_c_v "float8" |r| r.voltage_v[2],
            current_a_a "float8" |r| r.current_a[0],
            current_b_a "float8" |r| r.current_a[1],
            current_c_a "float8" |r| r.current_a[2],
            active_power_w "float8" |r| r.active_power_w,
            energy_kwh "float8" |r| r.energy_kwh,
            door_alarm "bool" |r| r.door_alarm,
            leakage_alarm "bool" |r| r.leakage_alarm,
        )
    };
}

macro_rules! transition_columns {
    ($emit:ident!($($args:tt)*)) => {
        $emit!(($($args)*) "transitions", $crate::store::ingest::rows::TransitionRow,
            time "timestamptz" |r| $crate::store::db::StoreTime::from_micros(r.time_us),
            device_kind "text" |r| r.device_kind.as_str(),
            device_id "text" |r| r.device_id.as_str(),
            district "text" |r| r.district.as_str(),
            online "bool" |r| r.online,
            reason "text" |r| r.reason.as_deref(),
            detail "text" |r| r.detail.as_deref(),
        )
    };
}

/// `alarms`: upserted rather than inserted (the emitters `multi_row_upsert!`
/// and `unnest_upsert!`), keyed by `id`, keeping the highest `version`.
macro_rules! alarm_columns {
    ($emit:ident!($($args:tt)*)) => {
        $emit!(($($args)*) "alarms", &$crate::alarm::Alarm, key(id) version(version),
            id "int8" |r| r.id,
            kind "text" |r| r.kind.as_str(),
            severity "text" |r| r.severity.as_str(),
            state "text" |r| r.state.as_str(),
            device_kind "text" |r| r.device_kind.as_str(),
            device_id "text" |r| r.device_id.as_str(),
            circuit "int2" |r| r.circuit.map(i16::from),
            cabinet "text" |r| r.cabinet.as_deref(),
            district "text" |r| r.district.as_str(),
            raised_at "timestamptz" |r| $crate::store::db::StoreTime(r.raised_at),
            acknowledged_at "timestamptz" |r| r.acknowledged_at.map($crate::store::db::StoreTime),
            acknowledged_by "text" |r| r.acknowledged_by.as_deref(),
            comment "text" |r| r.comment.as_deref(),
            cleared_at "timestamptz" |r| r.cleared_at.map($crate::store::db::StoreTime),
            closed_at "timestamptz" |r| r.closed_at.map($crate::store::db::StoreTime),
            occurrences "int8" |r| i64::from(r.occurrences),
            deadline "timestamptz" |r| $crate::store::db::StoreTime(r.deadline),
            overdue "bool" |r| r.overdue,
            detail "jsonb" |r| $crate::store::db::StoreJson(r.detail.to_string()),
            version "int8" |r| i64::from(r.version),
        )
    };
}

/// `evaluation_hourly`: the evaluation's running totals per hour, scope and
/// run, upserted keyed by (hour, district, road, run_id) keeping the
/// highest `seq` (the latest total: `ingest::rows::EvaluationRow`).
macro_rules! evaluation_columns {
    ($emit:ident!($($args:tt)*)) => {
        $emit!(($($args)*) "evaluation_hourly", &$crate::store::ingest::rows::EvaluationRow,
            key(hour, district, road, run_id) version(seq),
            hour "timestamptz" |r| $crate::store::db::StoreTime::from_micros(r.hour_us),
            district "text" |r| r.district.as_str(),
            road "text" |r| r.road.as_str(),
            run_id "text" |r| r.run_id.as_str(),
            seq "int8" |r| r.seq,
            sampled_ms "int8" |r| r.sampled_ms,
            expected_lit_ms "int8" |r| r.expected_lit_ms,
            lit_ms "int8" |r| r.lit_ms,
            dark_ms "int8" |r| r.dark_ms,
            unknown_ms "int8" |r| r.unknown_ms,
            estimated_ms "int8" |r| r.estimated_ms,
            over_cap_ms "int8" |r| r.over_cap_ms,
            over_cap_with_unknown_ms "int8" |r| r.over_cap_with_unknown_ms,
            dark_max "int8" |r| r.dark_max,
            dark_with_unknown_max "int8" |r| r.dark_with_unknown_max,
        )
    };
}

/// The `ON CONFLICT` clause of an upsert keyed by `key` that keeps the row
/// with the highest `version`: every other column from the newer row.
pub(super) fn keep_highest_version(
    table: &str,
    key: &[&str],
    version: &str,
    columns: &[&str],
) -> String {
    let set: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        " ON CONFLICT ({}) DO UPDATE SET {} WHERE {table}.{version} < excluded.{version}",
        key.join(", "),
        set.join(", ")
    )
}

pub(super) use {
    alarm_columns, evaluation_columns, lamp_sample_columns, rtu_sample_columns, transition_columns,
};
