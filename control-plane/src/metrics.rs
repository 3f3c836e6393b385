//! `GET /metrics`: the latest result of every deployed monitor in every location (labelled
//! `in_maintenance` by the result's mark), whether a maintenance window is open for each
//! monitor now, and the live agents, in the Prometheus text exposition format 0.0.4.

use monitor_spec::Status;
use std::fmt::Write as _;

use monitor_spec::prometheus::{labels, number, seconds};

use monitor_spec::api::{LocationStatus, MonitorStatus, ProjectStatus};

/// A family: name, help, and the value of a monitor's latest result in a location (none
/// to leave the series out).
type Family = (
    &'static str,
    &'static str,
    fn(&LocationStatus) -> Option<f64>,
);

const FAMILIES: [Family; 7] = [
    (
        "probe_success",
        "Whether the latest check succeeded (1) or failed (0); degraded counts as success.",
        |l| Some(f64::from(u8::from(l.status != Status::Failed))),
    ),
    (
        "probe_duration_seconds",
        "How long the latest check (its last attempt) took in seconds.",
        |l| Some(seconds(l.timings.total_ms)),
    ),
    (
        "probe_dns_lookup_time_seconds",
        "How long name resolution took in seconds (0 when not reached).",
        |l| Some(seconds(l.timings.dns_ms.unwrap_or(0.0))),
    ),
    (
        "probe_ssl_earliest_cert_expiry",
        "Earliest not-after of the presented certificate chain in unix seconds.",
        |l| l.cert_expiry.map(|t| t.unix_timestamp() as f64),
    ),
    (
        "monitor_degraded",
        "Whether the latest check was degraded (1) or not (0).",
        |l| Some(f64::from(u8::from(l.status == Status::Degraded))),
    ),
    (
        "monitor_consecutive_failures",
        "How many checks in a row, up to the latest, failed.",
        |l| Some(l.consecutive_failures as f64),
    ),
    (
        "monitor_last_check_timestamp_seconds",
        "When the latest check started, in unix seconds.",
        |l| Some(l.started_at.unix_timestamp_nanos() as f64 / 1e9),
    ),
];

/// The exposition text of the projects' status and of the live agents per project and
/// location.
pub fn render(projects: &[ProjectStatus], agents: &[(String, String, usize)]) -> String {
    let mut out = String::new();
    MetricsText::default().fill(&mut out, projects, agents, usize::MAX);
    out
}

/// A family of the agents' load: name, help, and the value of a load.
type AgentFamily = (
    &'static str,
    &'static str,
    fn(&monitor_spec::api::AgentLoad) -> f64,
);

/// The load families of the live agents of `project` that reported one
/// (`monitors_agent_overloaded` 0/1 and `monitors_agent_deficit_checks_per_second`,
/// labels `project`, `agent`, `location`), each sample preceded by a comment
/// `# agent A in L overloaded: short by N checks/s` for an overloaded agent; empty when no
/// agent reported a load.
pub fn agent_loads(project: &str, agents: &[monitor_spec::api::AgentStatus]) -> String {
    let reported: Vec<_> = agents
        .iter()
        .filter_map(|a| a.load.map(|l| (a, l)))
        .collect();
    let mut out = String::new();
    if reported.is_empty() {
        return out;
    }
    let families: [AgentFamily; 2] = [
        (
            "monitors_agent_overloaded",
            "Whether the agent reported that its checks are due faster than they finish (1) or not (0).",
            |l| f64::from(u8::from(l.overloaded)),
        ),
        (
            "monitors_agent_deficit_checks_per_second",
            "Checks per second the agent reported it falls short by, over its last minute.",
            |l| l.deficit_per_second,
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (a, l) in &reported {
            let where_ = labels(&[
                ("project", project),
                ("agent", &a.agent),
                ("location", &a.location),
            ]);
            let _ = writeln!(out, "{name}{where_} {}", number(value(l)));
        }
    }
    for (a, _) in &reported {
        if let Some(note) = &a.note {
            let _ = writeln!(out, "# agent {} in {} {note}", a.agent, a.location);
        }
    }
    out
}

/// The help of `monitor_in_maintenance`, the family after [`FAMILIES`].
const MAINTENANCE_HELP: &str =
    "Whether a maintenance window is open for the monitor now (1) or not (0).";

/// The help of `control_plane_agents`, the family after `monitor_in_maintenance`.
const AGENTS_HELP: &str = "Live agents per project and location.";

/// Renders the text of [`render`] a piece at a time: each [`fill`] appends the next lines,
/// so that a server holds one piece per client rather than the whole text.
///
/// [`fill`]: MetricsText::fill
#[derive(Debug, Default, Clone)]
pub struct MetricsText {
    /// An index in [`FAMILIES`], then `FAMILIES.len()` for `monitor_in_maintenance`, then
    /// the agents, then done.
    family: usize,
    /// The next series: project, monitor and location (the agents use `project` alone).
    project: usize,
    monitor: usize,
    location: usize,
    /// Whether the family's HELP and TYPE lines are written (before its first sample).
    header: bool,
}

impl MetricsText {
    /// Appends the next lines to `out` until it holds at least `min` bytes or the text is
    /// complete; false once it is complete.
    pub fn fill(
        &mut self,
        out: &mut String,
        projects: &[ProjectStatus],
        agents: &[(String, String, usize)],
        min: usize,
    ) -> bool {
        while out.len() < min {
            if let Some((name, help, value)) = FAMILIES.get(self.family) {
                let Some((p, m, l)) = self.next_series(projects) else {
                    self.next_family();
                    continue;
                };
                if let Some(v) = value(l) {
                    self.header(out, name, help);
                    let labels = series_labels(&p.project, m, l);
                    let _ = writeln!(out, "{name}{labels} {}", number(v));
                }
            } else if self.family == FAMILIES.len() {
                let Some((p, m)) = self.next_monitor(projects) else {
                    self.next_family();
                    continue;
                };
                let name = "monitor_in_maintenance";
                self.header(out, name, MAINTENANCE_HELP);
                let where_ = labels(&[("project", &p.project), ("monitor", &m.id)]);
                let _ = writeln!(out, "{name}{where_} {}", u8::from(m.maintenance.is_some()));
            } else if self.family == FAMILIES.len() + 1 {
                let Some((project, location, n)) = agents.get(self.project) else {
                    self.next_family();
                    continue;
                };
                self.project += 1;
                let name = "control_plane_agents";
                self.header(out, name, AGENTS_HELP);
                let where_ = labels(&[("project", project), ("location", location)]);
                let _ = writeln!(out, "{name}{where_} {n}");
            } else {
                return false;
            }
        }
        self.family <= FAMILIES.len() + 1
    }

    fn header(&mut self, out: &mut String, name: &str, help: &str) {
        if !self.header {
            self.header = true;
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        }
    }

    fn next_family(&mut self) {
        *self = MetricsText {
            family: self.family + 1,
            ..MetricsText::default()
        };
    }

    /// The next (project, monitor) in order, moving past it.
    fn next_monitor<'a>(
        &mut self,
        projects: &'a [ProjectStatus],
    ) -> Option<(&'a ProjectStatus, &'a MonitorStatus)> {
        loop {
            let p = projects.get(self.project)?;
            let Some(m) = p.monitors.get(self.monitor) else {
                (self.project, self.monitor) = (self.project + 1, 0);
                continue;
            };
            self.monitor += 1;
            return Some((p, m));
        }
    }

    /// The next (project, monitor, location) in order, moving past it.
    fn next_series<'a>(
        &mut self,
        projects: &'a [ProjectStatus],
    ) -> Option<(&'a ProjectStatus, &'a MonitorStatus, &'a LocationStatus)> {
        loop {
            let p = projects.get(self.project)?;
            let Some(m) = p.monitors.get(self.monitor) else {
                (self.project, self.monitor, self.location) = (self.project + 1, 0, 0);
                continue;
            };
            let Some(l) = m.locations.get(self.location) else {
                (self.monitor, self.location) = (self.monitor + 1, 0);
                continue;
            };
            self.location += 1;
            return Some((p, m, l));
        }
    }
}

fn series_labels(project: &str, m: &MonitorStatus, l: &LocationStatus) -> String {
    let flag = |on: bool| if on { "true" } else { "false" };
    labels(&[
        ("project", project),
        ("monitor", &m.id),
        ("location", &l.location),
        ("alert_channels", &alert_channels(&m.alert_channels)),
        ("muted", flag(m.muted)),
        ("in_maintenance", flag(l.in_maintenance)),
    ])
}

/// `,oncall,pager,`: each name with a comma on each side, so that
/// `alert_channels=~".*,oncall,.*"` matches; empty without channels.
pub fn alert_channels(channels: &[String]) -> String {
    if channels.is_empty() {
        String::new()
    } else {
        format!(",{},", channels.join(","))
    }
}

/// Statuses for the tests of the renderers: projects without monitors, monitors without
/// results, several locations, failures, TLS and agents.
#[cfg(test)]
pub(crate) mod sample {
    use monitor_spec::api::{LocationStatus, MonitorStatus, ProjectStatus};
    use monitor_spec::{ErrorKind, ProbeError, Status, Timings};
    use time::OffsetDateTime;

    fn location(name: &str, i: usize) -> LocationStatus {
        let status = [Status::Passed, Status::Degraded, Status::Failed][i % 3];
        let at = OffsetDateTime::from_unix_timestamp(1_740_826_800 + i as i64).unwrap();
        LocationStatus {
            location: name.to_owned(),
            agent: format!("agent-{name}"),
            status,
            started_at: at,
            error: (status != Status::Passed).then(|| ProbeError {
                kind: ErrorKind::Refused,
                message: format!("<b>{i}</b> refused & \"more\""),
                hints: Vec::new(),
            }),
            timings: Timings {
                total_ms: 1.5 + i as f64,
                connect_ms: Some(0.25),
                ..Timings::default()
            },
            days_left: i.is_multiple_of(2).then_some(30),
            consecutive_failures: (i % 4) as u64,
            cert_expiry: i.is_multiple_of(2).then_some(at),
            uptime: Default::default(),
            in_maintenance: i.is_multiple_of(3),
        }
    }

    /// Three projects: one empty, one without results, one with 300 monitors in up to
    /// three locations.
    pub(crate) fn projects() -> Vec<ProjectStatus> {
        let monitor = |i: usize, locations: Vec<LocationStatus>| MonitorStatus {
            id: format!("svc-{i:03}"),
            name: format!("Service \"{i}\""),
            muted: i.is_multiple_of(5),
            activated: !i.is_multiple_of(7),
            run_parallel: false,
            frequency: "1m".to_owned(),
            alert_channels: if i.is_multiple_of(2) {
                vec!["oncall".to_owned()]
            } else {
                Vec::new()
            },
            group: None,
            tags: Vec::new(),
            locations,
            uptime: Default::default(),
            maintenance: i.is_multiple_of(3).then(|| monitor_spec::api::OpenWindow {
                id: "deploy".to_owned(),
                name: "Deploy".to_owned(),
                ad_hoc: false,
                end: OffsetDateTime::from_unix_timestamp(1_740_830_400).unwrap(),
            }),
        };
        let project = |name: &str, monitors| ProjectStatus {
            project: name.to_owned(),
            generated_at: "2025-03-01T12:00:00Z".to_owned(),
            monitors,
            agents: Vec::new(),
        };
        vec![
            project("empty", Vec::new()),
            project("quiet", (0..3).map(|i| monitor(i, Vec::new())).collect()),
            project(
                "shop",
                (0..300)
                    .map(|i| {
                        let names = ["eu", "us", "ap"];
                        monitor(i, names[..i % 4].iter().map(|n| location(n, i)).collect())
                    })
                    .collect(),
            ),
        ]
    }

    /// Live agents per project and location.
    pub(crate) fn agents() -> Vec<(String, String, usize)> {
        vec![
            ("shop".to_owned(), "eu".to_owned(), 2),
            ("shop".to_owned(), "us".to_owned(), 1),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text as `render` wrote it before it was rendered in pieces: each family whole.
    fn whole(projects: &[ProjectStatus], agents: &[(String, String, usize)]) -> String {
        use monitor_spec::prometheus::family;
        let mut out = String::new();
        for (name, help, value) in FAMILIES {
            let mut samples = Vec::new();
            for p in projects {
                for m in &p.monitors {
                    for l in &m.locations {
                        if let Some(v) = value(l) {
                            samples.push((series_labels(&p.project, m, l), number(v)));
                        }
                    }
                }
            }
            family(&mut out, name, "gauge", help, samples);
        }
        let samples = projects
            .iter()
            .flat_map(|p| {
                p.monitors.iter().map(|m| {
                    let where_ = labels(&[("project", &p.project), ("monitor", &m.id)]);
                    (where_, u8::from(m.maintenance.is_some()).to_string())
                })
            })
            .collect();
        family(
            &mut out,
            "monitor_in_maintenance",
            "gauge",
            MAINTENANCE_HELP,
            samples,
        );
        let samples = agents
            .iter()
            .map(|(project, location, n)| {
                let where_ = labels(&[("project", project), ("location", location)]);
                (where_, n.to_string())
            })
            .collect();
        family(
            &mut out,
            "control_plane_agents",
            "gauge",
            AGENTS_HELP,
            samples,
        );
        out
    }

    #[test]
    fn pieces_make_the_whole_text() {
        let (projects, agents) = (sample::projects(), sample::agents());
        let expected = whole(&projects, &agents);
        assert!(expected.contains("# TYPE probe_ssl_earliest_cert_expiry gauge\n"));
        assert!(expected.contains(
            "probe_success{project=\"shop\",monitor=\"svc-003\",location=\"eu\",alert_channels=\"\",muted=\"false\",in_maintenance=\"true\"} 1\n"
        ));
        assert!(
            expected.contains("monitor_in_maintenance{project=\"quiet\",monitor=\"svc-000\"} 1\n")
        );
        assert!(
            expected.contains("monitor_in_maintenance{project=\"shop\",monitor=\"svc-001\"} 0\n")
        );
        assert_eq!(render(&projects, &agents), expected);
        for min in [1, 100, 4096] {
            let mut text = MetricsText::default();
            let mut joined = String::new();
            loop {
                let mut piece = String::new();
                let more = text.fill(&mut piece, &projects, &agents, min);
                joined.push_str(&piece);
                if !more {
                    break;
                }
            }
            assert_eq!(joined, expected, "pieces of {min} bytes");
        }
        assert_eq!(render(&[], &[]), whole(&[], &[]));
        assert_eq!(render(&[], &[]), "");
    }

    fn check<T: PartialEq + std::fmt::Debug>(f: impl Fn(&str) -> T, cases: &[(&str, T)]) {
        for (input, expected) in cases {
            assert_eq!(&f(input), expected, "{input:?}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        check(
            |v| labels(&[("l", v)]),
            &[
                ("plain", "{l=\"plain\"}".to_owned()),
                ("a\"b", "{l=\"a\\\"b\"}".to_owned()),
                ("a\\b", "{l=\"a\\\\b\"}".to_owned()),
                ("a\nb", "{l=\"a\\nb\"}".to_owned()),
            ],
        );
    }

    #[test]
    fn channels_have_a_comma_each_side() {
        let list = |s: &str| {
            alert_channels(
                &s.split(' ')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            )
        };
        check(
            list,
            &[
                ("", String::new()),
                ("oncall", ",oncall,".to_owned()),
                ("oncall pager", ",oncall,pager,".to_owned()),
            ],
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number(seconds(3.001)), "0.003001");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(1_700_000_000.25), "1700000000.25");
    }
}
