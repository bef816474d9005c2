//! Topic names and JSON payloads: what district systems and dashboards read.
//! Field names are a contract (README, "MQTT").

use crate::inventory::{Cabinet, Lamp};
use crate::state::{DeviceLive, FailReason, RtuReading, SlcReading};
use chrono::{DateTime, Utc};
use serde::Serialize;

pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// SLC fault flag bits by name (both SLC profiles share them).
pub const SLC_FAULTS: [(u16, &str); 4] = [
    (1, "lamp_failure"),
    (2, "over_voltage"),
    (4, "under_voltage"),
    (8, "relay_fault"),
];

/// Longest id that may become a topic level, in bytes: far above any id the
/// inventory or the gateway makes, short enough that no topic nears MQTT's
/// limits.
pub const MAX_LEVEL: usize = 128;

/// Why a string cannot be one level of a topic name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LevelError {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_LEVEL} bytes")]
    TooLong,
    /// It would add levels, or make the name a filter that no broker takes.
    #[error("has `/`, `+` or `#`")]
    Separator,
    /// U+0000 is forbidden in MQTT strings (a broker drops the connection);
    /// other control characters make logs and dashboards lie.
    #[error("has a control character")]
    Control,
}

/// The one check for every id that becomes a topic level: districts, lamps,
/// RTUs, the gateway, command ids and the `request_id` of an MQTT command.
/// Every [`Topics`] builder goes through it, so no topic the gateway builds
/// can be refused by the client or the broker for its name.
pub fn check_level(id: &str) -> Result<&str, LevelError> {
    if id.is_empty() {
        Err(LevelError::Empty)
    } else if id.len() > MAX_LEVEL {
        Err(LevelError::TooLong)
    } else if id.contains(['/', '+', '#']) {
        Err(LevelError::Separator)
    } else if id.chars().any(char::is_control) {
        Err(LevelError::Control)
    } else {
        Ok(id)
    }
}

/// The topic root (`mqtt.topic_root`): levels separated by `/`, no
/// wildcards or control characters, no leading or trailing `/`.
pub fn check_root(root: &str) -> Result<&str, LevelError> {
    if root.is_empty() || root.starts_with('/') || root.ends_with('/') {
        return Err(LevelError::Empty);
    }
    if root.contains(['+', '#']) {
        return Err(LevelError::Separator);
    }
    if root.chars().any(char::is_control) {
        return Err(LevelError::Control);
    }
    Ok(root)
}

/// A topic name the client and the broker take: what [`Topics`] builds
/// always is; a message read back from an older spool may not be. rumqttc
/// refuses wildcards itself; an empty name, U+0000 or more than 65,535 bytes
/// would make the broker or the codec end the connection instead.
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= usize::from(u16::MAX) && !topic.contains(['+', '#', '\0'])
}

/// Topic names under one root. Per-district subtrees let a broker ACL give a
/// district system `{root}/{district}/#` and nothing else. Every id goes
/// through [`check_level`]: a builder refuses what it does not pass.
#[derive(Debug, Clone)]
pub struct Topics {
    root: String,
    gateway_id: String,
}

/// An id refused as a topic level, for the caller to name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{id}` cannot be an MQTT topic level: {reason}")]
pub struct BadLevel {
    /// The id, cut to a readable length.
    pub id: String,
    pub reason: LevelError,
}

fn level(id: &str) -> Result<&str, BadLevel> {
    check_level(id).map_err(|reason| BadLevel {
        id: id.chars().take(64).collect(),
        reason,
    })
}

impl Topics {
    /// Checks the root and the gateway id once, so [`Topics::presence`]
    /// (also the last will) needs no check of its own.
    pub fn new(root: &str, gateway_id: &str) -> Result<Self, BadLevel> {
        check_root(root).map_err(|reason| BadLevel {
            id: root.chars().take(64).collect(),
            reason,
        })?;
        level(gateway_id)?;
        Ok(Self {
            root: root.to_string(),
            gateway_id: gateway_id.to_string(),
        })
    }

    pub fn lamp_state(&self, district: &str, lamp_id: &str) -> Result<String, BadLevel> {
        Ok(format!(
            "{}/{}/lamp/{}/state",
            self.root,
            level(district)?,
            level(lamp_id)?
        ))
    }

    pub fn rtu_state(&self, district: &str, rtu_id: &str) -> Result<String, BadLevel> {
        Ok(format!(
            "{}/{}/rtu/{}/state",
            self.root,
            level(district)?,
            level(rtu_id)?
        ))
    }

    pub fn events(&self, district: &str) -> Result<String, BadLevel> {
        Ok(format!("{}/{}/events", self.root, level(district)?))
    }

    /// Alarm changes of a district (not retained).
    pub fn alarms(&self, district: &str) -> Result<String, BadLevel> {
        Ok(format!("{}/{}/alarms", self.root, level(district)?))
    }

    /// A district's standing alarms (retained).
    pub fn alarms_active(&self, district: &str) -> Result<String, BadLevel> {
        Ok(format!("{}/{}/alarms/active", self.root, level(district)?))
    }

    /// A district's night plan as of the schedule's last change (retained).
    pub fn schedule_state(&self, district: &str) -> Result<String, BadLevel> {
        Ok(format!("{}/{}/schedule/state", self.root, level(district)?))
    }

    /// Where a command's acks go: `{root}/commands/{id}`, `id` a command id
    /// or a caller's `request_id`.
    pub fn ack(&self, id: &str) -> Result<String, BadLevel> {
        Ok(format!("{}/commands/{}", self.root, level(id)?))
    }

    /// Acks that belong to no valid id: refused messages without a usable
    /// `request_id`, retained commands.
    pub fn rejected(&self) -> String {
        format!("{}/commands/rejected", self.root)
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn presence(&self) -> String {
        format!("{}/gateway/{}/status", self.root, self.gateway_id)
    }
}

/// Names of the set fault bits, low bit first; unknown bits as `bit{n}`.
pub fn slc_fault_names(flags: u16) -> Vec<String> {
    (0..16)
        .filter(|b| flags & (1 << b) != 0)
        .map(|b| {
            SLC_FAULTS
                .iter()
                .find(|(m, _)| *m == 1 << b)
                .map_or_else(|| format!("bit{b}"), |(_, n)| (*n).to_string())
        })
        .collect()
}

/// The set fault bits' names as a JSON array, exactly as
/// [`slc_fault_names`] gives them, written without a `String` per name.
struct FaultNames(u16);

impl Serialize for FaultNames {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let flags = self.0;
        let mut seq = s.serialize_seq(Some(flags.count_ones() as usize))?;
        for b in (0..16).filter(|b| flags & (1 << b) != 0) {
            match SLC_FAULTS.iter().find(|(m, _)| *m == 1 << b) {
                Some((_, name)) => seq.serialize_element(name)?,
                None => seq.serialize_element(&format_args!("bit{b}"))?,
            }
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct LampState<'a> {
    lamp_id: &'a str,
    slc_id: &'a str,
    district: &'a str,
    cabinet: &'a str,
    circuit: u8,
    online: bool,
    /// Start of the current online/offline status.
    since: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    /// Time of the poll these values come from.
    at: Option<DateTime<Utc>>,
    on: Option<bool>,
    dim_level: Option<f64>,
    voltage: Option<f64>,
    current: Option<f64>,
    power: Option<f64>,
    power_factor: Option<f64>,
    energy_kwh: Option<f64>,
    burning_hours: Option<f64>,
    fault_flags: Option<u16>,
    faults: FaultNames,
    lamp_failure: Option<bool>,
    last_error: Option<&'a FailReason>,
}

pub fn lamp_state(lamp: &Lamp, cabinet: &Cabinet, live: &DeviceLive<SlcReading>) -> Vec<u8> {
    let mut buf = Vec::new();
    write_lamp_state(&mut buf, lamp, cabinet, live);
    buf
}

/// [`lamp_state`] into `buf` (cleared first): the publisher renders every
/// state into one buffer it keeps, so a payload costs one allocation of its
/// final size (the copy rumqttc owns) instead of a buffer grown step by step.
pub fn write_lamp_state(
    buf: &mut Vec<u8>,
    lamp: &Lamp,
    cabinet: &Cabinet,
    live: &DeviceLive<SlcReading>,
) {
    let r = live.reading.as_ref();
    let state = LampState {
        lamp_id: &lamp.id,
        slc_id: lamp.slc.as_ref().map_or("", |s| s.id.as_str()),
        district: &cabinet.district,
        cabinet: &cabinet.id,
        circuit: lamp.circuit,
        online: live.online,
        since: live.since,
        last_seen: live.last_seen,
        at: live.last_poll,
        on: r.map(|r| r.on),
        dim_level: r.map(|r| r.dim_level),
        voltage: r.and_then(|r| r.voltage),
        current: r.and_then(|r| r.current),
        power: r.and_then(|r| r.power),
        power_factor: r.and_then(|r| r.power_factor),
        energy_kwh: r.and_then(|r| r.energy_kwh),
        burning_hours: r.and_then(|r| r.burning_hours),
        fault_flags: r.map(|r| r.fault_flags),
        faults: FaultNames(r.map_or(0, |r| r.fault_flags)),
        lamp_failure: r.map(SlcReading::lamp_failure),
        last_error: live.last_error.as_ref(),
    };
    buf.clear();
    serde_json::to_writer(&mut *buf, &state).expect("plain struct serialises");
}

#[derive(Serialize)]
struct RtuState<'a> {
    rtu_id: &'a str,
    district: &'a str,
    cabinet: &'a str,
    online: bool,
    since: Option<DateTime<Utc>>,
    last_seen: Option<DateTime<Utc>>,
    at: Option<DateTime<Utc>>,
    contactors: Option<&'a [bool]>,
    voltage: [Option<f64>; 3],
    current: [Option<f64>; 3],
    active_power: Option<f64>,
    energy_kwh: Option<f64>,
    door_alarm: Option<bool>,
    leakage_alarm: Option<bool>,
    last_error: Option<&'a FailReason>,
}

pub fn rtu_state(cabinet: &Cabinet, live: &DeviceLive<RtuReading>) -> Vec<u8> {
    let mut buf = Vec::new();
    write_rtu_state(&mut buf, cabinet, live);
    buf
}

/// [`rtu_state`] into `buf` (cleared first), as [`write_lamp_state`].
pub fn write_rtu_state(buf: &mut Vec<u8>, cabinet: &Cabinet, live: &DeviceLive<RtuReading>) {
    let r = live.reading.as_ref();
    let state = RtuState {
        rtu_id: cabinet.rtu.as_ref().map_or("", |r| r.id.as_str()),
        district: &cabinet.district,
        cabinet: &cabinet.id,
        online: live.online,
        since: live.since,
        last_seen: live.last_seen,
        at: live.last_poll,
        contactors: r.map(|r| r.contactors.as_slice()),
        voltage: r.map_or([None; 3], |r| r.voltage),
        current: r.map_or([None; 3], |r| r.current),
        active_power: r.and_then(|r| r.active_power),
        energy_kwh: r.and_then(|r| r.energy_kwh),
        door_alarm: r.map(|r| r.door_alarm),
        leakage_alarm: r.map(|r| r.leakage_alarm),
        last_error: live.last_error.as_ref(),
    };
    buf.clear();
    serde_json::to_writer(&mut *buf, &state).expect("plain struct serialises");
}

/// What happened to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CameOnline,
    WentOffline,
    AlarmRaised,
    AlarmCleared,
}

/// One event on `{root}/{district}/events`. `seq` rises by one per event of
/// this gateway run (`run` is the run's start), so a subscriber can drop the
/// duplicates QoS 1 may bring and check that none is missing.
#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    pub seq: u64,
    pub run: i64,
    pub gateway: &'a str,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    /// `device_kind` (`lamp` or `rtu`), `device_id` (the lamp id, as in the
    /// state topic, or the RTU id), `slc_id` of a lamp, `district`: the same
    /// identity `/api/v1/transitions` gives.
    #[serde(flatten)]
    pub device: crate::state::DeviceName<'a>,
    /// `lamp_failure`, `over_voltage`, `under_voltage`, `relay_fault`,
    /// `door`, `leakage` for alarm events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<&'a str>,
    /// Why a device went offline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a FailReason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_contract() {
        let t = Topics::new("streetlight", "gw-1").unwrap();
        assert_eq!(
            t.lamp_state("D01", "LX-0001-001").unwrap(),
            "streetlight/D01/lamp/LX-0001-001/state"
        );
        assert_eq!(
            t.rtu_state("D02", "RTU-0002").unwrap(),
            "streetlight/D02/rtu/RTU-0002/state"
        );
        assert_eq!(t.events("D01").unwrap(), "streetlight/D01/events");
        assert_eq!(t.presence(), "streetlight/gateway/gw-1/status");
        assert_eq!(t.rejected(), "streetlight/commands/rejected");
    }

    #[test]
    fn every_builder_refuses_an_id_that_is_no_level() {
        let t = Topics::new("city/lights", "gw").unwrap();
        for (id, reason) in [
            ("", LevelError::Empty),
            ("poison/#", LevelError::Separator),
            ("a/b", LevelError::Separator),
            ("+", LevelError::Separator),
            ("nul\0", LevelError::Control),
            ("bell\u{7}", LevelError::Control),
            ("line\nbreak", LevelError::Control),
        ] {
            let want = Err(BadLevel {
                id: id.to_string(),
                reason,
            });
            assert_eq!(t.ack(id), want, "{id:?}");
            assert_eq!(t.events(id), want, "{id:?}");
            assert_eq!(t.lamp_state("D01", id), want, "{id:?}");
            assert_eq!(t.lamp_state(id, "LX-1"), want, "{id:?}");
            assert_eq!(t.rtu_state("D01", id), want, "{id:?}");
            assert_eq!(t.rtu_state(id, "R-1"), want, "{id:?}");
            assert_eq!(
                Topics::new("root", id).map(|_| ()),
                want.map(|_: String| ())
            );
        }
        let long = "x".repeat(MAX_LEVEL + 1);
        assert_eq!(t.ack(&long).unwrap_err().reason, LevelError::TooLong);
        assert_eq!(t.ack(&long).unwrap_err().id.len(), 64, "named, cut short");
        assert!(t.ack(&"x".repeat(MAX_LEVEL)).is_ok());
        assert!(t.ack("cmd-20260101T000000.000-1").is_ok());
        assert!(t.ack("Straße-7 ü").is_ok(), "any printable text is a level");
    }

    #[test]
    fn roots_and_topic_names() {
        assert!(Topics::new("a/b/c", "gw").is_ok());
        for bad in ["", "/a", "a/", "a/#", "a/+/b", "a\0b"] {
            assert!(Topics::new(bad, "gw").is_err(), "{bad:?}");
        }
        assert!(valid_topic_name("a/commands/x"));
        assert!(!valid_topic_name("a/commands/poison/#"));
        assert!(!valid_topic_name("a/+/x"));
        assert!(!valid_topic_name("nul\0here"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name(&"x".repeat(65_536)));
        assert!(valid_topic_name(&"x".repeat(65_535)));
    }

    #[test]
    fn the_payloads_fault_array_is_the_names_list() {
        for flags in [0u16, 1, 2 | 8, 0x20, 0xffff, 0x8001] {
            assert_eq!(
                serde_json::to_string(&FaultNames(flags)).unwrap(),
                serde_json::to_string(&slc_fault_names(flags)).unwrap(),
                "{flags:#x}"
            );
        }
    }

    #[test]
    fn fault_names() {
        assert_eq!(slc_fault_names(0), Vec::<String>::new());
        assert_eq!(slc_fault_names(1 | 8), ["lamp_failure", "relay_fault"]);
        assert_eq!(slc_fault_names(0x20), ["bit5"]);
    }
}
