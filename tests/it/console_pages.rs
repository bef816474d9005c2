//! The console's alarm, schedule, report and audit pages, its charts and
//! its live updates: crafted requests over HTTP, and the same in a real
//! browser (the harness of console.rs). Each browser test saves a
//! screenshot under target/console-screenshots/.

use crate::common::{eventually, TestApp};
use crate::console::{
    browser, console_city, csrf, get, http, login, post, ONE_BROWSER, OTHER_LAMP, OWN_LAMP,
    PASSWORD,
};
use chrono::Utc;
use lamp_sim::SlcFault;
use serde_json::{json, Value};
use std::time::Duration;

/// A lamp failure on endpoint `e`'s SLC `j`, seen by the alarm engine.
async fn fail_lamp(t: &TestApp, e: usize, j: usize, lamp: &str) -> Value {
    t.sim.set_slc_fault(
        e,
        j,
        SlcFault {
            failed: true,
            ..SlcFault::default()
        },
    );
    eventually(&format!("a lamp_failure alarm on {lamp}"), || async {
        let (_, body) = t.get(&format!("/api/v1/alarms?device={lamp}")).await;
        body["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let (_, body) = t.get(&format!("/api/v1/alarms?device={lamp}")).await;
    body["items"][0].clone()
}

fn fast_alarms(s: &mut lamp_gateway::settings::Settings) {
    s.alarms.tick = Duration::from_millis(100);
}

#[tokio::test]
async fn alarm_page_lists_and_acknowledges_within_the_district() {
    let t = console_city(fast_alarms).await;
    let own = fail_lamp(&t, 0, 0, OWN_LAMP).await;
    let other = fail_lamp(&t, 1, 0, OTHER_LAMP).await;
    let north = login(&t, "north", PASSWORD).await.unwrap();

    // The district operator's list has the own district's alarm only.
    let (status, page) = get(&t, &north, "/console/alarms").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!(r#"data-alarm="{}""#, own["id"])),
        "{page}"
    );
    assert!(!page.contains(&format!(r#"data-alarm="{}""#, other["id"])));
    assert!(page.contains(r#"data-total="1""#), "{page}");
    let token = csrf(&page);

    // Acknowledge: an empty comment is refused; another district's alarm
    // does not exist; the own one is acknowledged with name and comment.
    let ack = |id: &Value| format!("/console/alarms/{id}/ack");
    assert_eq!(
        post(
            &t,
            &north,
            &ack(&own["id"]),
            &[("csrf", &token), ("comment", " ")]
        )
        .await,
        400
    );
    assert_eq!(
        post(
            &t,
            &north,
            &ack(&other["id"]),
            &[("csrf", &token), ("comment", "x")]
        )
        .await,
        404
    );
    assert_eq!(
        post(&t, &north, &ack(&own["id"]), &[("comment", "crew sent")]).await,
        403,
        "no CSRF token"
    );
    let form = [
        ("csrf", token.as_str()),
        ("comment", "crew 3 sent"),
        ("back", "/console/alarms?state=acknowledged"),
    ];
    let r = http()
        .post(format!("{}{}", t.base, ack(&own["id"])))
        .header("cookie", &north)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/console/alarms?state=acknowledged"
    );
    let (_, a) = t.get(&format!("/api/v1/alarms/{}", own["id"])).await;
    assert_eq!(
        (&a["state"], &a["acknowledged_by"], &a["comment"]),
        (
            &json!("acknowledged"),
            &json!("north"),
            &json!("crew 3 sent")
        )
    );
    // The filtered list shows it so; a viewer has no form and is refused.
    let (_, page) = get(&t, &north, "/console/alarms?state=acknowledged").await;
    assert!(page.contains("crew 3 sent") && page.contains(r#"data-state="acknowledged""#));
    let watcher = login(&t, "watcher", PASSWORD).await.unwrap();
    let (_, page) = get(&t, &watcher, "/console/alarms").await;
    assert!(
        !page.contains("/ack\""),
        "a viewer sees no acknowledge form"
    );
    let wt = csrf(&page);
    assert_eq!(
        post(
            &t,
            &watcher,
            &ack(&other["id"]),
            &[("csrf", &wt), ("comment", "x")]
        )
        .await,
        403
    );
    // A bad filter is a clear 400, not an empty list.
    let (status, _) = get(&t, &north, "/console/alarms?severity=loud").await;
    assert_eq!(status, 400);

    // The lamp list by alarm, and its CSV export (every match, the page's
    // language in the header).
    let (_, list) = get(&t, &north, "/console/lamps?alarm=true").await;
    assert!(list.contains(r#"data-total="1""#), "{list}");
    assert!(list.contains(&format!(r#"data-lamp="{OWN_LAMP}""#)));
    let (_, list) = get(&t, &north, "/console/lamps?alarm=false&sort=power").await;
    assert!(list.contains(r#"data-total="3""#), "{list}");
    let (status, csv) = get(&t, &north, "/console/lamps?format=csv").await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 5, "a header and D01's four lamps: {csv}");
    assert!(lines[0].starts_with("灯具编号,区域,配电箱"), "{csv}");
    assert!(lines[1..].iter().all(|l| l.contains(",D01,")), "{csv}");
    let (status, _) = get(&t, &north, "/console/lamps?lit=maybe").await;
    assert_eq!(status, 400);

    // The map: D01's two cabinets, the one with the failed lamp in alarm;
    // zoomed to it, its lamps, the failed one in alarm.
    let (status, map) = get(&t, &north, "/console/map").await;
    assert_eq!(status, 200);
    assert!(map.contains(r#"data-marks="2""#), "{map}");
    let own_cabinet = t.sim.cabinet_id(0);
    assert!(map.contains(&format!(r#"href="/console/map?cabinet={own_cabinet}""#)));
    assert_eq!(map.matches(r#"data-state="alarm""#).count(), 1, "{map}");
    let (_, zoom) = get(&t, &north, &format!("/console/map?cabinet={own_cabinet}")).await;
    assert!(
        zoom.contains(&format!(r#"href="/console/lamps/{OWN_LAMP}""#)),
        "{zoom}"
    );
    assert_eq!(zoom.matches(r#"data-state="alarm""#).count(), 1, "{zoom}");
    let (_, only) = get(&t, &north, "/console/map?state=alarm").await;
    assert!(only.contains(r#"data-marks="1""#), "{only}");
    let other_cabinet = t.sim.cabinet_id(1);
    assert_eq!(
        get(&t, &north, &format!("/console/map?cabinet={other_cabinet}"))
            .await
            .0,
        404
    );
    t.stop().await;
}

#[tokio::test]
async fn reports_audit_charts_and_live_stream_keep_to_the_district() {
    let t = console_city(|_| {}).await;
    let north = login(&t, "north", PASSWORD).await.unwrap();
    let month = Utc::now().format("%Y-%m").to_string();

    // The monthly report as XLSX and as CSV in Chinese; another
    // district's is refused.
    let r = http()
        .get(format!(
            "{}/console/reports/monthly?month={month}&format=xlsx&lang=zh",
            t.base
        ))
        .header("cookie", &north)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.contains(&format!("lighting-{month}-D01.xlsx")),
        "{disposition}"
    );
    let body = r.bytes().await.unwrap();
    assert_eq!(&body[..2], b"PK", "an XLSX is a zip");
    let (status, csv) = get(
        &t,
        &north,
        &format!("/console/reports/monthly?month={month}&format=csv&lang=zh"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        csv.contains("亮灯率") && csv.contains("D01") && !csv.contains("D02"),
        "{csv}"
    );
    let (status, _) = get(
        &t,
        &north,
        &format!("/console/reports/monthly?month={month}&district=D02"),
    )
    .await;
    assert_eq!(status, 400);

    // A console command shows in the audit page, with the person's name.
    let (_, lamp) = get(&t, &north, &format!("/console/lamps/{OWN_LAMP}")).await;
    let token = csrf(&lamp);
    let r = http()
        .post(format!("{}/console/lamps/{OWN_LAMP}/command", t.base))
        .header("cookie", &north)
        .form(&[("csrf", token.as_str()), ("action", "dim"), ("level", "60")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let command = location.rsplit("command=").next().unwrap().to_string();
    eventually("the command in the audit page", || async {
        let (status, page) = get(&t, &north, "/console/audit").await;
        status == 200
            && page.contains(&format!(r#"data-command="{command}""#))
            && page.contains("north")
    })
    .await;

    // Charts are SVG; another district's are not found.
    for path in [
        "/console/trend.svg".to_string(),
        "/console/trend.svg?scope=D01".to_string(),
        format!("/console/lamps/{OWN_LAMP}/history.svg?span=24h"),
        format!("/console/lamps/{OWN_LAMP}/history.svg?span=7d"),
    ] {
        let r = http()
            .get(format!("{}{path}", t.base))
            .header("cookie", &north)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml; charset=utf-8");
        let svg = r.text().await.unwrap();
        assert!(
            svg.contains("<svg") && svg.contains("</svg>"),
            "{path}: {svg}"
        );
    }
    // The day's raw samples draw a line once the lamp has two stored (one
    // alone is a dot).
    let history = format!("/console/lamps/{OWN_LAMP}/history.svg");
    eventually("the lamp's history drawn as a line", || async {
        get(&t, &north, &history).await.1.contains("<path")
    })
    .await;
    for path in [
        "/console/trend.svg?scope=D02".to_string(),
        format!("/console/lamps/{OTHER_LAMP}/history.svg"),
        format!("/console/lamps/{OTHER_LAMP}/events"),
    ] {
        assert_eq!(get(&t, &north, &path).await.0, 404, "{path}");
    }
    let (status, _) = get(
        &t,
        &north,
        &format!("/console/lamps/{OWN_LAMP}/history.svg?span=1y"),
    )
    .await;
    assert_eq!(status, 400);

    // The live stream: an `update` event within seconds, cut to the
    // person's district.
    let mut r = http()
        .get(format!("{}/console/events", t.base))
        .header("cookie", &north)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut seen = String::new();
    let update = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let chunk = r.chunk().await.unwrap().expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(at) = seen.find("event: update\ndata: ") {
                let rest = &seen[at + "event: update\ndata: ".len()..];
                if let Some(end) = rest.find('\n') {
                    return serde_json::from_str::<Value>(&rest[..end]).unwrap();
                }
            }
        }
    })
    .await
    .expect("an update within 20 s");
    let scopes: Vec<&str> = update["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["D01"], "{update}");
    assert_eq!(
        update["scopes"][0]["figures"]["slc_online_rate"]["text"],
        "100.0%"
    );
    t.stop().await;
}

/// The schedule tests' book: on at sunset, dimmed at 23:30, off at sunrise.
pub(crate) fn night_book() -> Value {
    json!({
        "programs": [{"id": "night", "name": "Ordinary night", "points": [
            {"sun": "sunset", "level": "on"},
            {"at": "23:30", "level": 50},
            {"sun": "sunrise", "level": "off"}
        ]}],
        "calendars": [{"id": "city", "rules": [], "default_program": "night"}],
        "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
    })
}

#[tokio::test]
async fn browser_schedule_timeline_and_an_emergency_shift() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|s| {
        std::fs::write(&s.schedule.file, night_book().to_string()).unwrap();
    })
    .await;
    let Some(b) = browser(&t, 1400, 1200).await else {
        return;
    };
    b.login("north", PASSWORD).await;
    b.wait_for("section.scope").await;
    // The overview names the next switch points of the plan (every night
    // has a sunset, a 23:30 and a sunrise within a day).
    let upcoming = b.text("#upcoming").await;
    assert!(
        upcoming.contains("night") && upcoming.contains("sunset"),
        "{upcoming}"
    );
    b.goto("/console/schedules").await;
    // A bar a row; the district's four lamps switch alike.
    b.wait_for("svg.timeline rect").await;
    let rows = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('svg.timeline > text'))
                 .map(t => t.textContent).filter(t => t.includes('night'));",
            vec![],
        )
        .await
        .unwrap();
    // D01: two cabinets of 2 lamps and 4 circuits each, all on the one plan.
    assert_eq!(
        rows,
        json!(["4 灯 8 回路 · night"]),
        "one row: D01 switches alike"
    );
    assert!(b.text("#book").await.contains("23:30 → 调光 50%"));
    // An emergency shift for the district: switch on 20 min earlier.
    let form = b.wait_for("#shift-form").await;
    let id = form
        .find(fantoccini::Locator::Css("input[name=id]"))
        .await
        .unwrap();
    id.clear().await.unwrap();
    id.send_keys("fog-d01").await.unwrap();
    let early = form
        .find(fantoccini::Locator::Css("input[name=on_earlier_min]"))
        .await
        .unwrap();
    early.clear().await.unwrap();
    early.send_keys("20").await.unwrap();
    form.find(fantoccini::Locator::Css("input[name=reason]"))
        .await
        .unwrap()
        .send_keys("fog")
        .await
        .unwrap();
    b.click("#save-shift").await;
    b.wait_for("#saved").await;
    assert!(b.text("#shifts").await.contains("fog-d01"));
    b.screenshot("schedules").await;
    let (status, book) = t.get("/api/v1/schedules").await;
    assert_eq!(status, 200);
    let shift = book["emergency_shifts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "fog-d01")
        .cloned()
        .expect("the shift is in the book");
    assert_eq!(
        (&shift["scope"], &shift["on_earlier_min"], &shift["reason"]),
        (&json!({"district": "D01"}), &json!(20), &json!("fog"))
    );
    // Reports page, for its screenshot: both downloads offered.
    b.goto("/console/reports").await;
    b.wait_for("#xlsx").await;
    b.wait_for("#csv").await;
    b.screenshot("reports").await;
    b.close().await;

    // A district operator cannot put a shift on the city.
    let north = login(&t, "north", PASSWORD).await.unwrap();
    let (_, page) = get(&t, &north, "/console/schedules").await;
    let token = csrf(&page);
    let now = Utc::now().format("%Y-%m-%dT%H:%M").to_string();
    let later = (Utc::now() + chrono::Duration::hours(30))
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let status = post(
        &t,
        &north,
        "/console/schedules/shifts",
        &[
            ("csrf", &token),
            ("id", "city-fog"),
            ("district", ""),
            ("from", &now),
            ("until", &later),
            ("on_earlier_min", "20"),
        ],
    )
    .await;
    assert_eq!(
        status, 400,
        "the city is outside D01: refused as the API does (422)"
    );
    t.stop().await;
}

#[tokio::test]
async fn browser_acknowledges_an_alarm_and_pages_update_live() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(fast_alarms).await;
    let Some(b) = browser(&t, 1600, 1000).await else {
        return;
    };
    b.login("admin", PASSWORD).await;
    let badge = "section.scope[data-scope=city] .badge[data-severity=ordinary]";
    assert_eq!(
        b.wait_for(badge)
            .await
            .attr("data-count")
            .await
            .unwrap()
            .as_deref(),
        Some("0")
    );
    // A mark the page keeps only while it is not reloaded.
    b.client
        .execute("window.notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    t.sim.set_slc_fault(
        0,
        0,
        SlcFault {
            failed: true,
            ..SlcFault::default()
        },
    );
    eventually("the alarm count rises without a reload", || async {
        b.wait_for(badge)
            .await
            .attr("data-count")
            .await
            .unwrap()
            .as_deref()
            == Some("1")
    })
    .await;
    let still = b
        .client
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(still, json!(true), "updated live, not reloaded");
    b.screenshot("overview-live").await;

    // The alarm page: acknowledge with a comment.
    b.goto("/console/alarms").await;
    let form = b.wait_for("form.ack").await;
    form.find(fantoccini::Locator::Css("input[name=comment]"))
        .await
        .unwrap()
        .send_keys("灯具更换中")
        .await
        .unwrap();
    form.find(fantoccini::Locator::Css("button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the alarm acknowledged", || async {
        let (_, body) = t.get(&format!("/api/v1/alarms?device={OWN_LAMP}")).await;
        body["items"][0]["state"] == "acknowledged"
    })
    .await;
    let (_, body) = t.get(&format!("/api/v1/alarms?device={OWN_LAMP}")).await;
    assert_eq!(
        (
            &body["items"][0]["acknowledged_by"],
            &body["items"][0]["comment"]
        ),
        (&json!("admin"), &json!("灯具更换中"))
    );
    b.wait_for("tr[data-state=acknowledged]").await;
    b.screenshot("alarms").await;
    b.goto("/console/map").await;
    b.wait_for("svg.map circle").await;
    b.screenshot("map").await;

    // The lamp page follows the lamp: a command from elsewhere (the API)
    // shows on the open page without a reload.
    b.goto(&format!("/console/lamps/{OWN_LAMP}")).await;
    b.wait_for("#values").await;
    b.client
        .execute("window.notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    let (status, body) = t
        .post(
            &format!("/api/v1/lamps/{OWN_LAMP}/commands"),
            json!({"action": "dim", "level": 30}),
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    eventually("the page shows 30 %", || async {
        b.text("#values dd[data-field=DimLevel]").await == "30"
    })
    .await;
    let still = b
        .client
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(still, json!(true));
    b.wait_for("#history").await;
    b.screenshot("lamp-live").await;
    b.close().await;
    t.stop().await;
}

#[tokio::test]
async fn cabinet_page_switches_a_circuit_within_the_district() {
    let t = console_city(|_| {}).await;
    let (own, other) = (t.sim.cabinet_id(0), t.sim.cabinet_id(1));
    let north = login(&t, "north", PASSWORD).await.unwrap();
    // The list: D01's two cabinets (endpoints 0 and 2), not D02's.
    let (status, list) = get(&t, &north, "/console/cabinets").await;
    assert_eq!(status, 200);
    assert!(list.contains(r#"data-total="2""#), "{list}");
    assert!(list.contains(&format!(r#"data-cabinet="{own}""#)));
    assert!(!list.contains(&format!(r#"data-cabinet="{other}""#)));
    assert_eq!(
        get(&t, &north, &format!("/console/cabinets/{other}"))
            .await
            .0,
        404
    );

    // Circuit 1 off from the page: confirmed, the contactor opened.
    let (status, page) = get(&t, &north, &format!("/console/cabinets/{own}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(r#"data-circuit="1" data-closed="true""#),
        "{page}"
    );
    let token = csrf(&page);
    let path = format!("/console/cabinets/{own}/circuits/1/command");
    assert_eq!(
        post(
            &t,
            &north,
            &format!("/console/cabinets/{other}/circuits/1/command"),
            &[("csrf", &token), ("action", "off")]
        )
        .await,
        404
    );
    let r = http()
        .post(format!("{}{path}", t.base))
        .header("cookie", &north)
        .form(&[("csrf", token.as_str()), ("action", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let command = location.rsplit("command=").next().unwrap().to_string();
    eventually("the circuit command confirmed", || async {
        let (_, c) = t.get(&format!("/api/v1/commands/{command}")).await;
        c["state"] == "completed" || c["targets"][0]["state"] == "confirmed"
    })
    .await;
    let (_, c) = t.get(&format!("/api/v1/commands/{command}")).await;
    assert_eq!(c["targets"][0]["state"], "confirmed", "{c}");
    assert_eq!(
        (&c["actor"], &c["source"]),
        (&json!("north"), &json!("console"))
    );
    assert!(!t.sim.rtu_values(0).contactors[0], "the contactor opened");
    eventually("the page shows it open", || async {
        let (_, page) = get(&t, &north, &format!("/console/cabinets/{own}")).await;
        page.contains(r#"data-circuit="1" data-closed="false""#)
    })
    .await;
    // A viewer sees no switches and is refused.
    let watcher = login(&t, "watcher", PASSWORD).await.unwrap();
    let (_, page) = get(&t, &watcher, &format!("/console/cabinets/{own}")).await;
    assert!(!page.contains("circuit-1-on"));
    let wt = csrf(&page);
    assert_eq!(
        post(&t, &watcher, &path, &[("csrf", &wt), ("action", "on")]).await,
        403
    );
    t.stop().await;
}

#[tokio::test]
async fn an_admin_adds_and_removes_a_user_from_the_page() {
    let t = console_city(|_| {}).await;
    let admin = login(&t, "admin", PASSWORD).await.unwrap();
    let north = login(&t, "north", PASSWORD).await.unwrap();
    // Only a city-wide admin manages people.
    assert_eq!(get(&t, &north, "/console/admin/users").await.0, 403);
    let (status, page) = get(&t, &admin, "/console/admin/users").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"data-user="north""#));
    let token = csrf(&page);
    let add = |name: &'static str, district: &'static str, password: &'static str| {
        [
            ("csrf", token.clone()),
            ("name", name.to_string()),
            ("role", "operator".to_string()),
            ("district", district.to_string()),
            ("password", password.to_string()),
        ]
    };
    let form = |f: [(&'static str, String); 5]| f.map(|(k, v)| (k, v));
    let send = |f: [(&'static str, String); 5]| {
        let (t, admin) = (&t, admin.clone());
        async move {
            http()
                .post(format!("{}/console/admin/users", t.base))
                .header("cookie", admin)
                .form(&f)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // A short password, an unknown district, a bad name: refused.
    assert_eq!(send(form(add("li.wei", "D02", "short"))).await, 400);
    assert_eq!(
        send(form(add("li.wei", "D09", "long enough pw"))).await,
        400
    );
    assert_eq!(
        send(form(add("li wei", "D02", "long enough pw"))).await,
        400
    );
    assert_eq!(
        send(form(add("li.wei", "D02", "long enough pw"))).await,
        303
    );
    // The new user logs in at once, scoped to D02.
    let li = login(&t, "li.wei", "long enough pw")
        .await
        .expect("the added user logs in");
    let (_, lamps) = get(&t, &li, "/console/lamps").await;
    assert!(
        lamps.contains("LX-0002-") && !lamps.contains("LX-0001-"),
        "{lamps}"
    );
    // Removed: the session ends and the login is refused.
    assert_eq!(
        post(
            &t,
            &admin,
            "/console/admin/users/remove",
            &[("csrf", &token), ("name", "li.wei")]
        )
        .await,
        303
    );
    assert_eq!(get(&t, &li, "/console/").await.0, 303, "the session ended");
    assert_eq!(login(&t, "li.wei", "long enough pw").await, Err(401));
    // An admin does not remove themself; north cannot remove anyone.
    assert_eq!(
        post(
            &t,
            &admin,
            "/console/admin/users/remove",
            &[("csrf", &token), ("name", "admin")]
        )
        .await,
        400
    );
    let nt = csrf(&get(&t, &north, "/console/").await.1);
    assert_eq!(
        post(
            &t,
            &north,
            "/console/admin/users/remove",
            &[("csrf", &nt), ("name", "watcher")]
        )
        .await,
        403
    );
    t.stop().await;
}
