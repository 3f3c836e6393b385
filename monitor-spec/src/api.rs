//! The request and response bodies of the control plane's API (control-plane/API.md), one
//! set of types for the server, the deploy client (`cargo xtask deploy`) and the agents.
//!
//! Types that carry monitors, bundles or results take them as a type parameter: the typed
//! model by default, or `serde_json::value::RawValue` to pass JSON through as it is (the
//! server's stored canonical JSON, a client's bundle file, an agent's buffered results).

use crate::bundle::Bundle;
use crate::{CheckResult, ErrorKind, ProbeError, Status, TcpMonitor, Timings};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Git metadata of a deploy; every field optional, no other field accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// The body of `POST /v1/projects/{project}/deploy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest<B = Bundle> {
    /// Every monitor the project should have.
    pub bundle: B,
    /// Git metadata recorded with the version.
    #[serde(default)]
    pub git: Option<Git>,
}

/// What a deploy changes, per monitor id; every list sorted by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
}

/// A monitor whose spec changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updated {
    /// Its id.
    pub id: String,
    /// The field paths that differ, such as `target.port`, `steps` or
    /// `tls.expiry_warn_days`, sorted.
    #[serde(default)]
    pub fields: Vec<String>,
}

impl Diff {
    /// Whether the deploy changes nothing stored.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

/// The answer to a deploy or rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The field, such as `monitors[3].target.port`.
    #[serde(default)]
    pub path: String,
    /// What is wrong there.
    #[serde(default)]
    pub message: String,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `{monitor}/{location}/{tick}`.
    pub id: String,
    /// The monitor's id.
    pub monitor: String,
    /// The tick `k` of the schedule it ran for.
    pub tick: u64,
    /// What the check found.
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
}
