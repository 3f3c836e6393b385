//! `/monitors/{id}`: one monitor's page, rendered from what the route read: the header
//! (spec facts, current verdicts, uptime), the response-time chart and verdict timeline
//! of the chosen range ([`super::chart`]), the certificate chain, the last failures and
//! the deployed spec. Pure functions of their input; every piece of user data is escaped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use monitor_spec::api::{HistoryPoint, MonitorStatus, Uptime};
use serde_json::Value;

use super::chart::{self, Chart, Line, Mark, Point, status_name};
use super::layout::{self, escape, query_value};
use crate::store::{Step, StoredResult};

/// The ranges the page offers, and the history each plots. The chart shows exactly the
/// points the API's `/history` answers for the same `from`, `to` and `step`: 24h → raw
/// results (`step=raw`), 7d and 30d → hourly rollups (`step=1h`), 90d → daily rollups
/// (`step=1d`). When the retention does not reach back that far, or the range holds more
/// than the API's 10 000 points, the next wider step is taken (the page names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last 24 hours.
    H24,
    /// The last 7 days.
    D7,
    /// The last 30 days.
    D30,
    /// The last 90 days.
    D90,
}

impl Range {
    /// Every range, shortest first.
    pub const ALL: [Range; 4] = [Range::H24, Range::D7, Range::D30, Range::D90];

    /// The range named `text` (`24h`, `7d`, `30d`, `90d`).
    pub fn parse(text: &str) -> Option<Range> {
        Range::ALL.into_iter().find(|r| r.name() == text)
    }

    /// Its name in queries.
    pub fn name(self) -> &'static str {
        match self {
            Range::H24 => "24h",
            Range::D7 => "7d",
            Range::D30 => "30d",
            Range::D90 => "90d",
        }
    }

    /// Its length in microseconds.
    pub fn span_us(self) -> i64 {
        let day = 86_400_000_000;
        match self {
            Range::H24 => day,
            Range::D7 => 7 * day,
            Range::D30 => 30 * day,
            Range::D90 => 90 * day,
        }
    }

    /// The step it plots when retention and size allow (`None`: raw results).
    pub fn step(self) -> Option<Step> {
        match self {
            Range::H24 => None,
            Range::D7 | Range::D30 => Some(Step::Hour),
            Range::D90 => Some(Step::Day),
        }
    }
}

/// One certificate of a chain, as the result JSON gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cert {
    /// Subject distinguished name.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Expiry, RFC 3339.
    pub not_after: String,
    /// Whole days left when it was checked.
    pub days_left: i64,
    /// SHA-256 fingerprint, hex.
    pub sha256: String,
}

/// A chain and the locations whose latest result presented it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The locations, sorted.
    pub locations: Vec<String>,
    /// The certificates, leaf first.
    pub certs: Vec<Cert>,
}

/// The chain in a stored result's JSON (`tls.chain`); empty without TLS or when the JSON
/// is not readable.
pub fn chain_of(json: &str) -> Vec<Cert> {
    let Ok(v) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    v["tls"]["chain"]
        .as_array()
        .map(|chain| {
            chain
                .iter()
                .map(|c| Cert {
                    subject: text(c, "subject"),
                    issuer: text(c, "issuer"),
                    not_after: text(c, "not_after"),
                    days_left: c["days_left"].as_i64().unwrap_or_default(),
                    sha256: text(c, "sha256"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The chains of `(location, chain)` pairs, locations seeing the same certificates (by
/// fingerprint) together; empty chains left out.
pub fn group_chains(seen: Vec<(String, Vec<Cert>)>) -> Vec<Chain> {
    let mut groups: BTreeMap<Vec<String>, Chain> = BTreeMap::new();
    for (location, certs) in seen.into_iter().filter(|(_, c)| !c.is_empty()) {
        let key: Vec<String> = certs.iter().map(|c| c.sha256.clone()).collect();
        groups
            .entry(key)
            .or_insert_with(|| Chain {
                locations: Vec::new(),
                certs,
            })
            .locations
            .push(location);
    }
    let mut chains: Vec<Chain> = groups.into_values().collect();
    for c in &mut chains {
        c.locations.sort();
    }
    chains.sort_by(|a, b| a.locations.cmp(&b.locations));
    chains
}

/// A result that did not pass, as the failures list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The result id.
    pub id: String,
    /// Where it ran.
    pub location: String,
    /// When it started, unix µs.
    pub started_us: i64,
    /// Failed or degraded.
    pub status: monitor_spec::Status,
    /// The error kind, such as `connection_refused`.
    pub kind: Option<String>,
    /// The error message.
    pub message: String,
    /// What to try.
    pub hints: Vec<String>,
    /// The start of the response.
    pub excerpt: String,
}

/// The longest response excerpt shown, in characters.
const EXCERPT_CHARS: usize = 2000;

/// The failure of a stored result, from its JSON (or its facts when the JSON is gone).
pub fn failure_of(row: &StoredResult) -> Failure {
    let v: Value = row
        .json
        .as_deref()
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    let error = &v["error"];
    Failure {
        id: row.id.clone(),
        location: row.location.clone(),
        started_us: row.started_us,
        status: row.status,
        kind: error["kind"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| row.facts.error.map(|k| k.as_str().to_owned())),
        message: error["message"].as_str().unwrap_or_default().to_owned(),
        hints: error["hints"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        excerpt: v["response_excerpt"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(EXCERPT_CHARS)
            .collect(),
    }
}

/// What the page shows.
#[derive(Debug, Clone)]
pub struct MonitorPage<'a> {
    /// The project.
    pub project: &'a str,
    /// A visitor without a token: verdicts, uptime and timings only.
    pub public: bool,
    /// The range shown.
    pub range: Range,
    /// The deployed spec.
    pub spec: &'a monitor_spec::TcpMonitor,
    /// Its JSON as deployed.
    pub spec_json: &'a str,
    /// Its status (current verdicts, uptime); `None` before any result.
    pub status: Option<&'a MonitorStatus>,
    /// The start of the range, unix µs.
    pub from_us: i64,
    /// Its end, unix µs.
    pub to_us: i64,
    /// The step plotted (`None`: raw results).
    pub step: Option<Step>,
    /// The points of the range, each with its start (unix µs), oldest first.
    pub points: &'a [(i64, HistoryPoint)],
    /// The chains of the latest results.
    pub chains: &'a [Chain],
    /// The last failures, newest first.
    pub failures: &'a [Failure],
}

/// The page's own style rules.
const STYLE: &str = "
.rg a{margin-right:.6rem} .rg b{margin-right:.6rem}
.lg{display:flex;flex-wrap:wrap;gap:.2rem 1rem;margin:.3rem 0}
.lg i{display:inline-block;width:1.2rem;height:.25rem;vertical-align:middle;margin-right:.3rem}
.tr{display:grid;grid-template-columns:6rem 1fr;gap:.5rem;align-items:center;margin:.2rem 0}
.tr span{overflow:hidden;text-overflow:ellipsis}
.fl{border-top:1px solid var(--line);padding:.4rem 0}
.fl ul{margin:.2rem 0;padding-left:1.2rem}
.kv{margin:.2rem 0}
";

/// The name of a step in pages and attributes.
fn step_name(step: Option<Step>) -> &'static str {
    match step {
        None => "raw",
        Some(Step::Hour) => "1h",
        Some(Step::Day) => "1d",
    }
}

/// An uptime as shown, with the exact value in `data-uptime`.
fn uptime_cell(out: &mut String, window: &str, value: Option<f64>) {
    match value {
        Some(v) => {
            let _ = write!(
                out,
                "<td data-window=\"{window}\" data-uptime=\"{v}\">{}%</td>",
                trim_percent(v)
            );
        }
        None => {
            let _ = write!(
                out,
                "<td data-window=\"{window}\" class=\"muted\">\u{2013}</td>"
            );
        }
    }
}

/// A percentage with up to three decimals, no trailing zeros.
fn trim_percent(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn uptime_cells(out: &mut String, u: &Uptime) {
    uptime_cell(out, "24h", u.h24);
    uptime_cell(out, "7d", u.d7);
    uptime_cell(out, "30d", u.d30);
    uptime_cell(out, "90d", u.d90);
}

/// The class of a count of days left: red under 14, amber under 30.
fn days_class(days: i64) -> &'static str {
    if days < 14 {
        "failed"
    } else if days < 30 {
        "degraded"
    } else {
        "passed"
    }
}

/// The lines of the chart: one per location, sorted by location.
fn lines_of(points: &[(i64, HistoryPoint)]) -> Vec<Line> {
    let mut by_location: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
    for (start_us, p) in points {
        by_location.entry(&p.location).or_default().push(Point {
            start_us: *start_us,
            p50_ms: p.p50_ms,
            p95_ms: p.p95_ms,
        });
    }
    by_location
        .into_iter()
        .map(|(location, points)| Line {
            location: location.to_owned(),
            points,
        })
        .collect()
}

/// The timeline marks of one location's points: a raw result lasts until the next one
/// when that is at most `gap_us` later, else one interval (`every_us`); a rollup lasts
/// its bucket.
fn marks_of(
    points: &[&(i64, HistoryPoint)],
    step: Option<Step>,
    every_us: i64,
    gap_us: i64,
) -> Vec<Mark> {
    points
        .iter()
        .enumerate()
        .map(|(i, (start, p))| {
            let end = match step {
                Some(step) => start + step.micros(),
                None => points
                    .get(i + 1)
                    .map(|(next, _)| *next)
                    .filter(|next| next - start <= gap_us)
                    .unwrap_or(start + every_us),
            };
            Mark {
                start_us: *start,
                end_us: end,
                checks: p.checks,
                failures: p.failures,
                degraded: p.degraded,
                errors: p.error.map(|e| e.as_str().to_owned()).into_iter().collect(),
            }
        })
        .collect()
}

/// Renders the page.
pub fn render(p: &MonitorPage<'_>) -> String {
    let spec = p.spec;
    let mut out = String::with_capacity(32 * 1024);
    let mut style = String::from(chart::STYLE);
    style.push_str(STYLE);
    layout::start(
        &mut out,
        &spec.name,
        Some(p.project),
        p.public,
        &style,
        Some(60),
    );
    let id = escape(&spec.id);
    let _ = write!(
        out,
        "<h1>{}</h1><p class=\"kv muted\"><code>{id}</code>",
        escape(&spec.name)
    );
    if let Some(group) = &spec.group {
        let _ = write!(out, " \u{b7} group {}", escape(group));
    }
    for tag in &spec.tags {
        let _ = write!(out, " \u{b7} <code>#{}</code>", escape(tag));
    }
    out.push_str("</p><p class=\"kv\">");
    if !p.public {
        let _ = write!(
            out,
            "<code>{}</code> \u{b7} ",
            escape(&spec.target.to_string())
        );
    }
    let locations = if spec.locations.is_empty() && spec.private_locations.is_empty() {
        "every location".to_owned()
    } else {
        let all: Vec<&str> = spec
            .locations
            .iter()
            .chain(&spec.private_locations)
            .map(String::as_str)
            .collect();
        all.join(", ")
    };
    let _ = write!(
        out,
        "every {} \u{b7} {}{}{}</p>",
        escape(spec.frequency.as_str()),
        escape(&locations),
        if spec.muted { " \u{b7} muted" } else { "" },
        if spec.activated { "" } else { " \u{b7} paused" }
    );
    current(&mut out, p);
    response_times(&mut out, p);
    if !p.public {
        certificates(&mut out, p.chains);
        failures(&mut out, p.failures);
        let pretty = serde_json::from_str::<Value>(p.spec_json)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| p.spec_json.to_owned());
        let _ = write!(
            out,
            "<h2>Spec</h2><details><summary>The deployed spec (JSON)</summary><pre data-spec>{}</pre></details>",
            escape(&pretty)
        );
    }
    layout::end(&mut out);
    out
}

/// The current verdict and uptime per location, and of the whole monitor.
fn current(out: &mut String, p: &MonitorPage<'_>) {
    out.push_str("<h2>Now</h2>");
    let Some(status) = p.status.filter(|s| !s.locations.is_empty()) else {
        out.push_str("<p class=\"muted\">no results yet</p>");
        return;
    };
    let _ = write!(
        out,
        "<div class=\"scroll\"><table data-monitor=\"{}\"><tr><th>Location</th><th>Verdict</th>\
         <th>Total</th><th>Checked (UTC)</th><th>Cert</th><th>24h</th><th>7d</th><th>30d</th><th>90d</th></tr>",
        escape(&status.id)
    );
    for l in &status.locations {
        let verdict = status_name(l.status);
        let _ = write!(
            out,
            "<tr><td>{loc}</td><td class=\"{verdict}\" data-location=\"{loc}\" data-status=\"{verdict}\">{verdict}",
            loc = escape(&l.location)
        );
        if let (false, Some(e)) = (p.public, &l.error) {
            let _ = write!(out, " <small>{}</small>", escape(e.kind.as_str()));
        }
        let _ = write!(
            out,
            "</td><td data-total-ms=\"{}\">{:.0} ms</td><td>{}</td>",
            l.timings.total_ms,
            l.timings.total_ms,
            chart::stamp(crate::status::unix_us(l.started_at))
        );
        match l.days_left {
            Some(d) => {
                let _ = write!(
                    out,
                    "<td class=\"{}\" data-days-left=\"{d}\">{d} d</td>",
                    days_class(d)
                );
            }
            None => out.push_str("<td class=\"muted\">\u{2013}</td>"),
        }
        uptime_cells(out, &l.uptime);
        out.push_str("</tr>");
    }
    out.push_str("<tr data-total><th colspan=\"5\">All locations</th>");
    uptime_cells(out, &status.uptime);
    out.push_str("</tr></table></div>");
}

/// The range links, the chart with its legend, and the timeline.
fn response_times(out: &mut String, p: &MonitorPage<'_>) {
    out.push_str("<h2>Response time</h2><p class=\"rg\">");
    let project = query_value(p.project);
    let id = query_value(&p.spec.id);
    for r in Range::ALL {
        if r == p.range {
            let _ = write!(out, "<b>{}</b>", r.name());
        } else {
            let _ = write!(
                out,
                "<a href=\"/monitors/{id}?range={}&amp;project={project}\">{}</a>",
                r.name(),
                r.name()
            );
        }
    }
    let step = step_name(p.step);
    let what = match p.step {
        None => "each result",
        Some(Step::Hour) => "hourly p50 (line) and p95 (dashed)",
        Some(Step::Day) => "daily p50 (line) and p95 (dashed)",
    };
    let _ = write!(out, "<small>{what}, times in UTC (step={step})</small></p>");
    let lines = lines_of(p.points);
    out.push_str("<div class=\"lg\">");
    for (i, line) in lines.iter().enumerate() {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{}</span>",
            chart::colour(i),
            escape(&line.location)
        );
    }
    out.push_str("</div><div class=\"scroll\">");
    let every_us = i64::try_from(p.spec.frequency.as_secs())
        .unwrap_or(i64::MAX / 4_000_000)
        .saturating_mul(1_000_000);
    // A gap longer than 2.5 intervals (1.5 buckets), and than 2% of the range, breaks the
    // line and shows on the timeline; a shorter one is not worth a mark at this width.
    let gap_us = match p.step {
        None => every_us.saturating_mul(5) / 2,
        Some(step) => step.micros() * 3 / 2,
    }
    .max((p.to_us - p.from_us) / 50);
    chart::chart(
        out,
        &Chart {
            from_us: p.from_us,
            to_us: p.to_us,
            step,
            gap_us,
            degraded_ms: f64::from(p.spec.degraded_response_time_ms),
            max_ms: f64::from(p.spec.max_response_time_ms),
            lines: &lines,
        },
    );
    out.push_str("</div><h2>Verdicts</h2>");
    let mut by_location: BTreeMap<&str, Vec<&(i64, HistoryPoint)>> = BTreeMap::new();
    for point in p.points {
        by_location
            .entry(&point.1.location)
            .or_default()
            .push(point);
    }
    if by_location.is_empty() {
        out.push_str("<p class=\"muted\">no results in this range</p>");
    }
    for (location, points) in by_location {
        let _ = write!(out, "<div class=\"tr\"><span>{}</span>", escape(location));
        let marks = marks_of(&points, p.step, every_us, gap_us);
        chart::timeline(out, location, p.from_us, p.to_us, &marks, p.public);
        out.push_str("</div>");
    }
}

/// The certificate chains of the latest results.
fn certificates(out: &mut String, chains: &[Chain]) {
    if chains.is_empty() {
        return;
    }
    out.push_str("<h2>Certificate</h2>");
    for chain in chains {
        let _ = write!(
            out,
            "<p class=\"kv\">seen from {}</p><div class=\"scroll\"><table data-chain=\"{}\">\
             <tr><th>Subject</th><th>Issuer</th><th>Expires (UTC)</th><th>Left</th><th>SHA-256</th></tr>",
            escape(&chain.locations.join(", ")),
            escape(&chain.locations.join(" "))
        );
        for c in &chain.certs {
            let _ = write!(
                out,
                "<tr data-sha256=\"{sha}\"><td>{}</td><td>{}</td><td>{}</td>\
                 <td class=\"{}\" data-days-left=\"{d}\">{d} d</td><td><code>{sha}</code></td></tr>",
                escape(&c.subject),
                escape(&c.issuer),
                escape(&c.not_after),
                days_class(c.days_left),
                d = c.days_left,
                sha = escape(&c.sha256)
            );
        }
        out.push_str("</table></div>");
    }
}

/// The last failures, newest first.
fn failures(out: &mut String, failures: &[Failure]) {
    out.push_str("<h2>Last failures</h2>");
    if failures.is_empty() {
        out.push_str("<p class=\"muted\">none while raw results are kept</p>");
        return;
    }
    for f in failures {
        let verdict = status_name(f.status);
        let _ = write!(
            out,
            "<div class=\"fl\" data-result=\"{}\"><b class=\"{verdict}\">{verdict}</b> {} UTC \u{b7} {}",
            escape(&f.id),
            chart::stamp(f.started_us),
            escape(&f.location)
        );
        if let Some(kind) = &f.kind {
            let _ = write!(out, " \u{b7} <code>{}</code>", escape(kind));
        }
        if !f.message.is_empty() {
            let _ = write!(out, "<div>{}</div>", escape(&f.message));
        }
        if !f.hints.is_empty() {
            out.push_str("<ul>");
            for h in &f.hints {
                let _ = write!(out, "<li>{}</li>", escape(h));
            }
            out.push_str("</ul>");
        }
        if !f.excerpt.is_empty() {
            let _ = write!(out, "<pre>{}</pre>", escape(&f.excerpt));
        }
        out.push_str("</div>");
    }
}

/// A page that says what went wrong: a 404 for an unknown monitor, a 400 for a bad
/// range. `message` is text, escaped here.
pub fn problem(project: &str, public: bool, title: &str, message: &str) -> String {
    let mut out = String::new();
    layout::start(&mut out, title, Some(project), public, "", None);
    let _ = write!(
        out,
        "<h1>{}</h1><p>{}</p><p><a href=\"/?project={}\">back to the overview</a></p>",
        escape(title),
        escape(message),
        query_value(project)
    );
    layout::end(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use monitor_spec::api::{LocationStatus, MonitorStatus, Uptime};
    use monitor_spec::{ErrorKind, ProbeError, Status, TcpMonitor, Timings};

    use super::*;
    use crate::store::ResultFacts;

    const HOUR: i64 = 3_600_000_000;
    const NOW: i64 = 1_764_950_400_000_000; // 2025-12-05T16:00:00Z

    fn point(location: &str, start: i64, ms: f64, failures: u64) -> (i64, HistoryPoint) {
        (
            start,
            HistoryPoint {
                location: location.to_owned(),
                start: crate::status::rfc3339_us(start),
                checks: 60,
                failures,
                degraded: 0,
                p50_ms: ms,
                p95_ms: ms * 1.7,
                max_ms: ms * 3.0,
                min_days_left: Some(40),
                id: None,
                status: None,
                error: None,
            },
        )
    }

    fn status(id: &str) -> MonitorStatus {
        let location = |name: &str, status: Status, error: Option<ProbeError>| LocationStatus {
            location: name.to_owned(),
            agent: format!("{name}-1"),
            status,
            started_at: time::OffsetDateTime::from_unix_timestamp(NOW / 1_000_000).unwrap(),
            error,
            timings: Timings {
                total_ms: 12.5,
                ..Timings::default()
            },
            days_left: Some(12),
            consecutive_failures: 0,
            cert_expiry: None,
            uptime: Uptime {
                h24: Some(99.5),
                d7: Some(100.0),
                d30: None,
                d90: None,
            },
        };
        MonitorStatus {
            id: id.to_owned(),
            name: "n".to_owned(),
            muted: false,
            activated: true,
            run_parallel: false,
            frequency: "1m".to_owned(),
            alert_channels: Vec::new(),
            group: None,
            tags: Vec::new(),
            locations: vec![
                location(
                    "eu",
                    Status::Failed,
                    Some(ProbeError {
                        kind: ErrorKind::Refused,
                        message: "refused <b>".to_owned(),
                        hints: vec!["start it".to_owned()],
                    }),
                ),
                location("us", Status::Passed, None),
            ],
            uptime: Uptime {
                h24: Some(99.75),
                d7: Some(100.0),
                d30: None,
                d90: None,
            },
        }
    }

    fn render_with(
        spec: &TcpMonitor,
        points: &[(i64, HistoryPoint)],
        range: Range,
        public: bool,
        chains: &[Chain],
        failures: &[Failure],
    ) -> String {
        let json = serde_json::to_string(spec).unwrap();
        let status = status(&spec.id);
        render(&MonitorPage {
            project: "shop <&>",
            public,
            range,
            spec,
            spec_json: &json,
            status: Some(&status),
            from_us: NOW - range.span_us(),
            to_us: NOW,
            step: range.step(),
            points,
            chains,
            failures,
        })
    }

    fn gzip_len(text: &str) -> usize {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        gz.finish().unwrap().len()
    }

    #[test]
    fn ranges_read_and_name_themselves() {
        for r in Range::ALL {
            assert_eq!(Range::parse(r.name()), Some(r));
        }
        assert_eq!(Range::parse("1y"), None);
        assert_eq!(Range::parse("24H"), None);
        assert_eq!(Range::H24.step(), None);
        assert_eq!(Range::D30.step(), Some(Step::Hour));
        assert_eq!(Range::D90.step(), Some(Step::Day));
        assert_eq!(Range::D7.span_us(), 7 * 24 * HOUR);
    }

    #[test]
    fn thirty_days_of_two_locations_stay_small() {
        let spec = TcpMonitor::new("db", "db.internal", 5432)
            .name("Database")
            .thresholds(300, 1000);
        // 2 × 720 hourly points with varying times and some failing hours.
        let mut points = Vec::new();
        for h in 0..720 {
            let start = NOW - 30 * 24 * HOUR + h * HOUR;
            for (i, location) in ["eu", "us"].into_iter().enumerate() {
                let ms = 20.0 + ((h * 37 + i as i64 * 11) % 90) as f64;
                points.push(point(location, start, ms, u64::from(h % 97 == 0)));
            }
        }
        points.sort_by(|a, b| (a.0, &a.1.location).cmp(&(b.0, &b.1.location)));
        let failures: Vec<Failure> = (0..20)
            .map(|i| Failure {
                id: format!("db/eu/{i}"),
                location: "eu".to_owned(),
                started_us: NOW - i * HOUR,
                status: Status::Failed,
                kind: Some("connection_refused".to_owned()),
                message: "connection refused by 10.0.0.1:5432".to_owned(),
                hints: vec!["is the service running?".to_owned()],
                excerpt: "x".repeat(200),
            })
            .collect();
        let html = render_with(&spec, &points, Range::D30, false, &[], &failures);
        let (plain, gzip) = (html.len(), gzip_len(&html));
        // Measured: 43 376 bytes, 13 311 gzip.
        assert!(plain < 60 * 1024, "{plain} bytes plain");
        assert!(gzip < 20 * 1024, "{gzip} bytes gzip");
        assert!(
            html.contains("data-points=\"1440\""),
            "every point is plotted"
        );
        assert_eq!(html.matches("data-points=\"720\"").count(), 2);
        assert!(html.contains("data-step=\"1h\""));
        // The most the history answers, 10 000 raw results over 24 hours, each a point:
        // sent compressed, still well under 100 KB.
        let every = 24 * HOUR / 10_000;
        let raw: Vec<(i64, HistoryPoint)> = (0..10_000)
            .map(|k| {
                let ms = 20.0 + ((k * k * 31) % 97) as f64;
                let location = ["eu", "us"][(k % 2) as usize];
                let mut p = point(location, NOW - 24 * HOUR + k * every, ms, 0);
                p.1.checks = 1;
                p
            })
            .collect();
        let html = render_with(&spec, &raw, Range::H24, false, &[], &failures);
        let (plain, gzip) = (html.len(), gzip_len(&html));
        assert!(
            html.contains("data-points=\"10000\""),
            "every point is plotted"
        );
        // Measured: 96 237 bytes, 28 913 gzip.
        assert!(gzip < 40 * 1024, "{gzip} bytes gzip");
        assert!(plain < 100 * 1024, "{plain} bytes plain");
    }

    #[test]
    fn the_page_shows_the_monitor() {
        let mut spec = TcpMonitor::new("db", "db.internal", 5432)
            .name("Data<base>")
            .thresholds(300, 1000);
        spec.group = Some("core & more".to_owned());
        spec.tags = vec!["<t>".to_owned()];
        let points = vec![
            point("eu", NOW - 2 * HOUR, 30.0, 0),
            point("eu", NOW - HOUR, 40.0, 2),
        ];
        let chain = Chain {
            locations: vec!["eu".to_owned(), "us".to_owned()],
            certs: vec![Cert {
                subject: "CN=<db>".to_owned(),
                issuer: "CN=ca".to_owned(),
                not_after: "2026-01-01T00:00:00Z".to_owned(),
                days_left: 26,
                sha256: "ab12".to_owned(),
            }],
        };
        let failure = Failure {
            id: "db/eu/7".to_owned(),
            location: "eu".to_owned(),
            started_us: NOW - HOUR,
            status: Status::Failed,
            kind: Some("connection_refused".to_owned()),
            message: "refused by <10.0.0.1>".to_owned(),
            hints: vec!["check the <port>".to_owned()],
            excerpt: "</pre><script>x</script>".to_owned(),
        };
        let html = render_with(
            &spec,
            &points,
            Range::D7,
            false,
            std::slice::from_ref(&chain),
            std::slice::from_ref(&failure),
        );
        for shown in [
            "<h1>Data&lt;base&gt;</h1>",
            "group core &amp; more",
            "#&lt;t&gt;",
            "<code>db.internal:5432</code>",
            "data-location=\"eu\" data-status=\"failed\"",
            "data-location=\"us\" data-status=\"passed\"",
            "data-window=\"24h\" data-uptime=\"99.75\">99.75%",
            "data-days-left=\"26\">26 d",
            "seen from eu, us",
            "CN=&lt;db&gt;",
            "<code>ab12</code>",
            "data-result=\"db/eu/7\"",
            "refused by &lt;10.0.0.1&gt;",
            "<li>check the &lt;port&gt;</li>",
            "<pre>&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;</pre>",
            "data-spec",
            "&quot;id&quot;: &quot;db&quot;",
            "<b>7d</b>",
            "href=\"/monitors/db?range=24h&amp;project=shop%20%3C%26%3E\"",
            "data-points=\"2\"",
            "data-runs=\"2\"",
            "2 failed",
        ] {
            assert!(html.contains(shown), "{shown} is missing:\n{html}");
        }
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<base>"), "{html}");
    }

    #[test]
    fn a_public_page_leaks_no_error_address_or_excerpt() {
        let spec = TcpMonitor::new("db", "db.internal", 5432);
        let failure = Failure {
            id: "db/eu/7".to_owned(),
            location: "eu".to_owned(),
            started_us: NOW,
            status: Status::Failed,
            kind: Some("connection_refused".to_owned()),
            message: "secret message".to_owned(),
            hints: vec!["secret hint".to_owned()],
            excerpt: "secret excerpt".to_owned(),
        };
        let mut raw = point("eu", NOW - HOUR, 5.0, 1);
        raw.1.error = Some(ErrorKind::Refused);
        let html = render_with(
            &spec,
            &[raw],
            Range::H24,
            true,
            &[],
            std::slice::from_ref(&failure),
        );
        for hidden in ["db.internal", "refused", "secret", "start it"] {
            assert!(!html.contains(hidden), "{hidden} leaks:\n{html}");
        }
        assert!(html.contains("data-status=\"failed\""), "{html}");
        assert!(html.contains("data-uptime=\"99.5\""), "{html}");
    }

    #[test]
    fn chains_and_failures_read_from_result_json() {
        let json = r#"{"status":"passed","tls":{"chain":[
            {"subject":"CN=a","issuer":"CN=ca","not_after":"2026-02-01T00:00:00Z","days_left":58,"sha256":"aa","other":1},
            {"subject":"CN=ca","issuer":"CN=ca","not_after":"2030-01-01T00:00:00Z","days_left":1488,"sha256":"cc"}]}}"#;
        let certs = chain_of(json);
        assert_eq!(certs.len(), 2);
        assert_eq!(
            (
                certs[0].subject.as_str(),
                certs[0].days_left,
                certs[0].sha256.as_str()
            ),
            ("CN=a", 58, "aa")
        );
        assert!(chain_of("{\"status\":\"failed\"}").is_empty());
        assert!(chain_of("not json").is_empty());
        let other = vec![Cert {
            sha256: "bb".to_owned(),
            ..certs[0].clone()
        }];
        let chains = group_chains(vec![
            ("us".to_owned(), certs.clone()),
            ("ap".to_owned(), other),
            ("eu".to_owned(), certs.clone()),
            ("sa".to_owned(), Vec::new()),
        ]);
        assert_eq!(chains.len(), 2);
        assert_eq!(chains[0].locations, ["ap"]);
        assert_eq!(chains[1].locations, ["eu", "us"]);
        assert_eq!(chains[1].certs, certs);

        let mut row = StoredResult {
            id: "db/eu/3".to_owned(),
            location: "eu".to_owned(),
            agent: "eu-1".to_owned(),
            tick: 3,
            status: Status::Failed,
            started_us: NOW,
            received_us: NOW,
            facts: ResultFacts {
                error: Some(ErrorKind::ReadTimeout),
                ..ResultFacts::default()
            },
            json: Some(
                r#"{"error":{"kind":"connection_refused","message":"no","hints":["a","b"]},"response_excerpt":"hi"}"#
                    .to_owned(),
            ),
        };
        let f = failure_of(&row);
        assert_eq!(f.kind.as_deref(), Some("connection_refused"));
        assert_eq!((f.message.as_str(), f.excerpt.as_str()), ("no", "hi"));
        assert_eq!(f.hints, ["a", "b"]);
        row.json = None;
        let f = failure_of(&row);
        assert_eq!(f.kind.as_deref(), Some("read_timeout"));
        assert!(f.message.is_empty() && f.hints.is_empty());
    }

    #[test]
    fn a_raw_result_lasts_until_the_next_unless_a_gap_is_between() {
        let minute = 60_000_000;
        let points = [
            point("eu", NOW, 1.0, 0),
            point("eu", NOW + 20 * minute, 1.0, 1),
            point("eu", NOW + 120 * minute, 1.0, 0),
        ];
        let refs: Vec<&(i64, HistoryPoint)> = points.iter().collect();
        let marks = marks_of(&refs, None, 10_000_000, 29 * minute);
        let spans: Vec<(i64, i64)> = marks
            .iter()
            .map(|m| (m.start_us - NOW, m.end_us - NOW))
            .collect();
        assert_eq!(
            spans,
            [
                (0, 20 * minute),
                (20 * minute, 20 * minute + 10_000_000),
                (120 * minute, 120 * minute + 10_000_000)
            ]
        );
        let hourly = marks_of(&refs, Some(Step::Hour), 10_000_000, 29 * minute);
        assert!(hourly.iter().all(|m| m.end_us - m.start_us == HOUR));
        assert_eq!(hourly[1].failures, 1);
    }

    #[test]
    fn problems_are_escaped_pages() {
        let html = problem("p", false, "Bad range", "range `<x>` is not one of 24h, 7d");
        assert!(html.contains("<h1>Bad range</h1>"));
        assert!(html.contains("range `&lt;x&gt;` is not one of 24h, 7d"));
        assert!(html.contains("<meta name=\"viewport\""));
    }
}
