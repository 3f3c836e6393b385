//! The control plane deploys land in: versioned, previewable, atomic deploys of monitors.
//!
//! `cargo xtask deploy` sends a project's bundle (every monitor, as `export` writes it) to
//! `POST /v1/projects/{project}/deploy`. The control plane validates it with `monitor-spec`,
//! diffs it against the stored set per monitor id (created, updated with the changed field
//! paths, deleted, kept, unchanged), and applies it in one database transaction as a new
//! version; the same bundle again is a no-op. Versions can be listed, read and rolled back
//! to; a project can be destroyed. `control-plane/API.md` is the contract.
//!
//! Agents (`control-plane` tokens of role `agent`) long-poll their assignments, the
//! monitors they run and when, and post their results; the control plane keeps them (raw
//! results, then hourly and daily rollups) for their retentions and serves each project's
//! status with uptimes, a monitor's history, Prometheus metrics, the pages and badges.
//!
//! - [`store`]: the [`Store`] trait every backend implements, and the types crossing it;
//! - [`sqlite`]: [`SqliteStore`], the embedded backend (WAL, `synchronous = FULL`);
//! - [`postgres`]: [`PgStore`], the backend several replicas share;
//! - [`database`]: [`open_store`], the backend a database URL names;
//! - [`monitor_set`]: a project's monitors in canonical JSON;
//! - [`diff`]: the diff and the resulting set;
//! - [`api`]: routes, authentication, body limits and JSON errors;
//! - [`agents`]: the live agents and the assignment of monitors to them;
//! - [`deployed`]: the parsed current monitors, cached per version;
//! - [`status`]: results in (checks, rows) and out (status with uptime, results);
//! - [`results`]: the backend-independent logic of stored results (facts, rollups, uptime);
//! - [`metrics`]: the Prometheus text;
//! - [`pages`]: the HTML pages (overview, monitor, certificates, login) and SVG badges;
//! - [`server`]: the HTTP server: connection limit, timeouts, bodies rendered as read;
//! - [`tls`]: serving TLS from PEM files, reloaded on SIGHUP;
//! - [`duration`]: durations as flags write them;
//! - [`token`]: token generation and hashing;
//! - [`hash`]: SHA-256 hex and canonical JSON.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use control_plane::{Options, Role, SqliteStore, Store, serve, token};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteStore::open("control-plane.db")?);
//! let secret = token::generate()?;
//! store.create_token("shop", &token::TokenHash::of(&secret), Role::Deploy)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, store, Options::default()).await?;
//! # Ok(())
//! # }
//! ```

pub mod agents;
pub mod api;
pub mod database;
pub mod deployed;
pub mod diff;
pub mod duration;
pub mod hash;
pub mod maintenance;
pub mod metrics;
pub mod monitor_set;
pub mod pages;
pub mod postgres;
pub mod results;
pub mod server;
pub mod sqlite;
pub mod status;
pub mod store;
pub mod tls;
pub mod token;

use std::sync::Arc;
use std::time::Duration;

pub use api::{
    ApiError, DEFAULT_AGENT_TIMEOUT, DEFAULT_DAILY_RETENTION, DEFAULT_HOURLY_RETENTION,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_RETENTION, Options,
};
pub use database::{open_store, open_store_with_password};
pub use monitor_set::MonitorSet;
pub use monitor_spec::api::{DeployRequest, DeployResponse, Diff, Git, Updated, VersionInfo};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use store::{Role, Store, StoreError, TokenOwner};

/// How often the results are maintained: closed hours and days rolled up, and what is past
/// the retentions pruned.
const MAINTAIN_EVERY: Duration = Duration::from_secs(30);
/// The most steps of maintenance before the first request is served (a database with a
/// backlog, such as one just migrated, finishes in the background).
const STEPS_BEFORE_SERVING: u64 = 2_000;

/// The API's routes over `store`, with default [`Options`].
pub fn router(store: Arc<dyn Store>) -> axum::Router {
    api::router_with(store, Options::default())
}

/// Serves the API on `listener` within `options`' connection limit and timeouts (see
/// [`server`]) until Ctrl-C or SIGTERM, then finishes the requests in flight. Maintains
/// the results ([`Store::maintain`]: rollups, and pruning past `options.retention`) before
/// the first request and every 30 seconds after, one bounded step at a time.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    options: Options,
) -> std::io::Result<()> {
    serve_with(listener, store, options, server::Plain).await
}

/// [`serve`], each connection first going through `handshake` (the [`tls::Tls`] of
/// `--tls-cert`).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    options: Options,
    handshake: impl server::Handshake,
) -> std::io::Result<()> {
    let retention = options.retention;
    let unfinished = !maintain(Arc::clone(&store), retention, STEPS_BEFORE_SERVING).await;
    let pruner = tokio::spawn({
        let store = Arc::clone(&store);
        async move {
            let mut every = tokio::time::interval(MAINTAIN_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            if !unfinished {
                every.tick().await;
            }
            loop {
                every.tick().await;
                maintain(Arc::clone(&store), retention, u64::MAX).await;
            }
        }
    });
    let limits = options.server_limits();
    server::serve_with(
        listener,
        api::router_with(store, options),
        limits,
        handshake,
        shutdown_signal(),
    )
    .await;
    pruner.abort();
    Ok(())
}

/// Calls [`Store::maintain`] until it has nothing left to do or `max_steps` steps ran,
/// each step on a blocking thread, so that no step holds the database for long; whether it
/// finished (or failed: it is tried again at the next round).
async fn maintain(store: Arc<dyn Store>, retention: store::Retention, max_steps: u64) -> bool {
    let mut sum = store::Maintenance::default();
    let mut finished = true;
    for _ in 0..max_steps {
        finished = false;
        let step = {
            let store = Arc::clone(&store);
            tokio::task::spawn_blocking(move || {
                let now_us = status::unix_us(time::OffsetDateTime::now_utc());
                store.maintain(now_us, &retention)
            })
            .await
        };
        match step {
            Ok(Ok(step)) => {
                sum.hours_rolled += step.hours_rolled;
                sum.days_rolled += step.days_rolled;
                sum.raw_pruned += step.raw_pruned;
                sum.rollups_pruned += step.rollups_pruned;
                if !step.more {
                    finished = true;
                    break;
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "maintaining results failed");
                finished = true;
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, "maintaining results failed");
                finished = true;
                break;
            }
        }
    }
    if sum.hours_rolled > 0 || sum.days_rolled > 0 {
        tracing::info!(
            hours = sum.hours_rolled,
            days = sum.days_rolled,
            "rolled up results"
        );
    }
    if sum.raw_pruned > 0 || sum.rollups_pruned > 0 {
        tracing::info!(
            results = sum.raw_pruned,
            rollups = sum.rollups_pruned,
            "pruned results past the retention"
        );
    }
    finished
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down after the requests in flight");
}
