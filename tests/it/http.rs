//! The HTTP edge: request bodies are one JSON document sent as JSON, names
//! callers choose are restricted, the bearer scheme is matched in any case,
//! and the open endpoints (`/readyz`, `/metrics`) tell a stranger no more
//! than ready or not and ok or degraded.

use crate::common::db::{metric, PgTestDb, Proxy, PG_SERVER};
use crate::common::{eventually, lamp_id, spawn_app, spawn_app_with, TestApp, ADMIN_TOKEN};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::{json, Value};
use std::time::Duration;

fn small() -> SimConfig {
    SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 2,
        districts: 2,
        ..SimConfig::default()
    }
}

/// A request with a raw body and the headers given; the status and the
/// JSON answer.
async fn send(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut req = t
        .http
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(ADMIN_TOKEN)
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("request sent");
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn post_bodies_must_be_one_json_document_sent_as_json() {
    let t = spawn_app(small()).await;
    t.all_online().await;
    let lamp = format!("/api/v1/lamps/{}/commands", lamp_id(0, 0));
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let on = r#"{"action": "on"}"#;

    // A wrong or missing Content-Type: 415 with the error shape.
    for (method, path, headers, body) in [
        (post.clone(), lamp.as_str(), &[][..], on),
        (
            post.clone(),
            lamp.as_str(),
            &[("content-type", "text/plain")][..],
            on,
        ),
        (
            post.clone(),
            "/api/v1/commands",
            &[("content-type", "application/x-www-form-urlencoded")][..],
            r#"{"target": {"district": "D01"}, "action": "on"}"#,
        ),
        (
            put.clone(),
            "/api/v1/groups/avenue",
            &[("content-type", "text/json")][..],
            r#"{"lamps": []}"#,
        ),
    ] {
        let (status, reply) = send(&t, method, path, headers, body).await;
        assert_eq!(status, 415, "{path} {headers:?}: {reply}");
        assert_eq!(reply["error"]["code"], "unsupported_media_type", "{reply}");
    }

    // Anything after the document but whitespace: 400.
    for (method, path, body) in [
        (
            post.clone(),
            lamp.as_str(),
            r#"{"action": "on"} {"action": "off"}"#,
        ),
        (post.clone(), lamp.as_str(), r#"{"action": "on"}garbage"#),
        (
            post.clone(),
            "/api/v1/commands",
            r#"{"target": {"district": "D01"}, "action": "on"}]"#,
        ),
        (put.clone(), "/api/v1/groups/avenue", r#"{"lamps": []}{}"#),
    ] {
        let (status, reply) = send(&t, method, path, &[JSON], body).await;
        assert_eq!(status, 400, "{path} {body}: {reply}");
        assert_eq!(reply["error"]["code"], "bad_request", "{reply}");
    }

    // JSON with parameters, a `+json` type and trailing whitespace are fine.
    for (ct, body) in [
        (
            "application/json; charset=utf-8",
            "{\"action\": \"on\"}\r\n",
        ),
        ("Application/JSON", r#"{"action": "on"}"#),
        ("application/merge-patch+json", r#"{"action": "on"}"#),
    ] {
        let (status, reply) = send(&t, post.clone(), &lamp, &[("content-type", ct)], body).await;
        assert_eq!(status, 202, "{ct}: {reply}");
    }
    let (status, reply) = send(
        &t,
        put,
        "/api/v1/groups/avenue",
        &[JSON],
        "{\"lamps\": []}\n",
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    t.stop().await;
}

#[tokio::test]
async fn names_and_ids_callers_choose_are_restricted() {
    let t = spawn_app(small()).await;
    t.all_online().await;
    let body = json!({ "lamps": [lamp_id(0, 0)] }).to_string();
    let put = |name: String| {
        let (t, body) = (&t, body.clone());
        async move {
            send(
                t,
                reqwest::Method::PUT,
                &format!("/api/v1/groups/{name}"),
                &[JSON],
                &body,
            )
            .await
        }
    };
    // Percent-encoded in the path: NUL, a bidi override, a zero-width joiner,
    // markup, 8 KB, 65 characters, a leading space, a slash, MQTT wildcards.
    for name in [
        "a%00b".to_string(),
        "%E2%80%AEevil".to_string(),
        "ab%E2%80%8Dcd".to_string(),
        "%3Cscript%3E".to_string(),
        "x".repeat(8192),
        "y".repeat(65),
        "%20lead".to_string(),
        "a%2Fb".to_string(),
        "a%2B%23".to_string(),
    ] {
        let (status, reply) = put(name.clone()).await;
        assert_eq!(status, 422, "{}: {reply}", &name[..name.len().min(40)]);
        assert_eq!(reply["error"]["code"], "invalid", "{reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("name: "), "{message}");
        assert!(
            message.len() < 200,
            "the name is not echoed back: {message}"
        );
    }
    let (_, groups) = t.get("/api/v1/groups").await;
    assert_eq!(groups, json!({}), "none was defined");

    // Letters of any script, digits, inner spaces, `-_.:`, up to 64.
    for name in [
        "%E4%B8%BB%E5%B9%B2%E9%81%93%20north-1",
        "Ring_2.east:a",
        &"z".repeat(64),
    ] {
        let (status, reply) = put(name.to_string()).await;
        assert_eq!(status, 200, "{name}: {reply}");
    }
    let (_, groups) = t.get("/api/v1/groups").await;
    assert!(groups.get("主干道 north-1").is_some(), "{groups}");

    // The same rule for the caller's request ids.
    let lamp = format!("/api/v1/lamps/{}/commands", lamp_id(0, 0));
    let on = r#"{"action": "on"}"#;
    let (status, reply) = send(
        &t,
        reqwest::Method::POST,
        &lamp,
        &[JSON, ("idempotency-key", "<b>x</b>")],
        on,
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Idempotency-Key: "));
    let (status, reply) = send(
        &t,
        reqwest::Method::POST,
        &lamp,
        &[JSON],
        &json!({"action": "on", "request_id": "a\u{202e}b"}).to_string(),
    )
    .await;
    assert_eq!(status, 422, "{reply}");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("request_id: "));
    let (status, reply) = send(
        &t,
        reqwest::Method::POST,
        &lamp,
        &[JSON, ("idempotency-key", "retry-7f3a")],
        on,
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    t.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_in_any_case() {
    let t = spawn_app(small()).await;
    let get = |value: String| {
        let t = &t;
        async move {
            t.http
                .get(format!("{}/api/v1/districts", t.base))
                .header("authorization", value)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(
            get(format!("{scheme} {ADMIN_TOKEN}")).await,
            200,
            "{scheme}"
        );
    }
    assert_eq!(get(format!("bearer   {ADMIN_TOKEN}  ")).await, 200);
    assert_eq!(get(format!("Basic {ADMIN_TOKEN}")).await, 401);
    assert_eq!(get(format!("Bearer{ADMIN_TOKEN}")).await, 401);
    assert_eq!(get("bearer lgw_nope".into()).await, 401);
    t.stop().await;
}

const NORTH: &str = "lgw_test_http_north_viewer";

#[tokio::test]
async fn readyz_and_metrics_tell_a_stranger_only_ready_and_ok() {
    // The store behind a proxy we cut, the broker at a port nobody listens on.
    let pg = PgTestDb::new().await;
    let proxy = Proxy::start(PG_SERVER).await.expect("proxy binds");
    let url = pg.url_via(proxy.addr);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let broker_port = closed.local_addr().unwrap().port();
    drop(closed);
    let t = spawn_app_with(small(), InventoryOptions::default(), |s| {
        s.store.url = url.parse().unwrap();
        s.store.flush_interval = Duration::from_millis(50);
        s.store.write_timeout = Duration::from_secs(2);
        s.store.retry_max = Duration::from_millis(300);
        s.mqtt.url = format!("mqtt://127.0.0.1:{broker_port}").parse().unwrap();
        s.mqtt.reconnect_min = Duration::from_millis(50);
        s.mqtt.reconnect_max = Duration::from_millis(200);
        s.auth.tokens.push(TokenConfig {
            name: "north".into(),
            hash: hash_token(NORTH),
            role: Role::Viewer,
            district: Some("D01".into()),
        });
    })
    .await;
    t.all_online().await;
    proxy.sever();

    // A city-wide token (any role; the scheme in any case) gets the details.
    let details = || async {
        let r = t
            .http
            .get(format!("{}/readyz", t.base))
            .header("authorization", format!("bearer {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    eventually("store degraded with an error, broker refused", || async {
        let (_, b) = details().await;
        b["store"]["state"] == "degraded"
            && b["store"]["last_error"].is_string()
            && b["mqtt"]["connection_errors"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let (status, full) = details().await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["state"], "degraded", "{full}");
    let broker = full["mqtt"]["broker"].as_str().unwrap().to_string();
    assert!(broker.contains(&broker_port.to_string()), "{full}");
    let error = full["store"]["last_error"].as_str().unwrap().to_string();
    assert!(!error.is_empty());

    // Without a token, or with a district's: status and state, nothing else.
    let (status, text) = t.get_text("/readyz").await;
    assert_eq!(status, 200, "{text}");
    let public: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        public,
        json!({"status": "ready", "state": "degraded"}),
        "{text}"
    );
    let (status, north) = t.get_as(NORTH, "/readyz").await;
    assert_eq!((status, &north), (200, &public), "{north}");
    assert_eq!(t.get_as("lgw_nope", "/readyz").await.0, 401);

    // /metrics names neither the broker, the database nor the error.
    let (status, metrics) = t.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(metric(&metrics, "lampgw_store_degraded"), 1.0, "{metrics}");
    for secret in [
        broker.clone(),
        format!(":{broker_port}"),
        proxy.addr.to_string(),
        format!(":{}", proxy.addr.port()),
        error.clone(),
        pg.url_via(proxy.addr),
    ] {
        assert!(!metrics.contains(&secret), "/metrics shows `{secret}`");
    }
    assert!(!text.contains(&broker) && !text.contains(&error));
    t.stop().await;
    pg.drop_db().await;
}
