//! The JSON boundary of a spec: parsing with the path of every shape error, and the
//! JSON Schemas committed under `monitor-spec/schema/`.

use thiserror::Error;

use crate::result::CheckResult;
use crate::spec::TcpMonitor;

/// JSON that could not be read into a spec or a bundle: where and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{path}: {message} (line {line}, column {column})")]
pub struct JsonError {
    /// The field where reading stopped, such as `target.port` (`.` for the top).
    pub path: String,
    /// What is wrong there.
    pub message: String,
    /// Line of the error in the input, from 1.
    pub line: usize,
    /// Column of the error in the input, from 1.
    pub column: usize,
}

/// A spec that could not be read from JSON.
pub type SpecError = JsonError;

impl TcpMonitor {
    /// Reads a spec from JSON. Shape errors name the field path; run
    /// [`TcpMonitor::validate`] afterwards for the rules.
    pub fn from_json(text: &str) -> Result<TcpMonitor, SpecError> {
        read(text)
    }

    /// The spec as pretty JSON, every field written out.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Reads JSON into any serde type, naming the field path, line and column of the first
/// error, as specs and bundles are read (the control plane reads its requests so too).
pub fn read<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let fail = |path: String, inner: serde_json::Error| {
        let message = inner.to_string();
        // serde_json appends " at line L column C"; the fields carry those.
        let message = match message.rfind(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        };
        JsonError {
            path,
            message,
            line: inner.line(),
            column: inner.column(),
        }
    };
    let value = parsed.map_err(|e| fail(known_path(e.path()), e.into_inner()))?;
    de.end().map_err(|e| fail(".".to_owned(), e))?;
    Ok(value)
}

/// The path as far as it names fields: a syntax error between keys leaves an unknown `?`
/// segment, which is dropped.
fn known_path(path: &serde_path_to_error::Path) -> String {
    let known: Vec<String> = path
        .iter()
        .map(|segment| match segment.to_string() {
            // An empty key would vanish from the path; show it quoted.
            s if s.is_empty() => "\"\"".to_owned(),
            s => s,
        })
        .filter(|s| s != "?")
        .collect();
    if known.is_empty() {
        ".".to_owned()
    } else {
        known.join(".").replace(".[", "[")
    }
}

/// The JSON Schema of a spec, as committed in `schema/tcp-monitor.schema.json`.
pub fn spec_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(TcpMonitor)).unwrap_or_default()
}

/// The JSON Schema of a result, as committed in `schema/check-result.schema.json`.
pub fn result_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(CheckResult)).unwrap_or_default()
}
