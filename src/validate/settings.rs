//! Settings that parse but make no sense, API tokens, which need the
//! inventory's districts, and the dial-in listener, which its `dtu:`
//! endpoints need.

use crate::control::GroupConfig;
use crate::inventory::{ConfigIssue, Inventory};
use crate::settings::Settings;

pub(super) fn check(settings: &Settings) -> Vec<ConfigIssue> {
    let mut issues: Vec<ConfigIssue> = settings
        .problems()
        .into_iter()
        .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg))
        .collect();
    cluster(settings, &mut issues);
    issues
}

/// Cluster mode shares out the endpoints by leases in PostgreSQL, and the
/// instances' figures come from one shared store: it needs `postgres://`.
fn cluster(settings: &Settings, issues: &mut Vec<ConfigIssue>) {
    use crate::store::Backend;
    if settings.cluster.enabled && !matches!(settings.store.url, Backend::Postgres(_)) {
        issues.push(ConfigIssue::new(
            "settings cluster.enabled",
            format!(
                "cluster mode needs PostgreSQL as the shared store (store.url = \"postgres://…\"), not `{}`",
                settings.store.url
            ),
        ));
    }
}

pub(super) fn tokens(settings: &Settings, inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
    issues.extend(
        crate::auth::problems(&settings.auth.tokens, |d| inv.district(d).is_some())
            .into_iter()
            .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg)),
    );
}

/// Alarm settings, whose per-district rules and webhook filters name the
/// inventory's districts.
pub(super) fn alarms(settings: &Settings, inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
    let districts: Vec<&str> = inv.districts.iter().map(|d| d.id.as_str()).collect();
    issues.extend(
        settings
            .alarms
            .problems(&districts)
            .into_iter()
            .chain(crate::alarm::webhook::problems(&settings.alarms.webhooks))
            .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg)),
    );
}

/// The energy baselines, which name the inventory's districts.
pub(super) fn figures(settings: &Settings, inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
    issues.extend(
        settings
            .figures
            .energy
            .problems(|d| inv.district(d).is_some())
            .into_iter()
            .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg)),
    );
}

/// The groups the settings define: a name as the API takes one, lamps the
/// inventory has (a reload checks them against the new inventory). Then
/// those set through the API, read from `control.groups_file` and
/// returned: a file that does not read, or a name the settings define too,
/// is a problem; lamps gone from the inventory are not (the control drops
/// them with a warning).
pub(super) fn groups(
    settings: &Settings,
    inv: &Inventory,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<GroupConfig> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, g) in settings.control.groups.iter().enumerate() {
        let at = format!("settings control.groups[{i}]");
        if let Err(e) = crate::control::check_name(&g.name) {
            issues.push(ConfigIssue::new(&at, format!("name: {e}")));
        } else if !seen.insert(g.name.as_str()) {
            issues.push(ConfigIssue::new(
                &at,
                format!("group `{}` is defined twice", g.name),
            ));
        }
        if let Some(bad) = g.lamps.iter().find(|l| inv.lamp_position(l).is_none()) {
            issues.push(ConfigIssue::new(
                &at,
                format!("group `{}`: unknown lamp `{bad}`", g.name),
            ));
        }
    }
    let file = &settings.control.groups_file;
    let saved = match crate::control::groups::load(file) {
        Ok(saved) => saved,
        Err(e) => {
            issues.push(ConfigIssue::new(
                "settings control.groups_file",
                e.to_string(),
            ));
            return Vec::new();
        }
    };
    for g in &saved {
        if seen.contains(g.name.as_str()) {
            issues.push(ConfigIssue::new(
                format!("groups file {}", file.display()),
                format!(
                    "group `{}` is also in [[control.groups]] of the settings: keep it in one of them",
                    g.name
                ),
            ));
        }
    }
    saved
}

/// The schedule's book: every object checked, and its scopes and groups
/// against the inventory and the groups (the settings' and those the API
/// set, from the groups file).
pub(super) fn schedule(
    settings: &Settings,
    inv: &Inventory,
    saved_groups: &[GroupConfig],
    issues: &mut Vec<ConfigIssue>,
) {
    if !settings.schedule.enabled {
        return;
    }
    let at = format!("schedule {}", settings.schedule.file.display());
    let book = match crate::schedule::engine::load_book(&settings.schedule.file) {
        Ok(b) => b,
        Err(e) => {
            issues.push(ConfigIssue::new(&at, e.to_string()));
            return;
        }
    };
    // The groups the control will have: the settings' and the API's.
    let groups = settings
        .control
        .groups
        .iter()
        .chain(saved_groups)
        .map(|g| (g.name.clone(), g.lamps.clone()))
        .collect();
    let mut problems = book.problems();
    problems.extend(crate::schedule::plan::Plan::check_scopes(
        &book, inv, &groups,
    ));
    issues.extend(problems.into_iter().map(|p| ConfigIssue::new(&at, p)));
}

/// `dtu:<id>` endpoints need `[dialin] listen` (else their pollers wait for
/// a connection that cannot come). The id itself is checked where the
/// endpoint cell is parsed (inventory/endpoint.rs).
pub(super) fn dialin(settings: &Settings, inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
    let dtus: Vec<(&str, &str)> = inv
        .cabinets
        .iter()
        .filter_map(|c| {
            let id = c.dtu_id()?;
            Some((id, c.at.as_str()))
        })
        .collect();
    if let (Some(&(id, at)), None) = (dtus.first(), &settings.dialin.listen) {
        let more = match dtus.len() - 1 {
            0 => String::new(),
            n => format!(" (and {n} more)"),
        };
        issues.push(ConfigIssue::new(
            at,
            format!("endpoint `dtu:{id}`{more} is a dial-in DTU, but `dialin.listen` is not set"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Cabinet, Framing};

    fn cabinet(line: usize, endpoint: &str) -> Cabinet {
        Cabinet {
            at: format!("cabinets.csv:{line}"),
            id: format!("CAB-{line}"),
            district: "D01".into(),
            name: String::new(),
            lat: None,
            lon: None,
            circuits: 1,
            endpoint: Some(endpoint.into()),
            link: endpoint.parse().ok(),
            framing: Framing::Rtu,
            rtu: None,
        }
    }

    fn issues(settings: &Settings, endpoints: &[&str]) -> Vec<String> {
        let cabinets = endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| cabinet(i + 2, e))
            .collect();
        let inv = Inventory::new(Vec::new(), cabinets, Vec::new());
        let mut out = Vec::new();
        dialin(settings, &inv, &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn dialin_endpoints_need_a_listener() {
        let mut s = Settings::default();
        let eps = [
            "10.0.0.1:502",
            "dtu:JN-CAB-0042",
            "dtu:JN-CAB-0043?request_gap=20ms",
        ];
        assert_eq!(
            issues(&s, &eps),
            [
                "cabinets.csv:3: endpoint `dtu:JN-CAB-0042` (and 1 more) is a dial-in DTU, \
              but `dialin.listen` is not set"
            ]
        );
        assert!(issues(&s, &eps[..1]).is_empty());
        s.dialin.listen = Some("0.0.0.0:9502".into());
        assert!(issues(&s, &eps).is_empty());
    }
}
