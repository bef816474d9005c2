//! The evaluation-grade lighting figures over HTTP (`figures::evaluation`
//! has the rule): per road, and per road class, district and city, now and
//! over a window (`figures::evaluation_window`).

use super::error::{BadRequest, Unauthorized, Unavailable};
use super::figures::from_window;
use super::history::{store, time};
use super::inventory::scope;
use super::query::{paging, ApiQuery};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::figures::alarms::{intact_by_class_now, ClassIntactNow};
use crate::figures::config::UnknownPolicy;
use crate::figures::evaluation::{Evaluation, RoadRow, ScopeRow};
use crate::figures::evaluation_window::{self, EvaluationWindow, RoadWindow, ScopeWindow};
use crate::figures::window;
use crate::inventory::RoadClass;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// The evaluation now, shared for `api.cache_ttl`
/// (`figures::evaluation::EvaluationCache`): computed on the blocking pool,
/// since a computation walks every lamp and the others wait for it.
async fn now(s: &AppState) -> Result<Arc<Evaluation>, ApiError> {
    let (cache, live) = (s.evaluation.clone(), s.live.clone());
    super::blocking(move || cache.get(&live)).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RoadsQuery {
    /// Only this district's roads (400 if the caller sees no such
    /// district); a district token's own by default.
    district: Option<String>,
    /// Only roads of this class (the Chinese names 快速路, 主干道, 次干道,
    /// 支路, 居住区, 景观 too); leaves out the `(no road)` rows.
    #[param(value_type = Option<RoadClass>)]
    class: Option<String>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    #[param(default = 0)]
    offset: Option<usize>,
}

/// A page of roads with their evaluation.
#[derive(Serialize, ToSchema)]
pub(super) struct RoadsAnswer<'a> {
    at: DateTime<Utc>,
    /// How lamps nobody can see count (`figures.unknown_counts_as`).
    unknown_counts_as: UnknownPolicy,
    total: usize,
    limit: usize,
    offset: usize,
    items: Vec<&'a RoadRow>,
}

/// `GET /api/v1/metrics/roads[?district=][&class=]` — the lighting rate of
/// every road now, every lamp of the inventory counted, with its dark lamps
/// against the cap for its size and whether it meets its class's target;
/// each district's lamps without a road as a `(no road)` row.
#[utoipa::path(
    get,
    operation_id = "road_figures",
    path = "/api/v1/metrics/roads",
    tag = "figures",
    security(("bearer" = [])),
    params(RoadsQuery),
    responses(
        (status = 200, description = "A page of roads, by district in inventory order, each district's roads in roads.csv order then its `(no road)` row", body = RoadsAnswer<'_>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn roads(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<RoadsQuery>,
) -> Result<Response, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let class = q
        .class
        .as_deref()
        .map(str::parse::<RoadClass>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let (limit, offset) = paging(q.limit, q.offset)?;
    let e = now(&s).await?;
    let matching = e.roads.iter().filter(|r| {
        district.as_deref().is_none_or(|d| r.district == d)
            && class.is_none_or(|c| r.class == Some(c))
    });
    let mut total = 0;
    let mut items = Vec::new();
    for (i, r) in matching.enumerate() {
        total += 1;
        if i >= offset && items.len() < limit {
            items.push(r);
        }
    }
    let body = RoadsAnswer {
        at: e.at,
        unknown_counts_as: e.unknown_counts_as,
        total,
        limit,
        offset,
        items,
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LightingQuery {
    /// Only this district's evaluation (400 if the caller sees no such
    /// district), without the city's; a district token's own by default.
    district: Option<String>,
}

/// The evaluation of every district the caller sees, and the city's.
#[derive(Serialize, ToSchema)]
pub(super) struct LightingAnswer<'a> {
    at: DateTime<Utc>,
    /// How lamps nobody can see count (`figures.unknown_counts_as`).
    unknown_counts_as: UnknownPolicy,
    /// `null` for one district (a district token, or `district=`).
    city: Option<LightingScope<'a>>,
    districts: Vec<LightingScope<'a>>,
}

/// A scope's lighting evaluation now, with the facility intact rate of
/// each road class it has roads of (设施完好率 by class, from the standing
/// alarms).
#[derive(Serialize, ToSchema)]
pub(super) struct LightingScope<'a> {
    #[serde(flatten)]
    evaluation: &'a ScopeRow,
    intact_classes: Vec<ClassIntactNow>,
}

impl<'a> LightingScope<'a> {
    fn new(
        evaluation: &'a ScopeRow,
        intact: &mut std::collections::HashMap<String, Vec<ClassIntactNow>>,
    ) -> Self {
        Self {
            intact_classes: intact.remove(&evaluation.scope).unwrap_or_default(),
            evaluation,
        }
    }
}

/// `GET /api/v1/metrics/lighting[?district=]` — the evaluation-grade
/// lighting rate now of the city and each district, with their rows per
/// road class against the class's target.
#[utoipa::path(
    get,
    operation_id = "lighting_evaluation",
    path = "/api/v1/metrics/lighting",
    tag = "figures",
    security(("bearer" = [])),
    params(LightingQuery),
    responses(
        (status = 200, description = "The city's evaluation (to a city-wide caller without `district`) and each district's, with their road classes", body = LightingAnswer<'_>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn lighting(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<LightingQuery>,
) -> Result<Response, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let e = now(&s).await?;
    let (inventory, engine) = (s.figures.inventory.clone(), s.alarms.clone());
    let targets = s.evaluation.settings().intact_targets;
    // By scope id: the districts in inventory order, then the city.
    let mut intact: std::collections::HashMap<String, Vec<ClassIntactNow>> =
        super::blocking(move || {
            let per = intact_by_class_now(&inventory, &engine.standing(Utc::now()), &targets);
            let ids = inventory.districts.iter().map(|d| d.id.clone());
            ids.chain(["city".to_string()]).zip(per).collect()
        })
        .await?;
    let mut with_intact = |evaluation| LightingScope::new(evaluation, &mut intact);
    let districts = e
        .districts
        .iter()
        .filter(|d| district.as_deref().is_none_or(|id| d.scope == id))
        .map(&mut with_intact)
        .collect();
    let body = LightingAnswer {
        at: e.at,
        unknown_counts_as: e.unknown_counts_as,
        city: district.is_none().then(|| with_intact(&e.city)),
        districts,
    };
    Ok(Json(body).into_response())
}

/// A window `[from, to)` of at most 93 days, by the hours that start in it.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RoadsWindowQuery {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// Only this district's roads (400 if the caller sees no such
    /// district); a district token's own by default.
    district: Option<String>,
    /// Only roads of this class (the Chinese names too); leaves out the
    /// `(no road)` rows.
    #[param(value_type = Option<RoadClass>)]
    class: Option<String>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    #[param(default = 0)]
    offset: Option<usize>,
}

/// A page of roads with their evaluation over the window.
#[derive(Serialize, ToSchema)]
pub(super) struct RoadsWindowAnswer<'a> {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// How lamps nobody could see count (`figures.unknown_counts_as`).
    unknown_counts_as: UnknownPolicy,
    total: usize,
    limit: usize,
    offset: usize,
    items: Vec<&'a RoadWindow>,
}

/// The window's bounds from a query, checked (`figures::window::check`).
fn bounds(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let from = time("from", from)?;
    let to = time("to", to)?;
    window::check(from, to, None).map_err(from_window)?;
    Ok((from, to))
}

/// The evaluation over the window of the city or of `district`.
async fn over(
    s: &AppState,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    district: Option<&str>,
) -> Result<EvaluationWindow, ApiError> {
    let store = store(s)?;
    evaluation_window::load(
        &store.db,
        &s.live.inventory,
        s.evaluation.settings(),
        from,
        to,
        district,
        Utc::now(),
    )
    .await
    .map_err(from_window)
}

/// `GET /api/v1/metrics/roads/window?from=&to=[&district=][&class=]` — the
/// lighting rate of every road over a window, from the same verdicts as
/// `/metrics/roads` sampled every `figures.evaluation_interval`, in
/// lamp-seconds, with whether it meets its class's target (the dark-lamp
/// cap is a check of the roads now).
#[utoipa::path(
    get,
    operation_id = "road_figures_window",
    path = "/api/v1/metrics/roads/window",
    tag = "figures",
    security(("bearer" = [])),
    params(RoadsWindowQuery),
    responses(
        (status = 200, description = "A page of roads over the window, by district in inventory order, each district's roads in roads.csv order then its `(no road)` row", body = RoadsWindowAnswer<'_>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn roads_window(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<RoadsWindowQuery>,
) -> Result<Response, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let (from, to) = bounds(q.from.as_deref(), q.to.as_deref())?;
    let class = q
        .class
        .as_deref()
        .map(str::parse::<RoadClass>)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let (limit, offset) = paging(q.limit, q.offset)?;
    let w = over(&s, from, to, district.as_deref()).await?;
    let matching = w
        .roads
        .iter()
        .filter(|r| class.is_none_or(|c| r.class == Some(c)));
    let mut total = 0;
    let mut items = Vec::new();
    for (i, r) in matching.enumerate() {
        total += 1;
        if i >= offset && items.len() < limit {
            items.push(r);
        }
    }
    let body = RoadsWindowAnswer {
        from,
        to,
        unknown_counts_as: w.unknown_counts_as,
        total,
        limit,
        offset,
        items,
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LightingWindowQuery {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// Only this district's evaluation (400 if the caller sees no such
    /// district), without the city's; a district token's own by default.
    district: Option<String>,
}

/// The evaluation over the window of every district the caller sees, and
/// the city's.
#[derive(Serialize, ToSchema)]
pub(super) struct LightingWindowAnswer {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// How lamps nobody could see count (`figures.unknown_counts_as`).
    unknown_counts_as: UnknownPolicy,
    /// `null` for one district (a district token, or `district=`).
    city: Option<ScopeWindow>,
    districts: Vec<ScopeWindow>,
}

/// `GET /api/v1/metrics/lighting/window?from=&to=[&district=]` — the
/// evaluation-grade lighting rate over a window of the city and each
/// district, with their rows per road class against the class's target,
/// the time the evaluation covered and its share of the window.
#[utoipa::path(
    get,
    operation_id = "lighting_evaluation_window",
    path = "/api/v1/metrics/lighting/window",
    tag = "figures",
    security(("bearer" = [])),
    params(LightingWindowQuery),
    responses(
        (status = 200, description = "The city's evaluation over the window (to a city-wide caller without `district`) and each district's, with their road classes", body = LightingWindowAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn lighting_window(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<LightingWindowQuery>,
) -> Result<Response, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let (from, to) = bounds(q.from.as_deref(), q.to.as_deref())?;
    let w = over(&s, from, to, district.as_deref()).await?;
    let body = LightingWindowAnswer {
        from,
        to,
        unknown_counts_as: w.unknown_counts_as,
        city: w.city,
        districts: w.districts,
    };
    Ok(Json(body).into_response())
}
