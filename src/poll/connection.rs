//! Opening a Modbus connection with either framing, and sorting tokio-modbus
//! errors into what the poller must do about them.

use crate::inventory::Framing;
use crate::state::FailReason;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_modbus::client::Context;
use tokio_modbus::Slave;

pub(super) async fn connect(
    address: &str,
    framing: Framing,
    limit: Duration,
) -> Result<Context, FailReason> {
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
    Ok(match framing {
        Framing::Tcp => tokio_modbus::client::tcp::attach_slave(stream, Slave(1)),
        Framing::RtuOverTcp => tokio_modbus::client::rtu::attach_slave(stream, Slave(1)),
    })
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
