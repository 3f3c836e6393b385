//! `cargo xtask bench` (placeholder until written).

use std::process::ExitCode;

/// Runs the benchmarks.
pub fn run(_args: &[String]) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the benchmarks are not written yet")
}
