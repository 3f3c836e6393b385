//! The probe engine: checks one [`ValidMonitor`] (resolve, connect, dialog, assertions,
//! verdict, retries) and runs many with a concurrency bound.
//!
//! The engine takes its resolver and clock from outside ([`Resolve`], [`Clock`]) so tests
//! can give it names that resolve to chosen addresses and retries that do not wait.
//!
//! # Layout
//!
//! Imports run one way, from this module down to the leaves; no module imports one that
//! imports it back, and no child uses an item of this module.
//!
//! - [`protocol`]: one file per protocol (smtp, imap, pop3, ftp, postgres, mysql, ldap,
//!   redis, memcached, ssh, mongodb, proxy) with its codec, its STARTTLS step and its recipe.
//! - `starttls` and `recipe`: thin dispatchers that pick the protocol's STARTTLS step or
//!   recipe; `upgrade` and `speak` hold what those steps share (errors, context).
//! - `conn`: the one buffered connection the dialog, STARTTLS and recipes read through;
//!   `dialog`: the monitor's steps on it.
//! - `guard`: what a check may take before it connects (secrets on the machine's policy,
//!   its share of the memory budget).
//! - `connect` (resolve, happy eyeballs), `tls` (handshake), `chain` (certificate facts
//!   and problems), `legacy` (the TLS 1.0/1.1 probe), `tls::policy` (the compliance scan, re-exported as
//!   `policy`), `secure` (TLS policy), `classify`
//!   (errors with hints), `judge` (assertions and verdict).
//! - `kernel` (`TCP_INFO` after connect and at close, the retransmission hint) and `late`
//!   (the scheduling delay, and the clock that leaves it out of every phase).
//! - Leaves: `clock`, `resolve`, `place` (target names, excerpt size).

mod chain;
mod classify;
mod clock;
mod conn;
mod connect;
mod dialog;
mod guard;
mod judge;
mod kernel;
mod late;
pub mod legacy;
mod place;
pub mod protocol;
mod recipe;
mod resolve;
mod revocation;
mod secure;
mod speak;
pub mod starttls;
pub(crate) mod tls;
mod upgrade;

pub use tls::policy;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use clock::millis;
pub use clock::{BoxFuture, Clock, SystemClock};
pub use guard::{DEFAULT_MEMORY_BUDGET, MAX_PEM_FILE_BYTES};
pub use place::EXCERPT_BYTES;
pub use resolve::{Resolve, SystemResolver};

use monitor_spec::escape::escape_excerpt;
use monitor_spec::limits::bound_result;
use monitor_spec::result::{Attempt, CheckResult, ErrorKind, ProbeError, Status, Timings};
use monitor_spec::secret::SecretPolicy;
use monitor_spec::spec::{LegacyProbe, TlsMode};
use monitor_spec::validate::{Compiled, ValidMonitor};

/// Runs checks. Cheap to clone; clones share the resolver and clock.
#[derive(Clone)]
pub struct Engine {
    resolver: Arc<dyn Resolve>,
    clock: Arc<dyn Clock>,
    /// The system trust store, loaded on the first TLS check that needs it.
    roots: Arc<std::sync::OnceLock<Arc<rustls::RootCertStore>>>,
    /// The TLS setups in use, shared by the monitors whose TLS settings are the same.
    setups: Arc<tls::shared::Shared>,
    /// Where recipes find secrets by name (the process environment by default).
    secrets: Arc<Secrets>,
    /// Which secrets monitors may name: permissive by default (any variable but the
    /// agent token, any file).
    policy: Arc<SecretPolicy>,
    /// The memory the checks in flight share: each reserves its `max_response_bytes`.
    budget: Arc<guard::Budget>,
}

/// Looks a secret up by the name a monitor gives it.
type Secrets = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Default for Engine {
    fn default() -> Self {
        Engine {
            resolver: Arc::new(SystemResolver),
            clock: Arc::new(SystemClock),
            roots: Arc::default(),
            setups: Arc::default(),
            secrets: Arc::new(|name: &str| std::env::var(name).ok()),
            policy: Arc::new(SecretPolicy::permissive()),
            budget: Arc::new(guard::Budget::new(DEFAULT_MEMORY_BUDGET)),
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

    /// Replaces which secrets monitors may name ([`SecretPolicy::permissive`] by
    /// default): a check naming an environment variable or a file the policy refuses
    /// fails with kind `config` before it connects, and a file is opened only after its
    /// links are resolved and it still lies in the policy's secret directory.
    pub fn with_secret_policy(mut self, policy: SecretPolicy) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// Replaces the memory budget the checks of this engine (and its clones) share,
    /// [`DEFAULT_MEMORY_BUDGET`] by default: a check waits until its `max_response_bytes`
    /// fits, and a monitor whose cap alone is over the budget fails with kind `config`.
    pub fn with_memory_budget(mut self, bytes: u64) -> Self {
        self.budget = Arc::new(guard::Budget::new(bytes));
        self
    }

    /// The secret a monitor's recipe names, or the name when it is not set here (or not
    /// handed out by the policy).
    fn secret(&self, plan: &Compiled) -> Option<Result<String, String>> {
        match &plan.spec.recipe {
            Some(crate::Recipe::Redis {
                password_env: Some(name),
                ..
            }) => Some(
                self.policy
                    .check_env(name)
                    .ok()
                    .and_then(|()| (self.secrets)(name))
                    .ok_or_else(|| name.clone()),
            ),
            Some(recipe) => match recipe
                .login()
                .map(|l| (&l.password_env, &l.password_file))
                .unwrap_or((&None, &None))
            {
                (Some(name), _) => Some(
                    self.policy
                        .check_env(name)
                        .ok()
                        .and_then(|()| (self.secrets)(name))
                        .ok_or_else(|| name.clone()),
                ),
                (None, Some(path)) => Some(guard::password_file(
                    &self.policy,
                    "recipe.login.password_file",
                    path,
                )),
                (None, None) => None,
            },
            None => None,
        }
    }

    /// Checks one monitor, retrying failed attempts as its retry strategy says. The
    /// result is cut to the bounds of [`monitor_spec::limits`], so a control plane never
    /// refuses it for its size.
    pub async fn check(&self, monitor: &ValidMonitor) -> CheckResult {
        let admitted = self
            .check_admitted(monitor, |_| std::future::ready(Some(())))
            .await;
        // Never `None`: every attempt is admitted at once.
        admitted.unwrap_or_else(|| internal_failure(self, monitor, "the check was not admitted"))
    }

    /// [`Engine::check`] where each attempt first waits for `admit(retry)` (0 for the
    /// first attempt) and holds what it gives, such as a concurrency permit, only while
    /// it runs: the backoff between attempts holds nothing, so a monitor retrying never
    /// keeps others from running. `None` when the first attempt is not admitted (`admit`
    /// gave `None`: the runner is stopping); a retry not admitted ends the check with the
    /// attempts so far.
    pub async fn check_admitted<P, F, Fut>(
        &self,
        monitor: &ValidMonitor,
        admit: F,
    ) -> Option<CheckResult>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Option<P>>,
    {
        let mut result = self.check_unbounded(monitor, admit).await?;
        bound_result(&mut result);
        Some(result)
    }

    /// [`Engine::check_admitted`] before the bounds: the secrets first, then the attempts,
    /// each admitted and holding its share of the memory budget while it runs.
    async fn check_unbounded<P, F, Fut>(
        &self,
        monitor: &ValidMonitor,
        mut admit: F,
    ) -> Option<CheckResult>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Option<P>>,
    {
        let spec = monitor.spec();
        let permit = admit(0).await?;
        if let Err(why) = guard::gate(&self.policy, spec) {
            return Some(refused(self, monitor, why, SECRET_HINT));
        }
        let strategy = spec.retry;
        let first = self.clock.now();
        // Most checks make one attempt.
        let mut attempts = Vec::with_capacity(1);
        let mut last = None;
        let mut retry = 0;
        let mut admitted = Some(permit);
        loop {
            let reserved = match self.budget.reserve(spec).await {
                Ok(permit) => permit,
                Err(why) if attempts.is_empty() => {
                    return Some(refused(self, monitor, why, BUDGET_HINT));
                }
                Err(_) => break,
            };
            let outcome = self.observed_attempt(monitor).await;
            drop((reserved, admitted.take()));
            attempts.push(outcome.attempt.clone());
            let failed = outcome.attempt.status == Status::Failed;
            last = Some(outcome);
            if !failed || retry >= strategy.max_retries() {
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
            match admit(retry).await {
                Some(permit) => admitted = Some(permit),
                None => break,
            }
        }
        // Always set: the loop leaves before any attempt only by returning.
        let Some(last) = last else {
            return Some(internal_failure(self, monitor, "no attempt ran"));
        };
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
        let texts = monitor.compiled().texts();
        Some(CheckResult {
            id: texts.id.clone(),
            name: texts.name.clone(),
            target: texts.target.clone(),
            status,
            error,
            timings,
            address,
            attempts,
            assertions: last.assertions,
            response_excerpt: last.excerpt,
            tls: last.tls,
            facts: last.facts,
            tcp: last.tcp,
            started_at,
        })
    }

    /// One attempt polled through its own waker, so that how late the runtime polled it
    /// after its events is measured ([`late::Lateness`]) and left out of every phase: the
    /// attempt times itself on a clock less that delay.
    async fn observed_attempt(&self, monitor: &ValidMonitor) -> judge::AttemptOutcome {
        let late = late::Lateness::new(self.clock.clone());
        let clock = late.clock();
        let mut outcome = late.observe(self.attempt(monitor, &clock)).await;
        outcome.attempt.timings.scheduling_delay_ms = late.reported().map(millis);
        outcome
    }

    /// One attempt, timed on `clock`.
    async fn attempt(&self, monitor: &ValidMonitor, clock: &dyn Clock) -> judge::AttemptOutcome {
        let plan = monitor.compiled();
        let spec = &plan.spec;
        let started_at = clock.wall();
        let t0 = clock.now();
        let deadline = tokio::time::Instant::now() + plan.total_timeout;
        let mut timings = Timings::default();
        let mut facts = judge::Facts::default();
        let mut watch = None;

        let probe = async {
            let addrs = connect::resolve(&*self.resolver, spec, deadline).await;
            timings.dns_ms = Some(millis(clock.now() - t0));
            let addrs = addrs?;
            let t_connect = clock.now();
            let connect_limit = plan
                .connect_timeout
                .min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            let (stream, addr) =
                connect::connect_any(&addrs, connect_limit)
                    .await
                    .map_err(|failures| {
                        classify::connect_failure(spec, &failures, plan.connect_timeout)
                    })?;
            let connected = clock.now();
            let tcp = watch.insert(kernel::Watch::start(&stream));
            // Never less than the kernel's view: the SYN's round trip, its first sample.
            let kernel_rtt = tcp.after_connect().map_or(0.0, |s| s.rtt_ms);
            // Reads TCP_INFO a last time when dropped, right before the connection closes.
            let mut stream = tcp.watched(stream);
            timings.connect_ms = Some(millis(connected - t_connect).max(kernel_rtt));
            facts.address = Some(addr);
            if let Some(version) = spec.proxy_protocol {
                protocol::proxy::send(plan, &mut stream, version, addr, deadline)
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
                        server_cert: None,
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
            let pace = Pace { deadline, clock };
            // Boxed, as are the legacy probe and the policy scan below: their states are
            // the largest of an attempt, and a plain check would otherwise carry (and
            // move) them too.
            Box::pin(self.secure(plan, stream, addr, pace, &mut timings, &mut facts)).await
        };
        let error: Option<ProbeError> = probe.await.err();
        // The stream is gone, read a last time as it closed.
        facts.tcp = watch.and_then(kernel::Watch::finish);
        timings.first_byte_ms = facts.first_byte;
        // The client-certificate wait is the probe's own time, not the server's.
        timings.client_cert_wait_ms = facts.client_cert_wait.map(millis);
        let waited = facts.client_cert_wait.unwrap_or_default();
        timings.total_ms = millis((clock.now() - t0).saturating_sub(waited));
        if let (None, LegacyProbe::Degrade | LegacyProbe::Fail, Some(addr), Some(report)) = (
            &error,
            spec.tls.legacy_probe,
            facts.address,
            facts.tls.as_mut(),
        ) {
            let legacy = Box::pin(secure::legacy_report(spec, addr, deadline)).await;
            if let Some(finding) = secure::legacy_finding(spec, &legacy) {
                facts.findings.push(finding);
            }
            report.legacy = Some(legacy);
        }
        // After a handshake that presented a chain, even when the check failed later.
        if let (Some(addr), Some(report)) = (facts.address, facts.tls.as_mut())
            && !facts.chain.is_empty()
        {
            let step = plan.read_timeout;
            if let Some(finding) = Box::pin(policy::run(
                spec,
                addr,
                &facts.chain,
                report,
                step,
                deadline,
            ))
            .await
            {
                facts.findings.push(finding);
            }
        }
        let excerpt = escape_excerpt(&facts.response, EXCERPT_BYTES);
        let mut outcome = judge::judge(plan, error, timings, facts, started_at, excerpt);
        if let (Some(error), Some(tcp)) = (outcome.attempt.error.as_mut(), &outcome.tcp) {
            kernel::loss_hint(error, tcp);
        }
        outcome
    }

    /// The TLS settings of a monitor, built on first use (or shared with another monitor
    /// whose TLS settings are the same).
    fn tls_setup(&self, plan: &Compiled) -> Result<Arc<tls::Setup>, String> {
        let cached = plan.engine_cache.get_or_init(|| {
            let setup = self.setups.get_or_build(&plan.spec, || {
                tls::Setup::new(
                    &plan.spec,
                    || self.roots.get_or_init(tls::system_roots).clone(),
                    |field, source| guard::pem_text(&self.policy, field, source),
                )
            });
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
        mut stream: kernel::Watched<'_>,
        addr: SocketAddr,
        pace: Pace<'_>,
        timings: &mut Timings,
        facts: &mut judge::Facts,
    ) -> Result<(), ProbeError> {
        let spec = &plan.spec;
        let Pace { deadline, clock } = pace;
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
                if spec.tls.policy != monitor_spec::spec::TlsPolicy::Off && facts.tls.is_some() {
                    // The scan still tells why (a weak key, a SHA-1 signature, ...).
                    facts.chain = capture.chain();
                }
                let mut problem = failed.problem;
                if failed.version_mismatch {
                    problem = secure::legacy_fallback(
                        spec,
                        &setup,
                        addr,
                        deadline,
                        now,
                        &mut facts.tls,
                        problem,
                    )
                    .await;
                }
                return Err(secure::problem_error(problem));
            }
            Ok(Ok(done)) => done,
        };
        let ready = clock.now();
        timings.tls_ms = Some(millis(ready - t_tls));
        let presented = capture.chain();
        let (mut report, mut problems) =
            chain::judge_chain(spec, &setup, &presented, &negotiated, now);
        let stapled = capture.ocsp();
        revocation::judge(
            spec,
            &setup,
            &presented,
            &stapled,
            now,
            deadline,
            &mut report,
            &mut problems,
        )
        .await;
        if spec.tls.policy != monitor_spec::spec::TlsPolicy::Off {
            facts.chain = presented;
        }
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
        let server_cert = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.as_ref().to_vec());
        let connection = Connection {
            stream,
            addr,
            upgraded: upgraded.as_ref(),
            secret: secret.as_ref(),
            server_cert: server_cert.as_deref(),
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

/// An attempt's total deadline and the clock it is timed on.
#[derive(Clone, Copy)]
struct Pace<'a> {
    deadline: tokio::time::Instant,
    clock: &'a dyn Clock,
}

/// How long a check waits for a server that asked for a client certificate to reject it.
const SETTLE: Duration = Duration::from_millis(300);

/// A ready connection and what the recipe needs to know of it.
struct Connection<'a, S> {
    stream: S,
    addr: SocketAddr,
    /// The plaintext dialog STARTTLS ran before the handshake.
    upgraded: Option<&'a starttls::Negotiated>,
    secret: Option<&'a Result<String, String>>,
    /// The server's certificate (DER) over TLS.
    server_cert: Option<&'a [u8]>,
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
        server_cert,
    } = connection;
    let mut ready = clock.now();
    let mut session = dialog::open(stream, plan, deadline, clock);
    let mut outcome = Ok(());
    if let Some(limit) = settle {
        // Ends with the server's first data, which then counts from `ready`; a server that
        // sent nothing was waited for by us: the first byte counts from the wait's end.
        outcome = session.settle(limit).await;
        if outcome.is_ok() && session.first_byte.is_none() {
            let end = clock.now();
            facts.client_cert_wait = Some(end - ready);
            ready = end;
        }
    }
    if let (true, Some(r)) = (outcome.is_ok(), &plan.spec.recipe) {
        let cx = recipe::Context {
            spec: &plan.spec,
            secret,
            upgraded,
            steps_follow: !plan.ops.is_empty(),
            addr,
            server_cert,
        };
        outcome = recipe::speak(r, &mut session, &cx, &mut facts.learned).await;
    }
    if outcome.is_ok() {
        outcome = session.run(&plan.ops).await;
    }
    facts.first_byte = session.first_byte.map(|t| millis(t - ready));
    let done = clock.now();
    facts.after_first_byte = session.first_byte.map(|t| millis(done - t));
    facts.response = session.into_received();
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
/// per check and a wake-up per result cost more CPU than the checks' own I/O. Results
/// travel by value: a box made on a worker and freed on the draining thread, which never
/// allocates one, overflowed that thread's cache and took the worker's allocator lock
/// for every result. The channel reuses its blocks (32 results each), and the slots are
/// the returned vector itself (turned from `Option<CheckResult>` into `CheckResult` in
/// place), so a run keeps no result twice.
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
    let mut results: Vec<Option<CheckResult>> = Vec::with_capacity(monitors.len());
    results.resize_with(monitors.len(), || None);
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
        .map(|(i, r)| match r {
            Some(result) => result,
            None => {
                let why = if lost.is_empty() { "not run" } else { &lost };
                let failed = internal_failure(engine, &monitors[i], why);
                observe(&failed);
                failed
            }
        })
        .collect()
}

// `run_all_observed` turns its slots into results in place only when both are of one size.
const _: () =
    assert!(std::mem::size_of::<Option<CheckResult>>() == std::mem::size_of::<CheckResult>());

/// The hint of a secret the policy refuses.
const SECRET_HINT: &str = "this machine hands monitors only environment variables starting with its --secret-env-prefix and files under its --secret-dir; ask its operator, or use a secret it hands out";

/// The hint of a monitor over the memory budget.
const BUDGET_HINT: &str =
    "lower the monitor's max_response_bytes, or raise the runner's --memory-budget";

/// A failed result of kind `config` for a check refused before it connected.
fn refused(engine: &Engine, monitor: &ValidMonitor, why: String, hint: &str) -> CheckResult {
    let error = ProbeError {
        kind: ErrorKind::Config,
        message: why,
        hints: vec![hint.to_owned()],
    };
    failure(engine, monitor, error)
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
    let mut result = failure(engine, monitor, error);
    bound_result(&mut result);
    result
}

/// A failed result of one attempt with `error`, made without connecting.
fn failure(engine: &Engine, monitor: &ValidMonitor, error: ProbeError) -> CheckResult {
    let started_at = engine.clock.wall();
    let attempt = Attempt {
        status: Status::Failed,
        error: Some(error.clone()),
        timings: Timings::default(),
        address: None,
        started_at,
        location: None,
    };
    let texts = monitor.compiled().texts();
    CheckResult {
        id: texts.id.clone(),
        name: texts.name.clone(),
        target: texts.target.clone(),
        status: Status::Failed,
        error: Some(error),
        timings: Timings::default(),
        address: None,
        attempts: vec![attempt],
        assertions: Vec::new(),
        response_excerpt: String::new(),
        tls: None,
        facts: Default::default(),
        tcp: None,
        started_at,
    }
}
