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

/// How a unit behind a shared endpoint (an RS-485 bus behind a converter or
/// a DTU) has fared. A unit that timed out while its neighbours answered is
/// that unit's failure: it is probed again, and after repeated timeouts at a
/// slower cadence of its own, so a bus with dead nodes still completes its
/// cycles. Units never seen failing are not kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct UnitHealth {
    /// Consecutive polls of the unit that got no answer while another unit
    /// on the endpoint answered.
    pub(super) timeouts: u32,
    /// Not probed before this (set from the second timeout on).
    pub(super) next_probe: Option<Instant>,
}

impl UnitHealth {
    /// Whether the unit is tried in a cycle starting `now`.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.next_probe.is_none_or(|t| now >= t)
    }

    /// Records a timeout at `now` of a unit polled every `interval`: from the
    /// second one on, the next probe waits `interval · 2ⁿ⁻²` (jittered by
    /// ±25 % so units that died together spread out), capped at `max`.
    pub(super) fn timed_out(&mut self, now: Instant, interval: Duration, max: Duration) {
        self.timeouts = self.timeouts.saturating_add(1);
        if self.timeouts >= 2 {
            let wait = interval
                .saturating_mul(1u32 << (self.timeouts - 2).min(16))
                .min(max.max(interval));
            self.next_probe = Some(now + wait.mul_f64(0.75 + fastrand::f64() * 0.5));
        }
    }
}

/// How many units that timed out last time one cycle may try: each may cost
/// a request timeout, and together they may take at most half the interval,
/// so the units that answer keep their cadence. At least one, so every dead
/// unit is probed eventually.
pub(super) fn probe_budget(interval: Duration, request_timeout: Duration) -> usize {
    if request_timeout.is_zero() {
        return usize::MAX;
    }
    ((interval.as_secs_f64() / 2.0 / request_timeout.as_secs_f64()) as usize).max(1)
}
