//! The figures from alarms over a window (`/metrics/alarms`) and in the
//! monthly report (JSON and CSV), on alarms with known times written into
//! the store the way the gateway's ingest writes them (`Db::write` of
//! batches of alarm records, each change a new version, a replay after the
//! changes); both backends. Every figure is worked out by hand in the
//! comments, not by the code under test.

use crate::common::db::PgTestDb;
use crate::common::{eventually, test_settings, ADMIN_TOKEN};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use lamp_gateway::alarm::{Alarm, AlarmFilter, AlarmKind, AlarmState, DeviceKind, Severity};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::startup::Application;
use lamp_gateway::store::{Batch, Db};
use serde_json::Value;

const D02_TOKEN: &str = "lgw_test_alarm_store_d02";

/// D01 "North": C1 (RTU R1; L1/S1 and L2/S2 on circuit 1, L3 without SLC on
/// circuit 2), C2 (RTU R2; L4/S4 on circuit 1), C3 (no RTU; L5 on circuit
/// 1). D02 "South": C4 (RTU R4; L6/S6 on circuit 1, L7/S7 on circuit 2).
/// D03 "Empty". The endpoints refuse connections: what the live engine
/// raises about them is raised now, far from the windows below.
///
/// Facilities: D01 5 lamps + 4 circuits with lamps (C1/1, C1/2, C2/1, C3/1)
/// + 3 cabinets = 12; D02 2 + 2 (C4/1, C4/2) + 1 = 5; D03 0; city 17.
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

/// B: local midnight starting 2025-03-15 in Asia/Shanghai (UTC+8).
fn b() -> DateTime<Utc> {
    "2025-03-14T16:00:00Z".parse().unwrap()
}

fn at(s: i64) -> DateTime<Utc> {
    b() + Duration::seconds(s)
}

fn q(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An alarm raised `raised` seconds after B (version 1, active), with the
/// default severity of its kind and that severity's default repair time as
/// its deadline: emergency 1 h, serious 3 days, ordinary 24 h.
fn raised(id: i64, kind: AlarmKind, device: &str, district: &str, raised: i64) -> Alarm {
    let severity = kind.default_severity();
    let repair = match severity {
        Severity::Emergency => 3600,
        Severity::Serious => 3 * 86_400,
        Severity::Ordinary => 86_400,
    };
    // How the engine names each subject: a lamp by its id, a circuit as
    // CABINET/n with both parts, a cabinet's flags by the cabinet, an RTU's
    // silence by the RTU.
    let (device_kind, cabinet, circuit) = match kind {
        AlarmKind::SupplyLoss | AlarmKind::ContactorFailure => {
            let (c, n) = device.split_once('/').unwrap();
            (DeviceKind::Circuit, Some(c.to_string()), n.parse().ok())
        }
        AlarmKind::Leakage | AlarmKind::DoorOpen => {
            (DeviceKind::Cabinet, Some(device.to_string()), None)
        }
        AlarmKind::CommsLost if device.starts_with('R') => (DeviceKind::Rtu, None, None),
        _ => (DeviceKind::Lamp, None, Some(1)),
    };
    Alarm {
        id,
        kind,
        severity,
        state: AlarmState::Active,
        device_kind,
        device_id: device.into(),
        circuit,
        cabinet,
        district: district.into(),
        raised_at: at(raised),
        acknowledged_at: None,
        acknowledged_by: None,
        comment: None,
        cleared_at: None,
        closed_at: None,
        occurrences: 1,
        deadline: at(raised + repair),
        overdue: false,
        detail: serde_json::json!({}),
        version: 1,
    }
}

fn cleared(a: &Alarm, s: i64) -> Alarm {
    Alarm {
        state: AlarmState::Cleared,
        cleared_at: Some(at(s)),
        version: a.version + 1,
        ..a.clone()
    }
}

fn closed(a: &Alarm, s: i64) -> Alarm {
    Alarm {
        state: AlarmState::Closed,
        closed_at: Some(at(s)),
        version: a.version + 1,
        ..a.clone()
    }
}

/// The alarms, times in seconds from B ("TTR": time to repair):
/// - a1 lamp_failure L1 (D01, ordinary), raised −3600, cleared 1800: TTR 5400
/// - a2 power_abnormal L1 (D01, ordinary), raised 900, cleared 7200: TTR 6300
/// - a3 supply_loss C1/1 (D01, serious), raised 3600, cleared 14400: TTR 10800
/// - a4 contactor_failure C2/1 (D01, serious, deadline 40000 + 259200 =
///   299200), raised 40000, never cleared
/// - a5 leakage C2 (D01, emergency, deadline 23600), raised 20000, cleared
///   27200: TTR 7200, late
/// - a6 comms_lost R1 (D01, ordinary), raised 5000, cleared 6000: TTR 1000
/// - a7 lamp_failure L6 (D02, ordinary, deadline −90000 + 86400 = −3600),
///   raised −90000, never cleared
/// - a8 door_open C4 (D02, ordinary), raised 100, cleared 400: TTR 300
/// - a9 lamp_failure L7 (D02), raised 50000, closed at 51000 uncleared
/// - a10 lamp_failure L2 (D01), raised −10000, cleared −5000: TTR 5000
/// - a11 lamp_failure L4 (D01), raised 100000, cleared 103600: TTR 3600
///
/// Written as the gateway writes them: each raise as version 1, each
/// later change as the next version in a later batch, then the raises
/// replayed (a spool replays at least once): the store keeps the newest.
/// Returns each alarm at its newest version, as the store should hold it.
async fn write_alarms(db: &Db) -> Vec<Alarm> {
    use AlarmKind::*;
    let v1 = vec![
        raised(1, LampFailure, "L1", "D01", -3600),
        raised(2, PowerAbnormal, "L1", "D01", 900),
        raised(3, SupplyLoss, "C1/1", "D01", 3600),
        raised(4, ContactorFailure, "C2/1", "D01", 40_000),
        raised(5, Leakage, "C2", "D01", 20_000),
        raised(6, CommsLost, "R1", "D01", 5000),
        raised(7, LampFailure, "L6", "D02", -90_000),
        raised(8, DoorOpen, "C4", "D02", 100),
        raised(9, LampFailure, "L7", "D02", 50_000),
        raised(10, LampFailure, "L2", "D01", -10_000),
        raised(11, LampFailure, "L4", "D01", 100_000),
    ];
    let changes = vec![
        cleared(&v1[0], 1800),
        cleared(&v1[1], 7200),
        cleared(&v1[2], 14_400),
        cleared(&v1[4], 27_200),
        cleared(&v1[5], 6000),
        cleared(&v1[7], 400),
        closed(&v1[8], 51_000),
        cleared(&v1[9], -5000),
        cleared(&v1[10], 103_600),
    ];
    let mut newest: std::collections::BTreeMap<i64, Alarm> =
        v1.iter().map(|a| (a.id, a.clone())).collect();
    for a in &changes {
        newest.insert(a.id, a.clone());
    }
    for alarms in [v1.clone(), changes, v1] {
        db.write(&Batch {
            alarms,
            ..Batch::default()
        })
        .await
        .unwrap();
    }
    newest.into_values().collect()
}

/// The store's SQL rendering of a filter lets through exactly the alarms
/// its in-memory `matches` does (the engine's open alarms are matched in
/// memory, closed ones in SQL: one list must mean one thing).
async fn filters_agree(db: &Db, written: &[Alarm]) {
    use AlarmKind::*;
    let now = at(30_000);
    let filters = [
        AlarmFilter::default(),
        AlarmFilter {
            states: [AlarmState::Active, AlarmState::Acknowledged].into(),
            ..AlarmFilter::default()
        },
        AlarmFilter {
            states: [AlarmState::Closed].into(),
            visible: Some(vec!["D02".into()]),
            ..AlarmFilter::default()
        },
        AlarmFilter {
            kind: Some(LampFailure),
            raised_from: Some(at(-10_000)),
            raised_to: Some(at(100_000)),
            ..AlarmFilter::default()
        },
        AlarmFilter {
            overdue: Some(true),
            ..AlarmFilter::default()
        },
        AlarmFilter {
            overdue: Some(false),
            district: Some("D01".into()),
            severity: Some(Severity::Ordinary),
            ..AlarmFilter::default()
        },
        AlarmFilter {
            cabinet: Some("C2".into()),
            ..AlarmFilter::default()
        },
        AlarmFilter {
            device_id: Some("L1".into()),
            visible: Some(vec!["D01".into(), "D02".into()]),
            ..AlarmFilter::default()
        },
        AlarmFilter {
            visible: Some(vec![]),
            ..AlarmFilter::default()
        },
    ];
    // The live engine raises its own alarms about the refused endpoints,
    // now: far past B, and kept out of the comparison by the window.
    for mut f in filters {
        f.raised_to = f.raised_to.or(Some(at(10 * 86_400)));
        let (total, got) = db.alarms(&f, 100, 0, now).await.unwrap();
        let got: Vec<i64> = got.iter().map(|a| a.id).collect();
        let mut want: Vec<&Alarm> = written.iter().filter(|a| f.matches(a, now)).collect();
        want.sort_by_key(|a| std::cmp::Reverse((a.raised_at, a.id)));
        let want: Vec<i64> = want.iter().map(|a| a.id).collect();
        assert_eq!(got, want, "{f:?}");
        assert_eq!(total as usize, want.len(), "{f:?}");
    }
}

fn close(got: &Value, want: Option<f64>, what: &str) {
    match want {
        None => assert!(got.is_null(), "{what}: expected null, got {got}"),
        Some(w) => {
            let g = got.as_f64().unwrap_or_else(|| panic!("{what}: {got}"));
            assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{what}: expected {w}, got {g}"
            );
        }
    }
}

/// One severity's repairs: cleared, within deadline, mean and p90 seconds.
type Repair = (u64, u64, Option<f64>, Option<f64>);

/// What one scope's figures must be, by hand.
struct Want {
    raised: u64,
    raised_by_kind: &'static [(&'static str, u64)],
    cleared: u64,
    cleared_by_kind: &'static [(&'static str, u64)],
    /// Emergency, serious, ordinary.
    repair: [Repair; 3],
    within: u64,
    overdue: u64,
    facilities: u64,
    fault_seconds: f64,
}

fn check(f: &Value, w: &Want, window: f64) {
    let what = f["scope"].as_str().unwrap_or("?").to_string();
    assert_eq!(f["raised"], w.raised, "{what} raised: {f}");
    assert_eq!(f["cleared"], w.cleared, "{what} cleared: {f}");
    for kind in AlarmKind::ALL {
        let k = kind.as_str();
        let want = |list: &[(&str, u64)]| list.iter().find(|e| e.0 == k).map_or(0, |e| e.1);
        assert_eq!(
            f["raised_by_kind"][k],
            want(w.raised_by_kind),
            "{what} raised {k}"
        );
        assert_eq!(
            f["cleared_by_kind"][k],
            want(w.cleared_by_kind),
            "{what} cleared {k}"
        );
    }
    for (sev, (n, within, mean, p90)) in ["emergency", "serious", "ordinary"].iter().zip(w.repair) {
        let r = &f["repair"][sev];
        assert_eq!(r["cleared"], n, "{what} {sev}: {r}");
        assert_eq!(r["within_deadline"], within, "{what} {sev}");
        close(&r["mean_seconds"], mean, &format!("{what} {sev} mean"));
        close(&r["p90_seconds"], p90, &format!("{what} {sev} p90"));
        let share = (n > 0).then(|| within as f64 / n as f64);
        close(
            &r["within_deadline_share"],
            share,
            &format!("{what} {sev} share"),
        );
    }
    assert_eq!(f["within_deadline"], w.within, "{what}");
    let share = (w.cleared > 0).then(|| w.within as f64 / w.cleared as f64);
    close(&f["within_deadline_share"], share, &format!("{what} share"));
    assert_eq!(f["open_overdue"], w.overdue, "{what} overdue");
    assert_eq!(f["facilities"], w.facilities, "{what}");
    let total = w.facilities as f64 * window;
    close(&f["facility_seconds"], Some(total), &format!("{what} fs"));
    close(
        &f["facility_fault_seconds"],
        Some(w.fault_seconds),
        &format!("{what} fault s"),
    );
    close(
        &f["facility_intact_seconds"],
        Some(total - w.fault_seconds),
        &format!("{what} intact s"),
    );
    let rate = (total > 0.0).then(|| (total - w.fault_seconds) / total);
    close(&f["facility_intact_rate"], rate, &format!("{what} rate"));
}

/// The window [B, B + 1 day), 86400 s. Clipped to it (overlaps once):
/// D01: L1 a1 [0, 1800) ∪ a2 [900, 7200) = 7200; C1/1 a3 10800; C2/1 a4
/// [40000, 86400) = 46400; C2 a5 7200; a6 is comms loss, no fault: 71600 of
/// 12 × 86400 = 1036800, intact 965200. Raised in it: a2..a6 (a1 before).
/// Cleared: a1, a2, a3, a5, a6. Ordinary TTR 5400, 6300, 1000: mean 12700 /
/// 3, p90 the ⌈2.7⌉ = 3rd smallest 6300, all within 24 h; serious 10800
/// within; emergency 7200, late: within 4 of 5. a4 stands at the end within
/// its deadline: none overdue.
fn day_d01() -> Want {
    Want {
        raised: 5,
        raised_by_kind: &[
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("contactor_failure", 1),
            ("leakage", 1),
            ("comms_lost", 1),
        ],
        cleared: 5,
        cleared_by_kind: &[
            ("lamp_failure", 1),
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("leakage", 1),
            ("comms_lost", 1),
        ],
        repair: [
            (1, 0, Some(7200.0), Some(7200.0)),
            (1, 1, Some(10_800.0), Some(10_800.0)),
            (3, 3, Some(12_700.0 / 3.0), Some(6300.0)),
        ],
        within: 4,
        overdue: 0,
        facilities: 12,
        fault_seconds: 71_600.0,
    }
}

/// D02 over the day: L6 faulty all day (a7, raised before) 86400 + L7 a9
/// [50000, 51000) 1000 = 87400 of 5 × 86400 = 432000. Raised a8, a9;
/// cleared a8 (TTR 300, within); a7 stands at the end past its deadline
/// (−3600): 1 overdue; a9 was closed, no repair.
fn day_d02() -> Want {
    Want {
        raised: 2,
        raised_by_kind: &[("door_open", 1), ("lamp_failure", 1)],
        cleared: 1,
        cleared_by_kind: &[("door_open", 1)],
        repair: [
            (0, 0, None, None),
            (0, 0, None, None),
            (1, 1, Some(300.0), Some(300.0)),
        ],
        within: 1,
        overdue: 1,
        facilities: 5,
        fault_seconds: 87_400.0,
    }
}

fn empty_d03() -> Want {
    Want {
        raised: 0,
        raised_by_kind: &[],
        cleared: 0,
        cleared_by_kind: &[],
        repair: [(0, 0, None, None); 3],
        within: 0,
        overdue: 0,
        facilities: 0,
        fault_seconds: 0.0,
    }
}

/// The city over the day: the sums, the ordinary TTRs together 300, 1000,
/// 5400, 6300: mean 13000 / 4 = 3250, p90 the ⌈3.6⌉ = 4th, 6300; within 5
/// of 6; 159000 faulty of 17 × 86400.
fn day_city() -> Want {
    Want {
        raised: 7,
        raised_by_kind: &[
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("contactor_failure", 1),
            ("leakage", 1),
            ("comms_lost", 1),
            ("door_open", 1),
            ("lamp_failure", 1),
        ],
        cleared: 6,
        cleared_by_kind: &[
            ("lamp_failure", 1),
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("leakage", 1),
            ("comms_lost", 1),
            ("door_open", 1),
        ],
        repair: [
            (1, 0, Some(7200.0), Some(7200.0)),
            (1, 1, Some(10_800.0), Some(10_800.0)),
            (4, 4, Some(3250.0), Some(6300.0)),
        ],
        within: 5,
        overdue: 1,
        facilities: 17,
        fault_seconds: 159_000.0,
    }
}

/// March 2025 in Shanghai, [B − 14 days, B + 17 days), 2678400 s; every
/// alarm falls in it. D01: raised a1–a6, a10, a11 (8); cleared all but a4
/// (7). Ordinary TTR 1000 (a6), 3600 (a11), 5000 (a10), 5400 (a1), 6300
/// (a2): mean 21300 / 5 = 4260, p90 the ⌈4.5⌉ = 5th, 6300; serious 10800;
/// emergency 7200 late: within 6 of 7. a4 stands at the month's end (B +
/// 1468800) past its deadline (B + 299200): 1 overdue. Faulty: L1 [−3600,
/// 7200) 10800; L2 a10 5000; L4 a11 3600; C1/1 10800; C2/1 a4 from 40000
/// to the end, 1468800 − 40000 = 1428800; C2 7200: 1466200 of 12 × 2678400.
fn month_d01() -> Want {
    Want {
        raised: 8,
        raised_by_kind: &[
            ("lamp_failure", 3),
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("contactor_failure", 1),
            ("leakage", 1),
            ("comms_lost", 1),
        ],
        cleared: 7,
        cleared_by_kind: &[
            ("lamp_failure", 3),
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("leakage", 1),
            ("comms_lost", 1),
        ],
        repair: [
            (1, 0, Some(7200.0), Some(7200.0)),
            (1, 1, Some(10_800.0), Some(10_800.0)),
            (5, 5, Some(4260.0), Some(6300.0)),
        ],
        within: 6,
        overdue: 1,
        facilities: 12,
        fault_seconds: 1_466_200.0,
    }
}

/// D02 over the month: raised a7, a8, a9; cleared a8 (300); a7 overdue at
/// the end; faulty L6 from −90000 to the end, 1468800 + 90000 = 1558800,
/// and L7 1000: 1559800 of 5 × 2678400.
fn month_d02() -> Want {
    Want {
        raised: 3,
        raised_by_kind: &[("door_open", 1), ("lamp_failure", 2)],
        cleared: 1,
        cleared_by_kind: &[("door_open", 1)],
        repair: [
            (0, 0, None, None),
            (0, 0, None, None),
            (1, 1, Some(300.0), Some(300.0)),
        ],
        within: 1,
        overdue: 1,
        facilities: 5,
        fault_seconds: 1_559_800.0,
    }
}

/// The city over the month: ordinary TTRs 300, 1000, 3600, 5000, 5400,
/// 6300: mean 21600 / 6 = 3600, p90 the ⌈5.4⌉ = 6th, 6300; within 7 of 8;
/// overdue a4 and a7; 3026000 faulty of 17 × 2678400.
fn month_city() -> Want {
    Want {
        raised: 11,
        raised_by_kind: &[
            ("lamp_failure", 5),
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("contactor_failure", 1),
            ("leakage", 1),
            ("comms_lost", 1),
            ("door_open", 1),
        ],
        cleared: 8,
        cleared_by_kind: &[
            ("lamp_failure", 3),
            ("power_abnormal", 1),
            ("supply_loss", 1),
            ("leakage", 1),
            ("comms_lost", 1),
            ("door_open", 1),
        ],
        repair: [
            (1, 0, Some(7200.0), Some(7200.0)),
            (1, 1, Some(10_800.0), Some(10_800.0)),
            (6, 6, Some(3600.0), Some(6300.0)),
        ],
        within: 7,
        overdue: 2,
        facilities: 17,
        fault_seconds: 3_026_000.0,
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

    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(ADMIN_TOKEN, path).await
    }

    async fn text(&self, path: &str) -> String {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}");
        res.text().await.unwrap()
    }
}

fn scopes(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["scope"].as_str().unwrap())
        .collect()
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
    eventually("store ready", || async {
        api.get("/readyz").await.1["store"]["state"] == "ok"
    })
    .await;
    let written = write_alarms(&app.store().unwrap().db).await;
    filters_agree(&app.store().unwrap().db, &written).await;

    // The day's figures, every district and the city.
    let day = format!(
        "/api/v1/metrics/alarms?from={}&to={}",
        q(at(0)),
        q(at(86_400))
    );
    let (status, w) = api.get(&day).await;
    assert_eq!(status, 200, "{w}");
    assert_eq!(w["from"], q(at(0)));
    assert_eq!(w["to"], q(at(86_400)));
    close(&w["window_seconds"], Some(86_400.0), "window");
    assert_eq!(scopes(&w["districts"]), ["D01", "D02", "D03"]);
    assert_eq!(w["districts"][0]["name"], "North");
    check(&w["districts"][0], &day_d01(), 86_400.0);
    check(&w["districts"][1], &day_d02(), 86_400.0);
    check(&w["districts"][2], &empty_d03(), 86_400.0);
    assert_eq!(w["city"]["scope"], "city");
    check(&w["city"], &day_city(), 86_400.0);

    // One district asked for: only its figures, the same, no city.
    let (status, one) = api.get(&format!("{day}&district=D01")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(scopes(&one["districts"]), ["D01"]);
    assert!(one["city"].is_null(), "{one}");
    check(&one["districts"][0], &day_d01(), 86_400.0);

    // A district token sees its district only; another is unknown to it.
    let (status, own) = api.get_as(D02_TOKEN, &day).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(scopes(&own["districts"]), ["D02"]);
    assert!(own["city"].is_null(), "{own}");
    check(&own["districts"][0], &day_d02(), 86_400.0);
    let (status, err) = api.get_as(D02_TOKEN, &format!("{day}&district=D01")).await;
    assert_eq!(status, 400, "{err}");

    // The monthly report: the alarm figures in each row.
    let month = 2_678_400.0;
    let (status, rep) = api.get("/api/v1/reports/monthly?month=2025-03").await;
    assert_eq!(status, 200, "{rep}");
    assert_eq!(rep["from"], q(at(-14 * 86_400)));
    assert_eq!(rep["to"], q(at(17 * 86_400)));
    let rows = &rep["rows"];
    assert_eq!(scopes(rows), ["D01", "D02", "D03", "city"]);
    let wants = [month_d01(), month_d02(), empty_d03(), month_city()];
    for (row, want) in rows.as_array().unwrap().iter().zip(&wants) {
        let mut figures = row["alarms"].clone();
        figures["scope"] = row["scope"].clone();
        check(&figures, want, month);
    }
    let (status, own) = api
        .get_as(D02_TOKEN, "/api/v1/reports/monthly?month=2025-03")
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(scopes(&own["rows"]), ["D02"]);
    assert_eq!(own["rows"][0]["alarms"], rows[1]["alarms"]);

    // The CSV's alarm columns (the eleven before the six of energy and
    // saving): repairs in whole seconds,
    // shares in percent with two decimals, empty where undefined. D01:
    // within 6 / 7 = 85.71 %, intact (32140800 − 1466200) / 32140800 =
    // 95.438… %; D02: 100.00 %, (13392000 − 1559800) / 13392000 = 88.352… %;
    // city 7 / 8 = 87.50 %, (45532800 − 3026000) / 45532800 = 93.354… %.
    let csv = api
        .text("/api/v1/reports/monthly?month=2025-03&format=csv")
        .await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    let tail = |line: &str| -> String {
        let cells: Vec<&str> = line.split(',').collect();
        cells[cells.len() - 17..cells.len() - 6].join(",")
    };
    assert_eq!(
        tail(lines[0]),
        "alarms_raised,alarms_cleared,repair_mean_seconds_emergency,\
         repair_p90_seconds_emergency,repair_mean_seconds_serious,\
         repair_p90_seconds_serious,repair_mean_seconds_ordinary,\
         repair_p90_seconds_ordinary,repaired_within_deadline_pct,open_overdue,\
         facility_intact_rate_pct"
    );
    assert!(lines[1].starts_with("2025-03,D01,North,"), "{}", lines[1]);
    assert_eq!(
        tail(lines[1]),
        "8,7,7200,7200,10800,10800,4260,6300,85.71,1,95.44"
    );
    assert_eq!(tail(lines[2]), "3,1,,,,,300,300,100.00,1,88.35");
    assert_eq!(tail(lines[3]), "0,0,,,,,,,,0,");
    assert!(lines[4].starts_with("2025-03,city,city,"), "{}", lines[4]);
    assert_eq!(
        tail(lines[4]),
        "11,8,7200,7200,10800,10800,3600,6300,87.50,2,93.35"
    );

    // Bad windows: 400 naming the problem.
    for (query, msg) in [
        (
            format!("from={}&to={}", q(at(10)), q(at(0))),
            "must be before",
        ),
        (
            format!("from={}&to={}", q(at(0)), q(at(94 * 86_400))),
            "at most 93 days",
        ),
        (format!("to={}", q(at(0))), "`from` is required"),
        (
            format!("from={}&to={}&district=NOPE", q(at(0)), q(at(10))),
            "unknown district `NOPE`",
        ),
    ] {
        let (status, body) = api.get(&format!("/api/v1/metrics/alarms?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        let m = body["error"]["message"].as_str().unwrap();
        assert!(m.contains(msg), "{query}: {m}");
    }

    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn alarm_figures_from_the_store_sqlite() {
    scenario(None).await;
}

#[tokio::test]
async fn alarm_figures_from_the_store_postgres() {
    let db = PgTestDb::new().await;
    scenario(Some(db.url())).await;
    db.drop_db().await;
}
