//! `cargo xtask deploy | destroy | rollback N | versions | trigger | maintenance`: the
//! client of the control plane (control-plane/API.md, "Client"). Exit codes: 0 done, 1 the
//! control plane refused or failed, 2 usage, validation or confirmation problems. The
//! token is read only from `MONITORS_API_TOKEN` and never printed.

mod api;
mod config;
mod diff;
mod git;
mod maintenance;
mod preview;
mod trigger;
mod versions;

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command, ExitCode};

use anyhow::{Context, anyhow};
use monitor_spec::api::{DeployRequest, Git};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use api::{Api, Body};
use config::{Args, Format, Token};
pub(crate) use config::{ClientCommand, usage_error};
use diff::DiffText;

/// Exit code: the control plane refused or failed.
const EXIT_REMOTE: u8 = 1;
/// Exit code: usage, local validation or confirmation problems.
const EXIT_LOCAL: u8 = 2;
/// The most bytes of an error message printed (1 MiB: 100 problems of 4 KiB fit).
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// An error with the exit code it ends the command with.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    /// The control plane refused or failed: exit 1.
    pub(crate) fn remote(error: anyhow::Error) -> Failure {
        Failure {
            code: EXIT_REMOTE,
            error,
        }
    }

    /// A local problem (usage, validation, confirmation): exit 2.
    pub(crate) fn local(error: anyhow::Error) -> Failure {
        Failure {
            code: EXIT_LOCAL,
            error,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::local(error)
    }
}

type Outcome = Result<ExitCode, Failure>;

/// Runs `deploy`, `destroy` or `rollback`; prints its own errors (with the token, should
/// any message hold it, redacted) and returns the exit code.
pub fn run(command: &ClientCommand) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let args = command.args();
    let outcome = match command {
        ClientCommand::Deploy(_) => deploy(&args, &env),
        ClientCommand::Destroy(_) => destroy(&args, &env),
        ClientCommand::Rollback(_) => rollback(&args, &env),
        ClientCommand::Versions(_) => versions::run(&args, &env),
        ClientCommand::Trigger(flags) => trigger::run(&args, flags, &env),
        ClientCommand::Maintenance(flags) => maintenance::run(&args, flags, &env),
    };
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            let text = format!("error: {:#}", failure.error);
            let text = match Token::from_env(&env) {
                Ok(token) => token.redact(&text),
                Err(_) => text,
            };
            // Every server string was shown through `api::shown` already; this is the last
            // guard for whatever else a message quotes (a path, a cause from a library).
            eprintln!(
                "{}",
                monitor_spec::escape::printable_lines(&text, MAX_MESSAGE_BYTES)
            );
            ExitCode::from(failure.code)
        }
    }
}

/// The client for the resolved URL and project, with the token from the environment.
fn connect(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Result<Api, Failure> {
    let target = config::resolve(args, env, &crate::workspace_root())?;
    let token = Token::from_env(env)?;
    Ok(Api::new(target, &token)?)
}

fn deploy(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Outcome {
    if args.format == Format::Json && !args.preview {
        return Err(Failure::local(anyhow!(
            "--format json prints a preview: add --preview (a deploy that applies prints text)"
        )));
    }
    // Resolve where to deploy before the (slow) build, so a missing setting fails fast.
    let api = connect(args, env)?;
    let (bundle_text, source) = match &args.bundle {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the bundle {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (export_monitors()?, "the workspace's monitors".to_owned()),
    };
    let git = git::metadata(&crate::workspace_root(), env);
    let (count, body) = deploy_body(&bundle_text, &source, git)?;

    eprintln!(
        "deploying {count} monitor{} from {source} to project `{}` at {}",
        plural(count),
        api.project(),
        api.base()
    );
    let plan = api.deploy(&body, true, true)?;
    if args.preview {
        // Each change with its values: the current monitors from the control plane, the
        // new ones from the bundle, both in the stored form.
        let windows = &plan.diff.maintenance;
        let current = if plan.diff.updated.is_empty()
            && plan.diff.deleted.is_empty()
            && windows.updated.is_empty()
            && windows.deleted.is_empty()
        {
            CurrentMonitors::default()
        } else {
            api.get(&["monitors"], api::Action::Read)?
        };
        let bundle: CurrentMonitors =
            serde_json::from_str(monitor_spec::json::strip_bom_str(&bundle_text).trim())
                .with_context(|| format!("{source} is not a bundle"))?;
        let shown = preview::Preview::new(
            &plan.diff,
            &preview::by_id(current.monitors),
            &preview::by_id(bundle.monitors),
        )
        .with_windows(
            &preview::by_id(current.maintenance),
            &preview::by_id(bundle.maintenance),
        );
        match args.format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&shown).context("cannot write the preview")?
            ),
            Format::Text => {
                println!("preview for project `{}`:", api.project());
                print!("{}", shown.render());
                println!("preview only: nothing was applied");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("plan for project `{}`:", api.project());
    print!("{}", plan.diff.render(false));
    if plan.diff.is_noop() {
        println!(
            "nothing to deploy: project `{}` already has these monitors{}",
            api.project(),
            version_note(plan.version)
        );
        return Ok(ExitCode::SUCCESS);
    }

    let mut prune = true;
    let deletions = plan.diff.deleted.len();
    if deletions > 0 && !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::local(anyhow!(
                "the deploy would delete {deletions} monitor{} ({}); pass --force to delete them (no terminal to ask on); nothing was applied",
                plural(deletions),
                plan.diff
                    .deleted
                    .iter()
                    .map(|id| api::shown(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let answer = ask(&format!(
            "delete {deletions} monitor{}? [y/N] ",
            plural(deletions)
        ))?;
        if matches!(answer.to_lowercase().as_str(), "y" | "yes") {
            eprintln!("deleting them");
        } else {
            prune = false;
            eprintln!(
                "keeping the {deletions} monitor{} the bundle no longer has",
                plural(deletions)
            );
            if plan.diff.created.is_empty()
                && plan.diff.updated.is_empty()
                && plan.diff.maintenance.is_empty()
            {
                println!("nothing else to deploy; nothing was applied");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }

    let done = api.deploy(&body, false, prune)?;
    let mut expected = plan.diff.clone();
    if !prune {
        expected.kept = std::mem::take(&mut expected.deleted);
    }
    if done.diff != expected {
        println!("the project changed since the plan; what was applied:");
        print!("{}", done.diff.render(true));
    }
    if done.applied {
        println!(
            "deployed version {} to project `{}`: {}",
            done.version
                .map_or_else(|| "?".to_owned(), |v| v.to_string()),
            api.project(),
            done.diff.summary(true)
        );
    } else {
        println!(
            "nothing changed: project `{}` already had these monitors{}",
            api.project(),
            version_note(done.version)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn destroy(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Outcome {
    let api = connect(args, env)?;
    if !args.force {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::local(anyhow!(
                "destroy removes every monitor of project `{}`; pass --force (no terminal to ask on); nothing was removed",
                api.project()
            )));
        }
        let n = api.monitors()?.len();
        if n == 0 {
            println!(
                "project `{}` has no monitors; nothing to destroy",
                api.project()
            );
            return Ok(ExitCode::SUCCESS);
        }
        let answer = ask(&format!(
            "delete all {n} monitor{} of project `{}` at {}? type yes to confirm: ",
            plural(n),
            api.project(),
            api.base()
        ))?;
        if answer != "yes" {
            return Err(Failure::local(anyhow!(
                "destroy cancelled; nothing was removed"
            )));
        }
    }
    let deleted = api.destroy()?.deleted;
    println!(
        "removed {deleted} monitor{} from project `{}` (the version history stays; `cargo xtask rollback N` brings a version back)",
        plural(usize::try_from(deleted).unwrap_or(usize::MAX)),
        api.project()
    );
    Ok(ExitCode::SUCCESS)
}

fn rollback(args: &Args, env: &dyn Fn(&str) -> Option<String>) -> Outcome {
    let version: u64 = match args.positional.as_slice() {
        [n] => n.parse().map_err(|_| {
            Failure::local(anyhow!(
                "`{n}` is not a version number; `cargo xtask rollback N` takes the version to bring back"
            ))
        })?,
        [] => {
            return Err(Failure::local(anyhow!(
                "rollback needs the version to bring back: cargo xtask rollback N (see --help)"
            )));
        }
        [_, extra, ..] => {
            return Err(Failure::local(anyhow!(
                "rollback takes one version, not also `{extra}` (see --help)"
            )));
        }
    };
    let api = connect(args, env)?;
    let done = api.rollback(version)?;
    println!(
        "rollback of project `{}` to version {version}:",
        api.project()
    );
    print!("{}", done.diff.render(true));
    if done.applied {
        println!(
            "version {} is now current, with the monitors of version {version}",
            done.version
                .map_or_else(|| "?".to_owned(), |v| v.to_string())
        );
    } else {
        println!(
            "nothing changed: version {version}'s monitors are already current{}",
            version_note(done.version)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds the monitors binary, validates the monitors (its output, naming file and line,
/// is shown when they are invalid) and returns the exported bundle's JSON.
fn export_monitors() -> Result<String, Failure> {
    eprintln!("building and validating the monitors");
    let binary = crate::build_monitors(None)?;
    let validate = Command::new(&binary)
        .arg("validate")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !validate.status.success() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&validate.stdout);
        let _ = err.write_all(&validate.stderr);
        return Err(Failure::local(anyhow!(
            "the monitors are invalid (above, with the file and line of each); nothing was sent"
        )));
    }
    // Warnings (a maintenance window's tag no monitor has) come before the summary.
    let _ = std::io::stderr().lock().write_all(&validate.stderr);
    let summary = String::from_utf8_lossy(&validate.stdout);
    if !summary.trim().is_empty() {
        eprintln!("{}", summary.trim());
    }
    let export = Command::new(&binary)
        .arg("export")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !export.status.success() {
        let _ = std::io::stderr().lock().write_all(&export.stderr);
        return Err(Failure::local(anyhow!(
            "exporting the monitors failed (above); nothing was sent"
        )));
    }
    String::from_utf8(export.stdout)
        .map_err(|_| Failure::local(anyhow!("`monitors export` wrote text that is not UTF-8")))
}

/// The body of a deploy of `bundle_text` (read from `source`) and how many monitors it
/// holds. The bundle's text goes as it is, byte for byte, inside the request, without a
/// byte order mark an editor may have put first.
fn deploy_body(bundle_text: &str, source: &str, git: Git) -> Result<(usize, Body), Failure> {
    let bundle_text = monitor_spec::json::strip_bom_str(bundle_text).trim();
    let count = check_bundle(bundle_text, source)?;
    let bundle = serde_json::from_str::<&RawValue>(bundle_text)
        .with_context(|| format!("{source} is not JSON"))?;
    let request = DeployRequest {
        bundle,
        git: Some(git),
    };
    let request = serde_json::to_vec(&request).context("cannot write the deploy request")?;
    Ok((count, Body::new(request)?))
}

/// The shape of a bundle, its monitors counted but not read.
#[derive(Deserialize)]
struct BundleShape {
    monitors: Vec<IgnoredAny>,
}

/// Checks that `text` looks like a bundle (the control plane validates it fully) and
/// returns how many monitors it holds.
fn check_bundle(text: &str, source: &str) -> Result<usize, Failure> {
    serde_json::from_str::<IgnoredAny>(text).map_err(|e| {
        Failure::local(anyhow!(
            "{source} is not JSON: {e} (a bundle is what `cargo xtask export` writes)"
        ))
    })?;
    let bundle: BundleShape = serde_json::from_str(text).map_err(|_| {
        Failure::local(anyhow!(
            "{source} is not a bundle: expected {{\"schema_version\": 1, \"monitors\": [...]}}, as `cargo xtask export` writes"
        ))
    })?;
    Ok(bundle.monitors.len())
}

/// The monitors of `GET .../monitors` or of a bundle, as JSON.
#[derive(Debug, Default, Deserialize)]
struct CurrentMonitors {
    monitors: Vec<serde_json::Value>,
    /// The maintenance windows (absent when none).
    #[serde(default)]
    maintenance: Vec<serde_json::Value>,
}

/// Asks `question` on the terminal and returns the trimmed answer (empty at end of input).
fn ask(question: &str) -> Result<String, Failure> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question}")
        .and_then(|()| err.flush())
        .context("cannot write the question")?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the answer")?;
    Ok(line.trim().to_owned())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn version_note(version: Option<u64>) -> String {
    version.map_or_else(String::new, |v| format!(" (version {v})"))
}

#[cfg(test)]
mod tests;
