//! The alarm lifecycle and the grouping rules, on the demo inventory
//! (config/inventory: cabinet CAB-0001 on endpoint 0 with its RTU and 22
//! SLCs on four circuits), with outcomes applied to a real live state and
//! the engine's changes collected.

use super::model::*;
use super::{AlarmSettings, AlarmSink, Alarms};
use crate::inventory::Inventory;
use crate::state::{FailReason, LiveState, PollOutcome, Reading, RtuReading, SlcReading};
use crate::topology::{DeviceKey, PollClass, Topology};
use chrono::{DateTime, Duration, TimeZone, Utc};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<AlarmChange>>);

impl AlarmSink for Collect {
    fn offer_alarms(&self, changes: Arc<[AlarmChange]>) {
        self.0.lock().extend(changes.iter().cloned());
    }
}

impl Collect {
    fn take(&self) -> Vec<(ChangeKind, AlarmKind, String)> {
        self.0
            .lock()
            .drain(..)
            .map(|c| (c.change, c.alarm.kind, c.alarm.device_id))
            .collect()
    }
}

struct City {
    live: Arc<LiveState>,
    topology: Topology,
    alarms: Arc<Alarms>,
    seen: Arc<Collect>,
    inv: Arc<Inventory>,
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + s, 0).unwrap()
}

fn city(settings: AlarmSettings) -> City {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (inv, issues) = crate::inventory::load_dir(&root.join("config/inventory"));
    assert!(issues.is_empty(), "{issues:?}");
    let profiles = lamp_profile::Profile::load_dir(&root.join("config/profiles"))
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, Arc::new(v)))
        .collect();
    let mut problems = Vec::new();
    let topology = Topology::build(&inv, &profiles, 0, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");
    let inv = Arc::new(inv);
    let live = Arc::new(LiveState::new(inv.clone(), &topology, 3));
    let alarms = Alarms::new(settings, live.clone(), &topology);
    let seen = Arc::new(Collect::default());
    alarms.add_sink(seen.clone());
    City {
        live,
        topology,
        alarms,
        seen,
        inv,
    }
}

fn lamp_ok() -> SlcReading {
    SlcReading {
        on: true,
        dim_level: 100.0,
        voltage: Some(220.0),
        current: Some(0.7),
        power: Some(150.0),
        power_factor: Some(0.95),
        energy_kwh: Some(1.0),
        burning_hours: Some(10.0),
        fault_flags: 0,
    }
}

fn rtu_ok() -> RtuReading {
    RtuReading {
        contactors: vec![true; 4],
        voltage: [Some(220.0); 3],
        current: [Some(10.0); 3],
        active_power: Some(5000.0),
        energy_kwh: Some(100.0),
        door_alarm: false,
        leakage_alarm: false,
    }
}

impl City {
    /// Endpoint 0's devices of `class`.
    fn keys(&self, class: PollClass) -> Vec<DeviceKey> {
        self.topology.endpoints[0]
            .devices
            .iter()
            .filter(|d| d.class() == class)
            .map(|d| d.key)
            .collect()
    }

    fn lamp_key(&self, id: &str) -> DeviceKey {
        DeviceKey::Lamp(self.inv.lamp_position(id).unwrap() as u32)
    }

    /// One poll of endpoint 0's `class` at `at`, each device's result by `f`.
    fn poll(
        &self,
        class: PollClass,
        at: DateTime<Utc>,
        f: impl Fn(DeviceKey) -> Result<Reading, FailReason>,
    ) {
        let results: Vec<_> = self.keys(class).into_iter().map(|k| (k, f(k))).collect();
        let outcome = PollOutcome {
            endpoint: 0,
            class,
            at,
            connected: true,
            sent: true,
            elapsed: std::time::Duration::from_millis(5),
            reads_ok: 1,
            reads_failed: 0,
            results,
        };
        let applied = self.live.apply(outcome, true);
        self.alarms.evaluate(&applied);
    }

    /// Both classes of endpoint 0, with `lamp` deciding each SLC's reading
    /// from a healthy one at its lamp's rated power.
    fn cycle(
        &self,
        at: DateTime<Utc>,
        lamp: impl Fn(DeviceKey, SlcReading) -> Result<Reading, FailReason>,
    ) {
        self.poll(PollClass::Rtu, at, |_| Ok(Reading::Rtu(rtu_ok())));
        self.poll(PollClass::Slc, at, |k| lamp(k, self.healthy(k)));
    }

    fn healthy(&self, k: DeviceKey) -> SlcReading {
        let DeviceKey::Lamp(i) = k else {
            unreachable!("SLC class")
        };
        SlcReading {
            power: self.inv.lamps[i as usize].rated_power_w,
            ..lamp_ok()
        }
    }
}

fn all_ok(_: DeviceKey, r: SlcReading) -> Result<Reading, FailReason> {
    Ok(Reading::Slc(r))
}

fn quiet() -> AlarmSettings {
    serde_json::from_str(r#"{"hysteresis": "10m", "auto_close_after": "1h"}"#).unwrap()
}

#[test]
fn a_flag_raises_once_clears_reopens_within_the_hysteresis_and_raises_anew_after_it() {
    let c = city(quiet());
    let failed = c.lamp_key("LX-0001-001");
    let flag = |on: bool| {
        move |k: DeviceKey, mut r: SlcReading| {
            if on && k == failed {
                r.fault_flags = 1;
                r.power = Some(0.0);
            }
            Ok(Reading::Slc(r))
        }
    };
    c.cycle(t(0), all_ok);
    assert!(c.seen.take().is_empty(), "a healthy city raises nothing");
    c.cycle(t(10), flag(true));
    c.cycle(t(20), flag(true));
    let raised = c.seen.take();
    assert_eq!(
        raised,
        vec![(
            ChangeKind::Raised,
            AlarmKind::LampFailure,
            "LX-0001-001".into()
        )],
        "one alarm, not one per poll, and no lamp_out_at_night beside the failure"
    );
    c.cycle(t(30), flag(false));
    assert_eq!(c.seen.take()[0].0, ChangeKind::Cleared);
    // Back within ten minutes: the same alarm, twice occurred.
    c.cycle(t(300), flag(true));
    assert_eq!(c.seen.take()[0].0, ChangeKind::Reopened);
    let a = &c.alarms.standing(t(300))[0];
    assert_eq!(
        (a.occurrences, a.version, a.state),
        (2, 3, AlarmState::Active)
    );
    let first = a.id;
    c.cycle(t(310), flag(false));
    c.seen.take();
    // Back after the hysteresis: a new alarm.
    c.cycle(t(310 + 601), flag(true));
    assert_eq!(c.seen.take()[0].0, ChangeKind::Raised);
    assert_ne!(c.alarms.standing(t(1000))[0].id, first);
    // The old one, cleared and never acknowledged, auto-closes after an hour.
    c.alarms.tick(t(310 + 3599));
    assert!(c.seen.take().is_empty());
    c.alarms.tick(t(310 + 3600));
    assert_eq!(
        c.seen.take(),
        vec![(
            ChangeKind::Closed,
            AlarmKind::LampFailure,
            "LX-0001-001".into()
        )]
    );
}

#[test]
fn a_condition_waits_out_its_debounce() {
    let c = city(quiet());
    let dark = c.lamp_key("LX-0001-002");
    // Relay on, supply there, no power: out at night (default debounce 2 min).
    let out = move |k: DeviceKey, mut r: SlcReading| {
        if k == dark {
            r.power = Some(0.0);
        }
        Ok(Reading::Slc(r))
    };
    c.cycle(t(0), out);
    c.cycle(t(60), out);
    c.cycle(t(119), out);
    assert!(c.seen.take().is_empty(), "inside the debounce");
    c.cycle(t(120), out);
    let raised = c.alarms.standing(t(120));
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].kind, AlarmKind::LampOutAtNight);
    assert_eq!(raised[0].detail["condition_since"], serde_json::json!(t(0)));
    // A condition that stops inside the debounce raises nothing.
    let c = city(quiet());
    c.cycle(t(0), out);
    c.cycle(t(60), all_ok);
    c.cycle(t(130), out);
    assert!(c.seen.take().is_empty());
}

#[test]
fn an_endpoint_down_is_one_alarm_and_only_devices_dead_after_it_returns_get_their_own() {
    let c = city(quiet());
    c.cycle(t(0), all_ok);
    let down = |_: DeviceKey| -> Result<Reading, FailReason> { Err(FailReason::Timeout) };
    for n in 1..=4 {
        c.poll(PollClass::Rtu, t(n * 10), down);
        c.poll(PollClass::Slc, t(n * 10), down);
    }
    assert_eq!(
        c.seen.take(),
        vec![(
            ChangeKind::Raised,
            AlarmKind::EndpointDown,
            "127.0.0.1:15020".into()
        )],
        "one alarm for the endpoint, none of its 23 devices' comms_lost"
    );
    // Back, but one SLC stays dead.
    let dead = c.lamp_key("LX-0001-003");
    let back = move |k: DeviceKey| {
        if k == dead {
            Err(FailReason::Exception { code: 0x0B })
        } else {
            Ok(Reading::Slc(lamp_ok()))
        }
    };
    c.poll(PollClass::Rtu, t(100), |_| Ok(Reading::Rtu(rtu_ok())));
    assert_eq!(
        c.seen.take(),
        vec![(
            ChangeKind::Cleared,
            AlarmKind::EndpointDown,
            "127.0.0.1:15020".into()
        )],
        "SLCs not polled since the endpoint came back are not judged yet"
    );
    c.poll(PollClass::Slc, t(105), back);
    assert_eq!(
        c.seen.take(),
        vec![(
            ChangeKind::Raised,
            AlarmKind::CommsLost,
            "LX-0001-003".into()
        )]
    );
}

#[test]
fn a_cut_circuit_is_one_supply_loss_with_its_lamps_and_no_lamp_alarms() {
    let c = city(quiet());
    let circuit2: Vec<DeviceKey> = c
        .inv
        .lamps
        .iter()
        .enumerate()
        .filter(|(_, l)| l.cabinet == "CAB-0001" && l.circuit == 2)
        .map(|(i, _)| DeviceKey::Lamp(i as u32))
        .collect();
    let cut = move |k: DeviceKey, mut r: SlcReading| {
        if circuit2.contains(&k) {
            r.voltage = Some(0.0);
            r.power = Some(0.0);
            r.current = Some(0.0);
        }
        Ok(Reading::Slc(r))
    };
    for s in [0, 30, 60, 200, 400] {
        c.cycle(t(s), &cut);
    }
    let standing = c.alarms.standing(t(400));
    assert_eq!(standing.len(), 1, "{standing:?}");
    let a = &standing[0];
    assert_eq!(
        (a.kind, a.device_id.as_str()),
        (AlarmKind::SupplyLoss, "CAB-0001/2")
    );
    assert_eq!(a.severity, Severity::Serious);
    assert_eq!(a.detail["lamps"].as_array().unwrap().len(), 6);
    assert_eq!(a.detail["contactor_closed"], serde_json::json!(true));
}

#[test]
fn acknowledgement_closing_and_a_restart_without_duplicates() {
    let c = city(quiet());
    let door = |open: bool| {
        move |_: DeviceKey| {
            let mut r = rtu_ok();
            r.door_alarm = open;
            Ok(Reading::Rtu(r))
        }
    };
    c.poll(PollClass::Rtu, t(0), door(true));
    let id = c.alarms.standing(t(0))[0].id;
    assert_eq!(
        c.alarms.close(id, "op", false, t(1)),
        Err(super::AlarmError::Standing(id))
    );
    let a = c.alarms.acknowledge(id, "op", "crew sent", t(5)).unwrap();
    assert_eq!(a.state, AlarmState::Acknowledged);
    assert_eq!(
        c.alarms.acknowledge(id, "op", "again", t(6)),
        Err(super::AlarmError::AlreadyAcknowledged(id))
    );
    // A restart: the store gives the open alarm back; the door still open
    // continues it, no second alarm.
    let stored = c.alarms.open(t(10));
    let c2 = city(quiet());
    c2.alarms.restore(stored, t(20));
    c2.poll(PollClass::Rtu, t(30), door(true));
    assert!(c2.seen.take().is_empty());
    c2.poll(PollClass::Rtu, t(40), door(false));
    assert_eq!(c2.seen.take()[0].0, ChangeKind::Cleared);
    // Acknowledged and cleared: closed once the hysteresis has passed.
    c2.alarms.tick(t(40 + 599));
    assert!(c2.seen.take().is_empty());
    c2.alarms.tick(t(40 + 600));
    assert_eq!(c2.seen.take()[0].0, ChangeKind::Closed);
    assert!(c2.alarms.open(t(700)).is_empty());
    // And an alarm whose condition ended while the gateway was down clears
    // at the first poll.
    let c3 = city(quiet());
    c.poll(PollClass::Rtu, t(50), door(true));
    c3.alarms.restore(c.alarms.open(t(50)), t(60));
    c3.poll(PollClass::Rtu, t(70), door(false));
    assert_eq!(c3.seen.take()[0].0, ChangeKind::Cleared);
}

#[test]
fn overdue_is_past_the_severity_deadline_while_standing() {
    let c = city(quiet());
    let leak = |_: DeviceKey| {
        let mut r = rtu_ok();
        r.leakage_alarm = true;
        Ok(Reading::Rtu(r))
    };
    c.poll(PollClass::Rtu, t(0), leak);
    let a = &c.alarms.standing(t(0))[0];
    assert_eq!(a.severity, Severity::Emergency);
    assert_eq!(a.deadline, t(0) + Duration::hours(1));
    assert!(!c.alarms.standing(t(3600))[0].overdue);
    assert!(c.alarms.standing(t(3601))[0].overdue);
}

#[test]
fn a_day_burner_is_a_lamp_burning_when_the_plan_has_it_off() {
    let c = city(quiet());
    let lamps = c.inv.lamps.len();
    let burner = c.lamp_key("LX-0001-005");
    // The plan has every lamp off (day); one SLC keeps its lamp burning.
    c.live.set_scheduled(vec![Some(false); lamps]);
    let day = move |k: DeviceKey, mut r: SlcReading| {
        if k != burner {
            r.on = false;
            r.power = Some(0.0);
        }
        Ok(Reading::Slc(r))
    };
    for s in [0, 100, 200, 300] {
        c.cycle(t(s), day);
    }
    let standing = c.alarms.standing(t(300));
    assert_eq!(standing.len(), 1, "{standing:?}");
    assert_eq!(
        (standing[0].kind, standing[0].device_id.as_str()),
        (AlarmKind::DayBurner, "LX-0001-005")
    );
    assert_eq!(standing[0].severity, Severity::Serious);
    // At night the plan has it on: no longer a day burner.
    c.live.set_scheduled(vec![Some(true); lamps]);
    c.cycle(t(400), all_ok);
    assert!(c.alarms.standing(t(400)).is_empty());
}

#[test]
fn dimming_and_power_are_judged_against_rated_power() {
    let c = city(quiet());
    // LX-0001-001 is rated 150 W.
    let dim = c.lamp_key("LX-0001-001");
    let full = c.lamp_key("LX-0001-002");
    let wrong = move |k: DeviceKey, mut r: SlcReading| {
        if k == dim {
            // Dimmed to 50 % but drawing 120 W (75 W expected; 15 % of 150 = 22.5 W allowed).
            r.dim_level = 50.0;
            r.power = Some(120.0);
        }
        if k == full {
            // At 100 % drawing 60 % above rated.
            r.power = r.power.map(|p| p * 1.6);
        }
        Ok(Reading::Slc(r))
    };
    for s in [0, 150, 300] {
        c.cycle(t(s), wrong);
    }
    let mut kinds: Vec<(AlarmKind, String)> = c
        .alarms
        .standing(t(300))
        .into_iter()
        .map(|a| (a.kind, a.device_id))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (AlarmKind::DimmingFailure, "LX-0001-001".into()),
            (AlarmKind::PowerAbnormal, "LX-0001-002".into()),
        ]
    );
    // Within tolerance: 80 W at 50 % of 150 W is 5 W off.
    let c = city(quiet());
    let fine = move |k: DeviceKey, mut r: SlcReading| {
        if k == dim {
            r.dim_level = 50.0;
            r.power = Some(80.0);
        }
        Ok(Reading::Slc(r))
    };
    for s in [0, 150, 300] {
        c.cycle(t(s), fine);
    }
    assert!(c.alarms.standing(t(300)).is_empty());
}

#[test]
fn a_contactor_open_while_its_lamps_have_supply_is_a_contactor_failure() {
    let c = city(quiet());
    let welded = |_: DeviceKey| {
        let mut r = rtu_ok();
        r.contactors[2] = false;
        Ok(Reading::Rtu(r))
    };
    for s in [0, 30, 61] {
        c.poll(PollClass::Rtu, t(s), welded);
        c.poll(PollClass::Slc, t(s), |k| Ok(Reading::Slc(c.healthy(k))));
    }
    let standing = c.alarms.standing(t(61));
    assert_eq!(standing.len(), 1, "{standing:?}");
    assert_eq!(
        (standing[0].kind, standing[0].device_id.as_str()),
        (AlarmKind::ContactorFailure, "CAB-0001/3")
    );
}

#[test]
fn a_contactor_closed_while_the_schedule_has_it_open_is_a_contactor_failure_not_day_burners() {
    let c = city(quiet());
    let cab = c.inv.cabinet_position("CAB-0001").unwrap();
    let on_3: Vec<usize> = (0..c.inv.lamps.len())
        .filter(|&l| c.inv.lamps[l].cabinet == "CAB-0001" && c.inv.lamps[l].circuit == 3)
        .collect();
    assert!(on_3.len() >= 2, "{on_3:?}");
    // By day the schedule opens circuit 3, its lamps following it; the
    // contactor stays closed (rtu_ok) and its lamps burn.
    let day = |driven: bool| {
        let mut expect = vec![None; c.inv.lamps.len()];
        for &l in &on_3 {
            expect[l] = Some(false);
        }
        c.live.set_scheduled(expect);
        c.live.set_scheduled_contactors(if driven {
            std::collections::HashMap::from([((cab, 3), false)])
        } else {
            Default::default()
        });
    };
    day(true);
    for s in [0, 30, 61] {
        c.cycle(t(s), all_ok);
    }
    let standing = c.alarms.standing(t(61));
    assert_eq!(standing.len(), 1, "{standing:?}");
    let a = &standing[0];
    assert_eq!(
        (a.kind, a.device_id.as_str()),
        (AlarmKind::ContactorFailure, "CAB-0001/3")
    );
    assert_eq!(a.detail["contactor_closed"], serde_json::json!(true));
    assert_eq!(a.detail["scheduled_closed"], serde_json::json!(false));
    // Opened at last: cleared, and nothing else.
    let opened = |_: DeviceKey| {
        let mut r = rtu_ok();
        r.contactors[2] = false;
        Ok(Reading::Rtu(r))
    };
    let dark = |k: DeviceKey| {
        let DeviceKey::Lamp(i) = k else {
            unreachable!()
        };
        let mut r = c.healthy(k);
        if on_3.contains(&(i as usize)) {
            (r.on, r.power, r.voltage) = (false, Some(0.0), Some(0.0));
        }
        Ok(Reading::Slc(r))
    };
    for s in [100, 200] {
        c.poll(PollClass::Rtu, t(s), opened);
        c.poll(PollClass::Slc, t(s), dark);
    }
    assert!(c.alarms.standing(t(200)).is_empty());
    // Where the schedule switches the lamps but not the contactor (SLCs
    // switch them, the circuit stays closed by day), a closed contactor is
    // no fault; lamps burning against the plan are their own day burners.
    day(false);
    // (A day burner waits out its 5 minutes.)
    for s in [300, 500, 601] {
        c.cycle(t(s), all_ok);
    }
    let standing = c.alarms.standing(t(601));
    assert!(
        standing.iter().all(|a| a.kind == AlarmKind::DayBurner),
        "{standing:?}"
    );
    assert_eq!(standing.len(), on_3.len(), "{standing:?}");
}

#[test]
fn a_district_may_wait_longer_or_not_raise_a_kind_at_all() {
    // The demo's CAB-0001 is in D01.
    let s: AlarmSettings = serde_json::from_str(
        r#"{"districts": {"D01": {"lamp_out_at_night": {"for": "10m"}, "lamp_failure": {"enabled": false}}}}"#,
    )
    .unwrap();
    let c = city(s);
    let dark = c.lamp_key("LX-0001-002");
    let failed = c.lamp_key("LX-0001-001");
    let f = move |k: DeviceKey, mut r: SlcReading| {
        if k == dark {
            r.power = Some(0.0);
        }
        if k == failed {
            r.fault_flags = 1;
            r.power = Some(0.0);
        }
        Ok(Reading::Slc(r))
    };
    for s in [0, 120, 599] {
        c.cycle(t(s), f);
    }
    assert!(
        c.alarms.standing(t(599)).is_empty(),
        "10 minutes in D01; failures off"
    );
    c.cycle(t(600), f);
    let standing = c.alarms.standing(t(600));
    assert_eq!(standing.len(), 1);
    assert_eq!(standing[0].kind, AlarmKind::LampOutAtNight);
}

#[test]
fn an_endpoint_dead_from_the_start_is_down_before_its_slcs_are_first_polled() {
    let c = city(quiet());
    let down = |_: DeviceKey| -> Result<Reading, FailReason> { Err(FailReason::Timeout) };
    // Only the RTU class is due at first (its SLCs are polled later); an RTU
    // that never answered is offline from its first failed poll.
    for n in 0..3 {
        c.poll(PollClass::Rtu, t(n * 5), down);
    }
    assert_eq!(
        c.seen.take(),
        vec![(
            ChangeKind::Raised,
            AlarmKind::EndpointDown,
            "127.0.0.1:15020".into()
        )],
        "no comms_lost for the RTU first"
    );
}
