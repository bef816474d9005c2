//! Reloading the configuration without a restart (issue 12): unchanged
//! endpoints poll on without a pause on the same link, removed ones stop,
//! new ones start; a bad configuration changes nothing and says why; tokens
//! and groups come from the settings file again; `SIGHUP` does the same as
//! the API.

use crate::common::{eventually, lamp_id, sim_city, spawn_app_with, SimCity, ADMIN_TOKEN};
use crate::mqtt::harness::{unique_root, Subscriber, MOSQUITTO};
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keeps the lines of the inventory's `cabinets.csv` and `lamps.csv` for
/// which `keep(line)` holds (and the header).
fn filter_inventory(dir: &Path, keep: impl Fn(&str) -> bool) {
    for file in ["cabinets.csv", "lamps.csv"] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            if i == 0 || keep(line) {
                out.push_str(line);
                out.push('\n');
            }
        }
        std::fs::write(&path, out).unwrap();
    }
}

async fn post_reload(http: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let r = http
        .post(format!("{base}/api/v1/admin/reload"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(http: &reqwest::Client, base: &str, token: &str, path: &str) -> (u16, Value) {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Samples an endpoint's answered-request count every 5 ms until stopped;
/// returns the longest time the count stood still.
fn watch_requests(sim: &Simulator, endpoint: usize, stop: Arc<AtomicBool>) -> Duration {
    let mut last = sim.endpoint_request_count(endpoint);
    let mut since = Instant::now();
    let mut longest = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(5));
        let n = sim.endpoint_request_count(endpoint);
        if n != last {
            longest = longest.max(since.elapsed());
            last = n;
            since = Instant::now();
        }
    }
    longest.max(since.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_unchanged_endpoints_polling_and_swaps_the_rest() {
    let cfg = SimConfig {
        endpoints: 3,
        slcs_per_endpoint: 4,
        ..SimConfig::default()
    };
    let mut t = spawn_app_with(cfg, InventoryOptions::default(), |_| {}).await;
    let inv = t.dir.path().join("inventory");
    let full = (
        std::fs::read_to_string(inv.join("cabinets.csv")).unwrap(),
        std::fs::read_to_string(inv.join("lamps.csv")).unwrap(),
    );
    // Start without the third cabinet (endpoint 2): stop the gateway the
    // harness started and start one on the smaller inventory.
    t.app.take().unwrap().shutdown().await.unwrap();
    filter_inventory(&inv, |l| !l.contains("CAB-0003"));
    let mut settings = crate::common::test_settings(t.dir.path());
    settings.store.url = lamp_gateway::store::Backend::Sqlite(t.dir.path().join("reload.db"));
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let stop = app.stopper();
    let running = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let sim = &t.sim;
    eventually("endpoints 0 and 1 online", || async {
        let a = get(
            &http,
            &base,
            ADMIN_TOKEN,
            &format!("/api/v1/lamps/{}", lamp_id(0, 3)),
        )
        .await;
        let b = get(
            &http,
            &base,
            ADMIN_TOKEN,
            &format!("/api/v1/lamps/{}", lamp_id(1, 3)),
        )
        .await;
        a.1["slc"]["online"] == true && b.1["slc"]["online"] == true
    })
    .await;
    let (s, missing) = get(
        &http,
        &base,
        ADMIN_TOKEN,
        &format!("/api/v1/lamps/{}", lamp_id(2, 0)),
    )
    .await;
    assert_eq!(s, 404, "{missing}");
    let kept_lamp = lamp_id(0, 1);
    let (_, before) = get(
        &http,
        &base,
        ADMIN_TOKEN,
        &format!("/api/v1/lamps/{kept_lamp}"),
    )
    .await;
    let (_, transitions_before) = get(&http, &base, ADMIN_TOKEN, "/api/v1/transitions").await;
    // (The harness's first gateway made a link too.)
    let connections_before = sim.endpoint_connections(0);

    // Endpoint 1 leaves, endpoint 2 joins; endpoint 0 stays as it is.
    std::fs::write(inv.join("cabinets.csv"), &full.0).unwrap();
    std::fs::write(inv.join("lamps.csv"), &full.1).unwrap();
    filter_inventory(&inv, |l| !l.contains("CAB-0002"));
    let watching = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Handle::current();
    let (longest, (status, body)) = std::thread::scope(|scope| {
        let w = watching.clone();
        let watcher = scope.spawn(move || watch_requests(sim, 0, w));
        let answer =
            tokio::task::block_in_place(|| rt.block_on(post_reload(&http, &base, ADMIN_TOKEN)));
        // Keep watching for a few cycles after the switch.
        std::thread::sleep(Duration::from_millis(500));
        watching.store(true, Ordering::Relaxed);
        (watcher.join().unwrap(), answer)
    });
    assert_eq!(status, 200, "{body}");
    let addr = |i: usize| json!([sim.endpoint_addrs()[i].to_string()]);
    assert_eq!(body["endpoints"]["kept"], addr(0), "{body}");
    assert_eq!(body["endpoints"]["stopped"], addr(1), "{body}");
    assert_eq!(body["endpoints"]["started"], addr(2), "{body}");
    assert_eq!(body["endpoints"]["restarted"], json!([]), "{body}");
    assert_eq!(body["restart_needed"], json!([]), "{body}");
    println!("reload took {} ms", body["took_ms"]);
    println!("longest pause in endpoint 0's requests across the reload: {longest:?}");
    // Polled every 100 ms; a stop-and-start would reconnect (checked below)
    // and lose the carried state. The bound is loose for a shared machine.
    assert!(
        longest < Duration::from_secs(2),
        "endpoint 0 paused {longest:?}"
    );
    assert_eq!(
        sim.endpoint_connections(0),
        connections_before,
        "endpoint 0 kept its link through the reload"
    );
    // The new endpoint's devices come online; the removed one's are gone.
    eventually("endpoint 2 online", || async {
        let (s, l) = get(
            &http,
            &base,
            ADMIN_TOKEN,
            &format!("/api/v1/lamps/{}", lamp_id(2, 3)),
        )
        .await;
        s == 200 && l["slc"]["online"] == true
    })
    .await;
    let (s, gone) = get(
        &http,
        &base,
        ADMIN_TOKEN,
        &format!("/api/v1/lamps/{}", lamp_id(1, 0)),
    )
    .await;
    assert_eq!(s, 404, "{gone}");
    // The kept lamp is the same device it was: online since the same moment,
    // no transition for it, counters carried.
    let (_, after) = get(
        &http,
        &base,
        ADMIN_TOKEN,
        &format!("/api/v1/lamps/{kept_lamp}"),
    )
    .await;
    assert_eq!(after["slc"]["online"], true);
    assert_eq!(
        after["slc"]["since"], before["slc"]["since"],
        "{before} vs {after}"
    );
    let (_, transitions_after) = get(&http, &base, ADMIN_TOKEN, "/api/v1/transitions").await;
    let count = |v: &Value, id: &str| {
        v["transitions"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|t| t["device_id"] == id).count())
    };
    assert_eq!(
        count(&transitions_after, &kept_lamp),
        count(&transitions_before, &kept_lamp),
        "a reload is no transition"
    );
    assert!(
        transitions_after["total"].as_u64() >= transitions_before["total"].as_u64(),
        "counters carried: {transitions_before} then {transitions_after}"
    );
    // The store names the new endpoint's samples by the new inventory.
    let from = (chrono::Utc::now() - chrono::Duration::minutes(5)).timestamp();
    let to = (chrono::Utc::now() + chrono::Duration::minutes(1)).timestamp();
    let history = format!(
        "/api/v1/lamps/{}/history?from={}&to={}",
        lamp_id(2, 3),
        chrono::DateTime::from_timestamp(from, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ"),
        chrono::DateTime::from_timestamp(to, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ"),
    );
    eventually("the new endpoint's samples in the store", || async {
        let (s, b) = get(&http, &base, ADMIN_TOKEN, &history).await;
        s == 200 && b["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    // The new endpoint's lamps can be commanded (the control's new wiring).
    let r = http
        .post(format!("{base}/api/v1/lamps/{}/commands", lamp_id(2, 2)))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"action": "off"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let cmd: Value = r.json().await.unwrap();
    let id = cmd["id"].as_str().unwrap().to_string();
    eventually("the command on the new endpoint confirmed", || async {
        let (_, c) = get(&http, &base, ADMIN_TOKEN, &format!("/api/v1/commands/{id}")).await;
        c["targets"][0]["state"] == "confirmed"
    })
    .await;
    assert!(
        !t.sim.slc_values(2, 2).switch,
        "the lamp on the new endpoint is off"
    );
    stop.cancel();
    running.await.unwrap().unwrap();
    t.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_changes_nothing_and_says_why() {
    let mut t = spawn_app_with(SimConfig::default(), InventoryOptions::default(), |_| {}).await;
    let app = t.app.take().unwrap();
    let base = t.base.clone();
    let stop = app.stopper();
    let running = tokio::spawn(app.run_until_stopped());
    t.all_online().await;
    let connections = t.sim.endpoint_connections(0);
    let (_, lamps_before) = t.get("/api/v1/lamps").await;
    let lamps = t.dir.path().join("inventory/lamps.csv");
    let mut text = std::fs::read_to_string(&lamps).unwrap();
    let line = text.lines().count() + 1;
    let first = text.lines().nth(1).unwrap().to_string();
    // A lamp on a cabinet that does not exist.
    let bad = first
        .replacen("CAB-0001", "CAB-9999", 1)
        .replacen("LX-0001-001", "LX-NEW-1", 1);
    text.push_str(&bad);
    text.push('\n');
    std::fs::write(&lamps, text).unwrap();
    let (status, body) = post_reload(&t.http, &base, ADMIN_TOKEN).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(
        message.contains(&format!("lamps.csv:{line}")),
        "names the line: {message}"
    );
    assert!(message.contains("CAB-9999"), "{message}");
    // Still polling the same devices on the same links.
    let (_, lamps_after) = t.get("/api/v1/lamps").await;
    assert_eq!(lamps_after["total"], lamps_before["total"]);
    let served = t.sim.endpoint_request_count(0);
    eventually("polling goes on", || async {
        t.sim.endpoint_request_count(0) > served + 5
    })
    .await;
    assert_eq!(t.sim.endpoint_connections(0), connections);
    stop.cancel();
    running.await.unwrap().unwrap();
    t.sim.shutdown().await;
}

/// Settings as a file, so that a reload reads tokens and groups again.
fn settings_file(dir: &Path, tokens: &[(&str, &str, &str)], groups: &str, slc_interval: &str) {
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let mut text = format!(
        r#"
[paths]
inventory = "{inv}"
profiles = "{profiles}"
data = "{dir}"
[api]
listen = "127.0.0.1:0"
[poll]
slc_interval = "{slc_interval}"
rtu_interval = "100ms"
request_timeout = "300ms"
[store]
url = "none"
[mqtt]
url = "none"
{groups}
"#,
        inv = dir.join("inventory").display(),
        profiles = profiles.display(),
        dir = dir.display(),
    );
    for (name, token, role) in tokens {
        text.push_str(&format!(
            "[[auth.tokens]]\nname = \"{name}\"\nhash = \"{}\"\nrole = \"{role}\"\n",
            lamp_gateway::auth::hash_token(token)
        ));
    }
    std::fs::write(dir.join("gateway.toml"), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_takes_tokens_and_groups_from_the_settings_file() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory");
    std::fs::create_dir_all(&inv).unwrap();
    sim.write_inventory(&inv, &InventoryOptions::default())
        .unwrap();
    let (l1, l2) = (lamp_id(0, 0), lamp_id(0, 1));
    let group_a = format!("[[control.groups]]\nname = \"night-a\"\nlamps = [\"{l1}\"]\n");
    settings_file(
        dir.path(),
        &[
            ("admin", "lgw_old_admin", "admin"),
            ("viewer", "lgw_viewer", "viewer"),
        ],
        &group_a,
        "100ms",
    );
    let settings = Settings::load(Some(&dir.path().join("gateway.toml"))).unwrap();
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let stop = app.stopper();
    let running = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    // A group set through the API survives a reload; one from the file is
    // replaced by the file's.
    let r = http
        .put(format!("{base}/api/v1/groups/by-hand"))
        .bearer_auth("lgw_old_admin")
        .json(&json!({"lamps": [l2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, _) = post_reload(&http, &base, "lgw_viewer").await;
    assert_eq!(s, 403, "a viewer may not reload");

    let group_b = format!("[[control.groups]]\nname = \"night-b\"\nlamps = [\"{l2}\"]\n");
    settings_file(
        dir.path(),
        &[("admin", "lgw_new_admin", "admin")],
        &group_b,
        "150ms",
    );
    let (status, body) = post_reload(&http, &base, "lgw_old_admin").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["restart_needed"], json!(["poll"]), "{body}");
    assert_eq!(body["tokens"], 1);
    assert_eq!(
        body["endpoints"]["kept"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    let (s, _) = get(&http, &base, "lgw_old_admin", "/api/v1/lamps").await;
    assert_eq!(s, 401, "the removed token is refused");
    let (s, _) = get(&http, &base, "lgw_viewer", "/api/v1/lamps").await;
    assert_eq!(s, 401, "the removed viewer token is refused");
    let (s, groups) = get(&http, &base, "lgw_new_admin", "/api/v1/groups").await;
    assert_eq!(s, 200, "{groups}");
    let names: Vec<&str> = groups
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["by-hand", "night-b"], "{groups}");

    // A group naming a lamp that is not there: refused, nothing changed.
    settings_file(
        dir.path(),
        &[("admin", "lgw_other_admin", "admin")],
        "[[control.groups]]\nname = \"x\"\nlamps = [\"LX-NONE\"]\n",
        "150ms",
    );
    let (status, body) = post_reload(&http, &base, "lgw_new_admin").await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LX-NONE"),
        "{body}"
    );
    let (s, _) = get(&http, &base, "lgw_new_admin", "/api/v1/lamps").await;
    assert_eq!(s, 200, "the tokens in force stay");
    stop.cancel();
    running.await.unwrap().unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_running_binary_and_mqtt_follows() {
    let SimCity {
        sim,
        dir,
        inventory: inv,
    } = sim_city(SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 3,
        ..SimConfig::default()
    })
    .await;
    let full = (
        std::fs::read_to_string(inv.join("cabinets.csv")).unwrap(),
        std::fs::read_to_string(inv.join("lamps.csv")).unwrap(),
    );
    filter_inventory(&inv, |l| !l.contains("CAB-0002"));
    let root = unique_root("reload");
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[gateway]
id = "gw-{root}"
[paths]
inventory = "{inv}"
profiles = "{profiles}"
data = "{data}"
[api]
listen = "127.0.0.1:0"
[poll]
slc_interval = "100ms"
rtu_interval = "100ms"
[mqtt]
url = "mqtt://{MOSQUITTO}"
topic_root = "{root}"
[[auth.tokens]]
name = "admin"
hash = "{hash}"
role = "admin"
"#,
            inv = inv.display(),
            profiles = profiles.display(),
            data = dir.path().display(),
            hash = lamp_gateway::auth::hash_token(ADMIN_TOKEN),
        ),
    )
    .unwrap();
    let (host, port) = MOSQUITTO.split_once(':').unwrap();
    let sub = Subscriber::start(host, port.parse().unwrap(), &format!("{root}/#")).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gateway binary starts");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let base = first.trim().rsplit(' ').next().unwrap().to_string();
    assert!(base.starts_with("http://"), "{first}");
    let http = reqwest::Client::new();
    let new_lamp = lamp_id(1, 2);
    let topic_of = |lamp: &str, district: &str| format!("{root}/{district}/lamp/{lamp}/state");
    eventually("the first cabinet's lamps published", || async {
        sub.state(&topic_of(&lamp_id(0, 2), "D01")).is_some()
    })
    .await;
    let (s, _) = get(
        &http,
        &base,
        ADMIN_TOKEN,
        &format!("/api/v1/lamps/{new_lamp}"),
    )
    .await;
    assert_eq!(s, 404);

    std::fs::write(inv.join("cabinets.csv"), &full.0).unwrap();
    std::fs::write(inv.join("lamps.csv"), &full.1).unwrap();
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    eventually("the new cabinet's lamp online after SIGHUP", || async {
        let (s, l) = get(
            &http,
            &base,
            ADMIN_TOKEN,
            &format!("/api/v1/lamps/{new_lamp}"),
        )
        .await;
        s == 200 && l["slc"]["online"] == true
    })
    .await;
    let (_, lamp) = get(
        &http,
        &base,
        ADMIN_TOKEN,
        &format!("/api/v1/lamps/{new_lamp}"),
    )
    .await;
    let district = lamp["district"].as_str().unwrap().to_string();
    eventually("the new lamp's state on MQTT", || async {
        sub.state(&topic_of(&new_lamp, &district)).is_some()
    })
    .await;
    // Still alive and answering, and it stops cleanly on SIGTERM.
    let (s, _) = get(&http, &base, ADMIN_TOKEN, "/api/v1/lamps").await;
    assert_eq!(s, 200);
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    sub.stop();
    crate::mqtt::harness::clear_retained(host, port.parse().unwrap(), &root).await;
    sim.shutdown().await;
}
