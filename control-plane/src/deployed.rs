//! The current monitors of each project and its declared maintenance windows, parsed once
//! per version and shared by the assignments, the results' ingestion, the status, the
//! metrics and the status page.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use monitor_spec::TcpMonitor;
use monitor_spec::maintenance::MaintenanceWindow;
use serde_json::value::RawValue;

use crate::hash::sha256_hex;
use crate::monitor_set::MonitorSet;
use crate::store::{Store, StoreError};

/// A deployed monitor: its spec, and the canonical JSON it is stored as.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The spec.
    pub spec: TcpMonitor,
    /// Its canonical JSON, as `GET monitors` returns it.
    pub json: Box<RawValue>,
    /// SHA-256 hex of the canonical JSON.
    pub hash: String,
}

impl PartialEq for Deployed {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec && self.json.get() == other.json.get() && self.hash == other.hash
    }
}

impl Deployed {
    /// The monitor's id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }
}

/// The parsed current set of each project, keyed by the version it was read at: every
/// change of the set makes a new version, so a cached set is fresh while the version is
/// the current one.
#[derive(Debug, Default)]
pub struct DeployedCache(Mutex<HashMap<String, Cached>>);

/// A project's current monitors, sorted by id, and the windows its version declares.
pub type Current = (Arc<Vec<Deployed>>, Arc<Vec<MaintenanceWindow>>);

/// A project's monitors and declared windows, and the version they were read at.
type Cached = (Option<u64>, Arc<Vec<Deployed>>, Arc<Vec<MaintenanceWindow>>);

impl DeployedCache {
    /// The current monitors of `project`, sorted by id. Blocking (reads the store).
    pub fn get(&self, store: &dyn Store, project: &str) -> Result<Arc<Vec<Deployed>>, StoreError> {
        Ok(self.with_windows(store, project)?.0)
    }

    /// The current monitors of `project`, sorted by id, and the maintenance windows the
    /// current version declares. Blocking (reads the store).
    pub fn with_windows(&self, store: &dyn Store, project: &str) -> Result<Current, StoreError> {
        let version = store.current_version(project)?;
        if let Some((cached, set, windows)) = self.lock().get(project)
            && *cached == version
        {
            return Ok((Arc::clone(set), Arc::clone(windows)));
        }
        let (version, set) = store.current_set(project)?;
        let parsed = Arc::new(parse(&set)?);
        let windows = Arc::new(
            set.maintenance()
                .map_err(|e| StoreError::Corrupt(format!("maintenance windows: {e}")))?,
        );
        self.lock().insert(
            project.to_owned(),
            (version, Arc::clone(&parsed), Arc::clone(&windows)),
        );
        Ok((parsed, windows))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads every monitor of a stored set, sorted by id.
pub fn parse(set: &MonitorSet) -> Result<Vec<Deployed>, StoreError> {
    set.raws()
        .map(|(id, json)| {
            let spec: TcpMonitor = serde_json::from_str(json.get())
                .map_err(|e| StoreError::Corrupt(format!("monitor `{id}`: {e}")))?;
            Ok(Deployed {
                spec,
                json: json.to_owned(),
                hash: sha256_hex(json.get().as_bytes()),
            })
        })
        .collect()
}
