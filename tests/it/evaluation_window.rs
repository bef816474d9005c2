//! The evaluation-grade lighting figures over windows
//! (`/api/v1/metrics/roads/window`, `/api/v1/metrics/lighting/window`) on
//! the hand-built city of `evaluation.rs` over real sockets, on SQLite and
//! PostgreSQL: the sampler takes the evaluation every 200 ms, and the
//! windows add up its lamp-time. Roads of four classes, lamps with and
//! without an SLC (estimated from C1's meter, unknown behind C3's silent
//! RTU and on C4 without one), an offline SLC (S-C2-1).
//!
//! What is checked, against the verdicts now and by hand:
//! - steady state: between two reads of a window the field held still, so
//!   what the window gained per evaluated second is the counts now (R-SEC:
//!   8 lamps expected, 5 lit, 2 dark, 1 unknown, 2 estimated per second)
//!   and its rate is the rate now, per road, class, district and city;
//! - a reload moving two lamps to a new road: the sampler judges the new
//!   inventory from its next tick, in the same run;
//! - a restart: the first run's totals stay as they were, the second run's
//!   add to them in the same hour, and the window is their exact sum;
//! - PostgreSQL only (the harness can cut its connection; SQLite is a file
//!   the gateway cannot lose): a database outage, and a stop during it,
//!   lose nothing — the next start writes what the spool kept;
//! - the routes: a class filter (by its Chinese name), a district token
//!   sees its district only, bad windows are 400.

use crate::common::db::{PgTestDb, Proxy, PG_SERVER};
use crate::common::{eventually, test_settings, ADMIN_TOKEN};
use crate::evaluation::{settled, write_city};
use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::calendar::floor_hour;
use lamp_gateway::figures::evaluation_window;
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::Application;
use lamp_gateway::store::{Db, Store};
use lamp_sim::{SimConfig, Simulator, SlcFault};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const D02_VIEWER: &str = "lgw_test_d02_viewer";

/// The field of `evaluation.rs`: L-C1-2's lamp failed, S-C2-1 silent,
/// C1's lamps without an SLC drawing 400 W (4 of 5 burn).
async fn field() -> Simulator {
    let sim = Simulator::start(SimConfig {
        endpoints: 3,
        slcs_per_endpoint: 4,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    sim.set_slc_fault(
        0,
        2,
        SlcFault {
            failed: true,
            ..Default::default()
        },
    );
    sim.set_slc_fault(
        1,
        1,
        SlcFault {
            silent: true,
            ..Default::default()
        },
    );
    sim.set_plain_load(0, 1, 300.0);
    sim.set_plain_load(0, 2, 100.0);
    sim
}

fn settings(dir: &Path, url: &str) -> Settings {
    let mut s = test_settings(dir);
    s.figures.evaluation_interval = Duration::from_millis(200);
    s.store.url = url.parse().unwrap();
    s.store.retry_max = Duration::from_millis(300);
    s.store.shutdown_timeout = Duration::from_millis(500);
    s.auth.tokens.push(TokenConfig {
        name: "d02-viewer".into(),
        hash: hash_token(D02_VIEWER),
        role: Role::Viewer,
        district: Some("D02".into()),
    });
    s
}

async fn get(addr: SocketAddr, token: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn q(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The roads now under the default policy (`evaluation.rs` works them
/// out): name → [total, expected, lit, dark, unknown, estimated].
const NOW: [(&str, [u64; 6]); 5] = [
    ("Jingshi Road", [4, 4, 4, 0, 0, 2]),
    ("Lishan Road", [8, 8, 5, 2, 1, 2]),
    ("(no road)", [1, 1, 1, 0, 0, 1]),
    ("Quancheng Park", [2, 2, 2, 0, 0, 0]),
    ("Huayuan Street", [6, 6, 2, 0, 4, 0]),
];

/// The roads now: (name, counts, rate).
async fn roads_now(addr: SocketAddr) -> Vec<(String, [u64; 6], Option<f64>)> {
    let (status, rows) = get(addr, ADMIN_TOKEN, "/api/v1/metrics/roads").await;
    assert_eq!(status, 200, "{rows}");
    rows["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let c = [
                "lamps_total",
                "lamps_expected_lit",
                "lamps_lit",
                "lamps_dark",
                "lamps_unknown",
                "lamps_estimated",
            ]
            .map(|k| r[k].as_u64().unwrap());
            (
                r["name"].as_str().unwrap().to_string(),
                c,
                r["lighting_rate"].as_f64(),
            )
        })
        .collect()
}

/// [expected, lit, dark, unknown, estimated] lamp-seconds of a row.
fn secs(row: &Value) -> [f64; 5] {
    [
        "lamps_expected_lit_seconds",
        "lamps_lit_seconds",
        "lamps_dark_seconds",
        "lamps_unknown_seconds",
        "lamps_estimated_seconds",
    ]
    .map(|k| row[k].as_f64().unwrap_or_else(|| panic!("{k} in {row}")))
}

fn named<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name || r["class"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {rows}"))
}

/// One consistent read of both window routes: the lighting figures read
/// again after the roads until nothing moved in between (every tick adds
/// evaluated time, so the same `observed_seconds` means no tick landed).
async fn snapshot(addr: SocketAddr, window: &str) -> (Value, Value) {
    loop {
        let (status, a) = get(
            addr,
            ADMIN_TOKEN,
            &format!("/api/v1/metrics/lighting/window?{window}"),
        )
        .await;
        assert_eq!(status, 200, "{a}");
        let (status, roads) = get(
            addr,
            ADMIN_TOKEN,
            &format!("/api/v1/metrics/roads/window?{window}"),
        )
        .await;
        assert_eq!(status, 200, "{roads}");
        let (_, b) = get(
            addr,
            ADMIN_TOKEN,
            &format!("/api/v1/metrics/lighting/window?{window}"),
        )
        .await;
        if a["city"]["observed_seconds"] == b["city"]["observed_seconds"] {
            return (b, roads);
        }
    }
}

fn observed(lighting: &Value) -> f64 {
    lighting["city"]["observed_seconds"].as_f64().unwrap()
}

/// Waits until the window has `more` seconds more of evaluated time.
async fn evaluated_for(addr: SocketAddr, window: &str, more: f64) {
    let (first, _) = snapshot(addr, window).await;
    let start = observed(&first);
    eventually(&format!("{more} s more evaluated"), || async {
        let (_, l) = get(
            addr,
            ADMIN_TOKEN,
            &format!("/api/v1/metrics/lighting/window?{window}"),
        )
        .await;
        l["city"]["observed_seconds"]
            .as_f64()
            .is_some_and(|o| o >= start + more)
    })
    .await;
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: {a} vs {b}");
}

/// The field holds still while the window grows: what it gained per
/// evaluated second is the counts now, and its rate the rate now.
async fn steady_state(addr: SocketAddr, window: &str) {
    // A second of evaluated time after the field settled: every tick
    // counted from the first read on judged the settled field.
    evaluated_for(addr, window, 1.0).await;
    let now_a = roads_now(addr).await;
    let (light_a, roads_a) = snapshot(addr, window).await;
    evaluated_for(addr, window, 1.0).await;
    let (light_b, roads_b) = snapshot(addr, window).await;
    let now_b = roads_now(addr).await;
    let counts: Vec<(&str, [u64; 6])> = now_a.iter().map(|(n, c, _)| (n.as_str(), *c)).collect();
    assert_eq!(counts, NOW, "the field as worked out");
    assert_eq!(now_a, now_b, "the field held still");
    let gained = |a: &Value, b: &Value| -> [f64; 5] {
        let (a, b) = (secs(a), secs(b));
        [0, 1, 2, 3, 4].map(|k| b[k] - a[k])
    };
    // Every district was evaluated as long as the city (one tick, one time).
    let dt = observed(&light_b) - observed(&light_a);
    assert!(dt >= 1.0, "{dt}");
    for d in 0..2 {
        let o = |l: &Value| l["districts"][d]["observed_seconds"].as_f64().unwrap();
        close(o(&light_b) - o(&light_a), dt, "district time");
    }
    for (name, c, rate) in &now_a {
        let g = gained(
            named(&roads_a["items"], name),
            named(&roads_b["items"], name),
        );
        // Lamp-seconds per second = lamps: expected, lit, dark, unknown,
        // estimated (R-SEC: 8, 5, 2, 1, 2).
        for k in 0..5 {
            close(g[k] / dt, c[k + 1] as f64, &format!("{name} column {k}"));
        }
        // The window's rate over the gain is the rate now: lit ÷ expected
        // (the default policy counts the unknown ones dark).
        close(g[1] / g[0], rate.unwrap(), &format!("{name} rate"));
    }
    // Classes, districts and the city likewise: D01 13 expected, 10 lit per
    // second; D02 8, 4; city 21, 14; the city's secondary class (R-SEC
    // alone) 8, 5.
    for (g, expected, lit) in [
        (&light_b["districts"][0], &light_a["districts"][0]),
        (&light_b["districts"][1], &light_a["districts"][1]),
        (&light_b["city"], &light_a["city"]),
        (
            named(&light_b["city"]["classes"], "secondary"),
            named(&light_a["city"]["classes"], "secondary"),
        ),
    ]
    .into_iter()
    .zip([(13.0, 10.0), (8.0, 4.0), (21.0, 14.0), (8.0, 5.0)])
    .map(|((b, a), (e, l))| (gained(a, b), e, l))
    {
        close(g[0] / dt, expected, "expected per second");
        close(g[1] / dt, lit, "lit per second");
    }
    // Targets over the window, by the whole window's rate (the time before
    // the field settled in it too): R-BR (branch, 0.96) is at 2/6 once
    // settled and lower before (its lamps unknown, counted dark).
    let main = named(&roads_b["items"], "Jingshi Road");
    assert_eq!(main["class"], "main");
    assert_eq!(main["target"], 0.98);
    let br = named(&roads_b["items"], "Huayuan Street");
    assert_eq!(br["meets_target"], false, "{br}");
    // Jingshi Road's lamps all answer (or are estimated from C1's meter):
    // not a lamp-second unknown in the window, the start included — the
    // sampler's first verdicts wait for every endpoint's first poll.
    assert_eq!(main["lamps_unknown_seconds"], 0.0, "{main}");
    let no_road = named(&roads_b["items"], "(no road)");
    assert!(no_road["road"].is_null() && no_road["target"].is_null());
    assert!(no_road["meets_target"].is_null());
    // The dark-lamp cap over the window follows the cap now tick by tick:
    // a road over its cap now (R-SEC: 2 dark + 1 unknown counted dark
    // against 2; R-BR: 4 unknown) gained all the evaluated time as time
    // over its cap, the others none; its worst tick is no better than now.
    let (status, now) = get(addr, ADMIN_TOKEN, "/api/v1/metrics/roads").await;
    assert_eq!(status, 200, "{now}");
    let mut over_now = Vec::new();
    for r in now["items"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let (a, b) = (
            named(&roads_a["items"], name),
            named(&roads_b["items"], name),
        );
        if r["road"].is_null() {
            assert!(b["over_cap_seconds"].is_null() && b["dark_cap"].is_null());
            continue;
        }
        assert_eq!(b["dark_cap"], r["dark_cap"], "{name}: the cap for its size");
        let gained =
            b["over_cap_seconds"].as_f64().unwrap() - a["over_cap_seconds"].as_f64().unwrap();
        let over = r["over_cap"].as_bool().unwrap();
        close(
            gained,
            if over { dt } else { 0.0 },
            &format!("{name} over cap"),
        );
        let dark_now = r["lamps_dark"].as_u64().unwrap() + r["lamps_unknown"].as_u64().unwrap();
        assert!(
            b["dark_lamps_max"].as_u64().unwrap() >= dark_now,
            "{name}: {b}"
        );
        if over {
            assert_eq!(
                b["meets_target"], false,
                "{name}: over its cap, whatever its rate"
            );
            over_now.push(name.to_string());
        }
    }
    assert_eq!(over_now, ["Lishan Road", "Huayuan Street"]);
    let secondary = named(&light_b["city"]["classes"], "secondary");
    assert_eq!(secondary["roads_over_cap"], 1, "{secondary}");
    // Coverage: the share of the hours counted so far that was evaluated.
    let cov = light_b["city"]["coverage"].as_f64().unwrap();
    assert!(cov > 0.0 && cov <= 1.0, "{cov}");
}

/// The routes' filters, scope and refusals.
async fn routes(addr: SocketAddr, window: &str, from: DateTime<Utc>) {
    let (status, secondary) = get(
        addr,
        ADMIN_TOKEN,
        &format!("/api/v1/metrics/roads/window?{window}&class=次干道"),
    )
    .await;
    assert_eq!(status, 200, "{secondary}");
    let names: Vec<&str> = secondary["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Lishan Road"]);
    assert_eq!(secondary["total"], 1);
    let (_, page) = get(
        addr,
        ADMIN_TOKEN,
        &format!("/api/v1/metrics/roads/window?{window}&district=D01&limit=1&offset=2"),
    )
    .await;
    assert_eq!(
        (&page["total"], &page["items"][0]["name"]),
        (&Value::from(3), &Value::from("(no road)"))
    );
    // A D02 token: D02's roads and district only, no city; D01 does not
    // exist to it.
    let (status, own) = get(
        addr,
        D02_VIEWER,
        &format!("/api/v1/metrics/roads/window?{window}"),
    )
    .await;
    assert_eq!(status, 200, "{own}");
    let names: Vec<&str> = own["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Quancheng Park", "Huayuan Street"]);
    let (_, own) = get(
        addr,
        D02_VIEWER,
        &format!("/api/v1/metrics/lighting/window?{window}"),
    )
    .await;
    assert!(own["city"].is_null(), "{own}");
    assert_eq!(own["districts"].as_array().unwrap().len(), 1);
    assert_eq!(own["districts"][0]["scope"], "D02");
    for path in [
        format!("/api/v1/metrics/lighting/window?{window}&district=D01"),
        format!("/api/v1/metrics/roads/window?{window}&district=D01"),
    ] {
        let (status, _) = get(addr, D02_VIEWER, &path).await;
        assert_eq!(status, 400, "{path}");
    }
    // Bad windows: backwards, over 93 days, missing `to`, an unknown
    // parameter, a bad class.
    for bad in [
        format!("from={}&to={}", q(from), q(from - Span::hours(1))),
        format!("from={}&to={}", q(from), q(from + Span::days(94))),
        format!("from={}", q(from)),
        format!("{window}&bucket=hour"),
        format!("{window}&class=avenue"),
    ] {
        let (status, body) = get(
            addr,
            ADMIN_TOKEN,
            &format!("/api/v1/metrics/roads/window?{bad}"),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = get(
        addr,
        "lgw_no_such_token",
        &format!("/api/v1/metrics/lighting/window?{window}"),
    )
    .await;
    assert_eq!(status, 401);
}

/// A reload that moves C4's two lamps (unknown: no RTU) from R-BR to a new
/// road: the sampler judges the new inventory from its next tick, in the
/// same run — the new road gains 2 unknown lamp-seconds a second.
async fn after_a_reload(addr: SocketAddr, dir: &Path, window: &str) {
    let inv = dir.join("inventory");
    let roads = std::fs::read_to_string(inv.join("roads.csv")).unwrap();
    std::fs::write(
        inv.join("roads.csv"),
        format!("{roads}R-NEW,Minghu Street,D02,branch,\n"),
    )
    .unwrap();
    let lamps = std::fs::read_to_string(inv.join("lamps.csv")).unwrap();
    let moved = lamps
        .replace("P-C4-0,C4,1,,,100,,,,,R-BR", "P-C4-0,C4,1,,,100,,,,,R-NEW")
        .replace("P-C4-1,C4,1,,,100,,,,,R-BR", "P-C4-1,C4,1,,,100,,,,,R-NEW");
    assert_ne!(moved, lamps);
    std::fs::write(inv.join("lamps.csv"), moved).unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let first = std::cell::Cell::new(None::<(f64, f64)>);
    eventually("the new road evaluated for a second", || async {
        let (light, roads) = snapshot(addr, window).await;
        let Some(new) = roads["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["road"] == "R-NEW")
        else {
            return false;
        };
        let now = (observed(&light), secs(new)[3]);
        match first.get() {
            // Listed from the new inventory at once, counted from the
            // sampler's first tick on the new live state: start there.
            None if now.1 == 0.0 => false,
            None => {
                first.set(Some(now));
                false
            }
            Some((o, u)) if now.0 >= o + 1.0 && now.1 > u => {
                // 2 unknown lamps the whole time since.
                close((now.1 - u) / (now.0 - o), 2.0, "R-NEW unknown per second");
                true
            }
            Some(_) => false,
        }
    })
    .await;
}

/// Per run: (run id, D01's evaluated ms, the city's lit lamp-ms).
async fn per_run(db: &Db) -> Vec<(String, i64, i64)> {
    let sql = "SELECT run_id, \
                      CAST(SUM(CASE WHEN road = '' AND district = 'D01' THEN sampled_ms ELSE 0 END) \
                           AS BIGINT), \
                      CAST(SUM(lit_ms) AS BIGINT) \
               FROM evaluation_hourly GROUP BY run_id ORDER BY run_id";
    match db {
        Db::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await.unwrap(),
        Db::Postgres(pg) => sqlx::query_as(sql).fetch_all(&pg.pool).await.unwrap(),
    }
}

/// After both runs stopped: the first run's totals as they were before the
/// second began, the window their exact sum with the second's.
async fn two_runs_add_up(db: &Db, first: &(String, i64, i64), dir: &Path, from: DateTime<Utc>) {
    let runs = per_run(db).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(&runs[0], first, "the first run's totals untouched");
    assert!(runs[1].1 > 0, "{runs:?}");
    let (inventory, issues) = lamp_gateway::inventory::load_dir(&dir.join("inventory"));
    assert!(issues.is_empty(), "{issues:?}");
    let w = evaluation_window::load(
        db,
        &inventory,
        &Default::default(),
        from,
        from + Span::hours(3),
        None,
        Utc::now(),
    )
    .await
    .unwrap();
    let ms = |s: f64| (s * 1000.0).round() as i64;
    assert_eq!(ms(w.districts[0].observed_seconds), runs[0].1 + runs[1].1);
    assert_eq!(
        ms(w.city.as_ref().unwrap().observed_seconds),
        runs[0].1 + runs[1].1
    );
    assert_eq!(
        ms(w.city.as_ref().unwrap().seconds.lamps_lit_seconds),
        runs[0].2 + runs[1].2
    );
}

async fn connect(url: &str) -> Db {
    Db::connect_lazy(&url.parse().unwrap(), 1).unwrap().unwrap()
}

/// A gateway run as `lamp-gateway run` runs it, so that its loop serves
/// reloads; its store for the status.
struct Gateway {
    addr: SocketAddr,
    store: Arc<Store>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Gateway {
    /// Starts it; with `settle`, once the field is settled.
    async fn start(dir: &Path, url: &str, settle: bool) -> Gateway {
        let app = Application::build(settings(dir, url)).await.unwrap();
        if settle {
            eventually("the field settled", || async { settled(&app) }).await;
        }
        Gateway {
            addr: app.local_addr(),
            store: app.store().unwrap(),
            stop: app.stopper(),
            task: tokio::spawn(app.run_until_stopped()),
        }
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_on_sqlite_follow_the_verdicts_and_add_up_two_runs() {
    let sim = field().await;
    let dir = tempfile::tempdir().unwrap();
    write_city(&dir.path().join("inventory"), &sim);
    let url = format!("sqlite://{}", dir.path().join("store.db").display());
    // The hour the test starts in, and two more: the hours it can touch.
    let from = floor_hour(Utc::now());
    let window = format!("from={}&to={}", q(from), q(from + Span::hours(3)));

    let gw = Gateway::start(dir.path(), &url, true).await;
    steady_state(gw.addr, &window).await;
    routes(gw.addr, &window, from).await;
    after_a_reload(gw.addr, dir.path(), &window).await;
    gw.stop().await;

    // The restart: a second run in the same hour.
    let db = connect(&url).await;
    let first = per_run(&db).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let gw = Gateway::start(dir.path(), &url, false).await;
    eventually("the second run's totals written", || async {
        per_run(&db).await.get(1).is_some_and(|r| r.1 > 0)
    })
    .await;
    // Both runs' rows in one window, through the route too.
    let (_, l) = get(
        gw.addr,
        ADMIN_TOKEN,
        &format!("/api/v1/metrics/lighting/window?{window}"),
    )
    .await;
    assert!(observed(&l) * 1000.0 > first[0].1 as f64, "{l}");
    gw.stop().await;
    two_runs_add_up(&db, &first[0], dir.path(), from).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_on_postgres_survive_an_outage_and_a_stop_during_it() {
    let pg = PgTestDb::new().await;
    let proxy = Proxy::start(PG_SERVER).await.expect("proxy binds");
    let sim = field().await;
    let dir = tempfile::tempdir().unwrap();
    write_city(&dir.path().join("inventory"), &sim);
    let url = pg.url_via(proxy.addr);
    let from = floor_hour(Utc::now());
    let window = format!("from={}&to={}", q(from), q(from + Span::hours(3)));

    let built = Instant::now();
    let gw = Gateway::start(dir.path(), &url, true).await;
    steady_state(gw.addr, &window).await;

    // The outage: the database's connection cut while the sampler goes on.
    let db = connect(&pg.url()).await;
    let before = per_run(&db).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let read = Instant::now();
    proxy.sever();
    let store = gw.store.clone();
    eventually("writes failing for a while", || async {
        store
            .status
            .failing
            .load(std::sync::atomic::Ordering::Relaxed)
            && store
                .status
                .write_failures
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 5
    })
    .await;
    // A stop during the outage: the totals since are in the spool only.
    let stopping = Instant::now();
    gw.stop().await;
    let stopped = Instant::now();

    // The database back, the next run replays the spool: the first run's
    // total grows by at least the time from the read to the stop (its rows
    // at the read were of a tick before it; its last, of the stop), less
    // 300 ms for whole-millisecond cuts and a tick a busy machine held past
    // its cap — the cut lasted longer, so without the spool it could not
    // get there — and by no more than the run lasted.
    proxy.restore();
    let gw = Gateway::start(dir.path(), &url, false).await;
    let least = before[0].1 + (stopping - read).as_millis() as i64 - 300;
    assert!(least > before[0].1 + 300, "the cut lasted long enough");
    eventually("the first run's totals from the spool", || async {
        per_run(&db).await[0].1 >= least
    })
    .await;
    eventually("the second run's totals written", || async {
        per_run(&db).await.get(1).is_some_and(|r| r.1 > 0)
    })
    .await;
    gw.stop().await;
    let runs = per_run(&db).await;
    let most = (stopped - built).as_millis() as i64 + 50;
    println!(
        "first run: {} ms evaluated at the read, {} ms after the replay (at least {least}, at most {most}); cut to stop {:?}",
        before[0].1,
        runs[0].1,
        stopping - read
    );
    assert!(
        runs[0].1 >= least && runs[0].1 <= most,
        "{runs:?}: {least}..{most}"
    );
    two_runs_add_up(&db, &runs[0], dir.path(), from).await;
    if let Db::Postgres(p) = &db {
        p.pool.close().await;
    }
    sim.shutdown().await;
    pg.drop_db().await;
}
