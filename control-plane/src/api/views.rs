//! The read-only views of results: a project's status, a monitor's history, `/metrics`
//! and the status page.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use monitor_spec::api::ProjectStatus;

use super::auth::{Access, ReadProject, authorize};
use super::error::ApiError;
use super::query::QueryParams;
use super::state::{AppState, blocking, json_response};
use crate::agents;
use crate::server::Pieces;
use crate::status;
use crate::store::{self, ResultQuery};

/// The default and largest number of results a history request returns.
const DEFAULT_HISTORY_LIMIT: u64 = 1000;
const MAX_HISTORY_LIMIT: u64 = 10_000;

pub(super) async fn status(
    State(st): State<AppState>,
    ReadProject(project): ReadProject,
) -> Result<Response, ApiError> {
    let (store, cache) = (Arc::clone(&st.store), Arc::clone(&st.deployed));
    let status = blocking(move || Ok(status::read_status(&*store, &cache, &project)?)).await?;
    Ok(axum::Json(status).into_response())
}

/// The query of a history request, as given.
#[derive(Debug)]
struct HistoryQuery {
    since: Option<String>,
    location: Option<String>,
    limit: Option<String>,
}

impl HistoryQuery {
    fn read(query: Option<&str>) -> Result<HistoryQuery, ApiError> {
        let mut params = QueryParams::parse(query, &["since", "location", "limit"])?;
        Ok(HistoryQuery {
            since: params.text("since"),
            location: params.text("location"),
            limit: params.text("limit"),
        })
    }
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
        from_us: since_us,
        to_us: None,
        location: query.location,
        limit,
    })
}

pub(super) async fn history(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((project, monitor)) =
        path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    authorize(&st, &headers, &project, Access::Read).await?;
    let query = history_query(monitor, HistoryQuery::read(uri.query())?)?;
    let store = Arc::clone(&st.store);
    let body = blocking(move || {
        let rows = store.results(&project, &query)?;
        Ok(status::history_json(&query.monitor, &rows)?)
    })
    .await?;
    Ok(json_response(body))
}

/// The status of every project. Blocking.
fn all_status(st: &AppState) -> Result<Vec<ProjectStatus>, ApiError> {
    let projects = st.store.projects()?;
    projects
        .iter()
        .map(|p| Ok(status::read_status(&*st.store, &st.deployed, p)?))
        .collect()
}

/// How much of `/metrics` or the page is rendered at a time, at the least.
const PIECE_BYTES: usize = 64 * 1024;

/// The status of every project as of a time after this request arrived, shared with the
/// other requests that can use it.
///
/// One snapshot is read at a time: a request takes the last one if its reading started
/// after the request arrived; otherwise it reads a new one, and keeps the last one instead
/// when nothing changed, so that the clients still reading it and the new ones share it.
async fn snapshot(st: &AppState) -> Result<Arc<Vec<ProjectStatus>>, ApiError> {
    let arrived = Instant::now();
    let mut last = st.snapshots.0.lock().await;
    if let Some((read_at, snapshot)) = &*last
        && *read_at >= arrived
    {
        return Ok(Arc::clone(snapshot));
    }
    let read_at = Instant::now();
    let reader = st.clone();
    let fresh = blocking(move || all_status(&reader)).await?;
    let snapshot = match &*last {
        Some((_, old)) if same_status(old, &fresh) => Arc::clone(old),
        _ => Arc::new(fresh),
    };
    *last = Some((read_at, Arc::clone(&snapshot)));
    Ok(snapshot)
}

/// Whether two readings hold the same status (when they were generated aside).
fn same_status(a: &[ProjectStatus], b: &[ProjectStatus]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.project == b.project && a.monitors == b.monitors)
}

pub(super) async fn metrics(
    State(st): State<AppState>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let projects = snapshot(&st).await?;
    let agents = st.agents.counts(Instant::now());
    let mut text = crate::metrics::MetricsText::default();
    Ok(crate::server::metrics_response(&request, move || {
        let mut piece = String::new();
        text.fill(&mut piece, &projects, &agents, PIECE_BYTES);
        (!piece.is_empty()).then_some(piece)
    }))
}

pub(super) async fn page(State(st): State<AppState>) -> Result<Response, ApiError> {
    let projects = snapshot(&st).await?;
    let mut html = crate::page::PageText::new(time::OffsetDateTime::now_utc());
    let body = Pieces::body(move || {
        let mut piece = String::new();
        html.fill(&mut piece, &projects, PIECE_BYTES);
        (!piece.is_empty()).then_some(piece)
    });
    Ok((
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response())
}
