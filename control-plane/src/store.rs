//! The storage boundary: the [`Store`] trait every backend implements, and the types that
//! cross it (monitor sets in canonical JSON, versions, deploy inputs and outcomes, token
//! roles, check results).
//!
//! [`SqliteStore`](crate::sqlite::SqliteStore) is the embedded default; a PostgreSQL backend
//! implements the same trait. Methods are blocking: the HTTP layer calls them from
//! `tokio::task::spawn_blocking`.

use std::collections::BTreeMap;

use monitor_core::Status;
use monitor_core::cli::bundle::Bundle;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::diff::Diff;
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

    /// Stores a batch of results in one transaction, ignoring those whose id the project
    /// already holds, and keeps the latest result per monitor and location with its run of
    /// consecutive failures.
    fn insert_results(
        &self,
        project: &str,
        results: &[NewResult],
    ) -> Result<InsertOutcome, StoreError>;

    /// The latest result of each monitor in each location, sorted by monitor and location.
    fn latest_results(&self, project: &str) -> Result<Vec<LatestResult>, StoreError>;

    /// A monitor's results, oldest first by start time, as [`ResultQuery`] asks.
    fn results(&self, project: &str, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError>;

    /// Deletes every result that started before `before_us` (unix microseconds); returns
    /// how many.
    fn prune_results(&self, before_us: i64) -> Result<u64, StoreError>;
}

/// What a token may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Every route of its project, the agent routes included.
    Deploy,
    /// Only the agent routes (`/v1/agent/*`) of its project.
    Agent,
}

impl Role {
    /// The name stored and given on the command line: `deploy` or `agent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Deploy => "deploy",
            Role::Agent => "agent",
        }
    }

    /// The role of a name [`Role::as_str`] writes.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "deploy" => Some(Role::Deploy),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }
}

/// Whom a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The project it reaches.
    pub project: String,
    /// What it may do there.
    pub role: Role,
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
    /// The `CheckResult` as JSON.
    pub json: String,
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
    /// How many results in a row, up to this one, failed there (0 when it did not fail).
    pub consecutive_failures: u64,
    /// The `CheckResult` as JSON.
    pub json: String,
}

/// Which results of one monitor to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultQuery {
    /// The monitor's id.
    pub monitor: String,
    /// Only results that started after this instant (unix microseconds, exclusive).
    pub since_us: Option<i64>,
    /// Only results from this location.
    pub location: Option<String>,
    /// At most this many.
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
    /// When the control plane received it, unix microseconds.
    pub received_us: i64,
    /// The `CheckResult` as JSON.
    pub json: String,
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
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Git metadata of a deploy; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// One version's metadata, as the API returns it.
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

/// A version with the canonical bundle JSON of the set it made current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Its metadata.
    pub info: VersionInfo,
    /// The bundle, canonical JSON.
    pub bundle_json: String,
}

/// A set of monitors keyed by id, each held as canonical JSON (object keys sorted, no
/// whitespace), so that equal monitors have equal text and equal sets equal hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorSet(BTreeMap<String, String>);

impl MonitorSet {
    /// An empty set.
    pub fn new() -> Self {
        MonitorSet::default()
    }

    /// The monitors of a (validated) bundle in their canonical JSON.
    pub fn from_bundle(bundle: &Bundle) -> Result<Self, serde_json::Error> {
        let mut set = MonitorSet::new();
        for m in &bundle.monitors {
            set.insert(m.id.clone(), canonical_json(&serde_json::to_value(m)?));
        }
        Ok(set)
    }

    /// Reads the canonical bundle JSON [`MonitorSet::bundle_json`] writes.
    pub fn from_bundle_json(text: &str) -> Result<Self, StoreError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| StoreError::Corrupt(format!("bundle json: {e}")))?;
        let monitors = value
            .get("monitors")
            .and_then(Value::as_array)
            .ok_or_else(|| StoreError::Corrupt("bundle without monitors".to_owned()))?;
        let mut set = MonitorSet::new();
        for m in monitors {
            let id = m
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| StoreError::Corrupt("monitor without id".to_owned()))?;
            set.insert(id.to_owned(), canonical_json(m));
        }
        Ok(set)
    }

    /// Adds or replaces a monitor; `json` must be canonical JSON.
    pub fn insert(&mut self, id: String, json: String) {
        self.0.insert(id, json);
    }

    /// Removes a monitor.
    pub fn remove(&mut self, id: &str) -> Option<String> {
        self.0.remove(id)
    }

    /// The canonical JSON of a monitor.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }

    /// Whether the set holds a monitor with this id.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// How many monitors the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ids and canonical JSON, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The canonical JSON of the set as a bundle: `{"monitors":[...],"schema_version":1}`,
    /// monitors sorted by id.
    pub fn bundle_json(&self) -> String {
        let size = self.0.values().map(|m| m.len() + 1).sum::<usize>() + 40;
        let mut out = String::with_capacity(size);
        out.push_str("{\"monitors\":[");
        for (i, m) in self.0.values().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(m);
        }
        out.push_str("],\"schema_version\":");
        out.push_str(&monitor_core::SCHEMA_VERSION.to_string());
        out.push('}');
        out
    }

    /// SHA-256 hex of [`MonitorSet::bundle_json`].
    pub fn hash(&self) -> String {
        sha256_hex(self.bundle_json().as_bytes())
    }
}

/// SHA-256 of `data` as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Canonical JSON of a value: object keys sorted by their UTF-8 bytes, no whitespace,
/// strings and numbers as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Checks a project name: 1 to 128 characters of ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit.
pub fn check_project_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid project name `{}`: use 1 to 128 ascii letters, digits, `-`, `_` or `.`, starting with a letter or digit",
            name.escape_default()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_recursively() {
        let v = json!({"b": [ {"z": 1, "a": "x\"y"} ], "a": null, "é": true, "Z": 1.5});
        assert_eq!(
            canonical_json(&v),
            r#"{"Z":1.5,"a":null,"b":[{"a":"x\"y","z":1}],"é":true}"#
        );
    }

    #[test]
    fn bundle_json_round_trips() {
        let mut set = MonitorSet::new();
        set.insert("b".into(), r#"{"id":"b","x":1}"#.into());
        set.insert("a".into(), r#"{"id":"a"}"#.into());
        let text = set.bundle_json();
        assert_eq!(
            text,
            r#"{"monitors":[{"id":"a"},{"id":"b","x":1}],"schema_version":1}"#
        );
        assert_eq!(MonitorSet::from_bundle_json(&text).unwrap(), set);
        assert_eq!(set.hash().len(), 64);
    }

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
