//! The `[api]` settings: where the HTTP API listens, and how much of the
//! machine it may take from polling.

use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    pub listen: SocketAddr,
    /// `/api/v1` requests answered at once; one more is refused at once
    /// with 503 and `Retry-After` (`/healthz`, `/readyz`, `/metrics` are not
    /// counted: probes and scrapes must answer under load).
    pub max_concurrent: usize,
    /// How long the lamp list pages and the figures now (`/api/v1/metrics/…`
    /// and `/metrics`) are reused; a confirmed command makes them stale at
    /// once. 0 computes them for every request.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Worker threads of the API's own runtime (the pollers keep theirs).
    pub threads: usize,
    /// The scheduling niceness (0–19) of the API's threads: when the CPU is
    /// short, the kernel gives it to polling first. 0 = the same as polling.
    pub nice: i32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
            max_concurrent: 32,
            cache_ttl: Duration::from_secs(1),
            threads: 2,
            nice: 10,
        }
    }
}

impl ApiSettings {
    /// Values that parse but make no sense, by key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(1..=10_000).contains(&self.max_concurrent) {
            out.push((
                "api.max_concurrent".into(),
                format!("must be 1..=10000, got {}", self.max_concurrent),
            ));
        }
        if self.cache_ttl > Duration::from_secs(60) {
            out.push((
                "api.cache_ttl".into(),
                format!(
                    "must be at most 60s, got {}",
                    humantime::format_duration(self.cache_ttl)
                ),
            ));
        }
        if !(1..=64).contains(&self.threads) {
            out.push((
                "api.threads".into(),
                format!("must be 1..=64, got {}", self.threads),
            ));
        }
        if !(0..=19).contains(&self.nice) {
            out.push((
                "api.nice".into(),
                format!("must be 0..=19, got {}", self.nice),
            ));
        }
        out
    }
}
