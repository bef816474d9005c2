//! The overview: the city's and each district's six figures now against
//! their targets (`figures.targets`), the lighting rate by road class
//! against the evaluation's class targets, active alarms by severity, the
//! next switch points, and 30-day trends — live through `/console/events`.

use super::alarms::severity_texts;
use super::chart::{self, Axes, Series};
use super::i18n::{pick, T};
use super::layout::{page, pct, raw};
use super::live::Frame;
use super::{ConsoleError, ConsoleState, Person};
use crate::alarm::Severity;
use crate::auth::Principal;
use crate::console::Language;
use crate::figures::config::FigureTargets;
use crate::figures::Summary;
use crate::schedule::plan::Target;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use chrono::{Duration, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The figures now, as `/api/v1/metrics/summary` has them: the same cache
/// (`figures::NowCache`), computed off the async workers.
async fn figures_now(s: &ConsoleState) -> Result<Arc<crate::figures::CityNow>, ConsoleError> {
    let (cache, live, alarms) = (
        s.app.now_cache.clone(),
        s.app.live.clone(),
        s.app.alarms.clone(),
    );
    tokio::task::spawn_blocking(move || cache.get(&live, &alarms))
        .await
        .map_err(|e| ConsoleError::Internal(format!("figures: {e}")))
}

const FIGURES: [(T, &str); 6] = [
    (T::RtuInstallationRatio, "rtu_installation_ratio"),
    (T::RtuOnlineRate, "rtu_online_rate"),
    (T::SlcControlShare, "slc_control_share"),
    (T::SlcOnlineRate, "slc_online_rate"),
    (T::LightingRate, "lighting_rate"),
    (T::FacilityIntactRate, "facility_intact_rate"),
];

fn figure(s: &Summary, key: &str) -> Option<f64> {
    match key {
        "rtu_installation_ratio" => s.rtu_installation_ratio,
        "rtu_online_rate" => s.rtu_online_rate,
        "slc_control_share" => s.slc_control_share,
        "slc_online_rate" => s.slc_online_rate,
        "lighting_rate" => s.lighting_rate,
        _ => s.facility_intact_rate,
    }
}

/// `meets` or `misses` its target; empty without a target or a value.
fn verdict(v: Option<f64>, target: Option<f64>) -> &'static str {
    match (v, target) {
        (Some(v), Some(t)) if v >= t => "meets",
        (Some(_), Some(_)) => "misses",
        _ => "",
    }
}

/// The scopes a person sees: the city (to a city-wide person) and each
/// district of theirs, as (summary, display name).
fn scopes<'a>(
    p: &Principal,
    lang: Language,
    now: &'a crate::figures::CityNow,
) -> Vec<(&'a Summary, String)> {
    let (city, districts) = now;
    let mut out = Vec::new();
    if p.district.is_none() {
        out.push((city, T::City.get(lang).to_string()));
    }
    for d in districts.iter().filter(|d| p.sees(&d.scope)) {
        out.push((d, format!("{} · {}", d.name, d.scope)));
    }
    out
}

/// Standing alarms of a scope by severity, from a frame's counts.
fn scope_alarms(p: &Principal, counts: &HashMap<String, [usize; 3]>, scope: &str) -> [usize; 3] {
    let mut n = [0; 3];
    for (d, c) in counts {
        let in_scope = if scope == "city" {
            p.sees(d)
        } else {
            d == scope
        };
        if in_scope {
            for i in 0..3 {
                n[i] += c[i];
            }
        }
    }
    n
}

fn figure_card(
    label: T,
    key: &str,
    v: Option<f64>,
    targets: &FigureTargets,
    lang: Language,
) -> Markup {
    let target = targets.of(key);
    html! {
        div.figure data-figure=(key) data-value=(raw(v)) data-verdict=(verdict(v, target)) {
            span.label { (label.get(lang)) }
            span.value { (pct(v)) }
            @if let Some(t) = target {
                span.target { (T::Target.get(lang)) " ≥ " (pct(Some(t))) }
            }
        }
    }
}

pub(super) async fn overview(
    State(s): State<ConsoleState>,
    who: Person,
) -> Result<Html<String>, ConsoleError> {
    let now = figures_now(&s).await?;
    let p = &who.principal;
    let lang = who.lang;
    let at_utc = Utc::now();
    let counts = super::live::standing_by_district(&s.app, at_utc);
    let (cache, live) = (s.app.evaluation.clone(), s.app.live.clone());
    let evaluation = tokio::task::spawn_blocking(move || cache.get(&live))
        .await
        .map_err(|e| ConsoleError::Internal(format!("evaluation: {e}")))?;
    let upcoming = next_switch_points(&s, p).await?;
    let targets = s.app.evaluation.settings().targets;
    let tz = s.app.time_zone;
    let at = now.0.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S");
    let classes = |scope: &str| {
        if scope == "city" {
            Some(&evaluation.city)
        } else {
            evaluation.districts.iter().find(|d| d.scope == scope)
        }
    };
    let own_trend = p.district.clone().unwrap_or_else(|| "city".into());
    Ok(page(
        lang,
        T::Overview,
        Some(&who),
        html! {
            h1 { (T::Overview.get(lang)) }
            p.muted { (T::At.get(lang)) ": " span #at data-live="/console/events" { (at) } }
            @for (summary, name) in scopes(p, lang, &now) {
                @let n = scope_alarms(p, &counts, &summary.scope);
                section.scope data-scope=(summary.scope) {
                    h2 { (name) }
                    div.figures {
                        @for (label, key) in FIGURES {
                            (figure_card(label, key, figure(summary, key), &targets, lang))
                        }
                    }
                    div.alarms {
                        span.label { a href={ "/console/alarms" @if summary.scope != "city" { "?district=" (summary.scope) } } { (T::ActiveAlarms.get(lang)) } }
                        @for (sev, n) in Severity::ALL.iter().zip(n) {
                            span class={ "badge " (sev.as_str()) } data-severity=(sev.as_str()) data-count=(n) {
                                (pick(lang, severity_texts(*sev))) " " span.n { (n) }
                            }
                        }
                    }
                    @if let Some(row) = classes(&summary.scope).filter(|r| !r.classes.is_empty()) {
                        details.classes {
                            summary { (T::RoadClasses.get(lang)) }
                            table {
                                thead { tr {
                                    th { (T::RoadClass.get(lang)) } th { (T::Roads.get(lang)) }
                                    th { (T::LightingRate.get(lang)) } th { (T::Target.get(lang)) } th {}
                                } }
                                tbody {
                                    @for c in &row.classes {
                                        tr data-class=(c.class.as_str()) data-verdict=(verdict(c.lighting_rate, Some(c.target))) {
                                            td { (pick(lang, (c.class.zh(), c.class.as_str()))) }
                                            td { (c.roads) }
                                            td { (pct(c.lighting_rate)) }
                                            td { "≥ " (pct(Some(c.target))) }
                                            td { @match c.meets_target {
                                                Some(true) => { (T::Meets.get(lang)) }
                                                Some(false) => { (T::Misses.get(lang)) }
                                                None => { "—" }
                                            } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.scope #upcoming data-counted=[upcoming.as_ref().map(|c| c.counted_at.to_rfc3339())] {
                h2 { (T::NextSwitchPoints.get(lang)) }
                @match upcoming.as_ref().map(|c| c.list.as_slice()) {
                    None => p.muted { (T::ScheduleOff.get(lang)) },
                    Some([]) => p.muted { (T::NoSwitchPoints.get(lang)) },
                    Some(list) => table {
                        thead { tr {
                            th { (T::At.get(lang)) } th { (T::Level.get(lang)) } th { (T::Program.get(lang)) }
                            th { (T::Rule.get(lang)) } th { (T::Targets.get(lang)) }
                        } }
                        tbody {
                            @for u in list {
                                tr {
                                    td { (u.at.with_timezone(&tz).format("%m-%d %H:%M")) }
                                    td { (format!("{:.0}", u.level)) }
                                    td { (u.program) }
                                    td { (u.rule) }
                                    td {
                                        @if u.lamps > 0 { (u.lamps) " " (T::LampsCount.get(lang)) " " }
                                        @if u.circuits > 0 { (u.circuits) " " (T::CircuitsCount.get(lang)) }
                                    }
                                }
                            }
                        }
                    },
                }
            }
            section.scope.trend {
                h2 { (T::Trend30Days.get(lang)) }
                img #trend src={ "/console/trend.svg?scope=" (own_trend) } alt=(T::Trend30Days.get(lang)) width="720" height="260";
            }
        },
    ))
}

/// The next day's switch points lately counted, per scope a person sees
/// (`Principal::district`: the city, or one district), so the overview
/// does not walk the plan's targets at every request. A count is served
/// again while the plan is the one it was counted from (`Schedule::plan`
/// makes a new one whenever the book, the groups or the inventory change;
/// a reload makes a new router and so a new cache), while no point it
/// lists has passed, and for at most [`SWITCH_POINTS_TTL`], so that the
/// day's horizon moves on.
#[derive(Debug, Default)]
pub(super) struct SwitchPoints {
    counted: parking_lot::Mutex<HashMap<Option<String>, Counted>>,
}

const SWITCH_POINTS_TTL: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Counted {
    plan: std::sync::Weak<crate::schedule::plan::Plan>,
    at: Instant,
    /// When it was counted (the schedule's clock), as the page says.
    counted_at: chrono::DateTime<Utc>,
    list: Arc<Vec<crate::schedule::upcoming::Upcoming>>,
}

impl Counted {
    fn fresh(&self, plan: &Arc<crate::schedule::plan::Plan>, now: chrono::DateTime<Utc>) -> bool {
        std::sync::Weak::ptr_eq(&self.plan, &Arc::downgrade(plan))
            && self.at.elapsed() < SWITCH_POINTS_TTL
            && self.list.first().is_none_or(|u| u.at > now)
    }
}

/// The next day's switch points of the targets the person sees, counted,
/// with when they were counted; `None` when schedules are off.
async fn next_switch_points(
    s: &ConsoleState,
    p: &Principal,
) -> Result<Option<Counted>, ConsoleError> {
    let Some(engine) = s.app.schedule.clone() else {
        return Ok(None);
    };
    let key = p.district.clone();
    let plan = engine.plan();
    let now = engine.now();
    if let Some(c) = s
        .switch_points
        .counted
        .lock()
        .get(&key)
        .filter(|c| c.fresh(&plan, now))
    {
        return Ok(Some(c.clone()));
    }
    let p = p.clone();
    let counted_from = plan.clone();
    let list = tokio::task::spawn_blocking(move || {
        let inv = counted_from.inventory.clone();
        let keep = |t: Target| match t {
            Target::Lamp(l) => p.sees_lamp(&inv, l),
            Target::Circuit(c, _) => p.sees(&inv.cabinets[c].district),
        };
        crate::schedule::upcoming::upcoming(&counted_from, keep, now, now + Duration::hours(24), 12)
    })
    .await
    .map_err(|e| ConsoleError::Internal(format!("switch points: {e}")))?;
    let counted = Counted {
        plan: Arc::downgrade(&plan),
        at: Instant::now(),
        counted_at: now,
        list: Arc::new(list),
    };
    s.switch_points.counted.lock().insert(key, counted.clone());
    Ok(Some(counted))
}

/// `/console/events`: the overview's figures and alarm counts, once a
/// second from the shared frame (live.rs), as JSON the script applies.
pub(super) async fn events(State(s): State<ConsoleState>, who: Person) -> impl IntoResponse {
    let (p, lang, tz) = (who.principal.clone(), who.lang, s.app.time_zone);
    let targets = s.app.evaluation.settings().targets;
    super::live::stream(&s, who.session_id.clone(), move |f: &Frame| {
        let scopes: Vec<_> = scopes(&p, lang, &f.now)
            .into_iter()
            .map(|(summary, _)| {
                let figures: serde_json::Map<String, serde_json::Value> = FIGURES
                    .iter()
                    .map(|(_, key)| {
                        let v = figure(summary, key);
                        (
                            key.to_string(),
                            serde_json::json!({
                                "value": v,
                                // As the page writes it: the API's JSON
                                // number, to the last digit.
                                "raw": raw(v),
                                "text": pct(v),
                                "verdict": verdict(v, targets.of(key)),
                            }),
                        )
                    })
                    .collect();
                let n = scope_alarms(&p, &f.alarms, &summary.scope);
                serde_json::json!({
                    "scope": summary.scope,
                    "figures": figures,
                    "alarms": Severity::ALL
                        .iter()
                        .zip(n)
                        .map(|(sev, n)| (sev.as_str().to_string(), serde_json::json!(n)))
                        .collect::<serde_json::Map<_, _>>(),
                })
            })
            .collect();
        let at = f.now.0.at.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S");
        Some(serde_json::json!({ "at": at.to_string(), "scopes": scopes }).to_string())
    })
}

#[derive(Deserialize)]
pub(super) struct TrendQuery {
    /// `city` or a district id.
    #[serde(default)]
    scope: String,
}

/// How long a drawn trend is served again: its days change once a day, its
/// last one slowly, and a month of a city's transitions takes a second or
/// two to read.
const TREND_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// A trend drawn: when, and the SVG.
type Drawn = (Instant, Arc<String>);

/// Trends drawn lately, by (scope, language).
#[derive(Debug, Default)]
pub(super) struct Trends {
    drawn: parking_lot::Mutex<HashMap<(String, Language), Drawn>>,
}

/// `/console/trend.svg?scope=`: the last 30 local days' RTU and SLC online
/// rates and lighting rate, a point a day (the API's windowed figures).
pub(super) async fn trend(
    State(s): State<ConsoleState>,
    who: Person,
    Query(q): Query<TrendQuery>,
) -> Result<Response, ConsoleError> {
    let p = &who.principal;
    let inv = &s.app.live.inventory;
    let district = match q.scope.as_str() {
        "" | "city" => p.district.clone(),
        d => Some(
            p.visible_district(inv, d)
                .map(|_| d.to_string())
                .ok_or_else(|| ConsoleError::NotFound(format!("no district `{d}`")))?,
        ),
    };
    let key = (district.clone().unwrap_or_else(|| "city".into()), who.lang);
    let cached = s
        .trends
        .drawn
        .lock()
        .get(&key)
        .filter(|(at, _)| at.elapsed() < TREND_TTL)
        .map(|(_, svg)| svg.clone());
    let svg = match cached {
        Some(svg) => svg,
        None => {
            let svg = Arc::new(draw_trend(&s, district, who.lang).await?);
            s.trends
                .drawn
                .lock()
                .insert(key, (Instant::now(), svg.clone()));
            svg
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        (*svg).clone(),
    )
        .into_response())
}

async fn draw_trend(
    s: &ConsoleState,
    district: Option<String>,
    lang: Language,
) -> Result<String, ConsoleError> {
    let tz = s.app.time_zone;
    let now = Utc::now();
    let today = now.with_timezone(&tz).date_naive();
    let from = crate::calendar::local_midnight(today - chrono::Days::new(29), tz);
    let rates = crate::api::online_rates_of(
        &s.app,
        district,
        from,
        now,
        Some(crate::figures::window::Bucket::Day),
    )
    .await?;
    let line =
        |label: T,
         colour: &'static str,
         get: fn(&crate::figures::report::WindowFigures) -> Option<f64>| Series {
            label: label.get(lang).to_string(),
            colour,
            points: rates
                .buckets
                .iter()
                .map(|b| (b.from.timestamp() + 43_200, get(b)))
                .collect(),
        };
    let series = [
        line(T::RtuOnlineRate, "#0b6bcb", |b| b.rtu_online_rate),
        line(T::SlcOnlineRate, "#2e7d32", |b| b.slc_online_rate),
        line(T::LightingRate, "#ef6c00", |b| b.lighting_rate),
    ];
    let x_ticks = rates
        .buckets
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 5 == 0)
        .map(|(_, b)| {
            (
                b.from.timestamp() + 43_200,
                b.from.with_timezone(&tz).format("%m-%d").to_string(),
            )
        })
        .collect();
    let low = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .fold(1.0_f64, f64::min);
    // From a round tenth below the lowest point: a 97–100 % band stays
    // readable instead of flat against a 0–100 % axis.
    let y0 = ((low * 10.0).floor() / 10.0).clamp(0.0, 0.9);
    Ok(chart::svg(
        T::Trend30Days.get(lang),
        &series,
        &Axes {
            y: Some((y0, 1.0)),
            y_label: chart::percent,
            x_ticks,
            target: None,
        },
        T::NoData.get(lang),
    ))
}
