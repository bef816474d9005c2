//! Three gateway instances (child processes of the `lamp-gateway` binary)
//! sharing one fresh PostgreSQL database, each through a proxy of its own
//! that the test can sever, and one simulator: the leases share the
//! endpoints out; a kill -9 is taken over within `lease_ttl` + one poll
//! interval; a clean stop hands back at once; a rejoining instance takes
//! its share and only the surplus moves; an instance cut from the database
//! stops polling before its leases expire, and rejoins; no endpoint is
//! ever held by two instances at once (the tenure history).

use crate::common::db::{metric, PgTestDb, Proxy, PG_SERVER};
use crate::common::eventually;
use crate::store_kill::{start_gateway_logging, Gateway, TOKEN};
use chrono::{DateTime, Utc};
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ENDPOINTS: usize = 9;
const SLCS: usize = 2;
const LEASE_TTL: Duration = Duration::from_secs(2);
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const IDS: [&str; 3] = ["gw-a", "gw-b", "gw-c"];

/// A row of `cluster_tenures`: endpoint, instance, since, until.
type Tenure = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);

struct Instance {
    id: &'static str,
    config: PathBuf,
    log: PathBuf,
    proxy: Proxy,
    gw: Option<Gateway>,
}

impl Instance {
    async fn start(&mut self) {
        self.gw = Some(start_gateway_logging(&self.config, &self.log).await);
    }

    fn gw(&self) -> &Gateway {
        self.gw.as_ref().expect("running")
    }

    async fn metric(&self, name: &str) -> f64 {
        metric(&self.gw().text("/metrics").await, name)
    }

    fn pid(&self) -> String {
        self.gw().child.id().expect("running").to_string()
    }

    /// SIGTERM, and wait for a clean exit.
    async fn stop(&mut self) {
        let pid = self.pid();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let mut gw = self.gw.take().unwrap();
        let status = tokio::time::timeout(Duration::from_secs(20), gw.child.wait())
            .await
            .expect("stops within 20 s")
            .unwrap();
        assert!(status.success(), "{}: {status}", self.id);
    }

    async fn kill(&mut self) {
        let mut gw = self.gw.take().unwrap();
        gw.child.kill().await.unwrap();
    }
}

fn config(dir: &Path, id: &str, inventory: &Path, url: &str) -> PathBuf {
    config_with(dir, id, id, inventory, url, "url = \"none\"")
}

/// An instance's settings file: `gateway` its `gateway.id`, `mqtt` the body
/// of its `[mqtt]` section.
pub(crate) fn config_with(
    dir: &Path,
    id: &str,
    gateway: &str,
    inventory: &Path,
    url: &str,
    mqtt: &str,
) -> PathBuf {
    let home = dir.join(id);
    std::fs::create_dir_all(&home).unwrap();
    // The same night plan on each: every lamp on, all day.
    std::fs::write(
        home.join("schedule.json"),
        serde_json::json!({
            "programs": [{"id": "on", "points": [{"at": "00:00", "level": "on"}]}],
            "calendars": [{"id": "city", "rules": [], "default_program": "on"}],
            "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
        })
        .to_string(),
    )
    .unwrap();
    let file = home.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[gateway]
id = "{gateway}"
[paths]
inventory = "{inv}"
profiles = "{profiles}"
[api]
listen = "127.0.0.1:0"
[poll]
slc_interval = "{interval}ms"
rtu_interval = "{interval}ms"
request_timeout = "300ms"
connect_timeout = "500ms"
reconnect_min = "50ms"
reconnect_max = "200ms"
[store]
url = "{url}"
spool_dir = "spool"
flush_interval = "50ms"
write_timeout = "1s"
retry_max = "300ms"
[mqtt]
{mqtt}
[schedule]
tick = "200ms"
retry_after = "500ms"
[cluster]
enabled = true
instance_id = "{id}"
lease_ttl = "{ttl}ms"
[log]
level = "info"
[[auth.tokens]]
name = "cluster-test"
hash = "{hash}"
role = "viewer"
"#,
            inv = inventory.display(),
            profiles = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/profiles")
                .display(),
            interval = POLL_INTERVAL.as_millis(),
            ttl = LEASE_TTL.as_millis(),
            hash = lamp_gateway::auth::hash_token(TOKEN),
        ),
    )
    .unwrap();
    file
}

/// Unexpired leases per holder, by the database's clock.
async fn holders(pool: &PgPool) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT holder, count(*) FROM cluster_leases \
         WHERE holder IS NOT NULL AND expires_at > now() GROUP BY holder",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default()
    .into_iter()
    .collect()
}

async fn held_by(pool: &PgPool, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT endpoint FROM cluster_leases WHERE holder = $1 AND expires_at > now() \
         ORDER BY endpoint",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Every endpoint held, by exactly the instances `ids`, each within one of
/// an equal share.
fn balanced(h: &BTreeMap<String, i64>, ids: &[&str]) -> bool {
    let total: i64 = h.values().sum();
    let fair = ENDPOINTS as f64 / ids.len() as f64;
    total == ENDPOINTS as i64
        && h.len() == ids.len()
        && ids
            .iter()
            .all(|id| h.get(*id).is_some_and(|n| (*n as f64 - fair).abs() <= 1.0))
}

/// Per lamp, the schedule's targets confirmed (every instance's audit), and
/// the schedule's targets that failed.
async fn schedule_audit(pool: &PgPool) -> (BTreeMap<String, i64>, i64) {
    let confirmed = sqlx::query_as::<_, (String, i64)>(
        "SELECT t->>'id', count(*) FROM command_audit, jsonb_array_elements(outcome) t \
         WHERE source = 'schedule' AND t->>'state' = 'confirmed' GROUP BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap_or_default()
    .into_iter()
    .collect();
    let failed: Option<i64> =
        sqlx::query_scalar("SELECT sum(failed)::int8 FROM command_audit WHERE source = 'schedule'")
            .fetch_one(pool)
            .await
            .unwrap_or_default();
    (confirmed, failed.unwrap_or(0))
}

/// The first sample of any lamp behind `endpoint` after `after`.
async fn first_sample_after(
    pool: &PgPool,
    lamps: &[String],
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    sqlx::query_scalar("SELECT min(time) FROM lamp_samples WHERE lamp_id = ANY($1) AND time > $2")
        .bind(lamps)
        .bind(after)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// For each endpoint in `endpoints`, how long after `from` a lamp behind
/// it was first polled again; the longest. Waits until every one has been.
async fn slowest_takeover(
    pool: &PgPool,
    lamps: &BTreeMap<String, Vec<String>>,
    endpoints: &[String],
    from: DateTime<Utc>,
) -> Duration {
    let firsts = std::cell::RefCell::new(Vec::new());
    eventually("every endpoint taken over polled again", || async {
        let mut got = Vec::new();
        for e in endpoints {
            match first_sample_after(pool, &lamps[e], from).await {
                Some(t) => got.push(t),
                None => return false,
            }
        }
        *firsts.borrow_mut() = got;
        true
    })
    .await;
    let last = firsts.into_inner().into_iter().max().unwrap();
    (last - from).to_std().unwrap()
}

/// The instances' logs stay for a look when the test fails.
struct KeepOnPanic(Option<tempfile::TempDir>, PathBuf);

impl KeepOnPanic {
    fn path(&self) -> &Path {
        &self.1
    }
}

impl Drop for KeepOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(d) = self.0.take() {
                eprintln!("the instances' logs: {}", d.keep().display());
            }
        }
    }
}

#[tokio::test]
async fn instances_share_the_endpoints_fail_over_and_hand_back() {
    let sim = Simulator::start(SimConfig {
        endpoints: ENDPOINTS,
        slcs_per_endpoint: SLCS,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().to_path_buf();
    let dir = KeepOnPanic(Some(dir), kept);
    let inventory = dir.path().join("inventory");
    std::fs::create_dir_all(&inventory).unwrap();
    sim.write_inventory(&inventory, &InventoryOptions::default())
        .unwrap();
    // Endpoint address → the lamps behind it.
    let lamps: BTreeMap<String, Vec<String>> = (0..ENDPOINTS)
        .map(|e| {
            (
                sim.inventory_endpoint(e),
                (0..SLCS).map(|s| crate::common::lamp_id(e, s)).collect(),
            )
        })
        .collect();
    let cabinets: BTreeMap<String, String> = (0..ENDPOINTS)
        .map(|e| (sim.inventory_endpoint(e), sim.cabinet_id(e)))
        .collect();
    let pg = PgTestDb::new().await;
    let mut fleet = Vec::new();
    for id in IDS {
        let proxy = Proxy::start(PG_SERVER).await.expect("proxy binds");
        let config = config(dir.path(), id, &inventory, &pg.url_via(proxy.addr));
        fleet.push(Instance {
            id,
            log: dir.path().join(id).join("gateway.log"),
            config,
            proxy,
            gw: None,
        });
    }
    for i in &mut fleet {
        i.start().await;
    }
    let pool = pg.pool().await;

    // 1. Shares balance: 3 each, every endpoint polled by its holder only.
    eventually("three instances hold three endpoints each", || async {
        balanced(&holders(&pool).await, &IDS)
    })
    .await;
    for i in &fleet {
        let polled = i.metric("lampgw_cluster_endpoints_polled").await;
        assert_eq!(polled, 3.0, "{} polls its share", i.id);
    }
    // Ready: each has polled what it holds (the rest is the others').
    for i in &fleet {
        eventually("ready with its share polled", || async {
            i.gw()
                .text("/readyz")
                .await
                .contains("\"status\":\"ready\"")
        })
        .await;
    }
    let all: Vec<String> = lamps.keys().cloned().collect();
    let start = Utc::now();
    slowest_takeover(&pool, &lamps, &all, start).await;
    let (s, view) = {
        let r = fleet[0]
            .gw()
            .http
            .get(format!("{}/api/v1/cluster", fleet[0].gw().base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json::<serde_json::Value>().await.unwrap())
    };
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["enabled"], true);
    assert_eq!(view["instance"], "gw-a");
    assert_eq!(view["unassigned"].as_array().unwrap().len(), 0, "{view}");
    let instances = view["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 3);
    for i in instances {
        assert_eq!(i["live"], true, "{i}");
        assert_eq!(i["endpoints"], 3, "{i}");
        assert!(i["version"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(i["started_at"].is_string() && i["heartbeat_at"].is_string());
    }
    // Each instance's tick sees them all (per-instance gauges).
    eventually("the per-instance gauges", || async {
        let m = fleet[0].gw().text("/metrics").await;
        IDS.iter().all(|id| {
            m.contains(&format!(
                "lampgw_cluster_endpoints_held{{instance=\"{id}\"}} 3"
            ))
        }) && metric(&m, "lampgw_cluster_instances_live") == 3.0
            && metric(&m, "lampgw_cluster_endpoints_unassigned") == 0.0
    })
    .await;

    // A reload (SIGHUP) keeps what it holds and parks the rest again.
    let reloaded_before = fleet[0].metric("lampgw_cluster_ticks_total").await;
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &fleet[0].pid()])
        .status()
        .unwrap();
    assert!(sent.success());
    eventually("polling on after the reload, shares unchanged", || async {
        fleet[0].metric("lampgw_cluster_ticks_total").await > reloaded_before + 1.0
            && fleet[0].metric("lampgw_cluster_endpoints_polled").await == 3.0
            && balanced(&holders(&pool).await, &IDS)
            && fleet[0]
                .gw()
                .text("/readyz")
                .await
                .contains("\"status\":\"ready\"")
    })
    .await;

    // The schedule ran once city-wide: each lamp switched on by the
    // instance that polls it, once, and by no other.
    let every_lamp: Vec<String> = lamps.values().flatten().cloned().collect();
    eventually("every lamp switched on by the schedule", || async {
        let (confirmed, _) = schedule_audit(&pool).await;
        every_lamp.iter().all(|l| confirmed.contains_key(l))
    })
    .await;
    let (confirmed, failed) = schedule_audit(&pool).await;
    // Once per tenure: an endpoint that changed hands while the instances
    // were starting (one started late and took its share from another) is
    // given its level again by its new holder, once; one held throughout,
    // once in all.
    let tenures: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT endpoint, count(*) FROM cluster_tenures GROUP BY endpoint",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    for (endpoint, held) in &tenures {
        let devices = lamps[endpoint]
            .iter()
            .cloned()
            .chain((1..=sim.circuits()).map(|n| format!("{}#{n}", cabinets[endpoint])));
        for d in devices {
            let n = confirmed.get(&d).copied().unwrap_or(0);
            assert!(
                (1..=*held).contains(&n),
                "{d}: {n} schedule commands over {held} tenures of {endpoint}: {confirmed:?}"
            );
        }
    }
    assert_eq!(tenures.len(), ENDPOINTS, "every endpoint held");
    assert_eq!(failed, 0, "no instance commanded a lamp it does not poll");

    // 2. kill -9 one: the others poll its endpoints within lease_ttl + one
    // poll interval (kill → first sample by the new owner).
    let orphans = held_by(&pool, "gw-c").await;
    assert_eq!(orphans.len(), 3);
    // What each target had before the kill (a target whose endpoint
    // changed hands at the start had two then).
    let (before, _) = schedule_audit(&pool).await;
    let killed_at = Utc::now();
    fleet[2].kill().await;
    let failover = slowest_takeover(&pool, &lamps, &orphans, killed_at).await;
    println!(
        "failover: kill -9 → first poll by the new owner {:.3} s (lease_ttl {} s, poll interval {} ms)",
        failover.as_secs_f64(),
        LEASE_TTL.as_secs_f64(),
        POLL_INTERVAL.as_millis()
    );
    assert!(
        failover <= LEASE_TTL + POLL_INTERVAL,
        "failover took {failover:?}"
    );
    eventually("two instances hold everything, balanced", || async {
        balanced(&holders(&pool).await, &IDS[..2])
    })
    .await;
    // Never not at all across the failover: the new holder, which had not
    // commanded the dead one's lamps, re-asserts what should be now, once.
    // Its lamps, and its cabinet's circuits (`CAB-0001#1`).
    let circuits = sim.circuits();
    let orphan_targets: Vec<String> = orphans
        .iter()
        .flat_map(|e| {
            let cabinet = &cabinets[e];
            lamps[e]
                .iter()
                .cloned()
                .chain((1..=circuits).map(move |n| format!("{cabinet}#{n}")))
        })
        .collect();
    let had = |t: &String| before.get(t).copied().unwrap_or(0);
    eventually("the new holders re-assert the schedule", || async {
        let (confirmed, _) = schedule_audit(&pool).await;
        orphan_targets
            .iter()
            .all(|t| confirmed.get(t).copied() == Some(had(t) + 1))
    })
    .await;
    let (confirmed, failed) = schedule_audit(&pool).await;
    for (target, n) in &confirmed {
        let expect = had(target) + i64::from(orphan_targets.contains(target));
        assert_eq!(
            *n, expect,
            "{target}: {confirmed:?} (before the kill: {before:?})"
        );
    }
    assert_eq!(failed, 0);

    // 3. A clean stop hands back at once: the other polls them well before
    // the leases would have expired.
    let handed = held_by(&pool, "gw-b").await;
    let stopped_at = Utc::now();
    fleet[1].stop().await;
    let handback = slowest_takeover(&pool, &lamps, &handed, stopped_at).await;
    println!(
        "clean stop: SIGTERM → first poll by the new owner {:.3} s",
        handback.as_secs_f64()
    );
    assert!(handback < LEASE_TTL, "hand-back took {handback:?}");
    let ended: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT ended FROM cluster_tenures WHERE instance = 'gw-b' AND until IS NOT NULL",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(ended.contains(&"stopped".to_string()), "{ended:?}");
    eventually("one instance holds everything", || async {
        balanced(&holders(&pool).await, &IDS[..1])
    })
    .await;

    // 4. It comes back: it takes its share, and only the surplus moves.
    let released_before = fleet[0]
        .metric("lampgw_cluster_leases_released_total")
        .await;
    fleet[1].start().await;
    eventually("a rejoined instance takes its share", || async {
        balanced(&holders(&pool).await, &IDS[..2])
    })
    .await;
    // What it handed over it no longer shows as its own (online, polled):
    // its lamps online are those behind the endpoints it holds.
    eventually("the instance shows only what it polls", || async {
        let held = held_by(&pool, "gw-a").await.len() * SLCS;
        let v: serde_json::Value =
            serde_json::from_str(&fleet[0].gw().text("/api/v1/lamps?online=true").await)
                .unwrap_or_default();
        v["total"].as_u64() == Some(held as u64)
    })
    .await;
    let moved = fleet[0]
        .metric("lampgw_cluster_leases_released_total")
        .await
        - released_before;
    let b_share = held_by(&pool, "gw-b").await.len() as f64;
    assert_eq!(moved, b_share, "only the surplus was handed over");

    // 5. Cut one from the database: it stops polling before its leases
    // expire (nothing polled by two), the other takes over after the
    // expiry, and once the database is back it rejoins.
    let cut = held_by(&pool, "gw-a").await;
    let cut_at = Utc::now();
    fleet[0].proxy.sever();
    eventually("the cut instance stops polling", || async {
        fleet[0].metric("lampgw_cluster_endpoints_polled").await == 0.0
    })
    .await;
    let stop_seen = Utc::now();
    assert!(fleet[0].metric("lampgw_cluster_leases_lost_total").await >= 1.0);
    let takeover = slowest_takeover(&pool, &lamps, &cut, cut_at).await;
    for e in &cut {
        let first = first_sample_after(&pool, &lamps[e], cut_at).await.unwrap();
        // Samples after the cut from the cut instance wait in its spool;
        // what is in the database now came from the new owner, which
        // polled only after the cut one had stopped.
        assert!(
            stop_seen <= first,
            "{e}: polled by the other at {first}, the cut one stopped by {stop_seen}"
        );
    }
    println!(
        "database cut: cut → first poll by the other instance {:.3} s",
        takeover.as_secs_f64()
    );
    assert!(
        takeover <= LEASE_TTL + POLL_INTERVAL,
        "takeover took {takeover:?}"
    );
    eventually("the other instance holds everything", || async {
        balanced(&holders(&pool).await, &IDS[1..2])
    })
    .await;
    fleet[0].proxy.restore();
    eventually("the cut instance rejoins with its share", || async {
        balanced(&holders(&pool).await, &IDS[..2])
            && fleet[0].metric("lampgw_cluster_endpoints_polled").await > 0.0
    })
    .await;

    // 6. No endpoint was ever held by two at once: per endpoint, each
    // tenure ends at or before the next one starts.
    let tenures: Vec<Tenure> = sqlx::query_as(
        "SELECT endpoint, instance, since, until FROM cluster_tenures ORDER BY endpoint, since",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tenures.len() > ENDPOINTS, "{tenures:?}");
    for pair in tenures.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.0 != b.0 {
            continue;
        }
        let until =
            a.3.unwrap_or_else(|| panic!("an open tenure before another: {pair:?}"));
        assert!(until <= b.2, "overlapping tenures: {pair:?}");
    }

    for i in &mut fleet {
        if i.gw.is_some() {
            i.stop().await;
        }
    }
    drop(pool);
    sim.shutdown().await;
    pg.drop_db().await;
}

/// `check-config` on the shipped configuration with cluster settings from
/// the environment.
fn check_config(env: &[(&str, &str)]) -> (i32, String) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .arg("check-config")
        .arg("--config")
        .arg(config)
        .envs(env.iter().copied())
        .output()
        .expect("binary runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_config_refuses_cluster_mode_without_postgresql() {
    let (code, text) = check_config(&[("LAMPGW__CLUSTER__ENABLED", "true")]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("cluster.enabled") && text.contains("PostgreSQL"),
        "{text}"
    );
    let (code, text) = check_config(&[
        ("LAMPGW__CLUSTER__ENABLED", "true"),
        ("LAMPGW__STORE__URL", "postgres://postgres@127.0.0.1/lampgw"),
    ]);
    assert_eq!(code, 0, "{text}");
    let (code, text) = check_config(&[
        ("LAMPGW__CLUSTER__ENABLED", "true"),
        ("LAMPGW__STORE__URL", "postgres://postgres@127.0.0.1/lampgw"),
        ("LAMPGW__CLUSTER__LEASE_TTL", "100ms"),
        ("LAMPGW__CLUSTER__INSTANCE_ID", "a b"),
    ]);
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("cluster.lease_ttl") && text.contains("cluster.instance_id"),
        "{text}"
    );
}
