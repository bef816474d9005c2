//! The time-series store against real databases: every sample and transition
//! the poller produced lands once, with the same values, through a database
//! outage and a kill; retention drops old raw data and keeps rollups.

use crate::common::db::{metric, PgTestDb, Proxy};
use crate::common::{eventually, lamp_id, rtu_id, spawn_app_with, TestApp};
use chrono::{DateTime, Duration as Span, Utc};
use lamp_gateway::settings::Settings;
use lamp_gateway::store::{self, Db};
use lamp_sim::{EndpointFault, InventoryOptions, SimConfig};
use sqlx::{PgPool, SqlitePool};
use std::sync::atomic::Ordering;
use std::time::Duration;

enum Check {
    Sqlite(SqlitePool),
    Pg(PgPool),
}

impl Check {
    async fn count(&self, sql: &str) -> i64 {
        match self {
            Check::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
            Check::Pg(p) => sqlx::query_scalar(sql).fetch_one(p).await.unwrap(),
        }
    }

    /// Transitions in time order as (kind, id, online).
    async fn transitions(&self) -> Vec<(String, String, bool)> {
        let sql = "SELECT device_kind, device_id, online FROM transitions \
                   ORDER BY time, device_kind, device_id";
        match self {
            Check::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
            Check::Pg(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        }
    }
}

fn sim(endpoints: usize, slcs: usize) -> SimConfig {
    SimConfig {
        endpoints,
        slcs_per_endpoint: slcs,
        districts: 2,
        failure_rate_per_hour: 0.0,
        ..SimConfig::default()
    }
}

fn fast_store(s: &mut Settings) {
    s.store.flush_interval = Duration::from_millis(50);
    s.store.write_timeout = Duration::from_secs(2);
    s.store.retry_max = Duration::from_millis(300);
}

/// After a clean shutdown the store holds exactly the samples and transitions
/// the state applied, each once, and every lamp's and RTU's latest row equals
/// the live state's latest reading.
async fn check_exact(t: &TestApp, db: &Db, check: &Check) {
    let (samples_total, transitions_total, lamps, rtus) = {
        let live = t.live.read();
        (
            live.samples_total,
            live.transitions_total,
            live.lamps.clone(),
            live.rtus.clone(),
        )
    };
    let inv = &t.live.inventory;
    let samples = check.count("SELECT COUNT(*) FROM lamp_samples").await
        + check.count("SELECT COUNT(*) FROM rtu_samples").await;
    assert_eq!(
        samples as u64, samples_total,
        "samples in the store vs polled"
    );
    assert_eq!(
        check.count("SELECT COUNT(*) FROM transitions").await as u64,
        transitions_total
    );
    let from = Utc::now() - Span::hours(1);
    let to = Utc::now() + Span::hours(1);
    for (i, lamp) in inv.lamps.iter().enumerate() {
        let Some(want) = &lamps[i].reading else {
            continue;
        };
        let rows = db.lamp_raw(&lamp.id, from, to, 100_000).await.unwrap();
        let last = rows.last().expect("lamp has rows");
        assert_eq!(Some(last.time), lamps[i].last_seen.map(trunc_us));
        assert_eq!(last.on, want.on);
        assert_eq!(last.dim_level, want.dim_level);
        assert_eq!(last.voltage_v, want.voltage);
        assert_eq!(last.current_a, want.current);
        assert_eq!(last.power_w, want.power);
        assert_eq!(last.power_factor, want.power_factor);
        assert_eq!(last.energy_kwh, want.energy_kwh);
        assert_eq!(last.burning_hours, want.burning_hours);
        assert_eq!(last.fault_flags, i32::from(want.fault_flags));
        assert!(rows.windows(2).all(|w| w[0].time < w[1].time));
    }
    for (i, cab) in inv.cabinets.iter().enumerate() {
        let (Some(rtu), Some(want)) = (&cab.rtu, &rtus[i].reading) else {
            continue;
        };
        let rows = db.rtu_raw(&rtu.id, from, to, 100_000).await.unwrap();
        let last = rows.last().expect("rtu has rows");
        assert_eq!(last.contactors, want.contactors);
        assert_eq!(last.voltage_v, want.voltage);
        assert_eq!(last.current_a, want.current);
        assert_eq!(last.active_power_w, want.active_power);
        assert_eq!(last.energy_kwh, want.energy_kwh);
    }
}

fn trunc_us(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

async fn run_exact(url: Option<String>) -> (TestApp, Settings) {
    let mut seen = None;
    let t = spawn_app_with(sim(3, 5), InventoryOptions::default(), |s| {
        fast_store(s);
        if let Some(u) = url {
            s.store.url = u.parse().unwrap();
        }
        seen = Some(s.clone());
    })
    .await;
    let settings = seen.unwrap();
    t.all_online().await;
    // One endpoint goes away and comes back: transitions to store.
    t.sim.set_endpoint_fault(1, Some(EndpointFault::Silent));
    eventually("RTU 2 offline", || async {
        !t.rtu(&rtu_id(1)).await["online"].as_bool().unwrap()
    })
    .await;
    t.sim.set_endpoint_fault(1, None);
    t.all_online().await;
    let (status, body) = t.get("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["store"]["state"], "ok", "{body}");
    (t, settings)
}

#[tokio::test]
async fn sqlite_holds_exactly_what_was_polled() {
    let (mut t, settings) = run_exact(None).await;
    // The history API answers from the store while it runs.
    let from = (Utc::now() - Span::minutes(5)).to_rfc3339();
    let to = (Utc::now() + Span::minutes(1)).to_rfc3339();
    let q = |id: &str, extra: &str| {
        format!(
            "/api/v1/lamps/{id}/history?from={}&to={}{extra}",
            urlenc(&from),
            urlenc(&to)
        )
    };
    eventually("history has rows", || async {
        let (s, b) = t.get(&q(&lamp_id(0, 0), "")).await;
        s == 200 && b["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let (s, b) = t.get(&q(&lamp_id(0, 0), "")).await;
    assert_eq!((s, b["resolution"].as_str()), (200, Some("raw")));
    let (s, b) = t.get(&q("NO-SUCH-LAMP", "")).await;
    assert_eq!(s, 404, "{b}");
    let (s, b) = t.get(&q(&lamp_id(0, 0), "&resolution=minute")).await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = t
        .get(&format!(
            "/api/v1/lamps/{}/history?from={}&to={}",
            lamp_id(0, 0),
            urlenc(&to),
            urlenc(&from)
        ))
        .await;
    assert_eq!(s, 400, "inverted range: {b}");
    let (s, b) = t
        .get(&format!(
            "/api/v1/lamps/{}/history?from=2020-01-01T00:00:00Z&to=2020-01-05T00:00:00Z&resolution=raw",
            lamp_id(0, 0)
        ))
        .await;
    assert_eq!(s, 400, "raw window too large: {b}");
    let (s, b) = t
        .get(&format!(
            "/api/v1/lamps/{}/history?from=yesterday&to={}",
            lamp_id(0, 0),
            urlenc(&to)
        ))
        .await;
    assert_eq!(s, 400, "{b}");
    let (s, b) = t
        .get(&format!(
            "/api/v1/rtus/{}/history?from={}&to={}&resolution=hour",
            rtu_id(0),
            urlenc(&from),
            urlenc(&to)
        ))
        .await;
    assert_eq!(s, 200, "{b}");
    assert!(b["items"][0]["samples"].as_i64().unwrap() > 0, "{b}");

    let app = t.app.take().unwrap();
    app.shutdown().await.unwrap();
    let store::Backend::Sqlite(path) = settings.store.url.clone() else {
        panic!("sqlite expected")
    };
    let db = Db::connect_lazy(&store::Backend::Sqlite(path.clone()), 1)
        .unwrap()
        .unwrap();
    let Db::Sqlite(pool) = &db else {
        unreachable!()
    };
    let check = Check::Sqlite(pool.clone());
    check_exact(&t, &db, &check).await;
    // The clean stop is recorded.
    assert_eq!(
        check
            .count("SELECT COUNT(*) FROM gateway_runs WHERE stopped_at IS NOT NULL")
            .await,
        1
    );
    t.stop().await;
}

fn urlenc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn postgres_holds_exactly_what_was_polled() {
    let pg = PgTestDb::new().await;
    let (mut t, _) = run_exact(Some(pg.url())).await;
    let app = t.app.take().unwrap();
    app.shutdown().await.unwrap();
    let db = Db::connect_lazy(&store::Backend::Postgres(pg.url().into()), 1)
        .unwrap()
        .unwrap();
    let check = Check::Pg(pg.pool().await);
    check_exact(&t, &db, &check).await;
    // Daily partitions exist for today and ahead.
    let parts = check
        .count(
            "SELECT COUNT(*) FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = 'lamp_samples'",
        )
        .await;
    assert!(parts >= 4, "{parts} partitions");
    drop(check);
    t.stop().await;
    pg.drop_db().await;
}

#[tokio::test]
async fn postgres_outage_mid_run_loses_nothing_and_keeps_polling() {
    let pg = PgTestDb::new().await;
    let proxy = Proxy::start(crate::common::db::PG_SERVER)
        .await
        .expect("proxy binds");
    let url = pg.url_via(proxy.addr);
    let mut t = spawn_app_with(sim(3, 5), InventoryOptions::default(), |s| {
        fast_store(s);
        s.store.url = url.parse().unwrap();
        // Small, so the outage spills to the spool file.
        s.store.queue_rows = 20;
    })
    .await;
    let store = t.app.as_ref().unwrap().store().unwrap();
    t.all_online().await;
    eventually("rows written", || async { store.status.rows_written() > 0 }).await;

    proxy.sever();
    eventually("store degraded and spooling", || async {
        let (s, b) = t.get("/readyz").await;
        s == 200
            && b["store"]["state"] == "degraded"
            && b["store"]["spooled_rows"].as_u64().unwrap_or(0) > 0
    })
    .await;
    let (_, m) = t.get_text("/metrics").await;
    assert_eq!(metric(&m, "lampgw_store_degraded"), 1.0);
    assert!(metric(&m, "lampgw_store_spooled_rows") > 0.0);
    // Polling goes on, and a device goes offline and back during the outage.
    let cycles = t.live.full_cycles();
    t.sim.set_endpoint_fault(2, Some(EndpointFault::Silent));
    eventually("RTU 3 offline during the outage", || async {
        !t.rtu(&rtu_id(2)).await["online"].as_bool().unwrap()
    })
    .await;
    t.sim.set_endpoint_fault(2, None);
    t.all_online().await;
    // Every endpoint completes cycles during the outage (a poll not sent
    // while the silent one backed off is no cycle, so this is waited for,
    // not sampled once).
    eventually("every endpoint polled on during the outage", || async {
        t.live.full_cycles() > cycles + 2
    })
    .await;

    proxy.restore();
    eventually("spool replayed", || async {
        let (_, b) = t.get("/readyz").await;
        b["store"]["state"] == "ok" && b["store"]["spooled_rows"] == 0
    })
    .await;
    let app = t.app.take().unwrap();
    app.shutdown().await.unwrap();

    let db = Db::connect_lazy(&store::Backend::Postgres(pg.url().into()), 1)
        .unwrap()
        .unwrap();
    let check = Check::Pg(pg.pool().await);
    check_exact(&t, &db, &check).await;
    // Transitions in the same order as the state saw them.
    let want: Vec<(String, String, bool)> = {
        let live = t.live.read();
        let mut v: Vec<_> = live
            .recent_transitions
            .iter()
            .map(|x| {
                let (kind, id) = x.controller();
                (
                    x.at.timestamp_micros(),
                    kind.to_string(),
                    id.to_string(),
                    x.online,
                )
            })
            .collect();
        v.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
        v.into_iter().map(|(_, k, i, o)| (k, i, o)).collect()
    };
    assert_eq!(check.transitions().await, want);
    assert!(store.status.write_failures.load(Ordering::Relaxed) > 0);
    drop(check);
    t.stop().await;
    pg.drop_db().await;
}

#[tokio::test]
async fn retention_drops_old_raw_data_and_keeps_rollups_postgres() {
    let pg = PgTestDb::new().await;
    let db = Db::connect_lazy(&store::Backend::Postgres(pg.url().into()), 2)
        .unwrap()
        .unwrap();
    retention_case(&db).await;
    let check = Check::Pg(pg.pool().await);
    let parts: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'lamp_samples'",
    )
    .fetch_all(match &check {
        Check::Pg(p) => p,
        Check::Sqlite(_) => unreachable!(),
    })
    .await
    .unwrap();
    let old = format!(
        "lamp_samples_p{}",
        (Utc::now() - Span::days(40)).format("%Y%m%d")
    );
    let recent = format!(
        "lamp_samples_p{}",
        (Utc::now() - Span::days(1)).format("%Y%m%d")
    );
    assert!(!parts.contains(&old), "{old} still there: {parts:?}");
    assert!(parts.contains(&recent), "{recent} dropped: {parts:?}");
    drop((db, check));
    pg.drop_db().await;
}

#[tokio::test]
async fn retention_drops_old_raw_data_and_keeps_rollups_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect_lazy(&store::Backend::Sqlite(dir.path().join("s.db")), 2)
        .unwrap()
        .unwrap();
    retention_case(&db).await;
}

/// Samples 40 days and 1 day old; one maintenance pass with 35 days'
/// retention: the old raw rows go, their hourly rollup stays.
async fn retention_case(db: &Db) {
    use lamp_gateway::store::{Batch, LampRow};
    db.migrate().await.unwrap();
    let hour_start = |t: DateTime<Utc>| {
        DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(3600), 0).unwrap()
    };
    let old_hour = hour_start(Utc::now() - Span::days(40));
    let new_hour = hour_start(Utc::now() - Span::days(1));
    let mut batch = Batch::default();
    for (h, on) in [(old_hour, true), (new_hour, false)] {
        // Six samples ten minutes apart, energy rising 0.01 kWh each; the
        // lamp fails at the fourth.
        for k in 0..6 {
            batch.lamps.push(LampRow {
                time_us: (h + Span::minutes(10 * k)).timestamp_micros(),
                lamp_id: "LX-1".into(),
                district: "D01".into(),
                on,
                dim_level: 100.0,
                voltage_v: Some(230.0),
                current_a: Some(0.4),
                power_w: Some(90.0),
                power_factor: Some(0.9),
                energy_kwh: Some(10.0 + 0.01 * k as f64),
                burning_hours: Some(100.0),
                fault_flags: i32::from(k >= 3),
                // This case is about energy, failures and retention.
                commanded: None,
                should_be_lit: false,
                lit: false,
            });
        }
    }
    db.write(&batch).await.unwrap();
    let status = store::StoreStatus::default();
    let settings = store::StoreSettings::default();
    let report =
        store::maintenance::run_once(db, &status, &settings, Duration::from_secs(900), Utc::now())
            .await
            .unwrap();
    assert!(report.removed > 0, "{report:?}");
    let raw_old = db
        .lamp_raw("LX-1", old_hour, old_hour + Span::hours(1), 100)
        .await
        .unwrap();
    assert!(raw_old.is_empty(), "old raw rows kept: {raw_old:?}");
    let raw_new = db
        .lamp_raw("LX-1", new_hour, new_hour + Span::hours(1), 100)
        .await
        .unwrap();
    assert_eq!(raw_new.len(), 6);
    let hours = db
        .lamp_hourly("LX-1", old_hour, old_hour + Span::hours(1))
        .await
        .unwrap();
    assert_eq!(hours.len(), 1, "{hours:?}");
    let h = &hours[0];
    assert_eq!(h.samples, 6);
    assert!((h.energy_kwh - 0.05).abs() < 1e-9, "{h:?}");
    assert_eq!(h.failures, 1);
    // Five gaps of 600 s, and the last sample stands for nothing (no next one).
    assert!((h.online_seconds - 3000.0).abs() < 1e-6, "{h:?}");
    assert!((h.on_seconds - 3000.0).abs() < 1e-6, "{h:?}");
    let new = db
        .lamp_hourly("LX-1", new_hour, new_hour + Span::hours(1))
        .await
        .unwrap();
    assert_eq!(new[0].on_seconds, 0.0);
}

/// Issue 12, "slow stop": the writer's pause between tries did not wake on
/// a stop, so a stop with the database away took up to `store.retry_max`
/// longer than `store.shutdown_timeout`. Now the stop is bounded by
/// `shutdown_timeout` (plus one short pause), and what was not written is in
/// the spool: the next run writes it.
#[tokio::test]
async fn a_stop_with_the_database_away_is_bounded_and_loses_nothing() {
    let pg = PgTestDb::new().await;
    let proxy = Proxy::start(crate::common::db::PG_SERVER)
        .await
        .expect("proxy binds");
    let url = pg.url_via(proxy.addr);
    let configure = |s: &mut Settings| {
        fast_store(s);
        s.store.url = url.parse().unwrap();
        // Long pauses between tries, as in production; a short bound.
        s.store.retry_max = Duration::from_secs(30);
        s.store.shutdown_timeout = Duration::from_secs(1);
    };
    let mut t = spawn_app_with(sim(2, 4), InventoryOptions::default(), configure).await;
    let store = t.app.as_ref().unwrap().store().unwrap();
    t.all_online().await;
    eventually("rows written", || async { store.status.rows_written() > 0 }).await;
    proxy.sever();
    // Enough failed tries that the pause has grown past a few seconds.
    eventually("several failed tries", || async {
        let (_, m) = t.get_text("/metrics").await;
        metric(&m, "lampgw_store_write_failures_total") >= 5.0
    })
    .await;
    let started = std::time::Instant::now();
    t.app.take().unwrap().shutdown().await.unwrap();
    let took = started.elapsed();
    println!("stop with the database away took {took:?} (shutdown_timeout 1 s, retry_max 30 s)");
    assert!(
        took < Duration::from_secs(4),
        "stop took {took:?}, beyond shutdown_timeout"
    );
    let counted = t.live.read().samples_total;

    // The next run, with the database back, writes what the first left.
    proxy.restore();
    let mut settings = crate::common::test_settings(t.dir.path());
    configure(&mut settings);
    let app = lamp_gateway::startup::Application::build(settings)
        .await
        .unwrap();
    let pool = pg.pool().await;
    eventually("the first run's samples in the database", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM lamp_samples) + (SELECT COUNT(*) FROM rtu_samples)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        n as u64 >= counted
    })
    .await;
    app.shutdown().await.unwrap();
    pool.close().await;
    t.sim.shutdown().await;
    pg.drop_db().await;
}
