//! The map (平面图): cabinets placed by latitude and longitude as SVG, no
//! tile server — the city aggregated per cabinet (one mark a cabinet, its
//! size by its lamps, its colour by the state of most of them), zooming to
//! one cabinet's lamps. A mark links to its cabinet's or lamp's page.
//!
//! States, worst first: `alarm` (an open alarm on the cabinet or lamp),
//! `offline` (the RTU, or for a lamp its SLC, does not answer; for a
//! cabinet, most of its SLCs), `dark` (should be lit and is not), `off`
//! (off by the plan), `lit`.

use super::i18n::T;
use super::layout::{district_options, encode, page};
use super::{ConsoleError, ConsoleState, Person};
use crate::alarm::DeviceKind;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use std::collections::HashSet;

#[derive(Deserialize, Default)]
pub(super) struct MapQuery {
    #[serde(default)]
    district: String,
    /// One cabinet's lamps instead of the city's cabinets.
    #[serde(default)]
    cabinet: String,
    /// Only marks in this state.
    #[serde(default)]
    state: String,
}

const STATES: [(&str, &str, T); 5] = [
    ("alarm", "#c62828", T::Alarms),
    ("offline", "#8a94a3", T::Offline),
    ("dark", "#10233f", T::Dark),
    ("off", "#cfd6df", T::OffBySchedule),
    ("lit", "#f9a825", T::LitNow),
];

fn colour(state: &str) -> &'static str {
    STATES
        .iter()
        .find(|(s, _, _)| *s == state)
        .map_or("#000000", |x| x.1)
}

/// One mark on the map.
struct Mark {
    lat: f64,
    lon: f64,
    state: &'static str,
    href: String,
    label: String,
    /// Radius in px.
    r: f64,
}

const W: f64 = 1000.0;
const H: f64 = 700.0;

pub(super) async fn map(
    State(s): State<ConsoleState>,
    who: Person,
    Query(q): Query<MapQuery>,
) -> Result<Html<String>, ConsoleError> {
    let lang = who.lang;
    let p = who.principal.clone();
    let inv = s.app.live.inventory.clone();
    if !q.district.is_empty() && p.visible_district(&inv, &q.district).is_none() {
        return Err(ConsoleError::BadRequest(format!(
            "unknown district `{}`",
            q.district
        )));
    }
    let cabinet = match q.cabinet.as_str() {
        "" => None,
        c => Some(
            p.visible_cabinet(&inv, c)
                .ok_or_else(|| ConsoleError::NotFound(format!("no cabinet `{c}`")))?,
        ),
    };
    if !q.state.is_empty() && !STATES.iter().any(|(x, _, _)| *x == q.state) {
        return Err(ConsoleError::BadRequest(format!(
            "state `{}`: alarm, offline, dark, off or lit",
            q.state
        )));
    }
    let mut alarmed_lamps: HashSet<String> = HashSet::new();
    let mut alarmed_cabinets: HashSet<String> = HashSet::new();
    s.app.alarms.for_each_open(chrono::Utc::now(), |a, _| {
        if a.device_kind == DeviceKind::Lamp {
            alarmed_lamps.insert(a.device_id.clone());
        }
        if let Some(c) = &a.cabinet {
            alarmed_cabinets.insert(c.clone());
        }
    });
    let live = s.app.live.clone();
    let district = q.district.clone();
    let caller = p.clone();
    // Walks every lamp once: on the blocking pool.
    let marks = tokio::task::spawn_blocking(move || {
        let inv = &live.inventory;
        let g = live.read();
        let lamp_state = |i: usize| -> &'static str {
            let l = &inv.lamps[i];
            let judged = live.lighting(&g, i);
            if alarmed_lamps.contains(&l.id) {
                "alarm"
            } else if l.slc.is_some() && !g.lamps[i].online {
                "offline"
            } else if judged.expected && !judged.lit {
                "dark"
            } else if judged.lit {
                "lit"
            } else {
                "off"
            }
        };
        let mut marks = Vec::new();
        match cabinet {
            Some(c) => {
                for (i, l) in inv.lamps.iter().enumerate() {
                    if inv.cabinet_of_lamp(i) != Some(c) {
                        continue;
                    }
                    let (Some(lat), Some(lon)) = (l.lat, l.lon) else {
                        continue;
                    };
                    marks.push(Mark {
                        lat,
                        lon,
                        state: lamp_state(i),
                        href: format!("/console/lamps/{}", encode(&l.id)),
                        label: l.id.clone(),
                        r: 6.0,
                    });
                }
            }
            None => {
                // Per cabinet: its lamps' states counted, its place its own
                // or its lamps' mean.
                let n = inv.cabinets.len();
                let mut counts = vec![[0usize; 5]; n];
                let mut sum = vec![(0.0, 0.0, 0usize); n];
                for (i, l) in inv.lamps.iter().enumerate() {
                    let Some(c) = inv.cabinet_of_lamp(i) else {
                        continue;
                    };
                    let st = lamp_state(i);
                    let k = STATES.iter().position(|x| x.0 == st).unwrap_or(0);
                    counts[c][k] += 1;
                    if let (Some(a), Some(b)) = (l.lat, l.lon) {
                        sum[c].0 += a;
                        sum[c].1 += b;
                        sum[c].2 += 1;
                    }
                }
                for (c, cab) in inv.cabinets.iter().enumerate() {
                    if !caller.sees(&cab.district)
                        || (!district.is_empty() && cab.district != district)
                    {
                        continue;
                    }
                    let place = match (cab.lat, cab.lon) {
                        (Some(a), Some(b)) => Some((a, b)),
                        _ if sum[c].2 > 0 => {
                            Some((sum[c].0 / sum[c].2 as f64, sum[c].1 / sum[c].2 as f64))
                        }
                        _ => None,
                    };
                    let Some((lat, lon)) = place else { continue };
                    let lamps: usize = counts[c].iter().sum();
                    let rtu_offline = cab.rtu.is_some() && !g.rtus[c].online;
                    let state = if alarmed_cabinets.contains(&cab.id) || counts[c][0] > 0 {
                        "alarm"
                    } else if rtu_offline || counts[c][1] * 2 > lamps {
                        "offline"
                    } else {
                        // The most of the rest.
                        let k = (2..5).max_by_key(|&k| (counts[c][k], k)).unwrap_or(4);
                        STATES[k].0
                    };
                    marks.push(Mark {
                        lat,
                        lon,
                        state,
                        href: format!("/console/map?cabinet={}", encode(&cab.id)),
                        label: format!("{} · {} ({lamps})", cab.id, cab.name),
                        r: (4.0 + (lamps as f64).sqrt()).clamp(6.0, 14.0),
                    });
                }
            }
        }
        marks
    })
    .await
    .map_err(|e| ConsoleError::Internal(format!("map: {e}")))?;
    let shown: Vec<&Mark> = marks
        .iter()
        .filter(|m| q.state.is_empty() || m.state == q.state)
        .collect();
    // The frame: the marks' extent, a margin, the longitude scaled by the
    // latitude's cosine so that the city is not stretched.
    let (mut la0, mut la1, mut lo0, mut lo1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for m in &marks {
        la0 = la0.min(m.lat);
        la1 = la1.max(m.lat);
        lo0 = lo0.min(m.lon);
        lo1 = lo1.max(m.lon);
    }
    let k = ((la0 + la1) / 2.0).to_radians().cos().max(0.1);
    let span = ((lo1 - lo0) * k).max(la1 - la0).max(1e-4);
    let scale = (W.min(H) - 60.0) / span;
    let x = |lon: f64| 30.0 + (lon - lo0) * k * scale;
    let y = |lat: f64| H - 30.0 - (lat - la0) * scale;
    let districts: Vec<_> = inv.districts.iter().filter(|d| p.sees(&d.id)).collect();
    let title = match cabinet {
        Some(c) => format!("{} · {}", T::Map.get(lang), inv.cabinets[c].id),
        None => T::Map.get(lang).to_string(),
    };
    Ok(page(
        lang,
        T::Map,
        Some(&who),
        html! {
            h1 { (title) }
            form.filters method="get" action="/console/map" {
                @if !q.cabinet.is_empty() { input type="hidden" name="cabinet" value=(q.cabinet); }
                @else {
                    label { (T::District.get(lang))
                        select name="district" {
                            option value="" { (T::Any.get(lang)) }
                            (district_options(&districts, &q.district))
                        }
                    }
                }
                label { (T::State.get(lang))
                    select name="state" {
                        option value="" { (T::Any.get(lang)) }
                        @for (st, _, label) in STATES { option value=(st) selected[q.state == st] { (label.get(lang)) } }
                    }
                }
                button type="submit" { (T::Filter.get(lang)) }
                @if !q.cabinet.is_empty() { a href="/console/map" { (T::City.get(lang)) } }
            }
            p.legend {
                @for (_, c, label) in STATES {
                    span.key { svg width="12" height="12" { circle cx="6" cy="6" r="5" fill=(c) {} } " " (label.get(lang)) }
                }
                span.muted #marks data-marks=(shown.len()) { " · " (shown.len()) }
            }
            div.scroll {
                svg.map #map xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H) {
                    rect width=(W) height=(H) fill="#ffffff" {}
                    @for m in &shown {
                        a href=(m.href) {
                            circle cx=(format!("{:.1}", x(m.lon))) cy=(format!("{:.1}", y(m.lat))) r=(m.r)
                                fill=(colour(m.state)) stroke="#ffffff" stroke-width="1" data-state=(m.state) {
                                title { (m.label) }
                            }
                        }
                    }
                }
            }
        },
    ))
}
