//! The MQTT task: turns applied batches into retained states and events and
//! hands them to rumqttc without ever waiting on the broker.
//!
//! One connection attempt is one "generation": a fresh `AsyncClient` and
//! `EventLoop`, the loop driven by a task of its own that forwards its events
//! here. rumqttc reports `Outgoing::Publish(pkid)` in request order, so the
//! FIFO of what was handed over maps packet ids to our items, and a PUBACK
//! tells which item the broker has. When a connection fails the whole
//! generation is dropped, requests still queued in it included, so nothing
//! from an old connection can be mistaken for the new one's.

use super::config::MqttSettings;
use super::inbox::Inbox;
use super::outbox::{Message, Outbox};
use super::payload::{self, Event, Topics};
use super::refusal::{refusal, refused_request};
use super::status::LinkStatus;
use super::track::{RawEvent, Tracker};
use crate::control::Control;
use crate::state::LiveState;
use crate::topology::DeviceKey;
use chrono::Utc;
use rumqttc::{AsyncClient, ConnectionError, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

type LoopEvent = (u64, Result<rumqttc::Event, ConnectionError>);

/// What a handed-over publish was, to account for its PUBACK.
#[derive(Debug, Clone, Copy)]
enum Item {
    State,
    Event(u64),
    Presence,
}

#[derive(Debug)]
pub struct Publisher {
    pub settings: MqttSettings,
    pub gateway_id: String,
    pub options: MqttOptions,
    pub live: Arc<LiveState>,
    pub inbox: Arc<Inbox>,
    pub status: Arc<LinkStatus>,
    pub tracker: Tracker,
    pub outbox: Outbox,
    pub topics: Topics,
    /// Carries out `.../set` commands; `None` subscribes to nothing.
    pub control: Option<Arc<Control>>,
    /// Every state payload is rendered here first (`payload::write_*`),
    /// then copied out at its final size.
    pub buf: Vec<u8>,
}

struct Link {
    client: Option<AsyncClient>,
    generation: u64,
    stop_loop: CancellationToken,
    connected: bool,
    announce_online: bool,
    handed: VecDeque<Item>,
    in_flight: HashMap<u16, Item>,
    backoff: Duration,
    retry_at: Option<Instant>,
    tx: mpsc::Sender<LoopEvent>,
}

/// Drives one generation's event loop until it fails or is stopped.
async fn drive(
    generation: u64,
    mut event_loop: EventLoop,
    tx: mpsc::Sender<LoopEvent>,
    stop: CancellationToken,
) {
    loop {
        let r = tokio::select! {
            () = stop.cancelled() => return,
            r = event_loop.poll() => r,
        };
        let failed = r.is_err();
        if tx.send((generation, r)).await.is_err() || failed {
            return;
        }
    }
}

impl Publisher {
    pub async fn run(mut self) {
        let (tx, mut rx) = mpsc::channel::<LoopEvent>(1024);
        let mut link = Link {
            client: None,
            generation: 0,
            stop_loop: CancellationToken::new(),
            connected: false,
            announce_online: false,
            handed: VecDeque::new(),
            in_flight: HashMap::new(),
            backoff: self.settings.reconnect_min,
            retry_at: None,
            tx,
        };
        let run_id = Utc::now().timestamp_millis();
        let mut seq = 0u64;
        self.connect(&mut link);
        let every = self.settings.refresh_interval;
        let mut refresh = tokio::time::interval_at(Instant::now() + every, every);
        let mut stop_by: Option<Instant> = None;
        loop {
            let taken = self.inbox.take();
            self.outbox.push_all(taken.messages);
            for batch in &taken.batches {
                let raw = self.tracker.apply(batch);
                self.queue_events(raw, run_id, &mut seq);
            }
            if taken.rescan {
                let raw = {
                    let live = self.live.read();
                    self.tracker.rescan(&live, Utc::now())
                };
                self.queue_events(raw, run_id, &mut seq);
            }
            if let Some(r) = taken.reconfigure {
                // Every state is published again from the new tracker, so
                // no change pending in the old one is lost; the batches
                // behind the switch are taken at once.
                self.live = r.live;
                self.tracker = r.tracker;
                self.tracker.mark_all(&self.live.read());
                self.inbox.notify.notify_one();
            }
            if taken.closed && stop_by.is_none() {
                stop_by = Some(Instant::now() + self.settings.drain_timeout);
            }
            self.pump(&mut link);
            self.show(&link);
            if let Some(at) = stop_by {
                let drained = self.outbox.is_empty()
                    && self.tracker.pending() == 0
                    && link.handed.is_empty()
                    && link.in_flight.is_empty();
                if (drained && link.connected) || Instant::now() >= at {
                    break;
                }
            }
            let retry_at = link.retry_at;
            tokio::select! {
                Some((generation, event)) = rx.recv() => {
                    if generation == link.generation {
                        self.on_event(&mut link, event);
                    }
                }
                () = self.inbox.notify.notified(), if stop_by.is_none() => {}
                _ = refresh.tick() => self.tracker.mark_all(&self.live.read()),
                () = sleep_until(retry_at), if retry_at.is_some() => self.connect(&mut link),
                () = sleep_until(stop_by), if stop_by.is_some() => {}
            }
        }
        self.finish(&mut link, &mut rx).await;
    }

    fn connect(&self, link: &mut Link) {
        link.generation += 1;
        link.retry_at = None;
        link.stop_loop = CancellationToken::new();
        let cap = usize::from(self.settings.max_inflight) + 16;
        let (client, event_loop) = AsyncClient::new(self.options.clone(), cap);
        link.client = Some(client);
        // One span per connection attempt: its logs say which one they are.
        let span = tracing::info_span!("mqtt_connection", generation = link.generation);
        tokio::spawn(
            drive(
                link.generation,
                event_loop,
                link.tx.clone(),
                link.stop_loop.clone(),
            )
            .instrument(span),
        );
    }

    fn disconnected(&mut self, link: &mut Link) {
        link.connected = false;
        link.client = None;
        link.stop_loop.cancel();
        link.handed.clear();
        link.in_flight.clear();
        self.outbox.requeue_in_flight();
        self.status.connected.store(false, Ordering::Relaxed);
    }

    fn on_event(&mut self, link: &mut Link, event: Result<rumqttc::Event, ConnectionError>) {
        use rumqttc::Event as E;
        match event {
            Ok(E::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(broker = %self.status.broker, "MQTT connected");
                link.connected = true;
                link.announce_online = true;
                link.backoff = self.settings.reconnect_min;
                self.status.connected.store(true, Ordering::Relaxed);
                self.status.connects.fetch_add(1, Ordering::Relaxed);
                // A new session starts empty: every device's state goes again.
                self.tracker.mark_all(&self.live.read());
                if let (Some(_), Some(client)) = (&self.control, &link.client) {
                    for filter in self.topics.command_filters() {
                        if let Err(e) = client.try_subscribe(filter.clone(), QoS::AtLeastOnce) {
                            tracing::error!(topic = %filter, error = %e, "cannot subscribe to commands");
                        }
                    }
                }
            }
            Ok(E::Incoming(Packet::Publish(p))) => self.on_command(p),
            Ok(E::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(item) = link.handed.pop_front() {
                    link.in_flight.insert(pkid, item);
                }
            }
            Ok(E::Incoming(Packet::PubAck(ack))) => match link.in_flight.remove(&ack.pkid) {
                Some(Item::State) => {
                    self.status.states_published.fetch_add(1, Ordering::Relaxed);
                }
                Some(Item::Event(id)) => {
                    self.outbox.acked(id);
                    self.status.events_published.fetch_add(1, Ordering::Relaxed);
                }
                Some(Item::Presence) | None => {}
            },
            Ok(_) => {}
            Err(e) => {
                self.status
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
                let jitter = link.backoff.mul_f64(fastrand::f64() * 0.2);
                tracing::warn!(
                    broker = %self.status.broker,
                    error = %e,
                    retry_in_ms = (link.backoff + jitter).as_millis() as u64,
                    "MQTT connection lost or refused"
                );
                self.disconnected(link);
                link.retry_at = Some(Instant::now() + link.backoff + jitter);
                link.backoff = (link.backoff * 2).min(self.settings.reconnect_max);
            }
        }
    }

    fn on_command(&mut self, p: rumqttc::Publish) {
        let Some(control) = &self.control else { return };
        let Some(set) = self.topics.parse_set(&p.topic) else {
            return;
        };
        // A retained command would run again on every reconnect. The broker
        // flags it retained only when it hands over its stored copy (at a
        // subscribe); see the README on live deliveries.
        let ack = if p.retain {
            tracing::warn!(topic = %p.topic, "retained command ignored");
            super::commands::retained(&self.topics, &p.topic, &p.payload)
        } else {
            super::commands::handle(control, &self.live.inventory, &self.topics, set, &p.payload)
        };
        self.outbox.push(ack);
    }

    /// Turns raw events into messages and queues them in one append to the
    /// outbox's spool; counted as raised once they are there.
    fn queue_events(&mut self, raw: Vec<RawEvent>, run: i64, seq: &mut u64) {
        if raw.is_empty() {
            return;
        }
        let inv = &self.live.inventory;
        let raised = raw.len() as u64;
        let mut messages = Vec::with_capacity(raw.len());
        for e in raw {
            let name = crate::state::device_name(inv, e.key);
            *seq += 1;
            let event = Event {
                seq: *seq,
                run,
                gateway: &self.gateway_id,
                at: e.at,
                kind: e.kind,
                device: name,
                alarm: e.alarm,
                reason: e.reason.as_ref(),
            };
            let payload = serde_json::to_string(&event).expect("plain struct serialises");
            match self.topics.events(name.district) {
                Ok(topic) => messages.push(Message {
                    topic,
                    payload,
                    retain: false,
                }),
                // The start checked every district; this keeps a bad one
                // from ever reaching the client.
                Err(e) => self.count_dropped(&e.to_string(), "no topic for the district"),
            }
        }
        self.outbox.push_all(messages);
        self.status
            .events_raised
            .fetch_add(raised, Ordering::Relaxed);
    }

    /// Hands publishes to the client while the in-flight window has room:
    /// presence first, then events in order, then device states.
    fn pump(&mut self, link: &mut Link) {
        if !link.connected {
            return;
        }
        let Some(client) = link.client.clone() else {
            return;
        };
        let window = usize::from(self.settings.max_inflight);
        let room = |l: &Link| window.saturating_sub(l.handed.len() + l.in_flight.len());
        if link.announce_online && room(link) > 0 {
            let presence = self.topics.presence();
            if client
                .try_publish(presence, QoS::AtLeastOnce, true, payload::ONLINE)
                .is_ok()
            {
                link.announce_online = false;
                link.handed.push_back(Item::Presence);
            }
        }
        while room(link) > 0 {
            let Some((id, msg)) = self.outbox.next_to_send() else {
                break;
            };
            let (topic, body, retain) = (msg.topic.clone(), msg.payload.clone(), msg.retain);
            if let Some(why) = refusal(&topic, body.len()) {
                self.outbox.dropped(id);
                self.count_dropped(&topic, why);
                continue;
            }
            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, retain, body) {
                if let Some((topic, why)) = refused_request(&e) {
                    self.outbox.dropped(id);
                    self.count_dropped(&topic, why);
                    continue;
                }
                // The request queue is full (or its event loop just ended,
                // whose error reconnects): the same message goes next time.
                self.outbox.unsend(id);
                return;
            }
            link.handed.push_back(Item::Event(id));
        }
        let n = room(link).min(self.tracker.pending());
        if n == 0 {
            return;
        }
        let keys: Vec<DeviceKey> = (0..n).filter_map(|_| self.tracker.pop_dirty()).collect();
        let live = self.live.read();
        let inv = &self.live.inventory;
        for (k, key) in keys.iter().enumerate() {
            let (topic, body) = match *key {
                DeviceKey::Lamp(i) => {
                    let i = i as usize;
                    let lamp = &inv.lamps[i];
                    let Some(cabinet) = inv.cabinet(&lamp.cabinet) else {
                        continue;
                    };
                    self.tracker.record_lamp(i, &live.lamps[i]);
                    payload::write_lamp_state(&mut self.buf, lamp, cabinet, &live.lamps[i]);
                    (
                        self.topics.lamp_state(&cabinet.district, &lamp.id),
                        self.buf.as_slice().to_vec(),
                    )
                }
                DeviceKey::Rtu(i) => {
                    let i = i as usize;
                    let cabinet = &inv.cabinets[i];
                    let Some(rtu) = &cabinet.rtu else { continue };
                    self.tracker.record_rtu(i, &live.rtus[i]);
                    payload::write_rtu_state(&mut self.buf, cabinet, &live.rtus[i]);
                    (
                        self.topics.rtu_state(&cabinet.district, &rtu.id),
                        self.buf.as_slice().to_vec(),
                    )
                }
            };
            // The start checked every id, so this never drops in practice;
            // if it did, the device's next change would try again.
            let topic = match topic {
                Ok(topic) => topic,
                Err(e) => {
                    self.count_dropped(&e.to_string(), "no state topic for the device");
                    continue;
                }
            };
            if let Some(why) = refusal(&topic, body.len()) {
                self.count_dropped(&topic, why);
                continue;
            }
            if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, true, body) {
                if let Some((topic, why)) = refused_request(&e) {
                    self.count_dropped(&topic, why);
                    continue;
                }
                for key in keys[k..].iter().rev() {
                    self.tracker.unpop(*key);
                }
                return;
            }
            link.handed.push_back(Item::State);
        }
    }

    /// A message the client or the broker would refuse whatever the
    /// connection: it is given up on, loudly, so it blocks nothing.
    fn count_dropped(&self, topic: &str, why: &str) {
        let shown: String = topic.chars().take(200).collect();
        tracing::warn!(topic = %shown.escape_debug(), error = why, "MQTT message dropped");
        self.status.messages_dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn show(&self, link: &Link) {
        let s = &self.status;
        let set = |a: &std::sync::atomic::AtomicU64, v: usize| a.store(v as u64, Ordering::Relaxed);
        set(&s.events_queued, self.outbox.in_memory());
        set(&s.events_spilled, self.outbox.spilled());
        s.events_spilled_total
            .store(self.outbox.spilled_total, Ordering::Relaxed);
        set(&s.states_pending, self.tracker.pending());
        set(&s.in_flight, link.handed.len() + link.in_flight.len());
    }

    /// Says `offline` (retained: a clean stop sends no last will), waits for
    /// its PUBACK, disconnects; what is still undelivered goes to disk.
    async fn finish(&mut self, link: &mut Link, rx: &mut mpsc::Receiver<LoopEvent>) {
        if link.connected {
            if let Some(client) = link.client.clone() {
                let topic = self.topics.presence();
                if client
                    .try_publish(topic, QoS::AtLeastOnce, true, payload::OFFLINE)
                    .is_ok()
                {
                    link.handed.push_back(Item::Presence);
                    let deadline = Instant::now() + Duration::from_secs(2);
                    let mut presence_acked = false;
                    while !presence_acked && link.connected {
                        let event = tokio::select! {
                            e = rx.recv() => e,
                            () = tokio::time::sleep_until(deadline) => None,
                        };
                        let Some((generation, event)) = event else {
                            break;
                        };
                        if generation != link.generation {
                            continue;
                        }
                        if let Ok(rumqttc::Event::Incoming(Packet::PubAck(ack))) = &event {
                            presence_acked |=
                                matches!(link.in_flight.get(&ack.pkid), Some(Item::Presence));
                        }
                        self.on_event(link, event);
                    }
                }
                let _ = client.try_disconnect();
                // The event loop writes the DISCONNECT, then ends on its own.
                let deadline = Instant::now() + Duration::from_millis(500);
                while let Ok(Some((generation, event))) =
                    tokio::time::timeout_at(deadline, rx.recv()).await
                {
                    if generation == link.generation
                        && matches!(event, Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)))
                    {
                        break;
                    }
                }
            }
        }
        self.disconnected(link);
        match self.outbox.persist() {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                events = n,
                spilled = self.outbox.spilled(),
                "MQTT events not delivered before stop; kept on disk for the next run"
            ),
            Err(e) => tracing::error!(error = %e, "MQTT events not delivered and not saved"),
        }
        self.show(link);
        tracing::info!(
            states = self.status.states_published.load(Ordering::Relaxed),
            events = self.status.events_published.load(Ordering::Relaxed),
            "MQTT publisher stopped"
        );
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
