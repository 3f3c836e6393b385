//! Python programs from PyPI for tests (sslyze, pymongo, ...): each pinned requirement gets
//! its own virtual environment, made once per machine under `$CARGO_TARGET_DIR/pypi` (or
//! the workspace's `target/pypi`) with `python3 -m venv` and `pip install`, behind a file
//! lock so that parallel test processes build it once.
//!
//! ```no_run
//! let sslyze = monitor_testing::pypi::program("sslyze", "sslyze==6.3.1").unwrap();
//! let status = std::process::Command::new(sslyze).arg("--help").status().unwrap();
//! # let _ = status;
//! ```

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Why a program could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum PypiError {
    /// A file operation on the environment's directory failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `python3 -m venv` or `pip install` failed.
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        /// The command, in words.
        command: String,
        /// Its exit status, in words.
        status: String,
        /// The end of its standard error, at most [`STDERR_TAIL`] bytes.
        stderr: String,
    },
    /// The requirement installed, but the program is not in the environment.
    #[error("{requirement} installed no program {program}")]
    NoProgram {
        /// The requirement installed.
        requirement: String,
        /// The program looked for.
        program: String,
    },
}

/// How many bytes of a failed command's standard error an error keeps.
pub const STDERR_TAIL: usize = 2000;

/// The marker written once an environment is complete.
const READY: &str = ".ready";

/// The path of `program` in a virtual environment holding `requirement` (for example
/// `program("sslyze", "sslyze==6.3.1")`), made on first use; later calls, from any
/// process on the machine, reuse it. Needs `python3` with `venv` (Debian: `python3-venv`)
/// and access to PyPI the first time.
pub fn program(program: &str, requirement: &str) -> Result<PathBuf, PypiError> {
    program_with(program, &[requirement])
}

/// Like [`program`], with several pinned requirements installed together in one
/// environment (for example `program_with("python3", &["mockupdb==1.8.1",
/// "pymongo==4.20.0"])` for a Python that imports both).
pub fn program_with(program: &str, requirements: &[&str]) -> Result<PathBuf, PypiError> {
    let requirement = requirements.join(" ");
    let root = target_dir().join("pypi");
    let env = root.join(dir_name(&requirement));
    let bin = env.join("bin").join(program);
    fs::create_dir_all(&root).map_err(io("cannot create", &root))?;
    let lock_path = root.join(format!("{}.lock", dir_name(&requirement)));
    let lock = File::create(&lock_path).map_err(io("cannot create", &lock_path))?;
    // Released when `lock` is dropped, or when the process exits.
    lock.lock().map_err(io("cannot lock", &lock_path))?;
    if env.join(READY).exists() && bin.exists() {
        return Ok(bin);
    }
    if env.exists() {
        fs::remove_dir_all(&env).map_err(io("cannot remove", &env))?;
    }
    run(Command::new("python3").arg("-m").arg("venv").arg(&env))?;
    run(Command::new(env.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(requirements))?;
    if !bin.exists() {
        return Err(PypiError::NoProgram {
            requirement,
            program: program.to_owned(),
        });
    }
    let ready = env.join(READY);
    fs::write(&ready, &requirement).map_err(io("cannot write", &ready))?;
    Ok(bin)
}

/// `$CARGO_TARGET_DIR` (relative to the workspace when relative), or the workspace's
/// `target`.
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => workspace.join("target"),
    }
}

/// A directory name for a requirement: letters, digits, `.`, `-` and `_` kept, the rest
/// (`==`, `<`, ...) as `_`.
fn dir_name(requirement: &str) -> String {
    requirement
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PypiError {
    let path = path.to_path_buf();
    move |source| PypiError::Io { what, path, source }
}

fn run(command: &mut Command) -> Result<(), PypiError> {
    let words = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PypiError::Io {
            what: "cannot run",
            path: PathBuf::from(command.get_program()),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    let start = (start..stderr.len())
        .find(|&i| stderr.is_char_boundary(i))
        .unwrap_or(stderr.len());
    Err(PypiError::Command {
        command: words,
        status: output.status.to_string(),
        stderr: stderr[start..].to_owned(),
    })
}
