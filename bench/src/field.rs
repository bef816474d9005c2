//! `lamp-bench field`: field connectivity at city scale, each case next to
//! its baseline in the same run.
//!
//! - `dead-units`: the cycle time of one endpoint with 100 SLC units of which
//!   10 never answer, against the same endpoint with none dead. The gateway
//!   runs in process (only its cycle times are read).
//! - `dial-in`: 1,000 DTUs × 50 SLCs dialling in, polled at the default
//!   cadence (SLC 10 s, RTU 5 s), against the same city dialled over plain
//!   TCP (Modbus TCP, and RTU over TCP, the DTUs' own framing). The gateway is
//!   a child process, so its CPU and memory are its own; the farm runs here.

use crate::gateway::Gateway;
use crate::{default_gateway_binary, procfs, write_profiles};
use anyhow::Context as _;
use clap::ValueEnum;
use lamp_sim::{DialIn, Framing, InventoryOptions, Link, SimConfig, Simulator, SlcFault};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Case {
    DeadUnits,
    DialIn,
    Both,
}

#[derive(clap::Args)]
pub struct FieldArgs {
    #[arg(long, value_enum, default_value = "both")]
    case: Case,
    /// dead-units: SLC units behind the one endpoint, and how many never answer.
    #[arg(long, default_value_t = 100)]
    units: usize,
    #[arg(long, default_value_t = 10)]
    dead: usize,
    /// dead-units: the SLC interval and request timeout (the defaults 10 s and
    /// 1 s scaled down by 5, keeping their ratio and so the probe budget).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    interval: Duration,
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// dead-units: cycles measured per case.
    #[arg(long, default_value_t = 15)]
    cycles: u64,
    /// dial-in: DTUs (cabinets) and SLCs behind each.
    #[arg(long, default_value_t = 1000)]
    dtus: usize,
    #[arg(long, default_value_t = 50)]
    slcs: usize,
    /// dial-in: how long each mode is measured once every device is online.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// The lamp-gateway binary [default: next to this executable].
    #[arg(long)]
    gateway: Option<PathBuf>,
}

pub fn main(args: FieldArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut out = serde_json::Map::new();
    out.insert("machine".into(), procfs::machine());
    if matches!(args.case, Case::DeadUnits | Case::Both) {
        let healthy = rt.block_on(dead_units(&args, 0))?;
        let dead = rt.block_on(dead_units(&args, args.dead))?;
        let ratio = dead["cycle_ms"]["median"].as_f64().unwrap_or(f64::NAN)
            / healthy["cycle_ms"]["median"].as_f64().unwrap_or(f64::NAN);
        out.insert(
            "dead_units".into(),
            json!({"none_dead": healthy, "with_dead": dead, "median_cycle_ratio": ratio}),
        );
    }
    if matches!(args.case, Case::DialIn | Case::Both) {
        let binary = match &args.gateway {
            Some(p) => p.clone(),
            None => default_gateway_binary()?,
        };
        let mut modes = serde_json::Map::new();
        for mode in [Mode::DialIn, Mode::Tcp, Mode::RtuOverTcp] {
            let r = rt.block_on(city(&binary, &args, mode))?;
            eprintln!("lamp-bench field: {} {r}", mode.name());
            modes.insert(mode.name().into(), r);
        }
        out.insert("dial_in".into(), Value::Object(modes));
    }
    println!("{}", serde_json::to_string_pretty(&Value::Object(out))?);
    Ok(())
}

fn stats(mut v: Vec<f64>) -> Value {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    json!({"n": v.len(), "median": at(0.5), "p90": at(0.9), "max": v.last(), "min": v.first()})
}

/// One endpoint, `units` SLCs, `dead` of them never answering (spread over
/// the bus: every `units / dead`-th); the cycle times of `cycles` SLC cycles
/// once the dead units have been found out.
async fn dead_units(args: &FieldArgs, dead: usize) -> anyhow::Result<Value> {
    let sim = Simulator::start(SimConfig {
        endpoints: 1,
        slcs_per_endpoint: args.units,
        control_port: None,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    sim.write_inventory(&dir.path().join("inventory"), &InventoryOptions::default())?;
    let mut s = lamp_gateway::settings::Settings::default();
    s.alarms.file = dir.path().join("alarms.open.json");
    s.alarms.webhook_dir = dir.path().join("webhooks");
    s.paths.inventory = dir.path().join("inventory");
    s.paths.profiles = write_profiles(dir.path())?;
    s.api.listen = "127.0.0.1:0".parse()?;
    s.store.url = lamp_gateway::store::Backend::Disabled;
    s.mqtt.url = lamp_gateway::mqtt::BrokerChoice::None;
    s.poll.slc_interval = args.interval;
    s.poll.rtu_interval = args.interval;
    s.poll.request_timeout = args.timeout;
    s.poll.unit_backoff_max = args.interval * 6;
    let app = lamp_gateway::startup::Application::build(s).await?;
    let live = app.live();
    let step = args.units / dead.max(1);
    let dead_slcs: Vec<usize> = (0..dead).map(|k| k * step + step / 2).collect();
    for &j in &dead_slcs {
        sim.set_slc_fault(
            0,
            j,
            SlcFault {
                no_answer: true,
                ..SlcFault::default()
            },
        );
    }
    let cycles = || live.read().endpoints[0].cycles[1];
    // Warm-up: the first cycles find the dead units out (each costs a
    // timeout until it is on its own slower cadence).
    let warm = cycles() + 4;
    while cycles() < warm {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut times = Vec::new();
    let mut seen = cycles();
    let started = Instant::now();
    while (times.len() as u64) < args.cycles {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = cycles();
        if now > seen {
            seen = now;
            times.push(live.read().endpoints[0].last_cycle_ms[1]);
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let (online, offline) = {
        let l = live.read();
        let on = l.lamps.iter().filter(|x| x.online).count();
        (on, l.lamps.len() - on)
    };
    let reads_failed = live.read().endpoints[0].reads_failed;
    app.shutdown().await?;
    sim.shutdown().await;
    Ok(json!({
        "units": args.units, "dead": dead,
        "interval_ms": args.interval.as_millis(), "request_timeout_ms": args.timeout.as_millis(),
        "cycle_ms": stats(times), "cycles": args.cycles,
        "wall_s_per_cycle": wall / args.cycles as f64,
        "lamps_online": online, "lamps_offline": offline,
        "reads_failed_total": reads_failed,
    }))
}

#[derive(Clone, Copy)]
enum Mode {
    DialIn,
    Tcp,
    RtuOverTcp,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::DialIn => "dial_in_rtu",
            Mode::Tcp => "dialled_modbus_tcp",
            Mode::RtuOverTcp => "dialled_rtu_over_tcp",
        }
    }
}

fn free_port() -> anyhow::Result<String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.to_string())
}

/// The city of `dtus` cabinets × `slcs` SLCs at the default cadence, reached
/// as `mode` says; figures over `window` once every device is online.
async fn city(binary: &Path, args: &FieldArgs, mode: Mode) -> anyhow::Result<Value> {
    let listen = free_port()?;
    let link = match mode {
        Mode::DialIn => {
            let mut d = DialIn::new(listen.clone());
            d.backoff_min = Duration::from_millis(100);
            d.backoff_max = Duration::from_secs(2);
            // Every DTU from an address of its own, as behind a carrier.
            d.source_ips = (0..args.dtus)
                .map(|i| std::net::IpAddr::from([127, 1, (i / 250) as u8, (i % 250 + 1) as u8]))
                .collect();
            Link::DialIn(d)
        }
        Mode::Tcp | Mode::RtuOverTcp => Link::Listen,
    };
    let sim = Simulator::start(SimConfig {
        endpoints: args.dtus,
        slcs_per_endpoint: args.slcs,
        base_port: 0,
        framing: match mode {
            Mode::Tcp => Framing::Tcp,
            Mode::DialIn | Mode::RtuOverTcp => Framing::RtuOverTcp,
        },
        link,
        control_port: None,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    sim.write_inventory(&dir.path().join("inventory"), &InventoryOptions::default())?;
    write_profiles(dir.path())?;
    let config = dir.path().join("settings.toml");
    let mut text = String::from(
        "# lamp-bench field: the default cadence (SLC 10 s, RTU 5 s).\n\
         [gateway]\nid = \"lamp-bench\"\n\
         [paths]\ninventory = \"inventory\"\nprofiles = \"profiles\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n\
         [store]\nurl = \"none\"\n[mqtt]\nurl = \"none\"\n[log]\nlevel = \"warn\"\n",
    );
    if let Mode::DialIn = mode {
        text += &format!("[dialin]\nlisten = {listen:?}\n");
    }
    std::fs::write(&config, text)?;
    let mut gw = Gateway::start(binary, &config)?;
    let devices = (args.dtus * (args.slcs + 1)) as f64;
    let started = Instant::now();
    gw.wait_ready(Duration::from_secs(120))?;
    // Every RTU and SLC online.
    gw.wait_all_online(
        devices,
        Duration::from_millis(200),
        started,
        Duration::from_secs(180),
    )?;
    let online_at = started.elapsed().as_secs_f64();
    let pid = gw.pid();
    let m0 = gw.metrics()?;
    let cpu0 = procfs::cpu_seconds(pid).context("gateway CPU")?;
    let t0 = Instant::now();
    let mut longest_cycle = 0.0f64;
    while t0.elapsed() < args.window {
        std::thread::sleep(Duration::from_millis(500));
        let m = gw.metrics()?;
        longest_cycle = longest_cycle.max(
            m.get("lampgw_poll_cycle_seconds_max{class=\"slc\"}")
                .copied()
                .unwrap_or(0.0),
        );
    }
    let m1 = gw.metrics()?;
    let cpu1 = procfs::cpu_seconds(pid).context("gateway CPU")?;
    let secs = t0.elapsed().as_secs_f64();
    let get =
        |m: &std::collections::HashMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    let samples = get(&m1, "lampgw_device_samples_total") - get(&m0, "lampgw_device_samples_total");
    let full =
        get(&m1, "lampgw_full_poll_cycles_total") - get(&m0, "lampgw_full_poll_cycles_total");
    let failures: f64 = m1
        .iter()
        .filter(|(k, _)| k.starts_with("lampgw_device_poll_failures_total"))
        .map(|(k, v)| v - m0.get(k).copied().unwrap_or(0.0))
        .sum();
    let rss_now = procfs::rss_mib(pid);
    let peak = gw.peak_rss_mib();
    gw.stop(Duration::from_secs(30))?;
    sim.shutdown().await;
    Ok(json!({
        "dtus": args.dtus, "slcs_per_dtu": args.slcs,
        "all_online_after_s": online_at,
        "window_s": secs,
        "samples_per_s": samples / secs,
        "cpu_percent": (cpu1 - cpu0) / secs * 100.0,
        "cpu_us_per_sample": (cpu1 - cpu0) / samples * 1e6,
        "full_slc_cycles_in_window": full,
        "longest_endpoint_slc_cycle_ms": longest_cycle * 1e3,
        "failed_polls_in_window": failures,
        "rss_mib": rss_now, "peak_rss_mib": peak,
    }))
}
