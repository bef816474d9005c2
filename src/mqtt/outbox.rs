//! The event outbox: events wait here, in order, until the broker has
//! acknowledged them (PUBACK). rumqttc drops unacknowledged publishes when a
//! clean session reconnects, so the outbox, not the client, is what carries
//! events across an outage. Past `cap` events in memory, newer ones are
//! spilled to segment files and read back in order when memory frees up.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Events per spill file.
const SEGMENT_EVENTS: usize = 1000;
/// First segment id of a fresh spill folder; ids below it are left for
/// events written back at shutdown, which are older than any spilled one.
const FIRST_SEGMENT: u64 = 1 << 40;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: String,
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Waiting,
    /// Handed to the client; counts until its PUBACK or a disconnect.
    InFlight,
    Acked,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    msg: Message,
    delivery: Delivery,
}

#[derive(Debug, thiserror::Error)]
#[error("spill folder {path}: {source}")]
pub struct SpillError {
    path: String,
    #[source]
    source: std::io::Error,
}

pub struct Outbox {
    memory: VecDeque<Entry>,
    cap: usize,
    dir: PathBuf,
    /// Spilled segments on disk, oldest first, with their event counts; every
    /// one is newer than everything in `memory`.
    segments: VecDeque<(u64, usize)>,
    writer: Option<BufWriter<File>>,
    next_segment: u64,
    next_id: u64,
    pub spilled_total: u64,
    pub spill_errors: u64,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.jsonl"))
}

impl Outbox {
    /// Opens the spill folder, picking up segments a previous run left
    /// (those events are older than this run's and go out first).
    pub fn open(dir: &Path, cap: usize) -> Result<Outbox, SpillError> {
        let err = |source| SpillError {
            path: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(dir).map_err(err)?;
        let mut found: Vec<(u64, usize)> = Vec::new();
        for entry in fs::read_dir(dir).map_err(err)? {
            let path = entry.map_err(err)?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".jsonl"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(id) = id {
                let lines = BufReader::new(File::open(&path).map_err(err)?)
                    .lines()
                    .count();
                found.push((id, lines));
            }
        }
        found.sort_unstable();
        let next_segment = found.last().map_or(FIRST_SEGMENT, |(id, _)| id + 1);
        let mut outbox = Outbox {
            memory: VecDeque::new(),
            cap: cap.max(1),
            dir: dir.to_path_buf(),
            segments: found.into(),
            writer: None,
            next_segment,
            next_id: 0,
            spilled_total: 0,
            spill_errors: 0,
        };
        outbox.refill();
        Ok(outbox)
    }

    /// Queues an event behind every earlier one.
    pub fn push(&mut self, msg: Message) {
        let spilling = !self.segments.is_empty() || self.memory.len() >= self.cap;
        if spilling {
            match self.spill(&msg) {
                Ok(()) => return,
                Err(e) => {
                    // Keeping it in memory past the bound beats losing it;
                    // order holds only if nothing is on disk yet, so log loudly.
                    self.spill_errors += 1;
                    tracing::error!(error = %e, "cannot spill event; keeping it in memory");
                }
            }
        }
        self.remember(msg);
    }

    fn remember(&mut self, msg: Message) {
        let id = self.next_id;
        self.next_id += 1;
        self.memory.push_back(Entry {
            id,
            msg,
            delivery: Delivery::Waiting,
        });
    }

    fn spill(&mut self, msg: &Message) -> Result<(), SpillError> {
        let dir = self.dir.clone();
        let err = |source| SpillError {
            path: dir.display().to_string(),
            source,
        };
        let full = self
            .segments
            .back()
            .is_none_or(|(_, n)| *n >= SEGMENT_EVENTS);
        if full || self.writer.is_none() {
            if let Some(mut w) = self.writer.take() {
                w.flush().map_err(err)?;
            }
            if full {
                self.segments.push_back((self.next_segment, 0));
                self.next_segment += 1;
            }
            let id = self.segments.back().expect("just ensured").0;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.dir, id))
                .map_err(err)?;
            self.writer = Some(BufWriter::new(file));
        }
        let w = self.writer.as_mut().expect("just opened");
        serde_json::to_writer(&mut *w, msg).map_err(|e| err(e.into()))?;
        w.write_all(b"\n").map_err(err)?;
        self.segments.back_mut().expect("open segment").1 += 1;
        self.spilled_total += 1;
        Ok(())
    }

    /// Moves the oldest spilled segments back into memory while it has room.
    fn refill(&mut self) {
        while self.memory.len() < self.cap.div_ceil(2) {
            let Some(&(id, _)) = self.segments.front() else {
                return;
            };
            if self.segments.len() == 1 {
                if let Some(mut w) = self.writer.take() {
                    let _ = w.flush();
                }
            }
            let path = segment_path(&self.dir, id);
            let read = File::open(&path).and_then(|f| {
                BufReader::new(f)
                    .lines()
                    .map(|l| {
                        l.and_then(|l| {
                            serde_json::from_str::<Message>(&l).map_err(std::io::Error::other)
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            });
            match read {
                Ok(messages) => {
                    for m in messages {
                        self.remember(m);
                    }
                    // Only now are they safe in memory; a crash before this
                    // line would replay the segment, which QoS 1 allows.
                    let _ = fs::remove_file(&path);
                    self.segments.pop_front();
                }
                Err(e) => {
                    self.spill_errors += 1;
                    tracing::error!(path = %path.display(), error = %e, "cannot read spilled events; leaving the file for an operator");
                    self.segments.pop_front();
                }
            }
        }
    }

    /// The next event to hand to the client, marked in flight; its id comes
    /// back with [`Outbox::acked`].
    pub fn next_to_send(&mut self) -> Option<(u64, &Message)> {
        let e = self
            .memory
            .iter_mut()
            .find(|e| e.delivery == Delivery::Waiting)?;
        e.delivery = Delivery::InFlight;
        Some((e.id, &e.msg))
    }

    pub fn has_waiting(&self) -> bool {
        self.memory.iter().any(|e| e.delivery == Delivery::Waiting)
    }

    /// The broker has the event: drop it (and every acknowledged one before
    /// the first unacknowledged).
    pub fn acked(&mut self, id: u64) {
        if let Some(e) = self.memory.iter_mut().find(|e| e.id == id) {
            e.delivery = Delivery::Acked;
        }
        while self
            .memory
            .front()
            .is_some_and(|e| e.delivery == Delivery::Acked)
        {
            self.memory.pop_front();
        }
        self.refill();
    }

    /// The client would not take it: it waits again, in its place.
    pub fn unsend(&mut self, id: u64) {
        if let Some(e) = self.memory.iter_mut().find(|e| e.id == id) {
            e.delivery = Delivery::Waiting;
        }
    }

    /// The connection dropped: whatever was in flight goes again, in order.
    pub fn requeue_in_flight(&mut self) {
        for e in &mut self.memory {
            if e.delivery == Delivery::InFlight {
                e.delivery = Delivery::Waiting;
            }
        }
    }

    /// Events held in memory. Acknowledged ones leave from the front, so
    /// this counts at most a few acknowledged behind an unacknowledged one.
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// Events on disk.
    pub fn spilled(&self) -> usize {
        self.segments.iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.segments.is_empty()
    }

    /// Writes what is still unacknowledged in memory to a segment ahead of
    /// the spilled ones, so the next run delivers it first. Called at stop.
    pub fn persist(&mut self) -> Result<usize, SpillError> {
        let dir = self.dir.clone();
        let err = |source| SpillError {
            path: dir.display().to_string(),
            source,
        };
        if let Some(mut w) = self.writer.take() {
            w.flush().map_err(err)?;
        }
        let left: Vec<&Entry> = self
            .memory
            .iter()
            .filter(|e| e.delivery != Delivery::Acked)
            .collect();
        if left.is_empty() {
            return Ok(0);
        }
        let id = self
            .segments
            .front()
            .map_or(self.next_segment, |(id, _)| id - 1);
        let mut w = BufWriter::new(File::create(segment_path(&self.dir, id)).map_err(err)?);
        for e in &left {
            serde_json::to_writer(&mut w, &e.msg).map_err(|e| err(e.into()))?;
            w.write_all(b"\n").map_err(err)?;
        }
        w.flush().map_err(err)?;
        let n = left.len();
        self.memory.clear();
        self.segments.push_front((id, n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> Message {
        Message {
            topic: "t".into(),
            payload: i.to_string(),
        }
    }

    /// Sends everything the outbox holds, acknowledging each; returns payloads.
    fn drain(o: &mut Outbox) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((id, m)) = o.next_to_send() {
            out.push(m.payload.clone());
            o.acked(id);
        }
        out
    }

    #[test]
    fn spills_past_the_bound_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), 10).unwrap();
        for i in 0..2_500 {
            o.push(msg(i));
        }
        assert_eq!(o.in_memory(), 10);
        assert_eq!(o.spilled(), 2_490);
        assert_eq!(o.spilled_total, 2_490);
        let got = drain(&mut o);
        let want: Vec<String> = (0..2_500).map(|i| i.to_string()).collect();
        assert_eq!(got, want);
        assert!(o.is_empty());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "segments removed"
        );
    }

    #[test]
    fn in_flight_events_go_again_after_a_disconnect() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), 100).unwrap();
        for i in 0..5 {
            o.push(msg(i));
        }
        let a = o.next_to_send().unwrap().0;
        let _b = o.next_to_send().unwrap().0;
        let c = o.next_to_send().unwrap().0;
        o.acked(a);
        o.acked(c);
        o.requeue_in_flight();
        assert_eq!(drain(&mut o), ["1", "3", "4"]);
    }

    #[test]
    fn a_stopped_outbox_resumes_in_order_in_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), 3).unwrap();
        for i in 0..8 {
            o.push(msg(i));
        }
        let first = o.next_to_send().unwrap().0;
        o.acked(first);
        assert_eq!(o.persist().unwrap(), 2);
        drop(o);
        let mut o = Outbox::open(dir.path(), 3).unwrap();
        o.push(msg(8));
        let want: Vec<String> = (1..9).map(|i| i.to_string()).collect();
        assert_eq!(drain(&mut o), want);
    }
}
