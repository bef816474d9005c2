//! The supervision figures the city is evaluated on (DESIGN.md): RTU
//! installation ratio (终端安装率) and online rate (在线率), single-lamp control
//! share (单灯控制率) and online rate, lighting rate (亮灯率), and the facility
//! intact rate (设施完好率). "Now" comes from the live state in memory and,
//! for the facility intact rate, the alarm engine's standing alarms (its
//! definition: `alarms.rs`).

pub mod alarms;
pub mod config;
pub mod energy;
pub mod energy_window;
pub mod evaluation;
pub mod evaluation_window;
pub mod metrics;
pub mod report;
pub mod sampler;
pub mod sections;
pub mod sheet;
pub mod window;

use crate::alarm::{Alarm, Alarms};
use crate::state::LiveState;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// The counts behind the figures, for one scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub cabinets_total: u64,
    pub rtus_installed: u64,
    pub rtus_online: u64,
    pub lamps_total: u64,
    pub slcs_installed: u64,
    pub slcs_online: u64,
    pub lamps_lit: u64,
    pub lamps_expected_lit: u64,
    /// Installed controllers (RTUs and SLCs) online with no active fault:
    /// no SLC fault flag, no RTU leakage alarm.
    pub controllers_intact: u64,
    /// Facilities: lamps, circuits with lamps, cabinets (`alarms.rs`).
    pub facilities_total: u64,
    /// Facilities with no standing fault alarm.
    pub facilities_intact: u64,
}

impl Counts {
    fn add(&mut self, o: &Counts) {
        self.cabinets_total += o.cabinets_total;
        self.rtus_installed += o.rtus_installed;
        self.rtus_online += o.rtus_online;
        self.lamps_total += o.lamps_total;
        self.slcs_installed += o.slcs_installed;
        self.slcs_online += o.slcs_online;
        self.lamps_lit += o.lamps_lit;
        self.lamps_expected_lit += o.lamps_expected_lit;
        self.controllers_intact += o.controllers_intact;
        self.facilities_total += o.facilities_total;
        self.facilities_intact += o.facilities_intact;
    }
}

/// `null` where the denominator is zero, as DESIGN.md defines.
pub fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The figures of one scope (the city or a district) at one time.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// `city` or the district id.
    pub scope: String,
    pub name: String,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub counts: Counts,
    pub rtu_installation_ratio: Option<f64>,
    pub rtu_online_rate: Option<f64>,
    pub slc_control_share: Option<f64>,
    pub slc_online_rate: Option<f64>,
    pub lighting_rate: Option<f64>,
    /// `facilities_intact / facilities_total` (设施完好率; `alarms.rs`).
    pub facility_intact_rate: Option<f64>,
}

impl Summary {
    pub fn new(scope: &str, name: &str, at: DateTime<Utc>, c: Counts) -> Self {
        Self {
            scope: scope.to_string(),
            name: name.to_string(),
            at,
            counts: c,
            rtu_installation_ratio: ratio(c.rtus_installed, c.cabinets_total),
            rtu_online_rate: ratio(c.rtus_online, c.rtus_installed),
            slc_control_share: ratio(c.slcs_installed, c.lamps_total),
            slc_online_rate: ratio(c.slcs_online, c.slcs_installed),
            lighting_rate: ratio(c.lamps_lit, c.lamps_expected_lit),
            facility_intact_rate: ratio(c.facilities_intact, c.facilities_total),
        }
    }
}

/// The counts now, per district (in inventory order) and for the city, in
/// one pass over the live state; the facilities from the `standing` alarms.
pub fn counts_now(live: &LiveState, standing: &[Alarm]) -> (Counts, Vec<Counts>) {
    let inv = &live.inventory;
    let inner = live.read();
    let mut per = vec![Counts::default(); inv.districts.len()];
    for (ci, c) in inv.cabinets.iter().enumerate() {
        let Some(d) = inv.district_of_cabinet(ci) else {
            continue;
        };
        let k = &mut per[d];
        k.cabinets_total += 1;
        if c.rtu.is_some() {
            let rtu = &inner.rtus[ci];
            k.rtus_installed += 1;
            k.rtus_online += u64::from(rtu.online);
            let leak = rtu.reading.as_ref().is_some_and(|r| r.leakage_alarm);
            k.controllers_intact += u64::from(rtu.online && !leak);
        }
    }
    for (li, l) in inv.lamps.iter().enumerate() {
        let Some(d) = inv
            .cabinet_of_lamp(li)
            .and_then(|c| inv.district_of_cabinet(c))
        else {
            continue;
        };
        let k = &mut per[d];
        k.lamps_total += 1;
        if l.slc.is_some() {
            let slc = &inner.lamps[li];
            k.slcs_installed += 1;
            k.slcs_online += u64::from(slc.online);
            let faulty = slc.reading.as_ref().is_some_and(|r| r.fault_flags != 0);
            k.controllers_intact += u64::from(slc.online && !faulty);
            let lighting = live.lighting(&inner, li);
            k.lamps_expected_lit += u64::from(lighting.expected);
            k.lamps_lit += u64::from(lighting.lit);
        }
    }
    drop(inner);
    // Per district then the city, as `per` is: the city's is the sum.
    for (k, f) in per.iter_mut().zip(alarms::intact_now(inv, standing)) {
        k.facilities_total = f.facilities;
        k.facilities_intact = f.intact;
    }
    let mut city = Counts::default();
    for k in &per {
        city.add(k);
    }
    (city, per)
}

/// The city's summary followed by every district's; `standing` are the
/// alarm engine's standing alarms.
pub fn summaries_now(live: &LiveState, standing: &[Alarm]) -> (Summary, Vec<Summary>) {
    let at = Utc::now();
    let (city, per) = counts_now(live, standing);
    let districts = live
        .inventory
        .districts
        .iter()
        .zip(per)
        .map(|(d, c)| Summary::new(&d.id, &d.name, at, c))
        .collect();
    (Summary::new("city", "city", at, city), districts)
}

/// The figures now, reused for up to `ttl` by `/metrics` and the API's
/// `/api/v1/metrics/…`: each computation walks every lamp under the state's
/// read lock, which holds up the state task, and many clients asking at once
/// would each walk it. A confirmed command makes the figures stale at once
/// (the lighting rate judges by it as soon as it says confirmed); a poll's
/// values and an alarm change (raised, cleared: the facility intact rate)
/// are in them within `ttl` — alarms change with the polls, and at dusk in a
/// large city often enough to defeat a cache that dropped at each change.
/// One caller computes while the others wait for its result.
#[derive(Debug)]
pub struct NowCache {
    ttl: std::time::Duration,
    slot: parking_lot::Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    at: std::time::Instant,
    /// `LiveState::writes_applied` before the computation began.
    writes: u64,
    now: Arc<CityNow>,
}

/// The city's summary and every district's.
pub type CityNow = (Summary, Vec<Summary>);

impl NowCache {
    pub fn new(ttl: std::time::Duration) -> Self {
        Self {
            ttl,
            slot: parking_lot::Mutex::new(None),
        }
    }

    /// The figures now, from the cache when they are fresh. Blocks while
    /// another caller computes them: call it off the async workers
    /// (`spawn_blocking`) where many may ask at once.
    pub fn get(&self, live: &LiveState, alarms: &Alarms) -> Arc<CityNow> {
        let mut slot = self.slot.lock();
        let writes = live.writes_applied();
        match &*slot {
            Some(c) if c.at.elapsed() < self.ttl && c.writes == writes => c.now.clone(),
            _ => {
                let at = std::time::Instant::now();
                let standing = alarms.standing(Utc::now());
                let now = Arc::new(summaries_now(live, &standing));
                *slot = Some(Cached {
                    at,
                    writes,
                    now: now.clone(),
                });
                now
            }
        }
    }
}
