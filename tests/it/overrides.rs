//! Overrides outlive the process (issue 13): an override's expiry is kept in
//! `control.overrides_file` and re-armed after a restart — here on lamps no
//! calendar governs, with the gateway binary killed (SIGKILL) and started
//! again. One expires while the gateway is down (restored once the lamp is
//! polled again), one after the restart (restored on time); a lamp a newer
//! command touched is left alone (last command wins across the restart).

use crate::common::{eventually, sim_city, SimCity};
use crate::store_kill::{start_gateway_logging, Gateway, TOKEN};
use chrono::{DateTime, Duration, Utc};
use lamp_sim::SimConfig;
use serde_json::{json, Value};
use std::path::Path;

fn config(dir: &Path, inventory: &Path) -> std::path::PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[gateway]
id = "overrides-test"
[paths]
inventory = "{inv}"
profiles = "{profiles}"
[api]
listen = "127.0.0.1:0"
# Port 0: tests run side by side (the default is 1884).
[mqtt]
embedded_listen = "127.0.0.1:0"
[poll]
slc_interval = "100ms"
rtu_interval = "100ms"
request_timeout = "300ms"
connect_timeout = "500ms"
reconnect_min = "50ms"
reconnect_max = "200ms"
[log]
level = "info"
[[auth.tokens]]
name = "overrides-test"
hash = "{hash}"
role = "admin"
"#,
            inv = inventory.display(),
            profiles = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/profiles")
                .display(),
            hash = lamp_gateway::auth::hash_token(TOKEN),
        ),
    )
    .unwrap();
    path
}

async fn command(gw: &Gateway, lamp: &str, body: Value) {
    let r = gw
        .http
        .post(format!("{}/api/v1/lamps/{lamp}/commands", gw.base))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202, "{lamp} {body}");
}

async fn all_online(gw: &Gateway, lamps: usize) {
    eventually("every lamp online", || async {
        let v: Value = serde_json::from_str(&gw.text("/api/v1/lamps?online=true").await)
            .unwrap_or(Value::Null);
        v["total"].as_u64() == Some(lamps as u64)
    })
    .await;
}

/// Waits, with a deadline, until the wall clock is past `t`.
async fn past(t: DateTime<Utc>) {
    eventually(&format!("past {t}"), || async { Utc::now() > t }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_are_re_armed_after_a_kill_and_a_restart() {
    let SimCity {
        sim,
        dir,
        inventory,
    } = sim_city(SimConfig {
        endpoints: 1,
        slcs_per_endpoint: 4,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    })
    .await;
    let config = config(dir.path(), &inventory);
    let log = dir.path().join("gateway.log");
    let mut gw = start_gateway_logging(&config, &log).await;
    all_online(&gw, 4).await;

    // Lamps 1 to 3 on (what the overrides go back to).
    for j in 0..3 {
        command(
            &gw,
            &format!("LX-0001-00{}", j + 1),
            json!({"action": "on"}),
        )
        .await;
    }
    eventually("lamps 1-3 on", || async {
        (0..3).all(|j| sim.slc_values(0, j).switch)
    })
    .await;
    // Lamp 1 off until well after the restart, lamp 2 off for a moment
    // (it expires while the gateway is down), lamp 3 off until well after
    // the restart but then dimmed by a newer command.
    let late = Utc::now() + Duration::seconds(12);
    let soon = Utc::now() + Duration::seconds(2);
    command(
        &gw,
        "LX-0001-001",
        json!({"action": "off", "expires_at": late.to_rfc3339()}),
    )
    .await;
    command(
        &gw,
        "LX-0001-002",
        json!({"action": "off", "expires_at": soon.to_rfc3339()}),
    )
    .await;
    command(
        &gw,
        "LX-0001-003",
        json!({"action": "off", "expires_at": late.to_rfc3339()}),
    )
    .await;
    eventually("lamps 1-3 off", || async {
        (0..3).all(|j| !sim.slc_values(0, j).switch)
    })
    .await;
    command(&gw, "LX-0001-003", json!({"action": "dim", "level": 30})).await;
    eventually("lamp 3 dimmed to 30 %", || async {
        let v = sim.slc_values(0, 2);
        v.switch && (v.dim_level - 30.0).abs() < 0.5
    })
    .await;
    // On disk before the kill: lamps 1 and 2 wait, lamp 3 no longer.
    let kept: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("overrides.json")).unwrap()).unwrap();
    let lamps: Vec<&str> = kept
        .as_object()
        .unwrap()
        .values()
        .flat_map(|p| p["restore"].as_array().unwrap())
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert_eq!(lamps, ["LX-0001-001", "LX-0001-002"], "{kept}");

    gw.child.kill().await.unwrap();
    // Lamp 2's override expires while nobody runs.
    past(soon).await;
    assert!(!sim.slc_values(0, 1).switch, "nothing restored it yet");
    let gw = start_gateway_logging(&config, &log).await;
    eventually("lamp 2 back on after the restart", || async {
        sim.slc_values(0, 1).switch
    })
    .await;
    assert!(Utc::now() < late, "the test ran too slowly to tell");
    assert!(
        !sim.slc_values(0, 0).switch,
        "lamp 1 still off: its override runs on"
    );
    past(late).await;
    eventually("lamp 1 back on at its expiry", || async {
        sim.slc_values(0, 0).switch
    })
    .await;
    // Lamp 3 keeps the newer command.
    let v = sim.slc_values(0, 2);
    assert!(v.switch && (v.dim_level - 30.0).abs() < 0.5, "{v:?}");
    eventually("nothing left to re-arm", || async {
        std::fs::read(dir.path().join("overrides.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
    })
    .await;
    drop(gw);
    sim.shutdown().await;
}
