//! The account of a change that `deploy --preview` and `versions show N` print: each
//! created and deleted monitor in full, each updated one field by field as old → new
//! (`frequency: 1m → 30s`, `tags: +prod −staging`), as text for people or as JSON for
//! review bots (`--format json`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use monitor_spec::TcpMonitor;
use monitor_spec::api::{Diff, Updated};
use monitor_spec::changes::{FieldChange, changes};
use serde::Serialize;
use serde_json::Value;

use super::api::shown;
use super::diff::DiffText;

/// The longest value text a line shows, in characters; a longer one ends in `…`.
pub(crate) const MAX_VALUE_CHARS: usize = 200;

/// Monitors by id, each as its canonical JSON (see [`canonical`]).
pub(crate) type Monitors = BTreeMap<String, Value>;

/// A change with every value it needs: what `--format json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Preview {
    /// Each monitor created, in full.
    pub created: Vec<Whole>,
    /// Each monitor updated, with its changed fields.
    pub updated: Vec<Changed>,
    /// Each monitor deleted, in full, as it was.
    pub deleted: Vec<Whole>,
    /// Monitors absent from the bundle and left in place (a deploy without prune).
    pub kept: Vec<String>,
    /// How many monitors stay as they are.
    pub unchanged: usize,
    /// What changes in the maintenance windows, with their values; absent when nothing.
    #[serde(skip_serializing_if = "WindowsPreview::is_empty")]
    pub maintenance: WindowsPreview,
    /// The ids and field paths alone, as the control plane's `Diff`.
    pub diff: Diff,
}

/// The maintenance windows' change with its values: created and deleted windows in full,
/// updated ones field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct WindowsPreview {
    /// Each window created, in full (its JSON, `id` included).
    pub created: Vec<Value>,
    /// Each window updated, with its changed fields.
    pub updated: Vec<Changed>,
    /// Each window deleted, in full, as it was.
    pub deleted: Vec<Value>,
}

impl WindowsPreview {
    fn is_empty(&self) -> bool {
        self.created.is_empty() && self.updated.is_empty() && self.deleted.is_empty()
    }
}

/// A monitor shown in full.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Whole {
    /// Its id.
    pub id: String,
    /// Its JSON.
    pub monitor: Value,
}

/// An updated monitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Changed {
    /// Its id.
    pub id: String,
    /// Each field that changes, by path.
    pub changes: Vec<FieldChange>,
}

/// A monitor's JSON as the control plane stores it: read into the typed model and written
/// again, so that defaults written out or left implicit compare equal. JSON that is not a
/// monitor stays as it is.
pub(crate) fn canonical(monitor: Value) -> Value {
    match serde_json::from_value::<TcpMonitor>(monitor.clone()) {
        Ok(typed) => serde_json::to_value(&typed).unwrap_or(monitor),
        Err(_) => monitor,
    }
}

/// The monitors of a list, by id (`id` of each; those without one are left out).
pub(crate) fn by_id(monitors: impl IntoIterator<Item = Value>) -> Monitors {
    monitors
        .into_iter()
        .filter_map(|m| {
            let id = m.get("id")?.as_str()?.to_owned();
            Some((id, canonical(m)))
        })
        .collect()
}

impl Preview {
    /// The values behind `diff`: created monitors from `new`, deleted ones from `old`,
    /// updated ones compared field by field. An id missing from the side it needs (the
    /// project changed between the two reads) is shown by its field paths alone.
    pub(crate) fn new(diff: &Diff, old: &Monitors, new: &Monitors) -> Preview {
        Preview {
            created: whole(&diff.created, new),
            updated: changed(&diff.updated, old, new),
            deleted: whole(&diff.deleted, old),
            kept: diff.kept.clone(),
            unchanged: diff.unchanged.len(),
            maintenance: WindowsPreview::default(),
            diff: diff.clone(),
        }
    }

    /// The same with the values behind the diff's maintenance windows: windows by id
    /// before (`old`) and after (`new`).
    pub(crate) fn with_windows(mut self, old: &Monitors, new: &Monitors) -> Preview {
        let diff = &self.diff.maintenance;
        let whole = |ids: &[String], from: &Monitors| -> Vec<Value> {
            ids.iter().filter_map(|id| from.get(id).cloned()).collect()
        };
        self.maintenance = WindowsPreview {
            created: whole(&diff.created, new),
            updated: changed(&diff.updated, old, new),
            deleted: whole(&diff.deleted, old),
        };
        self
    }

    /// Every change for people: a line per monitor, then its fields indented, then the
    /// summary.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let monitor = |w: &'_ Whole| (w.id.clone(), w.monitor.clone());
        write_section(
            &mut out,
            "",
            self.created.iter().map(monitor),
            &self.updated,
            self.deleted.iter().map(monitor),
        );
        for id in &self.kept {
            let _ = writeln!(
                out,
                "  = kept    {}  (not in the bundle; left in place)",
                shown(id)
            );
        }
        let windows = &self.maintenance;
        let window = |w: &'_ Value| {
            let id = w.get("id").and_then(Value::as_str).unwrap_or("?");
            (id.to_owned(), w.clone())
        };
        write_section(
            &mut out,
            "window ",
            windows.created.iter().map(window),
            &windows.updated,
            windows.deleted.iter().map(window),
        );
        let _ = writeln!(out, "  {}", self.diff.summary(false));
        out
    }
}

/// Created entries (`kind` and id, then each field), updated ones (each changed field,
/// old → new) and deleted ones (in full, as they were).
fn write_section(
    out: &mut String,
    kind: &str,
    created: impl Iterator<Item = (String, Value)>,
    updated: &[Changed],
    deleted: impl Iterator<Item = (String, Value)>,
) {
    let whole = |out: &mut String, what: &str, (id, value): (String, Value)| {
        let _ = writeln!(out, "  {what}  {kind}{}", shown(&id));
        for (path, value) in leaves(&value) {
            let _ = writeln!(out, "      {path}: {}", value_text(value));
        }
    };
    for entry in created {
        whole(out, "+ create", entry);
    }
    for c in updated {
        let _ = writeln!(out, "  ~ update  {kind}{}", shown(&c.id));
        for change in &c.changes {
            let _ = writeln!(
                out,
                "      {}: {}",
                shown(&change.path),
                change_text(change)
            );
        }
    }
    for entry in deleted {
        whole(out, "- delete", entry);
    }
}

/// The entries of `ids` in full, from `from` (`null` when it lacks one).
fn whole(ids: &[String], from: &Monitors) -> Vec<Whole> {
    ids.iter()
        .map(|id| Whole {
            id: id.clone(),
            monitor: from.get(id).cloned().unwrap_or(Value::Null),
        })
        .collect()
}

/// Each updated entry field by field, old → new; by its field paths alone when a side
/// lacks it (the project changed between the two reads).
fn changed(updated: &[Updated], old: &Monitors, new: &Monitors) -> Vec<Changed> {
    updated
        .iter()
        .map(|u| Changed {
            id: u.id.clone(),
            changes: match (old.get(&u.id), new.get(&u.id)) {
                (Some(before), Some(after)) => changes(before, after),
                _ => u
                    .fields
                    .iter()
                    .map(|path| FieldChange {
                        path: path.clone(),
                        old: None,
                        new: None,
                    })
                    .collect(),
            },
        })
        .collect()
}

/// `old → new` for one field: a list of strings as what it gains and loses
/// (`+prod −staging`), an absent side as `(none)`.
pub(crate) fn change_text(change: &FieldChange) -> String {
    if let (Some(Value::Array(a)), Some(Value::Array(b))) = (&change.old, &change.new)
        && let (Some(a), Some(b)) = (strings(a), strings(b))
    {
        let (before, after): (BTreeSet<&str>, BTreeSet<&str>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        let mut parts: Vec<String> = after
            .difference(&before)
            .map(|s| format!("+{}", word(s)))
            .collect();
        parts.extend(before.difference(&after).map(|s| format!("−{}", word(s))));
        if !parts.is_empty() && a.len() == before.len() && b.len() == after.len() {
            return parts.join(" ");
        }
    }
    let side = |v: &Option<Value>| v.as_ref().map_or_else(|| "(none)".to_owned(), value_text);
    format!("{} → {}", side(&change.old), side(&change.new))
}

/// A value on one line: a plain word bare, other strings quoted, lists and objects as
/// compact JSON; hidden characters escaped, at most [`MAX_VALUE_CHARS`] characters.
pub(crate) fn value_text(value: &Value) -> String {
    let text = match value {
        Value::String(s) => word(s),
        other => other.to_string(),
    };
    let text = shown(&text);
    match text.char_indices().nth(MAX_VALUE_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// A string bare when it is a plain word (`1m`, `db.internal`, `prod`), else quoted JSON.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || "-_.:/@+*=,".contains(c));
    if plain {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

fn strings(values: &[Value]) -> Option<Vec<&str>> {
    values.iter().map(Value::as_str).collect()
}

/// The leaves of a monitor's JSON as (dotted path, value), objects walked into, lists and
/// scalars whole, in key order.
fn leaves(value: &Value) -> Vec<(String, &Value)> {
    fn walk<'a>(path: &str, value: &'a Value, out: &mut Vec<(String, &'a Value)>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, v) in map {
                    let sub = if path.is_empty() {
                        shown(key)
                    } else {
                        format!("{path}.{}", shown(key))
                    };
                    walk(&sub, v, out);
                }
            }
            _ => out.push((
                if path.is_empty() {
                    ".".to_owned()
                } else {
                    path.to_owned()
                },
                value,
            )),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Renders the preview of `old` → `new` (two sets of monitors) as `versions show` does.
    fn check_preview(old: &[Value], new: &[Value], expected: &[&str]) {
        let (old, new) = (by_id(old.to_vec()), by_id(new.to_vec()));
        let text = Preview::new(&Diff::between(&old, &new), &old, &new).render();
        let lines: Vec<&str> = text.lines().collect();
        for line in expected {
            assert!(lines.contains(line), "no line {line:?} in:\n{text}");
        }
    }

    fn monitor(id: &str, changes: Value) -> Value {
        let mut m = serde_json::to_value(
            monitor_spec::TcpMonitor::new(id, "db.internal", 5432)
                .frequency(monitor_spec::Frequency::M1)
                .tag("prod")
                .tag("db"),
        )
        .unwrap();
        for (key, value) in changes.as_object().unwrap() {
            m[key] = value.clone();
        }
        m
    }

    #[test]
    fn previews_show_old_and_new_values() {
        let db = monitor("db", json!({}));
        // One field, a tag list, a nested field.
        check_preview(
            std::slice::from_ref(&db),
            &[monitor(
                "db",
                json!({"frequency": "30s", "tags": ["prod", "staging"], "target": {"host": "db2", "port": 5432}}),
            )],
            &[
                "  ~ update  db",
                "      frequency: 1m → 30s",
                "      tags: +staging −db",
                "      target.host: db.internal → db2",
                "  0 to create, 1 to update, 0 to delete, 0 unchanged",
            ],
        );
        // Created and deleted in full, an unchanged monitor counted.
        check_preview(
            &[db.clone(), monitor("old", json!({}))],
            &[db.clone(), monitor("new", json!({"frequency": "5m"}))],
            &[
                "  + create  new",
                "      frequency: 5m",
                "      target.host: db.internal",
                "      target.port: 5432",
                "  - delete  old",
                "      frequency: 1m",
                "  1 to create, 0 to update, 1 to delete, 1 unchanged",
            ],
        );
        // A value that is not a plain word is quoted, an absent one is `(none)`, hidden
        // characters are escaped, a list of strings that only moves is shown whole.
        fn check(old: Option<Value>, new: Option<Value>, expected: &str) {
            let change = monitor_spec::changes::FieldChange {
                path: "x".into(),
                old,
                new,
            };
            assert_eq!(change_text(&change), expected);
        }
        check(None, Some(json!("a b")), "(none) → \"a b\"");
        check(Some(json!(3)), None, "3 → (none)");
        check(
            Some(json!("db")),
            Some(json!("the \u{1b}[31mdb")),
            "db → \"the \\u001b[31mdb\"",
        );
        check(
            Some(json!(["a", "b"])),
            Some(json!(["b", "a"])),
            "[\"a\",\"b\"] → [\"b\",\"a\"]",
        );
        check(Some(json!(["a"])), Some(json!(["a", "b", "c"])), "+b +c");
        check(Some(json!({"k": 1})), Some(json!(null)), "{\"k\":1} → null");
    }

    #[test]
    fn windows_show_in_full_or_field_by_field() {
        let window = |id: &str, start: &str| {
            json!({"id": id, "tags": ["db"],
                "schedule": {"weekly": {"days": ["sunday"], "start": start, "end": "04:00"}}})
        };
        let old = by_id([window("vacuum", "03:00"), window("gone", "01:00")]);
        let new = by_id([window("vacuum", "02:30"), window("fresh", "05:00")]);
        let mut diff = Diff::default();
        let (a, b): (Vec<Value>, Vec<Value>) = (
            old.values().cloned().collect(),
            new.values().cloned().collect(),
        );
        diff.maintenance = monitor_spec::api::WindowsDiff::between(&a, &b);
        let preview =
            Preview::new(&diff, &Monitors::new(), &Monitors::new()).with_windows(&old, &new);
        let text = preview.render();
        for line in [
            "  + create  window fresh",
            "      schedule.weekly.start: 05:00",
            "  ~ update  window vacuum",
            "      schedule.weekly.start: 03:00 → 02:30",
            "  - delete  window gone",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in:\n{text}"
            );
        }
        assert!(
            text.lines()
                .any(|l| l == "      schedule.weekly.start: 01:00"),
            "{text}"
        );
        let json = serde_json::to_value(&preview).unwrap();
        assert_eq!(json["maintenance"]["created"][0]["id"], "fresh", "{json}");
        assert_eq!(json["maintenance"]["deleted"][0]["id"], "gone", "{json}");
        let none = serde_json::to_value(Preview::new(&Diff::default(), &old, &new)).unwrap();
        assert!(none.get("maintenance").is_none(), "{none}");
    }
}
