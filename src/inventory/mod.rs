//! The city's inventory: districts, cabinets (with or without an RTU) and lamps
//! (with or without an SLC), kept by the city as spreadsheets and loaded from CSV.

mod endpoint;
mod issue;
mod load;
mod road;

pub use endpoint::{EndpointAddr, Link, Parity, SerialLine};
pub use issue::ConfigIssue;
pub use load::load_dir;
pub use road::{Road, RoadClass};

use serde::Serialize;
use std::collections::HashMap;

/// How Modbus frames travel on an endpoint's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// Modbus TCP (MBAP header).
    Tcp,
    /// Modbus RTU frames (unit, PDU, CRC): on a serial line, tunnelled over
    /// TCP as serial servers send them (`rtu-over-tcp`), or through a DTU.
    Rtu,
}

impl std::str::FromStr for Framing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Framing::Tcp),
            "rtu-over-tcp" | "rtu" => Ok(Framing::Rtu),
            other => Err(format!(
                "framing `{other}` is not `tcp`, `rtu-over-tcp` or `rtu`"
            )),
        }
    }
}

/// An administrative area (区/县) with its own lighting operator.
#[derive(Debug, Clone, Serialize)]
pub struct District {
    #[serde(skip)]
    pub at: String,
    pub id: String,
    pub name: String,
}

/// The RTU (远程控制终端) of a cabinet.
#[derive(Debug, Clone, Serialize)]
pub struct RtuSpec {
    pub id: String,
    pub profile: String,
    pub unit: u8,
}

/// A lighting distribution cabinet (配电箱), whether it has an RTU or not.
#[derive(Debug, Clone, Serialize)]
pub struct Cabinet {
    /// Where the row came from (`file:line`), for error messages.
    #[serde(skip)]
    pub at: String,
    pub id: String,
    pub district: String,
    pub name: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub circuits: u8,
    /// The Modbus endpoint behind which its RTU and SLCs answer, as written
    /// (`host:port`, `serial:PATH?…` or `dtu:ID`).
    pub endpoint: Option<String>,
    /// The endpoint parsed; `None` when the cell is empty or wrong (an issue says why).
    #[serde(skip)]
    pub link: Option<EndpointAddr>,
    pub framing: Framing,
    pub rtu: Option<RtuSpec>,
}

impl Cabinet {
    /// The registration id of the DTU the cabinet's endpoint dials in with.
    pub fn dtu_id(&self) -> Option<&str> {
        match &self.link {
            Some(EndpointAddr {
                link: Link::DialIn { id },
                ..
            }) => Some(id),
            _ => None,
        }
    }
}

/// The single-lamp controller (单灯控制器) of a lamp.
#[derive(Debug, Clone, Serialize)]
pub struct SlcSpec {
    pub id: String,
    pub profile: String,
    pub unit: u8,
    /// Block index behind a concentrator (block-layout profiles only).
    pub index: Option<u16>,
}

/// One luminaire on a pole, fed by one circuit of one cabinet.
#[derive(Debug, Clone, Serialize)]
pub struct Lamp {
    #[serde(skip)]
    pub at: String,
    pub id: String,
    pub cabinet: String,
    pub circuit: u8,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub rated_power_w: Option<f64>,
    pub slc: Option<SlcSpec>,
    /// The road (`roads.csv`) it lights, if the city says.
    pub road: Option<String>,
}

#[derive(Debug, Default)]
pub struct Inventory {
    pub districts: Vec<District>,
    pub cabinets: Vec<Cabinet>,
    pub lamps: Vec<Lamp>,
    pub roads: Vec<Road>,
    road_index: HashMap<String, usize>,
    /// Road position of each lamp (`u32::MAX`: none or unknown).
    lamp_road: Vec<u32>,
    cabinet_index: HashMap<String, usize>,
    district_index: HashMap<String, usize>,
    lamp_index: HashMap<String, usize>,
    rtu_index: HashMap<String, usize>,
    /// Lamps fed by each cabinet, by cabinet position.
    lamps_per_cabinet: Vec<usize>,
    /// Cabinet position of each lamp (`u32::MAX` for an unknown cabinet,
    /// which validation rejects).
    lamp_cabinet: Vec<u32>,
    /// District position of each cabinet (`u32::MAX` if unknown).
    cabinet_district: Vec<u32>,
}

impl Inventory {
    pub fn new(districts: Vec<District>, cabinets: Vec<Cabinet>, lamps: Vec<Lamp>) -> Self {
        let district_index: HashMap<String, usize> = districts
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        let cabinet_index: HashMap<String, usize> = cabinets
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let lamp_index = lamps
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id.clone(), i))
            .collect();
        let rtu_index = cabinets
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.rtu.as_ref().map(|r| (r.id.clone(), i)))
            .collect();
        let mut lamps_per_cabinet = vec![0; cabinets.len()];
        let mut lamp_cabinet = Vec::with_capacity(lamps.len());
        for l in &lamps {
            let c = cabinet_index.get(&l.cabinet).copied();
            if let Some(c) = c {
                lamps_per_cabinet[c] += 1;
            }
            lamp_cabinet.push(c.map_or(u32::MAX, |c| c as u32));
        }
        let cabinet_district = cabinets
            .iter()
            .map(|c| {
                district_index
                    .get(&c.district)
                    .map_or(u32::MAX, |&d| d as u32)
            })
            .collect();
        Self {
            districts,
            cabinets,
            lamp_road: vec![u32::MAX; lamps.len()],
            lamps,
            roads: Vec::new(),
            road_index: HashMap::new(),
            cabinet_index,
            district_index,
            lamp_index,
            rtu_index,
            lamps_per_cabinet,
            lamp_cabinet,
            cabinet_district,
        }
    }

    /// The same inventory with its roads, each lamp placed on its road.
    pub fn with_roads(mut self, roads: Vec<Road>) -> Self {
        self.road_index = roads
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        self.lamp_road = self
            .lamps
            .iter()
            .map(|l| {
                l.road
                    .as_ref()
                    .and_then(|r| self.road_index.get(r))
                    .map_or(u32::MAX, |&i| i as u32)
            })
            .collect();
        self.roads = roads;
        self
    }

    pub fn road(&self, id: &str) -> Option<&Road> {
        self.road_index.get(id).map(|&i| &self.roads[i])
    }

    /// Road position of the lamp at `lamp`.
    pub fn road_of_lamp(&self, lamp: usize) -> Option<usize> {
        let r = *self.lamp_road.get(lamp)?;
        (r != u32::MAX).then_some(r as usize)
    }

    /// Cabinet position of the lamp at `lamp` (a position in `lamps`).
    pub fn cabinet_of_lamp(&self, lamp: usize) -> Option<usize> {
        let c = self.lamp_cabinet[lamp];
        (c != u32::MAX).then_some(c as usize)
    }

    /// District position of the cabinet at `cabinet`.
    pub fn district_of_cabinet(&self, cabinet: usize) -> Option<usize> {
        let d = self.cabinet_district[cabinet];
        (d != u32::MAX).then_some(d as usize)
    }

    pub fn district_position(&self, id: &str) -> Option<usize> {
        self.district_index.get(id).copied()
    }

    pub fn cabinet(&self, id: &str) -> Option<&Cabinet> {
        self.cabinet_index.get(id).map(|&i| &self.cabinets[i])
    }

    pub fn cabinet_position(&self, id: &str) -> Option<usize> {
        self.cabinet_index.get(id).copied()
    }

    pub fn lamp_position(&self, id: &str) -> Option<usize> {
        self.lamp_index.get(id).copied()
    }

    /// Position of the cabinet whose RTU has this id.
    pub fn rtu_position(&self, id: &str) -> Option<usize> {
        self.rtu_index.get(id).copied()
    }

    pub fn lamps_on_cabinet(&self, position: usize) -> usize {
        self.lamps_per_cabinet[position]
    }

    pub fn district(&self, id: &str) -> Option<&District> {
        self.district_index.get(id).map(|&i| &self.districts[i])
    }
}
