//! The city's calendar: local-time arithmetic in one place. Everything is
//! stored in UTC; days and months of figures, reports and history are the
//! city's (`gateway.time_zone`, default Asia/Shanghai), while the store's
//! rollups are whole UTC hours (every zone's local hours are whole UTC hours
//! or half hours off them, so rollups are cut in UTC and summed locally).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

/// A bucket of a windowed figure or report, cut at local boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    Hour,
    Day,
    Month,
}

impl std::str::FromStr for Bucket {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hour" => Ok(Bucket::Hour),
            "day" => Ok(Bucket::Day),
            "month" => Ok(Bucket::Month),
            other => Err(format!("bucket `{other}` is not hour, day or month")),
        }
    }
}

/// Half-open spans of time in microseconds since the epoch, in time order,
/// shared by the many lamps that have the same ones (a lamp's scheduled
/// burning time, `schedule::plan::Plan::burning_spans`).
pub type Spans = std::sync::Arc<[(i64, i64)]>;

/// The start of the UTC hour `t` is in: the rollups' unit.
pub fn floor_hour(t: DateTime<Utc>) -> DateTime<Utc> {
    let us = t.timestamp_micros();
    DateTime::from_timestamp_micros(us - us.rem_euclid(3_600_000_000)).unwrap_or(t)
}

/// Midnight at the start of `date` in `tz` (the earliest, should a zone
/// repeat it; an hour later in a zone that skips midnight).
pub fn local_midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| Utc.from_utc_datetime(&naive), |t| t.with_timezone(&Utc))
}

/// The start of the local day `t` is in.
pub fn local_day_start(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    local_midnight(t.with_timezone(&tz).date_naive(), tz)
}

/// The first of the month after `date`'s.
fn next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

/// The first bucket boundary after `t`: the next local hour, midnight or
/// first of the month in the city's zone.
pub fn next_boundary(t: DateTime<Utc>, bucket: Bucket, tz: Tz) -> DateTime<Utc> {
    let local = t.with_timezone(&tz);
    match bucket {
        Bucket::Hour => {
            let into = Duration::minutes(i64::from(local.minute()))
                + Duration::seconds(i64::from(local.second()))
                + Duration::nanoseconds(i64::from(local.nanosecond()));
            t - into + Duration::hours(1)
        }
        Bucket::Day => local_midnight(local.date_naive() + chrono::Days::new(1), tz),
        Bucket::Month => {
            let first = next_month(local.date_naive()).expect("a month within chrono's range");
            local_midnight(first, tz)
        }
    }
}

/// The buckets of [from, to): the whole window without a bucket, else cut at
/// local boundaries, the first and last clipped to the window.
pub fn bucket_bounds(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    bucket: Option<Bucket>,
    tz: Tz,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let Some(bucket) = bucket else {
        return vec![(from, to)];
    };
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let end = next_boundary(at, bucket, tz).min(to);
        out.push((at, end));
        at = end;
    }
    out
}

/// The month `YYYY-MM` as the window from local midnight on its first day to
/// local midnight on the next month's first; `None` if it is not a month.
pub fn month_window(month: &str, tz: Tz) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
    Some((
        local_midnight(first, tz),
        local_midnight(next_month(first)?, tz),
    ))
}

/// The month (`YYYY-MM`) the local time `t` is in.
pub fn local_month(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn zone(name: &str) -> Tz {
        name.parse().unwrap()
    }

    #[test]
    fn local_days_follow_the_city_zone() {
        let sh = zone("Asia/Shanghai");
        // 17:00 UTC is 01:00 the next day in Shanghai.
        assert_eq!(
            local_day_start(t("2025-01-01T17:00:00Z"), sh),
            t("2025-01-01T16:00:00Z")
        );
        assert_eq!(
            local_day_start(t("2025-01-01T15:59:00Z"), sh),
            t("2024-12-31T16:00:00Z")
        );
    }

    #[test]
    fn hours_floor_in_utc() {
        assert_eq!(
            floor_hour(t("2025-01-01T17:59:59.999Z")),
            t("2025-01-01T17:00:00Z")
        );
        assert_eq!(
            floor_hour(t("2025-01-01T17:00:00Z")),
            t("2025-01-01T17:00:00Z")
        );
    }

    #[test]
    fn months_start_at_local_midnight() {
        let sh = zone("Asia/Shanghai");
        let (from, to) = month_window("2025-12", sh).unwrap();
        assert_eq!(from, t("2025-11-30T16:00:00Z"));
        assert_eq!(to, t("2025-12-31T16:00:00Z"));
        for bad in ["2025-13", "2025-1", "25-01", "2025/01", "x"] {
            assert!(month_window(bad, sh).is_none(), "{bad}");
        }
        assert_eq!(local_month(t("2025-11-30T16:00:00Z"), sh), "2025-12");
        assert_eq!(local_month(t("2025-11-30T15:59:59Z"), sh), "2025-11");
    }

    #[test]
    fn buckets_cut_at_local_boundaries() {
        let sh = zone("Asia/Shanghai");
        // 2025-01-31 12:00 to 2025-03-01 12:00 Shanghai time, by month.
        let b = bucket_bounds(
            t("2025-01-31T04:00:00Z"),
            t("2025-03-01T04:00:00Z"),
            Some(Bucket::Month),
            sh,
        );
        let want = [
            ("2025-01-31T04:00:00Z", "2025-01-31T16:00:00Z"),
            ("2025-01-31T16:00:00Z", "2025-02-28T16:00:00Z"),
            ("2025-02-28T16:00:00Z", "2025-03-01T04:00:00Z"),
        ];
        assert_eq!(b, want.map(|(a, z)| (t(a), t(z))));
        // India is UTC+5:30: local hours start at :30 UTC.
        let b = bucket_bounds(
            t("2025-01-01T00:00:00Z"),
            t("2025-01-01T02:00:00Z"),
            Some(Bucket::Hour),
            zone("Asia/Kolkata"),
        );
        let want = [
            ("2025-01-01T00:00:00Z", "2025-01-01T00:30:00Z"),
            ("2025-01-01T00:30:00Z", "2025-01-01T01:30:00Z"),
            ("2025-01-01T01:30:00Z", "2025-01-01T02:00:00Z"),
        ];
        assert_eq!(b, want.map(|(a, z)| (t(a), t(z))));
        // Berlin's day of the spring change has 23 hours.
        let b = bucket_bounds(
            t("2025-03-29T23:00:00Z"),
            t("2025-03-31T22:00:00Z"),
            Some(Bucket::Day),
            zone("Europe/Berlin"),
        );
        assert_eq!(b[0].1, t("2025-03-30T22:00:00Z"));
        assert_eq!((b[0].1 - b[0].0).num_hours(), 23);
        assert_eq!(b.len(), 2);
        // No bucket: the window whole.
        let w = (t("2025-01-01T00:00:00Z"), t("2025-01-02T00:00:00Z"));
        assert_eq!(bucket_bounds(w.0, w.1, None, sh), vec![w]);
    }
}
