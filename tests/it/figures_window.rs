//! The supervision figures over windows on a hand-built city whose history
//! (gateway runs, transitions, lamp samples) is written straight into a fresh
//! database, so every span is exact. Every figure below is worked out by hand
//! in the comments, not by the code under test; both backends.

use crate::common::db::PgTestDb;
use crate::common::{test_settings, ADMIN_TOKEN};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::lighting::LampFacts;
use lamp_gateway::startup::Application;
use lamp_gateway::store::ingest::rows::micros;
use lamp_gateway::store::Db;
use lamp_gateway::store::{Batch, LampRow, TransitionRow};
use serde_json::Value;

const D02_TOKEN: &str = "lgw_test_d02_viewer";

/// D01 "North": C1 (RTU R1; L1/S1 and L2/S2 on circuit 1, L3 without SLC on
/// circuit 2), C2 (RTU R2; L4/S4), C3 (no RTU; L5 without SLC).
/// D02 "South": C4 (RTU R4; L6/S6 on circuit 1, L7/S7 on circuit 2).
/// D03 "Empty": nothing. The endpoints refuse connections: the live gateway
/// sees nothing, the history is what we write.
fn write_city(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("districts.csv"),
        "id,name\nD01,North\nD02,South\nD03,Empty\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("cabinets.csv"),
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         C1,D01,,,,2,127.0.0.1:1,tcp,R1,rtu-cabinet,1\n\
         C2,D01,,,,2,127.0.0.1:2,tcp,R2,rtu-cabinet,1\n\
         C3,D01,,,,2,,,,,\n\
         C4,D02,,,,2,127.0.0.1:3,tcp,R4,rtu-cabinet,1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("lamps.csv"),
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index\n\
         L1,C1,1,,,100,S1,slc-a-unit,2,\n\
         L2,C1,1,,,100,S2,slc-a-unit,3,\n\
         L3,C1,2,,,100,,,,\n\
         L4,C2,1,,,100,S4,slc-a-unit,2,\n\
         L5,C3,1,,,100,,,,\n\
         L6,C4,1,,,100,S6,slc-a-unit,2,\n\
         L7,C4,2,,,100,S7,slc-a-unit,3,\n",
    )
    .unwrap();
}

/// Local midnight starting 2025-03-15 in Asia/Shanghai (UTC+8).
fn b() -> DateTime<Utc> {
    "2025-03-14T16:00:00Z".parse().unwrap()
}

fn at(h: i64, s: i64) -> DateTime<Utc> {
    b() + Duration::hours(h) + Duration::seconds(s)
}

fn q(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn transition(t: DateTime<Utc>, kind: &str, id: &str, d: &str, online: bool) -> TransitionRow {
    TransitionRow {
        time_us: micros(t),
        device_kind: kind.into(),
        device_id: id.into(),
        district: d.into(),
        online,
        reason: (!online).then(|| "timeout".into()),
        detail: None,
    }
}

fn sample(t: DateTime<Utc>, lamp: &str, d: &str, on: bool, v: f64, p: f64, flags: i32) -> LampRow {
    // The verdict the live state stores with such a sample: its SLC answered,
    // no RTU reading in this history (so the supply voltage tells energised),
    // no command, slc-a-unit's 5 W threshold.
    let verdict = LampFacts {
        online: true,
        relay_on: on,
        power_w: Some(p),
        voltage_v: Some(v),
        lamp_failure: flags & 1 != 0,
        commanded: None,
        contactor_closed: None,
        lit_threshold_w: 5.0,
        scheduled: None,
    }
    .judge();
    LampRow {
        time_us: micros(t),
        lamp_id: lamp.into(),
        district: d.into(),
        on,
        dim_level: 100.0,
        voltage_v: Some(v),
        current_a: Some(p / 220.0),
        power_w: Some(p),
        power_factor: Some(0.95),
        energy_kwh: Some(1.0),
        burning_hours: Some(1.0),
        fault_flags: flags,
        commanded: None,
        should_be_lit: verdict.expected,
        lit: verdict.lit,
    }
}

/// Runs: A [B-14h, B-2h) stopped cleanly; B from B+1h, last heartbeat B+8h,
/// never stopped (observed to B+8h plus the 60 s grace: twice the 30 s
/// heartbeat); C [B+10h, B+13h) stopped cleanly.
async fn write_history(db: &Db) {
    let gw = "lamp-gateway";
    db.start_run("hist-a", gw, at(-14, 0)).await.unwrap();
    db.heartbeat("hist-a", at(-2, 0), true).await.unwrap();
    db.start_run("hist-b", gw, at(1, 0)).await.unwrap();
    db.heartbeat("hist-b", at(8, 0), false).await.unwrap();
    db.start_run("hist-c", gw, at(10, 0)).await.unwrap();
    db.heartbeat("hist-c", at(13, 0), true).await.unwrap();
    // Another gateway's run on the same database observes nothing of ours.
    db.start_run("other", "elsewhere", at(-2, 0)).await.unwrap();
    db.heartbeat("other", at(1, 0), true).await.unwrap();

    let mut t = Vec::new();
    let mut tr = |h: i64, s: i64, kind: &str, id: &str, d: &str, on: bool| {
        t.push(transition(at(h, s), kind, id, d, on));
    };
    // R1 offline for a known hour, B-6h..B-5h.
    for (h, s, on) in [
        (-14, 10, true),
        (-6, 0, false),
        (-5, 0, true),
        (1, 5, true),
        (10, 5, true),
    ] {
        tr(h, s, "rtu", "R1", "D01", on);
    }
    // C2's endpoint unreachable from B-4h until run C: R2 and S4 behind it.
    for (kind, id) in [("rtu", "R2"), ("slc", "S4")] {
        for (h, s, on) in [(-14, 10, true), (-4, 0, false), (10, 5, true)] {
            tr(h, s, kind, id, "D01", on);
        }
    }
    for id in ["S1", "S2"] {
        for (h, s) in [(-14, 10), (1, 5), (10, 5)] {
            tr(h, s, "slc", id, "D01", true);
        }
    }
    // R4 came online at B+30min, in the gap before run B's start was
    // recorded: it counts from the start of run B.
    for (h, s) in [(-14, 10), (0, 1800), (10, 5)] {
        tr(h, s, "rtu", "R4", "D02", true);
    }
    // S6 was online in run A and never answered again: run B's start must not
    // inherit run A's state.
    tr(-14, 10, "slc", "S6", "D02", true);
    for (h, s, on) in [
        (-13, 0, true),
        (-11, 0, false),
        (1, 5, true),
        (3, 0, false),
        (10, 5, true),
    ] {
        tr(h, s, "slc", "S7", "D02", on);
    }
    // A device no longer in the inventory is ignored.
    tr(-14, 10, "slc", "GONE", "D01", true);

    // The hour [B-6h, B-5h): samples every 10 s, one more at B-5h so each
    // stands for 10 s. L1 on and lit; L2 on, energised, failed (power 0,
    // lamp-failure flag); L4 off; L6 on but unpowered (0 V); L7 on and lit
    // for the first half hour only (then silent: its last sample stands for 0 s).
    let mut lamps = Vec::new();
    for k in 0..=360 {
        let ts = at(-6, 10 * k);
        lamps.push(sample(ts, "L1", "D01", true, 220.0, 80.0, 0));
        lamps.push(sample(ts, "L2", "D01", true, 220.0, 0.0, 1));
        lamps.push(sample(ts, "L4", "D01", false, 220.0, 0.0, 0));
        lamps.push(sample(ts, "L6", "D02", true, 0.0, 0.0, 0));
        if k <= 180 {
            lamps.push(sample(ts, "L7", "D02", true, 220.0, 80.0, 0));
        }
    }
    db.write(&Batch {
        lamps,
        transitions: t,
        ..Batch::default()
    })
    .await
    .unwrap();
    // The gap matches the gateway's own (10 s polls × 3), so its maintenance
    // pass, should it roll these hours up too, writes the same.
    db.rollup(at(-6, 0), at(-4, 0), 30.0).await.unwrap();
}

fn close(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: expected null, got {got}"),
        Some(w) => {
            let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
            assert!((g - w).abs() < 1e-12, "{what}: expected {w}, got {g}");
        }
    }
}

fn r(num: f64, den: f64) -> Option<f64> {
    Some(num / den)
}

/// Checks one figures object: observed seconds, RTU and SLC online seconds
/// with the installed counts, lamp expected/lit seconds; the rates follow.
fn check(
    f: &Value,
    window: f64,
    observed: f64,
    rtu: (u64, f64),
    slc: (u64, f64),
    light: (f64, f64),
) {
    let what = format!("{} {}", f["from"], f["to"]);
    close(&f["window_seconds"], Some(window), &what);
    close(&f["observed_seconds"], Some(observed), &what);
    close(
        &f["coverage"],
        r(observed, window),
        &format!("{what} coverage"),
    );
    assert_eq!(f["rtus_installed"], rtu.0, "{what}");
    assert_eq!(f["slcs_installed"], slc.0, "{what}");
    close(
        &f["rtu_online_seconds"],
        Some(rtu.1),
        &format!("{what} rtu s"),
    );
    close(
        &f["slc_online_seconds"],
        Some(slc.1),
        &format!("{what} slc s"),
    );
    let rtu_mon = rtu.0 as f64 * window;
    let slc_mon = slc.0 as f64 * window;
    close(&f["rtu_monitored_seconds"], Some(rtu_mon), &what);
    close(&f["slc_monitored_seconds"], Some(slc_mon), &what);
    let rate = |n: f64, d: f64| if d > 0.0 { r(n, d) } else { None };
    close(
        &f["rtu_online_rate"],
        rate(rtu.1, rtu_mon),
        &format!("{what} rtu rate"),
    );
    close(
        &f["slc_online_rate"],
        rate(slc.1, slc_mon),
        &format!("{what} slc rate"),
    );
    close(&f["lamp_expected_lit_seconds"], Some(light.0), &what);
    close(&f["lamp_lit_seconds"], Some(light.1), &what);
    close(
        &f["lighting_rate"],
        rate(light.1, light.0),
        &format!("{what} lighting"),
    );
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(ADMIN_TOKEN, path).await
    }

    async fn rates(&self, from: DateTime<Utc>, to: DateTime<Utc>, extra: &str) -> Value {
        let path = format!(
            "/api/v1/metrics/online-rates?from={}&to={}{extra}",
            q(from),
            q(to)
        );
        let (status, body) = self.get(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

async fn scenario(url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    write_city(&dir.path().join("inventory"));
    let mut s = test_settings(dir.path());
    if let Some(u) = url {
        s.store.url = u.parse().unwrap();
    }
    s.poll.slc_interval = std::time::Duration::from_secs(10);
    s.poll.rtu_interval = std::time::Duration::from_secs(10);
    s.store.retention_days = 3650;
    s.auth.tokens.push(TokenConfig {
        name: "d02".into(),
        hash: hash_token(D02_TOKEN),
        role: Role::Viewer,
        district: Some("D02".into()),
    });
    let app = Application::build(s).await.unwrap();
    let api = Api {
        base: format!("http://{}", app.local_addr()),
        http: reqwest::Client::new(),
    };
    crate::common::eventually("store ready", || async {
        api.get("/readyz").await.1["store"]["state"] == "ok"
    })
    .await;
    let db = app.store().unwrap().db.clone();
    write_history(&db).await;

    // Window [B-12h, B+12h), local noon to noon, day buckets split at the
    // local midnight B. Observed: run A [B-12h, B-2h) 36000 s in day 1; run B
    // [B+1h, B+8h+60s) 25260 s and run C [B+10h, B+12h) 7200 s in day 2.
    let (from, to) = (at(-12, 0), at(12, 0));
    let (day1, day2, all) = (36000.0, 32460.0, 68460.0);
    // Online seconds, day 1 | day 2 (state at B-12h from the transitions at B-14h):
    // R1: [B-12h,B-6h) + [B-5h,B-2h) = 32400 | [B+1h+5s, B+8h+60s) 25255 + [B+10h+5s, B+12h) 7195 = 32450
    // R2: [B-12h,B-4h) = 28800 | 7195          S4: the same as R2
    // S1, S2: 36000 | 32450                    R4: 36000 | 25260 + 7195 = 32455
    // S6: 36000 | 0                            S7: [B-12h,B-11h) 3600 | 7195 + 7195 = 14390
    // Lighting (hour B-6h, day 1): D01 expected L1 3600 + L2 3600, lit L1 3600;
    // D02 expected = lit = L7 1800.
    let d01 = api.rates(from, to, "&district=D01&bucket=day").await;
    assert_eq!(d01["scope"], "D01");
    assert_eq!(d01["name"], "North");
    assert_eq!(d01["bucket"], "day");
    assert_eq!(d01["time_zone"], "Asia/Shanghai");
    let bk = d01["buckets"].as_array().unwrap();
    assert_eq!(bk.len(), 2, "{d01}");
    assert_eq!(bk[0]["to"], q(b()));
    check(
        &bk[0],
        43200.0,
        day1,
        (2, 61200.0),
        (3, 100800.0),
        (7200.0, 3600.0),
    );
    check(
        &bk[1],
        43200.0,
        day2,
        (2, 39645.0),
        (3, 72095.0),
        (0.0, 0.0),
    );
    check(
        &d01["total"],
        86400.0,
        all,
        (2, 100845.0),
        (3, 172895.0),
        (7200.0, 3600.0),
    );

    let d02 = api.rates(from, to, "&district=D02&bucket=day").await;
    let bk = d02["buckets"].as_array().unwrap();
    check(
        &bk[0],
        43200.0,
        day1,
        (1, 36000.0),
        (2, 39600.0),
        (1800.0, 1800.0),
    );
    check(
        &bk[1],
        43200.0,
        day2,
        (1, 32455.0),
        (2, 14390.0),
        (0.0, 0.0),
    );

    // D03 has no devices: every rate null, coverage as for the city.
    let d03 = api.rates(from, to, "&district=D03").await;
    check(&d03["total"], 86400.0, all, (0, 0.0), (0, 0.0), (0.0, 0.0));

    let city = api.rates(from, to, "&bucket=day").await;
    assert_eq!(city["scope"], "city");
    let bk = city["buckets"].as_array().unwrap();
    check(
        &bk[0],
        43200.0,
        day1,
        (3, 97200.0),
        (5, 140400.0),
        (9000.0, 5400.0),
    );
    check(
        &bk[1],
        43200.0,
        day2,
        (3, 72100.0),
        (5, 86485.0),
        (0.0, 0.0),
    );
    check(
        &city["total"],
        86400.0,
        all,
        (3, 169300.0),
        (5, 226885.0),
        (9000.0, 5400.0),
    );
    // Without a bucket: one bucket, the window.
    let whole = api.rates(from, to, "").await;
    assert_eq!(whole["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(whole["buckets"][0], whole["total"]);
    assert_eq!(whole["total"], city["total"]);

    // Hours around R1's outage, D01: R1 off in [B-6h, B-5h), R2 on throughout.
    let hours = api
        .rates(at(-7, 0), at(-4, 0), "&district=D01&bucket=hour")
        .await;
    let bk = hours["buckets"].as_array().unwrap();
    assert_eq!(bk.len(), 3);
    check(
        &bk[0],
        3600.0,
        3600.0,
        (2, 7200.0),
        (3, 10800.0),
        (0.0, 0.0),
    );
    check(
        &bk[1],
        3600.0,
        3600.0,
        (2, 3600.0),
        (3, 10800.0),
        (7200.0, 3600.0),
    );
    check(
        &bk[2],
        3600.0,
        3600.0,
        (2, 7200.0),
        (3, 10800.0),
        (0.0, 0.0),
    );

    // The monthly report, March 2025 in Shanghai: [02-28T16:00Z, 03-31T16:00Z),
    // 31 days = 2678400 s. Observed: A 43200 + B 25260 + C 10800 = 79260.
    // Online over the month (runs in full):
    // R1 28790 + 10800 + 25255 + 10795 = 75640; R2 35990 + 10795 = 46785;
    // S1 = S2 = 43190 + 25255 + 10795 = 79240; S4 = 46785;
    // R4 43190 + 25260 + 10795 = 79245; S6 43190; S7 7200 + 7195 + 10795 = 25190.
    let month = 2_678_400.0;
    let (status, rep) = api.get("/api/v1/reports/monthly?month=2025-03").await;
    assert_eq!(status, 200, "{rep}");
    assert_eq!(rep["from"], "2025-02-28T16:00:00Z");
    assert_eq!(rep["to"], "2025-03-31T16:00:00Z");
    let rows = rep["rows"].as_array().unwrap();
    let scopes: Vec<&str> = rows.iter().map(|r| r["scope"].as_str().unwrap()).collect();
    assert_eq!(scopes, ["D01", "D02", "D03", "city"]);
    let obs = 79260.0;
    check(
        &rows[0],
        month,
        obs,
        (2, 122425.0),
        (3, 205265.0),
        (7200.0, 3600.0),
    );
    check(
        &rows[1],
        month,
        obs,
        (1, 79245.0),
        (2, 68380.0),
        (1800.0, 1800.0),
    );
    check(&rows[2], month, obs, (0, 0.0), (0, 0.0), (0.0, 0.0));
    check(
        &rows[3],
        month,
        obs,
        (3, 201670.0),
        (5, 273645.0),
        (9000.0, 5400.0),
    );
    // From the inventory: D01 3 cabinets / 2 RTUs, 5 lamps / 3 SLCs; D02 1/1,
    // 2/2; D03 nothing; city 4/3, 7/5.
    let inv = [(3, 2, 5, 3), (1, 1, 2, 2), (0, 0, 0, 0), (4, 3, 7, 5)];
    for (row, (cab, rtu, lamps, slcs)) in rows.iter().zip(inv) {
        assert_eq!(row["cabinets_total"], cab);
        assert_eq!(row["lamps_total"], lamps);
        let ratio = |n: f64, d: f64| if d > 0.0 { r(n, d) } else { None };
        close(
            &row["rtu_installation_ratio"],
            ratio(rtu as f64, cab as f64),
            "install",
        );
        close(
            &row["slc_control_share"],
            ratio(slcs as f64, lamps as f64),
            "share",
        );
    }

    // CSV, by format= and by Accept.
    let csv_of = |res: reqwest::Response| async move {
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        res.text().await.unwrap()
    };
    let by_format = csv_of(
        api.http
            .get(format!(
                "{}/api/v1/reports/monthly?month=2025-03&format=csv",
                api.base
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let by_accept = csv_of(
        api.http
            .get(format!("{}/api/v1/reports/monthly?month=2025-03", api.base))
            .bearer_auth(ADMIN_TOKEN)
            .header("Accept", "text/csv")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_format, by_accept);
    let lines: Vec<&str> = by_format.lines().collect();
    assert_eq!(lines.len(), 5, "{by_format}");
    assert!(lines[0].starts_with("month,scope,name,cabinets_total,rtus_installed,rtu_installation_ratio_pct,rtu_online_rate_pct"));
    // D02: installation 100 %, RTU online 79245/2678400 = 2.96 %, control
    // share 100 %, SLC online 68380/5356800 = 1.28 %, the evaluation-grade
    // lighting rate empty (this written history has no evaluation ticks),
    // the SLC-monitored one 100 %, coverage 79260/2678400 = 2.96 %.
    assert!(
        lines[2].starts_with("2025-03,D02,South,1,1,100.00,2.96,2,2,100.00,1.28,,100.00,2.96,79245,2678400,68380,5356800,1800,1800"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with("2025-03,D03,Empty,0,0,,,0,0,,,,,2.96,"),
        "{}",
        lines[3]
    );

    // A district-scoped token gets its own district; another is unknown to
    // it (400, as an unknown district filter is).
    let (status, own) = api
        .get_as(
            D02_TOKEN,
            &format!("/api/v1/metrics/online-rates?from={}&to={}", q(from), q(to)),
        )
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["scope"], "D02");
    let (status, _) = api
        .get_as(
            D02_TOKEN,
            &format!(
                "/api/v1/metrics/online-rates?from={}&to={}&district=D01",
                q(from),
                q(to)
            ),
        )
        .await;
    assert_eq!(status, 400);
    let (status, rep) = api
        .get_as(D02_TOKEN, "/api/v1/reports/monthly?month=2025-03")
        .await;
    assert_eq!(status, 200);
    let scopes: Vec<&str> = rep["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["D02"]);
    let (status, _) = api
        .get_as(
            D02_TOKEN,
            "/api/v1/reports/monthly?month=2025-03&district=D01",
        )
        .await;
    assert_eq!(status, 400);

    // Bad input: 400 with a message that says what is wrong.
    let bad = [
        (format!("from={}&to={}", q(to), q(from)), "must be before"),
        (
            format!("from={}&to={}&district=NOPE", q(from), q(to)),
            "unknown district `NOPE`",
        ),
        (
            format!("from={}&to={}", q(from), q(from + Duration::days(94))),
            "at most 93 days",
        ),
        (
            format!(
                "from={}&to={}&bucket=hour",
                q(from),
                q(from + Duration::days(32))
            ),
            "hourly buckets",
        ),
        (
            format!("from={}&to={}&bucket=week", q(from), q(to)),
            "bucket `week`",
        ),
        (format!("from=yesterday&to={}", q(to)), "RFC 3339"),
        (format!("to={}", q(to)), "`from` is required"),
    ];
    for (query, msg) in bad {
        let (status, body) = api
            .get(&format!("/api/v1/metrics/online-rates?{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains(msg), "{query}: {m}");
    }
    for (query, msg) in [
        ("month=2025-13", "YYYY-MM"),
        ("month=March", "YYYY-MM"),
        ("", "`month` is required"),
        ("month=2025-03&format=xml", "format `xml`"),
        ("month=2025-03&district=NOPE", "unknown district"),
    ] {
        let (status, body) = api.get(&format!("/api/v1/reports/monthly?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains(msg), "{query}: {m}");
    }

    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn windowed_figures_sqlite() {
    scenario(None).await;
}

#[tokio::test]
async fn windowed_figures_postgres() {
    let db = PgTestDb::new().await;
    scenario(Some(db.url())).await;
    db.drop_db().await;
}
