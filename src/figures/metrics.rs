//! Prometheus families of the supervision figures now, by scope (`city` or a
//! district id), from the one-second cache the API shares.

use super::{Counts, NowCache, Summary};
use crate::alarm::Alarms;
use crate::exposition::{gauges, label};
use crate::state::LiveState;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use std::sync::Arc;

pub struct FigureMetrics {
    pub live: Arc<LiveState>,
    pub cache: Arc<NowCache>,
    /// The standing alarms behind the facility intact rate.
    pub alarms: Arc<Alarms>,
}

impl std::fmt::Debug for FigureMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FigureMetrics")
    }
}

type CountFamily = (&'static str, &'static str, fn(&Counts) -> u64);
type RatioFamily = (&'static str, &'static str, fn(&Summary) -> Option<f64>);

const COUNTS: [CountFamily; 10] = [
    ("lampgw_cabinets", "Cabinets in inventory", |c| {
        c.cabinets_total
    }),
    ("lampgw_rtus_installed", "Cabinets with an RTU", |c| {
        c.rtus_installed
    }),
    ("lampgw_rtus_online", "RTUs online", |c| c.rtus_online),
    ("lampgw_lamps", "Lamps in inventory", |c| c.lamps_total),
    ("lampgw_slcs_installed", "Lamps with an SLC", |c| {
        c.slcs_installed
    }),
    ("lampgw_slcs_online", "SLCs online", |c| c.slcs_online),
    ("lampgw_lamps_lit", "Lamps lit", |c| c.lamps_lit),
    (
        "lampgw_lamps_expected_lit",
        "Lamps that should be lit",
        |c| c.lamps_expected_lit,
    ),
    (
        "lampgw_facilities",
        "Facilities: lamps, circuits with lamps, cabinets",
        |c| c.facilities_total,
    ),
    (
        "lampgw_facilities_intact",
        "Facilities with no standing fault alarm",
        |c| c.facilities_intact,
    ),
];

const RATIOS: [RatioFamily; 6] = [
    (
        "lampgw_rtu_installation_ratio",
        "RTUs installed / cabinets",
        |x| x.rtu_installation_ratio,
    ),
    ("lampgw_rtu_online_rate", "RTUs online / installed", |x| {
        x.rtu_online_rate
    }),
    ("lampgw_slc_control_share", "SLCs installed / lamps", |x| {
        x.slc_control_share
    }),
    ("lampgw_slc_online_rate", "SLCs online / installed", |x| {
        x.slc_online_rate
    }),
    (
        "lampgw_lighting_rate",
        "Lamps lit / lamps that should be lit",
        |x| x.lighting_rate,
    ),
    (
        "lampgw_facility_intact_rate",
        "Facilities with no standing fault alarm / facilities",
        |x| x.facility_intact_rate,
    ),
];

impl Collector for FigureMetrics {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> std::fmt::Result {
        let now = self.cache.get(&self.live, &self.alarms);
        let (city, districts) = &*now;
        let scopes: Vec<&Summary> = std::iter::once(city).chain(districts).collect();
        for (name, help, get) in COUNTS {
            let series = scopes
                .iter()
                .map(|x| (label("scope", &x.scope), get(&x.counts)));
            gauges(&mut enc, name, help, series)?;
        }
        // A ratio whose denominator is 0 has no value: the series is left out.
        for (name, help, get) in RATIOS {
            let series = scopes
                .iter()
                .filter_map(|x| get(x).map(|v| (label("scope", &x.scope), v)));
            gauges(&mut enc, name, help, series)?;
        }
        Ok(())
    }
}
