//! A reload's new live state takes over what the old one knew, device by
//! device id: a lamp that stays in the inventory keeps its reading, its
//! online status and since when, its failure count and its commanded state,
//! so a reload is no transition and no gap in the figures; an endpoint keeps
//! its counters. Devices new to the inventory start unknown, as at start.

use super::{LiveState, Transition};
use std::sync::atomic::Ordering;

impl LiveState {
    /// Copies into `self` (just built from the new inventory, not yet fed)
    /// what `old` knows of the devices both have. Call once the old state
    /// has applied its last report.
    pub fn carry_over(&self, old: &LiveState) {
        let (new_inv, old_inv) = (&self.inventory, &old.inventory);
        let before = old.inner.read();
        let mut inner = self.inner.write();
        for (i, lamp) in new_inv.lamps.iter().enumerate() {
            if let Some(j) = old_inv.lamp_position(&lamp.id) {
                // The same lamp behind another controller is another device.
                let same_slc = old_inv.lamps[j].slc.as_ref().map(|s| &s.id)
                    == lamp.slc.as_ref().map(|s| &s.id);
                if same_slc {
                    inner.lamps[i] = before.lamps[j].clone();
                    inner.commanded[i] = before.commanded[j];
                    inner.scheduled[i] = before.scheduled[j];
                }
            }
        }
        // The contactors the schedule drives, until its next tick says again.
        inner.scheduled_contactors = before
            .scheduled_contactors
            .iter()
            .filter_map(|(&(c, n), &closed)| {
                let moved = new_inv.cabinet_position(&old_inv.cabinets[c].id)?;
                (n <= new_inv.cabinets[moved].circuits).then_some(((moved, n), closed))
            })
            .collect();
        for (i, cabinet) in new_inv.cabinets.iter().enumerate() {
            let Some(rtu) = &cabinet.rtu else { continue };
            if let Some(j) = old_inv.rtu_position(&rtu.id) {
                inner.rtus[i] = before.rtus[j].clone();
            }
        }
        for ep in &mut inner.endpoints {
            if let Some(was) = before.endpoints.iter().find(|e| e.address == ep.address) {
                *ep = was.clone();
            }
        }
        inner.recent_transitions = before
            .recent_transitions
            .iter()
            .map(|t| Transition {
                // A device that is gone keeps its old key: only its kind
                // matters then.
                key: t.key.moved(old_inv, new_inv).unwrap_or(t.key),
                ..t.clone()
            })
            .collect();
        inner.transitions_total = before.transitions_total;
        inner.samples_total = before.samples_total;
        inner.failures_by_kind = before.failures_by_kind.clone();
        for (d, district) in new_inv.districts.iter().enumerate() {
            if let Some(o) = old_inv.district_position(&district.id) {
                inner.transitions_by_district[d] = before.transitions_by_district[o];
            }
        }
        self.writes_applied.store(
            old.writes_applied.load(Ordering::Acquire),
            Ordering::Release,
        );
    }
}
