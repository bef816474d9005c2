//! 100,000 SLCs on 1,000 endpoints: start-up and one full sweep of reads.
//! Ignored by default; run it in release mode and read what it prints:
//!
//! ```text
//! cargo test --release -p lamp-sim --test scale -- --ignored --nocapture
//! ```
//!
//! With `LAMP_SIM_BASE_PORT=P` it sweeps an external `lamp-sim --endpoints
//! 1000 --slcs-per-endpoint 100 --base-port P` instead, so the farm's own
//! RSS can be read from /proc while it serves.

mod common;

use common::within;
use lamp_sim::{SimConfig, Simulator};
use std::net::SocketAddr;
use std::time::Instant;
use tokio_modbus::prelude::*;

const ENDPOINTS: usize = 1000;
const SLCS: usize = 100;

fn rss_kb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS")).map(String::from))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "scale check, run by hand in release mode"]
async fn hundred_thousand_slcs() {
    let external = std::env::var("LAMP_SIM_BASE_PORT").ok();
    let t = Instant::now();
    let (sim, addrs): (Option<Simulator>, Vec<SocketAddr>) = match &external {
        Some(p) => {
            let base: u16 = p.parse().unwrap();
            let addrs = (0..ENDPOINTS)
                .map(|i| SocketAddr::from(([127, 0, 0, 1], base + i as u16)))
                .collect();
            (None, addrs)
        }
        None => {
            let sim = Simulator::start(SimConfig {
                endpoints: ENDPOINTS,
                slcs_per_endpoint: SLCS,
                ..SimConfig::default()
            })
            .await
            .unwrap();
            let addrs = sim.endpoint_addrs();
            (Some(sim), addrs)
        }
    };
    println!("started in {:?}, {}", t.elapsed(), rss_kb());

    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for addr in addrs {
        tasks.spawn(async move {
            let mut ctx = within(tcp::connect_slave(addr, Slave(2))).await.unwrap();
            for j in 0..SLCS {
                ctx.set_slave(Slave(j as u8 + 2));
                within(ctx.read_holding_registers(0, 11))
                    .await
                    .unwrap()
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let dt = t.elapsed();
    println!(
        "swept {} SLCs over {ENDPOINTS} connections in {dt:?} ({:.0} reads/s), {}",
        ENDPOINTS * SLCS,
        (ENDPOINTS * SLCS) as f64 / dt.as_secs_f64(),
        rss_kb()
    );
    if let Some(sim) = sim {
        assert_eq!(sim.request_count(), (ENDPOINTS * SLCS) as u64);
        sim.shutdown().await;
    }
}
