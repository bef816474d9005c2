//! The limit: a bare tokio-modbus client, one connection per endpoint, reading
//! the gateway's own poll plan back to back — no decoding, no state, no sinks.
//! It runs as a child process of the bench (`lamp-bench raw-client`) so its
//! CPU and memory are measured the way the gateway's are.

use crate::procfs;
use crate::stats::Mark;
use anyhow::Context as _;
use lamp_gateway::inventory::Framing;
use lamp_gateway::topology::{EndpointSpec, Read};
use lamp_profile::Table;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::Slave;

#[derive(Debug, Serialize, Deserialize)]
pub struct RawMark {
    pub at: f64,
    pub cycles: u64,
    pub cpu: f64,
    pub reads: u64,
    pub device_samples: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RawReport {
    pub marks: Vec<RawMark>,
    pub reads_failed: u64,
    pub peak_rss_mib: Option<f64>,
}

impl RawReport {
    pub fn marks(&self) -> Vec<Mark> {
        self.marks
            .iter()
            .map(|m| Mark {
                at: m.at,
                cycles: m.cycles,
                cpu: m.cpu,
                reads: m.reads,
                device_samples: m.device_samples,
            })
            .collect()
    }
}

struct Shared {
    endpoints: usize,
    cycles: u64,
    started: Instant,
    /// Endpoints that completed cycle k (k = 0 is the warm-up cycle).
    done: Vec<AtomicU64>,
    reads_ok: AtomicU64,
    reads_failed: AtomicU64,
    devices_read: AtomicU64,
    marks: Mutex<Vec<RawMark>>,
    stop: AtomicBool,
    finished: tokio::sync::Notify,
}

impl Shared {
    fn cycle_done(&self, k: u64) {
        let Some(slot) = self.done.get(k as usize) else {
            return;
        };
        if slot.fetch_add(1, Relaxed) + 1 == self.endpoints as u64 {
            let mark = RawMark {
                at: self.started.elapsed().as_secs_f64(),
                cycles: k,
                cpu: procfs::self_cpu_seconds().unwrap_or(f64::NAN),
                reads: self.reads_ok.load(Relaxed),
                device_samples: self.devices_read.load(Relaxed),
            };
            self.marks.lock().expect("marks").push(mark);
            if k == self.cycles {
                self.stop.store(true, Relaxed);
                self.finished.notify_one();
            }
        }
    }
}

/// Loads the settings file the gateway gets and runs `cycles` measured poll
/// cycles after one warm-up cycle.
pub async fn run(config: &Path, cycles: u64) -> anyhow::Result<RawReport> {
    let settings = lamp_gateway::settings::Settings::load(Some(config))
        .with_context(|| format!("loading {}", config.display()))?;
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
    let endpoints: Vec<Arc<EndpointSpec>> = loaded
        .topology
        .endpoints
        .into_iter()
        .filter(|e| !e.reads.is_empty())
        .map(Arc::new)
        .collect();
    let shared = Arc::new(Shared {
        endpoints: endpoints.len(),
        cycles,
        started: Instant::now(),
        done: (0..=cycles).map(|_| AtomicU64::new(0)).collect(),
        reads_ok: AtomicU64::new(0),
        reads_failed: AtomicU64::new(0),
        devices_read: AtomicU64::new(0),
        marks: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        finished: tokio::sync::Notify::new(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for ep in endpoints {
        tasks.spawn(poll_endpoint(ep, shared.clone()));
    }
    let finished = shared.finished.notified();
    tokio::select! {
        () = finished => {}
        r = async { while let Some(r) = tasks.join_next().await { r??; } anyhow::Ok(()) } => {
            r?;
        }
    }
    shared.stop.store(true, Relaxed);
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let marks = std::mem::take(&mut *shared.marks.lock().expect("marks"));
    Ok(RawReport {
        marks,
        reads_failed: shared.reads_failed.load(Relaxed),
        peak_rss_mib: procfs::self_peak_rss_mib(),
    })
}

async fn poll_endpoint(ep: Arc<EndpointSpec>, shared: Arc<Shared>) -> anyhow::Result<()> {
    let stream = TcpStream::connect(&ep.address)
        .await
        .with_context(|| format!("raw client: connecting to {}", ep.address))?;
    stream.set_nodelay(true)?;
    let mut ctx = match ep.framing {
        Framing::Tcp => tokio_modbus::client::tcp::attach_slave(stream, Slave(1)),
        Framing::Rtu => tokio_modbus::client::rtu::attach_slave(stream, Slave(1)),
    };
    // Without decoding there is no per-device result: a cycle with no failed
    // read counts every device of the endpoint as sampled.
    let devices_per_cycle = ep.devices.len() as u64;
    let mut k = 0u64;
    while !shared.stop.load(Relaxed) {
        let mut failed = 0u64;
        for read in &ep.reads {
            if read_once(&mut ctx, read).await? {
                shared.reads_ok.fetch_add(1, Relaxed);
            } else {
                failed += 1;
                shared.reads_failed.fetch_add(1, Relaxed);
            }
        }
        if failed == 0 {
            shared.devices_read.fetch_add(devices_per_cycle, Relaxed);
        }
        shared.cycle_done(k);
        k += 1;
    }
    Ok(())
}

/// One read; `Ok(false)` for a Modbus exception. Transport errors and
/// timeouts end the run: the limit is measured on a healthy farm.
async fn read_once(ctx: &mut Context, read: &Read) -> anyhow::Result<bool> {
    ctx.set_slave(Slave(read.unit));
    let (start, count) = (read.start, read.count);
    let call = async {
        match read.table {
            Table::Coil => ctx
                .read_coils(start, count)
                .await
                .map(|r| r.map(|v| v.len())),
            Table::DiscreteInput => ctx
                .read_discrete_inputs(start, count)
                .await
                .map(|r| r.map(|v| v.len())),
            Table::Holding => ctx
                .read_holding_registers(start, count)
                .await
                .map(|r| r.map(|v| v.len())),
            Table::Input => ctx
                .read_input_registers(start, count)
                .await
                .map(|r| r.map(|v| v.len())),
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Ok(Ok(Ok(_))) => Ok(true),
        Ok(Ok(Err(_exception))) => Ok(false),
        Ok(Err(e)) => Err(anyhow::anyhow!("raw client: transport error: {e}")),
        Err(_) => Err(anyhow::anyhow!("raw client: no answer within 10 s")),
    }
}
