//! Districts, cabinets and RTUs with their live state; the list helpers and
//! the scope lookups the other resources share (lamps are in lamps.rs).

use super::error::{BadRequest, NotFound, Unauthorized, Unavailable};
use super::query::{paging, ApiPath, ApiQuery};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::dialin::DtuStatus;
use crate::state::RtuView;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A page of a list: `total` matching, `items` from `offset`, at most `limit`.
#[derive(Serialize, ToSchema)]
pub(crate) struct Page<T> {
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
    pub items: Vec<T>,
}

/// A whole list: `total` counts what the caller sees.
#[derive(Serialize, ToSchema)]
pub(super) struct Listing<T> {
    pub total: u64,
    pub items: Vec<T>,
}

fn page<T>(all: impl Iterator<Item = T>, limit: usize, offset: usize) -> Page<T> {
    let mut total = 0;
    let mut items = Vec::new();
    for (i, item) in all.enumerate() {
        total += 1;
        if i >= offset && items.len() < limit {
            items.push(item);
        }
    }
    Page {
        total,
        limit,
        offset,
        items,
    }
}

/// The position of a lamp the caller may see; another district's lamp is
/// 404 to a district token, as an unknown one is (auth/scope.rs).
pub(super) fn visible_lamp(s: &AppState, p: &Principal, id: &str) -> Result<usize, ApiError> {
    p.visible_lamp(&s.live.inventory, id)
        .ok_or_else(|| ApiError::NotFound(format!("no lamp `{id}`")))
}

/// The position of the cabinet whose RTU the caller may see.
pub(super) fn visible_rtu(s: &AppState, p: &Principal, id: &str) -> Result<usize, ApiError> {
    p.visible_rtu(&s.live.inventory, id)
        .ok_or_else(|| ApiError::NotFound(format!("no RTU `{id}`")))
}

/// The district a listing is confined to: the one asked for (400 if unknown
/// to the caller, which another district's is to a district token), else the
/// caller's own, if any.
pub(super) fn scope(
    s: &AppState,
    p: &Principal,
    asked: Option<String>,
) -> Result<Option<String>, ApiError> {
    match asked {
        Some(d) if p.visible_district(&s.live.inventory, &d).is_none() => {
            Err(ApiError::BadRequest(format!("unknown district `{d}`")))
        }
        Some(d) => Ok(Some(d)),
        None => Ok(p.district.clone()),
    }
}

/// A district with the counts of what it holds.
#[derive(Serialize, ToSchema)]
pub(super) struct DistrictView {
    id: String,
    name: String,
    cabinets: usize,
    rtus: usize,
    lamps: usize,
    slcs: usize,
}

fn district_json(s: &AppState, id: &str) -> Option<DistrictView> {
    let inv = &s.live.inventory;
    let d = inv.district(id)?;
    let cabinets = inv.cabinets.iter().filter(|c| c.district == d.id);
    let (mut n_cab, mut n_rtu) = (0, 0);
    for c in cabinets {
        n_cab += 1;
        n_rtu += usize::from(c.rtu.is_some());
    }
    let (mut n_lamp, mut n_slc) = (0, 0);
    for l in &inv.lamps {
        if inv.cabinet(&l.cabinet).is_some_and(|c| c.district == d.id) {
            n_lamp += 1;
            n_slc += usize::from(l.slc.is_some());
        }
    }
    Some(DistrictView {
        id: d.id.clone(),
        name: d.name.clone(),
        cabinets: n_cab,
        rtus: n_rtu,
        lamps: n_lamp,
        slcs: n_slc,
    })
}

/// The districts the caller sees, with their counts.
///
/// Counting a district's lamps walks them all: on the blocking pool.
#[utoipa::path(
    get,
    path = "/api/v1/districts",
    tag = "inventory",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every district the caller sees", body = Listing<DistrictView>),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn districts(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<Listing<DistrictView>>, ApiError> {
    let items: Vec<DistrictView> = super::blocking(move || {
        s.live
            .inventory
            .districts
            .iter()
            .filter(|d| p.sees(&d.id))
            .filter_map(|d| district_json(&s, &d.id))
            .collect()
    })
    .await?;
    Ok(Json(Listing {
        total: items.len() as u64,
        items,
    }))
}

/// One district with its counts.
#[utoipa::path(
    get,
    path = "/api/v1/districts/{id}",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "District id")),
    responses(
        (status = 200, description = "The district", body = DistrictView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn district(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DistrictView>, ApiError> {
    let d = p
        .visible_district(&s.live.inventory, &id)
        .map(|d| d.id.clone())
        .ok_or_else(|| ApiError::NotFound(format!("no district `{id}`")))?;
    super::blocking(move || district_json(&s, &d))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no district `{id}`")))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct CabinetQuery {
    /// Only this district's (400 if the caller sees no such district);
    /// a district token's own by default.
    district: Option<String>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    #[param(default = 0)]
    offset: Option<usize>,
}

/// A cabinet (配电箱) with its RTU's live state.
#[derive(Serialize, ToSchema)]
pub(super) struct CabinetView<'a> {
    id: &'a str,
    district: &'a str,
    name: &'a str,
    lat: Option<f64>,
    lon: Option<f64>,
    circuits: u8,
    /// As written in the inventory: `host:port`, `serial:PATH?…` or `dtu:ID`.
    endpoint: Option<&'a str>,
    /// How Modbus frames travel on the endpoint's link.
    #[schema(value_type = String, pattern = "^(tcp|rtu)$")]
    framing: crate::inventory::Framing,
    /// Lamps fed by the cabinet.
    lamps: usize,
    /// `null` for a cabinet without an RTU.
    rtu: Option<RtuAnswer<'a>>,
}

fn cabinet_json(s: &AppState, index: usize) -> Value {
    let inv = &s.live.inventory;
    let c = &inv.cabinets[index];
    let live = s.live.read();
    let view = CabinetView {
        id: &c.id,
        district: &c.district,
        name: &c.name,
        lat: c.lat,
        lon: c.lon,
        circuits: c.circuits,
        endpoint: c.endpoint.as_deref(),
        framing: c.framing,
        lamps: inv.lamps_on_cabinet(index),
        rtu: RtuView::new(c, &live, index).map(|v| rtu_answer(s, v)),
    };
    serde_json::to_value(view).expect("serialisable")
}

/// The cabinets the caller sees, in inventory order.
#[utoipa::path(
    get,
    path = "/api/v1/cabinets",
    tag = "inventory",
    security(("bearer" = [])),
    params(CabinetQuery),
    responses(
        (status = 200, description = "A page of cabinets", body = Page<CabinetView<'_>>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn cabinets(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<CabinetQuery>,
) -> Result<Json<Page<Value>>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let (limit, offset) = paging(q.limit, q.offset)?;
    let inv = &s.live.inventory;
    let matching = inv
        .cabinets
        .iter()
        .enumerate()
        .filter(|(_, c)| district.as_ref().is_none_or(|d| &c.district == d))
        .map(|(i, _)| i)
        .collect::<Vec<_>>();
    let p = page(matching.into_iter(), limit, offset);
    Ok(Json(Page {
        items: p.items.into_iter().map(|i| cabinet_json(&s, i)).collect(),
        total: p.total,
        limit,
        offset,
    }))
}

/// One cabinet with its RTU's live state.
#[utoipa::path(
    get,
    path = "/api/v1/cabinets/{id}",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Cabinet id")),
    responses(
        (status = 200, description = "The cabinet", body = CabinetView<'_>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn cabinet(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let i = p
        .visible_cabinet(&s.live.inventory, &id)
        .ok_or_else(|| ApiError::NotFound(format!("no cabinet `{id}`")))?;
    Ok(Json(cabinet_json(&s, i)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RtuQuery {
    /// Only this district's (400 if the caller sees no such district);
    /// a district token's own by default.
    district: Option<String>,
    /// Only the RTUs online (true) or offline (false).
    online: Option<bool>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    #[param(default = 0)]
    offset: Option<usize>,
}

/// The cabinet RTUs the caller sees, in inventory order.
#[utoipa::path(
    get,
    path = "/api/v1/rtus",
    tag = "inventory",
    security(("bearer" = [])),
    params(RtuQuery),
    responses(
        (status = 200, description = "A page of RTUs", body = Page<RtuAnswer<'_>>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn rtus(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<RtuQuery>,
) -> Result<Json<Page<Value>>, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let (limit, offset) = paging(q.limit, q.offset)?;
    let inv = &s.live.inventory;
    let live = s.live.read();
    let all = inv
        .cabinets
        .iter()
        .enumerate()
        .filter(|(_, c)| district.as_ref().is_none_or(|d| &c.district == d))
        .filter_map(|(i, c)| RtuView::new(c, &live, i))
        .filter(|v| q.online.is_none_or(|o| v.live.online == o));
    let p = page(all, limit, offset);
    Ok(Json(Page {
        items: p.items.into_iter().map(|v| rtu_json(&s, v)).collect(),
        total: p.total,
        limit,
        offset,
    }))
}

/// An RTU as the API shows it: its view and, behind a dial-in endpoint, the
/// `dialin` state of its DTU's connection.
#[derive(Serialize, ToSchema)]
pub(super) struct RtuAnswer<'a> {
    #[serde(flatten)]
    view: RtuView<'a>,
    /// Only behind a `dtu:` endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    dialin: Option<DtuStatus>,
}

fn rtu_answer<'a>(s: &AppState, view: RtuView<'a>) -> RtuAnswer<'a> {
    let dialin = view.dtu_id.map(|id| match s.dialin.slot(id) {
        Some(slot) => slot.status(),
        None => DtuStatus {
            id: id.to_string(),
            connected: false,
            peer: None,
            connected_since: None,
        },
    });
    RtuAnswer { view, dialin }
}

fn rtu_json(s: &AppState, view: RtuView<'_>) -> Value {
    serde_json::to_value(rtu_answer(s, view)).expect("serialisable")
}

/// One RTU with its live state.
#[utoipa::path(
    get,
    path = "/api/v1/rtus/{id}",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "RTU id")),
    responses(
        (status = 200, description = "The RTU", body = RtuAnswer<'_>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn rtu(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let inv = &s.live.inventory;
    let live = s.live.read();
    let i = visible_rtu(&s, &p, &id)?;
    let view = RtuView::new(&inv.cabinets[i], &live, i)
        .ok_or_else(|| ApiError::NotFound(format!("no RTU `{id}`")))?;
    Ok(Json(rtu_json(&s, view)))
}
