//! The energy saving rate's baseline follows the schedule that was in force
//! at each moment of its window, not today's: a program edited mid-night
//! over HTTP, on a clock the test sets, changes the baseline from the
//! moment of the edit on only. Both backends; on PostgreSQL the version of
//! an edit made while the database is away arrives once it is back.
//!
//! The city (Asia/Shanghai, UTC+8): district D01, cabinet C1 with RTU R1
//! (its meter), lamps L1 (100 W) and L2 (200 W) with SLCs on C1/1, one
//! calendar for the city whose program `night` is first on 18:00, off 06:00.
//!
//! - The gateway starts at 10:00 on 2025-03-15: the first version.
//! - At 22:00 an operator changes `night` to on 20:00, off 02:00.
//! - Window: local noon Mar 15 to noon Mar 16. Until 22:00 the first book:
//!   on 18:00–22:00, 4 h. From 22:00 the new one: at 22:00 the lamps are on
//!   (its 20:00 point), off at 02:00: 4 h. 8 h a lamp, 16 lamp-hours;
//!   baseline 300 W × 8 h = 2.4 kWh. Today's book alone would say 20:00–
//!   02:00, 6 h: 12 lamp-hours, 1.8 kWh.
//! - R1 reads every 30 minutes all window, so every hour is metered; its
//!   counter adds 0.075 kWh each half-hour from 18:00 to 02:00 (16 of them):
//!   1.2 kWh actual. Saving 1 − 1.2 ÷ 2.4 = 0.5 (today's book: 1 − 1.2 ÷
//!   1.8 = 1/3).

use crate::common::db::{PgTestDb, Proxy};
use crate::common::{eventually, test_settings, ADMIN_TOKEN};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lamp_gateway::schedule::clock::ManualClock;
use lamp_gateway::startup::{Application, BuildOptions};
use lamp_gateway::store::ingest::rows::micros;
use lamp_gateway::store::{Backend, Batch, Db, RtuRow};
use serde_json::{json, Value};
use std::sync::Arc;

/// Local midnight starting 2025-03-15.
fn b() -> DateTime<Utc> {
    "2025-03-14T16:00:00Z".parse().unwrap()
}

fn local(hours: i64) -> DateTime<Utc> {
    b() + Duration::hours(hours)
}

fn q(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn write_city(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("districts.csv"), "id,name\nD01,North\n").unwrap();
    // The endpoint refuses connections: the history is what the test writes.
    std::fs::write(
        dir.join("cabinets.csv"),
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         C1,D01,West gate,,,1,127.0.0.1:1,tcp,R1,rtu-cabinet,1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("lamps.csv"),
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L1,C1,1,,,100,S1,slc-a-unit,2,\n\
         L2,C1,1,,,200,S2,slc-a-unit,3,\n",
    )
    .unwrap();
}

fn program(on: &str, off: &str) -> Value {
    json!({"id": "night", "points": [
        {"at": on, "level": "on"},
        {"at": off, "level": "off"}
    ]})
}

fn book() -> Value {
    json!({
        "programs": [program("18:00", "06:00")],
        "calendars": [{"id": "city", "rules": [], "default_program": "night"}],
        "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
    })
}

/// R1's readings every 30 minutes over the window (module doc).
async fn write_meter(db: &Db) {
    let mut batch = Batch::default();
    let mut kwh = 500.0;
    for k in 0..=48 {
        let at = local(12) + Duration::minutes(30 * k);
        let before = at - Duration::minutes(30);
        if k > 0 && before >= local(18) && before < local(26) {
            kwh += 0.075;
        }
        batch.rtus.push(RtuRow {
            time_us: micros(at),
            rtu_id: "R1".into(),
            district: "D01".into(),
            circuits: 1,
            contactors: 0b1,
            voltage_v: [Some(220.0), None, None],
            current_a: [Some(1.0), None, None],
            active_power_w: Some(300.0),
            energy_kwh: Some(kwh),
            door_alarm: false,
            leakage_alarm: false,
        });
    }
    db.write(&batch).await.unwrap();
    db.rollup(local(0), local(48), 3600.0).await.unwrap();
}

fn close(got: &Value, want: f64, what: &str) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!((g - want).abs() < 1e-6, "{what}: {g} != {want}");
}

struct Gateway {
    app: Application,
    base: String,
    http: reqwest::Client,
}

impl Gateway {
    /// On `url`, else SQLite in `dir`.
    async fn start(dir: &std::path::Path, url: Option<&str>, clock: Arc<ManualClock>) -> Gateway {
        let mut s = test_settings(dir);
        if let Some(u) = url {
            s.store.url = u.parse().unwrap();
        }
        s.store.retention_days = 3650;
        s.store.write_timeout = std::time::Duration::from_secs(2);
        s.store.retry_max = std::time::Duration::from_millis(300);
        s.schedule.tick = std::time::Duration::from_millis(50);
        let app = Application::build_with(
            s,
            BuildOptions {
                schedule_clock: Some(clock),
            },
        )
        .await
        .unwrap();
        let g = Gateway {
            base: format!("http://{}", app.local_addr()),
            app,
            http: reqwest::Client::new(),
        };
        eventually("store ready", || async {
            g.get("/readyz").await["store"]["state"] == "ok"
        })
        .await;
        g
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        res.json().await.unwrap_or(Value::Null)
    }

    async fn put_program(&self, body: Value) {
        let res = self
            .http
            .put(format!("{}/api/v1/programs/night", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }

    /// D01's saving over [from, to).
    async fn saving(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Value {
        let body = self
            .get(&format!(
                "/api/v1/metrics/saving?from={}&to={}",
                q(from),
                q(to)
            ))
            .await;
        assert_eq!(body["districts"][0]["scope"], "D01", "{body}");
        body["districts"][0].clone()
    }

    /// Everything written so far has reached the database.
    async fn drained(&self) {
        let status = self.app.store().unwrap().status.clone();
        eventually("the store wrote everything", || async {
            use std::sync::atomic::Ordering::Relaxed;
            status.writes.load(Relaxed) > 0
                && status.queued_rows.load(Relaxed) == 0
                && status.spooled_rows.load(Relaxed) == 0
        })
        .await;
    }
}

/// Every version the store holds, by when it took effect.
async fn versions(db: &Db) -> Vec<DateTime<Utc>> {
    let far = "2000-01-01T00:00:00Z".parse().unwrap();
    let heads = db
        .schedule_version_heads(far, far + Duration::days(365 * 100))
        .await
        .unwrap();
    heads.into_iter().map(|h| h.effective).collect()
}

async fn scenario(url: Option<String>, outage: Option<(&Proxy, &PgTestDb)>) {
    let dir = tempfile::tempdir().unwrap();
    write_city(&dir.path().join("inventory"));
    std::fs::write(dir.path().join("schedule.json"), book().to_string()).unwrap();
    let clock = Arc::new(ManualClock::new(local(10)));
    let g = Gateway::start(dir.path(), url.as_deref(), clock.clone()).await;
    let db = g.app.store().unwrap().db.clone();
    eventually("the first version stored", || async {
        versions(&db).await == [local(10)]
    })
    .await;

    // The operator's edit at 22:00.
    clock.set(local(22));
    g.put_program(program("20:00", "02:00")).await;
    eventually("the edit's version stored", || async {
        versions(&db).await == [local(10), local(22)]
    })
    .await;
    write_meter(&db).await;

    let d01 = g.saving(local(12), local(36)).await;
    let bl = &d01["baseline"];
    assert_eq!(bl["source"], "computed");
    assert_eq!(bl["lamps_scheduled"], 2);
    close(&bl["rated_kw"], 0.3, "rated");
    close(&bl["scheduled_lamp_hours"], 16.0, "scheduled lamp-hours");
    close(&bl["counted_lamp_hours"], 16.0, "counted lamp-hours");
    close(&bl["kwh"], 2.4, "baseline");
    close(&d01["actual"]["energy_kwh"], 1.2, "actual");
    close(&d01["saving_rate"], 0.5, "saving rate");
    // The window's two halves: the first book alone (read back from the
    // store), then the edited one alone.
    let before = g.saving(local(12), local(22)).await;
    close(
        &before["baseline"]["scheduled_lamp_hours"],
        8.0,
        "before the edit",
    );
    close(&before["baseline"]["kwh"], 1.2, "baseline before the edit");
    let after = g.saving(local(22), local(36)).await;
    close(
        &after["baseline"]["scheduled_lamp_hours"],
        8.0,
        "after the edit",
    );
    // A window before the first version takes the earliest.
    let earlier = g.saving(local(-12), local(12)).await;
    close(
        &earlier["baseline"]["scheduled_lamp_hours"],
        24.0,
        "before the first version: 18:00–06:00 of Mar 14/15 by the first book",
    );

    // A restart with the same book records nothing new.
    g.app.shutdown().await.unwrap();
    clock.set(local(37));
    let g = Gateway::start(dir.path(), url.as_deref(), clock.clone()).await;
    g.drained().await;
    let db = g.app.store().unwrap().db.clone();
    assert_eq!(versions(&db).await, [local(10), local(22)]);
    let again = g.saving(local(12), local(36)).await;
    assert_eq!(
        again["baseline"], d01["baseline"],
        "the same after a restart"
    );

    if let Some((proxy, pg)) = outage {
        // An edit while the database is away: kept in the spool, written
        // once the database is back.
        let direct = Db::connect_lazy(&Backend::Postgres(pg.url().into()), 1)
            .unwrap()
            .unwrap();
        proxy.sever();
        clock.set(local(38));
        g.put_program(program("19:00", "01:00")).await;
        eventually("the store notices the outage", || async {
            g.get("/readyz").await["store"]["state"] == "degraded"
        })
        .await;
        assert_eq!(versions(&direct).await, [local(10), local(22)]);
        proxy.restore();
        eventually("the version made during the outage stored", || async {
            versions(&direct).await == [local(10), local(22), local(38)]
        })
        .await;
    }
    g.app.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_baseline_follows_the_schedule_in_force_sqlite() {
    scenario(None, None).await;
}

#[tokio::test]
async fn the_baseline_follows_the_schedule_in_force_postgres() {
    let pg = PgTestDb::new().await;
    let proxy = Proxy::start(crate::common::db::PG_SERVER)
        .await
        .expect("proxy binds");
    scenario(Some(pg.url_via(proxy.addr)), Some((&proxy, &pg))).await;
    pg.drop_db().await;
}

/// Cluster mode: instances sharing one PostgreSQL write the same version
/// (each at its own effective time, a microsecond apart) at once, round
/// after round: each round's content is kept once, at the earlier time,
/// whichever commits first.
#[tokio::test]
async fn equal_versions_written_at_once_by_two_instances_are_kept_once_postgres() {
    use lamp_gateway::store::ingest::rows::ScheduleVersionRow;
    let pg = PgTestDb::new().await;
    let open = || {
        Db::connect_lazy(&Backend::Postgres(pg.url().into()), 2)
            .unwrap()
            .unwrap()
    };
    let (one, two) = (open(), open());
    one.migrate().await.unwrap();
    let version = |at: DateTime<Utc>, round: usize| Batch {
        schedule_versions: vec![ScheduleVersionRow {
            effective_us: micros(at),
            digest: format!("digest-{round}"),
            content: format!("{{\"round\":{round}}}"),
        }],
        ..Batch::default()
    };
    const ROUNDS: usize = 40;
    for round in 0..ROUNDS {
        let at = local(round as i64);
        let (first, second) = (
            version(at, round),
            version(at + Duration::microseconds(1), round),
        );
        let (a, b) = tokio::join!(one.write(&first), two.write(&second));
        a.unwrap();
        b.unwrap();
    }
    let heads = one
        .schedule_version_heads(local(-1), local(ROUNDS as i64 + 1))
        .await
        .unwrap();
    assert_eq!(heads.len(), ROUNDS, "one row per round: {heads:?}");
    for (round, h) in heads.iter().enumerate() {
        assert_eq!(
            (h.effective, h.digest.as_str()),
            (local(round as i64), format!("digest-{round}").as_str())
        );
    }
    pg.drop_db().await;
}
