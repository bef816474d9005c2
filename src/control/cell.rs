//! A command being carried out (its targets' states, waiting for it to
//! progress or complete), the write a poller is handed for one target, and
//! who is told when a command completes.

use super::{Action, Command, Control, FailCause, Tally, TargetState};
use crate::topology::DeviceKey;
use chrono::Utc;
use lamp_profile::Quantity;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::Notify;

/// One device write handed to an endpoint's poller.
#[derive(Debug)]
pub struct WriteJob {
    pub cell: Arc<CommandCell>,
    pub target: usize,
    /// Index into the endpoint's `devices`.
    pub device: u32,
    pub writes: Vec<(Quantity, f64)>,
    /// For a lamp target: the switch state the lighting rule takes once the
    /// write is confirmed (the poller reports it to the live state).
    pub commanded_on: Option<bool>,
}

/// Notified when a command completes (audit store, MQTT acks).
pub trait CommandObserver: Send + Sync + std::fmt::Debug {
    fn completed(&self, command: &Command);

    /// A command was accepted: its targets are resolved, none written yet
    /// (called before any of them can complete, so before
    /// [`CommandObserver::completed`]). Must not wait.
    fn accepted(&self, _command: &Command) {}
}

/// A command being carried out.
#[derive(Debug)]
pub struct CommandCell {
    pub(super) command: Mutex<Command>,
    /// Notified whenever a target's state changes (the last change
    /// completes the command).
    pub(super) changed: Notify,
    pub(super) control: std::sync::Weak<Control>,
    /// What each lamp target should say to the lighting rate once confirmed.
    pub(super) commanded_on: Option<bool>,
    pub(super) action: Action,
    pub(super) keys: Vec<DeviceKey>,
}

impl CommandCell {
    pub fn snapshot(&self) -> Command {
        self.command.lock().clone()
    }

    pub fn id(&self) -> String {
        self.command.lock().id.clone()
    }

    /// Waits until every target is confirmed or failed.
    pub async fn wait(&self) -> Command {
        self.until(Command::is_complete).await
    }

    /// Waits until a target's state is no longer what `seen` (the tally of
    /// an earlier snapshot) counts, and returns the command then — at once
    /// if it already differs. A target's state only moves forward (queued →
    /// written → confirmed | failed), so any change changes the tally: a
    /// page follows a command by this, with no polling.
    pub async fn progressed(&self, seen: Tally) -> Command {
        self.until(|c| c.tally() != seen).await
    }

    async fn until(&self, ready: impl Fn(&Command) -> bool) -> Command {
        loop {
            // Registered before the look, so a change in between is not lost.
            let notified = self.changed.notified();
            {
                let c = self.command.lock();
                if ready(&c) {
                    return c.clone();
                }
            }
            notified.await;
        }
    }

    pub fn attempt(&self, target: usize, attempts: u32) {
        let mut c = self.command.lock();
        c.targets[target].attempts = attempts;
    }

    pub fn written(&self, target: usize) {
        let moved = {
            let mut c = self.command.lock();
            let t = &mut c.targets[target];
            let moved = t.state == TargetState::Queued;
            if !t.state.is_final() {
                t.state = TargetState::Written;
                t.updated_at = Utc::now();
            }
            moved
        };
        if moved {
            self.changed.notify_waiters();
        }
    }

    /// Records a target's outcome; completes the command after the last one.
    pub fn finish(&self, target: usize, outcome: Result<Vec<(Quantity, f64)>, FailCause>) {
        let now = Utc::now();
        let (confirmed, completed) = {
            let mut c = self.command.lock();
            let t = &mut c.targets[target];
            if t.state.is_final() {
                return;
            }
            t.updated_at = now;
            match outcome {
                Ok(readback) => {
                    t.state = TargetState::Confirmed;
                    t.readback = Some(
                        readback
                            .into_iter()
                            .map(|(q, v)| (q.to_string(), serde_json::json!(v)))
                            .collect(),
                    );
                }
                Err(cause) => {
                    t.state = TargetState::Failed;
                    t.reason = Some(cause);
                }
            }
            let confirmed = t.state == TargetState::Confirmed;
            let completed = if c.is_complete() && c.completed_at.is_none() {
                c.completed_at = Some(now);
                Some(c.clone())
            } else {
                None
            };
            (confirmed, completed)
        };
        if confirmed && self.commanded_on.is_some() {
            if let Some(control) = self.control.upgrade() {
                control.note_confirmed(self.keys[target], self.action);
            }
        }
        self.changed.notify_waiters();
        if let Some(done) = completed {
            if let Some(control) = self.control.upgrade() {
                control.completed(&done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Target;
    use std::time::Duration;

    fn cell() -> Arc<CommandCell> {
        let now = Utc::now();
        let target = |id: &str| Target {
            id: id.into(),
            district: "D01".into(),
            state: TargetState::Queued,
            attempts: 0,
            reason: None,
            readback: None,
            updated_at: now,
        };
        Arc::new(CommandCell {
            command: Mutex::new(Command {
                id: "cmd-1".into(),
                actor: "ops".into(),
                source: crate::control::Source::Console,
                action: Action::Off,
                kind: "lamp",
                selector: serde_json::json!({"lamps": ["LX-1", "LX-2"]}),
                created_at: now,
                expires_at: None,
                completed_at: None,
                targets: vec![target("LX-1"), target("LX-2")],
            }),
            changed: Notify::new(),
            control: std::sync::Weak::new(),
            commanded_on: None,
            action: Action::Off,
            keys: vec![DeviceKey::Lamp(0), DeviceKey::Lamp(1)],
        })
    }

    /// The next change after `seen`, within a second.
    async fn next(cell: &Arc<CommandCell>, seen: Tally) -> Command {
        tokio::time::timeout(Duration::from_secs(1), cell.progressed(seen))
            .await
            .expect("told of the change")
    }

    #[tokio::test]
    async fn a_follower_is_told_of_each_step_and_not_before() {
        let cell = cell();
        let queued = cell.snapshot().tally();
        let follower = tokio::spawn({
            let cell = cell.clone();
            async move { cell.progressed(queued).await }
        });
        tokio::task::yield_now().await;
        cell.attempt(0, 2);
        tokio::task::yield_now().await;
        assert!(!follower.is_finished(), "an attempt is no change of state");
        cell.written(0);
        let c = follower.await.unwrap();
        assert_eq!(c.targets[0].state, TargetState::Written);
        // Already past what was seen: at once.
        assert_eq!(next(&cell, queued).await.tally().written, 1);
        let written = c.tally();
        let follower = tokio::spawn({
            let cell = cell.clone();
            async move { cell.progressed(written).await }
        });
        tokio::task::yield_now().await;
        cell.written(0);
        tokio::task::yield_now().await;
        assert!(!follower.is_finished(), "written again is no change");
        cell.finish(1, Err(FailCause::Offline));
        let c = follower.await.unwrap();
        assert_eq!(
            (c.targets[1].state, c.targets[1].reason.clone()),
            (TargetState::Failed, Some(FailCause::Offline))
        );
        cell.finish(0, Ok(vec![]));
        let c = next(&cell, c.tally()).await;
        assert!(c.is_complete() && c.completed_at.is_some());
        assert!(tokio::time::timeout(Duration::from_secs(1), cell.wait())
            .await
            .is_ok());
    }
}
