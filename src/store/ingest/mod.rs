//! The way in: applied poll outcomes and completed commands become rows
//! (`rows`), wait in the backlog (memory, then the spool) and are written in
//! batches by the writer. The sink is the state's and control's handle on it.

pub mod backlog;
pub mod rows;
pub mod sink;
pub(super) mod writer;
