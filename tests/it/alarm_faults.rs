//! Every alarm kind from a simulator fault, over real sockets: a circuit cut
//! past the cabinet (its SLCs answering without supply, or gone silent), a
//! contactor jammed open under the night plan, lamps drawing the wrong power
//! at full and at a dim level, a day burner under the day plan, the RTU's
//! door and leakage alarms. Debounces are zero here: the conditions are
//! under test (the debounce is specified in alarm/spec.rs).

use crate::common::{eventually, lamp_id, spawn_app_with, TestApp};
use lamp_gateway::alarm::{AlarmKind, KindSettings};
use lamp_gateway::settings::Settings;
use lamp_sim::{CircuitFault, InventoryOptions, SimConfig, SlcFault, StuckContactor, SupplyCut};
use serde_json::{json, Value};
use std::time::Duration;

/// A book whose one program holds `level` all day, for the whole city.
fn all_day(level: &str) -> Value {
    json!({
        "programs": [{"id": "p", "points": [{"at": "00:00", "level": level}]}],
        "calendars": [{"id": "c", "default_program": "p"}],
        "assignments": [{"id": "a", "calendar": "c", "scope": "city"}]
    })
}

/// The same for the lamps only, by their SLCs: the circuits stay energised
/// all day, as in a city that switches every lamp by its SLC.
fn all_day_by_slc(level: &str) -> Value {
    let lamps: Vec<String> = (0..2)
        .flat_map(|e| (0..8).map(move |j| lamp_id(e, j)))
        .collect();
    let mut book = all_day(level);
    book["assignments"][0]["scope"] = json!({ "lamps": lamps });
    book
}

/// Two endpoints of 8 SLCs (two per circuit); every kind without debounce.
async fn city(book: Option<Value>) -> TestApp {
    spawn_app_with(
        SimConfig {
            endpoints: 2,
            slcs_per_endpoint: 8,
            districts: 2,
            ..SimConfig::default()
        },
        InventoryOptions::default(),
        |s: &mut Settings| {
            for kind in AlarmKind::ALL {
                s.alarms.kinds.insert(
                    kind,
                    KindSettings {
                        debounce: Some(Duration::ZERO),
                        ..KindSettings::default()
                    },
                );
            }
            s.schedule.tick = Duration::from_millis(100);
            s.schedule.retry_after = Duration::from_millis(300);
            if let Some(book) = &book {
                std::fs::write(&s.schedule.file, book.to_string()).unwrap();
            }
        },
    )
    .await
}

async fn standing(t: &TestApp) -> Vec<(String, String)> {
    let (status, body) = t.get("/api/v1/alarms?state=active").await;
    assert_eq!(status, 200, "{body}");
    let mut v: Vec<(String, String)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["kind"].as_str().unwrap().to_string(),
                a["device_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The lamps the inventory puts on circuit `n` of endpoint `e`'s cabinet.
fn lamps_on(t: &TestApp, e: usize, n: u8) -> Vec<String> {
    let cab = format!("CAB-{:04}", e + 1);
    t.live
        .inventory
        .lamps
        .iter()
        .filter(|l| l.cabinet == cab && l.circuit == n)
        .map(|l| l.id.clone())
        .collect()
}

/// Waits until exactly `want` stands; says what stood when it gives up.
async fn settled(t: &TestApp, want: &[(String, String)]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = standing(t).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "standing alarms: want {want:?}, got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_circuit_is_one_supply_loss_whether_its_slcs_answer_or_fall_silent() {
    let t = city(None).await;
    t.all_online().await;
    let lamps = lamps_on(&t, 0, 2);
    assert_eq!(lamps.len(), 2, "two SLCs per circuit");
    for answers in [true, false] {
        t.sim.set_circuit_fault(
            0,
            2,
            CircuitFault {
                cut: Some(SupplyCut { answers }),
                ..CircuitFault::default()
            },
        );
        settled(&t, &pairs(&[("supply_loss", "CAB-0001/2")])).await;
        let (_, list) = t.get("/api/v1/alarms?kind=supply_loss&state=active").await;
        let a = &list["items"][0];
        assert_eq!(a["severity"], "serious");
        assert_eq!(a["detail"]["lamps"], json!(lamps), "{a}");
        if !answers {
            // Silent under the cut: no comms_lost of their own.
            let offline = t.live.read();
            let i = t.live.inventory.lamp_position(&lamps[0]).unwrap();
            assert!(!offline.lamps[i].online);
        }
        t.sim.set_circuit_fault(0, 2, CircuitFault::default());
        settled(&t, &[]).await;
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contactor_jammed_open_under_the_night_plan_is_a_contactor_failure() {
    let t = city(Some(all_day("on"))).await;
    t.all_online().await;
    t.sim.set_circuit_fault(
        1,
        3,
        CircuitFault {
            stuck: Some(StuckContactor { closed: false }),
            ..CircuitFault::default()
        },
    );
    // Its lamps without supply are the circuit's fault, not theirs.
    settled(&t, &pairs(&[("contactor_failure", "CAB-0002/3")])).await;
    t.sim.set_circuit_fault(1, 3, CircuitFault::default());
    settled(&t, &[]).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contactor_stuck_closed_under_the_day_plan_is_a_contactor_failure() {
    // The day plan for the city opens every contactor; one is welded shut.
    let t = city(Some(all_day("off"))).await;
    t.all_online().await;
    eventually("the day plan has every contactor open", || async {
        (0..2).all(|e| t.sim.rtu_values(e).contactors.iter().all(|&c| !c))
    })
    .await;
    settled(&t, &[]).await;
    t.sim.set_circuit_fault(
        1,
        3,
        CircuitFault {
            stuck: Some(StuckContactor { closed: true }),
            ..CircuitFault::default()
        },
    );
    settled(&t, &pairs(&[("contactor_failure", "CAB-0002/3")])).await;
    let (_, list) = t
        .get("/api/v1/alarms?kind=contactor_failure&state=active")
        .await;
    let a = &list["items"][0];
    assert_eq!(a["detail"]["contactor_closed"], json!(true), "{a}");
    assert_eq!(a["detail"]["scheduled_closed"], json!(false), "{a}");
    // Freed, it follows the plan's last write (open) again.
    t.sim.set_circuit_fault(1, 3, CircuitFault::default());
    settled(&t, &[]).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_power_at_full_and_at_a_dim_level_and_a_day_burner() {
    let t = city(Some(all_day_by_slc("off"))).await;
    t.all_online().await;
    eventually("the day plan has every lamp off", || async {
        (0..2).all(|e| (0..8).all(|j| !t.sim.slc_values(e, j).switch))
    })
    .await;
    // (With no debounce, lamps still burning while the plan's first
    // commands were on their way were day burners for a poll or two.)
    settled(&t, &[]).await;
    // A relay stuck on in daylight, on an energised circuit.
    t.sim.set_slc_fault(
        0,
        5,
        SlcFault {
            stuck_on: true,
            ..SlcFault::default()
        },
    );
    settled(&t, &pairs(&[("day_burner", &lamp_id(0, 5))])).await;
    t.sim.set_slc_fault(0, 5, SlcFault::default());
    settled(&t, &[]).await;
    t.stop().await;

    // At night: one lamp at full drawing half its rated power, one dimmed
    // to 50 % drawing 1.6 × what 50 % should.
    let t = city(Some(all_day("on"))).await;
    t.all_online().await;
    eventually("the night plan has every lamp on", || async {
        (0..2).all(|e| (0..8).all(|j| t.sim.slc_values(e, j).switch))
    })
    .await;
    let half = SlcFault {
        power_scale: Some(0.5),
        ..SlcFault::default()
    };
    t.sim.set_slc_fault(1, 1, half);
    settled(&t, &pairs(&[("power_abnormal", &lamp_id(1, 1))])).await;
    t.sim.set_slc_fault(1, 1, SlcFault::default());
    settled(&t, &[]).await;
    let dimmed = lamp_id(1, 6);
    let (status, body) = t
        .post(
            &format!("/api/v1/lamps/{dimmed}/commands"),
            json!({"action": "dim", "level": 50}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    t.command_done(body["id"].as_str().unwrap()).await;
    t.sim.set_slc_fault(
        1,
        6,
        SlcFault {
            power_scale: Some(1.6),
            ..SlcFault::default()
        },
    );
    settled(&t, &pairs(&[("dimming_failure", &dimmed)])).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rtus_door_and_leakage_alarms() {
    let t = city(None).await;
    t.all_online().await;
    t.sim.set_rtu_alarms(1, true, true);
    settled(
        &t,
        &pairs(&[("door_open", "CAB-0002"), ("leakage", "CAB-0002")]),
    )
    .await;
    let (_, list) = t.get("/api/v1/alarms?kind=leakage").await;
    assert_eq!(list["items"][0]["severity"], "emergency");
    let raised =
        chrono::DateTime::parse_from_rfc3339(list["items"][0]["raised_at"].as_str().unwrap())
            .unwrap();
    let deadline =
        chrono::DateTime::parse_from_rfc3339(list["items"][0]["deadline"].as_str().unwrap())
            .unwrap();
    assert_eq!(
        deadline - raised,
        chrono::Duration::hours(1),
        "an emergency is repaired within the hour"
    );
    t.sim.set_rtu_alarms(1, false, false);
    settled(&t, &[]).await;
    t.stop().await;
}
