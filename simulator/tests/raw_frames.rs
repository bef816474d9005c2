//! Framing edge cases tokio-modbus cannot produce: several requests in one
//! write, split frames, unknown functions, malformed headers.

mod common;

use common::*;
use lamp_sim::Framing;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within(s.read_exact(&mut buf)).await.unwrap();
    buf
}

#[tokio::test]
async fn pipelined_split_and_odd_requests() {
    let sim = start("slc-a-unit", 1, 2, Framing::Tcp).await;
    let mut s = within(TcpStream::connect(sim.endpoint_addrs()[0]))
        .await
        .unwrap();

    // Two requests in one write, the second split across two writes.
    let a = mbap(1, 2, &[3, 0, 0, 0, 2]);
    let b = mbap(2, 1, &[1, 0, 0, 0, 4]);
    let mut first = a.clone();
    first.extend_from_slice(&b[..4]);
    s.write_all(&first).await.unwrap();
    s.write_all(&b[4..]).await.unwrap();
    let ra = read_n(&mut s, 6 + 1 + 2 + 4).await;
    assert_eq!(&ra[..2], &[0, 1]);
    assert_eq!(&ra[7..9], &[3, 4]);
    let rb = read_n(&mut s, 6 + 1 + 2 + 1).await;
    assert_eq!(&rb[..2], &[0, 2]);
    assert_eq!(&rb[7..], &[1, 1, 0b1111], "four closed contactors");

    // Unknown function: exception 1, connection kept.
    s.write_all(&mbap(3, 2, &[0x2B, 0x0E, 1, 0])).await.unwrap();
    assert_eq!(read_n(&mut s, 9).await[7..], [0xAB, 1]);
    // Quantity zero: exception 3.
    s.write_all(&mbap(4, 2, &[3, 0, 0, 0, 0])).await.unwrap();
    assert_eq!(read_n(&mut s, 9).await[7..], [0x83, 3]);

    // A bad protocol id is not Modbus: the connection closes.
    s.write_all(&[0, 5, 0, 7, 0, 6, 1, 3, 0, 0, 0, 1])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let n = within(s.read_to_end(&mut rest)).await.unwrap_or(0);
    assert_eq!(n, 0, "closed without a reply");
    assert!(sim.request_count() >= 4);
    sim.shutdown().await;
}
