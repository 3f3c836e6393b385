//! `watch`: every monitor on its frequency with spread start offsets and bounded
//! concurrency, `/metrics` for Prometheus (the process's families from the first scrape,
//! each monitor's once it was checked), and a clean stop on Ctrl-C or SIGTERM.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch as signal;

use super::http::{self, Limits};

pub use super::process_metrics::{LATENESS_SAMPLES, METRICS_MAX_CONNECTIONS};
pub use super::schedule::start_offset;
use super::schedule::{Cadence, Held, Job, Outlet, Permits, Shelving, schedule, stopped};
pub use super::slots::{MetricsPieces, SLOTS_PER_COPY, State};
use crate::Engine;
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

/// The monitors `watch` runs, added one at a time (as a bundle is read): those cheap to
/// rebuild at each check are shelved at once, and their validated form dropped, so that
/// a million of them never exist validated all at once, not even while they are read.
/// Monitors deactivated or only for tests are left out.
#[derive(Debug, Default)]
pub struct Watchlist {
    shelving: Shelving,
}

impl Watchlist {
    /// An empty list.
    pub fn new() -> Self {
        Watchlist::default()
    }

    /// Adds `monitor`, unless it is deactivated or only for tests.
    pub fn add(&mut self, monitor: ValidMonitor) {
        if monitor.spec().activated && !monitor.spec().test_only {
            self.shelving.push(monitor);
        }
    }

    /// How many monitors it holds.
    pub fn len(&self) -> usize {
        self.shelving.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of them are shelved (the others are kept validated).
    pub fn shelved(&self) -> usize {
        self.shelving.shelved()
    }

    /// The monitors as the schedule holds them, in the order they were added, and the
    /// shelf's size in bytes.
    fn finish(self) -> (Vec<Held>, usize) {
        self.shelving.finish()
    }
}

impl FromIterator<ValidMonitor> for Watchlist {
    fn from_iter<I: IntoIterator<Item = ValidMonitor>>(monitors: I) -> Self {
        let mut list = Watchlist::new();
        for monitor in monitors {
            list.add(monitor);
        }
        list
    }
}

impl From<Vec<ValidMonitor>> for Watchlist {
    fn from(monitors: Vec<ValidMonitor>) -> Self {
        monitors.into_iter().collect()
    }
}

/// Runs until Ctrl-C or SIGTERM.
pub async fn watch(monitors: impl Into<Watchlist>, options: Options) -> Result<(), WatchError> {
    // The set never changes: the monitors cheap to rebuild were shelved as they were
    // added, each rebuilt when its check starts, and the memory they were read into goes
    // back to the system.
    let shelving = std::time::Instant::now();
    let (held, shelved) = monitors.into().finish();
    monitor_sys::release_free_memory();
    tracing::info!(
        monitors = held.len(),
        shelved_bytes = shelved,
        seconds = shelving.elapsed().as_secs_f64(),
        "monitors shelved and the start-up memory given back"
    );
    let state = Arc::new(State::default());
    state.loaded_each(held.iter().map(|h| (h.id(), h.frequency())));
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
    eprintln!("watching {} monitors; Ctrl-C or SIGTERM stops", held.len());
    let permits = Permits::new(options.concurrency);
    let engine = Engine::new()
        .with_secret_policy(options.secrets.clone())
        .with_memory_budget(options.memory_budget);
    let jobs = held
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

/// How much of `/metrics` is rendered at a time, at the least.
const PIECE_BYTES: usize = 64 * 1024;

/// Serves `/metrics` of `state` on `listener` within `limits` until `shutdown`, then
/// finishes the scrapes in flight. Each scrape renders [`MetricsPieces`] of at least 64 KiB
/// on a blocking thread ([`super::metrics_body`]), copying [`SLOTS_PER_COPY`] monitors'
/// slots at a time under the lock that recording a result takes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/metrics",
        get(move |request: axum::http::HeaderMap| {
            let mut pieces = MetricsPieces::new(state.clone());
            async move {
                super::metrics_body::response(&request, move || pieces.next_piece(PIECE_BYTES))
            }
        }),
    );
    http::serve(listener, app, limits, shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_spec::bundle::Bundle;
    use monitor_spec::spec::{Frequency, TcpMonitor};

    #[test]
    fn a_bundle_read_into_a_watchlist_shelves_the_plain_monitors_only() {
        let plain = TcpMonitor::new("a-plain", "127.0.0.1", 6379)
            .send("PING\\r\\n")
            .expect("+PONG")
            .frequency(Frequency::M5);
        let tls = TcpMonitor::new("b-tls", "127.0.0.1", 443).tls_direct();
        let regex = TcpMonitor::new("c-regex", "127.0.0.1", 1).expect_regex("^OK [0-9]+");
        let slow = TcpMonitor::new("d-slow", "127.0.0.1", 2).timeouts(1_000, 1_000, 60_000);
        let mut off = TcpMonitor::new("e-off", "127.0.0.1", 3);
        off.activated = false;
        let mut test_only = TcpMonitor::new("f-test-only", "127.0.0.1", 4);
        test_only.test_only = true;
        let specs = [plain, tls, regex, slow, off, test_only];
        let text = Bundle::new(specs.to_vec()).to_json();

        let mut list = Watchlist::new();
        Bundle::read_valid_each(text.as_bytes(), |m| list.add(m)).expect("a valid bundle");
        assert_eq!((list.len(), list.shelved()), (4, 2));
        let (held, bytes) = list.finish();
        assert!(bytes > 0);
        let kinds: Vec<(&str, bool)> = held
            .iter()
            .map(|h| (h.id(), matches!(h, Held::Shelved { .. })))
            .collect();
        assert_eq!(
            kinds,
            [
                ("a-plain", true),
                ("b-tls", false),
                ("c-regex", false),
                ("d-slow", true),
            ]
        );
        // Each is the monitor the bundle declared, with what the schedule reads of it.
        for (h, spec) in held.iter().zip(&specs) {
            let valid = spec.validate().expect("valid");
            assert_eq!(h.monitor().expect("rebuilt").spec(), valid.spec());
            assert_eq!(h.frequency(), spec.frequency);
            assert_eq!(h.slow(), super::super::schedule::is_slow(&valid));
        }
        assert!(held[3].slow());
    }
}
