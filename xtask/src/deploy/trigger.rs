//! `cargo xtask trigger [--grep RE] [--tag T].. [--location L].. [--wait]`: asks the
//! control plane for one immediate run of the matching deployed monitors in each of their
//! live locations (`POST /v1/projects/{project}/trigger`), and with --wait long polls
//! their results (`GET /v1/projects/{project}/triggers/{id}`), printing one line each.
//! Exit codes: 0 every result passed (or, without --wait, the runs were queued), 1 a
//! result failed (or degraded, with --fail-on-degraded), a run had no result within
//! --timeout, or the control plane refused; 2 usage problems.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use monitor_spec::api::{TriggerRequest, TriggeredResult};
use monitor_spec::result::Status;

use super::api::shown;
use super::config::{Args, TriggerFlags};
use super::{EXIT_REMOTE, Outcome, connect};

/// The longest single long poll of the results, in seconds (the server's bound).
const MAX_POLL: u64 = 60;

/// Runs `trigger`.
pub(super) fn run(
    args: &Args,
    flags: &TriggerFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Outcome {
    let api = connect(args, env)?;
    let request = TriggerRequest {
        grep: flags.grep.clone(),
        tags: flags.tags.clone(),
        locations: flags.locations.clone(),
    };
    let queued = api.trigger(&request)?;
    let id = shown(&queued.trigger);
    eprintln!(
        "trigger {id}: {} run{} queued in project `{}`",
        queued.runs.len(),
        if queued.runs.len() == 1 { "" } else { "s" },
        api.project()
    );
    if !flags.wait {
        for r in &queued.runs {
            println!("queued {} in {}", shown(&r.monitor), shown(&r.location));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let end = Instant::now() + Duration::from_secs(flags.timeout);
    let mut printed = 0;
    let (results, missing): (Vec<TriggeredResult>, _) = loop {
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        let status = api.trigger_status(&queued.trigger, left.min(MAX_POLL))?;
        for r in status.results.iter().skip(printed) {
            println!("{}", line(r));
        }
        printed = status.results.len();
        if status.missing.is_empty() || Instant::now() >= end {
            break (status.results, status.missing);
        }
    };
    let count = |s: Status| results.iter().filter(|r| r.result.status == s).count();
    let (passed, degraded, failed) = (
        count(Status::Passed),
        count(Status::Degraded),
        count(Status::Failed),
    );
    println!(
        "{} result{}: {passed} passed, {degraded} degraded, {failed} failed{}",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        if missing.is_empty() {
            String::new()
        } else {
            format!(", {} missing", missing.len())
        }
    );
    let locations: BTreeSet<&str> = missing.iter().map(|r| r.location.as_str()).collect();
    for r in &missing {
        eprintln!(
            "no result from {} in {} within {} s",
            shown(&r.monitor),
            shown(&r.location),
            flags.timeout
        );
    }
    if !locations.is_empty() {
        eprintln!(
            "(is an agent of each of these locations running and polling this control plane?)"
        );
    }
    Ok(
        if failing(&results, missing.len(), flags.fail_on_degraded) {
            ExitCode::from(EXIT_REMOTE)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// Whether the run exits 1, as `monitors run` does: a result failed (or degraded, with
/// `fail_on_degraded`), or a run has no result.
fn failing(results: &[TriggeredResult], missing: usize, fail_on_degraded: bool) -> bool {
    missing > 0
        || results.iter().any(|r| match r.result.status {
            Status::Passed => false,
            Status::Degraded => fail_on_degraded,
            Status::Failed => true,
        })
}

/// One result on one line: verdict, monitor, location, agent, time and error.
fn line(r: &TriggeredResult) -> String {
    let verdict = match r.result.status {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    };
    let error = r
        .result
        .error
        .as_ref()
        .map(|e| format!(": {}", shown(&e.message)))
        .unwrap_or_default();
    format!(
        "{verdict:<8} {} in {} (agent {}) {:.0} ms{error}",
        shown(&r.monitor),
        shown(&r.location),
        shown(&r.agent),
        r.result.timings.total_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: &str) -> TriggeredResult {
        serde_json::from_value(serde_json::json!({
            "monitor": "web", "location": "eu", "agent": "eu-1",
            "result": {
                "id": "web", "name": "web", "target": "127.0.0.1:1", "status": status,
                "error": null, "timings": {"total_ms": 3.2}, "address": null,
                "attempts": [], "assertions": [], "response_excerpt": "",
                "started_at": "2026-01-01T00:00:00Z"
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_result_is_one_line_and_the_exit_code_follows_monitors_run() {
        assert_eq!(
            line(&result("passed")),
            "passed   web in eu (agent eu-1) 3 ms"
        );
        let passed = [result("passed")];
        let degraded = [result("passed"), result("degraded")];
        assert!(!failing(&passed, 0, true));
        assert!(failing(&passed, 1, false));
        assert!(!failing(&degraded, 0, false));
        assert!(failing(&degraded, 0, true));
        assert!(failing(&[result("failed")], 0, false));
    }
}
