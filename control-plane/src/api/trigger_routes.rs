//! The trigger routes (issue 21): `POST /v1/projects/{project}/trigger` queues one
//! immediate run of the matching deployed monitors in each of their live locations, and
//! `GET /v1/projects/{project}/triggers/{trigger}?wait=` long polls its results. The runs
//! and results live in this replica's memory ([`crate::agents::triggers`]), never in the
//! results table, so the schedule, status and uptime are untouched.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Request, State};
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use monitor_spec::api::{Problem, TriggerRequest, TriggerResponse, TriggerRun, TriggerStatus};

use super::agent_routes::MAX_WAIT_SECONDS;
use super::auth::{Access, DeployProject, authorize};
use super::body::json_body;
use super::error::ApiError;
use super::query::QueryParams;
use super::state::{AppState, blocking};
use crate::agents::{self, triggers};
use crate::store;

/// The longest `grep` pattern, in bytes.
const MAX_GREP: usize = 1_000;

/// The most tags or locations a trigger request names.
const MAX_NAMES: usize = 100;

/// The problems of a trigger request, each with its path; the compiled `grep`.
fn checked(request: &TriggerRequest) -> Result<Option<regex::Regex>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| problems.push(Problem { path, message });
    let mut grep = None;
    if let Some(pattern) = &request.grep {
        if pattern.len() > MAX_GREP {
            problem(
                "grep".to_owned(),
                format!("is {} bytes; at most {MAX_GREP}", pattern.len()),
            );
        } else {
            match regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
            {
                Ok(re) => grep = Some(re),
                Err(e) => problem(
                    "grep".to_owned(),
                    format!("is not a regular expression: {e}"),
                ),
            }
        }
    }
    for (what, names) in [("tags", &request.tags), ("locations", &request.locations)] {
        if names.len() > MAX_NAMES {
            problem(
                what.to_owned(),
                format!("names {}; at most {MAX_NAMES}", names.len()),
            );
            continue;
        }
        for (i, name) in names.iter().enumerate() {
            let checked = if what == "tags" {
                monitor_spec::rules::check_tag(name).map_err(|why| format!("invalid tag: {why}"))
            } else {
                agents::check_name("location", name)
            };
            if let Err(e) = checked {
                problem(format!("{what}[{i}]"), e);
            }
        }
    }
    if problems.is_empty() {
        Ok(grep)
    } else {
        Err(problems)
    }
}

/// `POST /v1/projects/{project}/trigger`: queues one run of each matching monitor in
/// each of its locations with an agent taking triggered runs here; 422 when no monitor
/// matches, 409 when none of them has such a location.
pub(super) async fn trigger(
    State(st): State<AppState>,
    DeployProject(project): DeployProject,
    req: Request,
) -> Result<Response, ApiError> {
    let limit = st.options.max_body_bytes;
    let request: TriggerRequest = json_body(limit, req, "trigger request").await?;
    let grep = checked(&request).map_err(|problems| ApiError::Invalid {
        what: "trigger",
        problems,
    })?;
    let (store, cache, name) = (
        Arc::clone(&st.store),
        Arc::clone(&st.deployed),
        project.clone(),
    );
    let deployed = blocking(move || Ok(cache.get(&*store, &name)?)).await?;
    let matching: Vec<_> = deployed
        .iter()
        .filter(|d| {
            grep.as_ref()
                .is_none_or(|re| re.is_match(&d.spec.id) || re.is_match(&d.spec.name))
        })
        .filter(|d| request.tags.is_empty() || d.spec.tags.iter().any(|t| request.tags.contains(t)))
        .collect();
    if matching.is_empty() {
        return Err(ApiError::Invalid {
            what: "trigger",
            problems: vec![Problem {
                path: String::new(),
                message: format!(
                    "no deployed monitor of project `{project}` matches (of {})",
                    deployed.len()
                ),
            }],
        });
    }
    let now = Instant::now();
    let live: BTreeSet<String> = st
        .agents
        .live(&project, now)
        .into_iter()
        .map(|a| a.location)
        .collect();
    let taking: BTreeSet<String> = st
        .triggers
        .taking(&project, now)
        .intersection(&live)
        .filter(|l| request.locations.is_empty() || request.locations.contains(l))
        .cloned()
        .collect();
    let taking: BTreeSet<&str> = taking.iter().map(String::as_str).collect();
    let mut runs = Vec::new();
    for m in &matching {
        for location in agents::runs_in(&m.spec, &taking) {
            runs.push((
                m.json.clone(),
                TriggerRun {
                    monitor: m.spec.id.clone(),
                    location: location.to_owned(),
                },
            ));
        }
    }
    if runs.is_empty() {
        return Err(ApiError::Conflict(format!(
            "{} monitor(s) match but none of their locations has a live agent taking triggered runs on this control plane",
            matching.len()
        )));
    }
    if runs.len() > triggers::MAX_RUNS {
        return Err(ApiError::Invalid {
            what: "trigger",
            problems: vec![Problem {
                path: String::new(),
                message: format!(
                    "would queue {} runs; at most {}: narrow it with grep, tags or locations",
                    runs.len(),
                    triggers::MAX_RUNS
                ),
            }],
        });
    }
    let id = triggers::new_id();
    let listed: Vec<TriggerRun> = runs.iter().map(|(_, r)| r.clone()).collect();
    st.triggers.queue(&project, &id, runs, now);
    tracing::info!(%project, trigger = %id, runs = listed.len(), "trigger queued");
    Ok(axum::Json(TriggerResponse {
        trigger: id,
        runs: listed,
    })
    .into_response())
}

/// `GET /v1/projects/{project}/triggers/{trigger}?wait=SECS`: the trigger's results so
/// far and its runs still missing, as soon as none is missing or after `wait` seconds.
pub(super) async fn status(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    uri: Uri,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let Path((project, id)) =
        path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    authorize(&st, &headers, &project, Access::Read).await?;
    let mut params = QueryParams::parse(uri.query(), &["wait"])?;
    let wait = params.number("wait")?.unwrap_or(0);
    if wait > MAX_WAIT_SECONDS {
        return Err(ApiError::BadRequest(format!(
            "bad query: wait is {wait} seconds; use 0 to {MAX_WAIT_SECONDS}"
        )));
    }
    let mut changed = st.triggers.subscribe(&project);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        changed.borrow_and_update();
        let Some((results, missing)) = st.triggers.status(&project, &id) else {
            return Err(ApiError::NotFound(format!(
                "unknown trigger `{}` (triggers are kept {} s by the replica that queued them)",
                id.escape_default(),
                triggers::KEPT.as_secs()
            )));
        };
        if missing.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(axum::Json(TriggerStatus {
                trigger: id,
                results,
                missing,
            })
            .into_response());
        }
        tokio::select! {
            _ = changed.changed() => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}
