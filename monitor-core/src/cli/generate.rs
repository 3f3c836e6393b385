//! `generate`, the hidden command packagers use (`cargo xtask dist` does): a shell's
//! completion script on standard output (`generate completions bash|zsh|fish`), or one
//! man page per command and subcommand in a directory (`generate man DIR`: `monitors.1`,
//! `monitors-run.1`, ...), both made by clap from the binary's own command line, so they
//! never drift from it. It is parsed apart from that command line, when it is the first
//! argument, so the completions and man pages made from it do not offer `generate`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use clap_complete::Shell;

use super::error::{CliError, EXIT_OK};

/// `generate`'s own command line.
#[derive(Debug, Parser)]
#[command(
    name = "generate",
    about = "Write shell completions or man pages (for packagers)"
)]
struct GenerateCli {
    #[command(subcommand)]
    what: Generate,
}

/// What `generate` writes.
#[derive(Debug, Subcommand)]
enum Generate {
    /// Print the completion script of a shell on standard output
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Write one man page per command and subcommand (NAME.1, NAME-COMMAND.1) into DIR
    Man {
        /// The directory, created if missing
        dir: PathBuf,
    },
}

/// Runs `generate ...` when it is the process's first argument, about the command line
/// `command` makes, and returns its outcome; `None` for any other command. A usage error
/// exits 2 with clap's message, as the main command line does.
pub(crate) fn from_args(
    name: &str,
    command: impl FnOnce() -> clap::Command,
) -> Option<Result<u8, CliError>> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != "generate" {
        return None;
    }
    let matches = GenerateCli::command()
        .bin_name(format!("{name} generate"))
        .get_matches_from(std::iter::once(OsString::from("generate")).chain(args));
    let cli = GenerateCli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Some(run(cli.what, command(), name.to_owned()))
}

/// Writes what `what` asks for about `command`, for the binary `name` (the file name it
/// was started as, so a binary renamed by its packager completes and documents itself by
/// that name).
fn run(what: Generate, command: clap::Command, name: String) -> Result<u8, CliError> {
    let command = command.display_name(name.clone()).bin_name(name.clone());
    match what {
        Generate::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), name, &mut out);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &out)
                .map_err(CliError::Stdout)?;
        }
        Generate::Man { dir } => man_pages(command, &dir)?,
    }
    Ok(EXIT_OK)
}

/// Writes the man pages of `command` and its visible subcommands into `dir`.
fn man_pages(command: clap::Command, dir: &Path) -> Result<(), CliError> {
    let cannot = |source| CliError::File {
        action: "write man pages into",
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(cannot)?;
    clap_mangen::generate_to(command, dir).map_err(cannot)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_generate_command_is_consistent() {
        super::GenerateCli::command().debug_assert();
    }
}
