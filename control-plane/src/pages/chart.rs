//! The SVG pieces of the monitor page, as pure functions of the points they show: the
//! response-time chart (p50 and p95 per location, the degraded and max thresholds) and
//! the verdict timeline (one strip per location, runs of one verdict merged).
//!
//! Scale rule: the time axis spans the range asked for (`from` to `to`). The ms axis
//! starts at 0 and ends at a round number just above the highest point (10% headroom,
//! about six steps of 1, 2 or 5 × 10ⁿ). The degraded threshold, then the max threshold,
//! widen the axis when each is at most twice the top so far, and are drawn as lines; a
//! threshold further up is not drawn but named at the top edge (`degraded 4000 ms ↑`), so
//! that a fast service's times are not squashed flat under thresholds far above them.
//! Without any point both thresholds are on the axis.
//! Every point is plotted (no downsampling); a gap longer than `gap_us` breaks the line.

use std::fmt::Write as _;

use monitor_spec::Status;

use super::layout::escape;

/// The colours of the series, in order: mid tones readable on light and dark backgrounds.
pub const COLOURS: [&str; 8] = [
    "#3b82f6", "#f76707", "#12b886", "#ae3ec9", "#e8a400", "#e64980", "#15aabf", "#82c91e",
];

/// The colour of the `i`-th series.
pub fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// The style rules of the chart and the timeline.
pub const STYLE: &str = "
.ch{display:block;width:100%;min-width:540px;height:auto}
.ch text{fill:currentColor;font-size:15px}
.ch .g{stroke:var(--line)}
.ch .dg{stroke:var(--warn);stroke-dasharray:8 5}
.ch .mx{stroke:var(--bad);stroke-dasharray:8 5}
.ch .tdg{fill:var(--warn)} .ch .tmx{fill:var(--bad)}
.ch path{fill:none;stroke-width:2;stroke-linejoin:round;stroke-linecap:round}
.ch .q{stroke-width:1.5;stroke-dasharray:5 4;opacity:.65}
.tl{display:block;width:100%;height:14px;background:var(--line)}
.tl .p{fill:var(--ok)} .tl .d{fill:var(--warn)} .tl .f{fill:var(--bad)}
";

/// One plotted point: its start (unix µs) and times (ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The start of the result or bucket, unix microseconds.
    pub start_us: i64,
    /// Median total time, ms (the result's own time for a raw result).
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
}

/// The points of one location, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The location.
    pub location: String,
    /// Its points.
    pub points: Vec<Point>,
}

/// What the chart shows.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// The start of the range, unix µs.
    pub from_us: i64,
    /// Its end, unix µs.
    pub to_us: i64,
    /// `raw`, `1h` or `1d`: with `raw` p50 and p95 are one time, drawn once.
    pub step: &'a str,
    /// A longer gap between two points breaks the line.
    pub gap_us: i64,
    /// The degraded threshold, ms.
    pub degraded_ms: f64,
    /// The max threshold, ms.
    pub max_ms: f64,
    /// One line per location.
    pub lines: &'a [Line],
}

// The plot area inside the 1000 × 310 view box.
const LEFT: f64 = 62.0;
const RIGHT: f64 = 985.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 280.0;

/// The ms axis: its top and the step between labelled ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// The value at the top of the plot, ms.
    pub top: f64,
    /// The step between ticks, ms.
    pub step: f64,
    /// Whether the degraded threshold is inside the axis (drawn as a line).
    pub degraded_inside: bool,
    /// Whether the max threshold is inside the axis (drawn as a line).
    pub max_inside: bool,
}

/// A round step (1, 2 or 5 × 10ⁿ) at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// The ms axis for the highest point `data_top`, following the rule in the module's
/// documentation.
pub fn scale(data_top: f64, degraded_ms: f64, max_ms: f64) -> Scale {
    let clean = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
    let mut base = clean(data_top);
    let mut fits = |threshold: f64| {
        let inside = base == 0.0 || clean(threshold) <= 2.0 * base;
        if inside {
            base = base.max(clean(threshold));
        }
        inside
    };
    let (degraded_inside, max_inside) = (fits(degraded_ms), fits(max_ms));
    let wanted = if base > 0.0 { base * 1.1 } else { 1.0 };
    let step = nice_step(wanted / 6.0);
    let top = (wanted / step).ceil() * step;
    Scale {
        top,
        step,
        degraded_inside,
        max_inside,
    }
}

/// Writes threshold `name` at `ms`: a labelled line inside the axis, else its name at the
/// top edge, at `dx` from the left.
#[allow(clippy::too_many_arguments)]
fn threshold(
    out: &mut String,
    name: &str,
    class: &str,
    ms: f64,
    inside: bool,
    y: impl Fn(f64) -> i64,
    right: bool,
    dx: i64,
) {
    if inside {
        let yy = y(ms);
        let (x, anchor) = if right {
            (RIGHT, "end")
        } else {
            (LEFT, "start")
        };
        let _ = write!(
            out,
            "<line class=\"{class}\" x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{yy}\" y2=\"{yy}\"/>\
             <text class=\"t{class}\" x=\"{x}\" y=\"{}\" dx=\"{}\" text-anchor=\"{anchor}\">{name} {ms} ms</text>",
            yy - 4,
            if right { 0 } else { 6 }
        );
    } else {
        let _ = write!(
            out,
            "<text class=\"t{class}\" x=\"{LEFT}\" y=\"{}\" dx=\"{dx}\" data-above=\"{name}\">{name} {ms} ms \u{2191}</text>",
            TOP - 6.0
        );
    }
}

/// A time tick interval (seconds) giving at most seven ticks over `span_s`.
fn tick_interval(span_s: i64) -> i64 {
    const H: i64 = 3600;
    const D: i64 = 86_400;
    [
        300,
        900,
        1800,
        H,
        2 * H,
        3 * H,
        4 * H,
        6 * H,
        12 * H,
        D,
        2 * D,
        5 * D,
        7 * D,
        15 * D,
        30 * D,
    ]
    .into_iter()
    .find(|c| span_s / c <= 7)
    .unwrap_or(90 * D)
}

/// `HH:MM` (UTC) of unix seconds, or `MM-DD` when `days`.
fn clock(s: i64, days: bool) -> String {
    match time::OffsetDateTime::from_unix_timestamp(s) {
        Ok(t) if days => format!("{:02}-{:02}", u8::from(t.month()), t.day()),
        Ok(t) => format!("{:02}:{:02}", t.hour(), t.minute()),
        Err(_) => String::new(),
    }
}

/// `MM-DD HH:MM` (UTC) of unix µs: the times in titles.
pub fn stamp(us: i64) -> String {
    let s = us.div_euclid(1_000_000);
    format!("{} {}", clock(s, true), clock(s, false))
}

/// A ms value as the axis labels it.
fn ms_label(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else {
        let digits = (-step.log10().floor()).clamp(1.0, 3.0) as usize;
        format!("{v:.digits$}")
    }
}

/// Writes one path (`class` empty or `q`) of the values `value` picks from `points`.
fn path(
    out: &mut String,
    points: &[Point],
    class: &str,
    gap_us: i64,
    x: impl Fn(i64) -> i64,
    y: impl Fn(f64) -> i64,
    value: impl Fn(&Point) -> f64,
) {
    if class.is_empty() {
        out.push_str("<path d=\"");
    } else {
        let _ = write!(out, "<path class=\"{class}\" d=\"");
    }
    let mut run = 0;
    let mut last: Option<i64> = None;
    for p in points {
        let broken = last.is_none_or(|t| p.start_us.saturating_sub(t) > gap_us);
        if broken {
            if run == 1 {
                out.push_str("h0");
            }
            out.push('M');
            run = 0;
        } else {
            out.push(' ');
        }
        let _ = write!(out, "{} {}", x(p.start_us), y(value(p)));
        run += 1;
        last = Some(p.start_us);
    }
    if run == 1 {
        out.push_str("h0");
    }
    out.push_str("\"/>");
}

/// Writes the response-time chart as an inline SVG with `data-from`, `data-to`,
/// `data-step` and `data-points` (the total), and per location a `<g>` with
/// `data-series` and its `data-points`.
pub fn chart(out: &mut String, c: &Chart<'_>) {
    let total: usize = c.lines.iter().map(|l| l.points.len()).sum();
    let data_top = c
        .lines
        .iter()
        .flat_map(|l| &l.points)
        .map(|p| p.p95_ms.max(p.p50_ms))
        .fold(0.0, f64::max);
    let sc = scale(data_top, c.degraded_ms, c.max_ms);
    let span = (c.to_us - c.from_us).max(1) as f64;
    let x = |t: i64| (LEFT + (t - c.from_us) as f64 / span * (RIGHT - LEFT)).round() as i64;
    let y = |v: f64| (BOTTOM - v.clamp(0.0, sc.top) / sc.top * (BOTTOM - TOP)).round() as i64;
    let _ = write!(
        out,
        "<svg class=\"ch\" viewBox=\"0 0 1000 310\" role=\"img\" aria-label=\"response time\" \
         data-from=\"{}\" data-to=\"{}\" data-step=\"{}\" data-points=\"{total}\">",
        crate::status::rfc3339_us(c.from_us),
        crate::status::rfc3339_us(c.to_us),
        escape(c.step)
    );
    // The ms axis: grid lines and labels.
    let mut v = 0.0;
    while v <= sc.top * (1.0 + 1e-9) {
        let yy = y(v);
        let _ = write!(
            out,
            "<line class=\"g\" x1=\"{LEFT}\" x2=\"{RIGHT}\" y1=\"{yy}\" y2=\"{yy}\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            yy + 5,
            ms_label(v, sc.step)
        );
        v += sc.step;
    }
    let _ = write!(out, "<text x=\"4\" y=\"14\">ms</text>");
    // The time axis: ticks on round UTC times.
    let (from_s, to_s) = (
        c.from_us.div_euclid(1_000_000),
        c.to_us.div_euclid(1_000_000),
    );
    let every = tick_interval(to_s - from_s);
    let days = every >= 86_400;
    let mut t = (from_s.div_euclid(every) + 1) * every;
    while t <= to_s {
        let xx = x(t * 1_000_000);
        let _ = write!(
            out,
            "<line class=\"g\" x1=\"{xx}\" x2=\"{xx}\" y1=\"{TOP}\" y2=\"{}\"/>\
             <text x=\"{xx}\" y=\"302\" text-anchor=\"middle\">{}</text>",
            BOTTOM + 5.0,
            clock(t, days)
        );
        t += every;
    }
    // The thresholds: lines, or names at the top edge when far above.
    threshold(
        out,
        "degraded",
        "dg",
        c.degraded_ms,
        sc.degraded_inside,
        y,
        true,
        6,
    );
    let dx = if sc.degraded_inside { 6 } else { 230 };
    threshold(out, "max", "mx", c.max_ms, sc.max_inside, y, false, dx);
    // The lines: p95 (lighter, dashed) under p50.
    for (i, line) in c.lines.iter().enumerate() {
        let _ = write!(
            out,
            "<g stroke=\"{}\" data-series=\"{}\" data-points=\"{}\">",
            colour(i),
            escape(&line.location),
            line.points.len()
        );
        if c.step != "raw" {
            path(out, &line.points, "q", c.gap_us, x, y, |p| p.p95_ms);
        }
        path(out, &line.points, "", c.gap_us, x, y, |p| p.p50_ms);
        out.push_str("</g>");
    }
    if total == 0 {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">no results in this range</text>",
            (LEFT + RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0
        );
    }
    out.push_str("</svg>");
}

/// One result or bucket on the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Where it starts, unix µs.
    pub start_us: i64,
    /// Where it ends, unix µs.
    pub end_us: i64,
    /// Checks in it.
    pub checks: u64,
    /// Of them, failed.
    pub failures: u64,
    /// Of them, degraded.
    pub degraded: u64,
    /// Why the failed ones failed, when known (raw results).
    pub errors: Vec<String>,
}

impl Mark {
    /// Its verdict: failed when any check failed, degraded when any was degraded.
    pub fn verdict(&self) -> Status {
        if self.failures > 0 {
            Status::Failed
        } else if self.degraded > 0 {
            Status::Degraded
        } else {
            Status::Passed
        }
    }
}

/// `marks` (oldest first) with touching marks of one verdict merged into one.
pub fn merge(marks: &[Mark]) -> Vec<Mark> {
    let mut out: Vec<Mark> = Vec::new();
    for m in marks {
        match out.last_mut() {
            Some(last) if last.verdict() == m.verdict() && m.start_us <= last.end_us => {
                last.end_us = last.end_us.max(m.end_us);
                last.checks += m.checks;
                last.failures += m.failures;
                last.degraded += m.degraded;
                for e in &m.errors {
                    if !last.errors.contains(e) {
                        last.errors.push(e.clone());
                    }
                }
            }
            _ => out.push(m.clone()),
        }
    }
    out
}

/// Writes the timeline strip of `location` over `from_us..to_us`: one rectangle per run
/// of `marks` (merged here), titled with its span, verdict and counts, and with the error
/// kinds unless `public`.
pub fn timeline(
    out: &mut String,
    location: &str,
    from_us: i64,
    to_us: i64,
    marks: &[Mark],
    public: bool,
) {
    let runs = merge(marks);
    let span = (to_us - from_us).max(1) as f64;
    let x = |t: i64| ((t.clamp(from_us, to_us) - from_us) as f64 / span * 1000.0).round() as i64;
    let _ = write!(
        out,
        "<svg class=\"tl\" viewBox=\"0 0 1000 10\" preserveAspectRatio=\"none\" \
         data-series=\"{}\" data-runs=\"{}\">",
        escape(location),
        runs.len()
    );
    for r in &runs {
        let (x0, x1) = (x(r.start_us), x(r.end_us));
        let verdict = r.verdict();
        let class = match verdict {
            Status::Passed => "p",
            Status::Degraded => "d",
            Status::Failed => "f",
        };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{x0}\" width=\"{}\" height=\"10\"><title>{} \u{2013} {} UTC: {}, {} check{}",
            (x1 - x0).max(1),
            stamp(r.start_us),
            stamp(r.end_us),
            status_name(verdict),
            r.checks,
            if r.checks == 1 { "" } else { "s" }
        );
        if r.failures > 0 && r.failures < r.checks {
            let _ = write!(out, ", {} failed", r.failures);
        }
        if r.degraded > 0 {
            let _ = write!(out, ", {} degraded", r.degraded);
        }
        if !public && !r.errors.is_empty() {
            let _ = write!(out, " ({})", escape(&r.errors.join(", ")));
        }
        out.push_str("</title></rect>");
    }
    out.push_str("</svg>");
}

/// The name of a verdict in pages and attributes.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(location: &str, points: &[(i64, f64)]) -> Line {
        Line {
            location: location.to_owned(),
            points: points
                .iter()
                .map(|&(t, ms)| Point {
                    start_us: t,
                    p50_ms: ms,
                    p95_ms: ms * 2.0,
                })
                .collect(),
        }
    }

    fn attr<'a>(svg: &'a str, name: &str) -> Vec<&'a str> {
        svg.split(&format!(" {name}=\""))
            .skip(1)
            .map(|s| s.split('"').next().unwrap_or_default())
            .collect()
    }

    #[test]
    fn the_axis_fits_the_data_and_the_thresholds() {
        // Data up to 400 ms, degraded at 500, max at 1000: the axis reaches the max.
        let s = scale(400.0, 500.0, 1000.0);
        assert_eq!((s.top, s.step), (1200.0, 200.0));
        assert!(s.degraded_inside && s.max_inside);
        // A max far above everything is named at the top, not drawn.
        let s = scale(60.0, 100.0, 10_000.0);
        assert!(s.degraded_inside && !s.max_inside);
        assert_eq!((s.top, s.step), (120.0, 20.0));
        // A fast service under default thresholds: both named, the data fills the axis.
        let s = scale(5.0, 4000.0, 5000.0);
        assert!(!s.degraded_inside && !s.max_inside);
        assert_eq!((s.top, s.step), (6.0, 1.0));
        // Without data both thresholds are on the axis.
        let s = scale(0.0, 4000.0, 5000.0);
        assert!(s.degraded_inside && s.max_inside && s.top >= 5000.0);
        // Data above the thresholds: the axis covers the data with headroom.
        let s = scale(2300.0, 500.0, 1000.0);
        assert!(s.top >= 2300.0 * 1.1 && s.top < 3500.0, "{s:?}");
        assert!(s.degraded_inside && s.max_inside);
        // Nothing at all, and nonsense, still give a usable axis.
        let s = scale(0.0, 0.0, 0.0);
        assert!(s.top > 0.0 && s.step > 0.0);
        let s = scale(f64::NAN, -3.0, f64::INFINITY);
        assert!(s.top.is_finite() && s.top > 0.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(20.0), 20.0);
    }

    #[test]
    fn every_point_is_plotted_and_counted() {
        let from = 1_700_000_000_000_000;
        let hour = 3_600_000_000;
        let lines = [
            line(
                "eu",
                &[(from, 10.0), (from + hour, 20.0), (from + 2 * hour, 30.0)],
            ),
            // A gap breaks the line; a lone point is a dot.
            line("us", &[(from, 5.0), (from + 10 * hour, 6.0)]),
        ];
        let mut svg = String::new();
        chart(
            &mut svg,
            &Chart {
                from_us: from,
                to_us: from + 24 * hour,
                step: "1h",
                gap_us: hour * 3 / 2,
                degraded_ms: 100.0,
                max_ms: 150.0,
                lines: &lines,
            },
        );
        assert_eq!(attr(&svg, "data-points"), ["5", "3", "2"]);
        assert_eq!(attr(&svg, "data-series"), ["eu", "us"]);
        assert_eq!(attr(&svg, "data-step"), ["1h"]);
        assert_eq!(
            attr(&svg, "data-from"),
            [crate::status::rfc3339_us(from).as_str()]
        );
        let paths = attr(&svg, "d");
        // p95 and p50 per location.
        assert_eq!(paths.len(), 4, "{svg}");
        // eu's p50: three points in one run, from the left edge, the first at 10 ms
        // on an axis of 0..200 ms (150 × 1.1 → steps of 50).
        assert_eq!(paths[1], "M62 267 100 254 139 241", "{svg}");
        // us's lines: two runs of one point each, drawn as dots.
        assert_eq!(paths[3].matches('M').count(), 2, "{}", paths[3]);
        assert_eq!(paths[3].matches("h0").count(), 2, "{}", paths[3]);
        // The thresholds are drawn and labelled; the labels of the time axis are hours.
        assert!(svg.contains("degraded 100 ms") && svg.contains("max 150 ms"));
        assert!(svg.contains(">04:00<") || svg.contains(">00:00<"), "{svg}");
        assert!(!svg.contains("no results"));
    }

    #[test]
    fn raw_points_are_drawn_once_and_an_empty_chart_says_so() {
        let lines = [line("eu", &[(1_000_000, 10.0)])];
        let mut svg = String::new();
        chart(
            &mut svg,
            &Chart {
                from_us: 0,
                to_us: 86_400_000_000,
                step: "raw",
                gap_us: 60_000_000,
                degraded_ms: 50.0,
                max_ms: 100_000.0,
                lines: &lines,
            },
        );
        assert_eq!(attr(&svg, "d").len(), 1, "{svg}");
        assert!(svg.contains("data-above=\"max\""), "{svg}");
        assert!(svg.contains("degraded 50 ms"), "{svg}");
        let mut empty = String::new();
        chart(
            &mut empty,
            &Chart {
                lines: &[],
                ..Chart {
                    from_us: 0,
                    to_us: 1,
                    step: "1d",
                    gap_us: 1,
                    degraded_ms: 1.0,
                    max_ms: 2.0,
                    lines: &[],
                }
            },
        );
        assert!(empty.contains("no results in this range"));
        assert_eq!(attr(&empty, "data-points"), ["0"]);
    }

    #[test]
    fn locations_are_escaped() {
        let lines = [line("<b>\"x\"", &[(0, 1.0)])];
        let mut svg = String::new();
        chart(
            &mut svg,
            &Chart {
                from_us: 0,
                to_us: 10,
                step: "raw",
                gap_us: 5,
                degraded_ms: 1.0,
                max_ms: 2.0,
                lines: &lines,
            },
        );
        timeline(&mut svg, "<b>\"x\"", 0, 10, &[], false);
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(svg.contains("&lt;b&gt;"), "{svg}");
    }

    fn mark(start: i64, end: i64, failures: u64, errors: &[&str]) -> Mark {
        Mark {
            start_us: start,
            end_us: end,
            checks: 1,
            failures,
            degraded: 0,
            errors: errors.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn the_timeline_merges_runs_of_one_verdict() {
        let marks = [
            mark(0, 10, 0, &[]),
            mark(10, 20, 0, &[]),
            mark(20, 30, 1, &["connection_refused"]),
            mark(30, 40, 1, &["<timeout>"]),
            mark(40, 50, 0, &[]),
            // A gap: not merged with the run before.
            mark(70, 80, 0, &[]),
        ];
        let runs = merge(&marks);
        assert_eq!(runs.len(), 4);
        assert_eq!(
            (runs[0].start_us, runs[0].end_us, runs[0].checks),
            (0, 20, 2)
        );
        assert_eq!(runs[1].errors, ["connection_refused", "<timeout>"]);
        let mut private = String::new();
        timeline(&mut private, "eu", 0, 100, &marks, false);
        assert_eq!(attr(&private, "data-runs"), ["4"]);
        assert_eq!(attr(&private, "class"), ["tl", "p", "f", "p", "p"]);
        assert_eq!(attr(&private, "x"), ["0", "200", "400", "700"]);
        assert!(
            private.contains("connection_refused, &lt;timeout&gt;"),
            "{private}"
        );
        let mut public = String::new();
        timeline(&mut public, "eu", 0, 100, &marks, true);
        assert!(!public.contains("connection_refused"), "{public}");
        assert!(public.contains("failed, 2 checks"), "{public}");
    }
}
