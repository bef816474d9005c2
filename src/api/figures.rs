//! The supervision figures over HTTP.

use super::query::ApiQuery;
use super::{ApiError, AppState};
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
pub async fn summary(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> Result<Json<Summary>, ApiError> {
    let (city, districts) = metrics::summaries_now(&s.live);
    match q.district {
        None => Ok(Json(city)),
        Some(id) => districts
            .into_iter()
            .find(|d| d.scope == id)
            .map(Json)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown district `{id}`"))),
    }
}

/// `GET /api/v1/metrics/districts` — every district's figures and the city's.
pub async fn districts(State(s): State<AppState>) -> Json<Value> {
    let (city, districts) = metrics::summaries_now(&s.live);
    Json(json!({ "at": city.at, "city": city, "districts": districts }))
}
