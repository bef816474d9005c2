//! The page shell every console page shares (navigation, language switch,
//! logout), the error page in both languages, and the small formatters the
//! pages use.

use super::i18n::T;
use super::Person;
use crate::auth::Principal;
use crate::console::Language;
use axum::http::StatusCode;
use axum::response::Html;
use maud::{html, Markup, DOCTYPE};

/// A whole page: the navigation when someone is logged in.
pub(super) fn page(lang: Language, title: T, who: Option<&Person>, body: Markup) -> Html<String> {
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
                                a href="/console/map" { (T::Map.get(lang)) }
                                a href="/console/cabinets" { (T::Cabinets.get(lang)) }
                                a href="/console/lamps" { (T::Lamps.get(lang)) }
                                a href="/console/alarms" { (T::Alarms.get(lang)) }
                                a href="/console/schedules" { (T::Schedules.get(lang)) }
                                a href="/console/reports" { (T::Reports.get(lang)) }
                                @if is_user_admin(who) { a href="/console/admin/users" { (T::Users.get(lang)) } }
                            }
                        }
                        span.spacer {}
                        // A person's choice is kept with their user (a POST);
                        // before login, the browser's (a link).
                        @match who {
                            Some(p) => {
                                form.inline method="post" action="/console/lang" {
                                    input type="hidden" name="csrf" value=(p.session.csrf);
                                    input type="hidden" name="to" value=(other);
                                    button.link #lang type="submit" { (T::Language.get(lang)) }
                                }
                            }
                            None => { a #lang href={ "/console/lang?to=" (other) } { (T::Language.get(lang)) } }
                        }
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

pub(super) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{:.1}%", v * 100.0))
}

/// The exact value as the API's JSON has it, for tests and scripts.
pub(super) fn raw(v: Option<f64>) -> String {
    serde_json::to_string(&v).expect("a number serialises")
}

/// Percent-encodes a query value.
pub(super) fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn online_text(lang: Language, online: Option<bool>) -> &'static str {
    match online {
        None => T::NoSlc.get(lang),
        Some(true) => T::Online.get(lang),
        Some(false) => T::Offline.get(lang),
    }
}

pub(super) fn num(v: Option<f64>, places: usize) -> String {
    v.map_or_else(|| "—".into(), |v| format!("{v:.places$}"))
}

/// Whether the navigation shows the users page: city-wide admins only.
fn is_user_admin(who: Option<&Person>) -> bool {
    who.is_some_and(|p| {
        p.principal.role == crate::auth::Role::Admin && p.principal.district.is_none()
    })
}

/// A list page's query: the filters that are set, `key=value&` each, for
/// its links (the pager's, an export's).
pub(super) fn filter_params(pairs: &[(&str, &String)]) -> String {
    pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}&", encode(v)))
        .collect()
}

/// Previous / n of N / next under a paged list; `link` makes a page's URL.
pub(super) fn pager(
    lang: Language,
    page: usize,
    pages: usize,
    link: impl Fn(usize) -> String,
) -> Markup {
    html! {
        nav.pager {
            @if page > 0 { a #prev href=(link(page - 1)) { (T::Previous.get(lang)) } }
            span { (page + 1) " / " (pages) }
            @if page + 1 < pages { a #next href=(link(page + 1)) { (T::Next.get(lang)) } }
        }
    }
}

/// The `<option>`s of a district select: each district the person sees,
/// `selected` marked.
pub(super) fn district_options(
    districts: &[&crate::inventory::District],
    selected: &str,
) -> Markup {
    html! {
        @for d in districts {
            option value=(d.id) selected[d.id == selected] { (d.name) " · " (d.id) }
        }
    }
}

/// A yes/no filter from a form: empty is no filter.
pub(super) fn flag(name: &str, v: &str) -> Result<Option<bool>, super::ConsoleError> {
    match v {
        "" => Ok(None),
        "true" => Ok(Some(true)),
        "false" => Ok(Some(false)),
        o => Err(super::ConsoleError::BadRequest(format!(
            "{name} `{o}`: true or false"
        ))),
    }
}
