//! Each cabinet: its district, circuits, endpoint address and RTU.

use super::valid_unit;
use crate::inventory::{ConfigIssue, Inventory};
use lamp_profile::{DeviceKind, Profile};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) fn check(
    inv: &Inventory,
    profiles: &BTreeMap<String, Arc<Profile>>,
    issues: &mut Vec<ConfigIssue>,
) {
    for c in &inv.cabinets {
        if inv.district(&c.district).is_none() {
            issues.push(ConfigIssue::new(
                &c.at,
                format!("cabinet `{}` is in unknown district `{}`", c.id, c.district),
            ));
        }
        if c.circuits == 0 {
            issues.push(ConfigIssue::new(
                &c.at,
                "a cabinet feeds at least one circuit",
            ));
        }
        // The endpoint cell is parsed, and its problems reported, at load
        // (inventory/endpoint.rs).
        let Some(rtu) = &c.rtu else { continue };
        if !valid_unit(rtu.unit) {
            issues.push(ConfigIssue::new(
                &c.at,
                format!("RTU `{}`: unit id {} is outside 1..=247", rtu.id, rtu.unit),
            ));
        }
        // An unknown profile, or one of the wrong kind, is reported where the
        // topology is built.
        let profile = profiles
            .get(&rtu.profile)
            .filter(|p| p.kind == DeviceKind::Rtu);
        if let Some(p) = profile {
            if c.circuits > p.circuits {
                issues.push(ConfigIssue::new(
                    &c.at,
                    format!(
                        "cabinet has {} circuits but profile `{}` switches {}",
                        c.circuits, p.name, p.circuits
                    ),
                ));
            }
        }
    }
}
