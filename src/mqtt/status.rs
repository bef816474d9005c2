//! The broker link as `/readyz` and `/metrics` show it, updated by the MQTT
//! task and read without locks.

use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct LinkStatus {
    pub broker: String,
    pub connected: AtomicBool,
    pub connects: AtomicU64,
    pub connection_errors: AtomicU64,
    /// Acknowledged by the broker (PUBACK), by kind.
    pub states_published: AtomicU64,
    pub events_published: AtomicU64,
    /// Events raised (queued for the broker) since start.
    pub events_raised: AtomicU64,
    /// Events waiting in memory / on disk now.
    pub events_queued: AtomicU64,
    pub events_spilled: AtomicU64,
    pub events_spilled_total: AtomicU64,
    /// Devices whose state waits to be published.
    pub states_pending: AtomicU64,
    pub in_flight: AtomicU64,
    /// Samples left out of batches because the MQTT task was behind.
    pub samples_skipped: AtomicU64,
    /// Messages given up on because the client or the broker refuses them
    /// whatever the connection (a topic name MQTT forbids, too large).
    pub messages_dropped: AtomicU64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkSnapshot {
    pub broker: String,
    pub connected: bool,
    pub connects: u64,
    pub connection_errors: u64,
    pub states_published: u64,
    pub events_published: u64,
    pub events_raised: u64,
    pub events_queued: u64,
    pub events_spilled: u64,
    pub events_spilled_total: u64,
    pub states_pending: u64,
    pub in_flight: u64,
    pub samples_skipped: u64,
    pub messages_dropped: u64,
}

impl LinkStatus {
    pub fn new(broker: String) -> Self {
        Self {
            broker,
            ..Default::default()
        }
    }

    pub fn snapshot(&self) -> LinkSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        LinkSnapshot {
            broker: self.broker.clone(),
            connected: self.connected.load(Ordering::Relaxed),
            connects: g(&self.connects),
            connection_errors: g(&self.connection_errors),
            states_published: g(&self.states_published),
            events_published: g(&self.events_published),
            events_raised: g(&self.events_raised),
            events_queued: g(&self.events_queued),
            events_spilled: g(&self.events_spilled),
            events_spilled_total: g(&self.events_spilled_total),
            states_pending: g(&self.states_pending),
            in_flight: g(&self.in_flight),
            samples_skipped: g(&self.samples_skipped),
            messages_dropped: g(&self.messages_dropped),
        }
    }
}
