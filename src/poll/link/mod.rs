//! Our own master-side Modbus framing, behind tokio-modbus's client API.
//!
//! tokio-modbus's RTU client ends a call on the first frame with a good CRC.
//! On an RS-485 bus that frame is often not the reply: another master's
//! traffic, a time-control module's broadcast to unit 0, the late reply of a
//! unit that timed out. 4G DTUs add heartbeat packets (`hb`, `www.usr.cn`)
//! between frames. Each of those made the call fail with a header or
//! function mismatch, and the poller then dropped the link and failed the
//! unit. This link instead scans the incoming bytes for the one frame that
//! answers the request — right unit, right function (or its exception), the
//! length the request implies, a good CRC (RTU) or transaction id (MBAP) —
//! and skips, counts and logs everything else.
//!
//! It implements [`tokio_modbus::client::Client`], so the poller keeps using
//! [`Context`] with its `Reader`/`Writer` methods.
//!
//! No call has a timeout of its own: the poller wraps each in
//! `tokio::time::timeout`. A call dropped half way leaves the link usable:
//! all state is in `Link`, and whatever the dropped call left unread is
//! thrown away before the next request is sent.
//!
//! Limits, by the nature of RTU: a late reply from the unit just asked, to
//! the same request, that arrives after the next request went out is taken
//! for that request's reply (nothing in an RTU frame tells them apart; the
//! request gap makes it unlikely). Heartbeat bytes are recognised between
//! frames, not inside one.

// Nothing outside the tests attaches a link until poll::connection does (the
// poller rewrite); then this can go.

mod client;
mod mbap;
mod pdu;
mod rtu;
mod scan;
pub(crate) mod serial;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_modbus::client::{Client, Context};

/// A byte stream a link runs over: TCP socket, serial port, a DTU's socket.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin + Debug {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + Debug> Stream for T {}

/// How a link frames requests and finds their replies.
#[derive(Debug, Clone)]
pub(crate) struct LinkOptions {
    pub(crate) framing: LinkFraming,
    /// Pause after the last byte seen on the link (received or sent) before
    /// sending a request: slow buses and RS-232/485 converters need the line
    /// quiet for a while. Zero means none.
    pub(crate) request_gap: Duration,
    /// A DTU's heartbeat bytes, dropped wherever they arrive between frames.
    pub(crate) heartbeat: Option<Arc<[u8]>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkFraming {
    /// Unit, PDU, CRC-16/MODBUS: serial lines and transparent DTUs/converters.
    Rtu,
    /// The Modbus TCP header, for DTUs that pass Modbus TCP.
    Mbap,
}

/// A tokio-modbus client context on a stream, with our framing. Requests go
/// to unit 1 until [`SlaveContext::set_slave`] says otherwise.
pub(crate) fn attach(stream: Box<dyn Stream>, opts: LinkOptions) -> Context {
    let link: Box<dyn Client> = Box::new(Link::new(stream, opts));
    Context::from(link)
}

use client::*;
use pdu::*;
use scan::*;

#[cfg(test)]
mod tests;
