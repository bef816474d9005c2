//! What an alarm is: its kind, severity, lifecycle state and the record the
//! store, MQTT and webhooks receive at every change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What is wrong. The table in README ("Alarms") says when each is raised.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// The SLC's lamp-failure flag (灯具故障).
    LampFailure,
    /// Should be lit, SLC online, but draws no more than its lit threshold (夜间不亮).
    LampOutAtNight,
    /// Should be off but burns (白天亮灯).
    DayBurner,
    /// Dimmed, but power not within tolerance of rated power × level.
    DimmingFailure,
    /// At full level, power off rated power by more than the tolerance.
    PowerAbnormal,
    RelayFault,
    OverVoltage,
    UnderVoltage,
    /// A circuit that should be energised has no supply at its lamps (断电/盗缆): one per circuit.
    SupplyLoss,
    /// A contactor that does not follow its command, or reports open while
    /// its circuit is energised.
    ContactorFailure,
    /// The RTU's leakage alarm (漏电): an emergency.
    Leakage,
    /// The RTU's door alarm (箱门打开).
    DoorOpen,
    /// A device offline per the online rule (通信中断).
    CommsLost,
    /// Nothing on an endpoint answers: one alarm for the endpoint; its
    /// devices' `comms_lost` are suppressed under it.
    EndpointDown,
}

/// What an alarm is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Lamp,
    Rtu,
    Circuit,
    Cabinet,
    Endpoint,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Lamp => "lamp",
            DeviceKind::Rtu => "rtu",
            DeviceKind::Circuit => "circuit",
            DeviceKind::Cabinet => "cabinet",
            DeviceKind::Endpoint => "endpoint",
        }
    }
}

/// The facility an alarm of a fault kind makes not intact (设施完好率).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facility {
    Lamp,
    Circuit,
    Cabinet,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 14] = [
        AlarmKind::LampFailure,
        AlarmKind::LampOutAtNight,
        AlarmKind::DayBurner,
        AlarmKind::DimmingFailure,
        AlarmKind::PowerAbnormal,
        AlarmKind::RelayFault,
        AlarmKind::OverVoltage,
        AlarmKind::UnderVoltage,
        AlarmKind::SupplyLoss,
        AlarmKind::ContactorFailure,
        AlarmKind::Leakage,
        AlarmKind::DoorOpen,
        AlarmKind::CommsLost,
        AlarmKind::EndpointDown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::LampFailure => "lamp_failure",
            AlarmKind::LampOutAtNight => "lamp_out_at_night",
            AlarmKind::DayBurner => "day_burner",
            AlarmKind::DimmingFailure => "dimming_failure",
            AlarmKind::PowerAbnormal => "power_abnormal",
            AlarmKind::RelayFault => "relay_fault",
            AlarmKind::OverVoltage => "over_voltage",
            AlarmKind::UnderVoltage => "under_voltage",
            AlarmKind::SupplyLoss => "supply_loss",
            AlarmKind::ContactorFailure => "contactor_failure",
            AlarmKind::Leakage => "leakage",
            AlarmKind::DoorOpen => "door_open",
            AlarmKind::CommsLost => "comms_lost",
            AlarmKind::EndpointDown => "endpoint_down",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The facility whose intactness this kind breaks, or `None` for kinds
    /// that are no fault of a facility: losing communication says nothing of
    /// the lamp (the online rate counts it), and an open door is an event of
    /// the cabinet's security, not a broken part.
    pub fn facility(self) -> Option<Facility> {
        match self {
            AlarmKind::LampFailure
            | AlarmKind::LampOutAtNight
            | AlarmKind::DayBurner
            | AlarmKind::DimmingFailure
            | AlarmKind::PowerAbnormal
            | AlarmKind::RelayFault
            | AlarmKind::OverVoltage
            | AlarmKind::UnderVoltage => Some(Facility::Lamp),
            AlarmKind::SupplyLoss | AlarmKind::ContactorFailure => Some(Facility::Circuit),
            AlarmKind::Leakage => Some(Facility::Cabinet),
            AlarmKind::DoorOpen | AlarmKind::CommsLost | AlarmKind::EndpointDown => None,
        }
    }

    /// The severity a kind has unless the settings say otherwise.
    pub fn default_severity(self) -> Severity {
        match self {
            AlarmKind::Leakage => Severity::Emergency,
            AlarmKind::SupplyLoss
            | AlarmKind::ContactorFailure
            | AlarmKind::EndpointDown
            | AlarmKind::DayBurner => Severity::Serious,
            _ => Severity::Ordinary,
        }
    }
}

impl std::fmt::Display for AlarmKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How urgent the repair is; each has a repair deadline in the settings.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 紧急: e.g. leakage, repaired within 1 h.
    Emergency,
    /// 重大: within 3 days.
    Serious,
    /// 一般: within 24 h.
    Ordinary,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Emergency, Severity::Serious, Severity::Ordinary];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Emergency => "emergency",
            Severity::Serious => "serious",
            Severity::Ordinary => "ordinary",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where an alarm is in its life: `active` → `acknowledged` (an operator,
/// with a comment) → `cleared` (the condition ended) → `closed`. An alarm
/// may clear before anyone acknowledges it; it closes once it is cleared and
/// acknowledged and the reopen hysteresis has passed, or when it has been
/// cleared for `alarms.auto_close_after`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    Active,
    Acknowledged,
    Cleared,
    Closed,
}

impl AlarmState {
    pub const ALL: [AlarmState; 4] = [
        AlarmState::Active,
        AlarmState::Acknowledged,
        AlarmState::Cleared,
        AlarmState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Active => "active",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::Cleared => "cleared",
            AlarmState::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmState> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The condition still holds (as far as the gateway knows).
    pub fn is_standing(self) -> bool {
        matches!(self, AlarmState::Active | AlarmState::Acknowledged)
    }
}

/// One alarm as the API, the store, MQTT and webhooks show it: the whole
/// record at its latest change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alarm {
    /// Unique for the gateway: milliseconds of the raise × 4096 + a counter
    /// (below 2^53, so exact in JSON numbers).
    pub id: i64,
    pub kind: AlarmKind,
    pub severity: Severity,
    pub state: AlarmState,
    pub device_kind: DeviceKind,
    /// The lamp id, RTU id, `CABINET/n` for a circuit, the cabinet id, or
    /// the endpoint's address.
    pub device_id: String,
    /// The circuit number, for lamps and circuits.
    pub circuit: Option<u8>,
    pub cabinet: Option<String>,
    pub district: String,
    pub raised_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub comment: Option<String>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// How many times the condition began (1 + reopens within the hysteresis).
    pub occurrences: u32,
    /// The repair deadline: raised_at + the severity's repair time.
    pub deadline: DateTime<Utc>,
    /// Past its deadline and not cleared. Computed when shown; stored as
    /// of the change.
    pub overdue: bool,
    /// What the gateway saw: measurements, the lamps of a circuit, the
    /// failure reason.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Increases at every change: a store keeps the highest it has seen, so
    /// a replayed or reordered change never goes back.
    pub version: u32,
}

impl Alarm {
    /// Whether the alarm is past its deadline at `now` and not cleared.
    pub fn overdue_at(&self, now: DateTime<Utc>) -> bool {
        self.state.is_standing() && now > self.deadline
    }

    /// A copy with `overdue` as of `now`.
    pub fn as_of(&self, now: DateTime<Utc>) -> Alarm {
        Alarm {
            overdue: self.overdue_at(now),
            ..self.clone()
        }
    }
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Raised,
    /// The condition came back within the hysteresis: the same alarm again.
    Reopened,
    Acknowledged,
    Cleared,
    Closed,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Raised => "raised",
            ChangeKind::Reopened => "reopened",
            ChangeKind::Acknowledged => "acknowledged",
            ChangeKind::Cleared => "cleared",
            ChangeKind::Closed => "closed",
        }
    }
}

/// One change of one alarm, with the record after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlarmChange {
    pub change: ChangeKind,
    pub at: DateTime<Utc>,
    pub alarm: Alarm,
}
