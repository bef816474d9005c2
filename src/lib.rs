//! lamp-gateway: polls a city's cabinet RTUs and single-lamp controllers over
//! Modbus, keeps the live state of every lamp and serves it over HTTP.

#![warn(
    unreachable_pub,
    missing_debug_implementations,
    unused_qualifications,
    rust_2018_idioms
)]

pub mod alarm;
pub mod api;
pub mod auth;
pub mod calendar;
pub mod cluster;
pub mod console;
pub mod control;
pub mod dialin;
pub mod exposition;
pub mod figures;
pub mod files;
/// Entry points of the fuzz targets (`fuzz/`), built only by the fuzz build.
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod inventory;
pub mod lighting;
pub mod mqtt;
pub mod poll;
pub mod queue;
pub mod schedule;
pub mod settings;
pub mod startup;
pub mod state;
pub mod store;
pub mod talq;
pub mod telemetry;
pub mod topology;
pub mod validate;
