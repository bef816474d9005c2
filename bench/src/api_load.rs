//! `lamp-bench api-load`: does API load cost the poll cycle? (issue 12,
//! defect 5). The gateway binary runs as a child on the in-process simulator
//! at the default cadence (SLC 10 s, RTU 5 s); once every device is online,
//! windows of the same length alternate on the same gateway: one quiet (no
//! API request but the bench's own `/metrics` reads), one loaded (N
//! connections per path requesting back to back with a viewer token, like
//! `wrk`: a 503 is asked again at once, `Retry-After` or not). For each
//! window: full poll cycles, the longest SLC cycle
//! (`lampgw_poll_cycle_seconds_max{class="slc"}`, read every `--scrape`),
//! Modbus reads per second, the longest stretch without a Modbus read, the
//! gateway's CPU; for the loaded one also the API's answers by status and
//! their latency. The ratios loaded / quiet are taken within one pair, so the
//! machine's drift hits both sides.

use crate::gateway::{http_get, parse_metrics, Gateway};
use crate::{default_gateway_binary, procfs, stats, write_profiles};
use anyhow::Context as _;
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct ApiLoadArgs {
    /// Endpoints (cabinets) and SLCs behind each: 1,000 × 100 = 100,000 lamps.
    #[arg(long, default_value_t = 1000)]
    endpoints: usize,
    #[arg(long, default_value_t = 100)]
    slcs: usize,
    /// Length of each window, quiet and loaded.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    window: Duration,
    /// Pause between windows, so a loaded window's backlog does not fall into the next.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// Pairs of windows (quiet, loaded), alternating which goes first; medians reported.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Connections per path during a loaded window.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Paths requested during a loaded window (each by `--connections` connections).
    #[arg(long, default_values_t = ["/api/v1/lamps".to_string(), "/api/v1/metrics/summary".to_string()])]
    path: Vec<String>,
    /// Worker threads of the load generator's runtime (in this process, beside the simulator).
    #[arg(long, default_value_t = 2)]
    load_threads: usize,
    /// Niceness of the load generator's threads (0 = as the simulator): with
    /// 19 the load takes what CPU the simulator (the field's devices) and the
    /// gateway leave, as clients on other machines would; with 0 it competes
    /// with the simulator on this machine's two cores.
    #[arg(long, default_value_t = 0)]
    load_nice: i32,
    /// How often the gateway's /metrics is read.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    scrape: Duration,
    /// Extra `[api]` settings for the gateway, `key = value` as TOML
    /// (e.g. `max_concurrent = 16`); a gateway that does not know a key refuses to start.
    #[arg(long)]
    api_setting: Vec<String>,
    /// The lamp-gateway binary [default: next to this executable].
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Keep the generated settings and inventory in this folder.
    #[arg(long)]
    keep: Option<PathBuf>,
}

const TOKEN: &str = "lgw_bench_viewer";

pub fn main(args: ApiLoadArgs) -> anyhow::Result<()> {
    let binary = match &args.gateway {
        Some(p) => p.clone(),
        None => default_gateway_binary()?,
    };
    let machine = procfs::machine();
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("lamp-sim")
        .build()?;
    let load_nice = args.load_nice;
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.load_threads.max(1))
        .enable_all()
        .thread_name("api-load")
        .on_thread_start(move || {
            if load_nice != 0 {
                let tid = rustix::thread::gettid();
                if let Err(e) = rustix::process::setpriority_process(Some(tid), load_nice) {
                    eprintln!("lamp-bench api-load: cannot set the load's niceness: {e}");
                }
            }
        })
        .build()?;
    let sim = sim_rt.block_on(Simulator::start(SimConfig {
        endpoints: args.endpoints,
        slcs_per_endpoint: args.slcs,
        base_port: 0,
        control_port: None,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    }))?;
    let temp = tempfile::tempdir()?;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            std::path::absolute(d)?
        }
        None => temp.path().to_path_buf(),
    };
    sim.write_inventory(&dir.join("inventory"), &InventoryOptions::default())?;
    write_profiles(&dir)?;
    let config = dir.join("settings.toml");
    let mut text = String::from(
        "# lamp-bench api-load: the default cadence (SLC 10 s, RTU 5 s).\n\
         [gateway]\nid = \"lamp-bench\"\n\
         [paths]\ninventory = \"inventory\"\nprofiles = \"profiles\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n",
    );
    for s in &args.api_setting {
        text += s;
        text += "\n";
    }
    text += &format!(
        "[store]\nurl = \"none\"\n[mqtt]\nurl = \"none\"\n[log]\nlevel = \"warn\"\n\
         [[auth.tokens]]\nname = \"bench\"\nhash = {:?}\nrole = \"viewer\"\n",
        lamp_gateway::auth::hash_token(TOKEN)
    );
    std::fs::write(&config, text)?;

    let lamps = args.endpoints * args.slcs;
    eprintln!(
        "lamp-bench api-load: {} endpoints x {} SLCs = {lamps} lamps; {} pair(s) of {:?} windows; load {} x {:?}",
        args.endpoints, args.slcs, args.repeat, args.window, args.connections, args.path
    );
    let mut gw = Gateway::start(&binary, &config)?;
    gw.wait_ready(Duration::from_secs(180))?;
    let devices = (args.endpoints * (args.slcs + 1)) as f64;
    gw.wait_all_online(
        devices,
        Duration::from_millis(500),
        Instant::now(),
        Duration::from_secs(180),
    )?;
    // Two cycles at the cadence, so the start-up burst is over.
    std::thread::sleep(Duration::from_secs(20));

    let mut pairs = Vec::new();
    for i in 0..args.repeat {
        let order = if i % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut quiet = Value::Null;
        let mut loaded = Value::Null;
        for (k, with_load) in order.into_iter().enumerate() {
            if k > 0 || i > 0 {
                std::thread::sleep(args.settle);
            }
            let w = window(&gw, &args, &load_rt, with_load)?;
            eprintln!(
                "lamp-bench api-load: pair {} {}: {w}",
                i + 1,
                if with_load { "loaded" } else { "quiet" }
            );
            if with_load {
                loaded = w;
            } else {
                quiet = w;
            }
        }
        let ratio = |k: &str| {
            let (a, b) = (loaded[k].as_f64(), quiet[k].as_f64());
            match (a, b) {
                (Some(a), Some(b)) if b != 0.0 => json!(round(a / b, 3)),
                _ => Value::Null,
            }
        };
        let ratios = json!({
            "slc_cycle_max_s": ratio("slc_cycle_max_s"),
            "slc_cycle_median_s": ratio("slc_cycle_median_s"),
            "full_cycles": ratio("full_cycles"),
            "slc_cycles_per_endpoint": ratio("slc_cycles_per_endpoint"),
            "modbus_reads_per_s": ratio("modbus_reads_per_s"),
        });
        pairs.push(
            json!({ "pair": i + 1, "quiet": quiet, "loaded": loaded, "loaded_over_quiet": ratios }),
        );
    }
    let peak = gw.peak_rss_mib();
    gw.stop(Duration::from_secs(30))?;
    sim_rt.block_on(sim.shutdown());

    let med = |side: &str, k: &str| {
        stats::median(pairs.iter().filter_map(|p| p[side][k].as_f64()).collect())
            .map(|x| round(x, 3))
    };
    let keys = [
        "slc_cycle_max_s",
        "slc_cycle_median_s",
        "full_cycles",
        "slc_cycles_per_endpoint",
        "modbus_reads_per_s",
        "longest_no_read_s",
        "gateway_cpu_percent",
    ];
    let mut medians = serde_json::Map::new();
    for side in ["quiet", "loaded", "loaded_over_quiet"] {
        let m: serde_json::Map<String, Value> = keys
            .iter()
            .filter_map(|k| med(side, k).map(|v| (k.to_string(), json!(v))))
            .collect();
        medians.insert(side.into(), Value::Object(m));
    }
    for k in [
        "requests_per_s",
        "status_503_share",
        "latency_ms_p50",
        "latency_ms_p99",
    ] {
        if let Some(v) = med("loaded", &format!("api_{k}")) {
            medians["loaded"][format!("api_{k}")] = json!(v);
        }
    }
    let out = json!({
        "lamps": lamps,
        "endpoints": args.endpoints,
        "slcs_per_endpoint": args.slcs,
        "window_s": args.window.as_secs_f64(),
        "connections_per_path": args.connections,
        "paths": args.path,
        "api_settings": args.api_setting,
        "load_nice": args.load_nice,
        "medians": Value::Object(medians),
        "pairs": pairs,
        "gateway_peak_rss_mib": peak,
        "machine": machine,
        "load_average_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn get(m: &HashMap<String, f64>, k: &str) -> f64 {
    m.get(k).copied().unwrap_or(0.0)
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() as f64 - 1.0) * q).round() as usize])
}

/// What one load connection saw.
#[derive(Default)]
struct Tally {
    by_status: BTreeMap<u16, u64>,
    /// 503s that carried `Retry-After`.
    retry_after: u64,
    errors: u64,
    /// Latency in µs by status.
    latency_us: BTreeMap<u16, Vec<u32>>,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        for (k, v) in o.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        self.retry_after += o.retry_after;
        self.errors += o.errors;
        for (k, v) in o.latency_us {
            self.latency_us.entry(k).or_default().extend(v);
        }
    }
}

async fn hammer(client: reqwest::Client, url: String, until: tokio::time::Instant) -> Tally {
    let mut t = Tally::default();
    while tokio::time::Instant::now() < until {
        let start = Instant::now();
        match client.get(&url).bearer_auth(TOKEN).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                if status == 503 && r.headers().contains_key(reqwest::header::RETRY_AFTER) {
                    t.retry_after += 1;
                }
                if r.bytes().await.is_err() {
                    t.errors += 1;
                    continue;
                }
                *t.by_status.entry(status).or_default() += 1;
                t.latency_us
                    .entry(status)
                    .or_default()
                    .push(start.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            Err(_) => {
                t.errors += 1;
                // A refused connection would otherwise spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    t
}

/// One window: the poll figures, and the API's answers when loaded.
fn window(
    gw: &Gateway,
    args: &ApiLoadArgs,
    load_rt: &tokio::runtime::Runtime,
    with_load: bool,
) -> anyhow::Result<Value> {
    let load = with_load.then(|| {
        let until = tokio::time::Instant::now() + args.window;
        let mut tasks = Vec::new();
        for path in &args.path {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(args.connections)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client");
            let url = format!("http://{}{path}", gw.api);
            for _ in 0..args.connections {
                tasks.push(load_rt.spawn(hammer(client.clone(), url.clone(), until)));
            }
        }
        tasks
    });
    let pid = gw.pid();
    let t0 = Instant::now();
    let cpu0 = procfs::cpu_seconds(pid).context("gateway CPU")?;
    let m0 = scrape(gw)?.1;
    let mut samples = vec![(0.0, m0.clone())];
    let mut scrape_ms = Vec::new();
    while t0.elapsed() < args.window {
        std::thread::sleep(args.scrape);
        let (took, m) = scrape(gw)?;
        scrape_ms.push(took * 1e3);
        samples.push((t0.elapsed().as_secs_f64(), m));
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = procfs::cpu_seconds(pid).context("gateway CPU")?;
    let m1 = &samples.last().expect("one sample").1;
    let reads = |m: &HashMap<String, f64>| get(m, "lampgw_modbus_reads_total{result=\"ok\"}");
    let slc_max = |m: &HashMap<String, f64>| get(m, "lampgw_poll_cycle_seconds_max{class=\"slc\"}");
    let mut cycle: Vec<f64> = samples.iter().skip(1).map(|(_, m)| slc_max(m)).collect();
    cycle.sort_by(f64::total_cmp);
    // The longest stretch between two reads of /metrics with no new Modbus read.
    let mut longest_gap = 0.0f64;
    let mut last_change = 0.0;
    for w in samples.windows(2) {
        if reads(&w[1].1) > reads(&w[0].1) {
            last_change = w[1].0;
        } else {
            longest_gap = longest_gap.max(w[1].0 - last_change);
        }
    }
    scrape_ms.sort_by(f64::total_cmp);
    let mut v = json!({
        "window_s": round(secs, 1),
        "full_cycles": get(m1, "lampgw_full_poll_cycles_total") - get(&m0, "lampgw_full_poll_cycles_total"),
        "slc_cycles_per_endpoint": round((get(m1, "lampgw_poll_cycles_total{class=\"slc\"}")
            - get(&m0, "lampgw_poll_cycles_total{class=\"slc\"}")) / args.endpoints as f64, 2),
        "slc_cycle_max_s": cycle.last().map(|x| round(*x, 3)),
        "slc_cycle_median_s": quantile(&cycle, 0.5).map(|x| round(x, 3)),
        "modbus_reads_per_s": round((reads(m1) - reads(&m0)) / secs, 0),
        "modbus_reads_failed": get(m1, "lampgw_modbus_reads_total{result=\"failed\"}")
            - get(&m0, "lampgw_modbus_reads_total{result=\"failed\"}"),
        "longest_no_read_s": round(longest_gap, 1),
        "gateway_cpu_percent": round((cpu1 - cpu0) / secs * 100.0, 1),
        "metrics_scrape_ms_p50": quantile(&scrape_ms, 0.5).map(|x| round(x, 1)),
        "metrics_scrape_ms_max": scrape_ms.last().map(|x| round(*x, 1)),
    });
    if let Some(tasks) = load {
        let mut tally = Tally::default();
        for t in tasks {
            tally.merge(load_rt.block_on(t)?);
        }
        let total: u64 = tally.by_status.values().sum();
        let mut all: Vec<f64> = tally
            .latency_us
            .values()
            .flatten()
            .map(|us| *us as f64 / 1e3)
            .collect();
        all.sort_by(f64::total_cmp);
        let mut by_status = serde_json::Map::new();
        for (status, lat) in &tally.latency_us {
            let mut l: Vec<f64> = lat.iter().map(|us| *us as f64 / 1e3).collect();
            l.sort_by(f64::total_cmp);
            by_status.insert(
                status.to_string(),
                json!({
                    "count": tally.by_status[status],
                    "latency_ms_p50": quantile(&l, 0.5).map(|x| round(x, 2)),
                    "latency_ms_p99": quantile(&l, 0.99).map(|x| round(x, 2)),
                    "latency_ms_max": l.last().map(|x| round(*x, 2)),
                }),
            );
        }
        let n503 = tally.by_status.get(&503).copied().unwrap_or(0);
        v["api_responses"] = json!(total);
        v["api_requests_per_s"] = json!(round(total as f64 / secs, 0));
        v["api_by_status"] = Value::Object(by_status);
        v["api_503_with_retry_after"] = json!(tally.retry_after);
        v["api_status_503_share"] = json!(round(n503 as f64 / total.max(1) as f64, 3));
        v["api_errors"] = json!(tally.errors);
        v["api_latency_ms_p50"] = json!(quantile(&all, 0.5).map(|x| round(x, 2)));
        v["api_latency_ms_p99"] = json!(quantile(&all, 0.99).map(|x| round(x, 2)));
        v["api_latency_ms_max"] = json!(all.last().map(|x| round(*x, 2)));
    }
    Ok(v)
}

/// One read of /metrics: how long it took (s) and what it said.
fn scrape(gw: &Gateway) -> anyhow::Result<(f64, HashMap<String, f64>)> {
    let t = Instant::now();
    let (status, body) = http_get(gw.api, "/metrics")?;
    anyhow::ensure!(status == 200, "/metrics answered {status}");
    Ok((t.elapsed().as_secs_f64(), parse_metrics(&body)))
}
