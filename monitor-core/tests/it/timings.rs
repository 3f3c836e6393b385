//! Where a check's time goes and what its hints say about it: the slowest phase of a slow
//! check, the client-certificate wait kept out of the server's time, and the PROXY
//! protocol named when a connection dies before its first byte.

use std::time::Duration;

use monitor_core::prelude::*;
use monitor_core::{PemSource, ProxyProtocol, Recipe, StartTls, TlsMode};
use monitor_testing::{Script, ScriptedServer, TestPki, TlsServer};

use crate::live::TestCerts;
use crate::live::shell::{vsftpd, vsftpd_implicit_tls};
use crate::servers::{kind, run};

/// A monitor of 127.0.0.1:`port`.
fn monitor(port: u16) -> TcpMonitor {
    TcpMonitor::new("timed", "127.0.0.1", port).timeouts(2_000, 3_000, 5_000)
}

/// The hints of a result's error.
fn hints(r: &CheckResult) -> Vec<String> {
    r.error
        .as_ref()
        .map(|e| e.hints.clone())
        .unwrap_or_default()
}

/// The number of milliseconds in a hint such as "... took 950 ms".
fn ms_in(hint: &str) -> f64 {
    let before = hint.strip_suffix(" ms").unwrap_or_else(|| panic!("{hint}"));
    let word = before.rsplit(' ').next().unwrap_or_default();
    word.parse().unwrap_or_else(|_| panic!("{hint}"))
}

#[tokio::test]
async fn a_slow_read_after_the_first_byte_is_named_as_the_slowest_phase() {
    // The first byte at once, the rest over about a second.
    let server = ScriptedServer::start(
        Script::new()
            .send("2")
            .drip("20 slow banner\r\n", Duration::from_millis(60)),
    )
    .await
    .unwrap();
    let r = run(monitor(server.port())
        .expect("banner\r\n")
        .thresholds(400, 4_000))
    .await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Degraded, Some(ErrorKind::DegradedResponseTime)),
        "{}",
        r.to_json()
    );
    let first = r.timings.first_byte_ms.unwrap();
    assert!(first < 100.0, "first byte after {first} ms");
    let hint = &hints(&r)[0];
    assert!(
        hint.starts_with("reading the response after its first byte took "),
        "{hint}"
    );
    let ms = ms_in(hint);
    // Whole milliseconds in the hint: within one of the total.
    assert!((800.0..=r.timings.total_ms + 1.0).contains(&ms), "{hint}");
}

#[tokio::test]
async fn a_slow_first_byte_is_still_named_as_such() {
    let server = ScriptedServer::start(
        Script::new()
            .sleep(Duration::from_millis(600))
            .send("220 ready\r\n"),
    )
    .await
    .unwrap();
    let r = run(monitor(server.port())
        .expect("ready")
        .thresholds(300, 4_000))
    .await;
    assert_eq!(r.status, Status::Degraded, "{}", r.to_json());
    let hint = &hints(&r)[0];
    assert!(
        hint.starts_with("the slowest phase was waiting for the first byte ("),
        "{hint}"
    );
}

/// A direct-TLS monitor of `port` trusting `pki`'s root for `monitor.test`.
fn over_tls(port: u16, pki: &TestPki) -> TcpMonitor {
    monitor(port).tls_direct().tls_with(|t| {
        t.ca = Some(PemSource::Pem(pki.root_pem()));
        t.server_name = Some("monitor.test".to_owned());
    })
}

#[tokio::test]
async fn the_client_certificate_wait_is_not_server_time() {
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["monitor.test"], 90).unwrap();
    let config = leaf
        .server_config_with_optional_client_auth(&pki.root_pem())
        .unwrap();
    // A banner at once: the wait ends with it, and the first byte is the banner's.
    let eager = ScriptedServer::start_tls(
        Script::new().send("220 hello over tls\r\n"),
        TlsServer::direct(config.clone()),
    )
    .await
    .unwrap();
    let r = run(over_tls(eager.port(), &pki).expect("hello")).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let first = r.timings.first_byte_ms.unwrap();
    assert!(first < 50.0, "first byte after {first} ms");
    assert_eq!(r.timings.client_cert_wait_ms, None);

    // Nothing until asked: the whole wait is ours, reported apart, and neither the first
    // byte nor the total counts it.
    let quiet = ScriptedServer::start_tls(
        Script::new().expect("PING\r\n").send("+PONG\r\n"),
        TlsServer::direct(config),
    )
    .await
    .unwrap();
    let r = run(over_tls(quiet.port(), &pki)
        .send("PING\\r\\n")
        .expect("+PONG")
        .thresholds(250, 4_000))
    .await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let wait = r.timings.client_cert_wait_ms.unwrap();
    // The 300 ms wait, and whatever a loaded machine adds to a timer.
    assert!((290.0..1_000.0).contains(&wait), "waited {wait} ms");
    let first = r.timings.first_byte_ms.unwrap();
    assert!(first < 50.0, "first byte after {first} ms");
    assert!(r.timings.total_ms < 250.0, "{}", r.to_json());
    let json = r.to_json();
    assert!(json.contains("\"client_cert_wait_ms\""), "{json}");
}

#[tokio::test]
async fn vsftpd_asking_for_a_client_certificate_greets_without_the_wait() {
    let certs = TestCerts::new("vsftpd-implicit");
    let live = vsftpd_implicit_tls(&certs.tls);
    let spec = monitor(live.port).tls_direct().tls_with(|t| {
        t.ca = Some(PemSource::Pem(certs.root_pem.clone()));
        t.server_name = Some("localhost".to_owned());
    });
    let r = run(spec.expect("220 ")).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let first = r.timings.first_byte_ms.unwrap();
    assert!(first < 50.0, "first byte after {first} ms: {}", r.to_json());
    assert_eq!(r.timings.client_cert_wait_ms, None, "{}", r.to_json());
}

#[tokio::test]
async fn vsftpd_after_auth_tls_waits_for_us_and_the_wait_is_kept_apart() {
    // Explicit FTPS: after the handshake vsftpd waits for a command, so the whole wait for
    // a client-certificate rejection passes in silence (the issue saw 307 ms first byte).
    let certs = TestCerts::new("vsftpd-explicit");
    let live = vsftpd(Some(&certs.tls));
    let spec = monitor(live.port).recipe(Recipe::ftp()).tls_with(|t| {
        t.mode = TlsMode::Starttls;
        t.ca = Some(PemSource::Pem(certs.root_pem.clone()));
        t.server_name = Some("localhost".to_owned());
    });
    let r = run(spec.thresholds(250, 4_000)).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let wait = r.timings.client_cert_wait_ms.unwrap();
    // The 300 ms wait, and whatever a loaded machine adds to a timer.
    assert!((290.0..1_000.0).contains(&wait), "waited {wait} ms");
    let first = r.timings.first_byte_ms.unwrap();
    assert!(first < 50.0, "first byte after {first} ms: {}", r.to_json());
    assert!(r.timings.total_ms < 250.0, "{}", r.to_json());
}

#[tokio::test]
async fn a_connection_dying_before_its_first_byte_names_the_proxy_protocol() {
    let proxy = |r: &CheckResult| hints(r).iter().any(|h| h.contains("PROXY protocol"));
    let check = async |script: Script, spec: fn(u16) -> TcpMonitor, expected, named| {
        let server = ScriptedServer::start(script).await.unwrap();
        let r = run(spec(server.port())).await;
        assert_eq!(kind(&r), Some(expected), "{}", r.to_json());
        assert_eq!(proxy(&r), named, "{}", r.to_json());
    };
    let banner = |port| monitor(port).expect("ready");
    let speaks_first = |port| monitor(port).send("PING\\r\\n").expect("PONG");
    let with_header = |port| {
        monitor(port)
            .proxy_protocol(ProxyProtocol::V1)
            .expect("ready")
    };
    check(Script::new().reset(), banner, ErrorKind::Reset, true).await;
    check(Script::new().close(), banner, ErrorKind::ClosedEarly, true).await;
    check(
        Script::new().expect("PING").reset(),
        speaks_first,
        ErrorKind::Reset,
        true,
    )
    .await;
    // A header was sent, or the server did speak: the PROXY protocol is not the cause.
    check(Script::new().reset(), with_header, ErrorKind::Reset, false).await;
    check(
        Script::new().send("220 busy\r\n").close(),
        banner,
        ErrorKind::ClosedEarly,
        false,
    )
    .await;
    // The same balancer in front of a TLS port, or of a STARTTLS service: whether the
    // server or the client speaks first.
    let direct = |port| monitor(port).tls_direct();
    let smtp = |port| monitor(port).starttls(StartTls::Smtp);
    let postgres = |port| monitor(port).starttls(StartTls::Postgres);
    let direct_with_header = |port| monitor(port).tls_direct().proxy_protocol(ProxyProtocol::V2);
    for (script, spec, expected, named) in [
        (
            Script::new().close(),
            direct as fn(u16) -> TcpMonitor,
            ErrorKind::HandshakeFailure,
            true,
        ),
        (
            Script::new().reset(),
            direct,
            ErrorKind::HandshakeFailure,
            true,
        ),
        (
            Script::new().close(),
            direct_with_header,
            ErrorKind::HandshakeFailure,
            false,
        ),
        (Script::new().close(), smtp, ErrorKind::ClosedEarly, true),
        (Script::new().reset(), smtp, ErrorKind::Reset, true),
        // The greeting came: the connection died over EHLO, not for a missing header.
        (
            Script::new().send("220 mail ESMTP\r\n").close(),
            smtp,
            ErrorKind::ClosedEarly,
            false,
        ),
        (
            Script::new().close(),
            postgres,
            ErrorKind::ClosedEarly,
            true,
        ),
    ] {
        check(script, spec, expected, named).await;
    }
}
