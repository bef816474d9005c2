//! The HTTP control interface, the scenario file and the inventory files.

mod common;

use common::*;
use lamp_sim::{
    CircuitFault, EndpointFault, Framing, InventoryOptions, RtuFault, Scenario, SlcFault,
    StuckContactor, SupplyCut,
};
use tokio_modbus::prelude::*;

#[tokio::test]
async fn control_interface_flips_faults() {
    let sim = start("slc-a-unit", 2, 3, Framing::Tcp).await;
    let c = sim.control_addr().unwrap();

    let (st, list) = http(c, "GET", "/endpoints", None).await;
    assert_eq!(st, 200);
    assert_eq!(list[1]["addr"], sim.endpoint_addrs()[1].to_string());

    let (st, _) = http(
        c,
        "PUT",
        "/endpoints/1/fault",
        Some(r#"{"kind":"exception","code":4}"#),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        sim.endpoint_fault(1),
        Some(EndpointFault::Exception { code: 4 })
    );
    let mut ctx = tcp(sim.endpoint_addrs()[1], 1).await;
    let r = within(ctx.read_coils(0, 4)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::ServerDeviceFailure));
    let (st, _) = http(c, "DELETE", "/endpoints/1/fault", None).await;
    assert_eq!(st, 200);
    within(ctx.read_coils(0, 4)).await.unwrap().unwrap();

    let (st, _) = http(
        c,
        "PUT",
        "/endpoints/0/slcs/2/fault",
        Some(r#"{"failed":true}"#),
    )
    .await;
    assert_eq!(st, 200);
    let (st, v) = http(c, "GET", "/endpoints/0/slcs/2", None).await;
    assert_eq!(
        (st, v["fault_flags"].as_u64(), v["power"].as_f64()),
        (200, Some(1), Some(0.0))
    );

    let (st, _) = http(
        c,
        "PUT",
        "/endpoints/0/rtu/alarms",
        Some(r#"{"door":true,"leakage":true}"#),
    )
    .await;
    assert_eq!(st, 200);
    let (_, rtu) = http(c, "GET", "/endpoints/0/rtu", None).await;
    assert_eq!(
        (rtu["door_alarm"].as_bool(), rtu["leakage_alarm"].as_bool()),
        (Some(true), Some(true))
    );

    // no_answer, per SLC and per RTU, set, read back and cleared.
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/0/slcs/1/fault",
        Some(r#"{"no_answer":true}"#),
    )
    .await;
    assert_eq!((st, v["fault"]["no_answer"].as_bool()), (200, Some(true)));
    assert!(sim.slc_fault(0, 1).no_answer);
    let (st, v) = http(c, "GET", "/endpoints/0/slcs/1/fault", None).await;
    assert_eq!((st, v["fault"]["no_answer"].as_bool()), (200, Some(true)));
    let (st, _) = http(c, "PUT", "/endpoints/0/slcs/1/fault", Some("{}")).await;
    assert_eq!(st, 200);
    assert_eq!(sim.slc_fault(0, 1), SlcFault::default());
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/1/rtu/fault",
        Some(r#"{"no_answer":true}"#),
    )
    .await;
    assert_eq!((st, v["fault"]["no_answer"].as_bool()), (200, Some(true)));
    assert_eq!(sim.rtu_fault(1), RtuFault { no_answer: true });
    let (_, list) = http(c, "GET", "/endpoints", None).await;
    assert_eq!(list[1]["rtu_fault"]["no_answer"], true);
    let (st, v) = http(c, "GET", "/endpoints/1/rtu/fault", None).await;
    assert_eq!((st, v["fault"]["no_answer"].as_bool()), (200, Some(true)));
    let (st, _) = http(c, "PUT", "/endpoints/1/rtu/fault", Some("{}")).await;
    assert_eq!(st, 200);
    assert_eq!(sim.rtu_fault(1), RtuFault::default());
    let (st, e) = http(c, "PUT", "/endpoints/1/rtu/fault", Some(r#"{"mute":true}"#)).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("invalid_body"))
    );

    let (st, _) = http(c, "POST", "/unfreeze", None).await;
    assert_eq!(st, 200);
    assert!(!sim.frozen());
    http(c, "POST", "/freeze", None).await;
    assert!(sim.frozen());

    let (st, e) = http(c, "GET", "/endpoints/9/rtu", None).await;
    assert_eq!((st, e["error"]["code"].as_str()), (404, Some("not_found")));
    let (st, _) = http(c, "GET", "/endpoints/0/slcs/3", None).await;
    assert_eq!(st, 404);
    let (st, e) = http(c, "PUT", "/endpoints/0/fault", Some(r#"{"kind":"nap"}"#)).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("invalid_body"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn control_interface_sets_circuit_faults() {
    let sim = start("slc-a-unit", 2, 8, Framing::Tcp).await;
    let c = sim.control_addr().unwrap();

    // A cut that still answers: SLCs 1 and 5 (circuit 2) read 0 V.
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/0/circuits/2/fault",
        Some(r#"{"cut":{}}"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"endpoint": 0, "circuit": 2,
            "fault": {"cut": {"answers": true}, "stuck": null}})
    );
    let (st, g) = http(c, "GET", "/endpoints/0/circuits/2/fault", None).await;
    assert_eq!((st, &g), (200, &v));
    let (_, slc) = http(c, "GET", "/endpoints/0/slcs/5", None).await;
    assert_eq!(
        (
            slc["voltage"].as_f64(),
            slc["power"].as_f64(),
            slc["comm_ok"].as_bool()
        ),
        (Some(0.0), Some(0.0), Some(true))
    );
    let (_, rtu) = http(c, "GET", "/endpoints/0/rtu", None).await;
    assert_eq!(
        rtu["contactors"],
        serde_json::json!([true, true, true, true])
    );

    // Both parts at once; the listing shows circuits with a fault only.
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/0/circuits/1/fault",
        Some(r#"{"cut":{"answers":false},"stuck":{"closed":false}}"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        sim.circuit_fault(0, 1),
        CircuitFault {
            cut: Some(SupplyCut { answers: false }),
            stuck: Some(StuckContactor { closed: false }),
        }
    );
    assert!(!sim.slc_values(0, 4).comm_ok);
    let (_, rtu) = http(c, "GET", "/endpoints/0/rtu", None).await;
    assert_eq!(rtu["contactors"][0], false, "jammed open");
    let (_, list) = http(c, "GET", "/endpoints", None).await;
    let faults = list[0]["circuit_faults"].as_object().unwrap();
    assert_eq!(faults.keys().collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(list[1]["circuit_faults"], serde_json::json!({}));

    // DELETE clears, PUT {} too.
    let (st, v) = http(c, "DELETE", "/endpoints/0/circuits/1/fault", None).await;
    assert_eq!(
        (st, &v["fault"]),
        (200, &serde_json::json!({"cut": null, "stuck": null}))
    );
    assert_eq!(sim.circuit_fault(0, 1), CircuitFault::default());
    assert!(sim.slc_values(0, 4).comm_ok);
    let (st, _) = http(c, "PUT", "/endpoints/0/circuits/2/fault", Some("{}")).await;
    assert_eq!(st, 200);
    assert!(sim.slc_values(0, 5).voltage > 200.0);

    // Unknown circuit or endpoint: 404; a body that does not parse: 422.
    for path in [
        "/endpoints/0/circuits/0/fault",
        "/endpoints/0/circuits/5/fault",
        "/endpoints/2/circuits/1/fault",
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let (st, e) = http(c, method, path, Some("{}")).await;
            assert_eq!(
                (st, e["error"]["code"].as_str()),
                (404, Some("not_found")),
                "{method} {path}"
            );
        }
    }
    for body in [
        r#"{"stuck":{}}"#,
        r#"{"cut":{"live":true}}"#,
        r#"{"cut":true}"#,
        r#"{"stuck":{"closed":true},"welded":1}"#,
    ] {
        let (st, e) = http(c, "PUT", "/endpoints/0/circuits/3/fault", Some(body)).await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (422, Some("invalid_body")),
            "{body}"
        );
    }
    assert_eq!(sim.circuit_fault(0, 3), CircuitFault::default());
    sim.shutdown().await;
}

#[tokio::test]
async fn control_interface_sets_power_scale_and_stuck_relay() {
    let sim = start("slc-a-unit", 1, 3, Framing::Tcp).await;
    let c = sim.control_addr().unwrap();
    let full = sim.slc_values(0, 1).power;
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/0/slcs/1/fault",
        Some(r#"{"power_scale":0.5,"stuck_on":true}"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["fault"]["power_scale"].as_f64(),
            v["fault"]["stuck_on"].as_bool()
        ),
        (Some(0.5), Some(true))
    );
    let (_, g) = http(c, "GET", "/endpoints/0/slcs/1/fault", None).await;
    assert_eq!(g["fault"], v["fault"]);
    let (_, slc) = http(c, "GET", "/endpoints/0/slcs/1", None).await;
    let half = slc["power"].as_f64().unwrap();
    assert!((half - full * 0.5).abs() < 1e-9, "{half} of {full}");
    assert_eq!(
        sim.slc_fault(0, 1),
        SlcFault {
            power_scale: Some(0.5),
            stuck_on: true,
            ..Default::default()
        }
    );
    for body in [r#"{"power_scale":-0.1}"#, r#"{"power_scale":10.5}"#] {
        let (st, e) = http(c, "PUT", "/endpoints/0/slcs/1/fault", Some(body)).await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (422, Some("invalid")),
            "{body}"
        );
    }
    let (st, e) = http(
        c,
        "PUT",
        "/endpoints/0/slcs/1/fault",
        Some(r#"{"power_scale":"half"}"#),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (422, Some("invalid_body"))
    );
    assert_eq!(sim.slc_fault(0, 1).power_scale, Some(0.5), "unchanged");
    let (st, _) = http(c, "PUT", "/endpoints/0/slcs/1/fault", Some("{}")).await;
    assert_eq!(st, 200);
    assert_eq!(sim.slc_fault(0, 1), SlcFault::default());
    assert_eq!(sim.slc_values(0, 1).power, full);
    sim.shutdown().await;
}

#[tokio::test]
async fn scenario_applies_and_checks_indices() {
    let sim = start("slc-a-unit", 2, 3, Framing::Tcp).await;
    let s = Scenario::parse(
        "[[endpoint]]\nindex = 1\nfault = { kind = \"silent\" }\n[[slc]]\nendpoint = 0\nindex = 2\nfault = { silent = true }\n",
        "test",
    )
    .unwrap();
    sim.apply_scenario(&s).unwrap();
    assert_eq!(sim.endpoint_fault(1), Some(EndpointFault::Silent));
    assert!(!sim.slc_values(0, 2).comm_ok);
    let bad = Scenario::parse("[[slc]]\nendpoint = 0\nindex = 3\n", "test").unwrap();
    assert!(sim.apply_scenario(&bad).is_err());
    sim.set_slc_fault(0, 2, SlcFault::default());
    let dead = Scenario::parse(
        "[[slc]]\nendpoint = 1\nindex = 0\nfault = { no_answer = true }\n[[rtu]]\nendpoint = 0\nfault = { no_answer = true }\n",
        "test",
    )
    .unwrap();
    sim.apply_scenario(&dead).unwrap();
    assert!(sim.slc_fault(1, 0).no_answer && sim.rtu_fault(0).no_answer);
    let cut = Scenario::parse(
        "[[circuit]]\nendpoint = 1\ncircuit = 4\nfault = { cut = {}, stuck = { closed = true } }\n\
         [[slc]]\nendpoint = 1\nindex = 1\nfault = { power_scale = 1.6, stuck_on = true }\n",
        "test",
    )
    .unwrap();
    sim.apply_scenario(&cut).unwrap();
    assert_eq!(
        sim.circuit_fault(1, 4),
        CircuitFault {
            cut: Some(SupplyCut { answers: true }),
            stuck: Some(StuckContactor { closed: true }),
        }
    );
    let f = sim.slc_fault(1, 1);
    assert_eq!((f.power_scale, f.stuck_on), (Some(1.6), true));
    for bad in [
        "[[circuit]]\nendpoint = 1\ncircuit = 5\n",
        "[[circuit]]\nendpoint = 1\ncircuit = 0\n",
        "[[circuit]]\nendpoint = 2\ncircuit = 1\n",
        "[[slc]]\nendpoint = 0\nindex = 0\nfault = { power_scale = -1.0 }\n",
    ] {
        let s = Scenario::parse(bad, "test").unwrap();
        assert!(sim.apply_scenario(&s).is_err(), "{bad}");
    }
    sim.shutdown().await;

    // A concentrator answers for its SLCs: no_answer is refused there, over
    // the scenario and the control interface alike, and nothing is applied.
    let sim = start("slc-b-block", 2, 2, Framing::Tcp).await;
    let e = sim.apply_scenario(&dead).unwrap_err();
    assert!(
        e.to_string().contains("no_answer needs a unit-layout"),
        "{e}"
    );
    assert!(!sim.rtu_fault(0).no_answer, "checked before applying");
    let (st, e) = http(
        sim.control_addr().unwrap(),
        "PUT",
        "/endpoints/0/slcs/1/fault",
        Some(r#"{"no_answer":true}"#),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("unsupported"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn inventory_matches_the_farm() {
    for (name, unit, index) in [("slc-a-unit", "4", ""), ("slc-b-block", "1", "2")] {
        let sim = start(name, 3, 4, Framing::RtuOverTcp).await;
        let dir = std::env::temp_dir().join(format!("lamp-sim-inv-{}-{name}", std::process::id()));
        let opts = InventoryOptions {
            cabinets_without_rtu: 2,
            lamps_without_slc_per_cabinet: 1,
        };
        sim.write_inventory(&dir, &opts).unwrap();
        let rows = |f: &str| {
            let mut r = csv::Reader::from_path(dir.join(f)).unwrap();
            let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
            let rows: Vec<Vec<String>> = r
                .records()
                .map(|x| x.unwrap().iter().map(String::from).collect())
                .collect();
            (header.join(","), rows)
        };
        let (h, d) = rows("districts.csv");
        assert_eq!((h.as_str(), d.len()), ("id,name", 1));
        let (h, cabs) = rows("cabinets.csv");
        assert_eq!(
            h,
            "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit"
        );
        assert_eq!(cabs.len(), 5);
        assert_eq!(cabs[1][0], "CAB-0002");
        assert_eq!(cabs[1][6], sim.endpoint_addrs()[1].to_string());
        assert_eq!(
            &cabs[1][7..],
            ["rtu-over-tcp", "RTU-0002", "rtu-cabinet", "1"]
        );
        assert_eq!(cabs[4][0], "CAB-X002");
        assert!(cabs[4][6..].iter().all(|c| c.is_empty()));
        let (h, lamps) = rows("lamps.csv");
        assert_eq!(
            h,
            "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index"
        );
        assert_eq!(lamps.len(), 3 * (4 + 1) + 2 * 2);
        let l = &lamps[2];
        assert_eq!(l[0], "LX-0001-003");
        assert_eq!(
            (l[2].as_str(), &l[6..]),
            (
                "3",
                &[
                    "SLC-0001-003".to_string(),
                    name.into(),
                    unit.into(),
                    index.into()
                ][..]
            )
        );
        let rated: f64 = l[5].parse().unwrap();
        // The model draws the rated power the inventory states (±1.5 %).
        let power = sim.slc_values(0, 2).power;
        assert!(
            (power - rated).abs() <= rated * 0.015 + 1e-9,
            "{power} W of {rated}"
        );
        assert_eq!(lamps[4][0], "LX-0001-N01");
        assert!(lamps[4][6].is_empty());
        let lat: f64 = l[3].parse().unwrap();
        assert!((30.0..30.5).contains(&lat));
        std::fs::remove_dir_all(&dir).ok();
        sim.shutdown().await;
    }
}
