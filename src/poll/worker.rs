//! The poller of one endpoint: when each class is polled, what a due poll
//! that cannot be sent counts as, and the endpoint's one connection.

use super::cadence::{next_due, Backoff, UnitHealth};
use super::config::PollerConfig;
use super::connection::{classify, connect, Connection};
use crate::control::{FailCause, WriteJob};
use crate::dialin::Slot;
use crate::inventory::Link;
use crate::state::{FailReason, PollOutcome, Report};
use crate::topology::{EndpointSpec, PollClass, Read};
use chrono::Utc;
use lamp_profile::Table;
use std::collections::HashMap;
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
    pub(super) conn: Option<Connection>,
    pub(super) writes: mpsc::Receiver<WriteJob>,
    /// To the live state: poll outcomes, and command writes confirmed.
    pub(super) reports: mpsc::Sender<Report>,
    /// A dial-in endpoint's place in the DTU registry.
    pub(super) dtu: Option<Arc<Slot>>,
    /// Units that timed out while others answered, by unit id.
    pub(super) units: HashMap<u8, UnitHealth>,
    /// Per class: whether anything on the endpoint answered in its last
    /// cycle, and the unit group the next cycle starts from after a cycle
    /// that gave up (so the units behind two dead ones are reached).
    pub(super) last_answered: [bool; 2],
    pub(super) resume_at: [usize; 2],
    /// Per class: the read asked as the witness when a cycle of the other
    /// class gets no answer from its own units (`cycle.rs`): the read of
    /// this class answered last, or the next unit's after a witness that
    /// did not answer; `None`: the class's first unit.
    pub(super) witness: [Option<usize>; 2],
    /// When the last request of a Modbus TCP link ended (`request_gap`).
    pub(super) last_io: Option<Instant>,
    /// Why the endpoint failed last: the reason given for the polls not sent
    /// while it backs off (a lamp whose endpoint timed out shows `timeout`).
    pub(super) last_failure: Option<FailReason>,
}

/// How a poller starts and when it hands over: `retire` ends it between
/// cycles with its link and timing kept (a reload keeping the endpoint);
/// `release` ends it at once, mid-cycle, its write queue kept open for the
/// next poller (cluster mode: this instance's lease on the endpoint is
/// ending, and another instance may poll it soon); `resume` is what an
/// earlier poller of the same endpoint handed over.
#[derive(Default)]
pub(super) struct Lifecycle {
    pub(super) retire: CancellationToken,
    pub(super) release: CancellationToken,
    pub(super) resume: Option<Box<Handover>>,
}

/// How a poller ended.
pub(super) enum Exit {
    /// Cancelled, or its report channel closed: queued writes failed.
    Stopped,
    /// Retired between cycles: what its successor takes over.
    Retired(Box<Handover>),
    /// Released (`Lifecycle::release`): its link closed, its write queue
    /// handed back unclosed with what was queued in it.
    Released(mpsc::Receiver<WriteJob>),
}

/// What a retired poller passes to its successor so that polling goes on as
/// if nothing happened: the open link, each class's next due time, the
/// backoff, and what it learnt of its units.
pub(super) struct Handover {
    conn: Option<Connection>,
    due: Vec<Instant>,
    not_before: Instant,
    backoff: Backoff,
    units: HashMap<u8, UnitHealth>,
    last_answered: [bool; 2],
    resume_at: [usize; 2],
    witness: [Option<usize>; 2],
    last_io: Option<Instant>,
    last_failure: Option<FailReason>,
}

/// Polls until `cancel` (returns `Stopped`), `life.retire` (returns the
/// handover, after the queued command writes have been carried out) or
/// `life.release` (returns the write queue).
pub(super) async fn run(
    index: u32,
    spec: Arc<EndpointSpec>,
    cfg: PollerConfig,
    reports: mpsc::Sender<Report>,
    writes: mpsc::Receiver<WriteJob>,
    cancel: CancellationToken,
    life: Lifecycle,
) -> Exit {
    let classes: Vec<(PollClass, Duration)> = [
        (PollClass::Rtu, cfg.rtu_interval),
        (PollClass::Slc, cfg.slc_interval),
    ]
    .into_iter()
    .filter(|(c, _)| spec.reads.iter().any(|r| r.class == *c))
    .collect();
    let dial_in = matches!(spec.link, Link::DialIn { .. });
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    let mut ep = Endpoint::new(index, spec, cfg, writes, reports);
    let dtu = ep.dtu.clone();
    let mut due: Vec<Instant> = vec![Instant::now(); classes.len()];
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    // After the endpoint failed nothing is sent before this; kept apart from
    // the per-class due times so the class that waited longest goes next.
    let mut not_before = Instant::now();
    if let Some(h) = life.resume {
        let h = *h;
        // The same endpoint with the same plan: the classes are the same.
        if h.due.len() == due.len() {
            due = h.due;
        }
        not_before = h.not_before;
        backoff = h.backoff;
        ep.conn = h.conn;
        ep.units = h.units;
        ep.last_answered = h.last_answered;
        ep.resume_at = h.resume_at;
        ep.witness = h.witness;
        ep.last_io = h.last_io;
        ep.last_failure = h.last_failure;
    }
    let mut retired = false;
    loop {
        let next = due.iter().enumerate().min_by_key(|(_, t)| **t);
        let (slot, when) = next.map_or((usize::MAX, far), |(s, t)| (s, *t));
        let interval = classes.get(slot).map_or(Duration::ZERO, |c| c.1);
        // A due poll that cannot be sent is reported failed at its due time
        // (rule: offline within `offline_after` intervals of the last
        // success). Back to back polling (interval 0) has no due times to
        // miss: it waits the backoff out.
        let wake = if interval.is_zero() {
            when.max(not_before)
        } else {
            when
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            // Writes jump the poll queue: they are served as soon as they come.
            job = ep.writes.recv() => {
                match job {
                    Some(job) => ep.execute(job).await,
                    None => break,
                }
                continue;
            }
            // A DTU registered (first time, or again after a cell handover):
            // use it at once and poll what is due without waiting the backoff.
            conn = next_dtu(dtu.as_deref()) => {
                ep.adopt_dtu(conn);
                let now = Instant::now();
                not_before = now;
                backoff.reset();
                // Its devices have been failing as absent: read them now,
                // not at the next due time.
                for d in &mut due {
                    *d = (*d).min(now);
                }
                continue;
            }
            () = cancel.cancelled() => break,
            () = life.release.cancelled() => break,
            // Between cycles only: a cycle under way is finished first.
            () = life.retire.cancelled() => {
                retired = true;
                break;
            }
        }
        let Some(&(class, interval)) = classes.get(slot) else {
            continue;
        };
        let now = Instant::now();
        let not_sent = if now < not_before {
            Some(ep.last_failure.clone().unwrap_or(FailReason::Backoff))
        } else if dial_in && ep.conn.is_none() && !ep.take_waiting_dtu() {
            Some(FailReason::DtuAbsent)
        } else {
            None
        };
        let sent = not_sent.is_none();
        let outcome = match not_sent {
            Some(reason) => ep.not_sent(class, reason),
            None => tokio::select! {
                o = ep.poll(class, interval)
                    .instrument(tracing::debug_span!("poll_cycle", class = ?class)) => o,
                () = cancel.cancelled() => break,
                // Mid-cycle: the lease may run out before the cycle would end.
                () = life.release.cancelled() => break,
            },
        };
        let now = Instant::now();
        due[slot] = next_due(when, interval, now);
        if sent {
            if outcome.connected {
                backoff.reset();
                ep.last_failure = None;
            } else if !(dial_in && ep.conn.is_none()) {
                ep.last_failure = outcome.results.iter().find_map(|(_, r)| r.clone().err());
                // A DTU that dropped is waited for, not redialled.
                not_before = now + backoff.next();
            }
        }
        // The live state is in memory and always drains this channel; waiting
        // here is backpressure, not loss.
        if ep.reports.send(Report::Poll(outcome)).await.is_err() {
            break;
        }
    }
    if life.release.is_cancelled() && !cancel.is_cancelled() {
        if let Some(mut conn) = ep.conn.take() {
            let _ = conn.ctx.disconnect().await;
        }
        // Not closed: the commands queued wait for this endpoint's next
        // poller here, or are refused while another instance holds it.
        return Exit::Released(ep.writes);
    }
    ep.writes.close();
    if retired && !cancel.is_cancelled() {
        // Commands already queued here are carried out, not failed: their
        // callers were told they were accepted.
        while let Ok(job) = ep.writes.try_recv() {
            ep.execute(job).await;
        }
        return Exit::Retired(Box::new(Handover {
            conn: ep.conn.take(),
            due,
            not_before,
            backoff,
            units: std::mem::take(&mut ep.units),
            last_answered: ep.last_answered,
            resume_at: ep.resume_at,
            witness: ep.witness,
            last_io: ep.last_io,
            last_failure: ep.last_failure.take(),
        }));
    }
    if let Some(mut conn) = ep.conn.take() {
        let _ = conn.ctx.disconnect().await;
    }
    while let Ok(job) = ep.writes.try_recv() {
        job.cell.finish(job.target, Err(FailCause::ShuttingDown));
    }
    Exit::Stopped
}

/// The next DTU connection registered for this endpoint; never, for an
/// endpoint that is dialled.
async fn next_dtu(slot: Option<&Slot>) -> crate::dialin::DtuConn {
    match slot {
        Some(slot) => slot.next().await,
        None => std::future::pending().await,
    }
}

impl Endpoint {
    /// A poller with no link open yet; a dial-in endpoint finds its place
    /// in the DTU registry.
    pub(super) fn new(
        index: u32,
        spec: Arc<EndpointSpec>,
        cfg: PollerConfig,
        writes: mpsc::Receiver<WriteJob>,
        reports: mpsc::Sender<Report>,
    ) -> Endpoint {
        let dtu = match &spec.link {
            Link::DialIn { id } => cfg.dialin.as_ref().and_then(|r| r.slot(id)),
            _ => None,
        };
        Endpoint {
            index,
            spec,
            cfg,
            conn: None,
            writes,
            reports,
            dtu,
            units: HashMap::new(),
            last_answered: [false; 2],
            resume_at: [0; 2],
            witness: [None; 2],
            last_io: None,
            last_failure: None,
        }
    }

    /// Every device of `class` failed with `reason`, nothing sent.
    fn not_sent(&self, class: PollClass, reason: FailReason) -> PollOutcome {
        PollOutcome {
            endpoint: self.index,
            class,
            at: Utc::now(),
            connected: false,
            sent: false,
            elapsed: Duration::ZERO,
            reads_ok: 0,
            reads_failed: 0,
            results: self
                .spec
                .devices
                .iter()
                .filter(|d| d.class() == class)
                .map(|d| (d.key, Err(reason.clone())))
                .collect(),
        }
    }

    /// Switches to a DTU's new connection; the old one (if any) is dropped.
    pub(super) fn adopt_dtu(&mut self, dtu: crate::dialin::DtuConn) {
        tracing::info!(
            endpoint = %self.spec.address,
            peer = %dtu.peer,
            generation = dtu.generation,
            "DTU connected"
        );
        let heartbeat = self.cfg.dialin.as_ref().and_then(|r| r.heartbeat());
        self.conn = Some(super::connection::over_dtu(
            dtu,
            self.spec.framing,
            self.spec.request_gap,
            heartbeat,
        ));
    }

    /// Takes a DTU connection that registered while nobody was waiting.
    fn take_waiting_dtu(&mut self) -> bool {
        match self.dtu.as_ref().and_then(|s| s.try_next()) {
            Some(conn) => {
                self.adopt_dtu(conn);
                true
            }
            None => false,
        }
    }

    pub(super) async fn ensure_connected(&mut self) -> Result<&mut Context, FailReason> {
        // A DTU that registered while the link was down; a replacement of a
        // link in use is taken between cycles (the run loop waits on it).
        if self.conn.is_none() && self.dtu.is_some() {
            self.take_waiting_dtu();
        }
        if self.conn.is_none() {
            let opened = connect(&self.spec, self.cfg.connect_timeout).await?;
            tracing::debug!(endpoint = %self.spec.address, "connected");
            self.conn = Some(opened);
        }
        Ok(&mut self.conn.as_mut().expect("just connected").ctx)
    }

    /// Drops the connection after a failure it cannot be trusted past.
    pub(super) fn after_failure(&mut self, reason: &FailReason) {
        let keep = match (reason, &self.conn) {
            (_, None) => return,
            (FailReason::Timeout, Some(c)) => c.survives_timeout,
            (FailReason::Exception { .. }, _) => true,
            _ => false,
        };
        if !keep {
            if let (Some(slot), Some(conn)) = (&self.dtu, self.conn.as_ref()) {
                if let Some(g) = conn.generation {
                    slot.lost(g);
                }
            }
            self.conn = None;
        }
    }

    /// Waits out the endpoint's `request_gap` on a link without framing of
    /// our own (ours waits inside the link).
    async fn request_gap(&mut self) {
        let gap = self.spec.request_gap;
        if gap.is_zero() || self.conn.as_ref().is_none_or(|c| c.survives_timeout) {
            return;
        }
        if let Some(last) = self.last_io {
            tokio::time::sleep_until(last + gap).await;
        }
    }

    pub(super) async fn read(&mut self, read: &Read) -> Result<Vec<u16>, FailReason> {
        let limit = self.cfg.request_timeout;
        self.ensure_connected().await?;
        self.request_gap().await;
        let ctx = &mut self.conn.as_mut().expect("connected").ctx;
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
        let result = tokio::time::timeout(limit, call).await;
        self.last_io = Some(Instant::now());
        let failure = match result {
            Ok(Ok(Ok(words))) if words.len() >= usize::from(count) => return Ok(words),
            Ok(Ok(Ok(words))) => FailReason::Protocol {
                detail: format!("asked for {count} values, got {}", words.len()),
            },
            // The device answered: the connection is fine.
            Ok(Ok(Err(code))) => return Err(FailReason::Exception { code: code.into() }),
            Ok(Err(e)) => classify(e),
            Err(_) => FailReason::Timeout,
        };
        self.after_failure(&failure);
        Err(failure)
    }
}
