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

/// Why the settings did not load: every section that does not load (each
/// section is read on its own, so a mistake in `[poll]` does not hide one
/// in `[mqtt]`), each blamed on the settings file or on the `LAMPGW__…`
/// environment variable at fault. The message is whole (the config crate's
/// cause is rendered into it, no source below), so a chain printer shows
/// it once.
#[derive(Debug, thiserror::Error)]
#[error("{}", list(.problems))]
pub struct SettingsError {
    pub problems: Vec<SettingsProblem>,
}

fn list(problems: &[SettingsProblem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut out = format!("the settings have {} problems:", many.len());
            for p in many {
                out.push_str(&format!("\n  {p}"));
            }
            out
        }
    }
}

/// One problem of the settings and who is to blame for it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsProblem {
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

/// What a load failed on: the file or environment as a whole (a file that
/// does not parse), or the top-level sections that do not deserialize,
/// each with the config crate's error (which names the key path).
enum Failure {
    Whole(config::ConfigError),
    Sections(Vec<(String, config::ConfigError)>),
}

impl Failure {
    fn section(&self, name: &str) -> Option<&config::ConfigError> {
        match self {
            Failure::Whole(e) => Some(e),
            Failure::Sections(all) => all.iter().find(|(n, _)| n == name).map(|(_, e)| e),
        }
    }
}

fn build(path: Option<&Path>, env: config::Environment) -> Result<Settings, Failure> {
    let mut builder = config::Config::builder();
    if let Some(path) = path {
        builder = builder.add_source(config::File::from(path).required(true));
    }
    let table: config::Map<String, config::Value> = builder
        .add_source(env)
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(Failure::Whole)?;
    let mut settings = Settings::default();
    let mut failed = Vec::new();
    for (name, value) in table {
        if let Err(e) = settings.take_section(&name, value) {
            failed.push((name, e));
        }
    }
    // In the order of the sections' table, not of the map.
    failed.sort_by_key(|(n, _)| SECTIONS.iter().position(|s| s == n).unwrap_or(usize::MAX));
    if failed.is_empty() {
        Ok(settings)
    } else {
        Err(Failure::Sections(failed))
    }
}

/// Deserializes one section's value into its type, the error naming the
/// whole key path (`poll.slc_interval`): read as the only entry of a map,
/// so the config crate puts the section's name in front of the key.
fn section<T: serde::de::DeserializeOwned>(
    name: &str,
    value: config::Value,
) -> Result<T, config::ConfigError> {
    let one = config::Map::from([(name.to_string(), value)]);
    let mut map: std::collections::HashMap<String, T> =
        config::Value::new(None, config::ValueKind::Table(one)).try_deserialize()?;
    Ok(map.remove(name).expect("the one entry"))
}

impl Settings {
    /// Sets the section `name` from `value`; an unknown section is an error
    /// as an unknown key is (`deny_unknown_fields` on every section).
    fn take_section(
        &mut self,
        name: &str,
        value: config::Value,
    ) -> Result<(), config::ConfigError> {
        match name {
            "gateway" => self.gateway = section(name, value)?,
            "paths" => self.paths = section(name, value)?,
            "api" => self.api = section(name, value)?,
            "poll" => self.poll = section(name, value)?,
            "log" => self.log = section(name, value)?,
            "mqtt" => self.mqtt = section(name, value)?,
            "auth" => self.auth = section(name, value)?,
            "control" => self.control = section(name, value)?,
            "store" => self.store = section(name, value)?,
            "dialin" => self.dialin = section(name, value)?,
            "schedule" => self.schedule = section(name, value)?,
            "alarms" => self.alarms = section(name, value)?,
            "figures" => self.figures = section(name, value)?,
            "console" => self.console = section(name, value)?,
            "cluster" => self.cluster = section(name, value)?,
            "talq" => self.talq = section(name, value)?,
            other => {
                return Err(config::ConfigError::Message(format!(
                    "unknown section `{other}`, expected one of {}",
                    SECTIONS.join(", ")
                )))
            }
        }
        Ok(())
    }
}

/// The top-level sections, as [`Settings::take_section`] reads them.
const SECTIONS: [&str; 16] = [
    "gateway", "paths", "api", "poll", "log", "mqtt", "auth", "control", "store", "dialin",
    "schedule", "alarms", "figures", "console", "cluster", "talq",
];

impl Settings {
    /// Reads a settings file (if given and present) and the environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, SettingsError> {
        let mut settings = build(path, environment(None)).map_err(|f| blame(path, f))?;
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
        settings.alarms.file = data.join(&settings.alarms.file);
        settings.alarms.webhook_dir = data.join(&settings.alarms.webhook_dir);
        settings.console.rebase(&data);
        settings.control.rebase(&data);
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

/// Who is to blame for each section that failed: the file, when the file
/// alone fails that section; else the `LAMPGW__…` variables that fail it
/// on top of the file, each on its own (an operator's typo in a unit file
/// must not send them searching the settings file).
fn blame(path: Option<&Path>, all: Failure) -> SettingsError {
    let no_env = Some(config::Map::new());
    let file = path.map(|p| (p, build(Some(p), environment(no_env.clone())).err()));
    let file_problem = |e: &config::ConfigError| SettingsProblem::File {
        path: path.map(|p| p.display().to_string()).unwrap_or_default(),
        detail: e.to_string(),
    };
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.to_ascii_uppercase().starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    // The variables that fail a section on their own, and how.
    let env_problems = |name: Option<&str>| -> Vec<SettingsProblem> {
        vars.iter()
            .filter_map(|(k, v)| {
                let one = config::Map::from([(k.clone(), v.clone())]);
                let failure = build(path, environment(Some(one))).err()?;
                let e = match name {
                    Some(n) => failure.section(n)?,
                    None => match &failure {
                        Failure::Whole(e) => e,
                        Failure::Sections(_) => return None,
                    },
                };
                Some(SettingsProblem::Environment {
                    var: k.clone(),
                    detail: e.to_string(),
                })
            })
            .collect()
    };
    let mut problems = Vec::new();
    match &all {
        Failure::Whole(e) => match &file {
            Some((_, Some(Failure::Whole(fe)))) => problems.push(file_problem(fe)),
            _ => {
                problems = env_problems(None);
                if problems.is_empty() {
                    problems.push(match path {
                        Some(_) => file_problem(e),
                        None => SettingsProblem::Environment {
                            var: format!("{ENV_PREFIX}…"),
                            detail: e.to_string(),
                        },
                    });
                }
            }
        },
        Failure::Sections(sections) => {
            for (name, e) in sections {
                if let Some(fe) = file.as_ref().and_then(|(_, f)| f.as_ref()?.section(name)) {
                    problems.push(file_problem(fe));
                    continue;
                }
                let mut by_env = env_problems(Some(name));
                if by_env.is_empty() {
                    // Only several variables together fail it.
                    by_env.push(SettingsProblem::Environment {
                        var: format!("{ENV_PREFIX}{}__…", name.to_ascii_uppercase()),
                        detail: e.to_string(),
                    });
                }
                problems.append(&mut by_env);
            }
        }
    }
    SettingsError { problems }
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
        assert_eq!(s.control.groups_file, data.join("groups.json"));
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

    /// `Settings::take_section` and `SECTIONS` list every section the
    /// struct has: the struct's own deserializer names its fields.
    #[test]
    fn every_section_of_the_settings_is_read() {
        let err = serde_json::from_str::<Settings>(r#"{"zzz": {}}"#).unwrap_err();
        let text = err.to_string();
        let listed = text
            .split("expected one of ")
            .nth(1)
            .expect("the field list");
        // `gateway`, `paths`, …: the names are between the backticks.
        let fields: Vec<&str> = listed.split('`').skip(1).step_by(2).collect();
        assert_eq!(fields, SECTIONS, "{text}");
        let mut s = Settings::default();
        for name in SECTIONS {
            let empty = config::Value::new(None, config::ValueKind::Table(config::Map::new()));
            s.take_section(name, empty).unwrap();
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
