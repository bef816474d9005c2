//! A command's progress on the lamp and cabinet pages: each target queued →
//! written → confirmed or failed with its reason, as the command's cell in
//! control/ has it, pushed to the page as server-sent events at each change
//! (`CommandCell::progressed`: the stream sleeps until a target moves — no
//! polling, and nothing walks the lamps).

use super::i18n::T;
use super::{ConsoleError, ConsoleState, Language, Person};
use crate::auth::Principal;
use crate::control::{Command, CommandCell, FailCause, Tally, TargetState};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use maud::{html, Markup};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// How often a stream waiting for a change looks whether its session is
/// still live (a command whose device is slow to answer may wait a while).
const SESSION_CHECK: Duration = Duration::from_secs(5);

/// A command the caller may follow: one whose every target it may see.
fn visible_cell(s: &ConsoleState, p: &Principal, id: &str) -> Option<Arc<CommandCell>> {
    let cell = s.app.control.get(id)?;
    let visible = cell.snapshot().targets.iter().all(|t| p.sees(&t.district));
    visible.then_some(cell)
}

/// The command now, if the caller may follow it.
pub(super) fn visible_command(s: &ConsoleState, p: &Principal, id: &str) -> Option<Command> {
    visible_cell(s, p, id).map(|c| c.snapshot())
}

fn state_label(s: TargetState) -> T {
    match s {
        TargetState::Queued => T::Queued,
        TargetState::Written => T::Written,
        TargetState::Confirmed => T::Confirmed,
        TargetState::Failed => T::Failed,
    }
}

/// Why a target failed, for a person.
fn reason_text(lang: Language, why: &FailCause) -> String {
    let label = |t: T| t.get(lang).to_string();
    match why {
        FailCause::Offline => label(T::FailOffline),
        FailCause::Timeout => label(T::FailTimeout),
        FailCause::Exception { code } => format!("{} 0x{code:02x}", T::FailException.get(lang)),
        FailCause::Transport { detail } => format!("{}: {detail}", T::FailTransport.get(lang)),
        FailCause::Mismatch { field, wrote, read } => {
            format!("{}: {field} {wrote} → {read}", T::FailMismatch.get(lang))
        }
        FailCause::ShuttingDown => label(T::FailShuttingDown),
        FailCause::NotHeld => label(T::FailNotHeld),
    }
}

fn status(lang: Language, c: &Command) -> &'static str {
    if c.is_complete() {
        T::Done.get(lang)
    } else {
        T::InProgress.get(lang)
    }
}

/// A command's progress. While it is in progress the script follows it
/// (`data-follow`, the event stream), writing each step a target takes;
/// `reload`: the page is loaded again once it is done (a page whose values
/// are not live, to show what the devices read back).
pub(super) fn progress(lang: Language, c: &Command, reload: bool) -> Markup {
    let done = c.is_complete();
    html! {
        section.command #command data-follow=[(!done).then(|| format!("/console/commands/{}/events", c.id))]
            data-done=(done) data-reload=[reload.then_some("true")] {
            h2 { (T::Command.get(lang)) " " code { (c.id) } }
            p { span.status { (status(lang, c)) } }
            ul {
                @for t in &c.targets {
                    li data-target=(t.id) data-state=(state_code(t.state)) {
                        (t.id) ": " span.steps { span.state data-state=(state_code(t.state)) { (state_label(t.state).get(lang)) } }
                        span.reason { @if let Some(why) = &t.reason { " — " (reason_text(lang, why)) } }
                    }
                }
            }
        }
    }
}

fn state_code(s: TargetState) -> &'static str {
    match s {
        TargetState::Queued => "queued",
        TargetState::Written => "written",
        TargetState::Confirmed => "confirmed",
        TargetState::Failed => "failed",
    }
}

/// One `progress` event: the command as the page shows it.
fn progress_json(lang: Language, c: &Command) -> String {
    let targets: Vec<_> = c
        .targets
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "state": state_code(t.state),
                "label": state_label(t.state).get(lang),
                "reason": t.reason.as_ref().map(|why| reason_text(lang, why)),
            })
        })
        .collect();
    serde_json::json!({
        "id": c.id,
        "done": c.is_complete(),
        "status": status(lang, c),
        "targets": targets,
    })
    .to_string()
}

/// `/console/commands/{id}/events`: the command as it is, then again at
/// each change of a target's state, the stream ending after the event that
/// says it is done (or with the session, or when the gateway stops).
pub(super) async fn events(
    State(s): State<ConsoleState>,
    who: Person,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let cell = visible_cell(&s, &who.principal, &id)
        .ok_or_else(|| ConsoleError::NotFound(format!("no command `{id}`")))?;
    let (console, session, lang) = (s.console.clone(), who.session_id.clone(), who.lang);
    // The state: what the page was last sent (`None` before the first
    // event), or the end.
    let events = stream::unfold(Some(None::<Tally>), move |last| {
        let (cell, console, session) = (cell.clone(), console.clone(), session.clone());
        async move {
            let seen = last?;
            let c = loop {
                let Some(seen) = seen else {
                    break cell.snapshot();
                };
                tokio::select! {
                    c = cell.progressed(seen) => break c,
                    () = console.stopping.cancelled() => return None,
                    () = tokio::time::sleep(SESSION_CHECK) => {
                        if !console.sessions.is_live(&session) {
                            return None;
                        }
                    }
                }
            };
            if !console.sessions.is_live(&session) {
                return None;
            }
            let event = Event::default()
                .event("progress")
                .data(progress_json(lang, &c));
            let next = (!c.is_complete()).then(|| Some(c.tally()));
            Some((Ok::<_, Infallible>(event), next))
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
