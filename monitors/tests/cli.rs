//! The built `monitors` binary against loopback servers: every subcommand, filter and
//! reporter, the exit codes, `--bundle`, and `watch` with `/metrics` and SIGTERM; the
//! command-line conventions (version, variables, empty filters, `/metrics` at once) in
//! [`conventions`].

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use monitor_core::Bundle;
use monitor_core::prelude::*;
use monitor_testing::{Script, ScriptedServer, refusing_port};

#[path = "cli/conventions.rs"]
mod conventions;

/// A temporary file removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "monitors-cli-{}-{name}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the binary with `args` off the async runtime, so the test's servers keep serving.
async fn monitors(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_monitors"))
            .args(&args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Loopback services and a bundle of monitors of them: one passes (tags cache,prod), one
/// is degraded (tags cache), one fails (tags db,prod, location eu-west-1).
struct Fixture {
    _servers: Vec<ScriptedServer>,
    bundle: TempFile,
}

async fn fixture() -> Fixture {
    let pong = ScriptedServer::start(Script::new().expect("PING\r\n").send("+PONG\r\n"))
        .await
        .unwrap();
    let slow = ScriptedServer::start(
        Script::new()
            .sleep(Duration::from_millis(150))
            .send("hi\r\n"),
    )
    .await
    .unwrap();
    let refused = refusing_port().unwrap();
    let mut ok = TcpMonitor::new("cache-ping", "127.0.0.1", pong.port())
        .name("Cache answers PING")
        .tag("cache")
        .tag("prod")
        .send("PING\r\n")
        .expect("+PONG");
    ok.frequency = Frequency::S10;
    let mut slow_m = TcpMonitor::new("cache-slow", "127.0.0.1", slow.port())
        .name("Slow banner")
        .tag("cache")
        .expect("hi")
        .thresholds(100, 3000);
    slow_m.frequency = Frequency::S10;
    let mut down = TcpMonitor::new("db-down", "127.0.0.1", refused)
        .name("Database that is down")
        .tag("db")
        .tag("prod");
    down.locations = vec!["eu-west-1".into()];
    down.frequency = Frequency::S10;
    let bundle = Bundle::new(vec![ok, slow_m, down]);
    Fixture {
        _servers: vec![pong, slow],
        bundle: TempFile::new("bundle.json", &bundle.to_json()),
    }
}

fn results(o: &Output) -> Vec<CheckResult> {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn ids_and_status(rs: &[CheckResult]) -> Vec<(String, Status)> {
    rs.iter().map(|r| (r.id.to_string(), r.status)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_bundle_json_and_exit_codes() {
    let f = fixture().await;
    let all = monitors(&["run", "--bundle", f.bundle.path(), "--reporter", "json"]).await;
    assert_eq!(all.status.code(), Some(1), "{}", stderr(&all));
    assert_eq!(
        ids_and_status(&results(&all)),
        [
            ("cache-ping".to_owned(), Status::Passed),
            ("cache-slow".to_owned(), Status::Degraded),
            ("db-down".to_owned(), Status::Failed),
        ]
    );
    let cache = monitors(&[
        "run",
        "--bundle",
        f.bundle.path(),
        "-r",
        "json",
        "--tag",
        "cache",
    ])
    .await;
    assert_eq!(cache.status.code(), Some(0), "degraded is not a failure");
    let strict = monitors(&[
        "run",
        "--bundle",
        f.bundle.path(),
        "-r",
        "json",
        "--tag",
        "cache",
        "--fail-on-degraded",
    ])
    .await;
    assert_eq!(strict.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_monitors() {
    let f = fixture().await;
    let check = |args: &'static [&'static str], expected: &'static [&'static str]| {
        let bundle = f.bundle.path().to_owned();
        async move {
            let mut full = vec!["run", "--bundle", &bundle, "-r", "json"];
            full.extend_from_slice(args);
            let o = monitors(&full).await;
            let ids: Vec<String> = results(&o).into_iter().map(|r| r.id.to_string()).collect();
            assert_eq!(ids, expected, "{args:?}");
        }
    };
    check(&["--grep", "^cache-"], &["cache-ping", "cache-slow"]).await;
    check(&["--grep", "Database"], &["db-down"]).await;
    // AND within one flag, OR across flags.
    check(&["--tag", "cache,prod"], &["cache-ping"]).await;
    check(
        &["--tag", "cache,prod", "--tag", "db"],
        &["cache-ping", "db-down"],
    )
    .await;
    // Monitors without locations run everywhere.
    check(
        &["--location", "eu-west-1"],
        &["cache-ping", "cache-slow", "db-down"],
    )
    .await;
    check(&["--location", "us-east-1"], &["cache-ping", "cache-slow"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reporter_at_once() {
    let f = fixture().await;
    let junit = TempFile::new("junit.xml", "");
    let prom = TempFile::new("metrics.prom", "");
    let github = TempFile::new("summary.md", "");
    let junit_arg = format!("junit={}", junit.path());
    let prom_arg = format!("prometheus={}", prom.path());
    let o = monitors(&[
        "run",
        "--bundle",
        f.bundle.path(),
        "-r",
        "human",
        "-r",
        &junit_arg,
        "-r",
        &prom_arg,
        "-r",
        "github",
        "--output",
        github.path(),
    ])
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let human = stdout(&o);
    assert!(!human.contains('\u{1b}'), "NO_COLOR is respected");
    assert!(
        human.contains("Cache answers PING") && human.contains("refused"),
        "{human}"
    );
    assert!(human.contains("ss -tlnp"), "hints under failures: {human}");

    let xml = std::fs::read_to_string(&junit.0).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].attribute("type"), Some("refused"));

    let text = std::fs::read_to_string(&prom.0).unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let success: Vec<(String, f64)> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "probe_success")
        .map(|s| {
            let v = match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            };
            (s.labels.get("monitor").unwrap_or_default().to_owned(), v)
        })
        .collect();
    assert_eq!(
        success,
        [
            ("cache-ping".to_owned(), 1.0),
            ("cache-slow".to_owned(), 1.0),
            ("db-down".to_owned(), 0.0)
        ]
    );

    let md = std::fs::read_to_string(&github.0).unwrap();
    assert!(
        md.contains("| ") && md.contains("Database that is down"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_renders_results_made_elsewhere_as_run_does() {
    let f = fixture().await;
    let run = monitors(&["run", "--bundle", f.bundle.path(), "-r", "json"]).await;
    let array = TempFile::new("results.json", &stdout(&run));
    let lines: Vec<String> = results(&run)
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    let jsonl = TempFile::new("results.jsonl", &(lines.join("\n") + "\n"));
    let junit = TempFile::new("report-junit.xml", "");
    for input in [&array, &jsonl] {
        let junit_arg = format!("junit={}", junit.path());
        let o = monitors(&[
            "report",
            "--input",
            input.path(),
            "-r",
            "human",
            "-r",
            &junit_arg,
        ])
        .await;
        assert_eq!(
            o.status.code(),
            Some(1),
            "a failed result exits 1: {}",
            stderr(&o)
        );
        let human = stdout(&o);
        assert!(
            human.contains("Database that is down") && human.contains("refused"),
            "{human}"
        );
        let xml = std::fs::read_to_string(&junit.0).unwrap();
        assert_eq!(xml.matches("<testcase").count(), 3, "{xml}");
        let o = monitors(&["report", "--input", input.path(), "-r", "json"]).await;
        assert_eq!(ids_and_status(&results(&o)), ids_and_status(&results(&run)));
    }
    let cache: Vec<&String> = lines.iter().take(2).collect();
    let passing = TempFile::new(
        "passing.jsonl",
        &cache.iter().map(|l| format!("{l}\n")).collect::<String>(),
    );
    let o = monitors(&["report", "--input", passing.path(), "-r", "json"]).await;
    assert_eq!(o.status.code(), Some(0), "degraded is not a failure");
    let o = monitors(&[
        "report",
        "--input",
        passing.path(),
        "-r",
        "json",
        "--fail-on-degraded",
    ])
    .await;
    assert_eq!(o.status.code(), Some(1));
    let bad = TempFile::new(
        "bad-results.jsonl",
        &format!("{}\n{{\"id\": 1}}\n", lines[0]),
    );
    let o = monitors(&["report", "--input", bad.path()]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not results: line 2"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_exits_2() {
    let bad = TempFile::new(
        "bad.json",
        r#"{"schema_version":1,"monitors":[{"schema_version":1,"id":"x","name":"x","target":{"host":"h","port":0}}]}"#,
    );
    let o = monitors(&["run", "--bundle", bad.path()]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("monitors[0].target.port"),
        "{}",
        stderr(&o)
    );
    let o = monitors(&["run", "--bundle", "/nonexistent/bundle.json"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read the bundle"),
        "{}",
        stderr(&o)
    );
    let o = monitors(&["run", "--reporter", "xml"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown reporter `xml`"),
        "{}",
        stderr(&o)
    );
    let o = monitors(&["frobnicate"]).await;
    assert_eq!(o.status.code(), Some(2));
    let o = monitors(&["run", "--grep", "("]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--grep"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_given_to_the_command_line_are_read_up_to_a_bound() {
    // Issue 14, finding 8: `--bundle /dev/zero` read until memory ran out.
    for command in ["run", "watch"] {
        let o = monitors(&[command, "--bundle", "/dev/zero"]).await;
        assert_eq!(o.status.code(), Some(2), "{command}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("/dev/zero: larger than 67108864 bytes"),
            "{command}: {}",
            stderr(&o)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_hands_out_secrets_and_memory_as_its_flags_say() {
    let server = ScriptedServer::start(Script::new()).await.unwrap();
    let bundle = Bundle::new(vec![
        TcpMonitor::new("redis", "127.0.0.1", server.port()).recipe(Recipe::redis_auth("HOME")),
        TcpMonitor::new("big", "127.0.0.1", server.port()).max_response_bytes(4 << 20),
    ]);
    let bundle = TempFile::new("secrets.json", &bundle.to_json());
    // The error of each monitor (redis, big): kind and a part of the message.
    type Expected = [(&'static str, &'static str); 2];
    let cases: [(&[&str], Expected); 2] = [
        (
            &["--secret-env-prefix", "APP_", "--memory-budget", "1MiB"],
            [
                ("config", "recipe.password_env: `HOME` is not a secret"),
                ("config", "max_response_bytes: 4194304 bytes is more than"),
            ],
        ),
        // The defaults: any variable but the agent token; 256 MiB.
        (&[], [("", ""), ("", "")]),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["run", "--bundle", bundle.path(), "-r", "json"];
        args.extend_from_slice(flags);
        let o = monitors(&args).await;
        let rs = results(&o);
        assert_eq!(rs.len(), 2, "{}", stdout(&o));
        // The results come sorted by id: big, redis.
        let [redis, big] = expected;
        for (r, (kind, message)) in rs.iter().zip([big, redis]) {
            let (k, m) = r
                .error
                .as_ref()
                .filter(|e| e.kind == ErrorKind::Config)
                .map_or(("", String::new()), |e| {
                    (e.kind.as_str(), e.message.clone())
                });
            assert_eq!(k, kind, "{flags:?} {}: {m}", r.id);
            assert!(m.contains(message), "{flags:?}: {m}");
        }
    }
    for bad in [
        &["--secret-env-prefix", ""][..],
        &["--memory-budget", "12"],
        &["--secret-dir", "/nonexistent/secrets"],
    ] {
        let mut args = vec!["run", "--bundle", bundle.path()];
        args.extend_from_slice(bad);
        let o = monitors(&args).await;
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}

/// Sends SIGTERM to a child process.
fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}

fn checks_total(text: &str) -> f64 {
    let body = text.split("\r\n\r\n").nth(1).unwrap_or(text);
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).unwrap();
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == "monitor_checks_total")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_serves_metrics_and_stops_on_sigterm() {
    let f = fixture().await;
    let port = refusing_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_monitors"))
        .args([
            "watch",
            "--bundle",
            f.bundle.path(),
            "--metrics-listen",
            &addr,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Every monitor runs once within its 10 s interval; wait for the first round.
    let mut first = 0.0;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(Ok(text)) = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::spawn({
                let addr = addr.clone();
                async move { scrape(&addr).await }
            }),
        )
        .await
        {
            first = checks_total(&text);
            if first >= 3.0 {
                break;
            }
        }
    }
    assert!(
        first >= 3.0,
        "three checks within the first interval, got {first}"
    );
    tokio::time::sleep(Duration::from_secs(11)).await;
    let second = checks_total(&scrape(&addr).await);
    assert!(
        second >= first + 3.0,
        "counters advance: {first} then {second}"
    );
    terminate(pid);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("stopping"), "{}", stderr(&out));
}

/// Runs the binary with extra environment variables.
async fn monitors_env(args: &[&str], env: &[(&str, String)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_monitors"))
            .args(&args)
            .envs(env)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// A RESP bulk string reply.
fn bulk(body: &str) -> String {
    format!("${}\r\n{body}\r\n", body.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_in_run_matches_its_exported_bundle() {
    let redis = ScriptedServer::start(
        Script::new()
            .expect("*2\r\n$4\r\nAUTH\r\n$15\r\ncli-test-s3cret\r\n")
            .send("+OK\r\n")
            .expect("*1\r\n$4\r\nPING\r\n")
            .send("+PONG\r\n")
            .expect("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            .send(bulk("# Server\r\nredis_version:7.2.5\r\n"))
            .expect("*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n")
            .send(bulk("# Replication\r\nrole:master\r\n")),
    )
    .await
    .unwrap();
    let memcached = ScriptedServer::start(
        Script::new()
            .expect("version\r\n")
            .send("VERSION 1.6.21\r\n")
            .expect("quit\r\n")
            .close(),
    )
    .await
    .unwrap();
    let ssh = ScriptedServer::start(Script::new().send("SSH-1.5-ancient\r\n").close())
        .await
        .unwrap();
    let password = (
        "MONITORS_SECRET_REDIS_PASSWORD",
        "cli-test-s3cret".to_owned(),
    );
    let env = [
        ("REDIS_ADDR", redis.addr().to_string()),
        ("MEMCACHED_ADDR", memcached.addr().to_string()),
        ("SSH_ADDR", ssh.addr().to_string()),
        password.clone(),
    ];
    let grep = "^services::(redis|memcached|ssh)$";
    let compiled = monitors_env(&["run", "--grep", grep, "-r", "json"], &env).await;
    assert_eq!(
        compiled.status.code(),
        Some(1),
        "ssh fails: {}",
        stderr(&compiled)
    );
    let compiled = results(&compiled);
    assert_eq!(
        ids_and_status(&compiled),
        [
            ("services::memcached".to_owned(), Status::Passed),
            ("services::redis".to_owned(), Status::Passed),
            ("services::ssh".to_owned(), Status::Failed),
        ]
    );
    assert_eq!(compiled[1].facts["server_version"], "7.2.5");
    assert_eq!(
        compiled[2].error.as_ref().map(|e| e.kind),
        Some(ErrorKind::ServiceUnavailable)
    );
    let bundle = TempFile::new("export.json", "");
    let exported = monitors_env(&["export", "--grep", grep, "-o", bundle.path()], &env).await;
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    // The bundle names the variable holding the password, never the password.
    let text = std::fs::read_to_string(&bundle.0).unwrap();
    assert!(text.contains("MONITORS_SECRET_REDIS_PASSWORD") && !text.contains("cli-test-s3cret"));
    // The bundle runs without the targets' variables, resolved at export; the password is
    // read where the bundle runs.
    let replay = monitors_env(
        &["run", "--bundle", bundle.path(), "-r", "json"],
        &[password],
    )
    .await;
    let replay = results(&replay);
    assert_eq!(ids_and_status(&replay), ids_and_status(&compiled));
    let kinds = |rs: &[CheckResult]| -> Vec<Option<ErrorKind>> {
        rs.iter()
            .map(|r| r.error.as_ref().map(|e| e.kind))
            .collect()
    };
    assert_eq!(kinds(&replay), kinds(&compiled));
    let facts = |rs: &[CheckResult]| -> Vec<_> { rs.iter().map(|r| r.facts.clone()).collect() };
    assert_eq!(facts(&replay), facts(&compiled));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_validate_explain_export() {
    let list = monitors(&["list"]).await;
    assert_eq!(list.status.code(), Some(0));
    let text = stdout(&list);
    assert!(text.starts_with("ID "), "{text}");
    assert_eq!(
        text.lines().count(),
        20,
        "header and 16 monitors, a blank line, MAINTENANCE and 1 window: {text}"
    );
    assert!(
        text.ends_with("\nMAINTENANCE\ndb-weekly  Weekly database vacuum and restarts  weekly sunday 03:00–04:00 UTC  covers tags db\n"),
        "{text}"
    );
    assert!(text.contains("starttls:smtp") && text.contains("services::redis"));
    let json = monitors(&["list", "--json", "--tag", "db"]).await;
    let ids: Vec<String> = stdout(&json)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "databases::mongodb",
            "databases::mysql",
            "databases::postgres",
            "databases::postgres_primary",
            "databases::postgres_replica"
        ]
    );

    let valid = monitors(&["validate"]).await;
    assert_eq!(valid.status.code(), Some(0));
    assert_eq!(
        stdout(&valid).trim(),
        "16 monitors valid\n1 maintenance window valid"
    );

    let explain = monitors(&["explain", "services::redis"]).await;
    assert_eq!(explain.status.code(), Some(0));
    let text = stdout(&explain);
    assert!(
        text.starts_with("// declared at monitors/src/services.rs:"),
        "{text}"
    );
    let spec = TcpMonitor::from_json(text.split_once('\n').unwrap().1).unwrap();
    // Defaults apply where the monitor is silent: locations, retry, alert channels.
    assert_eq!(spec.locations, ["eu-west-1", "us-east-1"]);
    assert_eq!(spec.alert_channels, ["oncall"]);
    assert_eq!(spec.frequency, Frequency::S30);
    let missing = monitors(&["explain", "nope"]).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("services::redis"),
        "lists the ids"
    );

    let export = monitors(&["export"]).await;
    let bundle = Bundle::from_json(&stdout(&export)).unwrap();
    assert_eq!(bundle.monitors.len(), 16);
    let windows: Vec<&str> = bundle.maintenance.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(windows, ["db-weekly"]);
    assert!(bundle.validate().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_names_the_file_and_line_of_an_invalid_monitor() {
    // The Redis monitor takes its target from REDIS_ADDR at run time; a value without a
    // port leaves port 0, which only validation can catch.
    let o = monitors_env(
        &["validate"],
        &[("REDIS_ADDR", "cache-without-port".to_owned())],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("monitor `services::redis` declared at monitors/src/services.rs:"),
        "{err}"
    );
    assert!(err.contains("target.port"), "{err}");
    let run = monitors_env(&["run"], &[("REDIS_ADDR", "cache-without-port".to_owned())]).await;
    assert_eq!(run.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_passed_degraded_and_failed_with_hints() {
    let o = monitors(&["demo", "-r", "json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rs = results(&o);
    let verdicts: Vec<(String, Status, Option<ErrorKind>)> = rs
        .iter()
        .map(|r| (r.id.to_string(), r.status, r.error.as_ref().map(|e| e.kind)))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("demo-redis-ping".to_owned(), Status::Passed, None),
            (
                "demo-smtp-starttls".to_owned(),
                Status::Degraded,
                Some(ErrorKind::CertificateExpiring)
            ),
            (
                "demo-ssh-banner".to_owned(),
                Status::Degraded,
                Some(ErrorKind::DegradedResponseTime)
            ),
            (
                "demo-redis-auth".to_owned(),
                Status::Failed,
                Some(ErrorKind::ReadTimeout)
            ),
            (
                "demo-postgres-down".to_owned(),
                Status::Failed,
                Some(ErrorKind::Refused)
            ),
        ]
    );
    assert!(
        rs.iter().filter(|r| r.error.is_some()).all(|r| !r
            .error
            .as_ref()
            .unwrap()
            .hints
            .is_empty())
    );
    let human = monitors(&["demo"]).await;
    assert!(
        stdout(&human).contains("5 monitors: 1 passed, 2 degraded, 2 failed"),
        "{}",
        stdout(&human)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_trust_store_honours_ssl_cert_file() {
    use monitor_testing::{TestPki, TlsServer};
    let pki = TestPki::new().unwrap();
    let leaf = pki.leaf_for(&["monitor.test"], 90).unwrap();
    let server = ScriptedServer::start_tls(
        Script::new().send("hello\r\n"),
        TlsServer::direct(leaf.server_config(true).unwrap()),
    )
    .await
    .unwrap();
    // No tls.ca: the monitor trusts the system store, which SSL_CERT_FILE replaces.
    let spec = TcpMonitor::new("tls-system", "127.0.0.1", server.port())
        .tls_direct()
        .tls_with(|t| t.server_name = Some("monitor.test".into()))
        .expect("hello");
    let bundle = TempFile::new("tls.json", &Bundle::new(vec![spec]).to_json());
    let ca = TempFile::new("ca.pem", &pki.root_pem());
    let trusted = monitors_env(
        &["run", "--bundle", bundle.path(), "-r", "json"],
        &[("SSL_CERT_FILE", ca.path().to_owned())],
    )
    .await;
    assert_eq!(
        ids_and_status(&results(&trusted))[0].1,
        Status::Passed,
        "{}",
        stdout(&trusted)
    );
    let other = TempFile::new("other.pem", &TestPki::new().unwrap().root_pem());
    let untrusted = monitors_env(
        &["run", "--bundle", bundle.path(), "-r", "json"],
        &[("SSL_CERT_FILE", other.path().to_owned())],
    )
    .await;
    let r = &results(&untrusted)[0];
    assert_eq!(
        r.error.as_ref().unwrap().kind,
        ErrorKind::UnknownIssuer,
        "{}",
        r.to_json()
    );
}
