//! `GET /metrics`: the latest result of every deployed monitor in every location, and the
//! live agents, in the Prometheus text exposition format 0.0.4.

use monitor_spec::Status;
use monitor_spec::prometheus::{family, labels, number, seconds};

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
    for (name, help, value) in FAMILIES {
        let mut samples = Vec::new();
        for p in projects {
            for m in &p.monitors {
                for l in &m.locations {
                    if let Some(v) = value(l) {
                        samples.push((series_labels(&p.project, m, &l.location), number(v)));
                    }
                }
            }
        }
        family(&mut out, name, "gauge", help, samples);
    }
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
        "Live agents per project and location.",
        samples,
    );
    out
}

fn series_labels(project: &str, m: &MonitorStatus, location: &str) -> String {
    labels(&[
        ("project", project),
        ("monitor", &m.id),
        ("location", location),
        ("alert_channels", &alert_channels(&m.alert_channels)),
        ("muted", if m.muted { "true" } else { "false" }),
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

#[cfg(test)]
mod tests {
    use super::*;

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
