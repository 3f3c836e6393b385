//! `cargo xtask versions [show N]`: the project's versions, newest first, with their
//! time, git metadata and monitor count; `show N` prints version N's change against the
//! version before it, as `deploy --preview` prints a deploy's.

use std::fmt::Write;
use std::process::ExitCode;

use anyhow::anyhow;
use monitor_spec::api::{Diff, VersionInfo, VersionResponse, WindowsDiff};
use serde::Serialize;
use serde_json::Value;

use super::api::{Action, shown};
use super::config::{Args, Format};
use super::preview::{Monitors, Preview, by_id};
use super::{Failure, Outcome, connect};

/// What `versions show N --format json` prints.
#[derive(Debug, Serialize)]
struct Shown {
    info: VersionInfo,
    /// The version compared against: the one before, `None` for the first.
    against: Option<u64>,
    #[serde(flatten)]
    preview: Preview,
}

/// Runs `versions` or `versions show N`.
pub(super) fn run(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Outcome {
    let show = match args.positional.as_slice() {
        [] => None,
        [word, n] if word == "show" => Some(n.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(
            || {
                Failure::local(anyhow!(
                    "`{}` is not a version number; `cargo xtask versions show N` takes a version from 1",
                    shown(n)
                ))
            },
        )?),
        [word] if word == "show" => {
            return Err(Failure::local(anyhow!(
                "versions show needs the version: cargo xtask versions show N"
            )));
        }
        [other, ..] => {
            return Err(Failure::local(anyhow!(
                "`{}` is not a versions command: `cargo xtask versions` lists them, `cargo xtask versions show N` shows one",
                shown(other)
            )));
        }
    };
    let api = connect(args, env)?;
    let Some(n) = show else {
        let versions: Vec<VersionInfo> = api.get(&["versions"], Action::Versions)?;
        match args.format {
            Format::Json => println!("{}", to_json(&versions)?),
            Format::Text => print!("{}", list(api.project(), &versions)),
        }
        return Ok(ExitCode::SUCCESS);
    };
    let version: VersionResponse<Value> =
        api.get(&["versions", &n.to_string()], Action::Version(n))?;
    // The version before N: N - 1, unless rollbacks or pruning left a gap.
    let before = if n > 1 {
        let versions: Vec<VersionInfo> = api.get(&["versions"], Action::Versions)?;
        versions.iter().map(|v| v.version).filter(|v| *v < n).max()
    } else {
        None
    };
    let (old, old_windows): (Monitors, Vec<Value>) = match before {
        Some(b) => {
            let earlier: VersionResponse<Value> =
                api.get(&["versions", &b.to_string()], Action::Version(b))?;
            (
                monitors_of(&earlier.bundle),
                windows_of(Some(&earlier.bundle)),
            )
        }
        None => (Monitors::new(), Vec::new()),
    };
    let new = monitors_of(&version.bundle);
    let new_windows = windows_of(Some(&version.bundle));
    let mut diff = Diff::between(&old, &new);
    diff.maintenance = WindowsDiff::between(&old_windows, &new_windows);
    let preview =
        Preview::new(&diff, &old, &new).with_windows(&by_id(old_windows), &by_id(new_windows));
    match args.format {
        Format::Json => println!(
            "{}",
            to_json(&Shown {
                info: version.info,
                against: before,
                preview
            })?
        ),
        Format::Text => {
            println!("{}", header(&version.info));
            match before {
                Some(b) => println!("against version {b}:"),
                None => println!("the first version:"),
            }
            print!("{}", preview.render());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The monitors of a version's bundle, by id.
/// The maintenance windows of a version's bundle (none when it declares none).
fn windows_of(bundle: Option<&Value>) -> Vec<Value> {
    bundle
        .and_then(|b| b.get("maintenance"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn monitors_of(bundle: &Value) -> Monitors {
    by_id(
        bundle
            .get("monitors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    )
}

fn to_json<T: Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Failure::local(anyhow!("cannot write the JSON: {e}")))
}

/// One line per version, newest first, under a header.
fn list(project: &str, versions: &[VersionInfo]) -> String {
    if versions.is_empty() {
        return format!(
            "project `{project}` has no versions yet; `cargo xtask deploy` makes the first\n"
        );
    }
    let mut out = format!("versions of project `{project}`, newest first:\n");
    for v in versions {
        let _ = writeln!(out, "  {}", header(v));
    }
    out
}

/// `7  2026-12-06T06:20:11Z  16 monitors  0123456789ab (main, dirty)  Ada <ada@x>: subject`
/// with `rollback of N` when it is one.
fn header(v: &VersionInfo) -> String {
    let mut line = format!(
        "version {}  {}  {} monitor{}",
        v.version,
        shown(&v.created_at),
        v.monitors,
        if v.monitors == 1 { "" } else { "s" }
    );
    if let Some(of) = v.rollback_of {
        let _ = write!(line, "  rollback to version {of}");
    }
    let git = &v.git;
    if let Some(commit) = &git.commit {
        let short: String = commit.chars().take(12).collect();
        let _ = write!(line, "  {}", shown(&short));
    }
    let mut about = Vec::new();
    if let Some(branch) = &git.branch {
        about.push(shown(branch));
    }
    if git.dirty == Some(true) {
        about.push("dirty".to_owned());
    }
    if !about.is_empty() {
        let _ = write!(line, " ({})", about.join(", "));
    }
    match (&git.author, &git.message) {
        (Some(a), Some(m)) => {
            let _ = write!(line, "  {}: {}", shown(a), shown(m));
        }
        (Some(a), None) => {
            let _ = write!(line, "  {}", shown(a));
        }
        (None, Some(m)) => {
            let _ = write!(line, "  {}", shown(m));
        }
        (None, None) => {}
    }
    line
}
