//! `cargo xtask test`: every test of the workspace in one command. It reads the Debian
//! packages the tests use from `.ci/packages.toml`, installs the missing ones when it can
//! (root on Debian), skips the suites whose packages are still missing, and ends with a
//! summary that names each suite that did not run; a partial run exits 3, never 0. Suites
//! with a `rerun` (the control plane's api and e2e suites on PostgreSQL) run a second time
//! with their variables after a whole-workspace run.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The package list, compiled in so that the list and the code that reads it agree.
pub const PACKAGES_TOML: &str = include_str!("../../.ci/packages.toml");

/// Exit code when the tests that ran passed but some suites could not run.
pub const EXIT_INCOMPLETE: u8 = 3;

/// Arguments of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Never install packages, even as root on Debian: skip the suites whose packages are
    /// missing (and exit 3)
    #[arg(long)]
    no_install: bool,
    /// Arguments for `cargo test` (after `--workspace --locked --no-fail-fast`), such as
    /// `--tests` or `-p monitor-core`; those after `--` go to the test binaries, as with
    /// cargo (e.g. `-- redis`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    args: Vec<OsString>,
}

/// `.ci/packages.toml`: what each package provides and which suites need it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// Debian package name → how to tell it is installed.
    pub package: BTreeMap<String, Package>,
    /// The suites that need packages.
    pub suite: Vec<Suite>,
}

/// One Debian package the tests use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Programs that prove it is installed: a bare name is looked up on PATH (and in
    /// /usr/sbin and /sbin), an absolute path is checked as it is.
    pub programs: Vec<String>,
    /// What the tests use it for.
    pub why: String,
}

/// Tests that need packages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// A name a reader recognises.
    pub name: String,
    /// cargo test name filters (substrings) selecting the suite's tests.
    pub tests: Vec<String>,
    /// The packages the suite needs.
    pub packages: Vec<String>,
    /// A second run of some test binaries with variables set, after the main run.
    #[serde(default)]
    pub rerun: Option<Rerun>,
}

/// A second run of test binaries, such as the control plane's suites on PostgreSQL.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rerun {
    /// The `cargo test` arguments choosing the binaries (`-p control-plane --test api`).
    pub cargo: Vec<String>,
    /// The variables set for it (`CONTROL_PLANE_TEST_DATABASE = "postgres"`).
    pub env: BTreeMap<String, String>,
    /// Tests left out of it (name filters): those the main run already ran the same way.
    #[serde(default)]
    pub skip: Vec<String>,
}

/// A package found missing, with the first program that was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// The Debian package.
    pub package: String,
    /// The program that is not there.
    pub program: String,
}

/// Parses the package list and checks that every suite names known packages.
pub fn packages() -> Result<Packages> {
    let parsed: Packages = toml::from_str(PACKAGES_TOML).context(".ci/packages.toml")?;
    for suite in &parsed.suite {
        for p in &suite.packages {
            if !parsed.package.contains_key(p) {
                bail!(
                    ".ci/packages.toml: suite `{}` needs `{p}`, which has no [package.{p}]",
                    suite.name
                );
            }
        }
    }
    Ok(parsed)
}

/// The packages whose programs are not all found, looking bare names up in `path` (a
/// PATH value) and the sbin directories.
pub fn missing(packages: &Packages, path: &OsStr) -> Vec<Missing> {
    packages
        .package
        .iter()
        .filter_map(|(name, package)| {
            let absent = package.programs.iter().find(|p| find(p, path).is_none())?;
            Some(Missing {
                package: name.clone(),
                program: absent.clone(),
            })
        })
        .collect()
}

/// Where `program` is: itself when absolute, else the first PATH entry (then /usr/sbin,
/// /sbin, which a user's PATH often lacks) that holds it.
pub fn find(program: &str, path: &OsStr) -> Option<PathBuf> {
    let program = Path::new(program);
    if program.is_absolute() {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The suites that cannot run, each with the missing packages it needs.
pub fn blocked<'a>(packages: &'a Packages, missing: &[Missing]) -> Vec<(&'a Suite, Vec<Missing>)> {
    packages
        .suite
        .iter()
        .filter_map(|suite| {
            let lacking: Vec<Missing> = missing
                .iter()
                .filter(|m| suite.packages.contains(&m.package))
                .cloned()
                .collect();
            (!lacking.is_empty()).then_some((suite, lacking))
        })
        .collect()
}

/// The command that installs `names`, with `sudo` unless already root.
pub fn install_command(names: &[&str], root: bool) -> String {
    format!(
        "{}apt-get install -y --no-install-recommends {}",
        if root { "" } else { "sudo " },
        names.join(" ")
    )
}

/// Runs `cargo xtask test`.
pub fn run(args: &TestArgs, root_dir: &Path) -> Result<ExitCode> {
    let list = packages()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut lacking = missing(&list, &path);
    let root = is_root();
    let debian = Path::new("/etc/debian_version").exists();
    let mut install_failed = None;
    if !lacking.is_empty() && root && debian && !args.no_install {
        let names: Vec<&str> = lacking.iter().map(|m| m.package.as_str()).collect();
        println!("== installing {}", names.join(" "));
        if let Err(e) = install(&names) {
            eprintln!("error: {e:#}");
            install_failed = Some(format!("{e:#}"));
        }
        lacking = missing(&list, &path);
    }
    let blocked = blocked(&list, &lacking);
    if !blocked.is_empty() {
        println!("== not installed (the suites that need them are skipped):");
        for m in &lacking {
            let why = list.package.get(&m.package).map_or("", |p| p.why.as_str());
            println!("   {}: {why} (no {})", m.package, m.program);
        }
        println!(
            "   install with: {}",
            install_command(&names_of(&lacking), root)
        );
    }

    println!("== tests");
    // clap drops a `--` that comes first (`cargo xtask test -- redis`) and keeps a later
    // one: the command line as given says which arguments follow the dashes.
    let given: Vec<OsString> = std::env::args_os()
        .skip_while(|a| a != "test")
        .skip(1)
        .collect();
    let (cargo_args, test_args) = if given.is_empty() {
        split_at_dashes(&args.args)
    } else {
        split_at_dashes(&given)
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root_dir)
        .args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .args(&cargo_args)
        .arg("--")
        .args(&test_args);
    for (suite, _) in &blocked {
        for test in &suite.tests {
            command.args(["--skip", test]);
        }
    }
    crate::clear_cargo_env(&mut command);
    let status = command.status().context("cannot run cargo test")?;
    let mut passed = status.success();
    let mut outcomes = vec![(
        "tests that ran".to_owned(),
        if passed {
            "passed".to_owned()
        } else {
            format!("FAILED ({status}); the failures are listed above each `test result:` line")
        },
    )];

    // The reruns belong to a whole-workspace run: `cargo xtask test -p x` runs only x.
    let skips: Vec<&String> = blocked.iter().flat_map(|(s, _)| &s.tests).collect();
    for suite in list.suite.iter().filter(|s| s.rerun.is_some()) {
        let Some(rerun) = &suite.rerun else { continue };
        if !cargo_args.is_empty() || blocked.iter().any(|(b, _)| b.name == suite.name) {
            continue;
        }
        println!("\n== {}", suite.name);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(root_dir)
            .args(["test", "--locked", "--no-fail-fast"])
            .args(&rerun.cargo)
            .arg("--")
            .args(&test_args);
        for test in skips.iter().copied().chain(&rerun.skip) {
            command.args(["--skip", test.as_str()]);
        }
        crate::clear_cargo_env(&mut command);
        command.envs(&rerun.env);
        let status = command
            .status()
            .with_context(|| format!("cannot run cargo test for {}", suite.name))?;
        passed &= status.success();
        outcomes.push((
            suite.name.clone(),
            if status.success() {
                "passed".to_owned()
            } else {
                format!("FAILED ({status})")
            },
        ));
    }

    println!("\n== summary");
    for (what, outcome) in &outcomes {
        println!("{what}: {outcome}");
    }
    if let Some(e) = &install_failed {
        println!("installing the packages failed: {e}");
    }
    if blocked.is_empty() {
        println!("every suite ran");
    } else {
        println!("not run ({} suites):", blocked.len());
        for (suite, lacking) in &blocked {
            let why: Vec<String> = lacking
                .iter()
                .map(|m| format!("{} (no {})", m.package, m.program))
                .collect();
            println!("  - {}: needs {}", suite.name, why.join(", "));
        }
        let reason = if !debian {
            "this is not Debian: install the equivalents of these Debian packages, or run on Debian"
        } else if !root {
            "not root: install them"
        } else {
            "install them"
        };
        println!(
            "{reason}: {}",
            install_command(&names_of(&lacking), root || !debian)
        );
    }
    Ok(if !passed {
        println!("result: FAILED (exit 1)");
        ExitCode::from(1)
    } else if !blocked.is_empty() {
        println!(
            "result: INCOMPLETE (exit {EXIT_INCOMPLETE}): the tests that ran passed, but a partial run is not a pass"
        );
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        println!("result: PASSED");
        ExitCode::SUCCESS
    })
}

/// The package names of `missing`, in order, once each.
fn names_of(missing: &[Missing]) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    missing
        .iter()
        .map(|m| m.package.as_str())
        .filter(|p| seen.insert(*p))
        .collect()
}

/// cargo's arguments and the test binaries' (those after the first `--`), without
/// `cargo xtask test`'s own `--no-install`.
fn split_at_dashes(args: &[OsString]) -> (Vec<OsString>, Vec<OsString>) {
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let cargo = args[..at]
        .iter()
        .filter(|a| *a != "--no-install")
        .cloned()
        .collect();
    let test = args.get(at + 1..).unwrap_or_default().to_vec();
    (cargo, test)
}

/// Whether this process runs as root (uid 0), from /proc or `id -u`.
fn is_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        return line.split_whitespace().nth(1) == Some("0");
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Installs `names` with apt-get, without letting their services start (the tests start
/// their own): a `policy-rc.d` that refuses, removed afterwards if this made it.
fn install(names: &[&str]) -> Result<()> {
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let made_policy = !policy.exists();
    if made_policy {
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")
            .with_context(|| format!("cannot write {}", policy.display()))?;
        set_executable(policy)?;
    }
    let result = apt(&["update", "-qq"]).and_then(|()| {
        let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
        args.extend_from_slice(names);
        apt(&args)
    });
    if made_policy {
        let _ = std::fs::remove_file(policy);
    }
    result
}

fn apt(args: &[&str]) -> Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        // dpkg's progress lines fill a CI log; errors still reach standard error.
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("apt-get {} failed ({status})", args.join(" "));
    }
    Ok(())
}

#[cfg(unix)]
fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_blocked(missing: &[(&str, &str)], expected: &[&str]) {
        let list = packages().unwrap();
        let missing: Vec<Missing> = missing
            .iter()
            .map(|(p, prog)| Missing {
                package: (*p).to_owned(),
                program: (*prog).to_owned(),
            })
            .collect();
        let names: Vec<&str> = blocked(&list, &missing)
            .iter()
            .map(|(s, _)| s.name.as_str())
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn a_missing_package_blocks_exactly_the_suites_that_need_it() {
        check_blocked(&[], &[]);
        check_blocked(
            &[("chromium", "chromium")],
            &["the pages, badges and login form in Chromium"],
        );
        check_blocked(
            &[("memcached", "memcached")],
            &[
                "acceptance: Memcached",
                "acceptance: haproxy",
                "Memcached round trip: set, get and delete of a fresh value on the real server",
            ],
        );
        check_blocked(
            &[("ldap-utils", "ldapsearch")],
            &[
                "LDAP recipe: anonymous and DN binds, baseObject search counted as ldapsearch counts, StartTLS and ldaps, failure kinds",
            ],
        );
        check_blocked(
            &[("postgresql", "psql")],
            &[
                "acceptance: PostgreSQL",
                "the store suite on PostgreSQL",
                "the control plane's replicas over one PostgreSQL (e2e)",
                "the control plane's api and e2e suites again on PostgreSQL",
                "the control plane's api suite: replicas share the deploy lock",
                "PostgreSQL login: scram-sha-256 (with channel binding over TLS), md5 and trust users, failure kinds, a standby",
            ],
        );
        check_blocked(
            &[("vsftpd", "vsftpd")],
            &[
                "acceptance: vsftpd",
                "mail logins: IMAP, POP3 (Dovecot), SMTP AUTH (Exim) and FTP (vsftpd) over STARTTLS and TLS, failure kinds",
            ],
        );
        check_blocked(
            &[("mariadb-server", "mariadbd")],
            &[
                "acceptance: MariaDB",
                "MySQL login: mysql_native_password and ed25519 users on MariaDB (with and without TLS), failure kinds, a read-only server, a user at its connection limit",
            ],
        );
    }

    #[test]
    fn the_control_plane_suites_run_again_on_postgres() {
        let list = packages().unwrap();
        let reruns: Vec<&Suite> = list.suite.iter().filter(|s| s.rerun.is_some()).collect();
        assert_eq!(reruns.len(), 1);
        assert_eq!(reruns[0].packages, ["postgresql"]);
        let rerun = reruns[0].rerun.as_ref().unwrap();
        assert_eq!(
            rerun.cargo,
            ["-p", "control-plane", "--test", "api", "--test", "e2e"]
        );
        assert_eq!(
            rerun
                .env
                .get("CONTROL_PLANE_TEST_DATABASE")
                .map(String::as_str),
            Some("postgres")
        );
    }

    #[test]
    fn programs_are_found_on_path_or_by_absolute_path() {
        let dir = std::env::temp_dir().join(format!("xtask-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("frobd"), "").unwrap();
        let path = std::env::join_paths([&dir]).unwrap();
        assert_eq!(find("frobd", &path), Some(dir.join("frobd")));
        assert_eq!(find("frobd", OsStr::new("")), None);
        let absolute = dir.join("frobd");
        assert!(find(absolute.to_str().unwrap(), OsStr::new("")).is_some());
        assert_eq!(find("/nonexistent/frobd", &path), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn check_split(given: &[&str], cargo: &[&str], test: &[&str]) {
        let given: Vec<OsString> = given.iter().map(OsString::from).collect();
        let (c, t) = split_at_dashes(&given);
        assert_eq!(c, cargo, "{given:?}");
        assert_eq!(t, test, "{given:?}");
    }

    #[test]
    fn arguments_after_dashes_go_to_the_test_binaries() {
        check_split(&[], &[], &[]);
        check_split(&["--", "redis"], &[], &["redis"]);
        check_split(
            &["--no-install", "--", "--exact", "a"],
            &[],
            &["--exact", "a"],
        );
        check_split(
            &["--tests", "--", "a", "--skip", "b"],
            &["--tests"],
            &["a", "--skip", "b"],
        );
        check_split(&["-p", "xtask", "--lib"], &["-p", "xtask", "--lib"], &[]);
        check_split(&["--", "x", "--", "y"], &[], &["x", "--", "y"]);
    }

    #[test]
    fn install_command_names_every_package_once() {
        assert_eq!(
            install_command(&["redis-server", "chromium"], false),
            "sudo apt-get install -y --no-install-recommends redis-server chromium"
        );
        assert_eq!(
            install_command(&["openssl"], true),
            "apt-get install -y --no-install-recommends openssl"
        );
    }

    /// Every program a test asks for by name (`require("x", …)`) is in the list, so that a
    /// machine without it skips the suite instead of failing it.
    #[test]
    fn the_list_covers_every_program_the_tests_require() {
        let list = packages().unwrap();
        let known: BTreeSet<&str> = list
            .package
            .values()
            .flat_map(|p| p.programs.iter())
            .map(|p| p.rsplit('/').next().unwrap_or(p))
            .collect();
        let root = crate::workspace_root();
        let mut asked = BTreeSet::new();
        for dir in ["monitor-core/tests", "control-plane/tests", "xtask/tests"] {
            collect_required(&root.join(dir), &mut asked);
        }
        assert!(asked.contains("redis-server"), "the scan found {asked:?}");
        // Programs of Debian's essential or always-present packages need no entry.
        let essential = ["setpriv", "timeout", "coreutils"];
        let unlisted: Vec<&String> = asked
            .iter()
            .filter(|p| {
                let name = p.rsplit('/').next().unwrap_or(p);
                !known.contains(name) && !essential.contains(&name)
            })
            .collect();
        assert!(
            unlisted.is_empty(),
            "tests require programs .ci/packages.toml does not list: {unlisted:?}"
        );
    }

    fn collect_required(dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                collect_required(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for piece in text.split("require(\"").skip(1) {
                    if let Some(program) = piece.split('"').next() {
                        out.insert(program.to_owned());
                    }
                }
            }
        }
    }
}
