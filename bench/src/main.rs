//! lamp-bench: the gateway against the limit, on the simulator, in one run.
//! See docs/benchmarks.md.

mod alarms;
mod api_load;
mod baseline;
mod console;
mod control;
mod evaluation;
mod field;
mod figures;
mod gateway;
mod mqtt;
mod procfs;
mod raw;
mod schedule;
mod sinks;
mod soak;
mod stats;
mod store;
mod tb;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use gateway::Gateway;
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::{json, Map, Value};
use sinks::{Mqtt, Store, Subscriber};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "lamp-bench",
    version,
    about = "lamp-gateway against a raw tokio-modbus client on the simulator; prints one JSON object"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Cmd {
    /// Command latency on loopback while polling runs (was the gateway's
    /// control_bench example): [endpoints] [slcs_per_endpoint] [singles]
    Control {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The night plan at city scale: one engine tick over every lamp, and a
    /// city-wide switch point to all confirmed against one manual city-wide
    /// command: [endpoints] [slcs_per_endpoint]
    Schedule {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Alarm evaluation on the state task: one poll cycle of every endpoint
    /// applied with and without the alarm engine judging it:
    /// [endpoints] [slcs_per_endpoint] [cycles]
    Alarms {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The supervision figures now and over windows on a generated month of
    /// history, SQLite and PostgreSQL (was the figures_bench example):
    /// [--endpoints N --slcs M --days D --postgres URL|none]
    Figures {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The saving's baseline over a window with one schedule version
    /// against three, in-process:
    /// [cabinets] [lamps_per_cabinet] [days] [runs]
    Baseline {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// The evaluation-grade lighting figures now against the summary's
    /// counts on one generated live state, in-process:
    /// [cabinets] [lamps_per_cabinet] [runs]
    Evaluation {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Sustained samples/s through the gateway's store into SQLite and
    /// PostgreSQL, next to a plain one-row-INSERT loop in the same run
    Store(store::StoreArgs),
    /// (internal) the raw client, run as a child so its CPU and memory are its own
    RawClient {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        cycles: u64,
    },
    /// Writes a ThingsBoard IoT Gateway Modbus connector config (modbus.json)
    /// for the devices of an inventory (e.g. from `lamp-sim --emit-inventory`)
    TbConfig {
        #[arg(long)]
        inventory: PathBuf,
        /// Profiles folder (default: the profiles built into lamp-sim)
        #[arg(long)]
        profiles: Option<PathBuf>,
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
        /// Also poll the cabinet RTUs
        #[arg(long)]
        with_rtus: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// The MQTT mirror: the gateway in process publishing every lamp's state
    /// to a private Mosquitto and to the embedded broker, against a bare
    /// rumqttc publisher in the same run
    Mqtt(mqtt::MqttArgs),
    /// Field connectivity: an endpoint with dead units against one with
    /// none, and 1,000 dial-in DTUs × 50 SLCs against the same city over
    /// plain TCP, in the same run
    Field(field::FieldArgs),
    /// API load against polling: 100,000 lamps at the default cadence,
    /// quiet windows against windows with N connections per API path on
    /// the same gateway
    ApiLoad(api_load::ApiLoadArgs),
    /// The operator console's page times at city scale against `/healthz`, and live streams.
    Console(console::ConsoleArgs),
    /// The gateway on the simulator for a set time under random faults
    /// (endpoints, SLCs, database and broker cut off), checking that no
    /// sample is lost, the cadence holds, memory stays flat and tasks do
    /// not grow
    Soak(soak::SoakArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Both,
    Gateway,
    Raw,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Modbus endpoints (cabinets) in the simulator
    #[arg(long, default_value_t = 1000)]
    endpoints: usize,
    /// SLCs behind each endpoint
    #[arg(long, default_value_t = 100)]
    slcs_per_endpoint: usize,
    /// SLC profile: slc-a-unit (one unit id per SLC) or slc-b-block (concentrator blocks)
    #[arg(long, default_value = "slc-a-unit")]
    profile: String,
    /// tcp or rtu-over-tcp
    #[arg(long, default_value = "tcp")]
    framing: String,
    /// Full poll cycles measured per run (after the first one)
    #[arg(long, default_value_t = 8)]
    cycles: u64,
    /// Runs of each mode, alternating gateway and raw; medians are reported
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    /// The lamp-gateway binary [default: lamp-gateway next to this executable]
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// none | sqlite (fresh file) | sqlite://PATH | postgres://URL
    #[arg(long, default_value = "none")]
    store: String,
    /// none | embedded | mqtt://HOST:PORT
    #[arg(long, default_value = "none")]
    mqtt: String,
    /// MQTT topic root the gateway publishes under
    #[arg(long, default_value = "streetlight")]
    topic_root: String,
    /// Keep the generated settings and inventory in this folder
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Milliseconds between reads of the gateway's /metrics: the cycle-time
    /// resolution. Each read costs the gateway CPU (several ms at 100,000
    /// lamps: it computes the supervision figures over every lamp), so not often.
    #[arg(long, default_value_t = 200)]
    scrape_ms: u64,
    /// Give up on a run after this many seconds
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Cmd::Store(args)) => store::main(args),
        Some(Cmd::Control { args }) => control::run(args),
        Some(Cmd::Schedule { args }) => schedule::run(args),
        Some(Cmd::Alarms { args }) => alarms::run(args),
        Some(Cmd::Figures { args }) => figures::run(args),
        Some(Cmd::Evaluation { args }) => evaluation::run(args),
        Some(Cmd::Baseline { args }) => baseline::run(args),
        Some(Cmd::RawClient { config, cycles }) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(raw::run(&config, cycles))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Some(Cmd::TbConfig {
            inventory,
            profiles,
            poll_ms,
            with_rtus,
            out,
        }) => {
            let scratch = tempfile::tempdir()?;
            let profiles = match profiles {
                Some(p) => p,
                None => write_profiles(scratch.path())?,
            };
            let config = scratch.path().join("settings.toml");
            std::fs::write(
                &config,
                format!(
                    "[paths]\ninventory = {:?}\nprofiles = {:?}\n",
                    std::path::absolute(&inventory)?,
                    std::path::absolute(&profiles)?
                ),
            )?;
            let topology = load_topology(&config)?;
            let cfg = tb::modbus_config(&topology, poll_ms, with_rtus);
            let devices = cfg["master"]["slaves"].as_array().map_or(0, Vec::len);
            std::fs::write(&out, serde_json::to_string_pretty(&cfg)?)?;
            eprintln!("lamp-bench: wrote {} ({devices} devices)", out.display());
            Ok(())
        }
        Some(Cmd::Mqtt(args)) => mqtt::run(args),
        Some(Cmd::Field(args)) => field::main(args),
        Some(Cmd::ApiLoad(args)) => api_load::main(args),
        Some(Cmd::Console(args)) => console::main(args),
        Some(Cmd::Soak(args)) => soak::main(args),
        None => run(cli.run),
    }
}

fn write_profiles(dir: &Path) -> anyhow::Result<PathBuf> {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles)?;
    for (file, text) in lamp_sim::EMBEDDED_PROFILES {
        std::fs::write(profiles.join(file), text)?;
    }
    Ok(profiles)
}

fn load_topology(config: &Path) -> anyhow::Result<lamp_gateway::topology::Topology> {
    let settings = lamp_gateway::settings::Settings::load(Some(config))?;
    let loaded = lamp_gateway::validate::load(&settings).map_err(|issues| {
        anyhow::anyhow!(
            "invalid configuration: {}",
            issues
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    Ok(loaded.topology)
}

/// The settings the gateway gets: everything polled back to back. Sections
/// the gateway binary does not know yet are left out when they would say
/// "none" anyway (the store and MQTT are being added in parallel).
fn settings_text(store: Option<&Store>, mqtt: Option<&Mqtt>, root: &str) -> String {
    let mut s = String::from(
        "# Generated by lamp-bench: poll every endpoint back to back.\n\
         [gateway]\nid = \"lamp-bench\"\n\
         [paths]\ninventory = \"inventory\"\nprofiles = \"profiles\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n\
         [poll]\nslc_interval = \"0s\"\nrtu_interval = \"0s\"\n\
         [log]\nlevel = \"warn\"\n",
    );
    if let Some(store) = store {
        s += &format!("[store]\nurl = {:?}\n", store.url());
    }
    if let Some(mqtt) = mqtt {
        s += &format!("[mqtt]\nurl = {:?}\ntopic_root = {root:?}\n", mqtt.url());
        if let Mqtt::Embedded(addr) = mqtt {
            s += &format!("embedded_listen = \"{addr}\"\n");
        }
    }
    s
}

/// Writes the settings, asking the gateway binary (`check-config`) whether it
/// knows the `[store]` and `[mqtt]` sections. Returns which it knows.
fn write_settings(
    binary: &Path,
    path: &Path,
    store: &Store,
    mqtt: &Mqtt,
    root: &str,
) -> anyhow::Result<(bool, bool)> {
    let (mut with_store, mut with_mqtt) = (true, true);
    for _ in 0..3 {
        std::fs::write(
            path,
            settings_text(with_store.then_some(store), with_mqtt.then_some(mqtt), root),
        )?;
        let out = Command::new(binary)
            .args(["check-config", "--config"])
            .arg(path)
            .output()
            .with_context(|| format!("running {} check-config", binary.display()))?;
        if out.status.success() {
            return Ok((with_store, with_mqtt));
        }
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let unknown = |key: &str| text.contains(&format!("unknown field `{key}`"));
        if with_store && unknown("store") {
            if *store != Store::None {
                bail!(
                    "this lamp-gateway has no store yet (settings key store.url): use --store none"
                );
            }
            with_store = false;
        } else if with_mqtt && unknown("mqtt") {
            if *mqtt != Mqtt::None {
                bail!("this lamp-gateway has no MQTT yet (settings key mqtt.url): use --mqtt none");
            }
            with_mqtt = false;
        } else {
            bail!("lamp-gateway check-config rejected the generated settings:\n{text}");
        }
    }
    bail!("could not generate settings this lamp-gateway accepts")
}

fn default_gateway_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name("lamp-gateway"))
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let binary = match &args.gateway {
        Some(p) => p.clone(),
        None => default_gateway_binary()?,
    };
    if args.mode != Mode::Raw && !binary.exists() {
        bail!(
            "no lamp-gateway binary at {} (build it with `cargo build --release`, or pass --gateway)",
            binary.display()
        );
    }
    let temp = tempfile::tempdir()?;
    let scratch = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            std::path::absolute(dir)?
        }
        None => temp.path().to_path_buf(),
    };
    let store = Store::parse(&args.store, &scratch)?;
    let mqtt = Mqtt::parse(&args.mqtt)?;
    let machine = procfs::machine();

    // The simulator, in this process, on its own runtime threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lamp-sim")
        .build()?;
    let sim = rt.block_on(Simulator::start(SimConfig {
        endpoints: args.endpoints,
        slcs_per_endpoint: args.slcs_per_endpoint,
        slc_profile: args.profile.clone(),
        framing: args
            .framing
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?,
        base_port: 0,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    }))?;
    sim.write_inventory(&scratch.join("inventory"), &InventoryOptions::default())?;
    write_profiles(&scratch)?;
    let config = scratch.join("settings.toml");
    let (knows_store, knows_mqtt) = if args.mode == Mode::Raw {
        std::fs::write(&config, settings_text(None, None, &args.topic_root))?;
        (false, false)
    } else {
        write_settings(&binary, &config, &store, &mqtt, &args.topic_root)?
    };
    let topology = load_topology(&config)?;
    let lamps = (args.endpoints * args.slcs_per_endpoint) as u64;
    let reads_per_cycle = topology.read_count();
    let devices = topology.device_count();
    eprintln!(
        "lamp-bench: {} endpoints x {} SLCs ({}, {}) = {lamps} lamps, {devices} devices, {reads_per_cycle} reads per full cycle; {} cycles x {} run(s)",
        args.endpoints, args.slcs_per_endpoint, args.profile, args.framing, args.cycles, args.repeat
    );

    let limit = Duration::from_secs(args.timeout);
    let mut runs: Vec<Value> = Vec::new();
    for i in 0..args.repeat {
        // Alternate which goes first, so drift in the machine's load hits both.
        let order: &[Mode] = match (args.mode, i % 2) {
            (Mode::Both, 0) => &[Mode::Gateway, Mode::Raw],
            (Mode::Both, _) => &[Mode::Raw, Mode::Gateway],
            (Mode::Gateway, _) => &[Mode::Gateway],
            (Mode::Raw, _) => &[Mode::Raw],
        };
        for mode in order {
            let requests_before = sim.request_count();
            // This process is the simulator (plus a little bookkeeping): its
            // CPU shows whether the farm, not the poller, was the bottleneck.
            let sim_cpu_before = procfs::self_cpu_seconds().unwrap_or(0.0);
            let mut r = match mode {
                Mode::Raw => run_raw(&config, args.cycles, lamps, limit)?,
                _ => run_gateway(&binary, &config, &args, &store, &mqtt, lamps, limit)?,
            };
            r["simulator_requests"] = json!(sim.request_count() - requests_before);
            r["simulator_cpu_seconds"] = json!(
                ((procfs::self_cpu_seconds().unwrap_or(0.0) - sim_cpu_before) * 100.0).round()
                    / 100.0
            );
            r["run"] = json!(i + 1);
            eprintln!("lamp-bench: {}", serde_json::to_string(&r)?);
            runs.push(r);
        }
    }
    rt.block_on(sim.shutdown());

    let summary = |mode: &str| summarize(runs.iter().filter(|r| r["mode"] == mode));
    let (g, r) = (summary("gateway"), summary("raw"));
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let ratio = |k: &str| match (num(&g, k), num(&r, k)) {
        (Some(a), Some(b)) if b != 0.0 => json!((a / b * 1000.0).round() / 1000.0),
        _ => Value::Null,
    };
    let gateway_vs_raw = json!({
        "lamps_per_second": ratio("lamps_per_second"),
        "cycle_seconds_p50": ratio("cycle_seconds_p50"),
        "cpu_seconds_per_cycle": ratio("cpu_seconds_per_cycle"),
        "peak_rss_mib": ratio("peak_rss_mib"),
    });
    let bars = json!({
        "full_cycle_p50_under_2s": num(&g, "cycle_seconds_p50").map(|x| x < 2.0),
        "rate_at_least_50pct_of_raw": gateway_vs_raw["lamps_per_second"].as_f64().map(|x| x >= 0.5),
        "cpu_at_most_20us_per_lamp_sample": num(&g, "cpu_us_per_lamp_sample").map(|x| x <= 20.0),
        "peak_rss_at_most_200_mib": num(&g, "peak_rss_mib").map(|x| x <= 200.0),
    });
    // Issue 18, goal 1: with the store and MQTT on, the same run against the
    // raw client; only where both sinks ran (poll only is measured above).
    let end_to_end = (knows_store && knows_mqtt && store != Store::None && mqtt != Mqtt::None)
        .then(|| {
            json!({
                "rate_at_least_60pct_of_raw": gateway_vs_raw["lamps_per_second"].as_f64().map(|x| x >= 0.6),
                "cpu_at_most_12us_per_lamp_sample": num(&g, "cpu_us_per_lamp_sample").map(|x| x <= 12.0),
                "peak_rss_at_most_200_mib": num(&g, "peak_rss_mib").map(|x| x <= 200.0),
            })
        });
    let out = json!({
        "lamps": lamps,
        "endpoints": args.endpoints,
        "slcs_per_endpoint": args.slcs_per_endpoint,
        "devices": devices,
        "profile": args.profile,
        "framing": args.framing,
        "reads_per_cycle": reads_per_cycle,
        "cycles": args.cycles,
        "repeat": args.repeat,
        "store": if knows_store { json!(store.url()) } else { json!("none (this gateway has no store)") },
        "mqtt": if knows_mqtt { json!(mqtt.url()) } else { json!("none (this gateway has no MQTT)") },
        "gateway": g,
        "raw": r,
        "gateway_vs_raw": gateway_vs_raw,
        "bars": bars,
        "end_to_end_bars": end_to_end,
        "runs": runs,
        "machine": machine,
        "versions": {
            "lamp-bench": env!("CARGO_PKG_VERSION"),
            "lamp-gateway": gateway_version(&binary),
            "tokio-modbus (raw client)": "0.17",
        },
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn gateway_version(binary: &Path) -> Value {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or(Value::Null, |o| {
            json!(String::from_utf8_lossy(&o.stdout).trim().to_string())
        })
}

/// Medians over runs of every numeric figure; other fields from the first run.
fn summarize<'a>(runs: impl Iterator<Item = &'a Value>) -> Value {
    let runs: Vec<&Value> = runs.collect();
    let Some(first) = runs.first() else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (k, v) in first.as_object().into_iter().flatten() {
        if k == "run" || k == "mode" {
            continue;
        }
        if v.is_number() {
            let xs: Vec<f64> = runs.iter().filter_map(|r| r[k].as_f64()).collect();
            out.insert(k.clone(), json!(stats::median(xs)));
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    out.insert("runs".into(), json!(runs.len()));
    Value::Object(out)
}

fn run_raw(config: &Path, cycles: u64, lamps: u64, limit: Duration) -> anyhow::Result<Value> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["raw-client", "--config"])
        .arg(config)
        .args(["--cycles", &cycles.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            bail!("raw client did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("raw client failed ({})", out.status);
    }
    let report: raw::RawReport =
        serde_json::from_slice(&out.stdout).context("raw client output")?;
    let fig = stats::figures(&report.marks(), lamps, report.peak_rss_mib)
        .context("raw client completed no cycle")?;
    let mut v = json!({ "mode": "raw" });
    merge(&mut v, serde_json::to_value(fig)?);
    v["reads_failed"] = json!(report.reads_failed);
    Ok(v)
}

fn run_gateway(
    binary: &Path,
    config: &Path,
    args: &RunArgs,
    store: &Store,
    mqtt: &Mqtt,
    lamps: u64,
    limit: Duration,
) -> anyhow::Result<Value> {
    let stored_before = store.count_lamp_samples()?;
    let mqtt_sub_external = !matches!(mqtt, Mqtt::Embedded(_));
    let mut sub = if mqtt_sub_external {
        Subscriber::start(mqtt, &args.topic_root)?
    } else {
        None
    };
    let mut gw = Gateway::start(binary, config)?;
    let ready_s = gw.wait_ready(limit)?;
    if sub.is_none() {
        sub = Subscriber::start(mqtt, &args.topic_root)?;
    }
    let (marks, last) = gw.measure(args.cycles, Duration::from_millis(args.scrape_ms), limit)?;
    let rss = gw.peak_rss_mib();
    let fig = stats::figures(&marks, lamps, rss).context("gateway completed no cycle")?;
    let slc_cycles = last
        .get("lampgw_poll_cycles_total{class=\"slc\"}")
        .copied()
        .unwrap_or(0.0) as u64;
    let reads_failed = last
        .get("lampgw_modbus_reads_total{result=\"failed\"}")
        .copied()
        .unwrap_or(0.0) as u64;
    gw.stop(Duration::from_secs(60))?;
    let mut v = json!({ "mode": "gateway", "ready_seconds": (ready_s * 1000.0).round() / 1000.0 });
    merge(&mut v, serde_json::to_value(fig)?);
    v["reads_failed"] = json!(reads_failed);
    // Lamp samples the gateway had taken when it was told to stop: every row
    // of them must be in the store (it takes a few more before it stops).
    let polled = slc_cycles * args.slcs_per_endpoint as u64;
    v["lamp_samples_polled_before_stop"] = json!(polled);
    v["samples_stored"] = match (store.count_lamp_samples()?, stored_before) {
        (Some(after), Some(before)) => json!(after - before),
        _ => json!("not measured (--store none)"),
    };
    if let Some((a, b)) = store.count_lamp_samples()?.zip(stored_before) {
        v["all_polled_samples_stored"] = json!(a - b >= polled);
    }
    v["mqtt_messages_received"] = match sub {
        Some(sub) => {
            std::thread::sleep(Duration::from_millis(500));
            let (n, lamps_seen) = sub.stop();
            v["mqtt_distinct_lamps"] = json!(lamps_seen);
            json!(n)
        }
        None => json!("not measured (--mqtt none)"),
    };
    Ok(v)
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}
