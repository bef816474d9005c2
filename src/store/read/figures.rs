//! What the windowed supervision figures read from the store: the gateway's
//! runs (observed time), the online/offline transitions of a window, and the
//! hourly lighting columns of the circuit rollups. Times come back as
//! microseconds since the epoch on both backends.

use super::db::Db;
use super::rows::micros;
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One gateway process as `gateway_runs` recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSpan {
    pub started_us: i64,
    /// `stopped_at` for a clean stop, else the last heartbeat.
    pub last_us: i64,
    pub stopped: bool,
}

/// One online/offline transition of a device the caller numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransitionEvent {
    pub time_us: i64,
    pub device: u32,
    pub online: bool,
}

/// The lighting columns of one district and UTC hour.
#[derive(Debug, Clone, PartialEq)]
pub struct LightingHour {
    pub district: String,
    pub hour_us: i64,
    pub expected_seconds: f64,
    pub lit_seconds: f64,
}

impl Db {
    /// The runs of `gateway_id` that started before `before`, oldest first.
    /// One row per process start: a handful per month.
    pub async fn runs(
        &self,
        gateway_id: &str,
        before: DateTime<Utc>,
    ) -> Result<Vec<RunSpan>, sqlx::Error> {
        let sql = "SELECT started_at, COALESCE(stopped_at, heartbeat_at), stopped_at IS NOT NULL \
                   FROM gateway_runs WHERE gateway_id = $1 AND started_at < $2 \
                   ORDER BY started_at";
        Ok(match self {
            Db::Sqlite(p) => sqlx::query(sql)
                .bind(gateway_id)
                .bind(micros(before))
                .fetch_all(p)
                .await?
                .iter()
                .map(|r| {
                    Ok(RunSpan {
                        started_us: r.try_get(0)?,
                        last_us: r.try_get(1)?,
                        stopped: r.try_get(2)?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
            Db::Postgres(pg) => sqlx::query(sql)
                .bind(gateway_id)
                .bind(before)
                .fetch_all(&pg.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok(RunSpan {
                        started_us: micros(r.try_get(0)?),
                        last_us: micros(r.try_get(1)?),
                        stopped: r.try_get(2)?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()?,
        })
    }

    /// Transitions in [from, to), in time order, of one district or all.
    /// City-wide this is a range scan of the covering `transitions_time`
    /// index; for a district, of `transitions_district_time`. `device` numbers
    /// a device by (is RTU, id) — looked up on the row's borrowed id, so a
    /// month of 100,000 lamps allocates no strings; rows it gives no number
    /// (devices not in the inventory) are left out.
    pub async fn transitions_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
        device: impl Fn(bool, &str) -> Option<u32>,
    ) -> Result<Vec<TransitionEvent>, sqlx::Error> {
        let sql = match district {
            None => {
                "SELECT time, device_kind, device_id, online FROM transitions \
                 WHERE time >= $1 AND time < $2 ORDER BY time"
            }
            Some(_) => {
                "SELECT time, device_kind, device_id, online FROM transitions \
                 WHERE district = $3 AND time >= $1 AND time < $2 ORDER BY time"
            }
        };
        macro_rules! event {
            ($r:expr, $time:expr) => {
                match device($r.try_get::<&str, _>(1)? == "rtu", $r.try_get(2)?) {
                    Some(device) => Some(TransitionEvent {
                        time_us: $time,
                        device,
                        online: $r.try_get(3)?,
                    }),
                    None => None,
                }
            };
        }
        match self {
            Db::Sqlite(p) => {
                let mut q = sqlx::query(sql).bind(micros(from)).bind(micros(to));
                if let Some(d) = district {
                    q = q.bind(d);
                }
                q.fetch_all(p)
                    .await?
                    .iter()
                    .filter_map(|r| (|| Ok(event!(r, r.try_get(0)?)))().transpose())
                    .collect()
            }
            Db::Postgres(pg) => {
                let mut q = sqlx::query(sql).bind(from).bind(to);
                if let Some(d) = district {
                    q = q.bind(d);
                }
                q.fetch_all(&pg.pool)
                    .await?
                    .iter()
                    .filter_map(|r| (|| Ok(event!(r, micros(r.try_get(0)?))))().transpose())
                    .collect()
            }
        }
    }

    /// Expected-lit and lit seconds per district and hour for the hours that
    /// start in [from, to), from the `district_hourly` rollup: a month for
    /// the city is districts × 720 rows whatever the number of lamps.
    pub async fn lighting_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
    ) -> Result<Vec<LightingHour>, sqlx::Error> {
        let sql = match district {
            None => {
                "SELECT district, hour, expected_seconds, lit_seconds \
                 FROM district_hourly WHERE hour >= $1 AND hour < $2"
            }
            Some(_) => {
                "SELECT district, hour, expected_seconds, lit_seconds \
                 FROM district_hourly WHERE district = $3 AND hour >= $1 AND hour < $2"
            }
        };
        macro_rules! hour {
            ($r:expr, $time:expr) => {
                LightingHour {
                    district: $r.try_get(0)?,
                    hour_us: $time,
                    expected_seconds: $r.try_get(2)?,
                    lit_seconds: $r.try_get(3)?,
                }
            };
        }
        match self {
            Db::Sqlite(p) => {
                let mut q = sqlx::query(sql).bind(micros(from)).bind(micros(to));
                if let Some(d) = district {
                    q = q.bind(d);
                }
                q.fetch_all(p)
                    .await?
                    .iter()
                    .map(|r| Ok(hour!(r, r.try_get(1)?)))
                    .collect()
            }
            Db::Postgres(pg) => {
                let mut q = sqlx::query(sql).bind(from).bind(to);
                if let Some(d) = district {
                    q = q.bind(d);
                }
                q.fetch_all(&pg.pool)
                    .await?
                    .iter()
                    .map(|r| Ok(hour!(r, micros(r.try_get(1)?))))
                    .collect()
            }
        }
    }
}
