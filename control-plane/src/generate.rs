//! `control-plane generate`, the hidden command packagers use (`cargo xtask dist` does):
//! a shell's completion script on standard output (`generate completions bash|zsh|fish`),
//! or one man page per command and subcommand in a directory (`generate man DIR`:
//! `control-plane.1`, `control-plane-serve.1`, ...), both made by clap from the command
//! line itself, so they never drift from it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Arg, ArgMatches, Command, value_parser};
use clap_complete::Shell;

/// The `generate` subcommand, hidden from help, completions and man pages.
pub fn command() -> Command {
    Command::new("generate")
        .about("Writes shell completions or man pages (for packagers)")
        .hide(true)
        .subcommand_required(true)
        .subcommand(
            Command::new("completions")
                .about("Prints the completion script of a shell on standard output")
                .arg(
                    Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .value_parser(value_parser!(Shell))
                        .help("The shell: bash, zsh, fish, elvish or powershell"),
                ),
        )
        .subcommand(
            Command::new("man")
                .about("Writes one man page per command and subcommand (NAME.1, NAME-COMMAND.1) into DIR")
                .arg(
                    Arg::new("dir")
                        .value_name("DIR")
                        .required(true)
                        .value_parser(value_parser!(PathBuf))
                        .help("The directory, created if missing"),
                ),
        )
}

/// Runs `generate` (its matches `m`) for the whole command line `cli`.
pub fn run(m: &ArgMatches, cli: Command) -> Result<()> {
    let name = cli.get_name().to_owned();
    match m.subcommand() {
        Some(("completions", m)) => {
            let shell = *m.get_one::<Shell>("shell").context("a shell is needed")?;
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cli.clone(), name, &mut out);
            std::io::stdout()
                .lock()
                .write_all(&out)
                .context("writing the completions")
        }
        _ => {
            let dir = m
                .subcommand_matches("man")
                .and_then(|m| m.get_one::<PathBuf>("dir"))
                .context("a directory is needed")?;
            std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(cli, dir))
                .with_context(|| format!("writing man pages into {}", dir.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_generate_command_is_consistent() {
        super::command().debug_assert();
    }
}
