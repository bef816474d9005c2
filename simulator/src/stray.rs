//! Other traffic on an RS-485 bus, for fault `stray_frames`: what the
//! gateway hears on the line before the reply it waits for.
//!
//! Strays take turns, one before each affected reply: another master's read
//! request to a unit this farm does not use, that unit's reply, a broadcast
//! time write (unit 0, function 16) from a time-control module, and — with
//! `noise` — one to four random bytes. Every stray except noise is a
//! well-formed RTU frame with a valid CRC.

use crate::frame::crc16;
use lamp_profile::Layout;

/// Which stray comes before reply number `turn` of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ForeignRequest,
    ForeignReply,
    Broadcast,
    Noise,
}

/// Unit ids no device of the endpoint answers to, for the foreign frames.
fn foreign_units(layout: Layout, slcs: usize) -> std::ops::RangeInclusive<u8> {
    let first = match layout {
        Layout::Unit => slcs + 2,
        Layout::Block { .. } => 2,
    };
    u8::try_from(first).unwrap_or(u8::MAX).max(2)..=247
}

fn push_crc(out: &mut Vec<u8>, start: usize) {
    let crc = crc16(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Appends stray number `turn` to `out`.
pub(crate) fn append(
    turn: u64,
    noise: bool,
    layout: Layout,
    slcs: usize,
    rng: &mut fastrand::Rng,
    out: &mut Vec<u8>,
) {
    let kinds: &[Kind] = if noise {
        &[
            Kind::ForeignRequest,
            Kind::Noise,
            Kind::ForeignReply,
            Kind::Broadcast,
        ]
    } else {
        &[Kind::ForeignRequest, Kind::ForeignReply, Kind::Broadcast]
    };
    let units = foreign_units(layout, slcs);
    let mut kind = kinds[(turn % kinds.len() as u64) as usize];
    if units.is_empty() && matches!(kind, Kind::ForeignRequest | Kind::ForeignReply) {
        kind = Kind::Broadcast;
    }
    let start = out.len();
    match kind {
        Kind::ForeignRequest => {
            let unit = rng.u8(units);
            let fc = if rng.bool() { 3 } else { 4 };
            out.extend_from_slice(&[unit, fc]);
            out.extend_from_slice(&rng.u16(0..2000).to_be_bytes());
            out.extend_from_slice(&rng.u16(1..=8).to_be_bytes());
            push_crc(out, start);
        }
        Kind::ForeignReply => {
            let qty = rng.u8(1..=8);
            out.extend_from_slice(&[rng.u8(units), 3, 2 * qty]);
            out.extend((0..2 * qty).map(|_| rng.u8(..)));
            push_crc(out, start);
        }
        Kind::Broadcast => {
            // A time-control module sets hh, mm, ss everywhere at once.
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
            out.extend_from_slice(&[0, 16, 0x00, 0x10, 0x00, 0x03, 6]);
            for v in [h, m, s] {
                out.extend_from_slice(&(v as u16).to_be_bytes());
            }
            push_crc(out, start);
        }
        Kind::Noise => {
            let n = rng.usize(1..=4);
            out.extend((0..n).map(|_| rng.u8(..)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc_ok(f: &[u8]) -> bool {
        let n = f.len();
        crc16(&f[..n - 2]).to_le_bytes() == [f[n - 2], f[n - 1]]
    }

    #[test]
    fn strays_are_valid_frames_from_units_nobody_uses() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut seen = Vec::new();
        for turn in 0..6 {
            let mut out = Vec::new();
            append(turn, false, Layout::Unit, 10, &mut rng, &mut out);
            assert!(crc_ok(&out), "{out:02X?}");
            assert!(out[0] == 0 || (12..=247).contains(&out[0]), "{out:02X?}");
            seen.push((out[0] == 0, out[1], out.len()));
        }
        assert!(seen.contains(&(true, 16, 15)), "a broadcast time write");
        assert!(seen.iter().any(|s| !s.0 && s.2 == 8), "a foreign request");
        // With every unit id taken, only broadcasts are left.
        let mut out = Vec::new();
        append(0, false, Layout::Unit, 246, &mut rng, &mut out);
        assert_eq!(out[..2], [0, 16]);
        let mut out = Vec::new();
        append(1, true, Layout::Unit, 3, &mut rng, &mut out);
        assert!((1..=4).contains(&out.len()), "noise");
    }
}
