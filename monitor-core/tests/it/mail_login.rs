//! The SMTP, IMAP, POP3 and FTP logins (issue 19) against the real Debian servers (Dovecot,
//! Exim, vsftpd): the facts a login learns, the failure kinds a pager acts on, the curl
//! command that repeats it, and the password kept out of results, `explain` and logs.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use monitor_core::model::login::Login;
use monitor_core::{CheckResult, ErrorKind, PemSource, Recipe, TcpMonitor, TlsMode};

use crate::live::TestCerts;
use crate::live::mail::Dialog;
use crate::live::mail_login::{
    MESSAGES, MailServer, PASSWORD, USER, dovecot, exim, system_home, vsftpd,
};
use crate::logins::{check_secret, fact};

/// The variable the monitors name; the engine's secrets answer it.
const VAR: &str = "MONITORS_SECRET_MAIL";
const WRONG: &str = "wrong-secret-0d1f";

fn monitor(port: u16, recipe: Recipe, login: Login) -> TcpMonitor {
    TcpMonitor::new("mail-login", "127.0.0.1", port)
        .recipe(recipe.with_login(login.user(USER)))
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

/// Checks `spec` with `password` in [`VAR`], logging everything at trace level; asserts
/// no password (as it is or in base64, alone or in a PLAIN blob) appears in the result,
/// the spec (`explain`) or the logs.
async fn check(spec: TcpMonitor, password: &'static str) -> CheckResult {
    // The PLAIN blobs (`\0user\0password`, base64) must not leak either.
    let blobs: Vec<String> = [PASSWORD, WRONG, password]
        .iter()
        .map(|secret| STANDARD.encode(format!("\0{USER}\0{secret}")))
        .collect();
    let mut secrets = vec![PASSWORD, WRONG];
    secrets.extend(blobs.iter().map(String::as_str));
    check_secret(spec, VAR, password, &secrets).await
}

fn passed(r: &CheckResult) {
    assert!(r.error.is_none(), "{}", r.to_json());
}

/// The kind of `r`'s error and its message, asserting the last hint is `curl` (naming
/// the variable, not the password).
fn failure(r: &CheckResult, curl: &str) -> (ErrorKind, String) {
    let e = r
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error in {}", r.to_json()));
    let last = e.hints.last().expect("hints");
    assert!(last.ends_with(curl), "last hint {last:?}, want {curl:?}");
    (e.kind, e.message.clone())
}

/// A connection to FTP `port` held open (greeted with 220), until drop; retried while the
/// server still counts the connection that found it listening.
fn held_ftp(port: u16) -> TcpStream {
    for _ in 0..100 {
        let held = TcpStream::connect(("127.0.0.1", port)).expect("hold a connection");
        held.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut greeting = String::new();
        BufReader::new(&held)
            .read_line(&mut greeting)
            .expect("greeting");
        if greeting.starts_with("220") {
            return held;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("vsftpd never greeted a held connection with 220");
}

/// A session of [`USER`] held open on IMAP `port` (logged in and selected), until drop.
fn held_imap(server: &MailServer) -> Dialog<'_> {
    let mut imap = Dialog::open(&server.live, server.imap_port);
    imap.line();
    imap.send(&format!("h1 LOGIN {USER} {PASSWORD}"));
    let login = imap.until(|l| l.starts_with("h1 "));
    if !login.last().is_some_and(|l| l.starts_with("h1 OK")) {
        imap.fail(&format!("held LOGIN: {login:?}"));
    }
    imap
}

#[tokio::test]
async fn imap_logs_in_over_starttls_and_imaps_and_examines_the_inbox() {
    let certs = TestCerts::new("dovecot-login");
    let server = dovecot(&certs.tls, None);
    for (port, mode) in [
        (server.imap_port, TlsMode::Starttls),
        (server.imaps_port, TlsMode::Direct),
    ] {
        let spec = trusting(
            monitor(port, Recipe::imap(), Login::password_env(VAR)),
            mode,
            &certs,
        )
        .assert(monitor_core::model::assertion::entry_count().equals(MESSAGES));
        let r = check(spec, PASSWORD).await;
        passed(&r);
        assert_eq!(fact(&r, "entry_count"), MESSAGES.to_string());
        assert_eq!(fact(&r, "mailbox"), "INBOX");
        assert_eq!(fact(&r, "auth_method"), "login");
        assert!(r.tls.expect("tls report").verified);
    }
    // Examined, never selected: the messages are still recent (unseen by any session).
    let mut imap = Dialog::open(&server.live, server.imap_port);
    imap.line();
    imap.send(&format!("a LOGIN {USER} {PASSWORD}"));
    imap.until(|l| l.starts_with("a "));
    imap.send("b EXAMINE INBOX");
    let lines = imap.until(|l| l.starts_with("b "));
    assert!(
        lines.iter().any(|l| l == &format!("* {MESSAGES} RECENT")),
        "{lines:?}"
    );
}

#[tokio::test]
async fn imap_refusals_are_authentication_failed_access_denied_and_unavailable() {
    let certs = TestCerts::new("dovecot-refusals");
    let server = dovecot(&certs.tls, Some(1));
    let port = server.imap_port;
    let curl =
        format!("curl --url imap://127.0.0.1:{port}/INBOX --ssl-reqd --user \"{USER}:${VAR}\"");
    let spec = |login: Login| {
        trusting(
            monitor(port, Recipe::imap(), login),
            TlsMode::Starttls,
            &certs,
        )
    };

    let r = check(spec(Login::password_env(VAR)), WRONG).await;
    let (kind, message) = failure(&r, &curl);
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("AUTHENTICATIONFAILED"), "{message}");
    assert!(message.contains(USER), "{message}");

    let r = check(spec(Login::password_env(VAR).query("Archive")), PASSWORD).await;
    let (kind, message) = failure(
        &r,
        &format!("curl --url imap://127.0.0.1:{port}/Archive --ssl-reqd --user \"{USER}:${VAR}\""),
    );
    assert_eq!(kind, ErrorKind::AccessDenied, "{message}");
    assert!(message.contains("mailbox Archive"), "{message}");
    assert!(message.contains("Mailbox doesn't exist"), "{message}");

    // The variable unset here: a config failure naming it.
    let r = check(spec(Login::password_env("MONITORS_SECRET_UNSET")), PASSWORD).await;
    let e = r.error.as_ref().expect("error");
    assert_eq!(e.kind, ErrorKind::Config, "{}", r.to_json());
    assert!(e.message.contains("MONITORS_SECRET_UNSET"), "{}", e.message);

    // mail_max_userip_connections = 1, taken by a held session.
    let held = held_imap(&server);
    let r = check(spec(Login::password_env(VAR)), PASSWORD).await;
    let (kind, message) = failure(&r, &curl);
    assert_eq!(kind, ErrorKind::ServiceUnavailable, "{message}");
    assert!(message.contains("[LIMIT]"), "{message}");
    drop(held);
}

#[tokio::test]
async fn pop3_logs_in_over_stls_and_reports_the_maildrop() {
    let certs = TestCerts::new("dovecot-pop3");
    let server = dovecot(&certs.tls, None);
    let port = server.pop3_port;
    let spec = |password_env: &str| {
        trusting(
            monitor(port, Recipe::pop3(), Login::password_env(password_env)),
            TlsMode::Starttls,
            &certs,
        )
    };
    let r = check(spec(VAR), PASSWORD).await;
    passed(&r);
    assert_eq!(fact(&r, "entry_count"), MESSAGES.to_string());
    assert_eq!(
        fact(&r, "maildrop_bytes"),
        server.maildrop_bytes.to_string()
    );

    let r = check(spec(VAR), WRONG).await;
    let (kind, message) = failure(
        &r,
        &format!("curl --url pop3://127.0.0.1:{port} --ssl-reqd --user \"{USER}:${VAR}\""),
    );
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("[AUTH]"), "{message}");
}

#[tokio::test]
async fn smtp_auth_plain_and_login_over_starttls() {
    let certs = TestCerts::new("exim-login");
    let server = exim(&certs.tls, true);
    let port = server.port;
    let spec = |login: Login| {
        trusting(
            monitor(port, Recipe::smtp(), login),
            TlsMode::Starttls,
            &certs,
        )
    };
    let r = check(spec(Login::password_env(VAR)), PASSWORD).await;
    passed(&r);
    assert_eq!(fact(&r, "auth_method"), "plain");

    let r = check(spec(Login::password_env(VAR)), WRONG).await;
    let (kind, message) = failure(
        &r,
        &format!("curl --url smtp://127.0.0.1:{port} --ssl-reqd --user \"{USER}:${VAR}\""),
    );
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("535"), "{message}");

    // Without TLS the password may not travel unless the login allows it; this server
    // then offers no AUTH at all.
    let plaintext = monitor(port, Recipe::smtp(), Login::password_env(VAR));
    assert!(
        plaintext.validate().is_err(),
        "plaintext login without allow_plaintext"
    );
    let r = check(
        monitor(
            port,
            Recipe::smtp(),
            Login::password_env(VAR).allow_plaintext(),
        ),
        PASSWORD,
    )
    .await;
    let (kind, message) = failure(
        &r,
        &format!("curl --url smtp://127.0.0.1:{port} --user \"{USER}:${VAR}\""),
    );
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("offers no AUTH here"), "{message}");
    let hint = &r.error.as_ref().expect("error").hints[0];
    assert!(hint.contains("STARTTLS"), "{hint}");

    // A server with only LOGIN.
    let login_only = exim(&certs.tls, false);
    let spec = trusting(
        monitor(login_only.port, Recipe::smtp(), Login::password_env(VAR)),
        TlsMode::Starttls,
        &certs,
    );
    let r = check(spec.clone(), PASSWORD).await;
    passed(&r);
    assert_eq!(fact(&r, "auth_method"), "login");
    let r = check(spec, WRONG).await;
    assert_eq!(
        r.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::AuthenticationFailed),
        "{}",
        r.to_json()
    );
}

#[tokio::test]
async fn ftp_logs_in_over_auth_tls_and_reports_the_directory() {
    let certs = TestCerts::new("vsftpd-login");
    let server = vsftpd(&certs.tls, 10);
    let port = server.port;
    let spec = trusting(
        monitor(port, Recipe::ftp(), Login::password_env(VAR)),
        TlsMode::Starttls,
        &certs,
    );
    let r = check(spec.clone(), PASSWORD).await;
    passed(&r);
    assert_eq!(fact(&r, "directory"), system_home());

    let r = check(spec.clone(), WRONG).await;
    let (kind, message) = failure(
        &r,
        &format!("curl --url ftp://127.0.0.1:{port}/ --ssl-reqd --user \"{USER}:${VAR}\""),
    );
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("530"), "{message}");

    // max_per_ip = 1, taken by a held connection: 421 before any login.
    let limited = vsftpd(&certs.tls, 1);
    let port = limited.port;
    let held = held_ftp(port);
    let r = check(
        monitor(
            port,
            Recipe::ftp(),
            Login::password_env(VAR).allow_plaintext(),
        ),
        PASSWORD,
    )
    .await;
    assert_eq!(
        r.error.as_ref().map(|e| e.kind),
        Some(ErrorKind::ServiceUnavailable),
        "{}",
        r.to_json()
    );
    drop(held);
}
