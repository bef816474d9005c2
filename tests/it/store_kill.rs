//! Kill the gateway (SIGKILL, a child process) while the database is away
//! and its rows wait for it (in the spool, some with a copy in memory);
//! restart it: the spool is replayed and every row of the first run is in
//! the database once.

use crate::common::db::{metric, PgTestDb, Proxy, PG_SERVER};
use crate::common::{eventually, sim_city, SimCity};
use chrono::Utc;
use lamp_sim::{EndpointFault, SimConfig};
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The viewer token of the gateways these tests start.
pub(crate) const TOKEN: &str = "lgw_kill_test_viewer";

/// The `lamp-gateway` binary as a child process.
pub(crate) struct Gateway {
    pub(crate) child: Child,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

async fn start_gateway(config: &Path) -> Gateway {
    start(config, Stdio::inherit()).await
}

/// Starts the binary on `config`, its log (stderr) in `log`.
pub(crate) async fn start_gateway_logging(config: &Path, log: &Path) -> Gateway {
    let log = std::fs::File::create(log).expect("log file");
    start(config, Stdio::from(log)).await
}

async fn start(config: &Path, stderr: Stdio) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lamp-gateway"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("gateway starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("gateway prints its address")
        .unwrap()
        .expect("a line");
    let base = line
        .rsplit(' ')
        .next()
        .expect("address on the line")
        .to_string();
    // Keep reading so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Gateway {
        child,
        base,
        http: reqwest::Client::new(),
    }
}

impl Gateway {
    pub(crate) async fn text(&self, path: &str) -> String {
        let req = self.http.get(format!("{}{path}", self.base));
        match req.bearer_auth(TOKEN).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn total(&self, path: &str) -> Option<u64> {
        let v: serde_json::Value = serde_json::from_str(&self.text(path).await).ok()?;
        v["total"].as_u64()
    }
}

#[tokio::test]
async fn kill_with_a_spool_on_disk_then_restart_loses_nothing() {
    let SimCity {
        sim,
        dir,
        inventory,
    } = sim_city(SimConfig {
        endpoints: 2,
        slcs_per_endpoint: 4,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    })
    .await;
    let pg = PgTestDb::new().await;
    let proxy = Proxy::start(PG_SERVER).await.expect("proxy binds");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[gateway]
id = "kill-test"
[paths]
inventory = "{inv}"
profiles = "{profiles}"
[api]
listen = "127.0.0.1:0"
# Port 0: tests run side by side (the default is 1884).
[mqtt]
embedded_listen = "127.0.0.1:0"
[poll]
slc_interval = "100ms"
rtu_interval = "100ms"
request_timeout = "300ms"
connect_timeout = "500ms"
reconnect_min = "50ms"
reconnect_max = "200ms"
[store]
url = "{url}"
spool_dir = "spool"
flush_interval = "50ms"
write_timeout = "2s"
retry_max = "300ms"
queue_rows = 20
[log]
level = "warn"
[[auth.tokens]]
name = "kill-test"
hash = "{hash}"
role = "viewer"
"#,
            inv = inventory.display(),
            profiles = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/profiles")
                .display(),
            url = pg.url_via(proxy.addr),
            hash = lamp_gateway::auth::hash_token(TOKEN),
        ),
    )
    .unwrap();

    let mut gw = start_gateway(&config).await;
    eventually("first rows written", || async {
        metric(
            &gw.text("/metrics").await,
            "lampgw_store_rows_written_total",
        ) > 0.0
    })
    .await;
    proxy.sever();
    // Stop production so that what the first run polled is a fixed number:
    // every device goes offline (those transitions are rows too).
    for e in 0..2 {
        sim.set_endpoint_fault(e, Some(EndpointFault::Silent));
    }
    eventually("every device offline", || async {
        gw.total("/api/v1/rtus?online=true").await == Some(0)
            && gw.total("/api/v1/lamps?online=true").await == Some(0)
    })
    .await;
    let produced = std::cell::Cell::new((0.0, 0.0));
    eventually("everything polled is written or spooled", || async {
        let m = gw.text("/metrics").await;
        let samples = metric(&m, "lampgw_device_samples_total");
        let transitions = metric(&m, "lampgw_transitions_total");
        // Alarm changes (the endpoints going down) are rows of the store too.
        let alarms = metric(&m, "lampgw_alarm_changes_total");
        produced.set((samples, transitions));
        // Every row is in the spool from the start; those past
        // `queue_rows` are on disk only (spooled), the rest have a copy in
        // memory (queued). Some wait, and none is anywhere else.
        let waiting =
            metric(&m, "lampgw_store_queued_rows") + metric(&m, "lampgw_store_spooled_rows");
        waiting > 0.0
            && metric(&m, "lampgw_store_queued_rows")
                + metric(&m, "lampgw_store_spooled_rows")
                + metric(&m, "lampgw_store_rows_written_total")
                == samples + transitions + alarms
    })
    .await;
    gw.child.kill().await.unwrap();
    assert!(
        std::fs::metadata(dir.path().join("spool/spool.jsonl"))
            .unwrap()
            .len()
            > 0
    );
    let restart = Utc::now();
    let produced = produced.get();

    proxy.restore();
    for e in 0..2 {
        sim.set_endpoint_fault(e, None);
    }
    let mut gw = start_gateway(&config).await;
    let pool = pg.pool().await;
    let count = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(restart)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    eventually("the first run's rows replayed", || async {
        let samples = count("SELECT COUNT(*) FROM lamp_samples WHERE time < $1").await
            + count("SELECT COUNT(*) FROM rtu_samples WHERE time < $1").await;
        let transitions = count("SELECT COUNT(*) FROM transitions WHERE time < $1").await;
        (samples as f64, transitions as f64) == produced
    })
    .await;
    eventually("spool drained", || async {
        metric(&gw.text("/metrics").await, "lampgw_store_spooled_rows") == 0.0
            && metric(
                &gw.text("/metrics").await,
                "lampgw_store_rows_written_total",
            ) > 0.0
    })
    .await;
    // Still exactly once after the whole spool went in.
    let samples = count("SELECT COUNT(*) FROM lamp_samples WHERE time < $1").await
        + count("SELECT COUNT(*) FROM rtu_samples WHERE time < $1").await;
    assert_eq!(samples as f64, produced.0);
    // Two runs recorded; the killed one has no stop.
    let runs: Vec<Option<chrono::DateTime<Utc>>> =
        sqlx::query_scalar("SELECT stopped_at FROM gateway_runs ORDER BY started_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].is_none());
    gw.child.kill().await.unwrap();
    drop(pool);
    sim.shutdown().await;
    pg.drop_db().await;
}
