//! Alarms end to end: simulator faults over real sockets, the alarm in the
//! API and on MQTT (Mosquitto), acknowledgement scoped by district, grouping
//! of an endpoint that goes down.

use crate::common::{eventually, lamp_id, spawn_app_with, TestApp};
use crate::mqtt::harness::{unique_root, Subscriber, MOSQUITTO};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::settings::Settings;
use lamp_sim::{EndpointFault, InventoryOptions, SimConfig, SlcFault};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const OP_D01: &str = "lgw_test_op_d01";
const OP_D02: &str = "lgw_test_op_d02";
const VIEWER: &str = "lgw_test_viewer";

fn tokens(s: &mut Settings) {
    for (name, token, role, district) in [
        ("op-d01", OP_D01, Role::Operator, Some("D01")),
        ("op-d02", OP_D02, Role::Operator, Some("D02")),
        ("viewer", VIEWER, Role::Viewer, None),
    ] {
        s.auth.tokens.push(TokenConfig {
            name: name.into(),
            hash: hash_token(token),
            role,
            district: district.map(String::from),
        });
    }
}

async fn city(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(
        SimConfig {
            endpoints: 2,
            slcs_per_endpoint: 4,
            districts: 2,
            ..SimConfig::default()
        },
        InventoryOptions::default(),
        |s| {
            tokens(s);
            tweak(s);
        },
    )
    .await
}

async fn alarms(t: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = t.get(&format!("/api/v1/alarms?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lamp_failure_reaches_the_api_and_mqtt_and_only_its_district_acknowledges_it() {
    let root = unique_root("alarms");
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/+/alarms/#")).await;
    let t = city(|s| {
        s.mqtt.url = format!("mqtt://{MOSQUITTO}").parse().unwrap();
        s.mqtt.topic_root = root.clone();
        s.gateway.id = format!("gw-{root}");
        s.mqtt.reconnect_min = Duration::from_millis(50);
        s.alarms.tick = Duration::from_millis(100);
    })
    .await;
    t.all_online().await;
    assert!(
        alarms(&t, "").await.is_empty(),
        "a healthy city has no alarm"
    );
    let lamp = lamp_id(0, 1);
    let fault_at = Instant::now();
    t.sim.set_slc_fault(
        0,
        1,
        SlcFault {
            failed: true,
            ..SlcFault::default()
        },
    );
    // Both watched in one loop, so each time is when it was first seen.
    let topic = format!("{root}/D01/alarms");
    let (mut api_ms, mut mqtt_ms) = (None, None);
    let deadline = fault_at + Duration::from_secs(20);
    while api_ms.is_none() || mqtt_ms.is_none() {
        assert!(
            Instant::now() < deadline,
            "alarm not seen: api {api_ms:?} mqtt {mqtt_ms:?}"
        );
        if api_ms.is_none() && alarms(&t, "kind=lamp_failure").await.len() == 1 {
            api_ms = Some(fault_at.elapsed().as_secs_f64() * 1e3);
        }
        if mqtt_ms.is_none()
            && sub
                .seen
                .lock()
                .other
                .iter()
                .any(|(t, body)| *t == topic && body.contains("\"raised\"") && body.contains(&lamp))
        {
            mqtt_ms = Some(fault_at.elapsed().as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (api_ms, mqtt_ms) = (api_ms.unwrap(), mqtt_ms.unwrap());
    println!("fault → alarm: API {api_ms:.0} ms, MQTT {mqtt_ms:.0} ms (poll interval 100 ms)");
    let a = &alarms(&t, "kind=lamp_failure").await[0];
    assert_eq!(a["device_id"], lamp.as_str());
    assert_eq!(a["district"], "D01");
    assert_eq!(a["state"], "active");
    assert_eq!(a["severity"], "ordinary");
    assert_eq!(a["cabinet"], "CAB-0001");
    let id = a["id"].as_i64().unwrap();
    // One alarm for one failure: no lamp_out_at_night beside it.
    assert_eq!(alarms(&t, &format!("device={lamp}")).await.len(), 1);

    // Another district's operator: the alarm does not exist.
    let path = format!("/api/v1/alarms/{id}");
    assert_eq!(t.get_as(OP_D02, &path).await.0, 404);
    let ack = format!("{path}/ack");
    let (status, body) = t
        .post_as(OP_D02, &ack, json!({"comment": "mine?"}), None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, list) = t.get_as(OP_D02, "/api/v1/alarms").await;
    assert_eq!((status, list["total"].clone()), (200, json!(0)));
    // A viewer sees it but cannot acknowledge.
    assert_eq!(t.get_as(VIEWER, &path).await.0, 200);
    let (status, _) = t.post_as(VIEWER, &ack, json!({"comment": "x"}), None).await;
    assert_eq!(status, 403);
    // An empty comment is refused.
    let (status, _) = t.post_as(OP_D01, &ack, json!({"comment": " "}), None).await;
    assert_eq!(status, 422);
    let (status, body) = t
        .post_as(OP_D01, &ack, json!({"comment": "crew 3 on the way"}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "acknowledged");
    assert_eq!(body["acknowledged_by"], "op-d01");
    assert_eq!(body["comment"], "crew 3 on the way");
    let (status, _) = t
        .post_as(OP_D01, &ack, json!({"comment": "again"}), None)
        .await;
    assert_eq!(status, 409);
    // Standing: an operator cannot close it.
    let (status, _) = t
        .post_as(OP_D01, &format!("{path}/close"), json!({}), None)
        .await;
    assert_eq!(status, 409);

    // The retained set of D01 lists it.
    let active = format!("{root}/D01/alarms/active");
    eventually("D01's retained active set", || async {
        sub.seen.lock().other.iter().any(|(t, body)| {
            *t == active
                && serde_json::from_str::<Value>(body)
                    .is_ok_and(|v| v["count"] == 1 && v["alarms"][0]["id"] == id)
        })
    })
    .await;
    let (_, summary) = t.get("/api/v1/alarms/summary").await;
    assert_eq!(summary["standing"], 1, "{summary}");
    assert_eq!(summary["by_kind"]["lamp_failure"], 1, "{summary}");
    let (_, metrics) = t.get_text("/metrics").await;
    assert!(
        metrics.contains(
            "lampgw_alarms_active{kind=\"lamp_failure\",severity=\"ordinary\",district=\"D01\"} 1"
        ),
        "{metrics}"
    );

    // Repaired: cleared, and being acknowledged it closes after the hysteresis.
    t.sim.set_slc_fault(0, 1, SlcFault::default());
    eventually("cleared", || async {
        t.get(&path).await.1["state"] == "cleared"
    })
    .await;
    let (_, a) = t.get(&path).await;
    assert!(a["cleared_at"].is_string(), "{a}");
    eventually("an empty active set for D01", || async {
        sub.seen
            .lock()
            .other
            .iter()
            .rev()
            .find(|(t, _)| *t == active)
            .is_some_and(|(_, b)| serde_json::from_str::<Value>(b).is_ok_and(|v| v["count"] == 0))
    })
    .await;
    sub.stop();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_is_one_alarm_not_one_per_device() {
    let t = city(|_| {}).await;
    t.all_online().await;
    t.sim.set_endpoint_fault(1, Some(EndpointFault::Refuse));
    eventually("endpoint_down", || async {
        alarms(&t, "kind=endpoint_down").await.len() == 1
    })
    .await;
    eventually("endpoint 1's devices offline", || async {
        let live = t.live.read();
        live.rtus[1].consecutive_failures >= 6
            && t.live.inventory.lamps.iter().enumerate().all(|(i, l)| {
                !l.cabinet.ends_with("0002") || live.lamps[i].consecutive_failures >= 6
            })
    })
    .await;
    let all = alarms(&t, "").await;
    assert_eq!(
        all.len(),
        1,
        "one alarm for the endpoint and its 5 devices: {all:?}"
    );
    assert_eq!(all[0]["district"], "D02");
    assert_eq!(all[0]["cabinet"], "CAB-0002");
    assert_eq!(all[0]["severity"], "serious");
    t.sim.set_endpoint_fault(1, None);
    t.all_online().await;
    eventually("endpoint_down cleared", || async {
        alarms(&t, "kind=endpoint_down&state=cleared").await.len() == 1
    })
    .await;
    assert!(
        alarms(&t, "kind=comms_lost").await.is_empty(),
        "the devices came back with it"
    );
    t.stop().await;
}

/// Stops the gateway and starts it again on the same folder and farm.
async fn restart(t: &mut TestApp) {
    t.app.take().unwrap().shutdown().await.unwrap();
    let mut s = crate::common::test_settings(t.dir.path());
    tokens(&mut s);
    let app = lamp_gateway::startup::Application::build(s).await.unwrap();
    t.base = format!("http://{}", app.local_addr());
    t.live = app.live();
    t.app = Some(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_continues_open_alarms_without_duplicates() {
    let mut t = city(|_| {}).await;
    t.all_online().await;
    let failed = SlcFault {
        failed: true,
        ..SlcFault::default()
    };
    t.sim.set_slc_fault(0, 1, failed);
    t.sim.set_slc_fault(1, 2, failed);
    eventually("two lamp failures", || async {
        alarms(&t, "kind=lamp_failure").await.len() == 2
    })
    .await;
    let before = alarms(&t, "").await;
    // One is acknowledged before the restart; the other lamp is repaired
    // while the gateway is down.
    let on_d01 = before.iter().find(|a| a["district"] == "D01").unwrap();
    let id = on_d01["id"].as_i64().unwrap();
    let (status, _) = t
        .post_as(
            OP_D01,
            &format!("/api/v1/alarms/{id}/ack"),
            json!({"comment": "known"}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    t.app.take().unwrap().shutdown().await.unwrap();
    // Without the saved file: the store (SQLite here) gives them back.
    std::fs::remove_file(t.dir.path().join("alarms.open.json")).unwrap();
    t.sim.set_slc_fault(1, 2, SlcFault::default());
    let mut s = crate::common::test_settings(t.dir.path());
    tokens(&mut s);
    let app = lamp_gateway::startup::Application::build(s).await.unwrap();
    t.base = format!("http://{}", app.local_addr());
    t.live = app.live();
    t.app = Some(app);
    t.all_online().await;
    eventually("the repaired one cleared", || async {
        alarms(&t, "state=cleared").await.len() == 1
    })
    .await;
    let standing = alarms(&t, "state=acknowledged").await;
    assert_eq!(standing.len(), 1, "{standing:?}");
    assert_eq!(standing[0]["id"], id, "the same alarm, not a new one");
    assert_eq!(standing[0]["comment"], "known");
    assert_eq!(
        alarms(&t, "").await.len(),
        2,
        "no duplicate after the restart"
    );
    // A second restart with nothing changed: still the same two.
    restart(&mut t).await;
    t.all_online().await;
    assert_eq!(alarms(&t, "").await.len(), 2);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_fault_reopens_one_alarm_instead_of_raising_many() {
    let t = city(|_| {}).await;
    t.all_online().await;
    let failed = SlcFault {
        failed: true,
        ..SlcFault::default()
    };
    for round in 1..=3u64 {
        t.sim.set_slc_fault(1, 0, failed);
        eventually("standing", || async {
            alarms(&t, "state=active").await.len() == 1
        })
        .await;
        t.sim.set_slc_fault(1, 0, SlcFault::default());
        eventually("cleared", || async {
            alarms(&t, "state=cleared").await.len() == 1
        })
        .await;
        let all = alarms(&t, "state=all").await;
        assert_eq!(all.len(), 1, "round {round}: one alarm: {all:?}");
        assert_eq!(all[0]["occurrences"], round, "{all:?}");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receives_the_gateways_alarm_changes_signed() {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let g = got.clone();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                let sig = headers
                    .get("x-lampgw-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                g.lock()
                    .unwrap()
                    .push((sig, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                "ok"
            }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t = city(|s| {
        s.alarms
            .webhooks
            .push(lamp_gateway::alarm::WebhookSettings {
                name: Some("work-orders".into()),
                url: format!("http://{addr}/hook"),
                kinds: vec![lamp_gateway::alarm::AlarmKind::LampFailure],
                severities: Vec::new(),
                districts: vec!["D02".into()],
                secret: Some("s3cret".to_string().into()),
                timeout: Duration::from_secs(2),
                max_backoff: Duration::from_millis(100),
            });
    })
    .await;
    t.all_online().await;
    let failed = SlcFault {
        failed: true,
        ..SlcFault::default()
    };
    // D01's failure passes no filter; D02's does.
    t.sim.set_slc_fault(0, 0, failed);
    t.sim.set_slc_fault(1, 3, failed);
    eventually("the D02 raise at the receiver", || async {
        got.lock()
            .unwrap()
            .iter()
            .any(|(_, v)| v["change"] == "raised")
    })
    .await;
    t.sim.set_slc_fault(1, 3, SlcFault::default());
    eventually("the clear at the receiver", || async {
        got.lock()
            .unwrap()
            .iter()
            .any(|(_, v)| v["change"] == "cleared")
    })
    .await;
    let got = got.lock().unwrap().clone();
    assert!(got.iter().all(|(sig, v)| sig.starts_with("sha256=")
        && v["alarm"]["district"] == "D02"
        && v["alarm"]["device_id"] == lamp_id(1, 3)
        && v["gateway"].is_string()));
    let changes: Vec<&str> = got
        .iter()
        .map(|(_, v)| v["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["raised", "cleared"]);
    eventually("both counted delivered", || async {
        t.get_text("/metrics")
            .await
            .1
            .contains("lampgw_webhook_delivered_total{webhook=\"work-orders\"} 2")
    })
    .await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_alarms_are_listed_from_the_store() {
    let t = city(|_| {}).await;
    t.all_online().await;
    t.sim.set_rtu_alarms(0, true, false);
    eventually("door open", || async {
        alarms(&t, "kind=door_open").await.len() == 1
    })
    .await;
    let id = alarms(&t, "kind=door_open").await[0]["id"]
        .as_i64()
        .unwrap();
    // A false alarm: a city-wide admin closes it while it stands.
    let (status, body) = t
        .post(&format!("/api/v1/alarms/{id}/close"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "closed");
    assert!(alarms(&t, "").await.is_empty(), "not open any more");
    eventually("closed, from the store", || async {
        let closed = alarms(&t, "state=closed").await;
        closed.len() == 1
            && closed[0]["id"] == id
            && closed[0]["detail"]["closed_by"] == "test-admin"
    })
    .await;
    let (status, one) = t.get(&format!("/api/v1/alarms/{id}")).await;
    assert_eq!((status, one["state"].clone()), (200, json!("closed")));
    assert_eq!(
        t.get_as(OP_D02, &format!("/api/v1/alarms/{id}")).await.0,
        404
    );
    let (_, page) = t.get_as(OP_D02, "/api/v1/alarms?state=all").await;
    assert_eq!(page["total"], 0, "D02 sees none of D01's, closed or not");
    // It stays closed: the open door raises nothing more until it shuts.
    t.sim.set_rtu_alarms(0, false, false);
    eventually("a poll saw the door shut", || async {
        t.live.read().rtus[0]
            .reading
            .as_ref()
            .is_some_and(|r| !r.door_alarm)
    })
    .await;
    t.sim.set_rtu_alarms(0, true, false);
    eventually(
        "a new alarm after the door shut and opened again",
        || async { alarms(&t, "kind=door_open").await.len() == 1 },
    )
    .await;
    assert_ne!(alarms(&t, "kind=door_open").await[0]["id"], id);
    t.stop().await;
}
