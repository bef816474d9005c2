//! The supervision figures "now" on a hand-built city, each worked out by hand
//! below from the inventory and the faults, not from the code under test.

use crate::common::{eventually, test_settings};
use lamp_gateway::startup::Application;
use lamp_sim::{EndpointFault, SimConfig, Simulator, SlcFault};
use serde_json::{json, Value};
use tokio_modbus::prelude::*;

/// Three endpoints with an RTU and 4 SLCs each (the simulator puts SLC j on
/// unit j+2 and circuit j%4+1). District D01: C1 (ep0, 4 SLC lamps + 1 plain),
/// C2 (ep1, 4 SLC lamps), C5 (no RTU, 1 plain lamp). D02: C3 (ep2, 4 SLC lamps +
/// 2 plain), C4 (no RTU, 3 plain lamps). D03 has nothing.
fn write_city(dir: &std::path::Path, sim: &Simulator) {
    let ep = sim.endpoint_addrs();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("districts.csv"),
        "id,name\nD01,North\nD02,South\nD03,Empty\n",
    )
    .unwrap();
    let mut cab = String::from(
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n",
    );
    for (id, d, e) in [("C1", "D01", 0), ("C2", "D01", 1), ("C3", "D02", 2)] {
        cab += &format!("{id},{d},,,,4,{},tcp,R-{id},rtu-cabinet,1\n", ep[e]);
    }
    cab += "C4,D02,,,,2,,,,,\nC5,D01,,,,2,,,,,\n";
    std::fs::write(dir.join("cabinets.csv"), cab).unwrap();
    let mut lamps = String::from(
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n",
    );
    for c in ["C1", "C2", "C3"] {
        for j in 0..4 {
            lamps += &format!(
                "L-{c}-{j},{c},{},,,100,S-{c}-{j},slc-a-unit,{},\n",
                j % 4 + 1,
                j + 2
            );
        }
    }
    for (c, n) in [("C1", 1), ("C3", 2), ("C4", 3), ("C5", 1)] {
        for k in 0..n {
            lamps += &format!("P-{c}-{k},{c},1,,,100,,,,\n");
        }
    }
    std::fs::write(dir.join("lamps.csv"), lamps).unwrap();
}

fn close(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: expected null, got {got}"),
        Some(w) => {
            let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
            assert!((g - w).abs() < 1e-12, "{what}: expected {w}, got {g}");
        }
    }
}

fn check(s: &Value, counts: [u64; 11], ratios: [Option<f64>; 6]) {
    let names = [
        "cabinets_total",
        "rtus_installed",
        "rtus_online",
        "lamps_total",
        "slcs_installed",
        "slcs_online",
        "lamps_lit",
        "lamps_expected_lit",
        "controllers_intact",
        "facilities_total",
        "facilities_intact",
    ];
    for (n, want) in names.iter().zip(counts) {
        assert_eq!(s[n], want, "{} {n}: {s}", s["scope"]);
    }
    let names = [
        "rtu_installation_ratio",
        "rtu_online_rate",
        "slc_control_share",
        "slc_online_rate",
        "lighting_rate",
        "facility_intact_rate",
    ];
    for (n, want) in names.iter().zip(ratios) {
        close(&s[n], want, &format!("{} {n}", s["scope"]));
    }
}

#[tokio::test]
async fn figures_now_for_city_and_districts() {
    let sim = Simulator::start(SimConfig {
        endpoints: 3,
        slcs_per_endpoint: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_city(&dir.path().join("inventory"), &sim);
    let app = Application::build(test_settings(dir.path())).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let req = http
            .get(format!("{base}{path}"))
            .bearer_auth(crate::common::ADMIN_TOKEN);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    // Faults: C2's endpoint stops answering; lamp S-C1-2 fails; C3's circuit 1
    // contactor is opened over Modbus, unpowering L-C3-0.
    sim.set_endpoint_fault(1, Some(EndpointFault::Silent));
    sim.set_slc_fault(
        0,
        2,
        SlcFault {
            failed: true,
            ..Default::default()
        },
    );
    let mut ctx = tcp::connect_slave(sim.endpoint_addrs()[2], Slave(1))
        .await
        .unwrap();
    ctx.write_single_coil(0, false).await.unwrap().unwrap();

    eventually("faults visible to the gateway", || async {
        let (_, r2) = get("/api/v1/rtus/R-C2").await;
        let (_, r3) = get("/api/v1/rtus/R-C3").await;
        let (_, failed) = get("/api/v1/lamps/L-C1-2").await;
        let (_, dark) = get("/api/v1/lamps/L-C3-0").await;
        let (_, ok) = get("/api/v1/lamps/L-C1-0").await;
        r2["online"] == false
            && r3["values"]["contactors"] == json!([false, true, true, true])
            && failed["slc"]["lamp_failure"] == true
            && dark["slc"]["values"]["power"] == 0.0
            && ok["slc"]["online"] == true
            && get("/api/v1/lamps?online=false").await.1["total"] == 4
    })
    .await;
    // The facility intact rate is the alarms': once the failed lamp's alarm
    // stands, figures computed after it was seen count it.
    eventually("the lamp failure raised", || async {
        get("/api/v1/alarms?kind=lamp_failure&state=active").await.1["total"] == 1
    })
    .await;
    let seen = chrono::Utc::now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let all = loop {
        let (status, body) = get("/api/v1/metrics/districts").await;
        assert_eq!(status, 200);
        let at: chrono::DateTime<chrono::Utc> = body["at"].as_str().unwrap().parse().unwrap();
        if at > seen {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no figures computed after the alarm was seen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let d = &all["districts"];
    // D01: 3 cabinets, 2 RTUs (R-C2 offline); 10 lamps, 8 SLCs (C2's 4 offline);
    // C1's 4 should be lit, 3 are (S-C1-2 failed); controllers intact: R-C1 +
    // 3 SLCs of C1. Facilities: 10 lamps + 9 circuits with lamps (C1's 1-4,
    // C2's 1-4, C5's 1) + 3 cabinets = 22; faulty: L-C1-2 (lamp_failure) —
    // C2's silent endpoint is endpoint_down, no fault: 21 / 22.
    check(
        &d[0],
        [3, 2, 1, 10, 8, 4, 3, 4, 4, 22, 21],
        [
            Some(2.0 / 3.0),
            Some(0.5),
            Some(0.8),
            Some(0.5),
            Some(0.75),
            Some(21.0 / 22.0),
        ],
    );
    // D02: 2 cabinets, 1 RTU online; 9 lamps, 4 SLCs all online; circuit 1 off
    // so 3 should be lit and are; controllers intact: R-C3 + 4 SLCs.
    // Facilities: 9 lamps + 5 circuits (C3's 1-4, C4's 1) + 2 cabinets = 16;
    // the opened contactor is no fault (no supply, nothing planned on): 16 / 16.
    check(
        &d[1],
        [2, 1, 1, 9, 4, 4, 3, 3, 5, 16, 16],
        [
            Some(0.5),
            Some(1.0),
            Some(4.0 / 9.0),
            Some(1.0),
            Some(1.0),
            Some(1.0),
        ],
    );
    // D03: nothing, every ratio null.
    check(&d[2], [0; 11], [None; 6]);
    // City: the sums; facilities 38, 37 intact.
    check(
        &all["city"],
        [5, 3, 2, 19, 12, 8, 6, 7, 9, 38, 37],
        [
            Some(0.6),
            Some(2.0 / 3.0),
            Some(12.0 / 19.0),
            Some(8.0 / 12.0),
            Some(6.0 / 7.0),
            Some(37.0 / 38.0),
        ],
    );

    let (status, one) = get("/api/v1/metrics/summary?district=D02").await;
    assert_eq!(status, 200);
    assert_eq!(one["scope"], "D02");
    assert_eq!(one["lamps_total"], 9);
    let (_, city) = get("/api/v1/metrics/summary").await;
    assert_eq!(city["scope"], "city");
    assert_eq!(city["slcs_online"], 8);

    let (status, err) = get("/api/v1/metrics/summary?district=NOPE").await;
    assert_eq!(status, 400);
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unknown district `NOPE`"));

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("lampgw_slcs_online{scope=\"D01\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lampgw_lighting_rate{scope=\"D02\"} 1"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("lampgw_lighting_rate{scope=\"D03\"}"),
        "null ratios are not exported"
    );

    app.shutdown().await.unwrap();
    sim.shutdown().await;
}
