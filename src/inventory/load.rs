//! Reading `districts.csv`, `cabinets.csv`, `lamps.csv` and the optional
//! `roads.csv`, reporting every
//! malformed row with its file and line rather than stopping at the first.

use super::{
    Cabinet, ConfigIssue, District, EndpointAddr, Framing, Inventory, Lamp, Road, RoadClass,
    RtuSpec, SlcSpec,
};
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
    /// Optional column: a city without roads leaves it out.
    #[serde(default)]
    road: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RoadRow {
    id: String,
    name: String,
    district: String,
    class: String,
    #[serde(default)]
    lamps_planned: Option<u32>,
}

/// Columns a file may leave out.
const OPTIONAL: &[&str] = &["road", "lamps_planned"];

/// Longest id (district, cabinet, lamp, RTU, SLC) in bytes: ids go into URLs,
/// topics and logs, and no real asset number comes near it.
const MAX_ID: usize = 64;

/// The column names a row type reads, taken from its `Deserialize` impl so the
/// list cannot drift from the struct: serde hands a struct's field names to
/// `deserialize_struct`, which this deserializer records and then stops.
fn columns<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names recorded")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(None);
    let _ = T::deserialize(&mut fields);
    fields.0.expect("row types are structs")
}

/// Reads one inventory file. The header is checked once: every column the
/// row type reads must be there (an optional value is an empty cell, not a
/// missing column) and no other, so a misspelt column is an error instead of
/// a value silently dropped. A file whose header is wrong yields no rows.
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
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            issues.push(ConfigIssue::new(format!("{file}:1"), e.to_string()));
            return Vec::new();
        }
    };
    let known = columns::<T>();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        issues.push(ConfigIssue::new(
            file,
            format!(
                "empty file: the header line `{}` is missing",
                known.join(",")
            ),
        ));
        return Vec::new();
    }
    let before = issues.len();
    let mut seen = std::collections::HashSet::new();
    for h in headers.iter() {
        if !known.contains(&h) {
            issues.push(ConfigIssue::new(
                format!("{file}:1"),
                format!(
                    "unknown column `{}` (the columns are {})",
                    cut(h),
                    known.join(", ")
                ),
            ));
        } else if !seen.insert(h) {
            issues.push(ConfigIssue::new(
                format!("{file}:1"),
                format!("column `{h}` appears twice"),
            ));
        }
    }
    for k in known {
        if !seen.contains(k) && !OPTIONAL.contains(k) {
            issues.push(ConfigIssue::new(
                format!("{file}:1"),
                format!("missing column `{k}`"),
            ));
        }
    }
    if issues.len() > before {
        return Vec::new();
    }
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        // The line a spreadsheet shows: where the record starts in the file,
        // whatever rows before it could not be read.
        let at = |line: u64| format!("{file}:{line}");
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                match record.deserialize::<T>(Some(&headers)) {
                    Ok(row) => rows.push((at(line), row)),
                    Err(e) => issues.push(ConfigIssue::new(at(line), csv_message(&e))),
                }
            }
            Err(e) => {
                let place = e.position().map_or(file.clone(), |p| at(p.line()));
                issues.push(ConfigIssue::new(place, csv_message(&e)));
                // A broken record ends the file only if the reader cannot go on.
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
            }
        }
    }
    rows
}

/// An id as it may appear in a message: never a screenful.
fn cut(s: &str) -> String {
    if s.len() <= MAX_ID {
        s.to_string()
    } else {
        let mut end = MAX_ID;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

/// Row-level value checks the CSV types do not make: id lengths and
/// coordinates in range.
fn check_id(at: &str, what: &str, id: &str, issues: &mut Vec<ConfigIssue>) {
    if id.len() > MAX_ID {
        issues.push(ConfigIssue::new(
            at,
            format!("{what} id is longer than {MAX_ID} bytes (`{}`)", cut(id)),
        ));
    }
}

fn check_position(at: &str, lat: Option<f64>, lon: Option<f64>, issues: &mut Vec<ConfigIssue>) {
    for (name, v, limit) in [("lat", lat, 90.0), ("lon", lon, 180.0)] {
        if let Some(v) = v {
            if !(-limit..=limit).contains(&v) {
                issues.push(ConfigIssue::new(
                    at,
                    format!("{name} {v} is outside -{limit}..={limit}"),
                ));
            }
        }
    }
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
        .map(|(at, r)| {
            check_id(&at, "district", &r.id, &mut issues);
            District {
                at,
                id: r.id,
                name: r.name,
            }
        })
        .collect();

    let mut cabinets = Vec::new();
    for (at, r) in read_rows::<CabinetRow>(&dir.join("cabinets.csv"), &mut issues) {
        check_id(&at, "cabinet", &r.id, &mut issues);
        check_position(&at, r.lat, r.lon, &mut issues);
        let framing_cell = match non_empty(r.framing).map(|f| f.parse::<Framing>()) {
            None => None,
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                issues.push(ConfigIssue::new(at.clone(), e));
                None
            }
        };
        let endpoint = non_empty(r.endpoint);
        let link = endpoint
            .as_deref()
            .and_then(|text| match text.parse::<EndpointAddr>() {
                Ok(addr) => Some(addr),
                Err(e) => {
                    issues.push(ConfigIssue::new(at.clone(), e));
                    None
                }
            });
        let framing = match &link {
            Some(addr) => addr.framing(framing_cell).unwrap_or_else(|e| {
                issues.push(ConfigIssue::new(at.clone(), e));
                addr.default_framing()
            }),
            None => framing_cell.unwrap_or(Framing::Tcp),
        };
        let rtu = match (non_empty(r.rtu_id), non_empty(r.rtu_profile), r.rtu_unit) {
            (None, None, None) => None,
            (Some(id), Some(profile), Some(unit)) => {
                check_id(&at, "RTU", &id, &mut issues);
                Some(RtuSpec { id, profile, unit })
            }
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
            endpoint,
            link,
            framing,
            rtu,
        });
    }

    let mut lamps = Vec::new();
    for (at, r) in read_rows::<LampRow>(&dir.join("lamps.csv"), &mut issues) {
        check_id(&at, "lamp", &r.id, &mut issues);
        check_position(&at, r.lat, r.lon, &mut issues);
        let slc = match (non_empty(r.slc_id), non_empty(r.slc_profile), r.slc_unit) {
            (None, None, None) if r.slc_index.is_none() => None,
            (Some(id), Some(profile), Some(unit)) => Some(SlcSpec {
                id: {
                    check_id(&at, "SLC", &id, &mut issues);
                    id
                },
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
            road: non_empty(r.road),
        });
    }

    // Roads are optional: a city that has not mapped them has no file.
    let mut roads = Vec::new();
    let roads_file = dir.join("roads.csv");
    if roads_file.exists() {
        for (at, r) in read_rows::<RoadRow>(&roads_file, &mut issues) {
            check_id(&at, "road", &r.id, &mut issues);
            let class = match r.class.parse::<RoadClass>() {
                Ok(c) => c,
                Err(e) => {
                    issues.push(ConfigIssue::new(at.clone(), e));
                    continue;
                }
            };
            roads.push(Road {
                at,
                id: r.id,
                name: r.name,
                district: r.district,
                class,
                lamps_planned: r.lamps_planned,
            });
        }
    }

    (
        Inventory::new(districts, cabinets, lamps).with_roads(roads),
        issues,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_columns_are_the_structs_fields_in_order() {
        assert_eq!(columns::<DistrictRow>(), ["id", "name"]);
        assert_eq!(
            columns::<RoadRow>().join(","),
            "id,name,district,class,lamps_planned"
        );
        assert_eq!(
            columns::<LampRow>().join(","),
            "id,cabinet,circuit,lat,lon,rated_power_w,slc_id,slc_profile,slc_unit,slc_index,road"
        );
        assert_eq!(
            columns::<CabinetRow>().join(","),
            "id,district,name,lat,lon,circuits,endpoint,framing,rtu_id,rtu_profile,rtu_unit"
        );
    }

    #[test]
    fn a_cut_id_ends_on_a_character() {
        let id = "é".repeat(40);
        let shown = cut(&id);
        assert!(shown.len() <= MAX_ID + '…'.len_utf8(), "{shown}");
        assert!(shown.ends_with('…'));
    }
}
