//! `GET /monitors/{id}`: one monitor's page; reads its history, latest results and spec
//! and renders them with [`crate::pages::monitor`].

use axum::extract::State;
use axum::response::Response;

use super::error::ApiError;
use super::state::AppState;
use super::viewer::PrivatePage;

pub(super) async fn monitor(
    State(_st): State<AppState>,
    PrivatePage(_viewer): PrivatePage,
) -> Result<Response, ApiError> {
    Err(ApiError::NotFound(
        "the monitor page is not built yet".to_owned(),
    ))
}
