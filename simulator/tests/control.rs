//! The HTTP control interface, the scenario file and the inventory files.

mod common;

use common::*;
use lamp_sim::{EndpointFault, Framing, InventoryOptions, RtuFault, Scenario, SlcFault};
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
