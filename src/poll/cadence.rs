//! When an endpoint's poller tries next: the per-class cadence and the
//! reconnect backoff. Kept apart from the Modbus I/O so both rules can be
//! specified with paused time.

use std::time::Duration;
use tokio::time::Instant;

/// Capped exponential backoff with jitter, so a district's endpoints that
/// dropped together do not all reconnect in the same instant.
#[derive(Debug)]
pub(super) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(super) fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            failures: 0,
        }
    }

    pub(super) fn next(&mut self) -> Duration {
        let exp = self.min.saturating_mul(1u32 << self.failures.min(16));
        self.failures += 1;
        exp.min(self.max).mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// When a class polled at `interval`, last due at `when`, is due again once
/// its poll ended at `now`: keep the cadence, but never try to catch up on
/// missed cycles.
pub(super) fn next_due(when: Instant, interval: Duration, now: Instant) -> Instant {
    (when + interval).max(now)
}
