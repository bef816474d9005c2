//! Dial-in DTUs: cellular data terminals behind carrier NAT that open a TCP
//! connection *to* the gateway, send their registration id, then pass Modbus
//! RTU frames through and send a heartbeat when idle. In the inventory such an
//! endpoint is `dtu:<id>`; its poller waits here for its DTU's connection.
//!
//! [`listener::serve`] accepts the connections and runs the registration
//! handshake; the [`Registry`] holds one [`Slot`] per configured id, from which
//! that endpoint's poller takes connections ([`Slot::next`],
//! [`Slot::try_next`]) and to which it reports them lost ([`Slot::lost`]).
//!
//! # The registration rule
//!
//! A new connection is read until `dialin.registration_timeout`. After every
//! read the bytes so far are judged (`handshake.rs`, `Registry::judge`):
//!
//! 1. With trailing CR, LF, NUL and spaces trimmed, they equal a configured
//!    id: that id registers at once — unless a longer configured id starts
//!    with them and nothing was trimmed, in which case a quiet period
//!    ([`QUIET`], 100 ms) is waited for more bytes first (`JN-CAB-004`
//!    against `JN-CAB-0042`); a quiet period without bytes registers it.
//! 2. They are a proper beginning of a configured id: read on.
//! 3. They begin with a configured id (the longest) followed by a separator
//!    (CR, LF, NUL, space) or by the configured heartbeat, as a DTU sends
//!    them in one segment: the id registers and what follows it in that read
//!    is dropped. Followed by a beginning of the heartbeat, the quiet period
//!    is waited first (the rest of the heartbeat may follow). An id followed
//!    by anything else (`A1X` when only `A1` is configured) is not that id.
//! 4. Anything else is refused: `too_long` past [`MAX_ID_LEN`] bytes,
//!    `unknown_id` otherwise; `timeout` when the timeout passes first,
//!    `closed` when the peer closes or the read fails.
//!
//! A refusal is logged at warn with the peer and the bytes (escaped, at most
//! 64 shown), counted in `lampgw_dialin_refused_total{reason}`, and the
//! connection closed. At most `dialin.max_pending_per_peer` unregistered
//! connections per peer IP address (and [`MAX_PENDING`] in all) are read at a
//! time; a further one is closed at once (`too_many_pending`). DTUs behind
//! one carrier NAT address share that limit: they retry on their own.
//!
//! # Invariants (each has a test in `tests.rs`)
//!
//! 1. One connection per id: a new registration replaces the previous
//!    connection, whether or not its poller has taken it. The replaced
//!    socket is shut down in both directions (the registry keeps a duplicate
//!    handle of the newest connection for this), so the old DTU side sees the
//!    close and a poller still holding the old stream reads EOF.
//! 2. Generations increase across the registry: a connection taken is always
//!    newer than the one taken before it; [`Slot::lost`] with an older
//!    generation than the newest changes nothing.
//! 3. [`Slot::lost`] shuts the connection down too: a poller that gives a
//!    connection up calls it, so the DTU sees the close and dials again.
//! 4. Every task is bounded: one handshake task per pending connection, each
//!    ended by the registration timeout or by cancellation; none per refused
//!    connection.
//! 5. Accepted sockets have TCP_NODELAY and keepalive (idle 60 s, probes
//!    every 10 s, 3 probes): a DTU gone without a FIN is noticed by the
//!    kernel within about 90 s of silence. The listening socket ([`bind`])
//!    queues [`listener::BACKLOG`] connections, so a whole district
//!    redialling at once is not dropped by the kernel.

pub mod config;
mod handshake;
pub mod listener;
pub mod metrics;
pub mod registry;
#[cfg(test)]
mod tests;

pub use config::{DialInSettings, Heartbeat};
pub use listener::{bind, serve};
pub use registry::{DtuConn, DtuStatus, Registry, Slot};

use std::time::Duration;

/// Registration ids are at most this many bytes; more bytes without an id
/// among them are refused (`too_long`).
pub const MAX_ID_LEN: usize = 64;

/// How long a registration that a longer id could still extend waits for
/// more bytes.
pub const QUIET: Duration = Duration::from_millis(100);

/// Unregistered connections read at a time, from all peers together.
pub const MAX_PENDING: usize = 4096;

/// Why a connection was closed without registering; the `reason` label of
/// `lampgw_dialin_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownId,
    TooLong,
    Timeout,
    Closed,
    TooManyPending,
}

impl Refusal {
    pub const ALL: [Refusal; 5] = [
        Refusal::UnknownId,
        Refusal::TooLong,
        Refusal::Timeout,
        Refusal::Closed,
        Refusal::TooManyPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownId => "unknown_id",
            Refusal::TooLong => "too_long",
            Refusal::Timeout => "timeout",
            Refusal::Closed => "closed",
            Refusal::TooManyPending => "too_many_pending",
        }
    }
}

/// Bytes as a log shows them: printable ASCII as is, the rest escaped
/// (`\r`, `\x00`), at most [`MAX_ID_LEN`] bytes and a count of the rest.
pub fn printable(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(MAX_ID_LEN)];
    let mut out = shown.escape_ascii().to_string();
    if bytes.len() > shown.len() {
        out.push_str(&format!("…(+{} bytes)", bytes.len() - shown.len()));
    }
    out
}
