//! Tests of the monitor page: ranges, size, what it shows and hides, escaping, and the
//! chains and failures read from result JSON.

// The size test prints what it measured, as the README's figures come from it.
#![allow(clippy::print_stderr)]

use std::io::Write as _;

use monitor_spec::api::{LocationStatus, MonitorStatus, Uptime};
use monitor_spec::{ErrorKind, ProbeError, Status, TcpMonitor, Timings};

use super::*;
use crate::store::ResultFacts;

const HOUR: i64 = 3_600_000_000;
const NOW: i64 = 1_764_950_400_000_000; // 2025-12-05T16:00:00Z

fn point(location: &str, start: i64, ms: f64, failures: u64) -> (i64, HistoryPoint) {
    (
        start,
        HistoryPoint {
            location: location.to_owned(),
            start: crate::status::rfc3339_us(start),
            checks: 60,
            failures,
            degraded: 0,
            p50_ms: ms,
            p95_ms: ms * 1.7,
            max_ms: ms * 3.0,
            min_days_left: Some(40),
            id: None,
            status: None,
            error: None,
            in_maintenance: false,
        },
    )
}

fn status(id: &str) -> MonitorStatus {
    let location = |name: &str, status: Status, error: Option<ProbeError>| LocationStatus {
        location: name.to_owned(),
        agent: format!("{name}-1"),
        status,
        started_at: time::OffsetDateTime::from_unix_timestamp(NOW / 1_000_000).unwrap(),
        error,
        timings: Timings {
            total_ms: 12.5,
            ..Timings::default()
        },
        days_left: Some(12),
        consecutive_failures: 0,
        cert_expiry: None,
        uptime: Uptime {
            h24: Some(99.5),
            d7: Some(100.0),
            d30: None,
            d90: None,
        },
        in_maintenance: false,
    };
    MonitorStatus {
        id: id.to_owned(),
        name: "n".to_owned(),
        muted: false,
        activated: true,
        run_parallel: false,
        frequency: "1m".to_owned(),
        alert_channels: Vec::new(),
        group: None,
        tags: Vec::new(),
        locations: vec![
            location(
                "eu",
                Status::Failed,
                Some(ProbeError {
                    kind: ErrorKind::Refused,
                    message: "refused <b>".to_owned(),
                    hints: vec!["start it".to_owned()],
                }),
            ),
            location("us", Status::Passed, None),
        ],
        uptime: Uptime {
            h24: Some(99.75),
            d7: Some(100.0),
            d30: None,
            d90: None,
        },
        maintenance: None,
    }
}

fn render_with(
    spec: &TcpMonitor,
    points: &[(i64, HistoryPoint)],
    range: Range,
    public: bool,
    chains: &[Chain],
    failures: &[Failure],
) -> String {
    let json = serde_json::to_string(spec).unwrap();
    let status = status(&spec.id);
    render(&MonitorPage {
        project: "shop <&>",
        public,
        range,
        spec,
        spec_json: &json,
        status: Some(&status),
        from_us: NOW - range.span_us(),
        to_us: NOW,
        step: range.step(),
        points,
        chains,
        failures,
    })
}

fn gzip_len(text: &str) -> usize {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap().len()
}

#[test]
fn ranges_read_and_name_themselves() {
    for r in Range::ALL {
        assert_eq!(Range::parse(r.name()), Some(r));
    }
    assert_eq!(Range::parse("1y"), None);
    assert_eq!(Range::parse("24H"), None);
    assert_eq!(Range::H24.step(), None);
    assert_eq!(Range::D30.step(), Some(Step::Hour));
    assert_eq!(Range::D90.step(), Some(Step::Day));
    assert_eq!(Range::D7.span_us(), 7 * 24 * HOUR);
}

#[test]
fn thirty_days_of_two_locations_stay_small() {
    let spec = TcpMonitor::new("db", "db.internal", 5432)
        .name("Database")
        .thresholds(300, 1000);
    // 2 × 720 hourly points with varying times and some failing hours.
    let mut points = Vec::new();
    for h in 0..720 {
        let start = NOW - 30 * 24 * HOUR + h * HOUR;
        for (i, location) in ["eu", "us"].into_iter().enumerate() {
            let ms = 20.0 + ((h * 37 + i as i64 * 11) % 90) as f64;
            points.push(point(location, start, ms, u64::from(h % 97 == 0)));
        }
    }
    points.sort_by(|a, b| (a.0, &a.1.location).cmp(&(b.0, &b.1.location)));
    let failures: Vec<Failure> = (0..20)
        .map(|i| Failure {
            id: format!("db/eu/{i}"),
            location: "eu".to_owned(),
            started_us: NOW - i * HOUR,
            status: Status::Failed,
            kind: Some("connection_refused".to_owned()),
            message: "connection refused by 10.0.0.1:5432".to_owned(),
            hints: vec!["is the service running?".to_owned()],
            excerpt: "x".repeat(200),
            in_maintenance: false,
        })
        .collect();
    let html = render_with(&spec, &points, Range::D30, false, &[], &failures);
    let (plain, gzip) = (html.len(), gzip_len(&html));
    eprintln!("monitor page, 30 days of 2 locations: {plain} B plain, {gzip} B gzip");
    // Measured: 43 376 bytes, 13 311 gzip.
    assert!(plain < 60 * 1024, "{plain} bytes plain");
    assert!(gzip < 20 * 1024, "{gzip} bytes gzip");
    assert!(
        html.contains("data-points=\"1440\""),
        "every point is plotted"
    );
    assert_eq!(html.matches("data-points=\"720\"").count(), 2);
    assert!(html.contains("data-step=\"1h\""));
    // The most the history answers, 10 000 raw results over 24 hours, each a point:
    // sent compressed, still well under 100 KB.
    let every = 24 * HOUR / 10_000;
    let raw: Vec<(i64, HistoryPoint)> = (0..10_000)
        .map(|k| {
            let ms = 20.0 + ((k * k * 31) % 97) as f64;
            let location = ["eu", "us"][(k % 2) as usize];
            let mut p = point(location, NOW - 24 * HOUR + k * every, ms, 0);
            p.1.checks = 1;
            p
        })
        .collect();
    let html = render_with(&spec, &raw, Range::H24, false, &[], &failures);
    let (plain, gzip) = (html.len(), gzip_len(&html));
    assert!(
        html.contains("data-points=\"10000\""),
        "every point is plotted"
    );
    eprintln!("monitor page, 10000 raw points: {plain} B plain, {gzip} B gzip");
    // Measured: 96 237 bytes, 28 913 gzip.
    assert!(gzip < 40 * 1024, "{gzip} bytes gzip");
    assert!(plain < 100 * 1024, "{plain} bytes plain");
}

#[test]
fn the_page_shows_the_monitor() {
    let mut spec = TcpMonitor::new("db", "db.internal", 5432)
        .name("Data<base>")
        .thresholds(300, 1000);
    spec.group = Some("core & more".to_owned());
    spec.tags = vec!["<t>".to_owned()];
    let points = vec![
        point("eu", NOW - 2 * HOUR, 30.0, 0),
        point("eu", NOW - HOUR, 40.0, 2),
    ];
    let chain = Chain {
        locations: vec!["eu".to_owned(), "us".to_owned()],
        certs: vec![Cert {
            subject: "CN=<db>".to_owned(),
            issuer: "CN=ca".to_owned(),
            not_after: "2026-01-01T00:00:00Z".to_owned(),
            days_left: 26,
            sha256: "ab12".to_owned(),
        }],
    };
    let failure = Failure {
        id: "db/eu/7".to_owned(),
        location: "eu".to_owned(),
        started_us: NOW - HOUR,
        status: Status::Failed,
        kind: Some("connection_refused".to_owned()),
        message: "refused by <10.0.0.1>".to_owned(),
        hints: vec!["check the <port>".to_owned()],
        excerpt: "</pre><script>x</script>".to_owned(),
        in_maintenance: false,
    };
    let html = render_with(
        &spec,
        &points,
        Range::D7,
        false,
        std::slice::from_ref(&chain),
        std::slice::from_ref(&failure),
    );
    for shown in [
        "<h1>Data&lt;base&gt;</h1>",
        "group core &amp; more",
        "#&lt;t&gt;",
        "<code>db.internal:5432</code>",
        "data-location=\"eu\" data-status=\"failed\"",
        "data-location=\"us\" data-status=\"passed\"",
        "data-window=\"24h\" data-uptime=\"99.75\">99.75%",
        "data-days-left=\"26\">26 d",
        "seen from eu, us",
        "CN=&lt;db&gt;",
        "<code>ab12</code>",
        "data-result=\"db/eu/7\"",
        "refused by &lt;10.0.0.1&gt;",
        "<li>check the &lt;port&gt;</li>",
        "<pre>&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;</pre>",
        "data-spec",
        "&quot;id&quot;: &quot;db&quot;",
        "<strong>7d</strong>",
        "href=\"/monitors/db?range=24h&amp;project=shop%20%3C%26%3E\"",
        "data-points=\"2\"",
        "data-runs=\"2\"",
        "2 failed",
    ] {
        assert!(html.contains(shown), "{shown} is missing:\n{html}");
    }
    // Nothing a user wrote comes out as markup (the page itself writes no <b> either).
    for raw in ["<script", "<base>", "<t>", "<b>", "<10."] {
        assert!(!html.contains(raw), "{raw}: {html}");
    }
}

#[test]
fn a_public_page_leaks_no_error_address_or_excerpt() {
    let spec = TcpMonitor::new("db", "db.internal", 5432);
    let failure = Failure {
        id: "db/eu/7".to_owned(),
        location: "eu".to_owned(),
        started_us: NOW,
        status: Status::Failed,
        kind: Some("connection_refused".to_owned()),
        message: "secret message".to_owned(),
        hints: vec!["secret hint".to_owned()],
        excerpt: "secret excerpt".to_owned(),
        in_maintenance: false,
    };
    let mut raw = point("eu", NOW - HOUR, 5.0, 1);
    raw.1.error = Some(ErrorKind::Refused);
    let html = render_with(
        &spec,
        &[raw],
        Range::H24,
        true,
        &[],
        std::slice::from_ref(&failure),
    );
    for hidden in ["db.internal", "refused", "secret", "start it"] {
        assert!(!html.contains(hidden), "{hidden} leaks:\n{html}");
    }
    assert!(html.contains("data-status=\"failed\""), "{html}");
    assert!(html.contains("data-uptime=\"99.5\""), "{html}");
}

#[test]
fn chains_and_failures_read_from_result_json() {
    let json = r#"{"status":"passed","tls":{"chain":[
        {"subject":"CN=a","issuer":"CN=ca","not_after":"2026-02-01T00:00:00Z","days_left":58,"sha256":"aa","other":1},
        {"subject":"CN=ca","issuer":"CN=ca","not_after":"2030-01-01T00:00:00Z","days_left":1488,"sha256":"cc"}]}}"#;
    let certs = chain_of(json);
    assert_eq!(certs.len(), 2);
    assert_eq!(
        (
            certs[0].subject.as_str(),
            certs[0].days_left,
            certs[0].sha256.as_str()
        ),
        ("CN=a", 58, "aa")
    );
    assert!(chain_of("{\"status\":\"failed\"}").is_empty());
    assert!(chain_of("not json").is_empty());
    let other = vec![Cert {
        sha256: "bb".to_owned(),
        ..certs[0].clone()
    }];
    let chains = group_chains(vec![
        ("us".to_owned(), certs.clone()),
        ("ap".to_owned(), other),
        ("eu".to_owned(), certs.clone()),
        ("sa".to_owned(), Vec::new()),
    ]);
    assert_eq!(chains.len(), 2);
    assert_eq!(chains[0].locations, ["ap"]);
    assert_eq!(chains[1].locations, ["eu", "us"]);
    assert_eq!(chains[1].certs, certs);

    let mut row = StoredResult {
        id: "db/eu/3".to_owned(),
        location: "eu".to_owned(),
        agent: "eu-1".to_owned(),
        tick: 3,
        status: Status::Failed,
        started_us: NOW,
        received_us: NOW,
        facts: ResultFacts {
            error: Some(ErrorKind::ReadTimeout),
            ..ResultFacts::default()
        },
        json: Some(
            r#"{"error":{"kind":"connection_refused","message":"no","hints":["a","b"]},"response_excerpt":"hi"}"#
                .to_owned(),
        ),
        in_maintenance: false,
    };
    let f = failure_of(&row);
    assert_eq!(f.kind.as_deref(), Some("connection_refused"));
    assert_eq!((f.message.as_str(), f.excerpt.as_str()), ("no", "hi"));
    assert_eq!(f.hints, ["a", "b"]);
    row.json = None;
    let f = failure_of(&row);
    assert_eq!(f.kind.as_deref(), Some("read_timeout"));
    assert!(f.message.is_empty() && f.hints.is_empty());
}

#[test]
fn a_raw_result_lasts_until_the_next_unless_a_gap_is_between() {
    let minute = 60_000_000;
    let points = [
        point("eu", NOW, 1.0, 0),
        point("eu", NOW + 20 * minute, 1.0, 1),
        point("eu", NOW + 120 * minute, 1.0, 0),
    ];
    let refs: Vec<&(i64, HistoryPoint)> = points.iter().collect();
    let marks = marks_of(&refs, None, 10_000_000, 29 * minute);
    let spans: Vec<(i64, i64)> = marks
        .iter()
        .map(|m| (m.start_us - NOW, m.end_us - NOW))
        .collect();
    assert_eq!(
        spans,
        [
            (0, 20 * minute),
            (20 * minute, 20 * minute + 10_000_000),
            (120 * minute, 120 * minute + 10_000_000)
        ]
    );
    let hourly = marks_of(&refs, Some(Step::Hour), 10_000_000, 29 * minute);
    assert!(hourly.iter().all(|m| m.end_us - m.start_us == HOUR));
    assert_eq!(hourly[1].failures, 1);
}

#[test]
fn problems_are_escaped_pages() {
    let html = problem("p", false, "Bad range", "range `<x>` is not one of 24h, 7d");
    assert!(html.contains("<h1>Bad range</h1>"));
    assert!(html.contains("range `&lt;x&gt;` is not one of 24h, 7d"));
    assert!(html.contains("<meta name=\"viewport\""));
}
