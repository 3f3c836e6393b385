//! Reading a bundle from a stream (a file, a pipe) one monitor at a time, never holding
//! its whole text: serde_json reads the top level from a buffered reader, each monitor of
//! the `monitors` array is taken as its own text, typed, validated and handed on at once.
//! Lines are counted as the bytes pass, so every error names the line and column reading
//! the whole text named (a top-level error is made again from the bytes since the last
//! monitor, see `Reading::again`).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::bundle::{BundleError, duplicates};
use crate::json::{self, JsonError};
use crate::maintenance::{MaintenanceWindow, check_windows};
use crate::spec::{SCHEMA_VERSION, TcpMonitor};
use crate::validate::{ValidationError, ValidationErrors};

mod source;
use source::{BOM, Source, Tracked, advance};

/// A bundle that could not be read from a stream: the bundle is wrong, or the stream
/// failed.
#[derive(Debug, Error)]
pub enum BundleReadError {
    /// The text is not a valid bundle.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The stream could not be read.
    #[error("cannot read the bundle: {0}")]
    Io(#[source] io::Error),
}

impl BundleReadError {
    /// The error of a bundle read from memory, which cannot fail to be read: a failed
    /// read (which cannot be) is a JSON error at the top.
    pub(crate) fn in_memory(self) -> BundleError {
        match self {
            BundleReadError::Bundle(e) => e,
            BundleReadError::Io(e) => BundleError::Json(JsonError {
                path: ".".to_owned(),
                message: e.to_string(),
                line: 0,
                column: 0,
            }),
        }
    }
}

/// Reads the bundle of `input` and hands each monitor of the right shape to `each` (which
/// validates it and keeps it, or says why it is invalid), in order: every problem with
/// its path inside the bundle, ordered by monitor, then those of the maintenance windows,
/// then the ids used twice in their monitor's place. The windows. Only text that is not
/// a bundle at all (a syntax error, a wrong top level or `schema_version`) stops at the
/// first error. What `each` kept of a bundle that turns out invalid is to be dropped.
///
/// serde_json reads the top level from the stream; the `monitors` array is read here,
/// each monitor's text found by its brackets and typed on its own, so that the bulk of
/// the text never goes through serde_json a byte at a time.
pub(crate) fn read_each<'i>(
    input: impl Read + 'i,
    each: &mut dyn FnMut(TcpMonitor) -> Result<(), ValidationErrors>,
) -> Result<Vec<MaintenanceWindow>, BundleReadError> {
    let source = RefCell::new(Source::new(Box::new(input)).map_err(BundleReadError::Io)?);
    let mut reading = Reading {
        source: &source,
        each,
        problems: Vec::new(),
        ids: Ids::default(),
        count: 0,
        opened: String::new(),
        before: None,
    };
    let top = {
        let mut de = serde_json::Deserializer::from_reader(Tracked(&source));
        let parsed = Top {
            reading: &mut reading,
        }
        .deserialize(&mut de);
        parsed.and_then(|top| de.end().map(|()| top))
    };
    let (version, windows) = match top {
        Ok(top) => top,
        Err(streamed) => {
            let failed = source.borrow_mut().failed.take();
            if let Some(failed) = failed {
                return Err(BundleReadError::Io(failed));
            }
            // The rest of a byte order mark where reading stopped, to name it.
            let _ = Tracked(&source)
                .take(BOM.len() as u64)
                .read_to_end(&mut Vec::new());
            return Err(BundleError::Json(reading.again(&source.borrow(), &streamed)).into());
        }
    };
    if version != SCHEMA_VERSION {
        return Err(BundleError::Version(version).into());
    }
    let Reading {
        mut problems, ids, ..
    } = reading;
    problems.extend(check_windows(&windows).into_iter().map(|p| (usize::MAX, p)));
    problems.extend(duplicates(ids.iter()));
    if problems.is_empty() {
        Ok(windows)
    } else {
        problems.sort_by_key(|(i, _)| *i);
        Err(BundleError::Invalid(problems.into_iter().map(|(_, p)| p).collect()).into())
    }
}

/// The ids of the monitors read, each with its place in the bundle, in one buffer.
#[derive(Debug, Default)]
struct Ids {
    text: String,
    /// Where each id ends in `text`, and its monitor's place.
    ends: Vec<(usize, usize)>,
}

impl Ids {
    fn push(&mut self, id: &str, at: usize) {
        self.text.push_str(id);
        self.ends.push((self.text.len(), at));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, usize)> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|(end, _)| *end));
        starts
            .zip(&self.ends)
            .map(|(start, &(end, at))| (self.text.get(start..end).unwrap_or_default(), at))
    }
}

/// The monitors read so far: what became of each.
struct Reading<'s, 'i, 'e> {
    source: &'s RefCell<Source<'i>>,
    each: &'e mut dyn FnMut(TcpMonitor) -> Result<(), ValidationErrors>,
    problems: Vec<(usize, ValidationError)>,
    ids: Ids,
    /// How many monitors were read.
    count: usize,
    /// A stand-in for the text before the `monitors` array's value, as far as it was read:
    /// the top level opened and the fields met so far, with values of the right shape.
    opened: String,
    /// The stand-in for the text up to the `monitors` array's first element, once it was
    /// met (and the mark moved there).
    before: Option<String>,
}

impl Reading<'_, '_, '_> {
    /// The error of `streamed` as reading the whole text gave it (its path, message, line
    /// and column): the bytes since the mark read again after a stand-in for what came
    /// before them, which leaves the parser as the text did (the same fields met, as many
    /// monitors before), then its position moved to the mark's.
    fn again(&self, seen: &Source<'_>, streamed: &serde_json::Error) -> JsonError {
        let mut text = Vec::new();
        if let Some(before) = &self.before {
            text.extend_from_slice(before.as_bytes());
            for i in 0..self.count {
                text.extend_from_slice(if i == 0 { b"0" } else { b",0" });
            }
        }
        let stand_in = text.len();
        text.extend_from_slice(&seen.since);
        match json::read_borrowed_bytes::<RawBundle<'_>>(&text) {
            Err(mut e) => {
                if stand_in > 0 {
                    if e.line <= 1 {
                        e.line = seen.line;
                        e.column = (seen.column + e.column).saturating_sub(stand_in);
                    } else {
                        e.line += seen.line - 1;
                    }
                }
                e
            }
            // Not met: the stream fails where the text does.
            Ok(_) => JsonError {
                path: ".".to_owned(),
                message: streamed.to_string(),
                line: streamed.line(),
                column: streamed.column(),
            },
        }
    }

    /// Types the monitor `text`, just read, which starts at `line` after `before` bytes on
    /// it, and hands it on or keeps its problems. `Err` when it is not JSON at all, which
    /// makes the bundle's error.
    fn monitor(&mut self, text: &[u8], (line, before): (usize, usize)) -> Result<(), ()> {
        let i = self.count;
        let typed = std::str::from_utf8(text)
            .map_err(|_| ())
            .map(json::read::<TcpMonitor>);
        let monitor = match typed {
            Ok(Ok(m)) => m,
            Ok(Err(e)) if serde_json::from_slice::<de::IgnoredAny>(text).is_ok() => {
                let (line, column) = if e.line <= 1 {
                    (line, before + e.column)
                } else {
                    (line + e.line - 1, e.column)
                };
                self.problems.push((
                    i,
                    ValidationError {
                        path: at(i, &e.path),
                        message: format!("{} (line {line}, column {column})", e.message),
                    },
                ));
                self.count += 1;
                return Ok(());
            }
            _ => return Err(()),
        };
        self.count += 1;
        self.ids.push(&monitor.id, i);
        if let Err(errors) = (self.each)(monitor) {
            self.problems.extend(errors.0.into_iter().map(|e| {
                (
                    i,
                    ValidationError {
                        path: at(i, &e.path),
                        message: e.message,
                    },
                )
            }));
        }
        Ok(())
    }
}

/// `monitors[i].PATH`, or `monitors[i]` for the monitor as a whole.
fn at(i: usize, path: &str) -> String {
    if path == "." || path.is_empty() {
        format!("monitors[{i}]")
    } else {
        format!("monitors[{i}].{path}")
    }
}

/// A bundle read only as far as its monitors' texts, as the whole text was read: to make
/// an error of the stream again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawBundle<'a> {
    schema_version: u32,
    #[serde(borrow)]
    monitors: Vec<&'a RawValue>,
    #[serde(default)]
    maintenance: Vec<MaintenanceWindow>,
}

/// The fields of a bundle, as serde's derive names them.
const FIELDS: &[&str] = &["schema_version", "monitors", "maintenance"];

/// A field of a bundle.
enum Field {
    SchemaVersion,
    Monitors,
    Maintenance,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(FieldName)
    }
}

struct FieldName;

impl Visitor<'_> for FieldName {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
        match v {
            "schema_version" => Ok(Field::SchemaVersion),
            "monitors" => Ok(Field::Monitors),
            "maintenance" => Ok(Field::Maintenance),
            other => Err(E::unknown_field(other, FIELDS)),
        }
    }
}

/// The top level of a bundle (read as serde's derive reads its struct, errors alike): its
/// `schema_version` and windows; its monitors go to the [`Reading`].
struct Top<'r, 's, 'i, 'e> {
    reading: &'r mut Reading<'s, 'i, 'e>,
}

/// What the derive says of a bundle written as an array too short.
const AS_ARRAY: &str = "struct RawBundle with 3 elements";

impl<'de> DeserializeSeed<'de> for Top<'_, '_, '_, '_> {
    type Value = (u32, Vec<MaintenanceWindow>);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_struct("RawBundle", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_, '_, '_> {
    type Value = (u32, Vec<MaintenanceWindow>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct RawBundle")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut version = None;
        let mut monitors = false;
        let mut windows = None;
        self.reading.opened.push('{');
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::SchemaVersion => {
                    if version.is_some() {
                        return Err(de::Error::duplicate_field("schema_version"));
                    }
                    version = Some(map.next_value::<u32>()?);
                    self.reading.opened.push_str(r#""schema_version":0,"#);
                }
                Field::Monitors => {
                    if monitors {
                        return Err(de::Error::duplicate_field("monitors"));
                    }
                    self.reading.opened.push_str(r#""monitors":"#);
                    map.next_value_seed(Monitors {
                        reading: &mut *self.reading,
                    })?;
                    monitors = true;
                }
                Field::Maintenance => {
                    if windows.is_some() {
                        return Err(de::Error::duplicate_field("maintenance"));
                    }
                    windows = Some(map.next_value::<Vec<MaintenanceWindow>>()?);
                    self.reading.opened.push_str(r#""maintenance":[],"#);
                }
            }
        }
        let version = version.ok_or_else(|| de::Error::missing_field("schema_version"))?;
        if !monitors {
            return Err(de::Error::missing_field("monitors"));
        }
        Ok((version, windows.unwrap_or_default()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let version = seq
            .next_element::<u32>()?
            .ok_or_else(|| de::Error::invalid_length(0, &AS_ARRAY))?;
        self.reading.opened.push_str("[0,");
        seq.next_element_seed(Monitors {
            reading: &mut *self.reading,
        })?
        .ok_or_else(|| de::Error::invalid_length(1, &AS_ARRAY))?;
        let windows = seq.next_element()?.unwrap_or_default();
        Ok((version, windows))
    }
}

/// The `monitors` array, one monitor at a time into the [`Reading`].
struct Monitors<'r, 's, 'i, 'e> {
    reading: &'r mut Reading<'s, 'i, 'e>,
}

impl<'de> DeserializeSeed<'de> for Monitors<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Monitors<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _seq: A) -> Result<(), A::Error> {
        // serde_json has taken the `[` and nothing after it: the monitors are read here,
        // up to the `]`, which is left to serde_json. Any error is made again as reading
        // the whole text made it ([`Reading::again`]).
        let reading = self.reading;
        reading.before = Some(format!("{}[", reading.opened));
        let not_json = || de::Error::custom("not a bundle");
        let source = reading.source;
        let mut first = true;
        loop {
            let (start, at) = {
                let mut src = source.borrow_mut();
                src.mark();
                src.skip_blanks().map_err(de::Error::custom)?;
                match src.peek().map_err(de::Error::custom)? {
                    Some(b']') => return Ok(()),
                    Some(b',') if !first => {
                        src.take(1);
                        src.skip_blanks().map_err(de::Error::custom)?;
                    }
                    Some(_) if first => {}
                    _ => return Err(not_json()),
                }
                let start = src.since.len();
                let at = advance((src.line, src.column), &src.since);
                if !matches!(src.peek().map_err(de::Error::custom)?, Some(b) if b != b']')
                    || !src.take_value().map_err(de::Error::custom)?
                {
                    return Err(not_json());
                }
                (start, at)
            };
            first = false;
            let src = source.borrow();
            let text = src.since.get(start..).unwrap_or_default();
            reading.monitor(text, at).map_err(|()| not_json())?;
        }
    }
}

#[cfg(test)]
mod tests;
