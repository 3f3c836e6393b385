//! An assignment as the control plane sends it, read leniently: the monitors this build
//! cannot read or run are skipped with a reason rather than costing the whole set. The
//! monitors it can run are shelved as they are read, as `watch` shelves a bundle's.

use monitor_spec::api::Assignment;
use serde_json::value::RawValue;
use tracing::warn;

use crate::ValidMonitor;
use crate::runner::schedule::{Cadence, Job, Shelving};
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
///
/// Each monitor stays the JSON text of the body until it is read on its own, so one this
/// build cannot read costs only itself, and the monitors are never all held as JSON
/// values or all validated at once: each is shelved (or kept, when not worth shelving)
/// as soon as it is read. The jobs of one assignment share one shelf.
pub(super) fn parse_assignment(body: &str) -> Result<Parsed, String> {
    let wire: Assignment<&RawValue> =
        monitor_spec::json::read_borrowed(body).map_err(|e| format!("assignment: {e}"))?;
    let mut shelving = Shelving::default();
    let mut schedules = Vec::with_capacity(wire.monitors.len());
    let mut skipped = Vec::new();
    for m in &wire.monitors {
        let mut skip = |why: String| {
            skipped.push(format!(
                "assignment {}: skipping monitor {}: {why}",
                wire.etag,
                id_of(m.monitor)
            ));
        };
        if m.every == 0 || m.index >= m.every {
            skip(format!("index {} is not below every {}", m.index, m.every));
            continue;
        }
        let spec: TcpMonitor = match serde_json::from_str(m.monitor.get()) {
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
        shelving.push(monitor);
        let cadence = Cadence::WallClock {
            every: m.every,
            index: m.index,
            phase_ms: m.phase_ms,
        };
        schedules.push((cadence, m.retry_elsewhere));
    }
    tracing::debug!(
        etag = %wire.etag,
        monitors = shelving.len(),
        shelved = shelving.shelved(),
        "assignment read"
    );
    let (held, _) = shelving.finish();
    let jobs = held
        .into_iter()
        .zip(schedules)
        .map(|(monitor, (cadence, retry_elsewhere))| Job {
            monitor,
            cadence,
            retry_elsewhere,
        })
        .collect();
    Ok((wire.etag, jobs, wire.agents_in_location, skipped))
}

/// The `id` of a monitor's JSON, for a line saying why it was skipped; `?` when it has
/// none that is text.
fn id_of(monitor: &RawValue) -> String {
    serde_json::from_str::<serde_json::Value>(monitor.get())
        .ok()
        .and_then(|m| Some(m.get("id")?.as_str()?.to_owned()))
        .unwrap_or_else(|| "?".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::schedule::Held;

    #[test]
    fn assignments_skip_what_cannot_run() {
        let good = TcpMonitor::new("good", "127.0.0.1", 1);
        let tls = TcpMonitor::new("tls", "127.0.0.1", 2).tls_direct();
        let body = serde_json::json!({
            "agent": "a", "location": "l", "etag": "e1", "agents_in_location": 2,
            "monitors": [
                {"monitor": good, "every": 2, "index": 1, "phase_ms": 5, "retry_elsewhere": true},
                {"monitor": {"id": "future", "new_field": 1}, "every": 1, "index": 0, "phase_ms": 0},
                {"monitor": TcpMonitor::new("bad-index", "127.0.0.1", 1), "every": 1, "index": 1, "phase_ms": 0},
                {"monitor": [1, 2], "every": 1, "index": 0, "phase_ms": 0},
                {"monitor": tls, "every": 1, "index": 0, "phase_ms": 0},
            ]
        })
        .to_string();
        let (etag, jobs, agents, lines) = parse_assignment(&body).unwrap();
        assert_eq!((etag.as_str(), agents), ("e1", 2));
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].monitor.id(), "good");
        assert_eq!(jobs[1].monitor.id(), "tls");
        // Shelved as `watch` shelves a bundle's, but for a monitor dearer to rebuild.
        assert!(matches!(jobs[0].monitor, Held::Shelved { .. }));
        assert!(matches!(jobs[1].monitor, Held::Valid(_)));
        assert_eq!(
            jobs[0].monitor.monitor().expect("rebuilt").spec(),
            good.into_valid().expect("valid").spec()
        );
        assert_eq!(
            jobs[0].cadence,
            Cadence::WallClock {
                every: 2,
                index: 1,
                phase_ms: 5
            }
        );
        assert!(jobs[0].retry_elsewhere);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("skipping monitor future")));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("skipping monitor ?: this agent"))
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("skipping monitor bad-index"))
        );
    }
}
