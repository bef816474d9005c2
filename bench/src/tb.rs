//! The peer's configuration: a ThingsBoard IoT Gateway 3.8 Modbus connector
//! config (`modbus.json`) for the same endpoints, devices and register fields
//! as the gateway's poll plan, decoded the same way (type, word order, scale).

use lamp_gateway::inventory::Framing;
use lamp_gateway::topology::Topology;
use lamp_profile::{DeviceKind, Layout, Table, ValueType, WordOrder};
use serde_json::{json, Value};

fn tb_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Bool => "bits",
        ValueType::U16 => "16uint",
        ValueType::I16 => "16int",
        ValueType::U32 => "32uint",
        ValueType::I32 => "32int",
        ValueType::F32 => "32float",
    }
}

fn function_code(t: Table) -> u8 {
    match t {
        Table::Coil => 1,
        Table::DiscreteInput => 2,
        Table::Holding => 3,
        Table::Input => 4,
    }
}

/// One TB device per SLC (`with_rtus`: and per RTU), every field of its
/// profile as a timeseries key with the profile's type, word order and scale.
pub fn modbus_config(topology: &Topology, poll_ms: u64, with_rtus: bool) -> Value {
    let mut slaves = Vec::new();
    for ep in &topology.endpoints {
        let (host, port) = ep.address.rsplit_once(':').unwrap_or((&ep.address, "502"));
        for dev in &ep.devices {
            let p = &dev.profile;
            if p.kind == DeviceKind::Rtu && !with_rtus {
                continue;
            }
            let word_order = match p
                .fields
                .iter()
                .find(|f| f.value_type.width() == 2)
                .map(|f| f.word_order)
            {
                Some(WordOrder::CDAB) => "LITTLE",
                _ => "BIG",
            };
            let timeseries: Vec<Value> = p
                .fields
                .iter()
                .map(|f| {
                    let mut ts = json!({
                        "tag": f.quantity.to_string(),
                        "type": tb_type(f.value_type),
                        "functionCode": function_code(f.table),
                        "objectsCount": f.width(),
                        "address": p.absolute_address(f, dev.block_index),
                    });
                    if f.scale != 1.0 {
                        ts["multiplier"] = json!(f.scale);
                    }
                    ts
                })
                .collect();
            let name = match (p.layout, p.kind) {
                (_, DeviceKind::Rtu) => format!("rtu-{port}"),
                (Layout::Unit, _) => format!("slc-{port}-u{}", dev.unit),
                (Layout::Block { .. }, _) => format!("slc-{port}-b{}", dev.block_index),
            };
            slaves.push(json!({
                "host": host,
                "port": port.parse::<u16>().unwrap_or(502),
                "type": match ep.framing { Framing::Tcp => "tcp", Framing::Rtu => "tcp" },
                "method": match ep.framing { Framing::Tcp => "socket", Framing::Rtu => "rtu" },
                "unitId": dev.unit,
                "deviceName": name,
                "deviceType": p.name,
                "timeout": 5,
                "byteOrder": "BIG",
                "wordOrder": word_order,
                "retries": 3,
                "pollPeriod": poll_ms,
                "connectAttemptTimeMs": 5000,
                "connectAttemptCount": 5,
                "waitAfterFailedAttemptsMs": 300000,
                "attributes": [],
                "timeseries": timeseries,
                "attributeUpdates": [],
                "rpc": [],
            }));
        }
    }
    json!({ "master": { "slaves": slaves } })
}
