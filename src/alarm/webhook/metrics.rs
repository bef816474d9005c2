//! Prometheus families of the alarm webhooks, one series per webhook name:
//! delivered, failed attempts, dropped, pending, spool errors, last success.

use super::status::WebhookStatus;
use crate::exposition::{counters, gauges, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::Arc;

#[derive(Debug)]
pub struct WebhookMetrics(pub Arc<WebhookStatus>);

impl Collector for WebhookMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let hooks = self.0.snapshot();
        let each = |f: fn(&super::status::HookSnapshot) -> u64| {
            hooks
                .iter()
                .map(move |h| (label("webhook", &h.name), f(h)))
                .collect::<Vec<_>>()
        };
        counters(
            &mut enc,
            "lampgw_webhook_delivered",
            "Alarm notifications the webhook's receiver accepted (2xx) since start",
            each(|h| h.delivered),
        )?;
        counters(
            &mut enc,
            "lampgw_webhook_failed_attempts",
            "Webhook requests that did not end in a 2xx (transport error, timeout, any other status) since start",
            each(|h| h.failed_attempts),
        )?;
        counters(
            &mut enc,
            "lampgw_webhook_dropped",
            "Alarm notifications given up on because the receiver refused the body (400, 413, 422) three times",
            each(|h| h.dropped),
        )?;
        gauges(
            &mut enc,
            "lampgw_webhook_pending",
            "Alarm notifications spooled for the webhook and not delivered yet",
            each(|h| h.pending),
        )?;
        counters(
            &mut enc,
            "lampgw_webhook_spool_errors",
            "Webhook spool writes, reads or commits that failed",
            each(|h| h.spool_errors),
        )?;
        gauges(
            &mut enc,
            "lampgw_webhook_last_success_timestamp_seconds",
            "When the webhook's receiver last accepted a notification (Unix time); absent until the first since start",
            hooks.iter().filter_map(|h| {
                h.last_success.map(|t| {
                    (
                        label("webhook", &h.name),
                        t.timestamp_millis() as f64 / 1000.0,
                    )
                })
            }),
        )
    }
}
