//! `Link::DialIn`: the test plays the gateway's dial-in listener. Each
//! endpoint connects, registers with its cabinet id, answers Modbus over the
//! link, sends heartbeats only between frames and dials again when the link
//! goes away.

mod common;

use common::*;
use lamp_profile::{encode, Quantity};
use lamp_sim::{
    DialIn, EndpointFault, Framing, InventoryOptions, Link, SimConfig, SimError, Simulator,
};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::prelude::*;

const HB: &[u8] = b"hb";

async fn farm(
    endpoints: usize,
    framing: Framing,
    heartbeat_interval: Duration,
) -> (TcpListener, Simulator) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start(SimConfig {
        endpoints,
        slcs_per_endpoint: 3,
        framing,
        control_port: Some(0),
        link: Link::DialIn(DialIn {
            heartbeat: HB.to_vec(),
            heartbeat_interval,
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(200),
            ..DialIn::new(listener.local_addr().unwrap().to_string())
        }),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    sim.set_frozen(true);
    (listener, sim)
}

/// Accepts the next DTU and reads its registration packet (one write).
async fn accept(listener: &TcpListener) -> (TcpStream, String) {
    let (mut s, _) = within(listener.accept()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = within(s.read(&mut buf)).await.unwrap();
    assert!(n > 0, "closed before registering");
    (s, String::from_utf8(buf[..n].to_vec()).unwrap())
}

/// Accepts DTUs until every one of `ids` has registered.
async fn accept_all(listener: &TcpListener, ids: &[String]) -> BTreeMap<String, TcpStream> {
    let mut got = BTreeMap::new();
    while got.len() < ids.len() {
        let (s, id) = accept(listener).await;
        assert!(ids.contains(&id), "unexpected registration {id:?}");
        got.insert(id, s);
    }
    got
}

/// Reads one RTU reply of `len` bytes; returns it with the number of
/// heartbeats that came in front of it (a heartbeat inside the reply would
/// break its CRC).
async fn rtu_reply(s: &mut TcpStream, len: usize) -> (Vec<u8>, usize) {
    let mut beats = 0;
    loop {
        let first = read_exact(s, 1).await;
        if first[0] == HB[0] {
            assert_eq!(
                read_exact(s, HB.len() - 1).await,
                HB[1..],
                "a whole heartbeat"
            );
            beats += 1;
            continue;
        }
        let mut frame = first;
        frame.extend(read_exact(s, len - 1).await);
        assert!(crc_ok(&frame), "reply with a bad CRC: {frame:02X?}");
        return (frame, beats);
    }
}

/// Reads until end of stream, skipping heartbeats.
async fn closed(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match within(s.read_to_end(&mut rest)).await {
        Ok(_) => rest.chunks(HB.len()).all(|c| c == HB),
        Err(_) => true,
    }
}

#[tokio::test]
async fn registers_answers_heartbeats_between_frames_and_reconnects() {
    let (listener, sim) = farm(2, Framing::RtuOverTcp, Duration::from_millis(50)).await;
    let ids: Vec<String> = (0..2).map(|i| sim.cabinet_id(i)).collect();
    assert_eq!(ids, ["CAB-0001", "CAB-0002"]);
    let mut links = accept_all(&listener, &ids).await;
    wait_until("both connected", || async {
        sim.dial_in_connected(0) && sim.dial_in_connected(1)
    })
    .await;

    // The inventory names the same ids the DTUs registered with.
    let dir = std::env::temp_dir().join(format!("lamp-sim-dialin-{}", std::process::id()));
    sim.write_inventory(&dir, &InventoryOptions::default())
        .unwrap();
    let mut cabs = csv::Reader::from_path(dir.join("cabinets.csv")).unwrap();
    for (i, row) in cabs.records().enumerate() {
        let row = row.unwrap();
        assert_eq!(&row[0], ids[i]);
        assert_eq!(
            (&row[6], &row[7]),
            (format!("dtu:{}", ids[i]).as_str(), "rtu")
        );
        assert_eq!(sim.inventory_endpoint(i), format!("dtu:{}", ids[i]));
    }
    std::fs::remove_dir_all(&dir).ok();

    // RTU reads over the link answer what the model says; heartbeats keep
    // coming, always between frames.
    let p = sim.slc_profile().clone();
    let power = p.field(Quantity::Power).unwrap();
    let want = encode(power, sim.slc_values(0, 1).power);
    let [hi, lo] = power.address.to_be_bytes();
    let req = rtu_frame(3, &[3, hi, lo, 0, power.width() as u8]);
    let link = links.get_mut("CAB-0001").unwrap();
    let mut beats = 0;
    let end = tokio::time::Instant::now() + DEADLINE;
    while beats < 3 {
        assert!(tokio::time::Instant::now() < end, "no heartbeats");
        link.write_all(&req).await.unwrap();
        let (r, b) = rtu_reply(link, 3 + 2 * want.len() + 2).await;
        let words: Vec<u16> = r[3..r.len() - 2]
            .chunks(2)
            .map(|w| u16::from_be_bytes([w[0], w[1]]))
            .collect();
        assert_eq!((r[0], r[1], words), (3, 3, want.clone()));
        beats += b;
    }
    // Idle, the link carries heartbeats alone.
    let idle = read_exact(link, 2 * HB.len()).await;
    assert_eq!(idle, [HB, HB].concat());

    // The gateway closes the link: the DTU dials again and registers.
    drop(links.remove("CAB-0001"));
    let (mut again, id) = accept(&listener).await;
    assert_eq!(id, "CAB-0001");
    wait_until("second connection counted", || async {
        sim.dial_in_connections(0) == 2
    })
    .await;
    again.write_all(&req).await.unwrap();
    rtu_reply(&mut again, 3 + 2 * want.len() + 2).await;

    // A forced reconnect closes the link and dials at once.
    sim.reconnect_endpoint(1).unwrap();
    let mut old = links.remove("CAB-0002").unwrap();
    assert!(closed(&mut old).await, "old link closed");
    let (first, id) = accept(&listener).await;
    assert_eq!(id, "CAB-0002");
    // Half-open: a new link while the old one stays open; the one left
    // behind is closed at the next half-open reconnect.
    sim.reconnect_endpoint_half_open(1).unwrap();
    let (mut second, id) = accept(&listener).await;
    assert_eq!(id, "CAB-0002");
    sim.reconnect_endpoint_half_open(1).unwrap();
    let (_third, id) = accept(&listener).await;
    assert_eq!(id, "CAB-0002");
    // The link left behind is open and unserved: a request on it meets the
    // shutdown below, not a reply.
    second
        .write_all(&rtu_frame(2, &[3, 0, 0, 0, 1]))
        .await
        .unwrap();
    let mut first = first;
    assert!(closed(&mut first).await, "the first abandoned link closes");
    wait_until("four connections of endpoint 1", || async {
        sim.dial_in_connections(1) == 4
    })
    .await;
    sim.shutdown().await;
    assert!(
        closed(&mut second).await,
        "shutdown closes the abandoned link"
    );
}

#[tokio::test]
async fn faults_on_a_dial_in_link() {
    let (listener, sim) = farm(1, Framing::RtuOverTcp, Duration::from_secs(3600)).await;
    let (mut link, _) = accept(&listener).await;
    let req = rtu_frame(2, &[3, 0, 0, 0, 2]);

    // drop: the link closes at the next request; the DTU dials again.
    sim.set_endpoint_fault(0, Some(EndpointFault::Drop));
    link.write_all(&req).await.unwrap();
    assert!(closed(&mut link).await);
    let (mut link, _) = accept(&listener).await;
    sim.set_endpoint_fault(0, None);
    link.write_all(&req).await.unwrap();
    rtu_reply(&mut link, 9).await;

    // refuse: the link closes and stays down until the fault clears.
    sim.set_endpoint_fault(0, Some(EndpointFault::Refuse));
    assert!(closed(&mut link).await);
    wait_until("disconnected", || async { !sim.dial_in_connected(0) }).await;
    let before = sim.dial_in_connections(0);
    sim.set_endpoint_fault(0, None);
    let (mut link, id) = accept(&listener).await;
    assert_eq!(id, "CAB-0001");
    wait_until("one more connection", || async {
        sim.dial_in_connections(0) == before + 1
    })
    .await;

    // stray frames and a dead unit behind the DTU.
    sim.set_endpoint_fault(
        0,
        Some(EndpointFault::StrayFrames {
            every: 1,
            noise: false,
        }),
    );
    sim.set_slc_fault(
        0,
        1,
        lamp_sim::SlcFault {
            no_answer: true,
            ..Default::default()
        },
    );
    let mut burst = rtu_frame(3, &[3, 0, 0, 0, 2]);
    burst.extend_from_slice(&req);
    link.write_all(&burst).await.unwrap();
    let stray = read_exact(&mut link, 8).await;
    assert!(crc_ok(&stray) && stray[0] > 4, "{stray:02X?}");
    let (r, _) = rtu_reply(&mut link, 9).await;
    assert_eq!(r[..3], [2, 3, 4], "unit 3 sent nothing, unit 2 answered");

    // A wrong registration id (for "unknown id refused"): the listener
    // closes such links; the DTU keeps dialling with it until it is cleared.
    sim.set_endpoint_fault(0, None);
    sim.set_registration_override(0, Some(b"NOPE-9".to_vec()))
        .unwrap();
    assert_eq!(sim.registration(0).unwrap(), b"NOPE-9");
    sim.reconnect_endpoint(0).unwrap();
    for _ in 0..2 {
        let (s, id) = accept(&listener).await;
        assert_eq!(id, "NOPE-9");
        drop(s);
    }
    sim.set_registration_override(0, None).unwrap();
    loop {
        let (_s, id) = accept(&listener).await;
        if id == "CAB-0001" {
            break;
        }
        assert_eq!(id, "NOPE-9", "dialled before the override cleared");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn modbus_clients_over_dial_in_links() {
    // RTU framing: tokio-modbus's RTU client on the accepted socket.
    let (listener, sim) = farm(1, Framing::RtuOverTcp, Duration::ZERO).await;
    let (link, _) = accept(&listener).await;
    let p = sim.slc_profile().clone();
    let v = sim.slc_values(0, 2);
    let mut ctx = rtu::attach_slave(link, Slave(4));
    for f in &p.fields {
        assert_eq!(
            read_field(&mut ctx, &p, f, 0).await,
            encode(f, v.get(f.quantity).unwrap()),
            "{}",
            f.quantity
        );
    }
    sim.shutdown().await;

    // MBAP framing: the Modbus TCP client; the inventory says `tcp`.
    let (listener, sim) = farm(1, Framing::Tcp, Duration::from_secs(3600)).await;
    let (link, _) = accept(&listener).await;
    let mut ctx = tcp::attach_slave(link, Slave(1));
    let rtu = sim.rtu_profile().clone();
    let values = sim.rtu_values(0);
    for f in &rtu.fields {
        assert_eq!(
            read_field(&mut ctx, &rtu, f, 0).await,
            encode(f, values.get(f.quantity).unwrap()),
            "{}",
            f.quantity
        );
    }
    assert_eq!(sim.inventory_framing(), "tcp");
    assert_eq!(sim.inventory_endpoint(0), "dtu:CAB-0001");
    sim.shutdown().await;
}

#[tokio::test]
async fn control_interface_for_dial_in() {
    let (listener, sim) = farm(1, Framing::RtuOverTcp, Duration::from_secs(3600)).await;
    let c = sim.control_addr().unwrap();
    let (link, _) = accept(&listener).await;
    wait_until("connected", || async { sim.dial_in_connected(0) }).await;
    let (st, list) = http(c, "GET", "/endpoints", None).await;
    assert_eq!(st, 200);
    assert_eq!(
        (
            list[0]["addr"].as_str(),
            list[0]["registration"].as_str(),
            list[0]["connected"].as_bool()
        ),
        (Some("dtu:CAB-0001"), Some("CAB-0001"), Some(true))
    );
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/0/registration",
        Some(r#"{"id":"JN-WRONG"}"#),
    )
    .await;
    assert_eq!((st, v["registration"].as_str()), (200, Some("JN-WRONG")));
    let (st, _) = http(c, "POST", "/endpoints/0/reconnect", None).await;
    assert_eq!(st, 200);
    let mut link = link;
    assert!(closed(&mut link).await);
    let (_l, id) = accept(&listener).await;
    assert_eq!(id, "JN-WRONG");
    let (st, v) = http(c, "DELETE", "/endpoints/0/registration", None).await;
    assert_eq!((st, v["registration"].as_str()), (200, Some("CAB-0001")));
    let (st, v) = http(c, "POST", "/endpoints/0/reconnect?half_open=true", None).await;
    assert_eq!((st, v["half_open"].as_bool()), (200, Some(true)));
    let (_l2, id) = accept(&listener).await;
    assert_eq!(id, "CAB-0001");
    let (st, s) = http(c, "GET", "/status", None).await;
    assert_eq!((st, s["link"].as_str()), (200, Some("dial_in")));
    sim.shutdown().await;

    // Endpoints that listen cannot reconnect or register.
    let sim = start("slc-a-unit", 1, 1, Framing::Tcp).await;
    let c = sim.control_addr().unwrap();
    let (st, e) = http(c, "POST", "/endpoints/0/reconnect", None).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("unsupported"))
    );
    let (st, _) = http(c, "GET", "/endpoints/0/registration", None).await;
    assert_eq!(st, 409);
    assert!(matches!(
        sim.reconnect_endpoint(0),
        Err(SimError::Unsupported(_))
    ));
    assert!(matches!(
        sim.reconnect_endpoint(5),
        Err(SimError::NotFound(_))
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn keeps_dialling_until_the_gateway_listens() {
    // Nobody listens yet: connects are refused and the DTU backs off.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let sim = Simulator::start(SimConfig {
        framing: Framing::RtuOverTcp,
        link: Link::DialIn(DialIn {
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(100),
            registration_override: [(0, b"EARLY".to_vec())].into(),
            ..DialIn::new(addr.to_string())
        }),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    assert!(!sim.dial_in_connected(0));
    let listener = TcpListener::bind(addr).await.unwrap();
    let (_s, id) = accept(&listener).await;
    assert_eq!(id, "EARLY", "an override from the configuration");
    sim.shutdown().await;

    let e = Simulator::start(SimConfig {
        link: Link::DialIn(DialIn {
            registration_override: [(3, b"X".to_vec())].into(),
            ..DialIn::new(addr.to_string())
        }),
        ..SimConfig::default()
    })
    .await
    .err()
    .unwrap();
    assert!(e.to_string().contains("endpoint 3"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dial_in_endpoints() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let n = 1000;
    let sim = Simulator::start(SimConfig {
        endpoints: n,
        slcs_per_endpoint: 1,
        framing: Framing::RtuOverTcp,
        link: Link::DialIn(DialIn::new(listener.local_addr().unwrap().to_string())),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let ids: Vec<String> = (0..n).map(|i| sim.cabinet_id(i)).collect();
    let mut links = tokio::time::timeout(Duration::from_secs(60), accept_all(&listener, &ids))
        .await
        .expect("a thousand registrations within a minute");
    assert_eq!(links.len(), n);
    let mut tasks = tokio::task::JoinSet::new();
    for (id, mut s) in std::mem::take(&mut links) {
        tasks.spawn(async move {
            s.write_all(&rtu_frame(2, &[3, 0, 0, 0, 2])).await.unwrap();
            let r = read_exact(&mut s, 9).await;
            assert!(crc_ok(&r) && r[..3] == [2, 3, 4], "{id}: {r:02X?}");
            s
        });
    }
    while let Some(r) = tasks.join_next().await {
        drop(r.unwrap());
    }
    assert_eq!(sim.request_count(), n as u64);
    sim.shutdown().await;
}
