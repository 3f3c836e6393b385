//! Where a deploy goes: the command line (parsed with clap), then the environment, then
//! `monitors.deploy.toml` at the workspace root (parsed with toml); and the token, which
//! comes only from `MONITORS_API_TOKEN`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::builder::NonEmptyStringValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use reqwest::Url;
use reqwest::header::HeaderValue;
use serde::Deserialize;

/// The file at the workspace root that names the control plane and the project.
pub(crate) const CONFIG_FILE: &str = "monitors.deploy.toml";
/// Environment variable holding the control plane's base URL.
pub(crate) const URL_VAR: &str = "MONITORS_API_URL";
/// Environment variable holding the project.
pub(crate) const PROJECT_VAR: &str = "MONITORS_PROJECT";
/// Environment variable holding the token (the only place the token is read from).
pub(crate) const TOKEN_VAR: &str = "MONITORS_API_TOKEN";

/// Where a command goes, when the flags say it.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct TargetFlags {
    /// The control plane's base URL (else MONITORS_API_URL, else monitors.deploy.toml).
    #[arg(long, value_name = "URL", value_parser = NonEmptyStringValueParser::new())]
    url: Option<String>,
    /// The project (else MONITORS_PROJECT, else monitors.deploy.toml).
    #[arg(long, value_name = "P", value_parser = NonEmptyStringValueParser::new())]
    project: Option<String>,
}

/// The flags of `deploy`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeployFlags {
    /// Stop after showing what would change.
    #[arg(long)]
    preview: bool,
    /// Delete monitors the bundle no longer has without asking.
    #[arg(long)]
    force: bool,
    /// Send this bundle instead of building, validating and exporting the monitors.
    #[arg(long, value_name = "FILE", value_parser = NonEmptyStringValueParser::new())]
    bundle: Option<String>,
    /// How --preview prints the change: text, or json for review bots (with --preview)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    target: TargetFlags,
}

/// How a change or a list is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// For people.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// The arguments of `versions`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct VersionsFlags {
    /// Nothing to list every version; `show N` for version N's change against the one
    /// before it
    #[arg(value_name = "show N")]
    words: Vec<String>,
    /// Text for people, or json
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    target: TargetFlags,
}

/// The flags of `trigger`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TriggerFlags {
    /// Only monitors whose id or name matches this regular expression
    #[arg(long, value_name = "RE")]
    pub(crate) grep: Option<String>,
    /// Only monitors with this tag (repeatable: any of them)
    #[arg(long = "tag", value_name = "T")]
    pub(crate) tags: Vec<String>,
    /// Only in this location (repeatable)
    #[arg(long = "location", value_name = "L")]
    pub(crate) locations: Vec<String>,
    /// Wait for the results and print them
    #[arg(long)]
    pub(crate) wait: bool,
    /// How long --wait waits, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub(crate) timeout: u64,
    /// Exit 1 when a result is degraded, too
    #[arg(long)]
    pub(crate) fail_on_degraded: bool,
    /// Render the results through the monitors binary's reporter, optionally into a file:
    /// human, json, junit, github, prometheus (repeatable; needs --wait)
    #[arg(
        long = "reporter",
        short,
        value_name = "NAME[=FILE]",
        requires = "wait"
    )]
    pub(crate) reporters: Vec<String>,
    /// Write the reporter's output (the last one given without a file) to this file
    #[arg(long, short, value_name = "FILE", requires = "reporters")]
    pub(crate) output: Option<std::path::PathBuf>,
    #[command(flatten)]
    target: TargetFlags,
}

/// The arguments of `maintenance`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct MaintenanceFlags {
    #[command(subcommand)]
    pub(crate) command: MaintenanceCommand,
}

/// The commands of `maintenance`.
#[derive(Debug, Clone, clap::Subcommand)]
pub(crate) enum MaintenanceCommand {
    /// Open an ad-hoc window now over the monitors with --tag or --monitor, --for 30m
    ///
    /// Checks of the covered monitors still run and are stored, marked as in
    /// maintenance: they page nobody and count against no uptime until the window ends
    /// (after --for, or `cargo xtask maintenance end ID`).
    #[command(after_help = AFTER_HELP)]
    Start(StartFlags),
    /// List the deployed and ad-hoc windows open now or later (--format json)
    #[command(after_help = AFTER_HELP)]
    List(ListFlags),
    /// End an ad-hoc window now (end ID); deployed windows end by deploying without them
    #[command(after_help = AFTER_HELP)]
    End(EndFlags),
}

/// The flags of `maintenance start`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(
    clap::ArgGroup::new("selector")
        .args(["tags", "monitors"])
        .required(true)
        .multiple(true)
))]
pub(crate) struct StartFlags {
    /// Cover the monitors with this tag (repeatable)
    #[arg(long = "tag", value_name = "T")]
    pub(crate) tags: Vec<String>,
    /// Cover the monitor with this id (repeatable)
    #[arg(long = "monitor", value_name = "ID")]
    pub(crate) monitors: Vec<String>,
    /// How long the window lasts: 30m, 2h, 1d (1 minute to 7 days)
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_for)]
    pub(crate) minutes: u32,
    /// The name shown on the status pages (default: the generated id)
    #[arg(long, value_name = "N")]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    target: TargetFlags,
}

/// `--for`, read by the spec's own rule.
fn parse_for(text: &str) -> Result<u32, String> {
    monitor_spec::maintenance::parse_minutes(text)
}

/// The flags of `maintenance list`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ListFlags {
    /// Text for people, or json (the control plane's `WindowList`)
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    target: TargetFlags,
}

/// The arguments of `maintenance end`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct EndFlags {
    /// The ad-hoc window's id, as `start` and `list` print it
    #[arg(value_name = "ID", value_parser = NonEmptyStringValueParser::new())]
    pub(crate) id: String,
    #[command(flatten)]
    target: TargetFlags,
}

/// The flags of `destroy`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DestroyFlags {
    /// Remove the monitors without asking.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    target: TargetFlags,
}

/// The arguments of `rollback`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RollbackFlags {
    /// The version to make current again.
    #[arg(value_name = "N")]
    version: Vec<String>,
    #[command(flatten)]
    target: TargetFlags,
}

/// The commands of the control plane's client.
#[derive(Debug, Clone, clap::Subcommand)]
#[command(after_help = AFTER_HELP)]
pub(crate) enum ClientCommand {
    /// Deploy the monitors to the control plane (--preview, --force, --bundle FILE).
    ///
    /// Builds, validates and exports the monitors (or sends --bundle FILE), shows what
    /// would change, then applies it. --preview stops after the diff. Deleting monitors
    /// needs --force, or a yes on a terminal.
    #[command(after_help = AFTER_HELP)]
    Deploy(DeployFlags),
    /// Remove every monitor of the project from the control plane (--force).
    ///
    /// The version history stays. Needs --force, or typing yes on a terminal.
    #[command(after_help = AFTER_HELP)]
    Destroy(DestroyFlags),
    /// Make version N current again (rollback N).
    ///
    /// Version N's monitors become current again, as a new version.
    #[command(after_help = AFTER_HELP)]
    Rollback(RollbackFlags),
    /// List the project's versions, or show one's change (versions show N).
    ///
    /// Each version with its time, git commit, branch, author and monitor count, newest
    /// first; `show N` prints version N's monitors created, updated (old → new per field)
    /// and deleted against the version before it.
    #[command(after_help = AFTER_HELP)]
    Versions(VersionsFlags),
    /// Run the matching deployed monitors once, now, in each of their locations (--wait).
    ///
    /// The control plane queues one immediate run of each monitor matching --grep, --tag
    /// and --location in each of its live locations; agents take them at once, outside the
    /// schedule. --wait prints the results as they come (exit 1 when one failed or is
    /// missing after --timeout); without it, the trigger id and its runs.
    #[command(after_help = AFTER_HELP)]
    Trigger(TriggerFlags),
    /// Open, list and end maintenance windows (start --tag T --for 30m, list, end ID).
    ///
    /// Checks of monitors in a window still run and are stored, marked as in maintenance,
    /// and count against no uptime. Deployed windows come from `maintenance!`; ad-hoc ones
    /// are opened here for a planned restart and end after --for or with `end ID`.
    #[command(after_help = AFTER_HELP)]
    Maintenance(MaintenanceFlags),
}

/// What the help of the client's commands ends with.
const AFTER_HELP: &str = "\
The URL and project come from --url/--project, else MONITORS_API_URL/MONITORS_PROJECT,
else monitors.deploy.toml at the workspace root (url = \"...\", project = \"...\").
The token comes only from MONITORS_API_TOKEN.
Exit codes: 0 done, 1 the control plane refused or failed, 2 usage, validation or
confirmation problems.";

/// The client's command line alone, for `parse_args`.
#[cfg(test)]
#[derive(Debug, clap::Parser)]
#[command(name = "cargo xtask", no_binary_name = true)]
pub(crate) struct ClientCli {
    #[command(subcommand)]
    pub(crate) command: ClientCommand,
}

impl ClientCommand {
    /// The parsed arguments.
    pub(crate) fn args(&self) -> Args {
        match self.clone() {
            ClientCommand::Deploy(f) => Args {
                preview: f.preview,
                force: f.force,
                bundle: f.bundle.map(PathBuf::from),
                format: f.format,
                url: f.target.url,
                project: f.target.project,
                positional: Vec::new(),
            },
            ClientCommand::Destroy(f) => Args {
                force: f.force,
                url: f.target.url,
                project: f.target.project,
                ..Args::default()
            },
            ClientCommand::Rollback(f) => Args {
                url: f.target.url,
                project: f.target.project,
                positional: f.version,
                ..Args::default()
            },
            ClientCommand::Versions(f) => Args {
                url: f.target.url,
                project: f.target.project,
                positional: f.words,
                format: f.format,
                ..Args::default()
            },
            ClientCommand::Trigger(f) => Args {
                url: f.target.url,
                project: f.target.project,
                ..Args::default()
            },
            ClientCommand::Maintenance(f) => match f.command {
                MaintenanceCommand::Start(f) => Args {
                    url: f.target.url,
                    project: f.target.project,
                    ..Args::default()
                },
                MaintenanceCommand::List(f) => Args {
                    url: f.target.url,
                    project: f.target.project,
                    format: f.format,
                    ..Args::default()
                },
                MaintenanceCommand::End(f) => Args {
                    url: f.target.url,
                    project: f.target.project,
                    positional: vec![f.id],
                    ..Args::default()
                },
            },
        }
    }
}

/// The parsed command line of `deploy`, `destroy`, `rollback` or `versions`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Args {
    /// `--preview`: stop after the diff.
    pub preview: bool,
    /// `--force`: delete without asking.
    pub force: bool,
    /// `--bundle FILE`: deploy this bundle instead of building and exporting the monitors.
    pub bundle: Option<PathBuf>,
    /// `--format text|json`.
    pub format: Format,
    /// `--url URL`.
    pub url: Option<String>,
    /// `--project P`.
    pub project: Option<String>,
    /// The positional arguments (`rollback N`, `versions show N`).
    pub positional: Vec<String>,
}

/// Parses the arguments of `command` as `cargo xtask` does; each command accepts only its
/// own flags.
#[cfg(test)]
pub(crate) fn parse_args(command: &str, args: &[String]) -> Result<Args> {
    use clap::Parser;
    let words = std::iter::once(command).chain(args.iter().map(String::as_str));
    let cli = ClientCli::try_parse_from(words).map_err(|e| anyhow!(usage_error(&e, command)))?;
    Ok(cli.command.args())
}

/// The message of a command line `command` refused, naming the flag at fault.
pub(crate) fn usage_error(e: &clap::Error, command: &str) -> String {
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.split_whitespace().next().unwrap_or_default(),
        _ => "",
    };
    match e.kind() {
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            format!("`{command}` does not take `{arg}`{}", crate::tip(e))
        }
        ErrorKind::UnknownArgument => format!("`{command}` takes no argument `{arg}`"),
        ErrorKind::InvalidValue => format!("`{arg}` needs a value"),
        ErrorKind::TooManyValues => format!("`{arg}` takes no value"),
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    }
}

/// What `monitors.deploy.toml` holds.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    /// `url = "..."`.
    pub url: Option<String>,
    /// `project = "..."`.
    pub project: Option<String>,
}

/// Parses `monitors.deploy.toml` (`url = "..."` and `project = "..."`); `name` is used in
/// messages, which name the line at fault and never quote its value.
pub(crate) fn parse_file(name: &str, text: &str) -> Result<FileConfig> {
    toml::from_str(text).map_err(|e| anyhow!(file_error(name, text, &e)))
}

/// The message of a `monitors.deploy.toml` that does not parse: `NAME:LINE: what is wrong`.
/// The TOML error's own text quotes the line, which may hold a token: only its message is
/// used.
fn file_error(name: &str, text: &str, e: &toml::de::Error) -> String {
    let span = e.span().unwrap_or(0..0);
    let line = text
        .get(..span.start)
        .map_or(1, |t| t.matches('\n').count() + 1);
    let at = format!("{name}:{line}");
    let message = e.message();
    let key = text.get(span).unwrap_or_default().trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        return if matches!(field, "token" | "api_token") {
            format!(
                "{at}: the token is read only from {TOKEN_VAR}; remove it from this file (and rotate it if the file was shared)"
            )
        } else {
            format!("{at}: unknown key `{field}` (the keys are url and project)")
        };
    }
    if message.starts_with("duplicate key") {
        format!("{at}: `{key}` is set twice")
    } else if message.contains("must be quoted") {
        format!("{at}: the value must be a quoted string")
    } else if message.contains("expected `\"`") || message.contains("expected `'`") {
        format!("{at}: the value has no closing quote")
    } else if message.contains("expected `=`") {
        format!("{at}: expected `key = \"value\"`")
    } else {
        format!("{at}: {message}")
    }
}

/// The control plane and project a command talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// Base URL, such as `https://monitors.example.com` (a path prefix is kept).
    pub url: Url,
    /// The project.
    pub project: String,
}

/// Resolves the URL and project: flags, then `env`, then `monitors.deploy.toml` in `root`.
pub(crate) fn resolve(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
    root: &Path,
) -> Result<Target> {
    let from_env = |var: &str| {
        env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut url = args.url.clone().or_else(|| from_env(URL_VAR));
    let mut project = args.project.clone().or_else(|| from_env(PROJECT_VAR));
    if url.is_none() || project.is_none() {
        let path = root.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file = parse_file(CONFIG_FILE, &text)?;
                url = url.or(file.url);
                project = project.or(file.project);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    let url = url.ok_or_else(|| {
        anyhow!(
            "no control plane URL: pass --url URL, set {URL_VAR}, or write `url = \"...\"` in {CONFIG_FILE} at the workspace root"
        )
    })?;
    let project = project.ok_or_else(|| {
        anyhow!(
            "no project: pass --project P, set {PROJECT_VAR}, or write `project = \"...\"` in {CONFIG_FILE} at the workspace root"
        )
    })?;
    let parsed = Url::parse(url.trim())
        .with_context(|| format!("the control plane URL `{url}` is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.cannot_be_a_base() {
        bail!("the control plane URL `{url}` must start with http:// or https://");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        bail!("the control plane URL `{url}` must not have a query or a fragment");
    }
    if parsed.password().is_some() || !parsed.username().is_empty() {
        bail!("the control plane URL must not hold credentials; the token goes in {TOKEN_VAR}");
    }
    let project = project.trim().to_owned();
    if project.is_empty() || project.chars().any(char::is_control) {
        bail!("the project name must be non-empty and printable");
    }
    Ok(Target {
        url: parsed,
        project,
    })
}

/// The token, kept out of every message: its `Debug` shows only that it is set.
pub(crate) struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token from `env` (`MONITORS_API_TOKEN`), surrounding whitespace removed.
    pub(crate) fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Token> {
        match env(TOKEN_VAR).map(|t| t.trim().to_owned()) {
            Some(t) if !t.is_empty() => Ok(Token(t)),
            _ => bail!(
                "{TOKEN_VAR} is not set: create a token with `control-plane token create --project P --db PATH` and export it (the token is read only from this variable)"
            ),
        }
    }

    /// The `Authorization` header, marked sensitive.
    pub(crate) fn header(&self) -> Result<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            anyhow!(
                "{TOKEN_VAR} holds characters an HTTP header cannot carry; copy the token again"
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `text` with every occurrence of the token replaced by `<redacted>`.
    pub(crate) fn redact(&self, text: &str) -> String {
        redact_with(&self.0, text)
    }
}

/// `text` with every occurrence of `secret` replaced; secrets shorter than 4 bytes are
/// not worth garbling messages for (no real token is that short).
pub(crate) fn redact_with(secret: &str, text: &str) -> String {
    if secret.len() < 4 {
        text.to_owned()
    } else {
        text.replace(secret, "<redacted>")
    }
}
