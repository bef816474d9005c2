//! The OpenAPI document, `GET /api/v1/openapi.json`: served without a token,
//! and it describes every route the router serves — `api::ROUTES`, the table
//! the router is built from — with its methods, path parameters and access,
//! and nothing else. A route added to the table without an `#[utoipa::path]`
//! in `api/openapi.rs` fails here.

use crate::common::spawn_app;
use lamp_gateway::api::{Access, ROUTES};
use lamp_sim::SimConfig;
use serde_json::Value;

fn small() -> SimConfig {
    SimConfig {
        endpoints: 1,
        slcs_per_endpoint: 2,
        ..SimConfig::default()
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `{id}` → `id`, for each parameter of a path.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Whether an operation demands the bearer token: every requirement it
/// lists names `bearer` (an empty one, `{}`, makes the token optional).
fn demands_token(op: &Value) -> bool {
    match op["security"].as_array() {
        Some(reqs) if !reqs.is_empty() => reqs.iter().all(|r| r.get("bearer").is_some()),
        _ => false,
    }
}

#[tokio::test]
async fn the_document_describes_every_route_of_the_router_and_no_other() {
    let app = spawn_app(small()).await;
    // No token: the document describes the API, not the city.
    let r = app
        .http
        .get(format!("{}/api/v1/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["info"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("District scope")));

    let mut problems = Vec::new();
    for route in ROUTES {
        let method = route.method.as_str().to_ascii_lowercase();
        let what = format!("{} {}", route.method, route.path);
        let op = &doc["paths"][route.path][&method];
        if !op.is_object() {
            problems.push(format!("{what}: not in the document"));
            continue;
        }
        let documented: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let mut expected = path_parameters(route.path);
        let mut documented_sorted = documented.clone();
        expected.sort_unstable();
        documented_sorted.sort_unstable();
        if expected != documented_sorted {
            problems.push(format!(
                "{what}: path parameters {documented:?}, the path has {expected:?}"
            ));
        }
        let token = route.access == Access::Token;
        if demands_token(op) != token {
            problems.push(format!(
                "{what}: the document says the token is {}required, the router {:?}",
                if demands_token(op) { "" } else { "not " },
                route.access
            ));
        }
        if token && !op["responses"]["401"].is_object() {
            problems.push(format!("{what}: needs a token but documents no 401"));
        }
        if route.access != Access::Probe && !op["responses"]["503"].is_object() {
            problems.push(format!(
                "{what}: within api.max_concurrent but documents no 503"
            ));
        }
    }
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in item.as_object().into_iter().flat_map(|o| o.keys()) {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let served = ROUTES
                .iter()
                .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method));
            if !served {
                problems.push(format!("{method} {path}: documented, not routed"));
            }
        }
    }
    // Client generators name a method after its operationId: one each.
    let mut ids = std::collections::BTreeMap::<&str, Vec<String>>::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            if let Some(id) = op["operationId"].as_str() {
                ids.entry(id).or_default().push(format!("{method} {path}"));
            }
        }
    }
    for (id, ops) in ids.iter().filter(|(_, ops)| ops.len() > 1) {
        problems.push(format!("operationId `{id}` is used by {ops:?}"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    app.stop().await;
}

/// The access the table gives each route is what the router does: a token
/// route refuses a request without one (401, before anything else is read),
/// the others answer it.
#[tokio::test]
async fn the_routes_access_is_what_the_router_enforces() {
    let app = spawn_app(small()).await;
    for route in ROUTES {
        let path = path_parameters(route.path)
            .into_iter()
            .fold(route.path.to_string(), |p, name| {
                p.replace(&format!("{{{name}}}"), "x")
            });
        let r = app
            .http
            .request(route.method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        match route.access {
            Access::Token => assert_eq!(status, 401, "{} {}", route.method, route.path),
            Access::Public | Access::Probe => assert!(
                status != 401 && status != 404 && status != 405,
                "{} {}: {status}",
                route.method,
                route.path
            ),
        }
    }
    app.stop().await;
}
