//! The link itself: tokio-modbus's `Client` over a byte stream with our
//! framing — drain before each request, the request gap, the scan.

use super::*;
use std::fmt::Debug;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::time::Instant;
use tokio_modbus::client::Client;
use tokio_modbus::slave::{Slave, SlaveContext};
use tokio_modbus::{Request, Response};
use tracing::{debug, trace};

/// Counters over the link's life.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counters {
    pub(super) skipped_frames: u64,
    pub(super) skipped_bytes: u64,
    pub(super) heartbeats: u64,
}

/// The client behind [`attach`].
#[derive(Debug)]
pub(super) struct Link {
    /// `None` after [`Client::disconnect`].
    pub(super) stream: Option<Box<dyn Stream>>,
    pub(super) framing: LinkFraming,
    pub(super) request_gap: Duration,
    pub(super) heartbeat: Arc<[u8]>,
    pub(super) unit: u8,
    /// MBAP transaction id of the last request.
    pub(super) transaction: u16,
    /// Received bytes not yet consumed.
    pub(super) buf: Vec<u8>,
    /// When the last byte was received or sent.
    pub(super) last_activity: Instant,
    /// A request write was cut off (the call was dropped mid-write).
    pub(super) write_cut: bool,
    pub(super) counters: Counters,
}

impl Link {
    pub(super) fn new(stream: Box<dyn Stream>, opts: LinkOptions) -> Link {
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

    pub(super) fn stream(&mut self) -> io::Result<&mut Box<dyn Stream>> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "link disconnected"))
    }

    /// Drops the first `n` buffered bytes, counting and logging what they were.
    pub(super) fn skip(&mut self, n: usize, stage: &'static str) {
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
    pub(super) async fn take_ready(&mut self) -> io::Result<()> {
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
    pub(super) async fn read_more(&mut self) -> io::Result<()> {
        let mut tmp = [0u8; 512];
        let n = self.stream()?.read(&mut tmp).await?;
        self.received(&tmp, n)
    }

    pub(super) fn received(&mut self, tmp: &[u8], n: usize) -> io::Result<()> {
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
    pub(super) async fn quiet_line(&mut self) -> io::Result<()> {
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

    pub(super) async fn send(&mut self, frame: &[u8]) -> io::Result<()> {
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
    pub(super) async fn reply(
        &mut self,
        m: &impl Matcher,
        expect: Expect,
    ) -> tokio_modbus::Result<Response> {
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

    pub(super) async fn call(&mut self, request: Request<'_>) -> tokio_modbus::Result<Response> {
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
