//! The page routes: the overview (`/`), the certificates page and the badges; each reads
//! what it shows from the store and renders it with [`crate::pages`]. Pages are sent
//! gzip-compressed when the client accepts it, and never stored by caches; badges are
//! cacheable for a minute with an `ETag`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH, VARY, X_FRAME_OPTIONS,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use time::OffsetDateTime;

use super::error::ApiError;
use super::query::QueryParams;
use super::state::{AppState, blocking};
use super::viewer::{OverviewPage, PrivatePage, badge_access};
use crate::pages::certificates::MonitorInfo;
use crate::pages::overview::OverviewData;
use crate::pages::{badge, certificates, layout, overview};
use crate::server::Pieces;
use crate::status;

/// How much of the overview is rendered at a time, at the least.
const PIECE_BYTES: usize = 64 * 1024;

/// The headers of every page: HTML, never stored, varying with `Accept-Encoding`, never
/// framed by another site.
fn page_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
}

/// An HTML page, gzip-compressed when `request` accepts it, with `Cache-Control: no-store`.
pub(super) fn html(request: &HeaderMap, code: StatusCode, page: String) -> Response {
    let mut headers = page_headers();
    if crate::server::accepts_gzip(request) {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(page.as_bytes());
        if let Ok(body) = encoder.finish() {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return (code, headers, body).into_response();
        }
    }
    (code, headers, page).into_response()
}

/// The 400 page of a bad query, naming the parameter.
fn bad_request_page(request: &HeaderMap, project: &str, public: bool, why: &str) -> Response {
    let mut page = String::new();
    layout::start(&mut page, "bad request", Some(project), public, "", None);
    page.push_str("<h1>Bad request</h1><p class=\"failed\" data-error>");
    page.push_str(&layout::escape(why));
    page.push_str(&format!(
        "</p><p><a href=\"/?project={}\">back to the overview</a></p>",
        layout::query_value(project)
    ));
    layout::end(&mut page);
    html(request, StatusCode::BAD_REQUEST, page)
}

/// `tls.expiry_warn_days` of each deployed monitor of `project`. Blocking.
fn warn_days(st: &AppState, project: &str) -> Result<BTreeMap<String, u32>, ApiError> {
    Ok(st
        .deployed
        .get(&*st.store, project)?
        .iter()
        .map(|d| (d.spec.id.clone(), d.spec.tls.expiry_warn_days))
        .collect())
}

/// When a request arrived: taken by the first extractor of a handler, before the token is
/// looked up (which may wait for the store while another request reads it).
pub(super) struct Arrived(pub(super) Instant);

impl<S: Send + Sync> FromRequestParts<S> for Arrived {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Arrived(Instant::now()))
    }
}

/// The overview data of `project` for a request that arrived at `arrived`: the last one
/// read if its reading ended after the request arrived (requests arriving while one is
/// read wait for it and share it: a page is at most one reading old), else read anew.
async fn overview_data(
    st: &AppState,
    project: &str,
    arrived: Instant,
) -> Result<Arc<OverviewData>, ApiError> {
    let slot = st.overviews.slot(project);
    let mut last = slot.lock().await;
    if let Some((read_until, data)) = &*last
        && *read_until >= arrived
    {
        return Ok(Arc::clone(data));
    }
    let reader = st.clone();
    let project = project.to_owned();
    let fresh = blocking(move || {
        let (mut status, windows) =
            status::read_status_and_windows(&*reader.store, &reader.deployed, &project)?;
        status.agents = reader.agents.agents(&project, Instant::now());
        let recent = reader
            .store
            .recent_results(&project, overview::BAR_RESULTS as u32)?;
        let warn_days = warn_days(&reader, &project)?;
        Ok(OverviewData {
            status,
            recent,
            warn_days,
            windows,
        })
    })
    .await?;
    // Unchanged data stays the one the clients still reading it hold, shared with the new.
    let data = match last.take() {
        Some((_, old)) if old.same(&fresh) => old,
        _ => Arc::new(fresh),
    };
    *last = Some((Instant::now(), Arc::clone(&data)));
    Ok(data)
}

pub(super) async fn overview(
    State(st): State<AppState>,
    Arrived(arrived): Arrived,
    OverviewPage(viewer): OverviewPage,
    uri: Uri,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let filter = QueryParams::parse(uri.query(), &["project", "tag", "location", "status"])
        .map_err(|e| e.to_string())
        .and_then(|mut q| {
            overview::Filter::new(q.text("tag"), q.text("location"), q.text("status"))
        });
    let filter = match filter {
        Ok(filter) => filter,
        Err(why) => {
            return Ok(bad_request_page(
                &request,
                &viewer.project,
                viewer.public,
                &why,
            ));
        }
    };
    let data = overview_data(&st, &viewer.project, arrived).await?;
    let (public, now) = (viewer.public, OffsetDateTime::now_utc());
    let mut text = overview::OverviewText::new(&data.view(&filter, public, now));
    let next = move || {
        let mut piece = String::new();
        text.fill(&mut piece, &data.view(&filter, public, now), PIECE_BYTES);
        (!piece.is_empty()).then_some(piece)
    };
    let mut headers = page_headers();
    let body = if crate::server::accepts_gzip(&request) {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        Pieces::gzip(next)
    } else {
        Pieces::body(next)
    };
    Ok((headers, body).into_response())
}

pub(super) async fn certificates(
    State(st): State<AppState>,
    PrivatePage(viewer): PrivatePage,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let project = viewer.project.clone();
    let reader = st.clone();
    let (latest, monitors) = blocking(move || {
        let latest = reader.store.latest_results_full(&project)?;
        let monitors: BTreeMap<String, MonitorInfo> = reader
            .deployed
            .get(&*reader.store, &project)?
            .iter()
            .map(|d| {
                let info = MonitorInfo {
                    name: d.spec.name.clone(),
                    warn_days: d.spec.tls.expiry_warn_days,
                };
                (d.spec.id.clone(), info)
            })
            .collect();
        Ok((latest, monitors))
    })
    .await?;
    let page = certificates::render(
        &viewer.project,
        &latest,
        &monitors,
        OffsetDateTime::now_utc(),
    );
    Ok(html(&request, StatusCode::OK, page))
}

/// A badge answer: the SVG with its `ETag`, cacheable for a minute (by shared caches only
/// when the project is public), or 304 when `If-None-Match` holds its tag.
fn svg(request: &HeaderMap, code: StatusCode, public: bool, svg: String) -> Response {
    let etag = format!("\"{}\"", &crate::hash::sha256_hex(svg.as_bytes())[..32]);
    let cache = if public {
        "public, max-age=60"
    } else {
        "private, max-age=60"
    };
    let mut headers = HeaderMap::new();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    let matches = request
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*");
    if matches && code == StatusCode::OK {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    (code, headers, svg).into_response()
}

pub(super) async fn badge(
    State(st): State<AppState>,
    Path((project, monitor, kind)): Path<(String, String, String)>,
    uri: Uri,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let public = badge_access(&st, &request, &project).await?;
    let mut query = QueryParams::parse(uri.query(), &["range"])?;
    let range = query.text("range");
    if kind != "uptime.svg" && range.is_some() {
        return Err(ApiError::BadRequest(
            "bad query: range is a parameter of uptime.svg only".to_owned(),
        ));
    }
    let range = range.unwrap_or_else(|| "7d".to_owned());
    if !badge::RANGES.contains(&range.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "bad query: range `{}` is not one of {}",
            range.escape_default(),
            badge::RANGES.join(", ")
        )));
    }
    if !["status.svg", "uptime.svg", "certificate.svg"].contains(&kind.as_str()) {
        return Ok(svg(
            &request,
            StatusCode::NOT_FOUND,
            public,
            badge::not_found(),
        ));
    }
    let reader = st.clone();
    let (status, warn) = blocking(move || {
        let status = status::read_status(&*reader.store, &reader.deployed, &project)?;
        let warn = warn_days(&reader, &project)?;
        Ok((status, warn))
    })
    .await?;
    let Some(m) = status.monitors.iter().find(|m| m.id == monitor) else {
        return Ok(svg(
            &request,
            StatusCode::NOT_FOUND,
            public,
            badge::not_found(),
        ));
    };
    let body = match kind.as_str() {
        "status.svg" => badge::status(m),
        "uptime.svg" => badge::uptime(m, &range).unwrap_or_else(badge::not_found),
        _ => badge::certificate(m, warn.get(&m.id).copied().unwrap_or(0)),
    };
    Ok(svg(&request, StatusCode::OK, public, body))
}
