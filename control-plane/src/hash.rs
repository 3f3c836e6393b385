//! Hashing and canonical JSON: SHA-256 as hex, and JSON with object keys sorted so that
//! equal monitors have equal text and equal sets equal hashes.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// SHA-256 of `data` as lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A JSON value that serializes with its object keys sorted by their UTF-8 bytes.
struct Canonical<'a>(&'a Value);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    out.serialize_entry(k, &Canonical(v))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for v in items {
                    out.serialize_element(&Canonical(v))?;
                }
                out.end()
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

/// Canonical JSON of a value: object keys sorted by their UTF-8 bytes, no whitespace,
/// strings and numbers as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    serde_json::to_string(&Canonical(value)).unwrap_or_default()
}

/// [`canonical_json`] as a raw JSON value, to embed in a larger document as it is.
pub fn canonical_raw(value: &Value) -> Result<Box<RawValue>, serde_json::Error> {
    serde_json::value::to_raw_value(&Canonical(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_sorts_keys_recursively() {
        let v = json!({"b": [ {"z": 1, "a": "x\"y"} ], "a": null, "é": true, "Z": 1.5});
        assert_eq!(
            canonical_json(&v),
            r#"{"Z":1.5,"a":null,"b":[{"a":"x\"y","z":1}],"é":true}"#
        );
        assert_eq!(canonical_raw(&v).unwrap().get(), canonical_json(&v));
    }

    #[test]
    fn hashes() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
