//! [`SqliteStore`]: the embedded [`Store`] on one SQLite file, in WAL mode with
//! `synchronous = FULL`, so that a committed deploy survives a crash and an interrupted one
//! leaves nothing behind.
//!
//! Writes go through one connection behind a mutex and run in `BEGIN IMMEDIATE`
//! transactions; reads (and dry runs) use a small pool of reader connections, which WAL lets
//! run beside a writer on a consistent snapshot.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::diff;
use crate::store::{
    DeployInput, DeployOutcome, Git, InsertOutcome, LatestResult, MonitorSet, NewResult,
    ResultQuery, Role, Store, StoreError, StoredResult, StoredVersion, TokenOwner, VersionInfo,
};
use crate::token::TokenHash;
use monitor_core::Status;

/// The schema, one numbered migration per change; applied in order at open, each in its own
/// transaction, and recorded in `schema_migrations`. Never edit a released migration: add one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE projects (
        name TEXT PRIMARY KEY NOT NULL,
        created_at TEXT NOT NULL,
        current_version INTEGER
    );
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY NOT NULL,
        project TEXT NOT NULL REFERENCES projects(name),
        created_at TEXT NOT NULL
    );
    CREATE TABLE monitors (
        project TEXT NOT NULL REFERENCES projects(name),
        id TEXT NOT NULL,
        spec TEXT NOT NULL,
        PRIMARY KEY (project, id)
    ) WITHOUT ROWID;
    CREATE TABLE versions (
        project TEXT NOT NULL REFERENCES projects(name),
        number INTEGER NOT NULL,
        hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        git TEXT NOT NULL,
        bundle TEXT NOT NULL,
        monitors INTEGER NOT NULL,
        rollback_of INTEGER,
        PRIMARY KEY (project, number)
    );",
    ),
    (
        2,
        "ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'deploy'
            CHECK (role IN ('deploy', 'agent'));",
    ),
    (
        3,
        // Times are unix microseconds, so that they compare and sort as instants.
        "CREATE TABLE results (
            project TEXT NOT NULL REFERENCES projects(name),
            id TEXT NOT NULL,
            monitor TEXT NOT NULL,
            location TEXT NOT NULL,
            agent TEXT NOT NULL,
            tick INTEGER NOT NULL,
            status TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            received_at INTEGER NOT NULL,
            result TEXT NOT NULL,
            UNIQUE (project, id)
        );
        CREATE INDEX results_by_monitor ON results (project, monitor, started_at);
        CREATE INDEX results_by_start ON results (project, started_at);
        CREATE TABLE latest_results (
            project TEXT NOT NULL REFERENCES projects(name),
            monitor TEXT NOT NULL,
            location TEXT NOT NULL,
            result_id TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            consecutive_failures INTEGER NOT NULL,
            PRIMARY KEY (project, monitor, location)
        ) WITHOUT ROWID;",
    ),
];

/// Rows deleted per transaction when pruning, so that a large prune never holds the writer
/// for long.
const PRUNE_BATCH: i64 = 5_000;

/// How long a connection waits for another process's lock before answering busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// The SQLite [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut writer = connect(&path)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not enable WAL mode (journal_mode is {mode})"
            )));
        }
        migrate(&mut writer)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The highest migration applied to the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let conn = self.writer();
        Ok(conn.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?)
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let out = f(&tx)?;
            tx.finish()?;
            Ok(out)
        })();
        let mut idle = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer; commits when `f` returns
    /// `Ok((value, true))`, rolls back otherwise.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (out, commit) = f(&tx)?;
        if commit {
            tx.commit()?;
        } else {
            tx.rollback()?;
        }
        Ok(out)
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, now()],
        )?;
        tracing::info!(version, "applied schema migration");
    }
    tx.commit()?;
    Ok(())
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn ensure_project(tx: &Transaction<'_>, project: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO projects (name, created_at) VALUES (?1, ?2)",
        params![project, now()],
    )?;
    Ok(())
}

fn load_set(tx: &Transaction<'_>, project: &str) -> Result<MonitorSet, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT id, spec FROM monitors WHERE project = ?1")?;
    let rows = stmt.query_map([project], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut set = MonitorSet::new();
    for row in rows {
        let (id, spec): (String, String) = row?;
        set.insert(id, spec);
    }
    Ok(set)
}

fn current_version(tx: &Transaction<'_>, project: &str) -> Result<Option<u64>, StoreError> {
    let v: Option<Option<i64>> = tx
        .query_row(
            "SELECT current_version FROM projects WHERE name = ?1",
            [project],
            |r| r.get(0),
        )
        .optional()?;
    v.flatten().map(to_u64).transpose()
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative number {v}")))
}

fn to_i64(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

/// Applies a plan and records it as a new version; returns its number.
fn apply(
    tx: &Transaction<'_>,
    project: &str,
    current: &MonitorSet,
    plan: &diff::Plan,
    git: &Git,
    rollback_of: Option<u64>,
) -> Result<u64, StoreError> {
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO monitors (project, id, spec) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, id) DO UPDATE SET spec = excluded.spec",
        )?;
        for (id, spec) in plan.result.iter() {
            if current.get(id) != Some(spec) {
                upsert.execute(params![project, id, spec])?;
            }
        }
        let mut delete =
            tx.prepare_cached("DELETE FROM monitors WHERE project = ?1 AND id = ?2")?;
        for id in &plan.diff.deleted {
            delete.execute(params![project, id])?;
        }
    }
    let last: i64 = tx.query_row(
        "SELECT COALESCE(MAX(number), 0) FROM versions WHERE project = ?1",
        [project],
        |r| r.get(0),
    )?;
    let number = last + 1;
    let git_json = serde_json::to_string(git).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let bundle = plan.result.bundle_json();
    let hash = crate::store::sha256_hex(bundle.as_bytes());
    let count = i64::try_from(plan.result.len()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO versions (project, number, hash, created_at, git, bundle, monitors, rollback_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            project,
            number,
            hash,
            now(),
            git_json,
            bundle,
            count,
            rollback_of.and_then(to_i64)
        ],
    )?;
    tx.execute(
        "UPDATE projects SET current_version = ?2 WHERE name = ?1",
        params![project, number],
    )?;
    to_u64(number)
}

/// Plans `incoming` against the stored set and applies it unless nothing changes.
fn deploy_in(
    tx: &Transaction<'_>,
    project: &str,
    incoming: &MonitorSet,
    prune: bool,
    git: &Git,
    rollback_of: Option<u64>,
) -> Result<(DeployOutcome, bool), StoreError> {
    ensure_project(tx, project)?;
    let current = load_set(tx, project)?;
    let plan = diff::plan(&current, incoming, prune);
    if plan.result == current {
        let version = current_version(tx, project)?;
        let outcome = DeployOutcome {
            applied: false,
            version,
            diff: plan.diff,
        };
        return Ok((outcome, false));
    }
    let version = apply(tx, project, &current, &plan, git, rollback_of)?;
    let outcome = DeployOutcome {
        applied: true,
        version: Some(version),
        diff: plan.diff,
    };
    Ok((outcome, true))
}

const VERSION_COLUMNS: &str = "number, hash, created_at, git, monitors, rollback_of";

fn version_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, String, i64, Option<i64>)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn version_info(
    (number, hash, created_at, git, monitors, rollback_of): (
        i64,
        String,
        String,
        String,
        i64,
        Option<i64>,
    ),
) -> Result<VersionInfo, StoreError> {
    Ok(VersionInfo {
        version: to_u64(number)?,
        hash,
        created_at,
        git: serde_json::from_str(&git)
            .map_err(|e| StoreError::Corrupt(format!("git json: {e}")))?,
        monitors: to_u64(monitors)?,
        rollback_of: rollback_of.map(to_u64).transpose()?,
    })
}

impl Store for SqliteStore {
    fn create_token(&self, project: &str, hash: &TokenHash, role: Role) -> Result<(), StoreError> {
        self.write(|tx| {
            ensure_project(tx, project)?;
            tx.execute(
                "INSERT INTO tokens (hash, project, created_at, role) VALUES (?1, ?2, ?3, ?4)",
                params![hash.to_hex(), project, now(), role.as_str()],
            )?;
            Ok(((), true))
        })
    }

    fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        let hex = hash.to_hex();
        let found: Option<(String, String, String)> = self.with_reader(|tx| {
            Ok(tx
                .query_row(
                    "SELECT hash, project, role FROM tokens WHERE hash = ?1",
                    [&hex],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?)
        })?;
        // The lookup is by hash, which tells an attacker nothing about a token; the final
        // comparison is constant time all the same.
        let Some((_, project, role)) =
            found.filter(|(stored, _, _)| crate::token::ct_eq(hex.as_bytes(), stored.as_bytes()))
        else {
            return Ok(None);
        };
        let role = Role::from_name(&role).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "a token of project `{project}` has the unknown role `{role}`"
            ))
        })?;
        Ok(Some(TokenOwner { project, role }))
    }

    fn projects(&self) -> Result<Vec<String>, StoreError> {
        self.with_reader(|tx| {
            let mut stmt = tx.prepare_cached("SELECT name FROM projects ORDER BY name")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn deploy(&self, project: &str, input: DeployInput) -> Result<DeployOutcome, StoreError> {
        if input.dry_run {
            return self.with_reader(|tx| {
                let current = load_set(tx, project)?;
                let plan = diff::plan(&current, &input.monitors, input.prune);
                Ok(DeployOutcome {
                    applied: false,
                    version: current_version(tx, project)?,
                    diff: plan.diff,
                })
            });
        }
        self.write(|tx| deploy_in(tx, project, &input.monitors, input.prune, &input.git, None))
    }

    fn monitors(&self, project: &str) -> Result<MonitorSet, StoreError> {
        self.with_reader(|tx| load_set(tx, project))
    }

    fn current_version(&self, project: &str) -> Result<Option<u64>, StoreError> {
        self.with_reader(|tx| current_version(tx, project))
    }

    fn current_set(&self, project: &str) -> Result<(Option<u64>, MonitorSet), StoreError> {
        self.with_reader(|tx| Ok((current_version(tx, project)?, load_set(tx, project)?)))
    }

    fn versions(&self, project: &str) -> Result<Vec<VersionInfo>, StoreError> {
        self.with_reader(|tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE project = ?1 ORDER BY number DESC"
            ))?;
            let rows = stmt.query_map([project], version_row)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(version_info(row?)?);
            }
            Ok(out)
        })
    }

    fn version(&self, project: &str, number: u64) -> Result<Option<StoredVersion>, StoreError> {
        let Some(n) = to_i64(number) else {
            return Ok(None);
        };
        self.with_reader(|tx| {
            let row = tx
                .query_row(
                    &format!(
                        "SELECT {VERSION_COLUMNS}, bundle FROM versions WHERE project = ?1 AND number = ?2"
                    ),
                    params![project, n],
                    |r| Ok((version_row(r)?, r.get::<_, String>(6)?)),
                )
                .optional()?;
            row.map(|(info, bundle_json)| {
                Ok(StoredVersion {
                    info: version_info(info)?,
                    bundle_json,
                })
            })
            .transpose()
        })
    }

    fn rollback(&self, project: &str, number: u64) -> Result<DeployOutcome, StoreError> {
        let n = to_i64(number).ok_or(StoreError::UnknownVersion(number))?;
        self.write(|tx| {
            let bundle: Option<String> = tx
                .query_row(
                    "SELECT bundle FROM versions WHERE project = ?1 AND number = ?2",
                    params![project, n],
                    |r| r.get(0),
                )
                .optional()?;
            let bundle = bundle.ok_or(StoreError::UnknownVersion(number))?;
            let target = MonitorSet::from_bundle_json(&bundle)?;
            deploy_in(tx, project, &target, true, &Git::default(), Some(number))
        })
    }

    fn destroy(&self, project: &str) -> Result<u64, StoreError> {
        self.write(|tx| {
            let deleted = tx.execute("DELETE FROM monitors WHERE project = ?1", [project])?;
            tx.execute(
                "UPDATE projects SET current_version = NULL WHERE name = ?1",
                [project],
            )?;
            Ok((deleted as u64, true))
        })
    }

    fn insert_results(
        &self,
        project: &str,
        results: &[NewResult],
    ) -> Result<InsertOutcome, StoreError> {
        self.write(|tx| {
            ensure_project(tx, project)?;
            let mut outcome = InsertOutcome::default();
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO results
                 (project, id, monitor, location, agent, tick, status, started_at, received_at, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for r in results {
                let stored = insert.execute(params![
                    project,
                    r.id,
                    r.monitor,
                    r.location,
                    r.agent,
                    r.tick,
                    status_name(r.status),
                    r.started_us,
                    r.received_us,
                    r.json
                ])?;
                if stored == 0 {
                    outcome.duplicates += 1;
                } else {
                    outcome.accepted += 1;
                    update_latest(tx, project, r)?;
                }
            }
            Ok((outcome, true))
        })
    }

    fn latest_results(&self, project: &str) -> Result<Vec<LatestResult>, StoreError> {
        self.with_reader(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT l.monitor, l.location, r.agent, l.consecutive_failures, r.result
                 FROM latest_results l
                 JOIN results r ON r.project = l.project AND r.id = l.result_id
                 WHERE l.project = ?1
                 ORDER BY l.monitor, l.location",
            )?;
            let rows = stmt.query_map([project], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (monitor, location, agent, failures, json) = row?;
                out.push(LatestResult {
                    monitor,
                    location,
                    agent,
                    consecutive_failures: to_u64(failures)?,
                    json,
                });
            }
            Ok(out)
        })
    }

    fn results(&self, project: &str, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError> {
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        self.with_reader(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, location, agent, tick, received_at, result FROM results
                 WHERE project = ?1 AND monitor = ?2 AND started_at > ?3
                   AND (?4 IS NULL OR location = ?4)
                 ORDER BY started_at, id
                 LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                params![
                    project,
                    query.monitor,
                    query.since_us.unwrap_or(i64::MIN),
                    query.location,
                    limit
                ],
                |r| {
                    Ok(StoredResult {
                        id: r.get(0)?,
                        location: r.get(1)?,
                        agent: r.get(2)?,
                        tick: r.get(3)?,
                        received_us: r.get(4)?,
                        json: r.get(5)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn prune_results(&self, before_us: i64) -> Result<u64, StoreError> {
        let mut deleted = 0u64;
        for project in self.projects()? {
            loop {
                let n = self.write(|tx| {
                    let n = tx.execute(
                        "DELETE FROM results WHERE rowid IN (
                            SELECT rowid FROM results
                            WHERE project = ?1 AND started_at < ?2 LIMIT ?3)",
                        params![project, before_us, PRUNE_BATCH],
                    )?;
                    tx.execute(
                        "DELETE FROM latest_results WHERE project = ?1 AND started_at < ?2",
                        params![project, before_us],
                    )?;
                    Ok((n, true))
                })?;
                deleted += n as u64;
                if i64::try_from(n).unwrap_or(i64::MAX) < PRUNE_BATCH {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    }
}

/// Makes a newly stored result the latest of its monitor and location when it is newer than
/// the one recorded, counting the run of failures on; a result arriving late, older than
/// the latest, may fall inside that run, which is then counted again from the results.
fn update_latest(tx: &Transaction<'_>, project: &str, r: &NewResult) -> Result<(), StoreError> {
    let failed = r.status == Status::Failed;
    let latest: Option<(i64, i64)> = tx
        .query_row(
            "SELECT started_at, consecutive_failures FROM latest_results
             WHERE project = ?1 AND monitor = ?2 AND location = ?3",
            params![project, r.monitor, r.location],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match latest {
        Some((started, _)) if r.started_us <= started => {
            let failures = failures_since_last_success(tx, project, &r.monitor, &r.location)?;
            tx.execute(
                "UPDATE latest_results SET consecutive_failures = ?4
                 WHERE project = ?1 AND monitor = ?2 AND location = ?3",
                params![project, r.monitor, r.location, failures],
            )?;
        }
        previous => {
            let failures = match previous {
                Some((_, before)) if failed => before.saturating_add(1),
                None if failed => 1,
                _ => 0,
            };
            tx.execute(
                "INSERT INTO latest_results
                 (project, monitor, location, result_id, started_at, consecutive_failures)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (project, monitor, location) DO UPDATE SET
                   result_id = excluded.result_id,
                   started_at = excluded.started_at,
                   consecutive_failures = excluded.consecutive_failures",
                params![project, r.monitor, r.location, r.id, r.started_us, failures],
            )?;
        }
    }
    Ok(())
}

/// How many results of a monitor in a location failed after its latest result that did not.
fn failures_since_last_success(
    tx: &Transaction<'_>,
    project: &str,
    monitor: &str,
    location: &str,
) -> Result<i64, StoreError> {
    let last_success: Option<i64> = tx
        .query_row(
            "SELECT started_at FROM results
             WHERE project = ?1 AND monitor = ?2 AND location = ?3 AND status != 'failed'
             ORDER BY started_at DESC LIMIT 1",
            params![project, monitor, location],
            |row| row.get(0),
        )
        .optional()?;
    Ok(tx.query_row(
        "SELECT COUNT(*) FROM results
         WHERE project = ?1 AND monitor = ?2 AND location = ?3 AND status = 'failed'
           AND started_at > ?4",
        params![project, monitor, location, last_success.unwrap_or(i64::MIN)],
        |row| row.get(0),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "control-plane-unit-{}-{name}-{}",
            std::process::id(),
            OffsetDateTime::now_utc().unix_timestamp_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("db.sqlite")
    }

    fn set(ids: &[(&str, u16)]) -> MonitorSet {
        let bundle = monitor_core::cli::bundle::Bundle::new(
            ids.iter()
                .map(|(id, port)| monitor_core::TcpMonitor::new(*id, "h.internal", *port))
                .collect(),
        );
        MonitorSet::from_bundle(&bundle).unwrap()
    }

    fn deploy(store: &SqliteStore, monitors: MonitorSet, prune: bool) -> DeployOutcome {
        store
            .deploy(
                "p",
                DeployInput {
                    monitors,
                    prune,
                    dry_run: false,
                    git: Git::default(),
                },
            )
            .unwrap()
    }

    #[test]
    fn migrations_apply_once_and_reopen() {
        let path = temp_db("migrate");
        let store = SqliteStore::open(&path).unwrap();
        let latest = MIGRATIONS.last().unwrap().0;
        assert_eq!(store.schema_version().unwrap(), latest);
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest);
        let rows: i64 = store
            .writer()
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, latest);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn deploy_rollback_destroy() {
        let path = temp_db("flow");
        let store = SqliteStore::open(&path).unwrap();
        store
            .create_token("p", &TokenHash::of("t"), Role::Deploy)
            .unwrap();
        store
            .create_token("p", &TokenHash::of("a"), Role::Agent)
            .unwrap();
        let owner = |t: &str| store.token_owner(&TokenHash::of(t)).unwrap();
        assert_eq!(
            owner("t"),
            Some(TokenOwner {
                project: "p".into(),
                role: Role::Deploy
            })
        );
        assert_eq!(owner("a").unwrap().role, Role::Agent);
        assert_eq!(owner("u"), None);

        let v1 = set(&[("a", 1), ("b", 2)]);
        let first = deploy(&store, v1.clone(), false);
        assert!(first.applied);
        assert_eq!(first.version, Some(1));
        assert_eq!(store.monitors("p").unwrap(), v1);
        let again = deploy(&store, v1.clone(), true);
        assert!(!again.applied);
        assert_eq!(again.version, Some(1));

        let v2 = set(&[("a", 3)]);
        let second = deploy(&store, v2.clone(), true);
        assert_eq!(second.version, Some(2));
        assert_eq!(second.diff.deleted, ["b"]);
        assert_eq!(store.monitors("p").unwrap(), v2);

        let back = store.rollback("p", 1).unwrap();
        assert_eq!(back.version, Some(3));
        assert_eq!(store.monitors("p").unwrap(), v1);
        let versions = store.versions("p").unwrap();
        assert_eq!(
            versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            [3, 2, 1]
        );
        assert_eq!(versions[0].rollback_of, Some(1));
        assert_eq!(versions[0].hash, versions[2].hash);
        assert_eq!(versions[0].hash, v1.hash());
        let stored = store.version("p", 2).unwrap().unwrap();
        assert_eq!(stored.bundle_json, v2.bundle_json());
        assert!(matches!(
            store.rollback("p", 9),
            Err(StoreError::UnknownVersion(9))
        ));
        assert!(!store.rollback("p", 3).unwrap().applied);

        assert_eq!(store.destroy("p").unwrap(), 2);
        assert!(store.monitors("p").unwrap().is_empty());
        let after = deploy(&store, MonitorSet::new(), true);
        assert_eq!((after.applied, after.version), (false, None));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    fn result(monitor: &str, location: &str, tick: i64, status: Status) -> NewResult {
        NewResult {
            id: format!("{monitor}/{location}/{tick}"),
            monitor: monitor.to_owned(),
            location: location.to_owned(),
            agent: "agent-1".to_owned(),
            tick,
            status,
            started_us: tick * 10_000_000,
            received_us: 0,
            json: format!("{{\"tick\":{tick}}}"),
        }
    }

    fn latest(store: &SqliteStore) -> Vec<(String, String, u64, String)> {
        store
            .latest_results("p")
            .unwrap()
            .into_iter()
            .map(|l| (l.monitor, l.location, l.consecutive_failures, l.json))
            .collect()
    }

    #[test]
    fn results_dedup_latest_and_prune() {
        use Status::{Degraded, Failed, Passed};
        let path = temp_db("results");
        let store = SqliteStore::open(&path).unwrap();
        let batch = [
            result("a", "eu", 1, Passed),
            result("a", "eu", 2, Failed),
            result("a", "us", 1, Degraded),
            result("a", "eu", 3, Failed),
            result("a", "eu", 3, Failed),
        ];
        let first = store.insert_results("p", &batch).unwrap();
        assert_eq!((first.accepted, first.duplicates), (4, 1));
        let again = store.insert_results("p", &batch).unwrap();
        assert_eq!((again.accepted, again.duplicates), (0, 5));
        let streak = |store: &SqliteStore| {
            latest(store)
                .into_iter()
                .map(|(m, l, n, json)| format!("{m} {l} {n} {json}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            streak(&store),
            ["a eu 2 {\"tick\":3}", "a us 0 {\"tick\":1}"]
        );
        // A newer failure counts on; a late one inside the run is counted again.
        store
            .insert_results("p", &[result("a", "eu", 5, Failed)])
            .unwrap();
        assert_eq!(streak(&store)[0], "a eu 3 {\"tick\":5}");
        store
            .insert_results("p", &[result("a", "eu", 4, Passed)])
            .unwrap();
        assert_eq!(streak(&store)[0], "a eu 1 {\"tick\":5}");
        store
            .insert_results("p", &[result("a", "eu", 6, Passed)])
            .unwrap();
        assert_eq!(streak(&store)[0], "a eu 0 {\"tick\":6}");

        let history = |location: Option<&str>, since_us: Option<i64>, limit: u64| {
            store
                .results(
                    "p",
                    &ResultQuery {
                        monitor: "a".into(),
                        since_us,
                        location: location.map(str::to_owned),
                        limit,
                    },
                )
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            history(None, None, 100),
            [
                "a/eu/1", "a/us/1", "a/eu/2", "a/eu/3", "a/eu/4", "a/eu/5", "a/eu/6"
            ]
        );
        assert_eq!(
            history(Some("eu"), Some(20_000_000), 2),
            ["a/eu/3", "a/eu/4"]
        );
        assert_eq!(
            history(Some("us"), Some(10_000_000), 10),
            Vec::<String>::new()
        );

        // Pruning drops the old results, and the latest ones once they are old too.
        assert_eq!(store.prune_results(30_000_000).unwrap(), 3);
        assert_eq!(
            history(None, None, 100),
            ["a/eu/3", "a/eu/4", "a/eu/5", "a/eu/6"]
        );
        assert_eq!(streak(&store), ["a eu 0 {\"tick\":6}"]);
        assert_eq!(store.prune_results(i64::MAX).unwrap(), 4);
        assert!(latest(&store).is_empty());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn tokens_from_before_roles_are_deploy_tokens() {
        let path = temp_db("roles");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0].1).unwrap();
            conn.execute_batch(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL);
                 INSERT INTO schema_migrations VALUES (1, 'then');
                 INSERT INTO projects (name, created_at) VALUES ('p', 'then');",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO tokens (hash, project, created_at) VALUES (?1, 'p', 'then')",
                [TokenHash::of("old").to_hex()],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store.token_owner(&TokenHash::of("old")).unwrap(),
            Some(TokenOwner {
                project: "p".into(),
                role: Role::Deploy
            })
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
