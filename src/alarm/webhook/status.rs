//! Each webhook's delivery as `/metrics` and `/readyz` show it, updated by
//! its queue and delivery task and read without locks.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// One webhook's counters. Never holds its URL (which may carry a key, as
/// chat-bot webhooks do) nor its secret.
#[derive(Debug, Default)]
pub struct HookStatus {
    pub name: String,
    /// Accepted by the receiver (2xx) since start.
    pub delivered: AtomicU64,
    /// Attempts that did not end in a 2xx: transport errors, timeouts,
    /// every non-2xx answer.
    pub failed_attempts: AtomicU64,
    /// Given up on: bodies the receiver refused for good (module doc).
    pub dropped: AtomicU64,
    /// Spooled and not delivered yet (a previous run's included).
    pub pending: AtomicU64,
    /// Failed attempts since the last 2xx (0 while deliveries go through).
    pub consecutive_failures: AtomicU64,
    /// Spool writes, reads or commits that failed.
    pub spool_errors: AtomicU64,
    /// Milliseconds since the epoch of the last 2xx; 0: none since start.
    pub last_success_ms: AtomicI64,
}

/// Every webhook's status, in the order of `alarms.webhooks`.
#[derive(Debug, Default)]
pub struct WebhookStatus {
    pub hooks: Vec<Arc<HookStatus>>,
}

/// One webhook as `/readyz` can show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HookSnapshot {
    pub name: String,
    pub pending: u64,
    pub delivered: u64,
    pub failed_attempts: u64,
    pub dropped: u64,
    pub consecutive_failures: u64,
    pub spool_errors: u64,
    pub last_success: Option<DateTime<Utc>>,
}

impl HookStatus {
    pub fn new(name: String) -> Self {
        Self {
            name,
            ..Default::default()
        }
    }

    pub fn snapshot(&self) -> HookSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ms = self.last_success_ms.load(Ordering::Relaxed);
        HookSnapshot {
            name: self.name.clone(),
            pending: g(&self.pending),
            delivered: g(&self.delivered),
            failed_attempts: g(&self.failed_attempts),
            dropped: g(&self.dropped),
            consecutive_failures: g(&self.consecutive_failures),
            spool_errors: g(&self.spool_errors),
            last_success: (ms > 0)
                .then(|| DateTime::from_timestamp_millis(ms))
                .flatten(),
        }
    }

    pub(crate) fn succeeded(&self, at: DateTime<Utc>) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.last_success_ms
            .store(at.timestamp_millis(), Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
    }
}

impl WebhookStatus {
    pub fn snapshot(&self) -> Vec<HookSnapshot> {
        self.hooks.iter().map(|h| h.snapshot()).collect()
    }
}
