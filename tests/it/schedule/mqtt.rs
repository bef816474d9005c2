//! The night plan on MQTT, against the real Mosquitto: every command the
//! schedule issues is acked at `{root}/commands/{id}` (accepted, then done)
//! like any other, and each district's summary is retained at
//! `{root}/{district}/schedule/state`, published again when a switch point
//! changes it — not every tick.

use super::{local, sunset, Night};
use crate::common::eventually;
use crate::mqtt::harness::{clear_retained, unique_root, Subscriber, MOSQUITTO};
use chrono::{Duration, Utc};
use serde_json::{json, Value};

fn summary_topic(root: &str, d: &str) -> String {
    format!("{root}/{d}/schedule/state")
}

/// The summary's counts by level, as `[(level, targets)]`.
fn by_level(s: &Value, which: &str) -> Vec<(Value, u64)> {
    s[which]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["level"].clone(), x["targets"].as_u64().unwrap()))
        .collect()
}

/// How many summaries of district `d` the subscriber has had.
fn published(sub: &Subscriber, root: &str, d: &str) -> usize {
    let topic = summary_topic(root, d);
    sub.seen
        .lock()
        .log
        .iter()
        .filter(|(t, _, _)| *t == topic)
        .count()
}

/// Each schedule command completed so far has its accepted and done acks.
async fn every_schedule_command_acked(n: &Night, sub: &Subscriber, root: &str, note: &str) {
    let control = n.app.as_ref().unwrap().control();
    let far = Duration::days(1);
    let commands = control.audit(Utc::now() - far, Utc::now() + far, Some("schedule"));
    let ours: Vec<_> = commands
        .iter()
        .filter(|c| {
            c.selector["note"]
                .as_str()
                .is_some_and(|x| x.contains(note))
        })
        .collect();
    assert!(!ours.is_empty(), "schedule commands at {note}");
    for c in ours {
        let topic = format!("{root}/commands/{}", c.id);
        // A target offline at the first tick fails (and is tried again by
        // a command of its own): the done ack says what the audit says.
        let tally = c.tally();
        eventually(&format!("acks of {}", c.id), || async {
            let seen = sub.seen.lock();
            let acks: Vec<Value> = seen
                .log
                .iter()
                .filter(|(t, _, _)| *t == topic)
                .map(|(_, p, _)| serde_json::from_str(p).unwrap())
                .collect();
            // QoS 1 may repeat one; accepted first, done last.
            let (Some(first), Some(last)) = (acks.first(), acks.last()) else {
                return false;
            };
            acks.len() >= 2
                && first["status"] == "accepted"
                && first["source"] == "schedule"
                && first["targets"] == json!(c.targets.len())
                && first["note"].as_str().is_some_and(|x| x.contains(note))
                && last["status"] == "done"
                && last["source"] == "schedule"
                && last["confirmed"] == json!(tally.confirmed)
                && last["failed"] == json!(tally.failed)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_points_are_acked_and_change_the_retained_summaries() {
    let root = unique_root("schedule");
    let sub = Subscriber::start("127.0.0.1", 1883, &format!("{root}/#")).await;
    let url = format!("mqtt://{MOSQUITTO}");
    let r = root.clone();
    let date = "2026-12-21";
    let n = Night::start_with(local(date, "12:00"), move |s| {
        s.mqtt.url = url.parse().unwrap();
        s.mqtt.topic_root = r.clone();
        s.gateway.id = format!("gw-{r}");
        s.mqtt.reconnect_min = std::time::Duration::from_millis(50);
        s.mqtt.reconnect_max = std::time::Duration::from_millis(300);
    })
    .await;
    let targets = n.targets();
    let in_district = |d: &str| {
        // Endpoint 0's cabinet and lamps are in D01, endpoint 1's in D02.
        let cab = if d == "D01" { "CAB-0001" } else { "CAB-0002" };
        let lamp = if d == "D01" { "LX-0001-" } else { "LX-0002-" };
        targets
            .iter()
            .filter(|(t, _)| t.starts_with(cab) || t.starts_with(lamp))
            .count() as u64
    };
    let count = [("D01", in_district("D01")), ("D02", in_district("D02"))];
    assert_eq!(count[0].1 + count[1].1, targets.len() as u64);

    // Noon: everything off, and every device says so.
    for (d, total) in count {
        eventually(&format!("{d}: all off and agreeing"), || async {
            sub.state(&summary_topic(&root, d)).is_some_and(|s| {
                s["district"] == d
                    && s["gateway"] == format!("gw-{root}")
                    && s["targets"] == total
                    && by_level(&s, "scheduled") == [(json!(0.0), total)]
                    && by_level(&s, "effective") == [(json!(0.0), total)]
                    && s["programs"] == json!({"night": total})
                    && s["agree"] == total
            })
        })
        .await;
    }
    every_schedule_command_acked(&n, &sub, &root, "sunrise").await;

    // Unchanged: not published again, tick after tick (50 ms each).
    let before = published(&sub, &root, "D01");
    let ticks = n.app.as_ref().unwrap().schedule().unwrap().ticks();
    eventually("twenty ticks", || async {
        n.app.as_ref().unwrap().schedule().unwrap().ticks() >= ticks + 20
    })
    .await;
    assert_eq!(
        published(&sub, &root, "D01"),
        before,
        "an unchanged summary is not published again"
    );

    // Sunset: the switch point's commands are acked; the summaries move
    // to everything on, and agree once the devices confirm.
    n.set(sunset(date) + Duration::minutes(1)).await;
    for (d, total) in count {
        eventually(&format!("{d}: all on and agreeing"), || async {
            sub.state(&summary_topic(&root, d)).is_some_and(|s| {
                by_level(&s, "scheduled") == [(json!(100.0), total)]
                    && by_level(&s, "effective") == [(json!(100.0), total)]
                    && s["agree"] == total
                    && s["disagree"] == 0
            })
        })
        .await;
    }
    every_schedule_command_acked(&n, &sub, &root, "sunset").await;
    assert!(published(&sub, &root, "D01") > before);

    // An operator holds one lamp off: D01's summary counts it overridden.
    let r = n
        .http
        .post(format!("{}/api/v1/lamps/LX-0001-002/commands", n.base))
        .bearer_auth(crate::common::ADMIN_TOKEN)
        .json(&json!({"action": "off"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let total = count[0].1;
    eventually("D01: one held off", || async {
        sub.state(&summary_topic(&root, "D01")).is_some_and(|s| {
            s["overridden"] == 1
                && by_level(&s, "scheduled") == [(json!(100.0), total)]
                && by_level(&s, "effective") == [(json!(0.0), 1), (json!(100.0), total - 1)]
                && s["agree"] == total
        })
    })
    .await;

    // A subscriber that comes later gets the summaries from the broker.
    let late = Subscriber::start("127.0.0.1", 1883, &summary_topic(&root, "+")).await;
    eventually("retained summaries", || async {
        let seen = late.seen.lock();
        ["D01", "D02"].iter().all(|d| {
            seen.log
                .iter()
                .any(|(t, _, retained)| *t == summary_topic(&root, d) && *retained)
        })
    })
    .await;
    late.stop();
    sub.stop();
    n.stop().await;
    clear_retained("127.0.0.1", 1883, &root).await;
}
