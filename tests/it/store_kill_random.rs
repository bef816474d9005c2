//! `kill -9` at random moments under load, 20 times, the gateway restarted
//! each time on the same store and spools, with a database outage and a
//! broker outage (and both at once) among the runs; then one more run with
//! everything back replays what the killed ones left. Counted per killed run
//! against what it had reported just before its kill:
//!
//! - samples (`lampgw_device_samples_total`) and transitions
//!   (`lampgw_transitions_total`) against the rows whose time falls in the
//!   run's lifetime (runs do not overlap, so a row's time says which run
//!   polled it);
//! - completed commands (done in the API) against `command_audit`;
//! - events (`lampgw_mqtt_events_raised_total`) against what a subscriber
//!   on the broker received from that run (each run has its own gateway id,
//!   which every event carries, and numbers its events from 1).
//!
//! "Reported before the kill" cannot race the kill: the state counts a
//! sample only after the store's sink appended it to the spool, and the MQTT
//! task counts an event only after the outbox appended it; the scrape's
//! answer is in before the kill is sent. Rows are keyed by (device, time)
//! and written with `ON CONFLICT DO NOTHING`; a duplicate is checked for all
//! the same (it would take a schema without the key). Events are at least
//! once: one in flight at a kill goes again, so their repeats are counted
//! and shown, not refused.

use crate::common::db::{metric, PgTestDb, Proxy, PG_SERVER};
use crate::mqtt::harness::{self, Subscriber, MOSQUITTO};
use crate::store_kill::{start_gateway_logging, Gateway};
use chrono::{DateTime, Utc};
use lamp_sim::{EndpointFault, InventoryOptions, SimConfig, Simulator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::Connection;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const KILLS: usize = 20;
const OPERATOR: &str = "lgw_kill_random_operator";
const ENDPOINTS: usize = 4;
const SLCS: usize = 10;
const POLL_MS: u64 = 50;

/// The database outage of each run begins (or ends) at a random moment in
/// it; the runs after the first stay in it from their start.
fn db_out(run: usize) -> bool {
    matches!(run, 4..=7 | 15..=16)
}

fn broker_out(run: usize) -> bool {
    matches!(run, 8..=11 | 15..=17)
}

/// Runs killed within a few milliseconds of their start: during the
/// migration, the spool's replay, the first polls.
fn early(run: usize) -> bool {
    run % 5 == 3
}

enum Store {
    /// An outage is another connection holding the write lock (a backup, a
    /// stuck admin session): the gateway's writes time out.
    Sqlite {
        path: PathBuf,
        lock: Option<SqliteConnection>,
    },
    /// An outage is the server's port closed (every connection cut, new ones
    /// refused). The test reads the database directly (`read`).
    Postgres {
        pg: PgTestDb,
        proxy: Proxy,
        read: sqlx::PgPool,
    },
}

impl Store {
    fn url(&self) -> String {
        match self {
            Store::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            Store::Postgres { pg, proxy, .. } => pg.url_via(proxy.addr),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Store::Sqlite { .. } => "sqlite",
            Store::Postgres { .. } => "postgres",
        }
    }

    async fn set_out(&mut self, out: bool) {
        match self {
            Store::Sqlite { path, lock } => {
                if out && lock.is_none() {
                    let opts = SqliteConnectOptions::new()
                        .filename(&*path)
                        .busy_timeout(Duration::from_secs(10));
                    let mut conn = SqliteConnection::connect_with(&opts).await.unwrap();
                    sqlx::query("BEGIN IMMEDIATE")
                        .execute(&mut conn)
                        .await
                        .expect("the write lock");
                    *lock = Some(conn);
                } else if !out {
                    if let Some(conn) = lock.take() {
                        conn.close().await.unwrap();
                    }
                }
            }
            Store::Postgres { proxy, .. } => {
                if out {
                    proxy.sever();
                } else {
                    proxy.restore();
                }
            }
        }
    }

    /// Rows of `table` with a time in [from, to].
    async fn rows(&self, table: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE time >= $1 AND time <= $2");
        let n: i64 = match self {
            Store::Sqlite { path, .. } => {
                let mut c = read_sqlite(path).await;
                let n = sqlx::query_scalar(&sql)
                    .bind(from.timestamp_micros())
                    .bind(to.timestamp_micros())
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                c.close().await.unwrap();
                n
            }
            Store::Postgres { read, .. } => sqlx::query_scalar(&sql)
                .bind(from)
                .bind(to)
                .fetch_one(read)
                .await
                .unwrap(),
        };
        n as u64
    }

    /// A scalar query on either backend.
    async fn scalar(&self, sql: &str) -> i64 {
        match self {
            Store::Sqlite { path, .. } => {
                let mut c = read_sqlite(path).await;
                let n = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
                c.close().await.unwrap();
                n
            }
            Store::Postgres { read, .. } => sqlx::query_scalar(sql).fetch_one(read).await.unwrap(),
        }
    }

    /// Rows that share their key with another row, over the keyed tables.
    async fn duplicates(&self) -> i64 {
        let mut n = 0;
        for (table, key) in [
            ("lamp_samples", "lamp_id, time"),
            ("rtu_samples", "rtu_id, time"),
            ("transitions", "device_kind, device_id, time"),
            ("command_audit", "command_id"),
        ] {
            n += self
                .scalar(&format!(
                    "SELECT (SELECT COUNT(*) FROM {table}) \
                     - (SELECT COUNT(*) FROM (SELECT DISTINCT {key} FROM {table}) d)"
                ))
                .await;
        }
        n
    }

    async fn commands(&self) -> Vec<String> {
        let sql = "SELECT command_id FROM command_audit";
        match self {
            Store::Sqlite { path, .. } => {
                let mut c = read_sqlite(path).await;
                let v = sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap();
                c.close().await.unwrap();
                v
            }
            Store::Postgres { read, .. } => sqlx::query_scalar(sql).fetch_all(read).await.unwrap(),
        }
    }
}

async fn read_sqlite(path: &Path) -> SqliteConnection {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10));
    SqliteConnection::connect_with(&opts).await.unwrap()
}

/// What one killed run had reported just before its kill.
#[derive(Debug, Default)]
struct Run {
    gateway: String,
    start: Option<DateTime<Utc>>,
    kill: Option<DateTime<Utc>>,
    samples: u64,
    transitions: u64,
    events: u64,
    commands: Vec<String>,
    db_out: bool,
    broker_out: bool,
}

/// What the store and the subscriber hold of one run.
#[derive(Debug, Default, Clone, Copy)]
struct Found {
    samples: u64,
    transitions: u64,
    commands: usize,
    /// Distinct events of 1..=reported received.
    events: u64,
    /// Deliveries of an event received before.
    repeats: u64,
}

fn config(
    dir: &Path,
    inventory: &Path,
    store_url: &str,
    mqtt: &str,
    root: &str,
    id: &str,
) -> PathBuf {
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"
[gateway]
id = "{id}"
[paths]
inventory = "{inv}"
profiles = "{profiles}"
[api]
listen = "127.0.0.1:0"
[poll]
slc_interval = "{POLL_MS}ms"
rtu_interval = "{POLL_MS}ms"
request_timeout = "300ms"
connect_timeout = "300ms"
reconnect_min = "50ms"
reconnect_max = "200ms"
[store]
url = "{store_url}"
spool_dir = "spool"
flush_interval = "300ms"
write_timeout = "1s"
retry_max = "300ms"
queue_rows = 300
[mqtt]
url = "mqtt://{mqtt}"
topic_root = "{root}"
spill_dir = "mqtt-spool"
event_queue = 5
keep_alive = "2s"
reconnect_min = "100ms"
reconnect_max = "300ms"
[log]
level = "warn"
[[auth.tokens]]
name = "kill-test"
hash = "{viewer}"
role = "viewer"
[[auth.tokens]]
name = "kill-test-operator"
hash = "{operator}"
role = "operator"
"#,
            inv = inventory.display(),
            profiles = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/profiles")
                .display(),
            viewer = lamp_gateway::auth::hash_token(crate::store_kill::TOKEN),
            operator = lamp_gateway::auth::hash_token(OPERATOR),
        ),
    )
    .unwrap();
    path
}

/// Door alarms toggled on random RTUs and endpoints refusing connections
/// for a while, so events and transitions keep coming; endpoint 0, whose
/// lamp takes the commands, is left alone.
fn faults(sim: Arc<Simulator>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut refused: Option<(usize, Instant)> = None;
        let mut doors = [false; ENDPOINTS];
        while !stop.is_cancelled() {
            let e = 1 + fastrand::usize(..ENDPOINTS - 1);
            doors[e] = !doors[e];
            sim.set_rtu_alarms(e, doors[e], false);
            match refused {
                Some((e, until)) if Instant::now() >= until => {
                    sim.set_endpoint_fault(e, None);
                    refused = None;
                }
                None if fastrand::u8(..10) == 0 => {
                    let e = 1 + fastrand::usize(..ENDPOINTS - 1);
                    sim.set_endpoint_fault(e, Some(EndpointFault::Refuse));
                    let ms = fastrand::u64(300..900);
                    refused = Some((e, Instant::now() + Duration::from_millis(ms)));
                }
                _ => {}
            }
            let ms = fastrand::u64(60..160);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if let Some((e, _)) = refused {
            sim.set_endpoint_fault(e, None);
        }
    })
}

/// Switches a lamp of endpoint 0 and waits until the command is done (the
/// API says so); returns its id.
async fn command(gw: &Gateway, on: bool) -> Option<String> {
    let lamp = crate::common::lamp_id(0, fastrand::usize(..SLCS));
    let r = gw
        .http
        .post(format!("{}/api/v1/lamps/{lamp}/commands", gw.base))
        .bearer_auth(OPERATOR)
        .json(&serde_json::json!({"action": if on { "on" } else { "off" }}))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = r.json().await.ok()?;
    let id = body["id"].as_str()?.to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let r = gw
            .http
            .get(format!("{}/api/v1/commands/{id}", gw.base))
            .bearer_auth(OPERATOR)
            .send()
            .await
            .ok()?;
        let c: serde_json::Value = r.json().await.ok()?;
        if c["status"] == "done" {
            return Some(id);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn sleep_ms(range: std::ops::Range<u64>) {
    tokio::time::sleep(Duration::from_millis(fastrand::u64(range))).await;
}

/// What the store and the subscriber hold of each killed run.
async fn found(store: &Store, runs: &[Run], sub: &Subscriber) -> Vec<Found> {
    let seen = sub.seen.lock().events.clone();
    let mut by_gateway: HashMap<String, BTreeMap<u64, u64>> = HashMap::new();
    for e in &seen {
        let g = e["gateway"].as_str().unwrap_or_default().to_string();
        let seq = e["seq"].as_u64().unwrap_or(0);
        *by_gateway.entry(g).or_default().entry(seq).or_default() += 1;
    }
    let audit = store.commands().await;
    let mut out = Vec::new();
    for r in runs {
        let (from, to) = (r.start.unwrap(), r.kill.unwrap());
        let samples =
            store.rows("lamp_samples", from, to).await + store.rows("rtu_samples", from, to).await;
        let seqs = by_gateway.get(&r.gateway).cloned().unwrap_or_default();
        out.push(Found {
            samples,
            transitions: store.rows("transitions", from, to).await,
            commands: r.commands.iter().filter(|c| audit.contains(c)).count(),
            events: (1..=r.events).filter(|s| seqs.contains_key(s)).count() as u64,
            repeats: seqs.values().map(|n| n - 1).sum(),
        });
    }
    out
}

/// The whole scenario on one store backend, asserted; returns the store.
async fn kill_at_random(mut store: Store, dir: &Path) -> Store {
    let began = Instant::now();
    let sim = Arc::new(
        Simulator::start(SimConfig {
            endpoints: ENDPOINTS,
            slcs_per_endpoint: SLCS,
            districts: 2,
            failure_rate_per_hour: 0.0,
            ..SimConfig::default()
        })
        .await
        .unwrap(),
    );
    let inventory = dir.join("inventory");
    std::fs::create_dir_all(&inventory).unwrap();
    sim.write_inventory(&inventory, &InventoryOptions::default())
        .unwrap();
    let root = harness::unique_root(&format!("kill-{}", store.name()));
    let broker = Proxy::start(MOSQUITTO).await.expect("proxy binds");
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/+/events")).await;
    let stop_faults = CancellationToken::new();
    let fault_task = faults(sim.clone(), stop_faults.clone());
    let url = store.url();
    let mut runs: Vec<Run> = Vec::new();

    for k in 0..KILLS {
        let id = format!("kill-{k:02}");
        let cfg = config(dir, &inventory, &url, &broker.addr.to_string(), &root, &id);
        let mut run = Run {
            gateway: id.clone(),
            start: Some(Utc::now()),
            ..Run::default()
        };
        let mut gw = start_gateway_logging(&cfg, &dir.join(format!("{id}.log"))).await;
        if early(k) {
            sleep_ms(0..60).await;
        } else {
            if let Some(c) = command(&gw, k % 2 == 0).await {
                run.commands.push(c);
            }
            sleep_ms(100..700).await;
        }
        // The outages begin and end at a random moment of a run.
        store.set_out(db_out(k)).await;
        if broker_out(k) {
            broker.sever();
        } else {
            broker.restore();
        }
        run.db_out = db_out(k);
        run.broker_out = broker_out(k);
        if !early(k) {
            sleep_ms(100..900).await;
        }
        let m = gw.text("/metrics").await;
        gw.child.kill().await.unwrap();
        run.kill = Some(Utc::now());
        run.samples = metric(&m, "lampgw_device_samples_total") as u64;
        run.transitions = metric(&m, "lampgw_transitions_total") as u64;
        run.events = metric(&m, "lampgw_mqtt_events_raised_total") as u64;
        runs.push(run);
    }
    let killed_in = began.elapsed();

    // Everything back; one more run replays what the killed ones left.
    store.set_out(false).await;
    broker.restore();
    let cfg = config(
        dir,
        &inventory,
        &url,
        &broker.addr.to_string(),
        &root,
        "kill-final",
    );
    let mut last = start_gateway_logging(&cfg, &dir.join("kill-final.log")).await;
    let complete = |f: &[Found]| {
        runs.iter().zip(f).all(|(r, f)| {
            f.samples >= r.samples
                && f.transitions >= r.transitions
                && f.commands == r.commands.len()
                && f.events == r.events
        })
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut f = found(&store, &runs, &sub).await;
    while !complete(&f) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        f = found(&store, &runs, &sub).await;
    }
    let replayed_in = began.elapsed() - killed_in;
    let duplicates = store.duplicates().await;

    println!(
        "{} kill -9 × {KILLS}: {ENDPOINTS} RTUs + {} SLCs every {POLL_MS} ms; killed in {:.1} s, replayed in {:.1} s",
        store.name(),
        ENDPOINTS * SLCS,
        killed_in.as_secs_f64(),
        replayed_in.as_secs_f64()
    );
    println!("run  db  mqtt  samples: served stored lost  transitions: served stored lost  commands: done stored  events: raised received lost repeats");
    let mut totals = [0u64; 10];
    for (k, (r, f)) in runs.iter().zip(&f).enumerate() {
        let lost_s = r.samples.saturating_sub(f.samples);
        let lost_t = r.transitions.saturating_sub(f.transitions);
        let lost_e = r.events - f.events;
        println!(
            "{k:>3}  {:>3} {:>4}  {:>15} {:>6} {:>4}  {:>19} {:>6} {:>4}  {:>14} {:>6}  {:>14} {:>8} {:>4} {:>7}{}",
            if r.db_out { "out" } else { "" },
            if r.broker_out { "out" } else { "" },
            r.samples,
            f.samples,
            lost_s,
            r.transitions,
            f.transitions,
            lost_t,
            r.commands.len(),
            f.commands,
            r.events,
            f.events,
            lost_e,
            f.repeats,
            if early(k) { "  (killed at start)" } else { "" },
        );
        for (t, v) in totals.iter_mut().zip([
            r.samples,
            f.samples,
            lost_s,
            r.transitions,
            f.transitions,
            lost_t,
            r.events,
            f.events,
            lost_e,
            f.repeats,
        ]) {
            *t += v;
        }
    }
    println!(
        "all  samples served {} stored {} lost {}; transitions served {} stored {} lost {}; \
         events raised {} received {} lost {} repeated {}; rows sharing a key: {duplicates}",
        totals[0],
        totals[1],
        totals[2],
        totals[3],
        totals[4],
        totals[5],
        totals[6],
        totals[7],
        totals[8],
        totals[9]
    );
    stop_faults.cancel();
    last.child.kill().await.unwrap();
    sub.stop();
    fault_task.await.unwrap();
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
    assert!(
        complete(&f),
        "something reported before a kill is missing (see the table; logs in {})",
        dir.display()
    );
    assert_eq!(duplicates, 0, "rows stored twice");
    assert!(
        totals[0] > 0 && totals[6] > 0,
        "the runs produced samples and events"
    );
    let mut ids: Vec<String> = runs.iter().map(|r| r.gateway.clone()).collect();
    ids.push("kill-final".into());
    harness::clear_retained_under("127.0.0.1", 1883, &root, &ids).await;
    store
}

#[tokio::test]
async fn sqlite_kill_9_at_random_moments_loses_nothing_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::Sqlite {
        path: dir.path().join("store.db"),
        lock: None,
    };
    kill_at_random(store, dir.path()).await;
}

#[tokio::test]
async fn postgres_kill_9_at_random_moments_loses_nothing_reported() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgTestDb::new().await;
    let read = pg.pool().await;
    let store = Store::Postgres {
        pg,
        proxy: Proxy::start(PG_SERVER).await.expect("proxy binds"),
        read,
    };
    // Dropped only on success: a failure leaves the database to look at.
    if let Store::Postgres { pg, read, .. } = kill_at_random(store, dir.path()).await {
        read.close().await;
        pg.drop_db().await;
    }
}
