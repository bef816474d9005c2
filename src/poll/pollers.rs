//! Every endpoint's poller, and how a reload replaces them: a poller whose
//! endpoint keeps the same link and poll plan hands its open link and its
//! due times to its successor (it polls on as if nothing happened); one
//! whose endpoint changed stops and a fresh one starts; one whose endpoint
//! is gone stops; a new endpoint's starts at once.

use super::config::PollerConfig;
use super::worker::{self, Handover, Lifecycle};
use crate::control::WriteJob;
use crate::inventory::Inventory;
use crate::state::Report;
use crate::topology::{DeviceKey, EndpointSpec, Topology};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

type Ended = (String, Option<Box<Handover>>);

/// The running pollers, one per endpoint, by endpoint address.
#[derive(Debug)]
pub struct Pollers {
    cfg: PollerConfig,
    cancel: CancellationToken,
    tasks: JoinSet<Ended>,
    running: HashMap<String, Running>,
}

#[derive(Debug)]
struct Running {
    retire: CancellationToken,
    spec: Arc<EndpointSpec>,
    /// The ids of its devices, in the spec's order (positions change with
    /// the inventory, ids do not).
    ids: Vec<String>,
}

/// What a reload did to the pollers, by endpoint address.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PollerChanges {
    /// Polling on without a pause: same link, same devices, same plan.
    pub kept: Vec<String>,
    /// Stopped and started again: the link or the plan changed.
    pub restarted: Vec<String>,
    pub started: Vec<String>,
    pub stopped: Vec<String>,
}

impl Pollers {
    /// Starts one poller per endpoint. They stop when `cancel` fires; the
    /// report channel closes when the last one has stopped. `writes` holds
    /// each endpoint's command queue, in endpoint order.
    pub fn start(
        topology: &Topology,
        inventory: &Inventory,
        cfg: PollerConfig,
        reports: mpsc::Sender<Report>,
        writes: Vec<mpsc::Receiver<WriteJob>>,
        cancel: CancellationToken,
    ) -> Pollers {
        let mut p = Pollers {
            cfg,
            cancel,
            tasks: JoinSet::new(),
            running: HashMap::new(),
        };
        for (i, (ep, w)) in topology.endpoints.iter().zip(writes).enumerate() {
            p.spawn(i as u32, ep, inventory, reports.clone(), w, None);
        }
        p
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    fn spawn(
        &mut self,
        index: u32,
        ep: &EndpointSpec,
        inventory: &Inventory,
        reports: mpsc::Sender<Report>,
        writes: mpsc::Receiver<WriteJob>,
        resume: Option<Box<Handover>>,
    ) {
        let spec = Arc::new(ep.clone());
        let retire = CancellationToken::new();
        let address = spec.address.clone();
        // Everything a poller logs names its endpoint.
        let span = tracing::info_span!("poller", endpoint = %address);
        let task = worker::run(
            index,
            spec.clone(),
            self.cfg.clone(),
            reports,
            writes,
            self.cancel.clone(),
            Lifecycle {
                retire: retire.clone(),
                resume,
            },
        );
        let name = address.clone();
        self.tasks
            .spawn(async move { (name, task.await) }.instrument(span));
        self.running.insert(
            address,
            Running {
                retire,
                ids: device_ids(&spec, inventory),
                spec,
            },
        );
    }

    /// Replaces the pollers with those of `topology` (see the module doc).
    /// Returns once every old poller has ended, so that the old report
    /// channel closes when the caller drops its last sender of it. The old
    /// pollers finish the cycle under way and the command writes queued to
    /// them first.
    pub async fn replace(
        &mut self,
        topology: &Topology,
        inventory: &Inventory,
        reports: mpsc::Sender<Report>,
        writes: Vec<mpsc::Receiver<WriteJob>>,
    ) -> PollerChanges {
        let mut old_tasks = std::mem::take(&mut self.tasks);
        let old = std::mem::take(&mut self.running);
        for r in old.values() {
            r.retire.cancel();
        }
        let mut changes = PollerChanges::default();
        // Endpoint address → (index, spec, its write queue), for the pollers
        // that start when their predecessor has handed over.
        let mut waiting = HashMap::new();
        for (i, (ep, w)) in topology.endpoints.iter().zip(writes).enumerate() {
            if old.contains_key(&ep.address) {
                waiting.insert(ep.address.clone(), (i as u32, ep, w));
            } else {
                changes.started.push(ep.address.clone());
                self.spawn(i as u32, ep, inventory, reports.clone(), w, None);
            }
        }
        while let Some(ended) = old_tasks.join_next().await {
            let Ok((address, handover)) = ended else {
                continue;
            };
            let Some((i, ep, w)) = waiting.remove(&address) else {
                changes.stopped.push(address);
                // Its link closes with the handover.
                drop(handover);
                continue;
            };
            let before = &old[&address];
            let same = before.ids == device_ids(ep, inventory) && same_plan(&before.spec, ep);
            let resume = if same {
                changes.kept.push(address);
                handover
            } else {
                changes.restarted.push(address);
                None
            };
            self.spawn(i, ep, inventory, reports.clone(), w, resume);
        }
        // A poller that ended before the reload (a closed report channel) has
        // no handover: its endpoint starts afresh.
        for (address, (i, ep, w)) in waiting {
            changes.restarted.push(address);
            self.spawn(i, ep, inventory, reports.clone(), w, None);
        }
        for list in [
            &mut changes.kept,
            &mut changes.restarted,
            &mut changes.started,
            &mut changes.stopped,
        ] {
            list.sort();
        }
        changes
    }

    /// Waits until every poller has stopped (after `cancel`).
    pub async fn join(&mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.running.clear();
    }
}

/// The ids of an endpoint's devices, in its spec's order.
fn device_ids(spec: &EndpointSpec, inventory: &Inventory) -> Vec<String> {
    spec.devices
        .iter()
        .map(|d| {
            let kind = if matches!(d.key, DeviceKey::Lamp(_)) {
                "lamp"
            } else {
                "rtu"
            };
            format!("{kind}:{}", d.key.id(inventory).unwrap_or_default())
        })
        .collect()
}

/// The same link and the same reads of the same units, registers and
/// profiles: what a poller's link and timing were made for. (Device
/// positions may differ; their ids are compared apart.)
fn same_plan(a: &EndpointSpec, b: &EndpointSpec) -> bool {
    a.link == b.link
        && a.framing == b.framing
        && a.request_gap == b.request_gap
        && a.reads == b.reads
        && a.devices.len() == b.devices.len()
        && a.devices.iter().zip(&b.devices).all(|(x, y)| {
            x.unit == y.unit
                && x.block_index == y.block_index
                && (Arc::ptr_eq(&x.profile, &y.profile) || x.profile == y.profile)
        })
}
