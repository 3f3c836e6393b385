//! What secrets a monitor may name, and the policy that decides whether a machine hands
//! them out: environment variables (a recipe's `password_env`, a login's
//! `password_env`) and files (`tls.ca`, `tls.client_cert`, a login's `password_file`). The checks here are lexical; the engine also resolves links before
//! it opens a file, and the control plane runs the same checks at deploy time.
//!
//! ```
//! use monitor_spec::secret::{SecretPolicy, SecretRef};
//!
//! let agent = SecretPolicy::agent(None, Some("/etc/monitors/secrets".into()));
//! assert!(agent.check_env("MONITORS_SECRET_REDIS").is_ok());
//! assert!(agent.check_env("HOME").is_err());
//! assert!(agent.check_env("MONITORS_AGENT_TOKEN").is_err());
//! assert!(agent.check_file("ca.pem").is_ok());
//! assert!(agent.check_file("/etc/shadow").is_err());
//! assert!(agent.check_file("../../etc/shadow").is_err());
//! ```

use std::path::{Component, Path, PathBuf};

use thiserror::Error;

use crate::recipe::Recipe;
use crate::spec::{PemSource, TcpMonitor};

/// The prefix an agent's secret environment variables carry unless `--secret-env-prefix`
/// says otherwise.
pub const DEFAULT_SECRET_ENV_PREFIX: &str = "MONITORS_SECRET_";

/// The environment variable holding an agent's token: never handed to a monitor, whatever
/// the policy.
pub const AGENT_TOKEN_ENV: &str = "MONITORS_AGENT_TOKEN";

/// Environment variables never handed to a monitor, whatever the policy: the agent's own
/// token.
pub const NEVER_SECRET_ENV: [&str; 1] = [AGENT_TOKEN_ENV];

/// A secret a monitor names, with the field that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef<'a> {
    /// An environment variable, such as a recipe's `password_env`.
    Env {
        /// The field, such as `recipe.password_env`.
        field: &'static str,
        /// The variable's name.
        name: &'a str,
    },
    /// A file, such as `tls.ca`'s `path`.
    File {
        /// The field, such as `tls.client_cert.key`.
        field: &'static str,
        /// The path as written in the monitor.
        path: &'a str,
    },
}

impl SecretRef<'_> {
    /// The field that names the secret.
    pub fn field(&self) -> &'static str {
        match self {
            SecretRef::Env { field, .. } | SecretRef::File { field, .. } => field,
        }
    }
}

/// Every secret `monitor` names, in field order.
pub fn secret_refs(monitor: &TcpMonitor) -> Vec<SecretRef<'_>> {
    let mut refs = Vec::new();
    if let Some(Recipe::Redis {
        password_env: Some(name),
        ..
    }) = &monitor.recipe
    {
        refs.push(SecretRef::Env {
            field: "recipe.password_env",
            name,
        });
    }
    if let Some(login) = monitor.recipe.as_ref().and_then(Recipe::login) {
        if let Some(name) = &login.password_env {
            refs.push(SecretRef::Env {
                field: "recipe.login.password_env",
                name,
            });
        }
        if let Some(path) = &login.password_file {
            refs.push(SecretRef::File {
                field: "recipe.login.password_file",
                path,
            });
        }
    }
    let tls = &monitor.tls;
    if let Some(PemSource::Path(path)) = &tls.ca {
        refs.push(SecretRef::File {
            field: "tls.ca",
            path,
        });
    }
    if let Some(client) = &tls.client_cert {
        if let PemSource::Path(path) = &client.cert {
            refs.push(SecretRef::File {
                field: "tls.client_cert.cert",
                path,
            });
        }
        if let PemSource::Path(path) = &client.key {
            refs.push(SecretRef::File {
                field: "tls.client_cert.key",
                path,
            });
        }
    }
    refs
}

/// Which files a monitor may name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAccess {
    /// Any file this process can read, relative paths from the working directory: the
    /// default of local runs (`monitors run`, `watch`).
    Any,
    /// Only files under this directory; relative paths are taken from it.
    Under(PathBuf),
    /// Only relative paths without `..`, to be taken from each agent's secret directory:
    /// what the control plane can check without knowing the directory.
    Relative,
    /// No file at all: an agent without `--secret-dir`.
    None,
}

/// Which environment variables and files this machine hands to the monitors it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPolicy {
    /// Variables a monitor may name: those starting with this prefix; `None` allows any
    /// (but never those in [`NEVER_SECRET_ENV`]).
    pub env_prefix: Option<String>,
    /// Files a monitor may name.
    pub files: FileAccess,
}

/// Why a secret a monitor names is not handed out. The message names the field and the
/// rule, and never tells whether a file exists.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretRefused {
    /// The variable does not carry the policy's prefix, or is the agent's own token.
    #[error(
        "`{name}` is not a secret this machine hands out: name an environment variable starting with `{prefix}`"
    )]
    Env {
        /// The variable's name (escaped).
        name: String,
        /// The prefix secrets must carry.
        prefix: String,
    },
    /// The variable is the agent's own token.
    #[error("`{0}` is never handed to a monitor")]
    Reserved(String),
    /// The path leaves the secret directory, or files are not allowed at all.
    #[error("{0}")]
    File(String),
}

impl SecretPolicy {
    /// Any variable (but the agent token) and any file: local runs.
    pub fn permissive() -> SecretPolicy {
        SecretPolicy {
            env_prefix: None,
            files: FileAccess::Any,
        }
    }

    /// An agent's policy: variables starting with `prefix` (default
    /// [`DEFAULT_SECRET_ENV_PREFIX`]), files under `dir` (none without one).
    pub fn agent(prefix: Option<String>, dir: Option<PathBuf>) -> SecretPolicy {
        SecretPolicy {
            env_prefix: Some(prefix.unwrap_or_else(|| DEFAULT_SECRET_ENV_PREFIX.to_owned())),
            files: dir.map_or(FileAccess::None, FileAccess::Under),
        }
    }

    /// What the control plane checks at deploy time: variables starting with `prefix`,
    /// relative paths without `..`.
    pub fn deploy(prefix: Option<String>) -> SecretPolicy {
        SecretPolicy {
            env_prefix: Some(prefix.unwrap_or_else(|| DEFAULT_SECRET_ENV_PREFIX.to_owned())),
            files: FileAccess::Relative,
        }
    }

    /// Whether a monitor may read the variable `name`.
    pub fn check_env(&self, name: &str) -> Result<(), SecretRefused> {
        let shown = || name.escape_default().to_string();
        if NEVER_SECRET_ENV.contains(&name) {
            return Err(SecretRefused::Reserved(shown()));
        }
        match &self.env_prefix {
            Some(prefix) if !name.starts_with(prefix.as_str()) || name.len() == prefix.len() => {
                Err(SecretRefused::Env {
                    name: shown(),
                    prefix: prefix.escape_default().to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Whether a monitor may read the file `path`, and the path to open: relative paths
    /// are taken from the secret directory. Lexical only: whoever opens the file also
    /// resolves links and checks again with [`SecretPolicy::check_resolved`].
    pub fn check_file(&self, path: &str) -> Result<PathBuf, SecretRefused> {
        let p = Path::new(path);
        let climbs = p
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)));
        match &self.files {
            FileAccess::Any => Ok(p.to_path_buf()),
            FileAccess::None => Err(SecretRefused::File(
                "files are not handed to monitors here: start the agent with --secret-dir DIR and name a file relative to it"
                    .to_owned(),
            )),
            _ if path.is_empty() || path.contains('\0') || climbs => Err(SecretRefused::File(
                "name a file relative to the secret directory, without `..`".to_owned(),
            )),
            FileAccess::Relative if p.is_absolute() => Err(SecretRefused::File(
                "name a file relative to the agents' secret directory (--secret-dir), not an absolute path"
                    .to_owned(),
            )),
            FileAccess::Relative => Ok(p.to_path_buf()),
            FileAccess::Under(dir) => {
                let full = dir.join(p);
                if full.starts_with(dir) {
                    Ok(full)
                } else {
                    Err(SecretRefused::File(
                        "the file is outside the secret directory (--secret-dir)".to_owned(),
                    ))
                }
            }
        }
    }

    /// Checks a path after links were resolved, against the resolved secret directory
    /// (`dir`, itself canonical): the file must still lie under it.
    pub fn check_resolved(&self, resolved: &Path, dir: Option<&Path>) -> Result<(), SecretRefused> {
        match (&self.files, dir) {
            (FileAccess::Under(_), Some(dir)) if !resolved.starts_with(dir) => {
                Err(SecretRefused::File(
                    "the file is outside the secret directory (--secret-dir)".to_owned(),
                ))
            }
            _ => Ok(()),
        }
    }

    /// Every secret of `monitor` this policy refuses, as (field, reason).
    pub fn refused(&self, monitor: &TcpMonitor) -> Vec<(&'static str, SecretRefused)> {
        secret_refs(monitor)
            .into_iter()
            .filter_map(|r| {
                let checked = match &r {
                    SecretRef::Env { name, .. } => self.check_env(name),
                    SecretRef::File { path, .. } => self.check_file(path).map(|_| ()),
                };
                checked.err().map(|e| (r.field(), e))
            })
            .collect()
    }
}
