//! RTU-over-TCP framing end to end with tokio-modbus's RTU client on a TcpStream.

mod common;

use common::*;
use lamp_profile::{encode, Quantity};
use lamp_sim::{EndpointFault, Framing};
use std::time::Duration;
use tokio_modbus::prelude::*;

async fn rtu(sim: &lamp_sim::Simulator, unit: u8) -> tokio_modbus::client::Context {
    let stream = within(tokio::net::TcpStream::connect(sim.endpoint_addrs()[0]))
        .await
        .unwrap();
    rtu::attach_slave(stream, Slave(unit))
}

#[tokio::test]
async fn rtu_framing_reads_and_writes() {
    for name in ["slc-a-unit", "slc-b-block"] {
        let sim = start(name, 1, 4, Framing::RtuOverTcp).await;
        let p = sim.slc_profile().clone();
        let (unit, index) = sim.slc_address(3);
        let mut ctx = rtu(&sim, unit).await;
        let index = index.unwrap_or(0);
        let v = sim.slc_values(0, 3);
        for f in &p.fields {
            let got = read_field(&mut ctx, &p, f, index).await;
            assert_eq!(
                got,
                encode(f, v.get(f.quantity).unwrap()),
                "{name} {}",
                f.quantity
            );
        }
        let dim = p.field(Quantity::DimLevel).unwrap();
        let addr = p.absolute_address(dim, index) as u16;
        within(ctx.write_multiple_registers(addr, &encode(dim, 30.0)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sim.slc_values(0, 3).dim_level, 30.0);

        let mut cab = rtu(&sim, 1).await;
        within(cab.write_single_coil(3, false))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(sim.slc_values(0, 3).power, 0.0, "SLC 3 is on circuit 4");
        let r = within(cab.read_holding_registers(5000, 1)).await.unwrap();
        assert_eq!(r, Err(ExceptionCode::IllegalDataAddress));
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn rtu_faults_break_the_frame() {
    let sim = start("slc-a-unit", 1, 2, Framing::RtuOverTcp).await;
    for fault in [EndpointFault::WrongTid, EndpointFault::Garble] {
        sim.set_endpoint_fault(0, Some(fault));
        let mut ctx = rtu(&sim, 2).await;
        // A bad CRC is an error or, for a client that resynchronises, no answer.
        let r = tokio::time::timeout(Duration::from_millis(500), ctx.read_holding_registers(0, 2))
            .await;
        assert!(!matches!(r, Ok(Ok(Ok(_)))), "{fault:?} gave {r:?}");
    }
    sim.set_endpoint_fault(0, Some(EndpointFault::Exception { code: 0x0A }));
    let mut ctx = rtu(&sim, 2).await;
    let r = within(ctx.read_holding_registers(0, 2)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::GatewayPathUnavailable));
    sim.set_endpoint_fault(0, None);
    let mut ctx = rtu(&sim, 2).await;
    within(ctx.read_holding_registers(0, 2))
        .await
        .unwrap()
        .unwrap();
    sim.shutdown().await;
}
