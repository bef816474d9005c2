//! The `[control]` settings: retries, write queues and the configured groups.

use serde::Deserialize;
use std::path::PathBuf;

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
    /// The overrides waiting for their `expires_at` (what each lamp goes
    /// back to), JSON, relative to `paths.data`: a restart re-arms them.
    pub overrides_file: PathBuf,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            write_queue: 4096,
            groups: Vec::new(),
            overrides_file: PathBuf::from("overrides.json"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub name: String,
    pub lamps: Vec<String>,
}
