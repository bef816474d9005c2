//! The event outbox: events wait here, in order, until the broker has
//! acknowledged them (PUBACK). rumqttc drops unacknowledged publishes when a
//! clean session reconnects, so the outbox, not the client, is what carries
//! events across an outage.
//!
//! The outbox is the delivery state machine only; keeping events is the
//! durable spool's job ([`crate::queue::Spool`], in `spill_dir`), and the
//! spool is every event's first stop:
//!
//! - Every event is appended to the spool the moment it is queued (one write
//!   per batch of events, to the page cache; on the device too with
//!   `mqtt.fsync`), broker up or not, so a kill loses none that was queued.
//! - Up to `cap` of the oldest waiting events are also held in memory (the
//!   window), in spool order; past it they are on disk only and are read
//!   back into the window, in order, as it frees up.
//! - An event leaves the spool (its mark committed) only when the broker has
//!   acknowledged it and every one before it; a kill replays whatever was not
//!   (at least once: one acknowledged just before the kill comes again).
//! - Only when the spool cannot be written (a full disk) is an event held in
//!   memory alone, logged loudly; a clean stop then writes it ahead of the
//!   spool, so the next run delivers it first, in order.
//! - At start the spool is replayed first, in order. A torn last line (a kill
//!   in the middle of a write) loses that one write.
//! - The spool is compacted once its consumed front is large, as it seldom
//!   empties while events keep coming.

use crate::queue::{Mark, Record, Spool, SpoolError};

/// Consumed bytes at the front of the spool before it is compacted, and the
/// waiting bytes it copies at most.
const COMPACT_AT: u64 = 4 << 20;
const COMPACT_MAX_WAITING: u64 = 1 << 20;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: String,
    pub payload: String,
    /// Retained (a district's standing alarms); spool lines written before
    /// the field existed read as not retained.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain: bool,
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
    /// `mqtt.fsync`: every append is put on the device before `push` returns.
    fsync: bool,
    /// Consumed bytes past which the next compaction is tried.
    compact_at: u64,
    /// Events that went past the memory window, on disk only, since start.
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
            fsync: false,
            compact_at: COMPACT_AT,
            spilled_total: 0,
            spill_errors: 0,
        };
        outbox.refill();
        Ok(outbox)
    }

    /// `mqtt.fsync`: put every append on the device before `push` returns.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Queues an event behind every earlier one.
    pub fn push(&mut self, msg: Message) {
        self.push_all(vec![msg]);
    }

    /// Queues events behind every earlier one: appended to the spool first,
    /// in one write, then held in the window while it reaches the end of the
    /// spool and has room.
    pub fn push_all(&mut self, msgs: Vec<Message>) {
        if msgs.is_empty() {
            return;
        }
        match self.spool.append_each(&msgs) {
            Ok(marks) => {
                if self.fsync {
                    if let Err(e) = self.spool.sync() {
                        self.spill_errors += 1;
                        tracing::error!(error = %e, "cannot sync the MQTT spool (mqtt.fsync)");
                    }
                }
                for (msg, mark) in msgs.into_iter().zip(marks) {
                    if self.unread == 0 && self.memory.len() < self.cap {
                        // The window reaches the end of the spool: it goes
                        // straight into it, no need to read it back.
                        self.read_to = Some(mark);
                        self.remember(msg, Some(mark));
                    } else {
                        self.unread += 1;
                        self.spilled_total += 1;
                    }
                }
            }
            Err(e) => {
                // Keeping them in memory beats losing them; order holds only
                // if nothing is on disk past the window, so log loudly.
                self.spill_errors += 1;
                tracing::error!(error = %e, events = msgs.len(), "cannot spool events; keeping them in memory only");
                for msg in msgs {
                    self.remember(msg, None);
                }
            }
        }
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
            self.compact();
        }
        self.refill();
    }

    /// Cuts the consumed front off the spool once it is large, carrying the
    /// window's marks over.
    fn compact(&mut self) {
        if self.spool.consumed_bytes() < self.compact_at {
            return;
        }
        match self.spool.compact(self.compact_at, COMPACT_MAX_WAITING) {
            Ok(Some(rebase)) => {
                for e in &mut self.memory {
                    e.spooled = e.spooled.map(|m| rebase.mark(m));
                }
                self.read_to = self.read_to.map(|m| rebase.mark(m));
                self.compact_at = COMPACT_AT;
            }
            Ok(None) => {}
            Err(e) => {
                // The old file is still the spool; try again further on.
                self.spill_errors += 1;
                self.compact_at = self.spool.consumed_bytes() + COMPACT_AT;
                tracing::warn!(error = %e, "cannot compact the MQTT spool");
            }
        }
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

    /// Makes the spool say what the next run must deliver: what is still
    /// unsettled in memory, then the events past the window; returns how
    /// many wait. Every event is in the spool already unless its append
    /// failed or one in the window was settled out of order; only then is
    /// the front rewritten. Called at stop, after
    /// [`Outbox::requeue_in_flight`].
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
