//! The evaluation report over HTTP: a month (`/reports/monthly`) or any
//! window of at most 93 days (`/reports/period`), as JSON, CSV (the
//! summary) or XLSX (every section a sheet), labelled in Chinese or English.
//! The figures are those of the other figure routes, read the same way.

use super::energy::burning_spans;
use super::error::{BadRequest, Unauthorized, Unavailable};
use super::figures::{from_window, positions};
use super::history::{store, time};
use super::inventory::scope;
use super::query::ApiQuery;
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::figures::energy_window::EnergyWindow;
use crate::figures::report::{self, MonthlyReport};
use crate::figures::sheet::{self, Lang};
use crate::figures::{self, sections, window};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct MonthlyQuery {
    /// The month in the city's zone, `YYYY-MM` (required).
    #[param(required = true, value_type = String, pattern = "^[0-9]{4}-[0-9]{2}$", example = "2026-03")]
    pub(crate) month: Option<String>,
    /// Only this district's rows (400 if the caller sees no such district);
    /// a district token's own by default.
    pub(crate) district: Option<String>,
    /// `json`, `csv` (the summary) or `xlsx` (every section); without it,
    /// what `Accept` names (`text/csv`, the XLSX type), else JSON.
    #[param(value_type = Option<ReportFormat>, inline)]
    pub(crate) format: Option<String>,
    /// Labels and headers: `zh` (Chinese) or `en` (English, the default;
    /// CSV headers in English are the columns' keys).
    #[param(value_type = Option<Lang>, inline)]
    pub(crate) lang: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct PeriodQuery {
    /// Start of the window (RFC 3339).
    #[param(required = true, value_type = String, format = DateTime)]
    from: Option<String>,
    /// End of the window (RFC 3339), after `from`, at most 93 days later.
    #[param(required = true, value_type = String, format = DateTime)]
    to: Option<String>,
    /// Only this district's rows (400 if the caller sees no such district).
    district: Option<String>,
    /// As for the monthly report.
    #[param(value_type = Option<ReportFormat>, inline)]
    format: Option<String>,
    /// As for the monthly report.
    #[param(value_type = Option<Lang>, inline)]
    lang: Option<String>,
}

/// The values of `format`; the handler matches the strings.
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "lowercase")]
pub(super) enum ReportFormat {
    Json,
    Csv,
    Xlsx,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
    Xlsx,
}

fn format(asked: Option<&str>, headers: &HeaderMap) -> Result<Format, ApiError> {
    match asked {
        Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        Some(other) => Err(ApiError::BadRequest(format!(
            "format `{other}` is not json, csv or xlsx"
        ))),
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            Ok(if accept.contains(XLSX) {
                Format::Xlsx
            } else if accept.contains("text/csv") {
                Format::Csv
            } else {
                Format::Json
            })
        }
    }
}

fn lang(asked: Option<&str>) -> Result<Lang, ApiError> {
    match asked {
        None | Some("en") => Ok(Lang::En),
        Some("zh") => Ok(Lang::Zh),
        Some(other) => Err(ApiError::BadRequest(format!(
            "lang `{other}` is not zh or en"
        ))),
    }
}

/// Every figure of the report over [from, to).
async fn build(
    s: &AppState,
    district: Option<String>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    month: Option<String>,
) -> Result<MonthlyReport, ApiError> {
    let store = store(s)?;
    let d = district.as_deref();
    let sums = window::sums(&store.db, &s.figures, from, to, None, d, Utc::now())
        .await
        .map_err(from_window)?;
    let (live, engine) = (s.live.clone(), s.alarms.clone());
    let (_, per) =
        super::blocking(move || figures::counts_now(&live, &engine.standing(Utc::now()))).await?;
    let (ds, scope, name) = positions(s, d);
    let mut rows = report::rows(&s.figures, &per, &report::total(&sums), &ds, d.is_none());
    let alarms = figures::alarms::load(
        &store.db,
        &s.figures.inventory,
        from,
        to,
        d,
        &s.evaluation.settings().intact_targets,
    )
    .await
    .map_err(from_window)?;
    report::add_alarms(&mut rows, &alarms);
    let inv = s.live.inventory.clone();
    let spans = burning_spans(s, from, to).await?;
    let energy = EnergyWindow::load(&store.db, &inv, &spans, from, to, d, &ds)
        .await
        .map_err(|e| from_window(window::WindowError::Db(e)))?;
    let lighting = figures::evaluation_window::load(
        &store.db,
        &inv,
        s.evaluation.settings(),
        from,
        to,
        d,
        Utc::now(),
    )
    .await
    .map_err(from_window)?;
    report::add_lighting(&mut rows, &lighting);
    let settings = s.energy.clone();
    let ctx = s.figures.clone();
    let time_zone = s.time_zone.name().to_string();
    let city_wide = d.is_none();
    // Folding a month of a city's cabinet-hours takes a while.
    super::blocking(move || {
        let (mut saving, total) = energy.saving(&inv, &spans, &settings, &ds, (&scope, &name));
        if city_wide {
            saving.push(total);
        }
        let cabinets = report::cabinet_rows(&ctx, &sums, &energy.cabinets(&inv), &ds);
        MonthlyReport {
            month,
            from,
            to,
            time_zone,
            rows,
            saving,
            cabinets,
            lighting,
        }
    })
    .await
}

/// The report in the format asked for; `stem` names the file.
fn render(report: MonthlyReport, format: Format, lang: Lang, stem: String) -> Response {
    let attachment = |ext: &str| format!("attachment; filename=\"{stem}.{ext}\"");
    let made = Utc::now();
    match format {
        Format::Json => Json(report).into_response(),
        Format::Csv => match sheet::csv(&sections::summary(&report, lang), lang) {
            Ok(body) => (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (header::CONTENT_DISPOSITION, attachment("csv")),
                ],
                body,
            )
                .into_response(),
            Err(e) => ApiError::Internal(e.to_string()).into_response(),
        },
        Format::Xlsx => match sheet::xlsx(&sections::all(&report, lang, made), lang) {
            Ok(body) => (
                [
                    (header::CONTENT_TYPE, XLSX.to_string()),
                    (header::CONTENT_DISPOSITION, attachment("xlsx")),
                ],
                body,
            )
                .into_response(),
            Err(e) => ApiError::Internal(e.to_string()).into_response(),
        },
    }
}

/// `GET /api/v1/reports/monthly?month=YYYY-MM[&district=][&format=json|csv|xlsx][&lang=zh|en]`
/// — every figure per district and for the city over a month in the city's
/// zone: the summary (control figures, lighting rate, coverage, alarms and
/// repairs, facility intact rate, energy and saving rate) and every cabinet.
#[utoipa::path(
    get,
    path = "/api/v1/reports/monthly",
    tag = "figures",
    security(("bearer" = [])),
    params(MonthlyQuery),
    responses(
        (status = 200, description = "The month's report", content(
            (MonthlyReport = "application/json"),
            (String = "text/csv", example = "month,scope,name,cabinets_total,…"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn monthly(
    State(s): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<MonthlyQuery>,
) -> Result<Response, ApiError> {
    monthly_report(&s, &p, &headers, q).await
}

/// The month's report as the caller may see it, in the format asked for:
/// the API's route and the console's download.
pub(crate) async fn monthly_report(
    s: &AppState,
    p: &Principal,
    headers: &HeaderMap,
    q: MonthlyQuery,
) -> Result<Response, ApiError> {
    let district = scope(s, p, q.district)?;
    let format = format(q.format.as_deref(), headers)?;
    let lang = lang(q.lang.as_deref())?;
    let month = q
        .month
        .ok_or_else(|| ApiError::BadRequest("`month` is required (YYYY-MM)".into()))?;
    let (from, to) = report::month_window(&month, s.time_zone).map_err(from_window)?;
    let stem = format!("lighting-{month}-{}", district.as_deref().unwrap_or("city"));
    let report = build(s, district, from, to, Some(month)).await?;
    Ok(render(report, format, lang, stem))
}

/// `GET /api/v1/reports/period?from=&to=[&district=][&format=json|csv|xlsx][&lang=zh|en]`
/// — the monthly report's figures over any window of at most 93 days.
#[utoipa::path(
    get,
    operation_id = "period_report",
    path = "/api/v1/reports/period",
    tag = "figures",
    security(("bearer" = [])),
    params(PeriodQuery),
    responses(
        (status = 200, description = "The window's report", content(
            (MonthlyReport = "application/json"),
            (String = "text/csv", example = "month,scope,name,cabinets_total,…"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub(super) async fn period(
    State(s): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PeriodQuery>,
) -> Result<Response, ApiError> {
    let district = scope(&s, &p, q.district)?;
    let format = format(q.format.as_deref(), &headers)?;
    let lang = lang(q.lang.as_deref())?;
    let from = time("from", q.from.as_deref())?;
    let to = time("to", q.to.as_deref())?;
    window::check(from, to, None).map_err(from_window)?;
    let local = |t: DateTime<Utc>| t.with_timezone(&s.time_zone).format("%Y%m%d").to_string();
    let stem = format!(
        "lighting-{}-{}-{}",
        local(from),
        local(to),
        district.as_deref().unwrap_or("city")
    );
    let report = build(&s, district, from, to, None).await?;
    Ok(render(report, format, lang, stem))
}
