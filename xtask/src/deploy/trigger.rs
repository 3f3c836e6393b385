//! `cargo xtask trigger [--grep RE] [--tag T].. [--location L].. [--wait]`: asks the
//! control plane for one immediate run of the matching deployed monitors in each of their
//! live locations (`POST /v1/projects/{project}/trigger`), and with --wait long polls
//! their results (`GET /v1/projects/{project}/triggers/{id}`), printing one line each,
//! or, with --reporter, rendering them through `monitors report` as `run` would.
//! Exit codes: 0 every result passed (or, without --wait, the runs were queued), 1 a
//! result failed (or degraded, with --fail-on-degraded), a run had no result within
//! --timeout, or the control plane refused; 2 usage problems.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use monitor_spec::api::{TriggerRequest, TriggeredResult};
use monitor_spec::result::{CheckResult, Status};

use super::api::shown;
use super::config::{Args, TriggerFlags};
use super::{EXIT_REMOTE, Failure, Outcome, connect};

/// The longest single long poll of the results, in seconds (the server's bound).
const MAX_POLL: u64 = 60;

/// Runs `trigger`.
pub(super) fn run(
    args: &Args,
    flags: &TriggerFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Outcome {
    // Before any run is queued: a reporter's name, and the binary that renders them.
    let reporters = if flags.reporters.is_empty() {
        None
    } else {
        check_reporters(&flags.reporters)?;
        Some(crate::build_monitors(None).map_err(Failure::local)?)
    };
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
    // With reporters, standard output is theirs: the progress lines go to stderr.
    let reporting = reporters.is_some();
    let (results, missing): (Vec<TriggeredResult>, _) = loop {
        let left = end.saturating_duration_since(Instant::now()).as_secs();
        let status = api.trigger_status(&queued.trigger, left.min(MAX_POLL))?;
        for r in status.results.iter().skip(printed) {
            if reporting {
                eprintln!("{}", line(r));
            } else {
                println!("{}", line(r));
            }
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
    let summary = format!(
        "{} result{}: {passed} passed, {degraded} degraded, {failed} failed{}",
        results.len(),
        if results.len() == 1 { "" } else { "s" },
        if missing.is_empty() {
            String::new()
        } else {
            format!(", {} missing", missing.len())
        }
    );
    let reported = match &reporters {
        Some(binary) => {
            eprintln!("{summary}");
            Some(report(binary, &results, flags)?)
        }
        None => {
            println!("{summary}");
            None
        }
    };
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
    let failed = match reported {
        Some(code) => code != 0 || !missing.is_empty(),
        None => failing(&results, missing.len(), flags.fail_on_degraded),
    };
    Ok(if failed {
        ExitCode::from(EXIT_REMOTE)
    } else {
        ExitCode::SUCCESS
    })
}

/// Renders `results` through `monitors report` with the chosen reporters (its output
/// and errors go straight to this process's), returning its exit code: 0 or 1 as `run`'s.
fn report(
    binary: &std::path::Path,
    results: &[TriggeredResult],
    flags: &TriggerFlags,
) -> Result<u8, Failure> {
    let input = serde_json::to_vec(&for_reporters(results))
        .context("cannot write the results for the reporters")?;
    let mut command = Command::new(binary);
    command.args(["report", "--input", "-"]);
    for r in &flags.reporters {
        command.arg("--reporter").arg(r);
    }
    if let Some(output) = &flags.output {
        command.arg("--output").arg(output);
    }
    if flags.fail_on_degraded {
        command.arg("--fail-on-degraded");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    // A reporter that stopped reading (a bad flag) has said why on stderr: its exit
    // status is the answer, so a failed write only matters when it exited well.
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(&input));
    let status = child.wait().context("the reporters did not finish")?;
    if let Some(Err(e)) = written
        && status.success()
    {
        return Err(Failure::local(anyhow!(
            "cannot hand the results to the reporters: {e}"
        )));
    }
    match status.code() {
        Some(code @ (0 | 1)) => Ok(code as u8),
        _ => Err(Failure::local(anyhow!(
            "the reporters failed ({status}); the results are printed above"
        ))),
    }
}

/// The reporters `monitors report` knows.
const REPORTERS: [&str; 5] = ["human", "json", "junit", "github", "prometheus"];

/// Refuses a `--reporter NAME[=FILE]` whose name `monitors report` does not know.
fn check_reporters(reporters: &[String]) -> Result<(), Failure> {
    for r in reporters {
        let name = r.split_once('=').map_or(r.as_str(), |(name, _)| name);
        if !REPORTERS.contains(&name) {
            return Err(Failure::local(anyhow!(
                "unknown reporter `{name}`; use {}",
                REPORTERS.join(", ")
            )));
        }
    }
    Ok(())
}

/// The results as the reporters take them: each named with its location, so one monitor
/// run from two locations shows as two entries, with the location and agent among its
/// facts.
fn for_reporters(results: &[TriggeredResult]) -> Vec<CheckResult> {
    results
        .iter()
        .map(|r| {
            let mut result = r.result.clone();
            result.name = format!("{} @ {}", result.name, r.location).into();
            result
                .facts
                .insert("location".to_owned(), r.location.clone());
            result.facts.insert("agent".to_owned(), r.agent.clone());
            result
        })
        .collect()
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
    fn reporters_see_each_location_as_its_own_result() {
        let mut eu = result("passed");
        eu.location = "eu".to_owned();
        let mut us = result("failed");
        us.location = "us".to_owned();
        us.agent = "us-1".to_owned();
        let named: Vec<(String, String, String)> = for_reporters(&[eu, us])
            .into_iter()
            .map(|r| {
                (
                    r.name.to_string(),
                    r.facts["location"].clone(),
                    r.facts["agent"].clone(),
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                ("web @ eu".to_owned(), "eu".to_owned(), "eu-1".to_owned()),
                ("web @ us".to_owned(), "us".to_owned(), "us-1".to_owned()),
            ]
        );
        let check = |names: &[&str], ok: bool| {
            let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
            assert_eq!(check_reporters(&names).is_ok(), ok, "{names:?}");
        };
        check(&["human", "junit=out.xml", "github"], true);
        check(&["json", "xml=out.xml"], false);
        check(&["junit=a=b"], true);
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
