//! The `[store]` settings: where samples go and how they are batched, spooled
//! and kept.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `sqlite://PATH` (relative to the settings file's folder), `postgres://...`,
    /// or `none` to keep no history.
    pub url: String,
    /// Rows per write statement group; a flush happens when this many rows wait.
    pub batch_size: usize,
    /// Longest time a row waits in memory before it is written.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Rows kept in memory while the database is slow; past this they go to the spool.
    pub queue_rows: usize,
    /// Batches between the state task and the store's intake.
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
    /// On shutdown, how long the store may keep writing before the rest is spooled.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://lampgw.db".into(),
            batch_size: 5000,
            flush_interval: Duration::from_secs(1),
            queue_rows: 200_000,
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
        }
    }
}

/// Which database the URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
    Disabled,
}

impl StoreSettings {
    pub fn backend(&self) -> Result<Backend, String> {
        let url = self.url.trim();
        if url == "none" {
            Ok(Backend::Disabled)
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("`sqlite://` needs a file path".into());
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres(url.to_string()))
        } else {
            Err(format!(
                "`{url}` is not `sqlite://PATH`, `postgres://...` or `none`"
            ))
        }
    }

    /// Makes the SQLite path and the spool folder relative to `base`, the
    /// settings file's folder, as `paths.*` are.
    pub fn rebase(&mut self, base: &Path) {
        if let Ok(Backend::Sqlite(path)) = self.backend() {
            if path.is_relative() {
                self.url = format!("sqlite://{}", base.join(path).display());
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
        need(self.channel >= 1, "channel", "must be at least 1");
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
        if let Err(e) = self.backend() {
            out.push(("store.url".into(), e));
        }
        out
    }
}
