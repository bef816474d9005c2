//! Every endpoint and SLC fault is observable from a Modbus client and clears again.

mod common;

use common::*;
use lamp_profile::{encode, Quantity};
use lamp_sim::{EndpointFault, Framing, SlcFault};
use std::time::{Duration, Instant};
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
