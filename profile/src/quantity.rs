//! The vocabulary of quantities a profile may map. Field names in profile
//! files are these names, so a typo is an error rather than a silent zero.

use crate::DeviceKind;
use std::fmt;
use std::str::FromStr;

/// Highest circuit number an RTU profile may switch.
pub const MAX_CIRCUITS: u8 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quantity {
    // Single-lamp controller (单灯控制器).
    /// Relay state, 1 = on (read-write).
    Switch,
    /// Dim level in percent, 0–100 (read-write).
    DimLevel,
    Voltage,
    Current,
    Power,
    PowerFactor,
    Energy,
    BurningHours,
    /// Bit 0 lamp failure, bit 1 over-voltage, bit 2 under-voltage, bit 3 relay fault.
    FaultFlags,
    /// Concentrator's view of the node: 1 while the SLC answers on the power line.
    CommOk,
    // Cabinet RTU (远程控制终端).
    /// Contactor of circuit n (回路), 1-based (read-write).
    Contactor(u8),
    VoltageA,
    VoltageB,
    VoltageC,
    CurrentA,
    CurrentB,
    CurrentC,
    ActivePower,
    CabinetEnergy,
    DoorAlarm,
    LeakageAlarm,
}

const SIMPLE: &[(&str, Quantity)] = &[
    ("switch", Quantity::Switch),
    ("dim_level", Quantity::DimLevel),
    ("voltage", Quantity::Voltage),
    ("current", Quantity::Current),
    ("power", Quantity::Power),
    ("power_factor", Quantity::PowerFactor),
    ("energy", Quantity::Energy),
    ("burning_hours", Quantity::BurningHours),
    ("fault_flags", Quantity::FaultFlags),
    ("comm_ok", Quantity::CommOk),
    ("voltage_a", Quantity::VoltageA),
    ("voltage_b", Quantity::VoltageB),
    ("voltage_c", Quantity::VoltageC),
    ("current_a", Quantity::CurrentA),
    ("current_b", Quantity::CurrentB),
    ("current_c", Quantity::CurrentC),
    ("active_power", Quantity::ActivePower),
    ("cabinet_energy", Quantity::CabinetEnergy),
    ("door_alarm", Quantity::DoorAlarm),
    ("leakage_alarm", Quantity::LeakageAlarm),
];

impl Quantity {
    pub fn device_kind(self) -> DeviceKind {
        use Quantity::*;
        match self {
            Switch | DimLevel | Voltage | Current | Power | PowerFactor | Energy | BurningHours
            | FaultFlags | CommOk => DeviceKind::Slc,
            _ => DeviceKind::Rtu,
        }
    }
    /// Quantities an operator commands; profiles must map them read-write.
    pub fn writable(self) -> bool {
        matches!(
            self,
            Quantity::Switch | Quantity::DimLevel | Quantity::Contactor(_)
        )
    }
}

impl FromStr for Quantity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((_, q)) = SIMPLE.iter().find(|(n, _)| *n == s) {
            return Ok(*q);
        }
        if let Some(n) = s.strip_prefix("contactor_") {
            return match n.parse::<u8>() {
                Ok(n) if (1..=MAX_CIRCUITS).contains(&n) => Ok(Quantity::Contactor(n)),
                _ => Err(format!("`{s}`: circuit number must be 1..={MAX_CIRCUITS}")),
            };
        }
        Err(format!("unknown quantity `{s}`"))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Quantity::Contactor(n) => write!(f, "contactor_{n}"),
            q => {
                let name = SIMPLE.iter().find(|(_, x)| x == q).map(|(n, _)| *n);
                f.write_str(name.unwrap_or("?"))
            }
        }
    }
}
