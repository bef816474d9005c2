//! Prometheus families of the cluster: per instance the endpoints it holds
//! (as this instance's last tick saw them), instances live, endpoints
//! unassigned, this instance's own leases polled, ticks, leases taken,
//! released and lost.

use super::Cluster;
use crate::exposition::{counter, gauge, gauges, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

#[derive(Debug)]
pub struct ClusterMetrics(pub Arc<Cluster>);

impl Collector for ClusterMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let c = &self.0;
        let s = &c.stats;
        let last = s.last.lock().clone();
        if let Some(t) = &last {
            gauges(
                &mut enc,
                "lampgw_cluster_endpoints_held",
                "Endpoints each instance holds an unexpired lease on (at this instance's last tick).",
                t.per_holder
                    .iter()
                    .map(|(id, n)| (label("instance", id), *n)),
            )?;
            gauge(
                &mut enc,
                "lampgw_cluster_instances_live",
                "Instances whose heartbeat is within the lease ttl (at the last tick).",
                t.live.len() as i64,
            )?;
            gauge(
                &mut enc,
                "lampgw_cluster_endpoints_unassigned",
                "Leased endpoints no live lease covers (at the last tick).",
                t.unassigned,
            )?;
            gauge(
                &mut enc,
                "lampgw_cluster_share",
                "This instance's share of the endpoints (at the last tick).",
                t.share as i64,
            )?;
        }
        gauge(
            &mut enc,
            "lampgw_cluster_endpoints_polled",
            "Endpoints this instance polls under a lease now.",
            c.held() as i64,
        )?;
        counter(
            &mut enc,
            "lampgw_cluster_ticks",
            "Lease ticks that went through (heartbeat, renewals, takes).",
            s.ticks.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "lampgw_cluster_tick_failures",
            "Lease ticks that failed or timed out.",
            s.tick_failures.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "lampgw_cluster_leases_taken",
            "Leases this instance took.",
            s.taken.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "lampgw_cluster_leases_released",
            "Leases this instance handed back.",
            s.released.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "lampgw_cluster_leases_lost",
            "Times this instance stopped polling every leased endpoint for want of a renewal.",
            s.lost.load(Relaxed),
        )
    }
}
