//! The state's and control's handles on the store: they hand over batches and
//! completed commands without ever waiting on the database.

use super::backlog::Backlog;
use super::rows::{Batch, CommandRow, Naming};
use crate::control::{Command, CommandObserver};
use crate::state::{Applied, Sink};
use crate::store::StoreStatus;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Shared between the sink (on the state task), the intake and the writer.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) backlog: Mutex<Backlog>,
    pub(crate) status: Arc<StoreStatus>,
    pub(crate) naming: Naming,
    /// Wakes the writer: rows arrived, or the intake closed.
    pub(crate) wake: Notify,
    pub(crate) intake_closed: AtomicBool,
}

impl Shared {
    pub(crate) fn new(backlog: Backlog, status: Arc<StoreStatus>, naming: Naming) -> Self {
        Self {
            backlog: Mutex::new(backlog),
            status,
            naming,
            wake: Notify::new(),
            intake_closed: AtomicBool::new(false),
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

/// The state's handle on the store: hands batches to the intake without
/// waiting. When the channel is full it queues the batch itself rather than
/// wait or drop it.
#[derive(Debug)]
pub struct StoreSink {
    pub(crate) tx: mpsc::Sender<Arc<Applied>>,
    pub(crate) shared: Arc<Shared>,
}

impl Sink for StoreSink {
    fn offer(&self, batch: Arc<Applied>) {
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => {
                self.shared
                    .status
                    .intake_overflows
                    .fetch_add(1, Ordering::Relaxed);
                self.shared.push(self.shared.naming.batch(&batch));
            }
            Err(mpsc::error::TrySendError::Closed(batch)) => {
                // The intake ended early (it only does when its channel
                // closes, so this is a bug); still keep the rows.
                self.shared.push(self.shared.naming.batch(&batch));
            }
        }
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
