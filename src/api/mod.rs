//! The HTTP API (axum). `router(state)` is separate from serving, so tests can
//! drive it over a real socket on a port of their own.

mod auth;
mod commands;
mod config;
mod error;
mod figures;
mod health;
mod history;
mod inventory;
mod query;

pub use config::ApiSettings;
pub use error::ApiError;

use crate::auth::Tokens;
use crate::control::Control;
use crate::state::LiveState;
use auth::require_token;
use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

#[derive(Debug, Clone)]
pub struct AppState {
    pub live: Arc<LiveState>,
    pub tokens: Arc<Tokens>,
    pub control: Arc<Control>,
    /// The figures now for `/metrics`, computed at most once a second.
    pub now_cache: Arc<crate::figures::NowCache>,
    /// `None` when `store.url` is `none`.
    pub store: Option<Arc<crate::store::Store>>,
    pub time_zone: chrono_tz::Tz,
    /// The MQTT broker link, when MQTT is configured.
    pub mqtt: Option<Arc<crate::mqtt::LinkStatus>>,
    /// The dial-in DTUs of `dtu:` endpoints (empty when there are none).
    pub dialin: Arc<crate::dialin::Registry>,
    /// Every subsystem's Prometheus collector, for `/metrics`.
    pub metrics: Arc<prometheus_client::registry::Registry>,
    /// What the windowed figures need of the inventory and the gateway.
    pub figures: Arc<crate::figures::window::Context>,
}

pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/districts", get(inventory::districts))
        .route("/districts/{id}", get(inventory::district))
        .route("/cabinets", get(inventory::cabinets))
        .route("/cabinets/{id}", get(inventory::cabinet))
        .route("/rtus", get(inventory::rtus))
        .route("/rtus/{id}", get(inventory::rtu))
        .route("/lamps", get(inventory::lamps))
        .route("/lamps/{id}", get(inventory::lamp))
        .route("/transitions", get(inventory::transitions))
        .route("/lamps/{id}/history", get(history::lamp))
        .route("/rtus/{id}/history", get(history::rtu))
        .route("/metrics/summary", get(figures::summary))
        .route("/metrics/districts", get(figures::districts))
        .route("/metrics/online-rates", get(figures::online_rates))
        .route("/reports/monthly", get(figures::monthly))
        .route("/lamps/{id}/commands", post(commands::lamp_command))
        .route("/commands", post(commands::group_command))
        .route("/commands/{id}", get(commands::get_command))
        .route("/audit", get(commands::audit))
        .route("/groups", get(commands::groups))
        .route(
            "/groups/{name}",
            get(commands::group).put(commands::put_group),
        )
        .route_layer(middleware::from_fn_with_state(
            state.tokens.clone(),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", v1)
        .fallback(|| async { ApiError::NotFound("no such path".into()) })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
