//! The reporters of `monitors run` against results of real checks on loopback servers
//! (passing, degraded, refused, TLS): JSON round trips, JUnit and Prometheus parse with
//! the right counts, human text with and without colour, GitHub Markdown, exit codes, and
//! escaping of awkward names and labels.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use monitor_core::prelude::*;
use monitor_core::report::{Counter, Reporter, Style, exit_code, prometheus, render, summary_line};
use monitor_core::{Attempt, CertInfo, PemSource, ProbeError, Timings, TlsReport, ValidMonitor};
use monitor_testing::{Script, ScriptedServer, TestPki, TlsServer, refusing_port};
use time::OffsetDateTime;

const TLS_NAME: &str = "monitor.test";

async fn run(spec: TcpMonitor) -> CheckResult {
    let monitor: ValidMonitor = spec
        .validate()
        .unwrap_or_else(|e| panic!("test spec invalid: {e}"));
    Engine::new().check(&monitor).await
}

/// Checks four monitors for real, in this order: `ping` passes, `slow` is degraded,
/// `refused` fails (its name has a `|`), `tls` passes over direct TLS.
async fn results() -> Vec<CheckResult> {
    let ping = ScriptedServer::start(Script::new().expect("PING\r\n").send("+PONG\r\n"))
        .await
        .unwrap();
    let slow = ScriptedServer::start(
        Script::new()
            .sleep(Duration::from_millis(250))
            .send("hello\r\n"),
    )
    .await
    .unwrap();
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&[TLS_NAME], 365).unwrap();
    let tls = ScriptedServer::start_tls(
        Script::new().send("hello over tls\r\n"),
        TlsServer::direct(leaf.server_config(true).unwrap()),
    )
    .await
    .unwrap();
    let root = pki.root_pem();

    let specs = [
        TcpMonitor::new("ping", "127.0.0.1", ping.port())
            .name("Redis answers PING")
            .send("PING\\r\\n")
            .expect("+PONG"),
        TcpMonitor::new("slow", "127.0.0.1", slow.port())
            .name("Slow banner")
            .expect("hello")
            .thresholds(100, 5_000),
        TcpMonitor::new("refused", "127.0.0.1", refusing_port().unwrap())
            .name("Billing | payments"),
        TcpMonitor::new("tls", "127.0.0.1", tls.port())
            .name("TLS banner")
            .tls_direct()
            .tls_with(|t| {
                t.ca = Some(PemSource::Pem(root));
                t.server_name = Some(TLS_NAME.into());
            })
            .expect("hello over tls"),
    ];
    let mut out = Vec::new();
    for spec in specs {
        out.push(run(spec).await);
    }
    let verdicts: Vec<(Status, Option<ErrorKind>)> = out
        .iter()
        .map(|r| (r.status, r.error.as_ref().map(|e| e.kind)))
        .collect();
    assert_eq!(
        verdicts,
        [
            (Status::Passed, None),
            (Status::Degraded, Some(ErrorKind::DegradedResponseTime)),
            (Status::Failed, Some(ErrorKind::Refused)),
            (Status::Passed, None),
        ],
        "{out:#?}"
    );
    out
}

fn by_id<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results.iter().find(|r| &*r.id == id).unwrap()
}

/// A hand-built result with every awkward character in its id, name, target and error,
/// and a TLS report with a fixed expiry over IPv6.
pub(crate) fn awkward() -> CheckResult {
    let started_at = OffsetDateTime::now_utc();
    let expiry = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    let error = ProbeError {
        kind: ErrorKind::AssertionFailed,
        message: "got <b>&\"'</b>\u{1}\u{1b}[31m | and\nmore".into(),
        hints: vec![
            "first & <second>".into(),
            "printf 'a|b' | nc ::1 443".into(),
        ],
    };
    let timings = Timings {
        scheduling_delay_ms: None,
        dns_ms: None,
        connect_ms: Some(1.25),
        tls_ms: Some(2.5),
        first_byte_ms: Some(0.75),
        total_ms: 5.0,
        client_cert_wait_ms: None,
    };
    CheckResult {
        tcp: None,
        id: "we\"ird\\id\nx".into(),
        name: "a<&\"'>b\u{1}c\u{1b}d | e".into(),
        target: "[::1]:443".into(),
        status: Status::Failed,
        error: Some(error.clone()),
        timings,
        address: Some("[::1]:443".into()),
        attempts: vec![Attempt {
            status: Status::Failed,
            error: Some(error),
            timings,
            address: Some("[::1]:443".into()),
            started_at,
            location: None,
        }],
        assertions: Vec::new(),
        response_excerpt: String::new(),
        facts: Default::default(),
        tls: Some(Box::new(TlsReport {
            ocsp: None,
            policy: None,
            version: Some("TLSv1.2".into()),
            cipher: None,
            alpn: None,
            server_name: "::1".into(),
            verified: true,
            problems: Vec::new(),
            chain: vec![CertInfo {
                subject: "CN=x".into(),
                issuer: "CN=x".into(),
                sans: Vec::new(),
                serial: "01".into(),
                not_before: started_at,
                not_after: expiry,
                days_left: 42,
                sha256: String::new(),
                key_type: "EC".into(),
                key_bits: Some(256),
                signature_algorithm: "ecdsa-with-SHA256".into(),
                self_issued: true,
                subject_rfc2253: "CN=a".into(),
                issuer_rfc2253: "CN=ca".into(),
            }],
            earliest_expiry: Some(expiry),
            days_left: Some(42),
            earliest_expiry_subject: Some("CN=x".into()),
            legacy: None,
        })),
        started_at,
    }
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn json_round_trips() {
    let mut results = results().await;
    results.push(awkward());
    let text = render(Reporter::Json, &results, Style::default());
    let back: Vec<CheckResult> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, results);
    assert_eq!(
        text.trim_end(),
        serde_json::to_string_pretty(&results).unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// JUnit
// ---------------------------------------------------------------------------------------

fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name)
        .unwrap_or_else(|| panic!("<{}> has no {name}", node.tag_name().name()))
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

fn elements<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    tag: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(move |c| c.has_tag_name(tag))
}

fn properties(case: roxmltree::Node<'_, '_>) -> HashMap<String, String> {
    child(case, "properties")
        .into_iter()
        .flat_map(|p| elements(p, "property"))
        .map(|p| (attr(p, "name").to_owned(), attr(p, "value").to_owned()))
        .collect()
}

#[tokio::test]
async fn junit_has_one_testcase_per_monitor_and_the_failure() {
    let results = results().await;
    let text = render(Reporter::Junit, &results, Style::default());
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    for (name, value) in [("tests", "4"), ("failures", "1"), ("errors", "0")] {
        assert_eq!(attr(root, name), value, "testsuites {name}");
    }
    let suites: Vec<_> = elements(root, "testsuite").collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    for (name, value) in [
        ("name", "monitors"),
        ("tests", "4"),
        ("failures", "1"),
        ("errors", "0"),
        ("skipped", "0"),
    ] {
        assert_eq!(attr(suite, name), value, "testsuite {name}");
    }
    assert!(attr(suite, "time").parse::<f64>().unwrap() > 0.0);
    assert_eq!(attr(suite, "timestamp").len(), "2024-01-01T00:00:00".len());

    let cases: Vec<_> = elements(suite, "testcase").collect();
    let names: Vec<&str> = cases.iter().map(|c| attr(*c, "name")).collect();
    assert_eq!(
        names,
        [
            "ping: Redis answers PING",
            "slow: Slow banner",
            "refused: Billing | payments",
            "tls: TLS banner",
        ]
    );
    for (case, r) in cases.iter().zip(&results) {
        assert_eq!(attr(*case, "classname"), "monitors");
        let seconds: f64 = attr(*case, "time").parse().unwrap();
        assert!((seconds - r.timings.total_ms / 1000.0).abs() < 0.001);
        let props = properties(*case);
        assert_eq!(props["target"], *r.target);
        assert!(props.contains_key("total_ms"), "{props:?}");
        let failure = child(*case, "failure");
        assert_eq!(failure.is_some(), r.status == Status::Failed, "{}", r.id);
        let out = child(*case, "system-out");
        assert_eq!(out.is_some(), r.status == Status::Degraded, "{}", r.id);
    }

    let refused = by_id(&results, "refused").error.as_ref().unwrap();
    let failure = child(cases[2], "failure").unwrap();
    assert_eq!(attr(failure, "type"), "refused");
    assert_eq!(attr(failure, "message"), refused.message);
    assert_eq!(failure.text().unwrap_or(""), refused.hints.join("\n"));

    let out = child(cases[1], "system-out").unwrap().text().unwrap();
    assert!(
        out.starts_with("degraded: degraded_response_time: "),
        "{out}"
    );
    assert!(out.contains("total "), "{out}");
    assert_eq!(properties(cases[1])["status"], "degraded");
    assert_eq!(properties(cases[3])["tls_version"], "TLSv1.3");
}

#[test]
fn junit_of_nothing_is_an_empty_suite() {
    let text = render(Reporter::Junit, &[], Style::default());
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(attr(doc.root_element(), "tests"), "0");
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .count(),
        0
    );
}

// ---------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------

/// Checks every line against the exposition format strictly (prometheus-parse silently
/// skips what it cannot read): HELP and TYPE once per family, before its samples, which
/// come together; label values escaped; Go-readable numbers.
fn assert_exposition(text: &str) {
    let name = r"[a-zA-Z_:][a-zA-Z0-9_:]*";
    let label = r#"[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*""#;
    let number = r"(?:NaN|[+-]Inf|-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)";
    let help = regex::Regex::new(&format!(r"^# HELP ({name}) \S.*$")).unwrap();
    let kind = regex::Regex::new(&format!(r"^# TYPE ({name}) (counter|gauge)$")).unwrap();
    let sample = regex::Regex::new(&format!(
        r"^({name})(?:\{{{label}(?:,{label})*\}})? {number}$"
    ))
    .unwrap();
    let mut helped = HashSet::new();
    let mut typed = HashSet::new();
    let mut current: Option<String> = None;
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        if let Some(c) = help.captures(line) {
            assert!(helped.insert(c[1].to_owned()), "second HELP: {line}");
            current = None;
        } else if let Some(c) = kind.captures(line) {
            assert!(helped.contains(&c[1]), "TYPE before HELP: {line}");
            assert!(typed.insert(c[1].to_owned()), "second TYPE: {line}");
            current = Some(c[1].to_owned());
        } else if let Some(c) = sample.captures(line) {
            assert_eq!(
                Some(&c[1]),
                current.as_deref(),
                "sample outside its family: {line}"
            );
        } else {
            panic!("not exposition format: {line:?}\n{text}");
        }
    }
}

fn scrape(text: &str) -> Vec<prometheus_parse::Sample> {
    assert_exposition(text);
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(
        scrape.samples.len(),
        samples,
        "a sample line did not parse:\n{text}"
    );
    scrape.samples
}

fn value(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("unexpected {other:?}"),
    }
}

/// The value of `metric` for `monitor` with the other labels given, if there is one.
fn get(
    samples: &[prometheus_parse::Sample],
    metric: &str,
    monitor: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get("monitor") == Some(monitor))
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| value(&s.value))
        .collect();
    assert!(found.len() <= 1, "{metric} {monitor} {labels:?}: {found:?}");
    found.first().copied()
}

#[tokio::test]
async fn prometheus_has_blackbox_families_per_monitor() {
    let results = results().await;
    let text = render(Reporter::Prometheus, &results, Style::default());
    let samples = scrape(&text);
    // Durations are written rounded to the microsecond.
    let check = |metric: &str, monitor: &str, labels: &[(&str, &str)], want: Option<f64>| {
        let got = get(&samples, metric, monitor, labels);
        let close = match (got, want) {
            (Some(got), Some(want)) => (got - want).abs() < 1e-9,
            (got, want) => got == want,
        };
        assert!(
            close,
            "{metric}{{monitor={monitor},{labels:?}}}: {got:?}, want {want:?}\n{text}"
        );
    };
    for (monitor, success, status) in [
        ("ping", 1.0, "passed"),
        ("slow", 1.0, "degraded"),
        ("refused", 0.0, "failed"),
        ("tls", 1.0, "passed"),
    ] {
        check("probe_success", monitor, &[], Some(success));
        for s in ["passed", "degraded", "failed"] {
            let want = if s == status { 1.0 } else { 0.0 };
            check("monitor_status", monitor, &[("status", s)], Some(want));
        }
        let r = by_id(&results, monitor);
        check(
            "probe_duration_seconds",
            monitor,
            &[],
            Some(r.timings.total_ms / 1000.0),
        );
        check(
            "monitor_phase_duration_seconds",
            monitor,
            &[("phase", "total")],
            Some(r.timings.total_ms / 1000.0),
        );
        check(
            "monitor_phase_duration_seconds",
            monitor,
            &[("phase", "connect")],
            r.timings.connect_ms.map(|ms| ms / 1000.0),
        );
        let protocol = if r.address.is_some() { 4.0 } else { 0.0 };
        check("probe_ip_protocol", monitor, &[], Some(protocol));
        check("probe_failed_due_to_regex", monitor, &[], Some(0.0));
        assert!(get(&samples, "probe_dns_lookup_time_seconds", monitor, &[]).is_some());
    }
    check("probe_ip_protocol", "ping", &[], Some(4.0));
    check(
        "monitor_phase_duration_seconds",
        "ping",
        &[("phase", "tls")],
        None,
    );

    let tls = by_id(&results, "tls").tls.as_ref().unwrap();
    let expiry = tls.earliest_expiry.unwrap().unix_timestamp() as f64;
    check("probe_ssl_earliest_cert_expiry", "tls", &[], Some(expiry));
    check(
        "probe_tls_version_info",
        "tls",
        &[("version", "TLS 1.3")],
        Some(1.0),
    );
    let days = tls.days_left.unwrap();
    assert!((364..=365).contains(&days), "{days}");
    let left = tls.earliest_expiry.unwrap() - by_id(&results, "tls").started_at;
    let left = Some(left.whole_seconds() as f64);
    check("monitor_ssl_seconds_left", "tls", &[], left);
    check(
        "monitor_phase_duration_seconds",
        "tls",
        &[("phase", "tls")],
        by_id(&results, "tls").timings.tls_ms.map(|ms| ms / 1000.0),
    );
    for plain in ["ping", "slow", "refused"] {
        check("probe_ssl_earliest_cert_expiry", plain, &[], None);
        check("monitor_ssl_seconds_left", plain, &[], None);
    }
    assert!(!text.contains("monitor_checks_total"), "{text}");
    for family in ["probe_success", "probe_ssl_earliest_cert_expiry"] {
        assert_eq!(text.matches(&format!("# TYPE {family} gauge\n")).count(), 1);
    }
}

#[tokio::test]
async fn prometheus_counts_checks_when_counters_are_given() {
    let results = results().await;
    let latest: Vec<&CheckResult> = results.iter().collect();
    let counters = [
        Counter {
            monitor: "ping".into(),
            status: Status::Passed,
            count: 41,
        },
        Counter {
            monitor: "ping".into(),
            status: Status::Failed,
            count: 2,
        },
        Counter {
            monitor: "slow".into(),
            status: Status::Degraded,
            count: 9_007_199_254_740_993,
        },
    ];
    let text = prometheus(&latest, &counters);
    let samples = scrape(&text);
    assert_eq!(
        text.matches("# TYPE monitor_checks_total counter\n")
            .count(),
        1
    );
    // Counts above 2^53 are written exactly, not through f64.
    assert!(
        text.contains(
            "monitor_checks_total{monitor=\"slow\",status=\"degraded\"} 9007199254740993\n"
        )
    );
    for (monitor, status, want) in [
        ("ping", "passed", Some(41.0)),
        ("ping", "failed", Some(2.0)),
        ("ping", "degraded", None),
        ("refused", "failed", None),
    ] {
        let got = get(
            &samples,
            "monitor_checks_total",
            monitor,
            &[("status", status)],
        );
        assert_eq!(got, want, "{monitor} {status}");
    }
    let counter = samples
        .iter()
        .find(|s| s.metric == "monitor_checks_total")
        .unwrap();
    assert!(matches!(counter.value, prometheus_parse::Value::Counter(_)));
    assert_eq!(get(&samples, "probe_success", "refused", &[]), Some(0.0));
}

#[test]
fn prometheus_keeps_the_last_result_per_monitor() {
    let mut first = awkward();
    first.id = "same".into();
    let mut last = first.clone();
    last.status = Status::Passed;
    last.error = None;
    let text = prometheus(&[&first, &last], &[]);
    let samples = scrape(&text);
    assert_eq!(get(&samples, "probe_success", "same", &[]), Some(1.0));
}

#[test]
fn prometheus_of_nothing_is_empty() {
    assert_eq!(prometheus(&[], &[]), "");
}

// ---------------------------------------------------------------------------------------
// Human
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn human_has_a_line_per_monitor_and_errors_beneath() {
    let results = results().await;
    let text = render(Reporter::Human, &results, Style { color: false });
    assert!(!text.contains('\x1b'), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let detail: usize = results
        .iter()
        .filter(|r| r.status != Status::Passed)
        .map(|r| 1 + r.error.as_ref().map_or(0, |e| e.hints.len()))
        .sum();
    // Monitors, their error and hint lines, a blank line, the summary.
    assert_eq!(lines.len(), results.len() + detail + 2, "{text}");
    assert_eq!(lines[lines.len() - 2], "");
    assert_eq!(lines[lines.len() - 1], summary_line(&results));

    let heads: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with(' ') && !l.is_empty())
        .collect();
    assert_eq!(heads.len(), results.len() + 1, "{text}");
    for (head, (symbol, r)) in heads.iter().zip(
        ["✔ passed", "▲ degraded", "✖ failed", "✔ passed"]
            .iter()
            .zip(&results),
    ) {
        assert!(head.starts_with(symbol), "{head}");
        assert!(head.contains(&*r.name), "{head}");
        assert!(head.contains(&*r.target), "{head}");
        assert!(
            head.contains(&format!("total {:.1} ms", r.timings.total_ms)),
            "{head}"
        );
    }
    assert!(
        heads[0].contains("  dns ") && heads[0].contains("  first byte "),
        "{}",
        heads[0]
    );
    assert!(!heads[0].contains("TLS"), "{}", heads[0]);
    assert!(!heads[2].contains("first byte"), "{}", heads[2]);
    let days = results[3].tls.as_ref().unwrap().days_left.unwrap();
    assert!(
        heads[3].contains("  tls ") && heads[3].contains(&format!("TLSv1.3, cert {days} days")),
        "{}",
        heads[3]
    );

    let refused = results[2].error.as_ref().unwrap();
    let at = lines.iter().position(|l| *l == heads[2]).unwrap();
    assert_eq!(
        lines[at + 1].trim_start(),
        format!("refused: {}", refused.message)
    );
    for (i, hint) in refused.hints.iter().enumerate() {
        assert_eq!(lines[at + 2 + i].trim_start(), format!("hint: {hint}"));
    }
    let slow = lines.iter().position(|l| *l == heads[1]).unwrap();
    assert!(
        lines[slow + 1]
            .trim_start()
            .starts_with("degraded_response_time: ")
    );

    let coloured = render(Reporter::Human, &results, Style { color: true });
    for code in ["\x1b[1;32m", "\x1b[1;33m", "\x1b[1;31m", "\x1b[0m"] {
        assert!(coloured.contains(code), "{code:?} missing:\n{coloured}");
    }
    assert_eq!(coloured.lines().count(), lines.len());
}

#[test]
fn human_of_nothing_is_the_summary() {
    let text = render(Reporter::Human, &[], Style { color: false });
    assert_eq!(
        text,
        "0 monitors: 0 passed, 0 degraded, 0 failed in 0.00 s\n"
    );
}

// ---------------------------------------------------------------------------------------
// GitHub
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn github_has_a_table_row_per_monitor_and_details_for_problems() {
    let results = results().await;
    let text = render(Reporter::Github, &results, Style::default());
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("## ❌ 4 monitors: 2 passed, 1 degraded, 1 failed in "),
        "{}",
        lines[0]
    );
    let header = lines
        .iter()
        .position(|l| *l == "| Status | Monitor | Target | Total (ms) | Error |")
        .unwrap_or_else(|| panic!("no table header:\n{text}"));
    assert_eq!(lines[header + 1], "| --- | --- | --- | ---: | --- |");
    let rows = &lines[header + 2..header + 2 + results.len()];
    for (row, r) in rows.iter().zip(&results) {
        assert!(row.starts_with("| ") && row.ends_with(" |"), "{row}");
        // Five cells: six unescaped pipes.
        assert_eq!(row.replace("\\|", "").matches('|').count(), 6, "{row}");
        assert!(
            row.contains(&format!("| {:.1} |", r.timings.total_ms)),
            "{row}"
        );
    }
    assert!(
        rows[0].starts_with("| ✅ passed | Redis answers PING |"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("| ⚠️ degraded |") && rows[1].ends_with("| degraded_response_time |")
    );
    assert!(
        rows[2].contains("| Billing \\| payments |") && rows[2].ends_with("| refused |"),
        "{}",
        rows[2]
    );
    assert_eq!(lines.get(header + 2 + results.len()), Some(&""));

    assert_eq!(text.matches("<details>").count(), 2, "{text}");
    assert_eq!(text.matches("</details>").count(), 2, "{text}");
    let refused = results[2].error.as_ref().unwrap();
    assert!(
        text.contains("<summary>❌ <b>Billing | payments</b> (refused) failed: refused</summary>"),
        "{text}"
    );
    assert!(text.contains(&refused.message), "{text}");
    for hint in &refused.hints {
        assert!(text.contains(&format!("hint: {hint}\n")), "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Exit code and summary
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn exit_code_and_summary_follow_the_statuses() {
    let results = results().await;
    let pick = |ids: &[&str]| -> Vec<CheckResult> {
        ids.iter().map(|id| by_id(&results, id).clone()).collect()
    };
    let check = |ids: &[&str], fail_on_degraded: bool, want: u8| {
        assert_eq!(
            exit_code(&pick(ids), fail_on_degraded),
            want,
            "{ids:?} {fail_on_degraded}"
        );
    };
    check(&[], false, 0);
    check(&[], true, 0);
    check(&["ping", "tls"], false, 0);
    check(&["ping", "tls"], true, 0);
    check(&["ping", "slow"], false, 0);
    check(&["ping", "slow"], true, 1);
    check(&["ping", "refused"], false, 1);
    check(&["refused"], true, 1);
    check(&["ping", "slow", "refused", "tls"], false, 1);

    let line = summary_line(&results);
    let (counts, time) = line.split_once(" in ").unwrap();
    assert_eq!(counts, "4 monitors: 2 passed, 1 degraded, 1 failed");
    let seconds: f64 = time.strip_suffix(" s").unwrap().parse().unwrap();
    // The checks ran one after another; the slow one alone took a quarter second.
    assert!((0.25..30.0).contains(&seconds), "{line}");
    assert!(
        summary_line(&pick(&["ping"])).starts_with("1 monitor: 1 passed, 0 degraded, 0 failed in ")
    );
}

// ---------------------------------------------------------------------------------------
// Escaping
// ---------------------------------------------------------------------------------------

/// Undoes the exposition format's label escapes.
fn unescape_label(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[test]
fn awkward_values_are_escaped_in_every_format() {
    let r = awkward();
    let results = [r.clone()];

    // JUnit: parses, and the forbidden control characters became U+FFFD.
    let text = render(Reporter::Junit, &results, Style::default());
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase"))
        .unwrap();
    assert_eq!(
        attr(case, "name"),
        "we\"ird\\id\nx: a<&\"'>b\u{fffd}c\u{fffd}d | e"
    );
    let failure = child(case, "failure").unwrap();
    assert_eq!(attr(failure, "type"), "assertion_failed");
    assert_eq!(
        attr(failure, "message"),
        "got <b>&\"'</b>\u{fffd}\u{fffd}[31m | and\nmore"
    );
    assert_eq!(
        failure.text().unwrap(),
        "first & <second>\nprintf 'a|b' | nc ::1 443"
    );
    assert_eq!(properties(case)["tls_version"], "TLSv1.2");

    // Prometheus: strictly valid, the id survives as the monitor label.
    let text = prometheus(
        &[&r],
        &[Counter {
            monitor: r.id.to_string(),
            status: Status::Failed,
            count: 3,
        }],
    );
    assert!(
        text.contains(r#"probe_success{monitor="we\"ird\\id\nx"} 0"#),
        "{text}"
    );
    let samples = scrape(&text);
    for s in &samples {
        assert_eq!(
            unescape_label(s.labels.get("monitor").unwrap()),
            *r.id,
            "{s:?}"
        );
    }
    let id = "we\\\"ird\\\\id\\nx";
    assert_eq!(get(&samples, "probe_success", id, &[]), Some(0.0));
    assert_eq!(
        get(&samples, "probe_failed_due_to_regex", id, &[]),
        Some(1.0)
    );
    assert_eq!(get(&samples, "probe_ip_protocol", id, &[]), Some(6.0));
    assert_eq!(
        get(&samples, "probe_dns_lookup_time_seconds", id, &[]),
        Some(0.0)
    );
    assert_eq!(
        get(&samples, "probe_ssl_earliest_cert_expiry", id, &[]),
        Some(1_900_000_000.0)
    );
    assert_eq!(
        get(
            &samples,
            "probe_tls_version_info",
            id,
            &[("version", "TLS 1.2")]
        ),
        Some(1.0)
    );
    let left = r.tls.as_ref().unwrap().earliest_expiry.unwrap() - r.started_at;
    assert_eq!(
        get(&samples, "monitor_ssl_seconds_left", id, &[]),
        Some(left.whole_seconds() as f64)
    );
    assert_eq!(
        get(
            &samples,
            "monitor_phase_duration_seconds",
            id,
            &[("phase", "connect")]
        ),
        Some(0.00125)
    );
    assert_eq!(
        get(
            &samples,
            "monitor_phase_duration_seconds",
            id,
            &[("phase", "dns")]
        ),
        None
    );
    assert_eq!(
        get(
            &samples,
            "monitor_checks_total",
            id,
            &[("status", "failed")]
        ),
        Some(3.0)
    );

    // Human: no raw control character at all, even the escape in the name.
    let text = render(Reporter::Human, &results, Style { color: false });
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("a<&\"'>b\\u{1}c\\u{1b}d | e"), "{text}");
    assert!(text.contains("TLSv1.2, cert 42 days"), "{text}");
    assert!(
        text.contains("assertion_failed: got <b>&\"'</b>\\u{1}\\u{1b}[31m | and\\nmore"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1 + 1 + 2 + 2);

    // GitHub: the table row keeps its five cells; the details are HTML-escaped and fenced.
    let text = render(Reporter::Github, &results, Style::default());
    let row = text
        .lines()
        .find(|l| l.starts_with("| ❌ failed |"))
        .unwrap();
    assert_eq!(
        row,
        "| ❌ failed | a\\<\\&\"'\\>b\\u{1}c\\u{1b}d \\| e | \\[::1\\]:443 | 5.0 | assertion_failed |"
    );
    assert!(text.contains("<summary>❌ <b>a&lt;&amp;&quot;'&gt;b\\u{1}c\\u{1b}d | e</b> (we&quot;ird\\id\\nx) failed: assertion_failed</summary>"), "{text}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
}

#[test]
fn github_fences_survive_backticks() {
    let mut r = awkward();
    if let Some(e) = r.error.as_mut() {
        e.message = "a ```` fence".into();
    }
    let text = render(Reporter::Github, &[r], Style::default());
    assert!(text.contains("`````text\na ```` fence"), "{text}");
}

#[test]
fn reporter_names_are_the_cli_values() {
    use clap::ValueEnum;
    let names: Vec<String> = Reporter::value_variants()
        .iter()
        .filter_map(|r| r.to_possible_value())
        .map(|v| v.get_name().to_owned())
        .collect();
    assert_eq!(names, ["human", "json", "junit", "github", "prometheus"]);
}

#[test]
fn days_left_in_words() {
    let check = |days: i64, expired: bool, expected: &str| {
        let mut r = awkward();
        let tls = r.tls.as_mut().unwrap();
        tls.days_left = Some(days);
        tls.problems = if expired {
            vec![ErrorKind::CertificateExpired]
        } else {
            Vec::new()
        };
        let text = render(Reporter::Human, &[r], Style { color: false });
        assert!(text.contains(&format!("cert {expected}")), "{text}");
    };
    check(42, false, "42 days");
    check(1, false, "1 day\n");
    check(0, false, "0 days");
    // Expired less than a day ago: 0 days, said as today.
    check(0, true, "expired today");
    check(-1, true, "expired 1 day ago");
    check(-5, true, "expired 5 days ago");
}
