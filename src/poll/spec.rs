//! When a poller tries, specified with paused time: each class keeps its
//! interval but never catches up on missed cycles; after a failed connection
//! the next try waits a capped exponential backoff with jitter, which a
//! success resets.

use super::cadence::{next_due, Backoff};
use super::config::PollerConfig;
use super::worker;
use crate::inventory::{Framing, Link};
use crate::state::{FailReason, PollOutcome, Report};
use crate::topology::{DeviceKey, DeviceSlot, EndpointSpec, PollClass};
use lamp_profile::Profile;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

/// The worker's loop without the Modbus: wait until due, "poll" for the
/// given time, compute the next due time. Returns when each poll started.
async fn poll_starts(interval: Duration, poll_takes: &[Duration]) -> Vec<Duration> {
    let t0 = Instant::now();
    let mut due = t0;
    let mut starts = Vec::new();
    for took in poll_takes {
        tokio::time::sleep_until(due).await;
        let when = due;
        starts.push(Instant::now() - t0);
        tokio::time::sleep(*took).await;
        due = next_due(when, interval, Instant::now());
    }
    starts
}

#[tokio::test(start_paused = true)]
async fn a_class_keeps_its_interval_however_long_its_polls_take() {
    let starts = poll_starts(s(10.0), &[s(3.0), s(7.5), s(0.1), s(9.9), s(2.0)]).await;
    assert_eq!(starts, [0.0, 10.0, 20.0, 30.0, 40.0].map(s));
}

#[tokio::test(start_paused = true)]
async fn a_poll_longer_than_the_interval_is_followed_at_once_but_missed_cycles_are_not_caught_up() {
    // The first poll overran three and a half intervals: the next one starts
    // as soon as it ends, and the cadence goes on from there, with no burst
    // of polls for the cycles at 10, 20 and 30 s.
    let starts = poll_starts(s(10.0), &[s(35.0), s(1.0), s(1.0), s(1.0)]).await;
    assert_eq!(starts, [0.0, 35.0, 45.0, 55.0].map(s));
}

#[test]
fn the_next_due_time_is_one_interval_after_the_last_or_now_if_that_is_past() {
    let t = Instant::now();
    assert_eq!(next_due(t, s(10.0), t + s(2.0)), t + s(10.0));
    assert_eq!(next_due(t, s(10.0), t + s(10.0)), t + s(10.0));
    assert_eq!(next_due(t, s(10.0), t + s(42.0)), t + s(42.0));
    // Interval 0: back to back.
    assert_eq!(next_due(t, Duration::ZERO, t + s(0.3)), t + s(0.3));
}

/// The bounds of the `n`-th backoff (0-based) from `min` capped at `max`:
/// half to all of `min · 2ⁿ`, capped.
fn bounds(min: Duration, max: Duration, n: u32) -> (Duration, Duration) {
    let top = min.saturating_mul(2u32.saturating_pow(n)).min(max);
    (top / 2, top)
}

#[test]
fn backoff_doubles_from_min_up_to_max_with_jitter_of_up_to_half() {
    let (min, max) = (s(0.5), s(30.0));
    let mut b = Backoff::new(min, max);
    for n in 0..12 {
        let (low, high) = bounds(min, max, n);
        let d = b.next();
        assert!(
            low <= d && d <= high,
            "try {n}: {d:?} not in {low:?}..={high:?}"
        );
    }
}

#[test]
fn backoff_stays_at_the_cap_after_many_failures() {
    let (min, max) = (s(0.5), s(30.0));
    let mut b = Backoff::new(min, max);
    for _ in 0..1000 {
        let d = b.next();
        assert!(d <= max, "{d:?}");
    }
    let d = b.next();
    assert!(d >= max / 2, "{d:?}");
}

#[test]
fn backoff_is_jittered_so_endpoints_that_dropped_together_spread_out() {
    let waits: std::collections::HashSet<Duration> = (0..50)
        .map(|_| Backoff::new(s(1.0), s(60.0)).next())
        .collect();
    assert!(waits.len() > 10, "{} distinct waits of 50", waits.len());
}

#[test]
fn backoff_starts_again_from_min_after_a_success() {
    let (min, max) = (s(1.0), s(60.0));
    let mut b = Backoff::new(min, max);
    for _ in 0..5 {
        b.next();
    }
    assert!(
        b.next() >= s(16.0),
        "five failures in: 32 s halved at least"
    );
    b.reset();
    let d = b.next();
    assert!(min / 2 <= d && d <= min, "{d:?}");
}

/// One SLC (one read per cycle) behind `address`.
fn one_slc_endpoint(address: String) -> Arc<EndpointSpec> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let profile = Profile::load_dir(&dir).unwrap()["slc-a-unit"].clone();
    let mut ep = EndpointSpec {
        link: Link::Tcp {
            address: address.clone(),
        },
        address,
        framing: Framing::Tcp,
        request_gap: Duration::ZERO,
        devices: vec![DeviceSlot {
            key: DeviceKey::Lamp(0),
            unit: 1,
            block_index: 0,
            profile: Arc::new(profile),
        }],
        reads: vec![],
    };
    ep.plan(0);
    assert_eq!(ep.reads.len(), 1);
    Arc::new(ep)
}

fn config(
    interval: Duration,
    request_timeout: Duration,
    min: Duration,
    max: Duration,
) -> PollerConfig {
    PollerConfig {
        slc_interval: interval,
        rtu_interval: interval,
        request_timeout,
        connect_timeout: s(1.0),
        reconnect_min: min,
        reconnect_max: max,
        unit_backoff_max: s(60.0),
        max_attempts: 1,
        dialin: None,
    }
}

/// Runs a poller against a real local socket that accepts the connection
/// and never answers; returns each outcome with the (paused) time since
/// start at which it arrived.
async fn against_a_silent_endpoint(cfg: PollerConfig, n: usize) -> Vec<(Duration, PollOutcome)> {
    // The kernel completes the handshake from the listen backlog; nobody
    // ever reads the request or answers it.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = one_slc_endpoint(silent.local_addr().unwrap().to_string());
    let (tx, mut outcomes) = mpsc::channel(4);
    // Held open: a closed write queue stops the poller.
    let (_writes, writes_rx) = mpsc::channel(1);
    let cancel = CancellationToken::new();
    let t0 = Instant::now();
    let poller = tokio::spawn(worker::run(
        0,
        spec,
        cfg,
        tx,
        writes_rx,
        cancel.clone(),
        worker::Lifecycle::default(),
    ));
    let mut got = Vec::new();
    while got.len() < n {
        // A silent endpoint confirms no write: every report is a poll.
        if let Report::Poll(o) = outcomes.recv().await.expect("the poller runs") {
            got.push((Instant::now() - t0, o));
        }
    }
    cancel.cancel();
    poller.await.unwrap();
    drop(silent);
    got
}

fn close(a: Duration, b: Duration) -> bool {
    a.abs_diff(b) <= Duration::from_millis(5)
}

#[tokio::test(start_paused = true)]
async fn a_silent_endpoint_is_polled_at_its_interval_each_poll_failing_after_the_request_timeout() {
    // Backoff of a millisecond at most: the interval decides.
    let cfg = config(
        s(10.0),
        s(1.0),
        Duration::from_millis(1),
        Duration::from_millis(1),
    );
    let got = against_a_silent_endpoint(cfg, 4).await;
    for (k, (t, o)) in got.iter().enumerate() {
        let want = s(10.0 * k as f64 + 1.0);
        assert!(close(*t, want), "outcome {k} at {t:?}, want {want:?}");
        assert_eq!(o.class, PollClass::Slc);
        assert!(!o.connected, "a timed-out connection is dropped");
        assert!(close(o.elapsed, s(1.0)), "{:?}", o.elapsed);
        assert_eq!((o.reads_ok, o.reads_failed), (0, 1));
        assert_eq!(o.results.len(), 1);
        assert_eq!(o.results[0].0, DeviceKey::Lamp(0));
        assert_eq!(o.results[0].1, Err(FailReason::Timeout));
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_endpoint_polled_back_to_back_is_retried_after_a_growing_capped_backoff() {
    let (min, max) = (s(2.0), s(16.0));
    let timeout = s(1.0);
    let got = against_a_silent_endpoint(config(Duration::ZERO, timeout, min, max), 7).await;
    assert!(close(got[0].0, timeout), "the first poll starts at once");
    for k in 1..got.len() {
        // Between two outcomes: the backoff after the first, then the next
        // poll's request timeout.
        let waited = got[k].0 - got[k - 1].0 - timeout;
        let (low, high) = bounds(min, max, k as u32 - 1);
        assert!(
            low <= waited && waited <= high + Duration::from_millis(5),
            "backoff {}: {waited:?} not in {low:?}..={high:?}",
            k - 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_poll_due_during_the_backoff_counts_as_failed_at_its_due_time() {
    // Polled every 2 s; after the first timeout the backoff (5–30 s) is
    // longer than the interval. Each due time still yields a failed
    // outcome — sent and timed out, or not sent — so a device goes offline
    // within `offline_after` intervals (plus one request timeout) of its
    // last success, not only at the next attempt.
    let (interval, timeout) = (s(2.0), s(1.0));
    let cfg = config(interval, timeout, s(10.0), s(30.0));
    let got = against_a_silent_endpoint(cfg, 12).await;
    let mut not_sent = 0;
    for (k, (t, o)) in got.iter().enumerate() {
        let due = interval * k as u32;
        assert!(
            *t + Duration::from_millis(5) >= due && *t <= due + timeout + Duration::from_millis(5),
            "outcome {k} at {t:?}, due at {due:?}"
        );
        // Reported with the failure that made the endpoint back off.
        assert_eq!(o.results[0].1, Err(FailReason::Timeout), "outcome {k}");
        if (o.reads_ok, o.reads_failed) == (0, 0) {
            not_sent += 1;
            assert_eq!(o.elapsed, Duration::ZERO, "outcome {k}: nothing sent");
        }
    }
    assert!(
        not_sent >= 6,
        "{not_sent} of 12 due polls fell in the backoff"
    );
}

#[test]
fn a_unit_that_keeps_timing_out_is_probed_ever_more_rarely_up_to_its_cap() {
    use super::cadence::UnitHealth;
    let (interval, cap) = (s(10.0), s(60.0));
    let mut u = UnitHealth::default();
    let t0 = Instant::now();
    u.timed_out(t0, interval, cap);
    assert!(u.due(t0), "one timeout: tried again next cycle");
    let mut waits = Vec::new();
    for _ in 0..8 {
        u.timed_out(t0, interval, cap);
        let wait = u.next_probe.expect("a slower cadence") - t0;
        waits.push(wait);
        assert!(!u.due(t0 + wait - s(0.001)) && u.due(t0 + wait));
    }
    // interval · 2ⁿ (±25 %), capped: 10, 20, 40, then 60 s.
    for (n, want) in [10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0, 60.0]
        .iter()
        .enumerate()
    {
        let w = waits[n].as_secs_f64();
        assert!(
            w >= want * 0.75 - 1e-9 && w <= want * 1.25 + 1e-9,
            "probe {n}: {w} s, want {want} ±25 %"
        );
    }
}

#[test]
fn the_probes_of_dead_units_take_at_most_half_the_interval() {
    use super::cadence::probe_budget;
    assert_eq!(probe_budget(s(10.0), s(1.0)), 5);
    assert_eq!(probe_budget(s(0.3), s(0.1)), 1);
    assert_eq!(
        probe_budget(s(1.0), s(5.0)),
        1,
        "at least one, or a dead unit is never seen again"
    );
}
