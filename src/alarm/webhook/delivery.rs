//! One webhook's delivery task: the oldest waiting notification is posted
//! until the receiver accepts it, then the next (the rules in the module
//! doc above). Also the HTTP client, the signature, the verdict on an
//! answer and the backoff.

use super::notification::Notification;
use super::queue::Queue;
use super::status::HookStatus;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a request under way when the gateway stops may still take to
/// be answered; past it, it is abandoned and goes again at the next run.
pub const STOP_GRACE: Duration = Duration::from_secs(1);

/// Answers in a row refusing the same body (400, 413, 422) before it is
/// dropped.
pub const REFUSALS_BEFORE_DROP: u32 = 3;

/// The first retry waits this long (or `max_backoff` if shorter).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

pub(super) const SIGNATURE_HEADER: &str = "x-lampgw-signature";
pub(super) const DELIVERY_HEADER: &str = "x-lampgw-delivery";

/// What the delivery task needs of one `[[alarms.webhooks]]`.
#[derive(Debug)]
pub(super) struct Hook {
    pub(super) name: String,
    pub(super) url: Uri,
    pub(super) secret: Option<SecretString>,
    pub(super) timeout: Duration,
    pub(super) max_backoff: Duration,
    pub(super) status: Arc<HookStatus>,
}

/// The HTTP client every webhook posts through.
pub(super) type Client =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Pooled HTTP/1.1 connections; https through rustls on the `ring`
/// provider with the system's roots (as the MQTT link). No proxy, and no
/// redirect is followed (a redirected POST would become a GET, and the body
/// and its signature would go where nobody configured).
pub(super) fn client() -> Result<Client, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A broken system root must not stop the others from working.
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ClientError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(https))
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("TLS: {0}")]
    Tls(#[source] rustls::Error),
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`.
pub(super) fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What an answer means for the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Accepted,
    /// The receiver refuses this body as it is (400, 413, 422).
    Refused,
    /// The receiver, the network or our settings are wrong for now, the
    /// same for any body: retried, never dropped.
    Retry,
}

pub(super) fn verdict(status: StatusCode) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Accepted,
        400 | 413 | 422 => Verdict::Refused,
        _ => Verdict::Retry,
    }
}

/// Capped exponential backoff with jitter: the n-th retry of a notification
/// waits min(1 s · 2ⁿ⁻¹, max) × a random factor in [0.5, 1), so webhooks
/// failing together spread out.
#[derive(Debug)]
pub(super) struct Backoff {
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(super) fn new(max: Duration) -> Self {
        Self { max, failures: 0 }
    }

    /// The cap before jitter of the next wait.
    pub(super) fn ceiling(&self) -> Duration {
        FIRST_BACKOFF
            .saturating_mul(1u32 << self.failures.min(16))
            .min(self.max)
    }

    pub(super) fn next(&mut self) -> Duration {
        let d = self.ceiling();
        self.failures += 1;
        d.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// How one attempt ended.
enum Attempt {
    Answered {
        status: StatusCode,
        retry_after: Option<Duration>,
        /// The start of a refusal's body, for the log.
        reason: String,
    },
    /// No answer within the webhook's `timeout`.
    TimedOut,
    Failed(hyper_util::client::legacy::Error),
}

/// How a notification left the delivery loop.
enum Settled {
    Delivered,
    Dropped,
    Stopped,
}

/// Delivers the queue's notifications in order until `cancel` fires.
pub(super) async fn run(hook: Hook, client: Client, queue: Arc<Queue>, cancel: CancellationToken) {
    let name = hook.name.as_str();
    let status = hook.status.clone();
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let next = match queue.next() {
            Ok(Some(next)) => next,
            Ok(None) => {
                tokio::select! {
                    () = queue.pushed() => continue,
                    () = cancel.cancelled() => break,
                }
            }
            Err(e) => {
                // Only this process writes the spool; a line that does not
                // read now is set aside when the spool is opened next time.
                status
                    .spool_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(webhook = %name, error = %e, "cannot read the webhook spool; trying again");
                tokio::select! {
                    () = tokio::time::sleep(hook.max_backoff.max(FIRST_BACKOFF)) => continue,
                    () = cancel.cancelled() => break,
                }
            }
        };
        match deliver(&hook, &client, &next.note, &cancel).await {
            Settled::Delivered | Settled::Dropped => queue.done(next),
            Settled::Stopped => break,
        }
    }
    tracing::info!(
        webhook = %name,
        pending = status.pending.load(std::sync::atomic::Ordering::Relaxed),
        "webhook delivery stopped; what is pending waits in its spool for the next run"
    );
}

/// Posts one notification until it is accepted, dropped, or the gateway
/// stops.
async fn deliver(
    hook: &Hook,
    client: &Client,
    note: &Notification,
    cancel: &CancellationToken,
) -> Settled {
    let name = hook.name.as_str();
    let body = Bytes::from(note.body());
    let signature = hook
        .secret
        .as_ref()
        .map(|s| signature(s.expose_secret().as_bytes(), &body));
    let mut backoff = Backoff::new(hook.max_backoff);
    let mut refusals = 0;
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let send = post(
            client,
            hook,
            &note.delivery,
            body.clone(),
            signature.as_deref(),
        );
        tokio::pin!(send);
        let outcome = tokio::select! {
            outcome = &mut send => outcome,
            () = cancel.cancelled() => {
                // Finish the request under way within a bounded time, or
                // leave it to the next run (the receiver may see it twice).
                match tokio::time::timeout(STOP_GRACE, &mut send).await {
                    Ok(outcome @ Attempt::Answered { status, .. })
                        if verdict(status) == Verdict::Accepted => outcome,
                    _ => return Settled::Stopped,
                }
            }
        };
        let wait = match outcome {
            Attempt::Answered { status, .. } if verdict(status) == Verdict::Accepted => {
                hook.status.succeeded(chrono::Utc::now());
                if attempt > 1 {
                    tracing::info!(webhook = %name, delivery = %note.delivery, attempt, status = status.as_u16(), "webhook delivered after retries");
                }
                return Settled::Delivered;
            }
            Attempt::Answered {
                status,
                retry_after,
                reason,
            } => {
                hook.status.failed();
                let refused = verdict(status) == Verdict::Refused;
                if refused {
                    refusals += 1;
                } else {
                    refusals = 0;
                }
                if refusals >= REFUSALS_BEFORE_DROP {
                    hook.status
                        .dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!(
                        webhook = %name,
                        delivery = %note.delivery,
                        alarm = note.change.alarm.id,
                        version = note.change.alarm.version,
                        status = status.as_u16(),
                        attempt,
                        reason = %reason,
                        "webhook receiver refuses this notification; dropped"
                    );
                    return Settled::Dropped;
                }
                let wait = backoff.next();
                // A receiver's Retry-After is honoured up to max_backoff.
                let wait = retry_after.map_or(wait, |r| r.min(hook.max_backoff).max(wait));
                tracing::warn!(
                    webhook = %name,
                    delivery = %note.delivery,
                    status = status.as_u16(),
                    attempt,
                    retry_in_ms = wait.as_millis() as u64,
                    reason = %reason,
                    "webhook receiver did not accept the notification"
                );
                wait
            }
            failure @ (Attempt::TimedOut | Attempt::Failed(_)) => {
                hook.status.failed();
                refusals = 0;
                let wait = backoff.next();
                let (timeout, connect, error) = match &failure {
                    Attempt::Failed(e) => (false, e.is_connect(), causes(e)),
                    _ => (true, false, format!("no answer within {:?}", hook.timeout)),
                };
                // Neither the error nor its causes carry the URL.
                tracing::warn!(
                    webhook = %name,
                    delivery = %note.delivery,
                    attempt,
                    timeout,
                    connect,
                    retry_in_ms = wait.as_millis() as u64,
                    error = %error,
                    "webhook request failed"
                );
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => return Settled::Stopped,
        }
    }
}

/// An error with its causes (`a: b: c`), which say what failed (refused,
/// timed out, the certificate); the URL is not among them.
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Sends one request: headers back within the webhook's `timeout`, or it
/// timed out. What follows them is read within what is left of it — the
/// start of a refusal's body for the log, the rest of an acceptance so the
/// connection can serve the next — and counts for nothing.
async fn post(
    client: &Client,
    hook: &Hook,
    delivery: &str,
    body: Bytes,
    signature: Option<&str>,
) -> Attempt {
    let deadline = Instant::now() + hook.timeout;
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(hook.url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(
            USER_AGENT,
            HeaderValue::from_static(concat!("lamp-gateway/", env!("CARGO_PKG_VERSION"))),
        )
        .header(DELIVERY_HEADER, delivery);
    if let Some(sig) = signature {
        request = request.header(SIGNATURE_HEADER, sig);
    }
    // A checked URI, a UUID and hex: every part is valid.
    let request = request.body(Full::new(body)).expect("valid request parts");
    let response = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => return Attempt::TimedOut,
        Ok(Err(e)) => return Attempt::Failed(e),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let reason = tokio::time::timeout_at(deadline, read_rest(response))
        .await
        .unwrap_or_default();
    Attempt::Answered {
        status,
        retry_after,
        reason,
    }
}

/// Reads an answer's body: up to 64 KiB of an acceptance (then the
/// connection is given up), the first 200 bytes of anything else, which it
/// returns as text.
async fn read_rest(response: Response<Incoming>) -> String {
    let success = response.status().is_success();
    let mut body = response.into_body();
    let mut read = 0;
    while let Some(Ok(frame)) = body.frame().await {
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if !success {
            let text = String::from_utf8_lossy(&data[..data.len().min(200)]);
            return text.chars().filter(|c| !c.is_control()).collect();
        }
        read += data.len();
        if read > 64 << 10 {
            break;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_400_413_and_422_refuse_a_body_every_other_failure_is_retried() {
        let v = |c: u16| verdict(StatusCode::from_u16(c).unwrap());
        for c in [200, 201, 202, 204, 299] {
            assert_eq!(v(c), Verdict::Accepted, "{c}");
        }
        for c in [400, 413, 422] {
            assert_eq!(v(c), Verdict::Refused, "{c}");
        }
        for c in [
            301, 302, 307, 401, 403, 404, 405, 408, 410, 415, 429, 500, 502, 503, 504,
        ] {
            assert_eq!(v(c), Verdict::Retry, "{c}");
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_to_the_cap_with_jitter_of_up_to_half() {
        let mut b = Backoff::new(Duration::from_secs(10));
        for want in [1, 2, 4, 8, 10, 10, 10] {
            let want = Duration::from_secs(want);
            assert_eq!(b.ceiling(), want);
            let d = b.next();
            assert!(d >= want / 2 && d < want, "{d:?} for {want:?}");
        }
        // A cap below a second: every wait under it.
        let mut b = Backoff::new(Duration::from_millis(50));
        assert_eq!(b.ceiling(), Duration::from_millis(50));
        assert!(b.next() < Duration::from_millis(50));
        assert_eq!(b.ceiling(), Duration::from_millis(50));
    }
}
