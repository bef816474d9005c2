//! Logging in and out, and the language switch: a person's choice is kept
//! with their user (the users file), so it follows them to another
//! browser; before login the browser's choice is a cookie.

use super::i18n::T;
use super::layout::page;
use super::users::{verify_password, Users, UsersError};
use super::{
    client_address, language, secure, session_cookie, ConsoleError, ConsoleState, Person,
    LANG_COOKIE, SESSION_COOKIE,
};
use crate::console::Language;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

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
            // The login form after a logout speaks the person's language.
            if let Some(lang) = u.language {
                res.headers_mut()
                    .append(header::SET_COOKIE, language_cookie(lang));
            }
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

fn parse_language(code: &str) -> Result<Language, ConsoleError> {
    Language::parse(code)
        .ok_or_else(|| ConsoleError::BadRequest(format!("language `{code}`: zh or en")))
}

/// Where a language switch goes back to: the page asked for, else the page
/// the browser came from, when it is one of ours (never elsewhere: no open
/// redirect).
fn back_to(headers: &HeaderMap, asked: Option<String>) -> String {
    asked
        .or_else(|| {
            let referer = headers.get(header::REFERER)?.to_str().ok()?;
            let host = headers.get(header::HOST)?.to_str().ok()?;
            let path = referer.split_once("://")?.1.strip_prefix(host)?;
            Some(path.to_string())
        })
        .filter(|b| b.starts_with("/console/") && !b.starts_with("/console/lang"))
        .unwrap_or_else(|| "/console/".into())
}

fn language_cookie(lang: Language) -> HeaderValue {
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    HeaderValue::from_str(&cookie).expect("ASCII")
}

fn switched(back: &str, lang: Language) -> Response {
    let mut res = Redirect::to(back).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, language_cookie(lang));
    res
}

/// `GET /console/lang?to=`: the browser's language (a cookie), for the
/// login form; a person's choice is the POST below.
pub(super) async fn language_switch(
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ConsoleError> {
    let lang = parse_language(&q.to)?;
    Ok(switched(&back_to(&headers, q.back), lang))
}

#[derive(Deserialize)]
pub(super) struct ChooseForm {
    #[serde(default)]
    csrf: String,
    to: String,
    back: Option<String>,
}

/// `POST /console/lang`: a person chooses their language; kept with their
/// user in the users file (written before it counts: a failed write
/// changes nothing), and in the browser's cookie for the login form.
pub(super) async fn choose_language(
    State(s): State<ConsoleState>,
    headers: HeaderMap,
    who: Person,
    Form(form): Form<ChooseForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&form.csrf)?;
    let lang = parse_language(&form.to)?;
    let name = who.principal.name.clone();
    Users::edit(&s.console.settings.users_file, |all| {
        let user = all
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UsersError::Invalid(format!("no user `{name}`")))?;
        user.language = Some(lang);
        Ok(())
    })
    .await
    .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    tracing::info!(user = %name, language = lang.code(), "console language chosen");
    Ok(switched(&back_to(&headers, form.back), lang))
}
