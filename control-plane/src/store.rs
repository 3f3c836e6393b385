//! The storage boundary: the [`Store`] trait every backend implements, and the types that
//! cross it (monitor sets in canonical JSON, versions, deploy inputs and outcomes, token
//! roles, check results).
//!
//! `SqliteStore` (module `sqlite`) is the embedded default; a PostgreSQL backend
//! implements the same trait. Methods are blocking: the HTTP layer calls them from
//! `tokio::task::spawn_blocking`.

use std::time::Duration;

use monitor_spec::api::{Diff, Git, VersionInfo};
use monitor_spec::maintenance::MaintenanceWindow;
use monitor_spec::{ErrorKind, Status};
use thiserror::Error;

use crate::monitor_set::MonitorSet;
use crate::token::TokenHash;

/// The storage of projects, tokens, monitors, versions and check results.
///
/// Every method is one transaction: a deploy computes its diff against the stored set and
/// applies it (monitors and the new version row) atomically, or changes nothing.
pub trait Store: Send + Sync + 'static {
    /// Stores a token hash with its role for `project`, creating the project if needed.
    fn create_token(&self, project: &str, hash: &TokenHash, role: Role) -> Result<(), StoreError>;

    /// The project and role of a token hash, `None` for an unknown token. Implementations
    /// compare the stored hash in constant time.
    fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError>;

    /// Every token with its agent ids, sorted by project, then creation time.
    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;

    /// Deletes the token whose [`TokenInfo::id`] is `id` (the first 12 hex digits of its
    /// hash), and the agent ids bound to it; the revoked token, `None` when none has that
    /// id. [`StoreError::AmbiguousToken`] when more than one has.
    fn revoke_token(&self, id: &str) -> Result<Option<TokenInfo>, StoreError>;

    /// Records that a token was used at `at` (RFC 3339).
    fn touch_token(&self, hash: &TokenHash, at: &str) -> Result<(), StoreError>;

    /// Binds an agent id of a project to the token that uses it (see [`AgentClaim`]): the
    /// first token to use an id holds it until the id goes unused for the claim's TTL.
    fn bind_agent(&self, claim: &AgentClaim<'_>) -> Result<AgentBinding, StoreError>;

    // Replicas: the agents' liveness when several control planes serve one database.

    /// Whether several control-plane processes may serve this store at once (PostgreSQL).
    /// Then the agents' liveness lives in the store ([`Store::renew_leases`],
    /// [`Store::leases`]), so that every process assigns monitors from the same live set,
    /// and changes are announced to every process ([`Store::notify`],
    /// [`Store::subscribe`]). `false` for SQLite: one process owns the file and keeps the
    /// live agents in memory (`agents::Registry`); the four methods below then store and
    /// announce nothing.
    fn shared(&self) -> bool;

    /// Records the state of agents this process serves, as [`AgentLease`]s: inserts or
    /// updates each by (project, agent). Of two writes of one agent, the one seen later
    /// (by [`AgentLease::seen_us`]) sets the location and [`AgentLease::work_since_us`];
    /// `seen_us` and `last_result_us` only move forward. The project's leases not seen
    /// for [`LEASE_KEEP_US`] before the latest `seen_us` of the batch are deleted. At
    /// most [`MAX_LEASES`] leases per call ([`StoreError::Corrupt`] beyond).
    fn renew_leases(&self, project: &str, leases: &[AgentLease]) -> Result<(), StoreError>;

    /// The leases of a project's agents seen at or after `seen_since_us` (unix
    /// microseconds), sorted by agent, at most [`MAX_LEASES`].
    fn leases(&self, project: &str, seen_since_us: i64) -> Result<Vec<AgentLease>, StoreError>;

    /// Tells every process serving the store, this one included, that `project`'s
    /// assignments may have changed (a deploy, or a change of its live agents): its
    /// [`Store::subscribe`] receivers get the project's name. Nothing when not shared.
    fn notify(&self, project: &str) -> Result<(), StoreError>;

    /// The names of the projects announced by [`Store::notify`] of any process, from now
    /// on; an empty name when notices may have been missed (the store reconnected), and
    /// `RecvError::Lagged` when the receiver fell behind: re-read every project then.
    /// `None` when the store has no notices (not shared). Best effort: while the store
    /// cannot listen, nothing comes, so readers also re-read on a timer.
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>>;

    /// Every project, sorted by name.
    fn projects(&self) -> Result<Vec<String>, StoreError>;

    /// Diffs `input.monitors` against the stored set and, unless it is a dry run or the
    /// resulting set equals the current one, applies the change as a new version.
    fn deploy(&self, project: &str, input: DeployInput) -> Result<DeployOutcome, StoreError>;

    /// The current monitors of a project (empty for a project without any).
    fn monitors(&self, project: &str) -> Result<MonitorSet, StoreError>;

    /// The version now current, `None` when the project has none. Every change of the
    /// current set makes a new version, so the number identifies the set.
    fn current_version(&self, project: &str) -> Result<Option<u64>, StoreError>;

    /// The version now current and its monitors, read together.
    fn current_set(&self, project: &str) -> Result<(Option<u64>, MonitorSet), StoreError>;

    /// Every version of a project, newest first.
    fn versions(&self, project: &str) -> Result<Vec<VersionInfo>, StoreError>;

    /// One version with the set it made current, `None` when it does not exist.
    fn version(&self, project: &str, number: u64) -> Result<Option<StoredVersion>, StoreError>;

    /// Makes version `number`'s set current again as a new version (prune semantics);
    /// nothing changes when it already is. [`StoreError::UnknownVersion`] when it does not
    /// exist.
    fn rollback(&self, project: &str, number: u64) -> Result<DeployOutcome, StoreError>;

    /// Removes every monitor of a project in one transaction; returns how many. History
    /// stays, and no version is current afterwards.
    fn destroy(&self, project: &str) -> Result<u64, StoreError>;

    /// Stores a batch of results in one transaction, ignoring those whose identity
    /// (monitor, location, tick) the project already holds, and keeps the latest result
    /// per monitor and location with its run of consecutive failures. A result for an hour
    /// already rolled up marks that hour to be rolled up again.
    fn insert_results(
        &self,
        project: &str,
        results: &[NewResult],
    ) -> Result<InsertOutcome, StoreError>;

    /// The latest result of each monitor in each location, sorted by monitor and location.
    fn latest_results(&self, project: &str) -> Result<Vec<LatestResult>, StoreError>;

    /// [`Store::latest_results`] with each result's full JSON, also of those that passed:
    /// what the pages read certificate chains from.
    fn latest_results_full(&self, project: &str) -> Result<Vec<LatestResult>, StoreError>;

    /// The most recent results of every series of `project`, at most `per_series` of each,
    /// sorted by monitor, location and start: the bars of the overview page.
    fn recent_results(
        &self,
        project: &str,
        per_series: u32,
    ) -> Result<Vec<RecentResult>, StoreError>;

    /// A monitor's raw results, oldest first by start time, as [`ResultQuery`] asks.
    fn results(&self, project: &str, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError>;

    /// A monitor's hourly or daily rollups, oldest first (then by location), as
    /// [`RollupQuery`] asks.
    fn rollups(&self, project: &str, query: &RollupQuery) -> Result<Vec<Rollup>, StoreError>;

    /// The checks and failures of every series (monitor and location) of a project over
    /// each of [`UPTIME_WINDOWS`] ending at `now_us`, sorted by monitor and location.
    fn uptime(&self, project: &str, now_us: i64) -> Result<Vec<SeriesUptime>, StoreError>;

    /// One bounded step of upkeep: rolls up closed hours and days, prunes past the
    /// retentions; `more` when work is left (the caller calls again at once).
    fn maintain(&self, now_us: i64, retention: &Retention) -> Result<Maintenance, StoreError>;

    /// What each table takes on disk with its indexes (a partitioned table with all its
    /// partitions), sorted by table: `control-plane usage` and the bench read it.
    fn usage(&self) -> Result<Vec<TableUsage>, StoreError>;

    // Ad-hoc maintenance windows (issue 21): opened and ended through the API, stored so
    // that they survive a restart and every replica sees them; [`Store::maintain`] deletes
    // them [`AD_HOC_KEPT_US`] after they end.

    /// Stores an ad-hoc window (a one-off schedule) unless the project already has
    /// `max_open` windows ending after `now_us`: then nothing is written and the answer is
    /// `false`.
    fn open_window(
        &self,
        project: &str,
        window: &MaintenanceWindow,
        now_us: i64,
        max_open: usize,
    ) -> Result<bool, StoreError>;

    /// The project's ad-hoc windows ending after `after_us`, by start then id, at most
    /// [`MAX_AD_HOC_READ`].
    fn ad_hoc_windows(
        &self,
        project: &str,
        after_us: i64,
    ) -> Result<Vec<MaintenanceWindow>, StoreError>;

    /// Ends an ad-hoc window at `now_us` (its end becomes `now_us` when later; a window
    /// that has not opened yet ends when it opens); the window as it now is, `None` when the
    /// project has no ad-hoc window with this id.
    fn end_window(
        &self,
        project: &str,
        id: &str,
        now_us: i64,
    ) -> Result<Option<MaintenanceWindow>, StoreError>;
}

/// How long an ad-hoc window is kept after it ends: 7 days, in microseconds (results an
/// agent buffered through an outage are still marked when they arrive).
pub const AD_HOC_KEPT_US: i64 = 7 * 86_400_000_000;

/// The most ad-hoc windows [`Store::ad_hoc_windows`] returns.
pub const MAX_AD_HOC_READ: usize = 1_000;

/// What one table of a store takes on disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableUsage {
    /// The table.
    pub table: String,
    /// What it holds.
    pub holds: Holds,
    /// Its rows.
    pub rows: u64,
    /// Its bytes on disk, indexes included.
    pub bytes: u64,
}

/// What a table holds, for the figures that group tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holds {
    /// Raw check results.
    RawResults,
    /// Hourly rollups.
    HourlyRollups,
    /// Daily rollups.
    DailyRollups,
    /// Anything else: projects, tokens, monitors, versions, the latest results, upkeep.
    Other,
}

/// What a token may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Every route of its project, the agent routes included.
    Deploy,
    /// Only the agent routes (`/v1/agent/*`) of its project.
    Agent,
    /// Only the reads of its project: status, monitors, versions and history.
    Read,
}

impl Role {
    /// The name stored and given on the command line: `deploy`, `agent` or `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Deploy => "deploy",
            Role::Agent => "agent",
            Role::Read => "read",
        }
    }

    /// The role of a name [`Role::as_str`] writes.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "deploy" => Some(Role::Deploy),
            "agent" => Some(Role::Agent),
            "read" => Some(Role::Read),
            _ => None,
        }
    }
}

/// A token as `control-plane token list` shows it: never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first 12 hex digits of the token's SHA-256: what `token revoke` takes.
    pub id: String,
    /// The project it reaches.
    pub project: String,
    /// What it may do there.
    pub role: Role,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// When it was last used (to the minute), RFC 3339; `None` if never.
    pub last_used_at: Option<String>,
    /// The agent ids bound to it, sorted.
    pub agents: Vec<String>,
}

/// How many hex digits of a token's hash make its id.
pub const TOKEN_ID_DIGITS: usize = 12;

/// A token using an agent id: what [`Store::bind_agent`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentClaim<'a> {
    /// The token's project.
    pub project: &'a str,
    /// The agent id.
    pub agent: &'a str,
    /// The token.
    pub token: &'a TokenHash,
    /// Now, unix microseconds.
    pub now_us: i64,
    /// Ids unused for this long (microseconds) are released first.
    pub ttl_us: i64,
    /// The most ids one token may hold.
    pub max_per_token: u64,
}

/// The outcome of [`Store::bind_agent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentBinding {
    /// The id is the token's (newly bound, or already); its last use is now.
    Bound,
    /// Another token holds the id.
    Taken,
    /// The token already holds this many ids, the most allowed.
    Full(u64),
}

/// The most leases [`Store::renew_leases`] takes and [`Store::leases`] returns at once.
pub const MAX_LEASES: usize = 10_000;

/// How long a lease stays stored after its agent was last seen: one day, in microseconds.
pub const LEASE_KEEP_US: i64 = 86_400_000_000;

/// An agent's liveness as the control-plane process serving it saw it; times are unix
/// microseconds of that process's wall clock (see [`Store::renew_leases`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLease {
    /// The agent's id.
    pub agent: String,
    /// Where it runs.
    pub location: String,
    /// When it was last heard of; an open long poll counts, and is renewed while open.
    pub seen_us: i64,
    /// Since when it has held monitors (since it last held none); `None` while it holds
    /// none.
    pub work_since_us: Option<i64>,
    /// When it last posted results, if ever.
    pub last_result_us: Option<i64>,
}

/// Whom a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The project it reaches.
    pub project: String,
    /// What it may do there.
    pub role: Role,
}

/// The typed facts of a check result, stored in columns for every result (the full JSON
/// is kept only for failed and degraded results and the latest one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultFacts {
    /// Why it did not pass (`None` when passed).
    pub error: Option<ErrorKind>,
    /// Name resolution, microseconds.
    pub dns_us: Option<i64>,
    /// Connection, microseconds.
    pub connect_us: Option<i64>,
    /// TLS handshake, microseconds.
    pub tls_us: Option<i64>,
    /// Until the first byte, microseconds.
    pub first_byte_us: Option<i64>,
    /// The whole check, microseconds.
    pub total_us: i64,
    /// The address that answered, `ip:port`.
    pub address: Option<String>,
    /// The negotiated TLS version, such as `TLSv1.3`.
    pub tls_version: Option<String>,
    /// The earliest `not_after` of the presented chain, unix seconds.
    pub cert_expiry_s: Option<i64>,
}

/// A check result as an agent reported it, checked and ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResult {
    /// `{monitor}/{location}/{tick}`, unique per project.
    pub id: String,
    /// The monitor's id.
    pub monitor: String,
    /// Where it ran.
    pub location: String,
    /// The agent that ran it.
    pub agent: String,
    /// The schedule tick `k` it ran for.
    pub tick: i64,
    /// The verdict.
    pub status: Status,
    /// When the check started, unix microseconds.
    pub started_us: i64,
    /// When the control plane received it, unix microseconds.
    pub received_us: i64,
    /// The typed facts (see [`ResultFacts`]).
    pub facts: ResultFacts,
    /// The `CheckResult` as JSON: stored for failed and degraded results and while it is
    /// the latest of its monitor and location.
    pub json: String,
    /// Whether it started inside a maintenance window covering its monitor: stored and
    /// shown, but left out of uptime, rollups and the run of consecutive failures.
    pub in_maintenance: bool,
}

/// What storing a batch of results did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsertOutcome {
    /// Results stored.
    pub accepted: u64,
    /// Results whose id was already stored, ignored.
    pub duplicates: u64,
}

/// The latest result of a monitor in a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestResult {
    /// The monitor's id.
    pub monitor: String,
    /// The location.
    pub location: String,
    /// The agent that ran it.
    pub agent: String,
    /// How many results in a row, up to this one, failed there (0 when it did not fail);
    /// results in maintenance windows are not counted: a failure in a window leaves the
    /// run as it was, a pass ends it.
    pub consecutive_failures: u64,
    /// The verdict.
    pub status: Status,
    /// When the check started, unix microseconds.
    pub started_us: i64,
    /// The typed facts.
    pub facts: ResultFacts,
    /// The `CheckResult` as JSON when the result did not pass (its error, hints and
    /// excerpt); `None` for a passed one, which the facts describe (the store keeps the
    /// latest result's JSON either way: the history returns it).
    pub json: Option<String>,
    /// Whether it started inside a maintenance window.
    pub in_maintenance: bool,
}

/// One of the recent results of a series ([`Store::recent_results`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RecentResult {
    /// Its monitor.
    pub monitor: String,
    /// Its location.
    pub location: String,
    /// When it started, unix microseconds.
    pub started_us: i64,
    /// Its verdict.
    pub status: Status,
    /// Its total time, microseconds.
    pub total_us: i64,
    /// Why it did not pass.
    pub error: Option<ErrorKind>,
    /// Its full JSON, kept only when it did not pass.
    pub json: Option<String>,
    /// Whether it started inside a maintenance window.
    pub in_maintenance: bool,
}

/// Which raw results of one monitor to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultQuery {
    /// The monitor's id.
    pub monitor: String,
    /// Only results from this location.
    pub location: Option<String>,
    /// Only results that started after this instant (unix microseconds, exclusive).
    pub from_us: Option<i64>,
    /// Only results that started at or before this instant (unix microseconds, inclusive).
    pub to_us: Option<i64>,
    /// At most this many (the oldest ones).
    pub limit: u64,
}

/// A stored result, as the history returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// `{monitor}/{location}/{tick}`.
    pub id: String,
    /// Where it ran.
    pub location: String,
    /// The agent that ran it.
    pub agent: String,
    /// The schedule tick it ran for.
    pub tick: i64,
    /// The verdict.
    pub status: Status,
    /// When the check started, unix microseconds.
    pub started_us: i64,
    /// When the control plane received it, unix microseconds.
    pub received_us: i64,
    /// The typed facts.
    pub facts: ResultFacts,
    /// The `CheckResult` as JSON, for failed and degraded results (and the latest);
    /// `None` for a passed result, which is rebuilt from the facts.
    pub json: Option<String>,
    /// Whether it started inside a maintenance window.
    pub in_maintenance: bool,
}

/// The width of a rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl Step {
    /// The width in microseconds.
    pub fn micros(self) -> i64 {
        match self {
            Step::Hour => 3_600_000_000,
            Step::Day => 86_400_000_000,
        }
    }
}

/// Which rollups of one monitor to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupQuery {
    /// The monitor's id.
    pub monitor: String,
    /// Only rollups of this location.
    pub location: Option<String>,
    /// Hourly or daily.
    pub step: Step,
    /// Only buckets that start at or after this instant (unix microseconds).
    pub from_us: i64,
    /// Only buckets that start before this instant (unix microseconds).
    pub to_us: i64,
    /// At most this many (the oldest ones).
    pub limit: u64,
}

/// The results of one monitor in one location over an hour or a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// The location.
    pub location: String,
    /// The start of the bucket, unix microseconds.
    pub start_us: i64,
    /// Results that started in it, those in maintenance windows left out.
    pub checks: u64,
    /// Of them, failed.
    pub failures: u64,
    /// Of them, degraded.
    pub degraded: u64,
    /// Median total time, microseconds (for a day: the checks-weighted median of the
    /// hourly medians, an approximation).
    pub p50_us: i64,
    /// 95th percentile of the total time, microseconds (for a day: approximated as for
    /// `p50_us`).
    pub p95_us: i64,
    /// Longest total time, microseconds.
    pub max_us: i64,
    /// The fewest whole days any certificate seen had left, `None` without TLS.
    pub min_days_left: Option<i64>,
}

/// The uptime windows of `status`: name and length in seconds.
pub const UPTIME_WINDOWS: [(&str, i64); 4] = [
    ("24h", 86_400),
    ("7d", 7 * 86_400),
    ("30d", 30 * 86_400),
    ("90d", 90 * 86_400),
];

/// The checks and failures of one series over each of [`UPTIME_WINDOWS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesUptime {
    /// The monitor's id.
    pub monitor: String,
    /// The location.
    pub location: String,
    /// Results per window.
    pub checks: [u64; 4],
    /// Failed results per window (degraded counts as up).
    pub failures: [u64; 4],
}

/// How long results and rollups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw results.
    pub raw: Duration,
    /// Hourly rollups.
    pub hourly: Duration,
    /// Daily rollups.
    pub daily: Duration,
}

impl Default for Retention {
    /// 48 hours, 90 days, 730 days.
    fn default() -> Self {
        Retention {
            raw: Duration::from_secs(48 * 3600),
            hourly: Duration::from_secs(90 * 86_400),
            daily: Duration::from_secs(730 * 86_400),
        }
    }
}

/// What one step of [`Store::maintain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Hourly rollups written (series-hours).
    pub hours_rolled: u64,
    /// Daily rollups written (series-days).
    pub days_rolled: u64,
    /// Raw results deleted.
    pub raw_pruned: u64,
    /// Rollups deleted.
    pub rollups_pruned: u64,
    /// Whether work is left: call again at once.
    pub more: bool,
}

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database is locked by another writer (another process on the same file).
    #[error("the database is busy; retry")]
    Busy,
    /// The version asked for does not exist.
    #[error("unknown version {0}")]
    UnknownVersion(u64),
    /// The database holds something this build cannot read.
    #[error("corrupt data in the database: {0}")]
    Corrupt(String),
    /// The database schema was written by a newer build.
    #[error("database schema version {found} is newer than this build's {known}")]
    SchemaTooNew {
        /// The highest migration recorded in the database.
        found: i64,
        /// The highest migration this build knows.
        known: i64,
    },
    /// The database or its disk is full: nothing was written.
    #[error("the database is full: {0}")]
    Full(rusqlite::Error),
    /// More than one token has the id given to revoke.
    #[error("more than one token has the id `{0}`")]
    AmbiguousToken(String),
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// Another deploy, rollback or destroy of the project holds its lock (on PostgreSQL,
    /// possibly in another replica): nothing was written.
    #[error("another deploy, rollback or destroy of project `{0}` is running")]
    Conflict(String),
    /// Any other PostgreSQL failure (the connection, a statement, TLS).
    #[error("postgres: {}", with_causes(.0))]
    Postgres(tokio_postgres::Error),
    /// A database URL that cannot be used (shown with its password masked).
    #[error("invalid database url {0}")]
    InvalidUrl(String),
    /// No PostgreSQL connection could be had from the pool (the server unreachable or
    /// refusing, or every connection busy past the wait timeout).
    #[error("postgres connection pool: {0}")]
    Pool(String),
}

/// An error with its causes, as one line (a PostgreSQL error's own message is only its
/// kind, such as "db error": the server's message is its cause).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e),
            _ => StoreError::Sqlite(e),
        }
    }
}

/// What a deploy asks of the store.
#[derive(Debug, Clone, Default)]
pub struct DeployInput {
    /// The monitors of the bundle, already validated.
    pub monitors: MonitorSet,
    /// Delete stored monitors the bundle does not hold (otherwise they are kept).
    pub prune: bool,
    /// Compute the diff only; change nothing.
    pub dry_run: bool,
    /// Git metadata recorded with the version.
    pub git: Git,
}

/// What a deploy or rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOutcome {
    /// Whether anything was written (false for dry runs and no-ops).
    pub applied: bool,
    /// The version now current, `None` when the project has none.
    pub version: Option<u64>,
    /// The difference between the stored set and the bundle.
    pub diff: Diff,
}

/// A version with the canonical bundle JSON of the set it made current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Its metadata.
    pub info: VersionInfo,
    /// The bundle, canonical JSON.
    pub bundle_json: String,
}

pub use monitor_spec::rules::check_project as check_project_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        for good in ["a", "prod", "team-1.api_x", &"a".repeat(128)] {
            assert!(check_project_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "ü", &"a".repeat(129)] {
            assert!(check_project_name(bad).is_err(), "{bad}");
        }
    }
}
