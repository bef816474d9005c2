//! The sink the state task offers batches to. `offer` only takes a lock and
//! pushes: the state task never waits on the MQTT task, let alone the broker.

use super::status::LinkStatus;
use crate::state::{Applied, Sink};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Queue {
    batches: VecDeque<Arc<Applied>>,
    /// Samples were left out: the MQTT task compares the whole live state
    /// instead (values are all there; only intermediate flaps are missed).
    rescan: bool,
    closed: bool,
    /// Command acks to publish, in order.
    messages: Vec<super::outbox::Message>,
    /// A reload's new live state, after the first `.0` batches (the old
    /// generation's last).
    reconfigure: Option<(usize, Reconfigure)>,
}

/// A reload's new live state and the tracker for its devices: the batches
/// queued before it name devices by the old positions, those after it by
/// the new.
#[derive(Debug)]
pub struct Reconfigure {
    pub live: Arc<crate::state::LiveState>,
    pub tracker: super::track::Tracker,
}

#[derive(Debug)]
pub struct Inbox {
    queue: Mutex<Queue>,
    pub notify: Notify,
    cap: usize,
    status: Arc<LinkStatus>,
}

/// What the MQTT task takes in one go.
#[derive(Debug)]
pub struct Taken {
    pub batches: VecDeque<Arc<Applied>>,
    pub rescan: bool,
    pub closed: bool,
    pub messages: Vec<super::outbox::Message>,
    /// Switch to it after `batches`; more may be waiting behind it.
    pub reconfigure: Option<Reconfigure>,
}

impl Inbox {
    pub fn new(cap: usize, status: Arc<LinkStatus>) -> Arc<Inbox> {
        Arc::new(Inbox {
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
            cap,
            status,
        })
    }

    pub fn take(&self) -> Taken {
        let mut q = self.queue.lock();
        let (batches, reconfigure) = match q.reconfigure.take() {
            Some((n, r)) => (q.batches.drain(..n).collect(), Some(r)),
            None => (std::mem::take(&mut q.batches), None),
        };
        Taken {
            batches,
            rescan: std::mem::take(&mut q.rescan),
            closed: q.closed,
            messages: std::mem::take(&mut q.messages),
            reconfigure,
        }
    }

    /// Queues a reload's switch behind the batches offered so far.
    pub fn reconfigure(&self, r: Reconfigure) {
        let mut q = self.queue.lock();
        let n = q.batches.len();
        q.reconfigure = Some((n, r));
        drop(q);
        self.notify.notify_one();
    }

    /// Queues a message (a command ack) for the MQTT task; it then goes
    /// through the outbox like an event: in order, kept until acknowledged.
    pub fn push_message(&self, message: super::outbox::Message) {
        self.queue.lock().messages.push(message);
        self.notify.notify_one();
    }
}

/// Handed to the state task; dropping it (when the state task ends) tells
/// the MQTT task to drain and stop.
#[derive(Debug)]
pub struct MqttSink {
    pub inbox: Arc<Inbox>,
}

impl Sink for MqttSink {
    fn offer(&self, batch: Arc<Applied>) {
        let mut q = self.inbox.queue.lock();
        if q.batches.len() < self.inbox.cap {
            q.batches.push_back(batch);
        } else {
            // Full: keep the transitions (events depend on them) and let the
            // task rescan the live state for values, counting what was skipped.
            self.inbox
                .status
                .samples_skipped
                .fetch_add(batch.samples.len() as u64, Ordering::Relaxed);
            q.rescan = true;
            if !batch.transitions.is_empty() {
                q.batches.push_back(Arc::new(Applied {
                    endpoint: batch.endpoint,
                    class: batch.class,
                    at: batch.at,
                    samples: Vec::new(),
                    transitions: batch.transitions.clone(),
                }));
            }
        }
        drop(q);
        self.inbox.notify.notify_one();
    }
}

impl Drop for MqttSink {
    fn drop(&mut self) {
        self.inbox.queue.lock().closed = true;
        self.inbox.notify.notify_one();
    }
}
