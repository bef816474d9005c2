//! The append-only spool: records one JSON line each, replayed from a
//! committed read offset. The invariants are listed in the module above and
//! tested in `tests.rs`.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

// Recovery on open (torn tail, damaged lines set aside) lives apart.
mod recover;

/// The append buffer kept between appends at most (bytes): a store batch
/// of a hundred lamps is ~10 KB; a rare huge append is not kept.
const KEEP_BUF: usize = 1 << 20;

/// What a spool can hold. The weight is what the owner counts the spool in
/// (rows of a store batch); one per record unless the type says otherwise.
pub trait Record: Serialize + DeserializeOwned {
    fn weight(&self) -> usize {
        1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spool {path}: line at byte {offset} is not a valid record: {source}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
}

/// Records and their weight, counted from the start of a generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Tally {
    records: u64,
    weight: u64,
}

impl Tally {
    fn add(&mut self, weight: usize) {
        self.records += 1;
        self.weight += weight as u64;
    }

    fn minus(self, other: Tally) -> Tally {
        Tally {
            records: self.records - other.records,
            weight: self.weight - other.weight,
        }
    }
}

/// Where a read record ends: committing it consumes it and every record
/// before it. A mark from before the spool was emptied or rewritten (another
/// generation) commits nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    generation: u64,
    end: u64,
    tally: Tally,
}

/// Records read from the front of the spool, and the mark that consumes them.
#[derive(Debug)]
pub struct Front<T> {
    pub records: Vec<T>,
    pub weight: usize,
    pub mark: Mark,
}

/// How marks of the generation a [`Spool::compact`] ended map onto the new
/// file: the same records, the consumed bytes before them gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebase {
    from: u64,
    to: u64,
    shift: u64,
    base: Tally,
}

impl Rebase {
    /// The mark in the new file. A mark of another generation, or of a
    /// record consumed before the compaction, is returned as it is (it
    /// commits nothing).
    pub fn mark(&self, m: Mark) -> Mark {
        if m.generation != self.from || m.end < self.shift {
            return m;
        }
        Mark {
            generation: self.to,
            end: m.end - self.shift,
            tally: m.tally.minus(self.base),
        }
    }
}

#[derive(Debug)]
pub struct Spool<T> {
    path: PathBuf,
    offset_path: PathBuf,
    /// `spool.offset`: the committed offset as a fixed-width number, written
    /// in place (one small write per commit; the MQTT outbox commits per
    /// acknowledged event, where a file renamed per commit costs a
    /// millisecond).
    offset_file: File,
    file: File,
    /// Bytes up to here are consumed.
    offset: u64,
    /// End of the last whole line.
    len: u64,
    generation: u64,
    /// Since the generation began: everything in the file, and what is consumed.
    appended: Tally,
    committed: Tally,
    /// An append failed and its bytes could not be cut off yet: the next
    /// append cuts them first, so no line is ever written behind a torn one.
    torn: bool,
    /// The bytes of one append, kept between appends so that an append
    /// (one per batch, on the state task) does not grow a new buffer from
    /// nothing each time; cut back when one append was unusually large.
    buf: Vec<u8>,
    /// Tests: the next append writes this many bytes, then fails as a full
    /// disk does (a short write, then `ENOSPC`).
    #[cfg(test)]
    pub(crate) fail_after: Option<usize>,
    records: PhantomData<fn() -> T>,
}

impl<T: Record> Spool<T> {
    /// Opens (or creates) the spool in `dir`, cutting a torn last line.
    pub fn open(dir: &Path) -> Result<Spool<T>, SpoolError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join("spool.jsonl");
        let offset_path = dir.join("spool.offset");
        // A rewrite that did not reach its rename; the old file is still whole.
        let _ = fs::remove_file(rewrite_path(&path));
        let file = open_append(&path).map_err(io(&path))?;
        // An offset that does not read replays the whole file: twice, not lost.
        let offset = match fs::read_to_string(&offset_path) {
            Ok(s) => s.trim().parse().unwrap_or(0),
            Err(_) => 0,
        };
        let offset_file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&offset_path)
            .map_err(io(&offset_path))?;
        let mut spool = Spool {
            path,
            offset_path,
            offset_file,
            file,
            offset,
            len: 0,
            generation: 0,
            appended: Tally::default(),
            committed: Tally::default(),
            torn: false,
            buf: Vec::new(),
            #[cfg(test)]
            fail_after: None,
            records: PhantomData,
        };
        spool.recover()?;
        Ok(spool)
    }

    fn io(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// The spool's folder.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    pub fn is_empty(&self) -> bool {
        self.offset == self.len
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.appended.minus(self.committed).records as usize
    }

    /// Weight waiting (rows, for the store).
    pub fn weight(&self) -> usize {
        self.appended.minus(self.committed).weight as usize
    }

    pub fn bytes(&self) -> u64 {
        self.len - self.offset
    }

    /// Appends the records behind every earlier one, in one write, and
    /// returns the mark of the last (`None` when there were none).
    pub fn append<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a T>,
    ) -> Result<Option<Mark>, SpoolError>
    where
        T: 'a,
    {
        Ok(self.append_each(records)?.pop())
    }

    /// Appends the records behind every earlier one, in one write, and
    /// returns each one's mark, in order (none when there were none), for an
    /// owner that holds them in memory and commits them one by one.
    pub fn append_each<'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a T>,
    ) -> Result<Vec<Mark>, SpoolError>
    where
        T: 'a,
    {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut tally = self.appended;
        let mut marks = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).expect("records serialise");
            buf.push(b'\n');
            tally.add(r.weight());
            marks.push(Mark {
                generation: self.generation,
                end: self.len + buf.len() as u64,
                tally,
            });
        }
        let written = self.write_append(&buf);
        if buf.capacity() <= KEEP_BUF {
            self.buf = buf;
        }
        written?;
        self.appended = tally;
        Ok(marks)
    }

    /// Writes one append's bytes (invariants 1 and 7).
    fn write_append(&mut self, buf: &[u8]) -> Result<(), SpoolError> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.torn {
            self.file.set_len(self.len).map_err(|e| self.io(e))?;
            self.torn = false;
        }
        // One write per call, so a kill leaves at most one torn line.
        if let Err(e) = self.write(buf) {
            // A full disk takes part of the write: cut back to the last whole
            // line, or the next append would be glued to the torn one. If
            // even that fails, the next append tries again before writing.
            if self.file.set_len(self.len).is_err() {
                self.torn = true;
            }
            return Err(self.io(e));
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        if let Some(n) = self.fail_after.take() {
            self.file.write_all(&buf[..n.min(buf.len())])?;
            return Err(std::io::Error::from_raw_os_error(28));
        }
        self.file.write_all(buf)
    }

    /// Asks the kernel to put what was appended on the device.
    pub fn sync(&self) -> Result<(), SpoolError> {
        self.file.sync_data().map_err(|e| self.io(e))
    }

    /// Reads from the committed offset while the weight read is under
    /// `max_weight` (so the last record may go past it).
    pub fn front(&self, max_weight: usize) -> Result<Front<T>, SpoolError> {
        self.snapshot().front(max_weight)
    }

    /// The waiting records as they are now, to read without the spool.
    pub fn snapshot(&self) -> Snapshot<T> {
        Snapshot {
            path: self.path.clone(),
            offset: self.offset,
            committed: self.committed,
            len: self.len,
            generation: self.generation,
            records: PhantomData,
        }
    }

    /// Reads up to `max` records after `after` (from the committed offset
    /// when `None` or from another generation), each with its own mark, so
    /// an owner can hold a window of the spool and commit record by record.
    pub fn read_after(
        &self,
        after: Option<Mark>,
        max: usize,
    ) -> Result<Vec<(T, Mark)>, SpoolError> {
        let (from, tally) = match after {
            Some(m) if self.current(m) && m.end > self.offset => (m.end, m.tally),
            _ => (self.offset, self.committed),
        };
        let mut n = 0;
        self.snapshot().read(from, tally, |_| {
            n += 1;
            n <= max
        })
    }

    fn current(&self, m: Mark) -> bool {
        m.generation == self.generation && m.end <= self.len
    }

    /// Consumes everything up to `mark`. A mark at or before the committed
    /// offset, or from another generation, changes nothing.
    pub fn commit(&mut self, mark: Mark) -> Result<(), SpoolError> {
        if !self.current(mark) || mark.end <= self.offset {
            return Ok(());
        }
        self.offset = mark.end;
        self.committed = mark.tally;
        if self.offset == self.len {
            return self.reset();
        }
        self.write_offset()
    }

    /// Makes the waiting records `head` followed by those past `after` (all
    /// waiting ones when `after` is `None` or from another generation). For an
    /// owner that holds records in memory which must go out before the spool.
    pub fn rewrite_front<'a>(
        &mut self,
        head: impl IntoIterator<Item = &'a T>,
        after: Option<Mark>,
    ) -> Result<(), SpoolError>
    where
        T: 'a,
    {
        let (from, rest) = match after {
            Some(m) if self.current(m) && m.end >= self.offset => {
                (m.end, self.appended.minus(m.tally))
            }
            _ => (self.offset, self.appended.minus(self.committed)),
        };
        let mut buf = Vec::new();
        let mut tally = Tally::default();
        for r in head {
            serde_json::to_writer(&mut buf, r).expect("records serialise");
            buf.push(b'\n');
            tally.add(r.weight());
        }
        let tmp = rewrite_path(&self.path);
        let tmp_io = |source| SpoolError::Io {
            path: tmp.clone(),
            source,
        };
        let mut new = File::create(&tmp).map_err(tmp_io)?;
        new.write_all(&buf).map_err(tmp_io)?;
        let mut old = File::open(&self.path).map_err(|e| self.io(e))?;
        old.seek(SeekFrom::Start(from)).map_err(|e| self.io(e))?;
        let copied = std::io::copy(&mut old.take(self.len - from), &mut new).map_err(tmp_io)?;
        // Renamed over the only copy of the waiting records: on the device first.
        new.sync_all().map_err(tmp_io)?;
        drop(new);
        // Offset first: a crash before the rename replays the old file from
        // its start (twice, not lost); the other order could point the old
        // offset into the middle of a line of the new file.
        let old_offset = self.offset;
        self.offset = 0;
        let renamed = self
            .write_offset()
            .and_then(|()| fs::rename(&tmp, &self.path).map_err(tmp_io));
        if let Err(e) = renamed {
            // The old file is still the spool; so is its offset.
            self.offset = old_offset;
            let _ = self.write_offset();
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.file = open_append(&self.path).map_err(|e| self.io(e))?;
        self.generation += 1;
        self.len = buf.len() as u64 + copied;
        self.committed = Tally::default();
        self.appended = Tally {
            records: tally.records + rest.records,
            weight: tally.weight + rest.weight,
        };
        if self.len == 0 {
            self.reset()?;
        }
        Ok(())
    }

    /// Bytes of consumed records still at the front of the file.
    pub fn consumed_bytes(&self) -> u64 {
        self.offset
    }

    /// Moves the waiting records to the front of a new file (as
    /// [`Spool::rewrite_front`] with no head) once at least `min_consumed`
    /// bytes of consumed records precede them and the waiting ones are at
    /// most a quarter of that and at most `max_waiting` bytes, so the copy
    /// is short and costs little next to what it frees. For an owner that commits as it goes and so seldom sees the
    /// spool empty (the cut to zero of invariant 5). Returns how the marks
    /// it holds carry over (`None`: nothing was done).
    pub fn compact(
        &mut self,
        min_consumed: u64,
        max_waiting: u64,
    ) -> Result<Option<Rebase>, SpoolError> {
        if self.offset < min_consumed.max(1)
            || self.is_empty()
            || self.bytes() > max_waiting.min(self.offset / 4)
        {
            return Ok(None);
        }
        let (from, shift, base) = (self.generation, self.offset, self.committed);
        self.rewrite_front(std::iter::empty(), None)?;
        Ok(Some(Rebase {
            from,
            to: self.generation,
            shift,
            base,
        }))
    }

    /// Everything is consumed: the file starts again from nothing.
    fn reset(&mut self) -> Result<(), SpoolError> {
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.generation += 1;
        self.offset = 0;
        self.len = 0;
        self.appended = Tally::default();
        self.committed = Tally::default();
        self.write_offset()
    }

    /// Always the same 20 digits at the start of the file: one write of a
    /// few bytes inside one block, which a kill cannot tear.
    fn write_offset(&mut self) -> Result<(), SpoolError> {
        let io = |source| SpoolError::Io {
            path: self.offset_path.clone(),
            source,
        };
        let text = format!("{:020}", self.offset);
        let f = &mut self.offset_file;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        // An offset file of an earlier version may be shorter or longer.
        if f.metadata().map_err(io)?.len() != text.len() as u64 {
            f.set_len(text.len() as u64).map_err(io)?;
        }
        Ok(())
    }
}

/// The waiting records of a spool as they were at one moment, read without
/// the spool: for an owner that reads outside its lock while appends go on
/// (they land past the end this saw). Its marks stay good until the owner
/// commits past them, compacts or rewrites the spool.
#[derive(Debug, Clone)]
pub struct Snapshot<T> {
    path: PathBuf,
    offset: u64,
    committed: Tally,
    len: u64,
    generation: u64,
    records: PhantomData<fn() -> T>,
}

impl<T: Record> Snapshot<T> {
    fn io(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// [`Spool::front`] as it was when the snapshot was taken.
    pub fn front(&self, max_weight: usize) -> Result<Front<T>, SpoolError> {
        let mut weight = 0;
        let read = self.read(self.offset, self.committed, |r| {
            let more = weight < max_weight;
            if more {
                weight += r.weight();
            }
            more
        })?;
        let mark = read.last().map_or(
            Mark {
                generation: self.generation,
                end: self.offset,
                tally: self.committed,
            },
            |(_, m)| *m,
        );
        Ok(Front {
            records: read.into_iter().map(|(r, _)| r).collect(),
            weight,
            mark,
        })
    }

    /// Reads whole lines from `from` while `take` says so (it sees each
    /// record before it is kept). Stops at a line without its newline.
    fn read(
        &self,
        from: u64,
        mut tally: Tally,
        mut take: impl FnMut(&T) -> bool,
    ) -> Result<Vec<(T, Mark)>, SpoolError> {
        let mut reader = BufReader::new(File::open(&self.path).map_err(|e| self.io(e))?);
        reader.seek(SeekFrom::Start(from)).map_err(|e| self.io(e))?;
        let mut out = Vec::new();
        let mut at = from;
        let mut line = Vec::new();
        while at < self.len {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.io(e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            let record: T =
                serde_json::from_slice(&line).map_err(|source| SpoolError::Corrupt {
                    path: self.path.clone(),
                    offset: at,
                    source,
                })?;
            if !take(&record) {
                break;
            }
            at += n as u64;
            tally.add(record.weight());
            out.push((
                record,
                Mark {
                    generation: self.generation,
                    end: at,
                    tally,
                },
            ));
        }
        Ok(out)
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
}

fn rewrite_path(path: &Path) -> PathBuf {
    path.with_extension("jsonl.new")
}
