//! Cabinets (配电箱): the list, and a cabinet's page with its RTU's live
//! values, its circuits (回路) with their lamps and contactors, switches for
//! each circuit (the same `Control::submit` as
//! `POST /api/v1/cabinets/{id}/circuits/{n}/commands`), and its open alarms.

use super::chart;
use super::commands::{progress, visible_command};
use super::history::{mid_hour, svg_answer, HistoryQuery};
use super::i18n::T;
use super::layout::{district_options, encode, filter_params, num, page, pager};
use super::{ConsoleError, ConsoleState, Person};
use crate::control::{Action, Selector, Source, Submission};
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

const PAGE_ROWS: usize = 50;

#[derive(Deserialize, Default)]
pub(super) struct CabinetQuery {
    #[serde(default)]
    district: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: usize,
}

impl CabinetQuery {
    fn link(&self, page: usize) -> String {
        let params = filter_params(&[("district", &self.district), ("q", &self.q)]);
        format!("/console/cabinets?{params}page={page}")
    }
}

/// One row of the list.
struct Row {
    id: String,
    name: String,
    district: String,
    circuits: u8,
    lamps: usize,
    rtu: Option<(bool, Option<f64>, usize)>,
}

pub(super) async fn cabinets(
    State(s): State<ConsoleState>,
    who: Person,
    Query(q): Query<CabinetQuery>,
) -> Result<Html<String>, ConsoleError> {
    let p = who.principal.clone();
    let lang = who.lang;
    let inv = s.app.live.inventory.clone();
    if !q.district.is_empty() && p.visible_district(&inv, &q.district).is_none() {
        return Err(ConsoleError::BadRequest(format!(
            "unknown district `{}`",
            q.district
        )));
    }
    let search = q.q.to_lowercase();
    let (total, rows) = {
        let g = s.app.live.read();
        let mut total = 0;
        let mut rows = Vec::new();
        for (i, c) in inv.cabinets.iter().enumerate() {
            let listed = p.sees(&c.district)
                && (q.district.is_empty() || c.district == q.district)
                && (search.is_empty()
                    || c.id.to_lowercase().contains(&search)
                    || c.name.to_lowercase().contains(&search));
            if !listed {
                continue;
            }
            if total >= q.page * PAGE_ROWS && rows.len() < PAGE_ROWS {
                let r = &g.rtus[i];
                rows.push(Row {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    district: c.district.clone(),
                    circuits: c.circuits,
                    lamps: inv.lamps_on_cabinet(i),
                    rtu: c.rtu.as_ref().map(|_| {
                        let closed = r
                            .reading
                            .as_ref()
                            .map_or(0, |x| x.contactors.iter().filter(|&&on| on).count());
                        (
                            r.online,
                            r.reading.as_ref().and_then(|x| x.active_power),
                            closed,
                        )
                    }),
                });
            }
            total += 1;
        }
        (total, rows)
    };
    let districts: Vec<_> = inv.districts.iter().filter(|d| p.sees(&d.id)).collect();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
    Ok(page(
        lang,
        T::Cabinets,
        Some(&who),
        html! {
            h1 { (T::Cabinets.get(lang)) }
            form.filters method="get" action="/console/cabinets" {
                label { (T::District.get(lang))
                    select name="district" {
                        option value="" { (T::Any.get(lang)) }
                        (district_options(&districts, &q.district))
                    }
                }
                label { (T::Search.get(lang)) input name="q" value=(q.q); }
                button type="submit" { (T::Filter.get(lang)) }
            }
            p.muted #total data-total=(total) { (T::Total.get(lang)) " " (total) }
            div.scroll {
                table.cabinets {
                    thead { tr {
                        th { (T::Cabinet.get(lang)) } th { (T::Name.get(lang)) } th { (T::District.get(lang)) }
                        th { (T::Circuits.get(lang)) } th { (T::Lamps.get(lang)) } th { "RTU" }
                        th { (T::ContactorsClosed.get(lang)) } th { (T::Power.get(lang)) }
                    } }
                    tbody {
                        @for r in &rows {
                            tr data-cabinet=(r.id) {
                                td { a href={ "/console/cabinets/" (encode(&r.id)) } { (r.id) } }
                                td { (r.name) } td { (r.district) } td { (r.circuits) } td { (r.lamps) }
                                @match r.rtu {
                                    None => { td { (T::NoRtu.get(lang)) } td { "—" } td { "—" } }
                                    Some((online, power, closed)) => {
                                        td { (if online { T::Online.get(lang) } else { T::Offline.get(lang) }) }
                                        td { (closed) " / " (r.circuits) }
                                        td { (num(power, 0)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, q.page, pages, |n| q.link(n)))
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct CabinetPageQuery {
    command: Option<String>,
}

fn visible_cabinet(s: &ConsoleState, who: &Person, id: &str) -> Result<usize, ConsoleError> {
    who.principal
        .visible_cabinet(&s.app.live.inventory, id)
        .ok_or_else(|| ConsoleError::NotFound(format!("no cabinet `{id}`")))
}

pub(super) async fn cabinet(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
    Query(q): Query<CabinetPageQuery>,
) -> Result<Html<String>, ConsoleError> {
    let lang = who.lang;
    let p = &who.principal;
    let i = visible_cabinet(&s, &who, &id)?;
    let inv = &s.app.live.inventory;
    let c = &inv.cabinets[i];
    let tz = s.app.time_zone;
    let rtu = s.app.live.read().rtus[i].clone();
    let r = rtu.reading.as_ref();
    // Lamps per circuit, and how many of them read lit now.
    let mut per_circuit = vec![(0usize, 0usize); usize::from(c.circuits)];
    {
        let g = s.app.live.read();
        for (l, lamp) in inv.lamps.iter().enumerate() {
            // The inventory's position index, not a text compare per lamp.
            if inv.cabinet_of_lamp(l) != Some(i) {
                continue;
            }
            if let Some(slot) = per_circuit.get_mut(usize::from(lamp.circuit).saturating_sub(1)) {
                slot.0 += 1;
                if g.lamps[l].reading.as_ref().is_some_and(|x| x.on) {
                    slot.1 += 1;
                }
            }
        }
    }
    let command = q.command.as_deref().and_then(|x| visible_command(&s, p, x));
    let alarms: Vec<_> = s
        .app
        .alarms
        .open(chrono::Utc::now())
        .into_iter()
        .filter(|a| a.cabinet.as_deref() == Some(c.id.as_str()))
        .collect();
    let controls = p.can_control() && c.rtu.is_some();
    let phase = |v: [Option<f64>; 3], places| {
        v.iter()
            .map(|x| num(*x, places))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    Ok(page(
        lang,
        T::Cabinet,
        Some(&who),
        html! {
            h1 { (T::Cabinet.get(lang)) " " (c.id) " · " (c.name) }
            dl.values #values {
                dt { (T::District.get(lang)) } dd { (c.district) }
                dt { "RTU" } dd { @match &c.rtu { Some(x) => { (x.id) " · " (if rtu.online { T::Online.get(lang) } else { T::Offline.get(lang) }) }, None => { (T::NoRtu.get(lang)) } } }
                @if c.rtu.is_some() {
                    dt { (T::Voltage.get(lang)) " L1/L2/L3" } dd { (r.map_or("—".into(), |x| phase(x.voltage, 1))) }
                    dt { (T::Current.get(lang)) " L1/L2/L3" } dd { (r.map_or("—".into(), |x| phase(x.current, 2))) }
                    dt { (T::Power.get(lang)) } dd { (num(r.and_then(|x| x.active_power), 0)) }
                    dt { (T::Energy.get(lang)) } dd { (num(r.and_then(|x| x.energy_kwh), 1)) }
                    dt { (T::DoorOpenLabel.get(lang)) } dd { (r.map_or("—", |x| if x.door_alarm { T::Yes.get(lang) } else { T::No.get(lang) })) }
                    dt { (T::LeakageLabel.get(lang)) } dd { (r.map_or("—", |x| if x.leakage_alarm { T::Yes.get(lang) } else { T::No.get(lang) })) }
                    dt { (T::LastSeen.get(lang)) } dd { (rtu.last_seen.map_or("—".into(), |t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())) }
                }
            }
            @if let Some(cmd) = &command { (progress(lang, cmd, true)) }
            section.scope #circuits {
                h2 { (T::Circuits.get(lang)) }
                table {
                    thead { tr {
                        th { (T::Circuit.get(lang)) } th { (T::Lamps.get(lang)) } th { (T::LitNow.get(lang)) }
                        th { (T::Contactor.get(lang)) } @if controls { th { (T::Controls.get(lang)) } }
                    } }
                    tbody {
                        @for (n, (lamps, lit)) in per_circuit.iter().enumerate() {
                            @let n = n + 1;
                            @let closed = r.and_then(|x| x.contactors.get(n - 1).copied());
                            tr data-circuit=(n) data-closed=[closed] {
                                td { (n) }
                                td { a href={ "/console/lamps?cabinet=" (encode(&c.id)) } { (lamps) } }
                                td { (lit) }
                                td { (closed.map_or("—", |on| if on { T::Closed.get(lang) } else { T::OpenContactor.get(lang) })) }
                                @if controls {
                                    td {
                                        @for (action, label) in [("on", T::On), ("off", T::Off)] {
                                            form.inline method="post" action={ "/console/cabinets/" (encode(&c.id)) "/circuits/" (n) "/command" } {
                                                input type="hidden" name="csrf" value=(who.session.csrf);
                                                input type="hidden" name="action" value=(action);
                                                button id={ "circuit-" (n) "-" (action) } type="submit" { (label.get(lang)) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if c.rtu.is_some() {
                (super::history::section(lang, "cabinet-history", &format!("/console/cabinets/{}/history.svg", encode(&c.id)), HISTORY_PANELS))
            }
            (super::alarms::open_alarms_section(lang, s.app.time_zone, "cabinet-alarms", &alarms))
        },
    ))
}

/// The cabinet's history picture: power, phase voltages, phase currents,
/// energy per hour.
const HISTORY_PANELS: usize = 4;

/// `/console/cabinets/{id}/history.svg?span=24h|7d|30d`: the cabinet RTU's
/// active power, its phases' voltages and currents (the supply of the
/// cabinet's circuits) and the energy metered per hour, from the store as
/// `GET /api/v1/rtus/{id}/history` reads it: raw samples over a day, hourly
/// means beyond; the energy per hour over every span.
pub(super) async fn history(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ConsoleError> {
    use crate::store::read::history::{self as h, Resolution};
    let i = visible_cabinet(&s, &who, &id)?;
    let lang = who.lang;
    let span = q.span()?;
    let c = &s.app.live.inventory.cabinets[i];
    let rtu = c
        .rtu
        .as_ref()
        .ok_or_else(|| ConsoleError::NotFound(format!("cabinet `{id}` has no RTU")))?;
    let store = super::history::store(&s)?;
    let (from, to) = span.window();
    let tz = s.app.time_zone;
    let unavailable = |e: h::HistoryError| ConsoleError::Unavailable(e.to_string());
    let hours = match h::rtu(&store.db, &rtu.id, from, to, Resolution::Hour, tz)
        .await
        .map_err(unavailable)?
        .items
    {
        h::Items::RtuHours(rows) => rows,
        _ => Vec::new(),
    };
    // (x, power, [voltage; 3], [current; 3]) over the span.
    type Row = (i64, Option<f64>, [Option<f64>; 3], [Option<f64>; 3]);
    let rows: Vec<Row> = if span.resolution() == Resolution::Raw {
        match h::rtu(&store.db, &rtu.id, from, to, Resolution::Raw, tz)
            .await
            .map_err(unavailable)?
            .items
        {
            h::Items::RtuRaw(rows) => rows
                .iter()
                .map(|r| {
                    (
                        r.time.timestamp(),
                        r.active_power_w,
                        r.voltage_v,
                        r.current_a,
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    } else {
        hours
            .iter()
            .map(|r| {
                (
                    mid_hour(r.time),
                    r.active_power_w_avg,
                    r.voltage_v_avg,
                    r.current_a_avg,
                )
            })
            .collect()
    };
    const PHASES: [(&str, &str); 3] = [("L1", "#c77700"), ("L2", "#2e7d32"), ("L3", "#c62828")];
    let phases = |pick: fn(&Row) -> [Option<f64>; 3]| {
        PHASES
            .iter()
            .enumerate()
            .map(|(n, (label, colour))| chart::Series {
                label: (*label).to_string(),
                colour,
                points: rows.iter().map(|r| (r.0, pick(r)[n])).collect(),
            })
            .collect::<Vec<_>>()
    };
    let axes = || chart::Axes {
        y: None,
        y_label: chart::number,
        x_ticks: span.x_ticks(from, tz),
        target: None,
    };
    let panel = |title: T, series| chart::Panel {
        title: title.get(lang).to_string(),
        series,
        axes: axes(),
    };
    let panels = [
        panel(
            T::CabinetPower,
            vec![chart::Series {
                label: T::Power.get(lang).to_string(),
                colour: "#ef6c00",
                points: rows.iter().map(|r| (r.0, r.1)).collect(),
            }],
        ),
        panel(T::PhaseVoltage, phases(|r| r.2)),
        panel(T::PhaseCurrent, phases(|r| r.3)),
        panel(
            T::EnergyPerHour,
            vec![chart::Series {
                label: T::Energy.get(lang).to_string(),
                colour: "#0b6bcb",
                points: hours
                    .iter()
                    .map(|r| (mid_hour(r.time), r.energy_kwh))
                    .collect(),
            }],
        ),
    ];
    debug_assert_eq!(panels.len(), HISTORY_PANELS);
    let title = format!("{} · {} · {}", c.id, rtu.id, T::History.get(lang));
    Ok(svg_answer(chart::stack(
        &title,
        &panels,
        T::NoData.get(lang),
    )))
}

#[derive(Deserialize)]
pub(super) struct CircuitForm {
    #[serde(default)]
    csrf: String,
    action: String,
}

/// A person switches a circuit's contactor: CSRF, then the API's order —
/// the cabinet visible (404), the role controls (403) — through
/// `Control::submit`, audited with the user's name.
pub(super) async fn circuit_command(
    State(s): State<ConsoleState>,
    who: Person,
    Path((id, circuit)): Path<(String, u8)>,
    Form(form): Form<CircuitForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&form.csrf)?;
    visible_cabinet(&s, &who, &id)?;
    let p = &who.principal;
    if !p.can_control() {
        return Err(ConsoleError::Forbidden(format!(
            "the {:?} role cannot give commands",
            p.role
        )));
    }
    let action = match form.action.as_str() {
        "on" => Action::On,
        "off" => Action::Off,
        a => return Err(ConsoleError::BadRequest(format!("action `{a}`: on or off"))),
    };
    let cell = s.app.control.submit(
        p,
        Submission {
            actor: p.name.clone(),
            source: Source::Console,
            selector: Selector::Circuit {
                cabinet: id.clone(),
                circuit,
            },
            action,
            expires_at: None,
            idempotency_key: None,
            note: None,
        },
    )?;
    let command = cell.id();
    tracing::info!(user = %p.name, cabinet = %id, circuit, command = %command, "console circuit command");
    Ok(Redirect::to(&format!(
        "/console/cabinets/{}?command={command}",
        encode(&id)
    ))
    .into_response())
}
