//! Who may call a route: the project in the path, and the bearer token's project and role.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::{AppState, blocking};
use crate::store::{self, Role, TokenOwner};
use crate::token::{self, TokenHash};

/// The project of a `/v1/projects/{project}` route, whose bearer token may deploy to it:
/// 400 for an invalid name, then 401 or 403; extracted before anything else is read.
pub(super) struct DeployProject(pub(super) String);

impl FromRequestParts<AppState> for DeployProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let project = project_name(Path::from_request_parts(parts, st).await)?;
        authorize(st, &parts.headers, &project).await?;
        Ok(DeployProject(project))
    }
}

/// The project and version number of a `/v1/projects/{project}/.../{n}` route, whose
/// bearer token may deploy to the project: 400 for an invalid name or number, then 401 or
/// 403.
pub(super) struct DeployVersion(pub(super) String, pub(super) u64);

impl FromRequestParts<AppState> for DeployVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let (project, n) = project_and_version(Path::from_request_parts(parts, st).await)?;
        authorize(st, &parts.headers, &project).await?;
        Ok(DeployVersion(project, n))
    }
}

/// The project of the path; 400 for an invalid name.
fn project_name(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(project) = path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    Ok(project)
}

/// The project and version number of the path; 400 for an invalid name or number.
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
pub(super) async fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    project: &str,
) -> Result<(), ApiError> {
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
pub(super) async fn authorize_agent(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<String, ApiError> {
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
