//! `agent`: runs the monitors a control plane assigns to this agent and uploads their
//! results (control-plane/API.md, "Agents, results, status").
//!
//! - `--control-plane` takes one URL or several replicas' URLs, comma-separated (at most
//!   16): the agent talks to one at a time, for both the assignment poll and the uploads,
//!   and moves to the next (back around the list, logging the switch) when a request to it
//!   fails to connect, times out, breaks off or gets a 5xx; it tries each of the list at
//!   once before it backs off. A batch posted again to another replica is not stored
//!   twice: the control plane ignores result ids it holds.
//! - Assignments come by long poll (`GET /v1/agent/assignments` with `If-None-Match` and
//!   `wait`); on errors the agent backs off from 1 s doubling to 30 s, logging a line when
//!   the state changes, not on every retry. The last assignment is saved in the buffer
//!   dir, so an agent restarted while the control plane is down runs the set it had.
//! - The monitors run on `watch`'s scheduler, at the wall-clock instants
//!   `k * interval_ms + phase_ms` with `k % every == index`; a new assignment replaces
//!   the schedule without stopping the checks in flight.
//! - Every result is appended (and synced) to a disk buffer before any upload attempt,
//!   uploaded in batches (`POST /v1/agent/results`) and removed only after a 200. Past
//!   `buffer_max` results the oldest are dropped and counted. A batch refused with a 4xx
//!   that retrying cannot fix (400, 422, ...) is logged and dropped; 401, 403, 404, 408,
//!   429 and 5xx are retried with backoff; 413 halves the batch.
//! - Monitors get only the secrets the agent's policy hands out: environment variables
//!   starting with `--secret-env-prefix` (default `MONITORS_SECRET_`, never
//!   `MONITORS_AGENT_TOKEN`) and files under `--secret-dir` (none without it); a monitor
//!   naming anything else fails with kind `config` before it connects.
//! - Checks that may run over 30 s hold at most half the `--concurrency` permits; a new
//!   assignment cancels the checks in flight of the monitors it removes or changes; the
//!   checks in flight share `--memory-budget` (each reserves its `max_response_bytes`).
//! - The offset of this machine's clock to the control plane's is taken from the `Date`
//!   of each quick response (warned about past 2 minutes), kept in the summary and, with
//!   `--metrics-file`, written with the agent's counters for a Prometheus textfile
//!   collector every 10 s; `--metrics-listen ADDR` serves the same text at
//!   `http://ADDR/metrics` from the start, before any assignment, with `watch`'s limits.
//!   Both begin with the process's families (build info, monitors assigned, checks due
//!   per second, schedule lateness).
//! - Every minute the scheduler's load (checks due against checks started) goes with
//!   each poll and upload in the header `monitors-agent-load`, so the control plane shows
//!   an overloaded agent ("overloaded: short by N checks/s"); the agent logs its own
//!   line and gauges too.
//! - A monitor whose assignment says `retry_elsewhere` (`retry.same_region = false`,
//!   more than one location) hands a failed first attempt to the control plane for the
//!   next location (`POST /v1/agent/retries`) and uploads nothing for that tick; the
//!   agent long polls the checks handed to its location (`GET /v1/agent/retries`), runs
//!   their remaining attempts and uploads one result. If the handoff fails, the agent
//!   retries the check itself (see `retries`). Every attempt says where it ran.
//! - The same poll (`triggers=true`) brings triggered runs (`cargo xtask trigger`): each
//!   runs once at once, outside the schedule (no tick moves), and its result goes up with
//!   its trigger id, never as a scheduled result.
//! - On Ctrl-C or SIGTERM: scheduling stops, the checks in flight finish (up to 30 s)
//!   and are buffered, one last upload is tried (up to 5 s), and the agent exits 0.
//!
//! The buffer dir (`--buffer-dir`, default `$XDG_STATE_HOME/monitors-agent/ID` when
//! `XDG_STATE_HOME` is set, else `./monitors-agent/ID`) holds `lock` (held while an
//! agent runs, so two agents never share it), `assignment.json` (the last assignment, as
//! received) and `results/`: segment files `NNNNNNNNNNNNNNNNNNNN.jsonl` (a sequence number)
//! of at most 1000 results, one JSON `ResultIn` per line, appended and synced, never
//! appended to by a later process (so a line torn by a crash is the last of its segment,
//! and skipped), and `cursor` (`SEQ INDEX`: the first result not yet delivered, replaced
//! atomically).
#![allow(clippy::print_stderr)]

mod api;
mod assignment;
mod buffer;
mod clock;
mod retries;
mod shared;
mod sync;

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use tokio::sync::{Notify, mpsc, watch as signal};
use tracing::instrument::WithSubscriber;
use tracing::{info, warn};

use self::api::Api;
use self::assignment::read_assignment;
use self::buffer::Buffer;
use self::retries::{Retrying, retry_loop};
use self::shared::Shared;
use self::sync::{metrics_loop, poll_loop, upload_all, upload_loop, write_loop, write_metrics};
use super::process_metrics::{self, ProcessMetrics};
use super::schedule::{self, Outlet};
use crate::Engine;
use monitor_spec::result::CheckResult;

pub use self::api::{MAX_CONTROL_PLANES, control_planes};
pub use self::buffer::SEGMENT_RECORDS;
pub use self::clock::{CLOCK_WARN, MAX_SAMPLE_ROUND_TRIP, clock_offset, parse_http_date};
pub use monitor_spec::api::{AssignedMonitor, Assignment, ResultIn};
use monitor_spec::secret::SecretPolicy;

/// The environment variable holding the agent's token.
pub const TOKEN_ENV: &str = "MONITORS_AGENT_TOKEN";

/// How an agent runs.
#[derive(Clone)]
pub struct Options {
    /// The control plane's base URL, such as `https://monitors.example.com`, or several
    /// replicas' URLs separated by commas (see [`control_planes`]).
    pub control_plane: String,
    /// This agent's location.
    pub location: String,
    /// The agent token (never printed).
    pub token: String,
    /// The agent's id, stable across restarts so that rendezvous hashing keeps its
    /// monitors.
    pub id: String,
    /// Where results wait for upload and the last assignment is kept.
    pub buffer_dir: PathBuf,
    /// Results buffered at most; beyond, the oldest are dropped.
    pub buffer_max: u64,
    /// Results per upload at most.
    pub batch_max: usize,
    /// How long an assignment poll waits for a change (0–60 s).
    pub poll_wait: Duration,
    /// How many checks run at once.
    pub concurrency: usize,
    /// The longest wait between retries (the first is 1 s, then doubling).
    pub backoff_max: Duration,
    /// How long a stop waits for the checks in flight.
    pub drain_timeout: Duration,
    /// How long a stop tries to upload what is buffered.
    pub final_upload_timeout: Duration,
    /// Where the agent's `tracing` events go: the default subscriber when `None` (tests
    /// give each agent its own).
    pub logs: Option<tracing::Dispatch>,
    /// Which secrets the monitors may name.
    pub secrets: SecretPolicy,
    /// The memory the checks in flight share, in bytes.
    pub memory_budget: u64,
    /// Where to write the agent's metrics (Prometheus text) every 10 s, if anywhere.
    pub metrics_file: Option<PathBuf>,
    /// Where to serve the agent's metrics at `/metrics`, if anywhere.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("control_plane", &self.control_plane)
            .field("location", &self.location)
            .field("token", &"<redacted>")
            .field("id", &self.id)
            .field("buffer_dir", &self.buffer_dir)
            .field("buffer_max", &self.buffer_max)
            .field("batch_max", &self.batch_max)
            .field("poll_wait", &self.poll_wait)
            .field("concurrency", &self.concurrency)
            .field("backoff_max", &self.backoff_max)
            .field("drain_timeout", &self.drain_timeout)
            .field("final_upload_timeout", &self.final_upload_timeout)
            .field("secrets", &self.secrets)
            .field("memory_budget", &self.memory_budget)
            .field("metrics_file", &self.metrics_file)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

impl Options {
    /// The defaults: id [`default_id`], buffer dir [`default_buffer_dir`], 100,000
    /// results buffered, batches of 500, 20 s polls, 64 checks at once, backoff up to
    /// 30 s, 30 s for the checks in flight and 5 s for the last upload at a stop; secrets
    /// from variables starting with `MONITORS_SECRET_` and no file
    /// ([`SecretPolicy::agent`]), a memory budget of 256 MiB, no metrics file and no
    /// metrics server.
    pub fn new(
        control_plane: impl Into<String>,
        location: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        let location = location.into();
        let id = default_id(&location);
        Options {
            control_plane: control_plane.into(),
            buffer_dir: default_buffer_dir(&id),
            id,
            location,
            token: token.into(),
            buffer_max: 100_000,
            batch_max: 500,
            poll_wait: Duration::from_secs(20),
            concurrency: 64,
            backoff_max: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(30),
            final_upload_timeout: Duration::from_secs(5),
            logs: None,
            secrets: SecretPolicy::agent(None, None),
            memory_budget: crate::engine::DEFAULT_MEMORY_BUDGET,
            metrics_file: None,
            metrics_listen: None,
        }
    }

    fn check(&self) -> Result<(), AgentError> {
        let name = |what: &str, value: &str| {
            if valid_name(value) {
                Ok(())
            } else {
                Err(AgentError(format!(
                    "{what} `{value}` is not valid: use 1 to 64 characters of A-Z, a-z, 0-9, `.`, `_` and `-`"
                )))
            }
        };
        name("location", &self.location)?;
        name("agent id", &self.id)?;
        if self.token.trim().is_empty() {
            return Err(AgentError("the agent token is empty".to_owned()));
        }
        if self.poll_wait > Duration::from_secs(60) {
            return Err(AgentError(
                "the poll wait must be 0 to 60 seconds".to_owned(),
            ));
        }
        if self.secrets.env_prefix.as_deref() == Some("") {
            return Err(AgentError(
                "the secret env prefix must not be empty: it would hand every environment variable to the monitors".to_owned(),
            ));
        }
        if let monitor_spec::secret::FileAccess::Under(dir) = &self.secrets.files {
            crate::cli::limits::secret_dir(dir).map_err(AgentError)?;
        }
        if self.buffer_max == 0 || self.batch_max == 0 || self.concurrency == 0 {
            return Err(AgentError(
                "the buffer size, batch size and concurrency must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Agent ids and locations: 1–64 characters of `[A-Za-z0-9._-]`, as monitors' locations.
fn valid_name(s: &str) -> bool {
    monitor_spec::rules::check_place(s).is_ok()
}

/// The default agent id: this host's name and the location, `HOST-LOCATION`, with
/// characters an id cannot hold replaced by `-` and the host name shortened to fit 64.
pub fn default_id(location: &str) -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "agent".to_owned());
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let location = clean(location);
    let room = 64usize.saturating_sub(location.len() + 1).max(1);
    let host: String = clean(&host).chars().take(room).collect();
    format!("{host}-{location}")
}

/// The default buffer dir: `$XDG_STATE_HOME/monitors-agent/ID` when `XDG_STATE_HOME` is
/// set to an absolute path, else `monitors-agent/ID` under the current directory.
pub fn default_buffer_dir(id: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_default();
    base.join("monitors-agent").join(id)
}

/// An agent that could not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AgentError(String);

/// What an agent did, when it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Results the control plane accepted (duplicates included).
    pub uploaded: u64,
    /// Of those, duplicates it already had.
    pub duplicates: u64,
    /// Results in batches the control plane refused for good (given up).
    pub rejected: u64,
    /// Results dropped, oldest first, because the buffer was full.
    pub dropped: u64,
    /// Results that could not be written to the buffer.
    pub lost: u64,
    /// Results still waiting in the buffer.
    pub buffered: u64,
    /// The control plane's clock minus this machine's at the last quick response, in
    /// milliseconds (none when no response carried a `Date`).
    pub clock_offset_ms: Option<i64>,
}

/// The results waiting in an agent's buffer dir, oldest first (for inspection; the
/// running agent is not disturbed).
pub fn buffered_results(buffer_dir: &Path) -> io::Result<Vec<ResultIn>> {
    Ok(buffer::read_all(&buffer_dir.join("results"))?
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// The outlet of the agent's schedule: each result becomes a `ResultIn` line for the
/// buffer writer.
struct Buffering {
    shared: Arc<Shared>,
    /// Buffers results, and hands failed first attempts to other locations.
    retrying: Arc<Retrying>,
}

impl Outlet for Buffering {
    fn late(&self, seconds: f64) {
        self.shared.process.late(seconds);
    }
    fn overrun(&self, monitor: &str) {
        self.shared.process.overrun(monitor);
    }
    fn load(&self, load: &super::schedule::Load) {
        self.shared.process.set_load(load);
        self.shared.api.set_load(load);
    }
    fn result(&self, tick: u64, result: CheckResult) {
        self.retrying.buffer(tick, result);
    }
    fn handoff(&self, tick: u64, monitor: &crate::ValidMonitor, result: CheckResult) {
        self.retrying.handoff(tick, monitor.clone(), result);
    }
}

/// The CLI arguments of `agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The control plane's URL, such as https://monitors.example.com, or several
    /// replicas' URLs separated by commas (at most 16): the agent talks to one at a time
    /// and moves to the next when one fails to connect, times out or answers 5xx
    #[arg(long, env = "MONITORS_CONTROL_PLANE", value_name = "URL[,URL...]")]
    control_plane: String,
    /// The location this agent runs monitors for
    #[arg(long, env = "MONITORS_LOCATION", value_name = "NAME")]
    location: String,
    /// The agent's id; keep it stable across restarts so that it keeps its monitors
    /// [default: HOSTNAME-LOCATION]
    #[arg(long, env = "MONITORS_ID")]
    id: Option<String>,
    /// Where results wait for upload and the last assignment is kept [default:
    /// $XDG_STATE_HOME/monitors-agent/ID when XDG_STATE_HOME is set, else
    /// ./monitors-agent/ID]
    #[arg(long, env = "MONITORS_BUFFER_DIR", value_name = "DIR")]
    buffer_dir: Option<PathBuf>,
    /// Results kept at most while the control plane is unreachable; beyond, the oldest
    /// are dropped
    #[arg(long, env = "MONITORS_BUFFER_MAX", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    buffer_max: u64,
    /// Results per upload at most
    #[arg(long, env = "MONITORS_BATCH_MAX", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_max: u64,
    /// Seconds an assignment poll waits for a change (long poll)
    #[arg(long, env = "MONITORS_POLL_WAIT", value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=60))]
    poll_wait: u64,
    /// How many checks run at once; checks that may run over 30 s (timeouts.total_ms
    /// times 1 + retry.max_retries) hold at most half of them
    #[arg(long, env = "MONITORS_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    concurrency: u64,
    /// Hand monitors only environment variables starting with PREFIX (a Redis recipe's
    /// password_env); MONITORS_AGENT_TOKEN never
    #[arg(long, env = "MONITORS_SECRETS_ENV_PREFIX", value_name = "PREFIX", default_value = monitor_spec::secret::DEFAULT_SECRET_ENV_PREFIX)]
    secret_env_prefix: String,
    /// Hand monitors only files under DIR (tls.ca, tls.client_cert), named relative to
    /// it, links resolved and kept inside [default: none, no file at all]
    #[arg(long, env = "MONITORS_SECRETS_DIR", value_name = "DIR")]
    secret_dir: Option<PathBuf>,
    /// Memory the checks in flight share: each reserves its max_response_bytes before it
    /// runs, and a monitor whose cap alone is larger fails with kind config (bytes, or
    /// with KiB, MiB or GiB)
    #[arg(long, env = "MONITORS_MEMORY_BUDGET", value_name = "SIZE", default_value = "256MiB", value_parser = crate::cli::limits::parse_size)]
    memory_budget: u64,
    /// Write the agent's metrics (monitors_agent_clock_offset_seconds, results
    /// uploaded, buffered, dropped, rejected) to FILE every 10 s, in the Prometheus text
    /// format of node_exporter's textfile collector
    #[arg(long, env = "MONITORS_METRICS_FILE", value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Serve the agent's metrics (the process's and monitors_agent_*) at
    /// http://ADDR/metrics, with watch's limits: at most 64 connections (the next is
    /// answered 503), a request head within 10 s of its first byte, a body within 60 s,
    /// and a connection idle or not reading its answer for 60 s is closed
    #[arg(long, env = "MONITORS_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Read the agent's token from FILE (such as systemd's credential %d/agent-token)
    /// instead of MONITORS_AGENT_TOKEN: at most 4 KiB, surrounding whitespace ignored
    #[arg(long, value_name = "FILE", env = "MONITORS_AGENT_TOKEN_FILE")]
    token_file: Option<PathBuf>,
}

/// The most bytes `--token-file` may hold (tokens are 64 characters or so).
pub const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// `monitors agent`: the token from `--token-file` or [`TOKEN_ENV`], runs until Ctrl-C or
/// SIGTERM.
pub(crate) async fn command(args: AgentArgs) -> Result<Summary, AgentError> {
    let token = match (&args.token_file, std::env::var(TOKEN_ENV)) {
        (Some(path), _) => read_token_file(path)?,
        (None, Ok(t)) if !t.trim().is_empty() => t,
        _ => {
            return Err(AgentError(format!(
                "set {TOKEN_ENV} to the agent's token, or give --token-file"
            )));
        }
    };
    let mut options = Options::new(args.control_plane, args.location, token);
    if let Some(id) = args.id {
        options.buffer_dir = default_buffer_dir(&id);
        options.id = id;
    }
    if let Some(dir) = args.buffer_dir {
        options.buffer_dir = dir;
    }
    options.buffer_max = args.buffer_max;
    options.batch_max = usize::try_from(args.batch_max).unwrap_or(usize::MAX);
    options.poll_wait = Duration::from_secs(args.poll_wait);
    options.concurrency = usize::try_from(args.concurrency).unwrap_or(usize::MAX);
    options.secrets = SecretPolicy::agent(Some(args.secret_env_prefix), args.secret_dir);
    options.memory_budget = args.memory_budget;
    options.metrics_file = args.metrics_file;
    options.metrics_listen = args.metrics_listen;
    run(options, schedule::stopped()).await
}

/// Runs an agent until `shutdown` completes, then stops cleanly (see the module
/// documentation). Fails only when it cannot start: invalid options, or a buffer dir it
/// cannot use.
pub async fn run(
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, AgentError> {
    match options.logs.clone() {
        Some(logs) => run_logged(options, shutdown).with_subscriber(logs).await,
        None => run_logged(options, shutdown).await,
    }
}

/// [`run`], its events going to the current subscriber, which its tasks inherit.
async fn run_logged(
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, AgentError> {
    options.check()?;
    let dir = options.buffer_dir.clone();
    let cannot =
        |what: &str, e: &dyn fmt::Display| AgentError(format!("{what} {}: {e}", dir.display()));
    std::fs::create_dir_all(&dir).map_err(|e| cannot("cannot create the buffer dir", &e))?;
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|e| cannot("cannot open the lock of the buffer dir", &e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(AgentError(format!(
                "another agent is using the buffer dir {}",
                dir.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(cannot("cannot lock the buffer dir", &e));
        }
    }
    let results_dir = dir.join("results");
    let max = options.buffer_max;
    let (buffer, opened) = tokio::task::spawn_blocking(move || Buffer::open(&results_dir, max))
        .await
        .map_err(|e| cannot("cannot open the buffer", &e))?
        .map_err(|e| cannot("cannot open the buffer", &e))?;
    if opened.skipped > 0 {
        info!(
            "skipped {} torn or unreadable lines in the buffer",
            opened.skipped
        );
    }
    if opened.dropped > 0 {
        warn!(
            "dropped {} oldest buffered results (buffer full at {}; {} dropped in all)",
            opened.dropped,
            buffer.max(),
            buffer.dropped
        );
    }
    let waiting = buffer.len();
    let api = Api::new(
        &options.control_plane,
        &options.token,
        &options.id,
        &options.location,
    )
    .map_err(AgentError)?;
    info!(
        "agent {} in {}: control plane {}, buffer {} ({waiting} results waiting)",
        options.id,
        options.location,
        options.control_plane,
        dir.display()
    );
    // The last assignment received, to run until the control plane answers.
    let mut etag = None;
    let mut initial = Vec::new();
    match read_saved(&dir.join("assignment.json")) {
        Ok(body) => match read_assignment(&body) {
            Ok((tag, jobs, _)) => {
                info!(
                    "running the saved assignment {tag} ({} monitors) until the control plane answers",
                    jobs.len()
                );
                etag = Some(tag);
                initial = jobs;
            }
            Err(e) => warn!("ignoring the saved assignment: {e}"),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => warn!("ignoring the saved assignment: {e}"),
    }

    let shared = Arc::new(Shared {
        api,
        buffer: Mutex::new(buffer),
        appended: Notify::new(),
        dir: dir.clone(),
        batch: AtomicUsize::new(options.batch_max),
        backoff_max: options.backoff_max,
        uploaded: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        rejected: AtomicU64::new(0),
        lost: AtomicU64::new(0),
        process: ProcessMetrics::default(),
    });
    shared.loaded(&initial);
    let (stop_tx, stop_rx) = signal::channel(false);
    let (writer_stop_tx, writer_stop_rx) = signal::channel(false);
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    let (lines_tx, lines_rx) = mpsc::unbounded_channel();
    let permits = schedule::Permits::new(options.concurrency);
    let engine = Engine::new()
        .with_secret_policy(options.secrets.clone())
        .with_memory_budget(options.memory_budget);
    let retrying = Arc::new(Retrying::new(
        engine.clone(),
        options.location.clone(),
        lines_tx,
        shared.clone(),
        permits.clone(),
    ));
    let outlet = Arc::new(Buffering {
        shared: shared.clone(),
        retrying: retrying.clone(),
    });
    let server = match options.metrics_listen {
        Some(addr) => Some(serve_metrics(addr, &shared, stop_rx.clone()).await?),
        None => None,
    };
    let scheduler = tokio::spawn(
        schedule::schedule(
            initial,
            Some(jobs_rx),
            engine,
            permits.clone(),
            outlet,
            stop_rx.clone(),
        )
        .with_current_subscriber(),
    );
    let writer = tokio::spawn(
        write_loop(shared.clone(), lines_rx, writer_stop_rx).with_current_subscriber(),
    );
    let uploader =
        tokio::spawn(upload_loop(shared.clone(), stop_rx.clone()).with_current_subscriber());
    let poller = tokio::spawn(
        poll_loop(
            shared.clone(),
            etag,
            options.poll_wait,
            jobs_tx,
            options.location.clone(),
            stop_rx.clone(),
        )
        .with_current_subscriber(),
    );

    let retrier = tokio::spawn(
        retry_loop(retrying, options.poll_wait, stop_rx.clone()).with_current_subscriber(),
    );
    let metrics = options.metrics_file.clone().map(|path| {
        tokio::spawn(metrics_loop(shared.clone(), path, stop_rx.clone()).with_current_subscriber())
    });

    shutdown.await;
    info!("stopping: finishing the checks in flight");
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    let _ = poller.await;
    let _ = retrier.await;
    let _ = uploader.await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    if let Some(server) = server {
        let _ = server.await;
    }
    // Every permit back means every check in flight has finished and handed its result
    // to the writer.
    if !permits.drain(options.drain_timeout).await {
        info!(
            "some checks were still running after {} s and were cancelled",
            options.drain_timeout.as_secs()
        );
    }
    let _ = writer_stop_tx.send(true);
    let _ = writer.await;
    if tokio::time::timeout(options.final_upload_timeout, upload_all(&shared))
        .await
        .is_err()
    {
        warn!("the last upload ran out of time");
    }
    let (buffered, dropped) = {
        let buffer = shared.buffer();
        (buffer.len(), buffer.dropped)
    };
    let summary = Summary {
        uploaded: shared.uploaded.load(Ordering::Relaxed),
        duplicates: shared.duplicates.load(Ordering::Relaxed),
        rejected: shared.rejected.load(Ordering::Relaxed),
        dropped,
        lost: shared.lost.load(Ordering::Relaxed),
        buffered,
        clock_offset_ms: shared.api.clock.offset_ms(),
    };
    if let Some(path) = &options.metrics_file
        && let Err(e) = write_metrics(&shared, path).await
    {
        warn!("cannot write the metrics file {}: {e}", path.display());
    }
    warn!(
        "stopped: {} results uploaded, {} still buffered in {}, {} dropped (buffer full), {} rejected",
        summary.uploaded,
        summary.buffered,
        dir.display(),
        summary.dropped,
        summary.rejected
    );
    drop(lock);
    Ok(summary)
}

/// Binds `addr` and serves the agent's metrics there until the stop.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    shared: &Arc<Shared>,
    mut stop: signal::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, AgentError> {
    let listener = super::http::bind(addr)
        .await
        .map_err(|e| AgentError(format!("cannot listen on {addr} for metrics: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    info!("serving metrics at http://{bound}/metrics");
    let shared = shared.clone();
    let render = move || sync::metrics(&shared);
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    Ok(tokio::spawn(
        process_metrics::serve_text(listener, render, shutdown).with_current_subscriber(),
    ))
}

/// Reads the saved assignment, at most [`api::MAX_ASSIGNMENT_BYTES`] of it (the most a poll
/// accepts, so a larger file was not written by an agent).
fn read_saved(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(api::MAX_ASSIGNMENT_BYTES as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > api::MAX_ASSIGNMENT_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} bytes",
            api::MAX_ASSIGNMENT_BYTES
        )));
    }
    Ok(text)
}

/// The token in `path`, trimmed: at most [`MAX_TOKEN_FILE_BYTES`] read, none empty.
fn read_token_file(path: &Path) -> Result<String, AgentError> {
    use std::io::Read;
    let cannot = |e: &dyn fmt::Display| {
        AgentError(format!(
            "cannot read the token file {}: {e}",
            path.display()
        ))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_TOKEN_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| cannot(&e))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(cannot(&format!("larger than {MAX_TOKEN_FILE_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|e| cannot(&e))?;
    match text.trim() {
        "" => Err(cannot(&"the file is empty")),
        token => Ok(token.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::schedule::wall_clock_tick;

    #[test]
    fn ticks_fall_on_the_phase_and_the_index() {
        // interval 10 s, phase 3 s: instants 3 s, 13 s, 23 s, ...
        assert_eq!(wall_clock_tick(10_000, 1, 0, 3_000, 0, 0), (0, 3_000));
        assert_eq!(wall_clock_tick(10_000, 1, 0, 3_000, 0, 3_000), (0, 3_000));
        assert_eq!(wall_clock_tick(10_000, 1, 0, 3_000, 0, 3_001), (1, 13_000));
        // every 2, index 1: odd ticks only.
        assert_eq!(wall_clock_tick(10_000, 2, 1, 3_000, 0, 3_001), (1, 13_000));
        assert_eq!(wall_clock_tick(10_000, 2, 1, 3_000, 0, 13_001), (3, 33_000));
        assert_eq!(wall_clock_tick(10_000, 2, 0, 3_000, 0, 13_001), (2, 23_000));
        // every 3, index 2, never before `from`.
        assert_eq!(wall_clock_tick(10_000, 3, 2, 0, 6, 0), (8, 80_000));
        // A realistic epoch.
        let now = 1_767_225_600_123_u128;
        let (k, at) = wall_clock_tick(60_000, 4, 3, 12_345, 0, now);
        assert_eq!(k % 4, 3);
        assert!(at >= now && at < now + 4 * 60_000);
        assert_eq!(at, u128::from(k) * 60_000 + 12_345);
    }

    #[test]
    fn default_ids_are_valid_names() {
        let id = default_id("eu-west-1");
        assert!(id.ends_with("-eu-west-1"), "{id}");
        assert!(valid_name(&id), "{id}");
        assert!(valid_name(&default_id(&"x".repeat(60))));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name(&"a".repeat(65)));
    }

    #[test]
    fn token_files_are_trimmed_bounded_and_never_empty() {
        let dir = std::env::temp_dir().join(format!("agent-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let check = |name: &str, content: &[u8], expected: Result<&str, &str>| {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            match (read_token_file(&path), expected) {
                (Ok(token), Ok(want)) => assert_eq!(token, want, "{name}"),
                (Err(e), Err(want)) => assert!(e.0.contains(want), "{name}: {e}"),
                (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
            }
        };
        check("plain", b"s3cret", Ok("s3cret"));
        check("newline", b"  s3cret\n", Ok("s3cret"));
        check("empty", b"\n", Err("the file is empty"));
        check("binary", b"\xff\xfe", Err("utf-8"));
        check("large", &[b'a'; 4097], Err("larger than 4096 bytes"));
        check("at-bound", &[b'a'; 4096], Ok(&"a".repeat(4096)));
        let missing = read_token_file(&dir.join("missing")).unwrap_err();
        assert!(
            missing.0.contains("cannot read the token file"),
            "{missing}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn options_never_show_the_token() {
        let options = Options::new("http://127.0.0.1:1", "here", "s3cret-token");
        assert!(!format!("{options:?}").contains("s3cret"));
    }
}
