//! The audit trail as the API reads it: completed commands of a window, one
//! row each (written by the ingest, `ingest::rows::CommandRow`).

use crate::store::db::{with_pool, Db, StoreJson, StoreTime};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// One audit row as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

/// `command_audit` as stored; shaped into an `AuditEntry` below.
#[derive(sqlx::FromRow)]
struct AuditRecord {
    command_id: String,
    created_at: StoreTime,
    completed_at: StoreTime,
    actor: String,
    source: String,
    action: String,
    level: Option<f64>,
    kind: String,
    selector: StoreJson,
    expires_at: Option<StoreTime>,
    targets: i32,
    confirmed: i32,
    failed: i32,
    districts: StoreJson,
    outcome: StoreJson,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        AuditEntry {
            command: r.command_id,
            at: r.created_at.0,
            completed_at: r.completed_at.0,
            actor: r.actor,
            source: r.source,
            action: match r.level {
                Some(level) => serde_json::json!({"action": r.action, "level": level}),
                None => serde_json::json!({"action": r.action}),
            },
            kind: r.kind,
            selector: r.selector.value(),
            expires_at: r.expires_at.map(|t| t.0),
            targets: i64::from(r.targets),
            outcome: serde_json::json!({"confirmed": r.confirmed, "failed": r.failed}),
            results: r.outcome.value(),
            districts: serde_json::from_value(r.districts.value()).unwrap_or_default(),
        }
    }
}

macro_rules! audit_select {
    () => {
        "SELECT command_id, created_at, completed_at, actor, source, action, level, kind, \
         selector, expires_at, targets, confirmed, failed, districts, outcome \
         FROM command_audit WHERE created_at >= $1 AND created_at < $2 "
    };
}

macro_rules! audit_order {
    () => {
        "ORDER BY created_at, command_id LIMIT $4"
    };
}

impl Db {
    /// Audit rows created in [from, to), oldest first, at most `limit`.
    pub async fn audit(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        actor: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, sqlx::Error> {
        // Two texts rather than `($3 IS NULL OR actor = $3)`, so that each
        // plans on its own; the bind list is the same.
        let sql = if actor.is_some() {
            concat!(audit_select!(), "AND actor = $3 ", audit_order!())
        } else {
            concat!(audit_select!(), "AND $3 IS NULL ", audit_order!())
        };
        let rows: Vec<AuditRecord> = with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(StoreTime(from))
                .bind(StoreTime(to))
                .bind(actor)
                .bind(limit)
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(AuditEntry::from).collect())
    }
}
