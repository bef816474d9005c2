//! Prometheus families of the dial-in listener: DTUs configured, connected
//! and pending, registrations, replacements, connections lost, refusals by
//! reason.

use super::{Refusal, Registry};
use crate::exposition::{counter, counters, gauge, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The counters the listener and the slots keep; read by [`DialInMetrics`].
#[derive(Debug, Default)]
pub struct DialInStats {
    registrations: AtomicU64,
    replacements: AtomicU64,
    lost: AtomicU64,
    pending: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

impl DialInStats {
    pub(crate) fn registered(&self, replaced: bool) {
        self.registrations.fetch_add(1, Relaxed);
        if replaced {
            self.replacements.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn lost(&self) {
        self.lost.fetch_add(1, Relaxed);
    }

    pub(crate) fn refused(&self, why: Refusal) {
        self.refused[why as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn pending_started(&self) {
        self.pending.fetch_add(1, Relaxed);
    }

    pub(crate) fn pending_ended(&self) {
        self.pending.fetch_sub(1, Relaxed);
    }

    pub fn registrations(&self) -> u64 {
        self.registrations.load(Relaxed)
    }

    pub fn replacements(&self) -> u64 {
        self.replacements.load(Relaxed)
    }

    pub fn lost_total(&self) -> u64 {
        self.lost.load(Relaxed)
    }

    /// Connections accepted that have not registered yet.
    pub fn pending(&self) -> u64 {
        self.pending.load(Relaxed)
    }

    pub fn refusals(&self, why: Refusal) -> u64 {
        self.refused[why as usize].load(Relaxed)
    }
}

#[derive(Debug)]
pub struct DialInMetrics(pub Arc<Registry>);

impl Collector for DialInMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let r = &self.0;
        let s = r.stats();
        gauge(
            &mut enc,
            "lampgw_dialin_dtus",
            "Dial-in DTU ids in the inventory",
            r.len() as u64,
        )?;
        gauge(
            &mut enc,
            "lampgw_dialin_connected",
            "Dial-in DTUs with a registered connection now",
            r.connected() as u64,
        )?;
        gauge(
            &mut enc,
            "lampgw_dialin_pending",
            "Dial-in connections accepted that have not registered yet",
            s.pending(),
        )?;
        counter(
            &mut enc,
            "lampgw_dialin_registrations",
            "Dial-in connections that registered with a configured id",
            s.registrations(),
        )?;
        counter(
            &mut enc,
            "lampgw_dialin_replacements",
            "Registrations that replaced a DTU connection still open (a reconnect after a cell handover)",
            s.replacements(),
        )?;
        counter(
            &mut enc,
            "lampgw_dialin_lost",
            "Dial-in connections their poller reported failed",
            s.lost_total(),
        )?;
        counters(
            &mut enc,
            "lampgw_dialin_refused",
            "Dial-in connections closed without registering, by reason",
            Refusal::ALL.map(|why| (label("reason", why.as_str()), s.refusals(why))),
        )
    }
}
