//! `/api/v1/alarms`: the open alarms from the engine, the closed ones from
//! the store; acknowledgement and closing. To a district token another
//! district's alarms do not exist.

use super::error::{
    BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthorized, Unavailable,
    UnsupportedMediaType,
};
use super::figures::SummaryQuery;
use super::inventory::{scope, Page};
use super::query::{paging, ApiPath, ApiQuery, JsonBody};
use super::{ApiError, AppState};
use crate::alarm::{Alarm, AlarmError, AlarmFilter, AlarmKind, AlarmState, Severity};
use crate::auth::{Principal, Role};
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlarmQuery {
    /// `active`, `acknowledged`, `cleared`, `closed`, `open` (all but
    /// closed; the default) or `all`.
    pub(crate) state: Option<String>,
    /// One alarm kind (`lamp_failure`, `supply_loss`, …).
    pub(crate) kind: Option<String>,
    /// Only this district's (400 if the caller sees no such district).
    pub(crate) district: Option<String>,
    pub(crate) cabinet: Option<String>,
    /// The device's id: a lamp, an RTU, `CABINET/n`, a cabinet, an endpoint.
    pub(crate) device: Option<String>,
    /// `emergency`, `serious` or `ordinary`.
    pub(crate) severity: Option<String>,
    /// Only alarms past (true) or within (false) their repair deadline.
    pub(crate) overdue: Option<bool>,
    /// Raised at or after (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub(crate) from: Option<String>,
    /// Raised before (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub(crate) to: Option<String>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub(crate) limit: Option<usize>,
    #[param(default = 0)]
    pub(crate) offset: Option<usize>,
}

fn parse_filter(s: &AppState, p: &Principal, q: AlarmQuery) -> Result<AlarmFilter, ApiError> {
    let states = match q.state.as_deref().unwrap_or("open") {
        "open" => vec![
            AlarmState::Active,
            AlarmState::Acknowledged,
            AlarmState::Cleared,
        ],
        "all" => AlarmState::ALL.to_vec(),
        other => vec![AlarmState::parse(other).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "state `{other}` is not active, acknowledged, cleared, closed, open or all"
            ))
        })?],
    };
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            AlarmKind::parse(k)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown alarm kind `{k}`")))
        })
        .transpose()?;
    let severity = q
        .severity
        .as_deref()
        .map(|k| {
            Severity::parse(k).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "severity `{k}` is not emergency, serious or ordinary"
                ))
            })
        })
        .transpose()?;
    let time =
        |name: &str, v: Option<&str>| v.map(|v| super::history::time(name, Some(v))).transpose();
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            return Err(ApiError::BadRequest("`from` must be before `to`".into()));
        }
    }
    if let Some(c) = &q.cabinet {
        if p.visible_cabinet(&s.live.inventory, c).is_none() {
            return Err(ApiError::BadRequest(format!("unknown cabinet `{c}`")));
        }
    }
    Ok(AlarmFilter {
        states: states.into_iter().collect(),
        kind,
        severity,
        district: scope(s, p, q.district)?,
        visible: p.district.clone().map(|d| vec![d]),
        cabinet: q.cabinet,
        device_id: q.device,
        overdue: q.overdue,
        raised_from: from,
        raised_to: to,
    })
}

/// `GET /api/v1/alarms`: newest first. Open alarms come from the engine
/// (current to the last poll); closed ones from the store.
#[utoipa::path(
    get,
    path = "/api/v1/alarms",
    tag = "alarms",
    security(("bearer" = [])),
    params(AlarmQuery),
    responses(
        (status = 200, description = "A page of alarms", body = Page<Alarm>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn alarms(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<AlarmQuery>,
) -> Result<Json<Page<Alarm>>, ApiError> {
    alarm_page(&s, &p, q).await.map(Json)
}

/// A page of the alarms the caller sees that match `q`, newest first: the
/// API's list and the console's alarm page.
pub(crate) async fn alarm_page(
    s: &AppState,
    p: &Principal,
    q: AlarmQuery,
) -> Result<Page<Alarm>, ApiError> {
    let (limit, offset) = paging(q.limit, q.offset)?;
    let filter = parse_filter(s, p, q)?;
    let now = Utc::now();
    let (total, items) = list(s, &filter, limit, offset, now).await?;
    Ok(Page {
        total,
        limit,
        offset,
        items,
    })
}

/// The matching alarms (the filter carries what the caller sees): the
/// engine's open ones merged, by id, over the store's (the engine's copy is
/// the newer).
async fn list(
    s: &AppState,
    filter: &AlarmFilter,
    limit: usize,
    offset: usize,
    now: DateTime<Utc>,
) -> Result<(usize, Vec<Alarm>), ApiError> {
    let open: Vec<Alarm> = s.alarms.open_matching(filter, now);
    let wants_closed = filter.states.contains(&AlarmState::Closed);
    let Some(store) = s.store.as_ref().filter(|_| wants_closed) else {
        let total = open.len();
        return Ok((total, open.into_iter().skip(offset).take(limit).collect()));
    };
    // Closed alarms are the store's (the engine forgets them): the newest
    // `offset + limit` of them are enough for this page of the merge.
    let closed = AlarmFilter {
        states: [AlarmState::Closed].into(),
        ..filter.clone()
    };
    let (closed_total, closed) = store
        .alarms(&closed, (offset + limit) as u64, 0, now)
        .await
        .map_err(|e| ApiError::NotReady(format!("the store cannot answer now: {e}")))?;
    let total = open.len() + closed_total as usize;
    let mut all = open;
    all.extend(closed);
    all.sort_by_key(|a| std::cmp::Reverse((a.raised_at, a.id)));
    Ok((total, all.into_iter().skip(offset).take(limit).collect()))
}

/// One alarm the caller sees, open or (from the store) closed.
async fn find(s: &AppState, p: &Principal, id: i64, now: DateTime<Utc>) -> Result<Alarm, ApiError> {
    let missing = || ApiError::NotFound(format!("no alarm {id}"));
    let alarm = match s.alarms.get(id, now) {
        Some(a) => Some(a),
        // Closed (or not yet known to this run): the store's record.
        None => match &s.store {
            Some(store) => store
                .alarm(id)
                .await
                .map_err(|e| ApiError::NotReady(format!("the store cannot answer now: {e}")))?
                .map(|a| a.as_of(now)),
            None => None,
        },
    };
    alarm.filter(|a| p.sees(&a.district)).ok_or_else(missing)
}

fn parse_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::NotFound(format!("no alarm {id}")))
}

/// `GET /api/v1/alarms/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/alarms/{id}",
    tag = "alarms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The alarm's id")),
    responses(
        (status = 200, description = "The alarm", body = Alarm),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn alarm(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Alarm>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(find(&s, &p, id, Utc::now()).await?))
}

/// The body of an acknowledgement.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AckBody {
    /// What is being done about it (1–1000 characters).
    comment: String,
}

const MAX_COMMENT: usize = 1000;

/// `POST /api/v1/alarms/{id}/ack`: an operator (of the alarm's district, or
/// city-wide) acknowledges it with a comment.
#[utoipa::path(
    post,
    path = "/api/v1/alarms/{id}/ack",
    tag = "alarms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The alarm's id")),
    request_body = AckBody,
    responses(
        (status = 200, description = "The acknowledged alarm", body = Alarm),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Invalid),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn acknowledge(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
    JsonBody(bytes): JsonBody,
) -> Result<Json<Alarm>, ApiError> {
    let body: Result<AckBody, _> =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes));
    match body {
        Ok(b) => acknowledge_alarm(&s, &p, &id, &b.comment).await.map(Json),
        Err(e) => {
            // Who may act is answered before what the body says.
            operable(&s, &p, &id, Utc::now(), "acknowledge").await?;
            Err(ApiError::Unprocessable(format!(
                "{}: {}",
                e.path(),
                e.inner()
            )))
        }
    }
}

/// The caller acknowledges alarm `id` with `comment`: the API's and the
/// console's one path (404 unseen, 403 viewer, 422 comment, 409 closed).
pub(crate) async fn acknowledge_alarm(
    s: &AppState,
    p: &Principal,
    id: &str,
    comment: &str,
) -> Result<Alarm, ApiError> {
    let now = Utc::now();
    let alarm = operable(s, p, id, now, "acknowledge").await?;
    let id = alarm.id;
    let comment = comment.trim();
    if comment.is_empty()
        || comment.chars().count() > MAX_COMMENT
        || comment.chars().any(char::is_control)
    {
        return Err(ApiError::Unprocessable(format!(
            "comment: 1 to {MAX_COMMENT} characters without control characters"
        )));
    }
    if alarm.state == AlarmState::Closed {
        return Err(ApiError::Conflict(format!("alarm {id} is closed")));
    }
    s.alarms
        .acknowledge(id, &p.name, comment, now)
        .map_err(conflict)
}

/// `POST /api/v1/alarms/{id}/close`: an operator closes a cleared alarm; a
/// city-wide admin any open one (a false alarm).
#[utoipa::path(
    post,
    path = "/api/v1/alarms/{id}/close",
    tag = "alarms",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "The alarm's id")),
    responses(
        (status = 200, description = "The closed alarm", body = Alarm),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn close(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Alarm>, ApiError> {
    let now = Utc::now();
    let alarm = operable(&s, &p, &id, now, "close").await?;
    let id = alarm.id;
    if alarm.state == AlarmState::Closed {
        return Err(ApiError::Conflict(format!("alarm {id} is closed already")));
    }
    let admin = p.role == Role::Admin && p.district.is_none();
    s.alarms
        .close(id, &p.name, admin, now)
        .map(Json)
        .map_err(conflict)
}

/// The alarm a caller acts on: one it sees (else 404, whatever its role),
/// and the caller may act (else 403).
async fn operable(
    s: &AppState,
    p: &Principal,
    id: &str,
    now: DateTime<Utc>,
    what: &str,
) -> Result<Alarm, ApiError> {
    let alarm = find(s, p, parse_id(id)?, now).await?;
    if !p.can_control() {
        return Err(ApiError::Forbidden(format!(
            "`{}` has the viewer role and cannot {what} alarms",
            p.name
        )));
    }
    Ok(alarm)
}

fn conflict(e: AlarmError) -> ApiError {
    ApiError::Conflict(e.to_string())
}

/// Counts of the open alarms the caller sees.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub(super) struct AlarmSummary {
    /// Alarms not closed.
    open: usize,
    /// Active or acknowledged.
    standing: usize,
    /// Standing past their repair deadline.
    overdue: usize,
    by_state: BTreeMap<AlarmState, usize>,
    by_kind: BTreeMap<AlarmKind, usize>,
    by_severity: BTreeMap<Severity, usize>,
    /// Standing alarms by kind.
    standing_by_kind: BTreeMap<AlarmKind, usize>,
}

/// `GET /api/v1/alarms/summary`: what is open now, by state, kind and
/// severity, and how many are overdue.
#[utoipa::path(
    get,
    operation_id = "alarm_summary",
    path = "/api/v1/alarms/summary",
    tag = "alarms",
    security(("bearer" = [])),
    params(SummaryQuery),
    responses(
        (status = 200, description = "Counts of the open alarms", body = AlarmSummary),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn summary(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> Result<Json<AlarmSummary>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let mut out = AlarmSummary::default();
    s.alarms.for_each_open(Utc::now(), |a, overdue| {
        if !p.sees(&a.district) || district.as_ref().is_some_and(|d| *d != a.district) {
            return;
        }
        out.open += 1;
        *out.by_state.entry(a.state).or_default() += 1;
        *out.by_kind.entry(a.kind).or_default() += 1;
        *out.by_severity.entry(a.severity).or_default() += 1;
        if a.state.is_standing() {
            out.standing += 1;
            *out.standing_by_kind.entry(a.kind).or_default() += 1;
        }
        if overdue {
            out.overdue += 1;
        }
    });
    Ok(Json(out))
}
