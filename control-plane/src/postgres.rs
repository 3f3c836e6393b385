//! [`PgStore`]: the [`Store`] on a PostgreSQL server (15 or newer), which several replicas
//! of the control plane can share.
//!
//! - **Connections**: a pool of at most [`POOL_SIZE`] connections (tokio-postgres with
//!   deadpool), driven by a small runtime of its own (one worker thread). The store's
//!   methods are blocking, like every [`Store`]'s: each runs its queries with
//!   `block_on` on that runtime, from a plain thread or a `spawn_blocking` one.
//! - **URL**: libpq's form, `postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=...`
//!   (`postgresql://` too), with `sslrootcert=FILE`; the password may instead be given
//!   apart ([`PgStore::open_with_password`]). Errors and logs show the URL with its
//!   password masked.
//! - **TLS** (`sslmode`, as libpq, with rustls): `disable` plain TCP; `prefer` (the
//!   default) TLS when the server offers it, the certificate unchecked; `require` TLS, the
//!   certificate unchecked (checked as `verify-ca` when `sslrootcert` is given);
//!   `verify-ca` TLS with a chain to a trusted root; `verify-full` that and a certificate
//!   valid for the host. Trusted roots are `sslrootcert`'s PEM file, else the system's.
//!   Only `verify-full` protects against an active attacker.
//! - **Schema**: numbered migrations (see `schema`), applied at open under an advisory
//!   lock, so that replicas starting at once apply each once.
//! - **Transactions**: every method is one transaction; reads run `REPEATABLE READ READ
//!   ONLY` (one snapshot). Deploys, rollbacks and destroys first take the project's
//!   transaction-scoped advisory lock with `pg_try_advisory_xact_lock`: when another
//!   replica holds it they fail at once with [`StoreError::Conflict`] (the API's 409).
//!   Serialization failures and deadlocks are retried [`RETRIES`] times, then answered
//!   [`StoreError::Busy`].

mod connect;
pub(crate) mod replica;
pub(crate) mod results;
mod schema;
mod tokens;
mod upkeep;
mod usage;
mod versions;
mod windows;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Transaction};
use monitor_spec::api::VersionInfo;
use monitor_spec::maintenance::MaintenanceWindow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::IsolationLevel;
use tokio_postgres::error::SqlState;

pub use connect::{TlsMode, redact};

use crate::diff;
use crate::monitor_set::MonitorSet;
use crate::store::{
    AgentBinding, AgentClaim, DeployInput, DeployOutcome, InsertOutcome, LatestResult, Maintenance,
    NewResult, RecentResult, ResultQuery, Retention, Role, Rollup, RollupQuery, SeriesUptime,
    Store, StoreError, StoredResult, StoredVersion, TableUsage, TokenInfo, TokenOwner,
};
use crate::token::TokenHash;

/// The most connections one store keeps open to the server (each replica has its own
/// pool: size `max_connections` on the server for the replicas times this, plus spare).
pub const POOL_SIZE: usize = 16;
/// How long a method waits for a free connection of the pool before failing.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How many times a transaction that failed to serialize (or deadlocked) is run again.
pub const RETRIES: u32 = 3;

/// The PostgreSQL [`Store`].
pub struct PgStore {
    /// Taken (and shut down in the background) on drop: a runtime cannot be dropped from
    /// async code, where the last `Arc` of a store may go.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    shown: String,
    hold_lock: Mutex<Duration>,
    /// The replicas' change notices (`LISTEN/NOTIFY`).
    notices: replica::Notices,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(code)
                if *code == SqlState::T_R_SERIALIZATION_FAILURE
                    || *code == SqlState::T_R_DEADLOCK_DETECTED
                    || *code == SqlState::LOCK_NOT_AVAILABLE =>
            {
                StoreError::Busy
            }
            _ => StoreError::Postgres(e),
        }
    }
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) => StoreError::from(e),
            PoolError::Timeout(kind) => {
                StoreError::Pool(format!("timed out waiting for a connection ({kind:?})"))
            }
            other => StoreError::Pool(other.to_string()),
        }
    }
}

/// The current time, RFC 3339, as rows record it.
pub(crate) fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// A stored integer that must not be negative.
pub(crate) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative number {v}")))
}

/// A number as PostgreSQL stores it, `None` above `i64::MAX`.
pub(crate) fn to_i64(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

/// The 64-bit advisory lock key of `kind` (such as `deploy`) for a project: the first
/// eight bytes of a SHA-256, so that two projects practically never share one.
pub(crate) fn lock_key(kind: &str, project: &str) -> i64 {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("control-plane {kind}\0{project}").as_bytes(),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(first)
}

/// Creates the project if it does not exist.
pub(crate) async fn ensure_project(tx: &Transaction<'_>, project: &str) -> Result<(), StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO projects (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&project, &now()]).await?;
    Ok(())
}

impl PgStore {
    /// Connects to the database of `url` (see the [module](self) for its form), checks
    /// that it answers, and applies pending migrations.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        PgStore::open_with_password(url, None)
    }

    /// Like [`PgStore::open`], with `password` used over the URL's (read from a file, so
    /// that it is not on a command line).
    pub fn open_with_password(url: &str, password: Option<&str>) -> Result<PgStore, StoreError> {
        let target = connect::parse(url, password)?;
        let shown = redact(url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Pool(format!("cannot start the postgres runtime: {e}")))?;
        let notices =
            replica::Notices::new(target.config.clone(), target.tls.clone(), shown.clone());
        let manager = Manager::from_config(
            target.config,
            target.tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let store = PgStore {
            runtime: Some(runtime),
            pool,
            shown,
            hold_lock: Mutex::new(Duration::ZERO),
            notices,
        };
        store.block_on(async {
            let mut client = store.client().await?;
            schema::migrate(&mut client).await
        })?;
        tracing::debug!(url = %store.shown, mode = ?target.mode, "opened the postgres store");
        Ok(store)
    }

    /// The URL connected to, its password masked.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The highest migration applied to the database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.block_on(async { schema::version(&self.client().await?).await })
    }

    /// Test hook: deploys, rollbacks and destroys hold the project's lock this long inside
    /// their transaction, once they have it, so that tests can see a concurrent one
    /// (another replica's too) refused with [`StoreError::Conflict`].
    pub fn hold_lock(&self, hold: Duration) {
        *self.hold_lock.lock().unwrap_or_else(|e| e.into_inner()) = hold;
    }

    /// A connection of the pool.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Runs `f` to completion on the store's runtime, blocking this thread. Call it from a
    /// plain thread or a `spawn_blocking` one (from a multi-threaded runtime's worker it
    /// moves the worker's tasks away first; from a current-thread runtime it panics).
    pub(crate) fn block_on<F: Future>(&self, f: F) -> F::Output {
        let Some(runtime) = &self.runtime else {
            unreachable!("the runtime is taken only on drop")
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| runtime.block_on(f))
            }
            _ => runtime.block_on(f),
        }
    }

    /// Runs `f` in a read-write transaction; commits when it returns `Ok((value, true))`,
    /// rolls back otherwise. Runs it again (up to [`RETRIES`] times) when it is busy.
    fn write<T>(
        &self,
        mut f: impl AsyncFnMut(&Transaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        self.block_on(async {
            let mut attempt = 0;
            loop {
                let result = async {
                    let mut client = self.client().await?;
                    let tx = client.transaction().await?;
                    let (out, commit) = f(&tx).await?;
                    if commit {
                        tx.commit().await?;
                    } else {
                        tx.rollback().await?;
                    }
                    Ok(out)
                }
                .await;
                match result {
                    Err(StoreError::Busy) if attempt < RETRIES => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(10 << attempt)).await;
                    }
                    other => return other,
                }
            }
        })
    }

    /// Runs `f` in a read-only transaction on one snapshot.
    fn read<T>(
        &self,
        f: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.block_on(async {
            let mut client = self.client().await?;
            let tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let out = f(&tx).await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Runs `f` in a write transaction that first takes the project's deploy lock;
    /// [`StoreError::Conflict`] when another transaction (of any replica) holds it.
    fn exclusive<T>(
        &self,
        project: &str,
        mut f: impl AsyncFnMut(&Transaction<'_>) -> Result<(T, bool), StoreError>,
    ) -> Result<T, StoreError> {
        let hold = *self.hold_lock.lock().unwrap_or_else(|e| e.into_inner());
        let key = lock_key("deploy", project);
        self.write(async |tx| {
            let taken: bool = tx
                .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&key])
                .await?
                .get(0);
            if !taken {
                return Err(StoreError::Conflict(project.to_owned()));
            }
            if !hold.is_zero() {
                tokio::time::sleep(hold).await;
            }
            f(tx).await
        })
    }
}

impl Store for PgStore {
    fn create_token(&self, project: &str, hash: &TokenHash, role: Role) -> Result<(), StoreError> {
        self.write(async |tx| Ok((tokens::create(tx, project, hash, role).await?, true)))
    }

    fn token_owner(&self, hash: &TokenHash) -> Result<Option<TokenOwner>, StoreError> {
        self.block_on(async { tokens::owner(&*self.client().await?, hash).await })
    }

    fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.read(async |tx| tokens::list(tx).await)
    }

    fn revoke_token(&self, id: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.write(async |tx| {
            let revoked = tokens::revoke(tx, id).await?;
            let commit = revoked.is_some();
            Ok((revoked, commit))
        })
    }

    fn touch_token(&self, hash: &TokenHash, at: &str) -> Result<(), StoreError> {
        self.write(async |tx| Ok((tokens::touch(tx, hash, at).await?, true)))
    }

    // Replicas: leases and notices, in `replica`.

    fn shared(&self) -> bool {
        true
    }

    fn renew_leases(
        &self,
        project: &str,
        leases: &[crate::store::AgentLease],
    ) -> Result<(), StoreError> {
        self.block_on(async { replica::renew(&self.client().await?, project, leases).await })
    }

    fn leases(
        &self,
        project: &str,
        seen_since_us: i64,
    ) -> Result<Vec<crate::store::AgentLease>, StoreError> {
        self.block_on(async {
            replica::leases(&self.client().await?, project, seen_since_us).await
        })
    }

    fn notify(&self, project: &str) -> Result<(), StoreError> {
        self.block_on(async { replica::notify(&self.client().await?, project).await })
    }

    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        let runtime = self.runtime.as_ref()?;
        Some(self.notices.subscribe(runtime.handle()))
    }

    fn bind_agent(&self, claim: &AgentClaim<'_>) -> Result<AgentBinding, StoreError> {
        self.write(async |tx| Ok((tokens::bind(tx, claim).await?, true)))
    }

    fn projects(&self) -> Result<Vec<String>, StoreError> {
        self.read(async |tx| {
            let rows = tx
                .query("SELECT name FROM projects ORDER BY name", &[])
                .await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn deploy(&self, project: &str, input: DeployInput) -> Result<DeployOutcome, StoreError> {
        if input.dry_run {
            return self.read(async |tx| {
                let current = versions::load_set(tx, project).await?;
                let plan = diff::plan(&current, &input.monitors, input.prune);
                Ok(DeployOutcome {
                    applied: false,
                    version: versions::current_version(tx, project).await?,
                    diff: plan.diff,
                })
            });
        }
        self.exclusive(project, async |tx| {
            versions::deploy_in(tx, project, &input.monitors, input.prune, &input.git, None).await
        })
    }

    fn monitors(&self, project: &str) -> Result<MonitorSet, StoreError> {
        self.read(async |tx| versions::load_set(tx, project).await)
    }

    fn current_version(&self, project: &str) -> Result<Option<u64>, StoreError> {
        self.read(async |tx| versions::current_version(tx, project).await)
    }

    fn current_set(&self, project: &str) -> Result<(Option<u64>, MonitorSet), StoreError> {
        self.read(async |tx| {
            Ok((
                versions::current_version(tx, project).await?,
                versions::load_set(tx, project).await?,
            ))
        })
    }

    fn versions(&self, project: &str) -> Result<Vec<VersionInfo>, StoreError> {
        self.read(async |tx| versions::list(tx, project).await)
    }

    fn version(&self, project: &str, number: u64) -> Result<Option<StoredVersion>, StoreError> {
        let Some(n) = to_i64(number) else {
            return Ok(None);
        };
        self.read(async |tx| versions::read(tx, project, n).await)
    }

    fn rollback(&self, project: &str, number: u64) -> Result<DeployOutcome, StoreError> {
        self.exclusive(project, async |tx| {
            versions::rollback(tx, project, number).await
        })
    }

    fn destroy(&self, project: &str) -> Result<u64, StoreError> {
        self.exclusive(project, async |tx| {
            Ok((versions::destroy(tx, project).await?, true))
        })
    }

    fn insert_results(
        &self,
        project: &str,
        batch: &[NewResult],
    ) -> Result<InsertOutcome, StoreError> {
        self.write(async |tx| Ok((results::insert(tx, project, batch).await?, true)))
    }

    fn latest_results(&self, project: &str) -> Result<Vec<LatestResult>, StoreError> {
        self.read(async |tx| results::latest(tx, project, false).await)
    }

    fn latest_results_full(&self, project: &str) -> Result<Vec<LatestResult>, StoreError> {
        self.read(async |tx| results::latest(tx, project, true).await)
    }

    fn recent_results(
        &self,
        project: &str,
        per_series: u32,
    ) -> Result<Vec<RecentResult>, StoreError> {
        self.read(async |tx| results::recent(tx, project, per_series).await)
    }

    fn results(&self, project: &str, query: &ResultQuery) -> Result<Vec<StoredResult>, StoreError> {
        self.read(async |tx| results::history(tx, project, query).await)
    }

    fn rollups(&self, project: &str, query: &RollupQuery) -> Result<Vec<Rollup>, StoreError> {
        self.read(async |tx| results::rollups(tx, project, query).await)
    }

    fn uptime(&self, project: &str, now_us: i64) -> Result<Vec<SeriesUptime>, StoreError> {
        self.read(async |tx| upkeep::uptime(tx, project, now_us).await)
    }

    fn maintain(&self, now_us: i64, retention: &Retention) -> Result<Maintenance, StoreError> {
        self.write(async |tx| Ok((upkeep::maintain(tx, now_us, retention).await?, true)))
    }

    fn usage(&self) -> Result<Vec<TableUsage>, StoreError> {
        self.read(async |tx| usage::tables(tx).await)
    }

    fn open_window(
        &self,
        project: &str,
        window: &MaintenanceWindow,
        now_us: i64,
        max_open: usize,
    ) -> Result<bool, StoreError> {
        self.write(async |tx| {
            let opened = windows::open(tx, project, window, now_us, max_open).await?;
            Ok((opened, opened))
        })
    }

    fn ad_hoc_windows(
        &self,
        project: &str,
        after_us: i64,
    ) -> Result<Vec<MaintenanceWindow>, StoreError> {
        self.read(async |tx| windows::list(tx, project, after_us).await)
    }

    fn end_window(
        &self,
        project: &str,
        id: &str,
        now_us: i64,
    ) -> Result<Option<MaintenanceWindow>, StoreError> {
        self.write(async |tx| Ok((windows::end(tx, project, id, now_us).await?, true)))
    }
}
