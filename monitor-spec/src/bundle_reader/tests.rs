//! The stream reader's tests: each bundle read whole and read a byte at a time gives
//! what reading the whole text gave before the reader streamed.

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
