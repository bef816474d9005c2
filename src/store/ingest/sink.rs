//! The state's, control's, alarm engine's and evaluation sampler's handles
//! on the store: they hand over batches, completed commands, alarm changes
//! and evaluation totals without ever waiting on the database. Handing over is
//! appending to the spool (the backlog's first stop): when `offer` returns,
//! the rows are in the page cache (on the device with `store.fsync`).

use super::backlog::Backlog;
use super::rows::{Batch, CommandRow, EvaluationRow, Naming, ScheduleVersionRow};
use crate::alarm::{AlarmChange, AlarmSink};
use crate::control::{Command, CommandObserver};
use crate::schedule::history::{ScheduleVersion, VersionSink};
use crate::state::{Applied, Sink};
use crate::store::StoreStatus;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Shared between the sink (on the state task), the audit observer and the
/// writer.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) backlog: Mutex<Backlog>,
    pub(crate) status: Arc<StoreStatus>,
    /// Ids and districts by device position; replaced by a reload (while the
    /// state task is between generations, so no batch sees a mix).
    pub(crate) naming: parking_lot::RwLock<Naming>,
    /// The inventory the `lamps` table must hold, and whether the writer
    /// has yet to write it since a reload changed it.
    pub(crate) lamps: Mutex<LampsTable>,
    /// Wakes the writer: rows arrived, or the sink was dropped.
    pub(crate) wake: Notify,
    /// The state task dropped the sink: no more batches come.
    pub(crate) closed: AtomicBool,
}

impl Shared {
    pub(crate) fn new(
        backlog: Backlog,
        status: Arc<StoreStatus>,
        naming: Naming,
        lamps: LampsTable,
    ) -> Self {
        Self {
            backlog: Mutex::new(backlog),
            status,
            naming: parking_lot::RwLock::new(naming),
            lamps: Mutex::new(lamps),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
        }
    }

    pub(crate) fn push(&self, batch: Batch) {
        let mut b = self.backlog.lock();
        // The backlog logs and counts a spool failure itself, once.
        if let Err(e) = b.push(batch) {
            *self.status.last_error.lock() = Some(e.to_string());
        }
        self.status.record_backlog(&b);
        drop(b);
        self.wake.notify_one();
    }
}

/// What the `lamps` table is written from (at connect, and again after a
/// reload changed the inventory).
#[derive(Debug, Clone)]
pub(crate) struct LampsTable {
    pub(crate) inventory: Arc<crate::inventory::Inventory>,
    pub(crate) lit_threshold_w: Arc<Vec<f64>>,
    /// A reload changed it and the writer has not written it yet.
    pub(crate) stale: bool,
}

/// The state's handle on the store: turns each applied batch into rows and
/// appends them to the spool on the state task, so that what the state
/// counts as polled is on disk when the count moves (`state::run` counts
/// after the sinks). It never waits on the database.
#[derive(Debug)]
pub struct StoreSink {
    pub(crate) shared: Arc<Shared>,
}

impl Sink for StoreSink {
    fn offer(&self, batch: Arc<Applied>) {
        let rows = self.shared.naming.read().batch(&batch);
        self.shared.push(rows);
    }
}

/// The last handle gone (the state task ended): the writer drains and stops.
impl Drop for StoreSink {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

/// Hands completed commands to the store without waiting.
#[derive(Debug)]
pub struct StoreAudit {
    pub(crate) shared: Arc<Shared>,
}

impl CommandObserver for StoreAudit {
    fn completed(&self, command: &Command) {
        self.shared.push(Batch {
            commands: vec![CommandRow::new(command)],
            ..Batch::default()
        });
    }
}

/// The alarm engine's handle on the store (`Running::alarms`): every change's
/// record goes to the spool in one append, like a batch of samples, so a
/// change made while the database is away is kept and replayed, and a kill
/// loses none the engine handed over. The writer upserts each id keeping the
/// highest version, so a replayed or reordered change never goes back. It
/// never waits on the database. A change offered after the store stopped
/// (its writer gone) is still appended, and written at the next start.
#[derive(Debug)]
pub struct StoreAlarms {
    pub(crate) shared: Arc<Shared>,
}

impl AlarmSink for StoreAlarms {
    fn offer_alarms(&self, changes: Arc<[AlarmChange]>) {
        if changes.is_empty() {
            return;
        }
        self.shared.push(Batch {
            alarms: changes.iter().map(|c| c.alarm.clone()).collect(),
            ..Batch::default()
        });
    }
}

/// The evaluation sampler's handle on the store (`Running::evaluation`):
/// each tick's running totals go to the spool in one append, like a batch
/// of samples, so totals taken while the database is away are kept and
/// replayed, and a kill loses only what the sampler had not yet handed over.
/// The writer upserts each (hour, scope, run) keeping the highest `seq`. It
/// never waits on the database.
#[derive(Debug)]
pub struct StoreEvaluation {
    pub(crate) shared: Arc<Shared>,
    pub(crate) run_id: String,
}

impl StoreEvaluation {
    /// The run the rows are keyed by.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    pub fn offer(&self, rows: Vec<EvaluationRow>) {
        if rows.is_empty() {
            return;
        }
        self.shared.push(Batch {
            evaluation: rows,
            ..Batch::default()
        });
    }
}

/// The schedule engine's handle on the store (`Running::schedule_versions`):
/// each new version of the book and groups goes to the spool in one
/// append, like a batch of samples, so a version made while the database
/// is away is kept and replayed, and a kill loses none the engine handed
/// over. The writer inserts it only when it differs from the version in
/// force at its time (backlog invariant 8). It never waits on the database.
#[derive(Debug)]
pub struct StoreScheduleVersions {
    pub(crate) shared: Arc<Shared>,
}

impl VersionSink for StoreScheduleVersions {
    fn offer_version(&self, version: &ScheduleVersion) {
        self.shared.push(Batch {
            schedule_versions: vec![ScheduleVersionRow::new(version)],
            ..Batch::default()
        });
    }
}
