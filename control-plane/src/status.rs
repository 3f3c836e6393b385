//! Check results in and out: the body agents post (read, checked, turned into rows), the
//! status of a project (every deployed monitor with its latest result and uptime per
//! location), and a monitor's results.

use std::sync::Arc;

use monitor_spec::api::{
    History, HistoryEntry, LocationStatus, MonitorStatus, OpenWindow, Problem, ProjectStatus,
    ResultsRequest, Uptime,
};
use monitor_spec::maintenance::{ListedWindow, MaintenanceWindow};
use monitor_spec::{ProbeError, Status, Timings};
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::agents::check_name;
use crate::deployed::{Deployed, DeployedCache};
use crate::results::uptime_percent;
use crate::store::{LatestResult, NewResult, SeriesUptime, Store, StoreError, StoredResult};

/// The status of every project that `/metrics` and the page render, with when its
/// reading started: shared by the requests that read it at once, so that slow readers
/// hold one copy however many they are (`api::views` decides when it is current).
#[derive(Debug, Default)]
pub struct Snapshots(
    pub(crate) tokio::sync::Mutex<Option<(std::time::Instant, Arc<Vec<ProjectStatus>>)>>,
);

/// Unix microseconds of an instant (every `OffsetDateTime` fits).
pub fn unix_us(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).unwrap_or(i64::MAX)
}

/// RFC 3339 (UTC) of unix microseconds.
pub fn rfc3339_us(us: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Checks a posted batch and turns it into rows; every problem with its path otherwise.
pub fn check_results(
    request: &ResultsRequest,
    received_us: i64,
) -> Result<Vec<NewResult>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| problems.push(Problem { path, message });
    if let Err(e) = check_name("agent", &request.agent) {
        problem("agent".to_owned(), e);
    }
    if let Err(e) = check_name("location", &request.location) {
        problem("location".to_owned(), e);
    }
    let mut rows = Vec::with_capacity(request.results.len());
    for (i, r) in request.results.iter().enumerate() {
        if let Err(e) = monitor_spec::rules::check_id(&r.monitor) {
            problem(format!("results[{i}].monitor"), e);
        }
        if r.trigger.is_some() {
            // A triggered run's result is checked and kept by the trigger routes, never
            // stored here.
            continue;
        }
        if *r.result.id != *r.monitor {
            problem(
                format!("results[{i}].result.id"),
                format!(
                    "is `{}` but the result is for monitor `{}`",
                    r.result.id.escape_default(),
                    r.monitor.escape_default()
                ),
            );
        }
        let expected = format!("{}/{}/{}", r.monitor, request.location, r.tick);
        if r.id != expected {
            problem(
                format!("results[{i}].id"),
                format!(
                    "is `{}`; a result id is `{{monitor}}/{{location}}/{{tick}}`, here `{}`",
                    r.id.escape_default(),
                    expected.escape_default()
                ),
            );
        }
        let Ok(tick) = i64::try_from(r.tick) else {
            problem(
                format!("results[{i}].tick"),
                format!("{} is too large", r.tick),
            );
            continue;
        };
        let json = serde_json::to_string(&r.result).map_err(|e| {
            vec![Problem {
                path: format!("results[{i}].result"),
                message: format!("cannot be stored: {e}"),
            }]
        })?;
        rows.push(NewResult {
            id: r.id.clone(),
            monitor: r.monitor.clone(),
            location: request.location.clone(),
            agent: request.agent.clone(),
            tick,
            status: r.result.status,
            started_us: unix_us(r.result.started_at),
            received_us,
            facts: crate::results::facts_of(&r.result),
            json,
            // Marked by `maintenance::mark` against the windows, once the batch is checked.
            in_maintenance: false,
        });
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// The fields of a stored `CheckResult` the status shows; the others are ignored, so that
/// results stored by another version still read.
#[derive(Debug, Deserialize)]
struct ResultView {
    status: Status,
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(default)]
    error: Option<ProbeError>,
    #[serde(default)]
    timings: Timings,
    #[serde(default)]
    tls: Option<TlsView>,
}

#[derive(Debug, Deserialize)]
struct TlsView {
    #[serde(default, with = "time::serde::rfc3339::option")]
    earliest_expiry: Option<OffsetDateTime>,
    #[serde(default)]
    days_left: Option<i64>,
    #[serde(default)]
    chain: Vec<CertView>,
}

#[derive(Debug, Deserialize)]
struct CertView {
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
}

/// The uptime of checks and failures per window.
fn uptime_of(checks: [u64; 4], failures: [u64; 4]) -> Uptime {
    let p = |i: usize| uptime_percent(checks[i], failures[i]);
    Uptime {
        h24: p(0),
        d7: p(1),
        d30: p(2),
        d90: p(3),
    }
}

/// The status of a location from its latest result: read from the stored JSON when the
/// result did not pass (its error with the hints), from the typed facts otherwise.
fn location_status(latest: &LatestResult, uptime: &[SeriesUptime]) -> Option<LocationStatus> {
    let view = match &latest.json {
        Some(json) => match serde_json::from_str::<ResultView>(json) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(monitor = %latest.monitor, location = %latest.location, error = %e, "unreadable stored result");
                return None;
            }
        },
        None => view_of_facts(latest)?,
    };
    let cert_expiry = view.tls.as_ref().and_then(|t| {
        monitor_spec::result::first_expiry(t.earliest_expiry, t.chain.iter().map(|c| c.not_after))
    });
    Some(LocationStatus {
        location: latest.location.clone(),
        agent: latest.agent.clone(),
        status: view.status,
        started_at: view.started_at,
        error: view.error,
        timings: view.timings,
        days_left: view.tls.and_then(|t| t.days_left),
        consecutive_failures: latest.consecutive_failures,
        cert_expiry,
        uptime: uptime
            .iter()
            .find(|u| u.location == latest.location)
            .map(|u| uptime_of(u.checks, u.failures))
            .unwrap_or_default(),
        in_maintenance: latest.in_maintenance,
    })
}

/// What the status shows of a result, from its typed facts (a passed result: no error).
fn view_of_facts(latest: &LatestResult) -> Option<ResultView> {
    let f = &latest.facts;
    let ms = |us: i64| us as f64 / 1000.0;
    let started_at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(latest.started_us) * 1000).ok()?;
    let expiry = f
        .cert_expiry_s
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    Some(ResultView {
        status: latest.status,
        started_at,
        error: None,
        timings: Timings {
            dns_ms: f.dns_us.map(ms),
            connect_ms: f.connect_us.map(ms),
            tls_ms: f.tls_us.map(ms),
            first_byte_ms: f.first_byte_us.map(ms),
            total_ms: ms(f.total_us),
            client_cert_wait_ms: None,
            scheduling_delay_ms: None,
        },
        tls: expiry.map(|e| TlsView {
            earliest_expiry: Some(e),
            days_left: Some(monitor_spec::result::days_until(e, started_at)),
            chain: Vec::new(),
        }),
    })
}

/// The status of a project from its deployed monitors (sorted by id), latest results and
/// uptimes (both sorted by monitor and location), and its maintenance windows (declared
/// and ad hoc, marked by the flag).
pub fn project_status(
    project: &str,
    deployed: &[Deployed],
    latest: &[LatestResult],
    uptime: &[SeriesUptime],
    windows: &[(&MaintenanceWindow, bool)],
    now: OffsetDateTime,
) -> ProjectStatus {
    let monitors = deployed
        .iter()
        .map(|d| {
            let spec = &d.spec;
            let from = uptime.partition_point(|u| u.monitor.as_str() < d.id());
            let series: Vec<&SeriesUptime> = uptime[from..]
                .iter()
                .take_while(|u| u.monitor == d.id())
                .collect();
            let mut checks = [0u64; 4];
            let mut failures = [0u64; 4];
            for u in &series {
                for i in 0..4 {
                    checks[i] += u.checks[i];
                    failures[i] += u.failures[i];
                }
            }
            let series: Vec<SeriesUptime> = series.into_iter().cloned().collect();
            let start = latest.partition_point(|l| l.monitor.as_str() < d.id());
            let locations = latest[start..]
                .iter()
                .take_while(|l| l.monitor == d.id())
                .filter_map(|l| location_status(l, &series))
                .collect();
            MonitorStatus {
                id: spec.id.clone(),
                name: spec.name.clone(),
                muted: spec.muted,
                activated: spec.activated,
                run_parallel: spec.run_parallel,
                frequency: spec.frequency.as_str().to_owned(),
                alert_channels: spec.alert_channels.clone(),
                group: spec.group.clone(),
                tags: spec.tags.clone(),
                locations,
                uptime: uptime_of(checks, failures),
                maintenance: open_window(windows, spec, now),
            }
        })
        .collect();
    ProjectStatus {
        project: project.to_owned(),
        generated_at: now
            .format(&Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned()),
        monitors,
        agents: Vec::new(),
    }
}

/// The window open at `now` for a monitor, if any.
fn open_window(
    windows: &[(&MaintenanceWindow, bool)],
    spec: &monitor_spec::TcpMonitor,
    now: OffsetDateTime,
) -> Option<OpenWindow> {
    let (window, end) =
        crate::maintenance::open_for(windows.iter().map(|w| w.0), &spec.id, &spec.tags, now)?;
    Some(OpenWindow {
        id: window.id.clone(),
        name: window.display_name().to_owned(),
        ad_hoc: windows
            .iter()
            .any(|(w, ad_hoc)| *ad_hoc && std::ptr::eq(*w, window)),
        end,
    })
}

/// The status of a project, read from the store. Blocking.
pub fn read_status(
    store: &dyn Store,
    cache: &DeployedCache,
    project: &str,
) -> Result<ProjectStatus, StoreError> {
    read(store, cache, project).map(|read| read.status)
}

/// [`read_status`] with the maintenance windows it was judged against that are open or
/// will open again, as `GET .../maintenance` lists them: the windows are read once.
pub fn read_status_and_windows(
    store: &dyn Store,
    cache: &DeployedCache,
    project: &str,
) -> Result<(ProjectStatus, Vec<ListedWindow>), StoreError> {
    let read = read(store, cache, project)?;
    let listed = crate::maintenance::list(&read.declared, &read.ad_hoc, read.now).windows;
    Ok((read.status, listed))
}

/// A project's status and the windows it was judged against, at `now`.
struct Read {
    status: ProjectStatus,
    declared: Arc<Vec<MaintenanceWindow>>,
    ad_hoc: Vec<MaintenanceWindow>,
    now: OffsetDateTime,
}

fn read(store: &dyn Store, cache: &DeployedCache, project: &str) -> Result<Read, StoreError> {
    let (deployed, declared) = cache.with_windows(store, project)?;
    let latest = store.latest_results(project)?;
    let now = OffsetDateTime::now_utc();
    let uptime = store.uptime(project, unix_us(now))?;
    let ad_hoc = store.ad_hoc_windows(project, unix_us(now))?;
    let windows: Vec<(&MaintenanceWindow, bool)> = declared
        .iter()
        .map(|w| (w, false))
        .chain(ad_hoc.iter().map(|w| (w, true)))
        .collect();
    let status = project_status(project, &deployed, &latest, &uptime, &windows, now);
    Ok(Read {
        status,
        declared,
        ad_hoc,
        now,
    })
}

/// The JSON of a monitor's results: each stored result as it was stored, or, for a passed
/// result whose JSON was not kept, rebuilt from its typed columns
/// ([`crate::results::rebuild`]) with the deployed monitor's name and target (`deployed`,
/// empty when it is not deployed).
pub fn history_json(
    monitor: &str,
    deployed: Option<&Deployed>,
    rows: &[StoredResult],
) -> Result<String, StoreError> {
    let corrupt = |id: &str, what: String| StoreError::Corrupt(format!("result `{id}`: {what}"));
    let (name, target) = deployed.map_or((String::new(), String::new()), |d| {
        (d.spec.name.clone(), d.spec.target.to_string())
    });
    let rebuilt: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            r.json.is_none().then(|| {
                let result = crate::results::rebuild(
                    monitor,
                    &name,
                    &target,
                    r.status,
                    r.started_us,
                    &r.facts,
                );
                serde_json::to_string(&result).unwrap_or_else(|_| "null".to_owned())
            })
        })
        .collect();
    let results = rows
        .iter()
        .zip(&rebuilt)
        .map(|(r, rebuilt)| {
            let json = r.json.as_deref().or(rebuilt.as_deref()).unwrap_or("null");
            Ok(HistoryEntry {
                id: r.id.clone(),
                location: r.location.clone(),
                agent: r.agent.clone(),
                tick: u64::try_from(r.tick)
                    .map_err(|_| corrupt(&r.id, format!("tick {}", r.tick)))?,
                received_at: rfc3339_us(r.received_us),
                result: serde_json::from_str::<&RawValue>(json)
                    .map_err(|e| corrupt(&r.id, e.to_string()))?,
                in_maintenance: r.in_maintenance,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let history = History {
        monitor: monitor.to_owned(),
        results,
    };
    serde_json::to_string(&history).map_err(|e| corrupt(monitor, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microseconds() {
        for (text, us) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:01.5Z", 1_500_000),
            ("1969-12-31T23:59:59.9999995Z", -1),
            ("2025-03-01T12:00:00+01:00", 1_740_826_800_000_000),
        ] {
            let t = OffsetDateTime::parse(text, &Rfc3339).unwrap();
            assert_eq!(unix_us(t), us, "{text}");
        }
        assert_eq!(rfc3339_us(1_500_000), "1970-01-01T00:00:01.5Z");
    }
}
