//! What changed between two monitors' JSON, field by field: each path that differs with
//! its old and new value. The control plane's deploy diff lists the paths; the client's
//! preview and `versions show` print the values.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One field that differs between two monitors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's path, such as `target.port`, `steps` or `tls.expiry_warn_days`; `.`
    /// when the two are not both objects.
    pub path: String,
    /// The value before; `None` when the field was absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value after; `None` when the field is absent now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<Value>,
}

/// The fields at which `old` and `new` differ, sorted by path. Objects are compared key
/// by key (a key on one side only is a change at that key); arrays and scalars are
/// compared whole, so a changed dialog is `steps` and a changed tag list is `tags`. Two
/// different non-objects at the top give `.`.
pub fn changes(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk("", Some(old), Some(new), &mut out);
    out
}

/// The paths of [`changes`].
pub fn field_paths(old: &Value, new: &Value) -> Vec<String> {
    changes(old, new).into_iter().map(|c| c.path).collect()
}

fn walk(path: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    if let (Some(Value::Object(a)), Some(Value::Object(b))) = (old, new) {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let sub = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match (a.get(key), b.get(key)) {
                (Some(x), Some(y)) => walk(&sub, Some(x), Some(y), out),
                (x, y) => out.push(FieldChange {
                    path: sub,
                    old: x.cloned(),
                    new: y.cloned(),
                }),
            }
        }
        return;
    }
    out.push(FieldChange {
        path: if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        },
        old: old.cloned(),
        new: new.cloned(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(old: Value, new: Value, expected: Value) {
        assert_eq!(
            serde_json::to_value(changes(&old, &new)).unwrap(),
            expected,
            "{old} -> {new}"
        );
    }

    #[test]
    fn changes_name_paths_with_old_and_new_values() {
        check(json!({"a": 1}), json!({"a": 1}), json!([]));
        check(
            json!({"frequency": "1m", "target": {"host": "h", "port": 1}, "tags": ["a"]}),
            json!({"frequency": "30s", "target": {"host": "h", "port": 2}, "tags": ["b"], "x": null}),
            json!([
                {"path": "frequency", "old": "1m", "new": "30s"},
                {"path": "tags", "old": ["a"], "new": ["b"]},
                {"path": "target.port", "old": 1, "new": 2},
                {"path": "x", "new": null},
            ]),
        );
        check(
            json!({"tls": {"sni": "a"}}),
            json!({}),
            json!([{"path": "tls", "old": {"sni": "a"}}]),
        );
        check(
            json!(1),
            json!("1"),
            json!([{"path": ".", "old": 1, "new": "1"}]),
        );
    }
}
