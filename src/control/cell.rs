//! A command being carried out (its targets' states, waiting for it to
//! complete), the write a poller is handed for one target, and who is told
//! when a command completes.

use super::{Action, Command, Control, FailCause, TargetState};
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
    pub(super) done: Notify,
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
        loop {
            let notified = self.done.notified();
            {
                let c = self.command.lock();
                if c.is_complete() {
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
        let mut c = self.command.lock();
        let t = &mut c.targets[target];
        if !t.state.is_final() {
            t.state = TargetState::Written;
            t.updated_at = Utc::now();
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
        if let Some(done) = completed {
            self.done.notify_waiters();
            if let Some(control) = self.control.upgrade() {
                control.completed(&done);
            }
        }
    }
}
