//! Endpoints served over a serial device or pseudo-terminal (`--serial`):
//! RTU frames back to back on one stream that never "connects".
//!
//! The device is opened non-blocking (`O_NOCTTY`), set raw at 9600 baud 8N1
//! when it is a terminal, its stale input flushed, and driven through
//! tokio's `AsyncFd` (epoll), so a pty end made by `socat pty,raw,echo=0`
//! and a real RS-485 adapter behave alike. The request framer resynchronises
//! after garbage ([`crate::frame::parse_stream`]).
//!
//! Faults: `refuse` closes the device until cleared; `drop` closes it and
//! opens it again at once (what was buffered is lost); the others act as on
//! a socket. When reading fails (the other end of a pty went away) the
//! device is opened again, retrying every 200 ms until it is back.

use crate::fault::EndpointFault;
use crate::session::{self, End};
use crate::Shared;
use rustix::fs::{Mode, OFlags};
use rustix::termios::{self, ControlModes, OptionalActions, QueueSelector};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Line settings the simulator sets, and the inventory names.
pub(crate) const BAUD: u32 = 9600;
pub(crate) const LINE_OPTIONS: &str = "baud=9600&parity=N&data_bits=8&stop_bits=1";

const REOPEN: Duration = Duration::from_millis(200);

/// An open serial device or pty end.
pub(crate) struct Port {
    fd: AsyncFd<File>,
}

impl Port {
    pub fn open(path: &Path) -> io::Result<Port> {
        let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let file = File::from(rustix::fs::open(path, flags, Mode::empty())?);
        if termios::isatty(&file) {
            let mut t = termios::tcgetattr(&file)?;
            t.make_raw();
            t.control_modes |= ControlModes::CLOCAL | ControlModes::CREAD;
            t.control_modes -= ControlModes::CSTOPB | ControlModes::PARENB;
            t.set_speed(BAUD)?;
            termios::tcsetattr(&file, OptionalActions::Now, &t)?;
            // Whatever waited in the line before we listened is not for us.
            termios::tcflush(&file, QueueSelector::IFlush)?;
        }
        // SAFETY: the `AsyncFd` owns `file` from here on and never swaps it,
        // so the descriptor stays open and the same until the `AsyncFd` drops.
        let fd = unsafe { AsyncFd::register(file) }.map_err(io::Error::from)?;
        Ok(Port { fd })
    }
}

impl AsyncRead for Port {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| f.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Port {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|f| f.get_ref().write(data)) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Serves endpoint `index` on `path` until shutdown; `first` is the device
/// [`crate::Simulator::start`] opened to check the path.
pub(crate) async fn serve_endpoint(shared: Arc<Shared>, index: usize, path: PathBuf, first: Port) {
    let endpoint = &shared.endpoints[index];
    let mut fault = endpoint.fault.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut port = Some(first);
    let mut warned = false;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if matches!(*fault.borrow_and_update(), Some(EndpointFault::Refuse)) {
            port = None;
            tokio::select! {
                r = fault.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let mut p = match port.take() {
            Some(p) => p,
            None => match Port::open(&path) {
                Ok(p) => {
                    warned = false;
                    p
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(path = %path.display(), error = %e, "cannot open serial device, retrying");
                        warned = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(REOPEN) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            },
        };
        let opts = session::Options {
            resync: true,
            ..Default::default()
        };
        match session::run(&shared, index, &mut p, opts).await {
            End::Shutdown => return,
            End::Refused | End::Dropped | End::Malformed | End::Reconnect { .. } => {}
            End::Closed => {
                drop(p);
                tokio::select! {
                    _ = tokio::time::sleep(REOPEN) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}
