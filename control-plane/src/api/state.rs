//! The state the routes share: settings, the store, the live agents, the parsed deployed
//! monitors and the per-project deploy locks; and running blocking work off the async
//! workers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::identity::Identities;
use crate::agents::Registry;
use crate::deployed::DeployedCache;
use crate::server;
use crate::store::{Retention, Store, StoreError};

/// The default limit on a request body, before and after gzip decoding: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How long raw results are kept by default: 48 hours.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(48 * 3600);
/// How long hourly rollups are kept by default: 90 days.
pub const DEFAULT_HOURLY_RETENTION: Duration = Duration::from_secs(90 * 86_400);
/// How long daily rollups are kept by default: 730 days.
pub const DEFAULT_DAILY_RETENTION: Duration = Duration::from_secs(730 * 86_400);
/// How long an agent may stay silent by default before it is gone: 15 s.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(15);
/// The most agent ids one token may hold by default: 8.
pub const DEFAULT_MAX_AGENTS_PER_TOKEN: u64 = 8;
/// How long an agent id may go unused before it is released, by default: 24 h.
pub const DEFAULT_AGENT_ID_TTL: Duration = Duration::from_secs(86_400);
/// How far in the future a result may start by default: 2 min.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(120);

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Options {
    /// The largest request body accepted, both as received and after decoding.
    pub max_body_bytes: usize,
    /// Test hook: how long a deploy, rollback or destroy holds its project's lock before it
    /// starts, so that tests can observe the 409 of a concurrent request deterministically.
    /// Zero (the default) in production.
    pub hold_lock: Duration,
    /// How long raw results, hourly and daily rollups are kept (by start time).
    pub retention: Retention,
    /// An agent not heard of for this long is gone and its monitors move.
    pub agent_timeout: Duration,
    // Agent identities, time and secrets.
    /// The most agent ids one token may hold (`--max-agents-per-token`).
    pub max_agents_per_token: u64,
    /// An agent id unused for this long is released (`--agent-id-ttl`).
    pub agent_id_ttl: Duration,
    /// Results starting further than this in the future are refused (`--max-clock-skew`).
    pub max_clock_skew: Duration,
    /// The prefix every environment variable a deployed monitor names must carry
    /// (`--secret-env-prefix`): the agents' policy, checked at deploy time.
    pub secret_env_prefix: String,
    // Serving: connections and their timeouts (see `crate::server::Limits`).
    /// Connections open at once; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// The time a request's head may take from its first byte.
    pub header_timeout: Duration,
    /// The time a connection may stay without a request in flight, or with a response
    /// its client does not read.
    pub idle_timeout: Duration,
    /// The time a request's body may take from its head.
    pub body_timeout: Duration,
    // Pages.
    /// Projects whose overview and badges anyone may see (`--public-status`); the rest
    /// need a token.
    pub public_status: Vec<String>,
    /// Whether the server is reached over TLS (`--tls-cert`): login cookies are then
    /// marked `Secure`.
    pub tls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            hold_lock: Duration::ZERO,
            retention: Retention {
                raw: DEFAULT_RETENTION,
                hourly: DEFAULT_HOURLY_RETENTION,
                daily: DEFAULT_DAILY_RETENTION,
            },
            agent_timeout: DEFAULT_AGENT_TIMEOUT,
            max_agents_per_token: DEFAULT_MAX_AGENTS_PER_TOKEN,
            agent_id_ttl: DEFAULT_AGENT_ID_TTL,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            secret_env_prefix: monitor_spec::secret::DEFAULT_SECRET_ENV_PREFIX.to_owned(),
            max_connections: server::DEFAULT_MAX_CONNECTIONS,
            header_timeout: server::DEFAULT_HEADER_TIMEOUT,
            idle_timeout: server::DEFAULT_IDLE_TIMEOUT,
            body_timeout: server::DEFAULT_BODY_TIMEOUT,
            public_status: Vec::new(),
            tls: false,
        }
    }
}

impl Options {
    /// The serving limits among the options.
    pub fn server_limits(&self) -> server::Limits {
        server::Limits {
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            body_timeout: self.body_timeout,
        }
    }
}

/// Projects with a deploy, rollback or destroy in progress.
#[derive(Debug, Default)]
pub(super) struct ProjectLocks(Mutex<HashSet<String>>);

/// Holds a project's lock until dropped.
struct ProjectGuard {
    locks: Arc<ProjectLocks>,
    project: String,
}

impl ProjectLocks {
    fn try_lock(self: &Arc<Self>, project: &str) -> Option<ProjectGuard> {
        let mut busy = self.0.lock().unwrap_or_else(|e| e.into_inner());
        busy.insert(project.to_owned()).then(|| ProjectGuard {
            locks: Arc::clone(self),
            project: project.to_owned(),
        })
    }
}

impl Drop for ProjectGuard {
    fn drop(&mut self) {
        let mut busy = self.locks.0.lock().unwrap_or_else(|e| e.into_inner());
        busy.remove(&self.project);
    }
}

/// What every route reads.
#[derive(Clone)]
pub(super) struct AppState {
    pub(super) store: Arc<dyn Store>,
    pub(super) locks: Arc<ProjectLocks>,
    pub(super) agents: Arc<Registry>,
    /// The checks handed to another location, waiting for its agents.
    pub(super) retries: Arc<crate::agents::retries::Retries>,
    /// The triggered runs and their results (in memory, per replica).
    pub(super) triggers: Arc<crate::agents::triggers::Triggers>,
    pub(super) deployed: Arc<DeployedCache>,
    pub(super) identities: Arc<Identities>,
    /// The status `/metrics` and the page are rendered from, shared by their readers.
    pub(super) snapshots: Arc<crate::status::Snapshots>,
    /// What the overviews are rendered from, shared by their readers.
    pub(super) overviews: Arc<crate::pages::overview::Overviews>,
    pub(super) options: Options,
}

/// Runs blocking work (SQLite, decoding, validation) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

/// Runs a write under the project's lock; 409 when another one holds it. Once it is done,
/// the project's long polls look at their assignments again.
pub(super) async fn exclusive<T: Send + 'static>(
    st: &AppState,
    project: &str,
    action: &'static str,
    f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let guard = st.locks.try_lock(project).ok_or_else(|| {
        ApiError::Conflict(format!(
            "another deploy, rollback or destroy of project `{project}` is running; retry when it is done"
        ))
    })?;
    let store = Arc::clone(&st.store);
    let agents = Arc::clone(&st.agents);
    let hold = st.options.hold_lock;
    let project = project.to_owned();
    blocking(move || {
        // The guard lives until the store is done, even if the client goes away.
        let _guard = guard;
        if !hold.is_zero() {
            std::thread::sleep(hold);
        }
        tracing::info!(%project, action = %action, "applying");
        let out = f(&*store)?;
        agents.notify(&project);
        Ok(out)
    })
    .await
}

/// A response with a JSON body already written.
pub(super) fn json_response(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}
