//! Energy, the energy saving rate (节电率) and the lamps' maintenance figures
//! over HTTP, on a hand-built city whose night is written through the
//! store's write path with chosen timestamps, then rolled up. Every figure
//! asserted is worked out by hand in the comments, not by the code under
//! test; both backends.
//!
//! The night of 2025-03-15 in Shanghai (UTC+8). Samples every 10 minutes
//! from 17:00 to 07:00 next morning; a sample's counter delta is the energy
//! of the 10 minutes before it and lands in the hour the sample is in.
//! The schedule (D01 only): on at 18:00, 50 % at 00:00, off at 06:00.
//!
//! - L1 (S1, 120 W, C1/1, road RD1) follows it: 0.02 kWh a sample at 100 %,
//!   0.01 at 50 %. Per local hour: 18h 5 × 0.02 = 0.10 (the 18:00 sample
//!   covers 17:50–18:00, still off); 19h–23h 0.12 each; 00h 0.02 + 5 × 0.01
//!   = 0.07; 01h–05h 0.06 each; 06h 0.01. Mar 15: 0.70, Mar 16: 0.38,
//!   1.08 kWh in all (6 h × 120 W + 6 h × 60 W). On 18:00–06:00: 72 samples
//!   of 600 s = 12 h; switched on at 18:00 and off at 06:00: 2 switches.
//! - L2 (S2, 120 W, C1/1, RD1): as L1, but its counter restarts from 0 at
//!   02:00, and that sample's 0.01 kWh counts 0: 1.07 kWh (Mar 16: 0.37).
//! - L3 (150 W, C1/2, RD1, no SLC): on the circuit's contactor, 100 % all
//!   night; only the meter sees it.
//! - L4 (S4, 240 W, C2/1, no road): as L1 doubled (0.04/0.02 a sample) but
//!   its relay drops out at 21:00 for one sample: the 21:10 sample adds 0,
//!   so 2.16 − 0.04 = 2.12 kWh (Mar 15: 1.40 − 0.04 = 1.36, Mar 16: 0.76);
//!   on 71 samples = 42,600 s; switches off→on 18:00, on→off 21:00,
//!   off→on 21:10, on→off 06:00: 4.
//! - L5 (S5, 120 W, C3/1, RD2, in D02, which no calendar governs): on by
//!   itself 19:00–05:00, 50 % from 00:00: 19h 0.10; 20h–23h 0.12 each;
//!   00h 0.07; 01h–04h 0.06 each; 05h 0.01. Mar 15: 0.58, Mar 16: 0.32,
//!   0.90 kWh; on 60 samples = 36,000 s = 10 h; 2 switches.
//! - R1 (C1's meter): L1 + L2 + L3 + 30 W of line losses while the
//!   contactor is closed (18:00–06:00): 420 W = 0.07 kWh a sample at 100 %,
//!   300 W = 0.05 at 50 %. 18h 0.35; 19h–23h 0.42 each; 00h 0.07 + 5 × 0.05
//!   = 0.32; 01h–05h 0.30 each; 06h 0.05. Mar 15: 2.45, Mar 16: 1.87,
//!   4.32 kWh in all. A reading every hour from 17h to 07h: 7 metered
//!   cabinet-hours on Mar 15, 8 on Mar 16.
//! - R3 (C3's RTU) has no energy register: no meter, C3 is billed from S5.
//! - C2 has no RTU: billed from S4.

use crate::common::db::PgTestDb;
use crate::common::{eventually, test_settings, ADMIN_TOKEN};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::startup::Application;
use lamp_gateway::store::ingest::rows::micros;
use lamp_gateway::store::{Batch, Db, LampRow, RtuRow};
use serde_json::{json, Value};

const D02_TOKEN: &str = "lgw_test_energy_d02";

fn write_city(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("districts.csv"), "id,name\nD01,North\nD02,South\n").unwrap();
    std::fs::write(
        dir.join("roads.csv"),
        "id,name,district,class,lamps_planned\nRD1,Jiefang Road,D01,main,4\nRD2,Quancheng Road,D02,secondary,\n",
    )
    .unwrap();
    // The endpoints refuse connections: the live gateway sees nothing, the
    // history is what the test writes.
    std::fs::write(
        dir.join("cabinets.csv"),
        "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit\n\
         C1,D01,West gate,,,2,127.0.0.1:1,tcp,R1,rtu-cabinet,1\n\
         C2,D01,East yard,,,1,127.0.0.1:2,tcp,,,\n\
         C3,D02,Riverside,,,1,127.0.0.1:3,tcp,R3,rtu-cabinet,1\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("lamps.csv"),
        "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index,road\n\
         L1,C1,1,,,120,S1,slc-a-unit,2,,RD1\n\
         L2,C1,1,,,120,S2,slc-a-unit,3,,RD1\n\
         L3,C1,2,,,150,,,,,RD1\n\
         L4,C2,1,,,240,S4,slc-a-unit,2,,\n\
         L5,C3,1,,,120,S5,slc-a-unit,2,,RD2\n",
    )
    .unwrap();
}

/// Local midnight starting 2025-03-15 in Asia/Shanghai.
fn b() -> DateTime<Utc> {
    "2025-03-14T16:00:00Z".parse().unwrap()
}

fn q(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Minutes after local midnight of Mar 15 of sample k (17:00 + 10 k min).
fn minute(k: i64) -> i64 {
    17 * 60 + 10 * k
}

/// A lamp's night: on in [on, off) (minutes after Mar 15 00:00), at 100 %
/// before midnight and 50 % after; `out` a minute its relay is off.
struct Night {
    rated_w: f64,
    on: i64,
    off: i64,
    out: Option<i64>,
}

impl Night {
    fn lit(&self, m: i64) -> bool {
        m >= self.on && m < self.off && Some(m) != self.out
    }

    fn power_w(&self, m: i64) -> f64 {
        match (self.lit(m), m < 24 * 60) {
            (false, _) => 0.0,
            (true, true) => self.rated_w,
            (true, false) => self.rated_w / 2.0,
        }
    }
}

/// Energy in Wh of 10 minutes at `power_w`.
fn wh_10min(power_w: f64) -> f64 {
    power_w / 6.0
}

fn lamp_row(k: i64, lamp: &str, district: &str, on: bool, kwh: f64) -> LampRow {
    LampRow {
        time_us: micros(b() + Duration::minutes(minute(k))),
        lamp_id: lamp.into(),
        district: district.into(),
        on,
        dim_level: 100.0,
        voltage_v: Some(220.0),
        current_a: Some(0.5),
        power_w: Some(if on { 100.0 } else { 0.0 }),
        power_factor: Some(0.95),
        energy_kwh: Some(kwh),
        burning_hours: Some(1000.0),
        fault_flags: 0,
        commanded: None,
        should_be_lit: on,
        lit: on,
    }
}

fn rtu_row(k: i64, rtu: &str, district: &str, kwh: Option<f64>) -> RtuRow {
    RtuRow {
        time_us: micros(b() + Duration::minutes(minute(k))),
        rtu_id: rtu.into(),
        district: district.into(),
        circuits: 2,
        contactors: 0b11,
        voltage_v: [Some(220.0); 3],
        current_a: [Some(1.0); 3],
        active_power_w: Some(400.0),
        energy_kwh: kwh,
        door_alarm: false,
        leakage_alarm: false,
    }
}

/// The night above, written through the store's write path, rolled up.
async fn write_night(db: &Db) {
    const SAMPLES: i64 = 85; // 17:00 to 07:00 inclusive
    let lamps = [
        (
            "L1",
            "D01",
            Night {
                rated_w: 120.0,
                on: 18 * 60,
                off: 30 * 60,
                out: None,
            },
            None,
        ),
        // Counter restarts from 0 at 02:00 (minute 26 × 60).
        (
            "L2",
            "D01",
            Night {
                rated_w: 120.0,
                on: 18 * 60,
                off: 30 * 60,
                out: None,
            },
            Some(26 * 60),
        ),
        (
            "L4",
            "D01",
            Night {
                rated_w: 240.0,
                on: 18 * 60,
                off: 30 * 60,
                out: Some(21 * 60),
            },
            None,
        ),
        (
            "L5",
            "D02",
            Night {
                rated_w: 120.0,
                on: 19 * 60,
                off: 29 * 60,
                out: None,
            },
            None,
        ),
    ];
    let mut batch = Batch::default();
    for (id, district, night, reset) in &lamps {
        let mut wh = 50_000.0;
        for k in 0..SAMPLES {
            let m = minute(k);
            if k > 0 {
                wh += wh_10min(night.power_w(m - 10));
            }
            if Some(m) == *reset {
                wh = 0.0;
            }
            batch
                .lamps
                .push(lamp_row(k, id, district, night.lit(m), wh / 1000.0));
        }
    }
    // R1: L1 + L2 at their level, L3 at 150 W and 30 W of losses while the
    // contactor is closed.
    let contactor = Night {
        rated_w: 0.0,
        on: 18 * 60,
        off: 30 * 60,
        out: None,
    };
    let l1 = &lamps[0].2;
    let mut wh = 80_000.0;
    for k in 0..SAMPLES {
        let m = minute(k);
        if k > 0 && contactor.lit(m - 10) {
            let p = 2.0 * l1.power_w(m - 10) + 150.0 + 30.0;
            wh += wh_10min(p);
        }
        batch.rtus.push(rtu_row(k, "R1", "D01", Some(wh / 1000.0)));
        batch.rtus.push(rtu_row(k, "R3", "D02", None));
    }
    db.write(&batch).await.unwrap();
    // The gap matches the gateway's own (300 s polls × 3), so its
    // maintenance pass, should it roll these hours up too, writes the same.
    db.rollup(b(), b() + Duration::hours(48), 900.0)
        .await
        .unwrap();
}

fn close(got: &Value, want: f64, what: &str) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: expected {want}, got {got}"));
    assert!((g - want).abs() < 1e-9, "{what}: expected {want}, got {g}");
}

/// One energy figures object: energy, source, meter, SLCs, the SLCs in the
/// metered hours (meter and difference `null` when no meter read).
fn check_energy(f: &Value, energy: f64, source: &str, meter: Option<(f64, f64)>, slc: f64) {
    let what = format!("{} {}", f["from"], f["to"]);
    close(&f["energy_kwh"], energy, &format!("{what} energy"));
    assert_eq!(f["source"], source, "{what}: {f}");
    close(&f["slc_kwh"], slc, &format!("{what} slc"));
    match meter {
        Some((m, metered_slc)) => {
            close(&f["meter_kwh"], m, &format!("{what} meter"));
            close(
                &f["metered_slc_kwh"],
                metered_slc,
                &format!("{what} metered slc"),
            );
            close(
                &f["difference_kwh"],
                m - metered_slc,
                &format!("{what} difference"),
            );
        }
        None => {
            assert!(f["meter_kwh"].is_null(), "{what}: {f}");
            assert!(f["difference_kwh"].is_null(), "{what}: {f}");
        }
    }
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

    async fn ok(&self, path: &str) -> Value {
        let (status, body) = self.get_as(ADMIN_TOKEN, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }
}

/// The row of `rows` with this id.
fn row(rows: &Value, id: Value) -> &Value {
    rows["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {rows}"))
}

async fn scenario(url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    write_city(&dir.path().join("inventory"));
    std::fs::write(
        dir.path().join("schedule.json"),
        json!({
            "programs": [{"id": "night", "points": [
                {"at": "18:00", "level": "on"},
                {"at": "00:00", "level": 50},
                {"at": "06:00", "level": "off"}
            ]}],
            "calendars": [{"id": "north", "rules": [], "default_program": "night"}],
            "assignments": [{"id": "north", "calendar": "north", "scope": {"district": "D01"}}]
        })
        .to_string(),
    )
    .unwrap();
    let mut s = test_settings(dir.path());
    if let Some(u) = url {
        s.store.url = u.parse().unwrap();
    }
    s.poll.slc_interval = std::time::Duration::from_secs(300);
    s.poll.rtu_interval = std::time::Duration::from_secs(300);
    s.store.retention_days = 3650;
    // D02's measured energy before the retrofit: 2.4 kWh a day.
    s.figures
        .energy
        .baseline_kwh_per_day
        .insert("D02".into(), 2.4);
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
    eventually("store ready", || async {
        api.get_as(ADMIN_TOKEN, "/readyz").await.1["store"]["state"] == "ok"
    })
    .await;
    let db = app.store().unwrap().db.clone();
    write_night(&db).await;

    // Energy over Mar 15–16, by local day.
    let (from, to) = (b(), b() + Duration::hours(48));
    let day = |r: &Value, i: usize| r["buckets"][i].clone();
    let path = |by: &str, extra: &str| {
        format!(
            "/api/v1/metrics/energy?from={}&to={}&by={by}{extra}",
            q(from),
            q(to)
        )
    };
    let cabinets = api.ok(&path("cabinet", "&bucket=day")).await;
    assert_eq!(cabinets["by"], "cabinet");
    assert_eq!(cabinets["bucket"], "day");
    assert_eq!(cabinets["time_zone"], "Asia/Shanghai");
    // C1 from its meter: Mar 15 2.45 with its SLCs 0.70 + 0.70 = 1.40;
    // Mar 16 1.87 with 0.38 + 0.37 = 0.75; the window 4.32 with 2.15, a
    // difference of 2.17 (L3's 12 h × 150 W = 1.80, 12 h × 30 W of losses
    // = 0.36, and L2's 0.01 its reset lost).
    let c1 = row(&cabinets, json!("C1"));
    assert_eq!(c1["buckets"].as_array().unwrap().len(), 2);
    assert_eq!(day(c1, 0)["to"], q(b() + Duration::hours(24)));
    check_energy(&day(c1, 0), 2.45, "meter", Some((2.45, 1.40)), 1.40);
    check_energy(&day(c1, 1), 1.87, "meter", Some((1.87, 0.75)), 0.75);
    check_energy(&c1["total"], 4.32, "meter", Some((4.32, 2.15)), 2.15);
    close(&c1["total"]["difference_kwh"], 2.17, "C1 difference");
    assert_eq!(c1["total"]["meter_hours"], 15);
    assert_eq!(c1["total"]["slc_hours"], 0);
    assert_eq!(
        (c1["lamps"].clone(), c1["slcs"].clone()),
        (json!(3), json!(2))
    );
    // C2 has no RTU, C3's has no meter: their SLCs.
    let c2 = row(&cabinets, json!("C2"));
    check_energy(&day(c2, 0), 1.36, "slc", None, 1.36);
    check_energy(&c2["total"], 2.12, "slc", None, 2.12);
    assert_eq!(c2["total"]["slc_hours"], 15);
    let c3 = row(&cabinets, json!("C3"));
    check_energy(&day(c3, 0), 0.58, "slc", None, 0.58);
    check_energy(&day(c3, 1), 0.32, "slc", None, 0.32);

    // Rolled up again from passes that start mid-night (20:00 and 02:00
    // local): the same hours, the same figures.
    db.rollup(b() + Duration::hours(20), b() + Duration::hours(26), 900.0)
        .await
        .unwrap();
    db.rollup(b() + Duration::hours(26), b() + Duration::hours(48), 900.0)
        .await
        .unwrap();
    assert_eq!(api.ok(&path("cabinet", "&bucket=day")).await, cabinets);

    // Districts: D01 Mar 15 2.45 + 1.36 = 3.81, Mar 16 1.87 + 0.76 = 2.63,
    // 6.44 in all; D02 0.90. The city: 7.34, meter 4.32, SLCs 2.15 + 2.12
    // + 0.90 = 5.17, of which 2.15 in metered hours.
    let districts = api.ok(&path("district", "&bucket=day")).await;
    let d01 = row(&districts, json!("D01"));
    check_energy(
        &day(d01, 0),
        3.81,
        "meter_and_slc",
        Some((2.45, 1.40)),
        2.76,
    );
    check_energy(
        &day(d01, 1),
        2.63,
        "meter_and_slc",
        Some((1.87, 0.75)),
        1.51,
    );
    check_energy(
        &d01["total"],
        6.44,
        "meter_and_slc",
        Some((4.32, 2.15)),
        4.27,
    );
    let d02 = row(&districts, json!("D02"));
    check_energy(&d02["total"], 0.90, "slc", None, 0.90);
    let city = api.ok(&path("city", "&bucket=month")).await;
    assert_eq!(city["scope"], "city");
    let rows = city["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    // One month bucket, clipped to the window.
    assert_eq!(rows[0]["buckets"].as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["buckets"][0]["from"], q(from));
    check_energy(
        &rows[0]["total"],
        7.34,
        "meter_and_slc",
        Some((4.32, 2.15)),
        5.17,
    );
    assert_eq!(rows[0]["lamps"], 5);
    // `by` left out is the city's one row, without buckets one: the window.
    let whole = api
        .ok(&format!(
            "/api/v1/metrics/energy?from={}&to={}",
            q(from),
            q(to)
        ))
        .await;
    assert_eq!(whole["rows"][0]["total"], rows[0]["total"]);
    assert_eq!(whole["rows"][0]["buckets"][0], rows[0]["total"]);

    // Circuits and roads from the SLCs alone: C1/1 L1 + L2 = 2.15; C1/2 has
    // only L3, which no SLC measures; C2/1 2.12; C3/1 0.90. Road RD1 (L1,
    // L2, L3) 2.15; D01's lamps on no road (L4) 2.12; RD2 (L5) 0.90.
    let circuits = api.ok(&path("circuit", "")).await;
    check_energy(
        &row(&circuits, json!("C1/1"))["total"],
        2.15,
        "slc",
        None,
        2.15,
    );
    check_energy(
        &row(&circuits, json!("C1/2"))["total"],
        0.0,
        "none",
        None,
        0.0,
    );
    check_energy(
        &row(&circuits, json!("C2/1"))["total"],
        2.12,
        "slc",
        None,
        2.12,
    );
    check_energy(
        &row(&circuits, json!("C3/1"))["total"],
        0.90,
        "slc",
        None,
        0.90,
    );
    assert_eq!(circuits["rows"].as_array().unwrap().len(), 4);
    let roads = api.ok(&path("road", "")).await;
    let rd1 = row(&roads, json!("RD1"));
    assert_eq!(rd1["name"], "Jiefang Road");
    assert_eq!(
        (rd1["lamps"].clone(), rd1["slcs"].clone()),
        (json!(3), json!(2))
    );
    check_energy(&rd1["total"], 2.15, "slc", None, 2.15);
    let none = row(&roads, Value::Null);
    assert_eq!(none["name"], "(no road)");
    assert_eq!(none["district"], "D01");
    check_energy(&none["total"], 2.12, "slc", None, 2.12);
    check_energy(&row(&roads, json!("RD2"))["total"], 0.90, "slc", None, 0.90);
    assert_eq!(roads["rows"].as_array().unwrap().len(), 3);

    // The saving over local noon to noon (the night whole).
    // D01 baseline: L1 and L2 12 h × 120 W = 1.44 each, L3 12 h × 150 W
    // (its circuit's contactor) = 1.80, L4 12 h × 240 W = 2.88: every
    // scheduled hour measured (C1 metered, C2/1's one SLC reporting) = 7.56
    // kWh. Actual 4.32 + 2.12 = 6.44: saving 1 − 6.44 ÷ 7.56 = 1.12 ÷ 7.56.
    // D02: no calendar, so computed from L5's measured 10 h × 120 W = 1.20,
    // but the settings' 2.4 kWh a day over 24 h = 2.4 replace it: 1 − 0.90
    // ÷ 2.4 = 0.625. The city: 1 − 7.34 ÷ 9.96 = 2.62 ÷ 9.96.
    let (noon, next_noon) = (b() + Duration::hours(12), b() + Duration::hours(36));
    let saving = api
        .ok(&format!(
            "/api/v1/metrics/saving?from={}&to={}",
            q(noon),
            q(next_noon)
        ))
        .await;
    close(&saving["window_seconds"], 86_400.0, "window");
    let d01 = &saving["districts"][0];
    assert_eq!(d01["scope"], "D01");
    close(&d01["actual"]["energy_kwh"], 6.44, "D01 actual");
    assert_eq!(d01["actual"]["source"], "meter_and_slc");
    let bl = &d01["baseline"];
    assert_eq!(bl["source"], "computed");
    close(&bl["kwh"], 7.56, "D01 baseline");
    close(&bl["computed_kwh"], 7.56, "D01 computed");
    close(&bl["rated_kw"], 0.63, "D01 rated");
    close(&bl["scheduled_lamp_hours"], 48.0, "D01 scheduled");
    close(&bl["counted_lamp_hours"], 48.0, "D01 counted");
    assert_eq!(bl["lamps_scheduled"], 4);
    assert_eq!(bl["lamps_measured"], 0);
    assert!(bl["settings_kwh"].is_null());
    close(&d01["saving_rate"], 1.12 / 7.56, "D01 saving");
    close(&d01["saved_kwh"], 1.12, "D01 saved");
    let d02 = &saving["districts"][1];
    let bl = &d02["baseline"];
    assert_eq!(bl["source"], "settings");
    close(&bl["kwh"], 2.4, "D02 baseline");
    close(&bl["settings_kwh_per_day"], 2.4, "D02 per day");
    close(&bl["computed_kwh"], 1.20, "D02 computed");
    close(&bl["measured_lamp_hours"], 10.0, "D02 measured");
    assert_eq!(bl["lamps_measured"], 1);
    close(&d02["saving_rate"], 0.625, "D02 saving");
    let total = &saving["total"];
    assert_eq!(total["scope"], "city");
    assert_eq!(total["baseline"]["source"], "settings_and_computed");
    close(&total["baseline"]["kwh"], 9.96, "city baseline");
    close(&total["actual"]["energy_kwh"], 7.34, "city actual");
    close(&total["saving_rate"], 2.62 / 9.96, "city saving");
    crate::report::check_period_report(&api.base, &api.http, &q(noon), &q(next_noon), "2025-03")
        .await;

    // Maintenance over the two days, in inventory order.
    let maint = |extra: &str| {
        format!(
            "/api/v1/metrics/maintenance?from={}&to={}{extra}",
            q(from),
            q(to)
        )
    };
    let page = api.ok(&maint("")).await;
    assert_eq!(page["total"], 5);
    let items = page["items"].as_array().unwrap();
    let ids: Vec<&str> = items
        .iter()
        .map(|i| i["lamp_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["L1", "L2", "L3", "L4", "L5"]);
    // Burning hours, switches, kWh (from the comments at the top).
    for (item, hours, switches, kwh) in [
        (&items[0], 12.0, 2, 1.08),
        (&items[1], 12.0, 2, 1.07),
        (&items[3], 42_600.0 / 3600.0, 4, 2.12),
        (&items[4], 10.0, 2, 0.90),
    ] {
        let what = item["lamp_id"].as_str().unwrap();
        close(&item["burning_hours"], hours, what);
        assert_eq!(item["switches"], switches, "{what}");
        close(&item["energy_kwh"], kwh, what);
        // Samples 17:00 to 07:00: 15 hours with one.
        assert_eq!(item["hours_reported"], 15, "{what}");
    }
    assert_eq!(items[0]["road"], "RD1");
    assert!(items[2]["burning_hours"].is_null(), "{}", items[2]);
    assert!(items[2]["slc_id"].is_null());
    let page = api.ok(&maint("&limit=2&offset=1")).await;
    assert_eq!(page["total"], 5);
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lamp_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["L2", "L3"]);

    // A district token: its own district, and another is unknown to it.
    let (status, own) = api.get_as(D02_TOKEN, &maint("")).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["total"], 1);
    assert_eq!(own["items"][0]["lamp_id"], "L5");
    let (status, own) = api.get_as(D02_TOKEN, &path("district", "")).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["scope"], "D02");
    let rows = own["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    check_energy(&rows[0]["total"], 0.90, "slc", None, 0.90);
    let (status, own) = api
        .get_as(
            D02_TOKEN,
            &format!(
                "/api/v1/metrics/saving?from={}&to={}",
                q(noon),
                q(next_noon)
            ),
        )
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["total"]["scope"], "D02");
    close(&own["total"]["saving_rate"], 0.625, "D02 token saving");
    assert_eq!(own["districts"].as_array().unwrap().len(), 1);
    for p in [
        path("cabinet", "&district=D01"),
        maint("&district=D01"),
        format!(
            "/api/v1/metrics/saving?from={}&to={}&district=D01",
            q(noon),
            q(next_noon)
        ),
    ] {
        let (status, body) = api.get_as(D02_TOKEN, &p).await;
        assert_eq!(status, 400, "{p}: {body}");
    }

    // Bad input: 400 naming what is wrong.
    for (p, msg) in [
        (path("street", ""), "by `street`"),
        (path("city", "&bucket=hour"), "`day` or `month`"),
        (path("city", "&bucket=week"), "bucket `week`"),
        (
            format!(
                "/api/v1/metrics/energy?from={}&to={}",
                q(from),
                q(from + Duration::days(94))
            ),
            "at most 93 days",
        ),
        (
            format!(
                "/api/v1/metrics/maintenance?from={}&to={}",
                q(from),
                q(from + Duration::days(367))
            ),
            "at most 366 days",
        ),
        (maint("&limit=0"), "limit"),
        (
            format!("/api/v1/metrics/saving?from={}&to={}", q(to), q(from)),
            "must be before",
        ),
        (
            format!("/api/v1/metrics/saving?to={}", q(to)),
            "`from` is required",
        ),
    ] {
        let (status, body) = api.get_as(ADMIN_TOKEN, &p).await;
        assert_eq!(status, 400, "{p}: {body}");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains(msg), "{p}: {m}");
    }

    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn energy_saving_and_maintenance_sqlite() {
    scenario(None).await;
}

#[tokio::test]
async fn energy_saving_and_maintenance_postgres() {
    let db = PgTestDb::new().await;
    scenario(Some(db.url())).await;
    db.drop_db().await;
}
