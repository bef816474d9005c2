//! The writer: backlog → database, in batches, flushed by size and by time;
//! a chunk leaves the spool only once the database committed it.

use super::backlog::{Chunk, Take};
use super::sink::Shared;
use crate::store::db::Db;
use crate::store::maintenance::ROLLED_TO;
use crate::store::{StoreError, StoreSettings};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const RETRY_MIN: Duration = Duration::from_millis(200);

pub(crate) struct WriterArgs {
    pub db: Arc<Db>,
    pub shared: Arc<Shared>,
    pub settings: StoreSettings,
    pub run_id: String,
    pub gateway_id: String,
}

/// Connects, migrates and records the run; then writes until the sink has
/// been dropped and the backlog is empty (or, with the database away, until
/// `shutdown_timeout` after that, leaving the rest in the spool).
pub(crate) async fn writer(a: WriterArgs) {
    let s = &a.settings;
    let status = &a.shared.status;
    let mut retry = RETRY_MIN;
    let mut last_flush = Instant::now();
    let mut closing_since: Option<Instant> = None;
    loop {
        let closed = a.shared.closed.load(Ordering::Acquire);
        if closed && closing_since.is_none() {
            closing_since = Some(Instant::now());
        }
        let give_up = closing_since.is_some_and(|t| t.elapsed() >= s.shutdown_timeout);
        if give_up {
            // The rest stays in the spool for the next start: a stop is
            // bounded by `shutdown_timeout` whether the database is away,
            // slow or up with a long spool to replay.
            let left = a.shared.backlog.lock().spooled_rows();
            tracing::warn!(
                rows = left,
                "store stop: the rest is left in the spool for the next start"
            );
            break;
        }
        // While stopping, no database call may outlast the stop's bound.
        let limit = match closing_since {
            Some(t) => s
                .write_timeout
                .min(s.shutdown_timeout.saturating_sub(t.elapsed()))
                .max(Duration::from_millis(10)),
            None => s.write_timeout,
        };
        if !status.ready.load(Ordering::Relaxed) {
            match tokio::time::timeout(limit, setup(&a)).await {
                Ok(Ok(())) => {
                    status.ready.store(true, Ordering::Relaxed);
                    status.failing.store(false, Ordering::Relaxed);
                    retry = RETRY_MIN;
                    tracing::info!(backend = a.db.kind(), run_id = %a.run_id, "store connected");
                }
                Ok(Err(e)) => {
                    failed(&a, None, e.to_string(), "store cannot connect");
                    pause(&a, &mut retry, closed).await;
                    continue;
                }
                Err(_) => {
                    failed(&a, None, "connect timed out".into(), "store cannot connect");
                    pause(&a, &mut retry, closed).await;
                    continue;
                }
            }
        }
        if a.shared.lamps.lock().stale {
            // A reload changed the inventory: new lamps get their rows
            // before their samples' rollups need them.
            match tokio::time::timeout(s.write_timeout, upsert_lamps(&a)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed(&a, None, e.to_string(), "store cannot write the lamps"),
                Err(_) => failed(&a, None, "timed out".into(), "store cannot write the lamps"),
            }
        }
        let (queued, spooled) = {
            let b = a.shared.backlog.lock();
            (b.queued_rows(), b.spooled_rows())
        };
        let due = closed
            || queued >= s.batch_size
            || spooled > 0
            || last_flush.elapsed() >= s.flush_interval;
        if !due {
            tokio::select! {
                () = a.shared.wake.notified() => {}
                () = tokio::time::sleep_until(last_flush + s.flush_interval) => {}
            }
            continue;
        }
        let taken = a.shared.backlog.lock().begin_take(s.batch_size);
        let chunk = match taken {
            Take::Chunk(c) => Ok(Some(c)),
            Take::Empty => Ok(None),
            // Read back outside the lock the state task appends under.
            Take::Disk(snapshot) => {
                let front = snapshot.front(s.batch_size);
                a.shared.backlog.lock().finish_disk_take(front)
            }
        };
        status.record_backlog(&a.shared.backlog.lock());
        let chunk = match chunk {
            Ok(Some(c)) => c,
            Ok(None) => {
                last_flush = Instant::now();
                if closed {
                    break;
                }
                tokio::select! {
                    () = a.shared.wake.notified() => {}
                    () = tokio::time::sleep_until(last_flush + s.flush_interval) => {}
                }
                continue;
            }
            Err(e) => {
                // A spool that cannot be read cannot be replayed; say so
                // loudly and try again (what is in memory is written first).
                tracing::error!(error = %e, "spool unreadable");
                *status.last_error.lock() = Some(e.to_string());
                pause(&a, &mut retry, closed).await;
                continue;
            }
        };
        match tokio::time::timeout(limit, a.db.write(&chunk.batch)).await {
            Ok(Ok(())) => {
                retry = RETRY_MIN;
                written(&a, chunk);
            }
            Ok(Err(e)) => {
                failed(&a, Some(chunk), e.to_string(), "store write failed");
                pause(&a, &mut retry, closed).await;
            }
            Err(_) => {
                failed(
                    &a,
                    Some(chunk),
                    "write timed out".into(),
                    "store write failed",
                );
                pause(&a, &mut retry, closed).await;
            }
        }
    }
    finish(&a).await;
}

/// Writes the `lamps` table from the current inventory; it is clean once
/// written, unless a reload changed it meanwhile.
async fn upsert_lamps(a: &WriterArgs) -> Result<(), StoreError> {
    let table = a.shared.lamps.lock().clone();
    a.db.upsert_lamps(&table.inventory, &table.lit_threshold_w)
        .await?;
    let mut now = a.shared.lamps.lock();
    if Arc::ptr_eq(&now.inventory, &table.inventory) {
        now.stale = false;
    }
    Ok(())
}

async fn setup(a: &WriterArgs) -> Result<(), StoreError> {
    a.db.migrate().await?;
    upsert_lamps(a).await?;
    let now = chrono::Utc::now();
    a.db.partitions_ahead(now, a.settings.partitions_ahead_days)
        .await?;
    a.db.start_run(&a.run_id, &a.gateway_id, now).await?;
    // Rows replayed from before the last rollup must be rolled up again.
    if let Some(mark) = a.db.meta(ROLLED_TO).await? {
        if let Ok(us) = mark.parse::<i64>() {
            let s = &a.shared.status.rolled_to_us;
            s.fetch_max(us, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn written(a: &WriterArgs, chunk: Chunk) {
    let status = &a.shared.status;
    let b = &chunk.batch;
    status
        .lamp_rows
        .fetch_add(b.lamps.len() as u64, Ordering::Relaxed);
    status
        .rtu_rows
        .fetch_add(b.rtus.len() as u64, Ordering::Relaxed);
    status
        .transition_rows
        .fetch_add(b.transitions.len() as u64, Ordering::Relaxed);
    status
        .alarm_rows
        .fetch_add(b.alarms.len() as u64, Ordering::Relaxed);
    status
        .evaluation_rows
        .fetch_add(b.evaluation.len() as u64, Ordering::Relaxed);
    status.writes.fetch_add(1, Ordering::Relaxed);
    if let Some(t) = b.min_time_us() {
        if t < status.rolled_to_us.load(Ordering::Relaxed) {
            status.dirty_from_us.fetch_min(t, Ordering::Relaxed);
        }
    }
    let was_failing = status.failing.swap(false, Ordering::Relaxed);
    let mut bl = a.shared.backlog.lock();
    if let Err(e) = bl.written(chunk) {
        tracing::error!(error = %e, "cannot advance the spool; its rows will be written again after a restart");
    }
    status.record_backlog(&bl);
    if was_failing {
        tracing::info!(spooled_rows = bl.spooled_rows(), "store writes again");
    }
}

fn failed(a: &WriterArgs, chunk: Option<Chunk>, error: String, msg: &'static str) {
    let status = &a.shared.status;
    let first = !status.failing.load(Ordering::Relaxed);
    status.fail(error.clone());
    let mut bl = a.shared.backlog.lock();
    // The chunk waits again; what is held in memory only tries the spool.
    let kept = match chunk {
        Some(c) => bl.failed(c),
        None => bl.spill(),
    };
    // A spool failure is logged and counted by the backlog; the rows stay
    // in memory. While the database is away the spool is put on the device.
    if let Err(e) = kept.and_then(|()| bl.sync()) {
        *status.last_error.lock() = Some(e.to_string());
    }
    status.record_backlog(&bl);
    if first {
        tracing::warn!(error = %error, spooled_rows = bl.spooled_rows(), "{msg}; spooling");
    } else {
        tracing::debug!(error = %error, "{msg}");
    }
}

/// Waits before the next try; a stop that comes meanwhile ends the wait
/// (rows arriving do not: the database is not hammered once per batch).
async fn pause(a: &WriterArgs, retry: &mut Duration, closed: bool) {
    let wait = if closed {
        (*retry).min(Duration::from_millis(500))
    } else {
        *retry
    };
    let until = Instant::now() + wait;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(until) => break,
            () = a.shared.wake.notified() => {
                if !closed && a.shared.closed.load(Ordering::Acquire) {
                    break;
                }
            }
        }
    }
    *retry = (*retry * 2).min(a.settings.retry_max.max(RETRY_MIN));
}

/// Puts what is held in memory only on disk and records the run's stop
/// (everything else is in the spool already).
async fn finish(a: &WriterArgs) {
    let status = &a.shared.status;
    {
        let mut bl = a.shared.backlog.lock();
        if !bl.is_empty() {
            if let Err(e) = bl.spill() {
                tracing::error!(
                    error = %e,
                    dir = %a.settings.spool_dir.display(),
                    rows = bl.queued_rows(),
                    "rows lost at shutdown: held in memory and cannot spool"
                );
            }
        }
        if let Err(e) = bl.sync() {
            tracing::error!(error = %e, "cannot sync the spool");
        }
        status.record_backlog(&bl);
    }
    if status.ready.load(Ordering::Relaxed) {
        let stop = tokio::time::timeout(
            a.settings.write_timeout,
            a.db.heartbeat(&a.run_id, chrono::Utc::now(), true),
        )
        .await;
        if !matches!(stop, Ok(Ok(()))) {
            tracing::warn!(run_id = %a.run_id, "could not record the run's stop");
        }
    }
    tracing::info!(
        rows_written = status.rows_written(),
        spooled_rows = status.spooled_rows.load(Ordering::Relaxed),
        "store stopped"
    );
}
