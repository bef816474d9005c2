//! Decoded values of one poll of one device, and why a poll failed.

use lamp_profile::Quantity;
use serde::Serialize;

/// Bit 0 of an SLC's fault flags: the lamp has failed (灯具故障).
pub const LAMP_FAILURE_BIT: u16 = 1;

/// What a single-lamp controller reported.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SlcReading {
    pub on: bool,
    /// Percent, 0–100.
    pub dim_level: f64,
    pub voltage: Option<f64>,
    pub current: Option<f64>,
    pub power: Option<f64>,
    pub power_factor: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub burning_hours: Option<f64>,
    pub fault_flags: u16,
}

impl SlcReading {
    pub fn lamp_failure(&self) -> bool {
        self.fault_flags & LAMP_FAILURE_BIT != 0
    }
}

/// What a cabinet RTU reported.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RtuReading {
    /// Contactor state of circuits 1..=n (true = closed, circuit energised).
    pub contactors: Vec<bool>,
    pub voltage: [Option<f64>; 3],
    pub current: [Option<f64>; 3],
    pub active_power: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub door_alarm: bool,
    pub leakage_alarm: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Reading {
    Slc(SlcReading),
    Rtu(RtuReading),
}

fn get(values: &[(Quantity, f64)], q: Quantity) -> Option<f64> {
    values.iter().find(|(k, _)| *k == q).map(|(_, v)| *v)
}

impl Reading {
    pub fn slc(values: &[(Quantity, f64)]) -> Reading {
        Reading::Slc(SlcReading {
            on: get(values, Quantity::Switch).is_some_and(|v| v != 0.0),
            dim_level: get(values, Quantity::DimLevel).unwrap_or(0.0),
            voltage: get(values, Quantity::Voltage),
            current: get(values, Quantity::Current),
            power: get(values, Quantity::Power),
            power_factor: get(values, Quantity::PowerFactor),
            energy_kwh: get(values, Quantity::Energy),
            burning_hours: get(values, Quantity::BurningHours),
            fault_flags: get(values, Quantity::FaultFlags).map_or(0, |v| v as u16),
        })
    }

    pub fn rtu(values: &[(Quantity, f64)], circuits: u8) -> Reading {
        let flag = |q| get(values, q).is_some_and(|v| v != 0.0);
        Reading::Rtu(RtuReading {
            contactors: (1..=circuits)
                .map(|n| flag(Quantity::Contactor(n)))
                .collect(),
            voltage: [
                get(values, Quantity::VoltageA),
                get(values, Quantity::VoltageB),
                get(values, Quantity::VoltageC),
            ],
            current: [
                get(values, Quantity::CurrentA),
                get(values, Quantity::CurrentB),
                get(values, Quantity::CurrentC),
            ],
            active_power: get(values, Quantity::ActivePower),
            energy_kwh: get(values, Quantity::CabinetEnergy),
            door_alarm: flag(Quantity::DoorAlarm),
            leakage_alarm: flag(Quantity::LeakageAlarm),
        })
    }
}

/// Why a poll of a device failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailReason {
    /// Could not open the TCP connection to the endpoint.
    Connect { detail: String },
    /// The request got no answer within the request timeout.
    Timeout,
    /// The connection broke (reset, closed, I/O error).
    Transport { detail: String },
    /// An answer that does not belong to the request: garbled frame, wrong
    /// transaction id, wrong function code.
    Protocol { detail: String },
    /// The device answered with a Modbus exception code.
    Exception { code: u8 },
    /// The concentrator reports that this SLC does not answer on its line.
    NodeSilent,
    /// Due but not sent: the endpoint failed and its poller waits out the
    /// reconnect backoff. Counts as a failed poll, so a device goes offline
    /// on time, not only after the next attempt. Such polls are reported
    /// with the failure that made the endpoint back off when it is known;
    /// this is for when it is not.
    Backoff,
    /// Due but not sent: the unit kept timing out while its neighbours
    /// answered and is probed at a slower cadence of its own.
    Deferred,
    /// Due but not sent: the endpoint's DTU has not dialled in.
    DtuAbsent,
}

impl FailReason {
    /// Low-cardinality label for counters.
    pub fn kind(&self) -> &'static str {
        match self {
            FailReason::Connect { .. } => "connect",
            FailReason::Timeout => "timeout",
            FailReason::Transport { .. } => "transport",
            FailReason::Protocol { .. } => "protocol",
            FailReason::Exception { .. } => "exception",
            FailReason::NodeSilent => "node_silent",
            FailReason::Backoff => "backoff",
            FailReason::Deferred => "deferred",
            FailReason::DtuAbsent => "dtu_absent",
        }
    }
}
