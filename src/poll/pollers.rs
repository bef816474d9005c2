//! Every endpoint's poller, and how a reload replaces them: a poller whose
//! endpoint keeps the same link and poll plan hands its open link and its
//! due times to its successor (it polls on as if nothing happened); one
//! whose endpoint changed stops and a fresh one starts; one whose endpoint
//! is gone stops; a new endpoint's starts at once.
//!
//! In cluster mode a [`Gate`] says which dialled endpoints this instance
//! may poll now (it holds their leases): the others are parked — no
//! poller, their command queue answered `not_held` — and
//! [`Pollers::sync`] starts and parks pollers as the gate changes. A
//! poller holds its [`Permit`] while it runs and stops at once, mid-cycle,
//! when the permit's `stop` fires, so that the gate learns when polling has
//! really stopped (the permit's guard dropped) before it gives the lease
//! away. A serial line or a dial-in DTU reaches one machine only: those are
//! never gated.

use super::config::PollerConfig;
use super::worker::{self, Exit, Handover, Lifecycle};
use crate::control::{FailCause, WriteJob};
use crate::inventory::{Inventory, Link};
use crate::state::Report;
use crate::topology::{DeviceKey, EndpointSpec, Topology};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

type Ended = (String, Exit);

/// Cluster mode: which endpoints this instance may poll now.
pub trait Gate: Send + Sync + std::fmt::Debug {
    /// Leave to poll `endpoint` (a `host:port` address), or `None` while
    /// this instance does not hold its lease.
    fn permit(&self, endpoint: &str) -> Option<Permit>;
}

/// Leave to poll one endpoint. Its poller stops, mid-cycle, when `stop`
/// fires, and holds `guard` until it has ended: the gate, holding the
/// receiving end, learns that nobody polls the endpoint here any more when
/// every clone of the guard has gone (its `recv` gives `None`).
#[derive(Debug, Clone)]
pub struct Permit {
    pub stop: CancellationToken,
    pub guard: mpsc::Sender<()>,
}

/// The running pollers, one per endpoint, by endpoint address.
#[derive(Debug)]
pub struct Pollers {
    cfg: PollerConfig,
    cancel: CancellationToken,
    tasks: JoinSet<Ended>,
    running: HashMap<String, Running>,
    /// Cluster mode: the leases this instance holds.
    gate: Option<Arc<dyn Gate>>,
    /// Endpoints the gate does not let this instance poll now.
    parked: HashMap<String, Parked>,
    /// Where a poller started by `sync` reports; dropped at `join` so the
    /// report channel closes after the last poller.
    reports: Option<mpsc::Sender<Report>>,
}

#[derive(Debug)]
struct Running {
    index: u32,
    retire: CancellationToken,
    /// The permit's `stop`, in cluster mode.
    stop: Option<CancellationToken>,
    spec: Arc<EndpointSpec>,
    /// The ids of its devices, in the spec's order (positions change with
    /// the inventory, ids do not).
    ids: Vec<String>,
}

/// An endpoint not polled here: its command queue is answered by a task
/// that refuses each command (`not_held`) until the endpoint is polled
/// here again, then hands the queue back.
#[derive(Debug)]
struct Parked {
    index: u32,
    spec: Arc<EndpointSpec>,
    ids: Vec<String>,
    wake: CancellationToken,
    refuser: JoinHandle<mpsc::Receiver<WriteJob>>,
}

/// Refuses every command queued for a parked endpoint until `wake` (handing
/// the queue back) or the gateway's stop (failing what is left).
async fn refuse(
    mut writes: mpsc::Receiver<WriteJob>,
    wake: CancellationToken,
    cancel: CancellationToken,
) -> mpsc::Receiver<WriteJob> {
    loop {
        tokio::select! {
            biased;
            () = wake.cancelled() => return writes,
            () = cancel.cancelled() => break,
            job = writes.recv() => match job {
                Some(job) => job.cell.finish(job.target, Err(FailCause::NotHeld)),
                None => return writes,
            },
        }
    }
    writes.close();
    while let Ok(job) = writes.try_recv() {
        job.cell.finish(job.target, Err(FailCause::ShuttingDown));
    }
    writes
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
    ///
    /// With a `gate` (cluster mode), a dialled endpoint is polled only while
    /// the gate gives a permit for it; call [`Pollers::sync`] when it changes.
    pub fn start(
        topology: &Topology,
        inventory: &Inventory,
        cfg: PollerConfig,
        reports: mpsc::Sender<Report>,
        writes: Vec<mpsc::Receiver<WriteJob>>,
        cancel: CancellationToken,
        gate: Option<Arc<dyn Gate>>,
    ) -> Pollers {
        let mut p = Pollers {
            cfg,
            cancel,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            gate,
            parked: HashMap::new(),
            reports: Some(reports.clone()),
        };
        for (i, (ep, w)) in topology.endpoints.iter().zip(writes).enumerate() {
            p.spawn(i as u32, ep, inventory, reports.clone(), w, None);
        }
        p
    }

    /// The endpoints polled here now, by address (cluster mode: the dialled
    /// ones whose lease this instance holds, and every other one).
    pub fn polled(&self) -> Vec<String> {
        let mut list: Vec<String> = self.running.keys().cloned().collect();
        list.sort();
        list
    }

    /// Follows the gate: parks every endpoint whose permit was withdrawn
    /// (once its poller has ended) and starts a poller for every parked one
    /// the gate now permits. Returns the endpoints started and parked.
    pub async fn sync(&mut self) -> (Vec<String>, Vec<String>) {
        let (mut started, mut parked) = (Vec::new(), Vec::new());
        if self.cancel.is_cancelled() {
            return (started, parked);
        }
        // Pollers told to stop stop at once (mid-cycle): wait for them.
        while self
            .running
            .values()
            .any(|r| r.stop.as_ref().is_some_and(|s| s.is_cancelled()))
        {
            let Some(ended) = self.tasks.join_next().await else {
                break;
            };
            let Ok((address, exit)) = ended else {
                continue;
            };
            let Some(r) = self.running.remove(&address) else {
                continue;
            };
            if let Exit::Released(writes) = exit {
                // After its last outcome, in the same channel: the live
                // state forgets what it polled (another instance polls it).
                if let Some(reports) = &self.reports {
                    let devices = r.spec.devices.iter().map(|d| d.key).collect();
                    let _ = reports
                        .send(Report::Released {
                            endpoint: r.index,
                            devices,
                        })
                        .await;
                }
                self.park(r.index, r.spec, r.ids, writes);
                parked.push(address);
            }
        }
        let Some(gate) = self.gate.clone() else {
            return (started, parked);
        };
        let permitted: Vec<String> = self
            .parked
            .keys()
            .filter(|a| gate.permit(a).is_some())
            .cloned()
            .collect();
        for address in permitted {
            let Some(p) = self.parked.remove(&address) else {
                continue;
            };
            p.wake.cancel();
            let Ok(writes) = p.refuser.await else {
                continue;
            };
            let Some(reports) = self.reports.clone() else {
                continue;
            };
            let spec = (*p.spec).clone();
            self.spawn_with(p.index, &spec, p.ids, reports, writes, None);
            started.push(address);
        }
        (started, parked)
    }

    fn park(
        &mut self,
        index: u32,
        spec: Arc<EndpointSpec>,
        ids: Vec<String>,
        writes: mpsc::Receiver<WriteJob>,
    ) {
        let wake = CancellationToken::new();
        let refuser = tokio::spawn(refuse(writes, wake.clone(), self.cancel.clone()));
        self.parked.insert(
            spec.address.clone(),
            Parked {
                index,
                spec,
                ids,
                wake,
                refuser,
            },
        );
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
        let ids = device_ids(ep, inventory);
        self.spawn_with(index, ep, ids, reports, writes, resume);
    }

    /// Starts the endpoint's poller, or parks it when the gate does not
    /// permit it.
    fn spawn_with(
        &mut self,
        index: u32,
        ep: &EndpointSpec,
        ids: Vec<String>,
        reports: mpsc::Sender<Report>,
        writes: mpsc::Receiver<WriteJob>,
        resume: Option<Box<Handover>>,
    ) {
        let spec = Arc::new(ep.clone());
        let permit = match (&self.gate, &spec.link) {
            (Some(gate), Link::Tcp { .. }) => match gate.permit(&spec.address) {
                Some(p) => Some(p),
                None => {
                    // A handed-over link closes here: another instance
                    // may poll the endpoint.
                    drop(resume);
                    self.park(index, spec, ids, writes);
                    return;
                }
            },
            _ => None,
        };
        let retire = CancellationToken::new();
        let stop = permit.as_ref().map(|p| p.stop.clone());
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
                release: stop.clone().unwrap_or_default(),
                resume,
            },
        );
        let name = address.clone();
        self.tasks.spawn(
            async move {
                let exit = task.await;
                // Held until the poller has ended: then the gate knows.
                drop(permit);
                (name, exit)
            }
            .instrument(span),
        );
        self.running.insert(
            address,
            Running {
                index,
                retire,
                stop,
                ids,
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
        let mut old = std::mem::take(&mut self.running);
        for r in old.values() {
            r.retire.cancel();
        }
        self.reports = Some(reports.clone());
        // A parked endpoint's old queue goes with the old generation (its
        // refuser ends at the wake and the queue is dropped); the endpoint
        // starts or parks again below as an old one.
        let mut ends: Vec<(String, Option<Box<Handover>>)> = Vec::new();
        for (address, p) in std::mem::take(&mut self.parked) {
            p.wake.cancel();
            if let Ok(mut writes) = p.refuser.await {
                writes.close();
                while let Ok(job) = writes.try_recv() {
                    job.cell.finish(job.target, Err(FailCause::NotHeld));
                }
            }
            // Parked ones have no poller to wait for: done at once.
            ends.push((address.clone(), None));
            old.insert(
                address,
                Running {
                    index: p.index,
                    retire: CancellationToken::new(),
                    stop: None,
                    spec: p.spec,
                    ids: p.ids,
                },
            );
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
        loop {
            let (address, handover) = match ends.pop() {
                Some(end) => end,
                None => match old_tasks.join_next().await {
                    Some(Ok((address, Exit::Retired(h)))) => (address, Some(h)),
                    Some(Ok((address, _))) => (address, None),
                    Some(Err(_)) => continue,
                    None => break,
                },
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

    /// Waits until every poller has stopped (after `cancel`), and every
    /// parked endpoint's refuser with it.
    pub async fn join(&mut self) {
        self.reports = None;
        while self.tasks.join_next().await.is_some() {}
        self.running.clear();
        for (_, p) in self.parked.drain() {
            let _ = p.refuser.await;
        }
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
