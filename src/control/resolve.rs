//! Turning a selector into device writes, with the caller's scope applied.

use super::{Action, Control, ControlError};
use crate::auth::Principal;
use crate::topology::DeviceKey;
use lamp_profile::Quantity;
use serde::{Deserialize, Serialize};

/// What a command acts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Selector {
    /// Lamps by id.
    Lamps(Vec<String>),
    /// Every lamp with an SLC fed by a cabinet.
    Cabinet(String),
    /// The contactor of one circuit (回路) of a cabinet's RTU.
    Circuit { cabinet: String, circuit: u8 },
    /// Every lamp with an SLC in a district.
    District(String),
    /// A named group of lamps.
    Group(String),
}

pub(super) struct ResolvedTarget {
    pub key: DeviceKey,
    pub id: String,
    pub district: String,
    pub writes: Vec<(Quantity, f64)>,
}

pub(super) struct Resolved {
    pub kind: &'static str,
    pub targets: Vec<ResolvedTarget>,
    /// For lamp overrides: what each lamp did before, to restore on expiry.
    pub restore: Option<Vec<(String, Action)>>,
}

fn lamp_writes(action: Action) -> Vec<(Quantity, f64)> {
    match action {
        Action::On => vec![(Quantity::Switch, 1.0)],
        Action::Off => vec![(Quantity::Switch, 0.0)],
        // Level first, so a lamp switched on comes up at the new level.
        Action::Dim { level } => vec![
            (Quantity::DimLevel, level),
            (Quantity::Switch, if level > 0.0 { 1.0 } else { 0.0 }),
        ],
    }
}

pub(super) fn resolve(
    control: &Control,
    wiring: &super::Wiring,
    p: &Principal,
    selector: &Selector,
    action: Action,
) -> Result<Resolved, ControlError> {
    if !p.can_control() {
        return Err(ControlError::Forbidden(format!(
            "`{}` has the {:?} role and cannot control",
            p.name, p.role
        )));
    }
    // Every id is looked up through the caller's scope (auth/scope.rs):
    // another district's lamp, cabinet, circuit, district or group is
    // refused exactly as an unknown one is, never as "forbidden", which
    // would confirm that it exists and say where.
    let inv = &wiring.live.inventory;

    if let Selector::Circuit { cabinet, circuit } = selector {
        if matches!(action, Action::Dim { .. }) {
            return Err(ControlError::Invalid(
                "action: a circuit can only be switched on or off".into(),
            ));
        }
        let ci = p.visible_cabinet(inv, cabinet).ok_or_else(|| {
            ControlError::Invalid(format!("circuit.cabinet: unknown cabinet `{cabinet}`"))
        })?;
        let c = &inv.cabinets[ci];
        let key = DeviceKey::Rtu(ci as u32);
        let switchable = wiring
            .circuits
            .get(&key)
            .copied()
            .unwrap_or(0)
            .min(c.circuits);
        if c.rtu.is_none() || switchable == 0 {
            return Err(ControlError::Invalid(format!(
                "circuit.cabinet: cabinet `{cabinet}` has no RTU to switch its circuits"
            )));
        }
        if *circuit == 0 || *circuit > switchable {
            return Err(ControlError::Invalid(format!(
                "circuit.circuit: cabinet `{cabinet}` has circuits 1..={switchable}, not {circuit}"
            )));
        }
        let on = matches!(action, Action::On);
        return Ok(Resolved {
            kind: "circuit",
            targets: vec![ResolvedTarget {
                key,
                id: format!("{cabinet}#{circuit}"),
                district: c.district.clone(),
                writes: vec![(Quantity::Contactor(*circuit), if on { 1.0 } else { 0.0 })],
            }],
            restore: None,
        });
    }

    // Lamp selectors: explicit lists must name lamps with SLCs; wider
    // selectors take the lamps that have one.
    let (positions, explicit): (Vec<usize>, bool) = match selector {
        Selector::Lamps(ids) => {
            let mut v = Vec::with_capacity(ids.len());
            for id in ids {
                let i = p
                    .visible_lamp(inv, id)
                    .ok_or_else(|| ControlError::NotFound(format!("no lamp `{id}`")))?;
                v.push(i);
            }
            (v, true)
        }
        Selector::Cabinet(id) => {
            let ci = p
                .visible_cabinet(inv, id)
                .ok_or_else(|| ControlError::Invalid(format!("cabinet: unknown cabinet `{id}`")))?;
            let v = (0..inv.lamps.len())
                .filter(|&l| inv.cabinet_of_lamp(l) == Some(ci))
                .collect();
            (v, false)
        }
        Selector::District(id) => {
            let d = p
                .visible_district(inv, id)
                .and_then(|d| inv.district_position(&d.id))
                .ok_or_else(|| {
                    ControlError::Invalid(format!("district: unknown district `{id}`"))
                })?;
            let v = (0..inv.lamps.len())
                .filter(|&l| {
                    inv.cabinet_of_lamp(l)
                        .and_then(|c| inv.district_of_cabinet(c))
                        == Some(d)
                })
                .collect();
            (v, false)
        }
        Selector::Group(name) => {
            // The group as the caller sees it: its lamps in the caller's
            // district, none of another's.
            let groups = control.groups.read();
            let v = groups
                .get(name)
                .and_then(|lamps| p.visible_group(inv, lamps))
                .ok_or_else(|| ControlError::Invalid(format!("group: unknown group `{name}`")))?
                .into_iter()
                .filter_map(|id| inv.lamp_position(id))
                .collect();
            (v, false)
        }
        Selector::Circuit { .. } => unreachable!("handled above"),
    };
    if positions.is_empty() {
        return Err(ControlError::Invalid(
            "target: the selector matches no lamp".into(),
        ));
    }
    let live = wiring.live.read();
    let mut targets = Vec::with_capacity(positions.len());
    let mut restore = Vec::with_capacity(positions.len());
    for i in positions {
        let lamp = &inv.lamps[i];
        let district = inv
            .cabinet(&lamp.cabinet)
            .map(|c| c.district.clone())
            .unwrap_or_default();
        // Every position above came through the caller's scope.
        debug_assert!(p.sees(&district));
        if lamp.slc.is_none() {
            if explicit {
                return Err(ControlError::Invalid(format!(
                    "lamps: lamp `{}` has no single-lamp controller",
                    lamp.id
                )));
            }
            continue;
        }
        let key = DeviceKey::Lamp(i as u32);
        let reported = live.lamps[i].reading.as_ref().map(|r| (r.on, r.dim_level));
        if let Some(before) = control.previous_action(key, reported) {
            restore.push((lamp.id.clone(), before));
        }
        targets.push(ResolvedTarget {
            key,
            id: lamp.id.clone(),
            district,
            writes: lamp_writes(action),
        });
    }
    if targets.is_empty() {
        return Err(ControlError::Invalid(
            "target: the selector matches no lamp with a single-lamp controller".into(),
        ));
    }
    Ok(Resolved {
        kind: "lamp",
        targets,
        restore: Some(restore),
    })
}
