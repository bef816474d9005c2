//! Modbus RTU framing: unit address, PDU, CRC-16/MODBUS (low byte first).
//!
//! RTU has no length field and no transaction id, so a reply is recognised by
//! its content alone: the unit we asked, the function we asked (or its
//! exception), the length that request implies, and a good CRC. Everything
//! else on the bus — other units' replies, other masters' requests, broadcasts,
//! DTU heartbeats, line noise — must be told apart from it by the same rules.

use super::{Candidate, Expect, Matcher};
use crc::{Crc, CRC_16_MODBUS};

/// The longest RTU frame the standard allows (unit + 253-byte PDU + CRC).
pub(super) const MAX_FRAME: usize = 256;

static CRC: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// CRC-16/MODBUS of `bytes` (poly 0x8005 reflected, init 0xFFFF).
pub(super) fn crc16(bytes: &[u8]) -> u16 {
    CRC.checksum(bytes)
}

/// The frame for `pdu` addressed to `unit`: the CRC goes low byte first.
pub(super) fn frame(unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(pdu.len() + 3);
    f.push(unit);
    f.extend_from_slice(pdu);
    let crc = crc16(&f);
    f.extend_from_slice(&crc.to_le_bytes());
    f
}

/// Whether `frame` (address through CRC) carries a correct CRC.
fn crc_ok(frame: &[u8]) -> bool {
    let n = frame.len();
    n >= 4 && crc16(&frame[..n - 2]) == u16::from_le_bytes([frame[n - 2], frame[n - 1]])
}

/// The reply to one request to one unit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    pub(super) unit: u8,
    pub(super) expect: Expect,
}

impl Matcher for Reply {
    fn candidate(&self, at: &[u8]) -> Candidate {
        match at.first() {
            None => return Candidate::Partial,
            Some(&u) if u != self.unit => return Candidate::No,
            Some(_) => {}
        }
        let Some(pdu) = at.get(1..).filter(|p| !p.is_empty()) else {
            return Candidate::Partial;
        };
        let Some(pdu_len) = self.expect.shape(pdu) else {
            return Candidate::No;
        };
        let len = 1 + pdu_len + 2;
        match at.get(..len) {
            None => Candidate::Partial,
            Some(f) if crc_ok(f) => Candidate::Frame(len),
            // Right address, function and length but a bad CRC: a damaged
            // reply, or (for a request of another master that happens to
            // share the prefix) no reply at all. Either way not this one.
            Some(_) => Candidate::No,
        }
    }

    fn pdu<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[1..frame.len() - 2]
    }
}

/// The length of a complete, CRC-valid RTU frame of any unit and kind at the
/// start of `at`, so that bytes that are not our reply can be skipped (and
/// counted) a whole frame at a time. Tries the lengths the common functions
/// have: exception (5); fixed-size requests 01–06 and write echoes 05/06/0F/10
/// (8); read replies (byte count at [2]); 0F/10 requests (byte count at [6]).
pub(super) fn foreign_len(at: &[u8]) -> Option<usize> {
    let function = *at.get(1)?;
    let mut lengths = [0usize; 4];
    if function & 0x80 != 0 {
        lengths[0] = 5;
    } else {
        lengths[0] = 8;
        lengths[1] = at.get(2).map_or(0, |&n| 5 + usize::from(n));
        lengths[2] = at.get(6).map_or(0, |&n| 9 + usize::from(n));
    }
    lengths
        .into_iter()
        .filter(|&n| n >= 4 && n <= at.len())
        .find(|&n| crc_ok(&at[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_vectors() {
        // The read of ten holding registers every Modbus tutorial shows.
        assert_eq!(
            frame(0x01, &[0x03, 0x00, 0x00, 0x00, 0x0A]),
            [0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD]
        );
        assert_eq!(
            frame(0x01, &[0x03, 0x00, 0x00, 0x00, 0x01]),
            [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A]
        );
        // The example of the Modbus over serial line specification.
        assert_eq!(
            frame(0x11, &[0x03, 0x00, 0x6B, 0x00, 0x03]),
            [0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87]
        );
        // The check value of the CRC-16/MODBUS catalogue entry.
        assert_eq!(crc16(b"123456789"), 0x4B37);
    }

    fn read10() -> Reply {
        Reply {
            unit: 1,
            expect: Expect::Words {
                function: 0x03,
                bytes: 20,
            },
        }
    }

    fn reply10() -> Vec<u8> {
        let mut pdu = vec![0x03, 20];
        pdu.extend((0..20u8).map(|i| i * 3));
        frame(1, &pdu)
    }

    #[test]
    fn the_reply_matches_whole_and_its_prefixes_wait() {
        let f = reply10();
        assert_eq!(read10().candidate(&f), Candidate::Frame(25));
        for n in 0..f.len() {
            assert_eq!(read10().candidate(&f[..n]), Candidate::Partial, "{n}");
        }
        assert_eq!(read10().pdu(&f), &f[1..23]);
    }

    #[test]
    fn an_exception_matches() {
        let f = frame(1, &[0x83, 0x02]);
        assert_eq!(read10().candidate(&f), Candidate::Frame(5));
    }

    #[test]
    fn another_masters_request_to_the_same_unit_is_no_reply() {
        // 01 03 00 00 00 0A C5 CD: byte [2] is 00, not the byte count 20.
        let req = frame(1, &[0x03, 0x00, 0x00, 0x00, 0x0A]);
        assert_eq!(read10().candidate(&req), Candidate::No);
        // A request whose address high byte equals the byte count looks like
        // a reply prefix until the CRC over 25 bytes disagrees.
        let mut req = frame(1, &[0x03, 20, 0x00, 0x00, 0x0A]);
        assert_eq!(read10().candidate(&req), Candidate::Partial);
        req.extend(reply10());
        assert_eq!(read10().candidate(&req), Candidate::No);
        assert_eq!(read10().candidate(&req[8..]), Candidate::Frame(25));
    }

    #[test]
    fn other_units_wrong_counts_and_bad_crcs_are_no_reply() {
        let mut other = reply10();
        other[0] = 2;
        assert_eq!(read10().candidate(&other), Candidate::No);
        let short = frame(1, &[0x03, 2, 0, 1]);
        assert_eq!(read10().candidate(&short), Candidate::No);
        let mut bad = reply10();
        bad[5] ^= 0x10;
        assert_eq!(read10().candidate(&bad), Candidate::No);
        let wrong_fn = frame(1, &[0x04, 20]);
        assert_eq!(read10().candidate(&wrong_fn), Candidate::No);
    }

    #[test]
    fn write_echoes_must_repeat_the_request() {
        let m = Reply {
            unit: 7,
            expect: Expect::Echo {
                function: 0x06,
                a: 0x0010,
                b: 0x00FF,
            },
        };
        let echo = frame(7, &[0x06, 0x00, 0x10, 0x00, 0xFF]);
        assert_eq!(m.candidate(&echo), Candidate::Frame(8));
        let other = frame(7, &[0x06, 0x00, 0x11, 0x00, 0xFF]);
        assert_eq!(m.candidate(&other), Candidate::No);
    }

    #[test]
    fn foreign_frames_are_measured() {
        let req = frame(1, &[0x03, 0x00, 0x00, 0x00, 0x0A]);
        assert_eq!(foreign_len(&req), Some(8));
        assert_eq!(foreign_len(&reply10()), Some(25));
        assert_eq!(foreign_len(&frame(9, &[0x81, 0x02])), Some(5));
        let broadcast = frame(0, &[0x10, 0x00, 0x00, 0x00, 0x02, 0x04, 1, 2, 3, 4]);
        assert_eq!(foreign_len(&broadcast), Some(13));
        assert_eq!(foreign_len(b"hb"), None);
        assert_eq!(foreign_len(&req[..7]), None);
    }
}
