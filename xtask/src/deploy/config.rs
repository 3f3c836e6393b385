//! Where a deploy goes: the command line, then the environment, then `monitors.deploy.toml`
//! at the workspace root; and the token, which comes only from `MONITORS_API_TOKEN`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Url;
use reqwest::header::HeaderValue;

/// The file at the workspace root that names the control plane and the project.
pub(crate) const CONFIG_FILE: &str = "monitors.deploy.toml";
/// Environment variable holding the control plane's base URL.
pub(crate) const URL_VAR: &str = "MONITORS_API_URL";
/// Environment variable holding the project.
pub(crate) const PROJECT_VAR: &str = "MONITORS_PROJECT";
/// Environment variable holding the token (the only place the token is read from).
pub(crate) const TOKEN_VAR: &str = "MONITORS_API_TOKEN";

/// The parsed command line of `deploy`, `destroy` or `rollback`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Args {
    /// `--preview`: stop after the diff.
    pub preview: bool,
    /// `--force`: delete without asking.
    pub force: bool,
    /// `--bundle FILE`: deploy this bundle instead of building and exporting the monitors.
    pub bundle: Option<PathBuf>,
    /// `--url URL`.
    pub url: Option<String>,
    /// `--project P`.
    pub project: Option<String>,
    /// The positional argument (`rollback N`).
    pub positional: Vec<String>,
    /// `--help`.
    pub help: bool,
}

/// Parses the arguments of `command`; each command accepts only its own flags.
pub(crate) fn parse_args(command: &str, args: &[String]) -> Result<Args> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let allowed = match (command, flag) {
            (_, "--help" | "-h" | "--url" | "--project") => true,
            ("deploy", "--preview" | "--bundle") => true,
            ("deploy" | "destroy", "--force") => true,
            _ => !flag.starts_with('-'),
        };
        if !allowed {
            bail!("`{command}` does not take `{flag}`");
        }
        let mut value = |name: &str| -> Result<String> {
            match inline.clone().or_else(|| it.next().cloned()) {
                Some(v) if !v.is_empty() => Ok(v),
                _ => Err(anyhow!("`{name}` needs a value")),
            }
        };
        match flag {
            "--help" | "-h" => out.help = true,
            "--preview" => out.preview = true,
            "--force" => out.force = true,
            "--bundle" => out.bundle = Some(PathBuf::from(value("--bundle")?)),
            "--url" => out.url = Some(value("--url")?),
            "--project" => out.project = Some(value("--project")?),
            _ => out.positional.push(arg.clone()),
        }
        if inline.is_some() && matches!(flag, "--help" | "-h" | "--preview" | "--force") {
            bail!("`{flag}` takes no value");
        }
    }
    Ok(out)
}

/// What `monitors.deploy.toml` holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FileConfig {
    /// `url = "..."`.
    pub url: Option<String>,
    /// `project = "..."`.
    pub project: Option<String>,
}

/// Parses the two `key = "value"` lines of `monitors.deploy.toml` (comments and blank
/// lines allowed); `name` is used in messages.
pub(crate) fn parse_file(name: &str, text: &str) -> Result<FileConfig> {
    let mut out = FileConfig::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || format!("{name}:{}", i + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, rest)) = line.split_once('=') else {
            bail!("{}: expected `key = \"value\"`", at());
        };
        let key = key.trim();
        let slot = match key {
            "url" => &mut out.url,
            "project" => &mut out.project,
            "token" | "api_token" => bail!(
                "{}: the token is read only from {TOKEN_VAR}; remove it from this file (and rotate it if the file was shared)",
                at()
            ),
            other => bail!(
                "{}: unknown key `{other}` (the keys are url and project)",
                at()
            ),
        };
        let rest = rest.trim();
        let quote = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => bail!("{}: the value of `{key}` must be a quoted string", at()),
        };
        let inner = &rest[1..];
        let Some(end) = inner.find(quote) else {
            bail!("{}: the value of `{key}` has no closing quote", at());
        };
        let (value, tail) = (&inner[..end], inner[end + 1..].trim());
        if !tail.is_empty() && !tail.starts_with('#') {
            bail!("{}: unexpected `{tail}` after the value of `{key}`", at());
        }
        if quote == '"' && value.contains('\\') {
            bail!("{}: escapes are not supported in `{key}`", at());
        }
        if slot.is_some() {
            bail!("{}: `{key}` is set twice", at());
        }
        *slot = Some(value.to_owned());
    }
    Ok(out)
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
