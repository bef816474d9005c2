//! `[mqtt]` settings and what they turn into: the broker to use and the
//! rumqttc options (credentials, TLS, keep-alive, last will).

use super::payload::Topics;
use super::MqttError;
use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest MQTT packet the gateway sends or takes, in bytes; a publish that
/// would be larger is dropped before it reaches the client (the client would
/// end the connection over it).
pub const MAX_PACKET: usize = 1 << 20;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// `embedded` (in-process rumqttd), `mqtt://host:port`, `mqtts://host:port`
    /// or `none`.
    pub url: BrokerChoice,
    /// Address of the embedded broker (`url = "embedded"`); port 0 picks one.
    pub embedded_listen: SocketAddr,
    pub topic_root: String,
    /// MQTT client id; empty means the gateway id.
    pub client_id: String,
    pub username: Option<String>,
    /// Never printed: `Debug` shows it as redacted.
    pub password: Option<SecretString>,
    /// PEM file of the CA(s) that sign the broker's certificate (`mqtts://`);
    /// without it the system's roots are used.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain and key, for brokers that require them.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// Every device's state is republished at this interval even when
    /// nothing moved beyond its deadband.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
    /// A state is republished when power moves by more than this (W) ...
    pub deadband_power: f64,
    /// ... or a voltage by more than this (V) ...
    pub deadband_voltage: f64,
    /// ... or a current by more than this (A). Switch, dim level, fault
    /// flags, alarms and online status are published on any change.
    pub deadband_current: f64,
    /// QoS 1 publishes on the wire without their PUBACK yet.
    pub max_inflight: u16,
    /// Poll batches waiting for the MQTT task; past it a batch keeps only its
    /// transitions and the task rescans the live state instead.
    pub batch_queue: usize,
    /// Events also held in memory while they wait for the broker (every
    /// event is appended to the spool in `spill_dir` at once); later ones
    /// wait on disk only and come back in order.
    pub event_queue: usize,
    /// Folder of the events' spool (relative to the settings file).
    pub spill_dir: PathBuf,
    /// Put every append to the events' spool on the device (`fdatasync`)
    /// before going on, so a power cut loses no queued event either.
    pub fsync: bool,
    /// How long a stopping gateway keeps trying to deliver what it holds
    /// before it publishes `offline` and disconnects.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for MqttSettings {
    fn default() -> Self {
        Self {
            url: BrokerChoice::Embedded,
            embedded_listen: "127.0.0.1:1884".parse().expect("valid literal"),
            topic_root: "streetlight".into(),
            client_id: String::new(),
            username: None,
            password: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            keep_alive: Duration::from_secs(15),
            refresh_interval: Duration::from_secs(15 * 60),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            deadband_power: 1.0,
            deadband_voltage: 2.0,
            deadband_current: 0.05,
            max_inflight: 500,
            batch_queue: 1024,
            event_queue: 10_000,
            spill_dir: "mqtt-spool".into(),
            fsync: false,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Which broker the gateway talks to (`mqtt.url`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum BrokerChoice {
    None,
    Embedded,
    External { host: String, port: u16, tls: bool },
}

impl std::str::FromStr for BrokerChoice {
    type Err = String;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let url = url.trim();
        match url {
            "none" => return Ok(BrokerChoice::None),
            "embedded" => return Ok(BrokerChoice::Embedded),
            _ => {}
        }
        let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("mqtt://") {
            (false, r)
        } else {
            return Err(format!(
                "`{url}` is not `embedded`, `none`, `mqtt://host:port` or `mqtts://host:port`"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("bad port in `{url}`"))?,
            ),
            None => (rest, if tls { 8883 } else { 1883 }),
        };
        if host.is_empty() {
            return Err(format!("no host in `{url}`"));
        }
        Ok(BrokerChoice::External {
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
            tls,
        })
    }
}

impl TryFrom<String> for BrokerChoice {
    type Error = String;
    fn try_from(url: String) -> Result<Self, Self::Error> {
        url.parse()
    }
}

impl MqttSettings {
    /// Values that parse but make no sense, by key.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut need = |ok: bool, key: &str, msg: &str| {
            if !ok {
                out.push((format!("mqtt.{key}"), msg.to_string()));
            }
        };
        need(
            super::payload::check_root(&self.topic_root).is_ok(),
            "topic_root",
            "must be non-empty, without `+`, `#`, control characters or a leading/trailing `/`",
        );
        need(
            self.keep_alive >= Duration::from_secs(1)
                && self.keep_alive <= Duration::from_secs(600),
            "keep_alive",
            "must be between 1s and 10min",
        );
        need(
            !self.refresh_interval.is_zero(),
            "refresh_interval",
            "must be above zero",
        );
        need(
            self.reconnect_min <= self.reconnect_max && !self.reconnect_min.is_zero(),
            "reconnect_min",
            "must be above zero and not exceed reconnect_max",
        );
        for (key, v) in [
            ("deadband_power", self.deadband_power),
            ("deadband_voltage", self.deadband_voltage),
            ("deadband_current", self.deadband_current),
        ] {
            need(v.is_finite() && v >= 0.0, key, "must be a number ≥ 0");
        }
        need(self.max_inflight >= 1, "max_inflight", "must be at least 1");
        need(self.batch_queue >= 1, "batch_queue", "must be at least 1");
        need(self.event_queue >= 1, "event_queue", "must be at least 1");
        need(
            self.client_cert.is_some() == self.client_key.is_some(),
            "client_cert",
            "client_cert and client_key go together",
        );
        out
    }

    pub fn client_id(&self, gateway_id: &str) -> String {
        if self.client_id.is_empty() {
            gateway_id.to_string()
        } else {
            self.client_id.clone()
        }
    }

    /// rumqttc options for `host:port`: clean session (our own outbox carries
    /// events across reconnects), retained `offline` as last will.
    pub fn options(
        &self,
        gateway_id: &str,
        host: &str,
        port: u16,
        tls: bool,
        topics: &Topics,
    ) -> Result<MqttOptions, MqttError> {
        let mut o = MqttOptions::new(self.client_id(gateway_id), host, port);
        o.set_keep_alive(self.keep_alive)
            .set_clean_session(true)
            .set_inflight(self.max_inflight)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET)
            .set_last_will(LastWill::new(
                topics.presence(),
                super::payload::OFFLINE,
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(user) = &self.username {
            let password = self.password.as_ref().map(|p| p.expose_secret());
            o.set_credentials(user, password.unwrap_or_default());
        }
        if tls {
            o.set_transport(Transport::Tls(TlsConfiguration::Rustls(Arc::new(
                self.tls_config()?,
            ))));
        }
        Ok(o)
    }

    /// The rustls client configuration (ring provider) for `mqtts://`:
    /// `ca_file` or the system roots, and the client certificate if set.
    pub fn tls_config(&self) -> Result<rustls::ClientConfig, MqttError> {
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in read_pem_certs(path)? {
                    roots.add(cert).map_err(|e| tls_error(path, e))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A broken system root must not stop the others from working.
                    let _ = roots.add(cert);
                }
            }
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let chain = read_pem_certs(cert)?;
                let key_der = read_private_key(key)?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| tls_error(cert, e))
            }
            _ => Ok(builder.with_no_client_auth()),
        }
    }

    /// Every TLS file the settings name, each read and parsed as
    /// [`MqttSettings::tls_config`] reads it, with the key of each one at
    /// fault: `check-config` reports them all at once (`tls_config` stops
    /// at the first). Named files are checked whatever the URL says, since
    /// a file named but not there is a mistake either way.
    pub fn tls_file_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut note = |key: &str, r: Result<(), MqttError>| {
            if let Err(e) = r {
                out.push((format!("mqtt.{key}"), e.to_string()));
            }
        };
        if let Some(path) = &self.ca_file {
            note(
                "ca_file",
                read_pem_certs(path).and_then(|certs| {
                    let mut roots = rustls::RootCertStore::empty();
                    certs
                        .into_iter()
                        .try_for_each(|c| roots.add(c).map_err(|e| tls_error(path, e)))
                }),
            );
        }
        let chain = self.client_cert.as_deref().map(read_pem_certs);
        let key = self.client_key.as_deref().map(read_private_key);
        if let (Some(Ok(chain)), Some(Ok(key)), Some(cert)) = (&chain, &key, &self.client_cert) {
            // Both read: they must also belong together.
            let paired = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map(drop)
                .map_err(|e| tls_error(cert, e));
            note("client_cert", paired);
        }
        if let Some(Err(e)) = chain {
            note("client_cert", Err(e));
        }
        if let Some(Err(e)) = key {
            note("client_key", Err(e));
        }
        out
    }
}

fn read_private_key(path: &Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, MqttError> {
    let mut reader = std::io::BufReader::new(open(path)?);
    rustls_pemfile::private_key(&mut reader)
        .map_err(|e| tls_error(path, e))?
        .ok_or_else(|| tls_error(path, "no private key in file"))
}

fn open(path: &Path) -> Result<std::fs::File, MqttError> {
    std::fs::File::open(path).map_err(|e| tls_error(path, e))
}

fn read_pem_certs(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, MqttError> {
    let mut reader = std::io::BufReader::new(open(path)?);
    let certs = rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, e))?;
    if certs.is_empty() {
        return Err(tls_error(path, "no certificate in file"));
    }
    Ok(certs)
}

fn tls_error(path: &Path, e: impl std::fmt::Display) -> MqttError {
    MqttError::Tls {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(url: &str) -> Result<BrokerChoice, String> {
        url.parse()
    }

    #[test]
    fn broker_urls() {
        assert_eq!(broker("none"), Ok(BrokerChoice::None));
        assert_eq!(broker("embedded"), Ok(BrokerChoice::Embedded));
        assert_eq!(
            broker("mqtt://broker.city:1885"),
            Ok(BrokerChoice::External {
                host: "broker.city".into(),
                port: 1885,
                tls: false
            })
        );
        assert_eq!(
            broker("mqtts://broker.city"),
            Ok(BrokerChoice::External {
                host: "broker.city".into(),
                port: 8883,
                tls: true
            })
        );
        assert!(broker("tcp://x:1").is_err());
        assert!(broker("mqtt://:1").is_err());
        assert!(broker("mqtt://x:port").is_err());
    }

    #[test]
    fn problems_name_their_keys() {
        // `mqtt.url` is checked as it is parsed: a settings file with this
        // URL does not load (see `settings`' tests for the key in the error).
        assert!(broker("http://x").is_err());
        let s = MqttSettings {
            topic_root: "a/#".into(),
            keep_alive: Duration::from_millis(10),
            client_cert: Some("c.pem".into()),
            deadband_power: -1.0,
            ..Default::default()
        };
        let keys: Vec<String> = s.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "mqtt.topic_root",
                "mqtt.keep_alive",
                "mqtt.deadband_power",
                "mqtt.client_cert"
            ]
        );
        assert!(MqttSettings::default().problems().is_empty());
    }
}
