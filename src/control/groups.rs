//! The groups set through `PUT /api/v1/groups/{name}`, kept in
//! `control.groups_file` (`groups.json` in `paths.data`) so that they
//! outlive a restart. The file holds only those groups (the settings' own
//! stay in `[[control.groups]]`), is written whole (`atomic_file`) before
//! the change counts, and is read once at start by `validate::load`, which
//! checks it with the rest of the configuration.

use super::{check_name, GroupConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The file's shape: `{"groups": [{"name": …, "lamps": [ids]}]}`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsFile {
    groups: Vec<GroupConfig>,
}

/// Why the groups file cannot be read or written, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum GroupsFileError {
    #[error("groups file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("cannot write the groups file {path}: {detail}")]
    Write { path: String, detail: String },
}

/// Reads the groups file; absent is no groups. Names follow [`check_name`]
/// and appear once; the lamps are not checked here (a group whose lamps
/// left the inventory keeps the others: [`super::Control`] drops the rest
/// with a warning).
pub fn load(path: &Path) -> Result<Vec<GroupConfig>, GroupsFileError> {
    let read = |detail: String| GroupsFileError::Read {
        path: path.display().to_string(),
        detail,
    };
    let Some(bytes) = crate::atomic_file::read_if_present(path).map_err(|e| read(e.to_string()))?
    else {
        return Ok(Vec::new());
    };
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let file: GroupsFile = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| read(format!("{}: {}", e.path(), e.inner())))?;
    let mut seen = std::collections::BTreeSet::new();
    for (i, g) in file.groups.iter().enumerate() {
        check_name(&g.name).map_err(|e| read(format!("groups[{i}].name: {e}")))?;
        if !seen.insert(g.name.as_str()) {
            return Err(read(format!(
                "groups[{i}]: group `{}` appears twice",
                g.name
            )));
        }
    }
    Ok(file.groups)
}

/// Writes `groups` (name → lamps) whole; the old file stays if this fails.
pub(super) fn save(
    path: &Path,
    groups: &BTreeMap<String, Vec<String>>,
) -> Result<(), GroupsFileError> {
    let file = GroupsFile {
        groups: groups
            .iter()
            .map(|(name, lamps)| GroupConfig {
                name: name.clone(),
                lamps: lamps.clone(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec_pretty(&file).expect("plain data");
    crate::atomic_file::write(path, &bytes).map_err(|e| GroupsFileError::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_groups_load_back_and_absent_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("groups.json");
        assert!(load(&path).unwrap().is_empty());
        let groups = BTreeMap::from([
            ("b".to_string(), vec!["L-2".to_string()]),
            ("a".to_string(), vec!["L-1".to_string(), "L-3".to_string()]),
        ]);
        save(&path, &groups).unwrap();
        let back: BTreeMap<String, Vec<String>> = load(&path)
            .unwrap()
            .into_iter()
            .map(|g| (g.name, g.lamps))
            .collect();
        assert_eq!(back, groups);
    }

    #[test]
    fn a_bad_file_names_itself_and_the_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("groups.json");
        for (text, says) in [
            (
                r#"{"groups": [{"name": "a", "lamps": 3}]}"#,
                "groups[0].lamps",
            ),
            (
                r#"{"groups": [{"name": "a<b>", "lamps": []}]}"#,
                "groups[0].name",
            ),
            (
                r#"{"groups": [{"name": "a", "lamps": []}, {"name": "a", "lamps": []}]}"#,
                "appears twice",
            ),
            (r#"{"groups": [], "extra": 1}"#, "extra"),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = load(&path).unwrap_err().to_string();
            assert!(e.contains("groups.json") && e.contains(says), "{e}");
        }
    }
}
