//! Energy, the energy saving rate and the lamps' maintenance figures over
//! HTTP (the rules are `figures::energy`'s): this file only reads what they
//! need from the store and the schedule and hands it over.

use super::error::{BadRequest, Unauthorized, Unavailable};
use super::figures::{from_window, positions};
use super::history::{store, time};
use super::inventory::scope;
use super::query::{paging, ApiQuery};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::calendar::{bucket_bounds, Bucket};
use crate::figures::energy::{
    self, By, CabinetHours, EnergyQuery, EnergyReport, MaintenancePage, SavingReport,
};
use crate::figures::energy_window::EnergyWindow;
use crate::figures::window::{self, WindowError};
use crate::schedule::history;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use std::sync::Arc;

/// A window `[from, to)` of at most 93 days, cut by what and how.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct EnergyParams {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// This district only (400 if the caller sees no such district); the
    /// city, or a district token's own, by default.
    district: Option<String>,
    /// One row for the scope (`city`, the default), or one per district,
    /// cabinet, circuit or road of it.
    #[param(value_type = Option<By>)]
    by: Option<String>,
    /// `day` or `month`, cut at local boundaries in `gateway.time_zone`;
    /// one bucket, the window, without it.
    #[param(value_type = Option<String>, pattern = "^(day|month)$")]
    bucket: Option<String>,
}

/// A window and a scope.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SavingParams {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`; at most 93 days.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// This district only (400 if the caller sees no such district).
    district: Option<String>,
}

/// A window of at most 366 days, a scope and a page of its lamps.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct MaintenanceParams {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// This district's lamps only (400 if the caller sees no such district).
    district: Option<String>,
    /// 1 to 1000, default 100.
    limit: Option<usize>,
    offset: Option<usize>,
}

fn db_error(e: sqlx::Error) -> ApiError {
    from_window(WindowError::Db(e))
}

/// `GET /api/v1/metrics/energy?from=&to=[&district=][&by=…][&bucket=day|month]`
/// — kWh from the cabinet meters where they read, else from the SLCs, with
/// both and their difference.
#[utoipa::path(
    get,
    operation_id = "energy_figures",
    path = "/api/v1/metrics/energy",
    tag = "figures",
    security(("bearer" = [])),
    params(EnergyParams),
    responses(
        (status = 200, description = "The window's and its buckets' energy, one row per thing `by` names", body = EnergyReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn energy(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<EnergyParams>,
) -> Result<Json<EnergyReport>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    let bucket = match q.bucket.as_deref().map(str::parse::<Bucket>).transpose() {
        Ok(Some(Bucket::Hour)) => {
            return Err(ApiError::BadRequest(
                "energy is cut by `day` or `month`, not `hour`".into(),
            ))
        }
        Ok(b) => b,
        Err(e) => return Err(ApiError::BadRequest(e)),
    };
    let by =
        q.by.as_deref()
            .map(str::parse::<By>)
            .transpose()
            .map_err(ApiError::BadRequest)?
            .unwrap_or(By::City);
    window::check(from, to, bucket).map_err(from_window)?;
    let db = &store(&s)?.db;
    let inv = s.live.inventory.clone();
    let cabinet = |id: &str| inv.cabinet_position(id).map(|c| c as u32);
    let d = district.as_deref();
    let meters = db
        .meter_hours(from, to, d, cabinet)
        .await
        .map_err(db_error)?;
    let circuits = db
        .circuit_energy_hours(from, to, d, cabinet)
        .await
        .map_err(db_error)?;
    let roads = match by {
        By::Road => db.road_energy_hours(from, to, d).await.map_err(db_error)?,
        _ => Vec::new(),
    };
    let (ds, scope, name) = positions(&s, d);
    let bounds = bucket_bounds(from, to, bucket, s.time_zone);
    let time_zone = s.time_zone.name().to_string();
    // Folding a city's circuit-hours takes a while: off the async workers.
    super::blocking(move || {
        let hours = CabinetHours::new(&meters, &circuits);
        let query = EnergyQuery {
            inventory: &inv,
            bounds: &bounds,
            scope: &ds,
            city: (&scope, &name),
            by,
        };
        let rows = query.rows(
            &hours.by_cabinet(inv.cabinets.len(), &bounds),
            &energy::by_circuit(&circuits, &bounds),
            &energy::by_road(&roads, &bounds),
        );
        Json(EnergyReport {
            scope,
            name,
            from,
            to,
            by,
            bucket,
            time_zone,
            rows,
        })
    })
    .await
}

/// Each lamp's scheduled burning spans over the window by the schedule in
/// force at each moment of it (`schedule::history`), the one home of that
/// rule for the saving, the energy window and the report: the versions the
/// store recorded for the window, with the engine's own (which the writer
/// may not have written yet); a plan per piece over today's inventory (the
/// plan in force now for a piece of the version in force now, so a window
/// of one version costs what the plan alone does); their spans joined per
/// lamp. With no version recorded (no store), the plan in force now. None
/// without a schedule, so every lamp's baseline is its measured on-time.
pub(super) async fn burning_spans(
    s: &AppState,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Option<crate::calendar::Spans>>, ApiError> {
    let Some(schedule) = s.schedule.clone() else {
        return Ok(Vec::new());
    };
    let (plan, now) = schedule.current();
    let mut heads = match &s.store {
        Some(store) => store
            .db
            .schedule_version_heads(from, to)
            .await
            .map_err(db_error)?,
        None => Vec::new(),
    };
    if now.effective < to || heads.is_empty() {
        heads.push(history::VersionHead {
            effective: now.effective,
            digest: now.digest.clone(),
        });
    }
    let pieces = history::pieces(&heads, from, to);
    // The contents of the pieces not in force now, read before going off
    // the async workers.
    let mut contents: Vec<Option<(chrono::DateTime<chrono::Utc>, String, String)>> = Vec::new();
    for (start, digest) in &pieces {
        if *digest == now.digest {
            contents.push(None);
            continue;
        }
        let db = &store(s)?.db;
        let text = db
            .schedule_version_content(digest)
            .await
            .map_err(db_error)?
            .ok_or_else(|| {
                ApiError::Internal(format!("schedule version {digest} has no content"))
            })?;
        contents.push(Some((*start, digest.clone(), text)));
    }
    super::blocking(move || {
        let mut plans = Vec::with_capacity(pieces.len());
        for ((start, _), content) in pieces.iter().zip(contents) {
            let piece = match content {
                None => plan.clone(),
                Some((effective, digest, text)) => {
                    let version = history::ScheduleVersion {
                        effective,
                        digest,
                        content: text,
                    };
                    let parsed = version.parse().map_err(|e| {
                        ApiError::Internal(format!(
                            "schedule version {} (in force from {}) cannot be read: {e}",
                            version.digest, version.effective
                        ))
                    })?;
                    Arc::new(schedule.plan_of(parsed, plan.inventory.clone()))
                }
            };
            plans.push((*start, piece));
        }
        Ok(history::burning_spans(&plans, from, to))
    })
    .await?
}

/// `GET /api/v1/metrics/saving?from=&to=[&district=]` — the energy saving
/// rate (节电率) of the scope and of each of its districts, with the actual
/// energy and the baseline and what each is made of.
#[utoipa::path(
    get,
    operation_id = "saving_rate",
    path = "/api/v1/metrics/saving",
    tag = "figures",
    security(("bearer" = [])),
    params(SavingParams),
    responses(
        (status = 200, description = "The saving rate of the scope and its districts, with its inputs", body = SavingReport),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn saving(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<SavingParams>,
) -> Result<Json<SavingReport>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    window::check(from, to, None).map_err(from_window)?;
    let db = &store(&s)?.db;
    let inv = s.live.inventory.clone();
    let d = district.as_deref();
    let (ds, scope, name) = positions(&s, d);
    let spans = burning_spans(&s, from, to).await?;
    let window = EnergyWindow::load(db, &inv, &spans, from, to, d, &ds)
        .await
        .map_err(db_error)?;
    let settings = s.energy.clone();
    let time_zone = s.time_zone.name().to_string();
    super::blocking(move || {
        let (districts, total) = window.saving(&inv, &spans, &settings, &ds, (&scope, &name));
        Json(SavingReport {
            from,
            to,
            window_seconds: (to - from).num_milliseconds() as f64 / 1000.0,
            time_zone,
            total,
            districts,
        })
    })
    .await
}

/// `GET /api/v1/metrics/maintenance?from=&to=[&district=][&limit=&offset=]`
/// — each lamp's burning hours, switch count and energy over the window, in
/// inventory order, for maintenance planning.
#[utoipa::path(
    get,
    operation_id = "lamp_maintenance",
    path = "/api/v1/metrics/maintenance",
    tag = "figures",
    security(("bearer" = [])),
    params(MaintenanceParams),
    responses(
        (status = 200, description = "A page of the scope's lamps with their burning hours, switches and energy", body = MaintenancePage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn maintenance(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<MaintenanceParams>,
) -> Result<Json<MaintenancePage>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    energy::check_maintenance_window(from, to).map_err(from_window)?;
    let (limit, offset) = paging(q.limit, q.offset)?;
    let db = &store(&s)?.db;
    let inv = s.live.inventory.clone();
    let (ds, _, _) = positions(&s, district.as_deref());
    let lamps: Vec<usize> = (0..inv.lamps.len())
        .filter(|&l| {
            inv.cabinet_of_lamp(l)
                .and_then(|c| inv.district_of_cabinet(c))
                .is_some_and(|d| ds.contains(&d))
        })
        .collect();
    let page: Vec<usize> = lamps.iter().copied().skip(offset).take(limit).collect();
    // Only the page's lamps are read: a seek per lamp.
    let ids: Vec<&str> = page
        .iter()
        .filter(|&&l| inv.lamps[l].slc.is_some())
        .map(|&l| inv.lamps[l].id.as_str())
        .collect();
    let totals = db.lamp_totals(from, to, &ids).await.map_err(db_error)?;
    Ok(Json(MaintenancePage {
        from,
        to,
        total: lamps.len(),
        limit,
        offset,
        items: energy::maintenance(&inv, &page, &totals),
    }))
}
