//! The TALQ routes and their handlers: each request checked as the module
//! doc of `talq` says, then answered from the live state (devices.rs) or
//! carried out on the control path (overrides.rs).

use super::address::{Dev, Index};
use super::classes;
use super::devices::{snapshot, Context, Snap};
use super::overrides::{self, Caller, OverrideBody};
use super::{Talq, TalqError};
use crate::api::AppState;
use crate::auth::Principal;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub(super) struct TalqState {
    pub(super) app: AppState,
    pub(super) talq: Arc<Talq>,
}

pub(super) type Params = Query<Vec<(String, String)>>;

/// The device, class, override, group and service routes (mod.rs adds
/// the schedule's and the answers to everything else).
pub(super) fn routes() -> Router<TalqState> {
    Router::new()
        .route("/devices", get(devices).patch(patch_devices))
        .route("/devices/count", get(devices_count))
        .route("/devices/{address}", get(device).patch(patch_device))
        .route(
            "/devices/{address}/{function}",
            get(function).patch(patch_function),
        )
        .route(
            "/devices/{address}/{function}/{attribute}",
            get(attribute).patch(patch_attribute),
        )
        .route("/device-classes", get(device_classes))
        .route("/device-classes/count", get(device_classes_count))
        .route("/device-classes/{name}", get(device_class))
        .route("/override-commands", axum::routing::post(override_command))
        .route("/groups", get(groups))
        .route("/groups/count", get(groups_count))
        .route("/groups/{address}", get(group))
        .route("/groups/{address}/members/count", get(group_members_count))
        .route("/services", get(services))
        .route("/services/{name}", get(service))
}

/// What every TALQ request is checked for (the module doc of `talq`):
/// who calls, the API version, the CMS's address and, for writes, the
/// request id. Returns the caller and the request id (writes only).
pub(super) fn check(
    s: &TalqState,
    headers: &HeaderMap,
    params: &[(String, String)],
    write: bool,
) -> Result<(Principal, Option<String>), TalqError> {
    let principal = crate::api::bearer_principal(&s.app.tokens, headers)
        .map_err(|e| TalqError::Unauthorized(e.to_string()))?
        .ok_or_else(|| {
            TalqError::Unauthorized("an `Authorization: Bearer <token>` header is required".into())
        })?;
    let allowed = &s.talq.settings.cms_tokens;
    if !allowed.is_empty() && !allowed.contains(&principal.name) {
        return Err(TalqError::Unauthorized(format!(
            "token `{}` is not one of `[talq] cms_tokens`",
            principal.name
        )));
    }
    let version = headers
        .get("talq-api-version")
        .ok_or_else(|| TalqError::HeaderMissing("header `talq-api-version` is required".into()))?;
    let version = version.to_str().unwrap_or_default().trim();
    // Minor versions within 2 are compatible (TALQ's semantic versioning).
    if version.split('.').next() != Some("2") {
        return Err(TalqError::HeaderValueNotValid(format!(
            "`talq-api-version` `{version}` is not 2.x (this gateway serves 2.7.1)"
        )));
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let uuid_param = |name: &str| -> Result<Option<Uuid>, TalqError> {
        param(name)
            .map(|v| {
                Uuid::parse_str(v).map_err(|_| {
                    TalqError::ParameterValueNotValid(format!("`{name}` `{v}` is not a UUID"))
                })
            })
            .transpose()
    };
    let client = uuid_param("clientAddress")?.ok_or_else(|| {
        TalqError::ParameterMissing("query parameter `clientAddress` is required".into())
    })?;
    if let Some(cms) = s.talq.settings.cms_address {
        if client != cms {
            return Err(TalqError::ParameterValueNotValid(format!(
                "`clientAddress` {client} is not this gateway's CMS"
            )));
        }
    }
    let request = if write {
        let id = uuid_param("talqRequestId")?.ok_or_else(|| {
            TalqError::ParameterMissing("query parameter `talqRequestId` is required".into())
        })?;
        uuid_param("talqOriginRequestId")?;
        Some(id.to_string())
    } else {
        None
    };
    Ok((principal, request))
}

fn parse_address(a: &str) -> Result<Uuid, TalqError> {
    Uuid::parse_str(a).map_err(|_| {
        TalqError::ParameterValueNotValid(format!("device address `{a}` is not a UUID"))
    })
}

/// The devices `principal` sees: another district's do not exist for it.
fn visible(index: &Index, principal: &Principal, dev: Dev) -> bool {
    index.district(dev).is_none_or(|d| principal.sees(d))
}

fn context(s: &TalqState, index: Arc<Index>) -> Context {
    let schedule = s.app.schedule.as_ref();
    Context::new(
        index,
        s.talq.gateway.clone(),
        s.app.time_zone,
        schedule.map_or_else(Utc::now, |s| s.now()),
        schedule.map(|s| s.plan()),
        schedule.map(|s| s.holds()).unwrap_or_default(),
        s.talq.overrides.snapshot(),
    )
}

/// One visible device by address, copied for its answer.
fn one(
    s: &TalqState,
    principal: &Principal,
    address: &str,
) -> Result<(Context, Uuid, Snap), TalqError> {
    let address = parse_address(address)?;
    let index = s.talq.index(&s.app.live.inventory);
    let dev = index
        .get(&address)
        .filter(|&d| visible(&index, principal, d))
        .ok_or_else(|| TalqError::NotFound(format!("no device {address}")))?;
    let (_, snap) = snapshot(&s.app.live, &[(address, dev)])
        .pop()
        .expect("one device asked, one copied");
    Ok((context(s, index), address, snap))
}

async fn devices(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Response, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let classes: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "deviceClasses")
        .flat_map(|(_, v)| v.split(','))
        .collect();
    let number = |name: &str| -> Result<Option<usize>, TalqError> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| {
                v.parse::<usize>().map_err(|_| {
                    TalqError::ParameterValueNotValid(format!(
                        "`{name}` `{v}` is not a whole number ≥ 0"
                    ))
                })
            })
            .transpose()
    };
    let (offset, limit) = (number("offset")?, number("limit")?);
    let index = s.talq.index(&s.app.live.inventory);
    let class_of = |d: Dev| match d {
        Dev::Gateway => classes::GATEWAY_CLASS,
        Dev::Lamp(_) => classes::SLC_CLASS,
        Dev::Rtu(_) => classes::RTU_CLASS,
    };
    let chosen: Vec<(Uuid, Dev)> = index
        .devices
        .iter()
        .copied()
        .filter(|&(_, d)| visible(&index, &principal, d))
        .filter(|&(_, d)| classes.is_empty() || classes.contains(&class_of(d)))
        .collect();
    let total = chosen.len();
    // Pagination only when asked for (TALQ: the whole list otherwise).
    let paged = offset.is_some() || limit.is_some();
    let start = offset.unwrap_or(0).min(total);
    let take = limit.unwrap_or(DEFAULT_LIMIT);
    let page: Vec<(Uuid, Dev)> = if paged {
        chosen.into_iter().skip(start).take(take).collect()
    } else {
        chosen
    };
    let count = page.len();
    let ctx = context(&s, index);
    let live = s.app.live.clone();
    // Copy under the lock, build and serialise on the blocking pool: the
    // answer grows with the city.
    let body = crate::api::blocking(move || -> Result<Vec<u8>, serde_json::Error> {
        let snaps = snapshot(&live, &page);
        let mut ctx = ctx;
        // Each device written as it is built: the answer for a city is
        // large (about 2 kB a lamp), its devices' JSON trees need not all
        // be held at once as well.
        let mut out = Vec::with_capacity(snaps.len() * 2048 + 2);
        out.push(b'[');
        for (i, (a, snap)) in snaps.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, &ctx.device(*a, snap))?;
        }
        out.push(b']');
        Ok(out)
    })
    .await
    .map_err(|e| TalqError::Internal(e.to_string()))?
    .map_err(|e| TalqError::Internal(e.to_string()))?;
    let mut response = (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if paged {
        let h = response.headers_mut();
        for (name, v) in [
            ("pagination-count", count),
            ("pagination-defaultlimit", DEFAULT_LIMIT),
            ("pagination-offset", start),
            ("pagination-totalcount", total),
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from(v));
        }
    }
    Ok(response)
}

/// Devices on a page when `offset` comes without `limit`.
const DEFAULT_LIMIT: usize = 1000;

async fn devices_count(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Json<usize>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let index = s.talq.index(&s.app.live.inventory);
    Ok(Json(
        index
            .devices
            .iter()
            .filter(|&&(_, d)| visible(&index, &principal, d))
            .count(),
    ))
}

async fn device(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path(address): Path<String>,
) -> Result<Json<Value>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let (mut ctx, address, snap) = one(&s, &principal, &address)?;
    Ok(Json(ctx.device(address, &snap)))
}

async fn function(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path((address, function)): Path<(String, String)>,
) -> Result<Json<Value>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let scope = params
        .iter()
        .find(|(k, _)| k == "attributeScope")
        .map(|(_, v)| v.clone());
    let (mut ctx, _, snap) = one(&s, &principal, &address)?;
    let spec = find_function(&ctx, &snap, &function)?;
    Ok(Json(ctx.function(&snap, &function, spec, scope.as_deref())))
}

fn find_function(
    ctx: &Context,
    snap: &Snap,
    function: &str,
) -> Result<&'static classes::FunctionSpec, TalqError> {
    ctx.function_ids(snap)
        .into_iter()
        .find(|(id, _)| id == function)
        .map(|(_, spec)| spec)
        .ok_or_else(|| TalqError::NotFound(format!("the device has no function `{function}`")))
}

fn find_attribute(
    spec: &'static classes::FunctionSpec,
    attribute: &str,
) -> Result<&'static classes::AttrSpec, TalqError> {
    spec.attributes
        .iter()
        .find(|a| a.name == attribute)
        .ok_or_else(|| {
            TalqError::NotFound(format!(
                "function `{}` has no attribute `{attribute}` here",
                spec.id
            ))
        })
}

async fn attribute(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path((address, function, attribute)): Path<(String, String, String)>,
) -> Result<Json<Value>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let (mut ctx, _, snap) = one(&s, &principal, &address)?;
    let spec = find_function(&ctx, &snap, &function)?;
    let a = find_attribute(spec, &attribute)?;
    Ok(Json(ctx.attribute(&snap, &function, a)))
}

/// The writes a `PATCH` asks for: (function id, attribute, its JSON).
type Writes = Vec<(String, String, Value)>;

/// `PATCH` of a device (`{functions: [...]}`), a function or an
/// attribute: of what the gateway serves only a lamp actuator's
/// `targetLightCommand` may be written, and writing it is an override of
/// that lamp (overrides.rs). A write of anything else is refused whole.
fn patch(
    s: &TalqState,
    headers: &HeaderMap,
    params: &[(String, String)],
    address: &str,
    writes: impl FnOnce(&[u8]) -> Result<Writes, TalqError>,
    body: &[u8],
) -> Result<StatusCode, TalqError> {
    let (principal, request) = check(s, headers, params, true)?;
    let write = resolve(s, &principal, address, writes(body)?)?;
    carry_out(s, &principal, request.as_deref().unwrap_or_default(), write)?;
    Ok(StatusCode::ACCEPTED)
}

/// One lamp's write: its position, id and the command (`None`: end the
/// override).
type LampWrite = (usize, String, Option<overrides::CommandBody>);

/// Checks a device's writes: only a lamp's `targetLightCommand`.
fn resolve(
    s: &TalqState,
    principal: &Principal,
    address: &str,
    writes: Writes,
) -> Result<LampWrite, TalqError> {
    let (ctx, _, snap) = one(s, principal, address)?;
    let mut command = None;
    for (function, attribute, value) in writes {
        let spec = find_function(&ctx, &snap, &function)?;
        let a = find_attribute(spec, &attribute)?;
        if a.read_only {
            return Err(TalqError::ReadOnly(format!(
                "`{function}.{attribute}` is read-only"
            )));
        }
        if value["type"] != a.kind {
            return Err(TalqError::Payload(format!(
                "{function}.{attribute}.type: must be `{}`",
                a.kind
            )));
        }
        let c: Option<overrides::CommandBody> = match value.get("value") {
            Some(v) => Some(overrides::parse(v.to_string().as_bytes())?),
            None => None,
        };
        // Checked here, so that a list is refused whole.
        if let Some(c) = &c {
            overrides::validate(c)?;
        }
        command = Some(c);
    }
    let Some(command) = command else {
        return Err(TalqError::Payload("nothing to write".into()));
    };
    let Snap::Lamp { position, .. } = snap else {
        return Err(TalqError::OverrideAddressNotValid(
            "the device has no lamp actuator".into(),
        ));
    };
    let lamp = ctx.index.inventory.lamps[position].id.clone();
    Ok((position, lamp, command))
}

fn carry_out(
    s: &TalqState,
    principal: &Principal,
    request_id: &str,
    (position, lamp, command): LampWrite,
) -> Result<(), TalqError> {
    overrides::apply(
        &s.talq.overrides,
        &s.app.control,
        s.app.schedule.as_ref(),
        Caller {
            principal,
            request_id,
        },
        vec![(position, lamp)],
        command,
    )
}

/// `PATCH /devices`: a list of devices, each as `PATCH` of one; every
/// device is checked before any lamp is commanded.
async fn patch_devices(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Result<StatusCode, TalqError> {
    let (principal, request) = check(&s, &headers, &params, true)?;
    let list: Vec<Value> = overrides::parse(&body)?;
    let mut checked = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let address = d["address"]
            .as_str()
            .ok_or_else(|| TalqError::Payload(format!("[{i}].address: required")))?;
        checked.push(resolve(&s, &principal, address, device_writes(d)?)?);
    }
    let request = request.unwrap_or_default();
    for (i, write) in checked.into_iter().enumerate() {
        // One command per device, each its own idempotency key.
        carry_out(&s, &principal, &format!("{request}:{i}"), write)?;
    }
    Ok(StatusCode::ACCEPTED)
}

/// The writes of a `Device` object (its functions' attributes).
fn device_writes(d: &Value) -> Result<Writes, TalqError> {
    let mut out = Vec::new();
    for f in d["functions"].as_array().into_iter().flatten() {
        let id = f["id"]
            .as_str()
            .ok_or_else(|| TalqError::Payload("functions[].id: required".into()))?;
        out.extend(function_writes(id, f)?);
    }
    Ok(out)
}

/// The attributes a `Function` object carries (all but `id` and `type`).
fn function_writes(id: &str, f: &Value) -> Result<Writes, TalqError> {
    let Some(f) = f.as_object() else {
        return Err(TalqError::Payload("a function is a JSON object".into()));
    };
    Ok(f.iter()
        .filter(|(k, _)| *k != "id" && *k != "type")
        .map(|(k, v)| (id.to_string(), k.clone(), v.clone()))
        .collect())
}

async fn patch_device(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path(address): Path<String>,
    body: Bytes,
) -> Result<StatusCode, TalqError> {
    let writes = |b: &[u8]| device_writes(&overrides::parse::<Value>(b)?);
    patch(&s, &headers, &params, &address, writes, &body)
}

async fn patch_function(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path((address, function)): Path<(String, String)>,
    body: Bytes,
) -> Result<StatusCode, TalqError> {
    let writes = |b: &[u8]| -> Result<Writes, TalqError> {
        function_writes(&function, &overrides::parse::<Value>(b)?)
    };
    patch(&s, &headers, &params, &address, writes, &body)
}

async fn patch_attribute(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path((address, function, attribute)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<StatusCode, TalqError> {
    let writes = |b: &[u8]| -> Result<Writes, TalqError> {
        Ok(vec![(function, attribute, overrides::parse::<Value>(b)?)])
    };
    patch(&s, &headers, &params, &address, writes, &body)
}

/// `POST /override-commands`: 202, the command under way (overrides.rs).
async fn override_command(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Result<StatusCode, TalqError> {
    let (principal, request) = check(&s, &headers, &params, true)?;
    let body: OverrideBody = overrides::parse(&body)?;
    let index = s.talq.index(&s.app.live.inventory);
    let seen = super::groups::visible(&s.app.control, &index, &principal);
    let lamps = overrides::lamps_of(&index, &principal, &seen, &body.addresses)?;
    overrides::apply(
        &s.talq.overrides,
        &s.app.control,
        s.app.schedule.as_ref(),
        Caller {
            principal: &principal,
            request_id: request.as_deref().unwrap_or_default(),
        },
        lamps,
        body.target_command,
    )?;
    Ok(StatusCode::ACCEPTED)
}

async fn device_classes(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Json<Vec<Value>>, TalqError> {
    check(&s, &headers, &params, false)?;
    let index = s.talq.index(&s.app.live.inventory);
    Ok(Json(classes::classes(index.max_circuits)))
}

async fn device_classes_count(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Json<usize>, TalqError> {
    check(&s, &headers, &params, false)?;
    let index = s.talq.index(&s.app.live.inventory);
    Ok(Json(classes::classes(index.max_circuits).len()))
}

async fn device_class(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path(name): Path<String>,
) -> Result<Json<Value>, TalqError> {
    check(&s, &headers, &params, false)?;
    let index = s.talq.index(&s.app.live.inventory);
    classes::classes(index.max_circuits)
        .into_iter()
        .find(|c| c["name"] == name.as_str())
        .map(Json)
        .ok_or_else(|| TalqError::NotFound(format!("no device class `{name}`")))
}

/// The services this gateway offers, with its limits.
fn service_list() -> Vec<Value> {
    use crate::schedule::model as book;
    vec![
        serde_json::json!({
            "name": "ConfigurationService",
            "commissioningSupported": false,
            "devicesPaginationSupported": true,
            "supportedProfiles": ["lighting"],
        }),
        serde_json::json!({
            "name": "ControlService",
            // What calendars.rs and programs.rs read and write exactly.
            "supportedTypes": ["AbsoluteActivePeriod", "AstroClockTimeControl", "ccDate", "ccDay"],
            "maximumCalendars": book::MAX_CALENDARS,
            "maximumPrograms": book::MAX_PROGRAMS,
            // Every rule's program and the default.
            "maxProgramsPerCalendar": book::MAX_RULES_PER_CALENDAR + 1,
            "maxSwitchPointsPerProgram": book::MAX_POINTS_PER_PROGRAM,
            "maxActivePeriodsPerProgram": 1,
            "dayOffset": 0,
            "ccDateSupport": "dayOfYearOnly",
            "ccDaySupport": "noOccurrences",
            "programSecondsSupported": false,
        }),
    ]
}

async fn services(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Json<Vec<Value>>, TalqError> {
    check(&s, &headers, &params, false)?;
    Ok(Json(service_list()))
}

async fn service(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path(name): Path<String>,
) -> Result<Json<Value>, TalqError> {
    check(&s, &headers, &params, false)?;
    service_list()
        .into_iter()
        .find(|v| v["name"] == name.as_str())
        .map(Json)
        .ok_or_else(|| TalqError::NotFound(format!("no service `{name}`")))
}

async fn groups(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Json<Vec<Value>>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let index = s.talq.index(&s.app.live.inventory);
    let owner = s.talq.settings.cms_address;
    Ok(Json(
        super::groups::visible(&s.app.control, &index, &principal)
            .iter()
            .map(|g| super::groups::group(g, &index, owner))
            .collect(),
    ))
}

async fn groups_count(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
) -> Result<Json<usize>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let index = s.talq.index(&s.app.live.inventory);
    Ok(Json(
        super::groups::visible(&s.app.control, &index, &principal).len(),
    ))
}

/// The group at `address` as the caller sees it.
fn find_group(
    s: &TalqState,
    principal: &Principal,
    address: &str,
) -> Result<(Arc<Index>, super::groups::Seen), TalqError> {
    let address = Uuid::parse_str(address).map_err(|_| {
        TalqError::ParameterValueNotValid(format!("group address `{address}` is not a UUID"))
    })?;
    let index = s.talq.index(&s.app.live.inventory);
    let g = super::groups::visible(&s.app.control, &index, principal)
        .into_iter()
        .find(|g| g.address == address)
        .ok_or_else(|| TalqError::NotFound(format!("no group {address}")))?;
    Ok((index, g))
}

async fn group(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path(address): Path<String>,
) -> Result<Json<Value>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let (index, g) = find_group(&s, &principal, &address)?;
    Ok(Json(super::groups::group(
        &g,
        &index,
        s.talq.settings.cms_address,
    )))
}

async fn group_members_count(
    State(s): State<TalqState>,
    headers: HeaderMap,
    Query(params): Params,
    Path(address): Path<String>,
) -> Result<Json<usize>, TalqError> {
    let (principal, _) = check(&s, &headers, &params, false)?;
    let (_, g) = find_group(&s, &principal, &address)?;
    Ok(Json(g.lamps.len()))
}
