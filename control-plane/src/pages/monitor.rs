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
    /// Whether it started in a maintenance window.
    pub in_maintenance: bool,
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
        in_maintenance: row.in_maintenance,
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
.rg a,.rg strong{margin-right:.6rem}
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
    if let Some(w) = p.status.and_then(|s| s.maintenance.as_ref()) {
        let _ = write!(
            out,
            "<p class=\"maintenance\" data-maintenance=\"{}\">maintenance: {} until {} UTC; \
             its results are left out of the uptime</p>",
            escape(&w.id),
            escape(&w.name),
            chart::stamp(crate::status::unix_us(w.end))
        );
    }
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
        if l.in_maintenance {
            out.push_str(
                " <small class=\"maintenance\" data-in-maintenance>in maintenance</small>",
            );
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
            let _ = write!(out, "<strong>{}</strong>", r.name());
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
        if f.in_maintenance {
            out.push_str(
                " \u{b7} <span class=\"maintenance\" data-in-maintenance>in maintenance</span>",
            );
        }
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
mod tests;
