//! THE district-scope rule: to a token confined to a district, another
//! district's districts, cabinets, RTUs, circuits, lamps and groups do not
//! exist. Every lookup by id on behalf of a caller goes through these, so the
//! API and control answer exactly what they answer for an unknown id (same
//! status, same code, a message that names only what the caller asked for),
//! and every count is of what the caller sees.

use super::Principal;
use crate::inventory::{District, Inventory};

impl Principal {
    /// Whether this caller may see things of `district`.
    pub fn sees(&self, district: &str) -> bool {
        self.district.as_deref().is_none_or(|d| d == district)
    }

    /// Whether this caller may see the lamp at position `lamp`.
    pub fn sees_lamp(&self, inv: &Inventory, lamp: usize) -> bool {
        inv.cabinet_of_lamp(lamp)
            .is_some_and(|c| self.sees(&inv.cabinets[c].district))
    }

    /// The position of a lamp this caller may see; `None` for an unknown one
    /// and for another district's alike.
    pub fn visible_lamp(&self, inv: &Inventory, id: &str) -> Option<usize> {
        inv.lamp_position(id).filter(|&i| self.sees_lamp(inv, i))
    }

    /// The position of a cabinet this caller may see.
    pub fn visible_cabinet(&self, inv: &Inventory, id: &str) -> Option<usize> {
        inv.cabinet_position(id)
            .filter(|&c| self.sees(&inv.cabinets[c].district))
    }

    /// The position of the cabinet whose RTU this caller may see.
    pub fn visible_rtu(&self, inv: &Inventory, id: &str) -> Option<usize> {
        inv.rtu_position(id)
            .filter(|&c| self.sees(&inv.cabinets[c].district))
    }

    /// A district this caller may see.
    pub fn visible_district<'a>(&self, inv: &'a Inventory, id: &str) -> Option<&'a District> {
        inv.district(id).filter(|d| self.sees(&d.id))
    }

    /// The lamps of a group as this caller sees it: the ones it may see, in
    /// the group's order. A group left empty by this does not exist for it
    /// (a group empty for everyone exists only for city-wide callers).
    pub fn visible_group<'a>(&self, inv: &Inventory, lamps: &'a [String]) -> Option<Vec<&'a str>> {
        let seen: Vec<&str> = lamps
            .iter()
            .filter(|id| self.visible_lamp(inv, id).is_some())
            .map(String::as_str)
            .collect();
        (self.district.is_none() || !seen.is_empty()).then_some(seen)
    }
}
