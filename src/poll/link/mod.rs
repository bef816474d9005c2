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

mod mbap;
mod rtu;
pub(crate) mod serial;

use std::fmt::Debug;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;
use tokio_modbus::client::{Client, Context};
use tokio_modbus::slave::{Slave, SlaveContext};
use tokio_modbus::{ExceptionCode, Request, Response};
use tracing::{debug, trace};

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

/// Bytes that may be skipped in one call before it gives up: far more than a
/// busy 9600-baud bus carries in a poll timeout, far less than a stream that
/// is not speaking Modbus at all produces.
const MAX_SKIPPED: usize = 4096;

/// What the reply to a request looks like, at the PDU level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// 01/02: function, byte count, packed bits.
    Bits { function: u8, bytes: u8 },
    /// 03/04: function, byte count, registers.
    Words { function: u8, bytes: u8 },
    /// 05/06/0F/10: function and two 16-bit fields repeating the request
    /// (address and value, or address and quantity).
    Echo { function: u8, a: u16, b: u16 },
}

impl Expect {
    fn function(self) -> u8 {
        match self {
            Expect::Bits { function, .. }
            | Expect::Words { function, .. }
            | Expect::Echo { function, .. } => function,
        }
    }

    /// The length of the reply PDU that starts `pdu` (non-empty, possibly
    /// incomplete) if what has arrived agrees with this expectation: the
    /// function or its exception, and the byte count or echoed fields as far
    /// as they are there. `None`: this is not the reply.
    fn shape(self, pdu: &[u8]) -> Option<usize> {
        let function = self.function();
        let first = *pdu.first()?;
        if first == function | 0x80 {
            return Some(2);
        }
        if first != function {
            return None;
        }
        match self {
            Expect::Bits { bytes, .. } | Expect::Words { bytes, .. } => match pdu.get(1) {
                Some(&count) if count != bytes => None,
                _ => Some(2 + usize::from(bytes)),
            },
            Expect::Echo { a, b, .. } => {
                let [a0, a1] = a.to_be_bytes();
                let [b0, b1] = b.to_be_bytes();
                let same = pdu[1..]
                    .iter()
                    .zip([a0, a1, b0, b1])
                    .all(|(&got, want)| got == want);
                same.then_some(5)
            }
        }
    }

    /// The answer in a complete reply PDU that [`Expect::shape`] accepted.
    fn decode(self, pdu: &[u8]) -> Result<Response, ExceptionCode> {
        if pdu[0] & 0x80 != 0 {
            return Err(ExceptionCode::new(pdu[1]));
        }
        Ok(match self {
            Expect::Bits { function, .. } => {
                // Whole bytes, as tokio-modbus gives them: Reader truncates.
                let bits = pdu[2..]
                    .iter()
                    .flat_map(|byte| (0..8).map(move |i| byte & (1 << i) != 0))
                    .collect();
                if function == 0x01 {
                    Response::ReadCoils(bits)
                } else {
                    Response::ReadDiscreteInputs(bits)
                }
            }
            Expect::Words { function, .. } => {
                let words = pdu[2..]
                    .chunks_exact(2)
                    .map(|w| u16::from_be_bytes([w[0], w[1]]))
                    .collect();
                if function == 0x03 {
                    Response::ReadHoldingRegisters(words)
                } else {
                    Response::ReadInputRegisters(words)
                }
            }
            Expect::Echo { function, a, b } => echoed(function, a, b),
        })
    }
}

/// The response a write's echo stands for (also what a broadcast write,
/// which nobody answers, reports).
fn echoed(function: u8, a: u16, b: u16) -> Response {
    match function {
        0x05 => Response::WriteSingleCoil(a, b == 0xFF00),
        0x06 => Response::WriteSingleRegister(a, b),
        0x0F => Response::WriteMultipleCoils(a, b),
        _ => Response::WriteMultipleRegisters(a, b),
    }
}

fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn quantity(n: usize, max: usize, what: &str) -> io::Result<u16> {
    if (1..=max).contains(&n) {
        // Fits: max is at most 2000.
        Ok(n as u16)
    } else {
        Err(invalid_input(format!("{n} {what}: 1 to {max} per request")))
    }
}

/// The request PDU and what its reply must look like. Only the functions the
/// gateway uses; anything else is refused before it reaches the bus.
fn encode(request: &Request<'_>) -> io::Result<(Vec<u8>, Expect)> {
    let read = |function: u8, addr: u16, n: u16, bytes: u16| {
        let mut pdu = vec![function];
        pdu.extend_from_slice(&addr.to_be_bytes());
        pdu.extend_from_slice(&n.to_be_bytes());
        // Fits: n is bounded so that bytes ≤ 250.
        let bytes = bytes as u8;
        let expect = if function <= 0x02 {
            Expect::Bits { function, bytes }
        } else {
            Expect::Words { function, bytes }
        };
        (pdu, expect)
    };
    let echo = |function: u8, a: u16, b: u16| {
        let mut pdu = vec![function];
        pdu.extend_from_slice(&a.to_be_bytes());
        pdu.extend_from_slice(&b.to_be_bytes());
        (pdu, Expect::Echo { function, a, b })
    };
    Ok(match request {
        Request::ReadCoils(addr, n) | Request::ReadDiscreteInputs(addr, n) => {
            let function = request.function_code().value();
            let n = quantity(usize::from(*n), 2000, "bits")?;
            read(function, *addr, n, n.div_ceil(8))
        }
        Request::ReadHoldingRegisters(addr, n) | Request::ReadInputRegisters(addr, n) => {
            let function = request.function_code().value();
            let n = quantity(usize::from(*n), 125, "registers")?;
            read(function, *addr, n, 2 * n)
        }
        Request::WriteSingleCoil(addr, on) => echo(0x05, *addr, if *on { 0xFF00 } else { 0 }),
        Request::WriteSingleRegister(addr, word) => echo(0x06, *addr, *word),
        Request::WriteMultipleCoils(addr, coils) => {
            let n = quantity(coils.len(), 1968, "coils")?;
            let (mut pdu, expect) = echo(0x0F, *addr, n);
            let mut packed = vec![0u8; usize::from(n.div_ceil(8))];
            for (i, _) in coils.iter().enumerate().filter(|(_, &on)| on) {
                packed[i / 8] |= 1 << (i % 8);
            }
            // Fits: at most 246 bytes.
            pdu.push(packed.len() as u8);
            pdu.extend_from_slice(&packed);
            (pdu, expect)
        }
        Request::WriteMultipleRegisters(addr, words) => {
            let n = quantity(words.len(), 123, "registers")?;
            let (mut pdu, expect) = echo(0x10, *addr, n);
            // Fits: at most 246 bytes.
            pdu.push((2 * n) as u8);
            for w in words.iter() {
                pdu.extend_from_slice(&w.to_be_bytes());
            }
            (pdu, expect)
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "Modbus function {:#04x} is not supported by this link",
                    other.function_code().value()
                ),
            ))
        }
    })
}

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

/// Counters over the link's life.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    skipped_frames: u64,
    skipped_bytes: u64,
    heartbeats: u64,
}

/// The client behind [`attach`].
#[derive(Debug)]
struct Link {
    /// `None` after [`Client::disconnect`].
    stream: Option<Box<dyn Stream>>,
    framing: LinkFraming,
    request_gap: Duration,
    heartbeat: Arc<[u8]>,
    unit: u8,
    /// MBAP transaction id of the last request.
    transaction: u16,
    /// Received bytes not yet consumed.
    buf: Vec<u8>,
    /// When the last byte was received or sent.
    last_activity: Instant,
    /// A request write was cut off (the call was dropped mid-write).
    write_cut: bool,
    counters: Counters,
}

impl Link {
    fn new(stream: Box<dyn Stream>, opts: LinkOptions) -> Link {
        Link {
            stream: Some(stream),
            framing: opts.framing,
            request_gap: opts.request_gap,
            heartbeat: opts.heartbeat.unwrap_or_else(|| Arc::from(&[][..])),
            unit: 1,
            transaction: 0,
            buf: Vec::with_capacity(2 * rtu::MAX_FRAME.max(mbap::MAX_FRAME)),
            // A link just opened counts as just used: a converter or DTU that
            // needs a gap between frames often needs it after opening too.
            last_activity: Instant::now(),
            write_cut: false,
            counters: Counters::default(),
        }
    }

    fn stream(&mut self) -> io::Result<&mut Box<dyn Stream>> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "link disconnected"))
    }

    /// Drops the first `n` buffered bytes, counting and logging what they were.
    fn skip(&mut self, n: usize, stage: &'static str) {
        if n == 0 {
            return;
        }
        let junk = &self.buf[..n];
        let s = sort_skipped(junk, self.framing, &self.heartbeat);
        trace!(stage, bytes = %hex::encode(junk), "link: skipped bytes");
        self.counters.skipped_frames += s.frames;
        self.counters.skipped_bytes += s.bytes;
        self.counters.heartbeats += s.heartbeats;
        debug!(
            stage,
            unit = self.unit,
            frames = s.frames,
            heartbeats = s.heartbeats,
            bytes = s.bytes,
            skipped_frames = self.counters.skipped_frames,
            skipped_bytes = self.counters.skipped_bytes,
            skipped_heartbeats = self.counters.heartbeats,
            "link: dropped what is not the awaited reply"
        );
        self.buf.drain(..n);
    }

    /// Moves every byte the stream has ready, without waiting, into the buffer.
    async fn take_ready(&mut self) -> io::Result<()> {
        // Bounded so that a stream that never stops cannot hold the call here.
        for _ in 0..64 {
            let mut tmp = [0u8; 512];
            let stream = self.stream()?;
            let ready = poll_fn(|cx| {
                let mut rb = ReadBuf::new(&mut tmp);
                match Pin::new(&mut **stream).poll_read(cx, &mut rb) {
                    Poll::Pending => Poll::Ready(None),
                    Poll::Ready(r) => Poll::Ready(Some(r.map(|()| rb.filled().len()))),
                }
            })
            .await;
            match ready {
                None => break,
                Some(r) => self.received(&tmp, r?)?,
            }
        }
        Ok(())
    }

    /// Waits for bytes and moves them into the buffer.
    async fn read_more(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 512];
        let n = self.stream()?.read(&mut tmp).await?;
        self.received(&tmp, n)
    }

    fn received(&mut self, tmp: &[u8], n: usize) -> io::Result<()> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "link closed by the other end",
            ));
        }
        self.buf.extend_from_slice(&tmp[..n]);
        self.last_activity = Instant::now();
        Ok(())
    }

    /// Before a request: throws away what is buffered or already readable
    /// (a late reply, heartbeats, other traffic), then waits until the line
    /// has been quiet for the request gap, throwing away whatever arrives
    /// meanwhile.
    async fn quiet_line(&mut self) -> io::Result<()> {
        loop {
            self.take_ready().await?;
            let stale = self.buf.len();
            self.skip(stale, "before the request");
            let due = self.last_activity + self.request_gap;
            if self.request_gap.is_zero() || Instant::now() >= due {
                return Ok(());
            }
            let mut tmp = [0u8; 512];
            let stream = self.stream()?;
            let arrived = tokio::select! {
                () = tokio::time::sleep_until(due) => None,
                r = stream.read(&mut tmp) => Some(r),
            };
            if let Some(r) = arrived {
                self.received(&tmp, r?)?;
            }
        }
    }

    async fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        trace!(unit = self.unit, frame = %hex::encode(frame), "link: request");
        self.write_cut = true;
        let stream = self.stream()?;
        stream.write_all(frame).await?;
        stream.flush().await?;
        self.write_cut = false;
        self.last_activity = Instant::now();
        Ok(())
    }

    /// Reads until the reply is found, skipping everything else.
    async fn reply(&mut self, m: &impl Matcher, expect: Expect) -> tokio_modbus::Result<Response> {
        let mut skipped = 0;
        loop {
            match scan(&self.buf, m) {
                Scan::Found { start, len } => {
                    self.skip(start, "before the reply");
                    let frame = &self.buf[..len];
                    trace!(unit = self.unit, frame = %hex::encode(frame), "link: reply");
                    let answer = expect.decode(m.pdu(frame));
                    self.buf.drain(..len);
                    return Ok(answer);
                }
                Scan::Pending { skip } => {
                    self.skip(skip, "awaiting the reply");
                    skipped += skip;
                    if skipped > MAX_SKIPPED {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "no reply from unit {} in {skipped} bytes received",
                                self.unit
                            ),
                        )
                        .into());
                    }
                }
            }
            self.read_more().await?;
        }
    }

    async fn call(&mut self, request: Request<'_>) -> tokio_modbus::Result<Response> {
        let (pdu, expect) = encode(&request)?;
        // Unit 0 on a serial bus is a broadcast: every unit acts, none answers.
        // (Modbus TCP devices do answer unit 0, so MBAP waits as usual.)
        let broadcast = match (self.framing, self.unit, expect) {
            (LinkFraming::Rtu, 0, Expect::Echo { function, a, b }) => Some(echoed(function, a, b)),
            (LinkFraming::Rtu, 0, _) => {
                return Err(invalid_input("a read cannot be broadcast to unit 0".into()).into())
            }
            _ => None,
        };
        self.stream()?;
        if self.write_cut && self.framing == LinkFraming::Mbap {
            // The device has the head of an ADU whose length says more is
            // coming: it would read our next request as the rest of it.
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "a request was cut off mid-write; the Modbus TCP stream is out of step",
            )
            .into());
        }
        self.quiet_line().await?;
        match self.framing {
            LinkFraming::Rtu => {
                self.send(&rtu::frame(self.unit, &pdu)).await?;
                if let Some(done) = broadcast {
                    // Nobody answers; the write is as done as it will ever be
                    // known to be. The request gap keeps the next request off
                    // the line while the units act on it.
                    return Ok(Ok(done));
                }
                let m = rtu::Reply {
                    unit: self.unit,
                    expect,
                };
                self.reply(&m, expect).await
            }
            LinkFraming::Mbap => {
                self.transaction = self.transaction.wrapping_add(1);
                let frame = mbap::frame(self.transaction, self.unit, &pdu);
                self.send(&frame).await?;
                let m = mbap::Reply {
                    transaction: self.transaction,
                    unit: self.unit,
                    expect,
                };
                self.reply(&m, expect).await
            }
        }
    }
}

impl SlaveContext for Link {
    fn set_slave(&mut self, slave: Slave) {
        self.unit = slave.0;
    }
}

#[async_trait::async_trait]
impl Client for Link {
    async fn call(&mut self, request: Request<'_>) -> tokio_modbus::Result<Response> {
        Link::call(self, request).await
    }

    async fn disconnect(&mut self) -> io::Result<()> {
        match self.stream.take() {
            Some(mut s) => s.shutdown().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use tokio::io::{duplex, DuplexStream};
    use tokio_modbus::client::{Reader, Writer};

    fn opts(framing: LinkFraming) -> LinkOptions {
        LinkOptions {
            framing,
            request_gap: Duration::ZERO,
            heartbeat: Some(Arc::from(&b"hb"[..])),
        }
    }

    /// A link on one end of an in-memory pipe, the unit's end beside it.
    fn pair(opts: LinkOptions, unit: u8) -> (Link, DuplexStream) {
        let (ours, theirs) = duplex(1024);
        let mut link = Link::new(Box::new(ours), opts);
        link.set_slave(Slave(unit));
        (link, theirs)
    }

    fn context(opts: LinkOptions, unit: u8) -> (Context, DuplexStream) {
        let (link, theirs) = pair(opts, unit);
        let link: Box<dyn Client> = Box::new(link);
        (Context::from(link), theirs)
    }

    /// Reads one request from the unit's end and checks it.
    async fn request(unit: &mut DuplexStream, want: &[u8]) {
        let mut got = vec![0; want.len()];
        unit.read_exact(&mut got).await.unwrap();
        assert_eq!(hex::encode(&got), hex::encode(want));
    }

    /// Plays a unit: for each (request, answer) pair, waits for the request
    /// and writes the answer.
    fn unit_task(
        mut unit: DuplexStream,
        script: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> tokio::task::JoinHandle<DuplexStream> {
        tokio::spawn(async move {
            for (req, answer) in script {
                request(&mut unit, &req).await;
                unit.write_all(&answer).await.unwrap();
            }
            unit
        })
    }

    fn read_req(unit: u8, function: u8, addr: u16, n: u16) -> Vec<u8> {
        let [a0, a1] = addr.to_be_bytes();
        let [n0, n1] = n.to_be_bytes();
        rtu::frame(unit, &[function, a0, a1, n0, n1])
    }

    fn words_reply(unit: u8, function: u8, words: &[u16]) -> Vec<u8> {
        let mut pdu = vec![function, (2 * words.len()) as u8];
        for w in words {
            pdu.extend_from_slice(&w.to_be_bytes());
        }
        rtu::frame(unit, &pdu)
    }

    /// The call, bounded so that a test that goes wrong fails instead of
    /// hanging (time is paused: the bound costs nothing).
    async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("the call did not finish")
    }

    #[tokio::test(start_paused = true)]
    async fn reads_of_each_table() {
        let (mut ctx, unit) = context(opts(LinkFraming::Rtu), 0x11);
        let script = vec![
            (
                read_req(0x11, 0x01, 0x0013, 19),
                rtu::frame(0x11, &[0x01, 3, 0xCD, 0x6B, 0x05]),
            ),
            (
                read_req(0x11, 0x02, 0x00C4, 3),
                rtu::frame(0x11, &[0x02, 1, 0b101]),
            ),
            (
                read_req(0x11, 0x03, 0x006B, 3),
                words_reply(0x11, 0x03, &[0x022B, 0x0000, 0x0064]),
            ),
            (
                read_req(0x11, 0x04, 0x0008, 1),
                words_reply(0x11, 0x04, &[0x000A]),
            ),
        ];
        let unit = unit_task(unit, script);
        let coils = within(ctx.read_coils(0x0013, 19)).await.unwrap().unwrap();
        let want: Vec<bool> = [0xCDu8, 0x6B, 0x05]
            .iter()
            .flat_map(|b| (0..8).map(move |i| b & (1 << i) != 0))
            .take(19)
            .collect();
        assert_eq!(coils, want);
        let inputs = within(ctx.read_discrete_inputs(0x00C4, 3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(inputs, [true, false, true]);
        let holding = within(ctx.read_holding_registers(0x006B, 3))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(holding, [0x022B, 0, 0x64]);
        let input = within(ctx.read_input_registers(0x0008, 1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(input, [10]);
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn writes_and_their_echoes() {
        let (mut ctx, unit) = context(opts(LinkFraming::Rtu), 3);
        let coil = rtu::frame(3, &[0x05, 0x00, 0xAC, 0xFF, 0x00]);
        let reg = rtu::frame(3, &[0x06, 0x00, 0x01, 0x00, 0x03]);
        // 10 coils 1,0,1,1,0,0,1,1, 1,0 → CD 01.
        let coils_req = rtu::frame(3, &[0x0F, 0x00, 0x13, 0x00, 0x0A, 2, 0xCD, 0x01]);
        let coils_echo = rtu::frame(3, &[0x0F, 0x00, 0x13, 0x00, 0x0A]);
        let regs_req = rtu::frame(
            3,
            &[0x10, 0x00, 0x01, 0x00, 0x02, 4, 0x00, 0x0A, 0x01, 0x02],
        );
        let regs_echo = rtu::frame(3, &[0x10, 0x00, 0x01, 0x00, 0x02]);
        let unit = unit_task(
            unit,
            vec![
                (coil.clone(), coil),
                (reg.clone(), reg),
                (coils_req, coils_echo),
                (regs_req, regs_echo),
            ],
        );
        within(ctx.write_single_coil(0x00AC, true))
            .await
            .unwrap()
            .unwrap();
        within(ctx.write_single_register(0x0001, 3))
            .await
            .unwrap()
            .unwrap();
        let bits = [
            true, false, true, true, false, false, true, true, true, false,
        ];
        within(ctx.write_multiple_coils(0x0013, &bits))
            .await
            .unwrap()
            .unwrap();
        within(ctx.write_multiple_registers(0x0001, &[0x000A, 0x0102]))
            .await
            .unwrap()
            .unwrap();
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_exception_is_the_devices_answer() {
        let (mut ctx, unit) = context(opts(LinkFraming::Rtu), 1);
        let unit = unit_task(
            unit,
            vec![(read_req(1, 0x03, 0x9000, 2), rtu::frame(1, &[0x83, 0x02]))],
        );
        let r = within(ctx.read_holding_registers(0x9000, 2)).await.unwrap();
        assert_eq!(r, Err(ExceptionCode::IllegalDataAddress));
        unit.await.unwrap();
    }

    /// Runs one read of unit 1's holding register 0 (n = 1) with `before`
    /// arriving ahead of the reply; returns the link for its counters.
    async fn read_after(before: Vec<u8>, opts: LinkOptions) -> Link {
        let (mut link, unit) = pair(opts, 1);
        let mut answer = before;
        answer.extend(words_reply(1, 0x03, &[0x1234]));
        let unit = unit_task(unit, vec![(read_req(1, 0x03, 0, 1), answer)]);
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
            .await
            .unwrap();
        assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![0x1234])));
        unit.await.unwrap();
        link
    }

    #[tokio::test(start_paused = true)]
    async fn a_valid_frame_of_another_unit_is_skipped() {
        let link = read_after(words_reply(2, 0x03, &[0xBEEF]), opts(LinkFraming::Rtu)).await;
        assert_eq!(link.counters.skipped_frames, 1);
        assert_eq!(link.counters.skipped_bytes, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn another_masters_request_to_the_same_unit_is_skipped() {
        // 01 03 00 00 00 0A C5 CD
        let link = read_after(read_req(1, 0x03, 0, 10), opts(LinkFraming::Rtu)).await;
        assert_eq!(link.counters.skipped_frames, 1);
        // Its address high byte equal to the byte count of our reply (2):
        // a reply prefix until the CRC over the reply's length disagrees.
        let link = read_after(read_req(1, 0x03, 0x0200, 1), opts(LinkFraming::Rtu)).await;
        assert_eq!(link.counters.skipped_frames, 1);
        // And the reply of that unit to that other master, too.
        let mut both = read_req(1, 0x03, 0, 10);
        both.extend(words_reply(1, 0x03, &[7; 10]));
        let link = read_after(both, opts(LinkFraming::Rtu)).await;
        assert_eq!(link.counters.skipped_frames, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broadcast_write_to_unit_0_is_skipped() {
        let broadcast = rtu::frame(
            0,
            &[0x10, 0x00, 0x00, 0x00, 0x02, 4, 0x07, 0xE9, 0x0C, 0x01],
        );
        let link = read_after(broadcast, opts(LinkFraming::Rtu)).await;
        assert_eq!(link.counters.skipped_frames, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn noise_is_skipped() {
        // Noise that starts like our reply (unit 1, function 3) included.
        let noise = vec![0x00, 0xFF, 0x01, 0x03, 0x02, 0x55, 0x01, 0x01, 0x03];
        let link = read_after(noise.clone(), opts(LinkFraming::Rtu)).await;
        assert_eq!(link.counters.skipped_bytes, noise.len() as u64);
        assert_eq!(link.counters.skipped_frames, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_before_and_between_frames_are_skipped() {
        let mut before = b"hb".to_vec();
        before.extend(words_reply(5, 0x03, &[1]));
        before.extend(b"hb");
        let link = read_after(before, opts(LinkFraming::Rtu)).await;
        assert_eq!(link.counters.heartbeats, 2);
        assert_eq!(link.counters.skipped_frames, 1);
        assert_eq!(link.counters.skipped_bytes, 0);
        // A heartbeat that was already waiting before the request.
        let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
        unit.write_all(b"hb").await.unwrap();
        let unit = unit_task(
            unit,
            vec![(read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[3]))],
        );
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
            .await
            .unwrap();
        assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![3])));
        assert_eq!(link.counters.heartbeats, 1);
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_in_pieces_is_put_together() {
        let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 1);
        let reply = words_reply(1, 0x03, &[1, 2, 3]);
        let unit = tokio::spawn(async move {
            request(&mut unit, &read_req(1, 0x03, 0, 3)).await;
            for b in reply {
                unit.write_all(&[b]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let r = within(ctx.read_holding_registers(0, 3)).await.unwrap();
        assert_eq!(r, Ok(vec![1, 2, 3]));
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_reply_after_a_timeout_does_not_answer_the_next_call() {
        // Late reply arriving after the next request went out.
        let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
        let first = tokio::time::timeout(
            Duration::from_millis(100),
            link.call(Request::ReadHoldingRegisters(0, 1)),
        )
        .await;
        assert!(first.is_err(), "the first call must time out");
        request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
        link.set_slave(Slave(2));
        let mut answers = words_reply(1, 0x03, &[0xDEAD]);
        answers.extend(words_reply(2, 0x03, &[0x0002]));
        let unit = unit_task(unit, vec![(read_req(2, 0x03, 0, 1), answers)]);
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
            .await
            .unwrap();
        assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![2])));
        assert_eq!(link.counters.skipped_frames, 1);
        unit.await.unwrap();

        // Late reply already waiting when the next call starts.
        let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
        let first = tokio::time::timeout(
            Duration::from_millis(100),
            link.call(Request::ReadHoldingRegisters(0, 1)),
        )
        .await;
        assert!(first.is_err(), "the first call must time out");
        request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
        unit.write_all(&words_reply(1, 0x03, &[0xDEAD]))
            .await
            .unwrap();
        link.set_slave(Slave(2));
        let unit = unit_task(
            unit,
            vec![(read_req(2, 0x03, 0, 1), words_reply(2, 0x03, &[0x0002]))],
        );
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
            .await
            .unwrap();
        assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![2])));
        assert_eq!(link.counters.skipped_frames, 1);
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_reply_of_the_same_request_is_thrown_away_before_the_next() {
        // Same unit, same request: only the pre-request drain tells the late
        // answer from the fresh one.
        let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
        let first = tokio::time::timeout(
            Duration::from_millis(100),
            link.call(Request::ReadHoldingRegisters(0, 1)),
        )
        .await;
        assert!(first.is_err(), "the first call must time out");
        request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
        unit.write_all(&words_reply(1, 0x03, &[0xDEAD]))
            .await
            .unwrap();
        let unit = unit_task(
            unit,
            vec![(read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[0x0001]))],
        );
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
            .await
            .unwrap();
        assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![1])));
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_duplicated_reply_is_not_the_next_calls_answer() {
        let (mut link, unit) = pair(opts(LinkFraming::Rtu), 1);
        let mut twice = words_reply(1, 0x03, &[1]);
        twice.extend(words_reply(1, 0x03, &[1]));
        let unit = unit_task(
            unit,
            vec![
                (read_req(1, 0x03, 0, 1), twice),
                (read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[2])),
            ],
        );
        for want in [1, 2] {
            let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
                .await
                .unwrap();
            assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![want])));
        }
        assert_eq!(link.counters.skipped_frames, 1);
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_cut_off_mid_reply_leaves_the_link_usable() {
        let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
        let reply = words_reply(1, 0x03, &[9, 9]);
        let first = tokio::time::timeout(Duration::from_millis(100), async {
            let call = link.call(Request::ReadHoldingRegisters(0, 2));
            let unit = async {
                request(&mut unit, &read_req(1, 0x03, 0, 2)).await;
                unit.write_all(&reply[..4]).await.unwrap();
                std::future::pending::<()>().await
            };
            tokio::select! { r = call => Some(r), () = unit => None }
        })
        .await;
        assert!(first.is_err(), "the first call must time out");
        // The rest of the cut-off reply arrives with the next one.
        let mut answers = reply[4..].to_vec();
        answers.extend(words_reply(1, 0x03, &[1, 2]));
        let unit = unit_task(unit, vec![(read_req(1, 0x03, 0, 2), answers)]);
        let r = within(link.call(Request::ReadHoldingRegisters(0, 2)))
            .await
            .unwrap();
        assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![1, 2])));
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_gap_is_kept() {
        let gap = Duration::from_millis(50);
        let mut o = opts(LinkFraming::Rtu);
        o.request_gap = gap;
        let (mut link, mut unit) = pair(o, 1);
        let t0 = Instant::now();
        let unit = tokio::spawn(async move {
            // A just-opened link waits one gap before its first request.
            request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
            assert!(Instant::now() >= t0 + gap, "{:?}", Instant::now() - t0);
            unit.write_all(&words_reply(1, 0x03, &[1])).await.unwrap();
            let t1 = Instant::now();
            // Traffic during the gap starts it again.
            tokio::time::sleep(Duration::from_millis(30)).await;
            unit.write_all(b"hb").await.unwrap();
            let t2 = Instant::now();
            request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
            assert!(Instant::now() >= t2 + gap, "{:?}", Instant::now() - t1);
            unit.write_all(&words_reply(1, 0x03, &[2])).await.unwrap();
        });
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
        assert_eq!(r.unwrap(), Ok(Response::ReadHoldingRegisters(vec![1])));
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
        assert_eq!(r.unwrap(), Ok(Response::ReadHoldingRegisters(vec![2])));
        unit.await.unwrap();
        assert_eq!(link.counters.heartbeats, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_gap_the_request_goes_at_once() {
        let (mut link, unit) = pair(opts(LinkFraming::Rtu), 1);
        let t0 = Instant::now();
        let unit = unit_task(
            unit,
            vec![(read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[1]))],
        );
        within(link.call(Request::ReadHoldingRegisters(0, 1)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(Instant::now(), t0);
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn too_much_junk_gives_up() {
        let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
        let unit = tokio::spawn(async move {
            request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
            for _ in 0..10 {
                if unit.write_all(&[0xAA; 512]).await.is_err() {
                    break;
                }
            }
            unit
        });
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
        match r {
            Err(tokio_modbus::Error::Transport(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}")
            }
            other => panic!("{other:?}"),
        }
        drop(unit.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_the_stream_is_a_transport_error() {
        let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 1);
        let unit = tokio::spawn(async move {
            request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
            unit.write_all(&[0x01, 0x03]).await.unwrap();
        });
        let r = within(ctx.read_holding_registers(0, 1)).await;
        match r {
            Err(tokio_modbus::Error::Transport(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof)
            }
            other => panic!("{other:?}"),
        }
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn other_functions_are_refused_before_the_bus() {
        let (mut ctx, _unit) = context(opts(LinkFraming::Rtu), 1);
        for r in [
            within(ctx.masked_write_register(0, 0xFF, 0)).await,
            within(ctx.call(Request::ReportServerId))
                .await
                .map(|_| Ok(())),
        ] {
            match r {
                Err(tokio_modbus::Error::Transport(e)) => {
                    assert_eq!(e.kind(), io::ErrorKind::Unsupported)
                }
                other => panic!("{other:?}"),
            }
        }
        let r = within(ctx.read_holding_registers(0, 126)).await;
        assert!(
            matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::InvalidInput)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_broadcast_write_is_not_answered() {
        let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 0);
        within(ctx.write_single_register(0x0002, 0x0102))
            .await
            .unwrap()
            .unwrap();
        request(&mut unit, &rtu::frame(0, &[0x06, 0x00, 0x02, 0x01, 0x02])).await;
        let r = within(ctx.read_holding_registers(0, 1)).await;
        assert!(
            matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::InvalidInput)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn disconnect_shuts_the_stream_down() {
        let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 1);
        ctx.disconnect().await.unwrap();
        let mut b = [0u8; 1];
        assert_eq!(unit.read(&mut b).await.unwrap(), 0);
        let r = within(ctx.read_holding_registers(0, 1)).await;
        assert!(
            matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::NotConnected)
        );
    }

    fn mbap_words(transaction: u16, unit: u8, function: u8, words: &[u16]) -> Vec<u8> {
        let mut pdu = vec![function, (2 * words.len()) as u8];
        for w in words {
            pdu.extend_from_slice(&w.to_be_bytes());
        }
        mbap::frame(transaction, unit, &pdu)
    }

    #[tokio::test(start_paused = true)]
    async fn mbap_reads_skip_other_transactions_and_heartbeats() {
        let mut o = opts(LinkFraming::Mbap);
        o.heartbeat = Some(Arc::from(&b"www.usr.cn"[..]));
        let (mut link, unit) = pair(o, 5);
        let req = |t: u16| mbap::frame(t, 5, &[0x04, 0x00, 0x10, 0x00, 0x02]);
        // 1: a clean answer. 2: the answer to an older transaction and a
        // heartbeat stuck to the front of the right one. 3: an exception.
        let mut second = mbap_words(1, 5, 0x04, &[0xAAAA, 0xBBBB]);
        second.extend(b"www.usr.cn");
        second.extend(mbap_words(2, 5, 0x04, &[3, 4]));
        let unit = unit_task(
            unit,
            vec![
                (req(1), mbap_words(1, 5, 0x04, &[1, 2])),
                (req(2), second),
                (req(3), mbap::frame(3, 5, &[0x84, 0x0B])),
            ],
        );
        let r = within(link.call(Request::ReadInputRegisters(0x10, 2))).await;
        assert_eq!(r.unwrap(), Ok(Response::ReadInputRegisters(vec![1, 2])));
        let r = within(link.call(Request::ReadInputRegisters(0x10, 2))).await;
        assert_eq!(r.unwrap(), Ok(Response::ReadInputRegisters(vec![3, 4])));
        assert_eq!(link.counters.skipped_frames, 1);
        assert_eq!(link.counters.heartbeats, 1);
        let r = within(link.call(Request::ReadInputRegisters(0x10, 2))).await;
        assert_eq!(r.unwrap(), Err(ExceptionCode::GatewayTargetDevice));
        unit.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn mbap_write_cut_off_mid_frame_fails_the_next_call() {
        // A pipe too small for the request, and nobody reading it.
        let (ours, _theirs) = duplex(4);
        let mut link = Link::new(Box::new(ours), opts(LinkFraming::Mbap));
        let words: Vec<u16> = (0..10).collect();
        let first = tokio::time::timeout(
            Duration::from_millis(100),
            link.call(Request::WriteMultipleRegisters(0, Cow::Borrowed(&words))),
        )
        .await;
        assert!(first.is_err(), "the write must block");
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
        assert!(
            matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::BrokenPipe)
        );
    }

    struct Rtu1(rtu::Reply);
    impl Matcher for Rtu1 {
        fn candidate(&self, at: &[u8]) -> Candidate {
            self.0.candidate(at)
        }
        fn pdu<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
            self.0.pdu(frame)
        }
    }

    #[test]
    fn scan_finds_an_exception_after_a_false_start() {
        let m = Rtu1(rtu::Reply {
            unit: 1,
            expect: Expect::Words {
                function: 0x03,
                bytes: 20,
            },
        });
        // 01 03 14 … looks like the start of a 25-byte reply; the exception
        // that follows must not wait for it to complete.
        let mut buf = vec![0x01, 0x03, 0x14, 0x00];
        let exception = rtu::frame(1, &[0x83, 0x04]);
        buf.extend(&exception);
        assert_eq!(scan(&buf, &m), Scan::Found { start: 4, len: 5 });
        assert_eq!(scan(&buf[..6], &m), Scan::Pending { skip: 0 });
        assert_eq!(scan(&[0xFF, 0xFE, 0x01], &m), Scan::Pending { skip: 2 });
        assert_eq!(scan(&[0xFF, 0xFE], &m), Scan::Pending { skip: 2 });
    }

    #[test]
    fn skipped_bytes_are_sorted() {
        let mut junk = b"hb".to_vec();
        junk.extend(rtu::frame(4, &[0x06, 0, 1, 0, 2]));
        junk.extend([0x00, 0x00]);
        junk.extend(b"hb");
        assert_eq!(
            sort_skipped(&junk, LinkFraming::Rtu, b"hb"),
            Skipped {
                frames: 1,
                heartbeats: 2,
                bytes: 2
            }
        );
        assert_eq!(
            sort_skipped(b"hb", LinkFraming::Rtu, b""),
            Skipped {
                frames: 0,
                heartbeats: 0,
                bytes: 2
            }
        );
    }

    #[test]
    fn requests_are_encoded_with_their_replies_shape() {
        let (pdu, e) = encode(&Request::ReadCoils(0x0013, 19)).unwrap();
        assert_eq!(pdu, [0x01, 0x00, 0x13, 0x00, 0x13]);
        assert_eq!(
            e,
            Expect::Bits {
                function: 1,
                bytes: 3
            }
        );
        let (_, e) = encode(&Request::ReadInputRegisters(0, 125)).unwrap();
        assert_eq!(
            e,
            Expect::Words {
                function: 4,
                bytes: 250
            }
        );
        let (pdu, e) = encode(&Request::WriteSingleCoil(0x00AC, false)).unwrap();
        assert_eq!(pdu, [0x05, 0x00, 0xAC, 0x00, 0x00]);
        assert_eq!(
            e,
            Expect::Echo {
                function: 5,
                a: 0xAC,
                b: 0
            }
        );
        for bad in [
            Request::ReadCoils(0, 0),
            Request::ReadDiscreteInputs(0, 2001),
            Request::ReadHoldingRegisters(0, 126),
            Request::WriteMultipleRegisters(0, Cow::Owned(vec![0; 124])),
            Request::WriteMultipleCoils(0, Cow::Owned(vec![])),
        ] {
            assert_eq!(
                encode(&bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
    }
}
