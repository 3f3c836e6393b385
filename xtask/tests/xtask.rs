//! `cargo xtask` end to end: it builds the monitors binary and passes its exit code and
//! its file-and-line errors through; `dist` (its own module) packs an installable archive.

#[path = "xtask/dist.rs"]
mod dist;

use std::process::{Command, Output};

fn xtask(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    Command::new(cargo)
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap()
}

#[test]
fn validate_passes_and_fails_with_file_and_line() {
    let ok = xtask(&["validate"], &[]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("13 monitors valid"));
    let bad = xtask(&["validate"], &[("REDIS_ADDR", "no-port")]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("declared at monitors/src/services.rs:"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = xtask(&["frobnicate"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown command `frobnicate`"));
}
