//! Commands and their per-target lifecycle: queued → written → confirmed |
//! failed (TALQ-style overrides with an optional expiry; last command wins).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What to do to a lamp or a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    On,
    Off,
    /// Dim to a level in percent; 0 switches the lamp off.
    Dim {
        level: f64,
    },
}

/// Who or what issued a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Api,
    /// A person, through the operator console.
    Console,
    Mqtt,
    Schedule,
    /// An override's expiry restoring what the lamp did before.
    Expiry,
    /// A central management system, through the TALQ API.
    Talq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Queued,
    Written,
    Confirmed,
    Failed,
}

impl TargetState {
    pub fn is_final(self) -> bool {
        matches!(self, TargetState::Confirmed | TargetState::Failed)
    }
}

/// Why a target failed.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailCause {
    /// The device was offline when the command was given.
    Offline,
    /// No answer within the request timeout, after every attempt.
    Timeout,
    /// The device answered with a Modbus exception.
    Exception { code: u8 },
    /// The connection could not be opened or broke, after every attempt.
    Transport { detail: String },
    /// The write went through but the value read back differs.
    Mismatch {
        field: String,
        wrote: f64,
        read: f64,
    },
    /// The gateway was stopping.
    ShuttingDown,
    /// Cluster mode: another gateway instance holds the lease on the
    /// device's endpoint and polls it; this one may not write to it.
    NotHeld,
}

/// One lamp or circuit of a command.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Target {
    /// Lamp id, or `CABINET#n` for circuit n of a cabinet.
    pub id: String,
    pub district: String,
    pub state: TargetState,
    pub attempts: u32,
    pub reason: Option<FailCause>,
    /// The values read back after the write, by quantity name.
    pub readback: Option<serde_json::Map<String, serde_json::Value>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Command {
    pub id: String,
    pub actor: String,
    pub source: Source,
    #[serde(flatten)]
    pub action: Action,
    /// `lamp` or `circuit`.
    pub kind: &'static str,
    /// The selector as given, for the audit trail.
    pub selector: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq, utoipa::ToSchema)]
pub struct Tally {
    pub queued: usize,
    pub written: usize,
    pub confirmed: usize,
    pub failed: usize,
}

impl Command {
    pub fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for x in &self.targets {
            match x.state {
                TargetState::Queued => t.queued += 1,
                TargetState::Written => t.written += 1,
                TargetState::Confirmed => t.confirmed += 1,
                TargetState::Failed => t.failed += 1,
            }
        }
        t
    }

    pub fn is_complete(&self) -> bool {
        self.targets.iter().all(|t| t.state.is_final())
    }

    /// `done` when every target is final, else `in_progress`.
    pub fn status(&self) -> &'static str {
        if self.is_complete() {
            "done"
        } else {
            "in_progress"
        }
    }
}
