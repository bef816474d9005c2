//! History of one lamp or RTU over a window: raw samples for short windows,
//! hourly rollups (or hourly aggregates of raw RTU samples) for longer ones,
//! days in the city's time zone for the longest.

use crate::calendar::{floor_hour, local_day_start};
use crate::store::db::{with_pool, Db, StoreTime};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeMap;

/// Raw windows are short: a lamp polled every 10 s gives 17,280 rows in 2 days.
pub const MAX_RAW: Duration = Duration::days(2);
pub const MAX_HOUR: Duration = Duration::days(93);
pub const MAX_DAY: Duration = Duration::days(3660);
/// RTU hours and days are computed from raw samples, which retention bounds.
pub const MAX_RTU_AGGREGATE: Duration = Duration::days(35);
pub const MAX_RAW_ROWS: i64 = 50_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Raw,
    Hour,
    Day,
}

impl std::str::FromStr for Resolution {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "raw" => Ok(Resolution::Raw),
            "hour" => Ok(Resolution::Hour),
            "day" => Ok(Resolution::Day),
            other => Err(format!("resolution `{other}` is not raw, hour or day")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    BadRange(String),
    #[error("store query failed: {0}")]
    Db(#[from] sqlx::Error),
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LampPoint {
    #[sqlx(try_from = "StoreTime")]
    pub time: DateTime<Utc>,
    #[sqlx(rename = "is_on")]
    pub on: bool,
    pub dim_level: f64,
    // The API, MQTT and history spell a quantity the same way (the columns
    // carry their unit): `voltage`, `current`, `power`.
    #[serde(rename = "voltage")]
    pub voltage_v: Option<f64>,
    #[serde(rename = "current")]
    pub current_a: Option<f64>,
    #[serde(rename = "power")]
    pub power_w: Option<f64>,
    pub power_factor: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub burning_hours: Option<f64>,
    pub fault_flags: i32,
}

/// One hour (or day) of a lamp: from the hourly rollups.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HourPoint {
    #[sqlx(rename = "hour", try_from = "StoreTime")]
    pub time: DateTime<Utc>,
    #[sqlx(try_from = "i32")]
    pub samples: i64,
    pub on_seconds: f64,
    pub online_seconds: f64,
    pub energy_kwh: f64,
    #[sqlx(try_from = "i32")]
    pub failures: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RtuPoint {
    pub time: DateTime<Utc>,
    pub contactors: Vec<bool>,
    #[serde(rename = "voltage")]
    pub voltage_v: [Option<f64>; 3],
    #[serde(rename = "current")]
    pub current_a: [Option<f64>; 3],
    #[serde(rename = "active_power")]
    pub active_power_w: Option<f64>,
    pub energy_kwh: Option<f64>,
    pub door_alarm: bool,
    pub leakage_alarm: bool,
}

/// `rtu_samples` as stored: the phases in columns, the contactors as a bit
/// mask, shaped into an `RtuPoint` for the API.
#[derive(sqlx::FromRow)]
struct RtuSample {
    time: StoreTime,
    circuits: i16,
    contactors: i32,
    voltage_a_v: Option<f64>,
    voltage_b_v: Option<f64>,
    voltage_c_v: Option<f64>,
    current_a_a: Option<f64>,
    current_b_a: Option<f64>,
    current_c_a: Option<f64>,
    active_power_w: Option<f64>,
    energy_kwh: Option<f64>,
    door_alarm: bool,
    leakage_alarm: bool,
}

impl From<RtuSample> for RtuPoint {
    fn from(r: RtuSample) -> Self {
        RtuPoint {
            time: r.time.0,
            contactors: (0..r.circuits)
                .map(|n| r.contactors & (1 << n) != 0)
                .collect(),
            voltage_v: [r.voltage_a_v, r.voltage_b_v, r.voltage_c_v],
            current_a: [r.current_a_a, r.current_b_a, r.current_c_a],
            active_power_w: r.active_power_w,
            energy_kwh: r.energy_kwh,
            door_alarm: r.door_alarm,
            leakage_alarm: r.leakage_alarm,
        }
    }
}

impl Db {
    pub async fn lamp_raw(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<LampPoint>, sqlx::Error> {
        let sql = "SELECT time, is_on, dim_level, voltage_v, current_a, power_w, power_factor, \
                   energy_kwh, burning_hours, fault_flags FROM lamp_samples \
                   WHERE lamp_id = $1 AND time >= $2 AND time < $3 ORDER BY time LIMIT $4";
        with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(id)
                .bind(StoreTime(from))
                .bind(StoreTime(to))
                .bind(limit)
                .fetch_all(pool)
                .await
        })
    }

    pub async fn lamp_hourly(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourPoint>, sqlx::Error> {
        let sql = "SELECT hour, samples, on_seconds, online_seconds, energy_kwh, failures \
                   FROM lamp_hourly WHERE lamp_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour";
        with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(id)
                .bind(StoreTime(from))
                .bind(StoreTime(to))
                .fetch_all(pool)
                .await
        })
    }

    pub async fn rtu_raw(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RtuPoint>, sqlx::Error> {
        let sql = "SELECT time, circuits, contactors, voltage_a_v, voltage_b_v, voltage_c_v, \
                   current_a_a, current_b_a, current_c_a, active_power_w, energy_kwh, door_alarm, \
                   leakage_alarm FROM rtu_samples \
                   WHERE rtu_id = $1 AND time >= $2 AND time < $3 ORDER BY time LIMIT $4";
        let rows: Vec<RtuSample> = with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(id)
                .bind(StoreTime(from))
                .bind(StoreTime(to))
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(RtuPoint::from).collect())
    }
}

/// One hour (or day) of an RTU, aggregated from its raw samples.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RtuAggregate {
    pub time: DateTime<Utc>,
    pub samples: i64,
    #[serde(rename = "voltage_avg")]
    pub voltage_v_avg: [Option<f64>; 3],
    #[serde(rename = "current_avg")]
    pub current_a_avg: [Option<f64>; 3],
    #[serde(rename = "active_power_avg")]
    pub active_power_w_avg: Option<f64>,
    /// Energy metered in the bucket: last reading less first (meter resets ignored).
    pub energy_kwh: Option<f64>,
    pub door_alarm: bool,
    pub leakage_alarm: bool,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Items {
    LampRaw(Vec<LampPoint>),
    LampHours(Vec<HourPoint>),
    RtuRaw(Vec<RtuPoint>),
    RtuHours(Vec<RtuAggregate>),
}

/// `anyOf` the four arrays, by hand: the derive would say `oneOf`, which an
/// empty array (valid as each of them) breaks.
impl utoipa::PartialSchema for Items {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder};
        use utoipa::openapi::Ref;
        let array = |name: &str| ArrayBuilder::new().items(Ref::from_schema_name(name));
        AnyOfBuilder::new()
            .item(array("LampPoint"))
            .item(array("HourPoint"))
            .item(array("RtuPoint"))
            .item(array("RtuAggregate"))
            .description(Some(
                "`LampPoint`s (a lamp, raw), `HourPoint`s (a lamp, hours or days), \
                 `RtuPoint`s (an RTU, raw) or `RtuAggregate`s (an RTU, hours or days)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Items {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::PartialSchema;
        schemas.push((LampPoint::name().into(), LampPoint::schema()));
        schemas.push((HourPoint::name().into(), HourPoint::schema()));
        schemas.push((RtuPoint::name().into(), RtuPoint::schema()));
        schemas.push((RtuAggregate::name().into(), RtuAggregate::schema()));
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    pub id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub resolution: Resolution,
    /// True when a raw window held more rows than one answer carries.
    pub truncated: bool,
    pub items: Items,
}

/// Checks the window and picks the resolution: the finest whose limit the
/// window fits when none is asked for.
pub fn plan(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    asked: Option<Resolution>,
    rtu: bool,
) -> Result<Resolution, HistoryError> {
    if to <= from {
        return Err(HistoryError::BadRange(format!(
            "`from` ({from}) must be before `to` ({to})"
        )));
    }
    let span = to - from;
    let limit = |r: Resolution| match (r, rtu) {
        (Resolution::Raw, _) => MAX_RAW,
        (_, true) => MAX_RTU_AGGREGATE,
        (Resolution::Hour, false) => MAX_HOUR,
        (Resolution::Day, false) => MAX_DAY,
    };
    let resolution = match asked {
        Some(r) => r,
        None => [Resolution::Raw, Resolution::Hour, Resolution::Day]
            .into_iter()
            .find(|r| span <= limit(*r))
            .unwrap_or(Resolution::Day),
    };
    let max = limit(resolution);
    if span > max {
        return Err(HistoryError::BadRange(format!(
            "a {:?} window may span at most {} days, this one spans {:.1}",
            resolution,
            max.num_days(),
            span.num_seconds() as f64 / 86_400.0
        )));
    }
    Ok(resolution)
}

/// Raw rows are read one past the limit, so a full answer can say it was cut.
fn capped<T>(mut rows: Vec<T>) -> (Vec<T>, bool) {
    let truncated = rows.len() as i64 > MAX_RAW_ROWS;
    rows.truncate(MAX_RAW_ROWS as usize);
    (rows, truncated)
}

pub async fn lamp(
    db: &Db,
    id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    resolution: Resolution,
    tz: Tz,
) -> Result<History, HistoryError> {
    let (items, truncated) = match resolution {
        Resolution::Raw => {
            let (rows, truncated) = capped(db.lamp_raw(id, from, to, MAX_RAW_ROWS + 1).await?);
            (Items::LampRaw(rows), truncated)
        }
        Resolution::Hour => (Items::LampHours(db.lamp_hourly(id, from, to).await?), false),
        Resolution::Day => {
            let hours = db.lamp_hourly(id, from, to).await?;
            let mut days: BTreeMap<DateTime<Utc>, HourPoint> = BTreeMap::new();
            for h in hours {
                let day = local_day_start(h.time, tz);
                let d = days.entry(day).or_insert(HourPoint {
                    time: day,
                    samples: 0,
                    on_seconds: 0.0,
                    online_seconds: 0.0,
                    energy_kwh: 0.0,
                    failures: 0,
                });
                d.samples += h.samples;
                d.on_seconds += h.on_seconds;
                d.online_seconds += h.online_seconds;
                d.energy_kwh += h.energy_kwh;
                d.failures += h.failures;
            }
            (Items::LampHours(days.into_values().collect()), false)
        }
    };
    Ok(History {
        id: id.to_string(),
        from,
        to,
        resolution,
        truncated,
        items,
    })
}

pub async fn rtu(
    db: &Db,
    id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    resolution: Resolution,
    tz: Tz,
) -> Result<History, HistoryError> {
    let (items, truncated) = match resolution {
        Resolution::Raw => {
            let (rows, truncated) = capped(db.rtu_raw(id, from, to, MAX_RAW_ROWS + 1).await?);
            (Items::RtuRaw(rows), truncated)
        }
        Resolution::Hour | Resolution::Day => {
            // 35 days of 5 s samples is ~600k rows: read and fold, not kept.
            let rows = db.rtu_raw(id, from, to, i64::MAX).await?;
            let bucket = |t| {
                if resolution == Resolution::Hour {
                    floor_hour(t)
                } else {
                    local_day_start(t, tz)
                }
            };
            (Items::RtuHours(aggregate(&rows, bucket)), false)
        }
    };
    Ok(History {
        id: id.to_string(),
        from,
        to,
        resolution,
        truncated,
        items,
    })
}

fn aggregate(
    rows: &[RtuPoint],
    bucket: impl Fn(DateTime<Utc>) -> DateTime<Utc>,
) -> Vec<RtuAggregate> {
    #[derive(Default)]
    struct Acc {
        n: i64,
        sums: [(f64, u32); 7],
        energy: Option<(f64, f64)>,
        prev_energy: Option<f64>,
        door: bool,
        leak: bool,
    }
    let mut out: BTreeMap<DateTime<Utc>, Acc> = BTreeMap::new();
    for r in rows {
        let a = out.entry(bucket(r.time)).or_default();
        a.n += 1;
        let vals = [
            r.voltage_v[0],
            r.voltage_v[1],
            r.voltage_v[2],
            r.current_a[0],
            r.current_a[1],
            r.current_a[2],
            r.active_power_w,
        ];
        for (s, v) in a.sums.iter_mut().zip(vals) {
            if let Some(v) = v {
                s.0 += v;
                s.1 += 1;
            }
        }
        if let Some(e) = r.energy_kwh {
            let delta = a.prev_energy.map_or(0.0, |p| (e - p).max(0.0));
            a.energy = Some(a.energy.map_or((e, 0.0), |(_, sum)| (e, sum + delta)));
            a.prev_energy = Some(e);
        }
        a.door |= r.door_alarm;
        a.leak |= r.leakage_alarm;
    }
    out.into_iter()
        .map(|(time, a)| {
            let avg = |i: usize| (a.sums[i].1 > 0).then(|| a.sums[i].0 / f64::from(a.sums[i].1));
            RtuAggregate {
                time,
                samples: a.n,
                voltage_v_avg: [avg(0), avg(1), avg(2)],
                current_a_avg: [avg(3), avg(4), avg(5)],
                active_power_w_avg: avg(6),
                energy_kwh: a.energy.map(|(_, sum)| sum),
                door_alarm: a.door,
                leakage_alarm: a.leak,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn plan_checks_order_and_size() {
        let a = t("2025-01-01T00:00:00Z");
        assert!(plan(a, a, None, false).is_err());
        assert_eq!(
            plan(a, a + Duration::hours(3), None, false).unwrap(),
            Resolution::Raw
        );
        assert_eq!(
            plan(a, a + Duration::days(10), None, false).unwrap(),
            Resolution::Hour
        );
        assert_eq!(
            plan(a, a + Duration::days(400), None, false).unwrap(),
            Resolution::Day
        );
        assert!(plan(a, a + Duration::days(3), Some(Resolution::Raw), false).is_err());
        assert!(plan(a, a + Duration::days(36), None, true).is_err());
    }
}
