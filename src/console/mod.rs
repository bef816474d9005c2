//! The operator console: server-rendered HTML pages for people, served by
//! the gateway beside the API (`/` and `/console/…`; startup merges
//! `router` with `api::router`).
//!
//! People log in with a user name and password (users.rs) and get a
//! session (session.rs); a session is a [`Principal`] with the user's role
//! and district, so every page and action goes through the same scope rule
//! (`auth::scope`) and the same control path as the API: another district's
//! lamp does not exist (404), a viewer's command is refused (403) and each
//! command is audited with the user's name as its actor.
//!
//! Security: the session cookie is `HttpOnly; SameSite=Strict` (and
//! `Secure` over TLS or when configured); every POST carries the session's
//! CSRF token and, when the browser says it, an `Origin` of this host; the
//! pages' Content-Security-Policy admits only our own script and style
//! files (no inline script), which are embedded in the binary.

mod admin;
mod alarms;
mod cabinets;
mod chart;
mod commands;
pub mod config;
mod history;
mod i18n;
mod lamps;
mod layout;
mod live;
mod login;
mod map;
mod overview;
mod reports;
mod schedules;
pub mod session;
pub mod users;

pub use config::{ConsoleSettings, Language};

use crate::api::AppState;
use crate::auth::Principal;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use config::SecureCookies;
use i18n::T;
use session::{Limiter, Session, Sessions};
use std::net::SocketAddr;
use std::sync::Arc;
use users::UserBook;

/// What outlives a reload of the API's state: the sessions, the login
/// limits and the users file's reader.
#[derive(Debug)]
pub struct Console {
    settings: ConsoleSettings,
    users: UserBook,
    sessions: Sessions,
    limiter: Limiter,
    /// Cancelled when the gateway stops: live streams end, so the HTTP
    /// server's graceful shutdown is not held open by a browser.
    stopping: tokio_util::sync::CancellationToken,
}

impl Console {
    /// `stopping`: the gateway's stop (live streams end with it).
    pub fn new(
        settings: ConsoleSettings,
        stopping: tokio_util::sync::CancellationToken,
    ) -> Arc<Console> {
        Arc::new(Console {
            stopping,
            users: UserBook::new(settings.users_file.clone()),
            sessions: Sessions::new(settings.session_idle, settings.session_absolute),
            limiter: Limiter::default(),
            settings,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ConsoleState {
    app: AppState,
    console: Arc<Console>,
    /// The live updates of this router's pages (live.rs).
    hub: Arc<live::Hub>,
    /// The overview's trends lately drawn.
    trends: Arc<overview::Trends>,
    /// The overview's next switch points lately counted.
    switch_points: Arc<overview::SwitchPoints>,
}

/// The console's pages and assets over the API's state of the moment.
pub fn router(app: AppState, console: Arc<Console>) -> Router {
    let state = ConsoleState {
        app,
        console,
        hub: Arc::default(),
        trends: Arc::default(),
        switch_points: Arc::default(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(overview::overview))
        .route("/console/login", get(login::login_form).post(login::login))
        .route("/console/logout", post(login::logout))
        .route(
            "/console/lang",
            get(login::language_switch).post(login::choose_language),
        )
        .route("/console/lamps", get(lamps::lamps))
        .route("/console/lamps/{id}", get(lamps::lamp))
        .route("/console/lamps/{id}/command", post(lamps::lamp_command))
        .route("/console/commands/{id}/events", get(commands::events))
        .route("/console/events", get(overview::events))
        .route("/console/trend.svg", get(overview::trend))
        .route("/console/lamps/{id}/events", get(lamps::events))
        .route("/console/lamps/{id}/history.svg", get(lamps::history))
        .route("/console/cabinets", get(cabinets::cabinets))
        .route("/console/cabinets/{id}", get(cabinets::cabinet))
        .route("/console/cabinets/{id}/history.svg", get(cabinets::history))
        .route(
            "/console/cabinets/{id}/circuits/{n}/command",
            post(cabinets::circuit_command),
        )
        .route("/console/map", get(map::map))
        .route("/console/admin/users", get(admin::users).post(admin::add))
        .route("/console/admin/users/remove", post(admin::remove))
        .route("/console/alarms", get(alarms::list))
        .route("/console/alarms/{id}/ack", post(alarms::acknowledge))
        .route("/console/schedules", get(schedules::schedules))
        .route("/console/schedules/shifts", post(schedules::shift))
        .route("/console/reports", get(reports::reports))
        .route("/console/reports/monthly", get(reports::monthly))
        .route("/console/audit", get(reports::audit))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// The console's one error type: an HTML page in both languages (the
/// language of a failed request may be what failed), with its status.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: GETs go to the login form.
    #[error("no session")]
    NoSession,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The store or a part the page needs cannot answer now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, label) = match &self {
            ConsoleError::NoSession => return Redirect::to("/console/login").into_response(),
            ConsoleError::NotFound(_) => (StatusCode::NOT_FOUND, T::NotFound),
            ConsoleError::Forbidden(_) => (StatusCode::FORBIDDEN, T::Forbidden),
            ConsoleError::BadRequest(_) => (StatusCode::BAD_REQUEST, T::BadRequest),
            ConsoleError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, T::Unavailable),
            ConsoleError::Internal(m) => {
                tracing::warn!(error = %m, "console request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, T::Internal)
            }
        };
        let detail = match &self {
            ConsoleError::Internal(_) | ConsoleError::NoSession => String::new(),
            ConsoleError::NotFound(m)
            | ConsoleError::Forbidden(m)
            | ConsoleError::BadRequest(m)
            | ConsoleError::Unavailable(m) => m.clone(),
        };
        (status, layout::error_page(status, label, &detail)).into_response()
    }
}

/// The API's shared paths (`api::alarm_page`, …) answer in its terms; a
/// page shows the same refusal.
impl From<crate::api::ApiError> for ConsoleError {
    fn from(e: crate::api::ApiError) -> Self {
        use crate::api::ApiError as A;
        match e {
            A::NotFound(m) => ConsoleError::NotFound(m),
            A::Forbidden(m) | A::Unauthorized(m) => ConsoleError::Forbidden(m),
            A::BadRequest(m)
            | A::Conflict(m)
            | A::Unprocessable(m)
            | A::PayloadTooLarge(m)
            | A::UnsupportedMediaType(m) => ConsoleError::BadRequest(m),
            A::NotReady(m) | A::Overloaded(m) => ConsoleError::Unavailable(m),
            A::Internal(m) => ConsoleError::Internal(m),
        }
    }
}

impl From<crate::control::ControlError> for ConsoleError {
    fn from(e: crate::control::ControlError) -> Self {
        use crate::control::ControlError as C;
        match e {
            C::NotFound(m) => ConsoleError::NotFound(m),
            C::Forbidden(m) => ConsoleError::Forbidden(m),
            C::Invalid(m) => ConsoleError::BadRequest(m),
            // Group definitions only; the console does not make those.
            C::Conflict(m) => ConsoleError::BadRequest(m),
            C::Storage(m) => ConsoleError::Internal(m),
        }
    }
}

/// The caller of a page: a live session's user, as a [`Principal`].
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub principal: Principal,
    pub session: Session,
    /// The session cookie's value (live streams check it at every tick).
    pub session_id: String,
    pub lang: Language,
}

const SESSION_COOKIE: &str = "lgw_session";
const LANG_COOKIE: &str = "lgw_lang";

/// A cookie's value in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The language of a page without a person (the login form): the one the
/// browser chose, else the configured one.
fn language(console: &Console, headers: &HeaderMap) -> Language {
    cookie(headers, LANG_COOKIE)
        .and_then(Language::parse)
        .unwrap_or(console.settings.language)
}

/// A person's language: the one they chose (kept with the user, so it
/// follows them to any browser), else as for a page without a person.
fn person_language(console: &Console, user: &users::User, headers: &HeaderMap) -> Language {
    user.language.unwrap_or_else(|| language(console, headers))
}

impl FromRequestParts<ConsoleState> for Person {
    type Rejection = ConsoleError;
    async fn from_request_parts(parts: &mut Parts, s: &ConsoleState) -> Result<Self, ConsoleError> {
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(ConsoleError::NoSession)?;
        let session = s
            .console
            .sessions
            .touch(id)
            .ok_or(ConsoleError::NoSession)?;
        // The user as the users file has it now: a removed user's session
        // ends here, a changed role or district applies at once.
        let Some(user) = s.console.users.current().get(&session.user).cloned() else {
            s.console.sessions.end(id);
            return Err(ConsoleError::NoSession);
        };
        Ok(Person {
            principal: user.principal(),
            session,
            session_id: id.to_string(),
            lang: person_language(&s.console, &user, &parts.headers),
        })
    }
}

impl Person {
    /// Refuses a POST without this session's CSRF token.
    pub(crate) fn check_csrf(&self, token: &str) -> Result<(), ConsoleError> {
        // Constant time: the comparison must not tell how much matched.
        let (a, b) = (self.session.csrf.as_bytes(), token.as_bytes());
        let same =
            a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
        if same {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "CSRF token missing or wrong".into(),
            ))
        }
    }
}

/// The client's address for the login limits: the socket's peer. A
/// forwarded-for header is not believed, since anyone can send one.
fn client_address(parts_ext: &axum::http::Extensions) -> String {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether the session cookie gets `Secure`.
fn secure(console: &Console, headers: &HeaderMap) -> bool {
    match console.settings.secure_cookies {
        SecureCookies::True => true,
        SecureCookies::False => false,
        SecureCookies::Auto => headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https")),
    }
}

fn session_cookie(value: &str, max_age: Option<u64>, secure: bool) -> HeaderValue {
    let mut c = format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie is ASCII")
}

/// Every console answer: the security headers; and a cross-site POST
/// (an `Origin` that is not this host) refused before any handler.
async fn guard(State(_): State<ConsoleState>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST && !same_origin(req.headers()) {
        return ConsoleError::Forbidden("cross-origin request".into()).into_response();
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show live state and a CSRF token: never from a cache.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// An `Origin` header, when present, names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let authority = origin.split_once("://").map(|(_, a)| a);
    authority.is_some() && authority == host
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

async fn css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
}
