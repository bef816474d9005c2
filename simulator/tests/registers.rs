//! Every field of every shipped profile reads what the model says, through
//! the profile codec; writes take effect.

mod common;

use common::*;
use lamp_profile::{encode, Quantity};
use lamp_sim::{Framing, SlcFault};
use tokio_modbus::prelude::*;

const SLC_PROFILES: [&str; 2] = ["slc-a-unit", "slc-b-block"];

#[tokio::test]
async fn every_field_reads_the_model_value() {
    for name in SLC_PROFILES {
        let sim = start(name, 2, 5, Framing::Tcp).await;
        // Some variety: a failed lamp, a dimmed lamp, an open circuit.
        sim.set_slc_fault(
            1,
            2,
            SlcFault {
                failed: true,
                ..Default::default()
            },
        );
        sim.set_rtu_alarms(1, true, false);
        let slc = sim.slc_profile().clone();
        for e in 0..2 {
            for j in 0..5 {
                let (mut ctx, index) = slc_ctx(&sim, e, j).await;
                let values = sim.slc_values(e, j);
                for f in &slc.fields {
                    let got = read_field(&mut ctx, &slc, f, index).await;
                    let want = encode(f, values.get(f.quantity).unwrap());
                    assert_eq!(got, want, "{name} endpoint {e} SLC {j} {}", f.quantity);
                }
            }
            let rtu = sim.rtu_profile().clone();
            let values = sim.rtu_values(e);
            let mut ctx = tcp(sim.endpoint_addrs()[e], 1).await;
            for f in &rtu.fields {
                let got = read_field(&mut ctx, &rtu, f, 0).await;
                assert_eq!(
                    got,
                    encode(f, values.get(f.quantity).unwrap()),
                    "RTU {}",
                    f.quantity
                );
            }
        }
        let v = sim.slc_values(1, 2);
        assert_eq!((v.fault_flags & 1, v.power), (1, 0.0));
        assert!(sim.rtu_values(1).door_alarm);
        let lit = sim.slc_values(0, 0);
        assert!(
            lit.power > 50.0 && (200.0..240.0).contains(&lit.voltage),
            "{lit:?}"
        );
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn range_reads_span_fields_and_blocks() {
    // Vendor A: one read over the whole map, unmapped register 11 reads 0.
    let sim = start("slc-a-unit", 1, 3, Framing::Tcp).await;
    let p = sim.slc_profile().clone();
    let mut ctx = tcp(sim.endpoint_addrs()[0], 3).await;
    let words = within(ctx.read_holding_registers(0, 12))
        .await
        .unwrap()
        .unwrap();
    let v = sim.slc_values(0, 1);
    for f in &p.fields {
        let at = usize::from(f.address);
        assert_eq!(
            words[at..at + usize::from(f.width())],
            encode(f, v.get(f.quantity).unwrap())
        );
    }
    assert_eq!(words[11], 0);
    let r = within(ctx.read_holding_registers(100, 2)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::IllegalDataAddress));
    ctx.set_slave(Slave(200));
    let r = within(ctx.read_holding_registers(0, 2)).await.unwrap();
    assert_eq!(
        r,
        Err(ExceptionCode::GatewayTargetDevice),
        "no device at unit 200"
    );
    ctx.set_slave(Slave(1));
    let r = within(ctx.read_holding_registers(0, 2)).await.unwrap();
    assert_eq!(
        r,
        Err(ExceptionCode::IllegalDataAddress),
        "the RTU has no holding registers"
    );
    sim.shutdown().await;

    // Vendor B: five blocks in one read, half a float at each end.
    let sim = start("slc-b-block", 1, 5, Framing::Tcp).await;
    let p = sim.slc_profile().clone();
    let mut ctx = tcp(sim.endpoint_addrs()[0], 1).await;
    let words = within(ctx.read_holding_registers(1005, 70))
        .await
        .unwrap()
        .unwrap();
    for j in 0..5u16 {
        let v = sim.slc_values(0, usize::from(j));
        for f in &p.fields {
            for (k, w) in encode(f, v.get(f.quantity).unwrap()).iter().enumerate() {
                let a = p.absolute_address(f, j) as usize + k;
                if (1005..1075).contains(&a) {
                    assert_eq!(words[a - 1005], *w, "block {j} {}", f.quantity);
                }
            }
        }
    }
    let r = within(ctx.read_holding_registers(1000 + 16 * 5, 4))
        .await
        .unwrap();
    assert_eq!(
        r,
        Err(ExceptionCode::IllegalDataAddress),
        "past the last SLC"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn switch_dim_and_contactor_writes_take_effect() {
    for name in SLC_PROFILES {
        let sim = start(name, 1, 8, Framing::Tcp).await;
        let p = sim.slc_profile().clone();
        let switch = p.field(Quantity::Switch).unwrap().clone();
        let dim = p.field(Quantity::DimLevel).unwrap().clone();

        let (mut ctx, index) = slc_ctx(&sim, 0, 1).await;
        let addr = |f| p.absolute_address(f, index) as u16;
        let full = sim.slc_values(0, 1).power;
        let w = encode(&dim, 50.0);
        within(ctx.write_single_register(addr(&dim), w[0]))
            .await
            .unwrap()
            .unwrap();
        let v = sim.slc_values(0, 1);
        assert_eq!(v.dim_level, 50.0, "{name}");
        assert!((v.power - full * 0.5).abs() < 1e-9, "{v:?}");
        assert_eq!(read_field(&mut ctx, &p, &dim, index).await, w);

        within(ctx.write_multiple_registers(addr(&switch), &encode(&switch, 0.0)))
            .await
            .unwrap()
            .unwrap();
        let v = sim.slc_values(0, 1);
        assert!(!v.switch && v.power == 0.0 && v.current == 0.0 && v.voltage > 200.0);

        let r = within(ctx.write_single_register(addr(&dim), encode(&dim, 150.0)[0]))
            .await
            .unwrap();
        assert_eq!(r, Err(ExceptionCode::IllegalDataValue), "dim above 100 %");
        let r = within(ctx.write_single_register(addr(&switch), 7))
            .await
            .unwrap();
        assert_eq!(r, Err(ExceptionCode::IllegalDataValue), "switch is 0 or 1");
        let volt = p.field(Quantity::Voltage).unwrap();
        let r = within(ctx.write_single_register(addr(volt), 1))
            .await
            .unwrap();
        assert_eq!(
            r,
            Err(ExceptionCode::IllegalDataAddress),
            "voltage is read-only"
        );

        // Contactor 2 (coil 1) feeds SLCs 1 and 5 with 4 circuits.
        let mut rtu = tcp(sim.endpoint_addrs()[0], 1).await;
        within(rtu.write_single_coil(1, false))
            .await
            .unwrap()
            .unwrap();
        let coils = within(rtu.read_coils(0, 4)).await.unwrap().unwrap();
        assert_eq!(coils, [true, false, true, true]);
        for j in [1, 5] {
            let (mut c, i) = slc_ctx(&sim, 0, j).await;
            for q in [Quantity::Voltage, Quantity::Power] {
                let f = p.field(q).unwrap();
                assert_eq!(
                    read_field(&mut c, &p, f, i).await,
                    encode(f, 0.0),
                    "{name} SLC {j} {q}"
                );
            }
        }
        assert!(sim.slc_values(0, 2).power > 0.0, "other circuits stay lit");
        let before = sim.rtu_values(0).active_power;
        within(rtu.write_multiple_coils(0, &[false, false, false, false]))
            .await
            .unwrap()
            .unwrap();
        let after = sim.rtu_values(0);
        assert!(before > 0.0 && after.active_power == 0.0 && after.current == [0.0; 3]);
        within(rtu.write_multiple_coils(0, &[true; 4]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sim.rtu_values(0).contactors, vec![true; 4]);
        let r = within(rtu.write_single_coil(9, true)).await.unwrap();
        assert_eq!(r, Err(ExceptionCode::IllegalDataAddress), "no coil 9");
        let r = within(rtu.read_input_registers(0, 10))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.len(), 10);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn time_accumulates_energy_unless_frozen() {
    let sim = start("slc-a-unit", 1, 2, Framing::Tcp).await;
    let before = (sim.slc_values(0, 0), sim.rtu_values(0));
    sim.set_frozen(false);
    wait_until("a simulated second", || async {
        sim.slc_values(0, 0).burning_hours > before.0.burning_hours
    })
    .await;
    sim.set_frozen(true);
    let after = sim.slc_values(0, 0);
    assert!(after.energy > before.0.energy);
    assert!(sim.rtu_values(0).energy > before.1.energy);
    assert_eq!(sim.slc_values(0, 0), after, "frozen values stay put");
    sim.shutdown().await;
}
