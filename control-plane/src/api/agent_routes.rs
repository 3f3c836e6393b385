//! The agents' routes: long-polled assignments and posted results. Each call binds its
//! agent id to the caller's token first (see [`super::identity`]); posted results are
//! checked against the clock (none may start further than `--max-clock-skew` ahead) and
//! the result bounds of `monitor_spec::limits`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::{ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use monitor_spec::api::{
    AgentLoad, LOAD_HEADER, Problem, ResultIn, ResultsRequest, ResultsResponse,
};

use super::auth::authorize_agent;
use super::body::{decode, read_body};
use super::error::ApiError;
use super::identity::AgentCaller;
use super::query::QueryParams;
use super::state::{AppState, blocking, json_response};
use crate::agents::{self, triggers};
use crate::maintenance;
use crate::status;

/// The longest long poll of the assignments, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;
/// How often a long poll looks for agents gone silent.
const EXPIRY_CHECK: Duration = Duration::from_millis(250);

/// The query of an assignment poll: who asks, from where, and how long it waits.
#[derive(Debug)]
pub(super) struct AssignmentQuery {
    pub(super) agent: String,
    pub(super) location: String,
    pub(super) wait: u64,
    /// Whether the agent takes triggered runs (`triggers=true`, retries poll only).
    pub(super) triggers: bool,
}

impl AssignmentQuery {
    /// Reads and checks the query: names valid, `wait` at most [`MAX_WAIT_SECONDS`].
    pub(super) fn checked(query: Option<&str>) -> Result<AssignmentQuery, ApiError> {
        let query = AssignmentQuery::read(query)?;
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
        Ok(query)
    }

    fn read(query: Option<&str>) -> Result<AssignmentQuery, ApiError> {
        let mut params = QueryParams::parse(query, &["agent", "location", "wait", "triggers"])?;
        Ok(AssignmentQuery {
            agent: params.required("agent")?,
            location: params.required("location")?,
            wait: params.number("wait")?.unwrap_or(0),
            triggers: params.flag("triggers")?,
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
    let (project, query) = polling_agent(&st, &uri, &headers).await?;
    let known = if_none_match(&headers);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(query.wait);
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
            let now = Instant::now();
            let live = registry.live(&name, now);
            let assignment = agents::assign(
                &deployed,
                &live,
                &agent,
                &location,
                now,
                registry.min_grace(),
            );
            registry.assigned(&name, &assignment, now);
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

/// The load an agent reports in [`LOAD_HEADER`], if it sent one that parses (a value that
/// does not is ignored, as is its absence: older agents send none).
pub(super) fn load_header(headers: &HeaderMap) -> Option<AgentLoad> {
    headers
        .get(LOAD_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(AgentLoad::parse)
}

/// Records the load of [`load_header`] for the agent, if any.
pub(super) fn reported(st: &AppState, project: &str, agent: &str, headers: &HeaderMap) {
    if let Some(load) = load_header(headers) {
        st.agents.reported(project, agent, load);
    }
}

fn not_modified(etag: &str) -> Result<Response, ApiError> {
    Ok((StatusCode::NOT_MODIFIED, [(ETAG, etag_header(etag)?)]).into_response())
}

pub(super) async fn results(
    State(st): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let caller = authorize_agent(&st, req.headers()).await?;
    let project = caller.project.clone();
    let limit = st.options.max_body_bytes;
    let load = load_header(req.headers());
    let (body, gzip) = read_body(limit, req).await?;
    let now = time::OffsetDateTime::now_utc();
    let received = status::unix_us(now);
    let latest = now + st.options.max_clock_skew;
    let (agent, location, rows, triggered) = blocking(move || {
        let request: ResultsRequest = decode(&body, gzip, limit, "results request")?;
        let checked = status::check_results(&request, received);
        let mut problems = checked.as_ref().err().cloned().unwrap_or_default();
        problems.extend(triggers::triggered_problems(
            &request.results,
            &request.location,
        ));
        problems.extend(bounds_and_times(&request, latest));
        match checked {
            Ok(rows) if problems.is_empty() => {
                let triggered: Vec<ResultIn> = request
                    .results
                    .into_iter()
                    .filter(|r| r.trigger.is_some())
                    .collect();
                Ok((request.agent, request.location, rows, triggered))
            }
            _ => Err(ApiError::Invalid {
                what: "results",
                problems,
            }),
        }
    })
    .await?;
    bind_agent(&st, &caller, &agent).await?;
    st.agents.heard(&project, &agent, &location, Instant::now());
    if let Some(load) = load {
        st.agents.reported(&project, &agent, load);
    }
    let store = Arc::clone(&st.store);
    let cache = Arc::clone(&st.deployed);
    let name = project.clone();
    let posted = !rows.is_empty();
    let mut outcome = blocking(move || {
        let mut rows = rows;
        if let Some(first) = rows.iter().map(|r| r.started_us).min() {
            // The declared windows come parsed with the monitors (once per version); the
            // ad-hoc ones are one indexed read of those ending after the batch's first start.
            let (deployed, declared) = cache.with_windows(&*store, &name)?;
            let ad_hoc = store.ad_hoc_windows(&name, first)?;
            maintenance::mark(&mut rows, &deployed, &declared, &ad_hoc);
        }
        Ok(store.insert_results(&name, &rows)?)
    })
    .await?;
    for r in triggered {
        let id = r.trigger.unwrap_or_default();
        match st
            .triggers
            .received(&project, &id, &agent, &location, r.result)
        {
            triggers::Received::Kept => outcome.accepted += 1,
            triggers::Received::Duplicate => outcome.duplicates += 1,
            triggers::Received::Unknown => {
                tracing::debug!(%project, %agent, trigger = %id, monitor = %r.monitor, "a triggered result of an unknown trigger, ignored");
                outcome.duplicates += 1;
            }
        }
    }
    if posted {
        st.agents.posted(&project, &agent, Instant::now());
    }
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

/// The problems of a batch beyond its shape: results over the bounds of
/// `monitor_spec::limits`, and results or attempts starting after `latest` (now plus the
/// allowed clock skew), each with its path.
fn bounds_and_times(request: &ResultsRequest, latest: time::OffsetDateTime) -> Vec<Problem> {
    let mut problems = Vec::new();
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let shown = |t: time::OffsetDateTime| t.format(rfc3339).unwrap_or_default();
    let mut future = |path: String, t: time::OffsetDateTime| {
        if t > latest {
            problems.push(Problem {
                path,
                message: format!(
                    "starts at {}, in the future: later than {} (now plus --max-clock-skew); check the agent's clock",
                    shown(t),
                    shown(latest)
                ),
            });
        }
    };
    for (i, r) in request.results.iter().enumerate() {
        future(
            format!("results[{i}].result.started_at"),
            r.result.started_at,
        );
        for (j, a) in r.result.attempts.iter().enumerate() {
            future(
                format!("results[{i}].result.attempts[{j}].started_at"),
                a.started_at,
            );
        }
    }
    for (i, r) in request.results.iter().enumerate() {
        if let Err((path, why)) = monitor_spec::limits::check_result(&r.result) {
            problems.push(Problem {
                path: format!("results[{i}].result.{path}"),
                message: why,
            });
        }
    }
    problems
}

/// What a long poll of an agent (assignments, retries) does first: authorizes the agent
/// token, checks the query, binds the agent id, and records that the agent was heard from
/// in its location with the load it reports. The caller's project and the query.
pub(super) async fn polling_agent(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(String, AssignmentQuery), ApiError> {
    let caller = authorize_agent(st, headers).await?;
    let query = AssignmentQuery::checked(uri.query())?;
    bind_agent(st, &caller, &query.agent).await?;
    let project = caller.project;
    st.agents
        .heard(&project, &query.agent, &query.location, Instant::now());
    reported(st, &project, &query.agent, headers);
    Ok((project, query))
}

/// Binds the agent id to the caller's token (see [`super::identity`]).
pub(super) async fn bind_agent(
    st: &AppState,
    caller: &AgentCaller,
    agent: &str,
) -> Result<(), ApiError> {
    st.identities
        .bind(
            &st.store,
            caller,
            agent,
            st.options.agent_id_ttl,
            st.options.max_agents_per_token,
        )
        .await
}
