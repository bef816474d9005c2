//! Polling: one task per endpoint, owning its Modbus connection and running
//! the endpoint's poll plan at the configured per-class intervals.

mod connection;
mod worker;

pub use worker::PollerConfig;

use crate::state::PollOutcome;
use crate::topology::Topology;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Starts one poller per endpoint. They stop when `cancel` fires; the outcome
/// channel closes when the last one has stopped.
pub fn spawn_all(
    topology: &Topology,
    cfg: PollerConfig,
    outcomes: mpsc::Sender<PollOutcome>,
    cancel: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for (i, ep) in topology.endpoints.iter().enumerate() {
        let ep = Arc::new(ep.clone());
        set.spawn(worker::run(
            i as u32,
            ep,
            cfg.clone(),
            outcomes.clone(),
            cancel.clone(),
        ));
    }
    set
}
