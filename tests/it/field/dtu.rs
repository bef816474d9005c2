//! 4G DTUs that dial in: the simulator's endpoints connect to the gateway's
//! dial-in listener like DTUs behind carrier NAT, register with their
//! cabinet id, send heartbeats between frames, and reconnect.

use crate::common::{eventually, lamp_id, spawn_app_with, TestApp};
use lamp_sim::{DialIn, Framing, InventoryOptions, Link, SimConfig};
use serde_json::Value;
use std::time::Duration;

/// A free local port for the gateway's listener: the simulator must know
/// where to dial before the gateway (which needs the simulator's inventory)
/// starts; it retries until the listener is there.
fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

async fn dial_in_city(endpoints: usize, slcs: usize, heartbeat_every: Duration) -> TestApp {
    let listen = free_port();
    let mut dial = DialIn::new(listen.clone());
    dial.heartbeat = b"hb".to_vec();
    dial.heartbeat_interval = heartbeat_every;
    dial.backoff_min = Duration::from_millis(20);
    dial.backoff_max = Duration::from_millis(200);
    // Each DTU from its own address, as DTUs behind a carrier have (the
    // listener admits one unregistered connection per address at a time).
    dial.source_ips = (0..endpoints)
        .map(|i| std::net::IpAddr::from([127, 1, (i / 250) as u8, (i % 250 + 1) as u8]))
        .collect();
    let cfg = SimConfig {
        endpoints,
        slcs_per_endpoint: slcs,
        framing: Framing::RtuOverTcp,
        link: Link::DialIn(dial),
        control_port: None,
        ..SimConfig::default()
    };
    spawn_app_with(cfg, InventoryOptions::default(), |s| {
        s.dialin.listen = Some(listen);
        s.dialin.heartbeat = "hb".parse().unwrap();
        s.dialin.registration_timeout = Duration::from_millis(500);
    })
    .await
}

fn dialin_of(rtu: &Value) -> &Value {
    &rtu["dialin"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtus_register_are_polled_through_heartbeats_and_take_commands() {
    // A heartbeat every 15 ms lands between the frames of every poll cycle.
    let t = dial_in_city(3, 4, Duration::from_millis(15)).await;
    t.all_online().await;
    let rtu = t.rtu("RTU-0002").await;
    let d = dialin_of(&rtu);
    assert_eq!(d["id"], "CAB-0002", "{rtu}");
    assert_eq!(d["connected"], true, "{rtu}");
    assert!(
        d["peer"].as_str().is_some_and(|p| p.starts_with("127.1.")),
        "{rtu}"
    );
    assert!(d["connected_since"].is_string(), "{rtu}");

    // Over ten cycles nothing fails although heartbeats keep arriving.
    let failed = |t: &TestApp| {
        t.live
            .read()
            .endpoints
            .iter()
            .map(|e| e.reads_failed)
            .sum::<u64>()
    };
    let cycles = |t: &TestApp| {
        t.live
            .read()
            .endpoints
            .iter()
            .map(|e| e.cycles[1])
            .min()
            .unwrap_or(0)
    };
    let (f0, c0) = (failed(&t), cycles(&t));
    eventually("ten more SLC cycles on every DTU", || async {
        cycles(&t) >= c0 + 10
    })
    .await;
    assert_eq!(failed(&t), f0, "a heartbeat between frames failed a read");

    let lamp = lamp_id(2, 1);
    let (status, body) = t
        .post(
            &format!("/api/v1/lamps/{lamp}/commands"),
            serde_json::json!({"action": "dim", "level": 30}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let done = t.command_done(body["id"].as_str().unwrap()).await;
    assert_eq!(done["targets"][0]["state"], "confirmed", "{done}");
    assert_eq!(t.sim.slc_values(2, 1).dim_level, 30.0);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtu_that_dials_again_replaces_its_old_connection() {
    let t = dial_in_city(2, 3, Duration::from_secs(30)).await;
    t.all_online().await;
    let since = |rtu: &Value| dialin_of(rtu)["connected_since"].clone();
    let first = since(&t.rtu("RTU-0001").await);
    // A cell handover: the DTU's new connection comes while the old socket
    // is still open on our side (no FIN ever arrived).
    t.sim
        .reconnect_endpoint_half_open(0)
        .expect("a dial-in endpoint");
    eventually("the new connection in use", || async {
        let rtu = t.rtu("RTU-0001").await;
        dialin_of(&rtu)["connected"] == true && since(&rtu) != first
    })
    .await;
    let polled = t.live.read().endpoints[0].cycles[1];
    eventually("endpoint 0 polled over its new connection", || async {
        t.live.read().endpoints[0].cycles[1] >= polled + 5
    })
    .await;
    t.all_online().await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_dtu_is_refused_and_its_cabinet_goes_offline() {
    let t = dial_in_city(2, 3, Duration::from_secs(30)).await;
    t.all_online().await;
    t.sim
        .set_registration_override(1, Some(b"NOT-A-CABINET".to_vec()))
        .expect("a dial-in endpoint");
    t.sim.reconnect_endpoint(1).expect("a dial-in endpoint");
    eventually("the refusal counted", || async {
        let (_, text) = t.get_text("/metrics").await;
        text.lines().any(|l| {
            l.starts_with("lampgw_dialin_refused_total{reason=\"unknown_id\"}")
                && l.split(' ')
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
                    >= 1.0
        })
    })
    .await;
    // Without its DTU the cabinet's devices fail every due poll and go
    // offline within `offline_after` intervals; the other cabinet stays.
    eventually("RTU-0002 and its lamps offline", || async {
        let live = t.live.read();
        !live.rtus[1].online && (0..3).all(|j| !live.lamps[3 + j].online)
    })
    .await;
    let rtu = t.rtu("RTU-0002").await;
    assert_eq!(dialin_of(&rtu)["connected"], false, "{rtu}");
    assert_eq!(rtu["last_error"]["kind"], "dtu_absent", "{rtu}");
    assert!(t.live.read().rtus[0].online);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dtus_dialling_at_once_are_all_polled() {
    let started = tokio::time::Instant::now();
    let t = dial_in_city(1000, 2, Duration::from_secs(30)).await;
    t.all_online().await;
    eprintln!(
        "1,000 DTUs × 2 SLCs: all online {:?} after the gateway and farm started",
        started.elapsed()
    );
    let (_, ready) = t.get("/readyz").await;
    let dtus = ready["dialin"].as_array().map_or(0, Vec::len);
    assert_eq!(dtus, 1000, "readyz lists every DTU");
    t.stop().await;
}
