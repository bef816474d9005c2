//! The database behind the store, SQLite or PostgreSQL, with one method per
//! thing the store does so that callers do not care which.

use super::config::Backend;
use super::history::{HourPoint, LampPoint, RtuPoint};
use super::postgres::{self, Postgres};
use super::rows::{from_micros, micros, Batch};
use super::sqlite;
use super::StoreError;
use crate::inventory::Inventory;
use chrono::{DateTime, Utc};
use sqlx::{Row, SqlitePool};

pub enum Db {
    Sqlite(SqlitePool),
    Postgres(Postgres),
}

impl Db {
    /// A pool that connects on first use, so a database that is away at start
    /// does not stop the gateway from polling.
    pub fn connect_lazy(backend: &Backend, max_connections: u32) -> Result<Option<Db>, StoreError> {
        Ok(match backend {
            Backend::Disabled => None,
            Backend::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                Some(Db::Sqlite(sqlite::pool(path, max_connections)))
            }
            Backend::Postgres(url) => Some(Db::Postgres(Postgres::new(url, max_connections)?)),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(p) => sqlite::MIGRATOR.run(p).await?,
            Db::Postgres(pg) => postgres::MIGRATOR.run(&pg.pool).await?,
        }
        Ok(())
    }

    pub async fn write(&self, batch: &Batch) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(p) => sqlite::write(p, batch).await,
            Db::Postgres(pg) => pg.write(batch).await,
        }
    }

    /// Writes the inventory's lamps with each one's lit threshold (by lamp
    /// position; 0 where missing), which the rollups read.
    pub async fn upsert_lamps(
        &self,
        inv: &Inventory,
        lit_threshold_w: &[f64],
    ) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(p) => sqlite::upsert_lamps(p, inv, lit_threshold_w).await,
            Db::Postgres(pg) => pg.upsert_lamps(inv, lit_threshold_w).await,
        }
    }

    /// PostgreSQL: makes sure today's and the next `ahead` days' partitions exist.
    pub async fn partitions_ahead(
        &self,
        now: DateTime<Utc>,
        ahead: u32,
    ) -> Result<(), sqlx::Error> {
        if let Db::Postgres(pg) = self {
            let today = now.date_naive();
            pg.ensure_days((0..=u64::from(ahead)).map(|d| today + chrono::Days::new(d)))
                .await?;
        }
        Ok(())
    }

    pub async fn start_run(
        &self,
        run_id: &str,
        gateway_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO gateway_runs (run_id, gateway_id, started_at, heartbeat_at) \
                   VALUES ($1, $2, $3, $3) ON CONFLICT (run_id) DO NOTHING";
        match self {
            Db::Sqlite(p) => {
                sqlx::query(sql)
                    .bind(run_id)
                    .bind(gateway_id)
                    .bind(micros(now))
                    .execute(p)
                    .await?;
            }
            Db::Postgres(pg) => {
                sqlx::query(sql)
                    .bind(run_id)
                    .bind(gateway_id)
                    .bind(now)
                    .execute(&pg.pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn heartbeat(
        &self,
        run_id: &str,
        now: DateTime<Utc>,
        stopped: bool,
    ) -> Result<(), sqlx::Error> {
        let sql = if stopped {
            "UPDATE gateway_runs SET heartbeat_at = $2, stopped_at = $2 WHERE run_id = $1"
        } else {
            "UPDATE gateway_runs SET heartbeat_at = $2 WHERE run_id = $1"
        };
        match self {
            Db::Sqlite(p) => {
                sqlx::query(sql)
                    .bind(run_id)
                    .bind(micros(now))
                    .execute(p)
                    .await?;
            }
            Db::Postgres(pg) => {
                sqlx::query(sql)
                    .bind(run_id)
                    .bind(now)
                    .execute(&pg.pool)
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        let sql = "SELECT value FROM store_meta WHERE key = $1";
        match self {
            Db::Sqlite(p) => sqlx::query_scalar(sql).bind(key).fetch_optional(p).await,
            Db::Postgres(pg) => {
                sqlx::query_scalar(sql)
                    .bind(key)
                    .fetch_optional(&pg.pool)
                    .await
            }
        }
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO store_meta (key, value) VALUES ($1, $2) \
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        match self {
            Db::Sqlite(p) => {
                sqlx::query(sql).bind(key).bind(value).execute(p).await?;
            }
            Db::Postgres(pg) => {
                sqlx::query(sql)
                    .bind(key)
                    .bind(value)
                    .execute(&pg.pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// The time of the earliest raw lamp sample, if any.
    pub async fn first_lamp_sample(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        Ok(match self {
            Db::Sqlite(p) => {
                sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(time) FROM lamp_samples")
                    .fetch_one(p)
                    .await?
                    .map(from_micros)
            }
            Db::Postgres(pg) => {
                sqlx::query_scalar::<_, Option<DateTime<Utc>>>("SELECT MIN(time) FROM lamp_samples")
                    .fetch_one(&pg.pool)
                    .await?
            }
        })
    }

    pub async fn rollup(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        gap_s: f64,
    ) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(p) => sqlite::rollup(p, micros(from), micros(to), gap_s).await,
            Db::Postgres(pg) => pg.rollup(from, to, gap_s).await,
        }
    }

    /// Removes raw samples before `cutoff`: rows on SQLite, whole daily
    /// partitions on PostgreSQL. Returns rows or partitions removed.
    pub async fn retention(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite(p) => sqlite::retention(p, micros(cutoff)).await,
            Db::Postgres(pg) => pg.retention(cutoff).await,
        }
    }

    pub async fn lamp_raw(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LampPoint>, sqlx::Error> {
        let sql = "SELECT time, is_on, dim_level, voltage_v, current_a, power_w, power_factor, \
                   energy_kwh, burning_hours, fault_flags FROM lamp_samples \
                   WHERE lamp_id = $1 AND time >= $2 AND time < $3 ORDER BY time LIMIT $4";
        macro_rules! point {
            ($r:expr, $time:expr) => {
                LampPoint {
                    time: $time,
                    on: $r.try_get(1)?,
                    dim_level: $r.try_get(2)?,
                    voltage_v: $r.try_get(3)?,
                    current_a: $r.try_get(4)?,
                    power_w: $r.try_get(5)?,
                    power_factor: $r.try_get(6)?,
                    energy_kwh: $r.try_get(7)?,
                    burning_hours: $r.try_get(8)?,
                    fault_flags: $r.try_get(9)?,
                }
            };
        }
        match self {
            Db::Sqlite(p) => {
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(micros(from))
                    .bind(micros(to))
                    .bind(limit)
                    .fetch_all(p)
                    .await?;
                rows.iter()
                    .map(|r| Ok(point!(r, from_micros(r.try_get(0)?))))
                    .collect()
            }
            Db::Postgres(pg) => {
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .bind(limit)
                    .fetch_all(&pg.pool)
                    .await?;
                rows.iter().map(|r| Ok(point!(r, r.try_get(0)?))).collect()
            }
        }
    }

    pub async fn lamp_hourly(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourPoint>, sqlx::Error> {
        let sql = "SELECT hour, samples, on_seconds, online_seconds, energy_kwh, failures \
                   FROM lamp_hourly WHERE lamp_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour";
        macro_rules! point {
            ($r:expr, $time:expr) => {
                HourPoint {
                    time: $time,
                    samples: i64::from($r.try_get::<i32, _>(1)?),
                    on_seconds: $r.try_get(2)?,
                    online_seconds: $r.try_get(3)?,
                    energy_kwh: $r.try_get(4)?,
                    failures: i64::from($r.try_get::<i32, _>(5)?),
                }
            };
        }
        match self {
            Db::Sqlite(p) => {
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(micros(from))
                    .bind(micros(to))
                    .fetch_all(p)
                    .await?;
                rows.iter()
                    .map(|r| Ok(point!(r, from_micros(r.try_get(0)?))))
                    .collect()
            }
            Db::Postgres(pg) => {
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&pg.pool)
                    .await?;
                rows.iter().map(|r| Ok(point!(r, r.try_get(0)?))).collect()
            }
        }
    }

    pub async fn rtu_raw(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RtuPoint>, sqlx::Error> {
        let sql = "SELECT time, circuits, contactors, voltage_a_v, voltage_b_v, voltage_c_v, \
                   current_a_a, current_b_a, current_c_a, active_power_w, energy_kwh, door_alarm, \
                   leakage_alarm FROM rtu_samples \
                   WHERE rtu_id = $1 AND time >= $2 AND time < $3 ORDER BY time LIMIT $4";
        macro_rules! point {
            ($r:expr, $time:expr) => {{
                let circuits: i16 = $r.try_get(1)?;
                let contactors: i32 = $r.try_get(2)?;
                RtuPoint {
                    time: $time,
                    contactors: (0..circuits).map(|n| contactors & (1 << n) != 0).collect(),
                    voltage_v: [$r.try_get(3)?, $r.try_get(4)?, $r.try_get(5)?],
                    current_a: [$r.try_get(6)?, $r.try_get(7)?, $r.try_get(8)?],
                    active_power_w: $r.try_get(9)?,
                    energy_kwh: $r.try_get(10)?,
                    door_alarm: $r.try_get(11)?,
                    leakage_alarm: $r.try_get(12)?,
                }
            }};
        }
        match self {
            Db::Sqlite(p) => {
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(micros(from))
                    .bind(micros(to))
                    .bind(limit)
                    .fetch_all(p)
                    .await?;
                rows.iter()
                    .map(|r| Ok(point!(r, from_micros(r.try_get(0)?))))
                    .collect()
            }
            Db::Postgres(pg) => {
                let rows = sqlx::query(sql)
                    .bind(id)
                    .bind(from)
                    .bind(to)
                    .bind(limit)
                    .fetch_all(&pg.pool)
                    .await?;
                rows.iter().map(|r| Ok(point!(r, r.try_get(0)?))).collect()
            }
        }
    }
}
