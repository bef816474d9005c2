//! The MQTT mirror: retained state per lamp and RTU, events per district and
//! the gateway's presence, on an external broker or the embedded one.
//!
//! Data flow: the state task offers each applied batch to [`inbox::MqttSink`]
//! (a lock and a push); the publisher task compares it with what it last
//! published ([`track`]), queues events in the [`outbox`] (memory, then disk)
//! and hands publishes to rumqttc as the in-flight window allows.

pub mod broker;
pub mod commands;
pub mod config;
pub mod inbox;
pub mod metrics;
pub mod outbox;
pub mod payload;
pub mod publisher;
mod refusal;
pub mod status;
pub mod track;

pub use config::{BrokerChoice, MqttSettings};
pub use status::{LinkSnapshot, LinkStatus};

use crate::state::{LiveState, Sink};
use crate::topology::Topology;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("embedded MQTT broker on {addr}: {source}")]
    EmbeddedBroker {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("MQTT TLS file {path}: {detail}")]
    Tls { path: String, detail: String },
    #[error(transparent)]
    Spill(#[from] crate::queue::SpoolError),
    #[error("{what} `{id}` cannot be an MQTT topic level: {reason}")]
    TopicId {
        what: &'static str,
        id: String,
        reason: String,
    },
    #[error("mqtt.topic_root or gateway.id: {0}")]
    Topics(#[from] payload::BadLevel),
}

/// The running mirror: the sink to hand to the state task (dropping it stops
/// the publisher), the link status for the API, the task to await.
#[derive(Debug)]
pub struct MqttLink {
    pub sink: Arc<dyn Sink>,
    pub status: Arc<LinkStatus>,
    pub task: JoinHandle<()>,
    /// Where the embedded broker listens, when it was started.
    pub embedded: Option<SocketAddr>,
}

/// Every inventory id that goes into a topic passes [`payload::check_level`],
/// the check the topic builders make, so a bad id stops the start instead of
/// a publish.
fn check_topic_ids(live: &LiveState) -> Result<(), MqttError> {
    let check = |what: &'static str, id: &str| {
        payload::check_level(id)
            .map(|_| ())
            .map_err(|reason| MqttError::TopicId {
                what,
                id: id.chars().take(64).collect(),
                reason: reason.to_string(),
            })
    };
    let inv = &live.inventory;
    let reserved = ["gateway", "commands"];
    for d in &inv.districts {
        check("district id", &d.id)?;
        if reserved.contains(&d.id.as_str()) {
            return Err(MqttError::TopicId {
                what: "district id",
                id: d.id.clone(),
                reason: "names a subtree of the gateway's own".into(),
            });
        }
    }
    for l in inv.lamps.iter().filter(|l| l.slc.is_some()) {
        check("lamp id", &l.id)?;
    }
    for r in inv.cabinets.iter().filter_map(|c| c.rtu.as_ref()) {
        check("RTU id", &r.id)?;
    }
    Ok(())
}

/// Starts the embedded broker if asked for and the publisher task; `None`
/// when `mqtt.url = "none"`. `gateway_id` names the presence topic and is the
/// default client id.
pub fn start(
    m: &MqttSettings,
    gateway_id: &str,
    live: Arc<LiveState>,
    topology: &Topology,
    control: Option<Arc<crate::control::Control>>,
) -> Result<Option<MqttLink>, MqttError> {
    let (host, port, tls, embedded) = match m.url.clone() {
        BrokerChoice::None => return Ok(None),
        BrokerChoice::Embedded => {
            let addr = broker::start(m.embedded_listen, usize::from(m.max_inflight))?;
            (addr.ip().to_string(), addr.port(), false, Some(addr))
        }
        BrokerChoice::External { host, port, tls } => (host, port, tls, None),
    };
    check_topic_ids(&live)?;
    let topics = payload::Topics::new(&m.topic_root, gateway_id)?;
    let options = m.options(gateway_id, &host, port, tls, &topics)?;
    let scheme = if tls { "mqtts" } else { "mqtt" };
    let status = Arc::new(LinkStatus::new(format!("{scheme}://{host}:{port}")));
    let inbox = inbox::Inbox::new(m.batch_queue, status.clone());
    let outbox = outbox::Outbox::open(&m.spill_dir, m.event_queue)?;
    let tracker = track::Tracker::new(
        topology,
        live.inventory.lamps.len(),
        live.inventory.cabinets.len(),
        track::Deadbands {
            power: m.deadband_power,
            voltage: m.deadband_voltage,
            current: m.deadband_current,
        },
    );
    let publisher = publisher::Publisher {
        settings: m.clone(),
        gateway_id: gateway_id.to_string(),
        options,
        live,
        inbox: inbox.clone(),
        status: status.clone(),
        tracker,
        outbox,
        topics: topics.clone(),
        control: control.clone(),
    };
    if let Some(control) = &control {
        control.observe(Arc::new(commands::AckObserver {
            inbox: inbox.clone(),
            topics,
        }));
    }
    let span = tracing::info_span!("mqtt", broker = %status.broker);
    let task = tokio::spawn(tracing::Instrument::instrument(publisher.run(), span));
    Ok(Some(MqttLink {
        sink: Arc::new(inbox::MqttSink { inbox }),
        status,
        task,
        embedded,
    }))
}
