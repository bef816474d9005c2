//! The `[store]` settings: where samples go and how they are batched, spooled
//! and kept.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite://PATH` (relative to the settings file's folder), `postgres://...`,
    /// or `none` to keep no history.
    pub url: Backend,
    /// Rows per write statement group; a flush happens when this many rows wait.
    pub batch_size: usize,
    /// Longest time a row waits in memory before it is written.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Rows whose copy is kept in memory while they wait for the database
    /// (every row is in the spool from the moment it is taken); past this
    /// they are on disk only and read back.
    pub queue_rows: usize,
    /// Rows kept in memory at most while the spool cannot be written (its
    /// disk full); past this new rows are dropped and counted. Unset: four
    /// times `queue_rows`.
    pub queue_rows_max: Option<usize>,
    /// Ignored: there is no intake channel any more (the state task appends
    /// each batch to the spool itself). Accepted so that settings files
    /// which set it still load.
    pub channel: usize,
    /// Folder of the append-only spool (relative to the settings file's folder).
    pub spool_dir: PathBuf,
    /// Days of raw samples kept; hourly rollups are kept for good.
    pub retention_days: u32,
    /// How often rollups, retention and partition upkeep run.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// How often the gateway run's heartbeat is written.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A write that takes longer counts as failed (the rows are kept and retried).
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Longest wait between retries while the database is away.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Database connections of the pool.
    pub max_connections: u32,
    /// PostgreSQL: daily partitions created ahead of today.
    pub partitions_ahead_days: u32,
    /// On shutdown, how long the store may keep writing before the rest is
    /// left in the spool.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Put every spool append on the device (`fdatasync`) before the state
    /// task goes on, and make SQLite commits durable (`synchronous = FULL`):
    /// a power cut then loses nothing either. Off, a process kill loses
    /// nothing (the page cache survives it); a power cut can lose what the
    /// kernel had not written back yet.
    pub fsync: bool,
}

impl StoreSettings {
    /// `queue_rows_max`, or four times `queue_rows` when unset.
    pub fn queue_rows_max(&self) -> usize {
        self.queue_rows_max
            .unwrap_or_else(|| self.queue_rows.saturating_mul(4))
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: Backend::Sqlite("lampgw.db".into()),
            batch_size: 5000,
            flush_interval: Duration::from_secs(1),
            queue_rows: 200_000,
            queue_rows_max: None,
            channel: 1024,
            spool_dir: "spool".into(),
            retention_days: 35,
            maintenance_interval: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            retry_max: Duration::from_secs(10),
            max_connections: 4,
            partitions_ahead_days: 3,
            shutdown_timeout: Duration::from_secs(10),
            fsync: false,
        }
    }
}

/// Which database `store.url` names.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "String")]
pub enum Backend {
    Sqlite(PathBuf),
    /// The whole URL is kept secret, as it may carry the password; its
    /// `Display` shows it with the password masked.
    Postgres(SecretString),
    Disabled,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url = url.trim();
        if url == "none" {
            Ok(Backend::Disabled)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("`sqlite://` needs a file path".into());
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(url.into()))
        } else {
            // Not echoed: a mistyped scheme may still carry a password.
            Err("the URL is not `sqlite://PATH`, `postgres://...` or `none`".into())
        }
    }
}

impl TryFrom<String> for Backend {
    type Error = String;
    fn try_from(url: String) -> Result<Self, Self::Error> {
        url.parse()
    }
}

/// The URL as it may be logged: a PostgreSQL password shows as `***`.
impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Backend::Postgres(url) => f.write_str(&masked(url.expose_secret())),
            Backend::Disabled => f.write_str("none"),
        }
    }
}

/// `scheme://user:password@rest` with the password replaced by `***`.
fn masked(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl StoreSettings {
    /// Makes the SQLite path and the spool folder relative to `base`, the
    /// settings file's folder, as `paths.*` are.
    pub fn rebase(&mut self, base: &Path) {
        if let Backend::Sqlite(path) = &mut self.url {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        if self.spool_dir.is_relative() {
            self.spool_dir = base.join(&self.spool_dir);
        }
    }

    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut need = |ok: bool, key: &str, msg: &str| {
            if !ok {
                out.push((format!("store.{key}"), msg.to_string()));
            }
        };
        need(self.batch_size >= 1, "batch_size", "must be at least 1");
        need(
            !self.flush_interval.is_zero(),
            "flush_interval",
            "must be above zero",
        );
        need(self.queue_rows >= 1, "queue_rows", "must be at least 1");
        need(
            self.queue_rows_max.is_none_or(|m| m >= self.queue_rows),
            "queue_rows_max",
            "must be at least store.queue_rows",
        );
        need(
            self.retention_days >= 1,
            "retention_days",
            "must be at least 1",
        );
        need(
            !self.maintenance_interval.is_zero(),
            "maintenance_interval",
            "must be above zero",
        );
        need(
            !self.heartbeat_interval.is_zero(),
            "heartbeat_interval",
            "must be above zero",
        );
        need(
            !self.write_timeout.is_zero(),
            "write_timeout",
            "must be above zero",
        );
        need(
            self.max_connections >= 1,
            "max_connections",
            "must be at least 1",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend_and_never_show_the_password() {
        let pg: Backend = "postgres://lamps:s3cret@db.city:5432/lamps"
            .parse()
            .unwrap();
        assert!(matches!(pg, Backend::Postgres(_)));
        assert_eq!(pg.to_string(), "postgres://lamps:***@db.city:5432/lamps");
        assert!(!format!("{pg:?}").contains("s3cret"));
        assert!(matches!(
            "sqlite://a/b.db".parse(),
            Ok(Backend::Sqlite(p)) if p == Path::new("a/b.db")
        ));
        assert!(matches!("none".parse(), Ok(Backend::Disabled)));
        assert!("sqlite://".parse::<Backend>().is_err());
        let err = "mysql://u:s3cret@x".parse::<Backend>().unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
