//! Reading a bundle one monitor at a time: each monitor of the `monitors` array is read
//! on its own, checked and validated, and moved into the result (or handed on), so a
//! bundle of a million monitors never sits whole in memory, not even as text, and every
//! problem of every monitor is found in one reading. [`Bundle::read_checked`] keeps the
//! specs (the control plane); [`Bundle::read_valid`] keeps the validated monitors (`run`);
//! [`Bundle::read_valid_each`] hands each on as it is read (`watch`, which shelves it).
//! The reading itself is in `bundle_reader`.

use std::io::Read;

use crate::bundle::{Bundle, BundleError};
use crate::bundle_reader::{BundleReadError, read_each};
use crate::spec::{SCHEMA_VERSION, TcpMonitor};
use crate::validate::ValidMonitor;

impl Bundle {
    /// Reads a bundle and validates it, reporting every problem at once, in the order of
    /// the monitors: each monitor of the wrong shape (its first shape error, with its path
    /// and its line and column in `text`), each rule a well-shaped one breaks, and each id
    /// used twice. Only text that is not a bundle at all (a syntax error, a wrong top level
    /// or `schema_version`) stops at the first error.
    pub fn read_checked(text: &str) -> Result<Bundle, BundleError> {
        Bundle::read_checked_from(text.as_bytes()).map_err(BundleReadError::in_memory)
    }

    /// [`Bundle::read_checked`] from a stream, such as a file, never holding its whole
    /// text (a leading byte order mark is dropped).
    pub fn read_checked_from(input: impl Read) -> Result<Bundle, BundleReadError> {
        let mut monitors = Vec::new();
        let maintenance = read_each(input, &mut |monitor: TcpMonitor| {
            monitor.validate()?;
            monitors.push(monitor);
            Ok(())
        })?;
        Ok(Bundle {
            schema_version: SCHEMA_VERSION,
            monitors,
            maintenance,
        })
    }

    /// [`Bundle::read_checked`] into the validated monitors, each validated as it is read
    /// and its spec moved into the runnable set.
    pub fn read_valid(text: &str) -> Result<Vec<ValidMonitor>, BundleError> {
        Bundle::read_valid_from(text.as_bytes()).map_err(BundleReadError::in_memory)
    }

    /// [`Bundle::read_valid`] from a stream, such as a file.
    pub fn read_valid_from(input: impl Read) -> Result<Vec<ValidMonitor>, BundleReadError> {
        let mut valid = Vec::new();
        Bundle::read_valid_each(input, |monitor| valid.push(monitor))?;
        valid.shrink_to_fit();
        Ok(valid)
    }

    /// Reads a bundle from a stream as [`Bundle::read_valid`] does, handing each valid
    /// monitor to `each` as soon as it is read and validated, in order, so that no more
    /// than one monitor's text and the caller's own are held at a time. On an error the
    /// monitors already handed on are to be dropped: the bundle is not valid.
    pub fn read_valid_each(
        input: impl Read,
        mut each: impl FnMut(ValidMonitor),
    ) -> Result<(), BundleReadError> {
        read_each(input, &mut |monitor: TcpMonitor| {
            each(monitor.into_valid()?);
            Ok(())
        })?;
        Ok(())
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
