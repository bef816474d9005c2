//! Reads one new connection's registration (the rule in `mod.rs`; the judging
//! is `Registry::judge`).

use super::registry::{Judgement, Registry, Slot};
use super::{Refusal, MAX_ID_LEN, QUIET};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// Room for an id and what a DTU may send right after it in one segment.
const READ_ROOM: usize = 2 * MAX_ID_LEN;

/// Why a handshake ended without registering, and the bytes it had read.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) why: Refusal,
    pub(crate) bytes: Vec<u8>,
}

/// Reads until the bytes name a configured id or `deadline` passes. Bytes
/// read past the id are dropped with the buffer.
pub(crate) async fn register(
    stream: &mut TcpStream,
    registry: &Registry,
    deadline: Instant,
) -> Result<Arc<Slot>, Refused> {
    let mut buf = Vec::with_capacity(READ_ROOM);
    let mut chunk = [0u8; READ_ROOM];
    // The id to register if nothing more comes by then.
    let mut quiet: Option<(Arc<Slot>, Instant)> = None;
    loop {
        let until = quiet.as_ref().map_or(deadline, |(_, q)| (*q).min(deadline));
        let room = READ_ROOM - buf.len();
        let read = timeout_at(until, stream.read(&mut chunk[..room])).await;
        let n = match read {
            Err(_) => {
                return match quiet {
                    Some((slot, _)) => Ok(slot),
                    None => Err(Refused {
                        why: Refusal::Timeout,
                        bytes: buf,
                    }),
                }
            }
            Ok(Ok(0)) | Ok(Err(_)) => {
                return Err(Refused {
                    why: Refusal::Closed,
                    bytes: buf,
                })
            }
            Ok(Ok(n)) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        quiet = match registry.judge(&buf) {
            Judgement::Register(slot) => return Ok(slot),
            // No room left to wait in: what has come is the registration.
            Judgement::RegisterIfQuiet(slot) if buf.len() == READ_ROOM => return Ok(slot),
            Judgement::RegisterIfQuiet(slot) => Some((slot, Instant::now() + QUIET)),
            Judgement::ReadOn => None,
            Judgement::Refuse(why) => return Err(Refused { why, bytes: buf }),
        };
    }
}
