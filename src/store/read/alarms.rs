//! Alarms as the API, the windowed figures and the restore at start read them
//! from the `alarms` table (one row per id at its highest version, written by
//! the ingest from `alarm::AlarmChange`s). Every query is written once for
//! both backends; `overdue` is computed as of the caller's `now`, not taken
//! from the row (which holds it as of the last change).

use crate::alarm::{Alarm, AlarmFilter, AlarmKind, AlarmState, DeviceKind, Severity};
use crate::store::db::{with_pool, Db, StoreJson, StoreTime};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// A bound value of a filtered query.
enum Arg {
    Text(String),
    Time(StoreTime),
}

const COLUMNS: &str = "id, kind, severity, state, device_kind, device_id, circuit, cabinet, \
    district, raised_at, acknowledged_at, acknowledged_by, comment, cleared_at, closed_at, \
    occurrences, deadline, overdue, detail, version";

/// Standing (`AlarmState::is_standing`) in SQL.
const STANDING: &str = "state IN ('active', 'acknowledged')";

/// [`AlarmFilter`] in SQL: `AlarmFilter::matches` is the same rule in memory.
impl AlarmFilter {
    /// The `WHERE` clause (`$1`…) and its binds, as of `now`.
    fn clause(&self, now: DateTime<Utc>) -> (String, Vec<Arg>) {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<Arg> = Vec::new();
        let param = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            format!("${}", args.len())
        };
        if !self.states.is_empty() {
            let list: Vec<String> = self
                .states
                .iter()
                .map(|s| param(&mut args, Arg::Text(s.as_str().into())))
                .collect();
            conds.push(format!("state IN ({})", list.join(", ")));
        }
        let equal = [
            ("kind", self.kind.map(|k| k.as_str().to_string())),
            ("severity", self.severity.map(|s| s.as_str().to_string())),
            ("district", self.district.clone()),
            ("cabinet", self.cabinet.clone()),
            ("device_id", self.device_id.clone()),
        ];
        for (col, value) in equal {
            if let Some(v) = value {
                let p = param(&mut args, Arg::Text(v));
                conds.push(format!("{col} = {p}"));
            }
        }
        if let Some(visible) = &self.visible {
            if visible.is_empty() {
                conds.push("1 = 0".into());
            } else {
                let list: Vec<String> = visible
                    .iter()
                    .map(|d| param(&mut args, Arg::Text(d.clone())))
                    .collect();
                conds.push(format!("district IN ({})", list.join(", ")));
            }
        }
        if let Some(overdue) = self.overdue {
            let p = param(&mut args, Arg::Time(StoreTime(now)));
            let cond = format!("({STANDING} AND deadline < {p})");
            conds.push(if overdue { cond } else { format!("NOT {cond}") });
        }
        if let Some(from) = self.raised_from {
            let p = param(&mut args, Arg::Time(StoreTime(from)));
            conds.push(format!("raised_at >= {p}"));
        }
        if let Some(to) = self.raised_to {
            let p = param(&mut args, Arg::Time(StoreTime(to)));
            conds.push(format!("raised_at < {p}"));
        }
        let clause = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        (clause, args)
    }
}

/// `alarms` as stored; made an [`Alarm`] below.
#[derive(sqlx::FromRow)]
struct AlarmRecord {
    id: i64,
    kind: String,
    severity: String,
    state: String,
    device_kind: String,
    device_id: String,
    circuit: Option<i16>,
    cabinet: Option<String>,
    district: String,
    raised_at: StoreTime,
    acknowledged_at: Option<StoreTime>,
    acknowledged_by: Option<String>,
    comment: Option<String>,
    cleared_at: Option<StoreTime>,
    closed_at: Option<StoreTime>,
    occurrences: i64,
    deadline: StoreTime,
    overdue: bool,
    detail: StoreJson,
    version: i64,
}

fn device_kind(s: &str) -> Option<DeviceKind> {
    [
        DeviceKind::Lamp,
        DeviceKind::Rtu,
        DeviceKind::Circuit,
        DeviceKind::Cabinet,
        DeviceKind::Endpoint,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

impl TryFrom<AlarmRecord> for Alarm {
    type Error = sqlx::Error;

    fn try_from(r: AlarmRecord) -> Result<Alarm, sqlx::Error> {
        let bad = |what: &str, v: &str| {
            sqlx::Error::Decode(format!("alarm {}: unknown {what} `{v}`", r.id).into())
        };
        Ok(Alarm {
            id: r.id,
            kind: AlarmKind::parse(&r.kind).ok_or_else(|| bad("kind", &r.kind))?,
            severity: Severity::parse(&r.severity).ok_or_else(|| bad("severity", &r.severity))?,
            state: AlarmState::parse(&r.state).ok_or_else(|| bad("state", &r.state))?,
            device_kind: device_kind(&r.device_kind)
                .ok_or_else(|| bad("device kind", &r.device_kind))?,
            device_id: r.device_id,
            circuit: r.circuit.and_then(|c| u8::try_from(c).ok()),
            cabinet: r.cabinet,
            district: r.district,
            raised_at: r.raised_at.0,
            acknowledged_at: r.acknowledged_at.map(|t| t.0),
            acknowledged_by: r.acknowledged_by,
            comment: r.comment,
            cleared_at: r.cleared_at.map(|t| t.0),
            closed_at: r.closed_at.map(|t| t.0),
            occurrences: u32::try_from(r.occurrences).unwrap_or(u32::MAX),
            deadline: r.deadline.0,
            overdue: r.overdue,
            detail: r.detail.value(),
            version: u32::try_from(r.version).unwrap_or(u32::MAX),
        })
    }
}

fn alarms_of(rows: Vec<AlarmRecord>) -> Result<Vec<Alarm>, sqlx::Error> {
    rows.into_iter().map(Alarm::try_from).collect()
}

/// Ids per `IN (…)` of [`Db::alarm_versions`].
const IDS_PER_QUERY: usize = 500;

impl Db {
    /// The alarms the filter lets through, newest first (raised_at, then id,
    /// descending), `limit` of them after skipping `offset`, with the total
    /// the filter lets through; `overdue` as of `now`.
    pub async fn alarms(
        &self,
        filter: &AlarmFilter,
        limit: u64,
        offset: u64,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<Alarm>), sqlx::Error> {
        let (clause, args) = filter.clause(now);
        let count_sql = format!("SELECT COUNT(*) FROM alarms{clause}");
        let n = args.len();
        let list_sql = format!(
            "SELECT {COLUMNS} FROM alarms{clause} ORDER BY raised_at DESC, id DESC \
             LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let (total, rows): (i64, Vec<AlarmRecord>) = with_pool!(self, pool => {
            let mut count = sqlx::query_scalar(&count_sql);
            let mut list = sqlx::query_as(&list_sql);
            for a in &args {
                (count, list) = match a {
                    Arg::Text(s) => (count.bind(s.as_str()), list.bind(s.as_str())),
                    Arg::Time(t) => (count.bind(*t), list.bind(*t)),
                };
            }
            let total = count.fetch_one(pool).await?;
            let rows = list.bind(limit).bind(offset).fetch_all(pool).await?;
            (total, rows)
        });
        let alarms = alarms_of(rows)?.iter().map(|a| a.as_of(now)).collect();
        Ok((u64::try_from(total).unwrap_or(0), alarms))
    }

    /// One alarm by id, as stored (its `overdue` as of its last change).
    pub async fn alarm(&self, id: i64) -> Result<Option<Alarm>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM alarms WHERE id = $1");
        let row: Option<AlarmRecord> = with_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(Alarm::try_from).transpose()
    }

    /// Every alarm not closed, by id.
    pub async fn open_alarms(&self) -> Result<Vec<Alarm>, sqlx::Error> {
        let sql = format!("SELECT {COLUMNS} FROM alarms WHERE state <> 'closed' ORDER BY id");
        let rows: Vec<AlarmRecord> =
            with_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        alarms_of(rows)
    }

    /// The alarms that stood at some time in [from, to): raised before `to`
    /// and not yet over at `from` (not cleared, or cleared at or after
    /// `from`; one closed while standing counts until its `closed_at`). Those
    /// cleared in the window are among them. Only `district`'s alarms (the
    /// district the alarm was raised in) when it is given. Oldest first
    /// (raised_at, id).
    pub async fn alarms_in_window(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
    ) -> Result<Vec<Alarm>, sqlx::Error> {
        let only = if district.is_some() {
            " AND district = $3"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM alarms WHERE raised_at < $2 \
             AND ((cleared_at IS NULL AND (closed_at IS NULL OR closed_at >= $1)) \
                  OR cleared_at >= $1){only} \
             ORDER BY raised_at, id"
        );
        let rows: Vec<AlarmRecord> = with_pool!(self, pool => {
            let mut q = sqlx::query_as(&sql)
                .bind(StoreTime(from))
                .bind(StoreTime(to));
            if let Some(d) = district {
                q = q.bind(d);
            }
            q.fetch_all(pool).await?
        });
        alarms_of(rows)
    }

    /// The stored version of each of `ids` the table has.
    pub async fn alarm_versions(&self, ids: &[i64]) -> Result<HashMap<i64, u32>, sqlx::Error> {
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT id, version FROM alarms WHERE id IN ({})",
                list.join(", ")
            );
            let rows: Vec<(i64, i64)> = with_pool!(self, pool => {
                let mut q = sqlx::query_as(&sql);
                for id in chunk {
                    q = q.bind(*id);
                }
                q.fetch_all(pool).await?
            });
            for (id, version) in rows {
                out.insert(id, u32::try_from(version).unwrap_or(u32::MAX));
            }
        }
        Ok(out)
    }
}

impl Store {
    /// [`Db::alarms`]: a filtered page, newest first, with its total.
    pub async fn alarms(
        &self,
        filter: &AlarmFilter,
        limit: u64,
        offset: u64,
        now: DateTime<Utc>,
    ) -> Result<(u64, Vec<Alarm>), sqlx::Error> {
        self.db.alarms(filter, limit, offset, now).await
    }

    /// [`Db::alarm`].
    pub async fn alarm(&self, id: i64) -> Result<Option<Alarm>, sqlx::Error> {
        self.db.alarm(id).await
    }

    /// [`Db::open_alarms`]: what the database has; for the restore at start
    /// use `Running::open_alarms`, which adds what the spool still holds.
    pub async fn open_alarms(&self) -> Result<Vec<Alarm>, sqlx::Error> {
        self.db.open_alarms().await
    }

    /// [`Db::alarms_in_window`].
    pub async fn alarms_in_window(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
    ) -> Result<Vec<Alarm>, sqlx::Error> {
        self.db.alarms_in_window(from, to, district).await
    }
}

/// `stored` (open alarms of the database) overlaid with `waiting` (records
/// not yet written, any state), each id at its highest version; `versions`
/// holds the database's version of the waiting ids it has, so that a waiting
/// record older than a row closed since is not brought back. Not closed, by id.
pub(crate) fn overlay(
    stored: Vec<Alarm>,
    waiting: Vec<Alarm>,
    versions: &HashMap<i64, u32>,
) -> Vec<Alarm> {
    let mut by_id: std::collections::BTreeMap<i64, Alarm> =
        stored.into_iter().map(|a| (a.id, a)).collect();
    for a in waiting {
        let newer = match by_id.get(&a.id) {
            Some(have) => a.version > have.version,
            None => versions.get(&a.id).is_none_or(|&v| a.version > v),
        };
        if newer {
            by_id.insert(a.id, a);
        }
    }
    by_id
        .into_values()
        .filter(|a| a.state != AlarmState::Closed)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clause_numbers_its_binds_in_order() {
        let f = AlarmFilter {
            states: [AlarmState::Active, AlarmState::Cleared].into(),
            kind: Some(AlarmKind::Leakage),
            visible: Some(vec!["D01".into()]),
            overdue: Some(false),
            raised_to: Some(DateTime::UNIX_EPOCH),
            ..AlarmFilter::default()
        };
        let (sql, args) = f.clause(DateTime::UNIX_EPOCH);
        assert_eq!(
            sql,
            " WHERE state IN ($1, $2) AND kind = $3 AND district IN ($4) \
             AND NOT (state IN ('active', 'acknowledged') AND deadline < $5) AND raised_at < $6"
        );
        assert_eq!(args.len(), 6);
        let nobody = AlarmFilter {
            visible: Some(vec![]),
            ..AlarmFilter::default()
        };
        assert_eq!(nobody.clause(DateTime::UNIX_EPOCH).0, " WHERE 1 = 0");
        assert_eq!(AlarmFilter::default().clause(DateTime::UNIX_EPOCH).0, "");
    }
}
