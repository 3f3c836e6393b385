//! Who looks at a page and which project they see: a read or deploy token of the project
//! (the login cookie, `Authorization: Bearer`, or HTTP basic), or nobody at all for a
//! project served with `--public-status`. A browser without a login is sent to the login
//! form; other clients get 401.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use axum::http::request::Parts;

use super::auth::{Access, authorize, authorize_any};
use super::error::ApiError;
use super::state::AppState;
use crate::store::{self, TokenOwner};

/// Who looks at a page, and at which project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Viewer {
    /// The project shown.
    pub(crate) project: String,
    /// Whether the viewer has no token and sees the project because it is public: the page
    /// then shows verdicts, uptime and timings only, never error messages, hints,
    /// addresses or response excerpts.
    pub(crate) public: bool,
}

/// A page only a token of its project may see (monitor, certificates): the project is the
/// token's (`?project=` may name it again; another one is 403).
pub(crate) struct PrivatePage(pub(crate) Viewer);

impl FromRequestParts<AppState> for PrivatePage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let asked = asked_project(parts.uri.query())?;
        let owner = logged_in(st, parts).await?;
        if let Some(asked) = asked
            && asked != owner.project
        {
            return Err(ApiError::Forbidden(asked));
        }
        Ok(PrivatePage(Viewer {
            project: owner.project,
            public: false,
        }))
    }
}

/// The overview: like [`PrivatePage`], but a project served with `--public-status` is
/// shown to anyone (`public: true`): the one `?project=` names, or else the first one.
pub(crate) struct OverviewPage(pub(crate) Viewer);

impl FromRequestParts<AppState> for OverviewPage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let asked = asked_project(parts.uri.query())?;
        let public = |project: &str| st.options.public_status.iter().any(|p| p == project);
        let viewer = match logged_in(st, parts).await {
            Ok(owner) => match asked {
                Some(asked) if asked != owner.project => {
                    if !public(&asked) {
                        return Err(ApiError::Forbidden(asked));
                    }
                    Viewer {
                        project: asked,
                        public: true,
                    }
                }
                _ => Viewer {
                    project: owner.project,
                    public: false,
                },
            },
            Err(e @ (ApiError::Unauthorized(_) | ApiError::LoginRequired(_))) => {
                let shown = match asked {
                    Some(asked) => public(&asked).then_some(asked),
                    None => st.options.public_status.first().cloned(),
                };
                match shown {
                    Some(project) => Viewer {
                        project,
                        public: true,
                    },
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(OverviewPage(viewer))
    }
}

/// Whether the caller may see the badges of `project`: anyone when it is public, else a
/// token of the project. Returns whether the view is public.
pub(crate) async fn badge_access(
    st: &AppState,
    headers: &HeaderMap,
    project: &str,
) -> Result<bool, ApiError> {
    if st.options.public_status.iter().any(|p| p == project) {
        return Ok(true);
    }
    authorize(st, headers, project, Access::Read).await?;
    Ok(false)
}

/// The owner of the caller's read or deploy token; without a token, a browser is sent to
/// the login form and comes back to this page.
async fn logged_in(st: &AppState, parts: &Parts) -> Result<TokenOwner, ApiError> {
    match authorize_any(st, &parts.headers, Access::Read).await {
        Err(ApiError::Unauthorized(_)) if wants_html(&parts.headers) => {
            let next = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            Err(ApiError::LoginRequired(next))
        }
        other => other,
    }
}

/// Whether the client asks for HTML: a browser navigating.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .take(16)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

/// The project `?project=` names, checked; none when absent.
fn asked_project(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(value) = query_value(query, "project") else {
        return Ok(None);
    };
    store::check_project_name(&value)
        .map_err(|e| ApiError::BadRequest(format!("bad query: project: {e}")))?;
    Ok(Some(value))
}

/// The decoded value of the first parameter `name` of a query string (`+` is a space).
pub(crate) fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .take(64)
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| form_decode(value))
}

/// A value of a query string or form body, decoded: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}
