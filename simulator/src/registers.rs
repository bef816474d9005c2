//! Modbus tables of one endpoint, rendered from the device model through the
//! profiles' codec (never hand-encoded, so the gateway decodes exactly what
//! the simulator meant).

use crate::device::Cabinet;
use crate::frame::{exception::*, Request};
use lamp_profile::{decode, encode, Access, Field, Layout, Profile, Quantity, Table};

/// The profiles every endpoint of a farm speaks.
pub(crate) struct Profiles {
    pub rtu: Profile,
    pub slc: Profile,
}

/// A device behind a unit id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Device {
    Rtu,
    Slc(usize),
}

/// Where one field of one device sits in a unit's address space.
struct Placed<'a> {
    device: Device,
    field: &'a Field,
    start: u32,
}

impl Profiles {
    /// Whether unit `unit` is a dead node that sends nothing at all.
    pub fn no_answer(&self, cab: &Cabinet, unit: u8) -> bool {
        match (unit, self.slc.layout) {
            (1, _) => cab.rtu_fault.no_answer,
            (u, Layout::Unit) if u >= 2 => cab
                .faults
                .get(&u32::from(u - 2))
                .is_some_and(|f| f.no_answer),
            _ => false,
        }
    }

    /// Fields of unit `unit` in `table` overlapping `[lo, hi]`, or the
    /// exception the unit answers with before looking at addresses.
    fn placed(
        &self,
        cab: &Cabinet,
        unit: u8,
        table: Table,
        lo: u32,
        hi: u32,
    ) -> Result<Vec<Placed<'_>>, u8> {
        let overlaps = |start: u32, f: &Field| start <= hi && start + u32::from(f.width()) > lo;
        let mut out = Vec::new();
        let m = cab.slcs.len();
        match (unit, self.slc.layout) {
            (1, layout) => {
                for f in self.rtu.fields.iter().filter(|f| f.table == table) {
                    let start = u32::from(f.address);
                    if overlaps(start, f) {
                        out.push(Placed {
                            device: Device::Rtu,
                            field: f,
                            start,
                        });
                    }
                }
                if let Layout::Block { base, stride } = layout {
                    let (base, stride) = (u32::from(base), u32::from(stride));
                    if hi >= base && m > 0 {
                        let first = (lo.max(base) - base) / stride;
                        let last = ((hi - base) / stride).min(m as u32 - 1);
                        for j in first..=last {
                            let block = base + j * stride;
                            for f in self.slc.fields.iter().filter(|f| f.table == table) {
                                let start = block + u32::from(f.address);
                                if overlaps(start, f) {
                                    out.push(Placed {
                                        device: Device::Slc(j as usize),
                                        field: f,
                                        start,
                                    });
                                }
                            }
                        }
                    }
                }
            }
            (u, Layout::Unit) if u >= 2 && usize::from(u - 2) < m => {
                let j = usize::from(u - 2);
                // Silent by its own fault or with its circuit's supply.
                if cab.is_silent(j) {
                    return Err(TARGET_FAILED);
                }
                if let Some(code) = cab.faults.get(&(j as u32)).and_then(|f| f.exception) {
                    return Err(code);
                }
                for f in self.slc.fields.iter().filter(|f| f.table == table) {
                    let start = u32::from(f.address);
                    if overlaps(start, f) {
                        out.push(Placed {
                            device: Device::Slc(j),
                            field: f,
                            start,
                        });
                    }
                }
            }
            // Nothing on the bus at that address: an RS-485 gateway times out.
            _ => return Err(TARGET_FAILED),
        }
        Ok(out)
    }

    /// Serves one request; returns the words read (empty for a write) or an
    /// exception code. The caller has advanced the cabinet's clock.
    pub fn serve(
        &self,
        cab: &mut Cabinet,
        unit: u8,
        req: &Request,
        now: f64,
    ) -> Result<Vec<u16>, u8> {
        match req {
            Request::Read { table, addr, qty } => self.read(cab, unit, *table, *addr, *qty, now),
            Request::WriteBits { addr, values } => {
                let words: Vec<u16> = values.iter().map(|b| u16::from(*b)).collect();
                self.write(cab, unit, Table::Coil, *addr, &words)
            }
            Request::WriteRegisters { addr, values } => {
                self.write(cab, unit, Table::Holding, *addr, values)
            }
        }
    }

    fn read(
        &self,
        cab: &Cabinet,
        unit: u8,
        table: Table,
        addr: u16,
        qty: u16,
        now: f64,
    ) -> Result<Vec<u16>, u8> {
        let lo = u32::from(addr);
        let hi = lo + u32::from(qty) - 1;
        let placed = self.placed(cab, unit, table, lo, hi)?;
        if placed.is_empty() {
            return Err(ILLEGAL_ADDRESS);
        }
        let mut out = vec![0u16; usize::from(qty)];
        let mut rtu = None;
        let mut slc = None;
        for p in &placed {
            let value = match p.device {
                Device::Rtu => rtu
                    .get_or_insert_with(|| cab.rtu(now))
                    .get(p.field.quantity),
                Device::Slc(j) => {
                    if slc.as_ref().is_none_or(|(k, _)| *k != j) {
                        slc = Some((j, cab.observed_slc(j, now)));
                    }
                    slc.as_ref().and_then(|(_, v)| v.get(p.field.quantity))
                }
            };
            let words = encode(p.field, value.unwrap_or(0.0));
            for (i, w) in words.iter().enumerate() {
                let a = p.start + i as u32;
                if (lo..=hi).contains(&a) {
                    out[(a - lo) as usize] = *w;
                }
            }
        }
        Ok(out)
    }

    fn write(
        &self,
        cab: &mut Cabinet,
        unit: u8,
        table: Table,
        addr: u16,
        words: &[u16],
    ) -> Result<Vec<u16>, u8> {
        let lo = u32::from(addr);
        let hi = lo + words.len() as u32 - 1;
        let placed = self.placed(cab, unit, table, lo, hi)?;
        // Every written address must land in a field, or the device rejects the lot.
        let covered = |a: u32| {
            placed
                .iter()
                .any(|p| (p.start..p.start + u32::from(p.field.width())).contains(&a))
        };
        if !(lo..=hi).all(covered) {
            return Err(ILLEGAL_ADDRESS);
        }
        let mut plan = Vec::with_capacity(placed.len());
        for p in &placed {
            if p.field.access != Access::ReadWrite {
                return Err(ILLEGAL_ADDRESS);
            }
            let end = p.start + u32::from(p.field.width()) - 1;
            if p.start < lo || end > hi {
                return Err(ILLEGAL_VALUE);
            }
            if let Device::Slc(j) = p.device {
                if cab.is_silent(j) {
                    return Err(TARGET_FAILED);
                }
            }
            let at = (p.start - lo) as usize;
            let value = decode(p.field, &words[at..at + usize::from(p.field.width())]);
            let ok = match p.field.quantity {
                Quantity::Switch => value == 0.0 || value == 1.0,
                // Tolerate the last bit of a scaled decode (1000 × 0.1).
                Quantity::DimLevel => (-1e-9..=100.0 + 1e-9).contains(&value),
                Quantity::Contactor(n) => usize::from(n) <= cab.contactors.len(),
                _ => false,
            };
            if !ok {
                return Err(ILLEGAL_VALUE);
            }
            plan.push((p.device, p.field.quantity, value));
        }
        for (device, q, value) in plan {
            match (device, q) {
                (Device::Rtu, Quantity::Contactor(n)) => {
                    cab.contactors[usize::from(n) - 1] = value != 0.0
                }
                (Device::Slc(j), Quantity::Switch) => cab.slcs[j].on = value != 0.0,
                (Device::Slc(j), Quantity::DimLevel) => {
                    cab.slcs[j].dim_tenths = (value * 10.0).round().clamp(0.0, 1000.0) as u16
                }
                _ => {}
            }
        }
        Ok(Vec::new())
    }
}
