//! The durable queue that is the first stop of both sinks: the store appends
//! every batch of rows to it the moment it takes it, the MQTT outbox every
//! event, before anything else depends on them; each consumes (commits) what
//! the database has committed or the broker acknowledged. It sits low in the
//! house and knows neither.
//!
//! A [`Spool`] is a folder with two files: `spool.jsonl`, one JSON record per
//! line, and `spool.offset`, the committed read offset in bytes. Records before
//! the offset have been consumed (written to the database, acknowledged by the
//! broker); the ones after it wait, oldest first.
//!
//! Invariants (each has a test in `tests.rs`):
//!
//! 1. One append is one `write` call. A process killed at any moment leaves
//!    every earlier append whole, and at most a torn last line.
//! 2. Opening cuts a torn last line (one without its newline), so a kill loses
//!    at most the record it was writing, never one before it.
//! 3. Records come out in the order they went in, across restarts.
//! 4. A record is consumed only by [`Spool::commit`], with the [`Mark`] a read
//!    returned; a restart replays from the last committed offset, so whatever
//!    was read but not committed comes again (at least once, never lost).
//! 5. When everything is consumed the file is cut to zero (compaction), and
//!    marks from before can no longer commit anything.
//! 6. [`Spool::rewrite_front`] replaces the waiting records with a given head
//!    and the records past a mark, in a new file renamed over the old one. The
//!    offset is reset before the rename, so a crash in between leaves the old
//!    file replayed from its start: records may come twice, none that was on
//!    disk is lost.
//! 7. An append that fails (a full disk takes part of the write) is cut back
//!    to the last whole line before the error is returned, so no later
//!    append is glued to a torn line.
//! 8. Opening never fails on a whole line that is not a record (damaged on
//!    disk): the file is kept as `spool.jsonl.bad-<time>`, an error logged,
//!    and the spool goes on with the readable records before and after it.
//! 9. [`Spool::append_each`] gives every record of one write its own mark.
//! 10. [`Spool::compact`] is a `rewrite_front` with no head (so invariant 6
//!     holds for it: a crash in between replays the old file from its start,
//!     twice, not lost), done only once the consumed bytes before the waiting
//!     records are many and the waiting ones few; the [`Rebase`] it returns
//!     carries the owner's marks over to the new file, the same records.
//! 11. A [`Snapshot`] reads what was waiting when it was taken, whatever is
//!     appended meanwhile, so an owner can read outside its lock.
//!
//! The page cache survives a process kill; a power cut can lose what the
//! kernel has not written yet unless the owner calls [`Spool::sync`].

mod spool;
#[cfg(test)]
mod tests;

pub use spool::{Front, Mark, Rebase, Record, Snapshot, Spool, SpoolError};
