//! What the windowed evaluation figures read from the store: the lamp-time
//! of each road and each district's lamps on no road over the hours of a
//! window, summed over those hours and every gateway run
//! (`evaluation_hourly`, written by `crate::figures::sampler`), and the time
//! the evaluation covered. The rules that turn them into figures are
//! `crate::figures::evaluation_window`'s.

use crate::store::db::{with_pool, Db, StoreTime};
use chrono::{DateTime, Utc};

/// One scope's lamp-milliseconds over the hours of a window, every run's
/// added up. `road` is `""` for the district's lamps on no road; that row's
/// `sampled_ms` is the time the district was evaluated.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EvaluationTotals {
    pub district: String,
    pub road: String,
    pub sampled_ms: i64,
    pub expected_lit_ms: i64,
    pub lit_ms: i64,
    pub dark_ms: i64,
    pub unknown_ms: i64,
    pub estimated_ms: i64,
    /// Summed over the hours and runs.
    pub over_cap_ms: i64,
    pub over_cap_with_unknown_ms: i64,
    /// The most of any hour and run.
    pub dark_max: i64,
    pub dark_with_unknown_max: i64,
}

/// `AND district = $3` when a district is asked for.
fn district_filter(district: Option<&str>) -> &'static str {
    match district {
        Some(_) => " AND district = $3",
        None => "",
    }
}

impl Db {
    /// Every scope's totals over the hours that start in [from, to), of one
    /// district or all, by district and road: one row per road whatever
    /// the window's length. The sums are cast back to 64-bit integers
    /// (PostgreSQL widens a `bigint` sum to `numeric`).
    pub async fn evaluation_totals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
    ) -> Result<Vec<EvaluationTotals>, sqlx::Error> {
        let sql = format!(
            "SELECT district, road, \
                    CAST(SUM(sampled_ms) AS BIGINT) AS sampled_ms, \
                    CAST(SUM(expected_lit_ms) AS BIGINT) AS expected_lit_ms, \
                    CAST(SUM(lit_ms) AS BIGINT) AS lit_ms, \
                    CAST(SUM(dark_ms) AS BIGINT) AS dark_ms, \
                    CAST(SUM(unknown_ms) AS BIGINT) AS unknown_ms, \
                    CAST(SUM(estimated_ms) AS BIGINT) AS estimated_ms, \
                    CAST(SUM(over_cap_ms) AS BIGINT) AS over_cap_ms, \
                    CAST(SUM(over_cap_with_unknown_ms) AS BIGINT) AS over_cap_with_unknown_ms, \
                    CAST(MAX(dark_max) AS BIGINT) AS dark_max, \
                    CAST(MAX(dark_with_unknown_max) AS BIGINT) AS dark_with_unknown_max \
             FROM evaluation_hourly WHERE hour >= $1 AND hour < $2{} \
             GROUP BY district, road ORDER BY district, road",
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

    /// The time the evaluation covered over the hours that start in
    /// [from, to): per hour and run the longest of its districts' `(no
    /// road)` rows (all of a tick's rows carry the same time; a district
    /// added by a reload part way has less), added up.
    pub async fn evaluation_sampled_ms(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
    ) -> Result<i64, sqlx::Error> {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(m), 0) AS BIGINT) FROM ( \
                 SELECT MAX(sampled_ms) AS m FROM evaluation_hourly \
                 WHERE road = '' AND hour >= $1 AND hour < $2{} \
                 GROUP BY hour, run_id) t",
            district_filter(district)
        );
        with_pool!(self, pool => {
            let mut q = sqlx::query_scalar(&sql).bind(StoreTime(from)).bind(StoreTime(to));
            if let Some(d) = district {
                q = q.bind(d);
            }
            q.fetch_one(pool).await
        })
    }
}
