//! Line charts as SVG, drawn on the server: the overview's 30-day trends
//! and a lamp's history. No script and no style sheet inside (the
//! Content-Security-Policy admits neither inline): presentation attributes
//! only, so the file is the same in an `<img>` and saved to disk.

use maud::html;

/// One line: a label for the legend, its colour, and points (x in seconds
/// since the epoch, y in the chart's unit; `None` breaks the line).
pub(super) struct Series {
    pub label: String,
    pub colour: &'static str,
    pub points: Vec<(i64, Option<f64>)>,
}

/// What the axes show.
pub(super) struct Axes {
    /// The y range; `None`: from the data (0 included).
    pub y: Option<(f64, f64)>,
    /// Formats a y tick (e.g. "95%").
    pub y_label: fn(f64) -> String,
    /// Ticks along x: (seconds since the epoch, label).
    pub x_ticks: Vec<(i64, String)>,
    /// A horizontal line at a target, with its label.
    pub target: Option<(f64, String)>,
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 30.0;

/// The chart as a standalone SVG document.
pub(super) fn svg(title: &str, series: &[Series], axes: &Axes, empty: &str) -> String {
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .chain(axes.x_ticks.iter().map(|t| t.0));
    // No x at all (no points, no ticks): a unit frame, not i64::MIN − MAX.
    let (x0, x1) = xs
        .fold(None, |acc: Option<(i64, i64)>, x| {
            Some(acc.map_or((x, x), |(a, b)| (a.min(x), b.max(x))))
        })
        .unwrap_or((0, 1));
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| p.1))
        .filter(|y| y.is_finite())
        .collect();
    let (y0, y1) = axes.y.unwrap_or_else(|| {
        let hi = ys.iter().copied().fold(0.0_f64, f64::max);
        let lo = ys.iter().copied().fold(0.0_f64, f64::min);
        (lo, if hi > lo { hi * 1.05 } else { lo + 1.0 })
    });
    let span_x = x1.saturating_sub(x0).max(1) as f64;
    let span_y = if y1 > y0 { y1 - y0 } else { 1.0 };
    let px = |x: i64| LEFT + (x - x0) as f64 / span_x * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (1.0 - (y.clamp(y0, y1) - y0) / span_y) * (H - TOP - BOTTOM);
    let y_ticks: Vec<f64> = (0..=4).map(|i| y0 + span_y * i as f64 / 4.0).collect();
    let paths: Vec<(&Series, String)> = series
        .iter()
        .map(|s| {
            let mut d = String::new();
            let mut pen_down = false;
            for &(x, y) in &s.points {
                match y.filter(|y| y.is_finite()) {
                    Some(y) => {
                        let cmd = if pen_down { 'L' } else { 'M' };
                        d.push_str(&format!("{cmd}{:.1},{:.1} ", px(x), py(y)));
                        pen_down = true;
                    }
                    None => pen_down = false,
                }
            }
            (s, d)
        })
        .collect();
    let no_data = ys.is_empty();
    let body = html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (H) } width=(W) height=(H)
            font-family="system-ui, 'Noto Sans CJK SC', 'WenQuanYi Zen Hei', sans-serif" font-size="12" {
            title { (title) }
            rect x="0" y="0" width=(W) height=(H) fill="#ffffff" {}
            text x=(LEFT) y="16" font-size="13" font-weight="600" fill="#1b2430" { (title) }
            @for y in &y_ticks {
                line x1=(LEFT) x2=(W - RIGHT) y1=(fmt(py(*y))) y2=(fmt(py(*y))) stroke="#e3e7ed" {}
                text x=(LEFT - 6.0) y=(fmt(py(*y) + 4.0)) text-anchor="end" fill="#5b6675" { ((axes.y_label)(*y)) }
            }
            @for (x, label) in &axes.x_ticks {
                line x1=(fmt(px(*x))) x2=(fmt(px(*x))) y1=(TOP) y2=(H - BOTTOM) stroke="#f0f2f5" {}
                text x=(fmt(px(*x))) y=(H - BOTTOM + 16.0) text-anchor="middle" fill="#5b6675" { (label) }
            }
            @if let Some((t, label)) = &axes.target {
                line x1=(LEFT) x2=(W - RIGHT) y1=(fmt(py(*t))) y2=(fmt(py(*t))) stroke="#c62828"
                    stroke-dasharray="5 4" {}
                text x=(W - RIGHT) y=(fmt(py(*t) - 4.0)) text-anchor="end" fill="#c62828" { (label) }
            }
            @for (s, d) in &paths {
                @if !d.is_empty() {
                    path d=(d) fill="none" stroke=(s.colour) stroke-width="2" {}
                }
            }
            @for (i, s) in series.iter().enumerate() {
                @let x = LEFT + i as f64 * 190.0;
                rect x=(fmt(x)) y="25" width="12" height="4" fill=(s.colour) {}
                text x=(fmt(x + 16.0)) y="31" fill="#1b2430" { (s.label) }
            }
            @if no_data {
                text x=(W / 2.0) y=(H / 2.0) text-anchor="middle" fill="#5b6675" { (empty) }
            }
        }
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        body.into_string()
    )
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

/// A percentage tick.
pub(super) fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// A plain number tick.
pub(super) fn number(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_breaks_the_line_and_points_stay_in_the_frame() {
        let s = Series {
            label: "a".into(),
            colour: "#000",
            points: vec![(0, Some(0.5)), (10, None), (20, Some(1.2)), (30, Some(0.9))],
        };
        let out = svg(
            "t",
            &[s],
            &Axes {
                y: Some((0.0, 1.0)),
                y_label: percent,
                x_ticks: vec![(0, "0".into()), (30, "30".into())],
                target: Some((0.95, "95%".into())),
            },
            "no data",
        );
        // Two pen-downs: the gap at x=10 lifts the pen.
        let d = out.split(" d=\"").nth(1).unwrap();
        let d = &d[..d.find('"').unwrap()];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        // 1.2 is clamped to the top of the frame (y = TOP).
        assert!(d.contains(&format!(",{:.1}", TOP)), "{d}");
        assert!(!out.contains("no data"));
        assert!(out.contains("stroke-dasharray"));
    }

    #[test]
    fn no_points_says_so() {
        let out = svg(
            "t",
            &[],
            &Axes {
                y: None,
                y_label: number,
                x_ticks: vec![],
                target: None,
            },
            "no data",
        );
        assert!(out.contains("no data"));
    }
}
