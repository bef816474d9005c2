//! `lamp-bench soak`: the gateway on the simulator for a set time under
//! random faults — endpoints refusing or going silent, single SLCs going
//! quiet, the database and the broker cut off and back (through proxies, so
//! the shared servers are untouched) — checking its invariants as it goes
//! and printing one JSON line a minute and a verdict at the end:
//!
//! - no sample lost: after the faults stop and the spool drains, every
//!   sample and transition the gateway counted (`lampgw_device_samples_total`,
//!   `lampgw_transitions_total`: counted only once appended to the spool) is
//!   a row of the database, and none twice (rows are keyed);
//! - cadence held: full SLC and RTU poll cycles per minute against the
//!   intervals (a cycle of a faulted endpoint is one that fails on time);
//! - memory flat: the process's RSS after the first tenth of the run (the
//!   warm-up: spools, pools and caches fill) within 10 % of its lowest;
//! - no task growth: the runtime's live tasks after the warm-up end where
//!   they started, give or take the fault in progress.
//!
//! Gateway and farm share the process (the farm's memory and tasks are
//! steady: a fixed set of sockets), so RSS and tasks are both of theirs.

use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_sim::{EndpointFault, InventoryOptions, Proxy, SimConfig, Simulator, SlcFault};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct SoakArgs {
    /// How long to run, minutes
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    #[arg(long, default_value_t = 20)]
    endpoints: usize,
    #[arg(long, default_value_t = 50)]
    slcs_per_endpoint: usize,
    /// PostgreSQL server (host:port); a fresh database is made and dropped
    #[arg(long, default_value = "127.0.0.1:5432")]
    postgres: String,
    /// MQTT broker (host:port)
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    /// Seconds between faults (each lasts 20–60 s)
    #[arg(long, default_value_t = 45)]
    fault_every: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

const TOKEN: &str = "lgw_soak_admin";

/// Σ of a metric over its label sets.
fn sum(m: &HashMap<String, f64>, name: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name))
        .map(|(_, v)| v)
        .sum()
}

fn labelled(m: &HashMap<String, f64>, name: &str, label: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.split('{').next() == Some(name) && k.contains(label))
        .map(|(_, v)| v)
        .sum()
}

async fn metrics(http: &reqwest::Client, base: &str) -> anyhow::Result<HashMap<String, f64>> {
    let text = http
        .get(format!("{base}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .text()
        .await?;
    Ok(crate::gateway::parse_metrics(&text))
}

/// One fault at a time, for a while.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Refuse(usize),
    Silent(usize),
    QuietSlc(usize, usize),
    Database,
    Broker,
}

pub fn main(args: SoakArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: SoakArgs) -> anyhow::Result<()> {
    use sqlx::Connection;
    let db_name = format!("lampgw_soak_{}", std::process::id());
    let admin_url = format!("postgres://postgres@{}/postgres", args.postgres);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {db_name}"))
        .execute(&mut admin)
        .await?;

    let sim = Simulator::start(SimConfig {
        endpoints: args.endpoints,
        slcs_per_endpoint: args.slcs_per_endpoint,
        ..SimConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv)?;
    sim.write_inventory(&inv, &InventoryOptions::default())?;
    let pg = Proxy::start(&args.postgres).await?;
    let broker = Proxy::start(&args.broker).await?;

    let mut s = Settings::default();
    s.auth.tokens.push(TokenConfig {
        name: "soak".into(),
        hash: hash_token(TOKEN),
        role: Role::Admin,
        district: None,
    });
    s.api.listen = "127.0.0.1:0".parse()?;
    s.paths.inventory = inv;
    s.paths.profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/profiles");
    s.paths.data = Some(dir.path().to_path_buf());
    s.store.url = format!("postgres://postgres@{}/{db_name}", pg.addr)
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    s.mqtt.url = format!("mqtt://{}", broker.addr)
        .parse()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    s.mqtt.topic_root = format!("soak{}", std::process::id());
    s.mqtt.spill_dir = dir.path().join("mqtt-spill");
    s.store.spool_dir = dir.path().join("spool");
    s.schedule.file = dir.path().join("schedule.json");
    s.alarms.file = dir.path().join("alarms.open.json");
    s.control.overrides_file = dir.path().join("overrides.json");
    s.alarms.webhook_dir = dir.path().join("webhooks");
    let (slc_s, rtu_s) = (
        s.poll.slc_interval.as_secs_f64(),
        s.poll.rtu_interval.as_secs_f64(),
    );
    let app = Application::build(s).await?;
    let base = format!("http://{}", app.local_addr());
    let http = reqwest::Client::new();
    let handle = tokio::runtime::Handle::current();

    let total = Duration::from_secs(args.minutes * 60);
    let warmup = total / 10;
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut fault: Option<(Fault, Instant)> = None;
    let mut next_fault = started + Duration::from_secs(args.fault_every);
    let mut next_report = started + Duration::from_secs(60);
    let mut last = metrics(&http, &base).await?;
    let mut faults_done: HashMap<&'static str, u64> = HashMap::new();
    let (mut rss, mut tasks) = (Vec::new(), Vec::new());
    let mut minutes = Vec::new();
    println!(
        "{}",
        json!({"soak": "start", "minutes": args.minutes, "lamps": args.endpoints * args.slcs_per_endpoint,
               "endpoints": args.endpoints, "slc_interval_s": slc_s, "rtu_interval_s": rtu_s,
               "database": db_name, "machine": crate::procfs::machine()})
    );
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = Instant::now();
        if let Some((f, until)) = fault {
            if now >= until {
                match f {
                    Fault::Refuse(e) | Fault::Silent(e) => sim.set_endpoint_fault(e, None),
                    Fault::QuietSlc(e, n) => sim.set_slc_fault(e, n, SlcFault::default()),
                    Fault::Database => pg.restore(),
                    Fault::Broker => broker.restore(),
                }
                fault = None;
                next_fault = now + Duration::from_secs(args.fault_every);
            }
        } else if now >= next_fault && now + Duration::from_secs(90) < started + total {
            let e = rng.usize(..args.endpoints);
            let (f, name) = match rng.u8(..5) {
                0 => (Fault::Refuse(e), "endpoint_refuses"),
                1 => (Fault::Silent(e), "endpoint_silent"),
                2 => (
                    Fault::QuietSlc(e, rng.usize(..args.slcs_per_endpoint)),
                    "slc_silent",
                ),
                3 => (Fault::Database, "database_cut"),
                _ => (Fault::Broker, "broker_cut"),
            };
            match f {
                Fault::Refuse(e) => sim.set_endpoint_fault(e, Some(EndpointFault::Refuse)),
                Fault::Silent(e) => sim.set_endpoint_fault(e, Some(EndpointFault::Silent)),
                Fault::QuietSlc(e, n) => sim.set_slc_fault(
                    e,
                    n,
                    SlcFault {
                        silent: true,
                        ..SlcFault::default()
                    },
                ),
                Fault::Database => pg.sever(),
                Fault::Broker => broker.sever(),
            }
            *faults_done.entry(name).or_default() += 1;
            fault = Some((f, now + Duration::from_secs(20 + rng.u64(..41))));
        }
        if now >= next_report {
            next_report += Duration::from_secs(60);
            let m = metrics(&http, &base).await?;
            let cycles = |m: &HashMap<String, f64>, class: &str| {
                labelled(m, "lampgw_poll_cycles_total", &format!("class=\"{class}\""))
            };
            let minute = json!({
                "minute": minutes.len() + 1,
                "rss_mib": crate::procfs::rss_mib(std::process::id()),
                "tasks_alive": handle.metrics().num_alive_tasks(),
                "slc_cycles": cycles(&m, "slc") - cycles(&last, "slc"),
                "rtu_cycles": cycles(&m, "rtu") - cycles(&last, "rtu"),
                "full_cycles": sum(&m, "lampgw_full_poll_cycles_total") - sum(&last, "lampgw_full_poll_cycles_total"),
                "samples": sum(&m, "lampgw_device_samples_total") - sum(&last, "lampgw_device_samples_total"),
                "store_spooled_rows": sum(&m, "lampgw_store_spooled_rows"),
                "mqtt_connected": sum(&m, "lampgw_mqtt_connected"),
                "fault": fault.map(|(f, _)| format!("{f:?}")),
            });
            println!("{minute}");
            if started.elapsed() > warmup {
                rss.push(crate::procfs::rss_mib(std::process::id()).unwrap_or(0.0));
                tasks.push(handle.metrics().num_alive_tasks());
            }
            minutes.push(minute);
            last = m;
        }
    }
    // Everything back, then every endpoint refusing: polling ends, so the
    // counters stop, the spool drains, and what was counted can be compared
    // with the rows exactly.
    pg.restore();
    broker.restore();
    for e in 0..args.endpoints {
        sim.set_endpoint_fault(e, Some(EndpointFault::Refuse));
    }
    let drain = Instant::now();
    let mut previous: Option<(f64, f64)> = None;
    let m = loop {
        tokio::time::sleep(Duration::from_secs_f64(slc_s.max(rtu_s) + 1.0)).await;
        let m = metrics(&http, &base).await?;
        let counted = (
            sum(&m, "lampgw_device_samples_total"),
            sum(&m, "lampgw_transitions_total"),
        );
        let waiting = sum(&m, "lampgw_store_spooled_rows") + sum(&m, "lampgw_store_queued_rows");
        let settled = previous == Some(counted) && waiting == 0.0;
        previous = Some(counted);
        if settled || drain.elapsed() > Duration::from_secs(600) {
            break m;
        }
    };
    let samples_counted = sum(&m, "lampgw_device_samples_total");
    let transitions_counted = sum(&m, "lampgw_transitions_total");
    app.shutdown().await?;
    let db_url = format!("postgres://postgres@{}/{db_name}", args.postgres);
    let mut db = sqlx::PgConnection::connect(&db_url).await?;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let lamp_rows = count("SELECT COUNT(*) FROM lamp_samples")
        .fetch_one(&mut db)
        .await?;
    let rtu_rows = count("SELECT COUNT(*) FROM rtu_samples")
        .fetch_one(&mut db)
        .await?;
    let transition_rows = count("SELECT COUNT(*) FROM transitions")
        .fetch_one(&mut db)
        .await?;
    db.close().await?;
    let rows = (lamp_rows + rtu_rows) as f64;
    let spread = |v: &[f64]| {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        (min.is_finite() && min > 0.0).then(|| (max - min) / min)
    };
    let rss_spread = spread(&rss);
    let tasks_f: Vec<f64> = tasks.iter().map(|&t| t as f64).collect();
    let expected_slc = args.endpoints as f64 * 60.0 / slc_s;
    let slc_per_min: Vec<f64> = minutes
        .iter()
        .filter_map(|m| m["slc_cycles"].as_f64())
        .collect();
    let min_slc = slc_per_min.iter().copied().fold(f64::INFINITY, f64::min);
    let verdict = json!({
        "soak": "end",
        "minutes": args.minutes,
        "faults": faults_done,
        "samples_counted": samples_counted,
        "sample_rows": rows,
        "samples_lost": samples_counted - rows,
        "transitions_counted": transitions_counted,
        "transition_rows": transition_rows,
        "transitions_lost": transitions_counted - transition_rows as f64,
        "drain_seconds": drain.elapsed().as_secs_f64(),
        "slc_cycles_per_minute_expected": expected_slc,
        "slc_cycles_per_minute_min": min_slc,
        "rss_mib_after_warmup": {"min": rss.iter().copied().fold(f64::INFINITY, f64::min), "max": rss.iter().copied().fold(0.0, f64::max), "spread": rss_spread},
        "rss_flat_within_10pct": rss_spread.map(|s| s <= 0.10),
        "tasks_after_warmup": {"first": tasks.first(), "last": tasks.last(), "max": tasks_f.iter().copied().fold(0.0, f64::max)},
    });
    println!("{verdict}");
    sim.shutdown().await;
    drop((pg, broker));
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    Ok(())
}
