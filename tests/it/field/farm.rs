//! A third-party Modbus device farm for the field tests: tokio-modbus's own
//! server (not our simulator), with units that never answer at all, as dead
//! nodes on an RS-485 bus behind a transparent converter behave.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_modbus::prelude::*;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};

/// Holding registers per unit (slc-a-unit's map: 0–11), and which units are dead.
#[derive(Debug, Default)]
pub struct Bus {
    pub registers: HashMap<u8, Vec<u16>>,
    pub dead: HashSet<u8>,
    /// Units that answer every request with this exception.
    pub exceptions: HashMap<u8, ExceptionCode>,
    /// Read requests received per unit, dead or alive.
    pub reads: HashMap<u8, u64>,
    /// Answer function 06 with "illegal function", as SLCs that accept only 16 do.
    pub refuse_single_writes: bool,
    pub single_writes_refused: u64,
}

impl Bus {
    /// Units `units`, each a lit lamp: switch on, 100 %, 230.0 V, 0.350 A, 75.0 W.
    pub fn lamps(units: impl IntoIterator<Item = u8>) -> Bus {
        let mut bus = Bus::default();
        for u in units {
            bus.registers
                .insert(u, vec![1, 100, 2300, 350, 750, 950, 0, 1234, 0, 0, 0, 0]);
        }
        bus
    }
}

#[derive(Clone)]
struct Service(Arc<Mutex<Bus>>);

impl tokio_modbus::server::Service for Service {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Self::Response, Self::Exception>>;

    fn call(&self, req: Self::Request) -> Self::Future {
        let mut bus = self.0.lock();
        let unit = req.slave;
        *bus.reads.entry(unit).or_default() += 1;
        if bus.dead.contains(&unit) {
            // No reply at all: not even an exception.
            return future::ready(Ok(None));
        }
        if let Some(code) = bus.exceptions.get(&unit) {
            return future::ready(Err(*code));
        }
        if bus.refuse_single_writes && matches!(req.request, Request::WriteSingleRegister(..)) {
            bus.single_writes_refused += 1;
            return future::ready(Err(ExceptionCode::IllegalFunction));
        }
        let Some(regs) = bus.registers.get_mut(&unit) else {
            return future::ready(Ok(None));
        };
        let out = match req.request {
            Request::ReadHoldingRegisters(addr, n) => {
                let (a, n) = (usize::from(addr), usize::from(n));
                match regs.get(a..a + n) {
                    Some(words) => Ok(Some(Response::ReadHoldingRegisters(words.to_vec()))),
                    None => Err(ExceptionCode::IllegalDataAddress),
                }
            }
            Request::WriteSingleRegister(addr, v) => match regs.get_mut(usize::from(addr)) {
                Some(r) => {
                    *r = v;
                    Ok(Some(Response::WriteSingleRegister(addr, v)))
                }
                None => Err(ExceptionCode::IllegalDataAddress),
            },
            Request::WriteMultipleRegisters(addr, words) => {
                let a = usize::from(addr);
                match regs.get_mut(a..a + words.len()) {
                    Some(r) => {
                        r.copy_from_slice(&words);
                        Ok(Some(Response::WriteMultipleRegisters(
                            addr,
                            words.len() as u16,
                        )))
                    }
                    None => Err(ExceptionCode::IllegalDataAddress),
                }
            }
            _ => Err(ExceptionCode::IllegalFunction),
        };
        future::ready(out)
    }
}

/// Serves `bus` as Modbus TCP on a free local port until the test ends.
pub async fn serve_tcp(bus: Arc<Mutex<Bus>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(listener);
    tokio::spawn(async move {
        let service = Service(bus);
        let on_connected = |stream, peer| {
            let service = service.clone();
            async move { accept_tcp_connection(stream, peer, move |_| Ok(Some(service.clone()))) }
        };
        let _ = server.serve(&on_connected, |_| {}).await;
    });
    addr
}

/// An inventory of one cabinet whose lamps' SLCs are `units` at `endpoint`.
pub fn write_inventory(dir: &std::path::Path, endpoint: &str, framing: &str, units: &[u8]) {
    write_cabinet(dir, endpoint, framing, None, units);
}

/// An inventory of one cabinet with its RTU (`RTU-1`, rtu-cabinet) at unit
/// `rtu_unit`, if given, and its lamps' SLCs at `units`, all behind
/// `endpoint`.
pub fn write_cabinet(
    dir: &std::path::Path,
    endpoint: &str,
    framing: &str,
    rtu_unit: Option<u8>,
    units: &[u8],
) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("districts.csv"), "id,name\nD01,District 1\n").unwrap();
    let rtu = match rtu_unit {
        Some(u) => format!("RTU-1,rtu-cabinet,{u}"),
        None => ",,".to_string(),
    };
    std::fs::write(
        dir.join("cabinets.csv"),
        format!(
            "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
             CAB-1,D01,Cabinet 1,,,1,{endpoint},{framing},{rtu}\n"
        ),
    )
    .unwrap();
    let mut lamps = String::from(
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n",
    );
    for u in units {
        lamps.push_str(&format!(
            "L-{u:03},CAB-1,1,,,80,SLC-{u:03},slc-a-unit,{u},\n"
        ));
    }
    std::fs::write(dir.join("lamps.csv"), lamps).unwrap();
}
