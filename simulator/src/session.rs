//! One Modbus byte stream served from start to end, whatever carries it: an
//! accepted TCP connection, a serial line, a dial-in link. Requests are
//! served in order from a buffer that may hold partial or several frames.

use crate::fault::EndpointFault;
use crate::frame::{self, exception_pdu, Framing, Parse, PduError};
use crate::{stray, Shared};
use bytes::{Buf, BytesMut};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// How long a resynchronising stream waits, with bytes that form no frame
/// yet, before it calls them noise and starts dropping them.
const QUIET: Duration = Duration::from_millis(50);

/// How a stream is served.
#[derive(Default)]
pub(crate) struct Options<'a> {
    /// A stream that lives on after garbage (serial line, dial-in link):
    /// RTU requests resynchronise instead of closing the stream.
    pub resync: bool,
    /// Bytes written between frames, every so often (a DTU's heartbeat).
    pub heartbeat: Option<(&'a [u8], Duration)>,
    /// Ends the session with [`End::Reconnect`] when a reconnect is asked
    /// for (dial-in); the value says whether to leave the old link half-open.
    pub reconnect: Option<watch::Receiver<bool>>,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// End of stream or an I/O error.
    Closed,
    /// A request no device could make sense of (no resynchronisation).
    Malformed,
    /// Fault `drop`: a request arrived.
    Dropped,
    /// Fault `refuse` was set.
    Refused,
    /// A reconnect was asked for (dial-in).
    Reconnect { half_open: bool },
    /// The farm shuts down.
    Shutdown,
}

async fn tick(t: &mut Option<tokio::time::Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The next reconnect request (`None`: the sender is gone).
async fn reconnect_asked(r: &mut Option<watch::Receiver<bool>>) -> Option<bool> {
    match r {
        Some(r) => match r.changed().await {
            Ok(()) => Some(*r.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Serves `io` for endpoint `index` until one of [`End`] happens.
pub(crate) async fn run<S>(shared: &Shared, index: usize, io: &mut S, opts: Options<'_>) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let endpoint = &shared.endpoints[index];
    let mut fault = endpoint.fault.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut buf = BytesMut::with_capacity(512);
    let mut out = Vec::with_capacity(512);
    let mut rng = fastrand::Rng::new();
    // Resynchronising: the line went quiet with bytes that form no frame.
    let mut quiet = false;
    let mut reconnect = opts.reconnect;
    let mut heartbeat = opts.heartbeat.map(|(_, every)| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    loop {
        if *shutdown.borrow_and_update() {
            return End::Shutdown;
        }
        if matches!(*fault.borrow_and_update(), Some(EndpointFault::Refuse)) {
            return End::Refused;
        }
        loop {
            let parsed = if opts.resync {
                frame::parse_stream(shared.framing, &buf)
            } else {
                frame::parse(shared.framing, &buf)
            };
            match parsed {
                Parse::Incomplete if quiet && !buf.is_empty() => buf.advance(1),
                Parse::Incomplete => break,
                Parse::Garbage(n) => {
                    tracing::debug!(endpoint = index, bytes = n, "skipping noise");
                    buf.advance(n);
                }
                Parse::Malformed(why) => {
                    tracing::debug!(endpoint = index, why, "malformed request, closing");
                    return End::Malformed;
                }
                Parse::Frame(f, used) => {
                    buf.advance(used);
                    if let Err(end) =
                        serve(shared, index, &f, io, &mut out, &mut rng, &mut shutdown).await
                    {
                        return end;
                    }
                }
            }
        }
        quiet = false;
        let wait_quiet = opts.resync && !buf.is_empty();
        tokio::select! {
            r = io.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => return End::Closed,
                Ok(_) => {}
            },
            r = fault.changed() => if r.is_err() { return End::Shutdown },
            r = shutdown.changed() => if r.is_err() { return End::Shutdown },
            _ = tokio::time::sleep(QUIET), if wait_quiet => quiet = true,
            // Between frames by construction: replies are written whole
            // before this loop polls again.
            _ = tick(&mut heartbeat) => {
                let bytes = opts.heartbeat.map_or(&[][..], |(b, _)| b);
                if io.write_all(bytes).await.is_err() {
                    return End::Closed;
                }
            }
            r = reconnect_asked(&mut reconnect) => return match r {
                Some(half_open) => End::Reconnect { half_open },
                None => End::Shutdown,
            },
        }
    }
}

/// Answers one request (or not, as the faults say).
async fn serve<S>(
    shared: &Shared,
    index: usize,
    frame: &frame::Frame,
    io: &mut S,
    out: &mut Vec<u8>,
    rng: &mut fastrand::Rng,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), End>
where
    S: AsyncWrite + Unpin,
{
    let framing = shared.framing;
    let fault = *shared.endpoints[index].fault.borrow();
    let fc = frame.pdu[0];
    let pdu = match fault {
        Some(EndpointFault::Silent) => return Ok(()),
        Some(EndpointFault::Drop) => return Err(End::Dropped),
        Some(EndpointFault::Refuse) => return Err(End::Refused),
        Some(EndpointFault::Exception { code }) => exception_pdu(fc, code),
        _ => match reply(shared, index, framing, frame.unit, &frame.pdu) {
            Outcome::Reply(pdu) => pdu,
            Outcome::Nothing => return Ok(()),
            Outcome::Close => return Err(End::Malformed),
        },
    };
    if let Some(EndpointFault::Delay { ms }) = fault {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            _ = shutdown.wait_for(|s| *s) => return Err(End::Shutdown),
        }
    }
    if let Some(EndpointFault::StrayFrames { every, noise }) = fault {
        let n = shared.endpoints[index]
            .replies
            .fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(u64::from(every.max(1))) {
            out.clear();
            let turn = n / u64::from(every.max(1));
            let layout = shared.profiles.slc.layout;
            stray::append(turn, noise, layout, shared.slcs, rng, out);
            if io.write_all(out).await.is_err() {
                return Err(End::Closed);
            }
        }
    }
    out.clear();
    match fault {
        Some(EndpointFault::WrongTid) => {
            frame::encode(framing, frame.tid ^ 0x5A5A, frame.unit, &pdu, out);
            if framing == Framing::RtuOverTcp {
                let n = out.len();
                out[n - 1] ^= 0xFF;
            }
        }
        Some(EndpointFault::Garble) => {
            frame::encode(framing, frame.tid, frame.unit, &pdu, out);
            out.iter_mut().for_each(|b| *b = fastrand::u8(..));
            if framing == Framing::Tcp {
                // Garbage inside a consistent MBAP length with a bad
                // protocol id: clients see a broken frame at once
                // instead of waiting on a random length.
                let len = (out.len() - 6) as u16;
                out[4..6].copy_from_slice(&len.to_be_bytes());
                out[2] |= 0x80;
            }
        }
        _ => frame::encode(framing, frame.tid, frame.unit, &pdu, out),
    }
    if io.write_all(out).await.is_err() {
        return Err(End::Closed);
    }
    shared.requests.fetch_add(1, Ordering::Relaxed);
    shared.endpoints[index]
        .served
        .fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// What a request gets back from the device farm.
enum Outcome {
    Reply(Vec<u8>),
    /// The addressed unit is a dead node: nothing goes back.
    Nothing,
    /// Malformed beyond an exception: the connection is closed.
    Close,
}

/// The reply to a request on endpoint `index`.
fn reply(shared: &Shared, index: usize, framing: Framing, unit: u8, pdu: &[u8]) -> Outcome {
    let fc = pdu[0];
    // Modbus TCP clients often address "the device itself" as 0 or 255.
    let unit = match (framing, unit) {
        (Framing::Tcp, 0 | 255) => 1,
        _ => unit,
    };
    let decoded = frame::decode_request(pdu);
    let is_write = matches!(&decoded, Ok(r) if !matches!(r, frame::Request::Read { .. }));
    let (mut cab, now) = shared.cabinet(index, is_write);
    // A dead node answers nothing, not even a malformed request.
    if shared.profiles.no_answer(&cab, unit) {
        return Outcome::Nothing;
    }
    let request = match decoded {
        Ok(r) => r,
        Err(PduError::Exception(code)) => return Outcome::Reply(exception_pdu(fc, code)),
        Err(PduError::Malformed) => return Outcome::Close,
    };
    Outcome::Reply(match shared.profiles.serve(&mut cab, unit, &request, now) {
        Ok(words) => {
            let bits = matches!(
                request,
                frame::Request::Read { table, .. } if table.is_bit()
            );
            frame::reply_pdu(fc, pdu, &words, bits)
        }
        Err(code) => exception_pdu(fc, code),
    })
}
