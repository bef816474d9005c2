//! Liveness, readiness and Prometheus metrics.

use super::{ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

pub(super) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready once every endpoint has been polled at least once: before that,
/// "now" figures would describe the gateway's start, not the city. A degraded
/// store does not make the gateway unready: it still polls and serves "now",
/// and keeps what it cannot write in its spool; the body says `degraded`.
pub(super) async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let live = s.live.read();
    let waiting = live.endpoints.iter().filter(|e| !e.polled).count();
    if waiting > 0 {
        return Err(ApiError::NotReady(format!(
            "{waiting} of {} endpoints not polled yet",
            live.endpoints.len()
        )));
    }
    let connected = live.endpoints.iter().filter(|e| e.connected).count();
    let store = match &s.store {
        Some(st) => serde_json::to_value(st.view()).unwrap_or(Value::Null),
        None => json!({ "state": "disabled" }),
    };
    // The broker link is shown, not required: the API and polling serve
    // without it, and events wait in the outbox until it is back.
    let mqtt = s.mqtt.as_ref().map(|m| m.snapshot());
    Ok(Json(json!({
        "status": "ready",
        "endpoints": live.endpoints.len(),
        "endpoints_connected": connected,
        "store": store,
        "mqtt": mqtt,
    })))
}

/// Prometheus text format (0.0.4). Every subsystem renders its own
/// families (`state::metrics`, `figures::metrics`, `store::metrics`,
/// `mqtt::metrics`); the registry holds their collectors.
pub(super) async fn metrics(State(s): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut out = String::with_capacity(8192);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &s.metrics)
        .map_err(|e| ApiError::Internal(format!("cannot render metrics: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
