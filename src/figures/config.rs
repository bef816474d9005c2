//! `[figures]` settings: how the evaluation-grade figures count a lamp
//! nobody can see, and what the city's evaluation judges them against.
//!
//! The defaults are those of the city evaluation rules the issue names
//! (城市照明考评): lighting rate main roads ≥ 98 %, secondary and branch roads
//! ≥ 96–97 %; facility intact rate ≥ 95 % on roads, ≥ 90 % for landscape
//! lighting; at most 4 / 3 / 2 dark lamps on a road of 150–200 / 100–149 /
//! under 100 lamps. Cities differ: every value can be overridden.

use crate::inventory::RoadClass;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a lamp whose state nobody can see (its SLC offline, or no SLC and no
/// online RTU) counts in the lighting rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownPolicy {
    /// As a dark lamp: an inspector walking the road would not have seen
    /// it lit, so the rate must not read higher than the inspector's count.
    #[default]
    Dark,
    /// Left out of the denominator: the rate of the lamps that are seen.
    Excluded,
}

impl UnknownPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            UnknownPolicy::Dark => "dark",
            UnknownPolicy::Excluded => "excluded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FiguresSettings {
    /// `dark` (default) or `excluded`: see [`UnknownPolicy`].
    pub unknown_counts_as: UnknownPolicy,
    /// How often the evaluation now is taken and its lamp-seconds added to
    /// the hour's (`figures::sampler`): the windowed evaluation figures are
    /// as fine as this, and a kill loses at most one of it.
    #[serde(with = "humantime_serde")]
    pub evaluation_interval: Duration,
    /// Lighting rate (亮灯率) a road class must reach.
    pub lighting_targets: LightingTargets,
    /// Facility intact rate (设施完好率) targets.
    pub intact_targets: IntactTargets,
    /// The most dark lamps a road may have, by its size.
    pub dark_caps: DarkCaps,
    /// `[figures.energy]`: the saving rate's baseline.
    pub energy: EnergySettings,
    /// `[figures.targets]`: what the console colours the six figures now
    /// against.
    pub targets: FigureTargets,
}

impl Default for FiguresSettings {
    fn default() -> Self {
        Self {
            unknown_counts_as: UnknownPolicy::default(),
            // A minute: finer than any inspection, and one evaluation of
            // 100,000 lamps a minute is a few hundredths of a core-second.
            evaluation_interval: Duration::from_secs(60),
            lighting_targets: LightingTargets::default(),
            intact_targets: IntactTargets::default(),
            dark_caps: DarkCaps::default(),
            energy: EnergySettings::default(),
            targets: FigureTargets::default(),
        }
    }
}

/// The shortest and longest `figures.evaluation_interval` accepted: below
/// the shortest the sampler would walk the city more often than the state
/// changes; above the longest one sample would stand for more than an hour.
pub const EVALUATION_INTERVAL_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(3600));

/// Lighting-rate target per road class, a fraction in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LightingTargets {
    pub expressway: f64,
    pub main: f64,
    pub secondary: f64,
    pub branch: f64,
    pub residential: f64,
    pub landscape: f64,
}

impl Default for LightingTargets {
    fn default() -> Self {
        Self {
            // The rules score expressways with the main roads (98 %): both
            // carry the fast traffic a dark lamp endangers most.
            expressway: 0.98,
            main: 0.98,
            // The rules' "96–97 %": 97 for secondary roads, 96 for branches.
            secondary: 0.97,
            branch: 0.96,
            // Residential streets are branch-grade roads in the road
            // classification, so they take the branch target.
            residential: 0.96,
            // Landscape lighting is decorative and scored more loosely (its
            // intact target is 90 % against 95 % on roads): a step below.
            landscape: 0.95,
        }
    }
}

impl LightingTargets {
    pub fn of(&self, class: RoadClass) -> f64 {
        match class {
            RoadClass::Expressway => self.expressway,
            RoadClass::Main => self.main,
            RoadClass::Secondary => self.secondary,
            RoadClass::Branch => self.branch,
            RoadClass::Residential => self.residential,
            RoadClass::Landscape => self.landscape,
        }
    }
}

/// The least each figure now should be, a fraction in [0, 1]; a figure
/// without one is shown uncoloured. The lighting and facility intact rates
/// default to the evaluation's own road targets (the branch-road lighting
/// target, the lowest a road is held to, and the roads' intact target); the
/// online rates to 95 %, a common threshold in cities' evaluation rules
/// that each city should set to its own; the installation ratio and the
/// control share are growth goals without a default.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FigureTargets {
    pub rtu_installation_ratio: Option<f64>,
    pub rtu_online_rate: Option<f64>,
    pub slc_control_share: Option<f64>,
    pub slc_online_rate: Option<f64>,
    pub lighting_rate: Option<f64>,
    pub facility_intact_rate: Option<f64>,
}

impl Default for FigureTargets {
    fn default() -> Self {
        Self {
            rtu_installation_ratio: None,
            rtu_online_rate: Some(0.95),
            slc_control_share: None,
            slc_online_rate: Some(0.95),
            lighting_rate: Some(LightingTargets::default().branch),
            facility_intact_rate: Some(IntactTargets::default().roads),
        }
    }
}

impl FigureTargets {
    /// Every target with its figure's key, for the range check.
    pub fn all(&self) -> [(&'static str, Option<f64>); 6] {
        [
            ("rtu_installation_ratio", self.rtu_installation_ratio),
            ("rtu_online_rate", self.rtu_online_rate),
            ("slc_control_share", self.slc_control_share),
            ("slc_online_rate", self.slc_online_rate),
            ("lighting_rate", self.lighting_rate),
            ("facility_intact_rate", self.facility_intact_rate),
        ]
    }

    /// The target of a figure by its key.
    pub fn of(&self, key: &str) -> Option<f64> {
        self.all()
            .into_iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v)
    }
}

/// Facility intact rate targets: roads of every class but landscape, and
/// landscape lighting.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntactTargets {
    pub roads: f64,
    pub landscape: f64,
}

impl Default for IntactTargets {
    fn default() -> Self {
        Self {
            roads: 0.95,
            landscape: 0.90,
        }
    }
}

impl IntactTargets {
    pub fn of(&self, class: RoadClass) -> f64 {
        match class {
            RoadClass::Landscape => self.landscape,
            _ => self.roads,
        }
    }
}

/// The most dark lamps a road may have, by the lamps it has in the
/// inventory: the cap of the first band whose `up_to` holds that number;
/// past the last band, the last band's proportion (by default 4 per 200
/// lamps), rounded down and never below the last band's cap.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DarkCaps {
    pub bands: Vec<DarkCapBand>,
}

/// Roads of at most `up_to` lamps may have `cap` dark lamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DarkCapBand {
    pub up_to: u32,
    pub cap: u32,
}

impl Default for DarkCaps {
    fn default() -> Self {
        Self {
            bands: vec![
                DarkCapBand { up_to: 99, cap: 2 },
                DarkCapBand { up_to: 149, cap: 3 },
                DarkCapBand { up_to: 200, cap: 4 },
            ],
        }
    }
}

impl DarkCaps {
    /// The cap of a road with `lamps` lamps.
    pub fn cap(&self, lamps: u64) -> u64 {
        if let Some(b) = self.bands.iter().find(|b| lamps <= u64::from(b.up_to)) {
            return u64::from(b.cap);
        }
        match self.bands.last() {
            // 250 lamps at 4 per 200: 1000 / 200 = 5.
            Some(last) if last.up_to > 0 => {
                (lamps * u64::from(last.cap) / u64::from(last.up_to)).max(u64::from(last.cap))
            }
            Some(last) => u64::from(last.cap),
            // `problems` refuses an empty list; no cap is then no dark lamp.
            None => 0,
        }
    }
}

impl FiguresSettings {
    /// Values that parse but make no sense, as (key, problem).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let (shortest, longest) = EVALUATION_INTERVAL_RANGE;
        if !(shortest..=longest).contains(&self.evaluation_interval) {
            out.push((
                "figures.evaluation_interval".into(),
                format!(
                    "{} is not between {} and {}",
                    humantime::format_duration(self.evaluation_interval),
                    humantime::format_duration(shortest),
                    humantime::format_duration(longest)
                ),
            ));
        }
        let mut fraction = |key: String, v: f64| {
            if !(0.0..=1.0).contains(&v) {
                out.push((key, format!("{v} is not a fraction from 0 to 1")));
            }
        };
        for class in RoadClass::ALL {
            fraction(
                format!("figures.lighting_targets.{}", class.as_str()),
                self.lighting_targets.of(class),
            );
        }
        fraction(
            "figures.intact_targets.roads".into(),
            self.intact_targets.roads,
        );
        fraction(
            "figures.intact_targets.landscape".into(),
            self.intact_targets.landscape,
        );
        for (key, v) in self.targets.all() {
            if let Some(v) = v {
                fraction(format!("figures.targets.{key}"), v);
            }
        }
        let bands = &self.dark_caps.bands;
        if bands.is_empty() {
            out.push((
                "figures.dark_caps.bands".into(),
                "needs at least one band".into(),
            ));
        }
        for (i, pair) in bands.windows(2).enumerate() {
            let (a, b) = (pair[0], pair[1]);
            if b.up_to <= a.up_to {
                out.push((
                    format!("figures.dark_caps.bands[{}].up_to", i + 1),
                    format!(
                        "{} does not follow {}: bands go from small roads to large",
                        b.up_to, a.up_to
                    ),
                ));
            }
            if b.cap < a.cap {
                out.push((
                    format!("figures.dark_caps.bands[{}].cap", i + 1),
                    format!(
                        "{} is below the smaller roads' {}: a larger road may not have fewer dark lamps",
                        b.cap, a.cap
                    ),
                ));
            }
        }
        out
    }
}

/// `[figures.energy]`: what the energy saving rate (节电率) is measured
/// against (rules in `figures/energy.rs`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
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
    fn default_caps_by_road_size_and_beyond() {
        let caps = DarkCaps::default();
        for (lamps, cap) in [
            (0, 2),
            (99, 2),
            (100, 3),
            (149, 3),
            (150, 4),
            (200, 4),
            // Beyond 200: 4 per 200 lamps, rounded down, at least 4.
            (249, 4),
            (250, 5),
            (1000, 20),
        ] {
            assert_eq!(caps.cap(lamps), cap, "{lamps} lamps");
        }
    }

    #[test]
    fn settings_load_with_defaults_and_overrides() {
        let s = crate::settings::tests::load(
            "[figures]\nunknown_counts_as = \"excluded\"\n\
             [figures.lighting_targets]\nmain = 0.99\n\
             [figures.dark_caps]\nbands = [{ up_to = 50, cap = 1 }, { up_to = 100, cap = 3 }]\n",
        )
        .unwrap();
        let f = &s.figures;
        assert_eq!(f.unknown_counts_as, UnknownPolicy::Excluded);
        assert_eq!(f.lighting_targets.of(RoadClass::Main), 0.99);
        assert_eq!(f.lighting_targets.of(RoadClass::Secondary), 0.97, "kept");
        assert_eq!(f.intact_targets, IntactTargets::default());
        assert_eq!((f.dark_caps.cap(50), f.dark_caps.cap(51)), (1, 3));
        // Past 100 lamps at 3 per 100.
        assert_eq!(f.dark_caps.cap(300), 9);
        assert!(f.problems().is_empty(), "{:?}", f.problems());
        assert_eq!(
            crate::settings::tests::load("").unwrap().figures,
            FiguresSettings::default()
        );
    }

    #[test]
    fn the_shipped_settings_file_says_the_defaults() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let s = crate::settings::Settings::load(Some(&file)).unwrap();
        assert_eq!(s.figures, FiguresSettings::default());
    }

    #[test]
    fn the_evaluation_interval_loads_and_is_bounded() {
        let s = crate::settings::tests::load("[figures]\nevaluation_interval = \"15s\"\n").unwrap();
        assert_eq!(s.figures.evaluation_interval, Duration::from_secs(15));
        assert_eq!(
            FiguresSettings::default().evaluation_interval,
            Duration::from_secs(60)
        );
        for (bad, ok) in [
            ("0s", false),
            ("50ms", false),
            ("100ms", true),
            ("2h", false),
        ] {
            let f = FiguresSettings {
                evaluation_interval: humantime::parse_duration(bad).unwrap(),
                ..FiguresSettings::default()
            };
            let keys: Vec<String> = f.problems().into_iter().map(|(k, _)| k).collect();
            assert_eq!(keys.is_empty(), ok, "{bad}: {keys:?}");
            if !ok {
                assert_eq!(keys, ["figures.evaluation_interval"]);
            }
        }
    }

    #[test]
    fn a_bad_policy_or_key_fails_the_load_naming_it() {
        let err =
            crate::settings::tests::load("[figures]\nunknown_counts_as = \"lit\"\n").unwrap_err();
        assert!(err.contains("unknown_counts_as"), "{err}");
        let err =
            crate::settings::tests::load("[figures.lighting_targets]\navenue = 0.9\n").unwrap_err();
        assert!(err.contains("avenue"), "{err}");
    }

    #[test]
    fn problems_name_their_keys() {
        let mut f = FiguresSettings::default();
        f.lighting_targets.branch = 96.0;
        f.intact_targets.landscape = -0.1;
        f.dark_caps.bands = vec![
            DarkCapBand { up_to: 100, cap: 3 },
            DarkCapBand { up_to: 100, cap: 2 },
        ];
        let keys: Vec<String> = f.problems().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "figures.lighting_targets.branch",
                "figures.intact_targets.landscape",
                "figures.dark_caps.bands[1].up_to",
                "figures.dark_caps.bands[1].cap",
            ]
        );
        f.dark_caps.bands.clear();
        assert!(f
            .problems()
            .iter()
            .any(|(k, _)| k == "figures.dark_caps.bands"));
    }

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
