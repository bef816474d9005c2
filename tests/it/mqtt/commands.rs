//! Commands over MQTT against the real Mosquitto: `.../set` in, acks out at
//! `{root}/commands/{id}`, the topic's district as the caller's scope.

use super::harness::{unique_root, MOSQUITTO};
use super::{mqtt_settings, sim};
use crate::common::{eventually, lamp_id, spawn_app_with, TestApp};
use lamp_sim::InventoryOptions;
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// A district system's client: publishes commands, records acks.
pub(super) struct Operator {
    pub(super) client: AsyncClient,
    acks: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Operator {
    pub(super) async fn start(root: &str) -> Operator {
        let mut o = MqttOptions::new(format!("op-{root}"), "127.0.0.1", 1883);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut el) = AsyncClient::new(o, 100);
        client
            .subscribe(format!("{root}/commands/#"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let acks = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut tx = Some(tx);
        let seen = acks.clone();
        tokio::spawn(async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let v = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                        seen.lock().push((p.topic.clone(), v));
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap()
            .unwrap();
        Operator { client, acks }
    }

    /// How many acks so far match `pred`.
    pub(super) fn acks_where(&self, pred: impl Fn(&str, &Value) -> bool) -> usize {
        self.acks.lock().iter().filter(|(t, v)| pred(t, v)).count()
    }

    pub(super) fn ack(&self, pred: impl Fn(&str, &Value) -> bool) -> Option<(String, Value)> {
        self.acks.lock().iter().find(|(t, v)| pred(t, v)).cloned()
    }

    /// Publishes until an ack for `request_id` arrives (the gateway may not
    /// have subscribed yet); the request id makes repeats harmless.
    pub(super) async fn send(&self, topic: &str, body: Value) -> Value {
        let rid = body["request_id"]
            .as_str()
            .expect("tests send request ids")
            .to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            self.client
                .publish(topic, QoS::AtLeastOnce, false, body.to_string())
                .await
                .unwrap();
            for _ in 0..10 {
                if let Some((_, v)) = self.ack(|_, v| v["request_id"] == rid.as_str()) {
                    return v;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            assert!(tokio::time::Instant::now() < deadline, "no ack for {rid}");
        }
    }

    pub(super) async fn done(&self, id: &str) -> Value {
        let find = || self.ack(|_, v| v["id"] == id && v["status"] == "done");
        eventually(&format!("final ack of {id}"), || {
            let found = find().is_some();
            async move { found }
        })
        .await;
        find().expect("seen above").1
    }
}

async fn gateway(root: &str) -> TestApp {
    let url = format!("mqtt://{MOSQUITTO}");
    let t = spawn_app_with(sim(2, 3), InventoryOptions::default(), |s| {
        mqtt_settings(s, &url, root)
    })
    .await;
    t.all_online().await;
    t
}

#[tokio::test]
async fn commands_over_mqtt_are_carried_out_and_acked() {
    let root = unique_root("commands");
    let t = gateway(&root).await;
    let op = Operator::start(&root).await;

    // Dim a lamp of D01 (endpoint 0) through its own district's subtree.
    let accepted = op
        .send(
            &format!("{root}/D01/lamp/{}/set", lamp_id(0, 1)),
            json!({"action": "dim", "level": 25, "request_id": "r1"}),
        )
        .await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    let done = op.done(&id).await;
    assert_eq!(done["confirmed"], 1, "{done}");
    assert_eq!(done["source"], "mqtt");
    assert_eq!(done["actor"], "mqtt:D01");
    assert_eq!(t.sim.slc_values(0, 1).dim_level, 25.0);
    let (topic, _) = op
        .ack(|_, v| v["id"] == id.as_str() && v["status"] == "done")
        .unwrap();
    assert_eq!(topic, format!("{root}/commands/{id}"));

    // A circuit of D02's cabinet.
    let accepted = op
        .send(
            &format!("{root}/D02/rtu/RTU-0002/circuit/1/set"),
            json!({"action": "off", "request_id": "r2"}),
        )
        .await;
    let done = op.done(accepted["id"].as_str().unwrap()).await;
    assert_eq!(done["targets"][0]["state"], "confirmed", "{done}");
    assert!(!t.sim.rtu_values(1).contactors[0]);

    // D01's subtree cannot reach a D02 lamp; bad values are named.
    let rejected = op
        .send(
            &format!("{root}/D01/lamp/{}/set", lamp_id(1, 0)),
            json!({"action": "off", "request_id": "r3"}),
        )
        .await;
    assert_eq!(rejected["status"], "rejected");
    // Unknown to D01, as an unknown lamp is, not "forbidden".
    assert_eq!(rejected["error"]["code"], "not_found", "{rejected}");
    assert!(t.sim.slc_values(1, 0).switch, "the lamp was not touched");
    // Nor a circuit of D02's RTU: the same answer as an RTU that does not exist.
    let other = op
        .send(
            &format!("{root}/D01/rtu/RTU-0002/circuit/2/set"),
            json!({"action": "off", "request_id": "r3c"}),
        )
        .await;
    let unknown = op
        .send(
            &format!("{root}/D01/rtu/RTU-9999/circuit/2/set"),
            json!({"action": "off", "request_id": "r3u"}),
        )
        .await;
    assert_eq!(other["status"], "rejected", "{other}");
    assert_eq!(other["error"]["code"], "not_found", "{other}");
    assert_eq!(
        other["error"]["message"]
            .as_str()
            .map(|m| m.replace("RTU-0002", "X")),
        unknown["error"]["message"]
            .as_str()
            .map(|m| m.replace("RTU-9999", "X")),
        "{other} vs {unknown}"
    );
    assert!(
        t.sim.rtu_values(1).contactors[1],
        "the contactor was not touched"
    );
    let rejected = op
        .send(
            &format!("{root}/D01/lamp/{}/set", lamp_id(0, 0)),
            json!({"action": "dim", "level": 500, "request_id": "r4"}),
        )
        .await;
    assert_eq!(rejected["error"]["code"], "invalid");
    assert!(
        rejected["error"]["message"]
            .as_str()
            .unwrap()
            .contains("level"),
        "{rejected}"
    );
    let (_, on_topic) = op
        .ack(|t, v| v["request_id"] == "r4" && t.ends_with("/commands/r4"))
        .unwrap();
    assert_eq!(on_topic["status"], "rejected");

    // The audit trail records the MQTT commands with their source.
    let from = (chrono::Utc::now() - chrono::Duration::minutes(5))
        .to_rfc3339()
        .replace('+', "%2B");
    let to = (chrono::Utc::now() + chrono::Duration::minutes(1))
        .to_rfc3339()
        .replace('+', "%2B");
    eventually("two MQTT commands audited", || async {
        let (_, audit) = t.get(&format!("/api/v1/audit?from={from}&to={to}")).await;
        audit["items"]
            .as_array()
            .is_some_and(|i| i.iter().filter(|r| r["source"] == "mqtt").count() == 2)
    })
    .await;
    t.stop().await;
    super::harness::clear_retained("127.0.0.1", 1883, &root).await;
}
