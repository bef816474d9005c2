//! Command latency on loopback while polling runs: POST to confirmed for
//! single lamps (p50/p99 over N commands) and for one group command over
//! every lamp of the city. Prints one JSON object.
//!
//! target/release/lamp-bench control [endpoints] [slcs_per_endpoint] [singles]

use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "lgw_bench_operator";

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// `lamp-bench control [ARGS]`: the arguments as before, after the mode.
pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

async fn bench(args: Vec<String>) -> anyhow::Result<()> {
    let args: Vec<usize> = args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let endpoints = args.first().copied().unwrap_or(100);
    let slcs = args.get(1).copied().unwrap_or(100);
    let singles = args.get(2).copied().unwrap_or(300);

    let sim = Simulator::start(SimConfig {
        endpoints,
        slcs_per_endpoint: slcs,
        ..SimConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv)?;
    sim.write_inventory(&inv, &InventoryOptions::default())?;
    let mut s = Settings::default();
    s.alarms.file = dir.path().join("alarms.open.json");
    s.alarms.webhook_dir = dir.path().join("webhooks");
    s.api.listen = "127.0.0.1:0".parse()?;
    s.paths.inventory = inv;
    s.paths.profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/profiles");
    s.poll.slc_interval = Duration::from_secs(1);
    s.poll.rtu_interval = Duration::from_secs(1);
    s.log.level = "warn".into();
    // The store on (SQLite in the temp folder), as in a deployment; MQTT off
    // so the bench does not contend for the embedded broker's port.
    s.store.url = lamp_gateway::store::Backend::Sqlite(dir.path().join("store.db"));
    s.store.spool_dir = dir.path().join("spool");
    s.mqtt.url = lamp_gateway::mqtt::BrokerChoice::None;
    s.auth.tokens.push(TokenConfig {
        name: "bench".into(),
        hash: hash_token(TOKEN),
        role: Role::Operator,
        district: None,
    });
    lamp_gateway::telemetry::init(&s.log);
    let app = Application::build(s).await?;
    let base = format!("http://{}", app.local_addr());
    let control = app.control();
    let http = reqwest::Client::new();
    let live = app.live();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(live.all_polled() && live.full_cycles() >= 2) {
        anyhow::ensure!(Instant::now() < deadline, "the city did not come online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Single lamps, one after another, spread over the endpoints.
    let mut lat = Vec::with_capacity(singles);
    let mut failed = 0;
    for n in 0..singles {
        let (e, j) = (n % endpoints, (n / endpoints) % slcs);
        let lamp = format!("LX-{:04}-{:03}", e + 1, j + 1);
        let body = json!({"action": "dim", "level": (n % 100) as f64});
        let t0 = Instant::now();
        let r: Value = http
            .post(format!("{base}/api/v1/lamps/{lamp}/commands"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let id = r["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no id: {r}"))?;
        let done = control.get(id).expect("command kept").wait().await;
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
        failed += done.tally().failed;
    }
    lat.sort_by(f64::total_cmp);

    // One command over every lamp of the city.
    let t0 = Instant::now();
    let r: Value = http
        .post(format!("{base}/api/v1/commands"))
        .bearer_auth(TOKEN)
        .json(&json!({"target": {"district": "D01"}, "action": "dim", "level": 55.0}))
        .send()
        .await?
        .json()
        .await?;
    let id = r["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no id: {r}"))?;
    let group = control.get(id).expect("command kept").wait().await;
    let group_secs = t0.elapsed().as_secs_f64();
    let tally = group.tally();

    println!(
        "{}",
        json!({
            "endpoints": endpoints, "slcs_per_endpoint": slcs,
            "single": {"commands": singles, "failed": failed,
                "p50_ms": pct(&lat, 0.5), "p99_ms": pct(&lat, 0.99), "max_ms": lat[lat.len() - 1]},
            "group": {"lamps": group.targets.len(), "confirmed": tally.confirmed, "failed": tally.failed,
                "seconds": group_secs},
            "polling": "1 s interval on every endpoint throughout",
            "store": "sqlite", "mqtt": "none",
        })
    );
    app.shutdown().await?;
    sim.shutdown().await;
    Ok(())
}
