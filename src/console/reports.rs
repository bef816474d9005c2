//! Reports: the monthly evaluation report to download (XLSX or CSV, in
//! Chinese or English) and the audit log of commands. Both are the API's
//! (`api::monthly_report`, `api::audit_trail`): the same figures, the same
//! district rule.

use super::i18n::T;
use super::layout::page;
use super::{ConsoleError, ConsoleState, Person};
use crate::api::{audit_trail, monthly_report, AuditQuery, MonthlyQuery};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use chrono::{Datelike, Duration, NaiveDate, Utc};
use maud::html;
use serde::Deserialize;

/// The months offered: this one and the eleven before it.
const MONTHS: u32 = 12;

fn reports_page(s: &ConsoleState, who: &Person) -> Html<String> {
    let lang = who.lang;
    let p = &who.principal;
    let tz = s.app.time_zone;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let months: Vec<String> = (0..MONTHS)
        .map(|back| {
            let m0 = today.year() * 12 + today.month0() as i32 - back as i32;
            format!("{:04}-{:02}", m0.div_euclid(12), m0.rem_euclid(12) + 1)
        })
        .collect();
    let inv = &s.app.live.inventory;
    let districts: Vec<_> = inv.districts.iter().filter(|d| p.sees(&d.id)).collect();
    let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    page(
        lang,
        T::Reports,
        Some(who),
        html! {
            h1 { (T::Reports.get(lang)) }
            section.scope {
                h2 { (T::MonthlyReport.get(lang)) }
                form.filters #monthly method="get" action="/console/reports/monthly" {
                    label { (T::Month.get(lang))
                        select name="month" {
                            @for m in &months { option value=(m) { (m) } }
                        }
                    }
                    label { (T::District.get(lang))
                        select name="district" {
                            @if p.district.is_none() { option value="" { (T::City.get(lang)) } }
                            (super::layout::district_options(&districts, ""))
                        }
                    }
                    label { (T::ReportLanguage.get(lang))
                        select name="lang" {
                            option value="zh" selected[lang.code() == "zh"] { "中文" }
                            option value="en" selected[lang.code() == "en"] { "English" }
                        }
                    }
                    button #xlsx type="submit" name="format" value="xlsx" { (T::Download.get(lang)) " XLSX" }
                    button #csv type="submit" name="format" value="csv" { (T::Download.get(lang)) " CSV" }
                }
            }
            section.scope {
                h2 { (T::Audit.get(lang)) }
                form.filters #audit method="get" action="/console/audit" {
                    label { (T::From.get(lang)) input type="date" name="from" value=(day(today - Duration::days(1))); }
                    label { (T::Until.get(lang)) input type="date" name="to" value=(day(today)); }
                    label { (T::Actor.get(lang)) input name="actor"; }
                    button type="submit" { (T::Filter.get(lang)) }
                }
            }
        },
    )
}

pub(super) async fn reports(State(s): State<ConsoleState>, who: Person) -> Html<String> {
    reports_page(&s, &who)
}

#[derive(Deserialize)]
pub(super) struct MonthlyForm {
    #[serde(default)]
    month: String,
    #[serde(default)]
    district: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    lang: String,
}

/// The report's file, as `GET /api/v1/reports/monthly` makes it.
pub(super) async fn monthly(
    State(s): State<ConsoleState>,
    who: Person,
    headers: HeaderMap,
    Query(f): Query<MonthlyForm>,
) -> Result<Response, ConsoleError> {
    let some = |v: String| (!v.is_empty()).then_some(v);
    let q = MonthlyQuery {
        month: some(f.month),
        district: some(f.district),
        format: some(f.format).or_else(|| Some("xlsx".into())),
        lang: some(f.lang).or_else(|| Some(who.lang.code().into())),
    };
    tracing::info!(user = %who.principal.name, month = ?q.month, district = ?q.district, "console report download");
    Ok(monthly_report(&s.app, &who.principal, &headers, q).await?)
}

#[derive(Deserialize)]
pub(super) struct AuditForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
}

/// Rows of the audit page; the API answers up to 10,000, a page shows the
/// newest of them.
const AUDIT_ROWS: usize = 500;

/// The commands completed between two local dates (the `to` day included).
pub(super) async fn audit(
    State(s): State<ConsoleState>,
    who: Person,
    Query(f): Query<AuditForm>,
) -> Result<Html<String>, ConsoleError> {
    let lang = who.lang;
    let tz = s.app.time_zone;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let date = |v: &str, default: NaiveDate| -> Result<NaiveDate, ConsoleError> {
        if v.is_empty() {
            return Ok(default);
        }
        NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ConsoleError::BadRequest(format!("`{v}` is not a date YYYY-MM-DD")))
    };
    let from_day = date(&f.from, today - Duration::days(1))?;
    let to_day = date(&f.to, today)?;
    let from = crate::calendar::local_midnight(from_day, tz);
    let to = crate::calendar::local_midnight(to_day + Duration::days(1), tz);
    let trail = audit_trail(
        &s.app,
        &who.principal,
        AuditQuery {
            from,
            to,
            actor: (!f.actor.is_empty()).then(|| f.actor.clone()),
        },
    )
    .await?;
    let local =
        |t: chrono::DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string();
    let compact = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    Ok(page(
        lang,
        T::Audit,
        Some(&who),
        html! {
            h1 { (T::Audit.get(lang)) }
            form.filters method="get" action="/console/audit" {
                label { (T::From.get(lang)) input type="date" name="from" value=(from_day.format("%Y-%m-%d")); }
                label { (T::Until.get(lang)) input type="date" name="to" value=(to_day.format("%Y-%m-%d")); }
                label { (T::Actor.get(lang)) input name="actor" value=(f.actor); }
                button type="submit" { (T::Filter.get(lang)) }
            }
            p.muted #total data-total=(trail.total) { (T::Total.get(lang)) " " (trail.total) }
            @if trail.truncated || trail.items.len() > AUDIT_ROWS { p.error { (T::Truncated.get(lang)) } }
            div.scroll {
                table.audit {
                    thead { tr {
                        th { (T::At.get(lang)) } th { (T::Completed.get(lang)) } th { (T::Actor.get(lang)) }
                        th { (T::Source.get(lang)) } th { (T::Action.get(lang)) } th { (T::Scope.get(lang)) }
                        th { (T::Targets.get(lang)) } th { (T::Outcome.get(lang)) }
                    } }
                    tbody {
                        @for e in trail.items.iter().rev().take(AUDIT_ROWS) {
                            tr data-command=(e.command) {
                                td { (local(e.at)) } td { (local(e.completed_at)) } td { (e.actor) }
                                td { (e.source) } td { code { (compact(&e.action)) } }
                                td { code { (compact(&e.selector)) } }
                                td { (e.targets) } td { code { (compact(&e.outcome)) } }
                            }
                        }
                    }
                }
            }
        },
    ))
}
