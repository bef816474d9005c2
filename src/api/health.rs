//! Liveness, readiness and Prometheus metrics.

use super::{ApiError, AppState};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready once every endpoint has been polled at least once: before that,
/// "now" figures would describe the gateway's start, not the city. A degraded
/// store does not make the gateway unready: it still polls and serves "now",
/// and keeps what it cannot write in its spool; `state` says `degraded`.
///
/// Without a token the answer is for probes: `status` (`ready`/`not_ready`)
/// and `state` (`ok`/`degraded`) only. The details — endpoint counts, the
/// store's queue and last error, the broker's address and link, each dial-in
/// DTU's connection and peer address — describe
/// the whole gateway and its network, so they need a city-wide token (any
/// role); a district token gets the probe's answer. A wrong token is 401, so
/// a misconfigured monitor notices.
pub(super) async fn readyz(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let caller = super::auth::principal(&s.tokens, &headers)?;
    let details = caller.is_some_and(|p| p.district.is_none());
    let live = s.live.read();
    let waiting = live.endpoints.iter().filter(|e| !e.polled).count();
    let connected = live.endpoints.iter().filter(|e| e.connected).count();
    let total = live.endpoints.len();
    drop(live);
    let store = s.store.as_ref().map(|st| st.view());
    // The broker link is shown, not required: the API and polling serve
    // without it, and events wait in the outbox until it is back.
    let mqtt = s.mqtt.as_ref().map(|m| m.snapshot());
    let degraded = store.as_ref().is_some_and(|v| v.state != "ok")
        || mqtt.as_ref().is_some_and(|m| !m.connected);
    let (code, status) = if waiting == 0 {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    let state = if degraded { "degraded" } else { "ok" };
    let mut body = json!({ "status": status, "state": state });
    if waiting > 0 {
        // The error shape every other failure has, saying no more than the status.
        body["error"] = json!({
            "code": "not_ready",
            "message": "not every endpoint has been polled yet",
        });
    }
    if details {
        body["endpoints"] = json!(total);
        body["endpoints_connected"] = json!(connected);
        body["endpoints_waiting"] = json!(waiting);
        body["store"] = match store {
            Some(v) => serde_json::to_value(v).unwrap_or(Value::Null),
            None => json!({ "state": "disabled" }),
        };
        body["mqtt"] = json!(mqtt);
        // Each dial-in endpoint's DTU connection, when the inventory has any.
        if !s.dialin.is_empty() {
            body["dialin"] = json!(s.dialin.status());
        }
    }
    Ok((code, Json(body)))
}

/// Prometheus text format (0.0.4). Every subsystem renders its own
/// families (`state::metrics`, `figures::metrics`, `store::metrics`,
/// `mqtt::metrics`); the registry holds their collectors.
/// Rendered on the blocking pool: the figures' collector may have to walk
/// every lamp (or wait for another caller doing so, `figures::NowCache`).
pub(super) async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let registry = s.metrics.clone();
    let out = super::blocking(move || {
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).map(|()| out)
    })
    .await?
    .map_err(|e| ApiError::Internal(format!("cannot render metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
