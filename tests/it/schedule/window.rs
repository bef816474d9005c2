//! The lighting rate over a window follows the schedule: at 23:30 (隔灯亮)
//! the lamps the plan has off are not in the window's denominator at all,
//! and a lamp the plan has on that is dark (a lamp failure) counts against
//! the rate — per evaluated second, exactly as the figures now say.

use super::{local, Night};
use crate::common::{eventually, ADMIN_TOKEN};
use chrono::{Duration, SecondsFormat, Utc};
use lamp_sim::SlcFault;
use reqwest::Method;
use serde_json::Value;

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: {a} vs {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lighting_rate_over_a_window_follows_the_schedule() {
    let n = Night::start_with(local("2026-12-21", "23:31"), |s| {
        s.figures.evaluation_interval = std::time::Duration::from_millis(200);
    })
    .await;
    let odd = n.odd.clone();
    let odd_count = odd.iter().flatten().filter(|o| **o).count();
    assert!(odd_count > 1 && odd_count < 12);
    // One lamp the plan has on goes dark.
    let (de, dj) = (0..2)
        .flat_map(|e| (0..6).map(move |j| (e, j)))
        .find(|&(e, j)| odd[e][j])
        .unwrap();
    n.sim.set_slc_fault(
        de,
        dj,
        SlcFault {
            failed: true,
            ..Default::default()
        },
    );
    n.wait_lamps("caught up: 隔灯亮", |e, j| {
        if odd[e][j] {
            (true, Some(50.0))
        } else {
            (false, None)
        }
    })
    .await;
    // The figures now: only the odd lamps are expected, one of them dark.
    let want = (Some(odd_count as u64), Some(odd_count as u64 - 1));
    eventually("the figures now follow the schedule", || async {
        let s = n.summary().await;
        (s["lamps_expected_lit"].as_u64(), s["lamps_lit"].as_u64()) == want
    })
    .await;

    let q = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let path = format!(
        "/api/v1/metrics/lighting/window?from={}&to={}",
        q(Utc::now() - Duration::hours(1)),
        q(Utc::now() + Duration::hours(2))
    );
    let read = || async {
        let (s, b) = n.call(Method::GET, ADMIN_TOKEN, &path, None).await;
        assert_eq!(s, 200, "{b}");
        b["city"].clone()
    };
    // One consistent read: the same evaluated time before and after.
    let snapshot = || async {
        loop {
            let a = read().await;
            let b = read().await;
            if a["observed_seconds"] == b["observed_seconds"] {
                return b;
            }
        }
    };
    let observed = |c: &Value| c["observed_seconds"].as_f64().unwrap();
    let more = |start: f64| {
        let read = &read;
        async move {
            eventually("a second more evaluated", || async {
                read().await["observed_seconds"]
                    .as_f64()
                    .is_some_and(|o| o >= start + 1.0)
            })
            .await;
        }
    };
    // A second of evaluated time after the field settled, then two reads
    // a second apart: every tick between them judged the settled field.
    let first = snapshot().await;
    more(observed(&first)).await;
    let a = snapshot().await;
    more(observed(&a)).await;
    let b = snapshot().await;
    let dt = observed(&b) - observed(&a);
    assert!(dt >= 1.0, "{dt}");
    let gained = |k: &str| b[k].as_f64().unwrap() - a[k].as_f64().unwrap();
    // Lamp-seconds per evaluated second = lamps: the even lamps (scheduled
    // off) are not expected; the dark odd one is expected and not lit.
    close(
        gained("lamps_expected_lit_seconds") / dt,
        odd_count as f64,
        "expected per second",
    );
    close(
        gained("lamps_lit_seconds") / dt,
        odd_count as f64 - 1.0,
        "lit per second",
    );
    close(gained("lamps_dark_seconds") / dt, 1.0, "dark per second");
    close(
        gained("lamps_lit_seconds") / gained("lamps_expected_lit_seconds"),
        (odd_count as f64 - 1.0) / odd_count as f64,
        "the rate over the gain",
    );
    // The whole window's rate counts the dark lamp against it too.
    let rate = b["lighting_rate"].as_f64().unwrap();
    assert!(rate < 1.0, "{b}");
    n.stop().await;
}
