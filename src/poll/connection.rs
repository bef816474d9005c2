//! Opening an endpoint's link — a TCP socket with either framing, a serial
//! port, or the socket a DTU dialled in on — and sorting tokio-modbus errors
//! into what the poller must do about them.

use super::link::serial::SerialParams;
use super::link::{self, LinkFraming, LinkOptions};
use crate::dialin::DtuConn;
use crate::inventory::{Framing, Link, Parity, SerialLine};
use crate::state::FailReason;
use crate::topology::EndpointSpec;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_modbus::client::Context;
use tokio_modbus::Slave;

/// An open link and how far it can be trusted after a lost answer.
pub(super) struct Connection {
    pub(super) ctx: Context,
    /// Our RTU or DTU framing matches each answer to its request and throws
    /// away anything else, so a late answer cannot be mistaken for the next
    /// one: the link survives a timeout. tokio-modbus's Modbus TCP client
    /// cannot skip a stale answer (tokio-modbus #324), so after a timeout
    /// that link is opened afresh.
    pub(super) survives_timeout: bool,
    /// The DTU connection's generation, to tell the registry it was lost.
    pub(super) generation: Option<u64>,
}

/// Opens the endpoint's link. A dial-in endpoint cannot be opened from this
/// side: its DTU has not registered.
pub(super) async fn connect(
    spec: &EndpointSpec,
    limit: Duration,
) -> Result<Connection, FailReason> {
    match &spec.link {
        Link::Tcp { address } => {
            let stream = dial(address, limit).await?;
            Ok(match spec.framing {
                Framing::Tcp => Connection {
                    ctx: tokio_modbus::client::tcp::attach_slave(stream, Slave(1)),
                    survives_timeout: false,
                    generation: None,
                },
                Framing::Rtu => ours(Box::new(stream), LinkFraming::Rtu, spec.request_gap, None),
            })
        }
        Link::Serial(line) => {
            let stream =
                link::serial::open(&serial_params(line)).map_err(|e| FailReason::Connect {
                    detail: format!("{}: {e}", line.path),
                })?;
            Ok(ours(stream, LinkFraming::Rtu, spec.request_gap, None))
        }
        Link::DialIn { .. } => Err(FailReason::DtuAbsent),
    }
}

/// A DTU's registered socket as a link with the endpoint's framing.
pub(super) fn over_dtu(
    dtu: DtuConn,
    framing: Framing,
    request_gap: Duration,
    heartbeat: Option<Arc<[u8]>>,
) -> Connection {
    let framing = match framing {
        Framing::Tcp => LinkFraming::Mbap,
        Framing::Rtu => LinkFraming::Rtu,
    };
    let mut c = ours(Box::new(dtu.stream), framing, request_gap, heartbeat);
    c.generation = Some(dtu.generation);
    c
}

fn ours(
    stream: Box<dyn link::Stream>,
    framing: LinkFraming,
    request_gap: Duration,
    heartbeat: Option<Arc<[u8]>>,
) -> Connection {
    Connection {
        ctx: link::attach(
            stream,
            LinkOptions {
                framing,
                request_gap,
                heartbeat,
            },
        ),
        survives_timeout: true,
        generation: None,
    }
}

async fn dial(address: &str, limit: Duration) -> Result<TcpStream, FailReason> {
    let stream = match tokio::time::timeout(limit, TcpStream::connect(address)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            return Err(FailReason::Connect {
                detail: e.to_string(),
            })
        }
        Err(_) => {
            return Err(FailReason::Connect {
                detail: format!("no connection within {limit:?}"),
            })
        }
    };
    // Requests are small and answered one at a time: Nagle would only add delay.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

pub(super) fn serial_params(line: &SerialLine) -> SerialParams {
    SerialParams {
        path: line.path.clone(),
        baud: line.baud,
        parity: match line.parity {
            Parity::None => link::serial::Parity::None,
            Parity::Even => link::serial::Parity::Even,
            Parity::Odd => link::serial::Parity::Odd,
        },
        data_bits: line.data_bits,
        stop_bits: line.stop_bits,
    }
}

/// A transport-level failure: the connection cannot be trusted any more (a
/// late or garbled answer would be read as the answer to the next request).
pub(super) fn classify(e: tokio_modbus::Error) -> FailReason {
    match e {
        tokio_modbus::Error::Protocol(p) => FailReason::Protocol {
            detail: p.to_string(),
        },
        tokio_modbus::Error::Transport(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            FailReason::Protocol {
                detail: io.to_string(),
            }
        }
        tokio_modbus::Error::Transport(io) => FailReason::Transport {
            detail: io.to_string(),
        },
    }
}
