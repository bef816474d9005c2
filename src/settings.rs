//! Typed settings: `config/default.toml`, then `LAMPGW__SECTION__KEY` environment
//! variables, then command-line flags.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub gateway: GatewaySettings,
    #[serde(default)]
    pub paths: PathSettings,
    #[serde(default)]
    pub api: ApiSettings,
    #[serde(default)]
    pub poll: PollSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub mqtt: crate::mqtt::MqttSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub control: crate::control::ControlSettings,
    #[serde(default)]
    pub store: crate::store::StoreSettings,
}

/// API tokens (`lamp-gateway token new` prints one with its hash).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    pub tokens: Vec<crate::auth::TokenConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Stable name of this gateway instance (MQTT presence, run records).
    pub id: String,
    /// The city's time zone for days and months in reports.
    pub time_zone: String,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            id: "lamp-gateway".into(),
            time_zone: "Asia/Shanghai".into(),
        }
    }
}

/// Folders of the inventory CSV files and profile TOML files. Relative paths
/// are taken from the folder of the settings file, so the gateway runs the same
/// from any working directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathSettings {
    pub inventory: PathBuf,
    pub profiles: PathBuf,
}

impl Default for PathSettings {
    fn default() -> Self {
        Self {
            inventory: "inventory".into(),
            profiles: "profiles".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    pub listen: SocketAddr,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollSettings {
    /// How often every single-lamp controller is read.
    #[serde(with = "humantime_serde")]
    pub slc_interval: Duration,
    /// How often every cabinet RTU is read.
    #[serde(with = "humantime_serde")]
    pub rtu_interval: Duration,
    /// Limit on one Modbus request; tokio-modbus has none of its own.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Consecutive failed polls after which a device counts as offline.
    pub offline_after: u32,
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// Unmapped registers a read may span to join two fields into one request.
    pub max_gap: u16,
    /// Capacity of the channel from the pollers to the live state.
    pub outcome_channel: usize,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            slc_interval: Duration::from_secs(10),
            rtu_interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            offline_after: 3,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            max_gap: 0,
            outcome_channel: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, overridden by RUST_LOG.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: "text".into(),
            level: "info,rumqttd=off".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings {path}: {source}")]
    Load {
        path: String,
        #[source]
        source: config::ConfigError,
    },
}

impl Settings {
    /// Reads a settings file (if given and present) and the environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("LAMPGW")
                .prefix_separator("__")
                .separator("__")
                // Values stay strings until their field's type asks for a
                // number: parsing up front would turn a password `007` into
                // `7` (numbers and durations still deserialize from strings).
                .try_parsing(false),
        );
        let shown = path.map_or("(environment)".to_string(), |p| p.display().to_string());
        let mut settings: Settings =
            builder
                .build()
                .and_then(|c| c.try_deserialize())
                .map_err(|source| SettingsError::Load {
                    path: shown,
                    source,
                })?;
        let base = path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        settings.paths.inventory = base.join(&settings.paths.inventory);
        settings.paths.profiles = base.join(&settings.paths.profiles);
        settings.store.rebase(&base);
        settings.mqtt.spill_dir = base.join(&settings.mqtt.spill_dir);
        // TLS files too, like every other path in the file.
        for file in [
            &mut settings.mqtt.ca_file,
            &mut settings.mqtt.client_cert,
            &mut settings.mqtt.client_key,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
        Ok(settings)
    }

    /// Checks values that parse but make no sense, naming each key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let p = &self.poll;
        let mut need = |ok: bool, key: &str, msg: &str| {
            if !ok {
                out.push((format!("poll.{key}"), msg.to_string()));
            }
        };
        need(p.offline_after >= 1, "offline_after", "must be at least 1");
        need(
            !p.request_timeout.is_zero(),
            "request_timeout",
            "must be above zero",
        );
        need(
            !p.connect_timeout.is_zero(),
            "connect_timeout",
            "must be above zero",
        );
        need(
            p.reconnect_min <= p.reconnect_max,
            "reconnect_min",
            "must not exceed reconnect_max",
        );
        need(
            p.outcome_channel >= 1,
            "outcome_channel",
            "must be at least 1",
        );
        if self.gateway.time_zone.parse::<chrono_tz::Tz>().is_err() {
            out.push((
                "gateway.time_zone".into(),
                format!("unknown time zone `{}`", self.gateway.time_zone),
            ));
        }
        out.extend(self.store.problems());
        if !matches!(self.log.format.as_str(), "text" | "json") {
            out.push(("log.format".into(), "must be `text` or `json`".into()));
        }
        out.extend(self.mqtt.problems());
        out
    }
}
