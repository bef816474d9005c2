//! The night plan over HTTP: the book's objects (`/programs`,
//! `/calendars`, `/assignments`, `/emergency-shifts`), a day's preview, sun
//! times and what every target is now. Viewers read; city-wide operators
//! and admins edit programs and calendars; operators and admins edit
//! assignments and emergency shifts, a district operator only those whose
//! scope lies in their district (another district's scope is refused as an
//! unknown one).

use super::query::{ApiPath, ApiQuery, JsonBody};
use super::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::inventory::Inventory;
use crate::schedule::model::{Assignment, Book, Calendar, EmergencyShift, Program, Scope};
use crate::schedule::plan::Target;
use crate::schedule::{Schedule, ScheduleError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

fn engine(s: &AppState) -> Result<Arc<Schedule>, ApiError> {
    s.schedule
        .clone()
        .ok_or_else(|| ApiError::NotFound("schedules are off (schedule.enabled = false)".into()))
}

fn invalid(e: ScheduleError) -> ApiError {
    match e {
        ScheduleError::Invalid(m) => ApiError::Unprocessable(m),
        e => ApiError::Internal(e.to_string()),
    }
}

/// Whether the caller may see (and, with the role, edit) a scope.
fn scope_visible(
    p: &Principal,
    inv: &Inventory,
    groups: &std::collections::BTreeMap<String, Vec<String>>,
    scope: &Scope,
) -> bool {
    let Some(d) = &p.district else { return true };
    match scope {
        Scope::City => false,
        Scope::District(x) => x == d,
        Scope::Cabinet(c) | Scope::Circuit { cabinet: c, .. } => {
            inv.cabinet(c).is_some_and(|c| c.district == *d)
        }
        Scope::Group(g) => groups.get(g).is_some_and(|lamps| {
            !lamps.is_empty() && lamps.iter().all(|l| p.visible_lamp(inv, l).is_some())
        }),
        Scope::Lamps(ids) => {
            !ids.is_empty() && ids.iter().all(|l| p.visible_lamp(inv, l).is_some())
        }
    }
}

fn can_edit_city(p: &Principal) -> Result<(), ApiError> {
    if p.role == Role::Viewer {
        return Err(ApiError::Forbidden(format!(
            "`{}` has the viewer role and cannot edit schedules",
            p.name
        )));
    }
    if p.district.is_some() {
        return Err(ApiError::Forbidden(
            "programs and calendars are city-wide: a city-wide operator or admin edits them".into(),
        ));
    }
    Ok(())
}

/// `GET /api/v1/schedules` — the whole book as the caller sees it.
pub(super) async fn book(State(s): State<AppState>, p: Principal) -> Result<Json<Value>, ApiError> {
    let e = engine(&s)?;
    let b = e.book();
    let inv = s.control.wiring().live.inventory.clone();
    let groups = s.control.groups();
    let vis = |scope: &Scope| scope_visible(&p, &inv, &groups, scope);
    Ok(Json(json!({
        "time_zone": e.time_zone().name(),
        "programs": b.programs,
        "calendars": b.calendars,
        "assignments": b.assignments.iter().filter(|a| vis(&a.scope)).collect::<Vec<_>>(),
        "emergency_shifts": b.emergency_shifts.iter().filter(|x| vis(&x.scope)).collect::<Vec<_>>(),
        "holds": e.holds(),
    })))
}

/// The kinds of object, as their paths name them.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Programs,
    Calendars,
    Assignments,
    Shifts,
}

fn put_into(book: &mut Book, kind: Kind, id: &str, body: &[u8]) -> Result<(), ApiError> {
    let parse_err = |e: serde_json::Error| ApiError::Unprocessable(format!("body: {e}"));
    let same_id = |got: &str| -> Result<(), ApiError> {
        if got != id {
            return Err(ApiError::Unprocessable(format!(
                "id: `{got}` in the body, `{id}` in the path"
            )));
        }
        Ok(())
    };
    macro_rules! upsert {
        ($list:expr, $ty:ty) => {{
            let v: $ty = serde_json::from_slice(body).map_err(parse_err)?;
            same_id(&v.id)?;
            match $list.iter_mut().find(|x| x.id == id) {
                Some(x) => *x = v,
                None => $list.push(v),
            }
        }};
    }
    match kind {
        Kind::Programs => upsert!(book.programs, Program),
        Kind::Calendars => upsert!(book.calendars, Calendar),
        Kind::Assignments => upsert!(book.assignments, Assignment),
        Kind::Shifts => upsert!(book.emergency_shifts, EmergencyShift),
    }
    Ok(())
}

fn scope_of(book: &Book, kind: Kind, id: &str) -> Option<Scope> {
    match kind {
        Kind::Assignments => book
            .assignments
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.scope.clone()),
        Kind::Shifts => book
            .emergency_shifts
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.scope.clone()),
        _ => None,
    }
}

fn check_edit(
    s: &AppState,
    p: &Principal,
    book: &Book,
    kind: Kind,
    id: &str,
) -> Result<(), ApiError> {
    match kind {
        Kind::Programs | Kind::Calendars => can_edit_city(p),
        Kind::Assignments | Kind::Shifts => {
            if !p.can_control() {
                return Err(ApiError::Forbidden(format!(
                    "`{}` has the viewer role and cannot edit schedules",
                    p.name
                )));
            }
            let inv = s.control.wiring().live.inventory.clone();
            let groups = s.control.groups();
            match scope_of(book, kind, id) {
                Some(scope) if !scope_visible(p, &inv, &groups, &scope) => {
                    Err(ApiError::NotFound(format!("no such object `{id}`")))
                }
                _ => Ok(()),
            }
        }
    }
}

/// `PUT /api/v1/{kind}/{id}` — create or replace one object.
pub(super) async fn put(
    kind: Kind,
    s: AppState,
    p: Principal,
    id: String,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let e = engine(&s)?;
    let mut book = (*e.book()).clone();
    check_edit(&s, &p, &book, kind, &id)?;
    put_into(&mut book, kind, &id, &body)?;
    // The new object's scope must lie in the caller's district too.
    if let Some(scope) = scope_of(&book, kind, &id) {
        let inv = s.control.wiring().live.inventory.clone();
        if !scope_visible(&p, &inv, &s.control.groups(), &scope) {
            return Err(ApiError::Unprocessable(
                "scope: unknown district, cabinet, circuit, group or lamp".into(),
            ));
        }
    }
    e.replace_book(book).map_err(invalid)?;
    Ok((StatusCode::OK, Json(json!({ "id": id, "saved": true }))))
}

/// `DELETE /api/v1/{kind}/{id}`.
pub(super) async fn delete(
    kind: Kind,
    s: AppState,
    p: Principal,
    id: String,
) -> Result<StatusCode, ApiError> {
    let e = engine(&s)?;
    let mut book = (*e.book()).clone();
    check_edit(&s, &p, &book, kind, &id)?;
    let before = (
        book.programs.len(),
        book.calendars.len(),
        book.assignments.len(),
        book.emergency_shifts.len(),
    );
    match kind {
        Kind::Programs => book.programs.retain(|x| x.id != id),
        Kind::Calendars => book.calendars.retain(|x| x.id != id),
        Kind::Assignments => book.assignments.retain(|x| x.id != id),
        Kind::Shifts => book.emergency_shifts.retain(|x| x.id != id),
    }
    let after = (
        book.programs.len(),
        book.calendars.len(),
        book.assignments.len(),
        book.emergency_shifts.len(),
    );
    if before == after {
        return Err(ApiError::NotFound(format!("no such object `{id}`")));
    }
    e.replace_book(book).map_err(invalid)?;
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! routes_for {
    ($put:ident, $delete:ident, $kind:expr) => {
        pub(super) async fn $put(
            State(s): State<AppState>,
            p: Principal,
            ApiPath(id): ApiPath<String>,
            JsonBody(body): JsonBody,
        ) -> Result<(StatusCode, Json<Value>), ApiError> {
            put($kind, s, p, id, body).await
        }

        pub(super) async fn $delete(
            State(s): State<AppState>,
            p: Principal,
            ApiPath(id): ApiPath<String>,
        ) -> Result<StatusCode, ApiError> {
            delete($kind, s, p, id).await
        }
    };
}

routes_for!(put_program, delete_program, Kind::Programs);
routes_for!(put_calendar, delete_calendar, Kind::Calendars);
routes_for!(put_assignment, delete_assignment, Kind::Assignments);
routes_for!(put_shift, delete_shift, Kind::Shifts);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewQuery {
    date: NaiveDate,
    district: Option<String>,
    cabinet: Option<String>,
    lamp: Option<String>,
}

/// `GET /api/v1/schedules/preview?date=…[&district=|&cabinet=|&lamp=]` —
/// the day's switch events per target.
pub(super) async fn preview(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<Value>, ApiError> {
    let e = engine(&s)?;
    let plan = e.plan();
    let inv = plan.inventory.clone();
    let tz = e.time_zone();
    let cabinet = match &q.cabinet {
        Some(c) => Some(
            p.visible_cabinet(&inv, c)
                .ok_or_else(|| ApiError::NotFound(format!("unknown cabinet `{c}`")))?,
        ),
        None => None,
    };
    let lamp = match &q.lamp {
        Some(l) => Some(
            p.visible_lamp(&inv, l)
                .ok_or_else(|| ApiError::NotFound(format!("unknown lamp `{l}`")))?,
        ),
        None => None,
    };
    if let Some(d) = &q.district {
        p.visible_district(&inv, d)
            .ok_or_else(|| ApiError::NotFound(format!("unknown district `{d}`")))?;
    }
    let holds = e.holds();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for t in plan.targets() {
        let (district, cab) = match t {
            Target::Lamp(l) => {
                if lamp.is_some_and(|x| x != l) {
                    continue;
                }
                let c = inv.cabinet_of_lamp(l);
                (
                    c.map(|c| inv.cabinets[c].district.clone())
                        .unwrap_or_default(),
                    c,
                )
            }
            Target::Circuit(c, _) => {
                if lamp.is_some() {
                    continue;
                }
                (inv.cabinets[c].district.clone(), Some(c))
            }
        };
        if !p.sees(&district)
            || q.district.as_ref().is_some_and(|d| *d != district)
            || cabinet.is_some_and(|c| Some(c) != cab)
        {
            continue;
        }
        let key = crate::schedule::engine::target_key(&inv, t);
        let (events, skip) = plan.day(t, q.date);
        skipped.extend(skip);
        for ev in events {
            out.push(json!({
                "at": ev.at.with_timezone(&tz).to_rfc3339(),
                "target": key,
                "action": if ev.level <= 0.0 { "off" } else if ev.level >= 100.0 { "on" } else { "dim" },
                "level": ev.level,
                "source": ev.source,
                "program": ev.program,
                "rule": format!("{} {}", ev.rule, ev.point),
            }));
        }
        if let Some(h) = holds.get(&key) {
            out.push(json!({
                "at": h.since.with_timezone(&tz).to_rfc3339(),
                "until": h.until.map(|u| u.with_timezone(&tz).to_rfc3339()),
                "target": key, "level": h.level, "source": "override", "command": h.command,
            }));
        }
    }
    out.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
    skipped.sort();
    skipped.dedup();
    Ok(Json(json!({
        "date": q.date, "time_zone": tz.name(), "events": out, "skipped": skipped,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SunQuery {
    date: NaiveDate,
    lat: f64,
    lon: f64,
}

/// `GET /api/v1/schedules/sun?date=&lat=&lon=`.
pub(super) async fn sun(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SunQuery>,
) -> Result<Json<Value>, ApiError> {
    let e = engine(&s)?;
    let tz = e.time_zone();
    let t = crate::schedule::sun::sun_times(q.lat, q.lon, q.date).ok_or_else(|| {
        ApiError::Unprocessable("lat: must be within ±90 and lon within ±180".into())
    })?;
    Ok(Json(json!({
        "date": q.date,
        "time_zone": tz.name(),
        "sunrise": t.sunrise.map(|x| x.with_timezone(&tz).to_rfc3339()),
        "sunset": t.sunset.map(|x| x.with_timezone(&tz).to_rfc3339()),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateQuery {
    district: Option<String>,
}

/// `GET /api/v1/schedules/state[?district=]` — every governed target now:
/// scheduled and effective level, what was commanded and confirmed, and
/// whether the device agrees.
pub(super) async fn state(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<StateQuery>,
) -> Result<Json<Value>, ApiError> {
    let e = engine(&s)?;
    let live = s.control.wiring().live.clone();
    let inv = live.inventory.clone();
    if let Some(d) = &q.district {
        p.visible_district(&inv, d)
            .ok_or_else(|| ApiError::NotFound(format!("unknown district `{d}`")))?;
    }
    let district = q.district.clone().or(p.district.clone());
    let targets = e.state_now(district.as_deref());
    let inner = live.read();
    let items: Vec<Value> = targets
        .into_iter()
        .map(|t| {
            let device = match inv.lamp_position(&t.target) {
                Some(l) => inner.lamps[l].reading.as_ref().map(|r| {
                    if r.on {
                        r.dim_level.max(1.0)
                    } else {
                        0.0
                    }
                }),
                None => None,
            };
            let agrees = match (t.effective, device) {
                (Some(want), Some(got)) => (want > 0.0) == (got > 0.0),
                _ => true,
            };
            let mut v = serde_json::to_value(&t).unwrap_or_default();
            v["device_level"] = json!(device);
            v["agrees"] = json!(agrees);
            v
        })
        .collect();
    let disagree = items.iter().filter(|v| v["agrees"] == false).count();
    Ok(Json(json!({
        "at": e.now().with_timezone(&e.time_zone()).to_rfc3339(),
        "total": items.len(),
        "disagree": disagree,
        "items": items,
    })))
}
