//! `control-plane serve --tls-cert --tls-key` end to end: HTTPS with a certificate of the
//! test PKI, a new certificate taken on SIGHUP for new connections while an open
//! connection keeps being answered, a bad file on SIGHUP keeping the old certificate, the
//! handshake bounded by the header timeout, login cookies marked `Secure`, and the flags'
//! errors.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_testing::{Leaf, TestPki};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{SERVER, TempDir, spawn_server};

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn client_config(pki: &TestPki) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let root = monitor_spec::pem::parse_certs(&pki.root_pem()).expect("the test root");
    roots.add_parsable_certificates(root);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A TLS connection to `addr` as `localhost`, its handshake done.
fn connect(addr: &str, config: &Arc<ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = ClientConnection::new(Arc::clone(config), name).expect("client");
    let mut tls = StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("the tls handshake");
    }
    tls
}

/// The leaf certificate the server presented on `tls`.
fn leaf_of(tls: &Tls) -> CertificateDer<'static> {
    tls.conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presents a certificate")
        .clone()
        .into_owned()
}

/// Sends `GET /healthz` on a kept-alive connection and reads the whole response: its
/// status line and body.
fn healthz(tls: &mut Tls) -> (String, String) {
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send a request");
    tls.flush().expect("flush");
    let mut reader = BufReader::new(tls);
    let mut status = String::new();
    reader.read_line(&mut status).expect("the status line");
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("a header");
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("a content length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    (
        status.trim().to_owned(),
        String::from_utf8_lossy(&body).into_owned(),
    )
}

fn write_pair(dir: &Path, leaf: &Leaf) {
    std::fs::write(dir.join("cert.pem"), &leaf.cert_pem).expect("write the certificate");
    std::fs::write(dir.join("key.pem"), &leaf.key_pem).expect("write the key");
}

fn hangup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid}: {status}");
}

/// Opens new connections until one presents `want`, for up to 10 s.
fn wait_for_leaf(addr: &str, config: &Arc<ClientConfig>, want: &CertificateDer<'_>) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if leaf_of(&connect(addr, config)) == *want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A control plane serving HTTPS with `leaf` (written to `cert.pem` and `key.pem` in its
/// directory) and `extra` flags.
struct Https {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    log: Arc<std::sync::Mutex<String>>,
    dir: TempDir,
    db: String,
    cert: String,
}

impl Https {
    fn start(leaf: &Leaf, extra: &[&str]) -> Https {
        let dir = TempDir::new();
        write_pair(&dir.0, leaf);
        let cert = dir.0.join("cert.pem").display().to_string();
        let key = dir.0.join("key.pem").display().to_string();
        let db = dir.0.join("control-plane.db").display().to_string();
        let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
        args.extend_from_slice(extra);
        let (child, url, log) = spawn_server(&db, "127.0.0.1:0", &args);
        let addr = url.trim_start_matches("http://").to_owned();
        Https {
            child,
            addr,
            log,
            dir,
            db,
            cert,
        }
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        monitor_testing::stop_process(&mut self.child, "-TERM");
    }
}

#[test]
fn tls_certificate_reloads_on_sighup_and_open_connections_keep_theirs() {
    let pki = TestPki::new().expect("test pki");
    let first = pki
        .leaf_for(&["first.test", "localhost"], 30)
        .expect("leaf");
    let second = pki
        .leaf_for(&["second.test", "localhost"], 60)
        .expect("leaf");
    let server = Https::start(&first, &[]);
    let (addr, log, dir, cert) = (&server.addr, &server.log, &server.dir, &server.cert);
    let config = client_config(&pki);

    // Connection 1: one request answered, kept open.
    let mut one = connect(addr, &config);
    assert_eq!(leaf_of(&one), first.cert);
    let (status, body) = healthz(&mut one);
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(
        log.lock().unwrap().contains("loaded the tls certificate"),
        "the certificate is logged on load"
    );

    write_pair(&dir.0, &second);
    hangup(server.child.id());
    assert!(
        wait_for_leaf(addr, &config, &second.cert),
        "no new connection saw the new certificate; the log:\n{}",
        log.lock().unwrap()
    );
    let logged = log.lock().unwrap().clone();
    let reloaded = logged
        .lines()
        .find(|l| l.contains("reloaded the tls certificate"))
        .unwrap_or_else(|| panic!("the reload is not logged:\n{logged}"));
    assert!(reloaded.contains("CN=second.test"), "{reloaded}");
    assert!(
        logged.contains("CN=first.test"),
        "the first load is logged: {logged}"
    );

    // Connection 1 is still answered, on the certificate it started with.
    let (status, _) = healthz(&mut one);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(leaf_of(&one), first.cert);

    // A bad certificate file on SIGHUP is logged with its name; the last good one stays.
    std::fs::write(dir.0.join("cert.pem"), "not a certificate\n").expect("write garbage");
    hangup(server.child.id());
    let start = Instant::now();
    while !log
        .lock()
        .unwrap()
        .contains("reloading the tls certificate failed")
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let logged = log.lock().unwrap().clone();
    let failure = logged
        .lines()
        .find(|l| l.contains("reloading the tls certificate failed"))
        .unwrap_or_else(|| panic!("the bad file is not logged:\n{logged}"));
    assert!(
        failure.contains(cert.as_str())
            && failure.contains("holds no `-----BEGIN CERTIFICATE-----` block"),
        "{failure}"
    );
    let mut three = connect(addr, &config);
    assert_eq!(leaf_of(&three), second.cert);
    assert_eq!(healthz(&mut three).0, "HTTP/1.1 200 OK");
}

#[test]
fn tls_handshake_is_bounded_by_the_header_timeout() {
    let pki = TestPki::new().expect("test pki");
    let leaf = pki.leaf_for(&["localhost"], 30).expect("leaf");
    let server = Https::start(&leaf, &["--header-timeout", "1s", "--max-connections", "1"]);
    let addr = &server.addr;
    // A client that connects and never says hello holds the only connection for at most
    // the header timeout, then is closed, and the next client is served.
    let mut silent = TcpStream::connect(addr).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let start = Instant::now();
    let mut buf = [0; 64];
    let read = silent.read(&mut buf);
    let waited = start.elapsed();
    assert!(matches!(read, Ok(0)) || read.is_err(), "{read:?}");
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    let mut next = connect(addr, &client_config(&pki));
    assert_eq!(healthz(&mut next).0, "HTTP/1.1 200 OK");
}

#[test]
fn tls_flags_are_checked_before_serving() {
    let dir = TempDir::new();
    let db = dir.0.join("control-plane.db").display().to_string();
    let run = |extra: &[&str]| {
        Command::new(SERVER)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
            .args(extra)
            .env_remove("CONTROL_PLANE_TLS_CERT")
            .env_remove("CONTROL_PLANE_TLS_KEY")
            .env_remove("CONTROL_PLANE_PUBLIC_STATUS")
            .stdin(Stdio::null())
            .output()
            .expect("run control-plane serve")
    };
    let alone = run(&["--tls-cert", "cert.pem"]);
    assert_eq!(alone.status.code(), Some(2));
    let err = String::from_utf8_lossy(&alone.stderr);
    assert!(err.contains("--tls-key <FILE>"), "{err}");

    let missing = dir.0.join("missing.pem").display().to_string();
    let out = run(&["--tls-cert", &missing, "--tls-key", &missing]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot read the certificate file {missing}: ")),
        "{err}"
    );
    assert!(
        !Path::new(&db).exists(),
        "a bad certificate stops the server before it opens the database"
    );

    let pki = TestPki::new().expect("test pki");
    let leaf = pki.leaf_for(&["localhost"], 30).expect("leaf");
    let other = pki.leaf_for(&["localhost"], 30).expect("leaf");
    std::fs::write(dir.0.join("cert.pem"), &leaf.cert_pem).expect("write");
    std::fs::write(dir.0.join("key.pem"), &other.key_pem).expect("write");
    let cert = dir.0.join("cert.pem").display().to_string();
    let key = dir.0.join("key.pem").display().to_string();
    let out = run(&["--tls-cert", &cert, "--tls-key", &key]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the key file {key} does not fit the certificate file {cert}"
        )),
        "{err}"
    );

    let out = run(&["--public-status", "shop,bad name"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--public-status: invalid project name `bad name`"),
        "{err}"
    );
}

/// Named `browser::` (the test names are matched as substrings) so that the Chromium
/// suite of `.ci/packages.toml` selects it.
mod browser {
    use super::*;
    use monitor_testing::browser::Browser;

    #[test]
    fn chromium_speaks_https_to_the_control_plane() {
        let pki = TestPki::new().expect("test pki");
        let leaf = pki.leaf_for(&["localhost"], 30).expect("leaf");
        let server = Https::start(&leaf, &[]);
        let https = format!("https://{}/healthz", server.addr);
        let mut chromium = Browser::launch().expect("chromium starts");
        let page = chromium.open(&https, 375).expect("open over https");
        assert_eq!((page.status, page.url.as_str()), (200, https.as_str()));
        let protocol = chromium
            .eval("performance.getEntriesByType('navigation')[0].nextHopProtocol")
            .expect("eval");
        assert_eq!(protocol, "http/1.1");
        drop(chromium);
    }
}

#[test]
fn tls_login_cookies_are_secure() {
    let pki = TestPki::new().expect("test pki");
    let leaf = pki.leaf_for(&["localhost"], 30).expect("leaf");
    let server = Https::start(&leaf, &[]);
    let token = super::create_token_for(&server.db, "shop", "read");
    let mut tls = connect(&server.addr, &client_config(&pki));
    let body = format!("token={token}&next=%2F");
    write!(
        tls,
        "POST /login HTTP/1.1\r\nHost: localhost\r\nOrigin: https://localhost\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send the login form");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {answer}"));
    for part in ["cp_session=", "HttpOnly", "SameSite=Lax", "; Secure"] {
        assert!(cookie.contains(part), "{cookie}");
    }
}
