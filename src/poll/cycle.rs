//! One poll cycle of one class: every unit's reads once, in an order that
//! lets a dead unit cost its neighbours nothing.
//!
//! THE rule: a unit's silence is its own failure when another unit of the
//! same endpoint — of either class — answers in the same cycle; the
//! endpoint has failed when nothing on it answers. "In the same cycle" is
//! what *recently* means: evidence older than the cycle cannot tell a dead
//! unit from a link that has just gone down (the first class to run after
//! it would blame its units one by one), and a cabinet's RTU cycle has one
//! unit, so it takes its evidence from the SLCs behind the same DTU or
//! gateway by asking one of them (the witness), not from their last cycle.
//! An exception is an answer (the device's, or a gateway's for it). In the
//! order they apply:
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
//! - The witness: a cycle in which none of its own units answered asks,
//!   before it judges the endpoint, one read of a unit of the endpoint's
//!   other class that is not on a slower cadence of its own — the read of
//!   that class answered last, or, after a witness that did not answer, the
//!   first read of the next unit of that class in plan order (so a dead
//!   witness is not taken for the endpoint twice running). It is asked where
//!   the cycle would give up (below), or at its end when every unit it asked
//!   timed out; not after a broken link (that is the endpoint's failure
//!   already), and never when the endpoint has one class. It answers: the
//!   endpoint is alive, the cycle goes on, and its silent units have failed
//!   on their own. Its answer is evidence, not a sample: its class reports
//!   its units at its own due times. It costs a dead RTU's probe one more
//!   read, and a try of a silent endpoint one more timeout.
//! - When nothing on the endpoint answers, the endpoint has failed: two
//!   units in a row time out with no answer in this cycle or this class's
//!   last one and the witness does not answer (or there is none), or every
//!   unit asked timed out and the witness did not answer. A link that went
//!   down is so judged by the first cycle after it, of either class (its
//!   own units and the witness time out). The rest of the cycle is not
//!   sent, the next one starts where this one stopped (so the units behind
//!   two dead ones are reached), and the poller backs off as for a failed
//!   connection; each try after the backoff asks a witness again, so a dead
//!   RTU never keeps the endpoint from reaching its SLCs.

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

        // Whether any unit of the endpoint answered in this cycle: one of
        // this class, or the witness.
        let mut answered = false;
        // The last read of this class that was answered.
        let mut heard: Option<usize> = None;
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
            for i in group.clone() {
                let read = &spec.reads[i];
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
                        heard = Some(i);
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
                            FailReason::Exception { .. } => {
                                answered = true;
                                heard = Some(i);
                            }
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
                match self
                    .ask_witness(class, &mut reads_ok, &mut reads_failed)
                    .await
                {
                    Some(Ok(())) => answered = true,
                    Some(Err(reason)) => gave_up = Some(reason),
                    None => gave_up = Some(FailReason::Timeout),
                }
                if gave_up.is_some() {
                    self.resume_at[slot] = order.tried.get(pos + 1).copied().unwrap_or(0);
                }
            }
        }
        // Every unit asked timed out, the link held: before the endpoint is
        // judged, a unit of the other class is asked.
        if !answered && gave_up.is_none() && fates.iter().any(|f| f.1 == UnitFate::TimedOut) {
            if let Some(Ok(())) = self
                .ask_witness(class, &mut reads_ok, &mut reads_failed)
                .await
            {
                answered = true;
            }
        }

        if attempted > 0 {
            self.last_answered[slot] = answered;
        }
        if heard.is_some() {
            self.witness[slot] = heard;
        }
        // Only when a neighbour (of this class, or the witness) answered is a
        // timeout the unit's own failure; when nothing answered it is the
        // endpoint's, and the backoff is.
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

    /// Asks the witness for a cycle of `class` none of whose own units
    /// answered: one read of the endpoint's other class — the one answered
    /// last, or after a witness that did not answer the first read of the
    /// next unit in plan order — skipping units that timed out before (they
    /// are on their own cadence). `None` when there is none to ask: the
    /// endpoint has no other class, or every unit of it timed out before.
    /// `Some(Ok)` when it answered (an exception is an answer). Its values
    /// are evidence, not a sample: the other class reports its units at its
    /// own due times. The read counts in the endpoint's reads.
    async fn ask_witness(
        &mut self,
        class: PollClass,
        reads_ok: &mut u32,
        reads_failed: &mut u32,
    ) -> Option<Result<(), FailReason>> {
        let other = match class {
            PollClass::Rtu => PollClass::Slc,
            PollClass::Slc => PollClass::Rtu,
        };
        let slot = class_slot(other);
        let spec = self.spec.clone();
        let groups = unit_groups(&spec.reads, other);
        let n = groups.len();
        let cursor =
            self.witness[slot].filter(|&i| spec.reads.get(i).is_some_and(|r| r.class == other));
        let first = cursor
            .and_then(|i| groups.iter().position(|g| g.contains(&i)))
            .unwrap_or(0);
        let g = (0..n)
            .map(|k| (first + k) % n)
            .find(|&g| !self.units.contains_key(&spec.reads[groups[g].start].unit))?;
        let i = match cursor {
            Some(i) if g == first => i,
            _ => groups[g].start,
        };
        let result = match self.read(&spec.reads[i]).await {
            // An exception is an answer: the device, or the gateway for it.
            Ok(_) | Err(FailReason::Exception { .. }) => Ok(()),
            Err(reason) => Err(reason),
        };
        if result.is_ok() {
            *reads_ok += 1;
            self.witness[slot] = Some(i);
        } else {
            *reads_failed += 1;
            self.witness[slot] = Some(groups[(g + 1) % n].start);
        }
        Some(result)
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
