//! One poll cycle of one class: every unit's reads once, in an order that
//! lets a dead unit cost its neighbours nothing.
//!
//! The rules, in the order they apply:
//! - A unit whose request times out while another unit on the endpoint
//!   answers in the same cycle has failed on its own: its remaining reads in
//!   the cycle are not sent (one timeout per dead unit and cycle), and the
//!   cycle goes on with the next unit. On our RTU and DTU framing the link
//!   stays open (each answer is matched to its request by unit, function and
//!   length, and stale bytes are thrown away before each request); on Modbus
//!   TCP it is reopened, since tokio-modbus cannot skip a stale answer.
//! - Units that have timed out go last, at most [`probe_budget`] of them per
//!   cycle, and from their second timeout on at a slower cadence of their own
//!   ([`UnitHealth`]); one not tried is reported [`FailReason::Deferred`].
//! - When nothing on the endpoint answers — two units in a row time out, no
//!   unit answered yet in this cycle or in the last one — the endpoint has
//!   failed: the rest of the cycle is not sent, the next one starts where
//!   this one stopped (so the units behind two dead ones are reached), and
//!   the poller backs off as for a failed connection.

use super::cadence::{probe_budget, UnitHealth};
use super::worker::Endpoint;
use crate::state::{FailReason, PollOutcome, Reading};
use crate::topology::{PollClass, Read};
use chrono::Utc;
use lamp_profile::{decode, DeviceKind, Quantity};
use std::ops::Range;
use std::time::Duration;
use tokio::time::Instant;

/// Slot of a class in per-class arrays.
pub(super) fn class_slot(class: PollClass) -> usize {
    match class {
        PollClass::Rtu => 0,
        PollClass::Slc => 1,
    }
}

/// The reads of `class` grouped by unit, as index ranges into `reads`
/// (the plan keeps one unit's reads together).
fn unit_groups(reads: &[Read], class: PollClass) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, r) in reads.iter().enumerate() {
        if r.class != class {
            continue;
        }
        match out.last_mut() {
            Some(g) if g.end == i && reads[g.start].unit == r.unit => g.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// How one unit fared in a cycle.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UnitFate {
    Answered,
    TimedOut,
    /// Failed otherwise (transport, protocol): the endpoint's link, not the unit.
    Other,
}

impl Endpoint {
    /// Runs every read of one class once and reports each device's result.
    pub(super) async fn poll(&mut self, class: PollClass, interval: Duration) -> PollOutcome {
        let started = Instant::now();
        let at = Utc::now();
        let spec = self.spec.clone();
        let slot = class_slot(class);
        let mut values: Vec<Vec<(Quantity, f64)>> = vec![Vec::new(); spec.devices.len()];
        let mut failed: Vec<Option<FailReason>> = vec![None; spec.devices.len()];
        let (mut reads_ok, mut reads_failed) = (0u32, 0u32);
        let fail_group =
            |failed: &mut Vec<Option<FailReason>>, g: &Range<usize>, r: &FailReason| {
                for read in &spec.reads[g.clone()] {
                    for part in &read.parts {
                        failed[part.device as usize].get_or_insert_with(|| r.clone());
                    }
                }
            };

        let groups = unit_groups(&spec.reads, class);
        let order = self.cycle_order(&groups, slot, interval, started);
        for &g in &order.deferred {
            fail_group(&mut failed, &groups[g], &FailReason::Deferred);
        }

        let mut answered = false;
        let mut attempted = 0u32;
        let mut silent_in_row = 0u32;
        // One fresh connection per cycle after a transport failure: enough to
        // ride over a dropped socket, without letting a dead link cost a
        // timeout per read.
        let mut reconnects_left = 1u32;
        let mut gave_up: Option<FailReason> = None;
        let mut fates: Vec<(u8, UnitFate)> = Vec::with_capacity(order.tried.len());
        self.resume_at[slot] = 0;
        for (pos, &g) in order.tried.iter().enumerate() {
            let group = &groups[g];
            if let Some(reason) = &gave_up {
                reads_failed += group.len() as u32;
                fail_group(&mut failed, group, reason);
                continue;
            }
            let unit = spec.reads[group.start].unit;
            let mut fate = UnitFate::Answered;
            for read in &spec.reads[group.clone()] {
                while let Ok(job) = self.writes.try_recv() {
                    self.execute(job).await;
                }
                let result = match (&gave_up, fate) {
                    (Some(reason), _) => Err(reason.clone()),
                    // A unit that did not answer one read will not answer the next.
                    (None, UnitFate::TimedOut) => Err(FailReason::Timeout),
                    (None, _) => {
                        attempted += 1;
                        self.read(read).await
                    }
                };
                match result {
                    Ok(words) => {
                        reads_ok += 1;
                        answered = true;
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
                        match &reason {
                            // The device answered, with an exception.
                            FailReason::Exception { .. } => answered = true,
                            FailReason::Timeout => fate = UnitFate::TimedOut,
                            FailReason::Connect { .. } => {
                                gave_up.get_or_insert_with(|| reason.clone());
                            }
                            _ => {
                                if fate == UnitFate::Answered {
                                    fate = UnitFate::Other;
                                }
                                if self.conn.is_none() && gave_up.is_none() {
                                    if reconnects_left == 0 {
                                        gave_up = Some(reason.clone());
                                    }
                                    reconnects_left = reconnects_left.saturating_sub(1);
                                }
                            }
                        }
                        for part in &read.parts {
                            failed[part.device as usize].get_or_insert_with(|| reason.clone());
                        }
                    }
                }
            }
            fates.push((unit, fate));
            silent_in_row = if fate == UnitFate::TimedOut {
                silent_in_row + 1
            } else {
                0
            };
            if gave_up.is_none() && !answered && silent_in_row >= 2 && !self.last_answered[slot] {
                gave_up = Some(FailReason::Timeout);
                self.resume_at[slot] = order.tried.get(pos + 1).copied().unwrap_or(0);
            }
        }

        if attempted > 0 {
            self.last_answered[slot] = answered;
        }
        // Only when a neighbour answered is a timeout the unit's own failure;
        // when nothing answered it is the endpoint's, and the backoff is.
        if answered {
            let now = Instant::now();
            for (unit, fate) in fates {
                match fate {
                    UnitFate::TimedOut => self.units.entry(unit).or_default().timed_out(
                        now,
                        interval,
                        self.cfg.unit_backoff_max,
                    ),
                    UnitFate::Answered => {
                        self.units.remove(&unit);
                    }
                    UnitFate::Other => {}
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
            // Something answered, or nothing was due to be asked.
            connected: answered || (attempted == 0 && gave_up.is_none()),
            sent: true,
            elapsed: started.elapsed(),
            reads_ok,
            reads_failed,
            results,
        }
    }

    /// Which unit groups this cycle tries, in order, and which it defers.
    fn cycle_order(
        &self,
        groups: &[Range<usize>],
        slot: usize,
        interval: Duration,
        now: Instant,
    ) -> CycleOrder {
        let n = groups.len();
        let start = if n == 0 { 0 } else { self.resume_at[slot] % n };
        let unit = |g: usize| self.spec.reads[groups[g].start].unit;
        let (mut tried, suspects): (Vec<usize>, Vec<usize>) = (0..n)
            .map(|k| (start + k) % n)
            .partition(|&g| !self.units.contains_key(&unit(g)));
        let mut budget = probe_budget(interval, self.cfg.request_timeout);
        let mut deferred = Vec::new();
        for g in suspects {
            let health: UnitHealth = self.units[&unit(g)];
            if health.due(now) && budget > 0 {
                budget -= 1;
                tried.push(g);
            } else {
                deferred.push(g);
            }
        }
        CycleOrder { tried, deferred }
    }
}

struct CycleOrder {
    /// Units that answered last time first (from where the last cycle that
    /// gave up stopped), then the units that timed out and are due.
    tried: Vec<usize>,
    deferred: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamp_profile::Table;

    fn read(class: PollClass, unit: u8) -> Read {
        Read {
            class,
            unit,
            table: Table::Holding,
            start: 0,
            count: 1,
            parts: vec![],
        }
    }

    #[test]
    fn reads_are_grouped_by_unit_within_a_class() {
        let reads = [
            read(PollClass::Rtu, 1),
            read(PollClass::Slc, 2),
            read(PollClass::Slc, 2),
            read(PollClass::Slc, 3),
            read(PollClass::Slc, 4),
            read(PollClass::Slc, 4),
        ];
        assert_eq!(unit_groups(&reads, PollClass::Slc), vec![1..3, 3..4, 4..6]);
        assert_eq!(unit_groups(&reads, PollClass::Rtu), vec![0..1]);
    }
}
