//! The files and folders the settings name, checked as `run` would meet
//! them: the MQTT link's TLS files read and parsed as PEM (the API has no
//! TLS settings: it is served as plain HTTP behind a proxy), and the
//! runtime-data folders writable, or creatable where they are missing. And,
//! for `check-config --probe` only, the store opened for writing
//! ([`store`]): it reaches the database, which a start does not need
//! (the gateway polls and spools while the database is away).

use crate::inventory::ConfigIssue;
use crate::settings::Settings;
use crate::store::{Backend, Db};
use std::path::Path;
use std::time::Duration;

pub(super) fn check(settings: &Settings, issues: &mut Vec<ConfigIssue>) {
    for (key, problem) in settings.mqtt.tls_file_problems() {
        issues.push(ConfigIssue::new(format!("settings {key}"), problem));
    }
    let mut folders: Vec<(&str, &Path)> = Vec::new();
    if let Some(data) = &settings.paths.data {
        folders.push(("paths.data", data));
    }
    if !matches!(settings.store.url, Backend::Disabled) {
        folders.push(("store.spool_dir", &settings.store.spool_dir));
    }
    if let Backend::Sqlite(path) = &settings.store.url {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        folders.push(("store.url", dir.unwrap_or(Path::new("."))));
    }
    if !matches!(settings.mqtt.url, crate::mqtt::BrokerChoice::None) {
        folders.push(("mqtt.spill_dir", &settings.mqtt.spill_dir));
    }
    for (key, dir) in folders {
        if let Err(e) = writable_folder(dir) {
            issues.push(ConfigIssue::new(format!("settings {key}"), e));
        }
    }
}

/// `dir` is a folder a file can be made in, or it is missing and its
/// nearest existing ancestor is such a folder (the gateway makes the rest).
/// Tried with a temporary file, removed at once: the rights the process
/// really has, read-only mounts included.
fn writable_folder(dir: &Path) -> Result<(), String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(format!(
                    "{} cannot be a folder: {} is a file",
                    dir.display(),
                    at.display()
                ))
            }
            // Missing, or under a file (the file is found on the way up).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                at = match at.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
            }
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    match tempfile::Builder::new()
        .prefix(".lampgw-check-")
        .tempfile_in(at)
    {
        Ok(_) => Ok(()),
        Err(e) if at == dir => Err(format!("folder {} is not writable: {e}", dir.display())),
        Err(e) => Err(format!(
            "folder {} is missing and cannot be made in {}: {e}",
            dir.display(),
            at.display()
        )),
    }
}

/// How long the store may take to answer `check-config --probe`.
pub const STORE_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The store opened for writing within [`STORE_PROBE_TIMEOUT`]: an SQLite
/// file that exists must be a database it can write (a missing one is made
/// at start, in a folder [`check`] has checked); PostgreSQL must connect.
pub async fn store(settings: &Settings) -> Vec<ConfigIssue> {
    let url = &settings.store.url;
    if let Backend::Sqlite(path) = url {
        if !path.exists() {
            return Vec::new();
        }
    }
    let problem = |detail: String| {
        vec![ConfigIssue::new(
            "settings store.url",
            format!("cannot open {url} for writing: {detail}"),
        )]
    };
    let db = match Db::connect_lazy(url, 1) {
        Ok(Some(db)) => db,
        Ok(None) => return Vec::new(),
        Err(e) => return problem(e.to_string()),
    };
    match tokio::time::timeout(STORE_PROBE_TIMEOUT, db.check_writable()).await {
        Ok(Ok(())) => Vec::new(),
        Ok(Err(e)) => problem(e.to_string()),
        Err(_) => problem(format!(
            "no answer within {}",
            humantime::format_duration(STORE_PROBE_TIMEOUT)
        )),
    }
}
