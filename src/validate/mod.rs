//! Whole-configuration validation: settings, inventory and profiles checked
//! together, every problem reported at once with where it is.
//!
//! One file per thing checked: [`settings`] (keys, tokens, the dial-in
//! listener that `dtu:` endpoints need, groups, the schedule's book),
//! [`places`] (TLS files, runtime-data folders; the store with
//! `check-config --probe`), [`cabinets`], [`lamps`], and
//! [`endpoints`] (devices that would read each other's registers). Building what is polled is the topology's
//! ([`Topology::build`]); this module only checks.

mod cabinets;
mod endpoints;
mod lamps;
mod places;
mod roads;
mod settings;

pub use places::{store as probe_store, STORE_PROBE_TIMEOUT};

use crate::inventory::{self, ConfigIssue, Inventory};
use crate::settings::Settings;
use crate::topology::Topology;
use lamp_profile::Profile;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Everything the gateway runs on, checked.
#[derive(Debug)]
pub struct Loaded {
    pub inventory: Arc<Inventory>,
    pub profiles: BTreeMap<String, Arc<Profile>>,
    pub topology: Topology,
    /// The groups set through the API, as `control.groups_file` keeps them.
    pub saved_groups: Vec<crate::control::GroupConfig>,
}

/// Loads profiles and inventory named by the settings and checks them all.
pub fn load(settings: &Settings) -> Result<Loaded, Vec<ConfigIssue>> {
    let mut issues = settings::check(settings);
    places::check(settings, &mut issues);
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
    settings::tokens(settings, &inventory, &mut issues);
    settings::dialin(settings, &inventory, &mut issues);
    let saved_groups = settings::groups(settings, &inventory, &mut issues);
    settings::schedule(settings, &inventory, &saved_groups, &mut issues);
    settings::alarms(settings, &inventory, &mut issues);
    settings::figures(settings, &inventory, &mut issues);
    // What the MQTT mirror refuses at start, reported here with file:line so
    // `check-config` refuses what `run` would.
    if !matches!(settings.mqtt.url, crate::mqtt::BrokerChoice::None) {
        issues.extend(crate::mqtt::topic_id_problems(
            &inventory,
            &settings.gateway.id,
        ));
    }
    if issues.is_empty() {
        Ok(Loaded {
            inventory: Arc::new(inventory),
            profiles,
            topology,
            saved_groups,
        })
    } else {
        Err(issues)
    }
}

/// Cross-checks the inventory against itself and the profiles, builds the
/// topology of endpoints and the devices behind them, and checks that.
pub fn check(
    inv: &Inventory,
    profiles: &BTreeMap<String, Arc<Profile>>,
    max_gap: u16,
    issues: &mut Vec<ConfigIssue>,
) -> Topology {
    unique_ids(inv, issues);
    cabinets::check(inv, profiles, issues);
    lamps::check(inv, issues);
    roads::check(inv, issues);
    let topology = Topology::build(inv, profiles, max_gap, issues);
    endpoints::check(inv, &topology, issues);
    topology
}

/// Every district, cabinet, lamp, RTU and SLC id is used once.
fn unique_ids(inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
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

/// Modbus unit ids a device may have (0 is broadcast, 248..=255 reserved).
fn valid_unit(unit: u8) -> bool {
    (1..=247).contains(&unit)
}
