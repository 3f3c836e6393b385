//! The JSON boundary of a spec: parsing with the path of every shape error. The JSON
//! Schemas committed under `monitor-spec/schema/` come from [`crate::schema`] (re-exported
//! here for the spec's and the result's).

use thiserror::Error;

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

/// The UTF-8 byte order mark, which some editors and PowerShell write at the start of a
/// file: readers of JSON drop it there ([`strip_bom`]) and name it anywhere else.
pub const BOM: char = '\u{feff}';

/// `bytes` without a leading UTF-8 byte order mark (`EF BB BF`); other bytes as they are.
pub fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes)
}

/// `text` without a leading byte order mark.
pub fn strip_bom_str(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// Reads JSON into any serde type, naming the field path, line and column of the first
/// error, as specs and bundles are read (the control plane reads its requests so too).
/// A leading byte order mark is dropped; one anywhere else is named as such. Unknown
/// fields are refused by the types themselves (`deny_unknown_fields`).
pub fn read<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    let text = strip_bom_str(text);
    read_from(serde_json::Deserializer::from_str(text), text.as_bytes())
}

/// [`read`] from bytes, such as a request body or a file: the same errors, and text that
/// is not UTF-8 is refused where it starts.
pub fn read_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let bytes = strip_bom(bytes);
    read_from(serde_json::Deserializer::from_slice(bytes), bytes)
}

/// [`read`] into a type that borrows from `text` (such as `&RawValue`).
pub fn read_borrowed<'de, T: serde::Deserialize<'de>>(text: &'de str) -> Result<T, JsonError> {
    let text = strip_bom_str(text);
    read_from(serde_json::Deserializer::from_str(text), text.as_bytes())
}

fn read_from<'de, R, T>(mut de: serde_json::Deserializer<R>, input: &[u8]) -> Result<T, JsonError>
where
    R: serde_json::de::Read<'de>,
    T: serde::Deserialize<'de>,
{
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let fail = |path: String, inner: serde_json::Error| {
        let (line, column) = (inner.line(), inner.column());
        let message = if bom_at(input, line, column) {
            "a byte order mark (U+FEFF) is allowed only at the start of the text".to_owned()
        } else {
            let message = inner.to_string();
            // serde_json appends " at line L column C"; the fields carry those.
            match message.rfind(" at line ") {
                Some(at) => message[..at].to_owned(),
                None => message,
            }
        };
        JsonError {
            path,
            message,
            line,
            column,
        }
    };
    let value = parsed.map_err(|e| fail(known_path(e.path()), e.into_inner()))?;
    de.end().map_err(|e| fail(".".to_owned(), e))?;
    Ok(value)
}

/// Whether the byte serde_json stopped at, `column` (in bytes, from 1) of `line`, starts a
/// byte order mark.
fn bom_at(input: &[u8], line: usize, column: usize) -> bool {
    let line_start = if line <= 1 {
        Some(0)
    } else {
        input
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map(|(at, _)| at + 1)
    };
    line_start
        .and_then(|start| input.get(start + column.saturating_sub(1)..))
        .is_some_and(|rest| rest.starts_with("\u{feff}".as_bytes()))
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

/// [`read_borrowed`] from bytes as they are (a leading byte order mark included), which
/// need not be UTF-8: the same errors.
pub(crate) fn read_borrowed_bytes<'de, T: serde::Deserialize<'de>>(
    bytes: &'de [u8],
) -> Result<T, JsonError> {
    read_from(serde_json::Deserializer::from_slice(bytes), bytes)
}
