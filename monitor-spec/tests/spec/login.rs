//! The recipe login: its JSON form (old bundles without it still load), its validation
//! and the secrets it names under the secret policy.

use monitor_spec::login::Login;
use monitor_spec::secret::{SecretPolicy, SecretRef, secret_refs};
use monitor_spec::{Recipe, TcpMonitor};
use serde_json::json;

const BASE: &str =
    r#"{"schema_version":1,"id":"db","name":"db","target":{"host":"127.0.0.1","port":5432}"#;

fn with_recipe(recipe: serde_json::Value) -> TcpMonitor {
    TcpMonitor::from_json(&format!("{BASE},\"recipe\":{recipe}}}")).unwrap()
}

/// The paths of the validation errors of `monitor`.
fn problems(monitor: &TcpMonitor) -> Vec<String> {
    match monitor.validate() {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.into_iter().map(|e| e.path).collect(),
    }
}

#[test]
fn a_recipe_without_login_reads_and_writes_as_before() {
    let monitor = with_recipe(json!({"protocol": "postgres", "user": "probe", "database": "app"}));
    assert_eq!(
        monitor.recipe,
        Some(Recipe::Postgres {
            user: "probe".into(),
            database: Some("app".into()),
            login: None,
        })
    );
    let written = serde_json::to_value(&monitor).unwrap();
    assert_eq!(
        written["recipe"],
        json!({"protocol": "postgres", "user": "probe", "database": "app"})
    );
}

#[test]
fn a_login_round_trips_and_refuses_unknown_fields() {
    let recipe = json!({
        "protocol": "postgres",
        "user": "probe",
        "login": {"password_env": "MONITORS_SECRET_PG", "query": "SELECT 2"}
    });
    let monitor = with_recipe(recipe.clone());
    assert_eq!(
        monitor.recipe,
        Some(Recipe::postgres_login(
            "probe",
            None,
            Login::password_env("MONITORS_SECRET_PG").query("SELECT 2")
        ))
    );
    assert_eq!(serde_json::to_value(&monitor).unwrap()["recipe"], recipe);
    assert!(problems(&monitor).is_empty());
    let trust = with_recipe(json!({"protocol": "postgres", "login": {}}));
    assert_eq!(
        trust.recipe,
        Some(Recipe::postgres_login("monitor", None, Login::trust()))
    );
    let wrong = format!(
        "{BASE},\"recipe\":{{\"protocol\":\"postgres\",\"login\":{{\"password\":\"hunter2\"}}}}}}"
    );
    let err = TcpMonitor::from_json(&wrong).expect_err("a password inline is refused");
    assert!(
        err.to_string().contains("unknown field `password`"),
        "{err}"
    );
}

#[test]
fn a_login_is_validated() {
    let both = with_recipe(json!({"protocol": "postgres", "login": {
        "password_env": "PG", "password_file": "pg.pass"}}));
    assert_eq!(problems(&both), ["recipe.login.password_file"]);
    let bad_env = with_recipe(json!({"protocol": "postgres", "login": {"password_env": "1PG"}}));
    assert_eq!(problems(&bad_env), ["recipe.login.password_env"]);
    let empty_query = with_recipe(json!({"protocol": "postgres", "login": {"query": " "}}));
    assert_eq!(problems(&empty_query), ["recipe.login.query"]);
    let long = "x".repeat(monitor_spec::login::MAX_LOGIN_QUERY_BYTES + 1);
    let long_query = with_recipe(json!({"protocol": "postgres", "login": {"query": long}}));
    assert_eq!(problems(&long_query), ["recipe.login.query"]);
}

#[test]
fn the_secret_policy_covers_the_login() {
    let env = with_recipe(json!({"protocol": "postgres", "login": {"password_env": "HOME"}}));
    assert_eq!(
        secret_refs(&env),
        [SecretRef::Env {
            field: "recipe.login.password_env",
            name: "HOME"
        }]
    );
    let agent = SecretPolicy::agent(None, Some("/etc/monitors/secrets".into()));
    assert!(agent.check_env("HOME").is_err());
    let file = with_recipe(json!({"protocol": "postgres", "login": {"password_file": "../x"}}));
    assert_eq!(
        secret_refs(&file),
        [SecretRef::File {
            field: "recipe.login.password_file",
            path: "../x"
        }]
    );
    assert!(agent.check_file("../x").is_err());
    assert!(agent.check_file("pg.pass").is_ok());
}

/// `recipe` (JSON) on a monitor with `tls_mode`, validated: the paths and messages of
/// its errors, each as `path: message`.
fn check_login(recipe: serde_json::Value, tls_mode: &str, expected: &[&str]) {
    let mut monitor = with_recipe(recipe.clone());
    monitor.tls.mode = serde_json::from_value(json!(tls_mode)).unwrap();
    let got: Vec<String> = match monitor.validate() {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .0
            .into_iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect(),
    };
    assert_eq!(got.len(), expected.len(), "{recipe} ({tls_mode}): {got:?}");
    for (got, want) in got.iter().zip(expected) {
        assert!(
            got.starts_with(want),
            "{recipe} ({tls_mode}): {got} is not {want}"
        );
    }
}

#[test]
fn each_recipe_takes_the_login_fields_it_reads() {
    let pw = json!("MONITORS_SECRET_X");
    check_login(
        json!({"protocol": "mysql", "login": {"user": "probe", "password_env": pw, "database": "app", "query": "SELECT @@read_only"}}),
        "none",
        &[],
    );
    check_login(
        json!({"protocol": "mysql", "login": {"password_env": pw}}),
        "none",
        &["recipe.login.user: is required"],
    );
    check_login(
        json!({"protocol": "postgres", "login": {"user": "x", "database": "y"}}),
        "none",
        &[
            "recipe.login.user: postgres names its user on the recipe",
            "recipe.login.database: postgres names its database",
        ],
    );
    check_login(
        json!({"protocol": "mongodb", "login": {"user": "probe", "database": "admin"}}),
        "none",
        &["recipe.login: `mongodb` logs in with a password"],
    );
    check_login(
        json!({"protocol": "pop3", "login": {"user": "probe", "password_env": pw, "query": "INBOX"}}),
        "starttls",
        &["recipe.login.query: `pop3` runs no query"],
    );
    check_login(
        json!({"protocol": "ftp", "login": {"user": "probe", "password_env": pw, "database": "x"}}),
        "starttls",
        &["recipe.login.database: `ftp` has no database"],
    );
    check_login(
        json!({"protocol": "ldap", "login": {"query": "dc=example,dc=org"}}),
        "none",
        &[],
    );
    check_login(
        json!({"protocol": "ldap", "login": {"user": "cn=monitor,dc=example,dc=org"}}),
        "direct",
        &["recipe.login.user: a DN without a password is an unauthenticated bind"],
    );
    check_login(
        json!({"protocol": "ldap", "login": {"password_file": "ldap.pass"}}),
        "direct",
        &["recipe.login.user: is required with a password"],
    );
    check_login(
        json!({"protocol": "memcached", "key": "has space"}),
        "none",
        &["recipe.key: `has space` is not a memcached key"],
    );
    check_login(
        json!({"protocol": "memcached", "key": "monitor:probe"}),
        "none",
        &[],
    );
}

#[test]
fn a_password_sent_as_it_is_needs_tls_or_an_explicit_allowance() {
    for protocol in ["smtp", "imap", "pop3", "ftp", "ldap"] {
        let login = json!({"user": "cn=probe", "password_env": "MONITORS_SECRET_X"});
        check_login(
            json!({"protocol": protocol, "login": login}),
            "none",
            &[&format!(
                "recipe.login: `{protocol}` sends the password as it is"
            )],
        );
        check_login(
            json!({"protocol": protocol, "login": login}),
            "starttls",
            &[],
        );
        check_login(json!({"protocol": protocol, "login": login}), "direct", &[]);
        let mut allowed = login.clone();
        allowed["allow_plaintext"] = json!(true);
        check_login(json!({"protocol": protocol, "login": allowed}), "none", &[]);
    }
    // Challenge-response logins never send the password itself.
    let login = json!({"user": "probe", "password_env": "MONITORS_SECRET_X"});
    for protocol in ["mysql", "mongodb"] {
        check_login(json!({"protocol": protocol, "login": login}), "none", &[]);
    }
}

#[test]
fn assertions_on_login_facts_need_a_recipe_that_reports_them() {
    use monitor_spec::spec::{entry_count, read_only, replication_lag, role, writable};
    let monitor = |recipe: serde_json::Value, assertion: monitor_spec::spec::Assertion| {
        let mut m = with_recipe(recipe);
        m.tls.mode = monitor_spec::spec::TlsMode::Direct;
        m.assertions.push(assertion);
        m.validate().err().map(|e| {
            e.0.into_iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
        })
    };
    let pg = json!({"protocol": "postgres", "login": {"password_env": "PG"}});
    assert_eq!(monitor(pg.clone(), writable()), None);
    assert_eq!(
        monitor(pg.clone(), replication_lag().less_than(10_000)),
        None
    );
    assert_eq!(
        monitor(json!({"protocol": "postgres"}), role().equals("primary")),
        Some(vec!["assertions[0].source: `role` is a fact of a login, and recipe `postgres` as configured does not report it; it is reported by postgres with login(...), mongodb, redis(role = true)".to_owned()])
    );
    assert_eq!(
        monitor(pg, entry_count().equals(1)).map(|e| e.len()),
        Some(1)
    );
    // MongoDB's hello tells the role; whether writes are taken needs the login.
    let mongo = json!({"protocol": "mongodb"});
    assert_eq!(monitor(mongo.clone(), role().equals("primary")), None);
    assert_eq!(monitor(mongo, writable()).map(|e| e.len()), Some(1));
    assert_eq!(
        monitor(
            json!({"protocol": "redis", "role": true}),
            read_only().equals("no")
        ),
        None
    );
    assert_eq!(
        monitor(json!({"protocol": "redis"}), read_only().equals("no")).map(|e| e.len()),
        Some(1)
    );
    let ldap = json!({"protocol": "ldap", "login": {"user": "cn=m", "password_env": "L", "query": "dc=x"}});
    assert_eq!(monitor(ldap.clone(), entry_count().greater_than(0)), None);
    assert_eq!(
        monitor(ldap, entry_count().less_than("many")),
        Some(vec![
            "assertions[0].target: must be a non-negative number of entries, got `many`".to_owned()
        ])
    );
}
