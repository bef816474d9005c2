//! When a poller tries, specified with paused time: each class keeps its
//! interval but never catches up on missed cycles; after a failed connection
//! the next try waits a capped exponential backoff with jitter, which a
//! success resets. And whose a silence is, on an endpoint of both classes
//! (a cabinet's RTU and its SLCs behind one gateway, a Modbus TCP farm in
//! the test's runtime): a unit's own while any unit of the endpoint
//! answers, the endpoint's when nothing does (`cycle.rs`).

use super::cadence::{next_due, Backoff};
use super::config::PollerConfig;
use super::worker;
use crate::inventory::{Framing, Link};
use crate::state::{FailReason, PollOutcome, Report};
use crate::topology::{DeviceKey, DeviceSlot, EndpointSpec, PollClass};
use lamp_profile::Profile;
use parking_lot::Mutex;
use std::collections::HashSet;
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
    let waits: HashSet<Duration> = (0..50)
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

/// Cluster mode: a poller whose lease is ending (`Lifecycle::release`)
/// stops at once, in the middle of a request that would take a minute, and
/// hands its write queue back open, with what is queued in it.
#[tokio::test]
async fn a_released_poller_stops_mid_request_and_hands_its_write_queue_back() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spec = one_slc_endpoint(silent.local_addr().unwrap().to_string());
    let cfg = config(s(1.0), s(60.0), s(0.05), s(0.2));
    let (tx, _outcomes) = mpsc::channel(4);
    let (writes, writes_rx) = mpsc::channel(1);
    let release = CancellationToken::new();
    let poller = tokio::spawn(worker::run(
        0,
        spec,
        cfg,
        tx,
        writes_rx,
        CancellationToken::new(),
        worker::Lifecycle {
            release: release.clone(),
            ..worker::Lifecycle::default()
        },
    ));
    // Connected, its first request sent and never answered.
    let (_conn, _) = silent.accept().await.unwrap();
    release.cancel();
    let exit = tokio::time::timeout(s(1.0), poller)
        .await
        .expect("stops at once, not after the request timeout")
        .unwrap();
    let worker::Exit::Released(queue) = exit else {
        panic!("a released poller hands its queue back");
    };
    assert!(
        !writes.is_closed(),
        "the queue stays open for the next poller"
    );
    drop(queue);
    assert!(writes.is_closed());
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

// An endpoint is alive while any of its units answers, whatever its class:
// a cabinet's one RTU and the SLCs behind the same DTU or gateway.

/// A Modbus TCP device farm served by tokio-modbus's own server inside the
/// test's (paused) runtime: every unit answers every read with zeros,
/// except the units in `dead`, which send nothing at all (no reply, no
/// exception; the connection stays open). Each request is logged with its
/// unit and the (paused) time it arrived.
#[derive(Default)]
struct Bench {
    dead: HashSet<u8>,
    /// Units a unit-id gateway answers for with exception 0x0B (gateway
    /// target device failed to respond).
    gateway_answers: HashSet<u8>,
    asked: Vec<(Instant, u8)>,
}

#[derive(Clone)]
struct BenchService(Arc<Mutex<Bench>>);

impl tokio_modbus::server::Service for BenchService {
    type Request = tokio_modbus::SlaveRequest<'static>;
    type Response = Option<tokio_modbus::Response>;
    type Exception = tokio_modbus::ExceptionCode;
    type Future = std::future::Ready<Result<Self::Response, Self::Exception>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        use tokio_modbus::{Request as Asked, Response as Answer};
        let mut bench = self.0.lock();
        bench.asked.push((Instant::now(), req.slave));
        if bench.dead.contains(&req.slave) {
            return std::future::ready(Ok(None));
        }
        if bench.gateway_answers.contains(&req.slave) {
            return std::future::ready(Err(tokio_modbus::ExceptionCode::GatewayTargetDevice));
        }
        let answer = match req.request {
            Asked::ReadCoils(_, n) => Answer::ReadCoils(vec![false; n.into()]),
            Asked::ReadDiscreteInputs(_, n) => Answer::ReadDiscreteInputs(vec![false; n.into()]),
            Asked::ReadHoldingRegisters(_, n) => Answer::ReadHoldingRegisters(vec![0; n.into()]),
            Asked::ReadInputRegisters(_, n) => Answer::ReadInputRegisters(vec![0; n.into()]),
            _ => return std::future::ready(Err(tokio_modbus::ExceptionCode::IllegalFunction)),
        };
        std::future::ready(Ok(Some(answer)))
    }
}

/// Serves `bench` on a free local port; returns its address.
async fn serve_bench(bench: Arc<Mutex<Bench>>) -> String {
    use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let service = BenchService(bench);
        let on_connected = |stream, peer| {
            let service = service.clone();
            async move { accept_tcp_connection(stream, peer, move |_| Ok(Some(service.clone()))) }
        };
        let _ = Server::new(listener).serve(&on_connected, |_| {}).await;
    });
    address
}

const RTU_UNIT: u8 = 1;

/// A cabinet behind one Modbus TCP gateway: its RTU at unit 1
/// (`DeviceKey::Rtu(0)`), SLCs at `slc_units` (`DeviceKey::Lamp(k)` for the
/// k-th).
fn cabinet_endpoint(address: String, slc_units: &[u8]) -> Arc<EndpointSpec> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let profiles = Profile::load_dir(&dir).unwrap();
    let mut devices = vec![DeviceSlot {
        key: DeviceKey::Rtu(0),
        unit: RTU_UNIT,
        block_index: 0,
        profile: Arc::new(profiles["rtu-cabinet"].clone()),
    }];
    for (k, &unit) in slc_units.iter().enumerate() {
        devices.push(DeviceSlot {
            key: DeviceKey::Lamp(k as u32),
            unit,
            block_index: 0,
            profile: Arc::new(profiles["slc-a-unit"].clone()),
        });
    }
    let mut ep = EndpointSpec {
        link: Link::Tcp {
            address: address.clone(),
        },
        address,
        framing: Framing::Tcp,
        request_gap: Duration::ZERO,
        devices,
        reads: vec![],
    };
    ep.plan(0);
    assert!(
        ep.reads.iter().filter(|r| r.unit == RTU_UNIT).count() > 1,
        "the RTU takes several reads"
    );
    Arc::new(ep)
}

/// The defaults' cadence: RTUs every 5 s, SLCs every 10 s, a request
/// timeout of 1 s, reconnects from 0.5 s to 30 s, dead units probed at
/// most 60 s apart.
fn cabinet_config() -> PollerConfig {
    PollerConfig {
        rtu_interval: s(5.0),
        ..config(s(10.0), s(1.0), s(0.5), s(30.0))
    }
}

/// Runs a poller of `spec` for `span` of paused time; returns every
/// outcome with the time since start at which it arrived.
async fn poll_for(
    spec: Arc<EndpointSpec>,
    cfg: PollerConfig,
    span: Duration,
) -> Vec<(Duration, PollOutcome)> {
    let (tx, mut outcomes) = mpsc::channel(16);
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
    let end = t0 + span;
    let mut got = Vec::new();
    loop {
        tokio::select! {
            report = outcomes.recv() => match report.expect("the poller runs") {
                Report::Poll(o) => got.push((Instant::now() - t0, o)),
                Report::Write(_) | Report::Released { .. } => unreachable!("no command was given"),
            },
            () = tokio::time::sleep_until(end) => break,
        }
    }
    cancel.cancel();
    poller.await.unwrap();
    got
}

/// What each outcome said of `key`, with the outcome's time.
fn results_of(
    got: &[(Duration, PollOutcome)],
    key: DeviceKey,
) -> Vec<(Duration, Result<(), FailReason>)> {
    got.iter()
        .flat_map(|(t, o)| {
            o.results
                .iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, r)| (*t, r.as_ref().map(|_| ()).map_err(Clone::clone)))
        })
        .collect()
}

/// When `unit` was asked, since `t0`.
fn asked(bench: &Mutex<Bench>, t0: Instant, unit: u8) -> Vec<Duration> {
    let bench = bench.lock();
    bench
        .asked
        .iter()
        .filter(|(_, u)| *u == unit)
        .map(|(t, _)| *t - t0)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_dead_rtu_behind_the_gateway_of_answering_slcs_is_its_own_failure() {
    // The cabinet's one RTU never answers; its two SLCs do. The RTU cycle
    // has no neighbour of its own: the SLCs are its evidence that the
    // endpoint is alive. So the SLCs are read at every due time and stay
    // online, the endpoint never backs off, and the RTU fails every poll
    // (offline after `offline_after`) and is probed at a dead unit's
    // cadence of its own.
    let bench = Arc::new(Mutex::new(Bench::default()));
    bench.lock().dead.insert(RTU_UNIT);
    let spec = cabinet_endpoint(serve_bench(bench.clone()).await, &[2, 3]);
    let t0 = Instant::now();
    let span = s(300.0);
    let got = poll_for(spec, cabinet_config(), span).await;

    for lamp in [DeviceKey::Lamp(0), DeviceKey::Lamp(1)] {
        let polls = results_of(&got, lamp);
        assert_eq!(polls.len(), 30, "{lamp:?}: one poll per 10 s");
        for (t, r) in polls {
            assert_eq!(r, Ok(()), "{lamp:?} at {t:?}");
        }
    }
    for (t, o) in &got {
        assert!(
            o.sent,
            "{:?} poll at {t:?} not sent: the endpoint backed off",
            o.class
        );
        assert!(
            o.connected,
            "{:?} cycle at {t:?} judged the endpoint failed",
            o.class
        );
    }
    let rtu = results_of(&got, DeviceKey::Rtu(0));
    assert_eq!(rtu.len(), 60, "the RTU's polls are due every 5 s");
    assert!(
        rtu.iter()
            .all(|(_, r)| matches!(r, Err(FailReason::Timeout | FailReason::Deferred))),
        "{rtu:?}"
    );
    // Every poll failed, so it is offline at its `offline_after`-th (3):
    // within 15 s. The first two were sent (a unit that timed out once is
    // tried again the next cycle), the third maybe deferred.
    assert_eq!(
        rtu[..2].iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        vec![Err(FailReason::Timeout); 2],
    );
    assert!(rtu[2].0 <= s(15.0), "{rtu:?}");

    // Probed on its own cadence (5 s doubling, ±25 %, up to 60 s), one
    // request a probe (the rest of its reads are not sent after a timeout).
    let probes = asked(&bench, t0, RTU_UNIT);
    assert!(
        probes.len() <= 15,
        "{} probes of the dead RTU in 60 cycles: {probes:?}",
        probes.len()
    );
    let gaps: Vec<f64> = probes
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert!(
        gaps.iter().all(|g| *g <= 60.0 * 1.25 + 5.0),
        "never longer than its cap (with jitter) and one interval: {gaps:?}"
    );
    assert!(
        gaps.iter().rev().take(2).all(|g| *g >= 60.0 * 0.75 - 5.0),
        "slowed down to its cap: {gaps:?}"
    );
    // Each probe costs one read of an SLC that answered (the evidence),
    // nothing more.
    let slc_reads = asked(&bench, t0, 2).len() + asked(&bench, t0, 3).len();
    assert_eq!(slc_reads, 2 * 30 + probes.len());
}

/// Makes `units` of `bench` dead at `at` (paused time from now).
fn go_dead_at(bench: &Arc<Mutex<Bench>>, at: Duration, units: &[u8]) {
    let (bench, units) = (bench.clone(), units.to_vec());
    tokio::spawn(async move {
        tokio::time::sleep(at).await;
        bench.lock().dead.extend(units);
    });
}

/// The cabinet of RTU and SLCs 2 and 3 goes silent whole at `down` (its
/// DTU's link lost: nothing answers); RTUs polled every 7 s and SLCs every
/// 10 s, so `down` decides which class runs first after it.
async fn a_link_going_down(down: Duration, first: PollClass) {
    let bench = Arc::new(Mutex::new(Bench::default()));
    let spec = cabinet_endpoint(serve_bench(bench.clone()).await, &[2, 3]);
    go_dead_at(&bench, down, &[RTU_UNIT, 2, 3]);
    let cfg = PollerConfig {
        rtu_interval: s(7.0),
        ..cabinet_config()
    };
    let got = poll_for(spec, cfg, s(150.0)).await;
    let (before, after): (Vec<_>, Vec<_>) = got.iter().partition(|(t, _)| *t < down);
    for (t, o) in &before {
        assert!(o.sent && o.connected, "{:?} at {t:?}", o.class);
        assert!(
            o.results.iter().all(|(_, r)| r.is_ok()),
            "{:?} at {t:?}",
            o.class
        );
    }
    // The first cycle after judges the endpoint failed, whichever class it
    // is: its own units time out (the SLC cycle does not give up after two,
    // since its last cycle answered), then the witness of the other class.
    let (t, o) = after[0];
    assert_eq!(o.class, first, "at {t:?}");
    assert!(
        o.sent && !o.connected,
        "the first {first:?} cycle at {t:?} failed the endpoint"
    );
    let timeouts = match first {
        PollClass::Rtu => 2.0,
        PollClass::Slc => 3.0,
    };
    assert!(
        close(o.elapsed, s(timeouts)),
        "{:?}: {timeouts} timeouts",
        o.elapsed
    );
    // Then it backs off: every poll fails, sent or not, each carrying the
    // timeout that made it back off, and most are not sent.
    for (t, o) in &after {
        assert!(!o.connected, "{:?} at {t:?}", o.class);
        for (key, r) in &o.results {
            assert_eq!(*r, Err(FailReason::Timeout), "{key:?} at {t:?}");
        }
    }
    let sent = after.iter().filter(|(_, o)| o.sent).count();
    assert!(
        sent * 2 < after.len(),
        "{sent} of {} due polls sent while backing off",
        after.len()
    );
}

#[tokio::test(start_paused = true)]
async fn a_link_going_down_fails_the_endpoint_at_the_first_rtu_cycle_after() {
    a_link_going_down(s(31.0), PollClass::Rtu).await;
}

#[tokio::test(start_paused = true)]
async fn a_link_going_down_fails_the_endpoint_at_the_first_slc_cycle_after() {
    a_link_going_down(s(29.0), PollClass::Slc).await;
}

#[tokio::test(start_paused = true)]
async fn an_slc_cycle_about_to_give_up_asks_the_rtu_and_goes_on_to_the_slcs_behind() {
    // From the start, SLCs 2 and 3 are dead and 4 answers. The first SLC
    // cycle has no answer of its own class yet (none in its last cycle
    // either) when 2 and 3 time out in a row: it would give up, failing the
    // endpoint; the RTU, asked as the witness, answers, so it goes on to 4.
    let bench = Arc::new(Mutex::new(Bench::default()));
    bench.lock().dead.extend([2, 3]);
    let spec = cabinet_endpoint(serve_bench(bench.clone()).await, &[2, 3, 4]);
    let got = poll_for(spec, cabinet_config(), s(120.0)).await;
    for (t, o) in &got {
        assert!(o.sent && o.connected, "{:?} at {t:?}", o.class);
    }
    for key in [DeviceKey::Rtu(0), DeviceKey::Lamp(2)] {
        let polls = results_of(&got, key);
        assert!(!polls.is_empty());
        assert!(polls.iter().all(|(_, r)| r.is_ok()), "{key:?}: {polls:?}");
    }
    for key in [DeviceKey::Lamp(0), DeviceKey::Lamp(1)] {
        let polls = results_of(&got, key);
        assert!(polls.iter().all(|(_, r)| r.is_err()), "{key:?}: {polls:?}");
        assert!(
            polls.iter().any(|(_, r)| *r == Err(FailReason::Deferred)),
            "{key:?} on its own cadence: {polls:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn slcs_without_supply_cost_the_answering_rtu_nothing_until_it_goes_silent_too() {
    // Every SLC of the cabinet is dead (its circuit is off and the SLCs are
    // fed from it); the RTU answers. Each SLC cycle's silence is the SLCs'
    // own: the RTU, asked as the witness, answers, so the RTU is read at
    // every due time and the endpoint never backs off.
    let bench = Arc::new(Mutex::new(Bench::default()));
    bench.lock().dead.extend([2, 3]);
    let spec = cabinet_endpoint(serve_bench(bench.clone()).await, &[2, 3]);
    let t0 = Instant::now();
    // Then the RTU goes silent as well: with every SLC on a slower cadence
    // of its own, there is no witness to ask, and the RTU cycle alone
    // judges the endpoint failed after one timeout. (At 124 s: after the
    // SLC cycle of 120 s, whose probes take up to two timeouts, and before
    // the RTU cycle of 125 s.)
    let down = s(124.0);
    go_dead_at(&bench, down, &[RTU_UNIT]);
    let got = poll_for(spec, cabinet_config(), s(180.0)).await;
    let (before, after): (Vec<_>, Vec<_>) = got.iter().partition(|(t, _)| *t < down);
    for (t, o) in &before {
        assert!(o.sent && o.connected, "{:?} at {t:?}", o.class);
    }
    let rtu = results_of(&got, DeviceKey::Rtu(0));
    assert!(
        rtu.iter()
            .filter(|(t, _)| *t < down)
            .all(|(_, r)| r.is_ok()),
        "{rtu:?}"
    );
    assert_eq!(rtu.iter().filter(|(t, _)| *t < down).count(), 25, "{rtu:?}");
    for key in [DeviceKey::Lamp(0), DeviceKey::Lamp(1)] {
        let polls = results_of(&got, key);
        assert!(polls.iter().all(|(_, r)| r.is_err()), "{key:?}: {polls:?}");
    }
    let probes = asked(&bench, t0, 2);
    assert!(
        probes.iter().filter(|t| **t < down).count() <= 8,
        "unit 2 on a dead unit's cadence: {probes:?}"
    );

    let (t, o) = after[0];
    assert_eq!(o.class, PollClass::Rtu, "at {t:?}");
    assert!(
        o.sent && !o.connected,
        "the RTU cycle at {t:?} failed the endpoint"
    );
    assert!(
        close(o.elapsed, s(1.0)),
        "one timeout, no witness: {:?}",
        o.elapsed
    );
    assert!(after.iter().all(|(_, o)| !o.connected));
}

#[tokio::test(start_paused = true)]
async fn a_dead_witness_is_not_taken_for_the_endpoint_twice_running() {
    // The RTU and SLC 2 (the first witness) are dead, SLC 3 answers. The
    // first RTU cycle asks 2 and, with no answer, fails the endpoint; the
    // next one asks 3, which answers: from then on the endpoint is alive,
    // SLC 3 is read at every due time, and the RTU and SLC 2 fail on their
    // own.
    let bench = Arc::new(Mutex::new(Bench::default()));
    bench.lock().dead.extend([RTU_UNIT, 2]);
    let spec = cabinet_endpoint(serve_bench(bench.clone()).await, &[2, 3]);
    let got = poll_for(spec, cabinet_config(), s(120.0)).await;
    let failed: Vec<Duration> = got
        .iter()
        .filter(|(_, o)| o.sent && !o.connected)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(
        failed,
        vec![s(2.0)],
        "only the first cycle failed the endpoint"
    );
    // The SLC poll due with it fell in the short backoff: one failed poll,
    // fewer than `offline_after`.
    assert_eq!(got.iter().filter(|(_, o)| !o.sent).count(), 1);
    let slc3 = results_of(&got, DeviceKey::Lamp(1));
    assert_eq!(slc3.len(), 12);
    assert!(slc3[1..].iter().all(|(_, r)| r.is_ok()), "{slc3:?}");
    let rtu = results_of(&got, DeviceKey::Rtu(0));
    assert!(rtu.iter().all(|(_, r)| r.is_err()), "{rtu:?}");
    assert!(
        rtu.iter().any(|(_, r)| *r == Err(FailReason::Deferred)),
        "{rtu:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_gateways_exception_for_an_slc_is_an_answer_that_keeps_the_endpoint_alive() {
    // A unit-id gateway answers 0x0B for SLCs that do not answer it; the
    // RTU behind it sends nothing. The gateway answered: the endpoint is
    // alive, the RTU's silence its own.
    let bench = Arc::new(Mutex::new(Bench::default()));
    bench.lock().dead.insert(RTU_UNIT);
    bench.lock().gateway_answers.extend([2, 3]);
    let spec = cabinet_endpoint(serve_bench(bench.clone()).await, &[2, 3]);
    let got = poll_for(spec, cabinet_config(), s(60.0)).await;
    for (t, o) in &got {
        assert!(o.sent && o.connected, "{:?} at {t:?}", o.class);
    }
    let rtu = results_of(&got, DeviceKey::Rtu(0));
    assert!(
        rtu.iter().any(|(_, r)| *r == Err(FailReason::Deferred)),
        "{rtu:?}"
    );
    for (t, r) in results_of(&got, DeviceKey::Lamp(0)) {
        assert_eq!(r, Err(FailReason::Exception { code: 0x0B }), "at {t:?}");
    }
}
