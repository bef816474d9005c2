//! Dial-in endpoints (`--dial-in HOST:PORT`): each endpoint behaves like a
//! 4G DTU (数据传输单元) in front of its cabinet. It connects out to the
//! gateway, sends its registration packet first — the ASCII bytes of its
//! cabinet id (`CAB-0001`, exactly as the emitted inventory has it), no
//! terminator, in one write — then passes Modbus frames transparently (RTU
//! by default, MBAP with `tcp` framing) and writes its heartbeat every
//! `heartbeat_interval`, only between frames. When the connection drops, is
//! refused or cannot be made, it dials again after a capped, jittered
//! backoff (0.5 s doubling to 10 s by default, ±25 %; back to the first step
//! once a connection has served a request).
//!
//! Endpoint faults on a dial-in link: `refuse` closes the link and stays
//! disconnected until cleared; `drop` closes the link when a request
//! arrives (the DTU then dials again); `silent`, `delay`, `exception`,
//! `garble`, `wrong_tid` and (RTU) `stray_frames` act on the replies as
//! anywhere else, while the heartbeat goes on. A forced reconnect
//! ([`crate::Simulator::reconnect_endpoint`]) closes the link and dials at
//! once; the half-open variant dials while leaving the old socket open and
//! unserved, as a DTU whose radio link died without a FIN would.

use crate::fault::EndpointFault;
use crate::frame::Framing;
use crate::session::{self, End};
use crate::{inventory, Place, Shared};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How dial-in endpoints reach the gateway ([`crate::Link::DialIn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialIn {
    /// The gateway's dial-in listener, `host:port`.
    pub server: String,
    /// The heartbeat packet; empty = none. See [`parse_heartbeat`].
    pub heartbeat: Vec<u8>,
    /// Time between heartbeats; zero = none.
    pub heartbeat_interval: Duration,
    /// First reconnect wait; it doubles up to `backoff_max` (±25 % jitter).
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Registration packets sent instead of the cabinet id, by endpoint
    /// index, from the first connection on (a DTU configured with the wrong
    /// id). [`crate::Simulator::set_registration_override`] changes them at
    /// run time.
    pub registration_override: BTreeMap<usize, Vec<u8>>,
    /// Source addresses to dial from, endpoint `i` from `source_ips[i % n]`;
    /// empty = the system's choice. On loopback (`127.x.y.z`) this gives a
    /// farm of DTUs the distinct peer addresses real DTUs have.
    pub source_ips: Vec<std::net::IpAddr>,
}

impl DialIn {
    /// Dial `server` with the defaults: heartbeat `hb` every 30 s, backoff
    /// 0.5 s to 10 s, every endpoint registering with its cabinet id.
    pub fn new(server: impl Into<String>) -> DialIn {
        DialIn {
            server: server.into(),
            heartbeat: b"hb".to_vec(),
            heartbeat_interval: Duration::from_secs(30),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(10),
            registration_override: BTreeMap::new(),
            source_ips: Vec::new(),
        }
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.server.trim().is_empty() {
            return Err("dial-in needs the gateway's address, host:port".into());
        }
        if self.backoff_min.is_zero() || self.backoff_max < self.backoff_min {
            return Err(format!(
                "dial-in backoff {:?} to {:?}: the first wait must be above zero and \
                 no longer than the cap",
                self.backoff_min, self.backoff_max
            ));
        }
        Ok(())
    }
}

/// A heartbeat as the command line spells it: literal bytes (`hb`), or
/// `hex:` and hex digits, spaces allowed (`hex:FE 01`).
pub fn parse_heartbeat(s: &str) -> Result<Vec<u8>, String> {
    let Some(hex) = s.strip_prefix("hex:") else {
        return Ok(s.as_bytes().to_vec());
    };
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("heartbeat `{s}`: an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("heartbeat `{s}`: not hex after `hex:`"))
        })
        .collect()
}

/// Run-time state of one dial-in endpoint.
pub(crate) struct Dial {
    /// Bumped to ask for a reconnect; the value: leave the old link half-open.
    pub reconnect: watch::Sender<bool>,
    pub registration: parking_lot::Mutex<Option<Vec<u8>>>,
    pub connected: AtomicBool,
    /// Connections made and registered so far.
    pub connections: AtomicU64,
}

impl Dial {
    pub fn new(registration: Option<Vec<u8>>) -> Dial {
        Dial {
            reconnect: watch::Sender::new(false),
            registration: parking_lot::Mutex::new(registration),
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
        }
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The next wait, jittered ±25 %.
    fn step(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(0.75 + 0.5 * fastrand::f64())
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// Connects to `server`, from `source` (any port) when given.
async fn dial_from(source: Option<std::net::IpAddr>, server: &str) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(server).await;
    };
    let target = tokio::net::lookup_host(server)
        .await?
        .find(|a| a.is_ipv4() == ip.is_ipv4())
        .ok_or_else(|| std::io::Error::other(format!("{server}: no address of {ip}'s family")))?;
    let socket = if ip.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(std::net::SocketAddr::new(ip, 0))?;
    socket.connect(target).await
}

/// Keeps endpoint `index` dialled in until shutdown.
pub(crate) async fn serve_endpoint(shared: Arc<Shared>, index: usize, cfg: Arc<DialIn>) {
    let endpoint = &shared.endpoints[index];
    let Place::DialIn(dial) = &endpoint.place else {
        unreachable!("a dial-in endpoint has dial-in state")
    };
    let mut fault = endpoint.fault.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut reconnect = dial.reconnect.subscribe();
    let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
    let heartbeat = (!cfg.heartbeat.is_empty() && !cfg.heartbeat_interval.is_zero())
        .then_some((&cfg.heartbeat[..], cfg.heartbeat_interval));
    // The link a half-open reconnect left behind, open and unserved.
    let mut abandoned: Option<TcpStream> = None;
    let mut wait = Duration::ZERO;
    loop {
        let until = tokio::time::Instant::now() + wait;
        while !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                // Asked to reconnect while waiting: dial now.
                r = reconnect.changed() => if r.is_err() { return } else { break },
                r = fault.changed() => match r {
                    Err(_) => return,
                    Ok(()) if matches!(*fault.borrow(), Some(EndpointFault::Refuse)) => break,
                    Ok(()) => {}
                },
                _ = shutdown.changed() => break,
            }
        }
        wait = Duration::ZERO;
        if *shutdown.borrow_and_update() {
            return;
        }
        if matches!(*fault.borrow_and_update(), Some(EndpointFault::Refuse)) {
            drop(abandoned.take());
            tokio::select! {
                r = fault.changed() => if r.is_err() { return },
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let source =
            (!cfg.source_ips.is_empty()).then(|| cfg.source_ips[index % cfg.source_ips.len()]);
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, dial_from(source, &cfg.server));
        let mut stream = tokio::select! {
            r = connect => match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(endpoint = index, server = %cfg.server, error = %e, "dial-in failed");
                    wait = backoff.step();
                    continue;
                }
                Err(_) => {
                    tracing::debug!(endpoint = index, server = %cfg.server, "dial-in timed out");
                    wait = backoff.step();
                    continue;
                }
            },
            _ = shutdown.changed() => continue,
        };
        let _ = stream.set_nodelay(true);
        let id = dial
            .registration
            .lock()
            .clone()
            .unwrap_or_else(|| inventory::cabinet_id(index).into_bytes());
        if stream.write_all(&id).await.is_err() {
            wait = backoff.step();
            continue;
        }
        // Requests to reconnect made before this link existed are served.
        reconnect.borrow_and_update();
        dial.connections.fetch_add(1, Ordering::Relaxed);
        dial.connected.store(true, Ordering::Relaxed);
        let served = endpoint.served.load(Ordering::Relaxed);
        let opts = session::Options {
            resync: shared.framing == Framing::RtuOverTcp,
            heartbeat,
            reconnect: Some(reconnect.clone()),
        };
        let end = session::run(&shared, index, &mut stream, opts).await;
        dial.connected.store(false, Ordering::Relaxed);
        // The session's clone saw the request; this receiver must too.
        reconnect.borrow_and_update();
        if endpoint.served.load(Ordering::Relaxed) != served {
            backoff.reset();
        }
        match end {
            End::Shutdown => return,
            End::Reconnect { half_open } => {
                if half_open {
                    drop(abandoned.replace(stream));
                }
                backoff.reset();
            }
            End::Refused => {}
            End::Closed | End::Dropped | End::Malformed => wait = backoff.step(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_spellings() {
        assert_eq!(parse_heartbeat("hb").unwrap(), b"hb");
        assert_eq!(parse_heartbeat("hex:FE01 0a").unwrap(), [0xFE, 0x01, 0x0A]);
        assert!(parse_heartbeat("hex:FE0").is_err());
        assert!(parse_heartbeat("hex:zz").is_err());
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));
        let waits: Vec<Duration> = (0..8).map(|_| b.step()).collect();
        assert!(waits[0] >= Duration::from_millis(375) && waits[0] <= Duration::from_millis(625));
        assert!(
            waits[7] >= Duration::from_millis(7500) && waits[7] <= Duration::from_millis(12500)
        );
        b.reset();
        assert!(b.step() <= Duration::from_millis(625));
    }
}
