//! District scope: to a token confined to a district, another district's
//! lamps, cabinets, circuits, districts, groups and commands do not exist —
//! every answer is the one an unknown id gets (same status, same code, the
//! same message but for the id asked about), and every count is of what the
//! token sees.

use crate::common::{lamp_id, spawn_app_with, TestApp, ADMIN_TOKEN};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::{json, Value};

const NORTH_OP: &str = "lgw_test_scope_north_operator";

/// Endpoint i is in district D0(i%2+1): endpoints 0 and 2 (cabinets
/// CAB-0001, CAB-0003) in D01, endpoint 1 (CAB-0002) in D02.
async fn two_districts() -> TestApp {
    let t = spawn_app_with(
        SimConfig {
            endpoints: 3,
            slcs_per_endpoint: 2,
            districts: 2,
            ..SimConfig::default()
        },
        InventoryOptions {
            cabinets_without_rtu: 0,
            lamps_without_slc_per_cabinet: 0,
        },
        |s| {
            s.auth.tokens.push(TokenConfig {
                name: "north-operator".into(),
                hash: hash_token(NORTH_OP),
                role: Role::Operator,
                district: Some("D01".into()),
            })
        },
    )
    .await;
    t.all_online().await;
    t
}

async fn put_group(t: &TestApp, name: &str, lamps: &[String]) {
    let r = t
        .http
        .put(format!("{}/api/v1/groups/{name}", t.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "lamps": lamps }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// The answer to `other` must be the answer to `unknown`, `other_id` standing
/// for `unknown_id` in the message, which must not name D02 otherwise.
fn same_answer(what: &str, other: &(u16, Value), unknown: &(u16, Value), ids: (&str, &str)) {
    assert!(other.0 >= 400, "{what}: {} {}", other.0, other.1);
    assert_eq!(other.0, unknown.0, "{what}: {} vs {}", other.1, unknown.1);
    assert_eq!(
        other.1["error"]["code"], unknown.1["error"]["code"],
        "{what}: {} vs {}",
        other.1, unknown.1
    );
    let message = other.1["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        message.replace(ids.0, ids.1),
        unknown.1["error"]["message"].as_str().unwrap_or_default(),
        "{what}"
    );
    if ids.0 != "D02" {
        assert!(!message.contains("D02"), "{what}: {message}");
    }
}

#[tokio::test]
async fn groups_are_shown_with_the_callers_lamps_only() {
    let t = two_districts().await;
    let (north, south) = (lamp_id(0, 0), lamp_id(1, 0));
    put_group(&t, "mixed", &[north.clone(), south.clone()]).await;
    put_group(&t, "south", &[south.clone(), lamp_id(1, 1)]).await;
    put_group(&t, "empty", &[]).await;

    // The city sees them as defined.
    let (status, all) = t.get_as(ADMIN_TOKEN, "/api/v1/groups").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["mixed"], json!([north, south]));
    assert_eq!(all["south"].as_array().unwrap().len(), 2);
    assert_eq!(all["empty"], json!([]));

    // North sees "mixed" with its lamp only; "south" and "empty" not at all.
    let (status, seen) = t.get_as(NORTH_OP, "/api/v1/groups").await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen, json!({ "mixed": [north] }));
    let (status, one) = t.get_as(NORTH_OP, "/api/v1/groups/mixed").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one, json!({ "name": "mixed", "lamps": [north] }));
    let unknown = t.get_as(NORTH_OP, "/api/v1/groups/nobody").await;
    assert_eq!(unknown.0, 404, "{}", unknown.1);
    for name in ["south", "empty"] {
        let other = t.get_as(NORTH_OP, &format!("/api/v1/groups/{name}")).await;
        same_answer(name, &other, &unknown, (name, "nobody"));
    }

    // A command on "mixed" acts on the group as north sees it.
    let (status, accepted) = t
        .post_as(
            NORTH_OP,
            "/api/v1/commands",
            json!({"target": {"group": "mixed"}, "action": "off"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let done = t.command_done(accepted["id"].as_str().unwrap()).await;
    let targets: Vec<&str> = done["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(targets, [north.as_str()], "{done}");
    assert!(
        t.sim.slc_values(1, 0).switch,
        "the south lamp was not touched"
    );
    t.stop().await;
}

#[tokio::test]
async fn transitions_total_counts_what_the_caller_sees() {
    let t = two_districts().await;
    // Each device's first successful poll is its `came online` transition:
    // 3 RTUs and 6 SLCs, of which D01 has 2 RTUs and 4 SLCs. Taken until two
    // reads agree, in case a device flaps between them.
    let consistent = || async {
        let (_, city) = t.get_as(ADMIN_TOKEN, "/api/v1/transitions").await;
        let (_, north) = t.get_as(NORTH_OP, "/api/v1/transitions").await;
        let len = |v: &Value| v["items"].as_array().map_or(0, Vec::len) as u64;
        let d01 = city["items"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|i| i["district"] == "D01").count())
            as u64;
        let ok = city["total"] == len(&city)
            && len(&city) >= 9
            && north["total"] == len(&north)
            && len(&north) == d01
            && d01 >= 6;
        (ok, city, north)
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (ok, city, north) = consistent().await;
        if ok {
            assert!(
                north["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|i| i["district"] == "D01"),
                "{north}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "north's total is not its own count: city {city} / north {north}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    t.stop().await;
}

#[tokio::test]
async fn another_districts_things_answer_as_unknown_ones() {
    let t = two_districts().await;
    put_group(&t, "south", &[lamp_id(1, 0)]).await;
    let (other_lamp, unknown_lamp) = (lamp_id(1, 0), "LX-9999-001".to_string());
    let command = |target: Value| json!({"target": target, "action": "off"});
    let post = |path: String, body: Value| {
        let t = &t;
        async move { t.post_as(NORTH_OP, &path, body, None).await }
    };

    // Selectors on /commands.
    let cases: Vec<(&str, Value, Value, (&str, &str))> = vec![
        (
            "lamps",
            json!({"lamps": [lamp_id(0, 0), other_lamp]}),
            json!({"lamps": [lamp_id(0, 0), unknown_lamp]}),
            (&other_lamp, &unknown_lamp),
        ),
        (
            "cabinet",
            json!({"cabinet": "CAB-0002"}),
            json!({"cabinet": "CAB-9999"}),
            ("CAB-0002", "CAB-9999"),
        ),
        (
            "circuit",
            json!({"circuit": {"cabinet": "CAB-0002", "circuit": 1}}),
            json!({"circuit": {"cabinet": "CAB-9999", "circuit": 1}}),
            ("CAB-0002", "CAB-9999"),
        ),
        (
            "district",
            json!({"district": "D02"}),
            json!({"district": "D99"}),
            ("D02", "D99"),
        ),
        (
            "group",
            json!({"group": "south"}),
            json!({"group": "nobody"}),
            ("south", "nobody"),
        ),
    ];
    for (what, other, unknown, ids) in cases {
        let o = post("/api/v1/commands".into(), command(other)).await;
        let u = post("/api/v1/commands".into(), command(unknown)).await;
        same_answer(what, &o, &u, ids);
    }
    // A lamp's own command path.
    let o = post(
        format!("/api/v1/lamps/{other_lamp}/commands"),
        json!({"action": "on"}),
    )
    .await;
    let u = post(
        format!("/api/v1/lamps/{unknown_lamp}/commands"),
        json!({"action": "on"}),
    )
    .await;
    same_answer("lamp path", &o, &u, (&other_lamp, &unknown_lamp));
    assert!(
        t.sim.slc_values(1, 0).switch,
        "the south lamp was not touched"
    );

    // Filters and lookups on GET.
    for (other, unknown, ids) in [
        (
            "/api/v1/lamps?district=D02",
            "/api/v1/lamps?district=D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/lamps?cabinet=CAB-0002",
            "/api/v1/lamps?cabinet=CAB-9999",
            ("CAB-0002", "CAB-9999"),
        ),
        (
            "/api/v1/cabinets?district=D02",
            "/api/v1/cabinets?district=D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/rtus?district=D02",
            "/api/v1/rtus?district=D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/metrics/summary?district=D02",
            "/api/v1/metrics/summary?district=D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/metrics/alarms?from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z&district=D02",
            "/api/v1/metrics/alarms?from=2025-03-01T00:00:00Z&to=2025-03-02T00:00:00Z&district=D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/metrics/roads?district=D02",
            "/api/v1/metrics/roads?district=D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/metrics/lighting?district=D02",
            "/api/v1/metrics/lighting?district=D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/districts/D02",
            "/api/v1/districts/D99",
            ("D02", "D99"),
        ),
        (
            "/api/v1/cabinets/CAB-0002",
            "/api/v1/cabinets/CAB-9999",
            ("CAB-0002", "CAB-9999"),
        ),
        (
            "/api/v1/rtus/RTU-0002",
            "/api/v1/rtus/RTU-9999",
            ("RTU-0002", "RTU-9999"),
        ),
    ] {
        let o = t.get_as(NORTH_OP, other).await;
        let u = t.get_as(NORTH_OP, unknown).await;
        same_answer(other, &o, &u, ids);
    }

    // A command the city sent to D02 is not there for north.
    let (status, accepted) = t
        .post(
            &format!("/api/v1/lamps/{other_lamp}/commands"),
            json!({"action": "on"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap();
    t.command_done(id).await;
    let o = t.get_as(NORTH_OP, &format!("/api/v1/commands/{id}")).await;
    let u = t.get_as(NORTH_OP, "/api/v1/commands/cmd-nope").await;
    same_answer("command", &o, &u, (id, "cmd-nope"));
    t.stop().await;
}
