//! Liveness, readiness and Prometheus metrics.

use super::{ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::fmt::Write;

pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready once every endpoint has been polled at least once: before that,
/// "now" figures would describe the gateway's start, not the city.
pub async fn readyz(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let live = s.live.read();
    let waiting = live.endpoints.iter().filter(|e| !e.polled).count();
    if waiting > 0 {
        return Err(ApiError::NotReady(format!(
            "{waiting} of {} endpoints not polled yet",
            live.endpoints.len()
        )));
    }
    let connected = live.endpoints.iter().filter(|e| e.connected).count();
    Ok(Json(json!({
        "status": "ready",
        "endpoints": live.endpoints.len(),
        "endpoints_connected": connected,
    })))
}

/// Prometheus text format; labels are low-cardinality (class, kind) only.
pub async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    let live = s.live.read();
    let mut out = String::with_capacity(2048);
    let mut gauge = |name: &str, help: &str, kind: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let eps = &live.endpoints;
    let connected = eps.iter().filter(|e| e.connected).count() as f64;
    gauge(
        "lampgw_endpoints",
        "Modbus endpoints configured",
        "gauge",
        &[("", eps.len() as f64)],
    );
    gauge(
        "lampgw_endpoints_connected",
        "Endpoints with an open connection",
        "gauge",
        &[("", connected)],
    );
    let cycles = |c: usize| eps.iter().map(|e| e.cycles[c]).sum::<u64>() as f64;
    gauge(
        "lampgw_poll_cycles_total",
        "Endpoint poll cycles completed",
        "counter",
        &[
            ("{class=\"rtu\"}", cycles(0)),
            ("{class=\"slc\"}", cycles(1)),
        ],
    );
    let worst = |c: usize| eps.iter().map(|e| e.last_cycle_ms[c]).fold(0.0, f64::max) / 1e3;
    gauge(
        "lampgw_poll_cycle_seconds_max",
        "Longest last poll cycle over the endpoints",
        "gauge",
        &[("{class=\"rtu\"}", worst(0)), ("{class=\"slc\"}", worst(1))],
    );
    let reads_ok = eps.iter().map(|e| e.reads_ok).sum::<u64>() as f64;
    let reads_failed = eps.iter().map(|e| e.reads_failed).sum::<u64>() as f64;
    gauge(
        "lampgw_modbus_reads_total",
        "Modbus read requests by result",
        "counter",
        &[
            ("{result=\"ok\"}", reads_ok),
            ("{result=\"failed\"}", reads_failed),
        ],
    );
    gauge(
        "lampgw_device_samples_total",
        "Successful device polls",
        "counter",
        &[("", live.samples_total as f64)],
    );
    let failures: Vec<(String, f64)> = live
        .failures_by_kind
        .iter()
        .map(|(k, v)| (format!("{{kind=\"{k}\"}}"), *v as f64))
        .collect();
    let failures: Vec<(&str, f64)> = failures.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    gauge(
        "lampgw_device_poll_failures_total",
        "Failed device polls by kind",
        "counter",
        &failures,
    );
    gauge(
        "lampgw_transitions_total",
        "Online/offline transitions",
        "counter",
        &[("", live.transitions_total as f64)],
    );
    drop(live);
    gauge(
        "lampgw_full_poll_cycles",
        "Poll cycles completed by every endpoint",
        "gauge",
        &[("", s.live.full_cycles() as f64)],
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
