//! SQLite: the embedded default. One file in WAL mode; batches are written as
//! multi-row inserts inside one transaction. What is only SQLite's: the pool,
//! the bulk sample writes, the rollups and retention by row.

use super::columns::{
    alarm_columns, evaluation_columns, keep_highest_version, lamp_sample_columns,
    rtu_sample_columns, transition_columns,
};
use super::StoreTime;
use crate::inventory::Inventory;
use crate::store::ingest::rows::Batch;
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqlitePool, Transaction};
use std::path::Path;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Rows per INSERT: SQLite takes at most 32,766 bound values per statement.
const ROWS_PER_INSERT: usize = 1000;

/// The pool; `durable` (`store.fsync`) makes every commit reach the device.
pub fn pool(path: &Path, max_connections: u32, durable: bool) -> SqlitePool {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // WAL with NORMAL survives a process kill; a power cut can take the
        // last commits, whose spool records may be consumed already — hence
        // FULL with `store.fsync`, which syncs the spool too.
        .synchronous(if durable {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // A connection whose ROLLBACK failed (SQLite had already ended the
        // transaction, on a full disk) still counts as inside one: its next
        // BEGIN would be a savepoint and its commit would commit nothing.
        // Closed instead of reused.
        .after_release(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
        .connect_lazy_with(opts)
}

/// Inserts `$rows` in `$tx` as multi-row VALUES, `ROWS_PER_INSERT` rows per
/// statement; expanded by the column lists of `columns.rs`. A replayed row
/// hits the table's key and is skipped.
macro_rules! multi_row_insert {
    (($tx:expr, $rows:expr) $table:literal, $row:ty,
     $($col:ident $pg:literal |$r:ident| $e:expr),+ $(,)?) => {{
        let rows: &[$row] = $rows;
        let columns = [$(stringify!($col)),+].join(", ");
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO {} ({columns}) ", $table));
            q.push_values(chunk, |mut b, row| {
                $(
                    let $r = row;
                    b.push_bind($e);
                )+
            });
            q.push(" ON CONFLICT DO NOTHING");
            q.build().execute(&mut **$tx).await?;
        }
    }};
}

/// Upserts `$rows` in `$tx` as multi-row VALUES keeping each key's highest
/// version (`columns::keep_highest_version`); the rows must have distinct
/// keys.
macro_rules! multi_row_upsert {
    (($tx:expr, $rows:expr) $table:literal, $row:ty,
     key($($key:ident),+) version($version:ident),
     $($col:ident $pg:literal |$r:ident| $e:expr),+ $(,)?) => {{
        let rows: &[$row] = $rows;
        let names = [$(stringify!($col)),+];
        let columns = names.join(", ");
        let conflict = keep_highest_version(
            $table,
            &[$(stringify!($key)),+],
            stringify!($version),
            &names,
        );
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = QueryBuilder::<Sqlite>::new(format!("INSERT INTO {} ({columns}) ", $table));
            q.push_values(chunk, |mut b, row| {
                $(
                    let $r = row;
                    b.push_bind($e);
                )+
            });
            q.push(&conflict);
            q.build().execute(&mut **$tx).await?;
        }
    }};
}

/// The batch's samples and transitions, as multi-row inserts in `tx`, and
/// its alarms' latest versions and evaluation totals' latest ticks as
/// upserts.
pub(super) async fn write(
    tx: &mut Transaction<'_, Sqlite>,
    batch: &Batch,
) -> Result<(), sqlx::Error> {
    lamp_sample_columns!(multi_row_insert!(tx, &batch.lamps));
    rtu_sample_columns!(multi_row_insert!(tx, &batch.rtus));
    transition_columns!(multi_row_insert!(tx, &batch.transitions));
    let alarms = batch.latest_alarms();
    alarm_columns!(multi_row_upsert!(tx, &alarms));
    let evaluation = batch.latest_evaluation();
    evaluation_columns!(multi_row_upsert!(tx, &evaluation));
    Ok(())
}

/// Writes the inventory's lamps (district, cabinet, circuit, SLC, road, lit
/// threshold) and cabinets (district, RTU): what the rollups take them from.
pub async fn upsert_lamps(
    pool: &SqlitePool,
    inv: &Inventory,
    lit_threshold_w: &[f64],
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for (n, lamps) in inv.lamps.chunks(ROWS_PER_INSERT).enumerate() {
        let first = n * ROWS_PER_INSERT;
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO lamps (lamp_id, district, cabinet, circuit, slc_id, lit_threshold_w, \
             road) ",
        );
        q.push_values(lamps.iter().enumerate(), |mut b, (i, l)| {
            let district = inv
                .cabinet(&l.cabinet)
                .map(|c| c.district.clone())
                .unwrap_or_default();
            b.push_bind(&l.id)
                .push_bind(district)
                .push_bind(&l.cabinet)
                .push_bind(i64::from(l.circuit))
                .push_bind(l.slc.as_ref().map(|s| s.id.clone()))
                .push_bind(lit_threshold_w.get(first + i).copied().unwrap_or(0.0))
                .push_bind(&l.road);
        });
        q.push(
            " ON CONFLICT (lamp_id) DO UPDATE SET district = excluded.district, \
             cabinet = excluded.cabinet, circuit = excluded.circuit, slc_id = excluded.slc_id, \
             lit_threshold_w = excluded.lit_threshold_w, road = excluded.road",
        );
        q.build().execute(&mut *tx).await?;
    }
    for cabinets in inv.cabinets.chunks(ROWS_PER_INSERT) {
        let mut q =
            QueryBuilder::<Sqlite>::new("INSERT INTO cabinets (cabinet_id, district, rtu_id) ");
        q.push_values(cabinets, |mut b, c| {
            b.push_bind(&c.id)
                .push_bind(&c.district)
                .push_bind(c.rtu.as_ref().map(|r| r.id.clone()));
        });
        q.push(
            " ON CONFLICT (cabinet_id) DO UPDATE SET district = excluded.district, \
             rtu_id = excluded.rtu_id",
        );
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Recomputes the hourly rollups of the hours in [from, to) (whole hours).
/// `gap_s` caps the time a sample stands for, so a gap in polling is not
/// counted as online. `expected_seconds` and `lit_seconds` add up the sample
/// time whose stored verdict (`should_be_lit`, `lit`: the lighting rule of
/// `crate::lighting`, taken by the live state) says so; no rule lives here.
///
/// Counters (`energy_kwh` of an SLC and of an RTU's meter) count the
/// positive delta of each reading over the one before it, when that one is
/// at most an hour older (the look-back every pass reads): a reset counts 0,
/// and so does a reading after a longer silence, whatever hour a pass
/// starts at, so recomputing an hour always gives the same. `switches`
/// counts changes of `is_on` between samples by the same rule. The figures
/// built on these columns are in `crate::figures::energy`.
pub async fn rollup(
    pool: &SqlitePool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    gap_s: f64,
) -> Result<(), StoreError> {
    // The hour arithmetic below works on the stored microseconds.
    let (from, to) = (StoreTime(from), StoreTime(to));
    const HOUR: i64 = 3_600_000_000;
    let gap_us = (gap_s * 1e6) as i64;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO lamp_hourly (hour, lamp_id, district, cabinet, circuit, samples, on_seconds, \
                                  online_seconds, energy_kwh, failures, expected_seconds, \
                                  lit_seconds, switches)
         SELECT (s.time / ?1) * ?1, s.lamp_id, MAX(s.district), COALESCE(MAX(l.cabinet), ''),
                COALESCE(MAX(l.circuit), 0), COUNT(*),
                SUM(CASE WHEN s.is_on THEN s.dt ELSE 0 END), SUM(s.dt), SUM(s.de), SUM(s.fail_start),
                SUM(CASE WHEN s.should_be_lit THEN s.dt ELSE 0 END),
                SUM(CASE WHEN s.lit THEN s.dt ELSE 0 END), SUM(s.switched)
         FROM (
             SELECT time, lamp_id, district, is_on, fault_flags, should_be_lit, lit,
                    MIN(COALESCE(LEAD(time) OVER w - time, 0), ?4) / 1e6 AS dt,
                    CASE WHEN time - LAG(time) OVER w <= ?1
                         THEN MAX(COALESCE(energy_kwh - LAG(energy_kwh) OVER w, 0), 0)
                         ELSE 0 END AS de,
                    CASE WHEN time - LAG(time) OVER w <= ?1 AND is_on <> LAG(is_on) OVER w
                         THEN 1 ELSE 0 END AS switched,
                    CASE WHEN (fault_flags & 1) = 1
                          AND COALESCE(LAG(fault_flags) OVER w & 1, 0) = 0 THEN 1 ELSE 0 END
                        AS fail_start
             FROM lamp_samples
             WHERE time >= ?2 - ?1 AND time < ?3 + ?4
             WINDOW w AS (PARTITION BY lamp_id ORDER BY time)
         ) s LEFT JOIN lamps l ON l.lamp_id = s.lamp_id
         WHERE s.time >= ?2 AND s.time < ?3
         GROUP BY 1, 2
         ON CONFLICT (lamp_id, hour) DO UPDATE SET
             district = excluded.district, cabinet = excluded.cabinet,
             circuit = excluded.circuit, samples = excluded.samples,
             on_seconds = excluded.on_seconds, online_seconds = excluded.online_seconds,
             energy_kwh = excluded.energy_kwh, failures = excluded.failures,
             expected_seconds = excluded.expected_seconds, lit_seconds = excluded.lit_seconds,
             switches = excluded.switches",
    )
    .bind(HOUR)
    .bind(from)
    .bind(to)
    .bind(gap_us)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO circuit_hourly (hour, cabinet, circuit, district, lamps, on_seconds, \
                                     online_seconds, energy_kwh, failures, expected_seconds, \
                                     lit_seconds)
         SELECT hour, cabinet, circuit, MAX(district), COUNT(*), SUM(on_seconds),
                SUM(online_seconds), SUM(energy_kwh), SUM(failures), SUM(expected_seconds),
                SUM(lit_seconds)
         FROM lamp_hourly WHERE hour >= ?1 AND hour < ?2
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
         SELECT hour, district, SUM(lamps), SUM(expected_seconds), SUM(lit_seconds)
         FROM circuit_hourly WHERE hour >= ?1 AND hour < ?2
         GROUP BY hour, district
         ON CONFLICT (district, hour) DO UPDATE SET lamps = excluded.lamps,
             expected_seconds = excluded.expected_seconds, lit_seconds = excluded.lit_seconds",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    // Meter readings only (a sample without one is no reading); an RTU
    // that is in no cabinet of the inventory bills nothing.
    sqlx::query(
        "INSERT INTO cabinet_hourly (hour, cabinet, district, meter_kwh, samples)
         SELECT (r.time / ?1) * ?1, c.cabinet_id, MAX(c.district), SUM(r.de), COUNT(*)
         FROM (
             SELECT time, rtu_id,
                    CASE WHEN time - LAG(time) OVER w <= ?1
                         THEN MAX(energy_kwh - LAG(energy_kwh) OVER w, 0)
                         ELSE 0 END AS de
             FROM rtu_samples
             WHERE time >= ?2 - ?1 AND time < ?3 AND energy_kwh IS NOT NULL
             WINDOW w AS (PARTITION BY rtu_id ORDER BY time)
         ) r JOIN cabinets c ON c.rtu_id = r.rtu_id
         WHERE r.time >= ?2 AND r.time < ?3
         GROUP BY 1, 2
         ON CONFLICT (cabinet, hour) DO UPDATE SET district = excluded.district,
             meter_kwh = excluded.meter_kwh, samples = excluded.samples",
    )
    .bind(HOUR)
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    // From lamp_hourly, which retention keeps: the hours are rebuilt whole,
    // so a lamp moved to another road leaves nothing behind on the old one.
    sqlx::query("DELETE FROM road_hourly WHERE hour >= ?1 AND hour < ?2")
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO road_hourly (hour, road, district, lamps, energy_kwh, on_seconds)
         SELECT h.hour, COALESCE(l.road, ''), h.district, COUNT(*), SUM(h.energy_kwh),
                SUM(h.on_seconds)
         FROM lamp_hourly h LEFT JOIN lamps l ON l.lamp_id = h.lamp_id
         WHERE h.hour >= ?1 AND h.hour < ?2
         GROUP BY h.hour, COALESCE(l.road, ''), h.district",
    )
    .bind(from)
    .bind(to)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes raw samples before `cutoff`; returns the rows deleted.
pub async fn retention(pool: &SqlitePool, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    let cutoff = StoreTime(cutoff);
    let mut n = 0;
    for table in ["lamp_samples", "rtu_samples"] {
        n += sqlx::query(&format!("DELETE FROM {table} WHERE time < ?1"))
            .bind(cutoff)
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok(n)
}
