//! Every /api/v1 path needs a token; a district-scoped token sees only its
//! own district: other districts' things are unknown to it (404 by path,
//! 400 as a filter, as an unknown id).

use crate::common::{lamp_id, rtu_id, spawn_app_with, ADMIN_TOKEN};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_sim::{InventoryOptions, SimConfig};

const NORTH: &str = "lgw_test_north_viewer";

#[tokio::test]
async fn tokens_roles_and_district_scope() {
    // Endpoint i is in district D0(i%2+1): endpoints 0 and 2 in D01, 1 in D02.
    let t = spawn_app_with(
        SimConfig {
            endpoints: 3,
            slcs_per_endpoint: 2,
            districts: 2,
            ..SimConfig::default()
        },
        InventoryOptions::default(),
        |s| {
            s.auth.tokens.push(TokenConfig {
                name: "north".into(),
                hash: hash_token(NORTH),
                role: Role::Viewer,
                district: Some("D01".into()),
            })
        },
    )
    .await;
    t.all_online().await;

    // No token, a wrong token: 401 with the JSON error shape.
    let r = t
        .http
        .get(format!("{}/api/v1/lamps", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_eq!(t.get_as("lgw_nope", "/api/v1/lamps").await.0, 401);
    // Health stays open.
    let r = t
        .http
        .get(format!("{}/healthz", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The admin sees all 6 lamps; the north viewer its 4.
    assert_eq!(t.get_as(ADMIN_TOKEN, "/api/v1/lamps").await.1["total"], 6);
    let (status, north) = t.get_as(NORTH, "/api/v1/lamps").await;
    assert_eq!(status, 200);
    assert_eq!(north["total"], 4);
    assert!(north["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["district"] == "D01"));

    // Another district's lamp, RTU, cabinet and district are 404 to it.
    assert_eq!(
        t.get_as(NORTH, &format!("/api/v1/lamps/{}", lamp_id(0, 0)))
            .await
            .0,
        200
    );
    for path in [
        format!("/api/v1/lamps/{}", lamp_id(1, 0)),
        format!("/api/v1/rtus/{}", rtu_id(1)),
        "/api/v1/cabinets/CAB-0002".to_string(),
        "/api/v1/districts/D02".to_string(),
        format!(
            "/api/v1/lamps/{}/history?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z",
            lamp_id(1, 0)
        ),
        format!(
            "/api/v1/rtus/{}/history?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z",
            rtu_id(1)
        ),
    ] {
        let (status, body) = t.get_as(NORTH, &path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    // As a filter, another district is an unknown one: 400 (scope.rs
    // compares every such answer with the unknown id's).
    let (status, body) = t.get_as(NORTH, "/api/v1/lamps?district=D02").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["message"], "unknown district `D02`");
    assert_eq!(t.get_as(NORTH, "/api/v1/rtus").await.1["total"], 2);
    assert_eq!(t.get_as(NORTH, "/api/v1/districts").await.1["total"], 1);

    // Its figures are its district's; no city total.
    let (_, summary) = t.get_as(NORTH, "/api/v1/metrics/summary").await;
    assert_eq!(summary["scope"], "D01");
    assert_eq!(summary["slcs_installed"], 4);
    let (_, all) = t.get_as(NORTH, "/api/v1/metrics/districts").await;
    assert!(all["city"].is_null());
    assert_eq!(all["districts"].as_array().unwrap().len(), 1);
    t.stop().await;
}
