//! Whole-configuration validation: settings, inventory and profiles checked
//! together, every problem reported at once with where it is.

use crate::inventory::{self, Framing, Inventory};
use crate::settings::Settings;
use crate::topology::{DeviceKey, DeviceSlot, EndpointSpec, Topology};
use lamp_profile::{DeviceKind, Layout, Profile, Table};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// One problem in the configuration: where (file:line, or settings key) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub at: String,
    pub message: String,
}

impl ConfigIssue {
    pub fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            at: at.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Everything the gateway runs on, checked.
pub struct Loaded {
    pub inventory: Arc<Inventory>,
    pub profiles: BTreeMap<String, Arc<Profile>>,
    pub topology: Topology,
}

/// Loads profiles and inventory named by the settings and checks them all.
pub fn load(settings: &Settings) -> Result<Loaded, Vec<ConfigIssue>> {
    let mut issues: Vec<ConfigIssue> = settings
        .problems()
        .into_iter()
        .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg))
        .collect();
    let (profiles, profile_issues) = Profile::load_dir_partial(&settings.paths.profiles);
    issues.extend(
        profile_issues
            .into_iter()
            .map(|i| ConfigIssue::new(format!("{}: {}", i.file, i.key), i.message)),
    );
    let profiles: BTreeMap<String, Arc<Profile>> = profiles
        .into_iter()
        .map(|(k, v)| (k, Arc::new(v)))
        .collect();
    let (inventory, mut inv_issues) = inventory::load_dir(&settings.paths.inventory);
    issues.append(&mut inv_issues);
    let topology = check(&inventory, &profiles, settings.poll.max_gap, &mut issues);
    issues.extend(
        crate::auth::problems(&settings.auth.tokens, |d| inventory.district(d).is_some())
            .into_iter()
            .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg)),
    );
    if issues.is_empty() {
        Ok(Loaded {
            inventory: Arc::new(inventory),
            profiles,
            topology,
        })
    } else {
        Err(issues)
    }
}

fn duplicates<'a>(
    what: &str,
    items: impl Iterator<Item = (&'a str, &'a str)>,
    issues: &mut Vec<ConfigIssue>,
) {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (id, at) in items {
        if let Some(first) = seen.insert(id, at) {
            issues.push(ConfigIssue::new(
                at,
                format!("duplicate {what} id `{id}` (first at {first})"),
            ));
        }
    }
}

fn valid_unit(unit: u8) -> bool {
    (1..=247).contains(&unit)
}

fn valid_endpoint(s: &str) -> bool {
    s.rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

/// Cross-checks the inventory against itself and the profiles, and builds the
/// topology of endpoints and the devices behind them.
pub fn check(
    inv: &Inventory,
    profiles: &BTreeMap<String, Arc<Profile>>,
    max_gap: u16,
    issues: &mut Vec<ConfigIssue>,
) -> Topology {
    duplicates(
        "district",
        inv.districts.iter().map(|d| (d.id.as_str(), d.at.as_str())),
        issues,
    );
    duplicates(
        "cabinet",
        inv.cabinets.iter().map(|c| (c.id.as_str(), c.at.as_str())),
        issues,
    );
    duplicates(
        "lamp",
        inv.lamps.iter().map(|l| (l.id.as_str(), l.at.as_str())),
        issues,
    );
    duplicates(
        "RTU",
        inv.cabinets
            .iter()
            .filter_map(|c| c.rtu.as_ref().map(|r| (r.id.as_str(), c.at.as_str()))),
        issues,
    );
    duplicates(
        "SLC",
        inv.lamps
            .iter()
            .filter_map(|l| l.slc.as_ref().map(|s| (s.id.as_str(), l.at.as_str()))),
        issues,
    );

    let profile_of =
        |name: &str, kind: DeviceKind, at: &str, issues: &mut Vec<ConfigIssue>| match profiles
            .get(name)
        {
            Some(p) if p.kind == kind => Some(p.clone()),
            Some(_) => {
                issues.push(ConfigIssue::new(
                    at,
                    format!("profile `{name}` is not a {kind:?} profile"),
                ));
                None
            }
            None => {
                issues.push(ConfigIssue::new(at, format!("unknown profile `{name}`")));
                None
            }
        };

    let mut endpoints = Endpoints::default();

    for (ci, c) in inv.cabinets.iter().enumerate() {
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
        if let Some(ep) = &c.endpoint {
            if !valid_endpoint(ep) {
                issues.push(ConfigIssue::new(
                    &c.at,
                    format!("endpoint `{ep}` is not host:port"),
                ));
            }
        }
        let Some(rtu) = &c.rtu else { continue };
        if !valid_unit(rtu.unit) {
            issues.push(ConfigIssue::new(
                &c.at,
                format!("RTU `{}`: unit id {} is outside 1..=247", rtu.id, rtu.unit),
            ));
        }
        let profile = profile_of(&rtu.profile, DeviceKind::Rtu, &c.at, issues);
        if let Some(p) = &profile {
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
        let Some(ep) = &c.endpoint else {
            issues.push(ConfigIssue::new(
                &c.at,
                format!("RTU `{}` has no endpoint to poll", rtu.id),
            ));
            continue;
        };
        if let Some(profile) = profile {
            let e = endpoints.index(ep, c.framing, &c.at, issues);
            endpoints.list[e].devices.push(DeviceSlot {
                key: DeviceKey::Rtu(ci as u32),
                unit: rtu.unit,
                block_index: 0,
                profile,
            });
        }
    }

    for (li, l) in inv.lamps.iter().enumerate() {
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
        let Some(profile) = profile_of(&slc.profile, DeviceKind::Slc, &l.at, issues) else {
            continue;
        };
        let block_index = match (profile.layout, slc.index) {
            (Layout::Unit, None) => 0,
            (Layout::Unit, Some(_)) => {
                issues.push(ConfigIssue::new(
                    &l.at,
                    format!(
                        "SLC `{}`: slc_index is for block-layout profiles only",
                        slc.id
                    ),
                ));
                0
            }
            (Layout::Block { .. }, None) => {
                issues.push(ConfigIssue::new(
                    &l.at,
                    format!(
                        "SLC `{}`: profile `{}` needs slc_index",
                        slc.id, profile.name
                    ),
                ));
                continue;
            }
            (Layout::Block { .. }, Some(i)) => {
                let max = profile.max_block_index().unwrap_or(0);
                if i > max {
                    issues.push(ConfigIssue::new(
                        &l.at,
                        format!(
                            "SLC `{}`: slc_index {i} is beyond the last block {max}",
                            slc.id
                        ),
                    ));
                    continue;
                }
                i
            }
        };
        let Some(ep) = &c.endpoint else {
            issues.push(ConfigIssue::new(
                &l.at,
                format!("SLC `{}`: cabinet `{}` has no endpoint", slc.id, c.id),
            ));
            continue;
        };
        let e = endpoints.index(ep, c.framing, &l.at, issues);
        endpoints.list[e].devices.push(DeviceSlot {
            key: DeviceKey::Lamp(li as u32),
            unit: slc.unit,
            block_index,
            profile,
        });
    }

    for ep in &endpoints.list {
        clashes(inv, ep, issues);
    }
    let mut topology = Topology {
        endpoints: endpoints.list,
    };
    topology.plan(max_gap);
    topology
}

/// Endpoints in order of first mention, found by address.
#[derive(Default)]
struct Endpoints {
    list: Vec<EndpointSpec>,
    by_address: HashMap<String, usize>,
}

impl Endpoints {
    fn index(
        &mut self,
        addr: &str,
        framing: Framing,
        at: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> usize {
        let list = &mut self.list;
        let i = *self.by_address.entry(addr.to_string()).or_insert_with(|| {
            list.push(EndpointSpec {
                address: addr.to_string(),
                framing,
                devices: Vec::new(),
                reads: Vec::new(),
            });
            list.len() - 1
        });
        if list[i].framing != framing {
            issues.push(ConfigIssue::new(
                at,
                format!("endpoint {addr} is used with two framings (tcp and rtu-over-tcp)"),
            ));
        }
        i
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
