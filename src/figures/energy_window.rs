//! What the energy figures of a window read from the store, read once, for
//! the saving rate (`/metrics/saving`) and the report's energy columns and
//! cabinets alike: the same rows give the same figures wherever they are
//! shown. The rules are `energy.rs`'s.

use super::config::EnergySettings;
use super::energy::{CabinetHours, EnergySums, SavingFigures, SavingInputs};
use crate::calendar::Spans;
use crate::inventory::Inventory;
use crate::store::read::energy::{CircuitHour, LampTotals, MeterHour};
use crate::store::Db;
use chrono::{DateTime, Utc};
use std::sync::OnceLock;

/// The cabinet meters' and circuits' hours of a window, and the measured
/// totals of the lamps whose baseline is their measured on-time.
#[derive(Debug)]
pub struct EnergyWindow {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub meters: Vec<MeterHour>,
    pub circuits: Vec<CircuitHour>,
    pub measured: Vec<LampTotals>,
    /// The cabinet-hours folded from `meters` and `circuits`, once: the
    /// saving and the cabinets read the same hours. Built on first use, so
    /// the fold runs where the caller runs it (off the async workers).
    hours: OnceLock<CabinetHours>,
}

impl EnergyWindow {
    /// Reads the window of one district (or all); `scope` is the district
    /// positions the figures will cover, `spans` each lamp's scheduled
    /// burning time by the schedule in force at each moment
    /// (`schedule::history::burning_spans`; empty without a schedule).
    pub async fn load(
        db: &Db,
        inventory: &Inventory,
        spans: &[Option<Spans>],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        district: Option<&str>,
        scope: &[usize],
    ) -> Result<Self, sqlx::Error> {
        let cabinet = |id: &str| inventory.cabinet_position(id).map(|c| c as u32);
        let measured_ids = SavingInputs::measured_lamps(inventory, spans, scope);
        Ok(Self {
            from,
            to,
            measured: db.lamp_totals(from, to, &measured_ids).await?,
            meters: db.meter_hours(from, to, district, cabinet).await?,
            circuits: db.circuit_energy_hours(from, to, district, cabinet).await?,
            hours: OnceLock::new(),
        })
    }

    fn cabinet_hours(&self) -> &CabinetHours {
        self.hours
            .get_or_init(|| CabinetHours::new(&self.meters, &self.circuits))
    }

    /// Each district's saving (positions `scope`), then the scope's total
    /// named `city` (id, name). Folds every cabinet-hour: call it off the
    /// async workers for a city.
    pub fn saving(
        &self,
        inventory: &Inventory,
        spans: &[Option<Spans>],
        settings: &EnergySettings,
        scope: &[usize],
        city: (&str, &str),
    ) -> (Vec<SavingFigures>, SavingFigures) {
        SavingInputs {
            inventory,
            from: self.from,
            to: self.to,
            spans,
            hours: self.cabinet_hours(),
            circuits: &self.circuits,
            measured: &self.measured,
            settings,
        }
        .saving(scope, city)
    }

    /// Each cabinet's energy over the whole window, by cabinet position.
    pub fn cabinets(&self, inventory: &Inventory) -> Vec<EnergySums> {
        self.cabinet_hours()
            .by_cabinet(inventory.cabinets.len(), &[(self.from, self.to)])
            .into_iter()
            .map(|mut b| b.pop().unwrap_or_default())
            .collect()
    }
}
