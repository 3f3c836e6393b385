//! The page routes: the overview (`/`), the certificates page and the badges; each reads
//! what it shows from the store and renders it with [`crate::pages`].

use axum::extract::State;
use axum::response::Response;

use super::error::ApiError;
use super::state::AppState;
use super::viewer::{OverviewPage, PrivatePage};

pub(super) async fn overview(
    State(_st): State<AppState>,
    OverviewPage(_viewer): OverviewPage,
) -> Result<Response, ApiError> {
    Err(ApiError::NotFound(
        "the overview is not built yet".to_owned(),
    ))
}

pub(super) async fn certificates(
    State(_st): State<AppState>,
    PrivatePage(_viewer): PrivatePage,
) -> Result<Response, ApiError> {
    Err(ApiError::NotFound(
        "the certificates page is not built yet".to_owned(),
    ))
}

pub(super) async fn badge(State(_st): State<AppState>) -> Result<Response, ApiError> {
    Err(ApiError::NotFound("badges are not built yet".to_owned()))
}
