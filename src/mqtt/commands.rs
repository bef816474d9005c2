//! Commands over MQTT: `{root}/{district}/lamp/{lamp_id}/set` and
//! `{root}/{district}/rtu/{rtu_id}/circuit/{n}/set` take the API's JSON body;
//! acks go to `{root}/commands/{command_id}` (refusals to
//! `{root}/commands/{request_id}`, or `{root}/commands/rejected` when the
//! message has no `request_id` fit to be a topic level). A topic's district is the
//! caller's scope: a message under D01 cannot reach a lamp of D02, so a broker
//! ACL on `{root}/{district}/#` is the district system's authorisation.

use super::outbox::Message;
use super::payload::Topics;
use crate::auth::{Principal, Role};
use crate::control::{
    Command, CommandBody, CommandObserver, Control, ControlError, Selector, Source, Submission,
};
use crate::inventory::Inventory;
use serde_json::json;
use std::sync::Arc;

/// What a `.../set` topic addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetTopic {
    Lamp {
        district: String,
        lamp: String,
    },
    Circuit {
        district: String,
        rtu: String,
        circuit: u8,
    },
}

impl Topics {
    /// The subscriptions that carry commands.
    pub fn command_filters(&self) -> [String; 2] {
        [
            format!("{}/+/lamp/+/set", self.root()),
            format!("{}/+/rtu/+/circuit/+/set", self.root()),
        ]
    }

    pub fn parse_set(&self, topic: &str) -> Option<SetTopic> {
        let rest = topic.strip_prefix(self.root())?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [district, "lamp", lamp, "set"] => Some(SetTopic::Lamp {
                district: district.to_string(),
                lamp: lamp.to_string(),
            }),
            [district, "rtu", rtu, "circuit", n, "set"] => Some(SetTopic::Circuit {
                district: district.to_string(),
                rtu: rtu.to_string(),
                circuit: n.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// The ack topic of `id`; an id the topic check refuses (never one of the
/// gateway's own command ids, nor a request id, which are checked on
/// arrival) falls back to the shared `rejected` topic rather than a topic
/// the client would refuse.
fn ack_topic(topics: &Topics, id: &str) -> String {
    topics.ack(id).unwrap_or_else(|e| {
        tracing::error!(error = %e, "ack topic refused; acking on the shared topic");
        topics.rejected()
    })
}

fn rejected(topics: &Topics, request_id: Option<&str>, code: &str, message: String) -> Message {
    let topic = request_id.map_or_else(|| topics.rejected(), |id| ack_topic(topics, id));
    let payload = json!({
        "request_id": request_id, "status": "rejected",
        "error": {"code": code, "message": message},
    });
    Message {
        retain: false,
        topic,
        payload: payload.to_string(),
    }
}

/// The ack of a retained command, which is never carried out: on the shared
/// topic, naming the caller's `request_id` when the body has one.
pub fn retained(topics: &Topics, topic: &str, body: &[u8]) -> Message {
    let request_id = CommandBody::parse(body).ok().and_then(|b| b.request_id);
    let message = json!({
        "request_id": request_id.map(|r| r.chars().take(super::payload::MAX_LEVEL).collect::<String>()),
        "status": "rejected",
        "error": {"code": "invalid", "message": format!("{topic}: retained commands are ignored")},
    });
    Message {
        retain: false,
        topic: topics.rejected(),
        payload: message.to_string(),
    }
}

/// Carries out one `.../set` message; returns the ack to publish now.
pub fn handle(
    control: &Arc<Control>,
    inv: &Inventory,
    topics: &Topics,
    set: SetTopic,
    body: &[u8],
) -> Message {
    let body = match CommandBody::parse(body) {
        Ok(b) => b,
        Err(e) => return rejected(topics, None, "invalid", e.to_string()),
    };
    let request_id = body.request_id.clone();
    let rid = request_id.as_deref();
    // The request id names the ack topic: one that is no topic level is
    // refused on the shared topic and goes no further.
    if let Some(id) = rid {
        if let Err(reason) = super::payload::check_level(id) {
            let shown: String = id.chars().take(super::payload::MAX_LEVEL).collect();
            let payload = json!({
                "request_id": shown, "status": "rejected",
                "error": {"code": "invalid", "message": format!(
                    "request_id: cannot name an MQTT topic level ({reason}); use at most {} \
                     printable characters without `/`, `+` or `#`",
                    super::payload::MAX_LEVEL,
                )},
            });
            return Message {
                retain: false,
                topic: topics.rejected(),
                payload: payload.to_string(),
            };
        }
    }
    let action = match body.action() {
        Ok(a) => a,
        Err(e) => return rejected(topics, rid, "invalid", e.to_string()),
    };
    if body.target.is_some() {
        return rejected(
            topics,
            rid,
            "invalid",
            "target: the topic names the target".into(),
        );
    }
    // The topic's district is the caller's scope: another district's RTU
    // does not exist for it, as for the API (`auth::scope`).
    let district = match &set {
        SetTopic::Lamp { district, .. } | SetTopic::Circuit { district, .. } => district.clone(),
    };
    let principal = Principal {
        name: format!("mqtt:{district}"),
        role: Role::Operator,
        district: Some(district),
    };
    let selector = match set {
        SetTopic::Lamp { lamp, .. } => Selector::Lamps(vec![lamp]),
        SetTopic::Circuit { rtu, circuit, .. } => {
            let Some(c) = principal.visible_rtu(inv, &rtu) else {
                return rejected(topics, rid, "not_found", format!("no RTU `{rtu}`"));
            };
            let cabinet = inv.cabinets[c].id.clone();
            Selector::Circuit { cabinet, circuit }
        }
    };
    let sub = Submission {
        actor: principal.name.clone(),
        source: Source::Mqtt,
        selector,
        action,
        expires_at: body.expires_at,
        idempotency_key: request_id.clone(),
        note: None,
    };
    match control.submit(&principal, sub) {
        Ok(cell) => {
            let c = cell.snapshot();
            Message {
                retain: false,
                topic: ack_topic(topics, &c.id),
                payload: json!({
                    "id": c.id, "request_id": request_id, "status": "accepted",
                    "targets": c.targets.len(),
                })
                .to_string(),
            }
        }
        Err(e) => {
            let code = match e {
                ControlError::NotFound(_) => "not_found",
                ControlError::Forbidden(_) => "forbidden",
                ControlError::Invalid(_) => "invalid",
                // Group definitions only; commands do not give these.
                ControlError::Conflict(_) => "conflict",
                ControlError::Storage(_) => "internal",
            };
            rejected(topics, rid, code, e.to_string())
        }
    }
}

/// Why the gateway issued a command itself: the schedule's program, rule
/// and switch point (`null` for a caller's command).
fn note(c: &Command) -> Option<&str> {
    c.selector.get("note").and_then(serde_json::Value::as_str)
}

/// The first ack of a command the schedule issued: the gateway is its own
/// caller, so nothing else says it was accepted (an MQTT caller's comes
/// from [`handle`], an HTTP caller's is the 202).
pub fn accepted(topics: &Topics, c: &Command) -> Option<Message> {
    if c.source != Source::Schedule {
        return None;
    }
    let mut payload = json!({
        "id": c.id, "request_id": null, "status": "accepted",
        "actor": c.actor, "source": c.source, "kind": c.kind,
        "note": note(c), "targets": c.targets.len(),
    });
    // `action`, and `level` for a dim, as in the request body.
    if let (Some(o), Ok(serde_json::Value::Object(a))) =
        (payload.as_object_mut(), serde_json::to_value(c.action))
    {
        o.extend(a);
    }
    Some(Message {
        retain: false,
        topic: ack_topic(topics, &c.id),
        payload: payload.to_string(),
    })
}

/// The final ack of every command, whatever its source.
pub fn done(topics: &Topics, c: &Command) -> Message {
    let tally = c.tally();
    Message {
        retain: false,
        topic: ack_topic(topics, &c.id),
        payload: json!({
            "id": c.id, "status": "done", "actor": c.actor, "source": c.source,
            "note": note(c),
            "confirmed": tally.confirmed, "failed": tally.failed,
            "targets": c.targets.iter().map(|t| json!({
                "id": t.id, "state": t.state, "reason": t.reason, "readback": t.readback,
            })).collect::<Vec<_>>(),
        })
        .to_string(),
    }
}

/// Hands completed commands to the MQTT task for their final ack.
#[derive(Debug)]
pub struct AckObserver {
    pub inbox: Arc<super::inbox::Inbox>,
    pub topics: Topics,
}

impl CommandObserver for AckObserver {
    fn completed(&self, command: &Command) {
        self.inbox.push_message(done(&self.topics, command));
    }

    fn accepted(&self, command: &Command) {
        if let Some(m) = accepted(&self.topics, command) {
            self.inbox.push_message(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_topics_parse() {
        let t = Topics::new("city/lights", "gw").unwrap();
        assert_eq!(
            t.parse_set("city/lights/D01/lamp/LX-1/set"),
            Some(SetTopic::Lamp {
                district: "D01".into(),
                lamp: "LX-1".into()
            })
        );
        assert_eq!(
            t.parse_set("city/lights/D01/rtu/R-1/circuit/3/set"),
            Some(SetTopic::Circuit {
                district: "D01".into(),
                rtu: "R-1".into(),
                circuit: 3
            })
        );
        assert_eq!(t.parse_set("city/lights/D01/lamp/LX-1/state"), None);
        assert_eq!(t.parse_set("city/lights/D01/rtu/R-1/circuit/x/set"), None);
        assert_eq!(t.parse_set("other/D01/lamp/LX-1/set"), None);
        assert_eq!(t.ack("cmd-1").unwrap(), "city/lights/commands/cmd-1");
    }
}
