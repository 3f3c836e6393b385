//! The maintenance routes (issue 21): `POST /v1/projects/{project}/maintenance` opens an
//! ad-hoc window now, `GET` lists the declared and ad-hoc windows open or upcoming, and
//! `DELETE /v1/projects/{project}/maintenance/{id}` ends an ad-hoc window now. Ad-hoc
//! windows live in the store, so that they survive a restart and every replica applies
//! them; declared ones come with the current version.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use monitor_spec::api::Problem;
use monitor_spec::maintenance::{AdHocRequest, ListedWindow, MaintenanceWindow};

use super::auth::{Access, DeployProject, ReadProject, authorize};
use super::body::json_body;
use super::error::ApiError;
use super::state::{AppState, blocking};
use crate::maintenance::{self, MAX_OPEN_AD_HOC};
use crate::status::unix_us;
use crate::store;

/// A window as the routes answer it at `now`: its current or next opening, or (for a
/// window that ended) its last one.
fn listed(window: &MaintenanceWindow, ad_hoc: bool, now: time::OffsetDateTime) -> ListedWindow {
    ListedWindow::at(window, ad_hoc, now).unwrap_or_else(|| {
        let (start, end) = match &window.schedule {
            monitor_spec::maintenance::WindowSchedule::Once { start, end } => (*start, *end),
            monitor_spec::maintenance::WindowSchedule::Weekly { .. } => (now, now),
        };
        ListedWindow {
            window: window.clone(),
            ad_hoc,
            active: false,
            start,
            end,
        }
    })
}

/// `POST /v1/projects/{project}/maintenance`: opens an ad-hoc window now; 201 with it, 422
/// with every problem of the request or when [`MAX_OPEN_AD_HOC`] are open already. A
/// window that covers no deployed monitor is accepted: monitors may be deployed later.
pub(super) async fn open(
    State(st): State<AppState>,
    DeployProject(project): DeployProject,
    req: Request,
) -> Result<Response, ApiError> {
    let limit = st.options.max_body_bytes;
    let request: AdHocRequest = json_body(limit, req, "maintenance request").await?;
    let now = time::OffsetDateTime::now_utc();
    let window = request
        .window(&maintenance::new_id(), now)
        .map_err(|problems| ApiError::Invalid {
            what: "maintenance request",
            problems: problems
                .into_iter()
                .map(|p| Problem {
                    path: p.path,
                    message: p.message,
                })
                .collect(),
        })?;
    let (store, name, stored) = (Arc::clone(&st.store), project.clone(), window.clone());
    let opened =
        blocking(move || Ok(store.open_window(&name, &stored, unix_us(now), MAX_OPEN_AD_HOC)?))
            .await?;
    if !opened {
        return Err(ApiError::Invalid {
            what: "maintenance request",
            problems: vec![Problem {
                path: String::new(),
                message: format!(
                    "project `{project}` has {MAX_OPEN_AD_HOC} ad-hoc windows open already, the most allowed; end one first"
                ),
            }],
        });
    }
    tracing::info!(%project, window = %window.id, "maintenance window opened");
    Ok((StatusCode::CREATED, axum::Json(listed(&window, true, now))).into_response())
}

/// `GET /v1/projects/{project}/maintenance`: the current version's declared windows and
/// the ad-hoc ones, open or upcoming, open ones first, then by start.
pub(super) async fn list(
    State(st): State<AppState>,
    ReadProject(project): ReadProject,
) -> Result<Response, ApiError> {
    let (store, cache) = (Arc::clone(&st.store), Arc::clone(&st.deployed));
    let now = time::OffsetDateTime::now_utc();
    let (declared, ad_hoc) = blocking(move || {
        let (_, declared) = cache.with_windows(&*store, &project)?;
        Ok((declared, store.ad_hoc_windows(&project, unix_us(now))?))
    })
    .await?;
    Ok(axum::Json(maintenance::list(&declared, &ad_hoc, now)).into_response())
}

/// `DELETE /v1/projects/{project}/maintenance/{id}`: ends an ad-hoc window now; 200 with
/// it as it now is, 404 for an unknown id, 409 for a declared window (those end by
/// deploying without them).
pub(super) async fn end(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let Path((project, id)) =
        path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    authorize(&st, &headers, &project, Access::Write).await?;
    let now = time::OffsetDateTime::now_utc();
    let (store, cache, name, key) = (
        Arc::clone(&st.store),
        Arc::clone(&st.deployed),
        project.clone(),
        id.clone(),
    );
    let (ended, declared) = blocking(move || {
        let ended = store.end_window(&name, &key, unix_us(now))?;
        let declared = ended.is_none()
            && cache
                .with_windows(&*store, &name)?
                .1
                .iter()
                .any(|w| w.id == key);
        Ok((ended, declared))
    })
    .await?;
    match ended {
        Some(window) => {
            tracing::info!(%project, window = %window.id, "maintenance window ended");
            Ok(axum::Json(listed(&window, true, now)).into_response())
        }
        None if declared => Err(ApiError::Conflict(format!(
            "window `{}` is declared by the deployed version; deployed windows end by deploying without them",
            id.escape_default()
        ))),
        None => Err(ApiError::NotFound(format!(
            "unknown ad-hoc maintenance window `{}`",
            id.escape_default()
        ))),
    }
}
