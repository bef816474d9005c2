//! Prometheus families of the pollers and the live state: endpoints, poll
//! cycles, Modbus reads, samples, failures by kind, transitions.

use super::LiveState;
use crate::exposition::{counter, counters, gauge, gauges, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::Arc;

/// Reads the live state's counters at each scrape.
pub struct PollMetrics(pub Arc<LiveState>);

impl std::fmt::Debug for PollMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PollMetrics")
    }
}

impl Collector for PollMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let full_cycles = self.0.full_cycles();
        let live = self.0.read();
        let eps = &live.endpoints;
        let classes = [("rtu", 0), ("slc", 1)];
        gauge(
            &mut enc,
            "lampgw_endpoints",
            "Modbus endpoints configured",
            eps.len() as u64,
        )?;
        gauge(
            &mut enc,
            "lampgw_endpoints_connected",
            "Endpoints with an open connection",
            eps.iter().filter(|e| e.connected).count() as u64,
        )?;
        counters(
            &mut enc,
            "lampgw_poll_cycles",
            "Endpoint poll cycles completed",
            classes.map(|(name, c)| {
                (
                    label("class", name),
                    eps.iter().map(|e| e.cycles[c]).sum::<u64>(),
                )
            }),
        )?;
        gauges(
            &mut enc,
            "lampgw_poll_cycle_seconds_max",
            "Longest last poll cycle over the endpoints",
            classes.map(|(name, c)| {
                let max_ms = eps.iter().map(|e| e.last_cycle_ms[c]).fold(0.0, f64::max);
                (label("class", name), max_ms / 1e3)
            }),
        )?;
        counters(
            &mut enc,
            "lampgw_modbus_reads",
            "Modbus read requests by result",
            [
                (
                    label("result", "ok"),
                    eps.iter().map(|e| e.reads_ok).sum::<u64>(),
                ),
                (
                    label("result", "failed"),
                    eps.iter().map(|e| e.reads_failed).sum::<u64>(),
                ),
            ],
        )?;
        counter(
            &mut enc,
            "lampgw_device_samples",
            "Successful device polls",
            live.samples_total,
        )?;
        counters(
            &mut enc,
            "lampgw_device_poll_failures",
            "Failed device polls by kind",
            live.failures_by_kind
                .iter()
                .map(|(k, v)| (label("kind", k), *v)),
        )?;
        counter(
            &mut enc,
            "lampgw_transitions",
            "Online/offline transitions",
            live.transitions_total,
        )?;
        counter(
            &mut enc,
            "lampgw_full_poll_cycles",
            "Poll cycles completed by every endpoint (the least any endpoint completed; a reload starts it again)",
            full_cycles,
        )
    }
}
