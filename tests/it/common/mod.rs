//! Test harness: a simulator and a gateway on free local ports, talking over
//! real sockets, with a fresh inventory folder per test.
#![allow(dead_code)]

use lamp_gateway::auth::{hash_token, Role, TokenConfig};
pub mod db;

use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_gateway::state::LiveState;
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::Value;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub sim: Simulator,
    pub app: Option<Application>,
    pub base: String,
    pub http: reqwest::Client,
    pub live: Arc<LiveState>,
    pub dir: tempfile::TempDir,
}

/// The admin token every test gateway accepts.
pub const ADMIN_TOKEN: &str = "lgw_test_admin";

/// Settings for tests: fast cadence, short timeouts, the shipped profiles,
/// and [`ADMIN_TOKEN`].
pub fn test_settings(dir: &Path) -> Settings {
    let mut s = Settings::default();
    s.auth.tokens.push(TokenConfig {
        name: "test-admin".into(),
        hash: hash_token(ADMIN_TOKEN),
        role: Role::Admin,
        district: None,
    });
    s.api.listen = "127.0.0.1:0".parse().unwrap();
    s.paths.inventory = dir.join("inventory");
    s.paths.profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    s.poll.slc_interval = Duration::from_millis(100);
    s.poll.rtu_interval = Duration::from_millis(100);
    s.poll.request_timeout = Duration::from_millis(300);
    s.poll.connect_timeout = Duration::from_millis(500);
    s.poll.reconnect_min = Duration::from_millis(50);
    s.poll.reconnect_max = Duration::from_millis(200);
    s.store.url = lamp_gateway::store::Backend::Sqlite(dir.join("store.db"));
    s.store.spool_dir = dir.join("spool");
    s.store.flush_interval = Duration::from_millis(100);
    // MQTT tests opt in with a broker of their own; the others need none.
    s.mqtt.url = lamp_gateway::mqtt::BrokerChoice::None;
    s.mqtt.spill_dir = dir.join("mqtt-spill");
    s.schedule.file = dir.join("schedule.json");
    s.control.overrides_file = dir.join("overrides.json");
    s.alarms.file = dir.join("alarms.open.json");
    s.alarms.webhook_dir = dir.join("webhooks");
    s.console.users_file = dir.join("users.json");
    s.control.groups_file = dir.join("groups.json");
    s
}

/// A simulator and its inventory written into a fresh folder's
/// `inventory/`: what every test that starts a gateway (in process or the
/// binary) starts from.
pub struct SimCity {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    /// `dir/inventory`.
    pub inventory: std::path::PathBuf,
}

pub async fn sim_city(cfg: SimConfig) -> SimCity {
    sim_city_with(cfg, &InventoryOptions::default()).await
}

pub async fn sim_city_with(cfg: SimConfig, opts: &InventoryOptions) -> SimCity {
    let sim = Simulator::start(cfg).await.expect("simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory");
    std::fs::create_dir_all(&inventory).unwrap();
    sim.write_inventory(&inventory, opts).unwrap();
    SimCity {
        sim,
        dir,
        inventory,
    }
}

pub async fn spawn_app(cfg: SimConfig) -> TestApp {
    spawn_app_with(cfg, InventoryOptions::default(), |_| {}).await
}

/// Starts the simulator, writes its inventory, and starts the gateway on it.
pub async fn spawn_app_with(
    cfg: SimConfig,
    opts: InventoryOptions,
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let SimCity { sim, dir, .. } = sim_city_with(cfg, &opts).await;
    let mut settings = test_settings(dir.path());
    tweak(&mut settings);
    let app = Application::build(settings).await.expect("gateway starts");
    let base = format!("http://{}", app.local_addr());
    let live = app.live();
    TestApp {
        sim,
        app: Some(app),
        base,
        http: reqwest::Client::new(),
        live,
        dir,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(ADMIN_TOKEN, path).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent");
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body);
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        let r = req.send().await.expect("request sent");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_as(ADMIN_TOKEN, path, body, None).await
    }

    /// Waits until a command has no queued or written target; returns it.
    pub async fn command_done(&self, id: &str) -> Value {
        let path = format!("/api/v1/commands/{id}");
        eventually(&format!("command {id} done"), || async {
            self.get(&path).await.1["status"] == "done"
        })
        .await;
        self.get(&path).await.1
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request sent");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    pub async fn lamp(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/lamps/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn rtu(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/v1/rtus/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until every SLC and RTU in the inventory is online.
    pub async fn all_online(&self) {
        eventually("every device online", || async {
            let live = self.live.read();
            let inv = &self.live.inventory;
            let lamps = inv
                .lamps
                .iter()
                .enumerate()
                .all(|(i, l)| l.slc.is_none() || live.lamps[i].online);
            let rtus = inv
                .cabinets
                .iter()
                .enumerate()
                .all(|(i, c)| c.rtu.is_none() || live.rtus[i].online);
            lamps && rtus
        })
        .await;
    }

    pub async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

/// Polls `check` until it holds, failing the test after 20 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn lamp_id(endpoint: usize, slc: usize) -> String {
    format!("LX-{:04}-{:03}", endpoint + 1, slc + 1)
}

pub fn rtu_id(endpoint: usize) -> String {
    format!("RTU-{:04}", endpoint + 1)
}
