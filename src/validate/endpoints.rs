//! Devices on one endpoint that would read each other's registers.

use crate::inventory::{ConfigIssue, Inventory};
use crate::topology::{DeviceKey, EndpointSpec, Topology};
use lamp_profile::Table;
use std::collections::{HashMap, HashSet};

pub(super) fn check(inv: &Inventory, topology: &Topology, issues: &mut Vec<ConfigIssue>) {
    for ep in &topology.endpoints {
        clashes(inv, ep, issues);
    }
}

/// Two devices on one endpoint that claim the same registers of the same unit
/// would each read the other's values: report each such pair once.
fn clashes(inv: &Inventory, ep: &EndpointSpec, issues: &mut Vec<ConfigIssue>) {
    // (unit, table) → (first address, last address, device)
    type Claims = HashMap<(u8, Table), Vec<(u32, u32, usize)>>;
    let mut spans: Claims = HashMap::new();
    for (d, dev) in ep.devices.iter().enumerate() {
        for f in &dev.profile.fields {
            let start = dev.profile.absolute_address(f, dev.block_index);
            spans.entry((dev.unit, f.table)).or_default().push((
                start,
                start + u32::from(f.width()) - 1,
                d,
            ));
        }
    }
    let mut reported = HashSet::new();
    let mut keys: Vec<_> = spans.keys().copied().collect();
    keys.sort();
    for key in keys {
        let list = spans.get_mut(&key).expect("key from map");
        list.sort_unstable();
        let mut reach: Option<(u32, usize)> = None;
        for &(start, end, d) in list.iter() {
            if let Some((until, owner)) = reach {
                if start <= until && owner != d && reported.insert((owner.min(d), owner.max(d))) {
                    let (a, b) = (&ep.devices[owner], &ep.devices[d]);
                    issues.push(ConfigIssue::new(
                        device_at(inv, b.key),
                        format!(
                            "{} and {} on endpoint {} both use unit id {} ({:?} address {start})",
                            device_name(inv, a.key),
                            device_name(inv, b.key),
                            ep.address,
                            key.0,
                            key.1
                        ),
                    ));
                }
            }
            if reach.is_none_or(|(until, _)| end > until) {
                reach = Some((end, d));
            }
        }
    }
}

fn device_name(inv: &Inventory, key: DeviceKey) -> String {
    match key {
        DeviceKey::Rtu(c) => {
            let c = &inv.cabinets[c as usize];
            format!(
                "RTU `{}` of cabinet `{}`",
                c.rtu.as_ref().map_or("", |r| &r.id),
                c.id
            )
        }
        DeviceKey::Lamp(l) => {
            let l = &inv.lamps[l as usize];
            format!(
                "SLC `{}` of lamp `{}`",
                l.slc.as_ref().map_or("", |s| &s.id),
                l.id
            )
        }
    }
}

fn device_at(inv: &Inventory, key: DeviceKey) -> String {
    match key {
        DeviceKey::Rtu(c) => inv.cabinets[c as usize].at.clone(),
        DeviceKey::Lamp(l) => inv.lamps[l as usize].at.clone(),
    }
}
