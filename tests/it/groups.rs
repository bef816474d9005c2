//! Groups set through `PUT /api/v1/groups/{name}` outlive a restart of the
//! process (issue 12): they are kept in `control.groups_file` (in
//! `paths.data`), read back at start, lose with a warning the lamps an
//! inventory change removed (at a start or a reload), and a change that
//! cannot be written is refused with nothing changed.

use crate::common::{eventually, lamp_id, sim_city, SimCity};
use crate::store_kill::{start_gateway_logging, Gateway};
use lamp_sim::SimConfig;
use serde_json::{json, Value};
use std::path::Path;

const ADMIN: &str = "lgw_groups_admin";

fn settings_file(dir: &Path, settings_group: &str) {
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let text = format!(
        r#"
[paths]
inventory = "inventory"
profiles = "{profiles}"
data = "data"
[api]
listen = "127.0.0.1:0"
[poll]
slc_interval = "100ms"
rtu_interval = "100ms"
request_timeout = "300ms"
[store]
url = "none"
[mqtt]
url = "none"
[[control.groups]]
name = "fixed"
lamps = ["{settings_group}"]
[[auth.tokens]]
name = "admin"
hash = "{hash}"
role = "admin"
"#,
        profiles = profiles.display(),
        hash = lamp_gateway::auth::hash_token(ADMIN),
    );
    std::fs::write(dir.join("gateway.toml"), text).unwrap();
}

async fn call(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = gw
        .http
        .request(method, format!("{}{path}", gw.base))
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(gw: &Gateway, path: &str) -> (u16, Value) {
    call(gw, reqwest::Method::GET, path, None).await
}

async fn put_group(gw: &Gateway, name: &str, lamps: &[String]) -> (u16, Value) {
    let path = format!("/api/v1/groups/{name}");
    call(
        gw,
        reqwest::Method::PUT,
        &path,
        Some(json!({ "lamps": lamps })),
    )
    .await
}

/// SIGTERM, and the process ends cleanly.
async fn stop(mut gw: Gateway) {
    let pid = gw.child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = gw.child.wait().await.unwrap();
    assert!(status.success(), "{status}");
}

async fn online(gw: &Gateway, lamps: &[String]) {
    for l in lamps {
        eventually(&format!("{l} online"), || async {
            get(gw, &format!("/api/v1/lamps/{l}")).await.1["slc"]["online"] == true
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_set_through_the_api_outlive_a_restart() {
    let SimCity { sim, dir, .. } = sim_city(SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 3,
        ..SimConfig::default()
    })
    .await;
    let d = dir.path();
    settings_file(d, &lamp_id(0, 2));
    let config = d.join("gateway.toml");
    let file = d.join("data/groups.json");
    let evening = vec![lamp_id(0, 0), lamp_id(1, 0), lamp_id(1, 2)];

    // First run: define a group.
    let gw = start_gateway_logging(&config, &d.join("run1.log")).await;
    let (s, body) = put_group(&gw, "evening", &evening).await;
    assert_eq!(s, 200, "{body}");
    let kept: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        kept,
        json!({"groups": [{"name": "evening", "lamps": evening}]}),
        "only the API's groups are in the file"
    );
    // A group of the settings file is changed there, not over the API.
    let (s, body) = put_group(&gw, "fixed", &evening).await;
    assert_eq!(s, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("control.groups"),
        "{body}"
    );
    let (_, fixed) = get(&gw, "/api/v1/groups/fixed").await;
    assert_eq!(fixed["lamps"], json!([lamp_id(0, 2)]), "{fixed}");
    stop(gw).await;

    // Second run: the group is back, and commands reach its lamps.
    let gw = start_gateway_logging(&config, &d.join("run2.log")).await;
    let (s, group) = get(&gw, "/api/v1/groups/evening").await;
    assert_eq!(s, 200, "{group}");
    assert_eq!(group["lamps"], json!(evening), "{group}");
    online(&gw, &evening).await;
    let (s, accepted) = call(
        &gw,
        reqwest::Method::POST,
        "/api/v1/commands",
        Some(json!({"target": {"group": "evening"}, "action": "dim", "level": 35})),
    )
    .await;
    assert_eq!(s, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/commands/{id}");
    eventually("the group's command done", || async {
        get(&gw, &path).await.1["status"] == "done"
    })
    .await;
    let (_, done) = get(&gw, &path).await;
    assert_eq!(done["tally"]["confirmed"], 3, "{done}");
    for (e, slc) in [(0, 0), (1, 0), (1, 2)] {
        assert_eq!(sim.slc_values(e, slc).dim_level, 35.0, "{e}/{slc}");
    }
    stop(gw).await;

    // The second cabinet leaves the inventory: the group keeps its lamp of
    // the first, with a warning, and the file follows.
    for name in ["cabinets.csv", "lamps.csv"] {
        let path = d.join("inventory").join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.contains("CAB-0002")).collect();
        std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    }
    let log = d.join("run3.log");
    let gw = start_gateway_logging(&config, &log).await;
    let (s, group) = get(&gw, "/api/v1/groups/evening").await;
    assert_eq!(s, 200, "{group}");
    assert_eq!(group["lamps"], json!([lamp_id(0, 0)]), "{group}");
    let logged = std::fs::read_to_string(&log).unwrap();
    let warning = logged
        .lines()
        .find(|l| l.contains("left the group"))
        .unwrap_or_else(|| panic!("no warning in:\n{logged}"));
    assert!(
        warning.contains("WARN") && warning.contains("evening"),
        "{warning}"
    );
    assert!(warning.contains(&lamp_id(1, 2)), "{warning}");
    let kept: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kept["groups"][0]["lamps"], json!([lamp_id(0, 0)]), "{kept}");

    // Its last lamp leaves the inventory at a reload: the group stays,
    // empty, and the file follows.
    let lamps = d.join("inventory/lamps.csv");
    let text = std::fs::read_to_string(&lamps).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{},", lamp_id(0, 0))))
        .collect();
    std::fs::write(&lamps, kept.join("\n") + "\n").unwrap();
    let (s, body) = call(&gw, reqwest::Method::POST, "/api/v1/admin/reload", None).await;
    assert_eq!(s, 200, "{body}");
    let (_, group) = get(&gw, "/api/v1/groups/evening").await;
    assert_eq!(group["lamps"], json!([]), "{group}");
    let kept: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kept["groups"][0]["lamps"], json!([]), "{kept}");

    // The file cannot be replaced (a folder stands in its place): the
    // change is refused with the reason, and nothing changes.
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir_all(file.join("in-the-way")).unwrap();
    let (s, body) = put_group(&gw, "evening", &[lamp_id(0, 1)]).await;
    assert_eq!(s, 500, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("groups.json") && message.contains("not changed"),
        "{body}"
    );
    let (s, body) = put_group(&gw, "late", &[lamp_id(0, 1)]).await;
    assert_eq!(s, 500, "{body}");
    let (_, all) = get(&gw, "/api/v1/groups").await;
    assert_eq!(
        all,
        json!({"evening": [], "fixed": [lamp_id(0, 2)]}),
        "{all}"
    );
    stop(gw).await;
    sim.shutdown().await;
}

/// A schedule may name a group set through the API: the check at start
/// (`check-config`, `run`) reads the groups file as the control does.
#[test]
fn a_schedule_may_name_a_group_set_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    std::fs::write(
        d.join("gateway.toml"),
        format!(
            "[paths]\nprofiles = \"{}\"\ndata = \"data\"\n[store]\nurl = \"none\"\n[mqtt]\nurl = \"none\"\n",
            profiles.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("inventory")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(d.join("inventory/districts.csv"), "id,name\nD01,North\n").unwrap();
    std::fs::write(
        d.join("inventory/cabinets.csv"),
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         CAB-1,D01,One,,,2,,,,,\n",
    )
    .unwrap();
    std::fs::write(
        d.join("inventory/lamps.csv"),
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L-1,CAB-1,1,,,100,,,,\nL-2,CAB-1,1,,,100,,,,\n",
    )
    .unwrap();
    std::fs::write(
        d.join("data/schedule.json"),
        r#"{"programs": [{"id": "late", "name": "late", "points": [{"at": "23:00", "level": "off"}]}],
            "calendars": [{"id": "c", "name": "c", "rules": [], "default_program": "late"}],
            "assignments": [{"id": "a", "calendar": "c", "scope": {"group": "evening"}}],
            "emergency_shifts": []}"#,
    )
    .unwrap();
    let check = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
            .args(["check-config", "--config"])
            .arg(d.join("gateway.toml"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, out) = check();
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("unknown group `evening`"), "{out}");
    // What `PUT /api/v1/groups/evening` leaves behind.
    std::fs::write(
        d.join("data/groups.json"),
        r#"{"groups": [{"name": "evening", "lamps": ["L-2"]}]}"#,
    )
    .unwrap();
    let (code, out) = check();
    assert_eq!(code, Some(0), "{out}");
    // A name both files define is a problem, named with the file.
    let toml = std::fs::read_to_string(d.join("gateway.toml")).unwrap();
    std::fs::write(
        d.join("gateway.toml"),
        toml + "[[control.groups]]\nname = \"evening\"\nlamps = [\"L-1\"]\n",
    )
    .unwrap();
    let (code, out) = check();
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("groups.json: group `evening` is also in [[control.groups]]"),
        "{out}"
    );
}
