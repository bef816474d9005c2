//! The audit trail pages through the store past one page of 10,000 rows:
//! a district token's answer has up to 10,000 rows it sees, however sparse
//! they are among the city's, and `truncated` says exactly whether more of
//! its own rows are in the window.

use crate::common::{spawn_app_with, ADMIN_TOKEN};
use chrono::{DateTime, Duration, TimeZone, Utc};
use lamp_gateway::auth::{hash_token, Role, TokenConfig};
use lamp_gateway::store::{Backend, Batch, CommandRow, Db};
use lamp_sim::{InventoryOptions, SimConfig};
use serde_json::Value;

/// Rows in the window: three pages and one row of the store's.
const ROWS: usize = 30_001;
/// Most rows one answer carries (README, `/api/v1/audit`).
const ANSWER: usize = 10_000;

fn token(district: &str) -> String {
    format!("lgw_test_audit_{district}")
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// The districts row `i` reached: D01 one row in three (10,001 rows), D02
/// one in three (exactly 10,000), and the rest D03, every other one of
/// those shared with D02 (seen by neither district token).
fn districts(i: usize) -> Vec<&'static str> {
    match i % 3 {
        0 => vec!["D01"],
        1 => vec!["D02"],
        _ if i % 2 == 1 => vec!["D02", "D03"],
        _ => vec!["D03"],
    }
}

fn row(i: usize) -> CommandRow {
    let at = (start() + Duration::milliseconds(i as i64)).timestamp_micros();
    CommandRow {
        command_id: format!("cmd-audit-{i:06}"),
        created_us: at,
        completed_us: at + 500,
        actor: format!("actor-{}", i % 5),
        source: "api".into(),
        action: "off".into(),
        level: None,
        kind: "lamp".into(),
        selector: r#"{"lamps":["LX-0001-001"]}"#.into(),
        expires_us: None,
        targets: 1,
        confirmed: 1,
        failed: 0,
        districts: serde_json::to_string(&districts(i)).unwrap(),
        outcome: "[]".into(),
    }
}

/// What a caller that sees only `district` (None: the city) should get
/// for rows `range` of the window: its rows in order, at most [`ANSWER`].
fn expected(district: Option<&str>, range: std::ops::Range<usize>) -> (Vec<String>, bool) {
    let seen: Vec<String> = range
        .filter(|&i| district.is_none_or(|d| districts(i).iter().all(|x| *x == d)))
        .map(|i| format!("cmd-audit-{i:06}"))
        .collect();
    let truncated = seen.len() > ANSWER;
    (seen.into_iter().take(ANSWER).collect(), truncated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_district_token_pages_past_10000_rows_of_others() {
    // The store, filled through its own write path before the gateway
    // starts on it.
    let store_dir = tempfile::tempdir().unwrap();
    let path = store_dir.path().join("audit.db");
    let backend = Backend::Sqlite(path.clone());
    let db = Db::connect_lazy(&backend, 1).unwrap().unwrap();
    db.migrate().await.unwrap();
    let batch = Batch {
        commands: (0..ROWS).map(row).collect(),
        ..Batch::default()
    };
    db.write(&batch).await.unwrap();
    drop(db);

    let t = spawn_app_with(
        SimConfig {
            endpoints: 3,
            slcs_per_endpoint: 1,
            districts: 3,
            ..SimConfig::default()
        },
        InventoryOptions::default(),
        move |s| {
            s.store.url = backend;
            for d in ["D01", "D02", "D03"] {
                s.auth.tokens.push(TokenConfig {
                    name: format!("viewer-{d}"),
                    hash: hash_token(&token(d)),
                    role: Role::Viewer,
                    district: Some(d.into()),
                });
            }
        },
    )
    .await;
    let ms = |i: usize| (start() + Duration::milliseconds(i as i64)).to_rfc3339();
    let audit = |who: String, from: usize, to: usize| {
        let t = &t;
        async move {
            let path = format!(
                "/api/v1/audit?from={}&to={}",
                urlencode(&ms(from)),
                urlencode(&ms(to))
            );
            let (status, body) = t.get_as(&who, &path).await;
            assert_eq!(status, 200, "{body}");
            body
        }
    };
    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["command"].as_str().unwrap().to_string())
            .collect()
    };

    for (who, district, range) in [
        // The city: the first page, and more.
        (ADMIN_TOKEN.to_string(), None, 0..ROWS),
        // D01: 10,001 rows one in three: 10,000 of them, truncated.
        (token("D01"), Some("D01"), 0..ROWS),
        // D02: exactly 10,000 rows of its own: all, not truncated.
        (token("D02"), Some("D02"), 0..ROWS),
        // D03: a quarter of the rows, spread over all three pages.
        (token("D03"), Some("D03"), 0..ROWS),
        // A window starting mid-page: D01's rows from there.
        (token("D01"), Some("D01"), 12_345..ROWS),
    ] {
        let body = audit(who.clone(), range.start, range.end).await;
        let (want, truncated) = expected(district, range.clone());
        let got = ids(&body);
        assert_eq!(body["total"], want.len(), "{district:?} {range:?}");
        assert_eq!(body["truncated"], truncated, "{district:?} {range:?}");
        assert_eq!(got.len(), want.len(), "{district:?} {range:?}");
        assert!(got == want, "{district:?} {range:?}: rows differ");
    }
    // The counts the districts above stand for, as the README's example.
    assert_eq!(
        expected(Some("D01"), 0..ROWS),
        (expected(Some("D01"), 0..29_998).0, true)
    );
    assert_eq!(expected(Some("D02"), 0..ROWS).0.len(), ANSWER);
    assert!(!expected(Some("D02"), 0..ROWS).1);
    assert_eq!(expected(Some("D03"), 0..ROWS).0.len(), 5_000);
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
