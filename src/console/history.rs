//! A device's history as the lamp and cabinet pages show it: the spans a
//! page offers (24 h, 7 d, 30 d), the window and the store's resolution of
//! each (raw samples over a day, hours beyond, as `store::read::history`
//! keeps them), the time ticks, the page's span links with the picture, and
//! the SVG answer. The drawing itself is chart.rs's.

use super::i18n::T;
use super::{ConsoleError, ConsoleState, Language};
use crate::store::read::history::Resolution;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};

/// `?span=24h|7d|30d` of a history picture's address (24 h when absent).
#[derive(serde::Deserialize)]
pub(super) struct HistoryQuery {
    #[serde(default)]
    span: String,
}

impl HistoryQuery {
    pub(super) fn span(&self) -> Result<Span, ConsoleError> {
        Span::parse(&self.span)
    }
}

/// The spans a history chart offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Span {
    Day,
    Week,
    Month,
}

impl Span {
    const ALL: [(Span, &'static str, T); 3] = [
        (Span::Day, "24h", T::Last24h),
        (Span::Week, "7d", T::Last7d),
        (Span::Month, "30d", T::Last30d),
    ];

    /// `24h` (also the default, empty), `7d` or `30d`.
    pub(super) fn parse(s: &str) -> Result<Span, ConsoleError> {
        match s {
            "" => Ok(Span::Day),
            s => Span::ALL
                .iter()
                .find(|(_, code, _)| *code == s)
                .map(|(span, _, _)| *span)
                .ok_or_else(|| ConsoleError::BadRequest(format!("span `{s}`: 24h, 7d or 30d"))),
        }
    }

    fn hours(self) -> i64 {
        match self {
            Span::Day => 24,
            Span::Week => 24 * 7,
            Span::Month => 24 * 30,
        }
    }

    /// Raw samples over a day, hours beyond (the store's limits:
    /// `MAX_RAW` two days, an RTU's hours 35).
    pub(super) fn resolution(self) -> Resolution {
        match self {
            Span::Day => Resolution::Raw,
            Span::Week | Span::Month => Resolution::Hour,
        }
    }

    /// The window ending now.
    pub(super) fn window(self) -> (DateTime<Utc>, DateTime<Utc>) {
        let to = Utc::now();
        (to - Duration::hours(self.hours()), to)
    }

    /// Ticks along the window: every 6 hours over a day (times), six days
    /// apart beyond (dates), in the city's time zone.
    pub(super) fn x_ticks(self, from: DateTime<Utc>, tz: Tz) -> Vec<(i64, String)> {
        let hours = self.hours();
        let step = if hours <= 24 { 6 } else { hours / 6 };
        let format = if hours <= 24 { "%H:%M" } else { "%m-%d" };
        (0..=hours / step)
            .map(|n| {
                let t = from + Duration::hours(n * step);
                (
                    t.timestamp(),
                    t.with_timezone(&tz).format(format).to_string(),
                )
            })
            .collect()
    }
}

/// An hourly row's place on the x axis: the middle of its hour.
pub(super) fn mid_hour(start: DateTime<Utc>) -> i64 {
    start.timestamp() + 1800
}

/// The history section of a page: the span links (the script swaps the
/// picture; without it they open the picture) and the picture, `chart` its
/// URL without the span, of `panels` charts one above the other.
pub(super) fn section(lang: Language, img_id: &str, chart: &str, panels: usize) -> Markup {
    html! {
        section.scope.history {
            h2 { (T::History.get(lang)) }
            nav.spans {
                @for (_, code, label) in Span::ALL {
                    a.span-link.current[code == "24h"] href={ (chart) "?span=" (code) } data-span=(code) { (label.get(lang)) }
                }
            }
            img.history id=(img_id) src={ (chart) "?span=24h" } data-chart=(chart)
                alt=(T::History.get(lang)) width="720" height=(super::chart::height(panels));
        }
    }
}

/// The store the charts read, or the page's 503 without one.
pub(super) fn store(s: &ConsoleState) -> Result<&crate::store::Store, ConsoleError> {
    s.app
        .store
        .as_deref()
        .ok_or_else(|| ConsoleError::Unavailable("no store configured".into()))
}

/// A chart as the answer: SVG, kept by the browser for half a minute.
pub(super) fn svg_answer(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=30"),
        ],
        svg,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_tick() {
        assert_eq!(Span::parse("").unwrap(), Span::Day);
        assert_eq!(Span::parse("30d").unwrap(), Span::Month);
        assert!(Span::parse("1y").is_err());
        let from: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let day = Span::Day.x_ticks(from, chrono_tz::Asia::Shanghai);
        assert_eq!(day.len(), 5);
        assert_eq!(day[0].1, "08:00");
        let month = Span::Month.x_ticks(from, chrono_tz::Asia::Shanghai);
        assert_eq!((month.len(), month[6].1.as_str()), (7, "01-31"));
    }
}
