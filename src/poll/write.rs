//! Carrying out a command target on the endpoint's own connection: write,
//! read back, compare — with bounded retries on transport failures only.

use super::connection::classify;
use super::worker::Endpoint;
use crate::control::{FailCause, WriteJob};
use crate::state::{ConfirmedWrite, FailReason, Report};
use crate::topology::{DeviceSlot, Read};
use lamp_profile::{decode, encode, Field, Quantity, Table, ValueType, WriteCodes};
use tokio_modbus::client::Writer;
use tokio_modbus::prelude::SlaveContext;
use tokio_modbus::Slave;

/// A failure the next attempt may cure (the connection), or one it cannot
/// (the device answered).
pub(super) enum Failure {
    Retry(FailCause),
    Final(FailCause),
}

impl Failure {
    pub(super) fn cause(&self) -> FailCause {
        match self {
            Failure::Retry(c) | Failure::Final(c) => c.clone(),
        }
    }
}

impl From<FailReason> for Failure {
    fn from(r: FailReason) -> Self {
        match r {
            FailReason::Exception { code } => Failure::Final(FailCause::Exception { code }),
            FailReason::Timeout => Failure::Retry(FailCause::Timeout),
            FailReason::NodeSilent | FailReason::DtuAbsent => Failure::Final(FailCause::Offline),
            // Writes do not wait out the poll's backoff or deferral.
            FailReason::Backoff | FailReason::Deferred => Failure::Retry(FailCause::Timeout),
            FailReason::Connect { detail }
            | FailReason::Transport { detail }
            | FailReason::Protocol { detail } => Failure::Retry(FailCause::Transport { detail }),
        }
    }
}

fn field(dev: &DeviceSlot, q: Quantity) -> Result<&Field, Failure> {
    dev.profile.field(q).ok_or_else(|| {
        Failure::Final(FailCause::Transport {
            detail: format!("profile `{}` maps no `{q}`", dev.profile.name),
        })
    })
}

/// The largest difference encoding may make to a value.
fn tolerance(f: &Field) -> f64 {
    match f.value_type {
        ValueType::F32 => 1e-3,
        _ => f.scale.abs() / 2.0 + 1e-9,
    }
}

impl Endpoint {
    pub(super) async fn execute(&mut self, job: WriteJob) {
        let dev = self.spec.devices[job.device as usize].clone();
        let mut last = FailCause::Timeout;
        for attempt in 1..=self.cfg.max_attempts {
            job.cell.attempt(job.target, attempt);
            let result = match self.write_all(&dev, &job.writes).await {
                Ok(()) => {
                    job.cell.written(job.target);
                    self.read_back(&dev, &job.writes).await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(readback) => {
                    if let Some(on) = job.commanded_on {
                        self.report_confirmed(dev.key, on).await;
                    }
                    job.cell.finish(job.target, Ok(readback));
                    return;
                }
                Err(Failure::Final(cause)) => {
                    job.cell.finish(job.target, Err(cause));
                    return;
                }
                Err(Failure::Retry(cause)) => last = cause,
            }
        }
        job.cell.finish(job.target, Err(last));
    }

    /// Hands the confirmed switch state to the live state and waits until it
    /// is applied, so that a command reported confirmed is already what the
    /// figures judge by. The state always drains its channel; if it has
    /// stopped (shutdown) there is nobody left to tell.
    async fn report_confirmed(&mut self, key: crate::topology::DeviceKey, on: bool) {
        let (applied, done) = tokio::sync::oneshot::channel();
        let write = ConfirmedWrite {
            key,
            commanded_on: on,
            applied,
        };
        if self.reports.send(Report::Write(write)).await.is_ok() {
            let _ = done.await;
        }
    }

    pub(super) async fn write_all(
        &mut self,
        dev: &DeviceSlot,
        writes: &[(Quantity, f64)],
    ) -> Result<(), Failure> {
        let limit = self.cfg.request_timeout;
        for &(q, value) in writes {
            let f = field(dev, q)?;
            let addr = dev.profile.absolute_address(f, dev.block_index) as u16;
            let words = encode(f, value);
            let ctx = self.ensure_connected().await.map_err(Failure::from)?;
            ctx.set_slave(Slave(dev.unit));
            let codes = dev.profile.write;
            let call = async {
                match (f.table, codes, words.as_slice()) {
                    (Table::Coil, WriteCodes::Single, _) => {
                        ctx.write_single_coil(addr, value != 0.0).await
                    }
                    (Table::Coil, WriteCodes::Multiple, _) => {
                        ctx.write_multiple_coils(addr, &[value != 0.0]).await
                    }
                    (_, WriteCodes::Single, [one]) => ctx.write_single_register(addr, *one).await,
                    _ => ctx.write_multiple_registers(addr, &words).await,
                }
            };
            let reason = match tokio::time::timeout(limit, call).await {
                Ok(Ok(Ok(()))) => continue,
                Ok(Ok(Err(code))) => {
                    return Err(Failure::Final(FailCause::Exception { code: code.into() }))
                }
                Ok(Err(e)) => classify(e),
                Err(_) => FailReason::Timeout,
            };
            // As for reads: a connection that cannot skip a lost answer is
            // opened afresh.
            self.after_failure(&reason);
            return Err(Failure::from(reason));
        }
        Ok(())
    }

    pub(super) async fn read_back(
        &mut self,
        dev: &DeviceSlot,
        writes: &[(Quantity, f64)],
    ) -> Result<Vec<(Quantity, f64)>, Failure> {
        let mut out = Vec::with_capacity(writes.len());
        for &(q, wrote) in writes {
            let f = field(dev, q)?;
            let read = Read {
                class: dev.class(),
                unit: dev.unit,
                table: f.table,
                start: dev.profile.absolute_address(f, dev.block_index) as u16,
                count: f.width(),
                parts: Vec::new(),
            };
            let words = self.read(&read).await.map_err(Failure::from)?;
            let got = decode(f, &words[..usize::from(f.width())]);
            if (got - wrote).abs() > tolerance(f) {
                return Err(Failure::Final(FailCause::Mismatch {
                    field: q.to_string(),
                    wrote,
                    read: got,
                }));
            }
            out.push((q, got));
        }
        Ok(out)
    }
}
