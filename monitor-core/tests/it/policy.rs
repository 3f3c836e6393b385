//! The TLS compliance scan (`tls.policy`): its version and weak-suite logic against
//! picking servers written here (no packages), the engine's verdicts and metrics against
//! rustls servers, and every finding compared with sslyze (from PyPI) on `openssl
//! s_server` variants and a default nginx.
//!
//! The sslyze comparison needs the Debian packages `openssl`, `nginx`, `python3` and
//! `python3-venv`, and PyPI the first time (the venv is kept under the target directory).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use monitor_core::engine::policy::{self, Scan, WEAK_SUITES};
use monitor_core::prelude::*;
use monitor_core::report::prometheus;
use monitor_core::result::{PolicyReport, VersionSupport};
use monitor_core::{PemSource, TlsPolicy};
use monitor_testing::{Script, ScriptedServer, TestPki, TlsServer};
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

use crate::live::{Live, TestCerts, free_port, scratch_dir};
use crate::servers::{kind, run};

// ---------------------------------------------------------------------------------------
// A picking server: answers ClientHellos by a fixed version set and suite preference
// ---------------------------------------------------------------------------------------

/// How a [`picking`] server answers.
#[derive(Clone, Debug)]
struct Picks {
    /// Wire versions accepted (0x0301..0x0304).
    versions: Vec<u16>,
    /// Suites in the server's order of preference.
    suites: Vec<u16>,
    /// Answer every hello with this suite, offered or not.
    always: Option<u16>,
    /// Pick the first suite the client offers (a server accepting anything).
    first_offered: bool,
}

impl Picks {
    fn new(versions: &[u16], suites: &[u16]) -> Picks {
        Picks {
            versions: versions.to_vec(),
            suites: suites.to_vec(),
            always: None,
            first_offered: false,
        }
    }
}

/// The offered wire version (supported_versions when present), and the suites.
fn parse_hello(record: &[u8]) -> Option<(u16, Vec<u16>)> {
    let body = record.get(9..)?;
    let legacy = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let sid = usize::from(*body.get(34)?);
    let at = 35 + sid;
    let n = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    let suites = body
        .get(at + 2..at + 2 + n)?
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let mut at = at + 2 + n;
    at += 1 + usize::from(*body.get(at)?); // compression methods
    at += 2; // extensions length
    let mut version = legacy;
    while let (Some(t), Some(l)) = (body.get(at..at + 2), body.get(at + 2..at + 4)) {
        let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
        if u16::from_be_bytes([t[0], t[1]]) == 43 {
            let list = body.get(at + 5..at + 4 + len)?;
            version = list
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .max()?;
        }
        at += 4 + len;
    }
    Some((version, suites))
}

fn server_hello(version: u16, suite: u16) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    if version < 0x0304 {
        body = version.to_be_bytes().to_vec();
    }
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    if version >= 0x0304 {
        body.extend_from_slice(&[0, 6, 0, 43, 0, 2, 3, 4]);
    }
    let mut hs = vec![2, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    if version < 0x0304 {
        hs.extend_from_slice(&[0x0e, 0, 0, 0]); // ServerHelloDone
    }
    let mut record = vec![0x16, 0x03, 0x03];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

fn answer(picks: &Picks, version: u16, offered: &[u16]) -> Vec<u8> {
    let alert = |d: u8| vec![0x15, 0x03, 0x03, 0, 2, 2, d];
    if let Some(suite) = picks.always {
        return server_hello(version.min(0x0303), suite);
    }
    if !picks.versions.contains(&version) {
        return alert(70);
    }
    let chosen = if picks.first_offered {
        offered.first().copied()
    } else {
        picks.suites.iter().copied().find(|s| offered.contains(s))
    };
    chosen.map_or_else(|| alert(40), |s| server_hello(version, s))
}

async fn picking(picks: Picks) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let picks = picks.clone();
            tokio::spawn(async move {
                let mut header = [0u8; 5];
                if stream.read_exact(&mut header).await.is_err() {
                    return;
                }
                let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
                let mut record = header.to_vec();
                record.resize(5 + len, 0);
                if stream.read_exact(&mut record[5..]).await.is_err() {
                    return;
                }
                let Some((version, offered)) = parse_hello(&record) else {
                    return;
                };
                let _ = stream.write_all(&answer(&picks, version, &offered)).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

async fn scan_of(addr: SocketAddr) -> Scan {
    let connect = move || async move { TcpStream::connect(addr).await.ok() };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    policy::scan(connect, Some("localhost"), Duration::from_secs(5), deadline).await
}

fn names(codes: &[u16]) -> Vec<&'static str> {
    codes
        .iter()
        .map(|&c| policy::weak_suite_name(c).unwrap_or("?"))
        .collect()
}

fn versions(v: [Option<bool>; 4]) -> VersionSupport {
    VersionSupport {
        tls1_0: v[0],
        tls1_1: v[1],
        tls1_2: v[2],
        tls1_3: v[3],
    }
}

/// Scans a picking server and compares versions, weak suites (by name), completeness and
/// connections.
async fn check(picks: Picks, expected: (VersionSupport, &[&str], bool, usize)) {
    let scan = scan_of(picking(picks.clone()).await).await;
    let got = (
        scan.versions,
        names(&scan.weak),
        scan.complete,
        scan.connections,
    );
    let (v, weak, complete, connections) = expected;
    assert_eq!(got, (v, weak.to_vec(), complete, connections), "{picks:?}");
}

#[tokio::test]
async fn scan_finds_versions_and_enumerates_weak_suites_by_server_preference() {
    let (t, f) = (Some(true), Some(false));
    // A modern server: TLS 1.2 and 1.3 with ECDHE-GCM only.
    check(
        Picks::new(&[0x0303, 0x0304], &[0x1301, 0xc02f]),
        (versions([f, f, t, t]), &[], true, 5),
    )
    .await;
    // An old one: every legacy version, three weak suites before a strong one.
    check(
        Picks::new(&[0x0301, 0x0302, 0x0303], &[0xc013, 0x002f, 0x000a, 0xc02f]),
        (
            versions([t, t, t, f]),
            &[
                "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                "TLS_RSA_WITH_AES_128_CBC_SHA",
                "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            ],
            true,
            4 + 4,
        ),
    )
    .await;
    // TLS 1.0 only, with RC4: the weak suites are asked in TLS 1.0.
    check(
        Picks::new(&[0x0301], &[0x0005, 0x002f]),
        (
            versions([t, f, f, f]),
            &["TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"],
            true,
            4 + 3,
        ),
    )
    .await;
}

#[tokio::test]
async fn scan_stops_on_a_suite_not_offered_and_at_its_connection_bound() {
    let (t, f) = (Some(true), Some(false));
    // Always TLS_RSA_WITH_AES_128_CBC_SHA, even when no longer offered: found once, then
    // the enumeration stops incomplete instead of looping. The TLS 1.3 hello gets a TLS
    // 1.2 answer: refused.
    let mut always = Picks::new(&[], &[]);
    always.always = Some(0x002f);
    check(
        always,
        (
            versions([t, t, t, f]),
            &["TLS_RSA_WITH_AES_128_CBC_SHA"],
            false,
            4 + 2,
        ),
    )
    .await;
    // A server accepting whatever comes first: the scan stops at its bound.
    let mut anything = Picks::new(&[0x0303], &[]);
    anything.first_offered = true;
    let scan = scan_of(picking(anything).await).await;
    assert_eq!(scan.connections, policy::MAX_CONNECTIONS);
    assert_eq!(scan.weak.len(), policy::MAX_CONNECTIONS - 4);
    assert!(!scan.complete);
    let offered: Vec<u16> = WEAK_SUITES.iter().map(|(c, _)| *c).collect();
    assert_eq!(scan.weak, offered[..scan.weak.len()]);
}

#[tokio::test]
async fn scan_of_a_server_that_is_not_tls_cannot_tell() {
    let server = ScriptedServer::start(Script::new().send("SSH-2.0-OpenSSH_9.2\r\n"))
        .await
        .unwrap();
    let scan = scan_of(server.addr()).await;
    assert_eq!(scan.versions, VersionSupport::default());
    assert!(scan.weak.is_empty() && !scan.complete);
    let report = policy::report(&scan, &[]);
    assert!(report.findings.is_empty(), "{report:?}");
}

/// A server that answers every connection with `bytes`, whatever it is asked.
async fn answering(bytes: Vec<u8>) -> Scan {
    let server = ScriptedServer::start(Script::new().send(bytes).close())
        .await
        .unwrap();
    scan_of(server.addr()).await
}

#[tokio::test]
async fn scan_reads_each_kind_of_answer() {
    let (t, f, n) = (Some(true), Some(false), None);
    let tls13 = server_hello(0x0304, 0x1301);
    // The extension block says 10 bytes, but 8 follow.
    let mut bad_extensions = tls13.clone();
    let at = bad_extensions.len() - 8;
    bad_extensions[at + 1] = 10;
    for (label, bytes, expected) in [
        ("a TLS 1.3 ServerHello", tls13, versions([f, f, f, t])),
        (
            "malformed extensions",
            bad_extensions,
            versions([n, n, n, n]),
        ),
        (
            "protocol_version alert",
            vec![0x15, 3, 3, 0, 2, 2, 70],
            versions([f, f, f, f]),
        ),
        (
            "half a record, then close",
            vec![0x16, 3, 3, 0, 40, 2],
            versions([f, f, f, f]),
        ),
        (
            "a TLS 1.1 ServerHello",
            server_hello(0x0302, 0x002f),
            versions([f, t, f, f]),
        ),
    ] {
        let scan = answering(bytes).await;
        assert_eq!(scan.versions, expected, "{label}");
    }
}

#[test]
fn weak_keys_and_signatures_and_chain_order() {
    for (algorithm, weak) in [
        ("sha1WithRSAEncryption", true),
        ("1.2.840.113549.1.1.4", true), // md5WithRSAEncryption
        ("1.2.840.10045.4.1", true),    // ecdsa-with-SHA1
        ("sha256WithRSAEncryption", false),
        ("ecdsa-with-SHA256", false),
        ("ED25519", false),
    ] {
        assert_eq!(policy::weak_signature(algorithm), weak, "{algorithm}");
    }
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["localhost"], 30).unwrap();
    let full = leaf.chain(true);
    let reversed: Vec<_> = full.iter().rev().cloned().collect();
    assert_eq!(policy::chain_in_order(&full), Some(true));
    assert_eq!(policy::chain_in_order(&reversed), Some(false));
    assert_eq!(policy::chain_in_order(&full[..1]), None);
    let report = policy::report(&Scan::default(), &reversed);
    let codes: Vec<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes, ["chain_order"]);
}

// ---------------------------------------------------------------------------------------
// The engine: verdicts by tls.policy, and the metrics
// ---------------------------------------------------------------------------------------

fn monitor(port: u16, ca: &str, mode: TlsPolicy) -> TcpMonitor {
    TcpMonitor::new("policy", "127.0.0.1", port)
        .tls_direct()
        .tls_with(|t| {
            t.ca = Some(PemSource::Pem(ca.to_owned()));
            t.server_name = Some("localhost".to_owned());
            t.policy = mode;
        })
        .expect("hello")
}

async fn rustls_server(chain: Vec<CertificateDer<'static>>, key_pem: &str) -> ScriptedServer {
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    ScriptedServer::start_tls(
        Script::new().send("hello\r\n"),
        TlsServer::direct(std::sync::Arc::new(config)),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_modern_server_passes_every_policy_with_the_scan_in_facts_and_metrics() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["localhost"], 365).unwrap();
    let server = rustls_server(leaf.chain(true), &leaf.key_pem).await;
    let r = run(monitor(server.port(), &pki.root_pem(), TlsPolicy::Fail)).await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Passed, None),
        "{}",
        r.to_json()
    );
    let p = r.tls.as_ref().and_then(|t| t.policy.clone()).unwrap();
    let (t, f) = (Some(true), Some(false));
    assert_eq!(p.versions, versions([f, f, t, t]));
    assert!(p.weak_ciphers.is_empty() && !p.weak_key && !p.weak_signature);
    assert_eq!(p.chain_in_order, Some(true));
    assert!(p.findings.is_empty());
    let text = prometheus(&[&r], &[]);
    for line in [
        "monitor_tls_policy_version_accepted{monitor=\"policy\",version=\"TLS 1.0\"} 0",
        "monitor_tls_policy_version_accepted{monitor=\"policy\",version=\"TLS 1.3\"} 1",
        "monitor_tls_policy_weak_ciphers{monitor=\"policy\"} 0",
        "monitor_tls_policy_findings{monitor=\"policy\"} 0",
        "monitor_tls_policy_weak_key{monitor=\"policy\"} 0",
        "monitor_tls_policy_weak_signature{monitor=\"policy\"} 0",
        "monitor_tls_policy_chain_in_order{monitor=\"policy\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    // Off: no scan (one connection, the check's), no report, no families.
    let before = server.connections();
    let r = run(monitor(server.port(), &pki.root_pem(), TlsPolicy::Off)).await;
    assert_eq!(server.connections(), before + 1);
    assert_eq!(r.tls.as_ref().and_then(|t| t.policy.as_ref()), None);
    assert!(!prometheus(&[&r], &[]).contains("monitor_tls_policy"));
}

#[tokio::test]
async fn a_chain_out_of_order_sets_the_verdict_by_policy() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["localhost"], 365).unwrap();
    let stray = monitor_testing::self_signed(
        &["stray.test"],
        monitor_testing::days_from_now(-1),
        monitor_testing::days_from_now(365),
    )
    .unwrap();
    // Leaf, an unrelated certificate, then the intermediate: it verifies, out of order.
    let chain = vec![
        leaf.cert.clone(),
        stray.cert.clone(),
        leaf.intermediate.clone().unwrap(),
    ];
    let server = rustls_server(chain, &leaf.key_pem).await;
    for (mode, expected) in [
        (TlsPolicy::Report, (Status::Passed, None)),
        (
            TlsPolicy::Degrade,
            (Status::Degraded, Some(ErrorKind::TlsPolicyViolation)),
        ),
        (
            TlsPolicy::Fail,
            (Status::Failed, Some(ErrorKind::TlsPolicyViolation)),
        ),
    ] {
        let r = run(monitor(server.port(), &pki.root_pem(), mode)).await;
        assert_eq!((r.status, kind(&r)), expected, "{}", r.to_json());
        let p = r.tls.as_ref().and_then(|t| t.policy.clone()).unwrap();
        assert_eq!(p.chain_in_order, Some(false));
        assert_eq!(p.findings.len(), 1);
        if let Some(error) = &r.error {
            assert!(error.message.contains("out of order"), "{}", error.message);
            let last = error.hints.last().unwrap();
            assert_eq!(
                last,
                &format!("scan by hand: sslyze 127.0.0.1:{}", server.port())
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// sslyze, finding by finding
// ---------------------------------------------------------------------------------------

/// The sslyze release the comparison runs.
const SSLYZE: &str = "sslyze==6.3.1";

/// The cipher string that lets OpenSSL 3 serve everything it still has.
const EVERYTHING: &str = "ALL:@SECLEVEL=0";

/// Runs `openssl` with `args` in `dir`, failing the test with its output.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A root CA and a leaf with an RSA key of 1024 bits signed with SHA-1, made with
/// `openssl` in `dir`: `root.pem`, `weak.pem`, `weak.key`.
fn weak_certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-subj",
            "/CN=Policy Test Root",
            "-days",
            "30",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "weak.key",
            "-out",
            "weak.csr",
        ],
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "weak.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-sha1",
            "-days",
            "30",
            "-extfile",
            "ext",
            "-out",
            "weak.pem",
        ],
    );
}

/// `openssl s_server` on a free port serving `cert` and `key` with `flags`, until dropped.
fn s_server(dir: &Path, cert: &str, key: &str, flags: &[&str]) -> Live {
    let port = free_port();
    let mut command = Command::new("openssl");
    command
        .current_dir(dir)
        .arg("s_server")
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-cert", cert, "-key", key, "-www", "-quiet"])
        .args(flags);
    Live::spawn(
        "openssl s_server",
        command,
        port,
        scratch_dir("policy-s_server"),
    )
}

/// sslyze's JSON for 127.0.0.1:`port` (versions, cipher suites, certificate).
fn sslyze(program: &Path, port: u16, dir: &Path) -> serde_json::Value {
    let out_path = dir.join(format!("sslyze-{port}.json"));
    let out = Command::new(program)
        .arg(format!("--json_out={}", out_path.display()))
        .args([
            "--certinfo",
            "--tlsv1",
            "--tlsv1_1",
            "--tlsv1_2",
            "--tlsv1_3",
        ])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .expect("run sslyze");
    let text = std::fs::read_to_string(&out_path).unwrap_or_else(|e| {
        panic!(
            "sslyze wrote no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["server_scan_results"][0]["scan_result"].clone()
}

/// What sslyze says, in the terms of a [`PolicyReport`]: versions, the weak suites of the
/// scan's list it accepted in TLS 1.0 to 1.2, weak key, SHA-1/MD5 signature on a
/// certificate that is not self-issued, chain order.
fn sslyze_facts(scan: &serde_json::Value) -> (VersionSupport, BTreeSet<String>, bool, bool, bool) {
    let supported = |v: &str| scan[v]["result"]["is_tls_version_supported"].as_bool();
    let versions = VersionSupport {
        tls1_0: supported("tls_1_0_cipher_suites"),
        tls1_1: supported("tls_1_1_cipher_suites"),
        tls1_2: supported("tls_1_2_cipher_suites"),
        tls1_3: supported("tls_1_3_cipher_suites"),
    };
    let ours: BTreeSet<&str> = WEAK_SUITES.iter().map(|(_, n)| *n).collect();
    let mut weak = BTreeSet::new();
    for v in [
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
        "tls_1_2_cipher_suites",
    ] {
        for accepted in scan[v]["result"]["accepted_cipher_suites"]
            .as_array()
            .unwrap()
        {
            let name = accepted["cipher_suite"]["name"].as_str().unwrap();
            if ours.contains(name) {
                weak.insert(name.to_owned());
            }
        }
    }
    let deployment = &scan["certificate_info"]["result"]["certificate_deployments"][0];
    let chain = deployment["received_certificate_chain"].as_array().unwrap();
    let key = &chain[0]["public_key"];
    let bits = key["key_size"].as_u64().unwrap_or(0);
    let weak_key = match key["algorithm"].as_str().unwrap_or("") {
        "RSAPublicKey" | "DSAPublicKey" => bits < 2048,
        "EllipticCurvePublicKey" => bits < 224,
        _ => false,
    };
    let weak_signature = chain.iter().any(|c| {
        c["subject"]["rfc4514_string"] != c["issuer"]["rfc4514_string"]
            && matches!(
                c["signature_hash_algorithm"]["name"].as_str(),
                Some("sha1" | "md5")
            )
    });
    let in_order = deployment["received_chain_has_valid_order"]
        .as_bool()
        .unwrap_or(true);
    (versions, weak, weak_key, weak_signature, in_order)
}

/// Scans 127.0.0.1:`port` with the policy scan and with sslyze and asserts they agree on
/// every finding; returns our report.
async fn agree(label: &str, sslyze_program: &Path, port: u16, dir: &Path) -> PolicyReport {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let scan = scan_of(addr).await;
    let report = policy::report(&scan, &scan.chain);
    let theirs = sslyze(sslyze_program, port, dir);
    let (versions, weak, weak_key, weak_signature, in_order) = sslyze_facts(&theirs);
    // Four version probes, one per weak suite found and the refusal that ends the list.
    assert_eq!(
        scan.connections,
        4 + scan.weak.len() + 1,
        "{label}: connections"
    );
    assert_eq!(report.versions, versions, "{label}: versions");
    let ours: BTreeSet<String> = report.weak_ciphers.iter().cloned().collect();
    assert!(
        scan.complete,
        "{label}: the enumeration ended early: {scan:?}"
    );
    assert_eq!(ours, weak, "{label}: weak cipher suites");
    assert_eq!(report.weak_key, weak_key, "{label}: weak key");
    assert_eq!(
        report.weak_signature, weak_signature,
        "{label}: weak signature"
    );
    assert_eq!(
        report.chain_in_order.unwrap_or(true),
        in_order,
        "{label}: chain order"
    );
    report
}

/// The PEM certificates of `pem`, each with its END line.
fn split_pem(pem: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    pem.split_inclusive(END)
        .filter(|p| p.contains(END))
        .map(|p| format!("{}\n", p.trim()))
        .collect()
}

#[tokio::test]
async fn findings_agree_with_sslyze_on_openssl_and_nginx() {
    let program = monitor_testing::pypi::program("sslyze", SSLYZE)
        .unwrap_or_else(|e| panic!("cannot install {SSLYZE} from PyPI: {e}"));
    let dir = scratch_dir("policy-certs");
    weak_certificates(&dir);

    // Everything OpenSSL 3 still serves, with a 1024-bit RSA key signed with SHA-1.
    let weak = s_server(&dir, "weak.pem", "weak.key", &["-cipher", EVERYTHING]);
    let report = agree("s_server ALL", &program, weak.port, &dir).await;
    let codes: BTreeSet<&str> = report.findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(
        codes,
        BTreeSet::from([
            "legacy_version",
            "weak_cipher",
            "weak_key",
            "weak_signature"
        ])
    );
    drop(weak);

    // TLS 1.0 alone.
    let old = s_server(
        &dir,
        "weak.pem",
        "weak.key",
        &["-tls1", "-cipher", EVERYTHING],
    );
    let report = agree("s_server -tls1", &program, old.port, &dir).await;
    assert_eq!(report.versions.tls1_0, Some(true));
    assert_eq!(report.versions.tls1_2, Some(false));
    drop(old);

    // A modern default configuration with the chain sent out of order (leaf, root,
    // intermediate).
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["localhost", "127.0.0.1"], 30).unwrap();
    let pems = split_pem(&leaf.cert_pem);
    std::fs::write(dir.join("leaf.pem"), &pems[0]).unwrap();
    std::fs::write(dir.join("leaf.key"), &leaf.key_pem).unwrap();
    std::fs::write(
        dir.join("extra.pem"),
        format!("{}{}", pki.root_pem(), pems[1]),
    )
    .unwrap();
    let disorder = s_server(&dir, "leaf.pem", "leaf.key", &["-cert_chain", "extra.pem"]);
    let report = agree("s_server out of order", &program, disorder.port, &dir).await;
    assert_eq!(report.chain_in_order, Some(false));
    drop(disorder);

    // nginx with its default protocols and ciphers, chain in order.
    let certs = TestCerts::new("policy-nginx");
    let nginx = crate::live::edge::nginx_tls(&certs.tls);
    let report = agree("nginx default", &program, nginx.port, &dir).await;
    assert_eq!(report.chain_in_order, Some(true));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_starttls_monitor_scans_after_the_dialog_on_every_probe_connection() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["localhost"], 365).unwrap();
    let smtp = Script::new()
        .send("220 mail.test ESMTP\r\n")
        .expect("EHLO ")
        .send("250-mail.test\r\n250 STARTTLS\r\n")
        .expect("STARTTLS\r\n")
        .send("220 2.0.0 Ready to start TLS\r\n");
    let server = ScriptedServer::start_tls(
        Script::new().send("hello\r\n"),
        TlsServer::after(smtp, leaf.server_config(true).unwrap()),
    )
    .await
    .unwrap();
    let spec = monitor(server.port(), &pki.root_pem(), TlsPolicy::Fail).starttls(StartTls::Smtp);
    let r = run(spec).await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Passed, None),
        "{}",
        r.to_json()
    );
    let p = r.tls.as_ref().and_then(|t| t.policy.clone()).unwrap();
    let (t, f) = (Some(true), Some(false));
    assert_eq!(p.versions, versions([f, f, t, t]));
    assert!(p.weak_ciphers.is_empty());
    assert_eq!(p.chain_in_order, Some(true));
    // The check, then four version probes and one weak-suite probe, each after STARTTLS.
    assert_eq!(server.connections(), 1 + 4 + 1);
}

#[tokio::test]
async fn a_server_rustls_refuses_fails_the_check_and_the_scan_says_why() {
    let dir = scratch_dir("policy-refused");
    weak_certificates(&dir);
    let root = std::fs::read_to_string(dir.join("root.pem")).unwrap();
    let weak = s_server(&dir, "weak.pem", "weak.key", &["-cipher", EVERYTHING]);
    let r = run(monitor(weak.port, &root, TlsPolicy::Report)).await;
    assert_eq!(r.status, Status::Failed, "{}", r.to_json());
    let p = r.tls.as_ref().and_then(|t| t.policy.clone()).unwrap();
    assert!(p.weak_key && p.weak_signature, "{p:?}");
    assert_eq!(p.versions.tls1_0, Some(true));
    assert!(!p.weak_ciphers.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
