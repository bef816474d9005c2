//! `/calendars`, `/control-programs` and `/assign-commands` on the
//! schedule's book — the one model underneath: every write is an edit of
//! the book as the HTTP API makes it (`api::edit_book`: the same rules of
//! who edits what, the book's checks, saved to its file and applied at
//! once), so what a CMS sets survives a restart and shows on
//! `/api/v1/schedules`, and what an operator sets there shows here where
//! TALQ can say it (calendars.rs and programs.rs hold the mapping).
//!
//! An assign command puts a calendar on lamps or groups: the assignment
//! `talq:{address}` per device or group addressed (the lamp's or group's
//! TALQ address), scope the lamp or the group, placed last so the latest
//! assign wins among scopes alike; an assign without a calendar address
//! removes those assignments (the lamps then follow what the city's own
//! assignments give them).
//!
//! A write's answer is kept by its `talqRequestId` (`Answered`): a CMS's
//! retry gets it again instead of a second write (a `POST` would be 409).

use super::address::{group_address, Dev};
use super::calendars::{self, CalendarBody};
use super::overrides::{self, Reference};
use super::programs::{self, ProgramBody};
use super::routes::{check, Params, TalqState};
use super::TalqError;
use crate::api::{edit_book, BookKind};
use crate::auth::Principal;
use crate::schedule::model::{Assignment, Book, Scope};
use crate::schedule::Schedule;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::FixedOffset;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

pub(super) fn routes() -> Router<TalqState> {
    Router::new()
        .route(
            "/calendars",
            get(calendars).post(add_calendars).put(update_calendars),
        )
        .route("/calendars/count", get(calendars_count))
        .route(
            "/calendars/{address}",
            get(calendar).put(update_calendar).delete(delete_calendar),
        )
        .route(
            "/control-programs",
            get(programs).post(add_programs).put(update_programs),
        )
        .route("/control-programs/count", get(programs_count))
        .route(
            "/control-programs/{address}",
            get(program).put(update_program).delete(delete_program),
        )
        .route("/assign-commands", get(assign_commands).post(assign))
}

/// Calendars or programs: what the routes of either do alike.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Object {
    Calendar,
    Program,
}

impl Object {
    fn kind(self) -> BookKind {
        match self {
            Object::Calendar => BookKind::Calendars,
            Object::Program => BookKind::Programs,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Object::Calendar => "calendar",
            Object::Program => "program",
        }
    }
}

/// How objects are written for this CMS: its address as their owner, times
/// with the zone's offset now.
struct View {
    owner: String,
    offset: FixedOffset,
}

fn view(s: &TalqState) -> View {
    let now = s
        .app
        .schedule
        .as_ref()
        .map_or_else(chrono::Utc::now, |e| e.now());
    View {
        owner: s
            .talq
            .settings
            .cms_address
            .map(|a| a.to_string())
            .unwrap_or_default(),
        offset: programs::offset_now(s.app.time_zone, now),
    }
}

impl View {
    fn program_offered(&self, book: &Book, id: &str) -> bool {
        book.program(id)
            .is_some_and(|p| programs::offered(p, self.offset))
    }

    fn calendar_offered(&self, book: &Book, id: &str) -> bool {
        calendars::offered(book, id, self.offset)
    }

    /// The object as TALQ shows it, if it is offered.
    fn render(&self, book: &Book, obj: Object, id: &str) -> Option<Value> {
        match obj {
            Object::Program => book
                .program(id)
                .and_then(|p| programs::to_talq(p, &self.owner, self.offset).ok()),
            Object::Calendar => self
                .calendar_offered(book, id)
                .then(|| {
                    book.calendar(id)
                        .map(|c| calendars::to_talq(c, &self.owner))
                })
                .flatten(),
        }
    }

    fn all(&self, book: &Book, obj: Object) -> Vec<Value> {
        let ids: Vec<&str> = match obj {
            Object::Program => book.programs.iter().map(|p| p.id.as_str()).collect(),
            Object::Calendar => book.calendars.iter().map(|c| c.id.as_str()).collect(),
        };
        ids.into_iter()
            .filter_map(|id| self.render(book, obj, id))
            .collect()
    }
}

/// Book writes answered, by `talqRequestId`: a CMS's retry of one whose
/// answer it lost gets the same answer and changes nothing again (the
/// last [`ANSWERS_KEPT`] writes; errors are not kept, a retry tries again).
#[derive(Debug, Default)]
pub(super) struct Answered(Mutex<VecDeque<(String, StatusCode, Option<Value>)>>);

/// Enough for the retries of a CMS's burst of writes.
const ANSWERS_KEPT: usize = 256;

fn respond(status: StatusCode, body: Option<Value>) -> Response {
    match body {
        Some(b) => (status, Json(b)).into_response(),
        None => status.into_response(),
    }
}

/// Answers a write once per request id (see [`Answered`]).
fn once(
    s: &TalqState,
    request: Option<String>,
    answer: impl FnOnce() -> Result<(StatusCode, Option<Value>), TalqError>,
) -> Result<Response, TalqError> {
    let key = request.unwrap_or_default();
    let seen = s
        .talq
        .answered
        .0
        .lock()
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, st, b)| (*st, b.clone()));
    if let Some((status, body)) = seen {
        return Ok(respond(status, body));
    }
    let (status, body) = answer()?;
    let mut kept = s.talq.answered.0.lock();
    if kept.len() >= ANSWERS_KEPT {
        kept.pop_front();
    }
    kept.push_back((key, status, body.clone()));
    Ok(respond(status, body))
}

/// The book, or none while schedules are off (nothing to list then).
fn book_of(s: &TalqState) -> Option<Arc<Book>> {
    s.app.schedule.as_ref().map(|e| e.book())
}

fn engine(s: &TalqState) -> Result<&Arc<Schedule>, TalqError> {
    s.app.schedule.as_ref().ok_or_else(|| {
        TalqError::Unsupported(
            "schedules are off here (schedule.enabled = false): no calendar or program is kept"
                .into(),
        )
    })
}

async fn list(
    s: TalqState,
    headers: HeaderMap,
    params: Params,
    obj: Object,
) -> Result<Json<Vec<Value>>, TalqError> {
    check(&s, &headers, &params.0, false)?;
    let v = view(&s);
    Ok(Json(
        book_of(&s).map(|b| v.all(&b, obj)).unwrap_or_default(),
    ))
}

async fn count(
    s: TalqState,
    headers: HeaderMap,
    params: Params,
    obj: Object,
) -> Result<Json<usize>, TalqError> {
    check(&s, &headers, &params.0, false)?;
    let v = view(&s);
    Ok(Json(book_of(&s).map_or(0, |b| v.all(&b, obj).len())))
}

fn not_offered(obj: Object, id: &str) -> TalqError {
    TalqError::NotFound(format!(
        "no {} `{id}` here (or one TALQ cannot express; see /api/v1/schedules)",
        obj.word()
    ))
}

async fn one(
    s: TalqState,
    headers: HeaderMap,
    params: Params,
    obj: Object,
    id: String,
) -> Result<Json<Value>, TalqError> {
    check(&s, &headers, &params.0, false)?;
    let v = view(&s);
    book_of(&s)
        .and_then(|b| v.render(&b, obj, &id))
        .map(Json)
        .ok_or_else(|| not_offered(obj, &id))
}

/// Whether a write creates objects (`POST`: none may exist) or replaces
/// them (`PUT`: each must exist, and be offered here).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Create,
    Replace,
}

/// Puts one CMS object into the book (checked against what is there).
fn put_one(
    book: &mut Book,
    v: &View,
    tz: chrono_tz::Tz,
    now: chrono::DateTime<chrono::Utc>,
    mode: Mode,
    body: &Body,
) -> Result<(), TalqError> {
    let (obj, id) = body.id();
    let exists = match obj {
        Object::Program => book.program(id).is_some(),
        Object::Calendar => book.calendar(id).is_some(),
    };
    match (mode, exists) {
        (Mode::Create, true) => {
            return Err(TalqError::Conflict(format!(
                "{} `{id}` exists already (PUT replaces it)",
                obj.word()
            )))
        }
        (Mode::Replace, false) => return Err(not_offered(obj, id)),
        (Mode::Replace, true) if v.render(book, obj, id).is_none() => {
            return Err(TalqError::Invalid(format!(
                "{} `{id}` is one TALQ cannot express; it is edited on /api/v1/schedules",
                obj.word()
            )))
        }
        _ => {}
    }
    match body {
        Body::Program(b) => {
            let name = book.program(id).map(|p| p.name.clone()).unwrap_or_default();
            let p = programs::from_talq(b, name, tz, now)?;
            match book.programs.iter_mut().find(|x| x.id == p.id) {
                Some(x) => *x = p,
                None => book.programs.push(p),
            }
        }
        Body::Calendar(b) => {
            let name = book
                .calendar(id)
                .map(|c| c.name.clone())
                .unwrap_or_default();
            let c = calendars::from_talq(b, name)?;
            if let Some(p) = calendars::programs_of(&c).find(|p| !v.program_offered(book, p)) {
                return Err(TalqError::RelatedNotFound(format!(
                    "calendar `{id}`: no program `{p}` here (or one TALQ cannot express)"
                )));
            }
            match book.calendars.iter_mut().find(|x| x.id == c.id) {
                Some(x) => *x = c,
                None => book.calendars.push(c),
            }
        }
    }
    if let Some(m) = book.over_limits() {
        return Err(TalqError::Unsupported(m));
    }
    Ok(())
}

/// A CMS's calendar or program, parsed.
enum Body {
    Calendar(CalendarBody),
    Program(ProgramBody),
}

impl Body {
    fn id(&self) -> (Object, &str) {
        match self {
            Body::Calendar(c) => (Object::Calendar, &c.id),
            Body::Program(p) => (Object::Program, &p.id),
        }
    }
}

fn parse_list(obj: Object, bytes: &[u8]) -> Result<Vec<Body>, TalqError> {
    Ok(match obj {
        Object::Calendar => overrides::parse::<Vec<CalendarBody>>(bytes)?
            .into_iter()
            .map(Body::Calendar)
            .collect(),
        Object::Program => overrides::parse::<Vec<ProgramBody>>(bytes)?
            .into_iter()
            .map(Body::Program)
            .collect(),
    })
}

fn parse_one(obj: Object, bytes: &[u8]) -> Result<Body, TalqError> {
    Ok(match obj {
        Object::Calendar => Body::Calendar(overrides::parse(bytes)?),
        Object::Program => Body::Program(overrides::parse(bytes)?),
    })
}

/// Writes `bodies` into the book in one edit (all or none); the objects as
/// they are now.
fn write(
    s: &TalqState,
    principal: &Principal,
    mode: Mode,
    bodies: &[Body],
) -> Result<Vec<Value>, TalqError> {
    let engine = engine(s)?;
    let (tz, now) = (s.app.time_zone, engine.now());
    let v = view(s);
    let touched: Vec<(BookKind, &str)> = bodies
        .iter()
        .map(|b| {
            let (obj, id) = b.id();
            (obj.kind(), id)
        })
        .collect();
    for (i, (_, id)) in touched.iter().enumerate() {
        if touched[..i].iter().any(|(_, x)| x == id) {
            return Err(TalqError::Payload(format!(
                "[{i}].id: `{id}` is listed twice"
            )));
        }
    }
    edit_book(&s.app, principal, &touched, |book: &mut Book| {
        for b in bodies {
            put_one(book, &v, tz, now, mode, b)?;
        }
        Ok::<_, TalqError>(
            bodies
                .iter()
                .filter_map(|b| {
                    let (obj, id) = b.id();
                    v.render(book, obj, id)
                })
                .collect(),
        )
    })
}

async fn add(
    s: TalqState,
    headers: HeaderMap,
    params: Params,
    obj: Object,
    body: Bytes,
) -> Result<Response, TalqError> {
    let (principal, request) = check(&s, &headers, &params.0, true)?;
    once(&s, request, || {
        let bodies = parse_list(obj, &body)?;
        let out = write(&s, &principal, Mode::Create, &bodies)?;
        Ok((StatusCode::CREATED, Some(Value::Array(out))))
    })
}

async fn update_all(
    s: TalqState,
    headers: HeaderMap,
    params: Params,
    obj: Object,
    body: Bytes,
) -> Result<Response, TalqError> {
    let (principal, request) = check(&s, &headers, &params.0, true)?;
    once(&s, request, || {
        let bodies = parse_list(obj, &body)?;
        let out = write(&s, &principal, Mode::Replace, &bodies)?;
        Ok((StatusCode::OK, Some(Value::Array(out))))
    })
}

async fn update(
    s: TalqState,
    headers: HeaderMap,
    params: Params,
    obj: Object,
    id: String,
    body: Bytes,
) -> Result<Response, TalqError> {
    let (principal, request) = check(&s, &headers, &params.0, true)?;
    once(&s, request, || {
        let b = parse_one(obj, &body)?;
        if b.id().1 != id {
            return Err(TalqError::Payload(format!(
                "id: `{}` in the body, `{id}` in the path",
                b.id().1
            )));
        }
        let mut out = write(&s, &principal, Mode::Replace, std::slice::from_ref(&b))?;
        let one = out
            .pop()
            .ok_or_else(|| TalqError::Internal("a written object is offered".into()))?;
        Ok((StatusCode::OK, Some(one)))
    })
}

async fn delete(
    s: TalqState,
    headers: HeaderMap,
    params: Params,
    obj: Object,
    id: String,
) -> Result<Response, TalqError> {
    let (principal, request) = check(&s, &headers, &params.0, true)?;
    engine(&s)?;
    let v = view(&s);
    once(&s, request, || {
        edit_book(
            &s.app,
            &principal,
            &[(obj.kind(), &id)],
            |book: &mut Book| {
                let shown = v
                    .render(book, obj, &id)
                    .ok_or_else(|| not_offered(obj, &id))?;
                let users: Vec<&str> = match obj {
                    Object::Calendar => book
                        .assignments
                        .iter()
                        .filter(|a| a.calendar == id)
                        .map(|a| a.id.as_str())
                        .collect(),
                    Object::Program => book
                        .calendars
                        .iter()
                        .filter(|c| calendars::programs_of(c).any(|p| p == id))
                        .map(|c| c.id.as_str())
                        .collect(),
                };
                if !users.is_empty() {
                    let by = if obj == Object::Calendar {
                        "assignments"
                    } else {
                        "calendars"
                    };
                    return Err(TalqError::Referred(format!(
                        "{} `{id}` is used by {by} {}",
                        obj.word(),
                        users.join(", ")
                    )));
                }
                match obj {
                    Object::Calendar => book.calendars.retain(|c| c.id != id),
                    Object::Program => book.programs.retain(|p| p.id != id),
                }
                Ok::<_, TalqError>((StatusCode::OK, Some(shown)))
            },
        )
    })
}

macro_rules! handlers {
    ($obj:expr, $list:ident, $count:ident, $one:ident, $add:ident, $update_all:ident, $update:ident, $delete:ident) => {
        async fn $list(
            State(s): State<TalqState>,
            headers: HeaderMap,
            params: Params,
        ) -> Result<Json<Vec<Value>>, TalqError> {
            list(s, headers, params, $obj).await
        }
        async fn $count(
            State(s): State<TalqState>,
            headers: HeaderMap,
            params: Params,
        ) -> Result<Json<usize>, TalqError> {
            count(s, headers, params, $obj).await
        }
        async fn $one(
            State(s): State<TalqState>,
            headers: HeaderMap,
            params: Params,
            Path(id): Path<String>,
        ) -> Result<Json<Value>, TalqError> {
            one(s, headers, params, $obj, id).await
        }
        async fn $add(
            State(s): State<TalqState>,
            headers: HeaderMap,
            params: Params,
            body: Bytes,
        ) -> Result<Response, TalqError> {
            add(s, headers, params, $obj, body).await
        }
        async fn $update_all(
            State(s): State<TalqState>,
            headers: HeaderMap,
            params: Params,
            body: Bytes,
        ) -> Result<Response, TalqError> {
            update_all(s, headers, params, $obj, body).await
        }
        async fn $update(
            State(s): State<TalqState>,
            headers: HeaderMap,
            params: Params,
            Path(id): Path<String>,
            body: Bytes,
        ) -> Result<Response, TalqError> {
            update(s, headers, params, $obj, id, body).await
        }
        async fn $delete(
            State(s): State<TalqState>,
            headers: HeaderMap,
            params: Params,
            Path(id): Path<String>,
        ) -> Result<Response, TalqError> {
            delete(s, headers, params, $obj, id).await
        }
    };
}

handlers!(
    Object::Calendar,
    calendars,
    calendars_count,
    calendar,
    add_calendars,
    update_calendars,
    update_calendar,
    delete_calendar
);
handlers!(
    Object::Program,
    programs,
    programs_count,
    program,
    add_programs,
    update_programs,
    update_program,
    delete_program
);

/// `AssignCommand` as a CMS sends it.
#[derive(Debug, Deserialize)]
struct AssignBody {
    addresses: Vec<Reference>,
    entity: Option<Reference>,
}

/// What an assign addresses: the assignment's id and scope.
fn targets(
    s: &TalqState,
    principal: &Principal,
    references: &[Reference],
) -> Result<Vec<(String, Scope)>, TalqError> {
    let index = s.talq.index(&s.app.live.inventory);
    let groups = super::groups::visible(&s.app.control, &index, principal);
    let mut out: Vec<(String, Scope)> = Vec::new();
    if references.is_empty() {
        return Err(TalqError::AssignmentAddressNotValid(
            "addresses: no device or group named".into(),
        ));
    }
    for (i, r) in references.iter().enumerate() {
        let bad = |why: &str| {
            TalqError::AssignmentAddressNotValid(format!("addresses[{i}] `{}`: {why}", r.address))
        };
        let target = match r.resource.trim_matches('/') {
            "groups" => {
                let a = r.address.strip_prefix("/groups/").unwrap_or(&r.address);
                let g = Uuid::parse_str(a)
                    .ok()
                    .and_then(|a| groups.iter().find(|g| g.address == a))
                    .ok_or_else(|| bad("no such group here"))?;
                (format!("talq:{}", g.address), Scope::Group(g.name.clone()))
            }
            "devices" => {
                let a = r.address.strip_prefix("/devices/").unwrap_or(&r.address);
                let mut parts = a.split('/');
                let uuid = parts.next().unwrap_or_default();
                let function = parts.next();
                let address = Uuid::parse_str(uuid).map_err(|_| bad("not a device address"))?;
                let dev = index
                    .get(&address)
                    .filter(|&d| index.district(d).is_none_or(|d| principal.sees(d)))
                    .ok_or_else(|| bad("no such device here"))?;
                let Dev::Lamp(l) = dev else {
                    return Err(bad("the device has no lamp actuator to follow a calendar"));
                };
                if function.is_some_and(|f| f != super::classes::LAMP_ACTUATOR.id)
                    || parts.next().is_some()
                {
                    return Err(bad("not the device or its lamp actuator"));
                }
                (
                    format!("talq:{address}"),
                    Scope::Lamps(vec![index.inventory.lamps[l].id.clone()]),
                )
            }
            other => {
                return Err(bad(&format!(
                    "resource `{other}` cannot follow a calendar (devices and groups)"
                )))
            }
        };
        if !out.iter().any(|(id, _)| *id == target.0) {
            out.push(target);
        }
    }
    Ok(out)
}

/// `POST /assign-commands`: 201, the book saved (the engine applies it at
/// its next tick).
async fn assign(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Result<Response, TalqError> {
    let (principal, request) = check(&s, &headers, &params, true)?;
    once(&s, request, || assign_calendar(&s, &principal, &body))
}

fn assign_calendar(
    s: &TalqState,
    principal: &Principal,
    body: &[u8],
) -> Result<(StatusCode, Option<Value>), TalqError> {
    let body: AssignBody = overrides::parse(body)?;
    let entity = body.entity.as_ref().ok_or_else(|| {
        TalqError::AssignmentEntityNotValid("entity: a calendar reference is required".into())
    })?;
    if entity.resource.trim_matches('/') != "calendars" {
        return Err(TalqError::AssignmentEntityNotValid(format!(
            "entity.resource: `{}` is not assigned here (calendars only)",
            entity.resource
        )));
    }
    let calendar = entity
        .address
        .strip_prefix("/calendars/")
        .unwrap_or(&entity.address)
        .to_string();
    engine(s)?;
    let targets = targets(s, principal, &body.addresses)?;
    let v = view(s);
    let touched: Vec<(BookKind, &str)> = targets
        .iter()
        .map(|(id, _)| (BookKind::Assignments, id.as_str()))
        .collect();
    edit_book(&s.app, principal, &touched, |book: &mut Book| {
        if !calendar.is_empty() && !v.calendar_offered(book, &calendar) {
            return Err(if book.calendar(&calendar).is_some() {
                TalqError::AssignmentEntityNotValid(format!(
                    "calendar `{calendar}` uses programs TALQ cannot express"
                ))
            } else {
                TalqError::RelatedNotFound(format!("no calendar `{calendar}` here"))
            });
        }
        for (id, scope) in &targets {
            // Removed, then added last: the latest assign wins.
            book.assignments.retain(|a| a.id != *id);
            if !calendar.is_empty() {
                book.assignments.push(Assignment {
                    id: id.clone(),
                    calendar: calendar.clone(),
                    scope: scope.clone(),
                });
            }
        }
        Ok::<_, TalqError>(())
    })?;
    Ok((StatusCode::CREATED, None))
}

/// `GET /assign-commands`: the assignments of offered calendars to lamps
/// with an SLC or to groups that the caller sees, as assign commands.
async fn assign_commands(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Json<Vec<Value>>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let Some(book) = book_of(&s) else {
        return Ok(Json(Vec::new()));
    };
    let seen = crate::api::book_view(&s.app, &principal)?;
    let index = s.talq.index(&s.app.live.inventory);
    let v = view(&s);
    let gateway = index.gateway_address();
    let out = seen
        .assignments
        .iter()
        .filter(|a| v.calendar_offered(&book, &a.calendar))
        .filter_map(|a| {
            let addresses: Vec<Value> = match &a.scope {
                Scope::Group(g) => vec![serde_json::json!({
                    "resource": "groups",
                    "address": group_address(&gateway, g).to_string(),
                })],
                Scope::Lamps(ids) => ids
                    .iter()
                    .filter_map(|l| index.inventory.lamp_position(l))
                    .filter_map(|l| index.lamp(l))
                    .map(|a| serde_json::json!({"resource": "devices", "address": a.to_string()}))
                    .collect(),
                _ => Vec::new(),
            };
            (!addresses.is_empty()).then(|| {
                serde_json::json!({
                    "addresses": addresses,
                    "entity": {"resource": "calendars", "address": a.calendar},
                    "cmsRefId": a.id,
                })
            })
        })
        .collect();
    Ok(Json(out))
}
