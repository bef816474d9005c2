//! Liveness, readiness and Prometheus metrics.

use super::error::{ErrorCode, ErrorDetail, Unauthorized};
use super::{ApiError, AppState};
use crate::dialin::DtuStatus;
use crate::mqtt::LinkSnapshot;
use crate::store::StatusView;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`: the process answers.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "probes",
    responses((status = 200, description = "The process answers", body = Health))
)]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReadyStatus {
    Ready,
    NotReady,
}

/// `degraded`: the store is failing or spooling, or the broker link is down;
/// the gateway still polls, serves and loses nothing.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ReadyState {
    Ok,
    Degraded,
}

/// The answer of `/readyz`. The fields after `error` are the details: a
/// city-wide token gets them, any other caller only `status` and `state`.
#[derive(Serialize, ToSchema)]
pub(super) struct Readiness {
    status: ReadyStatus,
    state: ReadyState,
    /// With `not_ready`: the error shape every other failure has, saying no
    /// more than the status.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints_connected: Option<usize>,
    /// Endpoints not polled yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoints_waiting: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<StoreReport>,
    /// The broker link, `null` without MQTT (shown, not required).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<LinkSnapshot>)]
    mqtt: Option<Option<LinkSnapshot>>,
    /// Each dial-in DTU's connection, when the inventory has `dtu:` endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    dialin: Option<Vec<DtuStatus>>,
}

/// The store's state, or `{"state": "disabled"}` with `store.url = none`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum StoreReport {
    Running(StatusView),
    Disabled { state: Disabled },
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Disabled {
    Disabled,
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
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "probes",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Every endpoint has been polled at least once", body = Readiness),
        (status = 401, response = Unauthorized),
        (status = 503, description = "`not_ready`: some endpoint has not been polled yet", body = Readiness),
    )
)]
pub(super) async fn readyz(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let caller = super::auth::principal(&s.tokens, &headers)?;
    let details = caller.is_some_and(|p| p.district.is_none());
    let live = s.live.read();
    // In cluster mode, of the endpoints this instance polls: the others'
    // are another instance's to poll.
    let mine = |address: &str| s.cluster.as_ref().is_none_or(|c| c.polls_here(address));
    let waiting = live
        .endpoints
        .iter()
        .filter(|e| !e.polled && mine(&e.address))
        .count();
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
        (StatusCode::OK, ReadyStatus::Ready)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, ReadyStatus::NotReady)
    };
    let body = Readiness {
        status,
        state: if degraded {
            ReadyState::Degraded
        } else {
            ReadyState::Ok
        },
        error: (waiting > 0).then(|| ErrorDetail {
            code: ErrorCode::NotReady,
            message: "not every endpoint has been polled yet".into(),
        }),
        endpoints: details.then_some(total),
        endpoints_connected: details.then_some(connected),
        endpoints_waiting: details.then_some(waiting),
        store: details.then_some(match store {
            Some(v) => StoreReport::Running(v),
            None => StoreReport::Disabled {
                state: Disabled::Disabled,
            },
        }),
        mqtt: details.then_some(mqtt),
        dialin: (details && !s.dialin.is_empty()).then(|| s.dialin.status()),
    };
    Ok((code, Json(body)))
}

/// Prometheus text format (0.0.4). Every subsystem renders its own
/// families (`state::metrics`, `figures::metrics`, `store::metrics`,
/// `mqtt::metrics`); the registry holds their collectors.
/// Rendered on the blocking pool: the figures' collector may have to walk
/// every lamp (or wait for another caller doing so, `figures::NowCache`).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "probes",
    responses(
        (status = 200, description = "Every family of the gateway's collectors", content_type = "text/plain; version=0.0.4", body = String),
    )
)]
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
