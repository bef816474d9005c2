//! The gateway's integration tests, one binary: a simulator and a gateway on
//! free local ports, talking over real sockets, with PostgreSQL at
//! 127.0.0.1:5432 and Mosquitto at 127.0.0.1:1883. One module per subject;
//! `cargo test --test it store::` runs one of them.
//!
//! Nothing here may depend on having the process to itself: tests run in
//! parallel threads of this one process, each with its own ports, folders,
//! database and topic root, and a test that needs a process of its own (a
//! kill, an environment variable) spawns the `lamp-gateway` binary.

mod alarm_faults;
mod alarm_store;
mod alarms;
mod audit;
mod auth;
mod check_config;
mod cluster;
mod cluster_mqtt;
mod common;
mod console;
mod console_detail;
mod console_pages;
mod control;
mod dialin;
mod energy;
mod evaluation;
mod evaluation_window;
mod faults;
mod field;
mod figures;
mod figures_window;
mod full_disk;
mod groups;
mod http;
mod lighting;
mod load;
mod mqtt;
mod openapi;
mod overrides;
mod reload;
mod report;
mod saving_history;
mod schedule;
mod scope;
mod store;
mod store_kill;
mod store_kill_random;
mod store_tls;
mod talq;
mod values;
mod webhook;
