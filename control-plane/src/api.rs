//! The HTTP API of `control-plane/API.md`: routes, bearer authentication with token roles,
//! body decoding (gzip, size limits), bundle validation, the per-project deploy lock, the
//! agents' long-polled assignments and results, status, metrics and the status page, and
//! JSON errors.

use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use monitor_core::SCHEMA_VERSION;
use monitor_core::cli::bundle::{Bundle, BundleError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::agents::{self, Registry};
use crate::deployed::DeployedCache;
use crate::diff::Diff;
use crate::status::{self, ResultsRequest, ResultsResponse};
use crate::store::{
    self, DeployInput, DeployOutcome, Git, MonitorSet, ResultQuery, Role, Store, StoreError,
    TokenOwner,
};
use crate::token::{self, TokenHash};

/// The default limit on a request body, before and after gzip decoding: 64 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How long results are kept by default: 7 days.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 86_400);
/// How long an agent may stay silent by default before it is gone: 15 s.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest long poll of the assignments, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;
/// How often a long poll looks for agents gone silent.
const EXPIRY_CHECK: Duration = Duration::from_millis(250);
/// The default and largest number of results a history request returns.
const DEFAULT_HISTORY_LIMIT: u64 = 1000;
const MAX_HISTORY_LIMIT: u64 = 10_000;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Options {
    /// The largest request body accepted, both as received and after decoding.
    pub max_body_bytes: usize,
    /// Test hook: how long a deploy, rollback or destroy holds its project's lock before it
    /// starts, so that tests can observe the 409 of a concurrent request deterministically.
    /// Zero (the default) in production.
    pub hold_lock: Duration,
    /// Results older than this (by start time) are pruned.
    pub retention: Duration,
    /// An agent not heard of for this long is gone and its monitors move.
    pub agent_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            hold_lock: Duration::ZERO,
            retention: DEFAULT_RETENTION,
            agent_timeout: DEFAULT_AGENT_TIMEOUT,
        }
    }
}

/// The body of `POST /v1/projects/{project}/deploy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Every monitor the project should have.
    pub bundle: Bundle,
    /// Git metadata recorded with the version.
    #[serde(default)]
    pub git: Option<Git>,
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
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A lower-case message.
    pub error: String,
    /// Each problem with its field path (may be empty).
    pub problems: Vec<Problem>,
}

/// A request the API refuses or could not serve; each maps to one status code.
#[derive(Debug, Error)]
pub enum ApiError {
    /// 400: a malformed path, query or body.
    #[error("{0}")]
    BadRequest(String),
    /// 400: the body is not JSON of the request's shape.
    #[error("malformed {what}: {path}: {message} (line {line}, column {column})")]
    MalformedJson {
        /// What the body should have been, such as `deploy request`.
        what: &'static str,
        /// Where reading stopped, such as `bundle.monitors[1].target.port`.
        path: String,
        /// What is wrong there.
        message: String,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
    },
    /// 401: no token, or an unknown one.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: a token of another project.
    #[error("the token does not grant access to project `{0}`")]
    Forbidden(String),
    /// 403: an agent token on a route other than `/v1/agent/*`.
    #[error("an agent token reaches only the /v1/agent/* routes; use a deploy token")]
    AgentToken,
    /// 404: an unknown route or version.
    #[error("{0}")]
    NotFound(String),
    /// 405: a known route with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: another deploy, rollback or destroy of the project is running.
    #[error("{0}")]
    Conflict(String),
    /// 413: the body, as sent or decoded, is over the limit.
    #[error("request body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// 415: a content encoding other than gzip.
    #[error("unsupported content encoding `{0}`; send identity or gzip")]
    UnsupportedEncoding(String),
    /// 422: a bundle or results that fail validation.
    #[error("invalid {what}: {} problem{}", problems.len(), if problems.len() == 1 { "" } else { "s" })]
    Invalid {
        /// What failed, such as `bundle`.
        what: &'static str,
        /// Each problem with its path.
        problems: Vec<Problem>,
    },
    /// 500: a failure of the server.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The status code of the error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::MalformedJson { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::AgentToken => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body of the error.
    pub fn body(&self) -> ErrorBody {
        let problems = match self {
            ApiError::Invalid { problems, .. } => problems.clone(),
            ApiError::MalformedJson {
                path,
                message,
                line,
                column,
                ..
            } => vec![Problem {
                path: path.clone(),
                message: format!("{message} (line {line}, column {column})"),
            }],
            _ => Vec::new(),
        };
        ErrorBody {
            error: self.to_string(),
            problems,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Busy => ApiError::Conflict(
                "the database is busy with another deploy; retry when it is done".to_owned(),
            ),
            StoreError::UnknownVersion(n) => ApiError::NotFound(format!("unknown version {n}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Projects with a deploy, rollback or destroy in progress.
#[derive(Debug, Default)]
struct ProjectLocks(Mutex<HashSet<String>>);

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

#[derive(Clone)]
struct AppState {
    store: Arc<dyn Store>,
    locks: Arc<ProjectLocks>,
    agents: Arc<Registry>,
    deployed: Arc<DeployedCache>,
    options: Options,
}

/// The API's routes over `store`.
pub fn router_with(store: Arc<dyn Store>, options: Options) -> Router {
    let limit = options.max_body_bytes;
    let state = AppState {
        store,
        locks: Arc::default(),
        agents: Arc::new(Registry::new(options.agent_timeout)),
        deployed: Arc::default(),
        options,
    };
    Router::new()
        .route("/", get(page))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/agent/assignments", get(assignments))
        .route("/v1/agent/results", post(results))
        .route("/v1/projects/{project}/deploy", post(deploy))
        .route("/v1/projects/{project}/monitors", get(monitors))
        .route("/v1/projects/{project}/monitors/{id}/results", get(history))
        .route("/v1/projects/{project}/status", get(status))
        .route("/v1/projects/{project}/versions", get(versions))
        .route("/v1/projects/{project}/versions/{n}", get(version))
        .route("/v1/projects/{project}/rollback/{n}", post(rollback))
        .route("/v1/projects/{project}", delete(destroy))
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

/// Runs blocking work (SQLite, decoding, validation) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

fn project_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(project) = path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    Ok(project)
}

fn project_and_version(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, u64), ApiError> {
    let Path((project, n)) = path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    let n = n.parse::<u64>().map_err(|_| {
        ApiError::BadRequest(format!(
            "bad version number `{}` in the path; use a positive integer",
            n.escape_default()
        ))
    })?;
    Ok((project, n))
}

/// Checks the bearer token against the project and its role (deploy); before anything else
/// is read.
async fn authorize(st: &AppState, headers: &HeaderMap, project: &str) -> Result<(), ApiError> {
    let owner = token_owner(st, headers).await?;
    if owner.project != project {
        return Err(ApiError::Forbidden(project.to_owned()));
    }
    match owner.role {
        Role::Deploy => Ok(()),
        Role::Agent => Err(ApiError::AgentToken),
    }
}

/// Checks the bearer token of an agent route (either role); returns the token's project.
async fn authorize_agent(st: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(token_owner(st, headers).await?.project)
}

/// The owner of the bearer token; 401 without a known one.
async fn token_owner(st: &AppState, headers: &HeaderMap) -> Result<TokenOwner, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .ok_or(ApiError::Unauthorized("missing bearer token"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(token::bearer)
        .ok_or(ApiError::Unauthorized(
            "malformed authorization header; send `Authorization: Bearer TOKEN`",
        ))?;
    let hash = TokenHash::of(token);
    let store = Arc::clone(&st.store);
    blocking(move || Ok(store.token_owner(&hash)?))
        .await?
        .ok_or(ApiError::Unauthorized("unknown token"))
}

/// Runs a write under the project's lock; 409 when another one holds it. Once it is done,
/// the project's long polls look at their assignments again.
async fn exclusive<T: Send + 'static>(
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
        tracing::info!(%project, action, "applying");
        let out = f(&*store)?;
        agents.notify(&project);
        Ok(out)
    })
    .await
}

fn json_response(body: String) -> Response {
    ([(CONTENT_TYPE, "application/json")], body).into_response()
}

fn deploy_response(project: String, dry_run: bool, outcome: DeployOutcome) -> Response {
    axum::Json(DeployResponse {
        project,
        dry_run,
        applied: outcome.applied,
        version: outcome.version,
        diff: outcome.diff,
    })
    .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    prune: bool,
}

async fn deploy(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DeployQuery>, QueryRejection>,
    req: Request,
) -> Result<Response, ApiError> {
    let project = project_name(path)?;
    authorize(&st, req.headers(), &project).await?;
    let Query(query) = query.map_err(bad_query)?;
    let (body, gzip) = read_body(&st, req).await?;
    let limit = st.options.max_body_bytes;
    let (monitors, git) = blocking(move || prepare(&body, gzip, limit)).await?;
    let count = monitors.len();
    let input = DeployInput {
        monitors,
        prune: query.prune,
        dry_run: query.dry_run,
        git,
    };
    let outcome = if query.dry_run {
        let store = Arc::clone(&st.store);
        let name = project.clone();
        blocking(move || Ok(store.deploy(&name, input)?)).await?
    } else {
        let name = project.clone();
        exclusive(&st, &project, "deploy", move |store| {
            store.deploy(&name, input)
        })
        .await?
    };
    tracing::info!(
        %project,
        dry_run = query.dry_run,
        prune = query.prune,
        monitors = count,
        applied = outcome.applied,
        version = outcome.version,
        created = outcome.diff.created.len(),
        updated = outcome.diff.updated.len(),
        deleted = outcome.diff.deleted.len(),
        "deploy"
    );
    Ok(deploy_response(project, query.dry_run, outcome))
}

/// 400 for a query that does not deserialize, saying why.
fn bad_query(e: QueryRejection) -> ApiError {
    let text = e.body_text();
    let why = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    ApiError::BadRequest(format!("bad query: {why}"))
}

/// The body as sent (limited) and whether it is gzip; 415 for other encodings.
async fn read_body(st: &AppState, req: Request) -> Result<(Bytes, bool), ApiError> {
    let gzip = gzip_encoded(req.headers())?;
    let limit = st.options.max_body_bytes;
    let body = Bytes::from_request(req, st).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(limit)
        } else {
            ApiError::BadRequest("could not read the request body".to_owned())
        }
    })?;
    Ok((body, gzip))
}

/// Whether the body is gzip; 415 for any other encoding than identity.
fn gzip_encoded(headers: &HeaderMap) -> Result<bool, ApiError> {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let (first, second) = (values.next(), values.next());
    let Some(first) = first else {
        return Ok(false);
    };
    let shown = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).to_lowercase();
    if let Some(second) = second {
        return Err(ApiError::UnsupportedEncoding(format!(
            "{}, {}",
            shown(first),
            shown(second)
        )));
    }
    match shown(first).trim() {
        "gzip" | "x-gzip" => Ok(true),
        "identity" | "" => Ok(false),
        other => Err(ApiError::UnsupportedEncoding(other.to_owned())),
    }
}

/// Decodes a body (gzip when `gzip`) and reads it as JSON into `T`.
fn decode<T: serde::de::DeserializeOwned>(
    body: &[u8],
    gzip: bool,
    limit: usize,
    what: &'static str,
) -> Result<T, ApiError> {
    let decoded;
    let bytes: &[u8] = if gzip {
        decoded = gunzip(body, limit)?;
        &decoded
    } else {
        body
    };
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not utf-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    read_json(text, what)
}

/// Decodes, parses and validates a deploy body into the set it deploys.
fn prepare(body: &[u8], gzip: bool, limit: usize) -> Result<(MonitorSet, Git), ApiError> {
    let request: DeployRequest = decode(body, gzip, limit, "deploy request")?;
    let bundle = request.bundle;
    let invalid = |problems| ApiError::Invalid {
        what: "bundle",
        problems,
    };
    if bundle.schema_version != SCHEMA_VERSION {
        return Err(invalid(vec![Problem {
            path: "schema_version".to_owned(),
            message: format!(
                "unsupported bundle version {}; this server reads version {SCHEMA_VERSION}",
                bundle.schema_version
            ),
        }]));
    }
    match bundle.validate() {
        Ok(_) => {}
        Err(BundleError::Invalid(problems)) => {
            return Err(invalid(
                problems
                    .into_iter()
                    .map(|p| Problem {
                        path: p.path,
                        message: p.message,
                    })
                    .collect(),
            ));
        }
        Err(BundleError::DuplicateId { id, first, second }) => {
            return Err(invalid(vec![Problem {
                path: format!("monitors[{second}].id"),
                message: format!("duplicate id `{id}`, also used by monitors[{first}]"),
            }]));
        }
        Err(other) => {
            return Err(invalid(vec![Problem {
                path: ".".to_owned(),
                message: other.to_string(),
            }]));
        }
    }
    let set = MonitorSet::from_bundle(&bundle)
        .map_err(|e| ApiError::Internal(format!("serializing monitors: {e}")))?;
    Ok((set, request.git.unwrap_or_default()))
}

/// Inflates a gzip body, refusing to produce more than `limit` bytes.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::BadRequest(format!("malformed gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::TooLarge(limit));
    }
    Ok(out)
}

/// Reads JSON into `T`, naming the field path, line and column of the first error.
fn read_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &'static str,
) -> Result<T, ApiError> {
    monitor_core::json::read(text).map_err(|e| ApiError::MalformedJson {
        what,
        path: e.path,
        message: e.message,
        line: e.line,
        column: e.column,
    })
}

async fn monitors(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = project_name(path)?;
    authorize(&st, &headers, &project).await?;
    let store = Arc::clone(&st.store);
    let body = blocking(move || Ok(store.monitors(&project)?.bundle_json())).await?;
    Ok(json_response(body))
}

async fn versions(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = project_name(path)?;
    authorize(&st, &headers, &project).await?;
    let store = Arc::clone(&st.store);
    let list = blocking(move || Ok(store.versions(&project)?)).await?;
    Ok(axum::Json(list).into_response())
}

async fn version(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, n) = project_and_version(path)?;
    authorize(&st, &headers, &project).await?;
    let store = Arc::clone(&st.store);
    let found = blocking(move || Ok(store.version(&project, n)?)).await?;
    let found = found.ok_or_else(|| ApiError::NotFound(format!("unknown version {n}")))?;
    let info = serde_json::to_string(&found.info)
        .map_err(|e| ApiError::Internal(format!("serializing a version: {e}")))?;
    Ok(json_response(format!(
        "{{\"info\":{info},\"bundle\":{}}}",
        found.bundle_json
    )))
}

async fn rollback(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, n) = project_and_version(path)?;
    authorize(&st, &headers, &project).await?;
    let name = project.clone();
    let outcome = exclusive(&st, &project, "rollback", move |store| {
        store.rollback(&name, n)
    })
    .await?;
    tracing::info!(%project, to = n, applied = outcome.applied, version = outcome.version, "rollback");
    Ok(deploy_response(project, false, outcome))
}

async fn destroy(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = project_name(path)?;
    authorize(&st, &headers, &project).await?;
    let name = project.clone();
    let deleted = exclusive(&st, &project, "destroy", move |store| store.destroy(&name)).await?;
    tracing::info!(%project, deleted, "destroy");
    Ok(axum::Json(DestroyResponse { project, deleted }).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignmentQuery {
    agent: String,
    location: String,
    #[serde(default)]
    wait: u64,
}

/// The entity tags of an `If-None-Match` header, unquoted (`W/` prefixes dropped).
fn if_none_match(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| {
            let tag = tag.trim();
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag.trim_matches('"').to_owned()
        })
        .filter(|tag| !tag.is_empty())
        .collect()
}

fn etag_header(etag: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!("\"{etag}\""))
        .map_err(|e| ApiError::Internal(format!("etag header: {e}")))
}

async fn assignments(
    State(st): State<AppState>,
    query: Result<Query<AssignmentQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = authorize_agent(&st, &headers).await?;
    let Query(query) = query.map_err(bad_query)?;
    for (what, name) in [("agent", &query.agent), ("location", &query.location)] {
        agents::check_name(what, name)
            .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?;
    }
    if query.wait > MAX_WAIT_SECONDS {
        return Err(ApiError::BadRequest(format!(
            "bad query: wait is {} seconds; use 0 to {MAX_WAIT_SECONDS}",
            query.wait
        )));
    }
    let known = if_none_match(&headers);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.wait);
    st.agents
        .heard(&project, &query.agent, &query.location, Instant::now());
    // Open until the answer: the agent counts as heard from while it waits.
    let _poll = st.agents.poll(&project, &query.agent);
    let mut changes = st.agents.subscribe(&project);
    loop {
        changes.borrow_and_update();
        let (store, cache, registry) = (
            Arc::clone(&st.store),
            Arc::clone(&st.deployed),
            Arc::clone(&st.agents),
        );
        let (name, agent, location, known) = (
            project.clone(),
            query.agent.clone(),
            query.location.clone(),
            known.clone(),
        );
        // The body only when the client does not hold this assignment already.
        let (etag, body) = blocking(move || {
            let deployed = cache.get(&*store, &name)?;
            let live = registry.live(&name, Instant::now());
            let assignment = agents::assign(&deployed, &live, &agent, &location);
            let body =
                (!known.contains(&assignment.etag)).then(|| agents::assignment_json(&assignment));
            Ok((assignment.etag, body))
        })
        .await?;
        if let Some(body) = body {
            let mut response = json_response(body);
            response.headers_mut().insert(ETAG, etag_header(&etag)?);
            return Ok(response);
        }
        // Unchanged: wait for a change, an agent going silent, or the deadline.
        loop {
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(deadline).await;
                        return not_modified(&etag);
                    }
                    break;
                }
                () = tokio::time::sleep(EXPIRY_CHECK) => {
                    // Signals a change, seen above, when an agent is gone.
                    st.agents.expire(&project, Instant::now());
                }
                () = tokio::time::sleep_until(deadline) => return not_modified(&etag),
            }
        }
    }
}

fn not_modified(etag: &str) -> Result<Response, ApiError> {
    Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag_header(etag)?)]).into_response())
}

async fn results(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let project = authorize_agent(&st, req.headers()).await?;
    let (body, gzip) = read_body(&st, req).await?;
    let limit = st.options.max_body_bytes;
    let received = status::unix_us(time::OffsetDateTime::now_utc());
    let (agent, location, rows) = blocking(move || {
        let request: ResultsRequest = decode(&body, gzip, limit, "results request")?;
        let rows =
            status::check_results(&request, received).map_err(|problems| ApiError::Invalid {
                what: "results",
                problems,
            })?;
        Ok((request.agent, request.location, rows))
    })
    .await?;
    st.agents.heard(&project, &agent, &location, Instant::now());
    let store = Arc::clone(&st.store);
    let name = project.clone();
    let outcome = blocking(move || Ok(store.insert_results(&name, &rows)?)).await?;
    tracing::debug!(
        %project,
        %agent,
        %location,
        accepted = outcome.accepted,
        duplicates = outcome.duplicates,
        "results"
    );
    Ok(axum::Json(ResultsResponse {
        accepted: outcome.accepted,
        duplicates: outcome.duplicates,
    })
    .into_response())
}

async fn status(
    State(st): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = project_name(path)?;
    authorize(&st, &headers, &project).await?;
    let (store, cache) = (Arc::clone(&st.store), Arc::clone(&st.deployed));
    let status = blocking(move || Ok(status::read_status(&*store, &cache, &project)?)).await?;
    Ok(axum::Json(status).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    since: Option<String>,
    location: Option<String>,
    limit: Option<String>,
}

/// Reads an RFC 3339 time; a `+` a client left unencoded in a query arrives as a space.
fn parse_since(text: &str) -> Result<time::OffsetDateTime, ApiError> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, rfc3339)
        .or_else(|e| time::OffsetDateTime::parse(&text.replace(' ', "+"), rfc3339).map_err(|_| e))
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "bad query: since `{}` is not an RFC 3339 time such as 2025-03-01T12:00:00Z ({e})",
                text.escape_default()
            ))
        })
}

fn history_query(monitor: String, query: HistoryQuery) -> Result<ResultQuery, ApiError> {
    let since_us = query
        .since
        .as_deref()
        .map(parse_since)
        .transpose()?
        .map(status::unix_us);
    if let Some(location) = &query.location {
        agents::check_name("location", location)
            .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?;
    }
    let limit = match query.limit.as_deref() {
        None => DEFAULT_HISTORY_LIMIT,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "bad query: limit `{}` is not a number from 1 to {MAX_HISTORY_LIMIT}",
                    text.escape_default()
                ))
            })?,
    };
    Ok(ResultQuery {
        monitor,
        since_us,
        location: query.location,
        limit,
    })
}

async fn history(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((project, monitor)) =
        path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    authorize(&st, &headers, &project).await?;
    let Query(query) = query.map_err(bad_query)?;
    let query = history_query(monitor, query)?;
    let store = Arc::clone(&st.store);
    let body = blocking(move || {
        let rows = store.results(&project, &query)?;
        Ok(status::history_json(&query.monitor, &rows))
    })
    .await?;
    Ok(json_response(body))
}

/// The status of every project. Blocking.
fn all_status(st: &AppState) -> Result<Vec<status::ProjectStatus>, ApiError> {
    let projects = st.store.projects()?;
    projects
        .iter()
        .map(|p| Ok(status::read_status(&*st.store, &st.deployed, p)?))
        .collect()
}

async fn metrics(State(st): State<AppState>) -> Result<Response, ApiError> {
    let text = blocking(move || {
        let projects = all_status(&st)?;
        Ok(crate::metrics::render(
            &projects,
            &st.agents.counts(Instant::now()),
        ))
    })
    .await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

async fn page(State(st): State<AppState>) -> Result<Response, ApiError> {
    let html = blocking(move || {
        let projects = all_status(&st)?;
        Ok(crate::page::render(
            &projects,
            time::OffsetDateTime::now_utc(),
        ))
    })
    .await?;
    Ok((
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_json_names_path_line_and_column() {
        let text = "{\"bundle\": {\"schema_version\": 1, \"monitors\": [\n{\"schema_version\": 1, \"id\": \"a\", \"name\": \"a\", \"target\": {\"host\": \"h\", \"port\": \"x\"}}]}}";
        let err = read_json::<DeployRequest>(text, "deploy request").unwrap_err();
        let ApiError::MalformedJson {
            path, line, column, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(path, "bundle.monitors[0].target.port");
        assert_eq!(*line, 2);
        assert!(*column > 60, "{column}");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn gzip_is_capped() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![b' '; 100_000]).unwrap();
        let small = enc.finish().unwrap();
        assert!(matches!(
            gunzip(&small, 1000),
            Err(ApiError::TooLarge(1000))
        ));
        assert_eq!(gunzip(&small, 100_000).unwrap().len(), 100_000);
        assert!(matches!(
            gunzip(b"not gzip", 1000),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn encodings() {
        let mut h = HeaderMap::new();
        assert!(!gzip_encoded(&h).unwrap());
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("GZIP"));
        assert!(gzip_encoded(&h).unwrap());
        h.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert!(matches!(
            gzip_encoded(&h),
            Err(ApiError::UnsupportedEncoding(_))
        ));
    }
}
