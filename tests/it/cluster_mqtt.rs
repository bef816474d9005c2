//! Two gateway instances of one city (one `gateway.id`, one PostgreSQL, one
//! topic root) on the real Mosquitto: each is its own MQTT client, with its
//! presence at `{root}/gateway/{instance}/status` and its own last will. With
//! one client id between them the broker would throw each off in turn, and
//! one instance's will would say the city's gateway is offline while the
//! other runs.

use crate::cluster::config_with;
use crate::common::db::PgTestDb;
use crate::common::eventually;
use crate::mqtt::harness::{clear_retained_under, unique_root, Subscriber, MOSQUITTO};
use crate::store_kill::{start_gateway_logging, Gateway};
use lamp_sim::{InventoryOptions, SimConfig, Simulator};

/// The last presence message of each instance's topic, as seen.
fn presence(sub: &Subscriber, root: &str, instance: &str) -> Option<String> {
    let topic = format!("{root}/gateway/{instance}/status");
    let seen = sub.seen.lock();
    seen.log
        .iter()
        .rev()
        .find(|(t, _, _)| *t == topic)
        .map(|(_, text, _)| text.clone())
}

#[tokio::test]
async fn each_instance_has_its_own_presence_and_last_will() {
    let sim = Simulator::start(SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory");
    std::fs::create_dir_all(&inventory).unwrap();
    sim.write_inventory(&inventory, &InventoryOptions::default())
        .unwrap();
    let pg = PgTestDb::new().await;
    let root = unique_root("cluster");
    let ids = [format!("a-{root}"), format!("b-{root}")];
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/gateway/+/status")).await;
    let mqtt = format!("url = \"mqtt://{MOSQUITTO}\"\ntopic_root = \"{root}\"");
    let mut fleet: Vec<Gateway> = Vec::new();
    for id in &ids {
        let config = config_with(dir.path(), id, "city", &inventory, &pg.url(), &mqtt);
        let log = dir.path().join(id).join("gateway.log");
        fleet.push(start_gateway_logging(&config, &log).await);
    }
    eventually("both instances online, each on its own topic", || async {
        ids.iter()
            .all(|id| presence(&sub, &root, id).as_deref() == Some("online"))
    })
    .await;
    // Nothing on the shared `gateway.id`'s topic: no instance speaks for
    // the other.
    assert_eq!(presence(&sub, &root, "city"), None);

    // kill -9 one: the broker sends its will; the other stays online.
    let mut b = fleet.pop().unwrap();
    b.child.kill().await.unwrap();
    eventually("the killed instance's will says offline", || async {
        presence(&sub, &root, &ids[1]).as_deref() == Some("offline")
    })
    .await;
    assert_eq!(presence(&sub, &root, &ids[0]).as_deref(), Some("online"));
    // And it was never thrown off the broker by a namesake: one `online`.
    let onlines = sub
        .seen
        .lock()
        .log
        .iter()
        .filter(|(t, text, _)| t.ends_with(&format!("/{}/status", ids[0])) && text == "online")
        .count();
    assert_eq!(onlines, 1, "{:?}", sub.seen.lock().log);
    drop(fleet);
    sub.stop();
    clear_retained_under("127.0.0.1", 1883, &root, &ids).await;
}
