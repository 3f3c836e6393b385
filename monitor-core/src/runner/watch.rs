//! `watch`: every monitor on its frequency with spread start offsets and bounded
//! concurrency, `/metrics` for Prometheus, and a clean stop on Ctrl-C or SIGTERM.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch as signal;

pub use super::schedule::start_offset;
use super::schedule::{Cadence, Job, Outlet, Permits, schedule, stopped};
use crate::Engine;
use crate::report::{self, Counter};
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
            let samples = [("0.5", p50), ("0.99", p99), ("1", max)]
                .map(|(q, v)| (report::labels(&[("quantile", q)]), v.to_string()));
            report::family(
                &mut text,
                "monitor_schedule_lateness_seconds",
                "summary",
                "How late checks started against their schedule.",
                samples.to_vec(),
            );
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
    r.facts = Default::default();
    if let Some(e) = r.error.as_mut() {
        e.message = String::new();
        e.hints = Vec::new();
    }
    if let Some(tls) = r.tls.as_mut() {
        let first = monitor_spec::result::earliest_expiring(&tls.chain).cloned();
        tls.chain = first.into_iter().collect();
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
