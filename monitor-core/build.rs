//! Build script: captures the git revision the binaries name in `--version` and
//! `monitors_build_info` as `MONITORS_REVISION`, from `MONITORS_BUILD_REVISION` when the
//! build sets it, else `git rev-parse --short=12 HEAD`, else `unknown` (a source tarball,
//! or no git). It reruns only when HEAD, the branch it points to or that variable changes,
//! never on every build. control-plane's and xtask's build scripts include this file.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable a build sets to name the revision without git.
const REVISION_ENV: &str = "MONITORS_BUILD_REVISION";

/// Emits `cargo:rustc-env=MONITORS_REVISION=...` and what to rerun on.
pub fn main() {
    println!("cargo:rerun-if-env-changed={REVISION_ENV}");
    let given = std::env::var(REVISION_ENV)
        .ok()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    let revision = given.or_else(git_revision);
    println!(
        "cargo:rustc-env=MONITORS_REVISION={}",
        revision.as_deref().unwrap_or("unknown")
    );
}

/// The short revision of HEAD, watching the files that change with it; `None` outside a
/// git checkout or without git.
fn git_revision() -> Option<String> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let revision = git(&["rev-parse", "--short=12", "HEAD"])?;
    let absolute = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() { p } else { dir.join(p) }
    };
    // A file that does not exist would rerun the script on every build: watch only
    // those that do.
    let watch = |path: &Path| {
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    };
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]).map(absolute) {
        watch(&git_dir.join("HEAD"));
        let common = git(&["rev-parse", "--git-common-dir"])
            .map(absolute)
            .unwrap_or(git_dir);
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            let loose = common.join(&reference);
            if loose.exists() {
                watch(&loose);
            } else if let Some(parent) = loose.parent() {
                // A packed branch: its loose file appears in this directory at the
                // next commit.
                watch(parent);
            }
        }
        watch(&common.join("packed-refs"));
    }
    Some(revision)
}
