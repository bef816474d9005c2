//! Periodic upkeep: the gateway run's heartbeat, partitions ahead, hourly
//! rollups (again for hours that late rows touched) and retention.

use super::db::{Db, StoreTime};
use super::{StoreError, StoreSettings, StoreStatus};
use crate::calendar::floor_hour;
use chrono::{DateTime, Duration as Span, Utc};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) const ROLLED_TO: &str = "rollup_to_us";
/// Hours rolled up per transaction.
const ROLLUP_STEP_HOURS: i64 = 24;

#[derive(Debug)]
pub struct MaintenanceArgs {
    pub db: Arc<Db>,
    pub status: Arc<StoreStatus>,
    pub settings: StoreSettings,
    pub run_id: String,
    pub sample_gap: Duration,
    pub cancel: CancellationToken,
}

/// What one maintenance pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub rolled_from: Option<DateTime<Utc>>,
    pub rolled_to: Option<DateTime<Utc>>,
    /// Rows (SQLite) or daily partitions (PostgreSQL) removed.
    pub removed: u64,
}

pub async fn run(a: MaintenanceArgs) {
    let mut tick = tokio::time::interval(a.settings.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Instant> = None;
    loop {
        tokio::select! {
            () = a.cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        if !a.status.ready.load(Ordering::Relaxed) {
            continue;
        }
        let now = Utc::now();
        if let Err(e) = a.db.heartbeat(&a.run_id, now, false).await {
            tracing::debug!(error = %e, "heartbeat not written");
        }
        if last.is_some_and(|t| t.elapsed() < a.settings.maintenance_interval) {
            continue;
        }
        last = Some(Instant::now());
        // Cancellable between statements: a pass holds no state of its own.
        tokio::select! {
            () = a.cancel.cancelled() => break,
            r = run_once(&a.db, &a.status, &a.settings, a.sample_gap, now) => match r {
                Ok(rep) => tracing::debug!(rolled_from = ?rep.rolled_from, rolled_to = ?rep.rolled_to, removed = rep.removed, "store maintenance done"),
                Err(e) => tracing::warn!(error = %e, "store maintenance failed"),
            }
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    StoreTime::from_micros(us).0
}

/// One pass at `now`: partitions ahead, rollups of every completed hour not yet
/// rolled up (and of hours late rows landed in), then retention.
pub async fn run_once(
    db: &Db,
    status: &StoreStatus,
    settings: &StoreSettings,
    sample_gap: Duration,
    now: DateTime<Utc>,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    db.partitions_ahead(now, settings.partitions_ahead_days)
        .await?;
    let to = floor_hour(now);
    let dirty = status.dirty_from_us.swap(i64::MAX, Ordering::Relaxed);
    let mark = match db.meta(ROLLED_TO).await? {
        Some(v) => v.parse::<i64>().ok().map(from_micros),
        None => db.first_lamp_sample().await?.map(floor_hour),
    };
    let from = match (mark, dirty) {
        (Some(m), i64::MAX) => Some(m),
        (Some(m), d) => Some(m.min(floor_hour(from_micros(d)))),
        (None, i64::MAX) => None,
        (None, d) => Some(floor_hour(from_micros(d))),
    };
    let gap_s = sample_gap.as_secs_f64();
    if let Some(from) = from.filter(|f| *f < to) {
        let mut at = from;
        while at < to {
            let end = (at + Span::hours(ROLLUP_STEP_HOURS)).min(to);
            if let Err(e) = db.rollup(at, end, gap_s).await {
                // Roll these hours up again next time.
                status
                    .dirty_from_us
                    .fetch_min(micros(at), Ordering::Relaxed);
                return Err(e);
            }
            at = end;
        }
        report.rolled_from = Some(from);
        report.rolled_to = Some(to);
    }
    if from.is_some() || mark.is_none() {
        db.set_meta(ROLLED_TO, &micros(to).to_string()).await?;
        status.rolled_to_us.store(micros(to), Ordering::Relaxed);
    }
    let cutoff = now - Span::days(i64::from(settings.retention_days));
    report.removed = db.retention(cutoff).await?;
    Ok(report)
}
