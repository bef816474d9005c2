//! What waits for the database: a bounded queue in memory and, past it, the
//! spool on disk. While the spool holds anything, or the database is failing,
//! new batches go to the spool behind it, so that what is on disk is replayed
//! first and a kill loses nothing the store had taken.
//!
//! When the spool cannot be written (its disk full), nothing taken is
//! dropped: the rows stay in memory, past `store.queue_rows`, up to
//! `store.queue_rows_max`; only rows arriving past that are refused, counted
//! and logged. The failure is logged once with the folder and its free
//! space, and `/readyz` says degraded until the spool writes again (or
//! nothing waits for it any more).

use super::rows::Batch;
use crate::queue::{Mark, Record, Spool, SpoolError};
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// While the spool fails, a new batch tries it again at most this often (a
/// try serialises everything held in memory).
const SPOOL_RETRY: Duration = Duration::from_secs(1);

/// The spool counts a batch in rows, as the backlog and `/readyz` do.
impl Record for Batch {
    fn weight(&self) -> usize {
        self.rows()
    }
}

pub struct Backlog {
    mem: VecDeque<Batch>,
    mem_rows: usize,
    cap_rows: usize,
    spool: Spool<Batch>,
    /// The last write failed: keep new batches on disk until the spool drains.
    spooling: bool,
    /// Rows held in memory at most while the spool cannot be written.
    max_rows: usize,
    /// The last spool write failed; rows wait in memory meanwhile.
    spool_failing: bool,
    /// Rows refused since the failure began (logged once per failure).
    dropping: bool,
    spool_retry_at: Option<Instant>,
    spool_failures: u64,
    dropped_rows: u64,
}

/// Rows taken for one write, and where they came from.
#[derive(Debug)]
pub struct Chunk {
    pub batch: Batch,
    source: Source,
}

#[derive(Debug)]
enum Source {
    Memory,
    Spool(Mark),
}

impl Chunk {
    pub fn from_spool(&self) -> bool {
        matches!(self.source, Source::Spool(_))
    }
}

/// Counts only: the queue may hold hundreds of thousands of rows.
impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backlog")
            .field("queued_rows", &self.mem_rows)
            .field("cap_rows", &self.cap_rows)
            .field("spooled_rows", &self.spooled_rows())
            .field("spooling", &self.spooling)
            .field("spool_failing", &self.spool_failing)
            .field("dropped_rows", &self.dropped_rows)
            .finish()
    }
}

impl Backlog {
    /// `cap_rows` in memory before the spool; `max_rows` (at least
    /// `cap_rows`) in memory while the spool cannot be written.
    pub fn new(spool: Spool<Batch>, cap_rows: usize, max_rows: usize) -> Self {
        Self {
            mem: VecDeque::new(),
            mem_rows: 0,
            cap_rows,
            spooling: !spool.is_empty(),
            spool,
            max_rows: max_rows.max(cap_rows),
            spool_failing: false,
            dropping: false,
            spool_retry_at: None,
            spool_failures: 0,
            dropped_rows: 0,
        }
    }

    pub fn spool_failing(&self) -> bool {
        self.spool_failing
    }

    /// Failed spool writes, since start.
    pub fn spool_failures(&self) -> u64 {
        self.spool_failures
    }

    /// Rows refused because the spool failed and memory was at its bound.
    pub fn dropped_rows(&self) -> u64 {
        self.dropped_rows
    }

    pub fn queued_rows(&self) -> usize {
        self.mem_rows
    }

    pub fn spooled_rows(&self) -> usize {
        self.spool.weight()
    }

    pub fn spooled_bytes(&self) -> u64 {
        self.spool.bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.spool.is_empty()
    }

    /// Takes a batch. An `Err` says the spool could not be written; the
    /// batch is then kept in memory (or, past `max_rows`, refused and
    /// counted), never silently lost.
    pub fn push(&mut self, batch: Batch) -> Result<(), SpoolError> {
        if batch.is_empty() {
            return Ok(());
        }
        if !self.spooling && self.mem_rows + batch.rows() <= self.cap_rows {
            self.mem_rows += batch.rows();
            self.mem.push_back(batch);
            return Ok(());
        }
        if self.spool_failing && self.spool_retry_at.is_some_and(|t| Instant::now() < t) {
            self.keep(batch);
            return Ok(());
        }
        // Memory is full or the database is away: memory goes to disk ahead of
        // the new batch so the spool stays the newest part of the backlog.
        let spooled = self
            .spill_memory()
            .and_then(|()| self.spool.append([&batch]).map(drop));
        if spooled.is_err() {
            self.keep(batch);
        }
        self.note(spooled)
    }

    /// Holds a batch the spool could not take, up to `max_rows`.
    fn keep(&mut self, batch: Batch) {
        if self.mem_rows + batch.rows() <= self.max_rows {
            self.mem_rows += batch.rows();
            self.mem.push_back(batch);
            return;
        }
        self.dropped_rows += batch.rows() as u64;
        if !self.dropping {
            self.dropping = true;
            let dir = self.spool.dir();
            tracing::error!(
                dir = %dir.display(),
                free_bytes = free_bytes(dir),
                queued_rows = self.mem_rows,
                queue_rows_max = self.max_rows,
                "spool cannot be written and memory is at store.queue_rows_max: new rows are dropped until it can"
            );
        }
    }

    /// Counts and logs a spool write's outcome: the first failure loudly,
    /// with the folder and its free space; the recovery once.
    fn note(&mut self, r: Result<(), SpoolError>) -> Result<(), SpoolError> {
        match &r {
            Err(e) => {
                self.spool_failures += 1;
                self.spool_retry_at = Some(Instant::now() + SPOOL_RETRY);
                if !self.spool_failing {
                    self.spool_failing = true;
                    let dir = self.spool.dir();
                    tracing::error!(
                        dir = %dir.display(),
                        free_bytes = free_bytes(dir),
                        error = %e,
                        queued_rows = self.mem_rows,
                        queue_rows_max = self.max_rows,
                        "cannot write the spool; keeping the rows in memory"
                    );
                }
            }
            Ok(()) => self.recovered("the spool writes again"),
        }
        r
    }

    fn recovered(&mut self, why: &'static str) {
        if self.spool_failing {
            tracing::info!(
                dir = %self.spool.dir().display(),
                dropped_rows = self.dropped_rows,
                spooled_rows = self.spooled_rows(),
                "{why}"
            );
        }
        self.spool_failing = false;
        self.dropping = false;
        self.spool_retry_at = None;
    }

    /// Moves everything in memory to the spool and keeps new batches there.
    /// On failure the rows stay in memory.
    pub fn spill(&mut self) -> Result<(), SpoolError> {
        let r = self.spill_memory();
        self.note(r)
    }

    fn spill_memory(&mut self) -> Result<(), SpoolError> {
        self.spooling = true;
        if self.mem.is_empty() {
            return Ok(());
        }
        self.spool.append(self.mem.iter())?;
        self.mem.clear();
        self.mem_rows = 0;
        Ok(())
    }

    /// Takes up to about `max_rows` rows from the front: memory first (it is
    /// older than the spool), then the spool.
    pub fn take(&mut self, max_rows: usize) -> Result<Option<Chunk>, SpoolError> {
        if !self.mem.is_empty() {
            let mut batch = Batch::default();
            while let Some(front) = self.mem.front() {
                if !batch.is_empty() && batch.rows() + front.rows() > max_rows {
                    break;
                }
                let front = self.mem.pop_front().expect("front exists");
                self.mem_rows -= front.rows();
                batch.append(&front);
            }
            return Ok(Some(Chunk {
                batch,
                source: Source::Memory,
            }));
        }
        if self.spool.is_empty() {
            self.spooling = false;
            // Everything is written: nothing is at risk from the spool now.
            self.recovered("nothing waits for the spool any more");
            return Ok(None);
        }
        let front = self.spool.front(max_rows)?;
        let mut batch = Batch::default();
        for b in &front.records {
            batch.append(b);
        }
        Ok(Some(Chunk {
            batch,
            source: Source::Spool(front.mark),
        }))
    }

    /// The chunk is in the database.
    pub fn written(&mut self, chunk: Chunk) -> Result<(), SpoolError> {
        if let Source::Spool(mark) = chunk.source {
            self.spool.commit(mark)?;
            if self.spool.is_empty() && self.mem.is_empty() {
                self.spooling = false;
            }
        }
        Ok(())
    }

    /// The write failed: the chunk goes back, to disk. A chunk from memory
    /// goes behind whatever the spool holds; its rows are keyed, so the
    /// database ends up the same whatever the order of writes.
    pub fn failed(&mut self, chunk: Chunk) -> Result<(), SpoolError> {
        match chunk.source {
            Source::Spool(_) => self.spill(),
            Source::Memory => {
                self.mem_rows += chunk.batch.rows();
                self.mem.push_front(chunk.batch);
                self.spill()
            }
        }
    }

    pub fn sync(&self) -> Result<(), SpoolError> {
        self.spool.sync()
    }
}

/// Bytes free to an unprivileged writer on the spool's filesystem, for the
/// log (`None` where it cannot be read).
fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        let st = rustix::fs::statvfs(dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ingest::rows::TransitionRow;

    fn batch(t: i64, n: usize) -> Batch {
        Batch {
            transitions: (0..n)
                .map(|i| TransitionRow {
                    time_us: t,
                    device_kind: "slc".into(),
                    device_id: format!("S{i}"),
                    district: "D01".into(),
                    online: true,
                    reason: None,
                    detail: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn times(c: &Chunk) -> Vec<i64> {
        let mut t: Vec<i64> = c.batch.transitions.iter().map(|r| r.time_us).collect();
        t.dedup();
        t
    }

    #[test]
    fn overflow_and_failure_go_to_disk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 10, 10);
        b.push(batch(1, 4)).unwrap();
        b.push(batch(2, 4)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (8, 0));
        // Over the bound: memory and the new batch go to disk, in order.
        b.push(batch(3, 4)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (0, 12));
        let c = b.take(8).unwrap().unwrap();
        assert!(c.from_spool());
        assert_eq!(times(&c), vec![1, 2]);
        b.failed(c).unwrap();
        // Still on disk, still first.
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![1, 2, 3]);
        b.written(c).unwrap();
        assert!(b.is_empty());
        // Drained: new batches stay in memory again.
        b.push(batch(4, 1)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (1, 0));
        let c = b.take(100).unwrap().unwrap();
        b.failed(c).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (0, 1));
        b.push(batch(5, 1)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (0, 2));
    }

    /// The spool's disk is full: every batch taken stays in memory, up to
    /// the bound; past it new rows are refused and counted; once the spool
    /// writes again memory goes to it, all of it, in order.
    #[test]
    fn a_failed_spill_keeps_the_batches_in_memory_up_to_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 4, 12);
        b.push(batch(1, 4)).unwrap();
        // Over `cap_rows`: the spill fails part way through its write.
        b.spool.fail_after = Some(10);
        assert!(b.push(batch(2, 4)).is_err());
        assert_eq!((b.queued_rows(), b.spooled_rows()), (8, 0), "nothing lost");
        assert!(b.spool_failing());
        assert_eq!(b.spool_failures(), 1);
        assert_eq!(fs_len(dir.path()), 0, "no torn line left");
        // Within the retry pause: kept without touching the disk.
        b.push(batch(3, 4)).unwrap();
        assert_eq!(b.queued_rows(), 12);
        // Past the bound: refused and counted, not silently.
        b.push(batch(4, 4)).unwrap();
        assert_eq!((b.queued_rows(), b.dropped_rows()), (12, 4));
        // Space again (and the retry due): memory and the new batch go to
        // the spool, oldest first.
        b.spool_retry_at = None;
        b.push(batch(5, 1)).unwrap();
        assert!(!b.spool_failing());
        assert_eq!((b.queued_rows(), b.spooled_rows()), (0, 13));
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![1, 2, 3, 5]);
        b.written(c).unwrap();
        assert!(b.is_empty());
    }

    /// A write that fails while the spool does too keeps its chunk.
    #[test]
    fn a_failed_write_keeps_its_chunk_when_the_spool_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 10, 10);
        b.push(batch(1, 3)).unwrap();
        let c = b.take(100).unwrap().unwrap();
        b.spool.fail_after = Some(0);
        assert!(b.failed(c).is_err());
        assert_eq!((b.queued_rows(), b.spooled_rows()), (3, 0));
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![1]);
        b.written(c).unwrap();
        // Nothing waits for the spool: no longer degraded.
        assert!(b.take(100).unwrap().is_none());
        assert!(!b.spool_failing());
    }

    fn fs_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("spool.jsonl")).unwrap().len()
    }
}
