//! The MQTT mirror: retained state per lamp and RTU, events per district and
//! the gateway's presence, on an external broker or the embedded one.
//!
//! Data flow: the state task offers each applied batch to [`inbox::MqttSink`]
//! (a lock and a push); the publisher task compares it with what it last
//! published ([`track`]), queues events in the [`outbox`] (appended to its
//! spool at once, a window of them in memory) and hands publishes to rumqttc
//! as the in-flight window allows.

pub mod alarms;
pub mod broker;
pub mod commands;
pub mod config;
pub mod inbox;
pub mod metrics;
pub mod outbox;
pub mod payload;
pub mod publisher;
mod refusal;
pub mod schedule;
pub mod status;
pub mod track;

pub use config::{BrokerChoice, MqttSettings};
pub use status::{LinkSnapshot, LinkStatus};

use crate::inventory::{ConfigIssue, Inventory};
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
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    TopicIds(Vec<ConfigIssue>),
    #[error("mqtt.topic_root or gateway.id: {0}")]
    Topics(#[from] payload::BadLevel),
}

/// The running mirror: the sink to hand to the state task (dropping it stops
/// the publisher), the link status for the API, the task to await.
#[derive(Debug)]
pub struct MqttLink {
    pub sink: Arc<dyn Sink>,
    /// Alarm changes as events, and each district's retained standing set.
    pub alarms: Arc<dyn crate::alarm::AlarmSink>,
    /// Each district's night plan, retained (hand it to the schedule).
    pub schedule: Arc<dyn crate::schedule::summary::ScheduleSink>,
    /// Tells the publisher of a reload's new live state.
    pub reload: Reloader,
    pub status: Arc<LinkStatus>,
    pub task: JoinHandle<()>,
    /// Where the embedded broker listens, when it was started.
    pub embedded: Option<SocketAddr>,
}

/// The publisher's side of a reload.
#[derive(Debug, Clone)]
pub struct Reloader {
    inbox: Arc<inbox::Inbox>,
    bands: track::Deadbands,
}

impl Reloader {
    /// From the batches offered after this call on, devices are those of
    /// `live` and `topology`. Call between state generations.
    pub fn reconfigure(&self, live: Arc<LiveState>, topology: &Topology) {
        let tracker = track::Tracker::new(
            topology,
            live.inventory.lamps.len(),
            live.inventory.cabinets.len(),
            self.bands,
        );
        self.inbox.reconfigure(inbox::Reconfigure { live, tracker });
    }
}

/// Every inventory id that goes into a topic passes [`payload::check_level`],
/// the check the topic builders make, and no district takes a name of the
/// gateway's own subtrees. The one rule for both `check-config` and `run`:
/// the whole-configuration check calls it when MQTT is on (with each row's
/// file:line), and [`start`] calls it again so no caller can start the
/// mirror on ids that would stop a publish.
pub fn topic_id_problems(inv: &Inventory, gateway_id: &str) -> Vec<ConfigIssue> {
    let mut out = Vec::new();
    let mut check = |at: &str, what: &str, id: &str| {
        if let Err(reason) = payload::check_level(id) {
            out.push(ConfigIssue::new(
                at,
                format!(
                    "{what} `{}` cannot be an MQTT topic level: {reason}",
                    id.chars().take(64).collect::<String>()
                ),
            ));
        }
    };
    check("settings gateway.id", "gateway id", gateway_id);
    for d in &inv.districts {
        check(&d.at, "district id", &d.id);
    }
    for l in inv.lamps.iter().filter(|l| l.slc.is_some()) {
        check(&l.at, "lamp id", &l.id);
    }
    for c in &inv.cabinets {
        if let Some(r) = &c.rtu {
            check(&c.at, "RTU id", &r.id);
        }
    }
    // `{root}/commands/...` carries acks and `{root}/gateway/...` presence:
    // a district of either name would mix its events into them.
    let reserved = ["gateway", "commands"];
    for d in inv
        .districts
        .iter()
        .filter(|d| reserved.contains(&d.id.as_str()))
    {
        out.push(ConfigIssue::new(
            &d.at,
            format!(
                "district id `{}` cannot be an MQTT topic level: names a subtree of the gateway's own",
                d.id
            ),
        ));
    }
    out
}

/// Starts the embedded broker if asked for and the publisher task; `None`
/// when `mqtt.url = "none"`. `gateway_id` is this process's name — the
/// `gateway.id`, or in cluster mode the `cluster.instance_id` — which names
/// the presence topic, is the default client id and the `gateway` of its
/// payloads.
pub fn start(
    m: &MqttSettings,
    gateway_id: &str,
    live: Arc<LiveState>,
    topology: &Topology,
    control: Option<Arc<crate::control::Control>>,
    alarms: Arc<crate::alarm::Alarms>,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Option<MqttLink>, MqttError> {
    let (host, port, tls, embedded) = match m.url.clone() {
        BrokerChoice::None => return Ok(None),
        BrokerChoice::Embedded => {
            let addr = broker::start(m.embedded_listen, usize::from(m.max_inflight))?;
            (addr.ip().to_string(), addr.port(), false, Some(addr))
        }
        BrokerChoice::External { host, port, tls } => (host, port, tls, None),
    };
    let bad = topic_id_problems(&live.inventory, gateway_id);
    if !bad.is_empty() {
        return Err(MqttError::TopicIds(bad));
    }
    let topics = payload::Topics::new(&m.topic_root, gateway_id)?;
    let options = m.options(gateway_id, &host, port, tls, &topics)?;
    let scheme = if tls { "mqtts" } else { "mqtt" };
    let status = Arc::new(LinkStatus::new(format!("{scheme}://{host}:{port}")));
    let inbox = inbox::Inbox::new(m.batch_queue, status.clone());
    let outbox = outbox::Outbox::open(&m.spill_dir, m.event_queue)?.with_fsync(m.fsync);
    let bands = track::Deadbands {
        power: m.deadband_power,
        voltage: m.deadband_voltage,
        current: m.deadband_current,
    };
    let tracker = track::Tracker::new(
        topology,
        live.inventory.lamps.len(),
        live.inventory.cabinets.len(),
        bands,
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
        buf: Vec::new(),
    };
    let alarm_sink = alarms::start(inbox.clone(), topics.clone(), gateway_id, alarms, cancel);
    let schedule_sink = Arc::new(schedule::ScheduleStates {
        inbox: inbox.clone(),
        topics: topics.clone(),
        gateway_id: gateway_id.to_string(),
    });
    if let Some(control) = &control {
        control.observe(Arc::new(commands::AckObserver {
            inbox: inbox.clone(),
            topics,
        }));
    }
    let span = tracing::info_span!("mqtt", broker = %status.broker);
    let task = tokio::spawn(tracing::Instrument::instrument(publisher.run(), span));
    Ok(Some(MqttLink {
        reload: Reloader {
            inbox: inbox.clone(),
            bands,
        },
        sink: Arc::new(inbox::MqttSink { inbox }),
        alarms: alarm_sink,
        schedule: schedule_sink,
        status,
        task,
        embedded,
    }))
}
