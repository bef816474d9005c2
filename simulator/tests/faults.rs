//! Every endpoint and SLC fault is observable from a Modbus client and clears again.

mod common;

use common::*;
use lamp_profile::{decode, encode, Profile, Quantity};
use lamp_sim::{
    CircuitFault, EndpointFault, Framing, RtuFault, SimError, Simulator, SlcFault, StuckContactor,
    SupplyCut,
};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_modbus::prelude::*;

/// A quick read of the RTU's voltages, with a short client-side timeout.
async fn probe(
    ctx: &mut tokio_modbus::client::Context,
) -> Result<tokio_modbus::Result<Vec<u16>>, tokio::time::error::Elapsed> {
    tokio::time::timeout(Duration::from_millis(400), ctx.read_input_registers(0, 3)).await
}

async fn healthy(addr: std::net::SocketAddr) -> bool {
    match tokio::time::timeout(Duration::from_secs(1), tcp::connect_slave(addr, Slave(1))).await {
        Ok(Ok(mut ctx)) => matches!(probe(&mut ctx).await, Ok(Ok(Ok(_)))),
        _ => false,
    }
}

#[tokio::test]
async fn endpoint_faults_show_and_clear() {
    let sim = start("slc-a-unit", 2, 3, Framing::Tcp).await;
    let addr = sim.endpoint_addrs()[0];
    let other = sim.endpoint_addrs()[1];

    // refuse: the port stops accepting, open connections close.
    let mut open = tcp(addr, 1).await;
    sim.set_endpoint_fault(0, Some(EndpointFault::Refuse));
    wait_until("connection refused", || async {
        matches!(tokio::net::TcpStream::connect(addr).await, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    assert!(
        !matches!(probe(&mut open).await, Ok(Ok(Ok(_)))),
        "open connection was closed"
    );
    wait_until("other endpoints unaffected", || healthy(other)).await;
    sim.set_endpoint_fault(0, None);
    wait_until("port bound again", || healthy(addr)).await;

    // silent: the request goes unanswered.
    sim.set_endpoint_fault(0, Some(EndpointFault::Silent));
    let mut ctx = tcp(addr, 1).await;
    assert!(probe(&mut ctx).await.is_err(), "silent endpoint times out");
    sim.set_endpoint_fault(0, None);
    wait_until("healthy again", || healthy(addr)).await;

    // delay: correct answer, late.
    sim.set_endpoint_fault(0, Some(EndpointFault::Delay { ms: 250 }));
    let mut ctx = tcp(addr, 1).await;
    let t = Instant::now();
    within(ctx.read_input_registers(0, 3))
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(250));

    // exception: every request answers the code, the connection stays.
    sim.set_endpoint_fault(0, Some(EndpointFault::Exception { code: 4 }));
    let r = within(ctx.read_input_registers(0, 3)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::ServerDeviceFailure));
    sim.set_endpoint_fault(0, None);
    within(ctx.read_input_registers(0, 3))
        .await
        .unwrap()
        .unwrap();

    // drop, garble, wrong transaction id: the client sees a transport or protocol error.
    for fault in [
        EndpointFault::Drop,
        EndpointFault::Garble,
        EndpointFault::WrongTid,
    ] {
        sim.set_endpoint_fault(0, Some(fault));
        let mut ctx = tcp(addr, 1).await;
        let r = within(ctx.read_input_registers(0, 3)).await;
        assert!(r.is_err(), "{fault:?} gave {r:?}");
        sim.set_endpoint_fault(0, None);
        wait_until(&format!("{fault:?} to clear"), || healthy(addr)).await;
    }
    assert!(sim.request_count() > 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn silent_slc_behind_a_live_unit_gateway() {
    let sim = start("slc-a-unit", 1, 3, Framing::Tcp).await;
    sim.set_slc_fault(
        0,
        1,
        SlcFault {
            silent: true,
            ..Default::default()
        },
    );
    let mut ctx = tcp(sim.endpoint_addrs()[0], 3).await;
    let r = within(ctx.read_holding_registers(0, 11)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
    ctx.set_slave(Slave(2));
    within(ctx.read_holding_registers(0, 11))
        .await
        .unwrap()
        .unwrap();
    assert!(!sim.slc_values(0, 1).comm_ok);

    sim.set_slc_fault(
        0,
        2,
        SlcFault {
            exception: Some(6),
            ..Default::default()
        },
    );
    ctx.set_slave(Slave(4));
    let r = within(ctx.read_holding_registers(0, 11)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::ServerDeviceBusy));

    sim.set_slc_fault(0, 1, SlcFault::default());
    sim.set_slc_fault(0, 2, SlcFault::default());
    for unit in [3, 4] {
        ctx.set_slave(Slave(unit));
        within(ctx.read_holding_registers(0, 11))
            .await
            .unwrap()
            .unwrap();
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn silent_slc_in_a_concentrator_block_reads_comm_lost() {
    let sim = start("slc-b-block", 1, 3, Framing::Tcp).await;
    let p = sim.slc_profile().clone();
    let comm = p.field(Quantity::CommOk).unwrap().clone();
    let switch = p.field(Quantity::Switch).unwrap().clone();
    let mut ctx = tcp(sim.endpoint_addrs()[0], 1).await;
    assert_eq!(read_field(&mut ctx, &p, &comm, 1).await, [1]);
    let before = sim.slc_values(0, 1);
    sim.set_slc_fault(
        0,
        1,
        SlcFault {
            silent: true,
            ..Default::default()
        },
    );
    assert_eq!(read_field(&mut ctx, &p, &comm, 1).await, [0]);
    // The concentrator cannot reach the node: writes fail, values stay frozen.
    let r = within(ctx.write_single_register(p.absolute_address(&switch, 1) as u16, 0))
        .await
        .unwrap();
    assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
    within(ctx.write_single_coil(1, false))
        .await
        .unwrap()
        .unwrap();
    let silent = sim.slc_values(0, 1);
    assert_eq!(silent.power, before.power, "frozen at the last reading");
    let power = p.field(Quantity::Power).unwrap();
    assert_eq!(
        read_field(&mut ctx, &p, power, 1).await,
        encode(power, before.power)
    );
    assert_eq!(
        read_field(&mut ctx, &p, &comm, 0).await,
        [1],
        "neighbours still talk"
    );
    sim.set_slc_fault(0, 1, SlcFault::default());
    assert_eq!(read_field(&mut ctx, &p, &comm, 1).await, [1]);
    assert_eq!(
        sim.slc_values(0, 1).voltage,
        0.0,
        "live again: circuit 2 is open"
    );
    sim.shutdown().await;
}

/// A read of `qty` registers with function `fc` in the farm's framing.
fn read_req(framing: Framing, tid: u16, unit: u8, fc: u8, qty: u16) -> Vec<u8> {
    let pdu = [fc, 0, 0, 0, qty as u8];
    match framing {
        Framing::Tcp => mbap(tid, unit, &pdu),
        Framing::RtuOverTcp => rtu_frame(unit, &pdu),
    }
}

/// Length of the reply to a read of `qty` registers.
fn read_reply_len(framing: Framing, qty: usize) -> usize {
    match framing {
        Framing::Tcp => 7 + 2 + 2 * qty,
        Framing::RtuOverTcp => 1 + 2 + 2 * qty + 2,
    }
}

/// (transaction id or 0, unit, function code) of a reply.
fn reply_head(framing: Framing, r: &[u8]) -> (u16, u8, u8) {
    match framing {
        Framing::Tcp => (u16::from_be_bytes([r[0], r[1]]), r[6], r[7]),
        Framing::RtuOverTcp => {
            assert!(crc_ok(r), "bad CRC on {r:02X?}");
            (0, r[0], r[1])
        }
    }
}

#[tokio::test]
async fn no_answer_units_send_nothing_while_neighbours_answer() {
    for framing in [Framing::Tcp, Framing::RtuOverTcp] {
        let sim = start("slc-a-unit", 1, 3, framing).await;
        let dead = SlcFault {
            no_answer: true,
            ..Default::default()
        };
        sim.set_slc_fault(0, 1, dead); // unit 3
        sim.set_rtu_fault(0, RtuFault { no_answer: true }); // unit 1
        assert_eq!(sim.slc_fault(0, 1), dead);
        let mut s = within(TcpStream::connect(sim.endpoint_addrs()[0]))
            .await
            .unwrap();
        // The dead units are asked first, a live neighbour last, all on one
        // connection: the first bytes back are the neighbour's reply, so the
        // dead units sent nothing at all (no reply, no exception).
        let mut burst = read_req(framing, 1, 3, 3, 2);
        burst.extend(read_req(framing, 2, 1, 4, 3));
        burst.extend(read_req(framing, 3, 2, 3, 2));
        s.write_all(&burst).await.unwrap();
        let r = read_exact(&mut s, read_reply_len(framing, 2)).await;
        let tid = if framing == Framing::Tcp { 3 } else { 0 };
        assert_eq!(reply_head(framing, &r), (tid, 2, 3), "{framing}: {r:02X?}");
        // Still nothing from the dead units: the next reply is the next request's.
        s.write_all(&read_req(framing, 4, 4, 3, 2)).await.unwrap();
        let r = read_exact(&mut s, read_reply_len(framing, 2)).await;
        let tid = if framing == Framing::Tcp { 4 } else { 0 };
        assert_eq!(reply_head(framing, &r), (tid, 4, 3), "{framing}: {r:02X?}");
        assert_eq!(
            sim.request_count(),
            2,
            "unanswered requests are not counted"
        );

        // Cleared, both answer again on the same connection.
        sim.set_slc_fault(0, 1, SlcFault::default());
        sim.set_rtu_fault(0, RtuFault::default());
        s.write_all(&read_req(framing, 5, 3, 3, 2)).await.unwrap();
        let r = read_exact(&mut s, read_reply_len(framing, 2)).await;
        assert_eq!(reply_head(framing, &r).1, 3);
        s.write_all(&read_req(framing, 6, 1, 4, 3)).await.unwrap();
        let r = read_exact(&mut s, read_reply_len(framing, 3)).await;
        assert_eq!(reply_head(framing, &r).1, 1);
        sim.shutdown().await;
    }

    // A Modbus client sees a timeout on the dead unit, not an exception, and
    // keeps using its connection for the neighbours.
    let sim = start("slc-a-unit", 1, 3, Framing::Tcp).await;
    sim.set_slc_fault(
        0,
        0,
        SlcFault {
            no_answer: true,
            silent: true,
            ..Default::default()
        },
    );
    let mut ctx = tcp(sim.endpoint_addrs()[0], 2).await;
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        ctx.read_holding_registers(0, 11),
    )
    .await;
    assert!(r.is_err(), "no_answer wins over silent: {r:?}");
    ctx.set_slave(Slave(3));
    within(ctx.read_holding_registers(0, 11))
        .await
        .unwrap()
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn no_answer_in_block_layout() {
    let sim = start("slc-b-block", 1, 2, Framing::Tcp).await;
    let e = sim
        .try_set_slc_fault(
            0,
            1,
            SlcFault {
                no_answer: true,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(e, SimError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("silent"), "{e}");
    assert_eq!(sim.slc_fault(0, 1), SlcFault::default());
    assert!(matches!(
        sim.try_set_slc_fault(0, 2, SlcFault::default()),
        Err(SimError::NotFound(_))
    ));

    // A dead RTU is a dead concentrator: its SLC blocks go unanswered too,
    // while a unit with no device still gets the converter's 0x0B.
    sim.set_rtu_fault(0, RtuFault { no_answer: true });
    let mut s = within(TcpStream::connect(sim.endpoint_addrs()[0]))
        .await
        .unwrap();
    let p = sim.slc_profile().clone();
    let comm = p.field(Quantity::CommOk).unwrap();
    let addr = p.absolute_address(comm, 1) as u16;
    let table_fc = match comm.table {
        lamp_profile::Table::Coil => 1,
        lamp_profile::Table::DiscreteInput => 2,
        lamp_profile::Table::Holding => 3,
        lamp_profile::Table::Input => 4,
    };
    let [hi, lo] = addr.to_be_bytes();
    let mut burst = mbap(1, 1, &[table_fc, hi, lo, 0, 1]);
    burst.extend(mbap(2, 9, &[3, 0, 0, 0, 1]));
    s.write_all(&burst).await.unwrap();
    let r = read_exact(&mut s, 9).await;
    assert_eq!(r, mbap(2, 9, &[0x83, 0x0B]));
    sim.shutdown().await;
}

/// SLC `j`'s quantity `q` as the gateway would decode it off the wire.
async fn slc_read(sim: &Simulator, j: usize, q: Quantity) -> f64 {
    let p = sim.slc_profile().clone();
    let f = p.field(q).unwrap();
    let (mut ctx, index) = slc_ctx(sim, 0, j).await;
    decode(f, &read_field(&mut ctx, &p, f, index).await)
}

/// The RTU's quantity `q`, decoded off the wire.
async fn rtu_read(sim: &Simulator, q: Quantity) -> f64 {
    let p: Profile = sim.rtu_profile().clone();
    let f = p.field(q).unwrap();
    let mut ctx = tcp(sim.endpoint_addrs()[0], 1).await;
    decode(f, &read_field(&mut ctx, &p, f, 0).await)
}

/// Writes SLC `j`'s relay over the wire; the SLC accepts it.
async fn write_switch(sim: &Simulator, j: usize, on: bool) {
    let p = sim.slc_profile().clone();
    let f = p.field(Quantity::Switch).unwrap();
    let (mut ctx, index) = slc_ctx(sim, 0, j).await;
    let addr = p.absolute_address(f, index) as u16;
    within(ctx.write_multiple_registers(addr, &encode(f, f64::from(u8::from(on)))))
        .await
        .unwrap()
        .unwrap();
}

/// Lamp `j` is on circuit `j % 4 + 1`: 8 SLCs give two per circuit.
#[tokio::test]
async fn cut_circuit_reads_dead_past_a_closed_contactor() {
    for name in ["slc-a-unit", "slc-b-block"] {
        let sim = start(name, 1, 8, Framing::Tcp).await;
        let phase_b = rtu_read(&sim, Quantity::CurrentB).await;
        let share: f64 = [1, 5].map(|j| sim.slc_values(0, j).current).iter().sum();
        let power = rtu_read(&sim, Quantity::ActivePower).await;
        let watts: f64 = [1, 5].map(|j| sim.slc_values(0, j).power).iter().sum();
        sim.set_circuit_fault(
            0,
            2,
            CircuitFault {
                cut: Some(SupplyCut::default()),
                stuck: None,
            },
        );
        for j in [1, 5] {
            for q in [Quantity::Voltage, Quantity::Current, Quantity::Power] {
                assert_eq!(slc_read(&sim, j, q).await, 0.0, "{name} SLC {j} {q}");
            }
            assert_eq!(slc_read(&sim, j, Quantity::Switch).await, 1.0, "{name}");
            assert_eq!(slc_read(&sim, j, Quantity::FaultFlags).await, 0.0, "{name}");
        }
        for j in [0, 2, 3, 4, 6, 7] {
            assert!(
                slc_read(&sim, j, Quantity::Voltage).await > 200.0,
                "{name} SLC {j}"
            );
            assert!(
                slc_read(&sim, j, Quantity::Power).await > 50.0,
                "{name} SLC {j}"
            );
        }
        assert_eq!(
            rtu_read(&sim, Quantity::Contactor(2)).await,
            1.0,
            "still closed"
        );
        let dropped = phase_b - rtu_read(&sim, Quantity::CurrentB).await;
        assert!(
            (dropped - share).abs() < 0.02,
            "{name}: {dropped} A of {share} A"
        );
        let lost = power - rtu_read(&sim, Quantity::ActivePower).await;
        assert!((lost - watts).abs() < 0.01, "{name}: {lost} W of {watts} W");

        // answers = false: the circuit's SLCs are gone from the bus.
        sim.set_circuit_fault(
            0,
            3,
            CircuitFault {
                cut: Some(SupplyCut { answers: false }),
                stuck: None,
            },
        );
        let (mut ctx, index) = slc_ctx(&sim, 0, 2).await;
        let p = sim.slc_profile().clone();
        if name == "slc-a-unit" {
            let r = within(ctx.read_holding_registers(0, 11)).await.unwrap();
            assert_eq!(r, Err(ExceptionCode::GatewayTargetDevice));
        } else {
            let comm = p.field(Quantity::CommOk).unwrap();
            assert_eq!(read_field(&mut ctx, &p, comm, index).await, [0]);
        }
        assert!(!sim.slc_values(0, 6).comm_ok);
        assert!(sim.slc_values(0, 1).comm_ok, "a cut that answers");

        // Cleared, both circuits are back.
        sim.set_circuit_fault(0, 2, CircuitFault::default());
        sim.set_circuit_fault(0, 3, CircuitFault::default());
        for j in [1, 2, 5, 6] {
            assert!(
                slc_read(&sim, j, Quantity::Voltage).await > 200.0,
                "{name} SLC {j}"
            );
            assert!(sim.slc_values(0, j).comm_ok);
        }
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn stuck_contactor_ignores_writes_and_reads_its_real_position() {
    let sim = start("slc-a-unit", 1, 8, Framing::Tcp).await;
    let mut rtu = tcp(sim.endpoint_addrs()[0], 1).await;
    let welded = CircuitFault {
        cut: None,
        stuck: Some(StuckContactor { closed: true }),
    };
    sim.set_circuit_fault(0, 4, welded);
    assert_eq!(sim.circuit_fault(0, 4), welded);
    within(rtu.write_single_coil(3, false))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(within(rtu.read_coils(3, 1)).await.unwrap().unwrap(), [true]);
    for j in [3, 7] {
        assert!(slc_read(&sim, j, Quantity::Voltage).await > 200.0);
        assert!(slc_read(&sim, j, Quantity::Power).await > 50.0);
    }

    let jammed = CircuitFault {
        cut: None,
        stuck: Some(StuckContactor { closed: false }),
    };
    sim.set_circuit_fault(0, 1, jammed);
    assert_eq!(
        within(rtu.read_coils(0, 1)).await.unwrap().unwrap(),
        [false]
    );
    within(rtu.write_single_coil(0, true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        within(rtu.read_coils(0, 4)).await.unwrap().unwrap(),
        [false, true, true, true]
    );
    for j in [0, 4] {
        assert_eq!(slc_read(&sim, j, Quantity::Voltage).await, 0.0);
        assert_eq!(slc_read(&sim, j, Quantity::Power).await, 0.0);
    }

    // Freed, each contactor takes the position last written: 4 open, 1 closed.
    sim.set_circuit_fault(0, 4, CircuitFault::default());
    sim.set_circuit_fault(0, 1, CircuitFault::default());
    assert_eq!(
        within(rtu.read_coils(0, 4)).await.unwrap().unwrap(),
        [true, true, true, false]
    );
    assert_eq!(slc_read(&sim, 3, Quantity::Voltage).await, 0.0);
    assert!(slc_read(&sim, 0, Quantity::Voltage).await > 200.0);
    assert!(matches!(
        sim.try_set_circuit_fault(0, 5, welded),
        Err(SimError::NotFound(_))
    ));
    assert!(matches!(
        sim.try_set_circuit_fault(1, 1, welded),
        Err(SimError::NotFound(_))
    ));
    sim.shutdown().await;
}

#[tokio::test]
async fn power_scale_and_day_burner_over_the_wire() {
    for name in ["slc-a-unit", "slc-b-block"] {
        let sim = start(name, 1, 4, Framing::Tcp).await;
        let p = sim.slc_profile().clone();
        let power_field = p.field(Quantity::Power).unwrap().clone();
        // What the codec can carry of a power value.
        let lsb = power_field.scale;
        let full = slc_read(&sim, 1, Quantity::Power).await;
        for k in [0.5, 1.6] {
            sim.set_slc_fault(
                0,
                1,
                SlcFault {
                    power_scale: Some(k),
                    ..Default::default()
                },
            );
            let got = slc_read(&sim, 1, Quantity::Power).await;
            assert!(
                (got - full * k).abs() <= 2.0 * lsb,
                "{name} × {k}: {got} of {full}"
            );
            assert_eq!(sim.slc_fault(0, 1).power_scale, Some(k));
        }
        sim.set_slc_fault(0, 1, SlcFault::default());
        assert_eq!(slc_read(&sim, 1, Quantity::Power).await, full);

        // A day burner: the off write is accepted, the relay stays on.
        let day = SlcFault {
            stuck_on: true,
            ..Default::default()
        };
        sim.set_slc_fault(0, 2, day);
        write_switch(&sim, 2, false).await;
        assert_eq!(slc_read(&sim, 2, Quantity::Switch).await, 1.0, "{name}");
        assert!(slc_read(&sim, 2, Quantity::Power).await > 50.0, "{name}");
        assert_eq!(sim.slc_fault(0, 2), day);
        // It burns whenever its circuit (3) has supply.
        let mut rtu = tcp(sim.endpoint_addrs()[0], 1).await;
        within(rtu.write_single_coil(2, false))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(slc_read(&sim, 2, Quantity::Power).await, 0.0);
        within(rtu.write_single_coil(2, true))
            .await
            .unwrap()
            .unwrap();
        assert!(slc_read(&sim, 2, Quantity::Power).await > 50.0);
        // Repaired, the relay is where it was last written: off.
        sim.set_slc_fault(0, 2, SlcFault::default());
        assert_eq!(slc_read(&sim, 2, Quantity::Switch).await, 0.0, "{name}");
        assert_eq!(slc_read(&sim, 2, Quantity::Power).await, 0.0);

        // Stuck while off: it lights at full level.
        write_switch(&sim, 3, false).await;
        sim.set_slc_fault(0, 3, day);
        assert_eq!(slc_read(&sim, 3, Quantity::Switch).await, 1.0);
        assert_eq!(slc_read(&sim, 3, Quantity::DimLevel).await, 100.0);
        assert!(slc_read(&sim, 3, Quantity::Power).await > 50.0);

        let e = sim
            .try_set_slc_fault(
                0,
                0,
                SlcFault {
                    power_scale: Some(-1.0),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert!(matches!(e, SimError::Config(_)), "{e:?}");
        sim.shutdown().await;
    }
}
