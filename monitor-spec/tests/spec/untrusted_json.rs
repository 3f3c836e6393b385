//! JSON as strangers send it (issue 14, finding 8): a byte order mark at the start is
//! dropped and one elsewhere is named with its line and column, and an unknown field in
//! any object of a spec, a bundle or a result is refused with its path, never ignored.

use monitor_spec::json::{self, JsonError, strip_bom, strip_bom_str};
use monitor_spec::*;
use serde_json::{Value, json};

use crate::validation::full_spec;

const BUNDLE: &str = r#"{
  "schema_version": 1,
  "monitors": [{"schema_version": 1, "id": "a", "name": "a", "target": {"host": "h", "port": 1}}]
}"#;

#[test]
fn a_leading_byte_order_mark_is_dropped() {
    let with_bom = format!("\u{feff}{BUNDLE}");
    let bundle = Bundle::from_json(&with_bom).expect("a bundle with a BOM reads");
    assert_eq!(bundle, Bundle::from_json(BUNDLE).unwrap());
    let spec = r#"{"schema_version":1,"id":"x","name":"x","target":{"host":"h","port":1}}"#;
    assert_eq!(
        TcpMonitor::from_json(&format!("\u{feff}{spec}")).unwrap(),
        TcpMonitor::from_json(spec).unwrap()
    );
    let read: Bundle = json::read_bytes(with_bom.as_bytes()).unwrap();
    assert_eq!(read, bundle);

    assert_eq!(strip_bom(b"\xef\xbb\xbf{}"), b"{}");
    assert_eq!(strip_bom(b"{}"), b"{}");
    assert_eq!(strip_bom(b"\xef\xbb"), b"\xef\xbb");
    assert_eq!(strip_bom(b""), b"");
    // Only one is dropped: two are an editor's mistake worth naming.
    assert_eq!(strip_bom_str("\u{feff}\u{feff}x"), "\u{feff}x");
    assert_eq!(strip_bom_str("x\u{feff}"), "x\u{feff}");
}

/// Checks that `text` is refused at this line and column with a message naming the BOM,
/// read as text and as bytes.
#[track_caller]
fn check_bom_error(text: &str, line: usize, column: usize) {
    let from_text = json::read::<Bundle>(text).unwrap_err();
    let from_bytes = json::read_bytes::<Bundle>(text.as_bytes()).unwrap_err();
    assert_eq!(from_text, from_bytes);
    let JsonError {
        message,
        line: l,
        column: c,
        ..
    } = &from_text;
    assert_eq!(
        message, "a byte order mark (U+FEFF) is allowed only at the start of the text",
        "{text:?}"
    );
    assert_eq!((*l, *c), (line, column), "{text:?}: {from_text}");
}

#[test]
fn a_byte_order_mark_elsewhere_is_named_with_its_place() {
    check_bom_error(
        &BUNDLE.replace("\"monitors\"", "\u{feff}\"monitors\""),
        3,
        3,
    );
    check_bom_error(&BUNDLE.replace(" 1,", " \u{feff}1,"), 2, 21);
    check_bom_error(&format!("{BUNDLE}\u{feff}"), 4, 2);
    check_bom_error(&format!("\u{feff}\u{feff}{BUNDLE}"), 1, 1);
    // Other errors keep serde's message.
    let e = json::read::<Bundle>("\u{feff}{\"schema_version\": 1,}").unwrap_err();
    assert!(e.message.contains("trailing comma"), "{e}");
    // Bytes that are not UTF-8 are refused, not read.
    let e = json::read_bytes::<Bundle>(b"{\"schema_version\": 1, \"monitors\": [\"\xff\"]}")
        .unwrap_err();
    assert!(e.message.contains("invalid unicode"), "{e}");
}

/// Adds `"bogus": 1` to the object at `pointer` of `value`.
fn with_bogus(value: &Value, pointer: &str) -> String {
    let mut value = value.clone();
    value
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {pointer}"))
        .insert("bogus".into(), json!(1));
    value.to_string()
}

/// Checks that reading `T` from `value` with `"bogus"` added at each pointer is refused
/// at the expected path, naming the field.
#[track_caller]
fn check_unknown<T: serde::de::DeserializeOwned + std::fmt::Debug>(
    value: &Value,
    cases: &[(&str, &str)],
) {
    json::read::<T>(&value.to_string()).expect("the unchanged value reads");
    for (pointer, path) in cases {
        let text = with_bogus(value, pointer);
        match json::read::<T>(&text) {
            Ok(read) => panic!("bogus at {pointer} was accepted: {read:?}"),
            Err(e) => {
                assert_eq!(e.path, *path, "path of bogus at {pointer}: {e}");
                assert!(
                    e.message.contains("unknown field `bogus`"),
                    "message of bogus at {pointer}: {e}"
                );
            }
        }
    }
}

#[test]
fn an_unknown_field_in_any_object_of_a_spec_is_refused() {
    let spec = serde_json::to_value(full_spec()).unwrap();
    // Inside an internally tagged enum (retry, recipe) serde buffers the object, so the
    // path stops at the enum; the message still names the field.
    check_unknown::<TcpMonitor>(
        &spec,
        &[
            ("", "bogus"),
            ("/target", "target.bogus"),
            ("/tls", "tls.bogus"),
            ("/tls/client_cert", "tls.client_cert.bogus"),
            ("/timeouts", "timeouts.bogus"),
            ("/assertions/2", "assertions[2].bogus"),
            ("/retry", "retry"),
            ("/recipe", "recipe"),
        ],
    );
    let bundle = serde_json::to_value(Bundle::new(vec![full_spec()])).unwrap();
    check_unknown::<Bundle>(
        &bundle,
        &[
            ("", "bogus"),
            ("/monitors/0", "monitors[0].bogus"),
            ("/monitors/0/tls", "monitors[0].tls.bogus"),
        ],
    );
}

/// Every strategy and every recipe, unit variants included, refuses a field it lacks.
#[test]
fn every_retry_strategy_and_recipe_refuses_unknown_fields() {
    let strategies = [
        json!({"strategy": "none"}),
        json!({"strategy": "single_retry", "base_backoff_seconds": 1}),
        json!({"strategy": "fixed", "base_backoff_seconds": 1, "max_retries": 1}),
        json!({"strategy": "linear", "base_backoff_seconds": 1, "max_retries": 1}),
        json!({"strategy": "exponential", "base_backoff_seconds": 1, "max_retries": 1}),
    ];
    for strategy in strategies {
        check_unknown::<RetryStrategy>(&strategy, &[("", ".")]);
    }
    for name in RECIPES {
        let recipe = json!({ "protocol": name });
        check_unknown::<Recipe>(&recipe, &[("", ".")]);
    }
}

/// An externally tagged value (a step, a payload, a PEM source) is one key; a second key
/// beside it is refused, not ignored.
#[test]
fn a_second_key_beside_a_step_or_payload_is_refused() {
    for (text, path) in [
        (r#"{"send": {"text": "a"}, "bogus": 1}"#, "."),
        (r#"{"send": {"text": "a", "bogus": 1}}"#, "send"),
        (r#"{"read": "close", "bogus": 1}"#, "."),
        (r#"{"expect": {"contains": "a", "bogus": 1}}"#, "expect"),
    ] {
        let e = json::read::<Step>(text).expect_err(text);
        assert_eq!(e.path, path, "{text}: {e}");
    }
    let e = json::read::<PemSource>(r#"{"path": "a", "pem": "b"}"#).unwrap_err();
    assert_eq!(e.path, ".", "{e}");
}

fn full_result() -> CheckResult {
    let at = time::OffsetDateTime::UNIX_EPOCH;
    let timings = Timings {
        scheduling_delay_ms: None,
        dns_ms: Some(0.5),
        connect_ms: Some(1.0),
        tls_ms: Some(2.0),
        first_byte_ms: Some(3.0),
        total_ms: 4.0,
        client_cert_wait_ms: None,
    };
    let error = ProbeError {
        kind: ErrorKind::AssertionFailed,
        message: "1 assertion failed".into(),
        hints: vec!["check the server".into()],
    };
    let cert = CertInfo {
        subject: "CN=a".into(),
        issuer: "CN=ca".into(),
        sans: vec!["a".into()],
        serial: "01".into(),
        not_before: at,
        not_after: at,
        days_left: 0,
        sha256: "00".into(),
        key_type: "EC".into(),
        key_bits: Some(256),
        signature_algorithm: "ecdsa-with-SHA256".into(),
        self_issued: false,
        subject_rfc2253: "CN=a".into(),
        issuer_rfc2253: "CN=ca".into(),
    };
    CheckResult {
        tcp: None,
        id: "x".into(),
        name: "x".into(),
        target: "h:1".into(),
        status: Status::Failed,
        error: Some(error.clone()),
        timings,
        address: Some("127.0.0.1:1".into()),
        attempts: vec![Attempt {
            status: Status::Failed,
            error: Some(error),
            timings,
            address: None,
            started_at: at,
            location: None,
        }],
        assertions: vec![AssertionOutcome {
            source: Source::ResponseData,
            comparison: Comparison::Contains,
            target: "PONG".into(),
            actual: "-ERR".into(),
            passed: false,
        }],
        response_excerpt: "-ERR".into(),
        tls: Some(Box::new(TlsReport {
            ocsp: None,
            policy: None,
            version: Some("TLSv1.3".into()),
            cipher: None,
            alpn: None,
            server_name: "a".into(),
            verified: true,
            problems: Vec::new(),
            chain: vec![cert],
            earliest_expiry: Some(at),
            days_left: Some(0),
            earliest_expiry_subject: Some("CN=a".into()),
            legacy: Some(LegacyReport {
                tls1_0: Some(false),
                tls1_1: None,
            }),
        })),
        facts: [("server_version".to_owned(), "7.0".to_owned())].into(),
        started_at: at,
    }
}

/// What the control plane takes from agents is as strict as what it takes from deploys.
#[test]
fn an_unknown_field_in_any_object_of_a_result_is_refused() {
    let result = serde_json::to_value(full_result()).unwrap();
    check_unknown::<CheckResult>(
        &result,
        &[
            ("", "bogus"),
            ("/error", "error.bogus"),
            ("/timings", "timings.bogus"),
            ("/attempts/0", "attempts[0].bogus"),
            ("/attempts/0/error", "attempts[0].error.bogus"),
            ("/attempts/0/timings", "attempts[0].timings.bogus"),
            ("/assertions/0", "assertions[0].bogus"),
            ("/tls", "tls.bogus"),
            ("/tls/chain/0", "tls.chain[0].bogus"),
            ("/tls/legacy", "tls.legacy.bogus"),
        ],
    );
}
