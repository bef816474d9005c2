//! Districts, cabinets, RTUs and lamps with their live state.

use super::query::{paging, ApiPath, ApiQuery};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::state::{DeviceLive, Inner, LampView, LiveState, RtuView, SlcReading};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Serialize)]
pub(super) struct Page<T> {
    pub total: usize,
    pub limit: usize,
    pub offset: usize,
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

fn district_json(s: &AppState, id: &str) -> Option<Value> {
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
    Some(json!({
        "id": d.id, "name": d.name,
        "cabinets": n_cab, "rtus": n_rtu, "lamps": n_lamp, "slcs": n_slc,
    }))
}

/// Counting a district's lamps walks them all: on the blocking pool.
pub(super) async fn districts(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<Value>, ApiError> {
    let items: Vec<Value> = super::blocking(move || {
        s.live
            .inventory
            .districts
            .iter()
            .filter(|d| p.sees(&d.id))
            .filter_map(|d| district_json(&s, &d.id))
            .collect()
    })
    .await?;
    Ok(Json(json!({ "total": items.len(), "items": items })))
}

pub(super) async fn district(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let d = p
        .visible_district(&s.live.inventory, &id)
        .map(|d| d.id.clone())
        .ok_or_else(|| ApiError::NotFound(format!("no district `{id}`")))?;
    super::blocking(move || district_json(&s, &d))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no district `{id}`")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CabinetQuery {
    district: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
}

fn cabinet_json(s: &AppState, index: usize) -> Value {
    let inv = &s.live.inventory;
    let c = &inv.cabinets[index];
    let live = s.live.read();
    let rtu = RtuView::new(c, &live, index);
    let lamps = inv.lamps_on_cabinet(index);
    json!({
        "id": c.id, "district": c.district, "name": c.name, "lat": c.lat, "lon": c.lon,
        "circuits": c.circuits, "endpoint": c.endpoint, "framing": c.framing,
        "lamps": lamps,
        "rtu": rtu,
    })
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RtuQuery {
    district: Option<String>,
    online: Option<bool>,
    limit: Option<usize>,
    offset: Option<usize>,
}

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
/// `dialin` state of its DTU's connection (`id`, `connected`, `peer`,
/// `connected_since`).
fn rtu_json(s: &AppState, view: RtuView<'_>) -> Value {
    let dialin = view.dtu_id.map(|id| {
        let status = match s.dialin.slot(id) {
            Some(slot) => slot.status(),
            None => crate::dialin::DtuStatus {
                id: id.to_string(),
                connected: false,
                peer: None,
                connected_since: None,
            },
        };
        serde_json::to_value(status).expect("serialisable")
    });
    let mut v = serde_json::to_value(view).expect("serialisable");
    if let Some(d) = dialin {
        v["dialin"] = d;
    }
    v
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LampQuery {
    district: Option<String>,
    cabinet: Option<String>,
    /// SLC online status; lamps without an SLC match neither true nor false.
    online: Option<bool>,
    /// Only lamps with (true) or without (false) a single-lamp controller.
    has_slc: Option<bool>,
    limit: Option<usize>,
    offset: Option<usize>,
}

/// `GET /api/v1/lamps`: a page of the lamps that match, in inventory order.
/// The inventory's filters are applied without the live state's lock; the
/// lock is held only to read the online flags (`online=`) and to copy the
/// page's entries, and the page is serialised without it, on the blocking
/// pool, and reused for `api.cache_ttl` (`cache.rs`).
pub(super) async fn lamps(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<LampQuery>,
) -> Result<Response, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let inv = &s.live.inventory;
    if let Some(c) = &q.cabinet {
        if p.visible_cabinet(inv, c).is_none() {
            return Err(ApiError::BadRequest(format!("unknown cabinet `{c}`")));
        }
    }
    let (limit, offset) = paging(q.limit, q.offset)?;
    let filter = LampFilter {
        district,
        cabinet: q.cabinet,
        online: q.online,
        has_slc: q.has_slc,
    };
    // Everything the answer depends on: the caller's scope is in `district`
    // and was checked above.
    let key = format!("lamps {filter:?} {limit} {offset}");
    let writes = s.live.writes_applied();
    let live = s.live.clone();
    let body = s
        .cache
        .get(key, writes, move || {
            let (total, copies) = lamp_page(&live, &filter, limit, offset);
            let inv = &live.inventory;
            let items: Vec<LampView<'_>> = copies
                .iter()
                .filter_map(|(i, d)| {
                    let c = inv.cabinet_of_lamp(*i)?;
                    Some(LampView::of(&inv.lamps[*i], &inv.cabinets[c], d))
                })
                .collect();
            serde_json::to_vec(&Page {
                total,
                limit,
                offset,
                items,
            })
            .map(Bytes::from)
            .map_err(|e| ApiError::Internal(format!("cannot serialise lamps: {e}")))
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug)]
struct LampFilter {
    district: Option<String>,
    cabinet: Option<String>,
    online: Option<bool>,
    has_slc: Option<bool>,
}

/// How many lamps match, and the positions and live entries of those on the
/// page. Lamps without an SLC match neither `online=true` nor `false`.
fn lamp_page(
    live: &LiveState,
    f: &LampFilter,
    limit: usize,
    offset: usize,
) -> (usize, Vec<(usize, DeviceLive<SlcReading>)>) {
    let inv = &live.inventory;
    let listed = |i: usize| {
        let l = &inv.lamps[i];
        let Some(c) = inv.cabinet_of_lamp(i) else {
            return false;
        };
        f.district
            .as_ref()
            .is_none_or(|d| &inv.cabinets[c].district == d)
            && f.cabinet.as_ref().is_none_or(|x| &l.cabinet == x)
            && f.has_slc.is_none_or(|h| l.slc.is_some() == h)
    };
    let mut total = 0;
    let mut page = Vec::new();
    let mut count = |i: usize| {
        if total >= offset && page.len() < limit {
            page.push(i);
        }
        total += 1;
    };
    let copy = |g: &Inner, page: Vec<usize>| {
        page.into_iter()
            .map(|i| (i, g.lamps[i].clone()))
            .collect::<Vec<_>>()
    };
    match f.online {
        None => {
            (0..inv.lamps.len())
                .filter(|&i| listed(i))
                .for_each(&mut count);
            let g = live.read();
            (total, copy(&g, page))
        }
        // The flags and the page's entries under one read, so that every lamp
        // on the page shows the status it was chosen by.
        Some(o) => {
            let g = live.read();
            (0..inv.lamps.len())
                .filter(|&i| listed(i) && inv.lamps[i].slc.is_some() && g.lamps[i].online == o)
                .for_each(&mut count);
            (total, copy(&g, page))
        }
    }
}

pub(super) async fn lamp(
    State(s): State<AppState>,
    p: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let inv = &s.live.inventory;
    let live = s.live.read();
    let i = visible_lamp(&s, &p, &id)?;
    let l = &inv.lamps[i];
    let c = &inv.cabinets[inv
        .cabinet_of_lamp(i)
        .expect("visible lamps have a cabinet")];
    Ok(Json(
        serde_json::to_value(LampView::new(l, c, &live, i)).expect("serialisable"),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TransitionQuery {
    device: Option<String>,
    limit: Option<usize>,
}

/// The most recent online/offline transitions kept in memory, newest last.
pub(super) async fn transitions(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<TransitionQuery>,
) -> Result<Json<Value>, ApiError> {
    let (limit, _) = paging(q.limit, None)?;
    let live = s.live.read();
    let mut items: Vec<_> = live
        .recent_transitions
        .iter()
        .rev()
        .filter(|t| p.sees(&t.district))
        .filter(|t| {
            q.device
                .as_ref()
                .is_none_or(|d| &t.device_id == d || t.slc_id.as_ref() == Some(d))
        })
        .take(limit)
        .collect();
    items.reverse();
    // `total` counts since start what the caller sees: the city's count
    // for a city-wide token, its district's for a district token.
    let total = match &p.district {
        None => live.transitions_total,
        Some(d) => live.transitions_in(&s.live.inventory, d),
    };
    Ok(Json(json!({ "total": total, "items": items })))
}
