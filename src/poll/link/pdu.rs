//! Requests as PDU bytes, and what their answer must look like.

use std::fmt::Debug;
use std::io;
use tokio_modbus::{ExceptionCode, Request, Response};

/// Bytes that may be skipped in one call before it gives up: far more than a
/// busy 9600-baud bus carries in a poll timeout, far less than a stream that
/// is not speaking Modbus at all produces.
pub(super) const MAX_SKIPPED: usize = 4096;

/// What the reply to a request looks like, at the PDU level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// 01/02: function, byte count, packed bits.
    Bits { function: u8, bytes: u8 },
    /// 03/04: function, byte count, registers.
    Words { function: u8, bytes: u8 },
    /// 05/06/0F/10: function and two 16-bit fields repeating the request
    /// (address and value, or address and quantity).
    Echo { function: u8, a: u16, b: u16 },
}

impl Expect {
    pub(super) fn function(self) -> u8 {
        match self {
            Expect::Bits { function, .. }
            | Expect::Words { function, .. }
            | Expect::Echo { function, .. } => function,
        }
    }

    /// The length of the reply PDU that starts `pdu` (non-empty, possibly
    /// incomplete) if what has arrived agrees with this expectation: the
    /// function or its exception, and the byte count or echoed fields as far
    /// as they are there. `None`: this is not the reply.
    pub(super) fn shape(self, pdu: &[u8]) -> Option<usize> {
        let function = self.function();
        let first = *pdu.first()?;
        if first == function | 0x80 {
            return Some(2);
        }
        if first != function {
            return None;
        }
        match self {
            Expect::Bits { bytes, .. } | Expect::Words { bytes, .. } => match pdu.get(1) {
                Some(&count) if count != bytes => None,
                _ => Some(2 + usize::from(bytes)),
            },
            Expect::Echo { a, b, .. } => {
                let [a0, a1] = a.to_be_bytes();
                let [b0, b1] = b.to_be_bytes();
                let same = pdu[1..]
                    .iter()
                    .zip([a0, a1, b0, b1])
                    .all(|(&got, want)| got == want);
                same.then_some(5)
            }
        }
    }

    /// The answer in a complete reply PDU that [`Expect::shape`] accepted.
    pub(super) fn decode(self, pdu: &[u8]) -> Result<Response, ExceptionCode> {
        if pdu[0] & 0x80 != 0 {
            return Err(ExceptionCode::new(pdu[1]));
        }
        Ok(match self {
            Expect::Bits { function, .. } => {
                // Whole bytes, as tokio-modbus gives them: Reader truncates.
                let bits = pdu[2..]
                    .iter()
                    .flat_map(|byte| (0..8).map(move |i| byte & (1 << i) != 0))
                    .collect();
                if function == 0x01 {
                    Response::ReadCoils(bits)
                } else {
                    Response::ReadDiscreteInputs(bits)
                }
            }
            Expect::Words { function, .. } => {
                let words = pdu[2..]
                    .chunks_exact(2)
                    .map(|w| u16::from_be_bytes([w[0], w[1]]))
                    .collect();
                if function == 0x03 {
                    Response::ReadHoldingRegisters(words)
                } else {
                    Response::ReadInputRegisters(words)
                }
            }
            Expect::Echo { function, a, b } => echoed(function, a, b),
        })
    }
}

/// The response a write's echo stands for (also what a broadcast write,
/// which nobody answers, reports).
pub(super) fn echoed(function: u8, a: u16, b: u16) -> Response {
    match function {
        0x05 => Response::WriteSingleCoil(a, b == 0xFF00),
        0x06 => Response::WriteSingleRegister(a, b),
        0x0F => Response::WriteMultipleCoils(a, b),
        _ => Response::WriteMultipleRegisters(a, b),
    }
}

pub(super) fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

pub(super) fn quantity(n: usize, max: usize, what: &str) -> io::Result<u16> {
    if (1..=max).contains(&n) {
        // Fits: max is at most 2000.
        Ok(n as u16)
    } else {
        Err(invalid_input(format!("{n} {what}: 1 to {max} per request")))
    }
}

/// The request PDU and what its reply must look like. Only the functions the
/// gateway uses; anything else is refused before it reaches the bus.
pub(super) fn encode(request: &Request<'_>) -> io::Result<(Vec<u8>, Expect)> {
    let read = |function: u8, addr: u16, n: u16, bytes: u16| {
        let mut pdu = vec![function];
        pdu.extend_from_slice(&addr.to_be_bytes());
        pdu.extend_from_slice(&n.to_be_bytes());
        // Fits: n is bounded so that bytes ≤ 250.
        let bytes = bytes as u8;
        let expect = if function <= 0x02 {
            Expect::Bits { function, bytes }
        } else {
            Expect::Words { function, bytes }
        };
        (pdu, expect)
    };
    let echo = |function: u8, a: u16, b: u16| {
        let mut pdu = vec![function];
        pdu.extend_from_slice(&a.to_be_bytes());
        pdu.extend_from_slice(&b.to_be_bytes());
        (pdu, Expect::Echo { function, a, b })
    };
    Ok(match request {
        Request::ReadCoils(addr, n) | Request::ReadDiscreteInputs(addr, n) => {
            let function = request.function_code().value();
            let n = quantity(usize::from(*n), 2000, "bits")?;
            read(function, *addr, n, n.div_ceil(8))
        }
        Request::ReadHoldingRegisters(addr, n) | Request::ReadInputRegisters(addr, n) => {
            let function = request.function_code().value();
            let n = quantity(usize::from(*n), 125, "registers")?;
            read(function, *addr, n, 2 * n)
        }
        Request::WriteSingleCoil(addr, on) => echo(0x05, *addr, if *on { 0xFF00 } else { 0 }),
        Request::WriteSingleRegister(addr, word) => echo(0x06, *addr, *word),
        Request::WriteMultipleCoils(addr, coils) => {
            let n = quantity(coils.len(), 1968, "coils")?;
            let (mut pdu, expect) = echo(0x0F, *addr, n);
            let mut packed = vec![0u8; usize::from(n.div_ceil(8))];
            for (i, _) in coils.iter().enumerate().filter(|(_, &on)| on) {
                packed[i / 8] |= 1 << (i % 8);
            }
            // Fits: at most 246 bytes.
            pdu.push(packed.len() as u8);
            pdu.extend_from_slice(&packed);
            (pdu, expect)
        }
        Request::WriteMultipleRegisters(addr, words) => {
            let n = quantity(words.len(), 123, "registers")?;
            let (mut pdu, expect) = echo(0x10, *addr, n);
            // Fits: at most 246 bytes.
            pdu.push((2 * n) as u8);
            for w in words.iter() {
                pdu.extend_from_slice(&w.to_be_bytes());
            }
            (pdu, expect)
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "Modbus function {:#04x} is not supported by this link",
                    other.function_code().value()
                ),
            ))
        }
    })
}
