//! The alarm list: filters, overdue alarms highlighted, acknowledgement
//! with a comment. The list and the acknowledgement are the API's
//! (`api::alarm_page`, `api::acknowledge_alarm`): the same filters, the
//! same district rule, the same checks.

use super::i18n::{kind_texts, pick, state_texts, T};
use super::layout::{district_options, encode, filter_params, flag, page, pager};
use super::{ConsoleError, ConsoleState, Person};
use crate::alarm::{AlarmKind, AlarmState, DeviceKind, Severity};
use crate::api::{acknowledge_alarm, alarm_page, AlarmQuery};
use crate::console::Language;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

/// Rows of one page of the list.
const PAGE_ROWS: usize = 50;

/// The filters as the form sends them (an empty field is no filter).
#[derive(Deserialize, Default)]
pub(super) struct AlarmFilters {
    #[serde(default)]
    state: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    district: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    page: usize,
}

impl AlarmFilters {
    fn link(&self, page: usize) -> String {
        let params = filter_params(&[
            ("state", &self.state),
            ("severity", &self.severity),
            ("kind", &self.kind),
            ("district", &self.district),
            ("overdue", &self.overdue),
        ]);
        format!("/console/alarms?{params}page={page}")
    }

    fn query(&self) -> Result<AlarmQuery, ConsoleError> {
        let some = |v: &String| (!v.is_empty()).then(|| v.clone());
        let overdue = flag("overdue", &self.overdue)?;
        Ok(AlarmQuery {
            state: some(&self.state),
            severity: some(&self.severity),
            kind: some(&self.kind),
            district: some(&self.district),
            overdue,
            limit: Some(PAGE_ROWS),
            offset: Some(self.page * PAGE_ROWS),
            ..AlarmQuery::default()
        })
    }
}

/// A device's open alarms as its page lists them (a lamp's, a cabinet's):
/// severity, kind, device, state, raised; overdue ones marked.
pub(super) fn open_alarms_section(
    lang: Language,
    tz: chrono_tz::Tz,
    id: &str,
    alarms: &[crate::alarm::Alarm],
) -> maud::Markup {
    html! {
        @if !alarms.is_empty() {
            section.scope id=(id) {
                h2 { a href="/console/alarms" { (T::Alarms.get(lang)) } }
                ul {
                    @for a in alarms {
                        li data-alarm=(a.id) class=[a.overdue.then_some("overdue")] {
                            span class={ "badge " (a.severity.as_str()) } { (pick(lang, severity_texts(a.severity))) }
                            " " (pick(lang, kind_texts(a.kind))) " · " (a.device_id) " · " (pick(lang, state_texts(a.state)))
                            " · " (a.raised_at.with_timezone(&tz).format("%Y-%m-%d %H:%M"))
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn severity_texts(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::Emergency => T::Emergency.texts(),
        Severity::Serious => T::Serious.texts(),
        Severity::Ordinary => T::Ordinary.texts(),
    }
}

pub(super) async fn list(
    State(s): State<ConsoleState>,
    who: Person,
    Query(f): Query<AlarmFilters>,
) -> Result<Html<String>, ConsoleError> {
    let p = &who.principal;
    let lang = who.lang;
    let found = alarm_page(&s.app, p, f.query()?).await?;
    let inv = &s.app.live.inventory;
    let districts: Vec<_> = inv.districts.iter().filter(|d| p.sees(&d.id)).collect();
    let tz = s.app.time_zone;
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    };
    let pages = found.total.div_ceil(PAGE_ROWS).max(1);
    let can_ack = p.can_control();
    let back = f.link(f.page);
    let states = [
        ("", T::Open.texts()),
        ("active", state_texts(AlarmState::Active)),
        ("acknowledged", state_texts(AlarmState::Acknowledged)),
        ("cleared", state_texts(AlarmState::Cleared)),
        ("closed", state_texts(AlarmState::Closed)),
        ("all", T::All.texts()),
    ];
    Ok(page(
        lang,
        T::Alarms,
        Some(&who),
        html! {
            h1 { (T::Alarms.get(lang)) }
            form.filters method="get" action="/console/alarms" {
                label { (T::State.get(lang))
                    select name="state" {
                        @for (v, texts) in states {
                            option value=(v) selected[f.state == v] { (pick(lang, texts)) }
                        }
                    }
                }
                label { (T::Severity.get(lang))
                    select name="severity" {
                        option value="" { (T::Any.get(lang)) }
                        @for sev in [Severity::Emergency, Severity::Serious, Severity::Ordinary] {
                            option value=(sev.as_str()) selected[f.severity == sev.as_str()] {
                                (pick(lang, severity_texts(sev)))
                            }
                        }
                    }
                }
                label { (T::Kind.get(lang))
                    select name="kind" {
                        option value="" { (T::Any.get(lang)) }
                        @for k in AlarmKind::ALL {
                            option value=(k.as_str()) selected[f.kind == k.as_str()] { (pick(lang, kind_texts(k))) }
                        }
                    }
                }
                label { (T::District.get(lang))
                    select name="district" {
                        option value="" { (T::Any.get(lang)) }
                        (district_options(&districts, &f.district))
                    }
                }
                label { (T::Overdue.get(lang))
                    select name="overdue" {
                        option value="" { (T::Any.get(lang)) }
                        option value="true" selected[f.overdue == "true"] { (T::Overdue.get(lang)) }
                        option value="false" selected[f.overdue == "false"] { (T::WithinDeadline.get(lang)) }
                    }
                }
                button type="submit" { (T::Filter.get(lang)) }
            }
            p.muted #total data-total=(found.total) { (T::Total.get(lang)) " " (found.total) }
            @if found.items.is_empty() {
                p.muted { (T::NoAlarms.get(lang)) }
            } @else {
                div.scroll {
                    table.alarm-list {
                        thead { tr {
                            th { (T::Raised.get(lang)) } th { (T::Severity.get(lang)) }
                            th { (T::Kind.get(lang)) } th { (T::Device.get(lang)) }
                            th { (T::District.get(lang)) } th { (T::State.get(lang)) }
                            th { (T::Deadline.get(lang)) } th { (T::Comment.get(lang)) }
                            @if can_ack { th {} }
                        } }
                        tbody {
                            @for a in &found.items {
                                tr data-alarm=(a.id) data-state=(a.state.as_str()) class=[a.overdue.then_some("overdue")] {
                                    td { (local(a.raised_at)) }
                                    td { span class={ "badge " (a.severity.as_str()) } { (pick(lang, severity_texts(a.severity))) } }
                                    td { (pick(lang, kind_texts(a.kind))) }
                                    td {
                                        @if a.device_kind == DeviceKind::Lamp {
                                            a href={ "/console/lamps/" (encode(&a.device_id)) } { (a.device_id) }
                                        } @else { (a.device_id) }
                                    }
                                    td { (a.district) }
                                    td.state { (pick(lang, state_texts(a.state))) }
                                    td {
                                        (local(a.deadline))
                                        @if a.overdue { " " strong.overdue-label { (T::Overdue.get(lang)) } }
                                    }
                                    td.comment {
                                        @if let Some(c) = &a.comment {
                                            (c)
                                            @if let Some(by) = &a.acknowledged_by { span.muted { " — " (by) } }
                                        }
                                    }
                                    @if can_ack {
                                        td {
                                            @if a.state == AlarmState::Active {
                                                form.inline.ack method="post" action={ "/console/alarms/" (a.id) "/ack" } {
                                                    input type="hidden" name="csrf" value=(who.session.csrf);
                                                    input type="hidden" name="back" value=(back);
                                                    input name="comment" required maxlength="1000"
                                                        placeholder=(T::Comment.get(lang)) aria-label=(T::Comment.get(lang));
                                                    button type="submit" { (T::Acknowledge.get(lang)) }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (pager(lang, f.page, pages, |n| f.link(n)))
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct AckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    back: String,
}

/// A person acknowledges an alarm: CSRF first, then the API's path, which
/// records the user's name and comment on the alarm.
pub(super) async fn acknowledge(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
    Form(form): Form<AckForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&form.csrf)?;
    let a = acknowledge_alarm(&s.app, &who.principal, &id, &form.comment).await?;
    tracing::info!(user = %who.principal.name, alarm = a.id, kind = a.kind.as_str(), "console alarm acknowledged");
    // Back to the list as it was filtered; only ever to our own list.
    let back = if form.back.starts_with("/console/alarms") && !form.back.contains("//") {
        form.back
    } else {
        "/console/alarms".into()
    };
    Ok(Redirect::to(&back).into_response())
}
