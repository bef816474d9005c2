//! Writing a file whole (and reading it back, absent as nothing): the bytes go to a temporary file in the same
//! folder, are synced, and the temporary file is renamed over the old one,
//! so a crash or a full disk leaves the old file or the new one, never half
//! of either. Every file the gateway rewrites in place (the schedule's book
//! and holds, the open alarms, the API's groups, the console's users) is
//! written here.

use std::io::Write;
use std::path::Path;

/// Reads a file written here; `None` where it does not exist yet (every
/// such file starts absent: no groups, no holds, no overrides).
pub fn read_if_present(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` atomically (the folder is created if missing).
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, bytes, None)
}

/// As [`write`], readable and writable by the owner only (0600 on Unix):
/// for files with secrets, set before the rename so no reader ever sees
/// the file with wider rights.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(path, bytes, Some(0o600))
}

fn write_with(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    // On failure the temporary file is dropped, which removes it.
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_whole_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.json");
        super::write(&path, b"first").unwrap();
        super::write(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.json"]);
    }

    #[test]
    fn a_failed_rename_keeps_the_old_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty folder where the file should be: the rename fails.
        let path = dir.path().join("x.json");
        std::fs::create_dir_all(path.join("inside")).unwrap();
        assert!(super::write(&path, b"new").is_err());
        assert!(path.join("inside").is_dir());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
