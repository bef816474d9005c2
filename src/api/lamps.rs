//! Lamps with their SLC's live state, and the recent online/offline
//! transitions.

use super::error::{BadRequest, NotFound, Unauthorized, Unavailable};
use super::inventory::{scope, visible_lamp, Listing, Page};
use super::query::{paging, ApiPath, ApiQuery};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::state::{DeviceLive, Inner, LampView, LiveState, SlcReading, Transition};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LampQuery {
    /// Only this district's (400 if the caller sees no such district);
    /// a district token's own by default.
    district: Option<String>,
    /// Only this cabinet's (400 if the caller sees no such cabinet).
    cabinet: Option<String>,
    /// SLC online status; lamps without an SLC match neither true nor false.
    online: Option<bool>,
    /// Only lamps with (true) or without (false) a single-lamp controller.
    has_slc: Option<bool>,
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    #[param(default = 0)]
    offset: Option<usize>,
}

/// `GET /api/v1/lamps`: a page of the lamps that match, in inventory order.
/// The inventory's filters are applied without the live state's lock; the
/// lock is held only to read the online flags (`online=`) and to copy the
/// page's entries, and the page is serialised without it, on the blocking
/// pool, and reused for `api.cache_ttl` (`cache.rs`).
#[utoipa::path(
    get,
    path = "/api/v1/lamps",
    tag = "inventory",
    security(("bearer" = [])),
    params(LampQuery),
    responses(
        (status = 200, description = "A page of lamps", body = Page<LampView<'_>>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
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

/// One lamp with its SLC's live state.
#[utoipa::path(
    get,
    path = "/api/v1/lamps/{id}",
    tag = "inventory",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Lamp id")),
    responses(
        (status = 200, description = "The lamp", body = LampView<'_>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TransitionQuery {
    /// Only those of this lamp, SLC or RTU id.
    device: Option<String>,
    /// The most recent this many.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
}

/// The most recent online/offline transitions kept in memory, newest last.
#[utoipa::path(
    get,
    path = "/api/v1/transitions",
    tag = "inventory",
    security(("bearer" = [])),
    params(TransitionQuery),
    responses(
        (status = 200, description = "`total` counts the transitions since start the caller may see", body = Listing<Transition>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn transitions(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<TransitionQuery>,
) -> Result<Json<Listing<Transition>>, ApiError> {
    let (limit, _) = paging(q.limit, None)?;
    let live = s.live.read();
    let mut items: Vec<Transition> = live
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
        .cloned()
        .collect();
    items.reverse();
    // `total` counts since start what the caller sees: the city's count
    // for a city-wide token, its district's for a district token.
    let total = match &p.district {
        None => live.transitions_total,
        Some(d) => live.transitions_in(&s.live.inventory, d),
    };
    Ok(Json(Listing { total, items }))
}
