//! The command line of a monitors binary: list, validate, run, watch, agent, export,
//! explain and demo (the last three runners when their features are on).

mod app;
mod error;
mod filter;
mod generate;
pub(crate) mod limits;
mod windows;

pub use app::{Cli, LogFormat, REVISION, VERSION, command_line, execute, init_logs, main};
pub use error::{CliError, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
pub use filter::{Filter, apply_filter};
pub use limits::{MAX_BUNDLE_FILE_BYTES, MAX_INPUT_FILE_BYTES};
