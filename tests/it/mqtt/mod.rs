//! The MQTT mirror seen by independent subscribers (rumqttc clients of the
//! test's own), against the real Mosquitto on 127.0.0.1:1883 and against the
//! embedded broker. Each test uses a topic root of its own.

mod commands;
pub(crate) mod harness;
mod mosquitto;
mod poison;
mod secure;

use crate::common::{eventually, lamp_id, rtu_id, spawn_app_with, TestApp};
use harness::{unique_root, Proxy, Subscriber, MOSQUITTO};
use lamp_gateway::settings::Settings;
use lamp_sim::{EndpointFault, InventoryOptions, SimConfig, SlcFault};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn sim(endpoints: usize, slcs: usize) -> SimConfig {
    SimConfig {
        endpoints,
        slcs_per_endpoint: slcs,
        districts: 2,
        ..SimConfig::default()
    }
}

fn mqtt_settings(s: &mut Settings, url: &str, root: &str) {
    s.mqtt.url = url.parse().unwrap();
    s.mqtt.topic_root = root.into();
    s.gateway.id = format!("gw-{root}");
    s.mqtt.keep_alive = Duration::from_secs(2);
    s.mqtt.reconnect_min = Duration::from_millis(50);
    s.mqtt.reconnect_max = Duration::from_millis(300);
    // Any change is published, so the last state equals the last poll.
    s.mqtt.deadband_power = 0.0;
    s.mqtt.deadband_voltage = 0.0;
    s.mqtt.deadband_current = 0.0;
}

fn district(endpoint: usize) -> String {
    format!("D{:02}", endpoint % 2 + 1)
}

fn lamp_topic(root: &str, e: usize, j: usize) -> String {
    format!("{root}/{}/lamp/{}/state", district(e), lamp_id(e, j))
}

fn rtu_topic(root: &str, e: usize) -> String {
    format!("{root}/{}/rtu/{}/state", district(e), rtu_id(e))
}

fn close(what: &str, got: &Value, want: f64, tol: f64) {
    let got = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
    assert!(
        (got - want).abs() <= tol,
        "{what}: mqtt {got}, simulator {want}"
    );
}

/// Every lamp's and RTU's retained state is there with the simulator's
/// values, for a subscriber that arrives after the gateway published.
async fn retained_states_match_the_simulator(t: &TestApp, host: &str, port: u16, root: &str) {
    let cfg = (t.sim.endpoint_addrs().len(), 5);
    t.sim.set_frozen(true);
    t.all_online().await;
    let start = t.live.full_cycles();
    eventually("two poll cycles after freezing", || async {
        t.live.full_cycles() >= start + 2
    })
    .await;
    let status = t.app.as_ref().unwrap().mqtt_status().unwrap();
    eventually("gateway has published everything", || async {
        status.states_pending.load(Ordering::Relaxed) == 0
            && status.in_flight.load(Ordering::Relaxed) == 0
    })
    .await;
    let sub = Subscriber::start(host, port, &format!("{root}/#")).await;
    eventually("retained state of every lamp and RTU", || async {
        let seen = sub.seen.lock();
        (0..cfg.0).all(|e| {
            seen.states.contains_key(&rtu_topic(root, e))
                && (0..cfg.1).all(|j| seen.states.contains_key(&lamp_topic(root, e, j)))
        })
    })
    .await;
    let seen = sub.seen.lock().clone();
    for e in 0..cfg.0 {
        for j in 0..cfg.1 {
            let want = t.sim.slc_values(e, j);
            let got = &seen.states[&lamp_topic(root, e, j)];
            let what = lamp_id(e, j);
            assert_eq!(got["lamp_id"], what.as_str());
            assert_eq!(got["online"], true, "{what}: {got}");
            assert_eq!(got["on"], want.switch, "{what}");
            close("dim_level", &got["dim_level"], want.dim_level, 0.6);
            close("voltage", &got["voltage"], want.voltage, 0.051);
            close("current", &got["current"], want.current, 0.0006);
            close("power", &got["power"], want.power, 0.051);
            close("energy_kwh", &got["energy_kwh"], want.energy, 0.0051);
            assert_eq!(got["fault_flags"], want.fault_flags, "{what}");
        }
        let rtu = &seen.states[&rtu_topic(root, e)];
        let want = t.sim.rtu_values(e);
        assert_eq!(rtu["online"], true);
        close("rtu voltage a", &rtu["voltage"][0], want.voltage[0], 0.051);
    }
    sub.stop();
}

#[tokio::test]
async fn mosquitto_subscriber_sees_every_lamp_with_the_simulators_values() {
    let root = unique_root("retained");
    let url = format!("mqtt://{MOSQUITTO}");
    let t = spawn_app_with(sim(3, 5), InventoryOptions::default(), |s| {
        mqtt_settings(s, &url, &root)
    })
    .await;
    retained_states_match_the_simulator(&t, "127.0.0.1", 1883, &root).await;
    t.stop().await;
    harness::clear_retained("127.0.0.1", 1883, &root).await;
}

#[tokio::test]
async fn embedded_broker_serves_retained_states_and_a_clean_offline() {
    let root = unique_root("embedded");
    let t = spawn_app_with(sim(3, 5), InventoryOptions::default(), |s| {
        mqtt_settings(s, "embedded", &root);
        s.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
    })
    .await;
    let addr = t
        .app
        .as_ref()
        .unwrap()
        .mqtt_embedded()
        .expect("embedded broker");
    retained_states_match_the_simulator(&t, "127.0.0.1", addr.port(), &root).await;
    let presence = format!("{root}/gateway/gw-{root}/status");
    let sub = Subscriber::start("127.0.0.1", addr.port(), &presence).await;
    eventually("presence online", || async {
        sub.seen.lock().presence.last().map(String::as_str) == Some("online")
    })
    .await;
    t.stop().await;
    // A clean stop sends no last will, so the gateway says it itself.
    eventually("presence offline after a clean stop", || async {
        sub.seen.lock().presence.last().map(String::as_str) == Some("offline")
    })
    .await;
}

fn events_of<'a>(events: &'a [Value], kind: &str, device: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["device_id"] == device)
        .collect()
}

#[tokio::test]
async fn lamp_failure_and_endpoint_offline_reach_a_subscriber() {
    let root = unique_root("changes");
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/#")).await;
    let url = format!("mqtt://{MOSQUITTO}");
    let t = spawn_app_with(sim(2, 4), InventoryOptions::default(), |s| {
        mqtt_settings(s, &url, &root)
    })
    .await;
    t.all_online().await;
    eventually("lamp states published", || async {
        sub.state(&lamp_topic(&root, 0, 2))
            .is_some_and(|s| s["online"] == true)
    })
    .await;
    assert!(
        sub.seen.lock().events.is_empty(),
        "first observations are not events"
    );

    t.sim.set_slc_fault(
        0,
        2,
        SlcFault {
            failed: true,
            ..Default::default()
        },
    );
    eventually("failed lamp state", || async {
        sub.state(&lamp_topic(&root, 0, 2))
            .is_some_and(|s| s["lamp_failure"] == true && s["faults"][0] == "lamp_failure")
    })
    .await;
    eventually("lamp failure event", || async {
        let seen = sub.seen.lock();
        events_of(&seen.events, "alarm_raised", &lamp_id(0, 2))
            .iter()
            .any(|e| e["alarm"] == "lamp_failure" && e["district"] == "D01")
    })
    .await;

    t.sim.set_endpoint_fault(1, Some(EndpointFault::Silent));
    eventually("endpoint 1 offline in the retained states", || async {
        sub.state(&rtu_topic(&root, 1))
            .is_some_and(|s| s["online"] == false)
            && (0..4).all(|j| {
                sub.state(&lamp_topic(&root, 1, j))
                    .is_some_and(|s| s["online"] == false && s["last_error"]["kind"] == "timeout")
            })
    })
    .await;
    eventually("went_offline events for endpoint 1", || async {
        let seen = sub.seen.lock();
        let rtu = events_of(&seen.events, "went_offline", &rtu_id(1));
        rtu.len() == 1
            && rtu[0]["reason"]["kind"] == "timeout"
            && rtu[0]["district"] == "D02"
            && (0..4).all(|j| events_of(&seen.events, "went_offline", &lamp_id(1, j)).len() == 1)
    })
    .await;
    // Events are on the district's own topic.
    assert!(sub
        .seen
        .lock()
        .event_topics
        .iter()
        .all(|t| t == &format!("{root}/D01/events") || t == &format!("{root}/D02/events")));

    t.sim.set_endpoint_fault(1, None);
    eventually("came_online event for RTU-0002", || async {
        events_of(&sub.seen.lock().events, "came_online", &rtu_id(1)).len() == 1
    })
    .await;
    sub.stop();
    t.stop().await;
    harness::clear_retained("127.0.0.1", 1883, &root).await;
}

#[tokio::test]
async fn broker_outage_loses_no_event_and_ends_with_the_current_state() {
    let root = unique_root("outage");
    let proxy = Proxy::start(MOSQUITTO).await.expect("proxy binds");
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/#")).await;
    let url = format!("mqtt://{}", proxy.addr);
    let (endpoints, slcs) = (4, 5);
    let t = spawn_app_with(sim(endpoints, slcs), InventoryOptions::default(), |s| {
        mqtt_settings(s, &url, &root);
        // A tiny memory queue so the outage spills events to disk.
        s.mqtt.event_queue = 3;
    })
    .await;
    let status = t.app.as_ref().unwrap().mqtt_status().unwrap();
    t.all_online().await;
    eventually("every lamp published once", || async {
        (0..endpoints).all(|e| (0..slcs).all(|j| sub.state(&lamp_topic(&root, e, j)).is_some()))
    })
    .await;

    proxy.sever();
    eventually("gateway sees the broker gone", || async {
        !status.connected.load(Ordering::Relaxed)
    })
    .await;
    // The outbox also carried each district's retained alarm set at start.
    let published_before = status.events_published.load(Ordering::Relaxed);
    for (e, j) in [(0, 1), (2, 3), (1, 0)] {
        t.sim.set_slc_fault(
            e,
            j,
            SlcFault {
                failed: true,
                ..Default::default()
            },
        );
    }
    t.sim.set_endpoint_fault(3, Some(EndpointFault::Refuse));
    eventually("events raised while away, some spilled", || async {
        // 3 lamp failures + RTU and 5 lamps of endpoint 3 offline.
        status.events_raised.load(Ordering::Relaxed) >= 9
            && status.events_spilled_total.load(Ordering::Relaxed) > 0
    })
    .await;
    assert!(!status.connected.load(Ordering::Relaxed), "still away");
    assert_eq!(
        status.events_published.load(Ordering::Relaxed),
        published_before,
        "nothing published while away"
    );

    proxy.restore();
    eventually("outbox delivered", || async {
        status.connected.load(Ordering::Relaxed)
            && status.events_queued.load(Ordering::Relaxed) == 0
            && status.events_spilled.load(Ordering::Relaxed) == 0
    })
    .await;
    let raised = status.events_raised.load(Ordering::Relaxed);
    eventually("every event reached the subscriber", || async {
        let seen = sub.seen.lock();
        let seqs: HashSet<u64> = seen
            .events
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect();
        seqs.len() as u64 == raised
    })
    .await;
    // QoS 1 may repeat an event whose PUBACK was lost; first sightings keep
    // the order in which the gateway raised them, and none is missing.
    let seen = sub.seen.lock().clone();
    let mut first = Vec::new();
    let mut had = HashSet::new();
    for e in &seen.events {
        let seq = e["seq"].as_u64().unwrap();
        if had.insert(seq) {
            first.push(seq);
        }
    }
    assert_eq!(
        first,
        (1..=raised).collect::<Vec<_>>(),
        "in order, none lost"
    );
    for (e, j) in [(0, 1), (2, 3), (1, 0)] {
        assert!(
            !events_of(&seen.events, "alarm_raised", &lamp_id(e, j)).is_empty(),
            "{}",
            lamp_id(e, j)
        );
    }
    assert!(!events_of(&seen.events, "went_offline", &rtu_id(3)).is_empty());
    // The subscriber ends with the current state of every lamp.
    eventually("current state of every lamp", || async {
        let live = t.live.read();
        let inv = &t.live.inventory;
        inv.lamps
            .iter()
            .enumerate()
            .filter(|(_, l)| l.slc.is_some())
            .all(|(i, l)| {
                let (e, j) = harness::lamp_position(&l.id);
                let Some(s) = sub.state(&lamp_topic(&root, e, j)) else {
                    return false;
                };
                let d = &live.lamps[i];
                s["online"] == d.online
                    && s["lamp_failure"]
                        == d.reading
                            .as_ref()
                            .map(|r| r.lamp_failure())
                            .unwrap_or(false)
            })
    })
    .await;
    sub.stop();
    t.stop().await;
    harness::clear_retained("127.0.0.1", 1883, &root).await;
}

#[tokio::test]
async fn last_will_is_published_when_the_gateway_is_killed() {
    let root = unique_root("will");
    let presence = format!("{root}/gateway/gw-{root}/status");
    let sub = Subscriber::start("127.0.0.1", 1883, &presence).await;
    let mut child = harness::spawn_gateway_process(&root).await;
    eventually("gateway says online", || async {
        sub.seen.lock().presence.last().map(String::as_str) == Some("online")
    })
    .await;
    child.kill().expect("SIGKILL the gateway");
    let _ = child.wait();
    eventually("broker publishes the last will", || async {
        sub.seen.lock().presence.last().map(String::as_str) == Some("offline")
    })
    .await;
    sub.stop();
    harness::clear_retained("127.0.0.1", 1883, &root).await;
}
