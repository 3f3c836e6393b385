//! Who may call a route: the project in the path, and the token's project and role.
//! Deploy tokens reach every route of their project, read tokens only its reads (GET of
//! status, monitors, versions, history, the pages and `/metrics`), agent tokens only the
//! agent routes. A token comes as `Authorization: Bearer`, as the password of HTTP basic,
//! or in the login cookie; the cookie only reads, whatever its token's role.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;

use super::error::ApiError;
use super::identity::AgentCaller;
use super::state::{AppState, blocking};
use crate::store::{self, Role, TokenOwner};
use crate::token::{self, Credential, TokenHash, Via};

/// What a route does to its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Reads it: deploy and read tokens.
    Read,
    /// Changes it: deploy tokens only.
    Write,
}

/// The project of a `/v1/projects/{project}` route, whose bearer token may deploy to it:
/// 400 for an invalid name, then 401 or 403; extracted before anything else is read.
pub(super) struct DeployProject(pub(super) String);

impl FromRequestParts<AppState> for DeployProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let project = project_name(Path::from_request_parts(parts, st).await)?;
        authorize(st, &parts.headers, &project, Access::Write).await?;
        Ok(DeployProject(project))
    }
}

/// The project of a `/v1/projects/{project}/...` route that only reads, whose bearer token
/// may read it (deploy or read): 400 for an invalid name, then 401 or 403.
pub(super) struct ReadProject(pub(super) String);

impl FromRequestParts<AppState> for ReadProject {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let project = project_name(Path::from_request_parts(parts, st).await)?;
        authorize(st, &parts.headers, &project, Access::Read).await?;
        Ok(ReadProject(project))
    }
}

/// The project and version number of a `/v1/projects/{project}/.../{n}` route, whose
/// bearer token has the access `WRITE` (`true`: deploy) or else reads (deploy or read):
/// 400 for an invalid name or number, then 401 or 403.
pub(super) struct ProjectVersion<const WRITE: bool>(pub(super) String, pub(super) u64);

impl<const WRITE: bool> FromRequestParts<AppState> for ProjectVersion<WRITE> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let (project, n) = project_and_version(Path::from_request_parts(parts, st).await)?;
        let access = if WRITE { Access::Write } else { Access::Read };
        authorize(st, &parts.headers, &project, access).await?;
        Ok(ProjectVersion(project, n))
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

/// Checks the bearer token against the project and its role; before anything else is
/// read.
pub(super) async fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    project: &str,
    access: Access,
) -> Result<(), ApiError> {
    let (owner, _, via) = token_owner(st, headers).await?;
    if owner.project != project {
        return Err(ApiError::Forbidden(project.to_owned()));
    }
    if via == Via::Cookie && access == Access::Write {
        return Err(ApiError::CookieWrite);
    }
    match (owner.role, access) {
        (Role::Deploy, _) | (Role::Read, Access::Read) => Ok(()),
        (Role::Read, Access::Write) => Err(ApiError::ReadToken),
        (Role::Agent, _) => Err(ApiError::AgentToken),
    }
}

/// The owner of the caller's token whatever its project, once its role has `access`
/// (agent tokens get 403): what the pages use.
pub(super) async fn authorize_any(
    st: &AppState,
    headers: &HeaderMap,
    access: Access,
) -> Result<TokenOwner, ApiError> {
    let (owner, _, via) = token_owner(st, headers).await?;
    if via == Via::Cookie && access == Access::Write {
        return Err(ApiError::CookieWrite);
    }
    match (owner.role, access) {
        (Role::Deploy, _) | (Role::Read, Access::Read) => Ok(owner),
        (Role::Read, Access::Write) => Err(ApiError::ReadToken),
        (Role::Agent, _) => Err(ApiError::AgentToken),
    }
}

/// Checks the bearer token of an agent route (agent or deploy; a read token gets 403).
pub(super) async fn authorize_agent(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<AgentCaller, ApiError> {
    let (owner, token, via) = token_owner(st, headers).await?;
    if via == Via::Cookie {
        return Err(ApiError::Unauthorized(
            "agents send their token as `Authorization: Bearer TOKEN`",
        ));
    }
    if owner.role == Role::Read {
        return Err(ApiError::ReadToken);
    }
    Ok(AgentCaller {
        project: owner.project,
        token,
    })
}

/// The owner of the request's token, its hash and where it came from; 401 without a known
/// one. Records the token's use (at most once a minute).
pub(super) async fn token_owner(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<(TokenOwner, TokenHash, Via), ApiError> {
    let authorization = match headers.get(AUTHORIZATION) {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| MALFORMED)?),
    };
    let cookies = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let (token, via) = match token::credential(authorization, cookies) {
        Credential::Missing => return Err(ApiError::Unauthorized("missing bearer token")),
        Credential::Malformed => return Err(MALFORMED),
        Credential::Token(token, via) => (token, via),
    };
    let hash = TokenHash::of(&token);
    let store = Arc::clone(&st.store);
    let owner = blocking(move || Ok(store.token_owner(&hash)?))
        .await?
        .ok_or(ApiError::Unauthorized("unknown token"))?;
    st.identities.used(&st.store, &hash);
    Ok((owner, hash, via))
}

const MALFORMED: ApiError = ApiError::Unauthorized(
    "malformed authorization header; send `Authorization: Bearer TOKEN` (or HTTP basic with the token as password)",
);
