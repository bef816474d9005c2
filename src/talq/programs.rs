//! Our programs (`schedule::model::Program`) as TALQ control programs
//! (`ControlProgramOne`), both ways, only where a program runs exactly as
//! TALQ reads it. THE rules (docs/talq.md, "Calendars, programs, assign
//! commands", says why):
//! - Fixed-time controls only (a `FixedTimeControl` per point, `startTime`
//!   to `at`), or astro controls only (an `AstroClockTimeControl` per point,
//!   operation `Set`, `solarEventType` and `offset` to `sun` and
//!   `offset_min`), never both: TALQ applies an astro control over the
//!   fixed-time state, ours lets the later point win.
//! - Commands are `LevelState`s, whole percents (the lamp actuator's rule,
//!   `overrides::level_value`); ramp times are ignored, as for overrides.
//! - Active periods: none, or one `AbsoluteActivePeriod` of the whole day
//!   (`startTime` equal to `endTime`); our calendar picks one program per
//!   local date, not per hour. `dynamicControls` are refused.
//! - Times are local wall times (`gateway.time_zone`): written `HH:MM:SS`
//!   with the zone's offset now, read with no offset or one the zone uses;
//!   seconds are dropped (`programSecondsSupported: false`).
//! - A program of ours with a point for a group or every other lamp, at
//!   24:00, of a fractional level, or two fixed points at one time, has no
//!   TALQ form: it is not offered (`/control-programs` leaves it out).

use super::overrides::{level_value, StateBody};
use super::TalqError;
use crate::schedule::model::{Level, Program, SunEvent, SwitchPoint, When};
use chrono::{DateTime, Datelike, FixedOffset, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};

/// The program type this gateway serves.
pub(super) const PROGRAM_TYPE: &str = "ControlProgramOne";

/// `ControlProgramOne` as a CMS sends it (other fields are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProgramBody {
    #[serde(rename = "type")]
    kind: String,
    pub(super) id: String,
    active_periods: Vec<PeriodBody>,
    fixed_time_controls: Vec<FixedBody>,
    #[serde(default)]
    astro_clock_time_controls: Vec<AstroBody>,
    #[serde(default)]
    dynamic_controls: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PeriodBody {
    name: String,
    start_time: Option<String>,
    end_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FixedBody {
    start_time: String,
    command: CommandBaseBody,
}

/// `CommandBase`: its state (ramp times are ignored).
#[derive(Debug, Deserialize)]
struct CommandBaseBody {
    state: StateBody,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AstroBody {
    offset: i64,
    solar_event_type: String,
    operation: String,
    command: CommandBaseBody,
}

/// The offset the zone has at `now`, which written times carry.
pub(super) fn offset_now(tz: Tz, now: DateTime<Utc>) -> FixedOffset {
    tz.offset_from_utc_datetime(&now.naive_utc()).fix()
}

/// Whether the zone uses `offset` in `now`'s year (its standard or its
/// summer time).
fn zone_uses(tz: Tz, now: DateTime<Utc>, offset: FixedOffset) -> bool {
    let year = now.with_timezone(&tz).year();
    [1, 7].into_iter().any(|month| {
        tz.with_ymd_and_hms(year, month, 1, 12, 0, 0)
            .single()
            .is_some_and(|t| t.offset().fix() == offset)
    }) || offset_now(tz, now) == offset
}

/// A TALQ `time` (`HH:MM:SS`, a fraction, an offset or `Z` allowed) as
/// minutes after local midnight; the seconds are dropped.
pub(super) fn parse_time(s: &str, tz: Tz, now: DateTime<Utc>) -> Result<u32, String> {
    let bad = || format!("`{s}` is not a time HH:MM:SS");
    let (clock, offset) = match s.find(['Z', 'z', '+', '-']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let clock = clock.split('.').next().unwrap_or_default();
    let parts: Vec<&str> = clock.split(':').collect();
    let [h, m, sec] = parts[..] else {
        return Err(bad());
    };
    let num = |x: &str, max: u32| -> Result<u32, String> {
        if x.len() != 2 {
            return Err(bad());
        }
        x.parse::<u32>().ok().filter(|&v| v <= max).ok_or_else(bad)
    };
    let (h, m) = (num(h, 23)?, num(m, 59)?);
    num(sec, 60)?;
    if let Some(o) = offset {
        let fixed = if o.eq_ignore_ascii_case("z") {
            FixedOffset::east_opt(0)
        } else {
            DateTime::parse_from_rfc3339(&format!("2000-01-01T00:00:00{o}"))
                .ok()
                .map(|t| *t.offset())
        }
        .ok_or_else(bad)?;
        if !zone_uses(tz, now, fixed) {
            return Err(format!(
                "`{s}`: times are local wall times in {} ({}); give one without an offset or with the zone's",
                tz.name(),
                offset_now(tz, now)
            ));
        }
    }
    Ok(h * 60 + m)
}

/// Minutes after midnight as a TALQ `time` with `offset`.
pub(super) fn write_time(minutes: u32, offset: FixedOffset) -> String {
    format!("{:02}:{:02}:00{offset}", minutes / 60, minutes % 60)
}

/// A whole-percent level as a TALQ command, if it is one.
fn command_of(level: Level) -> Option<Value> {
    let p = level.percent();
    (p.fract() == 0.0 && (0.0..=100.0).contains(&p))
        .then(|| json!({"state": super::values::level_state(p as u8)}))
}

/// The program as TALQ's `ControlProgramOne`, or why it has no TALQ form.
pub(super) fn to_talq(p: &Program, owner: &str, offset: FixedOffset) -> Result<Value, String> {
    let mut fixed: Vec<(u32, Value)> = Vec::new();
    let mut astro = Vec::new();
    for (i, pt) in p.points.iter().enumerate() {
        if pt.group.is_some() || pt.alternate.is_some() {
            return Err(format!(
                "points[{i}] is for a group or every other lamp, which TALQ cannot say"
            ));
        }
        let command = command_of(pt.level)
            .ok_or_else(|| format!("points[{i}].level is not a whole percent"))?;
        match pt.when()? {
            When::Fixed(m) if m >= 1440 => {
                return Err(format!("points[{i}] is at 24:00, which TALQ cannot say"))
            }
            When::Fixed(m) => {
                if fixed.iter().any(|(x, _)| *x == m) {
                    return Err(format!("points[{i}] shares its time with another point"));
                }
                fixed.push((
                    m,
                    json!({"startTime": write_time(m, offset), "command": command}),
                ));
            }
            When::Sun(sun, offset_min) => astro.push(json!({
                "offset": offset_min,
                "solarEventType": if sun == SunEvent::Sunset { "sunset" } else { "sunrise" },
                "operation": "Set",
                "command": command,
            })),
        }
    }
    if !fixed.is_empty() && !astro.is_empty() {
        return Err(
            "it mixes fixed and sun points: TALQ applies sun points over the fixed ones, ours let the later point win"
                .into(),
        );
    }
    // TALQ lists fixed-time controls in increasing time.
    fixed.sort_by_key(|(m, _)| *m);
    let mut out = json!({
        "type": PROGRAM_TYPE,
        "id": p.id,
        "ownerCMS": owner,
        "activePeriods": [],
        "fixedTimeControls": fixed.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    });
    if !astro.is_empty() {
        out["astroClockTimeControls"] = Value::Array(astro);
    }
    Ok(out)
}

/// Whether the program has a TALQ form (is offered over TALQ).
pub(super) fn offered(p: &Program, offset: FixedOffset) -> bool {
    to_talq(p, "", offset).is_ok()
}

/// A CMS's program as ours (`name` kept from the one it replaces), or what
/// is wrong with it: `Unsupported` for TALQ this gateway does not run,
/// `Invalid` for what the book refuses.
pub(super) fn from_talq(
    b: &ProgramBody,
    name: String,
    tz: Tz,
    now: DateTime<Utc>,
) -> Result<Program, TalqError> {
    let id = &b.id;
    let unsupported = |m: String| TalqError::Unsupported(format!("program `{id}`: {m}"));
    let invalid = |m: String| TalqError::Invalid(format!("program `{id}`: {m}"));
    if b.kind != PROGRAM_TYPE {
        return Err(unsupported(format!(
            "type: `{}` is not served ({PROGRAM_TYPE} only)",
            b.kind
        )));
    }
    if !b.dynamic_controls.is_empty() {
        return Err(unsupported("dynamicControls: not supported".into()));
    }
    match &b.active_periods[..] {
        [] => {}
        [p] if p.name == "AbsoluteActivePeriod"
            && p.start_time.is_some()
            && p.start_time == p.end_time => {}
        _ => {
            return Err(unsupported(
                "activePeriods: none, or one AbsoluteActivePeriod of the whole day (startTime equal to endTime); \
                 a calendar here picks one program per local date"
                    .into(),
            ))
        }
    }
    if !b.fixed_time_controls.is_empty() && !b.astro_clock_time_controls.is_empty() {
        return Err(unsupported(
            "fixedTimeControls and astroClockTimeControls together: not supported (TALQ applies astro \
             controls over the fixed ones; this gateway's programs let the later point win)"
                .into(),
        ));
    }
    let level = |state: &StateBody, field: String| -> Result<Level, TalqError> {
        level_value(state)
            .map(|v| Level::Percent(f64::from(v)))
            .map_err(|e| invalid(format!("{field}.command.state.{e}")))
    };
    let mut points = Vec::new();
    let mut times = Vec::new();
    for (i, f) in b.fixed_time_controls.iter().enumerate() {
        let field = format!("fixedTimeControls[{i}]");
        let m = parse_time(&f.start_time, tz, now)
            .map_err(|e| invalid(format!("{field}.startTime: {e}")))?;
        if times.contains(&m) {
            return Err(invalid(format!(
                "{field}.startTime: another control starts at the same minute"
            )));
        }
        times.push(m);
        points.push(SwitchPoint {
            at: Some(format!("{:02}:{:02}", m / 60, m % 60)),
            sun: None,
            offset_min: 0,
            level: level(&f.command.state, field)?,
            group: None,
            alternate: None,
        });
    }
    for (i, a) in b.astro_clock_time_controls.iter().enumerate() {
        let field = format!("astroClockTimeControls[{i}]");
        if a.operation != "Set" {
            return Err(unsupported(format!(
                "{field}.operation: `{}` is not supported (Set only: with no fixed-time controls there is no state to act on)",
                a.operation
            )));
        }
        let sun = match a.solar_event_type.as_str() {
            "sunset" => SunEvent::Sunset,
            "sunrise" => SunEvent::Sunrise,
            other => {
                return Err(invalid(format!(
                    "{field}.solarEventType: `{other}` is not sunrise or sunset"
                )))
            }
        };
        let point = SwitchPoint {
            at: None,
            sun: Some(sun),
            offset_min: i32::try_from(a.offset).unwrap_or(i32::MAX),
            level: level(&a.command.state, field.clone())?,
            group: None,
            alternate: None,
        };
        point.check().map_err(|e| invalid(format!("{field}.{e}")))?;
        points.push(point);
    }
    let program = Program {
        id: id.clone(),
        name,
        points,
    };
    program.check().map_err(invalid)?;
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-12-08T01:00:00Z".parse().unwrap()
    }

    #[test]
    fn times_are_local_wall_times() {
        let tz = chrono_tz::Asia::Shanghai;
        assert_eq!(parse_time("23:30:00", tz, now()), Ok(1410));
        assert_eq!(parse_time("23:30:59.5+08:00", tz, now()), Ok(1410));
        assert!(parse_time("23:30:00Z", tz, now())
            .unwrap_err()
            .contains("Asia/Shanghai"));
        for bad in ["24:00:00", "7:30:00", "23:30", "ab:cd:ef", ""] {
            assert!(parse_time(bad, tz, now()).is_err(), "{bad}");
        }
        let berlin = chrono_tz::Europe::Berlin;
        // Summer time's offset is the zone's too, in December.
        assert_eq!(parse_time("22:00:00+02:00", berlin, now()), Ok(1320));
        assert_eq!(write_time(1410, offset_now(tz, now())), "23:30:00+08:00");
    }

    fn program(points: Value) -> Program {
        serde_json::from_value(json!({"id": "p", "points": points})).unwrap()
    }

    #[test]
    fn only_programs_that_run_as_talq_reads_them_are_offered() {
        let off = offset_now(chrono_tz::Asia::Shanghai, now());
        let fixed = program(json!([{"at": "23:30", "level": 50}, {"at": "18:00", "level": "on"}]));
        let v = to_talq(&fixed, "", off).unwrap();
        assert_eq!(v["fixedTimeControls"][0]["startTime"], "18:00:00+08:00");
        assert_eq!(v["fixedTimeControls"][1]["command"]["state"]["value"], 50);
        let sun = program(json!([{"sun": "sunset", "offset_min": -10, "level": "on"}]));
        assert_eq!(
            to_talq(&sun, "", off).unwrap()["astroClockTimeControls"][0]["offset"],
            -10
        );
        for bad in [
            json!([{"sun": "sunset", "level": "on"}, {"at": "23:30", "level": 50}]),
            json!([{"at": "23:30", "level": "off", "alternate": "even"}]),
            json!([{"at": "24:00", "level": "off"}]),
            json!([{"at": "23:30", "level": 37.5}]),
        ] {
            assert!(to_talq(&program(bad.clone()), "", off).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_cms_program_is_read_or_refused_naming_the_field() {
        let tz = chrono_tz::Asia::Shanghai;
        let read = |v: Value| {
            let b: ProgramBody = serde_json::from_value(v).unwrap();
            from_talq(&b, String::new(), tz, now())
        };
        let level = |l: u8| json!({"state": {"name": "LevelState", "value": l}});
        let p = read(json!({"type": "ControlProgramOne", "id": "n", "ownerCMS": "x",
            "activePeriods": [{"name": "AbsoluteActivePeriod", "startTime": "00:00:00", "endTime": "00:00:00"}],
            "fixedTimeControls": [{"startTime": "18:00:00", "command": level(100)},
                                  {"startTime": "23:30:00+08:00", "command": level(40)}]}))
        .unwrap();
        assert_eq!(p.points[1].at.as_deref(), Some("23:30"));
        assert_eq!(p.points[1].level.percent(), 40.0);
        let both = read(
            json!({"type": "ControlProgramOne", "id": "n", "activePeriods": [],
            "fixedTimeControls": [{"startTime": "18:00:00", "command": level(100)}],
            "astroClockTimeControls": [{"offset": 0, "solarEventType": "sunrise", "operation": "Set", "command": level(0)}]}),
        );
        assert!(matches!(both, Err(TalqError::Unsupported(_))), "{both:?}");
        let far = read(
            json!({"type": "ControlProgramOne", "id": "n", "activePeriods": [],
            "fixedTimeControls": [],
            "astroClockTimeControls": [{"offset": 200, "solarEventType": "sunset", "operation": "Set", "command": level(100)}]}),
        );
        let Err(TalqError::Invalid(m)) = far else {
            panic!("{far:?}")
        };
        assert!(m.contains("astroClockTimeControls[0].offset_min"), "{m}");
        let evening = read(
            json!({"type": "ControlProgramOne", "id": "n", "activePeriods": [
            {"name": "AbsoluteActivePeriod", "startTime": "18:00:00", "endTime": "06:00:00"}],
            "fixedTimeControls": [{"startTime": "18:00:00", "command": level(100)}]}),
        );
        assert!(matches!(evening, Err(TalqError::Unsupported(_))));
        let dim = read(
            json!({"type": "ControlProgramOne", "id": "n", "activePeriods": [],
            "fixedTimeControls": [{"startTime": "18:00:00", "command": {"state": {"name": "LevelState", "value": 101}}}]}),
        );
        assert!(matches!(dim, Err(TalqError::Invalid(_))));
    }
}
