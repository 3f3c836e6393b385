//! The JSON form of specs: round trips, stable snake_case shapes, parse errors with their
//! path and position, and the committed JSON Schemas kept in sync with the code.

use std::fmt::Debug;
use std::fs;
use std::path::PathBuf;

use monitor_spec::schema::{
    bundle_schema, deploy_request_schema, deploy_response_schema, error_schema, result_schema,
    spec_schema,
};
use monitor_spec::*;
use monitor_spec::{
    AssertionOutcome, Attempt, Backoff, ProbeError, SpecError, Target, Timeouts, Timings,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::validation::full_spec;

const MINIMAL: &str = r#"{"schema_version":1,"id":"x","name":"x","target":{"host":"h","port":1}}"#;

/// Checks that `value` is written as `expected` and that `expected` reads back as `value`.
#[track_caller]
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T, expected: Value) {
    assert_eq!(serde_json::to_value(&value).unwrap(), expected, "{value:?}");
    assert_eq!(serde_json::from_value::<T>(expected).unwrap(), value);
}

/// Checks that `input` is rejected with this path, a message containing `message`, and
/// this position.
#[track_caller]
fn check_err(input: &str, path: &str, message: &str, line: usize, column: usize) {
    let err = TcpMonitor::from_json(input).expect_err(input);
    let SpecError {
        path: p,
        message: m,
        line: l,
        column: c,
    } = &err;
    assert_eq!(p, path, "path of {input}: {err}");
    assert!(
        m.contains(message),
        "message of {input} is {m:?}, expected it to contain {message:?}"
    );
    assert!(!m.contains(" at line "), "position left in message {m:?}");
    assert_eq!((*l, *c), (line, column), "position of {input}: {err}");
    assert_eq!(err.to_string(), format!("{p}: {m} (line {l}, column {c})"));
}

/// The minimal spec with `extra` spliced into its top-level object.
fn minimal_with(extra: &str) -> String {
    format!("{},{extra}}}", &MINIMAL[..MINIMAL.len() - 1])
}

fn backoff(base_backoff_seconds: u32, max_retries: u32, max_duration_seconds: u32) -> Backoff {
    Backoff {
        base_backoff_seconds,
        max_retries,
        max_duration_seconds,
        same_region: true,
    }
}

/// The top-level keys of pretty JSON, in the order they are written.
fn top_level_keys(pretty: &str) -> Vec<String> {
    pretty
        .lines()
        .filter_map(|line| line.strip_prefix("  \""))
        .filter_map(|rest| rest.split_once("\":"))
        .map(|(key, _)| key.to_owned())
        .collect()
}

#[test]
fn full_spec_round_trips() {
    let mut specs = vec![full_spec(), TcpMonitor::new("x", "::1", 1)];
    for retry in [
        RetryStrategy::None,
        RetryStrategy::SingleRetry {
            base_backoff_seconds: 30,
            same_region: false,
        },
        RetryStrategy::Fixed(backoff(5, 2, 60)),
        RetryStrategy::Exponential(Backoff {
            same_region: false,
            ..backoff(2, 10, 600)
        }),
    ] {
        specs.push(full_spec().retry(retry).ip_family(IpFamily::Ipv6));
    }
    for spec in specs {
        let text = spec.to_json();
        let back = TcpMonitor::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, spec);
        assert_eq!(back.to_json(), text);
    }
}

#[test]
fn full_spec_writes_every_field() {
    let keys = top_level_keys(&full_spec().to_json());
    assert_eq!(
        keys,
        [
            "schema_version",
            "id",
            "name",
            "description",
            "tags",
            "group",
            "target",
            "steps",
            "recipe",
            "proxy_protocol",
            "tls",
            "assertions",
            "timeouts",
            "max_response_bytes",
            "degraded_response_time_ms",
            "max_response_time_ms",
            "should_fail",
            "frequency",
            "locations",
            "private_locations",
            "activated",
            "muted",
            "run_parallel",
            "test_only",
            "alert_channels",
            "retry",
        ]
    );
}

#[test]
fn minimal_json_takes_the_defaults() {
    let spec = TcpMonitor::from_json(MINIMAL).unwrap();
    assert_eq!(spec, TcpMonitor::new("x", "h", 1).name("x"));
    assert_eq!(spec.timeouts, Timeouts::default());
    assert_eq!(spec.frequency, Frequency::M10);
    assert_eq!(spec.retry, RetryStrategy::None);
    assert!(spec.activated);
    assert!(spec.validate().is_ok());

    // A name different from the id is kept; `new` defaults the name to the id.
    let named = TcpMonitor::from_json(&MINIMAL.replace(r#""name":"x""#, r#""name":"Cache""#));
    assert_eq!(named.unwrap(), TcpMonitor::new("x", "h", 1).name("Cache"));

    // `null` for an optional field is the same as leaving it out.
    let nulls = TcpMonitor::from_json(&minimal_with(r#""description":null,"group":null"#));
    assert_eq!(nulls.unwrap(), TcpMonitor::new("x", "h", 1));
}

#[test]
fn default_monitor_json() {
    let text = TcpMonitor::new("x", "h", 1).to_json();
    assert_eq!(
        top_level_keys(&text),
        [
            "schema_version",
            "id",
            "name",
            "tags",
            "target",
            "steps",
            "tls",
            "assertions",
            "timeouts",
            "max_response_bytes",
            "degraded_response_time_ms",
            "max_response_time_ms",
            "should_fail",
            "frequency",
            "locations",
            "private_locations",
            "activated",
            "muted",
            "run_parallel",
            "test_only",
            "alert_channels",
            "retry",
        ]
    );
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value,
        json!({
            "schema_version": 1,
            "id": "x",
            "name": "x",
            "tags": [],
            "target": {"host": "h", "port": 1, "ip_family": "any"},
            "steps": [],
            "tls": {
                "mode": "none",
                "min_version": "tls1_2",
                "alpn": [],
                "allow_invalid": false,
                "expiry_warn_days": 30,
                "expiry_fail_days": 7,
                "legacy_probe": "off"
            },
            "assertions": [],
            "timeouts": {"connect_ms": 5000, "read_ms": 5000, "total_ms": 10000},
            "max_response_bytes": 65536,
            "degraded_response_time_ms": 4000,
            "max_response_time_ms": 5000,
            "should_fail": false,
            "frequency": "10m",
            "locations": [],
            "private_locations": [],
            "activated": true,
            "muted": false,
            "run_parallel": false,
            "test_only": false,
            "alert_channels": [],
            "retry": {"strategy": "none"},
        })
    );
}

#[test]
fn step_shapes() {
    check(
        Step::Send(Payload::Text("PING\\r\\n".into())),
        json!({"send": {"text": "PING\\r\\n"}}),
    );
    check(
        Step::Send(Payload::Hex("2b504f".into())),
        json!({"send": {"hex": "2b504f"}}),
    );
    check(
        Step::Expect(Expect::Contains("+PONG".into())),
        json!({"expect": {"contains": "+PONG"}}),
    );
    check(
        Step::Expect(Expect::Regex("^\\+PO".into())),
        json!({"expect": {"regex": "^\\+PO"}}),
    );
    check(
        Step::Expect(Expect::Exact(Payload::Hex("0d0a".into()))),
        json!({"expect": {"exact": {"hex": "0d0a"}}}),
    );
    check(
        Step::Expect(Expect::Exact(Payload::Text("OK".into()))),
        json!({"expect": {"exact": {"text": "OK"}}}),
    );
    check(
        Step::Read(ReadUntil::Delimiter("\\r\\n".into())),
        json!({"read": {"delimiter": "\\r\\n"}}),
    );
    check(
        Step::Read(ReadUntil::Bytes(4)),
        json!({"read": {"bytes": 4}}),
    );
    check(Step::Read(ReadUntil::Close), json!({"read": "close"}));
    check(Step::Read(ReadUntil::Any), json!({"read": "any"}));
    // The builder writes raw bytes as lower-case hex.
    assert_eq!(
        TcpMonitor::new("x", "h", 1).send_bytes(b"\r\n\xAB").steps,
        [Step::Send(Payload::Hex("0d0aab".into()))]
    );
}

#[test]
fn assertion_shapes() {
    check(
        response_time().less_than(ms(100)),
        json!({"source": "response_time", "comparison": "less_than", "target": "100"}),
    );
    check(
        connect_time().greater_than(5),
        json!({"source": "connect_time", "comparison": "greater_than", "target": "5"}),
    );
    check(
        first_byte_time().equals(1),
        json!({"source": "first_byte_time", "comparison": "equals", "target": "1"}),
    );
    check(
        response_data().not_equals("-ERR"),
        json!({"source": "response_data", "comparison": "not_equals", "target": "-ERR"}),
    );
    check(
        response_data().contains("PONG"),
        json!({"source": "response_data", "comparison": "contains", "target": "PONG"}),
    );
    check(
        response_data().not_contains("ERR"),
        json!({"source": "response_data", "comparison": "not_contains", "target": "ERR"}),
    );
    check(
        response_data().matches_regex("^\\+"),
        json!({"source": "response_data", "comparison": "matches_regex", "target": "^\\+"}),
    );
    // No target is written for comparisons that take none.
    check(
        response_data().is_empty(),
        json!({"source": "response_data", "comparison": "is_empty"}),
    );
    check(
        response_data().not_empty(),
        json!({"source": "response_data", "comparison": "not_empty"}),
    );
}

#[test]
fn retry_and_scalar_shapes() {
    check(RetryStrategy::None, json!({"strategy": "none"}));
    check(
        RetryStrategy::SingleRetry {
            base_backoff_seconds: 30,
            same_region: true,
        },
        json!({"strategy": "single_retry", "base_backoff_seconds": 30, "same_region": true}),
    );
    check(
        RetryStrategy::Fixed(backoff(10, 3, 120)),
        json!({
            "strategy": "fixed",
            "base_backoff_seconds": 10,
            "max_retries": 3,
            "max_duration_seconds": 120,
            "same_region": true,
        }),
    );
    check(
        RetryStrategy::Linear(backoff(10, 3, 120)),
        json!({
            "strategy": "linear",
            "base_backoff_seconds": 10,
            "max_retries": 3,
            "max_duration_seconds": 120,
            "same_region": true,
        }),
    );
    check(
        RetryStrategy::Exponential(Backoff {
            same_region: false,
            ..backoff(2, 5, 600)
        }),
        json!({
            "strategy": "exponential",
            "base_backoff_seconds": 2,
            "max_retries": 5,
            "max_duration_seconds": 600,
            "same_region": false,
        }),
    );
    check(
        Target {
            host: "::1".into(),
            port: 6379,
            ip_family: IpFamily::Ipv6,
        },
        json!({"host": "::1", "port": 6379, "ip_family": "ipv6"}),
    );
    check(IpFamily::Ipv4, json!("ipv4"));
    check(
        Timeouts {
            connect_ms: 1,
            read_ms: 2,
            total_ms: 3,
        },
        json!({"connect_ms": 1, "read_ms": 2, "total_ms": 3}),
    );
    for frequency in Frequency::ALL {
        check(frequency, json!(frequency.as_str()));
    }
    assert_eq!(
        Frequency::ALL.map(Frequency::as_str),
        [
            "10s", "20s", "30s", "1m", "2m", "5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h",
            "12h", "24h"
        ]
    );
}

#[test]
fn omitted_fields_take_their_defaults() {
    let read = |text: &str| -> RetryStrategy { serde_json::from_str(text).unwrap() };
    assert_eq!(
        read(r#"{"strategy":"fixed","base_backoff_seconds":10,"max_retries":3}"#),
        RetryStrategy::Fixed(backoff(10, 3, 600))
    );
    assert_eq!(
        read(r#"{"strategy":"single_retry","base_backoff_seconds":10}"#),
        RetryStrategy::SingleRetry {
            base_backoff_seconds: 10,
            same_region: true
        }
    );
    let timeouts: Timeouts = serde_json::from_str(r#"{"read_ms":7}"#).unwrap();
    assert_eq!(
        timeouts,
        Timeouts {
            read_ms: 7,
            ..Timeouts::default()
        }
    );
    let assertion: Assertion =
        serde_json::from_str(r#"{"source":"response_data","comparison":"is_empty"}"#).unwrap();
    assert_eq!(assertion, response_data().is_empty());
}

#[test]
fn parse_errors_name_the_path() {
    let pretty = "{\n  \"schema_version\": 1,\n  \"id\": \"x\",\n  \"name\": \"x\",\n  \"target\": {\"host\": \"h\", \"port\": 70000}\n}";
    check_err(
        pretty,
        "target.port",
        "invalid value: integer `70000`, expected u16",
        5,
        39,
    );
    check_err(
        &MINIMAL.replace(r#""port":1"#, r#""port":-1"#),
        "target.port",
        "invalid value: integer `-1`, expected u16",
        1,
        70,
    );
    check_err(
        &MINIMAL.replace(r#""port":1"#, r#""port":1,"hots":"h""#),
        "target.hots",
        "unknown field `hots`, expected one of `host`, `port`, `ip_family`",
        1,
        76,
    );
    check_err(
        &MINIMAL.replace(r#""host":"h","#, ""),
        "target",
        "missing field `host`",
        1,
        59,
    );
    check_err(
        &minimal_with(r#""colour":"blue""#),
        "colour",
        "unknown field `colour`, expected one of `schema_version`, `id`, `name`, `description`, \
         `tags`, `group`, `target`, `steps`, `recipe`, `proxy_protocol`, `tls`, `assertions`, `timeouts`, `max_response_bytes`, \
         `degraded_response_time_ms`, `max_response_time_ms`, `should_fail`, `frequency`, \
         `locations`, `private_locations`, `activated`, `muted`, `run_parallel`, `test_only`, \
         `alert_channels`, `retry`",
        1,
        79,
    );
    check_err(
        &minimal_with(r#""frequency":"7m""#),
        "frequency",
        "frequency `7m` is not allowed; use one of 10s, 20s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, \
         1h, 2h, 3h, 6h, 12h, 24h",
        1,
        88,
    );
    check_err(
        &minimal_with(r#""frequency":600"#),
        "frequency",
        "invalid type: integer `600`, expected a string",
        1,
        86,
    );
    check_err(
        &MINIMAL.replace(r#""schema_version":1"#, r#""schema_version":"1""#),
        "schema_version",
        "invalid type: string \"1\", expected u32",
        1,
        21,
    );
    check_err(
        &minimal_with(r#""timeouts":{"total":1}"#),
        "timeouts.total",
        "unknown field `total`, expected one of `connect_ms`, `read_ms`, `total_ms`",
        1,
        90,
    );
    check_err(
        &minimal_with(r#""steps":[{"read":"close"},{"send":{"txt":"a"}}]"#),
        "steps[1].send",
        "unknown variant `txt`, expected `text` or `hex`",
        1,
        111,
    );
    check_err(
        &minimal_with(r#""steps":[{"read":"forever"}]"#),
        "steps[0].read",
        "unknown variant `forever`, expected one of `delimiter`, `bytes`, `close`, `any`",
        1,
        97,
    );
    check_err(
        &minimal_with(r#""assertions":[{"source":"response_data","comparison":"starts_with"}]"#),
        "assertions[0].comparison",
        "unknown variant `starts_with`, expected one of `equals`, `not_equals`, `contains`",
        1,
        137,
    );
    check_err(
        &minimal_with(r#""assertions":[{"source":"response_data","comparison":"is_empty","x":1}]"#),
        "assertions[0].x",
        "unknown field `x`, expected one of `source`, `comparison`, `target`",
        1,
        138,
    );
    // Inside an internally tagged enum serde buffers the object, so the path stops at the
    // enum; the message still names the field and lists the expected ones.
    check_err(
        &minimal_with(
            r#""retry":{"strategy":"fixed","base_backoff_seconds":1,"max_retries":1,"bogus":1}"#,
        ),
        "retry",
        "unknown field `bogus`, expected one of `base_backoff_seconds`, `max_retries`, \
         `max_duration_seconds`, `same_region`",
        1,
        151,
    );
    check_err(
        &minimal_with(r#""retry":{"strategy":"sometimes"}"#),
        "retry.strategy",
        "unknown variant `sometimes`, expected one of `none`, `single_retry`, `fixed`, `linear`, `exponential`",
        1,
        102,
    );
    check_err(r#"{"schema_version":1}"#, ".", "missing field `id`", 1, 20);
}

#[test]
fn parse_errors_outside_the_spec() {
    check_err(&format!("{MINIMAL} x"), ".", "trailing characters", 1, 73);
    check_err(
        &format!("{MINIMAL}\n{MINIMAL}"),
        ".",
        "trailing characters",
        2,
        1,
    );
    check_err("hello", ".", "expected value", 1, 1);
    check_err(
        "42",
        ".",
        "invalid type: integer `42`, expected struct TcpMonitor",
        1,
        2,
    );
    check_err(
        "null",
        ".",
        "invalid type: null, expected struct TcpMonitor",
        1,
        4,
    );
    check_err(
        "{\"schema_version\": 1,\n \"id\": ",
        "id",
        "EOF while parsing a value",
        2,
        7,
    );
    // Trailing white space is fine.
    assert!(TcpMonitor::from_json(&format!("\n{MINIMAL}\n\n")).is_ok());
}

// ---- The committed JSON Schemas -------------------------------------------------------

const SPEC_SCHEMA: &str = "tcp-monitor.schema.json";
const RESULT_SCHEMA: &str = "check-result.schema.json";
const BUNDLE_SCHEMA: &str = "bundle.schema.json";
const DEPLOY_REQUEST_SCHEMA: &str = "deploy-request.schema.json";
const DEPLOY_RESPONSE_SCHEMA: &str = "deploy-response.schema.json";
const ERROR_SCHEMA: &str = "error.schema.json";

fn schema_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(file)
}

fn committed(file: &str) -> Value {
    let path = schema_path(file);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run `UPDATE_SCHEMA=1 cargo test -p monitor-spec`",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

#[test]
fn committed_schemas_match_the_code() {
    let update = std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1");
    for (file, schema) in [
        (SPEC_SCHEMA, spec_schema()),
        (RESULT_SCHEMA, result_schema()),
        (BUNDLE_SCHEMA, bundle_schema()),
        (DEPLOY_REQUEST_SCHEMA, deploy_request_schema()),
        (DEPLOY_RESPONSE_SCHEMA, deploy_response_schema()),
        (ERROR_SCHEMA, error_schema()),
    ] {
        let path = schema_path(file);
        let want = serde_json::to_string_pretty(&schema).unwrap() + "\n";
        if update {
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, &want).unwrap();
            continue;
        }
        let have = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} does not match the code; run `UPDATE_SCHEMA=1 cargo test -p monitor-spec` \
             and commit the result",
            path.display()
        );
    }
}

/// Follows a local `$ref` such as `#/$defs/Step`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(root, root.pointer(pointer).expect("$ref target exists"))
        }
        None => schema,
    }
}

/// A small JSON Schema checker for the keywords the committed schemas use. Returns the
/// problems found, each with its JSON pointer.
fn schema_problems(root: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(root, schema);
    let mut problems = Vec::new();
    let mut fail = |what: String| problems.push(format!("{at}: {what}"));
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            one => vec![one.as_str().unwrap()],
        };
        let fits = |t: &str| match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            "number" => value.is_number(),
            "integer" => value.is_u64() || value.is_i64(),
            other => panic!("unknown type {other}"),
        };
        if !types.iter().any(|t| fits(t)) {
            fail(format!("{value} is not of type {types:?}"));
            return problems;
        }
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        fail(format!("{value} is not {c}"));
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        fail(format!("{value} is not one of {allowed:?}"));
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n < min
    {
        fail(format!("{n} is below {min}"));
    }
    if let (Some(max), Some(n)) = (
        schema.get("maximum").and_then(Value::as_f64),
        value.as_f64(),
    ) && n > max
    {
        fail(format!("{n} is above {max}"));
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                fail(format!("missing required `{name}`"));
            }
        }
        for (key, item) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => {
                    problems.extend(schema_problems(root, sub, item, &format!("{at}/{key}")))
                }
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{at}: unknown property `{key}`"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Value::Array(array)) = (schema.get("items"), value) {
        for (i, item) in array.iter().enumerate() {
            problems.extend(schema_problems(root, items, item, &format!("{at}/{i}")));
        }
    }
    if let Some(Value::Array(variants)) = schema.get("oneOf") {
        let matching = variants
            .iter()
            .filter(|v| schema_problems(root, v, value, at).is_empty())
            .count();
        if matching != 1 {
            problems.push(format!("{at}: {value} matches {matching} of oneOf"));
        }
    }
    if let Some(Value::Array(variants)) = schema.get("anyOf")
        && !variants
            .iter()
            .any(|v| schema_problems(root, v, value, at).is_empty())
    {
        problems.push(format!("{at}: {value} matches none of anyOf"));
    }
    problems
}

#[test]
fn spec_schema_describes_specs() {
    let schema = committed(SPEC_SCHEMA);
    assert_eq!(schema["title"], "TcpMonitor");
    assert_eq!(
        schema["required"],
        json!(["schema_version", "id", "name", "target"])
    );
    assert_eq!(schema["additionalProperties"], json!(false));

    // Every field the code writes is described, and nothing else.
    let mut properties: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let mut written = top_level_keys(&full_spec().to_json());
    properties.sort();
    written.sort();
    assert_eq!(properties, written.iter().collect::<Vec<_>>());

    // The frequency is one of the 15 allowed strings.
    let frequency = resolve(&schema, &schema["properties"]["frequency"]);
    let allowed: Vec<Value> = Frequency::ALL.iter().map(|f| json!(f.as_str())).collect();
    assert_eq!(frequency["enum"], Value::Array(allowed));
    assert_eq!(frequency["enum"].as_array().unwrap().len(), 15);

    let port = &resolve(&schema, &schema["properties"]["target"])["properties"]["port"];
    assert_eq!(
        (&port["minimum"], &port["maximum"]),
        (&json!(1), &json!(65535))
    );

    // The documented defaults are the defaults of `TcpMonitor::new`.
    let defaults: Value = serde_json::from_str(&TcpMonitor::new("x", "h", 1).to_json()).unwrap();
    for (key, property) in schema["properties"].as_object().unwrap() {
        if let Some(default) = property.get("default") {
            assert_eq!(default, &defaults[key], "default of {key}");
        }
    }
}

#[test]
fn spec_schema_accepts_specs_and_rejects_what_parsing_rejects() {
    let schema = committed(SPEC_SCHEMA);
    let mut accepted = vec![
        full_spec(),
        TcpMonitor::new("x", "h", 1),
        full_spec().retry(RetryStrategy::SingleRetry {
            base_backoff_seconds: 1,
            same_region: false,
        }),
        full_spec().retry(RetryStrategy::Exponential(backoff(2, 3, 60))),
        full_spec().retry(RetryStrategy::Fixed(backoff(2, 3, 60))),
    ];
    accepted.push(full_spec().step(Step::Expect(Expect::Exact(Payload::Text("OK".into())))));
    for spec in accepted {
        let value: Value = serde_json::from_str(&spec.to_json()).unwrap();
        assert_eq!(
            schema_problems(&schema, &schema, &value, ""),
            Vec::<String>::new()
        );
    }
    let minimal: Value = serde_json::from_str(MINIMAL).unwrap();
    assert!(schema_problems(&schema, &schema, &minimal, "").is_empty());

    let rejected = [
        r#"{"id":"x","name":"x","target":{"host":"h","port":1}}"#.to_owned(),
        MINIMAL.replace(r#""port":1"#, r#""port":70000"#),
        MINIMAL.replace(r#""port":1"#, r#""port":1,"hots":"h""#),
        minimal_with(r#""colour":"blue""#),
        minimal_with(r#""frequency":"7m""#),
        minimal_with(r#""steps":[{"send":{"txt":"a"}}]"#),
        minimal_with(r#""steps":[{"read":"forever"}]"#),
        minimal_with(r#""assertions":[{"source":"response_data"}]"#),
        minimal_with(r#""retry":{"strategy":"fixed","base_backoff_seconds":1}"#),
        minimal_with(r#""timeouts":{"total":1}"#),
    ];
    for text in rejected {
        assert!(TcpMonitor::from_json(&text).is_err(), "parses: {text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert!(
            !schema_problems(&schema, &schema, &value, "").is_empty(),
            "the schema accepts {text}"
        );
    }
    // The schema also states the port range that validation enforces.
    let port_zero: Value =
        serde_json::from_str(&MINIMAL.replace(r#""port":1"#, r#""port":0"#)).unwrap();
    assert_eq!(
        schema_problems(&schema, &schema, &port_zero, ""),
        ["/target/port: 0 is below 1"]
    );
}

#[test]
fn bundle_and_deploy_schemas_accept_what_the_api_exchanges() {
    use monitor_spec::api::{
        DeployRequest, DeployResponse, Diff, ErrorBody, Git, Problem, Updated,
    };
    let bundle = Bundle::new(vec![full_spec(), TcpMonitor::new("x", "h", 1)]);
    let request = DeployRequest {
        bundle: bundle.clone(),
        git: Some(Git {
            commit: Some("0123abc".into()),
            branch: Some("main".into()),
            repository: Some("https://github.com/acme/monitors".into()),
            dirty: Some(false),
            ..Git::default()
        }),
    };
    let response = DeployResponse {
        project: "shop".into(),
        dry_run: true,
        applied: false,
        version: Some(3),
        diff: Diff {
            created: vec!["a".into()],
            updated: vec![Updated {
                id: "b".into(),
                fields: vec!["frequency".into()],
            }],
            ..Diff::default()
        },
    };
    let error = ErrorBody {
        error: "invalid bundle".into(),
        problems: vec![Problem {
            path: "monitors[3].frequency".into(),
            message: "\"7m\" is not one of ...".into(),
        }],
    };
    let check = |file: &str, value: Value, accepted: bool| {
        let schema = committed(file);
        let problems = schema_problems(&schema, &schema, &value, "");
        assert_eq!(
            problems.is_empty(),
            accepted,
            "{file}: {value}: {problems:?}"
        );
    };
    check(
        BUNDLE_SCHEMA,
        serde_json::from_str(&bundle.to_json()).unwrap(),
        true,
    );
    check(
        DEPLOY_REQUEST_SCHEMA,
        serde_json::to_value(&request).unwrap(),
        true,
    );
    check(
        DEPLOY_RESPONSE_SCHEMA,
        serde_json::to_value(&response).unwrap(),
        true,
    );
    check(ERROR_SCHEMA, serde_json::to_value(&error).unwrap(), true);
    // What the server refuses, the schemas refuse too.
    check(BUNDLE_SCHEMA, json!({"schema_version": 1}), false);
    check(
        BUNDLE_SCHEMA,
        json!({"schema_version": 1, "monitors": [{"id": "x"}]}),
        false,
    );
    let mut unknown = serde_json::to_value(&request).unwrap();
    unknown["git"]["tag"] = json!("v1");
    check(DEPLOY_REQUEST_SCHEMA, unknown, false);
    check(DEPLOY_RESPONSE_SCHEMA, json!({"project": "shop"}), false);
}

#[test]
fn result_schema_describes_results() {
    let schema = committed(RESULT_SCHEMA);
    assert_eq!(schema["title"], "CheckResult");
    let status = resolve(&schema, &schema["properties"]["status"]);
    let names: Vec<&Value> = status["oneOf"]
        .as_array()
        .map(|v| v.iter().map(|s| &s["const"]).collect())
        .unwrap_or_else(|| status["enum"].as_array().unwrap().iter().collect());
    assert_eq!(
        names,
        [&json!("passed"), &json!("degraded"), &json!("failed")]
    );

    let started_at = time::OffsetDateTime::UNIX_EPOCH;
    let timings = Timings {
        scheduling_delay_ms: None,
        dns_ms: Some(0.5),
        connect_ms: Some(1.25),
        tls_ms: None,
        first_byte_ms: None,
        total_ms: 12.0,
        client_cert_wait_ms: None,
    };
    let error = ProbeError {
        kind: ErrorKind::AssertionFailed,
        message: "1 assertion failed".into(),
        hints: vec!["check the server".into()],
    };
    let result = CheckResult {
        tcp: None,
        id: "x".into(),
        name: "x".into(),
        target: "h:1".into(),
        status: Status::Failed,
        error: Some(error.clone()),
        timings,
        address: Some("127.0.0.1:1".into()),
        attempts: vec![
            Attempt {
                status: Status::Failed,
                error: Some(error),
                timings,
                address: None,
                started_at,
                location: None,
            },
            Attempt {
                status: Status::Passed,
                error: None,
                timings: Timings::default(),
                address: Some("[::1]:1".into()),
                started_at,
                location: Some("eu-west".into()),
            },
        ],
        assertions: vec![AssertionOutcome {
            source: Source::ResponseData,
            comparison: Comparison::Contains,
            target: "PONG".into(),
            actual: "-ERR\\r\\n".into(),
            passed: false,
        }],
        response_excerpt: "-ERR\\r\\n".into(),
        tls: None,
        facts: [("server_version".to_owned(), "7.0.15".to_owned())].into(),
        started_at,
    };
    let value: Value = serde_json::from_str(&result.to_json()).unwrap();
    assert_eq!(
        schema_problems(&schema, &schema, &value, ""),
        Vec::<String>::new()
    );
    let mut unknown_status = value.clone();
    unknown_status["status"] = json!("unknown");
    assert!(!schema_problems(&schema, &schema, &unknown_status, "").is_empty());
}

/// `deny_unknown_fields` promises that a typo never silently changes a monitor, and the
/// committed schema forbids extra properties next to `"strategy": "none"`; parsing must
/// reject them too.
#[test]
fn retry_none_rejects_unknown_fields() {
    let schema = committed(SPEC_SCHEMA);
    let text = minimal_with(r#""retry":{"strategy":"none","max_retries":3}"#);
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(!schema_problems(&schema, &schema, &value, "").is_empty());
    match TcpMonitor::from_json(&text) {
        Ok(spec) => panic!("accepted as {:?}", spec.retry),
        Err(SpecError { path, message, .. }) => {
            assert_eq!(path, "retry");
            assert!(message.contains("unknown field `max_retries`"), "{message}");
        }
    }
}

// ---- A bundle's every problem at once ----------------------------------------------------

/// A bundle of `monitors` (each a JSON text), one a line after the first two.
fn bundle_of(monitors: &[String]) -> String {
    format!(
        "{{\n\"schema_version\": 1,\n\"monitors\": [\n{}\n]\n}}",
        monitors.join(",\n")
    )
}

#[test]
fn a_bundle_reports_every_shape_and_rule_problem_at_once() {
    let text = bundle_of(&[
        minimal_with(r#""frequency":"7m""#),
        MINIMAL
            .replace(r#""port":1"#, r#""port":"x""#)
            .replace(r#""id":"x""#, r#""id":"y""#),
        MINIMAL
            .replace(r#""port":1"#, r#""port":0"#)
            .replace(r#""id":"x""#, r#""id":"z""#),
        MINIMAL.to_owned(),
        minimal_with(r#""colour":"blue""#).replace(r#""id":"x""#, r#""id":"w""#),
        MINIMAL.to_owned(),
    ]);
    let Err(BundleError::Invalid(problems)) = Bundle::read_checked(&text) else {
        panic!("not invalid: {:?}", Bundle::read_checked(&text));
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "monitors[0].frequency",
            "monitors[1].target.port",
            "monitors[2].target.port",
            "monitors[4].colour",
            "monitors[5].id",
        ],
        "{problems:#?}"
    );
    // A shape error says where it is in the whole text: monitors[1] is on line 5.
    assert!(
        problems[0].message.contains("7m"),
        "{}",
        problems[0].message
    );
    assert!(
        problems[1].message.contains("(line 5, column "),
        "{}",
        problems[1].message
    );
    assert!(
        problems[4]
            .message
            .contains("duplicate id `x`, also used by monitors[3]")
    );
    // The error lists them one a line.
    let shown = BundleError::Invalid(problems).to_string();
    assert!(
        shown.starts_with("5 problems make the bundle invalid:\n  monitors[0].frequency: "),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), 6, "{shown}");

    // A good bundle reads as Bundle::from_json reads it; a wrong version or top level
    // stops at once.
    let good = bundle_of(&[MINIMAL.to_owned()]);
    assert_eq!(
        Bundle::read_checked(&good).unwrap(),
        Bundle::from_json(&good).unwrap()
    );
    assert!(matches!(
        Bundle::read_checked(&good.replace("\"schema_version\": 1", "\"schema_version\": 9")),
        Err(BundleError::Version(9))
    ));
    assert!(matches!(
        Bundle::read_checked(r#"{"schema_version":1,"monitors":{}}"#),
        Err(BundleError::Json(_))
    ));
}
