//! What the windowed supervision figures read from the store: the gateway's
//! runs (observed time), the online/offline transitions of a window, and the
//! hourly lighting columns of the district rollups. Times come back as
//! microseconds since the epoch on both backends.

use crate::store::db::{with_pool, Db, StoreTime};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One gateway process as `gateway_runs` recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RunSpan {
    #[sqlx(try_from = "StoreTime")]
    pub started_us: i64,
    /// `stopped_at` for a clean stop, else the last heartbeat.
    #[sqlx(try_from = "StoreTime")]
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
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LightingHour {
    pub district: String,
    #[sqlx(try_from = "StoreTime")]
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
        let sql =
            "SELECT started_at AS started_us, COALESCE(stopped_at, heartbeat_at) AS last_us, \
                   stopped_at IS NOT NULL AS stopped \
                   FROM gateway_runs WHERE gateway_id = $1 AND started_at < $2 \
                   ORDER BY started_at";
        with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(gateway_id)
                .bind(StoreTime(before))
                .fetch_all(pool)
                .await
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
        with_pool!(self, pool => {
            let mut q = sqlx::query(sql).bind(StoreTime(from)).bind(StoreTime(to));
            if let Some(d) = district {
                q = q.bind(d);
            }
            let mut events = Vec::new();
            for r in q.fetch_all(pool).await? {
                let kind: &str = r.try_get(1)?;
                if let Some(device) = device(kind == "rtu", r.try_get(2)?) {
                    events.push(TransitionEvent {
                        time_us: r.try_get::<StoreTime, _>(0)?.micros(),
                        device,
                        online: r.try_get(3)?,
                    });
                }
            }
            Ok(events)
        })
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
                "SELECT district, hour AS hour_us, expected_seconds, lit_seconds \
                 FROM district_hourly WHERE hour >= $1 AND hour < $2"
            }
            Some(_) => {
                "SELECT district, hour AS hour_us, expected_seconds, lit_seconds \
                 FROM district_hourly WHERE district = $3 AND hour >= $1 AND hour < $2"
            }
        };
        with_pool!(self, pool => {
            let mut q = sqlx::query_as(sql).bind(StoreTime(from)).bind(StoreTime(to));
            if let Some(d) = district {
                q = q.bind(d);
            }
            q.fetch_all(pool).await
        })
    }
}
