//! The PostgreSQL login (issue 19) against the real Debian PostgreSQL: SCRAM-SHA-256 (with
//! channel binding over TLS), md5 and trust users, the facts a login learns, the failure
//! kinds a pager acts on, and the password kept out of results, `explain` and logs.

use std::sync::OnceLock;

use monitor_core::model::assertion::{replication_lag, role, seconds, writable};
use monitor_core::model::login::Login;
use monitor_core::model::secret::SecretPolicy;
use monitor_core::{CheckResult, Engine, ErrorKind, PemSource, Recipe, TcpMonitor, TlsMode};
use monitor_testing::postgres::{PostgresServer, shared};

use crate::logins::{self, check_secret, fact};

pub(crate) const SCRAM_PASSWORD: &str = "scram-secret-7f3a";
const MD5_PASSWORD: &str = "md5-secret-91c2";
/// The variable the monitors name; the engine's secrets answer it.
pub(crate) const VAR: &str = "MONITORS_SECRET_PG";

/// The shared server with this module's users and databases: `scram_user`, `md5_user`,
/// `trust_user`, `full_user` (connection limit 0), `ro_user` (its sessions read-only by
/// default) with pg_hba lines of their own, database `login_app` and `login_locked`
/// (CONNECT revoked from PUBLIC).
pub(crate) fn server() -> &'static PostgresServer {
    static READY: OnceLock<()> = OnceLock::new();
    let server = shared();
    READY.get_or_init(|| {
        let sql = format!(
            "SET password_encryption = 'scram-sha-256';
             CREATE ROLE scram_user LOGIN PASSWORD '{SCRAM_PASSWORD}';
             SET password_encryption = 'md5';
             CREATE ROLE md5_user LOGIN PASSWORD '{MD5_PASSWORD}';
             CREATE ROLE trust_user LOGIN;
             SET password_encryption = 'scram-sha-256';
             CREATE ROLE full_user LOGIN CONNECTION LIMIT 0 PASSWORD '{SCRAM_PASSWORD}';
             CREATE ROLE ro_user LOGIN PASSWORD '{SCRAM_PASSWORD}';
             ALTER ROLE ro_user SET default_transaction_read_only = on;"
        );
        server
            .psql("postgres", &sql)
            .expect("create the login users");
        for sql in [
            "CREATE DATABASE login_app",
            "CREATE DATABASE login_locked",
            "REVOKE CONNECT ON DATABASE login_locked FROM PUBLIC",
        ] {
            server.psql("postgres", sql).expect("create the databases");
        }
        let data = server
            .psql("postgres", "SHOW data_directory")
            .expect("data directory");
        let hba = std::path::Path::new(data.trim()).join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).expect("read pg_hba.conf");
        let lines = "host all trust_user 127.0.0.1/32 trust\n\
                     host all md5_user 127.0.0.1/32 md5\n\
                     host all scram_user 127.0.0.1/32 scram-sha-256\n\
                     host all full_user 127.0.0.1/32 scram-sha-256\n\
                     host all ro_user 127.0.0.1/32 scram-sha-256\n";
        // Rewritten in place, so the file keeps its owner (postgres).
        std::fs::write(&hba, format!("{lines}{old}")).expect("write pg_hba.conf");
        server
            .psql("postgres", "SELECT pg_reload_conf()")
            .expect("reload");
        // The reload is asynchronous: wait until the trust line is in force.
        for _ in 0..100 {
            let rules = server
                .psql(
                    "postgres",
                    "SELECT count(*) FROM pg_hba_file_rules WHERE 'trust_user' = ANY(user_name)",
                )
                .unwrap_or_default();
            if rules.trim() == "1" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    server
}

fn monitor(user: &str, database: &str, login: Login) -> TcpMonitor {
    TcpMonitor::new("pg-login", "127.0.0.1", server().port())
        .recipe(Recipe::postgres_login(user, Some(database), login))
        .timeouts(5_000, 5_000, 15_000)
        .thresholds(10_000, 15_000)
}

/// `spec` over STARTTLS (SSLRequest), trusting the test server's root for `localhost`.
fn over_tls(spec: TcpMonitor) -> TcpMonitor {
    let root = std::fs::read_to_string(server().root_cert()).expect("root certificate");
    spec.tls_with(|t| {
        t.mode = TlsMode::Starttls;
        t.ca = Some(PemSource::Pem(root));
        t.server_name = Some("localhost".into());
        // The test server's certificate lives 30 days.
        t.expiry_warn_days = 2;
        t.expiry_fail_days = 1;
    })
}

/// Checks `spec` with `password` in [`VAR`]; no password may leak (see
/// [`check_secret`](crate::logins::check_secret)).
pub(crate) async fn check(spec: TcpMonitor, password: &'static str) -> CheckResult {
    check_secret(spec, VAR, password, &[SCRAM_PASSWORD, MD5_PASSWORD]).await
}

/// The kind of `r`'s error and its message, asserting the last hint is a psql command
/// naming the variable, not the password.
fn failure(r: &CheckResult) -> (ErrorKind, String) {
    logins::failure(r, &["psql \"host=127.0.0.1"])
}

#[tokio::test]
async fn scram_login_passes_with_version_recovery_and_first_value() {
    let login = Login::password_env(VAR).query("SELECT current_user || '@' || current_database()");
    let r = check(monitor("scram_user", "login_app", login), SCRAM_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "scram-sha-256");
    assert_eq!(fact(&r, "in_recovery"), "no");
    assert_eq!(fact(&r, "query_first_value"), "scram_user@login_app");
    let version = server()
        .psql("postgres", "SHOW server_version")
        .expect("version");
    assert_eq!(fact(&r, "server_version"), version.trim());
    // The default query is SELECT 1.
    let r = check(
        monitor("scram_user", "login_app", Login::password_env(VAR)),
        SCRAM_PASSWORD,
    )
    .await;
    assert_eq!(fact(&r, "query_first_value"), "1");
}

#[tokio::test]
async fn scram_over_tls_binds_the_channel() {
    let spec = over_tls(monitor("scram_user", "login_app", Login::password_env(VAR)));
    let r = check(spec, SCRAM_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "ssl"), "yes");
    assert_eq!(fact(&r, "auth_method"), "scram-sha-256-plus");
    assert_eq!(fact(&r, "query_first_value"), "1");
    assert!(r.tls.expect("tls report").verified);
}

#[tokio::test]
async fn md5_and_trust_users_log_in() {
    let r = check(
        monitor("md5_user", "login_app", Login::password_env(VAR)),
        MD5_PASSWORD,
    )
    .await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "md5");
    assert_eq!(fact(&r, "query_first_value"), "1");
    let r = check(monitor("trust_user", "login_app", Login::trust()), "unused").await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "trust");
    assert_eq!(fact(&r, "in_recovery"), "no");
}

#[tokio::test]
async fn a_wrong_password_is_authentication_failed_with_the_servers_reason() {
    for (user, right) in [("scram_user", SCRAM_PASSWORD), ("md5_user", MD5_PASSWORD)] {
        let r = check(
            monitor(user, "login_app", Login::password_env(VAR)),
            "not-the-password",
        )
        .await;
        let (kind, message) = failure(&r);
        assert_eq!(kind, ErrorKind::AuthenticationFailed, "{user}: {message}");
        assert!(
            message.contains("password authentication failed"),
            "{message}"
        );
        assert!(!r.to_json().contains(right));
    }
    // A password the server asks for and the login does not name.
    let r = check(monitor("scram_user", "login_app", Login::trust()), "unused").await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("names none"), "{message}");
}

#[tokio::test]
async fn a_missing_database_or_no_connect_grant_is_access_denied() {
    let r = check(
        monitor("scram_user", "no_such_db", Login::password_env(VAR)),
        SCRAM_PASSWORD,
    )
    .await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AccessDenied, "{message}");
    assert!(message.contains("no_such_db"), "{message}");
    let r = check(
        monitor("scram_user", "login_locked", Login::password_env(VAR)),
        SCRAM_PASSWORD,
    )
    .await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AccessDenied, "{message}");
    assert!(message.contains("permission denied"), "{message}");
}

#[tokio::test]
async fn a_failing_query_is_query_failed_with_its_sqlstate() {
    let login = Login::password_env(VAR).query("SELECT * FROM no_such_table");
    let r = check(monitor("scram_user", "login_app", login), SCRAM_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::QueryFailed, "{}", r.to_json());
    assert!(e.message.contains("no_such_table"), "{}", e.message);
    assert!(e.hints[0].contains("SQLSTATE 42P01"), "{:?}", e.hints);
    assert!(
        e.hints[1].contains("PGPASSWORD=\"$MONITORS_SECRET_PG\" psql"),
        "{:?}",
        e.hints
    );
    assert_eq!(e.hints.len(), 2, "{:?}", e.hints);
    // What the recovery query learned before is kept.
    assert_eq!(fact(&r, "in_recovery"), "no");
}

#[tokio::test]
async fn an_unset_variable_is_a_config_failure() {
    let login = Login::password_env("MONITORS_SECRET_PG_UNSET");
    let r = check(monitor("scram_user", "login_app", login), SCRAM_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::Config, "{}", r.to_json());
    assert!(
        e.message.contains("MONITORS_SECRET_PG_UNSET"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_role_at_its_connection_limit_is_service_unavailable() {
    let r = check(
        monitor("full_user", "login_app", Login::password_env(VAR)),
        SCRAM_PASSWORD,
    )
    .await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::ServiceUnavailable, "{message}");
    assert!(message.contains("53300"), "{message}");
}

#[tokio::test]
async fn the_password_can_come_from_a_file_under_the_secret_directory() {
    let dir = std::env::temp_dir().join(format!("pg-login-secrets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pg.pass"), format!("{SCRAM_PASSWORD}\n")).unwrap();
    let engine = Engine::new().with_secret_policy(SecretPolicy::agent(None, Some(dir.clone())));
    let inside = monitor("scram_user", "login_app", Login::password_file("pg.pass"));
    let r = engine.check(&inside.validate().unwrap()).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "auth_method"), "scram-sha-256");
    assert!(!r.to_json().contains(SCRAM_PASSWORD));
    // A file outside the secret directory is never read.
    let outside = monitor(
        "scram_user",
        "login_app",
        Login::password_file("../pg.pass"),
    );
    let r = engine.check(&outside.validate().unwrap()).await;
    let e = r.error.expect("an error");
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(
        e.message.starts_with("recipe.login.password_file: "),
        "{}",
        e.message
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_primary_is_a_writable_primary_without_lag() {
    let spec = monitor("scram_user", "login_app", Login::password_env(VAR))
        .assert(role().equals("primary"))
        .assert(writable())
        .assert(replication_lag().less_than(seconds(10)));
    let r = check(spec, SCRAM_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "role"), "primary");
    assert_eq!(fact(&r, "read_only"), "no");
    assert_eq!(fact(&r, "replication_lag_ms"), "0");
}

#[tokio::test]
async fn a_role_with_read_only_sessions_is_not_writable() {
    let spec = monitor("ro_user", "login_app", Login::password_env(VAR)).assert(writable());
    let r = check(spec, SCRAM_PASSWORD).await;
    assert_eq!(fact(&r, "role"), "primary");
    assert_eq!(fact(&r, "read_only"), "yes");
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
    assert!(e.message.contains("read-only"), "{}", e.message);
    // Without the assertion the same login passes.
    let spec = monitor("ro_user", "login_app", Login::password_env(VAR));
    let r = check(spec, SCRAM_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(fact(&r, "read_only"), "yes");
}
