//! The evaluation-grade lighting figures (`/api/v1/metrics/roads`,
//! `/api/v1/metrics/lighting`) on a hand-built city over real sockets: roads
//! of four classes, lamps with and without an SLC, an offline SLC under
//! both `unknown_counts_as` policies (two gateways on the same farm), lamps
//! without an SLC estimated from a cabinet power the simulator is told to
//! meter, and roads over their dark-lamp cap. Every expected number is
//! worked out by hand below from the inventory and the faults.

use crate::common::{eventually, test_settings, ADMIN_TOKEN};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::figures::config::UnknownPolicy;
use lamp_gateway::startup::Application;
use lamp_sim::{SimConfig, Simulator, SlcFault};
use serde_json::Value;

const D02_VIEWER: &str = "lgw_test_d02_viewer";

/// Three endpoints, each an RTU (unit 1; C3 names unit 200, see below) and
/// 4 SLCs; the simulator puts SLC j on unit j + 2 and circuit j + 1.
///
/// - D01 North: C1 (endpoint 0) — L-C1-0..3 with SLCs; P-C1-0..3 without,
///   100 W rated, on circuit 1; P-C1-4 without, 100 W, circuit 2, no road.
///   C2 (endpoint 1) — L-C2-0..3 with SLCs.
/// - D02 South: C3 (endpoint 2) — L-C3-0..3 with SLCs; P-C3-0,1 without,
///   100 W, circuit 1. C4 (no RTU, no endpoint) — P-C4-0,1 without, 100 W.
///
/// Roads: R-MAIN Jingshi Road (D01, 主干道 = main, 8 planned): L-C1-0,1,
/// P-C1-0,1. R-SEC Lishan Road (D01, secondary): L-C1-2,3, P-C1-2,3,
/// L-C2-0..3. R-LAND Quancheng Park (D02, landscape): L-C3-0,1. R-BR
/// Huayuan Street (D02, branch): L-C3-2,3, P-C3-0,1, P-C4-0,1.
pub(crate) fn write_city(dir: &std::path::Path, sim: &Simulator) {
    let ep = sim.endpoint_addrs();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("districts.csv"), "id,name\nD01,North\nD02,South\n").unwrap();
    let mut cab = String::from(
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n",
    );
    // C3's RTU is at unit 200, where the farm has no device: the endpoint
    // answers for it with exception 0x0B (target device failed to respond),
    // so R-C3 is offline while C3's SLCs answer.
    for (id, d, e, unit) in [
        ("C1", "D01", 0, 1),
        ("C2", "D01", 1, 1),
        ("C3", "D02", 2, 200),
    ] {
        cab += &format!("{id},{d},,,,4,{},tcp,R-{id},rtu-cabinet,{unit}\n", ep[e]);
    }
    cab += "C4,D02,,,,2,,,,,\n";
    std::fs::write(dir.join("cabinets.csv"), cab).unwrap();
    std::fs::write(
        dir.join("roads.csv"),
        "id,name,district,class,lamps_planned\n\
         R-MAIN,Jingshi Road,D01,主干道,8\n\
         R-SEC,Lishan Road,D01,secondary,\n\
         R-LAND,Quancheng Park,D02,landscape,\n\
         R-BR,Huayuan Street,D02,branch,\n",
    )
    .unwrap();
    let mut lamps = String::from(
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index,road\n",
    );
    let slc_roads = [
        ("C1", ["R-MAIN", "R-MAIN", "R-SEC", "R-SEC"]),
        ("C2", ["R-SEC"; 4]),
        ("C3", ["R-LAND", "R-LAND", "R-BR", "R-BR"]),
    ];
    for (c, roads) in slc_roads {
        for (j, road) in roads.iter().enumerate() {
            lamps += &format!(
                "L-{c}-{j},{c},{},,,100,S-{c}-{j},slc-a-unit,{},,{road}\n",
                j + 1,
                j + 2
            );
        }
    }
    for (id, c, circuit, road) in [
        ("P-C1-0", "C1", 1, "R-MAIN"),
        ("P-C1-1", "C1", 1, "R-MAIN"),
        ("P-C1-2", "C1", 1, "R-SEC"),
        ("P-C1-3", "C1", 1, "R-SEC"),
        ("P-C1-4", "C1", 2, ""),
        ("P-C3-0", "C3", 1, "R-BR"),
        ("P-C3-1", "C3", 1, "R-BR"),
        ("P-C4-0", "C4", 1, "R-BR"),
        ("P-C4-1", "C4", 1, "R-BR"),
    ] {
        lamps += &format!("{id},{c},{circuit},,,100,,,,,{road}\n");
    }
    std::fs::write(dir.join("lamps.csv"), lamps).unwrap();
}

/// A gateway on the city under `policy`, with a D02 viewer token.
async fn gateway(sim: &Simulator, policy: UnknownPolicy) -> (Application, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_city(&dir.path().join("inventory"), sim);
    let mut settings = test_settings(dir.path());
    settings.figures.unknown_counts_as = policy;
    settings.auth.tokens.push(TokenConfig {
        name: "d02-viewer".into(),
        hash: hash_token(D02_VIEWER),
        role: Role::Viewer,
        district: Some("D02".into()),
    });
    (Application::build(settings).await.unwrap(), dir)
}

async fn get(app: &Application, token: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("http://{}{path}", app.local_addr()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// What both gateways must have seen before the figures are judged: every
/// SLC but L-C2-1 online with a reading, L-C1-2's lamp failure, R-C1 and
/// R-C2 online with their readings, R-C3 and S-C2-1 failing.
pub(crate) fn settled(app: &Application) -> bool {
    let live = app.live();
    let inv = &live.inventory;
    let inner = live.read();
    let lamp = |id: &str| &inner.lamps[inv.lamp_position(id).unwrap()];
    let rtu = |id: &str| &inner.rtus[inv.rtu_position(id).unwrap()];
    let slcs_ok = inv
        .lamps
        .iter()
        .filter(|l| l.slc.is_some() && l.id != "L-C2-1")
        .all(|l| lamp(&l.id).online);
    let failed = lamp("L-C1-2")
        .reading
        .as_ref()
        .is_some_and(|r| r.lamp_failure());
    slcs_ok
        && failed
        && rtu("R-C1").online
        && rtu("R-C2").online
        && !rtu("R-C3").online
        && rtu("R-C3").last_error.is_some()
        && !lamp("L-C2-1").online
        && lamp("L-C2-1").last_error.is_some()
}

/// [total, expected, lit, dark, unknown, estimated] of a row.
fn counts(row: &Value) -> [u64; 6] {
    [
        "lamps_total",
        "lamps_expected_lit",
        "lamps_lit",
        "lamps_dark",
        "lamps_unknown",
        "lamps_estimated",
    ]
    .map(|k| row[k].as_u64().unwrap_or_else(|| panic!("{k} in {row}")))
}

fn rate(row: &Value) -> Option<f64> {
    row["lighting_rate"].as_f64()
}

fn road<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roads_classes_districts_and_city_under_both_policies() {
    let sim = Simulator::start(SimConfig {
        endpoints: 3,
        slcs_per_endpoint: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    // The field: L-C1-2's lamp has failed (0 W); S-C2-1 stops answering
    // (its lamp burns on, unseen); C3's RTU does not answer (unit 200,
    // above). C1's lamps
    // without an SLC draw 300 W on circuit 1 (3 of P-C1-0..3 burn) and
    // 100 W on circuit 2 (P-C1-4), metered by R-C1 only.
    sim.set_slc_fault(
        0,
        2,
        SlcFault {
            failed: true,
            ..Default::default()
        },
    );
    sim.set_slc_fault(
        1,
        1,
        SlcFault {
            silent: true,
            ..Default::default()
        },
    );
    sim.set_plain_load(0, 1, 300.0);
    sim.set_plain_load(0, 2, 100.0);

    let (dark, _dark_dir) = gateway(&sim, UnknownPolicy::Dark).await;
    let (excluded, _excluded_dir) = gateway(&sim, UnknownPolicy::Excluded).await;
    eventually("both gateways see the field", || async {
        settled(&dark) && settled(&excluded)
    })
    .await;

    // The known RTU power: R-C1 meters its SLCs and 400 W more.
    let (_, r) = get(&dark, ADMIN_TOKEN, "/api/v1/rtus/R-C1").await;
    let metered = r["values"]["active_power"].as_f64().unwrap();
    let mut slcs = 0.0;
    for j in 0..4 {
        let (_, l) = get(&dark, ADMIN_TOKEN, &format!("/api/v1/lamps/L-C1-{j}")).await;
        slcs += l["slc"]["values"]["power"].as_f64().unwrap();
    }
    assert!((metered - slcs - 400.0).abs() < 0.5, "{metered} − {slcs}");

    // C1's estimate: P = 400 W (metered − its SLCs); n = 5 (P-C1-0..4: both
    // circuits closed, no schedule); mean 100 W; k = round(4.0) = 4. Shared
    // over R-MAIN (2 lamps), R-SEC (2), no road (1): 4 × 2 ÷ 5 = 1.6, 1.6,
    // 0.8 → 1, 1, 0 with remainders 3, 3, 4; the 2 left go to no road (4)
    // and R-MAIN (3, the earlier of the tie): R-MAIN 2 lit (P-C1-0, 1),
    // R-SEC 1 lit (P-C1-2) 1 dark (P-C1-3), no road 1 lit (P-C1-4).
    // C3's and C4's lamps without an SLC are unknown (no online RTU).
    //
    // R-MAIN: L-C1-0, L-C1-1 lit, P-C1-0, P-C1-1 estimated lit.
    //   [4, 4, 4, 0, 0, 2]; rate 4/4; 4 of 8 planned; cap 2.
    // R-SEC: L-C1-2 dark (failed), L-C1-3 lit, P-C1-2 est. lit, P-C1-3
    //   est. dark, L-C2-0, 2, 3 lit, L-C2-1 unknown (offline).
    //   [8, 8, 5, 2, 1, 2]; dark: 5/8, 2 + 1 = 3 dark > cap 2;
    //   excluded: 5/7, 2 dark = cap 2, not over. Target 0.97: not met.
    // (no road) D01: P-C1-4 est. lit: [1, 1, 1, 0, 0, 1], rate 1.
    // R-LAND: L-C3-0, 1 lit (C3's SLCs see 220 V): [2, 2, 2, 0, 0, 0], 1.
    // R-BR: L-C3-2, 3 lit; P-C3-0, 1, P-C4-0, 1 unknown: [6, 6, 2, 0, 4, 0];
    //   dark: 2/6, 4 dark > 2; excluded: 2/2 = 1, 0 dark. Target 0.96.
    let items = |rows: &Value| -> Vec<(String, [u64; 6])> {
        rows["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["name"].as_str().unwrap().to_string(), counts(r)))
            .collect()
    };
    let want = [
        ("Jingshi Road", [4, 4, 4, 0, 0, 2]),
        ("Lishan Road", [8, 8, 5, 2, 1, 2]),
        ("(no road)", [1, 1, 1, 0, 0, 1]),
        ("Quancheng Park", [2, 2, 2, 0, 0, 0]),
        ("Huayuan Street", [6, 6, 2, 0, 4, 0]),
    ]
    .map(|(n, c)| (n.to_string(), c));
    let (status, dark_roads) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/roads").await;
    assert_eq!(status, 200, "{dark_roads}");
    let (_, excl_roads) = get(&excluded, ADMIN_TOKEN, "/api/v1/metrics/roads").await;
    assert_eq!(items(&dark_roads), want);
    assert_eq!(
        items(&excl_roads),
        want,
        "counts do not depend on the policy"
    );
    assert_eq!(dark_roads["unknown_counts_as"], "dark");
    assert_eq!(excl_roads["unknown_counts_as"], "excluded");
    assert_eq!(dark_roads["total"], 5);

    let main = road(&dark_roads, "Jingshi Road");
    assert_eq!(main["road"], "R-MAIN");
    assert_eq!(main["class"], "main", "主干道 is main");
    assert_eq!(main["lamps_planned"], 8);
    assert_eq!(main["installation_rate"], 0.5);
    assert_eq!(
        (main["dark_cap"].as_u64(), rate(main)),
        (Some(2), Some(1.0))
    );
    assert_eq!(
        (&main["over_cap"], &main["meets_target"]),
        (&Value::Bool(false), &Value::Bool(true))
    );
    let no_road = road(&dark_roads, "(no road)");
    assert_eq!(
        (&no_road["road"], &no_road["district"]),
        (&Value::Null, &Value::from("D01"))
    );
    assert!(no_road["dark_cap"].is_null() && no_road["meets_target"].is_null());
    assert!(road(&dark_roads, "Lishan Road")["installation_rate"].is_null());

    // name → (rate, over_cap, meets_target), under each policy.
    let judged = |rows: &Value, name: &str| {
        let r = road(rows, name);
        (
            rate(r),
            r["over_cap"].as_bool(),
            r["meets_target"].as_bool(),
        )
    };
    assert_eq!(
        judged(&dark_roads, "Lishan Road"),
        (Some(5.0 / 8.0), Some(true), Some(false))
    );
    assert_eq!(
        judged(&excl_roads, "Lishan Road"),
        (Some(5.0 / 7.0), Some(false), Some(false))
    );
    assert_eq!(
        judged(&dark_roads, "Huayuan Street"),
        (Some(2.0 / 6.0), Some(true), Some(false))
    );
    assert_eq!(
        judged(&excl_roads, "Huayuan Street"),
        (Some(1.0), Some(false), Some(true))
    );
    assert_eq!(
        judged(&dark_roads, "Quancheng Park"),
        (Some(1.0), Some(false), Some(true))
    );

    // Districts and the city. D01: R-MAIN + R-SEC + no road =
    // [13, 13, 10, 2, 1, 5]: dark 10/13, excluded 10/12. D02: R-LAND + R-BR
    // = [8, 8, 4, 0, 4, 0]: dark 4/8, excluded 4/4. City [21, 21, 14, 2, 5,
    // 5]: dark 14/21, excluded 14/16.
    let (status, dark_all) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/lighting").await;
    assert_eq!(status, 200, "{dark_all}");
    let (_, excl_all) = get(&excluded, ADMIN_TOKEN, "/api/v1/metrics/lighting").await;
    for all in [&dark_all, &excl_all] {
        assert_eq!(counts(&all["districts"][0]), [13, 13, 10, 2, 1, 5]);
        assert_eq!(counts(&all["districts"][1]), [8, 8, 4, 0, 4, 0]);
        assert_eq!(counts(&all["city"]), [21, 21, 14, 2, 5, 5]);
    }
    let scopes = |all: &Value| [&all["districts"][0], &all["districts"][1], &all["city"]].map(rate);
    assert_eq!(scopes(&dark_all), [10.0 / 13.0, 0.5, 14.0 / 21.0].map(Some));
    assert_eq!(scopes(&excl_all), [10.0 / 12.0, 1.0, 14.0 / 16.0].map(Some));
    // The city's classes, in class order, one road each: main 1 (≥ 0.98),
    // secondary 5/8 or 5/7 (< 0.97, over its cap under dark), branch 2/6
    // (over) or 1 (≥ 0.96), landscape 1 (≥ 0.95).
    // (class, roads, rate, meets_target, roads_over_cap)
    type ClassFigures = (String, u64, Option<f64>, Option<bool>, u64);
    let classes = |all: &Value| -> Vec<ClassFigures> {
        all["city"]["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["class"].as_str().unwrap().to_string(),
                    c["roads"].as_u64().unwrap(),
                    rate(c),
                    c["meets_target"].as_bool(),
                    c["roads_over_cap"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let class = |c: &str, rate: f64, meets: bool, over: u64| {
        (c.to_string(), 1, Some(rate), Some(meets), over)
    };
    assert_eq!(
        classes(&dark_all),
        [
            class("main", 1.0, true, 0),
            class("secondary", 5.0 / 8.0, false, 1),
            class("branch", 2.0 / 6.0, false, 1),
            class("landscape", 1.0, true, 0),
        ]
    );
    assert_eq!(
        classes(&excl_all),
        [
            class("main", 1.0, true, 0),
            class("secondary", 5.0 / 7.0, false, 0),
            class("branch", 1.0, true, 0),
            class("landscape", 1.0, true, 0),
        ]
    );
    assert_eq!(dark_all["city"]["classes"][1]["target"], 0.97);

    // The facility intact rate per class now: L-C1-2's lamp failure is a
    // fault alarm on one of Lishan Road's 8 lamps (7/8 < 0.95); the silent
    // S-C2-1 and C3's silent RTU are no faults. (class, lamps, faulty,
    // rate, meets) of the city, then of D02 (landscape and branch).
    type Intact = (String, u64, u64, Option<f64>, Option<bool>);
    let intact = |scope: &Value| -> Vec<Intact> {
        scope["intact_classes"]
            .as_array()
            .unwrap_or_else(|| panic!("{scope}"))
            .iter()
            .map(|c| {
                (
                    c["class"].as_str().unwrap().to_string(),
                    c["lamps"].as_u64().unwrap(),
                    c["faulty_lamps"].as_u64().unwrap(),
                    c["facility_intact_rate"].as_f64(),
                    c["meets_target"].as_bool(),
                )
            })
            .collect()
    };
    let whole =
        |c: &str, lamps: u64, target: bool| (c.to_string(), lamps, 0, Some(1.0), Some(target));
    eventually("L-C1-2's lamp failure counts in its class", || async {
        let (_, all) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/lighting").await;
        intact(&all["city"])[1].2 == 1
    })
    .await;
    let (_, all) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/lighting").await;
    assert_eq!(
        intact(&all["city"]),
        [
            whole("main", 4, true),
            ("secondary".into(), 8, 1, Some(7.0 / 8.0), Some(false)),
            whole("branch", 6, true),
            whole("landscape", 2, true),
        ]
    );
    assert_eq!(intact(&all["districts"][0])[1], intact(&all["city"])[1]);
    assert_eq!(all["city"]["intact_classes"][3]["target"], 0.90);

    // Filters: a class (by its Chinese name too), a district; bad ones.
    let (_, mains) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/roads?class=主干道").await;
    assert_eq!(items(&mains), want[..1]);
    let (_, d02) = get(
        &dark,
        ADMIN_TOKEN,
        "/api/v1/metrics/roads?district=D02&limit=1&offset=1",
    )
    .await;
    assert_eq!(
        (d02["total"].as_u64(), items(&d02)),
        (Some(2), want[4..].to_vec())
    );
    let (status, err) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/roads?class=avenue").await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/lighting?district=NOPE").await;
    assert_eq!(status, 400);

    // A D02 token sees D02 only: its roads, its district, no city; D01 does
    // not exist to it.
    let (status, own) = get(&dark, D02_VIEWER, "/api/v1/metrics/roads").await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(items(&own), want[3..].to_vec());
    let (_, own) = get(&dark, D02_VIEWER, "/api/v1/metrics/lighting").await;
    assert!(own["city"].is_null(), "{own}");
    assert_eq!(own["districts"].as_array().unwrap().len(), 1);
    assert_eq!(own["districts"][0]["scope"], "D02");
    assert_eq!(
        intact(&own["districts"][0]),
        [whole("branch", 6, true), whole("landscape", 2, true)]
    );
    let (status, _) = get(&dark, D02_VIEWER, "/api/v1/metrics/lighting?district=D01").await;
    assert_eq!(status, 400);
    let (status, _) = get(&dark, "lgw_no_such_token", "/api/v1/metrics/roads").await;
    assert_eq!(status, 401);

    // The meter follows the field: circuit 1's lamps without an SLC go down
    // to one burning (100 W). P = 200 W, k = 2; shares 2 × 2 ÷ 5 = 0.8,
    // 0.8, 0.4 → 0, 0, 0 with remainders 4, 4, 2: the 2 left go to R-MAIN
    // and R-SEC, one each. R-MAIN: P-C1-0 lit, P-C1-1 dark → [4, 4, 3, 1, 0, 2], 3/4;
    // no road: P-C1-4 estimated dark → [1, 1, 0, 1, 0, 1].
    sim.set_plain_load(0, 1, 100.0);
    eventually("the estimate follows R-C1's meter", || async {
        let (_, rows) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/roads?district=D01").await;
        counts(road(&rows, "Jingshi Road"))[2] == 3
    })
    .await;
    let (_, rows) = get(&dark, ADMIN_TOKEN, "/api/v1/metrics/roads?district=D01").await;
    assert_eq!(counts(road(&rows, "Jingshi Road")), [4, 4, 3, 1, 0, 2]);
    assert_eq!(rate(road(&rows, "Jingshi Road")), Some(0.75));
    assert_eq!(counts(road(&rows, "Lishan Road")), [8, 8, 5, 2, 1, 2]);
    assert_eq!(counts(road(&rows, "(no road)")), [1, 1, 0, 1, 0, 1]);

    dark.shutdown().await.unwrap();
    excluded.shutdown().await.unwrap();
    sim.shutdown().await;
}
