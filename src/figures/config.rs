//! `[figures.*]` settings: the figures' inputs that are the city's word, not
//! the store's.

use serde::Deserialize;
use std::collections::BTreeMap;

/// `[figures]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiguresSettings {
    pub energy: EnergySettings,
}

/// `[figures.energy]`: what the energy saving rate (节电率) is measured
/// against (rules in `figures/energy.rs`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnergySettings {
    /// A district's measured energy before the retrofit, in kWh per day
    /// (`D01 = 1250.0`): where given it replaces the baseline computed from
    /// the schedule and rated powers, scaled to the window's length.
    pub baseline_kwh_per_day: BTreeMap<String, f64>,
}

impl EnergySettings {
    /// Values that parse but make no sense; `district` says whether the
    /// inventory has a district of that id.
    pub fn problems(&self, district: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (d, kwh) in &self.baseline_kwh_per_day {
            let key = format!("figures.energy.baseline_kwh_per_day.{d}");
            if !district(d) {
                out.push((key.clone(), format!("unknown district `{d}`")));
            }
            if !kwh.is_finite() || *kwh <= 0.0 {
                out.push((key, format!("{kwh} must be a number of kWh above 0")));
            }
        }
        out
    }

    /// The district's settings baseline over `seconds`, in kWh.
    pub fn baseline_kwh(&self, district: &str, seconds: f64) -> Option<f64> {
        self.baseline_kwh_per_day
            .get(district)
            .map(|per_day| per_day * seconds / 86_400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_baseline_is_a_positive_figure_for_a_known_district() {
        let s = EnergySettings {
            baseline_kwh_per_day: BTreeMap::from([
                ("D01".to_string(), 240.0),
                ("D09".to_string(), 10.0),
                ("D02".to_string(), -1.0),
            ]),
        };
        let problems = s.problems(|d| d != "D09");
        assert_eq!(
            problems,
            vec![
                (
                    "figures.energy.baseline_kwh_per_day.D02".to_string(),
                    "-1 must be a number of kWh above 0".to_string()
                ),
                (
                    "figures.energy.baseline_kwh_per_day.D09".to_string(),
                    "unknown district `D09`".to_string()
                ),
            ]
        );
        // 240 kWh a day over six hours is 60 kWh.
        assert_eq!(s.baseline_kwh("D01", 6.0 * 3600.0), Some(60.0));
        assert_eq!(s.baseline_kwh("D03", 3600.0), None);
    }
}
