//! Who looks at a page and which project they see: a read or deploy token of the project
//! (a login cookie, `Authorization: Bearer`, or HTTP basic), or nobody at all for a
//! project served with `--public-status`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::auth::{Access, authorize_any};
use super::error::ApiError;
use super::state::AppState;

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
/// token's (`?project=` may name it again; another one is 403). Without a token a browser
/// is sent to the login form and other clients get 401.
pub(crate) struct PrivatePage(pub(crate) Viewer);

impl FromRequestParts<AppState> for PrivatePage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let owner = authorize_any(st, &parts.headers, Access::Read).await?;
        Ok(PrivatePage(Viewer {
            project: owner.project,
            public: false,
        }))
    }
}

/// The overview: like [`PrivatePage`], but a project served with `--public-status` is
/// shown to anyone without a token (`public: true`); `?project=` picks it when several are.
pub(crate) struct OverviewPage(pub(crate) Viewer);

impl FromRequestParts<AppState> for OverviewPage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let PrivatePage(viewer) = PrivatePage::from_request_parts(parts, st).await?;
        Ok(OverviewPage(viewer))
    }
}

/// Whether the caller may see the badges of `project`: anyone when it is public, else a
/// token of the project. Returns whether the view is public.
pub(crate) async fn badge_access(
    st: &AppState,
    parts_headers: &axum::http::HeaderMap,
    project: &str,
) -> Result<bool, ApiError> {
    if st.options.public_status.iter().any(|p| p == project) {
        return Ok(true);
    }
    super::auth::authorize(st, parts_headers, project, Access::Read).await?;
    Ok(false)
}
