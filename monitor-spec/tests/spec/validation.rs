//! Validation rules of `TcpMonitor::validate`: one case per rule, each with the exact path
//! of the problem and a message that says what is allowed.

use monitor_spec::*;
use monitor_spec::{Backoff, ValidationErrors};

/// The spec every case starts from: valid, with every default applied.
fn base() -> TcpMonitor {
    TcpMonitor::new("id", "127.0.0.1", 6379)
}

/// Validates `base()` changed by `mutate` and checks the problems found: exactly the
/// expected paths, in order, each message containing the expected text.
#[track_caller]
fn check(mutate: impl FnOnce(&mut TcpMonitor), expected: &[(&str, &str)]) {
    let mut spec = base();
    mutate(&mut spec);
    let errors = match spec.validate() {
        Ok(_) => Vec::new(),
        Err(ValidationErrors(errors)) => errors,
    };
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    let want: Vec<&str> = expected.iter().map(|(path, _)| *path).collect();
    assert_eq!(paths, want, "paths of {errors:#?}");
    for (error, (path, text)) in errors.iter().zip(expected) {
        assert!(
            error.message.contains(text),
            "message at {path} is {:?}, expected it to contain {text:?}",
            error.message
        );
    }
}

fn backoff(base_backoff_seconds: u32, max_retries: u32, max_duration_seconds: u32) -> Backoff {
    Backoff {
        base_backoff_seconds,
        max_retries,
        max_duration_seconds,
        same_region: true,
    }
}

fn data(comparison: Comparison, target: &str) -> Assertion {
    Assertion {
        source: Source::ResponseData,
        comparison,
        target: target.to_owned(),
    }
}

#[test]
fn base_spec_is_valid() {
    check(|_| {}, &[]);
}

#[test]
fn identity_rules() {
    check(
        |m| m.schema_version = 2,
        &[("schema_version", "this build reads version 1")],
    );
    check(
        |m| m.id = String::new(),
        &[("id", "use 1 to 128 characters: letters, digits")],
    );
    check(
        |m| m.id = "a".repeat(129),
        &[("id", "must not be empty or longer than 128 characters")],
    );
    check(|m| m.id = "a".repeat(128), &[]);
    check(
        |m| m.id = "redis cache".into(),
        &[(
            "id",
            "`redis cache` contains ` `; use 1 to 128 characters: letters, digits, `-`, `_`, `.`, `:` and `/`",
        )],
    );
    check(|m| m.id = "team/redis-cache_1.prod:eu".into(), &[]);
    check(|m| m.id = "café".into(), &[("id", "contains `é`")]);
    check(
        |m| m.name = "   ".into(),
        &[("name", "must not be empty or blank")],
    );
    check(|m| m.name = String::new(), &[("name", "must not be empty")]);
    check(
        |m| m.name = " redis".into(),
        &[("name", "must not start or end with white space")],
    );
    check(
        |m| m.name = "redis\n".into(),
        &[("name", "must not start or end with white space")],
    );
    check(
        |m| m.name = "é".repeat(256),
        &[("name", "is longer than 255 characters")],
    );
    check(|m| m.name = "é".repeat(255), &[]);
    check(
        |m| m.description = Some("d".repeat(501)),
        &[(
            "description",
            "is 501 characters long; at most 500 are allowed",
        )],
    );
    check(|m| m.description = Some("é".repeat(500)), &[]);
    check(|m| m.description = Some(String::new()), &[]);
}

#[test]
fn tag_and_group_rules() {
    check(
        |m| m.tags = vec!["ok".into(), " ".into()],
        &[("tags[1]", "must not be empty or blank")],
    );
    check(
        |m| m.tags = vec!["a".into(), "b".into(), "a".into()],
        &[("tags[2]", "duplicate of tags[0] (`a`)")],
    );
    check(
        |m| m.tags = vec!["t".repeat(65)],
        &[("tags[0]", "is longer than 64 characters")],
    );
    check(|m| m.tags = vec!["t".repeat(64), "prod".into()], &[]);
    check(
        |m| m.group = Some(String::new()),
        &[("group", "must not be empty or blank")],
    );
    check(
        |m| m.group = Some("backend ".into()),
        &[("group", "must not start or end with white space")],
    );
    check(
        |m| m.group = Some("g".repeat(256)),
        &[("group", "is longer than 255 characters")],
    );
}

#[test]
fn target_rules() {
    let allowed = "use a DNS name (letters, digits, `-`, `_`, dots), an IPv4 address or an IPv6 address without brackets";
    check(
        |m| m.target.port = 0,
        &[("target.port", "must be between 1 and 65535, got 0")],
    );
    check(
        |m| m.target.host = String::new(),
        &[("target.host", "must not be empty; use a DNS name")],
    );
    let host_cases: &[(&str, &str)] = &[
        ("[::1]", "brackets are not needed"),
        ("tcp://db.example.com", "a URL scheme is not part of a host"),
        (
            "db.example.com:5432",
            "a host holds no port (set target.port)",
        ),
        ("1.2.3.4:80", "a host holds no port (set target.port)"),
        ("db..example.com", "it has an empty label"),
        (".example.com", "it has an empty label"),
        ("db.example.com..", "it has an empty label"),
        ("a.b.c.", ""),
        (
            &format!("{}.example.com", "l".repeat(64)),
            "a label is longer than 63 characters",
        ),
        (&format!("{}.example.com", "l".repeat(63)), ""),
        (
            &format!("{}.com", "a.".repeat(126)),
            "longer than 253 characters",
        ),
        ("-db.example.com", "a label starts or ends with `-`"),
        ("db-.example.com", "a label starts or ends with `-`"),
        ("db_1.example.com", ""),
        ("db.exam ple.com", "it contains ` `"),
        ("bücher.example", "it contains `ü`"),
        ("1.2.3.256", "it looks like an IPv4 address but is not one"),
        ("12345", "it looks like an IPv4 address but is not one"),
        ("localhost", ""),
        ("::1", ""),
        ("2001:db8::1", ""),
    ];
    for &(host, text) in host_cases {
        let expected: &[(&str, &str)] = if text.is_empty() {
            &[]
        } else {
            &[("target.host", text)]
        };
        check(|m| m.target.host = host.to_owned(), expected);
        if !text.is_empty() {
            check(
                |m| m.target.host = host.to_owned(),
                &[("target.host", allowed)],
            );
        }
    }
    check(
        |m| m.target.ip_family = IpFamily::Ipv6,
        &[(
            "target.ip_family",
            "is `ipv6` but the host `127.0.0.1` is an address of the other family; use `any` or a matching address",
        )],
    );
    check(
        |m| {
            m.target.host = "::1".into();
            m.target.ip_family = IpFamily::Ipv4;
        },
        &[("target.ip_family", "is `ipv4` but the host `::1`")],
    );
    check(|m| m.target.ip_family = IpFamily::Ipv4, &[]);
    check(
        |m| {
            m.target.host = "db.example.com".into();
            m.target.ip_family = IpFamily::Ipv6;
        },
        &[],
    );
}

#[test]
fn step_rules() {
    check(
        |m| m.steps = vec![Step::Read(ReadUntil::Any); 101],
        &[("steps", "has 101 entries; at most 100 are allowed")],
    );
    check(|m| m.steps = vec![Step::Read(ReadUntil::Any); 100], &[]);
    let escapes = "allowed escapes are \\r \\n \\t \\0 \\\\ and \\xNN";
    let step_cases: [(Step, &str, &str); 16] = [
        (
            Step::Send(Payload::Text("PING\\q".into())),
            "steps[0].send.text",
            escapes,
        ),
        (
            Step::Send(Payload::Text("PING\\x1".into())),
            "steps[0].send.text",
            "must be followed by two hex digits, as in \\x0d",
        ),
        (
            Step::Send(Payload::Text("PING\\".into())),
            "steps[0].send.text",
            "write \\\\ for a backslash",
        ),
        (
            Step::Send(Payload::Text(String::new())),
            "steps[0].send.text",
            "must not be empty",
        ),
        (
            Step::Send(Payload::Hex("2b5".into())),
            "steps[0].send.hex",
            "hex must be pairs of digits 0-9 a-f (spaces allowed between pairs); found an odd number of digits",
        ),
        (
            Step::Send(Payload::Hex("2bzz".into())),
            "steps[0].send.hex",
            "hex must be pairs of digits 0-9 a-f (spaces allowed between pairs); found a character that is not a hex digit",
        ),
        (
            Step::Send(Payload::Hex(String::new())),
            "steps[0].send.hex",
            "must not be empty",
        ),
        (
            Step::Send(Payload::Hex(" \n ".into())),
            "steps[0].send.hex",
            "must not be empty",
        ),
        (
            Step::Expect(Expect::Contains(String::new())),
            "steps[0].expect.contains",
            "must not be empty",
        ),
        (
            Step::Expect(Expect::Contains("\\e".into())),
            "steps[0].expect.contains",
            escapes,
        ),
        (
            Step::Expect(Expect::Regex("+PONG(".into())),
            "steps[0].expect.regex",
            "is not a valid regular expression",
        ),
        (
            Step::Expect(Expect::Regex(String::new())),
            "steps[0].expect.regex",
            "must not be empty",
        ),
        (
            Step::Expect(Expect::Exact(Payload::Hex("0g".into()))),
            "steps[0].expect.exact.hex",
            "found a character that is not a hex digit",
        ),
        (
            Step::Expect(Expect::Exact(Payload::Text("\\y".into()))),
            "steps[0].expect.exact.text",
            escapes,
        ),
        (
            Step::Read(ReadUntil::Delimiter(String::new())),
            "steps[0].read.delimiter",
            "must not be empty",
        ),
        (
            Step::Read(ReadUntil::Delimiter("\\r\\z".into())),
            "steps[0].read.delimiter",
            escapes,
        ),
    ];
    for (step, path, text) in step_cases {
        check(|m| m.steps = vec![step], &[(path, text)]);
    }
    check(
        |m| m.steps = vec![Step::Read(ReadUntil::Bytes(0))],
        &[(
            "steps[0].read.bytes",
            "must be between 1 and max_response_bytes (65536), got 0",
        )],
    );
    check(
        |m| m.steps = vec![Step::Read(ReadUntil::Bytes(65_537))],
        &[(
            "steps[0].read.bytes",
            "must be between 1 and max_response_bytes (65536), got 65537",
        )],
    );
    check(
        |m| {
            m.max_response_bytes = 4;
            m.steps = vec![Step::Read(ReadUntil::Bytes(4))];
        },
        &[],
    );
    // The index in the path is the index of the offending step.
    check(
        |m| {
            m.steps = vec![
                Step::Send(Payload::Text("PING\\r\\n".into())),
                Step::Expect(Expect::Regex("(".into())),
            ]
        },
        &[("steps[1].expect.regex", "is not a valid regular expression")],
    );
    check(
        |m| {
            m.steps = vec![
                Step::Send(Payload::Text("PING\\r\\n".into())),
                Step::Send(Payload::Hex("2b 50 4f".into())),
                Step::Expect(Expect::Contains("+PONG".into())),
                Step::Expect(Expect::Regex("^\\+PO".into())),
                Step::Expect(Expect::Exact(Payload::Text("NG\\r\\n".into()))),
                Step::Read(ReadUntil::Delimiter("\\r\\n".into())),
                Step::Read(ReadUntil::Bytes(1)),
                Step::Read(ReadUntil::Any),
                Step::Read(ReadUntil::Close),
            ]
        },
        &[],
    );
}

#[test]
fn assertion_rules() {
    check(
        |m| m.assertions = vec![response_time().less_than(100); 101],
        &[("assertions", "has 101 entries; at most 100 are allowed")],
    );
    check(
        |m| m.assertions = vec![response_time().less_than(100); 100],
        &[],
    );
    let cases: [(Assertion, &str, &str); 14] = [
        (
            response_time().contains("100"),
            "assertions[0].comparison",
            "`contains` does not apply to `response_time`; use one of equals, not_equals, less_than, greater_than",
        ),
        (
            connect_time().is_empty(),
            "assertions[0].comparison",
            "`is_empty` does not apply to `connect_time`; use one of equals, not_equals, less_than, greater_than",
        ),
        (
            first_byte_time().matches_regex("1.."),
            "assertions[0].comparison",
            "`matches_regex` does not apply to `first_byte_time`",
        ),
        (
            response_time().less_than(""),
            "assertions[0].target",
            "must be a non-negative number of milliseconds, got ``",
        ),
        (
            response_data().matches_regex(""),
            "assertions[0].target",
            "must not be empty",
        ),
        (
            response_data().contains(""),
            "assertions[0].target",
            "must not be empty; to check for an empty response use is_empty or not_empty",
        ),
        (
            data(Comparison::IsEmpty, "x"),
            "assertions[0].target",
            "`is_empty` takes no target; remove it",
        ),
        (
            data(Comparison::NotEmpty, "x"),
            "assertions[0].target",
            "`not_empty` takes no target; remove it",
        ),
        (
            response_time().less_than("fast"),
            "assertions[0].target",
            "must be a non-negative number of milliseconds, got `fast`",
        ),
        (
            connect_time().greater_than("-1"),
            "assertions[0].target",
            "must be a non-negative number of milliseconds, got `-1`",
        ),
        (
            response_time().equals("inf"),
            "assertions[0].target",
            "must be a non-negative number of milliseconds, got `inf`",
        ),
        (
            response_data().less_than("ten"),
            "assertions[0].target",
            "must be a non-negative number, got `ten`",
        ),
        (
            response_data().matches_regex("(+PONG"),
            "assertions[0].target",
            "is not a valid regular expression",
        ),
        (
            response_data().contains("+PONG\\q"),
            "assertions[0].target",
            "allowed escapes are \\r \\n \\t \\0 \\\\ and \\xNN",
        ),
    ];
    for (assertion, path, text) in cases {
        check(|m| m.assertions = vec![assertion], &[(path, text)]);
    }
    check(
        |m| {
            m.assertions = vec![
                response_time().less_than(100),
                response_data().contains("\\x"),
            ]
        },
        &[("assertions[1].target", "must be followed by two hex digits")],
    );
    check(
        |m| {
            m.assertions = vec![
                response_data().equals("+PONG\\r\\n"),
                response_data().not_equals("-ERR"),
                response_data().contains("PONG"),
                response_data().not_contains("ERR"),
                response_data().is_empty(),
                response_data().not_empty(),
                response_data().less_than(" 12.5 "),
                response_data().greater_than(0),
                response_data().matches_regex("^\\+PO(NG)?"),
                response_time().less_than(ms(100)),
                response_time().equals("0"),
                connect_time().not_equals(3),
                first_byte_time().greater_than("1.5"),
            ]
        },
        &[],
    );
}

#[test]
fn limit_rules() {
    check(
        |m| m.timeouts.total_ms = 0,
        &[
            ("timeouts.total_ms", "must be between 1 and 300000, got 0"),
            (
                "timeouts.connect_ms",
                "must be between 1 and timeouts.total_ms (0), got 5000",
            ),
            (
                "timeouts.read_ms",
                "must be between 1 and timeouts.total_ms (0), got 5000",
            ),
            (
                "max_response_time_ms",
                "is 5000 but must not be above timeouts.total_ms (0)",
            ),
        ],
    );
    check(
        |m| m.timeouts.total_ms = 300_001,
        &[(
            "timeouts.total_ms",
            "must be between 1 and 300000, got 300001",
        )],
    );
    check(|m| m.timeouts.total_ms = 300_000, &[]);
    check(
        |m| m.timeouts.connect_ms = 0,
        &[(
            "timeouts.connect_ms",
            "must be between 1 and timeouts.total_ms (10000), got 0",
        )],
    );
    check(
        |m| m.timeouts.connect_ms = 10_001,
        &[(
            "timeouts.connect_ms",
            "must be between 1 and timeouts.total_ms (10000), got 10001",
        )],
    );
    check(
        |m| m.timeouts.read_ms = 0,
        &[(
            "timeouts.read_ms",
            "must be between 1 and timeouts.total_ms (10000), got 0",
        )],
    );
    check(
        |m| m.timeouts.read_ms = 10_001,
        &[(
            "timeouts.read_ms",
            "must be between 1 and timeouts.total_ms (10000), got 10001",
        )],
    );
    check(
        |m| {
            m.timeouts.connect_ms = 10_000;
            m.timeouts.read_ms = 1;
        },
        &[],
    );
    check(
        |m| m.max_response_bytes = 0,
        &[(
            "max_response_bytes",
            "must be between 1 and 16777216, got 0",
        )],
    );
    check(
        |m| m.max_response_bytes = 16 * 1024 * 1024 + 1,
        &[(
            "max_response_bytes",
            "must be between 1 and 16777216, got 16777217",
        )],
    );
    check(|m| m.max_response_bytes = 16 * 1024 * 1024, &[]);
    check(
        |m| m.degraded_response_time_ms = 5_001,
        &[(
            "degraded_response_time_ms",
            "is 5001 but must not be above max_response_time_ms (5000)",
        )],
    );
    check(|m| m.degraded_response_time_ms = 5_000, &[]);
    check(
        |m| m.max_response_time_ms = 10_001,
        &[(
            "max_response_time_ms",
            "is 10001 but must not be above timeouts.total_ms (10000); raise the timeout or lower the threshold",
        )],
    );
    check(|m| m.max_response_time_ms = 10_000, &[]);
}

/// The list of names called `field` in a spec.
fn list<'a>(m: &'a mut TcpMonitor, field: &str) -> &'a mut Vec<String> {
    match field {
        "locations" => &mut m.locations,
        "private_locations" => &mut m.private_locations,
        _ => &mut m.alert_channels,
    }
}

#[test]
fn locations_are_names_an_agent_can_take() {
    for field in ["locations", "private_locations"] {
        check(
            |m| *list(m, field) = vec!["eu-west-1".into(), "Frankfurt (DE)".into()],
            &[(
                &format!("{field}[1]"),
                "`Frankfurt (DE)` is not a location name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`",
            )],
        );
        check(|m| *list(m, field) = vec!["on-prem.dc_2".into()], &[]);
    }
    // Alert channels are words too: `/metrics` joins them with commas for routes.
    check(
        |m| m.alert_channels = vec!["Ops (pager)".into()],
        &[(
            "alert_channels[0]",
            "`Ops (pager)` is not an alert channel name: use 1 to 64 ascii letters, digits, `.`, `_` or `-`",
        )],
    );
}

#[test]
fn scheduling_name_rules() {
    for (field, max) in [
        ("locations", 64),
        ("private_locations", 64),
        ("alert_channels", 64),
    ] {
        check(
            |m| *list(m, field) = vec!["eu-west-1".into(), String::new()],
            &[(&format!("{field}[1]"), "must not be empty or blank")],
        );
        check(
            |m| *list(m, field) = vec!["eu-west-1".into(), "\t".into()],
            &[(&format!("{field}[1]"), "must not be empty or blank")],
        );
        check(
            |m| *list(m, field) = vec!["eu-west-1".into(), "us-east-1".into(), "eu-west-1".into()],
            &[(
                &format!("{field}[2]"),
                &format!("duplicate of {field}[0] (`eu-west-1`)"),
            )],
        );
        check(
            |m| *list(m, field) = vec!["x".repeat(max + 1)],
            &[(
                &format!("{field}[0]"),
                &format!("is longer than {max} characters"),
            )],
        );
        check(
            |m| *list(m, field) = vec!["x".repeat(max), "eu-west-1".into()],
            &[],
        );
    }
}

#[test]
fn retry_rules() {
    type Make = fn(Backoff) -> RetryStrategy;
    let strategies: [Make; 3] = [
        RetryStrategy::Fixed,
        RetryStrategy::Linear,
        RetryStrategy::Exponential,
    ];
    for make in strategies {
        check(|m| m.retry = make(backoff(30, 3, 600)), &[]);
        check(|m| m.retry = make(backoff(0, 1, 0)), &[]);
        check(|m| m.retry = make(backoff(600, 10, 600)), &[]);
        check(
            |m| m.retry = make(backoff(30, 0, 600)),
            &[("retry.max_retries", "must be between 1 and 10, got 0")],
        );
        check(
            |m| m.retry = make(backoff(30, 11, 600)),
            &[("retry.max_retries", "must be between 1 and 10, got 11")],
        );
        check(
            |m| m.retry = make(backoff(30, 3, 601)),
            &[(
                "retry.max_duration_seconds",
                "must be between 0 and 600, got 601",
            )],
        );
        check(
            |m| m.retry = make(backoff(61, 3, 60)),
            &[(
                "retry.base_backoff_seconds",
                "is 61 but must not be above retry.max_duration_seconds (60)",
            )],
        );
    }
    check(
        |m| {
            m.retry = RetryStrategy::SingleRetry {
                base_backoff_seconds: 601,
                same_region: true,
            }
        },
        &[(
            "retry.base_backoff_seconds",
            "must be between 0 and 600, got 601",
        )],
    );
    check(
        |m| {
            m.retry = RetryStrategy::SingleRetry {
                base_backoff_seconds: 600,
                same_region: false,
            }
        },
        &[],
    );
}

/// The id length is counted in characters, as the message says: 65 `é` are 130 bytes but
/// only 65 characters, and what is wrong with them is the character.
#[test]
fn id_length_is_counted_in_characters() {
    check(|m| m.id = "é".repeat(65), &[("id", "contains `é`")]);
}

/// A message never contradicts itself: a base backoff of 601 s is not "above" a maximum
/// duration of 601 s (the effective limit is 600 s, already reported on its own path).
#[test]
fn retry_backoff_message_names_the_effective_limit() {
    let mut spec = base();
    spec.retry = RetryStrategy::Fixed(backoff(601, 3, 601));
    let errors = spec.validate().unwrap_err().0;
    assert_eq!(errors[0].path, "retry.max_duration_seconds");
    for e in &errors[1..] {
        assert_eq!(e.path, "retry.base_backoff_seconds");
        assert!(
            !e.message.contains("retry.max_duration_seconds (601)"),
            "contradictory message: {e}"
        );
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    check(
        |m| {
            m.schema_version = 0;
            m.id = "bad id".into();
            m.name = " ".into();
            m.tags = vec!["a".into(), "a".into()];
            m.target.host = "[::1]".into();
            m.target.port = 0;
            m.steps = vec![
                Step::Send(Payload::Hex("abc".into())),
                Step::Expect(Expect::Regex("(".into())),
                Step::Read(ReadUntil::Bytes(0)),
            ];
            m.assertions = vec![
                response_time().contains("x"),
                response_data().matches_regex("["),
            ];
            m.timeouts.connect_ms = 0;
            m.max_response_bytes = 0;
            m.degraded_response_time_ms = 9_000;
            m.locations = vec![String::new()];
            m.alert_channels = vec!["ops".into(), "ops".into()];
            m.retry = RetryStrategy::Fixed(backoff(30, 0, 600));
        },
        &[
            ("schema_version", "reads version 1"),
            ("id", "contains ` `"),
            ("name", "must not be empty"),
            ("tags[1]", "duplicate of tags[0]"),
            ("target.port", "between 1 and 65535"),
            ("target.host", "brackets are not needed"),
            ("steps[0].send.hex", "odd number of digits"),
            ("steps[1].expect.regex", "not a valid regular expression"),
            (
                "steps[2].read.bytes",
                "must be between 1 and max_response_bytes",
            ),
            (
                "assertions[0].comparison",
                "does not apply to `response_time`",
            ),
            ("assertions[1].target", "not a valid regular expression"),
            (
                "timeouts.connect_ms",
                "must be between 1 and timeouts.total_ms",
            ),
            ("max_response_bytes", "must be between 1 and 16777216"),
            (
                "degraded_response_time_ms",
                "must not be above max_response_time_ms",
            ),
            ("locations[0]", "must not be empty"),
            ("alert_channels[1]", "duplicate of alert_channels[0]"),
            ("retry.max_retries", "must be between 1 and 10"),
        ],
    );
}

/// A spec that uses every feature, as a deploy would send it.
pub(crate) fn full_spec() -> TcpMonitor {
    let mut spec = TcpMonitor::new("team/redis-cache", "cache.example.com", 6379)
        .name("Redis cache answers PING")
        .description("Checks that **redis** answers `PING` quickly.")
        .tag("redis")
        .tag("prod")
        .group("backend")
        .ip_family(IpFamily::Ipv4)
        .recipe(monitor_spec::Recipe::Smtp {
            helo: "probe.example.com".into(),
            login: None,
        })
        .proxy_protocol(monitor_spec::ProxyProtocol::V2)
        .send("PING\\r\\n")
        .send_bytes(b"*1\r\n$4\r\nPING\r\n")
        .expect("+PONG")
        .expect_regex("^\\r\\n\\+PONG")
        .expect_bytes(b"\r\n")
        .read(ReadUntil::Delimiter("\\n".into()))
        .read(ReadUntil::Bytes(2))
        .read(ReadUntil::Any)
        .read(ReadUntil::Close)
        .assert(response_time().less_than(ms(200)))
        .assert(connect_time().less_than(ms(50)))
        .assert(first_byte_time().greater_than(0))
        .assert(response_data().contains("PONG"))
        .assert(response_data().not_contains("-ERR"))
        .assert(response_data().matches_regex("(?m)^\\+PONG$"))
        .assert(response_data().not_empty())
        .timeouts(2_000, 1_000, 20_000)
        .thresholds(300, 15_000)
        .max_response_bytes(1024)
        .should_fail(false)
        .frequency(Frequency::S30)
        .retry(RetryStrategy::Linear(backoff(10, 3, 120)))
        .starttls(StartTls::Smtp)
        .tls_with(|t| {
            t.server_name = Some("mail.example.com".into());
            t.ca = Some(PemSource::Path("/etc/ssl/private-ca.pem".into()));
            t.client_cert = Some(ClientCert {
                cert: PemSource::Path("/etc/monitor/client.pem".into()),
                key: PemSource::Path("/etc/monitor/client.key".into()),
            });
            t.min_version = TlsVersion::Tls13;
            t.alpn = vec!["smtp".into()];
            t.expiry_warn_days = 21;
            t.expiry_fail_days = 5;
            t.legacy_probe = LegacyProbe::Degrade;
        })
        .assert(tls_version().equals("TLSv1.3"))
        .assert(tls_days_left().greater_than(14));
    spec.locations = vec!["eu-west-1".into(), "us-east-1".into()];
    spec.private_locations = vec!["office".into()];
    spec.alert_channels = vec!["ops-email".into(), "pagerduty".into()];
    spec.activated = false;
    spec.muted = true;
    spec.run_parallel = true;
    spec.test_only = true;
    spec
}

#[test]
fn full_featured_spec_is_valid() {
    let spec = full_spec();
    let valid = spec.validate().expect("the full spec is valid");
    assert_eq!(valid.spec(), &spec);
}

#[test]
fn display_lists_every_problem() {
    let mut spec = base();
    spec.target.port = 0;
    spec.timeouts.total_ms = 400_000;
    spec.tags = vec![String::new()];
    let errors = spec.validate().unwrap_err();
    assert_eq!(
        errors.to_string(),
        "invalid monitor, 3 problems:\n  \
         tags[0]: must not be empty or blank\n  \
         target.port: must be between 1 and 65535, got 0\n  \
         timeouts.total_ms: must be between 1 and 300000, got 400000"
    );

    let one = base().name("").validate().unwrap_err();
    assert_eq!(
        one.to_string(),
        "invalid monitor: name: must not be empty or blank"
    );
    assert_eq!(one.0[0].to_string(), "name: must not be empty or blank");
}

#[test]
fn tls_rules() {
    let direct = |m: &mut TcpMonitor| m.tls.mode = TlsMode::Direct;
    check(
        |m| m.tls.mode = TlsMode::Starttls,
        &[(
            "tls.starttls",
            "is required with tls.mode `starttls`; use one of smtp, imap, pop3, ftp, postgres, mysql, ldap",
        )],
    );
    check(
        |m| {
            direct(m);
            m.tls.starttls = Some(StartTls::Smtp);
        },
        &[(
            "tls.starttls",
            "`smtp` conflicts with tls.mode `direct`; set tls.mode to `starttls`",
        )],
    );
    check(
        |m| {
            m.tls.server_name = Some("db.test".into());
            m.tls.allow_invalid = true;
            m.tls.legacy_probe = LegacyProbe::Fail;
            m.assertions.push(tls_days_left().greater_than(10));
        },
        &[
            ("tls.server_name", "has no effect without TLS; set tls.mode"),
            ("tls.allow_invalid", "has no effect without TLS"),
            ("tls.legacy_probe", "has no effect without TLS"),
            ("assertions[0].source", "`tls_days_left` needs TLS"),
        ],
    );
    check(
        |m| {
            direct(m);
            m.tls.server_name = Some("bad name".into());
        },
        &[("tls.server_name", "is not a valid host")],
    );
    check(
        |m| {
            direct(m);
            m.tls.ca = Some(PemSource::Pem("not pem".into()));
        },
        &[("tls.ca.pem", "holds no `-----BEGIN CERTIFICATE-----` block")],
    );
    check(
        |m| {
            direct(m);
            m.tls.ca = Some(PemSource::Path(" ".into()));
        },
        &[("tls.ca.path", "must not be empty")],
    );
    check(
        |m| {
            direct(m);
            m.tls.client_cert = Some(ClientCert {
                cert: PemSource::Path("/etc/monitor/client.pem".into()),
                key: PemSource::Pem(
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
                ),
            });
        },
        &[("tls.client_cert.key.pem", "holds no usable private key")],
    );
    check(
        |m| {
            direct(m);
            m.tls.expiry_warn_days = 5;
            m.tls.expiry_fail_days = 7;
        },
        &[(
            "tls.expiry_fail_days",
            "is 7 but must not be above tls.expiry_warn_days (5)",
        )],
    );
    check(
        |m| {
            direct(m);
            m.tls.expiry_warn_days = 4000;
            m.tls.expiry_fail_days = 0;
        },
        &[("tls.expiry_warn_days", "must be between 0 and 3650")],
    );
    check(
        |m| {
            direct(m);
            m.tls.alpn = vec!["h2".into(), String::new()];
        },
        &[("tls.alpn[1]", "must be 1 to 255 bytes")],
    );
    check(
        |m| {
            direct(m);
            m.assertions.push(tls_subject().less_than(3));
        },
        &[(
            "assertions[0].comparison",
            "`less_than` does not apply to `tls_subject`",
        )],
    );
    check(
        |m| {
            direct(m);
            m.assertions.push(tls_days_left().greater_than(-3));
            m.assertions.push(tls_version().equals("TLSv1.3"));
        },
        &[],
    );
}
