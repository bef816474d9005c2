//! Roads: each in a district the inventory has, ids once; each lamp's road
//! known and in the district of the lamp's cabinet.

use crate::inventory::{ConfigIssue, Inventory};

pub(super) fn check(inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
    let mut seen = std::collections::HashSet::new();
    for r in &inv.roads {
        if !seen.insert(r.id.as_str()) {
            issues.push(ConfigIssue::new(
                &r.at,
                format!("road `{}` appears twice", r.id),
            ));
        }
        if inv.district(&r.district).is_none() {
            issues.push(ConfigIssue::new(
                &r.at,
                format!("road `{}` is in unknown district `{}`", r.id, r.district),
            ));
        }
    }
    for (i, l) in inv.lamps.iter().enumerate() {
        let Some(road) = &l.road else { continue };
        let Some(r) = inv.road(road) else {
            issues.push(ConfigIssue::new(
                &l.at,
                format!("lamp `{}` is on unknown road `{road}` (roads.csv)", l.id),
            ));
            continue;
        };
        let district = inv
            .cabinet_of_lamp(i)
            .map(|c| inv.cabinets[c].district.as_str());
        if let Some(d) = district.filter(|d| *d != r.district) {
            issues.push(ConfigIssue::new(
                &l.at,
                format!(
                    "lamp `{}` is in district `{d}` (its cabinet's) but road `{road}` is in `{}`",
                    l.id, r.district
                ),
            ));
        }
    }
}
