//! Polling: one task per endpoint, owning its Modbus connection and running
//! the endpoint's poll plan at the configured per-class intervals.

mod cadence;
mod config;
mod connection;
mod cycle;
mod link;
mod pollers;
mod probe;
#[cfg(test)]
mod spec;
mod worker;
mod write;

pub use config::{PollSettings, PollerConfig};
/// The Modbus link for the fuzz targets (`crate::fuzzing`).
#[cfg(fuzzing)]
pub(crate) use link::{attach, LinkFraming, LinkOptions};
pub use pollers::{Gate, Permit, PollerChanges, Pollers};
pub use probe::{
    describe, exception_name, probe_device, reachable, ProbeField, ProbeRead, ProbeReport,
    ProbeWrite,
};
