//! The console's lamp and cabinet pages in detail: the cabinet's history
//! charts, a command's progress pushed live, and the language a person
//! chose following them to another browser. Crafted requests over HTTP,
//! and the same in a real browser (the harness of console.rs); each browser
//! test saves a screenshot under target/console-screenshots/.

use crate::common::{eventually, TestApp};
use crate::console::{
    browser, console_city, get, login, Browser, ONE_BROWSER, OTHER_LAMP, OWN_LAMP, PASSWORD,
};
use chrono::{Duration, Utc};
use lamp_gateway::store::{Batch, RtuRow};
use serde_json::{json, Value};

/// OWN_LAMP's neighbour on the same endpoint (simulator SLC 0/1), in D01.
const SIBLING: &str = "LX-0001-002";

/// The last day of cabinet 0's RTU, every 2 minutes, written through the
/// store's write path: lit (2 kW) for the first 10 hours and the last 3,
/// 40 W of losses between; phases around 220 V, the meter counting up to
/// where the simulated one stands now.
async fn write_last_day(t: &TestApp) {
    let db = t.app.as_ref().unwrap().store().unwrap().db.clone();
    let (rtu, district) = (crate::common::rtu_id(0), "D01");
    let start = Utc::now() - Duration::hours(24);
    let mut batch = Batch::default();
    let power = |k: i64| {
        let minute = 2 * k;
        let lit = !(10 * 60..21 * 60).contains(&minute);
        (minute, lit, if lit { 2_000.0 } else { 40.0 })
    };
    let samples = 24 * 30 - 5;
    let metered: f64 = (0..samples).map(|k| power(k).2 / 1000.0 / 30.0).sum();
    let mut kwh = t.sim.rtu_values(0).energy - metered;
    for k in 0..samples {
        let (minute, lit, power) = power(k);
        kwh += power / 1000.0 / 30.0;
        let wave = (f64::from(k as u32) / 20.0).sin();
        batch.rtus.push(RtuRow {
            time_us: (start + Duration::minutes(minute)).timestamp_micros(),
            rtu_id: rtu.as_str().into(),
            district: district.into(),
            circuits: 2,
            contactors: if lit { 0b11 } else { 0 },
            voltage_v: [0.0, 1.0, 2.0].map(|n| Some(220.0 + 4.0 * wave + n)),
            current_a: [0.0, 0.2, 0.4].map(|n| Some(power / 660.0 + n)),
            active_power_w: Some(power),
            energy_kwh: Some(kwh),
            door_alarm: false,
            leakage_alarm: false,
        });
    }
    db.write(&batch).await.unwrap();
}

/// The cabinet's history picture as `who` gets it.
async fn cabinet_history(t: &TestApp, who: &str, cabinet: &str, span: &str) -> (u16, String) {
    get(
        t,
        who,
        &format!("/console/cabinets/{cabinet}/history.svg?span={span}"),
    )
    .await
}

/// Whether the picture `css` has loaded and shows an SVG of `height`.
async fn picture_loaded(b: &Browser, css: &str, height: i64) -> bool {
    let got = b
        .client
        .execute(
            "const i = document.querySelector(arguments[0]);
             return i && i.complete ? [i.naturalWidth, i.naturalHeight] : [0, 0];",
            vec![json!(css)],
        )
        .await
        .unwrap();
    got == json!([720, height])
}

#[tokio::test]
async fn cabinet_history_charts_its_rtu_within_the_district() {
    let t = console_city(|_| {}).await;
    let (own, other) = (t.sim.cabinet_id(0), t.sim.cabinet_id(1));
    let north = login(&t, "north", PASSWORD).await.unwrap();
    let (_, before) = cabinet_history(&t, &north, &own, "24h").await;
    assert!(before.contains(r#"height="1040""#), "four panels: {before}");
    assert!(!before.contains(">2100<"), "no lit day yet: {before}");
    write_last_day(&t).await;
    // Every span draws the power, the three phases' voltages and currents
    // and the energy per hour: 8 lines, from raw samples over the day and
    // from hours beyond.
    for span in ["24h", "7d", "30d"] {
        let (status, svg) = cabinet_history(&t, &north, &own, span).await;
        assert_eq!(status, 200, "{span}");
        assert_eq!(svg.matches("<path").count(), 8, "{span}: {svg}");
        for title in [
            "有功功率 (W)",
            "相电压 (V)",
            "相电流 (A)",
            "每小时电能 (kWh)",
        ] {
            assert!(svg.contains(title), "{span} {title}: {svg}");
        }
        // The power's scale reaches the lit hours' 2 kW.
        assert!(svg.contains(">2100<"), "{span}: {svg}");
        assert!(svg.len() < 200_000, "{span}: {} bytes", svg.len());
    }
    assert_eq!(cabinet_history(&t, &north, &own, "1y").await.0, 400);
    // Another district's cabinet does not exist.
    assert_eq!(cabinet_history(&t, &north, &other, "24h").await.0, 404);
    let (status, page) = get(&t, &north, &format!("/console/cabinets/{own}")).await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"id="cabinet-history""#), "{page}");
    t.stop().await;
}

#[tokio::test]
async fn browser_cabinet_page_shows_its_history_and_switches_the_span() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|_| {}).await;
    let own = t.sim.cabinet_id(0);
    write_last_day(&t).await;
    let Some(b) = browser(&t, 1280, 1600).await else {
        return;
    };
    b.login("north", PASSWORD).await;
    b.wait_for("section.scope").await;
    b.goto(&format!("/console/cabinets/{own}")).await;
    b.wait_for("#cabinet-history").await;
    eventually("the day's picture loaded", || async {
        picture_loaded(&b, "#cabinet-history", 1040).await
    })
    .await;
    b.client
        .execute(
            "document.getElementById('cabinet-history').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .unwrap();
    b.screenshot("cabinet-history").await;
    // The 7-day link swaps the picture without leaving the page.
    b.client
        .execute("window.notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    b.click("section.history a[data-span='7d']").await;
    eventually("the 7-day picture loaded", || async {
        let src = b
            .wait_for("#cabinet-history")
            .await
            .attr("src")
            .await
            .unwrap()
            .unwrap_or_default();
        src.ends_with("span=7d") && picture_loaded(&b, "#cabinet-history", 1040).await
    })
    .await;
    let still = b
        .client
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(still, Value::Bool(true), "the page stayed");
    assert_eq!(
        b.text("section.history a.current").await,
        "7天",
        "the chosen span is marked"
    );
    b.screenshot("cabinet-history-7d").await;
    b.close().await;
    t.stop().await;
}

/// Requests wait 2 s for an answer, so a 600 ms late endpoint is slow, not
/// failing.
fn patient(s: &mut lamp_gateway::settings::Settings) {
    s.poll.request_timeout = std::time::Duration::from_secs(2);
}

/// The `progress` events of a command's stream, read until the server ends
/// it (20 s at most).
async fn progress_events(t: &TestApp, who: &str, command: &str) -> Vec<Value> {
    let mut r = crate::console::http()
        .get(format!("{}/console/commands/{command}/events", t.base))
        .header("cookie", who)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(chunk) = r.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the stream ends once the command is done");
    text.split("event: progress\ndata: ")
        .skip(1)
        .map(|e| serde_json::from_str(e.lines().next().unwrap()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_command_stream_pushes_each_step_then_ends_within_the_district() {
    let t = console_city(patient).await;
    let north = login(&t, "north", PASSWORD).await.unwrap();
    // Endpoint 0 answers 600 ms late: the write and its read-back each
    // take that long, so every step is seen.
    t.sim
        .set_endpoint_fault(0, Some(lamp_sim::EndpointFault::Delay { ms: 600 }));
    let (_, page) = get(&t, &north, &format!("/console/lamps/{OWN_LAMP}")).await;
    let token = crate::console::csrf(&page);
    let r = crate::console::http()
        .post(format!("{}/console/lamps/{OWN_LAMP}/command", t.base))
        .header("cookie", &north)
        .form(&[("csrf", token.as_str()), ("action", "dim"), ("level", "35")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let command = location.rsplit("command=").next().unwrap().to_string();
    let events = progress_events(&t, &north, &command).await;
    let states: Vec<&str> = events
        .iter()
        .map(|e| e["targets"][0]["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["queued", "written", "confirmed"], "{events:?}");
    assert_eq!(events[2]["targets"][0]["label"], "已确认");
    assert_eq!(
        events.iter().map(|e| e["done"] == true).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(t.sim.slc_values(0, 0).dim_level, 35.0);
    // A done command: its one event, then the end.
    let again = progress_events(&t, &north, &command).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["done"], true);
    t.sim.set_endpoint_fault(0, None);

    // A failure says why: the SLC refuses with a Modbus exception (or,
    // had it been polled offline first, that it is offline).
    t.sim.set_slc_fault(
        0,
        1,
        lamp_sim::SlcFault {
            exception: Some(4),
            ..Default::default()
        },
    );
    let (status, body) = t
        .post(
            &format!("/api/v1/lamps/{SIBLING}/commands"),
            json!({"action": "off"}),
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let id = body["id"].as_str().unwrap().to_string();
    let events = progress_events(&t, &north, &id).await;
    let last = &events.last().unwrap()["targets"][0];
    assert_eq!(last["state"], "failed", "{events:?}");
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason == "设备拒绝（Modbus 异常码） 0x04" || reason == "设备离线",
        "{reason}"
    );

    // Another district's command does not exist to a district operator.
    let (status, body) = t
        .post(
            &format!("/api/v1/lamps/{OTHER_LAMP}/commands"),
            json!({"action": "off"}),
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let other = body["id"].as_str().unwrap();
    assert_eq!(
        get(&t, &north, &format!("/console/commands/{other}/events"))
            .await
            .0,
        404
    );
    t.stop().await;
}

#[tokio::test]
async fn browser_shows_a_command_step_by_step_without_reloading() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(patient).await;
    let Some(b) = browser(&t, 1280, 1000).await else {
        return;
    };
    b.login("north", PASSWORD).await;
    b.wait_for("section.scope").await;
    t.sim
        .set_endpoint_fault(0, Some(lamp_sim::EndpointFault::Delay { ms: 600 }));
    b.goto(&format!("/console/lamps/{OWN_LAMP}")).await;
    let level = b.wait_for("#level").await;
    level.clear().await.unwrap();
    level.send_keys("25").await.unwrap();
    b.click("#dim").await;
    let target = format!("#command li[data-target='{OWN_LAMP}']");
    b.wait_for(&target).await;
    b.client
        .execute("window.notReloaded = true; return null;", vec![])
        .await
        .unwrap();
    b.wait_for("#command[data-done=true]").await;
    assert_eq!(
        b.text(&format!("{target} .steps")).await,
        "排队 → 已下发 → 已确认",
        "each step as it came"
    );
    assert_eq!(
        b.wait_for(&target)
            .await
            .attr("data-state")
            .await
            .unwrap()
            .as_deref(),
        Some("confirmed")
    );
    assert_eq!(b.text("#command .status").await, "已完成");
    let still = b
        .client
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(still, Value::Bool(true), "followed live, not reloaded");
    assert_eq!(t.sim.slc_values(0, 0).dim_level, 25.0);
    b.client
        .execute(
            "document.getElementById('command').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .unwrap();
    b.screenshot("command-progress").await;
    t.sim.set_endpoint_fault(0, None);

    // A failed command shows its reason on the page.
    t.sim.set_slc_fault(
        0,
        1,
        lamp_sim::SlcFault {
            exception: Some(4),
            ..Default::default()
        },
    );
    b.goto(&format!("/console/lamps/{SIBLING}")).await;
    b.wait_for("#off").await;
    b.click("#off").await;
    let target = format!("#command li[data-target='{SIBLING}']");
    b.wait_for(&format!("{target}[data-state=failed]")).await;
    let reason = b.text(&format!("{target} .reason")).await;
    assert!(
        reason == "— 设备拒绝（Modbus 异常码） 0x04" || reason == "— 设备离线",
        "{reason}"
    );
    b.client
        .execute(
            "document.getElementById('command').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .unwrap();
    b.screenshot("command-failed").await;
    b.close().await;
    t.stop().await;
}

/// The `lang` of the overview's `<html>` as `who` gets it.
async fn page_language(t: &TestApp, who: &str) -> String {
    let (status, page) = get(t, who, "/console/").await;
    assert_eq!(status, 200);
    let at = page
        .find("<html lang=\"")
        .expect("the page says its language")
        + 12;
    page[at..at + 2].to_string()
}

/// The page's heading now (read in one script call: a page being replaced
/// has no stale element to read).
async fn heading(b: &Browser) -> String {
    let h = b
        .client
        .execute(
            "const h = document.querySelector('h1'); return h ? h.textContent : '';",
            vec![],
        )
        .await
        .unwrap();
    h.as_str().unwrap_or_default().trim().to_string()
}

#[tokio::test]
async fn browser_a_persons_language_follows_them_to_another_browser() {
    let _one = ONE_BROWSER.lock().await;
    let t = console_city(|s| s.console.language = lamp_gateway::console::Language::En).await;
    // Chosen without the session's CSRF token: refused, nothing kept.
    let north = login(&t, "north", PASSWORD).await.unwrap();
    assert_eq!(
        crate::console::post(&t, &north, "/console/lang", &[("to", "zh")]).await,
        403
    );
    assert_eq!(page_language(&t, &north).await, "en");

    let Some(b) = browser(&t, 1280, 900).await else {
        return;
    };
    b.login("north", PASSWORD).await;
    b.wait_for("section.scope").await;
    assert_eq!(heading(&b).await, "Overview", "the configured language");
    b.click("#lang").await;
    eventually("the page in Chinese", || async {
        heading(&b).await == "总览"
    })
    .await;
    b.close().await;

    // Another browser (a fresh profile: no cookie of the first one) and a
    // plain client: the person's choice, the configured one for others.
    assert_eq!(
        page_language(&t, &login(&t, "north", PASSWORD).await.unwrap()).await,
        "zh"
    );
    assert_eq!(
        page_language(&t, &login(&t, "watcher", PASSWORD).await.unwrap()).await,
        "en"
    );
    let Some(b) = browser(&t, 1280, 900).await else {
        return;
    };
    b.goto("/console/login").await;
    b.wait_for("form.login").await;
    assert_eq!(
        heading(&b).await,
        "Log in",
        "a new browser: the configured language"
    );
    b.login("north", PASSWORD).await;
    b.wait_for("section.scope").await;
    assert_eq!(heading(&b).await, "总览");
    b.screenshot("language-follows-the-person").await;
    // Back to English from the Chinese page: kept the same way.
    b.click("#lang").await;
    eventually("the page in English", || async {
        heading(&b).await == "Overview"
    })
    .await;
    b.close().await;
    assert_eq!(
        page_language(&t, &login(&t, "north", PASSWORD).await.unwrap()).await,
        "en"
    );
    t.stop().await;
}

/// The overview's next switch points: (when they were counted, the
/// section's text).
async fn switch_points(t: &TestApp, who: &str) -> (String, String) {
    let (status, page) = get(t, who, "/console/").await;
    assert_eq!(status, 200);
    let at = page.find(r#"id="upcoming""#).expect("the section");
    let section = &page[at..];
    let section = &section[..section.find("</section>").unwrap()];
    let counted = section
        .split(r#"data-counted=""#)
        .nth(1)
        .map(|r| r[..r.find('"').unwrap()].to_string())
        .expect("it says when it was counted");
    (counted, section.to_string())
}

#[tokio::test]
async fn overview_switch_points_are_counted_once_until_the_book_changes() {
    let t = console_city(|s| {
        std::fs::write(
            &s.schedule.file,
            crate::console_pages::night_book().to_string(),
        )
        .unwrap();
    })
    .await;
    let north = login(&t, "north", PASSWORD).await.unwrap();
    let (counted, first) = switch_points(&t, &north).await;
    assert!(
        first.contains("23:30") && first.contains("night"),
        "{first}"
    );
    // Served again, not counted again.
    let (again, same) = switch_points(&t, &north).await;
    assert_eq!((&again, &same), (&counted, &first));
    // The program changes: the next page counts the new plan at once.
    let r = crate::console::http()
        .put(format!("{}/api/v1/programs/night", t.base))
        .bearer_auth(crate::common::ADMIN_TOKEN)
        .json(&json!({"id": "night", "points": [
            {"sun": "sunset", "level": "on"},
            {"at": "22:15", "level": 30},
            {"sun": "sunrise", "level": "off"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (recounted, now) = switch_points(&t, &north).await;
    assert_ne!(recounted, counted);
    assert!(now.contains("22:15") && !now.contains("23:30"), "{now}");
    t.stop().await;
}
