//! Our calendars (`schedule::model::Calendar`) as TALQ calendars, both
//! ways. THE rules:
//! - A TALQ calendar's `id` is our calendar's id, and its address on
//!   `/calendars/{calendarAddress}` (TALQ gives a calendar no other); a
//!   program's likewise. A lamp actuator's `calendarID` names it.
//! - Rule order: TALQ's first matching rule wins; ours is by priority, then
//!   listing (`Calendar::rule_for`). Ours are written in that order; a
//!   CMS's rules get falling priorities in its order.
//! - A rule of ours with several date spans is one TALQ rule per span
//!   (`startDate`/`endDate`: `YYYY-MM-DD`, or `--MM-DD` for every year,
//!   which may wrap the new year), its weekdays a `ccDay` condition on each.
//! - A CMS's rule: `startDate`/`endDate` both dates or both days of the
//!   year (one left out: open on that side); a `ccDay` condition without
//!   `occurrences`; or a `ccDate` condition of days of the year
//!   (`--MM-DD`, spans allowed) without `startDate`/`endDate`.
//! - A calendar is offered over TALQ when every program it names is
//!   (programs.rs); one that is not is left out, and a lamp following it
//!   shows no `calendarID`.

use super::TalqError;
use crate::schedule::model::{Book, Calendar, Rule};
use chrono::FixedOffset;
use serde::Deserialize;
use serde_json::{json, Value};

/// Open ends of a span of dates, in our form (`A/B` both of one kind).
const FIRST_DATE: &str = "0001-01-01";
const LAST_DATE: &str = "9999-12-31";
/// TALQ's defaults of `startDate` and `endDate`: every day of the year.
const YEAR_START: &str = "--01-01";
const YEAR_END: &str = "--12-31";

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `Calendar` as a CMS sends it (other fields are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CalendarBody {
    pub(super) id: String,
    #[serde(default)]
    rules: Vec<RuleBody>,
    default_program: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleBody {
    start_date: Option<String>,
    end_date: Option<String>,
    condition: Option<ConditionBody>,
    program: String,
}

#[derive(Debug, Deserialize)]
struct ConditionBody {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    days: Vec<DaysBody>,
    #[serde(default)]
    occurrences: Vec<String>,
    #[serde(default)]
    dates: Vec<DatesBody>,
}

#[derive(Debug, Deserialize)]
struct DaysBody {
    start: u8,
    end: Option<u8>,
}

#[derive(Debug, Deserialize)]
struct DatesBody {
    start: String,
    end: Option<String>,
}

/// Every program the calendar names (its rules' and its default).
pub(super) fn programs_of(c: &Calendar) -> impl Iterator<Item = &str> {
    c.rules
        .iter()
        .map(|r| r.program.as_str())
        .chain(c.default_program.as_deref())
}

/// Whether the calendar `id` is offered over TALQ (module doc), its
/// programs' times written with `offset`.
pub(super) fn offered(book: &Book, id: &str, offset: FixedOffset) -> bool {
    book.calendar(id).is_some_and(|c| {
        programs_of(c).all(|p| {
            book.program(p)
                .is_some_and(|p| super::programs::offered(p, offset))
        })
    })
}

fn is_yearly(s: &str) -> bool {
    s.starts_with("--")
}

/// The calendar as TALQ's `Calendar`.
pub(super) fn to_talq(c: &Calendar, owner: &str) -> Value {
    let mut order: Vec<(usize, &Rule)> = c.rules.iter().enumerate().collect();
    order.sort_by_key(|(i, r)| (std::cmp::Reverse(r.priority), *i));
    let mut rules = Vec::new();
    for (_, r) in order {
        let condition = (!r.weekdays.is_empty()).then(|| {
            let days: Vec<Value> = r
                .weekdays
                .iter()
                .filter_map(|w| {
                    WEEKDAYS
                        .iter()
                        .position(|d| d.eq_ignore_ascii_case(w))
                        .map(|n| json!({"start": n + 1}))
                })
                .collect();
            json!({"type": "ccDay", "days": days})
        });
        let spans: Vec<Option<&String>> = if r.dates.is_empty() {
            vec![None]
        } else {
            r.dates.iter().map(Some).collect()
        };
        for span in spans {
            let mut rule = json!({"program": r.program});
            if let Some(span) = span {
                let (a, b) = span.split_once('/').unwrap_or((span, span));
                if a != FIRST_DATE && a != YEAR_START {
                    rule["startDate"] = json!(a);
                }
                if b != LAST_DATE && b != YEAR_END {
                    rule["endDate"] = json!(b);
                }
            }
            if let Some(c) = &condition {
                rule["condition"] = c.clone();
            }
            rules.push(rule);
        }
    }
    let mut out = json!({"id": c.id, "ownerCMS": owner, "rules": rules});
    if let Some(d) = &c.default_program {
        out["defaultProgram"] = json!(d);
    }
    out
}

/// A CMS's calendar as ours (`name` kept from the one it replaces), or what
/// is wrong with it. The programs it names are checked by the caller.
pub(super) fn from_talq(b: &CalendarBody, name: String) -> Result<Calendar, TalqError> {
    let id = &b.id;
    let invalid = |m: String| TalqError::Invalid(format!("calendar `{id}`: {m}"));
    let unsupported = |m: String| TalqError::Unsupported(format!("calendar `{id}`: {m}"));
    let n = b.rules.len();
    let mut rules = Vec::with_capacity(n);
    for (i, r) in b.rules.iter().enumerate() {
        let field = format!("rules[{i}]");
        // TALQ's defaults say no more than leaving the end out.
        let start = r.start_date.as_deref().filter(|s| *s != YEAR_START);
        let end = r.end_date.as_deref().filter(|s| *s != YEAR_END);
        let mut dates = match (start, end) {
            (None, None) => Vec::new(),
            (Some(a), Some(b)) if is_yearly(a) != is_yearly(b) => {
                return Err(invalid(format!(
                    "{field}.endDate: `{a}` and `{b}` must both be dates (YYYY-MM-DD) or both days of the year (--MM-DD)"
                )))
            }
            (Some(a), Some(b)) => vec![format!("{a}/{b}")],
            (Some(a), None) => vec![format!(
                "{a}/{}",
                if is_yearly(a) { YEAR_END } else { LAST_DATE }
            )],
            (None, Some(b)) => vec![format!(
                "{}/{b}",
                if is_yearly(b) { YEAR_START } else { FIRST_DATE }
            )],
        };
        let mut weekdays = Vec::new();
        if let Some(c) = &r.condition {
            match c.kind.as_str() {
                "ccDay" => {
                    if !c.occurrences.is_empty() {
                        return Err(unsupported(format!(
                            "{field}.condition.occurrences: the nth weekday of a month is not supported (ccDaySupport noOccurrences)"
                        )));
                    }
                    for (j, d) in c.days.iter().enumerate() {
                        let end = d.end.unwrap_or(d.start);
                        if !(1..=7).contains(&d.start) || !(d.start..=7).contains(&end) {
                            return Err(invalid(format!(
                                "{field}.condition.days[{j}]: weekdays are 1 (Monday) to 7, an end not before its start"
                            )));
                        }
                        for w in d.start..=end {
                            let w = WEEKDAYS[usize::from(w - 1)].to_string();
                            if !weekdays.contains(&w) {
                                weekdays.push(w);
                            }
                        }
                    }
                }
                "ccDate" => {
                    if !dates.is_empty() {
                        return Err(unsupported(format!(
                            "{field}.condition: a ccDate condition within startDate/endDate is not supported"
                        )));
                    }
                    for (j, d) in c.dates.iter().enumerate() {
                        let end = d.end.as_deref().unwrap_or(&d.start);
                        if !is_yearly(&d.start) || !is_yearly(end) || d.start.starts_with("---") {
                            return Err(unsupported(format!(
                                "{field}.condition.dates[{j}]: days of the year (--MM-DD) only (ccDateSupport dayOfYearOnly)"
                            )));
                        }
                        dates.push(format!("{}/{end}", d.start));
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "{field}.condition.type: `{other}` is not ccDay or ccDate"
                    )))
                }
            }
        }
        let rule = Rule {
            name: String::new(),
            program: r.program.clone(),
            // TALQ's order: the first listed is the first to match.
            priority: i32::try_from(n - 1 - i).unwrap_or(i32::MAX),
            dates,
            weekdays,
        };
        rule.check().map_err(|e| invalid(format!("{field}.{e}")))?;
        rules.push(rule);
    }
    let calendar = Calendar {
        id: id.clone(),
        name,
        rules,
        default_program: b.default_program.clone(),
    };
    // Program ids are the caller's to check (relatedResourceNotFound).
    calendar.check(|_| true).map_err(invalid)?;
    Ok(calendar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn read(v: Value) -> Result<Calendar, TalqError> {
        from_talq(&serde_json::from_value(v).unwrap(), String::new())
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_first_talq_rule_to_match_wins_here_too() {
        let c = read(json!({"id": "city", "ownerCMS": "x", "defaultProgram": "night", "rules": [
            {"program": "holiday", "startDate": "2026-12-25", "endDate": "2026-12-26"},
            {"program": "weekend", "condition": {"type": "ccDay", "days": [{"start": 6, "end": 7}]}},
            {"program": "winter", "startDate": "--11-01", "endDate": "--02-28"},
            {"program": "spring", "startDate": "2027-03-01"},
        ]}))
        .unwrap();
        let prog = |s: &str| c.program_for(d(s)).unwrap().0.to_string();
        assert_eq!(
            prog("2026-12-26"),
            "holiday",
            "a Saturday, but listed first"
        );
        assert_eq!(prog("2026-12-27"), "weekend");
        assert_eq!(
            prog("2026-12-28"),
            "winter",
            "a Monday in a span over the new year"
        );
        assert_eq!(prog("2030-06-03"), "spring", "open after its start");
        assert_eq!(prog("2026-06-01"), "night");
        // And back: the same rules, in order.
        let v = to_talq(&c, "x");
        assert_eq!(v["rules"][0]["startDate"], "2026-12-25");
        assert_eq!(
            v["rules"][1]["condition"]["days"],
            json!([{"start": 6}, {"start": 7}])
        );
        assert_eq!(
            v["rules"][3],
            json!({"program": "spring", "startDate": "2027-03-01"})
        );
        let again = read(v).unwrap();
        assert_eq!(again.rules, c.rules);
    }

    #[test]
    fn a_rule_of_several_spans_is_one_talq_rule_each() {
        let c: Calendar = serde_json::from_value(json!({"id": "c", "rules": [
            {"program": "a", "dates": ["--10-01/--10-07", "2027-02-06"], "weekdays": ["sat"]},
            {"program": "b", "priority": 5}
        ]}))
        .unwrap();
        let v = to_talq(&c, "");
        let rules = v["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[0]["program"], "b", "the higher priority first");
        assert_eq!(rules[2]["startDate"], "2027-02-06");
        assert_eq!(rules[2]["endDate"], "2027-02-06");
        assert_eq!(rules[2]["condition"]["days"], json!([{"start": 6}]));
    }

    #[test]
    fn what_cannot_be_kept_exactly_is_refused() {
        for (bad, unsupported) in [
            (
                json!({"program": "a", "startDate": "2027-01-01", "endDate": "--02-01"}),
                false,
            ),
            (
                json!({"program": "a", "condition": {"type": "ccDay", "days": [{"start": 1}], "occurrences": ["2"]}}),
                true,
            ),
            (
                json!({"program": "a", "condition": {"type": "ccDate", "dates": [{"start": "---15"}]}}),
                true,
            ),
            (
                json!({"program": "a", "startDate": "--03-01", "condition": {"type": "ccDate", "dates": [{"start": "--05-01"}]}}),
                true,
            ),
            (
                json!({"program": "a", "condition": {"type": "ccDay", "days": [{"start": 5, "end": 2}]}}),
                false,
            ),
            (
                json!({"program": "a", "startDate": "2027-02-30", "endDate": "2027-03-01"}),
                false,
            ),
        ] {
            let got = read(json!({"id": "c", "ownerCMS": "x", "rules": [bad.clone()]}));
            match got {
                Err(TalqError::Unsupported(_)) if unsupported => {}
                Err(TalqError::Invalid(_)) if !unsupported => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
        let c = read(json!({"id": "c", "ownerCMS": "x", "rules": [
            {"program": "a", "condition": {"type": "ccDate", "dates": [{"start": "--05-01", "end": "--05-03"}, {"start": "--10-01"}]}}]}))
        .unwrap();
        assert_eq!(c.rules[0].dates, ["--05-01/--05-03", "--10-01/--10-01"]);
    }
}
