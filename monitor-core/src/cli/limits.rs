//! What the commands that run checks share: the secret policy and memory budget flags of
//! `run` and `watch` (the agent has its own, stricter defaults), sizes such as `256MiB`,
//! and the bound on a file the command line reads. (No import of the CLI's errors: the
//! agent uses these too.)

use std::path::{Path, PathBuf};

use clap::Args;

use monitor_spec::secret::{FileAccess, SecretPolicy};

/// The most a file the command line reads (`--bundle`) may hold when it is not a regular
/// file of a known size (a pipe, a device): 64 MiB.
pub const MAX_INPUT_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// The most a regular file given as `--bundle` may hold: 2 GiB (a bundle of a million
/// monitors is about 1.2 GB).
pub const MAX_BUNDLE_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The secrets and memory of a local run (`run`, `watch`).
#[derive(Debug, Args)]
pub(crate) struct LocalLimits {
    /// Hand monitors only environment variables starting with PREFIX (a Redis recipe's
    /// password_env) [default: any variable except MONITORS_AGENT_TOKEN]
    #[arg(long, value_name = "PREFIX")]
    secret_env_prefix: Option<String>,
    /// Hand monitors only files under DIR (tls.ca, tls.client_cert), relative paths
    /// taken from it, links resolved and kept inside [default: any file; relative paths
    /// from the current directory]
    #[arg(long, value_name = "DIR")]
    secret_dir: Option<PathBuf>,
    /// Memory the checks in flight share: each reserves its max_response_bytes before it
    /// runs, and a monitor whose cap alone is larger fails with kind config (bytes, or
    /// with KiB, MiB or GiB)
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    memory_budget: u64,
}

impl LocalLimits {
    /// The secret policy the flags ask for: permissive unless they narrow it.
    pub(crate) fn policy(&self) -> Result<SecretPolicy, String> {
        let mut policy = SecretPolicy::permissive();
        if let Some(prefix) = &self.secret_env_prefix {
            policy.env_prefix = Some(nonempty_prefix(prefix)?);
        }
        if let Some(dir) = &self.secret_dir {
            policy.files = FileAccess::Under(secret_dir(dir)?);
        }
        Ok(policy)
    }

    /// The memory budget in bytes.
    pub(crate) fn memory_budget(&self) -> u64 {
        self.memory_budget
    }
}

/// A secret prefix, refused when empty (it would hand out every variable).
pub(crate) fn nonempty_prefix(prefix: &str) -> Result<String, String> {
    if prefix.is_empty() {
        Err("--secret-env-prefix must not be empty: it would hand every environment variable to the monitors".to_owned())
    } else {
        Ok(prefix.to_owned())
    }
}

/// A secret directory: it must exist and be a directory; returned as given.
pub(crate) fn secret_dir(dir: &Path) -> Result<PathBuf, String> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(dir.to_owned()),
        Ok(_) => Err(format!("--secret-dir {} is not a directory", dir.display())),
        Err(e) => Err(format!("--secret-dir {}: {e}", dir.display())),
    }
}

/// A size: bytes, or a number with `KiB`, `MiB` or `GiB` (`K`, `M`, `G` too); at least
/// 1 KiB.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as 268435456, 256MiB or 1GiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`: use KiB, MiB or GiB")),
    };
    let bytes = number
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))?;
    if bytes < 1024 {
        return Err(format!("`{text}` is less than 1 KiB"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_units() {
        let check = |text: &str, want: Result<u64, ()>| {
            assert_eq!(parse_size(text).map_err(|_| ()), want, "{text}");
        };
        check("256MiB", Ok(256 << 20));
        check("1GiB", Ok(1 << 30));
        check("64k", Ok(64 << 10));
        check("1048576", Ok(1 << 20));
        check("1 MiB", Ok(1 << 20));
        check("", Err(()));
        check("12", Err(()));
        check("5TB", Err(()));
        check("MiB", Err(()));
        check("99999999999999999999GiB", Err(()));
    }

    #[test]
    fn prefixes_and_dirs_are_checked() {
        assert!(nonempty_prefix("").is_err());
        assert_eq!(nonempty_prefix("P_").unwrap(), "P_");
        assert!(secret_dir(Path::new("/nonexistent/monitors-secrets")).is_err());
        assert!(secret_dir(&std::env::temp_dir()).is_ok());
    }
}
