//! `lamp-bench mqtt`: the MQTT mirror at city scale, one JSON object.
//!
//! ```sh
//! cargo build --release -p lamp-bench
//! target/release/lamp-bench mqtt                       # 100,000 lamps, both brokers
//! target/release/lamp-bench mqtt --broker mosquitto --endpoints 20 --slcs-per-endpoint 10
//! ```
//!
//! Simulated SLCs (in process, frozen), the gateway in process (unlike the
//! poll benchmark: here the broker's view is measured, not the gateway's
//! process), publishing to (a) a private Mosquitto started on a free port
//! with unlimited queues, (b) the embedded rumqttd. For each: time from
//! gateway start until a subscriber connected beforehand holds the state of
//! every lamp; publishes per second; process CPU per message; then a late
//! subscriber's time to receive every retained state. Same-run baseline: a
//! bare rumqttc client publishing as many retained QoS 1 messages of the same
//! size to the same broker. A run with MQTT off gives the poll cycle's own
//! CPU, so the MQTT share of the gateway's CPU can be told apart.

use crate::procfs;
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Broker {
    Both,
    Mosquitto,
    Embedded,
}

#[derive(clap::Args)]
pub struct MqttArgs {
    /// Modbus endpoints (cabinets) in the simulator
    #[arg(long, default_value_t = 1000)]
    endpoints: usize,
    /// SLCs behind each endpoint
    #[arg(long, default_value_t = 100)]
    slcs_per_endpoint: usize,
    /// Which broker the gateway publishes to
    #[arg(long, value_enum, default_value = "both")]
    broker: Broker,
    /// The Mosquitto binary started as the private broker
    #[arg(long, default_value = "mosquitto")]
    mosquitto: PathBuf,
}

/// The city's size: lamps (one state each) and the messages of a full
/// publish (every lamp and every cabinet RTU).
#[derive(Clone, Copy)]
struct City {
    endpoints: usize,
    slcs: usize,
}

impl City {
    fn lamps(self) -> usize {
        self.endpoints * self.slcs
    }

    fn messages(self) -> usize {
        self.lamps() + self.endpoints
    }
}

pub fn run(args: MqttArgs) -> anyhow::Result<()> {
    let city = City {
        endpoints: args.endpoints,
        slcs: args.slcs_per_endpoint,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut brokers = Vec::new();
    if args.broker != Broker::Embedded {
        brokers.push(rt.block_on(private_mosquitto(city, &args.mosquitto))?);
    }
    if args.broker != Broker::Mosquitto {
        brokers.push(rt.block_on(embedded_rumqttd(city))?);
    }
    let report = json!({
        "bench": "mqtt",
        "machine": procfs::machine(),
        "endpoints": city.endpoints,
        "slcs_per_endpoint": city.slcs,
        "lamps": city.lamps(),
        "messages_per_full_publish": city.messages(),
        "brokers": brokers,
    });
    println!("{}", serde_json::to_string(&report)?);
    // The embedded broker's threads run until the process ends.
    rt.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

fn unique_root(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("lgbench-{what}-{}-{nanos}", std::process::id())
}

/// CPU seconds this process has used (all threads).
fn cpu_seconds() -> f64 {
    procfs::self_cpu_seconds().unwrap_or(f64::NAN)
}

fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

/// Seconds with millisecond resolution; `null` when not reached in time.
fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(round(d.as_secs_f64(), 3)))
}

/// Counts distinct lamp-state topics a subscriber has received.
struct Counter {
    topics: Arc<Mutex<HashSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

async fn counter(port: u16, filter: &str, qos: QoS) -> anyhow::Result<Counter> {
    let mut o = MqttOptions::new(unique_root("sub"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(o, 10);
    client.subscribe(filter, qos).await?;
    let topics = Arc::new(Mutex::new(HashSet::new()));
    let t = topics.clone();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let task = tokio::spawn(async move {
        let _client = client;
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic.contains("/lamp/") => {
                    t.lock().unwrap_or_else(|e| e.into_inner()).insert(p.topic);
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("lamp-bench mqtt: subscriber: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    ready.await?;
    Ok(Counter { topics, task })
}

impl Counter {
    fn count(&self) -> usize {
        self.topics.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    async fn wait_for(&self, n: usize, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.count() >= n {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!(
            "lamp-bench mqtt: subscriber got {} of {n} within {limit:?}",
            self.count()
        );
        None
    }

    fn stop(self) {
        self.task.abort();
    }
}

/// A frozen simulator and gateway settings polling it once an hour (one
/// full cycle in the run), with its inventory and profiles in `dir`.
async fn city_and_settings(
    city: City,
    dir: &std::path::Path,
) -> anyhow::Result<(Simulator, Settings)> {
    let sim = Simulator::start(SimConfig {
        endpoints: city.endpoints,
        slcs_per_endpoint: city.slcs,
        districts: 10,
        ..SimConfig::default()
    })
    .await?;
    sim.set_frozen(true);
    let inv = dir.join("inventory");
    std::fs::create_dir_all(&inv)?;
    sim.write_inventory(&inv, &InventoryOptions::default())?;
    let mut s = Settings::default();
    s.alarms.file = dir.join("alarms.open.json");
    s.alarms.webhook_dir = dir.join("webhooks");
    s.api.listen = "127.0.0.1:0".parse()?;
    s.paths.inventory = inv;
    s.paths.profiles = crate::write_profiles(dir)?;
    s.poll.slc_interval = Duration::from_secs(3600);
    s.poll.rtu_interval = Duration::from_secs(3600);
    Ok((sim, s))
}

/// The same gateway with MQTT off: CPU and time of the poll cycle alone, so
/// the MQTT share of the gateway's CPU can be told apart.
async fn poll_only(city: City) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let (sim, mut s) = city_and_settings(city, dir.path()).await?;
    s.mqtt.url = lamp_gateway::mqtt::BrokerChoice::None;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let app = Application::build(s).await?;
    let live = app.live();
    while live.full_cycles() < 1 && t0.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let polled = t0.elapsed();
    let cpu = cpu_seconds() - cpu0;
    app.shutdown().await?;
    sim.shutdown().await;
    Ok(json!({
        "first_poll_cycle_seconds": round(polled.as_secs_f64(), 3),
        "process_cpu_seconds": round(cpu, 3),
    }))
}

/// The gateway publishing to the broker on `port` (None: the embedded one).
/// Returns the figures and the broker's port.
async fn gateway_run(city: City, port: Option<u16>, root: &str) -> anyhow::Result<(Value, u16)> {
    let (lamps, messages) = (city.lamps(), city.messages());
    let dir = tempfile::tempdir()?;
    let (sim, mut s) = city_and_settings(city, dir.path()).await?;
    s.mqtt.topic_root = root.into();
    s.mqtt.spill_dir = dir.path().join("spill");
    match port {
        Some(p) => {
            s.mqtt.url = format!("mqtt://127.0.0.1:{p}")
                .parse()
                .map_err(anyhow::Error::msg)?
        }
        None => {
            s.mqtt.url = lamp_gateway::mqtt::BrokerChoice::Embedded;
            s.mqtt.embedded_listen = "127.0.0.1:0".parse()?;
        }
    }
    let filter = format!("{root}/+/lamp/+/state");
    // A subscriber already there when the gateway starts (Mosquitto only: the
    // embedded broker starts with the gateway).
    let early = match port {
        Some(p) => Some(counter(p, &filter, QoS::AtLeastOnce).await?),
        None => None,
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let app = Application::build(s).await?;
    let status = app
        .mqtt_status()
        .ok_or_else(|| anyhow::anyhow!("the gateway started without MQTT"))?;
    let broker_port = match port {
        Some(p) => p,
        None => app
            .mqtt_embedded()
            .ok_or_else(|| anyhow::anyhow!("no embedded broker"))?
            .port(),
    };
    let early = match early {
        Some(c) => c,
        None => counter(broker_port, &filter, QoS::AtMostOnce).await?,
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
            if acked >= messages as u64 || t0.elapsed() > Duration::from_secs(90) {
                return (polled, first, t0.elapsed(), acked);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let got_all = early
        .wait_for(lamps, Duration::from_secs(60))
        .await
        .map(|_| t0.elapsed());
    let (polled, first, last, published) = watcher.await?;
    let cpu = cpu_seconds() - cpu0;
    early.stop();
    let first_s = first.map_or(0.0, |d| d.as_secs_f64());
    let mut late = serde_json::Map::new();
    for (key, qos) in [
        ("late_subscriber_qos0_all_retained_seconds", QoS::AtMostOnce),
        (
            "late_subscriber_qos1_all_retained_seconds",
            QoS::AtLeastOnce,
        ),
    ] {
        let sub = counter(broker_port, &filter, qos).await?;
        late.insert(
            key.into(),
            secs(sub.wait_for(lamps, Duration::from_secs(30)).await),
        );
        sub.stop();
    }
    app.shutdown().await?;
    sim.shutdown().await;
    let mut figures = json!({
        "live_subscriber_has_all_lamps_seconds": secs(got_all),
        "first_poll_cycle_seconds": secs(polled),
        "first_state_acked_seconds": secs(first),
        "last_state_acked_seconds": round(last.as_secs_f64(), 3),
        "states_acked": published,
        "states_acked_per_second": round(published as f64 / (last.as_secs_f64() - first_s).max(1e-3), 0),
        // One cycle of Modbus polls + simulator + MQTT + subscriber (+ the
        // broker when it is the embedded one).
        "process_cpu_seconds": round(cpu, 3),
        "process_cpu_us_per_message": round(cpu / published.max(1) as f64 * 1e6, 1),
    });
    if let Value::Object(f) = &mut figures {
        f.extend(late);
    }
    Ok((figures, broker_port))
}

/// A bare rumqttc client publishing the same number of retained QoS 1
/// messages of a lamp state's size: what the broker and client allow.
async fn baseline(city: City, port: u16, root: &str) -> anyhow::Result<Value> {
    let messages = city.messages();
    let sample = br#"{"lamp_id":"LX-0001-001","slc_id":"SLC-0001-001","district":"D01","cabinet":"CAB-0001","circuit":1,"online":true,"since":"2026-11-26T05:28:19.034922379Z","last_seen":"2026-11-26T05:28:19.034922379Z","at":"2026-11-26T05:28:19.034922379Z","on":true,"dim_level":100.0,"voltage":222.4,"current":0.275,"power":58.2,"power_factor":0.95,"energy_kwh":583.58,"burning_hours":12158.0,"fault_flags":0,"faults":[],"lamp_failure":false,"last_error":null}"#;
    let filter = format!("{root}/+/lamp/+/state");
    let live = counter(port, &filter, QoS::AtLeastOnce).await?;
    let mut o = MqttOptions::new(unique_root("pub"), "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(500);
    let (client, mut el) = AsyncClient::new(o, 1000);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let root2 = root.to_string();
    tokio::spawn(async move {
        for i in 0..messages {
            let topic = format!("{root2}/D{:02}/lamp/LX-{:06}/state", i % 10 + 1, i);
            if let Err(e) = client
                .publish(topic, QoS::AtLeastOnce, true, sample.to_vec())
                .await
            {
                eprintln!("lamp-bench mqtt: baseline publish: {e}");
                return;
            }
        }
    });
    let mut acked = 0;
    while acked < messages && t0.elapsed() < Duration::from_secs(90) {
        if let Ok(Event::Incoming(Packet::PubAck(_))) = el.poll().await {
            acked += 1;
        }
    }
    let acked_in = t0.elapsed();
    let got = live
        .wait_for(messages, Duration::from_secs(60))
        .await
        .map(|_| t0.elapsed());
    let cpu = cpu_seconds() - cpu0;
    live.stop();
    let late = counter(port, &filter, QoS::AtMostOnce).await?;
    let late_all = late.wait_for(messages, Duration::from_secs(30)).await;
    late.stop();
    Ok(json!({
        "acked": acked,
        "acked_seconds": round(acked_in.as_secs_f64(), 3),
        "acked_per_second": round(acked as f64 / acked_in.as_secs_f64(), 0),
        "live_subscriber_has_all_seconds": secs(got),
        // Publisher + subscriber.
        "process_cpu_seconds": round(cpu, 3),
        "process_cpu_us_per_message": round(cpu / acked.max(1) as f64 * 1e6, 1),
        "late_subscriber_qos0_all_retained_seconds": secs(late_all),
    }))
}

/// The gateway's CPU per message over the MQTT-off run: what the mirror costs.
fn mqtt_share(gateway: &Value, mqtt_off: &Value) -> Value {
    let on = gateway["process_cpu_seconds"].as_f64();
    let off = mqtt_off["process_cpu_seconds"].as_f64();
    let n = gateway["states_acked"].as_f64().filter(|n| *n > 0.0);
    match (on, off, n) {
        (Some(on), Some(off), Some(n)) => json!(round((on - off) / n * 1e6, 1)),
        _ => Value::Null,
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn private_mosquitto(city: City, binary: &std::path::Path) -> anyhow::Result<Value> {
    let port = free_port()?;
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("mosquitto.conf");
    // Unlimited queues: a new wildcard subscriber must get every retained state.
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_inflight_messages 0\nmax_queued_bytes 0\n"
        ),
    )?;
    let mut broker = std::process::Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "starting {} (apt-get install mosquitto): {e}",
                binary.display()
            )
        })?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            let _ = broker.kill();
            anyhow::bail!("mosquitto did not start on port {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "lamp-bench mqtt: private Mosquitto on 127.0.0.1:{port}, {} lamps + {} RTUs",
        city.lamps(),
        city.endpoints
    );
    let run = async {
        let baseline = baseline(city, port, &unique_root("base")).await?;
        let mqtt_off = poll_only(city).await?;
        let (gateway, _) = gateway_run(city, Some(port), &unique_root("gw")).await?;
        anyhow::Ok(json!({
            "broker": "mosquitto",
            "note": "private, unlimited queues",
            "mosquitto_version": mosquitto_version(binary),
            "gateway_cpu_us_per_message_over_mqtt_off": mqtt_share(&gateway, &mqtt_off),
            "gateway": gateway,
            "mqtt_off": mqtt_off,
            "baseline_bare_rumqttc": baseline,
        }))
    }
    .await;
    let _ = broker.kill();
    let _ = broker.wait();
    run
}

async fn embedded_rumqttd(city: City) -> anyhow::Result<Value> {
    eprintln!(
        "lamp-bench mqtt: embedded rumqttd, {} lamps + {} RTUs",
        city.lamps(),
        city.endpoints
    );
    let mqtt_off = poll_only(city).await?;
    let (gateway, port) = gateway_run(city, None, &unique_root("gw")).await?;
    // The embedded broker keeps running in this process: the baseline uses it.
    let baseline = baseline(city, port, &unique_root("base")).await?;
    Ok(json!({
        "broker": "embedded rumqttd",
        "gateway_cpu_us_per_message_over_mqtt_off": mqtt_share(&gateway, &mqtt_off),
        "gateway": gateway,
        "mqtt_off": mqtt_off,
        "baseline_bare_rumqttc": baseline,
    }))
}

/// `mosquitto -h` prints its version on the first line (and exits non-zero).
fn mosquitto_version(binary: &std::path::Path) -> Value {
    std::process::Command::new(binary)
        .arg("-h")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
        })
        .map_or(Value::Null, Value::String)
}
