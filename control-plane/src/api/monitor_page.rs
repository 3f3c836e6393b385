//! `GET /monitors/{id}`: one monitor's page; reads its history, latest results and spec
//! and renders them with [`crate::pages::monitor`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use monitor_spec::Status;

use super::error::ApiError;
use super::pages::html;
use super::query::QueryParams;
use super::state::{AppState, blocking};
use super::viewer::PrivatePage;
use super::views::{MAX_HISTORY_POINTS, Series, history_points};
use crate::pages::monitor::{self as page, Failure, MonitorPage, Range};
use crate::results::duration_us;
use crate::status;
use crate::store::{ResultQuery, Retention, Step, Store, StoreError};

/// The most failures the page lists.
const FAILURES: usize = 20;

/// The questions to ask the history for `range` at `now_us`, best first: the range's own
/// step, then wider ones, each only when its retention reaches back over the whole range
/// (with an hour to spare, so that the API asked the same question a little later still
/// answers it). The daily step is always there, from the oldest day kept at the latest.
pub(crate) fn plans(range: Range, now_us: i64, retention: &Retention) -> Vec<Series> {
    let span = range.span_us();
    let from_us = now_us - span;
    let hour = 3_600_000_000;
    let steps: &[Option<Step>] = match range.step() {
        None => &[None, Some(Step::Hour), Some(Step::Day)],
        Some(Step::Hour) => &[Some(Step::Hour), Some(Step::Day)],
        Some(Step::Day) => &[Some(Step::Day)],
    };
    let mut out = Vec::new();
    for step in steps {
        let kept = match step {
            None => retention.raw,
            Some(Step::Hour) => retention.hourly,
            Some(Step::Day) => retention.daily,
        };
        let reaches = duration_us(kept) >= span + hour;
        if reaches || *step == Some(Step::Day) {
            let oldest = now_us.saturating_sub(duration_us(kept)) + hour;
            out.push(Series {
                step: *step,
                from_us: if reaches {
                    from_us
                } else {
                    from_us.max(oldest)
                },
                to_us: now_us,
                location: None,
            });
        }
    }
    out
}

/// The failed and degraded raw results of `monitor`, newest first, at most [`FAILURES`]:
/// read window by window back from `now_us` (an hour, then four times wider each time)
/// down to `oldest_us`. Blocking.
fn last_failures(
    store: &dyn Store,
    project: &str,
    monitor: &str,
    now_us: i64,
    oldest_us: i64,
) -> Result<Vec<Failure>, StoreError> {
    const PAGE: u64 = 10_000;
    let mut found = Vec::new();
    let (mut end, mut width) = (now_us, 3_600_000_000_i64);
    while end > oldest_us && found.len() < FAILURES {
        let start = end.saturating_sub(width).max(oldest_us);
        let mut window = Vec::new();
        let mut cursor = start;
        loop {
            let rows = store.results(
                project,
                &ResultQuery {
                    monitor: monitor.to_owned(),
                    location: None,
                    from_us: Some(cursor),
                    to_us: Some(end),
                    limit: PAGE,
                },
            )?;
            let full = rows.len() as u64 >= PAGE;
            if let Some(last) = rows.last() {
                cursor = last.started_us;
            }
            window.extend(rows.into_iter().filter(|r| r.status != Status::Passed));
            if !full {
                break;
            }
        }
        found.extend(window.iter().rev().map(page::failure_of));
        end = start;
        width = width.saturating_mul(4);
    }
    found.truncate(FAILURES);
    Ok(found)
}

/// What the page of one monitor needs, read from the store. Blocking.
fn read(
    st: &AppState,
    project: &str,
    id: &str,
    range: Range,
    public: bool,
) -> Result<Option<String>, ApiError> {
    let store = &*st.store;
    let deployed = st.deployed.get(store, project)?;
    let Some(monitor) = deployed.iter().find(|d| d.id() == id) else {
        return Ok(None);
    };
    let project_status = status::read_status(store, &st.deployed, project)?;
    let now_us = status::unix_us(time::OffsetDateTime::now_utc());
    let mut chosen = None;
    for plan in plans(range, now_us, &st.options.retention) {
        let points = history_points(store, project, id, &plan)?;
        if points.len() as u64 <= MAX_HISTORY_POINTS {
            chosen = Some((plan, points));
            break;
        }
    }
    let (plan, points) = chosen.unwrap_or_else(|| {
        let mut plan = plans(range, now_us, &st.options.retention)
            .pop()
            .unwrap_or(Series {
                step: Some(Step::Day),
                from_us: now_us - range.span_us(),
                to_us: now_us,
                location: None,
            });
        // More daily points than the API answers: nothing is plotted rather than a part.
        plan.from_us = plan.to_us - 1;
        (plan, Vec::new())
    });
    let (chains, failures) = if public {
        (Vec::new(), Vec::new())
    } else {
        let latest = store.latest_results_full(project)?;
        let seen = latest
            .iter()
            .filter(|l| l.monitor == id)
            .map(|l| {
                let certs = l.json.as_deref().map(page::chain_of).unwrap_or_default();
                (l.location.clone(), certs)
            })
            .collect();
        let oldest = now_us.saturating_sub(duration_us(st.options.retention.raw));
        (
            page::group_chains(seen),
            last_failures(store, project, id, now_us, oldest)?,
        )
    };
    Ok(Some(page::render(&MonitorPage {
        project,
        public,
        range,
        spec: &monitor.spec,
        spec_json: monitor.json.get(),
        status: project_status.monitors.iter().find(|m| m.id == id),
        from_us: plan.from_us,
        to_us: plan.to_us,
        step: plan.step,
        points: &points,
        chains: &chains,
        failures: &failures,
    })))
}

pub(super) async fn monitor(
    State(st): State<AppState>,
    PrivatePage(viewer): PrivatePage,
    path: Result<Path<String>, PathRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = viewer.project.clone();
    let bad = |title: &str, message: String| {
        let body = page::problem(&project, viewer.public, title, &message);
        Ok(html(&headers, StatusCode::BAD_REQUEST, body))
    };
    let Ok(Path(id)) = path else {
        return bad("Bad request", "malformed path".to_owned());
    };
    let mut params = match QueryParams::parse(uri.query(), &["range", "project"]) {
        Ok(params) => params,
        Err(e) => return bad("Bad query", e.to_string()),
    };
    let range = match params.text("range") {
        None => Range::H24,
        Some(text) => match Range::parse(&text) {
            Some(range) => range,
            None => {
                let valid: Vec<&str> = Range::ALL.iter().map(|r| r.name()).collect();
                return bad(
                    "Bad range",
                    format!(
                        "bad query: range `{}` is not one of {}",
                        text.escape_default(),
                        valid.join(", ")
                    ),
                );
            }
        },
    };
    let (reader, who, monitor) = (st.clone(), project.clone(), id.clone());
    let public = viewer.public;
    let body = blocking(move || read(&reader, &who, &monitor, range, public)).await?;
    Ok(match body {
        Some(body) => html(&headers, StatusCode::OK, body),
        None => {
            let message = format!("project `{project}` has no monitor `{id}` deployed");
            let body = page::problem(&project, viewer.public, "No such monitor", &message);
            html(&headers, StatusCode::NOT_FOUND, body)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY: i64 = 86_400_000_000;
    const NOW: i64 = 1_764_950_400_000_000;

    fn steps(plans: &[Series]) -> Vec<Option<Step>> {
        plans.iter().map(|p| p.step).collect()
    }

    #[test]
    fn each_range_asks_the_history_its_own_step_first() {
        let retention = Retention::default();
        let day = plans(Range::H24, NOW, &retention);
        assert_eq!(steps(&day), [None, Some(Step::Hour), Some(Step::Day)]);
        assert!(day.iter().all(|p| p.from_us == NOW - DAY && p.to_us == NOW));
        assert_eq!(
            steps(&plans(Range::D30, NOW, &retention)),
            [Some(Step::Hour), Some(Step::Day)]
        );
        let quarter = plans(Range::D90, NOW, &retention);
        assert_eq!(steps(&quarter), [Some(Step::Day)]);
        assert_eq!(quarter[0].from_us, NOW - 90 * DAY);
    }

    #[test]
    fn a_short_retention_moves_to_a_wider_step() {
        let retention = Retention {
            raw: Duration::from_secs(12 * 3600),
            hourly: Duration::from_secs(3 * 86_400),
            daily: Duration::from_secs(30 * 86_400),
        };
        assert_eq!(
            steps(&plans(Range::H24, NOW, &retention)),
            [Some(Step::Hour), Some(Step::Day)]
        );
        assert_eq!(steps(&plans(Range::D7, NOW, &retention)), [Some(Step::Day)]);
        // The daily step is always asked, from the oldest day kept (plus an hour).
        let quarter = plans(Range::D90, NOW, &retention);
        assert_eq!(quarter[0].from_us, NOW - 30 * DAY + 3_600_000_000);
    }
}
