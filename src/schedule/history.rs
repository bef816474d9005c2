//! The schedule's history: what the plan is built from (the book and the
//! control groups), kept as a version each time it changes, so that a past
//! window is judged by the schedule that was in force in it, not by today's
//! (the energy baseline, `figures::energy`).
//!
//! - A version is the book and the groups as one JSON text, its SHA-256
//!   digest, and the UTC time it took effect: when the engine rebuilt its
//!   plan with it (`Schedule::plan`, the one place a change is noticed — the
//!   start, a book replaced, a reload, a group set), on the engine's clock.
//!   A rebuild whose book and groups equal the last version's (a new
//!   inventory alone) makes none.
//! - The store keeps them (`schedule_versions`) so that no two consecutive
//!   ones have the same content: one equal to the version in force at its
//!   time is dropped (a restart with the same book, a replay, another
//!   cluster instance with the same book), one equal to the version right
//!   after it moves that one back to its time (backlog invariant 8).
//! - A window's pieces: the version in force at its start — before the
//!   first recorded version, the earliest one — then each version that took
//!   effect inside it, neighbours with equal content merged. Each piece is
//!   laid over today's inventory in the city's time zone
//!   (`Schedule::plan_of`), its burning spans taken over its part of the
//!   window, and each lamp's joined in time order ([`join`]).

use super::model::Book;
use super::plan::Plan;
use crate::calendar::Spans;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The groups as the control holds them: name → lamp ids.
pub type Groups = BTreeMap<String, Vec<String>>;

/// What a plan is built from, as a version records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionContent {
    pub book: Book,
    pub groups: Groups,
}

/// The same, borrowed, for writing the text without copying a city's groups.
#[derive(Serialize)]
struct ContentRef<'a> {
    book: &'a Book,
    groups: &'a Groups,
}

/// One version of what the plan is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleVersion {
    /// When it took effect.
    pub effective: DateTime<Utc>,
    /// SHA-256 of `content`, hex.
    pub digest: String,
    /// [`VersionContent`] as JSON.
    pub content: String,
}

impl ScheduleVersion {
    pub fn new(effective: DateTime<Utc>, book: &Book, groups: &Groups) -> Self {
        let content =
            serde_json::to_string(&ContentRef { book, groups }).expect("plain data serialises");
        Self {
            effective,
            digest: digest(&content),
            content,
        }
    }

    /// The book and groups it holds.
    pub fn parse(&self) -> Result<VersionContent, serde_json::Error> {
        serde_json::from_str(&self.content)
    }
}

/// The digest a version's content is compared by.
pub fn digest(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// Where versions go as they are made (the store): it must not wait.
pub trait VersionSink: Send + Sync + std::fmt::Debug {
    fn offer_version(&self, version: &ScheduleVersion);
}

/// A version as a window's list names it (the content is read only for the
/// versions that need a plan built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionHead {
    pub effective: DateTime<Utc>,
    pub digest: String,
}

/// The pieces of `[from, to)` (module doc) from `heads`: the versions in
/// force at `from` and after, in any order. Each piece is its start and
/// the digest in force from it; the first starts at `from`. Empty when
/// `heads` is.
pub fn pieces(
    heads: &[VersionHead],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, String)> {
    let mut sorted: Vec<&VersionHead> = heads.iter().collect();
    sorted.sort_by_key(|h| h.effective);
    // In force at `from`: the latest at or before it, else the earliest.
    let first = sorted
        .iter()
        .rposition(|h| h.effective <= from)
        .unwrap_or(0);
    let mut out: Vec<(DateTime<Utc>, String)> = Vec::new();
    for h in sorted.into_iter().skip(first) {
        if h.effective >= to && !out.is_empty() {
            break;
        }
        if out.last().is_some_and(|(_, d)| *d == h.digest) {
            continue;
        }
        let start = if out.is_empty() { from } else { h.effective };
        out.push((start, h.digest.clone()));
    }
    out
}

/// Every lamp's scheduled burning spans over `[from, to)` from a plan per
/// piece (`pieces`' starts, in time order, the first at `from`): each plan's
/// `Plan::burning_spans` over its piece, joined per lamp by [`join`]. One
/// piece is its plan's spans as they are.
pub fn burning_spans(
    pieces: &[(DateTime<Utc>, Arc<Plan>)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Option<Spans>> {
    let parts: Vec<Vec<Option<Spans>>> = pieces
        .iter()
        .enumerate()
        .map(|(i, (start, plan))| {
            let end = pieces.get(i + 1).map_or(to, |(next, _)| *next).min(to);
            plan.burning_spans((*start).max(from), end)
        })
        .collect();
    join(parts)
}

/// Joins each lamp's spans of consecutive pieces (by inventory position):
/// in piece order, a span ending where the next piece's first begins made
/// one. A lamp no calendar governs in a piece adds nothing there, and is
/// `None` only if none governs it in any. Lamps whose lists are the same
/// pieces' shared lists share one joined list, so that lamps alike are
/// still counted once (`figures::energy::SavingInputs`).
pub fn join(mut parts: Vec<Vec<Option<Spans>>>) -> Vec<Option<Spans>> {
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_default();
    }
    let lamps = parts.iter().map(Vec::len).max().unwrap_or(0);
    let mut interned: HashMap<Vec<Option<*const (i64, i64)>>, Spans> = HashMap::new();
    (0..lamps)
        .map(|l| {
            let lists: Vec<Option<&Spans>> = parts
                .iter()
                .map(|p| p.get(l).and_then(Option::as_ref))
                .collect();
            if lists.iter().all(Option::is_none) {
                return None;
            }
            let key = lists.iter().map(|s| s.map(|s| s.as_ptr())).collect();
            let joined = interned.entry(key).or_insert_with(|| {
                let mut out: Vec<(i64, i64)> = Vec::new();
                for &(a, b) in lists.iter().flatten().flat_map(|s| s.iter()) {
                    match out.last_mut() {
                        Some(last) if last.1 == a => last.1 = b,
                        _ => out.push((a, b)),
                    }
                }
                out.into()
            });
            Some(joined.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[(i64, i64)]) -> Spans {
        v.to_vec().into()
    }

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(h * 3600, 0).unwrap()
    }

    fn head(h: i64, d: &str) -> VersionHead {
        VersionHead {
            effective: at(h),
            digest: d.into(),
        }
    }

    /// Two pieces: spans in order, one crossing the boundary made one, a
    /// lamp governed in one piece only keeps that piece's, one governed in
    /// none stays `None`, and lamps of the same shared lists share the
    /// joined one while lamps of other lists do not.
    #[test]
    fn pieces_join_per_lamp_and_lamps_alike_share_the_joined_list() {
        let (a1, a2) = (s(&[(1, 3), (5, 10)]), s(&[(2, 4)]));
        let (b1, b2) = (s(&[(10, 12), (14, 15)]), s(&[(11, 13)]));
        let first = vec![
            Some(a1.clone()),
            Some(a1.clone()),
            Some(a1.clone()),
            Some(a2.clone()),
            None,
            None,
        ];
        let second = vec![
            Some(b1.clone()),
            Some(b1.clone()),
            Some(b2.clone()),
            None,
            Some(b2.clone()),
            None,
        ];
        let got = join(vec![first, second]);
        let list = |i: usize| got[i].as_deref().map(<[(i64, i64)]>::to_vec);
        assert_eq!(list(0), Some(vec![(1, 3), (5, 12), (14, 15)]));
        assert_eq!(list(2), Some(vec![(1, 3), (5, 10), (11, 13)]));
        assert_eq!(list(3), Some(vec![(2, 4)]), "governed in the first only");
        assert_eq!(list(4), Some(vec![(11, 13)]), "governed in the second only");
        assert_eq!(list(5), None, "governed in neither");
        let (l0, l1, l2) = (got[0].as_ref(), got[1].as_ref(), got[2].as_ref());
        assert!(Arc::ptr_eq(l0.unwrap(), l1.unwrap()), "same pieces: shared");
        assert!(!Arc::ptr_eq(l0.unwrap(), l2.unwrap()));
        // Equal spans from other pieces' lists are not merged by content:
        // sharing follows the pieces, which is what lamps alike have.
        let one = join(vec![vec![Some(a1.clone())]]);
        assert!(
            Arc::ptr_eq(one[0].as_ref().unwrap(), &a1),
            "one piece: as it is"
        );
    }

    /// The version in force at `from` (else the earliest) starts the first
    /// piece at `from`; later ones start theirs; equal neighbours merge;
    /// versions from `to` on are left out.
    #[test]
    fn a_window_is_cut_where_versions_took_effect() {
        let heads = [
            head(12, "c"),
            head(0, "a"),
            head(5, "b"),
            head(8, "b"),
            head(10, "a"),
            head(20, "d"),
        ];
        let cut = |f: i64, t: i64| -> Vec<(i64, String)> {
            pieces(&heads, at(f), at(t))
                .into_iter()
                .map(|(s, d)| (s.timestamp() / 3600, d))
                .collect()
        };
        let named = |v: &[(i64, &str)]| -> Vec<(i64, String)> {
            v.iter().map(|(h, d)| (*h, d.to_string())).collect()
        };
        assert_eq!(
            cut(3, 12),
            named(&[(3, "a"), (5, "b"), (10, "a")]),
            "b at 8 merged; c at 12 is the window's end"
        );
        assert_eq!(cut(6, 7), named(&[(6, "b")]));
        assert_eq!(cut(13, 30), named(&[(13, "c"), (20, "d")]));
        // Before the first version: the earliest.
        let late = [head(40, "x"), head(50, "y")];
        let got = pieces(&late, at(0), at(10));
        assert_eq!(got, vec![(at(0), "x".to_string())]);
        assert!(pieces(&[], at(0), at(10)).is_empty());
    }
}
