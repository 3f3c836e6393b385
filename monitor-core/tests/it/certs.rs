//! Certificates as operators make them: a self-signed `openssl req -x509` certificate
//! (CA:TRUE) pinned in `tls.ca` and served by `openssl s_server`, and the chain a server
//! rustls cannot talk to (TLS 1.0 only, TLS 1.2 with CBC only) shows in a hand-built
//! handshake, compared with `openssl x509`; the Certificate message parser on any bytes.
//!
//! The tests need the `openssl` command line tool (Debian package `openssl`).

use std::path::Path;
use std::process::Command;

use monitor_core::PemSource;
use monitor_core::prelude::*;
use time::OffsetDateTime;

use crate::legacy::{LEGACY_CIPHERS, OpensslServer};
use crate::servers::{kind, run, run_with};

/// Runs `openssl` with `args` in `dir`, failing the test with its stderr.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (CI installs the Debian package `openssl`)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A certificate and key made the way the usual how-to says:
/// `openssl req -x509 -newkey ec ... -subj /CN=localhost -addext subjectAltName=DNS:localhost`.
struct Made {
    cert: String,
    key: String,
    /// What `openssl x509 -text` says about it.
    text: String,
}

fn make_self_signed(label: &str) -> Made {
    make(label, None, "365")
}

/// With `key`, a certificate for that key (a re-issue); otherwise a new key too.
fn make(label: &str, key: Option<&str>, days: &str) -> Made {
    let dir = std::env::temp_dir().join(format!(
        "monitor-core-certs-{label}-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key_args: &[&str] = match key {
        Some(pem) => {
            std::fs::write(dir.join("key.pem"), pem).expect("write key.pem");
            &["-key", "key.pem"]
        }
        None => &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "key.pem",
        ],
    };
    openssl(
        &dir,
        &[
            &["req", "-x509"],
            key_args,
            &[
                "-out",
                "cert.pem",
                "-days",
                days,
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost",
            ],
        ]
        .concat(),
    );
    let text = openssl(&dir, &["x509", "-in", "cert.pem", "-noout", "-text"]);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("read pem");
    let made = Made {
        cert: read("cert.pem"),
        key: read("key.pem"),
        text,
    };
    let _ = std::fs::remove_dir_all(&dir);
    made
}

/// A direct-TLS monitor of a local server for `localhost`, pinning `ca`.
fn pinned_monitor(port: u16, ca: &str) -> TcpMonitor {
    TcpMonitor::new("pinned", "127.0.0.1", port)
        .tls_direct()
        .tls_with(|t| {
            t.ca = Some(PemSource::Pem(ca.to_owned()));
            t.server_name = Some("localhost".into());
        })
}

/// The `sha256 Fingerprint=` and `notAfter=` of a certificate file, as `openssl x509`
/// prints them (`notAfter=Feb 10 12:00:00 2027 GMT`).
pub(crate) fn openssl_facts(cert: &Path) -> (String, OffsetDateTime) {
    let dir = cert.parent().expect("a directory");
    let path = cert.to_str().expect("a utf-8 path");
    let text = openssl(
        dir,
        &[
            "x509",
            "-enddate",
            "-fingerprint",
            "-sha256",
            "-noout",
            "-in",
            path,
        ],
    );
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}"))
            .trim()
            .to_owned()
    };
    let format = time::format_description::parse_borrowed::<1>(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT",
    )
    .expect("format");
    let not_after = time::PrimitiveDateTime::parse(&field("notAfter="), &format)
        .expect("openssl's date")
        .assume_utc();
    (field("sha256 Fingerprint="), not_after)
}

fn message(r: &CheckResult) -> String {
    r.error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default()
}

/// No debug text in what the on-call engineer reads.
fn readable(r: &CheckResult) {
    let m = message(r);
    for bad in ["Other(", "OtherError", "Some(", "CaUsedAsEndEntity"] {
        assert!(!m.contains(bad), "{m}");
    }
}

/// Asserts the verdict of `r`: its status and error kind.
fn verdict(r: &CheckResult, status: Status, kind_of: Option<ErrorKind>) {
    assert_eq!((r.status, kind(r)), (status, kind_of), "{}", r.to_json());
}

#[tokio::test]
async fn pinned_openssl_certificate_passes_and_is_still_judged() {
    let made = make_self_signed("pinned");
    assert!(made.text.contains("CA:TRUE"), "{}", made.text);
    let server = OpensslServer::start_with("pinned", &made.cert, &made.key, &[]);
    let (sha256, not_after) = openssl_facts(&server.cert);

    // Pinned: trusted as the leaf.
    let r = run(pinned_monitor(server.port, &made.cert)).await;
    readable(&r);
    verdict(&r, Status::Passed, None);
    let tls = r.tls.expect("a TLS report");
    assert!(tls.verified, "{tls:?}");
    assert!(tls.problems.is_empty(), "{:?}", tls.problems);
    assert_eq!(tls.chain.len(), 1);
    assert_eq!(tls.chain[0].sha256, sha256);
    assert_eq!(tls.chain[0].not_after, not_after);

    // Pinned, but another name: the name is still checked.
    let r = run(pinned_monitor(server.port, &made.cert)
        .tls_with(|t| t.server_name = Some("other.test".into())))
    .await;
    readable(&r);
    verdict(&r, Status::Failed, Some(ErrorKind::HostnameMismatch));
    assert!(!r.tls.expect("a TLS report").verified);

    // Pinned, seen 400 days later: the dates are still checked.
    let later = monitor_core::Engine::new()
        .with_clock(monitor_testing::ShiftedWall::new(time::Duration::days(400)));
    let spec = pinned_monitor(server.port, &made.cert);
    let r = run_with(&later, spec).await;
    readable(&r);
    verdict(&r, Status::Failed, Some(ErrorKind::CertificateExpired));
}

/// The same key and name re-issued (other dates, other bytes) in tls.ca: the server
/// proves it holds the trusted key, so it is trusted as OpenSSL and Go trust it.
#[tokio::test]
async fn reissued_self_signed_certificate_in_tls_ca_passes() {
    let served = make_self_signed("served-again");
    let reissued = make("reissued", Some(&served.key), "200");
    assert_ne!(served.cert, reissued.cert);
    let server = OpensslServer::start_with("reissued", &served.cert, &served.key, &[]);
    let r = run(pinned_monitor(server.port, &reissued.cert)).await;
    verdict(&r, Status::Passed, None);
    assert!(r.tls.expect("a TLS report").verified);
}

#[tokio::test]
async fn another_self_signed_certificate_in_tls_ca_still_fails() {
    let served = make_self_signed("served");
    let other = make_self_signed("other");
    let server = OpensslServer::start_with("unpinned", &served.cert, &served.key, &[]);
    let r = run(pinned_monitor(server.port, &other.cert)).await;
    readable(&r);
    verdict(&r, Status::Failed, Some(ErrorKind::SelfSigned));
    assert!(message(&r).contains("self-signed"), "{}", message(&r));
    let tls = r.tls.expect("a TLS report");
    assert!(!tls.verified);
    assert_eq!(tls.problems, vec![ErrorKind::SelfSigned]);
}

/// A leaf issued by a CA (CA:FALSE, not self-signed) pinned alone passes too, though its
/// issuer is neither sent nor trusted.
#[tokio::test]
async fn pinned_leaf_issued_by_an_unknown_ca_passes() {
    let pki = monitor_testing::TestPki::new().expect("pki");
    let leaf = pki.leaf_for(&["localhost"], 90).expect("leaf");
    let end = "-----END CERTIFICATE-----";
    let only_leaf = format!(
        "{}{end}\n",
        leaf.cert_pem.split(end).next().expect("a pem block")
    );
    let server = OpensslServer::start_with("issued", &only_leaf, &leaf.key_pem, &[]);
    let r = run(pinned_monitor(server.port, &only_leaf)).await;
    verdict(&r, Status::Passed, None);
    assert!(r.tls.expect("a TLS report").verified);
    // Trusting only the root instead, the missing intermediate is found out.
    let r = run(pinned_monitor(server.port, &pki.root_pem())).await;
    readable(&r);
    verdict(&r, Status::Failed, Some(ErrorKind::IncompleteChain));
}
#[tokio::test]
async fn legacy_only_server_reports_its_chain() {
    let made = make_self_signed("legacy");
    let server = OpensslServer::start_with(
        "legacy-chain",
        &made.cert,
        &made.key,
        &["-tls1", "-cipher", LEGACY_CIPHERS],
    );
    let (sha256, not_after) = openssl_facts(&server.cert);
    let spec = TcpMonitor::new("legacy", "127.0.0.1", server.port)
        .tls_direct()
        .tls_with(|t| t.server_name = Some("localhost".into()));
    let r = run(spec).await;
    verdict(&r, Status::Failed, Some(ErrorKind::LegacyProtocol));
    let tls = r.tls.expect("a TLS report");
    assert_eq!(tls.version.as_deref(), Some("TLSv1.0"), "{tls:?}");
    assert_eq!(tls.chain.len(), 1, "{tls:?}");
    let leaf = &tls.chain[0];
    assert_eq!(leaf.sha256, sha256);
    assert_eq!(leaf.not_after, not_after);
    assert_eq!(tls.earliest_expiry, Some(not_after));
    assert_eq!(
        tls.days_left,
        Some(monitor_spec::result::days_until(
            not_after,
            OffsetDateTime::now_utc()
        ))
    );
    assert_eq!(leaf.subject, "CN=localhost");
    assert_eq!(leaf.sans, vec!["localhost".to_owned()]);
    // The legacy problem comes first; the chain's own problems follow it.
    assert_eq!(tls.problems.first(), Some(&ErrorKind::LegacyProtocol));
}

/// A handshake message: type, 24-bit length, body.
fn message_of(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind];
    m.extend_from_slice(&u32::try_from(body.len()).expect("short").to_be_bytes()[1..]);
    m.extend_from_slice(body);
    m
}

/// A Certificate message body holding `certs`.
fn certificate_body(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for c in certs {
        list.extend_from_slice(&u32::try_from(c.len()).expect("short").to_be_bytes()[1..]);
        list.extend_from_slice(c);
    }
    let mut body = u32::try_from(list.len()).expect("short").to_be_bytes()[1..].to_vec();
    body.extend(list);
    body
}

#[test]
fn certificates_of_a_first_flight() {
    use monitor_core::engine::legacy::flight_chain;
    fn check(what: &str, input: &[u8], expected: Option<Vec<Vec<u8>>>) {
        assert_eq!(flight_chain(input), expected, "{what}");
    }
    let hello = message_of(2, &[3, 1, 0, 0]);
    let two = message_of(11, &certificate_body(&[b"leaf", b"issuer"]));
    let done = message_of(14, &[]);
    let flight = [hello.clone(), two.clone(), done.clone()].concat();
    let both = Some(vec![b"leaf".to_vec(), b"issuer".to_vec()]);
    check("whole flight", &flight, both.clone());
    check("certificate alone", &two, both);
    check("empty", &[], None);
    check("hello only", &hello, None);
    check(
        "certificate cut short",
        &flight[..hello.len() + two.len() - 1],
        None,
    );
    check(
        "no certificate",
        &[hello.clone(), done].concat(),
        Some(vec![]),
    );
    // A list whose lengths lie gives the certificates that fit.
    let mut lying = certificate_body(&[b"leaf"]);
    lying.extend_from_slice(&[0, 0, 9, 1]);
    lying[2] += 4;
    check(
        "lying lengths",
        &message_of(11, &lying),
        Some(vec![b"leaf".to_vec()]),
    );
    check("empty list", &message_of(11, &[0, 0, 0]), Some(vec![]));
    check("no list length", &message_of(11, &[0]), Some(vec![]));
}

/// A TLS 1.2 server with CBC suites only, which rustls does not speak: the handshake fails
/// on the cipher, and a hand-built TLS 1.2 hello still reads the chain.
#[tokio::test]
async fn cbc_only_tls12_server_reports_its_chain() {
    let made = make_self_signed("cbc");
    let server = OpensslServer::start_with(
        "cbc-only",
        &made.cert,
        &made.key,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
    );
    let (sha256, not_after) = openssl_facts(&server.cert);
    let r = run(pinned_monitor(server.port, &made.cert)).await;
    readable(&r);
    verdict(&r, Status::Failed, Some(ErrorKind::HandshakeFailure));
    assert!(
        message(&r).contains("handshake_failure (40)"),
        "{}",
        message(&r)
    );
    let tls = r.tls.expect("a TLS report");
    assert_eq!(tls.version.as_deref(), Some("TLSv1.2"), "{tls:?}");
    assert_eq!(
        tls.cipher.as_deref(),
        Some("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA")
    );
    assert_eq!(tls.chain.len(), 1, "{tls:?}");
    assert_eq!(tls.chain[0].sha256, sha256);
    assert_eq!(tls.chain[0].not_after, not_after);
    assert!(tls.verified, "pinned: {tls:?}");
    assert_eq!(tls.problems, vec![ErrorKind::HandshakeFailure]);
    let legacy = tls.legacy.expect("the legacy answers");
    assert_eq!((legacy.tls1_0, legacy.tls1_1), (Some(false), Some(false)));
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: 256,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// Any bytes: no panic, and the certificates found are no more than the bytes given.
    #[test]
    fn any_flight_is_read_safely(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let found = monitor_core::engine::legacy::flight_chain(&bytes);
        let total: usize = found.iter().flatten().map(Vec::len).sum();
        proptest::prop_assert!(total <= bytes.len());
    }

    /// A well-formed flight gives back exactly its certificates.
    #[test]
    fn well_formed_flights_round_trip(
        certs in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 0..4),
    ) {
        let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
        let flight = [
            message_of(2, &[3, 1]),
            message_of(11, &certificate_body(&refs)),
            message_of(14, &[]),
        ]
        .concat();
        proptest::prop_assert_eq!(monitor_core::engine::legacy::flight_chain(&flight), Some(certs));
    }
}
