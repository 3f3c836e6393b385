//! The HTTP API of `control-plane/API.md`: the routes, with request logging and JSON errors
//! for unknown routes and methods. Each kind of route lives in a module of its own:
//! [`deploys`], [`agent_routes`], [`views`]; they share [`auth`], [`body`], [`query`],
//! [`error`] and [`state`].

mod agent_routes;
mod auth;
mod body;
mod deploys;
mod error;
mod identity;
mod login;
mod maintenance_routes;
mod monitor_page;
mod pages;
mod query;
mod retry_routes;
mod state;
mod trigger_routes;
mod viewer;
mod views;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post};

pub use agent_routes::MAX_WAIT_SECONDS;
pub use error::ApiError;
pub use state::{
    DEFAULT_AGENT_ID_TTL, DEFAULT_AGENT_TIMEOUT, DEFAULT_DAILY_RETENTION, DEFAULT_HOURLY_RETENTION,
    DEFAULT_MAX_AGENTS_PER_TOKEN, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CLOCK_SKEW,
    DEFAULT_RETENTION, Options,
};
pub use views::MAX_HISTORY_POINTS;

use crate::agents::Registry;
use crate::store::Store;
use state::AppState;

/// The API's routes over `store`.
pub fn router_with(store: Arc<dyn Store>, options: Options) -> Router {
    let limit = options.max_body_bytes;
    let agents = Arc::new(Registry::for_store(options.agent_timeout, &store));
    let state = AppState {
        store,
        locks: Arc::default(),
        agents,
        retries: Arc::default(),
        triggers: Arc::default(),
        deployed: Arc::default(),
        identities: Arc::default(),
        snapshots: Arc::default(),
        overviews: Arc::default(),
        options,
    };
    Router::new()
        .route("/", get(pages::overview))
        .route("/monitors/{id}", get(monitor_page::monitor))
        .route("/certificates", get(pages::certificates))
        .route("/badge/{project}/{monitor}/{kind}", get(pages::badge))
        .route(
            "/login",
            get(login::form)
                .post(login::login)
                .layer(DefaultBodyLimit::max(login::MAX_FORM_BYTES)),
        )
        .route("/logout", post(login::logout))
        .route("/healthz", get(healthz))
        .route("/metrics", get(views::metrics))
        .route("/v1/agent/assignments", get(agent_routes::assignments))
        .route("/v1/agent/results", post(agent_routes::results))
        .route(
            "/v1/agent/retries",
            get(retry_routes::take).post(retry_routes::hand),
        )
        .route("/v1/projects/{project}/deploy", post(deploys::deploy))
        .route("/v1/projects/{project}/monitors", get(deploys::monitors))
        .route(
            "/v1/projects/{project}/monitors/{id}/results",
            get(views::history),
        )
        .route(
            "/v1/projects/{project}/monitors/{id}/history",
            get(views::series),
        )
        .route("/v1/projects/{project}/status", get(views::status))
        .route(
            "/v1/projects/{project}/trigger",
            post(trigger_routes::trigger),
        )
        .route(
            "/v1/projects/{project}/triggers/{trigger}",
            get(trigger_routes::status),
        )
        .route(
            "/v1/projects/{project}/maintenance",
            get(maintenance_routes::list).post(maintenance_routes::open),
        )
        .route(
            "/v1/projects/{project}/maintenance/{id}",
            delete(maintenance_routes::end),
        )
        .route("/v1/projects/{project}/versions", get(deploys::versions))
        .route("/v1/projects/{project}/versions/{n}", get(deploys::version))
        .route(
            "/v1/projects/{project}/rollback/{n}",
            post(deploys::rollback),
        )
        .route("/v1/projects/{project}", delete(deploys::destroy))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = start.elapsed().as_millis() as u64,
        "request"
    );
    response
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
