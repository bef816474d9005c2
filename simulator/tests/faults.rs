//! Every endpoint and SLC fault is observable from a Modbus client and clears again.

mod common;

use common::*;
use lamp_profile::{encode, Quantity};
use lamp_sim::{EndpointFault, Framing, RtuFault, SimError, SlcFault};
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
