//! The poller of one endpoint.

use super::cadence::{next_due, Backoff};
use super::config::PollerConfig;
use super::connection::{classify, connect};
use crate::control::{FailCause, WriteJob};
use crate::state::{FailReason, PollOutcome, Reading, Report};
use crate::topology::{EndpointSpec, PollClass, Read};
use chrono::Utc;
use lamp_profile::{decode, DeviceKind, Quantity, Table};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_modbus::client::{Client, Context, Reader};
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::Slave;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub(super) struct Endpoint {
    pub(super) index: u32,
    pub(super) spec: Arc<EndpointSpec>,
    pub(super) cfg: PollerConfig,
    pub(super) conn: Option<Context>,
    pub(super) writes: mpsc::Receiver<WriteJob>,
    /// To the live state: poll outcomes, and command writes confirmed.
    pub(super) reports: mpsc::Sender<Report>,
}

pub(super) async fn run(
    index: u32,
    spec: Arc<EndpointSpec>,
    cfg: PollerConfig,
    reports: mpsc::Sender<Report>,
    writes: mpsc::Receiver<WriteJob>,
    cancel: CancellationToken,
) {
    let classes: Vec<(PollClass, Duration)> = [
        (PollClass::Rtu, cfg.rtu_interval),
        (PollClass::Slc, cfg.slc_interval),
    ]
    .into_iter()
    .filter(|(c, _)| spec.reads.iter().any(|r| r.class == *c))
    .collect();
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    let mut ep = Endpoint {
        index,
        spec,
        cfg,
        conn: None,
        writes,
        reports,
    };
    let mut due: Vec<Instant> = vec![Instant::now(); classes.len()];
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    // After a failed connection nothing is tried before this; kept apart from
    // the per-class due times so the class that waited longest goes next.
    let mut not_before = Instant::now();
    loop {
        let next = due.iter().enumerate().min_by_key(|(_, t)| **t);
        let (slot, when) = next.map_or((usize::MAX, far), |(s, t)| (s, *t));
        tokio::select! {
            () = tokio::time::sleep_until(when.max(not_before)) => {}
            // Writes jump the poll queue: they are served as soon as they come.
            job = ep.writes.recv() => {
                match job {
                    Some(job) => ep.execute(job).await,
                    None => break,
                }
                continue;
            }
            () = cancel.cancelled() => break,
        }
        let Some(&(class, interval)) = classes.get(slot) else {
            continue;
        };
        let outcome = tokio::select! {
            o = ep.poll(class).instrument(tracing::debug_span!("poll_cycle", class = ?class)) => o,
            () = cancel.cancelled() => break,
        };
        let now = Instant::now();
        due[slot] = next_due(when, interval, now);
        if outcome.connected {
            backoff.reset();
        } else {
            not_before = now + backoff.next();
        }
        // The live state is in memory and always drains this channel; waiting
        // here is backpressure, not loss.
        if ep.reports.send(Report::Poll(outcome)).await.is_err() {
            break;
        }
    }
    if let Some(mut conn) = ep.conn.take() {
        let _ = conn.disconnect().await;
    }
    ep.writes.close();
    while let Ok(job) = ep.writes.try_recv() {
        job.cell.finish(job.target, Err(FailCause::ShuttingDown));
    }
}

impl Endpoint {
    pub(super) async fn ensure_connected(&mut self) -> Result<&mut Context, FailReason> {
        if self.conn.is_none() {
            let ctx = connect(
                &self.spec.address,
                self.spec.framing,
                self.cfg.connect_timeout,
            )
            .await?;
            tracing::debug!(endpoint = %self.spec.address, "connected");
            self.conn = Some(ctx);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    pub(super) async fn read(&mut self, read: &Read) -> Result<Vec<u16>, FailReason> {
        let limit = self.cfg.request_timeout;
        let ctx = self.ensure_connected().await?;
        ctx.set_slave(Slave(read.unit));
        let (start, count) = (read.start, read.count);
        let bits = |v: Vec<bool>| v.into_iter().map(u16::from).collect::<Vec<u16>>();
        let call = async {
            match read.table {
                Table::Coil => ctx.read_coils(start, count).await.map(|r| r.map(bits)),
                Table::DiscreteInput => ctx
                    .read_discrete_inputs(start, count)
                    .await
                    .map(|r| r.map(bits)),
                Table::Holding => ctx.read_holding_registers(start, count).await,
                Table::Input => ctx.read_input_registers(start, count).await,
            }
        };
        let failure = match tokio::time::timeout(limit, call).await {
            Ok(Ok(Ok(words))) if words.len() >= usize::from(count) => return Ok(words),
            Ok(Ok(Ok(words))) => FailReason::Protocol {
                detail: format!("asked for {count} values, got {}", words.len()),
            },
            // The device answered: the connection is fine.
            Ok(Ok(Err(code))) => return Err(FailReason::Exception { code: code.into() }),
            Ok(Err(e)) => classify(e),
            Err(_) => FailReason::Timeout,
        };
        // A late or garbled answer would be taken for the answer to the next
        // request (tokio-modbus #324): start over on a fresh connection.
        self.conn = None;
        Err(failure)
    }

    /// Runs every read of one class once and reports each device's result.
    async fn poll(&mut self, class: PollClass) -> PollOutcome {
        let started = Instant::now();
        let at = Utc::now();
        let spec = self.spec.clone();
        let mut values: Vec<Vec<(Quantity, f64)>> = vec![Vec::new(); spec.devices.len()];
        let mut failed: Vec<Option<FailReason>> = vec![None; spec.devices.len()];
        let (mut reads_ok, mut reads_failed) = (0u32, 0u32);
        // One fresh connection per cycle after a transport failure: enough to
        // ride over a dropped socket, without letting a dead endpoint cost
        // a timeout per read.
        let mut reconnects_left = 1u32;
        let mut gave_up: Option<FailReason> = None;
        for read in spec.reads.iter().filter(|r| r.class == class) {
            while let Ok(job) = self.writes.try_recv() {
                self.execute(job).await;
            }
            let result = match &gave_up {
                Some(reason) => Err(reason.clone()),
                None => self.read(read).await,
            };
            match result {
                Ok(words) => {
                    reads_ok += 1;
                    for part in &read.parts {
                        let dev = &spec.devices[part.device as usize];
                        let field = &dev.profile.fields[usize::from(part.field)];
                        let at = usize::from(part.offset);
                        let v = decode(field, &words[at..at + usize::from(field.width())]);
                        let slot = &mut values[part.device as usize];
                        if slot.capacity() == 0 {
                            slot.reserve_exact(dev.profile.fields.len());
                        }
                        slot.push((field.quantity, v));
                    }
                }
                Err(reason) => {
                    reads_failed += 1;
                    if self.conn.is_none() && gave_up.is_none() {
                        if reconnects_left == 0 || matches!(reason, FailReason::Connect { .. }) {
                            gave_up = Some(reason.clone());
                        }
                        reconnects_left = reconnects_left.saturating_sub(1);
                    }
                    for part in &read.parts {
                        failed[part.device as usize].get_or_insert_with(|| reason.clone());
                    }
                }
            }
        }
        let results = spec
            .devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.class() == class)
            .map(|(i, d)| {
                let result = match failed[i].take() {
                    Some(reason) => Err(reason),
                    None => {
                        let v = &values[i];
                        let silent = v.iter().any(|(q, x)| *q == Quantity::CommOk && *x == 0.0);
                        match d.profile.kind {
                            _ if silent => Err(FailReason::NodeSilent),
                            DeviceKind::Slc => Ok(Reading::slc(v)),
                            DeviceKind::Rtu => Ok(Reading::rtu(v, d.profile.circuits)),
                        }
                    }
                };
                (d.key, result)
            })
            .collect();
        PollOutcome {
            endpoint: self.index,
            class,
            at,
            connected: self.conn.is_some(),
            elapsed: started.elapsed(),
            reads_ok,
            reads_failed,
            results,
        }
    }
}
