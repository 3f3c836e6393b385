//! `GET /`: the status page. Server-rendered HTML with inline CSS, no script and no
//! external assets, refreshing itself every 10 seconds: per project a table with a row per
//! deployed monitor and a cell per location holding its latest result. Every piece of
//! user data (names, ids, locations, error messages) is escaped.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use monitor_spec::Status;
use time::OffsetDateTime;

use monitor_spec::api::{LocationStatus, MonitorStatus, ProjectStatus};

const STYLE: &str = "
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; }
h1 { font-size: 1.4rem; margin: 0 0 .2rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .3rem; }
.meta, .id, small, .none { color: var(--muted); }
table { border-collapse: collapse; min-width: 40rem; }
th, td { border: 1px solid #8884; padding: .35rem .55rem; text-align: left; vertical-align: top; }
thead th { background: #8881; }
.id { display: block; font: 12px ui-monospace, monospace; }
.tag { font-size: 11px; border: 1px solid currentColor; border-radius: 3px; padding: 0 .25rem; margin-left: .3rem; color: var(--muted); }
.verdict { font-weight: 600; }
td[data-status=passed] .verdict { color: var(--ok); }
td[data-status=degraded] .verdict { color: var(--warn); }
td[data-status=failed] .verdict { color: var(--bad); }
td[data-status=failed] { background: #cf222e14; }
td[data-status=degraded] { background: #9a670014; }
tr[data-muted=true] th .name { text-decoration: line-through; text-decoration-color: var(--muted); }
small { display: block; max-width: 22rem; overflow-wrap: anywhere; }
";

/// The page for the projects' status, rendered at `now`.
pub fn render(projects: &[ProjectStatus], now: OffsetDateTime) -> String {
    let mut out = String::with_capacity(4096);
    PageText::new(now).fill(&mut out, projects, usize::MAX);
    out
}

/// Renders the page of [`render`] a piece at a time: each [`fill`] appends the next rows,
/// so that a server holds one piece per client rather than the whole page.
///
/// [`fill`]: PageText::fill
#[derive(Debug, Clone)]
pub struct PageText {
    now: OffsetDateTime,
    next: Next,
}

/// What [`PageText`] writes next.
#[derive(Debug, Clone)]
enum Next {
    Head,
    Project(usize),
    /// The row of `monitor` in `project`, whose table has a column per location.
    Row {
        project: usize,
        monitor: usize,
        locations: Vec<String>,
    },
    Done,
}

impl PageText {
    /// The page rendered at `now`.
    pub fn new(now: OffsetDateTime) -> PageText {
        PageText {
            now,
            next: Next::Head,
        }
    }

    /// Appends the next part of the page to `out` until it holds at least `min` bytes or
    /// the page is complete; false once it is complete.
    pub fn fill(&mut self, out: &mut String, projects: &[ProjectStatus], min: usize) -> bool {
        while out.len() < min {
            self.next = match std::mem::replace(&mut self.next, Next::Done) {
                Next::Head => {
                    head(out, projects.is_empty(), self.now);
                    Next::Project(0)
                }
                Next::Project(i) => match projects.get(i) {
                    None => {
                        out.push_str("</body>\n</html>\n");
                        Next::Done
                    }
                    Some(p) => match project(out, p) {
                        None => Next::Project(i + 1),
                        Some(locations) => Next::Row {
                            project: i,
                            monitor: 0,
                            locations,
                        },
                    },
                },
                Next::Row {
                    project,
                    monitor: i,
                    locations,
                } => match projects.get(project).and_then(|p| p.monitors.get(i)) {
                    Some(m) => {
                        monitor(out, m, &locations, self.now);
                        Next::Row {
                            project,
                            monitor: i + 1,
                            locations,
                        }
                    }
                    None => {
                        out.push_str("</tbody>\n</table>\n</section>\n");
                        Next::Project(project + 1)
                    }
                },
                Next::Done => return false,
            };
        }
        !matches!(self.next, Next::Done)
    }
}

fn head(out: &mut String, empty: bool, now: OffsetDateTime) {
    out.push_str(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"refresh\" content=\"10\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Monitors status</title>\n<style>",
    );
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>Monitors status</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} · refreshes every 10 s</p>",
        escape(&clock(now))
    );
    if empty {
        out.push_str("<p class=\"none\">no projects yet</p>\n");
    }
}

/// Writes a project's heading and the head of its table; returns the table's locations,
/// or `None` when the project has no monitors (its section is then complete).
fn project(out: &mut String, p: &ProjectStatus) -> Option<Vec<String>> {
    let _ = writeln!(
        out,
        "<section data-project=\"{0}\">\n<h2>{0}</h2>",
        escape(&p.project)
    );
    if p.monitors.is_empty() {
        out.push_str("<p class=\"none\">no monitors deployed</p>\n</section>\n");
        return None;
    }
    let count = |s: Status| {
        p.monitors
            .iter()
            .flat_map(|m| &m.locations)
            .filter(|l| l.status == s)
            .count()
    };
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} monitors; latest results: {} passed, {} degraded, {} failed</p>",
        p.monitors.len(),
        count(Status::Passed),
        count(Status::Degraded),
        count(Status::Failed)
    );
    let locations: BTreeSet<&str> = p
        .monitors
        .iter()
        .flat_map(|m| &m.locations)
        .map(|l| l.location.as_str())
        .collect();
    out.push_str("<table>\n<thead><tr><th scope=\"col\">monitor</th>");
    for l in &locations {
        let _ = write!(out, "<th scope=\"col\">{}</th>", escape(l));
    }
    if locations.is_empty() {
        out.push_str("<th scope=\"col\">results</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    Some(locations.into_iter().map(str::to_owned).collect())
}

fn monitor(out: &mut String, m: &MonitorStatus, locations: &[String], now: OffsetDateTime) {
    let _ = write!(out, "<tr data-monitor=\"{}\"", escape(&m.id));
    if m.muted {
        out.push_str(" data-muted=\"true\"");
    }
    let _ = write!(
        out,
        "><th scope=\"row\"><span class=\"name\">{}</span>",
        escape(&m.name)
    );
    if m.muted {
        out.push_str("<span class=\"tag\">muted</span>");
    }
    if !m.activated {
        out.push_str("<span class=\"tag\">deactivated</span>");
    }
    let _ = write!(
        out,
        "<span class=\"id\">{} · every {}</span></th>",
        escape(&m.id),
        escape(&m.frequency)
    );
    for l in locations {
        match m.locations.iter().find(|r| r.location == *l) {
            Some(r) => cell(out, r, now),
            None => out.push_str("<td class=\"none\">–</td>"),
        }
    }
    if locations.is_empty() {
        out.push_str("<td class=\"none\">no results yet</td>");
    }
    out.push_str("</tr>\n");
}

fn cell(out: &mut String, r: &LocationStatus, now: OffsetDateTime) {
    let status = status_name(r.status);
    let _ = write!(
        out,
        "<td data-location=\"{}\" data-status=\"{status}\"",
        escape(&r.location)
    );
    if let Some(e) = &r.error {
        let _ = write!(
            out,
            " title=\"{}\"",
            escape(&format!("{}: {}", e.kind.as_str(), e.message))
        );
    }
    let _ = write!(out, "><span class=\"verdict\">{status}</span>");
    if r.consecutive_failures > 1 {
        let _ = write!(out, " ×{}", r.consecutive_failures);
    }
    let started = r
        .started_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let _ = write!(
        out,
        "<br><time datetime=\"{}\">{}</time><br>total {:.1} ms",
        escape(&started),
        escape(&ago(r.started_at, now)),
        r.timings.total_ms
    );
    if let Some(connect) = r.timings.connect_ms {
        let _ = write!(out, " · connect {connect:.1} ms");
    }
    if let Some(days) = r.days_left {
        let _ = write!(out, "<br>certificate: {} days left", days);
    }
    if let Some(e) = &r.error {
        let _ = write!(
            out,
            "<small>{}: {}</small>",
            escape(e.kind.as_str()),
            escape(&e.message)
        );
    }
    out.push_str("</td>");
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    }
}

/// `2025-03-01 12:00:00 UTC`.
fn clock(t: OffsetDateTime) -> String {
    format!("{} UTC", monitor_spec::result::utc_seconds(t, ' '))
}

/// `12 s ago`, `5 min ago`, `3 h ago`, `2 days ago`, then the date.
fn ago(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let s = (now - t).whole_seconds();
    match s {
        ..0 => clock(t),
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        86_400..604_800 => format!("{} days ago", s / 86_400),
        _ => clock(t),
    }
}

/// Escapes text for HTML content and quoted attribute values.
pub fn escape(s: &str) -> String {
    crate::pages::layout::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(escape(input), expected, "{input:?}");
    }

    #[test]
    fn escaping() {
        for (input, expected) in [
            ("plain", "plain"),
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("a & b", "a &amp; b"),
            ("\"q\" 'a'", "&quot;q&quot; &#39;a&#39;"),
        ] {
            check(input, expected);
        }
    }

    #[test]
    fn times() {
        let now = OffsetDateTime::from_unix_timestamp(1_740_826_800).unwrap();
        let at = |s: i64| now - time::Duration::seconds(s);
        assert_eq!(ago(at(5), now), "5 s ago");
        assert_eq!(ago(at(125), now), "2 min ago");
        assert_eq!(ago(at(7300), now), "2 h ago");
        assert_eq!(ago(at(200_000), now), "2 days ago");
        assert_eq!(ago(at(-5), now), "2025-03-01 11:00:05 UTC");
        assert_eq!(clock(now), "2025-03-01 11:00:00 UTC");
    }

    #[test]
    fn pieces_make_the_whole_page() {
        let projects = crate::metrics::sample::projects();
        let now = OffsetDateTime::from_unix_timestamp(1_740_826_900).unwrap();
        let expected = render(&projects, now);
        assert_eq!(expected.matches("<tr data-monitor=").count(), 303);
        assert_eq!(expected.matches("<section data-project=").count(), 3);
        assert!(expected.ends_with("</section>\n</body>\n</html>\n"));
        for min in [1, 100, 4096] {
            let mut page = PageText::new(now);
            let mut joined = String::new();
            let mut pieces = 0;
            loop {
                let mut piece = String::new();
                let more = page.fill(&mut piece, &projects, min);
                pieces += usize::from(!piece.is_empty());
                joined.push_str(&piece);
                if !more {
                    break;
                }
            }
            assert_eq!(joined, expected, "pieces of {min} bytes");
            assert!(pieces > 1, "{pieces} pieces of {min} bytes");
        }
    }

    #[test]
    fn empty_page() {
        let page = render(&[], OffsetDateTime::UNIX_EPOCH);
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
        assert!(page.contains("no projects yet"));
        assert!(!page.contains("<script"));
    }
}
