//! Reading a bundle from a stream (a file, a pipe) one monitor at a time, never holding
//! its whole text: serde_json reads the top level from a buffered reader, each monitor of
//! the `monitors` array is taken as its own text, typed, validated and handed on at once.
//! Lines are counted as the bytes pass, so every error names the line and column reading
//! the whole text named (a top-level error is made again from the bytes since the last
//! monitor, see `Reading::again`).

use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::bundle::{BundleError, duplicates};
use crate::json::{self, JsonError};
use crate::maintenance::{MaintenanceWindow, check_windows};
use crate::spec::{SCHEMA_VERSION, TcpMonitor};
use crate::validate::{ValidationError, ValidationErrors};

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

/// How much of the stream is read at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// The UTF-8 byte order mark.
const BOM: &[u8] = "\u{feff}".as_bytes();

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

/// The stream, without a leading byte order mark, and what was read of it since the last
/// mark (the end of a monitor), with where the mark is in the text.
struct Source<'i> {
    inner: BufReader<Box<dyn Read + 'i>>,
    /// The bytes since the mark.
    since: Vec<u8>,
    /// The mark's line, from 1.
    line: usize,
    /// The bytes before the mark on its line.
    column: usize,
    /// The error of a failed read, which serde_json reports without its kind.
    failed: Option<io::Error>,
}

/// The line and the bytes before on it of the place `bytes` after (`line`, `column`).
fn advance((line, column): (usize, usize), bytes: &[u8]) -> (usize, usize) {
    match memchr::memrchr(b'\n', bytes) {
        Some(last) => (
            line + memchr::memchr_iter(b'\n', bytes).count(),
            bytes.len() - last - 1,
        ),
        None => (line, column + bytes.len()),
    }
}

/// Whether `b` is JSON's whitespace.
fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'i> Source<'i> {
    /// `input` from its start, a byte order mark there dropped.
    fn new(mut input: Box<dyn Read + 'i>) -> io::Result<Self> {
        // Reading the whole text dropped two marks (one, then one more while parsing).
        let mut first = [0; 6];
        let mut got = 0;
        while got < first.len() {
            match input.read(&mut first[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut start = 0;
        for _ in 0..2 {
            if first[start..got].starts_with(BOM) {
                start += BOM.len();
            }
        }
        let ahead = io::Cursor::new(first[start..got].to_vec());
        Ok(Source {
            inner: BufReader::with_capacity(CHUNK_BYTES, Box::new(ahead.chain(input))),
            since: Vec::new(),
            line: 1,
            column: 0,
            failed: None,
        })
    }

    /// Keeps a failed read's error for the caller, and gives serde_json its like.
    fn fail(&mut self, e: io::Error) -> io::Error {
        let told = io::Error::new(e.kind(), e.to_string());
        self.failed = Some(e);
        told
    }

    /// The buffered bytes, read more when there are none; empty at the end.
    fn buffered(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.inner.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(self.inner.buffer())
    }

    /// Takes `n` buffered bytes into `since`.
    fn take(&mut self, n: usize) {
        self.since
            .extend_from_slice(self.inner.buffer().get(..n).unwrap_or_default());
        self.inner.consume(n);
    }

    /// The next byte, not taken.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.buffered()?.first().copied())
    }

    /// Takes the blanks that come next.
    fn skip_blanks(&mut self) -> io::Result<()> {
        loop {
            let buffered = self.buffered()?;
            let n = buffered.iter().take_while(|b| blank(**b)).count();
            let all = n == buffered.len();
            self.take(n);
            if !all || n == 0 {
                return Ok(());
            }
        }
    }

    /// Takes the JSON value that starts here as far as its brackets, quotes or (for a
    /// scalar) the next delimiter say: whether it ended before the stream did. Its syntax
    /// is checked by whoever reads it.
    fn take_value(&mut self) -> io::Result<bool> {
        let mut scan = Scan::default();
        loop {
            let buffered = self.buffered()?;
            if buffered.is_empty() {
                return Ok(scan.scalar && scan.started);
            }
            match scan.feed(buffered) {
                Some(n) => {
                    self.take(n);
                    return Ok(true);
                }
                None => {
                    let n = buffered.len();
                    self.take(n);
                }
            }
        }
    }

    /// Moves the mark to the end of what was read.
    fn mark(&mut self) {
        (self.line, self.column) = advance((self.line, self.column), &self.since);
        self.since.clear();
    }
}

/// Where a value being taken stands.
#[derive(Debug, Default)]
struct Scan {
    started: bool,
    /// A number or a literal, which ends at a delimiter.
    scalar: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    /// Reads on through `bytes`: how many of them the value takes, if it ends there.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Most of a monitor's bytes are in its strings: on to the next quote or
                // escape at once.
                let at = i + memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
                if bytes.get(at) == Some(&b'\\') {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(at + 1);
                    }
                }
                i = at + 1;
                continue;
            }
            i += 1;
            if !self.started {
                self.started = true;
                match b {
                    b'{' | b'[' => self.depth = 1,
                    b'"' => self.in_string = true,
                    _ => self.scalar = true,
                }
                continue;
            }
            if self.scalar {
                if blank(b) || matches!(b, b',' | b']' | b'}') {
                    return Some(i - 1);
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// The reader serde_json reads the top level through: what it is given goes into
/// [`Source::since`] too.
struct Tracked<'s, 'i>(&'s RefCell<Source<'i>>);

impl Read for Tracked<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut source = self.0.borrow_mut();
        match source.inner.read(out) {
            Ok(n) => {
                let given = out.get(..n).unwrap_or_default();
                source.since.extend_from_slice(given);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(source.fail(e)),
        }
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
mod tests {
    use super::*;
    use crate::bundle::Bundle;
    /// A monitor's JSON on one line.
    fn m(id: &str, port: &str) -> String {
        format!(
            r#"{{"schema_version":1,"id":"{id}","name":"{id}","target":{{"host":"h","port":{port}}}}}"#
        )
    }

    /// A bundle of `monitors`, one a line from line 2, with `rest` after them.
    fn b(monitors: &[String], rest: &str) -> String {
        format!(
            "{{\"schema_version\": 1, \"monitors\": [\n{}\n]{rest}}}",
            monitors.join(",\n")
        )
    }

    const WINDOW: &str = r#", "maintenance": [{"id":"w","monitors":["a"],"schedule":{"once":{"start":"2026-01-01T00:00:00Z","end":"2026-01-01T01:00:00Z"}}}]"#;

    /// The cases: each bundle's text and what reading it gives.
    fn cases() -> Vec<(String, &'static str)> {
        let pretty = "{\n  \"schema_version\": 1,\n  \"monitors\": [\n    {\n      \"schema_version\": 1,\n      \"id\": \"a\",\n      \"name\": \"a\",\n      \"target\": {\n        \"host\": \"h\",\n        \"port\": \"x\"\n      }\n    }\n  ]\n}\n".to_owned();
        vec![
            (
                b(&[m("a", "1"), m("b", "2")], WINDOW),
                "ok: a,b | 1 windows",
            ),
            (b(&[], ""), "ok:  | 0 windows"),
            (
                b(&[m("a", "1"), m("b", "\"2\""), m("c", "3")], ""),
                "1 problem makes the bundle invalid:\n  monitors[1].target.port: invalid type: string \"2\", expected u16 (line 3, column 71)",
            ),
            (
                b(&[m("a", "1"), m("b", "0"), m("", "70000")], ""),
                "2 problems make the bundle invalid:\n  monitors[1].target.port: must be between 1 and 65535, got 0\n  monitors[2].target.port: invalid value: integer `70000`, expected u16 (line 4, column 71)",
            ),
            (
                b(&[m("a", "1"), m("b", "2"), m("a", "3"), m("b", "0")], ""),
                "3 problems make the bundle invalid:\n  monitors[2].id: duplicate id `a`, also used by monitors[0]\n  monitors[3].target.port: must be between 1 and 65535, got 0\n  monitors[3].id: duplicate id `b`, also used by monitors[1]",
            ),
            (
                b(&[m("a", "1")], "").replace("\"schema_version\": 1,", "\"schema_version\": 2,"),
                "schema_version: unsupported bundle version 2; this build reads version 1",
            ),
            (
                format!("\u{feff}{}", b(&[m("a", "1")], "")),
                "ok: a | 0 windows",
            ),
            (
                format!("\u{feff}{}", b(&[m("a", "1"), m("b", "true")], "")),
                "1 problem makes the bundle invalid:\n  monitors[1].target.port: invalid type: boolean `true`, expected u16 (line 3, column 72)",
            ),
            (
                b(&[m("a", "1"), format!("\u{feff}{}", m("b", "1"))], ""),
                "monitors[1]: a byte order mark (U+FEFF) is allowed only at the start of the text (line 3, column 1)",
            ),
            (
                b(&[m("a", "1"), m("b", "1").replace("}}", "}")], ""),
                "monitors[1]: expected `,` or `}` (line 4, column 1)",
            ),
            (
                b(
                    &[
                        m("a", "1"),
                        "5".to_owned(),
                        "[1, 2]".to_owned(),
                        "\"x\"".to_owned(),
                        "-1.5e3".to_owned(),
                    ],
                    "",
                ),
                "4 problems make the bundle invalid:\n  monitors[1]: invalid type: integer `5`, expected struct TcpMonitor (line 3, column 1)\n  monitors[2].[1]: invalid type: integer `2`, expected a string (line 4, column 5)\n  monitors[3]: invalid type: string \"x\", expected struct TcpMonitor (line 5, column 3)\n  monitors[4]: invalid type: floating point `-1500.0`, expected struct TcpMonitor (line 6, column 6)",
            ),
            (
                pretty.clone(),
                "1 problem makes the bundle invalid:\n  monitors[0].target.port: invalid type: string \"x\", expected u16 (line 10, column 19)",
            ),
            (
                pretty.replace("\"x\"", "0"),
                "1 problem makes the bundle invalid:\n  monitors[0].target.port: must be between 1 and 65535, got 0",
            ),
            (
                b(&[m("a", "1")], WINDOW).replace("\"w\"", "\"bad id!\""),
                "1 problem makes the bundle invalid:\n  maintenance[0].id: `bad id!` contains ` `; use 1 to 128 characters: letters, digits, `-`, `_`, `.`, `:` and `/`",
            ),
            (
                format!("{{\"monitors\": [{}], \"schema_version\": 1}}", m("a", "1")),
                "ok: a | 0 windows",
            ),
            (
                format!("{{\"monitors\": [{}], \"schema_version\": 3}}", m("a", "x")),
                "monitors[0]: expected value (line 1, column 83)",
            ),
            (
                "{\"schema_version\": 1}".to_owned(),
                ".: missing field `monitors` (line 1, column 21)",
            ),
            (
                "{\"monitors\": []}".to_owned(),
                ".: missing field `schema_version` (line 1, column 16)",
            ),
            (
                "{\"schema_version\": 1, \"monitors\": {}}".to_owned(),
                "monitors: invalid type: map, expected a sequence (line 1, column 34)",
            ),
            (
                "{\"schema_version\": 1, \"monitors\": [], \"extra\": 1}".to_owned(),
                "extra: unknown field `extra`, expected one of `schema_version`, `monitors`, `maintenance` (line 1, column 45)",
            ),
            (
                "{\"schema_version\": 1, \"monitors\": [], \"monitors\": []}".to_owned(),
                ".: duplicate field `monitors` (line 1, column 48)",
            ),
            (
                "{\"schema_version\": \"1\", \"monitors\": []}".to_owned(),
                "schema_version: invalid type: string \"1\", expected u32 (line 1, column 22)",
            ),
            (
                format!("{} x", b(&[m("a", "1")], "")),
                ".: trailing characters (line 3, column 4)",
            ),
            (
                format!("{} \u{feff}", b(&[m("a", "1")], "")),
                ".: a byte order mark (U+FEFF) is allowed only at the start of the text (line 3, column 4)",
            ),
            (format!("[1, [{}]]", m("a", "1")), "ok: a | 0 windows"),
            (
                "[1]".to_owned(),
                ".: invalid length 1, expected struct RawBundle with 3 elements (line 1, column 3)",
            ),
            (
                "".to_owned(),
                ".: EOF while parsing a value (line 1, column 0)",
            ),
            (
                "\"bundle\"".to_owned(),
                ".: invalid type: string \"bundle\", expected struct RawBundle (line 1, column 8)",
            ),
            (
                b(&[m("a", "1")], "").replace("]}", "]"),
                ".: EOF while parsing an object (line 3, column 1)",
            ),
            (
                b(&[m("a", "1"), m("b", "2")], "").replace("\n]", ",\n]"),
                "monitors: trailing comma (line 4, column 1)",
            ),
            (
                b(&[m("a]\\\"}{[", "1"), m("b", "2")], ""),
                "1 problem makes the bundle invalid:\n  monitors[0].id: `a]\"}{[` contains `]`; use 1 to 128 characters: letters, digits, `-`, `_`, `.`, `:` and `/`",
            ),
            (
                b(
                    &[
                        m("a", "1").replace("}}", "},\"tags\":[\"x\",\"[\"]}"),
                        m("b", "2"),
                    ],
                    "",
                ),
                "1 problem makes the bundle invalid:\n  monitors[0].tags[1]: `[` contains `[`; a tag is 1 to 64 ascii letters, digits, spaces and `-_.:/=@+`",
            ),
            (
                b(&[m("a", "1"), "{\"a\": [1}".to_owned(), m("c", "1")], ""),
                "monitors[1]: expected `,` or `]` (line 3, column 9)",
            ),
            (
                b(&[m("a", "1"), "{\"id\": \"b".to_owned()], ""),
                "monitors[1]: control character (\\u0000-\\u001F) found while parsing a string (line 3, column 9)",
            ),
            (
                b(&[m("a", "1"), String::new()], ""),
                "monitors: trailing comma (line 4, column 1)",
            ),
            (
                b(&[String::new(), m("a", "1")], ""),
                "monitors[0]: expected value (line 2, column 1)",
            ),
            (
                b(&[m("a", "1"), "5x".to_owned(), m("c", "1")], ""),
                "monitors: expected `,` or `]` (line 3, column 2)",
            ),
            (
                b(&[m("a", "1"), "tru".to_owned()], ""),
                "monitors[1]: expected ident (line 4, column 0)",
            ),
            (
                b(&[m("a", "1"), "null".to_owned(), "{}".to_owned()], ""),
                "2 problems make the bundle invalid:\n  monitors[1]: invalid type: null, expected struct TcpMonitor (line 3, column 4)\n  monitors[2]: missing field `schema_version` (line 4, column 2)",
            ),
            (
                b(&[m("a", "x"), m("b", "1")], ""),
                "monitors[0]: expected value (line 2, column 69)",
            ),
            (
                b(&[m("a", "1"), m("b", "1")], "").replace("}\n]", "} x\n]"),
                "monitors: expected `,` or `]` (line 3, column 73)",
            ),
            (
                b(&[m("a", "1"), m("b", "1")], "").replace(",\n{", "\n{"),
                "monitors: expected `,` or `]` (line 3, column 1)",
            ),
            (
                b(&[m("a", "1")], ", \"maintenance\": [{\"id\": 5}]"),
                "maintenance[0].id: invalid type: integer `5`, expected a string (line 3, column 27)",
            ),
            (
                b(&[m("a", "1")], ", \"schema_version\": 1"),
                ".: duplicate field `schema_version` (line 3, column 19)",
            ),
            (
                format!(
                    "{{\"maintenance\": [], \"monitors\": [{}], \"maintenance\": []}}",
                    m("a", "1")
                ),
                ".: duplicate field `maintenance` (line 1, column 120)",
            ),
            (
                format!("{{\"schema_version\": 1, \"monitors\": [{}]", m("a", "1")),
                ".: EOF while parsing an object (line 1, column 107)",
            ),
            (
                format!("{{\"schema_version\": 1, \"monitors\": [{}", m("a", "1")),
                "monitors: EOF while parsing a list (line 1, column 106)",
            ),
            (
                format!("{{\"schema_version\": 1, \"monitors\": [{}, 7", m("a", "1")),
                "monitors: EOF while parsing a list (line 1, column 109)",
            ),
            (
                b(&[m("a", "1"), m("b", "1")], "").replace("\"b\"", "\"b\u{feff}\""),
                "2 problems make the bundle invalid:\n  monitors[1].id: `b﻿` contains `﻿`; use 1 to 128 characters: letters, digits, `-`, `_`, `.`, `:` and `/`\n  monitors[1].name: contains the invisible character `\\u{feff}`; control and format characters (such as the bidi controls and zero-width spaces) are not allowed",
            ),
            (
                format!("\u{feff}\u{feff}{}", b(&[m("a", "1")], "")),
                "ok: a | 0 windows",
            ),
            (
                format!("[1, [{}], []]", m("a", "0")),
                "1 problem makes the bundle invalid:\n  monitors[0].target.port: must be between 1 and 65535, got 0",
            ),
            (
                format!("[1, [{}, 3]]", m("a", "1")),
                "1 problem makes the bundle invalid:\n  monitors[1]: invalid type: integer `3`, expected struct TcpMonitor (line 1, column 79)",
            ),
        ]
    }

    /// What reading `text` gives: the kept ids and windows, or the error.
    fn outcome(read: Result<Bundle, BundleError>) -> String {
        match read {
            Ok(b) => format!(
                "ok: {} | {} windows",
                b.monitors
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                b.maintenance.len()
            ),
            Err(e) => e.to_string(),
        }
    }

    /// A reader that gives out one byte at a time, then fails if told to.
    struct Trickle<'a> {
        rest: &'a [u8],
        fail: bool,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.rest.split_first(), out.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.rest = rest;
                    Ok(1)
                }
                (None, _) if self.fail => Err(io::Error::other("the disk is gone")),
                _ => Ok(0),
            }
        }
    }

    /// Checks that `text` reads as `expected` (the ids and windows kept, or the error),
    /// from memory and from a stream of one byte at a time, and that the validated
    /// reading agrees.
    #[track_caller]
    fn check(text: &str, expected: &str) {
        assert_eq!(outcome(Bundle::read_checked(text)), expected, "{text}");
        let trickled = Bundle::read_checked_from(Trickle {
            rest: text.as_bytes(),
            fail: false,
        })
        .map_err(BundleReadError::in_memory);
        assert_eq!(outcome(trickled), expected, "{text}");
        let valid = match Bundle::read_valid(text) {
            Ok(v) => v
                .iter()
                .map(|m| m.spec().id.clone())
                .collect::<Vec<_>>()
                .join(","),
            Err(e) => e.to_string(),
        };
        match expected.strip_prefix("ok: ") {
            Some(kept) => assert_eq!(kept.split(" | ").next(), Some(valid.as_str())),
            None => assert_eq!(valid, expected),
        }
    }

    #[test]
    fn a_stream_reads_as_the_whole_text_did() {
        // The expected outcomes are what reading the whole text gave before reading
        // became a stream: the lines and columns of every error included.
        for (text, expected) in cases() {
            check(&text, expected);
        }
    }

    #[test]
    fn a_failed_read_is_not_a_bundle_error() {
        let text = b(&[m("a", "1")], "");
        let cut = &text.as_bytes()[..text.len() / 2];
        let read = Bundle::read_valid_from(Trickle {
            rest: cut,
            fail: true,
        });
        match read {
            Err(BundleReadError::Io(e)) => assert_eq!(e.to_string(), "the disk is gone"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_valid_monitor_is_handed_on_in_order() {
        let text = b(&[m("a", "1"), m("b", "2"), m("c", "3")], "");
        let mut ids = Vec::new();
        Bundle::read_valid_each(text.as_bytes(), |v| ids.push(v.spec().id.clone())).expect("valid");
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
