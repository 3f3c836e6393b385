//! The measurements behind `cargo xtask bench`, as one binary run with a command:
//! `cargo bench -p monitor-core --bench engine -- COMMAND [OPTIONS]`.
//!
//! - `throughput`: plain TCP and TLS checks per second and CPU per check through the real
//!   engine (`run_all`), against a raw tokio (tokio-rustls) loop doing the same I/O and,
//!   when given, against Prometheus blackbox_exporter's `/probe`, all at one concurrency
//!   and interleaved run by run; writes rows of figures as JSON.
//! - `serve`: loopback PING/+PONG or TLS servers in their own process, so that the CPU the
//!   clients use is measured apart from the servers'; prints its ports as a JSON line and
//!   serves until its standard input closes.
//! - `gen-bundle`: a bundle of many PING monitors at mixed frequencies, for `watch`.
//! - `validate-export`: parse, validate and export a generated bundle of many varied
//!   monitors, in process, as `run --bundle` and `export` do.
//! - `profile`: one side of a throughput workload alone, to run under `perf` or valgrind.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::HashMap;
use std::fmt::Display;
use std::io::{BufRead, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use monitor_core::Bundle;
use monitor_core::prelude::*;
use monitor_core::run_all;
use monitor_core::spec::{Backoff, PemSource};
use monitor_testing::TestPki;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use x509_parser::prelude::{FromDer, X509Certificate};

type Res<T> = Result<T, String>;

/// Adds what was being done to an error.
trait Ctx<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Res<T>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Res<T> {
        self.map_err(|e| format!("{}: {e}", what()))
    }
}

impl<T> Ctx<T> for Option<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Res<T> {
        self.ok_or_else(what)
    }
}

const USAGE: &str = "\
usage: engine COMMAND [OPTIONS]   (cargo bench -p monitor-core --bench engine -- COMMAND ...)

  throughput [--quick] [--runs N] [--concurrency N] [--workdir DIR] [--blackbox BIN] --out FILE
  serve --kind ping|tls [--count N] [--cert PEM --key PEM]
  gen-bundle --count N --ports P1,P2,... --out FILE
  postgres  starts a throwaway PostgreSQL with one database, prints `url URL`, and keeps
            it until standard input closes (the control-plane bench's database)
  validate-export [--count N] [--runs N] --out FILE
  profile --kind plain|tls [--checks N] [--runs N] [--concurrency N] [--workdir DIR]
          [--side engine|raw|raw-timeouts|raw-facts] [--runner run_all|pool] [--distinct N]
          one side of a throughput workload alone, to run under perf or valgrind
          (--distinct N: N monitors checked in turn rather than one per check;
          raw-facts: the raw plain loop gathering and keeping what a result reports)";

fn main() -> ExitCode {
    // `cargo bench` adds `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    };
    let outcome = Opts::parse(rest).and_then(|opts| match command.as_str() {
        "throughput" => throughput(&opts),
        "serve" => serve(&opts),
        "gen-bundle" => gen_bundle(&opts),
        "postgres" => postgres(),
        "validate-export" => validate_export(&opts),
        "profile" => profile(&opts),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--key value` options and `--flag`s.
struct Opts(HashMap<String, Option<String>>);

impl Opts {
    const FLAGS: [&str; 1] = ["--quick"];

    fn parse(args: &[String]) -> Res<Opts> {
        let mut map = HashMap::new();
        let mut it = args.iter();
        while let Some(key) = it.next() {
            if !key.starts_with("--") {
                return Err(format!("unexpected argument `{key}`\n\n{USAGE}"));
            }
            if Self::FLAGS.contains(&key.as_str()) {
                map.insert(key.clone(), None);
            } else {
                let value = it.next().ctx(|| format!("{key} needs a value"))?;
                map.insert(key.clone(), Some(value.clone()));
            }
        }
        Ok(Opts(map))
    }

    fn flag(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.as_deref())
    }

    fn required(&self, key: &str) -> Res<&str> {
        self.str(key)
            .ctx(|| format!("{key} is required\n\n{USAGE}"))
    }

    fn num(&self, key: &str, default: usize) -> Res<usize> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => v.parse().ctx(|| format!("{key} takes a number, not `{v}`")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------

/// Linux reports process CPU time in clock ticks of 1/100 s (USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) a process has used so far, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ctx(|| format!("cannot read /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after = stat
        .rsplit_once(')')
        .ctx(|| "malformed /proc stat".to_owned())?
        .1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |i: usize| -> Res<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ctx(|| "malformed /proc stat".to_owned())
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

/// One timed run of a workload.
#[derive(Debug, Clone, Copy, Default)]
struct Run {
    ok: usize,
    failed: usize,
    wall: f64,
    /// CPU seconds of the process doing the checks.
    cpu: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.wall
    }

    fn cpu_per_1000(&self) -> f64 {
        self.cpu * 1000.0 / (self.ok + self.failed).max(1) as f64
    }
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

fn side(label: &str, samples: &[f64]) -> Value {
    json!({ "label": label, "samples": samples, "median": median(samples) })
}

/// Whether a figure (the ratio when there is a baseline) meets its target.
type Meets = Box<dyn Fn(f64) -> bool>;

/// A row of the results: our figure, its baseline measured in the same runs, and the
/// ratio of each run's pair (the median of those is the ratio shown).
struct Row<'a> {
    id: &'a str,
    figure: &'a str,
    unit: &'a str,
    ours: (&'a str, Vec<f64>),
    baseline: Option<(&'a str, Vec<f64>)>,
    /// The target as text, and whether the (ratio or value) meets it.
    target: Option<(&'a str, Meets)>,
    note: String,
}

impl Row<'_> {
    fn to_json(&self) -> Value {
        let ours = side(self.ours.0, &self.ours.1);
        let (baseline, ratio) = match &self.baseline {
            None => (Value::Null, Value::Null),
            Some((label, samples)) => {
                let pairs: Vec<f64> = self
                    .ours
                    .1
                    .iter()
                    .zip(samples)
                    .map(|(o, b)| o / b)
                    .collect();
                (
                    side(label, samples),
                    json!({ "samples": pairs, "median": median(&pairs) }),
                )
            }
        };
        let judged = ratio
            .get("median")
            .and_then(Value::as_f64)
            .unwrap_or_else(|| median(&self.ours.1));
        let (target, met) = match &self.target {
            None => (Value::Null, Value::Null),
            Some((text, meets)) => (json!(text), json!(meets(judged))),
        };
        json!({
            "id": self.id, "figure": self.figure, "unit": self.unit,
            "ours": ours, "baseline": baseline, "ratio": ratio,
            "target": target, "met": met, "note": self.note,
        })
    }
}

fn at_least(x: f64) -> Meets {
    Box::new(move |v| v >= x)
}

fn at_most(x: f64) -> Meets {
    Box::new(move |v| v <= x)
}

fn write_json(path: &str, value: &Value) -> Res<()> {
    let path = Path::new(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).ctx(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value).ctx(|| "cannot write JSON".to_owned())?;
    std::fs::write(path, text + "\n").ctx(|| format!("cannot write {}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------

/// Answers every line starting with `PING` with `+PONG\r\n` until the client closes, as
/// Redis does.
async fn pong(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 512];
    let mut have = 0;
    loop {
        let n = match stream.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        while let Some(end) = memchr::memchr(b'\n', &buf[..have]) {
            let reply: &[u8] = if buf.starts_with(b"PING") {
                b"+PONG\r\n"
            } else {
                b"-ERR unknown command\r\n"
            };
            if stream.write_all(reply).await.is_err() {
                return;
            }
            buf.copy_within(end + 1..have, 0);
            have -= end + 1;
        }
        if have == buf.len() {
            return;
        }
    }
}

/// Completes the TLS handshake, then waits for the client to close.
async fn tls_hold(acceptor: tokio_rustls::TlsAcceptor, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    if let Ok(mut tls) = acceptor.accept(stream).await {
        let mut buf = [0u8; 1024];
        while let Ok(n) = tls.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
}

fn server_config(cert: &str, key: &str) -> Res<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .ctx(|| format!("cannot read certificates from {cert}"))?;
    let key = PrivateKeyDer::from_pem_file(key).ctx(|| format!("cannot read the key {key}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ctx(|| "rustls versions".to_owned())?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .ctx(|| "the server certificate".to_owned())?;
    // No client here resumes sessions: do not spend the server's time on tickets.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// `serve`: listeners on 127.0.0.1 whose ports are printed as `{"ports":[...]}`; serves
/// until standard input closes.
fn serve(opts: &Opts) -> Res<()> {
    let kind = opts.required("--kind")?.to_owned();
    let count = opts.num("--count", 1)?.max(1);
    let acceptor = match kind.as_str() {
        "ping" => None,
        "tls" => Some(tokio_rustls::TlsAcceptor::from(server_config(
            opts.required("--cert")?,
            opts.required("--key")?,
        )?)),
        other => return Err(format!("--kind is ping or tls, not `{other}`")),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .ctx(|| "cannot start tokio".to_owned())?;
    rt.block_on(async move {
        let mut ports = Vec::new();
        for _ in 0..count {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .ctx(|| "cannot listen on 127.0.0.1".to_owned())?;
            ports.push(
                listener
                    .local_addr()
                    .ctx(|| "local address".to_owned())?
                    .port(),
            );
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => match &acceptor {
                            None => drop(tokio::spawn(pong(stream))),
                            Some(a) => drop(tokio::spawn(tls_hold(a.clone(), stream))),
                        },
                        // Out of descriptors for a moment: let connections finish.
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            });
        }
        println!("{}", json!({ "ports": ports }));
        std::io::stdout().flush().ctx(|| "stdout".to_owned())?;
        // Serve until whoever started this closes our standard input (or goes away).
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin()
                .lock()
                .read_line(&mut sink)
                .is_ok_and(|n| n > 0)
            {
                sink.clear();
            }
        })
        .await;
        Ok(())
    })
}

/// A `serve` child process of this binary; stopped (by its pid) when dropped.
struct ServerProcess {
    child: Child,
    ports: Vec<u16>,
}

impl ServerProcess {
    fn start(args: &[&str]) -> Res<ServerProcess> {
        let exe = std::env::current_exe().ctx(|| "cannot find this binary".to_owned())?;
        let mut child = Command::new(exe)
            .arg("serve")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .ctx(|| "cannot start the server process".to_owned())?;
        let stdout = child.stdout.take().ctx(|| "server stdout".to_owned())?;
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .ctx(|| "cannot read the server's ports".to_owned())?;
        let ports: Vec<u16> = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| serde_json::from_value(v["ports"].clone()).ok())
            .ctx(|| format!("the server printed `{}`, not its ports", line.trim()))?;
        Ok(ServerProcess { child, ports })
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.ports
            .iter()
            .map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, *p)))
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// Raw loops: the same I/O with no engine
// ---------------------------------------------------------------------------------------

/// Runs `n` jobs on `concurrency` tasks; counts the ones that succeed.
async fn pool<F, Fut>(n: usize, concurrency: usize, job: F) -> (usize, usize)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let ok = pool_kept(n, concurrency, job)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count();
    (ok, n - ok)
}

/// Runs `n` jobs on `concurrency` tasks, each task keeping what its jobs return; returns
/// it all, in no particular order.
async fn pool_kept<T, F, Fut>(n: usize, concurrency: usize, job: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let job = Arc::new(job);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (next, job) = (next.clone(), job.clone());
        tasks.spawn(async move {
            let mut kept = Vec::with_capacity(n / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return kept;
                }
                kept.push(job(i).await);
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(kept) = tasks.join_next().await {
        all.extend(kept.unwrap_or_default());
    }
    all
}

/// Connect, send `PING\r\n`, read until `+PONG`, close.
async fn raw_ping(addr: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 64];
    let mut have = 0;
    loop {
        let n = stream.read(&mut buf[have..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
        if memchr::memmem::find(&buf[..have], b"+PONG").is_some() {
            return Ok(());
        }
        if have == buf.len() {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

/// [`raw_ping`] gathering what the result of a passed plain check reports, in the least
/// work any engine could do it with: the wall time it started, four clock readings for
/// the phases, `TCP_INFO` after connect and before close, and the result itself (the
/// monitor's texts shared, the address's text made once per target, the response's
/// excerpt, one attempt), which the caller keeps as `run_all` keeps results. No
/// timeouts, no lateness, no assertions: a floor, not an engine.
async fn raw_ping_facts(
    addr: SocketAddr,
    address: Arc<str>,
    [id, name, target]: [Arc<str>; 3],
) -> std::io::Result<CheckResult> {
    use monitor_core::result::{Attempt, TcpReport, TcpSample, Timings};
    use std::os::fd::AsFd;
    let sample = |stream: &TcpStream| {
        monitor_sys::tcp_info(stream.as_fd()).map(|info| TcpSample {
            rtt_ms: f64::from(info.rtt_us) / 1000.0,
            rtt_var_ms: f64::from(info.rtt_var_us) / 1000.0,
            retransmits: info.total_retrans,
            lost: info.lost,
        })
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let started_at = time::OffsetDateTime::now_utc();
    let t0 = Instant::now();
    let mut stream = TcpStream::connect(addr).await?;
    let connected = Instant::now();
    let after_connect = sample(&stream);
    stream.set_nodelay(true)?;
    stream.write_all(b"PING\r\n").await?;
    let mut buf = [0u8; 64];
    let mut have = 0;
    let mut first_byte = None;
    loop {
        let n = stream.read(&mut buf[have..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        first_byte.get_or_insert_with(Instant::now);
        have += n;
        if memchr::memmem::find(&buf[..have], b"+PONG").is_some() {
            break;
        }
        if have == buf.len() {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    let at_close = sample(&stream);
    drop(stream);
    let timings = Timings {
        dns_ms: Some(0.0),
        connect_ms: Some(ms(connected - t0)),
        first_byte_ms: first_byte.map(|t| ms(t - connected)),
        total_ms: ms(t0.elapsed()),
        ..Timings::default()
    };
    Ok(CheckResult {
        id,
        name,
        target,
        status: Status::Passed,
        error: None,
        timings,
        address: Some(address.clone()),
        attempts: vec![Attempt {
            status: Status::Passed,
            error: None,
            timings,
            address: Some(address),
            started_at,
            location: None,
        }],
        assertions: Vec::new(),
        response_excerpt: monitor_core::escape::escape_excerpt(
            &buf[..have],
            monitor_core::engine::EXCERPT_BYTES,
        ),
        tls: None,
        facts: Default::default(),
        tcp: Some(TcpReport {
            after_connect,
            at_close,
        }),
        started_at,
    })
}

/// [`raw_ping_facts`] `n` times over `addrs` in turn, on `concurrency` tasks, every result
/// kept until all are done; counts the passed ones.
async fn raw_facts_pool(n: usize, concurrency: usize, addrs: &[SocketAddr]) -> (usize, usize) {
    // The texts a validated monitor would hold, shared by its results.
    let texts: [Arc<str>; 3] = ["plain".into(), "plain".into(), "127.0.0.1:6379".into()];
    let addresses: Arc<[(SocketAddr, Arc<str>)]> = addrs
        .iter()
        .map(|a| (*a, Arc::from(a.to_string())))
        .collect();
    let kept = pool_kept(n, concurrency, move |i| {
        let (addr, address) = addresses[i % addresses.len()].clone();
        raw_ping_facts(addr, address, texts.clone())
    })
    .await;
    let ok = kept
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status == Status::Passed))
        .count();
    (ok, n - ok)
}

/// [`raw_ping`] with the engine's timeouts around each step (connect 5 s, each step 5 s,
/// the whole check 10 s), to tell what timers cost.
async fn raw_ping_timeouts(addr: SocketAddr) -> std::io::Result<()> {
    use tokio::time::{Instant as At, timeout, timeout_at};
    let deadline = At::now() + Duration::from_secs(10);
    let step = || (At::now() + Duration::from_secs(5)).min(deadline);
    let late = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let mut stream = timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .map_err(|_| late())??;
    stream.set_nodelay(true)?;
    timeout_at(step(), stream.write_all(b"PING\r\n"))
        .await
        .map_err(|_| late())??;
    let mut buf = [0u8; 64];
    let mut have = 0;
    loop {
        let n = timeout_at(step(), stream.read(&mut buf[have..]))
            .await
            .map_err(|_| late())??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
        if memchr::memmem::find(&buf[..have], b"+PONG").is_some() {
            return Ok(());
        }
        if have == buf.len() {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

/// Connect, handshake (the chain verified against the CA), parse every presented
/// certificate as X.509, close.
async fn raw_tls(
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    addr: SocketAddr,
) -> Res<()> {
    let stream = TcpStream::connect(addr)
        .await
        .ctx(|| "connect".to_owned())?;
    stream.set_nodelay(true).ctx(|| "nodelay".to_owned())?;
    let tls = connector
        .connect(name, stream)
        .await
        .ctx(|| "handshake".to_owned())?;
    let (_, conn) = tls.get_ref();
    for der in conn.peer_certificates().ctx(|| "no chain".to_owned())? {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).ctx(|| "x509".to_owned())?;
        std::hint::black_box(cert.validity().not_after);
    }
    Ok(())
}

/// The raw loop's TLS client: the CA as its only root, no resumption (every handshake a
/// full one, as the engine's are).
fn raw_tls_connector(root_pem: &str) -> Res<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots
            .add(cert.ctx(|| "root PEM".to_owned())?)
            .ctx(|| "root".to_owned())?;
    }
    let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ctx(|| "rustls versions".to_owned())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(client)))
}

/// Times a workload run on `rt`, with this process's CPU.
fn timed(
    rt: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = (usize, usize)>,
) -> Res<Run> {
    let cpu0 = cpu_seconds("self")?;
    let t0 = Instant::now();
    let (ok, failed) = rt.block_on(work);
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self")? - cpu0;
    Ok(Run {
        ok,
        failed,
        wall,
        cpu,
    })
}

/// Measures every side once per run, in an order rotated run by run so that no side
/// always goes first; returns the series and the engine's first failure, if any.
fn measure<B: FnMut() -> Res<Run>>(
    runs: usize,
    [raw_label, engine_label]: [&str; 2],
    mut raw: impl FnMut() -> Res<Run>,
    mut engine: impl FnMut() -> Res<(Run, Option<String>)>,
    mut blackbox: Option<B>,
) -> Res<(Series, Option<String>)> {
    let mut series = Series::default();
    let mut first_error = None;
    for run_index in 0..runs {
        for side in rotated(3, run_index) {
            match side {
                0 => {
                    let run = raw()?;
                    report(raw_label, &run);
                    series.raw.push(run);
                }
                1 => {
                    let (run, error) = engine()?;
                    report(engine_label, &run);
                    first_error = first_error.or(error);
                    series.engine.push(run);
                }
                _ => {
                    if let Some(bb) = blackbox.as_mut() {
                        let run = bb()?;
                        report("blackbox_exporter", &run);
                        series.blackbox.push(run);
                    }
                }
            }
        }
    }
    Ok((series, first_error))
}

/// Checks every monitor once through the engine's runner, `run_all`; also returns the
/// first failure's message, if any, for the table's note.
fn engine_run(
    rt: &tokio::runtime::Runtime,
    engine: &Engine,
    monitors: &[ValidMonitor],
    concurrency: usize,
) -> Res<(Run, Option<String>)> {
    let mut first_error = None;
    let run = timed(rt, async {
        let results = run_all(engine, monitors, concurrency).await;
        first_error = results
            .iter()
            .find_map(|r| r.error.as_ref().map(|e| e.message.clone()));
        let ok = results
            .iter()
            .filter(|r| r.status == Status::Passed)
            .count();
        (ok, results.len() - ok)
    })?;
    Ok((run, first_error))
}

// ---------------------------------------------------------------------------------------
// blackbox_exporter
// ---------------------------------------------------------------------------------------

/// A blackbox_exporter process on loopback; killed (by its pid) when dropped.
struct Blackbox {
    child: Child,
    addr: SocketAddr,
}

impl Blackbox {
    fn start(binary: &str, workdir: &Path, ca_file: &Path) -> Res<Blackbox> {
        let config = workdir.join("blackbox.yml");
        std::fs::write(
            &config,
            format!(
                "modules:\n\
                 \x20 ping:\n\
                 \x20   prober: tcp\n\
                 \x20   timeout: 5s\n\
                 \x20   tcp:\n\
                 \x20     preferred_ip_protocol: ip4\n\
                 \x20     query_response:\n\
                 \x20       - send: \"PING\\r\"\n\
                 \x20       - expect: \"^\\\\+PONG\"\n\
                 \x20 tls:\n\
                 \x20   prober: tcp\n\
                 \x20   timeout: 5s\n\
                 \x20   tcp:\n\
                 \x20     preferred_ip_protocol: ip4\n\
                 \x20     tls: true\n\
                 \x20     tls_config:\n\
                 \x20       ca_file: {}\n\
                 \x20       server_name: localhost\n",
                ca_file.display()
            ),
        )
        .ctx(|| format!("cannot write {}", config.display()))?;
        let addr = free_port()?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--log.level=error")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .ctx(|| format!("cannot start {binary}"))?;
        let blackbox = Blackbox { child, addr };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if t0.elapsed() > Duration::from_secs(15) {
                return Err(format!("{binary} did not listen on {addr} within 15 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(blackbox)
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Blackbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Res<SocketAddr> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .ctx(|| "cannot find a free port".to_owned())?;
    listener.local_addr().ctx(|| "local address".to_owned())
}

/// A minimal HTTP/1.1 keep-alive client for `GET /probe`.
struct Http {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            stream: None,
            buf: Vec::with_capacity(8192),
        }
    }

    /// GETs `path` and returns the body; on any error the connection is dropped.
    async fn get(&mut self, path: &str) -> std::io::Result<Vec<u8>> {
        let result = self.exchange(path).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, path: &str) -> std::io::Result<Vec<u8>> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buf.clear();
        }
        let stream = self.stream.as_mut().ok_or_else(|| bad("no connection"))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        stream.write_all(request.as_bytes()).await?;
        let head_end = loop {
            if let Some(at) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                break at + 4;
            }
            fill(stream, &mut self.buf).await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let close = header("connection:").is_some_and(|v| v == "close");
        let body = if let Some(len) = header("content-length:") {
            let len: usize = len.parse().map_err(|_| bad("content-length"))?;
            while self.buf.len() < head_end + len {
                fill(stream, &mut self.buf).await?;
            }
            let body = self.buf[head_end..head_end + len].to_vec();
            self.buf.drain(..head_end + len);
            body
        } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            self.buf.drain(..head_end);
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(at) = memchr::memmem::find(&self.buf, b"\r\n") {
                        break at;
                    }
                    fill(stream, &mut self.buf).await?;
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| bad("chunk size"))?;
                while self.buf.len() < line_end + 2 + size + 2 {
                    fill(stream, &mut self.buf).await?;
                }
                body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            return Err(bad("a response without length"));
        };
        if close {
            self.stream = None;
        }
        Ok(body)
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// `n` probes of `module` through `/probe`, `concurrency` at once, spread over `targets`;
/// a probe counts when the exporter answers `probe_success 1`. CPU is the exporter's.
fn blackbox_run(
    rt: &tokio::runtime::Runtime,
    blackbox: &Blackbox,
    module: &'static str,
    targets: &[SocketAddr],
    n: usize,
    concurrency: usize,
) -> Res<Run> {
    let pid = blackbox.pid();
    let cpu0 = cpu_seconds(&pid)?;
    let t0 = Instant::now();
    let paths: Arc<Vec<String>> = Arc::new(
        targets
            .iter()
            .map(|t| format!("/probe?module={module}&target={t}"))
            .collect(),
    );
    let addr = blackbox.addr;
    let (ok, failed) = rt.block_on(async move {
        let next = Arc::new(AtomicUsize::new(0));
        let ok = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (next, ok, paths) = (next.clone(), ok.clone(), paths.clone());
            tasks.spawn(async move {
                let mut http = Http::new(addr);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    if let Ok(body) = http.get(&paths[i % paths.len()]).await
                        && body
                            .split(|b| *b == b'\n')
                            .any(|line| line == b"probe_success 1")
                    {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let ok = ok.load(Ordering::Relaxed);
        (ok, n - ok)
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(&pid)? - cpu0;
    Ok(Run {
        ok,
        failed,
        wall,
        cpu,
    })
}

// ---------------------------------------------------------------------------------------
// throughput
// ---------------------------------------------------------------------------------------

/// The sizes of one throughput bench.
struct Sizes {
    runs: usize,
    concurrency: usize,
    plain: usize,
    plain_blackbox: usize,
    tls: usize,
    tls_blackbox: usize,
}

/// Samples of one workload: engine, raw loop and blackbox_exporter, run by run.
#[derive(Default)]
struct Series {
    engine: Vec<Run>,
    raw: Vec<Run>,
    blackbox: Vec<Run>,
}

/// The median over runs of `a`'s rate over `b`'s.
fn paired(a: &[Run], b: &[Run]) -> f64 {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a.rate() / b.rate()).collect();
    median(&ratios)
}

/// `0..n` rotated left by `by`.
fn rotated(n: usize, by: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + by) % n)
}

fn rates(runs: &[Run]) -> Vec<f64> {
    runs.iter().map(Run::rate).collect()
}

fn cpus(runs: &[Run]) -> Vec<f64> {
    runs.iter().map(Run::cpu_per_1000).collect()
}

fn report(what: &str, run: &Run) {
    eprintln!(
        "  {what:<22} {:>9.0}/s  {:>6.3} CPU s/1000  ({} ok, {} failed, {:.2} s)",
        run.rate(),
        run.cpu_per_1000(),
        run.ok,
        run.failed,
        run.wall
    );
}

fn throughput(opts: &Opts) -> Res<()> {
    let quick = opts.flag("--quick");
    let sizes = Sizes {
        runs: opts.num("--runs", if quick { 3 } else { 5 })?.max(1),
        concurrency: opts.num("--concurrency", 64)?.max(1),
        plain: if quick { 5_000 } else { 20_000 },
        plain_blackbox: if quick { 1_500 } else { 5_000 },
        tls: if quick { 1_000 } else { 4_000 },
        tls_blackbox: if quick { 500 } else { 2_000 },
    };
    let out = opts.required("--out")?;
    let workdir = opts
        .str("--workdir")
        .map_or_else(|| std::env::temp_dir().join("monitor-bench"), PathBuf::from);
    std::fs::create_dir_all(&workdir).ctx(|| format!("cannot create {}", workdir.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .ctx(|| "cannot start tokio".to_owned())?;
    let engine = Engine::new();
    let conc = sizes.concurrency;

    // The certificates: a root, an intermediate and a leaf for localhost.
    let pki = TestPki::new().ctx(|| "cannot generate the test PKI".to_owned())?;
    let leaf = pki
        .leaf_for(&["localhost"], 365)
        .ctx(|| "cannot generate the leaf".to_owned())?;
    let tls_dir = workdir.join("tls");
    std::fs::create_dir_all(&tls_dir).ctx(|| format!("cannot create {}", tls_dir.display()))?;
    let (cert_file, key_file, ca_file) = (
        tls_dir.join("server.pem"),
        tls_dir.join("server.key"),
        tls_dir.join("root.pem"),
    );
    for (path, text) in [
        (&cert_file, &leaf.cert_pem),
        (&key_file, &leaf.key_pem),
        (&ca_file, &pki.root_pem()),
    ] {
        std::fs::write(path, text).ctx(|| format!("cannot write {}", path.display()))?;
    }

    let blackbox = match opts.str("--blackbox") {
        Some(binary) => Some(Blackbox::start(binary, &workdir, &ca_file)?),
        None => None,
    };

    // Plain TCP: four listeners so that connections spread over more 4-tuples.
    let ping = ServerProcess::start(&["--kind", "ping", "--count", "4"])?;
    let addrs = Arc::new(ping.addrs());
    let plain_monitors = |n: usize| -> Res<Vec<ValidMonitor>> {
        (0..n)
            .map(|i| {
                TcpMonitor::new(
                    format!("plain-{i}"),
                    "127.0.0.1",
                    addrs[i % addrs.len()].port(),
                )
                .send("PING\\r\\n")
                .expect("+PONG")
                .validate()
                .map_err(|e| e.to_string())
            })
            .collect()
    };
    let raw_plain = |n: usize| {
        let addrs = addrs.clone();
        pool(n, conc, move |i| {
            let addr = addrs[i % addrs.len()];
            async move { raw_ping(addr).await.is_ok() }
        })
    };
    eprintln!(
        "plain TCP: {} checks (blackbox {}) at concurrency {conc}, {} runs",
        sizes.plain, sizes.plain_blackbox, sizes.runs
    );
    let monitors = plain_monitors(sizes.plain)?;
    // Warm up every path once: connections, allocator, the exporter.
    timed(&rt, raw_plain(sizes.plain / 10))?;
    engine_run(&rt, &engine, &monitors[..sizes.plain / 10], conc)?;
    if let Some(bb) = &blackbox {
        blackbox_run(&rt, bb, "ping", &addrs, sizes.plain_blackbox / 10, conc)?;
    }
    let (plain, plain_error) = measure(
        sizes.runs,
        ["raw tokio loop", "engine"],
        || timed(&rt, raw_plain(sizes.plain)),
        || engine_run(&rt, &engine, &monitors, conc),
        blackbox.as_ref().map(|bb| {
            let (rt, addrs) = (&rt, &addrs);
            move || blackbox_run(rt, bb, "ping", addrs, sizes.plain_blackbox, conc)
        }),
    )?;
    eprintln!(
        "plain TCP, the raw loop with a result's facts (the phases' times, TCP_INFO, each result built and kept):"
    );
    let (floor, _) = measure(
        sizes.runs,
        ["raw tokio loop", "raw with the facts"],
        || timed(&rt, raw_plain(sizes.plain)),
        || Ok((timed(&rt, raw_facts_pool(sizes.plain, conc, &addrs))?, None)),
        None::<fn() -> Res<Run>>,
    )?;
    drop(monitors);
    drop(ping);

    // TLS.
    let tls_server = ServerProcess::start(&[
        "--kind",
        "tls",
        "--count",
        "4",
        "--cert",
        &cert_file.display().to_string(),
        "--key",
        &key_file.display().to_string(),
    ])?;
    let tls_addrs = Arc::new(tls_server.addrs());
    let root_pem = pki.root_pem();
    // `own`: every monitor with TLS settings of its own (its CA text differs by a comment
    // line, which PEM ignores), as monitors of different services have: no two share a
    // setup, so each check builds one and verifies its chain. Otherwise all share one
    // setup, which verifies the unchanged chain once.
    let tls_monitors = |n: usize, own: bool| -> Res<Vec<ValidMonitor>> {
        (0..n)
            .map(|i| {
                let ca = if own {
                    format!("{root_pem}\nmonitor {i}\n")
                } else {
                    root_pem.clone()
                };
                TcpMonitor::new(
                    format!("tls-{i}"),
                    "127.0.0.1",
                    tls_addrs[i % tls_addrs.len()].port(),
                )
                .tls_direct()
                .tls_with(|t| {
                    t.ca = Some(PemSource::Pem(ca));
                    t.server_name = Some("localhost".to_owned());
                })
                .validate()
                .map_err(|e| e.to_string())
            })
            .collect()
    };
    let connector = raw_tls_connector(&root_pem)?;
    let name = ServerName::try_from("localhost").ctx(|| "server name".to_owned())?;
    let raw_tls_loop = |n: usize| {
        let (addrs, connector, name) = (tls_addrs.clone(), connector.clone(), name.clone());
        pool(n, conc, move |i| {
            let fut = raw_tls(connector.clone(), name.clone(), addrs[i % addrs.len()]);
            async move { fut.await.is_ok() }
        })
    };
    eprintln!(
        "TLS: {} checks (blackbox {}) at concurrency {conc}, {} runs",
        sizes.tls, sizes.tls_blackbox, sizes.runs
    );
    let monitors = tls_monitors(sizes.tls, false)?;
    timed(&rt, raw_tls_loop(sizes.tls / 10))?;
    engine_run(&rt, &engine, &tls_monitors(sizes.tls / 10, false)?, conc)?;
    if let Some(bb) = &blackbox {
        blackbox_run(&rt, bb, "tls", &tls_addrs, sizes.tls_blackbox / 10, conc)?;
    }
    let (tls, tls_error) = measure(
        sizes.runs,
        ["raw tokio-rustls loop", "engine"],
        || timed(&rt, raw_tls_loop(sizes.tls)),
        // Fresh monitors each run, sharing one TLS setup.
        || engine_run(&rt, &engine, &tls_monitors(sizes.tls, false)?, conc),
        blackbox.as_ref().map(|bb| {
            let (rt, addrs) = (&rt, &tls_addrs);
            move || blackbox_run(rt, bb, "tls", addrs, sizes.tls_blackbox, conc)
        }),
    )?;
    eprintln!(
        "TLS, every monitor with TLS settings of its own (a setup built and a chain verified per check):"
    );
    let (tls_own, tls_own_error) = measure(
        sizes.runs,
        ["raw tokio-rustls loop", "engine"],
        || timed(&rt, raw_tls_loop(sizes.tls)),
        || engine_run(&rt, &engine, &tls_monitors(sizes.tls, true)?, conc),
        None::<fn() -> Res<Run>>,
    )?;
    drop(monitors);
    drop(tls_server);
    drop(blackbox);

    let failures = |s: &Series| -> String {
        let f = |runs: &[Run]| runs.iter().map(|r| r.failed).sum::<usize>();
        format!(
            "failed checks: engine {}, raw {}, blackbox {}",
            f(&s.engine),
            f(&s.raw),
            f(&s.blackbox)
        )
    };
    let note = |s: &Series, error: &Option<String>| match error {
        Some(e) => format!("{}; first engine failure: {e}", failures(s)),
        None => failures(s),
    };
    let mut rows = vec![
        Row {
            id: "plain_rate_vs_raw",
            figure: "Plain TCP checks/s (engine `run_all` vs raw tokio loop)",
            unit: "checks/s",
            ours: ("engine", rates(&plain.engine)),
            baseline: Some(("raw tokio loop", rates(&plain.raw))),
            target: Some(("≥ 0.9×", at_least(0.9))),
            note: note(&plain, &plain_error),
        },
        Row {
            id: "plain_cpu_vs_raw",
            figure: "Plain TCP CPU s per 1,000 checks (engine vs raw loop)",
            unit: "CPU s/1000",
            ours: ("engine", cpus(&plain.engine)),
            baseline: Some(("raw tokio loop", cpus(&plain.raw))),
            target: Some(("≤ 1.15×", at_most(1.15))),
            note: "client process only (servers run in their own process)".to_owned(),
        },
        Row {
            id: "plain_floor_rate_vs_raw",
            figure: "Plain TCP checks/s, the raw loop gathering a result's facts (vs raw loop)",
            unit: "checks/s",
            ours: ("raw loop with the facts", rates(&floor.engine)),
            baseline: Some(("raw tokio loop", rates(&floor.raw))),
            target: None,
            note: format!(
                "failed checks: with the facts {}, raw {}; the least an engine returning these results does: the phases' clock readings, TCP_INFO after connect and before close, each result built and kept (no timeouts, lateness or assertions)",
                floor.engine.iter().map(|r| r.failed).sum::<usize>(),
                floor.raw.iter().map(|r| r.failed).sum::<usize>()
            ),
        },
        Row {
            id: "plain_floor_cpu_vs_raw",
            figure: "Plain TCP CPU s per 1,000 checks, the raw loop gathering a result's facts (vs raw loop)",
            unit: "CPU s/1000",
            ours: ("raw loop with the facts", cpus(&floor.engine)),
            baseline: Some(("raw tokio loop", cpus(&floor.raw))),
            target: None,
            note: "client process only; the floor under the ≤ 1.15× target".to_owned(),
        },
        Row {
            id: "plain_cpu_vs_floor",
            figure: "Plain TCP CPU s per 1,000 checks (engine vs the raw loop gathering a result's facts)",
            unit: "CPU s/1000",
            ours: ("engine", cpus(&plain.engine)),
            baseline: Some(("raw loop with the facts", cpus(&floor.engine))),
            target: None,
            note: "client process only; medians of separate interleaved series".to_owned(),
        },
        Row {
            id: "tls_rate_vs_raw",
            figure: "TLS checks/s (engine vs raw tokio-rustls handshake loop)",
            unit: "checks/s",
            ours: ("engine", rates(&tls.engine)),
            baseline: Some(("raw tokio-rustls loop", rates(&tls.raw))),
            target: Some(("≥ 0.9×", at_least(0.9))),
            note: note(&tls, &tls_error),
        },
        Row {
            id: "tls_cpu_vs_raw",
            figure: "TLS CPU s per 1,000 checks (engine vs raw loop)",
            unit: "CPU s/1000",
            ours: ("engine", cpus(&tls.engine)),
            baseline: Some(("raw tokio-rustls loop", cpus(&tls.raw))),
            target: Some(("≤ 1.1×", at_most(1.1))),
            note: "client process only; the monitors share one TLS setup, which verifies the unchanged chain once (the handshake's signature is checked every time)".to_owned(),
        },
        Row {
            id: "tls_own_rate_vs_raw",
            figure: "TLS checks/s, every monitor with TLS settings of its own (engine vs raw loop)",
            unit: "checks/s",
            ours: ("engine", rates(&tls_own.engine)),
            baseline: Some(("raw tokio-rustls loop", rates(&tls_own.raw))),
            target: None,
            note: note(&tls_own, &tls_own_error),
        },
        Row {
            id: "tls_own_cpu_vs_raw",
            figure: "TLS CPU s per 1,000 checks, every monitor with TLS settings of its own (engine vs raw loop)",
            unit: "CPU s/1000",
            ours: ("engine", cpus(&tls_own.engine)),
            baseline: Some(("raw tokio-rustls loop", cpus(&tls_own.raw))),
            target: None,
            note: "client process only; each check builds its monitor's TLS setup and verifies its chain, as the first check of a monitor does".to_owned(),
        },
    ];
    if !plain.blackbox.is_empty() {
        rows.push(Row {
            id: "plain_rate_vs_blackbox",
            figure: "Plain TCP checks/s (engine vs blackbox_exporter /probe)",
            unit: "checks/s",
            ours: ("engine", rates(&plain.engine)),
            baseline: Some(("blackbox_exporter", rates(&plain.blackbox))),
            target: Some(("≥ 5×", at_least(5.0))),
            note: format!(
                "blackbox_exporter's tcp prober with query_response PING/+PONG; the raw loop reached {:.2}× blackbox_exporter in the same runs",
                paired(&plain.raw, &plain.blackbox)
            ),
        });
        rows.push(Row {
            id: "plain_cpu_vs_blackbox",
            figure: "Plain TCP CPU s per 1,000 checks (engine vs blackbox_exporter)",
            unit: "CPU s/1000",
            ours: ("engine", cpus(&plain.engine)),
            baseline: Some(("blackbox_exporter", cpus(&plain.blackbox))),
            target: None,
            note: "the exporter's process only, not the HTTP driver".to_owned(),
        });
        rows.push(Row {
            id: "tls_rate_vs_blackbox",
            figure: "TLS checks/s (engine vs blackbox_exporter /probe)",
            unit: "checks/s",
            ours: ("engine", rates(&tls.engine)),
            baseline: Some(("blackbox_exporter", rates(&tls.blackbox))),
            target: Some(("≥ 2.5×", at_least(2.5))),
            note: format!(
                "blackbox_exporter's tcp prober with tls: true and the CA; the raw loop reached {:.2}× blackbox_exporter in the same runs",
                paired(&tls.raw, &tls.blackbox)
            ),
        });
    }
    let detail = |s: &Series| {
        let runs = |r: &[Run]| {
            r.iter()
                .map(
                    |r| json!({ "ok": r.ok, "failed": r.failed, "wall_s": r.wall, "cpu_s": r.cpu }),
                )
                .collect::<Vec<_>>()
        };
        json!({
            "engine": runs(&s.engine), "raw": runs(&s.raw), "blackbox": runs(&s.blackbox),
        })
    };
    let value = json!({
        "sizes": {
            "runs": sizes.runs, "concurrency": sizes.concurrency,
            "plain_checks": sizes.plain, "plain_blackbox_probes": sizes.plain_blackbox,
            "tls_checks": sizes.tls, "tls_blackbox_probes": sizes.tls_blackbox,
        },
        "rows": rows.iter().map(Row::to_json).collect::<Vec<_>>(),
        "runs": {
            "plain": detail(&plain), "plain_floor": detail(&floor),
            "tls": detail(&tls), "tls_own_settings": detail(&tls_own),
        },
    });
    write_json(out, &value)
}

// ---------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------

/// The frequency of monitor `i` in the scheduler bundle: 2 % 10s, 3 % 20s, 5 % 30s,
/// 20 % 1m, 30 % 2m, 40 % 5m (about 1,230 checks/s for 100,000 monitors).
fn mixed_frequency(i: usize) -> Frequency {
    match i % 100 {
        0..=1 => Frequency::S10,
        2..=4 => Frequency::S20,
        5..=9 => Frequency::S30,
        10..=29 => Frequency::M1,
        30..=59 => Frequency::M2,
        _ => Frequency::M5,
    }
}

/// `gen-bundle`: PING monitors at mixed frequencies spread over the given ports.
/// A throwaway PostgreSQL for the control-plane bench: its database's URL on stdout, then
/// stopped (by its process id) once stdin closes.
fn postgres() -> Res<()> {
    let server = monitor_testing::postgres::PostgresServer::start()
        .ctx(|| "starting PostgreSQL".to_owned())?;
    let db = server
        .create_database()
        .ctx(|| "creating the database".to_owned())?;
    println!("url {}", server.url(&db));
    std::io::stdout()
        .flush()
        .ctx(|| "writing the url".to_owned())?;
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
    drop(server);
    Ok(())
}

fn gen_bundle(opts: &Opts) -> Res<()> {
    let count = opts.num("--count", 100_000)?;
    let ports: Vec<u16> = opts
        .required("--ports")?
        .split(',')
        .map(|p| p.trim().parse().ctx(|| format!("`{p}` is not a port")))
        .collect::<Res<_>>()?;
    if ports.is_empty() {
        return Err("--ports names no port".to_owned());
    }
    let monitors: Vec<TcpMonitor> = (0..count)
        .map(|i| {
            TcpMonitor::new(format!("sched-{i:06}"), "127.0.0.1", ports[i % ports.len()])
                .name(format!("scheduled PING {i}"))
                .tag("bench")
                .send("PING\\r\\n")
                .expect("+PONG")
                .frequency(mixed_frequency(i))
        })
        .collect();
    let bundle = Bundle::new(monitors);
    bundle
        .validate()
        .map_err(|e| format!("the generated bundle is invalid: {e}"))?;
    let out = opts.required("--out")?;
    std::fs::write(out, bundle.to_json()).ctx(|| format!("cannot write {out}"))?;
    let rate: f64 = bundle
        .monitors
        .iter()
        .map(|m| 1.0 / m.frequency.as_secs() as f64)
        .sum();
    println!("{}", json!({ "count": count, "checks_per_second": rate }));
    Ok(())
}

/// Monitor `i` of the varied set: plain PING with assertions, TLS, STARTTLS, regex and hex
/// dialogs, retries, tags and locations, as a project's monitors mix them.
fn varied(i: usize) -> TcpMonitor {
    let base = TcpMonitor::new(
        format!("svc-{i:05}"),
        format!("host-{}.internal", i % 500),
        1024 + (i % 60_000) as u16,
    )
    .name(format!("Service {i} answers"))
    .tag(["prod", "staging"][i % 2])
    .tag(format!("team-{}", i % 17))
    .frequency(Frequency::ALL[i % 8])
    .thresholds(200, 1000);
    match i % 10 {
        0..=4 => base
            .send("PING\\r\\n")
            .expect("+PONG")
            .assert(response_time().less_than(ms(100)))
            .assert(response_data().contains("PONG")),
        5 => base
            .tls_direct()
            .tls_with(|t| {
                t.server_name = Some(format!("svc-{i}.example.com"));
                t.expiry_warn_days = 30;
            })
            .assert(tls_days_left().greater_than(14)),
        6 => base
            .starttls(StartTls::Smtp)
            .expect("250")
            .assert(tls_version().equals("TLSv1.3")),
        7 => base
            .send("HELLO\\r\\n")
            .expect_regex("^OK [0-9]+\\r\\n")
            .assert(response_data().matches_regex("OK [0-9]+")),
        8 => base
            .send_bytes(&[0x16, 0x03, 0x01, 0x00, 0x00])
            .expect_bytes(&[0x16, 0x03])
            .retry(RetryStrategy::Fixed(Backoff {
                base_backoff_seconds: 30,
                max_retries: 2,
                max_duration_seconds: 600,
                same_region: true,
            })),
        _ => base
            .read(ReadUntil::Delimiter("\\r\\n".to_owned()))
            .assert(connect_time().less_than(ms(50)))
            .should_fail(false),
    }
}

/// `validate-export`: times parsing and validating a generated bundle of varied monitors
/// (what `run --bundle` and `watch --bundle` do on load) and exporting them (validate
/// each, then the bundle's JSON, what `export` does after building the registry).
fn validate_export(opts: &Opts) -> Res<()> {
    let count = opts.num("--count", 10_000)?;
    let runs = opts.num("--runs", 5)?.max(1);
    let monitors: Vec<TcpMonitor> = (0..count).map(varied).collect();
    let text = Bundle::new(monitors.clone()).to_json();
    let (mut parse, mut validate, mut export) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        let bundle = Bundle::from_json(&text).map_err(|e| format!("generated bundle: {e}"))?;
        let t1 = Instant::now();
        let valid = bundle
            .validate()
            .map_err(|e| format!("generated bundle: {e}"))?;
        let t2 = Instant::now();
        std::hint::black_box(&valid);
        drop(valid);
        drop(bundle);
        let owned = monitors.clone();
        let t3 = Instant::now();
        let valid = owned
            .iter()
            .map(|m| m.validate())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let json = Bundle::new(owned).to_json();
        let t4 = Instant::now();
        std::hint::black_box((&valid, &json));
        parse.push((t1 - t0).as_secs_f64());
        validate.push((t2 - t1).as_secs_f64());
        export.push((t4 - t3).as_secs_f64());
    }
    let load: Vec<f64> = parse.iter().zip(&validate).map(|(p, v)| p + v).collect();
    let value = json!({
        "count": count,
        "bundle_bytes": text.len(),
        "parse_s": side("parse", &parse),
        "validate_s": side("validate", &validate),
        "load_s": side("parse + validate", &load),
        "export_s": side("validate + to_json", &export),
    });
    eprintln!(
        "{count} monitors ({} KB of JSON): parse {:.3} s, validate {:.3} s, export {:.3} s",
        text.len() / 1024,
        median(&parse),
        median(&validate),
        median(&export)
    );
    write_json(opts.required("--out")?, &value)
}

/// `profile`: only the engine's side of a throughput workload, for `perf record`.
fn profile(opts: &Opts) -> Res<()> {
    let kind = opts.required("--kind")?;
    let checks = opts.num("--checks", 20_000)?;
    let runs = opts.num("--runs", 10)?;
    let conc = opts.num("--concurrency", 64)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .ctx(|| "cannot start tokio".to_owned())?;
    let workdir = PathBuf::from(opts.str("--workdir").unwrap_or("target/bench"));
    let tls_dir = workdir.join("tls");
    std::fs::create_dir_all(&tls_dir).ctx(|| format!("cannot create {}", tls_dir.display()))?;
    let pki = TestPki::new().ctx(|| "cannot generate the test PKI".to_owned())?;
    let leaf = pki
        .leaf_for(&["localhost"], 365)
        .ctx(|| "leaf".to_owned())?;
    let (cert, key) = (tls_dir.join("profile.pem"), tls_dir.join("profile.key"));
    std::fs::write(&cert, &leaf.cert_pem).ctx(|| "cert".to_owned())?;
    std::fs::write(&key, &leaf.key_pem).ctx(|| "key".to_owned())?;
    let server = match kind {
        "plain" => ServerProcess::start(&["--kind", "ping", "--count", "4"])?,
        _ => ServerProcess::start(&[
            "--kind",
            "tls",
            "--count",
            "4",
            "--cert",
            &cert.display().to_string(),
            "--key",
            &key.display().to_string(),
        ])?,
    };
    let ports = server.ports.clone();
    let root = pki.root_pem();
    let raw = opts.str("--side") == Some("raw");
    let raw_timeouts = opts.str("--side") == Some("raw-timeouts");
    let raw_facts = opts.str("--side") == Some("raw-facts");
    // The raw sides need no monitors; with `--distinct N`, N monitors validated and checked
    // over and over (their TLS settings built once each), so that an instruction count
    // holds only the checks.
    let distinct = match (raw || raw_timeouts || raw_facts, opts.num("--distinct", 0)?) {
        (true, _) => 0,
        (false, 0) => checks,
        (false, n) => n.min(checks),
    };
    let distinct: Vec<ValidMonitor> = (0..distinct)
        .map(|i| {
            let m = TcpMonitor::new(format!("m-{i}"), "127.0.0.1", ports[i % ports.len()]);
            let m = if kind == "plain" {
                m.send("PING\\r\\n").expect("+PONG")
            } else {
                m.tls_direct().tls_with(|t| {
                    t.ca = Some(PemSource::Pem(root.clone()));
                    t.server_name = Some("localhost".to_owned());
                })
            };
            m.validate().map_err(|e| e.to_string())
        })
        .collect::<Res<_>>()?;
    let monitors: Vec<ValidMonitor> = match distinct.len() {
        0 => Vec::new(),
        n => (0..checks).map(|i| distinct[i % n].clone()).collect(),
    };
    let engine = Engine::new();
    if let Some(m) = monitors.first() {
        eprintln!(
            "CheckResult: {} bytes inline; TcpMonitor: {} bytes inline",
            std::mem::size_of::<monitor_core::CheckResult>(),
            std::mem::size_of::<TcpMonitor>()
        );
        eprintln!(
            "Engine::check future: {} bytes",
            std::mem::size_of_val(&engine.check(m))
        );
    }
    let addrs = Arc::new(server.addrs());
    let connector = raw_tls_connector(&root)?;
    let name = ServerName::try_from("localhost").ctx(|| "server name".to_owned())?;
    for _ in 0..runs {
        if raw_facts {
            let run = timed(&rt, raw_facts_pool(checks, conc, &addrs))?;
            report("raw with the facts", &run);
            continue;
        }
        if raw_timeouts {
            let addrs = addrs.clone();
            let run = timed(
                &rt,
                pool(checks, conc, move |i| {
                    let addr = addrs[i % addrs.len()];
                    async move { raw_ping_timeouts(addr).await.is_ok() }
                }),
            )?;
            report("raw with timeouts", &run);
            continue;
        }
        if raw {
            let (addrs, connector, name) = (addrs.clone(), connector.clone(), name.clone());
            let tls = kind != "plain";
            let run = timed(
                &rt,
                pool(checks, conc, move |i| {
                    let addr = addrs[i % addrs.len()];
                    let (connector, name) = (connector.clone(), name.clone());
                    async move {
                        if tls {
                            raw_tls(connector, name, addr).await.is_ok()
                        } else {
                            raw_ping(addr).await.is_ok()
                        }
                    }
                }),
            )?;
            report("raw", &run);
            continue;
        }
        match opts.str("--runner") {
            // `Engine::check` on long-lived tasks, no runner at all.
            Some("pool") => {
                let (engine, all) = (engine.clone(), Arc::new(monitors.clone()));
                let run = timed(
                    &rt,
                    pool(checks, conc, move |i| {
                        let (engine, all) = (engine.clone(), all.clone());
                        async move { engine.check(&all[i]).await.status == Status::Passed }
                    }),
                )?;
                report("engine, task pool", &run);
            }
            _ => {
                let (run, error) = engine_run(&rt, &engine, &monitors, conc)?;
                report("engine", &run);
                if let Some(e) = error {
                    eprintln!("  first failure: {e}");
                }
            }
        }
    }
    Ok(())
}
