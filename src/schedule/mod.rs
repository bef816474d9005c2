//! Schedules: the city's night plan (issue 13). The objects (model.rs), sun
//! times (sun.rs), and what every lamp and circuit should be at any moment
//! (plan.rs), which the engine enforces through the control path
//! (engine.rs).

pub mod model;
pub mod sun;
