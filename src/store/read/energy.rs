//! What the energy, saving and maintenance figures read from the store: the
//! cabinet meters' hours (`cabinet_hourly`), the SLCs' energy per circuit
//! (`circuit_hourly`) and per road (`road_hourly`) hour, and a window's sums
//! per lamp (`lamp_hourly`). Hours come back as microseconds since the
//! epoch, in key order (so the figures add them up in one order); the rules
//! that turn them into figures are `crate::figures::energy`'s.

use crate::store::db::{with_pool, Db, StoreTime};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::Row;

/// One cabinet's meter over one UTC hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterHour {
    /// The caller's number for the cabinet (its inventory position).
    pub cabinet: u32,
    pub hour_us: i64,
    pub meter_kwh: f64,
    /// RTU samples with a meter reading in the hour.
    pub samples: u32,
}

/// One circuit's SLCs over one UTC hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitHour {
    pub cabinet: u32,
    pub circuit: u8,
    pub hour_us: i64,
    /// Lamps whose SLC sent a sample in the hour.
    pub lamps: u32,
    pub energy_kwh: f64,
}

/// The SLCs of one road (`""`: on no road) of one district over one UTC hour.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RoadHour {
    pub road: String,
    pub district: String,
    #[sqlx(rename = "hour", try_from = "StoreTime")]
    pub hour_us: i64,
    #[sqlx(try_from = "i32")]
    pub lamps: u32,
    pub energy_kwh: f64,
    pub on_seconds: f64,
}

/// One lamp's rolled-up hours of a window, summed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LampTotals {
    pub lamp_id: String,
    pub hours: i64,
    pub samples: i64,
    pub on_seconds: f64,
    pub switches: i64,
    pub energy_kwh: f64,
}

/// Ids per statement of [`Db::lamp_totals`]: far below either backend's
/// limit on bound values.
const IDS_PER_QUERY: usize = 500;

/// `$3`, or with a district `… AND district = $3`: the filter every read
/// here shares, after `hour >= $1 AND hour < $2`.
fn district_filter(district: Option<&str>) -> &'static str {
    match district {
        Some(_) => " AND district = $3",
        None => "",
    }
}

impl Db {
    /// The meter hours starting in [from, to), of one district or all.
    /// `cabinet` numbers a cabinet by id (looked up on the borrowed id);
    /// rows it gives no number are left out.
    pub async fn meter_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
        cabinet: impl Fn(&str) -> Option<u32>,
    ) -> Result<Vec<MeterHour>, sqlx::Error> {
        let sql = format!(
            "SELECT cabinet, hour, meter_kwh, samples FROM cabinet_hourly \
             WHERE hour >= $1 AND hour < $2{} ORDER BY cabinet, hour",
            district_filter(district)
        );
        with_pool!(self, pool => {
            let mut q = sqlx::query(&sql).bind(StoreTime(from)).bind(StoreTime(to));
            if let Some(d) = district {
                q = q.bind(d);
            }
            let mut out = Vec::new();
            // A stream: a month of a city's cabinet-hours is ~720,000 rows,
            // and every row held at once costs far more than its struct.
            let mut rows = q.fetch(pool);
            while let Some(r) = rows.try_next().await? {
                if let Some(c) = cabinet(r.try_get(0)?) {
                    out.push(MeterHour {
                        cabinet: c,
                        hour_us: r.try_get::<StoreTime, _>(1)?.micros(),
                        meter_kwh: r.try_get(2)?,
                        samples: u32::try_from(r.try_get::<i32, _>(3)?).unwrap_or(0),
                    });
                }
            }
            Ok(out)
        })
    }

    /// The circuits' SLC hours starting in [from, to), of one district or all.
    pub async fn circuit_energy_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
        cabinet: impl Fn(&str) -> Option<u32>,
    ) -> Result<Vec<CircuitHour>, sqlx::Error> {
        // The circuit is smallint on PostgreSQL, INTEGER on SQLite: read as
        // one type on both.
        let sql = format!(
            "SELECT cabinet, CAST(circuit AS INTEGER), hour, lamps, energy_kwh \
             FROM circuit_hourly WHERE hour >= $1 AND hour < $2{} \
             ORDER BY cabinet, circuit, hour",
            district_filter(district)
        );
        with_pool!(self, pool => {
            let mut q = sqlx::query(&sql).bind(StoreTime(from)).bind(StoreTime(to));
            if let Some(d) = district {
                q = q.bind(d);
            }
            let mut out = Vec::new();
            // A stream, as in `meter_hours`: ~2.9 million circuit-hours a
            // month at 100,000 lamps.
            let mut rows = q.fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let (Some(c), Ok(circuit)) =
                    (cabinet(r.try_get(0)?), u8::try_from(r.try_get::<i32, _>(1)?))
                else {
                    continue;
                };
                out.push(CircuitHour {
                    cabinet: c,
                    circuit,
                    hour_us: r.try_get::<StoreTime, _>(2)?.micros(),
                    lamps: u32::try_from(r.try_get::<i32, _>(3)?).unwrap_or(0),
                    energy_kwh: r.try_get(4)?,
                });
            }
            Ok(out)
        })
    }

    /// The roads' SLC hours starting in [from, to), of one district or all.
    pub async fn road_energy_hours(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
    ) -> Result<Vec<RoadHour>, sqlx::Error> {
        let sql = format!(
            "SELECT road, district, hour, lamps, energy_kwh, on_seconds FROM road_hourly \
             WHERE hour >= $1 AND hour < $2{} ORDER BY district, road, hour",
            district_filter(district)
        );
        with_pool!(self, pool => {
            let mut q = sqlx::query_as(&sql).bind(StoreTime(from)).bind(StoreTime(to));
            if let Some(d) = district {
                q = q.bind(d);
            }
            q.fetch_all(pool).await
        })
    }

    /// Each of `lamps`' hours starting in [from, to), summed per lamp; a
    /// lamp without rolled-up hours has no row. A seek per lamp on the
    /// table's key, so a page of lamps costs its own hours only.
    pub async fn lamp_totals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        lamps: &[&str],
    ) -> Result<Vec<LampTotals>, sqlx::Error> {
        let mut out = Vec::with_capacity(lamps.len());
        for ids in lamps.chunks(IDS_PER_QUERY) {
            let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "SELECT lamp_id, COUNT(*) AS hours, SUM(samples) AS samples, \
                        SUM(on_seconds) AS on_seconds, SUM(switches) AS switches, \
                        SUM(energy_kwh) AS energy_kwh \
                 FROM lamp_hourly WHERE hour >= $1 AND hour < $2 AND lamp_id IN ({}) \
                 GROUP BY lamp_id",
                marks.join(", ")
            );
            with_pool!(self, pool => {
                let mut q = sqlx::query_as(&sql).bind(StoreTime(from)).bind(StoreTime(to));
                for id in ids {
                    q = q.bind(*id);
                }
                out.extend(q.fetch_all(pool).await?);
            });
        }
        Ok(out)
    }
}
