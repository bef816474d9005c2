//! Recovery when a spool is opened: what is left to replay is counted, a
//! torn last line (a write a killed process did not finish) is cut, and a
//! whole line that is not a record (damaged on disk) is set aside with the
//! file while the readable records before and after it are kept.

use super::{open_append, rewrite_path, Record, Spool, SpoolError, Tally};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;

impl<T: Record> Spool<T> {
    /// Counts what is left to replay and cuts a torn last line (a write the
    /// process did not finish when it was killed). A whole line that is not a
    /// record (damaged on disk) is set aside with the file; the readable
    /// records before and after it stay in the spool.
    pub(super) fn recover(&mut self) -> Result<(), SpoolError> {
        let len = self.file.metadata().map_err(|e| self.io(e))?.len();
        if self.offset > len {
            self.offset = 0;
        }
        self.len = len;
        let scan = self.scan(self.offset)?;
        if let Some(first) = scan.bad.first() {
            if let Err(e) = self.set_aside(&scan, first) {
                // No room for the copy (a full disk): the whole file goes
                // aside, its records with it, rather than stop the start.
                let _ = fs::remove_file(rewrite_path(&self.path));
                self.set_all_aside(&e)?;
                return Ok(());
            }
        } else if scan.end < len {
            tracing::warn!(path = %self.path.display(), bytes = len - scan.end, "cutting a torn spool line");
            self.file.set_len(scan.end).map_err(|e| self.io(e))?;
            self.len = scan.end;
        }
        self.appended = scan.tally;
        self.committed = Tally::default();
        if self.offset == self.len {
            self.reset()?;
        }
        Ok(())
    }

    /// Every whole line from `from`, sorted into records and damaged lines.
    fn scan(&self, from: u64) -> Result<Scan, SpoolError> {
        let mut reader = BufReader::new(File::open(&self.path).map_err(|e| self.io(e))?);
        reader.seek(SeekFrom::Start(from)).map_err(|e| self.io(e))?;
        let mut scan = Scan {
            good: Vec::new(),
            bad: Vec::new(),
            end: from,
            tally: Tally::default(),
        };
        let mut line = Vec::new();
        while scan.end < self.len {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.io(e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            let range = (scan.end, scan.end + n as u64);
            match serde_json::from_slice::<T>(&line) {
                Ok(r) => {
                    scan.tally.add(r.weight());
                    scan.good.push(range);
                }
                Err(e) => scan.bad.push((range.0, e.to_string())),
            }
            scan.end = range.1;
        }
        Ok(scan)
    }

    /// Keeps the damaged file for an operator (`spool.jsonl.bad-<time>`) and
    /// makes the spool its readable records, from the committed offset. The
    /// offset is reset before the rename (as in `rewrite_front`): a crash in
    /// between replays the old file, which is set aside again.
    fn set_aside(&mut self, scan: &Scan, first: &(u64, String)) -> Result<(), SpoolError> {
        let tmp = rewrite_path(&self.path);
        let tmp_io = |source| SpoolError::Io {
            path: tmp.clone(),
            source,
        };
        let mut new = File::create(&tmp).map_err(tmp_io)?;
        let mut old = File::open(&self.path).map_err(|e| self.io(e))?;
        let mut kept = 0;
        for &(start, end) in &scan.good {
            old.seek(SeekFrom::Start(start)).map_err(|e| self.io(e))?;
            kept += std::io::copy(&mut (&mut old).take(end - start), &mut new).map_err(tmp_io)?;
        }
        new.sync_all().map_err(tmp_io)?;
        drop(new);
        let aside = self.aside_path();
        // A second name for the damaged file (nothing copied); a copy where
        // the filesystem has no links.
        fs::hard_link(&self.path, &aside)
            .or_else(|_| fs::copy(&self.path, &aside).map(|_| ()))
            .map_err(|source| SpoolError::Io {
                path: aside.clone(),
                source,
            })?;
        tracing::error!(
            path = %self.path.display(),
            offset = first.0,
            error = %first.1,
            bad_lines = scan.bad.len(),
            kept_records = scan.tally.records,
            kept_as = %aside.display(),
            "spool has lines that are not records; the file is set aside and its readable records kept"
        );
        self.offset = 0;
        self.write_offset()?;
        fs::rename(&tmp, &self.path).map_err(tmp_io)?;
        self.file = open_append(&self.path).map_err(|e| self.io(e))?;
        self.generation += 1;
        self.len = kept;
        Ok(())
    }

    /// Renames the damaged file aside (no space needed) and starts empty.
    fn set_all_aside(&mut self, why: &SpoolError) -> Result<(), SpoolError> {
        let aside = self.aside_path();
        tracing::error!(
            path = %self.path.display(),
            error = %why,
            kept_as = %aside.display(),
            "spool is damaged and cannot be repaired in place; set aside whole, its records are not replayed"
        );
        fs::rename(&self.path, &aside).map_err(|e| self.io(e))?;
        self.file = open_append(&self.path).map_err(|e| self.io(e))?;
        self.generation += 1;
        self.len = 0;
        self.reset()
    }

    fn aside_path(&self) -> PathBuf {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        self.path.with_extension(format!("jsonl.bad-{stamp}"))
    }
}

/// What opening found past the committed offset.
struct Scan {
    /// Byte ranges of whole lines that are records, in order.
    good: Vec<(u64, u64)>,
    /// Start and parse error of each whole line that is not.
    bad: Vec<(u64, String)>,
    /// End of the last whole line.
    end: u64,
    tally: Tally,
}
