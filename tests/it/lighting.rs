//! One lighting rule for the figures now and over windows: a confirmed
//! command is what the live figures judge by as soon as it is confirmed, and
//! every lamp sample the store keeps carries the verdict the live state gave
//! on the same facts.

use crate::common::{eventually, lamp_id, spawn_app_with, TestApp};
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::json;
use sqlx::Row;
use std::collections::HashMap;

async fn expected_lit(t: &TestApp) -> (u64, u64) {
    let (status, s) = t.get("/api/v1/metrics/summary").await;
    assert_eq!(status, 200, "{s}");
    (
        s["lamps_expected_lit"].as_u64().unwrap(),
        s["lamps_lit"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn the_figures_now_and_the_stored_verdicts_agree() {
    let t = spawn_app_with(
        SimConfig {
            endpoints: 2,
            slcs_per_endpoint: 4,
            districts: 1,
            ..SimConfig::default()
        },
        InventoryOptions {
            cabinets_without_rtu: 0,
            lamps_without_slc_per_cabinet: 0,
        },
        |_| {},
    )
    .await;
    t.all_online().await;
    let (expected_before, lit_before) = expected_lit(&t).await;
    assert!(expected_before > 0 && lit_before > 0, "lamps burn at start");

    // Switched off by a confirmed command: the lamp no longer should be lit,
    // as soon as the command says confirmed (no poll needed in between).
    let lamp = lamp_id(1, 2);
    let (status, accepted) = t
        .post(
            &format!("/api/v1/lamps/{lamp}/commands"),
            json!({"action": "off"}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let done = t.command_done(accepted["id"].as_str().unwrap()).await;
    assert_eq!(done["targets"][0]["state"], "confirmed", "{done}");
    let (expected_after, _) = expected_lit(&t).await;
    assert_eq!(expected_after, expected_before - 1);

    // The store keeps the commanded state with the lamp's later samples.
    let db = t.dir.path().join("store.db");
    // The gateway writes while this reads: wait on its locks rather than fail.
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .busy_timeout(std::time::Duration::from_secs(10)),
    )
    .await
    .unwrap();
    eventually("a stored sample of the lamp carries the command", || {
        let pool = pool.clone();
        let lamp = lamp.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM lamp_samples WHERE lamp_id = ?1 AND commanded = 0 \
                 AND should_be_lit = 0 AND lit = 0",
            )
            .bind(&lamp)
            .fetch_one(&pool)
            .await
            .unwrap()
                > 0
        }
    })
    .await;

    // After a clean stop the store has every sample: each lamp's last stored
    // verdict is the live state's verdict on the same, final facts.
    let live = t.live.clone();
    t.stop().await;
    let rows = sqlx::query(
        "SELECT lamp_id, should_be_lit, lit, commanded FROM lamp_samples s \
         WHERE time = (SELECT MAX(time) FROM lamp_samples WHERE lamp_id = s.lamp_id)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let stored: HashMap<String, (bool, bool, Option<bool>)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                (r.get(1), r.get(2), r.get::<Option<bool>, _>(3)),
            )
        })
        .collect();
    let inner = live.read();
    let inv = &live.inventory;
    assert_eq!(stored.len(), inv.lamps.len());
    for (i, l) in inv.lamps.iter().enumerate() {
        let now = live.lighting(&inner, i);
        let (should, lit, commanded) = stored[&l.id];
        assert_eq!((should, lit), (now.expected, now.lit), "lamp {}", l.id);
        assert_eq!(commanded, inner.commanded[i], "lamp {}", l.id);
    }
    assert_eq!(stored[&lamp], (false, false, Some(false)));
}
