//! Faults seen from the gateway: a device that fails goes offline after
//! `offline_after` polls, the other endpoints keep their cadence, and it comes
//! back when the fault clears. A cabinet's RTU that sends nothing at all is
//! its own failure: the SLCs behind the same endpoint stay online.

use crate::common::{eventually, lamp_id, rtu_id, spawn_app, spawn_app_with, TestApp};
use lamp_sim::{EndpointFault, InventoryOptions, RtuFault, SimConfig, SlcFault};
use serde_json::Value;
use std::time::Duration;

const OFFLINE_AFTER: u64 = 3;

async fn three_endpoints(profile: &str) -> TestApp {
    spawn_app(SimConfig {
        endpoints: 3,
        slcs_per_endpoint: 4,
        slc_profile: profile.into(),
        ..SimConfig::default()
    })
    .await
}

fn cycles(t: &TestApp, endpoint: usize) -> u64 {
    t.live.read().endpoints[endpoint].cycles.iter().sum()
}

async fn online(t: &TestApp, path: &str) -> Value {
    let (status, body) = t.get(path).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Fault endpoint 1, wait for its RTU and lamps to go offline, check that
/// endpoints 0 and 2 kept polling meanwhile and stayed online, clear the fault
/// and wait for recovery. Returns the reason the gateway recorded.
async fn endpoint_fault_round_trip(fault: EndpointFault) -> Value {
    let t = three_endpoints("slc-a-unit").await;
    t.all_online().await;
    let before = [cycles(&t, 0), cycles(&t, 2)];
    t.sim.set_endpoint_fault(1, Some(fault));
    eventually("endpoint 1 offline", || async {
        let rtu = t.rtu(&rtu_id(1)).await;
        let lamp = t.lamp(&lamp_id(1, 3)).await;
        rtu["online"] == false && lamp["slc"]["online"] == false
    })
    .await;
    let rtu = t.rtu(&rtu_id(1)).await;
    assert!(
        rtu["consecutive_failures"].as_u64().unwrap() >= OFFLINE_AFTER,
        "offline only after {OFFLINE_AFTER} failed polls: {rtu}"
    );
    // The healthy endpoints were polled throughout and never went offline.
    assert!(
        cycles(&t, 0) >= before[0] + OFFLINE_AFTER,
        "endpoint 0 kept polling"
    );
    assert!(
        cycles(&t, 2) >= before[1] + OFFLINE_AFTER,
        "endpoint 2 kept polling"
    );
    for e in [0, 2] {
        let rtu = t.rtu(&rtu_id(e)).await;
        assert_eq!(rtu["online"], true, "{rtu}");
        assert_eq!(rtu["since"], t.rtu(&rtu_id(e)).await["since"]);
    }
    let offline = online(&t, "/api/v1/lamps?online=false").await;
    assert_eq!(
        offline["total"], 4,
        "exactly endpoint 1's four lamps are offline"
    );
    let reason = rtu["last_error"].clone();

    t.sim.set_endpoint_fault(1, None);
    t.all_online().await;
    // Transitions: every device of endpoint 1 went offline once and came back.
    let tr = online(&t, &format!("/api/v1/transitions?device={}", rtu_id(1))).await;
    let states: Vec<bool> = tr["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["online"].as_bool().unwrap())
        .collect();
    assert_eq!(states, vec![true, false, true], "{tr}");
    t.stop().await;
    reason
}

#[tokio::test]
async fn silent_endpoint_times_out() {
    let reason = endpoint_fault_round_trip(EndpointFault::Silent).await;
    assert_eq!(reason["kind"], "timeout", "{reason}");
}

#[tokio::test]
async fn refused_connections() {
    let reason = endpoint_fault_round_trip(EndpointFault::Refuse).await;
    assert_eq!(reason["kind"], "connect", "{reason}");
}

#[tokio::test]
async fn garbled_frames_resynchronise() {
    let reason = endpoint_fault_round_trip(EndpointFault::Garble).await;
    assert!(
        ["protocol", "transport", "timeout"].contains(&reason["kind"].as_str().unwrap()),
        "{reason}"
    );
}

#[tokio::test]
async fn wrong_transaction_ids_resynchronise() {
    let reason = endpoint_fault_round_trip(EndpointFault::WrongTid).await;
    assert_eq!(reason["kind"], "protocol", "{reason}");
}

#[tokio::test]
async fn exceptions_keep_the_connection() {
    let reason = endpoint_fault_round_trip(EndpointFault::Exception { code: 4 }).await;
    assert_eq!(reason, serde_json::json!({"kind": "exception", "code": 4}));
}

#[tokio::test]
async fn dropped_connections() {
    let reason = endpoint_fault_round_trip(EndpointFault::Drop).await;
    assert!(
        ["transport", "protocol"].contains(&reason["kind"].as_str().unwrap()),
        "{reason}"
    );
}

#[tokio::test]
async fn late_answers_time_out() {
    let reason = endpoint_fault_round_trip(EndpointFault::Delay { ms: 1_000 }).await;
    assert_eq!(reason["kind"], "timeout", "{reason}");
}

/// One SLC stops answering while its endpoint and neighbours live.
async fn single_slc_silent(profile: &str, expected: Value) {
    let t = three_endpoints(profile).await;
    t.all_online().await;
    t.sim.set_slc_fault(
        1,
        2,
        SlcFault {
            silent: true,
            ..Default::default()
        },
    );
    eventually("SLC offline", || async {
        t.lamp(&lamp_id(1, 2)).await["slc"]["online"] == false
    })
    .await;
    let lamp = t.lamp(&lamp_id(1, 2)).await;
    assert_eq!(lamp["slc"]["last_error"], expected);
    assert!(lamp["slc"]["consecutive_failures"].as_u64().unwrap() >= OFFLINE_AFTER);
    // Its neighbours on the same endpoint and the RTU stay online.
    assert_eq!(t.rtu(&rtu_id(1)).await["online"], true);
    for j in [0, 1, 3] {
        assert_eq!(t.lamp(&lamp_id(1, j)).await["slc"]["online"], true);
    }
    let offline = online(&t, "/api/v1/lamps?online=false").await;
    assert_eq!(offline["total"], 1);
    t.sim.set_slc_fault(1, 2, SlcFault::default());
    t.all_online().await;
    t.stop().await;
}

#[tokio::test]
async fn single_slc_silent_behind_a_unit_id_gateway() {
    // An RS-485 gateway answers 0x0B for a unit that does not answer.
    single_slc_silent(
        "slc-a-unit",
        serde_json::json!({"kind": "exception", "code": 11}),
    )
    .await;
}

#[tokio::test]
async fn single_slc_silent_behind_a_concentrator() {
    single_slc_silent("slc-b-block", serde_json::json!({"kind": "node_silent"})).await;
}

#[tokio::test]
async fn single_slc_exception() {
    let t = three_endpoints("slc-a-unit").await;
    t.all_online().await;
    t.sim.set_slc_fault(
        0,
        1,
        SlcFault {
            exception: Some(4),
            ..Default::default()
        },
    );
    eventually("SLC offline", || async {
        t.lamp(&lamp_id(0, 1)).await["slc"]["online"] == false
    })
    .await;
    let lamp = t.lamp(&lamp_id(0, 1)).await;
    assert_eq!(
        lamp["slc"]["last_error"],
        serde_json::json!({"kind": "exception", "code": 4})
    );
    assert_eq!(t.lamp(&lamp_id(0, 0)).await["slc"]["online"], true);
    t.sim.set_slc_fault(0, 1, SlcFault::default());
    t.all_online().await;
    t.stop().await;
}

/// States of `device`'s recorded transitions, oldest first.
async fn transitions(t: &TestApp, device: &str) -> Vec<bool> {
    let tr = online(t, &format!("/api/v1/transitions?device={device}")).await;
    tr["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["online"].as_bool().unwrap())
        .collect()
}

#[tokio::test]
async fn a_dead_rtu_leaves_the_slcs_of_its_endpoint_online() {
    // The simulator's RTU `no_answer`: unit 1 of endpoint 1 sends nothing,
    // its four SLC units answer. The RTU goes offline with its own timeout;
    // its SLCs never do, and the endpoint keeps its cadence.
    let t = spawn_app_with(
        SimConfig {
            endpoints: 3,
            slcs_per_endpoint: 4,
            slc_profile: "slc-a-unit".into(),
            ..SimConfig::default()
        },
        InventoryOptions::default(),
        // Probed at most a second apart, so it is seen again soon after
        // the fault clears.
        |s| s.poll.unit_backoff_max = Duration::from_secs(1),
    )
    .await;
    t.all_online().await;
    t.sim.set_rtu_fault(1, RtuFault { no_answer: true });
    eventually("RTU 1 offline", || async {
        t.rtu(&rtu_id(1)).await["online"] == false
    })
    .await;
    let rtu = t.rtu(&rtu_id(1)).await;
    assert!(
        rtu["consecutive_failures"].as_u64().unwrap() >= OFFLINE_AFTER,
        "offline only after {OFFLINE_AFTER} failed polls: {rtu}"
    );
    assert_eq!(rtu["last_error"]["kind"], "timeout", "{rtu}");

    // Over 20 SLC intervals (100 ms) its SLCs stay online and keep being read.
    let before = cycles(&t, 1);
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < end {
        let offline = online(&t, "/api/v1/lamps?online=false").await;
        let ids: Vec<&Value> = offline["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["id"])
            .collect();
        assert!(ids.is_empty(), "lamps offline: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        cycles(&t, 1) >= before + 20,
        "endpoint 1 kept its cadence: {} cycles",
        cycles(&t, 1) - before
    );

    t.sim.set_rtu_fault(1, RtuFault::default());
    t.all_online().await;
    assert_eq!(transitions(&t, &rtu_id(1)).await, vec![true, false, true]);
    for j in 0..4 {
        assert_eq!(
            transitions(&t, &lamp_id(1, j)).await,
            vec![true],
            "SLC {j} of endpoint 1 never went offline"
        );
    }
    t.stop().await;
}
