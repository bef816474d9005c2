//! Dial-in DTUs as the API shows them: a DTU that registers on the dial-in
//! listener appears on its RTU (`dialin`), in `/readyz` details for a
//! city-wide token only, and in `/metrics`.

use crate::common::db::metric;
use crate::common::{eventually, spawn_app_with};
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Puts the first cabinet of the written inventory behind `dtu:<id>`.
fn first_cabinet_dials_in(inventory: &std::path::Path, id: &str) {
    let path = inventory.join("cabinets.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == "endpoint").unwrap();
    let mut row: Vec<String> = lines[1].split(',').map(String::from).collect();
    row[col] = format!("dtu:{id}");
    row[header.iter().position(|h| *h == "framing").unwrap()] = "rtu-over-tcp".into();
    lines[1] = row.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn a_registered_dtu_shows_on_its_rtu_in_readyz_and_metrics() {
    let cfg = SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 1,
        ..SimConfig::default()
    };
    let t = spawn_app_with(cfg, InventoryOptions::default(), |s| {
        first_cabinet_dials_in(&s.paths.inventory, "JN-CAB-0001");
        s.dialin.listen = Some("127.0.0.1:0".into());
    })
    .await;
    let app = t.app.as_ref().unwrap();
    let addr = app.dialin_addr().expect("the dial-in listener is on");
    let rtu = |v: &Value| -> Value {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["endpoint"] == "dtu:JN-CAB-0001")
            .cloned()
            .unwrap()
    };

    let (status, before) = t.get("/api/v1/rtus").await;
    assert_eq!(status, 200, "{before}");
    let d = &rtu(&before)["dialin"];
    assert_eq!(d["id"], "JN-CAB-0001", "{before}");
    assert_eq!(d["connected"], false);
    assert!(d["peer"].is_null() && d["connected_since"].is_null());
    // An RTU on a TCP endpoint has no `dialin`.
    let other = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["endpoint"] != "dtu:JN-CAB-0001")
        .unwrap();
    assert!(other.get("dialin").is_none(), "{other}");

    let mut dtu = TcpStream::connect(addr).await.unwrap();
    dtu.write_all(b"JN-CAB-0001").await.unwrap();
    let peer = dtu.local_addr().unwrap().to_string();
    eventually("the DTU is connected on its RTU", || async {
        let (_, v) = t.get("/api/v1/rtus").await;
        rtu(&v)["dialin"]["connected"] == true
    })
    .await;
    let (_, after) = t.get("/api/v1/rtus").await;
    let d = &rtu(&after)["dialin"];
    assert_eq!(d["peer"], peer.as_str(), "{after}");
    assert!(d["connected_since"].is_string(), "{after}");
    let id = rtu(&after)["id"].as_str().unwrap().to_string();
    let (_, one) = t.get(&format!("/api/v1/rtus/{id}")).await;
    assert_eq!(one["dialin"]["connected"], true, "{one}");

    let (_, ready) = t.get("/readyz").await;
    assert_eq!(ready["dialin"][0]["id"], "JN-CAB-0001", "{ready}");
    assert_eq!(ready["dialin"][0]["connected"], true, "{ready}");
    let (_, text) = t.get_text("/readyz").await;
    assert!(!text.contains("dialin"), "a stranger sees the DTUs: {text}");

    let (_, metrics) = t.get_text("/metrics").await;
    assert_eq!(
        metric(&metrics, "lampgw_dialin_registrations_total"),
        1.0,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "lampgw_dialin_connected"), 1.0);
    assert_eq!(metric(&metrics, "lampgw_dialin_dtus"), 1.0);
    assert!(
        metrics.contains("lampgw_dialin_refused_total{reason=\"unknown_id\"} 0"),
        "{metrics}"
    );
    assert!(!metrics.contains(&peer), "/metrics names the DTU's address");
    t.stop().await;
}
