//! The MongoDB login (issue 19) against a mock MongoDB (mockupdb from PyPI) doing the
//! server side of SCRAM-SHA-256: the role and `read_only` facts, the failure kinds, the
//! password kept out of results, `explain` and logs, and the SCRAM client compared with
//! pymongo's on the same inputs.

use monitor_core::engine::protocol::scram::ScramClient;
use monitor_core::model::assertion::{role, writable};
use monitor_core::model::login::Login;
use monitor_core::{CheckResult, ErrorKind, Recipe, Status, TcpMonitor};

use crate::live::mockupdb::{MockMongo, pymongo_final};
use crate::logins::{self, check_secret, fact};

const PASSWORD: &str = "mongo-secret-5e1d";
const VAR: &str = "MONITORS_SECRET_MONGO";

fn server(role: &'static str) -> MockMongo {
    MockMongo {
        user: "monitor",
        password: PASSWORD,
        db: "admin",
        role,
        bad_signature: false,
        empty_round: false,
        ping_error: None,
    }
}

fn monitor(port: u16, login: Login) -> TcpMonitor {
    TcpMonitor::new("mongo-login", "127.0.0.1", port)
        .recipe(Recipe::mongodb().with_login(login))
        .timeouts(5_000, 5_000, 15_000)
        .thresholds(10_000, 15_000)
}

fn login() -> Login {
    Login::password_env(VAR).user("monitor")
}

async fn check(spec: TcpMonitor, password: &'static str) -> CheckResult {
    check_secret(spec, VAR, password, &[PASSWORD]).await
}

/// The kind and message of `r`'s error, asserting the last hint is the mongosh command
/// naming the variable.
fn failure(r: &CheckResult) -> (ErrorKind, String) {
    let password = format!("--password \"${VAR}\"");
    logins::failure(r, &["mongosh \"mongodb://", "@127.0.0.1:", &password])
}

#[tokio::test]
async fn right_password_passes_with_role_and_read_only() {
    for (role_name, expected, read_only) in [
        ("primary", "primary", "no"),
        ("standalone", "standalone", "no"),
        ("secondary", "replica", "yes"),
    ] {
        let live = server(role_name).start();
        let r = check(
            monitor(live.port, login()).assert(role().equals(expected)),
            PASSWORD,
        )
        .await;
        assert_eq!(
            r.status,
            Status::Passed,
            "{role_name}: {}\n{}",
            r.to_json(),
            live.log()
        );
        assert_eq!(fact(&r, "role"), expected);
        assert_eq!(fact(&r, "read_only"), read_only);
        assert_eq!(fact(&r, "auth_method"), "scram-sha-256");
    }
}

#[tokio::test]
async fn an_empty_round_after_the_signature_is_answered() {
    let mut mock = server("primary");
    mock.empty_round = true;
    let live = mock.start();
    let r = check(monitor(live.port, login()), PASSWORD).await;
    assert_eq!(r.status, Status::Passed, "{}\n{}", r.to_json(), live.log());
}

#[tokio::test]
async fn wrong_password_or_user_is_authentication_failed() {
    let live = server("primary").start();
    let r = check(monitor(live.port, login()), "not-the-password").await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("Authentication failed"), "{message}");
    let r = check(
        monitor(live.port, Login::password_env(VAR).user("nobody")),
        PASSWORD,
    )
    .await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("user nobody"), "{message}");
}

#[tokio::test]
async fn a_server_signature_that_does_not_verify_is_authentication_failed() {
    let mut mock = server("primary");
    mock.bad_signature = true;
    let live = mock.start();
    let r = check(monitor(live.port, login()), PASSWORD).await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("signature does not verify"), "{message}");
}

#[tokio::test]
async fn command_errors_are_access_denied_or_query_failed_by_code() {
    for (code, name, kind) in [
        (13, "Unauthorized", ErrorKind::AccessDenied),
        (59, "CommandNotFound", ErrorKind::QueryFailed),
    ] {
        let mut mock = server("primary");
        mock.ping_error = Some((code, name));
        let live = mock.start();
        let r = check(monitor(live.port, login()), PASSWORD).await;
        let (got, message) = failure(&r);
        assert_eq!(got, kind, "{code}: {message}");
        assert!(message.contains("ping refused by the test"), "{message}");
        if kind == ErrorKind::QueryFailed {
            assert!(message.contains("CommandNotFound (59)"), "{message}");
        }
    }
}

#[tokio::test]
async fn a_secondary_is_not_writable() {
    let live = server("secondary").start();
    let r = check(monitor(live.port, login()).assert(writable()), PASSWORD).await;
    let e = r
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error in {}", r.to_json()));
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
    assert_eq!(fact(&r, "role"), "replica");
}

#[tokio::test]
async fn an_unset_variable_is_a_config_error_naming_it() {
    let live = server("primary").start();
    let r = check_secret(
        monitor(
            live.port,
            Login::password_env("MONITORS_SECRET_UNSET").user("monitor"),
        ),
        VAR,
        PASSWORD,
        &[],
    )
    .await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::Config, "{}", r.to_json());
    assert!(e.message.contains("MONITORS_SECRET_UNSET"), "{}", e.message);
}

#[test]
fn scram_client_final_equals_pymongos() {
    for (user, password, byte) in [
        ("monitor", PASSWORD, 7u8),
        ("we,ird=user", "p\u{00e4}ss w\u{00a0}rd", 0xa5),
    ] {
        let nonce = [byte; 32];
        let salt = "c2FsdC1mb3ItdGhlLW1vbml0b3I=";
        let (first, server_first, final_) =
            pymongo_final(user, password, &nonce, "srvNONCE9", salt, 4096);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(nonce);
        let mut ours = ScramClient::new(user, password, &b64).expect("a client");
        assert_eq!(ours.client_first(), first);
        let mine = ours
            .client_final(server_first.as_bytes())
            .expect("client-final");
        assert_eq!(mine, final_, "{user}");
    }
}
