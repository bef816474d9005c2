//! The overrides waiting for their `expires_at`, kept in a file so that a
//! restart re-arms them (`control.overrides_file`): per command, when it
//! expires and what each lamp it still holds goes back to. A lamp leaves
//! its entry when a newer command touches it (last command wins), an entry
//! leaves the file when it expires; every change is written whole, through
//! a temporary file and a rename.

use super::Action;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// One override: when it expires and what its lamps go back to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub expires_at: DateTime<Utc>,
    /// Lamp id → the action it goes back to.
    pub restore: Vec<(String, Action)>,
}

#[derive(Debug, Default)]
pub(super) struct Overrides {
    /// Where they are kept; `None` (a control without a data folder, as in
    /// unit tests): in memory only.
    path: Option<PathBuf>,
    /// By command id.
    pub(super) pending: BTreeMap<String, Pending>,
}

#[derive(Debug, thiserror::Error)]
#[error("overrides file {path}: {detail}")]
pub struct OverridesError {
    pub path: String,
    pub detail: String,
}

impl Overrides {
    /// Reads the file (absent: none) and keeps every change in it from now.
    pub(super) fn open(&mut self, path: &Path) -> Result<(), OverridesError> {
        let err = |detail: String| OverridesError {
            path: path.display().to_string(),
            detail,
        };
        let mut pending: BTreeMap<String, Pending> =
            match crate::atomic_file::read_if_present(path).map_err(|e| err(e.to_string()))? {
                Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?,
                None => BTreeMap::new(),
            };
        // Any set before the file was opened are kept too.
        let before = std::mem::take(&mut self.pending);
        let more = !before.is_empty();
        pending.extend(before);
        self.pending = pending;
        self.path = Some(path.to_path_buf());
        if more {
            self.save();
        }
        Ok(())
    }

    pub(super) fn add(&mut self, id: &str, pending: Pending) {
        self.pending.insert(id.to_string(), pending);
        self.save();
    }

    /// A newer command `id` touches `lamps`: no older override restores
    /// them.
    pub(super) fn touched(&mut self, id: &str, lamps: &[&str]) {
        if self.pending.is_empty() {
            return;
        }
        let lamps: HashSet<&str> = lamps.iter().copied().collect();
        let mut changed = false;
        self.pending.retain(|other, p| {
            if other == id {
                return true;
            }
            let before = p.restore.len();
            p.restore.retain(|(lamp, _)| !lamps.contains(lamp.as_str()));
            changed |= p.restore.len() != before;
            !p.restore.is_empty()
        });
        if changed {
            self.save();
        }
    }

    /// The override `id` expired (or was carried out).
    pub(super) fn done(&mut self, id: &str) {
        if self.pending.remove(id).is_some() {
            self.save();
        }
    }

    fn save(&self) {
        let Some(path) = &self.path else { return };
        let bytes = serde_json::to_vec_pretty(&self.pending).expect("plain data");
        if let Err(e) = crate::atomic_file::write(path, &bytes) {
            tracing::error!(path = %path.display(), error = %e, "cannot keep the overrides: a restart would not re-arm them");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(lamps: &[&str]) -> Pending {
        Pending {
            expires_at: "2026-12-21T15:00:00Z".parse().unwrap(),
            restore: lamps.iter().map(|l| (l.to_string(), Action::On)).collect(),
        }
    }

    #[test]
    fn a_newer_command_takes_its_lamps_out_and_the_file_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.json");
        let mut o = Overrides::default();
        // Set before the file is opened: kept, and written once it is.
        o.add("cmd-0", pending(&["L0"]));
        o.open(&path).unwrap();
        o.add("cmd-1", pending(&["L1", "L2"]));
        o.add("cmd-2", pending(&["L3"]));
        o.touched("cmd-3", &["L2", "L3"]);
        // Its own lamps stay with the command that set them.
        o.touched("cmd-1", &["L1"]);
        o.done("cmd-0");
        let mut again = Overrides::default();
        again.open(&path).unwrap();
        assert_eq!(again.pending.len(), 1, "{:?}", again.pending);
        assert_eq!(again.pending["cmd-1"], pending(&["L1"]));
    }

    #[test]
    fn a_damaged_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("overrides.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = Overrides::default().open(&path).unwrap_err();
        assert!(e.to_string().contains("overrides.json"), "{e}");
        // Absent is none.
        let mut o = Overrides::default();
        o.open(&dir.path().join("absent.json")).unwrap();
        assert!(o.pending.is_empty());
        assert!(!dir.path().join("absent.json").exists(), "nothing to write");
    }
}
