//! Roads (道路) and their classes: what the evaluation scores the lighting
//! rate and the facility intact rate by.

use serde::Serialize;

/// The class of a road, as the city's evaluation rules name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoadClass {
    /// 快速路
    Expressway,
    /// 主干道
    Main,
    /// 次干道
    Secondary,
    /// 支路
    Branch,
    /// 居住区
    Residential,
    /// 景观 (landscape lighting: its own intact-rate target)
    Landscape,
}

impl RoadClass {
    pub const ALL: [RoadClass; 6] = [
        RoadClass::Expressway,
        RoadClass::Main,
        RoadClass::Secondary,
        RoadClass::Branch,
        RoadClass::Residential,
        RoadClass::Landscape,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoadClass::Expressway => "expressway",
            RoadClass::Main => "main",
            RoadClass::Secondary => "secondary",
            RoadClass::Branch => "branch",
            RoadClass::Residential => "residential",
            RoadClass::Landscape => "landscape",
        }
    }

    /// The Chinese name, as reports print it.
    pub fn zh(self) -> &'static str {
        match self {
            RoadClass::Expressway => "快速路",
            RoadClass::Main => "主干道",
            RoadClass::Secondary => "次干道",
            RoadClass::Branch => "支路",
            RoadClass::Residential => "居住区",
            RoadClass::Landscape => "景观",
        }
    }
}

impl std::str::FromStr for RoadClass {
    type Err = String;
    /// The English names, or the Chinese ones as synonyms.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RoadClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s || c.zh() == s)
            .ok_or_else(|| {
                format!(
                    "road class `{}` is not one of {} (or 快速路, 主干道, 次干道, 支路, 居住区, 景观)",
                    s.chars().take(32).collect::<String>(),
                    RoadClass::ALL.map(RoadClass::as_str).join(", ")
                )
            })
    }
}

/// One road of `roads.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct Road {
    #[serde(skip)]
    pub at: String,
    pub id: String,
    pub name: String,
    pub district: String,
    pub class: RoadClass,
    /// Lamps planned on the road (装灯), for its installation rate.
    pub lamps_planned: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_are_synonyms() {
        assert_eq!("主干道".parse::<RoadClass>(), Ok(RoadClass::Main));
        assert_eq!("landscape".parse::<RoadClass>(), Ok(RoadClass::Landscape));
        assert!("avenue".parse::<RoadClass>().unwrap_err().contains("main"));
    }
}
