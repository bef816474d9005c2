//! The cluster as the API shows it (`GET /api/v1/cluster`): read from the
//! database, so any instance answers for all of them.

use super::leases::Me;
use super::ClusterError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgPool;
use utoipa::ToSchema;

/// Every instance the database knows and the endpoints nobody holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClusterView {
    /// Whether this gateway runs in cluster mode (`cluster.enabled`).
    pub enabled: bool,
    /// The instance that answered.
    pub instance: String,
    pub lease_ttl_seconds: f64,
    pub instances: Vec<InstanceView>,
    /// Leased endpoints (`host:port`) that no live lease covers: free, or
    /// expired and not taken over yet.
    pub unassigned: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct InstanceView {
    pub id: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Set when it stopped cleanly (handing its leases back).
    pub stopped_at: Option<DateTime<Utc>>,
    /// Heartbeat within the lease ttl and not stopped.
    pub live: bool,
    /// Endpoints it holds an unexpired lease on.
    pub endpoints: i64,
}

impl ClusterView {
    /// What a gateway not in cluster mode answers: itself alone.
    pub fn single(instance: &str) -> ClusterView {
        ClusterView {
            enabled: false,
            instance: instance.to_string(),
            lease_ttl_seconds: 0.0,
            instances: Vec::new(),
            unassigned: Vec::new(),
        }
    }
}

pub(super) async fn read(me: &Me, pool: &PgPool) -> Result<ClusterView, ClusterError> {
    let ttl = me.ttl.as_secs_f64();
    let mut tx = pool.begin().await?;
    // One snapshot, one `now()` for both reads.
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let instances: Vec<InstanceView> = sqlx::query_as(
        "SELECT i.id, i.version, i.started_at, i.heartbeat_at, i.stopped_at, \
           (i.stopped_at IS NULL AND i.heartbeat_at > now() - make_interval(secs => $1)) AS live, \
           (SELECT count(*) FROM cluster_leases l \
             WHERE l.holder = i.id AND l.run = i.run AND l.expires_at > now()) AS endpoints \
         FROM cluster_instances i ORDER BY i.id",
    )
    .bind(ttl)
    .fetch_all(&mut *tx)
    .await?;
    let unassigned: Vec<String> = sqlx::query_scalar(
        "SELECT endpoint FROM cluster_leases \
         WHERE holder IS NULL OR expires_at <= now() ORDER BY endpoint",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ClusterView {
        enabled: true,
        instance: me.id.clone(),
        lease_ttl_seconds: ttl,
        instances,
        unassigned,
    })
}
