//! `cargo xtask deploy | destroy | rollback` (placeholder until written).

use std::process::ExitCode;

/// Runs a deploy command.
pub fn run(_command: &str, _args: &[String]) -> anyhow::Result<ExitCode> {
    anyhow::bail!("deploys are not written yet")
}
