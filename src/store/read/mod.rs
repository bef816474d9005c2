//! The way out: what the API and the windowed figures read from the store.
//! Each file holds its point types with the queries that return them, written
//! once for both backends on top of `db`.

pub mod alarms;
pub mod audit;
pub mod energy;
pub mod evaluation;
pub mod figures;
pub mod history;
pub mod schedule;
