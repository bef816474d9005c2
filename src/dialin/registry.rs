//! One slot per configured DTU id: the connection waiting for its poller, the
//! newest connection's status, and the handle that closes it when it is
//! replaced or lost.

use super::metrics::DialInStats;
use super::MAX_ID_LEN;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Shutdown, SocketAddr};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// A registered DTU connection, as its poller takes it.
#[derive(Debug)]
pub struct DtuConn {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Increases with every registration in the registry.
    pub generation: u64,
}

/// What the API shows of one configured DTU.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DtuStatus {
    pub id: String,
    /// A registered connection that has been neither replaced nor reported
    /// lost.
    pub connected: bool,
    /// `ip:port` of that connection, `None` while not connected.
    pub peer: Option<String>,
    pub connected_since: Option<DateTime<Utc>>,
}

/// Every configured dial-in id, in id order. Shared as `Arc<Registry>`
/// between the listener, the pollers, the API and the metrics.
#[derive(Debug)]
pub struct Registry {
    /// By id bytes: the handshake looks ids up by prefix.
    /// Grows when a reload adds `dtu:` endpoints (a slot is never removed:
    /// a DTU still dialling in is told apart from a stranger).
    slots: parking_lot::RwLock<BTreeMap<Vec<u8>, Arc<Slot>>>,
    heartbeat: Option<Arc<[u8]>>,
    generation: AtomicU64,
    stats: Arc<DialInStats>,
}

/// What the handshake makes of the bytes read so far (the rule in `mod.rs`).
#[derive(Debug)]
pub(crate) enum Judgement {
    Register(Arc<Slot>),
    /// Register unless more bytes come within the quiet period.
    RegisterIfQuiet(Arc<Slot>),
    ReadOn,
    Refuse(super::Refusal),
}

fn separator(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b'\0' | b' ')
}

impl Registry {
    pub fn new(
        ids: impl IntoIterator<Item = String>,
        heartbeat: Option<Arc<[u8]>>,
    ) -> Arc<Registry> {
        let stats = Arc::new(DialInStats::default());
        let slots = ids
            .into_iter()
            .map(|id| {
                if id.is_empty() || id.len() > MAX_ID_LEN {
                    tracing::warn!(id = %id, "dial-in id is empty or over {MAX_ID_LEN} bytes: it can never register");
                }
                (id.clone().into_bytes(), Arc::new(Slot::new(id, stats.clone())))
            })
            .collect();
        Arc::new(Registry {
            slots: parking_lot::RwLock::new(slots),
            heartbeat,
            generation: AtomicU64::new(0),
            stats,
        })
    }

    pub fn slot(&self, id: &str) -> Option<Arc<Slot>> {
        self.slots.read().get(id.as_bytes()).cloned()
    }

    /// Adds a slot for each id it does not have yet (a reload's new `dtu:`
    /// endpoints); returns how many were new.
    pub fn add(&self, ids: impl IntoIterator<Item = String>) -> usize {
        let mut slots = self.slots.write();
        let mut added = 0;
        for id in ids {
            if !slots.contains_key(id.as_bytes()) {
                let slot = Arc::new(Slot::new(id.clone(), self.stats.clone()));
                slots.insert(id.into_bytes(), slot);
                added += 1;
            }
        }
        added
    }

    /// Every configured id, in id order.
    pub fn status(&self) -> Vec<DtuStatus> {
        self.slots.read().values().map(|s| s.status()).collect()
    }

    /// The bytes the DTUs send when idle, for the Modbus framing to drop.
    pub fn heartbeat(&self) -> Option<Arc<[u8]>> {
        self.heartbeat.clone()
    }

    pub fn len(&self) -> usize {
        self.slots.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.read().is_empty()
    }

    /// DTUs connected now.
    pub fn connected(&self) -> usize {
        self.slots
            .read()
            .values()
            .filter(|s| s.inner.lock().open.is_some())
            .count()
    }

    pub fn stats(&self) -> &DialInStats {
        &self.stats
    }

    /// Shuts every connection down (at gateway stop, after the pollers).
    pub fn close_all(&self) {
        for slot in self.slots.read().values() {
            let mut inner = slot.inner.lock();
            inner.waiting = None;
            if let Some(open) = inner.open.take() {
                open.close();
            }
        }
    }

    /// A configured id of at most [`MAX_ID_LEN`] bytes.
    fn exact(&self, bytes: &[u8]) -> Option<Arc<Slot>> {
        if bytes.is_empty() || bytes.len() > MAX_ID_LEN {
            return None;
        }
        self.slots.read().get(bytes).cloned()
    }

    /// Some configured id is longer than `bytes` and starts with them.
    fn extends(&self, bytes: &[u8]) -> bool {
        self.slots
            .read()
            .range::<[u8], _>((Bound::Excluded(bytes), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(bytes))
    }

    /// The registration rule (module documentation of `dialin`).
    pub(crate) fn judge(&self, buf: &[u8]) -> Judgement {
        let end = buf
            .iter()
            .rposition(|&b| !separator(b))
            .map_or(0, |i| i + 1);
        let (trimmed, terminated) = (&buf[..end], end < buf.len());
        if let Some(slot) = self.exact(trimmed) {
            return if !terminated && self.extends(trimmed) {
                Judgement::RegisterIfQuiet(slot)
            } else {
                Judgement::Register(slot)
            };
        }
        if trimmed.is_empty() || self.extends(buf) {
            return if buf.len() > MAX_ID_LEN {
                Judgement::Refuse(super::Refusal::TooLong)
            } else {
                Judgement::ReadOn
            };
        }
        let heartbeat = self.heartbeat.as_deref();
        for len in (1..buf.len().min(MAX_ID_LEN + 1)).rev() {
            let Some(slot) = self.exact(&buf[..len]) else {
                continue;
            };
            let rest = &buf[len..];
            if separator(rest[0]) || heartbeat.is_some_and(|h| rest.starts_with(h)) {
                return Judgement::Register(slot);
            }
            if heartbeat.is_some_and(|h| h.starts_with(rest)) {
                return Judgement::RegisterIfQuiet(slot);
            }
        }
        Judgement::Refuse(if buf.len() > MAX_ID_LEN {
            super::Refusal::TooLong
        } else {
            super::Refusal::UnknownId
        })
    }

    /// Puts a registered connection in its slot, replacing (and shutting
    /// down) the one before. Returns its generation and whether a connection
    /// still open was replaced.
    pub(crate) fn register(&self, slot: &Slot, stream: TcpStream, peer: SocketAddr) -> (u64, bool) {
        // A second handle on the socket, so that a replacement or `lost` can
        // shut it down while the poller owns the stream.
        let closer = match socket2::SockRef::from(&stream).try_clone() {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(id = %slot.id, peer = %peer, error = %e,
                    "cannot keep a second handle on the DTU connection: a replacement closes it only when its poller drops it");
                None
            }
        };
        let (generation, replaced) = {
            let mut inner = slot.inner.lock();
            let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            // Dropping the untaken one closes it; a taken one is shut down.
            inner.waiting = None;
            let replaced = inner.open.take().map(Open::close).is_some();
            inner.open = Some(Open {
                generation,
                peer,
                since: Utc::now(),
                closer,
            });
            inner.waiting = Some(DtuConn {
                stream,
                peer,
                generation,
            });
            (generation, replaced)
        };
        slot.changed.notify_waiters();
        self.stats.registered(replaced);
        (generation, replaced)
    }
}

/// One configured DTU id: the newest registered connection until its poller
/// takes it, and that connection's status.
#[derive(Debug)]
pub struct Slot {
    id: String,
    inner: Mutex<SlotInner>,
    changed: Notify,
    stats: Arc<DialInStats>,
}

#[derive(Debug, Default)]
struct SlotInner {
    /// Registered, not taken yet: always the newest.
    waiting: Option<DtuConn>,
    /// The newest connection while it is neither replaced nor lost.
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    generation: u64,
    peer: SocketAddr,
    since: DateTime<Utc>,
    closer: Option<socket2::Socket>,
}

impl Open {
    /// Both directions shut down: the DTU sees the close, and a poller
    /// holding the stream reads EOF.
    fn close(self) {
        if let Some(s) = self.closer {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Slot {
    fn new(id: String, stats: Arc<DialInStats>) -> Self {
        Self {
            id,
            inner: Mutex::new(SlotInner::default()),
            changed: Notify::new(),
            stats,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits until a connection newer than the last one taken has registered,
    /// and takes it. Cancel-safe: a connection is taken only when this
    /// returns it. A poller that gives its connection up calls
    /// [`Slot::lost`] first: until then the registry keeps the socket open
    /// (its second handle) and the status says connected.
    pub async fn next(&self) -> DtuConn {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered from here on wakes us even before the first poll.
            notified.as_mut().enable();
            if let Some(conn) = self.try_next() {
                return conn;
            }
            notified.await;
        }
    }

    /// A replacement that registered since the last one taken, if any (a DTU
    /// reconnects after a cell handover: the new connection replaces the old
    /// one, which is already shut down).
    pub fn try_next(&self) -> Option<DtuConn> {
        self.inner.lock().waiting.take()
    }

    /// The poller saw this connection fail, or gives it up: it is shut down,
    /// and the status shows disconnected unless a newer one has come.
    pub fn lost(&self, generation: u64) {
        let mut inner = self.inner.lock();
        if inner
            .open
            .as_ref()
            .is_some_and(|o| o.generation == generation)
        {
            if inner
                .waiting
                .as_ref()
                .is_some_and(|w| w.generation == generation)
            {
                inner.waiting = None;
            }
            if let Some(open) = inner.open.take() {
                open.close();
            }
            self.stats.lost();
        }
    }

    pub fn status(&self) -> DtuStatus {
        let inner = self.inner.lock();
        let open = inner.open.as_ref();
        DtuStatus {
            id: self.id.clone(),
            connected: open.is_some(),
            peer: open.map(|o| o.peer.to_string()),
            connected_since: open.map(|o| o.since),
        }
    }
}
