//! The inventory matching a farm: `districts.csv`, `cabinets.csv` and
//! `lamps.csv`, in the exact columns the gateway reads (empty cell = none).

use crate::device::{hash, unit_noise};
use crate::frame::Framing;
use crate::{serial, Place, Shared};
use lamp_profile::Layout;
use std::io;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryOptions {
    /// Extra cabinets `CAB-X{k+1:03}` with no controller at all.
    pub cabinets_without_rtu: usize,
    /// Extra lamps `LX-{i+1:04}-N{k+1:02}` per simulated cabinet, without SLC.
    pub lamps_without_slc_per_cabinet: usize,
}

/// Lamps in each cabinet without an RTU.
const LAMPS_PER_BARE_CABINET: usize = 2;
/// Circuits of a cabinet without an RTU.
const BARE_CABINET_CIRCUITS: usize = 2;
const CENTRE: (f64, f64) = (30.27, 120.15);

/// The inventory id of endpoint `i`'s cabinet.
pub(crate) fn cabinet_id(i: usize) -> String {
    format!("CAB-{:04}", i + 1)
}

/// The `endpoint` cell of endpoint `i`.
pub(crate) fn endpoint_cell(shared: &Shared, i: usize) -> String {
    match &shared.endpoints[i].place {
        Place::Listen(addr) => addr.to_string(),
        Place::Serial(path) => format!("serial:{}?{}", path.display(), serial::LINE_OPTIONS),
        Place::DialIn(_) => format!("dtu:{}", cabinet_id(i)),
    }
}

/// The `framing` cell of the farm's endpoints.
pub(crate) fn framing_cell(shared: &Shared) -> &'static str {
    match (shared.endpoints.first().map(|e| &e.place), shared.framing) {
        (Some(Place::Serial(_)), _) => "rtu",
        (Some(Place::DialIn(_)), Framing::RtuOverTcp) => "rtu",
        (_, Framing::Tcp) => "tcp",
        (_, Framing::RtuOverTcp) => "rtu-over-tcp",
    }
}

fn district_id(d: usize) -> String {
    format!("D{:02}", d + 1)
}

fn coord(x: f64) -> String {
    format!("{x:.6}")
}

/// A cabinet somewhere in a ~20 km box around the centre, lamps within ~300 m of it.
fn place(seed: u64, key: &[u64], spread: (f64, f64), around: (f64, f64)) -> (f64, f64) {
    let mut parts = vec![seed, 7];
    parts.extend_from_slice(key);
    let lat = around.0 + spread.0 * unit_noise(&parts);
    parts.push(1);
    let lon = around.1 + spread.1 * unit_noise(&parts);
    (lat, lon)
}

fn writer(dir: &Path, name: &str) -> io::Result<csv::Writer<std::fs::File>> {
    Ok(csv::Writer::from_writer(std::fs::File::create(
        dir.join(name),
    )?))
}

pub(crate) fn write(shared: &Shared, dir: &Path, opts: &InventoryOptions) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let seed = shared.seed;
    let slc_profile = &shared.profiles.slc;
    let rtu_profile = &shared.profiles.rtu;
    let circuits = usize::from(rtu_profile.circuits.max(1));

    let mut w = writer(dir, "districts.csv")?;
    w.write_record(["id", "name"])?;
    for d in 0..shared.districts {
        w.write_record([district_id(d), format!("District {:02}", d + 1)])?;
    }
    w.flush()?;

    let mut cabs = writer(dir, "cabinets.csv")?;
    cabs.write_record([
        "id",
        "district",
        "name",
        "lat",
        "lon",
        "circuits",
        "endpoint",
        "framing",
        "rtu_id",
        "rtu_profile",
        "rtu_unit",
    ])?;
    let mut lamps = writer(dir, "lamps.csv")?;
    lamps.write_record([
        "id",
        "cabinet",
        "circuit",
        "lat",
        "lon",
        "rated_power_w",
        "slc_id",
        "slc_profile",
        "slc_unit",
        "slc_index",
    ])?;
    let framing = framing_cell(shared);
    for (i, ep) in shared.endpoints.iter().enumerate() {
        let n = i + 1;
        let cab_id = cabinet_id(i);
        let pos = place(seed, &[1, i as u64], (0.08, 0.1), CENTRE);
        cabs.write_record([
            cab_id.clone(),
            district_id(i % shared.districts),
            format!("Cabinet {n:04}"),
            coord(pos.0),
            coord(pos.1),
            circuits.to_string(),
            endpoint_cell(shared, i),
            framing.to_string(),
            format!("RTU-{n:04}"),
            rtu_profile.name.clone(),
            "1".into(),
        ])?;
        let ratings: Vec<u16> = ep.cabinet.lock().slcs.iter().map(|s| s.rated_w).collect();
        for (j, rated) in ratings.iter().enumerate() {
            let at = place(seed, &[2, i as u64, j as u64], (0.003, 0.003), pos);
            let (unit, index) = match slc_profile.layout {
                Layout::Unit => ((j + 2).to_string(), String::new()),
                Layout::Block { .. } => ("1".to_string(), j.to_string()),
            };
            lamps.write_record([
                format!("LX-{n:04}-{:03}", j + 1),
                cab_id.clone(),
                (j % circuits + 1).to_string(),
                coord(at.0),
                coord(at.1),
                rated.to_string(),
                format!("SLC-{n:04}-{:03}", j + 1),
                slc_profile.name.clone(),
                unit,
                index,
            ])?;
        }
        for k in 0..opts.lamps_without_slc_per_cabinet {
            let at = place(seed, &[3, i as u64, k as u64], (0.003, 0.003), pos);
            lamps.write_record([
                format!("LX-{n:04}-N{:02}", k + 1),
                cab_id.clone(),
                (k % circuits + 1).to_string(),
                coord(at.0),
                coord(at.1),
                rating(seed, &[3, i as u64, k as u64]),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ])?;
        }
    }
    for k in 0..opts.cabinets_without_rtu {
        let n = k + 1;
        let cab_id = format!("CAB-X{n:03}");
        let pos = place(seed, &[4, k as u64], (0.08, 0.1), CENTRE);
        cabs.write_record([
            cab_id.clone(),
            district_id(k % shared.districts),
            format!("Cabinet X{n:03} (no RTU)"),
            coord(pos.0),
            coord(pos.1),
            BARE_CABINET_CIRCUITS.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ])?;
        for m in 0..LAMPS_PER_BARE_CABINET {
            let at = place(seed, &[5, k as u64, m as u64], (0.003, 0.003), pos);
            lamps.write_record([
                format!("LX-X{n:03}-N{:02}", m + 1),
                cab_id.clone(),
                (m % BARE_CABINET_CIRCUITS + 1).to_string(),
                coord(at.0),
                coord(at.1),
                rating(seed, &[5, k as u64, m as u64]),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ])?;
        }
    }
    cabs.flush()?;
    lamps.flush()
}

fn rating(seed: u64, key: &[u64]) -> String {
    let mut parts = vec![seed, 8];
    parts.extend_from_slice(key);
    [60, 100, 150][(hash(&parts) % 3) as usize].to_string()
}
