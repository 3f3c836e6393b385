//! The JSON bundle: every monitor of a project in one document, as `export` writes it,
//! `run --bundle` and `watch --bundle` read it, and the control plane receives it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::maintenance::{MaintenanceWindow, check_windows};
use crate::spec::{SCHEMA_VERSION, TcpMonitor};
use crate::validate::{ValidMonitor, ValidationError};

/// Every monitor of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    /// Version of the JSON form; must be [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The monitors, sorted by id.
    pub monitors: Vec<TcpMonitor>,
    /// Maintenance windows deployed with the monitors (at most
    /// [`crate::maintenance::MAX_WINDOWS`]); absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub maintenance: Vec<MaintenanceWindow>,
}

/// A bundle that cannot be used.
#[derive(Debug, Error)]
pub enum BundleError {
    /// The text is not JSON, or not a bundle at its top level (or, read by
    /// [`Bundle::from_json`], a monitor's shape is wrong); the path names the field, such
    /// as `monitors[3].target.port`.
    #[error(transparent)]
    Json(#[from] crate::json::JsonError),
    /// The bundle's version is not the one this build reads.
    #[error(
        "schema_version: unsupported bundle version {0}; this build reads version {SCHEMA_VERSION}"
    )]
    Version(u32),
    /// Monitors of the wrong shape or failing validation; every problem with its path
    /// inside the bundle, one a line.
    #[error("{}{}", if .0.len() == 1 { "1 problem makes the bundle invalid:".to_owned() } else { format!("{} problems make the bundle invalid:", .0.len()) }, .0.iter().map(|p| format!("\n  {p}")).collect::<String>())]
    Invalid(Vec<ValidationError>),
}

impl Bundle {
    /// A bundle of `monitors`, sorted by id.
    pub fn new(mut monitors: Vec<TcpMonitor>) -> Self {
        monitors.sort_by(|a, b| a.id.cmp(&b.id));
        Bundle {
            schema_version: SCHEMA_VERSION,
            monitors,
            maintenance: Vec::new(),
        }
    }

    /// The bundle as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Reads a bundle; shape errors name the path.
    pub fn from_json(text: &str) -> Result<Bundle, BundleError> {
        let bundle: Bundle = crate::json::read(text)?;
        if bundle.schema_version != SCHEMA_VERSION {
            return Err(BundleError::Version(bundle.schema_version));
        }
        Ok(bundle)
    }

    /// Validates every monitor and checks ids are unique; every problem is reported with
    /// its path inside the bundle.
    pub fn validate(&self) -> Result<Vec<ValidMonitor>, BundleError> {
        self.clone().into_valid()
    }

    /// [`Bundle::validate`], moving the monitors into the runnable set instead of copying
    /// them.
    pub fn into_valid(self) -> Result<Vec<ValidMonitor>, BundleError> {
        let mut problems = duplicates(
            self.monitors
                .iter()
                .enumerate()
                .map(|(i, m)| (m.id.as_str(), i)),
        );
        let mut valid = Vec::with_capacity(self.monitors.len());
        for (i, m) in self.monitors.into_iter().enumerate() {
            match m.into_valid() {
                Ok(v) => valid.push(v),
                Err(errors) => problems.extend(errors.0.into_iter().map(|e| {
                    (
                        i,
                        ValidationError {
                            path: format!("monitors[{i}].{}", e.path),
                            message: e.message,
                        },
                    )
                })),
            }
        }
        problems.extend(
            check_windows(&self.maintenance)
                .into_iter()
                .map(|p| (usize::MAX, p)),
        );
        if problems.is_empty() {
            Ok(valid)
        } else {
            problems.sort_by_key(|(i, _)| *i);
            Err(BundleError::Invalid(
                problems.into_iter().map(|(_, p)| p).collect(),
            ))
        }
    }
}

/// A problem at `monitors[j].id` for each monitor `j` whose id an earlier one has, given
/// each id with its place in the bundle.
pub(crate) fn duplicates<'a>(
    ids: impl Iterator<Item = (&'a str, usize)>,
) -> Vec<(usize, ValidationError)> {
    // Sorted by id, then by place: each repeat follows the first place of its id.
    let mut ids: Vec<(&str, usize)> = ids.collect();
    ids.sort_unstable();
    let mut out = Vec::new();
    let mut first = None;
    for pair in ids.windows(2) {
        let ((id, at), (again, second)) = (pair[0], pair[1]);
        if id != again {
            first = None;
            continue;
        }
        let first = *first.get_or_insert(at);
        out.push((
            second,
            ValidationError {
                path: format!("monitors[{second}].id"),
                message: format!("duplicate id `{id}`, also used by monitors[{first}]"),
            },
        ));
    }
    out
}
