//! TLS checks against tokio-rustls servers on loopback with certificates generated at test
//! time: valid chains, every certificate failure, expiry windows, mutual TLS, plaintext,
//! TLS assertions, and STARTTLS end to end for every protocol.

use monitor_core::prelude::*;
use monitor_core::{PemSource, TlsReport};
use monitor_testing::{
    Leaf, Script, ScriptedServer, TestPki, TlsServer, days_from_now, self_signed,
};

use crate::servers::{kind, run};

const NAME: &str = "monitor.test";

/// A direct-TLS monitor of 127.0.0.1:`port` that trusts `ca` and verifies `NAME`.
fn monitor(port: u16, ca: &str) -> TcpMonitor {
    TcpMonitor::new("tls", "127.0.0.1", port)
        .tls_direct()
        .tls_with(|t| {
            t.ca = Some(PemSource::Pem(ca.to_owned()));
            t.server_name = Some(NAME.to_owned());
        })
        .expect("hello over tls")
}

async fn serve(leaf: &Leaf, full_chain: bool) -> ScriptedServer {
    let config = leaf.server_config(full_chain).unwrap();
    ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n"),
        TlsServer::direct(config),
    )
    .await
    .unwrap()
}

/// Serves `leaf`, checks with a monitor trusting `pki`'s root, asserts the verdict, and
/// returns the result with its TLS report.
async fn check(
    pki: &TestPki,
    leaf: &Leaf,
    full_chain: bool,
    expected: (Status, Option<ErrorKind>),
) -> (CheckResult, TlsReport) {
    let server = serve(leaf, full_chain).await;
    let r = run(monitor(server.port(), &pki.root_pem())).await;
    assert_eq!((r.status, kind(&r)), expected, "{}", r.to_json());
    let report = r.tls.clone().expect("a TLS report");
    (r, *report)
}

fn message(r: &CheckResult) -> &str {
    &r.error.as_ref().unwrap().message
}

#[tokio::test]
async fn valid_chain_passes_with_every_fact() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME, "127.0.0.1"], 365).unwrap();
    let (r, tls) = check(&pki, &leaf, true, (Status::Passed, None)).await;
    assert!(tls.verified);
    assert!(tls.problems.is_empty());
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    assert!(tls.cipher.as_deref().unwrap().starts_with("TLS13_"));
    assert_eq!(tls.server_name, NAME);
    assert_eq!(tls.chain.len(), 2);
    let (leaf_info, inter) = (&tls.chain[0], &tls.chain[1]);
    assert_eq!(leaf_info.subject, format!("CN={NAME}"));
    assert!(leaf_info.issuer.contains("CN=Monitor Test Intermediate CA"));
    assert_eq!(leaf_info.sans, [NAME, "127.0.0.1"]);
    assert!((364..=365).contains(&leaf_info.days_left), "{leaf_info:?}");
    assert_eq!(leaf_info.key_type, "EC");
    assert_eq!(leaf_info.key_bits, Some(256));
    assert_eq!(leaf_info.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(leaf_info.sha256.len(), 32 * 3 - 1);
    assert!(!leaf_info.serial.is_empty());
    assert!(inter.subject.contains("Intermediate") && inter.issuer.contains("Root"));
    assert_eq!(tls.days_left, Some(leaf_info.days_left));
    assert_eq!(tls.earliest_expiry, Some(leaf_info.not_after));
    assert_eq!(
        tls.earliest_expiry_subject.as_deref(),
        Some(&*leaf_info.subject)
    );
    assert!(r.timings.tls_ms.is_some());
    assert!(r.timings.first_byte_ms.is_some());
    assert_eq!(r.response_excerpt, "hello over tls\\r\\n");
}

#[tokio::test]
async fn expired_leaf() {
    let pki = TestPki::new().unwrap();
    let leaf = pki
        .leaf(&[NAME], days_from_now(-30), days_from_now(-2))
        .unwrap();
    let (r, tls) = check(
        &pki,
        &leaf,
        true,
        (Status::Failed, Some(ErrorKind::CertificateExpired)),
    )
    .await;
    assert!(
        message(&r).contains(&format!("the server certificate `CN={NAME}`")),
        "{}",
        message(&r)
    );
    assert!(message(&r).contains("days ago"));
    assert!(!tls.verified);
    assert_eq!(tls.problems[0], ErrorKind::CertificateExpired);
    assert!(
        (-3..=-2).contains(&tls.days_left.unwrap()),
        "{:?}",
        tls.days_left
    );
    // An invalid certificate stops the check before the dialog.
    assert_eq!(r.response_excerpt, "");
}

#[tokio::test]
async fn expired_intermediate() {
    let pki = TestPki::with_intermediate_validity(days_from_now(-100), days_from_now(-5)).unwrap();
    let leaf = pki.leaf_for(&[NAME], 200).unwrap();
    let (r, tls) = check(
        &pki,
        &leaf,
        true,
        (Status::Failed, Some(ErrorKind::CertificateExpired)),
    )
    .await;
    assert!(
        message(&r).contains("certificate #1 of the chain"),
        "{}",
        message(&r)
    );
    assert!(message(&r).contains("Intermediate"), "{}", message(&r));
    assert_eq!(
        tls.earliest_expiry_subject.as_deref(),
        Some(&*tls.chain[1].subject)
    );
    assert!(tls.days_left.unwrap() < 0);
}

#[tokio::test]
async fn not_yet_valid() {
    let pki = TestPki::new().unwrap();
    let leaf = pki
        .leaf(&[NAME], days_from_now(3), days_from_now(90))
        .unwrap();
    let (r, _) = check(
        &pki,
        &leaf,
        true,
        (Status::Failed, Some(ErrorKind::CertificateNotYetValid)),
    )
    .await;
    assert!(
        message(&r).contains("is not valid before"),
        "{}",
        message(&r)
    );
}

#[tokio::test]
async fn wrong_hostname() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["other.test", "www.other.test"], 90).unwrap();
    let (r, tls) = check(
        &pki,
        &leaf,
        true,
        (Status::Failed, Some(ErrorKind::HostnameMismatch)),
    )
    .await;
    let msg = message(&r);
    assert!(msg.contains(&format!("not valid for `{NAME}`")), "{msg}");
    assert!(msg.contains("other.test, www.other.test"), "{msg}");
    assert_eq!(tls.problems, [ErrorKind::HostnameMismatch]);
}

#[tokio::test]
async fn self_signed_certificate() {
    let pki = TestPki::new().unwrap();
    let leaf = self_signed(&[NAME], days_from_now(-1), days_from_now(90)).unwrap();
    let (r, tls) = check(
        &pki,
        &leaf,
        true,
        (Status::Failed, Some(ErrorKind::SelfSigned)),
    )
    .await;
    assert!(message(&r).contains("self-signed"), "{}", message(&r));
    assert!(tls.chain[0].self_issued);
    let hints = &r.error.as_ref().unwrap().hints;
    assert!(hints.last().unwrap().contains(&format!(
        "openssl s_client -connect 127.0.0.1:{} -servername {NAME}",
        r.address.as_deref().unwrap().rsplit(':').next().unwrap()
    )));
}

#[tokio::test]
async fn missing_intermediate() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME], 90).unwrap();
    let (r, tls) = check(
        &pki,
        &leaf,
        false,
        (Status::Failed, Some(ErrorKind::IncompleteChain)),
    )
    .await;
    assert_eq!(tls.chain.len(), 1);
    assert!(
        message(&r).contains("intermediate certificate is probably missing"),
        "{}",
        message(&r)
    );
}

#[tokio::test]
async fn untrusted_root() {
    let pki = TestPki::new().unwrap();
    let other = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME], 90).unwrap();
    let server = serve(&leaf, true).await;
    let r = run(monitor(server.port(), &other.root_pem())).await;
    assert_eq!(kind(&r), Some(ErrorKind::UnknownIssuer), "{}", r.to_json());
}

#[tokio::test]
async fn expiry_windows_degrade_then_fail() {
    let pki = TestPki::new().unwrap();
    let warn = pki.leaf_for(&[NAME], 20).unwrap();
    let (r, tls) = check(
        &pki,
        &warn,
        true,
        (Status::Degraded, Some(ErrorKind::CertificateExpiring)),
    )
    .await;
    assert!(tls.verified);
    assert!(message(&r).contains("warn window"), "{}", message(&r));
    // The dialog still ran.
    assert_eq!(r.response_excerpt, "hello over tls\\r\\n");
    let fail = pki.leaf_for(&[NAME], 3).unwrap();
    let (r, tls) = check(
        &pki,
        &fail,
        true,
        (Status::Failed, Some(ErrorKind::CertificateExpiring)),
    )
    .await;
    assert!(message(&r).contains("fail window"), "{}", message(&r));
    assert!((2..=3).contains(&tls.days_left.unwrap()));
}

#[tokio::test]
async fn allow_invalid_reports_problems_without_failing() {
    let pki = TestPki::new().unwrap();
    let leaf = self_signed(&["other.test"], days_from_now(-1), days_from_now(90)).unwrap();
    let server = serve(&leaf, true).await;
    let r = run(monitor(server.port(), &pki.root_pem()).tls_with(|t| t.allow_invalid = true)).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let tls = r.tls.unwrap();
    assert!(!tls.verified);
    assert_eq!(
        tls.problems,
        [ErrorKind::HostnameMismatch, ErrorKind::SelfSigned]
    );
}

#[tokio::test]
async fn mutual_tls_with_and_without_a_client_certificate() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME], 90).unwrap();
    let client = pki.leaf_for(&["client.test"], 90).unwrap();
    let config = leaf
        .server_config_with_client_auth(&pki.root_pem())
        .unwrap();
    let server = ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n"),
        TlsServer::direct(config),
    )
    .await
    .unwrap();
    let without = run(monitor(server.port(), &pki.root_pem())).await;
    assert_eq!(
        (without.status, kind(&without)),
        (Status::Failed, Some(ErrorKind::ClientCertificateRequired)),
        "{}",
        without.to_json()
    );
    assert!(message(&without).contains("requires a client certificate"));
    let with = run(monitor(server.port(), &pki.root_pem()).tls_with(|t| {
        t.client_cert = Some(monitor_core::ClientCert {
            cert: PemSource::Pem(client.cert_pem.clone()),
            key: PemSource::Pem(client.key_pem.clone()),
        })
    }))
    .await;
    assert_eq!(with.status, Status::Passed, "{}", with.to_json());
}

#[tokio::test]
async fn plaintext_answer_to_a_handshake() {
    let server = ScriptedServer::start(Script::new().send("220 mail.test ESMTP ready\r\n"))
        .await
        .unwrap();
    let pki = TestPki::new().unwrap();
    let r = run(monitor(server.port(), &pki.root_pem())).await;
    assert_eq!(
        kind(&r),
        Some(ErrorKind::PlaintextResponse),
        "{}",
        r.to_json()
    );
    assert!(message(&r).contains("220 mail.test ESMTP ready"));
    assert!(r.error.unwrap().hints[0].contains("STARTTLS"));
}

#[tokio::test]
async fn tls_assertions_and_minimum_version() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME, "127.0.0.1"], 120).unwrap();
    let server = serve(&leaf, true).await;
    let spec = monitor(server.port(), &pki.root_pem())
        .tls_with(|t| t.min_version = TlsVersion::Tls13)
        .assert(tls_version().equals("TLSv1.3"))
        .assert(tls_days_left().greater_than(100))
        .assert(tls_days_left().less_than(130))
        .assert(tls_san().contains("127.0.0.1"))
        .assert(tls_subject().equals(format!("CN={NAME}")))
        .assert(tls_issuer().contains("Intermediate"))
        .assert(tls_cipher().not_empty());
    let r = run(spec.clone()).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert!(r.assertions.iter().all(|a| a.passed));
    let r = run(spec.assert(tls_days_left().greater_than(200))).await;
    assert_eq!(kind(&r), Some(ErrorKind::AssertionFailed));
}

#[tokio::test]
async fn json_result_carries_tls() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME], 60).unwrap();
    let (r, _) = check(&pki, &leaf, true, (Status::Passed, None)).await;
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let tls = &v["tls"];
    for key in [
        "version",
        "cipher",
        "alpn",
        "verified",
        "problems",
        "chain",
        "earliest_expiry",
        "days_left",
    ] {
        assert!(tls.get(key).is_some(), "tls.{key} missing: {tls}");
    }
    let cert = &tls["chain"][0];
    for key in [
        "subject",
        "issuer",
        "sans",
        "serial",
        "not_before",
        "not_after",
        "days_left",
        "sha256",
        "key_type",
        "key_bits",
        "signature_algorithm",
    ] {
        assert!(cert.get(key).is_some(), "chain[0].{key} missing: {cert}");
    }
    assert!(v["timings"]["tls_ms"].is_f64());
    let back: CheckResult = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back, r);
}

/// Real opening dialogs of each STARTTLS protocol, the server side.
fn starttls_server(protocol: StartTls) -> Script {
    match protocol {
        StartTls::Smtp => Script::new()
            .send("220 mail.test ESMTP Postfix (Debian/GNU)\r\n")
            .expect("EHLO ")
            .send("250-mail.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            .expect("STARTTLS\r\n")
            .send("220 2.0.0 Ready to start TLS\r\n"),
        StartTls::Imap => Script::new()
            .send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot (Debian) ready.\r\n")
            .expect("STARTTLS\r\n")
            .send("a002 OK Begin TLS negotiation now.\r\n"),
        StartTls::Pop3 => Script::new()
            .send("+OK Dovecot (Debian) ready.\r\n")
            .expect("CAPA\r\n")
            .send("+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\n.\r\n")
            .expect("STLS\r\n")
            .send("+OK Begin TLS negotiation now.\r\n"),
        StartTls::Ftp => Script::new()
            .send("220 (vsFTPd 3.0.3)\r\n")
            .expect("AUTH TLS\r\n")
            .send("234 Proceed with negotiation.\r\n"),
        StartTls::Postgres => Script::new()
            .expect([0u8, 0, 0, 8, 4, 0xd2, 0x16, 0x2f])
            .send("S"),
        StartTls::Mysql => {
            let mut payload = vec![10u8];
            payload.extend_from_slice(b"10.11.6-MariaDB-0+deb12u1\0");
            payload.extend_from_slice(&[1, 0, 0, 0]);
            payload.extend_from_slice(b"abcdefgh\0");
            // Capabilities: LONG_PASSWORD | PROTOCOL_41 | SSL | SECURE_CONNECTION, charset,
            // status, upper capabilities, auth data length.
            payload.extend_from_slice(&[0x01, 0x8a, 0x21, 0x02, 0x00, 0xff, 0x81, 0x15]);
            payload.extend_from_slice(&[0u8; 10]);
            payload.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
            let mut packet = vec![payload.len() as u8, 0, 0, 0];
            packet.extend_from_slice(&payload);
            // The SSL request: header, capabilities, max packet size, charset, filler.
            let mut request = vec![32u8, 0, 0, 1, 0x01, 0x8a, 0x08, 0x00, 0, 0, 0, 1, 0x21];
            request.extend_from_slice(&[0u8; 23]);
            Script::new().send(packet).expect(request)
        }
        StartTls::Ldap => {
            let mut request = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
            request.extend_from_slice(b"1.3.6.1.4.1.1466.20037");
            Script::new().expect(request).send([
                0x30, 0x0c, 0x02, 0x01, 0x01, 0x78, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
            ])
        }
    }
}

#[tokio::test]
async fn starttls_for_every_protocol() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME], 90).unwrap();
    for protocol in [
        StartTls::Smtp,
        StartTls::Imap,
        StartTls::Pop3,
        StartTls::Ftp,
        StartTls::Postgres,
        StartTls::Mysql,
        StartTls::Ldap,
    ] {
        let script = starttls_server(protocol);
        let server = ScriptedServer::start_tls(
            Script::new().send("hello over tls\r\n"),
            TlsServer::after(script, leaf.server_config(true).unwrap()),
        )
        .await
        .unwrap();
        let spec = monitor(server.port(), &pki.root_pem()).starttls(protocol);
        let r = run(spec).await;
        assert_eq!(r.status, Status::Passed, "{protocol:?}: {}", r.to_json());
        let tls = r.tls.unwrap();
        assert!(tls.verified, "{protocol:?}");
        assert_eq!(r.response_excerpt, "hello over tls\\r\\n", "{protocol:?}");
    }
}

#[tokio::test]
async fn starttls_not_offered() {
    let pki = TestPki::new().unwrap();
    let server = ScriptedServer::start(
        Script::new()
            .send("220 mail.test ESMTP\r\n")
            .expect("EHLO ")
            .send("250-mail.test\r\n250 8BITMIME\r\n"),
    )
    .await
    .unwrap();
    let r = run(monitor(server.port(), &pki.root_pem()).starttls(StartTls::Smtp)).await;
    assert_eq!(
        kind(&r),
        Some(ErrorKind::StarttlsNotOffered),
        "{}",
        r.to_json()
    );
    let e = r.error.unwrap();
    assert!(e.message.contains("STARTTLS"), "{}", e.message);
    assert!(
        e.hints.iter().any(|h| h.contains("-starttls smtp")),
        "{:?}",
        e.hints
    );
}

/// A server that turns the session away in its greeting serves no one, TLS or not: the
/// check says service unavailable, not that STARTTLS failed.
#[tokio::test]
async fn a_greeting_that_turns_the_session_away_is_service_unavailable() {
    let pki = TestPki::new().unwrap();
    for (protocol, greeting) in [
        (
            StartTls::Smtp,
            "421 4.3.2 Too many connections, try later\r\n",
        ),
        (
            StartTls::Ftp,
            "421 There are too many connections from your internet address.\r\n",
        ),
        (
            StartTls::Imap,
            "* BYE Too many connections from your IP\r\n",
        ),
        (
            StartTls::Pop3,
            "-ERR [SYS/TEMP] Maximum number of connections exceeded\r\n",
        ),
    ] {
        let server = ScriptedServer::start(Script::new().send(greeting).close())
            .await
            .unwrap();
        let r = run(monitor(server.port(), &pki.root_pem()).starttls(protocol)).await;
        let e = r.error.clone().unwrap();
        assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
        assert!(
            e.message
                .contains("turned the connection away before STARTTLS"),
            "{e:?}"
        );
        assert!(e.hints[0].contains("connection limits"), "{e:?}");
    }
}

/// `openssl x509` on the same certificate agrees with the reported expiry and fingerprint.
#[tokio::test]
async fn expiry_and_fingerprint_match_openssl() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME], 77).unwrap();
    let (_, tls) = check(&pki, &leaf, true, (Status::Passed, None)).await;
    let path = std::env::temp_dir().join(format!(
        "monitor-core-x509-{}-{}.pem",
        std::process::id(),
        tls.chain[0].serial.replace(':', "")
    ));
    std::fs::write(&path, &leaf.cert_pem).unwrap();
    let (sha256, not_after) = crate::certs::openssl_facts(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(tls.chain[0].not_after, not_after);
    assert_eq!(tls.chain[0].sha256, sha256);
    assert_eq!(tls.earliest_expiry, Some(not_after));
}

fn openssl(label: &str, flags: &[&str]) -> crate::legacy::OpensslServer {
    crate::legacy::OpensslServer::start(label, flags)
}

/// A monitor of a local `openssl s_server` (self-signed for localhost, so trust is waived).
fn openssl_monitor(port: u16) -> TcpMonitor {
    TcpMonitor::new("legacy", "127.0.0.1", port)
        .tls_direct()
        .tls_with(|t| {
            t.server_name = Some("localhost".into());
            t.allow_invalid = true;
        })
}

#[tokio::test]
async fn server_speaking_only_tls_1_0_fails_with_its_own_kind() {
    let server = openssl(
        "tls1-only",
        &["-tls1", "-cipher", crate::legacy::LEGACY_CIPHERS],
    );
    let r = run(openssl_monitor(server.port)).await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Failed, Some(ErrorKind::LegacyProtocol)),
        "{}",
        r.to_json()
    );
    assert!(
        message(&r).contains("speaks only TLS 1.0"),
        "{}",
        message(&r)
    );
    let legacy = r.tls.unwrap().legacy.unwrap();
    assert_eq!((legacy.tls1_0, legacy.tls1_1), (Some(true), Some(false)));
}

#[tokio::test]
async fn legacy_probe_finds_tls_1_0_beside_modern_versions() {
    let server = openssl("tls-all", &["-cipher", crate::legacy::LEGACY_CIPHERS]);
    let spec = openssl_monitor(server.port);
    let fail = run(spec
        .clone()
        .tls_with(|t| t.legacy_probe = LegacyProbe::Fail))
    .await;
    assert_eq!(
        (fail.status, kind(&fail)),
        (Status::Failed, Some(ErrorKind::LegacyTlsAccepted)),
        "{}",
        fail.to_json()
    );
    let tls = fail.tls.unwrap();
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(tls.legacy.unwrap().tls1_0, Some(true));
    let degrade = run(spec
        .clone()
        .tls_with(|t| t.legacy_probe = LegacyProbe::Degrade))
    .await;
    assert_eq!(
        (degrade.status, kind(&degrade)),
        (Status::Degraded, Some(ErrorKind::LegacyTlsAccepted))
    );
    // Without the opt-in probe nothing is asked and the check passes.
    let off = run(spec).await;
    assert_eq!(off.status, Status::Passed, "{}", off.to_json());
    assert_eq!(off.tls.unwrap().legacy, None);
}

#[tokio::test]
async fn legacy_probe_passes_a_modern_only_server() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[NAME], 90).unwrap();
    let server = serve(&leaf, true).await;
    let r =
        run(monitor(server.port(), &pki.root_pem())
            .tls_with(|t| t.legacy_probe = LegacyProbe::Fail))
        .await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let legacy = r.tls.unwrap().legacy.unwrap();
    assert_eq!((legacy.tls1_0, legacy.tls1_1), (Some(false), Some(false)));
}

#[tokio::test]
async fn no_protocol_version_in_common() {
    let server = openssl("tls12-only", &["-tls1_2"]);
    let r = run(openssl_monitor(server.port).tls_with(|t| t.min_version = TlsVersion::Tls13)).await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Failed, Some(ErrorKind::NoCommonProtocol)),
        "{}",
        r.to_json()
    );
    assert!(message(&r).contains("TLS 1.3 only"), "{}", message(&r));
}

/// The engine verifies an unchanged chain once (`tls/accepted.rs`); the same chain checked
/// again is still trusted, and checked after a certificate's end it is judged expired and
/// not trusted: the dates are judged at every check.
#[tokio::test]
async fn an_unchanged_chain_is_trusted_again_and_its_dates_judged_at_each_check() {
    let pki = TestPki::new().unwrap();
    let leaf = pki
        .leaf(&[NAME], days_from_now(-1), days_from_now(40))
        .unwrap();
    let server = serve(&leaf, true).await;
    let wall = monitor_testing::ShiftedWall::default();
    let engine = Engine::new().with_clock(wall.clone());
    let monitor = monitor(server.port(), &pki.root_pem()).validate().unwrap();
    let mut seen = Vec::new();
    for days in [0, 0, 60, 0, -3] {
        wall.set(time::Duration::days(days));
        let r = engine.check(&monitor).await;
        let tls = r.tls.as_ref().expect("a TLS report");
        seen.push((days, r.status, kind(&r), tls.verified));
    }
    assert_eq!(
        seen,
        [
            (0, Status::Passed, None, true),
            (0, Status::Passed, None, true),
            (
                60,
                Status::Failed,
                Some(ErrorKind::CertificateExpired),
                false
            ),
            (0, Status::Passed, None, true),
            (
                -3,
                Status::Failed,
                Some(ErrorKind::CertificateNotYetValid),
                false
            ),
        ]
    );
}
