//! The night plan's objects, TALQ-shaped so the TALQ API maps onto them:
//! a **program** (TALQ ControlProgram) is a day's switch points; a
//! **calendar** (TALQ Calendar) picks the program for a date, first matching
//! rule by priority; an **assignment** puts a calendar on a scope; an
//! **emergency shift** moves or forces switching in a scope for a while.
//! Each object checks itself here, naming the field; what needs the
//! inventory (groups, scopes) is checked in `plan.rs`.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An offset from sunset or sunrise may be at most this many minutes.
pub const MAX_OFFSET_MIN: i32 = 180;

/// The book's limits (TALQ's `ControlService` advertises them): enough for
/// a city's every street, season and holiday, and small enough that a
/// plan is built in a blink.
pub const MAX_PROGRAMS: usize = 500;
pub const MAX_CALENDARS: usize = 500;
pub const MAX_POINTS_PER_PROGRAM: usize = 48;
pub const MAX_RULES_PER_CALENDAR: usize = 100;

/// The level a switch point sets: off, on (100 %) or dimmed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Level {
    /// `"on"` or `"off"`.
    Word(Switch),
    /// Dim to N % (0 is off, 100 is on).
    Percent(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    On,
    Off,
}

impl Level {
    /// The level in percent, 0 to 100.
    pub fn percent(self) -> f64 {
        match self {
            Level::Word(Switch::On) => 100.0,
            Level::Word(Switch::Off) => 0.0,
            Level::Percent(p) => p,
        }
    }

    pub fn is_on(self) -> bool {
        self.percent() > 0.0
    }
}

/// Sunrise or sunset (日出/日落) at the target's cabinet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SunEvent {
    Sunrise,
    Sunset,
}

/// Every other lamp (隔灯亮): the odd or the even positions, counted 1, 2, …
/// in inventory order along the lamp's circuit (or within the group the
/// point names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Alternate {
    Odd,
    Even,
}

/// One switch point: at a fixed local time (`at`, TALQ FixedTimeControl) or
/// at sunset/sunrise plus `offset_min` (TALQ AstroClockTimeControl), set
/// `level` on the lamps it targets: all of them, or a group's, or every
/// other one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchPoint {
    /// Local time `HH:MM` (00:00 to 23:59, or 24:00 for the day's end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sun: Option<SunEvent>,
    /// Minutes after (negative: before) the sun event, at most ±180.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset_min: i32,
    pub level: Level,
    /// Only the lamps of this group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Only every other lamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate: Option<Alternate>,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

/// When a switch point falls on a day, before the sun is looked up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// Minutes after local midnight (0 to 1440).
    Fixed(u32),
    Sun(SunEvent, i32),
}

impl SwitchPoint {
    /// The point's time rule, or what is wrong with it (the field named).
    pub fn when(&self) -> Result<When, String> {
        match (&self.at, self.sun) {
            (Some(at), None) => {
                if self.offset_min != 0 {
                    return Err("offset_min: only with `sun`".into());
                }
                parse_hhmm(at).map(When::Fixed)
            }
            (None, Some(sun)) => {
                if self.offset_min.abs() > MAX_OFFSET_MIN {
                    return Err(format!(
                        "offset_min: must be within ±{MAX_OFFSET_MIN} minutes, got {}",
                        self.offset_min
                    ));
                }
                Ok(When::Sun(sun, self.offset_min))
            }
            (Some(_), Some(_)) => Err("at: give either `at` or `sun`, not both".into()),
            (None, None) => Err("at: a switch point needs `at` (HH:MM) or `sun`".into()),
        }
    }

    pub fn check(&self) -> Result<(), String> {
        self.when()?;
        let p = self.level.percent();
        if !(0.0..=100.0).contains(&p) || p.is_nan() {
            return Err(format!("level: must be off, on or 0 to 100, got {p}"));
        }
        Ok(())
    }

    /// How the point is named in the audit and the preview.
    pub fn label(&self) -> String {
        let when = match (&self.at, self.sun) {
            (Some(at), _) => at.clone(),
            (None, Some(sun)) => {
                let s = if sun == SunEvent::Sunset {
                    "sunset"
                } else {
                    "sunrise"
                };
                match self.offset_min {
                    0 => s.to_string(),
                    o => format!("{s}{o:+}min"),
                }
            }
            (None, None) => "?".into(),
        };
        let mut label = when;
        if let Some(g) = &self.group {
            label.push_str(&format!(" group {g}"));
        }
        if let Some(a) = self.alternate {
            label.push_str(if a == Alternate::Odd { " odd" } else { " even" });
        }
        label
    }
}

/// `HH:MM` as minutes after midnight; 24:00 is the end of the day.
pub fn parse_hhmm(s: &str) -> Result<u32, String> {
    let bad = || format!("at: `{s}` is not a time HH:MM between 00:00 and 24:00");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A day's plan (TALQ ControlProgram).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Program {
    pub id: String,
    #[serde(default)]
    pub name: String,
    pub points: Vec<SwitchPoint>,
}

impl Program {
    pub fn check(&self) -> Result<(), String> {
        crate::control::check_name(&self.id).map_err(|e| format!("id: {e}"))?;
        if self.points.is_empty() {
            return Err("points: a program needs at least one switch point".into());
        }
        if self.points.len() > MAX_POINTS_PER_PROGRAM {
            return Err(format!(
                "points: at most {MAX_POINTS_PER_PROGRAM} switch points, got {}",
                self.points.len()
            ));
        }
        for (i, p) in self.points.iter().enumerate() {
            p.check().map_err(|e| format!("points[{i}].{e}"))?;
        }
        Ok(())
    }
}

/// One calendar rule: the dates and weekdays it matches and its program.
/// Dates are `YYYY-MM-DD` (one day), `--MM-DD` (that day every year), or a
/// range of either `A/B` (both ends included; an every-year range may wrap
/// the new year). No dates: every date; no weekdays: every weekday.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub name: String,
    pub program: String,
    /// Higher first; among equal priorities, the first listed.
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dates: Vec<String>,
    /// `mon` … `sun`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
}

/// A date rule parsed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DateSpan {
    Days(NaiveDate, NaiveDate),
    /// Month and day, every year, from the first to the second (wrapping).
    Yearly((u32, u32), (u32, u32)),
}

fn parse_date_end(s: &str) -> Option<Result<NaiveDate, (u32, u32)>> {
    if let Some(md) = s.strip_prefix("--") {
        let (m, d) = md.split_once('-')?;
        let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
        // Checked against a leap year, so --02-29 is a date.
        NaiveDate::from_ymd_opt(2024, m, d)?;
        return Some(Err((m, d)));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Ok)
}

fn parse_span(s: &str) -> Result<DateSpan, String> {
    let bad = || format!("dates: `{s}` is not YYYY-MM-DD, --MM-DD or a range A/B of one kind");
    let (a, b) = s.split_once('/').unwrap_or((s, s));
    match (parse_date_end(a), parse_date_end(b)) {
        (Some(Ok(a)), Some(Ok(b))) if a <= b => Ok(DateSpan::Days(a, b)),
        (Some(Err(a)), Some(Err(b))) => Ok(DateSpan::Yearly(a, b)),
        _ => Err(bad()),
    }
}

fn parse_weekday(s: &str) -> Result<Weekday, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return Err(format!("weekdays: `{s}` is not one of mon … sun")),
    })
}

impl Rule {
    pub fn check(&self) -> Result<(), String> {
        for d in &self.dates {
            parse_span(d)?;
        }
        for w in &self.weekdays {
            parse_weekday(w)?;
        }
        Ok(())
    }

    /// Whether the rule covers `date` (an unchecked rule matches nothing).
    pub fn matches(&self, date: NaiveDate) -> bool {
        let in_dates = self.dates.is_empty()
            || self.dates.iter().any(|d| match parse_span(d) {
                Ok(DateSpan::Days(a, b)) => a <= date && date <= b,
                Ok(DateSpan::Yearly(a, b)) => {
                    let md = (date.month(), date.day());
                    if a <= b {
                        a <= md && md <= b
                    } else {
                        md >= a || md <= b
                    }
                }
                Err(_) => false,
            });
        let in_weekdays = self.weekdays.is_empty()
            || self
                .weekdays
                .iter()
                .any(|w| parse_weekday(w).is_ok_and(|w| w == date.weekday()));
        in_dates && in_weekdays
    }
}

/// Ordered rules and a default (TALQ Calendar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The program on a date no rule matches; none: the lamps are left as
    /// they are that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_program: Option<String>,
}

impl Calendar {
    /// Checks the rules; `program_exists` tells a known program id.
    pub fn check(&self, program_exists: impl Fn(&str) -> bool) -> Result<(), String> {
        crate::control::check_name(&self.id).map_err(|e| format!("id: {e}"))?;
        if self.rules.len() > MAX_RULES_PER_CALENDAR {
            return Err(format!(
                "rules: at most {MAX_RULES_PER_CALENDAR} rules, got {}",
                self.rules.len()
            ));
        }
        for (i, r) in self.rules.iter().enumerate() {
            r.check().map_err(|e| format!("rules[{i}].{e}"))?;
            if !program_exists(&r.program) {
                return Err(format!(
                    "rules[{i}].program: unknown program `{}`",
                    r.program
                ));
            }
        }
        if let Some(p) = &self.default_program {
            if !program_exists(p) {
                return Err(format!("default_program: unknown program `{p}`"));
            }
        }
        // Two rules of one priority that match the same day would make the
        // order of listing decide a holiday: refused. Two years cover every
        // yearly pattern and weekday combination.
        let start = NaiveDate::from_ymd_opt(2027, 1, 1).expect("a date");
        for (i, a) in self.rules.iter().enumerate() {
            for (j, b) in self.rules.iter().enumerate().skip(i + 1) {
                if a.priority != b.priority || a.program == b.program {
                    continue;
                }
                let clash = a
                    .dates
                    .iter()
                    .chain(&b.dates)
                    .find_map(|d| match parse_span(d) {
                        Ok(DateSpan::Days(x, _)) => Some(x),
                        _ => None,
                    });
                let days = clash
                    .into_iter()
                    .flat_map(|d| d.iter_days().take(370))
                    .chain(start.iter_days().take(731));
                if let Some(day) = days.into_iter().find(|d| a.matches(*d) && b.matches(*d)) {
                    return Err(format!(
                        "rules[{j}].priority: overlaps rules[{i}] at the same priority {} (both match {day})",
                        a.priority
                    ));
                }
            }
        }
        Ok(())
    }

    /// The rule that decides `date` (index, rule), or `None` for the default.
    pub fn rule_for(&self, date: NaiveDate) -> Option<(usize, &Rule)> {
        let mut order: Vec<(usize, &Rule)> = self.rules.iter().enumerate().collect();
        order.sort_by_key(|(i, r)| (std::cmp::Reverse(r.priority), *i));
        order.into_iter().find(|(_, r)| r.matches(date))
    }

    /// The program for `date` and the rule's name (`default` without one).
    pub fn program_for(&self, date: NaiveDate) -> Option<(&str, String)> {
        match self.rule_for(date) {
            Some((i, r)) => Some((
                r.program.as_str(),
                if r.name.is_empty() {
                    format!("rules[{i}]")
                } else {
                    r.name.clone()
                },
            )),
            None => self
                .default_program
                .as_deref()
                .map(|p| (p, "default".to_string())),
        }
    }
}

/// Where a calendar or a shift applies; the most specific assignment wins
/// (lamps over group over circuit over cabinet over district over city).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    City,
    District(String),
    /// Its circuits, switched by the RTU's contactors (回路).
    Cabinet(String),
    Circuit {
        cabinet: String,
        circuit: u8,
    },
    Group(String),
    Lamps(Vec<String>),
}

impl Scope {
    /// Larger is more specific.
    pub fn specificity(&self) -> u8 {
        match self {
            Scope::City => 0,
            Scope::District(_) => 1,
            Scope::Cabinet(_) => 2,
            Scope::Circuit { .. } => 3,
            Scope::Group(_) => 4,
            Scope::Lamps(_) => 5,
        }
    }

    /// Switched by contactors rather than by each lamp's controller.
    pub fn by_circuit(&self) -> bool {
        matches!(self, Scope::Cabinet(_) | Scope::Circuit { .. })
    }
}

/// A calendar on a scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub id: String,
    pub calendar: String,
    pub scope: Scope,
}

/// A temporary rule for a scope, above calendars and below manual
/// overrides: between `from` and `until`, switch-on points move
/// `on_earlier_min` earlier and switch-off points `off_later_min` later
/// (bad weather), or every lamp in the scope is held at `force` (fog: all on
/// until sunrise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyShift {
    pub id: String,
    pub scope: Scope,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    #[serde(default)]
    pub on_earlier_min: u32,
    #[serde(default)]
    pub off_later_min: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<Level>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl EmergencyShift {
    pub fn check(&self) -> Result<(), String> {
        crate::control::check_name(&self.id).map_err(|e| format!("id: {e}"))?;
        if self.until <= self.from {
            return Err("until: must be after `from`".into());
        }
        let limit = MAX_OFFSET_MIN as u32;
        if self.on_earlier_min > limit || self.off_later_min > limit {
            return Err(format!(
                "on_earlier_min: shifts are at most {limit} minutes"
            ));
        }
        if let Some(l) = self.force {
            let p = l.percent();
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("force: must be off, on or 0 to 100, got {p}"));
            }
        } else if self.on_earlier_min == 0 && self.off_later_min == 0 {
            return Err(
                "force: a shift moves switching (on_earlier_min, off_later_min) or forces a level"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn active_at(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.until
    }
}

/// Every object of the night plan: what the settings' schedule file holds
/// and what the API edits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Book {
    #[serde(default)]
    pub programs: Vec<Program>,
    #[serde(default)]
    pub calendars: Vec<Calendar>,
    #[serde(default)]
    pub assignments: Vec<Assignment>,
    #[serde(default)]
    pub emergency_shifts: Vec<EmergencyShift>,
}

impl Book {
    pub fn program(&self, id: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.id == id)
    }

    pub fn calendar(&self, id: &str) -> Option<&Calendar> {
        self.calendars.iter().find(|c| c.id == id)
    }

    /// More programs or calendars than the book keeps, said so.
    pub fn over_limits(&self) -> Option<String> {
        if self.programs.len() > MAX_PROGRAMS {
            return Some(format!(
                "programs: at most {MAX_PROGRAMS}, got {}",
                self.programs.len()
            ));
        }
        (self.calendars.len() > MAX_CALENDARS).then(|| {
            format!(
                "calendars: at most {MAX_CALENDARS}, got {}",
                self.calendars.len()
            )
        })
    }

    /// Every problem of the objects on their own and of their references
    /// to one another (the inventory's part is `plan::check_scopes`).
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.over_limits().into_iter().collect();
        let mut ids = std::collections::BTreeSet::new();
        for (i, p) in self.programs.iter().enumerate() {
            if let Err(e) = p.check() {
                out.push(format!("programs[{i}].{e}"));
            }
            if !ids.insert(("program", p.id.as_str())) {
                out.push(format!("programs[{i}].id: `{}` is defined twice", p.id));
            }
        }
        for (i, c) in self.calendars.iter().enumerate() {
            if let Err(e) = c.check(|p| self.program(p).is_some()) {
                out.push(format!("calendars[{i}].{e}"));
            }
            if !ids.insert(("calendar", c.id.as_str())) {
                out.push(format!("calendars[{i}].id: `{}` is defined twice", c.id));
            }
        }
        for (i, a) in self.assignments.iter().enumerate() {
            if let Err(e) = crate::control::check_name(&a.id) {
                out.push(format!("assignments[{i}].id: {e}"));
            }
            if self.calendar(&a.calendar).is_none() {
                out.push(format!(
                    "assignments[{i}].calendar: unknown calendar `{}`",
                    a.calendar
                ));
            }
            if !ids.insert(("assignment", a.id.as_str())) {
                out.push(format!("assignments[{i}].id: `{}` is defined twice", a.id));
            }
        }
        for (i, s) in self.emergency_shifts.iter().enumerate() {
            if let Err(e) = s.check() {
                out.push(format!("emergency_shifts[{i}].{e}"));
            }
            if !ids.insert(("shift", s.id.as_str())) {
                out.push(format!(
                    "emergency_shifts[{i}].id: `{}` is defined twice",
                    s.id
                ));
            }
        }
        out
    }
}

/// A fixed local time on a date: `minutes` after midnight (1440 is the
/// next midnight).
pub fn local_time(date: NaiveDate, minutes: u32) -> chrono::NaiveDateTime {
    let day = if minutes >= 1440 {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    let m = minutes % 1440;
    day.and_time(NaiveTime::from_hms_opt(m / 60, m % 60, 0).expect("a time of day"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(program: &str, priority: i32, dates: &[&str], weekdays: &[&str]) -> Rule {
        Rule {
            name: String::new(),
            program: program.into(),
            priority,
            dates: dates.iter().map(|s| s.to_string()).collect(),
            weekdays: weekdays.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn switch_point_times_are_checked_with_the_field_named() {
        assert_eq!(parse_hhmm("23:30"), Ok(1410));
        assert_eq!(parse_hhmm("24:00"), Ok(1440));
        for bad in ["24:01", "7:30", "12:60", "ab:cd", "25:00", ""] {
            assert!(parse_hhmm(bad).unwrap_err().starts_with("at:"), "{bad}");
        }
        let p = |j: serde_json::Value| serde_json::from_value::<SwitchPoint>(j).unwrap();
        let far = p(serde_json::json!({"sun": "sunset", "offset_min": 181, "level": "on"}));
        assert!(far.check().unwrap_err().starts_with("offset_min:"));
        let dim = p(serde_json::json!({"at": "23:30", "level": 120}));
        assert!(dim.check().unwrap_err().starts_with("level:"));
        let ok = p(serde_json::json!({"at": "23:30", "level": "off", "alternate": "even"}));
        assert_eq!(ok.when(), Ok(When::Fixed(1410)));
        assert_eq!(ok.level.percent(), 0.0);
        assert_eq!(ok.label(), "23:30 even");
    }

    #[test]
    fn the_first_matching_rule_by_priority_wins() {
        let cal = Calendar {
            id: "city".into(),
            name: String::new(),
            rules: vec![
                rule("weekend", 0, &[], &["sat", "sun"]),
                rule(
                    "holiday",
                    10,
                    &["--10-01/--10-07", "2027-01-28/2027-02-03"],
                    &[],
                ),
                rule(
                    "winter",
                    0,
                    &["--11-01/--02-28"],
                    &["mon", "tue", "wed", "thu", "fri"],
                ),
            ],
            default_program: Some("normal".into()),
        };
        let prog = |s: &str| cal.program_for(d(s)).map(|(p, _)| p.to_string());
        assert_eq!(
            prog("2026-10-03").as_deref(),
            Some("holiday"),
            "a Saturday in the National Day week"
        );
        assert_eq!(prog("2026-10-10").as_deref(), Some("weekend"));
        assert_eq!(
            prog("2026-12-21").as_deref(),
            Some("winter"),
            "a Monday; the range wraps the year"
        );
        assert_eq!(
            prog("2027-02-01").as_deref(),
            Some("holiday"),
            "a one-off range"
        );
        assert_eq!(prog("2026-06-22").as_deref(), Some("normal"));
    }

    #[test]
    fn the_shipped_sample_plan_is_valid() {
        let book: Book = serde_json::from_str(include_str!("../../config/schedule.json")).unwrap();
        assert_eq!(book.problems(), Vec::<String>::new());
        let cal = book.calendar("city").unwrap();
        assert_eq!(cal.program_for(d("2026-07-01")).unwrap().0, "summer-night");
        assert_eq!(cal.program_for(d("2026-10-02")).unwrap().0, "holiday-night");
        assert_eq!(cal.program_for(d("2026-12-21")).unwrap().0, "winter-night");
    }

    #[test]
    fn overlapping_rules_of_one_priority_are_refused() {
        let mut cal = Calendar {
            id: "c".into(),
            name: String::new(),
            rules: vec![
                rule("a", 0, &["--06-01/--06-30"], &[]),
                rule("b", 0, &[], &["sun"]),
            ],
            default_program: None,
        };
        let err = cal.check(|_| true).unwrap_err();
        assert!(
            err.starts_with("rules[1].priority: overlaps rules[0]"),
            "{err}"
        );
        cal.rules[1].priority = 1;
        assert_eq!(cal.check(|_| true), Ok(()));
        cal.rules[1].dates = vec!["2026-02-30".into()];
        assert!(cal
            .check(|_| true)
            .unwrap_err()
            .starts_with("rules[1].dates:"));
    }
}
