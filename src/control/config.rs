//! The `[control]` settings: retries, write queues, the configured groups,
//! the file that keeps the groups set through the API and the one that
//! keeps the overrides waiting for their expiry.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSettings {
    /// Tries per target when the connection fails or times out (an
    /// exception or a wrong read-back is not retried: the device answered).
    pub max_attempts: u32,
    /// Capacity of each endpoint's write queue.
    pub write_queue: usize,
    /// Named groups of lamps; more can be defined through the API.
    pub groups: Vec<GroupConfig>,
    /// Where the groups defined through the API are kept (relative to
    /// `paths.data`).
    pub groups_file: PathBuf,
    /// The overrides waiting for their `expires_at` (what each lamp goes
    /// back to), JSON, relative to `paths.data`: a restart re-arms them.
    pub overrides_file: PathBuf,
}

impl ControlSettings {
    /// Takes a relative `groups_file` and `overrides_file` from the data
    /// folder.
    pub fn rebase(&mut self, data: &Path) {
        for file in [&mut self.groups_file, &mut self.overrides_file] {
            if file.is_relative() {
                *file = data.join(&*file);
            }
        }
    }
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            write_queue: 4096,
            groups: Vec::new(),
            groups_file: "groups.json".into(),
            overrides_file: PathBuf::from("overrides.json"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    pub lamps: Vec<String>,
}
