//! The probe engine: checks one [`ValidMonitor`] (resolve, connect, dialog, assertions,
//! verdict, retries) and runs many with a concurrency bound.
//!
//! The engine takes its resolver and clock from outside ([`Resolve`], [`Clock`]) so tests
//! can give it names that resolve to chosen addresses and retries that do not wait.

mod classify;
mod connect;
mod dialog;
mod judge;
pub mod legacy;
mod recipe;
mod secure;
pub mod starttls;
pub(crate) mod tls;

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::escape::escape_excerpt;
use crate::result::{Attempt, CheckResult, ErrorKind, ProbeError, Status, Timings};
use crate::spec::{LegacyProbe, TlsMode};
use crate::validate::{Compiled, ValidMonitor};

/// A boxed future, as the [`Resolve`] and [`Clock`] traits return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How many bytes of the response a result shows.
pub const EXCERPT_BYTES: usize = 256;

/// Turns a host name into addresses.
pub trait Resolve: Send + Sync + 'static {
    /// Every address of `host`, in the resolver's order of preference, with `port` set.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`getaddrinfo`); IP literals skip it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move {
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            Ok(tokio::net::lookup_host((host, port)).await?.collect())
        })
    }
}

/// A resolver with a fixed table, for tests; names not in it do not resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a name with its addresses, in the order they are returned.
    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.table.insert(name.to_owned(), addrs.to_vec());
        self
    }
}

impl Resolve for StaticResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        let found = match host.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
            Err(_) => match self.table.get(host) {
                Some(ips) => Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
                None => Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "name or service not known",
                )),
            },
        };
        Box::pin(std::future::ready(found))
    }
}

/// The engine's view of time: a monotonic clock for timings, the wall clock for
/// `started_at`, and sleeping between retries.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic now.
    fn now(&self) -> Instant;
    /// Wall-clock now, in UTC.
    fn wall(&self) -> OffsetDateTime;
    /// Waits before a retry.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Runs checks. Cheap to clone; clones share the resolver and clock.
#[derive(Clone)]
pub struct Engine {
    resolver: Arc<dyn Resolve>,
    clock: Arc<dyn Clock>,
    /// The system trust store, loaded on the first TLS check that needs it.
    roots: Arc<std::sync::OnceLock<Arc<rustls::RootCertStore>>>,
    /// Where recipes find secrets by name (the process environment by default).
    secrets: Arc<Secrets>,
}

/// Looks a secret up by the name a monitor gives it.
type Secrets = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Default for Engine {
    fn default() -> Self {
        Engine {
            resolver: Arc::new(SystemResolver),
            clock: Arc::new(SystemClock),
            roots: Arc::default(),
            secrets: Arc::new(|name: &str| std::env::var(name).ok()),
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with the system resolver and clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the resolver.
    pub fn with_resolver(mut self, resolver: impl Resolve) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces where secrets come from (a recipe's `password_env`): the process
    /// environment by default.
    pub fn with_secrets(
        mut self,
        secrets: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    /// The secret a monitor's recipe names, or the name when it is not set here.
    fn secret(&self, plan: &Compiled) -> Option<Result<String, String>> {
        match &plan.spec.recipe {
            Some(crate::Recipe::Redis {
                password_env: Some(name),
                ..
            }) => Some((self.secrets)(name).ok_or_else(|| name.clone())),
            _ => None,
        }
    }

    /// Checks one monitor, retrying failed attempts as its retry strategy says.
    pub async fn check(&self, monitor: &ValidMonitor) -> CheckResult {
        let spec = monitor.spec();
        let strategy = spec.retry;
        let first = self.clock.now();
        let mut attempts = Vec::new();
        let mut last;
        let mut retry = 0;
        loop {
            last = self.attempt(monitor).await;
            attempts.push(last.attempt.clone());
            if last.attempt.status != Status::Failed || retry >= strategy.max_retries() {
                break;
            }
            retry += 1;
            let wait = Duration::from_secs(strategy.backoff_seconds(retry));
            if let Some(budget) = strategy.max_duration_seconds() {
                let spent = self.clock.now().saturating_duration_since(first);
                if spent + wait > Duration::from_secs(budget) {
                    break;
                }
            }
            tracing::debug!(id = %spec.id, retry, ?wait, "retrying failed check");
            self.clock.sleep(wait).await;
        }
        let started_at = attempts
            .first()
            .map_or(last.attempt.started_at, |a| a.started_at);
        let Attempt {
            status,
            error,
            timings,
            address,
            ..
        } = last.attempt;
        CheckResult {
            id: spec.id.clone(),
            name: spec.name.clone(),
            target: target_string(&spec.target.host, spec.target.port),
            status,
            error,
            timings,
            address,
            attempts,
            assertions: last.assertions,
            response_excerpt: last.excerpt,
            tls: last.tls,
            facts: last.facts,
            started_at,
        }
    }

    async fn attempt(&self, monitor: &ValidMonitor) -> judge::AttemptOutcome {
        let plan = monitor.compiled();
        let spec = &plan.spec;
        let clock = &*self.clock;
        let started_at = clock.wall();
        let t0 = clock.now();
        let deadline = tokio::time::Instant::now() + plan.total_timeout;
        let mut timings = Timings::default();
        let mut facts = judge::Facts::default();

        let probe = async {
            let addrs = connect::resolve(&*self.resolver, spec, deadline).await;
            timings.dns_ms = Some(millis(clock.now() - t0));
            let addrs = addrs?;
            let t_connect = clock.now();
            let connect_limit = plan
                .connect_timeout
                .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let (mut stream, addr) =
                connect::connect_any(&addrs, connect_limit)
                    .await
                    .map_err(|failures| {
                        classify::connect_failure(spec, &failures, plan.connect_timeout)
                    })?;
            let connected = clock.now();
            timings.connect_ms = Some(millis(connected - t_connect));
            facts.address = Some(addr);
            if let Some(version) = spec.proxy_protocol {
                send_proxy_header(plan, &mut stream, version, addr, deadline)
                    .await
                    .map_err(|e| classify::dialog_failure(spec, addr, e, &facts.response))?;
            }
            if spec.tls.mode == TlsMode::None {
                let secret = self.secret(plan);
                let outcome = run_dialog(
                    plan,
                    Connection {
                        stream,
                        addr,
                        upgraded: None,
                        secret: secret.as_ref(),
                    },
                    deadline,
                    clock,
                    None,
                    &mut facts,
                )
                .await;
                return outcome
                    .map_err(|e| classify::dialog_failure(spec, addr, e, &facts.response));
            }
            self.secure(plan, stream, addr, deadline, &mut timings, &mut facts)
                .await
        };
        let error: Option<ProbeError> = probe.await.err();
        timings.first_byte_ms = facts.first_byte;
        timings.total_ms = millis(clock.now() - t0);
        if let (None, LegacyProbe::Degrade | LegacyProbe::Fail, Some(addr), Some(report)) = (
            &error,
            spec.tls.legacy_probe,
            facts.address,
            facts.tls.as_mut(),
        ) {
            let legacy = secure::legacy_report(spec, addr, deadline).await;
            if let Some(finding) = secure::legacy_finding(spec, &legacy) {
                facts.findings.push(finding);
            }
            report.legacy = Some(legacy);
        }
        let excerpt = escape_excerpt(&facts.response, EXCERPT_BYTES);
        judge::judge(plan, error, timings, &facts, started_at, excerpt)
    }

    /// The TLS settings of a monitor, built on first use.
    fn tls_setup(&self, plan: &Compiled) -> Result<Arc<tls::Setup>, String> {
        let cached = plan.engine_cache.get_or_init(|| {
            let setup = tls::Setup::new(&plan.spec, || {
                self.roots.get_or_init(tls::system_roots).clone()
            })
            .map(Arc::new);
            Arc::new(setup)
        });
        match cached.downcast_ref::<Result<Arc<tls::Setup>, String>>() {
            Some(setup) => setup.clone(),
            None => Err("the monitor's engine cache holds something else".to_owned()),
        }
    }

    /// STARTTLS when configured, the handshake, the chain judged, then the dialog over TLS.
    async fn secure(
        &self,
        plan: &Compiled,
        mut stream: tokio::net::TcpStream,
        addr: SocketAddr,
        deadline: tokio::time::Instant,
        timings: &mut Timings,
        facts: &mut judge::Facts,
    ) -> Result<(), ProbeError> {
        let spec = &plan.spec;
        let clock = &*self.clock;
        let step = || (tokio::time::Instant::now() + plan.read_timeout).min(deadline);
        let mut upgraded = None;
        if let (TlsMode::Starttls, Some(protocol)) = (spec.tls.mode, spec.tls.starttls) {
            upgraded = Some(secure::upgrade(spec, &mut stream, protocol, step()).await?);
        }
        let setup = self
            .tls_setup(plan)
            .map_err(|why| secure::config_error(spec, &why))?;
        let capture = Arc::new(tls::Capture::default());
        let t_tls = clock.now();
        let handshake =
            tokio::time::timeout_at(step(), tls::handshake(&setup, &capture, stream, spec)).await;
        let now = clock.wall();
        let (stream, negotiated) = match handshake {
            Err(_) => {
                facts.tls = secure::partial_report(spec, &setup, &capture, now);
                return Err(secure::handshake_timeout(spec, &setup, plan.read_timeout));
            }
            Ok(Err(failed)) => {
                facts.tls = secure::partial_report(spec, &setup, &capture, now);
                let mut problem = failed.problem;
                if failed.version_mismatch {
                    let legacy = secure::legacy_report(spec, addr, deadline).await;
                    if let Some(p) = secure::legacy_only(spec, &legacy) {
                        problem = p;
                    }
                    let report = facts
                        .tls
                        .get_or_insert_with(|| secure::empty_report(&setup));
                    report.legacy = Some(legacy);
                    report.problems = vec![problem.kind];
                }
                return Err(secure::problem_error(problem));
            }
            Ok(Ok(done)) => done,
        };
        let ready = clock.now();
        timings.tls_ms = Some(millis(ready - t_tls));
        let (report, problems) = tls::judge_chain(spec, &setup, &capture.chain(), &negotiated, now);
        let days_left = report.days_left;
        facts.tls = Some(report);
        if let Some(blocking) = secure::blocking(spec, &problems) {
            return Err(blocking);
        }
        facts
            .findings
            .extend(secure::findings(spec, &problems, days_left));
        // A server that asked for a client certificate may reject ours (or our lack of
        // one) right after the handshake: give it a moment to say so.
        let settle = capture.asked().then(|| plan.read_timeout.min(SETTLE));
        let secret = self.secret(plan);
        let connection = Connection {
            stream,
            addr,
            upgraded: upgraded.as_ref(),
            secret: secret.as_ref(),
        };
        let outcome = run_dialog(plan, connection, deadline, clock, settle, facts).await;
        outcome.map_err(|e| match &e {
            dialog::DialogError::Io { error, .. } => {
                match tls::post_handshake_client_cert(spec, &setup, &capture, error) {
                    Some(p) => secure::problem_error(p),
                    None => classify::dialog_failure(spec, addr, e, &facts.response),
                }
            }
            _ => classify::dialog_failure(spec, addr, e, &facts.response),
        })
    }
}

/// How long a check waits for a server that asked for a client certificate to reject it.
const SETTLE: Duration = Duration::from_millis(300);

/// Sends the PROXY protocol header for the connection to `addr`.
async fn send_proxy_header(
    plan: &Compiled,
    stream: &mut tokio::net::TcpStream,
    version: crate::ProxyProtocol,
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) -> Result<(), dialog::DialogError> {
    use tokio::io::AsyncWriteExt;
    let what = "sending the PROXY protocol header".to_owned();
    let local = stream
        .local_addr()
        .map_err(|error| dialog::DialogError::Io {
            error,
            sending: true,
            waiting_for: what.clone(),
        })?;
    let header = crate::recipes::proxy_header(version, local, addr);
    let until = (tokio::time::Instant::now() + plan.read_timeout).min(deadline);
    match tokio::time::timeout_at(until, stream.write_all(&header)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(dialog::DialogError::Io {
            error,
            sending: true,
            waiting_for: what,
        }),
        Err(_) => Err(dialog::DialogError::Timeout {
            waiting_for: what,
            sending: true,
            total: until == deadline,
        }),
    }
}

/// A ready connection and what the recipe needs to know of it.
struct Connection<'a, S> {
    stream: S,
    addr: SocketAddr,
    /// The plaintext dialog STARTTLS ran before the handshake.
    upgraded: Option<&'a starttls::Negotiated>,
    secret: Option<&'a Result<String, String>>,
}

/// Runs the recipe and the dialog steps over a ready stream, recording the response, the
/// first byte and what the recipe learned.
async fn run_dialog<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    plan: &Compiled,
    connection: Connection<'_, S>,
    deadline: tokio::time::Instant,
    clock: &dyn Clock,
    settle: Option<Duration>,
    facts: &mut judge::Facts,
) -> Result<(), dialog::DialogError> {
    let Connection {
        stream,
        addr,
        upgraded,
        secret,
    } = connection;
    let ready = clock.now();
    let mut session = dialog::Session::new(stream, plan, deadline, clock);
    let mut outcome = match settle {
        Some(limit) => session.settle(limit).await,
        None => Ok(()),
    };
    if let (true, Some(r)) = (outcome.is_ok(), &plan.spec.recipe) {
        let cx = recipe::Context {
            spec: &plan.spec,
            secret,
            upgraded,
            steps_follow: !plan.ops.is_empty(),
            addr,
        };
        outcome = recipe::speak(r, &mut session, &cx, &mut facts.learned).await;
    }
    if outcome.is_ok() {
        outcome = session.run(&plan.ops).await;
    }
    facts.first_byte = session.first_byte.map(|t| millis(t - ready));
    facts.response = session.into_response();
    outcome
}

/// Checks every monitor, at most `concurrency` at once, and returns the results in the
/// order of `monitors`.
pub async fn run_all(
    engine: &Engine,
    monitors: &[ValidMonitor],
    concurrency: usize,
) -> Vec<CheckResult> {
    run_all_observed(engine, monitors, concurrency, |_| {}).await
}

/// [`run_all`], calling `observe` with each result as it completes (for progress).
///
/// `concurrency` long-lived workers take the next monitor from a shared counter and send
/// results back over a channel, which the caller drains every few milliseconds: a task
/// per check and a wake-up per result cost more CPU than the checks' own I/O.
pub async fn run_all_observed(
    engine: &Engine,
    monitors: &[ValidMonitor],
    concurrency: usize,
    mut observe: impl FnMut(&CheckResult),
) -> Vec<CheckResult> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let shared: Arc<[ValidMonitor]> = monitors.into();
    let next = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1).min(monitors.len()) {
        let (engine, shared, next, tx) = (engine.clone(), shared.clone(), next.clone(), tx.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(monitor) = shared.get(i) else {
                    return;
                };
                let result = engine.check(monitor).await;
                if tx.send((i, result)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut results: Vec<Option<CheckResult>> = vec![None; monitors.len()];
    'drain: loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        loop {
            match rx.try_recv() {
                Ok((i, result)) => {
                    observe(&result);
                    if let Some(slot) = results.get_mut(i) {
                        *slot = Some(result);
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break 'drain,
            }
        }
    }
    let mut lost = String::new();
    while let Some(joined) = workers.join_next().await {
        if let Err(e) = joined {
            tracing::error!(error = %e, "a check worker stopped");
            lost = e.to_string();
        }
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let why = if lost.is_empty() { "not run" } else { &lost };
                let failed = internal_failure(engine, &monitors[i], why);
                observe(&failed);
                failed
            })
        })
        .collect()
}

/// A failed result for a check that could not complete inside the engine itself.
fn internal_failure(engine: &Engine, monitor: &ValidMonitor, why: &str) -> CheckResult {
    let spec = monitor.spec();
    let error = ProbeError {
        kind: ErrorKind::Io,
        message: format!("the check of {} stopped inside the engine: {why}", spec.id),
        hints: vec![
            "this is a bug in the monitor engine; please report it with the monitor spec".into(),
        ],
    };
    let started_at = engine.clock.wall();
    let attempt = Attempt {
        status: Status::Failed,
        error: Some(error.clone()),
        timings: Timings::default(),
        address: None,
        started_at,
    };
    CheckResult {
        id: spec.id.clone(),
        name: spec.name.clone(),
        target: target_string(&spec.target.host, spec.target.port),
        status: Status::Failed,
        error: Some(error),
        timings: Timings::default(),
        address: None,
        attempts: vec![attempt],
        assertions: Vec::new(),
        response_excerpt: String::new(),
        tls: None,
        facts: Default::default(),
        started_at,
    }
}

/// `host:port`, with brackets around an IPv6 literal.
pub(crate) fn target_string(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A duration in milliseconds, rounded to microseconds.
fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}
