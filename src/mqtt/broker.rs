//! The embedded broker: rumqttd in this process, for the demo and small
//! sites, so `mosquitto_sub` works with no set-up.
//!
//! Limits (measured, README "Embedded broker"): rumqttd hands a new wildcard
//! subscriber at most `router.max_outgoing_packet_count` retained messages,
//! so it is raised well above one state per device; it cannot be stopped
//! short of the process (its threads run until exit), and it has no ACLs.
//! A city-scale deployment uses an external broker.

use super::MqttError;
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Retained messages (and queued packets) the router hands one subscriber in
/// one go: above one per device of a 100,000-lamp gateway with its RTUs.
pub const MAX_OUTGOING_PACKETS: u64 = 250_000;

/// Starts rumqttd on `listen` (port 0 picks a free port) and waits until it
/// accepts connections; returns the address it listens on.
pub fn start(listen: SocketAddr, max_inflight: usize) -> Result<SocketAddr, MqttError> {
    let bind_error = |source| MqttError::EmbeddedBroker {
        addr: listen,
        source,
    };
    // rumqttd binds in a thread of its own and only logs a failure there, so
    // find out here whether the address is free (and which port 0 means).
    let addr = {
        let probe = TcpListener::bind(listen).map_err(bind_error)?;
        probe.local_addr().map_err(bind_error)?
    };
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: max_inflight,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "embedded".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
            max_outgoing_packet_count: MAX_OUTGOING_PACKETS,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(bind_error)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)).and_then(handshake) {
            Ok(()) => return Ok(addr),
            Err(source) if Instant::now() > deadline => {
                return Err(MqttError::EmbeddedBroker { addr, source })
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A whole MQTT 3.1.1 session (CONNECT, CONNACK, DISCONNECT) rather than a
/// bare TCP connect, which the broker would log as an aborted connection.
fn handshake(mut stream: TcpStream) -> std::io::Result<()> {
    use std::io::{Read, Write};
    const CONNECT: [u8; 19] = [
        0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'p', b'r', b'o', b'b', b'e',
    ];
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(&CONNECT)?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack)?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(std::io::Error::other(format!(
            "unexpected CONNACK {connack:?}"
        )));
    }
    stream.write_all(&[0xE0, 0])
}
