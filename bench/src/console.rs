//! `lamp-bench console`: the operator console's server time at city scale
//! (issue 16's speed goals). The gateway binary runs as a child on the
//! in-process simulator with a SQLite store; once every device is online a
//! console user logs in, and each page is requested `--rounds` times, one
//! request at a time, interleaved with `/healthz` (the baseline: the
//! cheapest answer of the same server in the same moments). Printed per
//! page: p50 and p95 of the time to the last byte, the p95 over `/healthz`'s,
//! and the body's size (the map's and lists' budget is in bytes). Then
//! `--browsers` live streams are opened at once and the gateway's SLC cycle
//! and CPU are read with and without them.

use crate::gateway::Gateway;
use crate::{default_gateway_binary, procfs, write_profiles};
use lamp_gateway::auth::Role;
use lamp_gateway::console::users::{hash_password, User, Users};
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ConsoleArgs {
    /// Endpoints (cabinets) and SLCs behind each: 1,000 × 100 = 100,000 lamps.
    #[arg(long, default_value_t = 1000)]
    endpoints: usize,
    #[arg(long, default_value_t = 100)]
    slcs: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 40)]
    rounds: usize,
    /// Live streams held open together for the second part.
    #[arg(long, default_value_t = 20)]
    browsers: usize,
    /// How long the streams are held (and the quiet window before them).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// The gateway binary (default: target/release/lamp-gateway beside this one).
    #[arg(long)]
    gateway: Option<PathBuf>,
}

const PASSWORD: &str = "lamp-bench-console";

fn percentile(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

pub fn main(args: ConsoleArgs) -> anyhow::Result<()> {
    let binary = match &args.gateway {
        Some(p) => p.clone(),
        None => default_gateway_binary()?,
    };
    let machine = procfs::machine();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lamp-sim")
        .build()?;
    let sim = rt.block_on(Simulator::start(SimConfig {
        endpoints: args.endpoints,
        slcs_per_endpoint: args.slcs,
        base_port: 0,
        control_port: None,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    }))?;
    let temp = tempfile::tempdir()?;
    let dir = temp.path().to_path_buf();
    sim.write_inventory(&dir.join("inventory"), &InventoryOptions::default())?;
    write_profiles(&dir)?;
    let mut users = Users::default();
    users.upsert(User {
        name: "bench".into(),
        role: Role::Operator,
        district: None,
        password_hash: hash_password(PASSWORD)?,
        language: None,
    });
    users.save(&dir.join("users.json"))?;
    let config = dir.join("settings.toml");
    std::fs::write(
        &config,
        "# lamp-bench console\n[gateway]\nid = \"lamp-bench\"\n\
         [paths]\ninventory = \"inventory\"\nprofiles = \"profiles\"\ndata = \".\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n[store]\nurl = \"sqlite://store.db\"\n\
         [mqtt]\nurl = \"none\"\n[log]\nlevel = \"warn\"\n[console]\nusers_file = \"users.json\"\n",
    )?;
    let lamps = args.endpoints * args.slcs;
    eprintln!(
        "lamp-bench console: {} endpoints x {} SLCs = {lamps} lamps; {} rounds a page; {} streams",
        args.endpoints, args.slcs, args.rounds, args.browsers
    );
    let mut gw = Gateway::start(&binary, &config)?;
    gw.wait_ready(Duration::from_secs(300))?;
    let devices = (args.endpoints * (args.slcs + 1)) as f64;
    gw.wait_all_online(
        devices,
        Duration::from_millis(500),
        Instant::now(),
        Duration::from_secs(300),
    )?;
    let base = format!("http://{}", gw.api);
    let result = rt.block_on(measure(&args, &base, &gw, &sim));
    gw.stop(Duration::from_secs(30))?;
    println!("machine: {machine}");
    result
}

async fn measure(
    args: &ConsoleArgs,
    base: &str,
    gw: &Gateway,
    sim: &Simulator,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let r = client
        .post(format!("{base}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("user=bench&password={PASSWORD}"))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 303, "login: {}", r.status());
    let cookie = r.headers()["set-cookie"]
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    // The simulator's ids (`lamp_sim`'s inventory): LX-<endpoint>-<slc>, from 1.
    let lamp = format!("LX-{:04}-001", sim.endpoint_count() / 2 + 1);
    let cabinet = sim.cabinet_id(sim.endpoint_count() / 2);
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let pages = [
        "/healthz".to_string(),
        "/console/".into(),
        "/console/lamps".into(),
        "/console/lamps?page=500&sort=power".into(),
        "/console/lamps?lit=false&alarm=false".into(),
        format!("/console/lamps/{lamp}"),
        "/console/cabinets".into(),
        format!("/console/cabinets/{cabinet}"),
        format!("/console/cabinets/{cabinet}/history.svg"),
        "/console/map".into(),
        format!("/console/map?cabinet={cabinet}"),
        "/console/alarms".into(),
        "/console/schedules".into(),
        "/console/reports".into(),
        "/console/audit".into(),
        "/console/trend.svg".into(),
        format!("/console/lamps/{lamp}/history.svg"),
        format!("/console/reports/monthly?month={month}&format=csv"),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); pages.len()];
    let mut sizes = vec![0usize; pages.len()];
    let mut statuses = vec![0u16; pages.len()];
    for _ in 0..args.rounds {
        for (i, p) in pages.iter().enumerate() {
            let t = Instant::now();
            let r = client
                .get(format!("{base}{p}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            statuses[i] = r.status().as_u16();
            let body = r.bytes().await?;
            times[i].push(t.elapsed().as_secs_f64() * 1e3);
            sizes[i] = body.len();
        }
    }
    let health_p95 = percentile(&times[0], 0.95);
    println!(
        "{:<48} {:>6} {:>9} {:>9} {:>9} {:>10}",
        "page", "status", "p50 ms", "p95 ms", "p95/hz", "bytes"
    );
    for (i, p) in pages.iter().enumerate() {
        println!(
            "{:<48} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>10}",
            p,
            statuses[i],
            percentile(&times[i], 0.5),
            percentile(&times[i], 0.95),
            percentile(&times[i], 0.95) / health_p95,
            sizes[i]
        );
    }

    // Live streams: the SLC cycle and the gateway's CPU over a quiet window,
    // then over one with N streams open.
    let window = |label: &'static str| async move {
        let before = gw.metrics()?;
        let cpu0 = procfs::cpu_seconds(gw.pid());
        tokio::time::sleep(args.window).await;
        let after = gw.metrics()?;
        let cpu1 = procfs::cpu_seconds(gw.pid());
        let key = "lampgw_poll_cycles_total{class=\"slc\"}";
        let cycles =
            after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0);
        let max = after
            .get("lampgw_poll_cycle_seconds_max{class=\"slc\"}")
            .copied()
            .unwrap_or(f64::NAN);
        let cpu = match (cpu0, cpu1) {
            (Some(a), Some(b)) => (b - a) / args.window.as_secs_f64(),
            _ => f64::NAN,
        };
        println!(
            "{label:<14} SLC cycles {cycles:>8.0}  longest SLC cycle {max:>6.2} s  gateway CPU {cpu:>5.2} cores"
        );
        anyhow::Ok(())
    };
    window("quiet").await?;
    let updates = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut streams = Vec::new();
    for _ in 0..args.browsers {
        let r = client
            .get(format!("{base}/console/events"))
            .header("cookie", &cookie)
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "events: {}", r.status());
        let updates = updates.clone();
        streams.push(tokio::spawn(async move {
            let mut r = r;
            while let Ok(Some(chunk)) = r.chunk().await {
                let n = chunk.windows(13).filter(|w| w == b"event: update").count() as u64;
                updates.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    window("with streams").await?;
    let n = streams.len();
    for s in &streams {
        s.abort();
    }
    let got = updates.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{n} live streams held open for {:?}: {got} updates received, {:.2} per stream per second",
        args.window,
        got as f64 / n.max(1) as f64 / args.window.as_secs_f64()
    );
    Ok(())
}
