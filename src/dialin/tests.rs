//! The dial-in rules over real sockets on 127.0.0.1: short real timeouts,
//! and conditions awaited with deadlines rather than fixed sleeps.

use super::registry::Judgement;
use super::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Longest any single expectation here may take.
const PATIENCE: Duration = Duration::from_secs(5);

struct Harness {
    addr: SocketAddr,
    registry: Arc<Registry>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Harness {
    async fn start(ids: &[&str], settings: DialInSettings) -> Harness {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = Registry::new(
            ids.iter().map(|s| s.to_string()),
            settings.heartbeat.bytes(),
        );
        let cancel = CancellationToken::new();
        let task = tokio::spawn(serve(listener, registry.clone(), settings, cancel.clone()));
        Harness {
            addr,
            registry,
            cancel,
            task,
        }
    }

    async fn dial(&self, bytes: &[u8]) -> TcpStream {
        let mut s = TcpStream::connect(self.addr).await.unwrap();
        if !bytes.is_empty() {
            s.write_all(bytes).await.unwrap();
        }
        s
    }

    /// The next connection of `id`, within [`PATIENCE`].
    async fn next(&self, id: &str) -> DtuConn {
        let slot = self.registry.slot(id).expect("configured id");
        timeout(PATIENCE, slot.next())
            .await
            .unwrap_or_else(|_| panic!("{id} did not register"))
    }

    fn refused(&self, why: Refusal) -> u64 {
        self.registry.stats().refusals(why)
    }

    async fn stop(self) {
        self.cancel.cancel();
        timeout(PATIENCE, self.task)
            .await
            .expect("serve stops on cancel")
            .unwrap();
    }
}

fn settings(registration_timeout: Duration) -> DialInSettings {
    DialInSettings {
        listen: None,
        registration_timeout,
        heartbeat: Heartbeat::default(),
        max_pending_per_peer: 8,
    }
}

/// Waits until `cond` holds, for at most [`PATIENCE`].
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The other side closed: EOF (or a reset) within [`PATIENCE`].
async fn sees_close(s: &mut TcpStream) {
    let mut b = [0u8; 16];
    match timeout(PATIENCE, s.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("read {n} bytes instead of a close"),
        Err(_) => panic!("the connection stayed open"),
    }
}

fn judged(r: &Registry, bytes: &[u8]) -> (&'static str, Option<String>) {
    match r.judge(bytes) {
        Judgement::Register(s) => ("register", Some(s.id().to_string())),
        Judgement::RegisterIfQuiet(s) => ("if_quiet", Some(s.id().to_string())),
        Judgement::ReadOn => ("read_on", None),
        Judgement::Refuse(why) => (why.as_str(), None),
    }
}

#[test]
fn the_registration_rule() {
    let hb: Arc<[u8]> = Arc::from(&b"hb"[..]);
    let r = Registry::new(
        ["JN-CAB-004", "JN-CAB-0042", "A1"].map(String::from),
        Some(hb),
    );
    let long = vec![b'Z'; MAX_ID_LEN + 1];
    for (bytes, want) in [
        (&b"JN-CAB-0042"[..], ("register", Some("JN-CAB-0042"))),
        (b"JN-CAB-0042\r\n\0 ", ("register", Some("JN-CAB-0042"))),
        (b"JN-CAB-004", ("if_quiet", Some("JN-CAB-004"))),
        (b"JN-CAB-004\r\n", ("register", Some("JN-CAB-004"))),
        (b"JN-CAB-00", ("read_on", None)),
        (b"J", ("read_on", None)),
        (b"\r\n", ("read_on", None)),
        (b"A1hb", ("register", Some("A1"))),
        (b"A1hbhb", ("register", Some("A1"))),
        (b"JN-CAB-004hb", ("register", Some("JN-CAB-004"))),
        (b"JN-CAB-0042\r\nhb", ("register", Some("JN-CAB-0042"))),
        (b"A1h", ("if_quiet", Some("A1"))),
        (b"A1X", ("unknown_id", None)),
        (b"A2", ("unknown_id", None)),
        (b"\r\nA1", ("unknown_id", None)),
        (&long, ("too_long", None)),
    ] {
        let want = (want.0, want.1.map(String::from));
        assert_eq!(judged(&r, bytes), want, "{}", printable(bytes));
    }
    // An id over MAX_ID_LEN bytes can be begun but never finished.
    let over = "X".repeat(MAX_ID_LEN + 1);
    let r = Registry::new([over.clone()], None);
    assert_eq!(judged(&r, &over.as_bytes()[..10]), ("read_on", None));
    assert_eq!(judged(&r, over.as_bytes()), ("too_long", None));
}

#[test]
fn printable_bytes() {
    assert_eq!(printable(b"ab\r\n\x00\xfe"), "ab\\r\\n\\x00\\xfe");
    let shown = printable(&[b'a'; 70]);
    assert!(shown.ends_with("…(+6 bytes)"), "{shown}");
}

#[tokio::test]
async fn a_registration_is_taken_with_its_peer() {
    let h = Harness::start(&["JN-CAB-0042", "JN-CAB-0043"], settings(PATIENCE)).await;
    let mut dtu = h.dial(b"JN-CAB-0042").await;
    let mut conn = h.next("JN-CAB-0042").await;
    assert_eq!(conn.peer, dtu.local_addr().unwrap());
    assert!(conn.generation >= 1);
    let status = h.registry.status();
    assert_eq!(
        status.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["JN-CAB-0042", "JN-CAB-0043"]
    );
    assert!(status[0].connected);
    assert_eq!(status[0].peer, Some(dtu.local_addr().unwrap().to_string()));
    assert!(status[0].connected_since.is_some());
    assert!(!status[1].connected && status[1].peer.is_none());
    assert_eq!(h.registry.connected(), 1);
    // The stream is the DTU's, both ways.
    conn.stream.write_all(b"\x01\x03").await.unwrap();
    let mut got = [0u8; 2];
    dtu.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"\x01\x03");
    dtu.write_all(b"RTU").await.unwrap();
    let mut got = [0u8; 3];
    conn.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"RTU");
    assert_eq!(h.registry.stats().registrations(), 1);
    until("no pending", || h.registry.stats().pending() == 0).await;
    assert!(h.registry.slot("JN-CAB-0042").unwrap().try_next().is_none());
    h.stop().await;
}

#[tokio::test]
async fn a_heartbeat_in_the_registration_segment_is_dropped() {
    let mut s = settings(PATIENCE);
    s.heartbeat = "hb".parse().unwrap();
    let h = Harness::start(&["A1"], s).await;
    assert_eq!(h.registry.heartbeat().as_deref(), Some(&b"hb"[..]));
    let mut dtu = h.dial(b"A1hb").await;
    let mut conn = h.next("A1").await;
    dtu.write_all(b"DATA").await.unwrap();
    let mut got = [0u8; 4];
    conn.stream.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"DATA");
    h.stop().await;
}

#[tokio::test]
async fn an_id_that_begins_a_longer_one_waits_a_quiet_period() {
    let h = Harness::start(&["JN-CAB-004", "JN-CAB-0042"], settings(PATIENCE)).await;
    let _long = h.dial(b"JN-CAB-0042").await;
    assert_eq!(h.next("JN-CAB-0042").await.generation, 1);

    let sent = Instant::now();
    let short = h.dial(b"JN-CAB-004").await;
    let conn = h.next("JN-CAB-004").await;
    assert!(
        sent.elapsed() >= QUIET,
        "registered before the quiet period"
    );
    assert_eq!(conn.peer, short.local_addr().unwrap());

    // Split over two writes, the longer id still registers.
    let mut split = h.dial(b"JN-CAB-00").await;
    split.write_all(b"42").await.unwrap();
    assert_eq!(
        h.next("JN-CAB-0042").await.peer,
        split.local_addr().unwrap()
    );
    // A line end ends the wait.
    let ended = h.dial(b"JN-CAB-004\r\n").await;
    assert_eq!(h.next("JN-CAB-004").await.peer, ended.local_addr().unwrap());
    assert_eq!(h.registry.stats().registrations(), 4);
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_id_is_refused_and_counted() {
    let h = Harness::start(&["A1"], settings(PATIENCE)).await;
    let mut unknown = h.dial(b"XX-9").await;
    sees_close(&mut unknown).await;
    assert_eq!(h.refused(Refusal::UnknownId), 1);
    // A configured id followed by other bytes is not that id.
    let mut longer = h.dial(b"A1X").await;
    sees_close(&mut longer).await;
    assert_eq!(h.refused(Refusal::UnknownId), 2);
    let mut flood = h.dial(&[b'Z'; MAX_ID_LEN + 6]).await;
    sees_close(&mut flood).await;
    assert_eq!(h.refused(Refusal::TooLong), 1);
    assert!(!h.registry.status()[0].connected);
    assert_eq!(h.registry.stats().registrations(), 0);
    until("no pending", || h.registry.stats().pending() == 0).await;
    h.stop().await;
}

#[tokio::test]
async fn no_registration_within_the_timeout_is_refused() {
    let timeout_ = Duration::from_millis(200);
    let h = Harness::start(&["A1"], settings(timeout_)).await;
    let opened = Instant::now();
    // The beginning of an id, and nothing more.
    let mut slow = h.dial(b"A").await;
    sees_close(&mut slow).await;
    assert!(opened.elapsed() >= timeout_, "closed early");
    assert_eq!(h.refused(Refusal::Timeout), 1);
    let mut silent = h.dial(b"").await;
    sees_close(&mut silent).await;
    assert_eq!(h.refused(Refusal::Timeout), 2);
    until("no pending", || h.registry.stats().pending() == 0).await;
    h.stop().await;
}

#[tokio::test]
async fn a_second_pending_connection_from_one_address_is_refused() {
    let mut s = settings(PATIENCE);
    s.max_pending_per_peer = 1;
    let h = Harness::start(&["A1", "B2"], s).await;
    let mut first = h.dial(b"").await;
    until("one pending", || h.registry.stats().pending() == 1).await;
    let opened = Instant::now();
    let mut second = h.dial(b"B2").await;
    sees_close(&mut second).await;
    assert!(opened.elapsed() < PATIENCE);
    assert_eq!(h.refused(Refusal::TooManyPending), 1);
    // The first is unharmed, and once it has registered the address may
    // open another.
    first.write_all(b"A1").await.unwrap();
    assert_eq!(h.next("A1").await.peer, first.local_addr().unwrap());
    until("none pending", || h.registry.stats().pending() == 0).await;
    let third = h.dial(b"B2").await;
    assert_eq!(h.next("B2").await.peer, third.local_addr().unwrap());
    assert_eq!(h.refused(Refusal::TooManyPending), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_reregistration_replaces_the_old_connection() {
    let h = Harness::start(&["A1"], settings(PATIENCE)).await;
    let slot = h.registry.slot("A1").unwrap();

    // Taken by the poller, then replaced.
    let mut dtu1 = h.dial(b"A1").await;
    let mut conn1 = h.next("A1").await;
    let dtu2 = h.dial(b"A1").await;
    until("the replacement", || {
        h.registry.stats().registrations() == 2
    })
    .await;
    let conn2 = slot.try_next().expect("the replacement is waiting");
    assert!(conn2.generation > conn1.generation);
    assert_eq!(conn2.peer, dtu2.local_addr().unwrap());
    sees_close(&mut dtu1).await;
    sees_close(&mut conn1.stream).await;
    assert_eq!(
        slot.status().peer,
        Some(dtu2.local_addr().unwrap().to_string())
    );

    // Not taken yet, then replaced: the poller gets only the newest.
    let mut dtu3 = h.dial(b"A1").await;
    until("the third", || h.registry.stats().registrations() == 3).await;
    let dtu4 = h.dial(b"A1").await;
    until("the fourth", || h.registry.stats().registrations() == 4).await;
    sees_close(&mut dtu3).await;
    let conn4 = slot.try_next().expect("the newest is waiting");
    assert_eq!(conn4.peer, dtu4.local_addr().unwrap());
    assert!(conn4.generation > conn2.generation);
    assert!(slot.try_next().is_none());
    assert_eq!(h.registry.stats().replacements(), 3);
    assert_eq!(h.registry.connected(), 1);
    h.stop().await;
}

#[tokio::test]
async fn lost_shows_disconnected_unless_a_newer_one_came() {
    let h = Harness::start(&["A1"], settings(PATIENCE)).await;
    let slot = h.registry.slot("A1").unwrap();
    let mut dtu1 = h.dial(b"A1").await;
    let conn1 = h.next("A1").await;
    slot.lost(conn1.generation);
    let s = slot.status();
    assert!(!s.connected && s.peer.is_none() && s.connected_since.is_none());
    assert_eq!(h.registry.connected(), 0);
    // The DTU sees the close, so it dials again.
    sees_close(&mut dtu1).await;
    assert_eq!(h.registry.stats().lost_total(), 1);

    let dtu2 = h.dial(b"A1").await;
    let conn2 = h.next("A1").await;
    slot.lost(conn1.generation);
    assert!(slot.status().connected, "a stale `lost` changed the status");
    assert_eq!(
        slot.status().peer,
        Some(dtu2.local_addr().unwrap().to_string())
    );
    assert_eq!(h.registry.stats().lost_total(), 1);
    slot.lost(conn2.generation);
    assert!(!slot.status().connected);
    h.stop().await;
}

#[tokio::test]
async fn cancel_ends_serve_and_its_pending_handshakes() {
    let h = Harness::start(&["A1"], settings(PATIENCE)).await;
    let mut silent = h.dial(b"").await;
    until("one pending", || h.registry.stats().pending() == 1).await;
    let registry = h.registry.clone();
    h.stop().await;
    assert_eq!(registry.stats().pending(), 0);
    sees_close(&mut silent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dtus_dialling_at_once_all_register() {
    const N: usize = 1000;
    let ids: Vec<String> = (0..N).map(|i| format!("JN-CAB-{i:04}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut s = settings(Duration::from_secs(20));
    s.max_pending_per_peer = N as u32;
    let h = Harness::start(&refs, s).await;
    let started = Instant::now();
    let dtus: Vec<_> = ids
        .iter()
        .map(|id| {
            let (addr, id) = (h.addr, id.clone());
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(id.as_bytes()).await.unwrap();
                s
            })
        })
        .collect();
    let mut dialled = Vec::with_capacity(N);
    for dtu in dtus {
        dialled.push(dtu.await.unwrap());
    }
    let sent = started.elapsed();
    until_within(Duration::from_secs(30), || h.registry.connected() == N).await;
    let took = started.elapsed();
    println!("{N} DTUs: all connected and sent their id in {sent:?}, all registered in {took:?}");
    for (id, dtu) in ids.iter().zip(dialled) {
        assert_eq!(h.next(id).await.peer, dtu.local_addr().unwrap());
    }
    assert_eq!(h.registry.stats().registrations(), N as u64);
    for why in Refusal::ALL {
        assert_eq!(h.refused(why), 0, "{}", why.as_str());
    }
    h.stop().await;
}

async fn until_within(limit: Duration, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "not all registered within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
