//! One webhook's queue: its durable spool ([`crate::queue::Spool`] in
//! `<dir>/<name>/`) shared by the sink, which appends, and the delivery
//! task, which reads the front and commits it once the receiver accepted it
//! (or it was dropped).
//!
//! - `push` appends before it returns (one write per batch, to the page
//!   cache), so a kill loses nothing offered. Only when the spool cannot be
//!   written (a full disk) are notifications held in memory, behind
//!   everything on disk, logged loudly; every later push and every empty
//!   front tries to write them to the spool again, ahead of newer ones.
//! - `next` reads the oldest waiting notification outside the lock (a
//!   snapshot), so the state task's appends never wait on a read.
//! - `done` commits it: what a kill leaves uncommitted comes again at the
//!   next run (at least once). The spool cuts itself to zero when it
//!   empties, and is compacted when a busy queue seldom empties.

use super::notification::Notification;
use super::status::HookStatus;
use crate::queue::{Mark, Spool, SpoolError};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;

/// Consumed bytes at the front of the spool before it is compacted, and the
/// waiting bytes it copies at most.
const COMPACT_AT: u64 = 1 << 20;
const COMPACT_MAX_WAITING: u64 = 256 << 10;

#[derive(Debug)]
pub(super) struct Queue {
    inner: Mutex<Inner>,
    wake: Notify,
    status: Arc<HookStatus>,
}

#[derive(Debug)]
struct Inner {
    spool: Spool<Notification>,
    /// Not in the spool (its append failed): newer than everything in it.
    held: VecDeque<Notification>,
}

/// The oldest waiting notification and where it is kept.
#[derive(Debug)]
pub(super) struct Next {
    pub(super) note: Notification,
    place: Place,
}

#[derive(Debug)]
enum Place {
    Spool(Mark),
    Held,
}

impl Queue {
    /// Opens (or creates) the spool in `dir`; what a previous run left goes
    /// out first. A damaged line is set aside by the spool itself.
    pub(super) fn open(dir: &Path, status: Arc<HookStatus>) -> Result<Queue, SpoolError> {
        let spool = Spool::open(dir)?;
        let queue = Queue {
            inner: Mutex::new(Inner {
                spool,
                held: VecDeque::new(),
            }),
            wake: Notify::new(),
            status,
        };
        queue.count(&queue.inner.lock());
        Ok(queue)
    }

    fn count(&self, inner: &Inner) {
        self.status.pending.store(
            (inner.spool.len() + inner.held.len()) as u64,
            Ordering::Relaxed,
        );
    }

    /// Queues notifications behind every earlier one, on disk before it
    /// returns (unless the disk refuses: then in memory, logged).
    pub(super) fn push(&self, notes: Vec<Notification>) {
        if notes.is_empty() {
            return;
        }
        {
            let mut inner = self.inner.lock();
            let inner = &mut *inner;
            let written = inner
                .spool
                .append_each(inner.held.iter().chain(notes.iter()));
            match written {
                Ok(_) => inner.held.clear(),
                Err(e) => {
                    self.status.spool_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(webhook = %self.status.name, error = %e, notifications = notes.len(), "cannot spool webhook notifications; keeping them in memory only");
                    inner.held.extend(notes);
                }
            }
            self.count(inner);
        }
        self.wake.notify_one();
    }

    /// Waits until something was pushed since the last call (a push before
    /// the wait counts).
    pub(super) async fn pushed(&self) {
        self.wake.notified().await;
    }

    /// The oldest waiting notification, if any.
    pub(super) fn next(&self) -> Result<Option<Next>, SpoolError> {
        let snapshot = {
            let mut inner = self.inner.lock();
            if inner.spool.is_empty() && !inner.held.is_empty() {
                self.write_held(&mut inner);
            }
            if inner.spool.is_empty() {
                return Ok(inner.held.front().map(|n| Next {
                    note: n.clone(),
                    place: Place::Held,
                }));
            }
            inner.spool.snapshot()
        };
        let mut front = snapshot.front(1)?;
        Ok(front.records.pop().map(|note| Next {
            note,
            place: Place::Spool(front.mark),
        }))
    }

    /// The spool is empty: the held notifications go to it now, if the
    /// disk takes them.
    fn write_held(&self, inner: &mut Inner) {
        if inner.spool.append_each(inner.held.iter()).is_ok() {
            inner.held.clear();
            tracing::info!(webhook = %self.status.name, "held webhook notifications are in the spool again");
        }
    }

    /// The receiver accepted it, or it was dropped: it leaves the queue.
    pub(super) fn done(&self, next: Next) {
        let mut inner = self.inner.lock();
        match next.place {
            Place::Spool(mark) => {
                if let Err(e) = inner.spool.commit(mark) {
                    // It stays on disk and goes again after a restart.
                    self.status.spool_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(webhook = %self.status.name, error = %e, "cannot advance the webhook spool");
                }
                if inner.spool.consumed_bytes() >= COMPACT_AT {
                    if let Err(e) = inner.spool.compact(COMPACT_AT, COMPACT_MAX_WAITING) {
                        self.status.spool_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(webhook = %self.status.name, error = %e, "cannot compact the webhook spool");
                    }
                }
            }
            Place::Held => {
                // A push may have moved the held ones to the spool meanwhile:
                // then it comes once more from there (at least once).
                if inner
                    .held
                    .front()
                    .is_some_and(|n| n.delivery == next.note.delivery)
                {
                    inner.held.pop_front();
                }
            }
        }
        self.count(&inner);
    }
}
