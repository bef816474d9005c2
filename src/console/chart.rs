//! Line charts as SVG, drawn on the server: the overview's 30-day trends
//! and a device's history (one chart, or several stacked in one picture).
//! No script and no style sheet inside (the Content-Security-Policy admits
//! neither inline): presentation attributes only, so the file is the same
//! in an `<img>` and saved to disk.
//!
//! A line has at most two points per pixel column (the column's lowest and
//! highest, in their order): a day of 5-second samples would otherwise be
//! tens of thousands of points the picture cannot show, and the envelope
//! (a spike, a dip) survives the thinning.

use maud::{html, Markup};

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

/// One chart of a stacked picture.
pub(super) struct Panel {
    pub title: String,
    pub series: Vec<Series>,
    pub axes: Axes,
}

const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 30.0;

/// The height in pixels of a picture of `panels` charts.
pub(super) fn height(panels: usize) -> u32 {
    (H * panels.max(1) as f64) as u32
}

/// The chart as a standalone SVG document.
pub(super) fn svg(title: &str, series: &[Series], axes: &Axes, empty: &str) -> String {
    document(title, H, panel(title, series, axes, empty, 0.0))
}

/// Several charts one above the other in one SVG document (one request,
/// one read of the store for all of them), under a common title.
pub(super) fn stack(title: &str, panels: &[Panel], empty: &str) -> String {
    let body = html! {
        @for (i, p) in panels.iter().enumerate() {
            (panel(&p.title, &p.series, &p.axes, empty, i as f64 * H))
        }
    };
    document(title, H * panels.len().max(1) as f64, body)
}

fn document(title: &str, height: f64, body: Markup) -> String {
    let doc = html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (W) " " (height) } width=(W) height=(height)
            font-family="system-ui, 'Noto Sans CJK SC', 'WenQuanYi Zen Hei', sans-serif" font-size="12" {
            title { (title) }
            rect x="0" y="0" width=(W) height=(height) fill="#ffffff" {}
            (body)
        }
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{}",
        doc.into_string()
    )
}

/// One chart's frame, lines and legend, `top` pixels down the document.
fn panel(title: &str, series: &[Series], axes: &Axes, empty: &str, top: f64) -> Markup {
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
    let lines: Vec<(&Series, Line)> = series
        .iter()
        .map(|s| (s, line(&s.points, |x, y| (px(x), py(y)))))
        .collect();
    let no_data = ys.is_empty();
    html! {
        g transform={ "translate(0," (fmt(top)) ")" } {
            text x=(LEFT) y="16" font-size="13" font-weight="600" fill="#1b2430" { (title) }
            @for y in &y_ticks {
                line x1=(LEFT) x2=(W - RIGHT) y1=(fmt(py(*y))) y2=(fmt(py(*y))) stroke="#e3e7ed" {}
                text x=(LEFT - 6.0) y=(fmt(py(*y) + 4.0)) text-anchor="end" fill="#5b6675" { ((axes.y_label)(*y)) }
            }
            @for (x, label) in &axes.x_ticks {
                line x1=(fmt(px(*x))) x2=(fmt(px(*x))) y1=(TOP) y2=(H - BOTTOM) stroke="#f0f2f5" {}
                // The last tick's label ends at the frame, not past it.
                @let anchor = if px(*x) > W - RIGHT - 20.0 { "end" } else { "middle" };
                text x=(fmt(px(*x))) y=(H - BOTTOM + 16.0) text-anchor=(anchor) fill="#5b6675" { (label) }
            }
            @if let Some((t, label)) = &axes.target {
                line x1=(LEFT) x2=(W - RIGHT) y1=(fmt(py(*t))) y2=(fmt(py(*t))) stroke="#c62828"
                    stroke-dasharray="5 4" {}
                text x=(W - RIGHT) y=(fmt(py(*t) - 4.0)) text-anchor="end" fill="#c62828" { (label) }
            }
            @for (s, l) in &lines {
                @if !l.path.is_empty() {
                    path d=(l.path) fill="none" stroke=(s.colour) stroke-width="2" {}
                }
                // A point with no neighbour draws no line: a dot instead.
                @for (x, y) in &l.dots {
                    circle cx=(fmt(*x)) cy=(fmt(*y)) r="2.5" fill=(s.colour) {}
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
    }
}

/// A series drawn: the path of its runs, and the dots of its lone points.
struct Line {
    path: String,
    dots: Vec<(f64, f64)>,
}

/// The path of `points` (`to_px` maps one to pixels): each run of points
/// with values is one sub-path, thinned to the lowest and highest point of
/// each pixel column in the order they came; a gap lifts the pen.
fn line(points: &[(i64, Option<f64>)], to_px: impl Fn(i64, f64) -> (f64, f64)) -> Line {
    /// A pixel column's lowest and highest point, each with its place in
    /// the series (to keep their order).
    struct Column {
        x: i64,
        low: (usize, (f64, f64)),
        high: (usize, (f64, f64)),
    }
    fn close(run: &mut Vec<(f64, f64)>, c: Column) {
        let (first, second) = if c.low.0 <= c.high.0 {
            (c.low, c.high)
        } else {
            (c.high, c.low)
        };
        run.push(first.1);
        if second.0 != first.0 {
            run.push(second.1);
        }
    }
    fn end_run(run: &mut Vec<(f64, f64)>, out: &mut Line) {
        match run.as_slice() {
            [] => {}
            [p] => out.dots.push(*p),
            [first, rest @ ..] => {
                if !out.path.is_empty() {
                    out.path.push(' ');
                }
                out.path
                    .push_str(&format!("M{:.1},{:.1}", first.0, first.1));
                for p in rest {
                    out.path.push_str(&format!(" L{:.1},{:.1}", p.0, p.1));
                }
            }
        }
        run.clear();
    }
    let mut out = Line {
        path: String::new(),
        dots: Vec::new(),
    };
    let mut run: Vec<(f64, f64)> = Vec::new();
    let mut column: Option<Column> = None;
    for (n, &(x, y)) in points.iter().enumerate() {
        let Some(y) = y.filter(|y| y.is_finite()) else {
            if let Some(c) = column.take() {
                close(&mut run, c);
            }
            end_run(&mut run, &mut out);
            continue;
        };
        let p = to_px(x, y);
        let x = p.0.round() as i64;
        match column.as_mut() {
            // Screen y grows downwards: the lowest value has the largest y.
            Some(c) if c.x == x => {
                if p.1 > c.low.1 .1 {
                    c.low = (n, p);
                }
                if p.1 < c.high.1 .1 {
                    c.high = (n, p);
                }
            }
            _ => {
                if let Some(c) = column.take() {
                    close(&mut run, c);
                }
                column = Some(Column {
                    x,
                    low: (n, p),
                    high: (n, p),
                });
            }
        }
    }
    if let Some(c) = column.take() {
        close(&mut run, c);
    }
    end_run(&mut run, &mut out);
    out
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

    fn axes(y: Option<(f64, f64)>) -> Axes {
        Axes {
            y,
            y_label: number,
            x_ticks: vec![],
            target: None,
        }
    }

    /// The `d` of every path in a document.
    fn paths(svg: &str) -> Vec<&str> {
        svg.split(" d=\"")
            .skip(1)
            .map(|d| &d[..d.find('"').unwrap()])
            .collect()
    }

    #[test]
    fn a_gap_breaks_the_line_and_points_stay_in_the_frame() {
        let s = Series {
            label: "a".into(),
            colour: "#000",
            points: vec![
                (0, Some(0.5)),
                (5, Some(0.6)),
                (10, None),
                (20, Some(1.2)),
                (30, Some(0.9)),
            ],
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
        let d = paths(&out)[0];
        assert_eq!(d.matches('M').count(), 2, "{d}");
        // 1.2 is clamped to the top of the frame (y = TOP).
        assert!(d.contains(&format!(",{:.1}", TOP)), "{d}");
        assert!(!out.contains("no data"));
        assert!(out.contains("stroke-dasharray"));
    }

    #[test]
    fn no_points_says_so() {
        let out = svg("t", &[], &axes(None), "no data");
        assert!(out.contains("no data"));
    }

    #[test]
    fn a_day_of_samples_is_thinned_to_the_columns_and_keeps_its_spike() {
        // 17,280 samples (a day every 5 s), flat at 10 but one spike of 50.
        let points: Vec<(i64, Option<f64>)> = (0..17_280)
            .map(|i| (i * 5, Some(if i == 9_000 { 50.0 } else { 10.0 })))
            .collect();
        let s = Series {
            label: "p".into(),
            colour: "#000",
            points,
        };
        let out = svg("t", &[s], &axes(Some((0.0, 60.0))), "no data");
        let d = paths(&out)[0];
        let n = d.matches(['M', 'L']).count();
        let columns = (W - LEFT - RIGHT) as usize + 1;
        assert!(n <= 2 * columns, "{n} points for {columns} columns");
        // The spike's y: 50 of 0..60 over the frame.
        let spike = TOP + (1.0 - 50.0 / 60.0) * (H - TOP - BOTTOM);
        assert!(d.contains(&format!(",{spike:.1}")), "the spike is kept");
        assert!(out.len() < 40_000, "{} bytes", out.len());
    }

    #[test]
    fn a_lone_point_is_a_dot_and_panels_stack() {
        let lone = Series {
            label: "e".into(),
            colour: "#123456",
            points: vec![(0, Some(1.0)), (10, None), (20, Some(2.0)), (30, Some(3.0))],
        };
        let panels = [
            Panel {
                title: "first".into(),
                series: vec![lone],
                axes: axes(None),
            },
            Panel {
                title: "second".into(),
                series: vec![],
                axes: axes(None),
            },
        ];
        let out = stack("both", &panels, "no data");
        assert_eq!(out.matches("<circle").count(), 1, "{out}");
        assert_eq!(paths(&out).len(), 1);
        assert!(out.contains(&format!("height=\"{}\"", 2.0 * H)), "{out}");
        assert!(out.contains(&format!("translate(0,{:.1})", H)));
        assert!(out.contains("first") && out.contains("second"));
        assert_eq!(out.matches("no data").count(), 1, "only the empty panel");
    }
}
