//! `control-plane`: serves the API (`serve`), and creates, lists and revokes project tokens
//! of role deploy, agent or read (`token create | list | revoke`). Every option of `serve`
//! (and `--database`, `--db`, `--log-format` everywhere) can also be set by an environment
//! variable, `CONTROL_PLANE_` and the flag's name (`CONTROL_PLANE_LISTEN`,
//! `CONTROL_PLANE_DATABASE`, ...). The database is `--database URL` (`sqlite:PATH`, a
//! path, or `postgres://...`), or `--db PATH` as before; a PostgreSQL password may be
//! given in `--database-password-file` so that it is on no command line. URLs are shown
//! with their password masked.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Arg, ArgMatches, Command, value_parser};
use control_plane::api::DEFAULT_MAX_AGENTS_PER_TOKEN;
use control_plane::database::Database;
use control_plane::{
    DEFAULT_MAX_BODY_BYTES, Options, PgStore, Role, SqliteStore, Store, duration, store, token,
};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod generate;

/// Test hook: milliseconds a deploy, rollback or destroy holds its project's lock.
const HOLD_LOCK_ENV: &str = "CONTROL_PLANE_TEST_HOLD_LOCK_MS";
/// Test hook: pages the database may grow by before SQLite answers that it is full.
const SPARE_PAGES_ENV: &str = "CONTROL_PLANE_TEST_SPARE_PAGES";
/// The log filter when `RUST_LOG` is unset: error, warn, info (default), debug or trace.
const LOG_ENV: &str = "CONTROL_PLANE_LOG";

/// What `--version` prints after the name: the version and the git revision it was built
/// from (`unknown` outside a git checkout unless the build sets `MONITORS_BUILD_REVISION`).
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("MONITORS_REVISION"),
    ")"
);

/// The command line (clap's builder: the derive macros would cost two more dependencies).
fn cli() -> Command {
    // `--db PATH` (the older spelling of `--database sqlite:PATH`) or `--database URL`,
    // with the password of a PostgreSQL URL optionally in a file.
    let db = || {
        [
            Arg::new("db")
                .long("db")
                .env("CONTROL_PLANE_DB")
                .value_name("PATH")
                .value_parser(value_parser!(PathBuf))
                .conflicts_with("database")
                .help("The SQLite database file (created if missing); the same as --database sqlite:PATH"),
            Arg::new("database")
                .long("database")
                .env("CONTROL_PLANE_DATABASE")
                .value_name("URL")
                .hide_env_values(true)
                .help("The database: sqlite:PATH (or a file path), or postgres://USER@HOST:PORT/DB?sslmode=verify-full&sslrootcert=FILE (sslmode disable, prefer, require, verify-ca or verify-full)"),
            Arg::new("database-password-file")
                .long("database-password-file")
                .env("CONTROL_PLANE_DATABASE_PASSWORD_FILE")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .requires("database")
                .help("A file holding the PostgreSQL password (its first line), used over the URL's, so that it is on no command line"),
        ]
    };
    let store_group = || {
        clap::ArgGroup::new("store")
            .args(["db", "database"])
            .required(true)
    };
    let duration_arg =
        |name: &'static str, env: &'static str, default: &'static str, help: &'static str| {
            Arg::new(name)
                .long(name)
                .env(env)
                .value_name("DURATION")
                .default_value(default)
                .value_parser(duration::parse)
                .help(help)
        };
    let serve = Command::new("serve")
        .about("Serves the API")
        .arg(
            Arg::new("listen")
                .long("listen")
                .env("CONTROL_PLANE_LISTEN")
                .value_name("ADDR")
                .required(true)
                .help("Address to listen on, such as 127.0.0.1:8080 (port 0 picks a free one)"),
        )
        .args(db())
        .group(store_group())
        .arg(
            Arg::new("max-body-bytes")
                .long("max-body-bytes")
                .env("CONTROL_PLANE_MAX_BODY_BYTES")
                .value_name("N")
                .value_parser(value_parser!(usize))
                .help("Largest request body accepted, as sent and after gzip decoding [default: 64 MiB]"),
        )
        .arg(duration_arg(
            "raw-retention",
            "CONTROL_PLANE_RAW_RETENTION",
            "48h",
            "Raw results older than this are pruned once rolled up (checked at start and every 30 s), such as 48h",
        ))
        .arg(
            Arg::new("retention")
                .long("retention")
                .env("CONTROL_PLANE_RETENTION")
                .value_name("DURATION")
                .value_parser(duration::parse)
                .conflicts_with("raw-retention")
                .help("The older name of --raw-retention"),
        )
        .arg(duration_arg(
            "hourly-retention",
            "CONTROL_PLANE_HOURLY_RETENTION",
            "90d",
            "Hourly rollups older than this are pruned once rolled up into days, such as 90d",
        ))
        .arg(duration_arg(
            "daily-retention",
            "CONTROL_PLANE_DAILY_RETENTION",
            "730d",
            "Daily rollups older than this are pruned, such as 730d",
        ))
        .arg(duration_arg(
            "agent-timeout",
            "CONTROL_PLANE_AGENT_TIMEOUT",
            "15s",
            "An agent not heard of for this long is gone and its monitors move, such as 15s",
        ))
        .arg(
            Arg::new("max-agents-per-token")
                .long("max-agents-per-token")
                .env("CONTROL_PLANE_MAX_AGENTS_PER_TOKEN")
                .value_name("N")
                .default_value("8")
                .value_parser(value_parser!(u64).range(1..))
                .help("The most agent ids one token may hold; an id is bound to the first token that uses it"),
        )
        .arg(duration_arg(
            "agent-id-ttl",
            "CONTROL_PLANE_AGENT_ID_TTL",
            "24h",
            "An agent id unused for this long is released from its token, such as 24h",
        ))
        .arg(duration_arg(
            "max-clock-skew",
            "CONTROL_PLANE_MAX_CLOCK_SKEW",
            "2m",
            "Results starting further than this in the future are refused (422), such as 2m",
        ))
        .arg(
            Arg::new("secret-env-prefix")
                .long("secret-env-prefix")
                .env("CONTROL_PLANE_SECRET_ENV_PREFIX")
                .value_name("PREFIX")
                .default_value(monitor_spec::secret::DEFAULT_SECRET_ENV_PREFIX)
                .help("Deploys may name only environment variables starting with this (the agents' --secret-env-prefix), and only relative files without `..`"),
        )
        .arg(
            Arg::new("max-connections")
                .long("max-connections")
                .env("CONTROL_PLANE_MAX_CONNECTIONS")
                .value_name("N")
                .default_value("512")
                .value_parser(value_parser!(u64).range(1..=1_000_000))
                .help("Connections open at once; the next one is answered 503 and closed (keep it below the open-files limit)"),
        )
        .arg(duration_arg(
            "header-timeout",
            "CONTROL_PLANE_HEADER_TIMEOUT",
            "10s",
            "The time a request's head may take from its first byte; then the connection is closed",
        ))
        .arg(duration_arg(
            "idle-timeout",
            "CONTROL_PLANE_IDLE_TIMEOUT",
            "60s",
            "A connection without a request in flight, or whose client reads nothing of a response, for this long is closed",
        ))
        .arg(duration_arg(
            "body-timeout",
            "CONTROL_PLANE_BODY_TIMEOUT",
            "60s",
            "The time a request's body may take from its head; then the connection is closed",
        ))
        .arg(
            Arg::new("tls-cert")
                .long("tls-cert")
                .env("CONTROL_PLANE_TLS_CERT")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .requires("tls-key")
                .help("Serves HTTPS with this PEM certificate chain (the leaf first, then its intermediates); both files are read again on SIGHUP"),
        )
        .arg(
            Arg::new("tls-key")
                .long("tls-key")
                .env("CONTROL_PLANE_TLS_KEY")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .requires("tls-cert")
                .help("The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1)"),
        )
        .arg(
            Arg::new("public-status")
                .long("public-status")
                .env("CONTROL_PLANE_PUBLIC_STATUS")
                .value_name("PROJECT")
                .action(clap::ArgAction::Append)
                .value_delimiter(',')
                .help("Shows this project's overview and badges to anyone, without a token: verdicts, uptime and timings only (repeatable; the variable takes a comma-separated list)"),
        );
    let create = Command::new("create")
        .about("Creates a token for a project (and the project if needed); prints it on stdout")
        .arg(
            Arg::new("project")
                .long("project")
                .value_name("P")
                .required(true)
                .help("The project the token reaches"),
        )
        .args(db())
        .group(store_group())
        .arg(
            Arg::new("role")
                .long("role")
                .value_name("ROLE")
                .value_parser(["deploy", "agent", "read"])
                .default_value("deploy")
                .help("What the token may reach: every route of the project (deploy), only the agent routes (agent), or only the project's status, monitors, versions and history (read)"),
        );
    let list = Command::new("list")
        .about(
            "Lists the tokens: id, project, role, created, last used and agent ids; never a secret",
        )
        .args(db())
        .group(store_group());
    let revoke =
        Command::new("revoke")
            .about("Revokes a token by the id `token list` shows; it is refused at once")
            .arg(Arg::new("id").value_name("ID").required(true).help(
                "The token's id: the first 12 hex digits of its SHA-256, as `token list` shows",
            ))
            .args(db())
            .group(store_group());
    let usage = Command::new("usage")
        .about("Shows what each table takes on disk (indexes included) and its rows; --json for one JSON array")
        .args(db())
        .group(store_group())
        .arg(
            Arg::new("json")
                .long("json")
                .action(clap::ArgAction::SetTrue)
                .help("Writes a JSON array of {table, holds, rows, bytes}"),
        );
    Command::new("control-plane")
        .version(VERSION)
        .about(env!("CARGO_PKG_DESCRIPTION"))
        .subcommand_required(true)
        .arg(
            Arg::new("log-format")
                .long("log-format")
                .env("CONTROL_PLANE_LOG_FORMAT")
                .value_name("FORMAT")
                .global(true)
                .value_parser(["text", "json"])
                .default_value("text")
                .help("How log lines are written on stderr: text, or one JSON object per line"),
        )
        .subcommand(serve)
        .subcommand(usage)
        .subcommand(
            Command::new("token")
                .about("Manages API tokens")
                .subcommand_required(true)
                .subcommand(create)
                .subcommand(list)
                .subcommand(revoke),
        )
}

/// The value of an argument that is required or has a default.
fn arg<T: Clone + Send + Sync + 'static>(m: &ArgMatches, name: &str) -> Result<T> {
    m.get_one::<T>(name)
        .cloned()
        .with_context(|| format!("--{name} is missing"))
}

fn main() -> Result<()> {
    // `generate` is parsed but left out of what it generates.
    let matches = cli().subcommand(generate::command()).get_matches();
    let (command, m) = matches.subcommand().context("a command is needed")?;
    install_logger(m.get_one::<String>("log-format").map(String::as_str) == Some("json"));
    match command {
        "serve" => serve(
            &arg::<String>(m, "listen")?,
            &database(m)?,
            Options {
                max_body_bytes: m
                    .get_one::<usize>("max-body-bytes")
                    .copied()
                    .unwrap_or(DEFAULT_MAX_BODY_BYTES),
                retention: control_plane::store::Retention {
                    raw: match m.get_one::<std::time::Duration>("retention") {
                        Some(old) => *old,
                        None => arg(m, "raw-retention")?,
                    },
                    hourly: arg(m, "hourly-retention")?,
                    daily: arg(m, "daily-retention")?,
                },
                agent_timeout: arg(m, "agent-timeout")?,
                max_agents_per_token: m
                    .get_one::<u64>("max-agents-per-token")
                    .copied()
                    .unwrap_or(DEFAULT_MAX_AGENTS_PER_TOKEN),
                agent_id_ttl: arg(m, "agent-id-ttl")?,
                max_clock_skew: arg(m, "max-clock-skew")?,
                secret_env_prefix: arg(m, "secret-env-prefix")?,
                max_connections: usize::try_from(arg::<u64>(m, "max-connections")?)
                    .context("--max-connections is too large")?,
                header_timeout: arg(m, "header-timeout")?,
                idle_timeout: arg(m, "idle-timeout")?,
                body_timeout: arg(m, "body-timeout")?,
                public_status: public_status(m)?,
                tls: m.contains_id("tls-cert"),
                ..Options::default()
            },
            tls_files(m),
        ),
        "generate" => generate::run(m, cli()),
        "usage" => show_usage(&database(m)?, m.get_flag("json")),
        _ => match m.subcommand().context("a token command is needed")? {
            ("list", m) => list_tokens(&database(m)?),
            ("revoke", m) => revoke_token(&arg::<String>(m, "id")?, &database(m)?),
            (_, m) => {
                let role = arg::<String>(m, "role")?;
                let role =
                    Role::from_name(&role).with_context(|| format!("unknown role `{role}`"))?;
                create_token(&arg::<String>(m, "project")?, &database(m)?, role)
            }
        },
    }
}

/// The projects of `--public-status`, each a valid project name, without repeats.
fn public_status(m: &ArgMatches) -> Result<Vec<String>> {
    let mut projects: Vec<String> = Vec::new();
    for project in m.get_many::<String>("public-status").into_iter().flatten() {
        let project = project.trim();
        store::check_project_name(project).map_err(|e| anyhow::anyhow!("--public-status: {e}"))?;
        if !projects.iter().any(|p| p == project) {
            projects.push(project.to_owned());
        }
    }
    Ok(projects)
}

/// `--tls-cert` and `--tls-key` (clap makes sure both or neither are given).
fn tls_files(m: &ArgMatches) -> Option<(PathBuf, PathBuf)> {
    Some((
        m.get_one::<PathBuf>("tls-cert")?.clone(),
        m.get_one::<PathBuf>("tls-key")?.clone(),
    ))
}

/// The database the flags name, with the PostgreSQL password read from its file.
struct DatabaseArgs {
    database: Database,
    password: Option<String>,
}

/// `--db PATH` or `--database URL`, and `--database-password-file`.
fn database(m: &ArgMatches) -> Result<DatabaseArgs> {
    let database = match (m.get_one::<PathBuf>("db"), m.get_one::<String>("database")) {
        (Some(path), _) => Database::Sqlite(path.clone()),
        (None, Some(url)) => Database::parse(url).context("reading --database")?,
        (None, None) => anyhow::bail!("--database URL (or --db PATH) is needed"),
    };
    let password = match m.get_one::<PathBuf>("database-password-file") {
        None => None,
        Some(file) => {
            anyhow::ensure!(
                matches!(database, Database::Postgres(_)),
                "--database-password-file is only for a postgres:// database"
            );
            let text = std::fs::read_to_string(file).with_context(|| {
                format!("reading the database password file {}", file.display())
            })?;
            let password = text.lines().next().unwrap_or("").to_owned();
            anyhow::ensure!(
                !password.is_empty(),
                "the database password file {} is empty",
                file.display()
            );
            Some(password)
        }
    };
    Ok(DatabaseArgs { database, password })
}

/// The store of a database; errors name it (a URL with its password masked).
fn open(db: &DatabaseArgs) -> Result<Arc<dyn Store>> {
    control_plane::database::open_store_with_password(
        &match &db.database {
            Database::Sqlite(path) => format!("sqlite:{}", path.to_string_lossy()),
            Database::Postgres(url) => url.clone(),
        },
        db.password.as_deref(),
    )
    .with_context(|| format!("opening the database {}", db.database.shown()))
}

fn serve(
    listen: &str,
    db: &DatabaseArgs,
    options: Options,
    tls_files: Option<(PathBuf, PathBuf)>,
) -> Result<()> {
    anyhow::ensure!(
        !options.agent_timeout.is_zero(),
        "--agent-timeout must be more than 0"
    );
    for (flag, value) in [
        ("header-timeout", options.header_timeout),
        ("idle-timeout", options.idle_timeout),
        ("body-timeout", options.body_timeout),
    ] {
        anyhow::ensure!(!value.is_zero(), "--{flag} must be more than 0");
    }
    let hold_lock = match std::env::var(HOLD_LOCK_ENV) {
        Ok(ms) => Duration::from_millis(
            ms.parse()
                .with_context(|| format!("{HOLD_LOCK_ENV} must be milliseconds, got `{ms}`"))?,
        ),
        Err(_) => Duration::ZERO,
    };
    anyhow::ensure!(
        !options.agent_id_ttl.is_zero(),
        "--agent-id-ttl must be more than 0"
    );
    // The certificate is read before the database is opened, so that a wrong file stops
    // the server before it touches anything.
    let tls = match &tls_files {
        Some((cert, key)) => {
            let (tls, served) =
                control_plane::tls::Tls::load(cert, key).map_err(anyhow::Error::msg)?;
            control_plane::tls::log_served("loaded the tls certificate", cert, &served);
            Some(tls)
        }
        None => None,
    };
    let shown = db.database.shown();
    let context = || format!("opening the database {shown}");
    // The lock test hook: in-process for SQLite (one process owns the file), inside the
    // transaction for PostgreSQL (so that it holds against other replicas too).
    let (store, hold_lock): (Arc<dyn Store>, Duration) = match &db.database {
        Database::Sqlite(path) => {
            let store = SqliteStore::open(path).with_context(context)?;
            if let Ok(pages) = std::env::var(SPARE_PAGES_ENV) {
                let pages = pages.parse().with_context(|| {
                    format!("{SPARE_PAGES_ENV} must be a number, got `{pages}`")
                })?;
                store
                    .limit_growth(pages)
                    .context("limiting the database's growth")?;
            }
            (Arc::new(store), hold_lock)
        }
        Database::Postgres(url) => {
            let store =
                PgStore::open_with_password(url, db.password.as_deref()).with_context(context)?;
            store.hold_lock(hold_lock);
            (Arc::new(store), Duration::ZERO)
        }
    };
    tracing::info!(database = %shown, "opened the database");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = control_plane::server::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let _ = writeln!(std::io::stderr(), "listening on {addr}");
        let options = Options {
            hold_lock,
            ..options
        };
        match tls {
            Some(tls) => {
                let reloads = tls.reload_on_hangup().context("listening for SIGHUP")?;
                let served = control_plane::serve_with(listener, store, options, tls).await;
                reloads.abort();
                served
            }
            None => control_plane::serve(listener, store, options).await,
        }
        .context("serving")
    })
}

fn create_token(project: &str, db: &DatabaseArgs, role: Role) -> Result<()> {
    store::check_project_name(project).map_err(anyhow::Error::msg)?;
    let store = open(db)?;
    let secret = token::generate()?;
    store
        .create_token(project, &token::TokenHash::of(&secret), role)
        .context("storing the token")?;
    writeln!(std::io::stdout(), "{secret}").context("writing the token")?;
    Ok(())
}

fn list_tokens(db: &DatabaseArgs) -> Result<()> {
    let store = open(db)?;
    let tokens = store.tokens().context("reading the tokens")?;
    let mut out = std::io::stdout().lock();
    for t in tokens {
        let agents = if t.agents.is_empty() {
            "-".to_owned()
        } else {
            t.agents.join(",")
        };
        writeln!(
            out,
            "{}  project={}  role={}  created={}  last_used={}  agents={agents}",
            t.id,
            t.project,
            t.role.as_str(),
            t.created_at,
            t.last_used_at.as_deref().unwrap_or("never"),
        )
        .context("writing the list")?;
    }
    Ok(())
}

fn show_usage(db: &DatabaseArgs, json: bool) -> Result<()> {
    let store = open(db)?;
    let tables = store.usage().context("reading the tables' sizes")?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, &tables).context("writing the usage")?;
        writeln!(out).context("writing the usage")?;
        return Ok(());
    }
    for t in &tables {
        writeln!(
            out,
            "{:<24} {:>14} rows {:>16} bytes",
            t.table, t.rows, t.bytes
        )
        .context("writing the usage")?;
    }
    let total: u64 = tables.iter().map(|t| t.bytes).sum();
    writeln!(out, "{:<24} {:>19} {:>16} bytes", "total", "", total).context("writing the usage")?;
    Ok(())
}

fn revoke_token(id: &str, db: &DatabaseArgs) -> Result<()> {
    let store = open(db)?;
    let revoked = store
        .revoke_token(id)
        .context("revoking the token")?
        .with_context(|| {
            format!(
                "no token has the id `{}`; `control-plane token list` shows the ids (12 hex digits)",
                id.escape_default()
            )
        })?;
    writeln!(
        std::io::stdout(),
        "revoked token {} of project `{}` (role {}); its agent ids are released",
        revoked.id,
        revoked.project,
        revoked.role.as_str()
    )
    .context("writing")?;
    Ok(())
}

/// Logs on stderr, as text or one JSON object per line, filtered by `RUST_LOG` (else
/// `CONTROL_PLANE_LOG`, else `info`): a level, or `target=level` directives such as
/// `info,control_plane::api=debug`.
fn install_logger(json: bool) {
    let filter = [std::env::var("RUST_LOG"), std::env::var(LOG_ENV)]
        .into_iter()
        .filter_map(Result::ok)
        .find_map(|text| text.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = if json {
        logs.json().finish().with(filter).try_init()
    } else {
        logs.finish().with(filter).try_init()
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::cli().debug_assert();
    }

    #[test]
    fn every_option_of_serve_has_its_variable() {
        let cli = super::cli();
        let serve = cli.find_subcommand("serve").unwrap();
        let mut seen = 0;
        for arg in serve.get_arguments() {
            let long = arg.get_long().unwrap();
            let want = format!("CONTROL_PLANE_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(&want)), "--{long}");
            seen += 1;
        }
        assert_eq!(seen, 21);
    }

    #[test]
    fn public_status_takes_repeated_and_comma_separated_projects() {
        let parse = |args: &[&str]| {
            let m = super::cli()
                .try_get_matches_from(
                    ["control-plane", "serve", "--listen", "x", "--db", "d"]
                        .iter()
                        .chain(args),
                )
                .unwrap();
            super::public_status(m.subcommand_matches("serve").unwrap())
        };
        assert_eq!(parse(&[]).unwrap(), Vec::<String>::new());
        let both = ["--public-status", "shop", "--public-status", "blog,shop"];
        assert_eq!(parse(&both).unwrap(), ["shop", "blog"]);
        let err = parse(&["--public-status", "a/b"]).unwrap_err().to_string();
        assert!(
            err.starts_with("--public-status: invalid project name `a/b`"),
            "{err}"
        );
    }
}
