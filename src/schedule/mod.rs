//! Schedules: the city's night plan (issue 13). The objects (model.rs), sun
//! times (sun.rs), what every lamp and circuit should be at any moment
//! (plan.rs, whose module doc holds the rules), and the engine that
//! enforces it through the control path (engine.rs) on a clock of its own
//! (clock.rs), and its history: a version each time the plan changes, by
//! which past windows' energy baselines are judged (history.rs). The gateway drives the switching: schedules stored in the
//! devices themselves are not used.

pub mod clock;
mod config;
pub mod engine;
pub mod history;
pub mod model;
pub mod plan;
pub mod summary;
pub mod sun;
pub mod upcoming;

pub use config::ScheduleSettings;
pub use engine::{Schedule, ScheduleError};
