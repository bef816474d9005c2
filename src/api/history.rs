//! `GET /api/v1/lamps/{id}/history` and `/rtus/{id}/history` from the store.

use super::error::{BadRequest, NotFound, Unauthorized, Unavailable};
use super::inventory::{visible_lamp, visible_rtu};
use super::query::{ApiPath, ApiQuery};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::store::read::history::{self, HistoryError, Resolution};
use crate::store::Store;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;

/// A window `[from, to)` and its resolution. `from` and `to` are required
/// (400 without them, inverted, or past the resolution's limit).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct HistoryQuery {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// `raw` (windows up to 2 days), `hour` (93 days; 35 for an RTU) or
    /// `day` (3,660 days; 35 for an RTU); default: the finest the window
    /// allows.
    #[param(value_type = Option<Resolution>)]
    resolution: Option<String>,
}

struct Window {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    resolution: Resolution,
}

pub(super) fn time(name: &str, v: Option<&str>) -> Result<DateTime<Utc>, ApiError> {
    let v = v.ok_or_else(|| ApiError::BadRequest(format!("`{name}` is required (RFC 3339)")))?;
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ApiError::BadRequest(format!("`{name}`: `{v}` is not an RFC 3339 time: {e}")))
}

fn window(q: &HistoryQuery, rtu: bool) -> Result<Window, ApiError> {
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    let asked = q
        .resolution
        .as_deref()
        .map(str::parse::<Resolution>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let resolution = history::plan(from, to, asked, rtu).map_err(from_history)?;
    Ok(Window {
        from,
        to,
        resolution,
    })
}

fn from_history(e: HistoryError) -> ApiError {
    match e {
        HistoryError::BadRange(m) => ApiError::BadRequest(m),
        HistoryError::Db(e) => {
            tracing::warn!(error = %e, "history query failed");
            ApiError::NotReady(format!("the store cannot answer now: {e}"))
        }
    }
}

pub(super) fn store(s: &AppState) -> Result<&Arc<Store>, ApiError> {
    s.store
        .as_ref()
        .ok_or_else(|| ApiError::NotReady("no store configured (store.url = none)".into()))
}

/// A lamp's samples over a window: raw, hourly rollups or local days.
///
/// Another district's lamps and RTUs are 404 to a district-scoped token,
/// their history as much as their state.
#[utoipa::path(
    get,
    operation_id = "lamp_history",
    path = "/api/v1/lamps/{id}/history",
    tag = "history",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Lamp id"), HistoryQuery),
    responses(
        (status = 200, description = "The lamp's history; `items` are `LampPoint`s (raw) or `HourPoint`s", body = history::History),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn lamp(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<history::History>, ApiError> {
    visible_lamp(&s, &p, &id)?;
    let w = window(&q, false)?;
    let store = store(&s)?;
    history::lamp(&store.db, &id, w.from, w.to, w.resolution, s.time_zone)
        .await
        .map(Json)
        .map_err(from_history)
}

/// An RTU's samples over a window: raw, or hours and local days aggregated
/// from the raw samples.
#[utoipa::path(
    get,
    operation_id = "rtu_history",
    path = "/api/v1/rtus/{id}/history",
    tag = "history",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "RTU id"), HistoryQuery),
    responses(
        (status = 200, description = "The RTU's history; `items` are `RtuPoint`s (raw) or `RtuAggregate`s", body = history::History),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn rtu(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<history::History>, ApiError> {
    visible_rtu(&s, &p, &id)?;
    let w = window(&q, true)?;
    let store = store(&s)?;
    history::rtu(&store.db, &id, w.from, w.to, w.resolution, s.time_zone)
        .await
        .map(Json)
        .map_err(from_history)
}
