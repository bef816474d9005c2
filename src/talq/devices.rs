//! Our devices as TALQ devices: each function's attributes from the live
//! state, in TALQ's units (classes.rs lists them).
//!
//! The rules, per attribute where it is not a plain copy:
//! - `actualLightState`: the level the SLC last reported, 0 when its relay
//!   is off, rounded to a whole percent (TALQ levels are integers);
//!   stamped with the time of that reading.
//! - `targetLightCommand`: the latest command for the lamp: the last TALQ
//!   override on it while it has not expired (its start may be ahead), else
//!   a manual command the schedule holds the lamp under (reason
//!   `override`), else what the lamp's calendar says now (reason
//!   `program`), else the switch state last confirmed on it (reason
//!   `default`).
//! - `feedbackLightCommand`: the command in effect as the device confirms
//!   it: the target while the level the SLC reports is the target's, else
//!   the reported level (reason `default`).
//! - `defaultLightState`: 100 %, TALQ's default; the gateway keeps no other.
//! - `calendarID`: the id of the calendar the lamp follows (its SLC's
//!   assignment, else its circuit's) — its TALQ address on `/calendars` —,
//!   none when none governs it or TALQ cannot express that calendar
//!   (calendars.rs).
//! - `currentTime`: the gateway's clock, which every schedule runs on (an
//!   SLC keeps no clock of its own).
//! - `communicationFailure`: the device is offline (state/'s online rule).
//! - `totalPower`: the RTU's active power in kW.
//!
//! A value the device has not (yet) reported is left out of its attribute.

use super::address::{Dev, Index};
use super::classes::{self, AttrSpec, FunctionSpec};
use super::overrides::Override;
use super::values::{command, level_state, time, whole};
use crate::inventory::Framing;
use crate::schedule::engine::Hold;
use crate::schedule::plan::{Event, Plan, Signature};
use crate::state::{DeviceLive, LiveState, RtuReading, SlcReading};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// What a device's answer is built from, copied under the live state's
/// read lock (and built without it).
#[derive(Debug, Clone)]
pub(super) enum Snap {
    Gateway,
    Lamp {
        position: usize,
        live: DeviceLive<SlcReading>,
        /// The switch state last confirmed by a command.
        commanded: Option<bool>,
    },
    Rtu {
        position: usize,
        live: DeviceLive<RtuReading>,
    },
}

/// Copies what the answers about `devices` show, holding the read lock
/// only for the copy.
pub(super) fn snapshot(live: &LiveState, devices: &[(Uuid, Dev)]) -> Vec<(Uuid, Snap)> {
    let inner = live.read();
    devices
        .iter()
        .map(|&(a, d)| {
            let snap = match d {
                Dev::Gateway => Snap::Gateway,
                Dev::Lamp(l) => Snap::Lamp {
                    position: l,
                    live: inner.lamps[l].clone(),
                    commanded: inner.commanded.get(l).copied().flatten(),
                },
                Dev::Rtu(c) => Snap::Rtu {
                    position: c,
                    live: inner.rtus[c].clone(),
                },
            };
            (a, snap)
        })
        .collect()
}

/// The gateway's own facts, for its device.
#[derive(Debug, Clone)]
pub(super) struct GatewayFacts {
    pub(super) id: String,
    pub(super) address: Uuid,
    pub(super) uri: String,
    pub(super) cms_uri: Option<String>,
    pub(super) cms_address: Option<Uuid>,
    pub(super) crl_urn: Option<String>,
    pub(super) retry_period_s: f64,
}

/// Everything but the devices' own state that their answers show.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) index: Arc<Index>,
    pub(super) gateway: GatewayFacts,
    pub(super) time_zone: chrono_tz::Tz,
    pub(super) now: DateTime<Utc>,
    pub(super) plan: Option<Arc<Plan>>,
    pub(super) holds: BTreeMap<String, Hold>,
    /// The TALQ overrides by lamp id.
    pub(super) overrides: HashMap<String, Override>,
    /// The calendar's level now per plan signature: lamps alike share one
    /// evaluation (as the schedule's engine does).
    memo: HashMap<Signature, Option<Event>>,
    /// Whether a calendar is offered over TALQ, by id (asked once per
    /// answer, not once per lamp).
    shown: HashMap<String, bool>,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        index: Arc<Index>,
        gateway: GatewayFacts,
        time_zone: chrono_tz::Tz,
        now: DateTime<Utc>,
        plan: Option<Arc<Plan>>,
        holds: BTreeMap<String, Hold>,
        overrides: HashMap<String, Override>,
    ) -> Self {
        Context {
            index,
            gateway,
            time_zone,
            now,
            plan,
            holds,
            overrides,
            memo: HashMap::new(),
            shown: HashMap::new(),
        }
    }

    /// The class a device is of.
    pub(super) fn class(snap: &Snap) -> &'static str {
        match snap {
            Snap::Gateway => classes::GATEWAY_CLASS,
            Snap::Lamp { .. } => classes::SLC_CLASS,
            Snap::Rtu { .. } => classes::RTU_CLASS,
        }
    }

    /// The function ids of a device, in the order its answer lists them.
    pub(super) fn function_ids(&self, snap: &Snap) -> Vec<(String, &'static FunctionSpec)> {
        let plain = |fs: &[&'static FunctionSpec]| {
            fs.iter()
                .map(|f| (f.id.to_string(), *f))
                .collect::<Vec<_>>()
        };
        match snap {
            Snap::Gateway => plain(&[&classes::BASIC, &classes::GATEWAY]),
            Snap::Lamp { .. } => plain(&[
                &classes::BASIC,
                &classes::LAMP_ACTUATOR,
                &classes::LAMP_MONITOR,
                &classes::COMMUNICATION,
            ]),
            Snap::Rtu { position, .. } => {
                let mut ids = plain(&[
                    &classes::BASIC,
                    &classes::CABINET_MONITOR,
                    &classes::ELECTRICAL_METER,
                    &classes::COMMUNICATION,
                ]);
                let circuits = self.index.inventory.cabinets[*position].circuits;
                ids.extend(
                    (1..=circuits).map(|n| (classes::segment_id(n), &classes::SEGMENT_MONITOR)),
                );
                ids
            }
        }
    }

    /// A whole device.
    pub(super) fn device(&mut self, address: Uuid, snap: &Snap) -> Value {
        let functions: Vec<Value> = self
            .function_ids(snap)
            .into_iter()
            .map(|(id, spec)| self.function(snap, &id, spec, None))
            .collect();
        json!({
            "address": address,
            "name": self.name(snap),
            "class": Self::class(snap),
            "functions": functions,
        })
    }

    fn name(&self, snap: &Snap) -> String {
        let inv = &self.index.inventory;
        match snap {
            Snap::Gateway => self.gateway.id.clone(),
            Snap::Lamp { position, .. } => inv.lamps[*position].id.clone(),
            Snap::Rtu { position, .. } => inv.cabinets[*position]
                .rtu
                .as_ref()
                .map_or_else(String::new, |r| r.id.clone()),
        }
    }

    /// One function of a device, its attributes of `scope` only when given.
    pub(super) fn function(
        &mut self,
        snap: &Snap,
        id: &str,
        spec: &FunctionSpec,
        scope: Option<&str>,
    ) -> Value {
        let mut f = Map::new();
        f.insert("id".into(), id.into());
        f.insert("type".into(), spec.kind.into());
        for a in spec
            .attributes
            .iter()
            .filter(|a| scope.is_none_or(|s| a.scope.eq_ignore_ascii_case(s)))
        {
            f.insert(a.name.into(), self.attribute(snap, id, a));
        }
        Value::Object(f)
    }

    /// One attribute: `{type, value?, timestamp?}`.
    pub(super) fn attribute(&mut self, snap: &Snap, function: &str, a: &AttrSpec) -> Value {
        let (value, at) = match snap {
            Snap::Gateway => (self.gateway_value(a.name), None),
            Snap::Lamp {
                position,
                live,
                commanded,
            } => self.lamp_value(*position, live, *commanded, a.name),
            Snap::Rtu { position, live } => self.rtu_value(*position, live, function, a.name),
        };
        let mut out = Map::new();
        out.insert("type".into(), a.kind.into());
        if let Some(v) = value {
            out.insert("value".into(), v);
            if let Some(at) = at {
                out.insert("timestamp".into(), time(at).into());
            }
        }
        Value::Object(out)
    }

    fn basic(
        &self,
        name: &str,
        display: &str,
        hw: Option<&str>,
        at: Option<(f64, f64)>,
    ) -> Option<Value> {
        match name {
            "displayName" | "assetId" => Some(display.into()),
            "hwType" => hw.map(Into::into),
            "location" => at.map(|(lat, lon)| json!({"latitude": lat, "longitude": lon})),
            "timeZone" => Some(self.time_zone.name().into()),
            "currentTime" => Some(time(self.now).into()),
            _ => None,
        }
    }

    fn gateway_value(&self, name: &str) -> Option<Value> {
        let g = &self.gateway;
        match name {
            "swVersion" => Some(env!("CARGO_PKG_VERSION").into()),
            "hwType" => Some("lamp-gateway".into()),
            "vendor" => Some("lamp-gateway".into()),
            "cmsUri" => g.cms_uri.clone().map(Into::into),
            "cmsAddress" => g.cms_address.map(|a| a.to_string().into()),
            "gatewayUri" => Some(g.uri.clone().into()),
            "gatewayAddress" => Some(g.address.to_string().into()),
            "retryPeriod" | "gatewayRetryPeriod" => Some(json!(g.retry_period_s)),
            "crlUrn" => g.crl_urn.clone().map(Into::into),
            other => self.basic(other, &g.id, None, None),
        }
    }

    fn lamp_value(
        &mut self,
        position: usize,
        live: &DeviceLive<SlcReading>,
        commanded: Option<bool>,
        name: &str,
    ) -> (Option<Value>, Option<DateTime<Utc>>) {
        let inv = self.index.inventory.clone();
        let lamp = &inv.lamps[position];
        let r = live.reading.as_ref();
        let seen = live.last_seen;
        let measured = |v: Option<f64>| (v.and_then(number), seen);
        match name {
            "actualLightState" => (r.map(|r| level_state(reported_level(r))), seen),
            "defaultLightState" => (Some(level_state(100)), None),
            "targetLightCommand" => match self.target_command(position, commanded) {
                Some((c, _, at)) => (Some(c), at),
                None => (None, None),
            },
            "feedbackLightCommand" => {
                let Some(r) = r else { return (None, None) };
                let level = reported_level(r);
                match self.target_command(position, commanded) {
                    Some((c, target, _)) if target == level => (Some(c), seen),
                    _ => (Some(command(level, "default")), seen),
                }
            }
            "calendarID" => {
                let Some(plan) = self.plan.clone() else {
                    return (None, None);
                };
                let (tz, now) = (self.time_zone, self.now);
                let calendar = plan.calendar_of_lamp(position).filter(|c| {
                    *self.shown.entry(c.to_string()).or_insert_with(|| {
                        super::calendars::offered(
                            &plan.book,
                            c,
                            super::programs::offset_now(tz, now),
                        )
                    })
                });
                (calendar.map(Into::into), None)
            }
            "supplyVoltage" => measured(r.and_then(|r| r.voltage)),
            "supplyCurrent" => measured(r.and_then(|r| r.current)),
            "activePower" => measured(r.and_then(|r| r.power)),
            "powerFactor" => measured(r.and_then(|r| r.power_factor)),
            "activeEnergy" => measured(r.and_then(|r| r.energy_kwh)),
            "operatingHours" => measured(r.and_then(|r| r.burning_hours)),
            "lampFailure" => (r.map(|r| r.lamp_failure().into()), seen),
            "communicationFailure" => (Some((!live.online).into()), live.since),
            "communicationType" | "physicalAddress" => {
                let cabinet = inv.cabinet_of_lamp(position).map(|c| &inv.cabinets[c]);
                let slc = lamp.slc.as_ref();
                let v = match name {
                    "communicationType" => cabinet.map(|c| framing(c.framing).into()),
                    _ => cabinet.zip(slc).map(|(c, s)| {
                        let at = c.endpoint.as_deref().unwrap_or("-");
                        match s.index {
                            Some(i) => format!("{at} unit {} index {i}", s.unit),
                            None => format!("{at} unit {}", s.unit),
                        }
                        .into()
                    }),
                };
                (v, None)
            }
            other => {
                let hw = lamp.slc.as_ref().map(|s| s.profile.as_str());
                let at = lamp.lat.zip(lamp.lon);
                (self.basic(other, &lamp.id, hw, at), None)
            }
        }
    }

    /// The lamp's `targetLightCommand` (module doc), its level and when
    /// it was given.
    fn target_command(
        &mut self,
        position: usize,
        commanded: Option<bool>,
    ) -> Option<(Value, u8, Option<DateTime<Utc>>)> {
        let id = self.index.inventory.lamps[position].id.clone();
        if let Some(o) = self.overrides.get(&id) {
            if o.expiration.is_none_or(|e| e > self.now) {
                return Some((o.command.clone(), o.level, Some(o.given)));
            }
        }
        if let Some(h) = self.holds.get(&id) {
            let level = whole(h.level);
            let mut c = command(level, "override");
            if let Some(until) = h.until {
                c["expiration"] = time(until).into();
            }
            return Some((c, level, Some(h.since)));
        }
        if let Some(plan) = self.plan.clone() {
            if let Some(t) = plan.burning_target(position) {
                let now = self.now;
                let event = self
                    .memo
                    .entry(plan.signature(t))
                    .or_insert_with(|| plan.level_at(t, now))
                    .clone();
                if let Some(e) = event {
                    let level = whole(e.level);
                    return Some((command(level, "program"), level, Some(e.at)));
                }
            }
        }
        commanded.map(|on| {
            let level = if on { 100 } else { 0 };
            (command(level, "default"), level, None)
        })
    }

    fn rtu_value(
        &self,
        position: usize,
        live: &DeviceLive<RtuReading>,
        function: &str,
        name: &str,
    ) -> (Option<Value>, Option<DateTime<Utc>>) {
        let inv = &self.index.inventory;
        let cabinet = &inv.cabinets[position];
        let r = live.reading.as_ref();
        let seen = live.last_seen;
        let phase = |v: &[Option<f64>; 3], i: usize| (v[i].and_then(number), seen);
        match name {
            "cabinetDoorOpen" => (r.map(|r| r.door_alarm.into()), seen),
            "leakageDetected" => (r.map(|r| r.leakage_alarm.into()), seen),
            "phase1Voltage" | "phase2Voltage" | "phase3Voltage" => match r {
                Some(r) => phase(&r.voltage, phase_index(name)),
                None => (None, None),
            },
            "phase1Current" | "phase2Current" | "phase3Current" => match r {
                Some(r) => phase(&r.current, phase_index(name)),
                None => (None, None),
            },
            "totalPower" => (
                r.and_then(|r| r.active_power)
                    .and_then(|w| number(w / 1000.0)),
                seen,
            ),
            "totalActiveEnergy" => (r.and_then(|r| r.energy_kwh).and_then(number), seen),
            "communicationFailure" => (Some((!live.online).into()), live.since),
            "communicationType" => (Some(framing(cabinet.framing).into()), None),
            "physicalAddress" => (
                cabinet.rtu.as_ref().map(|rtu| {
                    let at = cabinet.endpoint.as_deref().unwrap_or("-");
                    format!("{at} unit {}", rtu.unit).into()
                }),
                None,
            ),
            "segmentReference" | "numberOfLoads" | "actualState" => {
                let n: u8 = function
                    .strip_prefix("segment")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                match name {
                    "segmentReference" => (Some(format!("{}#{n}", cabinet.id).into()), None),
                    "numberOfLoads" => (Some(self.index.loads(position, n).into()), None),
                    _ => (
                        r.and_then(|r| r.contactors.get(usize::from(n).wrapping_sub(1)))
                            .map(|&on| if on { "ON" } else { "OFF" }.into()),
                        seen,
                    ),
                }
            }
            other => {
                let rtu = cabinet.rtu.as_ref();
                let id = rtu.map_or(cabinet.id.as_str(), |r| r.id.as_str());
                let hw = rtu.map(|r| r.profile.as_str());
                (
                    self.basic(other, id, hw, cabinet.lat.zip(cabinet.lon)),
                    None,
                )
            }
        }
    }
}

fn phase_index(name: &str) -> usize {
    match name.as_bytes().get(5) {
        Some(b'2') => 1,
        Some(b'3') => 2,
        _ => 0,
    }
}

fn framing(f: Framing) -> &'static str {
    match f {
        Framing::Tcp => "modbus-tcp",
        Framing::Rtu => "modbus-rtu",
    }
}

/// A JSON number for a finite value (a register can decode to NaN).
fn number(v: f64) -> Option<Value> {
    v.is_finite().then(|| json!(v))
}

/// The level an SLC reports: its dim level while its relay is on, else 0.
fn reported_level(r: &SlcReading) -> u8 {
    if r.on {
        whole(r.dim_level)
    } else {
        0
    }
}
