//! RTU framing as buses carry it: an RS-485 line on a serial port (a socat
//! pseudo-terminal pair, the simulator on the other end), stray frames and
//! noise before replies, a pause between frames, and SLCs that accept only
//! "write multiple registers".

use super::farm::{serve_tcp, write_inventory, Bus};
use super::Gateway;
use crate::common::{eventually, lamp_id, spawn_app_with, TestApp};
use lamp_sim::{EndpointFault, Framing, InventoryOptions, Link, SimConfig, Simulator};
use parking_lot::Mutex;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// A pseudo-terminal pair from socat, killed on drop.
struct PtyPair {
    child: Child,
    gateway_end: PathBuf,
    device_end: PathBuf,
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `None` (and a message saying how to get it) when socat is missing.
async fn pty_pair(dir: &Path) -> Option<PtyPair> {
    let (a, b) = (dir.join("ttyGW"), dir.join("ttyDEV"));
    let child = Command::new("socat")
        .arg("-d")
        .arg(format!("pty,raw,echo=0,link={}", a.display()))
        .arg(format!("pty,raw,echo=0,link={}", b.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = child else {
        eprintln!(
            "SKIPPED: socat not installed (apt-get install socat); scripts/test.sh installs it"
        );
        return None;
    };
    let pair = PtyPair {
        child,
        gateway_end: a,
        device_end: b,
    };
    eventually("socat's two pty links", || async {
        pair.gateway_end.exists() && pair.device_end.exists()
    })
    .await;
    Some(pair)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_on_a_serial_port_is_polled_and_commanded() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pty) = pty_pair(dir.path()).await else {
        return;
    };
    let cfg = SimConfig {
        endpoints: 1,
        slcs_per_endpoint: 6,
        framing: Framing::RtuOverTcp,
        link: Link::Serial(vec![pty.device_end.clone()]),
        control_port: None,
        ..SimConfig::default()
    };
    let sim = Simulator::start(cfg)
        .await
        .expect("the farm serves the pty");
    let inv = dir.path().join("inventory");
    sim.write_inventory(&inv, &InventoryOptions::default())
        .unwrap();
    // The farm writes the end it serves; the gateway opens the other one,
    // with a pause between frames as a slow converter needs.
    let cabinets = std::fs::read_to_string(inv.join("cabinets.csv")).unwrap();
    let ours = format!("serial:{}", pty.gateway_end.display());
    let cabinets = cabinets.replace(&format!("serial:{}", pty.device_end.display()), &ours);
    let cabinets = cabinets.replace("stop_bits=1", "stop_bits=1&request_gap=5ms");
    assert!(cabinets.contains(&ours), "{cabinets}");
    std::fs::write(inv.join("cabinets.csv"), cabinets).unwrap();

    let gw = Gateway::start(dir.path(), |s| {
        s.poll.slc_interval = Duration::from_millis(200);
        s.poll.rtu_interval = Duration::from_millis(200);
    })
    .await;
    eventually("the RTU and six SLCs on the serial bus online", || async {
        let live = gw.live.read();
        live.rtus.iter().all(|r| r.online) && live.lamps.iter().all(|l| l.online)
    })
    .await;
    let (_, rtu) = gw.get("/api/v1/rtus/RTU-0001").await;
    assert_eq!(
        rtu["endpoint"],
        format!("{ours}?baud=9600&parity=N&data_bits=8&stop_bits=1&request_gap=5ms")
    );
    let lamp = lamp_id(0, 4);
    let done = gw
        .command(&lamp, json!({"action": "dim", "level": 55}))
        .await;
    assert_eq!(done["targets"][0]["state"], "confirmed", "{done}");
    assert_eq!(sim.slc_values(0, 4).dim_level, 55.0);
    gw.app.shutdown().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stray_frames_and_noise_before_replies_are_skipped_without_dropping_the_link() {
    let cfg = SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 5,
        framing: Framing::RtuOverTcp,
        control_port: None,
        ..SimConfig::default()
    };
    let t: TestApp = spawn_app_with(cfg, InventoryOptions::default(), |_| {}).await;
    t.all_online().await;
    // Another master's request, a foreign unit's reply, a broadcast time
    // write and line noise before every reply on endpoint 0.
    t.sim.set_endpoint_fault(
        0,
        Some(EndpointFault::StrayFrames {
            every: 1,
            noise: true,
        }),
    );
    let (failed, cycles) = {
        let live = t.live.read();
        (live.endpoints[0].reads_failed, live.endpoints[0].cycles[1])
    };
    eventually("ten SLC cycles of endpoint 0 with stray frames", || async {
        t.live.read().endpoints[0].cycles[1] >= cycles + 10
    })
    .await;
    let (failed_now, all_online) = {
        let live = t.live.read();
        let on = live.lamps.iter().all(|l| l.online) && live.rtus.iter().all(|r| r.online);
        (live.endpoints[0].reads_failed, on)
    };
    assert_eq!(failed_now, failed, "a stray frame failed a read");
    assert!(all_online);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_slc_that_accepts_only_write_multiple_is_commanded_with_function_16() {
    // tokio-modbus's server, refusing function 06 as such SLCs do.
    let mut bus = Bus::lamps([2]);
    bus.refuse_single_writes = true;
    let bus = Arc::new(Mutex::new(bus));
    let addr = serve_tcp(bus.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles/slc-a-unit.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let text = text.replace(
        "name = \"slc-a-unit\"",
        "name = \"slc-a-unit\"\nwrite = \"multiple\"",
    );
    std::fs::write(profiles.join("slc-a-unit.toml"), text).unwrap();
    write_inventory(
        &dir.path().join("inventory"),
        &addr.to_string(),
        "tcp",
        &[2],
    );
    let gw = Gateway::start(dir.path(), |s| s.paths.profiles = profiles.clone()).await;
    eventually("the SLC online", || async { gw.online() == [true] }).await;
    let done = gw
        .command("L-002", json!({"action": "dim", "level": 20}))
        .await;
    assert_eq!(done["targets"][0]["state"], "confirmed", "{done}");
    let (dim, refused) = {
        let bus = bus.lock();
        (bus.registers[&2][1], bus.single_writes_refused)
    };
    assert_eq!(dim, 20);
    assert_eq!(refused, 0, "function 06 was never sent");
    gw.app.shutdown().await.unwrap();
}
