//! Settings that parse but make no sense, and API tokens, which need the
//! inventory's districts.

use crate::inventory::{ConfigIssue, Inventory};
use crate::settings::Settings;

pub(super) fn check(settings: &Settings) -> Vec<ConfigIssue> {
    settings
        .problems()
        .into_iter()
        .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg))
        .collect()
}

pub(super) fn tokens(settings: &Settings, inv: &Inventory, issues: &mut Vec<ConfigIssue>) {
    issues.extend(
        crate::auth::problems(&settings.auth.tokens, |d| inv.district(d).is_some())
            .into_iter()
            .map(|(key, msg)| ConfigIssue::new(format!("settings {key}"), msg)),
    );
}
