//! `watch`'s `/metrics` server under hostile clients (issue 14, findings 5 and 6): the
//! streamed text equals the whole one the reporter writes, after the process's families; idle and slowloris connections
//! are closed and one over the limit is answered 503 while scrapes are served; and 50 slow
//! readers of 20,000 monitors' metrics (measured in a child process) cost a small part of
//! a copy each.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_core::report::{self, Counter};
use monitor_core::runner::http::Limits;
use monitor_core::runner::watch::{self, State};
use monitor_core::{CertInfo, CheckResult, ErrorKind, ProbeError, Status, Timings, TlsReport};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The latest result of monitor `i`: passed over TLS, degraded, or refused, in turn.
fn result(i: usize) -> CheckResult {
    result_with(i, i % 3)
}

/// A result of monitor `i` with the `s`th status: passed over TLS, degraded, or refused.
fn result_with(i: usize, s: usize) -> CheckResult {
    // Fixed, so that two results of the same monitor give the same text (seconds left
    // counts from the start).
    let started_at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
    let expiry = OffsetDateTime::from_unix_timestamp(1_900_000_000 + i as i64).unwrap();
    let status = [Status::Passed, Status::Degraded, Status::Failed][s % 3];
    let error = match status {
        Status::Passed => None,
        Status::Degraded => Some(ProbeError {
            kind: ErrorKind::DegradedResponseTime,
            message: "slower than 200 ms".into(),
            hints: Vec::new(),
        }),
        Status::Failed => Some(ProbeError {
            kind: ErrorKind::Refused,
            message: "refused".into(),
            hints: vec!["is it running?".into()],
        }),
    };
    let tls = (status == Status::Passed).then(|| TlsReport {
        ocsp: None,
        policy: None,
        version: Some("TLSv1.3".into()),
        cipher: None,
        alpn: None,
        server_name: "svc.internal".into(),
        verified: true,
        problems: Vec::new(),
        chain: vec![CertInfo {
            subject: "CN=svc.internal".into(),
            issuer: "CN=ca".into(),
            sans: Vec::new(),
            serial: "01".into(),
            not_before: started_at,
            not_after: expiry,
            days_left: 42,
            sha256: String::new(),
            key_type: "EC".into(),
            key_bits: Some(256),
            signature_algorithm: "ecdsa-with-SHA256".into(),
            self_issued: false,
            subject_rfc2253: "CN=a".into(),
            issuer_rfc2253: "CN=ca".into(),
        }],
        earliest_expiry: Some(expiry),
        days_left: Some(42),
        earliest_expiry_subject: Some("CN=svc.internal".into()),
        legacy: None,
    });
    CheckResult {
        tcp: None,
        id: format!("svc-{i:05}").into(),
        name: format!("Service {i}").into(),
        target: "svc.internal:443".into(),
        status,
        error,
        timings: Timings {
            scheduling_delay_ms: None,
            dns_ms: Some(0.5),
            connect_ms: Some(1.25),
            tls_ms: tls.as_ref().map(|_| 2.5),
            first_byte_ms: None,
            total_ms: 5.0 + i as f64 / 1000.0,
            client_cert_wait_ms: None,
        },
        address: Some(format!("10.0.{}.{}:443", i / 250, i % 250).into()),
        attempts: Vec::new(),
        assertions: Vec::new(),
        response_excerpt: String::new(),
        facts: Default::default(),
        tls: tls.map(Box::new),
        started_at,
    }
}

/// A state with `n` monitors, each checked twice (with another status, then its
/// [`result`]), and some lateness.
pub(crate) fn state(n: usize) -> Arc<State> {
    let state = Arc::new(State::default());
    for i in 0..n {
        state.record(result_with(i, i + 1));
        state.record(result(i));
        state.late(i as f64 / 1000.0);
    }
    state
}

/// Serves `state` on a free loopback port until the runtime stops.
async fn serve(state: Arc<State>, limits: Limits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(watch::serve(
        listener,
        state,
        limits,
        std::future::pending(),
    ));
    addr
}

/// `GET /metrics` over HTTP/1.0 (no chunked encoding): the status line and the body.
async fn scrape(addr: SocketAddr) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_metrics_equal_the_whole_text() {
    let n = 3000;
    let state = state(n);
    let addr = serve(Arc::clone(&state), Limits::default()).await;
    let (status, body) = scrape(addr).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
    // What `/metrics` answered before it was streamed: the reporter's whole text of the
    // latest results and counters, and the lateness summary.
    let latest: Vec<CheckResult> = (0..n).map(result).collect();
    let refs: Vec<&CheckResult> = latest.iter().collect();
    let mut counters = Vec::new();
    for i in 0..n {
        let mut counts = [0u64; 3];
        counts[(i + 1) % 3] += 1;
        counts[i % 3] += 1;
        for (slot, status) in [Status::Passed, Status::Degraded, Status::Failed]
            .into_iter()
            .enumerate()
        {
            if counts[slot] > 0 {
                counters.push(Counter {
                    monitor: format!("svc-{i:05}"),
                    status,
                    count: counts[slot],
                });
            }
        }
    }
    let mut results = report::prometheus(&refs, &counters);
    // `watch` also knows the failures in a row: one where the latest check failed (the
    // one before passed), none elsewhere.
    let streaks = (0..n)
        .map(|i| {
            let monitor = report::labels(&[("monitor", &format!("svc-{i:05}"))]);
            (monitor, u8::from(i % 3 == 2).to_string())
        })
        .collect();
    let mut streak_family = String::new();
    report::family(
        &mut streak_family,
        "monitor_consecutive_failures",
        "gauge",
        "How many checks in a row, up to the latest, failed.",
        streaks,
    );
    let at = results.find("# HELP monitor_checks_total").unwrap();
    results.insert_str(at, &streak_family);
    assert!(body.len() > 1024 * 1024, "{} bytes", body.len());
    let process = body
        .strip_suffix(results.as_str())
        .expect("the streamed text ends with the results' whole text");
    // The process's families come first: the lateness summary of every sample.
    let [p50, p99, max] = state.lateness_quantiles().unwrap();
    let mut lateness = String::new();
    for (q, v) in [("0.5", p50), ("0.99", p99), ("1", max)] {
        lateness.push_str(&format!(
            "monitor_schedule_lateness_seconds{} {v}\n",
            report::labels(&[("quantile", q)])
        ));
    }
    let sum: f64 = (0..n).map(|i| i as f64 / 1000.0).sum();
    lateness.push_str(&format!(
        "monitor_schedule_lateness_seconds_sum {sum}\nmonitor_schedule_lateness_seconds_count {n}\n"
    ));
    assert!(
        process.starts_with("# HELP monitors_build_info "),
        "{process}"
    );
    assert!(process.contains(&lateness), "{process}");
    assert!(
        state.metrics() == body,
        "the streamed text differs from the whole one"
    );
}

/// Reads until the server closes the connection; what it read.
async fn until_closed(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slow_and_excess_connections_are_closed_while_scrapes_are_served() {
    let limits = Limits {
        max_connections: 8,
        header_timeout: Duration::from_secs(3),
        idle_timeout: Duration::from_secs(3),
        body_timeout: Duration::from_secs(3),
    };
    let addr = serve(state(10), limits).await;
    let patience = Duration::from_secs(30);
    let start = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // A scrape is served meanwhile.
    let (status, body) = scrape(addr).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
    assert!(body.contains("probe_success{monitor=\"svc-00009\"} 1\n"));
    // The scrape's slot is free once its task ends, a moment after the client saw the
    // end of the body: on a loaded machine the next connection could still find it
    // taken.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Over the limit: answered 503 and closed at once.
    let mut more = Vec::new();
    for _ in 0..4 {
        more.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(1), until_closed(&mut over))
        .await
        .expect("the connection over the limit is closed in under a second");
    assert!(seen.starts_with(b"HTTP/1.1 503 "), "{seen:?}");
    // The slowloris and the idle ones are closed after their timeouts.
    for s in idle.iter_mut().chain([&mut slow]).chain(more.iter_mut()) {
        let seen = tokio::time::timeout(patience, until_closed(s))
            .await
            .expect("closed by the server");
        assert!(seen.is_empty(), "{seen:?}");
    }
    assert!(start.elapsed() >= Duration::from_secs(3));
    let (status, _) = scrape(addr).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
}

/// Set in the child process that serves the metrics whose memory is measured.
const CHILD_ENV: &str = "WATCH_SERVING_MEMORY_CHILD";
const MONITORS: usize = 20_000;
const READERS: usize = 50;

fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}

fn peak_rss(pid: u32) -> u64 {
    (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            rss(pid)
        })
        .max()
        .unwrap_or(0)
}

/// The child's part: serve 20,000 monitors' metrics until stdin closes.
async fn serve_until_stdin_closes() {
    let addr = serve(state(MONITORS), Limits::default()).await;
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {addr}");
    let _ = out.flush();
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_of_many_monitors_share_the_results() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return serve_until_stdin_closes().await;
    }
    tokio::task::spawn_blocking(measure_slow_readers)
        .await
        .unwrap();
}

/// Runs this test again as a child that serves the metrics, so that its memory is the
/// server's alone, and reads its metrics slowly from 50 connections.
fn measure_slow_readers() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "watch_serving::slow_readers_of_many_monitors_share_the_results",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let addr = stdout
        .lines()
        .map_while(Result::ok)
        // The harness writes the test's name first on the same line.
        .find_map(|l| {
            l.split_once("listening on ")
                .map(|(_, a)| a.trim().to_owned())
        })
        .expect("the child prints its address");
    let pid = child.id();
    let mut whole = TcpStream::connect(&addr).unwrap();
    whole.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = Vec::new();
    whole.read_to_end(&mut text).unwrap();
    let size = text.len() as u64;
    assert_eq!(
        String::from_utf8_lossy(&text)
            .matches("probe_success{")
            .count(),
        MONITORS
    );
    let before = peak_rss(pid);
    let mut readers: Vec<TcpStream> = (0..READERS)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    for s in &mut readers {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut first = [0u8; 4096];
        s.read_exact(&mut first).unwrap();
        assert!(first.starts_with(b"HTTP/1.1 200 OK"));
    }
    let during = peak_rss(pid);
    let grown = during.saturating_sub(before);
    let _ = writeln!(
        std::io::stderr(),
        "metrics of {MONITORS} monitors: {size} B; resident {before} B before, {during} B with {READERS} slow readers: {grown} B more"
    );
    drop(readers);
    drop(child.stdin.take());
    let _ = child.wait();
    // A copy per reader would be READERS × size more.
    assert!(
        grown < READERS as u64 * size / 10,
        "{grown} B more with {READERS} slow readers of {size} B"
    );
}
