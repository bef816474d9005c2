//! The night plan over HTTP: the book's objects (`/programs`,
//! `/calendars`, `/assignments`, `/emergency-shifts`), a day's preview, sun
//! times and what every target is now. Viewers read; city-wide operators
//! and admins edit programs and calendars; operators and admins edit
//! assignments and emergency shifts, a district operator only those whose
//! scope lies in their district (another district's scope is refused as an
//! unknown one).

use super::error::{
    BadRequest, Forbidden, Invalid, NotFound, TooLarge, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use super::query::{ApiPath, ApiQuery, JsonBody};
use super::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::inventory::Inventory;
use crate::schedule::engine::{Hold, TargetNow};
use crate::schedule::model::{Assignment, Book, Calendar, EmergencyShift, Program, Scope};
use crate::schedule::plan::{Source, Target};
use crate::schedule::{Schedule, ScheduleError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

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
    groups: &BTreeMap<String, Vec<String>>,
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

/// The book as the caller sees it: every program and calendar (they are
/// city-wide), the assignments and emergency shifts whose scope lies in the
/// caller's district, and the manual holds on the targets it sees.
#[derive(Serialize, ToSchema)]
pub(crate) struct BookView {
    /// `gateway.time_zone`, in which fixed switch times are read.
    pub(crate) time_zone: String,
    pub(crate) programs: Vec<Program>,
    pub(crate) calendars: Vec<Calendar>,
    pub(crate) assignments: Vec<Assignment>,
    pub(crate) emergency_shifts: Vec<EmergencyShift>,
    /// The targets the caller sees (lamp id, or `CABINET#n` for a circuit)
    /// that a manual command holds, by target.
    pub(crate) holds: BTreeMap<String, Hold>,
}

/// `GET /api/v1/schedules` — the whole book as the caller sees it. 404
/// `not_found` when schedules are off (`schedule.enabled = false`).
#[utoipa::path(
    get,
    path = "/api/v1/schedules",
    tag = "schedules",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The book as the caller sees it", body = BookView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn book(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<BookView>, ApiError> {
    book_view(&s, &p).map(Json)
}

/// The book as the caller sees it: the API's route and the console's page.
pub(crate) fn book_view(s: &AppState, p: &Principal) -> Result<BookView, ApiError> {
    let e = engine(s)?;
    let b = e.book();
    let inv = s.control.wiring().live.inventory.clone();
    let groups = s.control.groups();
    let vis = |scope: &Scope| scope_visible(p, &inv, &groups, scope);
    Ok(BookView {
        time_zone: e.time_zone().name().to_string(),
        programs: b.programs.clone(),
        calendars: b.calendars.clone(),
        assignments: b
            .assignments
            .iter()
            .filter(|a| vis(&a.scope))
            .cloned()
            .collect(),
        emergency_shifts: b
            .emergency_shifts
            .iter()
            .filter(|x| vis(&x.scope))
            .cloned()
            .collect(),
        holds: e
            .holds()
            .into_iter()
            .filter(|(key, _)| hold_visible(p, &inv, key))
            .collect(),
    })
}

/// Whether the caller sees a held target (a lamp id or `CABINET#n`); one
/// the inventory no longer has, only a city-wide caller.
fn hold_visible(p: &Principal, inv: &Inventory, key: &str) -> bool {
    match crate::schedule::engine::key_target(inv, key) {
        Some(Target::Lamp(l)) => p.sees_lamp(inv, l),
        Some(Target::Circuit(c, _)) => p.sees(&inv.cabinets[c].district),
        None => p.district.is_none(),
    }
}

/// The kinds of object, as their paths name them.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
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

/// What a `PUT` saved.
#[derive(Serialize, ToSchema)]
pub(super) struct Saved {
    id: String,
    saved: bool,
}

/// One edit of the book by `p`, as every writer makes it (this API and the
/// TALQ API): the objects it touches (`touched`, by kind and id) must be
/// ones the caller may edit, before and after the change; the book is then
/// checked whole and saved (`Schedule::edit_book`), or left as it was.
pub(crate) fn edit<T, E>(
    s: &AppState,
    p: &Principal,
    touched: &[(Kind, &str)],
    change: impl FnOnce(&mut Book) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<ApiError> + From<ScheduleError>,
{
    let e = engine(s)?;
    e.edit_book(|book| {
        for &(kind, id) in touched {
            check_edit(s, p, book, kind, id)?;
        }
        let out = change(book)?;
        // A new object's scope must lie in the caller's district too.
        let inv = s.control.wiring().live.inventory.clone();
        let groups = s.control.groups();
        for &(kind, id) in touched {
            if let Some(scope) = scope_of(book, kind, id) {
                if !scope_visible(p, &inv, &groups, &scope) {
                    return Err(ApiError::Unprocessable(
                        "scope: unknown district, cabinet, circuit, group or lamp".into(),
                    )
                    .into());
                }
            }
        }
        Ok(out)
    })
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        invalid(e)
    }
}

/// `PUT /api/v1/{kind}/{id}` — create or replace one object.
async fn put(
    kind: Kind,
    s: AppState,
    p: Principal,
    id: String,
    body: axum::body::Bytes,
) -> Result<Json<Saved>, ApiError> {
    edit::<_, ApiError>(&s, &p, &[(kind, &id)], |book| {
        put_into(book, kind, &id, &body)
    })?;
    Ok(Json(Saved { id, saved: true }))
}

/// `DELETE /api/v1/{kind}/{id}`.
async fn delete(kind: Kind, s: AppState, p: Principal, id: String) -> Result<StatusCode, ApiError> {
    edit::<_, ApiError>(&s, &p, &[(kind, &id)], |book| {
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
        Ok(())
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/programs/{id}` — city-wide operators and admins: creates or
/// replaces a program (a day's switch points). The whole book is checked
/// before it is saved (422 naming the field), written to the schedule file
/// and applied at once. 403 to a viewer and to a district token (programs
/// are city-wide); 404 `not_found` when schedules are off.
#[utoipa::path(
    put,
    path = "/api/v1/programs/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Program id, the same as the body's `id`: 1 to 64 letters, digits or ` -_.:`", example = "night")),
    request_body(content = Program, example = json!({
        "id": "night", "name": "An ordinary night",
        "points": [
            {"sun": "sunset", "offset_min": -10, "level": "on"},
            {"at": "23:30", "level": 50},
            {"at": "01:00", "level": "off", "alternate": "even"},
            {"sun": "sunrise", "offset_min": 10, "level": "off"}
        ]
    })),
    responses(
        (status = 200, description = "Saved; the engine applies it at once", body = Saved),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn put_program(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Saved>, ApiError> {
    put(Kind::Programs, s, p, id, body).await
}

/// `DELETE /api/v1/programs/{id}` — city-wide operators and admins: 404 for
/// an unknown program (or schedules off), 422 while a calendar names it.
#[utoipa::path(
    delete,
    path = "/api/v1/programs/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Program id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn delete_program(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    delete(Kind::Programs, s, p, id).await
}

/// `PUT /api/v1/calendars/{id}` — city-wide operators and admins: creates or
/// replaces a calendar (its rules pick the program of a date), checked and
/// applied as a program is. 403 to a viewer and to a district token; 404
/// `not_found` when schedules are off.
#[utoipa::path(
    put,
    path = "/api/v1/calendars/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Calendar id, the same as the body's `id`: 1 to 64 letters, digits or ` -_.:`", example = "city")),
    request_body(content = Calendar, example = json!({
        "id": "city", "name": "The city's nights",
        "rules": [{"name": "spring-festival", "program": "night", "priority": 10,
                   "dates": ["2027-02-06/2027-02-12"]}],
        "default_program": "night"
    })),
    responses(
        (status = 200, description = "Saved; the engine applies it at once", body = Saved),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn put_calendar(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Saved>, ApiError> {
    put(Kind::Calendars, s, p, id, body).await
}

/// `DELETE /api/v1/calendars/{id}` — city-wide operators and admins: 404
/// for an unknown calendar (or schedules off), 422 while an assignment names
/// it.
#[utoipa::path(
    delete,
    path = "/api/v1/calendars/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Calendar id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn delete_calendar(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    delete(Kind::Calendars, s, p, id).await
}

/// `PUT /api/v1/assignments/{id}` — operators and admins: puts a calendar
/// on a scope; a district operator only within their district (another
/// district's scope is refused as an unknown one, 422; replacing another
/// district's assignment, 404 as for an unknown id). 403 to a viewer; 404
/// `not_found` when schedules are off.
#[utoipa::path(
    put,
    path = "/api/v1/assignments/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Assignment id, the same as the body's `id`: 1 to 64 letters, digits or ` -_.:`", example = "all")),
    request_body(content = Assignment, example = json!({"id": "all", "calendar": "city", "scope": "city"})),
    responses(
        (status = 200, description = "Saved; the engine applies it at once", body = Saved),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn put_assignment(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Saved>, ApiError> {
    put(Kind::Assignments, s, p, id, body).await
}

/// `DELETE /api/v1/assignments/{id}` — operators and admins; a district
/// operator only those in their district (another district's is 404, as an
/// unknown one).
#[utoipa::path(
    delete,
    path = "/api/v1/assignments/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Assignment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn delete_assignment(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    delete(Kind::Assignments, s, p, id).await
}

/// `PUT /api/v1/emergency-shifts/{id}` — operators and admins: moves
/// switching in a scope, or forces a level, for a while; a district
/// operator only within their district (another district's scope is
/// refused as an unknown one, 422; replacing another district's shift, 404
/// as for an unknown id). 403 to a viewer; 404 `not_found` when schedules
/// are off.
#[utoipa::path(
    put,
    path = "/api/v1/emergency-shifts/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Shift id, the same as the body's `id`: 1 to 64 letters, digits or ` -_.:`", example = "fog")),
    request_body(content = EmergencyShift, example = json!({
        "id": "fog", "scope": {"district": "D01"},
        "from": "2026-12-26T04:00:00Z", "until": "2026-12-27T04:00:00Z",
        "on_earlier_min": 20, "reason": "fog"
    })),
    responses(
        (status = 200, description = "Saved; the engine applies it at once", body = Saved),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn put_shift(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Saved>, ApiError> {
    put(Kind::Shifts, s, p, id, body).await
}

/// Saves an emergency shift as `PUT /api/v1/emergency-shifts/{id}` does
/// (the console's form): the same checks of role, scope and book.
pub(crate) async fn save_shift(
    s: &AppState,
    p: &Principal,
    shift: &EmergencyShift,
) -> Result<(), ApiError> {
    let body = serde_json::to_vec(shift).map_err(|e| ApiError::Internal(e.to_string()))?;
    put(
        Kind::Shifts,
        s.clone(),
        p.clone(),
        shift.id.clone(),
        body.into(),
    )
    .await
    .map(|_| ())
}

/// `DELETE /api/v1/emergency-shifts/{id}` — operators and admins; a district
/// operator only those in their district (another district's is 404, as an
/// unknown one).
#[utoipa::path(
    delete,
    path = "/api/v1/emergency-shifts/{id}",
    tag = "schedules",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Shift id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn delete_shift(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    delete(Kind::Shifts, s, p, id).await
}

/// A local date `YYYY-MM-DD` (years 0000 to 9999, as RFC 3339's
/// `full-date`), else 400: chrono alone would take a signed year of six
/// digits, whose day the sun and the plan cannot hold.
fn date(v: &str) -> Result<NaiveDate, ApiError> {
    let b = v.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    shaped
        .then(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| ApiError::BadRequest(format!("`date`: `{v}` is not a date YYYY-MM-DD")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct PreviewQuery {
    /// The local date (`gateway.time_zone`) whose events to show.
    #[param(value_type = String, format = Date, example = "2026-12-24")]
    pub(crate) date: String,
    /// Only this district's targets (404 if the caller sees no such
    /// district).
    pub(crate) district: Option<String>,
    /// Only this cabinet's lamps and circuits (404 if the caller sees no
    /// such cabinet).
    pub(crate) cabinet: Option<String>,
    /// Only this lamp (404 if the caller sees no such lamp).
    pub(crate) lamp: Option<String>,
}

/// What a switch event does.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PreviewAction {
    On,
    Off,
    Dim,
}

/// A switch event of the plan.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviewEvent {
    /// Local time (RFC 3339, `gateway.time_zone`'s offset).
    #[schema(format = DateTime)]
    pub(crate) at: String,
    /// A lamp id, or `CABINET#n` for a circuit switched by its RTU.
    pub(crate) target: String,
    pub(crate) action: PreviewAction,
    /// Percent, 0 to 100.
    pub(crate) level: f64,
    /// `calendar`, or `emergency` for a shift's.
    pub(crate) source: Source,
    pub(crate) program: String,
    /// The calendar rule (or shift) and the switch point.
    pub(crate) rule: String,
}

/// A manual command holding the target (the preview shows it whatever the
/// date).
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviewOverride {
    /// Since when (RFC 3339, local offset).
    #[schema(format = DateTime)]
    pub(crate) at: String,
    /// Until when; null: until the target's next switch point.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub(crate) until: Option<String>,
    pub(crate) target: String,
    /// Percent, 0 to 100.
    pub(crate) level: f64,
    /// Always `override`.
    pub(crate) source: Source,
    /// The command's id.
    pub(crate) command: String,
}

/// One item of the preview: a switch event or a manual hold.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum PreviewItem {
    Event(PreviewEvent),
    Override(PreviewOverride),
}

impl PreviewItem {
    fn at(&self) -> &str {
        match self {
            PreviewItem::Event(e) => &e.at,
            PreviewItem::Override(o) => &o.at,
        }
    }
}

/// A day's switch events, in time order.
#[derive(Serialize, ToSchema)]
pub(crate) struct PreviewAnswer {
    pub(crate) date: NaiveDate,
    pub(crate) time_zone: String,
    pub(crate) events: Vec<PreviewItem>,
    /// Switch points that do not happen that day (the sun does not rise or
    /// set), named with the date.
    pub(crate) skipped: Vec<String>,
}

/// `GET /api/v1/schedules/preview?date=…[&district=|&cabinet=|&lamp=]` —
/// the day's switch events per target that the caller sees, and the manual
/// holds on them. 404 `not_found` for a district, cabinet or lamp the caller
/// does not see, and when schedules are off (`schedule.enabled = false`).
#[utoipa::path(
    get,
    path = "/api/v1/schedules/preview",
    tag = "schedules",
    security(("bearer" = [])),
    params(PreviewQuery),
    responses(
        (status = 200, description = "The day's events of the targets the caller sees, in time order", body = PreviewAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn preview(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> Result<Json<PreviewAnswer>, ApiError> {
    day_preview(&s, &p, &q).map(Json)
}

/// A day's switch events of the targets the caller sees: the API's route
/// and the console's timeline.
pub(crate) fn day_preview(
    s: &AppState,
    p: &Principal,
    q: &PreviewQuery,
) -> Result<PreviewAnswer, ApiError> {
    let day = date(&q.date)?;
    let e = engine(s)?;
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
        let (events, skip) = plan.day(t, day);
        skipped.extend(skip);
        for ev in events {
            out.push(PreviewItem::Event(PreviewEvent {
                at: ev.at.with_timezone(&tz).to_rfc3339(),
                target: key.clone(),
                action: if ev.level <= 0.0 {
                    PreviewAction::Off
                } else if ev.level >= 100.0 {
                    PreviewAction::On
                } else {
                    PreviewAction::Dim
                },
                level: ev.level,
                source: ev.source,
                program: ev.program,
                rule: format!("{} {}", ev.rule, ev.point),
            }));
        }
        if let Some(h) = holds.get(&key) {
            out.push(PreviewItem::Override(PreviewOverride {
                at: h.since.with_timezone(&tz).to_rfc3339(),
                until: h.until.map(|u| u.with_timezone(&tz).to_rfc3339()),
                target: key,
                level: h.level,
                source: Source::Override,
                command: h.command.clone(),
            }));
        }
    }
    out.sort_by(|a, b| a.at().cmp(b.at()));
    skipped.sort();
    skipped.dedup();
    Ok(PreviewAnswer {
        date: day,
        time_zone: tz.name().to_string(),
        events: out,
        skipped,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct SunQuery {
    /// The date (UTC day around local solar noon).
    #[param(value_type = String, format = Date, example = "2026-06-21")]
    date: String,
    /// Latitude, degrees north (422 off the globe).
    #[param(minimum = -90.0, maximum = 90.0, example = 36.65)]
    lat: f64,
    /// Longitude, degrees east (422 off the globe).
    #[param(minimum = -180.0, maximum = 180.0, example = 117.12)]
    lon: f64,
}

/// Sunrise and sunset at a place on a date.
#[derive(Serialize, ToSchema)]
pub(super) struct SunAnswer {
    date: NaiveDate,
    /// `gateway.time_zone`, whose offset the times carry.
    time_zone: String,
    /// RFC 3339; null where the sun does not rise that day (polar night
    /// or day).
    #[schema(value_type = Option<String>, format = DateTime)]
    sunrise: Option<String>,
    /// RFC 3339; null where the sun does not set that day.
    #[schema(value_type = Option<String>, format = DateTime)]
    sunset: Option<String>,
}

/// `GET /api/v1/schedules/sun?date=&lat=&lon=` — sunrise and sunset
/// (日出/日落) as the schedule computes them. 404 `not_found` when schedules
/// are off (`schedule.enabled = false`).
#[utoipa::path(
    get,
    path = "/api/v1/schedules/sun",
    tag = "schedules",
    security(("bearer" = [])),
    params(SunQuery),
    responses(
        (status = 200, description = "The day's sunrise and sunset there", body = SunAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn sun(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<SunQuery>,
) -> Result<Json<SunAnswer>, ApiError> {
    let day = date(&q.date)?;
    let e = engine(&s)?;
    let tz = e.time_zone();
    let t = crate::schedule::sun::sun_times(q.lat, q.lon, day).ok_or_else(|| {
        ApiError::Unprocessable("lat: must be within ±90 and lon within ±180".into())
    })?;
    Ok(Json(SunAnswer {
        date: day,
        time_zone: tz.name().to_string(),
        sunrise: t.sunrise.map(|x| x.with_timezone(&tz).to_rfc3339()),
        sunset: t.sunset.map(|x| x.with_timezone(&tz).to_rfc3339()),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct StateQuery {
    /// Only this district's targets (404 if the caller sees no such
    /// district); a district token's own by default.
    district: Option<String>,
}

/// One governed target now: `kind` is `lamp` or `circuit`; `target` a lamp
/// id or `CABINET#n`.
#[derive(Serialize, ToSchema)]
pub(super) struct StateItem {
    #[serde(flatten)]
    now: TargetNow,
    /// What the device last reported, percent (0 when off): a lamp's SLC
    /// (its dim level), a circuit's contactor (100 closed); null before the
    /// first reading.
    device_level: Option<f64>,
    /// Whether the device is on where the effective level is on and off
    /// where it is off (true while either is unknown).
    agrees: bool,
}

/// Every governed target the caller sees, now.
#[derive(Serialize, ToSchema)]
pub(super) struct StateAnswer {
    /// The schedule's clock now (RFC 3339, local offset).
    #[schema(format = DateTime)]
    at: String,
    total: usize,
    /// How many items do not agree with their device.
    disagree: usize,
    items: Vec<StateItem>,
}

/// `GET /api/v1/schedules/state[?district=]` — every governed target now:
/// scheduled and effective level, what was commanded and confirmed, and
/// whether the device agrees. 404 `not_found` for a district the caller
/// does not see, and when schedules are off (`schedule.enabled = false`).
#[utoipa::path(
    get,
    path = "/api/v1/schedules/state",
    tag = "schedules",
    security(("bearer" = [])),
    params(StateQuery),
    responses(
        (status = 200, description = "Every governed target the caller sees", body = StateAnswer),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn state(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<StateQuery>,
) -> Result<Json<StateAnswer>, ApiError> {
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
    let items: Vec<StateItem> = targets
        .into_iter()
        .map(|t| {
            let device = crate::schedule::engine::key_target(&inv, &t.target)
                .and_then(|target| crate::schedule::summary::device_level(&inner, target));
            let agrees = match (t.effective, device) {
                (Some(want), Some(got)) => (want > 0.0) == (got > 0.0),
                _ => true,
            };
            StateItem {
                now: t,
                device_level: device,
                agrees,
            }
        })
        .collect();
    drop(inner);
    let disagree = items.iter().filter(|i| !i.agrees).count();
    Ok(Json(StateAnswer {
        at: e.now().with_timezone(&e.time_zone()).to_rfc3339(),
        total: items.len(),
        disagree,
        items,
    }))
}

#[cfg(test)]
mod tests {
    use super::date;
    use chrono::NaiveDate;

    #[test]
    fn dates_are_rfc_3339_full_dates_only() {
        assert_eq!(
            date("2026-12-24").ok(),
            NaiveDate::from_ymd_opt(2026, 12, 24)
        );
        assert!(date("0000-01-01").is_ok() && date("9999-12-31").is_ok());
        // chrono on its own takes all but the last three; the sun and the
        // plan cannot hold a day at the end of its range (overflow panic).
        for bad in [
            "+262142-12-31",
            "-0001-01-01",
            "2026-1-5",
            " 2026-01-05",
            "2026-01-05 ",
            "2026-02-30",
            "2026/01/05",
            "",
        ] {
            assert!(date(bad).is_err(), "{bad:?}");
        }
    }
}
