//! The lease tables and every statement on them. Each runs under a
//! server-side `statement_timeout` and `lock_timeout` as well as the
//! caller's own timeout, and reads time only from the database (`now()`,
//! which is the transaction's start: one instant for a whole tick).

use super::ClusterError;
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};
use std::collections::BTreeSet;
use std::time::Duration;

/// The channel instances wake each other on: a join (shares shrink), a
/// release or a leave (leases are free). The payload is `kind instance run`.
pub(super) const CHANNEL: &str = "lampgw_cluster";

/// The tables, made once by whichever instance comes first: a transaction
/// holding an advisory lock, so instances starting together do not race
/// on the catalogue. They are the cluster's, not the store's: the store's
/// migrations run when its writer gets to them, the leases are needed
/// before the first poll.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS cluster_instances (
    id           text        PRIMARY KEY,
    -- One process's run: a restart with the same id is a new run, and a
    -- lease of the old run is not the new one's until it has expired.
    run          text        NOT NULL,
    version      text        NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at   timestamptz
);
CREATE TABLE IF NOT EXISTS cluster_leases (
    endpoint   text        PRIMARY KEY,
    holder     text,       -- instance id, NULL when free
    run        text,
    since      timestamptz,
    expires_at timestamptz NOT NULL DEFAULT now()
);
-- Every tenure of a lease: from its taking to its release, or to its
-- expiry when another instance took it over. Polling by the holder lies
-- inside it, so tenures of one endpoint never overlap.
CREATE TABLE IF NOT EXISTS cluster_tenures (
    endpoint text        NOT NULL,
    instance text        NOT NULL,
    run      text        NOT NULL,
    since    timestamptz NOT NULL,
    until    timestamptz,
    ended    text,       -- released, expired, stopped
    PRIMARY KEY (endpoint, since, run)
);
"#;

/// What one instance is to the others.
#[derive(Debug, Clone)]
pub(super) struct Me {
    pub(super) id: String,
    pub(super) run: String,
    pub(super) version: String,
    pub(super) ttl: Duration,
    /// Per statement, on the server.
    pub(super) statement_timeout: Duration,
}

impl Me {
    async fn begin(&self, pool: &PgPool) -> Result<Transaction<'static, Postgres>, ClusterError> {
        let mut tx = pool.begin().await?;
        // `SET LOCAL` as a function, which takes a bind parameter.
        let ms = self.statement_timeout.as_millis().max(1).to_string();
        sqlx::query(
            "SELECT set_config('statement_timeout', $1, true), \
             set_config('lock_timeout', $1, true)",
        )
        .bind(ms)
        .execute(&mut *tx)
        .await?;
        Ok(tx)
    }
}

pub(super) async fn schema(me: &Me, pool: &PgPool) -> Result<(), ClusterError> {
    let mut tx = me.begin(pool).await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('lampgw_cluster_schema'))")
        .execute(&mut *tx)
        .await?;
    for statement in SCHEMA.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Joins (or rejoins) and makes sure every endpoint of this instance's
/// inventory has a lease row; tenures and instances gone for a week are
/// dropped.
pub(super) async fn join(me: &Me, pool: &PgPool, endpoints: &[String]) -> Result<(), ClusterError> {
    let mut tx = me.begin(pool).await?;
    heartbeat(me, &mut tx).await?;
    sqlx::query(
        "INSERT INTO cluster_leases (endpoint) SELECT unnest($1::text[]) \
         ON CONFLICT (endpoint) DO NOTHING",
    )
    .bind(endpoints)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM cluster_tenures WHERE until < now() - interval '7 days'")
        .execute(&mut *tx)
        .await?;
    // Instances gone for a week are not shown any more.
    sqlx::query("DELETE FROM cluster_instances WHERE heartbeat_at < now() - interval '7 days'")
        .execute(&mut *tx)
        .await?;
    notify(&mut tx, "join", me).await?;
    tx.commit().await?;
    Ok(())
}

async fn heartbeat(me: &Me, tx: &mut Transaction<'static, Postgres>) -> Result<(), ClusterError> {
    // A new run of the id starts again; the same run keeps its start.
    sqlx::query(
        "INSERT INTO cluster_instances (id, run, version, started_at, heartbeat_at) \
         VALUES ($1, $2, $3, now(), now()) \
         ON CONFLICT (id) DO UPDATE SET \
           started_at = CASE WHEN cluster_instances.run = excluded.run \
                        THEN cluster_instances.started_at ELSE now() END, \
           run = excluded.run, version = excluded.version, \
           heartbeat_at = now(), stopped_at = NULL",
    )
    .bind(&me.id)
    .bind(&me.run)
    .bind(&me.version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn notify(
    tx: &mut Transaction<'static, Postgres>,
    kind: &str,
    me: &Me,
) -> Result<(), ClusterError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{kind} {} {}", me.id, me.run))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What one tick saw and did, all at the database's one `now()`.
#[derive(Debug, Clone, Default)]
pub(super) struct Tick {
    /// The leases this instance holds after the tick (renewed or taken).
    pub(super) held: BTreeSet<String>,
    /// Taken in this tick.
    pub(super) taken: Vec<String>,
    /// Live instances, by id (this one among them).
    pub(super) live: Vec<String>,
    /// This instance's share of the endpoints.
    pub(super) share: usize,
    /// Unexpired leases per holder, of this instance's endpoints.
    pub(super) per_holder: Vec<(String, i64)>,
    /// This instance's endpoints nobody holds (free or expired).
    pub(super) unassigned: i64,
    /// Seconds until the next lease of another instance expires, if any:
    /// the moment the endpoint may be taken over.
    pub(super) next_expiry: Option<f64>,
}

/// One tick: heartbeat, renew what this instance holds, and, when `take`,
/// take free or expired leases up to this instance's share (rows another
/// instance is taking at the same moment are skipped, not waited for).
pub(super) async fn tick(
    me: &Me,
    pool: &PgPool,
    endpoints: &[String],
    take: bool,
) -> Result<Tick, ClusterError> {
    let ttl = me.ttl.as_secs_f64();
    let mut tx = me.begin(pool).await?;
    heartbeat(me, &mut tx).await?;
    // Only endpoints still in the inventory: a lease of one a reload
    // removed runs out.
    let mut held: BTreeSet<String> = sqlx::query_scalar(
        "UPDATE cluster_leases SET expires_at = now() + make_interval(secs => $3) \
         WHERE holder = $1 AND run = $2 AND endpoint = ANY($4) RETURNING endpoint",
    )
    .bind(&me.id)
    .bind(&me.run)
    .bind(ttl)
    .bind(endpoints)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let live: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM cluster_instances \
         WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => $1) \
         ORDER BY id",
    )
    .bind(ttl)
    .fetch_all(&mut *tx)
    .await?;
    let share = share(endpoints.len(), &live, &me.id);
    let mut taken = Vec::new();
    // A tenure starts when it is taken, `clock_timestamp()`, not at the
    // transaction's `now()`: a release that committed while this tick ran
    // has a later `now()` than the tick began with, and the tenure it
    // closed must end before the next begins. The expiry still counts from
    // `now()`, which only makes the lease shorter than it could be.
    if take && held.len() < share {
        taken = sqlx::query_scalar(
            "WITH free AS ( \
               SELECT endpoint, run AS old_run, expires_at AS old_expiry FROM cluster_leases \
               WHERE endpoint = ANY($3) AND (holder IS NULL OR expires_at <= now()) \
               ORDER BY endpoint LIMIT $4 FOR UPDATE SKIP LOCKED), \
             closed AS ( \
               UPDATE cluster_tenures t SET until = f.old_expiry, ended = 'expired' \
               FROM free f WHERE t.endpoint = f.endpoint AND t.run = f.old_run \
               AND t.until IS NULL), \
             taken AS ( \
               UPDATE cluster_leases l SET holder = $1, run = $2, since = clock_timestamp(), \
                 expires_at = now() + make_interval(secs => $5) \
               FROM free f WHERE l.endpoint = f.endpoint RETURNING l.endpoint, l.since) \
             INSERT INTO cluster_tenures (endpoint, instance, run, since) \
             SELECT endpoint, $1, $2, since FROM taken RETURNING endpoint",
        )
        .bind(&me.id)
        .bind(&me.run)
        .bind(endpoints)
        .bind((share - held.len()) as i64)
        .bind(ttl)
        .fetch_all(&mut *tx)
        .await?;
        held.extend(taken.iter().cloned());
    }
    let rows: Vec<(Option<String>, i64, Option<f64>)> = sqlx::query_as(
        "SELECT CASE WHEN holder IS NOT NULL AND expires_at > now() THEN holder END AS h, \
           count(*), \
           min(EXTRACT(EPOCH FROM (expires_at - now())))::float8 \
         FROM cluster_leases WHERE endpoint = ANY($1) GROUP BY 1",
    )
    .bind(endpoints)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut t = Tick {
        held,
        taken,
        live,
        share,
        ..Tick::default()
    };
    for (holder, count, expiry) in rows {
        match holder {
            Some(h) => {
                if h != me.id {
                    t.next_expiry = match (t.next_expiry, expiry) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                t.per_holder.push((h, count));
            }
            None => t.unassigned += count,
        }
    }
    Ok(t)
}

/// Gives leases back (their pollers here have stopped): free at once, the
/// tenure closed, the others woken. `leaving`: this instance stops, and
/// says so.
pub(super) async fn release(
    me: &Me,
    pool: &PgPool,
    endpoints: &[String],
    leaving: bool,
) -> Result<u64, ClusterError> {
    let mut tx = me.begin(pool).await?;
    let ended = if leaving { "stopped" } else { "released" };
    let freed: Vec<String> = sqlx::query_scalar(
        "WITH gone AS ( \
           UPDATE cluster_leases SET holder = NULL, run = NULL, since = NULL, \
             expires_at = now() \
           WHERE holder = $1 AND run = $2 AND ($4 OR endpoint = ANY($3)) RETURNING endpoint), \
         closed AS ( \
           UPDATE cluster_tenures t SET until = now(), ended = $5 FROM gone \
           WHERE t.endpoint = gone.endpoint AND t.run = $2 AND t.until IS NULL) \
         SELECT endpoint FROM gone",
    )
    .bind(&me.id)
    .bind(&me.run)
    .bind(endpoints)
    .bind(leaving)
    .bind(ended)
    .fetch_all(&mut *tx)
    .await?;
    if leaving {
        sqlx::query("UPDATE cluster_instances SET stopped_at = now() WHERE id = $1 AND run = $2")
            .bind(&me.id)
            .bind(&me.run)
            .execute(&mut *tx)
            .await?;
    }
    notify(&mut tx, if leaving { "leave" } else { "release" }, me).await?;
    tx.commit().await?;
    Ok(freed.len() as u64)
}

/// This instance's share of `endpoints` endpoints among the `live` ones
/// (sorted ids): an equal part, the remainder one each to the first ids,
/// so the shares add up to every endpoint and each instance can tell its
/// own without asking the others. 0 for an instance not among them.
pub(super) fn share(endpoints: usize, live: &[String], me: &str) -> usize {
    let Some(rank) = live.iter().position(|id| id == me) else {
        return 0;
    };
    let n = live.len();
    endpoints / n + usize::from(rank < endpoints % n)
}

#[cfg(test)]
mod tests {
    use super::share;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("gw-{i}")).collect()
    }

    #[test]
    fn shares_add_up_and_differ_by_at_most_one() {
        for endpoints in 0..40 {
            for n in 1..6 {
                let live = ids(n);
                let shares: Vec<usize> = live.iter().map(|m| share(endpoints, &live, m)).collect();
                assert_eq!(shares.iter().sum::<usize>(), endpoints);
                let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(hi - lo <= 1, "{endpoints} over {n}: {shares:?}");
            }
        }
    }

    #[test]
    fn an_instance_not_live_has_no_share() {
        assert_eq!(share(10, &ids(3), "elsewhere"), 0);
        assert_eq!(share(10, &ids(3), "gw-0"), 4);
        assert_eq!(share(10, &ids(3), "gw-2"), 3);
    }
}
