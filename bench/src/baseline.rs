//! The saving rate's baseline over a window in which the schedule changed
//! (`schedule::history`) against one in which it did not, in the same run,
//! in-process, no sockets and no database: a generated city of `cabinets`
//! cabinets × `lamps` lamps (a fifth without an SLC, on their circuit's
//! contactor), 10 districts, every cabinet metered every hour of the window.
//!
//! - one version: the plan in force now over the whole window (what the
//!   API does when no version took effect inside it), its burning spans,
//!   and the saving folded over them (`SavingInputs::saving`);
//! - three versions: the window cut at day 10 and day 20; the first piece's
//!   plan is the one in force now, the other two are built from their books
//!   (as the API builds a past version's plan), each piece's spans joined
//!   per lamp, and the same fold.
//!
//! What the saving reads from the store (the same rows either way) is left
//! out: `lamp-bench figures` measures that.
//!
//! lamp-bench baseline [cabinets (1000)] [lamps_per_cabinet (100)] [days (30)] [runs (5)]

use chrono::{DateTime, Duration, Utc};
use lamp_gateway::calendar::Spans;
use lamp_gateway::figures::config::EnergySettings;
use lamp_gateway::figures::energy::{CabinetHours, SavingInputs};
use lamp_gateway::inventory::{Cabinet, District, Framing, Inventory, Lamp, RtuSpec, SlcSpec};
use lamp_gateway::schedule::history;
use lamp_gateway::schedule::model::Book;
use lamp_gateway::schedule::plan::Plan;
use lamp_gateway::store::read::energy::MeterHour;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

const JINAN: (f64, f64) = (36.65, 117.12);
const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

fn arg(args: &[String], i: usize, default: usize) -> anyhow::Result<usize> {
    Ok(match args.get(i) {
        Some(v) => v.parse()?,
        None => default,
    })
}

fn city(cabinets: usize, lamps: usize) -> Inventory {
    let districts: Vec<District> = (0..10)
        .map(|d| District {
            at: String::new(),
            id: format!("D{d:02}"),
            name: format!("District {d:02}"),
        })
        .collect();
    let cabs: Vec<Cabinet> = (0..cabinets)
        .map(|c| Cabinet {
            at: String::new(),
            id: format!("C{c:05}"),
            district: format!("D{:02}", c % 10),
            name: String::new(),
            lat: Some(JINAN.0 + (c % 50) as f64 * 0.002),
            lon: Some(JINAN.1 + (c / 50) as f64 * 0.002),
            circuits: 4,
            endpoint: None,
            link: None,
            framing: Framing::Tcp,
            rtu: Some(RtuSpec {
                id: format!("R{c:05}"),
                profile: "rtu-cabinet".into(),
                unit: 1,
            }),
        })
        .collect();
    let mut all = Vec::with_capacity(cabinets * lamps);
    for c in 0..cabinets {
        for j in 0..lamps {
            all.push(Lamp {
                at: String::new(),
                id: format!("L{c:05}-{j:03}"),
                cabinet: format!("C{c:05}"),
                circuit: (j % 4 + 1) as u8,
                lat: None,
                lon: None,
                rated_power_w: Some(100.0),
                slc: (j % 5 != 0).then(|| SlcSpec {
                    id: format!("S{c:05}-{j:03}"),
                    profile: "slc-a-unit".into(),
                    unit: 2,
                    index: None,
                }),
                road: None,
            });
        }
    }
    Inventory::new(districts, cabs, all)
}

/// The city's book: on at sunset, every other lamp off and the rest at
/// 50 % at `late`, off at sunrise; with `district`, that district on a
/// program of fixed times of its own.
fn book(late: &str, district: Option<&str>) -> Book {
    let mut b = serde_json::json!({
        "programs": [
            {"id": "night", "points": [
                {"sun": "sunset", "level": "on"},
                {"at": late, "level": 50},
                {"at": late, "level": "off", "alternate": "even"},
                {"sun": "sunrise", "level": "off"}
            ]},
            {"id": "fixed", "points": [
                {"at": "18:30", "level": "on"},
                {"at": "05:30", "level": "off"}
            ]}
        ],
        "calendars": [
            {"id": "city", "rules": [], "default_program": "night"},
            {"id": "fixed", "rules": [], "default_program": "fixed"}
        ],
        "assignments": [{"id": "all", "calendar": "city", "scope": "city"}]
    });
    if let Some(d) = district {
        b["assignments"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"id": "own", "calendar": "fixed", "scope": {"district": d}}));
    }
    serde_json::from_value(b).expect("a valid book")
}

fn plan(book: Book, inv: &Arc<Inventory>) -> Plan {
    Plan::new(Arc::new(book), inv.clone(), &BTreeMap::new(), TZ, JINAN)
}

/// Distinct span lists among the lamps (how well lamps alike share).
fn lists(spans: &[Option<Spans>]) -> usize {
    spans
        .iter()
        .flatten()
        .map(|s| s.as_ptr())
        .collect::<HashSet<_>>()
        .len()
}

fn p50_max(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() - 1])
}

pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    let cabinets = arg(&args, 0, 1000)?;
    let lamps = arg(&args, 1, 100)?;
    let days = arg(&args, 2, 30)? as i64;
    let runs = arg(&args, 3, 5)?.max(1);
    let inv = Arc::new(city(cabinets, lamps));
    let to: DateTime<Utc> = "2026-12-01T16:00:00Z".parse()?;
    let from = to - Duration::days(days);
    let cuts = [
        from,
        from + Duration::days(days / 3),
        from + Duration::days(2 * days / 3),
    ];
    let meters: Vec<MeterHour> = (0..cabinets as u32)
        .flat_map(|c| {
            (0..days * 24).map(move |h| MeterHour {
                cabinet: c,
                hour_us: (from + Duration::hours(h)).timestamp_micros(),
                meter_kwh: 1.0,
                samples: 4,
            })
        })
        .collect();
    let hours = CabinetHours::new(&meters, &[]);
    let settings = EnergySettings::default();
    let scope: Vec<usize> = (0..inv.districts.len()).collect();
    // The plan in force now: built once, as the engine keeps it.
    let now = Arc::new(plan(book("23:30", None), &inv));
    let fold = |spans: &[Option<Spans>]| {
        SavingInputs {
            inventory: &inv,
            from,
            to,
            spans,
            hours: &hours,
            circuits: &[],
            measured: &[],
            settings: &settings,
        }
        .saving(&scope, ("city", "City"))
        .1
    };
    println!(
        "{} lamps, {days} days, {} metered cabinet-hours, {runs} runs each",
        inv.lamps.len(),
        meters.len()
    );
    let (mut one_ms, mut three_ms) = (Vec::new(), Vec::new());
    let (mut one, mut three) = (None, None);
    for _ in 0..runs {
        let t = Instant::now();
        let spans = history::burning_spans(&[(from, now.clone())], from, to);
        let total = fold(&spans);
        one_ms.push(t.elapsed().as_secs_f64() * 1e3);
        one = Some((lists(&spans), total));

        let t = Instant::now();
        let pieces = [
            (cuts[0], now.clone()),
            (cuts[1], Arc::new(plan(book("00:30", None), &inv))),
            (cuts[2], Arc::new(plan(book("23:30", Some("D03")), &inv))),
        ];
        let spans = history::burning_spans(&pieces, from, to);
        let total = fold(&spans);
        three_ms.push(t.elapsed().as_secs_f64() * 1e3);
        three = Some((lists(&spans), total));
    }
    for (what, ms, got) in [
        ("one version", one_ms, one),
        ("three versions", three_ms, three),
    ] {
        let (p50, max) = p50_max(ms);
        let (lists, total) = got.expect("at least one run");
        println!(
            "  {what:<16} p50 {p50:>8.1} ms   max {max:>8.1} ms   {lists} span lists, {:.1} scheduled lamp-hours, baseline {:.1} kWh",
            total.baseline.scheduled_lamp_hours, total.baseline.kwh
        );
    }
    Ok(())
}
