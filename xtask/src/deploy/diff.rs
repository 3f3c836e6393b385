//! The control plane's `Diff`, written for people. Ids and field names come from the
//! server, so each is shown through [`shown`] (hidden characters escaped, capped).

use std::fmt::Write;

use monitor_spec::api::{Diff, Updated};

use super::api::shown;

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
        let w = &self.maintenance;
        if !w.is_empty() {
            let _ = write!(
                s,
                "; maintenance windows: {} {create}, {} {update}, {} {delete}",
                w.created.len(),
                w.updated.len(),
                w.deleted.len()
            );
        }
        s
    }

    fn render(&self, done: bool) -> String {
        let mut out = String::new();
        let created: Vec<String> = self.created.iter().map(|id| shown(id)).collect();
        let deleted: Vec<String> = self.deleted.iter().map(|id| shown(id)).collect();
        let kept: Vec<String> = self.kept.iter().map(|id| shown(id)).collect();
        let updated: Vec<(String, Vec<String>)> = self
            .updated
            .iter()
            .map(|Updated { id, fields }| (shown(id), fields.iter().map(|f| shown(f)).collect()))
            .collect();
        let width = created
            .iter()
            .chain(updated.iter().map(|(id, _)| id))
            .chain(&deleted)
            .chain(&kept)
            .map(|id| id.chars().count())
            .max()
            .unwrap_or(0);
        let (create, update, delete) = if done {
            ("created", "updated", "deleted")
        } else {
            ("create ", "update ", "delete ")
        };
        for id in &created {
            let _ = writeln!(out, "  + {create} {id}");
        }
        for (id, fields) in &updated {
            if fields.is_empty() {
                let _ = writeln!(out, "  ~ {update} {id}");
            } else {
                let _ = writeln!(out, "  ~ {update} {id:<width$}  {}", fields.join(", "));
            }
        }
        for id in &deleted {
            let _ = writeln!(out, "  - {delete} {id}");
        }
        for id in &kept {
            let _ = writeln!(
                out,
                "  = kept    {id:<width$}  (not in the bundle; left in place)"
            );
        }
        let w = &self.maintenance;
        for id in &w.created {
            let _ = writeln!(out, "  + {create} window {}", shown(id));
        }
        for Updated { id, fields } in &w.updated {
            let fields: Vec<String> = fields.iter().map(|f| shown(f)).collect();
            let _ = writeln!(
                out,
                "  ~ {update} window {}  {}",
                shown(id),
                fields.join(", ")
            );
        }
        for id in &w.deleted {
            let _ = writeln!(out, "  - {delete} window {}", shown(id));
        }
        let _ = writeln!(out, "  {}", self.summary(done));
        out
    }
}
