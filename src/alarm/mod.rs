//! Alarms and repairs (告警与维修): faults found in what the devices report,
//! kept through a lifecycle, persisted, published and timed against repair
//! deadlines.
//!
//! The engine (engine.rs) is offered every applied poll batch on the state
//! task, like the store and MQTT, and judges the conditions (rules.rs) on
//! the live state right after the batch was applied. A condition must hold
//! for its kind's debounce (`for`) before the alarm is raised; it clears as
//! soon as the device is seen without it; if it returns within
//! `alarms.hysteresis` the same alarm reopens. A device that goes offline
//! keeps the alarms it had: nothing is known of it, so nothing clears.
//!
//! Every change goes, as the whole record with a growing `version`, to the
//! [`AlarmSink`]s: the store (through its spool, so an alarm raised while the
//! database is away is kept, and replays land once: the store keeps the
//! highest version per id), MQTT (events and each district's active set)
//! and the webhooks (each its own durable queue).

pub mod config;
pub mod engine;
pub mod filter;
pub mod layout;
pub mod metrics;
pub mod model;
pub mod rules;
#[cfg(test)]
mod spec;
pub mod webhook;

pub use config::{AlarmSettings, KindRule, KindSettings, WebhookSettings};
pub use engine::{read_snapshot, AlarmError, AlarmJudge, Alarms};
pub use filter::AlarmFilter;
pub use model::{
    Alarm, AlarmChange, AlarmKind, AlarmState, ChangeKind, DeviceKind, Facility, Severity,
};

use std::sync::Arc;

/// A consumer of alarm changes, in the order they happened. Like
/// `state::Sink::offer`, `offer_alarms` must not wait on a database, a
/// broker or a receiver: it keeps what it cannot deliver now (spool, queue)
/// and delivers it later.
pub trait AlarmSink: Send + Sync + std::fmt::Debug {
    fn offer_alarms(&self, changes: Arc<[AlarmChange]>);
}
