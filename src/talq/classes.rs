//! The device classes the gateway announces (`/device-classes`): per class
//! its functions, per function the attributes it serves with their TALQ
//! unit and whether a CMS may write them, and the events it can raise. One
//! table: the devices (devices.rs) serve exactly the attributes listed here.

use serde_json::{json, Value};

/// One attribute a function serves.
#[derive(Debug)]
pub(super) struct AttrSpec {
    pub(super) name: &'static str,
    /// The TALQ attribute schema of its value (`AttributeFloat`, …).
    pub(super) kind: &'static str,
    /// A `TalqUnitEnum` value.
    pub(super) unit: &'static str,
    pub(super) read_only: bool,
    /// Its TALQ scope: `configuration`, `operational`, `measurement`,
    /// `event` (what `attributeScope` filters by).
    pub(super) scope: &'static str,
}

/// One function of a class.
#[derive(Debug)]
pub(super) struct FunctionSpec {
    /// The function's id in every device of the class.
    pub(super) id: &'static str,
    /// The TALQ function type.
    pub(super) kind: &'static str,
    pub(super) attributes: &'static [AttrSpec],
    /// `EventType` values the function reports.
    pub(super) events: &'static [&'static str],
}

const fn ro(
    name: &'static str,
    kind: &'static str,
    unit: &'static str,
    scope: &'static str,
) -> AttrSpec {
    AttrSpec {
        name,
        kind,
        unit,
        read_only: true,
        scope,
    }
}

pub(super) const GATEWAY_CLASS: &str = "LampGateway";
pub(super) const SLC_CLASS: &str = "SingleLampController";
pub(super) const RTU_CLASS: &str = "CabinetRtu";

pub(super) const BASIC: FunctionSpec = FunctionSpec {
    id: "basic",
    kind: "BasicFunction",
    attributes: &[
        ro("displayName", "AttributeString", "None", "configuration"),
        ro("assetId", "AttributeString", "None", "configuration"),
        ro("hwType", "AttributeString", "None", "configuration"),
        ro("swVersion", "AttributeString", "None", "configuration"),
        ro("location", "AttributeLocation", "None", "configuration"),
        ro("timeZone", "AttributeString", "None", "configuration"),
        ro("currentTime", "AttributeDateTime", "None", "measurement"),
    ],
    events: &[],
};

pub(super) const GATEWAY: FunctionSpec = FunctionSpec {
    id: "gateway",
    kind: "GatewayFunction",
    attributes: &[
        ro("cmsUri", "AttributeUri", "None", "configuration"),
        ro("cmsAddress", "AttributeString", "None", "configuration"),
        ro("gatewayUri", "AttributeUri", "None", "configuration"),
        ro("gatewayAddress", "AttributeString", "None", "configuration"),
        ro("retryPeriod", "AttributeFloat", "Seconds", "configuration"),
        ro(
            "gatewayRetryPeriod",
            "AttributeFloat",
            "Seconds",
            "configuration",
        ),
        ro("crlUrn", "AttributeUri", "None", "configuration"),
        ro("vendor", "AttributeString", "None", "configuration"),
    ],
    events: &[],
};

pub(super) const LAMP_ACTUATOR: FunctionSpec = FunctionSpec {
    id: "lampActuator",
    kind: "LampActuatorFunction",
    attributes: &[
        ro(
            "defaultLightState",
            "AttributeLevelState",
            "Percent",
            "configuration",
        ),
        AttrSpec {
            name: "targetLightCommand",
            kind: "AttributeCommand",
            unit: "None",
            // Written through PATCH: the same as an override command.
            read_only: false,
            scope: "operational",
        },
        ro(
            "feedbackLightCommand",
            "AttributeCommand",
            "None",
            "measurement",
        ),
        ro(
            "actualLightState",
            "AttributeLevelState",
            "Percent",
            "measurement",
        ),
        ro("calendarID", "AttributeString", "None", "operational"),
    ],
    events: &[],
};

pub(super) const LAMP_MONITOR: FunctionSpec = FunctionSpec {
    id: "lampMonitor",
    kind: "LampMonitorFunction",
    attributes: &[
        ro("supplyVoltage", "AttributeFloat", "Volts", "measurement"),
        ro("supplyCurrent", "AttributeFloat", "Amperes", "measurement"),
        ro("activePower", "AttributeFloat", "Watts", "measurement"),
        ro("powerFactor", "AttributeFloat", "None", "measurement"),
        ro(
            "activeEnergy",
            "AttributeFloat",
            "KiloWattHours",
            "measurement",
        ),
        ro("operatingHours", "AttributeFloat", "Hours", "measurement"),
        ro("lampFailure", "AttributeBoolean", "None", "event"),
    ],
    events: &["lampFailure"],
};

pub(super) const COMMUNICATION: FunctionSpec = FunctionSpec {
    id: "communication",
    kind: "CommunicationFunction",
    attributes: &[
        ro(
            "communicationType",
            "AttributeString",
            "None",
            "configuration",
        ),
        ro(
            "physicalAddress",
            "AttributeString",
            "None",
            "configuration",
        ),
        ro("communicationFailure", "AttributeBoolean", "None", "event"),
    ],
    events: &["communicationFailure"],
};

pub(super) const CABINET_MONITOR: FunctionSpec = FunctionSpec {
    id: "cabinetMonitor",
    kind: "CabinetMonitorFunction",
    attributes: &[
        ro("cabinetDoorOpen", "AttributeBoolean", "None", "event"),
        ro("leakageDetected", "AttributeBoolean", "None", "event"),
    ],
    events: &["cabinetDoorOpen", "leakageDetected"],
};

pub(super) const ELECTRICAL_METER: FunctionSpec = FunctionSpec {
    id: "electricalMeter",
    kind: "ElectricalMeterFunction",
    attributes: &[
        ro("phase1Voltage", "AttributeFloat", "Volts", "measurement"),
        ro("phase2Voltage", "AttributeFloat", "Volts", "measurement"),
        ro("phase3Voltage", "AttributeFloat", "Volts", "measurement"),
        ro("phase1Current", "AttributeFloat", "Amperes", "measurement"),
        ro("phase2Current", "AttributeFloat", "Amperes", "measurement"),
        ro("phase3Current", "AttributeFloat", "Amperes", "measurement"),
        ro("totalPower", "AttributeFloat", "KiloWatt", "measurement"),
        ro(
            "totalActiveEnergy",
            "AttributeFloat",
            "KiloWattHours",
            "measurement",
        ),
    ],
    events: &[],
};

/// One per circuit of the cabinet: `segment1`, `segment2`, …
pub(super) const SEGMENT_MONITOR: FunctionSpec = FunctionSpec {
    id: "segment",
    kind: "SegmentMonitorFunction",
    attributes: &[
        ro(
            "segmentReference",
            "AttributeString",
            "None",
            "configuration",
        ),
        ro("numberOfLoads", "AttributeInteger", "None", "configuration"),
        ro("actualState", "AttributeBinary", "None", "measurement"),
    ],
    events: &[],
};

pub(super) fn segment_id(circuit: u8) -> String {
    format!("segment{circuit}")
}

fn describe(f: &FunctionSpec, id: &str) -> Value {
    let attributes: Vec<Value> = f
        .attributes
        .iter()
        .map(|a| {
            let mut d = json!({"name": a.name, "unit": a.unit, "readOnly": a.read_only});
            if a.name == "targetLightCommand" {
                // What the actuator takes: a level 0–100 % by override,
                // now or from `start` until `expiration`.
                d["commands"] = json!({
                    "scope": "override",
                    "states": [{"name": "LevelState"}],
                    "levels": [{"start": 0, "end": 100}],
                    "attributes": ["reason", "cmsRefId", "start", "expiration"],
                });
            }
            d
        })
        .collect();
    let mut d = json!({"functionId": id, "type": f.kind, "attributes": attributes});
    if !f.events.is_empty() {
        d["events"] = f.events.iter().map(|e| json!({"type": e})).collect();
    }
    d
}

/// Every class the gateway's devices are of; the RTU class lists as many
/// segments as the cabinet with the most circuits has.
pub(super) fn classes(max_circuits: u8) -> Vec<Value> {
    let class = |name: &str, fs: &[&FunctionSpec]| json!({"name": name, "functions": fs.iter().map(|f| describe(f, f.id)).collect::<Vec<_>>()});
    let mut rtu = class(
        RTU_CLASS,
        &[&BASIC, &CABINET_MONITOR, &ELECTRICAL_METER, &COMMUNICATION],
    );
    if let Some(fs) = rtu["functions"].as_array_mut() {
        fs.extend((1..=max_circuits).map(|n| describe(&SEGMENT_MONITOR, &segment_id(n))));
    }
    vec![
        class(GATEWAY_CLASS, &[&BASIC, &GATEWAY]),
        class(
            SLC_CLASS,
            &[&BASIC, &LAMP_ACTUATOR, &LAMP_MONITOR, &COMMUNICATION],
        ),
        rtu,
    ]
}
