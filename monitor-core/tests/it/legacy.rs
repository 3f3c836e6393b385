//! The legacy TLS 1.0/1.1 probe against OpenSSL's `s_server` (legacy and modern), a rustls
//! server, a plaintext banner, and fixed byte answers, plus the bytes of its ClientHello.
//!
//! The OpenSSL tests need the `openssl` command line tool (Debian package `openssl`).

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::live::free_port;
use monitor_core::engine::legacy::{
    CIPHER_SUITES, LegacyAnswer, LegacyVersion, client_hello, probe,
};
use monitor_testing::{Script, ScriptedServer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// The cipher string that lets OpenSSL 3 use TLS 1.0/1.1 at all (their handshakes sign
/// with SHA-1, which security level 1 and up forbid).
pub(crate) const LEGACY_CIPHERS: &str = "DEFAULT:@SECLEVEL=0";

// ---------------------------------------------------------------------------------------
// OpenSSL s_server
// ---------------------------------------------------------------------------------------

/// A directory under the system temp directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "monitor-core-legacy-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process, killed and waited for when dropped, so a failing test does not leave
/// it running.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An `openssl s_server` on 127.0.0.1 with its certificate directory. Fields drop in
/// order: the process is killed before its directory is removed.
pub(crate) struct OpensslServer {
    _process: Process,
    pub(crate) port: u16,
    /// The PEM file of the certificate it serves.
    pub(crate) cert: PathBuf,
    _dir: TempDir,
}

/// Fails the test with install advice when the `openssl` tool is missing.
fn require_openssl() {
    match Command::new("openssl").arg("version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`openssl version` failed ({}): {}; the legacy TLS tests need a working openssl tool",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run `openssl` ({e}): the legacy TLS tests need the openssl command line \
             tool; install the Debian package `openssl` (apt-get install openssl), as CI does"
        ),
    }
}

impl OpensslServer {
    /// Starts `openssl s_server` with an ECDSA P-256 certificate made by rcgen and the
    /// given protocol flags, and waits until it accepts connections.
    pub(crate) fn start(label: &str, flags: &[&str]) -> OpensslServer {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("rcgen makes a self-signed certificate");
        Self::start_with(
            label,
            &certified.cert.pem(),
            &certified.signing_key.serialize_pem(),
            flags,
        )
    }

    /// Starts `openssl s_server` serving the given certificate and key (PEM).
    pub(crate) fn start_with(
        label: &str,
        cert_pem: &str,
        key_pem: &str,
        flags: &[&str],
    ) -> OpensslServer {
        require_openssl();
        let dir = TempDir::new(label);
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, cert_pem).expect("write cert.pem");
        std::fs::write(&key, key_pem).expect("write key.pem");
        let log_path = dir.path().join("s_server.log");

        // A free port can be taken by someone else before s_server binds it: try a few.
        let mut log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log_file = File::create(&log_path).expect("create the s_server log");
            let child = Command::new("openssl")
                .arg("s_server")
                .arg("-accept")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(&cert)
                .arg("-key")
                .arg(&key)
                .args(["-naccept", "10", "-quiet"])
                .args(flags)
                // Keep stdin open (the Child holds the pipe): s_server reads it for data.
                .stdin(Stdio::piped())
                .stdout(Stdio::from(
                    log_file.try_clone().expect("clone the log file"),
                ))
                .stderr(Stdio::from(log_file))
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start `openssl s_server` ({e}); install the Debian package `openssl`"
                    )
                });
            let mut process = Process(child);
            if wait_ready(&mut process.0, port) {
                return OpensslServer {
                    _process: process,
                    port,
                    cert,
                    _dir: dir,
                };
            }
            drop(process);
            log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!(
            "`openssl s_server {}` did not start: {log}",
            flags.join(" ")
        );
    }
}

/// Polls the port for up to ten seconds; false if the process exited first.
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Connects to 127.0.0.1:`port` and probes `version`, bounded.
async fn probe_port(port: u16, version: LegacyVersion) -> LegacyAnswer {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    tokio::time::timeout(PROBE_LIMIT, probe(&mut stream, version, Some("localhost")))
        .await
        .unwrap_or_else(|_| panic!("probing {version} on port {port} timed out"))
        .unwrap_or_else(|e| panic!("probing {version} on port {port} failed: {e}"))
}

fn assert_accepted(answer: &LegacyAnswer, what: &str) -> u16 {
    match answer {
        LegacyAnswer::Accepted { cipher_suite, .. } => {
            assert!(
                CIPHER_SUITES.contains(cipher_suite),
                "{what}: chose 0x{cipher_suite:04x}, which was not offered"
            );
            *cipher_suite
        }
        other => panic!("{what}: expected accepted, got {other:?}"),
    }
}

fn assert_rejected(answer: &LegacyAnswer, contains: &str, what: &str) {
    match answer {
        LegacyAnswer::Rejected { reason } => assert!(
            reason.contains(contains),
            "{what}: reason {reason:?} should mention {contains:?}"
        ),
        other => panic!("{what}: expected rejected ({contains}), got {other:?}"),
    }
}

/// The ECDSA suites: the only offered ones an ECDSA certificate can serve.
const ECDSA_SUITES: [u16; 2] = [0xc009, 0xc00a];

#[tokio::test]
async fn openssl_tls1_0_server_accepts_only_tls1_0() {
    let server = OpensslServer::start("tls1_0", &["-tls1", "-cipher", LEGACY_CIPHERS]);
    let answer = probe_port(server.port, LegacyVersion::Tls1_0).await;
    let suite = assert_accepted(&answer, "tls 1.0 against a tls 1.0 server");
    assert!(ECDSA_SUITES.contains(&suite), "suite 0x{suite:04x}");
    // Asked for 1.1, a 1.0-only server negotiates down to 1.0: not the version asked for.
    let answer = probe_port(server.port, LegacyVersion::Tls1_1).await;
    assert_rejected(
        &answer,
        "server answered with TLSv1.0",
        "tls 1.1 against a tls 1.0 server",
    );
}

#[tokio::test]
async fn openssl_tls1_1_server_accepts_only_tls1_1() {
    let server = OpensslServer::start("tls1_1", &["-tls1_1", "-cipher", LEGACY_CIPHERS]);
    let answer = probe_port(server.port, LegacyVersion::Tls1_1).await;
    let suite = assert_accepted(&answer, "tls 1.1 against a tls 1.1 server");
    assert!(ECDSA_SUITES.contains(&suite), "suite 0x{suite:04x}");
    let answer = probe_port(server.port, LegacyVersion::Tls1_0).await;
    assert_rejected(
        &answer,
        "protocol_version (70)",
        "tls 1.0 against a tls 1.1 server",
    );
}

#[tokio::test]
async fn modern_openssl_server_rejects_both() {
    // OpenSSL 3.0 with its defaults still negotiates the version down, then finds no
    // signature algorithm its security level allows (SHA-1) and sends internal_error (80);
    // other releases may send protocol_version (70). Either way a fatal alert.
    let server = OpensslServer::start("modern", &[]);
    for version in LegacyVersion::ALL {
        let answer = probe_port(server.port, version).await;
        assert_rejected(
            &answer,
            "server sent a fatal alert",
            &format!("{version} against a modern server"),
        );
    }
}

// ---------------------------------------------------------------------------------------
// rustls and plaintext servers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rustls_server_rejects_both() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("rcgen makes a self-signed certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key.into())
    .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The handshake is meant to fail.
                let _ = acceptor.accept(stream).await;
            });
        }
    });
    for version in LegacyVersion::ALL {
        let answer = probe_port(port, version).await;
        assert_rejected(
            &answer,
            "alert",
            &format!("{version} against a rustls server"),
        );
    }
    task.abort();
}

#[tokio::test]
async fn plaintext_server_is_not_tls() {
    let server = ScriptedServer::start(Script::new().send("220 mail.example.com ESMTP\r\n"))
        .await
        .expect("scripted server");
    let answer = probe_port(server.port(), LegacyVersion::Tls1_0).await;
    let LegacyAnswer::NotTls { excerpt } = &answer else {
        panic!("expected not tls, got {answer:?}");
    };
    // The probe reads what has arrived when it sees the first bytes; on loopback that is
    // the whole banner, but a shorter start would be right too.
    assert!(excerpt.len() >= 5, "excerpt {excerpt:?}");
    assert!(
        "220 mail.example.com ESMTP\\r\\n".starts_with(excerpt.as_str()),
        "excerpt {excerpt:?}"
    );
}

#[tokio::test]
async fn reset_and_close_are_rejections() {
    let server = ScriptedServer::start(Script::new().expect([0x16, 0x03, 0x01]).reset())
        .await
        .expect("scripted server");
    let answer = probe_port(server.port(), LegacyVersion::Tls1_0).await;
    assert_rejected(&answer, "reset the connection", "reset");

    let server = ScriptedServer::start(Script::new().expect([0x16, 0x03, 0x01]).close())
        .await
        .expect("scripted server");
    let answer = probe_port(server.port(), LegacyVersion::Tls1_1).await;
    assert_rejected(&answer, "closed the connection without answering", "close");
}

// ---------------------------------------------------------------------------------------
// The ClientHello bytes
// ---------------------------------------------------------------------------------------

/// The fields of a ClientHello record, parsed strictly (the test panics on any mismatch).
#[derive(Debug)]
struct Hello {
    record_version: u16,
    client_version: u16,
    random: Vec<u8>,
    suites: Vec<u16>,
    compression: Vec<u8>,
    extensions: Vec<(u16, Vec<u8>)>,
}

impl Hello {
    fn extension(&self, kind: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, data)| data.as_slice())
    }

    /// The host name of the server_name extension, if present.
    fn sni(&self) -> Option<String> {
        let data = self.extension(0)?;
        let mut r = Cursor(data);
        let list = r.take16();
        assert_eq!(list.len(), data.len() - 2, "server_name list length");
        let mut list = Cursor(list);
        assert_eq!(list.u8(), 0, "name type host_name");
        let name = list.take16();
        assert!(list.0.is_empty(), "one name only");
        Some(String::from_utf8(name.to_vec()).expect("ascii name"))
    }
}

/// A little reader that panics when the bytes run out.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        assert!(self.0.len() >= n, "wanted {n} bytes, {} left", self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u24(&mut self) -> usize {
        let b = self.take(3);
        (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
    }
    fn take8(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }
    fn take16(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }
}

fn parse_hello(bytes: &[u8]) -> Hello {
    let mut record = Cursor(bytes);
    assert_eq!(record.u8(), 0x16, "content type handshake");
    let record_version = record.u16();
    let fragment = record.take16();
    assert!(record.0.is_empty(), "one record, nothing after it");
    let mut hs = Cursor(fragment);
    assert_eq!(hs.u8(), 0x01, "handshake type client_hello");
    let len = hs.u24();
    let body = hs.take(len);
    assert!(hs.0.is_empty(), "one handshake message");
    let mut b = Cursor(body);
    let client_version = b.u16();
    let random = b.take(32).to_vec();
    assert_eq!(b.take8(), b"", "empty session id");
    let suites = b
        .take16()
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let compression = b.take8().to_vec();
    let mut ext = Cursor(b.take16());
    assert!(b.0.is_empty(), "nothing after the extensions");
    let mut extensions = Vec::new();
    while !ext.0.is_empty() {
        let kind = ext.u16();
        extensions.push((kind, ext.take16().to_vec()));
    }
    Hello {
        record_version,
        client_version,
        random,
        suites,
        compression,
        extensions,
    }
}

#[test]
fn version_names_and_wire_values() {
    assert_eq!(LegacyVersion::Tls1_0.as_str(), "TLSv1.0");
    assert_eq!(LegacyVersion::Tls1_1.as_str(), "TLSv1.1");
    assert_eq!(LegacyVersion::Tls1_0.wire(), 0x0301);
    assert_eq!(LegacyVersion::Tls1_1.wire(), 0x0302);
    assert_eq!(
        serde_json::to_string(&LegacyVersion::ALL).unwrap(),
        r#"["tls1_0","tls1_1"]"#
    );
}

#[test]
fn client_hello_carries_the_version_suites_and_name() {
    let bytes = client_hello(LegacyVersion::Tls1_0, Some("example.com"));
    let hello = parse_hello(&bytes);
    assert_eq!(hello.record_version, 0x0301);
    assert_eq!(hello.client_version, 0x0301);
    assert_eq!(
        hello.suites,
        [
            0xc013, 0xc014, 0xc009, 0xc00a, 0x002f, 0x0035, 0x000a, 0x0033, 0x0039, 0x00ff
        ]
    );
    assert_eq!(hello.compression, [0]);
    let kinds: Vec<u16> = hello.extensions.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [0, 10, 11],
        "server_name, supported_groups, ec_point_formats"
    );
    assert_eq!(hello.sni().as_deref(), Some("example.com"));
    assert_eq!(
        hello.extension(10),
        Some(&[0, 6, 0x00, 0x17, 0x00, 0x18, 0x00, 0x1d][..])
    );
    assert_eq!(hello.extension(11), Some(&[1, 0][..]));
    assert_eq!(hello.extension(43), None, "no supported_versions");

    let hello = parse_hello(&client_hello(LegacyVersion::Tls1_1, Some("example.com.")));
    assert_eq!(hello.record_version, 0x0301, "record version stays 1.0");
    assert_eq!(hello.client_version, 0x0302);
    assert_eq!(
        hello.sni().as_deref(),
        Some("example.com"),
        "no trailing dot"
    );
    let again = parse_hello(&client_hello(LegacyVersion::Tls1_1, Some("example.com")));
    assert_ne!(hello.random, again.random, "a fresh random each time");
}

#[test]
fn client_hello_has_no_name_for_ip_literals_or_nothing() {
    for name in [
        None,
        Some("127.0.0.1"),
        Some("::1"),
        Some("[::1]"),
        Some("2001:db8::1"),
        Some(""),
        Some("not a name"),
    ] {
        let hello = parse_hello(&client_hello(LegacyVersion::Tls1_0, name));
        assert_eq!(hello.sni(), None, "{name:?}");
        let kinds: Vec<u16> = hello.extensions.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [10, 11], "{name:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Fixed answers
// ---------------------------------------------------------------------------------------

/// A TLS record.
fn record(content_type: u8, version: u16, body: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A ServerHello handshake message (no extensions).
fn server_hello(version: u16, session_id_len: u8, suite: u16) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x5a; 32]);
    body.push(session_id_len);
    body.extend(std::iter::repeat_n(0x11, usize::from(session_id_len)));
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0); // compression
    let mut msg = vec![0x02];
    msg.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    msg
}

/// Feeds `answer` to the probe through an in-memory stream that then ends.
async fn answer_to(answer: &[u8], version: LegacyVersion) -> LegacyAnswer {
    let (mut client, mut server) = tokio::io::duplex(64 * 1024);
    server.write_all(answer).await.expect("write the answer");
    server.shutdown().await.expect("end the answer");
    let result = tokio::time::timeout(PROBE_LIMIT, probe(&mut client, version, None))
        .await
        .expect("probe of a fixed answer timed out")
        .expect("probe of a fixed answer failed");
    drop(server);
    result
}

/// What a fixed answer should be classified as.
enum Want<'a> {
    Accepted(u16),
    Rejected(&'a str),
    NotTls(&'a str),
}

async fn check(what: &str, answer: &[u8], version: LegacyVersion, want: Want<'_>) {
    let got = answer_to(answer, version).await;
    match (&got, want) {
        (LegacyAnswer::Accepted { cipher_suite, .. }, Want::Accepted(suite))
            if *cipher_suite == suite => {}
        (LegacyAnswer::Rejected { reason }, Want::Rejected(part)) if reason.contains(part) => {}
        (LegacyAnswer::NotTls { excerpt }, Want::NotTls(start)) if excerpt.starts_with(start) => {}
        (_, want) => {
            let want = match want {
                Want::Accepted(suite) => format!("accepted 0x{suite:04x}"),
                Want::Rejected(part) => format!("rejected mentioning {part:?}"),
                Want::NotTls(start) => format!("not tls starting {start:?}"),
            };
            panic!("{what}: expected {want}, got {got:?}");
        }
    }
}

#[tokio::test]
async fn fixed_answers_are_classified() {
    use LegacyVersion::{Tls1_0, Tls1_1};
    let hello_1_0 = record(0x16, 0x0301, &server_hello(0x0301, 32, 0xc013));
    let hello_1_2 = record(0x16, 0x0303, &server_hello(0x0303, 0, 0xc02f));

    check(
        "fatal protocol_version alert",
        &record(0x15, 0x0301, &[2, 70]),
        Tls1_0,
        Want::Rejected("server sent a fatal alert: protocol_version (70)"),
    )
    .await;
    check(
        "handshake_failure alert",
        &record(0x15, 0x0303, &[2, 40]),
        Tls1_1,
        Want::Rejected("handshake_failure (40)"),
    )
    .await;
    check(
        "alert with an unknown code",
        &record(0x15, 0x0301, &[2, 222]),
        Tls1_1,
        Want::Rejected("unknown (222)"),
    )
    .await;
    check(
        "server hello 1.0",
        &hello_1_0,
        Tls1_0,
        Want::Accepted(0xc013),
    )
    .await;
    check(
        "server hello 1.0 asked for 1.1",
        &hello_1_0,
        Tls1_1,
        Want::Rejected("server answered with TLSv1.0"),
    )
    .await;
    check(
        "server hello 1.2",
        &hello_1_2,
        Tls1_0,
        Want::Rejected("server answered with TLSv1.2"),
    )
    .await;
    check(
        "server hello 1.1 with more messages after it",
        &record(
            0x16,
            0x0302,
            &[
                server_hello(0x0302, 16, 0x0035),
                vec![0x0b, 0, 0, 3, 0, 0, 0],
            ]
            .concat(),
        ),
        Tls1_1,
        Want::Accepted(0x0035),
    )
    .await;
    let split = server_hello(0x0301, 32, 0x002f);
    check(
        "server hello split over three records",
        &[
            record(0x16, 0x0301, &split[..3]),
            record(0x16, 0x0301, &split[3..40]),
            record(0x16, 0x0301, &split[40..]),
        ]
        .concat(),
        Tls1_0,
        Want::Accepted(0x002f),
    )
    .await;
    check(
        "truncated record",
        &hello_1_0[..20],
        Tls1_0,
        Want::Rejected("closed the connection after 20 bytes"),
    )
    .await;
    check(
        "truncated header",
        &[0x16, 0x03],
        Tls1_0,
        Want::Rejected("closed the connection after 2 bytes"),
    )
    .await;
    check(
        "nothing at all",
        b"",
        Tls1_0,
        Want::Rejected("closed the connection without answering"),
    )
    .await;
    check(
        "garbage",
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        Tls1_0,
        Want::NotTls("HTTP/1.1 400 Bad Request\\r\\n"),
    )
    .await;
    check(
        "one byte of garbage",
        b"\x00",
        Tls1_0,
        Want::NotTls("\\x00"),
    )
    .await;
    check(
        "record version with major byte 2",
        &[0x16, 0x02, 0x00, 0x00, 0x05, 1, 2, 3, 4, 5],
        Tls1_0,
        Want::NotTls("\\x16\\x02\\x00"),
    )
    .await;
    check(
        "oversized length",
        &[0x16, 0x03, 0x01, 0x48, 0x01, 0x02],
        Tls1_0,
        Want::NotTls("\\x16\\x03\\x01H\\x01\\x02"),
    )
    .await;
    check(
        "largest length, then the end",
        &[0x16, 0x03, 0x01, 0x48, 0x00, 0x02],
        Tls1_0,
        Want::Rejected("closed the connection after 6 bytes"),
    )
    .await;
    check(
        "alert of one byte",
        &record(0x15, 0x0301, &[2]),
        Tls1_0,
        Want::NotTls("\\x15\\x03\\x01"),
    )
    .await;
    check(
        "session id longer than 32",
        &record(0x16, 0x0301, &server_hello(0x0301, 33, 0xc013)),
        Tls1_0,
        Want::NotTls("\\x16\\x03\\x01"),
    )
    .await;
    check(
        "server hello shorter than its fields",
        &record(
            0x16,
            0x0301,
            &[0x02, 0, 0, 10, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        Tls1_0,
        Want::NotTls("\\x16\\x03\\x01"),
    )
    .await;
    check(
        "certificate before the server hello",
        &record(0x16, 0x0301, &[0x0b, 0, 0, 3, 0, 0, 0]),
        Tls1_0,
        Want::Rejected("handshake message type 11"),
    )
    .await;
    check(
        "application data first",
        &record(0x17, 0x0301, b"hello"),
        Tls1_0,
        Want::Rejected("application_data"),
    )
    .await;
    check(
        "empty handshake records without end",
        &std::iter::repeat_n(record(0x16, 0x0301, &[]), 40)
            .flatten()
            .collect::<Vec<u8>>(),
        Tls1_0,
        Want::Rejected("records without a complete ServerHello"),
    )
    .await;
}

/// A small deterministic generator for the no-panic sweep.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u8 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 56) as u8
    }
}

#[tokio::test]
async fn no_answer_makes_the_probe_panic() {
    let valid = [
        record(0x16, 0x0301, &server_hello(0x0301, 32, 0xc013)),
        record(0x16, 0x0302, &server_hello(0x0302, 0, 0x002f)),
    ]
    .concat();
    // Every prefix: complete enough means accepted, shorter means the connection closed.
    for end in 0..=valid.len() {
        let got = answer_to(&valid[..end], LegacyVersion::Tls1_0).await;
        assert!(
            matches!(
                got,
                LegacyAnswer::Accepted { .. } | LegacyAnswer::Rejected { .. }
            ),
            "prefix of {end} bytes: {got:?}"
        );
    }
    // Every byte of a valid answer replaced by a few values.
    for at in 0..valid.len() {
        for value in [0x00, 0x01, 0x20, 0x7f, 0x80, 0xff] {
            let mut bytes = valid.clone();
            bytes[at] = value;
            let _ = answer_to(&bytes, LegacyVersion::Tls1_1).await;
        }
    }
    // Random bytes, some starting like a TLS record.
    let mut rng = Lcg(0x001e_9ac7);
    for round in 0..300 {
        let len = usize::from(rng.next()) % 120;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next()).collect();
        if round % 2 == 0 && bytes.len() >= 3 {
            bytes[0] = 0x15 + rng.next() % 2;
            bytes[1] = 3;
        }
        let _ = answer_to(&bytes, LegacyVersion::Tls1_0).await;
    }
}
