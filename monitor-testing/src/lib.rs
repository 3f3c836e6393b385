//! `monitor-testing`: what tests of monitors use, and nothing a production binary ships.
//! Loopback servers (a [`ScriptedServer`] that plays a [`Script`] to every connection, a
//! port that refuses, a port whose handshake never completes), a test PKI made with rcgen
//! at run time, a clock that does not wait and one whose wall clock is shifted, a resolver
//! with a fixed table, and helpers that check registered monitors; a throwaway PostgreSQL
//! server ([`postgres`]); a headless Chromium driver for page tests ([`browser`]).
//!
//! ```no_run
//! use monitor_core::prelude::*;
//! use monitor_testing::{Script, ScriptedServer};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let server = ScriptedServer::start(Script::new().expect("PING\r\n").send("+PONG\r\n")).await?;
//! let monitor = TcpMonitor::new("redis", "127.0.0.1", server.port())
//!     .send("PING\\r\\n")
//!     .expect("+PONG")
//!     .validate()
//!     .expect("valid monitor");
//! assert_eq!(Engine::new().check(&monitor).await.status, Status::Passed);
//! # Ok(())
//! # }
//! ```

pub mod browser;
pub mod netns;
pub mod ocsp;
pub mod postgres;
pub mod pypi;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// One thing a scripted server does on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Read until these bytes have arrived (the connection ends if the client closes).
    Expect(Vec<u8>),
    /// Wait.
    Sleep(Duration),
    /// Write these bytes one at a time, waiting between them.
    Drip(Vec<u8>, Duration),
    /// Write without end until the client goes away.
    Flood,
    /// Echo every byte back until the client closes.
    Echo,
    /// Close the connection (FIN).
    Close,
    /// Reset the connection (RST).
    Reset,
}

/// What a scripted server does on each connection, in order. When the script ends without
/// closing, the server keeps the connection open until the client closes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script(pub Vec<Action>);

impl Script {
    /// An empty script: accept and wait for the client to close.
    pub fn new() -> Self {
        Script(Vec::new())
    }
    fn then(mut self, action: Action) -> Self {
        self.0.push(action);
        self
    }
    /// Writes bytes.
    pub fn send(self, bytes: impl AsRef<[u8]>) -> Self {
        self.then(Action::Send(bytes.as_ref().to_vec()))
    }
    /// Reads until the bytes have arrived.
    pub fn expect(self, bytes: impl AsRef<[u8]>) -> Self {
        self.then(Action::Expect(bytes.as_ref().to_vec()))
    }
    /// Waits.
    pub fn sleep(self, duration: Duration) -> Self {
        self.then(Action::Sleep(duration))
    }
    /// Writes bytes one at a time with a pause between them.
    pub fn drip(self, bytes: impl AsRef<[u8]>, every: Duration) -> Self {
        self.then(Action::Drip(bytes.as_ref().to_vec(), every))
    }
    /// Writes without end.
    pub fn flood(self) -> Self {
        self.then(Action::Flood)
    }
    /// Echoes until the client closes.
    pub fn echo(self) -> Self {
        self.then(Action::Echo)
    }
    /// Closes the connection.
    pub fn close(self) -> Self {
        self.then(Action::Close)
    }
    /// Resets the connection.
    pub fn reset(self) -> Self {
        self.then(Action::Reset)
    }
}

/// A server on loopback that plays a script to every connection. Stops when dropped.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts on 127.0.0.1 on a free port.
    pub async fn start(script: Script) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), script).await
    }

    /// Starts on the given address (port 0 for a free one), for example `[::1]:0`.
    pub async fn start_on(addr: SocketAddr, script: Script) -> io::Result<Self> {
        Self::serve(addr, script, None).await
    }

    /// Starts on 127.0.0.1 serving TLS: the `tls.starttls` script runs in plaintext first
    /// (empty for direct TLS), then the handshake, then `script` over TLS.
    pub async fn start_tls(script: Script, tls: TlsServer) -> io::Result<Self> {
        Self::serve(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            script,
            Some(tls),
        )
        .await
    }

    async fn serve(addr: SocketAddr, script: Script, tls: Option<TlsServer>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let script = Arc::new(script);
        let tls = tls.map(Arc::new);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    // A client going away mid-script is normal for a test server.
                    let _ = match tls {
                        None => play(stream, &script).await,
                        Some(tls) => play_tls(stream, &script, &tls).await,
                    };
                });
            }
        });
        Ok(ScriptedServer {
            addr,
            connections,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a scripted server serves TLS.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// The server's rustls configuration (see [`Leaf::server_config`]).
    pub config: Arc<ServerConfig>,
    /// The plaintext dialog before the handshake (a STARTTLS exchange); empty for direct TLS.
    pub starttls: Script,
}

impl TlsServer {
    /// Direct TLS from the first byte.
    pub fn direct(config: Arc<ServerConfig>) -> Self {
        TlsServer {
            config,
            starttls: Script::new(),
        }
    }

    /// TLS after a plaintext STARTTLS exchange.
    pub fn after(starttls: Script, config: Arc<ServerConfig>) -> Self {
        TlsServer { config, starttls }
    }
}

async fn play_tls(mut stream: TcpStream, script: &Script, tls: &TlsServer) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    run_script(&mut stream, &tls.starttls.0, false).await?;
    let tls_stream = TlsAcceptor::from(tls.config.clone()).accept(stream).await?;
    play_on(tls_stream, script).await
}

async fn play(stream: TcpStream, script: &Script) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    if let Some(Action::Reset) = script.0.last() {
        // A reset needs the socket itself: play the rest, then abort.
        let mut stream = stream;
        run_script(&mut stream, &script.0[..script.0.len() - 1], false).await?;
        stream.set_zero_linger()?;
        drop(stream);
        return Ok(());
    }
    play_on(stream, script).await
}

async fn play_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    script: &Script,
) -> io::Result<()> {
    if run_script(&mut stream, &script.0, true).await? {
        return Ok(());
    }
    // Hold the connection until the client closes it.
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

/// Plays actions; returns whether the connection is finished (closed or reset).
async fn run_script<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    actions: &[Action],
    _last: bool,
) -> io::Result<bool> {
    let mut seen = Vec::new();
    for action in actions {
        match action {
            Action::Send(bytes) => stream.write_all(bytes).await?,
            Action::Expect(want) => loop {
                if let Some(at) = memchr::memmem::find(&seen, want) {
                    seen.drain(..at + want.len());
                    break;
                }
                // Never read past the end of the match: what follows may belong to the
                // next phase (a TLS ClientHello right after a MySQL SSL request).
                let partial = (0..=want.len().min(seen.len()))
                    .rev()
                    .find(|&k| seen.ends_with(&want[..k]))
                    .unwrap_or(0);
                let mut buf = vec![0u8; want.len() - partial];
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Ok(true);
                }
                seen.extend_from_slice(&buf[..n]);
            },
            Action::Sleep(d) => tokio::time::sleep(*d).await,
            Action::Drip(bytes, every) => {
                for b in bytes {
                    stream.write_all(&[*b]).await?;
                    tokio::time::sleep(*every).await;
                }
            }
            Action::Flood => {
                let chunk = [b'x'; 8192];
                loop {
                    stream.write_all(&chunk).await?;
                }
            }
            Action::Echo => {
                let mut buf = [0u8; 4096];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return Ok(true);
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            }
            Action::Close => {
                stream.shutdown().await?;
                return Ok(true);
            }
            // Over TLS a reset is a close without close_notify.
            Action::Reset => return Ok(true),
        }
    }
    Ok(false)
}

/// A port for a server a test starts in its own process (a Debian server, an exporter):
/// free on 127.0.0.1 when picked, and below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 by default). A port taken
/// from that range with `bind(0)` and released could be handed to another socket bound
/// to port 0, in this test binary's parallel tests or elsewhere, before the server binds
/// it: the server then fails to start while its readiness check connects to the other
/// socket. Below the range only callers of this function pick ports, in turn from a
/// point that depends on the process id, so one process never hands out a port twice in
/// a row. Falls back to `bind(0)` when the range leaves no room below it.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let pool = (low.saturating_sub(16384).max(1024))..low;
    let size = usize::from(pool.end - pool.start);
    let start = std::process::id() as usize * 7919;
    for _ in 0..size {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % size;
        let Ok(offset) = u16::try_from(offset) else {
            continue;
        };
        let port = pool.start + offset;
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A loopback port on which nothing listens: connecting is refused.
pub fn refusing_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A loopback listener whose accept queue is full, so a new connection's handshake never
/// completes and connecting times out. Keeps its filler connections while alive.
#[derive(Debug)]
pub struct Unresponsive {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Unresponsive {
    /// Binds on 127.0.0.1 with the smallest backlog and fills it.
    pub async fn start() -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Binds on the given address with the smallest backlog and fills it.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(addr)?;
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        let mut fillers = Vec::new();
        // Connect until one handshake stalls: the queue is then full.
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Ok(Unresponsive {
                        addr,
                        _listener: listener,
                        _fillers: fillers,
                    });
                }
            }
        }
        Err(io::Error::other("the accept queue never filled up"))
    }

    /// The address whose handshake never completes.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Now plus `days` (negative for the past), for certificate validity.
pub fn days_from_now(days: i64) -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(days)
}

/// A private PKI for tests: a root CA and an intermediate CA it issued, both generated at
/// test time, issuing leaf certificates with chosen names and validity.
#[derive(Debug)]
pub struct TestPki {
    root_pem: String,
    intermediate_params: CertificateParams,
    intermediate_key: KeyPair,
    intermediate: CertificateDer<'static>,
    intermediate_pem: String,
}

/// A generated certificate with its key and the chain a server presents.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The certificate.
    pub cert: CertificateDer<'static>,
    /// The issuing intermediate, if any.
    pub intermediate: Option<CertificateDer<'static>>,
    /// The certificate as PEM, followed by its intermediate when it has one: the chain a
    /// server or client presents.
    pub cert_pem: String,
    /// The private key as PEM (PKCS#8).
    pub key_pem: String,
    key_der: Vec<u8>,
}

fn ca_params(
    name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Monitor Test");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

fn leaf_params(
    names: &[&str],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    Ok(params)
}

impl TestPki {
    /// A root and an intermediate, valid from a day ago for ten years.
    pub fn new() -> Result<Self, rcgen::Error> {
        Self::with_intermediate_validity(days_from_now(-1), days_from_now(3650))
    }

    /// A root valid for ten years and an intermediate with the given validity.
    pub fn with_intermediate_validity(
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Self, rcgen::Error> {
        let root_key = KeyPair::generate()?;
        // Each PKI's names are its own, so two test PKIs never look alike.
        let tag = monitor_core::escape::to_hex(&root_key.public_key_raw()[1..5]);
        let root_params = ca_params(
            &format!("Monitor Test Root CA {tag}"),
            days_from_now(-2),
            days_from_now(3650),
        )?;
        let root = root_params.self_signed(&root_key)?;
        let intermediate_key = KeyPair::generate()?;
        let intermediate_params = ca_params(
            &format!("Monitor Test Intermediate CA {tag}"),
            not_before,
            not_after,
        )?;
        let intermediate = intermediate_params.signed_by(
            &intermediate_key,
            &Issuer::from_params(&root_params, &root_key),
        )?;
        Ok(TestPki {
            root_pem: root.pem(),
            intermediate_params,
            intermediate_key,
            intermediate: intermediate.der().clone(),
            intermediate_pem: intermediate.pem(),
        })
    }

    /// The root certificate as PEM, to trust with `tls.ca`.
    pub fn root_pem(&self) -> String {
        self.root_pem.clone()
    }

    /// A leaf issued by the intermediate for `names` (DNS names or IP addresses).
    pub fn leaf(
        &self,
        names: &[&str],
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<Leaf, rcgen::Error> {
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.intermediate_params, &self.intermediate_key);
        let cert = leaf_params(names, not_before, not_after)?.signed_by(&key, &issuer)?;
        Ok(Leaf {
            cert: cert.der().clone(),
            intermediate: Some(self.intermediate.clone()),
            cert_pem: cert.pem() + &self.intermediate_pem,
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        })
    }

    /// A leaf valid from a day ago for `days` days.
    pub fn leaf_for(&self, names: &[&str], days: i64) -> Result<Leaf, rcgen::Error> {
        self.leaf(names, days_from_now(-1), days_from_now(days))
    }
}

/// A self-signed certificate for `names`.
pub fn self_signed(
    names: &[&str],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Leaf, rcgen::Error> {
    let key = KeyPair::generate()?;
    let cert = leaf_params(names, not_before, not_after)?.self_signed(&key)?;
    Ok(Leaf {
        cert: cert.der().clone(),
        intermediate: None,
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        key_der: key.serialize_der(),
    })
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }

    /// The chain a server presents: the leaf, then the intermediate when `full`.
    pub fn chain(&self, full: bool) -> Vec<CertificateDer<'static>> {
        let mut chain = vec![self.cert.clone()];
        if full {
            chain.extend(self.intermediate.clone());
        }
        chain
    }

    fn builder() -> rustls::ConfigBuilder<ServerConfig, rustls::WantsVerifier> {
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("the ring provider supports the default versions"))
    }

    /// A rustls server configuration presenting this certificate (with the intermediate
    /// when `full`).
    pub fn server_config(&self, full: bool) -> Result<Arc<ServerConfig>, rustls::Error> {
        let config = Self::builder()
            .with_no_client_auth()
            .with_single_cert(self.chain(full), self.key())?;
        Ok(Arc::new(config))
    }

    /// Like [`Leaf::server_config`], and requiring a client certificate issued under
    /// `client_ca` (PEM).
    pub fn server_config_with_client_auth(
        &self,
        client_ca: &str,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        self.client_auth_config(client_ca, false)
    }

    /// Like [`Leaf::server_config_with_client_auth`], but the client certificate is
    /// optional: the server asks for one and goes on without.
    pub fn server_config_with_optional_client_auth(
        &self,
        client_ca: &str,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        self.client_auth_config(client_ca, true)
    }

    fn client_auth_config(
        &self,
        client_ca: &str,
        optional: bool,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            monitor_core::model::pem::parse_certs(client_ca).map_err(rustls::Error::General)?
        {
            roots.add(cert)?;
        }
        let mut verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        );
        if optional {
            verifier = verifier.allow_unauthenticated();
        }
        let verifier = verifier
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let config = Self::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain(true), self.key())?;
        Ok(Arc::new(config))
    }
}

/// Validates every monitor registered with `#[tcp_monitor]` in this binary and panics with
/// every problem (file and line included) if one is invalid: call it from a `#[test]` so
/// `cargo test` fails on an invalid monitor.
pub fn assert_registry_valid() {
    if let Err(errors) = monitor_core::registry::validate_all() {
        panic!("invalid monitors:\n{errors}");
    }
}

/// The registered monitor `id`, defaults applied and body run; panics naming the ids
/// there are when it is not registered.
pub fn declared(id: &str) -> monitor_core::TcpMonitor {
    let all = match monitor_core::registry::monitors() {
        Ok(all) => all,
        Err(errors) => panic!("the registry is invalid:\n{errors}"),
    };
    let ids: Vec<String> = all.iter().map(|d| d.monitor.id.clone()).collect();
    match all.into_iter().find(|d| d.monitor.id == id) {
        Some(d) => d.monitor,
        None => panic!(
            "no monitor with id `{id}` is registered; the ids are: {}",
            ids.join(", ")
        ),
    }
}

/// A clock that measures real time but does not wait between retries, so tests of
/// monitors with retry strategies stay fast (every attempt is still made and recorded).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoWaitClock;

impl monitor_core::Clock for NoWaitClock {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn sleep(&self, _: Duration) -> monitor_core::engine::BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A clock that measures and waits in real time, with its wall clock shifted from now by
/// an offset the test sets and may change between checks (whole seconds): certificates
/// and OCSP answers judged as on another day. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct ShiftedWall(Arc<AtomicI64>);

impl ShiftedWall {
    /// The wall clock `shift` from now.
    pub fn new(shift: time::Duration) -> Self {
        let clock = ShiftedWall::default();
        clock.set(shift);
        clock
    }

    /// Moves the wall clock to `shift` from now.
    pub fn set(&self, shift: time::Duration) {
        self.0.store(shift.whole_seconds(), Ordering::Relaxed);
    }
}

impl monitor_core::Clock for ShiftedWall {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
    fn wall(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.0.load(Ordering::Relaxed))
    }
    fn sleep(&self, d: Duration) -> monitor_core::engine::BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Validates and checks a monitor with an engine that does not wait between retries;
/// panics with every problem if the monitor is invalid.
pub async fn check(spec: monitor_core::TcpMonitor) -> monitor_core::CheckResult {
    match spec.validate() {
        Ok(monitor) => {
            monitor_core::Engine::new()
                .with_clock(NoWaitClock)
                .check(&monitor)
                .await
        }
        Err(errors) => panic!("monitor `{}` is invalid: {errors}", spec.id),
    }
}

/// Checks the registered monitor `id` against a test server at `addr` instead of its
/// declared target (TLS still verifies the declared name).
pub async fn check_declared(id: &str, addr: SocketAddr) -> monitor_core::CheckResult {
    check(declared(id).pointed_at(addr)).await
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

impl monitor_core::Resolve for StaticResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> monitor_core::engine::BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
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

/// Stops a server process by its id: `signal` (such as `-TERM`, or `-INT` for
/// PostgreSQL's fast shutdown) through `kill`, up to 10 s for it to exit, then SIGKILL;
/// waits for it either way.
pub fn stop_process(child: &mut std::process::Child, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
