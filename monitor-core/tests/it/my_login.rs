//! The MySQL login (issue 19) against the real Debian MariaDB 10.11: `mysql_native_password`
//! and `ed25519` users with and without TLS, the facts a login learns, the failure kinds a
//! pager acts on (wrong password, unknown user, missing database, no grant, a failing
//! query, a read-only server, a user at its connection limit), and the password kept out
//! of results, `explain` and logs.

use std::sync::OnceLock;

use monitor_core::model::login::Login;
use monitor_core::model::secret::SecretPolicy;
use monitor_core::prelude::writable;
use monitor_core::{CheckResult, Engine, ErrorKind, PemSource, Recipe, TcpMonitor, TlsMode};

use crate::live::TestCerts;
use crate::live::mysql::MariaDb;
use crate::logins::{self, check_secret, fact};

const NATIVE_PASSWORD: &str = "native-secret-5d1e";
const ED_PASSWORD: &str = "ed-secret-c48b";
/// The variable the monitors name; the engine's secrets answer it.
const VAR: &str = "MONITORS_SECRET_MY";

/// The shared server (offering TLS) with this module's users and databases, and the root
/// certificate its TLS certificate chains to.
struct Shared {
    server: MariaDb,
    root_pem: String,
}

/// The users: `native_user` (`mysql_native_password`), `ed_user` (`ed25519`), both with
/// SELECT on `login_app`; `limited_user` (at most one connection); database `login_app`
/// with table `items` (one row, 7) and `login_locked` (granted to nobody).
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let certs = TestCerts::new("mariadb-login");
        let server = MariaDb::start(Some(&certs.tls));
        server
            .stop_at_exit()
            .expect("start the watchdog of the shared MariaDB server");
        server.must(&format!(
            "INSTALL SONAME 'auth_ed25519';
             CREATE DATABASE login_app;
             CREATE DATABASE login_locked;
             CREATE TABLE login_app.items (n INT);
             INSERT INTO login_app.items VALUES (7);
             CREATE USER native_user@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('{NATIVE_PASSWORD}');
             GRANT SELECT ON login_app.* TO native_user@'%';
             CREATE USER ed_user@'%' IDENTIFIED VIA ed25519 USING PASSWORD('{ED_PASSWORD}');
             GRANT SELECT ON login_app.* TO ed_user@'%';
             CREATE USER limited_user@'%' IDENTIFIED BY '{NATIVE_PASSWORD}' WITH MAX_USER_CONNECTIONS 1;
             GRANT SELECT ON login_app.* TO limited_user@'%';"
        ));
        Shared {
            server,
            root_pem: certs.root_pem.clone(),
        }
    })
}

fn monitor(port: u16, login: Login) -> TcpMonitor {
    TcpMonitor::new("my-login", "127.0.0.1", port)
        .recipe(Recipe::mysql().with_login(login))
        .timeouts(5_000, 5_000, 15_000)
        .thresholds(10_000, 15_000)
}

/// A login as `user` with the password in [`VAR`].
fn as_user(user: &str) -> Login {
    Login::password_env(VAR).user(user)
}

/// `spec` over STARTTLS (the SSL Request), trusting the test root for `localhost`.
fn over_tls(spec: TcpMonitor) -> TcpMonitor {
    let root = shared().root_pem.clone();
    spec.tls_with(|t| {
        t.mode = TlsMode::Starttls;
        t.ca = Some(PemSource::Pem(root));
        t.server_name = Some("localhost".into());
    })
}

/// Checks `spec` with `password` in [`VAR`]; no password may leak (see
/// [`check_secret`](crate::logins::check_secret)).
async fn check(spec: TcpMonitor, password: &'static str) -> CheckResult {
    check_secret(spec, VAR, password, &[NATIVE_PASSWORD, ED_PASSWORD]).await
}

/// The kind of `r`'s error and its message, asserting the last hint is a mysql command
/// naming the variable, not the password.
fn failure(r: &CheckResult) -> (ErrorKind, String) {
    let command = format!("MYSQL_PWD=\"${VAR}\" mysql --host=127.0.0.1");
    logins::failure(r, &[&command])
}

/// The TLS version of the session, as the server sees it.
const SSL_VERSION: &str = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_version'";

#[tokio::test]
async fn native_password_logs_in_with_and_without_tls() {
    let db = &shared().server;
    let version = db.must("SELECT VERSION()");
    let login = as_user("native_user")
        .database("login_app")
        .query("SELECT CONCAT(CURRENT_USER(), ' in ', DATABASE())");
    let r = check(monitor(db.port(), login), NATIVE_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "mysql_native_password");
    assert_eq!(fact(&r, "read_only"), "no");
    assert_eq!(fact(&r, "query_first_value"), "native_user@% in login_app");
    assert_eq!(fact(&r, "server_version"), version.trim());
    // The default query is SELECT 1.
    let r = check(monitor(db.port(), as_user("native_user")), NATIVE_PASSWORD).await;
    assert_eq!(fact(&r, "query_first_value"), "1");
    // Over TLS, the server sees an encrypted session.
    let spec = over_tls(monitor(
        db.port(),
        as_user("native_user").query(SSL_VERSION),
    ));
    let r = check(spec, NATIVE_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert!(r.tls.as_ref().expect("tls report").verified);
    assert_eq!(fact(&r, "auth_method"), "mysql_native_password");
    assert!(
        fact(&r, "query_first_value").starts_with("TLSv1."),
        "{}",
        r.to_json()
    );
}

#[tokio::test]
async fn ed25519_logs_in_with_and_without_tls() {
    let db = &shared().server;
    let login = as_user("ed_user").query("SELECT n FROM login_app.items");
    let r = check(monitor(db.port(), login.clone()), ED_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "client_ed25519");
    assert_eq!(fact(&r, "query_first_value"), "7");
    assert_eq!(fact(&r, "read_only"), "no");
    let r = check(over_tls(monitor(db.port(), login)), ED_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "client_ed25519");
    assert_eq!(fact(&r, "query_first_value"), "7");
    let spec = over_tls(monitor(db.port(), as_user("ed_user").query(SSL_VERSION)));
    let r = check(spec, ED_PASSWORD).await;
    assert!(
        fact(&r, "query_first_value").starts_with("TLSv1."),
        "{}",
        r.to_json()
    );
}

#[tokio::test]
async fn null_no_rows_and_statements_without_rows() {
    let db = &shared().server;
    let r = check(
        monitor(db.port(), as_user("native_user").query("SELECT NULL")),
        NATIVE_PASSWORD,
    )
    .await;
    assert_eq!(fact(&r, "query_first_value"), "NULL");
    for query in ["SELECT n FROM login_app.items WHERE n = 0", "DO 1"] {
        let r = check(
            monitor(db.port(), as_user("native_user").query(query)),
            NATIVE_PASSWORD,
        )
        .await;
        assert!(r.error.is_none(), "{query}: {}", r.to_json());
        assert!(!r.facts.contains_key("query_first_value"), "{query}");
        assert_eq!(fact(&r, "read_only"), "no");
    }
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_is_authentication_failed() {
    let db = &shared().server;
    for (user, right) in [("native_user", NATIVE_PASSWORD), ("ed_user", ED_PASSWORD)] {
        let r = check(monitor(db.port(), as_user(user)), "not-the-password").await;
        let (kind, message) = failure(&r);
        assert_eq!(kind, ErrorKind::AuthenticationFailed, "{user}: {message}");
        assert!(message.contains("Access denied"), "{message}");
        assert!(message.contains("error 1045 (28000)"), "{message}");
        assert!(!r.to_json().contains(right));
    }
    let r = check(monitor(db.port(), as_user("nobody_here")), NATIVE_PASSWORD).await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("nobody_here"), "{message}");
}

#[tokio::test]
async fn a_missing_database_or_no_grant_is_access_denied() {
    let db = &shared().server;
    for database in ["no_such_db", "login_locked"] {
        let login = as_user("native_user").database(database);
        let r = check(monitor(db.port(), login), NATIVE_PASSWORD).await;
        let (kind, message) = failure(&r);
        assert_eq!(kind, ErrorKind::AccessDenied, "{message}");
        assert!(message.contains(database), "{message}");
        let hint = &r.error.as_ref().unwrap().hints[0];
        assert!(
            hint.contains("GRANT") || hint.contains("database"),
            "{hint}"
        );
    }
    // A table the user may not read: the query's answer, denied.
    let login = as_user("native_user").query("SELECT * FROM mysql.user");
    let r = check(monitor(db.port(), login), NATIVE_PASSWORD).await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AccessDenied, "{message}");
    assert!(message.contains("error 1142"), "{message}");
}

#[tokio::test]
async fn a_failing_query_is_query_failed_with_its_error_code() {
    let db = &shared().server;
    let login = as_user("native_user").query("SELECT * FROM login_app.no_such_table");
    let r = check(monitor(db.port(), login), NATIVE_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::QueryFailed, "{}", r.to_json());
    assert!(e.message.contains("no_such_table"), "{}", e.message);
    assert!(
        e.hints[0].starts_with("error 1146 (42S02)"),
        "{:?}",
        e.hints
    );
    assert_eq!(e.hints.len(), 2, "{:?}", e.hints);
    // What the read-only query learned before is kept.
    assert_eq!(fact(&r, "read_only"), "no");
    assert_eq!(
        fact(&r, "server_error"),
        "error 1146 (42S02): Table 'login_app.no_such_table' doesn't exist"
    );
    // The last hint reproduces the failure by hand with the mysql client.
    failure(&r);
    let command = e.hints[1]
        .strip_prefix("reproduce by hand: ")
        .expect("a command");
    let out = std::process::Command::new("sh")
        .args(["-c", command])
        .env(VAR, NATIVE_PASSWORD)
        .output()
        .expect("run the mysql client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("ERROR 1146 (42S02)"), "{command}: {stderr}");
}

#[tokio::test]
async fn a_read_only_server_fails_writable_as_service_unavailable() {
    let db = MariaDb::start(None);
    db.must(&format!(
        "CREATE USER native_user@'%' IDENTIFIED BY '{NATIVE_PASSWORD}';
         SET GLOBAL read_only = 1;"
    ));
    let spec = monitor(db.port(), as_user("native_user"));
    let r = check(spec.clone(), NATIVE_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "read_only"), "yes");
    let r = check(spec.assert(writable()), NATIVE_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
    assert_eq!(fact(&r, "read_only"), "yes");
    // A write refused by the read-only server is service_unavailable too.
    let login = as_user("native_user").query("CREATE DATABASE written");
    db.must("GRANT CREATE ON *.* TO native_user@'%'");
    let r = check(monitor(db.port(), login), NATIVE_PASSWORD).await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::ServiceUnavailable, "{message}");
    assert!(message.contains("read-only"), "{message}");
}

#[tokio::test]
async fn a_user_at_its_connection_limit_is_service_unavailable() {
    let db = &shared().server;
    let _held = db.hold("limited_user", NATIVE_PASSWORD);
    let r = check(monitor(db.port(), as_user("limited_user")), NATIVE_PASSWORD).await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::ServiceUnavailable, "{message}");
    assert!(message.contains("max_user_connections"), "{message}");
    let hint = &r.error.as_ref().unwrap().hints[0];
    assert!(hint.contains("limited_user"), "{hint}");
}

#[tokio::test]
async fn an_unset_variable_is_a_config_failure() {
    let db = &shared().server;
    let login = Login::password_env("MONITORS_SECRET_MY_UNSET").user("native_user");
    let r = check(monitor(db.port(), login), NATIVE_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::Config, "{}", r.to_json());
    assert!(
        e.message.contains("MONITORS_SECRET_MY_UNSET"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn the_password_can_come_from_a_file_under_the_secret_directory() {
    let db = &shared().server;
    let dir = std::env::temp_dir().join(format!("my-login-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("my.pass"), format!("{ED_PASSWORD}\n")).unwrap();
    let engine = Engine::new().with_secret_policy(SecretPolicy::agent(None, Some(dir.clone())));
    let login = Login::password_file("my.pass").user("ed_user");
    let r = engine
        .check(&monitor(db.port(), login).validate().unwrap())
        .await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "client_ed25519");
    assert!(!r.to_json().contains(ED_PASSWORD));
    // The hint names the file, never its content.
    let login = Login::password_file("my.pass")
        .user("ed_user")
        .query("SELECT * FROM nowhere.none");
    let r = engine
        .check(&monitor(db.port(), login).validate().unwrap())
        .await;
    let e = r.error.expect("an error");
    let last = e.hints.last().unwrap();
    assert!(
        last.contains("MYSQL_PWD=\"$(head -n1 my.pass)\" mysql"),
        "{last}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
