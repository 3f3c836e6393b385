//! Reading a bundle's text one monitor at a time: each monitor of the `monitors` array is
//! read on its own, checked and validated, and moved into the result, so a bundle of a
//! million monitors never sits twice in memory, and every problem of every monitor is
//! found in one reading. [`Bundle::read_checked`] keeps the specs (the control plane);
//! [`Bundle::read_valid`] keeps the validated monitors (`run` and `watch`).

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::bundle::{Bundle, BundleError};
use crate::maintenance::{MaintenanceWindow, check_windows};
use crate::spec::{SCHEMA_VERSION, TcpMonitor};
use crate::validate::{ValidMonitor, ValidationError, ValidationErrors};

impl Bundle {
    /// Reads a bundle and validates it, reporting every problem at once, in the order of
    /// the monitors: each monitor of the wrong shape (its first shape error, with its path
    /// and its line and column in `text`), each rule a well-shaped one breaks, and each id
    /// used twice. Only text that is not a bundle at all (a syntax error, a wrong top level
    /// or `schema_version`) stops at the first error.
    pub fn read_checked(text: &str) -> Result<Bundle, BundleError> {
        let (monitors, maintenance) = read_each(
            text,
            |monitor| match monitor.validate() {
                Ok(_) => Ok(monitor),
                Err(errors) => Err(errors),
            },
            |m| &m.id,
        )?;
        Ok(Bundle {
            schema_version: SCHEMA_VERSION,
            monitors,
            maintenance,
        })
    }

    /// [`Bundle::read_checked`] into the validated monitors, each validated as it is read
    /// and its spec moved into the runnable set.
    pub fn read_valid(text: &str) -> Result<Vec<ValidMonitor>, BundleError> {
        let (mut valid, _) = read_each(text, TcpMonitor::into_valid, |m| &m.spec().id)?;
        valid.shrink_to_fit();
        Ok(valid)
    }
}

/// A bundle read only as far as its monitors' texts (16 bytes each), so that each is read
/// on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBundle<'a> {
    schema_version: u32,
    #[serde(borrow)]
    monitors: Vec<&'a RawValue>,
    #[serde(default)]
    maintenance: Vec<MaintenanceWindow>,
}

/// Reads each monitor of `text` and hands it to `keep` (which validates it), in order;
/// every problem with its path inside the bundle, ordered by monitor, then those of the
/// maintenance windows. The kept monitors and the windows.
fn read_each<T>(
    text: &str,
    mut keep: impl FnMut(TcpMonitor) -> Result<T, ValidationErrors>,
    id_of: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Vec<MaintenanceWindow>), BundleError> {
    let text = crate::json::strip_bom_str(text);
    let raw: RawBundle<'_> = crate::json::read_borrowed(text)?;
    if raw.schema_version != SCHEMA_VERSION {
        return Err(BundleError::Version(raw.schema_version));
    }
    let mut problems: Vec<(usize, ValidationError)> = Vec::new();
    let mut kept = Vec::with_capacity(raw.monitors.len());
    let mut kept_at = Vec::with_capacity(raw.monitors.len());
    // The ids of the monitors that broke a rule, for the duplicate check.
    let mut rejected: Vec<(usize, String)> = Vec::new();
    for (i, monitor) in raw.monitors.iter().enumerate() {
        let monitor = match crate::json::read::<TcpMonitor>(monitor.get()) {
            Ok(m) => m,
            Err(e) => {
                let (line, column) = position(text, monitor.get(), e.line, e.column);
                problems.push((
                    i,
                    ValidationError {
                        path: at(i, &e.path),
                        message: format!("{} (line {line}, column {column})", e.message),
                    },
                ));
                continue;
            }
        };
        let id = monitor.id.clone();
        match keep(monitor) {
            Ok(t) => {
                kept.push(t);
                kept_at.push(i);
            }
            Err(errors) => {
                problems.extend(errors.0.into_iter().map(|e| {
                    (
                        i,
                        ValidationError {
                            path: at(i, &e.path),
                            message: e.message,
                        },
                    )
                }));
                rejected.push((i, id));
            }
        }
    }
    let RawBundle {
        monitors,
        maintenance: windows,
        ..
    } = raw;
    drop(monitors);
    problems.extend(check_windows(&windows).into_iter().map(|p| (usize::MAX, p)));
    let ids = kept
        .iter()
        .zip(&kept_at)
        .map(|(t, &i)| (id_of(t), i))
        .chain(rejected.iter().map(|(i, id)| (id.as_str(), *i)));
    problems.extend(crate::bundle::duplicates(ids));
    if problems.is_empty() {
        Ok((kept, windows))
    } else {
        problems.sort_by_key(|(i, _)| *i);
        Err(BundleError::Invalid(
            problems.into_iter().map(|(_, p)| p).collect(),
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle of `monitors`, each `(id, port)`.
    fn bundle(version: u32, monitors: &[(&str, i64)]) -> String {
        let monitors: Vec<String> = monitors
            .iter()
            .map(|(id, port)| {
                format!(r#"{{"schema_version":1,"id":"{id}","name":"{id}","target":{{"host":"h","port":{port}}}}}"#)
            })
            .collect();
        format!(
            "{{\"schema_version\": {version}, \"monitors\": [\n{}\n]}}",
            monitors.join(",\n")
        )
    }

    /// Checks that both readings of `text` end the same way: the same ids kept, or the
    /// same error.
    #[track_caller]
    fn same(text: &str) {
        let checked = Bundle::read_checked(text);
        let valid = Bundle::read_valid(text);
        match (checked, valid) {
            (Ok(c), Ok(v)) => {
                let ids: Vec<&str> = v.iter().map(|m| m.spec().id.as_str()).collect();
                assert_eq!(
                    c.monitors.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
                    ids
                );
            }
            (Err(c), Err(v)) => assert_eq!(c.to_string(), v.to_string()),
            (c, v) => panic!("checked {c:?}, valid {v:?}"),
        }
    }

    #[test]
    fn both_readings_keep_and_refuse_alike() {
        same(&bundle(1, &[("a", 1), ("b", 2), ("c", 3)]));
        same(&bundle(1, &[]));
        same(&bundle(1, &[("a", 0), ("b", 2), ("", 70_000)]));
        same(&bundle(
            1,
            &[("a", 0), ("b", 2), ("b", 0), ("a", 5), ("b", 3)],
        ));
        same(&bundle(2, &[("a", 0), ("a", 1)]));
        same(&bundle(1, &[("a", 1), ("b", 2)]).replace("\"port\":2", "\"port\":\"2\""));
        same("{\"schema_version\": 1, \"monitors\": {}}");
        same("{\"schema_version\": 1}");
        same("{\"schema_version\": 1, \"monitors\": [], \"extra\": 1}");
        same(&format!("{} x", bundle(1, &[("a", 1)])));
        same(&format!("\u{feff}{}", bundle(1, &[("a", 1)])));
    }

    /// The paths of the problems of `text`.
    fn problems(text: &str) -> Vec<String> {
        match Bundle::read_valid(text) {
            Err(BundleError::Invalid(p)) => p.iter().map(|p| p.path.clone()).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicates_are_problems_in_the_monitors_order() {
        // Every repeat of an id, valid or not, where it stands among the other problems.
        assert_eq!(
            problems(&bundle(
                1,
                &[("a", 0), ("b", 2), ("b", 0), ("a", 5), ("b", 3)]
            )),
            [
                "monitors[0].target.port",
                "monitors[2].target.port",
                "monitors[2].id",
                "monitors[3].id",
                "monitors[4].id",
            ]
        );
    }
}
