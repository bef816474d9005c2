//! Counting what the gateway's sinks delivered, from the outside: rows in the
//! database (with the database's own command-line client) and messages at an
//! independent MQTT subscriber (`mosquitto_sub`).

use anyhow::{bail, Context as _};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where the gateway stores samples (`store.url`).
#[derive(Debug, Clone, PartialEq)]
pub enum Store {
    None,
    Sqlite(PathBuf),
    Postgres(String),
}

impl Store {
    /// `none`, `sqlite` (a fresh file in the scratch folder), `sqlite://PATH`,
    /// `postgres://...`.
    pub fn parse(s: &str, scratch: &std::path::Path) -> anyhow::Result<Store> {
        Ok(match s {
            "none" => Store::None,
            "sqlite" => Store::Sqlite(scratch.join("bench.db")),
            _ if s.starts_with("sqlite://") => {
                Store::Sqlite(PathBuf::from(&s["sqlite://".len()..]))
            }
            _ if s.starts_with("postgres://") || s.starts_with("postgresql://") => {
                Store::Postgres(s.to_string())
            }
            _ => bail!("--store: `{s}` is not none, sqlite, sqlite://PATH or postgres://URL"),
        })
    }

    pub fn url(&self) -> String {
        match self {
            Store::None => "none".into(),
            Store::Sqlite(p) => format!("sqlite://{}", p.display()),
            Store::Postgres(u) => u.clone(),
        }
    }

    /// Rows in the lamp samples table, or `None` where there is no store.
    pub fn count_lamp_samples(&self) -> anyhow::Result<Option<u64>> {
        const Q: &str = "SELECT count(*) FROM lamp_samples";
        let out = match self {
            Store::None => return Ok(None),
            Store::Sqlite(p) => {
                if !p.exists() {
                    return Ok(Some(0));
                }
                Command::new("sqlite3")
                    .arg("-readonly")
                    .arg(p)
                    .arg(Q)
                    .output()
                    .context("running sqlite3 (the SQLite command-line client)")?
            }
            Store::Postgres(url) => Command::new("psql")
                .args([url.as_str(), "-tAc", Q])
                .output()
                .context("running psql")?,
        };
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            // Before the gateway's first start the table does not exist yet.
            if err.contains("no such table") || err.contains("does not exist") {
                return Ok(Some(0));
            }
            bail!("counting lamp samples: {}", err.trim());
        }
        Ok(Some(text.trim().parse().context("row count")?))
    }
}

/// Where the gateway publishes (`mqtt.url`).
#[derive(Debug, Clone, PartialEq)]
pub enum Mqtt {
    None,
    /// The gateway's in-process broker, on this address.
    Embedded(std::net::SocketAddr),
    External {
        host: String,
        port: u16,
    },
}

impl Mqtt {
    pub fn parse(s: &str) -> anyhow::Result<Mqtt> {
        Ok(match s {
            "none" => Mqtt::None,
            "embedded" => {
                let port = std::net::TcpListener::bind("127.0.0.1:0")?
                    .local_addr()?
                    .port();
                Mqtt::Embedded(([127, 0, 0, 1], port).into())
            }
            _ if s.starts_with("mqtt://") => {
                let rest = s["mqtt://".len()..].trim_end_matches('/');
                let (host, port) = rest.rsplit_once(':').unwrap_or((rest, "1883"));
                Mqtt::External {
                    host: host.to_string(),
                    port: port.parse().context("--mqtt port")?,
                }
            }
            _ => bail!("--mqtt: `{s}` is not none, embedded or mqtt://HOST:PORT"),
        })
    }

    pub fn url(&self) -> String {
        match self {
            Mqtt::None => "none".into(),
            Mqtt::Embedded(_) => "embedded".into(),
            Mqtt::External { host, port } => format!("mqtt://{host}:{port}"),
        }
    }

    fn host_port(&self) -> Option<(String, u16)> {
        match self {
            Mqtt::None => None,
            Mqtt::Embedded(a) => Some((a.ip().to_string(), a.port())),
            Mqtt::External { host, port } => Some((host.clone(), *port)),
        }
    }
}

/// An independent subscriber to `{root}/+/lamp/+/state`.
pub struct Subscriber {
    child: Child,
    counts: Arc<Mutex<(u64, HashSet<String>)>>,
}

impl Subscriber {
    pub fn start(mqtt: &Mqtt, root: &str) -> anyhow::Result<Option<Subscriber>> {
        let Some((host, port)) = mqtt.host_port() else {
            return Ok(None);
        };
        let topic = format!("{root}/+/lamp/+/state");
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", &host, "-p", &port.to_string(), "-t", &topic])
            .args(["-q", "0", "-F", "%t", "-i", "lamp-bench-subscriber"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting mosquitto_sub (package mosquitto-clients)")?;
        let counts = Arc::new(Mutex::new((0u64, HashSet::new())));
        let out = child.stdout.take().expect("piped");
        let c = counts.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut g = c.lock().expect("counts");
                g.0 += 1;
                g.1.insert(line);
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        if let Some(status) = child.try_wait()? {
            bail!("mosquitto_sub exited ({status}): is the broker on {host}:{port} up?");
        }
        Ok(Some(Subscriber { child, counts }))
    }

    /// (messages, distinct lamp topics) so far.
    pub fn counts(&self) -> (u64, usize) {
        let g = self.counts.lock().expect("counts");
        (g.0, g.1.len())
    }

    pub fn stop(mut self) -> (u64, usize) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.counts()
    }
}
