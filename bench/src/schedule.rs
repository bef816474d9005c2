//! The night plan at city scale (issue 13): the engine's tick over every
//! lamp (wall and CPU time, nothing to change, so pure evaluation), and the
//! time from a city-wide switch point to every lamp confirmed, next to one
//! manual city-wide command in the same run. Prints one JSON object.
//!
//! target/release/lamp-bench schedule [endpoints] [slcs_per_endpoint]

use chrono::{Duration as Span, NaiveDate, TimeZone, Utc};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::schedule::clock::ManualClock;
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::{Application, BuildOptions};
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "lgw_bench_operator";

pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench(args))
}

fn cpu_seconds() -> f64 {
    crate::procfs::self_cpu_seconds().unwrap_or(0.0)
}

async fn bench(args: Vec<String>) -> anyhow::Result<()> {
    let args: Vec<usize> = args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let endpoints = args.first().copied().unwrap_or(1000);
    let slcs = args.get(1).copied().unwrap_or(100);
    let sim = Simulator::start(SimConfig {
        endpoints,
        slcs_per_endpoint: slcs,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv)?;
    sim.write_inventory(&inv, &InventoryOptions::default())?;
    let book = json!({
        "programs": [{"id": "night", "points": [
            {"sun": "sunset", "level": "on"}, {"sun": "sunrise", "level": "off"}]}],
        "calendars": [{"id": "city", "default_program": "night"}],
        "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
    });
    std::fs::write(dir.path().join("schedule.json"), book.to_string())?;
    let mut s = Settings::default();
    s.alarms.file = dir.path().join("alarms.open.json");
    s.alarms.webhook_dir = dir.path().join("webhooks");
    s.api.listen = "127.0.0.1:0".parse()?;
    s.paths.inventory = inv;
    s.paths.profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/profiles");
    s.poll.slc_interval = Duration::from_secs(10);
    s.poll.rtu_interval = Duration::from_secs(10);
    s.log.level = "warn".into();
    s.store.url = lamp_gateway::store::Backend::Sqlite(dir.path().join("store.db"));
    s.store.spool_dir = dir.path().join("spool");
    s.mqtt.url = lamp_gateway::mqtt::BrokerChoice::None;
    s.schedule.file = dir.path().join("schedule.json");
    s.control.overrides_file = dir.path().join("overrides.json");
    // Ticks only when moved (the bench times them itself).
    s.schedule.tick = Duration::from_secs(3600);
    // Lamps not yet online at the first tick are tried again soon.
    s.schedule.retry_after = Duration::from_secs(2);
    s.gateway.time_zone = chrono_tz::Asia::Shanghai;
    s.auth.tokens.push(TokenConfig {
        name: "bench".into(),
        hash: hash_token(TOKEN),
        role: Role::Operator,
        district: None,
    });
    lamp_gateway::telemetry::init(&s.log);
    let tz = chrono_tz::Asia::Shanghai;
    let day = NaiveDate::from_ymd_opt(2026, 12, 21).expect("a date");
    let noon = tz
        .from_local_datetime(&day.and_hms_opt(12, 0, 0).expect("noon"))
        .unwrap()
        .with_timezone(&Utc);
    let clock = Arc::new(ManualClock::new(noon));
    let app = Application::build_with(
        s,
        BuildOptions {
            schedule_clock: Some(clock.clone()),
        },
    )
    .await?;
    let sched = app.schedule().expect("schedule on");
    let live = app.live();
    let lamps = endpoints * slcs;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !(live.all_polled() && live.full_cycles() >= 1) {
        anyhow::ensure!(Instant::now() < deadline, "the city did not come online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Noon: the catch-up switches everything off; wait until confirmed.
    sched.poke();
    let confirmed = |level: f64| {
        sched
            .state_now(None)
            .iter()
            .filter(|t| t.kind == "lamp" && t.confirmed && t.commanded == Some(level))
            .count()
    };
    while confirmed(0.0) < lamps {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the noon catch-up did not confirm"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        sched.poke();
    }

    // The tick with nothing to change: every lamp and circuit evaluated.
    let mut walls = Vec::new();
    let cpu0 = cpu_seconds();
    for _ in 0..5 {
        let t0 = Instant::now();
        sched.tick();
        walls.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let tick_cpu_ms = (cpu_seconds() - cpu0) / 5.0 * 1e3;
    walls.sort_by(f64::total_cmp);

    // Sunset: every lamp on, through the schedule.
    let sunset = lamp_gateway::schedule::sun::sun_times(30.27, 120.15, day)
        .and_then(|s| s.sunset)
        .expect("a sunset");
    clock.set(sunset + Span::minutes(1));
    let t0 = Instant::now();
    sched.poke();
    while confirmed(100.0) < lamps {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(300),
            "the sunset point did not confirm"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let schedule_secs = t0.elapsed().as_secs_f64();

    // The same city switched by one manual command, same run.
    let http = reqwest::Client::new();
    let base = format!("http://{}", app.local_addr());
    let t0 = Instant::now();
    let r: Value = http
        .post(format!("{base}/api/v1/commands"))
        .bearer_auth(TOKEN)
        .json(&json!({"target": {"district": "D01"}, "action": "off"}))
        .send()
        .await?
        .json()
        .await?;
    let id = r["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no id: {r}"))?;
    let manual = app.control().get(id).expect("command kept").wait().await;
    let manual_secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "endpoints": endpoints, "slcs_per_endpoint": slcs, "lamps": lamps,
            "tick": {"wall_ms_median": walls[2], "wall_ms_max": walls[4], "cpu_ms": tick_cpu_ms,
                     "targets": lamps + endpoints * 4},
            "sunset_to_all_confirmed_s": schedule_secs,
            "manual_city_command": {"seconds": manual_secs, "confirmed": manual.tally().confirmed,
                                     "failed": manual.tally().failed},
            "polling": "10 s interval on every endpoint throughout", "store": "sqlite", "mqtt": "none",
        })
    );
    app.shutdown().await?;
    sim.shutdown().await;
    Ok(())
}
