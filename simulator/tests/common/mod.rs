//! Helpers shared by the integration tests: start a farm on ephemeral
//! ports, talk to it with tokio-modbus, wait for conditions with deadlines.
#![allow(dead_code)]

use lamp_profile::{Field, Profile, Table};
use lamp_sim::{Framing, SimConfig, Simulator};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_modbus::client::Context;
use tokio_modbus::prelude::*;

pub const DEADLINE: Duration = Duration::from_secs(5);

pub async fn start(profile: &str, endpoints: usize, slcs: usize, framing: Framing) -> Simulator {
    let sim = Simulator::start(SimConfig {
        endpoints,
        slcs_per_endpoint: slcs,
        slc_profile: profile.into(),
        framing,
        control_port: Some(0),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    sim.set_frozen(true);
    sim
}

pub async fn tcp(addr: SocketAddr, unit: u8) -> Context {
    within(tcp::connect_slave(addr, Slave(unit)))
        .await
        .expect("connects")
}

/// Fails the test if `fut` takes longer than the deadline.
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .expect("finished before the deadline")
}

/// Polls `cond` until it holds, failing the test at the deadline.
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `count` registers or bits of `table` from `addr`, bits as 0/1 words.
pub async fn read(
    ctx: &mut Context,
    table: Table,
    addr: u16,
    count: u16,
) -> tokio_modbus::Result<Vec<u16>> {
    let bits = |r: tokio_modbus::Result<Vec<bool>>| {
        r.map(|x| x.map(|v| v.into_iter().map(u16::from).collect()))
    };
    match table {
        Table::Coil => bits(ctx.read_coils(addr, count).await),
        Table::DiscreteInput => bits(ctx.read_discrete_inputs(addr, count).await),
        Table::Input => ctx.read_input_registers(addr, count).await,
        Table::Holding => ctx.read_holding_registers(addr, count).await,
    }
}

/// Reads one field of the device at block `index` (ignored for unit layout).
pub async fn read_field(
    ctx: &mut Context,
    profile: &Profile,
    field: &Field,
    index: u16,
) -> Vec<u16> {
    let addr = profile.absolute_address(field, index) as u16;
    within(read(ctx, field.table, addr, field.width()))
        .await
        .expect("transport ok")
        .unwrap_or_else(|e| panic!("{} answered exception {e:?}", field.quantity))
}

/// Connection to the unit that serves SLC `slc`.
pub async fn slc_ctx(sim: &Simulator, endpoint: usize, slc: usize) -> (Context, u16) {
    let (unit, index) = sim.slc_address(slc);
    (
        tcp(sim.endpoint_addrs()[endpoint], unit).await,
        index.unwrap_or(0),
    )
}

/// Minimal HTTP/1.1 client for the control interface: (status, JSON body).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = within(tokio::net::TcpStream::connect(addr)).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    within(s.read_to_string(&mut resp)).await.unwrap();
    let status = resp[9..12].parse().unwrap();
    let json = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(serde_json::Value::Null))
        .unwrap_or_default();
    (status, json)
}

/// A Modbus TCP request or reply frame around `pdu`.
pub fn mbap(tid: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = tid.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
    f.push(unit);
    f.extend_from_slice(pdu);
    f
}

/// CRC-16/MODBUS, sent low byte first.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &b in data {
        crc ^= u16::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// An RTU frame: unit, PDU, CRC.
pub fn rtu_frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = vec![unit];
    f.extend_from_slice(pdu);
    let crc = crc16(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// Whether `frame` ends in its own valid CRC.
pub fn crc_ok(frame: &[u8]) -> bool {
    frame.len() >= 4 && {
        let n = frame.len();
        crc16(&frame[..n - 2]).to_le_bytes() == [frame[n - 2], frame[n - 1]]
    }
}

/// Reads exactly `n` bytes, failing the test at the deadline.
pub async fn read_exact<R: tokio::io::AsyncRead + Unpin>(r: &mut R, n: usize) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0; n];
    within(r.read_exact(&mut buf)).await.expect("read");
    buf
}
