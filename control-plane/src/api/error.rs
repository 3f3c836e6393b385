//! [`ApiError`]: every way a request fails, its status code and its JSON body.

use axum::http::header::{LOCATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use monitor_spec::api::{ErrorBody, Problem};
use thiserror::Error;

use crate::store::StoreError;

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
    /// 403: the login cookie on a route that changes something.
    #[error(
        "a login cookie only reads; send the deploy token as `Authorization: Bearer TOKEN` to change the project"
    )]
    CookieWrite,
    /// 403: a login or logout form posted from another site.
    #[error(
        "a login form posted from another site (`{0}`) is refused; log in on this server's /login page"
    )]
    CrossSite(String),
    /// 303: a browser without a login, sent to the login form to come back to `0` (a path).
    #[error("log in to see this page")]
    LoginRequired(String),
    /// 403: a read token on a route that changes something, or on an agent route.
    #[error(
        "a read token only reads the project's status, monitors, versions and history (GET); use a deploy token to change it, an agent token to run checks"
    )]
    ReadToken,
    /// 403: an agent id bound to another token.
    #[error(
        "agent id `{0}` belongs to another token; give each agent its own id (ids unused for --agent-id-ttl are released)"
    )]
    AgentIdTaken(String),
    /// 403: a token already holding the most agent ids allowed.
    #[error(
        "this token already holds {held} agent ids, the most --max-agents-per-token allows ({max}); reuse an id, create another agent token, or wait until unused ids expire (--agent-id-ttl)"
    )]
    TooManyAgents {
        /// Ids the token holds.
        held: u64,
        /// The limit.
        max: u64,
    },
    /// 404: an unknown route or version.
    #[error("{0}")]
    NotFound(String),
    /// 405: a known route with another method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: another deploy, rollback or destroy of the project is running.
    #[error("{0}")]
    Conflict(String),
    /// 429: a bound of waiting work is reached (such as the retries waiting for other
    /// locations).
    #[error("{0}")]
    TooMany(String),
    /// 413: the body, as sent or decoded, is over the limit.
    #[error("request body exceeds the limit of {0} bytes")]
    TooLarge(usize),
    /// 415: a content encoding other than gzip.
    #[error("unsupported content encoding `{0}`; send identity or gzip")]
    UnsupportedEncoding(String),
    /// 415: a body whose content type is not JSON.
    #[error("unsupported content type `{0}`; send `Content-Type: application/json`")]
    UnsupportedType(String),
    /// 422: a bundle or results that fail validation.
    #[error("invalid {what}: {} problem{}", problems.len(), if problems.len() == 1 { "" } else { "s" })]
    Invalid {
        /// What failed, such as `bundle`.
        what: &'static str,
        /// Each problem with its path.
        problems: Vec<Problem>,
    },
    /// 507: the database or its disk is full; nothing of the request was stored.
    #[error(
        "the database is full: nothing was stored; free space on the database's disk (or lower --retention so that old results are pruned) and retry"
    )]
    Full(String),
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
            ApiError::Forbidden(_)
            | ApiError::AgentToken
            | ApiError::CookieWrite
            | ApiError::CrossSite(_)
            | ApiError::ReadToken
            | ApiError::AgentIdTaken(_)
            | ApiError::TooManyAgents { .. } => StatusCode::FORBIDDEN,
            ApiError::LoginRequired(_) => StatusCode::SEE_OTHER,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) | ApiError::UnsupportedType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
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
            StoreError::Conflict(project) => ApiError::Conflict(format!(
                "another deploy, rollback or destroy of project `{project}` is running; retry when it is done"
            )),
            StoreError::UnknownVersion(n) => ApiError::NotFound(format!("unknown version {n}")),
            StoreError::Full(e) => ApiError::Full(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(detail) => tracing::error!(%detail, "request failed"),
            ApiError::Full(detail) => tracing::error!(%detail, "the database is full"),
            _ => {}
        }
        let status = self.status();
        if let ApiError::LoginRequired(next) = &self {
            let to = format!("/login?next={}", crate::pages::layout::query_value(next));
            return match HeaderValue::from_str(&to) {
                Ok(location) => {
                    (status, [(LOCATION, location)], "log in to see this page\n").into_response()
                }
                Err(_) => ApiError::Unauthorized("log in at /login").into_response(),
            };
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_lock_held_by_another_replica_is_a_409_like_our_own() {
        let e = ApiError::from(StoreError::Conflict("shop".to_owned()));
        assert_eq!(e.status(), StatusCode::CONFLICT);
        assert_eq!(
            e.body().error,
            "another deploy, rollback or destroy of project `shop` is running; retry when it is done"
        );
        assert_eq!(
            ApiError::from(StoreError::Pool("timed out".to_owned())).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
