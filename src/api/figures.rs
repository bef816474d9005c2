//! The supervision figures over HTTP.

use super::error::{BadRequest, Unauthorized, Unavailable};
use super::history::{store, time};
use super::inventory::scope;
use super::query::ApiQuery;
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::figures::alarms::AlarmWindow;
use crate::figures::report::{self, OnlineRates};
use crate::figures::window::{self, Bucket, WindowError};
use crate::figures::{self, Summary};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SummaryQuery {
    /// This district's (400 if the caller sees no such district); the
    /// city's, or a district token's own, by default.
    pub(super) district: Option<String>,
}

/// `GET /api/v1/metrics/summary[?district=ID]` — the figures now.
/// A district-scoped caller gets its own district's figures by default.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/summary",
    tag = "figures",
    security(("bearer" = [])),
    params(SummaryQuery),
    responses(
        (status = 200, description = "The figures now of the city or a district", body = Summary),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn summary(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> Result<Json<Summary>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let now = now(&s).await?;
    let (city, districts) = &*now;
    match district {
        None => Ok(Json(city.clone())),
        Some(id) => districts
            .iter()
            .find(|d| d.scope == id)
            .cloned()
            .map(Json)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown district `{id}`"))),
    }
}

/// The figures now, shared with `/metrics` for `api.cache_ttl`
/// (`figures::NowCache`): computed on the blocking pool, since a computation
/// walks every lamp and the others wait for it.
pub(super) async fn now(s: &AppState) -> Result<std::sync::Arc<figures::CityNow>, ApiError> {
    let (cache, live, alarms) = (s.now_cache.clone(), s.live.clone(), s.alarms.clone());
    super::blocking(move || cache.get(&live, &alarms)).await
}

/// Every district's figures now, and the city's.
#[derive(Serialize, ToSchema)]
pub(super) struct DistrictFigures<'a> {
    at: DateTime<Utc>,
    /// `null` to a district token.
    city: Option<&'a Summary>,
    districts: Vec<&'a Summary>,
}

/// `GET /api/v1/metrics/districts` — every district's figures and the city's.
/// A district-scoped caller sees its own district and no city total.
#[utoipa::path(
    get,
    operation_id = "district_figures",
    path = "/api/v1/metrics/districts",
    tag = "figures",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The figures now of every district the caller sees, and the city's to a city-wide token", body = DistrictFigures<'_>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn districts(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Response, ApiError> {
    let now = now(&s).await?;
    let (city, districts) = &*now;
    let body = DistrictFigures {
        at: city.at,
        city: p.district.is_none().then_some(city),
        districts: districts.iter().filter(|d| p.sees(&d.scope)).collect(),
    };
    Ok(Json(body).into_response())
}

/// A window `[from, to)` of at most 93 days (31 with hourly buckets).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RatesQuery {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// This district's figures (400 if the caller sees no such district);
    /// the city's, or a district token's own, by default.
    district: Option<String>,
    /// Buckets cut at local boundaries in `gateway.time_zone`; one bucket,
    /// the whole window, without it.
    #[param(value_type = Option<Bucket>)]
    bucket: Option<String>,
}

pub(super) fn from_window(e: WindowError) -> ApiError {
    match e {
        WindowError::BadInput(m) => ApiError::BadRequest(m),
        WindowError::Db(e) => {
            tracing::warn!(error = %e, "figures query failed");
            ApiError::NotReady(format!("the store cannot answer now: {e}"))
        }
    }
}

/// The district positions a scope covers, with its id and name.
pub(super) fn positions(s: &AppState, district: Option<&str>) -> (Vec<usize>, String, String) {
    let inv = &s.live.inventory;
    match district.and_then(|d| inv.district_position(d)) {
        Some(p) => (
            vec![p],
            inv.districts[p].id.clone(),
            inv.districts[p].name.clone(),
        ),
        None => (
            (0..inv.districts.len()).collect(),
            "city".into(),
            "city".into(),
        ),
    }
}

/// `GET /api/v1/metrics/online-rates?from=&to=[&district=][&bucket=hour|day|month]`
/// — online rates, coverage and lighting rate over a window (see
/// `figures::window` for the rules). A district-scoped caller gets its own
/// district by default.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/online-rates",
    tag = "figures",
    security(("bearer" = [])),
    params(RatesQuery),
    responses(
        (status = 200, description = "The window's figures and its buckets'", body = OnlineRates),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn online_rates(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<RatesQuery>,
) -> Result<Json<OnlineRates>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    let bucket = q
        .bucket
        .as_deref()
        .map(str::parse::<Bucket>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    online_rates_of(&s, district, from, to, bucket)
        .await
        .map(Json)
}

/// The window's online rates, coverage and lighting rate of a district (or
/// the city) the caller was checked to see: the API's route and the
/// console's trend chart.
pub(crate) async fn online_rates_of(
    s: &AppState,
    district: Option<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Option<Bucket>,
) -> Result<OnlineRates, ApiError> {
    window::check(from, to, bucket).map_err(from_window)?;
    let store = store(s)?;
    let sums = window::sums(
        &store.db,
        &s.figures,
        from,
        to,
        bucket,
        district.as_deref(),
        Utc::now(),
    )
    .await
    .map_err(from_window)?;
    let (ds, scope, name) = positions(s, district.as_deref());
    let total = report::figures(&s.figures, &report::total(&sums), &ds);
    let buckets = if bucket.is_some() {
        sums.buckets
            .iter()
            .map(|b| report::figures(&s.figures, b, &ds))
            .collect()
    } else {
        vec![total.clone()]
    };
    Ok(OnlineRates {
        scope,
        name,
        from,
        to,
        bucket,
        time_zone: s.time_zone.name().to_string(),
        total,
        buckets,
    })
}

/// A window `[from, to)` of at most 93 days.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct AlarmWindowQuery {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`; the figures end at now
    /// if it is later.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// Only this district's figures (400 if the caller sees no such
    /// district); every district's and the city's, or a district token's
    /// own, by default.
    district: Option<String>,
}

/// `GET /api/v1/metrics/alarms?from=&to=[&district=]` — alarms raised and
/// cleared by kind, time to repair and the share within deadline by
/// severity, open overdue at the end, and the facility intact rate over the
/// window (`figures::alarms` has the rules), per district and for the city.
/// A district-scoped caller gets its own district only.
#[utoipa::path(
    get,
    operation_id = "alarm_figures",
    path = "/api/v1/metrics/alarms",
    tag = "figures",
    security(("bearer" = [])),
    params(AlarmWindowQuery),
    responses(
        (status = 200, description = "The window's alarm figures of every district the caller sees, and the city's to a city-wide caller without `district`", body = AlarmWindow),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn alarm_figures(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AlarmWindowQuery>,
) -> Result<Json<AlarmWindow>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    window::check(from, to, None).map_err(from_window)?;
    let store = store(&s)?;
    let w = figures::alarms::load(
        &store.db,
        &s.figures.inventory,
        from,
        to,
        district.as_deref(),
        &s.evaluation.settings().intact_targets,
    )
    .await
    .map_err(from_window)?;
    Ok(Json(w))
}
