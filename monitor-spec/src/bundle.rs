//! The JSON bundle: every monitor of a project in one document, as `export` writes it,
//! `run --bundle` and `watch --bundle` read it, and the control plane receives it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use thiserror::Error;

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
}

/// A bundle that cannot be used.
#[derive(Debug, Error)]
pub enum BundleError {
    /// The text is not JSON of a bundle's shape; the path names the field, such as
    /// `monitors[3].target.port`.
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
    /// Two monitors share an id.
    #[error("monitors[{second}].id: duplicate id `{id}`, also used by monitors[{first}]")]
    DuplicateId {
        /// The id.
        id: String,
        /// Index of the first monitor with it.
        first: usize,
        /// Index of the second.
        second: usize,
    },
}

impl Bundle {
    /// A bundle of `monitors`, sorted by id.
    pub fn new(mut monitors: Vec<TcpMonitor>) -> Self {
        monitors.sort_by(|a, b| a.id.cmp(&b.id));
        Bundle {
            schema_version: SCHEMA_VERSION,
            monitors,
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

    /// Reads a bundle and validates it, reporting every problem at once, in the order of
    /// the monitors: each monitor of the wrong shape (its first shape error, with its path
    /// and where it is in the text), each rule a well-shaped one breaks, and each id used
    /// twice. Only JSON that is not a bundle at all (a syntax error, a wrong top level or
    /// `schema_version`) stops at the first error.
    pub fn read_checked(text: &str) -> Result<Bundle, BundleError> {
        let text = crate::json::strip_bom_str(text);
        let raw: RawBundle<'_> = crate::json::read_borrowed(text)?;
        if raw.schema_version != SCHEMA_VERSION {
            return Err(BundleError::Version(raw.schema_version));
        }
        let mut problems = Vec::new();
        let mut monitors = Vec::with_capacity(raw.monitors.len());
        let mut seen = std::collections::HashMap::new();
        for (i, monitor) in raw.monitors.iter().enumerate() {
            let monitor = match crate::json::read::<TcpMonitor>(monitor.get()) {
                Ok(m) => m,
                Err(e) => {
                    let (line, column) = position(text, monitor.get(), e.line, e.column);
                    problems.push(ValidationError {
                        path: at(i, &e.path),
                        message: format!("{} (line {line}, column {column})", e.message),
                    });
                    continue;
                }
            };
            if let Some(first) = seen.insert(monitor.id.clone(), i) {
                problems.push(ValidationError {
                    path: format!("monitors[{i}].id"),
                    message: format!(
                        "duplicate id `{}`, also used by monitors[{first}]",
                        monitor.id
                    ),
                });
            }
            if let Err(errors) = monitor.validate() {
                problems.extend(errors.0.into_iter().map(|e| ValidationError {
                    path: at(i, &e.path),
                    message: e.message,
                }));
            }
            monitors.push(monitor);
        }
        if problems.is_empty() {
            Ok(Bundle {
                schema_version: raw.schema_version,
                monitors,
            })
        } else {
            Err(BundleError::Invalid(problems))
        }
    }

    /// Validates every monitor and checks ids are unique; every problem is reported with
    /// its path inside the bundle.
    pub fn validate(&self) -> Result<Vec<ValidMonitor>, BundleError> {
        self.clone().into_valid()
    }

    /// [`Bundle::validate`], moving the monitors into the runnable set instead of copying
    /// them.
    pub fn into_valid(self) -> Result<Vec<ValidMonitor>, BundleError> {
        let mut seen = std::collections::HashMap::new();
        for (i, m) in self.monitors.iter().enumerate() {
            if let Some(first) = seen.insert(m.id.as_str(), i) {
                return Err(BundleError::DuplicateId {
                    id: m.id.clone(),
                    first,
                    second: i,
                });
            }
        }
        drop(seen);
        let mut problems = Vec::new();
        let mut valid = Vec::with_capacity(self.monitors.len());
        for (i, m) in self.monitors.into_iter().enumerate() {
            match m.into_valid() {
                Ok(v) => valid.push(v),
                Err(errors) => problems.extend(errors.0.into_iter().map(|e| ValidationError {
                    path: format!("monitors[{i}].{}", e.path),
                    message: e.message,
                })),
            }
        }
        if problems.is_empty() {
            Ok(valid)
        } else {
            Err(BundleError::Invalid(problems))
        }
    }
}

/// A bundle read only as far as its monitors' texts, so that each is read on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle<'a> {
    schema_version: u32,
    #[serde(borrow)]
    monitors: Vec<&'a serde_json::value::RawValue>,
}

/// `monitors[i].PATH`, or `monitors[i]` for the monitor as a whole.
fn at(i: usize, path: &str) -> String {
    if path == "." || path.is_empty() {
        format!("monitors[{i}]")
    } else {
        format!("monitors[{i}].{path}")
    }
}

/// The line and column in `text` of (`line`, `column`) inside `part`, a slice of it.
fn position(text: &str, part: &str, line: usize, column: usize) -> (usize, usize) {
    let start = (part.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    let before = &text.as_bytes()[..start.min(text.len())];
    let lines_before = before.iter().filter(|b| **b == b'\n').count();
    if line <= 1 {
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        (lines_before + 1, start - line_start + column)
    } else {
        (lines_before + line, column)
    }
}
