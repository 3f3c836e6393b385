//! `run`: every monitor checked once, with progress on a terminal.
#![allow(clippy::print_stderr)]

use std::io::IsTerminal;

use crate::{CheckResult, Engine};
use monitor_spec::validate::ValidMonitor;

/// Runs the monitors on `engine`, showing progress on a terminal when more than a handful
/// run.
pub async fn run_with_progress(
    engine: &Engine,
    monitors: &[ValidMonitor],
    concurrency: usize,
) -> Vec<CheckResult> {
    let total = monitors.len();
    let show = total > 5 && std::io::stderr().is_terminal();
    let mut done = 0;
    let results = crate::run_all_observed(engine, monitors, concurrency, |_| {
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
