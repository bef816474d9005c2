//! Scenario files: faults and alarms applied when the farm starts.
//!
//! ```toml
//! frozen = false            # optional: start with time stopped
//! [[endpoint]]
//! index = 3
//! fault = { kind = "silent" }
//! [[slc]]
//! endpoint = 0
//! index = 5
//! fault = { failed = true }
//! [[rtu]]
//! endpoint = 1
//! door = true
//! [[circuit]]
//! endpoint = 2
//! circuit = 1
//! fault = { cut = { answers = false } }
//! ```
//!
//! Endpoint faults are the [`EndpointFault`] kinds (`refuse`, `silent`,
//! `delay` with `ms`, `exception` with `code`, `drop`, `garble`,
//! `wrong_tid`, and with RTU framing only `stray_frames` with optional
//! `every = N` and `noise = false`). An `[[slc]]` fault takes the [`SlcFault`] keys `silent`,
//! `exception = CODE`, `failed` and `no_answer` (unit layout only: the unit
//! sends nothing at all). An `[[rtu]]` entry sets the cabinet's `door` and
//! `leakage` alarms and its [`RtuFault`]: `fault = { no_answer = true }`
//! makes unit 1 send nothing at all. An `[[slc]]` fault also takes
//! `power_scale = K` and `stuck_on = true`. A `[[circuit]]` entry (circuit
//! 1-based) takes the [`CircuitFault`] keys `cut = {}` (with `answers =
//! false`: its SLCs go silent) and `stuck = { closed = BOOL }`.

use crate::{CircuitFault, EndpointFault, RtuFault, SimError, Simulator, SlcFault};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub frozen: bool,
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<EndpointEntry>,
    #[serde(default, rename = "slc")]
    pub slcs: Vec<SlcEntry>,
    #[serde(default, rename = "rtu")]
    pub rtus: Vec<RtuEntry>,
    #[serde(default, rename = "circuit")]
    pub circuits: Vec<CircuitEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitEntry {
    pub endpoint: usize,
    /// 1-based.
    pub circuit: usize,
    #[serde(default)]
    pub fault: CircuitFault,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointEntry {
    pub index: usize,
    pub fault: Option<EndpointFault>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlcEntry {
    pub endpoint: usize,
    pub index: usize,
    #[serde(default)]
    pub fault: SlcFault,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtuEntry {
    pub endpoint: usize,
    #[serde(default)]
    pub door: bool,
    #[serde(default)]
    pub leakage: bool,
    #[serde(default)]
    pub fault: RtuFault,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path}: {message}")]
    Parse { path: String, message: String },
    #[error("scenario: {0}")]
    Index(String),
    /// A fault this farm cannot carry (its layout, framing or link).
    #[error("scenario: {0}")]
    Unsupported(String),
}

impl From<ScenarioError> for SimError {
    fn from(e: ScenarioError) -> Self {
        SimError::Config(e.to_string())
    }
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, path: &str) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// Checks every index, then applies all entries.
    pub(crate) fn apply(&self, sim: &Simulator) -> Result<(), ScenarioError> {
        let (e, m) = (sim.endpoint_count(), sim.slcs_per_endpoint());
        let bad_ep = |i: usize| ScenarioError::Index(format!("endpoint {i} out of range (0..{e})"));
        for x in &self.endpoints {
            if x.index >= e {
                return Err(bad_ep(x.index));
            }
            if let Err(err) = sim.check_endpoint_fault(x.fault.as_ref()) {
                return Err(ScenarioError::Unsupported(format!(
                    "endpoint {}: {err}",
                    x.index
                )));
            }
        }
        for x in &self.rtus {
            if x.endpoint >= e {
                return Err(bad_ep(x.endpoint));
            }
        }
        let n = sim.circuits();
        for x in &self.circuits {
            if x.endpoint >= e {
                return Err(bad_ep(x.endpoint));
            }
            if !(1..=n).contains(&x.circuit) {
                return Err(ScenarioError::Index(format!(
                    "circuit {} of endpoint {} out of range (1..={n})",
                    x.circuit, x.endpoint
                )));
            }
        }
        for x in &self.slcs {
            if x.endpoint >= e {
                return Err(bad_ep(x.endpoint));
            }
            if x.index >= m {
                return Err(ScenarioError::Index(format!(
                    "SLC {} of endpoint {} out of range (0..{m})",
                    x.index, x.endpoint
                )));
            }
            if let Err(e) = sim.check_slc_fault(&x.fault) {
                return Err(ScenarioError::Unsupported(format!(
                    "SLC {} of endpoint {}: {e}",
                    x.index, x.endpoint
                )));
            }
        }
        for x in &self.endpoints {
            sim.set_endpoint_fault(x.index, x.fault);
        }
        for x in &self.circuits {
            sim.set_circuit_fault(x.endpoint, x.circuit, x.fault);
        }
        for x in &self.slcs {
            sim.set_slc_fault(x.endpoint, x.index, x.fault);
        }
        for x in &self.rtus {
            sim.set_rtu_alarms(x.endpoint, x.door, x.leakage);
            sim.set_rtu_fault(x.endpoint, x.fault);
        }
        if self.frozen {
            sim.set_frozen(true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let s = Scenario::parse(
            r#"
[[endpoint]]
index = 3
fault = { kind = "silent" }
[[endpoint]]
index = 4
fault = { kind = "delay", ms = 250 }
[[endpoint]]
index = 5
fault = { kind = "stray_frames", every = 3 }
[[slc]]
endpoint = 0
index = 5
fault = { failed = true }
[[slc]]
endpoint = 0
index = 6
fault = { no_answer = true }
[[rtu]]
endpoint = 1
door = true
[[rtu]]
endpoint = 2
fault = { no_answer = true }
[[slc]]
endpoint = 0
index = 7
fault = { power_scale = 1.4, stuck_on = true }
[[circuit]]
endpoint = 2
circuit = 1
fault = { cut = { answers = false } }
[[circuit]]
endpoint = 2
circuit = 3
fault = { cut = {}, stuck = { closed = false } }
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(s.endpoints[0].fault, Some(EndpointFault::Silent));
        assert_eq!(s.endpoints[1].fault, Some(EndpointFault::Delay { ms: 250 }));
        assert_eq!(
            s.endpoints[2].fault,
            Some(EndpointFault::StrayFrames {
                every: 3,
                noise: true
            })
        );
        assert!(s.slcs[0].fault.failed && !s.slcs[0].fault.silent);
        assert!(s.rtus[0].door && !s.rtus[0].leakage && !s.rtus[0].fault.no_answer);
        assert!(s.slcs[1].fault.no_answer && !s.slcs[1].fault.silent);
        assert!(s.rtus[1].fault.no_answer && !s.rtus[1].door);
        assert_eq!(
            (s.slcs[2].fault.power_scale, s.slcs[2].fault.stuck_on),
            (Some(1.4), true)
        );
        assert_eq!(
            (s.circuits[0].circuit, s.circuits[0].fault.cut),
            (1, Some(crate::SupplyCut { answers: false }))
        );
        assert_eq!(
            s.circuits[1].fault,
            CircuitFault {
                cut: Some(crate::SupplyCut { answers: true }),
                stuck: Some(crate::StuckContactor { closed: false }),
            }
        );
        assert!(Scenario::parse(
            "[[circuit]]\nendpoint = 0\ncircuit = 1\nfault = { stuck = {} }",
            "x"
        )
        .is_err());
        assert!(Scenario::parse(
            "[[circuit]]\nendpoint = 0\ncircuit = 1\nfault = { cut = { live = 1 } }",
            "x"
        )
        .is_err());
        assert!(Scenario::parse("[[rtu]]\nendpoint = 0\nfault = { mute = true }", "x").is_err());
        assert!(
            Scenario::parse("[[endpoint]]\nindex = 1\nfault = { kind = \"nap\" }", "x").is_err()
        );
    }
}
