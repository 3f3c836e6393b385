//! The control plane's `Diff`, written for people.

use std::fmt::Write;

use monitor_spec::api::{Diff, Updated};

/// A [`Diff`] written for people.
pub(crate) trait DiffText {
    /// Whether applying it changes nothing.
    fn is_noop(&self) -> bool;

    /// One line: how many are created, updated, deleted, kept and unchanged.
    fn summary(&self, done: bool) -> String;

    /// Every change, one monitor a line, then the summary. `done` picks the tense.
    fn render(&self, done: bool) -> String;
}

impl DiffText for Diff {
    fn is_noop(&self) -> bool {
        self.is_empty()
    }

    fn summary(&self, done: bool) -> String {
        let (create, update, delete) = if done {
            ("created", "updated", "deleted")
        } else {
            ("to create", "to update", "to delete")
        };
        let mut s = format!(
            "{} {create}, {} {update}, {} {delete}",
            self.created.len(),
            self.updated.len(),
            self.deleted.len()
        );
        if !self.kept.is_empty() {
            let _ = write!(s, ", {} kept", self.kept.len());
        }
        let _ = write!(s, ", {} unchanged", self.unchanged.len());
        s
    }

    fn render(&self, done: bool) -> String {
        let mut out = String::new();
        let width = self
            .created
            .iter()
            .chain(self.updated.iter().map(|u| &u.id))
            .chain(&self.deleted)
            .chain(&self.kept)
            .map(|id| id.chars().count())
            .max()
            .unwrap_or(0);
        let (create, update, delete) = if done {
            ("created", "updated", "deleted")
        } else {
            ("create ", "update ", "delete ")
        };
        for id in &self.created {
            let _ = writeln!(out, "  + {create} {id}");
        }
        for Updated { id, fields } in &self.updated {
            if fields.is_empty() {
                let _ = writeln!(out, "  ~ {update} {id}");
            } else {
                let _ = writeln!(out, "  ~ {update} {id:<width$}  {}", fields.join(", "));
            }
        }
        for id in &self.deleted {
            let _ = writeln!(out, "  - {delete} {id}");
        }
        for id in &self.kept {
            let _ = writeln!(
                out,
                "  = kept    {id:<width$}  (not in the bundle; left in place)"
            );
        }
        let _ = writeln!(out, "  {}", self.summary(done));
        out
    }
}
