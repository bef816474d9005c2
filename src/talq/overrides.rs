//! TALQ override commands (`POST /override-commands`, and `PATCH` of a
//! lamp actuator's `targetLightCommand`) on our control path.
//!
//! THE rules:
//! - An override is a control command (`control::Control::submit`) on the
//!   lamps it addresses, source `talq`, the CMS's token name as actor, its
//!   `talqRequestId` as idempotency key (a CMS's retry is the same command):
//!   validated, written, read back and audited as every command is, and
//!   refused for another district's lamps as for the API.
//! - Last wins: a new override on a lamp replaces the previous one (the
//!   control's last-command-wins); one whose `start` is still ahead is
//!   dropped for the lamps a later override has reached by then.
//! - `start` ahead: carried out at `start`; `expiration`: the control's
//!   expiry, so the lamp then goes back to what its calendar says (the
//!   schedule holds a governed lamp until then), else to what it did
//!   before the override.
//! - An override without `targetCommand` ends the overrides on the lamps
//!   it addresses: a lamp a calendar governs goes back to its program at
//!   once (the schedule's hold on it ends); any other goes to its
//!   `defaultLightState`, 100 %, as TALQ says.
//! - Only `LevelState` commands, 0–100 %, on lamps (devices with a lamp
//!   actuator, the device or its `lampActuator` function or its
//!   `targetLightCommand`, or a group's lamps with an SLC). Anything else
//!   is refused whole, before any lamp is touched.

use super::address::{Dev, Index};
use super::values::{level_state, time};
use super::TalqError;
use crate::auth::Principal;
use crate::control::{Action, Control, Selector, Source, Submission};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// The latest TALQ override of one lamp: its `targetLightCommand`.
#[derive(Debug, Clone)]
pub(super) struct Override {
    pub(super) seq: u64,
    pub(super) level: u8,
    /// The `Command` as the lamp's `targetLightCommand` shows it.
    pub(super) command: Value,
    pub(super) given: DateTime<Utc>,
    pub(super) expiration: Option<DateTime<Utc>>,
}

/// The overrides in force or waiting for their start, by lamp id (ids,
/// not positions: they outlive a reload).
#[derive(Debug, Default)]
pub(super) struct Overrides {
    seq: AtomicU64,
    latest: Mutex<HashMap<String, Override>>,
}

impl Overrides {
    pub(super) fn snapshot(&self) -> HashMap<String, Override> {
        let now = Utc::now();
        let mut latest = self.latest.lock();
        // Expired ones are history: the lamp's target is what follows.
        latest.retain(|_, o| o.expiration.is_none_or(|e| e > now));
        latest.clone()
    }
}

/// `OverrideCommand` as a CMS sends it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OverrideBody {
    #[serde(default)]
    pub(super) addresses: Vec<Reference>,
    pub(super) target_command: Option<CommandBody>,
}

/// `ResourceReference`.
#[derive(Debug, Deserialize)]
pub(super) struct Reference {
    pub(super) resource: String,
    pub(super) address: String,
}

/// `Command`: what this gateway reads of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CommandBody {
    pub(super) state: StateBody,
    pub(super) reason: Option<String>,
    pub(super) cms_ref_id: Option<String>,
    pub(super) ref_address: Option<String>,
    pub(super) start: Option<DateTime<Utc>>,
    pub(super) expiration: Option<DateTime<Utc>>,
}

/// `State`.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct StateBody {
    pub(super) name: String,
    pub(super) value: Option<Value>,
}

/// Parses one JSON document of type `T`, naming the field at fault.
pub(super) fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, TalqError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let body = serde_path_to_error::deserialize(&mut *de)
        .map_err(|e| TalqError::Payload(format!("{}: {}", e.path(), e.inner())))?;
    de.end()
        .map_err(|e| TalqError::Payload(format!("data after the body: {e}")))?;
    Ok(body)
}

/// The lamps (position, id) an override's addresses name, as `principal`
/// sees them.
pub(super) fn lamps_of(
    index: &Index,
    principal: &Principal,
    groups: &[super::groups::Seen],
    references: &[Reference],
) -> Result<Vec<(usize, String)>, TalqError> {
    if references.is_empty() {
        return Err(TalqError::OverrideAddressNotValid(
            "addresses: no device named (external sensor activations are not supported)".into(),
        ));
    }
    let mut lamps = Vec::new();
    for (i, r) in references.iter().enumerate() {
        let resource = r.resource.trim_matches('/');
        let address = r.address.strip_prefix("/devices/").unwrap_or(&r.address);
        if resource == "groups" {
            let address = r.address.strip_prefix("/groups/").unwrap_or(&r.address);
            let g = Uuid::parse_str(address)
                .ok()
                .and_then(|a| groups.iter().find(|g| g.address == a))
                .ok_or_else(|| {
                    TalqError::OverrideAddressNotValid(format!(
                        "addresses[{i}]: no group `{}` here",
                        r.address
                    ))
                })?;
            for (l, id) in &g.lamps {
                if !lamps.iter().any(|(p, _)| p == l) {
                    lamps.push((*l, id.clone()));
                }
            }
            continue;
        }
        if resource != "devices" {
            return Err(TalqError::OverrideAddressNotValid(format!(
                "addresses[{i}]: resource `{}` is not served (`devices` and `groups`)",
                r.resource
            )));
        }
        let mut parts = address.split('/');
        let uuid = parts.next().unwrap_or_default();
        let function = parts.next();
        let attribute = parts.next();
        let unknown = || {
            TalqError::OverrideAddressNotValid(format!(
                "addresses[{i}]: no device `{}` here",
                r.address
            ))
        };
        let dev = Uuid::parse_str(uuid)
            .ok()
            .and_then(|a| index.get(&a))
            .filter(|&d| index.district(d).is_none_or(|d| principal.sees(d)))
            .ok_or_else(unknown)?;
        let Dev::Lamp(l) = dev else {
            return Err(TalqError::OverrideAddressNotValid(format!(
                "addresses[{i}]: `{}` has no lamp actuator",
                r.address
            )));
        };
        if function.is_some_and(|f| f != super::classes::LAMP_ACTUATOR.id)
            || attribute.is_some_and(|a| a != "targetLightCommand")
            || parts.next().is_some()
        {
            return Err(TalqError::OverrideAddressNotValid(format!(
                "addresses[{i}]: `{}` is not the lamp actuator or its targetLightCommand",
                r.address
            )));
        }
        let id = index.inventory.lamps[l].id.clone();
        if !lamps.iter().any(|(p, _)| *p == l) {
            lamps.push((l, id));
        }
    }
    if lamps.is_empty() {
        return Err(TalqError::OverrideAddressNotValid(
            "addresses: the groups named have no lamp with an SLC".into(),
        ));
    }
    Ok(lamps)
}

/// The level of a `LevelState` command.
fn level_of(c: &CommandBody) -> Result<u8, TalqError> {
    level_value(&c.state)
        .map_err(|e| TalqError::OverrideNotValid(format!("targetCommand.state.{e}")))
}

/// THE rule of what a lamp actuator takes, for overrides and programs
/// alike: a `LevelState` of a whole percent 0 to 100. The error names the
/// field of the state.
pub(super) fn level_value(state: &StateBody) -> Result<u8, String> {
    if state.name != "LevelState" {
        return Err(format!(
            "name: `{}` is not accepted by a lamp actuator (LevelState only)",
            state.name
        ));
    }
    state
        .value
        .as_ref()
        .and_then(Value::as_u64)
        .filter(|&v| v <= 100)
        .map(|v| v as u8)
        .ok_or_else(|| "value: a whole percent 0 to 100 is required".into())
}

/// What a command must be for a lamp actuator (module doc); its level.
pub(super) fn validate(c: &CommandBody) -> Result<u8, TalqError> {
    let level = level_of(c)?;
    if let Some(e) = c.expiration {
        if e <= Utc::now() || c.start.is_some_and(|s| s >= e) {
            return Err(TalqError::OverrideNotValid(
                "targetCommand.expiration: must be in the future and after start".into(),
            ));
        }
    }
    Ok(level)
}

fn action_for(level: u8) -> Action {
    if level == 0 {
        Action::Off
    } else {
        Action::Dim {
            level: f64::from(level),
        }
    }
}

/// Who gives an override and what comes with it.
#[derive(Debug)]
pub(super) struct Caller<'a> {
    pub(super) principal: &'a Principal,
    pub(super) request_id: &'a str,
}

/// Carries out an override on `lamps` (module doc).
pub(super) fn apply(
    overrides: &Arc<Overrides>,
    control: &Arc<Control>,
    schedule: Option<&Arc<crate::schedule::Schedule>>,
    caller: Caller<'_>,
    lamps: Vec<(usize, String)>,
    target: Option<CommandBody>,
) -> Result<(), TalqError> {
    if !caller.principal.can_control() {
        return Err(TalqError::Forbidden(format!(
            "token `{}` may read but not command (role viewer)",
            caller.principal.name
        )));
    }
    let now = Utc::now();
    let Some(c) = target else {
        return end(overrides, control, schedule, caller, lamps);
    };
    let level = validate(&c)?;
    let mut command = serde_json::json!({
        "state": level_state(level),
        "reason": c.reason.clone().unwrap_or_else(|| "override".into()),
    });
    for (key, v) in [
        ("cmsRefId", c.cms_ref_id.clone()),
        ("refAddress", c.ref_address.clone()),
        ("start", c.start.map(time)),
        ("expiration", c.expiration.map(time)),
    ] {
        if let Some(v) = v {
            command[key] = v.into();
        }
    }
    let seq = overrides.seq.fetch_add(1, Ordering::Relaxed);
    // The lamps' targetLightCommand from now on, before the command is
    // given (so a waiting override that starts meanwhile sees it is not
    // the last); what it replaces, to put back if the control refuses.
    let record = |ids: &[String]| -> Vec<(String, Option<Override>)> {
        let mut latest = overrides.latest.lock();
        ids.iter()
            .map(|id| {
                let o = Override {
                    seq,
                    level,
                    command: command.clone(),
                    given: now,
                    expiration: c.expiration,
                };
                (id.clone(), latest.insert(id.clone(), o))
            })
            .collect()
    };
    let restore = |before: Vec<(String, Option<Override>)>| {
        let mut latest = overrides.latest.lock();
        for (id, o) in before {
            match o {
                Some(o) => latest.insert(id, o),
                None => latest.remove(&id),
            };
        }
    };
    let note = match &c.cms_ref_id {
        Some(r) => format!("TALQ override {} (cmsRefId {r})", caller.request_id),
        None => format!("TALQ override {}", caller.request_id),
    };
    let submission = move |ids: Vec<String>, key: Option<String>, actor: String| Submission {
        actor,
        source: Source::Talq,
        selector: Selector::Lamps(ids),
        action: action_for(level),
        expires_at: c.expiration,
        idempotency_key: key,
        note: Some(note.clone()),
    };
    let ids: Vec<String> = lamps.into_iter().map(|(_, id)| id).collect();
    let principal = caller.principal.clone();
    match c.start.filter(|s| *s > now) {
        None => {
            let before = record(&ids);
            let sub = submission(
                ids,
                Some(caller.request_id.to_string()),
                principal.name.clone(),
            );
            let cell = control
                .submit(&principal, sub)
                .inspect_err(|_| restore(before))?;
            tracing::info!(command = %cell.id(), request = caller.request_id, level, "TALQ override given");
        }
        Some(start) => {
            let _ = record(&ids);
            let (overrides, control) = (overrides.clone(), control.clone());
            let request = caller.request_id.to_string();
            tracing::info!(request = %request, level, start = %start, "TALQ override waits for its start");
            tokio::spawn(async move {
                let wait = (start - Utc::now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
                // Last wins: only the lamps no later override has reached.
                let still: Vec<String> = {
                    let latest = overrides.latest.lock();
                    ids.into_iter()
                        .filter(|id| latest.get(id).is_some_and(|o| o.seq == seq))
                        .collect()
                };
                if still.is_empty() {
                    return;
                }
                let sub = submission(still, Some(request.clone()), principal.name.clone());
                match control.submit(&principal, sub) {
                    Ok(cell) => {
                        tracing::info!(command = %cell.id(), request = %request, level, "TALQ override started")
                    }
                    Err(e) => {
                        tracing::warn!(request = %request, error = %e, "TALQ override could not start")
                    }
                }
            });
        }
    }
    Ok(())
}

/// An override without a command: back to normal (module doc).
fn end(
    overrides: &Overrides,
    control: &Arc<Control>,
    schedule: Option<&Arc<crate::schedule::Schedule>>,
    caller: Caller<'_>,
    lamps: Vec<(usize, String)>,
) -> Result<(), TalqError> {
    {
        let mut latest = overrides.latest.lock();
        for (_, id) in &lamps {
            latest.remove(id);
        }
    }
    let plan = schedule.map(|s| s.plan());
    let (governed, free): (Vec<_>, Vec<_>) = lamps
        .into_iter()
        .partition(|(l, _)| plan.as_ref().is_some_and(|p| p.governs_lamp(*l)));
    if let Some(s) = schedule {
        let ids: Vec<String> = governed.into_iter().map(|(_, id)| id).collect();
        s.release(&ids);
    }
    if !free.is_empty() {
        let sub = Submission {
            actor: caller.principal.name.clone(),
            source: Source::Talq,
            selector: Selector::Lamps(free.into_iter().map(|(_, id)| id).collect()),
            action: action_for(100),
            expires_at: None,
            idempotency_key: Some(caller.request_id.to_string()),
            note: Some(format!(
                "TALQ override {} ended: defaultLightState",
                caller.request_id
            )),
        };
        control.submit(caller.principal, sub)?;
    }
    Ok(())
}
