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
