//! The lamp list, and a lamp's page with its controls (a command's
//! progress is commands.rs's).

use super::chart;
use super::commands::{progress, visible_command};
use super::history::{mid_hour, svg_answer, HistoryQuery};
use super::i18n::T;
use super::layout::{district_options, encode, filter_params, flag, num, online_text, page, pager};
use super::{ConsoleError, ConsoleState, Person};
use crate::auth::Principal;
use crate::console::Language;
use crate::control::{Action, Selector, Source, Submission};
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

/// Rows of a lamp list page.
const PAGE_ROWS: usize = 50;

/// The list's filters as the form sends them (an empty field is no filter).
#[derive(Deserialize, Default)]
pub(super) struct LampQuery {
    #[serde(default)]
    district: String,
    #[serde(default)]
    cabinet: String,
    #[serde(default)]
    road: String,
    #[serde(default)]
    online: String,
    /// Lit now by the lighting rule (`true`/`false`).
    #[serde(default)]
    lit: String,
    /// With (`true`) or without (`false`) an open alarm.
    #[serde(default)]
    alarm: String,
    #[serde(default)]
    q: String,
    /// `id` (inventory order, the default), `power` (highest first) or
    /// `last_seen` (longest unheard first).
    #[serde(default)]
    sort: String,
    /// `csv`: every matching lamp as a file, not a page.
    #[serde(default)]
    format: String,
    #[serde(default)]
    page: usize,
}

impl LampQuery {
    fn params(&self) -> String {
        filter_params(&[
            ("district", &self.district),
            ("cabinet", &self.cabinet),
            ("road", &self.road),
            ("online", &self.online),
            ("lit", &self.lit),
            ("alarm", &self.alarm),
            ("q", &self.q),
            ("sort", &self.sort),
        ])
    }

    fn link(&self, page: usize) -> String {
        format!("/console/lamps?{}page={page}", self.params())
    }
}

/// One lamp of the list, as shown and exported.
struct ListRow {
    id: String,
    district: String,
    cabinet: String,
    circuit: u8,
    road: String,
    online: Option<bool>,
    lit: bool,
    reading: Option<crate::state::SlcReading>,
    alarms: usize,
}

pub(super) async fn lamps(
    State(s): State<ConsoleState>,
    who: Person,
    Query(q): Query<LampQuery>,
) -> Result<Response, ConsoleError> {
    let p = who.principal.clone();
    let lang = who.lang;
    let inv = s.app.live.inventory.clone();
    // Another district's is unknown to a district user, as in the API.
    if !q.district.is_empty() && p.visible_district(&inv, &q.district).is_none() {
        return Err(ConsoleError::BadRequest(format!(
            "unknown district `{}`",
            q.district
        )));
    }
    let online = flag("online", &q.online)?;
    let lit = flag("lit", &q.lit)?;
    let with_alarm = flag("alarm", &q.alarm)?;
    if !matches!(q.sort.as_str(), "" | "id" | "power" | "last_seen") {
        return Err(ConsoleError::BadRequest(format!(
            "sort `{}`: id, power or last_seen",
            q.sort
        )));
    }
    let csv = match q.format.as_str() {
        "" | "html" => false,
        "csv" => true,
        f => return Err(ConsoleError::BadRequest(format!("format `{f}`: csv"))),
    };
    // Open alarms per lamp: the engine's open alarms are few beside the lamps.
    let mut alarms: std::collections::HashMap<String, usize> = Default::default();
    s.app.alarms.for_each_open(chrono::Utc::now(), |a, _| {
        if a.device_kind == crate::alarm::DeviceKind::Lamp {
            *alarms.entry(a.device_id.clone()).or_default() += 1;
        }
    });
    let live = s.app.live.clone();
    let caller = p.clone();
    let (district, cabinet, road, search, sort, page_no) = (
        q.district.clone(),
        q.cabinet.clone(),
        q.road.clone(),
        q.q.to_lowercase(),
        q.sort.clone(),
        q.page,
    );
    // Walks every lamp: on the blocking pool, as the API's list does.
    let (total, rows) = tokio::task::spawn_blocking(move || {
        let inv = &live.inventory;
        let g = live.read();
        let mut hits: Vec<usize> = Vec::new();
        for (i, l) in inv.lamps.iter().enumerate() {
            let Some(c) = inv.cabinet_of_lamp(i) else {
                continue;
            };
            let cab = &inv.cabinets[c];
            let listed = caller.sees(&cab.district)
                && (district.is_empty() || cab.district == district)
                && (cabinet.is_empty() || l.cabinet == cabinet)
                && (road.is_empty() || l.road.as_deref() == Some(road.as_str()))
                && (search.is_empty() || l.id.to_lowercase().contains(&search))
                && online.is_none_or(|o| l.slc.is_some() && g.lamps[i].online == o)
                && lit.is_none_or(|want| live.lighting(&g, i).lit == want)
                && with_alarm.is_none_or(|want| alarms.contains_key(&l.id) == want);
            if listed {
                hits.push(i);
            }
        }
        match sort.as_str() {
            "power" => hits.sort_by(|&a, &b| {
                let p = |i: usize| g.lamps[i].reading.as_ref().and_then(|r| r.power);
                p(b).partial_cmp(&p(a)).unwrap_or(std::cmp::Ordering::Equal)
            }),
            "last_seen" => hits.sort_by_key(|&i| g.lamps[i].last_seen),
            _ => {}
        }
        let total = hits.len();
        let shown: Box<dyn Iterator<Item = usize>> = if csv {
            Box::new(hits.into_iter())
        } else {
            Box::new(hits.into_iter().skip(page_no * PAGE_ROWS).take(PAGE_ROWS))
        };
        let rows: Vec<ListRow> = shown
            .map(|i| {
                let l = &inv.lamps[i];
                let d = &g.lamps[i];
                ListRow {
                    id: l.id.clone(),
                    district: inv
                        .cabinet_of_lamp(i)
                        .map(|c| inv.cabinets[c].district.clone())
                        .unwrap_or_default(),
                    cabinet: l.cabinet.clone(),
                    circuit: l.circuit,
                    road: l.road.clone().unwrap_or_default(),
                    online: l.slc.is_some().then_some(d.online),
                    lit: live.lighting(&g, i).lit,
                    reading: d.reading.clone(),
                    alarms: alarms.get(&l.id).copied().unwrap_or(0),
                }
            })
            .collect();
        (total, rows)
    })
    .await
    .map_err(|e| ConsoleError::Internal(format!("lamp list: {e}")))?;
    if csv {
        return export(lang, &rows, &p.name);
    }
    let districts: Vec<_> = inv.districts.iter().filter(|d| p.sees(&d.id)).collect();
    let roads: Vec<_> = inv.roads.iter().filter(|r| p.sees(&r.district)).collect();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    let yes_no = |name: &'static str, v: &str, yes: T, no: T| {
        html! {
            select name=(name) {
                option value="" { (T::Any.get(lang)) }
                option value="true" selected[v == "true"] { (yes.get(lang)) }
                option value="false" selected[v == "false"] { (no.get(lang)) }
            }
        }
    };
    Ok(page(
        lang,
        T::Lamps,
        Some(&who),
        html! {
            h1 { (T::Lamps.get(lang)) }
            form.filters method="get" action="/console/lamps" {
                label { (T::District.get(lang))
                    select name="district" {
                        option value="" { (T::Any.get(lang)) }
                        (district_options(&districts, &q.district))
                    }
                }
                label { (T::Cabinet.get(lang)) input name="cabinet" value=(q.cabinet); }
                @if !roads.is_empty() {
                    label { (T::Road.get(lang))
                        select name="road" {
                            option value="" { (T::Any.get(lang)) }
                            @for r in &roads { option value=(r.id) selected[r.id == q.road] { (r.name) } }
                        }
                    }
                }
                label { (T::Online.get(lang)) (yes_no("online", &q.online, T::Online, T::Offline)) }
                label { (T::LitNow.get(lang)) (yes_no("lit", &q.lit, T::Yes, T::No)) }
                label { (T::Alarms.get(lang)) (yes_no("alarm", &q.alarm, T::Yes, T::No)) }
                label { (T::Search.get(lang)) input #search name="q" value=(q.q); }
                label { (T::Sort.get(lang))
                    select name="sort" {
                        option value="id" selected[q.sort.is_empty() || q.sort == "id"] { (T::Lamp.get(lang)) }
                        option value="power" selected[q.sort == "power"] { (T::Power.get(lang)) }
                        option value="last_seen" selected[q.sort == "last_seen"] { (T::LastSeen.get(lang)) }
                    }
                }
                button type="submit" { (T::Filter.get(lang)) }
            }
            p.muted #total data-total=(total) {
                (T::Total.get(lang)) " " (total) " · "
                a #csv href={ "/console/lamps?" (q.params()) "format=csv" } { (T::Download.get(lang)) " CSV" }
            }
            div.scroll {
                table.lamps {
                    thead { tr {
                        th { (T::Lamp.get(lang)) } th { (T::District.get(lang)) }
                        th { (T::Cabinet.get(lang)) } th { (T::Circuit.get(lang)) }
                        th { (T::Online.get(lang)) } th { (T::LitNow.get(lang)) } th { (T::Relay.get(lang)) }
                        th { (T::DimLevel.get(lang)) } th { (T::Power.get(lang)) } th { (T::Alarms.get(lang)) }
                    } }
                    tbody {
                        @for r in &rows {
                            tr data-lamp=(r.id) data-lit=(r.lit) {
                                td { a href={ "/console/lamps/" (encode(&r.id)) } { (r.id) } }
                                td { (r.district) } td { (r.cabinet) } td { (r.circuit) }
                                td { (online_text(lang, r.online)) }
                                td { (if r.lit { T::Yes.get(lang) } else { T::No.get(lang) }) }
                                td { (r.reading.as_ref().map_or("—", |x| if x.on { T::On.get(lang) } else { T::Off.get(lang) })) }
                                td { (r.reading.as_ref().map_or("—".into(), |x| format!("{:.0}", x.dim_level))) }
                                td { (num(r.reading.as_ref().and_then(|x| x.power), 1)) }
                                td { @if r.alarms > 0 { span.badge.ordinary { (r.alarms) } } }
                            }
                        }
                    }
                }
            }
            (pager(lang, q.page, pages, |n| q.link(n)))
        },
    )
    .into_response())
}

/// The filtered list as CSV, headers in the page's language.
fn export(lang: Language, rows: &[ListRow], user: &str) -> Result<Response, ConsoleError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let head = [
        T::Lamp,
        T::District,
        T::Cabinet,
        T::Circuit,
        T::Road,
        T::Online,
        T::LitNow,
        T::Relay,
        T::DimLevel,
        T::Voltage,
        T::Power,
        T::Alarms,
    ];
    let fail = |e: csv::Error| ConsoleError::Internal(format!("lamp CSV: {e}"));
    w.write_record(head.iter().map(|t| t.get(lang)))
        .map_err(fail)?;
    for r in rows {
        let x = r.reading.as_ref();
        w.write_record([
            r.id.clone(),
            r.district.clone(),
            r.cabinet.clone(),
            r.circuit.to_string(),
            r.road.clone(),
            r.online.map_or(String::new(), |o| o.to_string()),
            r.lit.to_string(),
            x.map_or(String::new(), |x| x.on.to_string()),
            x.map_or(String::new(), |x| format!("{:.0}", x.dim_level)),
            x.and_then(|x| x.voltage)
                .map_or(String::new(), |v| format!("{v:.1}")),
            x.and_then(|x| x.power)
                .map_or(String::new(), |v| format!("{v:.1}")),
            r.alarms.to_string(),
        ])
        .map_err(fail)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ConsoleError::Internal(format!("lamp CSV: {e}")))?;
    tracing::info!(user = %user, rows = rows.len(), "console lamp list exported");
    // A BOM, so that a spreadsheet opens the Chinese headers as UTF-8.
    let mut out = "\u{feff}".as_bytes().to_vec();
    out.extend(body);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"lamps.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct LampPageQuery {
    command: Option<String>,
}

/// The lamp's position, if the caller may see it: another district's is
/// 404 as an unknown one is (`Principal::visible_lamp`, the API's rule).
fn visible_lamp(s: &ConsoleState, p: &Principal, id: &str) -> Result<usize, ConsoleError> {
    p.visible_lamp(&s.app.live.inventory, id)
        .ok_or_else(|| ConsoleError::NotFound(format!("no lamp `{id}`")))
}

pub(super) async fn lamp(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
    Query(q): Query<LampPageQuery>,
) -> Result<Html<String>, ConsoleError> {
    let p = &who.principal;
    let lang = who.lang;
    let i = visible_lamp(&s, p, &id)?;
    let inv = &s.app.live.inventory;
    let l = &inv.lamps[i];
    let command = q.command.as_deref().and_then(|c| visible_command(&s, p, c));
    let rows = lamp_rows(&s.app, i, lang);
    let r_dim = s.app.live.read().lamps[i]
        .reading
        .as_ref()
        .map(|r| r.dim_level);
    let alarms = s
        .app
        .alarms
        .open(chrono::Utc::now())
        .into_iter()
        .filter(|a| a.device_kind == crate::alarm::DeviceKind::Lamp && a.device_id == l.id)
        .collect::<Vec<_>>();
    let controls = p.can_control() && l.slc.is_some();
    let action = format!("/console/lamps/{}/command", encode(&l.id));
    Ok(page(
        lang,
        T::Lamp,
        Some(&who),
        html! {
            h1 { (T::Lamp.get(lang)) " " (l.id) }
            dl.values #values data-live={ "/console/lamps/" (encode(&l.id)) "/events" } {
                @for (label, value) in &rows {
                    dt { (label.get(lang)) } dd data-field=(format!("{label:?}")) { (value) }
                }
            }
            (super::alarms::open_alarms_section(lang, s.app.time_zone, "lamp-alarms", &alarms))
            (super::history::section(lang, "history", &format!("/console/lamps/{}/history.svg", encode(&l.id)), 1))
            @if let Some(c) = &command { (progress(lang, c, false)) }
            @if controls {
                section.controls #controls {
                    h2 { (T::Controls.get(lang)) }
                    form.inline method="post" action=(action) {
                        input type="hidden" name="csrf" value=(who.session.csrf);
                        input type="hidden" name="action" value="on";
                        button #on type="submit" { (T::On.get(lang)) }
                    }
                    form.inline method="post" action=(action) {
                        input type="hidden" name="csrf" value=(who.session.csrf);
                        input type="hidden" name="action" value="off";
                        button #off type="submit" { (T::Off.get(lang)) }
                    }
                    form.inline method="post" action=(action) {
                        input type="hidden" name="csrf" value=(who.session.csrf);
                        input type="hidden" name="action" value="dim";
                        label { (T::DimLevel.get(lang))
                            input #level type="number" name="level" min="0" max="100" step="1"
                                value=(r_dim.unwrap_or(100.0).round());
                        }
                        button #dim type="submit" { (T::Dim.get(lang)) }
                    }
                }
            }
        },
    ))
}

/// A lamp's values as its page shows them, each with its label: the page
/// and its live stream make them here, once.
fn lamp_rows(app: &crate::api::AppState, i: usize, lang: Language) -> Vec<(T, String)> {
    let inv = &app.live.inventory;
    let l = &inv.lamps[i];
    let c = inv.cabinet_of_lamp(i).map(|c| &inv.cabinets[c]);
    let d = app.live.read().lamps[i].clone();
    let r = d.reading.as_ref();
    let tz = app.time_zone;
    vec![
        (T::District, c.map_or("—".into(), |c| c.district.clone())),
        (T::Cabinet, l.cabinet.clone()),
        (T::Circuit, l.circuit.to_string()),
        (
            T::Online,
            online_text(lang, l.slc.as_ref().map(|_| d.online)).into(),
        ),
        (
            T::Relay,
            r.map_or("—".into(), |r| {
                if r.on {
                    T::On.get(lang)
                } else {
                    T::Off.get(lang)
                }
                .into()
            }),
        ),
        (T::DimLevel, num(r.map(|r| r.dim_level), 0)),
        (T::Voltage, num(r.and_then(|r| r.voltage), 1)),
        (T::Current, num(r.and_then(|r| r.current), 2)),
        (T::Power, num(r.and_then(|r| r.power), 1)),
        (T::PowerFactor, num(r.and_then(|r| r.power_factor), 2)),
        (T::Energy, num(r.and_then(|r| r.energy_kwh), 1)),
        (T::BurningHours, num(r.and_then(|r| r.burning_hours), 0)),
        (
            T::Faults,
            r.map_or("—".into(), |r| format!("{:#06x}", r.fault_flags)),
        ),
        (
            T::LastSeen,
            d.last_seen.map_or("—".into(), |t| {
                t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string()
            }),
        ),
    ]
}

/// `/console/lamps/{id}/events`: the lamp's values at every tick of the
/// shared frame (one lamp read per browser, never a walk of the city),
/// sent only when they changed.
pub(super) async fn events(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let i = visible_lamp(&s, &who.principal, &id)?;
    let (app, lang) = (s.app.clone(), who.lang);
    let last = parking_lot::Mutex::new(String::new());
    Ok(super::live::stream(&s, who.session_id.clone(), move |_| {
        let rows: serde_json::Map<String, serde_json::Value> = lamp_rows(&app, i, lang)
            .into_iter()
            .map(|(label, text)| (format!("{label:?}"), text.into()))
            .collect();
        let body = serde_json::Value::Object(rows).to_string();
        let mut last = last.lock();
        (*last != body).then(|| {
            last.clone_from(&body);
            body
        })
    })
    .into_response())
}

/// `/console/lamps/{id}/history.svg?span=24h|7d|30d`: power, voltage and
/// dim level from the store (`store::read::history`, as the API's route):
/// raw samples over a day, hourly rollups beyond.
pub(super) async fn history(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ConsoleError> {
    use crate::store::read::history as h;
    let i = visible_lamp(&s, &who.principal, &id)?;
    let lang = who.lang;
    let span = q.span()?;
    let store = super::history::store(&s)?;
    let (from, to) = span.window();
    let tz = s.app.time_zone;
    let lamp_id = s.app.live.inventory.lamps[i].id.clone();
    let got = h::lamp(&store.db, &lamp_id, from, to, span.resolution(), tz)
        .await
        .map_err(|e| ConsoleError::Unavailable(e.to_string()))?;
    // Raw samples carry power, voltage and level; hours what a rollup
    // keeps: energy (as the hour's mean power) and the hour's shares burning
    // and online.
    let line = |label: T, colour: &'static str, points: Vec<(i64, Option<f64>)>| chart::Series {
        label: label.get(lang).to_string(),
        colour,
        points,
    };
    let series = match &got.items {
        h::Items::LampRaw(rows) => {
            let pts = |f: fn(&h::LampPoint) -> Option<f64>| {
                rows.iter().map(|r| (r.time.timestamp(), f(r))).collect()
            };
            vec![
                line(T::Power, "#ef6c00", pts(|r| r.power_w)),
                line(T::Voltage, "#0b6bcb", pts(|r| r.voltage_v)),
                line(T::DimLevel, "#2e7d32", pts(|r| Some(r.dim_level))),
            ]
        }
        h::Items::LampHours(rows) => {
            let pts = |f: fn(&h::HourPoint) -> f64| {
                rows.iter()
                    .map(|r| (mid_hour(r.time), Some(f(r))))
                    .collect()
            };
            vec![
                line(T::AvgPower, "#ef6c00", pts(|r| r.energy_kwh * 1000.0)),
                line(T::BurnShare, "#0b6bcb", pts(|r| r.on_seconds / 36.0)),
                line(T::OnlineShare, "#2e7d32", pts(|r| r.online_seconds / 36.0)),
            ]
        }
        _ => Vec::new(),
    };
    let svg = chart::svg(
        &format!("{} · {}", lamp_id, T::History.get(lang)),
        &series,
        &chart::Axes {
            y: None,
            y_label: chart::number,
            x_ticks: span.x_ticks(from, tz),
            target: None,
        },
        T::NoData.get(lang),
    );
    Ok(svg_answer(svg))
}

#[derive(Deserialize)]
pub(super) struct CommandForm {
    #[serde(default)]
    csrf: String,
    action: String,
    level: Option<f64>,
}

/// A person's command to one lamp: CSRF first, then the API's order — the
/// lamp must be visible (404), then the role must control (403, in
/// `Control::submit` as for a token) — through the same `Control::submit`
/// as `POST /api/v1/lamps/{id}/commands`, audited with the user's name.
pub(super) async fn lamp_command(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&form.csrf)?;
    let p = &who.principal;
    visible_lamp(&s, p, &id)?;
    if !p.can_control() {
        return Err(ConsoleError::Forbidden(format!(
            "the {:?} role cannot give commands",
            p.role
        )));
    }
    let action = match (form.action.as_str(), form.level) {
        ("on", _) => Action::On,
        ("off", _) => Action::Off,
        ("dim", Some(level)) if (0.0..=100.0).contains(&level) => Action::Dim { level },
        ("dim", _) => return Err(ConsoleError::BadRequest("level: 0 to 100".into())),
        (a, _) => {
            return Err(ConsoleError::BadRequest(format!(
                "action `{a}`: on, off or dim"
            )))
        }
    };
    let cell = s.app.control.submit(
        p,
        Submission {
            actor: p.name.clone(),
            source: Source::Console,
            selector: Selector::Lamps(vec![id.clone()]),
            action,
            expires_at: None,
            idempotency_key: None,
            note: None,
        },
    )?;
    let command = cell.id();
    tracing::info!(user = %p.name, lamp = %id, command = %command, "console command");
    Ok(Redirect::to(&format!("/console/lamps/{}?command={command}", encode(&id))).into_response())
}
