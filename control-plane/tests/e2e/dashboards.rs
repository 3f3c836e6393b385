//! Dashboards and rules against real scrapes (issue 15, item 4): the control plane, a real
//! `monitors agent` (its `--metrics-file`) and a real `monitors watch` check passing,
//! failing and TLS monitors; `promtool check metrics` finds nothing to say about any of
//! their `/metrics`; every metric `deploy/grafana/monitors.json` and
//! `deploy/prometheus/rules.yml` query is in those scrapes; `promtool check rules` and
//! `promtool test rules` pass; and the control plane's `/metrics` is gzip-compressed when
//! asked.
//!
//! These tests need `promtool` (Debian package `prometheus`): their names start with
//! `promtool_`.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use monitor_core::Bundle;
use monitor_core::prelude::*;
use monitor_testing::refusing_port;
use serde_json::Value;

use super::agents::{HelloTls, deploy, listening_service, monitors_binary, wait_for};
use super::{Server, TempDir, create_token_for, workspace};

/// The path of `program` in `PATH`; panics naming the Debian `package` that installs it
/// when it is absent, so that `cargo xtask test` can say which package a skipped suite
/// needs.
fn require(program: &str, package: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{program} is not installed: install the Debian package {package} (apt-get install {package})")
        })
}

/// Metrics Prometheus makes itself for every target, which no exporter writes.
const SYNTHETIC: &[&str] = &["up"];

/// PromQL words that are not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
];

/// The metric names an expression reads, roughly: string literals, label matchers `{...}`,
/// ranges `[...]`, grouping clauses (`by (...)`, `on (...)`, ...) and Grafana variables
/// are dropped; what remains of identifiers, less functions (followed by `(`), keywords
/// and numbers, are metric names.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Drop string literals and what sits inside braces and brackets.
    let mut flat = String::new();
    let mut chars = expr.chars().peekable();
    let mut closing: Vec<char> = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                while let Some(d) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            '{' => closing.push('}'),
            '[' => closing.push(']'),
            c if closing.last() == Some(&c) => {
                closing.pop();
                flat.push(' ');
            }
            _ if !closing.is_empty() => {}
            c => flat.push(c),
        }
    }
    // Tokens: identifiers (with Grafana's `$` variables), numbers, and the rest.
    let mut tokens: Vec<String> = Vec::new();
    let mut chars = flat.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' || c.is_ascii_digit() {
            let mut word = c.to_string();
            while let Some(&d) = chars.peek() {
                let number_sign = word.starts_with(|f: char| f.is_ascii_digit())
                    && (d == '.' || ((d == '+' || d == '-') && word.ends_with(['e', 'E'])));
                if d.is_ascii_alphanumeric() || d == '_' || d == ':' || number_sign {
                    word.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(word);
        } else if !c.is_whitespace() {
            tokens.push(c.to_string());
        }
    }
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        let word = &tokens[i];
        let next = tokens.get(i + 1).map(String::as_str);
        let grouping = matches!(
            word.as_str(),
            "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
        );
        // An aggregation written `max by (...) (...)`.
        let aggregation = matches!(next, Some("by" | "without"));
        if grouping && next == Some("(") {
            // Skip the label list.
            while i < tokens.len() && tokens[i] != ")" {
                i += 1;
            }
        } else if word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && next != Some("(")
            && !aggregation
            && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
        {
            names.insert(word.clone());
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let check = |expr: &str, expected: &[&str]| {
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(metric_names(expr), expected, "{expr}");
    };
    check("up == 0", &["up"]);
    check(
        r#"max by (monitor, location) (probe_success{monitor=~"$monitor", location=~"a,b"})"#,
        &["probe_success"],
    );
    check(
        "sum by (status) (rate(monitor_checks_total{x=\"rate(y)\"}[$__rate_interval]))",
        &["monitor_checks_total"],
    );
    check(
        "(probe_ssl_earliest_cert_expiry - time()) / 86400 < 14 and x_total >= 1e3",
        &["probe_ssl_earliest_cert_expiry", "x_total"],
    );
    check(
        "count by (project, location) (a) unless on (project, location) b > 0",
        &["a", "b"],
    );
    check(
        "increase(bogus_metric_total[15m]) > 0",
        &["bogus_metric_total"],
    );
    check(
        "max_over_time(m:recorded[1h] offset 5m) * 1.5e-3",
        &["m:recorded"],
    );
    check(
        "histogram_quantile(0.99, sum by (le) (h_bucket))",
        &["h_bucket"],
    );
    check("sum without (instance) (rate(c_total[5m]))", &["c_total"]);
}

/// Every `expr` of the dashboard, wherever it sits.
fn dashboard_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => out.push(expr.clone()),
                    _ => dashboard_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| dashboard_exprs(v, out)),
        _ => {}
    }
}

/// Every `expr:` of a rules file: a plain value, or a folded block (`>-`, `|`) of the
/// lines indented deeper.
fn rules_exprs(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim_start().strip_prefix("expr:") else {
            continue;
        };
        let value = value.trim();
        if value.starts_with('>') || value.starts_with('|') {
            let indent = line.len() - line.trim_start().len();
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            out.push(block.join(" "));
        } else {
            out.push(value.to_owned());
        }
    }
    out
}

/// The metric names of an exposition text (sample lines).
fn scraped_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The names `exprs` read that are in none of `known`, with the expression reading each.
fn unknown_names(exprs: &[String], known: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut unknown = Vec::new();
    for expr in exprs {
        for name in metric_names(expr) {
            if !known.contains(&name) && !SYNTHETIC.contains(&name.as_str()) {
                unknown.push((name, expr.clone()));
            }
        }
    }
    unknown
}

/// `promtool ARGS` with `input` on standard input: exit success and the output.
fn promtool(args: &[&str], input: &str, dir: &std::path::Path) -> (bool, String) {
    let mut child = Command::new(require("promtool", "prometheus"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start promtool");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("promtool reads its input");
    let out = child.wait_with_output().expect("promtool ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `GET http://ADDR/PATH` over HTTP/1.0 with `extra` header lines: the head (lower case)
/// and the body.
fn get(addr: &str, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\n{extra}\r\n").expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let at = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
    (head, raw[at + 4..].to_vec())
}

fn text_of(addr: &str, path: &str, extra: &str) -> String {
    let (head, body) = get(addr, path, extra);
    assert!(head.starts_with("http/1.0 200"), "{head}");
    String::from_utf8(body).expect("UTF-8 metrics")
}

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn promtool_checks_the_scrapes_and_the_dashboard_and_rules_query_only_scraped_metrics() {
    require("promtool", "prometheus");
    let tls = HelloTls::start(30);
    let plain = listening_service();
    let monitors = vec![
        TcpMonitor::new("db", "127.0.0.1", plain)
            .frequency(Frequency::S10)
            .timeouts(2_000, 2_000, 5_000),
        TcpMonitor::new("gone", "127.0.0.1", refusing_port().expect("a port"))
            .frequency(Frequency::S10)
            .timeouts(2_000, 2_000, 5_000),
        tls.monitor("web"),
    ];
    let bundle = Bundle::new(monitors);
    let (server, tokens) = Server::start(&["shop"]);
    deploy(&server, &tokens[0], &bundle);
    let agent_token = create_token_for(&server.db(), "shop", "agent");
    // Prometheus scrapes with a read token as the password of HTTP basic.
    let read_token = create_token_for(&server.db(), "shop", "read");
    let scraper = {
        use base64::Engine as _;
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("prometheus:{read_token}"));
        format!("authorization: Basic {basic}\r\n")
    };
    let dir = TempDir::new();

    // A real agent in `eu` writing its metrics file.
    let metrics_file = dir.0.join("agent.prom");
    let agent_log = dir.0.join("agent.log");
    let log_file = std::fs::File::create(&agent_log).expect("agent log");
    let _agent = Killed(
        Command::new(monitors_binary())
            .args(["agent", "--control-plane", &server.url, "--location", "eu"])
            .args(["--id", "eu-1", "--poll-wait", "1", "--buffer-dir"])
            .arg(dir.0.join("buffer"))
            .arg("--metrics-file")
            .arg(&metrics_file)
            .env("MONITORS_AGENT_TOKEN", &agent_token)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone log"))
            .stderr(log_file)
            .spawn()
            .expect("cannot start monitors agent"),
    );
    // A real `watch` of the same monitors.
    let bundle_file = server.bundle_file("watched", &bundle);
    let watch_addr = format!("127.0.0.1:{}", monitor_testing::free_port());
    let _watch = Killed(
        Command::new(monitors_binary())
            .args(["watch", "--metrics-listen", &watch_addr, "--bundle"])
            .arg(&bundle_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start monitors watch"),
    );
    let cp_addr = server.url.trim_start_matches("http://").to_owned();
    let logs = || {
        format!(
            "--- control plane\n{}\n--- agent\n{}",
            server.log(),
            std::fs::read_to_string(&agent_log).unwrap_or_default()
        )
    };

    // Every family the dashboard needs shows up once each process has checked.
    let has_all = |text: &str, names: &[&str]| names.iter().all(|n| text.contains(n));
    let mut watch_text = String::new();
    wait_for(
        Duration::from_secs(60),
        "watch's first results",
        &logs,
        || {
            watch_text = std::net::TcpStream::connect(&watch_addr)
                .ok()
                .map(|_| text_of(&watch_addr, "/metrics", ""))
                .unwrap_or_default();
            has_all(
                &watch_text,
                &[
                    "probe_success{monitor=\"db\"}",
                    "probe_success{monitor=\"gone\"}",
                    "probe_ssl_last_chain_info{monitor=\"web\"",
                    "monitor_schedule_lateness_seconds",
                ],
            )
        },
    );
    let mut cp_text = String::new();
    wait_for(
        Duration::from_secs(60),
        "the control plane's results from eu",
        &logs,
        || {
            cp_text = text_of(&cp_addr, "/metrics", &scraper);
            has_all(
                &cp_text,
                &[
                    "probe_ssl_earliest_cert_expiry{project=\"shop\",monitor=\"web\"",
                    "monitor_consecutive_failures{project=\"shop\",monitor=\"gone\"",
                    "control_plane_agents{project=\"shop\",location=\"eu\"} 1",
                ],
            )
        },
    );
    let mut agent_text = String::new();
    wait_for(
        Duration::from_secs(60),
        "the agent's metrics file",
        &logs,
        || {
            agent_text = std::fs::read_to_string(&metrics_file).unwrap_or_default();
            has_all(
                &agent_text,
                &[
                    "monitors_agent_clock_offset_seconds ",
                    "monitors_agent_results_uploaded_total ",
                ],
            ) && !agent_text.contains("monitors_agent_results_uploaded_total 0\n")
        },
    );

    // promtool lints each scrape and has nothing to say.
    let deploy_dir = workspace().join("deploy");
    for (what, text) in [
        ("watch", &watch_text),
        ("agent", &agent_text),
        ("control plane", &cp_text),
    ] {
        let (ok, said) = promtool(&["check", "metrics"], text, &deploy_dir);
        assert!(
            ok && said.trim().is_empty(),
            "promtool check metrics on {what}'s scrape: {said}\n{text}"
        );
    }

    // The dashboard and the rules query only metrics those scrapes hold.
    let known: BTreeSet<String> = [&watch_text, &agent_text, &cp_text]
        .iter()
        .flat_map(|t| scraped_names(t))
        .collect();
    let dashboard_text = std::fs::read_to_string(deploy_dir.join("grafana/monitors.json"))
        .expect("deploy/grafana/monitors.json");
    let dashboard: Value = serde_json::from_str(&dashboard_text).expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    let rules = std::fs::read_to_string(deploy_dir.join("prometheus/rules.yml"))
        .expect("deploy/prometheus/rules.yml");
    let rule_exprs = rules_exprs(&rules);
    assert!(
        exprs.len() >= 15 && rule_exprs.len() >= 6,
        "{exprs:?} {rule_exprs:?}"
    );
    for (what, exprs) in [("the dashboard", &exprs), ("the rules", &rule_exprs)] {
        let unknown = unknown_names(exprs, &known);
        assert!(
            unknown.is_empty(),
            "{what} query metrics no scrape holds: {unknown:?}\nscraped: {known:?}"
        );
    }
    // The extraction is not vacuous: a bogus name is caught.
    let bogus = vec!["sum(rate(monitors_bogus_total[5m]))".to_owned()];
    assert_eq!(unknown_names(&bogus, &known).len(), 1);
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for needed in [
        "probe_success",
        "monitor_phase_duration_seconds",
        "probe_ssl_earliest_cert_expiry",
        "monitor_schedule_lateness_seconds",
        "control_plane_agents",
        "monitors_agent_results_buffered",
    ] {
        assert!(queried.contains(needed), "the dashboard lacks {needed}");
    }
    assert_eq!(dashboard["schemaVersion"], 39);
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert_eq!(variables, ["datasource", "monitor", "location"]);

    // The control plane's /metrics gzip-compressed when asked: the plain text, decoded.
    // Results keep arriving, so compare with two plain scrapes that agree.
    let mut compared = false;
    for _ in 0..20 {
        let before = text_of(&cp_addr, "/metrics", &scraper);
        let (head, body) = get(
            &cp_addr,
            "/metrics",
            &format!("{scraper}accept-encoding: gzip\r\n"),
        );
        let after = text_of(&cp_addr, "/metrics", &scraper);
        assert!(head.contains("content-encoding: gzip"), "{head}");
        if before != after {
            continue;
        }
        let mut decoded = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut decoded)
            .expect("a gzip body");
        assert_eq!(decoded, before);
        compared = true;
        break;
    }
    assert!(compared, "the control plane's metrics never held still");
    let (head, _) = get(&cp_addr, "/metrics", &scraper);
    assert!(!head.contains("content-encoding"), "{head}");
    // Without a token, nothing: /metrics is the project's, like its status.
    let (head, body) = get(&cp_addr, "/metrics", "");
    assert!(head.starts_with("http/1.0 401"), "{head}");
    assert!(!String::from_utf8_lossy(&body).contains("probe_success"));
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let dir = workspace().join("deploy/prometheus");
    let (ok, said) = promtool(&["check", "rules", "rules.yml"], "", &dir);
    assert!(ok, "promtool check rules: {said}");
    assert!(said.contains("SUCCESS: 7 rules found"), "{said}");
    let (ok, said) = promtool(&["test", "rules", "rules.test.yml"], "", &dir);
    assert!(
        ok && said.contains("SUCCESS"),
        "promtool test rules: {said}"
    );
}
