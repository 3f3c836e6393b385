//! The read-only views of results: a project's status, a monitor's results and history
//! (computed by [`history_points`], which the monitor page shares) and `/metrics`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use monitor_spec::api::{HistoryPoint, MonitorHistory, ProjectStatus};

use super::auth::{Access, ReadProject, authorize, authorize_any};
use super::error::ApiError;
use super::pages::Arrived;
use super::query::QueryParams;
use super::state::{AppState, blocking, json_response};
use crate::agents;
use crate::results::{bucket_of, duration_us};
use crate::status;
use crate::store::{self, ResultQuery, Retention, Rollup, RollupQuery, Step, StoredResult};

/// The default and largest number of results a history request returns.
const DEFAULT_HISTORY_LIMIT: u64 = 1000;
const MAX_HISTORY_LIMIT: u64 = 10_000;

pub(super) async fn status(
    State(st): State<AppState>,
    ReadProject(project): ReadProject,
) -> Result<Response, ApiError> {
    let (store, cache) = (Arc::clone(&st.store), Arc::clone(&st.deployed));
    let name = project.clone();
    let mut status = blocking(move || Ok(status::read_status(&*store, &cache, &name)?)).await?;
    status.agents = st.agents.agents(&project, Instant::now());
    Ok(axum::Json(status).into_response())
}

/// The query of a history request, as given.
#[derive(Debug)]
struct HistoryQuery {
    since: Option<String>,
    location: Option<String>,
    limit: Option<String>,
}

impl HistoryQuery {
    fn read(query: Option<&str>) -> Result<HistoryQuery, ApiError> {
        let mut params = QueryParams::parse(query, &["since", "location", "limit"])?;
        Ok(HistoryQuery {
            since: params.text("since"),
            location: params.text("location"),
            limit: params.text("limit"),
        })
    }
}

/// Reads the RFC 3339 time of query parameter `name`; a `+` a client left unencoded in a
/// query arrives as a space.
fn parse_time(name: &str, text: &str) -> Result<time::OffsetDateTime, ApiError> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, rfc3339)
        .or_else(|e| time::OffsetDateTime::parse(&text.replace(' ', "+"), rfc3339).map_err(|_| e))
        .map_err(|e| {
            ApiError::BadRequest(format!(
                "bad query: {name} `{}` is not an RFC 3339 time such as 2025-03-01T12:00:00Z ({e})",
                text.escape_default()
            ))
        })
}

fn parse_since(text: &str) -> Result<time::OffsetDateTime, ApiError> {
    parse_time("since", text)
}

fn history_query(monitor: String, query: HistoryQuery) -> Result<ResultQuery, ApiError> {
    let since_us = query
        .since
        .as_deref()
        .map(parse_since)
        .transpose()?
        .map(status::unix_us);
    if let Some(location) = &query.location {
        agents::check_name("location", location)
            .map_err(|e| ApiError::BadRequest(format!("bad query: {e}")))?;
    }
    let limit = match query.limit.as_deref() {
        None => DEFAULT_HISTORY_LIMIT,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_HISTORY_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "bad query: limit `{}` is not a number from 1 to {MAX_HISTORY_LIMIT}",
                    text.escape_default()
                ))
            })?,
    };
    Ok(ResultQuery {
        monitor,
        from_us: since_us,
        to_us: None,
        location: query.location,
        limit,
    })
}

/// The project and monitor of a `/monitors/{id}/...` path, once the caller may read the
/// project.
async fn readable_monitor(
    st: &AppState,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: &HeaderMap,
) -> Result<(String, String), ApiError> {
    let Path((project, monitor)) =
        path.map_err(|_| ApiError::BadRequest("malformed path".to_owned()))?;
    store::check_project_name(&project).map_err(ApiError::BadRequest)?;
    authorize(st, headers, &project, Access::Read).await?;
    Ok((project, monitor))
}

pub(super) async fn history(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, monitor) = readable_monitor(&st, path, &headers).await?;
    let mut query = history_query(monitor, HistoryQuery::read(uri.query())?)?;
    // Raw results past the retention are gone even where the store still holds them (a
    // PostgreSQL partition is dropped once the whole day is past it).
    let kept = status::unix_us(time::OffsetDateTime::now_utc())
        .saturating_sub(duration_us(st.options.retention.raw))
        .saturating_sub(1);
    query.from_us = Some(query.from_us.map_or(kept, |from| from.max(kept)));
    let (store, cache) = (Arc::clone(&st.store), Arc::clone(&st.deployed));
    let body = blocking(move || {
        let rows = store.results(&project, &query)?;
        let deployed = cache.get(&*store, &project)?;
        let monitor = deployed.iter().find(|d| d.id() == query.monitor);
        Ok(status::history_json(&query.monitor, monitor, &rows)?)
    })
    .await?;
    Ok(json_response(body))
}

/// The most points a `/history` answer holds; a range with more is refused (400).
pub const MAX_HISTORY_POINTS: u64 = 10_000;

/// A `/history` request, checked: the question the API and the monitor page both ask
/// [`history_points`].
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// `None` for raw results, else hourly or daily rollups.
    pub(crate) step: Option<Step>,
    /// Raw results after this instant, or buckets from the one holding it (unix µs).
    pub(crate) from_us: i64,
    /// Up to this instant, inclusive (unix µs).
    pub(crate) to_us: i64,
    /// Only this location.
    pub(crate) location: Option<String>,
}

/// A duration as flags write it, in its largest whole unit: `48h`, `90d`, `90s`.
fn written(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// The name of a step in queries and answers.
pub(crate) fn step_name(step: Option<Step>) -> &'static str {
    match step {
        None => "raw",
        Some(Step::Hour) => "1h",
        Some(Step::Day) => "1d",
    }
}

/// Reads and checks the query of a `/history` request at `now_us`.
fn series_query(
    query: Option<&str>,
    now_us: i64,
    retention: &Retention,
) -> Result<Series, ApiError> {
    let mut params = QueryParams::parse(query, &["from", "to", "step", "location"])?;
    let bad = |why: String| ApiError::BadRequest(format!("bad query: {why}"));
    let step = match params.text("step").as_deref() {
        None | Some("raw") => None,
        Some("1h") => Some(Step::Hour),
        Some("1d") => Some(Step::Day),
        Some(other) => {
            return Err(bad(format!(
                "step `{}` is not one of raw, 1h, 1d",
                other.escape_default()
            )));
        }
    };
    let time = |params: &mut QueryParams, name: &str| -> Result<Option<i64>, ApiError> {
        params
            .text(name)
            .map(|t| parse_time(name, &t).map(status::unix_us))
            .transpose()
    };
    let to_us = time(&mut params, "to")?.unwrap_or(now_us);
    let default_span: i64 = match step {
        None => 86_400,
        Some(Step::Hour) => 30 * 86_400,
        Some(Step::Day) => 365 * 86_400,
    };
    let kept = |d: std::time::Duration| now_us.saturating_sub(duration_us(d));
    let oldest = match step {
        None => kept(retention.raw),
        Some(Step::Hour) => kept(retention.hourly),
        Some(Step::Day) => kept(retention.daily),
    };
    // The default range stops at the retention; a `from` given older is refused below.
    let from_us = match time(&mut params, "from")? {
        Some(from) => from,
        None => to_us
            .saturating_sub(default_span * 1_000_000)
            .max(oldest.min(to_us - 1)),
    };
    if from_us >= to_us {
        return Err(bad(format!(
            "from {} is not before to {}",
            status::rfc3339_us(from_us),
            status::rfc3339_us(to_us)
        )));
    }
    let location = params.text("location");
    if let Some(location) = &location {
        agents::check_name("location", location).map_err(bad)?;
    }
    match step {
        None if from_us < kept(retention.raw) => {
            return Err(bad(format!(
                "step=raw reaches back {} (--raw-retention) and from {} is older; ask for step=1h",
                written(retention.raw),
                status::rfc3339_us(from_us)
            )));
        }
        Some(Step::Hour) if from_us < kept(retention.hourly) => {
            return Err(bad(format!(
                "step=1h reaches back {} (--hourly-retention) and from {} is older; ask for step=1d",
                written(retention.hourly),
                status::rfc3339_us(from_us)
            )));
        }
        Some(step) => {
            let buckets = to_us.saturating_sub(bucket_of(step, from_us)) / step.micros() + 1;
            if u64::try_from(buckets).unwrap_or(u64::MAX) > MAX_HISTORY_POINTS {
                return Err(bad(format!(
                    "the range holds {buckets} buckets of {}, more than {MAX_HISTORY_POINTS}; narrow it or ask for a wider step",
                    step_name(Some(step))
                )));
            }
        }
        None => {}
    }
    Ok(Series {
        step,
        from_us,
        to_us,
        location,
    })
}

/// A point of a raw result.
fn raw_point(r: &StoredResult) -> HistoryPoint {
    let ms = r.facts.total_us as f64 / 1000.0;
    HistoryPoint {
        location: r.location.clone(),
        start: status::rfc3339_us(r.started_us),
        checks: 1,
        failures: u64::from(r.status == monitor_spec::Status::Failed),
        degraded: u64::from(r.status == monitor_spec::Status::Degraded),
        p50_ms: ms,
        p95_ms: ms,
        max_ms: ms,
        min_days_left: r
            .facts
            .cert_expiry_s
            .and_then(|e| crate::results::days_left(e, r.started_us)),
        id: Some(r.id.clone()),
        status: Some(r.status),
        error: r.facts.error,
        in_maintenance: r.in_maintenance,
    }
}

/// A point of a rollup.
fn rollup_point(r: &Rollup) -> HistoryPoint {
    let ms = |us: i64| us as f64 / 1000.0;
    HistoryPoint {
        location: r.location.clone(),
        start: status::rfc3339_us(r.start_us),
        checks: r.checks,
        failures: r.failures,
        degraded: r.degraded,
        p50_ms: ms(r.p50_us),
        p95_ms: ms(r.p95_us),
        max_ms: ms(r.max_us),
        min_days_left: r.min_days_left,
        id: None,
        status: None,
        error: None,
        in_maintenance: false,
    }
}

/// The points of `monitor` that `series` asks for, each with its start (unix µs), oldest
/// first; at most [`MAX_HISTORY_POINTS`] + 1, so that a caller sees when there are more.
/// What `/history` answers and the monitor page plots. Blocking.
pub(crate) fn history_points(
    store: &dyn store::Store,
    project: &str,
    monitor: &str,
    series: &Series,
) -> Result<Vec<(i64, HistoryPoint)>, store::StoreError> {
    Ok(match series.step {
        None => store
            .results(
                project,
                &ResultQuery {
                    monitor: monitor.to_owned(),
                    location: series.location.clone(),
                    from_us: Some(series.from_us),
                    to_us: Some(series.to_us),
                    limit: MAX_HISTORY_POINTS + 1,
                },
            )?
            .iter()
            .map(|r| (r.started_us, raw_point(r)))
            .collect(),
        Some(step) => store
            .rollups(
                project,
                &RollupQuery {
                    monitor: monitor.to_owned(),
                    location: series.location.clone(),
                    step,
                    from_us: bucket_of(step, series.from_us),
                    to_us: series.to_us.saturating_add(1),
                    limit: MAX_HISTORY_POINTS + 1,
                },
            )?
            .iter()
            .map(|r| (r.start_us, rollup_point(r)))
            .collect(),
    })
}

pub(super) async fn series(
    State(st): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, monitor) = readable_monitor(&st, path, &headers).await?;
    let now_us = status::unix_us(time::OffsetDateTime::now_utc());
    let q = series_query(uri.query(), now_us, &st.options.retention)?;
    let store = Arc::clone(&st.store);
    let too_many = || {
        ApiError::BadRequest(format!(
            "bad query: the range holds more than {MAX_HISTORY_POINTS} points; narrow it or ask for a wider step"
        ))
    };
    let answer = blocking(move || {
        let points = history_points(&*store, &project, &monitor, &q)?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        Ok(MonitorHistory {
            monitor,
            step: step_name(q.step).to_owned(),
            from: status::rfc3339_us(q.from_us),
            to: status::rfc3339_us(q.to_us),
            points,
        })
    })
    .await?;
    if answer.points.len() as u64 > MAX_HISTORY_POINTS {
        return Err(too_many());
    }
    Ok(axum::Json(answer).into_response())
}

/// The status of every project. Blocking.
fn all_status(st: &AppState) -> Result<Vec<ProjectStatus>, ApiError> {
    let projects = st.store.projects()?;
    projects
        .iter()
        .map(|p| Ok(status::read_status(&*st.store, &st.deployed, p)?))
        .collect()
}

/// How much of `/metrics` is rendered at a time, at the least.
const PIECE_BYTES: usize = 64 * 1024;

/// The status of every project as of a time after this request arrived, shared with the
/// other requests that can use it.
///
/// One snapshot is read at a time: a request takes the last one if its reading started
/// after the request arrived; otherwise it reads a new one, and keeps the last one instead
/// when nothing changed, so that the clients still reading it and the new ones share it.
async fn snapshot(st: &AppState, arrived: Instant) -> Result<Arc<Vec<ProjectStatus>>, ApiError> {
    let mut last = st.snapshots.0.lock().await;
    if let Some((read_at, snapshot)) = &*last
        && *read_at >= arrived
    {
        return Ok(Arc::clone(snapshot));
    }
    let read_at = Instant::now();
    let reader = st.clone();
    let fresh = blocking(move || all_status(&reader)).await?;
    let snapshot = match &*last {
        Some((_, old)) if same_status(old, &fresh) => Arc::clone(old),
        _ => Arc::new(fresh),
    };
    *last = Some((read_at, Arc::clone(&snapshot)));
    Ok(snapshot)
}

/// Whether two readings hold the same status (when they were generated aside).
fn same_status(a: &[ProjectStatus], b: &[ProjectStatus]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.project == b.project && a.monitors == b.monitors)
}

/// `/metrics` of the project of the caller's read or deploy token (bearer, HTTP basic as
/// Prometheus sends it, or the login cookie).
/// The arrival is taken before the token is checked, so that scrapes that waited for the
/// store share the reading that ends their wait.
pub(super) async fn metrics(
    Arrived(arrived): Arrived,
    State(st): State<AppState>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let owner = authorize_any(&st, &request, Access::Read).await?;
    let all = snapshot(&st, arrived).await?;
    // The token's project: a slice of the shared snapshot, never a copy of it.
    let shown = all
        .iter()
        .position(|p| p.project == owner.project)
        .map_or(0..0, |i| i..i + 1);
    let mut agents = st.agents.counts(Instant::now());
    agents.retain(|(project, _, _)| *project == owner.project);
    // At most --max-agents-per-token lines a token: written whole after the rest.
    let mut loads = Some(crate::metrics::agent_loads(
        &owner.project,
        &st.agents.agents(&owner.project, Instant::now()),
    ));
    let mut text = crate::metrics::MetricsText::default();
    Ok(crate::server::metrics_response(&request, move || {
        let mut piece = String::new();
        if !text.fill(&mut piece, &all[shown.clone()], &agents, PIECE_BYTES)
            && let Some(loads) = loads.take()
        {
            piece.push_str(&loads);
        }
        (!piece.is_empty()).then_some(piece)
    }))
}
