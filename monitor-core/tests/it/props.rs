//! Property tests: random specs validate without panicking and round-trip through JSON,
//! random text never panics the JSON reader, and escaped excerpts unescape to their bytes.

use std::cell::Cell;
use std::net::{Ipv4Addr, Ipv6Addr};

use monitor_core::escape::{escape_excerpt, to_hex, unescape};
use monitor_core::prelude::*;
use monitor_core::{Backoff, SpecError, Target, Timeouts, ValidationErrors};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};

const CASES: u32 = 256;

fn config() -> Config {
    Config {
        cases: CASES,
        // Keep failures in the output rather than in files next to the tests.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Any string at all: unicode, control characters, backslashes.
fn wild() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \\\\a-zé\u{1F600}\t\r\n.:/_-]{0,12}",
        Just(String::new()),
    ]
}

/// Mostly a well-formed name, sometimes anything.
fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        18 => "[a-z0-9][a-z0-9_.-]{0,15}",
        1 => "[A-Za-zé]{1,3}( [A-Za-z]{1,3})?",
        1 => wild(),
    ]
}

fn names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(name_like(), 0..4)
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z][a-z0-9_]{0,8}){0,3}\\.?",
        2 => any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        2 => any::<Ipv6Addr>().prop_map(|ip| ip.to_string()),
        1 => "[0-9.\\[\\]:/-]{0,12}",
        1 => wild(),
    ]
}

/// Text with escapes: mostly valid escapes, sometimes broken ones.
fn escaped() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "([A-Za-z +*$]|\\\\[rnt0\\\\]|\\\\x[0-9a-fA-F]{2}){1,8}",
        1 => "[a-z\\\\x0-9]{0,6}",
        1 => wild(),
    ]
}

fn hex() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::collection::vec(any::<u8>(), 1..8).prop_map(|b| to_hex(&b)),
        1 => "([0-9a-fA-F]{2} ?){1,4}",
        1 => "[0-9a-g \n]{0,7}",
        1 => wild(),
    ]
}

fn regex_like() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "\\^?[a-z+]{1,4}(\\\\[dswr+]|[a-z]\\*|\\([a-z]{1,3}\\)\\?)?\\$?",
        1 => "[()\\[\\]{}a-z+*?|\\\\^$.0-9,]{0,10}",
        1 => wild(),
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        escaped().prop_map(Payload::Text),
        hex().prop_map(Payload::Hex)
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        payload().prop_map(Step::Send),
        escaped().prop_map(|t| Step::Expect(Expect::Contains(t))),
        regex_like().prop_map(|r| Step::Expect(Expect::Regex(r))),
        payload().prop_map(|p| Step::Expect(Expect::Exact(p))),
        escaped().prop_map(|t| Step::Read(ReadUntil::Delimiter(t))),
        prop_oneof![4 => 1u32..2_000, 1 => any::<u32>()]
            .prop_map(|n| Step::Read(ReadUntil::Bytes(n))),
        Just(Step::Read(ReadUntil::Close)),
        Just(Step::Read(ReadUntil::Any)),
    ]
}

fn source() -> impl Strategy<Value = Source> {
    select(vec![
        Source::ResponseData,
        Source::ResponseTime,
        Source::ConnectTime,
        Source::FirstByteTime,
    ])
}

/// Any source, comparison and target, whether or not they fit together.
fn any_assertion() -> impl Strategy<Value = Assertion> {
    let comparison = select(vec![
        Comparison::Equals,
        Comparison::NotEquals,
        Comparison::Contains,
        Comparison::NotContains,
        Comparison::IsEmpty,
        Comparison::NotEmpty,
        Comparison::LessThan,
        Comparison::GreaterThan,
        Comparison::MatchesRegex,
    ]);
    let target = prop_oneof![
        3 => (0u32..100_000).prop_map(|n| n.to_string()),
        1 => "-?[0-9]{0,3}(\\.[0-9]{1,2})?|inf|NaN| 7 ",
        2 => escaped(),
        2 => regex_like(),
        2 => Just(String::new()),
    ];
    (source(), comparison, target).prop_map(|(source, comparison, target)| Assertion {
        source,
        comparison,
        target,
    })
}

/// A comparison allowed for its source, with a target of the kind it takes.
fn fitting_assertion() -> impl Strategy<Value = Assertion> {
    source()
        .prop_flat_map(|source| (Just(source), select(Comparison::allowed_for(source))))
        .prop_flat_map(|(source, comparison)| {
            let target = if !comparison.needs_target() {
                Just(String::new()).boxed()
            } else if source.is_numeric()
                || matches!(comparison, Comparison::LessThan | Comparison::GreaterThan)
            {
                (0u32..100_000).prop_map(|n| n.to_string()).boxed()
            } else if comparison == Comparison::MatchesRegex {
                regex_like().boxed()
            } else {
                escaped().boxed()
            };
            target.prop_map(move |target| Assertion {
                source,
                comparison,
                target,
            })
        })
}

fn assertion() -> impl Strategy<Value = Assertion> {
    prop_oneof![8 => fitting_assertion(), 1 => any_assertion()]
}

/// Mostly within `range`, sometimes any value at all.
fn number(range: std::ops::RangeInclusive<u32>) -> impl Strategy<Value = u32> {
    prop_oneof![18 => range, 1 => Just(0u32), 1 => any::<u32>()]
}

fn retry() -> impl Strategy<Value = RetryStrategy> {
    let backoff = (
        prop_oneof![4 => 0u32..=60, 1 => 0u32..=650],
        prop_oneof![4 => 1u32..=10, 1 => 0u32..=11],
        prop_oneof![4 => 60u32..=600, 1 => 0u32..=650],
        any::<bool>(),
    )
        .prop_map(
            |(base_backoff_seconds, max_retries, max_duration_seconds, same_region)| Backoff {
                base_backoff_seconds,
                max_retries,
                max_duration_seconds,
                same_region,
            },
        );
    prop_oneof![
        3 => Just(RetryStrategy::None),
        2 => (0u32..=650, any::<bool>()).prop_map(|(base_backoff_seconds, same_region)| {
            RetryStrategy::SingleRetry {
                base_backoff_seconds,
                same_region,
            }
        }),
        1 => backoff.clone().prop_map(RetryStrategy::Fixed),
        1 => backoff.clone().prop_map(RetryStrategy::Linear),
        1 => backoff.prop_map(RetryStrategy::Exponential),
    ]
}

/// Random specs, valid often enough that the round trip is exercised.
fn spec() -> impl Strategy<Value = TcpMonitor> {
    let identity = (
        prop_oneof![9 => Just(1u32), 1 => any::<u32>()],
        prop_oneof![18 => "[A-Za-z0-9_.:/-]{1,20}", 1 => wild()],
        name_like(),
        prop::option::of(prop_oneof![4 => "[a-z *`é]{0,40}", 1 => wild()]),
        names(),
        prop::option::of(name_like()),
    );
    let target = (
        host(),
        prop_oneof![18 => 1u16.., 1 => Just(0u16)],
        select(vec![IpFamily::Any, IpFamily::Ipv4, IpFamily::Ipv6]),
    )
        .prop_map(|(host, port, ip_family)| Target {
            host,
            port,
            ip_family,
        });
    let dialog = (
        prop::collection::vec(step(), 0..5),
        prop::collection::vec(assertion(), 0..4),
    );
    let limits = (
        number(1..=10_000),
        number(1..=10_000),
        number(10_000..=300_000),
        number(1..=1_000_000),
        number(0..=5_000),
        number(5_000..=10_000),
    );
    let scheduling = (
        any::<(bool, bool, bool, bool, bool)>(),
        select(Frequency::ALL.to_vec()),
        (names(), names(), names()),
        retry(),
    );
    (identity, target, dialog, limits, scheduling).prop_map(
        |(
            (schema_version, id, name, description, tags, group),
            target,
            (steps, assertions),
            (connect_ms, read_ms, total_ms, max_response_bytes, degraded, max),
            (
                (should_fail, activated, muted, run_parallel, test_only),
                frequency,
                (locations, private_locations, alert_channels),
                retry,
            ),
        )| TcpMonitor {
            schema_version,
            id,
            name,
            description,
            tags,
            group,
            target,
            steps,
            recipe: None,
            proxy_protocol: None,
            tls: monitor_core::Tls::default(),
            assertions,
            timeouts: Timeouts {
                connect_ms,
                read_ms,
                total_ms,
            },
            max_response_bytes,
            degraded_response_time_ms: degraded,
            max_response_time_ms: max,
            should_fail,
            frequency,
            locations,
            private_locations,
            activated,
            muted,
            run_parallel,
            test_only,
            alert_channels,
            retry,
        },
    )
}

/// Whether `name` is a top-level field of the JSON form, which every error path starts
/// with; the committed schema is the list, so it cannot fall behind the spec.
fn is_field(name: &str) -> bool {
    monitor_core::schema::spec_schema()["properties"]
        .get(name)
        .is_some()
}

#[test]
fn random_specs_validate_and_round_trip() {
    let mut runner = TestRunner::new(config());
    let valid = Cell::new(0u32);
    runner
        .run(&spec(), |spec| {
            let text = spec.to_json();
            let back = TcpMonitor::from_json(&text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(&back, &spec);
            match spec.validate() {
                Ok(monitor) => {
                    valid.set(valid.get() + 1);
                    prop_assert_eq!(monitor.spec(), &spec);
                }
                Err(ValidationErrors(errors)) => {
                    prop_assert!(!errors.is_empty());
                    for e in &errors {
                        prop_assert!(!e.path.is_empty(), "empty path: {:?}", e);
                        prop_assert!(!e.message.is_empty(), "empty message: {:?}", e);
                        let root = e.path.split(['.', '[']).next().unwrap_or_default();
                        prop_assert!(is_field(root), "unknown path {:?}", e.path);
                        prop_assert!(
                            !e.message.starts_with(char::is_uppercase),
                            "message not lower case: {:?}",
                            e
                        );
                    }
                    // The same problems come back after a JSON round trip.
                    prop_assert_eq!(back.validate().unwrap_err().0, errors);
                }
            }
            Ok(())
        })
        .unwrap();
    // The generator must reach the valid branch, or the round trip of valid specs goes
    // untested.
    let valid = valid.get();
    assert!(
        valid >= CASES / 20,
        "only {valid} of {CASES} random specs were valid"
    );
}

/// A valid spec's JSON with `insert` spliced in at a random place and a random cut.
fn mangled_json() -> impl Strategy<Value = String> {
    let text = TcpMonitor::new("redis", "cache.example.com", 6379)
        .send("PING\\r\\n")
        .expect("+PONG")
        .assert(response_time().less_than(100))
        .retry(RetryStrategy::SingleRetry {
            base_backoff_seconds: 5,
            same_region: true,
        })
        .to_json();
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len();
    (
        0..=len,
        0..=len,
        prop_oneof!["[{}\\[\\]\",:0-9a-z -]{0,4}", any::<String>()],
    )
        .prop_map(move |(at, cut, insert)| {
            let (at, cut) = (at.min(cut), at.max(cut));
            let mut out: String = chars[..at].iter().collect();
            out.push_str(&insert);
            out.extend(&chars[cut..]);
            out
        })
}

fn check_from_json(text: &str) -> Result<(), TestCaseError> {
    match TcpMonitor::from_json(text) {
        Ok(spec) => {
            prop_assert_eq!(TcpMonitor::from_json(&spec.to_json()).ok(), Some(spec));
        }
        Err(err) => {
            let SpecError {
                path,
                message,
                line,
                ..
            } = &err;
            prop_assert!(!path.is_empty() && !message.is_empty(), "{}", err);
            prop_assert!(*line >= 1, "{}", err);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn from_json_never_panics_on_text(text in any::<String>()) {
        check_from_json(&text)?;
    }

    #[test]
    fn from_json_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_from_json(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn from_json_never_panics_on_mangled_specs(text in mangled_json()) {
        check_from_json(&text)?;
    }

    #[test]
    fn excerpt_unescapes_to_the_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let shown = escape_excerpt(&bytes, usize::MAX);
        prop_assert!(shown.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{:?}", shown);
        prop_assert_eq!(unescape(&shown).unwrap(), bytes);
    }

    #[test]
    fn excerpt_is_cut_at_the_limit(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        limit in 0usize..80,
    ) {
        let shown = escape_excerpt(&bytes, limit);
        if bytes.len() > limit {
            let head = escape_excerpt(&bytes[..limit], usize::MAX);
            prop_assert_eq!(shown, head + "...");
        } else {
            prop_assert_eq!(shown, escape_excerpt(&bytes, usize::MAX));
        }
    }
}
