//! Commands, groups and the audit trail over HTTP.

use super::inventory::visible_lamp;
use super::query::{ApiPath, ApiQuery, JsonBody};
use super::{ApiError, AppState};
use crate::auth::{Principal, Role};
use crate::control::{
    check_name, Command, CommandBody, ControlError, RequestError, Selector, Source, Submission,
};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

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

fn accepted(command: Command) -> impl IntoResponse {
    let location = format!("/api/v1/commands/{}", command.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location.clone())],
        Json(json!({
            "id": command.id,
            "status": command.status(),
            "targets": command.targets.len(),
            "tally": command.tally(),
            "status_url": location,
        })),
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

/// `POST /api/v1/lamps/{id}/commands`
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

/// `POST /api/v1/commands` — a group selector.
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

/// `GET /api/v1/commands/{id}` — per-target status.
pub(super) async fn get_command(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let command = s
        .control
        .get(&id)
        .map(|c| c.snapshot())
        .filter(|c| visible(&p, c))
        .ok_or_else(|| ApiError::NotFound(format!("no command `{id}`")))?;
    let mut v = serde_json::to_value(&command).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["status"] = json!(command.status());
    v["tally"] = json!(command.tally());
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    actor: Option<String>,
}

/// `GET /api/v1/audit?from=&to=[&actor=]` — completed commands, from the
/// store when there is one (it outlives restarts), else from memory.
pub(super) async fn audit(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    if q.from >= q.to {
        return Err(ApiError::BadRequest("`from` must be before `to`".into()));
    }
    if let Some(store) = &s.store {
        let rows = store
            .db
            .audit(q.from, q.to, q.actor.as_deref(), AUDIT_LIMIT)
            .await
            .map_err(|e| ApiError::NotReady(format!("audit store unavailable: {e}")))?;
        let truncated = rows.len() as i64 == AUDIT_LIMIT;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|r| r.districts.iter().all(|d| p.sees(d)))
            .collect();
        return Ok(Json(
            json!({ "total": rows.len(), "truncated": truncated, "items": rows }),
        ));
    }
    let rows: Vec<Value> = s
        .control
        .audit(q.from, q.to, q.actor.as_deref())
        .into_iter()
        .filter(|c| visible(&p, c))
        .map(|c| {
            json!({
                "command": c.id, "at": c.created_at, "completed_at": c.completed_at,
                "actor": c.actor, "source": c.source, "action": c.action, "kind": c.kind,
                "selector": c.selector, "expires_at": c.expires_at, "targets": c.targets.len(),
                "outcome": {"confirmed": c.tally().confirmed, "failed": c.tally().failed},
                "results": c.targets.iter().map(|t| json!({
                    "id": t.id, "state": t.state, "reason": t.reason, "attempts": t.attempts,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(
        json!({ "total": rows.len(), "truncated": false, "items": rows }),
    ))
}

/// Most audit rows one request returns; narrow the window for more.
const AUDIT_LIMIT: i64 = 10_000;

/// `GET /api/v1/groups` — each group as the caller sees it: only its lamps
/// in the caller's scope; a group with none of them is left out.
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
pub(super) async fn group(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let groups = s.control.groups();
    let lamps = groups
        .get(&name)
        .and_then(|lamps| p.visible_group(&s.live.inventory, lamps))
        .ok_or_else(|| ApiError::NotFound(format!("no group `{name}`")))?;
    Ok(Json(json!({ "name": name, "lamps": lamps })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupBody {
    lamps: Vec<String>,
}

/// `PUT /api/v1/groups/{name}` — admins only.
pub(super) async fn put_group(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(name): ApiPath<String>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<Value>, ApiError> {
    if p.role != Role::Admin || p.district.is_some() {
        return Err(ApiError::Forbidden(
            "only a city-wide admin defines groups".into(),
        ));
    }
    let body: GroupBody = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Unprocessable(format!("body: {e}")))?;
    s.control.set_group(&name, body.lamps.clone())?;
    Ok(Json(json!({ "name": name, "lamps": body.lamps })))
}
