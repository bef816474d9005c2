//! Each lamp: its cabinet and circuit, and its SLC's unit id.

use super::valid_unit;
use crate::inventory::{ConfigIssue, Inventory};

pub(super) fn check(inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
    for l in &inv.lamps {
        let Some(c) = inv.cabinet(&l.cabinet) else {
            issues.push(ConfigIssue::new(
                &l.at,
                format!("lamp `{}` is on unknown cabinet `{}`", l.id, l.cabinet),
            ));
            continue;
        };
        if l.circuit == 0 || l.circuit > c.circuits {
            issues.push(ConfigIssue::new(
                &l.at,
                format!(
                    "lamp `{}` is on circuit {} but cabinet `{}` has circuits 1..={}",
                    l.id, l.circuit, c.id, c.circuits
                ),
            ));
        }
        let Some(slc) = &l.slc else { continue };
        if !valid_unit(slc.unit) {
            issues.push(ConfigIssue::new(
                &l.at,
                format!("SLC `{}`: unit id {} is outside 1..=247", slc.id, slc.unit),
            ));
        }
    }
}
