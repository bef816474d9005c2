//! The time-series store: every sample and transition the state applies,
//! appended to a spool file the moment it is taken (so a kill loses none of
//! it), written in batches to SQLite or PostgreSQL and consumed from the
//! spool once committed, rolled up hourly and trimmed by retention.
//!
//! Rooms, lowest first: `db/` (the backend, the store's column types, the
//! queries both backends share, and per dialect only partitions, rollups and
//! bulk writes), `ingest/` (rows, backlog, the writer task, the sinks), `read/` (history, what the windowed figures read, the audit
//! trail), `maintenance` (the run's heartbeat, rollups, retention and
//! partitions), `metrics` (its Prometheus families) and `config`. The
//! backlog's spool is the generic durable queue (`crate::queue`).

pub mod config;
pub mod db;
pub mod ingest;
pub mod maintenance;
pub mod metrics;
pub mod read;

pub use config::{Backend, StoreSettings};
pub use db::{Db, StoreTime};
pub use ingest::rows::{Batch, CommandRow, EvaluationRow, LampRow, RtuRow, TransitionRow};
pub use ingest::sink::{
    StoreAlarms, StoreAudit, StoreEvaluation, StoreScheduleVersions, StoreSink,
};

use crate::inventory::Inventory;
use crate::queue::{Spool, SpoolError};
use ingest::backlog::Backlog;
use ingest::rows::Naming;
use ingest::sink::Shared;
use ingest::writer;
use parking_lot::Mutex;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store.url: {0}")]
    Url(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What `/readyz` and `/metrics` show about the store.
#[derive(Debug)]
pub struct StoreStatus {
    /// Connected, migrated and the run recorded.
    pub ready: AtomicBool,
    /// The last write (or connection attempt) failed.
    pub failing: AtomicBool,
    pub queued_rows: AtomicU64,
    pub spooled_rows: AtomicU64,
    pub spooled_bytes: AtomicU64,
    /// The last spool write failed (its disk full): rows wait in memory.
    pub spool_failing: AtomicBool,
    pub spool_failures: AtomicU64,
    /// Rows refused while the spool failed and memory was at `queue_rows_max`.
    pub dropped_rows: AtomicU64,
    pub lamp_rows: AtomicU64,
    pub rtu_rows: AtomicU64,
    pub transition_rows: AtomicU64,
    /// Alarm records written (each change's record, whether or not it was
    /// newer than the row the database had).
    pub alarm_rows: AtomicU64,
    /// Evaluation totals written (each tick's row, whether or not it was
    /// newer than the row the database had).
    pub evaluation_rows: AtomicU64,
    pub writes: AtomicU64,
    pub write_failures: AtomicU64,
    /// Earliest sample time (µs) written behind the rollups, to be rolled up again.
    pub dirty_from_us: AtomicI64,
    /// Rollups are complete before this time (µs).
    pub rolled_to_us: AtomicI64,
    pub last_error: Mutex<Option<String>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusView {
    pub backend: &'static str,
    pub state: &'static str,
    pub queued_rows: u64,
    pub spooled_rows: u64,
    pub spooled_bytes: u64,
    pub spool_failing: bool,
    pub spool_failures: u64,
    pub dropped_rows: u64,
    pub rows_written: u64,
    pub write_failures: u64,
    pub last_error: Option<String>,
}

impl Default for StoreStatus {
    fn default() -> Self {
        Self {
            ready: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            queued_rows: AtomicU64::new(0),
            spooled_rows: AtomicU64::new(0),
            spooled_bytes: AtomicU64::new(0),
            spool_failing: AtomicBool::new(false),
            spool_failures: AtomicU64::new(0),
            dropped_rows: AtomicU64::new(0),
            lamp_rows: AtomicU64::new(0),
            rtu_rows: AtomicU64::new(0),
            transition_rows: AtomicU64::new(0),
            alarm_rows: AtomicU64::new(0),
            evaluation_rows: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
            dirty_from_us: AtomicI64::new(i64::MAX),
            rolled_to_us: AtomicI64::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl StoreStatus {
    pub fn rows_written(&self) -> u64 {
        self.lamp_rows.load(Ordering::Relaxed)
            + self.rtu_rows.load(Ordering::Relaxed)
            + self.transition_rows.load(Ordering::Relaxed)
            + self.alarm_rows.load(Ordering::Relaxed)
            + self.evaluation_rows.load(Ordering::Relaxed)
    }

    /// Degraded while the database is unreachable, failing, a spool is
    /// still being replayed, or the spool cannot be written.
    pub fn degraded(&self) -> bool {
        !self.ready.load(Ordering::Relaxed)
            || self.failing.load(Ordering::Relaxed)
            || self.spooled_rows.load(Ordering::Relaxed) > 0
            || self.spool_failing.load(Ordering::Relaxed)
    }

    pub(crate) fn record_backlog(&self, b: &Backlog) {
        self.queued_rows
            .store(b.queued_rows() as u64, Ordering::Relaxed);
        self.spooled_rows
            .store(b.spooled_rows() as u64, Ordering::Relaxed);
        self.spooled_bytes
            .store(b.spooled_bytes(), Ordering::Relaxed);
        self.spool_failing
            .store(b.spool_failing(), Ordering::Relaxed);
        self.spool_failures
            .store(b.spool_failures(), Ordering::Relaxed);
        self.dropped_rows.store(b.dropped_rows(), Ordering::Relaxed);
    }

    pub(crate) fn fail(&self, error: String) {
        self.failing.store(true, Ordering::Relaxed);
        self.write_failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = Some(error);
    }
}

/// The store as the API sees it: the database for history, the status.
#[derive(Debug)]
pub struct Store {
    pub db: Arc<Db>,
    pub status: Arc<StoreStatus>,
}

impl Store {
    pub fn view(&self) -> StatusView {
        let s = &self.status;
        StatusView {
            backend: self.db.kind(),
            state: if s.degraded() { "degraded" } else { "ok" },
            queued_rows: s.queued_rows.load(Ordering::Relaxed),
            spooled_rows: s.spooled_rows.load(Ordering::Relaxed),
            spooled_bytes: s.spooled_bytes.load(Ordering::Relaxed),
            spool_failing: s.spool_failing.load(Ordering::Relaxed),
            spool_failures: s.spool_failures.load(Ordering::Relaxed),
            dropped_rows: s.dropped_rows.load(Ordering::Relaxed),
            rows_written: s.rows_written(),
            write_failures: s.write_failures.load(Ordering::Relaxed),
            last_error: s.last_error.lock().clone(),
        }
    }
}

/// A running store: the sink for the state task, the store for the API, and
/// the tasks to await on shutdown.
#[derive(Debug)]
pub struct Running {
    pub sink: Arc<StoreSink>,
    pub store: Arc<Store>,
    /// This process's run (`gateway_runs.run_id`).
    run_id: String,
    writer: JoinHandle<()>,
    maintenance: JoinHandle<()>,
}

impl Running {
    /// The observer that records completed commands in the store.
    pub fn audit(&self) -> Arc<StoreAudit> {
        Arc::new(StoreAudit {
            shared: self.sink.shared.clone(),
        })
    }

    /// The alarm engine's sink (`alarm::Alarms::add_sink`): every change to
    /// the spool, then the `alarms` table.
    pub fn alarms(&self) -> Arc<StoreAlarms> {
        Arc::new(StoreAlarms {
            shared: self.sink.shared.clone(),
        })
    }

    /// The evaluation sampler's handle (`figures::sampler`): its running
    /// hourly totals, keyed by this run, to the spool, then
    /// `evaluation_hourly`.
    pub fn evaluation(&self) -> Arc<StoreEvaluation> {
        Arc::new(StoreEvaluation {
            shared: self.sink.shared.clone(),
            run_id: self.run_id.clone(),
        })
    }

    /// The schedule engine's version sink (`Schedule::keep_versions`):
    /// every new version of the book and groups to the spool, then
    /// `schedule_versions`.
    pub fn schedule_versions(&self) -> Arc<StoreScheduleVersions> {
        Arc::new(StoreScheduleVersions {
            shared: self.sink.shared.clone(),
        })
    }

    /// The alarms open when the gateway last stopped or was killed, for
    /// `alarm::Alarms::restore` before the first batch: the database's open
    /// ones overlaid with the alarm records still waiting in the spool (a
    /// change made while the database was away is only there), each id at
    /// its highest version, closed ones left out; by id. The spool is read
    /// before the database: a record leaves the spool only after the
    /// database committed it, so none falls between the two reads. Waits
    /// until the writer has connected and migrated: wrap it in a timeout and
    /// fall back on another source while the database is away.
    pub async fn open_alarms(&self) -> Result<Vec<crate::alarm::Alarm>, StoreError> {
        let waiting = self.sink.shared.backlog.lock().waiting_alarms()?;
        while !self.store.status.ready.load(Ordering::Relaxed) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let stored = self.store.db.open_alarms().await?;
        let open: std::collections::HashSet<i64> = stored.iter().map(|a| a.id).collect();
        let mut others: Vec<i64> = waiting
            .iter()
            .map(|a| a.id)
            .filter(|id| !open.contains(id))
            .collect();
        others.sort_unstable();
        others.dedup();
        let versions = self.store.db.alarm_versions(&others).await?;
        Ok(read::alarms::overlay(stored, waiting, &versions))
    }

    /// A reload's new inventory: the rows of every batch from now on are
    /// named from it, and the writer brings the `lamps` table up to date.
    /// Call while no state task offers batches (between generations).
    pub fn reconfigure(&self, inventory: Arc<Inventory>, lit_threshold_w: Arc<Vec<f64>>) {
        let shared = &self.sink.shared;
        *shared.naming.write() = Naming::new(&inventory);
        *shared.lamps.lock() = ingest::sink::LampsTable {
            inventory,
            lit_threshold_w,
            stale: true,
        };
        shared.wake.notify_one();
    }

    /// Waits until everything queued is written (or left in the spool, if
    /// the database stays away past `shutdown_timeout`) and the run's stop
    /// is recorded. Call after the state task has dropped its sinks.
    pub async fn join(self) {
        drop(self.sink);
        let _ = self.writer.await;
        let _ = self.maintenance.await;
    }
}

/// Everything the store's tasks need to know besides the settings.
#[derive(Debug)]
pub struct StartArgs {
    pub settings: StoreSettings,
    pub gateway_id: String,
    /// Longest time one sample stands for in rollups (a poll gap beyond it is
    /// not counted as online).
    pub sample_gap: std::time::Duration,
    pub inventory: Arc<Inventory>,
    /// Each lamp's lit threshold (W) by position, from its SLC's profile;
    /// the rollups' lighting columns compare against it.
    pub lit_threshold_w: Arc<Vec<f64>>,
    pub cancel: CancellationToken,
}

/// Opens the spool and starts the store's tasks; `None` when `store.url` is
/// `none`. The database is connected by the writer, so a database that is
/// away at start delays writes, not polling.
pub fn start(args: StartArgs) -> Result<Option<Running>, StoreError> {
    let Some(db) = Db::connect_lazy_with(
        &args.settings.url,
        args.settings.max_connections,
        args.settings.fsync,
    )?
    else {
        return Ok(None);
    };
    let db = Arc::new(db);
    let spool = Spool::open(&args.settings.spool_dir)?;
    let status = Arc::new(StoreStatus::default());
    let backlog = Backlog::new(
        spool,
        args.settings.queue_rows,
        args.settings.queue_rows_max(),
    )
    .with_fsync(args.settings.fsync);
    status.record_backlog(&backlog);
    if backlog.spooled_rows() > 0 {
        tracing::info!(
            rows = backlog.spooled_rows(),
            dir = %args.settings.spool_dir.display(),
            "replaying the spool first"
        );
    }
    let shared = Arc::new(Shared::new(
        backlog,
        status.clone(),
        Naming::new(&args.inventory),
        ingest::sink::LampsTable {
            inventory: args.inventory.clone(),
            lit_threshold_w: args.lit_threshold_w.clone(),
            stale: false,
        },
    ));
    let run_id = format!(
        "{}-{}",
        args.gateway_id,
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    );
    let writer = tokio::spawn(writer::writer(writer::WriterArgs {
        db: db.clone(),
        shared: shared.clone(),
        settings: args.settings.clone(),
        run_id: run_id.clone(),
        gateway_id: args.gateway_id.clone(),
    }));
    let maintenance = tokio::spawn(maintenance::run(maintenance::MaintenanceArgs {
        db: db.clone(),
        status: status.clone(),
        settings: args.settings.clone(),
        run_id: run_id.clone(),
        sample_gap: args.sample_gap,
        cancel: args.cancel,
    }));
    Ok(Some(Running {
        sink: Arc::new(StoreSink { shared }),
        store: Arc::new(Store { db, status }),
        run_id,
        writer,
        maintenance,
    }))
}
