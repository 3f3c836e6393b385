//! The agents' routes: long-polled assignments and posted results.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use monitor_spec::api::{ResultsRequest, ResultsResponse};

use super::auth::authorize_agent;
use super::body::{decode, read_body};
use super::error::ApiError;
use super::query::QueryParams;
use super::state::{AppState, blocking, json_response};
use crate::agents;
use crate::status;

/// The longest long poll of the assignments, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;
/// How often a long poll looks for agents gone silent.
const EXPIRY_CHECK: Duration = Duration::from_millis(250);

/// The query of an assignment poll: who asks, from where, and how long it waits.
#[derive(Debug)]
struct AssignmentQuery {
    agent: String,
    location: String,
    wait: u64,
}

impl AssignmentQuery {
    fn read(query: Option<&str>) -> Result<AssignmentQuery, ApiError> {
        let mut params = QueryParams::parse(query, &["agent", "location", "wait"])?;
        Ok(AssignmentQuery {
            agent: params.required("agent")?,
            location: params.required("location")?,
            wait: params.number("wait")?.unwrap_or(0),
        })
    }
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

pub(super) async fn assignments(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = authorize_agent(&st, &headers).await?;
    let query = AssignmentQuery::read(uri.query())?;
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

pub(super) async fn results(
    State(st): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let project = authorize_agent(&st, req.headers()).await?;
    let limit = st.options.max_body_bytes;
    let (body, gzip) = read_body(limit, req).await?;
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
