//! Alarms on MQTT: every change as an event on `{root}/{district}/alarms`
//! (not retained), and each district's standing alarms retained at
//! `{root}/{district}/alarms/active` — at most `alarms.mqtt_active_limit`
//! listed, the counts always. Both go through the outbox (spooled, in
//! order, kept until the broker acknowledges them).

use super::inbox::Inbox;
use super::outbox::Message;
use super::payload::Topics;
use crate::alarm::{Alarm, AlarmChange, AlarmKind, AlarmSink, Alarms, Severity};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Serialize)]
struct ChangeEvent<'a> {
    gateway: &'a str,
    #[serde(flatten)]
    change: &'a AlarmChange,
}

/// One standing alarm in a district's retained set.
#[derive(Serialize)]
struct Entry<'a> {
    id: i64,
    kind: AlarmKind,
    severity: Severity,
    state: crate::alarm::AlarmState,
    device_kind: crate::alarm::DeviceKind,
    device_id: &'a str,
    raised_at: DateTime<Utc>,
    deadline: DateTime<Utc>,
    overdue: bool,
}

#[derive(Serialize)]
struct ActiveSet<'a> {
    gateway: &'a str,
    district: &'a str,
    at: DateTime<Utc>,
    count: usize,
    overdue: usize,
    by_kind: BTreeMap<AlarmKind, usize>,
    by_severity: BTreeMap<Severity, usize>,
    /// More standing than listed: `alarms` holds the newest.
    truncated: bool,
    alarms: Vec<Entry<'a>>,
}

/// Hands alarm changes to the MQTT task without waiting.
#[derive(Debug)]
pub struct AlarmEvents {
    inbox: Arc<Inbox>,
    topics: Topics,
    gateway_id: String,
}

impl AlarmSink for AlarmEvents {
    fn offer_alarms(&self, changes: Arc<[AlarmChange]>) {
        for change in changes.iter() {
            let Ok(topic) = self.topics.alarms(&change.alarm.district) else {
                // The start checked every district id.
                continue;
            };
            let payload = serde_json::to_string(&ChangeEvent {
                gateway: &self.gateway_id,
                change,
            })
            .expect("plain struct serialises");
            self.inbox.push_message(Message {
                topic,
                payload,
                retain: false,
            });
        }
    }
}

/// The retained set of one district.
fn active_set(
    gateway: &str,
    district: &str,
    standing: &[&Alarm],
    limit: usize,
    at: DateTime<Utc>,
) -> String {
    let mut by_kind = BTreeMap::new();
    let mut by_severity = BTreeMap::new();
    for a in standing {
        *by_kind.entry(a.kind).or_default() += 1;
        *by_severity.entry(a.severity).or_default() += 1;
    }
    let set = ActiveSet {
        gateway,
        district,
        at,
        count: standing.len(),
        overdue: standing.iter().filter(|a| a.overdue).count(),
        by_kind,
        by_severity,
        truncated: standing.len() > limit,
        alarms: standing
            .iter()
            .take(limit)
            .map(|a| Entry {
                id: a.id,
                kind: a.kind,
                severity: a.severity,
                state: a.state,
                device_kind: a.device_kind,
                device_id: &a.device_id,
                raised_at: a.raised_at,
                deadline: a.deadline,
                overdue: a.overdue,
            })
            .collect(),
    };
    serde_json::to_string(&set).expect("plain struct serialises")
}

/// Starts the alarm side of the mirror: the events sink, and a task that
/// republishes the retained set of every district whose standing alarms
/// changed, once per `alarms.tick` (and every district once at start).
pub fn start(
    inbox: Arc<Inbox>,
    topics: Topics,
    gateway_id: &str,
    alarms: Arc<Alarms>,
    cancel: CancellationToken,
) -> Arc<dyn AlarmSink> {
    let sink = Arc::new(AlarmEvents {
        inbox: inbox.clone(),
        topics: topics.clone(),
        gateway_id: gateway_id.to_string(),
    });
    let gateway = gateway_id.to_string();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let settings = alarms.settings();
            let mut dirty = alarms.take_dirty();
            if first {
                // What a broker kept from a previous run may be stale.
                let live = alarms.layout_districts();
                dirty.extend(live);
                first = false;
            }
            if !dirty.is_empty() {
                let now = Utc::now();
                let standing = alarms.standing(now);
                for d in &dirty {
                    let Ok(topic) = topics.alarms_active(d) else {
                        continue;
                    };
                    let mine: Vec<&Alarm> = standing.iter().filter(|a| a.district == *d).collect();
                    let payload = active_set(&gateway, d, &mine, settings.mqtt_active_limit, now);
                    inbox.push_message(Message {
                        topic,
                        payload,
                        retain: true,
                    });
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(settings.tick) => {}
            }
        }
    });
    sink
}
