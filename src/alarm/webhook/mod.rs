//! Alarm webhooks: every alarm change that passes a webhook's filters is
//! posted to its receiver (an SMS gateway, a chat bot, a work-order system),
//! in order, at least once, through a durable queue of its own.
//!
//! **Queue.** Each `[[alarms.webhooks]]` has a spool ([`crate::queue`]) in
//! `<alarms.webhook_dir>/<name>/`. [`WebhookSink::offer_alarms`] filters the
//! changes per webhook (`kinds`, `severities`, `districts`: each empty for
//! all, all three must pass) and appends what passes to that webhook's spool
//! before it returns — one write per webhook per batch, nothing waits on a
//! receiver — so a kill loses nothing offered. A notification leaves the
//! spool only once its receiver accepted it (2xx) or it was dropped; what a
//! stop or a kill leaves goes out first at the next start, in order.
//!
//! **Request.** `POST <url>` (HTTP/1.1, pooled connections; https through
//! rustls on the `ring` provider with the system's roots; no proxy) with
//! `Content-Type: application/json` and the body
//! `{"delivery", "gateway", "change", "at", "alarm": {…}}` — the MQTT alarm
//! event with a delivery id first. Headers: `X-Lampgw-Delivery: <id>`,
//! a random UUID drawn when the change is spooled, so every attempt of it
//! (after a restart too) carries the same id and the very same body bytes;
//! `X-Lampgw-Signature: sha256=<hex HMAC-SHA256 of the body bytes>` keyed
//! with `secret`, when it is set. A receiver verifies the signature over the
//! raw body before parsing it (comparing in constant time), ignores a
//! delivery id it has seen (delivery is at least once: an answer lost on its
//! way back, or a stop with a request under way, sends it again), and keeps
//! the highest `alarm.version` per `alarm.id`, as the store does.
//!
//! **Order and retries.** One task per webhook posts the oldest waiting
//! notification; the next goes only after it was accepted or dropped. A
//! failed attempt — connect error, `timeout` passed, any answer but 2xx —
//! is logged, counted, and the same notification goes again after a backoff
//! from 1 s doubling up to `max_backoff`, jittered into [½, 1) of that so
//! webhooks failing together spread out (a 429's or 503's `Retry-After` in
//! seconds is honoured up to `max_backoff`). Redirects are not followed: a
//! 3xx is a failure like any (a redirected POST would become a GET, and the
//! body and its signature would go where nobody configured).
//!
//! **Refusals (the 4xx decision).** A receiver that refuses *this body* must
//! not block the queue forever, but dropping is a loss, so only the answers
//! that are about the body drop it: **400, 413 and 422, three times in a
//! row for the same notification** (the backoff between them rides out a
//! receiver's bad deploy), then it is logged at error with its delivery id
//! and alarm, counted (`lampgw_webhook_dropped_total`) and committed like a
//! delivered one, and the next follows. Every other non-2xx is about the
//! receiver or our settings, the same for any body — 401/403 (secret,
//! token), 404/405/410 (URL), 408, 429, 5xx, 3xx — and is retried without
//! end: dropping there would empty the whole queue into a receiver that
//! refuses everything until someone fixes it. The queue waits instead;
//! `lampgw_webhook_pending` and `…_failed_attempts_total` and the warning per
//! attempt say so.
//!
//! **Stop.** Cancellation ends every wait at once; a request under way gets
//! [`STOP_GRACE`] (1 s) to be answered — a 2xx then is
//! committed — else it is abandoned and goes again at the next start. What
//! is offered after the stop (the state task drains after the pollers) is
//! still spooled, for the next run.
//!
//! **Names.** `name`, or `webhook-N` for the N-th webhook (from 1): the
//! queue's folder and the `webhook` label of the metrics, so 1–64 of
//! `A-Z a-z 0-9 . _ -`, not starting with `.`, unique ([`problems`]).
//! Renaming a webhook (or moving an unnamed one in the list) starts a new,
//! empty queue; the old folder keeps what it held. Webhooks are started once
//! per run: a reload does not restart them.
//!
//! **Never logged:** the secret, and the URL (chat-bot webhooks carry their
//! key in it): logs name the webhook (`webhook = name`), HTTP errors are
//! logged without their URL, the start logs the host only.

mod delivery;
pub mod metrics;
mod notification;
mod queue;
pub mod status;

pub use delivery::{ClientError, REFUSALS_BEFORE_DROP, STOP_GRACE};
pub use status::{HookSnapshot, HookStatus, WebhookStatus};

use crate::alarm::model::{AlarmChange, AlarmKind, Severity};
use crate::alarm::{AlarmSink, WebhookSettings};
use crate::queue::SpoolError;
use notification::Notification;
use queue::Queue;
use std::path::Path;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook settings: {}", list(.0))]
    Settings(Vec<(String, String)>),
    #[error("webhook {name}: {source}")]
    Spool {
        name: String,
        #[source]
        source: SpoolError,
    },
    #[error("webhook HTTP client: {0}")]
    Client(#[from] ClientError),
}

fn list(problems: &[(String, String)]) -> String {
    problems
        .iter()
        .map(|(k, m)| format!("{k}: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The running webhooks: the sink to add to the alarm engine, every
/// webhook's status (for `/metrics` through [`metrics::WebhookMetrics`] and
/// `/readyz`), and one delivery task per webhook, which end when the
/// cancellation token given to [`start`] fires.
#[derive(Debug)]
pub struct Webhooks {
    pub sink: Arc<dyn AlarmSink>,
    pub status: Arc<WebhookStatus>,
    pub tasks: Vec<JoinHandle<()>>,
}

impl Webhooks {
    /// No webhook is configured (the sink takes nothing).
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the delivery tasks, after the cancellation: each within
    /// [`STOP_GRACE`] of it.
    pub async fn join(self) {
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a webhook delivery task failed");
            }
        }
    }
}

/// The name of the `i`-th webhook (from 0): its `name`, or `webhook-<i+1>`.
pub fn name_of(i: usize, w: &WebhookSettings) -> String {
    w.name
        .clone()
        .unwrap_or_else(|| format!("webhook-{}", i + 1))
}

/// What [`start`] refuses in `alarms.webhooks`, as (key, problem), for the
/// settings' check to report with the rest: names unfit for a folder and a
/// label, or used twice, URLs that do not parse, a zero `max_backoff`.
pub fn problems(webhooks: &[WebhookSettings]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, w) in webhooks.iter().enumerate() {
        let name = name_of(i, w);
        let fit = (1..=64).contains(&name.len())
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !fit {
            out.push((
                format!("alarms.webhooks[{i}].name"),
                format!("`{name}` must be 1-64 of A-Z a-z 0-9 . _ - and not start with `.` (it names the queue's folder)"),
            ));
        } else if !seen.insert(name.clone()) {
            out.push((
                format!("alarms.webhooks[{i}].name"),
                format!("`{name}` names two webhooks"),
            ));
        }
        match w.url.parse::<hyper::Uri>() {
            Ok(u) if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() => {}
            // Not the URL itself: it may carry a key.
            Ok(_) => out.push((
                format!("alarms.webhooks[{i}].url"),
                "must be an http:// or https:// URL with a host".into(),
            )),
            Err(e) => out.push((
                format!("alarms.webhooks[{i}].url"),
                format!("does not parse: {e}"),
            )),
        }
        if w.max_backoff.is_zero() {
            out.push((
                format!("alarms.webhooks[{i}].max_backoff"),
                "must be above zero".into(),
            ));
        }
    }
    out
}

/// Opens every webhook's queue in `dir/<name>/` (what a previous run left
/// goes first) and starts its delivery task. `gateway_id` goes into every
/// body (and so lets a receiver tell gateways apart). Call inside the tokio
/// runtime; the tasks stop when `cancel` fires.
pub fn start(
    settings: &[WebhookSettings],
    gateway_id: &str,
    dir: &Path,
    cancel: CancellationToken,
) -> Result<Webhooks, WebhookError> {
    let bad = problems(settings);
    if !bad.is_empty() {
        return Err(WebhookError::Settings(bad));
    }
    let mut targets = Vec::new();
    let mut hooks = Vec::new();
    let mut statuses = Vec::new();
    for (i, w) in settings.iter().enumerate() {
        let name = name_of(i, w);
        let status = Arc::new(HookStatus::new(name.clone()));
        let queue = Queue::open(&dir.join(&name), status.clone()).map_err(|source| {
            WebhookError::Spool {
                name: name.clone(),
                source,
            }
        })?;
        let queue = Arc::new(queue);
        let url: hyper::Uri = w.url.parse().expect("checked by problems()");
        tracing::info!(
            webhook = %name,
            host = url.host().unwrap_or(""),
            signed = w.secret.is_some(),
            pending = status.snapshot().pending,
            "webhook on"
        );
        hooks.push(delivery::Hook {
            name,
            url,
            secret: w.secret.clone(),
            timeout: w.timeout,
            max_backoff: w.max_backoff,
            status: status.clone(),
        });
        targets.push(Target {
            filter: Filter {
                kinds: w.kinds.clone(),
                severities: w.severities.clone(),
                districts: w.districts.clone(),
            },
            queue,
        });
        statuses.push(status);
    }
    let mut tasks = Vec::new();
    if !hooks.is_empty() {
        let client = delivery::client()?;
        for (hook, target) in hooks.into_iter().zip(&targets) {
            tasks.push(tokio::spawn(delivery::run(
                hook,
                client.clone(),
                target.queue.clone(),
                cancel.clone(),
            )));
        }
    }
    Ok(Webhooks {
        sink: Arc::new(WebhookSink {
            targets,
            gateway: gateway_id.to_string(),
        }),
        status: Arc::new(WebhookStatus { hooks: statuses }),
        tasks,
    })
}

/// Spools each change for every webhook whose filters it passes.
#[derive(Debug)]
pub struct WebhookSink {
    targets: Vec<Target>,
    gateway: String,
}

#[derive(Debug)]
struct Target {
    filter: Filter,
    queue: Arc<Queue>,
}

/// Each list empty: all pass.
#[derive(Debug)]
struct Filter {
    kinds: Vec<AlarmKind>,
    severities: Vec<Severity>,
    districts: Vec<String>,
}

impl Filter {
    fn passes(&self, c: &AlarmChange) -> bool {
        let a = &c.alarm;
        (self.kinds.is_empty() || self.kinds.contains(&a.kind))
            && (self.severities.is_empty() || self.severities.contains(&a.severity))
            && (self.districts.is_empty() || self.districts.contains(&a.district))
    }
}

impl AlarmSink for WebhookSink {
    fn offer_alarms(&self, changes: Arc<[AlarmChange]>) {
        for t in &self.targets {
            let notes: Vec<Notification> = changes
                .iter()
                .filter(|c| t.filter.passes(c))
                .map(|c| Notification::new(&self.gateway, c.clone()))
                .collect();
            t.queue.push(notes);
        }
    }
}
