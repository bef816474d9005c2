//! Commands, groups and the audit trail over HTTP.

use super::error::{
    BadRequest, Conflict, Forbidden, Internal, Invalid, NotFound, TooLarge, Unauthorized,
    Unavailable, UnsupportedMediaType,
};
use super::inventory::visible_lamp;
use super::query::{ApiPath, ApiQuery, JsonBody};
use super::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::control::{
    check_name, Command, CommandBody, ControlError, RequestError, Selector, Source, Submission,
    Tally,
};
use crate::store::read::audit::AuditEntry;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Malformed(m) => ApiError::BadRequest(m),
            RequestError::Invalid(m) => ApiError::Unprocessable(m),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(m) => ApiError::NotFound(m),
            ControlError::Forbidden(m) => ApiError::Forbidden(m),
            ControlError::Invalid(m) => ApiError::Unprocessable(m),
            ControlError::Conflict(m) => ApiError::Conflict(m),
            ControlError::Storage(m) => ApiError::Internal(m),
        }
    }
}

/// The caller's id for a request, from the `Idempotency-Key` header or the
/// body's `request_id`; either follows `control::check_name`.
fn idempotency_key(headers: &HeaderMap, body: &CommandBody) -> Result<Option<String>, ApiError> {
    if let Some(v) = headers.get("idempotency-key") {
        let key = v.to_str().map_err(|_| {
            ApiError::Unprocessable("Idempotency-Key: must be printable text".into())
        })?;
        check_name(key).map_err(|e| ApiError::Unprocessable(format!("Idempotency-Key: {e}")))?;
        return Ok(Some(key.to_string()));
    }
    if let Some(id) = &body.request_id {
        check_name(id).map_err(|e| ApiError::Unprocessable(format!("request_id: {e}")))?;
    }
    Ok(body.request_id.clone())
}

/// `in_progress` while some target is queued or written, else `done`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum CommandStatus {
    InProgress,
    Done,
}

impl CommandStatus {
    fn of(command: &Command) -> Self {
        if command.is_complete() {
            CommandStatus::Done
        } else {
            CommandStatus::InProgress
        }
    }
}

/// A command taken: follow it at `status_url`.
#[derive(Serialize, ToSchema)]
pub(super) struct Accepted {
    id: String,
    status: CommandStatus,
    /// Lamps or circuits it acts on.
    targets: usize,
    tally: Tally,
    /// `/api/v1/commands/{id}`, also in `Location`.
    status_url: String,
}

fn accepted(command: Command) -> impl IntoResponse {
    let location = format!("/api/v1/commands/{}", command.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(Accepted {
            status: CommandStatus::of(&command),
            targets: command.targets.len(),
            tally: command.tally(),
            id: command.id,
            status_url: location,
        }),
    )
}

fn submit(
    s: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    selector: Selector,
    body: &CommandBody,
) -> Result<Command, ApiError> {
    let sub = Submission {
        actor: p.name.clone(),
        source: Source::Api,
        selector,
        action: body.action()?,
        expires_at: body.expires_at,
        idempotency_key: idempotency_key(headers, body)?,
        note: None,
    };
    Ok(s.control.submit(p, sub)?.snapshot())
}

/// `POST /api/v1/lamps/{id}/commands`: switches or dims one lamp.
#[utoipa::path(
    post,
    path = "/api/v1/lamps/{id}/commands",
    tag = "commands",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Lamp id"),
        ("Idempotency-Key" = Option<String>, Header, description = "The caller's id for the request (1 to 64 letters, digits or ` -_.:`): a repeat returns the first command"),
    ),
    request_body(content = CommandBody, description = "The action, without `target` (the lamp is in the path)"),
    responses(
        (status = 202, description = "Taken; carried out target by target", body = Accepted,
            headers(("Location" = String, description = "The command's status URL"))),
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
pub(super) async fn lamp_command(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    JsonBody(bytes): JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    visible_lamp(&s, &p, &id)?;
    let body = CommandBody::parse(&bytes)?;
    if body.target.is_some() {
        return Err(ApiError::Unprocessable(
            "target: the lamp is in the path; use /api/v1/commands for selectors".into(),
        ));
    }
    Ok(accepted(submit(
        &s,
        &p,
        &headers,
        Selector::Lamps(vec![id]),
        &body,
    )?))
}

/// `POST /api/v1/commands` — a group selector: lamps, a cabinet's lamps, a
/// circuit's contactor, a district's lamps or a named group.
#[utoipa::path(
    post,
    path = "/api/v1/commands",
    tag = "commands",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "The caller's id for the request (1 to 64 letters, digits or ` -_.:`): a repeat returns the first command"),
    ),
    request_body(content = CommandBody, description = "The action and its `target` (required)"),
    responses(
        (status = 202, description = "Taken; carried out target by target", body = Accepted,
            headers(("Location" = String, description = "The command's status URL"))),
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
pub(super) async fn group_command(
    State(s): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    JsonBody(bytes): JsonBody,
) -> Result<impl IntoResponse, ApiError> {
    let body = CommandBody::parse(&bytes)?;
    let selector = body
        .target
        .clone()
        .ok_or_else(|| ApiError::Unprocessable("target: required".into()))?;
    Ok(accepted(submit(&s, &p, &headers, selector, &body)?))
}

fn visible(p: &Principal, c: &Command) -> bool {
    c.targets.iter().all(|t| p.sees(&t.district))
}

/// A command with its per-target state.
#[derive(Serialize, ToSchema)]
pub(super) struct CommandState {
    #[serde(flatten)]
    command: Command,
    status: CommandStatus,
    tally: Tally,
}

/// `GET /api/v1/commands/{id}` — per-target status.
#[utoipa::path(
    get,
    path = "/api/v1/commands/{id}",
    tag = "commands",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Command id")),
    responses(
        (status = 200, description = "The command and each target's state", body = CommandState),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn get_command(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CommandState>, ApiError> {
    let command = s
        .control
        .get(&id)
        .map(|c| c.snapshot())
        .filter(|c| visible(&p, c))
        .ok_or_else(|| ApiError::NotFound(format!("no command `{id}`")))?;
    Ok(Json(CommandState {
        status: CommandStatus::of(&command),
        tally: command.tally(),
        command,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Start of the window (RFC 3339): commands completed from then.
    pub(crate) from: DateTime<Utc>,
    /// End of the window (RFC 3339), after `from`.
    pub(crate) to: DateTime<Utc>,
    /// Only this actor's commands (a token's name).
    pub(crate) actor: Option<String>,
}

/// Pages of the store's audit rows read for one answer at most: a district
/// token in a city of millions of commands gets `truncated` rather than a
/// scan of all of them.
const AUDIT_PAGES: usize = 100;

/// The audit trail's answer: at most 10,000 rows, `truncated` past that.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditTrail {
    pub(crate) total: usize,
    /// More commands completed in the window than one answer carries;
    /// narrow the window.
    pub(crate) truncated: bool,
    pub(crate) items: Vec<AuditEntry>,
}

/// `GET /api/v1/audit?from=&to=[&actor=]` — completed commands, from the
/// store when there is one (it outlives restarts), else from memory.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "commands",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "The commands completed in the window that the caller sees", body = AuditTrail),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn audit(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditTrail>, ApiError> {
    audit_trail(&s, &p, q).await.map(Json)
}

/// The commands completed in the window that the caller sees: the API's
/// route and the console's audit page.
pub(crate) async fn audit_trail(
    s: &AppState,
    p: &Principal,
    q: AuditQuery,
) -> Result<AuditTrail, ApiError> {
    if q.from >= q.to {
        return Err(ApiError::BadRequest("`from` must be before `to`".into()));
    }
    if let Some(store) = &s.store {
        // Pages of the window in (created_at, command id) order until
        // AUDIT_LIMIT rows the caller sees: a district token's rows are not
        // cut short by other districts' (`truncated` means its own go on).
        let mut items = Vec::new();
        let mut truncated = false;
        let mut from = q.from;
        let mut after: Option<(DateTime<Utc>, String)> = None;
        for page in 0.. {
            if page == AUDIT_PAGES {
                truncated = true;
                break;
            }
            let rows = store
                .db
                .audit(from, q.to, q.actor.as_deref(), AUDIT_LIMIT)
                .await
                .map_err(|e| ApiError::NotReady(format!("audit store unavailable: {e}")))?;
            let full = rows.len() as i64 == AUDIT_LIMIT;
            let last = rows.last().map(|r| (r.at, r.command.clone()));
            for r in rows {
                let seen = after
                    .as_ref()
                    .is_some_and(|(at, id)| (r.at, &r.command) <= (*at, id));
                if seen || !r.districts.iter().all(|d| p.sees(d)) {
                    continue;
                }
                if items.len() as i64 == AUDIT_LIMIT {
                    truncated = true;
                    break;
                }
                items.push(r);
            }
            if truncated || !full {
                break;
            }
            if let Some((at, _)) = &last {
                from = *at;
            }
            after = last;
        }
        return Ok(AuditTrail {
            total: items.len(),
            truncated,
            items,
        });
    }
    let rows: Vec<AuditEntry> = s
        .control
        .audit(q.from, q.to, q.actor.as_deref())
        .into_iter()
        .filter(|c| visible(p, c))
        .map(|c| AuditEntry {
            command: c.id.clone(),
            at: c.created_at,
            completed_at: c.completed_at.unwrap_or(c.created_at),
            actor: c.actor.clone(),
            source: json!(c.source).as_str().unwrap_or_default().to_string(),
            action: json!(c.action),
            kind: c.kind.to_string(),
            selector: c.selector.clone(),
            expires_at: c.expires_at,
            targets: c.targets.len() as i64,
            outcome: json!({"confirmed": c.tally().confirmed, "failed": c.tally().failed}),
            results: c
                .targets
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id, "state": t.state, "reason": t.reason, "attempts": t.attempts,
                    })
                })
                .collect(),
            districts: Vec::new(),
        })
        .collect();
    Ok(AuditTrail {
        total: rows.len(),
        truncated: false,
        items: rows,
    })
}

/// Most audit rows one request returns; narrow the window for more.
const AUDIT_LIMIT: i64 = 10_000;

/// `GET /api/v1/groups` — each group as the caller sees it: only its lamps
/// in the caller's scope; a group with none of them is left out.
#[utoipa::path(
    get,
    path = "/api/v1/groups",
    tag = "commands",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The lamp ids of each group, by group name", body = std::collections::HashMap<String, Vec<String>>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn groups(State(s): State<AppState>, p: Principal) -> Json<Value> {
    let inv = &s.live.inventory;
    let groups = s.control.groups();
    let seen: serde_json::Map<String, Value> = groups
        .iter()
        .filter_map(|(name, lamps)| Some((name.clone(), json!(p.visible_group(inv, lamps)?))))
        .collect();
    Json(Value::Object(seen))
}

/// `GET /api/v1/groups/{name}` — one group as the caller sees it; 404 for an
/// unknown one and for one with none of the caller's lamps alike.
#[utoipa::path(
    get,
    path = "/api/v1/groups/{name}",
    tag = "commands",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Group name")),
    responses(
        (status = 200, description = "The group's lamps the caller sees, in the group's order", body = Group),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn group(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Group>, ApiError> {
    let groups = s.control.groups();
    let lamps = groups
        .get(&name)
        .and_then(|lamps| p.visible_group(&s.live.inventory, lamps))
        .ok_or_else(|| ApiError::NotFound(format!("no group `{name}`")))?;
    let lamps = lamps.into_iter().map(String::from).collect();
    Ok(Json(Group { name, lamps }))
}

/// A named group of lamps.
#[derive(Serialize, ToSchema)]
pub(super) struct Group {
    name: String,
    /// Lamp ids, in the group's order.
    lamps: Vec<String>,
}

/// The lamps of a group, by id.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupBody {
    lamps: Vec<String>,
}

/// `PUT /api/v1/groups/{name}` — admins only: defines or replaces a group,
/// written to the groups file before it counts (`Control::set_group`).
#[utoipa::path(
    put,
    path = "/api/v1/groups/{name}",
    tag = "commands",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "Group name: 1 to 64 letters, digits or ` -_.:`, no space at either end")),
    request_body(content = GroupBody),
    responses(
        (status = 200, description = "The group as defined, kept in `control.groups_file`", body = Group),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = TooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn put_group(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<Group>, ApiError> {
    if p.role != Role::Admin || p.district.is_some() {
        return Err(ApiError::Forbidden(
            "only a city-wide admin defines groups".into(),
        ));
    }
    let body: GroupBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Unprocessable(format!("body: {e}")))?;
    s.control.set_group(&name, body.lamps.clone())?;
    // A plan that names the group changes with it: its version takes
    // effect now, not at the engine's next tick.
    if let Some(engine) = &s.schedule {
        engine.refresh_plan();
    }
    Ok(Json(Group {
        name,
        lamps: body.lamps,
    }))
}
