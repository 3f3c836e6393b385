//! Secrets on the machine's terms (issue 14, finding 1): a monitor names only the
//! environment variables and files the engine's policy hands out; anything else fails
//! with kind `config` before a connection is made, with one message whatever the file
//! system holds outside the secret directory.

use std::path::PathBuf;
use std::time::Duration;

use monitor_core::engine::protocol::redis::resp_command;
use monitor_core::model::secret::{AGENT_TOKEN_ENV, SecretPolicy};
use monitor_core::prelude::*;
use monitor_testing::{Script, ScriptedServer, TestPki, TlsServer};

use crate::agent::{
    Fake, Lines, TOKEN, assignment, monitor, options, phase_in, start, temp_dir, until,
};

const NAME: &str = "monitor.test";

/// An engine whose secret lookup answers every name, so only the policy stands between a
/// monitor and a variable.
fn engine(policy: SecretPolicy) -> Engine {
    Engine::new()
        .with_secret_policy(policy)
        .with_secrets(|name| Some(format!("value-of-{name}")))
}

fn redis(port: u16, var: &str) -> ValidMonitor {
    TcpMonitor::new("redis", "127.0.0.1", port)
        .recipe(Recipe::redis_auth(var))
        .validate()
        .unwrap()
}

fn error(r: &CheckResult) -> (ErrorKind, String) {
    let e = r.error.as_ref().expect("an error");
    (e.kind, e.message.clone())
}

/// Checks a Redis monitor reading `var` under `policy`: refused ones fail with kind
/// `config` naming the field, and the server never sees a connection.
async fn check_env(policy: &SecretPolicy, var: &str, refused: bool) {
    let server = ScriptedServer::start(
        Script::new()
            .expect(resp_command(&[
                b"AUTH",
                format!("value-of-{var}").as_bytes(),
            ]))
            .send("-WRONGPASS invalid username-password pair\r\n"),
    )
    .await
    .unwrap();
    let r = engine(policy.clone())
        .check(&redis(server.port(), var))
        .await;
    let (kind, message) = error(&r);
    if refused {
        assert_eq!(kind, ErrorKind::Config, "{var}: {message}");
        assert!(message.starts_with("recipe.password_env: "), "{message}");
        assert!(!r.to_json().contains("value-of"), "{}", r.to_json());
        assert_eq!(
            server.connections(),
            0,
            "{var}: the server saw a connection"
        );
    } else {
        // The value reached the server, which refused it.
        assert_eq!(kind, ErrorKind::AuthenticationFailed, "{var}: {message}");
        assert_eq!(server.connections(), 1);
    }
}

#[tokio::test]
async fn an_agent_hands_out_only_prefixed_variables_and_never_its_token() {
    let agent = SecretPolicy::agent(None, None);
    for (var, refused) in [
        (AGENT_TOKEN_ENV, true),
        ("HOME", true),
        ("PATH", true),
        ("MONITORS_SECRET_", true),
        ("monitors_secret_REDIS", true),
        ("MONITORS_SECRET_REDIS", false),
    ] {
        check_env(&agent, var, refused).await;
    }
    // A local run hands out any variable but the agent token.
    let local = SecretPolicy::permissive();
    check_env(&local, AGENT_TOKEN_ENV, true).await;
    check_env(&local, "HOME", false).await;
    // The refusal names the rule.
    let r = engine(agent).check(&redis(1, "HOME")).await;
    assert!(error(&r).1.contains("MONITORS_SECRET_"), "{}", error(&r).1);
}

/// A direct-TLS monitor trusting the CA file `ca`.
fn tls_monitor(port: u16, ca: &str) -> ValidMonitor {
    TcpMonitor::new("tls", "127.0.0.1", port)
        .tls_direct()
        .tls_with(|t| {
            t.ca = Some(PemSource::Path(ca.to_owned()));
            t.server_name = Some(NAME.to_owned());
        })
        .expect("hello over tls")
        .validate()
        .unwrap()
}

/// A secret directory holding the root of `pki` as `ca.pem`, a link to a file outside,
/// a link to nothing, and a link to a directory outside.
fn secret_dir(pki: &TestPki) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("monitors-secrets-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), pki.root_pem()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink("/etc/passwd", dir.join("escape.pem")).unwrap();
        symlink("/nonexistent/x.pem", dir.join("dangling.pem")).unwrap();
        symlink("/etc", dir.join("etc")).unwrap();
    }
    dir
}

async fn tls_server(pki: &TestPki) -> ScriptedServer {
    let leaf = pki.leaf_for(&[NAME], 90).unwrap();
    ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n"),
        TlsServer::direct(leaf.server_config(true).unwrap()),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn files_outside_the_secret_dir_are_refused_alike_before_connecting() {
    let pki = TestPki::new().unwrap();
    let dir = secret_dir(&pki);
    let server = tls_server(&pki).await;
    let agent = engine(SecretPolicy::agent(None, Some(dir.clone())));
    let mut outside = vec![
        "/etc/shadow",
        "/etc/passwd",
        "/nonexistent/x",
        "../x",
        "../../../../etc/passwd",
        "sub/../../x",
    ];
    if cfg!(unix) {
        outside.extend([
            "escape.pem",
            "dangling.pem",
            "etc/passwd",
            "etc/nonexistent",
        ]);
    }
    let mut messages = Vec::new();
    for path in &outside {
        let r = agent.check(&tls_monitor(server.port(), path)).await;
        let (kind, message) = error(&r);
        assert_eq!(kind, ErrorKind::Config, "{path}: {message}");
        assert!(message.starts_with("tls.ca: "), "{message}");
        assert!(message.contains("--secret-dir"), "{message}");
        assert!(
            r.tls.is_none() && r.address.is_none(),
            "{path}: it connected"
        );
        messages.push((path, message));
    }
    let first = &messages[0].1;
    for (path, message) in &messages {
        assert_eq!(message, first, "{path} is told apart from {}", outside[0]);
    }
    assert_eq!(server.connections(), 0, "a refused check connected");

    // The file inside the secret directory is used, by a relative or its full path.
    for path in ["ca.pem", &dir.join("ca.pem").display().to_string()] {
        let r = agent.check(&tls_monitor(server.port(), path)).await;
        assert_eq!(r.status, Status::Passed, "{path}: {:?}", r.error);
    }
    // A file missing inside the secret directory says so, and no more.
    let r = agent
        .check(&tls_monitor(server.port(), "missing.pem"))
        .await;
    let (kind, message) = error(&r);
    assert_eq!(kind, ErrorKind::Config);
    assert!(message.contains("holds no file `missing.pem`"), "{message}");

    // Without a secret directory no file is handed out; a local run reads any file.
    let none = engine(SecretPolicy::agent(None, None));
    let ca = dir.join("ca.pem").display().to_string();
    let r = none.check(&tls_monitor(server.port(), &ca)).await;
    assert_eq!(error(&r).0, ErrorKind::Config, "{:?}", r.error);
    let r = engine(SecretPolicy::permissive())
        .check(&tls_monitor(server.port(), &ca))
        .await;
    assert_eq!(r.status, Status::Passed, "{:?}", r.error);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn a_local_run_reads_a_pem_file_only_up_to_its_bound() {
    let server = ScriptedServer::start(Script::new()).await.unwrap();
    let r = engine(SecretPolicy::permissive())
        .check(&tls_monitor(server.port(), "/dev/zero"))
        .await;
    let (kind, message) = error(&r);
    assert_eq!(kind, ErrorKind::TlsConfig, "{message}");
    let bound = monitor_core::engine::MAX_PEM_FILE_BYTES.to_string();
    assert!(message.contains(&bound), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_never_hands_its_token_to_a_monitor() {
    // Issue 14, finding 1: a deployed monitor names the agent's token as a Redis password.
    let target = ScriptedServer::start(Script::new().send("+OK\r\n"))
        .await
        .unwrap();
    let stolen = monitor("steal", &target).recipe(Recipe::redis_auth(AGENT_TOKEN_ENV));
    let fake = Fake::start(assignment(
        "e1",
        &[(stolen, 1, 0, phase_in(Duration::from_millis(1500)))],
    ))
    .await;
    let dir = temp_dir("token");
    let lines = Lines::default();
    let agent = start(options(&fake.url(), &dir, lines.logger("token")));
    until(Duration::from_secs(30), "a result arrives", || {
        !fake.stored_of("steal").is_empty()
    })
    .await;
    agent.stop().await;
    let r = &fake.stored_of("steal")[0].result;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::Config, "{e:?}");
    assert!(e.message.contains("MONITORS_AGENT_TOKEN"), "{}", e.message);
    assert!(!r.to_json().contains(TOKEN));
    assert_eq!(target.connections(), 0, "the agent connected to the target");
    let _ = std::fs::remove_dir_all(&dir);
}
