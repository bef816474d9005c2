//! Users (用户管理), for city-wide admins: the people who may log in, with
//! their role and district; add or replace one (its password hashed with
//! argon2id as `lamp-gateway user add` does), remove one. The users file is
//! the one the CLI writes (`console.users_file`); the book reads it again
//! on change, so an added user logs in at once and a removed one's sessions
//! end at their next page.

use super::i18n::T;
use super::layout::{district_options, page};
use super::users::{check_name, hash_password, User, Users};
use super::{ConsoleError, ConsoleState, Person};
use crate::auth::Role;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

/// Only a city-wide admin manages people.
fn admin(who: &Person) -> Result<(), ConsoleError> {
    if who.principal.role == Role::Admin && who.principal.district.is_none() {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(
            "users are managed by a city-wide admin".into(),
        ))
    }
}

#[derive(Deserialize, Default)]
pub(super) struct UsersQuery {
    #[serde(default)]
    saved: String,
}

pub(super) async fn users(
    State(s): State<ConsoleState>,
    who: Person,
    Query(q): Query<UsersQuery>,
) -> Result<Html<String>, ConsoleError> {
    admin(&who)?;
    let lang = who.lang;
    let all = s.console.users.current();
    let inv = &s.app.live.inventory;
    let role_name = |r: Role| format!("{r:?}").to_lowercase();
    Ok(page(
        lang,
        T::Users,
        Some(&who),
        html! {
            h1 { (T::Users.get(lang)) }
            @if !q.saved.is_empty() { p.notice #saved { (T::Saved.get(lang)) ": " code { (q.saved) } } }
            div.scroll {
                table #users {
                    thead { tr { th { (T::User.get(lang)) } th { (T::Role.get(lang)) } th { (T::District.get(lang)) } th {} } }
                    tbody {
                        @for u in &all.users {
                            tr data-user=(u.name) {
                                td { (u.name) } td { (role_name(u.role)) }
                                td { (u.district.as_deref().unwrap_or("—")) }
                                td {
                                    @if u.name != who.principal.name {
                                        form.inline method="post" action="/console/admin/users/remove" {
                                            input type="hidden" name="csrf" value=(who.session.csrf);
                                            input type="hidden" name="name" value=(u.name);
                                            button type="submit" { (T::Remove.get(lang)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.scope {
                h2 { (T::AddUser.get(lang)) }
                form.filters #add-user method="post" action="/console/admin/users" {
                    input type="hidden" name="csrf" value=(who.session.csrf);
                    label { (T::User.get(lang)) input name="name" required maxlength="64"; }
                    label { (T::Role.get(lang))
                        select name="role" {
                            option value="viewer" { "viewer" }
                            option value="operator" { "operator" }
                            option value="admin" { "admin" }
                        }
                    }
                    label { (T::District.get(lang))
                        select name="district" {
                            option value="" { (T::City.get(lang)) }
                            (district_options(&inv.districts.iter().collect::<Vec<_>>(), ""))
                        }
                    }
                    label { (T::Password.get(lang)) input type="password" name="password" required minlength="8" autocomplete="new-password"; }
                    button #add type="submit" { (T::Save.get(lang)) }
                }
            }
        },
    ))
}

#[derive(Deserialize)]
pub(super) struct AddForm {
    #[serde(default)]
    csrf: String,
    name: String,
    role: String,
    #[serde(default)]
    district: String,
    password: String,
}

fn users_error(e: super::users::UsersError) -> ConsoleError {
    ConsoleError::BadRequest(e.to_string())
}

pub(super) async fn add(
    State(s): State<ConsoleState>,
    who: Person,
    Form(f): Form<AddForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&f.csrf)?;
    admin(&who)?;
    let name = f.name.trim().to_string();
    check_name(&name).map_err(users_error)?;
    let role = match f.role.as_str() {
        "viewer" => Role::Viewer,
        "operator" => Role::Operator,
        "admin" => Role::Admin,
        r => {
            return Err(ConsoleError::BadRequest(format!(
                "role `{r}`: viewer, operator or admin"
            )))
        }
    };
    let district = (!f.district.is_empty()).then(|| f.district.clone());
    if let Some(d) = &district {
        if s.app.live.inventory.district(d).is_none() {
            return Err(ConsoleError::BadRequest(format!("unknown district `{d}`")));
        }
    }
    let password = f.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ConsoleError::Internal(e.to_string()))?
        .map_err(users_error)?;
    let user = User {
        name: name.clone(),
        role,
        district: district.clone(),
        password_hash: hash,
        language: None,
    };
    let replaced = Users::edit(&s.console.settings.users_file, |all| {
        let replaced = all.get(&name).is_some();
        all.upsert(user);
        Ok(replaced)
    })
    .await
    .map_err(|e| ConsoleError::Internal(e.to_string()))?;
    tracing::info!(admin = %who.principal.name, user = %name, role = ?role, district = ?district, replaced, "console user saved");
    Ok(Redirect::to(&format!(
        "/console/admin/users?saved={}",
        super::layout::encode(&name)
    ))
    .into_response())
}

#[derive(Deserialize)]
pub(super) struct RemoveForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

pub(super) async fn remove(
    State(s): State<ConsoleState>,
    who: Person,
    Form(f): Form<RemoveForm>,
) -> Result<Response, ConsoleError> {
    who.check_csrf(&f.csrf)?;
    admin(&who)?;
    if f.name == who.principal.name {
        return Err(ConsoleError::BadRequest(
            "an admin does not remove themself here (another admin, or `lamp-gateway user remove`)"
                .into(),
        ));
    }
    let removed = Users::edit(&s.console.settings.users_file, |all| {
        if all.remove(&f.name) {
            Ok(())
        } else {
            Err(super::users::UsersError::Invalid(format!(
                "no user `{}`",
                f.name
            )))
        }
    })
    .await;
    match removed {
        Ok(()) => {}
        Err(super::users::UsersError::Invalid(m)) => return Err(ConsoleError::NotFound(m)),
        Err(e) => return Err(ConsoleError::Internal(e.to_string())),
    }
    tracing::info!(admin = %who.principal.name, user = %f.name, "console user removed");
    Ok(Redirect::to("/console/admin/users").into_response())
}
