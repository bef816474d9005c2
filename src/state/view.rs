//! JSON views of lamps and RTUs for the API: inventory facts joined with the
//! live values.

use super::{DeviceLive, Inner, RtuReading, SlcReading};
use crate::inventory::{Cabinet, Lamp};
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Liveness<'a, R> {
    pub online: bool,
    pub since: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub last_poll: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub last_error: Option<&'a super::FailReason>,
    pub values: Option<&'a R>,
}

impl<'a, R> From<&'a DeviceLive<R>> for Liveness<'a, R> {
    fn from(d: &'a DeviceLive<R>) -> Self {
        Self {
            online: d.online,
            since: d.since,
            last_seen: d.last_seen,
            last_poll: d.last_poll,
            consecutive_failures: d.consecutive_failures,
            last_error: d.last_error.as_ref(),
            values: d.reading.as_ref(),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SlcView<'a> {
    pub id: &'a str,
    pub profile: &'a str,
    #[serde(flatten)]
    pub live: Liveness<'a, SlcReading>,
    pub lamp_failure: Option<bool>,
}

/// A lamp (路灯) as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LampView<'a> {
    pub id: &'a str,
    pub district: &'a str,
    pub cabinet: &'a str,
    pub circuit: u8,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub rated_power_w: Option<f64>,
    /// The single-lamp controller, `null` for a lamp without one.
    pub slc: Option<SlcView<'a>>,
}

impl<'a> LampView<'a> {
    pub fn new(lamp: &'a Lamp, cabinet: &'a Cabinet, live: &'a Inner, index: usize) -> Self {
        Self::of(lamp, cabinet, &live.lamps[index])
    }

    /// The view of a lamp from its SLC's live state (`Inner::lamps` at the
    /// lamp's position), e.g. a copy taken under the read lock so that the
    /// view is built and serialised without it.
    pub fn of(lamp: &'a Lamp, cabinet: &'a Cabinet, d: &'a DeviceLive<SlcReading>) -> Self {
        let slc = lamp.slc.as_ref().map(|s| SlcView {
            id: &s.id,
            profile: &s.profile,
            live: d.into(),
            lamp_failure: d.reading.as_ref().map(SlcReading::lamp_failure),
        });
        Self {
            id: &lamp.id,
            district: &cabinet.district,
            cabinet: &lamp.cabinet,
            circuit: lamp.circuit,
            lat: lamp.lat,
            lon: lamp.lon,
            rated_power_w: lamp.rated_power_w,
            slc,
        }
    }
}

/// A cabinet RTU as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RtuView<'a> {
    pub id: &'a str,
    pub profile: &'a str,
    pub unit: u8,
    pub cabinet: &'a str,
    pub district: &'a str,
    pub endpoint: Option<&'a str>,
    /// The DTU id when the endpoint dials in (`dtu:ID`).
    #[serde(skip)]
    pub dtu_id: Option<&'a str>,
    #[serde(flatten)]
    pub live: Liveness<'a, RtuReading>,
}

impl<'a> RtuView<'a> {
    /// `None` for a cabinet without an RTU.
    pub fn new(cabinet: &'a Cabinet, live: &'a Inner, index: usize) -> Option<Self> {
        let rtu = cabinet.rtu.as_ref()?;
        Some(Self {
            id: &rtu.id,
            profile: &rtu.profile,
            unit: rtu.unit,
            cabinet: &cabinet.id,
            district: &cabinet.district,
            endpoint: cabinet.endpoint.as_deref(),
            dtu_id: cabinet.dtu_id(),
            live: (&live.rtus[index]).into(),
        })
    }
}
