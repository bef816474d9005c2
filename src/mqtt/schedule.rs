//! The night plan on MQTT: each district's summary retained at
//! `{root}/{district}/schedule/state` — its targets by scheduled and
//! effective level, how many agree with their device, the programs in
//! force — as of the schedule's last tick, published when it changes (the
//! engine offers only changed ones), through the outbox like every other
//! message (spooled, in order, kept until the broker acknowledges it).

use super::inbox::Inbox;
use super::outbox::Message;
use super::payload::Topics;
use crate::schedule::summary::{ScheduleSink, ScheduleState};
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
struct Payload<'a> {
    gateway: &'a str,
    #[serde(flatten)]
    state: &'a ScheduleState<'a>,
}

/// Hands districts' summaries to the MQTT task without waiting.
#[derive(Debug)]
pub struct ScheduleStates {
    pub inbox: Arc<Inbox>,
    pub topics: Topics,
    pub gateway_id: String,
}

impl ScheduleSink for ScheduleStates {
    fn offer_state(&self, state: &ScheduleState<'_>) {
        let Ok(topic) = self.topics.schedule_state(&state.summary.district) else {
            // The start checked every district id.
            return;
        };
        let payload = serde_json::to_string(&Payload {
            gateway: &self.gateway_id,
            state,
        })
        .expect("plain struct serialises");
        self.inbox.push_message(Message {
            topic,
            payload,
            retain: true,
        });
    }
}
