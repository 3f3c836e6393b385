//! The subcommands of a monitors binary and how they load, filter, run and report.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use regex::Regex;

use super::bundle::Bundle;
use super::report::{self, Reporter, Style};
use super::{agent, watch};
use crate::registry::{self, Declared};
use crate::spec::{TcpMonitor, TlsMode};
use crate::validate::ValidMonitor;
use crate::{CheckResult, Engine};

/// Exit code: nothing failed.
pub const EXIT_OK: u8 = 0;
/// Exit code: a monitor failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: invalid monitors, a bad bundle, or a usage error.
pub const EXIT_INVALID: u8 = 2;

/// Monitoring as code for TCP services: the monitors compiled into this binary.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the monitors: id, name, target, TLS mode, frequency, tags
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
    Watch(WatchArgs),
    /// Run the monitors a control plane assigns to this agent and upload their results,
    /// until Ctrl-C or SIGTERM (token from MONITORS_AGENT_TOKEN)
    Agent(agent::AgentArgs),
    /// Write the JSON bundle of the monitors (what deploy sends)
    Export {
        #[command(flatten)]
        filter: Filter,
        /// Write to this file instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Show one monitor's resolved spec, defaults applied, as JSON
    Explain {
        /// The monitor's id
        id: String,
    },
    /// Start demo services on loopback and check monitors against them
    Demo {
        /// Reporter, optionally with a file (repeatable; default human)
        #[arg(long = "reporter", short, value_name = "NAME[=FILE]")]
        reporters: Vec<String>,
    },
}

/// Which monitors a command acts on.
#[derive(Debug, Clone, Default, Args)]
pub struct Filter {
    /// Only monitors whose id or name matches this regular expression
    #[arg(long)]
    pub grep: Option<String>,
    /// Only monitors with these tags: comma-separated tags must all be present; repeated
    /// flags are alternatives (as Checkly's --tags)
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only monitors that run in this location (monitors without locations run everywhere)
    #[arg(long)]
    pub location: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    filter: Filter,
    /// Run the monitors of an exported bundle instead of the compiled-in ones
    #[arg(long)]
    bundle: Option<PathBuf>,
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
struct WatchArgs {
    #[command(flatten)]
    filter: Filter,
    /// Watch the monitors of an exported bundle instead of the compiled-in ones
    #[arg(long)]
    bundle: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// How many checks run at once
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Print each result as a JSON line instead of a human line
    #[arg(long)]
    json: bool,
}

/// Runs the command line of a monitors binary: `fn main() -> ExitCode { monitor_core::cli::main() }`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    ExitCode::from(runtime.block_on(execute(cli)))
}

/// Runs a parsed command line and returns its exit code.
pub async fn execute(cli: Cli) -> u8 {
    match cli.command {
        Command::List { filter, json } => with_registry(&filter, |monitors| list(monitors, json)),
        Command::Validate => validate(),
        Command::Export { filter, output } => {
            with_registry(&filter, |monitors| export(monitors, output.as_deref()))
        }
        Command::Explain { id } => explain(&id),
        Command::Demo { reporters } => demo(&reporters).await,
        Command::Run(args) => run(args).await,
        Command::Watch(args) => match load(args.bundle.as_deref(), &args.filter) {
            Ok(monitors) => {
                watch::watch(
                    monitors,
                    watch::Options {
                        concurrency: args.concurrency,
                        metrics_listen: args.metrics_listen,
                        json: args.json,
                    },
                )
                .await
            }
            Err(code) => code,
        },
        Command::Agent(args) => agent::command(args).await,
    }
}

/// Prints an error line to standard error.
fn fail(message: impl std::fmt::Display) {
    eprintln!("error: {message}");
}

fn with_registry(filter: &Filter, act: impl FnOnce(Vec<TcpMonitor>) -> u8) -> u8 {
    match registry::monitors() {
        Ok(declared) => match apply_filter(declared.into_iter().map(|d| d.monitor), filter) {
            Ok(monitors) => act(monitors),
            Err(e) => {
                fail(e);
                EXIT_INVALID
            }
        },
        Err(e) => {
            fail(e);
            EXIT_INVALID
        }
    }
}

impl Filter {
    /// The filter made ready to match: its regular expression compiled and its tag groups
    /// split.
    pub fn selector(&self) -> Result<impl Fn(&TcpMonitor) -> bool + '_, String> {
        let grep = self
            .grep
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| format!("--grep is not a valid regular expression: {e}"))?;
        let groups: Vec<Vec<&str>> = self
            .tags
            .iter()
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .collect();
        Ok(move |m: &TcpMonitor| {
            grep.as_ref()
                .is_none_or(|re| re.is_match(&m.id) || re.is_match(&m.name))
                && (groups.is_empty()
                    || groups
                        .iter()
                        .any(|g| g.iter().all(|t| m.tags.iter().any(|have| have == t))))
                && self.location.as_ref().is_none_or(|l| {
                    m.locations.is_empty() && m.private_locations.is_empty()
                        || m.locations.contains(l)
                        || m.private_locations.contains(l)
                })
        })
    }
}

/// Keeps the monitors the filter selects.
pub fn apply_filter(
    monitors: impl IntoIterator<Item = TcpMonitor>,
    filter: &Filter,
) -> Result<Vec<TcpMonitor>, String> {
    let selected = filter.selector()?;
    Ok(monitors.into_iter().filter(|m| selected(m)).collect())
}

/// The monitors to run: a bundle's or the registry's, validated once and filtered.
fn load(bundle: Option<&Path>, filter: &Filter) -> Result<Vec<ValidMonitor>, u8> {
    let invalid = |e: String| {
        fail(e);
        EXIT_INVALID
    };
    let selected = filter.selector().map_err(invalid)?;
    let valid = match bundle {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(format!("cannot read the bundle {}: {e}", path.display())))?;
            let bundle = Bundle::from_json(&text);
            drop(text);
            bundle
                .and_then(Bundle::into_valid)
                .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        }
        None => registry::validate_all()
            .map_err(|e| invalid(e.to_string()))?
            .into_iter()
            .map(|(_, m)| m)
            .collect(),
    };
    Ok(valid.into_iter().filter(|m| selected(m.spec())).collect())
}

fn list(monitors: Vec<TcpMonitor>, json: bool) -> u8 {
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
                crate::engine::target_string(&m.target.host, m.target.port),
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
        if writeln!(out, "{line}").is_err() {
            return EXIT_INVALID;
        }
    }
    EXIT_OK
}

fn validate() -> u8 {
    match registry::validate_all() {
        Ok(valid) => {
            println!("{} monitors valid", valid.len());
            EXIT_OK
        }
        Err(errors) => {
            for e in &errors.0 {
                fail(e);
            }
            EXIT_INVALID
        }
    }
}

fn export(monitors: Vec<TcpMonitor>, output: Option<&Path>) -> u8 {
    if let Err(e) = monitors
        .iter()
        .map(|m| m.validate())
        .collect::<Result<Vec<_>, _>>()
    {
        fail(e);
        return EXIT_INVALID;
    }
    write_out(output, &Bundle::new(monitors).to_json())
}

fn explain(id: &str) -> u8 {
    match registry::monitors() {
        Ok(declared) => match declared.iter().find(|d| d.monitor.id == id) {
            Some(Declared {
                monitor, location, ..
            }) => {
                println!("// declared at {location}");
                println!("{}", monitor.to_json());
                EXIT_OK
            }
            None => {
                let ids: Vec<&str> = declared.iter().map(|d| d.monitor.id.as_str()).collect();
                fail(format!(
                    "no monitor with id `{id}`; the ids are: {}",
                    ids.join(", ")
                ));
                EXIT_INVALID
            }
        },
        Err(e) => {
            fail(e);
            EXIT_INVALID
        }
    }
}

fn write_out(path: Option<&Path>, text: &str) -> u8 {
    let written = match path {
        Some(p) => {
            std::fs::write(p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))
        }
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write to standard output: {e}")),
    };
    match written {
        Ok(()) => EXIT_OK,
        Err(e) => {
            fail(e);
            EXIT_INVALID
        }
    }
}

/// Parses `NAME[=FILE]` reporter arguments, giving `--output` to the last one without a
/// file (or to the default reporter).
fn reporters(
    args: &[String],
    output: Option<&Path>,
) -> Result<Vec<(Reporter, Option<PathBuf>)>, String> {
    use clap::ValueEnum;
    let mut parsed = Vec::new();
    for arg in args {
        let (name, file) = match arg.split_once('=') {
            Some((n, f)) => (n, Some(PathBuf::from(f))),
            None => (arg.as_str(), None),
        };
        let reporter = Reporter::from_str(name, true).map_err(|_| {
            format!("unknown reporter `{name}`; use human, json, junit, github or prometheus")
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
            None => return Err("--output given but every reporter already has a file".to_owned()),
        }
    }
    Ok(parsed)
}

async fn demo(args: &[String]) -> u8 {
    let args = if args.is_empty() {
        vec!["human".to_owned()]
    } else {
        args.to_vec()
    };
    let chosen = match reporters(&args, None) {
        Ok(r) => r,
        Err(e) => {
            fail(e);
            return EXIT_INVALID;
        }
    };
    let services = match super::demo::start().await {
        Ok(s) => s,
        Err(e) => {
            fail(e);
            return EXIT_INVALID;
        }
    };
    eprintln!(
        "demo services started on 127.0.0.1; checking {} monitors",
        services.monitors.len()
    );
    let results = match super::demo::run(&services).await {
        Ok(r) => r,
        Err(e) => {
            fail(e);
            return EXIT_INVALID;
        }
    };
    // The failures are the demo's point: it succeeds when it could show them.
    report_all(&chosen, &results)
}

/// Renders every chosen reporter; returns EXIT_INVALID when one could not be written.
fn report_all(chosen: &[(Reporter, Option<PathBuf>)], results: &[CheckResult]) -> u8 {
    let mut code = EXIT_OK;
    for (reporter, file) in chosen {
        let color = file.is_none()
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let text = report::render(*reporter, results, Style { color });
        if write_out(file.as_deref(), &text) != EXIT_OK {
            code = EXIT_INVALID;
        }
    }
    code
}

async fn run(args: RunArgs) -> u8 {
    let chosen = match reporters(&args.reporters, args.output.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            fail(e);
            return EXIT_INVALID;
        }
    };
    let monitors = match load(args.bundle.as_deref(), &args.filter) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let results = run_with_progress(&monitors, args.concurrency).await;
    match report_all(&chosen, &results) {
        EXIT_OK => report::exit_code(&results, args.fail_on_degraded),
        broken => broken,
    }
}

/// Runs the monitors, showing progress on a terminal when more than a handful run.
async fn run_with_progress(monitors: &[ValidMonitor], concurrency: usize) -> Vec<CheckResult> {
    let total = monitors.len();
    let show = total > 5 && std::io::stderr().is_terminal();
    let mut done = 0;
    let results = crate::run_all_observed(&Engine::new(), monitors, concurrency, |_| {
        done += 1;
        if show {
            eprint!("\r\x1b[2Kchecking {done}/{total}");
        }
    })
    .await;
    if show {
        eprint!("\r\x1b[2K");
    }
    results
}
