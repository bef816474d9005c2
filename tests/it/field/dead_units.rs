//! A dead unit costs its neighbours nothing: on one Modbus TCP endpoint
//! (tokio-modbus's server, not our simulator) with SLC units 2–13, three
//! units never answer at all; the nine others stay online and are read at
//! their cadence, and commands to the units behind the dead ones work. Nor
//! does a cabinet's dead RTU cost the SLCs behind the same gateway anything,
//! though its poll cycle has no neighbour of its own class; and when the
//! whole cabinet goes silent, the endpoint fails and backs off.

use super::farm::{serve_tcp, write_cabinet, write_inventory, Bus};
use super::Gateway;
use crate::common::eventually;
use parking_lot::Mutex;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const UNITS: std::ops::RangeInclusive<u8> = 2..=13;
const DEAD: [u8; 3] = [3, 4, 9];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_dead_units_of_twelve_cost_the_other_nine_nothing() {
    let mut bus = Bus::lamps(UNITS);
    bus.dead.extend(DEAD);
    let bus = Arc::new(Mutex::new(bus));
    let addr = serve_tcp(bus.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let units: Vec<u8> = UNITS.collect();
    write_inventory(
        &dir.path().join("inventory"),
        &addr.to_string(),
        "tcp",
        &units,
    );
    let interval = Duration::from_millis(300);
    let gw = Gateway::start(dir.path(), |s| {
        s.poll.slc_interval = interval;
        s.poll.request_timeout = Duration::from_millis(100);
        s.poll.offline_after = 3;
        s.poll.unit_backoff_max = Duration::from_secs(2);
    })
    .await;
    let alive = |u: u8| !DEAD.contains(&u);
    eventually(
        "the nine answering units online, the three dead offline",
        || async {
            let on = gw.online();
            units.iter().zip(&on).all(|(u, o)| *o == alive(*u))
                && gw.live.read().lamps.iter().all(|l| l.last_poll.is_some())
        },
    )
    .await;

    // Over a window of 3 s (10 intervals) every answering unit is read at
    // its cadence and never drops offline; the dead ones are probed, less
    // often (their own backoff), and never taken for online.
    let before = bus.lock().reads.clone();
    let window = Duration::from_secs(3);
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        let on = gw.online();
        for (u, o) in units.iter().zip(&on) {
            assert_eq!(*o, alive(*u), "unit {u} online={o} during the window");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let after = bus.lock().reads.clone();
    let cycles = window.as_secs_f64() / interval.as_secs_f64();
    for u in units.iter().copied() {
        let n = after.get(&u).copied().unwrap_or(0) - before.get(&u).copied().unwrap_or(0);
        if alive(u) {
            assert!(
                n as f64 >= cycles * 0.7,
                "unit {u}: {n} reads in {window:?}, want about {cycles}"
            );
        } else {
            assert!(
                (n as f64) < cycles * 0.7,
                "dead unit {u}: {n} probes in {window:?}: not slowed down"
            );
        }
    }
    let (_, ep) = gw.get("/readyz").await;
    eprintln!("endpoint after the window: {ep}");

    // A command to the last unit, behind all three dead ones, is carried
    // out and read back; one to a dead unit fails as offline.
    let done = gw
        .command("L-013", json!({"action": "dim", "level": 40}))
        .await;
    assert_eq!(done["targets"][0]["state"], "confirmed", "{done}");
    assert_eq!(
        bus.lock().registers[&13][1],
        40,
        "the dim level reached unit 13"
    );
    let done = gw
        .command("L-004", json!({"action": "dim", "level": 40}))
        .await;
    assert_eq!(done["targets"][0]["state"], "failed", "{done}");
    gw.app.shutdown().await.unwrap();
}

/// The same on RTU framing through a serial-to-TCP converter (our own
/// framing keeps the link open after a unit's timeout), with the
/// simulator's `no_answer` fault: 3 of 12 units dead, the 9 others read
/// every cycle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_units_on_rtu_framing_cost_their_neighbours_nothing() {
    use crate::common::{lamp_id, spawn_app_with};
    use lamp_sim::{Framing, InventoryOptions, SimConfig, SlcFault};
    let cfg = SimConfig {
        endpoints: 1,
        slcs_per_endpoint: 12,
        framing: Framing::RtuOverTcp,
        control_port: None,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    };
    let interval = Duration::from_millis(300);
    let t = spawn_app_with(cfg, InventoryOptions::default(), |s| {
        s.poll.slc_interval = interval;
        s.poll.request_timeout = Duration::from_millis(100);
        s.poll.unit_backoff_max = Duration::from_secs(2);
    })
    .await;
    t.all_online().await;
    let dead = [2usize, 3, 8];
    for j in dead {
        t.sim.set_slc_fault(
            0,
            j,
            SlcFault {
                no_answer: true,
                ..SlcFault::default()
            },
        );
    }
    let lamp = |j: usize| t.live.inventory.lamp_position(&lamp_id(0, j)).unwrap();
    eventually("the three dead SLCs offline", || async {
        let live = t.live.read();
        dead.iter().all(|&j| !live.lamps[lamp(j)].online)
    })
    .await;
    let seen = |j: usize| t.live.read().lamps[lamp(j)].last_seen;
    let before: Vec<_> = (0..12).map(seen).collect();
    let window = Duration::from_secs(3);
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        let dropped: Vec<usize> = {
            let live = t.live.read();
            (0..12)
                .filter(|j| !dead.contains(j) && !live.lamps[lamp(*j)].online)
                .collect()
        };
        assert!(dropped.is_empty(), "SLCs {dropped:?} dropped offline");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for j in (0..12).filter(|j| !dead.contains(j)) {
        let last = seen(j).expect("seen");
        assert!(before[j] < Some(last), "SLC {j} not read during the window");
        let age = chrono::Utc::now() - last;
        assert!(
            age.to_std().unwrap_or_default() < interval * 3,
            "SLC {j} last read {age} ago: not at its cadence"
        );
    }
    t.stop().await;
}

/// A cabinet behind one Modbus TCP gateway (tokio-modbus's server): its RTU
/// at unit 1, which never answers, and SLCs at units 2–5, which do; the
/// gateway polls RTUs every 200 ms and SLCs every 300 ms.
async fn a_cabinet_with_a_dead_rtu() -> (Arc<Mutex<Bus>>, Gateway, tempfile::TempDir) {
    let mut bus = Bus::lamps(2..=5);
    bus.dead.insert(1);
    let bus = Arc::new(Mutex::new(bus));
    let addr = serve_tcp(bus.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    write_cabinet(
        &dir.path().join("inventory"),
        &addr.to_string(),
        "tcp",
        Some(1),
        &[2, 3, 4, 5],
    );
    let gw = Gateway::start(dir.path(), |s| {
        s.poll.rtu_interval = RTU_INTERVAL;
        s.poll.slc_interval = SLC_INTERVAL;
        s.poll.request_timeout = Duration::from_millis(150);
        s.poll.offline_after = 3;
        s.poll.unit_backoff_max = Duration::from_secs(2);
        s.poll.reconnect_min = Duration::from_millis(200);
        s.poll.reconnect_max = Duration::from_secs(1);
    })
    .await;
    (bus, gw, dir)
}

const RTU_INTERVAL: Duration = Duration::from_millis(200);
const SLC_INTERVAL: Duration = Duration::from_millis(300);

fn rtu(gw: &Gateway) -> (bool, u32, Option<String>) {
    let live = gw.live.read();
    let r = &live.rtus[0];
    (
        r.online,
        r.consecutive_failures,
        r.last_error.as_ref().map(|e| e.kind().to_string()),
    )
}

/// Sent poll cycles of the endpoint so far: (RTU, SLC).
fn cycles(gw: &Gateway) -> (u64, u64) {
    let c = gw.live.read().endpoints[0].cycles;
    (c[0], c[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_rtu_costs_the_slcs_behind_the_same_gateway_nothing() {
    let (bus, gw, _dir) = a_cabinet_with_a_dead_rtu().await;
    eventually("the four SLCs online, the dead RTU offline", || async {
        let (online, failures, _) = rtu(&gw);
        !online && failures >= 3 && gw.online().iter().all(|o| *o)
    })
    .await;
    let (_, _, error) = rtu(&gw);
    assert_eq!(error.as_deref(), Some("timeout"), "the RTU's own failure");

    // Over 3 s every SLC is read at its cadence and never drops offline;
    // the endpoint is never backed off (every due cycle of both classes is
    // sent); the dead RTU is probed, on a dead unit's cadence of its own.
    let (before, cycles_before) = (bus.lock().reads.clone(), cycles(&gw));
    let window = Duration::from_secs(3);
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        let on = gw.online();
        assert!(
            on.iter().all(|o| *o),
            "SLCs online during the window: {on:?}"
        );
        assert!(!rtu(&gw).0, "the dead RTU taken for online");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (after, cycles_after) = (bus.lock().reads.clone(), cycles(&gw));
    let read = |u: u8| after.get(&u).copied().unwrap_or(0) - before.get(&u).copied().unwrap_or(0);
    let slc_cycles = window.as_secs_f64() / SLC_INTERVAL.as_secs_f64();
    let rtu_cycles = window.as_secs_f64() / RTU_INTERVAL.as_secs_f64();
    for u in 2..=5 {
        assert!(
            read(u) as f64 >= slc_cycles * 0.7,
            "SLC unit {u}: {} reads in {window:?}, want about {slc_cycles}",
            read(u)
        );
    }
    let sent = (
        cycles_after.0 - cycles_before.0,
        cycles_after.1 - cycles_before.1,
    );
    assert!(
        sent.0 as f64 >= rtu_cycles * 0.7 && sent.1 as f64 >= slc_cycles * 0.7,
        "cycles sent in {window:?}: {sent:?}, want about {rtu_cycles} and {slc_cycles}"
    );
    assert!(
        read(1) >= 1 && (read(1) as f64) < rtu_cycles * 0.5,
        "the dead RTU: {} probes in {window:?} of {rtu_cycles} cycles",
        read(1)
    );
    gw.app.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cabinet_gone_silent_fails_its_endpoint_and_its_slcs_come_back_with_the_rtu_dead() {
    let (bus, gw, _dir) = a_cabinet_with_a_dead_rtu().await;
    eventually("the four SLCs online, the dead RTU offline", || async {
        !rtu(&gw).0 && gw.online().iter().all(|o| *o)
    })
    .await;

    // The whole cabinet goes silent (its gateway's serial side lost): the
    // endpoint fails and backs off, so most due cycles are not sent, and
    // every SLC goes offline with the timeout that made it back off.
    bus.lock().dead.extend(2..=5);
    eventually("every SLC offline, the endpoint failed", || async {
        gw.online().iter().all(|o| !o) && !gw.live.read().endpoints[0].connected
    })
    .await;
    let kinds: Vec<Option<&'static str>> = {
        let live = gw.live.read();
        live.lamps
            .iter()
            .map(|l| l.last_error.as_ref().map(|e| e.kind()))
            .collect()
    };
    assert!(kinds.iter().all(|k| *k == Some("timeout")), "{kinds:?}");
    let before = cycles(&gw);
    let window = Duration::from_secs(3);
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        assert!(
            gw.online().iter().all(|o| !o),
            "an SLC online on a silent bus"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let after = cycles(&gw);
    let sent = (after.0 - before.0) + (after.1 - before.1);
    let due = window.as_secs_f64() / RTU_INTERVAL.as_secs_f64()
        + window.as_secs_f64() / SLC_INTERVAL.as_secs_f64();
    assert!(
        (sent as f64) < due * 0.5,
        "{sent} cycles sent in {window:?} of {due} due: not backing off"
    );

    // The SLCs answer again, the RTU is still dead: a try after the backoff
    // finds the endpoint alive (the RTU cycle's witness, or an SLC cycle),
    // and the SLCs come back online and stay so.
    bus.lock().dead.retain(|u| *u == 1);
    eventually("the four SLCs online again", || async {
        gw.online().iter().all(|o| *o) && gw.live.read().endpoints[0].connected
    })
    .await;
    let window = Duration::from_secs(2);
    let end = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < end {
        let on = gw.online();
        assert!(
            on.iter().all(|o| *o),
            "SLCs online after the bus came back: {on:?}"
        );
        assert!(!rtu(&gw).0, "the dead RTU taken for online");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    gw.app.shutdown().await.unwrap();
}
