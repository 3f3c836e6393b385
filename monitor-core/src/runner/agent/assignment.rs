//! An assignment as the control plane sends it, read leniently: the monitors this build
//! cannot read or run are skipped with a reason rather than costing the whole set.

use monitor_spec::api::Assignment;
use tracing::warn;

use crate::ValidMonitor;
use crate::runner::schedule::{Cadence, Job};
use monitor_spec::spec::TcpMonitor;

/// Reads an assignment body leniently: monitors this build cannot read or run are
/// logged and skipped rather than costing the whole assignment.
pub(super) fn read_assignment(body: &str) -> Result<(String, Vec<Job>, u64), String> {
    let (etag, jobs, agents, skipped) = parse_assignment(body)?;
    for why in skipped {
        warn!("{why}");
    }
    Ok((etag, jobs, agents))
}

/// An assignment's etag, the jobs this agent can run, the agents of its location, and a
/// line for each monitor skipped.
type Parsed = (String, Vec<Job>, u64, Vec<String>);

/// [`read_assignment`] without logging: the skipped monitors are returned.
pub(super) fn parse_assignment(body: &str) -> Result<Parsed, String> {
    // Each monitor stays JSON until it is read on its own, so one this build cannot read
    // costs only itself.
    let wire: Assignment<serde_json::Value> =
        monitor_spec::json::read(body).map_err(|e| format!("assignment: {e}"))?;
    let mut jobs = Vec::with_capacity(wire.monitors.len());
    let mut skipped = Vec::new();
    for m in wire.monitors {
        let id = m
            .monitor
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        let mut skip = |why: String| {
            skipped.push(format!(
                "assignment {}: skipping monitor {id}: {why}",
                wire.etag
            ));
        };
        if m.every == 0 || m.index >= m.every {
            skip(format!("index {} is not below every {}", m.index, m.every));
            continue;
        }
        let spec: TcpMonitor = match serde_json::from_value(m.monitor) {
            Ok(s) => s,
            Err(e) => {
                skip(format!("this agent cannot read it: {e}"));
                continue;
            }
        };
        let monitor: ValidMonitor = match spec.into_valid() {
            Ok(v) => v,
            Err(e) => {
                skip(format!("invalid: {e}"));
                continue;
            }
        };
        jobs.push(Job {
            monitor: monitor.into(),
            cadence: Cadence::WallClock {
                every: m.every,
                index: m.index,
                phase_ms: m.phase_ms,
            },
            retry_elsewhere: m.retry_elsewhere,
        });
    }
    Ok((wire.etag, jobs, wire.agents_in_location, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_skip_what_cannot_run() {
        let good = TcpMonitor::new("good", "127.0.0.1", 1);
        let body = serde_json::json!({
            "agent": "a", "location": "l", "etag": "e1", "agents_in_location": 2,
            "monitors": [
                {"monitor": good, "every": 2, "index": 1, "phase_ms": 5, "retry_elsewhere": true},
                {"monitor": {"id": "future", "new_field": 1}, "every": 1, "index": 0, "phase_ms": 0},
                {"monitor": TcpMonitor::new("bad-index", "127.0.0.1", 1), "every": 1, "index": 1, "phase_ms": 0},
            ]
        })
        .to_string();
        let (etag, jobs, agents, lines) = parse_assignment(&body).unwrap();
        assert_eq!((etag.as_str(), agents), ("e1", 2));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].monitor.id(), "good");
        assert_eq!(
            jobs[0].cadence,
            Cadence::WallClock {
                every: 2,
                index: 1,
                phase_ms: 5
            }
        );
        assert!(jobs[0].retry_elsewhere);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("skipping monitor future")));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("skipping monitor bad-index"))
        );
    }
}
