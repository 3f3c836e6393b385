//! The acceptance suite: every recipe against its real Debian server on loopback, the
//! facts it learns compared with what the server's own binaries say, each service broken
//! (stopped, wrong password, expired certificate, STARTTLS off) with the failure kind
//! asserted, and the verdicts compared with Nagios `check_tcp` and `openssl s_client`.

use std::process::Command;

use monitor_core::{
    CheckResult, Engine, ErrorKind, PemSource, ProxyProtocol, Recipe, Status, TcpMonitor, TlsMode,
};

use crate::live::data::{mariadb, memcached, postgres, redis, redis_tls};
use crate::live::edge::{check_tcp, haproxy_proxy_front, haproxy_tls_front, nginx_tls, s_client};
use crate::live::mail::{dovecot, smtp};
use crate::live::shell::{sshd, vsftpd};
use crate::live::{Live, TestCerts, require};

/// A monitor of `port` on 127.0.0.1 speaking `recipe`.
fn monitor(port: u16, recipe: Recipe) -> TcpMonitor {
    TcpMonitor::new("live", "127.0.0.1", port)
        .recipe(recipe)
        .timeouts(5_000, 5_000, 15_000)
        .thresholds(10_000, 15_000)
}

/// `spec` over TLS (`mode`), trusting only the test root and verifying `localhost`.
fn trusting(spec: TcpMonitor, mode: TlsMode, certs: &TestCerts) -> TcpMonitor {
    spec.tls_with(|t| {
        t.mode = mode;
        t.ca = Some(PemSource::Pem(certs.root_pem.clone()));
        t.server_name = Some("localhost".into());
    })
}

/// Checks `spec` with `secrets` as the only secrets, and asserts the verdict.
async fn check_with(
    spec: TcpMonitor,
    secrets: &'static [(&'static str, &'static str)],
    expected: (Status, Option<ErrorKind>),
) -> CheckResult {
    let engine = Engine::new().with_secrets(move |name| {
        secrets
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    });
    let result = engine.check(&spec.validate().expect("valid monitor")).await;
    assert_eq!(
        (result.status, result.error.as_ref().map(|e| e.kind)),
        expected,
        "{}",
        result.to_json()
    );
    result
}

/// Checks `spec` and asserts the verdict.
async fn check(spec: TcpMonitor, expected: (Status, Option<ErrorKind>)) -> CheckResult {
    check_with(spec, &[], expected).await
}

const PASSED: (Status, Option<ErrorKind>) = (Status::Passed, None);

fn failed(kind: ErrorKind) -> (Status, Option<ErrorKind>) {
    (Status::Failed, Some(kind))
}

fn fact<'a>(result: &'a CheckResult, name: &str) -> &'a str {
    result
        .facts
        .get(name)
        .unwrap_or_else(|| panic!("no fact `{name}` in {}", result.to_json()))
}

/// What `program args` prints (stdout and stderr), for versions.
fn says(program: &str, package: &str, args: &[&str]) -> String {
    let output = Command::new(require(program, package))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

/// The first word of `text` after `marker`, up to a space, comma or `)`.
fn word_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` not in `{text}`"));
    text[at + marker.len()..]
        .split([' ', ',', ')', '\n'])
        .next()
        .unwrap_or_default()
}

/// Stops `live` and asserts that the monitor now fails as refused, with the hints an
/// on-call engineer needs, and that `check_tcp` agrees.
async fn assert_stopped_is_refused(mut live: Live, mut spec: TcpMonitor) {
    let port = live.port;
    live.stop();
    spec.target.port = port;
    let r = check(spec, failed(ErrorKind::Refused)).await;
    let hints = r.error.unwrap().hints.join("\n");
    assert!(hints.contains("down or not listening"), "{hints}");
    assert_eq!(
        check_tcp(port, &[]).0,
        2,
        "check_tcp disagrees on a stopped server"
    );
}

#[tokio::test]
async fn redis_ping_auth_and_tls() {
    let version = says("redis-server", "redis-server", &["--version"]);
    let version = word_after(&version, "v=");

    let open = redis(None);
    let r = check(monitor(open.port, Recipe::redis()), PASSED).await;
    assert_eq!(fact(&r, "server_version"), version);
    assert_eq!(fact(&r, "mode"), "standalone");
    assert_eq!(
        check_tcp(open.port, &["-E", "-s", "PING\\r\\n", "-e", "+PONG"]).0,
        0
    );
    assert_stopped_is_refused(open, monitor(1, Recipe::redis())).await;

    let locked = redis(Some("correct horse"));
    let spec = monitor(locked.port, Recipe::redis_auth("REDIS_PASSWORD"));
    let r = check_with(spec.clone(), &[("REDIS_PASSWORD", "correct horse")], PASSED).await;
    assert_eq!(fact(&r, "server_version"), version);
    let wrong = check_with(
        spec.clone(),
        &[("REDIS_PASSWORD", "battery staple")],
        failed(ErrorKind::AuthenticationFailed),
    )
    .await;
    assert!(wrong.error.unwrap().message.contains("WRONGPASS"));
    let missing = check(
        monitor(locked.port, Recipe::redis()),
        failed(ErrorKind::AuthenticationFailed),
    )
    .await;
    let error = missing.error.unwrap();
    assert!(error.message.contains("NOAUTH"), "{}", error.message);
    assert!(error.hints[0].contains("password_env"), "{:?}", error.hints);
    check(spec, failed(ErrorKind::Config)).await;

    let certs = TestCerts::new("redis-tls");
    let secure = redis_tls(&certs.tls);
    let spec = trusting(
        monitor(secure.port, Recipe::redis()),
        TlsMode::Direct,
        &certs,
    );
    let r = check(spec, PASSED).await;
    assert_eq!(fact(&r, "server_version"), version);
    let tls = r.tls.unwrap();
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    assert!(tls.verified);
    assert_eq!(tls.days_left, Some(89), "a leaf valid for 90 more days");
    // Plaintext to a TLS-only port: redis drops the connection, and the hints say why.
    let r = check(
        monitor(secure.port, Recipe::redis()),
        failed(ErrorKind::Reset),
    )
    .await;
    let hints = r.error.unwrap().hints.join("\n");
    assert!(hints.contains("expects TLS"), "{hints}");
}

#[tokio::test]
async fn memcached_version() {
    let version = says("memcached", "memcached", &["-V"]);
    let live = memcached();
    let r = check(monitor(live.port, Recipe::memcached()), PASSED).await;
    assert_eq!(
        format!("memcached {}", fact(&r, "server_version")),
        version.trim()
    );
    assert_stopped_is_refused(live, monitor(1, Recipe::memcached())).await;
}

#[tokio::test]
async fn postgres_startup_with_and_without_tls() {
    let certs = TestCerts::new("postgres");
    let live = postgres(Some(&certs.tls));
    let r = check(monitor(live.port, Recipe::postgres()), PASSED).await;
    assert_eq!(fact(&r, "auth_method"), "scram-sha-256");
    let spec = trusting(
        monitor(live.port, Recipe::postgres()),
        TlsMode::Starttls,
        &certs,
    );
    let r = check(spec, PASSED).await;
    assert_eq!(fact(&r, "ssl"), "yes");
    // Over TLS the server also offers SCRAM with channel binding.
    assert_eq!(fact(&r, "auth_method"), "scram-sha-256-plus scram-sha-256");
    let tls = r.tls.unwrap();
    assert!(tls.verified);
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    let (ok, out) = s_client(
        live.port,
        &[&["-starttls", "postgres"][..], &certs.verify_args()].concat(),
    );
    assert!(ok, "s_client disagrees: {out}");

    let plain = postgres(None);
    let spec = trusting(
        monitor(plain.port, Recipe::postgres()),
        TlsMode::Starttls,
        &certs,
    );
    let r = check(spec, failed(ErrorKind::StarttlsNotOffered)).await;
    assert!(r.error.unwrap().hints[0].contains("enable STARTTLS"));
    let (ok, _) = s_client(
        plain.port,
        &[&["-starttls", "postgres"][..], &certs.verify_args()].concat(),
    );
    assert!(!ok, "s_client passed a server without TLS");
    let expired = TestCerts::valid("postgres-expired", -40, -10);
    let stale = postgres(Some(&expired.tls));
    check(
        trusting(
            monitor(stale.port, Recipe::postgres()),
            TlsMode::Starttls,
            &expired,
        ),
        failed(ErrorKind::CertificateExpired),
    )
    .await;
    assert_stopped_is_refused(live, monitor(1, Recipe::postgres())).await;
}

#[tokio::test]
async fn mariadb_handshake_with_and_without_tls() {
    let version = says("mariadbd", "mariadb-server", &["--version"]);
    let version = word_after(&version, "Ver ");
    let certs = TestCerts::new("mariadb");
    let live = mariadb(Some(&certs.tls));
    let r = check(monitor(live.port, Recipe::mysql()), PASSED).await;
    // Without the `5.5.5-` prefix MariaDB sends for old MySQL clients.
    assert_eq!(fact(&r, "server_version"), version);
    assert_eq!(fact(&r, "protocol_version"), "10");
    assert_eq!(fact(&r, "ssl"), "yes");
    let spec = trusting(
        monitor(live.port, Recipe::mysql()),
        TlsMode::Starttls,
        &certs,
    );
    let r = check(spec, PASSED).await;
    assert!(r.tls.as_ref().unwrap().verified);
    assert_eq!(fact(&r, "server_version"), version);

    let plain = mariadb(None);
    let r = check(monitor(plain.port, Recipe::mysql()), PASSED).await;
    assert_eq!(fact(&r, "ssl"), "no");
    let spec = trusting(
        monitor(plain.port, Recipe::mysql()),
        TlsMode::Starttls,
        &certs,
    );
    check(spec, failed(ErrorKind::StarttlsNotOffered)).await;
    assert_stopped_is_refused(live, monitor(1, Recipe::mysql())).await;
}

#[tokio::test]
async fn dovecot_imap_and_pop3() {
    let certs = TestCerts::new("dovecot");
    let live = dovecot(Some(&certs.tls), true);
    for (port, recipe, proto) in [
        (live.imap_port, Recipe::imap(), "imap"),
        (live.pop3_port, Recipe::pop3(), "pop3"),
    ] {
        let r = check(monitor(port, recipe.clone()), PASSED).await;
        assert!(fact(&r, "greeting").contains("Dovecot"), "{}", r.to_json());
        assert_eq!(fact(&r, "starttls_offered"), "yes");
        let r = check(
            trusting(monitor(port, recipe), TlsMode::Starttls, &certs),
            PASSED,
        )
        .await;
        assert!(r.tls.as_ref().unwrap().verified);
        let (ok, out) = s_client(
            port,
            &[&["-starttls", proto][..], &certs.verify_args()].concat(),
        );
        assert!(ok, "s_client disagrees on {proto}: {out}");
    }

    let off = dovecot(None, false);
    for (port, recipe) in [
        (off.imap_port, Recipe::imap()),
        (off.pop3_port, Recipe::pop3()),
    ] {
        let r = check(monitor(port, recipe.clone()), PASSED).await;
        assert_eq!(fact(&r, "starttls_offered"), "no");
        check(
            trusting(monitor(port, recipe), TlsMode::Starttls, &certs),
            failed(ErrorKind::StarttlsNotOffered),
        )
        .await;
    }

    let expired = TestCerts::valid("dovecot-expired", -40, -10);
    let stale = dovecot(Some(&expired.tls), true);
    let r = check(
        trusting(
            monitor(stale.imap_port, Recipe::imap()),
            TlsMode::Starttls,
            &expired,
        ),
        failed(ErrorKind::CertificateExpired),
    )
    .await;
    assert!(r.error.unwrap().message.contains("expired"));
    let (ok, out) = s_client(
        stale.imap_port,
        &[&["-starttls", "imap"][..], &expired.verify_args()].concat(),
    );
    assert!(!ok && out.contains("expired"), "s_client disagrees: {out}");
    let imap = live.imap_port;
    drop(live);
    check(monitor(imap, Recipe::imap()), failed(ErrorKind::Refused)).await;
}

#[tokio::test]
async fn exim_smtp_with_and_without_starttls() {
    let version = says("exim4", "exim4-daemon-light", &["-bV"]);
    let version = word_after(&version, "Exim version ");
    let certs = TestCerts::new("exim");
    let live = smtp(Some(&certs.tls));
    let r = check(monitor(live.port, Recipe::smtp()), PASSED).await;
    assert!(
        fact(&r, "banner").contains(&format!("Exim {version}")),
        "{}",
        r.to_json()
    );
    assert_eq!(fact(&r, "starttls_offered"), "yes");
    let r = check(
        trusting(
            monitor(live.port, Recipe::smtp()),
            TlsMode::Starttls,
            &certs,
        ),
        PASSED,
    )
    .await;
    let tls = r.tls.unwrap();
    assert!(tls.verified);
    assert_eq!(tls.days_left, Some(89));
    let (ok, out) = s_client(
        live.port,
        &[&["-starttls", "smtp"][..], &certs.verify_args()].concat(),
    );
    assert!(ok, "s_client disagrees: {out}");

    let plain = smtp(None);
    let r = check(monitor(plain.port, Recipe::smtp()), PASSED).await;
    assert_eq!(fact(&r, "starttls_offered"), "no");
    let r = check(
        trusting(
            monitor(plain.port, Recipe::smtp()),
            TlsMode::Starttls,
            &certs,
        ),
        failed(ErrorKind::StarttlsNotOffered),
    )
    .await;
    assert!(r.error.unwrap().message.contains("STARTTLS"));
    let (ok, _) = s_client(
        plain.port,
        &[&["-starttls", "smtp"][..], &certs.verify_args()].concat(),
    );
    assert!(!ok, "s_client passed a server without STARTTLS");
    let expired = TestCerts::valid("exim-expired", -40, -10);
    let stale = smtp(Some(&expired.tls));
    let r = check(
        trusting(
            monitor(stale.port, Recipe::smtp()),
            TlsMode::Starttls,
            &expired,
        ),
        failed(ErrorKind::CertificateExpired),
    )
    .await;
    assert!(
        r.error.unwrap().hints.iter().any(|h| h.contains("renew")),
        "hints name the fix"
    );
    let (ok, out) = s_client(
        stale.port,
        &[&["-starttls", "smtp"][..], &expired.verify_args()].concat(),
    );
    assert!(!ok && out.contains("expired"), "s_client disagrees: {out}");
    assert_stopped_is_refused(live, monitor(1, Recipe::smtp())).await;
}

#[tokio::test]
async fn openssh_identification() {
    let client = says("ssh", "openssh-client", &["-V"]);
    let software = client
        .split([',', ' '])
        .next()
        .unwrap_or_default()
        .to_owned();
    let live = sshd();
    let r = check(monitor(live.port, Recipe::Ssh), PASSED).await;
    assert_eq!(fact(&r, "protocol_version"), "2.0");
    assert_eq!(
        fact(&r, "software"),
        software,
        "sshd and ssh come from one OpenSSH"
    );
    assert_eq!(check_tcp(live.port, &["-e", "SSH-2.0-"]).0, 0);
    assert_stopped_is_refused(live, monitor(1, Recipe::Ssh)).await;
}

#[tokio::test]
async fn vsftpd_banner_and_auth_tls() {
    let certs = TestCerts::new("vsftpd");
    let live = vsftpd(Some(&certs.tls));
    let r = check(monitor(live.port, Recipe::ftp()), PASSED).await;
    assert!(fact(&r, "banner").contains("vsFTPd"), "{}", r.to_json());
    let r = check(
        trusting(monitor(live.port, Recipe::ftp()), TlsMode::Starttls, &certs),
        PASSED,
    )
    .await;
    assert!(r.tls.as_ref().unwrap().verified);
    let (ok, out) = s_client(
        live.port,
        &[&["-starttls", "ftp"][..], &certs.verify_args()].concat(),
    );
    assert!(ok, "s_client disagrees: {out}");

    let plain = vsftpd(None);
    check(
        trusting(
            monitor(plain.port, Recipe::ftp()),
            TlsMode::Starttls,
            &certs,
        ),
        failed(ErrorKind::StarttlsNotOffered),
    )
    .await;
    assert_stopped_is_refused(live, monitor(1, Recipe::ftp())).await;
}

/// A bare TLS monitor of nginx: connect, handshake, an HTTP request, the body expected.
fn https(port: u16, certs: &TestCerts) -> TcpMonitor {
    trusting(
        TcpMonitor::new("nginx", "127.0.0.1", port),
        TlsMode::Direct,
        certs,
    )
    .send("GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n")
    .expect(crate::live::edge::NGINX_BODY.trim())
}

#[tokio::test]
async fn nginx_tls_verdicts_agree_with_s_client_and_check_tcp() {
    let certs = TestCerts::new("nginx");
    let live = nginx_tls(&certs.tls);
    let r = check(https(live.port, &certs), PASSED).await;
    let tls = r.tls.unwrap();
    assert_eq!(tls.days_left, Some(89));
    assert_eq!(
        check_tcp(live.port, &["-S", "-D", "29"]).0,
        0,
        "check_tcp: 29 days left is fine"
    );
    assert_ne!(
        check_tcp(live.port, &["-S", "-D", "91"]).0,
        0,
        "check_tcp: under 91 days warns"
    );
    let warned = https(live.port, &certs).tls_with(|t| t.expiry_warn_days = 91);
    check(
        warned,
        (Status::Degraded, Some(ErrorKind::CertificateExpiring)),
    )
    .await;

    // The wrong name: we and s_client both refuse it.
    let other =
        https(live.port, &certs).tls_with(|t| t.server_name = Some("db.example.com".into()));
    check(other, failed(ErrorKind::HostnameMismatch)).await;
    let (ok, out) = s_client(
        live.port,
        &[
            "-CAfile",
            certs.ca.to_str().unwrap(),
            "-verify_return_error",
            "-verify_hostname",
            "db.example.com",
        ],
    );
    assert!(!ok, "s_client accepted the wrong name: {out}");

    let expired = TestCerts::valid("nginx-expired", -40, -10);
    let stale = nginx_tls(&expired.tls);
    check(
        https(stale.port, &expired),
        failed(ErrorKind::CertificateExpired),
    )
    .await;
    let (ok, out) = s_client(stale.port, &expired.verify_args());
    assert!(!ok && out.contains("expired"), "s_client disagrees: {out}");

    // Stopped: refused for us, CRITICAL for check_tcp -S.
    let port = live.port;
    drop(live);
    check(https(port, &certs), failed(ErrorKind::Refused)).await;
    assert_eq!(check_tcp(port, &["-S"]).0, 2);

    let future = TestCerts::valid("nginx-future", 5, 60);
    let early = nginx_tls(&future.tls);
    check(
        https(early.port, &future),
        failed(ErrorKind::CertificateNotYetValid),
    )
    .await;
    let (ok, _) = s_client(early.port, &future.verify_args());
    assert!(!ok, "s_client accepted a certificate not valid yet");
}

#[tokio::test]
async fn haproxy_terminates_tls_in_front_of_redis() {
    let certs = TestCerts::new("haproxy");
    let backend = redis(None);
    let front = haproxy_tls_front(&certs.tls, backend.addr());
    let spec = trusting(
        monitor(front.port, Recipe::redis()),
        TlsMode::Direct,
        &certs,
    );
    let r = check(spec.clone(), PASSED).await;
    assert!(r.facts.contains_key("server_version"));
    assert!(r.tls.as_ref().unwrap().verified);
    let (ok, out) = s_client(front.port, &certs.verify_args());
    assert!(ok, "s_client disagrees: {out}");
    // The backend down: the balancer accepts, then closes.
    drop(backend);
    let r = check(spec, failed(ErrorKind::ClosedEarly)).await;
    assert!(r.tls.is_some(), "the handshake with haproxy still happened");
}

#[tokio::test]
async fn haproxy_requires_the_proxy_protocol() {
    let backend = memcached();
    let front = haproxy_proxy_front(backend.addr());
    for version in [ProxyProtocol::V1, ProxyProtocol::V2] {
        let spec = monitor(front.port, Recipe::memcached()).proxy_protocol(version);
        let r = check(spec, PASSED).await;
        assert!(r.facts.contains_key("server_version"), "{version:?}");
    }
    // Without the header haproxy resets the connection; check_tcp, which cannot send
    // one, fails the same dialog.
    let r = check(
        monitor(front.port, Recipe::memcached()),
        failed(ErrorKind::Reset),
    )
    .await;
    let hints = &r.error.as_ref().unwrap().hints;
    assert!(
        hints
            .iter()
            .any(|h| h.contains("expecting the PROXY protocol")),
        "{hints:?}"
    );
    let (code, out) = check_tcp(front.port, &["-E", "-s", "version\\r\\n", "-e", "VERSION"]);
    assert_ne!(code, 0, "check_tcp passed without a PROXY header: {out}");
    // A bare connect succeeds for both: the port listens.
    check(TcpMonitor::new("bare", "127.0.0.1", front.port), PASSED).await;
    assert_eq!(check_tcp(front.port, &[]).0, 0);
}
