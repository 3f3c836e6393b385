//! The Redis recipe with `role = true` against real Debian redis-servers, a primary and a
//! replica of it: the role, read-only and replication lag facts, `writable()` on the
//! replica, an ACL user without ROLE, a wrong password, and the replica that lost its
//! primary; the password kept out of results and logs.

use std::time::Duration;

use monitor_core::model::assertion::{replication_lag, role, seconds, writable};
use monitor_core::model::login::Login;
use monitor_core::{CheckResult, ErrorKind, Recipe, TcpMonitor};

use crate::live::Live;
use crate::live::replicas::{
    REDIS_NO_ROLE_USER, REDIS_PROBE_USER, REDIS_USER_PASSWORD, redis_with_users,
};
use crate::logins::check_secret;

/// The variable the monitors name; the engine's secrets answer it.
const VAR: &str = "MONITORS_SECRET_REDIS";

/// The role recipe on `server` as `user`, its password in [`VAR`].
fn monitor(server: &Live, user: &str) -> TcpMonitor {
    let recipe = Recipe::Redis {
        password_env: None,
        username: None,
        role: true,
    }
    .with_login(Login::password_env(VAR).user(user));
    TcpMonitor::new("redis-role", "127.0.0.1", server.port)
        .recipe(recipe)
        .timeouts(5_000, 5_000, 10_000)
        .thresholds(8_000, 10_000)
}

/// Checks `spec` with `password` in [`VAR`]; neither the users' password nor `password`
/// may leak (see [`check_secret`](crate::logins::check_secret)).
async fn check(spec: TcpMonitor, password: &'static str) -> CheckResult {
    check_secret(spec, VAR, password, &[REDIS_USER_PASSWORD]).await
}

/// Checks the replica until its link to the primary is up (the first sync takes a moment).
async fn replica_in_sync(replica: &Live) -> CheckResult {
    let mut last = None;
    for _ in 0..100 {
        let r = check(monitor(replica, REDIS_PROBE_USER), REDIS_USER_PASSWORD).await;
        if r.error.is_none() {
            return r;
        }
        last = Some(r);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the replica never synced: {}\n{}",
        last.unwrap().to_json(),
        replica.log()
    );
}

#[tokio::test]
async fn the_primary_and_the_replica_report_role_read_only_and_lag() {
    let primary = redis_with_users(None);
    let replica = redis_with_users(Some(primary.port));
    let spec = monitor(&primary, REDIS_PROBE_USER)
        .assert(role().equals("primary"))
        .assert(writable())
        .assert(replication_lag().less_than(seconds(10)));
    let r = check(spec, REDIS_USER_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(r.facts["role"], "primary");
    assert_eq!(r.facts["read_only"], "no");
    assert_eq!(r.facts["replication_lag_ms"], "0");
    assert_eq!(r.facts["auth"], "password");

    let r = replica_in_sync(&replica).await;
    assert_eq!(r.facts["role"], "replica", "{}", r.to_json());
    assert_eq!(r.facts["read_only"], "yes");
    assert_eq!(r.facts["master_link_status"], "up");
    let lag: u64 = r.facts["replication_lag_ms"].parse().expect("a number");
    assert!(lag < 10_000, "{lag}");
    let spec = monitor(&replica, REDIS_PROBE_USER)
        .assert(role().equals("replica"))
        .assert(replication_lag().less_than(seconds(10)));
    let r = check(spec, REDIS_USER_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());

    // A replica cannot take writes: not serving what writers need.
    let spec = monitor(&replica, REDIS_PROBE_USER).assert(writable());
    let r = check(spec, REDIS_USER_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
    assert!(e.message.contains("read-only"), "{}", e.message);
    assert!(e.hints[0].contains("replica"), "{:?}", e.hints);
    assert!(
        e.hints
            .last()
            .unwrap()
            .contains("REDISCLI_AUTH=\"$MONITORS_SECRET_REDIS\""),
        "{:?}",
        e.hints
    );
}

#[tokio::test]
async fn a_replica_that_lost_its_primary_is_service_unavailable() {
    let mut primary = redis_with_users(None);
    let replica = redis_with_users(Some(primary.port));
    replica_in_sync(&replica).await;
    primary.stop();
    let mut last = None;
    for _ in 0..100 {
        let r = check(monitor(&replica, REDIS_PROBE_USER), REDIS_USER_PASSWORD).await;
        if r.error.is_some() {
            last = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = last.expect("the replica noticed its primary is gone");
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
    assert!(e.message.contains("lost its primary"), "{}", e.message);
    assert!(
        e.hints[0].contains(&format!("127.0.0.1:{}", primary.port)),
        "{:?}",
        e.hints
    );
    assert_eq!(r.facts["role"], "replica");
    assert_ne!(r.facts["master_link_status"], "up");
    assert!(
        !r.facts.contains_key("replication_lag_ms"),
        "{}",
        r.to_json()
    );
}

#[tokio::test]
async fn a_user_without_role_is_access_denied_and_a_wrong_password_authentication_failed() {
    let primary = redis_with_users(None);
    let r = check(monitor(&primary, REDIS_NO_ROLE_USER), REDIS_USER_PASSWORD).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::AccessDenied, "{}", r.to_json());
    assert!(e.message.contains("NOPERM"), "{}", e.message);
    assert!(e.hints[0].contains("+role"), "{:?}", e.hints);
    // The same user passes without role = true.
    let plain = TcpMonitor::new("redis", "127.0.0.1", primary.port)
        .recipe(Recipe::redis().with_login(Login::password_env(VAR).user(REDIS_NO_ROLE_USER)));
    let r = check(plain, REDIS_USER_PASSWORD).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert!(!r.facts.contains_key("role"));
    // A wrong password stays authentication_failed.
    let r = check(monitor(&primary, REDIS_PROBE_USER), "not-the-password").await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::AuthenticationFailed, "{}", r.to_json());
    assert!(e.message.contains("WRONGPASS"), "{}", e.message);
}
