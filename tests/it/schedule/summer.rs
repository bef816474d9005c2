//! A summer night in Jinan (2026-06-21, the shortest): every write the
//! schedule makes, switch point by switch point, is exactly the one
//! expected — each target once at each point that changes it, nothing
//! between points, a contactor not written again when its lamps only dim.

use super::{local, sunrise, sunset, Night};
use crate::common::lamp_id;
use chrono::{Duration, Timelike};
use std::collections::BTreeMap;

/// The writes since `from` (an index into [`Night::writes`]), as target →
/// actions, once the expected number of them have completed.
async fn writes_after(n: &Night, from: usize, expected: usize) -> BTreeMap<String, Vec<String>> {
    crate::common::eventually(&format!("{expected} schedule writes"), || async {
        n.writes().len() >= from + expected
    })
    .await;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (target, action, _) in n.writes().into_iter().skip(from) {
        out.entry(target).or_default().push(action);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_summer_night_in_jinan_writes_exactly_what_the_plan_says() {
    let date = "2026-06-21";
    // Sun times as the engine computes them: within a minute of NOAA's
    // (sun.rs checks the formulas); a June evening in Jinan after 19:30
    // local, the morning before 05:00.
    let (set, rise) = (sunset(date), sunrise("2026-06-22"));
    let tz = chrono_tz::Asia::Shanghai;
    let set_local = set.with_timezone(&tz);
    let rise_local = rise.with_timezone(&tz);
    assert!(
        (set_local.hour(), set_local.minute()) >= (19, 30)
            && (set_local.hour(), set_local.minute()) < (19, 40),
        "{set_local}"
    );
    assert!(
        (rise_local.hour(), rise_local.minute()) >= (4, 40)
            && (rise_local.hour(), rise_local.minute()) < (5, 0),
        "{rise_local}"
    );

    let n = Night::start(local(date, "12:00")).await;
    let targets = n.targets();
    let lamps: Vec<String> = targets
        .iter()
        .filter(|(_, k)| *k == "lamp")
        .map(|(t, _)| t.clone())
        .collect();
    let circuits: Vec<String> = targets
        .iter()
        .filter(|(_, k)| *k == "circuit")
        .map(|(t, _)| t.clone())
        .collect();
    assert_eq!(lamps.len(), 12);
    assert!(!circuits.is_empty(), "the RTUs' circuits are governed too");
    let odd: Vec<String> = (0..2)
        .flat_map(|e| (0..6).map(move |j| (e, j)))
        .filter(|&(e, j)| n.odd[e][j])
        .map(|(e, j)| lamp_id(e, j))
        .collect();

    // Noon, catch-up: the last point before now is the morning's sunrise,
    // off: every lamp and every contactor written off once.
    let w = writes_after(&n, 0, targets.len()).await;
    n.wait_lamps("all off at noon", |_, _| (false, None)).await;
    assert_eq!(w.len(), targets.len(), "{w:?}");
    assert!(w.values().all(|a| a == &["off"]), "{w:?}");
    let mut seen = n.writes().len();

    // A minute before sunset: nothing.
    n.set(set - Duration::minutes(1)).await;
    n.set(set - Duration::seconds(1)).await;
    assert_eq!(n.writes().len(), seen, "no write before sunset");
    assert!(n.lamps().iter().all(|(on, _)| !on));

    // Sunset: every lamp and contactor on, once.
    n.set(set + Duration::seconds(1)).await;
    let w = writes_after(&n, seen, targets.len()).await;
    assert_eq!(w.len(), targets.len(), "{w:?}");
    // Lamps at full level (a dim of 100 %, so a lamp dimmed last night
    // comes back at 100 %), contactors closed.
    assert!(
        w.iter().all(|(t, a)| if t.contains('#') {
            a == &["on"]
        } else {
            a == &["dim 100.0"]
        }),
        "{w:?}"
    );
    n.wait_lamps("all on after sunset", |_, _| (true, Some(100.0)))
        .await;
    assert!(
        n.writes()
            .iter()
            .skip(seen)
            .all(|(_, _, note)| note.contains("sunset")),
        "the writes name their switch point"
    );
    seen = n.writes().len();

    // 23:29: nothing. 23:30: the odd lamps dim to 50 %, the even ones go
    // off (隔灯亮); the contactors stay closed and are not written.
    n.set(local(date, "23:29")).await;
    assert_eq!(n.writes().len(), seen, "no write between points");
    n.set(local(date, "23:30")).await;
    let w = writes_after(&n, seen, lamps.len()).await;
    let want: BTreeMap<String, Vec<String>> = lamps
        .iter()
        .map(|l| {
            let a = if odd.contains(l) { "dim 50.0" } else { "off" };
            (l.clone(), vec![a.to_string()])
        })
        .collect();
    assert_eq!(w, want);
    let odd_of = n.odd.clone();
    n.wait_lamps("隔灯亮 at 23:30", |e, j| {
        if odd_of[e][j] {
            (true, Some(50.0))
        } else {
            (false, None)
        }
    })
    .await;
    seen = n.writes().len();

    // Past midnight, before sunrise: nothing.
    n.set(rise - Duration::minutes(1)).await;
    assert_eq!(n.writes().len(), seen, "no write before sunrise");

    // Sunrise: the odd lamps and every contactor off; the even lamps are
    // off already and get no write.
    n.set(rise + Duration::seconds(1)).await;
    let w = writes_after(&n, seen, odd.len() + circuits.len()).await;
    let want: BTreeMap<String, Vec<String>> = odd
        .iter()
        .chain(&circuits)
        .map(|t| (t.clone(), vec!["off".to_string()]))
        .collect();
    assert_eq!(w, want);
    n.wait_lamps("all off after sunrise", |_, _| (false, None))
        .await;
    // And nothing more for the rest of the morning.
    seen = n.writes().len();
    n.set(local("2026-06-22", "11:00")).await;
    assert_eq!(n.writes().len(), seen, "no write after sunrise");
    n.stop().await;
}
