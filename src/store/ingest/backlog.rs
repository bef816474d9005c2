//! What waits for the database: a bounded queue in memory and, past it, the
//! spool on disk. While the spool holds anything, or the database is failing,
//! new batches go to the spool behind it, so that what is on disk is replayed
//! first and a kill loses nothing the store had taken.

use super::rows::Batch;
use crate::queue::{Mark, Record, Spool, SpoolError};
use std::collections::VecDeque;

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
            .finish()
    }
}

impl Backlog {
    pub fn new(spool: Spool<Batch>, cap_rows: usize) -> Self {
        Self {
            mem: VecDeque::new(),
            mem_rows: 0,
            cap_rows,
            spooling: !spool.is_empty(),
            spool,
        }
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

    pub fn push(&mut self, batch: Batch) -> Result<(), SpoolError> {
        if batch.is_empty() {
            return Ok(());
        }
        if !self.spooling && self.mem_rows + batch.rows() <= self.cap_rows {
            self.mem_rows += batch.rows();
            self.mem.push_back(batch);
            return Ok(());
        }
        // Memory is full or the database is away: memory goes to disk ahead of
        // the new batch so the spool stays the newest part of the backlog.
        self.spill()?;
        if let Err(e) = self.spool.append([&batch]) {
            // Never drop: keep it in memory past the bound and say so.
            self.mem_rows += batch.rows();
            self.mem.push_back(batch);
            return Err(e);
        }
        Ok(())
    }

    /// Moves everything in memory to the spool and keeps new batches there.
    pub fn spill(&mut self) -> Result<(), SpoolError> {
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
        let mut b = Backlog::new(Spool::open(dir.path()).unwrap(), 10);
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
}
