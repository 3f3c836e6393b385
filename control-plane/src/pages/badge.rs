//! Shields-style flat SVG badges of a monitor (a grey label on the left, a coloured value
//! on the right): its verdict, its uptime over a range and its certificate's days left.
//! Text widths are estimated with a per-character table of Verdana at 11 px.

use std::fmt::Write as _;

use monitor_spec::Status;
use monitor_spec::api::MonitorStatus;

use super::layout::escape;

/// Colours of the value side, as shields names them.
const GREEN: &str = "#4c1";
const LIGHT_GREEN: &str = "#97ca00";
const YELLOW: &str = "#dfb317";
const ORANGE: &str = "#fe7d37";
const RED: &str = "#e05d44";
const GREY: &str = "#9f9f9f";
const BLUE: &str = "#007ec6";

/// Days under which a certificate badge turns yellow whatever the monitor's warn days.
pub const CERT_WARN_DAYS: i64 = 14;

/// The width of `c` in Verdana 11 px, in pixels (rounded to a tenth).
fn char_width(c: char) -> f64 {
    match c {
        ' ' | ',' | '.' | ';' => 3.9,
        '!' | '|' | ':' => 4.6,
        'i' | 'l' | '\'' => 3.0,
        'j' => 3.8,
        'f' | 't' => 4.3,
        'r' | 'I' => 4.7,
        '(' | ')' | '-' | '/' | '[' | ']' => 5.4,
        'J' => 5.0,
        's' | 'c' | 'z' => 5.8,
        'L' => 6.1,
        'F' => 6.3,
        'k' | 'v' | 'x' | 'y' => 6.5,
        'e' => 6.6,
        'P' => 6.6,
        'a' | 'o' => 6.7,
        'T' | 'Y' => 6.8,
        'b' | 'd' | 'g' | 'p' | 'q' => 6.9,
        'E' | 'h' | 'n' | 'u' | '0'..='9' | '_' | '?' => 7.0,
        'A' | 'S' | 'V' | 'X' | 'Z' => 7.5,
        'B' | 'K' => 7.6,
        'C' | 'R' => 7.7,
        'U' => 8.1,
        'N' => 8.2,
        'H' => 8.3,
        'D' | 'G' => 8.5,
        'O' | 'Q' => 8.7,
        'w' => 8.9,
        '+' | '=' | '<' | '>' | '~' => 9.2,
        'M' => 9.3,
        'm' => 10.7,
        'W' => 10.9,
        '%' | '@' => 12.0,
        c if c.is_ascii() => 7.0,
        // Wide scripts (CJK and the like) take about a square.
        c if u32::from(c) >= 0x2E80 => 11.0,
        _ => 7.5,
    }
}

/// The estimated width of `text` in Verdana 11 px, in pixels.
pub fn text_width(text: &str) -> f64 {
    text.chars().map(char_width).sum()
}

/// A flat badge `label | value` with the value on `color`.
pub fn render(label: &str, value: &str, color: &str) -> String {
    let lw = (text_width(label) + 10.0).round();
    let vw = (text_width(value) + 10.0).round();
    let w = lw + vw;
    let (label, value, color) = (escape(label), escape(value), escape(color));
    let mut out = String::with_capacity(1024);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"20\" role=\"img\" aria-label=\"{label}: {value}\">\
         <title>{label}: {value}</title>\
         <linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
         <clipPath id=\"r\"><rect width=\"{w}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
         <g clip-path=\"url(#r)\"><rect width=\"{lw}\" height=\"20\" fill=\"#555\"/><rect x=\"{lw}\" width=\"{vw}\" height=\"20\" fill=\"{color}\"/><rect width=\"{w}\" height=\"20\" fill=\"url(#s)\"/></g>\
         <g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">\
         <text x=\"{lx}\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">{label}</text><text x=\"{lx}\" y=\"14\">{label}</text>\
         <text x=\"{vx}\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\">{value}</text><text x=\"{vx}\" y=\"14\">{value}</text></g></svg>",
        lx = lw / 2.0,
        vx = lw + vw / 2.0,
    );
    out
}

/// The badge of a monitor that does not exist.
pub fn not_found() -> String {
    render("badge", "not found", GREY)
}

/// `status | passed`: the worst verdict over the locations (`unknown` without results),
/// or `muted` / `deactivated`.
pub fn status(m: &MonitorStatus) -> String {
    if !m.activated {
        return render("status", "deactivated", GREY);
    }
    if m.muted {
        return render("status", "muted", BLUE);
    }
    let has = |s: Status| m.locations.iter().any(|l| l.status == s);
    if has(Status::Failed) {
        render("status", "failed", RED)
    } else if has(Status::Degraded) {
        render("status", "degraded", YELLOW)
    } else if has(Status::Passed) {
        render("status", "passed", GREEN)
    } else {
        render("status", "unknown", GREY)
    }
}

/// The uptime ranges a badge shows, by their query name.
pub const RANGES: [&str; 4] = ["24h", "7d", "30d", "90d"];

/// `uptime 7d | 99.95%` over `range` (one of [`RANGES`]; another one is `None`), with
/// the percentage of [`super::layout::uptime_text`].
pub fn uptime(m: &MonitorStatus, range: &str) -> Option<String> {
    let value = match range {
        "24h" => m.uptime.h24,
        "7d" => m.uptime.d7,
        "30d" => m.uptime.d30,
        "90d" => m.uptime.d90,
        _ => return None,
    };
    let label = format!("uptime {range}");
    Some(match value {
        None => render(&label, "no data", GREY),
        Some(p) => {
            let color = if p >= 99.9 {
                GREEN
            } else if p >= 99.0 {
                LIGHT_GREEN
            } else if p >= 95.0 {
                YELLOW
            } else if p >= 90.0 {
                ORANGE
            } else {
                RED
            };
            render(
                &label,
                &format!("{}%", super::layout::uptime_text(value)),
                color,
            )
        }
    })
}

/// `certificate | 42 days`: the fewest days left over the locations; red when expired,
/// yellow under [`CERT_WARN_DAYS`] or the monitor's `warn_days`.
pub fn certificate(m: &MonitorStatus, warn_days: u32) -> String {
    let Some(days) = m.locations.iter().filter_map(|l| l.days_left).min() else {
        return render("certificate", "none", GREY);
    };
    let warn = CERT_WARN_DAYS.max(i64::from(warn_days));
    if days < 0 {
        render("certificate", "expired", RED)
    } else if days < warn {
        let unit = if days == 1 { "day" } else { "days" };
        render("certificate", &format!("{days} {unit}"), YELLOW)
    } else {
        render("certificate", &format!("{days} days"), GREEN)
    }
}

#[cfg(test)]
mod tests {
    use monitor_spec::api::Uptime;

    use super::*;
    use crate::pages::overview::tests::{at, monitor};

    /// The label, value and colour of a badge.
    fn parts(svg: &str) -> (String, String, String) {
        let title = svg
            .split("<title>")
            .nth(1)
            .unwrap()
            .split("</title>")
            .next()
            .unwrap();
        let (label, value) = title.split_once(": ").unwrap();
        let color = svg
            .split("fill=\"")
            .nth(3)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        (label.to_owned(), value.to_owned(), color.to_owned())
    }

    fn check(svg: String, expected: (&str, &str, &str)) {
        let (label, value, color) = parts(&svg);
        assert_eq!(
            (label.as_str(), value.as_str(), color.as_str()),
            expected,
            "{svg}"
        );
    }

    #[test]
    fn widths_follow_the_text() {
        // u p t i m e, space, 7 d
        assert!((text_width("uptime 7d") - 56.3).abs() < 1e-9);
        assert!(text_width("WWW") > text_width("iii") * 3.0);
        let svg = render("status", "passed", GREEN);
        let width = |svg: &str| {
            svg.split("width=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        };
        // Label and value with five pixels of padding on each side.
        assert_eq!(
            width(&svg),
            (text_width("status") + 10.0).round() + (text_width("passed") + 10.0).round()
        );
        assert!(width(&render("status", "degraded", YELLOW)) > width(&svg));
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(!render("<script>", "&", GREY).contains("<script>"));
    }

    #[test]
    fn badges_say_the_verdict_uptime_and_days() {
        let mut m = monitor(
            "db",
            "Database",
            None,
            &[],
            vec![at("eu", Status::Passed, 1.0)],
        );
        check(status(&m), ("status", "passed", GREEN));
        m.locations.push(at("us", Status::Degraded, 1.0));
        check(status(&m), ("status", "degraded", YELLOW));
        m.locations.push(at("ap", Status::Failed, 1.0));
        check(status(&m), ("status", "failed", RED));
        m.muted = true;
        check(status(&m), ("status", "muted", BLUE));
        m.activated = false;
        check(status(&m), ("status", "deactivated", GREY));
        let none = monitor("x", "X", None, &[], vec![]);
        check(status(&none), ("status", "unknown", GREY));

        m.uptime = Uptime {
            h24: Some(100.0),
            d7: Some(99.956),
            d30: Some(97.0),
            d90: None,
        };
        check(uptime(&m, "24h").unwrap(), ("uptime 24h", "100.00%", GREEN));
        check(uptime(&m, "7d").unwrap(), ("uptime 7d", "99.95%", GREEN));
        check(uptime(&m, "30d").unwrap(), ("uptime 30d", "97.00%", YELLOW));
        check(uptime(&m, "90d").unwrap(), ("uptime 90d", "no data", GREY));
        assert!(uptime(&m, "1y").is_none());

        check(certificate(&none, 21), ("certificate", "none", GREY));
        let mut days = |left: &[i64], warn: u32| {
            for (l, d) in m.locations.iter_mut().zip(left) {
                l.days_left = Some(*d);
            }
            certificate(&m, warn)
        };
        check(days(&[42, 90, 60], 21), ("certificate", "42 days", GREEN));
        check(days(&[42, 13, 60], 0), ("certificate", "13 days", YELLOW));
        check(days(&[20, 30, 60], 21), ("certificate", "20 days", YELLOW));
        check(days(&[20, 30, 1], 21), ("certificate", "1 day", YELLOW));
        check(days(&[20, -1, 1], 21), ("certificate", "expired", RED));
        check(not_found(), ("badge", "not found", GREY));
    }
}
