//! Polling: one task per endpoint, owning its Modbus connection and running
//! the endpoint's poll plan at the configured per-class intervals.

mod cadence;
mod config;
mod connection;
mod link;
#[cfg(test)]
mod spec;
mod worker;
mod write;

pub use config::{PollSettings, PollerConfig};

use crate::control::WriteJob;
use crate::state::Report;
use crate::topology::Topology;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Starts one poller per endpoint. They stop when `cancel` fires; the report
/// channel closes when the last one has stopped.
/// `writes` holds each endpoint's command queue, in endpoint order.
pub fn spawn_all(
    topology: &Topology,
    cfg: PollerConfig,
    reports: mpsc::Sender<Report>,
    writes: Vec<mpsc::Receiver<WriteJob>>,
    cancel: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for (i, (ep, writes)) in topology.endpoints.iter().zip(writes).enumerate() {
        let ep = Arc::new(ep.clone());
        // Everything a poller logs names its endpoint.
        let span = tracing::info_span!("poller", endpoint = %ep.address);
        set.spawn(
            worker::run(
                i as u32,
                ep,
                cfg.clone(),
                reports.clone(),
                writes,
                cancel.clone(),
            )
            .instrument(span),
        );
    }
    set
}
