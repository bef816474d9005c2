//! Device profiles: the register maps of cabinet RTUs and single-lamp controllers.
//!
//! A profile says which Modbus table and address hold which quantity, in which
//! type, word order and scale. The gateway decodes with it and the simulator
//! encodes with it, so both sides of every test speak from the same file.

mod codec;
mod quantity;

pub use codec::{decode, encode};
pub use quantity::Quantity;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The profiles shipped in `config/profiles/`, as (file name, text), so the
/// demo and the simulator run without a checkout.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "rtu-cabinet.toml",
        include_str!("../../config/profiles/rtu-cabinet.toml"),
    ),
    (
        "slc-a-unit.toml",
        include_str!("../../config/profiles/slc-a-unit.toml"),
    ),
    (
        "slc-b-block.toml",
        include_str!("../../config/profiles/slc-b-block.toml"),
    ),
];

/// Largest number of registers one Modbus read may ask for (FC 3/4).
pub const MAX_READ_REGISTERS: u16 = 125;
/// Largest number of coils/discrete inputs one Modbus read may ask for (FC 1/2).
pub const MAX_READ_BITS: u16 = 2000;

/// The Modbus data tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    Coil,
    DiscreteInput,
    Input,
    Holding,
}

impl Table {
    /// Coils and discrete inputs carry one bit per address.
    pub fn is_bit(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }
    pub fn writable(self) -> bool {
        matches!(self, Table::Coil | Table::Holding)
    }
    pub fn max_read(self) -> u16 {
        if self.is_bit() {
            MAX_READ_BITS
        } else {
            MAX_READ_REGISTERS
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    Bool,
    U16,
    I16,
    U32,
    I32,
    F32,
}

impl ValueType {
    /// Width in registers (bits for the bit tables).
    pub fn width(self) -> u16 {
        match self {
            ValueType::Bool | ValueType::U16 | ValueType::I16 => 1,
            ValueType::U32 | ValueType::I32 | ValueType::F32 => 2,
        }
    }
}

/// Word order of 32-bit values: ABCD is high word first (big-endian), CDAB is
/// low word first, as many meters and concentrators send it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum WordOrder {
    #[default]
    ABCD,
    CDAB,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    #[default]
    Read,
    ReadWrite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Rtu,
    Slc,
}

/// How the devices of one profile are addressed behind an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every device is its own Modbus unit id; field addresses are absolute.
    Unit,
    /// A concentrator exposes its devices as equal register blocks on one unit
    /// id: device `n` starts at `base + n * stride`; field addresses are offsets.
    Block { base: u16, stride: u16 },
}

/// One quantity of a device and where it lives.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub quantity: Quantity,
    pub table: Table,
    /// Absolute address for unit layout, offset in the block for block layout.
    pub address: u16,
    pub value_type: ValueType,
    pub word_order: WordOrder,
    /// Engineering value = raw × scale.
    pub scale: f64,
    pub unit: Option<String>,
    pub access: Access,
}

impl Field {
    pub fn width(&self) -> u16 {
        self.value_type.width()
    }
    /// Last address (inclusive) the field occupies, relative to its layout.
    pub fn end(&self) -> u32 {
        u32::from(self.address) + u32::from(self.width()) - 1
    }
}

/// A register map for one model of RTU or SLC.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub name: String,
    pub kind: DeviceKind,
    pub vendor: String,
    pub description: String,
    pub layout: Layout,
    /// Number of switchable circuits (RTU profiles only).
    pub circuits: u8,
    /// Power above which an SLC lamp that is on counts as lit (W).
    pub lit_threshold_w: f64,
    /// Function codes the device accepts for writes.
    pub write: WriteCodes,
    pub fields: Vec<Field>,
}

/// Which Modbus functions a command is written with. Some SLCs accept only
/// "write multiple" (16, and 15 for coils), even for one register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteCodes {
    /// 06 for one register, 16 for several, 05 for a coil.
    #[default]
    Single,
    /// 16 for registers and 15 for coils, always.
    Multiple,
}

/// A problem found in a profile file, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileIssue {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ProfileIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.message)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    kind: DeviceKind,
    #[serde(default)]
    vendor: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    layout: RawLayout,
    #[serde(default)]
    circuits: u8,
    #[serde(default = "default_lit_threshold")]
    lit_threshold_w: f64,
    #[serde(default)]
    write: WriteCodes,
    #[serde(rename = "field", default)]
    fields: Vec<RawField>,
}

fn default_lit_threshold() -> f64 {
    5.0
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    #[serde(default)]
    mode: RawLayoutMode,
    base: Option<u16>,
    stride: Option<u16>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawLayoutMode {
    #[default]
    Unit,
    Block,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    table: Table,
    address: u16,
    #[serde(rename = "type")]
    value_type: Option<ValueType>,
    #[serde(default)]
    word_order: WordOrder,
    #[serde(default = "one")]
    scale: f64,
    unit: Option<String>,
    #[serde(default)]
    access: Access,
}

fn one() -> f64 {
    1.0
}

impl Profile {
    /// Parses and validates a profile, reporting every problem at once.
    pub fn from_toml(text: &str, file: &str) -> Result<Profile, Vec<ProfileIssue>> {
        let issue = |key: &str, message: String| ProfileIssue {
            file: file.to_string(),
            key: key.to_string(),
            message,
        };
        let raw: RawProfile =
            toml::from_str(text).map_err(|e| vec![issue("(file)", e.message().to_string())])?;
        let mut issues = Vec::new();

        let layout = match raw.layout.mode {
            RawLayoutMode::Unit => Layout::Unit,
            RawLayoutMode::Block => match (raw.layout.base, raw.layout.stride) {
                (Some(base), Some(stride)) if stride > 0 => Layout::Block { base, stride },
                _ => {
                    issues.push(issue(
                        "layout",
                        "block layout needs `base` and a non-zero `stride`".into(),
                    ));
                    Layout::Block { base: 0, stride: 1 }
                }
            },
        };

        let mut fields = Vec::with_capacity(raw.fields.len());
        for (i, f) in raw.fields.iter().enumerate() {
            let key = format!("field[{i}] ({})", f.name);
            let quantity = match f.name.parse::<Quantity>() {
                Ok(q) => q,
                Err(e) => {
                    issues.push(issue(&key, e));
                    continue;
                }
            };
            if quantity.device_kind() != raw.kind {
                issues.push(issue(
                    &key,
                    format!("`{}` is not a quantity of a {:?} profile", f.name, raw.kind),
                ));
            }
            let value_type = f.value_type.unwrap_or(if f.table.is_bit() {
                ValueType::Bool
            } else {
                ValueType::U16
            });
            if f.table.is_bit() != (value_type == ValueType::Bool) {
                issues.push(issue(
                    &key,
                    "coils and discrete inputs hold `bool`; registers hold numbers".into(),
                ));
            }
            if f.access == Access::ReadWrite && !f.table.writable() {
                issues.push(issue(
                    &key,
                    format!(
                        "{:?} is read-only in Modbus; read_write needs coil or holding",
                        f.table
                    ),
                ));
            }
            if quantity.writable() && f.access != Access::ReadWrite {
                issues.push(issue(&key, format!("`{}` must be read_write", f.name)));
            }
            if !(f.scale.is_finite() && f.scale != 0.0) {
                issues.push(issue(&key, "scale must be a finite non-zero number".into()));
            }
            if u32::from(f.address) + u32::from(value_type.width()) > 0x1_0000 {
                issues.push(issue(&key, "field runs past address 65535".into()));
            }
            if let Layout::Block { .. } = layout {
                if f.table.is_bit() {
                    issues.push(issue(&key, "block layout supports registers only".into()));
                }
            }
            fields.push(Field {
                quantity,
                table: f.table,
                address: f.address,
                value_type,
                word_order: f.word_order,
                scale: f.scale,
                unit: f.unit.clone(),
                access: f.access,
            });
        }

        // Two quantities at one address would decode as each other.
        let mut by_table: BTreeMap<Table, Vec<&Field>> = BTreeMap::new();
        for f in &fields {
            by_table.entry(f.table).or_default().push(f);
        }
        for (table, mut list) in by_table {
            list.sort_by_key(|f| f.address);
            for pair in list.windows(2) {
                if u32::from(pair[1].address) <= pair[0].end() {
                    issues.push(issue(
                        &format!("field ({})", pair[1].quantity),
                        format!(
                            "overlaps `{}` in {:?} at address {}",
                            pair[0].quantity, table, pair[1].address
                        ),
                    ));
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        for f in &fields {
            if !seen.insert(f.quantity) {
                issues.push(issue(
                    &format!("field ({})", f.quantity),
                    "quantity mapped twice".into(),
                ));
            }
        }

        if let Layout::Block { base, stride } = layout {
            if stride > MAX_READ_REGISTERS {
                issues.push(issue(
                    "layout.stride",
                    format!(
                        "register block of {stride} registers exceeds the Modbus limit of \
                         {MAX_READ_REGISTERS} per read"
                    ),
                ));
            }
            if let Some(f) = fields.iter().find(|f| f.end() >= u32::from(stride)) {
                issues.push(issue(
                    &format!("field ({})", f.quantity),
                    format!("offset {} runs past the block stride {stride}", f.address),
                ));
            }
            let _ = base;
        }

        match raw.kind {
            DeviceKind::Slc => {
                for q in [Quantity::Switch, Quantity::DimLevel, Quantity::Power] {
                    if !fields.iter().any(|f| f.quantity == q) {
                        issues.push(issue("field", format!("an SLC profile must map `{q}`")));
                    }
                }
            }
            DeviceKind::Rtu => {
                if raw.circuits == 0 {
                    issues.push(issue(
                        "circuits",
                        "an RTU profile switches at least one circuit".into(),
                    ));
                }
                for n in 1..=raw.circuits {
                    if !fields.iter().any(|f| f.quantity == Quantity::Contactor(n)) {
                        issues.push(issue(
                            "field",
                            format!("circuit {n} has no `contactor_{n}`"),
                        ));
                    }
                }
                if let Layout::Block { .. } = layout {
                    issues.push(issue("layout", "RTU profiles use unit layout".into()));
                }
            }
        }

        if issues.is_empty() {
            Ok(Profile {
                name: raw.name,
                kind: raw.kind,
                vendor: raw.vendor,
                description: raw.description,
                layout,
                circuits: raw.circuits,
                lit_threshold_w: raw.lit_threshold_w,
                write: raw.write,
                fields,
            })
        } else {
            Err(issues)
        }
    }

    /// Loads every `*.toml` in a folder, keyed by profile name; any problem
    /// in any file is an error.
    pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, Profile>, Vec<ProfileIssue>> {
        let (profiles, issues) = Profile::load_dir_partial(dir);
        if issues.is_empty() {
            Ok(profiles)
        } else {
            Err(issues)
        }
    }

    /// Loads the valid profiles of a folder and lists the problems of the
    /// others, so a configuration check can go on to the inventory without
    /// reporting every user of a good profile as "unknown".
    pub fn load_dir_partial(dir: &Path) -> (BTreeMap<String, Profile>, Vec<ProfileIssue>) {
        let dir_issue = |message: String| {
            vec![ProfileIssue {
                file: dir.display().to_string(),
                key: "(folder)".into(),
                message,
            }]
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => return (BTreeMap::new(), dir_issue(e.to_string())),
        };
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut profiles = BTreeMap::new();
        let mut issues = Vec::new();
        for path in paths {
            let file = path.display().to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => {
                    issues.extend(dir_issue(format!("{file}: {e}")));
                    continue;
                }
            };
            match Profile::from_toml(&text, &file) {
                Ok(p) => {
                    if profiles.contains_key(&p.name) {
                        issues.push(ProfileIssue {
                            file,
                            key: "name".into(),
                            message: format!("profile `{}` is defined twice", p.name),
                        });
                    } else {
                        profiles.insert(p.name.clone(), p);
                    }
                }
                Err(mut e) => issues.append(&mut e),
            }
        }
        (profiles, issues)
    }

    pub fn field(&self, q: Quantity) -> Option<&Field> {
        self.fields.iter().find(|f| f.quantity == q)
    }

    /// Absolute address of a field for the device at `index` in a block layout
    /// (index is ignored for unit layout).
    pub fn absolute_address(&self, field: &Field, index: u16) -> u32 {
        match self.layout {
            Layout::Unit => u32::from(field.address),
            Layout::Block { base, stride } => {
                u32::from(base) + u32::from(index) * u32::from(stride) + u32::from(field.address)
            }
        }
    }

    /// Highest device index a block layout can address within 65,536 registers.
    pub fn max_block_index(&self) -> Option<u16> {
        match self.layout {
            Layout::Unit => None,
            Layout::Block { base, stride } => {
                let room = 0x1_0000u32 - u32::from(base);
                Some(((room / u32::from(stride)).saturating_sub(1)).min(u32::from(u16::MAX)) as u16)
            }
        }
    }
}

#[cfg(test)]
mod tests;
