//! The document around every page: the head with its style (light and dark), the
//! navigation bar, and escaping of user data.

use std::fmt::Write as _;

use monitor_spec::Status;
use time::OffsetDateTime;

/// The style every page shares; pages add their own rules after it.
pub const STYLE: &str = "
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; --line: #8884; --maint: #0969da; }
@media (prefers-color-scheme: dark) { :root { --ok: #3fb950; --warn: #d29922; --bad: #f85149; --muted: #8b949e; --maint: #4493f8; } }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 auto; padding: 1rem; max-width: 80rem; }
nav { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: baseline; border-bottom: 1px solid var(--line); padding-bottom: .5rem; margin-bottom: 1rem; }
nav .project { font-weight: 600; }
nav form { margin-left: auto; }
a { color: inherit; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .3rem; }
.muted, small { color: var(--muted); }
.passed { color: var(--ok); } .degraded { color: var(--warn); } .failed { color: var(--bad); }
.maintenance { color: var(--maint); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; }
th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
code, pre { font: 12px ui-monospace, monospace; }
pre { overflow-x: auto; padding: .5rem; border: 1px solid var(--line); }
";

/// Writes the start of a page titled `title` for `project` (none on the login form) into
/// `out`: head, style with the page's own `style` rules, and navigation. `refresh` reloads
/// the page every so many seconds; `public` leaves out the links a visitor cannot follow.
pub fn start(
    out: &mut String,
    title: &str,
    project: Option<&str>,
    public: bool,
    style: &str,
    refresh: Option<u32>,
) {
    out.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    if let Some(seconds) = refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{seconds}\">");
    }
    let _ = write!(out, "<title>{}</title><style>", escape(title));
    out.push_str(STYLE);
    out.push_str(style);
    out.push_str("</style></head><body><nav>");
    if let Some(project) = project {
        let q = query_value(project);
        let _ = write!(
            out,
            "<span class=\"project\">{}</span><a href=\"/?project={q}\">Overview</a>",
            escape(project)
        );
        if !public {
            let _ = write!(
                out,
                "<a href=\"/certificates?project={q}\">Certificates</a>\
                 <form method=\"post\" action=\"/logout\"><button>Log out</button></form>"
            );
        }
    }
    out.push_str("</nav><main>");
}

/// Writes the end of a page.
pub fn end(out: &mut String) {
    out.push_str("</main></body></html>");
}

/// `s` with the characters HTML gives a meaning (`&<>"'`) written as references, and
/// control characters as visible escapes.
pub fn escape(s: &str) -> String {
    monitor_spec::escape::escape_chars(s, |c| match c {
        '&' => Some("&amp;".into()),
        '<' => Some("&lt;".into()),
        '>' => Some("&gt;".into()),
        '"' => Some("&quot;".into()),
        '\'' => Some("&#39;".into()),
        _ => None,
    })
}

/// `s` percent-encoded for a query string value.
pub fn query_value(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The name of a verdict: `passed`, `degraded` or `failed`.
pub fn verdict(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    }
}

/// The short class of a verdict the pages colour by: `p`, `d` or `f`.
pub fn verdict_class(status: Status) -> &'static str {
    match status {
        Status::Passed => "p",
        Status::Degraded => "d",
        Status::Failed => "f",
    }
}

/// A verdict from its name, as a query string gives it.
pub fn parse_verdict(name: &str) -> Option<Status> {
    match name {
        "passed" => Some(Status::Passed),
        "degraded" => Some(Status::Degraded),
        "failed" => Some(Status::Failed),
        _ => None,
    }
}

/// `2025-03-01 12:00:00 UTC`.
pub fn clock(t: OffsetDateTime) -> String {
    format!("{} UTC", monitor_spec::result::utc_seconds(t, ' '))
}

/// The instant of unix microseconds (the epoch when out of range).
pub fn from_us(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// An uptime percentage as every page shows it: rounded down to two decimals, so that
/// `100.00` means no failure at all and one failure in 10 000 checks shows `99.99`;
/// `–` when there were no checks.
pub fn uptime_text(percent: Option<f64>) -> String {
    match percent {
        Some(p) if p.is_finite() => format!("{:.2}", (p * 100.0).floor() / 100.0),
        _ => "–".to_owned(),
    }
}

/// A time in milliseconds as the pages show it: one decimal.
pub fn ms_text(ms: f64) -> String {
    format!("{ms:.1}")
}

/// `s` cut to at most `max` characters, with `…` when cut: long error messages in a
/// `title` stay readable and the page small.
pub fn clip(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]).into(),
        None => s.into(),
    }
}
