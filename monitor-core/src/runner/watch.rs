//! `watch`: every monitor on its frequency with spread start offsets and bounded
//! concurrency, `/metrics` for Prometheus (the process's families from the first scrape,
//! each monitor's once it was checked), and a clean stop on Ctrl-C or SIGTERM.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch as signal;

use super::http::{self, Limits};

use super::process_metrics::ProcessMetrics;
pub use super::process_metrics::{LATENESS_SAMPLES, METRICS_MAX_CONNECTIONS};
pub use super::schedule::start_offset;
use super::schedule::{Cadence, Job, Outlet, Permits, schedule, stopped};
use crate::Engine;
use crate::report;
use monitor_spec::result::{CheckResult, Status};
use monitor_spec::secret::SecretPolicy;
use monitor_spec::validate::ValidMonitor;

/// Why `watch` could not run.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The metrics address cannot be bound.
    #[error("cannot listen on {addr} for metrics: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it cannot be bound.
        source: std::io::Error,
    },
}

/// How `watch` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many checks run at once.
    pub concurrency: usize,
    /// Where to serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Print results as JSON lines.
    pub json: bool,
    /// Which secrets the monitors may name.
    pub secrets: SecretPolicy,
    /// The memory the checks in flight share, in bytes.
    pub memory_budget: u64,
}

/// The latest result and the check counts of every monitor.
#[derive(Debug, Default)]
pub struct State {
    monitors: Mutex<HashMap<String, Entry>>,
    /// Bumped by every result and lateness sample: a snapshot of the same generation
    /// is still current.
    generation: AtomicU64,
    /// The last snapshot, while a reader holds it, and its generation.
    last: Mutex<Option<(u64, Weak<Snapshot>)>>,
    /// What is scheduled and how late checks started against their schedule.
    process: ProcessMetrics,
}

/// A monitor's latest result (what `/metrics` shows of it) and its checks per status, in
/// the order of [`STATUSES`].
#[derive(Debug)]
struct Entry {
    latest: Arc<CheckResult>,
    counts: [u64; 3],
    /// Failed checks in a row up to the latest.
    failing: u64,
}

/// The statuses in the order `/metrics` counts them.
const STATUSES: [Status; 3] = [Status::Passed, Status::Degraded, Status::Failed];

/// How much of `/metrics` is rendered at a time, at the least.
const PIECE_BYTES: usize = 64 * 1024;

impl State {
    /// Records a result, keeping only what `/metrics` shows of it: with 100,000
    /// monitors the full results (attempts, excerpts, chains, hints) would cost hundreds
    /// of megabytes.
    pub fn record(&self, result: CheckResult) {
        let result = Arc::new(slim(result));
        self.generation.fetch_add(1, Ordering::Relaxed);
        let slot = STATUSES.iter().position(|s| *s == result.status);
        if let Ok(mut monitors) = self.monitors.lock() {
            let entry = monitors.entry(result.id.clone()).or_insert_with(|| Entry {
                latest: Arc::clone(&result),
                counts: [0; 3],
                failing: 0,
            });
            if let Some(slot) = slot {
                entry.counts[slot] += 1;
            }
            entry.failing = match result.status {
                Status::Failed => entry.failing.saturating_add(1),
                _ => 0,
            };
            entry.latest = result;
        }
    }

    /// Records how late a check started.
    pub fn late(&self, seconds: f64) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.process.late(seconds);
    }

    /// Counts a tick `monitor` skipped because its previous check was still running.
    pub fn overrun(&self, monitor: &str) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.process.overrun(monitor);
    }

    /// Records the scheduler's load over its last window.
    pub fn load(&self, load: &super::schedule::Load) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.process.set_load(load);
    }

    /// Records the monitors scheduled: `/metrics` shows how many, and how many checks
    /// are due per second.
    pub fn loaded(&self, monitors: &[ValidMonitor]) {
        self.generation.fetch_add(1, Ordering::Relaxed);
        let due = monitors
            .iter()
            .map(|m| 1.0 / m.spec().frequency.as_secs().max(1) as f64)
            .sum();
        self.process.set_loaded(monitors.len(), due);
    }

    /// Lateness quantiles (0.5, 0.99, 1.0) in seconds over the kept samples.
    pub fn lateness_quantiles(&self) -> Option<[f64; 3]> {
        self.process.lateness_quantiles()
    }

    /// What `/metrics` shows now: the latest results shared with the state (a pointer
    /// and the counts per monitor), so that a client reading slowly holds little.
    pub fn snapshot(&self) -> Snapshot {
        let mut monitors: Vec<(Arc<CheckResult>, [u64; 3], u64)> = self
            .monitors
            .lock()
            .map(|m| {
                m.values()
                    .map(|e| (Arc::clone(&e.latest), e.counts, e.failing))
                    .collect()
            })
            .unwrap_or_default();
        monitors.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Snapshot {
            monitors,
            process: self.process.render(),
        }
    }

    /// The current snapshot, shared with the readers of the last one when nothing was
    /// recorded since.
    pub fn shared_snapshot(&self) -> Arc<Snapshot> {
        let generation = self.generation.load(Ordering::Acquire);
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((g, weak)) = &*last
            && *g == generation
            && let Some(snapshot) = weak.upgrade()
        {
            return snapshot;
        }
        let snapshot = Arc::new(self.snapshot());
        *last = Some((generation, Arc::downgrade(&snapshot)));
        snapshot
    }

    /// The Prometheus exposition of the latest results and the counters, whole.
    pub fn metrics(&self) -> String {
        let mut pieces = MetricsPieces::new(Arc::new(self.snapshot()));
        let mut text = String::new();
        while let Some(piece) = pieces.next_piece(usize::MAX) {
            text.push_str(&piece);
        }
        text
    }
}

/// What `/metrics` renders: the process's families, then every monitor's latest result,
/// counts and failures in a row, sorted by id.
#[derive(Debug)]
pub struct Snapshot {
    monitors: Vec<(Arc<CheckResult>, [u64; 3], u64)>,
    /// The process's families ([`ProcessMetrics::render`]), a few hundred bytes.
    process: String,
}

impl report::Exposition for Snapshot {
    fn results(&self) -> usize {
        self.monitors.len()
    }
    fn result(&self, i: usize) -> &CheckResult {
        &self.monitors[i].0
    }
    fn counted(&self) -> usize {
        self.monitors.len()
    }
    fn counters(&self, i: usize) -> (&str, Vec<(Status, u64)>) {
        let (result, counts, _) = &self.monitors[i];
        let counts = STATUSES
            .into_iter()
            .zip(*counts)
            .filter(|(_, n)| *n > 0)
            .collect();
        (&result.id, counts)
    }
    fn consecutive_failures(&self, i: usize) -> Option<u64> {
        Some(self.monitors[i].2)
    }
}

/// `/metrics` of a snapshot rendered a piece at a time.
#[derive(Debug)]
pub struct MetricsPieces {
    snapshot: Arc<Snapshot>,
    text: report::PrometheusText,
    /// Whether the process's families, the first, are written.
    started: bool,
}

impl MetricsPieces {
    /// The text of `snapshot` from its start.
    pub fn new(snapshot: Arc<Snapshot>) -> MetricsPieces {
        MetricsPieces {
            snapshot,
            text: report::PrometheusText::default(),
            started: false,
        }
    }

    /// The next piece of at least `min` bytes (less for the last), or `None` at the end.
    pub fn next_piece(&mut self, min: usize) -> Option<String> {
        let mut piece = String::new();
        if !self.started {
            self.started = true;
            piece.push_str(&self.snapshot.process);
        }
        self.text.fill(&mut piece, &*self.snapshot, min);
        (!piece.is_empty()).then_some(piece)
    }
}

/// What `/metrics` needs of a result: verdict, error kind, timings, address, TLS version,
/// the server's certificate and the certificate that expires first.
fn slim(mut r: CheckResult) -> CheckResult {
    r.name = String::new();
    r.attempts = Vec::new();
    r.assertions = Vec::new();
    r.response_excerpt = String::new();
    r.facts = Default::default();
    if let Some(e) = r.error.as_mut() {
        e.message = String::new();
        e.hints = Vec::new();
    }
    if let Some(tls) = r.tls.as_mut() {
        let first = monitor_spec::result::earliest_expiring(&tls.chain).cloned();
        let leaf = tls
            .chain
            .first()
            .cloned()
            .filter(|l| Some(l) != first.as_ref());
        tls.chain = leaf.into_iter().chain(first).collect();
        tls.problems = Vec::new();
        tls.legacy = None;
    }
    r
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn watch(monitors: Vec<ValidMonitor>, options: Options) -> Result<(), WatchError> {
    let monitors: Vec<ValidMonitor> = monitors
        .into_iter()
        .filter(|m| m.spec().activated && !m.spec().test_only)
        .collect();
    let state = Arc::new(State::default());
    state.loaded(&monitors);
    let (stop_tx, stop_rx) = signal::channel(false);
    let mut server = None;
    if let Some(addr) = options.metrics_listen {
        match http::bind(addr).await {
            Ok(listener) => {
                let addr = listener.local_addr().unwrap_or(addr);
                eprintln!("serving metrics at http://{addr}/metrics");
                server = Some(tokio::spawn(serve_metrics(
                    listener,
                    state.clone(),
                    stop_rx.clone(),
                )));
            }
            Err(source) => return Err(WatchError::Listen { addr, source }),
        }
    }
    eprintln!(
        "watching {} monitors; Ctrl-C or SIGTERM stops",
        monitors.len()
    );
    let permits = Permits::new(options.concurrency);
    let engine = Engine::new()
        .with_secret_policy(options.secrets.clone())
        .with_memory_budget(options.memory_budget);
    let jobs = monitors
        .into_iter()
        .map(|monitor| Job {
            monitor,
            cadence: Cadence::Spread,
            retry_elsewhere: false,
        })
        .collect();
    let outlet = Arc::new(Printer {
        state: state.clone(),
        json: options.json,
    });
    let scheduler = tokio::spawn(schedule(
        jobs,
        None,
        engine,
        permits.clone(),
        outlet,
        stop_rx.clone(),
    ));
    stopped().await;
    eprintln!("stopping: finishing the checks in flight");
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    // Every permit back means every check in flight has finished.
    if !permits.drain(Duration::from_secs(30)).await {
        eprintln!("some checks were still running after 30 s and were cancelled");
    }
    if let Some(server) = server {
        let _ = server.await;
    }
    Ok(())
}

/// `watch`'s outlet: print each result and keep what `/metrics` shows.
struct Printer {
    state: Arc<State>,
    json: bool,
}

impl Outlet for Printer {
    fn late(&self, seconds: f64) {
        self.state.late(seconds);
    }
    fn overrun(&self, monitor: &str) {
        self.state.overrun(monitor);
    }
    fn load(&self, load: &super::schedule::Load) {
        self.state.load(load);
    }
    fn result(&self, _tick: u64, result: CheckResult) {
        print_result(&result, self.json);
        self.state.record(result);
    }
}

fn print_result(r: &CheckResult, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(r) {
            println!("{line}");
        }
        return;
    }
    let status = match r.status {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    };
    let at = r
        .started_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    match &r.error {
        None => println!("{at} {status:<8} {} {:.1} ms", r.id, r.timings.total_ms),
        Some(e) => println!(
            "{at} {status:<8} {} {:.1} ms {}: {}",
            r.id,
            r.timings.total_ms,
            e.kind.as_str(),
            e.message
        ),
    }
}

async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut stop: signal::Receiver<bool>,
) {
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    serve(
        listener,
        state,
        Limits {
            max_connections: METRICS_MAX_CONNECTIONS,
            ..Limits::default()
        },
        shutdown,
    )
    .await;
}

/// Serves `/metrics` of `state` on `listener` within `limits` until `shutdown`, then
/// finishes the scrapes in flight. Each scrape renders a [`Snapshot`] a piece at a time
/// as its client reads.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use axum::response::IntoResponse as _;
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move |request: axum::http::HeaderMap| {
            let state = state.clone();
            async move {
                // Sorting 100,000 monitors takes a while: keep it off the workers that
                // run the schedule.
                let Ok(snapshot) =
                    tokio::task::spawn_blocking(move || state.shared_snapshot()).await
                else {
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                };
                let mut pieces = MetricsPieces::new(snapshot);
                http::metrics_response(&request, move || pieces.next_piece(PIECE_BYTES))
            }
        }),
    );
    http::serve(listener, app, limits, shutdown).await;
}
