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
    assert!(String::from_utf8_lossy(&ok.stdout).contains("16 monitors valid"));
    let bad = xtask(&["validate"], &[("REDIS_ADDR", "no-port")]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("declared at monitors/src/services.rs:"),
        "{err}"
    );
}

#[test]
fn the_github_reporter_annotates_the_declaring_line() {
    // The Redis monitor of the workspace, pointed at a closed port: it fails as refused.
    let o = xtask(
        &["run", "--reporter", "github", "--grep", "^services::redis$"],
        &[("REDIS_ADDR", "127.0.0.1:1")],
    );
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.starts_with("## ❌ 1 monitor: 0 passed, 0 degraded, 1 failed"),
        "{out}"
    );
    let prefix = "::error file=monitors/src/services.rs,line=";
    let annotation = err
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no annotation in:\n{err}"));
    let (line, rest) = annotation[prefix.len()..].split_once(',').unwrap();
    assert!(
        rest.starts_with("title=monitor services%3A%3Aredis failed%3A refused::")
            && rest.contains("127.0.0.1:1")
            && rest.contains("%0Ahint: "),
        "{annotation}"
    );
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../monitors/src/services.rs"
    ))
    .unwrap();
    let declared = source
        .lines()
        .nth(line.parse::<usize>().unwrap() - 1)
        .unwrap();
    assert!(
        declared.starts_with("#[tcp_monitor("),
        "line {line}: {declared}"
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
fn maintenance_start_needs_a_selector_and_a_duration_of_the_spec() {
    // (arguments, what the error says); each exits 2 before any request.
    let check = |args: &[&str], error: &str| {
        let o = xtask(args, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(error), "{args:?}: {err}");
    };
    check(
        &["maintenance", "start", "--for", "30m"],
        "the following required arguments were not provided:\n  <--tag <T>|--monitor <ID>>",
    );
    check(
        &["maintenance", "start", "--tag", "db", "--for", "8d"],
        "`8d` must be a whole number of minutes from 1m to 7d",
    );
    check(
        &[
            "maintenance",
            "start",
            "--tag",
            "db",
            "--for",
            "1h",
            "--grep",
            "x",
        ],
        "`maintenance` does not take `--grep`",
    );
    check(&["maintenance", "end"], "<ID>");
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

/// A directory of links to every program on PATH except those `.ci/packages.toml` names:
/// a PATH on which the test servers, openssl and chromium are missing.
fn path_without_test_programs(dir: &std::path::Path) -> std::ffi::OsString {
    let list =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/packages.toml"))
            .unwrap();
    let hidden: Vec<&str> = list
        .lines()
        .filter_map(|l| l.strip_prefix("programs = ["))
        .flat_map(|l| l.trim_end_matches(']').split(','))
        .map(|p| p.trim().trim_matches('"'))
        .filter(|p| !p.starts_with('/'))
        .collect();
    assert!(hidden.contains(&"redis-server") && hidden.contains(&"chromium"));
    std::fs::create_dir_all(dir).unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for from in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&from) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = dir.join(&name);
            if hidden.contains(&name.to_string_lossy().as_ref()) || link.exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(entry.path(), link);
        }
    }
    dir.as_os_str().to_owned()
}

/// Without the servers' packages and without installing them, `cargo xtask test` runs
/// what it can, names every suite it could not run and why, prints the install command
/// and exits 3: a partial run never looks like a pass.
#[test]
fn test_without_the_packages_names_what_it_skipped_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("xtask-no-packages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = path_without_test_programs(&dir);
    // One quick test runs (the package list's own check), so the run is real but short.
    let o = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args([
            "run",
            "--quiet",
            "--package",
            "xtask",
            "--",
            "test",
            "--no-install",
        ])
        .args([
            "--tests",
            "--",
            "the_list_covers_every_program_the_tests_require",
        ])
        .env("PATH", &path)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{out}\n{err}");
    for expected in [
        "tests that ran: passed",
        "not run (",
        "  - acceptance: Redis: needs redis-server (no redis-server)",
        "  - the pages, badges and login form in Chromium: needs chromium (no chromium)",
        "  - legacy TLS against openssl s_server: needs openssl (no openssl)",
        "apt-get install -y --no-install-recommends ",
        "result: INCOMPLETE (exit 3)",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    // The skipped suites did not run.
    for skipped in [
        "test acceptance::",
        "test browser::",
        "test legacy::openssl_",
        "test dashboards::promtool_",
    ] {
        assert!(!out.contains(skipped), "{skipped:?} ran:\n{out}");
    }
    // The quick test did run: its binary reports one passed test.
    assert!(
        err.contains("1 passed") || out.contains("1 passed"),
        "{out}\n{err}"
    );
}
