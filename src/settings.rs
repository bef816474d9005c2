//! Typed settings: `config/default.toml`, then `LAMPGW__SECTION__KEY` environment
//! variables, then command-line flags.
//!
//! Each subsystem owns its section's type (`poll::PollSettings`,
//! `store::StoreSettings`, ...); this module only composes them with the
//! gateway's own keys and loads the whole. Values are parsed as they load, so
//! a time zone, URL, format or duration that does not parse stops the load
//! with its key named; what parses but makes no sense is listed by
//! [`Settings::problems`].

use crate::api::ApiSettings;
use crate::auth::AuthSettings;
use crate::cluster::ClusterSettings;
use crate::console::ConsoleSettings;
use crate::control::ControlSettings;
use crate::dialin::DialInSettings;
use crate::figures::config::FiguresSettings;
use crate::mqtt::MqttSettings;
use crate::poll::PollSettings;
use crate::schedule::ScheduleSettings;
use crate::store::StoreSettings;
use crate::talq::TalqSettings;
use crate::telemetry::LogSettings;
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

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
    pub mqtt: MqttSettings,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub control: ControlSettings,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub dialin: DialInSettings,
    #[serde(default)]
    pub schedule: ScheduleSettings,
    #[serde(default)]
    pub alarms: crate::alarm::AlarmSettings,
    #[serde(default)]
    pub figures: FiguresSettings,
    #[serde(default)]
    pub console: ConsoleSettings,
    #[serde(default)]
    pub cluster: ClusterSettings,
    #[serde(default)]
    pub talq: TalqSettings,
    /// The file these settings were read from: what a reload reads again.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// An inventory folder the command line gave (`--inventory`): a reload
    /// keeps it over the file's `paths.inventory`.
    #[serde(skip)]
    pub pinned_inventory: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySettings {
    /// Stable name of this gateway instance (MQTT presence, run records).
    pub id: String,
    /// The city's time zone for days and months in reports (an IANA name).
    #[serde(deserialize_with = "time_zone")]
    pub time_zone: Tz,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            id: "lamp-gateway".into(),
            time_zone: chrono_tz::Asia::Shanghai,
        }
    }
}

fn time_zone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(d)?;
    name.parse()
        .map_err(|_| serde::de::Error::custom(format!("unknown time zone `{name}`")))
}

/// Folders of the inventory CSV files and profile TOML files. Relative paths
/// are taken from the folder of the settings file, so the gateway runs the same
/// from any working directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathSettings {
    pub inventory: PathBuf,
    pub profiles: PathBuf,
    /// Where runtime data goes: a relative SQLite `store.url`, `store.spool_dir`
    /// and `mqtt.spill_dir` are taken relative to it (and it to the settings
    /// file), so data stays out of the configuration folder. Unset: they are
    /// relative to the settings file, as every other path.
    pub data: Option<PathBuf>,
}

impl Default for PathSettings {
    fn default() -> Self {
        Self {
            inventory: "inventory".into(),
            profiles: "profiles".into(),
            data: None,
        }
    }
}

/// Why the settings did not load, blaming the settings file or the
/// `LAMPGW__…` environment variable at fault. The message is whole (the
/// config crate's cause is rendered into it, no source below), so a chain
/// printer shows it once.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings {path}: {detail}")]
    File { path: String, detail: String },
    #[error("environment variable {var}: {detail}")]
    Environment { var: String, detail: String },
}

const ENV_PREFIX: &str = "LAMPGW__";

fn environment(vars: Option<config::Map<String, String>>) -> config::Environment {
    config::Environment::with_prefix("LAMPGW")
        .prefix_separator("__")
        .separator("__")
        // Values stay strings until their field's type asks for a
        // number: parsing up front would turn a password `007` into
        // `7` (numbers and durations still deserialize from strings).
        .try_parsing(false)
        .source(vars)
}

fn build(path: Option<&Path>, env: config::Environment) -> Result<Settings, config::ConfigError> {
    let mut builder = config::Config::builder();
    if let Some(path) = path {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    builder
        .add_source(env)
        .build()
        .and_then(|c| c.try_deserialize())
}

impl Settings {
    /// Reads a settings file (if given and present) and the environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
        let loaded = build(path, environment(None));
        let mut settings = match loaded {
            Ok(s) => s,
            Err(e) => return Err(blame(path, e)),
        };
        let base = path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        settings.paths.inventory = base.join(&settings.paths.inventory);
        settings.paths.profiles = base.join(&settings.paths.profiles);
        let data = match &settings.paths.data {
            Some(dir) => base.join(dir),
            None => base.clone(),
        };
        if settings.paths.data.is_some() {
            settings.paths.data = Some(data.clone());
        }
        settings.source = path.map(Path::to_path_buf);
        settings.store.rebase(&data);
        settings.mqtt.spill_dir = data.join(&settings.mqtt.spill_dir);
        settings.schedule.file = data.join(&settings.schedule.file);
        settings.control.overrides_file = data.join(&settings.control.overrides_file);
        settings.alarms.file = data.join(&settings.alarms.file);
        settings.alarms.webhook_dir = data.join(&settings.alarms.webhook_dir);
        settings.console.rebase(&data);
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

    /// Values that parse but make no sense, naming each key. (Token problems
    /// need the inventory's districts and are checked with it.)
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = self.api.problems();
        out.extend(self.poll.problems());
        out.extend(self.store.problems());
        out.extend(self.mqtt.problems());
        out.extend(self.dialin.problems());
        out.extend(self.schedule.problems());
        out.extend(self.figures.problems());
        out.extend(self.console.problems());
        out.extend(self.cluster.problems());
        out.extend(
            self.talq
                .problems(|name| self.auth.tokens.iter().any(|t| t.name == name)),
        );
        out
    }
}

/// Which source made the load fail: the file alone, else the first
/// `LAMPGW__…` variable that fails on top of it (an operator's typo in a unit
/// file must not send them searching the settings file).
fn blame(path: Option<&Path>, all: config::ConfigError) -> SettingsError {
    let no_env = Some(config::Map::new());
    let file_error = path.and_then(|p| build(Some(p), environment(no_env.clone())).err());
    if let (Some(p), Some(e)) = (path, file_error) {
        return SettingsError::File {
            path: p.display().to_string(),
            detail: e.to_string(),
        };
    }
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.to_ascii_uppercase().starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (k, v) in vars {
        let one = config::Map::from([(k.clone(), v)]);
        if let Err(e) = build(path, environment(Some(one))) {
            return SettingsError::Environment {
                var: k,
                detail: e.to_string(),
            };
        }
    }
    SettingsError::Environment {
        var: format!("{ENV_PREFIX}…"),
        detail: all.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Loads settings from `file`'s text, the error as the operator sees it.
    pub(crate) fn load(file: &str) -> Result<Settings, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gw.toml");
        std::fs::write(&path, file).unwrap();
        Settings::load(Some(&path)).map_err(|e| format!("{:#}", anyhow::Error::from(e)))
    }

    #[test]
    fn values_are_parsed_at_load() {
        let s = load(
            "[gateway]\ntime_zone = \"Europe/Berlin\"\n[log]\nformat = \"json\"\n\
             [store]\nurl = \"none\"\n[mqtt]\nurl = \"mqtts://broker.city\"\n",
        )
        .unwrap();
        assert_eq!(s.gateway.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(s.log.format, crate::telemetry::LogFormat::Json);
        assert!(matches!(s.store.url, crate::store::Backend::Disabled));
        assert_eq!(
            s.mqtt.url,
            crate::mqtt::BrokerChoice::External {
                host: "broker.city".into(),
                port: 8883,
                tls: true
            }
        );
    }

    #[test]
    fn runtime_data_goes_under_paths_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config/gw.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = "[paths]\ndata = \"../var\"\n[store]\nurl = \"sqlite://lampgw.db\"\n";
        std::fs::write(&path, text).unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        let data = dir.path().join("config/../var");
        assert_eq!(s.paths.data.as_deref(), Some(data.as_path()));
        let sqlite = |s: &Settings| match &s.store.url {
            crate::store::Backend::Sqlite(p) => p.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(sqlite(&s), data.join("lampgw.db"));
        assert_eq!(s.store.spool_dir, data.join("spool"));
        assert_eq!(s.mqtt.spill_dir, data.join("mqtt-spool"));
        assert_eq!(s.console.users_file, data.join("users.json"));
        // Inventory and profiles stay beside the settings file.
        assert_eq!(s.paths.inventory, dir.path().join("config/inventory"));
        // An absolute store path stays where it is.
        std::fs::write(
            &path,
            "[paths]\ndata = \"../var\"\n[store]\nurl = \"sqlite:///srv/x.db\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&path)).unwrap();
        assert_eq!(sqlite(&s), Path::new("/srv/x.db"));
    }

    #[test]
    fn a_bad_value_fails_the_load_naming_its_key() {
        for (file, key) in [
            (
                "[gateway]\ntime_zone = \"Mars/Olympus\"\n",
                "gateway.time_zone",
            ),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("[store]\nurl = \"mysql://x\"\n", "store.url"),
            ("[mqtt]\nurl = \"http://x\"\n", "mqtt.url"),
            (
                "[poll]\nslc_interval = \"ten seconds\"\n",
                "poll.slc_interval",
            ),
        ] {
            let err = load(file).expect_err(file);
            assert!(err.contains(key), "{key} not named in: {err}");
        }
    }

    #[test]
    fn debug_never_shows_a_password() {
        let s = load(
            "[store]\nurl = \"postgres://lamps:pg-s3cret@db.city/lamps\"\n\
             [mqtt]\nusername = \"gw\"\npassword = \"mq-s3cret\"\n",
        )
        .unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("pg-s3cret"), "{shown}");
        assert!(!shown.contains("mq-s3cret"), "{shown}");
        assert_eq!(
            s.store.url.to_string(),
            "postgres://lamps:***@db.city/lamps"
        );
    }
}
