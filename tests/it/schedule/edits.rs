//! Who edits the night plan: a district operator edits assignments and
//! emergency shifts within their district only — another district's
//! objects do not exist for them (the same 404 as an unknown id, the same
//! 422 as an unknown scope) — and not programs or calendars; a city-wide
//! admin edits everything; a viewer nothing.

use super::{local, Night};
use crate::common::ADMIN_TOKEN;
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use reqwest::Method;
use serde_json::{json, Value};

const OP_D01: &str = "lgw_test_operator_d01";
const VIEWER: &str = "lgw_test_viewer";

fn shift(id: &str, scope: Value) -> Value {
    json!({"id": id, "scope": scope,
           "from": "2026-12-21T08:00:00Z", "until": "2026-12-22T02:00:00Z",
           "on_earlier_min": 20})
}

fn assignment(id: &str, scope: Value) -> Value {
    json!({"id": id, "calendar": "city", "scope": scope})
}

/// The error's message with the ids named in it replaced, to compare two
/// refusals.
fn message(b: &Value, ids: &[&str]) -> String {
    let mut m = b["error"]["message"].as_str().unwrap_or("").to_string();
    for id in ids {
        m = m.replace(id, "ID");
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn district_operators_edit_within_their_district_only() {
    let n = Night::start_with(local("2026-12-21", "12:00"), |s| {
        s.auth.tokens.push(TokenConfig {
            name: "op-d01".into(),
            hash: hash_token(OP_D01),
            role: Role::Operator,
            district: Some("D01".into()),
        });
        s.auth.tokens.push(TokenConfig {
            name: "viewer".into(),
            hash: hash_token(VIEWER),
            role: Role::Viewer,
            district: None,
        });
    })
    .await;
    let put = |token: &'static str, path: String, body: Value| {
        let n = &n;
        async move { n.call(Method::PUT, token, &path, Some(body)).await }
    };
    let delete = |token: &'static str, path: String| {
        let n = &n;
        async move { n.call(Method::DELETE, token, &path, None).await }
    };

    // The admin puts one shift and one assignment in each district.
    for d in ["D01", "D02"] {
        let (s, b) = put(
            ADMIN_TOKEN,
            format!("/api/v1/emergency-shifts/fog-{d}"),
            shift(&format!("fog-{d}"), json!({"district": d})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = put(
            ADMIN_TOKEN,
            format!("/api/v1/assignments/a-{d}"),
            assignment(&format!("a-{d}"), json!({"district": d})),
        )
        .await;
        assert_eq!(s, 200, "{b}");
    }

    // The operator sees D01's and none of D02's.
    let (s, book) = n.call(Method::GET, OP_D01, "/api/v1/schedules", None).await;
    assert_eq!(s, 200, "{book}");
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&book["emergency_shifts"]), ["fog-D01"]);
    assert_eq!(ids(&book["assignments"]), ["a-D01"]);
    // Programs and calendars are city-wide: listed, not editable.
    assert_eq!(ids(&book["programs"]), ["night", "holiday"]);

    // Within D01: edits, creates and deletes.
    let (s, b) = put(
        OP_D01,
        "/api/v1/emergency-shifts/fog-D01".into(),
        shift("fog-D01", json!({"district": "D01"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = put(
        OP_D01,
        "/api/v1/emergency-shifts/cab".into(),
        shift("cab", json!({"cabinet": "CAB-0001"})),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = delete(OP_D01, "/api/v1/emergency-shifts/cab".into()).await;
    assert_eq!(s, 204);

    // D02's objects do not exist for them: replacing or deleting one is the
    // 404 of an id nobody has.
    for kind in ["emergency-shifts", "assignments"] {
        let other = if kind == "assignments" {
            "a-D02"
        } else {
            "fog-D02"
        };
        let (s_other, b_other) = delete(OP_D01, format!("/api/v1/{kind}/{other}")).await;
        let (s_none, b_none) = delete(OP_D01, format!("/api/v1/{kind}/nobody")).await;
        assert_eq!((s_other, s_none), (404, 404), "{b_other} {b_none}");
        assert_eq!(
            message(&b_other, &[other]),
            message(&b_none, &["nobody"]),
            "{kind}: another district's reads as unknown"
        );
        let body = if kind == "assignments" {
            assignment(other, json!({"district": "D01"}))
        } else {
            shift(other, json!({"district": "D01"}))
        };
        let (s, b) = put(OP_D01, format!("/api/v1/{kind}/{other}"), body).await;
        assert_eq!(s, 404, "{kind}: {b}");
        assert_eq!(b["error"]["code"], b_none["error"]["code"], "{b}");
    }

    // A scope in D02 is refused as an unknown one (the same 422): district,
    // cabinet, circuit, lamps.
    let unknown = put(
        OP_D01,
        "/api/v1/emergency-shifts/x".into(),
        shift("x", json!({"district": "D99"})),
    )
    .await;
    assert_eq!(unknown.0, 422, "{}", unknown.1);
    for scope in [
        json!({"district": "D02"}),
        json!({"cabinet": "CAB-0002"}),
        json!({"circuit": {"cabinet": "CAB-0002", "circuit": 1}}),
        json!({"lamps": ["LX-0001-001", "LX-0002-001"]}),
        json!("city"),
    ] {
        let got = put(
            OP_D01,
            "/api/v1/emergency-shifts/x".into(),
            shift("x", scope.clone()),
        )
        .await;
        assert_eq!(got.0, 422, "{scope}: {}", got.1);
        assert_eq!(got.1, unknown.1, "{scope}: as unknown");
        let got = put(
            OP_D01,
            "/api/v1/assignments/x".into(),
            assignment("x", scope.clone()),
        )
        .await;
        assert_eq!(got.0, 422, "{scope}: {}", got.1);
        assert_eq!(got.1, unknown.1, "{scope}: as unknown");
    }

    // Programs and calendars: 403 to a district operator.
    let (s, b) = put(
        OP_D01,
        "/api/v1/programs/night".into(),
        json!({"id": "night", "points": [{"sun": "sunset", "level": "on"}]}),
    )
    .await;
    assert_eq!(s, 403, "{b}");
    let (s, b) = delete(OP_D01, "/api/v1/calendars/city".into()).await;
    assert_eq!(s, 403, "{b}");
    // A viewer edits nothing.
    let (s, b) = put(
        VIEWER,
        "/api/v1/emergency-shifts/fog-D01".into(),
        shift("fog-D01", json!({"district": "D01"})),
    )
    .await;
    assert_eq!(s, 403, "{b}");

    // Nothing of D02 changed; the admin edits it city-wide.
    let (_, book) = n.get("/api/v1/schedules").await;
    assert_eq!(ids(&book["emergency_shifts"]), ["fog-D01", "fog-D02"]);
    assert_eq!(ids(&book["assignments"]), ["all", "a-D01", "a-D02"]);
    let (s, _) = delete(ADMIN_TOKEN, "/api/v1/emergency-shifts/fog-D02".into()).await;
    assert_eq!(s, 204);
    let (s, b) = put(
        ADMIN_TOKEN,
        "/api/v1/programs/night".into(),
        json!({"id": "night", "points": [{"sun": "sunset", "level": "on"}, {"sun": "sunrise", "level": "off"}]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    n.stop().await;
}
