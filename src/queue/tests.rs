//! The spool's invariants (listed in the module comment), one test each or more.

use super::*;
use serde::{Deserialize, Serialize};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

/// A record that weighs its number of parts, like a store batch its rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Rec {
    id: u32,
    parts: usize,
}

impl Record for Rec {
    fn weight(&self) -> usize {
        self.parts
    }
}

fn rec(id: u32) -> Rec {
    Rec { id, parts: 2 }
}

fn ids(records: &[Rec]) -> Vec<u32> {
    records.iter().map(|r| r.id).collect()
}

fn tear(dir: &Path, bytes: &[u8]) {
    let mut raw = OpenOptions::new()
        .append(true)
        .open(dir.join("spool.jsonl"))
        .unwrap();
    raw.write_all(bytes).unwrap();
}

fn file_len(dir: &Path) -> u64 {
    fs::metadata(dir.join("spool.jsonl")).unwrap().len()
}

#[test]
fn replays_in_order_across_reopen_and_cuts_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&[rec(1), rec(2), rec(3)]).unwrap();
    assert_eq!((s.len(), s.weight()), (3, 6));
    let f = s.front(4).unwrap();
    assert_eq!(ids(&f.records), [1, 2]);
    assert_eq!(f.weight, 4);
    s.commit(f.mark).unwrap();
    drop(s);
    // A kill in the middle of a write leaves half a line.
    tear(dir.path(), b"{\"id\":4,\"pa");
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    assert_eq!((s.len(), s.weight()), (1, 2));
    let f = s.front(10).unwrap();
    assert_eq!(ids(&f.records), [3]);
    s.commit(f.mark).unwrap();
    assert!(s.is_empty());
    assert_eq!(file_len(dir.path()), 0, "compacted once consumed");
}

#[test]
fn a_torn_tail_loses_only_the_record_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    for i in 0..5 {
        s.append([&rec(i)]).unwrap();
    }
    let whole = file_len(dir.path());
    drop(s);
    tear(dir.path(), b"{\"id\":5");
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    assert_eq!(file_len(dir.path()), whole, "torn line cut");
    assert_eq!(ids(&s.front(100).unwrap().records), [0, 1, 2, 3, 4]);
    // Appends after the cut start on a line of their own.
    s.append([&rec(6)]).unwrap();
    drop(s);
    let s = Spool::<Rec>::open(dir.path()).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [0, 1, 2, 3, 4, 6]);
}

#[test]
fn a_restart_mid_consumption_replays_from_the_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&(0..6).map(rec).collect::<Vec<_>>()).unwrap();
    let window = s.read_after(None, 4).unwrap();
    assert_eq!(window.len(), 4);
    // Commit record by record; 2 and 3 are read but not consumed.
    s.commit(window[0].1).unwrap();
    s.commit(window[1].1).unwrap();
    assert_eq!(s.len(), 4);
    // Reading on from the window goes past it.
    let more = s.read_after(Some(window[3].1), 10).unwrap();
    assert_eq!(more.iter().map(|(r, _)| r.id).collect::<Vec<_>>(), [4, 5]);
    drop(s);
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    assert_eq!((s.len(), s.weight()), (4, 8));
    let f = s.front(100).unwrap();
    assert_eq!(ids(&f.records), [2, 3, 4, 5]);
    s.commit(f.mark).unwrap();
    assert!(s.is_empty());
}

#[test]
fn stale_and_repeated_marks_commit_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&[rec(1), rec(2)]).unwrap();
    let f = s.front(100).unwrap();
    let first = s.read_after(None, 1).unwrap()[0].1;
    s.commit(f.mark).unwrap();
    assert!(s.is_empty());
    // Emptied: a new generation; the old marks cannot consume new records.
    s.append(&[rec(3), rec(4)]).unwrap();
    s.commit(first).unwrap();
    s.commit(f.mark).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [3, 4]);
    let one = s.read_after(None, 1).unwrap()[0].1;
    s.commit(one).unwrap();
    s.commit(one).unwrap();
    assert_eq!((s.len(), s.weight()), (1, 2));
}

#[test]
fn rewrite_front_puts_a_head_before_what_is_past_the_mark() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&(0..5).map(rec).collect::<Vec<_>>()).unwrap();
    let window = s.read_after(None, 3).unwrap();
    s.commit(window[0].1).unwrap();
    // The owner holds 1 and 2 in memory (2 is done), plus 10 and 11 that
    // never reached the disk; 3 and 4 are past its window.
    s.rewrite_front(&[rec(1), rec(10), rec(11)], Some(window[2].1))
        .unwrap();
    assert_eq!((s.len(), s.weight()), (5, 10));
    assert_eq!(ids(&s.front(100).unwrap().records), [1, 10, 11, 3, 4]);
    assert!(!dir.path().join("spool.jsonl.new").exists());
    drop(s);
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    let f = s.front(100).unwrap();
    assert_eq!(ids(&f.records), [1, 10, 11, 3, 4]);
    // Marks from before the rewrite are of another generation.
    s.commit(window[2].1).unwrap();
    assert_eq!(s.len(), 5);
    s.commit(f.mark).unwrap();
    assert!(s.is_empty());
    assert_eq!(file_len(dir.path()), 0);
}

#[test]
fn an_unfinished_rewrite_leaves_the_old_spool() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&[rec(1), rec(2)]).unwrap();
    drop(s);
    fs::write(
        dir.path().join("spool.jsonl.new"),
        b"{\"id\":9,\"parts\":1}\n",
    )
    .unwrap();
    let s = Spool::<Rec>::open(dir.path()).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [1, 2]);
    assert!(!dir.path().join("spool.jsonl.new").exists());
}

fn set_aside_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("spool.jsonl.bad-")
        })
        .collect();
    v.sort();
    v
}

/// A full disk takes part of a write and then fails (`ENOSPC`). The test
/// injects exactly that short write through the spool's own write path
/// rather than mounting a small filesystem, so it runs anywhere without
/// privileges; the whole-gateway case on a real full filesystem is in the
/// integration tests (`full_disk`).
#[test]
fn a_failed_append_is_cut_back_to_the_last_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&[rec(1), rec(2)]).unwrap();
    let whole = file_len(dir.path());
    s.fail_after = Some(7);
    let err = s.append(&[rec(3), rec(4)]).unwrap_err();
    assert!(err.to_string().contains("spool.jsonl"), "{err}");
    assert_eq!(file_len(dir.path()), whole, "no torn bytes left behind");
    assert_eq!(
        (s.len(), s.weight()),
        (2, 4),
        "the failed records are not counted"
    );
    // Space is back: the next append starts on a line of its own.
    s.append(&[rec(5)]).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [1, 2, 5]);
    drop(s);
    let s = Spool::<Rec>::open(dir.path()).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [1, 2, 5]);
    assert!(
        set_aside_files(dir.path()).is_empty(),
        "nothing was damaged"
    );
}

#[test]
fn a_damaged_line_in_the_middle_is_set_aside_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&[rec(1), rec(2)]).unwrap();
    let f = s.read_after(None, 1).unwrap();
    s.commit(f[0].1).unwrap();
    drop(s);
    // A line that is not a record, one that is not even UTF-8, then good
    // records and a torn tail.
    tear(dir.path(), b"{\"id\":3,\"pa{\"id\":4,\"parts\":2}\n");
    tear(dir.path(), b"\xff\xfe\n");
    tear(
        dir.path(),
        b"{\"id\":5,\"parts\":2}\n{\"id\":6,\"parts\":2}\n{\"id\":7",
    );
    let damaged = fs::read(dir.path().join("spool.jsonl")).unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).expect("a damaged spool never stops the start");
    assert_eq!((s.len(), s.weight()), (3, 6));
    assert_eq!(ids(&s.front(100).unwrap().records), [2, 5, 6]);
    let aside = set_aside_files(dir.path());
    assert_eq!(aside.len(), 1);
    assert_eq!(
        fs::read(&aside[0]).unwrap(),
        damaged,
        "kept as it was for an operator"
    );
    assert!(!dir.path().join("spool.jsonl.new").exists());
    // The spool goes on: appends, commits, and a clean reopen.
    s.append([&rec(8)]).unwrap();
    drop(s);
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    let f = s.front(100).unwrap();
    assert_eq!(ids(&f.records), [2, 5, 6, 8]);
    assert_eq!(set_aside_files(dir.path()).len(), 1, "set aside once");
    s.commit(f.mark).unwrap();
    assert!(s.is_empty());
    assert_eq!(file_len(dir.path()), 0);
}

#[test]
fn append_each_marks_every_record_of_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append([&rec(0)]).unwrap();
    let marks = s.append_each(&[rec(1), rec(2), rec(3)]).unwrap();
    assert_eq!(marks.len(), 3);
    assert!(s.append_each(&[]).unwrap().is_empty());
    // Each mark consumes its record and every one before it, no more.
    s.commit(marks[0]).unwrap();
    assert_eq!((s.len(), s.weight()), (2, 4));
    assert_eq!(ids(&s.front(100).unwrap().records), [2, 3]);
    // The marks are the ones a read gives.
    let read = s.read_after(None, 10).unwrap();
    assert_eq!(read[0].1, marks[1]);
    assert_eq!(read[1].1, marks[2]);
    drop(s);
    let s = Spool::<Rec>::open(dir.path()).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [2, 3]);
}

#[test]
fn compaction_keeps_the_waiting_records_and_carries_their_marks() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    // Ids of one width, so every line has the same length.
    let marks = s
        .append_each(&(100..140).map(rec).collect::<Vec<_>>())
        .unwrap();
    let line = file_len(dir.path()) / 40;
    // Too little consumed, or too much still waiting: nothing is done.
    s.commit(marks[4]).unwrap();
    assert_eq!(s.compact(line * 10, u64::MAX).unwrap(), None);
    s.commit(marks[19]).unwrap();
    assert_eq!(
        s.compact(line * 10, u64::MAX).unwrap(),
        None,
        "20 of 40 still wait"
    );
    s.commit(marks[35]).unwrap();
    assert_eq!(s.compact(line * 10, 3 * line).unwrap(), None, "4 lines > 3");
    let rebase = s.compact(line * 10, 4 * line).unwrap().expect("compacted");
    assert_eq!(
        file_len(dir.path()),
        4 * line,
        "only the waiting records kept"
    );
    assert_eq!((s.len(), s.weight()), (4, 8));
    assert_eq!(ids(&s.front(100).unwrap().records), [136, 137, 138, 139]);
    // An old mark as it is commits nothing (another generation); carried
    // over it consumes exactly what it did before.
    s.commit(marks[37]).unwrap();
    assert_eq!(s.len(), 4);
    s.commit(rebase.mark(marks[37])).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [138, 139]);
    // A mark of a record consumed before the compaction commits nothing.
    s.commit(rebase.mark(marks[3])).unwrap();
    assert_eq!(s.len(), 2);
    s.append([&rec(140)]).unwrap();
    drop(s);
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    let f = s.front(100).unwrap();
    assert_eq!(ids(&f.records), [138, 139, 140]);
    s.commit(f.mark).unwrap();
    assert!(s.is_empty());
    assert_eq!(file_len(dir.path()), 0);
}

#[test]
fn a_snapshot_reads_what_waited_when_it_was_taken() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::<Rec>::open(dir.path()).unwrap();
    s.append(&[rec(1), rec(2), rec(3)]).unwrap();
    let first = s.read_after(None, 1).unwrap()[0].1;
    s.commit(first).unwrap();
    let snap = s.snapshot();
    // Appended after the snapshot: not in it.
    s.append([&rec(4)]).unwrap();
    let f = snap.front(100).unwrap();
    assert_eq!(ids(&f.records), [2, 3]);
    assert_eq!((f.weight, s.len()), (4, 3));
    // Its mark commits what it read, on the spool it came from.
    s.commit(f.mark).unwrap();
    assert_eq!(ids(&s.front(100).unwrap().records), [4]);
}
