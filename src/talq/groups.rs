//! Our groups of lamps (`[[control.groups]]` and those set through
//! `PUT /api/v1/groups/{name}`, one set: `Control::groups`) as TALQ groups:
//! the address `group/{name}` (address.rs), the lamps with an SLC as
//! members, purpose `override` (an override command may address a group).
//! A caller sees a group as `Principal::visible_group` has it: only its
//! district's lamps, and a group of none of them not at all.

use super::address::{group_address, Index};
use crate::auth::Principal;
use crate::control::Control;
use serde_json::{json, Value};
use uuid::Uuid;

/// One group as the caller sees it: name, address, member lamps (position, id).
pub(super) struct Seen {
    pub(super) name: String,
    pub(super) address: Uuid,
    pub(super) lamps: Vec<(usize, String)>,
}

/// Every group the caller sees, by name order.
pub(super) fn visible(control: &Control, index: &Index, principal: &Principal) -> Vec<Seen> {
    let inv = &index.inventory;
    control
        .groups()
        .into_iter()
        .filter_map(|(name, lamps)| {
            let seen = principal.visible_group(inv, &lamps)?;
            let lamps = seen
                .into_iter()
                .filter_map(|id| {
                    let l = inv.lamp_position(id)?;
                    inv.lamps[l].slc.is_some().then(|| (l, id.to_string()))
                })
                .collect();
            Some(Seen {
                address: group_address(&index.gateway_address(), &name),
                name,
                lamps,
            })
        })
        .collect()
}

/// A `Group`.
pub(super) fn group(g: &Seen, index: &Index, owner: Option<Uuid>) -> Value {
    let members: Vec<Value> = g
        .lamps
        .iter()
        .filter_map(|(l, _)| index.lamp(*l))
        .map(|a| json!({"resource": "devices", "address": a.to_string()}))
        .collect();
    json!({
        "address": g.address.to_string(),
        // Our groups belong to the city, not to one CMS: the configured
        // CMS is named as their owner when there is one.
        "ownerCMS": owner.map(|o| o.to_string()).unwrap_or_default(),
        "members": members,
        "purpose": "override",
    })
}
