//! The online rule, as the design page states it: a device is online while
//! its last poll succeeded, or while fewer than `offline_after` consecutive
//! polls have failed; once offline it stays offline until the first success.
//! A device starts offline (never seen). Its first poll sets when its status
//! began: a first success is its "came online" transition, the start of its
//! online time for the figures over a window; a first failure changes nothing
//! and is no transition. (MQTT does not publish that first "came online" as an
//! event: the retained state tells it; that is the mirror's rule, not this one.)

use super::{DeviceLive, FailReason};
use chrono::{DateTime, TimeZone, Utc};

/// The shipped default of `poll.offline_after`.
const OFFLINE_AFTER: u32 = 3;

/// A reading stands for any device's values: the rule does not look at them.
type Device = DeviceLive<&'static str>;

/// Poll `n` of a device, one second apart.
fn at(n: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + n, 0).unwrap()
}

fn ok() -> Result<&'static str, FailReason> {
    Ok("values")
}

fn timeout() -> Result<&'static str, FailReason> {
    Err(FailReason::Timeout)
}

/// A device that has answered once and is online since poll 0.
fn online_device() -> Device {
    let mut d = Device::default();
    assert_eq!(d.apply(at(0), ok(), OFFLINE_AFTER), Some(true));
    assert!(d.online);
    d
}

/// A device that was online and has just gone offline at poll `OFFLINE_AFTER`.
fn offline_device() -> Device {
    let mut d = online_device();
    for n in 1..OFFLINE_AFTER {
        assert_eq!(d.apply(at(n.into()), timeout(), OFFLINE_AFTER), None);
    }
    let n = i64::from(OFFLINE_AFTER);
    assert_eq!(d.apply(at(n), timeout(), OFFLINE_AFTER), Some(false));
    d
}

#[test]
fn a_device_never_polled_is_offline_with_no_status_start() {
    let d = Device::default();
    assert!(!d.online);
    assert_eq!(d.since, None);
    assert_eq!(d.last_seen, None);
}

#[test]
fn a_first_successful_poll_is_the_came_online_transition() {
    let mut d = Device::default();
    assert_eq!(d.apply(at(0), ok(), OFFLINE_AFTER), Some(true));
    assert!(d.online);
    assert_eq!(d.since, Some(at(0)));
    assert_eq!(d.last_seen, Some(at(0)));
    assert_eq!(d.reading, Some("values"));
}

#[test]
fn a_first_failed_poll_is_offline_from_then_without_a_transition() {
    let mut d = Device::default();
    assert_eq!(d.apply(at(0), timeout(), OFFLINE_AFTER), None);
    assert!(!d.online, "never seen: offline until the first success");
    assert_eq!(d.since, Some(at(0)), "offline since its first poll");
    assert_eq!(d.last_seen, None);
    assert_eq!(d.last_error, Some(FailReason::Timeout));
}

#[test]
fn an_online_device_stays_online_through_fewer_than_offline_after_failures() {
    let mut d = online_device();
    for n in 1..i64::from(OFFLINE_AFTER) {
        assert_eq!(d.apply(at(n), timeout(), OFFLINE_AFTER), None, "poll {n}");
        assert!(d.online, "poll {n}");
    }
    assert_eq!(d.consecutive_failures, OFFLINE_AFTER - 1);
    assert_eq!(d.since, Some(at(0)), "still online since its first poll");
    assert_eq!(d.last_seen, Some(at(0)));
}

#[test]
fn an_online_device_goes_offline_at_the_offline_after_th_consecutive_failure() {
    let d = offline_device();
    assert!(!d.online);
    assert_eq!(d.since, Some(at(OFFLINE_AFTER.into())));
    assert_eq!(d.last_seen, Some(at(0)), "the last success is kept");
    assert_eq!(d.reading, Some("values"), "the last values are kept");
}

#[test]
fn a_success_between_failures_starts_the_count_again() {
    let mut d = online_device();
    let mut n = 1;
    for _round in 0..3 {
        for _ in 1..OFFLINE_AFTER {
            assert_eq!(d.apply(at(n), timeout(), OFFLINE_AFTER), None);
            n += 1;
        }
        assert_eq!(d.apply(at(n), ok(), OFFLINE_AFTER), None);
        assert_eq!(d.consecutive_failures, 0);
        assert_eq!(d.last_error, None, "a success clears the last error");
        n += 1;
    }
    assert!(d.online);
    assert_eq!(d.since, Some(at(0)));
}

#[test]
fn an_offline_device_stays_offline_while_its_polls_fail() {
    let mut d = offline_device();
    let went = d.since;
    for n in 10..20 {
        assert_eq!(d.apply(at(n), timeout(), OFFLINE_AFTER), None);
        assert!(!d.online);
    }
    assert_eq!(d.since, went, "offline since it went offline");
}

#[test]
fn an_offline_device_comes_online_at_its_first_success() {
    let mut d = offline_device();
    assert_eq!(d.apply(at(10), ok(), OFFLINE_AFTER), Some(true));
    assert!(d.online);
    assert_eq!(d.since, Some(at(10)));
    assert_eq!(d.last_seen, Some(at(10)));
    // Online again, the count starts from zero: it takes `offline_after`
    // failures again to go offline.
    for n in 11..10 + i64::from(OFFLINE_AFTER) {
        assert_eq!(d.apply(at(n), timeout(), OFFLINE_AFTER), None);
    }
    let n = 10 + i64::from(OFFLINE_AFTER);
    assert_eq!(d.apply(at(n), timeout(), OFFLINE_AFTER), Some(false));
}

#[test]
fn with_offline_after_one_the_first_failure_takes_a_device_offline() {
    let mut d = Device::default();
    assert_eq!(d.apply(at(0), ok(), 1), Some(true));
    assert_eq!(d.apply(at(1), timeout(), 1), Some(false));
    assert_eq!(d.since, Some(at(1)));
    assert_eq!(d.apply(at(2), ok(), 1), Some(true));
}

#[test]
fn every_poll_is_recorded_and_the_last_failure_is_the_one_shown() {
    let mut d = online_device();
    d.apply(at(1), timeout(), OFFLINE_AFTER);
    d.apply(at(2), Err(FailReason::NodeSilent), OFFLINE_AFTER);
    assert_eq!(d.last_poll, Some(at(2)));
    assert_eq!(d.last_error, Some(FailReason::NodeSilent));
    assert_eq!(d.consecutive_failures, 2);
}
