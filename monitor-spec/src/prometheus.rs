//! The Prometheus text exposition format, written one way for every producer: the
//! `prometheus` reporter, `watch`'s `/metrics` and the control plane's `/metrics`.

use std::fmt::Write as _;

/// Milliseconds (measured to the microsecond) as seconds, rounded to the microsecond so
/// that metrics read `0.003001` rather than `0.0030009999999999998`.
pub fn seconds(ms: f64) -> f64 {
    if ms.is_finite() {
        (ms * 1000.0).round() / 1_000_000.0
    } else {
        0.0
    }
}

/// Writes one metric family: HELP and TYPE once, then its samples; nothing when empty.
pub fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: Vec<(String, String)>,
) {
    if samples.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// `{a="x",b="y"}` with values escaped as the exposition format requires.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", label_value(value)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Escapes a label value: backslash, double quote and line feed.
fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as Go's `strconv` reads it: `NaN`, `+Inf`, `-Inf`, or a plain decimal.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}
