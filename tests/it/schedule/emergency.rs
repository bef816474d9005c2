//! Fog in the afternoon: an emergency shift with `force` puts every lamp of
//! its district on at once and holds it there over the night's switch
//! points (no 隔灯亮) until it ends at sunrise; the other district keeps its
//! calendar; the state, the preview and the audit say it was the shift.

use super::{local, sunrise, sunset, Night};
use chrono::Duration;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fog_forces_a_district_on_until_sunrise() {
    let date = "2026-12-23";
    let n = Night::start(local(date, "14:00")).await;
    n.wait_lamps("all off in the afternoon", |_, _| (false, None))
        .await;

    // "All on now until sunrise" for D01 (endpoint 0's cabinet).
    let until = sunrise("2026-12-24");
    let (s, b) = n
        .put(
            "/api/v1/emergency-shifts/fog",
            json!({"id": "fog", "scope": {"district": "D01"},
                   "from": local(date, "14:00"), "until": until,
                   "force": "on", "reason": "fog"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // At once (the book changed: the engine ticks), not at sunset.
    n.wait_lamps("D01 on at once, D02 still off", |e, _| {
        (e == 0, (e == 0).then_some(100.0))
    })
    .await;
    let (_, state) = n.get("/api/v1/schedules/state?district=D01").await;
    let items = state["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for i in items {
        assert_eq!(i["source"], "emergency", "{i}");
        assert_eq!(i["scheduled"], 100.0, "{i}");
        assert_eq!(i["effective"], 100.0, "{i}");
    }
    let (_, d02) = n.get("/api/v1/schedules/state?district=D02").await;
    assert!(
        d02["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["source"] == "calendar" && i["scheduled"] == 0.0),
        "{d02}"
    );
    // The audit names the shift.
    crate::common::eventually("the shift's commands audited", || async {
        n.writes()
            .iter()
            .any(|(t, a, note)| t == "LX-0001-001" && a == "dim 100.0" && note.contains("fog"))
    })
    .await;

    // Sunset: D02 on by its calendar; at 23:30 D02 goes 隔灯亮 while D01
    // stays on at 100 %.
    n.set(sunset(date) + Duration::minutes(1)).await;
    n.wait_lamps("everything on after sunset", |_, _| (true, Some(100.0)))
        .await;
    n.set(local(date, "23:31")).await;
    let odd = n.odd.clone();
    n.wait_lamps("D01 forced on, D02 every other lamp", |e, j| {
        if e == 0 {
            (true, Some(100.0))
        } else if odd[e][j] {
            (true, Some(50.0))
        } else {
            (false, None)
        }
    })
    .await;
    // The preview shows the shift for a D01 lamp and not for a D02 one.
    let sources = |p: &Value| -> Vec<String> {
        p["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["source"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, p1) = n
        .get(&format!(
            "/api/v1/schedules/preview?date={date}&lamp=LX-0001-001"
        ))
        .await;
    assert_eq!(s, 200, "{p1}");
    assert!(sources(&p1).iter().any(|s| s == "emergency"), "{p1}");
    let (_, p2) = n
        .get(&format!(
            "/api/v1/schedules/preview?date={date}&lamp=LX-0002-001"
        ))
        .await;
    assert!(sources(&p2).iter().all(|s| s == "calendar"), "{p2}");

    // The shift ends at sunrise, when the calendar has everything off too.
    n.set(until + Duration::minutes(1)).await;
    n.wait_lamps("all off after sunrise", |_, _| (false, None))
        .await;
    let (_, state) = n.get("/api/v1/schedules/state?district=D01").await;
    assert!(
        state["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["source"] == "calendar" && i["effective"] == 0.0),
        "{state}"
    );
    n.stop().await;
}
