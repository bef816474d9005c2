//! The accept loop: socket options, the per-peer limit on unregistered
//! connections, one bounded handshake task per pending connection.

use super::handshake::{self, Refused};
use super::{printable, DialInSettings, Refusal, Registry, MAX_PENDING};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Keepalive on accepted sockets: first probe after this much silence.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 3;

/// Pause after a failed accept (out of file descriptors, say), so the loop
/// does not spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// Pending TCP connections the kernel queues for `accept` (capped by
/// `net.core.somaxconn`). The standard library's 128 drops SYNs when a few
/// hundred DTUs redial at once (after a cellular outage or a gateway
/// restart), and each dropped one waits a second or more to retry.
pub const BACKLOG: u32 = 4096;

/// Binds the dial-in address with [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Accepts DTU connections until `cancel`; each must send its registration
/// id within `settings.registration_timeout` (the rule in `dialin`'s module
/// documentation). Pending handshakes are abandoned on cancel; registered
/// connections stay in the registry (`Registry::close_all` shuts them).
pub async fn serve(
    listener: TcpListener,
    registry: Arc<Registry>,
    settings: DialInSettings,
    cancel: CancellationToken,
) {
    let pending = Arc::new(Pending::default());
    let mut handshakes = JoinSet::new();
    let max_per_peer = settings.max_pending_per_peer.max(1);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Some(guard) = pending.admit(&registry, peer, max_per_peer, handshakes.len()) else {
                        refuse(&registry, peer, Refusal::TooManyPending, &[]);
                        continue;
                    };
                    tune(&stream, peer);
                    let deadline = Instant::now() + settings.registration_timeout;
                    let registry = registry.clone();
                    let cancel = cancel.clone();
                    handshakes.spawn(async move {
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            () = handle(stream, peer, &registry, deadline) => {}
                        }
                        drop(guard);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dial-in accept failed");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                    }
                }
            },
        }
    }
    handshakes.shutdown().await;
}

async fn handle(mut stream: TcpStream, peer: SocketAddr, registry: &Registry, deadline: Instant) {
    match handshake::register(&mut stream, registry, deadline).await {
        Ok(slot) => {
            let (generation, replaced) = registry.register(&slot, stream, peer);
            tracing::info!(id = slot.id(), peer = %peer, generation, replaced, "DTU registered");
        }
        Err(Refused { why, bytes }) => refuse(registry, peer, why, &bytes),
    }
}

/// Logs and counts a refusal; the caller drops (closes) the connection.
fn refuse(registry: &Registry, peer: SocketAddr, why: Refusal, bytes: &[u8]) {
    registry.stats().refused(why);
    tracing::warn!(peer = %peer, reason = why.as_str(), bytes = %printable(bytes),
        "dial-in connection refused");
}

/// TCP_NODELAY (Modbus frames are small and answered one at a time) and
/// keepalive (a DTU gone without a FIN is noticed).
fn tune(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(peer = %peer, error = %e, "cannot set TCP_NODELAY");
    }
    let keepalive = socket2::TcpKeepalive::new().with_time(KEEPALIVE_IDLE);
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "freebsd"
    ))]
    let keepalive = keepalive
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(peer = %peer, error = %e, "cannot set TCP keepalive");
    }
}

/// Unregistered connections per peer IP address.
#[derive(Debug, Default)]
struct Pending {
    by_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl Pending {
    /// A guard counting this connection as pending until dropped, or `None`
    /// when its address (or the listener) already has as many as allowed.
    fn admit(
        self: &Arc<Self>,
        registry: &Arc<Registry>,
        peer: SocketAddr,
        max_per_peer: u32,
        all: usize,
    ) -> Option<PendingGuard> {
        if all >= MAX_PENDING {
            return None;
        }
        let mut by_ip = self.by_ip.lock();
        let n = by_ip.entry(peer.ip()).or_insert(0);
        if *n >= max_per_peer {
            return None;
        }
        *n += 1;
        registry.stats().pending_started();
        Some(PendingGuard {
            pending: self.clone(),
            registry: registry.clone(),
            ip: peer.ip(),
        })
    }
}

#[derive(Debug)]
struct PendingGuard {
    pending: Arc<Pending>,
    registry: Arc<Registry>,
    ip: IpAddr,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut by_ip = self.pending.by_ip.lock();
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
        self.registry.stats().pending_ended();
    }
}
