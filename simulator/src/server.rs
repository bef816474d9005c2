//! Endpoint listeners and connections. One task per endpoint owns its
//! listener and a `JoinSet` of its connections, so dropping the set (fault
//! `refuse`, shutdown) closes them all; one task per connection serves
//! requests in order from a buffer that may hold partial or several frames.

use crate::fault::EndpointFault;
use crate::frame::{self, exception_pdu, Framing, Parse, PduError};
use crate::Shared;
use bytes::{Buf, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub(crate) async fn serve_endpoint(shared: Arc<Shared>, index: usize, first: TcpListener) {
    let endpoint = &shared.endpoints[index];
    let mut fault = endpoint.fault.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut listener = Some(first);
    loop {
        if *shutdown.borrow() {
            return;
        }
        if matches!(*fault.borrow_and_update(), Some(EndpointFault::Refuse)) {
            listener = None;
            tokio::select! {
                r = fault.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match TcpListener::bind(endpoint.addr).await {
                Ok(l) => l,
                Err(e) => {
                    // Someone took the port while we refused; keep trying.
                    tracing::warn!(addr = %endpoint.addr, error = %e, "rebind failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
            },
        };
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                r = l.accept() => match r {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        conns.spawn(connection(shared.clone(), index, stream));
                    }
                    Err(e) => {
                        // Typically out of file descriptors: back off instead of spinning.
                        tracing::warn!(addr = %endpoint.addr, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                r = fault.changed() => {
                    if r.is_err() {
                        return;
                    }
                    if matches!(*fault.borrow(), Some(EndpointFault::Refuse)) {
                        break; // drops the listener and every connection
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn connection(shared: Arc<Shared>, index: usize, mut stream: TcpStream) {
    let framing = shared.framing;
    let mut buf = BytesMut::with_capacity(512);
    let mut out = Vec::with_capacity(512);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let (frame, used) = match frame::parse(framing, &buf) {
                Parse::Incomplete => break,
                Parse::Malformed(why) => {
                    tracing::debug!(endpoint = index, why, "malformed request, closing");
                    return;
                }
                Parse::Frame(f, used) => (f, used),
            };
            buf.advance(used);
            let fault = *shared.endpoints[index].fault.borrow();
            let fc = frame.pdu[0];
            let pdu = match fault {
                Some(EndpointFault::Silent) => continue,
                Some(EndpointFault::Drop | EndpointFault::Refuse) => return,
                Some(EndpointFault::Exception { code }) => exception_pdu(fc, code),
                _ => match reply(&shared, index, framing, frame.unit, &frame.pdu) {
                    Outcome::Reply(pdu) => pdu,
                    Outcome::Nothing => continue,
                    Outcome::Close => return,
                },
            };
            if let Some(EndpointFault::Delay { ms }) = fault {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            out.clear();
            match fault {
                Some(EndpointFault::WrongTid) => {
                    frame::encode(framing, frame.tid ^ 0x5A5A, frame.unit, &pdu, &mut out);
                    if framing == Framing::RtuOverTcp {
                        let n = out.len();
                        out[n - 1] ^= 0xFF;
                    }
                }
                Some(EndpointFault::Garble) => {
                    frame::encode(framing, frame.tid, frame.unit, &pdu, &mut out);
                    out.iter_mut().for_each(|b| *b = fastrand::u8(..));
                    if framing == Framing::Tcp {
                        // Garbage inside a consistent MBAP length with a bad
                        // protocol id: clients see a broken frame at once
                        // instead of waiting on a random length.
                        let len = (out.len() - 6) as u16;
                        out[4..6].copy_from_slice(&len.to_be_bytes());
                        out[2] |= 0x80;
                    }
                }
                _ => frame::encode(framing, frame.tid, frame.unit, &pdu, &mut out),
            }
            if stream.write_all(&out).await.is_err() {
                return;
            }
            shared.requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a request gets back from the device farm.
enum Outcome {
    Reply(Vec<u8>),
    /// The addressed unit is a dead node: nothing goes back.
    Nothing,
    /// Malformed beyond an exception: the connection is closed.
    Close,
}

/// The reply to a request on endpoint `index`.
fn reply(shared: &Shared, index: usize, framing: Framing, unit: u8, pdu: &[u8]) -> Outcome {
    let fc = pdu[0];
    // Modbus TCP clients often address "the device itself" as 0 or 255.
    let unit = match (framing, unit) {
        (Framing::Tcp, 0 | 255) => 1,
        _ => unit,
    };
    let decoded = frame::decode_request(pdu);
    let is_write = matches!(&decoded, Ok(r) if !matches!(r, frame::Request::Read { .. }));
    let (mut cab, now) = shared.cabinet(index, is_write);
    // A dead node answers nothing, not even a malformed request.
    if shared.profiles.no_answer(&cab, unit) {
        return Outcome::Nothing;
    }
    let request = match decoded {
        Ok(r) => r,
        Err(PduError::Exception(code)) => return Outcome::Reply(exception_pdu(fc, code)),
        Err(PduError::Malformed) => return Outcome::Close,
    };
    Outcome::Reply(match shared.profiles.serve(&mut cab, unit, &request, now) {
        Ok(words) => {
            let bits = matches!(
                request,
                frame::Request::Read { table, .. } if table.is_bit()
            );
            frame::reply_pdu(fc, pdu, &words, bits)
        }
        Err(code) => exception_pdu(fc, code),
    })
}
