//! The audit trail of remote control: every completed command as one row,
//! carried through the backlog and spool like samples.

use super::db::Db;
use super::rows::{from_micros, micros, Batch};
use super::Shared;
use crate::control::{Action, Command, CommandObserver};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRow {
    pub command_id: String,
    pub created_us: i64,
    pub completed_us: i64,
    pub actor: String,
    pub source: String,
    pub action: String,
    pub level: Option<f64>,
    pub kind: String,
    pub selector: String,
    pub expires_us: Option<i64>,
    pub targets: i32,
    pub confirmed: i32,
    pub failed: i32,
    pub districts: String,
    pub outcome: String,
}

impl CommandRow {
    pub fn new(c: &Command) -> Self {
        let (action, level) = match c.action {
            Action::On => ("on", None),
            Action::Off => ("off", None),
            Action::Dim { level } => ("dim", Some(level)),
        };
        let mut districts: Vec<&str> = c.targets.iter().map(|t| t.district.as_str()).collect();
        districts.sort_unstable();
        districts.dedup();
        let outcome: Vec<Value> = c
            .targets
            .iter()
            .map(|t| serde_json::json!({"id": t.id, "state": t.state, "reason": t.reason, "attempts": t.attempts}))
            .collect();
        let tally = c.tally();
        let text = |v: &dyn erased::Json| v.json();
        CommandRow {
            command_id: c.id.clone(),
            created_us: micros(c.created_at),
            completed_us: micros(c.completed_at.unwrap_or(c.created_at)),
            actor: c.actor.clone(),
            source: text(&c.source),
            action: action.into(),
            level,
            kind: c.kind.into(),
            selector: c.selector.to_string(),
            expires_us: c.expires_at.map(micros),
            targets: c.targets.len() as i32,
            confirmed: tally.confirmed as i32,
            failed: tally.failed as i32,
            districts: serde_json::to_string(&districts).unwrap_or_else(|_| "[]".into()),
            outcome: Value::Array(outcome).to_string(),
        }
    }
}

mod erased {
    /// A serialisable value as its bare JSON text (`"api"`, not `"\"api\""`).
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            match serde_json::to_value(self) {
                Ok(serde_json::Value::String(s)) => s,
                Ok(v) => v.to_string(),
                Err(_) => String::new(),
            }
        }
    }
}

/// Hands completed commands to the store without waiting.
pub struct StoreAudit {
    pub(super) shared: Arc<Shared>,
}

impl CommandObserver for StoreAudit {
    fn completed(&self, command: &Command) {
        self.shared.push(Batch {
            commands: vec![CommandRow::new(command)],
            ..Batch::default()
        });
    }
}

/// One audit row as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub command: String,
    pub at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    pub actor: String,
    pub source: String,
    pub action: Value,
    pub kind: String,
    pub selector: Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub targets: i64,
    pub outcome: Value,
    pub results: Value,
    #[serde(skip)]
    pub districts: Vec<String>,
}

const COLUMNS: &str = "command_id, created_at, completed_at, actor, source, action, level, kind, \
    selector, expires_at, targets, confirmed, failed, districts, outcome";

impl Db {
    /// Audit rows created in [from, to), oldest first, at most `limit`.
    pub async fn audit(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        actor: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, sqlx::Error> {
        let actor_clause = if actor.is_some() {
            "AND actor = $3"
        } else {
            "AND $3 IS NULL"
        };
        match self {
            Db::Sqlite(p) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM command_audit WHERE created_at >= $1 AND created_at < $2 \
                     {actor_clause} ORDER BY created_at, command_id LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(micros(from))
                    .bind(micros(to))
                    .bind(actor)
                    .bind(limit)
                    .fetch_all(p)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let parse = |s: String| serde_json::from_str(&s).unwrap_or(Value::Null);
                        entry(
                            r,
                            from_micros(r.try_get("created_at")?),
                            from_micros(r.try_get("completed_at")?),
                            r.try_get::<Option<i64>, _>("expires_at")?.map(from_micros),
                            parse(r.try_get("selector")?),
                            parse(r.try_get("districts")?),
                            parse(r.try_get("outcome")?),
                        )
                    })
                    .collect()
            }
            Db::Postgres(pg) => {
                let sql = format!(
                    "SELECT {COLUMNS} FROM command_audit WHERE created_at >= $1 AND created_at < $2 \
                     {actor_clause} ORDER BY created_at, command_id LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(from)
                    .bind(to)
                    .bind(actor)
                    .bind(limit)
                    .fetch_all(&pg.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        entry(
                            r,
                            r.try_get("created_at")?,
                            r.try_get("completed_at")?,
                            r.try_get("expires_at")?,
                            r.try_get("selector")?,
                            r.try_get("districts")?,
                            r.try_get("outcome")?,
                        )
                    })
                    .collect()
            }
        }
    }
}

fn entry<R: Row>(
    r: &R,
    at: DateTime<Utc>,
    completed_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    selector: Value,
    districts: Value,
    results: Value,
) -> Result<AuditEntry, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<f64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i32: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let action: String = r.try_get("action")?;
    let level: Option<f64> = r.try_get("level")?;
    let targets: i32 = r.try_get("targets")?;
    let confirmed: i32 = r.try_get("confirmed")?;
    let failed: i32 = r.try_get("failed")?;
    Ok(AuditEntry {
        command: r.try_get("command_id")?,
        at,
        completed_at,
        actor: r.try_get("actor")?,
        source: r.try_get("source")?,
        action: match level {
            Some(level) => serde_json::json!({"action": action, "level": level}),
            None => serde_json::json!({"action": action}),
        },
        kind: r.try_get("kind")?,
        selector,
        expires_at,
        targets: i64::from(targets),
        outcome: serde_json::json!({"confirmed": confirmed, "failed": failed}),
        results,
        districts: serde_json::from_value(districts).unwrap_or_default(),
    })
}

/// Inserts audit rows one by one: there are few, and the key makes a
/// replayed row a no-op.
pub(super) async fn write_sqlite(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    rows: &[CommandRow],
) -> Result<(), sqlx::Error> {
    for r in rows {
        sqlx::query(&format!(
            "INSERT INTO command_audit ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) \
             ON CONFLICT (command_id) DO NOTHING"
        ))
        .bind(&r.command_id)
        .bind(r.created_us)
        .bind(r.completed_us)
        .bind(&r.actor)
        .bind(&r.source)
        .bind(&r.action)
        .bind(r.level)
        .bind(&r.kind)
        .bind(&r.selector)
        .bind(r.expires_us)
        .bind(r.targets)
        .bind(r.confirmed)
        .bind(r.failed)
        .bind(&r.districts)
        .bind(&r.outcome)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn write_postgres(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    rows: &[CommandRow],
) -> Result<(), sqlx::Error> {
    for r in rows {
        sqlx::query(&format!(
            "INSERT INTO command_audit ({COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9::jsonb,$10,$11,$12,$13,$14::jsonb,$15::jsonb) \
             ON CONFLICT (command_id) DO NOTHING"
        ))
        .bind(&r.command_id)
        .bind(from_micros(r.created_us))
        .bind(from_micros(r.completed_us))
        .bind(&r.actor)
        .bind(&r.source)
        .bind(&r.action)
        .bind(r.level)
        .bind(&r.kind)
        .bind(&r.selector)
        .bind(r.expires_us.map(from_micros))
        .bind(r.targets)
        .bind(r.confirmed)
        .bind(r.failed)
        .bind(&r.districts)
        .bind(&r.outcome)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
