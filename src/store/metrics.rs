//! Prometheus families of the store: degraded, queued and spooled rows, rows
//! written by table, write failures, spool failures and rows dropped past
//! them.

use super::StoreStatus;
use crate::exposition::{counter, counters, gauge, label};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

#[derive(Debug)]
pub struct StoreMetrics(pub Arc<StoreStatus>);

impl Collector for StoreMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let v = &self.0;
        gauge(
            &mut enc,
            "lampgw_store_degraded",
            "1 while the store cannot write or is replaying its spool",
            u64::from(v.degraded()),
        )?;
        gauge(
            &mut enc,
            "lampgw_store_queued_rows",
            "Rows waiting for the database held in memory (a copy of the spool's, or only there while the spool cannot be written)",
            v.queued_rows.load(Relaxed),
        )?;
        gauge(
            &mut enc,
            "lampgw_store_spooled_rows",
            "Rows waiting for the database on disk only (past store.queue_rows), read back from the spool",
            v.spooled_rows.load(Relaxed),
        )?;
        gauge(
            &mut enc,
            "lampgw_store_spooled_bytes",
            "Bytes of the spool file waiting for the database (every row not yet committed)",
            v.spooled_bytes.load(Relaxed),
        )?;
        counters(
            &mut enc,
            "lampgw_store_rows_written",
            "Rows written to the database by table",
            [
                (label("table", "lamp_samples"), v.lamp_rows.load(Relaxed)),
                (label("table", "rtu_samples"), v.rtu_rows.load(Relaxed)),
                (
                    label("table", "transitions"),
                    v.transition_rows.load(Relaxed),
                ),
                (label("table", "alarms"), v.alarm_rows.load(Relaxed)),
                (
                    label("table", "evaluation_hourly"),
                    v.evaluation_rows.load(Relaxed),
                ),
            ],
        )?;
        counter(
            &mut enc,
            "lampgw_store_spool_failures",
            "Failed spool writes or syncs (a full or failing disk); rows that could not be appended stay in memory",
            v.spool_failures.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "lampgw_store_dropped_rows",
            "Rows refused because the spool could not be written and memory was at store.queue_rows_max",
            v.dropped_rows.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "lampgw_store_write_failures",
            "Failed database writes and connection attempts",
            v.write_failures.load(Relaxed),
        )
    }
}
