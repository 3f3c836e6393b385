//! `generate`, the hidden command packagers use (`cargo xtask dist` does): a shell's
//! completion script on standard output (`generate completions bash|zsh|fish`), or one
//! man page per command and subcommand in a directory (`generate man DIR`: `monitors.1`,
//! `monitors-run.1`, ...), both made by clap from the binary's own command line, so they
//! never drift from it.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use clap_complete::Shell;

use super::error::{CliError, EXIT_OK};

/// What `generate` writes.
#[derive(Debug, Subcommand)]
pub(crate) enum Generate {
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

/// Writes what `what` asks for about `command` (the whole command line), for the binary
/// named as it was started (its file name, so a binary renamed by its packager completes
/// and documents itself by that name).
pub(crate) fn run(what: Generate, command: clap::Command) -> Result<u8, CliError> {
    let name = binary_name();
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

/// The file name this process was started as, `monitors` when it has none.
fn binary_name() -> String {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "monitors".to_owned())
}
