//! MQTT figures at city scale (ignored by default; release build):
//!
//! ```sh
//! cargo test --release --test mqtt_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! 100,000 simulated SLCs on 1,000 endpoints (in process, frozen), the
//! gateway in process publishing to (a) a private Mosquitto started on a free
//! port with unlimited queues, (b) the embedded rumqttd. For each: time from
//! gateway start until a subscriber connected beforehand holds the state of
//! all 100,000 lamps; publishes per second; process CPU per message; then a
//! late subscriber's time to receive all 100,000 retained states. Same-run
//! baseline: a bare rumqttc client publishing 101,000 retained QoS 1 messages
//! of the same size to the same broker.

#[path = "it/mqtt/harness.rs"]
#[allow(dead_code)]
mod harness;

use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const ENDPOINTS: usize = 1000;
const SLCS: usize = 100;
const LAMPS: usize = ENDPOINTS * SLCS;
const MESSAGES: usize = LAMPS + ENDPOINTS;

/// CPU seconds this process has used (all threads).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Counts distinct lamp-state topics a subscriber has received.
struct Counter {
    topics: Arc<Mutex<HashSet<String>>>,
    stop: CancellationToken,
}

async fn counter(port: u16, filter: &str, qos: QoS) -> Counter {
    let mut o = MqttOptions::new(harness::unique_root("bench-sub"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(o, 10);
    client.subscribe(filter, qos).await.unwrap();
    let topics = Arc::new(Mutex::new(HashSet::new()));
    let stop = CancellationToken::new();
    let (t, s) = (topics.clone(), stop.clone());
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        let _client = client;
        loop {
            let ev = tokio::select! {
                () = s.cancelled() => return,
                ev = el.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.contains("/lamp/") => {
                    t.lock().insert(p.topic);
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("bench subscriber: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    ready.await.unwrap();
    Counter { topics, stop }
}

impl Counter {
    async fn wait_for(&self, n: usize, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.topics.lock().len() >= n {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!(
            "  subscriber got {} of {n} within {limit:?}",
            self.topics.lock().len()
        );
        None
    }
}

fn show(what: &str, d: Option<Duration>) -> String {
    d.map_or(format!("{what}: not all within the limit"), |d| {
        format!("{what}: {:.2} s", d.as_secs_f64())
    })
}

/// The same gateway with MQTT off: CPU and time of the poll cycle alone, so
/// the MQTT share of the gateway's CPU can be told apart.
async fn poll_only() {
    let sim = Simulator::start(SimConfig {
        endpoints: ENDPOINTS,
        slcs_per_endpoint: SLCS,
        districts: 10,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.set_frozen(true);
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv).unwrap();
    sim.write_inventory(&inv, &InventoryOptions::default())
        .unwrap();
    let mut s = Settings::default();
    s.api.listen = "127.0.0.1:0".parse().unwrap();
    s.paths.inventory = inv;
    s.paths.profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    s.poll.slc_interval = Duration::from_secs(3600);
    s.poll.rtu_interval = Duration::from_secs(3600);
    s.mqtt.url = "none".into();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let app = Application::build(s).await.unwrap();
    let live = app.live();
    while live.full_cycles() < 1 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!(
        "  MQTT off: first poll cycle done at {:.2} s, process CPU {:.2} s (polls + simulator)",
        t0.elapsed().as_secs_f64(),
        cpu_seconds() - cpu0
    );
    app.shutdown().await.unwrap();
    sim.shutdown().await;
}

async fn gateway_run(port: Option<u16>, root: &str) -> u16 {
    let sim = Simulator::start(SimConfig {
        endpoints: ENDPOINTS,
        slcs_per_endpoint: SLCS,
        districts: 10,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.set_frozen(true);
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv).unwrap();
    sim.write_inventory(&inv, &InventoryOptions::default())
        .unwrap();
    let mut s = Settings::default();
    s.api.listen = "127.0.0.1:0".parse().unwrap();
    s.paths.inventory = inv;
    s.paths.profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    s.poll.slc_interval = Duration::from_secs(3600);
    s.poll.rtu_interval = Duration::from_secs(3600);
    s.mqtt.topic_root = root.into();
    s.mqtt.spill_dir = dir.path().join("spill");
    match port {
        Some(p) => s.mqtt.url = format!("mqtt://127.0.0.1:{p}"),
        None => {
            s.mqtt.url = "embedded".into();
            s.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
        }
    }
    // A subscriber already there when the gateway starts (Mosquitto only: the
    // embedded broker starts with the gateway).
    let early = match port {
        Some(p) => Some(counter(p, &format!("{root}/+/lamp/+/state"), QoS::AtLeastOnce).await),
        None => None,
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let app = Application::build(s).await.unwrap();
    let status = app.mqtt_status().unwrap();
    let broker_port = port.unwrap_or_else(|| app.mqtt_embedded().unwrap().port());
    let early = match early {
        Some(c) => c,
        None => {
            counter(
                broker_port,
                &format!("{root}/+/lamp/+/state"),
                QoS::AtMostOnce,
            )
            .await
        }
    };
    // Watch the gateway from the side: first full poll cycle, first and
    // last PUBACK of a state.
    let live = app.live();
    let watch_status = status.clone();
    let watcher = tokio::spawn(async move {
        let (mut polled, mut first) = (None, None);
        loop {
            let acked = watch_status.states_published.load(Ordering::Relaxed);
            if polled.is_none() && live.full_cycles() >= 1 {
                polled = Some(t0.elapsed());
            }
            if first.is_none() && acked > 0 {
                first = Some(t0.elapsed());
            }
            if acked >= MESSAGES as u64 || t0.elapsed() > Duration::from_secs(90) {
                return (polled, first, t0.elapsed(), acked);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let got_all = early
        .wait_for(LAMPS, Duration::from_secs(60))
        .await
        .map(|_| t0.elapsed());
    let (polled, first, last, published) = watcher.await.unwrap();
    let cpu = cpu_seconds() - cpu0;
    early.stop.cancel();
    let secs = |d: Option<Duration>| d.map_or("?".into(), |d| format!("{:.2}", d.as_secs_f64()));
    let first_s = first.map_or(0.0, |d| d.as_secs_f64());
    println!(
        "  gateway: {}; first poll cycle done at {} s; states acked from {} s to {:.2} s: {published} = {:.0} msg/s",
        show("live subscriber has all 100,000 lamps since start", got_all),
        secs(polled),
        secs(first),
        last.as_secs_f64(),
        published as f64 / (last.as_secs_f64() - first_s).max(1e-3),
    );
    println!(
        "  gateway: process CPU {cpu:.2} s over the run (1 cycle of 100,000 Modbus polls + simulator + MQTT + subscriber{}) = {:.1} µs per message",
        if port.is_none() { " + broker" } else { "" },
        cpu / published.max(1) as f64 * 1e6
    );
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let late = counter(broker_port, &format!("{root}/+/lamp/+/state"), qos).await;
        let d = late.wait_for(LAMPS, Duration::from_secs(30)).await;
        println!(
            "  late subscriber ({qos:?}): {}",
            show("all 100,000 retained states", d)
        );
        late.stop.cancel();
    }
    app.shutdown().await.unwrap();
    sim.shutdown().await;
    broker_port
}

/// A bare rumqttc client publishing the same number of retained QoS 1
/// messages of a lamp state's size: what the broker and client allow.
async fn baseline(port: u16, root: &str) {
    let sample = br#"{"lamp_id":"LX-0001-001","slc_id":"SLC-0001-001","district":"D01","cabinet":"CAB-0001","circuit":1,"online":true,"since":"2026-11-26T05:28:19.034922379Z","last_seen":"2026-11-26T05:28:19.034922379Z","at":"2026-11-26T05:28:19.034922379Z","on":true,"dim_level":100.0,"voltage":222.4,"current":0.275,"power":58.2,"power_factor":0.95,"energy_kwh":583.58,"burning_hours":12158.0,"fault_flags":0,"faults":[],"lamp_failure":false,"last_error":null}"#;
    let live = counter(port, &format!("{root}/+/lamp/+/state"), QoS::AtLeastOnce).await;
    let mut o = MqttOptions::new(harness::unique_root("bench-pub"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(500);
    let (client, mut el) = AsyncClient::new(o, 1000);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let root2 = root.to_string();
    tokio::spawn(async move {
        for i in 0..MESSAGES {
            let topic = format!("{root2}/D{:02}/lamp/LX-{:06}/state", i % 10 + 1, i);
            client
                .publish(topic, QoS::AtLeastOnce, true, sample.to_vec())
                .await
                .unwrap();
        }
    });
    let mut acked = 0;
    while acked < MESSAGES && t0.elapsed() < Duration::from_secs(90) {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = el.poll().await {
            acked += 1;
        }
    }
    let acked_in = t0.elapsed();
    let got = live
        .wait_for(MESSAGES, Duration::from_secs(60))
        .await
        .map(|_| t0.elapsed());
    let cpu = cpu_seconds() - cpu0;
    live.stop.cancel();
    println!(
        "  baseline bare rumqttc: {acked} acked in {:.2} s = {:.0} msg/s; {}; process CPU {cpu:.2} s = {:.1} µs per message",
        acked_in.as_secs_f64(),
        acked as f64 / acked_in.as_secs_f64(),
        show("live subscriber has all", got),
        cpu / acked as f64 * 1e6
    );
    let late = counter(port, &format!("{root}/+/lamp/+/state"), QoS::AtMostOnce).await;
    let d = late.wait_for(MESSAGES, Duration::from_secs(30)).await;
    println!(
        "  baseline late subscriber (AtMostOnce): {}",
        show("all retained", d)
    );
    late.stop.cancel();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: 100,000 lamps, run with --release"]
async fn mqtt_bench_private_mosquitto() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    // Unlimited queues: a new wildcard subscriber must get every retained state.
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_inflight_messages 0\nmax_queued_bytes 0\n"
        ),
    )
    .unwrap();
    let mut broker = std::process::Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto binary (apt-get install mosquitto)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("private Mosquitto on 127.0.0.1:{port}, 100,000 lamps + 1,000 RTUs:");
    baseline(port, &harness::unique_root("base")).await;
    poll_only().await;
    gateway_run(Some(port), &harness::unique_root("gw")).await;
    let _ = broker.kill();
    let _ = broker.wait();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: 100,000 lamps, run with --release"]
async fn mqtt_bench_embedded_rumqttd() {
    println!("embedded rumqttd, 100,000 lamps + 1,000 RTUs:");
    poll_only().await;
    let port = gateway_run(None, &harness::unique_root("gw")).await;
    // The embedded broker keeps running in this process: the baseline uses it.
    baseline(port, &harness::unique_root("base")).await;
}
