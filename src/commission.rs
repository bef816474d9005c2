//! Commissioning (调试) a cabinet: `lamp-gateway probe` reads one device
//! field by field before it goes into the inventory, and `check-config
//! --probe` tries every endpoint of the inventory once.

use clap::Args;
use lamp_gateway::control::ControlSettings;
use lamp_gateway::inventory::{EndpointAddr, Framing, Link};
use lamp_gateway::poll::{self, PollSettings, PollerConfig, ProbeReport};
use lamp_gateway::topology::EndpointSpec;
use lamp_profile::{Profile, Quantity};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// `host:port`, `serial:/dev/ttyUSB0?baud=9600&parity=N`, or `dtu:ID`
    /// (with --dial-in-listen: wait for that DTU to dial in).
    #[arg(long)]
    pub endpoint: String,
    /// Modbus unit id of the device.
    #[arg(long)]
    pub unit: u8,
    /// Profile name (a file in --profiles).
    #[arg(long)]
    pub profile: String,
    /// Block index behind a concentrator (block-layout profiles).
    #[arg(long, default_value_t = 0)]
    pub index: u16,
    /// tcp, rtu-over-tcp or rtu (default: tcp for host:port, rtu otherwise).
    #[arg(long)]
    pub framing: Option<Framing>,
    #[arg(long, default_value = "config/profiles")]
    pub profiles: PathBuf,
    /// Limit on each request.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Write a value and read it back, e.g. `--write dim_level=40`; repeatable.
    #[arg(long = "write", value_parser = parse_write)]
    pub writes: Vec<(Quantity, f64)>,
    /// For `dtu:ID`: listen here for the DTU (e.g. 0.0.0.0:9502).
    #[arg(long)]
    pub dial_in_listen: Option<String>,
    /// For `dtu:ID`: how long to wait for it to register.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub dial_in_wait: Duration,
    /// For `dtu:ID`: the DTU's heartbeat bytes (`hb`, or `hex:FE01`), dropped between frames.
    #[arg(long)]
    pub heartbeat: Option<String>,
}

fn parse_write(s: &str) -> Result<(Quantity, f64), String> {
    let (q, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not QUANTITY=VALUE"))?;
    let q: Quantity = q.parse()?;
    let v: f64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
    Ok((q, v))
}

pub async fn probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let addr: EndpointAddr = args
        .endpoint
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let framing = addr.framing(args.framing).map_err(|e| anyhow::anyhow!(e))?;
    let profiles = Profile::load_dir(&args.profiles).map_err(|issues| {
        let lines: Vec<String> = issues.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "profiles in {}: {}",
            args.profiles.display(),
            lines.join("; ")
        )
    })?;
    let profile = profiles.get(&args.profile).cloned().ok_or_else(|| {
        anyhow::anyhow!(
            "no profile `{}` in {} (there are: {})",
            args.profile,
            args.profiles.display(),
            profiles.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    for (q, _) in &args.writes {
        if profile.field(*q).is_none() {
            anyhow::bail!("profile `{}` maps no `{q}` to write", profile.name);
        }
    }
    let mut cfg = poller_config(args.timeout);
    let _listener = match &addr.link {
        Link::DialIn { id } => {
            let listen = args.dial_in_listen.as_deref().ok_or_else(|| {
                anyhow::anyhow!(
                    "a dtu: endpoint needs --dial-in-listen ADDR to wait for the DTU on"
                )
            })?;
            let (registry, guard) = dial_in(listen, id, args.heartbeat.as_deref()).await?;
            cfg.dialin = Some(registry);
            Some(guard)
        }
        _ => None,
    };
    let spec = EndpointSpec {
        address: addr.key(),
        link: addr.link.clone(),
        framing,
        request_gap: addr.request_gap,
        devices: Vec::new(),
        reads: Vec::new(),
    };
    println!(
        "probe {} ({}), unit {}, profile {}",
        spec.address,
        framing_name(framing),
        args.unit,
        profile.name
    );
    let report = poll::probe_device(
        spec,
        cfg,
        args.unit,
        args.index,
        Arc::new(profile),
        &args.writes,
        args.dial_in_wait,
    )
    .await;
    Ok(print_report(&report))
}

fn framing_name(f: Framing) -> &'static str {
    match f {
        Framing::Tcp => "Modbus TCP",
        Framing::Rtu => "Modbus RTU",
    }
}

/// The poller settings a probe runs with: the defaults, with its timeout.
fn poller_config(timeout: Duration) -> PollerConfig {
    let poll = PollSettings {
        request_timeout: timeout,
        connect_timeout: timeout.max(Duration::from_secs(2)),
        ..PollSettings::default()
    };
    let control = ControlSettings {
        max_attempts: 1,
        ..ControlSettings::default()
    };
    PollerConfig::new(&poll, &control)
}

/// A dial-in listener that admits only the DTU being probed.
async fn dial_in(
    listen: &str,
    id: &str,
    heartbeat: Option<&str>,
) -> anyhow::Result<(
    Arc<lamp_gateway::dialin::Registry>,
    tokio_util::sync::DropGuard,
)> {
    let heartbeat = match heartbeat {
        Some(text) => text
            .parse::<lamp_gateway::dialin::Heartbeat>()
            .map_err(|e| anyhow::anyhow!("--heartbeat: {e}"))?
            .bytes(),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("--dial-in-listen {listen}: {e}"))?;
    println!(
        "waiting for DTU `{id}` on {}",
        listener
            .local_addr()
            .map_or(listen.to_string(), |a| a.to_string())
    );
    let registry = lamp_gateway::dialin::Registry::new([id.to_string()], heartbeat.clone());
    let settings = lamp_gateway::dialin::DialInSettings {
        listen: Some(listen.to_string()),
        ..Default::default()
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    tokio::spawn(lamp_gateway::dialin::serve(
        listener,
        registry.clone(),
        settings,
        cancel.clone(),
    ));
    Ok((registry, cancel.drop_guard()))
}

/// Prints the report; exit 0 only when every read was answered without an
/// exception and every write read back what was written.
fn print_report(r: &ProbeReport) -> ExitCode {
    match &r.connect {
        Ok(t) => println!("connected in {:.1} ms", ms(*t)),
        Err(e) => {
            println!("not connected: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut ok = true;
    for read in &r.reads {
        let what = format!(
            "read {:?} {}..{} ({})",
            read.table,
            read.start,
            u32::from(read.start) + u32::from(read.count),
            read.count
        )
        .to_lowercase();
        match &read.result {
            Ok(words) => println!(
                "{what}: {:.1} ms  [{}]",
                ms(read.round_trip),
                hex_words(words)
            ),
            Err(e) => {
                ok = false;
                println!("{what}: {:.1} ms  {e}", ms(read.round_trip));
            }
        }
    }
    println!();
    println!(
        "{:<18} {:<15} {:>7}  {:<12} value",
        "field", "table", "address", "raw"
    );
    for f in &r.fields {
        let value = match f.value {
            Some(v) => format!(
                "{v}{}",
                f.unit.as_deref().map_or(String::new(), |u| format!(" {u}"))
            ),
            None => "(not read)".into(),
        };
        println!(
            "{:<18} {:<15} {:>7}  {:<12} {value}",
            f.quantity.to_string(),
            format!("{:?}", f.table).to_lowercase(),
            f.address,
            hex_words(&f.raw)
        );
    }
    for w in &r.writes {
        match &w.result {
            Ok(back) => println!("write {}={}: read back {back}", w.quantity, w.wrote),
            Err(e) => {
                ok = false;
                println!("write {}={}: {e}", w.quantity, w.wrote);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn hex_words(w: &[u16]) -> String {
    w.iter()
        .map(|x| format!("{x:04X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `check-config --probe`: every dialled endpoint of the topology tried
/// once, all at the same time, within `budget` in total. Dial-in endpoints
/// cannot be reached from here and are listed as such. Returns the number
/// of unreachable endpoints.
pub async fn probe_endpoints(
    endpoints: &[EndpointSpec],
    poll: &PollSettings,
    budget: Duration,
) -> usize {
    let cfg = PollerConfig::new(poll, &ControlSettings::default());
    let mut set = tokio::task::JoinSet::new();
    let mut dial_in = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        if matches!(ep.link, Link::DialIn { .. }) {
            dial_in.push(ep.address.clone());
            continue;
        }
        let (ep, cfg) = (ep.clone(), cfg.clone());
        set.spawn(async move { (i, poll::reachable(&ep, &cfg).await) });
    }
    let mut results: Vec<Option<Result<Duration, String>>> = vec![None; endpoints.len()];
    let deadline = tokio::time::Instant::now() + budget;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        if let Ok((i, r)) = joined {
            results[i] = Some(r);
        }
    }
    set.abort_all();
    let mut unreachable = 0;
    for (ep, r) in endpoints.iter().zip(&results) {
        match r {
            Some(Ok(t)) => println!("reachable   {} ({:.1} ms)", ep.address, ms(*t)),
            Some(Err(e)) => {
                unreachable += 1;
                println!("UNREACHABLE {}: {e}", ep.address);
            }
            None if matches!(ep.link, Link::DialIn { .. }) => {}
            None => {
                unreachable += 1;
                println!(
                    "UNREACHABLE {}: no answer within the {budget:?} probe budget",
                    ep.address
                );
            }
        }
    }
    for d in dial_in {
        println!("dial-in     {d}: not probed (its DTU connects to the running gateway)");
    }
    unreachable
}
