//! The LDAP recipe (issue 19) against the real Debian OpenLDAP (`slapd`): the anonymous
//! bind without a login, the bind and baseObject search with one over StartTLS and
//! `ldaps://`, `entry_count` as `ldapsearch` counts, the failure kinds a pager acts on, and
//! the password kept out of results, `explain` and logs.

use monitor_core::model::login::Login;
use monitor_core::{CheckResult, ErrorKind, PemSource, Recipe, Status, TcpMonitor, TlsMode};

use crate::live::slapd::{BIND_DN, BIND_PASSWORD, PEOPLE, SUFFIX, Slapd};
use crate::logins::{self, check_secret, fact};

const VAR: &str = "MONITORS_SECRET_LDAP";

fn monitor(port: u16, recipe: Recipe) -> TcpMonitor {
    TcpMonitor::new("ldap-login", "127.0.0.1", port)
        .recipe(recipe)
        .timeouts(5_000, 5_000, 15_000)
        .thresholds(10_000, 15_000)
}

/// `spec` over `mode`, trusting only the test root for `localhost`.
fn over_tls(spec: TcpMonitor, mode: TlsMode, slapd: &Slapd) -> TcpMonitor {
    let root = slapd.certs.root_pem.clone();
    spec.tls_with(|t| {
        t.mode = mode;
        t.ca = Some(PemSource::Pem(root));
        t.server_name = Some("localhost".into());
        t.expiry_warn_days = 2;
        t.expiry_fail_days = 1;
    })
}

fn login(base: Option<&str>) -> Login {
    let login = Login::password_env(VAR).user(BIND_DN);
    match base {
        Some(base) => login.query(base),
        None => login,
    }
}

async fn check(spec: TcpMonitor, password: &'static str) -> CheckResult {
    check_secret(spec, VAR, password, &[BIND_PASSWORD]).await
}

/// The kind and message of `r`'s error, asserting the last hint is the ldapsearch command
/// naming the variable.
fn failure(r: &CheckResult) -> (ErrorKind, String) {
    let (password, dn) = (format!("-w \"${VAR}\""), format!("-D \"{BIND_DN}\""));
    logins::failure(r, &["ldapsearch -H ldap", &password, &dn])
}

#[tokio::test]
async fn anonymous_bind_passes_without_login() {
    let slapd = Slapd::start();
    let r = check(monitor(slapd.live.port, Recipe::ldap()), "unused").await;
    assert_eq!(
        r.status,
        Status::Passed,
        "{}\n{}",
        r.to_json(),
        slapd.live.log()
    );
    assert_eq!(fact(&r, "result"), "success");
    assert!(!r.facts.contains_key("entry_count"), "{}", r.to_json());
}

#[tokio::test]
async fn bind_and_search_count_what_ldapsearch_counts_over_starttls_and_ldaps() {
    let slapd = Slapd::start();
    // The root DSE is searched when the login names no base.
    for (base, query) in [(PEOPLE, Some(PEOPLE)), (SUFFIX, Some(SUFFIX)), ("", None)] {
        let expected = slapd.ldapsearch_count(base);
        assert_eq!(expected, 1, "ldapsearch finds {base:?}");
        for (mode, port) in [
            (TlsMode::Starttls, slapd.live.port),
            (TlsMode::Direct, slapd.ldaps_port),
        ] {
            let spec = over_tls(
                monitor(port, Recipe::ldap().with_login(login(query))),
                mode,
                &slapd,
            );
            let r = check(spec, BIND_PASSWORD).await;
            assert_eq!(
                r.status,
                Status::Passed,
                "{base:?} {mode:?}: {}\n{}",
                r.to_json(),
                slapd.live.log()
            );
            assert_eq!(fact(&r, "entry_count"), expected.to_string());
            assert_eq!(fact(&r, "result"), "success");
        }
    }
}

#[tokio::test]
async fn wrong_password_is_authentication_failed() {
    let slapd = Slapd::start();
    let spec = over_tls(
        monitor(slapd.live.port, Recipe::ldap().with_login(login(None))),
        TlsMode::Starttls,
        &slapd,
    );
    let r = check(spec, "not-the-password").await;
    let (kind, message) = failure(&r);
    assert_eq!(kind, ErrorKind::AuthenticationFailed, "{message}");
    assert!(message.contains("invalidCredentials"), "{message}");
}

#[tokio::test]
async fn a_missing_or_hidden_entry_is_access_denied() {
    let slapd = Slapd::start();
    for base in [format!("ou=nobody,{SUFFIX}"), format!("uid=carol,{PEOPLE}")] {
        let base: &'static str = Box::leak(base.into_boxed_str());
        let spec = over_tls(
            monitor(
                slapd.live.port,
                Recipe::ldap().with_login(login(Some(base))),
            ),
            TlsMode::Starttls,
            &slapd,
        );
        let r = check(spec, BIND_PASSWORD).await;
        let (kind, message) = failure(&r);
        assert_eq!(kind, ErrorKind::AccessDenied, "{base}: {message}");
        assert!(message.contains("noSuchObject"), "{message}");
    }
    // Anonymous may not see the people.
    let anonymous = Login::default().query(PEOPLE).allow_plaintext();
    let r = check(
        monitor(slapd.live.port, Recipe::ldap().with_login(anonymous)),
        BIND_PASSWORD,
    )
    .await;
    let e = r
        .error
        .as_ref()
        .unwrap_or_else(|| panic!("no error in {}", r.to_json()));
    assert_eq!(e.kind, ErrorKind::AccessDenied, "{}", r.to_json());
}
