//! The request and response bodies of the control plane's API (control-plane/API.md), one
//! set of types for the server, the deploy client (`cargo xtask deploy`) and the agents.
//!
//! Types that carry monitors, bundles or results take them as a type parameter: the typed
//! model by default, or `serde_json::value::RawValue` to pass JSON through as it is (the
//! server's stored canonical JSON, a client's bundle file, an agent's buffered results).

use std::collections::BTreeMap;

use crate::bundle::Bundle;
use crate::{CheckResult, ErrorKind, ProbeError, Status, TcpMonitor, Timings};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Git metadata of a deploy; every field optional, no other field accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Git {
    /// The commit hash.
    #[serde(default)]
    pub commit: Option<String>,
    /// The branch name.
    #[serde(default)]
    pub branch: Option<String>,
    /// The commit's author.
    #[serde(default)]
    pub author: Option<String>,
    /// The commit's subject.
    #[serde(default)]
    pub message: Option<String>,
    /// The repository's URL, without credentials (`https://github.com/acme/monitors`).
    /// Absent from older clients' requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Whether the working tree had changes not committed (tracked files changed, or
    /// files neither tracked nor ignored) when the bundle was built; null without git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<bool>,
}

/// The longest text a [`Git`] field may hold, in bytes.
pub const MAX_GIT_FIELD_BYTES: usize = 1024;

impl Git {
    /// Each field longer than [`MAX_GIT_FIELD_BYTES`] or holding a control character, as
    /// (field, what is wrong), in field order.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        [
            ("commit", &self.commit),
            ("branch", &self.branch),
            ("author", &self.author),
            ("message", &self.message),
            ("repository", &self.repository),
        ]
        .into_iter()
        .filter_map(|(field, value)| {
            let value = value.as_deref()?;
            if value.len() > MAX_GIT_FIELD_BYTES {
                Some((
                    field,
                    format!(
                        "{} bytes, more than the {MAX_GIT_FIELD_BYTES} a git field may hold",
                        value.len()
                    ),
                ))
            } else if value.chars().any(char::is_control) {
                Some((
                    field,
                    "holds a control character (a line break?)".to_owned(),
                ))
            } else {
                None
            }
        })
        .collect()
    }
}

/// The body of `POST /v1/projects/{project}/deploy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest<B = Bundle> {
    /// Every monitor the project should have.
    pub bundle: B,
    /// Git metadata recorded with the version.
    #[serde(default)]
    pub git: Option<Git>,
}

/// What a deploy changes, per monitor id; every list sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Diff {
    /// In the bundle, not on the server.
    #[serde(default)]
    pub created: Vec<String>,
    /// On both, with different specs.
    #[serde(default)]
    pub updated: Vec<Updated>,
    /// On the server, not in the bundle, removed because the deploy prunes.
    #[serde(default)]
    pub deleted: Vec<String>,
    /// On the server, not in the bundle, left in place because the deploy does not prune.
    #[serde(default)]
    pub kept: Vec<String>,
    /// On both, equal.
    #[serde(default)]
    pub unchanged: Vec<String>,
    /// What changes in the maintenance windows (a deploy replaces them all); absent when
    /// nothing does.
    #[serde(default, skip_serializing_if = "WindowsDiff::is_empty")]
    pub maintenance: WindowsDiff,
}

/// What a deploy changes in the maintenance windows, per window id; every list sorted by
/// id. Windows the bundle no longer declares are deleted whether or not the deploy prunes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WindowsDiff {
    /// In the bundle, not deployed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<String>,
    /// In both, different, with the field paths that differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub updated: Vec<Updated>,
    /// Deployed, no longer in the bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<String>,
}

impl WindowsDiff {
    /// Whether no window changes.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }

    /// The change from the windows `old` to `new`, each a window's JSON (a window without
    /// a string `id` is left out).
    pub fn between(old: &[serde_json::Value], new: &[serde_json::Value]) -> WindowsDiff {
        let by_id = |list: &'_ [serde_json::Value]| -> BTreeMap<String, serde_json::Value> {
            list.iter()
                .filter_map(|w| Some((w.get("id")?.as_str()?.to_owned(), w.clone())))
                .collect()
        };
        let Diff {
            created,
            updated,
            deleted,
            ..
        } = Diff::between(&by_id(old), &by_id(new));
        WindowsDiff {
            created,
            updated,
            deleted,
        }
    }
}

/// A monitor whose spec changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Updated {
    /// Its id.
    pub id: String,
    /// The field paths that differ, such as `target.port`, `steps` or
    /// `tls.expiry_warn_days`, sorted.
    #[serde(default)]
    pub fields: Vec<String>,
}

impl Diff {
    /// The diff between two whole sets of entries by id, each its JSON: ids only in `new`
    /// are created, only in `old` deleted, in both and different updated (with the field
    /// paths that differ), in both and equal unchanged; none kept.
    pub fn between(
        old: &BTreeMap<String, serde_json::Value>,
        new: &BTreeMap<String, serde_json::Value>,
    ) -> Diff {
        let mut diff = Diff::default();
        for (id, entry) in new {
            match old.get(id) {
                None => diff.created.push(id.clone()),
                Some(before) if before == entry => diff.unchanged.push(id.clone()),
                Some(before) => diff.updated.push(Updated {
                    id: id.clone(),
                    fields: crate::changes::field_paths(before, entry),
                }),
            }
        }
        diff.deleted = old
            .keys()
            .filter(|id| !new.contains_key(*id))
            .cloned()
            .collect();
        diff
    }

    /// Whether the deploy changes nothing stored.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.updated.is_empty()
            && self.deleted.is_empty()
            && self.maintenance.is_empty()
    }
}

/// The answer to a deploy or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeployResponse {
    /// The project.
    pub project: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Whether anything was written.
    pub applied: bool,
    /// The version now current, `None` when the project has none.
    pub version: Option<u64>,
    /// What changed, or would change.
    pub diff: Diff,
}

/// One version's metadata, as `GET .../versions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Version number, from 1 per project.
    pub version: u64,
    /// SHA-256 hex of the canonical bundle JSON of the set it made current.
    pub hash: String,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// Git metadata sent with the deploy.
    pub git: Git,
    /// How many monitors the set holds.
    pub monitors: u64,
    /// The version it rolled back to, if it is a rollback.
    pub rollback_of: Option<u64>,
}

/// The answer to `GET /v1/projects/{project}/versions/{n}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionResponse<B = Bundle> {
    /// The version's metadata.
    pub info: VersionInfo,
    /// The monitors it made current.
    pub bundle: B,
}

/// The answer to `DELETE /v1/projects/{project}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestroyResponse {
    /// The project.
    pub project: String,
    /// How many monitors were removed.
    pub deleted: u64,
}

/// One problem of a request, with the path of the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Problem {
    /// The field, such as `monitors[3].target.port`.
    #[serde(default)]
    pub path: String,
    /// What is wrong there.
    #[serde(default)]
    pub message: String,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// A lower-case message.
    pub error: String,
    /// Each problem with its field path (may be empty).
    #[serde(default)]
    pub problems: Vec<Problem>,
}

/// The answer to `GET /v1/agent/assignments`: what one agent runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment<M = TcpMonitor> {
    /// The agent's id.
    pub agent: String,
    /// Its location.
    pub location: String,
    /// The assignment's ETag (without quotes).
    pub etag: String,
    /// Live agents in the location, the agent included.
    #[serde(default)]
    pub agents_in_location: u64,
    /// The monitors and when to run them, sorted by monitor id.
    pub monitors: Vec<AssignedMonitor<M>>,
}

/// One monitor of an [`Assignment`]: run at the instants `k * interval_ms + phase_ms` for
/// which `k % every == index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedMonitor<M = TcpMonitor> {
    /// The spec.
    pub monitor: M,
    /// Run one tick in this many ...
    pub every: u64,
    /// ... the ticks with `k % every == index`.
    pub index: u64,
    /// Offset of the ticks in the interval, in milliseconds.
    pub phase_ms: u64,
    /// Whether a failed first attempt is retried in another location: the monitor has
    /// retries, `same_region = false`, does not run in parallel and runs in at least two
    /// live locations. The agent then hands the failed attempt to the control plane
    /// (`POST /v1/agent/retries`) instead of retrying it. Absent means false (old
    /// control planes never send it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry_elsewhere: bool,
}

/// The body of `POST /v1/agent/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsRequest<R = ResultIn> {
    /// The agent that ran the checks.
    pub agent: String,
    /// Its location.
    pub location: String,
    /// The results.
    pub results: Vec<R>,
}

/// One result of a [`ResultsRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultIn {
    /// `{monitor}/{location}/{tick}`, or `{monitor}/{location}/trigger/{trigger}` for a
    /// triggered run.
    pub id: String,
    /// The monitor's id.
    pub monitor: String,
    /// The tick `k` of the schedule it ran for (0 for a triggered run).
    pub tick: u64,
    /// What the check found.
    pub result: CheckResult,
    /// The trigger (`POST /v1/projects/{project}/trigger`) this run answers, outside the
    /// schedule; absent for scheduled runs (and from older agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
}

/// The body of `POST /v1/agent/retries`: a check whose first attempt failed, for another
/// location to retry (the monitor's `retry.same_region` is false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// The agent that ran the first attempt.
    pub agent: String,
    /// Its location.
    pub location: String,
    /// The monitor's id.
    pub monitor: String,
    /// The tick `k` of the schedule the check ran for.
    pub tick: u64,
    /// Not to retry before this instant, unix epoch milliseconds (the first attempt's end
    /// plus the strategy's first backoff).
    pub not_before_ms: u64,
    /// The check so far: its attempts (one, usually), each with its location.
    pub result: CheckResult,
}

/// The answer to `POST /v1/agent/retries`: where the retry goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryAccepted {
    /// The location that retries the check.
    pub location: String,
}

/// The answer to `GET /v1/agent/retries`: the checks handed to the caller's location, at
/// most [`MAX_RETRIES_PER_ANSWER`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retries<M = TcpMonitor> {
    /// The checks to retry, oldest first.
    pub retries: Vec<PendingRetry<M>>,
    /// The triggered runs for the caller's location, oldest first: only for agents that
    /// poll with `triggers=1` (older agents are never handed any), absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggered: Vec<TriggeredRun<M>>,
}

/// One immediate run of a monitor outside its schedule, queued by
/// `POST /v1/projects/{project}/trigger`: run it once (with its retries) and upload the
/// result with `trigger` set and the id `{monitor}/{location}/trigger/{trigger}`, tick 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggeredRun<M = TcpMonitor> {
    /// The monitor, as deployed.
    pub monitor: M,
    /// The trigger's id.
    pub trigger: String,
}

/// The body of `POST /v1/projects/{project}/trigger`: which deployed monitors to run now;
/// every field optional (all monitors, in all their live locations).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// A regular expression matched against each monitor's id and name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grep: Option<String>,
    /// Only monitors with one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Only these locations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<String>,
}

/// One run of a trigger: a monitor in a location.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TriggerRun {
    /// The monitor's id.
    pub monitor: String,
    /// The location.
    pub location: String,
}

/// The answer to `POST /v1/projects/{project}/trigger`: the trigger's id and its queued
/// runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerResponse {
    /// The trigger's id.
    pub trigger: String,
    /// The runs queued, one per monitor and location.
    pub runs: Vec<TriggerRun>,
}

/// One result of a trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggeredResult<R = CheckResult> {
    /// The monitor's id.
    pub monitor: String,
    /// Where it ran.
    pub location: String,
    /// The agent that ran it.
    pub agent: String,
    /// What the check found.
    pub result: R,
}

/// The answer to `GET /v1/projects/{project}/triggers/{trigger}`: the results so far and
/// the runs still without one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerStatus<R = CheckResult> {
    /// The trigger's id.
    pub trigger: String,
    /// The results received, in the order they came.
    pub results: Vec<TriggeredResult<R>>,
    /// The runs without a result yet.
    pub missing: Vec<TriggerRun>,
}

/// The most checks one answer to `GET /v1/agent/retries` holds.
pub const MAX_RETRIES_PER_ANSWER: usize = 100;

/// A check handed to another location: run its remaining attempts from `not_before_ms`
/// on and upload one result for the tick, from the retrying agent's location, with the
/// attempts of `result` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRetry<M = TcpMonitor> {
    /// The monitor, as deployed.
    pub monitor: M,
    /// The tick.
    pub tick: u64,
    /// The location of the first attempt.
    pub from: String,
    /// Not before this instant, unix epoch milliseconds.
    pub not_before_ms: u64,
    /// The check so far.
    pub result: CheckResult,
}

/// The answer to `POST /v1/agent/results`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultsResponse {
    /// Results stored.
    #[serde(default)]
    pub accepted: u64,
    /// Results already stored, ignored.
    #[serde(default)]
    pub duplicates: u64,
}

/// The answer to `GET /v1/projects/{project}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectStatus {
    /// The project.
    pub project: String,
    /// When the status was read, RFC 3339.
    pub generated_at: String,
    /// Every deployed monitor, sorted by id.
    pub monitors: Vec<MonitorStatus>,
    /// The live agents this control plane serves, sorted by id, with their load; absent
    /// when none (and from the readings `/metrics` and the pages share). At most
    /// `--max-agents-per-token` per token of the project.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentStatus>,
}

/// The header in which an agent reports its scheduler's load on its assignment polls
/// and results posts: [`AgentLoad::header_value`]. Old control planes ignore it; an
/// agent that sends none (or a value that does not parse) has no load shown.
pub const LOAD_HEADER: &str = "monitors-agent-load";

/// An agent's scheduler load over its last minute: checks due against checks started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentLoad {
    /// Checks due per second.
    pub due_per_second: f64,
    /// Checks started per second.
    pub started_per_second: f64,
    /// Checks per second the agent falls short by.
    pub deficit_per_second: f64,
    /// Checks waiting for a permit at the end of the minute.
    pub waiting: u64,
    /// Whether the agent cannot keep up.
    pub overloaded: bool,
}

impl AgentLoad {
    /// The value of [`LOAD_HEADER`]: `due=D, started=S, deficit=X, waiting=W,
    /// overloaded=0|1`, numbers rounded to the thousandth.
    pub fn header_value(&self) -> String {
        format!(
            "due={:.3}, started={:.3}, deficit={:.3}, waiting={}, overloaded={}",
            self.due_per_second,
            self.started_per_second,
            self.deficit_per_second,
            self.waiting,
            u8::from(self.overloaded)
        )
    }

    /// Reads a [`LOAD_HEADER`] value: every one of the five keys, each once, numbers
    /// finite and not negative; unknown keys are skipped (later agents may say more).
    /// `None` when it does not parse.
    pub fn parse(text: &str) -> Option<AgentLoad> {
        let mut load = AgentLoad::default();
        let mut seen = [false; 5];
        for pair in text.split(',') {
            let (key, value) = pair.split_once('=')?;
            let (key, value) = (key.trim(), value.trim());
            let number = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
            };
            let slot = match key {
                "due" => {
                    load.due_per_second = number()?;
                    0
                }
                "started" => {
                    load.started_per_second = number()?;
                    1
                }
                "deficit" => {
                    load.deficit_per_second = number()?;
                    2
                }
                "waiting" => {
                    load.waiting = value.parse().ok()?;
                    3
                }
                "overloaded" => {
                    load.overloaded = match value {
                        "0" => false,
                        "1" => true,
                        _ => return None,
                    };
                    4
                }
                _ => continue,
            };
            if std::mem::replace(&mut seen[slot], true) {
                return None;
            }
        }
        seen.iter().all(|s| *s).then_some(load)
    }

    /// `overloaded: short by N checks/s` (N to two decimals) when overloaded.
    pub fn note(&self) -> Option<String> {
        self.overloaded.then(|| {
            format!(
                "overloaded: short by {:.2} checks/s",
                self.deficit_per_second
            )
        })
    }
}

/// A live agent as the status lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Its id.
    pub agent: String,
    /// Its location.
    pub location: String,
    /// Its last reported load, `null` when it reported none (an older agent, or one
    /// served by another replica).
    pub load: Option<AgentLoad>,
    /// `overloaded: short by N checks/s` when its load says so, else `null`.
    pub note: Option<String>,
}

/// A deployed monitor with its latest result in each location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorStatus {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether its alerts are muted.
    pub muted: bool,
    /// Whether it runs.
    pub activated: bool,
    /// Whether it runs in every location each interval.
    pub run_parallel: bool,
    /// How often it runs, such as `10m`.
    pub frequency: String,
    /// Where its alerts go.
    pub alert_channels: Vec<String>,
    /// The group it is shown under on the status pages.
    #[serde(default)]
    pub group: Option<String>,
    /// Its tags, sorted as declared.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The latest result in each location, sorted by location.
    pub locations: Vec<LocationStatus>,
    /// Its uptime over every location.
    #[serde(default)]
    pub uptime: Uptime,
    /// The maintenance window open for it now, if any (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<OpenWindow>,
}

/// A maintenance window open now for a monitor, as its status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenWindow {
    /// The window's id.
    pub id: String,
    /// Its name (the id when it has none).
    pub name: String,
    /// Whether it was opened ad hoc rather than deployed.
    #[serde(default)]
    pub ad_hoc: bool,
    /// When this opening ends.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
}

/// The share of checks that did not fail (degraded counts as up), in percent, over windows
/// ending now made of whole hours (the current one and those before it); `null` without
/// checks in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Uptime {
    /// The last 24 hours.
    #[serde(rename = "24h", default)]
    pub h24: Option<f64>,
    /// The last 7 days.
    #[serde(rename = "7d", default)]
    pub d7: Option<f64>,
    /// The last 30 days.
    #[serde(rename = "30d", default)]
    pub d30: Option<f64>,
    /// The last 90 days.
    #[serde(rename = "90d", default)]
    pub d90: Option<f64>,
}

/// The latest result of a monitor in a location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationStatus {
    /// The location.
    pub location: String,
    /// The agent that ran it.
    pub agent: String,
    /// The verdict.
    pub status: Status,
    /// When the check started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Why it did not pass.
    pub error: Option<ProbeError>,
    /// Its timings.
    pub timings: Timings,
    /// Whole days until the earliest certificate expiry (TLS only).
    pub days_left: Option<i64>,
    /// How many results in a row, up to this one, failed.
    pub consecutive_failures: u64,
    /// The earliest certificate expiry (TLS only), for the server's metrics; not sent.
    #[serde(skip)]
    pub cert_expiry: Option<OffsetDateTime>,
    /// Its uptime in this location.
    #[serde(default)]
    pub uptime: Uptime,
    /// Whether this result started in a maintenance window (then left out of the uptime
    /// and of the run of failures); absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_maintenance: bool,
}

/// The answer to `GET /v1/projects/{project}/monitors/{id}/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History<R = CheckResult> {
    /// The monitor's id.
    pub monitor: String,
    /// Its results, oldest first.
    pub results: Vec<HistoryEntry<R>>,
}

/// One stored result of a [`History`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry<R = CheckResult> {
    /// `{monitor}/{location}/{tick}`.
    pub id: String,
    /// Where it ran.
    pub location: String,
    /// The agent that ran it.
    pub agent: String,
    /// The schedule tick it ran for.
    pub tick: u64,
    /// When the control plane received it, RFC 3339.
    pub received_at: String,
    /// The result, as the agent sent it.
    pub result: R,
    /// Whether it started in a maintenance window (left out of the uptime); absent when
    /// not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_maintenance: bool,
}

/// The answer to `GET /v1/projects/{project}/monitors/{id}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorHistory {
    /// The monitor's id.
    pub monitor: String,
    /// `raw`, `1h` or `1d`.
    pub step: String,
    /// The start of the range asked for, RFC 3339.
    pub from: String,
    /// The end of the range asked for, RFC 3339.
    pub to: String,
    /// The points, oldest first, then by location.
    pub points: Vec<HistoryPoint>,
}

/// One point of a [`MonitorHistory`]: one result (`raw`) or the rollup of an hour or a day
/// in one location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// The location.
    pub location: String,
    /// When the result started, or the bucket's start, RFC 3339.
    pub start: String,
    /// Results (1 for a raw point).
    pub checks: u64,
    /// Of them, failed.
    pub failures: u64,
    /// Of them, degraded.
    pub degraded: u64,
    /// Median total time, milliseconds (for a day: approximated from the hours).
    pub p50_ms: f64,
    /// 95th percentile of the total time, milliseconds (for a day: approximated).
    pub p95_ms: f64,
    /// Longest total time, milliseconds.
    pub max_ms: f64,
    /// The fewest whole days a certificate had left, `null` without TLS.
    pub min_days_left: Option<i64>,
    /// `{monitor}/{location}/{tick}` of a raw point; absent for rollups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The verdict of a raw point; absent for rollups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Why a raw point did not pass; absent for rollups and passed results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
    /// Whether a raw point started in a maintenance window (rollups leave those out);
    /// absent when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_maintenance: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_headers_round_trip_and_refuse_what_is_not_a_load() {
        let load = AgentLoad {
            due_per_second: 10.0,
            started_per_second: 7.5,
            deficit_per_second: 2.5,
            waiting: 40,
            overloaded: true,
        };
        assert_eq!(AgentLoad::parse(&load.header_value()), Some(load));
        assert_eq!(
            load.note().as_deref(),
            Some("overloaded: short by 2.50 checks/s")
        );
        assert_eq!(AgentLoad::default().note(), None);
        let later = format!("{}, queue=3", load.header_value());
        assert_eq!(AgentLoad::parse(&later), Some(load));
        for bad in [
            "",
            "due=1",
            "due=1, started=1, deficit=-1, waiting=0, overloaded=0",
            "due=NaN, started=1, deficit=1, waiting=0, overloaded=0",
            "due=1, started=1, deficit=1, waiting=0, overloaded=yes",
            "due=1, due=1, started=1, deficit=1, waiting=0, overloaded=0",
        ] {
            assert_eq!(AgentLoad::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn assigned_monitors_say_retry_elsewhere_only_when_true() {
        let m = AssignedMonitor {
            monitor: 1,
            every: 2,
            index: 0,
            phase_ms: 0,
            retry_elsewhere: false,
        };
        let text = serde_json::to_string(&m).unwrap();
        assert!(!text.contains("retry_elsewhere"), "{text}");
        let back: AssignedMonitor<u8> =
            serde_json::from_str(r#"{"monitor":1,"every":2,"index":0,"phase_ms":0}"#).unwrap();
        assert_eq!(back, m);
    }
}
