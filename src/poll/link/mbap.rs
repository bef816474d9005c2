//! Modbus TCP framing (the MBAP header: transaction id, protocol id 0, length,
//! unit id) for DTUs that pass Modbus TCP through.
//!
//! The length field frames every ADU, but a DTU may put heartbeat bytes in
//! front of a frame, and a reply to a request that timed out carries an older
//! transaction id: both must be skipped rather than taken for the reply, so
//! the reply is found by the same content rules as on RTU plus the
//! transaction id.

use super::{Candidate, Expect, Matcher};

/// The longest ADU: 7-byte header + 253-byte PDU.
pub(super) const MAX_FRAME: usize = 260;

/// The ADU for `pdu`.
pub(super) fn frame(transaction: u16, unit: u8, pdu: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(pdu.len() + 7);
    f.extend_from_slice(&transaction.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    // Fits: a PDU is at most 253 bytes (the request encoder bounds it).
    f.extend_from_slice(&((pdu.len() + 1) as u16).to_be_bytes());
    f.push(unit);
    f.extend_from_slice(pdu);
    f
}

/// The reply to the request with this transaction id.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    pub(super) transaction: u16,
    pub(super) unit: u8,
    pub(super) expect: Expect,
}

impl Matcher for Reply {
    fn candidate(&self, at: &[u8]) -> Candidate {
        let [t0, t1] = self.transaction.to_be_bytes();
        // Transaction id and protocol id, as far as they have arrived.
        let fixed = [t0, t1, 0, 0];
        if at.iter().zip(fixed).any(|(&got, want)| got != want) {
            return Candidate::No;
        }
        let Some(&[l0, l1]) = at.get(4..6) else {
            // The length's high byte is 0 for every frame we accept.
            return if at.get(4).is_some_and(|&b| b != 0) {
                Candidate::No
            } else {
                Candidate::Partial
            };
        };
        let length = usize::from(u16::from_be_bytes([l0, l1]));
        match at.get(6) {
            None => return Candidate::Partial,
            Some(&u) if u != self.unit => return Candidate::No,
            Some(_) => {}
        }
        let Some(pdu) = at.get(7..).filter(|p| !p.is_empty()) else {
            return Candidate::Partial;
        };
        match self.expect.shape(pdu) {
            Some(pdu_len) if pdu_len + 1 == length => {}
            _ => return Candidate::No,
        }
        if at.len() < 6 + length {
            Candidate::Partial
        } else {
            Candidate::Frame(6 + length)
        }
    }

    fn pdu<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        &frame[7..]
    }
}

/// The length of a complete, plausible ADU (protocol id 0, a length that can
/// hold a unit id and a function code) at the start of `at`, so that other
/// transactions are skipped whole.
pub(super) fn foreign_len(at: &[u8]) -> Option<usize> {
    let header = at.get(..6)?;
    if header[2..4] != [0, 0] {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
    if !(2..=254).contains(&length) || at.len() < 6 + length {
        return None;
    }
    Some(6 + length)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read2(transaction: u16) -> Reply {
        Reply {
            transaction,
            unit: 5,
            expect: Expect::Words {
                function: 0x04,
                bytes: 4,
            },
        }
    }

    #[test]
    fn the_frame_layout() {
        assert_eq!(
            frame(0x0102, 5, &[0x04, 0x00, 0x10, 0x00, 0x02]),
            [0x01, 0x02, 0, 0, 0, 6, 5, 0x04, 0x00, 0x10, 0x00, 0x02]
        );
    }

    #[test]
    fn the_reply_matches_and_its_prefixes_wait() {
        let f = frame(9, 5, &[0x04, 4, 0, 1, 0, 2]);
        assert_eq!(read2(9).candidate(&f), Candidate::Frame(13));
        for n in 0..f.len() {
            assert_eq!(read2(9).candidate(&f[..n]), Candidate::Partial, "{n}");
        }
        assert_eq!(read2(9).pdu(&f), &[0x04, 4, 0, 1, 0, 2]);
        let e = frame(9, 5, &[0x84, 0x02]);
        assert_eq!(read2(9).candidate(&e), Candidate::Frame(9));
    }

    #[test]
    fn other_transactions_units_and_shapes_are_no_reply() {
        let f = frame(8, 5, &[0x04, 4, 0, 1, 0, 2]);
        assert_eq!(read2(9).candidate(&f), Candidate::No);
        let f = frame(9, 6, &[0x04, 4, 0, 1, 0, 2]);
        assert_eq!(read2(9).candidate(&f), Candidate::No);
        let f = frame(9, 5, &[0x04, 2, 0, 1]);
        assert_eq!(read2(9).candidate(&f), Candidate::No);
        let mut f = frame(9, 5, &[0x04, 4, 0, 1, 0, 2]);
        f[2] = 1; // protocol id
        assert_eq!(read2(9).candidate(&f), Candidate::No);
        let mut f = frame(9, 5, &[0x04, 4, 0, 1, 0, 2]);
        f[5] = 9; // length disagrees with the byte count
        assert_eq!(read2(9).candidate(&f), Candidate::No);
        assert_eq!(read2(9).candidate(b"hb"), Candidate::No);
    }

    #[test]
    fn foreign_frames_are_measured() {
        let f = frame(8, 5, &[0x04, 4, 0, 1, 0, 2]);
        assert_eq!(foreign_len(&f), Some(13));
        assert_eq!(foreign_len(&f[..12]), None);
        assert_eq!(foreign_len(b"www.usr.cn"), None);
    }
}
