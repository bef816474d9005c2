//! The night plan, readable: programs as their switch points, calendars as
//! their rules, assignments and emergency shifts; a district's day as a
//! timeline (one bar per set of targets that switch alike); and the
//! emergency-shift form. The book, the day and the shift's checks are the
//! API's (`api::book_view`, `api::day_preview`, `api::save_shift`).

use super::i18n::T;
use super::{ConsoleError, ConsoleState, Person};
use crate::api::{book_view, day_preview, save_shift, PreviewItem, PreviewQuery};
use crate::console::Language;
use crate::schedule::model::{EmergencyShift, Level, Scope, SunEvent, Switch, SwitchPoint};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, Default)]
pub(super) struct ScheduleQuery {
    #[serde(default)]
    date: String,
    #[serde(default)]
    district: String,
    /// Set after a shift was saved.
    #[serde(default)]
    saved: String,
}

fn level_text(lang: Language, l: Level) -> String {
    match l {
        Level::Word(Switch::On) => T::On.get(lang).to_string(),
        Level::Word(Switch::Off) => T::Off.get(lang).to_string(),
        Level::Percent(p) => format!("{} {p:.0}%", T::Dim.get(lang)),
    }
}

/// A switch point as a person reads it: "日落 −10 min → 开 (每隔一盏: even)".
fn point_text(lang: Language, p: &SwitchPoint) -> String {
    let when = match (&p.at, p.sun) {
        (Some(at), _) => at.clone(),
        (None, Some(sun)) => {
            let name = match (sun, lang) {
                (SunEvent::Sunset, Language::Zh) => "日落",
                (SunEvent::Sunrise, Language::Zh) => "日出",
                (SunEvent::Sunset, Language::En) => "sunset",
                (SunEvent::Sunrise, Language::En) => "sunrise",
            };
            match p.offset_min {
                0 => name.to_string(),
                o => format!("{name} {o:+} min"),
            }
        }
        (None, None) => "—".into(),
    };
    let mut out = format!("{when} → {}", level_text(lang, p.level));
    if let Some(g) = &p.group {
        out.push_str(&format!(" [{g}]"));
    }
    if let Some(a) = p.alternate {
        let a = serde_json::to_value(a)
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        out.push_str(&format!(
            " ({} {})",
            match lang {
                Language::Zh => "隔灯",
                Language::En => "every other lamp:",
            },
            a.unwrap_or_default()
        ));
    }
    out
}

fn scope_text(s: &Scope) -> String {
    match serde_json::to_value(s) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => "?".into(),
    }
}

/// The date asked for, else today in the city's zone.
fn day(q: &str, tz: Tz) -> Result<NaiveDate, ConsoleError> {
    if q.is_empty() {
        return Ok(Utc::now().with_timezone(&tz).date_naive());
    }
    NaiveDate::parse_from_str(q, "%Y-%m-%d")
        .map_err(|_| ConsoleError::BadRequest(format!("`{q}` is not a date YYYY-MM-DD")))
}

/// Targets whose day is the same sequence of (minute of the day, level).
struct Row {
    steps: Vec<(u32, f64)>,
    programs: Vec<String>,
    lamps: usize,
    circuits: usize,
}

/// The day's events grouped into rows of targets that switch alike.
fn rows(events: &[PreviewItem]) -> Vec<Row> {
    // Target → its (minute, level) steps and the programs they come from.
    type Day = (Vec<(u32, f64)>, Vec<String>);
    let mut by_target: BTreeMap<&str, Day> = BTreeMap::new();
    for item in events {
        let PreviewItem::Event(e) = item else {
            continue;
        };
        let Ok(at) = DateTime::parse_from_rfc3339(&e.at) else {
            continue;
        };
        let minute = at.hour() * 60 + at.minute();
        let entry = by_target.entry(e.target.as_str()).or_default();
        entry.0.push((minute, e.level));
        if !entry.1.contains(&e.program) {
            entry.1.push(e.program.clone());
        }
    }
    let mut grouped: BTreeMap<String, Row> = BTreeMap::new();
    for (target, (steps, programs)) in by_target {
        let key = format!("{steps:?}{programs:?}");
        let row = grouped.entry(key).or_insert_with(|| Row {
            steps,
            programs,
            lamps: 0,
            circuits: 0,
        });
        if target.contains('#') {
            row.circuits += 1;
        } else {
            row.lamps += 1;
        }
    }
    let mut out: Vec<Row> = grouped.into_values().collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.lamps + r.circuits));
    out
}

/// A row's day as (from minute, to minute, level) spans over 00:00–24:00.
/// Before the day's first event a row stands at its last event's level
/// (yesterday's night continues: a day's plan repeats, and the preview is of
/// one day).
fn segments(steps: &[(u32, f64)]) -> Vec<(u32, u32, f64)> {
    let mut level = steps.last().map_or(0.0, |s| s.1);
    let mut from = 0;
    let mut out = Vec::new();
    for &(minute, next) in steps.iter().chain(std::iter::once(&(1440, level))) {
        if minute > from {
            out.push((from, minute, level));
        }
        from = minute;
        level = next;
    }
    out
}

/// The day as bars: each row's level from 00:00 to 24:00 (`segments`).
fn timeline(lang: Language, rows: &[Row]) -> Markup {
    const W: f64 = 760.0;
    const LEFT: f64 = 220.0;
    const ROW: f64 = 26.0;
    let h = 30.0 + ROW * rows.len() as f64;
    let x = |minute: u32| LEFT + minute as f64 / 1440.0 * (W - LEFT - 24.0);
    let fill = |level: f64| {
        if level <= 0.0 {
            "#cfd6df".to_string()
        } else {
            // Brighter for a higher level.
            let a = 0.35 + 0.65 * (level / 100.0).clamp(0.0, 1.0);
            format!("rgba(249,168,37,{a:.2})")
        }
    };
    html! {
        svg.timeline xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (h) } width=(W) height=(h)
            font-size="12" font-family="system-ui, 'Noto Sans CJK SC', 'WenQuanYi Zen Hei', sans-serif" {
            @for hour in (0..=24).step_by(3) {
                line x1=(x(hour * 60)) x2=(x(hour * 60)) y1="14" y2=(h) stroke="#e3e7ed" {}
                text x=(x(hour * 60)) y="11" text-anchor="middle" fill="#5b6675" { (format!("{hour:02}:00")) }
            }
            @for (i, r) in rows.iter().enumerate() {
                @let y = 20.0 + ROW * i as f64;
                text x="4" y=(y + 15.0) fill="#1b2430" {
                    @if r.lamps > 0 { (r.lamps) " " (T::LampsCount.get(lang)) " " }
                    @if r.circuits > 0 { (r.circuits) " " (T::CircuitsCount.get(lang)) " " }
                    "· " (r.programs.join(", "))
                }
                @for (from, to, level) in segments(&r.steps) {
                    rect x=(x(from)) y=(y) width=((x(to) - x(from)).max(0.0)) height=(ROW - 6.0) fill=(fill(level)) {
                        title { (format!("{:02}:{:02}–{:02}:{:02} {level:.0}%", from / 60, from % 60, to / 60, to % 60)) }
                    }
                }
            }
        }
    }
}

pub(super) async fn schedules(
    State(s): State<ConsoleState>,
    who: Person,
    Query(q): Query<ScheduleQuery>,
) -> Result<Html<String>, ConsoleError> {
    let lang = who.lang;
    let p = &who.principal;
    let tz = s.app.time_zone;
    if s.app.schedule.is_none() {
        return Ok(page_off(lang, &who));
    }
    let book = book_view(&s.app, p)?;
    let inv = s.app.live.inventory.clone();
    let districts: Vec<_> = inv.districts.iter().filter(|d| p.sees(&d.id)).collect();
    let district = if q.district.is_empty() {
        districts.first().map(|d| d.id.clone()).unwrap_or_default()
    } else {
        q.district.clone()
    };
    let date = day(&q.date, tz)?;
    let (app, principal, dq) = (
        s.app.clone(),
        p.clone(),
        PreviewQuery {
            date: date.format("%Y-%m-%d").to_string(),
            district: Some(district.clone()),
            cabinet: None,
            lamp: None,
        },
    );
    // A district's day walks its targets: off the async workers.
    let preview = tokio::task::spawn_blocking(move || day_preview(&app, &principal, &dq))
        .await
        .map_err(|e| ConsoleError::Internal(format!("preview: {e}")))??;
    let rows = rows(&preview.events);
    let now_local = Utc::now().with_timezone(&tz);
    let later = now_local + chrono::Duration::hours(12);
    let local_input = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string();
    let can_shift = p.can_control();
    Ok(super::layout::page(
        lang,
        T::Schedules,
        Some(&who),
        html! {
            h1 { (T::Schedules.get(lang)) }
            @if !q.saved.is_empty() { p.notice #saved { (T::Saved.get(lang)) ": " code { (q.saved) } } }
            section.scope #preview {
                h2 { (T::DayPreview.get(lang)) }
                form.filters method="get" action="/console/schedules" {
                    label { (T::Date.get(lang)) input type="date" name="date" value=(date.format("%Y-%m-%d")); }
                    label { (T::District.get(lang))
                        select name="district" {
                            (super::layout::district_options(&districts, &district))
                        }
                    }
                    button type="submit" { (T::Filter.get(lang)) }
                }
                @if rows.is_empty() { p.muted { (T::NoSwitchPoints.get(lang)) } }
                @else { div.scroll { (timeline(lang, &rows)) } }
            }
            @if can_shift {
                section.scope #shift {
                    h2 { (T::EmergencyShifts.get(lang)) }
                    form.filters #shift-form method="post" action="/console/schedules/shifts" {
                        input type="hidden" name="csrf" value=(who.session.csrf);
                        label { (T::Id.get(lang)) input name="id" required value=(format!("shift-{}", now_local.format("%Y%m%d-%H%M"))); }
                        label { (T::Scope.get(lang))
                            select name="district" {
                                @if p.district.is_none() { option value="" { (T::City.get(lang)) } }
                                (super::layout::district_options(&districts, &district))
                            }
                        }
                        label { (T::From.get(lang)) input type="datetime-local" name="from" required value=(local_input(now_local.with_timezone(&Utc))); }
                        label { (T::Until.get(lang)) input type="datetime-local" name="until" required value=(local_input(later.with_timezone(&Utc))); }
                        label { (T::OnEarlier.get(lang)) input type="number" name="on_earlier_min" min="0" max="180" value="0"; }
                        label { (T::OffLater.get(lang)) input type="number" name="off_later_min" min="0" max="180" value="0"; }
                        label { (T::Force.get(lang))
                            select name="force" {
                                option value="" { (T::NoForce.get(lang)) }
                                option value="on" { (T::On.get(lang)) }
                                option value="off" { (T::Off.get(lang)) }
                                @for pct in [30, 50, 70] { option value=(pct) { (T::Dim.get(lang)) " " (pct) "%" } }
                            }
                        }
                        label { (T::Reason.get(lang)) input name="reason" maxlength="200"; }
                        button #save-shift type="submit" { (T::Save.get(lang)) }
                    }
                }
            }
            section.scope #book {
                h2 { (T::Programs.get(lang)) }
                table {
                    thead { tr { th { (T::Id.get(lang)) } th { (T::Program.get(lang)) } th { (T::Points.get(lang)) } } }
                    tbody {
                        @for prog in &book.programs {
                            tr data-program=(prog.id) {
                                td { (prog.id) } td { (prog.name) }
                                td { ul.points { @for pt in &prog.points { li { (point_text(lang, pt)) } } } }
                            }
                        }
                    }
                }
                h2 { (T::Calendars.get(lang)) }
                table {
                    thead { tr { th { (T::Id.get(lang)) } th { (T::Rule.get(lang)) } th { (T::Program.get(lang)) } } }
                    tbody {
                        @for c in &book.calendars {
                            @for r in &c.rules {
                                tr data-calendar=(c.id) {
                                    td { (c.id) }
                                    td { (r.name) " " span.muted { (r.dates.join(", ")) " " (r.weekdays.join(" ")) @if r.priority != 0 { " (" (r.priority) ")" } } }
                                    td { (r.program) }
                                }
                            }
                            @if let Some(d) = &c.default_program {
                                tr data-calendar=(c.id) { td { (c.id) } td { (T::Default.get(lang)) } td { (d) } }
                            }
                        }
                    }
                }
                h2 { (T::Assignments.get(lang)) }
                table {
                    thead { tr { th { (T::Id.get(lang)) } th { (T::Scope.get(lang)) } th { (T::Calendars.get(lang)) } } }
                    tbody {
                        @for a in &book.assignments {
                            tr { td { (a.id) } td { code { (scope_text(&a.scope)) } } td { (a.calendar) } }
                        }
                    }
                }
                h2 { (T::EmergencyShifts.get(lang)) }
                table #shifts {
                    thead { tr {
                        th { (T::Id.get(lang)) } th { (T::Scope.get(lang)) } th { (T::From.get(lang)) }
                        th { (T::Until.get(lang)) } th { (T::OnEarlier.get(lang)) } th { (T::OffLater.get(lang)) }
                        th { (T::Force.get(lang)) } th { (T::Reason.get(lang)) }
                    } }
                    tbody {
                        @for x in &book.emergency_shifts {
                            tr data-shift=(x.id) {
                                td { (x.id) } td { code { (scope_text(&x.scope)) } }
                                td { (local_input(x.from).replace('T', " ")) } td { (local_input(x.until).replace('T', " ")) }
                                td { (x.on_earlier_min) } td { (x.off_later_min) }
                                td { (x.force.map_or_else(|| "—".to_string(), |l| level_text(lang, l))) }
                                td { (x.reason) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

fn page_off(lang: Language, who: &Person) -> Html<String> {
    super::layout::page(
        lang,
        T::Schedules,
        Some(who),
        html! { h1 { (T::Schedules.get(lang)) } p.muted { (T::ScheduleOff.get(lang)) } },
    )
}

#[cfg(test)]
mod tests {
    use super::segments;

    #[test]
    fn a_day_is_covered_from_midnight_to_midnight() {
        // Off at 07:00, on at 17:10, dim at 23:30: the night before 07:00
        // stands at the day's last level (dimmed).
        let s = segments(&[(420, 0.0), (1030, 100.0), (1410, 50.0)]);
        assert_eq!(
            s,
            vec![
                (0, 420, 50.0),
                (420, 1030, 0.0),
                (1030, 1410, 100.0),
                (1410, 1440, 50.0)
            ]
        );
        // No events: a day at one level, off.
        assert_eq!(segments(&[]), vec![(0, 1440, 0.0)]);
    }
}

#[derive(Deserialize)]
pub(super) struct ShiftForm {
    #[serde(default)]
    csrf: String,
    id: String,
    #[serde(default)]
    district: String,
    from: String,
    until: String,
    #[serde(default)]
    on_earlier_min: String,
    #[serde(default)]
    off_later_min: String,
    #[serde(default)]
    force: String,
    #[serde(default)]
    reason: String,
}

/// A local `YYYY-MM-DDTHH:MM` (the form's `datetime-local`) in the city's
/// zone; a time the clock skips or repeats at a change is refused.
fn local_time(name: &str, v: &str, tz: Tz) -> Result<DateTime<Utc>, ConsoleError> {
    let naive = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .map_err(|_| ConsoleError::BadRequest(format!("{name}: `{v}` is not a local time")))?;
    tz.from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ConsoleError::BadRequest(format!("{name}: `{v}` is not one local time")))
}

/// A person saves an emergency shift: CSRF, then the API's path (role,
/// scope in the person's district, the whole book checked).
pub(super) async fn shift(
    State(s): State<ConsoleState>,
    who: Person,
    Form(f): Form<ShiftForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&f.csrf)?;
    let tz = s.app.time_zone;
    let minutes = |name: &str, v: &str| -> Result<u32, ConsoleError> {
        if v.is_empty() {
            return Ok(0);
        }
        v.parse()
            .map_err(|_| ConsoleError::BadRequest(format!("{name}: `{v}` is not whole minutes")))
    };
    let force = match f.force.as_str() {
        "" => None,
        "on" => Some(Level::Word(Switch::On)),
        "off" => Some(Level::Word(Switch::Off)),
        v => Some(Level::Percent(v.parse().map_err(|_| {
            ConsoleError::BadRequest(format!("force: `{v}` is not on, off or a level"))
        })?)),
    };
    let shift = EmergencyShift {
        id: f.id.trim().to_string(),
        scope: if f.district.is_empty() {
            Scope::City
        } else {
            Scope::District(f.district.clone())
        },
        from: local_time("from", &f.from, tz)?,
        until: local_time("until", &f.until, tz)?,
        on_earlier_min: minutes("on_earlier_min", &f.on_earlier_min)?,
        off_later_min: minutes("off_later_min", &f.off_later_min)?,
        force,
        reason: f.reason.trim().to_string(),
    };
    save_shift(&s.app, &who.principal, &shift).await?;
    tracing::info!(user = %who.principal.name, shift = %shift.id, scope = %scope_text(&shift.scope), "console emergency shift saved");
    let district = if f.district.is_empty() {
        String::new()
    } else {
        format!("&district={}", super::layout::encode(&f.district))
    };
    Ok(Redirect::to(&format!(
        "/console/schedules?saved={}{district}",
        super::layout::encode(&shift.id)
    ))
    .into_response())
}
