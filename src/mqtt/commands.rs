//! Commands over MQTT: `{root}/{district}/lamp/{lamp_id}/set` and
//! `{root}/{district}/rtu/{rtu_id}/circuit/{n}/set` take the API's JSON body;
//! acks go to `{root}/commands/{command_id}`. A topic's district is the
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

    pub fn ack(&self, id: &str) -> String {
        format!("{}/commands/{id}", self.root())
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

fn rejected(topics: &Topics, request_id: Option<&str>, code: &str, message: String) -> Message {
    let topic = topics.ack(request_id.unwrap_or("rejected"));
    let payload = json!({
        "request_id": request_id, "status": "rejected",
        "error": {"code": code, "message": message},
    });
    Message {
        topic,
        payload: payload.to_string(),
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
    let (district, selector) = match set {
        SetTopic::Lamp { district, lamp } => (district, Selector::Lamps(vec![lamp])),
        SetTopic::Circuit {
            district,
            rtu,
            circuit,
        } => {
            let Some(c) = inv.rtu_position(&rtu) else {
                return rejected(topics, rid, "not_found", format!("no RTU `{rtu}`"));
            };
            let cabinet = inv.cabinets[c].id.clone();
            (district, Selector::Circuit { cabinet, circuit })
        }
    };
    let principal = Principal {
        name: format!("mqtt:{district}"),
        role: Role::Operator,
        district: Some(district),
    };
    let sub = Submission {
        actor: principal.name.clone(),
        source: Source::Mqtt,
        selector,
        action,
        expires_at: body.expires_at,
        idempotency_key: request_id.clone(),
    };
    match control.submit(&principal, sub) {
        Ok(cell) => {
            let c = cell.snapshot();
            Message {
                topic: topics.ack(&c.id),
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
            };
            rejected(topics, rid, code, e.to_string())
        }
    }
}

/// The final ack of every command, whatever its source.
pub fn done(topics: &Topics, c: &Command) -> Message {
    let tally = c.tally();
    Message {
        topic: topics.ack(&c.id),
        payload: json!({
            "id": c.id, "status": "done", "actor": c.actor, "source": c.source,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_topics_parse() {
        let t = Topics::new("city/lights", "gw");
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
        assert_eq!(t.ack("cmd-1"), "city/lights/commands/cmd-1");
    }
}
