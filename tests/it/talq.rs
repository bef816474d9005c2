//! The TALQ gateway API over a real socket, on the simulator: every served
//! route's answers validate against the schemas of the TALQ 2.7.1 OpenAPI
//! documents (`../shared/talq/`, read where they are; the tests say so and
//! pass when they are absent), and a TALQ override reaches the lamp's
//! registers, waits for its start, loses to a later one, and ends.

use crate::common::{eventually, lamp_id, rtu_id, spawn_app_with, TestApp, ADMIN_TOKEN};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::control::Source;
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use uuid::Uuid;

const VIEWER: &str = "lgw_test_talq_viewer";
const NORTH: &str = "lgw_test_talq_north";
pub(crate) const CMS: &str = "0b5a6f8e-3c1d-4e2f-9a7b-5c6d7e8f9a0b";
const DATA_MODEL: &str = "talq-data-model-2-7-1-online.json";

/// The TALQ documents: the gateway API's paths and the data model's
/// schemas.
pub(crate) struct Documents {
    paths: Value,
    schemas: Value,
}

pub(crate) fn documents() -> Option<Documents> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/talq");
    let read = |name: &str| -> Option<Value> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        Some(serde_json::from_str(&text).expect("a TALQ document is JSON"))
    };
    let (Some(api), Some(model)) = (read("talq-api-gateway-2-7-1-online.json"), read(DATA_MODEL))
    else {
        println!(
            "the TALQ OpenAPI documents are not in {}: schema validation skipped",
            dir.display()
        );
        return None;
    };
    Some(Documents {
        paths: api["paths"].clone(),
        schemas: model["components"]["schemas"].clone(),
    })
}

/// The gateway document refers to the data model's schemas by file; in one
/// document with the model's schemas as its components they are local.
fn localise(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if let Some(rest) = r.strip_prefix(&format!("./{DATA_MODEL}")) {
                    *r = rest.to_string();
                }
            }
            m.values_mut().for_each(localise);
        }
        Value::Array(a) => a.iter_mut().for_each(localise),
        _ => {}
    }
}

impl Documents {
    fn validate_with(&self, schema: &Value, body: &Value, what: &str) {
        let errors = self.errors(schema, body, what);
        assert!(errors.is_empty(), "{what}: {errors:?}\n{body:#}");
    }

    fn errors(&self, schema: &Value, body: &Value, what: &str) -> Vec<String> {
        let mut root = schema.clone();
        localise(&mut root);
        root["components"] = json!({"schemas": self.schemas});
        // Draft 2020-12 (its `uuid` format; the documents use no keyword
        // it reads otherwise than OpenAPI 3.0), formats checked.
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{what}: schema does not build: {e}"));
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// Validates an answer against the document's schema for the path's
    /// method and status.
    pub(crate) fn validate(&self, path: &str, method: &str, status: u16, body: &Value) {
        if status == 401 || status == 403 {
            // Authentication is the deployment's, outside the document;
            // the body is still TALQ's error list.
            let errors = json!({"type": "array", "items": {"$ref": "#/components/schemas/TALQErrorMessage"}});
            self.validate_with(&errors, body, &format!("{method} {path} {status}"));
            return;
        }
        let response = &self.paths[path][method]["responses"][status.to_string()];
        assert!(
            !response.is_null(),
            "{method} {path} does not document status {status}: {body}"
        );
        let schema = &response["content"]["application/json"]["schema"];
        if schema.is_null() {
            assert!(
                body.is_null(),
                "{method} {path} {status} has no body: {body}"
            );
            return;
        }
        self.validate_with(schema, body, &format!("{method} {path} {status}"));
    }

    /// A function against the schema of its own type, every attribute it
    /// carries being one its type declares (the schemas allow others).
    pub(crate) fn validate_function(&self, f: &Value) {
        let kind = f["type"].as_str().expect("a function has a type");
        let schema = &self.schemas[kind];
        assert!(!schema.is_null(), "no TALQ function type {kind}");
        self.validate_with(
            &json!({"$ref": format!("#/components/schemas/{kind}")}),
            f,
            kind,
        );
        let declared: Vec<&String> = schema["allOf"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["properties"].as_object())
            .flat_map(|p| p.keys())
            .collect();
        for name in f.as_object().unwrap().keys() {
            assert!(
                name == "id" || declared.contains(&name),
                "{kind} declares no attribute {name}"
            );
        }
    }
}

/// The lighting profile's flag of a schema part for the gateway (`M`, `O`).
fn lighting_gw(part: &Value) -> Option<&str> {
    part["x-talq-profiles"]
        .as_array()?
        .iter()
        .find_map(|p| p["lighting"]["gw"].as_str())
}

/// docs/talq.md's table names every Mandatory-for-gateway attribute of
/// each function the lighting profile makes Mandatory for the gateway, and
/// what it says is supported the served device classes carry.
fn the_table_names_every_mandatory_part(d: &Documents, classes: &Value) {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/talq.md"))
            .expect("docs/talq.md");
    let rows: BTreeMap<String, String> = doc
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let item = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((item.to_string(), cells.get(2)?.to_string()))
        })
        .collect();
    let served = |function: &str, attribute: &str| {
        classes.as_array().unwrap().iter().any(|c| {
            c["functions"].as_array().unwrap().iter().any(|f| {
                f["type"] == function
                    && f["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["name"] == attribute)
            })
        })
    };
    let mut checked = 0;
    for (name, schema) in d.schemas.as_object().unwrap() {
        let Some(parts) = schema["allOf"].as_array() else {
            continue;
        };
        if !name.ends_with("Function") || !parts.iter().any(|p| lighting_gw(p) == Some("M")) {
            continue;
        }
        for part in parts {
            for (attr, a) in part["properties"].as_object().into_iter().flatten() {
                let mandatory = a["allOf"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| lighting_gw(x) == Some("M"));
                if !mandatory {
                    continue;
                }
                let item = format!("{name}.{attr}");
                let verdict = rows
                    .get(&item)
                    .unwrap_or_else(|| panic!("docs/talq.md has no row for {item}"));
                if verdict == "yes" || verdict == "partly" {
                    assert!(
                        served(name, attr),
                        "docs/talq.md says {item} is served; it is not"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "only {checked} mandatory attributes found");
}

async fn city() -> TestApp {
    let t = spawn_app_with(
        SimConfig {
            endpoints: 2,
            slcs_per_endpoint: 3,
            districts: 2,
            ..SimConfig::default()
        },
        InventoryOptions {
            cabinets_without_rtu: 0,
            lamps_without_slc_per_cabinet: 1,
        },
        |s| {
            s.talq.enabled = true;
            s.talq.cms_address = Some(CMS.parse().unwrap());
            for (name, token, role, district) in [
                ("talq-viewer", VIEWER, Role::Viewer, None),
                ("talq-north", NORTH, Role::Operator, Some("D01".to_string())),
            ] {
                s.auth.tokens.push(TokenConfig {
                    name: name.into(),
                    hash: hash_token(token),
                    role,
                    district,
                });
            }
            // One lamp of each district, and one without an SLC.
            s.control.groups.push(lamp_gateway::control::GroupConfig {
                name: "riverside".into(),
                lamps: vec![lamp_id(0, 2), lamp_id(1, 2), "LX-0001-N01".into()],
            });
        },
    )
    .await;
    t.all_online().await;
    t
}

/// A TALQ request as a CMS sends it.
fn talq(
    t: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    write: bool,
) -> reqwest::RequestBuilder {
    let mut query = format!("clientAddress={CMS}");
    if write {
        query.push_str(&format!(
            "&talqRequestId={}",
            Uuid::from_u128(fastrand::u128(..))
        ));
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    t.http
        .request(method, format!("{}/talq{path}{sep}{query}", t.base))
        .bearer_auth(token)
        .header("talq-api-version", "2.7.1")
}

pub(crate) async fn answer(r: reqwest::RequestBuilder) -> (u16, Value) {
    let r = r.send().await.expect("request sent");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, body)
}

async fn get(t: &TestApp, path: &str) -> (u16, Value) {
    answer(talq(t, reqwest::Method::GET, path, ADMIN_TOKEN, false)).await
}

pub(crate) fn gateway() -> Uuid {
    lamp_gateway::talq::default_gateway_address("lamp-gateway")
}

#[tokio::test]
async fn every_answer_validates_against_the_talq_documents() {
    let t = city().await;
    let docs = documents();
    let check = |path: &str, method: &str, status: u16, body: &Value| {
        if let Some(d) = &docs {
            d.validate(path, method, status, body);
        }
    };

    let (status, devices) = get(&t, "/devices").await;
    assert_eq!(status, 200, "{devices}");
    check("/devices", "get", 200, &devices);
    let devices = devices.as_array().unwrap().clone();
    // The gateway, 2 RTUs, 2 × 3 lamps with an SLC (not the 2 without).
    assert_eq!(devices.len(), 1 + 2 + 6, "{devices:?}");
    let by_name: BTreeMap<&str, &Value> = devices
        .iter()
        .map(|d| (d["name"].as_str().unwrap(), d))
        .collect();
    let lamp = lamp_id(0, 1);
    assert_eq!(
        by_name[lamp.as_str()]["address"],
        lamp_gateway::talq::lamp_address(&gateway(), &lamp).to_string()
    );
    assert_eq!(
        by_name[rtu_id(1).as_str()]["address"],
        lamp_gateway::talq::rtu_address(&gateway(), &rtu_id(1)).to_string()
    );
    assert_eq!(by_name["lamp-gateway"]["address"], gateway().to_string());

    // The validation has teeth: a device with a level over 100 % and an
    // address that is no UUID is refused.
    if let Some(d) = &docs {
        let mut bad = by_name[lamp.as_str()].clone();
        bad["address"] = json!("LX-0001-002");
        bad["functions"][1]["actualLightState"]["value"]["value"] = json!(150);
        let schema = json!({"$ref": "#/components/schemas/Device"});
        assert_eq!(d.errors(&schema, &bad, "bad device").len(), 1, "{bad}");
        assert_eq!(bad["functions"][1]["type"], "LampActuatorFunction");
        assert!(!d
            .errors(
                &json!({"$ref": "#/components/schemas/LampActuatorFunction"}),
                &bad["functions"][1],
                "bad"
            )
            .is_empty());
    }

    let (status, n) = get(&t, "/devices/count").await;
    check("/devices/count", "get", status, &n);
    assert_eq!(n, json!(9));
    let (status, page) = get(&t, "/devices?offset=1&limit=2").await;
    check("/devices", "get", status, &page);
    let addresses =
        |v: &[Value]| -> Vec<Value> { v.iter().map(|d| d["address"].clone()).collect() };
    assert_eq!(
        addresses(page.as_array().unwrap()),
        addresses(&devices[1..3])
    );
    let (_, rtus) = get(&t, "/devices?deviceClasses=CabinetRtu").await;
    assert_eq!(rtus.as_array().unwrap().len(), 2, "{rtus}");

    let (status, classes) = get(&t, "/device-classes").await;
    check("/device-classes", "get", status, &classes);
    let (status, n) = get(&t, "/device-classes/count").await;
    check("/device-classes/count", "get", status, &n);
    assert_eq!(n, json!(classes.as_array().unwrap().len()));

    if let Some(d) = &docs {
        the_table_names_every_mandatory_part(d, &classes);
    }

    for d in &devices {
        let address = d["address"].as_str().unwrap();
        let (status, one) = get(&t, &format!("/devices/{address}")).await;
        check("/devices/{deviceAddress}", "get", status, &one);
        assert_eq!(one["address"], d["address"]);
        let class = d["class"].as_str().unwrap();
        let (status, c) = get(&t, &format!("/device-classes/{class}")).await;
        check("/device-classes/{className}", "get", status, &c);
        for f in one["functions"].as_array().unwrap() {
            if let Some(docs) = &docs {
                docs.validate_function(f);
            }
            let id = f["id"].as_str().unwrap();
            let desc = c["functions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["functionId"] == id)
                .unwrap_or_else(|| panic!("class {class} does not describe {id}"));
            assert_eq!(desc["type"], f["type"]);
            let (status, fun) = get(&t, &format!("/devices/{address}/{id}")).await;
            check("/devices/{deviceAddress}/{functionId}", "get", status, &fun);
            for (name, _) in f
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k != "id" && *k != "type")
            {
                assert!(
                    desc["attributes"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|a| a["name"] == name.as_str()),
                    "class {class} function {id} does not describe {name}"
                );
                let (status, a) = get(&t, &format!("/devices/{address}/{id}/{name}")).await;
                check(
                    "/devices/{deviceAddress}/{functionId}/{attributeName}",
                    "get",
                    status,
                    &a,
                );
            }
        }
    }

    // Values from the live state, in TALQ units.
    let address = lamp_gateway::talq::lamp_address(&gateway(), &lamp);
    let sim = t.sim.slc_values(0, 1);
    let (_, monitor) = get(&t, &format!("/devices/{address}/lampMonitor")).await;
    let voltage = monitor["supplyVoltage"]["value"].as_f64().unwrap();
    assert!(
        (voltage - sim.voltage).abs() < 15.0,
        "{monitor} vs {}",
        sim.voltage
    );
    assert_eq!(monitor["lampFailure"]["value"], json!(false), "{monitor}");
    let (_, actual) = get(
        &t,
        &format!("/devices/{address}/lampActuator/actualLightState"),
    )
    .await;
    let level = if sim.switch {
        sim.dim_level.round()
    } else {
        0.0
    };
    assert_eq!(
        actual["value"],
        json!({"name": "LevelState", "value": level as u64})
    );
    let (_, measured) = get(
        &t,
        &format!("/devices/{address}/lampActuator?attributeScope=measurement"),
    )
    .await;
    let mut keys: Vec<&String> = measured.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["actualLightState", "feedbackLightCommand", "id", "type"]
    );
    let (_, g) = get(&t, &format!("/devices/{}/gateway", gateway())).await;
    assert_eq!(g["cmsAddress"]["value"], CMS);
    assert_eq!(g["gatewayAddress"]["value"], gateway().to_string());

    // Groups: ours, with their lamps that have an SLC as members.
    let (status, groups) = get(&t, "/groups").await;
    check("/groups", "get", status, &groups);
    let riverside = lamp_gateway::talq::group_address(&gateway(), "riverside");
    assert_eq!(groups[0]["address"], riverside.to_string(), "{groups}");
    let members: Vec<String> = [lamp_id(0, 2), lamp_id(1, 2)]
        .iter()
        .map(|l| lamp_gateway::talq::lamp_address(&gateway(), l).to_string())
        .collect();
    let listed: Vec<&str> = groups[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["address"].as_str().unwrap())
        .collect();
    assert_eq!(listed, members);
    let (status, g) = get(&t, &format!("/groups/{riverside}")).await;
    check("/groups/{groupAddress}", "get", status, &g);
    let (status, n) = get(&t, &format!("/groups/{riverside}/members/count")).await;
    check("/groups/{groupAddress}/members/count", "get", status, &n);
    assert_eq!(n, json!(2));
    let (status, n) = get(&t, "/groups/count").await;
    check("/groups/count", "get", status, &n);

    // A district's token: its district's devices and the gateway only.
    let (status, north) = answer(talq(&t, reqwest::Method::GET, "/devices", NORTH, false)).await;
    check("/devices", "get", status, &north);
    let inv = &t.live.inventory;
    let district_of = |name: &str| {
        inv.lamp_position(name)
            .and_then(|l| inv.cabinet_of_lamp(l))
            .or_else(|| inv.rtu_position(name))
            .map(|c| inv.cabinets[c].district.clone())
    };
    let north = north.as_array().unwrap();
    assert!(north.len() > 1 && north.len() < devices.len(), "{north:?}");
    for d in north {
        let name = d["name"].as_str().unwrap();
        assert!(
            name == "lamp-gateway" || district_of(name).as_deref() == Some("D01"),
            "{name}"
        );
    }
    let south_lamp = lamp_gateway::talq::lamp_address(&gateway(), &lamp_id(1, 0));
    assert_eq!(district_of(&lamp_id(1, 0)).as_deref(), Some("D02"));
    let (status, _) = answer(talq(
        &t,
        reqwest::Method::GET,
        &format!("/devices/{south_lamp}"),
        NORTH,
        false,
    ))
    .await;
    assert_eq!(
        status, 404,
        "another district's lamp does not exist for a district token"
    );
    let (_, g) = answer(talq(
        &t,
        reqwest::Method::GET,
        &format!("/groups/{riverside}/members/count"),
        NORTH,
        false,
    ))
    .await;
    assert_eq!(
        g,
        json!(1),
        "a district token sees its district's members only"
    );

    // Commissioning is not served: refused in TALQ's error shape.
    let (status, e) =
        answer(talq(&t, reqwest::Method::POST, "/devices", ADMIN_TOKEN, true).json(&json!([])))
            .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (405, Some("genericError")),
        "{e}"
    );

    let (status, services) = get(&t, "/services").await;
    check("/services", "get", status, &services);
    let (status, s) = get(&t, "/services/ControlService").await;
    check("/services/{serviceName}", "get", status, &s);

    // Errors are TALQ's, as documented.
    let unknown = Uuid::from_u128(fastrand::u128(..));
    let (status, e) = get(&t, &format!("/devices/{unknown}")).await;
    assert_eq!(status, 404, "{e}");
    check("/devices/{deviceAddress}", "get", status, &e);
    assert_eq!(e[0]["key"], "resourceNotFound");
    let (status, e) = get(&t, &format!("/devices/{address}/lampActuator/nonsense")).await;
    check(
        "/devices/{deviceAddress}/{functionId}/{attributeName}",
        "get",
        status,
        &e,
    );
    assert_eq!(status, 404);
    let (status, e) = get(&t, "/devices/not-a-uuid").await;
    check("/devices/{deviceAddress}", "get", status, &e);
    assert_eq!(e[0]["key"], "parameterValueNotValid");
    let no_version = t
        .http
        .get(format!("{}/talq/devices?clientAddress={CMS}", t.base))
        .bearer_auth(ADMIN_TOKEN);
    let (status, e) = answer(no_version).await;
    check("/devices", "get", status, &e);
    assert_eq!(e[0]["key"], "headerMissing");
    let other_cms = t
        .http
        .get(format!(
            "{}/talq/devices?clientAddress={}",
            t.base,
            Uuid::from_u128(fastrand::u128(..))
        ))
        .bearer_auth(ADMIN_TOKEN)
        .header("talq-api-version", "2.7.1");
    let (status, e) = answer(other_cms).await;
    check("/devices", "get", status, &e);
    assert_eq!(e[0]["key"], "parameterValueNotValid");
    let no_token = t
        .http
        .get(format!("{}/talq/devices?clientAddress={CMS}", t.base))
        .header("talq-api-version", "2.7.1");
    assert_eq!(answer(no_token).await.0, 401);
    t.stop().await;
}

async fn post_override(t: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let (status, b) =
        answer(talq(t, reqwest::Method::POST, "/override-commands", token, true).json(&body)).await;
    if let Some(d) = documents() {
        d.validate("/override-commands", "post", status, &b);
    }
    (status, b)
}

fn to(lamp: &str) -> Value {
    json!([{"resource": "devices", "address": lamp_gateway::talq::lamp_address(&gateway(), lamp).to_string()}])
}

fn level(l: u64) -> Value {
    json!({"name": "LevelState", "value": l})
}

#[tokio::test]
async fn a_talq_override_reaches_the_lamp_waits_for_its_start_loses_to_a_later_one_and_ends() {
    let t = city().await;
    let lamp = lamp_id(0, 1);
    let address = lamp_gateway::talq::lamp_address(&gateway(), &lamp);
    let expiration = chrono::Utc::now() + chrono::Duration::hours(1);

    // Now, until an hour from now: the simulator's register follows.
    let (status, body) = post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": to(&lamp), "targetCommand": {
            "state": level(40), "reason": "override", "cmsRefId": "storm-7",
            "expiration": expiration.to_rfc3339()}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually("the lamp dims to 40 %", || async {
        let v = t.sim.slc_values(0, 1);
        v.switch && v.dim_level == 40.0
    })
    .await;
    let (_, target) = get(
        &t,
        &format!("/devices/{address}/lampActuator/targetLightCommand"),
    )
    .await;
    assert_eq!(target["value"]["state"], level(40), "{target}");
    assert_eq!(target["value"]["cmsRefId"], "storm-7");
    assert!(target["value"]["expiration"].is_string(), "{target}");
    eventually("feedbackLightCommand confirms 40 %", || async {
        let (_, f) = get(
            &t,
            &format!("/devices/{address}/lampActuator/feedbackLightCommand"),
        )
        .await;
        f["value"]["state"] == level(40)
    })
    .await;
    // Audited as a command of the CMS's token.
    let control = t.app.as_ref().unwrap().control();
    eventually("the override is audited", || async {
        control
            .audit(
                chrono::Utc::now() - chrono::Duration::hours(1),
                chrono::Utc::now(),
                None,
            )
            .iter()
            .any(|c| c.source == Source::Talq && c.actor == "test-admin" && c.expires_at.is_some())
    })
    .await;

    // A start ahead: not before it, then it.
    let other = lamp_id(0, 2);
    let start = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (status, body) = post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": to(&other), "targetCommand": {"state": level(70), "start": start.to_rfc3339()}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_ne!(
        t.sim.slc_values(0, 2).dim_level,
        70.0,
        "started before its start"
    );
    eventually("the lamp dims to 70 % at the start", || async {
        t.sim.slc_values(0, 2).dim_level == 70.0
    })
    .await;
    assert!(chrono::Utc::now() >= start);

    // Last wins: a waiting override loses to one given after it.
    let start = chrono::Utc::now() + chrono::Duration::milliseconds(1000);
    post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": to(&other), "targetCommand": {"state": level(10), "start": start.to_rfc3339()}}),
    )
    .await;
    post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": to(&other), "targetCommand": {"state": level(55)}}),
    )
    .await;
    eventually("the later override dims to 55 %", || async {
        t.sim.slc_values(0, 2).dim_level == 55.0
    })
    .await;
    eventually("the earlier override's start has passed", || async {
        chrono::Utc::now() > start + chrono::Duration::milliseconds(500)
    })
    .await;
    assert_eq!(
        t.sim.slc_values(0, 2).dim_level,
        55.0,
        "the earlier override came back"
    );

    // Without a targetCommand: back to normal, for a lamp no calendar
    // governs its defaultLightState, 100 %.
    let (status, body) = post_override(&t, ADMIN_TOKEN, json!({"addresses": to(&lamp)})).await;
    assert_eq!(status, 202, "{body}");
    eventually("the lamp goes to its default 100 %", || async {
        let v = t.sim.slc_values(0, 1);
        v.switch && v.dim_level == 100.0
    })
    .await;

    // PATCH of targetLightCommand is the same override.
    let patch = talq(
        &t,
        reqwest::Method::PATCH,
        &format!("/devices/{address}/lampActuator/targetLightCommand"),
        ADMIN_TOKEN,
        true,
    )
    .json(&json!({"type": "AttributeCommand", "value": {"state": level(25)}}));
    let (status, body) = answer(patch).await;
    assert_eq!(status, 202, "{body}");
    eventually("the PATCH dims to 25 %", || async {
        t.sim.slc_values(0, 1).dim_level == 25.0
    })
    .await;

    // PATCH of the function, and an override of a group's lamps.
    let patch = talq(
        &t,
        reqwest::Method::PATCH,
        &format!("/devices/{address}/lampActuator"),
        ADMIN_TOKEN,
        true,
    )
    .json(
        &json!({"id": "lampActuator", "type": "LampActuatorFunction",
            "targetLightCommand": {"type": "AttributeCommand", "value": {"state": level(35)}}}),
    );
    let (status, body) = answer(patch).await;
    assert_eq!(status, 202, "{body}");
    eventually("the function's PATCH dims to 35 %", || async {
        t.sim.slc_values(0, 1).dim_level == 35.0
    })
    .await;
    let read_only = talq(
        &t,
        reqwest::Method::PATCH,
        &format!("/devices/{address}/lampActuator"),
        ADMIN_TOKEN,
        true,
    )
    .json(
        &json!({"id": "lampActuator", "type": "LampActuatorFunction",
            "actualLightState": {"type": "AttributeLevelState", "value": level(1)}}),
    );
    let (status, e) = answer(read_only).await;
    assert_eq!(status, 422, "{e}");
    let riverside = lamp_gateway::talq::group_address(&gateway(), "riverside");
    let (status, body) = post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": [{"resource": "groups", "address": riverside.to_string()}],
            "targetCommand": {"state": level(60)}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually("the group's lamps dim to 60 %", || async {
        t.sim.slc_values(0, 2).dim_level == 60.0 && t.sim.slc_values(1, 2).dim_level == 60.0
    })
    .await;

    // An expiration: back to what the lamp did before, and the override
    // is no longer its target.
    let third = lamp_id(0, 0);
    let before = t.sim.slc_values(0, 0);
    let soon = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (status, body) = post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": to(&third), "targetCommand": {"state": level(20), "expiration": soon.to_rfc3339()}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually("the lamp dims to 20 % until its expiration", || async {
        t.sim.slc_values(0, 0).dim_level == 20.0
    })
    .await;
    eventually(
        "the lamp is back as it was after the expiration",
        || async {
            let v = t.sim.slc_values(0, 0);
            v.switch == before.switch && v.dim_level == before.dim_level
        },
    )
    .await;
    assert!(chrono::Utc::now() >= soon);
    let third_address = lamp_gateway::talq::lamp_address(&gateway(), &third);
    let (_, target) = get(
        &t,
        &format!("/devices/{third_address}/lampActuator/targetLightCommand"),
    )
    .await;
    assert_ne!(target["value"]["state"], level(20), "{target}");

    // PATCH of a list of devices: each its own command; one bad device
    // and none is commanded.
    let device = |l: &str, lvl: u64| {
        json!({"address": lamp_gateway::talq::lamp_address(&gateway(), l).to_string(),
            "name": l, "class": "SingleLampController",
            "functions": [{"id": "lampActuator", "type": "LampActuatorFunction",
                "targetLightCommand": {"type": "AttributeCommand", "value": {"state": level(lvl)}}}]})
    };
    let (a, b) = (lamp_id(1, 0), lamp_id(1, 1));
    let mut bad = device(&a, 15);
    bad["functions"][0]["targetLightCommand"]["value"]["state"] = level(101);
    let (status, e) = answer(
        talq(&t, reqwest::Method::PATCH, "/devices", ADMIN_TOKEN, true)
            .json(&json!([device(&b, 46), bad])),
    )
    .await;
    assert_eq!(status, 422, "{e}");
    let (status, body) = answer(
        talq(&t, reqwest::Method::PATCH, "/devices", ADMIN_TOKEN, true)
            .json(&json!([device(&a, 15), device(&b, 45)])),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually("both lamps of the list PATCH dim", || async {
        t.sim.slc_values(1, 0).dim_level == 15.0 && t.sim.slc_values(1, 1).dim_level == 45.0
    })
    .await;
    let dims = |l: f64| {
        let from = chrono::Utc::now() - chrono::Duration::hours(1);
        control
            .audit(from, chrono::Utc::now(), None)
            .iter()
            .any(|c| c.action == lamp_gateway::control::Action::Dim { level: l })
    };
    eventually("the list PATCH is audited", || async { dims(45.0) }).await;
    assert!(!dims(46.0), "the refused list commanded a lamp");

    // Refusals, before any lamp is touched.
    let (status, e) = post_override(
        &t,
        VIEWER,
        json!({"addresses": to(&lamp), "targetCommand": {"state": level(5)}}),
    )
    .await;
    assert_eq!(status, 403, "{e}");
    let (status, e) = post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": to(&lamp), "targetCommand": {"state": {"name": "BooleanState", "value": true}}}),
    )
    .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (422, Some("overrideCommandNotValid")),
        "{e}"
    );
    let rtu = lamp_gateway::talq::rtu_address(&gateway(), &rtu_id(0));
    let (status, e) = post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": [{"resource": "devices", "address": rtu.to_string()}], "targetCommand": {"state": level(5)}}),
    )
    .await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (422, Some("overrideAddressNotValid")),
        "{e}"
    );
    let (status, e) = post_override(&t, ADMIN_TOKEN, json!({"addresses": "nonsense"})).await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (400, Some("payloadError")),
        "{e}"
    );
    let no_request_id = t
        .http
        .post(format!(
            "{}/talq/override-commands?clientAddress={CMS}",
            t.base
        ))
        .bearer_auth(ADMIN_TOKEN)
        .header("talq-api-version", "2.7.1")
        .json(&json!({"addresses": to(&lamp), "targetCommand": {"state": level(5)}}));
    let (status, e) = answer(no_request_id).await;
    assert_eq!(
        (status, e[0]["key"].as_str()),
        (400, Some("parameterMissing")),
        "{e}"
    );
    assert_eq!(
        t.sim.slc_values(0, 1).dim_level,
        35.0,
        "a refused override touched the lamp"
    );
    t.stop().await;
}

#[tokio::test]
async fn ending_an_override_sends_a_governed_lamp_back_to_its_program() {
    let t = spawn_app_with(
        SimConfig {
            endpoints: 1,
            slcs_per_endpoint: 2,
            districts: 1,
            ..SimConfig::default()
        },
        InventoryOptions::default(),
        |s| {
            s.talq.enabled = true;
            s.schedule.tick = std::time::Duration::from_millis(200);
            // 80 % all day, every lamp.
            let book = json!({
                "programs": [{"id": "steady", "points": [{"at": "00:00", "level": 80}]}],
                "calendars": [{"id": "city", "rules": [], "default_program": "steady"}],
                "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
            });
            std::fs::write(&s.schedule.file, book.to_string()).unwrap();
        },
    )
    .await;
    t.all_online().await;
    let lamp = lamp_id(0, 0);
    let address = lamp_gateway::talq::lamp_address(&gateway(), &lamp);
    eventually("the schedule dims the lamp to 80 %", || async {
        t.sim.slc_values(0, 0).dim_level == 80.0
    })
    .await;
    let (_, actuator) = get(&t, &format!("/devices/{address}/lampActuator")).await;
    assert_eq!(actuator["calendarID"]["value"], "city", "{actuator}");
    assert_eq!(
        actuator["targetLightCommand"]["value"],
        json!({"state": level(80), "reason": "program"}),
        "{actuator}"
    );

    let (status, body) = post_override(
        &t,
        ADMIN_TOKEN,
        json!({"addresses": to(&lamp), "targetCommand": {"state": level(30)}}),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    eventually("the override dims to 30 %", || async {
        t.sim.slc_values(0, 0).dim_level == 30.0
    })
    .await;
    // The schedule holds the lamp under the override (it does not put it
    // back at its next tick).
    let schedule = t.app.as_ref().unwrap().schedule().unwrap();
    eventually("the schedule holds the lamp", || async {
        schedule.holds().contains_key(&lamp)
    })
    .await;
    let ticks = schedule.ticks();
    eventually("two more schedule ticks", || async {
        schedule.ticks() >= ticks + 2
    })
    .await;
    assert_eq!(t.sim.slc_values(0, 0).dim_level, 30.0);

    // No targetCommand: back to the program, not to the default 100 %.
    let (status, body) = post_override(&t, ADMIN_TOKEN, json!({"addresses": to(&lamp)})).await;
    assert_eq!(status, 202, "{body}");
    eventually("the lamp is back at its program's 80 %", || async {
        t.sim.slc_values(0, 0).dim_level == 80.0
    })
    .await;
    assert!(!schedule.holds().contains_key(&lamp));
    let (_, target) = get(
        &t,
        &format!("/devices/{address}/lampActuator/targetLightCommand"),
    )
    .await;
    assert_eq!(target["value"]["reason"], "program", "{target}");
    t.stop().await;
}

/// Settings as a file (a reload reads it again), TALQ on.
fn settings_file(dir: &std::path::Path, token: &str, groups: &str) {
    let profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let text = format!(
        "[paths]\ninventory = \"{inv}\"\nprofiles = \"{profiles}\"\ndata = \"{dir}\"\n\
         [api]\nlisten = \"127.0.0.1:0\"\n[poll]\nslc_interval = \"100ms\"\nrtu_interval = \"100ms\"\n\
         request_timeout = \"300ms\"\n[store]\nurl = \"none\"\n[mqtt]\nurl = \"none\"\n\
         [talq]\nenabled = true\n{groups}\
         [[auth.tokens]]\nname = \"cms\"\nhash = \"{hash}\"\nrole = \"admin\"\n",
        inv = dir.join("inventory").display(),
        profiles = profiles.display(),
        dir = dir.display(),
        hash = hash_token(token),
    );
    std::fs::write(dir.join("gateway.toml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_talq_api_its_addresses_and_overrides() {
    let sim = lamp_sim::Simulator::start(SimConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("inventory")).unwrap();
    sim.write_inventory(&dir.path().join("inventory"), &InventoryOptions::default())
        .unwrap();
    settings_file(dir.path(), "lgw_cms_old", "");
    let settings =
        lamp_gateway::settings::Settings::load(Some(&dir.path().join("gateway.toml"))).unwrap();
    let app = lamp_gateway::startup::Application::build(settings)
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let stop = app.stopper();
    let running = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let request = |method: reqwest::Method, path: &str, token: &str| {
        http.request(
            method,
            format!(
                "{base}/talq{path}?clientAddress={CMS}&talqRequestId={}",
                Uuid::from_u128(fastrand::u128(..))
            ),
        )
        .bearer_auth(token)
        .header("talq-api-version", "2.7.1")
    };
    let lamp = lamp_id(0, 0);
    let address = lamp_gateway::talq::lamp_address(&gateway(), &lamp);
    let (status, before) = answer(request(reqwest::Method::GET, "/devices", "lgw_cms_old")).await;
    assert_eq!(status, 200, "{before}");
    let expiration = chrono::Utc::now() + chrono::Duration::hours(1);
    let (status, body) = answer(
        request(reqwest::Method::POST, "/override-commands", "lgw_cms_old").json(&json!({
            "addresses": to(&lamp),
            "targetCommand": {"state": level(20), "expiration": expiration.to_rfc3339()}
        })),
    )
    .await;
    assert_eq!(status, 202, "{body}");

    // A new token and a new group in the file, then a reload.
    let group = format!("[[control.groups]]\nname = \"after\"\nlamps = [\"{lamp}\"]\n");
    settings_file(dir.path(), "lgw_cms_new", &group);
    let r = http
        .post(format!("{base}/api/v1/admin/reload"))
        .bearer_auth("lgw_cms_old")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );

    // Served on, the new token in force, the same addresses, the override
    // still the lamp's target, the file's new group there.
    let (status, _) = answer(request(reqwest::Method::GET, "/devices", "lgw_cms_old")).await;
    assert_eq!(status, 401, "the removed token is refused");
    let (status, after) = answer(request(reqwest::Method::GET, "/devices", "lgw_cms_new")).await;
    assert_eq!(status, 200, "{after}");
    let addresses = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d["address"].clone())
            .collect()
    };
    assert_eq!(addresses(&after), addresses(&before));
    let (_, target) = answer(request(
        reqwest::Method::GET,
        &format!("/devices/{address}/lampActuator/targetLightCommand"),
        "lgw_cms_new",
    ))
    .await;
    assert_eq!(target["value"]["state"], level(20), "{target}");
    let (_, groups) = answer(request(reqwest::Method::GET, "/groups", "lgw_cms_new")).await;
    assert_eq!(
        groups[0]["address"],
        lamp_gateway::talq::group_address(&gateway(), "after").to_string(),
        "{groups}"
    );
    assert_eq!(groups[0]["members"][0]["address"], address.to_string());
    stop.cancel();
    running.await.unwrap().unwrap();
    sim.shutdown().await;
}
