//! Faults of the street-lighting field, read over real sockets through the
//! profile codec: a circuit's supply cut past the cabinet, a stuck
//! contactor, power off the rated power for the dim level, a day burner,
//! and the RTU's door and leakage alarms.

mod common;

use common::*;
use lamp_profile::{decode, encode, Profile, Quantity, Table};
use lamp_sim::{
    CircuitFault, Framing, InventoryOptions, Simulator, SlcFault, StuckContactor, SupplyCut,
};
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

const SLC_PROFILES: [&str; 2] = ["slc-a-unit", "slc-b-block"];

/// One field of the device at block `index`, decoded.
async fn value(ctx: &mut Context, p: &Profile, q: Quantity, index: u16) -> f64 {
    let f = p.field(q).unwrap();
    decode(f, &read_field(ctx, p, f, index).await)
}

/// Writes one read-write field (a coil or holding registers).
async fn write(
    ctx: &mut Context,
    p: &Profile,
    q: Quantity,
    index: u16,
    v: f64,
) -> Result<(), ExceptionCode> {
    let f = p.field(q).unwrap();
    let addr = p.absolute_address(f, index) as u16;
    let r = match f.table {
        Table::Coil => within(ctx.write_single_coil(addr, v != 0.0)).await,
        _ => within(ctx.write_multiple_registers(addr, &encode(f, v))).await,
    };
    r.expect("transport ok")
}

/// SLC `j`'s registers as the gateway reads them: (switch, dim, V, A, W, flags).
async fn slc_reading(sim: &Simulator, j: usize) -> (f64, f64, f64, f64, f64, f64) {
    let p = sim.slc_profile().clone();
    let (mut ctx, index) = slc_ctx(sim, 0, j).await;
    let mut out = [0.0; 6];
    for (o, q) in out.iter_mut().zip([
        Quantity::Switch,
        Quantity::DimLevel,
        Quantity::Voltage,
        Quantity::Current,
        Quantity::Power,
        Quantity::FaultFlags,
    ]) {
        *o = value(&mut ctx, &p, q, index).await;
    }
    (out[0], out[1], out[2], out[3], out[4], out[5])
}

async fn rtu(sim: &Simulator) -> Context {
    tcp(sim.endpoint_addrs()[0], 1).await
}

fn cut(answers: bool) -> CircuitFault {
    CircuitFault {
        cut: Some(SupplyCut { answers }),
        ..CircuitFault::default()
    }
}

fn stuck(closed: bool) -> CircuitFault {
    CircuitFault {
        stuck: Some(StuckContactor { closed }),
        ..CircuitFault::default()
    }
}

#[tokio::test]
async fn a_cut_circuit_measures_nothing_while_its_contactor_reads_closed() {
    for name in SLC_PROFILES {
        // 8 SLCs on 4 circuits: circuit 2 (phase B) carries SLCs 1 and 5.
        let sim = start(name, 1, 8, Framing::Tcp).await;
        let rp = sim.rtu_profile().clone();
        let sp = sim.slc_profile().clone();
        let mut r = rtu(&sim).await;
        let before = sim.rtu_values(0);
        assert!(before.current[1] > 0.0);
        let (p1, p5) = (sim.slc_values(0, 1).power, sim.slc_values(0, 5).power);
        sim.set_circuit_fault(0, 2, cut(true));
        assert_eq!(sim.circuit_fault(0, 2), cut(true));
        for j in [1, 5] {
            assert_eq!(
                slc_reading(&sim, j).await,
                (1.0, 100.0, 0.0, 0.0, 0.0, 0.0),
                "{name} SLC {j}: commanded relay and level, no supply, no flag"
            );
        }
        let (_, _, v, _, w, _) = slc_reading(&sim, 2).await;
        assert!(v > 200.0 && w > 50.0, "{name}: circuit 3 still lit");
        assert_eq!(value(&mut r, &rp, Quantity::Contactor(2), 0).await, 1.0);
        assert_eq!(value(&mut r, &rp, Quantity::CurrentB, 0).await, 0.0);
        let after = sim.rtu_values(0);
        assert!((before.active_power - after.active_power - (p1 + p5)).abs() < 1e-9);
        assert_eq!(after.voltage, before.voltage, "the cabinet still has mains");
        // Dimming a lamp on the cut circuit is accepted and kept.
        let (mut ctx, index) = slc_ctx(&sim, 0, 1).await;
        write(&mut ctx, &sp, Quantity::DimLevel, index, 40.0)
            .await
            .unwrap();
        assert_eq!(slc_reading(&sim, 1).await.1, 40.0);
        sim.set_circuit_fault(0, 2, CircuitFault::default());
        let (_, dim, v, _, w, _) = slc_reading(&sim, 1).await;
        assert!(dim == 40.0 && v > 200.0 && w > 0.0, "{name}: supply back");
        let back = sim.rtu_values(0).active_power;
        assert!((back - (before.active_power - p1 * 0.6)).abs() < 1e-9);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn a_cut_that_kills_the_slcs_silences_them_until_the_supply_is_back() {
    // Unit layout: the converter answers 0x0B for the dead nodes.
    let sim = start("slc-a-unit", 1, 8, Framing::Tcp).await;
    sim.set_circuit_fault(0, 3, cut(false));
    let mut ctx = tcp(sim.endpoint_addrs()[0], 2 + 2).await; // SLC 2, circuit 3
    let r = within(ctx.read_holding_registers(0, 11)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
    let r = within(ctx.write_single_register(0, 0)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
    ctx.set_slave(Slave(2 + 6)); // SLC 6, circuit 3
    let r = within(ctx.read_holding_registers(0, 11)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
    ctx.set_slave(Slave(2 + 1)); // circuit 2 answers
    within(ctx.read_holding_registers(0, 11))
        .await
        .unwrap()
        .unwrap();
    assert!(!sim.slc_values(0, 2).comm_ok);
    assert_eq!(sim.rtu_values(0).current[2], 0.0, "circuit 3 is phase C");
    // An SLC silent on its own stays silent when the supply comes back.
    sim.set_slc_fault(
        0,
        6,
        SlcFault {
            silent: true,
            ..SlcFault::default()
        },
    );
    sim.set_circuit_fault(0, 3, CircuitFault::default());
    ctx.set_slave(Slave(2 + 2));
    within(ctx.read_holding_registers(0, 11))
        .await
        .unwrap()
        .unwrap();
    assert!(sim.slc_values(0, 2).comm_ok && sim.slc_values(0, 2).power > 0.0);
    ctx.set_slave(Slave(2 + 6));
    let r = within(ctx.read_holding_registers(0, 11)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
    sim.shutdown().await;

    // Block layout: the concentrator reads comm_ok = 0 with the last values.
    let sim = start("slc-b-block", 1, 8, Framing::Tcp).await;
    let p = sim.slc_profile().clone();
    let mut ctx = rtu(&sim).await;
    let lit = sim.slc_values(0, 1);
    sim.set_circuit_fault(0, 2, cut(false));
    assert_eq!(value(&mut ctx, &p, Quantity::CommOk, 1).await, 0.0);
    let f = p.field(Quantity::Power).unwrap();
    assert_eq!(read_field(&mut ctx, &p, f, 1).await, encode(f, lit.power));
    assert_eq!(value(&mut ctx, &p, Quantity::CommOk, 0).await, 1.0);
    assert_eq!(sim.rtu_values(0).current[1], 0.0);
    sim.set_circuit_fault(0, 2, CircuitFault::default());
    assert_eq!(value(&mut ctx, &p, Quantity::CommOk, 1).await, 1.0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stuck_contactor_accepts_writes_and_reads_back_where_it_is() {
    for name in SLC_PROFILES {
        let sim = start(name, 1, 8, Framing::Tcp).await;
        let rp = sim.rtu_profile().clone();
        let mut r = rtu(&sim).await;
        let contactor = |n| Quantity::Contactor(n);

        // Welded closed: switching off is accepted, the lamps stay lit.
        sim.set_circuit_fault(0, 3, stuck(true));
        write(&mut r, &rp, contactor(3), 0, 0.0).await.unwrap();
        assert_eq!(value(&mut r, &rp, contactor(3), 0).await, 1.0, "{name}");
        let (_, _, v, _, w, _) = slc_reading(&sim, 2).await;
        assert!(
            v > 200.0 && w > 50.0,
            "{name}: supply through welded contacts"
        );
        // Cleared, it follows the last write (off).
        sim.set_circuit_fault(0, 3, CircuitFault::default());
        assert_eq!(value(&mut r, &rp, contactor(3), 0).await, 0.0);
        assert_eq!(slc_reading(&sim, 2).await.2, 0.0);

        // Jammed open: switching on is accepted, the lamps stay dark.
        sim.set_circuit_fault(0, 4, stuck(false));
        assert_eq!(value(&mut r, &rp, contactor(4), 0).await, 0.0);
        write(&mut r, &rp, contactor(4), 0, 1.0).await.unwrap();
        assert_eq!(value(&mut r, &rp, contactor(4), 0).await, 0.0);
        let (_, _, v, a, w, _) = slc_reading(&sim, 3).await;
        assert_eq!((v, a, w), (0.0, 0.0, 0.0), "{name}");
        assert_eq!(sim.rtu_values(0).contactors, [true, true, false, false]);
        sim.set_circuit_fault(0, 4, CircuitFault::default());
        assert_eq!(value(&mut r, &rp, contactor(4), 0).await, 1.0);
        assert!(slc_reading(&sim, 3).await.4 > 50.0);
        sim.shutdown().await;
    }
}

/// Rated power of the lamps of endpoint 0, from the inventory the farm writes.
fn rated_from_inventory(sim: &Simulator) -> Vec<f64> {
    let dir = std::env::temp_dir().join(format!("lamp-sim-rated-{}", std::process::id()));
    sim.write_inventory(&dir, &InventoryOptions::default())
        .unwrap();
    let mut r = csv::Reader::from_path(dir.join("lamps.csv")).unwrap();
    let col = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "rated_power_w");
    let rated = r
        .records()
        .map(|x| x.unwrap()[col.unwrap()].parse().unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    rated
}

#[tokio::test]
async fn power_follows_rated_power_and_level_unless_scaled() {
    for name in SLC_PROFILES {
        let sim = start(name, 1, 6, Framing::Tcp).await;
        let sp = sim.slc_profile().clone();
        let rated = rated_from_inventory(&sim);
        assert_eq!(rated.len(), 6);
        for (j, rated) in rated.iter().enumerate() {
            let (mut ctx, index) = slc_ctx(&sim, 0, j).await;
            for level in [100.0, 40.0] {
                write(&mut ctx, &sp, Quantity::DimLevel, index, level)
                    .await
                    .unwrap();
                let w = value(&mut ctx, &sp, Quantity::Power, index).await;
                let want = rated * level / 100.0;
                assert!(
                    (w - want).abs() <= want * 0.015 + 0.06,
                    "{name} SLC {j}: {w} W at {level} % of {rated} W"
                );
            }
        }
        // A driver drawing 1.5 × what the level asks for.
        let (mut ctx, index) = slc_ctx(&sim, 0, 1).await;
        let plain = sim.slc_values(0, 1);
        let scaled = SlcFault {
            power_scale: Some(1.5),
            ..SlcFault::default()
        };
        sim.set_slc_fault(0, 1, scaled);
        assert_eq!(sim.slc_fault(0, 1), scaled);
        let w = value(&mut ctx, &sp, Quantity::Power, index).await;
        let a = value(&mut ctx, &sp, Quantity::Current, index).await;
        assert!((w - plain.power * 1.5).abs() < 0.06, "{name}: {w}");
        assert!((a - plain.current * 1.5).abs() < 0.0015, "{name}: {a}");
        assert_eq!(value(&mut ctx, &sp, Quantity::DimLevel, index).await, 40.0);
        let v = sim.slc_values(0, 1);
        assert_eq!((v.fault_flags, v.comm_ok), (0, true));
        let cabinet = sim.rtu_values(0).active_power;
        sim.set_slc_fault(0, 1, SlcFault::default());
        assert!((cabinet - sim.rtu_values(0).active_power - plain.power * 0.5).abs() < 1e-9);
        assert_eq!(sim.slc_values(0, 1).power, plain.power);
        let bad = sim.try_set_slc_fault(
            0,
            1,
            SlcFault {
                power_scale: Some(-0.5),
                ..SlcFault::default()
            },
        );
        assert!(matches!(bad, Err(lamp_sim::SimError::Config(_))), "{bad:?}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn a_day_burner_stays_on_whatever_is_written() {
    for name in SLC_PROFILES {
        let sim = start(name, 1, 4, Framing::Tcp).await;
        let sp = sim.slc_profile().clone();
        let rp = sim.rtu_profile().clone();
        let burner = SlcFault {
            stuck_on: true,
            ..SlcFault::default()
        };
        let (mut ctx, index) = slc_ctx(&sim, 0, 2).await;
        write(&mut ctx, &sp, Quantity::Switch, index, 0.0)
            .await
            .unwrap();
        assert_eq!(slc_reading(&sim, 2).await.4, 0.0, "{name}: off as written");
        sim.set_slc_fault(0, 2, burner);
        assert_eq!(sim.slc_fault(0, 2), burner);
        let (switch, _, _, _, w, _) = slc_reading(&sim, 2).await;
        assert!(switch == 1.0 && w > 50.0, "{name}: burns");
        write(&mut ctx, &sp, Quantity::Switch, index, 0.0)
            .await
            .unwrap();
        let (switch, _, _, _, w, _) = slc_reading(&sim, 2).await;
        assert!(
            switch == 1.0 && w > 50.0,
            "{name}: the write changes nothing"
        );
        // No supply, no burning: the cabinet switches circuit 3 off.
        let mut r = rtu(&sim).await;
        write(&mut r, &rp, Quantity::Contactor(3), 0, 0.0)
            .await
            .unwrap();
        let (switch, _, v, _, w, _) = slc_reading(&sim, 2).await;
        assert_eq!((switch, v, w), (1.0, 0.0, 0.0));
        write(&mut r, &rp, Quantity::Contactor(3), 0, 1.0)
            .await
            .unwrap();
        // Repaired, the relay follows the last write (off).
        sim.set_slc_fault(0, 2, SlcFault::default());
        let (switch, _, _, _, w, _) = slc_reading(&sim, 2).await;
        assert_eq!((switch, w), (0.0, 0.0), "{name}");
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn rtu_door_and_leakage_alarms_read_over_modbus() {
    let sim = start("slc-a-unit", 1, 2, Framing::Tcp).await;
    let rp = sim.rtu_profile().clone();
    let mut r = rtu(&sim).await;
    for (door, leakage) in [(true, false), (false, true), (true, true), (false, false)] {
        sim.set_rtu_alarms(0, door, leakage);
        assert_eq!(
            (
                value(&mut r, &rp, Quantity::DoorAlarm, 0).await,
                value(&mut r, &rp, Quantity::LeakageAlarm, 0).await
            ),
            (f64::from(u8::from(door)), f64::from(u8::from(leakage)))
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn control_interface_sets_and_clears_the_field_faults() {
    let sim = start("slc-a-unit", 2, 8, Framing::Tcp).await;
    let c = sim.control_addr().unwrap();

    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/1/circuits/2/fault",
        Some(r#"{"cut":{"answers":false}}"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"endpoint": 1, "circuit": 2,
            "fault": {"cut": {"answers": false}, "stuck": null}})
    );
    assert_eq!(sim.circuit_fault(1, 2), cut(false));
    assert!(!sim.slc_values(1, 5).comm_ok);
    let (_, list) = http(c, "GET", "/endpoints", None).await;
    assert_eq!(list[1]["circuit_faults"]["2"]["cut"]["answers"], false);
    assert_eq!(list[0]["circuit_faults"], serde_json::json!({}));

    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/1/circuits/2/fault",
        Some(r#"{"cut":{},"stuck":{"closed":false}}"#),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(v["fault"]["cut"]["answers"], true);
    assert_eq!(
        sim.circuit_fault(1, 2),
        CircuitFault {
            cut: Some(SupplyCut { answers: true }),
            stuck: Some(StuckContactor { closed: false })
        }
    );
    assert!(sim.slc_values(1, 5).comm_ok, "answers again");
    assert!(!sim.rtu_values(1).contactors[1]);
    let (st, v) = http(c, "GET", "/endpoints/1/circuits/2/fault", None).await;
    assert_eq!(
        (st, v["fault"]["stuck"]["closed"].as_bool()),
        (200, Some(false))
    );
    let (st, v) = http(c, "DELETE", "/endpoints/1/circuits/2/fault", None).await;
    assert_eq!((st, v["fault"]["cut"].is_null()), (200, true));
    assert_eq!(sim.circuit_fault(1, 2), CircuitFault::default());
    let (st, _) = http(
        c,
        "PUT",
        "/endpoints/0/circuits/4/fault",
        Some(r#"{"stuck":{"closed":true}}"#),
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = http(c, "PUT", "/endpoints/0/circuits/4/fault", Some("{}")).await;
    assert_eq!(st, 200);
    assert_eq!(sim.circuit_fault(0, 4), CircuitFault::default());

    for (path, body) in [
        ("/endpoints/0/circuits/5/fault", "{}"),
        ("/endpoints/0/circuits/0/fault", "{}"),
        ("/endpoints/2/circuits/1/fault", "{}"),
    ] {
        let (st, e) = http(c, "PUT", path, Some(body)).await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
        let (st, _) = http(c, "GET", path, None).await;
        assert_eq!(st, 404, "{path}");
    }
    for body in [
        r#"{"cut":true}"#,
        r#"{"stuck":{}}"#,
        r#"{"stuck":{"closed":true,"open":false}}"#,
        r#"{"cut":{"answer":false}}"#,
        r#"{"cat":{}}"#,
    ] {
        let (st, e) = http(c, "PUT", "/endpoints/0/circuits/1/fault", Some(body)).await;
        assert_eq!(
            (st, e["error"]["code"].as_str()),
            (422, Some("invalid_body")),
            "{body}"
        );
    }

    // The SLC faults: a wrong power for the level, a day burner.
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/0/slcs/3/fault",
        Some(r#"{"power_scale":0.5,"stuck_on":true}"#),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        (
            v["fault"]["power_scale"].as_f64(),
            v["fault"]["stuck_on"].as_bool()
        ),
        (Some(0.5), Some(true))
    );
    let f = sim.slc_fault(0, 3);
    assert_eq!((f.power_scale, f.stuck_on), (Some(0.5), true));
    let (st, v) = http(c, "GET", "/endpoints/0/slcs/3/fault", None).await;
    assert_eq!((st, v["fault"]["power_scale"].as_f64()), (200, Some(0.5)));
    let (st, e) = http(
        c,
        "PUT",
        "/endpoints/0/slcs/3/fault",
        Some(r#"{"power_scale":11}"#),
    )
    .await;
    assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid")));
    assert_eq!(sim.slc_fault(0, 3).power_scale, Some(0.5), "kept");
    let (st, _) = http(c, "PUT", "/endpoints/0/slcs/3/fault", Some("{}")).await;
    assert_eq!(st, 200);
    assert_eq!(sim.slc_fault(0, 3), SlcFault::default());

    // The RTU's alarms, read back over Modbus.
    let (st, v) = http(
        c,
        "PUT",
        "/endpoints/1/rtu/alarms",
        Some(r#"{"leakage":true}"#),
    )
    .await;
    assert_eq!(
        (st, v["door"].as_bool(), v["leakage"].as_bool()),
        (200, Some(false), Some(true))
    );
    let rp = sim.rtu_profile().clone();
    let mut r = tcp(sim.endpoint_addrs()[1], 1).await;
    assert_eq!(value(&mut r, &rp, Quantity::LeakageAlarm, 0).await, 1.0);
    assert_eq!(value(&mut r, &rp, Quantity::DoorAlarm, 0).await, 0.0);
    sim.shutdown().await;
}
