//! `watch`: every monitor on its frequency with spread start offsets and bounded
//! concurrency, `/metrics` for Prometheus, and a clean stop on Ctrl-C or SIGTERM.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch as signal};
use tokio::time::{Instant, sleep_until};

use super::app::{EXIT_INVALID, EXIT_OK};
use super::report::{self, Counter};
use crate::Engine;
use crate::result::{CheckResult, Status};
use crate::validate::ValidMonitor;

/// How `watch` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many checks run at once.
    pub concurrency: usize,
    /// Where to serve `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Print results as JSON lines.
    pub json: bool,
}

/// The latest result and the check counts of every monitor.
#[derive(Debug, Default)]
pub struct State {
    latest: Mutex<HashMap<String, CheckResult>>,
    counts: Mutex<HashMap<(String, Status), u64>>,
    /// How late checks started against their schedule, in seconds (the most recent
    /// [`LATENESS_SAMPLES`]).
    lateness: Mutex<std::collections::VecDeque<f64>>,
}

/// How many lateness samples `watch` keeps for its quantiles.
pub const LATENESS_SAMPLES: usize = 100_000;

impl State {
    /// Records a result, keeping only what `/metrics` shows of it: with 100,000
    /// monitors the full results (attempts, excerpts, chains, hints) would cost hundreds
    /// of megabytes.
    pub fn record(&self, result: CheckResult) {
        let result = slim(result);
        if let Ok(mut counts) = self.counts.lock() {
            *counts
                .entry((result.id.clone(), result.status))
                .or_default() += 1;
        }
        if let Ok(mut latest) = self.latest.lock() {
            latest.insert(result.id.clone(), result);
        }
    }

    /// Records how late a check started.
    pub fn late(&self, seconds: f64) {
        if let Ok(mut l) = self.lateness.lock() {
            if l.len() == LATENESS_SAMPLES {
                l.pop_front();
            }
            l.push_back(seconds);
        }
    }

    /// Lateness quantiles (0.5, 0.99, 1.0) in seconds over the kept samples.
    pub fn lateness_quantiles(&self) -> Option<[f64; 3]> {
        let mut samples: Vec<f64> = self.lateness.lock().ok()?.iter().copied().collect();
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some([at(0.5), at(0.99), at(1.0)])
    }

    /// The Prometheus exposition of the latest results and the counters.
    pub fn metrics(&self) -> String {
        // Copy the (slim) results out so checks finishing meanwhile never wait for the
        // rendering.
        let latest: Vec<CheckResult> = self
            .latest
            .lock()
            .map(|l| l.values().cloned().collect())
            .unwrap_or_default();
        let mut results: Vec<&CheckResult> = latest.iter().collect();
        results.sort_by(|a, b| a.id.cmp(&b.id));
        let mut counters: Vec<Counter> = self
            .counts
            .lock()
            .map(|c| {
                c.iter()
                    .map(|((monitor, status), count)| Counter {
                        monitor: monitor.clone(),
                        status: *status,
                        count: *count,
                    })
                    .collect()
            })
            .unwrap_or_default();
        counters.sort_by(|a, b| (&a.monitor, a.status as u8).cmp(&(&b.monitor, b.status as u8)));
        let mut text = report::prometheus(&results, &counters);
        if let Some([p50, p99, max]) = self.lateness_quantiles() {
            text.push_str(&format!(
                "# HELP monitor_schedule_lateness_seconds How late checks started against their schedule.\n\
                 # TYPE monitor_schedule_lateness_seconds summary\n\
                 monitor_schedule_lateness_seconds{{quantile=\"0.5\"}} {p50}\n\
                 monitor_schedule_lateness_seconds{{quantile=\"0.99\"}} {p99}\n\
                 monitor_schedule_lateness_seconds{{quantile=\"1\"}} {max}\n"
            ));
        }
        text
    }
}

/// What `/metrics` needs of a result: verdict, error kind, timings, address, TLS version
/// and the certificate that expires first.
fn slim(mut r: CheckResult) -> CheckResult {
    r.name = String::new();
    r.attempts = Vec::new();
    r.assertions = Vec::new();
    r.response_excerpt = String::new();
    if let Some(e) = r.error.as_mut() {
        e.message = String::new();
        e.hints = Vec::new();
    }
    if let Some(tls) = r.tls.as_mut() {
        let first = tls.chain.iter().min_by_key(|c| c.not_after).cloned();
        tls.chain = first.into_iter().collect();
        tls.problems = Vec::new();
        tls.legacy = None;
    }
    r
}

/// Where in its interval a monitor starts: spread by a hash of its id, so monitors of one
/// frequency do not fire together and keep their place across restarts.
pub fn start_offset(id: &str, interval: Duration) -> Duration {
    // FNV-1a, stable across builds.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let nanos = interval.as_nanos().max(1);
    Duration::from_nanos(u64::try_from(u128::from(hash) % nanos).unwrap_or(0))
}

/// Runs until Ctrl-C or SIGTERM; returns the exit code.
pub async fn watch(monitors: Vec<ValidMonitor>, options: Options) -> u8 {
    let monitors: Vec<ValidMonitor> = monitors
        .into_iter()
        .filter(|m| m.spec().activated && !m.spec().test_only)
        .collect();
    let state = Arc::new(State::default());
    let (stop_tx, stop_rx) = signal::channel(false);
    let mut server = None;
    if let Some(addr) = options.metrics_listen {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let addr = listener.local_addr().unwrap_or(addr);
                eprintln!("serving metrics at http://{addr}/metrics");
                server = Some(tokio::spawn(serve_metrics(
                    listener,
                    state.clone(),
                    stop_rx.clone(),
                )));
            }
            Err(e) => {
                eprintln!("error: cannot listen on {addr} for metrics: {e}");
                return EXIT_INVALID;
            }
        }
    }
    eprintln!(
        "watching {} monitors; Ctrl-C or SIGTERM stops",
        monitors.len()
    );
    let limit = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let engine = Engine::new();
    let scheduler = tokio::spawn(schedule(
        monitors,
        engine,
        limit.clone(),
        state.clone(),
        stop_rx.clone(),
        options.json,
    ));
    stopped().await;
    eprintln!("stopping: finishing the checks in flight");
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    // Every permit back means every check in flight has finished.
    let permits = u32::try_from(options.concurrency.max(1)).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(Duration::from_secs(30), limit.acquire_many(permits)).await;
    if drained.is_err() {
        eprintln!("some checks were still running after 30 s and were cancelled");
    }
    if let Some(server) = server {
        let _ = server.await;
    }
    EXIT_OK
}

/// Waits for Ctrl-C or SIGTERM.
async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The schedule of every monitor: one task keeps the next start of each in a heap and
/// spawns each check as its own task at its time, so a slow check never delays the next
/// tick or other monitors, and 100,000 monitors cost no task or timer each. A monitor
/// whose previous check is still running or waiting for a slot skips a tick rather than
/// overlap itself.
async fn schedule(
    monitors: Vec<ValidMonitor>,
    engine: Engine,
    limit: Arc<Semaphore>,
    state: Arc<State>,
    mut stop: signal::Receiver<bool>,
    json: bool,
) {
    let start = Instant::now();
    let interval = |m: &ValidMonitor| Duration::from_secs(m.spec().frequency.as_secs());
    let busy: Arc<[AtomicBool]> = monitors.iter().map(|_| AtomicBool::new(false)).collect();
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = monitors
        .iter()
        .enumerate()
        .map(|(i, m)| Reverse((start + start_offset(&m.spec().id, interval(m)), i)))
        .collect();
    while let Some(&Reverse((next, _))) = due.peek() {
        tokio::select! {
            _ = sleep_until(next) => {}
            _ = stop.changed() => return,
        }
        let now = Instant::now();
        while let Some(&Reverse((at, i))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            state.late(now.saturating_duration_since(at).as_secs_f64());
            let monitor = &monitors[i];
            if !busy[i].swap(true, Ordering::AcqRel) {
                let (engine, this, state, limit, busy) = (
                    engine.clone(),
                    monitor.clone(),
                    state.clone(),
                    limit.clone(),
                    busy.clone(),
                );
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let permit = tokio::select! {
                        permit = limit.acquire_owned() => permit.ok(),
                        _ = stop.changed() => None,
                    };
                    if let Some(permit) = permit {
                        let result = engine.check(&this).await;
                        print_result(&result, json);
                        state.record(result);
                        drop(permit);
                    }
                    busy[i].store(false, Ordering::Release);
                });
            }
            let every = interval(monitor);
            let mut later = at + every;
            // After a stall longer than an interval, skip the missed ticks.
            if later < now {
                later = now + start_offset(&monitor.spec().id, every).min(every / 10);
            }
            due.push(Reverse((later, i)));
        }
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
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let state = state.clone();
            async move {
                // Rendering 100,000 monitors takes a while: keep it off the workers that
                // run the schedule.
                let text = tokio::task::spawn_blocking(move || state.metrics())
                    .await
                    .unwrap_or_default();
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    text,
                )
            }
        }),
    );
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("error: the metrics server stopped: {e}");
    }
}
