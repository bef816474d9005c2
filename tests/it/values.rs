//! Values read by the gateway over Modbus equal the simulator's, for every
//! field of every shipped profile, in both framings.

use crate::common::{lamp_id, rtu_id, spawn_app};
use lamp_profile::Quantity;
use lamp_sim::{Framing, SimConfig};
use serde_json::Value;

/// Half the field's resolution: the most encoding may move a value.
fn tolerance(profile: &lamp_profile::Profile, q: Quantity) -> f64 {
    let f = profile.field(q).expect("field mapped");
    match f.value_type {
        lamp_profile::ValueType::F32 => 1e-3,
        _ => f.scale.abs() / 2.0 + 1e-9,
    }
}

fn close(what: &str, got: &Value, want: f64, tol: f64) {
    let got = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!(
        (got - want).abs() <= tol,
        "{what}: gateway {got}, simulator {want} (±{tol})"
    );
}

async fn check_profile(slc_profile: &str, framing: Framing) {
    let t = spawn_app(SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 6,
        slc_profile: slc_profile.into(),
        framing,
        ..SimConfig::default()
    })
    .await;
    t.sim.set_frozen(true);
    // Dim one lamp so the dim level and power are not all at their defaults.
    t.all_online().await;
    // Frozen values are constant, so one more full cycle after freezing
    // guarantees the gateway's copy is of the frozen state.
    let start = t.live.full_cycles();
    crate::common::eventually("two more poll cycles", || async {
        t.live.full_cycles() >= start + 2
    })
    .await;

    let slc = t.sim.slc_profile().clone();
    for e in 0..2 {
        for j in 0..6 {
            let want = t.sim.slc_values(e, j);
            let lamp = t.lamp(&lamp_id(e, j)).await;
            let v = &lamp["slc"]["values"];
            assert_eq!(lamp["slc"]["online"], true);
            assert_eq!(v["on"], want.switch, "{}", lamp_id(e, j));
            close(
                "dim_level",
                &v["dim_level"],
                want.dim_level,
                tolerance(&slc, Quantity::DimLevel),
            );
            close(
                "voltage",
                &v["voltage"],
                want.voltage,
                tolerance(&slc, Quantity::Voltage),
            );
            close(
                "current",
                &v["current"],
                want.current,
                tolerance(&slc, Quantity::Current),
            );
            close(
                "power",
                &v["power"],
                want.power,
                tolerance(&slc, Quantity::Power),
            );
            close(
                "power_factor",
                &v["power_factor"],
                want.power_factor,
                tolerance(&slc, Quantity::PowerFactor),
            );
            close(
                "energy",
                &v["energy_kwh"],
                want.energy,
                tolerance(&slc, Quantity::Energy),
            );
            close(
                "burning_hours",
                &v["burning_hours"],
                want.burning_hours,
                tolerance(&slc, Quantity::BurningHours),
            );
            assert_eq!(v["fault_flags"], want.fault_flags);
            assert!(want.voltage > 150.0, "simulated lamps are energised");
        }
        let rtu_profile = t.sim.rtu_profile().clone();
        let want = t.sim.rtu_values(e);
        let rtu = t.rtu(&rtu_id(e)).await;
        let v = &rtu["values"];
        assert_eq!(v["contactors"], serde_json::json!(want.contactors));
        for (i, q) in [Quantity::VoltageA, Quantity::VoltageB, Quantity::VoltageC]
            .into_iter()
            .enumerate()
        {
            close(
                "phase voltage",
                &v["voltage"][i],
                want.voltage[i],
                tolerance(&rtu_profile, q),
            );
        }
        for (i, q) in [Quantity::CurrentA, Quantity::CurrentB, Quantity::CurrentC]
            .into_iter()
            .enumerate()
        {
            close(
                "phase current",
                &v["current"][i],
                want.current[i],
                tolerance(&rtu_profile, q),
            );
        }
        close("active_power", &v["active_power"], want.active_power, 0.01);
        close(
            "energy",
            &v["energy_kwh"],
            want.energy,
            tolerance(&rtu_profile, Quantity::CabinetEnergy),
        );
        assert_eq!(v["door_alarm"], want.door_alarm);
        assert_eq!(v["leakage_alarm"], want.leakage_alarm);
    }
    t.stop().await;
}

#[tokio::test]
async fn vendor_a_unit_ids_over_modbus_tcp() {
    check_profile("slc-a-unit", Framing::Tcp).await;
}

#[tokio::test]
async fn vendor_b_concentrator_blocks_with_word_swapped_floats() {
    check_profile("slc-b-block", Framing::Tcp).await;
}

#[tokio::test]
async fn rtu_over_tcp_framing_end_to_end() {
    check_profile("slc-a-unit", Framing::RtuOverTcp).await;
    check_profile("slc-b-block", Framing::RtuOverTcp).await;
}

#[tokio::test]
async fn alarms_and_failed_lamps_are_reported() {
    let t = spawn_app(SimConfig {
        endpoints: 1,
        slcs_per_endpoint: 4,
        ..SimConfig::default()
    })
    .await;
    t.all_online().await;
    t.sim.set_rtu_alarms(0, true, false);
    t.sim.set_slc_fault(
        0,
        2,
        lamp_sim::SlcFault {
            failed: true,
            ..Default::default()
        },
    );
    crate::common::eventually("door alarm and lamp failure seen", || async {
        let rtu = t.rtu(&rtu_id(0)).await;
        let lamp = t.lamp(&lamp_id(0, 2)).await;
        rtu["values"]["door_alarm"] == true && lamp["slc"]["lamp_failure"] == true
    })
    .await;
    let lamp = t.lamp(&lamp_id(0, 2)).await;
    assert_eq!(
        lamp["slc"]["values"]["power"], 0.0,
        "a failed lamp draws no power"
    );
    assert_eq!(
        lamp["slc"]["online"], true,
        "a failed lamp's controller still answers"
    );
    t.stop().await;
}
