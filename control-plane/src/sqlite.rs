//! [`SqliteStore`]: the embedded [`Store`] on one SQLite file, in WAL mode with
//! `synchronous = FULL`, so that a committed deploy survives a crash and an interrupted one
//! leaves nothing behind.
//!
//! Writes go through one connection behind a mutex and run in `BEGIN IMMEDIATE`
//! transactions; reads (and dry runs) use a small pool of reader connections, which WAL lets
//! run beside a writer on a consistent snapshot.

mod results;
mod rows;
mod schema;
mod tokens;
mod upkeep;
mod usage;
mod versions;
mod windows;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use monitor_spec::api::VersionInfo;
use monitor_spec::maintenance::MaintenanceWindow;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::diff;
use crate::monitor_set::MonitorSet;
use crate::store::{
    AgentBinding, AgentClaim, DeployInput, DeployOutcome, InsertOutcome, LatestResult, Maintenance,
    NewResult, RecentResult, ResultQuery, Retention, Role, Rollup, RollupQuery, SeriesUptime,
    Store, StoreError, StoredResult, StoredVersion, TableUsage, TokenInfo, TokenOwner,
};
use crate::token::TokenHash;
use rows::{ensure_project, now, to_i64};

/// How long a connection waits for another process's lock before answering busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Reader connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// The SQLite [`Store`].
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Maintenance steps that changed rollups, counted: part of the key of `uptimes`.
    rollup_changes: AtomicU64,
    /// The rolled-up part of each project's uptimes, with what it depends on, so that a
    /// status reads only the series and the hours not rolled up yet.
    uptimes: Mutex<HashMap<String, (upkeep::UptimeKey, Arc<upkeep::Counts>)>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, readable by its owner only) the database at `path` and
    /// applies pending migrations. Specs may hold inline keys: the database file and its
    /// `-wal` and `-shm` files are made mode 0600 on Unix.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        private_file(&path, true)?;
        let mut writer = connect(&path)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "could not enable WAL mode (journal_mode is {mode})"
            )));
        }
        schema::migrate(&mut writer)?;
        upkeep::on_open(&writer)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            private_file(Path::new(&side), false)?;
        }
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            rollup_changes: AtomicU64::new(0),
            uptimes: Mutex::new(HashMap::new()),
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

    /// Test hook: lets the database grow by at most `pages` pages from its size now, so
    /// that tests can fill it (SQLite then answers `SQLITE_FULL`, as on a full disk).
    pub fn limit_growth(&self, pages: u64) -> Result<(), StoreError> {
        let conn = self.writer();
        let count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let max = count.saturating_add(i64::try_from(pages).unwrap_or(i64::MAX));
        conn.query_row(&format!("PRAGMA max_page_count = {max}"), [], |_| Ok(()))?;
        Ok(())
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

/// Takes group and other permissions away from `path` (a file of an older build), or
/// creates it with mode 0600 if it is missing and `create`. Elsewhere than on Unix,
/// nothing. SQLite gives the `-wal` and `-shm` files it creates the database's mode.
fn private_file(path: &Path, create: bool) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let io = |e: std::io::Error| {
            StoreError::Corrupt(format!("cannot make {} private: {e}", path.display()))
        };
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(io)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if create {
                    match std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)
                    {
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(io(e)),
                    }
                }
            }
            Err(e) => return Err(io(e)),
        }
    }
    #[cfg(not(unix))]
    let _ = (path, create);
    Ok(())
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
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
        let role = tokens::role_of(&project, &role)?;
        Ok(Some(TokenOwner { project, role }))
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.with_reader(tokens::list)
    }

    fn revoke_token(&self, id: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.write(|tx| {
            let revoked = tokens::revoke(tx, id)?;
            let commit = revoked.is_some();
            Ok((revoked, commit))
        })
    }

    fn touch_token(&self, hash: &TokenHash, at: &str) -> Result<(), StoreError> {
        self.write(|tx| Ok((tokens::touch(tx, hash, at)?, true)))
    }

    fn bind_agent(&self, claim: &AgentClaim<'_>) -> Result<AgentBinding, StoreError> {
        self.write(|tx| Ok((tokens::bind(tx, claim)?, true)))
    }

    // One process owns a SQLite file: the live agents stay in its memory.

    fn shared(&self) -> bool {
        false
    }

    fn renew_leases(
        &self,
        _project: &str,
        _leases: &[crate::store::AgentLease],
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn leases(
        &self,
        _project: &str,
        _seen_since_us: i64,
    ) -> Result<Vec<crate::store::AgentLease>, StoreError> {
        Ok(Vec::new())
    }

    fn notify(&self, _project: &str) -> Result<(), StoreError> {
        Ok(())
    }

    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
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
                let current = versions::load_set(tx, project)?;
                let plan = diff::plan(&current, &input.monitors, input.prune);
                Ok(DeployOutcome {
                    applied: false,
                    version: versions::current_version(tx, project)?,
                    diff: plan.diff,
                })
            });
        }
        self.write(|tx| {
            versions::deploy_in(tx, project, &input.monitors, input.prune, &input.git, None)
        })
    }

    fn monitors(&self, project: &str) -> Result<MonitorSet, StoreError> {
        self.with_reader(|tx| versions::load_set(tx, project))
    }

    fn current_version(&self, project: &str) -> Result<Option<u64>, StoreError> {
        self.with_reader(|tx| versions::current_version(tx, project))
    }

    fn current_set(&self, project: &str) -> Result<(Option<u64>, MonitorSet), StoreError> {
        self.with_reader(|tx| {
            Ok((
                versions::current_version(tx, project)?,
                versions::load_set(tx, project)?,
            ))
        })
    }

    fn versions(&self, project: &str) -> Result<Vec<VersionInfo>, StoreError> {
        self.with_reader(|tx| versions::list(tx, project))
    }

    fn version(&self, project: &str, number: u64) -> Result<Option<StoredVersion>, StoreError> {
        let Some(n) = to_i64(number) else {
            return Ok(None);
        };
        self.with_reader(|tx| versions::read(tx, project, n))
    }

    fn rollback(&self, project: &str, number: u64) -> Result<DeployOutcome, StoreError> {
        self.write(|tx| versions::rollback(tx, project, number))
    }

    fn destroy(&self, project: &str) -> Result<u64, StoreError> {
        self.write(|tx| {
            let deleted = tx.execute("DELETE FROM monitors WHERE project = ?1", [project])?;
            tx.execute(
                "UPDATE projects SET current_version = NULL, maintenance = NULL WHERE name = ?1",
                [project],
            )?;
            Ok((deleted as u64, true))
        })
    }

    fn insert_results(
        &self,
        project: &str,
        batch: &[NewResult],
    ) -> Result<InsertOutcome, StoreError> {
        self.write(|tx| Ok((results::insert(tx, project, batch)?, true)))
    }

    fn latest_results(&self, project: &str) -> Result<Vec<LatestResult>, StoreError> {
        self.with_reader(|tx| results::latest(tx, project, false))
    }

    fn latest_results_full(&self, project: &str) -> Result<Vec<LatestResult>, StoreError> {
        self.with_reader(|tx| results::latest(tx, project, true))
    }

    fn recent_results(
        &self,
        project: &str,
        per_series: u32,
    ) -> Result<Vec<RecentResult>, StoreError> {
        self.with_reader(|tx| results::recent(tx, project, per_series))
    }

    fn results(&self, project: &str, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError> {
        self.with_reader(|tx| results::history(tx, project, query))
    }

    fn rollups(&self, project: &str, query: &RollupQuery) -> Result<Vec<Rollup>, StoreError> {
        self.with_reader(|tx| results::rollups(tx, project, query))
    }

    fn uptime(&self, project: &str, now_us: i64) -> Result<Vec<SeriesUptime>, StoreError> {
        self.with_reader(|tx| {
            let generation = self.rollup_changes.load(Ordering::SeqCst);
            let key = upkeep::uptime_key(tx, now_us, generation)?;
            let cached = self
                .uptimes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(project)
                .filter(|(k, _)| *k == key)
                .map(|(_, counts)| Arc::clone(counts));
            let rolled = match cached {
                Some(counts) => counts,
                None => {
                    let counts = Arc::new(upkeep::rolled_uptime(tx, project, now_us)?);
                    self.uptimes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(project.to_owned(), (key, Arc::clone(&counts)));
                    counts
                }
            };
            upkeep::uptime(tx, project, now_us, &rolled)
        })
    }

    fn maintain(&self, now_us: i64, retention: &Retention) -> Result<Maintenance, StoreError> {
        let done = self.write(|tx| Ok((upkeep::maintain(tx, now_us, retention)?, true)))?;
        if done.hours_rolled + done.days_rolled + done.rollups_pruned + done.raw_pruned > 0 {
            self.rollup_changes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(done)
    }

    fn usage(&self) -> Result<Vec<TableUsage>, StoreError> {
        self.with_reader(usage::tables)
    }

    fn open_window(
        &self,
        project: &str,
        window: &MaintenanceWindow,
        now_us: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let opened = windows::open(tx, project, window, now_us, max_open)?;
            Ok((opened, opened))
        })
    }

    fn ad_hoc_windows(
        &self,
        project: &str,
        after_us: i64,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        self.with_reader(|tx| windows::list(tx, project, after_us))
    }

    fn end_window(
        &self,
        project: &str,
        id: &str,
        now_us: i64,
    ) -> Result<Option<MaintenanceWindow>, StoreError> {
        self.write(|tx| Ok((windows::end(tx, project, id, now_us)?, true)))
    }
}

#[cfg(test)]
mod tests;
