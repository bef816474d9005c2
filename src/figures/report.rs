//! The windowed figures as the API answers them: one object per scope (a
//! district or the city) and bucket, and the monthly evaluation report (one
//! row per district and the city, as JSON or CSV), with the alarm figures
//! of the month (`alarms.rs`).

use super::alarms::{AlarmFigures, AlarmWindow, ClassIntact};
use super::energy::{EnergyFigures, EnergySums, SavingFigures};
use super::evaluation_window::EvaluationWindow;
use super::window::{BucketSums, Context, WindowError, WindowSums};
use super::{ratio, Counts};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// The figures of one scope over one bucket (or the whole window).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WindowFigures {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub window_seconds: f64,
    /// Seconds of the bucket some gateway run observed.
    pub observed_seconds: f64,
    /// `observed_seconds / window_seconds`.
    pub coverage: Option<f64>,
    pub rtus_installed: u64,
    pub rtu_online_seconds: f64,
    /// `rtus_installed × window_seconds`.
    pub rtu_monitored_seconds: f64,
    pub rtu_online_rate: Option<f64>,
    pub slcs_installed: u64,
    pub slc_online_seconds: f64,
    pub slc_monitored_seconds: f64,
    pub slc_online_rate: Option<f64>,
    /// Lamp-seconds in which lamps should have been lit (rolled-up hours).
    pub lamp_expected_lit_seconds: f64,
    pub lamp_lit_seconds: f64,
    /// `lamp_lit_seconds / lamp_expected_lit_seconds`.
    pub lighting_rate: Option<f64>,
}

fn fratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

/// The figures of the districts at `scope` (positions) summed over a bucket.
pub fn figures(ctx: &Context, b: &BucketSums, scope: &[usize]) -> WindowFigures {
    let window_us = (b.to - b.from).num_microseconds().unwrap_or(i64::MAX);
    let mut installed = [0u64; 2];
    let mut online = [0i64; 2];
    let mut lighting = [0f64; 2];
    for &d in scope {
        for k in 0..2 {
            installed[k] += ctx.installed[d][k];
            online[k] += b.online_us[d][k];
            lighting[k] += b.lighting_s[d][k];
        }
    }
    let monitored = installed.map(|n| n as i64 * window_us);
    WindowFigures {
        from: b.from,
        to: b.to,
        window_seconds: secs(window_us),
        observed_seconds: secs(b.observed_us),
        coverage: ratio(b.observed_us as u64, window_us as u64),
        rtus_installed: installed[0],
        rtu_online_seconds: secs(online[0]),
        rtu_monitored_seconds: secs(monitored[0]),
        rtu_online_rate: ratio(online[0] as u64, monitored[0] as u64),
        slcs_installed: installed[1],
        slc_online_seconds: secs(online[1]),
        slc_monitored_seconds: secs(monitored[1]),
        slc_online_rate: ratio(online[1] as u64, monitored[1] as u64),
        lamp_expected_lit_seconds: lighting[0],
        lamp_lit_seconds: lighting[1],
        lighting_rate: fratio(lighting[1], lighting[0]),
    }
}

/// The answer of `/metrics/online-rates`: the whole window and its buckets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OnlineRates {
    pub scope: String,
    pub name: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Option<super::window::Bucket>,
    pub time_zone: String,
    pub total: WindowFigures,
    pub buckets: Vec<WindowFigures>,
}

/// Sums the buckets into one covering the whole window.
pub fn total(sums: &WindowSums) -> BucketSums {
    let n = sums.buckets.first().map_or(0, |b| b.online_us.len());
    let mut t = BucketSums {
        from: sums.from,
        to: sums.to,
        observed_us: 0,
        online_us: vec![[0; 2]; n],
        lighting_s: vec![[0.0; 2]; n],
    };
    for b in &sums.buckets {
        t.observed_us += b.observed_us;
        for d in 0..n {
            for k in 0..2 {
                t.online_us[d][k] += b.online_us[d][k];
                t.lighting_s[d][k] += b.lighting_s[d][k];
            }
        }
    }
    t
}

/// One row of the monthly report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    pub scope: String,
    pub name: String,
    pub cabinets_total: u64,
    pub rtus_installed: u64,
    pub rtu_installation_ratio: Option<f64>,
    pub lamps_total: u64,
    pub slcs_installed: u64,
    pub slc_control_share: Option<f64>,
    /// 亮灯率 as the bureau files it: the evaluation-grade lighting rate of
    /// the scope over the window (every lamp of the inventory one verdict;
    /// `lighting.districts` / `lighting.city`, `report::add_lighting`).
    /// The `lighting_rate` beside it is the SLC-monitored rate of the
    /// hourly rollups (lamps with an online SLC only), the summary's
    /// 单灯监测亮灯率.
    pub evaluation_lighting_rate: Option<f64>,
    #[serde(flatten)]
    pub window: WindowFigures,
    /// Alarms, repairs and the facility intact rate over the month
    /// (`report::add_alarms` puts them in).
    pub alarms: AlarmFigures,
    /// The intact rate of each road class's lamps over the month, against
    /// its target (`figures::alarms`, module doc).
    pub intact_by_class: Vec<ClassIntact>,
}

/// The evaluation report of a month (`/reports/monthly`) or any window of
/// at most 93 days (`/reports/period`): what a lighting bureau files.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MonthlyReport {
    /// `YYYY-MM` for a monthly report; `null` for a period.
    pub month: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub time_zone: String,
    /// One row per district in inventory order, then the city (`scope` =
    /// `city`) unless the report is of one district.
    pub rows: Vec<ReportRow>,
    /// The energy saving rate (节电率) with its inputs, in the order of
    /// `rows` (`figures::energy`'s rules).
    pub saving: Vec<SavingFigures>,
    /// One row per cabinet of the report's districts, inventory order.
    pub cabinets: Vec<CabinetRow>,
    /// The evaluation-grade lighting rate over the window per road, road
    /// class, district and city (`figures::evaluation_window`).
    pub lighting: EvaluationWindow,
}

/// A cabinet over the report's window: its controllers' online rates and
/// its energy.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CabinetRow {
    pub cabinet: String,
    pub name: String,
    pub district: String,
    pub rtu_installed: bool,
    pub slcs_installed: u64,
    /// The RTU's online seconds ÷ the window's seconds; `null` without RTU.
    pub rtu_online_rate: Option<f64>,
    /// Σ its SLCs' online seconds ÷ (SLCs × the window's seconds).
    pub slc_online_rate: Option<f64>,
    pub energy: EnergyFigures,
}

/// The cabinet rows of the districts at `districts` (positions), from the
/// window's per-cabinet online seconds and per-cabinet energy.
pub fn cabinet_rows(
    ctx: &Context,
    sums: &WindowSums,
    energy: &[EnergySums],
    districts: &[usize],
) -> Vec<CabinetRow> {
    let inv = &ctx.inventory;
    let window_us = (sums.to - sums.from).num_microseconds().unwrap_or(i64::MAX) as f64;
    let mut slcs = vec![0u64; inv.cabinets.len()];
    for (li, l) in inv.lamps.iter().enumerate() {
        if let (Some(c), Some(_)) = (inv.cabinet_of_lamp(li), &l.slc) {
            slcs[c] += 1;
        }
    }
    inv.cabinets
        .iter()
        .enumerate()
        .filter(|(ci, _)| {
            inv.district_of_cabinet(*ci)
                .is_some_and(|d| districts.contains(&d))
        })
        .map(|(ci, c)| {
            let online = sums.cabinet_online_us.get(ci).copied().unwrap_or_default();
            let rate = |devices: u64, us: i64| fratio(us as f64, devices as f64 * window_us);
            CabinetRow {
                cabinet: c.id.clone(),
                name: c.name.clone(),
                district: c.district.clone(),
                rtu_installed: c.rtu.is_some(),
                slcs_installed: slcs[ci],
                rtu_online_rate: rate(u64::from(c.rtu.is_some()), online[0]),
                slc_online_rate: rate(slcs[ci], online[1]),
                energy: energy
                    .get(ci)
                    .copied()
                    .unwrap_or_default()
                    .figures(sums.from, sums.to),
            }
        })
        .collect()
}

/// The month `YYYY-MM` as a window from local midnight on its first day to
/// local midnight on the next month's first.
pub fn month_window(
    month: &str,
    tz: chrono_tz::Tz,
) -> Result<(DateTime<Utc>, DateTime<Utc>), WindowError> {
    crate::calendar::month_window(month, tz)
        .ok_or_else(|| WindowError::BadInput(format!("`month` must be YYYY-MM, got `{month}`")))
}

/// Report rows: installation ratio and control share from the inventory (now),
/// the rest over the month. `districts` are positions; `with_city` adds the
/// city row (all districts).
pub fn rows(
    ctx: &Context,
    counts: &[Counts],
    month: &BucketSums,
    districts: &[usize],
    with_city: bool,
) -> Vec<ReportRow> {
    let row = |scope: &str, name: &str, ds: &[usize]| {
        let mut c = Counts::default();
        for &d in ds {
            c.add(&counts[d]);
        }
        ReportRow {
            scope: scope.to_string(),
            name: name.to_string(),
            cabinets_total: c.cabinets_total,
            rtus_installed: c.rtus_installed,
            rtu_installation_ratio: ratio(c.rtus_installed, c.cabinets_total),
            lamps_total: c.lamps_total,
            slcs_installed: c.slcs_installed,
            slc_control_share: ratio(c.slcs_installed, c.lamps_total),
            evaluation_lighting_rate: None,
            window: figures(ctx, month, ds),
            alarms: AlarmFigures::default(),
            intact_by_class: Vec::new(),
        }
    };
    let mut out: Vec<ReportRow> = districts
        .iter()
        .map(|&d| {
            let dist = &ctx.inventory.districts[d];
            row(&dist.id, &dist.name, &[d])
        })
        .collect();
    if with_city {
        let all: Vec<usize> = (0..ctx.inventory.districts.len()).collect();
        out.push(row("city", "city", &all));
    }
    out
}

/// Puts each scope's evaluation-grade lighting rate of `w` into the row of
/// that scope.
pub fn add_lighting(rows: &mut [ReportRow], w: &EvaluationWindow) {
    for r in rows {
        let scope = w
            .districts
            .iter()
            .chain(w.city.iter())
            .find(|s| s.scope == r.scope);
        r.evaluation_lighting_rate = scope.and_then(|s| s.lighting_rate);
    }
}

/// Puts each scope's alarm figures of `w` into the row of that scope.
pub fn add_alarms(rows: &mut [ReportRow], w: &AlarmWindow) {
    for r in rows {
        if let Some(s) = w.scope(&r.scope) {
            r.alarms = s.figures.clone();
            r.intact_by_class = s.classes.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_at_local_midnight() {
        let tz: chrono_tz::Tz = "Asia/Shanghai".parse().unwrap();
        let (from, to) = month_window("2025-12", tz).unwrap();
        assert_eq!(from.to_rfc3339(), "2025-11-30T16:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2025-12-31T16:00:00+00:00");
        for bad in ["2025-13", "2025-1", "25-01", "2025/01", "", "2025-00"] {
            assert!(month_window(bad, tz).is_err(), "{bad}");
        }
    }
}
