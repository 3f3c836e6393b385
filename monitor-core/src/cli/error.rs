//! What stops a command of a monitors binary, and the exit codes: every error maps to its
//! code in one place, [`CliError::exit_code`], which `main` applies.

use std::path::PathBuf;

use thiserror::Error;

use crate::BundleError;
use crate::registry::RegistryErrors;
use monitor_spec::validate::ValidationErrors;

/// Exit code: nothing failed.
pub const EXIT_OK: u8 = 0;
/// Exit code: a monitor failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: invalid monitors, a bad bundle, or a usage error.
pub const EXIT_INVALID: u8 = 2;

/// Why a command could not do its work.
#[derive(Debug, Error)]
pub enum CliError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The monitors compiled into the binary are invalid or declared twice.
    #[error(transparent)]
    Registry(#[from] RegistryErrors),
    /// `validate` found problems in the registered monitors: one line per problem.
    #[error("{}", lines(&.0.0))]
    Validate(RegistryErrors),
    /// A monitor to export fails validation.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// A bundle cannot be read or used.
    #[error("{}: {source}", .path.display())]
    Bundle {
        /// The bundle's file.
        path: PathBuf,
        /// What is wrong with it.
        source: BundleError,
    },
    /// `report`'s input is not results.
    #[error("{}: not results: {message}", .path.display())]
    Results {
        /// The input (`-` for standard input).
        path: PathBuf,
        /// Where and what is wrong.
        message: String,
    },
    /// A file cannot be read or written.
    #[error("cannot {action} {}: {source}", .path.display())]
    File {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file the command line reads is over the bound ([`super::MAX_INPUT_FILE_BYTES`]).
    #[error(
        "{}: larger than {limit} bytes, the most a file given to this command may hold",
        .path.display()
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound, in bytes.
        limit: u64,
    },
    /// Standard output cannot be written.
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
    /// A command-line value that clap could not judge alone: a filter's regular
    /// expression, a filter that matches no monitor (without `--allow-empty`), a
    /// reporter name, `--output` with nowhere to go.
    #[error("{0}")]
    Usage(String),
    /// No registered monitor has this id.
    #[error("no monitor with id `{id}`; the ids are: {}", .known.join(", "))]
    UnknownId {
        /// The id asked for.
        id: String,
        /// The ids there are.
        known: Vec<String>,
    },
    /// The demo services could not start.
    #[cfg(feature = "demo")]
    #[error("{0}")]
    Demo(String),
    /// `watch` could not serve its metrics.
    #[cfg(feature = "watch")]
    #[error(transparent)]
    Watch(#[from] crate::runner::watch::WatchError),
    /// The agent could not start or run.
    #[cfg(feature = "agent")]
    #[error(transparent)]
    Agent(#[from] crate::runner::agent::AgentError),
}

impl CliError {
    /// The exit code of the error: every one means the monitors could not be judged.
    pub fn exit_code(&self) -> u8 {
        EXIT_INVALID
    }
}

fn lines(problems: &[impl ToString]) -> String {
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    all.join("\nerror: ")
}
