//! PostgreSQL: the production store. Sample tables are partitioned by UTC day;
//! batches go in as one UNNEST insert per table (a fixed number of binds
//! whatever the row count, far below the 65,535 limit). What is only
//! PostgreSQL's: the pool, the daily partitions and their retention, the bulk
//! sample writes and the rollups.

use super::columns::{
    alarm_columns, evaluation_columns, keep_highest_version, lamp_sample_columns,
    rtu_sample_columns, transition_columns,
};
use super::StoreTime;
use crate::inventory::Inventory;
use crate::store::ingest::rows::Batch;
use crate::store::StoreError;
use chrono::{DateTime, Days, NaiveDate, Utc};
use parking_lot::Mutex;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Transaction};
use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub const PARTITIONED: [&str; 2] = ["lamp_samples", "rtu_samples"];

#[derive(Debug)]
pub struct Postgres {
    pub pool: PgPool,
    /// Days whose partitions are known to exist.
    days: Mutex<BTreeSet<NaiveDate>>,
}

impl Postgres {
    pub fn new(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts);
        Ok(Self {
            pool,
            days: Mutex::new(BTreeSet::new()),
        })
    }

    /// Creates the daily partitions of `days` that do not exist yet.
    pub async fn ensure_days(
        &self,
        days: impl IntoIterator<Item = NaiveDate>,
    ) -> Result<(), sqlx::Error> {
        let missing: Vec<NaiveDate> = {
            let known = self.days.lock();
            days.into_iter().filter(|d| !known.contains(d)).collect()
        };
        for day in missing {
            let next = day + Days::new(1);
            for table in PARTITIONED {
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {table}_p{} PARTITION OF {table} \
                     FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')",
                    day.format("%Y%m%d")
                );
                sqlx::query(&sql).execute(&self.pool).await?;
            }
            self.days.lock().insert(day);
        }
        Ok(())
    }

    /// Creates the partitions the batch's samples fall in.
    pub(super) async fn ensure_days_of(&self, batch: &Batch) -> Result<(), sqlx::Error> {
        let days: BTreeSet<NaiveDate> = batch
            .lamps
            .iter()
            .map(|r| r.time_us)
            .chain(batch.rtus.iter().map(|r| r.time_us))
            .map(|t| StoreTime::from_micros(t).0.date_naive())
            .collect();
        self.ensure_days(days).await
    }

    pub async fn upsert_lamps(
        &self,
        inv: &Inventory,
        lit_threshold_w: &[f64],
    ) -> Result<(), sqlx::Error> {
        let district: Vec<String> = inv
            .lamps
            .iter()
            .map(|l| {
                inv.cabinet(&l.cabinet)
                    .map(|c| c.district.clone())
                    .unwrap_or_default()
            })
            .collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO lamps (lamp_id, district, cabinet, circuit, slc_id, lit_threshold_w, \
             road) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int2[], $5::text[], \
             $6::float8[], $7::text[]) \
             ON CONFLICT (lamp_id) DO UPDATE SET district = excluded.district, \
             cabinet = excluded.cabinet, circuit = excluded.circuit, slc_id = excluded.slc_id, \
             lit_threshold_w = excluded.lit_threshold_w, road = excluded.road",
        )
        .bind(inv.lamps.iter().map(|l| l.id.as_str()).collect::<Vec<_>>())
        .bind(district)
        .bind(
            inv.lamps
                .iter()
                .map(|l| l.cabinet.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            inv.lamps
                .iter()
                .map(|l| i16::from(l.circuit))
                .collect::<Vec<_>>(),
        )
        .bind(
            inv.lamps
                .iter()
                .map(|l| l.slc.as_ref().map(|s| s.id.as_str()))
                .collect::<Vec<_>>(),
        )
        .bind(
            (0..inv.lamps.len())
                .map(|i| lit_threshold_w.get(i).copied().unwrap_or(0.0))
                .collect::<Vec<_>>(),
        )
        .bind(
            inv.lamps
                .iter()
                .map(|l| l.road.as_deref())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cabinets (cabinet_id, district, rtu_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) \
             ON CONFLICT (cabinet_id) DO UPDATE SET district = excluded.district, \
             rtu_id = excluded.rtu_id",
        )
        .bind(
            inv.cabinets
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            inv.cabinets
                .iter()
                .map(|c| c.district.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            inv.cabinets
                .iter()
                .map(|c| c.rtu.as_ref().map(|r| r.id.as_str()))
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Recomputes the hourly rollups of [from, to) (whole hours); see
    /// `sqlite::rollup` for what each column means and the counters' rule.
    pub async fn rollup(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        gap_s: f64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO lamp_hourly (hour, lamp_id, district, cabinet, circuit, samples, \
                                      on_seconds, online_seconds, energy_kwh, failures, \
                                      expected_seconds, lit_seconds, switches)
             SELECT date_trunc('hour', s.time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', s.lamp_id,
                    MAX(s.district), COALESCE(MAX(l.cabinet), ''), COALESCE(MAX(l.circuit), 0),
                    COUNT(*)::int, SUM(CASE WHEN s.is_on THEN s.dt ELSE 0 END), SUM(s.dt),
                    SUM(s.de), SUM(s.fail_start)::int,
                    SUM(CASE WHEN s.should_be_lit THEN s.dt ELSE 0 END),
                    SUM(CASE WHEN s.lit THEN s.dt ELSE 0 END), SUM(s.switched)::int
             FROM (
                 SELECT time, lamp_id, district, is_on, fault_flags, should_be_lit, lit,
                        LEAST(COALESCE(EXTRACT(EPOCH FROM (LEAD(time) OVER w - time))::float8, 0),
                              $3) AS dt,
                        CASE WHEN time - LAG(time) OVER w <= interval '1 hour'
                             THEN GREATEST(COALESCE(energy_kwh - LAG(energy_kwh) OVER w, 0), 0)
                             ELSE 0 END AS de,
                        CASE WHEN time - LAG(time) OVER w <= interval '1 hour'
                              AND is_on <> LAG(is_on) OVER w THEN 1 ELSE 0 END AS switched,
                        CASE WHEN (fault_flags & 1) = 1
                              AND COALESCE(LAG(fault_flags) OVER w & 1, 0) = 0 THEN 1 ELSE 0 END
                            AS fail_start
                 FROM lamp_samples
                 WHERE time >= $1 - interval '1 hour' AND time < $2 + make_interval(secs => $3)
                 WINDOW w AS (PARTITION BY lamp_id ORDER BY time)
             ) s LEFT JOIN lamps l ON l.lamp_id = s.lamp_id
             WHERE s.time >= $1 AND s.time < $2
             GROUP BY 1, 2
             ON CONFLICT (lamp_id, hour) DO UPDATE SET
                 district = excluded.district, cabinet = excluded.cabinet,
                 circuit = excluded.circuit, samples = excluded.samples,
                 on_seconds = excluded.on_seconds, online_seconds = excluded.online_seconds,
                 energy_kwh = excluded.energy_kwh, failures = excluded.failures,
                 expected_seconds = excluded.expected_seconds, lit_seconds = excluded.lit_seconds,
                 switches = excluded.switches",
        )
        .bind(from)
        .bind(to)
        .bind(gap_s)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO circuit_hourly (hour, cabinet, circuit, district, lamps, on_seconds, \
                                         online_seconds, energy_kwh, failures, \
                                         expected_seconds, lit_seconds)
             SELECT hour, cabinet, circuit, MAX(district), COUNT(*)::int, SUM(on_seconds),
                    SUM(online_seconds), SUM(energy_kwh), SUM(failures)::int,
                    SUM(expected_seconds), SUM(lit_seconds)
             FROM lamp_hourly WHERE hour >= $1 AND hour < $2
             GROUP BY hour, cabinet, circuit
             ON CONFLICT (cabinet, circuit, hour) DO UPDATE SET
                 district = excluded.district, lamps = excluded.lamps,
                 on_seconds = excluded.on_seconds, online_seconds = excluded.online_seconds,
                 energy_kwh = excluded.energy_kwh, failures = excluded.failures,
                 expected_seconds = excluded.expected_seconds, lit_seconds = excluded.lit_seconds",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO district_hourly (hour, district, lamps, expected_seconds, lit_seconds)
             SELECT hour, district, SUM(lamps)::int, SUM(expected_seconds), SUM(lit_seconds)
             FROM circuit_hourly WHERE hour >= $1 AND hour < $2
             GROUP BY hour, district
             ON CONFLICT (district, hour) DO UPDATE SET lamps = excluded.lamps,
                 expected_seconds = excluded.expected_seconds, lit_seconds = excluded.lit_seconds",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO cabinet_hourly (hour, cabinet, district, meter_kwh, samples)
             SELECT date_trunc('hour', r.time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                    c.cabinet_id, MAX(c.district), SUM(r.de), COUNT(*)::int
             FROM (
                 SELECT time, rtu_id,
                        CASE WHEN time - LAG(time) OVER w <= interval '1 hour'
                             THEN GREATEST(energy_kwh - LAG(energy_kwh) OVER w, 0)
                             ELSE 0 END AS de
                 FROM rtu_samples
                 WHERE time >= $1 - interval '1 hour' AND time < $2 AND energy_kwh IS NOT NULL
                 WINDOW w AS (PARTITION BY rtu_id ORDER BY time)
             ) r JOIN cabinets c ON c.rtu_id = r.rtu_id
             WHERE r.time >= $1 AND r.time < $2
             GROUP BY 1, 2
             ON CONFLICT (cabinet, hour) DO UPDATE SET district = excluded.district,
                 meter_kwh = excluded.meter_kwh, samples = excluded.samples",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM road_hourly WHERE hour >= $1 AND hour < $2")
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO road_hourly (hour, road, district, lamps, energy_kwh, on_seconds)
             SELECT h.hour, COALESCE(l.road, ''), h.district, COUNT(*)::int, SUM(h.energy_kwh),
                    SUM(h.on_seconds)
             FROM lamp_hourly h LEFT JOIN lamps l ON l.lamp_id = h.lamp_id
             WHERE h.hour >= $1 AND h.hour < $2
             GROUP BY h.hour, COALESCE(l.road, ''), h.district",
        )
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The days that have partitions, per partitioned table.
    pub async fn partition_days(&self, table: &str) -> Result<Vec<NaiveDate>, sqlx::Error> {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = $1",
        )
        .bind(table)
        .fetch_all(&self.pool)
        .await?;
        let prefix = format!("{table}_p");
        let mut days: Vec<NaiveDate> = names
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .filter_map(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
            .collect();
        days.sort();
        Ok(days)
    }

    /// Drops the daily partitions wholly before `cutoff`; returns how many.
    pub async fn retention(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let first_kept = cutoff.date_naive();
        let mut dropped = 0;
        for table in PARTITIONED {
            for day in self.partition_days(table).await? {
                if day < first_kept {
                    let sql = format!("DROP TABLE IF EXISTS {table}_p{}", day.format("%Y%m%d"));
                    sqlx::query(&sql).execute(&self.pool).await?;
                    self.days.lock().remove(&day);
                    dropped += 1;
                }
            }
        }
        Ok(dropped)
    }
}

/// Inserts `$rows` in `$tx` as one UNNEST of one array per column: a fixed
/// number of binds whatever the row count. Expanded by the column lists of
/// `columns.rs`. A replayed row hits the table's key and is skipped.
macro_rules! unnest_insert {
    (($tx:expr, $rows:expr) $table:literal, $row:ty,
     $($col:ident $pg:literal |$r:ident| $e:expr),+ $(,)?) => {{
        let rows: &[$row] = $rows;
        if !rows.is_empty() {
            let columns = [$(stringify!($col)),+].join(", ");
            let arrays: Vec<String> = [$($pg),+]
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
                .collect();
            let sql = format!(
                "INSERT INTO {} ({columns}) SELECT * FROM UNNEST({}) ON CONFLICT DO NOTHING",
                $table,
                arrays.join(", ")
            );
            sqlx::query(&sql)
                $(.bind(rows.iter().map(|$r| $e).collect::<Vec<_>>()))+
                .execute(&mut **$tx)
                .await?;
        }
    }};
}

/// Upserts `$rows` in `$tx` as one UNNEST keeping each key's highest
/// version (`columns::keep_highest_version`); the rows must have distinct
/// keys (one statement may not update a row twice).
macro_rules! unnest_upsert {
    (($tx:expr, $rows:expr) $table:literal, $row:ty,
     key($($key:ident),+) version($version:ident),
     $($col:ident $pg:literal |$r:ident| $e:expr),+ $(,)?) => {{
        let rows: &[$row] = $rows;
        if !rows.is_empty() {
            let names = [$(stringify!($col)),+];
            let arrays: Vec<String> = [$($pg),+]
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("${}::{ty}[]", i + 1))
                .collect();
            let sql = format!(
                "INSERT INTO {} ({}) SELECT * FROM UNNEST({}){}",
                $table,
                names.join(", "),
                arrays.join(", "),
                keep_highest_version(
                    $table,
                    &[$(stringify!($key)),+],
                    stringify!($version),
                    &names
                )
            );
            sqlx::query(&sql)
                $(.bind(rows.iter().map(|$r| $e).collect::<Vec<_>>()))+
                .execute(&mut **$tx)
                .await?;
        }
    }};
}

/// The batch's samples and transitions, one UNNEST insert per table, in `tx`
/// (after `Postgres::ensure_days_of`), and its alarms' latest versions and
/// evaluation totals' latest ticks as one upsert each.
pub(super) async fn write(
    tx: &mut Transaction<'_, sqlx::Postgres>,
    batch: &Batch,
) -> Result<(), sqlx::Error> {
    lamp_sample_columns!(unnest_insert!(tx, &batch.lamps));
    rtu_sample_columns!(unnest_insert!(tx, &batch.rtus));
    transition_columns!(unnest_insert!(tx, &batch.transitions));
    let alarms = batch.latest_alarms();
    alarm_columns!(unnest_upsert!(tx, &alarms));
    let evaluation = batch.latest_evaluation();
    evaluation_columns!(unnest_upsert!(tx, &evaluation));
    Ok(())
}

/// The URL with its database name replaced (the benchmarks' scratch databases).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(i) => &base[..authority_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
