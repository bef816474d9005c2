//! Test-side MQTT parts: a subscriber that records what it receives, a TCP
//! proxy that can cut the gateway off its broker, and the gateway binary as a
//! child process for the last-will test.

use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The Mosquitto that CI (scripts/test.sh) and these machines run.
pub const MOSQUITTO: &str = "127.0.0.1:1883";

pub fn unique_root(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("lgtest-{what}-{}-{nanos}", std::process::id())
}

/// "LX-0002-005" → (endpoint 1, SLC 4).
pub fn lamp_position(id: &str) -> (usize, usize) {
    let mut parts = id.split('-').skip(1);
    let e: usize = parts.next().unwrap().parse().unwrap();
    let j: usize = parts.next().unwrap().parse().unwrap();
    (e - 1, j - 1)
}

#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Latest payload per state topic.
    pub states: HashMap<String, Value>,
    /// Events in arrival order, and the topics they came on.
    pub events: Vec<Value>,
    pub event_topics: Vec<String>,
    pub presence: Vec<String>,
    /// Anything else (commands, acks): topic and payload.
    pub other: Vec<(String, String)>,
    /// Every message in arrival order: topic, payload, retained.
    pub log: Vec<(String, String, bool)>,
}

pub struct Subscriber {
    pub seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
}

/// How a [`Subscriber`] logs in: anonymous over plain TCP by default.
#[derive(Default, Clone)]
pub struct Login {
    pub credentials: Option<(String, String)>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Subscriber {
    /// Connects, subscribes at QoS 1 and returns once the SUBACK is in.
    pub async fn start(host: &str, port: u16, filter: &str) -> Subscriber {
        Self::start_with(host, port, filter, Login::default()).await
    }

    /// [`Subscriber::start`] with credentials and/or TLS.
    pub async fn start_with(host: &str, port: u16, filter: &str, login: Login) -> Subscriber {
        let id = format!("sub-{}", unique_root("s"));
        let mut o = MqttOptions::new(id, host, port);
        o.set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20);
        if let Some((user, pass)) = login.credentials {
            o.set_credentials(user, pass);
        }
        if let Some(tls) = login.tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(tls)));
        }
        let (client, mut el) = AsyncClient::new(o, 100);
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = CancellationToken::new();
        let (subacked_tx, subacked) = tokio::sync::oneshot::channel();
        let mut subacked_tx = Some(subacked_tx);
        let (s, st) = (seen.clone(), stop.clone());
        tokio::spawn(async move {
            let _client = client;
            loop {
                let ev = tokio::select! {
                    () = st.cancelled() => return,
                    ev = el.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subacked_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let text = String::from_utf8_lossy(&p.payload).to_string();
                        let mut seen = s.lock();
                        seen.log.push((p.topic.clone(), text.clone(), p.retain));
                        if p.topic.ends_with("/state") {
                            if let Ok(v) = serde_json::from_str(&text) {
                                seen.states.insert(p.topic.clone(), v);
                            }
                        } else if p.topic.ends_with("/events") {
                            seen.events.push(serde_json::from_str(&text).unwrap());
                            seen.event_topics.push(p.topic.clone());
                        } else if p.topic.ends_with("/status") {
                            seen.presence.push(text);
                        } else {
                            seen.other.push((p.topic.clone(), text));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("test subscriber lost its broker: {e}"),
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subacked)
            .await
            .expect("SUBACK within 10 s")
            .unwrap();
        Subscriber { seen, stop }
    }

    pub fn state(&self, topic: &str) -> Option<Value> {
        self.seen.lock().states.get(topic).cloned()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// Removes the retained messages a test left under `root` (an empty
/// retained publish clears a topic), so the shared Mosquitto stays small.
pub async fn clear_retained(host: &str, port: u16, root: &str) {
    clear_retained_under(host, port, root, &[format!("gw-{root}")]).await;
}

/// [`clear_retained`] for gateways of these ids (their presence topics).
pub async fn clear_retained_under(host: &str, port: u16, root: &str, gateways: &[String]) {
    let sub = Subscriber::start(host, port, &format!("{root}/#")).await;
    // Retained messages arrive right after the SUBACK; a quiet 300 ms after
    // the last one means all are in (this is cleanup, not an assertion).
    let mut last = usize::MAX;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let n = {
            let seen = sub.seen.lock();
            seen.states.len() + seen.presence.len()
        };
        if n == last {
            break;
        }
        last = n;
    }
    let mut topics: Vec<String> = sub.seen.lock().states.keys().cloned().collect();
    topics.extend(
        gateways
            .iter()
            .map(|id| format!("{root}/gateway/{id}/status")),
    );
    sub.stop();
    let mut o = MqttOptions::new(format!("clear-{}", unique_root("c")), host, port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut el) = AsyncClient::new(o, topics.len() + 10);
    for t in &topics {
        client
            .publish(t, QoS::AtLeastOnce, true, Vec::<u8>::new())
            .await
            .unwrap();
    }
    let mut acked = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while acked < topics.len() && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, el.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
}

/// The severable proxy in front of the broker (shared with the store's tests).
pub use lamp_sim::Proxy;

/// The gateway binary polling an in-process simulator, publishing to
/// Mosquitto under `root`; killed by the test.
pub struct GatewayProcess {
    pub child: std::process::Child,
    _sim: Simulator,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()
    }

    pub fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait()
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn spawn_gateway_process(root: &str) -> GatewayProcess {
    spawn_gateway_process_with(root, &format!("mqtt://{MOSQUITTO}"), &[]).await
}

/// [`spawn_gateway_process`] on broker `url`, with `LAMPGW__…` variables
/// in its environment.
pub async fn spawn_gateway_process_with(
    root: &str,
    url: &str,
    env: &[(&str, &str)],
) -> GatewayProcess {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv).unwrap();
    sim.write_inventory(&inv, &InventoryOptions::default())
        .unwrap();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[gateway]
id = "gw-{root}"
[paths]
inventory = "{inv}"
profiles = "{profiles}"
[api]
listen = "127.0.0.1:0"
[poll]
slc_interval = "200ms"
rtu_interval = "200ms"
[mqtt]
url = "{url}"
topic_root = "{root}"
keep_alive = "2s"
spill_dir = "spill"
"#,
            inv = inv.display(),
            profiles = profiles.display(),
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .args(["run", "--config"])
        .arg(&config)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gateway binary starts");
    GatewayProcess {
        child,
        _sim: sim,
        _dir: dir,
    }
}
