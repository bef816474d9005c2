//! Alarm webhooks over real sockets: an axum receiver on 127.0.0.1 gets the
//! changes in order, signed (the HMAC checked here by a computation of its
//! own over sha2), through a receiver that is down, across a restart of the
//! webhooks on the same folder, filtered; a body the receiver refuses is
//! dropped after three attempts while a 401 is retried until it passes.

use crate::common::eventually;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::Router;
use chrono::Utc;
use lamp_gateway::alarm::webhook::{self, metrics::WebhookMetrics, HookSnapshot, Webhooks};
use lamp_gateway::alarm::{
    Alarm, AlarmChange, AlarmKind, AlarmState, ChangeKind, DeviceKind, Severity, WebhookSettings,
};
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const GATEWAY: &str = "gw-webhook-test";

/// What the receiver answers to the `n`-th request (from 0) on a path.
enum Reply {
    Status(StatusCode, &'static str),
    /// Never answers.
    Hang,
}

type Answer = dyn Fn(&str, usize, &Value) -> Reply + Send + Sync;

/// One request as the receiver saw it, with the status it answered.
#[derive(Clone)]
struct Got {
    headers: HeaderMap,
    body: Bytes,
    json: Value,
    status: u16,
}

impl Got {
    fn alarm_id(&self) -> i64 {
        self.json["alarm"]["id"].as_i64().unwrap()
    }

    fn delivery(&self) -> &str {
        self.headers["x-lampgw-delivery"].to_str().unwrap()
    }
}

#[derive(Clone)]
struct Receiver {
    got: Arc<Mutex<BTreeMap<String, Vec<Got>>>>,
    answer: Arc<Answer>,
}

impl Receiver {
    async fn start(
        answer: impl Fn(&str, usize, &Value) -> Reply + Send + Sync + 'static,
    ) -> (SocketAddr, Receiver) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, Arc::new(answer))
    }

    fn serve(listener: tokio::net::TcpListener, answer: Arc<Answer>) -> (SocketAddr, Receiver) {
        let addr = listener.local_addr().unwrap();
        let r = Receiver {
            got: Arc::default(),
            answer,
        };
        let app = Router::new().fallback(receive).with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (addr, r)
    }

    fn got(&self, path: &str) -> Vec<Got> {
        self.got.lock().get(path).cloned().unwrap_or_default()
    }

    /// The alarm ids of the requests on `path` it accepted, in order.
    fn accepted(&self, path: &str) -> Vec<i64> {
        self.got(path)
            .iter()
            .filter(|g| g.status == 200)
            .map(Got::alarm_id)
            .collect()
    }
}

async fn receive(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let path = uri.path().to_string();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = r.got.lock().get(&path).map_or(0, Vec::len);
    let reply = (r.answer)(&path, n, &json);
    let (status, text) = match reply {
        Reply::Status(s, text) => (s, text),
        Reply::Hang => (StatusCode::GATEWAY_TIMEOUT, ""),
    };
    r.got.lock().entry(path).or_default().push(Got {
        headers,
        body,
        json,
        status: status.as_u16(),
    });
    if matches!(reply, Reply::Hang) {
        std::future::pending::<()>().await;
    }
    (status, text)
}

fn ok() -> Reply {
    Reply::Status(StatusCode::OK, "")
}

fn hook(name: &str, url: String) -> WebhookSettings {
    WebhookSettings {
        name: Some(name.into()),
        url,
        kinds: Vec::new(),
        severities: Vec::new(),
        districts: Vec::new(),
        secret: None,
        timeout: Duration::from_secs(5),
        // Retries in tens of milliseconds, not seconds.
        max_backoff: Duration::from_millis(50),
    }
}

fn change(n: i64, kind: AlarmKind, severity: Severity, district: &str) -> AlarmChange {
    let at = Utc::now();
    AlarmChange {
        change: ChangeKind::Raised,
        at,
        alarm: Alarm {
            id: 7_000_000 + n,
            kind,
            severity,
            state: AlarmState::Active,
            device_kind: DeviceKind::Lamp,
            device_id: format!("LX-0001-{n:03}"),
            circuit: Some(1),
            cabinet: Some("CAB-0001".into()),
            district: district.into(),
            raised_at: at,
            acknowledged_at: None,
            acknowledged_by: None,
            comment: None,
            cleared_at: None,
            closed_at: None,
            occurrences: 1,
            deadline: at + chrono::Duration::hours(24),
            overdue: false,
            detail: json!({"power_w": 3.5, "n": n}),
            version: 1,
        },
    }
}

fn lamp_failure(n: i64) -> AlarmChange {
    change(n, AlarmKind::LampFailure, Severity::Ordinary, "D01")
}

fn offer(w: &Webhooks, changes: Vec<AlarmChange>) {
    w.sink.offer_alarms(changes.into());
}

fn status(w: &Webhooks, name: &str) -> HookSnapshot {
    w.status
        .snapshot()
        .into_iter()
        .find(|h| h.name == name)
        .unwrap()
}

async fn stop(w: Webhooks, cancel: &CancellationToken) {
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), w.join())
        .await
        .expect("the delivery tasks stop within their grace");
}

/// HMAC-SHA256 (RFC 2104) written out over sha2, apart from the crate the
/// gateway signs with.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    hex::encode(outer.finalize())
}

fn metrics_text(w: &Webhooks) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(WebhookMetrics(w.status.clone())));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_receiver_in_order_each_signed_with_the_webhooks_secret() {
    // The computation here is HMAC-SHA256 itself (RFC 4231, test case 2).
    assert_eq!(
        hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let (addr, rx) = Receiver::start(|_, _, _| ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "a-shared-secret-the-receiver-knows";
    let mut signed = hook("signed", format!("http://{addr}/signed"));
    signed.secret = Some(secret.to_string().into());
    let plain = hook("plain", format!("http://{addr}/plain"));
    let cancel = CancellationToken::new();
    let w = webhook::start(&[signed, plain], GATEWAY, dir.path(), cancel.clone()).unwrap();
    let offered: Vec<AlarmChange> = (1..=5).map(lamp_failure).collect();
    offer(&w, offered[..2].to_vec());
    offer(&w, offered[2..3].to_vec());
    offer(&w, offered[3..].to_vec());
    eventually("both receivers have all five", || async {
        rx.got("/signed").len() == 5 && rx.got("/plain").len() == 5
    })
    .await;
    let mut ids = std::collections::BTreeSet::new();
    for (path, got) in [("/signed", rx.got("/signed")), ("/plain", rx.got("/plain"))] {
        for (g, want) in got.iter().zip(&offered) {
            assert_eq!(g.headers["content-type"], "application/json");
            assert_eq!(g.json["delivery"], g.delivery(), "{path}");
            assert!(ids.insert(g.delivery().to_string()), "delivery ids differ");
            assert_eq!(g.json["gateway"], GATEWAY);
            assert_eq!(g.json["change"], "raised");
            let alarm: Alarm = serde_json::from_value(g.json["alarm"].clone()).unwrap();
            assert_eq!(&alarm, &want.alarm, "{path}: the whole record, in order");
            let sig = g.headers.get("x-lampgw-signature");
            if path == "/signed" {
                let want = format!("sha256={}", hmac_sha256(secret.as_bytes(), &g.body));
                assert_eq!(sig.unwrap(), want.as_str(), "the HMAC of the exact body");
            } else {
                assert!(sig.is_none(), "no secret, no signature");
            }
        }
    }
    eventually("pending back to zero", || async {
        status(&w, "signed").pending == 0 && status(&w, "plain").pending == 0
    })
    .await;
    let s = status(&w, "signed");
    assert_eq!((s.delivered, s.failed_attempts, s.dropped), (5, 0, 0));
    assert!(s.last_success.is_some());
    let text = metrics_text(&w);
    for line in [
        "lampgw_webhook_delivered_total{webhook=\"signed\"} 5",
        "lampgw_webhook_delivered_total{webhook=\"plain\"} 5",
        "lampgw_webhook_pending{webhook=\"plain\"} 0",
        "lampgw_webhook_failed_attempts_total{webhook=\"signed\"} 0",
        "lampgw_webhook_dropped_total{webhook=\"signed\"} 0",
        "lampgw_webhook_last_success_timestamp_seconds{webhook=\"signed\"} ",
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
    assert!(!text.contains(secret));
    stop(w, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_all_twenty_changes_in_order_once_it_is_up() {
    // A port nothing listens on (yet): every attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let w = webhook::start(
        &[hook("late", format!("http://127.0.0.1:{port}/late"))],
        GATEWAY,
        dir.path(),
        cancel.clone(),
    )
    .unwrap();
    for n in 1..=20 {
        offer(&w, vec![lamp_failure(n)]);
    }
    eventually("attempts fail while the receiver is down", || async {
        status(&w, "late").failed_attempts >= 3
    })
    .await;
    let s = status(&w, "late");
    assert_eq!((s.pending, s.delivered), (20, 0), "all waiting, none lost");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let (_, rx) = Receiver::serve(listener, Arc::new(|_: &str, _: usize, _: &Value| ok()));
    eventually("all twenty delivered", || async {
        status(&w, "late").pending == 0
    })
    .await;
    let want: Vec<i64> = (1..=20).map(|n| lamp_failure(n).alarm.id).collect();
    assert_eq!(rx.accepted("/late"), want, "every one, in order, once");
    assert_eq!(rx.got("/late").len(), 20);
    let s = status(&w, "late");
    assert_eq!((s.delivered, s.dropped), (20, 0));
    stop(w, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_a_503_turned_down_goes_again_with_the_same_id_and_body_before_the_next() {
    let (addr, rx) = Receiver::start(|_, n, _| {
        if n < 3 {
            Reply::Status(StatusCode::SERVICE_UNAVAILABLE, "busy")
        } else {
            ok()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let w = webhook::start(
        &[hook("busy", format!("http://{addr}/busy"))],
        GATEWAY,
        dir.path(),
        cancel.clone(),
    )
    .unwrap();
    offer(&w, vec![lamp_failure(1), lamp_failure(2)]);
    eventually("both delivered", || async {
        status(&w, "busy").pending == 0
    })
    .await;
    let got = rx.got("/busy");
    let statuses: Vec<u16> = got.iter().map(|g| g.status).collect();
    assert_eq!(statuses, [503, 503, 503, 200, 200]);
    for g in &got[1..4] {
        assert_eq!(
            g.delivery(),
            got[0].delivery(),
            "a retry is the same delivery"
        );
        assert_eq!(g.body, got[0].body, "with the same bytes");
    }
    assert_eq!(got[4].alarm_id(), lamp_failure(2).alarm.id);
    assert_ne!(got[4].delivery(), got[0].delivery());
    let s = status(&w, "busy");
    assert_eq!((s.delivered, s.failed_attempts, s.dropped), (2, 3, 0));
    stop(w, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_folder_delivers_what_the_last_run_left_in_order() {
    let (addr, rx) = Receiver::start(
        |path, _, _| {
            if path == "/hang" {
                Reply::Hang
            } else {
                ok()
            }
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    // First run: a receiver that takes the request and never answers.
    let mut first = hook("orders", format!("http://{addr}/hang"));
    first.timeout = Duration::from_secs(60);
    let cancel = CancellationToken::new();
    let w = webhook::start(&[first], GATEWAY, dir.path(), cancel.clone()).unwrap();
    offer(&w, (1..=10).map(lamp_failure).collect());
    eventually("the first request is under way", || async {
        !rx.got("/hang").is_empty()
    })
    .await;
    let stopping = Instant::now();
    let sink = w.sink.clone();
    let status_before = w.status.clone();
    stop(w, &cancel).await;
    assert!(
        stopping.elapsed() < webhook::STOP_GRACE + Duration::from_secs(2),
        "a request under way is abandoned within its grace, not its 60 s timeout: {:?}",
        stopping.elapsed()
    );
    // Offered after the stop (the state task drains last): still spooled.
    sink.offer_alarms(vec![lamp_failure(11), lamp_failure(12)].into());
    assert_eq!(status_before.snapshot()[0].pending, 12);
    assert_eq!(status_before.snapshot()[0].delivered, 0);
    drop(sink);
    let spool = dir.path().join("orders/spool.jsonl");
    assert!(std::fs::metadata(&spool).unwrap().len() > 0);
    let first_id = rx.got("/hang")[0].delivery().to_string();

    // Second run, same folder, a receiver that answers.
    let cancel = CancellationToken::new();
    let w = webhook::start(
        &[hook("orders", format!("http://{addr}/ok"))],
        GATEWAY,
        dir.path(),
        cancel.clone(),
    )
    .unwrap();
    eventually("the last run's twelve delivered", || async {
        status(&w, "orders").pending == 0
    })
    .await;
    let want: Vec<i64> = (1..=12).map(|n| lamp_failure(n).alarm.id).collect();
    assert_eq!(rx.accepted("/ok"), want, "in order, none lost");
    assert_eq!(
        rx.got("/ok")[0].delivery(),
        first_id,
        "the delivery id survives the restart"
    );
    assert_eq!(status(&w, "orders").delivered, 12);
    assert_eq!(
        std::fs::metadata(&spool).unwrap().len(),
        0,
        "a drained spool is cut to zero"
    );
    stop(w, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_pass_only_the_kinds_severities_and_districts_they_name() {
    use AlarmKind::*;
    use Severity::*;
    let (addr, rx) = Receiver::start(|_, _, _| ok()).await;
    let url = |p: &str| format!("http://{addr}/{p}");
    let mut kinds = hook("kinds", url("kinds"));
    kinds.kinds = vec![Leakage, DoorOpen];
    let mut severities = hook("severities", url("severities"));
    severities.severities = vec![Emergency, Serious];
    let mut districts = hook("districts", url("districts"));
    districts.districts = vec!["D02".into()];
    let mut all_three = hook("all-three", url("all-three"));
    all_three.kinds = vec![LampFailure, SupplyLoss];
    all_three.severities = vec![Ordinary];
    all_three.districts = vec!["D01".into()];
    let everything = hook("everything", url("everything"));
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let w = webhook::start(
        &[kinds, severities, districts, all_three, everything],
        GATEWAY,
        dir.path(),
        cancel.clone(),
    )
    .unwrap();
    let changes = [
        change(1, LampFailure, Ordinary, "D01"),
        change(2, Leakage, Emergency, "D01"),
        change(3, DoorOpen, Ordinary, "D02"),
        change(4, SupplyLoss, Serious, "D01"),
        change(5, SupplyLoss, Ordinary, "D01"),
        change(6, LampFailure, Ordinary, "D02"),
        change(7, CommsLost, Ordinary, "D03"),
    ];
    offer(&w, changes[..4].to_vec());
    offer(&w, changes[4..].to_vec());
    let names = [
        "kinds",
        "severities",
        "districts",
        "all-three",
        "everything",
    ];
    // Pending counts what passed, spooled before offer returned: at zero,
    // nothing more can come.
    eventually("every queue drained", || async {
        names.iter().all(|n| status(&w, n).pending == 0)
    })
    .await;
    let id = |n: i64| changes[n as usize - 1].alarm.id;
    let want = |ns: &[i64]| ns.iter().map(|&n| id(n)).collect::<Vec<_>>();
    assert_eq!(rx.accepted("/kinds"), want(&[2, 3]));
    assert_eq!(rx.accepted("/severities"), want(&[2, 4]));
    assert_eq!(rx.accepted("/districts"), want(&[3, 6]));
    assert_eq!(rx.accepted("/all-three"), want(&[1, 5]));
    assert_eq!(rx.accepted("/everything"), want(&[1, 2, 3, 4, 5, 6, 7]));
    for n in names {
        assert_eq!(
            status(&w, n).delivered,
            rx.accepted(&format!("/{n}")).len() as u64
        );
    }
    stop(w, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_the_receiver_refuses_is_dropped_after_three_attempts_but_a_401_is_retried_until_it_passes(
) {
    let (addr, rx) = Receiver::start(|path, n, body| match path {
        "/strict" if body["alarm"]["device_id"] == "BAD" => {
            Reply::Status(StatusCode::UNPROCESSABLE_ENTITY, "unknown device")
        }
        "/auth" if n < 5 => Reply::Status(StatusCode::UNAUTHORIZED, "bad signature"),
        _ => ok(),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let w = webhook::start(
        &[
            hook("strict", format!("http://{addr}/strict")),
            hook("auth", format!("http://{addr}/auth")),
        ],
        GATEWAY,
        dir.path(),
        cancel.clone(),
    )
    .unwrap();
    let mut bad = lamp_failure(2);
    bad.alarm.device_id = "BAD".into();
    offer(&w, vec![lamp_failure(1), bad.clone(), lamp_failure(3)]);
    eventually("both queues drained", || async {
        status(&w, "strict").pending == 0 && status(&w, "auth").pending == 0
    })
    .await;
    let strict: Vec<(i64, u16)> = rx
        .got("/strict")
        .iter()
        .map(|g| (g.alarm_id(), g.status))
        .collect();
    let (one, two, three) = (
        lamp_failure(1).alarm.id,
        bad.alarm.id,
        lamp_failure(3).alarm.id,
    );
    assert_eq!(
        strict,
        [(one, 200), (two, 422), (two, 422), (two, 422), (three, 200)],
        "refused three times, dropped, and the next follows"
    );
    let s = status(&w, "strict");
    assert_eq!(
        (s.delivered, s.failed_attempts, s.dropped),
        (2, webhook::REFUSALS_BEFORE_DROP as u64, 1)
    );
    let auth: Vec<u16> = rx.got("/auth").iter().map(|g| g.status).collect();
    assert_eq!(auth, [401, 401, 401, 401, 401, 200, 200, 200]);
    assert_eq!(rx.accepted("/auth"), [one, two, three], "401 drops nothing");
    let s = status(&w, "auth");
    assert_eq!((s.delivered, s.failed_attempts, s.dropped), (3, 5, 0));
    assert!(metrics_text(&w).contains("lampgw_webhook_dropped_total{webhook=\"strict\"} 1"));
    stop(w, &cancel).await;
}

#[test]
fn start_refuses_names_unfit_for_a_folder_and_names_used_twice() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = "http://127.0.0.1:9/x".to_string();
    let mut unnamed = hook("x", url.clone());
    unnamed.name = None;
    let bad = [
        hook("../up", url.clone()),
        hook("twice", url.clone()),
        hook("twice", url.clone()),
        unnamed,
        hook("no-host", "http://".into()),
    ];
    let problems = webhook::problems(&bad);
    let keys: Vec<&str> = problems.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "alarms.webhooks[0].name",
            "alarms.webhooks[2].name",
            "alarms.webhooks[4].url"
        ],
        "{problems:?}"
    );
    assert_eq!(webhook::name_of(3, &bad[3]), "webhook-4");
    let err = rt
        .block_on(async { webhook::start(&bad, GATEWAY, dir.path(), CancellationToken::new()) })
        .unwrap_err();
    assert!(err.to_string().contains("alarms.webhooks[0].name"), "{err}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing opened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_url_goes_through_rustls_on_the_ring_provider() {
    // A plain-HTTP server behind an https:// URL: the TLS handshake fails,
    // which is a failed attempt like any, retried (no provider is missing,
    // nothing panics, nothing reaches the handler).
    let (addr, rx) = Receiver::start(|_, _, _| ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let w = webhook::start(
        &[hook("tls", format!("https://{addr}/tls"))],
        GATEWAY,
        dir.path(),
        cancel.clone(),
    )
    .unwrap();
    offer(&w, vec![lamp_failure(1)]);
    eventually("handshakes fail and are retried", || async {
        status(&w, "tls").failed_attempts >= 2
    })
    .await;
    assert!(!w.tasks[0].is_finished(), "the delivery task goes on");
    assert!(rx.got("/tls").is_empty());
    assert_eq!(status(&w, "tls").pending, 1);
    stop(w, &cancel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_is_a_failed_attempt_and_goes_again() {
    let (addr, rx) = Receiver::start(|_, n, _| if n == 0 { Reply::Hang } else { ok() }).await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let mut slow = hook("slow", format!("http://{addr}/slow"));
    slow.timeout = Duration::from_millis(200);
    let w = webhook::start(&[slow], GATEWAY, dir.path(), cancel.clone()).unwrap();
    offer(&w, vec![lamp_failure(1)]);
    eventually("delivered on the second attempt", || async {
        status(&w, "slow").pending == 0
    })
    .await;
    let got = rx.got("/slow");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].delivery(), got[1].delivery());
    let s = status(&w, "slow");
    assert_eq!((s.delivered, s.failed_attempts), (1, 1));
    stop(w, &cancel).await;
}
