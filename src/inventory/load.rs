//! Reading `districts.csv`, `cabinets.csv` and `lamps.csv`, reporting every
//! malformed row with its file and line rather than stopping at the first.

use super::{Cabinet, ConfigIssue, District, Framing, Inventory, Lamp, RtuSpec, SlcSpec};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct DistrictRow {
    id: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct CabinetRow {
    id: String,
    district: String,
    #[serde(default)]
    name: String,
    lat: Option<f64>,
    lon: Option<f64>,
    circuits: u8,
    endpoint: Option<String>,
    framing: Option<String>,
    rtu_id: Option<String>,
    rtu_profile: Option<String>,
    rtu_unit: Option<u8>,
}

#[derive(Debug, Deserialize)]
struct LampRow {
    id: String,
    cabinet: String,
    circuit: u8,
    lat: Option<f64>,
    lon: Option<f64>,
    rated_power_w: Option<f64>,
    slc_id: Option<String>,
    slc_profile: Option<String>,
    slc_unit: Option<u8>,
    slc_index: Option<u16>,
}

fn read_rows<T: for<'de> Deserialize<'de>>(
    path: &Path,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<(String, T)> {
    let file = path.display().to_string();
    let mut reader = match csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
    {
        Ok(r) => r,
        Err(e) => {
            issues.push(ConfigIssue::new(file, e.to_string()));
            return Vec::new();
        }
    };
    let mut rows = Vec::new();
    for record in reader.deserialize::<T>() {
        match record {
            Ok(row) => {
                // Line numbers are those a spreadsheet shows (header is line 1).
                let line = rows.len() + 2;
                rows.push((format!("{file}:{line}"), row));
            }
            Err(e) => {
                let at = e
                    .position()
                    .map_or(file.clone(), |p| format!("{file}:{}", p.line()));
                issues.push(ConfigIssue::new(at, csv_message(&e)));
            }
        }
    }
    rows
}

fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(n) => format!("column {}: {}", n + 1, err.kind()),
            None => err.kind().to_string(),
        },
        _ => e.to_string(),
    }
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// Loads the three inventory files of a folder, with the problems of the rows
/// that could not be read. Cross-checks between rows (unknown cabinet,
/// duplicate ids, …) are left to the whole-configuration check.
pub fn load_dir(dir: &Path) -> (Inventory, Vec<ConfigIssue>) {
    let mut issues = Vec::new();
    let districts = read_rows::<DistrictRow>(&dir.join("districts.csv"), &mut issues)
        .into_iter()
        .map(|(at, r)| District {
            at,
            id: r.id,
            name: r.name,
        })
        .collect();

    let mut cabinets = Vec::new();
    for (at, r) in read_rows::<CabinetRow>(&dir.join("cabinets.csv"), &mut issues) {
        let framing = match r.framing.as_deref().unwrap_or("").parse::<Framing>() {
            Ok(f) => f,
            Err(e) => {
                issues.push(ConfigIssue::new(at.clone(), e));
                Framing::Tcp
            }
        };
        let rtu = match (non_empty(r.rtu_id), non_empty(r.rtu_profile), r.rtu_unit) {
            (None, None, None) => None,
            (Some(id), Some(profile), Some(unit)) => Some(RtuSpec { id, profile, unit }),
            _ => {
                issues.push(ConfigIssue::new(
                    at.clone(),
                    "rtu_id, rtu_profile and rtu_unit are given together or not at all",
                ));
                None
            }
        };
        cabinets.push(Cabinet {
            at,
            id: r.id,
            district: r.district,
            name: r.name,
            lat: r.lat,
            lon: r.lon,
            circuits: r.circuits,
            endpoint: non_empty(r.endpoint),
            framing,
            rtu,
        });
    }

    let mut lamps = Vec::new();
    for (at, r) in read_rows::<LampRow>(&dir.join("lamps.csv"), &mut issues) {
        let slc = match (non_empty(r.slc_id), non_empty(r.slc_profile), r.slc_unit) {
            (None, None, None) if r.slc_index.is_none() => None,
            (Some(id), Some(profile), Some(unit)) => Some(SlcSpec {
                id,
                profile,
                unit,
                index: r.slc_index,
            }),
            _ => {
                issues.push(ConfigIssue::new(
                    at.clone(),
                    "slc_id, slc_profile and slc_unit are given together or not at all",
                ));
                None
            }
        };
        lamps.push(Lamp {
            at,
            id: r.id,
            cabinet: r.cabinet,
            circuit: r.circuit,
            lat: r.lat,
            lon: r.lon,
            rated_power_w: r.rated_power_w,
            slc,
        });
    }

    (Inventory::new(districts, cabinets, lamps), issues)
}
