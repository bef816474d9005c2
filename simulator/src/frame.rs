//! Modbus framing, written by hand rather than with tokio-modbus's server:
//! that server can only emit well-formed replies, and the simulator must also
//! send garbled frames, wrong transaction ids and bad CRCs on purpose.
//!
//! Two framings share one PDU layer: Modbus TCP (MBAP header) and RTU
//! (unit, PDU, CRC-16/MODBUS, no header, so the request length has to be
//! derived from the function code), tunnelled over TCP or on a serial line.
//!
//! A listening RTU-over-TCP endpoint closes the connection on a bad CRC. A
//! serial line or a dial-in link is one stream for its whole life, so there
//! the request framer resynchronises instead ([`parse_stream`]): a bad CRC
//! skips one byte, bytes in front of a whole valid request are skipped, and
//! bytes that form no frame are dropped once the line goes quiet.

use lamp_profile::Table;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    #[default]
    Tcp,
    RtuOverTcp,
}

impl FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Framing::Tcp),
            "rtu-over-tcp" | "rtu_over_tcp" | "rtu" => Ok(Framing::RtuOverTcp),
            _ => Err(format!("unknown framing `{s}` (tcp, rtu-over-tcp or rtu)")),
        }
    }
}

impl fmt::Display for Framing {
    /// The spelling used in inventory files and on the command line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Tcp => "tcp",
            Framing::RtuOverTcp => "rtu-over-tcp",
        })
    }
}

/// Modbus exception codes the simulator emits.
pub mod exception {
    pub const ILLEGAL_FUNCTION: u8 = 0x01;
    pub const ILLEGAL_ADDRESS: u8 = 0x02;
    pub const ILLEGAL_VALUE: u8 = 0x03;
    pub const TARGET_FAILED: u8 = 0x0B;
}

/// One request frame with its PDU (function code first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub tid: u16,
    pub unit: u8,
    pub pdu: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parse {
    Incomplete,
    /// A frame and the number of buffered bytes it used.
    Frame(Frame, usize),
    Malformed(&'static str),
    /// Resynchronising: this many leading bytes are no request; skip them.
    Garbage(usize),
}

/// Largest TCP PDU (function code + 252 data bytes).
const MAX_PDU: usize = 253;
/// Largest RTU frame (unit, PDU, CRC).
const MAX_RTU_FRAME: usize = 256;

pub(crate) fn parse(framing: Framing, buf: &[u8]) -> Parse {
    match framing {
        Framing::Tcp => parse_tcp(buf),
        Framing::RtuOverTcp => parse_rtu(buf),
    }
}

/// Like [`parse`], but an RTU stream never gives up: it skips what is not
/// a request ([`Parse::Garbage`]) instead of calling it malformed.
pub(crate) fn parse_stream(framing: Framing, buf: &[u8]) -> Parse {
    match framing {
        Framing::Tcp => parse_tcp(buf),
        Framing::RtuOverTcp => parse_rtu_resync(buf),
    }
}

/// Length of the RTU request starting `buf`, from its function code: `None`
/// until enough bytes tell, `Some(None)` for a function of no known length.
fn rtu_request_len(buf: &[u8]) -> Option<Option<usize>> {
    match *buf.get(1)? {
        1..=6 => Some(Some(8)),
        15 | 16 => Some(Some(9 + usize::from(*buf.get(6)?))),
        _ => Some(None),
    }
}

fn crc_ends(frame: &[u8]) -> bool {
    let n = frame.len();
    n >= 4 && crc16(&frame[..n - 2]).to_le_bytes() == [frame[n - 2], frame[n - 1]]
}

fn rtu_frame(buf: &[u8], total: usize) -> Parse {
    Parse::Frame(
        Frame {
            tid: 0,
            unit: buf[0],
            pdu: buf[1..total - 2].to_vec(),
        },
        total,
    )
}

fn parse_rtu_resync(buf: &[u8]) -> Parse {
    let at_start = match rtu_request_len(buf) {
        None => Parse::Incomplete,
        Some(Some(total)) if buf.len() >= total => {
            return if crc_ends(&buf[..total]) {
                rtu_frame(buf, total)
            } else {
                Parse::Garbage(1)
            };
        }
        Some(Some(_)) => Parse::Incomplete,
        // An unknown function: the shortest prefix that ends in its own CRC
        // is the frame (the PDU layer answers "illegal function").
        Some(None) => match (4..=buf.len().min(MAX_RTU_FRAME)).find(|&n| crc_ends(&buf[..n])) {
            Some(n) => return rtu_frame(buf, n),
            None if buf.len() >= MAX_RTU_FRAME => return Parse::Garbage(1),
            None => Parse::Incomplete,
        },
    };
    // Nothing whole at the start. If a whole valid request follows, what
    // precedes it is noise or a stray; otherwise wait for more (or for the
    // line to go quiet, when the caller drops a byte).
    for k in 1..buf.len() {
        if let Some(Some(total)) = rtu_request_len(&buf[k..]) {
            if buf.len() - k >= total && crc_ends(&buf[k..k + total]) {
                return Parse::Garbage(k);
            }
        }
    }
    at_start
}

fn parse_tcp(buf: &[u8]) -> Parse {
    if buf.len() < 7 {
        return Parse::Incomplete;
    }
    let tid = u16::from_be_bytes([buf[0], buf[1]]);
    let proto = u16::from_be_bytes([buf[2], buf[3]]);
    let len = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    if proto != 0 {
        return Parse::Malformed("protocol id is not 0");
    }
    if !(2..=MAX_PDU + 1).contains(&len) {
        return Parse::Malformed("MBAP length out of range");
    }
    let total = 6 + len;
    if buf.len() < total {
        return Parse::Incomplete;
    }
    Parse::Frame(
        Frame {
            tid,
            unit: buf[6],
            pdu: buf[7..total].to_vec(),
        },
        total,
    )
}

fn parse_rtu(buf: &[u8]) -> Parse {
    if buf.len() < 2 {
        return Parse::Incomplete;
    }
    let total = match buf[1] {
        1..=6 => 8,
        15 | 16 => {
            if buf.len() < 7 {
                return Parse::Incomplete;
            }
            9 + usize::from(buf[6])
        }
        // An unknown function has no derivable length: take what arrived and
        // let the PDU layer answer "illegal function", as a device would after
        // the inter-frame silence.
        _ => {
            return Parse::Frame(
                Frame {
                    tid: 0,
                    unit: buf[0],
                    pdu: vec![buf[1]],
                },
                buf.len(),
            )
        }
    };
    if buf.len() < total {
        return Parse::Incomplete;
    }
    let crc = crc16(&buf[..total - 2]);
    if crc.to_le_bytes() != [buf[total - 2], buf[total - 1]] {
        return Parse::Malformed("CRC mismatch");
    }
    Parse::Frame(
        Frame {
            tid: 0,
            unit: buf[0],
            pdu: buf[1..total - 2].to_vec(),
        },
        total,
    )
}

/// Appends a reply frame around `pdu`.
pub(crate) fn encode(framing: Framing, tid: u16, unit: u8, pdu: &[u8], out: &mut Vec<u8>) {
    match framing {
        Framing::Tcp => {
            out.extend_from_slice(&tid.to_be_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(pdu.len() as u16 + 1).to_be_bytes());
            out.push(unit);
            out.extend_from_slice(pdu);
        }
        Framing::RtuOverTcp => {
            let start = out.len();
            out.push(unit);
            out.extend_from_slice(pdu);
            let crc = crc16(&out[start..]);
            out.extend_from_slice(&crc.to_le_bytes());
        }
    }
}

/// CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), sent low byte first.
pub(crate) fn crc16(data: &[u8]) -> u16 {
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

/// A decoded request PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Read { table: Table, addr: u16, qty: u16 },
    WriteBits { addr: u16, values: Vec<bool> },
    WriteRegisters { addr: u16, values: Vec<u16> },
}

/// Why a PDU could not be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PduError {
    Exception(u8),
    /// Truncated or inconsistent beyond what an exception describes.
    Malformed,
}

fn be(pdu: &[u8], at: usize) -> Result<u16, PduError> {
    match pdu.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(PduError::Malformed),
    }
}

pub(crate) fn decode_request(pdu: &[u8]) -> Result<Request, PduError> {
    use exception::*;
    let fc = *pdu.first().ok_or(PduError::Malformed)?;
    let (addr, second) = match fc {
        1..=6 | 15 | 16 => (be(pdu, 1)?, be(pdu, 3)?),
        _ => return Err(PduError::Exception(ILLEGAL_FUNCTION)),
    };
    let check_range = |qty: u16, max: u16| {
        if qty == 0 || qty > max {
            Err(PduError::Exception(ILLEGAL_VALUE))
        } else if u32::from(addr) + u32::from(qty) > 0x1_0000 {
            Err(PduError::Exception(ILLEGAL_ADDRESS))
        } else {
            Ok(())
        }
    };
    match fc {
        1..=4 => {
            let table = [
                Table::Coil,
                Table::DiscreteInput,
                Table::Holding,
                Table::Input,
            ][usize::from(fc - 1)];
            check_range(second, table.max_read())?;
            Ok(Request::Read {
                table,
                addr,
                qty: second,
            })
        }
        5 => match second {
            0xFF00 => Ok(Request::WriteBits {
                addr,
                values: vec![true],
            }),
            0x0000 => Ok(Request::WriteBits {
                addr,
                values: vec![false],
            }),
            _ => Err(PduError::Exception(ILLEGAL_VALUE)),
        },
        6 => Ok(Request::WriteRegisters {
            addr,
            values: vec![second],
        }),
        _ => {
            let count = usize::from(*pdu.get(5).ok_or(PduError::Malformed)?);
            let data = pdu.get(6..6 + count).ok_or(PduError::Malformed)?;
            if fc == 15 {
                check_range(second, 1968)?;
                if count != usize::from(second).div_ceil(8) {
                    return Err(PduError::Exception(ILLEGAL_VALUE));
                }
                let values = (0..usize::from(second))
                    .map(|i| data[i / 8] >> (i % 8) & 1 == 1)
                    .collect();
                Ok(Request::WriteBits { addr, values })
            } else {
                check_range(second, 123)?;
                if count != usize::from(second) * 2 {
                    return Err(PduError::Exception(ILLEGAL_VALUE));
                }
                let values = data
                    .chunks_exact(2)
                    .map(|w| u16::from_be_bytes([w[0], w[1]]))
                    .collect();
                Ok(Request::WriteRegisters { addr, values })
            }
        }
    }
}

/// The reply PDU to a served request: read data, or the write echo.
pub(crate) fn reply_pdu(fc: u8, request_pdu: &[u8], read: &[u16], bits: bool) -> Vec<u8> {
    match fc {
        1..=4 => {
            let mut out = vec![fc, 0];
            if bits {
                let mut bytes = vec![0u8; read.len().div_ceil(8)];
                for (i, v) in read.iter().enumerate() {
                    if *v != 0 {
                        bytes[i / 8] |= 1 << (i % 8);
                    }
                }
                out.extend_from_slice(&bytes);
            } else {
                for w in read {
                    out.extend_from_slice(&w.to_be_bytes());
                }
            }
            out[1] = (out.len() - 2) as u8;
            out
        }
        // FC5/6 echo the request; FC15/16 echo address and quantity.
        5 | 6 => request_pdu[..5].to_vec(),
        _ => request_pdu[..5].to_vec(),
    }
}

pub(crate) fn exception_pdu(fc: u8, code: u8) -> Vec<u8> {
    vec![fc | 0x80, code]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_reference() {
        // Read holding 0..2 of unit 1: the textbook frame 01 03 00 00 00 02 C4 0B.
        assert_eq!(crc16(&[1, 3, 0, 0, 0, 2]).to_le_bytes(), [0xC4, 0x0B]);
    }

    #[test]
    fn tcp_handles_partial_and_multiple_frames() {
        let one = [0, 7, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2];
        assert_eq!(parse(Framing::Tcp, &one[..9]), Parse::Incomplete);
        let mut two = one.to_vec();
        two.extend_from_slice(&one);
        match parse(Framing::Tcp, &two) {
            Parse::Frame(f, used) => {
                assert_eq!((f.tid, f.unit, used), (7, 1, 12));
                assert_eq!(f.pdu, vec![3, 0, 0, 0, 2]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(Framing::Tcp, &[0, 1, 0, 9, 0, 6, 1, 3]),
            Parse::Malformed(_)
        ));
    }

    #[test]
    fn rtu_length_follows_function_code() {
        let mut f = vec![2, 16, 0, 1, 0, 2, 4, 0, 1, 0, 2];
        let crc = crc16(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(parse(Framing::RtuOverTcp, &f[..8]), Parse::Incomplete);
        match parse(Framing::RtuOverTcp, &f) {
            Parse::Frame(fr, used) => {
                assert_eq!(used, f.len());
                assert_eq!(
                    decode_request(&fr.pdu),
                    Ok(Request::WriteRegisters {
                        addr: 1,
                        values: vec![1, 2]
                    })
                );
            }
            other => panic!("{other:?}"),
        }
        f[3] ^= 1;
        assert!(matches!(
            parse(Framing::RtuOverTcp, &f),
            Parse::Malformed(_)
        ));
    }

    #[test]
    fn rtu_stream_resynchronises_after_garbage() {
        let req = {
            let mut f = vec![1, 3, 0, 0, 0, 2];
            let crc = crc16(&f);
            f.extend_from_slice(&crc.to_le_bytes());
            f
        };
        let stream = |b: &[u8]| parse_stream(Framing::RtuOverTcp, b);
        // Noise in front of a whole request: skipped in one go.
        let mut buf = vec![0x37, 0x99, 0x00];
        buf.extend_from_slice(&req);
        assert_eq!(stream(&buf), Parse::Garbage(3));
        assert!(matches!(stream(&buf[3..]), Parse::Frame(f, 8) if f.unit == 1));
        // A bad CRC skips one byte; a torn frame waits for the rest.
        let mut bad = req.clone();
        bad[7] ^= 1;
        assert_eq!(stream(&bad), Parse::Garbage(1));
        assert_eq!(stream(&req[..5]), Parse::Incomplete);
        // Noise with no known function and nothing behind it: wait (the
        // caller drops bytes when the line goes quiet).
        assert_eq!(stream(&[0x11, 0x99, 0x42]), Parse::Incomplete);
        // An unknown function with a valid CRC is a frame.
        let mut odd = vec![2, 0x2B, 0x0E, 1, 0];
        let crc = crc16(&odd);
        odd.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(stream(&odd), Parse::Frame(f, 7) if f.pdu == [0x2B, 0x0E, 1, 0]));
        // The framer of a listening socket still calls a bad CRC malformed.
        assert!(matches!(
            parse(Framing::RtuOverTcp, &bad),
            Parse::Malformed(_)
        ));
    }

    #[test]
    fn request_limits_raise_exceptions() {
        assert_eq!(
            decode_request(&[3, 0, 0, 0, 126]),
            Err(PduError::Exception(exception::ILLEGAL_VALUE))
        );
        assert_eq!(
            decode_request(&[3, 0xFF, 0xFF, 0, 2]),
            Err(PduError::Exception(exception::ILLEGAL_ADDRESS))
        );
        assert_eq!(
            decode_request(&[43, 14, 1]),
            Err(PduError::Exception(exception::ILLEGAL_FUNCTION))
        );
        assert_eq!(decode_request(&[3, 0]), Err(PduError::Malformed));
    }
}
