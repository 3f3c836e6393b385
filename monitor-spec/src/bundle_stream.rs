//! Reading a bundle straight into validated monitors: each monitor of the `monitors`
//! array is validated as soon as it is read and its spec moved into the runnable set, so
//! that a million monitors never sit twice in memory (once as specs, once validated).
//! The errors are [`Bundle::from_json`] and [`Bundle::into_valid`]'s, in the same order:
//! a shape error first, then the version, a duplicate id, and every validation problem.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::bundle::{Bundle, BundleError};
use crate::spec::{SCHEMA_VERSION, TcpMonitor};
use crate::validate::{ValidMonitor, ValidationError};

/// A bundle's fields as [`Bundle::read_valid`] reads them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Streamed {
    schema_version: u32,
    monitors: Checked,
}

/// The `monitors` array, each validated as read.
#[derive(Default)]
struct Checked {
    /// The valid monitors, in the bundle's order.
    valid: Vec<ValidMonitor>,
    /// The index in the bundle of each valid monitor.
    valid_at: Vec<usize>,
    /// The index and id of each invalid monitor.
    invalid: Vec<(usize, String)>,
    /// Every validation problem, with its path inside the bundle.
    problems: Vec<ValidationError>,
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let mut checked = Checked::default();
        let mut i = 0;
        while let Some(monitor) = seq.next_element::<TcpMonitor>()? {
            let id = monitor.id.clone();
            match monitor.into_valid() {
                Ok(valid) => {
                    checked.valid.push(valid);
                    checked.valid_at.push(i);
                }
                Err(errors) => {
                    checked.invalid.push((i, id));
                    checked
                        .problems
                        .extend(errors.0.into_iter().map(|e| ValidationError {
                            path: format!("monitors[{i}].{}", e.path),
                            message: e.message,
                        }));
                }
            }
            i += 1;
        }
        checked.valid.shrink_to_fit();
        Ok(checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Checked, A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Map, &self))
    }
}

impl Bundle {
    /// Reads a bundle into its validated monitors, validating each as it is read (see the
    /// module): the result of [`Bundle::from_json`] then [`Bundle::into_valid`], holding
    /// one spec at a time besides the validated ones.
    pub fn read_valid(text: &str) -> Result<Vec<ValidMonitor>, BundleError> {
        let streamed: Streamed = crate::json::read(text)?;
        if streamed.schema_version != SCHEMA_VERSION {
            return Err(BundleError::Version(streamed.schema_version));
        }
        let Checked {
            valid,
            valid_at,
            invalid,
            problems,
        } = streamed.monitors;
        if let Some(duplicate) = first_duplicate(&valid, &valid_at, &invalid) {
            return Err(duplicate);
        }
        if problems.is_empty() {
            Ok(valid)
        } else {
            Err(BundleError::Invalid(problems))
        }
    }
}

/// The first id (in the bundle's order) that an earlier monitor already has, as
/// [`Bundle::into_valid`] names it.
fn first_duplicate(
    valid: &[ValidMonitor],
    valid_at: &[usize],
    invalid: &[(usize, String)],
) -> Option<BundleError> {
    let mut ids: Vec<(&str, usize)> = valid
        .iter()
        .zip(valid_at)
        .map(|(m, &i)| (m.spec().id.as_str(), i))
        .chain(invalid.iter().map(|(i, id)| (id.as_str(), *i)))
        .collect();
    ids.sort_unstable();
    // Each id's first two indices, sorted: the id repeats first where the second is least.
    let (id, first, second) = (0..ids.len().saturating_sub(1))
        .filter(|&j| ids[j].0 == ids[j + 1].0 && (j == 0 || ids[j - 1].0 != ids[j].0))
        .map(|j| (ids[j].0, ids[j].1, ids[j + 1].1))
        .min_by_key(|&(_, _, second)| second)?;
    Some(BundleError::DuplicateId {
        id: id.to_owned(),
        first,
        second,
    })
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

    /// Checks that streaming `text` ends as reading it whole then validating does.
    #[track_caller]
    fn same(text: &str) {
        let whole = Bundle::from_json(text).and_then(Bundle::into_valid);
        let streamed = Bundle::read_valid(text);
        match (whole, streamed) {
            (Ok(w), Ok(s)) => {
                let ids = |v: &[ValidMonitor]| -> Vec<String> {
                    v.iter().map(|m| m.spec().id.clone()).collect()
                };
                assert_eq!(ids(&w), ids(&s));
            }
            (Err(w), Err(s)) => assert_eq!(w.to_string(), s.to_string()),
            (w, s) => panic!("whole {w:?}, streamed {s:?}"),
        }
    }

    #[test]
    fn streaming_reads_and_refuses_as_reading_whole_does() {
        same(&bundle(1, &[("a", 1), ("b", 2), ("c", 3)]));
        same(&bundle(1, &[]));
        // Every problem, with its path.
        same(&bundle(1, &[("a", 0), ("b", 2), ("", 70_000)]));
        // A duplicate id comes before the problems, even among invalid monitors.
        same(&bundle(
            1,
            &[("a", 0), ("b", 2), ("b", 0), ("a", 5), ("b", 3)],
        ));
        same(&bundle(
            1,
            &[("x", 1), ("b", 2), ("a", 3), ("a", 4), ("b", 5)],
        ));
        // The version before the duplicates and the problems.
        same(&bundle(2, &[("a", 0), ("a", 1)]));
        // Shape errors name the path, first of all.
        same(&bundle(1, &[("a", 1), ("b", 2)]).replace("\"port\":2", "\"port\":\"2\""));
        same(&bundle(1, &[("a", 1)]).replace("\"name\":\"a\",", "\"name\":\"a\",\"bogus\":1,"));
        same("{\"schema_version\": 1, \"monitors\": {}}");
        same("{\"schema_version\": 1}");
        same("{\"schema_version\": 1, \"monitors\": [], \"extra\": 1}");
        same(&format!("{} x", bundle(1, &[("a", 1)])));
        same(&format!("\u{feff}{}", bundle(1, &[("a", 1)])));
    }
}
