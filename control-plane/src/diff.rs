//! The difference between the stored monitors of a project and a bundle: which ids are
//! created, updated (with the field paths that changed), deleted, kept or unchanged, and the
//! set that results.

use monitor_spec::api::{Diff, Updated, WindowsDiff};
use serde_json::Value;

use crate::monitor_set::MonitorSet;

/// A diff with the set that results from applying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What changes.
    pub diff: Diff,
    /// The set after the deploy.
    pub result: MonitorSet,
}

/// Diffs `incoming` against `current`. With `prune`, monitors absent from `incoming` are
/// deleted; without, they are kept. The maintenance windows are `incoming`'s either way: a
/// deploy replaces them (a bundle without windows ends the deployed ones).
pub fn plan(current: &MonitorSet, incoming: &MonitorSet, prune: bool) -> Plan {
    let mut diff = Diff::default();
    let mut result = current.clone();
    // Canonical text read back from canonical text: cannot fail.
    let _ = result.set_maintenance_json(incoming.maintenance_json().map(str::to_owned));
    diff.maintenance = WindowsDiff::between(&windows(current), &windows(incoming));
    for (id, new) in incoming.raws() {
        match current.get(id) {
            None => diff.created.push(id.to_owned()),
            Some(old) if old == new.get() => diff.unchanged.push(id.to_owned()),
            Some(old) => diff.updated.push(Updated {
                id: id.to_owned(),
                fields: text_field_paths(old, new.get()),
            }),
        }
        result.insert(id.to_owned(), new.to_owned());
    }
    for (id, _) in current.iter() {
        if !incoming.contains(id) {
            if prune {
                diff.deleted.push(id.to_owned());
                result.remove(id);
            } else {
                diff.kept.push(id.to_owned());
            }
        }
    }
    Plan { diff, result }
}

/// The windows of `set`, each as its JSON (none when its stored text does not read).
fn windows(set: &MonitorSet) -> Vec<Value> {
    set.maintenance_json()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

fn text_field_paths(old: &str, new: &str) -> Vec<String> {
    match (
        serde_json::from_str::<Value>(old),
        serde_json::from_str::<Value>(new),
    ) {
        (Ok(old), Ok(new)) => field_paths(&old, &new),
        _ => vec![".".to_owned()],
    }
}

/// The paths at which two monitors' JSON differ, sorted (see
/// [`monitor_spec::changes::changes`]).
pub use monitor_spec::changes::field_paths;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::canonical_raw;
    use serde_json::json;

    /// Asserts the field paths between two monitors.
    fn check(old: Value, new: Value, expected: &[&str]) {
        assert_eq!(field_paths(&old, &new), expected, "{old} -> {new}");
        assert_eq!(field_paths(&new, &old), expected, "{new} -> {old}");
    }

    fn base() -> Value {
        serde_json::to_value(monitor_spec::TcpMonitor::new("db", "db.internal", 5432)).unwrap()
    }

    fn with(mut v: Value, path: &[&str], value: Value) -> Value {
        let mut at = &mut v;
        for key in &path[..path.len() - 1] {
            at = at.get_mut(*key).unwrap();
        }
        at[path[path.len() - 1]] = value;
        v
    }

    #[test]
    fn field_paths_of_monitor_changes() {
        let cases: Vec<(Value, &[&str])> = vec![
            (base(), &[]),
            (
                with(base(), &["target", "port"], json!(5433)),
                &["target.port"],
            ),
            (
                with(base(), &["target", "host"], json!("other")),
                &["target.host"],
            ),
            (
                with(base(), &["steps"], json!([{"send": {"text": "x"}}])),
                &["steps"],
            ),
            (
                with(base(), &["tls", "expiry_warn_days"], json!(10)),
                &["tls.expiry_warn_days"],
            ),
            (with(base(), &["tags"], json!(["a"])), &["tags"]),
            (
                with(base(), &["description"], json!("about")),
                &["description"],
            ),
            (
                with(
                    with(base(), &["name"], json!("n")),
                    &["timeouts", "read_ms"],
                    json!(1),
                ),
                &["name", "timeouts.read_ms"],
            ),
            (
                with(
                    base(),
                    &["retry"],
                    json!({"strategy": "fixed", "base_backoff_seconds": 10, "max_retries": 2}),
                ),
                &[
                    "retry.base_backoff_seconds",
                    "retry.max_retries",
                    "retry.strategy",
                ],
            ),
        ];
        for (new, expected) in cases {
            check(base(), new, expected);
        }
    }

    #[test]
    fn field_paths_of_non_objects() {
        check(json!(1), json!(2), &["."]);
        check(json!({"a": [1]}), json!({"a": [1, 2]}), &["a"]);
        check(json!({"a": {"b": 1}}), json!({"a": 2}), &["a"]);
        check(
            json!({"a": {"b": {"c": 1}}}),
            json!({"a": {"b": {"c": 2}}}),
            &["a.b.c"],
        );
    }

    fn set(items: &[(&str, Value)]) -> MonitorSet {
        let mut s = MonitorSet::new();
        for (id, v) in items {
            s.insert((*id).to_owned(), canonical_raw(v).unwrap());
        }
        s
    }

    #[test]
    fn plans() {
        let current = set(&[
            ("a", json!({"id": "a", "port": 1})),
            ("b", json!({"id": "b", "port": 2})),
            ("c", json!({"id": "c", "port": 3})),
        ]);
        let incoming = set(&[
            ("a", json!({"id": "a", "port": 1})),
            ("b", json!({"id": "b", "port": 9})),
            ("d", json!({"id": "d", "port": 4})),
        ]);
        let kept = plan(&current, &incoming, false);
        assert_eq!(
            kept.diff,
            Diff {
                created: vec!["d".into()],
                updated: vec![Updated {
                    id: "b".into(),
                    fields: vec!["port".into()],
                }],
                deleted: vec![],
                kept: vec!["c".into()],
                unchanged: vec!["a".into()],
                maintenance: WindowsDiff::default(),
            }
        );
        assert_eq!(
            kept.result.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(kept.result.get("b"), incoming.get("b"));

        let pruned = plan(&current, &incoming, true);
        assert_eq!(pruned.diff.deleted, ["c"]);
        assert!(pruned.diff.kept.is_empty());
        assert_eq!(pruned.result, incoming);

        let same = plan(&current, &current, true);
        assert!(same.diff.is_empty());
        assert_eq!(same.result, current);
        assert_eq!(same.diff.unchanged, ["a", "b", "c"]);

        let subset = plan(&current, &set(&[]), false);
        assert!(subset.diff.is_empty());
        assert_eq!(subset.result, current);
    }

    #[test]
    fn windows_alone_are_a_change() {
        let window = |id: &str, start: &str| {
            json!({"id": id, "tags": ["db"], "schedule": {"weekly": {
                "days": ["sunday"], "start": start, "end": "04:00"}}})
        };
        let with = |windows: Value| {
            let mut s = set(&[("a", json!({"id": "a", "port": 1}))]);
            s.set_maintenance(&windows).unwrap();
            s
        };
        let current = with(json!([window("w1", "03:00"), window("w2", "03:00")]));
        let incoming = with(json!([window("w1", "02:00"), window("w3", "03:00")]));
        let changed = plan(&current, &incoming, false);
        assert!(
            !changed.diff.is_empty(),
            "a windows-only change is a change"
        );
        assert_eq!(
            changed.diff.maintenance,
            WindowsDiff {
                created: vec!["w3".into()],
                updated: vec![Updated {
                    id: "w1".into(),
                    fields: vec!["schedule.weekly.start".into()],
                }],
                deleted: vec!["w2".into()],
            }
        );
        assert_eq!(changed.diff.unchanged, ["a"]);
        assert_eq!(changed.result, incoming);
        let ended = plan(&current, &with(json!([])), true);
        assert_eq!(ended.diff.maintenance.deleted, ["w1", "w2"]);
        assert!(plan(&current, &current, true).diff.is_empty());
    }
}
