//! `watch`'s `/metrics` as a blackbox_exporter drop-in and gzip (issue 15, item 5): Debian's
//! `prometheus-blackbox-exporter` (tcp prober, TLS, the test PKI's root) and `watch`'s
//! `/metrics` server probe the same TLS server, and their families, label names and the
//! values that do not depend on timing agree, for a passed check, one that fails on what
//! the server answered (blackbox's regex), a refused one and a certificate with an awkward
//! subject; certificate names are written as Go writes them (without the exporter too);
//! `/metrics` is gzip-compressed when asked, still streamed, and decodes to the plain
//! text.
//!
//! The blackbox tests need `/usr/bin/prometheus-blackbox-exporter` (Debian package
//! `prometheus-blackbox-exporter`): their names start with `blackbox_`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_core::PemSource;
use monitor_core::prelude::*;
use monitor_core::runner::http::Limits;
use monitor_core::runner::watch::{self, State};
use monitor_testing::{Script, ScriptedServer, TestPki, TlsServer, refusing_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::live::require;
use crate::servers::run;

/// The families blackbox_exporter's tcp prober writes that `watch` does not claim. None
/// for blackbox 0.23: every family of its tcp prober has a counterpart.
const NOT_CLAIMED: &[&str] = &[];

/// Families whose values depend on timing, compared by name and labels only.
const TIMED: &[&str] = &["probe_duration_seconds", "probe_dns_lookup_time_seconds"];

/// Families whose values differ when no address answered: blackbox writes the address
/// it resolved, `watch` the one that answered (0 without one).
const ANSWERED: &[&str] = &["probe_ip_protocol", "probe_ip_addr_hash"];

/// The name the test certificate is issued for and verified against.
const NAME: &str = "monitor.test";

/// The name of the certificate with an awkward subject.
const ODD_NAME: &str = "odd.test";

/// A self-signed certificate for [`ODD_NAME`] whose subject needs every escape of Go's
/// `pkix.Name.String()`, non-ASCII text, attributes in another order than Go's and
/// attributes Go has no name for; its server configuration and its PEM.
fn odd_certificate() -> (Arc<rustls::ServerConfig>, String) {
    use rcgen::{CertificateParams, DnType, DnValue, KeyPair};
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![ODD_NAME.to_owned(), "::1".to_owned()]).unwrap();
    let dn = &mut params.distinguished_name;
    dn.push(DnType::CommonName, "a, b+c");
    dn.push(DnType::CountryName, "DE");
    dn.push(DnType::OrganizationName, " Org; <x> ");
    dn.push(DnType::OrganizationalUnitName, "#ou\"q\\");
    dn.push(DnType::LocalityName, "Zürich");
    // emailAddress, as IA5String; and a private attribute in UTF-8.
    dn.push(
        DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
        DnValue::Ia5String("ops@odd.test".try_into().unwrap()),
    );
    dn.push(DnType::CustomDnType(vec![1, 3, 6, 1, 4, 1, 99_999, 1]), "é");
    let cert = params.self_signed(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    (Arc::new(config), cert.pem())
}

/// A scrape: family name → its samples (labels without `monitor`, raw value text).
type Families = BTreeMap<String, Vec<(BTreeMap<String, String>, String)>>;

/// Parses the text exposition format, keeping the samples with `monitor="ID"` (or all
/// when `monitor` is `None`), without that label. Label values stay escaped.
fn families(text: &str, monitor: Option<&str>) -> Families {
    let mut out = Families::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, labels, value) = sample(line);
        let mut labels = labels;
        let own = labels.remove("monitor");
        if monitor.is_none() || own.as_deref() == monitor {
            out.entry(name).or_default().push((labels, value));
        }
    }
    out
}

/// One sample line: name, labels (values still escaped) and value.
fn sample(line: &str) -> (String, BTreeMap<String, String>, String) {
    let end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    let name = line[..end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let mut key = String::new();
        loop {
            let Some((i, c)) = chars.next() else {
                panic!("unterminated labels: {line}");
            };
            match c {
                '}' => {
                    rest = &inner[i + 1..];
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    let mut value = String::new();
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => {
                                value.push(c);
                                value.extend(chars.next().map(|(_, c)| c));
                            }
                            '"' => break,
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        }
    }
    (name, labels, rest.trim().to_owned())
}

fn number(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"))
}

/// `GET path` over HTTP/1.1 with `Connection: close` and the `extra` header lines: the
/// response head (lower case) and the body, de-chunked.
async fn get(addr: SocketAddr, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n{extra}\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let at = memchr::memmem::find(&raw, b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
    let mut body = raw[at + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (head, body)
}

/// The data of a chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = memchr::memmem::find(raw, b"\r\n").expect("a chunk size line");
        let size_text = std::str::from_utf8(&raw[..eol]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("a hex chunk size");
        raw = &raw[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// A running `prometheus-blackbox-exporter` on loopback, killed on drop.
struct Exporter {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Exporter {
    /// Starts the exporter with modules `tls` (expects `hello over tls`) and `tls_nope`
    /// (expects `NOPE`), both trusting `ca` and verifying [`NAME`], and `odd` (expects
    /// `hello over tls`) trusting `odd_ca` and verifying [`ODD_NAME`].
    async fn start(ca: &str, odd_ca: &str) -> Exporter {
        let program = require(
            "/usr/bin/prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        );
        let dir = std::env::temp_dir().join(format!(
            "monitors-blackbox-{}-{}",
            std::process::id(),
            monitor_testing::free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca_file, odd_file) = (dir.join("ca.pem"), dir.join("odd.pem"));
        std::fs::write(&ca_file, ca).unwrap();
        std::fs::write(&odd_file, odd_ca).unwrap();
        let module = |ca: &PathBuf, name: &str, expect: &str| {
            format!(
                "    prober: tcp\n    timeout: 5s\n    tcp:\n      tls: true\n      tls_config:\n        ca_file: {}\n        server_name: {name}\n      query_response:\n        - expect: \"{expect}\"\n",
                ca.display()
            )
        };
        let config = format!(
            "modules:\n  tls:\n{}  tls_nope:\n{}  odd:\n{}",
            module(&ca_file, NAME, "^hello over tls"),
            module(&ca_file, NAME, "NOPE"),
            module(&odd_file, ODD_NAME, "^hello over tls"),
        );
        let config_file = dir.join("blackbox.yml");
        std::fs::write(&config_file, config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", monitor_testing::free_port())
            .parse()
            .unwrap();
        let child = Command::new(program)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start prometheus-blackbox-exporter");
        let exporter = Exporter { child, addr, dir };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "blackbox_exporter did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        exporter
    }

    /// `/probe` of `module` against `target`: the exposition text.
    async fn probe(&self, module: &str, target: SocketAddr) -> String {
        let (head, body) = get(
            self.addr,
            &format!("/probe?module={module}&target={target}"),
            "",
        )
        .await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        String::from_utf8(body).unwrap()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serves `state` as `watch` does on a free loopback port.
async fn serve(state: Arc<State>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(watch::serve(
        listener,
        state,
        Limits::default(),
        std::future::pending(),
    ));
    addr
}

/// A direct-TLS monitor of `addr` trusting `ca` for `name`, waiting for `expect`.
fn monitor(id: &str, addr: SocketAddr, (ca, name): (&str, &str), expect: &str) -> TcpMonitor {
    TcpMonitor::new(id, "127.0.0.1", addr.port())
        .tls_direct()
        .tls_with(|t| {
            t.ca = Some(PemSource::Pem(ca.to_owned()));
            t.server_name = Some(name.to_owned());
        })
        .expect(expect)
        .timeouts(5_000, 5_000, 10_000)
}

/// Asserts `ours` (one monitor's families in `watch`'s scrape) is a drop-in for `theirs`
/// (blackbox's scrape of the same target): every family blackbox writes but those
/// [`NOT_CLAIMED`], with the same label names, and the same values where they do not
/// depend on timing (nor, in `labels_only`, on what else differs); and no `probe_*`
/// family blackbox lacks.
fn assert_drop_in(
    case: &str,
    ours: &Families,
    theirs: &Families,
    labels_only: &[&str],
    texts: (&str, &str),
) {
    let context = || format!("{case}\n--- watch\n{}\n--- blackbox\n{}", texts.0, texts.1);
    for (name, samples) in theirs {
        if NOT_CLAIMED.contains(&name.as_str()) {
            continue;
        }
        let Some(own) = ours.get(name) else {
            panic!("{case}: watch lacks {name}\n{}", context());
        };
        let label_names = |s: &[(BTreeMap<String, String>, String)]| -> Vec<BTreeSet<String>> {
            s.iter().map(|(l, _)| l.keys().cloned().collect()).collect()
        };
        assert_eq!(
            label_names(own),
            label_names(samples),
            "{case}: label names of {name}\n{}",
            context()
        );
        if TIMED.contains(&name.as_str()) || labels_only.contains(&name.as_str()) {
            continue;
        }
        let values =
            |s: &[(BTreeMap<String, String>, String)]| -> Vec<(BTreeMap<String, String>, f64)> {
                s.iter().map(|(l, v)| (l.clone(), number(v))).collect()
            };
        assert_eq!(
            values(own),
            values(samples),
            "{case}: samples of {name}\n{}",
            context()
        );
    }
    for name in ours.keys().filter(|n| n.starts_with("probe_")) {
        assert!(
            theirs.contains_key(name),
            "{case}: watch writes {name}, which blackbox does not\n{}",
            context()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackbox_exporter_and_watch_agree_on_families_labels_and_values() {
    let pki = TestPki::new().unwrap();
    let ca = pki.root_pem();
    let leaf = pki.leaf_for(&[NAME, "127.0.0.1"], 365).unwrap();
    let config = leaf.server_config(true).unwrap();
    let answering = ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n"),
        TlsServer::direct(config.clone()),
    )
    .await
    .unwrap();
    let closing = ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n").close(),
        TlsServer::direct(config),
    )
    .await
    .unwrap();
    let refused: SocketAddr = format!("127.0.0.1:{}", refusing_port().unwrap())
        .parse()
        .unwrap();
    let (odd_config, odd_ca) = odd_certificate();
    let odd = ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n"),
        TlsServer::direct(odd_config),
    )
    .await
    .unwrap();
    let exporter = Exporter::start(&ca, &odd_ca).await;

    let trust = (ca.as_str(), NAME);
    let cases = [
        ("passed", answering.addr(), "tls", trust, "hello over tls"),
        ("regex", closing.addr(), "tls_nope", trust, "NOPE"),
        ("refused", refused, "tls", trust, "hello over tls"),
        (
            "odd",
            odd.addr(),
            "odd",
            (&odd_ca, ODD_NAME),
            "hello over tls",
        ),
    ];
    let state = Arc::new(State::default());
    let mut verdicts = Vec::new();
    for (id, addr, _, trust, expect) in cases {
        let result = run(monitor(id, addr, trust, expect)).await;
        verdicts.push((id, result.status, result.error.as_ref().map(|e| e.kind)));
        state.record(result);
    }
    assert_eq!(
        verdicts,
        [
            ("passed", Status::Passed, None),
            ("regex", Status::Failed, Some(ErrorKind::ClosedEarly)),
            ("refused", Status::Failed, Some(ErrorKind::Refused)),
            ("odd", Status::Passed, None),
        ]
    );
    let (head, body) = get(serve(state).await, "/metrics", "").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let watch_text = String::from_utf8(body).unwrap();

    for (id, addr, module, _, _) in cases {
        let theirs_text = exporter.probe(module, addr).await;
        let theirs = families(&theirs_text, None);
        let ours = families(&watch_text, Some(id));
        let labels_only = if id == "refused" { ANSWERED } else { &[] };
        assert_drop_in(id, &ours, &theirs, labels_only, (&watch_text, &theirs_text));
    }
    let refused = families(&watch_text, Some("refused"));
    for name in ANSWERED {
        assert_eq!(refused[*name][0].1, "0", "{name}\n{watch_text}");
    }
    // What the comparison covered: the TLS families of the passed check, the regex
    // failure of the other.
    let passed = families(&watch_text, Some("passed"));
    for name in [
        "probe_ssl_last_chain_info",
        "probe_ssl_last_chain_expiry_timestamp_seconds",
        "probe_tls_version_info",
        "probe_ip_addr_hash",
    ] {
        assert!(passed.contains_key(name), "{name}\n{watch_text}");
    }
    let info = &passed["probe_ssl_last_chain_info"][0].0;
    assert_eq!(info["subject"], format!("CN={NAME}"));
    assert!(info["issuer"].starts_with("CN=Monitor Test Intermediate CA "));
    assert!(info["issuer"].ends_with(",O=Monitor Test"), "{info:?}");
    assert_eq!(info["subjectalternative"], NAME);
    let odd = &families(&watch_text, Some("odd"))["probe_ssl_last_chain_info"][0].0;
    // Go's order (CN, OU, O, L, C, then the unnamed attributes, last first, as the DER
    // of Go's re-encoding), its escapes, then the exposition format's.
    assert_eq!(
        odd["subject"],
        r#"CN=a\\, b\\+c,OU=\\#ou\\\"q\\\\,O=\\ Org\\; \\<x\\>\\ ,L=Zürich,C=DE,1.3.6.1.4.1.99999.1=#0c02c3a9,1.2.840.113549.1.9.1=#0c0c6f7073406f64642e74657374"#
    );
    let regex = families(&watch_text, Some("regex"));
    assert_eq!(regex["probe_failed_due_to_regex"][0].1, "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_is_sent_when_asked_streamed_and_decodes_to_the_plain_text() {
    // Enough monitors for several pieces of 64 KiB.
    let state = crate::watch_serving::state(2000);
    let addr = serve(state).await;
    let (plain_head, plain) = get(addr, "/metrics", "").await;
    assert!(!plain_head.contains("content-encoding"), "{plain_head}");
    assert!(plain.len() > 512 * 1024, "{} bytes", plain.len());
    // The process's families first, then the results'.
    assert!(
        plain.starts_with(b"# HELP monitors_build_info "),
        "{}",
        String::from_utf8_lossy(&plain[..200])
    );
    assert!(String::from_utf8_lossy(&plain).contains("\n# HELP probe_success "));

    let check = |asked: &str, gzip: bool, head: &str, body: &[u8]| {
        assert!(head.starts_with("http/1.1 200"), "{asked}: {head}");
        assert!(head.contains("vary: accept-encoding"), "{asked}: {head}");
        // Streamed: no length known in advance.
        assert!(
            head.contains("transfer-encoding: chunked"),
            "{asked}: {head}"
        );
        assert!(!head.contains("content-length"), "{asked}: {head}");
        if gzip {
            assert!(head.contains("content-encoding: gzip"), "{asked}: {head}");
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut decoded)
                .unwrap();
            assert!(
                body.len() < plain.len() / 4,
                "{asked}: {} bytes",
                body.len()
            );
            assert!(decoded == plain, "{asked}: the decoded body differs");
        } else {
            assert!(!head.contains("content-encoding"), "{asked}: {head}");
            assert!(body == plain, "{asked}: the body differs");
        }
    };
    for (asked, gzip) in [
        ("accept-encoding: gzip\r\n", true),
        ("accept-encoding: br, gzip;q=0.5\r\n", true),
        ("accept-encoding: gzip;q=0\r\n", false),
        ("accept-encoding: identity\r\n", false),
        ("", false),
    ] {
        let (head, body) = get(addr, "/metrics", asked).await;
        check(asked, gzip, &head, &body);
    }
}

/// What blackbox_exporter 0.23 wrote for [`odd_certificate`]'s subject (and issuer, the
/// certificate being self-signed), unescaped from the exposition format: the test above
/// compares with the exporter itself; this one holds where it is not installed.
const ODD_SUBJECT: &str = r#"CN=a\, b\+c,OU=\#ou\"q\\,O=\ Org\; \<x\>\ ,L=Zürich,C=DE,1.3.6.1.4.1.99999.1=#0c02c3a9,1.2.840.113549.1.9.1=#0c0c6f7073406f64642e74657374"#;

#[tokio::test]
async fn certificate_names_are_written_as_go_writes_them() {
    let (config, ca) = odd_certificate();
    let server = ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n"),
        TlsServer::direct(config),
    )
    .await
    .unwrap();
    let r = run(monitor(
        "odd",
        server.addr(),
        (&ca, ODD_NAME),
        "hello over tls",
    ))
    .await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let leaf = &r.tls.as_ref().unwrap().chain[0];
    assert_eq!(leaf.subject_rfc2253, ODD_SUBJECT);
    assert_eq!(leaf.issuer_rfc2253, ODD_SUBJECT);
    // Our own form stays as it was: the attributes in their order.
    assert!(leaf.subject.starts_with("CN=a, b+c"), "{}", leaf.subject);
}
