//! The command-line conventions of issue 15 (item 3) on the built binary: `--version`
//! names the binary it was run as and its git revision; `watch` and `agent` take every
//! option from a `MONITORS_*` variable too (shown in `--help`, none in the secrets'
//! namespace); a filter matching no monitor exits 2 unless `--allow-empty`; and the
//! `/metrics` of `watch` and of an agent answer from the first scrape with the process's
//! families.

use std::process::{Child, Stdio};
use std::time::Instant;

use monitor_core::runner::watch::start_offset;
use prometheus_parse::{Sample, Scrape, Value};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_names_the_binary_it_was_run_as_and_its_revision() {
    let check = |binary: &std::path::Path, name: &str| {
        let out = Command::new(binary).arg("--version").output().unwrap();
        assert!(out.status.success());
        let text = stdout(&out);
        let revision = text
            .strip_prefix(&format!("{name} {} (git ", env!("CARGO_PKG_VERSION")))
            .and_then(|rest| rest.strip_suffix(")\n"))
            .unwrap_or_else(|| panic!("{text:?}"));
        assert!(
            revision == "unknown"
                || revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
            "{text:?}"
        );
    };
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_monitors"));
    check(binary, "monitors");
    // Installed under another name, it says that name.
    let link = std::env::temp_dir().join(format!("shop-monitors-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(binary, &link).unwrap();
    check(&link, &link.file_name().unwrap().to_string_lossy());
    let _ = std::fs::remove_file(&link);
}

/// The `[env: NAME=]` of each option in a command's `--help`, the environment cleared.
fn env_names(command: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_monitors"))
        .args([command, "--help"])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success());
    stdout(&out)
        .split("[env: ")
        .skip(1)
        .map(|rest| rest.split_once("=]").unwrap().0.to_owned())
        .collect()
}

#[test]
fn watch_and_agent_options_name_their_variables_outside_the_secrets() {
    let check = |command: &str, expected: &[&str]| {
        let names = env_names(command);
        assert_eq!(names, expected, "{command}");
        for name in &names {
            assert!(!name.starts_with("MONITORS_SECRET_"), "{name}");
            assert_ne!(name, "MONITORS_AGENT_TOKEN");
        }
    };
    check(
        "watch",
        &[
            "MONITORS_GREP",
            "MONITORS_LOG_FORMAT",
            "MONITORS_TAG",
            "MONITORS_LOCATION",
            "MONITORS_ALLOW_EMPTY",
            "MONITORS_BUNDLE",
            "MONITORS_SECRETS_ENV_PREFIX",
            "MONITORS_SECRETS_DIR",
            "MONITORS_MEMORY_BUDGET",
            "MONITORS_METRICS_LISTEN",
            "MONITORS_CONCURRENCY",
            "MONITORS_JSON",
        ],
    );
    check(
        "agent",
        &[
            "MONITORS_CONTROL_PLANE",
            "MONITORS_LOG_FORMAT",
            "MONITORS_LOCATION",
            "MONITORS_ID",
            "MONITORS_BUFFER_DIR",
            "MONITORS_BUFFER_MAX",
            "MONITORS_BATCH_MAX",
            "MONITORS_POLL_WAIT",
            "MONITORS_CONCURRENCY",
            "MONITORS_SECRETS_ENV_PREFIX",
            "MONITORS_SECRETS_DIR",
            "MONITORS_MEMORY_BUDGET",
            "MONITORS_METRICS_FILE",
            "MONITORS_METRICS_LISTEN",
            "MONITORS_AGENT_TOKEN_FILE",
        ],
    );
    // `run` is not long-running: its flags take no variable.
    assert_eq!(env_names("run"), ["MONITORS_LOG_FORMAT"]);
}

/// A command line: its arguments and variables, its exit code, what its stderr says and
/// what its stdout is (blanks removed), when that is checked.
type Case<'a> = (
    Vec<&'a str>,
    Vec<(&'a str, String)>,
    i32,
    String,
    Option<&'a str>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_matching_no_monitor_exits_2_unless_allowed() {
    let f = fixture().await;
    let bundle = f.bundle.path();
    let none = |n: usize, filter: &str| {
        format!("error: no monitor matches {filter} ({n} monitors; --allow-empty to accept none)")
    };
    let cases: Vec<Case> = vec![
        (
            vec!["list", "--tag", "nope"],
            vec![],
            2,
            none(16, "--tag nope"),
            None,
        ),
        (
            vec!["list", "--tag", "nope", "--allow-empty", "--json"],
            vec![],
            0,
            String::new(),
            Some(""),
        ),
        (
            vec!["export", "--grep", "^nothing$", "--location", "mars"],
            vec![],
            2,
            none(16, "--grep ^nothing$ --location mars"),
            None,
        ),
        (
            vec!["export", "--grep", "^nothing$", "--allow-empty"],
            vec![],
            0,
            String::new(),
            Some(r#"{"schema_version":1,"monitors":[]}"#),
        ),
        (
            vec!["run", "--bundle", bundle, "-r", "json", "--tag", "cache,db"],
            vec![],
            2,
            none(3, "--tag cache,db"),
            None,
        ),
        (
            vec![
                "run",
                "--bundle",
                bundle,
                "-r",
                "json",
                "--tag",
                "x",
                "--allow-empty",
            ],
            vec![],
            0,
            String::new(),
            Some("[]"),
        ),
        (
            vec!["watch", "--bundle", bundle, "--grep", "^nothing$"],
            vec![],
            2,
            none(3, "--grep ^nothing$"),
            None,
        ),
        // From the environment too.
        (
            vec!["watch"],
            vec![
                ("MONITORS_BUNDLE", bundle.to_owned()),
                ("MONITORS_TAG", "nope".to_owned()),
            ],
            2,
            none(3, "--tag nope"),
            None,
        ),
    ];
    for (args, env, code, err, out) in cases {
        let o = monitors_env(&args, &env).await;
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&err), "{args:?}: {}", stderr(&o));
        if let Some(out) = out {
            let got: String = stdout(&o).split_whitespace().collect();
            assert_eq!(got, out, "{args:?}");
        }
    }
}

/// `GET /metrics`, retried until the server listens (30 s at most); the samples.
async fn metrics_of(addr: &str) -> Vec<Sample> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            let text = scrape(addr).await;
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
            return Scrape::parse(body.lines().map(|l| Ok(l.to_owned())))
                .unwrap()
                .samples;
        }
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the only sample named `name`.
fn value(samples: &[Sample], name: &str) -> f64 {
    let found: Vec<&Sample> = samples.iter().filter(|s| s.metric == name).collect();
    assert_eq!(found.len(), 1, "{name}: {found:?}");
    match found[0].value {
        Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}

/// Checks the families every `/metrics` of the process starts with: `loaded` monitors,
/// `due` checks per second.
fn check_process_families(samples: &[Sample], loaded: f64, due: f64) {
    assert_eq!(value(samples, "monitors_build_info"), 1.0);
    let info = samples
        .iter()
        .find(|s| s.metric == "monitors_build_info")
        .unwrap();
    assert_eq!(info.labels.get("binary"), Some("monitors"));
    assert_eq!(info.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert!(info.labels.get("revision").is_some(), "{info:?}");
    assert_eq!(value(samples, "monitors_monitors_loaded"), loaded);
    let got = value(samples, "monitors_checks_due_per_second");
    assert!((got - due).abs() < 1e-9, "{got} checks due per second");
    let summary = samples
        .iter()
        .find(|s| s.metric == "monitor_schedule_lateness_seconds")
        .unwrap_or_else(|| panic!("the lateness summary: {samples:#?}"));
    assert!(
        matches!(summary.value, Value::Summary(_)),
        "{:?}",
        summary.value
    );
}

/// An id whose start offset in `interval` is at least `at_least`.
fn id_starting_after(prefix: &str, interval: Duration, at_least: Duration) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| start_offset(id, interval) >= at_least)
        .unwrap()
}

/// Stops a child with SIGTERM; its output once it exited.
async fn stop(child: Child) -> Output {
    terminate(child.id());
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_metrics_answer_at_once_with_options_from_the_environment() {
    let refused = refusing_port().unwrap();
    // A 5-minute monitor first due in 2 minutes or later, and a 10-second one first due
    // in 3 to 10 seconds; neither checked when `watch` starts.
    let slow_id = id_starting_after("hourly", Duration::from_secs(300), Duration::from_secs(120));
    let fast_id = id_starting_after("fast", Duration::from_secs(10), Duration::from_secs(3));
    let mut slow = TcpMonitor::new(&*slow_id, "127.0.0.1", refused).tag("env");
    slow.frequency = Frequency::M5;
    let mut fast = TcpMonitor::new(&*fast_id, "127.0.0.1", refused).tag("env");
    fast.frequency = Frequency::S10;
    let other = TcpMonitor::new("filtered-out", "127.0.0.1", refused);
    let bundle = TempFile::new("env.json", &Bundle::new(vec![slow, fast, other]).to_json());
    let addr = format!("127.0.0.1:{}", refusing_port().unwrap());
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_monitors"))
        .arg("watch")
        .env("MONITORS_BUNDLE", bundle.path())
        .env("MONITORS_TAG", "env")
        .env("MONITORS_METRICS_LISTEN", &addr)
        .env("MONITORS_CONCURRENCY", "2")
        .env("MONITORS_JSON", "yes")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = metrics_of(&addr).await;
    // Two monitors loaded (MONITORS_TAG), 1/300 + 1/10 checks due per second.
    check_process_families(&first, 2.0, 1.0 / 300.0 + 1.0 / 10.0);
    if started.elapsed() < Duration::from_secs(3) {
        assert!(
            first.iter().all(|s| s.metric.starts_with("monitors_")
                || s.metric.starts_with("monitor_schedule_lateness")),
            "no result family before a check: {first:?}"
        );
        assert_eq!(
            value(&first, "monitor_schedule_lateness_seconds_count"),
            0.0
        );
    }
    // The fast monitor's families appear after its check, the slow one's not before its own.
    let deadline = Instant::now() + Duration::from_secs(30);
    let later = loop {
        let samples = metrics_of(&addr).await;
        if samples.iter().any(|s| s.metric == "probe_success") {
            break samples;
        }
        assert!(
            Instant::now() < deadline,
            "no check within 30 s: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let checked: Vec<&str> = later
        .iter()
        .filter(|s| s.metric == "probe_success")
        .filter_map(|s| s.labels.get("monitor"))
        .collect();
    if started.elapsed() < Duration::from_secs(120) {
        assert_eq!(checked, [fast_id.as_str()]);
    }
    check_process_families(&later, 2.0, 1.0 / 300.0 + 1.0 / 10.0);
    assert!(value(&later, "monitor_schedule_lateness_seconds_count") >= 1.0);
    let out = stop(child).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // MONITORS_JSON: results as JSON lines.
    let first_line = stdout(&out).lines().next().unwrap_or_default().to_owned();
    let result: CheckResult =
        serde_json::from_str(&first_line).unwrap_or_else(|e| panic!("{e}: {first_line:?}"));
    assert_eq!(*result.id, *fast_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_metrics_answer_before_any_assignment() {
    let buffer = std::env::temp_dir().join(format!("monitors-cli-agent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&buffer);
    let addr = format!("127.0.0.1:{}", refusing_port().unwrap());
    let control_plane = format!("http://127.0.0.1:{}", refusing_port().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_monitors"))
        .arg("agent")
        .env("MONITORS_CONTROL_PLANE", &control_plane)
        .env("MONITORS_LOCATION", "here")
        .env("MONITORS_AGENT_TOKEN", "a-token")
        .env("MONITORS_BUFFER_DIR", &buffer)
        .env("MONITORS_METRICS_LISTEN", &addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The control plane is unreachable: no assignment ever comes.
    let samples = metrics_of(&addr).await;
    check_process_families(&samples, 0.0, 0.0);
    assert_eq!(
        value(&samples, "monitor_schedule_lateness_seconds_count"),
        0.0
    );
    for counter in [
        "monitors_agent_results_uploaded_total",
        "monitors_agent_results_rejected_total",
        "monitors_agent_results_dropped_total",
        "monitors_agent_results_lost_total",
        "monitors_agent_results_buffered",
    ] {
        assert_eq!(value(&samples, counter), 0.0, "{counter}");
    }
    let out = stop(child).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("serving metrics at http://{addr}/metrics")),
        "{}",
        stderr(&out)
    );
    // The buffer dir came from MONITORS_BUFFER_DIR.
    assert!(buffer.join("lock").exists());
    let _ = std::fs::remove_dir_all(&buffer);
}
