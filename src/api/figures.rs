//! The supervision figures over HTTP.

use super::history::{store, time};
use super::inventory::scope;
use super::query::ApiQuery;
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::figures::report::{self, MonthlyReport, OnlineRates};
use crate::figures::window::{self, Bucket, WindowError};
use crate::figures::{self, Summary};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SummaryQuery {
    district: Option<String>,
}

/// `GET /api/v1/metrics/summary[?district=ID]` — the figures now.
/// A district-scoped caller gets its own district's figures by default.
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
    let (cache, live) = (s.now_cache.clone(), s.live.clone());
    super::blocking(move || cache.get(&live)).await
}

/// `GET /api/v1/metrics/districts` — every district's figures and the city's.
/// A district-scoped caller sees its own district and no city total.
pub(super) async fn districts(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<Value>, ApiError> {
    let now = now(&s).await?;
    let (city, districts) = &*now;
    let at = city.at;
    let city = p.district.is_none().then_some(city);
    let districts: Vec<_> = districts.iter().filter(|d| p.sees(&d.scope)).collect();
    Ok(Json(
        json!({ "at": at, "city": city, "districts": districts }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RatesQuery {
    from: Option<String>,
    to: Option<String>,
    district: Option<String>,
    bucket: Option<String>,
}

fn from_window(e: WindowError) -> ApiError {
    match e {
        WindowError::BadInput(m) => ApiError::BadRequest(m),
        WindowError::Db(e) => {
            tracing::warn!(error = %e, "figures query failed");
            ApiError::NotReady(format!("the store cannot answer now: {e}"))
        }
    }
}

/// The district positions a scope covers, with its id and name.
fn positions(s: &AppState, district: Option<&str>) -> (Vec<usize>, String, String) {
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
    window::check(from, to, bucket).map_err(from_window)?;
    let store = store(&s)?;
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
    let (ds, scope, name) = positions(&s, district.as_deref());
    let total = report::figures(&s.figures, &report::total(&sums), &ds);
    let buckets = if bucket.is_some() {
        sums.buckets
            .iter()
            .map(|b| report::figures(&s.figures, b, &ds))
            .collect()
    } else {
        vec![total.clone()]
    };
    Ok(Json(OnlineRates {
        scope,
        name,
        from,
        to,
        bucket,
        time_zone: s.time_zone.name().to_string(),
        total,
        buckets,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MonthlyQuery {
    month: Option<String>,
    district: Option<String>,
    format: Option<String>,
}

/// `GET /api/v1/reports/monthly?month=YYYY-MM[&district=][&format=json|csv]`
/// — every figure per district and for the city over a month in the city's
/// zone; CSV with `format=csv` or `Accept: text/csv`.
pub(super) async fn monthly(
    State(s): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<MonthlyQuery>,
) -> Result<Response, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "format `{other}` is not json or csv"
            )))
        }
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
    };
    let month = q
        .month
        .ok_or_else(|| ApiError::BadRequest("`month` is required (YYYY-MM)".into()))?;
    let (from, to) = report::month_window(&month, s.time_zone).map_err(from_window)?;
    let store = store(&s)?;
    let sums = window::sums(
        &store.db,
        &s.figures,
        from,
        to,
        None,
        district.as_deref(),
        Utc::now(),
    )
    .await
    .map_err(from_window)?;
    let live = s.live.clone();
    let (_, per) = super::blocking(move || figures::counts_now(&live)).await?;
    let (ds, _, _) = positions(&s, district.as_deref());
    let rows = report::rows(
        &s.figures,
        &per,
        &report::total(&sums),
        &ds,
        district.is_none(),
    );
    let report = MonthlyReport {
        month,
        from,
        to,
        time_zone: s.time_zone.name().to_string(),
        rows,
    };
    if csv {
        let body = report::csv(&report).map_err(|e| ApiError::Internal(e.to_string()))?;
        let name = format!(
            "attachment; filename=\"lighting-{}-{}.csv\"",
            report.month,
            district.as_deref().unwrap_or("city")
        );
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, name),
            ],
            body,
        )
            .into_response())
    } else {
        Ok(Json(report).into_response())
    }
}
