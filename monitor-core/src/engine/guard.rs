//! What a check may take from the machine before it connects: the secrets its monitor
//! names, on the terms of the machine's [`SecretPolicy`] (environment variables, and
//! files resolved through their links and kept under the secret directory), and its share
//! of the runner's memory budget.
//!
//! A refused file gets one message per field whatever the file system holds outside the
//! secret directory: whether a path exists, is readable or is a link is never told.

use std::io::Read;
use std::path::{Path, PathBuf};

use tokio::sync::{Semaphore, SemaphorePermit};

use monitor_spec::secret::{FileAccess, SecretPolicy, SecretRef, secret_refs};
use monitor_spec::spec::{PemSource, TcpMonitor};

/// The memory budget of a runner unless `--memory-budget` says otherwise: 256 MiB, shared
/// by the checks in flight, each reserving its `max_response_bytes`.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 * 1024 * 1024;

/// The largest PEM file (`tls.ca`, `tls.client_cert`) a check reads: 1 MiB.
pub const MAX_PEM_FILE_BYTES: u64 = 1024 * 1024;

/// The message of every file a policy with a secret directory refuses: the same for a
/// path that exists, one that does not, one that climbs out and a link that leads out.
fn outside(field: &str) -> String {
    format!(
        "{field}: only files under this machine's secret directory (--secret-dir) are handed to monitors: name a file relative to it, without `..`"
    )
}

/// The first secret of `spec` the policy refuses, as the message of the config error
/// (field and rule). Files are resolved through their links, so a link under the secret
/// directory that leads out of it is refused too.
pub(crate) fn gate(policy: &SecretPolicy, spec: &TcpMonitor) -> Result<(), String> {
    for secret in secret_refs(spec) {
        match secret {
            SecretRef::Env { field, name } => policy
                .check_env(name)
                .map_err(|why| format!("{field}: {why}"))?,
            SecretRef::File { field, path } => {
                resolve(policy, field, path)?;
            }
        }
    }
    Ok(())
}

/// The path to open for the file `path` of `field`, or why it is refused.
pub(crate) fn resolve(policy: &SecretPolicy, field: &str, path: &str) -> Result<PathBuf, String> {
    let dir = match &policy.files {
        FileAccess::Under(dir) => dir,
        _ => {
            return policy
                .check_file(path)
                .map_err(|why| format!("{field}: {why}"));
        }
    };
    let lexical = policy.check_file(path).map_err(|_| outside(field))?;
    let root = std::fs::canonicalize(dir).map_err(|_| {
        format!("{field}: this machine's secret directory (--secret-dir) cannot be opened")
    })?;
    let resolved = match std::fs::canonicalize(&lexical) {
        Ok(resolved) => resolved,
        Err(_) => return Err(missing(field, path, &lexical, &root)),
    };
    policy
        .check_resolved(&resolved, Some(&root))
        .map_err(|_| outside(field))?;
    Ok(resolved)
}

/// Why a path that does not resolve is refused: [`outside`] when something is there (a
/// dangling link) or its nearest existing ancestor lies outside the secret directory, so
/// nothing is learnt of other directories; otherwise that the secret directory has no
/// such file.
fn missing(field: &str, path: &str, lexical: &Path, root: &Path) -> String {
    if std::fs::symlink_metadata(lexical).is_ok() {
        return outside(field);
    }
    let within = lexical
        .ancestors()
        .skip(1)
        .find_map(|up| std::fs::canonicalize(up).ok())
        .is_some_and(|up| up.starts_with(root));
    if within {
        format!(
            "{field}: the secret directory (--secret-dir) holds no file `{}`",
            path.escape_default()
        )
    } else {
        outside(field)
    }
}

/// The text of a PEM setting: inline, or a file read on the policy's terms, at most
/// [`MAX_PEM_FILE_BYTES`].
pub(crate) fn pem_text(
    policy: &SecretPolicy,
    field: &str,
    source: &PemSource,
) -> Result<String, String> {
    let path = match source {
        PemSource::Pem(text) => return Ok(text.clone()),
        PemSource::Path(path) => path,
    };
    read_bounded(policy, field, path, MAX_PEM_FILE_BYTES, "any PEM file")
}

/// The largest password file a check reads: 4 KiB.
pub const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// The password in the file `path` of `field` (its first line, without the line end),
/// read on the policy's terms; at most [`MAX_PASSWORD_FILE_BYTES`].
pub(crate) fn password_file(
    policy: &SecretPolicy,
    field: &str,
    path: &str,
) -> Result<String, String> {
    let text = read_bounded(policy, field, path, MAX_PASSWORD_FILE_BYTES, "a password")?;
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

/// The text of the file `path` of `field`, read on the policy's terms, refused when it is
/// larger than `max` bytes, which is more than `what` needs.
fn read_bounded(
    policy: &SecretPolicy,
    field: &str,
    path: &str,
    max: u64,
    what: &str,
) -> Result<String, String> {
    let open = resolve(policy, field, path)?;
    let shown = path.escape_default();
    let cannot = |e: std::io::Error| format!("{field}: cannot read `{shown}`: {e}");
    let mut text = String::new();
    std::fs::File::open(&open)
        .map_err(cannot)?
        .take(max + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > max {
        return Err(format!(
            "{field}: `{shown}` is larger than {max} bytes, more than {what} needs"
        ));
    }
    Ok(text)
}

/// The runner-wide memory budget: each check reserves its `max_response_bytes` (in KiB)
/// before it runs and gives it back when it ends.
#[derive(Debug)]
pub(crate) struct Budget {
    permits: Semaphore,
    kib: u32,
    bytes: u64,
}

impl Budget {
    /// A budget of `bytes` (at least 1 KiB).
    pub(crate) fn new(bytes: u64) -> Budget {
        let most = u64::try_from(Semaphore::MAX_PERMITS)
            .unwrap_or(u64::MAX)
            .min(u64::from(u32::MAX));
        let kib = (bytes / 1024).clamp(1, most);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX);
        Budget {
            permits: Semaphore::new(kib as usize),
            kib,
            bytes,
        }
    }

    /// Reserves what a check of `spec` may hold, waiting for checks in flight to give
    /// some back; refused (with the message of the config error) when the monitor's cap
    /// alone is more than the whole budget.
    pub(crate) async fn reserve(&self, spec: &TcpMonitor) -> Result<SemaphorePermit<'_>, String> {
        let need = spec.max_response_bytes.div_ceil(1024).max(1);
        if need > self.kib {
            return Err(format!(
                "max_response_bytes: {} bytes is more than this runner's whole memory budget ({} bytes, --memory-budget)",
                spec.max_response_bytes, self.bytes
            ));
        }
        self.permits
            .acquire_many(need)
            .await
            .map_err(|_| "the memory budget is closed".to_owned())
    }
}
