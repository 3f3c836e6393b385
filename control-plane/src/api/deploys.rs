//! The deploy routes: deploy (and its dry run), the current monitors, versions, rollback
//! and destroy.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use monitor_spec::SCHEMA_VERSION;
use monitor_spec::api::{
    DeployRequest, DeployResponse, DestroyResponse, Git, Problem, VersionResponse,
};
use monitor_spec::bundle::{Bundle, BundleError};
use monitor_spec::secret::SecretPolicy;
use serde_json::value::RawValue;

use super::auth::{DeployProject, ProjectVersion, ReadProject};
use super::body::{decode, read_body};
use super::error::ApiError;
use super::query::QueryParams;
use super::state::{AppState, blocking, exclusive, json_response};
use crate::monitor_set::MonitorSet;
use crate::store::{DeployInput, DeployOutcome};

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

/// The query of a deploy: `dry_run` and `prune`, both false by default.
#[derive(Debug)]
struct DeployQuery {
    dry_run: bool,
    prune: bool,
}

impl DeployQuery {
    fn read(query: Option<&str>) -> Result<DeployQuery, ApiError> {
        let mut params = QueryParams::parse(query, &["dry_run", "prune"])?;
        Ok(DeployQuery {
            dry_run: params.flag("dry_run")?,
            prune: params.flag("prune")?,
        })
    }
}

pub(super) async fn deploy(
    State(st): State<AppState>,
    DeployProject(project): DeployProject,
    req: Request,
) -> Result<Response, ApiError> {
    let query = DeployQuery::read(req.uri().query())?;
    let limit = st.options.max_body_bytes;
    let (body, gzip) = read_body(limit, req).await?;
    let prefix = st.options.secret_env_prefix.clone();
    let (monitors, git) = blocking(move || prepare(&body, gzip, limit, &prefix)).await?;
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

/// Decodes, parses and validates a deploy body into the set it deploys; the secrets its
/// monitors name must be ones the agents hand out (`secret_prefix`).
fn prepare(
    body: &[u8],
    gzip: bool,
    limit: usize,
    secret_prefix: &str,
) -> Result<(MonitorSet, Git), ApiError> {
    // The bundle is read on its own, so that every monitor's problems are found.
    let request: DeployRequest<Box<RawValue>> = match decode(body, gzip, limit, "deploy request") {
        Ok(request) => request,
        // Not JSON, or a wrong top level: reading it typed names the path inside the
        // bundle where the syntax breaks.
        Err(e) => {
            return Err(decode::<DeployRequest>(body, gzip, limit, "deploy request")
                .err()
                .unwrap_or(e));
        }
    };
    let git = request.git.unwrap_or_default();
    let git_problems: Vec<Problem> = git
        .problems()
        .into_iter()
        .map(|(field, message)| Problem {
            path: format!("git.{field}"),
            message,
        })
        .collect();
    if !git_problems.is_empty() {
        return Err(ApiError::Invalid {
            what: "git metadata",
            problems: git_problems,
        });
    }
    let invalid = |problems| ApiError::Invalid {
        what: "bundle",
        problems,
    };
    let bundle = Bundle::read_checked(request.bundle.get()).map_err(|e| match e {
        BundleError::Invalid(problems) => invalid(
            problems
                .into_iter()
                .map(|p| Problem {
                    path: p.path,
                    message: p.message,
                })
                .collect(),
        ),
        BundleError::Version(version) => invalid(vec![Problem {
            path: "schema_version".to_owned(),
            message: format!(
                "unsupported bundle version {version}; this server reads version {SCHEMA_VERSION}"
            ),
        }]),
        BundleError::Json(e) => invalid(vec![Problem {
            path: e.path,
            message: e.message,
        }]),
    })?;
    let policy = SecretPolicy::deploy(Some(secret_prefix.to_owned()));
    let refused: Vec<Problem> = bundle
        .monitors
        .iter()
        .enumerate()
        .flat_map(|(i, m)| {
            policy
                .refused(m)
                .into_iter()
                .map(move |(field, why)| Problem {
                    path: format!("monitors[{i}].{field}"),
                    message: why.to_string(),
                })
        })
        .collect();
    if !refused.is_empty() {
        return Err(invalid(refused));
    }
    let set = MonitorSet::from_bundle(&bundle)
        .map_err(|e| ApiError::Internal(format!("serializing monitors: {e}")))?;
    Ok((set, git))
}

pub(super) async fn monitors(
    State(st): State<AppState>,
    ReadProject(project): ReadProject,
) -> Result<Response, ApiError> {
    let store = Arc::clone(&st.store);
    let body = blocking(move || Ok(store.monitors(&project)?.bundle_json())).await?;
    Ok(json_response(body))
}

pub(super) async fn versions(
    State(st): State<AppState>,
    ReadProject(project): ReadProject,
) -> Result<Response, ApiError> {
    let store = Arc::clone(&st.store);
    let list = blocking(move || Ok(store.versions(&project)?)).await?;
    Ok(axum::Json(list).into_response())
}

pub(super) async fn version(
    State(st): State<AppState>,
    ProjectVersion(project, n): ProjectVersion<false>,
) -> Result<Response, ApiError> {
    let store = Arc::clone(&st.store);
    let found = blocking(move || Ok(store.version(&project, n)?)).await?;
    let found = found.ok_or_else(|| ApiError::NotFound(format!("unknown version {n}")))?;
    let bundle = serde_json::from_str::<&RawValue>(&found.bundle_json)
        .map_err(|e| ApiError::Internal(format!("version {n}'s stored bundle: {e}")))?;
    Ok(axum::Json(VersionResponse {
        info: found.info,
        bundle,
    })
    .into_response())
}

pub(super) async fn rollback(
    State(st): State<AppState>,
    ProjectVersion(project, n): ProjectVersion<true>,
) -> Result<Response, ApiError> {
    let name = project.clone();
    let outcome = exclusive(&st, &project, "rollback", move |store| {
        store.rollback(&name, n)
    })
    .await?;
    tracing::info!(%project, to = n, applied = outcome.applied, version = outcome.version, "rollback");
    Ok(deploy_response(project, false, outcome))
}

pub(super) async fn destroy(
    State(st): State<AppState>,
    DeployProject(project): DeployProject,
) -> Result<Response, ApiError> {
    let name = project.clone();
    let deleted = exclusive(&st, &project, "destroy", move |store| store.destroy(&name)).await?;
    tracing::info!(%project, deleted, "destroy");
    Ok(axum::Json(DestroyResponse { project, deleted }).into_response())
}
