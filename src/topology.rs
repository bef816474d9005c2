//! Endpoints, the devices behind them, and the poll plan: the fewest Modbus
//! reads (≤125 registers each) that cover every field of every device.
//! [`Topology::build`] assembles them from the inventory and the profiles.

use crate::inventory::{ConfigIssue, EndpointAddr, Framing, Inventory, Link};
use lamp_profile::{DeviceKind, Layout, Profile, Table};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A device in the live state: an RTU by its cabinet's index, an SLC by its
/// lamp's index in the inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKey {
    Rtu(u32),
    Lamp(u32),
}

impl DeviceKey {
    /// The device's id in `inv`: the lamp's, or its cabinet's RTU's.
    pub fn id(self, inv: &Inventory) -> Option<&str> {
        match self {
            DeviceKey::Lamp(i) => inv.lamps.get(i as usize).map(|l| l.id.as_str()),
            DeviceKey::Rtu(i) => inv
                .cabinets
                .get(i as usize)
                .and_then(|c| c.rtu.as_ref())
                .map(|r| r.id.as_str()),
        }
    }

    /// The same device, by its id, in another inventory (a reload's).
    pub fn moved(self, from: &Inventory, to: &Inventory) -> Option<DeviceKey> {
        let id = self.id(from)?;
        match self {
            DeviceKey::Lamp(_) => to.lamp_position(id).map(|i| DeviceKey::Lamp(i as u32)),
            DeviceKey::Rtu(_) => to.rtu_position(id).map(|i| DeviceKey::Rtu(i as u32)),
        }
    }
}

/// Devices of one class share a poll interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PollClass {
    Rtu,
    Slc,
}

impl PollClass {
    pub fn name(self) -> &'static str {
        match self {
            PollClass::Rtu => "rtu",
            PollClass::Slc => "slc",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeviceSlot {
    pub key: DeviceKey,
    pub unit: u8,
    /// Block index behind a concentrator; 0 for unit layout.
    pub block_index: u16,
    pub profile: Arc<Profile>,
}

impl DeviceSlot {
    pub fn class(&self) -> PollClass {
        match self.profile.kind {
            DeviceKind::Rtu => PollClass::Rtu,
            DeviceKind::Slc => PollClass::Slc,
        }
    }
}

/// One field's place in a read's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Index into the endpoint's `devices`.
    pub device: u32,
    /// Index into the device profile's `fields`.
    pub field: u16,
    /// Offset of the field's first register (or bit) in the answer.
    pub offset: u16,
}

/// One Modbus read request of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub class: PollClass,
    pub unit: u8,
    pub table: Table,
    pub start: u16,
    pub count: u16,
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// The endpoint's name in logs and pages: `host:port`, `serial:PATH` or `dtu:ID`.
    pub address: String,
    pub link: Link,
    pub framing: Framing,
    /// Pause before each request after the last byte on the link.
    pub request_gap: std::time::Duration,
    pub devices: Vec<DeviceSlot>,
    /// The poll plan, built by [`Topology::plan`].
    pub reads: Vec<Read>,
}

impl EndpointSpec {
    /// Builds the poll plan: fields of one class, unit and table sorted by
    /// address and joined into one read while the read stays within the table's
    /// limit and the gap between fields is at most `max_gap`. A field is never
    /// split across reads, and one device's fields are kept together where they
    /// fit, so one failed read costs as few devices as possible.
    pub fn plan(&mut self, max_gap: u16) {
        let mut spans: Vec<Span> = Vec::new();
        for (d, dev) in self.devices.iter().enumerate() {
            for (f, field) in dev.profile.fields.iter().enumerate() {
                spans.push(Span {
                    class: dev.class(),
                    unit: dev.unit,
                    table: field.table,
                    start: dev.profile.absolute_address(field, dev.block_index),
                    end: dev.profile.absolute_address(field, dev.block_index)
                        + u32::from(field.width()),
                    parts: vec![(d as u32, f as u16, 0)],
                    // A concentrator block is read whole, reserved registers
                    // and all: the vendor defines it as one unit.
                    slack: match dev.profile.layout {
                        Layout::Block { stride, .. } => stride,
                        Layout::Unit => max_gap,
                    },
                });
            }
        }
        spans.sort_unstable_by_key(|s| (s.class, s.unit, s.table, s.start));
        // First join each device's own fields, then join devices.
        let chunks = join(spans, max_gap, true);
        let reads = join(chunks, max_gap, false);
        self.reads = reads
            .into_iter()
            .map(|s| Read {
                class: s.class,
                unit: s.unit,
                table: s.table,
                start: s.start as u16,
                count: (s.end - s.start) as u16,
                parts: s
                    .parts
                    .into_iter()
                    .map(|(device, field, offset)| Part {
                        device,
                        field,
                        offset,
                    })
                    .collect(),
            })
            .collect();
    }
}

/// A run of registers (or bits) being planned; `end` is exclusive and parts
/// are (device, field, offset from `start`).
struct Span {
    class: PollClass,
    unit: u8,
    table: Table,
    start: u32,
    end: u32,
    parts: Vec<(u32, u16, u16)>,
    /// Gap allowed when joining fields of the same device.
    slack: u16,
}

fn join(spans: Vec<Span>, max_gap: u16, same_device: bool) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        if let Some(r) = out.last_mut() {
            let joinable = r.class == s.class
                && r.unit == s.unit
                && r.table == s.table
                && (!same_device || r.parts[0].0 == s.parts[0].0)
                && s.start <= r.end + u32::from(if same_device { s.slack } else { max_gap })
                && s.end.max(r.end) - r.start <= u32::from(s.table.max_read());
            if joinable {
                let shift = (s.start - r.start) as u16;
                r.parts
                    .extend(s.parts.into_iter().map(|(d, f, o)| (d, f, o + shift)));
                r.end = r.end.max(s.end);
                continue;
            }
        }
        out.push(s);
    }
    out
}

#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub endpoints: Vec<EndpointSpec>,
}

impl Topology {
    /// Puts every RTU and SLC of the inventory behind its cabinet's endpoint
    /// (endpoints in order of first mention) and plans the reads. A device
    /// that cannot be polled — unknown profile, no endpoint, a block index
    /// that does not fit its profile — is left out with an issue saying why.
    /// Checks that do not decide what is polled (ids, units, circuits) are
    /// the validator's.
    pub fn build(
        inv: &Inventory,
        profiles: &BTreeMap<String, Arc<Profile>>,
        max_gap: u16,
        issues: &mut Vec<ConfigIssue>,
    ) -> Topology {
        let mut endpoints = Endpoints::default();
        for (ci, c) in inv.cabinets.iter().enumerate() {
            let Some(rtu) = &c.rtu else { continue };
            let profile = profile_of(profiles, &rtu.profile, DeviceKind::Rtu, &c.at, issues);
            let Some(ep) = &c.link else {
                if c.endpoint.is_none() {
                    issues.push(ConfigIssue::new(
                        &c.at,
                        format!("RTU `{}` has no endpoint to poll", rtu.id),
                    ));
                }
                continue;
            };
            if let Some(profile) = profile {
                let e = endpoints.index(ep, c.framing, &c.at, issues);
                endpoints.list[e].devices.push(DeviceSlot {
                    key: DeviceKey::Rtu(ci as u32),
                    unit: rtu.unit,
                    block_index: 0,
                    profile,
                });
            }
        }
        for (li, l) in inv.lamps.iter().enumerate() {
            let (Some(c), Some(slc)) = (inv.cabinet(&l.cabinet), &l.slc) else {
                continue;
            };
            let Some(profile) = profile_of(profiles, &slc.profile, DeviceKind::Slc, &l.at, issues)
            else {
                continue;
            };
            let block_index = match (profile.layout, slc.index) {
                (Layout::Unit, None) => 0,
                (Layout::Unit, Some(_)) => {
                    issues.push(ConfigIssue::new(
                        &l.at,
                        format!(
                            "SLC `{}`: slc_index is for block-layout profiles only",
                            slc.id
                        ),
                    ));
                    0
                }
                (Layout::Block { .. }, None) => {
                    issues.push(ConfigIssue::new(
                        &l.at,
                        format!(
                            "SLC `{}`: profile `{}` needs slc_index",
                            slc.id, profile.name
                        ),
                    ));
                    continue;
                }
                (Layout::Block { .. }, Some(i)) => {
                    let max = profile.max_block_index().unwrap_or(0);
                    if i > max {
                        issues.push(ConfigIssue::new(
                            &l.at,
                            format!(
                                "SLC `{}`: slc_index {i} is beyond the last block {max}",
                                slc.id
                            ),
                        ));
                        continue;
                    }
                    i
                }
            };
            let Some(ep) = &c.link else {
                if c.endpoint.is_none() {
                    issues.push(ConfigIssue::new(
                        &l.at,
                        format!("SLC `{}`: cabinet `{}` has no endpoint", slc.id, c.id),
                    ));
                }
                continue;
            };
            let e = endpoints.index(ep, c.framing, &l.at, issues);
            endpoints.list[e].devices.push(DeviceSlot {
                key: DeviceKey::Lamp(li as u32),
                unit: slc.unit,
                block_index,
                profile,
            });
        }
        let mut topology = Topology {
            endpoints: endpoints.list,
        };
        topology.plan(max_gap);
        topology
    }

    pub fn plan(&mut self, max_gap: u16) {
        for ep in &mut self.endpoints {
            ep.plan(max_gap);
        }
    }

    pub fn device_count(&self) -> usize {
        self.endpoints.iter().map(|e| e.devices.len()).sum()
    }

    pub fn read_count(&self) -> usize {
        self.endpoints.iter().map(|e| e.reads.len()).sum()
    }
}

/// The profile a device names, if it exists and is of the device's kind.
fn profile_of(
    profiles: &BTreeMap<String, Arc<Profile>>,
    name: &str,
    kind: DeviceKind,
    at: &str,
    issues: &mut Vec<ConfigIssue>,
) -> Option<Arc<Profile>> {
    match profiles.get(name) {
        Some(p) if p.kind == kind => Some(p.clone()),
        Some(_) => {
            issues.push(ConfigIssue::new(
                at,
                format!("profile `{name}` is not a {kind:?} profile"),
            ));
            None
        }
        None => {
            issues.push(ConfigIssue::new(at, format!("unknown profile `{name}`")));
            None
        }
    }
}

/// Endpoints in order of first mention, found by address.
#[derive(Default)]
struct Endpoints {
    list: Vec<EndpointSpec>,
    by_address: HashMap<String, usize>,
}

impl Endpoints {
    fn index(
        &mut self,
        addr: &EndpointAddr,
        framing: Framing,
        at: &str,
        issues: &mut Vec<ConfigIssue>,
    ) -> usize {
        let list = &mut self.list;
        let key = addr.key();
        let i = *self.by_address.entry(key.clone()).or_insert_with(|| {
            list.push(EndpointSpec {
                address: key.clone(),
                link: addr.link.clone(),
                framing,
                request_gap: addr.request_gap,
                devices: Vec::new(),
                reads: Vec::new(),
            });
            list.len() - 1
        });
        let ep = &list[i];
        if ep.framing != framing {
            issues.push(ConfigIssue::new(
                at,
                format!("endpoint {key} is used with two framings (tcp and rtu)"),
            ));
        }
        if ep.link != addr.link || ep.request_gap != addr.request_gap {
            issues.push(ConfigIssue::new(
                at,
                format!("endpoint {key} is written with other options in another row"),
            ));
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn profiles() -> BTreeMap<String, Profile> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
        Profile::load_dir(&dir).unwrap()
    }

    fn endpoint(devices: Vec<DeviceSlot>) -> EndpointSpec {
        let mut ep = EndpointSpec {
            address: "127.0.0.1:502".into(),
            link: Link::Tcp {
                address: "127.0.0.1:502".into(),
            },
            framing: Framing::Tcp,
            request_gap: std::time::Duration::ZERO,
            devices,
            reads: vec![],
        };
        ep.plan(0);
        ep
    }

    #[test]
    fn block_layout_coalesces_seven_slcs_per_read() {
        let p = Arc::new(profiles()["slc-b-block"].clone());
        let devices = (0..100)
            .map(|i| DeviceSlot {
                key: DeviceKey::Lamp(i),
                unit: 1,
                block_index: i as u16,
                profile: p.clone(),
            })
            .collect();
        let ep = endpoint(devices);
        // 100 blocks × 16 registers = 1,600 registers; 7 whole blocks fit in 125.
        assert_eq!(ep.reads.len(), 15);
        assert!(ep.reads.iter().all(|r| r.count <= 125));
        assert_eq!(ep.reads[0].start, 1000);
        assert_eq!(ep.reads[0].count, 112);
        let parts: usize = ep.reads.iter().map(|r| r.parts.len()).sum();
        assert_eq!(parts, 100 * p.fields.len());
    }

    #[test]
    fn unit_layout_is_one_read_per_slc_and_three_for_the_rtu() {
        let all = profiles();
        let slc = Arc::new(all["slc-a-unit"].clone());
        let rtu = Arc::new(all["rtu-cabinet"].clone());
        let mut devices = vec![DeviceSlot {
            key: DeviceKey::Rtu(0),
            unit: 1,
            block_index: 0,
            profile: rtu,
        }];
        devices.extend((0..3).map(|i| DeviceSlot {
            key: DeviceKey::Lamp(i),
            unit: i as u8 + 2,
            block_index: 0,
            profile: slc.clone(),
        }));
        let ep = endpoint(devices);
        let shape: Vec<_> = ep
            .reads
            .iter()
            .map(|r| (r.class, r.unit, r.table, r.start, r.count))
            .collect();
        assert_eq!(
            shape,
            vec![
                (PollClass::Rtu, 1, Table::Coil, 0, 4),
                (PollClass::Rtu, 1, Table::DiscreteInput, 0, 2),
                (PollClass::Rtu, 1, Table::Input, 0, 10),
                (PollClass::Slc, 2, Table::Holding, 0, 11),
                (PollClass::Slc, 3, Table::Holding, 0, 11),
                (PollClass::Slc, 4, Table::Holding, 0, 11),
            ]
        );
    }

    #[test]
    fn gaps_split_reads_unless_allowed() {
        let text = r#"
name = "gappy"
kind = "slc"
[[field]]
name = "switch"
table = "holding"
address = 0
access = "read_write"
[[field]]
name = "dim_level"
table = "holding"
address = 1
access = "read_write"
[[field]]
name = "power"
table = "holding"
address = 5
"#;
        let p = Arc::new(Profile::from_toml(text, "gappy.toml").unwrap());
        let dev = DeviceSlot {
            key: DeviceKey::Lamp(0),
            unit: 1,
            block_index: 0,
            profile: p,
        };
        let mut ep = endpoint(vec![dev]);
        assert_eq!(ep.reads.len(), 2);
        ep.plan(3);
        assert_eq!(ep.reads.len(), 1);
        assert_eq!((ep.reads[0].start, ep.reads[0].count), (0, 6));
        assert_eq!(ep.reads[0].parts[2].offset, 5);
    }
}
