//! Faults a test or scenario can inject, per endpoint, per RTU, per circuit
//! and per SLC.

use serde::{Deserialize, Serialize};

/// Misbehaviour of a whole endpoint (the TCP port of one cabinet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndpointFault {
    /// Stop listening: connects fail with ECONNREFUSED, open connections close.
    /// Clearing the fault binds the same port again.
    Refuse,
    /// Read requests but never reply.
    Silent,
    /// Reply correctly, `ms` milliseconds late.
    Delay { ms: u64 },
    /// Answer every request with this Modbus exception code.
    Exception { code: u8 },
    /// Close the connection as soon as a request arrives.
    Drop,
    /// Reply with random bytes of a plausible length.
    Garble,
    /// Reply with a mismatching transaction id (RTU framing: a wrong CRC).
    WrongTid,
    /// RTU framing only (serial, rtu-over-tcp, RTU dial-in): the line carries
    /// other traffic. Before every `every`-th reply (default 1: all) the
    /// endpoint writes one stray — another master's request to a unit the
    /// farm does not use, that unit's reply, a broadcast time write to
    /// unit 0, and with `noise` (default true) one to four random bytes, in
    /// turn; all but noise are well-formed frames with a valid CRC — then
    /// the correct reply. Modbus TCP has no shared line (every frame has its
    /// own header and transaction id): setting it there is refused.
    StrayFrames {
        #[serde(default = "one")]
        every: u32,
        #[serde(default = "yes")]
        noise: bool,
    },
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// Misbehaviour of one single-lamp controller behind a live endpoint.
///
/// `PartialEq` only: `power_scale` is a float.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlcFault {
    /// The SLC stops answering on the power line / RS-485 bus. Unit layout:
    /// its unit id answers exception 0x0B; block layout: its block reads
    /// `comm_ok = 0` with the values it had when it went quiet.
    pub silent: bool,
    /// Unit layout only: every request to the SLC's unit gets this exception.
    pub exception: Option<u8>,
    /// Lamp failure: fault flag bit 0, no power.
    pub failed: bool,
    /// Unit layout only: a dead node behind a transparent converter. Requests
    /// to the SLC's unit get nothing back at all (no reply, no exception);
    /// the connection stays open and other units answer as usual. Takes
    /// precedence over `silent` and `exception`. Block layout refuses it (the
    /// concentrator answers for its SLCs: use `silent`, which reads
    /// `comm_ok = 0`).
    pub no_answer: bool,
    /// A driver or meter that is off: measured power (and current) are the
    /// model's × this factor (finite, 0 to 10). The model's power at level
    /// L is the lamp's rated power × L / 100 within ±1.5 %.
    pub power_scale: Option<f64>,
    /// A day burner: the relay stays on whatever is written (the write is
    /// accepted, the read-back shows on), so the lamp burns whenever its
    /// circuit has supply: at the level it had, or at 100 % if the relay
    /// was off when it stuck (dim writes still take effect). Cleared, the
    /// relay follows the last write.
    pub stuck_on: bool,
}

impl SlcFault {
    /// Whether it has more than lamp failure and a stuck relay (which live
    /// in the compact per-SLC state): such SLCs get an entry in the
    /// cabinet's fault map.
    pub(crate) fn is_extra(&self) -> bool {
        self.silent || self.exception.is_some() || self.no_answer || self.power_scale.is_some()
    }
}

/// Misbehaviour of one circuit (1-based) of a cabinet. The default value
/// clears it; both parts can hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitFault {
    /// The supply is cut downstream of the cabinet (cable fault, theft).
    pub cut: Option<SupplyCut>,
    /// The contactor's contacts do not move.
    pub stuck: Option<StuckContactor>,
}

/// A circuit without supply past the cabinet: its SLCs measure 0 V, 0 A,
/// 0 W (relay and dim level as commanded, no lamp-failure flag); the RTU
/// still reports the contactor closed and the cabinet's phase current and
/// power lose the circuit's share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupplyCut {
    /// false: the circuit's SLCs stop answering as `silent` does
    /// (power-line SLCs die without supply). Default true.
    #[serde(default = "yes")]
    pub answers: bool,
}

impl Default for SupplyCut {
    fn default() -> Self {
        SupplyCut { answers: true }
    }
}

/// Contacts welded closed or jammed open: a write to the contactor is
/// accepted, but the RTU reads the real position (an auxiliary contact), so
/// the read-back shows `closed`, and the circuit's SLCs see supply per the
/// real position. Cleared, the contactor follows the last write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StuckContactor {
    pub closed: bool,
}

/// Misbehaviour of the cabinet RTU (unit 1) behind a live endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtuFault {
    /// Unit 1 sends nothing at all: requests to it get no reply and no
    /// exception, the connection stays open and the SLC units (unit layout)
    /// answer as usual. With a block-layout profile unit 1 is also the
    /// concentrator, so its SLC blocks go unanswered too.
    pub no_answer: bool,
}
