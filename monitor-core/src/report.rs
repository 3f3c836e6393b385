//! Reporters for `monitors run` and `watch`: check results as terminal text, JSON, JUnit
//! XML, GitHub Markdown or Prometheus text, plus the run's exit code and summary line.
//!
//! Every rendered report ends with a newline, so callers write it with `print!`.

use std::fmt::Write as _;

use time::OffsetDateTime;

use monitor_spec::escape::{escape_chars, shown};
pub use monitor_spec::prometheus::{family, labels, number, seconds};
use monitor_spec::result::{CheckResult, ErrorKind, Status};

mod latest;
mod prometheus;
pub use latest::{Latest, Needs};
pub use prometheus::{Exposition, FAMILY_COUNT, PrometheusText, prometheus};

/// The output formats of `monitors run --reporter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "run", derive(clap::ValueEnum))]
pub enum Reporter {
    /// One line per monitor for people on a terminal, with errors and hints beneath.
    Human,
    /// The results array as pretty JSON, exactly the serde form of `Vec<CheckResult>`.
    Json,
    /// JUnit XML for CI systems: one testcase per monitor.
    Junit,
    /// Markdown for a GitHub Actions job summary (`$GITHUB_STEP_SUMMARY`).
    Github,
    /// Prometheus text exposition format 0.0.4 with blackbox_exporter metric names.
    Prometheus,
}

/// How the human reporter decorates its output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// ANSI colours on (the CLI decides from `NO_COLOR` and whether stdout is a terminal).
    pub color: bool,
}

/// How many checks have run so far for one monitor with one status (`watch` keeps these).
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// Logical id of the monitor.
    pub monitor: String,
    /// The verdict counted.
    pub status: Status,
    /// Checks with that verdict so far.
    pub count: u64,
}

/// Renders `results` in the given format. `style` only affects [`Reporter::Human`].
pub fn render(reporter: Reporter, results: &[CheckResult], style: Style) -> String {
    match reporter {
        Reporter::Human => human(results, style),
        Reporter::Json => json(results),
        Reporter::Junit => junit(results),
        Reporter::Github => github(results),
        Reporter::Prometheus => prometheus(&results.iter().collect::<Vec<_>>(), &[]),
    }
}

/// The process exit code of a run: 1 when any check failed (or was degraded, with
/// `fail_on_degraded`), otherwise 0.
pub fn exit_code(results: &[CheckResult], fail_on_degraded: bool) -> u8 {
    let failing = results.iter().any(|r| match r.status {
        Status::Passed => false,
        Status::Degraded => fail_on_degraded,
        Status::Failed => true,
    });
    u8::from(failing)
}

/// One line with the counts and the run's wall time, such as
/// `12 monitors: 9 passed, 2 degraded, 1 failed in 0.42 s`.
///
/// The time runs from the earliest start to the latest end among the results (each end
/// being its last attempt's start plus its total time), so concurrent checks are not
/// added up.
pub fn summary_line(results: &[CheckResult]) -> String {
    let c = Counts::of(results);
    format!(
        "{} monitor{}: {} passed, {} degraded, {} failed in {:.2} s",
        c.total,
        if c.total == 1 { "" } else { "s" },
        c.passed,
        c.degraded,
        c.failed,
        wall_seconds(results)
    )
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    total: usize,
    passed: usize,
    degraded: usize,
    failed: usize,
}

impl Counts {
    fn of(results: &[CheckResult]) -> Self {
        results.iter().fold(Counts::default(), |mut c, r| {
            c.total += 1;
            match r.status {
                Status::Passed => c.passed += 1,
                Status::Degraded => c.degraded += 1,
                Status::Failed => c.failed += 1,
            }
            c
        })
    }

    /// The most serious status present (passed when there are no results).
    fn worst(self) -> Status {
        if self.failed > 0 {
            Status::Failed
        } else if self.degraded > 0 {
            Status::Degraded
        } else {
            Status::Passed
        }
    }
}

/// The snake_case name of a status, as in JSON.
fn status_str(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    }
}

const STATUSES: [Status; 3] = [Status::Passed, Status::Degraded, Status::Failed];

/// When the check ended: its last attempt's start plus the last attempt's total time.
fn ended_at(r: &CheckResult) -> OffsetDateTime {
    let last_start = r.attempts.last().map_or(r.started_at, |a| a.started_at);
    let total = r.timings.total_ms;
    if total.is_finite() && total > 0.0 {
        last_start
            .checked_add(time::Duration::seconds_f64(total / 1000.0))
            .unwrap_or(last_start)
    } else {
        last_start
    }
}

fn earliest_start(results: &[CheckResult]) -> Option<OffsetDateTime> {
    results.iter().map(|r| r.started_at).min()
}

/// Seconds from the earliest start to the latest end.
fn wall_seconds(results: &[CheckResult]) -> f64 {
    let (Some(start), Some(end)) = (earliest_start(results), results.iter().map(ended_at).max())
    else {
        return 0.0;
    };
    (end - start).as_seconds_f64().max(0.0)
}

/// Text with control characters shown as Rust escapes (`\n`, `\u{1b}`), so that a name or
/// message can neither break a line nor send terminal escape sequences.
fn printable(s: &str) -> String {
    escape_chars(s, |c| c.is_control().then(|| shown(c)))
}

/// The phases a check reached, with their names in metrics and in text.
fn phases(r: &CheckResult) -> Vec<(&'static str, &'static str, f64)> {
    let t = &r.timings;
    let mut out = Vec::with_capacity(5);
    for (metric, text, value) in [
        ("dns", "dns", t.dns_ms),
        ("connect", "connect", t.connect_ms),
        ("tls", "tls", t.tls_ms),
        ("first_byte", "first byte", t.first_byte_ms),
    ] {
        if let Some(v) = value {
            out.push((metric, text, v));
        }
    }
    out.push(("total", "total", t.total_ms));
    out
}

/// "87 days", "1 day", "expired 3 days ago", "expired today" (`expired` less than a day
/// ago: days round toward zero).
fn days_text(days: i64, expired: bool) -> String {
    let plural = |n: i64| if n == 1 { "" } else { "s" };
    if (expired && days == 0) || days < 0 {
        format!("expired {}", monitor_spec::result::expired_ago(days))
    } else {
        format!("{days} day{}", plural(days))
    }
}

// ---------------------------------------------------------------------------------------
// Human
// ---------------------------------------------------------------------------------------

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";

fn status_look(status: Status) -> (&'static str, &'static str, &'static str) {
    match status {
        Status::Passed => ("✔", "passed", "\x1b[1;32m"),
        Status::Degraded => ("▲", "degraded", "\x1b[1;33m"),
        Status::Failed => ("✖", "failed", "\x1b[1;31m"),
    }
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("{code}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

/// Pads to `width` characters (by `char` count, which is right for most names).
fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// The widest column worth aligning to; longer cells simply push the line out.
const MAX_COLUMN: usize = 40;

fn where_text(r: &CheckResult) -> String {
    match &r.address {
        Some(address) if *address != r.target => {
            format!("{} ({})", printable(&r.target), printable(address))
        }
        _ => printable(&r.target),
    }
}

fn tls_text(r: &CheckResult) -> Option<String> {
    let tls = r.tls.as_ref()?;
    let mut parts = Vec::new();
    if let Some(version) = &tls.version {
        parts.push(printable(version));
    }
    if let Some(days) = tls.days_left {
        let expired = tls.problems.contains(&ErrorKind::CertificateExpired);
        parts.push(format!("cert {}", days_text(days, expired)));
    }
    if !tls.problems.is_empty() {
        let problems: Vec<&str> = tls.problems.iter().map(|k| k.as_str()).collect();
        parts.push(format!("problems: {}", problems.join(" ")));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn human(results: &[CheckResult], style: Style) -> String {
    let names: Vec<String> = results.iter().map(|r| printable(&r.name)).collect();
    let places: Vec<String> = results.iter().map(where_text).collect();
    let width = |cells: &[String]| {
        cells
            .iter()
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
            .min(MAX_COLUMN)
    };
    let (name_width, place_width) = (width(&names), width(&places));
    // Continuation lines start under the name: symbol, space, status word, two spaces.
    let indent = " ".repeat(2 + 8 + 2);

    let mut out = String::new();
    for ((r, name), place) in results.iter().zip(&names).zip(&places) {
        let (symbol, word, colour) = status_look(r.status);
        let mut line = format!(
            "{}  {}  {}",
            paint(style, colour, &format!("{symbol} {word:<8}")),
            paint(style, BOLD, &pad(name, name_width)),
            pad(place, place_width),
        );
        for (_, text, ms) in phases(r) {
            let _ = write!(line, "  {text} {ms:.1} ms");
        }
        if let Some(tls) = tls_text(r) {
            let _ = write!(line, "  {tls}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if r.status == Status::Passed {
            continue;
        }
        if let Some(error) = &r.error {
            let _ = writeln!(
                out,
                "{indent}{}: {}",
                paint(style, colour, error.kind.as_str()),
                printable(&error.message)
            );
            for hint in &error.hints {
                let _ = writeln!(out, "{indent}hint: {}", printable(hint));
            }
        }
    }
    if !results.is_empty() {
        out.push('\n');
    }
    let (_, _, colour) = status_look(Counts::of(results).worst());
    out.push_str(&paint(style, colour, &summary_line(results)));
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

fn json(results: &[CheckResult]) -> String {
    // Serializing plain data into a String cannot fail.
    let mut text = serde_json::to_string_pretty(results).unwrap_or_else(|_| "[]".to_owned());
    text.push('\n');
    text
}

// ---------------------------------------------------------------------------------------
// JUnit
// ---------------------------------------------------------------------------------------

/// Escapes text for XML 1.0 character data (`attribute: false`) or a quoted attribute
/// value. Characters XML 1.0 forbids (controls other than tab, newline and carriage
/// return, U+FFFE and U+FFFF) become U+FFFD. In attributes, tab, newline and carriage
/// return are written as character references so that attribute normalisation keeps them.
fn xml(s: &str, attribute: bool) -> String {
    escape_chars(s, |c| match c {
        '&' => Some("&amp;".into()),
        '<' => Some("&lt;".into()),
        '>' => Some("&gt;".into()),
        '"' => Some("&quot;".into()),
        '\'' => Some("&apos;".into()),
        '\r' => Some("&#13;".into()),
        '\t' if attribute => Some("&#9;".into()),
        '\n' if attribute => Some("&#10;".into()),
        '\t' | '\n' => None,
        '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => Some("\u{fffd}".into()),
        _ => None,
    })
}

/// `YYYY-MM-DDTHH:MM:SS` in UTC, the JUnit schema's timestamp form (no zone allowed).
fn junit_timestamp(t: OffsetDateTime) -> String {
    monitor_spec::result::utc_seconds(t, 'T')
}

fn junit(results: &[CheckResult]) -> String {
    let c = Counts::of(results);
    let wall = wall_seconds(results);
    let timestamp =
        junit_timestamp(earliest_start(results).unwrap_or_else(OffsetDateTime::now_utc));
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        r#"<testsuites name="monitors" tests="{}" failures="{}" errors="0" skipped="0" time="{wall:.3}">"#,
        c.total, c.failed
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="monitors" tests="{}" failures="{}" errors="0" skipped="0" time="{wall:.3}" timestamp="{timestamp}">"#,
        c.total, c.failed
    );
    for r in results {
        let name = format!("{}: {}", r.id, r.name);
        let _ = writeln!(
            out,
            r#"    <testcase classname="monitors" name="{}" time="{:.3}">"#,
            xml(&name, true),
            seconds(r.timings.total_ms)
        );
        out.push_str("      <properties>\n");
        for (name, value) in junit_properties(r) {
            let _ = writeln!(
                out,
                r#"        <property name="{name}" value="{}"/>"#,
                xml(&value, true)
            );
        }
        out.push_str("      </properties>\n");
        match r.status {
            Status::Passed => {}
            Status::Failed => {
                let (kind, message, hints) = match &r.error {
                    Some(e) => (e.kind.as_str(), e.message.as_str(), e.hints.join("\n")),
                    None => ("failed", "the check failed", String::new()),
                };
                let _ = writeln!(
                    out,
                    r#"      <failure type="{}" message="{}">{}</failure>"#,
                    xml(kind, true),
                    xml(message, true),
                    xml(&hints, false)
                );
            }
            Status::Degraded => {
                let mut text = String::from("degraded");
                if let Some(e) = &r.error {
                    let _ = write!(text, ": {}: {}", e.kind.as_str(), e.message);
                    for hint in &e.hints {
                        let _ = write!(text, "\nhint: {hint}");
                    }
                }
                let timings: Vec<String> = phases(r)
                    .into_iter()
                    .map(|(_, name, ms)| format!("{name} {ms:.1} ms"))
                    .collect();
                let _ = write!(text, "\ntimings: {}", timings.join(", "));
                let _ = writeln!(out, "      <system-out>{}</system-out>", xml(&text, false));
            }
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Facts about a check as JUnit properties: status, target, address, timings, TLS.
fn junit_properties(r: &CheckResult) -> Vec<(&'static str, String)> {
    let mut props = vec![
        ("status", status_str(r.status).to_owned()),
        ("target", r.target.to_string()),
    ];
    if let Some(address) = &r.address {
        props.push(("address", address.to_string()));
    }
    if let Some(e) = &r.error {
        props.push(("error_kind", e.kind.as_str().to_owned()));
    }
    for (phase, _, ms) in phases(r) {
        let name = match phase {
            "dns" => "dns_ms",
            "connect" => "connect_ms",
            "tls" => "tls_ms",
            "first_byte" => "first_byte_ms",
            _ => "total_ms",
        };
        props.push((name, format!("{ms:.3}")));
    }
    if let Some(tls) = &r.tls {
        if let Some(version) = &tls.version {
            props.push(("tls_version", version.clone()));
        }
        if let Some(days) = tls.days_left {
            props.push(("tls_days_left", days.to_string()));
        }
    }
    if r.attempts.len() > 1 {
        props.push(("attempts", r.attempts.len().to_string()));
    }
    props
}

// ---------------------------------------------------------------------------------------
// GitHub annotations
// ---------------------------------------------------------------------------------------

/// The longest annotation message written, in bytes (GitHub shows about this much).
pub const MAX_ANNOTATION_BYTES: usize = 4096;

/// GitHub Actions workflow commands for the results that did not pass: `::error` for a
/// failed one, `::warning` for a degraded one, each with `file=` and `line=` where
/// `declared(id)` says the monitor was declared (left out when it does not know), a
/// `title=` naming the monitor and what failed, and the error with its hints as the
/// message. A pull request shows each on the declaring line.
pub fn github_annotations(
    results: &[CheckResult],
    declared: &dyn Fn(&str) -> Option<(String, u32)>,
) -> String {
    let mut out = String::new();
    for r in results {
        let command = match r.status {
            Status::Passed => continue,
            Status::Degraded => "warning",
            Status::Failed => "error",
        };
        let mut properties = Vec::new();
        if let Some((file, line)) = declared(&r.id) {
            properties.push(format!("file={}", annotation_property(&file)));
            properties.push(format!("line={line}"));
        }
        let kind = r.error.as_ref().map_or("", |e| e.kind.as_str());
        let title = if kind.is_empty() {
            format!("monitor {} {}", r.id, status_str(r.status))
        } else {
            format!("monitor {} {}: {kind}", r.id, status_str(r.status))
        };
        properties.push(format!("title={}", annotation_property(&title)));
        let mut message = match &r.error {
            Some(e) => {
                let mut m = format!("{} ({}): {}", r.name, r.target, e.message);
                for hint in &e.hints {
                    let _ = write!(m, "\nhint: {hint}");
                }
                m
            }
            None => format!(
                "{} ({}): {} in {:.1} ms",
                r.name,
                r.target,
                status_str(r.status),
                r.timings.total_ms
            ),
        };
        if message.len() > MAX_ANNOTATION_BYTES {
            let mut end = MAX_ANNOTATION_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let _ = writeln!(
            out,
            "::{command} {}::{}",
            properties.join(","),
            annotation_data(&message)
        );
    }
    out
}

/// A workflow command's message: `%`, carriage returns and line feeds encoded, as the
/// Actions toolkit does, other controls shown escaped.
fn annotation_data(s: &str) -> String {
    escape_chars(s, |c| match c {
        '%' => Some("%25".into()),
        '\r' => Some("%0D".into()),
        '\n' => Some("%0A".into()),
        c if c.is_control() => Some(shown(c)),
        _ => None,
    })
}

/// A workflow command's property value: as [`annotation_data`], and `:` and `,` encoded.
fn annotation_property(s: &str) -> String {
    escape_chars(&annotation_data(s), |c| match c {
        ':' => Some("%3A".into()),
        ',' => Some("%2C".into()),
        _ => None,
    })
}

// ---------------------------------------------------------------------------------------
// GitHub Markdown
// ---------------------------------------------------------------------------------------

fn status_emoji(status: Status) -> &'static str {
    match status {
        Status::Passed => "✅",
        Status::Degraded => "⚠️",
        Status::Failed => "❌",
    }
}

/// Text for a Markdown table cell: Markdown punctuation that could format or split the
/// cell is backslash-escaped, line breaks become `<br>`, other controls are shown escaped.
fn md_cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '~' | '&' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' | '\n' => out.push_str("<br>"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Text for inline HTML (the `<summary>` of a details block).
fn html(s: &str) -> String {
    escape_chars(s, |c| match c {
        '&' => Some("&amp;".into()),
        '<' => Some("&lt;".into()),
        '>' => Some("&gt;".into()),
        '"' => Some("&quot;".into()),
        c if c.is_control() => Some(shown(c)),
        _ => None,
    })
}

/// A code fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

fn github(results: &[CheckResult]) -> String {
    let mut out = format!(
        "## {} {}\n\n",
        status_emoji(Counts::of(results).worst()),
        md_cell(&summary_line(results))
    );
    if results.is_empty() {
        return out;
    }
    out.push_str("| Status | Monitor | Target | Total (ms) | Error |\n");
    out.push_str("| --- | --- | --- | ---: | --- |\n");
    for r in results {
        let _ = writeln!(
            out,
            "| {} {} | {} | {} | {:.1} | {} |",
            status_emoji(r.status),
            status_str(r.status),
            md_cell(&r.name),
            md_cell(&r.target),
            r.timings.total_ms,
            r.error.as_ref().map_or("", |e| e.kind.as_str())
        );
    }
    for r in results.iter().filter(|r| r.status != Status::Passed) {
        let kind = r.error.as_ref().map_or("", |e| e.kind.as_str());
        let _ = writeln!(
            out,
            "\n<details><summary>{} <b>{}</b> ({}) {}{}{}</summary>\n",
            status_emoji(r.status),
            html(&r.name),
            html(&r.id),
            status_str(r.status),
            if kind.is_empty() { "" } else { ": " },
            kind
        );
        let mut body = String::new();
        if let Some(e) = &r.error {
            body.push_str(&printable(&e.message));
            for hint in &e.hints {
                let _ = write!(body, "\nhint: {}", printable(hint));
            }
        }
        let fence = fence(&body);
        let _ = writeln!(out, "{fence}text\n{body}\n{fence}\n\n</details>");
    }
    out
}
