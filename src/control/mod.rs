//! Remote control (远程控制): commands from the API, MQTT or schedules are
//! validated, resolved to device writes, queued to the endpoint's poller (which
//! writes ahead of its polls and reads the value back), and recorded.

mod cell;
mod command;
mod config;
pub mod groups;
mod overrides;
mod request;
mod resolve;
#[cfg(test)]
mod spec;

pub use cell::{CommandCell, CommandObserver, WriteJob};
pub use command::{Action, Command, FailCause, Source, Tally, Target, TargetState};
pub use config::{ControlSettings, GroupConfig};
pub use overrides::{OverridesError, Pending};
pub use request::{CommandBody, RequestError};
pub use resolve::Selector;

use crate::auth::Principal;
use crate::state::LiveState;
use crate::topology::{DeviceKey, Topology};
use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// Longest name or caller-chosen id, in characters.
pub const NAME_MAX_CHARS: usize = 64;

/// THE rule for names and ids callers choose (group names, idempotency keys,
/// request ids): 1 to [`NAME_MAX_CHARS`] characters, each a letter or digit
/// (any script: Unicode Alphabetic or Numeric) or one of space, `-`, `_`,
/// `.`, `:`; no space at either end. That leaves out by construction control
/// characters (NUL), bidi and zero-width controls, markup (`<`, `>`, `&`),
/// quotes, `/`, and MQTT's `+` and `#`, so a name is safe in a URL path, a
/// log line, a topic and an operator's HTML page, and reads as it prints.
pub fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > NAME_MAX_CHARS {
        return Err(format!("must be 1 to {NAME_MAX_CHARS} characters, got {n}"));
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ':')))
    {
        return Err(format!(
            "character {:?} (U+{:04X}) is not allowed: letters, digits, space, `-`, `_`, `.`, `:` only",
            bad, bad as u32
        ));
    }
    if name.starts_with(' ') || name.ends_with(' ') {
        return Err("must not begin or end with a space".into());
    }
    Ok(())
}

/// The groups set through the API: all of them but the settings' own.
fn api_groups(
    all: &BTreeMap<String, Vec<String>>,
    settings: &std::collections::BTreeSet<String>,
) -> BTreeMap<String, Vec<String>> {
    all.iter()
        .filter(|(name, _)| !settings.contains(*name))
        .map(|(n, l)| (n.clone(), l.clone()))
        .collect()
}

/// Drops from a group the lamps `inv` does not have, with a warning;
/// whether any went.
fn keep_known(name: &str, lamps: &mut Vec<String>, inv: &crate::inventory::Inventory) -> bool {
    let before = lamps.len();
    let mut gone = Vec::new();
    lamps.retain(|l| {
        let known = inv.lamp_position(l).is_some();
        if !known {
            gone.push(l.clone());
        }
        known
    });
    if gone.is_empty() {
        return false;
    }
    tracing::warn!(
        group = %name,
        gone = ?gone,
        kept = lamps.len(),
        was = before,
        "lamps no longer in the inventory left the group"
    );
    true
}

/// Commands kept in memory for `GET /commands/{id}`.
const KEPT_COMMANDS: usize = 10_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// Invalid input, naming the field.
    #[error("{0}")]
    Invalid(String),
    /// The request clashes with the configuration (a group the settings
    /// file defines).
    #[error("{0}")]
    Conflict(String),
    /// A change that could not be kept on disk, so it was not made.
    #[error("{0}")]
    Storage(String),
}

/// A request to act on a selection of lamps or a circuit.
#[derive(Debug)]
pub struct Submission {
    pub actor: String,
    pub source: Source,
    pub selector: Selector,
    pub action: Action,
    pub expires_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<String>,
    /// Why the command was issued, kept in the audit with its selector
    /// (the schedule names its program, rule and switch point).
    pub note: Option<String>,
}

/// Whether the schedule governs a lamp (by id).
pub trait Governs: Send + Sync + std::fmt::Debug {
    fn governs(&self, lamp: &str) -> bool;
}

pub type Governor = Arc<dyn Governs>;

/// Commands by id, and their ids oldest first for eviction.
type Recent = (HashMap<String, Arc<CommandCell>>, VecDeque<String>);

#[derive(Debug)]
pub struct Control {
    /// The live state and the pollers' queues commands go to; a reload
    /// replaces it whole (`rewire`), so one command sees one generation.
    wiring: RwLock<Arc<Wiring>>,
    /// Queue length per endpoint (`control.write_queue`).
    write_queue: usize,
    /// The names of the groups the settings define (the rest were set
    /// through the API).
    settings_groups: RwLock<std::collections::BTreeSet<String>>,
    commands: Mutex<Recent>,
    idempotency: Mutex<HashMap<(String, String), String>>,
    groups: RwLock<BTreeMap<String, Vec<String>>>,
    /// Where the groups set through the API are kept (`keep_groups`);
    /// `None`: in memory only.
    groups_file: RwLock<Option<std::path::PathBuf>>,
    /// The latest command per device: an expiring override only restores a
    /// device no newer command has touched (last command wins).
    latest: Mutex<HashMap<DeviceKey, String>>,
    /// The last confirmed action per lamp: what an expiring override restores.
    confirmed: Mutex<HashMap<DeviceKey, Action>>,
    /// The overrides waiting for their expiry, kept in
    /// `control.overrides_file` once [`Control::keep_overrides`] opened it.
    overrides: Mutex<overrides::Overrides>,
    audit: Mutex<VecDeque<Command>>,
    observers: RwLock<Vec<Arc<dyn CommandObserver>>>,
    /// Tells a lamp the schedule governs: when an override on it expires the
    /// schedule puts it back to what it says now, not this service to what
    /// the lamp did before.
    governor: RwLock<Option<Governor>>,
    cancel: CancellationToken,
    seq: std::sync::atomic::AtomicU64,
    /// Cluster mode: this instance's id, ending every command id, so that
    /// two instances' commands in the same millisecond do not share an id
    /// (the audit table is keyed by it).
    instance: std::sync::OnceLock<String>,
}

/// What commands are resolved against and sent through: one generation of
/// the live state and of the pollers.
#[derive(Debug)]
pub struct Wiring {
    pub(crate) live: Arc<LiveState>,
    /// Device → (endpoint, index in its devices).
    placement: HashMap<DeviceKey, (u32, u32)>,
    /// Quantities each device's profile maps, to refuse writes it cannot take.
    pub(crate) circuits: HashMap<DeviceKey, u8>,
    writers: Vec<mpsc::Sender<WriteJob>>,
}

impl Wiring {
    /// The wiring for `topology` and the write queues, one per endpoint, in
    /// endpoint order (hand the receivers to the pollers).
    pub fn new(
        live: Arc<LiveState>,
        topology: &Topology,
        write_queue: usize,
    ) -> (Wiring, Vec<mpsc::Receiver<WriteJob>>) {
        let mut placement = HashMap::new();
        let mut circuits = HashMap::new();
        let mut writers = Vec::new();
        let mut receivers = Vec::new();
        for (e, ep) in topology.endpoints.iter().enumerate() {
            for (d, dev) in ep.devices.iter().enumerate() {
                placement.insert(dev.key, (e as u32, d as u32));
                circuits.insert(dev.key, dev.profile.circuits);
            }
            let (tx, rx) = mpsc::channel(write_queue.max(1));
            writers.push(tx);
            receivers.push(rx);
        }
        let w = Wiring {
            live,
            placement,
            circuits,
            writers,
        };
        (w, receivers)
    }
}

impl Control {
    /// Builds the control service and the write queues, one per endpoint
    /// (hand the receivers to the pollers).
    pub fn new(
        live: Arc<LiveState>,
        topology: &Topology,
        settings: &ControlSettings,
        cancel: CancellationToken,
    ) -> (Arc<Control>, Vec<mpsc::Receiver<WriteJob>>) {
        let (wiring, receivers) = Wiring::new(live, topology, settings.write_queue);
        let groups = settings
            .groups
            .iter()
            .map(|g| (g.name.clone(), g.lamps.clone()))
            .collect();
        let control = Arc::new(Control {
            wiring: RwLock::new(Arc::new(wiring)),
            write_queue: settings.write_queue,
            settings_groups: RwLock::new(settings.groups.iter().map(|g| g.name.clone()).collect()),
            commands: Mutex::new((HashMap::new(), VecDeque::new())),
            idempotency: Mutex::new(HashMap::new()),
            groups: RwLock::new(groups),
            groups_file: RwLock::new(None),
            latest: Mutex::new(HashMap::new()),
            confirmed: Mutex::new(HashMap::new()),
            overrides: Mutex::new(overrides::Overrides::default()),
            audit: Mutex::new(VecDeque::new()),
            observers: RwLock::new(Vec::new()),
            governor: RwLock::new(None),
            cancel,
            seq: std::sync::atomic::AtomicU64::new(0),
            instance: std::sync::OnceLock::new(),
        });
        (control, receivers)
    }

    /// The current generation of the live state and the pollers' queues.
    /// Cluster mode: end every command id with this instance's id (set
    /// once, before the first command).
    pub fn name_ids(&self, instance: &str) {
        let _ = self.instance.set(instance.to_string());
    }

    pub fn wiring(&self) -> Arc<Wiring> {
        self.wiring.read().clone()
    }

    /// A reload's wiring for `topology` (see [`Wiring::new`]), sized as
    /// the settings say.
    pub fn prepare(
        &self,
        live: Arc<LiveState>,
        topology: &Topology,
    ) -> (Wiring, Vec<mpsc::Receiver<WriteJob>>) {
        Wiring::new(live, topology, self.write_queue)
    }

    /// Switches to a reload's wiring once the old pollers have ended (so
    /// no write of the old generation is still to confirm): what is kept
    /// per lamp (the latest command, the last confirmed action) follows the
    /// lamp's id to its new position, a lamp that is gone drops out; the
    /// groups the settings define are replaced by `groups`, those set
    /// through the API are kept with the lamps that still exist.
    pub fn rewire(&self, wiring: Wiring, groups: &[GroupConfig]) {
        let old = self.wiring();
        let (from, to) = (&old.live.inventory, &wiring.live.inventory);
        let rekey = |k: &DeviceKey| k.moved(from, to);
        {
            let mut latest = self.latest.lock();
            *latest = latest
                .drain()
                .filter_map(|(k, v)| rekey(&k).map(|k| (k, v)))
                .collect();
        }
        {
            let mut confirmed = self.confirmed.lock();
            *confirmed = confirmed
                .drain()
                .filter_map(|(k, v)| rekey(&k).map(|k| (k, v)))
                .collect();
        }
        {
            let mut names = self.settings_groups.write();
            let mut all = self.groups.write();
            all.retain(|name, _| !names.contains(name));
            let mut pruned = false;
            for (name, lamps) in all.iter_mut() {
                pruned |= keep_known(name, lamps, to);
            }
            for g in groups {
                all.insert(g.name.clone(), g.lamps.clone());
            }
            *names = groups.iter().map(|g| g.name.clone()).collect();
            if pruned {
                self.save_pruned(&all, &names);
            }
        }
        *self.wiring.write() = Arc::new(wiring);
    }

    /// Keeps the groups set through the API in `path` from now on (module
    /// `groups`), starting with `saved`, what `validate::load` read from
    /// it: a lamp the inventory no longer has leaves its group with a
    /// warning (the group keeps the others), and the file is rewritten to
    /// match.
    pub fn keep_groups(&self, path: std::path::PathBuf, saved: Vec<GroupConfig>) {
        let inv = self.wiring().live.inventory.clone();
        let names = self.settings_groups.read();
        let mut all = self.groups.write();
        let mut pruned = false;
        for mut g in saved {
            if names.contains(&g.name) {
                // validate::load refuses this; the settings' group wins.
                tracing::warn!(group = %g.name, "group in the groups file is also in [[control.groups]]: the settings' one is used");
                continue;
            }
            pruned |= keep_known(&g.name, &mut g.lamps, &inv);
            all.insert(g.name, g.lamps);
        }
        *self.groups_file.write() = Some(path);
        if pruned {
            self.save_pruned(&all, &names);
        }
    }

    /// Rewrites the groups file after lamps left groups: what is in
    /// memory is right either way, so a failure is logged, not returned
    /// (the next start drops the same lamps again).
    fn save_pruned(
        &self,
        all: &BTreeMap<String, Vec<String>>,
        names: &std::collections::BTreeSet<String>,
    ) {
        if let Some(path) = self.groups_file.read().as_ref() {
            if let Err(e) = groups::save(path, &api_groups(all, names)) {
                tracing::error!(error = %e, "cannot rewrite the groups file without the lamps that left");
            }
        }
    }

    /// Keeps the overrides waiting for their expiry in `path` from now on,
    /// and re-arms those a previous run left there: each lamp no newer
    /// command has touched since goes back, at its expiry (at once if that
    /// has passed, once the lamp has been polled), to what it did before —
    /// or, for a lamp the schedule governs, to what the plan says then.
    /// Call once the pollers, the schedule and the observers are in place.
    /// Returns how many were re-armed.
    pub fn keep_overrides(
        self: &Arc<Self>,
        path: &std::path::Path,
    ) -> Result<usize, OverridesError> {
        let pending = {
            let mut o = self.overrides.lock();
            o.open(path)?;
            o.pending.clone()
        };
        let inv = self.wiring().live.inventory.clone();
        {
            // Last command wins across the restart too: these are the
            // lamps' latest, until a new one touches them.
            let mut latest = self.latest.lock();
            for (id, p) in &pending {
                for (lamp, _) in &p.restore {
                    if let Some(i) = inv.lamp_position(lamp) {
                        latest.insert(DeviceKey::Lamp(i as u32), id.clone());
                    }
                }
            }
        }
        let n = pending.len();
        for (id, p) in pending {
            tracing::info!(command = %id, expires_at = %p.expires_at, lamps = p.restore.len(), "override re-armed");
            self.schedule_expiry(None, id, p.expires_at, p.restore);
        }
        Ok(n)
    }

    /// The overrides waiting for their expiry, by command id.
    pub fn pending_overrides(&self) -> BTreeMap<String, Pending> {
        self.overrides.lock().pending.clone()
    }

    /// Hands overrides' expiry on the lamps `governs` names to the schedule.
    pub fn set_governor(&self, governs: Governor) {
        *self.governor.write() = Some(governs);
    }

    pub fn observe(&self, observer: Arc<dyn CommandObserver>) {
        self.observers.write().push(observer);
    }

    pub fn get(&self, id: &str) -> Option<Arc<CommandCell>> {
        self.commands.lock().0.get(id).cloned()
    }

    pub fn groups(&self) -> BTreeMap<String, Vec<String>> {
        self.groups.read().clone()
    }

    /// Defines or replaces a group; the name follows [`check_name`], every
    /// lamp must exist, and a group of the settings file is changed there.
    /// With a groups file (`keep_groups`) the change is written to it
    /// first: if that fails, nothing changes and the error says why.
    pub fn set_group(&self, name: &str, lamps: Vec<String>) -> Result<(), ControlError> {
        check_name(name).map_err(|e| ControlError::Invalid(format!("name: {e}")))?;
        if let Some(bad) = lamps
            .iter()
            .find(|l| self.wiring().live.inventory.lamp_position(l).is_none())
        {
            return Err(ControlError::Invalid(format!(
                "lamps: unknown lamp `{bad}`"
            )));
        }
        let names = self.settings_groups.read();
        if names.contains(name) {
            return Err(ControlError::Conflict(format!(
                "group `{name}` is defined in the settings file ([[control.groups]]): change it there and reload"
            )));
        }
        // Held across the write, so the file and memory change in one order.
        let mut all = self.groups.write();
        if let Some(path) = self.groups_file.read().as_ref() {
            let mut next = api_groups(&all, &names);
            next.insert(name.to_string(), lamps.clone());
            groups::save(path, &next).map_err(|e| {
                tracing::error!(group = %name, error = %e, "group not changed");
                ControlError::Storage(format!("group `{name}` not changed: {e}"))
            })?;
        }
        all.insert(name.to_string(), lamps);
        Ok(())
    }

    /// Completed commands between `from` and `to`, newest last.
    pub fn audit(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        actor: Option<&str>,
    ) -> Vec<Command> {
        self.audit
            .lock()
            .iter()
            .filter(|c| c.created_at >= from && c.created_at < to)
            .filter(|c| actor.is_none_or(|a| c.actor == a))
            .cloned()
            .collect()
    }

    /// Remembers a lamp's last confirmed action, which an expiring override
    /// restores. (The live state learns of it from the poller that confirmed
    /// the write.)
    pub(super) fn note_confirmed(&self, key: DeviceKey, action: Action) {
        if let DeviceKey::Lamp(_) = key {
            self.confirmed.lock().insert(key, action);
        }
    }

    /// What a lamp was doing before a new command: its last confirmed
    /// command, else what it last reported.
    pub(crate) fn previous_action(
        &self,
        key: DeviceKey,
        reported: Option<(bool, f64)>,
    ) -> Option<Action> {
        if let Some(a) = self.confirmed.lock().get(&key) {
            return Some(*a);
        }
        reported.map(|(on, level)| {
            if on {
                Action::Dim { level }
            } else {
                Action::Off
            }
        })
    }

    pub(super) fn completed(&self, command: &Command) {
        {
            let mut audit = self.audit.lock();
            if audit.len() == KEPT_COMMANDS {
                audit.pop_front();
            }
            audit.push_back(command.clone());
        }
        let t = command.tally();
        tracing::info!(
            command = %command.id,
            actor = %command.actor,
            source = ?command.source,
            confirmed = t.confirmed,
            failed = t.failed,
            "command completed"
        );
        for o in self.observers.read().iter() {
            o.completed(command);
        }
    }

    /// Validates and starts a command; returns at once with its cell. A
    /// repeated idempotency key returns the first command instead.
    pub fn submit(
        self: &Arc<Self>,
        principal: &Principal,
        sub: Submission,
    ) -> Result<Arc<CommandCell>, ControlError> {
        if let Some(key) = &sub.idempotency_key {
            let existing = self
                .idempotency
                .lock()
                .get(&(sub.actor.clone(), key.clone()))
                .cloned();
            if let Some(cell) = existing.and_then(|id| self.get(&id)) {
                return Ok(cell);
            }
        }
        if let Action::Dim { level } = sub.action {
            if !(0.0..=100.0).contains(&level) {
                return Err(ControlError::Invalid(format!(
                    "level: must be between 0 and 100, got {level}"
                )));
            }
        }
        // Resolved and sent in one generation: positions and queues match.
        let wiring = self.wiring();
        let resolved = resolve::resolve(self, &wiring, principal, &sub.selector, sub.action)?;
        let now = Utc::now();
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut id = format!("cmd-{}-{n}", now.format("%Y%m%dT%H%M%S%.3f"));
        if let Some(instance) = self.instance.get() {
            id = format!("{id}-{instance}");
        }
        let command = Command {
            id: id.clone(),
            actor: sub.actor.clone(),
            source: sub.source,
            action: sub.action,
            kind: resolved.kind,
            selector: {
                let mut v = serde_json::to_value(&sub.selector).unwrap_or_default();
                if let (Some(note), Some(o)) = (&sub.note, v.as_object_mut()) {
                    o.insert("note".into(), note.clone().into());
                }
                v
            },
            created_at: now,
            expires_at: sub.expires_at,
            completed_at: None,
            targets: resolved
                .targets
                .iter()
                .map(|t| Target {
                    id: t.id.clone(),
                    district: t.district.clone(),
                    state: TargetState::Queued,
                    attempts: 0,
                    reason: None,
                    readback: None,
                    updated_at: now,
                })
                .collect(),
        };
        let commanded_on = match (resolved.kind, sub.action) {
            ("lamp", Action::On) => Some(true),
            ("lamp", Action::Off) => Some(false),
            ("lamp", Action::Dim { level }) => Some(level > 0.0),
            _ => None,
        };
        let cell = Arc::new(CommandCell {
            command: Mutex::new(command),
            changed: Notify::new(),
            control: Arc::downgrade(self),
            commanded_on,
            action: sub.action,
            keys: resolved.targets.iter().map(|t| t.key).collect(),
        });
        {
            let mut commands = self.commands.lock();
            if commands.1.len() == KEPT_COMMANDS {
                if let Some(old) = commands.1.pop_front() {
                    commands.0.remove(&old);
                }
            }
            commands.0.insert(id.clone(), cell.clone());
            commands.1.push_back(id.clone());
        }
        if let Some(key) = sub.idempotency_key {
            self.idempotency.lock().insert((sub.actor, key), id.clone());
        }
        {
            let mut latest = self.latest.lock();
            for t in &resolved.targets {
                latest.insert(t.key, id.clone());
            }
        }
        if resolved.kind == "lamp" {
            let mut o = self.overrides.lock();
            if !o.pending.is_empty() {
                let lamps: Vec<&str> = resolved.targets.iter().map(|t| t.id.as_str()).collect();
                o.touched(&id, &lamps);
            }
        }
        // Before any target can complete (an offline one does below).
        {
            let observers = self.observers.read();
            if !observers.is_empty() {
                let c = cell.command.lock();
                for o in observers.iter() {
                    o.accepted(&c);
                }
            }
        }

        let mut jobs: Vec<(u32, WriteJob)> = Vec::new();
        for (i, t) in resolved.targets.into_iter().enumerate() {
            let online = {
                let live = wiring.live.read();
                match t.key {
                    DeviceKey::Lamp(l) => live.lamps[l as usize].online,
                    DeviceKey::Rtu(c) => live.rtus[c as usize].online,
                }
            };
            let placed = wiring.placement.get(&t.key).copied();
            match placed {
                Some((endpoint, device)) if online => jobs.push((
                    endpoint,
                    WriteJob {
                        cell: cell.clone(),
                        target: i,
                        device,
                        writes: t.writes,
                        commanded_on,
                    },
                )),
                // A target that is offline fails fast with that reason.
                _ => cell.finish(i, Err(FailCause::Offline)),
            }
        }
        let writers = wiring.writers.clone();
        tokio::spawn(async move {
            for (endpoint, job) in jobs {
                let (cell, target) = (job.cell.clone(), job.target);
                // Waiting here is backpressure on this command only.
                if writers[endpoint as usize].send(job).await.is_err() {
                    cell.finish(target, Err(FailCause::ShuttingDown));
                }
            }
        });
        if let (Some(at), Some(restore)) = (sub.expires_at, resolved.restore) {
            self.overrides.lock().add(
                &id,
                Pending {
                    expires_at: at,
                    restore: restore.clone(),
                },
            );
            self.schedule_expiry(Some(cell.clone()), id.clone(), at, restore);
        }
        Ok(cell)
    }

    /// When override `id` expires, lamps it still governs go back to what
    /// they did before it. `cell`: the command of this run, waited for
    /// before anything is restored; `None`, re-armed after a restart: its
    /// lamps are waited for instead (polled and online, for two minutes at
    /// most), as nothing can be written to a lamp not polled yet.
    fn schedule_expiry(
        self: &Arc<Self>,
        cell: Option<Arc<CommandCell>>,
        id: String,
        at: DateTime<Utc>,
        restore: Vec<(String, Action)>,
    ) {
        let control = Arc::downgrade(self);
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            let wait = (at - Utc::now()).to_std().unwrap_or_default();
            // A stop leaves it in the file for the next run.
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = cancel.cancelled() => return,
            }
            match cell {
                Some(cell) => {
                    cell.wait().await;
                }
                None => {
                    let deadline =
                        tokio::time::Instant::now() + std::time::Duration::from_secs(120);
                    loop {
                        let Some(control) = control.upgrade() else {
                            return;
                        };
                        let ready = {
                            let w = control.wiring();
                            let live = w.live.read();
                            restore.iter().all(|(lamp, _)| {
                                w.live
                                    .inventory
                                    .lamp_position(lamp)
                                    .is_none_or(|i| live.lamps[i].online)
                            })
                        };
                        drop(control);
                        if ready || tokio::time::Instant::now() >= deadline {
                            break;
                        }
                        tokio::select! {
                            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
                            () = cancel.cancelled() => return,
                        }
                    }
                }
            }
            let Some(control) = control.upgrade() else {
                return;
            };
            let command_id = id;
            // Out of the file first: each restore below is a newer command
            // on its lamp, and would write the file again for it.
            control.overrides.lock().done(&command_id);
            let system = Principal {
                name: "system".into(),
                role: crate::auth::Role::Admin,
                district: None,
            };
            for (lamp, action) in restore {
                let key = control
                    .wiring()
                    .live
                    .inventory
                    .lamp_position(&lamp)
                    .map(|i| DeviceKey::Lamp(i as u32));
                let still_ours = key.is_some_and(|k| {
                    control
                        .latest
                        .lock()
                        .get(&k)
                        .is_some_and(|id| *id == command_id)
                });
                if !still_ours {
                    continue;
                }
                // The schedule takes the lamp back to what it says now.
                let governed = control.governor.read().clone();
                if governed.is_some_and(|g| g.governs(&lamp)) {
                    continue;
                }
                let sub = Submission {
                    actor: "system".into(),
                    source: Source::Expiry,
                    selector: Selector::Lamps(vec![lamp.clone()]),
                    action,
                    expires_at: None,
                    idempotency_key: None,
                    note: None,
                };
                if let Err(e) = control.submit(&system, sub) {
                    tracing::warn!(lamp = %lamp, command = %command_id, error = %e, "cannot restore after override");
                }
            }
        });
    }
}
