//! Finding the answer in what arrived: every position tested, the rest
//! sorted (heartbeat, a whole foreign frame, loose bytes) and counted.

use super::*;
use std::fmt::Debug;

/// How the bytes at some offset relate to the awaited reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Candidate {
    /// Not the reply (or not its start).
    No,
    /// Agrees so far; more bytes are needed to decide.
    Partial,
    /// The complete reply, this many bytes long.
    Frame(usize),
}

/// One framing's rule for the awaited reply.
pub(super) trait Matcher {
    /// What the bytes at the start of `at` (non-empty) are to this reply.
    fn candidate(&self, at: &[u8]) -> Candidate;
    /// The PDU inside a frame that [`Matcher::candidate`] accepted.
    fn pdu<'f>(&self, frame: &'f [u8]) -> &'f [u8];
}

/// Where the reply is in the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scan {
    /// `buf[start..start + len]` is the reply; everything before it is not.
    Found { start: usize, len: usize },
    /// No reply yet; the first `skip` bytes can never become part of it.
    Pending { skip: usize },
}

/// Finds the reply in `buf`. Every offset is tried, so a reply is found after
/// any junk, and the earliest complete reply wins even over an earlier prefix
/// that might still grow into one (an exception right after bytes that looked
/// like the start of a long reply is not left waiting for bytes that will
/// never come).
pub(super) fn scan(buf: &[u8], m: &impl Matcher) -> Scan {
    let mut first_partial = None;
    for start in 0..buf.len() {
        match m.candidate(&buf[start..]) {
            Candidate::Frame(len) => return Scan::Found { start, len },
            Candidate::Partial => {
                first_partial.get_or_insert(start);
            }
            Candidate::No => {}
        }
    }
    Scan::Pending {
        skip: first_partial.unwrap_or(buf.len()),
    }
}

/// What skipped bytes were, for the counters and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Skipped {
    /// Whole well-formed frames that were not the reply.
    pub(super) frames: u64,
    /// Heartbeat packets.
    pub(super) heartbeats: u64,
    /// Bytes that were neither (noise, fragments).
    pub(super) bytes: u64,
}

/// Sorts bytes known not to hold the reply into heartbeats, whole frames and
/// loose bytes.
pub(super) fn sort_skipped(junk: &[u8], framing: LinkFraming, heartbeat: &[u8]) -> Skipped {
    let mut s = Skipped::default();
    let mut rest = junk;
    while !rest.is_empty() {
        let step = if !heartbeat.is_empty() && rest.starts_with(heartbeat) {
            s.heartbeats += 1;
            heartbeat.len()
        } else if let Some(n) = match framing {
            LinkFraming::Rtu => rtu::foreign_len(rest),
            LinkFraming::Mbap => mbap::foreign_len(rest),
        } {
            s.frames += 1;
            n
        } else {
            s.bytes += 1;
            1
        };
        rest = &rest[step..];
    }
    s
}
