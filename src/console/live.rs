//! Live updates for the pages, as server-sent events.
//!
//! One computation a second however many browsers are open: a [`Hub`] task
//! takes the figures now (the API's `NowCache`) and counts the standing
//! alarms per district and severity once per tick, and every connected
//! page receives that frame through a `watch` channel. What a browser is
//! then sent is cut from the frame for its person's districts — a walk of
//! the districts, never of the lamps. A lamp page's stream reads its one
//! lamp at each tick.
//!
//! The hub runs while someone listens: it starts with the first stream and
//! stops when the last one ends, or when its router is replaced at a reload
//! (the streams then end and the browsers reconnect to the new router). A
//! stream also ends when its session does, so a console left open does not
//! stay logged in by listening, and when the gateway stops, so that the
//! server's graceful shutdown is not held open by a browser.

use super::ConsoleState;
use crate::alarm::Severity;
use crate::api::AppState;
use crate::figures::CityNow;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures_util::stream::{self, Stream};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// How often the frame is taken.
pub(super) const TICK: Duration = Duration::from_secs(1);

/// What every stream of one tick is cut from.
#[derive(Debug)]
pub(super) struct Frame {
    pub now: Arc<CityNow>,
    /// Standing alarms by district and severity (emergency, serious,
    /// ordinary).
    pub alarms: HashMap<String, [usize; 3]>,
}

/// A severity's place in a frame's per-district counts: its place in
/// `Severity::ALL` (emergency, serious, ordinary).
pub(super) fn severity_slot(s: Severity) -> usize {
    Severity::ALL
        .iter()
        .position(|x| *x == s)
        .expect("every severity is in Severity::ALL")
}

/// The shared frame's producer, started by the first listener.
#[derive(Debug, Default)]
pub(super) struct Hub {
    rx: parking_lot::Mutex<Option<watch::Receiver<Option<Arc<Frame>>>>>,
}

impl Hub {
    /// A receiver of the frames, starting the task when none runs.
    fn subscribe(self: &Arc<Self>, app: &AppState) -> watch::Receiver<Option<Arc<Frame>>> {
        let mut slot = self.rx.lock();
        if let Some(rx) = slot.as_ref().filter(|rx| rx.has_changed().is_ok()) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        tokio::spawn(run(Arc::downgrade(self), app.clone(), tx));
        *slot = Some(rx.clone());
        rx
    }
}

async fn run(hub: Weak<Hub>, app: AppState, tx: watch::Sender<Option<Arc<Frame>>>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The hub's own receiver is one; stop when it is the only one, or
        // when the router that owned the hub is gone.
        if hub.upgrade().is_none() || tx.receiver_count() <= 1 {
            break;
        }
        let app = app.clone();
        let frame = tokio::task::spawn_blocking(move || take_frame(&app)).await;
        match frame {
            Ok(f) => {
                tx.send_replace(Some(Arc::new(f)));
            }
            Err(e) => tracing::warn!(error = %e, "console live frame failed"),
        }
    }
    tracing::debug!("console live updates stopped: nobody listens");
}

fn take_frame(app: &AppState) -> Frame {
    let at = Utc::now();
    let now = app.now_cache.get(&app.live, &app.alarms);
    Frame {
        now,
        alarms: standing_by_district(app, at),
    }
}

/// The standing alarms by district and severity (`severity_slot`): what a
/// frame carries and what the overview's page starts with.
pub(super) fn standing_by_district(
    app: &AppState,
    at: chrono::DateTime<Utc>,
) -> HashMap<String, [usize; 3]> {
    let mut counts: HashMap<String, [usize; 3]> = HashMap::new();
    app.alarms.for_each_open(at, |a, _| {
        if a.state.is_standing() {
            counts.entry(a.district.clone()).or_default()[severity_slot(a.severity)] += 1;
        }
    });
    counts
}

/// A page's stream: one `update` event per frame, made by `render` for the
/// person (`None`: nothing to send this tick), until the session ends.
pub(super) fn stream<F>(
    s: &ConsoleState,
    session_id: String,
    render: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn(&Frame) -> Option<String> + Send + 'static,
{
    let rx = s.hub.subscribe(&s.app);
    let console = s.console.clone();
    let events = stream::unfold(
        (rx, console, session_id, render),
        |(mut rx, console, id, render)| async move {
            loop {
                let changed = tokio::select! {
                    c = rx.changed() => c.is_ok(),
                    () = console.stopping.cancelled() => false,
                };
                if !changed || !console.sessions.is_live(&id) {
                    return None;
                }
                let frame = rx.borrow_and_update().clone();
                if let Some(data) = frame.as_deref().and_then(&render) {
                    let event = Event::default().event("update").data(data);
                    return Some((Ok(event), (rx, console, id, render)));
                }
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}
