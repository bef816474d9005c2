//! The gateway against brokers that want something of it: a password, TLS
//! with a private CA, a client certificate. Each test starts its own
//! Mosquitto ([`super::mosquitto`]); a subscriber of the test's own logs in
//! the same way and must see the retained states, and a gateway lacking the
//! credential must stay disconnected, say so on `/readyz`, and keep polling.

use super::harness::{self, unique_root, Login, Subscriber};
use super::mosquitto::{BrokerConfig, Leaf, Mosquitto, ServerTls, TestCa};
use super::{lamp_topic, mqtt_settings, rtu_topic, sim};
use crate::common::{eventually, spawn_app_with, TestApp};
use lamp_gateway::mqtt::MqttSettings;
use lamp_gateway::settings::Settings;
use lamp_sim::InventoryOptions;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const ENDPOINTS: usize = 2;
const SLCS: usize = 3;

async fn gateway(url: &str, root: &str, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(sim(ENDPOINTS, SLCS), InventoryOptions::default(), |s| {
        mqtt_settings(s, url, root);
        // A gateway that never connected has nothing to drain at stop.
        s.mqtt.drain_timeout = Duration::from_millis(300);
        tweak(s);
    })
    .await
}

/// Subscriber-side TLS built by the gateway's own code (rustls, ring).
fn tls(ca: &TestCa, client: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let s = MqttSettings {
        ca_file: Some(ca.ca_file.clone()),
        client_cert: client.map(|l| l.cert.clone()),
        client_key: client.map(|l| l.key.clone()),
        ..Default::default()
    };
    Arc::new(s.tls_config().expect("test TLS config"))
}

/// The retained state of every lamp and RTU reaches `sub`, online.
async fn sees_every_device(sub: &Subscriber, root: &str) {
    eventually("retained state of every lamp and RTU, online", || async {
        let seen = sub.seen.lock();
        let online = |t: &str| seen.states.get(t).is_some_and(|s| s["online"] == true);
        (0..ENDPOINTS).all(|e| {
            online(&rtu_topic(root, e)) && (0..SLCS).all(|j| online(&lamp_topic(root, e, j)))
        })
    })
    .await;
}

/// `/readyz` shows the broker link connected.
async fn readyz_connected(t: &TestApp, broker: &str) {
    eventually("/readyz: mqtt connected", || async {
        let (code, body) = t.get("/readyz").await;
        code == 200 && body["mqtt"]["connected"] == true
    })
    .await;
    let (_, body) = t.get("/readyz").await;
    assert_eq!(body["mqtt"]["broker"], broker, "{body}");
    assert!(body["mqtt"]["states_published"].as_u64().unwrap() > 0);
}

/// The gateway was turned away by its broker: `/readyz` is 200 with the
/// link down and failed attempts counted, and polling goes on regardless.
async fn refused_but_polling(t: &TestApp) -> Value {
    eventually("/readyz: attempts failed", || async {
        let (code, body) = t.get("/readyz").await;
        code == 200 && body["mqtt"]["connection_errors"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let (_, body) = t.get("/readyz").await;
    let mqtt = body["mqtt"].clone();
    assert_eq!(mqtt["connected"], false, "{body}");
    assert_eq!(mqtt["connects"], 0, "never got a CONNACK: {body}");
    assert_eq!(mqtt["states_published"], 0, "{body}");
    let cycles = t.live.full_cycles();
    eventually("polling goes on without the broker", || async {
        t.live.full_cycles() >= cycles + 2
    })
    .await;
    let (code, lamps) = t.get("/api/v1/lamps?online=true").await;
    assert_eq!(code, 200, "{lamps}");
    assert_eq!(
        lamps["total"],
        ENDPOINTS * SLCS,
        "every lamp online: {lamps}"
    );
    mqtt
}

#[tokio::test]
async fn password_protected_mosquitto() {
    let (user, pass) = ("lamp-gw".to_string(), "s3cret pass".to_string());
    let broker = Mosquitto::start(&BrokerConfig {
        user: Some((user.clone(), pass.clone())),
        ..Default::default()
    })
    .await;
    let url = format!("mqtt://127.0.0.1:{}", broker.port);

    let root = unique_root("passwd");
    let t = gateway(&url, &root, |s| {
        s.mqtt.username = Some(user.clone());
        s.mqtt.password = Some(pass.clone().into());
    })
    .await;
    t.all_online().await;
    let login = Login {
        credentials: Some((user.clone(), pass.clone())),
        tls: None,
    };
    let sub = Subscriber::start_with("127.0.0.1", broker.port, &format!("{root}/#"), login).await;
    sees_every_device(&sub, &root).await;
    readyz_connected(&t, &url).await;
    sub.stop();
    t.stop().await;

    let root = unique_root("badpass");
    let t = gateway(&url, &root, |s| {
        s.mqtt.username = Some(user.clone());
        s.mqtt.password = Some("wrong".into());
    })
    .await;
    refused_but_polling(&t).await;
    t.stop().await;
    let log = broker.log();
    assert!(log.contains("not authorised"), "broker log: {log}");
}

/// The gateway binary, credentials from the environment: a password that
/// looks like a number ("0070") reaches the broker as written.
#[tokio::test]
async fn password_from_the_environment_is_taken_verbatim() {
    let (user, pass) = ("gw-env".to_string(), "0070".to_string());
    let broker = Mosquitto::start(&BrokerConfig {
        user: Some((user.clone(), pass.clone())),
        ..Default::default()
    })
    .await;
    let root = unique_root("envpass");
    let login = Login {
        credentials: Some((user.clone(), pass.clone())),
        tls: None,
    };
    let presence = format!("{root}/gateway/gw-{root}/status");
    let sub = Subscriber::start_with("127.0.0.1", broker.port, &presence, login).await;
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let env = [
        ("LAMPGW__MQTT__USERNAME", user.as_str()),
        ("LAMPGW__MQTT__PASSWORD", pass.as_str()),
    ];
    let _gateway = harness::spawn_gateway_process_with(&root, &url, &env).await;
    eventually("gateway logged in and says online", || async {
        sub.seen.lock().presence.last().map(String::as_str) == Some("online")
    })
    .await;
    sub.stop();
    let log = broker.log();
    assert!(!log.contains("not authorised"), "broker log: {log}");
}

#[tokio::test]
async fn tls_broker_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "test-ca");
    let server = ca.server("broker", &["localhost", "127.0.0.1"]);
    let broker = Mosquitto::start(&BrokerConfig {
        tls: Some(ServerTls {
            ca: ca.ca_file.clone(),
            cert: server.cert,
            key: server.key,
        }),
        ..Default::default()
    })
    .await;
    let url = format!("mqtts://127.0.0.1:{}", broker.port);

    let root = unique_root("tls");
    let t = gateway(&url, &root, |s| s.mqtt.ca_file = Some(ca.ca_file.clone())).await;
    t.all_online().await;
    // The subscriber checks the DNS name, the gateway the IP address.
    let login = Login {
        credentials: None,
        tls: Some(tls(&ca, None)),
    };
    let sub = Subscriber::start_with("localhost", broker.port, &format!("{root}/#"), login).await;
    sees_every_device(&sub, &root).await;
    readyz_connected(&t, &url).await;
    sub.stop();
    t.stop().await;

    // System roots only: the private CA is not among them.
    let root = unique_root("untrusted");
    let t = gateway(&url, &root, |s| s.mqtt.ca_file = None).await;
    refused_but_polling(&t).await;
    t.stop().await;
    // The broker saw the handshake fail (the client rejected its certificate).
    let log = broker.log();
    assert!(log.contains("unknown ca"), "broker log: {log}");
}

#[tokio::test]
async fn tls_broker_requiring_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "test-ca");
    let server = ca.server("broker", &["localhost", "127.0.0.1"]);
    let broker = Mosquitto::start(&BrokerConfig {
        tls: Some(ServerTls {
            ca: ca.ca_file.clone(),
            cert: server.cert,
            key: server.key,
        }),
        require_certificate: true,
        ..Default::default()
    })
    .await;
    let url = format!("mqtts://127.0.0.1:{}", broker.port);
    let gw_cert = ca.client("gateway", "lamp-gateway");
    let sub_cert = ca.client("dashboard", "dashboard");

    let root = unique_root("clientcert");
    let t = gateway(&url, &root, |s| {
        s.mqtt.ca_file = Some(ca.ca_file.clone());
        s.mqtt.client_cert = Some(gw_cert.cert.clone());
        s.mqtt.client_key = Some(gw_cert.key.clone());
    })
    .await;
    t.all_online().await;
    let login = Login {
        credentials: None,
        tls: Some(tls(&ca, Some(&sub_cert))),
    };
    let sub = Subscriber::start_with("127.0.0.1", broker.port, &format!("{root}/#"), login).await;
    sees_every_device(&sub, &root).await;
    readyz_connected(&t, &url).await;
    sub.stop();
    t.stop().await;
    // use_identity_as_username: the certificate's CN is who connected.
    let log = broker.log();
    assert!(log.contains("u'lamp-gateway'"), "broker log: {log}");

    // The CA but no certificate of its own: the handshake fails.
    let root = unique_root("nocert");
    let t = gateway(&url, &root, |s| s.mqtt.ca_file = Some(ca.ca_file.clone())).await;
    refused_but_polling(&t).await;
    t.stop().await;
}

/// `ca_file`, `client_cert` and `client_key` in a settings file are relative
/// to that file, like the other paths.
#[test]
fn tls_files_are_relative_to_the_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        "[mqtt]\nurl = \"mqtts://broker.city\"\nca_file = \"certs/ca.pem\"\n\
         client_cert = \"certs/gw.crt\"\nclient_key = \"/etc/lampgw/gw.key\"\n",
    )
    .unwrap();
    let s = Settings::load(Some(&file)).unwrap();
    assert_eq!(s.mqtt.ca_file, Some(dir.path().join("certs/ca.pem")));
    assert_eq!(s.mqtt.client_cert, Some(dir.path().join("certs/gw.crt")));
    assert_eq!(s.mqtt.client_key, Some(PathBuf::from("/etc/lampgw/gw.key")));
}

/// A TLS file that is missing or holds no PEM certificate is an error that
/// names the file (the gateway does not start), not a silent fallback.
#[test]
fn bad_tls_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.pem");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for (file, why) in [(&missing, "No such file"), (&empty, "no certificate")] {
        let s = MqttSettings {
            ca_file: Some(file.clone()),
            ..Default::default()
        };
        let err = s.tls_config().unwrap_err().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains(why),
            "{err}"
        );
    }
}
