//! The model against the inventory it writes, over real sockets through the
//! profile codec: every lamp's power is its `rated_power_w` × level / 100
//! unless `power_scale` says otherwise; the RTU's door and leakage alarms.
//! (Circuit cuts, stuck contactors and day burners: tests/faults.rs; their
//! control routes: tests/control.rs.)

mod common;

use common::*;
use lamp_profile::{decode, encode, Profile, Quantity, Table};
use lamp_sim::{Framing, InventoryOptions, Simulator, SlcFault};
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
async fn rtu_door_and_leakage_alarms_read_over_modbus() {
    let sim = start("slc-a-unit", 1, 2, Framing::Tcp).await;
    let rp = sim.rtu_profile().clone();
    let mut r = tcp(sim.endpoint_addrs()[0], 1).await;
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
