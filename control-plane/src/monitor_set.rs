//! [`MonitorSet`]: a project's monitors keyed by id, each held as canonical JSON, as they
//! are stored, diffed, hashed and served, with the maintenance windows deployed with them.

use std::collections::BTreeMap;

use monitor_spec::bundle::Bundle;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::hash::{canonical_raw, sha256_hex};

/// A set of monitors keyed by id, each held as canonical JSON (object keys sorted, no
/// whitespace), so that equal monitors have equal text and equal sets equal hashes.
///
/// The set also carries the bundle's maintenance windows (canonical JSON of the array,
/// `None` when there are none): a deploy replaces them, and they travel with a version.
#[derive(Debug, Clone, Default)]
pub struct MonitorSet(BTreeMap<String, Box<RawValue>>, Option<Box<RawValue>>);

impl PartialEq for MonitorSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().eq(other.iter())
            && self.maintenance_json() == other.maintenance_json()
    }
}

impl Eq for MonitorSet {}

/// The canonical bundle: its keys in canonical (sorted) order.
#[derive(Serialize)]
struct CanonicalBundle<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    maintenance: Option<&'a RawValue>,
    monitors: Vec<&'a RawValue>,
    schema_version: u32,
}

/// A stored bundle, read back.
#[derive(Deserialize)]
struct StoredBundle {
    #[serde(default)]
    maintenance: Vec<Value>,
    monitors: Vec<Value>,
}

/// The one field of a stored monitor the set needs.
#[derive(Deserialize)]
struct MonitorId {
    id: String,
}

impl MonitorSet {
    /// An empty set.
    pub fn new() -> Self {
        MonitorSet::default()
    }

    /// The monitors of a (validated) bundle in their canonical JSON.
    pub fn from_bundle(bundle: &Bundle) -> Result<Self, serde_json::Error> {
        let mut set = MonitorSet::new();
        for m in &bundle.monitors {
            set.insert(m.id.clone(), canonical_raw(&serde_json::to_value(m)?)?);
        }
        set.set_maintenance(&serde_json::to_value(&bundle.maintenance)?)?;
        Ok(set)
    }

    /// Reads the canonical bundle JSON [`MonitorSet::bundle_json`] writes.
    pub fn from_bundle_json(text: &str) -> Result<Self, serde_json::Error> {
        let stored: StoredBundle = serde_json::from_str(text)?;
        let mut set = MonitorSet::new();
        for m in stored.monitors {
            let MonitorId { id } = MonitorId::deserialize(&m)?;
            set.insert(id, canonical_raw(&m)?);
        }
        set.set_maintenance(&Value::Array(stored.maintenance))?;
        Ok(set)
    }

    /// Sets the maintenance windows from their JSON array (none when empty or null).
    pub fn set_maintenance(&mut self, windows: &Value) -> Result<(), serde_json::Error> {
        self.1 = match windows {
            Value::Null => None,
            Value::Array(list) if list.is_empty() => None,
            v => Some(canonical_raw(v)?),
        };
        Ok(())
    }

    /// Sets the maintenance windows from the canonical JSON of their array, as
    /// [`MonitorSet::maintenance_json`] gives it.
    pub fn set_maintenance_json(&mut self, json: Option<String>) -> Result<(), serde_json::Error> {
        self.1 = json.map(RawValue::from_string).transpose()?;
        Ok(())
    }

    /// The canonical JSON array of the maintenance windows, `None` when there are none.
    pub fn maintenance_json(&self) -> Option<&str> {
        self.1.as_deref().map(RawValue::get)
    }

    /// The maintenance windows, parsed.
    pub fn maintenance(
        &self,
    ) -> Result<Vec<monitor_spec::maintenance::MaintenanceWindow>, serde_json::Error> {
        self.maintenance_json()
            .map_or(Ok(Vec::new()), serde_json::from_str)
    }

    /// Adds or replaces a monitor; `json` must be canonical JSON.
    pub fn insert(&mut self, id: String, json: Box<RawValue>) {
        self.0.insert(id, json);
    }

    /// Removes a monitor.
    pub fn remove(&mut self, id: &str) -> Option<Box<RawValue>> {
        self.0.remove(id)
    }

    /// The canonical JSON of a monitor.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(|m| m.get())
    }

    /// Whether the set holds a monitor with this id.
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// How many monitors the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ids and canonical JSON, sorted by id.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.get()))
    }

    /// Ids and canonical JSON as raw values, to embed as they are; sorted by id.
    pub fn raws(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_ref()))
    }

    /// The canonical JSON of the set as a bundle: `{"monitors":[...],"schema_version":1}`,
    /// monitors sorted by id; `maintenance` first when there are windows.
    pub fn bundle_json(&self) -> String {
        let bundle = CanonicalBundle {
            maintenance: self.1.as_deref(),
            monitors: self.0.values().map(AsRef::as_ref).collect(),
            schema_version: monitor_spec::SCHEMA_VERSION,
        };
        // Raw values and a number: writing them to a string cannot fail.
        serde_json::to_string(&bundle).unwrap_or_default()
    }

    /// SHA-256 hex of [`MonitorSet::bundle_json`].
    pub fn hash(&self) -> String {
        sha256_hex(self.bundle_json().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn bundle_json_round_trips() {
        let mut set = MonitorSet::new();
        set.insert("b".into(), raw(r#"{"id":"b","x":1}"#));
        set.insert("a".into(), raw(r#"{"id":"a"}"#));
        let text = set.bundle_json();
        assert_eq!(
            text,
            r#"{"monitors":[{"id":"a"},{"id":"b","x":1}],"schema_version":1}"#
        );
        assert_eq!(MonitorSet::from_bundle_json(&text).unwrap(), set);
        assert_eq!(set.hash().len(), 64);
    }
}
