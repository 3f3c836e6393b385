//! `control-plane`: serves the API (`serve`) and creates project tokens of role deploy or
//! agent (`token create`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use control_plane::{
    DEFAULT_MAX_BODY_BYTES, Options, Role, SqliteStore, Store, duration, store, token,
};
use tracing_subscriber::EnvFilter;

/// Test hook: milliseconds a deploy, rollback or destroy holds its project's lock.
const HOLD_LOCK_ENV: &str = "CONTROL_PLANE_TEST_HOLD_LOCK_MS";
/// The log filter when `RUST_LOG` is unset: error, warn, info (default), debug or trace.
const LOG_ENV: &str = "CONTROL_PLANE_LOG";

/// The control plane deploys land in.
#[derive(Debug, Parser)]
#[command(name = "control-plane", version, about)]
struct Cli {
    /// How log lines are written on stderr: text or json.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serves the API.
    Serve {
        /// Address to listen on, such as 127.0.0.1:8080 (port 0 picks a free one).
        #[arg(long)]
        listen: String,
        /// The SQLite database file (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// Largest request body accepted, as sent and after gzip decoding.
        #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
        max_body_bytes: usize,
        /// Results older than this are pruned (checked at start and every minute), such as
        /// 7d or 12h.
        #[arg(long, default_value = "7d", value_parser = duration::parse)]
        retention: Duration,
        /// An agent not heard of for this long is gone and its monitors move, such as 15s.
        #[arg(long, default_value = "15s", value_parser = duration::parse)]
        agent_timeout: Duration,
    },
    /// Manages API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Creates a token for a project (and the project if needed); prints it on stdout.
    Create {
        /// The project the token reaches.
        #[arg(long)]
        project: String,
        /// The SQLite database file (created if missing).
        #[arg(long)]
        db: PathBuf,
        /// What the token may reach: every route of the project (deploy), or only the
        /// agent routes (agent).
        #[arg(long, value_enum, default_value_t = RoleArg::Deploy)]
        role: RoleArg,
    },
}

/// The `--role` of a token.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    /// Deploys, reads and the agent routes.
    Deploy,
    /// Only `/v1/agent/*`.
    Agent,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Deploy => Role::Deploy,
            RoleArg::Agent => Role::Agent,
        }
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    install_logger(cli.log_format);
    match cli.command {
        Command::Serve {
            listen,
            db,
            max_body_bytes,
            retention,
            agent_timeout,
        } => serve(
            &listen,
            &db,
            Options {
                max_body_bytes,
                retention,
                agent_timeout,
                ..Options::default()
            },
        ),
        Command::Token {
            command: TokenCommand::Create { project, db, role },
        } => create_token(&project, &db, role.into()),
    }
}

fn serve(listen: &str, db: &std::path::Path, options: Options) -> Result<()> {
    anyhow::ensure!(
        !options.agent_timeout.is_zero(),
        "--agent-timeout must be more than 0"
    );
    let hold_lock = match std::env::var(HOLD_LOCK_ENV) {
        Ok(ms) => Duration::from_millis(
            ms.parse()
                .with_context(|| format!("{HOLD_LOCK_ENV} must be milliseconds, got `{ms}`"))?,
        ),
        Err(_) => Duration::ZERO,
    };
    let store =
        SqliteStore::open(db).with_context(|| format!("opening the database {}", db.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let _ = writeln!(std::io::stderr(), "listening on {addr}");
        let options = Options {
            hold_lock,
            ..options
        };
        control_plane::serve(listener, Arc::new(store), options)
            .await
            .context("serving")
    })
}

fn create_token(project: &str, db: &std::path::Path, role: Role) -> Result<()> {
    store::check_project_name(project).map_err(anyhow::Error::msg)?;
    let store =
        SqliteStore::open(db).with_context(|| format!("opening the database {}", db.display()))?;
    let secret = token::generate()?;
    store
        .create_token(project, &token::TokenHash::of(&secret), role)
        .context("storing the token")?;
    writeln!(std::io::stdout(), "{secret}").context("writing the token")?;
    Ok(())
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per event.
    Json,
}

/// Logs on stderr in `format`, filtered by `RUST_LOG` (else `CONTROL_PLANE_LOG`, else
/// `info`), such as `debug` or `control_plane=debug,tower=warn`.
fn install_logger(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_from_env(LOG_ENV))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs.json().try_init(),
    };
}
