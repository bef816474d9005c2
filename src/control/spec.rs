//! Commands, as an operator relies on them: a repeated idempotency key gets
//! the first command back (nothing is written twice); the last command to a
//! lamp wins, so an override that expires restores only the lamps no newer
//! command has touched; and expiry restores what each lamp did before the
//! override (its last confirmed command, else what it last reported).
//!
//! A tiny city (one cabinet, two lamps with SLCs, both online and reporting
//! "on at 100 %") and a stand-in poller that confirms every write with the
//! written values. Expiry runs on paused time: the override's wait is
//! computed from the wall clock once, then slept on tokio's clock, which
//! the tests advance.

use super::{Action, Command, CommandObserver, Control, ControlSettings, Selector, Source};
use super::{Submission, TargetState, WriteJob};
use crate::auth::{Principal, Role};
use crate::inventory::{Cabinet, District, Framing, Inventory, Lamp, Link, SlcSpec};
use crate::state::{LiveState, PollOutcome, Reading, SlcReading};
use crate::topology::{DeviceKey, DeviceSlot, EndpointSpec, PollClass, Topology};
use chrono::Utc;
use lamp_profile::Profile;
use parking_lot::Mutex;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const LAMPS: [&str; 2] = ["LX-1", "LX-2"];

fn lamp(id: &str, unit: u8) -> Lamp {
    Lamp {
        at: String::new(),
        id: id.into(),
        cabinet: "CAB-1".into(),
        circuit: 1,
        lat: None,
        lon: None,
        rated_power_w: None,
        slc: Some(SlcSpec {
            id: format!("SLC-{id}"),
            profile: "slc-a-unit".into(),
            unit,
            index: None,
        }),
        road: None,
    }
}

fn inventory() -> Inventory {
    Inventory::new(
        vec![District {
            at: String::new(),
            id: "D01".into(),
            name: "North".into(),
        }],
        vec![Cabinet {
            at: String::new(),
            id: "CAB-1".into(),
            district: "D01".into(),
            name: "Cabinet 1".into(),
            lat: None,
            lon: None,
            circuits: 1,
            endpoint: Some("127.0.0.1:1502".into()),
            link: Some("127.0.0.1:1502".parse().unwrap()),
            framing: Framing::Tcp,
            rtu: None,
        }],
        vec![lamp(LAMPS[0], 1), lamp(LAMPS[1], 2)],
    )
}

fn topology() -> Topology {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/profiles");
    let slc = Arc::new(Profile::load_dir(&dir).unwrap()["slc-a-unit"].clone());
    let mut t = Topology {
        endpoints: vec![EndpointSpec {
            address: "127.0.0.1:1502".into(),
            link: Link::Tcp {
                address: "127.0.0.1:1502".into(),
            },
            framing: Framing::Tcp,
            request_gap: Duration::ZERO,
            devices: (0..2u8)
                .map(|i| DeviceSlot {
                    key: DeviceKey::Lamp(u32::from(i)),
                    unit: i + 1,
                    block_index: 0,
                    profile: slc.clone(),
                })
                .collect(),
            reads: vec![],
        }],
    };
    t.plan(0);
    t
}

/// Commands as they complete.
#[derive(Debug, Default)]
struct Completed(Mutex<Vec<Command>>);

impl CommandObserver for Completed {
    fn completed(&self, command: &Command) {
        self.0.lock().push(command.clone());
    }
}

impl Completed {
    fn by(&self, source: Source) -> Vec<Command> {
        self.0
            .lock()
            .iter()
            .filter(|c| c.source == source)
            .cloned()
            .collect()
    }
}

struct City {
    control: Arc<Control>,
    completed: Arc<Completed>,
    /// The device of every write the stand-in poller received.
    writes: Arc<Mutex<Vec<u32>>>,
    _cancel: CancellationToken,
}

fn operator() -> Principal {
    Principal {
        name: "ops".into(),
        role: Role::Operator,
        district: None,
    }
}

/// Both lamps online, reporting on at 100 %; a poller that confirms writes.
fn city() -> City {
    let topology = topology();
    let live = Arc::new(LiveState::new(Arc::new(inventory()), &topology, 3));
    let reading = SlcReading {
        on: true,
        dim_level: 100.0,
        voltage: Some(230.0),
        current: Some(0.26),
        power: Some(60.0),
        power_factor: Some(0.95),
        energy_kwh: Some(1.0),
        burning_hours: Some(10.0),
        fault_flags: 0,
    };
    live.apply(
        PollOutcome {
            endpoint: 0,
            class: PollClass::Slc,
            at: Utc::now(),
            connected: true,
            sent: true,
            elapsed: Duration::ZERO,
            reads_ok: 2,
            reads_failed: 0,
            results: (0..2)
                .map(|i| (DeviceKey::Lamp(i), Ok(Reading::Slc(reading.clone()))))
                .collect(),
        },
        false,
    );
    let cancel = CancellationToken::new();
    let (control, mut queues) =
        Control::new(live, &topology, &ControlSettings::default(), cancel.clone());
    let completed = Arc::new(Completed::default());
    control.observe(completed.clone());
    let writes = Arc::new(Mutex::new(Vec::new()));
    let mut queue: mpsc::Receiver<WriteJob> = queues.remove(0);
    let seen = writes.clone();
    tokio::spawn(async move {
        while let Some(job) = queue.recv().await {
            seen.lock().push(job.device);
            job.cell.finish(job.target, Ok(job.writes));
        }
    });
    City {
        control,
        completed,
        writes,
        _cancel: cancel,
    }
}

fn to(lamps: &[&str], action: Action) -> Submission {
    Submission {
        actor: "ops".into(),
        source: Source::Api,
        selector: Selector::Lamps(lamps.iter().map(|l| l.to_string()).collect()),
        action,
        expires_at: None,
        idempotency_key: None,
        note: None,
    }
}

impl City {
    /// Submits and waits until every target is confirmed.
    async fn confirmed(&self, sub: Submission) -> Command {
        let cell = self.control.submit(&operator(), sub).unwrap();
        let c = cell.wait().await;
        assert!(
            c.targets.iter().all(|t| t.state == TargetState::Confirmed),
            "{c:?}"
        );
        c
    }

    /// Lets the override's expiry run: past `secs` on the paused clock, then
    /// until the restoring commands have gone through the poller.
    async fn after(&self, secs: u64) {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }

    /// The lamp ids and actions of the expiry's restoring commands.
    fn restored(&self) -> Vec<(String, Action)> {
        let mut r: Vec<(String, Action)> = self
            .completed
            .by(Source::Expiry)
            .into_iter()
            .flat_map(|c| {
                c.targets
                    .into_iter()
                    .map(move |t| (t.id, c.action))
                    .collect::<Vec<_>>()
            })
            .collect();
        r.sort_by(|a, b| a.0.cmp(&b.0));
        r
    }
}

fn expiring_in(secs: i64, mut sub: Submission) -> Submission {
    sub.expires_at = Some(Utc::now() + chrono::Duration::seconds(secs));
    sub
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_first_command_and_writes_nothing_more() {
    let city = city();
    let mut first = to(&[LAMPS[0]], Action::Off);
    first.idempotency_key = Some("evening-1".into());
    let a = city.confirmed(first).await;
    let writes = city.writes.lock().len();

    // The same key again, even with another action: the first command back.
    let mut again = to(&[LAMPS[0]], Action::On);
    again.idempotency_key = Some("evening-1".into());
    let b = city
        .control
        .submit(&operator(), again)
        .unwrap()
        .wait()
        .await;
    assert_eq!(b.id, a.id);
    assert_eq!(b.action, Action::Off);
    assert_eq!(city.writes.lock().len(), writes, "nothing written twice");

    // Another key is another command.
    let mut other = to(&[LAMPS[0]], Action::On);
    other.idempotency_key = Some("evening-2".into());
    let c = city.confirmed(other).await;
    assert_ne!(c.id, a.id);
    assert_eq!(city.writes.lock().len(), writes + 1);
}

#[tokio::test]
async fn an_idempotency_key_is_the_actors_own() {
    let city = city();
    let mut mine = to(&[LAMPS[0]], Action::Off);
    mine.idempotency_key = Some("k".into());
    let a = city.confirmed(mine).await;
    let mut theirs = to(&[LAMPS[0]], Action::Off);
    theirs.actor = "mqtt:D01".into();
    theirs.idempotency_key = Some("k".into());
    let b = city.confirmed(theirs).await;
    assert_ne!(a.id, b.id, "another actor's key does not collide");
}

#[tokio::test(start_paused = true)]
async fn an_override_expiry_restores_what_the_lamps_reported_before_it() {
    let city = city();
    city.confirmed(expiring_in(60, to(&LAMPS, Action::Off)))
        .await;
    city.after(30).await;
    assert_eq!(city.restored(), vec![], "not before it expires");
    city.after(31).await;
    // Both reported "on at 100 %" before the override.
    assert_eq!(
        city.restored(),
        vec![
            (LAMPS[0].to_string(), Action::Dim { level: 100.0 }),
            (LAMPS[1].to_string(), Action::Dim { level: 100.0 }),
        ]
    );
    let restore = &city.completed.by(Source::Expiry)[0];
    assert_eq!(restore.actor, "system");
}

#[tokio::test(start_paused = true)]
async fn an_override_expiry_restores_the_last_confirmed_command_before_it() {
    let city = city();
    city.confirmed(to(&[LAMPS[0]], Action::Dim { level: 30.0 }))
        .await;
    city.confirmed(expiring_in(60, to(&[LAMPS[0]], Action::On)))
        .await;
    city.after(61).await;
    assert_eq!(
        city.restored(),
        vec![(LAMPS[0].to_string(), Action::Dim { level: 30.0 })],
        "the confirmed 30 %, not the reported 100 %"
    );
}

#[tokio::test(start_paused = true)]
async fn the_last_command_wins_so_expiry_leaves_a_lamp_a_newer_command_has_set() {
    let city = city();
    city.confirmed(expiring_in(60, to(&LAMPS, Action::Off)))
        .await;
    // A newer command to the first lamp only, without expiry.
    city.confirmed(to(&[LAMPS[0]], Action::Dim { level: 50.0 }))
        .await;
    city.after(61).await;
    assert_eq!(
        city.restored(),
        vec![(LAMPS[1].to_string(), Action::Dim { level: 100.0 })],
        "only the lamp the override still governs is restored"
    );
}

#[tokio::test(start_paused = true)]
async fn a_newer_override_replaces_an_older_one_and_only_its_expiry_restores() {
    let city = city();
    city.confirmed(expiring_in(60, to(&[LAMPS[0]], Action::Off)))
        .await;
    city.confirmed(expiring_in(
        120,
        to(&[LAMPS[0]], Action::Dim { level: 20.0 }),
    ))
    .await;
    city.after(61).await;
    assert_eq!(
        city.restored(),
        vec![],
        "the first override no longer governs"
    );
    city.after(60).await;
    // What the lamp did before the second override: the first one, confirmed.
    assert_eq!(city.restored(), vec![(LAMPS[0].to_string(), Action::Off)]);
}
