//! Where each alarm subject sits: the devices behind each endpoint and the
//! circuits they feed, with each circuit's lamps. Built from the inventory
//! and the topology at start and at every reload.

use crate::inventory::Inventory;
use crate::topology::{DeviceKey, PollClass, Topology};
use std::collections::HashMap;
use std::sync::Arc;

/// One circuit (回路): a cabinet's contactor and the lamps it feeds.
#[derive(Debug, Clone)]
pub struct Circuit {
    pub cabinet: usize,
    /// 1-based, as the inventory numbers them.
    pub number: u8,
    /// `CABINET/n`: the circuit's id in alarms.
    pub id: String,
    /// Every lamp the inventory puts on it.
    pub lamps: Vec<usize>,
    /// Those with an SLC (they measure the supply).
    pub slc_lamps: Vec<usize>,
}

/// What one endpoint carries.
#[derive(Debug, Clone, Default)]
pub struct EndpointPart {
    pub address: String,
    /// Cabinet position of its first cabinet, for the alarm's cabinet.
    pub cabinet: Option<usize>,
    pub rtus: Vec<usize>,
    pub lamps: Vec<usize>,
    /// Positions in [`Layout::circuits`] of the circuits its devices feed.
    pub circuits: Vec<usize>,
}

#[derive(Debug)]
pub struct Layout {
    pub inventory: Arc<Inventory>,
    pub endpoints: Vec<EndpointPart>,
    pub circuits: Vec<Circuit>,
    /// Circuit position of each lamp (`usize::MAX`: none).
    pub lamp_circuit: Vec<usize>,
    /// Endpoint position of each lamp and RTU (`u32::MAX`: not polled).
    pub lamp_endpoint: Vec<u32>,
    pub rtu_endpoint: Vec<u32>,
    /// Circuit position by circuit id.
    pub circuit_index: HashMap<String, usize>,
}

impl Layout {
    pub fn new(inventory: Arc<Inventory>, topology: &Topology) -> Layout {
        let inv = &inventory;
        let mut circuits = Vec::new();
        let mut circuit_index = HashMap::new();
        let mut by_cabinet: HashMap<(usize, u8), usize> = HashMap::new();
        for (c, cab) in inv.cabinets.iter().enumerate() {
            for n in 1..=cab.circuits.max(1) {
                let id = format!("{}/{n}", cab.id);
                by_cabinet.insert((c, n), circuits.len());
                circuit_index.insert(id.clone(), circuits.len());
                circuits.push(Circuit {
                    cabinet: c,
                    number: n,
                    id,
                    lamps: Vec::new(),
                    slc_lamps: Vec::new(),
                });
            }
        }
        let mut lamp_circuit = vec![usize::MAX; inv.lamps.len()];
        for (i, lamp) in inv.lamps.iter().enumerate() {
            let Some(c) = inv.cabinet_of_lamp(i) else {
                continue;
            };
            if let Some(&k) = by_cabinet.get(&(c, lamp.circuit)) {
                lamp_circuit[i] = k;
                circuits[k].lamps.push(i);
                if lamp.slc.is_some() {
                    circuits[k].slc_lamps.push(i);
                }
            }
        }
        let mut lamp_endpoint = vec![u32::MAX; inv.lamps.len()];
        let mut rtu_endpoint = vec![u32::MAX; inv.cabinets.len()];
        let mut endpoints = Vec::new();
        for (e, ep) in topology.endpoints.iter().enumerate() {
            let mut part = EndpointPart {
                address: ep.address.clone(),
                ..EndpointPart::default()
            };
            let mut cs = std::collections::BTreeSet::new();
            for dev in &ep.devices {
                match dev.key {
                    DeviceKey::Rtu(r) => {
                        let r = r as usize;
                        part.rtus.push(r);
                        rtu_endpoint[r] = e as u32;
                        part.cabinet.get_or_insert(r);
                        for n in 1..=inv.cabinets[r].circuits.max(1) {
                            if let Some(&k) = by_cabinet.get(&(r, n)) {
                                cs.insert(k);
                            }
                        }
                    }
                    DeviceKey::Lamp(l) => {
                        let l = l as usize;
                        part.lamps.push(l);
                        lamp_endpoint[l] = e as u32;
                        if part.cabinet.is_none() {
                            part.cabinet = inv.cabinet_of_lamp(l);
                        }
                        if lamp_circuit[l] != usize::MAX {
                            cs.insert(lamp_circuit[l]);
                        }
                    }
                }
            }
            part.circuits = cs.into_iter().collect();
            endpoints.push(part);
        }
        Layout {
            inventory,
            endpoints,
            circuits,
            lamp_circuit,
            lamp_endpoint,
            rtu_endpoint,
            circuit_index,
        }
    }

    /// The devices of `class` behind endpoint `e`.
    pub fn devices(&self, e: usize, class: PollClass) -> &[usize] {
        match (self.endpoints.get(e), class) {
            (Some(p), PollClass::Rtu) => &p.rtus,
            (Some(p), PollClass::Slc) => &p.lamps,
            (None, _) => &[],
        }
    }
}
