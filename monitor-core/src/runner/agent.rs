//! `agent`: runs the monitors a control plane assigns to this agent and uploads their
//! results (control-plane/API.md, "Agents, results, status").
//!
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
mod buffer;

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, mpsc, watch as signal};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::instrument::WithSubscriber;
use tracing::{info, warn};

use self::api::{Api, Failure, Poll, Post};
use self::buffer::Buffer;
use super::schedule::{self, Cadence, Job, Outlet};
use crate::{Engine, ValidMonitor};
use monitor_spec::result::CheckResult;
use monitor_spec::spec::TcpMonitor;

pub use self::buffer::SEGMENT_RECORDS;

/// The environment variable holding the agent's token.
pub const TOKEN_ENV: &str = "MONITORS_AGENT_TOKEN";

/// How an agent runs.
#[derive(Clone)]
pub struct Options {
    /// The control plane's base URL, such as `https://monitors.example.com`.
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
            .finish()
    }
}

impl Options {
    /// The defaults: id [`default_id`], buffer dir [`default_buffer_dir`], 100,000
    /// results buffered, batches of 500, 20 s polls, 64 checks at once, backoff up to
    /// 30 s, 30 s for the checks in flight and 5 s for the last upload at a stop.
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

/// A result as uploaded: `ResultIn` of the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultIn {
    /// `"{monitor}/{location}/{tick}"`.
    pub id: String,
    /// The monitor's id.
    pub monitor: String,
    /// The `k` of the instant the check ran for.
    pub tick: u64,
    /// The check's result.
    pub result: CheckResult,
}

/// An assignment as the control plane sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The agent's id.
    pub agent: String,
    /// Its location.
    pub location: String,
    /// The assignment's ETag (without quotes).
    pub etag: String,
    /// Live agents in the location.
    pub agents_in_location: u64,
    /// The monitors and when to run them, sorted by monitor id.
    pub monitors: Vec<AssignedMonitor>,
}

/// One monitor of an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignedMonitor {
    /// The spec.
    pub monitor: TcpMonitor,
    /// Run one tick in this many.
    pub every: u64,
    /// Which one.
    pub index: u64,
    /// Offset of the ticks in the interval, in milliseconds.
    pub phase_ms: u64,
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
}

/// The results waiting in an agent's buffer dir, oldest first (for inspection; the
/// running agent is not disturbed).
pub fn buffered_results(buffer_dir: &Path) -> io::Result<Vec<ResultIn>> {
    Ok(buffer::read_all(&buffer_dir.join("results"))?
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Backoff between retries: 1 s, doubling, up to a maximum.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_secs(1).min(max),
            max,
        }
    }
    fn reset(&mut self) {
        self.next = Duration::from_secs(1).min(self.max);
    }
    fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }
}

/// What the agent's tasks share.
struct Shared {
    api: Api,
    buffer: Mutex<Buffer>,
    /// Results were appended.
    appended: Notify,
    dir: PathBuf,
    batch: AtomicUsize,
    backoff_max: Duration,
    uploaded: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    lost: AtomicU64,
}

impl Shared {
    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the buffer off the async workers (it reads, writes and syncs files).
    async fn with_buffer<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Buffer) -> T + Send + 'static,
    ) -> T {
        let this = self.clone();
        // The blocking thread logs to the subscriber of the task that asked.
        let logs = tracing::dispatcher::get_default(Clone::clone);
        let run = move || {
            let mut buffer = this.buffer();
            let out = f(&mut buffer);
            let warning = buffer.warning.take();
            drop(buffer);
            if let Some(w) = warning {
                tracing::dispatcher::with_default(&logs, || warn!("{w}"));
            }
            out
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(out) => out,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The outlet of the agent's schedule: each result becomes a `ResultIn` line for the
/// buffer writer.
struct Buffering {
    location: String,
    lines: mpsc::UnboundedSender<String>,
}

impl Outlet for Buffering {
    fn result(&self, tick: u64, result: CheckResult) {
        let monitor = result.id.clone();
        let line = ResultIn {
            id: format!("{monitor}/{}/{tick}", self.location),
            monitor,
            tick,
            result,
        };
        if let Ok(line) = serde_json::to_string(&line) {
            let _ = self.lines.send(line);
        }
    }
}

/// Reads an assignment body leniently: monitors this build cannot read or run are
/// logged and skipped rather than costing the whole assignment.
fn read_assignment(body: &str) -> Result<(String, Vec<Job>, u64), String> {
    let (etag, jobs, agents, skipped) = parse_assignment(body)?;
    for why in skipped {
        warn!("{why}");
    }
    Ok((etag, jobs, agents))
}

/// An assignment's etag, the jobs this agent can run, the agents of its location, and a
/// line for each monitor skipped.
type Parsed = (String, Vec<Job>, u64, Vec<String>);

/// [`read_assignment`] without logging: the skipped monitors are returned.
fn parse_assignment(body: &str) -> Result<Parsed, String> {
    #[derive(Deserialize)]
    struct Wire {
        etag: String,
        #[serde(default)]
        agents_in_location: u64,
        monitors: Vec<WireMonitor>,
    }
    #[derive(Deserialize)]
    struct WireMonitor {
        monitor: serde_json::Value,
        every: u64,
        index: u64,
        phase_ms: u64,
    }
    let wire: Wire = monitor_spec::json::read(body).map_err(|e| format!("assignment: {e}"))?;
    let mut jobs = Vec::with_capacity(wire.monitors.len());
    let mut skipped = Vec::new();
    for m in wire.monitors {
        let id = m
            .monitor
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        let mut skip = |why: String| {
            skipped.push(format!(
                "assignment {}: skipping monitor {id}: {why}",
                wire.etag
            ));
        };
        if m.every == 0 || m.index >= m.every {
            skip(format!("index {} is not below every {}", m.index, m.every));
            continue;
        }
        let spec: TcpMonitor = match serde_json::from_value(m.monitor) {
            Ok(s) => s,
            Err(e) => {
                skip(format!("this agent cannot read it: {e}"));
                continue;
            }
        };
        let monitor: ValidMonitor = match spec.into_valid() {
            Ok(v) => v,
            Err(e) => {
                skip(format!("invalid: {e}"));
                continue;
            }
        };
        jobs.push(Job {
            monitor,
            cadence: Cadence::WallClock {
                every: m.every,
                index: m.index,
                phase_ms: m.phase_ms,
            },
        });
    }
    Ok((wire.etag, jobs, wire.agents_in_location, skipped))
}

/// The CLI arguments of `agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The control plane's URL, such as https://monitors.example.com
    #[arg(long, value_name = "URL")]
    control_plane: String,
    /// The location this agent runs monitors for
    #[arg(long, value_name = "NAME")]
    location: String,
    /// The agent's id; keep it stable across restarts so that it keeps its monitors
    /// [default: HOSTNAME-LOCATION]
    #[arg(long)]
    id: Option<String>,
    /// Where results wait for upload and the last assignment is kept [default:
    /// $XDG_STATE_HOME/monitors-agent/ID when XDG_STATE_HOME is set, else
    /// ./monitors-agent/ID]
    #[arg(long, value_name = "DIR")]
    buffer_dir: Option<PathBuf>,
    /// Results kept at most while the control plane is unreachable; beyond, the oldest
    /// are dropped
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    buffer_max: u64,
    /// Results per upload at most
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_max: u64,
    /// Seconds an assignment poll waits for a change (long poll)
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=60))]
    poll_wait: u64,
    /// How many checks run at once
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    concurrency: u64,
}

/// `monitors agent`: the token from [`TOKEN_ENV`], runs until Ctrl-C or SIGTERM.
pub(crate) async fn command(args: AgentArgs) -> Result<Summary, AgentError> {
    let token = match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.trim().is_empty() => t,
        _ => return Err(AgentError(format!("set {TOKEN_ENV} to the agent's token"))),
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
    match std::fs::read_to_string(dir.join("assignment.json")) {
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
    });
    let (stop_tx, stop_rx) = signal::channel(false);
    let (writer_stop_tx, writer_stop_rx) = signal::channel(false);
    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel();
    let (lines_tx, lines_rx) = mpsc::unbounded_channel();
    let limit = Arc::new(Semaphore::new(options.concurrency));
    let outlet = Arc::new(Buffering {
        location: options.location.clone(),
        lines: lines_tx,
    });
    let scheduler = tokio::spawn(
        schedule::schedule(
            initial,
            Some(jobs_rx),
            Engine::new(),
            limit.clone(),
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
            stop_rx,
        )
        .with_current_subscriber(),
    );

    shutdown.await;
    info!("stopping: finishing the checks in flight");
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    let _ = poller.await;
    let _ = uploader.await;
    // Every permit back means every check in flight has finished and handed its result
    // to the writer.
    let permits = u32::try_from(options.concurrency).unwrap_or(u32::MAX);
    if tokio::time::timeout(options.drain_timeout, limit.acquire_many(permits))
        .await
        .is_err()
    {
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
    };
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

/// Writes results to the buffer as they come, many per sync; after a stop, writes what
/// is queued and ends.
async fn write_loop(
    shared: Arc<Shared>,
    mut lines: mpsc::UnboundedReceiver<String>,
    mut stop: signal::Receiver<bool>,
) {
    let mut drops = DropLog::default();
    loop {
        let first = tokio::select! {
            line = lines.recv() => line,
            _ = stop.changed() => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < 10_000 {
            match lines.try_recv() {
                Ok(line) => batch.push(line),
                Err(_) => break,
            }
        }
        write(&shared, batch, &mut drops).await;
    }
    let mut rest = Vec::new();
    while let Ok(line) = lines.try_recv() {
        rest.push(line);
    }
    if !rest.is_empty() {
        write(&shared, rest, &mut drops).await;
    }
    drops.flush(&shared, true);
}

/// Drops are logged at once, then at most every 10 s, so a full buffer under load does
/// not flood the log.
#[derive(Default)]
struct DropLog {
    unlogged: u64,
    last: Option<Instant>,
}

impl DropLog {
    fn add(&mut self, shared: &Shared, n: u64) {
        self.unlogged += n;
        self.flush(shared, false);
    }

    fn flush(&mut self, shared: &Shared, now: bool) {
        if self.unlogged == 0
            || !now
                && self
                    .last
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        let (max, total) = {
            let b = shared.buffer();
            (b.max(), b.dropped)
        };
        warn!(
            "dropped {} oldest buffered results (buffer full at {max}; {total} dropped in all)",
            self.unlogged
        );
        self.unlogged = 0;
        self.last = Some(Instant::now());
    }
}

async fn write(shared: &Arc<Shared>, batch: Vec<String>, drops: &mut DropLog) {
    let n = batch.len() as u64;
    match shared.with_buffer(move |b| b.append(&batch)).await {
        Ok(dropped) => {
            shared.appended.notify_one();
            if dropped > 0 {
                drops.add(shared, dropped);
            }
        }
        Err(e) => {
            shared.lost.fetch_add(n, Ordering::Relaxed);
            warn!(
                "cannot write {n} results to the buffer {}: {e}; they are lost",
                shared.dir.display()
            );
        }
    }
}

/// What one upload attempt did.
enum Step {
    /// Nothing waits.
    Empty,
    /// A batch left the buffer (accepted, or refused for good).
    Sent,
    /// The batch was too large; the next is smaller.
    Smaller,
    /// The control plane did not take it; try again later.
    Failed(Failure),
    /// The buffer could not be read.
    Unreadable(String),
}

/// Uploads one batch from the head of the buffer.
async fn upload_once(shared: &Arc<Shared>) -> Step {
    let size = shared.batch.load(Ordering::Relaxed);
    let batch = match shared.with_buffer(move |b| b.peek(size)).await {
        Ok(b) => b,
        Err(e) => return Step::Unreadable(e.to_string()),
    };
    if batch.lines.is_empty() {
        return Step::Empty;
    }
    let n = batch.lines.len() as u64;
    let outcome = shared.api.post(&batch.lines).await;
    let end = batch.end;
    match outcome {
        Post::Accepted {
            accepted,
            duplicates,
        } => {
            shared.with_buffer(move |b| b.acknowledge(end)).await;
            shared
                .uploaded
                .fetch_add(accepted.max(n), Ordering::Relaxed);
            shared.duplicates.fetch_add(duplicates, Ordering::Relaxed);
            Step::Sent
        }
        Post::TooLarge if n > 1 => {
            let smaller = usize::try_from(n / 2).unwrap_or(1).max(1);
            shared.batch.store(smaller, Ordering::Relaxed);
            warn!(
                "the control plane refused a batch of {n} results as too large (http 413); sending {smaller} at most from now on"
            );
            Step::Smaller
        }
        Post::TooLarge => {
            shared.with_buffer(move |b| b.acknowledge(end)).await;
            shared.rejected.fetch_add(n, Ordering::Relaxed);
            warn!("the control plane refused a single result as too large (http 413); dropping it",);
            Step::Sent
        }
        Post::Rejected { detail } => {
            shared.with_buffer(move |b| b.acknowledge(end)).await;
            shared.rejected.fetch_add(n, Ordering::Relaxed);
            warn!(
                "the control plane rejected a batch of {n} results ({detail}); dropping the batch"
            );
            Step::Sent
        }
        Post::Retry(f) => Step::Failed(f),
    }
}

/// Uploads while results wait, retrying with backoff, until stopped.
async fn upload_loop(shared: Arc<Shared>, mut stop: signal::Receiver<bool>) {
    let mut backoff = Backoff::new(shared.backoff_max);
    let mut failing: Option<String> = None;
    loop {
        let step = tokio::select! {
            step = upload_once(&shared) => step,
            _ = stop.changed() => return,
        };
        let wait = match step {
            Step::Empty => {
                tokio::select! {
                    _ = shared.appended.notified() => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
            Step::Sent | Step::Smaller => {
                if failing.take().is_some() {
                    let waiting = shared.buffer().len();
                    info!("uploading results again ({waiting} still buffered)");
                }
                backoff.reset();
                continue;
            }
            Step::Failed(f) => {
                if failing.as_deref() != Some(f.kind.as_str()) {
                    let waiting = shared.buffer().len();
                    warn!(
                        "cannot upload results ({}); {waiting} buffered, retrying with backoff up to {} s",
                        f.detail,
                        shared.backoff_max.as_secs()
                    );
                    failing = Some(f.kind);
                }
                backoff.next()
            }
            Step::Unreadable(e) => {
                let kind = format!("unreadable: {e}");
                if failing.as_deref() != Some(kind.as_str()) {
                    warn!(
                        "cannot read the buffer {}: {e}; retrying",
                        shared.dir.display()
                    );
                    failing = Some(kind);
                }
                backoff.next()
            }
        };
        tokio::select! {
            _ = sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The last upload at a stop: batches until the buffer is empty or one fails.
async fn upload_all(shared: &Arc<Shared>) {
    loop {
        match upload_once(shared).await {
            Step::Empty => return,
            Step::Sent | Step::Smaller => {}
            Step::Failed(f) => {
                warn!(
                    "the last upload failed ({}); the results stay buffered",
                    f.detail
                );
                return;
            }
            Step::Unreadable(e) => {
                warn!("cannot read the buffer: {e}");
                return;
            }
        }
    }
}

/// Long polls the assignment and hands each new one to the scheduler, saving it first.
async fn poll_loop(
    shared: Arc<Shared>,
    mut etag: Option<String>,
    wait: Duration,
    jobs: mpsc::UnboundedSender<Vec<Job>>,
    location: String,
    mut stop: signal::Receiver<bool>,
) {
    let mut backoff = Backoff::new(shared.backoff_max);
    // `None` before the first answer; then whether the last poll failed and how.
    let mut state: Option<Option<String>> = None;
    loop {
        let started = Instant::now();
        let outcome = tokio::select! {
            o = shared.api.poll(etag.as_deref(), wait) => o,
            _ = stop.changed() => return,
        };
        let outcome = outcome.and_then(|poll| match poll {
            Poll::NotModified => Ok(None),
            Poll::Changed { etag: header, body } => {
                let (tag, list, agents) = read_assignment(&body).map_err(|e| Failure {
                    kind: "bad assignment".to_owned(),
                    detail: e,
                })?;
                let tag = header.unwrap_or(tag);
                Ok(Some((tag, list, agents, body)))
            }
        });
        match outcome {
            Ok(answer) => {
                match &state {
                    None => info!("control plane reachable"),
                    Some(Some(_)) => info!("control plane reachable again"),
                    Some(None) => {}
                }
                state = Some(None);
                backoff.reset();
                if let Some((tag, list, agents, body)) = answer
                    && etag.as_deref() != Some(tag.as_str())
                {
                    let path = shared.dir.join("assignment.json");
                    let saved = tokio::task::spawn_blocking(move || {
                        buffer::write_atomically(&path, body.as_bytes())
                    })
                    .await;
                    if let Ok(Err(e)) = saved {
                        warn!("cannot save the assignment: {e}");
                    }
                    info!(
                        "assignment {tag}: {} monitors ({agents} agents in {location})",
                        list.len()
                    );
                    let _ = jobs.send(list);
                    etag = Some(tag);
                    // Poll again at once, for changes after this one.
                    continue;
                }
                // Never poll faster than once a second, whatever the server does with
                // `wait`.
                tokio::select! {
                    _ = sleep_until(started + Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
            Err(f) => {
                if state.as_ref().and_then(|s| s.as_deref()) != Some(f.kind.as_str()) {
                    let saved = if etag.is_some() {
                        "running the last assignment"
                    } else {
                        "no assignment yet"
                    };
                    warn!(
                        "cannot get the assignment ({}); {saved}, retrying with backoff up to {} s",
                        f.detail,
                        shared.backoff_max.as_secs()
                    );
                    state = Some(Some(f.kind));
                }
                tokio::select! {
                    _ = sleep(backoff.next()) => {}
                    _ = stop.changed() => return,
                }
            }
        }
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
    fn options_never_show_the_token() {
        let options = Options::new("http://127.0.0.1:1", "here", "s3cret-token");
        assert!(!format!("{options:?}").contains("s3cret"));
    }

    #[test]
    fn assignments_skip_what_cannot_run() {
        let good = TcpMonitor::new("good", "127.0.0.1", 1);
        let body = serde_json::json!({
            "agent": "a", "location": "l", "etag": "e1", "agents_in_location": 2,
            "monitors": [
                {"monitor": good, "every": 2, "index": 1, "phase_ms": 5},
                {"monitor": {"id": "future", "new_field": 1}, "every": 1, "index": 0, "phase_ms": 0},
                {"monitor": TcpMonitor::new("bad-index", "127.0.0.1", 1), "every": 1, "index": 1, "phase_ms": 0},
            ]
        })
        .to_string();
        let (etag, jobs, agents, lines) = parse_assignment(&body).unwrap();
        assert_eq!((etag.as_str(), agents), ("e1", 2));
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].monitor.spec().id, "good");
        assert_eq!(
            jobs[0].cadence,
            Cadence::WallClock {
                every: 2,
                index: 1,
                phase_ms: 5
            }
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("skipping monitor future")));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("skipping monitor bad-index"))
        );
    }
}
