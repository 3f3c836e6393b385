//! The bounds of a spec's lists (issue 14, finding 4): every list has a documented count
//! limit, checked before its entries, so that an over-long list is one problem and costs
//! no more than reading it; and duplicates are found in linear time.

use std::time::{Duration, Instant};

use monitor_spec::limits::{MAX_ALERT_CHANNELS, MAX_ALPN, MAX_LOCATIONS, MAX_TAGS};
use monitor_spec::validate::{MAX_ASSERTIONS, MAX_STEPS};
use monitor_spec::*;

/// Every problem of `spec`, as (path, message).
fn problems(spec: &TcpMonitor) -> Vec<(String, String)> {
    match spec.validate() {
        Ok(_) => Vec::new(),
        Err(ValidationErrors(errors)) => errors.into_iter().map(|e| (e.path, e.message)).collect(),
    }
}

/// A list of a spec, its bound, and how to fill it with `n` distinct valid entries.
struct List {
    path: &'static str,
    max: usize,
    fill: fn(&mut TcpMonitor, usize),
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

const LISTS: [List; 7] = [
    List {
        path: "tags",
        max: MAX_TAGS,
        fill: |m, n| m.tags = names("tag-", n),
    },
    List {
        path: "locations",
        max: MAX_LOCATIONS,
        fill: |m, n| m.locations = names("loc-", n),
    },
    List {
        path: "private_locations",
        max: MAX_LOCATIONS,
        fill: |m, n| m.private_locations = names("dc-", n),
    },
    List {
        path: "alert_channels",
        max: MAX_ALERT_CHANNELS,
        fill: |m, n| m.alert_channels = names("ch-", n),
    },
    List {
        path: "tls.alpn",
        max: MAX_ALPN,
        fill: |m, n| {
            m.tls.mode = TlsMode::Direct;
            m.tls.alpn = names("p", n);
        },
    },
    List {
        path: "steps",
        max: MAX_STEPS,
        fill: |m, n| m.steps = vec![Step::Send(Payload::Text("PING\\r\\n".into())); n],
    },
    List {
        path: "assertions",
        max: MAX_ASSERTIONS,
        fill: |m, n| m.assertions = vec![response_time().less_than(ms(100)); n],
    },
];

#[test]
fn every_list_takes_its_bound_and_refuses_one_more_with_one_problem() {
    assert_eq!(
        (MAX_TAGS, MAX_LOCATIONS, MAX_ALERT_CHANNELS, MAX_ALPN),
        (64, 64, 32, 16)
    );
    for list in &LISTS {
        let mut m = TcpMonitor::new("id", "127.0.0.1", 6379);
        (list.fill)(&mut m, list.max);
        assert_eq!(problems(&m), [], "{} at its bound", list.path);

        let over = list.max + 1;
        (list.fill)(&mut m, over);
        assert_eq!(
            problems(&m),
            [(
                list.path.to_owned(),
                format!("has {over} entries; at most {} are allowed", list.max)
            )],
            "{} over its bound",
            list.path
        );
    }
}

/// An over-long list of bad entries is still one problem: the entries are not looked at.
#[test]
fn an_over_long_list_hides_the_problems_of_its_entries() {
    let mut m = TcpMonitor::new("id", "127.0.0.1", 6379);
    m.tags = vec![",".to_owned(); 65];
    m.alert_channels = vec![String::new(); 33];
    m.assertions = vec![response_time().contains("x"); 101];
    let paths: Vec<String> = problems(&m).into_iter().map(|(path, _)| path).collect();
    assert_eq!(paths, ["tags", "assertions", "alert_channels"]);
}

/// 100,000 entries, as one hostile deploy sent (finding 4: 40,000 tags took 5.9 s to
/// validate, each compared with all before it; 100,000 kept a server busy for 33 CPU
/// seconds). Read from JSON and validated, each list is refused with one problem. The
/// bound of one second is not a speed target: reading 100,000 short strings takes a few
/// milliseconds even unoptimized, while the quadratic check took many seconds, so only a
/// regression to comparing entries pairwise (or a hang) can cross it on a busy machine.
#[test]
fn a_hundred_thousand_entries_are_refused_at_once_with_one_problem() {
    for (path, max) in [
        ("tags", MAX_TAGS),
        ("locations", MAX_LOCATIONS),
        ("private_locations", MAX_LOCATIONS),
        ("alert_channels", MAX_ALERT_CHANNELS),
    ] {
        let entries: Vec<String> = (0..100_000).map(|i| format!("\"e{i}\"")).collect();
        let json = format!(
            r#"{{"schema_version": 1, "monitors": [{{"schema_version": 1, "id": "a", "name": "a",
                "target": {{"host": "127.0.0.1", "port": 1}}, "{path}": [{}]}}]}}"#,
            entries.join(",")
        );
        let started = Instant::now();
        let bundle = Bundle::from_json(&json).expect("a bundle");
        let error = bundle.into_valid().unwrap_err();
        let took = started.elapsed();
        let BundleError::Invalid(problems) = error else {
            panic!("{path}: {error}");
        };
        assert_eq!(
            problems,
            [ValidationError {
                path: format!("monitors[0].{path}"),
                message: format!("has 100000 entries; at most {max} are allowed"),
            }],
        );
        assert!(
            took < Duration::from_secs(1),
            "{path}: reading and refusing 100,000 entries took {took:?}"
        );
    }
}

#[test]
fn a_duplicate_in_a_full_list_names_both_places() {
    let mut m = TcpMonitor::new("id", "127.0.0.1", 6379);
    m.tags = names("t", MAX_TAGS);
    m.tags[63] = "t17".to_owned();
    m.tags[40] = "t5".to_owned();
    assert_eq!(
        problems(&m),
        [
            (
                "tags[40]".to_owned(),
                "duplicate of tags[5] (`t5`)".to_owned()
            ),
            (
                "tags[63]".to_owned(),
                "duplicate of tags[17] (`t17`)".to_owned()
            ),
        ]
    );
    // A name three times: each later one names the first.
    m.tags = vec!["a".into(), "b".into(), "a".into(), "a".into()];
    assert_eq!(
        problems(&m),
        [
            (
                "tags[2]".to_owned(),
                "duplicate of tags[0] (`a`)".to_owned()
            ),
            (
                "tags[3]".to_owned(),
                "duplicate of tags[0] (`a`)".to_owned()
            ),
        ]
    );
}

/// The committed schema states each bound (as `maxItems`), and states the numbers
/// validation uses.
#[test]
fn the_schema_states_every_bound() {
    let schema = monitor_spec::schema::spec_schema();
    let tls = &schema["$defs"]["Tls"]["properties"];
    for (bound, max) in [
        (&schema["properties"]["tags"], MAX_TAGS),
        (&schema["properties"]["locations"], MAX_LOCATIONS),
        (&schema["properties"]["private_locations"], MAX_LOCATIONS),
        (&schema["properties"]["alert_channels"], MAX_ALERT_CHANNELS),
        (&schema["properties"]["steps"], MAX_STEPS),
        (&schema["properties"]["assertions"], MAX_ASSERTIONS),
        (&tls["alpn"], MAX_ALPN),
    ] {
        assert_eq!(bound["maxItems"], max, "{bound}");
    }
}
