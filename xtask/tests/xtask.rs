//! `cargo xtask` end to end: it builds the monitors binary and passes its exit code and
//! its file-and-line errors through.

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
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unknown command `frobnicate`"), "{err}");
    assert!(!err.contains("tip:"), "nothing close to frobnicate: {err}");
}

#[test]
fn typos_get_the_closest_command_and_flag() {
    // (arguments, the error, clap's tip)
    let check = |args: &[&str], error: &str, tip: &str| {
        let o = xtask(args, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(&format!("error: {error}\n\n  tip: {tip}\n")),
            "{args:?}: {err}"
        );
    };
    check(
        &["deplyo"],
        "unknown command `deplyo`",
        "a similar command exists: `deploy`",
    );
    check(
        &["deploy", "--preveiw"],
        "`deploy` does not take `--preveiw`",
        "a similar flag exists: `--preview`",
    );
    check(
        &["destroy", "--forse"],
        "`destroy` does not take `--forse`",
        "a similar flag exists: `--force`",
    );
}

#[test]
fn version_names_the_binary_and_its_revision() {
    let o = xtask(&["--version"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    let revision = out
        .strip_prefix(concat!("cargo xtask ", env!("CARGO_PKG_VERSION"), " (git "))
        .and_then(|rest| rest.strip_suffix(")\n"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        revision == "unknown"
            || revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
        "{out}"
    );
}
