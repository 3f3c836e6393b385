//! The retry routes (`retry.same_region = false`, issue 20): an agent hands a check whose
//! first attempt failed to another location (`POST /v1/agent/retries`), and the agents of
//! that location take it by long poll (`GET /v1/agent/retries`). The checks wait in
//! memory ([`crate::agents::retries`]); one no agent took in time is stored as the result
//! of the location that ran its first attempt. Agents polling with `triggers=true` take
//! the triggered runs of their location ([`crate::agents::triggers`]) through the same
//! poll.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use monitor_spec::api::{
    MAX_RETRIES_PER_ANSWER, PendingRetry, Problem, ResultIn, ResultsRequest, Retries,
    RetryAccepted, RetryRequest, TriggeredRun,
};
use serde_json::value::RawValue;

use super::agent_routes::{bind_agent, load_header, polling_agent};
use super::auth::authorize_agent;
use super::body::json_body;
use super::error::ApiError;
use super::state::{AppState, blocking};
use crate::agents::{self, retries};
use crate::status;

/// The latest `not_before_ms` a handed check may have, after now: the longest retry
/// budget (600 s) with room for clock skew.
const MAX_NOT_BEFORE: Duration = Duration::from_secs(3600);

/// How often a long poll of the retries gives back the checks no agent took.
const EXPIRY_CHECK: Duration = Duration::from_secs(1);

fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The problems of a retry request, each with its path.
fn problems(request: &RetryRequest, now_ms: u64) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |path: &str, message: String| {
        problems.push(Problem {
            path: path.to_owned(),
            message,
        });
    };
    for (what, name) in [("agent", &request.agent), ("location", &request.location)] {
        if let Err(e) = agents::check_name(what, name) {
            problem(what, e);
        }
    }
    if let Err(e) = monitor_spec::rules::check_id(&request.monitor) {
        problem("monitor", e);
    }
    if *request.result.id != *request.monitor {
        problem(
            "result.id",
            format!(
                "is `{}` but the retry is for monitor `{}`",
                request.result.id.escape_default(),
                request.monitor.escape_default()
            ),
        );
    }
    if request.result.attempts.is_empty() {
        problem("result.attempts", "holds no attempt".to_owned());
    }
    if request.tick > i64::MAX as u64 {
        problem("tick", "is over 2^63-1".to_owned());
    }
    let latest = now_ms.saturating_add(MAX_NOT_BEFORE.as_secs() * 1000);
    if request.not_before_ms > latest {
        problem(
            "not_before_ms",
            format!(
                "is more than {} s ahead of the server's clock; check the agent's clock",
                MAX_NOT_BEFORE.as_secs()
            ),
        );
    }
    if let Err((path, why)) = monitor_spec::limits::check_result(&request.result) {
        problem(&format!("result.{path}"), why);
    }
    problems
}

/// `POST /v1/agent/retries`: hands the check to the next location of the monitor's
/// rotation with an agent taking retries; 409 when there is none (or the monitor does not
/// retry elsewhere), 429 when the project has the most checks waiting.
pub(super) async fn hand(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let caller = authorize_agent(&st, req.headers()).await?;
    let project = caller.project.clone();
    let limit = st.options.max_body_bytes;
    let load = load_header(req.headers());
    let request: RetryRequest = json_body(limit, req, "retry request").await?;
    let now_ms = unix_ms_now();
    let found = problems(&request, now_ms);
    if !found.is_empty() {
        return Err(ApiError::Invalid {
            what: "retry",
            problems: found,
        });
    }
    bind_agent(&st, &caller, &request.agent).await?;
    let now = Instant::now();
    st.agents
        .heard(&project, &request.agent, &request.location, now);
    if let Some(load) = load {
        st.agents.reported(&project, &request.agent, load);
    }
    store_expired(&st, &project).await?;
    let (store, cache, name) = (
        Arc::clone(&st.store),
        Arc::clone(&st.deployed),
        project.clone(),
    );
    let deployed = blocking(move || Ok(cache.get(&*store, &name)?)).await?;
    let Some(monitor) = deployed.iter().find(|d| d.id() == request.monitor) else {
        return Err(ApiError::Conflict(format!(
            "monitor `{}` is not deployed; retry it where it ran",
            request.monitor
        )));
    };
    let live = st.agents.live(&project, now);
    let locations: BTreeSet<&str> = live.iter().map(|a| a.location.as_str()).collect();
    let runs_in = agents::runs_in(&monitor.spec, &locations);
    if !retries::retries_elsewhere(&monitor.spec, runs_in.len()) {
        return Err(ApiError::Conflict(format!(
            "monitor `{}` is retried where it ran (same_region, no retries, run_parallel, or one live location)",
            request.monitor
        )));
    }
    let wait_ms = request.not_before_ms.saturating_sub(now_ms);
    let pending = retries::Pending {
        monitor: monitor.json.clone(),
        id: request.monitor.clone(),
        tick: request.tick,
        from: request.location.clone(),
        from_agent: request.agent.clone(),
        not_before_ms: request.not_before_ms,
        result: request.result,
        deadline: retries::deadline(now, wait_ms, st.options.agent_timeout),
    };
    match st.retries.hand(&project, &runs_in, pending, now) {
        Ok(location) => {
            tracing::debug!(
                %project,
                monitor = %request.monitor,
                tick = request.tick,
                from = %request.location,
                to = %location,
                "retry handed to another location"
            );
            Ok(axum::Json(RetryAccepted { location }).into_response())
        }
        Err(e @ retries::HandError::NoLocation(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(e @ retries::HandError::Full(_)) => Err(ApiError::TooMany(e.to_string())),
    }
}

/// `GET /v1/agent/retries?agent=&location=&wait=`: the checks handed to the caller's
/// location (at most [`MAX_RETRIES_PER_ANSWER`]), as soon as there is one, or none after
/// `wait` seconds. While it polls (and for `--agent-timeout` after), the agent takes
/// retries: checks of its location's monitors may be handed to it.
pub(super) async fn take(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, query) = polling_agent(&st, &uri, &headers).await?;
    let timeout = st.options.agent_timeout;
    let wait = Duration::from_secs(query.wait);
    st.retries.polling(
        &project,
        &query.agent,
        &query.location,
        Instant::now() + wait + timeout,
    );
    if query.triggers {
        st.triggers.polling(
            &project,
            &query.agent,
            &query.location,
            Instant::now() + wait + timeout,
        );
    }
    let _poll = st.agents.poll(&project, &query.agent);
    let mut handed = st.retries.subscribe(&project);
    let mut queued = st.triggers.subscribe(&project);
    let deadline = tokio::time::Instant::now() + wait;
    let (taken, triggered) = loop {
        handed.borrow_and_update();
        queued.borrow_and_update();
        store_expired(&st, &project).await?;
        let taken = st
            .retries
            .take(&project, &query.location, MAX_RETRIES_PER_ANSWER);
        let triggered = if query.triggers {
            st.triggers
                .take(&project, &query.location, MAX_RETRIES_PER_ANSWER)
        } else {
            Vec::new()
        };
        if !taken.is_empty() || !triggered.is_empty() || tokio::time::Instant::now() >= deadline {
            break (taken, triggered);
        }
        tokio::select! {
            _ = handed.changed() => {}
            _ = queued.changed() => {}
            () = tokio::time::sleep(EXPIRY_CHECK) => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    };
    st.retries.polling(
        &project,
        &query.agent,
        &query.location,
        Instant::now() + timeout,
    );
    if query.triggers {
        st.triggers.polling(
            &project,
            &query.agent,
            &query.location,
            Instant::now() + timeout,
        );
    }
    let body = Retries::<&RawValue> {
        retries: taken
            .iter()
            .map(|r| PendingRetry {
                monitor: &*r.monitor,
                tick: r.tick,
                from: r.from.clone(),
                not_before_ms: r.not_before_ms,
                result: r.result.clone(),
            })
            .collect(),
        triggered: triggered
            .iter()
            .map(|t| TriggeredRun {
                monitor: &*t.monitor,
                trigger: t.trigger.clone(),
            })
            .collect(),
    };
    Ok(axum::Json(body).into_response())
}

/// Stores the project's handed checks that no agent took in time as results of the
/// location of their first attempt, so none is lost.
async fn store_expired(st: &AppState, project: &str) -> Result<(), ApiError> {
    let gone = st.retries.expired(project, Instant::now());
    if gone.is_empty() {
        return Ok(());
    }
    let received = status::unix_us(time::OffsetDateTime::now_utc());
    let mut rows = Vec::with_capacity(gone.len());
    for r in gone {
        tracing::warn!(
            %project,
            monitor = %r.id,
            tick = r.tick,
            from = %r.from,
            "no agent took a retry handed to another location in time; storing the first attempt's result"
        );
        let request = ResultsRequest {
            agent: r.from_agent,
            location: r.from.clone(),
            results: vec![ResultIn {
                id: format!("{}/{}/{}", r.id, r.from, r.tick),
                monitor: r.id,
                tick: r.tick,
                result: r.result,
                trigger: None,
            }],
        };
        // Checked when it was handed in: a problem now is the server's.
        rows.extend(
            status::check_results(&request, received).map_err(|problems| {
                ApiError::Internal(format!("a handed retry does not store: {problems:?}"))
            })?,
        );
    }
    let (store, name) = (Arc::clone(&st.store), project.to_owned());
    blocking(move || Ok(store.insert_results(&name, &rows)?)).await?;
    Ok(())
}
