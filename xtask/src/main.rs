//! `cargo xtask`: builds the `monitors` binary and drives it (list, validate, run, watch,
//! export, explain, demo), passing filters and reporters through; benchmarks; checks the
//! workspace's architecture; fuzzes the parsers; packs the binaries for a server (dist);
//! deploys to the control plane and opens maintenance windows there. The command line is
//! parsed with clap.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

mod architecture;
mod bench;
mod deploy;
mod dist;
mod fuzz;
mod testing;

/// What `--version` prints after `cargo xtask`: the version and the git revision it was
/// built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("MONITORS_REVISION"),
    ")"
);

/// Build the monitors binary and drive it.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version = VERSION,
    after_help = "Exit codes: 0 nothing failed, 1 a monitor failed, 2 invalid monitors or usage errors."
)]
struct Cli {
    /// Selects another crate of monitors (default: the workspace's monitors).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

/// The commands; those of the monitors binary build it first, then run it with the
/// arguments that follow.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// List the monitors: id, name, target, TLS mode, frequency, tags.
    List(PassThrough),
    /// Validate every monitor; problems name the file and line.
    Validate(PassThrough),
    /// Check each monitor once (--reporter human|json|junit|github|prometheus[=FILE]).
    Run(PassThrough),
    /// Check each monitor on its frequency (--metrics-listen ADDR).
    Watch(PassThrough),
    /// Write the JSON bundle of the monitors (-o FILE).
    Export(PassThrough),
    /// Show one monitor's resolved spec (explain ID).
    Explain(PassThrough),
    /// Render results made elsewhere through run's reporters (--input FILE|-).
    Report(PassThrough),
    /// Start demo services on loopback and check monitors against them.
    Demo(PassThrough),
    /// Measure throughput, TLS, scheduler scale and validate/export/build times.
    Bench(bench::BenchArgs),
    /// Check the workspace's layout: no import loop among a crate's modules, no source
    /// file outside tests over 900 lines.
    Architecture,
    /// Build the fuzz targets of fuzz/ with libFuzzer and run each for --seconds N
    /// (default 60) on a scratch corpus seeded from fuzz/corpus; exit 1 on a crash.
    Fuzz(fuzz::FuzzArgs),
    /// Run every test of the workspace: installs the Debian packages the tests use as root
    /// on Debian (.ci/packages.toml), else skips the suites that need them and names
    /// them; exit 0 all passed, 1 a test failed, 3 some suites could not run
    Test(testing::TestArgs),
    /// Build release binaries and pack them with systemd units, completions, man pages
    /// and docs into target/dist/monitors-VERSION-TARGET.tar.gz
    Dist(dist::DistArgs),
    #[command(flatten)]
    Client(deploy::ClientCommand),
}

/// The arguments a command of the monitors binary gets as they are.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
struct PassThrough {
    /// Arguments for the monitors binary's command (`--help` included).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Prints a command line clap refused (or the help asked for) and returns the exit code:
/// 0 for help and the version, 2 for usage errors. An unknown command or flag keeps
/// clap's tip naming the closest one.
fn usage_error(e: &clap::Error) -> ExitCode {
    let value = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        _ => None,
    };
    let client = std::env::args().skip(1).find(|a| {
        matches!(
            a.as_str(),
            "deploy" | "destroy" | "rollback" | "maintenance"
        )
    });
    let message = match (e.kind(), client) {
        (ErrorKind::InvalidSubcommand, _) => value(ContextKind::InvalidSubcommand)
            .map(|command| format!("unknown command `{command}`{}", tip(e))),
        (
            ErrorKind::UnknownArgument | ErrorKind::InvalidValue | ErrorKind::TooManyValues,
            Some(command),
        ) => Some(deploy::usage_error(e, &command)),
        _ => None,
    };
    let usage = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(usage)) => usage.to_string(),
        _ => Cli::command().render_usage().to_string(),
    };
    match message {
        Some(message) => {
            eprintln!("error: {message}\n\n{usage}\n\nFor more information, try '--help'.");
            ExitCode::from(2)
        }
        None => {
            let _ = e.print();
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
        }
    }
}

/// Clap's closest suggestion for an unknown command or flag, as a tip to append to the
/// message ("a similar command exists: `deploy`"), or nothing.
pub(crate) fn tip(e: &clap::Error) -> String {
    let closest = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        // Clap orders them by confidence, the closest last.
        Some(ContextValue::Strings(s)) => s.last().cloned(),
        _ => None,
    };
    let found = closest(ContextKind::SuggestedSubcommand)
        .map(|c| ("command", c))
        .or_else(|| closest(ContextKind::SuggestedArg).map(|a| ("flag", a)));
    match found {
        Some((what, name)) => format!("\n\n  tip: a similar {what} exists: `{name}`"),
        None => String::new(),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let manifest = cli.manifest_path;
    let (command, pass) = match cli.command {
        None => {
            println!("{}", Cli::command().render_help());
            return Ok(ExitCode::from(2));
        }
        Some(Cmd::Bench(args)) => return bench::run(&args),
        Some(Cmd::Architecture) => {
            architecture::run(&workspace_root())?;
            println!(
                "no import loop, no source file over {} lines",
                architecture::MAX_LINES
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(Cmd::Fuzz(args)) => return fuzz::run(&args, &workspace_root()),
        Some(Cmd::Test(args)) => return testing::run(&args, &workspace_root()),
        Some(Cmd::Dist(args)) => return dist::run(&args, &workspace_root()),
        Some(Cmd::Client(command)) => return Ok(deploy::run(&command)),
        Some(Cmd::List(p)) => ("list", p),
        Some(Cmd::Validate(p)) => ("validate", p),
        Some(Cmd::Run(p)) => ("run", p),
        Some(Cmd::Watch(p)) => ("watch", p),
        Some(Cmd::Export(p)) => ("export", p),
        Some(Cmd::Explain(p)) => ("explain", p),
        Some(Cmd::Report(p)) => ("report", p),
        Some(Cmd::Demo(p)) => ("demo", p),
    };
    let binary = build_monitors(manifest.as_deref())?;
    let status = Command::new(&binary)
        .arg(command)
        .args(&pass.args)
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    Ok(ExitCode::from(
        status.code().map_or(2, |c| u8::try_from(c).unwrap_or(2)),
    ))
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds the monitors binary (of the workspace, or of the crate at `manifest`) and
/// returns its path.
fn build_monitors(manifest: Option<&Path>) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    let manifest = manifest.map_or_else(|| root.join("monitors/Cargo.toml"), Path::to_path_buf);
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--quiet", "--bin", "monitors", "--manifest-path"])
        .arg(&manifest);
    clear_cargo_env(&mut build);
    let status = build.status().context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building the monitors in {} failed; the compiler's errors above name the file and line",
            manifest.display()
        );
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir_of(&manifest, &root),
    };
    let binary = target
        .join("debug")
        .join(format!("monitors{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        bail!("the build left no binary at {}", binary.display());
    }
    Ok(binary)
}

/// The target directory cargo uses for `manifest`: the workspace's for its members, the
/// crate's own for a crate outside the workspace.
fn target_dir_of(manifest: &Path, root: &Path) -> PathBuf {
    let dir = manifest.parent().unwrap_or(root);
    let inside = dir
        .canonicalize()
        .ok()
        .zip(root.canonicalize().ok())
        .is_some_and(|(d, r)| d.starts_with(&r) && d.parent() == Some(&r));
    if inside {
        root.join("target")
    } else {
        dir.join("target")
    }
}

/// Removes the variables cargo set for xtask itself from a nested cargo command: they would
/// look like changed inputs to build scripts that watch them (ring's), rebuilding half the
/// tree on every call.
pub(crate) fn clear_cargo_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
            )
        {
            command.env_remove(&*name);
        }
    }
}
