//! The event outbox: events wait here, in order, until the broker has
//! acknowledged them (PUBACK). rumqttc drops unacknowledged publishes when a
//! clean session reconnects, so the outbox, not the client, is what carries
//! events across an outage.
//!
//! The outbox is the delivery state machine only; keeping events is the
//! durable spool's job ([`crate::queue::Spool`], in `spill_dir`):
//!
//! - Up to `cap` events wait in memory. Past it, each new event is appended to
//!   the spool at once (one write per event), and every later one too while
//!   the spool holds anything, so the spool is always the newest part of the
//!   queue and a kill loses none of what reached it.
//! - Spooled events are read back into memory (a window) as memory frees up;
//!   they leave the spool only when the broker has acknowledged them, so a
//!   kill replays them.
//! - At a clean stop, what is still unacknowledged in memory is written ahead
//!   of the spool, so the next run delivers it first, in order.
//! - At start the spool is replayed first, in order. A torn last line (a kill
//!   in the middle of a write) loses that one event.
//!
//! Still lost by a kill: events that were in memory only (under `cap`).

use crate::queue::{Mark, Record, Spool, SpoolError};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: String,
    pub payload: String,
}

impl Record for Message {}

/// Waiting → InFlight → Acked (or Dropped); InFlight goes back to Waiting on
/// a disconnect or when the client would not take it this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Waiting,
    /// Handed to the client; counts until its PUBACK or a disconnect.
    InFlight,
    Acked,
    /// Given up on (the client refuses it for good): it leaves the queue in
    /// its turn like an acknowledged one, so it cannot block what follows.
    Dropped,
}

impl Delivery {
    fn settled(self) -> bool {
        matches!(self, Delivery::Acked | Delivery::Dropped)
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    msg: Message,
    delivery: Delivery,
    /// Where it ends in the spool, when it is read from there; `None` for an
    /// event held in memory only.
    spooled: Option<Mark>,
}

#[derive(Debug)]
pub struct Outbox {
    /// Oldest first: events held in memory only, then the window of spooled
    /// ones, in spool order.
    memory: VecDeque<Entry>,
    cap: usize,
    spool: Spool<Message>,
    /// Mark of the newest spooled event in the window; spooled events past it
    /// are on disk only.
    read_to: Option<Mark>,
    /// Spooled events not in the window.
    unread: usize,
    next_id: u64,
    pub spilled_total: u64,
    pub spill_errors: u64,
}

impl Outbox {
    /// Opens the spool in `dir` (events a previous run left go out first).
    pub fn open(dir: &Path, cap: usize) -> Result<Outbox, SpoolError> {
        // A damaged line is set aside by the spool itself on open (queue/).
        let mut spool = Spool::open(dir)?;
        import_segments(dir, &mut spool)?;
        let mut outbox = Outbox {
            memory: VecDeque::new(),
            cap: cap.max(1),
            unread: spool.len(),
            spool,
            read_to: None,
            next_id: 0,
            spilled_total: 0,
            spill_errors: 0,
        };
        outbox.refill();
        Ok(outbox)
    }

    /// Queues an event behind every earlier one.
    pub fn push(&mut self, msg: Message) {
        let spilling = !self.spool.is_empty() || self.memory.len() >= self.cap;
        if spilling {
            match self.spool.append([&msg]) {
                Ok(mark) => {
                    self.spilled_total += 1;
                    if self.unread == 0 && self.memory.len() < self.cap {
                        // The window reaches the end of the spool: it goes
                        // straight into it, no need to read it back.
                        self.read_to = mark;
                        self.remember(msg, mark);
                    } else {
                        self.unread += 1;
                    }
                    return;
                }
                Err(e) => {
                    // Keeping it in memory past the bound beats losing it;
                    // order holds only if nothing is on disk yet, so log loudly.
                    self.spill_errors += 1;
                    tracing::error!(error = %e, "cannot spill event; keeping it in memory");
                }
            }
        }
        self.remember(msg, None);
    }

    fn remember(&mut self, msg: Message, spooled: Option<Mark>) {
        let id = self.next_id;
        self.next_id += 1;
        self.memory.push_back(Entry {
            id,
            msg,
            delivery: Delivery::Waiting,
            spooled,
        });
    }

    /// Reads the oldest spooled events past the window into memory while it
    /// is under half full.
    fn refill(&mut self) {
        while self.unread > 0 && self.memory.len() < self.cap.div_ceil(2) {
            let room = self.cap - self.memory.len();
            match self.spool.read_after(self.read_to, room) {
                Ok(read) if read.is_empty() => {
                    // Nothing past the window after all; trust the file.
                    self.unread = 0;
                }
                Ok(read) => {
                    self.unread = self.unread.saturating_sub(read.len());
                    for (msg, mark) in read {
                        self.read_to = Some(mark);
                        self.remember(msg, Some(mark));
                    }
                }
                Err(e) => {
                    self.spill_errors += 1;
                    tracing::error!(error = %e, "cannot read spilled events; they stay on disk");
                    return;
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

    /// The broker has the event: drop it (and every settled one before the
    /// first unsettled), and consume it from the spool if it came from there.
    pub fn acked(&mut self, id: u64) {
        self.settle(id, Delivery::Acked);
    }

    /// Gives up on an event the client refuses for good: it leaves the queue
    /// in its turn, as if acknowledged, so it never blocks the events behind
    /// it nor comes back in the next run. The caller logs and counts it.
    pub fn dropped(&mut self, id: u64) {
        self.settle(id, Delivery::Dropped);
    }

    fn settle(&mut self, id: u64, how: Delivery) {
        if let Some(e) = self.memory.iter_mut().find(|e| e.id == id) {
            e.delivery = how;
        }
        let mut consumed = None;
        while self.memory.front().is_some_and(|e| e.delivery.settled()) {
            let e = self.memory.pop_front().expect("front exists");
            consumed = e.spooled.or(consumed);
        }
        if let Some(mark) = consumed {
            if let Err(e) = self.spool.commit(mark) {
                // The events stay on disk and go again after a restart.
                self.spill_errors += 1;
                tracing::error!(error = %e, "cannot advance the MQTT spool");
            }
        }
        self.refill();
    }

    /// The client would not take it this time (its queue is full): it waits
    /// again, in its place. A message the client refuses for good must go to
    /// [`Outbox::dropped`] instead, or it comes back here forever.
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

    /// Events held in memory (spooled ones in the window included). Settled
    /// ones leave from the front, so this counts at most a few settled behind
    /// an unsettled one.
    pub fn in_memory(&self) -> usize {
        self.memory.len()
    }

    /// Events on disk only, past the window.
    pub fn spilled(&self) -> usize {
        self.unread
    }

    pub fn is_empty(&self) -> bool {
        self.memory.is_empty() && self.spool.is_empty()
    }

    /// Writes what is still unsettled in memory ahead of the spooled events
    /// past the window, so the next run delivers it first; returns how many.
    /// Called at stop, after [`Outbox::requeue_in_flight`].
    pub fn persist(&mut self) -> Result<usize, SpoolError> {
        let left: Vec<&Message> = self
            .memory
            .iter()
            .filter(|e| !e.delivery.settled())
            .map(|e| &e.msg)
            .collect();
        let n = left.len();
        // When memory is exactly the front of the spool, the spool already
        // says what the next run must send.
        let spool_is_exact = self
            .memory
            .iter()
            .all(|e| e.spooled.is_some() && !e.delivery.settled());
        if !spool_is_exact {
            self.spool.rewrite_front(left, self.read_to)?;
        }
        self.memory.clear();
        self.read_to = None;
        self.unread = self.spool.len();
        Ok(n)
    }
}

/// Moves spill segments of earlier versions (`<number>.jsonl`, oldest
/// first) to the front of the spool, so an upgrade loses no event. A line
/// that does not read (a torn end) is skipped with a warning.
fn import_segments(dir: &Path, spool: &mut Spool<Message>) -> Result<(), SpoolError> {
    let io = |source| SpoolError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut segments: Vec<(u64, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            segments.push((id, path));
        }
    }
    if segments.is_empty() {
        return Ok(());
    }
    segments.sort_unstable();
    let mut messages = Vec::new();
    for (_, path) in &segments {
        let file = File::open(path).map_err(io)?;
        for line in BufReader::new(file).lines() {
            match line
                .map_err(io)
                .map(|l| serde_json::from_str::<Message>(&l))
            {
                Ok(Ok(m)) => messages.push(m),
                Ok(Err(e)) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable spilled event");
                }
                Err(e) => return Err(e),
            }
        }
    }
    spool.rewrite_front(&messages, None)?;
    for (_, path) in &segments {
        fs::remove_file(path).map_err(io)?;
    }
    tracing::info!(events = messages.len(), dir = %dir.display(), "moved spilled events of an earlier version into the spool");
    Ok(())
}

#[cfg(test)]
mod tests;
