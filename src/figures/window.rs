//! The supervision figures over a time window [from, to): time-weighted RTU
//! and SLC online rates from the stored transitions, the share of the window
//! the gateway observed (`coverage`, from its run records), and the lighting
//! rate from the hourly rollups; per district and bucket.
//!
//! Rules (DESIGN.md, made exact here):
//! - Online seconds count only while the gateway observed: a run is observed
//!   from `started_at` to `stopped_at`, or, for a run that did not stop
//!   cleanly (crashed, or still running), to `heartbeat_at` + `grace`, never
//!   past now. Overlapping runs merge.
//! - Monitored seconds are every installed device times the whole bucket, so
//!   unobserved time counts as not online: rate = online / monitored.
//! - A device's state at a time is its last transition before it, except
//!   that every observed span's end resets every device to offline: a new
//!   process starts with every device offline and records a transition only
//!   when one comes online, so a state from before a gap must not carry over
//!   it. A transition inside a gap (written before its run's start was) does
//!   carry into the next span. Hence the state at `from` is the last
//!   transition before `from` and after the end of the last span that ended
//!   at or before `from`; only those transitions are read.
//! - Installed devices are the current inventory's (the inventory at the
//!   time is not recorded); transitions of devices no longer in it are
//!   ignored.
//! - Lighting: Σ lit seconds / Σ expected-lit seconds of the hourly rollups
//!   whose hour starts in the bucket (see `store::db::sqlite::rollup`).

use crate::calendar::bucket_bounds;
pub use crate::calendar::Bucket;
use crate::inventory::Inventory;
use crate::store::read::figures::{LightingHour, RunSpan, TransitionEvent};
use crate::store::Db;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;

/// The longest window served: the transitions it reads grow with it.
pub const MAX_WINDOW: Duration = Duration::days(93);
/// Hourly buckets: at most 744 of them per answer.
pub const MAX_HOUR_BUCKETS_WINDOW: Duration = Duration::days(31);

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("{0}")]
    BadInput(String),
    #[error("store query failed: {0}")]
    Db(#[from] sqlx::Error),
}

/// What the windowed figures need to know of the inventory and the gateway,
/// built once at start: the id lookups cost ~20 ms for 100,000 lamps.
#[derive(Debug)]
pub struct Context {
    pub inventory: std::sync::Arc<Inventory>,
    /// Device number of each SLC, by SLC id.
    slcs: HashMap<String, u32>,
    /// Device number of each RTU, by RTU id.
    rtus: HashMap<String, u32>,
    /// District position, kind (0 RTU, 1 SLC) and cabinet position by
    /// device number.
    devices: Vec<(u32, u8, u32)>,
    /// Installed RTUs and SLCs per district position.
    pub installed: Vec<[u64; 2]>,
    pub gateway_id: String,
    /// How long after its last heartbeat a run that did not stop cleanly is
    /// still counted as observed.
    pub grace: Duration,
    pub time_zone: Tz,
}

impl Context {
    pub fn new(
        inventory: std::sync::Arc<Inventory>,
        gateway_id: &str,
        grace: Duration,
        time_zone: Tz,
    ) -> Self {
        let mut installed = vec![[0u64; 2]; inventory.districts.len()];
        let mut devices = Vec::new();
        let mut rtus = HashMap::new();
        for (ci, c) in inventory.cabinets.iter().enumerate() {
            if let (Some(rtu), Some(d)) = (&c.rtu, inventory.district_of_cabinet(ci)) {
                rtus.insert(rtu.id.clone(), devices.len() as u32);
                devices.push((d as u32, 0, ci as u32));
                installed[d][0] += 1;
            }
        }
        let mut slcs = HashMap::with_capacity(inventory.lamps.len());
        for (li, l) in inventory.lamps.iter().enumerate() {
            let cabinet = inventory.cabinet_of_lamp(li);
            let d = cabinet.and_then(|c| inventory.district_of_cabinet(c));
            if let (Some(slc), Some(d), Some(c)) = (&l.slc, d, cabinet) {
                slcs.insert(slc.id.clone(), devices.len() as u32);
                devices.push((d as u32, 1, c as u32));
                installed[d][1] += 1;
            }
        }
        Self {
            inventory,
            slcs,
            rtus,
            devices,
            installed,
            gateway_id: gateway_id.to_string(),
            grace,
            time_zone,
        }
    }

    /// The device number of an RTU or SLC of the inventory.
    pub fn device(&self, rtu: bool, id: &str) -> Option<u32> {
        if rtu {
            self.rtus.get(id).copied()
        } else {
            self.slcs.get(id).copied()
        }
    }
}

/// The sums of one bucket, per district position.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketSums {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub observed_us: i64,
    /// [rtu, slc] online microseconds per district position.
    pub online_us: Vec<[i64; 2]>,
    /// [expected, lit] lamp seconds per district position.
    pub lighting_s: Vec<[f64; 2]>,
}

/// Sums for every bucket of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowSums {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub buckets: Vec<BucketSums>,
    /// [rtu, slc] online microseconds over the whole window per cabinet
    /// position (the report's per-cabinet online rates).
    pub cabinet_online_us: Vec<[i64; 2]>,
}

/// Checks a window and its bucket against the limits.
pub fn check(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Option<Bucket>,
) -> Result<(), WindowError> {
    if to <= from {
        return Err(WindowError::BadInput(format!(
            "`from` ({from}) must be before `to` ({to})"
        )));
    }
    let span = to - from;
    let days = |d: Duration| d.num_seconds() as f64 / 86_400.0;
    if span > MAX_WINDOW {
        return Err(WindowError::BadInput(format!(
            "a window may span at most {} days, this one spans {:.1}",
            MAX_WINDOW.num_days(),
            days(span)
        )));
    }
    if bucket == Some(Bucket::Hour) && span > MAX_HOUR_BUCKETS_WINDOW {
        return Err(WindowError::BadInput(format!(
            "hourly buckets need a window of at most {} days, this one spans {:.1}",
            MAX_HOUR_BUCKETS_WINDOW.num_days(),
            days(span)
        )));
    }
    Ok(())
}

/// Observed spans, merged, in time order (µs).
pub fn observed(runs: &[RunSpan], grace_us: i64, now_us: i64) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = runs
        .iter()
        .map(|r| {
            let end = if r.stopped {
                r.last_us
            } else {
                (r.last_us + grace_us).min(now_us)
            };
            (r.started_us, end)
        })
        .filter(|(s, e)| s < e)
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// Where reading transitions must start for the state at `from`: the end of
/// the last observed span that ended at or before `from` (every device is
/// offline there), or the beginning of time.
pub fn reset_point(spans: &[(i64, i64)], from_us: i64) -> i64 {
    spans
        .iter()
        .map(|s| s.1)
        .filter(|&e| e <= from_us)
        .max()
        .unwrap_or(0)
}

/// Folds transitions and lighting hours into per-bucket sums. `events` must
/// be in time order and start at the reset point.
pub fn fold(
    ctx: &Context,
    bounds: &[(DateTime<Utc>, DateTime<Utc>)],
    spans: &[(i64, i64)],
    events: &[TransitionEvent],
    lighting: &[LightingHour],
) -> (Vec<BucketSums>, Vec<[i64; 2]>) {
    let n = ctx.inventory.districts.len();
    let b_us: Vec<(i64, i64)> = bounds
        .iter()
        .map(|(a, b)| (a.timestamp_micros(), b.timestamp_micros()))
        .collect();
    let mut out: Vec<BucketSums> = bounds
        .iter()
        .map(|&(from, to)| BucketSums {
            from,
            to,
            observed_us: 0,
            online_us: vec![[0; 2]; n],
            lighting_s: vec![[0.0; 2]; n],
        })
        .collect();
    let mut cabinets = vec![[0i64; 2]; ctx.inventory.cabinets.len()];
    let (Some(&(w_from, _)), Some(&(_, w_to))) = (b_us.first(), b_us.last()) else {
        return (out, cabinets);
    };
    // Splits [a, b) ∩ window across the buckets it touches.
    let spread = |a: i64, b: i64, add: &mut dyn FnMut(usize, i64)| {
        let (a, b) = (a.max(w_from), b.min(w_to));
        if a >= b {
            return;
        }
        let mut i = b_us.partition_point(|bk| bk.1 <= a);
        while i < b_us.len() && b_us[i].0 < b {
            let len = b.min(b_us[i].1) - a.max(b_us[i].0);
            if len > 0 {
                add(i, len);
            }
            i += 1;
        }
    };
    for &(s, e) in spans {
        spread(s, e, &mut |i, len| out[i].observed_us += len);
    }
    // Online time of a device from `a` to `b`, counted where observed.
    let mut online = |(d, kind, c): (u32, u8, u32), a: i64, b: i64| {
        let kind = usize::from(kind);
        let first = spans.partition_point(|sp| sp.1 <= a);
        for &(s, e) in spans[first..].iter().take_while(|sp| sp.0 < b) {
            spread(a.max(s), b.min(e), &mut |i, len| {
                out[i].online_us[d as usize][kind] += len;
                cabinets[c as usize][kind] += len;
            });
        }
    };
    // Online since (µs) by device number; `OFF` while offline. `up` lists
    // the devices online, so that a reset visits only those.
    const OFF: i64 = i64::MIN;
    let mut since = vec![OFF; ctx.devices.len()];
    let mut up: Vec<u32> = Vec::new();
    let mut resets = spans.iter().map(|s| s.1).filter(|&e| e < w_to).peekable();
    // Every device online goes offline at `at_end`.
    macro_rules! close_all {
        ($at_end:expr) => {
            for dev in up.drain(..) {
                let at = std::mem::replace(&mut since[dev as usize], OFF);
                if at != OFF {
                    online(ctx.devices[dev as usize], at, $at_end);
                }
            }
        };
    }
    for ev in events {
        while let Some(&reset) = resets.peek().filter(|&&r| r <= ev.time_us) {
            close_all!(reset);
            resets.next();
        }
        let Some(at) = since.get_mut(ev.device as usize) else {
            continue;
        };
        match (ev.online, *at == OFF) {
            (true, true) => {
                *at = ev.time_us;
                up.push(ev.device);
            }
            (false, false) => {
                // `up` keeps the device; `close_all!` skips it while OFF.
                let since = std::mem::replace(at, OFF);
                online(ctx.devices[ev.device as usize], since, ev.time_us);
            }
            // A repeated state (a replay, a restart) changes nothing.
            _ => {}
        }
    }
    // Devices still online: until the next reset, or the window's end.
    let end = resets.next().unwrap_or(w_to).min(w_to);
    close_all!(end);
    let districts: HashMap<&str, usize> = ctx
        .inventory
        .districts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    for h in lighting {
        let Some(&d) = districts.get(h.district.as_str()) else {
            continue;
        };
        if h.hour_us < w_from || h.hour_us >= w_to {
            continue;
        }
        let i = b_us.partition_point(|bk| bk.1 <= h.hour_us);
        if let Some(b) = out.get_mut(i) {
            b.lighting_s[d][0] += h.expected_seconds;
            b.lighting_s[d][1] += h.lit_seconds;
        }
    }
    (out, cabinets)
}

/// Reads what a window needs from the store and sums it per bucket and
/// district (of one district only when `district` is given).
pub async fn sums(
    db: &Db,
    ctx: &Context,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Option<Bucket>,
    district: Option<&str>,
    now: DateTime<Utc>,
) -> Result<WindowSums, WindowError> {
    check(from, to, bucket)?;
    let bounds = bucket_bounds(from, to, bucket, ctx.time_zone);
    let runs = db.runs(&ctx.gateway_id, to).await?;
    let grace_us = ctx.grace.num_microseconds().unwrap_or(i64::MAX / 4);
    let spans = observed(&runs, grace_us, now.timestamp_micros());
    let reset = reset_point(&spans, from.timestamp_micros());
    let reset = DateTime::from_timestamp_micros(reset).unwrap_or_default();
    let events = db
        .transitions_between(reset, to, district, |rtu, id| ctx.device(rtu, id))
        .await?;
    let lighting = db.lighting_hours(from, to, district).await?;
    let (buckets, cabinet_online_us) = fold(ctx, &bounds, &spans, &events, &lighting);
    Ok(WindowSums {
        from,
        to,
        buckets,
        cabinet_online_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_spans_merge_and_stop_at_grace_or_now() {
        let run = |s: i64, l: i64, stopped: bool| RunSpan {
            started_us: s,
            last_us: l,
            stopped,
        };
        // A crash at 100 (grace 10) overlapping the next start at 105 merges;
        // a running one ends at now (300), not at heartbeat + grace.
        let spans = observed(
            &[
                run(0, 100, false),
                run(105, 200, true),
                run(250, 295, false),
            ],
            10,
            300,
        );
        assert_eq!(spans, vec![(0, 200), (250, 300)]);
        assert_eq!(reset_point(&spans, 220), 200);
        assert_eq!(reset_point(&spans, 260), 200);
        assert_eq!(reset_point(&spans, 150), 0);
        assert_eq!(reset_point(&spans, 300), 300);
    }
}
