//! The night plan (issue 13) over real sockets, on a clock the test sets: a
//! night in Jinan issues the expected writes at the expected moments, every
//! other lamp goes off at 23:30, a holiday replaces the weekday program, an
//! emergency shift moves switch-on, a restart at 21:00 catches up, an
//! override expires back to the schedule, and the lighting rate follows
//! the schedule. More in the files beside: a summer night's writes one by
//! one (summer.rs), an emergency shift that forces a level (emergency.rs),
//! the district operators' edits (edits.rs), the lighting rate over a window
//! (window.rs), the acks and retained summaries on MQTT (mqtt.rs), a TALQ
//! CMS's calendar on a group (talq.rs).

mod edits;
mod emergency;
mod mqtt;
mod summer;
mod talq;
mod window;

use crate::common::{eventually, test_settings, ADMIN_TOKEN};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use lamp_gateway::control::FailCause;
use lamp_gateway::schedule::clock::ManualClock;
use lamp_gateway::schedule::sun::sun_times;
use lamp_gateway::settings::Settings;
use lamp_gateway::startup::{Application, BuildOptions};
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

const JINAN: (f64, f64) = (36.65, 117.12);
const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

pub(super) fn local(date: &str, hm: &str) -> DateTime<Utc> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let t = chrono::NaiveTime::parse_from_str(hm, "%H:%M").unwrap();
    TZ.from_local_datetime(&d.and_time(t))
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn sunset(date: &str) -> DateTime<Utc> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    sun_times(JINAN.0, JINAN.1, d).unwrap().sunset.unwrap()
}

pub(super) fn sunrise(date: &str) -> DateTime<Utc> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    sun_times(JINAN.0, JINAN.1, d).unwrap().sunrise.unwrap()
}

/// Puts every cabinet in Jinan (the simulator places them elsewhere).
fn move_cabinets_to_jinan(inv: &Path) {
    let path = inv.join("cabinets.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let mut cells: Vec<String> = line.split(',').map(String::from).collect();
        if i > 0 {
            cells[3] = JINAN.0.to_string();
            cells[4] = JINAN.1.to_string();
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// The book: on at sunset, dim to 50 % at 23:30 with every even lamp off
/// (隔灯亮), off at sunrise; a holiday program on Christmas 2026.
fn book() -> Value {
    json!({
        "programs": [
            {"id": "night", "points": [
                {"sun": "sunset", "level": "on"},
                {"at": "23:30", "level": 50},
                {"at": "23:30", "level": "off", "alternate": "even"},
                {"sun": "sunrise", "level": "off"}
            ]},
            {"id": "holiday", "points": [
                {"at": "18:00", "level": "on"},
                {"sun": "sunrise", "level": "off"}
            ]}
        ],
        "calendars": [{
            "id": "city",
            "rules": [{"name": "christmas", "program": "holiday", "priority": 10, "dates": ["2026-12-25"]}],
            "default_program": "night"
        }],
        "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
    })
}

/// What a test changes in the gateway's settings, at every boot.
type Tweak = Box<dyn Fn(&mut Settings) + Send + Sync>;

pub(super) struct Night {
    pub(super) sim: Simulator,
    pub(super) dir: tempfile::TempDir,
    pub(super) clock: Arc<ManualClock>,
    pub(super) app: Option<Application>,
    pub(super) base: String,
    pub(super) http: reqwest::Client,
    /// Per simulated endpoint, per SLC: its position along its circuit is odd.
    pub(super) odd: Vec<Vec<bool>>,
    tweak: Tweak,
}

impl Night {
    pub(super) async fn start(at: DateTime<Utc>) -> Night {
        Night::start_with(at, |_| {}).await
    }

    /// [`Night::start`] with settings of the test's own.
    pub(super) async fn start_with(
        at: DateTime<Utc>,
        tweak: impl Fn(&mut Settings) + Send + Sync + 'static,
    ) -> Night {
        let sim = Simulator::start(SimConfig {
            endpoints: 2,
            slcs_per_endpoint: 6,
            districts: 2,
            failure_rate_per_hour: 0.0,
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let inv = dir.path().join("inventory");
        std::fs::create_dir_all(&inv).unwrap();
        sim.write_inventory(&inv, &InventoryOptions::default())
            .unwrap();
        move_cabinets_to_jinan(&inv);
        std::fs::write(dir.path().join("schedule.json"), book().to_string()).unwrap();
        // Position along the circuit, counted in inventory order.
        let lamps = std::fs::read_to_string(inv.join("lamps.csv")).unwrap();
        let mut count = std::collections::HashMap::new();
        let mut odd = vec![Vec::new(); 2];
        for line in lamps.lines().skip(1) {
            let c: Vec<&str> = line.split(',').collect();
            let n = count
                .entry((c[1].to_string(), c[2].to_string()))
                .or_insert(0u32);
            *n += 1;
            let ep: usize = c[0][3..7].parse::<usize>().unwrap() - 1;
            odd[ep].push(*n % 2 == 1);
        }
        let clock = Arc::new(ManualClock::new(at));
        let mut night = Night {
            sim,
            dir,
            clock,
            app: None,
            base: String::new(),
            http: reqwest::Client::new(),
            odd,
            tweak: Box::new(tweak),
        };
        night.boot().await;
        night
    }

    pub(super) async fn boot(&mut self) {
        let mut s = test_settings(self.dir.path());
        s.gateway.time_zone = TZ;
        s.schedule.tick = std::time::Duration::from_millis(50);
        s.schedule.retry_after = std::time::Duration::from_millis(300);
        (self.tweak)(&mut s);
        let app = Application::build_with(
            s,
            BuildOptions {
                schedule_clock: Some(self.clock.clone()),
            },
        )
        .await
        .unwrap();
        self.base = format!("http://{}", app.local_addr());
        self.app = Some(app);
    }

    pub(super) async fn restart(&mut self) {
        self.app.take().unwrap().shutdown().await.unwrap();
        self.boot().await;
    }

    pub(super) async fn set(&self, at: DateTime<Utc>) {
        self.clock.set(at);
        let s = self.app.as_ref().unwrap().schedule().unwrap();
        let seen = s.ticks();
        s.poke();
        // Two ticks at the new time: the second starts after the first's
        // commands were issued.
        eventually("the engine ticked", || async { s.ticks() >= seen + 2 }).await;
    }

    pub(super) fn lamps(&self) -> Vec<(bool, f64)> {
        (0..2)
            .flat_map(|e| (0..6).map(move |j| (e, j)))
            .map(|(e, j)| {
                let v = self.sim.slc_values(e, j);
                (v.switch, v.dim_level)
            })
            .collect()
    }

    pub(super) async fn wait_lamps(
        &self,
        what: &str,
        want: impl Fn(usize, usize) -> (bool, Option<f64>),
    ) {
        eventually(what, || async {
            (0..2).all(|e| {
                (0..6).all(|j| {
                    let v = self.sim.slc_values(e, j);
                    let (on, level) = want(e, j);
                    v.switch == on && level.is_none_or(|l| (v.dim_level - l).abs() < 0.5)
                })
            })
        })
        .await;
    }

    pub(super) async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub(super) async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub(super) async fn schedule_commands(&self) -> Vec<Value> {
        let from = (Utc::now() - Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
        let to = (Utc::now() + Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
        let (s, b) = self
            .get(&format!("/api/v1/audit?from={from}&to={to}&actor=schedule"))
            .await;
        assert_eq!(s, 200, "{b}");
        b["items"].as_array().cloned().unwrap_or_default()
    }

    pub(super) async fn summary(&self) -> Value {
        let (s, b) = self.get("/api/v1/metrics/summary").await;
        assert_eq!(s, 200, "{b}");
        b
    }

    /// Every write the schedule's completed commands made so far, oldest
    /// first: (target, action, note), `action` as `on`, `off` or `dim N`.
    /// A target that failed `offline` was sent nothing (a device not polled
    /// yet at the first tick): no write.
    pub(super) fn writes(&self) -> Vec<(String, String, String)> {
        let control = self.app.as_ref().unwrap().control();
        let far = Duration::days(365 * 20);
        control
            .audit(Utc::now() - far, Utc::now() + far, Some("schedule"))
            .iter()
            .flat_map(|c| {
                let v = serde_json::to_value(c).unwrap();
                let action = match v["action"].as_str().unwrap() {
                    "dim" => format!("dim {}", v["level"]),
                    a => a.to_string(),
                };
                let note = v["selector"]["note"].as_str().unwrap_or("").to_string();
                c.targets
                    .iter()
                    .filter(|t| !matches!(t.reason, Some(FailCause::Offline)))
                    .map(move |t| (t.id.clone(), action.clone(), note.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every governed target's key (lamp id or `CABINET#n`) and kind.
    pub(super) fn targets(&self) -> Vec<(String, &'static str)> {
        let s = self.app.as_ref().unwrap().schedule().unwrap();
        s.state_now(None)
            .into_iter()
            .map(|t| (t.target, t.kind))
            .collect()
    }

    /// A request as `token`, with an optional JSON body.
    pub(super) async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub(super) async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await.unwrap();
        }
        self.sim.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winter_night_in_jinan() {
    let date = "2026-12-21";
    let n = Night::start(local(date, "12:00")).await;
    // Catch-up at start: noon, everything should be off.
    n.wait_lamps("all off at noon", |_, _| (false, None)).await;
    let s = n.summary().await;
    assert_eq!(
        s["lamps_expected_lit"], 0,
        "the schedule has them off: not expected: {s}"
    );

    // A minute before sunset nothing changes; a minute after, all on.
    n.set(sunset(date) - Duration::minutes(1)).await;
    assert!(n.lamps().iter().all(|(on, _)| !on), "nothing before sunset");
    n.set(sunset(date) + Duration::minutes(1)).await;
    n.wait_lamps("all on after sunset", |_, _| (true, Some(100.0)))
        .await;
    // Audited (the store writes audit rows a flush after completion).
    let noted = |c: &Value, what: &str| {
        c["selector"]["note"]
            .as_str()
            .is_some_and(|t| t.contains(what))
    };
    eventually("the sunset commands in the audit", || async {
        let commands = n.schedule_commands().await;
        commands
            .iter()
            .any(|c| noted(c, "sunset") && c["kind"] == "lamp")
            && commands
                .iter()
                .any(|c| noted(c, "sunset") && c["kind"] == "circuit")
    })
    .await;
    let commands = n.schedule_commands().await;
    assert!(
        commands
            .iter()
            .filter(|c| noted(c, "sunset"))
            .all(|c| c["source"] == "schedule"),
        "{commands:?}"
    );
    // The contactors too (the RTUs' circuits follow the city calendar).
    assert!(
        commands.iter().any(|c| c["kind"] == "circuit"),
        "{commands:?}"
    );
    let lit = |s: &Value| (s["lamps_expected_lit"].as_u64(), s["lamps_lit"].as_u64());
    eventually("the lighting rate counts every lamp", || async {
        lit(&n.summary().await) == (Some(12), Some(12))
    })
    .await;

    // 23:30: dim to 50 %, every even lamp along its circuit off.
    n.set(local(date, "23:31")).await;
    let odd = n.odd.clone();
    n.wait_lamps("隔灯亮 at 23:30", |e, j| {
        if odd[e][j] {
            (true, Some(50.0))
        } else {
            (false, None)
        }
    })
    .await;
    let odd_count = odd.iter().flatten().filter(|o| **o).count() as u64;
    eventually("only the odd lamps are expected", || async {
        lit(&n.summary().await) == (Some(odd_count), Some(odd_count))
    })
    .await;

    // Sunrise the next morning: all off.
    n.set(sunrise("2026-12-22") + Duration::minutes(1)).await;
    n.wait_lamps("all off after sunrise", |_, _| (false, None))
        .await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_catches_up_and_an_override_expires_back_to_the_schedule() {
    let date = "2026-12-21";
    let mut n = Night::start(local(date, "12:00")).await;
    n.wait_lamps("all off at noon", |_, _| (false, None)).await;
    // The gateway is down over sunset and starts again at 21:00.
    n.app.take().unwrap().shutdown().await.unwrap();
    n.clock.set(local(date, "21:00"));
    n.boot().await;
    n.wait_lamps("caught up: all on at 21:00", |_, _| (true, Some(100.0)))
        .await;

    // An operator switches one lamp off for 30 minutes.
    let until = local(date, "21:30");
    let r = n
        .http
        .post(format!("{}/api/v1/lamps/LX-0001-002/commands", n.base))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"action": "off", "expires_at": until.to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    eventually("the override confirmed", || async {
        !n.sim.slc_values(0, 1).switch
    })
    .await;
    // The schedule does not fight it, and it survives a restart.
    n.set(local(date, "21:10")).await;
    assert!(!n.sim.slc_values(0, 1).switch, "held off by the override");
    n.restart().await;
    n.set(local(date, "21:20")).await;
    assert!(
        !n.sim.slc_values(0, 1).switch,
        "the hold was re-armed after the restart"
    );
    let (_, state) = n.get("/api/v1/schedules/state").await;
    let item = state["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["target"] == "LX-0001-002")
        .cloned()
        .unwrap();
    assert_eq!(item["source"], "override", "{item}");
    assert_eq!(item["scheduled"], 100.0, "{item}");
    assert_eq!(item["effective"], 0.0, "{item}");
    // It expires: back to what the schedule says now (on).
    n.set(until + Duration::minutes(1)).await;
    eventually("back to the schedule after the override", || async {
        n.sim.slc_values(0, 1).switch
    })
    .await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holidays_emergency_shifts_and_the_preview() {
    let n = Night::start(local("2026-12-24", "12:00")).await;
    // The preview of an ordinary night and of Christmas.
    let (s, p) = n
        .get("/api/v1/schedules/preview?date=2026-12-24&lamp=LX-0001-001")
        .await;
    assert_eq!(s, 200, "{p}");
    let events = p["events"].as_array().unwrap();
    let sunset_event = events
        .iter()
        .find(|e| e["rule"].as_str().unwrap().contains("sunset"))
        .unwrap();
    let at = DateTime::parse_from_rfc3339(sunset_event["at"].as_str().unwrap()).unwrap();
    assert!(
        (at.with_timezone(&Utc) - sunset("2026-12-24"))
            .num_seconds()
            .abs()
            < 60,
        "{sunset_event}"
    );
    assert_eq!(sunset_event["program"], "night");
    let (_, xmas) = n
        .get("/api/v1/schedules/preview?date=2026-12-25&lamp=LX-0001-001")
        .await;
    let first = &xmas["events"][1];
    assert_eq!(first["program"], "holiday", "{xmas}");
    assert!(
        first["at"].as_str().unwrap().contains("T18:00:00+08:00"),
        "{xmas}"
    );
    assert!(
        first["rule"].as_str().unwrap().starts_with("christmas"),
        "{xmas}"
    );
    // Jinan's December sunset is before 18:00: at 17:59 on Christmas the
    // ordinary program would have the lamps on, the holiday's has them off.
    n.set(local("2026-12-25", "17:59")).await;
    assert!(local("2026-12-25", "17:59") > sunset("2026-12-25"));
    n.wait_lamps(
        "off at 17:59 on Christmas: the holiday program starts at 18:00",
        |_, _| (false, None),
    )
    .await;
    n.set(local("2026-12-25", "18:01")).await;
    n.wait_lamps("on at 18:01 on Christmas", |_, _| (true, None))
        .await;

    // Fog on the 26th: switch on 20 minutes early in district D01.
    let (s, b) = n
        .put(
            "/api/v1/emergency-shifts/fog",
            json!({"id": "fog", "scope": {"district": "D01"},
                   "from": local("2026-12-26", "12:00"), "until": local("2026-12-27", "12:00"),
                   "on_earlier_min": 20, "reason": "fog"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    n.set(sunset("2026-12-26") - Duration::minutes(15)).await;
    // Endpoint 0's cabinet is in D01, endpoint 1's in D02 (round-robin).
    n.wait_lamps("D01 on 15 minutes before sunset, D02 not", |e, _| {
        (e == 0, None)
    })
    .await;
    let (_, prev) = n
        .get("/api/v1/schedules/preview?date=2026-12-26&lamp=LX-0001-001")
        .await;
    assert!(
        prev["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == "emergency"),
        "{prev}"
    );

    // Invalid objects: 422 with the field named.
    let (s, b) = n
        .put(
            "/api/v1/programs/bad",
            json!({"id": "bad", "points": [{"at": "24:30", "level": "on"}]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("points[0].at"),
        "{b}"
    );
    let (s, b) = n
        .put(
            "/api/v1/programs/far",
            json!({"id": "far", "points": [{"sun": "sunset", "offset_min": 200, "level": "on"}]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("offset_min"),
        "{b}"
    );
    let (s, b) = n
        .put(
            "/api/v1/assignments/x",
            json!({"id": "x", "calendar": "city", "scope": {"group": "nope"}}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown group"),
        "{b}"
    );
    // Sun times.
    let (s, sun) = n
        .get("/api/v1/schedules/sun?date=2026-06-21&lat=36.65&lon=117.12")
        .await;
    assert_eq!(s, 200, "{sun}");
    assert!(
        sun["sunset"]
            .as_str()
            .unwrap()
            .starts_with("2026-06-21T19:3"),
        "{sun}"
    );
    n.stop().await;
}
