//! The command-line conventions of issue 15 (item 3) on the real binary: `--version`
//! names the binary and the git revision it was built from, and every option of `serve`
//! can be set by an environment variable `CONTROL_PLANE_<FLAG>`, which `--help` shows and
//! a flag overrides.

use super::*;

/// Every option of `serve` and its variable.
const SERVE_ENV: [(&str, &str); 18] = [
    ("--listen", "CONTROL_PLANE_LISTEN"),
    ("--db", "CONTROL_PLANE_DB"),
    ("--database", "CONTROL_PLANE_DATABASE"),
    (
        "--database-password-file",
        "CONTROL_PLANE_DATABASE_PASSWORD_FILE",
    ),
    ("--max-body-bytes", "CONTROL_PLANE_MAX_BODY_BYTES"),
    ("--retention", "CONTROL_PLANE_RETENTION"),
    ("--agent-timeout", "CONTROL_PLANE_AGENT_TIMEOUT"),
    (
        "--max-agents-per-token",
        "CONTROL_PLANE_MAX_AGENTS_PER_TOKEN",
    ),
    ("--agent-id-ttl", "CONTROL_PLANE_AGENT_ID_TTL"),
    ("--max-clock-skew", "CONTROL_PLANE_MAX_CLOCK_SKEW"),
    ("--secret-env-prefix", "CONTROL_PLANE_SECRET_ENV_PREFIX"),
    ("--max-connections", "CONTROL_PLANE_MAX_CONNECTIONS"),
    ("--header-timeout", "CONTROL_PLANE_HEADER_TIMEOUT"),
    ("--idle-timeout", "CONTROL_PLANE_IDLE_TIMEOUT"),
    ("--body-timeout", "CONTROL_PLANE_BODY_TIMEOUT"),
    ("--tls-cert", "CONTROL_PLANE_TLS_CERT"),
    ("--tls-key", "CONTROL_PLANE_TLS_KEY"),
    ("--public-status", "CONTROL_PLANE_PUBLIC_STATUS"),
];

#[test]
fn version_names_the_binary_and_its_revision() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let revision = text
        .strip_prefix(concat!(
            "control-plane ",
            env!("CARGO_PKG_VERSION"),
            " (git "
        ))
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        revision == "unknown"
            || revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
        "{text:?}"
    );
}

#[test]
fn serve_help_names_the_variable_of_every_option() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in SERVE_ENV {
        let at = help
            .find(&format!("  {flag} <"))
            .unwrap_or_else(|| panic!("{flag}: {help}"));
        let next = help[at + 2..]
            .find("\n  -")
            .map_or(help.len(), |n| at + 2 + n);
        // `--database` hides its variable's value: it may hold a password.
        assert!(
            help[at..next].contains(&format!("[env: {env}=]"))
                || help[at..next].contains(&format!("[env: {env}]")),
            "{flag}: {}",
            &help[at..next]
        );
    }
}

/// Reads what the server sends on `stream` until it closes it (at most 5 s).
fn read_until_closed(stream: &mut TcpStream) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let _ = stream.read_to_end(&mut seen);
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn serve_takes_its_options_from_the_environment_and_flags_win() {
    let dir = TempDir::new("env");
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env("CONTROL_PLANE_LISTEN", "127.0.0.1:0")
        .env("CONTROL_PLANE_DB", dir.sqlite())
        .env("CONTROL_PLANE_MAX_CONNECTIONS", "1");
    let server = Server::spawn(cmd);
    assert!(
        Path::new(&dir.sqlite()).exists(),
        "the database named by CONTROL_PLANE_DB"
    );
    // One connection held: the next is over CONTROL_PLANE_MAX_CONNECTIONS.
    let held = TcpStream::connect(server.addr()).unwrap();
    let mut over = TcpStream::connect(server.addr()).unwrap();
    let answer = read_until_closed(&mut over);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    drop(held);
    drop(server);

    // The flag overrides its variable.
    let dir = TempDir::new("env-flag");
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--max-connections", "2"])
        .env("CONTROL_PLANE_LISTEN", "127.0.0.1:0")
        .env("CONTROL_PLANE_DB", dir.sqlite())
        .env("CONTROL_PLANE_MAX_CONNECTIONS", "1");
    let server = Server::spawn(cmd);
    let held = TcpStream::connect(server.addr()).unwrap();
    let mut second = TcpStream::connect(server.addr()).unwrap();
    write!(
        second,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let answer = read_until_closed(&mut second);
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:?}");
    drop(held);

    // A bad value in a variable is refused as the flag's would be.
    let out = Command::new(BIN)
        .arg("serve")
        .env("CONTROL_PLANE_LISTEN", "127.0.0.1:0")
        .env("CONTROL_PLANE_DB", dir.sqlite())
        .env("CONTROL_PLANE_RETENTION", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--retention"), "{err}");
}

#[test]
fn the_database_password_can_be_kept_in_a_file() {
    let dir = TempDir::new("password-file");
    let file = dir.0.join("password");
    let list = |url: &str, password: &str| {
        std::fs::write(&file, format!("{password}\n")).unwrap();
        let out = Command::new(BIN)
            .args([
                "token",
                "list",
                "--database",
                url,
                "--database-password-file",
            ])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let Some(database) = &dir.1 else {
        // A SQLite file has no password.
        let (ok, err) = list(&dir.db(), "secret");
        assert!(!ok);
        assert!(err.contains("only for a postgres"), "{err}");
        return;
    };
    let server = postgres::shared();
    let url = server.url_without_password("127.0.0.1", database, "sslmode=require");
    let (ok, err) = list(&url, postgres::PASSWORD);
    assert!(ok, "{err}");
    let with_password = server.url(database).replace(postgres::PASSWORD, "hunter2");
    let (ok, err) = list(&with_password, "also-wrong");
    assert!(!ok);
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(
        err.contains("postgres:***@"),
        "the url, its password masked: {err}"
    );
    assert!(
        !err.contains("hunter2") && !err.contains("also-wrong"),
        "{err}"
    );
}
