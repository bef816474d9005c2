//! The cost of the evaluation-grade lighting figures now against the
//! summary's counts on the same live state (issue 15: "about as much as
//! `counts_now`"), in-process, no sockets: a generated city of `cabinets`
//! cabinets × `lamps` lamps (a fifth without an SLC, estimated from the
//! cabinet's meter), two roads per cabinet, 10 districts, every SLC and RTU
//! online with a reading.
//!
//! Third, one tick of the evaluation sampler (`figures::sampler`): the
//! evaluation, the scopes taken from it, the running totals of the hour
//! added up, and the rows appended to a store backlog's spool (what
//! `StoreEvaluation::offer` does on the sampler's task).
//!
//! lamp-bench evaluation [cabinets (1000)] [lamps_per_cabinet (100)] [runs (20)]

use lamp_gateway::figures::config::FiguresSettings;
use lamp_gateway::figures::sampler::{Accumulator, Observation};
use lamp_gateway::figures::{counts_now, evaluation};
use lamp_gateway::inventory::{
    Cabinet, District, Framing, Inventory, Lamp, Road, RoadClass, RtuSpec, SlcSpec,
};
use lamp_gateway::queue::Spool;
use lamp_gateway::state::{LiveState, PollOutcome, Reading, RtuReading, SlcReading};
use lamp_gateway::store::ingest::backlog::Backlog;
use lamp_gateway::store::Batch;
use lamp_gateway::topology::{DeviceKey, PollClass, Topology};
use std::sync::Arc;
use std::time::Instant;

fn arg(args: &[String], i: usize, default: usize) -> anyhow::Result<usize> {
    Ok(match args.get(i) {
        Some(v) => v.parse()?,
        None => default,
    })
}

fn city(cabinets: usize, lamps: usize) -> LiveState {
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
            lat: None,
            lon: None,
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
    let mut roads = Vec::with_capacity(cabinets * 2);
    for c in 0..cabinets {
        for r in 0..2 {
            roads.push(Road {
                at: String::new(),
                id: format!("RD{c:05}-{r}"),
                name: String::new(),
                district: format!("D{:02}", c % 10),
                class: RoadClass::ALL[(c + r) % 6],
                lamps_planned: Some(lamps as u32 / 2),
            });
        }
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
                road: Some(format!("RD{c:05}-{}", j % 2)),
            });
        }
    }
    let inv = Inventory::new(districts, cabs, all).with_roads(roads);
    let live = LiveState::new(Arc::new(inv), &Topology { endpoints: vec![] }, 3);
    let slc = Reading::Slc(SlcReading {
        on: true,
        dim_level: 100.0,
        voltage: Some(220.0),
        current: Some(0.48),
        power: Some(100.0),
        power_factor: Some(0.95),
        energy_kwh: Some(1.0),
        burning_hours: Some(1.0),
        fault_flags: 0,
    });
    for c in 0..cabinets {
        // The SLC lamps and all but one of the others burn.
        let rtu = Reading::Rtu(RtuReading {
            contactors: vec![true; 4],
            voltage: [Some(220.0); 3],
            current: [None; 3],
            active_power: Some(100.0 * (lamps - 1) as f64),
            energy_kwh: None,
            door_alarm: false,
            leakage_alarm: false,
        });
        let mut results = vec![(DeviceKey::Rtu(c as u32), Ok(rtu))];
        for j in (0..lamps).filter(|j| j % 5 != 0) {
            results.push((DeviceKey::Lamp((c * lamps + j) as u32), Ok(slc.clone())));
        }
        live.apply(
            PollOutcome {
                endpoint: 0,
                class: PollClass::Slc,
                at: chrono::Utc::now(),
                connected: true,
                sent: true,
                elapsed: std::time::Duration::ZERO,
                reads_ok: 0,
                reads_failed: 0,
                results,
            },
            false,
        );
    }
    live
}

/// Median and max of a list of ms.
fn spread(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() - 1])
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    let cabinets = arg(&args, 0, 1000)?;
    let lamps = arg(&args, 1, 100)?;
    let runs = arg(&args, 2, 20)?.max(1);
    let t = Instant::now();
    let live = city(cabinets, lamps);
    println!(
        "{} lamps ({} without SLC), {} cabinets, {} roads: built in {:.0} ms",
        live.inventory.lamps.len(),
        live.inventory
            .lamps
            .iter()
            .filter(|l| l.slc.is_none())
            .count(),
        cabinets,
        live.inventory.roads.len(),
        t.elapsed().as_secs_f64() * 1e3
    );
    let settings = FiguresSettings::default();
    // Interleaved, so that a neighbour's load on the machine falls on both.
    let (mut counts, mut evals) = (Vec::new(), Vec::new());
    let (mut city, mut e) = (None, None);
    for _ in 0..runs {
        let t = Instant::now();
        city = Some(counts_now(&live, &[]).0);
        counts.push(ms(t));
        let t = Instant::now();
        e = Some(evaluation::evaluate(&live, &settings));
        evals.push(ms(t));
    }
    // Sampler ticks: the first only observes; every later one credits the
    // one before and hands over a row per road and district.
    let spool_dir = tempfile::tempdir()?;
    let mut backlog = Backlog::new(Spool::open(spool_dir.path())?, 200_000, 800_000);
    let mut acc = Accumulator::new("bench-run", std::time::Duration::from_secs(3600));
    let (mut ticks, mut own) = (Vec::new(), Vec::new());
    let mut rows = 0;
    for i in 0..=runs {
        let t = Instant::now();
        let (wall, mono) = (chrono::Utc::now(), tokio::time::Instant::now());
        let e = evaluation::evaluate(&live, &settings);
        let after_eval = Instant::now();
        let step = acc.observe(Observation::of(&e, wall, mono));
        rows = step.rows.len();
        backlog.push(Batch {
            evaluation: step.rows,
            ..Batch::default()
        })?;
        if i > 0 {
            ticks.push(ms(t));
            own.push(after_eval.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (city, e) = (city.expect("runs ≥ 1"), e.expect("runs ≥ 1"));
    let (p50, max) = spread(counts);
    println!(
        "  counts_now           p50 {p50:>8.1} ms   max {max:>8.1} ms   (lit {} of {} expected)",
        city.lamps_lit, city.lamps_expected_lit
    );
    let (p50, max) = spread(evals);
    println!(
        "  evaluation::evaluate p50 {p50:>8.1} ms   max {max:>8.1} ms   (lit {} of {} expected, {} estimated, {} road rows)",
        e.city.counts.lamps_lit,
        e.city.counts.lamps_expected_lit,
        e.city.counts.lamps_estimated,
        e.roads.len()
    );
    let (p50, max) = spread(ticks);
    let (own50, own_max) = spread(own);
    println!(
        "  sampler tick         p50 {p50:>8.1} ms   max {max:>8.1} ms   (of which totals and spool {own50:.1} ms p50, {own_max:.1} max; {rows} rows a tick, {} spool bytes over {runs} ticks)",
        backlog.spooled_bytes()
    );
    Ok(())
}
