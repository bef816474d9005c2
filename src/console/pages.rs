//! The console's pages (maud templates: HTML checked when the crate
//! compiles, every interpolation escaped) and the handlers behind them.

use super::i18n::T;
use super::users::verify_password;
use super::{
    client_address, language, secure, session_cookie, ConsoleError, ConsoleState, Person,
    LANG_COOKIE, SESSION_COOKIE,
};
use crate::alarm::Severity;
use crate::auth::Principal;
use crate::console::Language;
use crate::control::{Action, Command, Selector, Source, Submission, TargetState};
use crate::figures::Summary;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

/// A whole page: the navigation when someone is logged in.
fn page(lang: Language, title: T, who: Option<&Person>, body: Markup) -> Html<String> {
    let other = match lang {
        Language::Zh => "en",
        Language::En => "zh",
    };
    Html(
        html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title.get(lang)) " · " (T::Title.get(lang)) }
                    link rel="stylesheet" href="/console/assets/console.css";
                    script src="/console/assets/console.js" defer {}
                }
                body {
                    header {
                        a.brand href="/console/" { (T::Title.get(lang)) }
                        @if who.is_some() {
                            nav {
                                a href="/console/" { (T::Overview.get(lang)) }
                                a href="/console/lamps" { (T::Lamps.get(lang)) }
                            }
                        }
                        span.spacer {}
                        a #lang href={ "/console/lang?to=" (other) } { (T::Language.get(lang)) }
                        @if let Some(p) = who {
                            span.who { (p.principal.name) " · " (role(&p.principal)) }
                            form.inline method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(p.session.csrf);
                                button #logout type="submit" { (T::Logout.get(lang)) }
                            }
                        }
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

fn role(p: &Principal) -> String {
    let r = format!("{:?}", p.role).to_lowercase();
    match &p.district {
        Some(d) => format!("{r} ({d})"),
        None => r,
    }
}

/// An error page in both languages.
pub(super) fn error_page(status: StatusCode, label: T, detail: &str) -> Html<String> {
    let (zh, en) = label.texts();
    Html(
        html! {
            (DOCTYPE)
            html lang="zh" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (status.as_u16()) " " (zh) " / " (en) }
                    link rel="stylesheet" href="/console/assets/console.css";
                }
                body {
                    main {
                        h1.error { (status.as_u16()) " " (zh) " · " (en) }
                        @if !detail.is_empty() { p { code { (detail) } } }
                        p { a href="/console/" { (T::Back.texts().0) " · " (T::Back.texts().1) } }
                    }
                }
            }
        }
        .into_string(),
    )
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The exact value as the API's JSON has it, for tests and scripts.
fn raw(v: Option<f64>) -> String {
    serde_json::to_string(&v).expect("a number serialises")
}

// ---------------------------------------------------------------- login

#[derive(Deserialize)]
pub(super) struct LoginForm {
    user: String,
    password: String,
}

fn login_page(lang: Language, error: Option<T>) -> Html<String> {
    page(
        lang,
        T::Login,
        None,
        html! {
            form.login method="post" action="/console/login" {
                h1 { (T::Login.get(lang)) }
                @if let Some(e) = error { p.error #login-error { (e.get(lang)) } }
                label { (T::User.get(lang)) input name="user" autocomplete="username" required autofocus; }
                label { (T::Password.get(lang)) input type="password" name="password" autocomplete="current-password" required; }
                button #login type="submit" { (T::Login.get(lang)) }
            }
        },
    )
}

pub(super) async fn login_form(State(s): State<ConsoleState>, headers: HeaderMap) -> Response {
    login_page(language(&s.console, &headers), None).into_response()
}

/// Verified against when the user is unknown, so that an unknown name
/// takes as long to refuse as a wrong password and does not reveal itself.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        super::users::hash_password(&super::session::random_id()).expect("a long password hashes")
    })
}

pub(super) async fn login(State(s): State<ConsoleState>, req: Request) -> Response {
    let address = client_address(req.extensions());
    let headers = req.headers().clone();
    let lang = language(&s.console, &headers);
    let Form(form) = match Form::<LoginForm>::from_request(req, &()).await {
        Ok(f) => f,
        Err(e) => return ConsoleError::BadRequest(e.body_text()).into_response(),
    };
    let c = &s.console;
    if !c.limiter.allows(&form.user, &address) {
        tracing::warn!(user = %form.user, address = %address, "console login refused: too many failures");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            login_page(lang, Some(T::TooManyAttempts)),
        )
            .into_response();
    }
    let user = c.users.current().get(&form.user).cloned();
    let hash = user
        .as_ref()
        .map_or_else(|| decoy_hash().to_string(), |u| u.password_hash.clone());
    let password = form.password;
    let good = tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    match user.filter(|_| good) {
        Some(u) => {
            let (id, _) = c.sessions.begin(&u.name);
            tracing::info!(user = %u.name, address = %address, "console login");
            let mut res = Redirect::to("/console/").into_response();
            let age = c.settings.session_absolute.as_secs();
            res.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie(&id, Some(age), secure(c, &headers)),
            );
            res
        }
        None => {
            c.limiter.failed(&form.user, &address);
            tracing::info!(user = %form.user, address = %address, "console login failed");
            (
                StatusCode::UNAUTHORIZED,
                login_page(lang, Some(T::LoginFailed)),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn logout(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    who: Person,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&form.csrf)?;
    if let Some(id) = super::cookie(&headers, SESSION_COOKIE) {
        s.console.sessions.end(id);
    }
    tracing::info!(user = %who.principal.name, "console logout");
    let mut res = Redirect::to("/console/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", Some(0), secure(&s.console, &headers)),
    );
    Ok(res)
}

#[derive(Deserialize)]
pub(super) struct LangQuery {
    to: String,
    back: Option<String>,
}

/// Sets the language cookie and goes back: to the page the browser came
/// from when it is one of ours (never elsewhere: no open redirect).
pub(super) async fn language_switch(
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ConsoleError> {
    let lang = Language::parse(&q.to)
        .ok_or_else(|| ConsoleError::BadRequest(format!("language `{}`: zh or en", q.to)))?;
    let back = q
        .back
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let path = referer.split_once("://")?.1.strip_prefix(host)?;
            Some(path.to_string())
        })
        .filter(|b| b.starts_with("/console/") && !b.starts_with("/console/lang"))
        .unwrap_or_else(|| "/console/".into());
    let mut res = Redirect::to(&back).into_response();
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("ASCII"),
    );
    Ok(res)
}

// ---------------------------------------------------------------- overview

/// The figures now, as `/api/v1/metrics/summary` has them: the same cache
/// (`figures::NowCache`), computed off the async workers.
async fn figures_now(
    s: &ConsoleState,
) -> Result<std::sync::Arc<crate::figures::CityNow>, ConsoleError> {
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

const SEVERITIES: [(Severity, T, &str); 3] = [
    (Severity::Emergency, T::Emergency, "emergency"),
    (Severity::Serious, T::Serious, "serious"),
    (Severity::Ordinary, T::Ordinary, "ordinary"),
];

pub(super) async fn overview(
    State(s): State<ConsoleState>,
    who: Person,
) -> Result<Html<String>, ConsoleError> {
    let now = figures_now(&s).await?;
    let (city, districts) = &*now;
    let p = &who.principal;
    let standing = s.app.alarms.standing(chrono::Utc::now());
    // Alarms by severity for a scope: the city's are every one the caller sees.
    let alarms = |scope: Option<&str>| {
        SEVERITIES.map(|(sev, _, _)| {
            standing
                .iter()
                .filter(|a| a.severity == sev && p.sees(&a.district))
                .filter(|a| scope.is_none_or(|d| a.district == d))
                .count()
        })
    };
    let lang = who.lang;
    let mut scopes: Vec<(&Summary, String, [usize; 3])> = Vec::new();
    if p.district.is_none() {
        scopes.push((city, T::City.get(lang).to_string(), alarms(None)));
    }
    for d in districts.iter().filter(|d| p.sees(&d.scope)) {
        scopes.push((
            d,
            format!("{} · {}", d.name, d.scope),
            alarms(Some(&d.scope)),
        ));
    }
    let at = city
        .at
        .with_timezone(&s.app.time_zone)
        .format("%Y-%m-%d %H:%M:%S");
    Ok(page(
        lang,
        T::Overview,
        Some(&who),
        html! {
            h1 { (T::Overview.get(lang)) }
            p.muted { (T::At.get(lang)) ": " (at) }
            @for (summary, name, counts) in &scopes {
                section.scope data-scope=(summary.scope) {
                    h2 { (name) }
                    div.figures {
                        @for (label, key) in FIGURES {
                            @let v = figure(summary, key);
                            div.figure data-figure=(key) data-value=(raw(v)) {
                                span.label { (label.get(lang)) }
                                span.value { (pct(v)) }
                            }
                        }
                    }
                    div.alarms {
                        span.label { (T::ActiveAlarms.get(lang)) }
                        @for ((_, label, key), n) in SEVERITIES.iter().zip(counts) {
                            span class={ "badge " (key) } data-severity=(key) data-count=(n) {
                                (label.get(lang)) " " (n)
                            }
                        }
                    }
                }
            }
        },
    ))
}

// ---------------------------------------------------------------- lamps

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
    online: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: usize,
}

impl LampQuery {
    fn link(&self, page: usize) -> String {
        let mut url = String::from("/console/lamps?");
        for (k, v) in [
            ("district", &self.district),
            ("cabinet", &self.cabinet),
            ("online", &self.online),
            ("q", &self.q),
        ] {
            if !v.is_empty() {
                url.push_str(&format!("{k}={}&", encode(v)));
            }
        }
        url.push_str(&format!("page={page}"));
        url
    }
}

/// Percent-encodes a query value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) async fn lamps(
    State(s): State<ConsoleState>,
    who: Person,
    Query(q): Query<LampQuery>,
) -> Result<Html<String>, ConsoleError> {
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
    let online = match q.online.as_str() {
        "" => None,
        "true" => Some(true),
        "false" => Some(false),
        o => {
            return Err(ConsoleError::BadRequest(format!(
                "online `{o}`: true or false"
            )))
        }
    };
    let live = s.app.live.clone();
    let caller = p.clone();
    let (district, cabinet, search, page_no) = (
        q.district.clone(),
        q.cabinet.clone(),
        q.q.to_lowercase(),
        q.page,
    );
    // Walks every lamp: on the blocking pool, as the API's list does.
    let (total, rows) = tokio::task::spawn_blocking(move || {
        let inv = &live.inventory;
        let g = live.read();
        let mut total = 0;
        let mut rows = Vec::new();
        for (i, l) in inv.lamps.iter().enumerate() {
            let Some(c) = inv.cabinet_of_lamp(i) else {
                continue;
            };
            let cab = &inv.cabinets[c];
            let listed = caller.sees(&cab.district)
                && (district.is_empty() || cab.district == district)
                && (cabinet.is_empty() || l.cabinet == cabinet)
                && (search.is_empty() || l.id.to_lowercase().contains(&search))
                && online.is_none_or(|o| l.slc.is_some() && g.lamps[i].online == o);
            if !listed {
                continue;
            }
            if total >= page_no * PAGE_ROWS && rows.len() < PAGE_ROWS {
                let d = &g.lamps[i];
                rows.push((
                    l.id.clone(),
                    cab.district.clone(),
                    l.cabinet.clone(),
                    l.circuit,
                    l.slc.is_some().then_some(d.online),
                    d.reading.clone(),
                ));
            }
            total += 1;
        }
        (total, rows)
    })
    .await
    .map_err(|e| ConsoleError::Internal(format!("lamp list: {e}")))?;
    let districts: Vec<_> = inv.districts.iter().filter(|d| p.sees(&d.id)).collect();
    let pages = total.div_ceil(PAGE_ROWS).max(1);
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
                        @for d in &districts {
                            option value=(d.id) selected[d.id == q.district] { (d.name) " · " (d.id) }
                        }
                    }
                }
                label { (T::Cabinet.get(lang)) input name="cabinet" value=(q.cabinet); }
                label { (T::Online.get(lang))
                    select name="online" {
                        option value="" { (T::Any.get(lang)) }
                        option value="true" selected[q.online == "true"] { (T::Online.get(lang)) }
                        option value="false" selected[q.online == "false"] { (T::Offline.get(lang)) }
                    }
                }
                label { (T::Search.get(lang)) input #search name="q" value=(q.q); }
                button type="submit" { (T::Filter.get(lang)) }
            }
            p.muted #total data-total=(total) { (T::Total.get(lang)) " " (total) }
            div.scroll {
                table.lamps {
                    thead { tr {
                        th { (T::Lamp.get(lang)) } th { (T::District.get(lang)) }
                        th { (T::Cabinet.get(lang)) } th { (T::Circuit.get(lang)) }
                        th { (T::Online.get(lang)) } th { (T::Relay.get(lang)) }
                        th { (T::DimLevel.get(lang)) } th { (T::Power.get(lang)) }
                    } }
                    tbody {
                        @for (id, district, cabinet, circuit, online, reading) in &rows {
                            tr data-lamp=(id) {
                                td { a href={ "/console/lamps/" (encode(id)) } { (id) } }
                                td { (district) } td { (cabinet) } td { (circuit) }
                                td { (online_text(lang, *online)) }
                                td { (reading.as_ref().map_or("—", |r| if r.on { T::On.get(lang) } else { T::Off.get(lang) })) }
                                td { (reading.as_ref().map_or("—".into(), |r| format!("{:.0}", r.dim_level))) }
                                td { (num(reading.as_ref().and_then(|r| r.power), 1)) }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if q.page > 0 { a #prev href=(q.link(q.page - 1)) { (T::Previous.get(lang)) } }
                span { (q.page + 1) " / " (pages) }
                @if q.page + 1 < pages { a #next href=(q.link(q.page + 1)) { (T::Next.get(lang)) } }
            }
        },
    ))
}

fn online_text(lang: Language, online: Option<bool>) -> &'static str {
    match online {
        None => T::NoSlc.get(lang),
        Some(true) => T::Online.get(lang),
        Some(false) => T::Offline.get(lang),
    }
}

fn num(v: Option<f64>, places: usize) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.places$}"))
}

// ---------------------------------------------------------------- lamp

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

/// A command the caller may follow: one whose every target it may see.
fn visible_command(s: &ConsoleState, p: &Principal, id: &str) -> Option<Command> {
    let c = s.app.control.get(id)?.snapshot();
    c.targets.iter().all(|t| p.sees(&t.district)).then_some(c)
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
    let c = inv.cabinet_of_lamp(i).map(|c| &inv.cabinets[c]);
    let d = s.app.live.read().lamps[i].clone();
    let command = q.command.as_deref().and_then(|c| visible_command(&s, p, c));
    let r = d.reading.as_ref();
    let tz = s.app.time_zone;
    let rows: Vec<(T, String)> = vec![
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
    ];
    let controls = p.can_control() && l.slc.is_some();
    let action = format!("/console/lamps/{}/command", encode(&l.id));
    Ok(page(
        lang,
        T::Lamp,
        Some(&who),
        html! {
            h1 { (T::Lamp.get(lang)) " " (l.id) }
            dl.values #values {
                @for (label, value) in &rows {
                    dt { (label.get(lang)) } dd { (value) }
                }
            }
            @if let Some(c) = &command { (progress(lang, c)) }
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
                                value=(r.map_or(100.0, |r| r.dim_level).round());
                        }
                        button #dim type="submit" { (T::Dim.get(lang)) }
                    }
                }
            }
        },
    ))
}

fn state_label(s: TargetState) -> T {
    match s {
        TargetState::Queued => T::Queued,
        TargetState::Written => T::Written,
        TargetState::Confirmed => T::Confirmed,
        TargetState::Failed => T::Failed,
    }
}

/// A command's progress; the script follows it while it is in progress
/// (`data-follow`) and reloads the page when it is done.
fn progress(lang: Language, c: &Command) -> Markup {
    let done = c.is_complete();
    html! {
        section.command #command data-follow=[(!done).then(|| format!("/console/commands/{}", c.id))]
            data-done=(done) {
            h2 { (T::Command.get(lang)) " " code { (c.id) } }
            p { span.status { (if done { T::Done.get(lang) } else { T::InProgress.get(lang) }) } }
            ul {
                @for t in &c.targets {
                    li data-target=(t.id) data-state=(format!("{:?}", t.state).to_lowercase()) {
                        (t.id) ": " span.state { (state_label(t.state).get(lang)) }
                        @if let Some(why) = &t.reason { " — " code { (serde_json::to_string(why).unwrap_or_default()) } }
                    }
                }
            }
        }
    }
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

/// A command's progress as JSON for the page's script.
pub(super) async fn command(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let c = visible_command(&s, &who.principal, &id)
        .ok_or_else(|| ConsoleError::NotFound(format!("no command `{id}`")))?;
    let lang = who.lang;
    let targets: Vec<_> = c
        .targets
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "state": t.state,
                "label": state_label(t.state).get(lang),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "id": c.id,
        "done": c.is_complete(),
        "status": if c.is_complete() { T::Done.get(lang) } else { T::InProgress.get(lang) },
        "targets": targets,
    }))
    .into_response())
}
