//! One identity for a device wherever a transition or an event names it: the
//! API's `/transitions`, MQTT events and the logs. A lamp is named by its lamp
//! id (as in its MQTT topic and `/lamps/{id}`) with the SLC that answers for
//! it; an RTU by its RTU id.

use crate::inventory::Inventory;
use crate::topology::DeviceKey;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeviceName<'a> {
    /// `lamp` or `rtu`.
    pub device_kind: &'static str,
    /// The lamp id for lamps, the RTU id for RTUs.
    pub device_id: &'a str,
    /// The SLC of a lamp.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slc_id: Option<&'a str>,
    pub district: &'a str,
}

/// The name of the device at `key` (empty strings for a position the
/// inventory does not have, which the topology never hands out).
pub fn device_name(inv: &Inventory, key: DeviceKey) -> DeviceName<'_> {
    match key {
        DeviceKey::Lamp(i) => {
            let i = i as usize;
            let lamp = &inv.lamps[i];
            let district = inv
                .cabinet_of_lamp(i)
                .map_or("", |c| inv.cabinets[c].district.as_str());
            DeviceName {
                device_kind: "lamp",
                device_id: &lamp.id,
                slc_id: lamp.slc.as_ref().map(|s| s.id.as_str()),
                district,
            }
        }
        DeviceKey::Rtu(i) => {
            let c = &inv.cabinets[i as usize];
            DeviceName {
                device_kind: "rtu",
                device_id: c.rtu.as_ref().map_or("", |r| r.id.as_str()),
                slc_id: None,
                district: &c.district,
            }
        }
    }
}
