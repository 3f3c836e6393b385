//! `cargo xtask`: builds the `monitors` binary and drives it (list, validate, run, watch,
//! export, explain, demo), passing filters and reporters through.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

mod architecture;
mod bench;
mod deploy;

const USAGE: &str = "\
usage: cargo xtask [--manifest-path PATH] COMMAND [ARGS...]

commands (each builds the monitors binary first, then runs it with ARGS):
  list       list the monitors: id, name, target, TLS mode, frequency, tags
  validate   validate every monitor; problems name the file and line
  run        check each monitor once (--reporter human|json|junit|github|prometheus[=FILE])
  watch      check each monitor on its frequency (--metrics-listen ADDR)
  export     write the JSON bundle of the monitors (-o FILE)
  explain    show one monitor's resolved spec (explain ID)
  demo       start demo services on loopback and check monitors against them
  bench      measure throughput, TLS, scheduler scale and validate/export/build times
  deploy     deploy the monitors to the control plane (--preview, --force, --bundle FILE)
  destroy    remove every monitor of the project from the control plane (--force)
  rollback   make version N current again (rollback N)

--manifest-path PATH selects another crate of monitors (default: the workspace's monitors).
Exit codes: 0 nothing failed, 1 a monitor failed, 2 invalid monitors or usage errors.";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut manifest = None;
    if args.first().map(String::as_str) == Some("--manifest-path") {
        if args.len() < 2 {
            bail!("--manifest-path needs a path\n\n{USAGE}");
        }
        manifest = Some(PathBuf::from(args.remove(1)));
        args.remove(0);
    }
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    match command.as_str() {
        "list" | "validate" | "run" | "watch" | "export" | "explain" | "demo" => {
            let binary = build_monitors(manifest.as_deref())?;
            let status = Command::new(&binary)
                .arg(command)
                .args(rest)
                .status()
                .with_context(|| format!("cannot run {}", binary.display()))?;
            Ok(ExitCode::from(
                status.code().map_or(2, |c| u8::try_from(c).unwrap_or(2)),
            ))
        }
        "bench" => bench::run(rest),
        "deploy" | "destroy" | "rollback" => deploy::run(command, rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds the monitors binary (of the workspace, or of the crate at `manifest`) and
/// returns its path.
fn build_monitors(manifest: Option<&Path>) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    let manifest = manifest.map_or_else(|| root.join("monitors/Cargo.toml"), Path::to_path_buf);
    let mut build = Command::new(&cargo);
    build
        .args(["build", "--quiet", "--bin", "monitors", "--manifest-path"])
        .arg(&manifest);
    // The variables cargo set for xtask itself would look like changed inputs to build
    // scripts that watch them (ring's), rebuilding half the tree on every call.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "OUT_DIR"
            )
        {
            build.env_remove(&*name);
        }
    }
    let status = build.status().context("cannot run cargo")?;
    if !status.success() {
        bail!(
            "building the monitors in {} failed; the compiler's errors above name the file and line",
            manifest.display()
        );
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir_of(&manifest, &root),
    };
    let binary = target
        .join("debug")
        .join(format!("monitors{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        bail!("the build left no binary at {}", binary.display());
    }
    Ok(binary)
}

/// The target directory cargo uses for `manifest`: the workspace's for its members, the
/// crate's own for a crate outside the workspace.
fn target_dir_of(manifest: &Path, root: &Path) -> PathBuf {
    let dir = manifest.parent().unwrap_or(root);
    let inside = dir
        .canonicalize()
        .ok()
        .zip(root.canonicalize().ok())
        .is_some_and(|(d, r)| d.starts_with(&r) && d.parent() == Some(&r));
    if inside {
        root.join("target")
    } else {
        dir.join("target")
    }
}
