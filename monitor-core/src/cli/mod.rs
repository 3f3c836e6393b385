//! The command line of a monitors binary: list, validate, run, watch, agent, export,
//! explain and demo, with the reporters and the JSON bundle they share.

pub mod agent;
mod app;
pub use monitor_spec::bundle;
mod demo;
pub mod report;
pub mod watch;

pub use app::{Cli, EXIT_FAILED, EXIT_INVALID, EXIT_OK, Filter, apply_filter, execute, main};
