//! The commissioning probe: one connection to one device, every field of its
//! profile read and decoded with the raw registers, the round-trip time and
//! any exception by name — what a field engineer checks on a cabinet before
//! adding it to the inventory. Also the reachability check behind
//! `check-config --probe`. Both use the pollers' own link and read code, so
//! what the probe sees is what polling will see.

use super::config::PollerConfig;
use super::worker::Endpoint;
use crate::control::FailCause;
use crate::state::FailReason;
use crate::topology::{DeviceKey, DeviceSlot, EndpointSpec, PollClass};
use lamp_profile::{decode, Profile, Quantity};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the probe found, in the order it asked.
#[derive(Debug)]
pub struct ProbeReport {
    /// Time to open the link (or to take the DTU's connection).
    pub connect: Result<Duration, String>,
    pub reads: Vec<ProbeRead>,
    pub fields: Vec<ProbeField>,
    pub writes: Vec<ProbeWrite>,
}

/// One Modbus read request and its answer.
#[derive(Debug)]
pub struct ProbeRead {
    pub table: lamp_profile::Table,
    pub start: u16,
    pub count: u16,
    pub round_trip: Duration,
    pub result: Result<Vec<u16>, String>,
}

/// One field of the profile, decoded.
#[derive(Debug)]
pub struct ProbeField {
    pub quantity: Quantity,
    pub table: lamp_profile::Table,
    pub address: u32,
    pub raw: Vec<u16>,
    pub value: Option<f64>,
    pub unit: Option<String>,
}

/// A `--write` and what was read back.
#[derive(Debug)]
pub struct ProbeWrite {
    pub quantity: Quantity,
    pub wrote: f64,
    pub result: Result<f64, String>,
}

/// The name of a Modbus exception code, as the standard has it.
pub fn exception_name(code: u8) -> &'static str {
    match code {
        0x01 => "illegal function",
        0x02 => "illegal data address",
        0x03 => "illegal data value",
        0x04 => "server device failure",
        0x05 => "acknowledge",
        0x06 => "server device busy",
        0x08 => "memory parity error",
        0x0A => "gateway path unavailable",
        0x0B => "gateway target device failed to respond",
        _ => "unknown exception",
    }
}

/// A poll failure in words, exceptions by name.
pub fn describe(reason: &FailReason) -> String {
    match reason {
        FailReason::Exception { code } => {
            format!("exception {code:#04x} ({})", exception_name(*code))
        }
        FailReason::Timeout => "no answer within the request timeout".into(),
        FailReason::Connect { detail } => format!("cannot connect: {detail}"),
        FailReason::Transport { detail } => format!("link broke: {detail}"),
        FailReason::Protocol { detail } => format!("bad answer: {detail}"),
        FailReason::NodeSilent => "the concentrator reports the SLC silent".into(),
        FailReason::Backoff => "not sent: reconnect backoff".into(),
        FailReason::Deferred => "not sent: unit probed at a slower cadence".into(),
        FailReason::DtuAbsent => "the DTU has not dialled in".into(),
    }
}

fn describe_cause(c: &FailCause) -> String {
    match c {
        FailCause::Exception { code } => {
            format!("exception {code:#04x} ({})", exception_name(*code))
        }
        FailCause::Mismatch { field, wrote, read } => {
            format!("wrote {wrote} to {field}, read back {read}")
        }
        FailCause::Transport { detail } => detail.clone(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A poller for one endpoint with nothing behind it: no command queue, no
/// live state (its reports go nowhere).
fn lone_endpoint(spec: Arc<EndpointSpec>, cfg: PollerConfig) -> Endpoint {
    let (_tx, writes) = mpsc::channel(1);
    let (reports, _rx) = mpsc::channel(1);
    Endpoint::new(0, spec, cfg, writes, reports)
}

/// Reads every field of `profile` at `unit` (and `block_index` behind a
/// concentrator) over `spec`'s link, then carries out `writes` with read-back.
/// A dial-in endpoint waits up to `dtu_wait` for its DTU.
pub async fn probe_device(
    spec: EndpointSpec,
    cfg: PollerConfig,
    unit: u8,
    block_index: u16,
    profile: Arc<Profile>,
    writes: &[(Quantity, f64)],
    dtu_wait: Duration,
) -> ProbeReport {
    let mut spec = spec;
    let class = match profile.kind {
        lamp_profile::DeviceKind::Rtu => PollClass::Rtu,
        lamp_profile::DeviceKind::Slc => PollClass::Slc,
    };
    spec.devices = vec![DeviceSlot {
        key: match class {
            PollClass::Rtu => DeviceKey::Rtu(0),
            PollClass::Slc => DeviceKey::Lamp(0),
        },
        unit,
        block_index,
        profile: profile.clone(),
    }];
    // The reads polling would send, so the probe sees what polling will.
    spec.plan(0);
    let spec = Arc::new(spec);
    let mut ep = lone_endpoint(spec.clone(), cfg);
    let mut report = ProbeReport {
        connect: Ok(Duration::ZERO),
        reads: Vec::new(),
        fields: Vec::new(),
        writes: Vec::new(),
    };
    let started = Instant::now();
    if let Some(slot) = ep.dtu.clone() {
        match tokio::time::timeout(dtu_wait, slot.next()).await {
            Ok(conn) => ep.adopt_dtu(conn),
            Err(_) => {
                report.connect = Err(format!("no DTU registered within {dtu_wait:?}"));
                return report;
            }
        }
    } else if let Err(e) = ep.ensure_connected().await {
        report.connect = Err(describe(&e));
        return report;
    }
    report.connect = Ok(started.elapsed());

    let mut words_of: HashMap<(lamp_profile::Table, u32), u16> = HashMap::new();
    for read in spec.reads.iter() {
        let t = Instant::now();
        let result = ep.read(read).await;
        let round_trip = t.elapsed();
        if let Ok(words) = &result {
            for (k, w) in words.iter().enumerate() {
                words_of.insert((read.table, u32::from(read.start) + k as u32), *w);
            }
        }
        report.reads.push(ProbeRead {
            table: read.table,
            start: read.start,
            count: read.count,
            round_trip,
            result: result.map_err(|e| describe(&e)),
        });
    }
    for f in &profile.fields {
        let address = profile.absolute_address(f, block_index);
        let raw: Option<Vec<u16>> = (0..u32::from(f.width()))
            .map(|k| words_of.get(&(f.table, address + k)).copied())
            .collect();
        report.fields.push(ProbeField {
            quantity: f.quantity,
            table: f.table,
            address,
            value: raw.as_ref().map(|w| decode(f, w)),
            raw: raw.unwrap_or_default(),
            unit: f.unit.clone(),
        });
    }
    let dev = spec.devices[0].clone();
    for &(q, value) in writes {
        let result = match ep.write_all(&dev, &[(q, value)]).await {
            Ok(()) => ep
                .read_back(&dev, &[(q, value)])
                .await
                .map(|got| got.first().map_or(value, |g| g.1)),
            Err(e) => Err(e),
        };
        report.writes.push(ProbeWrite {
            quantity: q,
            wrote: value,
            result: result.map_err(|f| describe_cause(&f.cause())),
        });
    }
    report
}

/// Opens the endpoint's link and sends the first read of its plan: `Ok` with
/// the round trip when anything answered (an exception is an answer).
pub async fn reachable(spec: &EndpointSpec, cfg: &PollerConfig) -> Result<Duration, String> {
    let Some(first) = spec.reads.first().cloned() else {
        return Err("nothing to read".into());
    };
    let mut ep = lone_endpoint(Arc::new(spec.clone()), cfg.clone());
    ep.ensure_connected().await.map_err(|e| describe(&e))?;
    let t = Instant::now();
    match ep.read(&first).await {
        Ok(_) | Err(FailReason::Exception { .. }) => Ok(t.elapsed()),
        Err(e) => Err(describe(&e)),
    }
}
