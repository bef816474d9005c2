//! Remote control end to end: commands reach the simulator over Modbus, are
//! confirmed by reading back, fail with the right reason, respect roles and
//! districts, are idempotent, expire, and are audited.

use crate::common::{eventually, lamp_id, spawn_app_with, TestApp, ADMIN_TOKEN};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_sim::{EndpointFault, InventoryOptions, SimConfig, SlcFault};
use serde_json::{json, Value};

const VIEWER: &str = "lgw_test_viewer";
const NORTH_OP: &str = "lgw_test_north_operator";

async fn city(profile: &str, offline_after: u32) -> TestApp {
    let t = spawn_app_with(
        SimConfig {
            endpoints: 3,
            slcs_per_endpoint: 4,
            districts: 2,
            slc_profile: profile.into(),
            ..SimConfig::default()
        },
        InventoryOptions {
            cabinets_without_rtu: 0,
            lamps_without_slc_per_cabinet: 1,
        },
        |s| {
            s.poll.offline_after = offline_after;
            for (name, token, role, district) in [
                ("viewer", VIEWER, Role::Viewer, None),
                (
                    "north-operator",
                    NORTH_OP,
                    Role::Operator,
                    Some("D01".to_string()),
                ),
            ] {
                s.auth.tokens.push(TokenConfig {
                    name: name.into(),
                    hash: hash_token(token),
                    role,
                    district,
                });
            }
        },
    )
    .await;
    t.all_online().await;
    t
}

async fn command(t: &TestApp, path: &str, body: Value) -> Value {
    let (status, accepted) = t.post(path, body).await;
    assert_eq!(status, 202, "{accepted}");
    t.command_done(accepted["id"].as_str().unwrap()).await
}

fn only_target(c: &Value) -> &Value {
    assert_eq!(c["targets"].as_array().unwrap().len(), 1, "{c}");
    &c["targets"][0]
}

#[tokio::test]
async fn switch_dim_and_circuit_reach_the_devices() {
    for profile in ["slc-a-unit", "slc-b-block"] {
        let t = city(profile, 3).await;
        let lamp = lamp_id(0, 1);
        let c = command(
            &t,
            &format!("/api/v1/lamps/{lamp}/commands"),
            json!({"action": "dim", "level": 40}),
        )
        .await;
        let target = only_target(&c);
        assert_eq!(target["state"], "confirmed", "{c}");
        assert_eq!(
            target["readback"],
            json!({"dim_level": 40.0, "switch": 1.0}),
            "{c}"
        );
        assert_eq!(t.sim.slc_values(0, 1).dim_level, 40.0, "{profile}");

        let c = command(
            &t,
            &format!("/api/v1/lamps/{lamp}/commands"),
            json!({"action": "off"}),
        )
        .await;
        assert_eq!(only_target(&c)["state"], "confirmed");
        assert!(!t.sim.slc_values(0, 1).switch);
        eventually("the next poll shows the lamp off", || async {
            let l = t.lamp(&lamp).await;
            l["slc"]["values"]["on"] == false && l["slc"]["values"]["power"] == 0.0
        })
        .await;

        // A whole cabinet, then circuit 2 of endpoint 1's cabinet off: lamp 1
        // (circuit j%4+1 = 2) loses its supply in the next poll.
        let c = command(
            &t,
            "/api/v1/commands",
            json!({"target": {"cabinet": "CAB-0001"}, "action": "on"}),
        )
        .await;
        assert_eq!(
            c["tally"]["confirmed"], 4,
            "the lamp without SLC is not a target: {c}"
        );
        let c = command(
            &t,
            "/api/v1/commands",
            json!({"target": {"circuit": {"cabinet": "CAB-0002", "circuit": 2}}, "action": "off"}),
        )
        .await;
        let target = only_target(&c);
        assert_eq!(target["state"], "confirmed", "{c}");
        assert_eq!(target["id"], "CAB-0002#2");
        assert!(!t.sim.rtu_values(1).contactors[1]);
        eventually("circuit 2's lamp unpowered", || async {
            let l = t.lamp(&lamp_id(1, 1)).await;
            l["slc"]["values"]["voltage"] == 0.0 && l["slc"]["values"]["power"] == 0.0
        })
        .await;
        assert!(
            t.lamp(&lamp_id(1, 0)).await["slc"]["values"]["voltage"]
                .as_f64()
                .unwrap()
                > 150.0
        );
        t.stop().await;
    }
}

#[tokio::test]
async fn failures_end_with_their_reason() {
    // Devices stay "online" for many polls here, so the write itself meets
    // the fault rather than the offline check.
    let t = city("slc-a-unit", 1_000).await;
    t.sim.set_slc_fault(
        0,
        2,
        SlcFault {
            exception: Some(4),
            ..Default::default()
        },
    );
    let c = command(
        &t,
        &format!("/api/v1/lamps/{}/commands", lamp_id(0, 2)),
        json!({"action": "off"}),
    )
    .await;
    let target = only_target(&c);
    assert_eq!(target["state"], "failed");
    assert_eq!(target["reason"], json!({"kind": "exception", "code": 4}));
    assert_eq!(target["attempts"], 1, "an exception is an answer: no retry");

    t.sim.set_endpoint_fault(1, Some(EndpointFault::Silent));
    let started = std::time::Instant::now();
    let c = command(
        &t,
        &format!("/api/v1/lamps/{}/commands", lamp_id(1, 0)),
        json!({"action": "off"}),
    )
    .await;
    let target = only_target(&c);
    assert_eq!(target["state"], "failed", "{c}");
    assert_eq!(target["reason"]["kind"], "timeout", "{c}");
    assert_eq!(target["attempts"], 2, "bounded retries");
    // Bounded: two attempts of one 300 ms request timeout each, plus the
    // poll that may have been in flight; far below this generous ceiling.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    t.stop().await;

    let t = city("slc-a-unit", 3).await;
    t.sim.set_endpoint_fault(2, Some(EndpointFault::Refuse));
    eventually("endpoint 2 offline", || async {
        t.lamp(&lamp_id(2, 0)).await["slc"]["online"] == false
    })
    .await;
    let c = command(
        &t,
        &format!("/api/v1/lamps/{}/commands", lamp_id(2, 0)),
        json!({"action": "on"}),
    )
    .await;
    let target = only_target(&c);
    assert_eq!(target["reason"], json!({"kind": "offline"}));
    assert_eq!(
        target["attempts"], 0,
        "an offline target fails fast, unwritten"
    );
    t.stop().await;
}

#[tokio::test]
async fn roles_and_districts() {
    let t = city("slc-a-unit", 3).await;
    let path = format!("/api/v1/lamps/{}/commands", lamp_id(0, 0));
    let r = t
        .http
        .post(format!("{}{path}", t.base))
        .json(&json!({"action": "on"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (status, body) = t
        .post_as(VIEWER, &path, json!({"action": "on"}), None)
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    // Endpoint 0 is in D01, endpoint 1 in D02.
    let (status, _) = t
        .post_as(NORTH_OP, &path, json!({"action": "on"}), None)
        .await;
    assert_eq!(status, 202);
    let other = format!("/api/v1/lamps/{}/commands", lamp_id(1, 0));
    assert_eq!(
        t.post_as(NORTH_OP, &other, json!({"action": "on"}), None)
            .await
            .0,
        404
    );
    // Another district's things are unknown to it, not forbidden (the
    // answer for each kind of id is compared in scope.rs).
    for (target, status) in [
        (json!({"district": "D02"}), 422),
        (json!({"lamps": [lamp_id(0, 0), lamp_id(1, 0)]}), 404),
        (json!({"cabinet": "CAB-0002"}), 422),
    ] {
        let (got, body) = t
            .post_as(
                NORTH_OP,
                "/api/v1/commands",
                json!({"target": target, "action": "off"}),
                None,
            )
            .await;
        assert_eq!(got, status, "{target}: {body}");
        assert!(!body.to_string().contains("D02") || target["district"] == "D02");
    }
    t.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_the_field_named() {
    let t = city("slc-a-unit", 3).await;
    let lamp = format!("/api/v1/lamps/{}/commands", lamp_id(0, 0));
    let cases = [
        (
            "/api/v1/lamps/NOPE/commands".to_string(),
            json!({"action": "on"}),
            404,
            "",
        ),
        (
            lamp.clone(),
            json!({"action": "dim", "level": 150}),
            422,
            "level",
        ),
        (
            lamp.clone(),
            json!({"action": "dim", "level": "bright"}),
            422,
            "level",
        ),
        (lamp.clone(), json!({"action": "blink"}), 422, "action"),
        (lamp.clone(), json!({"action": "dim"}), 422, "level"),
        (
            format!("/api/v1/lamps/{}/commands", "LX-0001-N01"),
            json!({"action": "on"}),
            422,
            "no single-lamp controller",
        ),
        (
            "/api/v1/commands".into(),
            json!({"target": {"circuit": {"cabinet": "CAB-0001", "circuit": 9}}, "action": "off"}),
            422,
            "circuit",
        ),
        (
            "/api/v1/commands".into(),
            json!({"target": {"circuit": {"cabinet": "CAB-0001", "circuit": 1}}, "action": "dim", "level": 5}),
            422,
            "action",
        ),
        (
            "/api/v1/commands".into(),
            json!({"target": {"group": "nobody"}, "action": "on"}),
            422,
            "group",
        ),
        (
            "/api/v1/commands".into(),
            json!({"target": {"lamps": []}, "action": "on"}),
            422,
            "matches no lamp",
        ),
        (
            "/api/v1/commands".into(),
            json!({"action": "on"}),
            422,
            "target",
        ),
    ];
    for (path, body, status, needle) in cases {
        let (got, reply) = t.post(&path, body.clone()).await;
        assert_eq!(got, status, "{path} {body}: {reply}");
        let msg = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let r = t
        .http
        .post(format!("{}{lamp}", t.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    t.stop().await;
}

#[tokio::test]
async fn idempotent_retries_expiry_and_audit() {
    let t = city("slc-a-unit", 3).await;
    let from = chrono::Utc::now();
    let path = format!("/api/v1/lamps/{}/commands", lamp_id(2, 3));
    let (s1, a) = t
        .post_as(
            ADMIN_TOKEN,
            &path,
            json!({"action": "off"}),
            Some("retry-1"),
        )
        .await;
    let (s2, b) = t
        .post_as(
            ADMIN_TOKEN,
            &path,
            json!({"action": "off"}),
            Some("retry-1"),
        )
        .await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a["id"], b["id"], "the retry returns the first command");
    t.command_done(a["id"].as_str().unwrap()).await;

    // An override for 1.5 s: dim to 30, then the lamp goes back to off.
    let expires = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let c = command(
        &t,
        &path,
        json!({"action": "dim", "level": 30, "expires_at": expires}),
    )
    .await;
    assert_eq!(only_target(&c)["state"], "confirmed");
    assert!(t.sim.slc_values(2, 3).switch);
    eventually("the override expired and the lamp is off again", || async {
        let v = t.sim.slc_values(2, 3);
        !v.switch
    })
    .await;

    // A group defined through the API, switched as one.
    let group = json!({"lamps": [lamp_id(0, 0), lamp_id(2, 0)]});
    let r = t
        .http
        .put(format!("{}/api/v1/groups/avenue", t.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&group)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c = command(
        &t,
        "/api/v1/commands",
        json!({"target": {"group": "avenue"}, "action": "off"}),
    )
    .await;
    assert_eq!(c["tally"]["confirmed"], 2);

    let to = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    // The audit trail is written to the store asynchronously, like samples.
    let audit_path = format!(
        "/api/v1/audit?from={}&to={}",
        urlencode(&from.to_rfc3339()),
        urlencode(&to)
    );
    eventually("four commands in the stored audit trail", || async {
        t.get(&audit_path).await.1["total"] == 4
    })
    .await;
    let (status, audit) = t.get(&audit_path).await;
    assert_eq!(status, 200, "{audit}");
    let rows = audit["items"].as_array().unwrap();
    let summary: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["source"].as_str().unwrap().to_string(),
                r["action"]["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // off (once, despite the retry), dim, the expiry's restore (off), group off.
    assert_eq!(rows.len(), 4, "{audit}");
    assert_eq!(
        summary,
        [
            ("api", "off"),
            ("api", "dim"),
            ("expiry", "off"),
            ("api", "off")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
        "{audit}"
    );
    assert!(rows.iter().all(|r| r["outcome"]["failed"] == 0), "{audit}");
    assert_eq!(rows[0]["actor"], "test-admin");
    t.stop().await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

/// The audit trail is a row per command in the store: it outlives the
/// gateway, and a new gateway on the same PostgreSQL database serves it.
#[tokio::test]
async fn audit_rows_are_kept_in_postgres_across_restarts() {
    let db = crate::common::db::PgTestDb::new().await;
    let url = db.url();
    let sim_cfg = || SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 2,
        ..SimConfig::default()
    };
    let with_pg = |s: &mut lamp_gateway::settings::Settings| s.store.url = url.parse().unwrap();
    let from = chrono::Utc::now();
    let t = spawn_app_with(sim_cfg(), InventoryOptions::default(), with_pg).await;
    t.all_online().await;
    command(
        &t,
        &format!("/api/v1/lamps/{}/commands", lamp_id(0, 0)),
        json!({"action": "off"}),
    )
    .await;
    command(
        &t,
        &format!("/api/v1/lamps/{}/commands", lamp_id(1, 1)),
        json!({"action": "dim", "level": 20}),
    )
    .await;
    t.stop().await;

    let t = spawn_app_with(sim_cfg(), InventoryOptions::default(), with_pg).await;
    let to = chrono::Utc::now().to_rfc3339();
    let (status, audit) = t
        .get(&format!(
            "/api/v1/audit?from={}&to={}",
            urlencode(&from.to_rfc3339()),
            urlencode(&to)
        ))
        .await;
    assert_eq!(status, 200, "{audit}");
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{audit}");
    assert_eq!(items[0]["selector"], json!({"lamps": [lamp_id(0, 0)]}));
    assert_eq!(items[0]["action"], json!({"action": "off"}));
    assert_eq!(items[1]["action"], json!({"action": "dim", "level": 20.0}));
    assert_eq!(items[1]["results"][0]["state"], "confirmed");
    assert!(items
        .iter()
        .all(|i| i["actor"] == "test-admin" && i["source"] == "api"));
    let (_, by_actor) = t
        .get(&format!(
            "/api/v1/audit?from={}&to={}&actor=nobody",
            urlencode(&from.to_rfc3339()),
            urlencode(&to)
        ))
        .await;
    assert_eq!(by_actor["total"], 0);
    t.stop().await;
    db.drop_db().await;
}
