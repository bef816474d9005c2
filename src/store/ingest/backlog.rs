//! What waits for the database. The spool is the first stop: every batch is
//! appended to it (one write, to the page cache) the moment the store takes
//! it, before anything depends on it, so a process kill loses nothing the
//! store took; a batch leaves it (its mark committed) only once the database
//! has committed it. Memory holds a copy of the oldest waiting batches so
//! the writer need not read them back; past `store.queue_rows` the newer
//! ones are on disk only and are read back in order once the memory copy is
//! written.
//!
//! Invariants (tested below):
//!
//! 1. Every batch taken is in the spool when `push` returns, unless the spool
//!    cannot be written (then it is *held*, below).
//! 2. The window (batches in memory that are also in the spool) is the
//!    oldest waiting records of the spool, from the committed offset, in
//!    spool order; the records past it are on disk only. A batch joins the
//!    window only while nothing is on disk only, so committing the mark of a
//!    prefix of the window consumes exactly that prefix.
//! 3. A mark is committed only after the database committed every record up
//!    to it; a restart replays everything after the committed offset. Rows
//!    are keyed and written with `ON CONFLICT DO NOTHING`, so what the
//!    database already had (a kill between its commit and the offset write)
//!    lands once.
//! 4. When the spool cannot be written (its disk full), nothing taken is
//!    dropped: the batches are held in memory, past `store.queue_rows`, up to
//!    `store.queue_rows_max`; only rows arriving past that are refused,
//!    counted and logged. The failure is logged once with the folder and its
//!    free space, and `/readyz` says degraded until the spool writes again
//!    (or nothing is held any more). Held batches are at risk — on no disk —
//!    so the writer writes them first, and the next append puts them on disk
//!    ahead of the new batch.
//! 5. Memory holds at most about `queue_rows` rows while the spool writes
//!    (plus the chunk being written), `queue_rows_max` while it fails.
//! 6. Alarm records ride in the same batches (a row each) and obey 1–5; they
//!    are upserted keeping each id's highest `version` rather than inserted
//!    with `DO NOTHING`, so a replay (3) or a chunk that carries an older
//!    record behind a newer one lands as the newest. Everything not yet
//!    committed is in the spool or held ([`Backlog::waiting_alarms`] reads
//!    both), so the database's rows overlaid with those are every change.
//! 7. Evaluation totals (`rows::EvaluationRow`) ride the same way and obey
//!    1–5; each is a running total that replaces the row of its (hour,
//!    scope, run) only when its `seq` is higher, because held batches (4)
//!    are written ahead of older ones still in the spool: written in any
//!    order, the latest total is what stays.
//! 8. Schedule versions (`rows::ScheduleVersionRow`) ride the same way and
//!    obey 1–5; no two consecutive rows of `schedule_versions` have the same
//!    content: a version equal (by digest) to the one in force at its time
//!    is dropped, so a replay (3) writes nothing; one equal to the version
//!    right after it (held batches (4) written ahead of older spooled ones,
//!    or another cluster instance's later equal version) moves that one's
//!    time back to its own. On PostgreSQL this runs under a transaction
//!    advisory lock, so cluster instances writing at once take turns.

use super::rows::Batch;
use crate::alarm::Alarm;
use crate::queue::{Front, Mark, Record, Snapshot, Spool, SpoolError};
use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// While the spool fails, a new batch tries it again at most this often (a
/// try serialises everything held in memory).
const SPOOL_RETRY: Duration = Duration::from_secs(1);

/// Consumed bytes at the front of the spool before it is compacted (the
/// waiting records copied to a new file): the spool seldom empties while the
/// gateway runs, since batches keep arriving while one is written.
const COMPACT_AT: u64 = 16 << 20;

/// Waiting bytes copied by a compaction at most: it runs under the backlog's
/// lock, which the state task takes for every batch.
const COMPACT_MAX_WAITING: u64 = 4 << 20;

/// The spool counts a batch in rows, as the backlog and `/readyz` do.
impl Record for Batch {
    fn weight(&self) -> usize {
        self.rows()
    }
}

/// Batches of the window: in memory and in the spool.
#[derive(Debug)]
struct Entry {
    batch: Batch,
    /// Where its last record ends in the spool.
    mark: Mark,
    /// Spool records it stands for (more than one for a chunk put back).
    records: usize,
}

pub struct Backlog {
    /// The oldest waiting spool records, also in memory (invariant 2).
    window: VecDeque<Entry>,
    window_rows: usize,
    /// Spool records past the window, on disk only, and their rows.
    disk_records: usize,
    disk_rows: usize,
    /// Batches the spool could not take, in memory only, oldest first.
    held: VecDeque<Batch>,
    held_rows: usize,
    cap_rows: usize,
    spool: Spool<Batch>,
    /// `store.fsync`: every append is put on the device before `push` returns.
    fsync: bool,
    sync_failing: bool,
    /// Rows held in memory at most while the spool cannot be written.
    max_rows: usize,
    /// The last spool write failed; rows wait in memory meanwhile.
    spool_failing: bool,
    /// Rows refused since the failure began (logged once per failure).
    dropping: bool,
    spool_retry_at: Option<Instant>,
    spool_failures: u64,
    dropped_rows: u64,
    /// Consumed bytes past which the next compaction is tried.
    compact_at: u64,
}

/// Rows taken for one write, and where they came from.
#[derive(Debug)]
pub struct Chunk {
    pub batch: Batch,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// Held in memory only: nothing to commit.
    Held,
    /// The front of the window.
    Window { mark: Mark, records: usize },
    /// Read back from the spool (nothing was in memory).
    Disk {
        mark: Mark,
        records: usize,
        rows: usize,
    },
}

/// What the writer takes next ([`Backlog::begin_take`]).
#[derive(Debug)]
pub enum Take {
    /// From memory.
    Chunk(Chunk),
    /// From the spool: read this outside the lock, then
    /// [`Backlog::finish_disk_take`].
    Disk(Snapshot<Batch>),
    /// Nothing waits.
    Empty,
}

impl Chunk {
    /// Read back from the spool rather than taken from memory.
    pub fn from_spool(&self) -> bool {
        matches!(self.source, Source::Disk { .. })
    }
}

/// Counts only: the queue may hold hundreds of thousands of rows.
impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backlog")
            .field("window_rows", &self.window_rows)
            .field("held_rows", &self.held_rows)
            .field("cap_rows", &self.cap_rows)
            .field("disk_rows", &self.disk_rows)
            .field("spool_failing", &self.spool_failing)
            .field("dropped_rows", &self.dropped_rows)
            .finish()
    }
}

impl Backlog {
    /// `cap_rows` in memory (a copy of what the spool holds); `max_rows` (at
    /// least `cap_rows`) in memory while the spool cannot be written. What
    /// the spool holds at open is on disk only, replayed first.
    pub fn new(spool: Spool<Batch>, cap_rows: usize, max_rows: usize) -> Self {
        Self {
            window: VecDeque::new(),
            window_rows: 0,
            disk_records: spool.len(),
            disk_rows: spool.weight(),
            held: VecDeque::new(),
            held_rows: 0,
            cap_rows,
            spool,
            fsync: false,
            sync_failing: false,
            max_rows: max_rows.max(cap_rows),
            spool_failing: false,
            dropping: false,
            spool_retry_at: None,
            spool_failures: 0,
            dropped_rows: 0,
            compact_at: COMPACT_AT,
        }
    }

    /// `store.fsync`: put every append on the device before `push` returns.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
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

    /// Rows waiting in memory: the window (also in the spool) and what is
    /// held (in memory only).
    pub fn queued_rows(&self) -> usize {
        self.window_rows + self.held_rows
    }

    /// Rows waiting on disk only, to be read back.
    pub fn spooled_rows(&self) -> usize {
        self.disk_rows
    }

    /// Bytes of the spool still waiting for the database (the window's
    /// records included).
    pub fn spooled_bytes(&self) -> u64 {
        self.spool.bytes()
    }

    /// Nothing waits: nothing held, nothing in the spool (whose waiting
    /// records include the window's and a chunk being written).
    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.spool.is_empty()
    }

    /// Takes a batch: appends it to the spool (invariant 1), behind whatever
    /// is held, in one write. An `Err` says the spool could not be written;
    /// the batch is then held in memory (or, past `max_rows`, refused and
    /// counted), never silently lost.
    pub fn push(&mut self, batch: Batch) -> Result<(), SpoolError> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.spool_failing && self.spool_retry_at.is_some_and(|t| Instant::now() < t) {
            self.keep(batch);
            return Ok(());
        }
        let written = self.spool.append_each(self.held.iter().chain([&batch]));
        match written {
            Ok(mut marks) => {
                self.synced();
                let last = marks.pop().expect("one mark per batch");
                self.place_held(marks);
                self.place(batch, last);
                self.note(Ok(()))
            }
            Err(e) => {
                self.keep(batch);
                self.note(Err(e))
            }
        }
    }

    /// After an append: on the device too, when `store.fsync` asks.
    fn synced(&mut self) {
        if !self.fsync {
            return;
        }
        match self.spool.sync() {
            Ok(()) => self.sync_failing = false,
            Err(e) => {
                self.spool_failures += 1;
                if !self.sync_failing {
                    self.sync_failing = true;
                    tracing::error!(error = %e, "cannot sync the spool (store.fsync): its last appends may not survive a power cut");
                }
            }
        }
    }

    /// Everything held is in the spool now, at these marks.
    fn place_held(&mut self, marks: Vec<Mark>) {
        debug_assert_eq!(marks.len(), self.held.len());
        self.held_rows = 0;
        let held = std::mem::take(&mut self.held);
        for (batch, mark) in held.into_iter().zip(marks) {
            self.place(batch, mark);
        }
    }

    /// A batch now in the spool at `mark`: into the window while nothing is
    /// on disk only and memory has room (invariant 2), else on disk only.
    fn place(&mut self, batch: Batch, mark: Mark) {
        let rows = batch.rows();
        if self.disk_records == 0 && self.queued_rows() + rows <= self.cap_rows {
            self.window_rows += rows;
            self.window.push_back(Entry {
                batch,
                mark,
                records: 1,
            });
        } else {
            self.disk_records += 1;
            self.disk_rows += rows;
        }
    }

    /// Holds a batch the spool could not take, up to `max_rows` in memory.
    fn keep(&mut self, batch: Batch) {
        if self.queued_rows() + batch.rows() <= self.max_rows {
            self.held_rows += batch.rows();
            self.held.push_back(batch);
            return;
        }
        self.dropped_rows += batch.rows() as u64;
        if !self.dropping {
            self.dropping = true;
            let dir = self.spool.dir();
            tracing::error!(
                dir = %dir.display(),
                free_bytes = free_bytes(dir),
                queued_rows = self.queued_rows(),
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
                        queued_rows = self.queued_rows(),
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

    /// Puts what is held (in memory only) in the spool now, whatever the
    /// retry pause: a clean stop, a failed write. On failure it stays held.
    pub fn spill(&mut self) -> Result<(), SpoolError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let r = self.spool.append_each(self.held.iter()).map(|marks| {
            self.synced();
            self.place_held(marks);
        });
        self.note(r)
    }

    /// Takes up to about `max_rows` rows from the front: what is held first
    /// (it is on no disk), then the window, then the spool past it.
    pub fn take(&mut self, max_rows: usize) -> Result<Option<Chunk>, SpoolError> {
        match self.begin_take(max_rows) {
            Take::Chunk(c) => Ok(Some(c)),
            Take::Disk(snapshot) => {
                let front = snapshot.front(max_rows);
                self.finish_disk_take(front)
            }
            Take::Empty => Ok(None),
        }
    }

    /// [`Backlog::take`] in two steps, so that the writer reads a chunk back
    /// from the spool (JSON, up to `batch_size` rows) without holding the
    /// lock the state task appends under: what is held or in the window is
    /// taken at once; records on disk only come as a snapshot to read.
    pub fn begin_take(&mut self, max_rows: usize) -> Take {
        if !self.held.is_empty() {
            let mut batch = Batch::default();
            while let Some(front) = self.held.front() {
                if !batch.is_empty() && batch.rows() + front.rows() > max_rows {
                    break;
                }
                let front = self.held.pop_front().expect("front exists");
                self.held_rows -= front.rows();
                batch.absorb(front);
            }
            return Take::Chunk(Chunk {
                batch,
                source: Source::Held,
            });
        }
        if let Some(first) = self.window.pop_front() {
            self.window_rows -= first.batch.rows();
            let (mut batch, mut mark, mut records) = (first.batch, first.mark, first.records);
            while let Some(front) = self.window.front() {
                if batch.rows() + front.batch.rows() > max_rows {
                    break;
                }
                let front = self.window.pop_front().expect("front exists");
                self.window_rows -= front.batch.rows();
                batch.absorb(front.batch);
                mark = front.mark;
                records += front.records;
            }
            return Take::Chunk(Chunk {
                batch,
                source: Source::Window { mark, records },
            });
        }
        if self.disk_records > 0 {
            // The window is empty, so the committed offset is where the
            // records on disk only begin; appends meanwhile land past the
            // snapshot, and only the writer commits or compacts.
            return Take::Disk(self.spool.snapshot());
        }
        // Nothing is held: nothing is at risk from the spool now.
        self.recovered("nothing waits for the spool any more");
        Take::Empty
    }

    /// The records a [`Take::Disk`] snapshot read, as a chunk.
    pub fn finish_disk_take(
        &mut self,
        front: Result<Front<Batch>, SpoolError>,
    ) -> Result<Option<Chunk>, SpoolError> {
        let front = front?;
        if front.records.is_empty() {
            // Fewer on disk than counted (cannot happen); trust the file.
            self.disk_records = 0;
            self.disk_rows = 0;
            self.recovered("nothing waits for the spool any more");
            return Ok(None);
        }
        let records = front.records.len();
        let mut batch = Batch::default();
        for b in front.records {
            batch.absorb(b);
        }
        Ok(Some(Chunk {
            batch,
            source: Source::Disk {
                mark: front.mark,
                records,
                rows: front.weight,
            },
        }))
    }

    /// The chunk is in the database: its records leave the spool.
    pub fn written(&mut self, chunk: Chunk) -> Result<(), SpoolError> {
        match chunk.source {
            Source::Held => Ok(()),
            Source::Window { mark, .. } => self.commit(mark),
            Source::Disk {
                mark,
                records,
                rows,
            } => {
                self.disk_records = self.disk_records.saturating_sub(records);
                self.disk_rows = self.disk_rows.saturating_sub(rows);
                self.commit(mark)
            }
        }
    }

    /// Commits a mark (invariant 3) and compacts the spool once its front is
    /// mostly consumed, carrying the window's marks over.
    fn commit(&mut self, mark: Mark) -> Result<(), SpoolError> {
        self.spool.commit(mark)?;
        if self.spool.consumed_bytes() < self.compact_at {
            return Ok(());
        }
        match self.spool.compact(self.compact_at, COMPACT_MAX_WAITING) {
            Ok(Some(rebase)) => {
                for e in &mut self.window {
                    e.mark = rebase.mark(e.mark);
                }
                self.compact_at = COMPACT_AT;
            }
            Ok(None) => {}
            Err(e) => {
                // The old file is still the spool; try again further on.
                self.compact_at = self.spool.consumed_bytes() + COMPACT_AT;
                tracing::warn!(error = %e, "cannot compact the spool; it keeps growing until it empties");
            }
        }
        Ok(())
    }

    /// The write failed: the chunk waits again, in front. From memory it
    /// goes back where it was; read from the spool it is read again.
    pub fn failed(&mut self, chunk: Chunk) -> Result<(), SpoolError> {
        let rows = chunk.batch.rows();
        match chunk.source {
            Source::Held => {
                self.held_rows += rows;
                self.held.push_front(chunk.batch);
                // It is on no disk: try to put it there now.
                if !self.spool_failing || self.spool_retry_at.is_none_or(|t| Instant::now() >= t) {
                    return self.spill();
                }
                Ok(())
            }
            Source::Window { mark, records } => {
                self.window_rows += rows;
                self.window.push_front(Entry {
                    batch: chunk.batch,
                    mark,
                    records,
                });
                Ok(())
            }
            Source::Disk { .. } => Ok(()),
        }
    }

    pub fn sync(&self) -> Result<(), SpoolError> {
        self.spool.sync()
    }

    /// The alarm records not yet committed to the database: those held in
    /// memory only, then every record of the spool from the committed offset
    /// (the window's and a chunk being written among them, since a record
    /// leaves the spool only once the database committed it), read a step at
    /// a time keeping only the alarms. Under the backlog's lock: meant for
    /// the start, before the first batch.
    pub fn waiting_alarms(&self) -> Result<Vec<Alarm>, SpoolError> {
        const STEP: usize = 1024;
        let mut out: Vec<Alarm> = self
            .held
            .iter()
            .flat_map(|b| b.alarms.iter().cloned())
            .collect();
        let mut after = None;
        loop {
            let read = self.spool.read_after(after, STEP)?;
            let Some(&(_, last)) = read.last() else {
                break;
            };
            out.extend(read.into_iter().flat_map(|(b, _)| b.alarms));
            after = Some(last);
        }
        Ok(out)
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

    fn spool_records(dir: &Path) -> Vec<i64> {
        let s = Spool::<Batch>::open(dir).unwrap();
        let f = s.front(usize::MAX).unwrap();
        let mut t: Vec<i64> = f
            .records
            .iter()
            .flat_map(|b| b.transitions.iter().map(|r| r.time_us))
            .collect();
        t.dedup();
        t
    }

    /// Invariants 1 and 2: on disk at once; past the bound on disk only;
    /// memory first, then the disk, in order; a failed write waits again.
    #[test]
    fn every_batch_is_on_disk_at_once_and_overflow_is_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 10, 10);
        b.push(batch(1, 4)).unwrap();
        b.push(batch(2, 4)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (8, 0));
        assert_eq!(spool_records(dir.path()), [1, 2], "in the spool at once");
        // Over the bound: on disk only.
        b.push(batch(3, 4)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (8, 4));
        let c = b.take(8).unwrap().unwrap();
        assert!(!c.from_spool());
        assert_eq!(times(&c), vec![1, 2]);
        b.failed(c).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (8, 4));
        // Still first; memory and disk are not merged in one chunk.
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![1, 2]);
        b.written(c).unwrap();
        assert_eq!(spool_records(dir.path()), [3]);
        let c = b.take(100).unwrap().unwrap();
        assert!(c.from_spool());
        assert_eq!(times(&c), vec![3]);
        b.failed(c).unwrap();
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![3], "read again");
        b.written(c).unwrap();
        assert!(b.is_empty());
        assert_eq!(fs_len(dir.path()), 0, "compacted once consumed");
        // Drained: new batches are kept in memory too again.
        b.push(batch(4, 1)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (1, 0));
        let c = b.take(100).unwrap().unwrap();
        b.failed(c).unwrap();
        b.push(batch(5, 1)).unwrap();
        assert_eq!((b.queued_rows(), b.spooled_rows()), (2, 0));
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![4, 5]);
    }

    /// Invariant 3, as a kill sees it: whatever was not committed, written
    /// or not, comes again from the spool; nothing committed does.
    #[test]
    fn a_kill_replays_everything_not_committed_and_nothing_committed() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 100, 100);
        for t in 1..=4 {
            b.push(batch(t, 2)).unwrap();
        }
        let c = b.take(4).unwrap().unwrap();
        assert_eq!(times(&c), vec![1, 2]);
        b.written(c).unwrap();
        // Taken and (say) committed by the database, but killed before the
        // offset moved: it comes again, and the keys make it land once.
        let c = b.take(2).unwrap().unwrap();
        assert_eq!(times(&c), vec![3]);
        b.push(batch(5, 2)).unwrap();
        drop(b);
        assert_eq!(spool_records(dir.path()), [3, 4, 5]);
        // The next run replays exactly that, from disk, before new batches.
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 100, 100);
        assert_eq!((b.queued_rows(), b.spooled_rows()), (0, 6));
        b.push(batch(6, 2)).unwrap();
        assert_eq!(b.spooled_rows(), 8, "behind the replay, on disk only");
        let c = b.take(100).unwrap().unwrap();
        assert!(c.from_spool());
        assert_eq!(times(&c), vec![3, 4, 5, 6]);
        b.written(c).unwrap();
        assert!(b.is_empty());
    }

    /// Invariant 4: the spool's disk is full: every batch taken is held in
    /// memory, up to the bound; past it new rows are refused and counted;
    /// once the spool writes again what is held goes to it, all of it, in
    /// order, in one write ahead of the new batch.
    #[test]
    fn a_failed_append_holds_the_batches_in_memory_up_to_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 4, 12);
        // The append fails part way through its write.
        b.spool.fail_after = Some(10);
        assert!(b.push(batch(1, 4)).is_err());
        assert_eq!((b.queued_rows(), b.spooled_rows()), (4, 0), "nothing lost");
        assert!(b.spool_failing());
        assert_eq!(b.spool_failures(), 1);
        assert_eq!(fs_len(dir.path()), 0, "no torn line left");
        // Within the retry pause: held without touching the disk.
        b.push(batch(2, 4)).unwrap();
        b.push(batch(3, 4)).unwrap();
        assert_eq!(b.queued_rows(), 12);
        // Past the bound: refused and counted, not silently.
        b.push(batch(4, 4)).unwrap();
        assert_eq!((b.queued_rows(), b.dropped_rows()), (12, 4));
        // Space again (and the retry due).
        b.spool_retry_at = None;
        b.push(batch(5, 1)).unwrap();
        assert!(!b.spool_failing());
        assert_eq!(spool_records(dir.path()), [1, 2, 3, 5]);
        // 1 fits the memory bound; the rest is on disk only.
        assert_eq!((b.queued_rows(), b.spooled_rows()), (4, 9));
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![1]);
        b.written(c).unwrap();
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![2, 3, 5]);
        b.written(c).unwrap();
        assert!(b.is_empty());
    }

    /// Held rows are written first, and a held chunk whose write fails goes
    /// back to be held and to the spool at once if it can.
    #[test]
    fn a_failed_write_of_held_rows_keeps_them_and_tries_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 10, 10);
        b.push(batch(1, 2)).unwrap();
        b.spool.fail_after = Some(0);
        assert!(b.push(batch(2, 3)).is_err());
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![2], "held first: it is on no disk");
        // The spool still fails: the rows stay held.
        b.spool_retry_at = None;
        b.spool.fail_after = Some(0);
        assert!(b.failed(c).is_err());
        assert_eq!((b.queued_rows(), b.spooled_rows()), (5, 0));
        assert_eq!(spool_records(dir.path()), [1]);
        // It writes again: the failed held chunk goes to the spool.
        let c = b.take(100).unwrap().unwrap();
        b.spool_retry_at = None;
        b.failed(c).unwrap();
        assert!(!b.spool_failing());
        assert_eq!(spool_records(dir.path()), [1, 2]);
        let c = b.take(100).unwrap().unwrap();
        assert_eq!(times(&c), vec![1, 2]);
        b.written(c).unwrap();
        // Nothing waits for the spool: no longer degraded.
        assert!(b.take(100).unwrap().is_none());
        assert!(b.is_empty());
    }

    /// A spool that never empties (batches keep arriving) is compacted and
    /// the window's marks still consume exactly their records.
    #[test]
    fn compaction_carries_the_window_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 100, 100);
        b.compact_at = 1;
        // Times of one width, so every line has the same length.
        for t in 10..=19 {
            b.push(batch(t, 1)).unwrap();
        }
        let line = fs_len(dir.path()) / 10;
        let c = b.take(8).unwrap().unwrap();
        b.written(c).unwrap();
        assert_eq!(fs_len(dir.path()), 2 * line, "consumed front cut off");
        let c = b.take(1).unwrap().unwrap();
        assert_eq!(times(&c), vec![18]);
        b.written(c).unwrap();
        b.push(batch(20, 1)).unwrap();
        drop(b);
        assert_eq!(spool_records(dir.path()), [19, 20]);
    }

    /// A spool left by a version that wrote rows as JSON objects (and its
    /// offset past a consumed first line) replays after an upgrade: the
    /// waiting records, in order, as the same rows, then new batches
    /// (spooled in the array encoding) behind them.
    #[test]
    fn an_old_spool_file_replays_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let consumed = r#"{"transitions":[{"time_us":1,"device_kind":"slc","device_id":"S0","district":"D01","online":true,"reason":null,"detail":null}]}"#;
        let waiting = r#"{"lamps":[{"time_us":2,"lamp_id":"LX-1","district":"D01","on":true,"dim_level":100.0,"voltage_v":230.5,"current_a":0.4,"power_w":92.0,"power_factor":0.98,"energy_kwh":12.5,"burning_hours":100.0,"fault_flags":0,"commanded":null,"should_be_lit":true,"lit":true}],"rtus":[{"time_us":2,"rtu_id":"RTU-1","district":"D01","circuits":2,"contactors":3,"voltage_v":[230.0,null,null],"current_a":[1.0,null,null],"active_power_w":200.0,"energy_kwh":5.0,"door_alarm":false,"leakage_alarm":false}],"transitions":[{"time_us":2,"device_kind":"slc","device_id":"S1","district":"D01","online":false,"reason":"timeout","detail":null}]}"#;
        std::fs::write(
            dir.path().join("spool.jsonl"),
            format!("{consumed}\n{waiting}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("spool.offset"),
            format!("{:020}", consumed.len() + 1),
        )
        .unwrap();
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 100, 100);
        assert_eq!(b.spooled_rows(), 3);
        b.push(batch(3, 1)).unwrap();
        let c = b.take(100).unwrap().unwrap();
        assert!(c.from_spool());
        assert_eq!(c.batch.lamps.len(), 1);
        let l = &c.batch.lamps[0];
        assert_eq!((l.time_us, &*l.lamp_id, &*l.district), (2, "LX-1", "D01"));
        assert_eq!((l.voltage_v, l.commanded, l.lit), (Some(230.5), None, true));
        assert_eq!(&*c.batch.rtus[0].rtu_id, "RTU-1");
        assert_eq!(c.batch.rtus[0].voltage_v, [Some(230.0), None, None]);
        assert_eq!(times(&c), vec![2, 3], "the old record, then the new one");
        b.written(c).unwrap();
        assert!(b.is_empty());
    }

    fn fs_len(dir: &Path) -> u64 {
        std::fs::metadata(dir.join("spool.jsonl")).unwrap().len()
    }
}
