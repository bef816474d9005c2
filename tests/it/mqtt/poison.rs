//! Messages that used to stop all publishing (issue 12, defect 1): a
//! command whose `request_id` is no topic level, and publishes the client or
//! the broker refuses, left over in the spool. Neither may block the states
//! and events behind them, in this run or the next; retained commands are
//! never carried out.

use super::commands::Operator;
use super::harness::{clear_retained, unique_root, Proxy, Subscriber, MOSQUITTO};
use super::{events_of, lamp_topic, mqtt_settings, sim};
use crate::common::{eventually, lamp_id, spawn_app_with, TestApp};
use lamp_gateway::mqtt::outbox::Message;
use lamp_gateway::queue::Spool;
use lamp_sim::{InventoryOptions, SlcFault};
use rumqttc::QoS;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::Ordering;

async fn gateway(root: &str, url: &str, spill: &Path) -> TestApp {
    let (url, spill) = (url.to_string(), spill.to_path_buf());
    let t = spawn_app_with(sim(2, 3), InventoryOptions::default(), |s| {
        mqtt_settings(s, &url, root);
        s.mqtt.spill_dir = spill;
    })
    .await;
    t.all_online().await;
    t
}

fn fail_lamp(t: &TestApp, e: usize, j: usize) {
    let failed = SlcFault {
        failed: true,
        ..Default::default()
    };
    t.sim.set_slc_fault(e, j, failed);
}

/// A lamp failure made now reaches `sub` as a state and as an event.
async fn fault_is_published(t: &TestApp, sub: &Subscriber, root: &str, e: usize, j: usize) {
    fail_lamp(t, e, j);
    eventually(&format!("failed state of {}", lamp_id(e, j)), || async {
        sub.state(&lamp_topic(root, e, j))
            .is_some_and(|s| s["lamp_failure"] == true)
    })
    .await;
    eventually(&format!("alarm event of {}", lamp_id(e, j)), || async {
        !events_of(&sub.seen.lock().events, "alarm_raised", &lamp_id(e, j)).is_empty()
    })
    .await;
}

async fn readyz_mqtt(t: &TestApp) -> Value {
    let (code, body) = t.get("/readyz").await;
    assert!(code == 200 || code == 503, "{code} {body}");
    body["mqtt"].clone()
}

#[tokio::test]
async fn a_request_id_that_is_no_topic_level_blocks_nothing_now_or_after_a_restart() {
    let root = unique_root("poison");
    let spill = tempfile::tempdir().unwrap();
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/#")).await;
    let url = format!("mqtt://{MOSQUITTO}");
    let t = gateway(&root, &url, spill.path()).await;
    let status = t.app.as_ref().unwrap().mqtt_status().unwrap();
    // A state on the broker means the gateway's command subscription (sent
    // on connect, before any state) is in place.
    eventually("first states", || async {
        sub.state(&lamp_topic(&root, 0, 0)).is_some()
    })
    .await;
    let op = Operator::start(&root).await;
    let poison = json!({"action": "bogus", "request_id": "poison/#"});
    op.client
        .publish(
            format!("{root}/D01/lamp/{}/set", lamp_id(0, 1)),
            QoS::AtLeastOnce,
            false,
            poison.to_string(),
        )
        .await
        .unwrap();
    let rejected = |topic: &str, v: &Value| {
        topic == format!("{root}/commands/rejected") && v["request_id"] == "poison/#"
    };
    eventually("the gateway took the message", || async {
        status.events_queued.load(Ordering::Relaxed) > 0 || op.ack(rejected).is_some()
    })
    .await;

    fault_is_published(&t, &sub, &root, 0, 2).await;
    let (_, ack) = op.ack(rejected).expect("reject ack on the safe topic");
    assert_eq!(ack["status"], "rejected", "{ack}");
    assert_eq!(ack["error"]["code"], "invalid", "{ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("request_id")),
        "{ack}"
    );
    assert_eq!(
        op.acks_where(|topic, _| topic != format!("{root}/commands/rejected")),
        0,
        "the request id never became a topic"
    );
    t.stop().await;

    // The next run on the same spill folder publishes too.
    let t = gateway(&root, &url, spill.path()).await;
    fault_is_published(&t, &sub, &root, 1, 0).await;
    let m = readyz_mqtt(&t).await;
    assert_eq!(m["messages_dropped"], 0, "nothing needed dropping: {m}");
    t.stop().await;
    sub.stop();
    clear_retained("127.0.0.1", 1883, &root).await;
}

#[tokio::test]
async fn publishes_the_client_or_broker_refuses_are_dropped_and_counted_not_retried() {
    let root = unique_root("refused");
    let spill = tempfile::tempdir().unwrap();
    // What an earlier version left in the spool: a topic rumqttc refuses
    // (wildcard), one the broker would drop the connection for (NUL), one
    // past the packet size limit, then a good event behind them.
    let marker = json!({"kind": "test_marker", "device_id": "none", "seq": 0});
    let spooled = [
        (format!("{root}/commands/poison/#"), "{}".to_string()),
        (format!("{root}/commands/nul\u{0}here"), "{}".to_string()),
        (format!("{root}/D01/events"), "x".repeat((1 << 20) + 1)),
        (format!("{root}/D01/events"), marker.to_string()),
    ];
    {
        let mut spool = Spool::<Message>::open(spill.path()).unwrap();
        let msgs: Vec<Message> = spooled
            .iter()
            .map(|(topic, payload)| Message {
                topic: topic.clone(),
                payload: payload.clone(),
                retain: false,
            })
            .collect();
        spool.append(&msgs).unwrap();
    }
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/#")).await;
    let url = format!("mqtt://{MOSQUITTO}");
    let t = gateway(&root, &url, spill.path()).await;
    eventually("the good event behind the refused ones", || async {
        sub.seen
            .lock()
            .events
            .iter()
            .any(|e| e["kind"] == "test_marker")
    })
    .await;
    fault_is_published(&t, &sub, &root, 0, 1).await;
    let m = readyz_mqtt(&t).await;
    assert_eq!(m["messages_dropped"], 3, "{m}");
    let (_, metrics) = t.get_text("/metrics").await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "lampgw_mqtt_messages_dropped_total 3"),
        "{metrics}"
    );
    t.stop().await;

    // Dropped is settled: the next run does not send them again.
    let t = gateway(&root, &url, spill.path()).await;
    fault_is_published(&t, &sub, &root, 1, 2).await;
    let m = readyz_mqtt(&t).await;
    assert_eq!(m["messages_dropped"], 0, "{m}");
    t.stop().await;
    sub.stop();
    clear_retained("127.0.0.1", 1883, &root).await;
}

#[tokio::test]
async fn a_retained_command_is_never_carried_out() {
    let root = unique_root("retained-set");
    let op = Operator::start(&root).await;
    let set = format!("{root}/D01/lamp/{}/set", lamp_id(0, 1));
    let watch = Subscriber::start("127.0.0.1", 1883, &set).await;
    op.client
        .publish(
            set.clone(),
            QoS::AtLeastOnce,
            true,
            json!({"action": "off", "request_id": "ret-1"}).to_string(),
        )
        .await
        .unwrap();
    eventually("the broker keeps the retained command", || async {
        watch.seen.lock().other.iter().any(|(t, _)| t == &set)
    })
    .await;
    watch.stop();

    // The gateway subscribes after it was retained (a start, a reconnect):
    // the broker hands it over flagged retained.
    let proxy = Proxy::start(MOSQUITTO).await.expect("proxy binds");
    let spill = tempfile::tempdir().unwrap();
    let t = gateway(&root, &format!("mqtt://{}", proxy.addr), spill.path()).await;
    let status = t.app.as_ref().unwrap().mqtt_status().unwrap();
    let ignored = || {
        op.acks_where(|topic, v| {
            topic == format!("{root}/commands/rejected")
                && v["request_id"] == "ret-1"
                && v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("retained"))
        })
    };
    eventually("retained command refused", || async { ignored() >= 1 }).await;
    let before = ignored();
    proxy.sever();
    eventually("link down", || async {
        !status.connected.load(Ordering::Relaxed)
    })
    .await;
    proxy.restore();
    eventually("refused again after the reconnect", || async {
        ignored() > before
    })
    .await;

    // A live command behind it on the same endpoint: once it is done, an
    // `off` for LX-0001-002 would have been carried out before it.
    let accepted = op
        .send(
            &format!("{root}/D01/lamp/{}/set", lamp_id(0, 2)),
            json!({"action": "dim", "level": 40, "request_id": "live-1"}),
        )
        .await;
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    op.done(accepted["id"].as_str().unwrap()).await;
    assert!(
        t.sim.slc_values(0, 1).switch,
        "the retained `off` never ran"
    );
    assert_eq!(
        op.acks_where(|_, v| v["request_id"] == "ret-1" && v["status"] == "accepted"),
        0
    );

    // Clearing the retained command (an empty retained publish) reaches the
    // gateway live and is refused as an empty body.
    op.client
        .publish(set.clone(), QoS::AtLeastOnce, true, Vec::<u8>::new())
        .await
        .unwrap();
    t.stop().await;
    clear_retained("127.0.0.1", 1883, &root).await;
}
