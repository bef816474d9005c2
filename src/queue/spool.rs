//! The append-only spool: batches the database could not take yet, one JSON
//! line each, replayed from a committed read offset. A restart continues from
//! that offset; rows written but not yet committed when the process died are
//! written again, which the tables' keys turn into no-ops.

use super::rows::Batch;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spool {path}: line at byte {offset} is not a batch: {source}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
}

pub struct Spool {
    path: PathBuf,
    offset_path: PathBuf,
    file: File,
    /// Bytes up to here are written to the database.
    offset: u64,
    len: u64,
    rows: usize,
}

/// Batches read from the front of the spool and where they end.
pub struct Front {
    pub batches: Vec<Batch>,
    pub end: u64,
    pub rows: usize,
}

impl Spool {
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SpoolError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        let path = dir.join("spool.jsonl");
        let offset_path = dir.join("spool.offset");
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let offset = match fs::read_to_string(&offset_path) {
            Ok(s) => s.trim().parse().unwrap_or(0),
            Err(_) => 0,
        };
        let mut spool = Spool {
            path,
            offset_path,
            file,
            offset,
            len: 0,
            rows: 0,
        };
        spool.recover()?;
        Ok(spool)
    }

    /// Counts what is left to replay and cuts a torn last line (a write the
    /// process did not finish when it was killed).
    fn recover(&mut self) -> Result<(), SpoolError> {
        let len = self.file.metadata().map_err(|e| self.io(e))?.len();
        if self.offset > len {
            self.offset = 0;
        }
        let mut reader = BufReader::new(File::open(&self.path).map_err(|e| self.io(e))?);
        reader
            .seek(SeekFrom::Start(self.offset))
            .map_err(|e| self.io(e))?;
        let mut at = self.offset;
        let mut good_end = self.offset;
        let mut rows = 0;
        let mut line = String::new();
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| self.io(e))?;
            if n == 0 {
                break;
            }
            if !line.ends_with('\n') {
                break;
            }
            let batch: Batch =
                serde_json::from_str(&line).map_err(|source| SpoolError::Corrupt {
                    path: self.path.clone(),
                    offset: at,
                    source,
                })?;
            rows += batch.rows();
            at += n as u64;
            good_end = at;
        }
        if good_end < len {
            tracing::warn!(path = %self.path.display(), bytes = len - good_end, "cutting a torn spool line");
            self.file.set_len(good_end).map_err(|e| self.io(e))?;
        }
        self.len = good_end;
        self.rows = rows;
        if self.offset == self.len {
            self.reset()?;
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> SpoolError {
        SpoolError::Io {
            path: self.path.clone(),
            source,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.offset == self.len
    }

    /// Rows waiting in the spool.
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn bytes(&self) -> u64 {
        self.len - self.offset
    }

    pub fn append<'a>(
        &mut self,
        batches: impl IntoIterator<Item = &'a Batch>,
    ) -> Result<(), SpoolError> {
        let mut buf = Vec::new();
        let mut rows = 0;
        for b in batches {
            serde_json::to_writer(&mut buf, b).expect("rows serialise");
            buf.push(b'\n');
            rows += b.rows();
        }
        if buf.is_empty() {
            return Ok(());
        }
        // One write per call, so a kill leaves at most one torn line.
        self.file.write_all(&buf).map_err(|e| self.io(e))?;
        self.len += buf.len() as u64;
        self.rows += rows;
        Ok(())
    }

    pub fn sync(&self) -> Result<(), SpoolError> {
        self.file.sync_data().map_err(|e| self.io(e))
    }

    /// Reads batches from the committed offset until `max_rows` rows.
    pub fn front(&self, max_rows: usize) -> Result<Front, SpoolError> {
        let mut reader = BufReader::new(File::open(&self.path).map_err(|e| self.io(e))?);
        reader
            .seek(SeekFrom::Start(self.offset))
            .map_err(|e| self.io(e))?;
        let mut front = Front {
            batches: Vec::new(),
            end: self.offset,
            rows: 0,
        };
        let mut line = String::new();
        while front.rows < max_rows && front.end < self.len {
            line.clear();
            let n = reader.read_line(&mut line).map_err(|e| self.io(e))?;
            if n == 0 {
                break;
            }
            let batch: Batch =
                serde_json::from_str(&line).map_err(|source| SpoolError::Corrupt {
                    path: self.path.clone(),
                    offset: front.end,
                    source,
                })?;
            front.rows += batch.rows();
            front.end += n as u64;
            front.batches.push(batch);
        }
        Ok(front)
    }

    /// Records that everything up to `end` is in the database.
    pub fn commit(&mut self, end: u64, rows: usize) -> Result<(), SpoolError> {
        self.offset = end.min(self.len);
        self.rows = self.rows.saturating_sub(rows);
        if self.offset == self.len {
            return self.reset();
        }
        self.write_offset()
    }

    fn reset(&mut self) -> Result<(), SpoolError> {
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.offset = 0;
        self.len = 0;
        self.rows = 0;
        self.write_offset()
    }

    fn write_offset(&self) -> Result<(), SpoolError> {
        let tmp = self.offset_path.with_extension("tmp");
        fs::write(&tmp, self.offset.to_string()).map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.offset_path).map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::TransitionRow;

    fn batch(t: i64) -> Batch {
        Batch {
            transitions: vec![TransitionRow {
                time_us: t,
                device_kind: "slc".into(),
                device_id: format!("S{t}"),
                district: "D01".into(),
                online: true,
                reason: None,
                detail: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn replays_in_order_across_reopen_and_cuts_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        s.append(&[batch(1), batch(2), batch(3)]).unwrap();
        let f = s.front(2).unwrap();
        assert_eq!(f.batches, vec![batch(1), batch(2)]);
        s.commit(f.end, f.rows).unwrap();
        drop(s);
        // A kill in the middle of a write leaves half a line.
        let mut raw = OpenOptions::new()
            .append(true)
            .open(dir.path().join("spool.jsonl"))
            .unwrap();
        raw.write_all(b"{\"transitions\":[{\"ti").unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        assert_eq!(s.rows(), 1);
        let f = s.front(10).unwrap();
        assert_eq!(f.batches, vec![batch(3)]);
        s.commit(f.end, f.rows).unwrap();
        assert!(s.is_empty());
        assert_eq!(
            fs::metadata(dir.path().join("spool.jsonl")).unwrap().len(),
            0
        );
    }
}
