//! The control plane's `Diff` and `DeployResponse`, read from JSON and written for people.

use std::fmt::Write;

use serde_json::Value;

/// What a deploy changes (or changed), per the API's `Diff`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Diff {
    /// Ids of new monitors.
    pub created: Vec<String>,
    /// Ids of changed monitors, each with the paths of the fields that changed.
    pub updated: Vec<(String, Vec<String>)>,
    /// Ids of monitors removed.
    pub deleted: Vec<String>,
    /// Ids of monitors absent from the bundle but left in place (`prune=false`).
    pub kept: Vec<String>,
    /// Ids of monitors that stay as they are.
    pub unchanged: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl Diff {
    /// Reads a `Diff` object; missing lists are empty.
    pub(crate) fn from_json(v: &Value) -> Diff {
        let updated = v
            .get("updated")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|u| {
                        let id = u.get("id")?.as_str()?.to_owned();
                        Some((id, strings(u.get("fields"))))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Diff {
            created: strings(v.get("created")),
            updated,
            deleted: strings(v.get("deleted")),
            kept: strings(v.get("kept")),
            unchanged: strings(v.get("unchanged")),
        }
    }

    /// Whether applying it changes nothing.
    pub(crate) fn is_noop(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }

    /// One line: how many are created, updated, deleted, kept and unchanged.
    pub(crate) fn summary(&self, done: bool) -> String {
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

    /// Every change, one monitor a line, then the summary. `done` picks the tense.
    pub(crate) fn render(&self, done: bool) -> String {
        let mut out = String::new();
        let width = self
            .created
            .iter()
            .chain(self.updated.iter().map(|(id, _)| id))
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
        for (id, fields) in &self.updated {
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

/// The parts of a `DeployResponse` the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeployResponse {
    /// Whether something was stored.
    pub applied: bool,
    /// The version now current, if the project has one.
    pub version: Option<u64>,
    /// What changed (or would).
    pub diff: Diff,
}

impl DeployResponse {
    /// Reads a `DeployResponse`.
    pub(crate) fn from_json(v: &Value) -> anyhow::Result<DeployResponse> {
        let diff = v.get("diff").ok_or_else(|| {
            anyhow::anyhow!("the control plane's answer has no `diff`; is it the control plane?")
        })?;
        Ok(DeployResponse {
            applied: v.get("applied").and_then(Value::as_bool).unwrap_or(false),
            version: v.get("version").and_then(Value::as_u64),
            diff: Diff::from_json(diff),
        })
    }
}
