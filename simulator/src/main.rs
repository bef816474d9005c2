//! `lamp-sim`: serve a Modbus device farm until SIGINT/SIGTERM.

use anyhow::{bail, Context};
use clap::Parser;
use lamp_profile::Profile;
use lamp_sim::{
    embedded_profiles, parse_heartbeat, DialIn, Framing, InventoryOptions, Link, Scenario,
    SimConfig, Simulator,
};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(
    name = "lamp-sim",
    version,
    about = "Modbus device farm of lighting cabinets and single-lamp controllers",
    long_about = "Modbus device farm of lighting cabinets and single-lamp controllers.\n\n\
        Each endpoint (cabinet) listens on its own TCP port by default; with --serial it is \
        served on a serial device or pty end, with --dial-in it connects out to the gateway \
        like a 4G DTU. Faults (including no_answer units and stray_frames on RTU links) come \
        from --scenario and the control interface (--control-port)."
)]
struct Args {
    /// Number of endpoints (cabinets) [default: 1, or one per --serial PATH].
    #[arg(long)]
    endpoints: Option<usize>,
    /// SLCs behind each endpoint.
    #[arg(long, default_value_t = 10)]
    slcs_per_endpoint: usize,
    /// Listening endpoints: endpoint i listens on base-port + i; 0 = an
    /// ephemeral port each.
    #[arg(long, default_value_t = 15020)]
    base_port: u16,
    /// Address the endpoints (when listening) and the control server bind to.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// SLC profile name.
    #[arg(long, default_value = "slc-a-unit")]
    profile: String,
    /// RTU profile name.
    #[arg(long, default_value = "rtu-cabinet")]
    rtu_profile: String,
    /// Load profiles from this folder instead of the embedded ones.
    #[arg(long)]
    profiles: Option<PathBuf>,
    /// tcp or rtu-over-tcp (rtu) [default: tcp; rtu with --serial and --dial-in].
    #[arg(long)]
    framing: Option<Framing>,
    /// Serve endpoint i on the i-th serial device or pty end instead of a TCP
    /// port (repeatable): RTU framing, 9600 baud 8N1, the request framer
    /// resynchronising after garbage. Inventory endpoint
    /// `serial:PATH?baud=9600&parity=N&data_bits=8&stop_bits=1`, framing `rtu`.
    #[arg(long, value_name = "PATH", conflicts_with = "dial_in")]
    serial: Vec<PathBuf>,
    /// Instead of listening, every endpoint connects out to HOST:PORT like a
    /// 4G DTU: sends its cabinet id (CAB-0001…) in one write, then passes
    /// Modbus frames transparently (RTU, or MBAP with --framing tcp), sends
    /// its heartbeat between frames and dials again with a capped backoff
    /// (0.5 s to 10 s, jittered) when the link drops or is refused.
    /// Inventory endpoint `dtu:CAB-0001`, framing `rtu` or `tcp`.
    #[arg(long, value_name = "HOST:PORT")]
    dial_in: Option<String>,
    /// Dial-in heartbeat packet: literal bytes, or `hex:` and hex digits.
    #[arg(long, default_value = "hb")]
    heartbeat: String,
    /// Dial-in: time between heartbeats (`30s`, `500ms`, `2m`, or seconds); 0 = none.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Faults and alarms applied at start (TOML).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Control HTTP port (0 = ephemeral). Without it there is no control server.
    #[arg(long)]
    control_port: Option<u16>,
    /// Write districts.csv, cabinets.csv and lamps.csv here before serving.
    #[arg(long)]
    emit_inventory: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    districts: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Random lamp failures per lit lamp-hour (0 disables).
    #[arg(long, default_value_t = 0.001)]
    failure_rate_per_hour: f64,
    /// Inventory only: extra cabinets with no RTU.
    #[arg(long, default_value_t = 0)]
    cabinets_without_rtu: usize,
    /// Inventory only: extra lamps without SLC in every cabinet.
    #[arg(long, default_value_t = 0)]
    lamps_without_slc: usize,
    /// Start with simulated time stopped.
    #[arg(long)]
    frozen: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // Errors are for the operator: one line, no backtrace even with RUST_BACKTRACE set.
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lamp-sim: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "lamp_sim=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let started = Instant::now();
    let profiles = match &args.profiles {
        None => embedded_profiles(),
        Some(dir) => Profile::load_dir(dir).map_err(|issues| {
            let all: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
            anyhow::anyhow!("invalid profiles:\n{}", all.join("\n"))
        })?,
    };
    let scenario = match &args.scenario {
        Some(p) => Some(Scenario::load(p)?),
        None => None,
    };
    let link = match (&args.dial_in, args.serial.is_empty()) {
        (Some(server), _) => Link::DialIn(DialIn {
            heartbeat: parse_heartbeat(&args.heartbeat).map_err(|e| anyhow::anyhow!("--{e}"))?,
            heartbeat_interval: args.heartbeat_interval,
            ..DialIn::new(server.clone())
        }),
        (None, true) => Link::Listen,
        (None, false) => Link::Serial(args.serial.clone()),
    };
    let endpoints = match (&link, args.endpoints) {
        (Link::Serial(paths), Some(n)) if n != paths.len() => {
            bail!(
                "--endpoints {n} with {} --serial paths: give one path per endpoint",
                paths.len()
            )
        }
        (Link::Serial(paths), _) => paths.len(),
        (_, n) => n.unwrap_or(1),
    };
    if endpoints == 0 {
        bail!("--endpoints must be at least 1");
    }
    let framing = match (&link, args.framing) {
        (Link::Serial(_), Some(Framing::Tcp)) => {
            bail!("--serial carries RTU frames: --framing tcp is for sockets")
        }
        (Link::Serial(_) | Link::DialIn(_), None) => Framing::RtuOverTcp,
        (_, f) => f.unwrap_or(Framing::Tcp),
    };
    let cfg = SimConfig {
        host: args.host,
        endpoints,
        slcs_per_endpoint: args.slcs_per_endpoint,
        base_port: args.base_port,
        slc_profile: args.profile.clone(),
        rtu_profile: args.rtu_profile.clone(),
        framing,
        profiles,
        districts: args.districts,
        seed: args.seed,
        failure_rate_per_hour: args.failure_rate_per_hour,
        control_port: args.control_port,
        link,
    };
    let sim = Simulator::start(cfg).await?;
    if let Some(s) = &scenario {
        sim.apply_scenario(s)?;
    }
    if args.frozen {
        sim.set_frozen(true);
    }
    if let Some(dir) = &args.emit_inventory {
        let opts = InventoryOptions {
            cabinets_without_rtu: args.cabinets_without_rtu,
            lamps_without_slc_per_cabinet: args.lamps_without_slc,
        };
        sim.write_inventory(dir, &opts)
            .with_context(|| format!("writing inventory to {}", dir.display()))?;
    }
    let addrs = sim.endpoint_addrs();
    let ports = match (addrs.first(), addrs.last()) {
        _ if args.dial_in.is_some() => {
            format!("dial-in to {}", args.dial_in.as_deref().unwrap_or_default())
        }
        _ if !args.serial.is_empty() => args
            .serial
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
        (Some(a), Some(b)) if args.base_port != 0 => {
            format!("{}:{}-{}", args.host, a.port(), b.port())
        }
        _ => addrs
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
    };
    let control = sim
        .control_addr()
        .map_or("none".to_string(), |a| format!("http://{a}"));
    println!(
        "lamp-sim ready: {} endpoints x {} SLCs ({}, {}) on {ports}; control {control}; started in {} ms",
        endpoints,
        args.slcs_per_endpoint,
        args.profile,
        sim.inventory_framing(),
        started.elapsed().as_millis()
    );
    wait_for_signal().await?;
    tracing::info!(requests = sim.request_count(), "shutting down");
    sim.shutdown().await;
    Ok(())
}

/// `30s`, `500ms`, `2m`, `1h`, or plain (fractional) seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a duration such as 30s or 500ms"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("unknown unit `{other}` in `{s}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}`: not a duration >= 0"))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}
