//! The supervision figures over HTTP.

use super::inventory::scope;
use super::query::ApiQuery;
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::metrics::{self, Summary};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    district: Option<String>,
}

/// `GET /api/v1/metrics/summary[?district=ID]` — the figures now.
/// A district-scoped caller gets its own district's figures by default.
pub async fn summary(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> Result<Json<Summary>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let (city, districts) = metrics::summaries_now(&s.live);
    match district {
        None => Ok(Json(city)),
        Some(id) => districts
            .into_iter()
            .find(|d| d.scope == id)
            .map(Json)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown district `{id}`"))),
    }
}

/// `GET /api/v1/metrics/districts` — every district's figures and the city's.
/// A district-scoped caller sees its own district and no city total.
pub async fn districts(State(s): State<AppState>, p: Principal) -> Json<Value> {
    let (city, districts) = metrics::summaries_now(&s.live);
    let at = city.at;
    let city = p.district.is_none().then_some(city);
    let districts: Vec<_> = districts.into_iter().filter(|d| p.sees(&d.scope)).collect();
    Json(json!({ "at": at, "city": city, "districts": districts }))
}
