//! The subcommands of a monitors binary: how they load, filter, run and report, each
//! returning its outcome or a [`CliError`] that `main` maps to the exit code once.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use super::error::{CliError, EXIT_OK};
use super::filter::Filter;
use super::limits::{LocalLimits, MAX_BUNDLE_FILE_BYTES, MAX_INPUT_FILE_BYTES};
use crate::registry::{self, Declared};
use crate::report::{self, Reporter, Style};
use crate::{Bundle, CheckResult};
use monitor_spec::BundleReadError;
use monitor_spec::spec::{TcpMonitor, TlsMode};
use monitor_spec::validate::ValidMonitor;

/// What `--version` prints after the binary's name: the version and the git revision
/// it was built from (`unknown` when built outside a git checkout without
/// `MONITORS_BUILD_REVISION`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("MONITORS_REVISION"),
    ")"
);

/// The git revision this crate was built from, or `unknown`.
pub const REVISION: &str = env!("MONITORS_REVISION");

/// The environment variables of `watch`'s options, by argument id (its filter's and
/// limits' flags are shared with `run`, `list` and `export`, which take no variable).
/// None starts with the agent's secret prefix (`MONITORS_SECRET_`).
#[cfg(feature = "watch")]
const WATCH_ENV: [(&str, &str); 11] = [
    ("grep", "MONITORS_GREP"),
    ("tags", "MONITORS_TAG"),
    ("location", "MONITORS_LOCATION"),
    ("allow_empty", "MONITORS_ALLOW_EMPTY"),
    ("bundle", "MONITORS_BUNDLE"),
    ("secret_env_prefix", "MONITORS_SECRETS_ENV_PREFIX"),
    ("secret_dir", "MONITORS_SECRETS_DIR"),
    ("memory_budget", "MONITORS_MEMORY_BUDGET"),
    ("metrics_listen", "MONITORS_METRICS_LISTEN"),
    ("concurrency", "MONITORS_CONCURRENCY"),
    ("json", "MONITORS_JSON"),
];

/// The command line of a monitors binary named `name` (as `--version` and the usage
/// show it), with the environment variables of `watch`'s options (`agent`'s are on its
/// arguments).
pub fn command_line(name: &'static str) -> clap::Command {
    use clap::CommandFactory;
    let command = Cli::command()
        .name(name)
        .mut_arg("log_format", |a| a.env("MONITORS_LOG_FORMAT"));
    #[cfg(feature = "watch")]
    let command = command.mut_subcommand("watch", |mut watch| {
        for (id, env) in WATCH_ENV {
            watch = watch.mut_arg(id, |arg| {
                let flag = matches!(arg.get_action(), clap::ArgAction::SetTrue);
                let arg = arg.env(env);
                if flag {
                    arg.value_parser(clap::builder::FalseyValueParser::new())
                } else {
                    arg
                }
            });
        }
        watch
    });
    command
}

/// The name the binary was run as: the file stem of `argv[0]`, else `monitors`.
fn binary_name() -> &'static str {
    let stem = std::env::args_os()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_stem()
                .and_then(|s| s.to_str())
                .map(str::to_owned)
        })
        .filter(|s| !s.is_empty());
    match stem {
        // Once per process: clap's names are static.
        Some(stem) => Box::leak(stem.into_boxed_str()),
        None => "monitors",
    }
}

/// Monitoring as code for TCP services: the monitors compiled into this binary.
#[derive(Debug, Parser)]
#[command(version = VERSION, about, long_about = None)]
pub struct Cli {
    /// How log lines are written to standard error: text or json (filter with RUST_LOG)
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human line per event.
    Text,
    /// One JSON object per event.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the monitors: id, name, target, TLS mode, frequency, tags; then the maintenance
    /// windows
    List {
        #[command(flatten)]
        filter: Filter,
        /// Print JSON lines instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Validate every monitor; problems name the file and line that declared them
    Validate,
    /// Check each monitor once and report
    Run(RunArgs),
    /// Check each monitor on its frequency until Ctrl-C or SIGTERM
    #[cfg(feature = "watch")]
    Watch(WatchArgs),
    /// Run the monitors a control plane assigns to this agent and upload their results,
    /// until Ctrl-C or SIGTERM (token from MONITORS_AGENT_TOKEN or --token-file)
    #[cfg(feature = "agent")]
    Agent(crate::runner::agent::AgentArgs),
    /// Write the JSON bundle of the monitors (what deploy sends)
    Export {
        #[command(flatten)]
        filter: Filter,
        /// Write to this file instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Render results already made (a JSON array of results, as the json reporter writes
    /// it, or one result per line) through the reporters, with run's exit code
    Report(ReportArgs),
    /// Show one monitor's resolved spec, defaults applied, as JSON
    Explain {
        /// The monitor's id
        id: String,
    },
    /// Start demo services on loopback and check monitors against them
    #[cfg(feature = "demo")]
    Demo {
        /// Reporter, optionally with a file (repeatable; default human)
        #[arg(long = "reporter", short, value_name = "NAME[=FILE]")]
        reporters: Vec<String>,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    filter: Filter,
    /// Run the monitors of an exported bundle instead of the compiled-in ones (a file of
    /// at most 2 GiB; 64 MiB from a pipe or device)
    #[arg(long)]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    limits: LocalLimits,
    /// Reporter, optionally with a file: human, json, junit, github, prometheus (repeatable;
    /// default human on a terminal, json otherwise)
    #[arg(long = "reporter", short, value_name = "NAME[=FILE]")]
    reporters: Vec<String>,
    /// Write the reporter's output (the last one given without a file) to this file
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// How many checks run at once
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Exit 1 when a monitor is degraded, not only when one failed
    #[arg(long)]
    fail_on_degraded: bool,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The results: a file of at most 64 MiB, or `-` for standard input
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Reporter, optionally with a file: human, json, junit, github, prometheus (repeatable;
    /// default human on a terminal, json otherwise)
    #[arg(long = "reporter", short, value_name = "NAME[=FILE]")]
    reporters: Vec<String>,
    /// Write the reporter's output (the last one given without a file) to this file
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Exit 1 when a result is degraded, not only when one failed
    #[arg(long)]
    fail_on_degraded: bool,
}

#[cfg(feature = "watch")]
#[derive(Debug, Args)]
struct WatchArgs {
    #[command(flatten)]
    filter: Filter,
    /// Watch the monitors of an exported bundle instead of the compiled-in ones (a file of
    /// at most 2 GiB; 64 MiB from a pipe or device)
    #[arg(long)]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    limits: LocalLimits,
    /// Serve Prometheus metrics at http://ADDR/metrics: at most 64 connections (the next
    /// is answered 503), a request head within 10 s of its first byte, a body within 60 s,
    /// and a connection idle or not reading its answer for 60 s is closed
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// How many checks run at once; checks that may run over 30 s (timeouts.total_ms
    /// times 1 + retry.max_retries) hold at most half of them
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Print each result as a JSON line instead of a human line
    #[arg(long)]
    json: bool,
}

/// Runs the command line of a monitors binary: `fn main() -> ExitCode { monitor_core::cli::main() }`.
/// Logs go to standard error through `tracing`, filtered by `RUST_LOG` (default: warnings,
/// and what the runners report at info).
pub fn main() -> ExitCode {
    use clap::FromArgMatches;
    let name = binary_name();
    if let Some(done) = super::generate::from_args(name, || command_line(name)) {
        return ExitCode::from(done.unwrap_or_else(|e| exit(&e)));
    }
    #[cfg(any(feature = "watch", feature = "agent"))]
    crate::runner::process_metrics::set_binary(name);
    let cli = Cli::from_arg_matches(&command_line(name).get_matches()).unwrap_or_else(|e| e.exit());
    init_logs(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime);
    let code = match runtime {
        Ok(rt) => rt.block_on(execute(cli)),
        Err(e) => exit(&e),
    };
    ExitCode::from(code)
}

/// Sends `tracing` events to standard error as text or JSON lines, filtered by
/// `RUST_LOG`; the engine's warnings (an unreadable system CA file) show by default.
pub fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,monitor_core::runner=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // A second call (tests that run main twice) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Runs a parsed command line and returns its exit code.
pub async fn execute(cli: Cli) -> u8 {
    match command(cli.command).await {
        Ok(code) => code,
        Err(e) => exit(&e),
    }
}

/// The one place an error becomes an exit code.
fn exit(e: &CliError) -> u8 {
    eprintln!("error: {e}");
    e.exit_code()
}

async fn command(command: Command) -> Result<u8, CliError> {
    match command {
        Command::List { filter, json } => list(registered(&filter)?, json),
        Command::Validate => super::windows::validate(),
        Command::Export { filter, output } => export(registered(&filter)?, output.as_deref()),
        Command::Explain { id } => explain(&id),
        Command::Report(args) => report_results(&args),
        #[cfg(feature = "demo")]
        Command::Demo { reporters } => demo(&reporters).await,
        Command::Run(args) => run(args).await,
        #[cfg(feature = "watch")]
        Command::Watch(args) => {
            // Each monitor shelved as it is read, when it is worth it.
            let mut monitors = crate::runner::watch::Watchlist::new();
            load_each(args.bundle.as_deref(), &args.filter, |m| monitors.add(m))?;
            let options = crate::runner::watch::Options {
                concurrency: args.concurrency,
                metrics_listen: args.metrics_listen,
                json: args.json,
                secrets: args.limits.policy().map_err(CliError::Usage)?,
                memory_budget: args.limits.memory_budget(),
            };
            crate::runner::watch::watch(monitors, options).await?;
            Ok(EXIT_OK)
        }
        #[cfg(feature = "agent")]
        Command::Agent(args) => {
            crate::runner::agent::command(args).await?;
            Ok(EXIT_OK)
        }
    }
}

/// The registered monitors the filter selects.
fn registered(filter: &Filter) -> Result<Vec<TcpMonitor>, CliError> {
    let declared = registry::monitors()?;
    super::filter::apply_filter(declared.into_iter().map(|d| d.monitor), filter)
        .map_err(CliError::Usage)
}

/// The monitors to run: a bundle's or the registry's, validated once and filtered.
fn load(bundle: Option<&Path>, filter: &Filter) -> Result<Vec<ValidMonitor>, CliError> {
    let mut kept = Vec::new();
    load_each(bundle, filter, |m| kept.push(m))?;
    kept.shrink_to_fit();
    Ok(kept)
}

/// Hands each monitor the filter selects, of a bundle (read as a stream, each validated as
/// it is read) or of the registry, to `keep`, in order; an error when the filter selects
/// none (unless allowed). What `keep` got is to be dropped on an error.
fn load_each(
    bundle: Option<&Path>,
    filter: &Filter,
    mut keep: impl FnMut(ValidMonitor),
) -> Result<(), CliError> {
    let selected = filter.selector().map_err(CliError::Usage)?;
    let (mut total, mut matched) = (0, 0);
    let mut each = |monitor: ValidMonitor| {
        total += 1;
        if selected(monitor.spec()) {
            matched += 1;
            keep(monitor);
        }
    };
    match bundle {
        Some(path) => read_bundle(path, &mut each)?,
        None => registry::validate_all()?
            .into_iter()
            .for_each(|(_, m)| each(m)),
    }
    filter
        .check_matched(matched, total)
        .map_err(CliError::Usage)
}

/// Reads the bundle at `path` as a stream, never holding its whole text, and hands each
/// valid monitor to `each` as it is read; within the bounds [`read_bounded`] keeps, with
/// the same error for a file over them.
fn read_bundle(path: &Path, each: impl FnMut(ValidMonitor)) -> Result<(), CliError> {
    const WHAT: &str = "read the bundle";
    let (file, size, limit) = open_bounded(path, WHAT)?;
    let too_large = || CliError::TooLarge {
        path: path.to_owned(),
        limit,
    };
    if size.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut input = file.take(limit + 1);
    let read = Bundle::read_valid_each(&mut input, each);
    if read.is_err() && size.is_none() {
        // Whether a pipe or a device is over its bound, however early its text went wrong.
        let _ = std::io::copy(&mut input, &mut std::io::sink());
    }
    if input.limit() == 0 {
        return Err(too_large());
    }
    read.map_err(|e| match e {
        BundleReadError::Bundle(source) => CliError::Bundle {
            path: path.to_owned(),
            source,
        },
        BundleReadError::Io(source) => CliError::File {
            action: WHAT,
            path: path.to_owned(),
            source,
        },
    })
}

fn list(monitors: Vec<TcpMonitor>, json: bool) -> Result<u8, CliError> {
    let rows: Vec<[String; 6]> = monitors
        .iter()
        .map(|m| {
            let tls = match (m.tls.mode, m.tls.starttls) {
                (TlsMode::None, _) => "-".to_owned(),
                (TlsMode::Direct, _) => "tls".to_owned(),
                (TlsMode::Starttls, Some(p)) => format!("starttls:{}", p.openssl_name()),
                (TlsMode::Starttls, None) => "starttls".to_owned(),
            };
            [
                m.id.clone(),
                m.name.clone(),
                m.target.to_string(),
                tls,
                m.frequency.to_string(),
                m.tags.join(","),
            ]
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let header = ["ID", "NAME", "TARGET", "TLS", "EVERY", "TAGS"].map(str::to_owned);
    let widths: Vec<usize> = (0..6)
        .map(|c| {
            rows.iter()
                .chain(std::iter::once(&header))
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let table = std::iter::once(&header).chain(rows.iter());
    for row in table.skip(usize::from(json)) {
        let line = if json {
            serde_json::json!({
                "id": row[0], "name": row[1], "target": row[2], "tls": row[3],
                "frequency": row[4], "tags": row[5].split(',').filter(|t| !t.is_empty()).collect::<Vec<_>>(),
            })
            .to_string()
        } else {
            row.iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        writeln!(out, "{line}").map_err(CliError::Stdout)?;
    }
    if !json {
        for line in super::windows::listed(&monitors)? {
            writeln!(out, "{line}").map_err(CliError::Stdout)?;
        }
    }
    Ok(EXIT_OK)
}

fn export(monitors: Vec<TcpMonitor>, output: Option<&Path>) -> Result<u8, CliError> {
    for m in &monitors {
        m.validate()?;
    }
    let maintenance = super::windows::for_bundle(&monitors)?;
    let mut bundle = Bundle::new(monitors);
    bundle.maintenance = maintenance;
    write_out(output, &bundle.to_json())
}

fn explain(id: &str) -> Result<u8, CliError> {
    let declared = registry::monitors()?;
    match declared.iter().find(|d| d.monitor.id == id) {
        Some(Declared {
            monitor, location, ..
        }) => {
            println!("// declared at {location}");
            println!("{}", monitor.to_json());
            Ok(EXIT_OK)
        }
        None => Err(CliError::UnknownId {
            id: id.to_owned(),
            known: declared.iter().map(|d| d.monitor.id.clone()).collect(),
        }),
    }
}

fn write_out(path: Option<&Path>, text: &str) -> Result<u8, CliError> {
    match path {
        Some(p) => std::fs::write(p, text).map_err(|source| CliError::File {
            action: "write",
            path: p.to_owned(),
            source,
        })?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(CliError::Stdout)?,
    }
    Ok(EXIT_OK)
}

/// Parses `NAME[=FILE]` reporter arguments, giving `--output` to the last one without a
/// file (or to the default reporter).
fn reporters(
    args: &[String],
    output: Option<&Path>,
) -> Result<Vec<(Reporter, Option<PathBuf>)>, CliError> {
    use clap::ValueEnum;
    let mut parsed = Vec::new();
    for arg in args {
        let (name, file) = match arg.split_once('=') {
            Some((n, f)) => (n, Some(PathBuf::from(f))),
            None => (arg.as_str(), None),
        };
        let reporter = Reporter::from_str(name, true).map_err(|_| {
            CliError::Usage(format!(
                "unknown reporter `{name}`; use human, json, junit, github or prometheus"
            ))
        })?;
        parsed.push((reporter, file));
    }
    if parsed.is_empty() {
        let default = if std::io::stdout().is_terminal() || output.is_some() {
            Reporter::Human
        } else {
            Reporter::Json
        };
        parsed.push((default, None));
    }
    if let Some(out) = output {
        match parsed.iter_mut().rev().find(|(_, f)| f.is_none()) {
            Some(slot) => slot.1 = Some(out.to_owned()),
            None => {
                return Err(CliError::Usage(
                    "--output given but every reporter already has a file".to_owned(),
                ));
            }
        }
    }
    Ok(parsed)
}

#[cfg(feature = "demo")]
async fn demo(args: &[String]) -> Result<u8, CliError> {
    let args = if args.is_empty() {
        vec!["human".to_owned()]
    } else {
        args.to_vec()
    };
    let chosen = reporters(&args, None)?;
    let services = crate::runner::demo::start().await.map_err(CliError::Demo)?;
    eprintln!(
        "demo services started on 127.0.0.1; checking {} monitors",
        services.monitors.len()
    );
    let results = crate::runner::demo::run(&services)
        .await
        .map_err(CliError::Demo)?;
    // The failures are the demo's point: it succeeds when it could show them.
    report_all(&chosen, &results)
}

/// Renders every chosen reporter; every one is tried, the first that cannot be written is
/// the error.
fn report_all(
    chosen: &[(Reporter, Option<PathBuf>)],
    results: &[CheckResult],
) -> Result<u8, CliError> {
    let mut first_error = None;
    if chosen.iter().any(|(r, _)| *r == Reporter::Github) {
        // On stderr, where the Actions runner reads workflow commands as it does on
        // stdout, so the Markdown (or another reporter's JSON) on stdout stays whole.
        let declared: std::collections::HashMap<String, (String, u32)> = registry::monitors()
            .map(|all| {
                all.into_iter()
                    .map(|d| {
                        let place = (d.location.file.to_owned(), d.location.line);
                        (d.monitor.id, place)
                    })
                    .collect()
            })
            .unwrap_or_default();
        eprint!(
            "{}",
            report::github_annotations(results, &|id| declared.get(id).cloned())
        );
    }
    for (reporter, file) in chosen {
        let color = file.is_none()
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let text = report::render(*reporter, results, Style { color });
        if let Err(e) = write_out(file.as_deref(), &text) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(EXIT_OK), Err)
}

async fn run(args: RunArgs) -> Result<u8, CliError> {
    let chosen = reporters(&args.reporters, args.output.as_deref())?;
    let monitors = load(args.bundle.as_deref(), &args.filter)?;
    let engine = crate::Engine::new()
        .with_secret_policy(args.limits.policy().map_err(CliError::Usage)?)
        .with_memory_budget(args.limits.memory_budget());
    let results = crate::runner::run::run_with_progress(&engine, &monitors, args.concurrency).await;
    report_all(&chosen, &results)?;
    Ok(report::exit_code(&results, args.fail_on_degraded))
}

/// `report`: reads results and renders them as `run` would have.
fn report_results(args: &ReportArgs) -> Result<u8, CliError> {
    let chosen = reporters(&args.reporters, args.output.as_deref())?;
    let text = if args.input.as_os_str() == "-" {
        read_bounded(Path::new("/dev/stdin"), "read the results")?
    } else {
        read_bounded(&args.input, "read the results")?
    };
    let results = parse_results(&text).map_err(|message| CliError::Results {
        path: args.input.clone(),
        message,
    })?;
    report_all(&chosen, &results)?;
    Ok(report::exit_code(&results, args.fail_on_degraded))
}

/// Results as a JSON array (the json reporter's form) or as one JSON object per line (the
/// form of `watch --json`); an error names the line (and column) of the first bad one.
fn parse_results(text: &str) -> Result<Vec<CheckResult>, String> {
    let text = monitor_spec::json::strip_bom_str(text).trim_start();
    if text.starts_with('[') {
        return serde_json::from_str(text)
            .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()));
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Reads a UTF-8 file the command line was given, refusing one over its bound after
/// reading no more than that (so `/dev/zero` or a huge file ends with an error instead of
/// exhausting memory): [`MAX_BUNDLE_FILE_BYTES`] for a regular file whose size is within
/// it (a bundle of a million monitors is about 1.2 GB), [`MAX_INPUT_FILE_BYTES`] for
/// anything else (a device, a pipe).
pub(crate) fn read_bounded(path: &Path, what: &'static str) -> Result<String, CliError> {
    let cannot = |source| CliError::File {
        action: what,
        path: path.to_owned(),
        source,
    };
    let (file, size, limit) = open_bounded(path, what)?;
    let mut bytes = Vec::with_capacity(size.map_or(0, |n| n.min(limit) as usize));
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(CliError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    String::from_utf8(bytes)
        .map_err(|e| cannot(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Opens a file the command line was given: the file, its size when it is a regular file,
/// and the bound of what may be read of it ([`read_bounded`]).
fn open_bounded(
    path: &Path,
    what: &'static str,
) -> Result<(std::fs::File, Option<u64>, u64), CliError> {
    let file = std::fs::File::open(path).map_err(|source| CliError::File {
        action: what,
        path: path.to_owned(),
        source,
    })?;
    let size = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let limit = match size {
        Some(n) if n <= MAX_BUNDLE_FILE_BYTES => MAX_BUNDLE_FILE_BYTES,
        _ => MAX_INPUT_FILE_BYTES,
    };
    Ok((file, size, limit))
}

#[cfg(all(test, feature = "watch"))]
mod tests {
    use super::*;
    use crate::runner::watch::Watchlist;

    /// A file of `text` under the temporary directory, removed when dropped.
    struct Temp(PathBuf);

    impl Temp {
        fn new(name: &str, text: &str) -> Temp {
            let path = std::env::temp_dir().join(format!("{}-{name}", std::process::id()));
            std::fs::write(&path, text).expect("a temporary file");
            Temp(path)
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn watch_loads_a_bundle_filtered_then_shelved() {
        let mut off = TcpMonitor::new("off", "127.0.0.1", 3).tag("prod");
        off.activated = false;
        let bundle = Bundle::new(vec![
            TcpMonitor::new("plain", "127.0.0.1", 6379).tag("prod"),
            TcpMonitor::new("tls", "127.0.0.1", 443)
                .tag("prod")
                .tls_direct(),
            TcpMonitor::new("other", "127.0.0.1", 2),
            off,
        ]);
        let file = Temp::new("watch-load.json", &bundle.to_json());
        let prod = Filter {
            tags: vec!["prod".to_owned()],
            ..Filter::default()
        };
        let mut list = Watchlist::new();
        load_each(Some(&file.0), &prod, |m| list.add(m)).expect("loaded");
        // `other` is not selected, `off` is deactivated: `plain` shelved, `tls` kept.
        assert_eq!((list.len(), list.shelved()), (2, 1));

        let none = Filter {
            tags: vec!["nothing".to_owned()],
            ..Filter::default()
        };
        let mut list = Watchlist::new();
        let err = load_each(Some(&file.0), &none, |m| list.add(m)).unwrap_err();
        assert!(err.to_string().contains("no monitor matches"), "{err}");
        assert_eq!(
            load(Some(&file.0), &prod).expect("loaded").len(),
            3,
            "run keeps every selected monitor validated"
        );
    }

    #[test]
    fn a_bundle_read_as_a_stream_keeps_its_errors() {
        let bad = Temp::new(
            "bad-bundle.json",
            "{\"schema_version\": 1, \"monitors\": [\n{\"schema_version\":1,\"id\":\"x\",\"name\":\"x\",\"target\":{\"host\":\"h\",\"port\":\"1\"}}\n]}",
        );
        let err = load(Some(&bad.0), &Filter::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("monitors[0].target.port: invalid type: string \"1\", expected u16 (line 2, column 71)"),
            "{err}"
        );
        let missing = load(
            Some(Path::new("/nonexistent/bundle.json")),
            &Filter::default(),
        );
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .contains("cannot read the bundle"),
        );
    }
}
