//! The outbox on the spool: order, restarts after a stop and after a kill, torn tails.

use super::*;
use std::io::Write;

fn msg(i: usize) -> Message {
    Message {
        retain: false,
        topic: "t".into(),
        payload: i.to_string(),
    }
}

fn payloads(r: std::ops::Range<usize>) -> Vec<String> {
    r.map(|i| i.to_string()).collect()
}

/// Sends everything the outbox holds, acknowledging each; returns payloads.
fn drain(o: &mut Outbox) -> Vec<String> {
    let mut out = Vec::new();
    while let Some((id, m)) = o.next_to_send() {
        out.push(m.payload.clone());
        o.acked(id);
    }
    out
}

/// Hands over and acknowledges the next `n` events, in order.
fn deliver(o: &mut Outbox, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let (id, m) = o.next_to_send().expect("an event waits");
            let p = m.payload.clone();
            o.acked(id);
            p
        })
        .collect()
}

fn spool_len(dir: &Path) -> u64 {
    fs::metadata(dir.join("spool.jsonl")).unwrap().len()
}

#[test]
fn spills_past_the_bound_and_keeps_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 10).unwrap();
    for i in 0..2_500 {
        o.push(msg(i));
    }
    assert_eq!(o.in_memory(), 10);
    assert_eq!(o.spilled(), 2_490);
    assert_eq!(o.spilled_total, 2_490);
    let got = drain(&mut o);
    assert_eq!(got, payloads(0..2_500));
    assert!(o.is_empty());
    assert_eq!(spool_len(dir.path()), 0, "spool compacted");
}

#[test]
fn in_flight_events_go_again_after_a_disconnect() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 100).unwrap();
    for i in 0..5 {
        o.push(msg(i));
    }
    let a = o.next_to_send().unwrap().0;
    let _b = o.next_to_send().unwrap().0;
    let c = o.next_to_send().unwrap().0;
    o.acked(a);
    o.acked(c);
    o.requeue_in_flight();
    assert_eq!(drain(&mut o), ["1", "3", "4"]);
}

#[test]
fn a_stopped_outbox_resumes_in_order_in_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 3).unwrap();
    for i in 0..8 {
        o.push(msg(i));
    }
    let first = o.next_to_send().unwrap().0;
    o.acked(first);
    assert_eq!(o.persist().unwrap(), 2);
    drop(o);
    let mut o = Outbox::open(dir.path(), 3).unwrap();
    o.push(msg(8));
    assert_eq!(drain(&mut o), payloads(1..9));
}

#[test]
fn order_holds_across_memory_and_spool_while_events_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 4).unwrap();
    let mut got = Vec::new();
    let mut next = 0;
    // Bursts larger than memory, delivered a few at a time, so events
    // move memory → spool → window → broker in every combination.
    for burst in [3, 9, 1, 7, 2, 12] {
        for _ in 0..burst {
            o.push(msg(next));
            next += 1;
        }
        got.extend(deliver(&mut o, 2));
        assert!(o.in_memory() <= 4, "memory stays bounded");
    }
    got.extend(drain(&mut o));
    assert_eq!(got, payloads(0..next));
    assert!(o.is_empty());
    assert_eq!((o.in_memory(), o.spilled()), (0, 0));
    assert_eq!(spool_len(dir.path()), 0);
}

#[test]
fn a_clean_stop_replays_every_unacked_event_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 4).unwrap();
    for i in 0..4 {
        o.push(msg(i)); // memory only
    }
    for i in 4..12 {
        o.push(msg(i)); // spool
    }
    // 0..3 delivered; memory had room, so 4, 5, 6 are in the window.
    assert_eq!(deliver(&mut o, 3), ["0", "1", "2"]);
    assert_eq!((o.in_memory(), o.spilled()), (4, 5));
    // 3 (memory only) and 4 in flight, 5 acknowledged out of order.
    let _three = o.next_to_send().unwrap().0;
    let _four = o.next_to_send().unwrap().0;
    let five = o.next_to_send().unwrap().0;
    o.acked(five);
    o.requeue_in_flight();
    // 3, 4, 6 are unacknowledged in memory; 7..12 are on disk only.
    assert_eq!(o.persist().unwrap(), 3);
    drop(o);
    let mut o = Outbox::open(dir.path(), 4).unwrap();
    assert_eq!(o.in_memory() + o.spilled(), 8);
    let want: Vec<String> = [3, 4, 6, 7, 8, 9, 10, 11]
        .iter()
        .map(|i| i.to_string())
        .collect();
    let got = drain(&mut o);
    assert_eq!(got.len(), 8);
    assert_eq!(got, want);
    drop(o);
    let mut o = Outbox::open(dir.path(), 4).unwrap();
    assert!(o.is_empty(), "nothing comes a second time");
    assert!(o.next_to_send().is_none());
}

#[test]
fn a_kill_replays_every_spooled_unacked_event_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 3).unwrap();
    for i in 0..10 {
        o.push(msg(i));
    }
    // 0..3 in memory, 3..10 spooled; deliver 0..5 (3 and 4 from the spool).
    assert_eq!(deliver(&mut o, 5), payloads(0..5));
    let _in_flight = o.next_to_send().unwrap();
    // Killed: no persist.
    drop(o);
    let mut o = Outbox::open(dir.path(), 3).unwrap();
    assert_eq!(drain(&mut o), payloads(5..10));
    drop(o);
    assert!(Outbox::open(dir.path(), 3).unwrap().is_empty());
}

#[test]
fn a_kill_loses_no_event_that_was_queued() {
    // Events under the memory cap are on disk too, from the first one.
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 3).unwrap();
    for i in 0..5 {
        o.push(msg(i));
    }
    assert_eq!((o.in_memory(), o.spilled()), (3, 2));
    // One delivered, one in flight when the process dies.
    assert_eq!(deliver(&mut o, 1), ["0"]);
    let _in_flight = o.next_to_send().unwrap();
    drop(o);
    let mut o = Outbox::open(dir.path(), 3).unwrap();
    assert_eq!(drain(&mut o), payloads(1..5));
    drop(o);
    assert!(Outbox::open(dir.path(), 3).unwrap().is_empty());
}

#[test]
fn a_batch_of_events_is_one_append_and_keeps_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 2).unwrap();
    o.push(msg(0));
    o.push_all((1..6).map(msg).collect());
    assert_eq!((o.in_memory(), o.spilled()), (2, 4));
    assert_eq!(o.spilled_total, 4);
    drop(o);
    let mut o = Outbox::open(dir.path(), 2).unwrap();
    assert_eq!(drain(&mut o), payloads(0..6));
}

#[test]
fn a_spool_that_never_empties_is_compacted_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 4).unwrap();
    o.compact_at = 1;
    let mut got = Vec::new();
    // Always one event waiting, so the spool never empties by itself.
    o.push(msg(0));
    for i in 1..50 {
        o.push(msg(i));
        got.extend(deliver(&mut o, 1));
        o.compact_at = 1;
    }
    let len = spool_len(dir.path());
    assert!(
        len < 300,
        "front cut off: {len} bytes (50 events take 1,500)"
    );
    drop(o);
    let mut o = Outbox::open(dir.path(), 4).unwrap();
    got.extend(drain(&mut o));
    assert_eq!(got, payloads(0..50));
}

#[test]
fn a_torn_tail_loses_only_the_event_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 2).unwrap();
    for i in 0..6 {
        o.push(msg(i));
    }
    assert_eq!(deliver(&mut o, 2), ["0", "1"]);
    drop(o);
    // Killed in the middle of spooling event 6.
    let mut raw = fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("spool.jsonl"))
        .unwrap();
    raw.write_all(br#"{"topic":"t","payl"#).unwrap();
    drop(raw);
    let mut o = Outbox::open(dir.path(), 2).unwrap();
    assert_eq!(o.in_memory() + o.spilled(), 4);
    o.push(msg(7));
    assert_eq!(drain(&mut o), ["2", "3", "4", "5", "7"]);
}

#[test]
fn a_dropped_event_leaves_in_its_turn_and_does_not_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = Outbox::open(dir.path(), 2).unwrap();
    for i in 0..5 {
        o.push(msg(i));
    }
    let poison = o.next_to_send().unwrap().0;
    o.dropped(poison);
    assert_eq!(deliver(&mut o, 1), ["1"]);
    // From the spool too: 2 is in the window now.
    let (id, m) = o.next_to_send().unwrap();
    assert_eq!(m.payload, "2");
    o.dropped(id);
    o.requeue_in_flight();
    o.persist().unwrap();
    drop(o);
    let mut o = Outbox::open(dir.path(), 2).unwrap();
    assert_eq!(drain(&mut o), ["3", "4"]);
}

#[test]
fn a_damaged_spool_is_set_aside_and_does_not_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("spool.jsonl"), "not an event\n").unwrap();
    let mut o = Outbox::open(dir.path(), 10).unwrap();
    assert!(o.is_empty());
    let aside = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("spool.jsonl.bad-")
        })
        .count();
    assert_eq!(aside, 1);
    o.push(msg(1));
    assert_eq!(drain(&mut o), ["1"]);
}

#[test]
fn spill_segments_of_an_earlier_version_go_out_first() {
    let dir = tempfile::tempdir().unwrap();
    let line = |i: usize| format!("{}\n", serde_json::to_string(&msg(i)).unwrap());
    // Written back at a stop (a lower id), then spilled, then a torn end.
    fs::write(
        dir.path().join("00000001099511627775.jsonl"),
        line(0) + &line(1),
    )
    .unwrap();
    fs::write(
        dir.path().join("00000001099511627776.jsonl"),
        line(2) + &line(3) + r#"{"topic":"t","pa"#,
    )
    .unwrap();
    let mut o = Outbox::open(dir.path(), 10).unwrap();
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("spool."))
        .collect();
    assert!(names.is_empty(), "segments moved: {names:?}");
    o.push(msg(4));
    assert_eq!(drain(&mut o), payloads(0..5));
}
