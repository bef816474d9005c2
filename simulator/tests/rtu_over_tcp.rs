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

/// Sends `req` and reads until the buffer ends in `reply`; returns what came
/// before it.
async fn before_reply(s: &mut tokio::net::TcpStream, req: &[u8], reply: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(req).await.unwrap();
    let mut buf = Vec::new();
    while !buf.ends_with(reply) {
        let mut chunk = [0u8; 256];
        let n = within(s.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed after {buf:02X?}");
        buf.extend_from_slice(&chunk[..n]);
        assert!(buf.len() < 4096, "no reply in {buf:02X?}");
    }
    buf.truncate(buf.len() - reply.len());
    buf
}

/// Splits `bytes` into RTU frames: a read request (8 bytes), a read reply
/// (5 + byte count) or a multiple write (9 + byte count), whichever ends in
/// a valid CRC.
fn frames(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let at = |i: usize| bytes.get(i).map_or(0, |b| usize::from(*b));
        let n = [8, 5 + at(2), 9 + at(6)]
            .into_iter()
            .find(|&n| n <= bytes.len() && crc_ok(&bytes[..n]))
            .unwrap_or_else(|| panic!("no valid frame in {bytes:02X?}"));
        out.push(bytes[..n].to_vec());
        bytes = &bytes[n..];
    }
    out
}

#[tokio::test]
async fn stray_frames_precede_correct_replies() {
    use tokio::io::AsyncWriteExt;
    let sim = start("slc-a-unit", 1, 3, Framing::RtuOverTcp).await;
    let mut s = within(tokio::net::TcpStream::connect(sim.endpoint_addrs()[0]))
        .await
        .unwrap();
    let req = rtu_frame(2, &[3, 0, 0, 0, 11]);
    // The clean reply first (time is frozen: every later one is the same).
    s.write_all(&req).await.unwrap();
    let clean = read_exact(&mut s, 1 + 2 + 22 + 2).await;
    assert!(crc_ok(&clean) && clean[..3] == [2, 3, 22]);

    sim.set_endpoint_fault(
        0,
        Some(EndpointFault::StrayFrames {
            every: 1,
            noise: false,
        }),
    );
    let (mut broadcasts, mut foreign) = (0, 0);
    for _ in 0..6 {
        let strays = before_reply(&mut s, &req, &clean).await;
        let strays = frames(&strays);
        assert_eq!(strays.len(), 1, "{strays:02X?}");
        let f = &strays[0];
        match f[0] {
            0 => {
                assert_eq!(f[1], 16, "a broadcast write: {f:02X?}");
                broadcasts += 1;
            }
            u => {
                assert!(u > 4, "from/to a unit nobody here uses: {f:02X?}");
                foreign += 1;
            }
        }
    }
    assert!(broadcasts >= 1 && foreign >= 2, "{broadcasts} {foreign}");

    // Every second reply, with line noise among the strays: the replies are
    // still whole and correct.
    sim.set_endpoint_fault(
        0,
        Some(EndpointFault::StrayFrames {
            every: 2,
            noise: true,
        }),
    );
    let mut with = 0;
    for _ in 0..8 {
        if !before_reply(&mut s, &req, &clean).await.is_empty() {
            with += 1;
        }
    }
    assert_eq!(with, 4);
    sim.set_endpoint_fault(0, None);
    assert!(before_reply(&mut s, &req, &clean).await.is_empty());
    sim.shutdown().await;

    // Modbus TCP has no shared line: refused, over the control API too.
    let sim = start("slc-a-unit", 1, 3, Framing::Tcp).await;
    let stray = EndpointFault::StrayFrames {
        every: 1,
        noise: true,
    };
    let e = sim.try_set_endpoint_fault(0, Some(stray)).unwrap_err();
    assert!(matches!(e, lamp_sim::SimError::Unsupported(_)), "{e}");
    assert_eq!(sim.endpoint_fault(0), None);
    let (st, e) = http(
        sim.control_addr().unwrap(),
        "PUT",
        "/endpoints/0/fault",
        Some(r#"{"kind":"stray_frames"}"#),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("unsupported"))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn stray_frames_over_the_control_interface() {
    let sim = start("slc-b-block", 1, 2, Framing::RtuOverTcp).await;
    let c = sim.control_addr().unwrap();
    let (st, _) = http(
        c,
        "PUT",
        "/endpoints/0/fault",
        Some(r#"{"kind":"stray_frames"}"#),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        sim.endpoint_fault(0),
        Some(EndpointFault::StrayFrames {
            every: 1,
            noise: true
        })
    );
    let (st, e) = http(
        c,
        "PUT",
        "/endpoints/0/fault",
        Some(r#"{"kind":"stray_frames","every":0}"#),
    )
    .await;
    assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid")));
    let (st, _) = http(
        c,
        "PUT",
        "/endpoints/0/fault",
        Some(r#"{"kind":"stray_frames","every":4,"noise":false}"#),
    )
    .await;
    assert_eq!(st, 200);
    let (_, list) = http(c, "GET", "/endpoints", None).await;
    assert_eq!(list[0]["fault"]["every"], 4);
    sim.shutdown().await;
}
