//! The database behind the store, SQLite or PostgreSQL. A query both
//! backends share is written once, inside `with_pool!`, with `StoreTime` and
//! `StoreJson` for the column types whose storage differs; only DDL-like SQL
//! (partitions, retention), the rollups and the bulk sample writes are per
//! dialect, in `sqlite.rs` and `postgres.rs`. The read models' queries live
//! with their point types in `read/`.

mod columns;
pub mod postgres;
pub mod sqlite;
mod time;

pub use time::{StoreJson, StoreTime};

use super::config::Backend;
use super::ingest::rows::{Batch, CommandRow};
use super::StoreError;
use crate::inventory::Inventory;
use chrono::{DateTime, Utc};
use postgres::Postgres;
use sqlx::SqlitePool;

#[derive(Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(Postgres),
}

/// Runs `$body` with `$pool` bound to the pool `$db` holds. The body is
/// written once and compiled once per backend: a shared query is one string
/// and one list of binds, with `fetch_*(pool)` on whichever pool it is.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::db::Db::Sqlite($pool) => $body,
            $crate::store::db::Db::Postgres(pg) => {
                let $pool = &pg.pool;
                $body
            }
        }
    };
}
pub(crate) use with_pool;

/// Inserts completed commands one by one inside the batch's transaction
/// `$tx`: there are few, and the key makes a replayed row a no-op.
macro_rules! insert_commands {
    ($tx:expr, $rows:expr) => {
        for r in $rows {
            sqlx::query(INSERT_COMMAND)
                .bind(&r.command_id)
                .bind(StoreTime::from_micros(r.created_us))
                .bind(StoreTime::from_micros(r.completed_us))
                .bind(&r.actor)
                .bind(&r.source)
                .bind(&r.action)
                .bind(r.level)
                .bind(&r.kind)
                .bind(StoreJson(r.selector.clone()))
                .bind(r.expires_us.map(StoreTime::from_micros))
                .bind(r.targets)
                .bind(r.confirmed)
                .bind(r.failed)
                .bind(StoreJson(r.districts.clone()))
                .bind(StoreJson(r.outcome.clone()))
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// Writes the batch's schedule versions inside its transaction `$tx`, in
/// the order they took effect (backlog invariant 8), so that no two
/// consecutive versions have the same content: one equal to the version in
/// force at its time is dropped (a replay, or another instance's equal
/// version); one equal to the version right after it moves that one's time
/// back to its own (it took effect earlier than the other instance saw it);
/// any other is inserted.
macro_rules! insert_schedule_versions {
    ($tx:expr, $rows:expr) => {
        for r in $rows {
            let at = StoreTime::from_micros(r.effective_us);
            let in_force: Option<String> = sqlx::query_scalar(VERSION_IN_FORCE)
                .bind(at)
                .fetch_optional(&mut *$tx)
                .await?;
            if in_force.as_deref() == Some(r.digest.as_str()) {
                continue;
            }
            let next: Option<(i64, String)> = sqlx::query_as(VERSION_AFTER)
                .bind(at)
                .fetch_optional(&mut *$tx)
                .await?;
            match next {
                Some((id, digest)) if digest == r.digest => {
                    sqlx::query(
                        "UPDATE schedule_versions SET effective_at = $1 WHERE version_id = $2",
                    )
                    .bind(at)
                    .bind(id)
                    .execute(&mut *$tx)
                    .await?;
                }
                _ => {
                    sqlx::query(
                        "INSERT INTO schedule_versions (effective_at, digest, content) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(at)
                    .bind(&r.digest)
                    .bind(&r.content)
                    .execute(&mut *$tx)
                    .await?;
                }
            }
        }
    };
}

/// The digest of the version in force at `$1`.
const VERSION_IN_FORCE: &str = "SELECT digest FROM schedule_versions WHERE effective_at <= $1 \
    ORDER BY effective_at DESC, version_id DESC LIMIT 1";

/// The first version after `$1`.
const VERSION_AFTER: &str = "SELECT version_id, digest FROM schedule_versions \
    WHERE effective_at > $1 ORDER BY effective_at, version_id LIMIT 1";

/// PostgreSQL: instances sharing the database insert versions one at a
/// time (until the commit), so two writing equal content at once cannot
/// both find it missing. SQLite's `BEGIN IMMEDIATE` already serialises.
const LOCK_SCHEDULE_VERSIONS: &str =
    "SELECT pg_advisory_xact_lock(hashtext('lampgw_schedule_versions'))";

const INSERT_COMMAND: &str = "INSERT INTO command_audit (command_id, created_at, completed_at, \
    actor, source, action, level, kind, selector, expires_at, targets, confirmed, failed, \
    districts, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
    ON CONFLICT (command_id) DO NOTHING";

/// A pooled connection that is closed, not returned to the pool, unless
/// [`Discard::keep`] is called after its transaction committed. SQLite can
/// end a transaction by itself on an error (a full disk); sqlx's `ROLLBACK`
/// then fails and it miscounts the nesting, so the connection's next
/// "transaction" is a savepoint inside one that is still open: its commit
/// commits nothing and the open transaction holds the write lock ("database
/// is locked" for every other connection). A fresh connection has none of
/// that; closing this one rolls back whatever it still has open.
struct Discard<DB: sqlx::Database>(Option<sqlx::pool::PoolConnection<DB>>);

impl<DB: sqlx::Database> Discard<DB> {
    fn get(&mut self) -> &mut sqlx::pool::PoolConnection<DB> {
        self.0.as_mut().expect("held until dropped")
    }

    /// Committed: the connection goes back to the pool.
    fn keep(mut self) {
        self.0.take();
    }
}

impl<DB: sqlx::Database> Drop for Discard<DB> {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            conn.close_on_drop();
        }
    }
}

impl Db {
    /// A pool that connects on first use, so a database that is away at start
    /// does not stop the gateway from polling.
    pub fn connect_lazy(backend: &Backend, max_connections: u32) -> Result<Option<Db>, StoreError> {
        Self::connect_lazy_with(backend, max_connections, false)
    }

    /// [`Db::connect_lazy`]; with `durable` (`store.fsync`) SQLite commits
    /// are on the device before they return (`synchronous = FULL`), so a
    /// batch whose spool records are consumed survives a power cut too.
    /// PostgreSQL commits are durable by its own settings.
    pub fn connect_lazy_with(
        backend: &Backend,
        max_connections: u32,
        durable: bool,
    ) -> Result<Option<Db>, StoreError> {
        Ok(match backend {
            Backend::Disabled => None,
            Backend::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                Some(Db::Sqlite(sqlite::pool(path, max_connections, durable)))
            }
            Backend::Postgres(url) => Some(Db::Postgres(Postgres::new(
                secrecy::ExposeSecret::expose_secret(url),
                max_connections,
            )?)),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Whether the store opens for writing, for `check-config --probe`:
    /// SQLite takes its write lock and gives it back at once (a file that
    /// is not a database, or cannot be written, fails here); PostgreSQL
    /// connects (with the URL's `sslmode`) and answers. Nothing is written.
    pub async fn check_writable(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            }
            Db::Postgres(pg) => {
                sqlx::query("SELECT 1").execute(&pg.pool).await?;
            }
        }
        Ok(())
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(p) => sqlite::MIGRATOR.run(p).await?,
            Db::Postgres(pg) => postgres::MIGRATOR.run(&pg.pool).await?,
        }
        Ok(())
    }

    /// Writes a batch in one transaction: the samples in each dialect's bulk
    /// form, then the audit rows and the schedule versions. `Ok` only once the commit returned; a
    /// write that fails (or is cancelled by the caller's timeout) closes its
    /// connection instead of returning it to the pool (see [`Discard`]).
    pub async fn write(&self, batch: &Batch) -> Result<(), sqlx::Error> {
        let commands: &[CommandRow] = &batch.commands;
        let versions = batch.versions_in_order();
        match self {
            Db::Sqlite(p) => {
                let mut conn = Discard(Some(p.acquire().await?));
                // IMMEDIATE: the write lock up front (waiting out the busy
                // timeout), and an error, so a fresh connection next time,
                // if this one were somehow still inside a transaction.
                let mut tx =
                    sqlx::Connection::begin_with(&mut **conn.get(), "BEGIN IMMEDIATE").await?;
                sqlite::write(&mut tx, batch).await?;
                insert_commands!(tx, commands);
                insert_schedule_versions!(tx, versions);
                tx.commit().await?;
                conn.keep();
                Ok(())
            }
            Db::Postgres(pg) => {
                pg.ensure_days_of(batch).await?;
                let mut conn = Discard(Some(pg.pool.acquire().await?));
                let mut tx = sqlx::Connection::begin(&mut **conn.get()).await?;
                postgres::write(&mut tx, batch).await?;
                insert_commands!(tx, commands);
                if !versions.is_empty() {
                    sqlx::query(LOCK_SCHEDULE_VERSIONS)
                        .execute(&mut *tx)
                        .await?;
                }
                insert_schedule_versions!(tx, versions);
                tx.commit().await?;
                conn.keep();
                Ok(())
            }
        }
    }

    /// Writes the inventory's lamps with each one's lit threshold (by lamp
    /// position; 0 where missing) and road, and its cabinets with their RTU,
    /// which the rollups read.
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

    pub async fn rollup(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        gap_s: f64,
    ) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(p) => sqlite::rollup(p, from, to, gap_s).await,
            Db::Postgres(pg) => pg.rollup(from, to, gap_s).await,
        }
    }

    /// Removes raw samples before `cutoff`: rows on SQLite, whole daily
    /// partitions on PostgreSQL. Returns rows or partitions removed.
    pub async fn retention(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite(p) => sqlite::retention(p, cutoff).await,
            Db::Postgres(pg) => pg.retention(cutoff).await,
        }
    }

    pub async fn start_run(
        &self,
        run_id: &str,
        gateway_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO gateway_runs (run_id, gateway_id, started_at, heartbeat_at) \
                   VALUES ($1, $2, $3, $3) ON CONFLICT (run_id) DO NOTHING";
        with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(run_id)
                .bind(gateway_id)
                .bind(StoreTime(now))
                .execute(pool)
                .await?;
        });
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
        with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(run_id)
                .bind(StoreTime(now))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    pub async fn meta(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        let sql = "SELECT value FROM store_meta WHERE key = $1";
        with_pool!(self, pool => sqlx::query_scalar(sql).bind(key).fetch_optional(pool).await)
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        let sql = "INSERT INTO store_meta (key, value) VALUES ($1, $2) \
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        with_pool!(self, pool => {
            sqlx::query(sql).bind(key).bind(value).execute(pool).await?;
        });
        Ok(())
    }

    /// The time of the earliest raw lamp sample, if any.
    pub async fn first_lamp_sample(&self) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let sql = "SELECT MIN(time) FROM lamp_samples";
        let first: Option<StoreTime> =
            with_pool!(self, pool => sqlx::query_scalar(sql).fetch_one(pool).await?);
        Ok(first.map(DateTime::from))
    }
}
