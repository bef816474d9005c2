//! API load against polling (issue 12): past `api.max_concurrent` requests
//! at once an `/api/v1` request is refused at once with 503 `overloaded` and
//! `Retry-After`, every other answer is what it would be without the load (no
//! other 5xx), the probes and `/metrics` still answer, and the pollers go on
//! completing cycles meanwhile. Behaviour only: the figures are printed, not
//! asserted.

use crate::common::{eventually, lamp_id, spawn_app_with, TestApp, ADMIN_TOKEN};
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: usize = 2;

async fn app() -> TestApp {
    spawn_app_with(
        SimConfig {
            endpoints: 4,
            slcs_per_endpoint: 50,
            ..SimConfig::default()
        },
        InventoryOptions::default(),
        |s| {
            s.api.max_concurrent = LIMIT;
            // Every request does its own work.
            s.api.cache_ttl = Duration::ZERO;
        },
    )
    .await
}

/// SLC cycles completed, summed over the endpoints.
fn slc_cycles(t: &TestApp) -> u64 {
    t.live.read().endpoints.iter().map(|e| e.cycles[1]).sum()
}

/// A command request whose body has not all arrived: its handler holds one
/// of the `LIMIT` places while it waits for the rest.
struct Trickle {
    stream: TcpStream,
    rest: &'static [u8],
}

impl Trickle {
    async fn start(t: &TestApp, lamp: &str) -> Trickle {
        let body: &'static [u8] = br#"{"action": "on"}"#;
        let addr = t.app.as_ref().unwrap().local_addr();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/lamps/{lamp}/commands HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..4]).await.unwrap();
        Trickle {
            stream,
            rest: &body[4..],
        }
    }

    /// Whether it has been answered already (it was shed: it came while
    /// every place was taken).
    async fn answered(&mut self) -> bool {
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_millis(5), self.stream.read(&mut buf));
        read.await.is_ok()
    }

    /// Sends the rest of the body; the status of the answer.
    async fn finish(mut self) -> u16 {
        self.stream.write_all(self.rest).await.unwrap();
        let mut text = String::new();
        self.stream.read_to_string(&mut text).await.unwrap();
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn past_the_limit_requests_are_shed_with_retry_after_and_polling_goes_on() {
    let t = app().await;
    t.all_online().await;
    let url = |p: &str| format!("{}{p}", t.base);

    // Every place taken by a request still receiving its body: the next
    // /api/v1 request is refused at once, whatever its path.
    let mut held = Vec::new();
    for i in 0..LIMIT {
        held.push(Trickle::start(&t, &lamp_id(0, i)).await);
    }
    let cycles_before = slc_cycles(&t);
    // Shed is a request that arrives while every place is taken: until both
    // held requests are in their handlers a probe may be answered, or take a
    // place and get one of them shed instead (then it is sent again).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for (i, h) in held.iter_mut().enumerate() {
            if h.answered().await {
                *h = Trickle::start(&t, &lamp_id(0, i)).await;
            }
        }
        let r = t
            .http
            .get(url("/api/v1/lamps"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        if r.status() == 503 {
            assert_eq!(
                r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
                Some("1"),
                "a 503 says when to ask again"
            );
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "overloaded", "{body}");
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            Instant::now() < deadline,
            "no request shed while every place is held"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Without a token too: the limit counts requests, not callers.
    let r = t.http.get(url("/api/v1/districts")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    // Probes and scrapes are not counted.
    for p in ["/healthz", "/readyz", "/metrics"] {
        let r = t.http.get(url(p)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p} answers while the API is full");
    }
    // The pollers go on while the API is full.
    eventually("poll cycles advance while every place is held", || async {
        slc_cycles(&t) >= cycles_before + 3 * 4
    })
    .await;
    println!(
        "every place held: {} SLC cycles completed meanwhile",
        slc_cycles(&t) - cycles_before
    );
    // The held requests are answered as they would have been.
    for h in held {
        assert_eq!(h.finish().await, 202);
    }

    // A burst of many at once against the limit: each is answered or shed,
    // nothing else; a shed one always says when to ask again.
    let cycles_before = slc_cycles(&t);
    let started = Instant::now();
    let mut asks = tokio::task::JoinSet::new();
    for i in 0..64 {
        let path = if i % 2 == 0 {
            "/api/v1/lamps?limit=1000"
        } else {
            "/api/v1/metrics/summary"
        };
        let (http, u) = (t.http.clone(), url(path));
        asks.spawn(async move {
            let r = http.get(u).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            let _ = r.bytes().await.unwrap();
            (status, retry_after)
        });
    }
    let answers = asks.join_all().await;
    let mut by_status = BTreeMap::<u16, usize>::new();
    for (status, retry_after) in &answers {
        *by_status.entry(*status).or_default() += 1;
        assert!(
            *status == 200 || *status == 503,
            "only answers and refusals: {status}"
        );
        if *status == 503 {
            assert!(retry_after, "every 503 carries Retry-After");
        }
    }
    let cycles_during = slc_cycles(&t) - cycles_before;
    println!(
        "burst of 64 with api.max_concurrent = {LIMIT}: {by_status:?} in {:?}; {cycles_during} SLC cycles meanwhile",
        started.elapsed()
    );
    assert!(by_status.get(&503).is_some_and(|n| *n > 0), "{by_status:?}");
    assert!(by_status.get(&200).is_some_and(|n| *n > 0), "{by_status:?}");

    // The limit is a number of requests at once, not a rate: after the
    // burst every request is answered again.
    let (status, lamps) = t.get("/api/v1/lamps?limit=1").await;
    assert_eq!(status, 200, "{lamps}");
    assert_eq!(lamps["total"], 200);
    t.stop().await;
}
