//! `/`: the overview of a project, rendered from its status and recent results: monitors
//! grouped, a verdict per location, a bar of the last results, uptime, total time and
//! certificate days, with filters by tag, location and verdict. Monitors in an open
//! maintenance window, and results in one, show as "maintenance" in their own colour.
//!
//! Fixed rules: uptime is [`layout::uptime_text`] (rounded down to two decimals); the
//! total time is the largest of the latest results' totals over the locations shown
//! ([`layout::ms_text`], one decimal); certificate days are the fewest over the locations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use monitor_spec::Status;
use monitor_spec::api::{MonitorStatus, ProjectStatus};
use monitor_spec::maintenance::ListedWindow;
use serde::Deserialize;
use time::OffsetDateTime;

use super::layout::{self, escape, query_value, verdict, verdict_class};
use crate::store::RecentResult;

/// How many results the bar of a monitor shows, merged over its locations.
pub const BAR_RESULTS: usize = 90;

/// How many seconds the page waits before it reloads itself.
pub const REFRESH_SECONDS: u32 = 30;

/// Days left under which a certificate is highlighted when its monitor sets no more.
pub const WARN_DAYS: i64 = 14;

/// The style of the overview, after [`layout::STYLE`].
const STYLE: &str = "
.f1{display:flex;flex-wrap:wrap;gap:.3rem .8rem;align-items:center;margin:.5rem 0 1rem}
.ov{width:100%}.ov th,.ov td{padding:.25rem .4rem}
.ov tbody th{font-weight:400}.ov .g th{font-weight:600;padding-top:1rem}
.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.p{color:var(--ok)}td.d{color:var(--warn)}td.f{color:var(--bad);font-weight:600}
.b,.b a{color:var(--bad)}.w{color:var(--warn)}
.bar{display:flex;gap:1px;height:1.1rem;min-width:9rem}.bar i{min-width:2px;border-radius:2px}
i.p{background:var(--ok)}i.d{background:var(--warn)}i.f{background:var(--bad)}
td.mt{color:var(--maint)}i.mt{background:var(--maint)}.t.mt{color:var(--maint)}
.t{font-size:11px;border:1px solid;border-radius:3px;padding:0 .2rem;margin-left:.3rem;color:var(--muted)}
tr.m{opacity:.6}
@media (max-width:40rem){.ov thead{display:none}.ov tr{display:flex;flex-wrap:wrap;gap:0 .8rem;border-bottom:1px solid var(--line)}
.ov th,.ov td{border:0;padding:.1rem 0}.ov tbody th,.ov td.bc{width:100%}
.ov td[data-location]::before{content:attr(data-location) \": \";color:var(--muted)}
.ov td.u1::before{content:\"24h \"}.ov td.u2::before{content:\"7d \"}.ov td.u3::before{content:\"30d \"}
.ov td.tt::before{content:\"total \"}.ov td.cd::before{content:\"cert \"}
.ov td.n::before{color:var(--muted)}}
";

/// Which monitors the overview shows: all when nothing is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only monitors with this tag.
    pub tag: Option<String>,
    /// Only this location (its column, and monitors with a result there).
    pub location: Option<String>,
    /// Only monitors with this verdict in a location shown.
    pub status: Option<Status>,
}

impl Filter {
    /// The filter of a query's `tag`, `location` and `status` values (an empty one is not
    /// given, as a form sends "any"); an error naming the parameter for a bad value.
    pub fn new(
        tag: Option<String>,
        location: Option<String>,
        status: Option<String>,
    ) -> Result<Filter, String> {
        let given = |v: Option<String>| v.filter(|v| !v.is_empty());
        let tag = given(tag);
        if let Some(tag) = &tag
            && (tag.chars().count() > 100 || tag.chars().any(char::is_control))
        {
            return Err(format!(
                "bad query: tag `{}` is not a tag (at most 100 characters, no control characters)",
                tag.escape_default()
            ));
        }
        let location = given(location);
        if let Some(location) = &location {
            crate::agents::check_name("location", location)
                .map_err(|why| format!("bad query: location: {why}"))?;
        }
        let status = given(status)
            .map(|s| {
                layout::parse_verdict(&s).ok_or_else(|| {
                    format!(
                        "bad query: status `{}` is not passed, degraded or failed",
                        s.escape_default()
                    )
                })
            })
            .transpose()?;
        Ok(Filter {
            tag,
            location,
            status,
        })
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.tag.is_none() && self.location.is_none() && self.status.is_none()
    }

    /// Whether the overview shows `m`.
    pub fn matches(&self, m: &MonitorStatus) -> bool {
        if let Some(tag) = &self.tag
            && !m.tags.contains(tag)
        {
            return false;
        }
        let mut shown = m
            .locations
            .iter()
            .filter(|l| self.location.as_ref().is_none_or(|x| *x == l.location))
            .peekable();
        if self.location.is_some() && shown.peek().is_none() {
            return false;
        }
        match self.status {
            Some(s) => shown.any(|l| l.status == s),
            None => true,
        }
    }
}

/// What the overview is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct Overview<'a> {
    /// The project's status (`crate::status::read_status`).
    pub status: &'a ProjectStatus,
    /// Its recent results, sorted by monitor, location and start
    /// (`Store::recent_results`).
    pub recent: &'a [RecentResult],
    /// `tls.expiry_warn_days` of each monitor by id (missing: [`WARN_DAYS`]).
    pub warn_days: &'a BTreeMap<String, u32>,
    /// Which monitors to show.
    pub filter: &'a Filter,
    /// Whether the viewer has no token: verdicts, uptime and timings only.
    pub public: bool,
    /// When the page is rendered.
    pub now: OffsetDateTime,
    /// The maintenance windows open now or to come (`crate::maintenance::list`).
    pub windows: &'a [ListedWindow],
}

/// What an overview is rendered from: a project's status, recent results and warn days.
#[derive(Debug)]
pub struct OverviewData {
    /// The project's status (`crate::status::read_status`).
    pub status: ProjectStatus,
    /// Its recent results (`Store::recent_results` with [`BAR_RESULTS`]).
    pub recent: Vec<RecentResult>,
    /// `tls.expiry_warn_days` of each monitor by id.
    pub warn_days: BTreeMap<String, u32>,
    /// The maintenance windows open now or to come, open ones first.
    pub windows: Vec<ListedWindow>,
}

impl OverviewData {
    /// Whether two readings hold the same data (when they were generated aside).
    pub fn same(&self, other: &OverviewData) -> bool {
        self.status.monitors == other.status.monitors
            && self.status.agents == other.status.agents
            && self.recent == other.recent
            && self.warn_days == other.warn_days
            && self.windows == other.windows
    }

    /// The overview of this data through `filter`.
    pub fn view<'a>(
        &'a self,
        filter: &'a Filter,
        public: bool,
        now: OffsetDateTime,
    ) -> Overview<'a> {
        Overview {
            status: &self.status,
            recent: &self.recent,
            warn_days: &self.warn_days,
            filter,
            public,
            now,
            windows: &self.windows,
        }
    }
}

/// A project's last overview data and when its reading ended.
pub type LastRead = Option<(Instant, Arc<OverviewData>)>;

/// The last overview data of each project, shared by the requests that can use it: like
/// the status snapshot of `/metrics`, one copy per project however many clients read it.
#[derive(Debug, Default)]
pub struct Overviews(Mutex<HashMap<String, Arc<tokio::sync::Mutex<LastRead>>>>);

impl Overviews {
    /// The slot of `project`'s last data: its lock is held while it is read.
    pub fn slot(&self, project: &str) -> Arc<tokio::sync::Mutex<LastRead>> {
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(slots.entry(project.to_owned()).or_default())
    }
}

/// The overview page, whole.
pub fn render(o: &Overview<'_>) -> String {
    let mut out = String::with_capacity(64 * 1024);
    OverviewText::new(o).fill(&mut out, o, usize::MAX);
    out
}

/// What [`OverviewText`] writes next.
#[derive(Debug, Clone)]
enum Part {
    /// The head, header, form and the head of the table (or why there is none).
    Head,
    /// A group's `tbody` and heading, `None` for the monitors of no group.
    Group(Option<String>),
    /// The row of a monitor, by its index in the status.
    Row(usize),
    /// The end of a group's `tbody`.
    GroupEnd,
    /// The end of the table and page.
    Tail,
}

/// Renders the overview a piece at a time: each [`fill`] appends the next rows, so that a
/// server holds one piece per client rather than the whole page (with the data shared).
///
/// [`fill`]: OverviewText::fill
#[derive(Debug, Clone)]
pub struct OverviewText {
    parts: Vec<Part>,
    next: usize,
    /// The location columns.
    locations: Vec<String>,
    /// How many monitors the filter lets through.
    shown: usize,
}

impl OverviewText {
    /// The pieces of the overview of `o`: grouped (groups by name, no group last as
    /// "Other"), each group by monitor name.
    pub fn new(o: &Overview<'_>) -> OverviewText {
        let monitors = &o.status.monitors;
        let mut by: BTreeMap<(bool, &str), Vec<usize>> = BTreeMap::new();
        for (i, m) in monitors.iter().enumerate() {
            if o.filter.matches(m) {
                let key = m.group.as_deref().map_or((true, ""), |g| (false, g));
                by.entry(key).or_default().push(i);
            }
        }
        let mut parts = vec![Part::Head];
        let mut shown = 0;
        for ((none, group), mut members) in by {
            members.sort_by(|a, b| {
                let (a, b) = (&monitors[*a], &monitors[*b]);
                a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id))
            });
            shown += members.len();
            parts.push(Part::Group((!none).then(|| group.to_owned())));
            parts.extend(members.into_iter().map(Part::Row));
            parts.push(Part::GroupEnd);
        }
        parts.push(Part::Tail);
        let locations = match &o.filter.location {
            Some(l) => vec![l.clone()],
            None => monitors
                .iter()
                .flat_map(|m| &m.locations)
                .map(|l| l.location.as_str())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(str::to_owned)
                .collect(),
        };
        OverviewText {
            parts,
            next: 0,
            locations,
            shown,
        }
    }

    /// Appends the next parts of the page of `o` (the one [`OverviewText::new`] was given)
    /// to `out` until it holds at least `min` bytes or the page is complete; false once it
    /// is complete.
    pub fn fill(&mut self, out: &mut String, o: &Overview<'_>, min: usize) -> bool {
        let locations: Vec<&str> = self.locations.iter().map(String::as_str).collect();
        while out.len() < min {
            let Some(part) = self.parts.get(self.next) else {
                return false;
            };
            self.next += 1;
            match part {
                Part::Head => self.head(out, o),
                Part::Group(group) => {
                    let _ = write!(
                        out,
                        "<tbody data-group=\"{0}\"><tr class=\"g\"><th colspan=\"{1}\">{0}</th></tr>",
                        escape(group.as_deref().unwrap_or("Other")),
                        locations.len() + 7
                    );
                }
                Part::Row(i) => {
                    if let Some(m) = o.status.monitors.get(*i) {
                        row(out, o, m, &locations);
                    }
                }
                Part::GroupEnd => out.push_str("</tbody>"),
                Part::Tail => {
                    if self.shown > 0 {
                        out.push_str("</table></div>");
                    }
                    layout::end(out);
                }
            }
        }
        self.next < self.parts.len()
    }

    fn head(&self, out: &mut String, o: &Overview<'_>) {
        let project = o.status.project.as_str();
        layout::start(
            out,
            &format!("{project} · overview"),
            Some(project),
            o.public,
            STYLE,
            Some(REFRESH_SECONDS),
        );
        header(out, o, self.shown);
        overloaded(out, o);
        form(out, o);
        if self.shown == 0 {
            out.push_str(if o.status.monitors.is_empty() {
                "<p class=\"muted\">no monitors deployed</p>"
            } else {
                "<p class=\"muted\">no monitor matches the filter</p>"
            });
            return;
        }
        out.push_str("<div class=\"scroll\"><table class=\"ov\"><thead><tr><th>monitor</th>");
        for l in &self.locations {
            let _ = write!(out, "<th>{}</th>", escape(l));
        }
        let _ = write!(
            out,
            "<th>last {BAR_RESULTS} results</th><th class=\"n\">24h</th><th class=\"n\">7d</th>\
             <th class=\"n\">30d</th><th class=\"n\">total</th><th class=\"n\">cert</th></tr></thead>"
        );
    }
}

/// A line for each overloaded agent (`overloaded: short by N checks/s`), private views
/// only.
fn overloaded(out: &mut String, o: &Overview<'_>) {
    if o.public {
        return;
    }
    for a in &o.status.agents {
        if let Some(note) = &a.note {
            let _ = write!(
                out,
                "<p class=\"failed\" data-overloaded-agent=\"{0}\">agent {0} in {1} {2}</p>",
                escape(&a.agent),
                escape(&a.location),
                escape(note)
            );
        }
    }
}

/// The worst verdict of a monitor over its locations; `None` without results.
fn worst(m: &MonitorStatus) -> Option<Status> {
    let rank = |s: Status| match s {
        Status::Passed => 0,
        Status::Degraded => 1,
        Status::Failed => 2,
    };
    m.locations
        .iter()
        .map(|l| l.status)
        .max_by_key(|s| rank(*s))
}

/// The most open maintenance windows the overview lists.
const MAX_LISTED_WINDOWS: usize = 20;

fn header(out: &mut String, o: &Overview<'_>, shown: usize) {
    // A monitor in an open maintenance window counts as such, not by its verdicts.
    let mut counts = [0usize; 5];
    for m in &o.status.monitors {
        counts[match worst(m) {
            _ if m.maintenance.is_some() => 4,
            Some(Status::Passed) => 0,
            Some(Status::Degraded) => 1,
            Some(Status::Failed) => 2,
            None => 3,
        }] += 1;
    }
    let _ = write!(
        out,
        "<h1>Overview</h1><p>{} monitors: <span class=\"passed\" data-count-passed=\"{}\">{} passed</span> · \
         <span class=\"degraded\" data-count-degraded=\"{}\">{} degraded</span> · \
         <span class=\"failed\" data-count-failed=\"{}\">{} failed</span> · \
         <span class=\"muted\" data-count-none=\"{}\">{} without results</span></p>",
        o.status.monitors.len(),
        counts[0],
        counts[0],
        counts[1],
        counts[1],
        counts[2],
        counts[2],
        counts[3],
        counts[3],
    );
    if counts[4] > 0 {
        out.truncate(out.len() - "</p>".len());
        let _ = write!(
            out,
            " · <span class=\"maintenance\" data-count-maintenance=\"{0}\">{0} in maintenance</span></p>",
            counts[4]
        );
    }
    windows(out, o);
    let _ = write!(
        out,
        "<p class=\"muted\">generated <time data-generated>{}</time> · refreshes every {REFRESH_SECONDS} s",
        escape(&layout::clock(o.now))
    );
    if !o.filter.is_empty() {
        let _ = write!(out, " · showing {} of {}", shown, o.status.monitors.len());
    }
    out.push_str("</p>");
}

/// The maintenance windows open now or to come (at most [`MAX_LISTED_WINDOWS`]), each with
/// its opening and, for an open one, how many monitors it holds now.
fn windows(out: &mut String, o: &Overview<'_>) {
    if o.windows.is_empty() {
        return;
    }
    let mut held: HashMap<&str, usize> = HashMap::new();
    for w in o
        .status
        .monitors
        .iter()
        .filter_map(|m| m.maintenance.as_ref())
    {
        *held.entry(&w.id).or_default() += 1;
    }
    out.push_str("<p class=\"maintenance\" data-windows>maintenance windows:");
    for (i, w) in o.windows.iter().enumerate() {
        if i == MAX_LISTED_WINDOWS {
            let _ = write!(out, " and {} more", o.windows.len() - i);
            break;
        }
        let id = w.window.id.as_str();
        let _ = write!(
            out,
            "{} <span data-window=\"{}\" data-active=\"{}\">{} ",
            if i == 0 { "" } else { " ·" },
            escape(id),
            w.active,
            escape(w.window.display_name()),
        );
        if w.active {
            let n = held.get(id).copied().unwrap_or(0);
            let _ = write!(
                out,
                "until {} ({n} monitor{})",
                escape(&layout::clock(w.end)),
                if n == 1 { "" } else { "s" }
            );
        } else {
            let _ = write!(
                out,
                "from {} to {}",
                escape(&layout::clock(w.start)),
                escape(&layout::clock(w.end))
            );
        }
        out.push_str("</span>");
    }
    out.push_str("</p>");
}

/// The filter form: a GET form with the current values and a link clearing them.
fn form(out: &mut String, o: &Overview<'_>) {
    let project = &o.status.project;
    let tags: BTreeSet<&str> = o
        .status
        .monitors
        .iter()
        .flat_map(|m| &m.tags)
        .map(String::as_str)
        .chain(o.filter.tag.as_deref())
        .collect();
    let locations: BTreeSet<&str> = o
        .status
        .monitors
        .iter()
        .flat_map(|m| &m.locations)
        .map(|l| l.location.as_str())
        .chain(o.filter.location.as_deref())
        .collect();
    let _ = write!(
        out,
        "<form method=\"get\" action=\"/\" class=\"f1\"><input type=\"hidden\" name=\"project\" value=\"{}\">",
        escape(project)
    );
    let select = |out: &mut String,
                  name: &str,
                  values: &mut dyn Iterator<Item = &str>,
                  current: Option<&str>| {
        let _ = write!(
            out,
            "<label>{name} <select name=\"{name}\"><option value=\"\">any</option>"
        );
        for v in values {
            let selected = if current == Some(v) { " selected" } else { "" };
            let _ = write!(out, "<option{selected}>{}</option>", escape(v));
        }
        out.push_str("</select></label>");
    };
    select(out, "tag", &mut tags.into_iter(), o.filter.tag.as_deref());
    select(
        out,
        "location",
        &mut locations.into_iter(),
        o.filter.location.as_deref(),
    );
    select(
        out,
        "status",
        &mut ["passed", "degraded", "failed"].into_iter(),
        o.filter.status.map(verdict),
    );
    let _ = write!(
        out,
        "<button>filter</button><a href=\"/?project={}\">clear</a></form>",
        query_value(project)
    );
}

fn row(out: &mut String, o: &Overview<'_>, m: &MonitorStatus, locations: &[&str]) {
    let id = escape(&m.id);
    let _ = write!(out, "<tr data-monitor=\"{id}\"");
    if m.muted || !m.activated {
        out.push_str(" class=\"m\"");
    }
    if m.muted {
        out.push_str(" data-muted=\"true\"");
    }
    if !m.activated {
        out.push_str(" data-deactivated=\"true\"");
    }
    out.push_str("><th>");
    if o.public {
        out.push_str(&escape(&m.name));
    } else {
        let _ = write!(
            out,
            "<a href=\"/monitors/{}?project={}\">{}</a>",
            query_value(&m.id),
            query_value(&o.status.project),
            escape(&m.name)
        );
    }
    if m.muted {
        out.push_str("<span class=\"t\">muted</span>");
    }
    if !m.activated {
        out.push_str("<span class=\"t\">deactivated</span>");
    }
    if let Some(w) = &m.maintenance {
        let _ = write!(
            out,
            "<span class=\"t mt\" data-maintenance=\"{}\" title=\"{} until {}\">maintenance</span>",
            escape(&w.id),
            escape(&w.name),
            escape(&layout::clock(w.end))
        );
    }
    for tag in &m.tags {
        let _ = write!(out, "<span class=\"t\">{}</span>", escape(tag));
    }
    out.push_str("</th>");
    for l in locations {
        let Some(r) = m.locations.iter().find(|r| r.location == *l) else {
            out.push_str("<td>–</td>");
            continue;
        };
        // A result in a maintenance window shows as such, not as its verdict.
        let _ = write!(
            out,
            "<td class=\"{}\" data-monitor=\"{id}\" data-location=\"{}\" data-status=\"{}\"{}",
            if r.in_maintenance {
                "mt"
            } else {
                verdict_class(r.status)
            },
            escape(l),
            verdict(r.status),
            if r.in_maintenance {
                " data-in-maintenance=\"true\""
            } else {
                ""
            }
        );
        if !o.public
            && let Some(e) = &r.error
        {
            let _ = write!(
                out,
                " title=\"{}\"",
                escape(&format!(
                    "{}: {}",
                    e.kind.as_str(),
                    layout::clip(&e.message, TITLE_CHARS)
                ))
            );
        }
        let shown = if r.in_maintenance {
            "maintenance"
        } else {
            verdict(r.status)
        };
        let _ = write!(out, ">{shown}");
        if r.consecutive_failures > 1 {
            let _ = write!(out, " ×{}", r.consecutive_failures);
        }
        out.push_str("</td>");
    }
    out.push_str("<td class=\"bc\">");
    bar(out, o, m);
    out.push_str("</td>");
    for (class, name, value) in [
        ("u1", "24h", m.uptime.h24),
        ("u2", "7d", m.uptime.d7),
        ("u3", "30d", m.uptime.d30),
    ] {
        let text = layout::uptime_text(value);
        let attr = if value.is_some() { text.as_str() } else { "" };
        let unit = if value.is_some() { "%" } else { "" };
        let _ = write!(
            out,
            "<td class=\"n {class}\" data-uptime-{name}=\"{attr}\">{text}{unit}</td>"
        );
    }
    let shown = m
        .locations
        .iter()
        .filter(|l| locations.contains(&l.location.as_str()));
    let total = shown
        .clone()
        .map(|l| l.timings.total_ms)
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))));
    match total {
        Some(t) => {
            let t = layout::ms_text(t);
            let _ = write!(out, "<td class=\"n tt\" data-total-ms=\"{t}\">{t} ms</td>");
        }
        None => out.push_str("<td class=\"n tt\">–</td>"),
    }
    match shown.filter_map(|l| l.days_left).min() {
        Some(days) => {
            let warn = o.warn_days.get(&m.id).map_or(WARN_DAYS, |w| i64::from(*w));
            let class = if days < 0 {
                " b"
            } else if days < warn {
                " w"
            } else {
                ""
            };
            let _ = write!(
                out,
                "<td class=\"n cd{class}\" data-days-left=\"{days}\">{days} d</td>"
            );
        }
        None => out.push_str("<td class=\"n cd\">–</td>"),
    }
    out.push_str("</tr>");
}

/// The error of a stored result's JSON, read leniently.
#[derive(Debug, Deserialize)]
struct ErrorView {
    #[serde(default)]
    error: Option<ErrorText>,
}

#[derive(Debug, Deserialize)]
struct ErrorText {
    kind: String,
    #[serde(default)]
    message: String,
}

/// The last [`BAR_RESULTS`] results of `monitor` over every location (or only
/// `location`), oldest first.
pub fn last_results<'a>(
    recent: &'a [RecentResult],
    monitor: &str,
    location: Option<&str>,
) -> Vec<&'a RecentResult> {
    let from = recent.partition_point(|r| r.monitor.as_str() < monitor);
    let mut mine: Vec<&RecentResult> = recent[from..]
        .iter()
        .take_while(|r| r.monitor == monitor)
        .filter(|r| location.is_none_or(|l| r.location == l))
        .collect();
    mine.sort_by(|a, b| (a.started_us, &a.location).cmp(&(b.started_us, &b.location)));
    let skip = mine.len().saturating_sub(BAR_RESULTS);
    mine.split_off(skip)
}

/// Runs of equal verdicts (and equal maintenance marks) in `results`: each run's verdict
/// and its results.
pub fn runs<'a, 'b>(results: &'b [&'a RecentResult]) -> Vec<(Status, &'b [&'a RecentResult])> {
    results
        .chunk_by(|a, b| a.status == b.status && a.in_maintenance == b.in_maintenance)
        .map(|run| (run[0].status, run))
        .collect()
}

/// The most characters of an error message a `title` shows.
const TITLE_CHARS: usize = 200;

/// The most errors one run's `title` lists.
const TITLE_ERRORS: usize = 3;

/// The `title` of a run: its time span, verdict and count, and in the private view the
/// distinct location and error of its results that did not pass.
fn run_title(status: Status, run: &[&RecentResult], public: bool) -> String {
    let first = layout::from_us(run[0].started_us);
    let last = layout::from_us(run[run.len() - 1].started_us);
    let mut title = monitor_spec::result::utc_seconds(first, ' ');
    if run.len() > 1 {
        let to = monitor_spec::result::utc_seconds(last, ' ');
        let same_day = first.date() == last.date();
        let _ = write!(title, " – {}", if same_day { &to[11..] } else { &to });
    }
    let _ = write!(title, " UTC: {} ×{}", verdict(status), run.len());
    if run[0].in_maintenance {
        title.push_str(" (maintenance)");
    }
    if public || status == Status::Passed {
        return title;
    }
    let mut errors: Vec<String> = Vec::new();
    let mut more = 0;
    for r in run {
        let text = r
            .json
            .as_deref()
            .and_then(|j| serde_json::from_str::<ErrorView>(j).ok())
            .and_then(|v| v.error)
            .map(|e| format!("{}: {}", e.kind, layout::clip(&e.message, TITLE_CHARS)))
            .or_else(|| r.error.map(|k| k.as_str().to_owned()))
            .unwrap_or_else(|| "no error recorded".to_owned());
        let line = format!("{}: {text}", r.location);
        if errors.contains(&line) {
            continue;
        }
        if errors.len() == TITLE_ERRORS {
            more += 1;
        } else {
            errors.push(line);
        }
    }
    for e in errors {
        title.push('\n');
        title.push_str(&e);
    }
    if more > 0 {
        let _ = write!(title, "\nand {more} more");
    }
    title
}

/// The bar of a monitor's last results: one element per run, as wide as its share.
fn bar(out: &mut String, o: &Overview<'_>, m: &MonitorStatus) {
    let last = last_results(o.recent, &m.id, o.filter.location.as_deref());
    let _ = write!(out, "<div class=\"bar\" data-results=\"{}\">", last.len());
    for (status, run) in runs(&last) {
        let _ = write!(
            out,
            "<i class=\"{}\" style=\"flex:{}\" title=\"{}\"></i>",
            if run[0].in_maintenance {
                "mt"
            } else {
                verdict_class(status)
            },
            run.len(),
            run_title(status, run, o.public)
                .split('\n')
                .map(escape)
                .collect::<Vec<_>>()
                .join("&#10;")
        );
    }
    out.push_str("</div>");
}

#[cfg(test)]
pub(crate) mod tests;
