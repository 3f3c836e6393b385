//! The control plane deploys land in: versioned, previewable, atomic deploys of monitors.
//!
//! `cargo xtask deploy` sends a project's bundle (every monitor, as `export` writes it) to
//! `POST /v1/projects/{project}/deploy`. The control plane validates it with `monitor-core`,
//! diffs it against the stored set per monitor id (created, updated with the changed field
//! paths, deleted, kept, unchanged), and applies it in one database transaction as a new
//! version; the same bundle again is a no-op. Versions can be listed, read and rolled back
//! to; a project can be destroyed. `control-plane/API.md` is the contract.
//!
//! - [`store`]: the [`Store`] trait every backend implements, and the types crossing it;
//! - [`sqlite`]: [`SqliteStore`], the embedded backend (WAL, `synchronous = FULL`);
//! - [`diff`]: the diff and the resulting set;
//! - [`api`]: routes, authentication, body limits and JSON errors;
//! - [`token`]: token generation and hashing.
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use control_plane::{Options, SqliteStore, Store, serve, token};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(SqliteStore::open("control-plane.db")?);
//! let secret = token::generate()?;
//! store.create_token("shop", &token::TokenHash::of(&secret))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, store, Options::default()).await?;
//! # Ok(())
//! # }
//! ```

pub mod api;
pub mod diff;
pub mod sqlite;
pub mod store;
pub mod token;

use std::sync::Arc;

pub use api::{ApiError, DEFAULT_MAX_BODY_BYTES, DeployRequest, DeployResponse, Options};
pub use diff::{Diff, Updated};
pub use sqlite::SqliteStore;
pub use store::{Git, MonitorSet, Store, StoreError, VersionInfo};

/// The API's routes over `store`, with default [`Options`].
pub fn router(store: Arc<dyn Store>) -> axum::Router {
    api::router_with(store, Options::default())
}

/// Serves the API on `listener` until Ctrl-C or SIGTERM, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Arc<dyn Store>,
    options: Options,
) -> std::io::Result<()> {
    axum::serve(listener, api::router_with(store, options))
        .with_graceful_shutdown(shutdown_signal())
        .await
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
