//! Alarm evaluation at city scale (issue 14): the state task's cost of one
//! poll cycle of every endpoint, applying the outcomes alone (the baseline)
//! and applying them with the alarm engine judging each batch, alternated
//! cycle by cycle in the same run. 1 % of the lamps carry a fault that
//! comes and goes every few cycles, so the engine also raises and clears.
//! Prints one JSON object.
//!
//! target/release/lamp-bench alarms [endpoints] [slcs_per_endpoint] [cycles]

use chrono::{Duration as Span, Utc};
use lamp_gateway::alarm::{AlarmChange, AlarmSink, Alarms};
use lamp_gateway::settings::Settings;
use lamp_gateway::state::{LiveState, PollOutcome, Reading, RtuReading, SlcReading};
use lamp_gateway::topology::{DeviceKey, PollClass, Topology};
use lamp_sim::{InventoryOptions, SimConfig, Simulator};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Count(AtomicU64);

impl AlarmSink for Count {
    fn offer_alarms(&self, changes: Arc<[AlarmChange]>) {
        self.0.fetch_add(changes.len() as u64, Ordering::Relaxed);
    }
}

pub fn run(args: Vec<String>) -> anyhow::Result<()> {
    let args: Vec<usize> = args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let endpoints = args.first().copied().unwrap_or(1000);
    let slcs = args.get(1).copied().unwrap_or(100);
    let cycles = args.get(2).copied().unwrap_or(20);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The farm only writes the inventory that matches it; nothing is polled.
    let dir = tempfile::tempdir()?;
    let inv_dir = dir.path().join("inventory");
    std::fs::create_dir_all(&inv_dir)?;
    rt.block_on(async {
        let sim = Simulator::start(SimConfig {
            endpoints,
            slcs_per_endpoint: slcs,
            ..SimConfig::default()
        })
        .await?;
        sim.write_inventory(&inv_dir, &InventoryOptions::default())?;
        sim.shutdown().await;
        anyhow::Ok(())
    })?;
    let mut s = Settings::default();
    s.paths.inventory = inv_dir;
    s.paths.profiles = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/profiles");
    let loaded =
        lamp_gateway::validate::load(&s).map_err(|e| anyhow::anyhow!("inventory: {e:?}"))?;
    let topology = &loaded.topology;
    let live = Arc::new(LiveState::new(loaded.inventory.clone(), topology, 3));
    let alarms = Alarms::new(s.alarms.clone(), live.clone(), topology);
    let changes = Arc::new(Count::default());
    alarms.add_sink(changes.clone());
    let rated: Vec<Option<f64>> = loaded
        .inventory
        .lamps
        .iter()
        .map(|l| l.rated_power_w)
        .collect();
    let start = Utc::now();
    let mut base = Vec::new();
    let mut with = Vec::new();
    // Cycle 0 brings every device online in both states alike.
    for c in 0..=cycles * 2 {
        let outcomes = cycle(topology, &rated, c, start + Span::seconds(10 * c as i64));
        let judge = c > 0 && c % 2 == 0;
        let t0 = Instant::now();
        for o in outcomes {
            let applied = live.apply(o, true);
            if judge || c == 0 {
                alarms.evaluate(&applied);
            }
        }
        let took = t0.elapsed();
        if c > 0 {
            if judge { &mut with } else { &mut base }.push(took);
        }
    }
    let ms = |v: &[Duration]| {
        let mut v: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (b, w) = (ms(&base), ms(&with));
    let lamps = endpoints * slcs;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "bench": "alarms",
            "lamps": lamps,
            "endpoints": endpoints,
            "cycles_each": cycles,
            "cycle_ms_median_without_alarms": b,
            "cycle_ms_median_with_alarms": w,
            "alarm_ms_per_cycle": w - b,
            "alarm_us_per_lamp": (w - b) * 1e3 / lamps as f64,
            "ratio_with_to_without": w / b,
            "alarm_changes": changes.0.load(Ordering::Relaxed),
            "standing_at_end": alarms.standing(Utc::now()).len(),
        }))?
    );
    Ok(())
}

/// One poll cycle of every endpoint: healthy readings at rated power, and
/// every hundredth lamp with its lamp-failure flag in cycles 4k+2 and 4k+3.
fn cycle(
    topology: &Topology,
    rated: &[Option<f64>],
    c: usize,
    at: chrono::DateTime<Utc>,
) -> Vec<PollOutcome> {
    let mut out = Vec::with_capacity(topology.endpoints.len() * 2);
    let faulty = c % 4 >= 2;
    for (e, ep) in topology.endpoints.iter().enumerate() {
        for class in [PollClass::Rtu, PollClass::Slc] {
            let results = ep
                .devices
                .iter()
                .filter(|d| d.class() == class)
                .map(|d| {
                    let r = match d.key {
                        DeviceKey::Rtu(_) => Reading::Rtu(RtuReading {
                            contactors: vec![true; usize::from(d.profile.circuits.max(1))],
                            voltage: [Some(220.0); 3],
                            current: [Some(10.0); 3],
                            active_power: Some(5000.0),
                            energy_kwh: Some(1.0),
                            door_alarm: false,
                            leakage_alarm: false,
                        }),
                        DeviceKey::Lamp(i) => {
                            let failed = faulty && i % 100 == 7;
                            Reading::Slc(SlcReading {
                                on: true,
                                dim_level: 100.0,
                                voltage: Some(220.0),
                                current: Some(0.5),
                                power: if failed { Some(0.0) } else { rated[i as usize] },
                                power_factor: Some(0.95),
                                energy_kwh: Some(1.0),
                                burning_hours: Some(1.0),
                                fault_flags: u16::from(failed),
                            })
                        }
                    };
                    (d.key, Ok(r))
                })
                .collect();
            out.push(PollOutcome {
                endpoint: e as u32,
                class,
                at,
                connected: true,
                sent: true,
                elapsed: Duration::from_millis(5),
                reads_ok: 1,
                reads_failed: 0,
                results,
            });
        }
    }
    out
}
