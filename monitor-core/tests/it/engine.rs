//! The engine against real loopback servers: dialogs, every failure kind, timings,
//! happy eyeballs, thresholds, should_fail, retries and the concurrent runner.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monitor_core::prelude::*;
use monitor_core::{Backoff, run_all};
use monitor_testing::{Script, ScriptedServer, Unresponsive, refusing_port};

use crate::servers::{RecordingClock, engine_with_names, kind, run, run_with};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

fn ms_f(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Starts `script` on 127.0.0.1, checks `spec(port)` against it, and asserts the status and
/// error kind.
async fn check(
    script: Script,
    spec: impl FnOnce(u16) -> TcpMonitor,
    expected: (Status, Option<ErrorKind>),
) -> CheckResult {
    let server = ScriptedServer::start(script).await.unwrap();
    let result = run(spec(server.port())).await;
    assert_eq!(
        (result.status, kind(&result)),
        expected,
        "unexpected verdict: {}",
        result.to_json()
    );
    result
}

fn on(port: u16) -> TcpMonitor {
    TcpMonitor::new("test", "127.0.0.1", port)
}

#[tokio::test]
async fn banner_with_regex_passes_with_every_timing() {
    let r = check(
        Script::new().send("SSH-2.0-OpenSSH_9.6 Debian\r\n"),
        |p| on(p).expect_regex(r"^SSH-2\.0-\S+"),
        (Status::Passed, None),
    )
    .await;
    assert!(r.timings.dns_ms.is_some());
    assert!(r.timings.connect_ms.is_some());
    assert!(r.timings.first_byte_ms.is_some());
    assert!(r.timings.total_ms >= r.timings.first_byte_ms.unwrap());
    assert!(r.address.as_deref().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(r.response_excerpt, "SSH-2.0-OpenSSH_9.6 Debian\\r\\n");
    assert_eq!(r.attempts.len(), 1);
}

#[tokio::test]
async fn echo_with_assertions_passes() {
    let r = check(
        Script::new().echo(),
        |p| {
            on(p)
                .send("hello\\r\\n")
                .expect("hello\\r\\n")
                .assert(response_data().equals("hello\\r\\n"))
                .assert(response_data().contains("ell"))
                .assert(response_data().matches_regex("^h.*o"))
                .assert(response_data().not_empty())
                .assert(response_time().less_than(ms(2000)))
                .assert(connect_time().less_than(ms(2000)))
        },
        (Status::Passed, None),
    )
    .await;
    assert_eq!(r.assertions.len(), 6);
    assert!(r.assertions.iter().all(|a| a.passed));
    assert_eq!(r.assertions[0].actual, "hello\\r\\n");
}

#[tokio::test]
async fn multi_step_dialog_reads_until_close() {
    let server = Script::new()
        .send("220 mail.test ESMTP\r\n")
        .expect("EHLO probe\r\n")
        .send("250-mail.test\r\n250 STARTTLS\r\n")
        .expect("QUIT\r\n")
        .send("221 bye\r\n")
        .close();
    let r = check(
        server,
        |p| {
            on(p)
                .expect("220 ")
                .send("EHLO probe\\r\\n")
                .expect_regex(r"250 [A-Z]+\r\n")
                .send("QUIT\\r\\n")
                .read(ReadUntil::Close)
                .assert(response_data().contains("221 bye"))
        },
        (Status::Passed, None),
    )
    .await;
    assert!(r.response_excerpt.ends_with("221 bye\\r\\n"));
}

#[tokio::test]
async fn read_steps_by_delimiter_count_and_any() {
    check(
        Script::new()
            .send("LINE ONE\r\n")
            .send(b"\x01\x02\x03\x04rest"),
        |p| {
            on(p)
                .read(ReadUntil::Delimiter("\\r\\n".into()))
                .read(ReadUntil::Bytes(4))
                .expect_bytes(b"re")
                .read(ReadUntil::Any)
                .assert(response_data().contains("\\x01\\x02"))
        },
        (Status::Passed, None),
    )
    .await;
}

#[tokio::test]
async fn exact_bytes_mismatch_fails_at_once() {
    let r = check(
        Script::new().send(b"\x00\x01XY"),
        |p| on(p).expect_bytes(b"\x00\x02"),
        (Status::Failed, Some(ErrorKind::UnexpectedResponse)),
    )
    .await;
    let msg = &r.error.unwrap().message;
    assert!(
        msg.contains("\\x00\\x01") && msg.contains("\\x00\\x02"),
        "{msg}"
    );
}

#[tokio::test]
async fn implicit_read_when_only_assertions_look_at_data() {
    check(
        Script::new().expect("PING\r\n").send("+PONG\r\n"),
        |p| {
            on(p)
                .send("PING\\r\\n")
                .assert(response_data().contains("+PONG"))
        },
        (Status::Passed, None),
    )
    .await;
}

#[tokio::test]
async fn failing_assertion_keeps_expected_and_actual() {
    let r = check(
        Script::new().send("-ERR unknown\r\n"),
        |p| {
            on(p)
                .read(ReadUntil::Any)
                .assert(response_data().contains("+PONG"))
                .assert(response_data().not_contains("ERR"))
                .assert(response_data().is_empty())
                .assert(response_data().not_empty())
        },
        (Status::Failed, Some(ErrorKind::AssertionFailed)),
    )
    .await;
    let outcomes: Vec<bool> = r.assertions.iter().map(|a| a.passed).collect();
    assert_eq!(outcomes, [false, false, false, true]);
    assert_eq!(r.assertions[0].target, "+PONG");
    assert_eq!(r.assertions[0].actual, "-ERR unknown\\r\\n");
    let msg = r.error.unwrap().message;
    assert!(msg.starts_with("3 of 4 assertions failed"), "{msg}");
}

#[tokio::test]
async fn refused_port_fails_with_hints() {
    let port = refusing_port().unwrap();
    let r = run(on(port)).await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Failed, Some(ErrorKind::Refused))
    );
    assert!(r.timings.dns_ms.is_some());
    assert_eq!(r.timings.connect_ms, None);
    assert_eq!(r.address, None);
    let e = r.error.unwrap();
    assert!(
        e.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        e.message
    );
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains(&format!("ss -tlnp | grep :{port}")))
    );
    assert!(e.hints.iter().any(|h| h.contains("firewall")));
    assert_eq!(
        e.hints.last().unwrap(),
        &format!("reproduce by hand: nc -vz -w 5 127.0.0.1 {port}")
    );
}

#[tokio::test]
async fn full_accept_queue_times_out_connecting() {
    let server = Unresponsive::start().await.unwrap();
    let r = run(on(server.port())
        .timeouts(300, 1000, 2000)
        .thresholds(2000, 2000))
    .await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Failed, Some(ErrorKind::ConnectTimeout)),
        "{}",
        r.to_json()
    );
    assert!(r.timings.total_ms >= 300.0, "{}", r.timings.total_ms);
    assert_eq!(r.timings.connect_ms, None);
    let e = r.error.unwrap();
    assert!(
        e.message.contains("timed out after 300 ms"),
        "{}",
        e.message
    );
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("connect timeout (300 ms) may be too low"))
    );
}

#[tokio::test]
async fn dripping_server_times_out_reading() {
    let r = check(
        Script::new().drip("abcdef", Duration::from_secs(1)),
        |p| {
            on(p)
                .expect("f")
                .timeouts(1000, 500, 3000)
                .thresholds(3000, 3000)
        },
        (Status::Failed, Some(ErrorKind::ReadTimeout)),
    )
    .await;
    assert!(r.timings.first_byte_ms.is_some());
    assert!(r.timings.total_ms >= 500.0);
    assert_eq!(r.response_excerpt, "a");
    let e = r.error.unwrap();
    assert!(
        e.message.contains("read timeout of 500 ms"),
        "{}",
        e.message
    );
    assert!(e.message.contains("received 1 bytes"), "{}", e.message);
}

#[tokio::test]
async fn total_timeout_cuts_a_slow_dialog() {
    let r = check(
        Script::new().drip("abcdef", Duration::from_millis(300)),
        |p| {
            on(p)
                .read(ReadUntil::Any)
                .expect("c")
                .expect("f")
                .timeouts(500, 650, 700)
                .thresholds(600, 700)
        },
        (Status::Failed, Some(ErrorKind::ReadTimeout)),
    )
    .await;
    let e = r.error.unwrap();
    assert!(
        e.message.contains("total timeout of 700 ms"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn flooding_server_hits_the_size_cap() {
    let r = check(
        Script::new().flood(),
        |p| on(p).expect("never sent").max_response_bytes(10_000),
        (Status::Failed, Some(ErrorKind::ResponseTooLarge)),
    )
    .await;
    // The excerpt is bounded whatever the server sends.
    assert!(r.response_excerpt.len() <= 256 + 3);
    assert!(r.error.unwrap().message.contains("10000 bytes"));
}

#[tokio::test]
async fn reset_by_server() {
    check(
        Script::new().expect("PING").reset(),
        |p| on(p).send("PING\\r\\n").expect("+PONG"),
        (Status::Failed, Some(ErrorKind::Reset)),
    )
    .await;
}

#[tokio::test]
async fn server_closing_at_once() {
    let r = check(
        Script::new().close(),
        |p| on(p).expect("+PONG"),
        (Status::Failed, Some(ErrorKind::ClosedEarly)),
    )
    .await;
    let e = r.error.unwrap();
    assert!(
        e.message
            .contains("closed the connection before sending `+PONG`"),
        "{}",
        e.message
    );
    assert!(e.message.contains("nothing received"), "{}", e.message);
}

#[tokio::test]
async fn name_that_does_not_resolve() {
    let engine = engine_with_names(&[]);
    let r = run_with(&engine, TcpMonitor::new("dns", "no-such-host.test", 6379)).await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Failed, Some(ErrorKind::DnsFailure))
    );
    assert!(r.timings.dns_ms.is_some());
    assert_eq!(r.timings.connect_ms, None);
    let e = r.error.unwrap();
    assert!(e.message.contains("no-such-host.test"), "{}", e.message);
    assert!(
        e.hints
            .iter()
            .any(|h| h.contains("getent hosts no-such-host.test"))
    );
}

#[tokio::test]
async fn system_resolver_resolves_localhost() {
    let server = ScriptedServer::start(Script::new().send("hi\r\n"))
        .await
        .unwrap();
    let r = run(TcpMonitor::new("dns", "localhost", server.port())
        .ip_family(IpFamily::Ipv4)
        .expect("hi"))
    .await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert_eq!(*r.address.unwrap(), format!("127.0.0.1:{}", server.port()));
}

#[tokio::test]
async fn ipv6_literal_on_loopback() {
    let server = ScriptedServer::start_on("[::1]:0".parse().unwrap(), Script::new().send("v6\r\n"))
        .await
        .unwrap();
    let r = run(TcpMonitor::new("v6", "::1", server.port()).expect("v6")).await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert_eq!(*r.address.unwrap(), format!("[::1]:{}", server.port()));
    assert_eq!(*r.target, format!("[::1]:{}", server.port()));
}

/// A name with both loopback addresses where only `answers` listens on the port.
async fn dual_stack(answers: IpAddr) -> CheckResult {
    let server =
        ScriptedServer::start_on(SocketAddr::new(answers, 0), Script::new().send("ok\r\n"))
            .await
            .unwrap();
    let engine = engine_with_names(&[("dual.test", &[V6, V4])]);
    let r = run_with(
        &engine,
        TcpMonitor::new("dual", "dual.test", server.port()).expect("ok"),
    )
    .await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert_eq!(
        r.address.as_deref(),
        Some(&*SocketAddr::new(answers, server.port()).to_string())
    );
    r
}

#[tokio::test]
async fn dual_stack_ipv6_refuses_ipv4_answers() {
    dual_stack(V4).await;
}

#[tokio::test]
async fn dual_stack_ipv4_refuses_ipv6_answers() {
    dual_stack(V6).await;
}

#[tokio::test]
async fn happy_eyeballs_moves_on_from_a_stalled_address() {
    // IPv6 stalls (full accept queue), IPv4 answers on the same port.
    let (stalled, server) = loop {
        let stalled = Unresponsive::start_on("[::1]:0".parse().unwrap())
            .await
            .unwrap();
        let v4 = SocketAddr::new(V4, stalled.port());
        if let Ok(server) = ScriptedServer::start_on(v4, Script::new().send("ok\r\n")).await {
            break (stalled, server);
        }
    };
    let engine = engine_with_names(&[("dual.test", &[V6, V4])]);
    let r = run_with(
        &engine,
        TcpMonitor::new("he", "dual.test", stalled.port()).expect("ok"),
    )
    .await;
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    assert_eq!(*r.address.unwrap(), format!("127.0.0.1:{}", server.port()));
    // The IPv4 attempt started only after the attempt delay.
    assert!(r.timings.connect_ms.unwrap() >= 240.0, "{:?}", r.timings);
}

#[tokio::test]
async fn every_address_failing_lists_each() {
    let port = refusing_port().unwrap();
    let engine = engine_with_names(&[("dual.test", &[V6, V4])]);
    let r = run_with(&engine, TcpMonitor::new("dual", "dual.test", port)).await;
    assert_eq!(kind(&r), Some(ErrorKind::Refused));
    let msg = r.error.unwrap().message;
    assert!(msg.contains(&format!("[::1]:{port} refused")), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{port} refused")), "{msg}");
}

#[tokio::test]
async fn ip_family_filters_resolved_addresses() {
    let engine = engine_with_names(&[("v4only.test", &[V4])]);
    let r = run_with(
        &engine,
        TcpMonitor::new("fam", "v4only.test", 1).ip_family(IpFamily::Ipv6),
    )
    .await;
    assert_eq!(kind(&r), Some(ErrorKind::DnsFailure));
    assert!(r.error.unwrap().message.contains("no IPv6 address"));
}

#[tokio::test]
async fn first_byte_time_reflects_the_server_delay() {
    let r = check(
        Script::new().sleep(ms_f(300)).send("late\r\n"),
        |p| {
            on(p)
                .expect("late")
                .assert(first_byte_time().greater_than(ms(250)))
        },
        (Status::Passed, None),
    )
    .await;
    let t = r.timings;
    let first = t.first_byte_ms.unwrap();
    // Generous bounds: the delay shows, and the phases add up.
    assert!((280.0..3000.0).contains(&first), "{t:?}");
    assert!(t.connect_ms.unwrap() < first, "{t:?}");
    assert!(t.total_ms >= t.connect_ms.unwrap() + first, "{t:?}");
}

#[tokio::test]
async fn slow_response_is_degraded_then_failed() {
    let r = check(
        Script::new().sleep(ms_f(150)).send("ok\r\n"),
        |p| on(p).expect("ok").thresholds(100, 2000),
        (Status::Degraded, Some(ErrorKind::DegradedResponseTime)),
    )
    .await;
    let e = r.error.unwrap();
    assert!(
        e.message
            .contains("above degraded_response_time_ms (100 ms)"),
        "{}",
        e.message
    );
    assert!(
        e.hints[0].contains("waiting for the first byte"),
        "{:?}",
        e.hints
    );
    check(
        Script::new().sleep(ms_f(250)).send("ok\r\n"),
        |p| on(p).expect("ok").thresholds(100, 200),
        (Status::Failed, Some(ErrorKind::MaxResponseTime)),
    )
    .await;
}

#[tokio::test]
async fn should_fail_passes_on_refused_and_on_success() {
    let port = refusing_port().unwrap();
    let r = run(on(port).should_fail(true)).await;
    assert_eq!(
        (r.status, kind(&r)),
        (Status::Passed, None),
        "{}",
        r.to_json()
    );
    // Checkly's meaning: a successful connection still passes...
    check(
        Script::new().send("ok\r\n"),
        |p| on(p).should_fail(true).expect("ok"),
        (Status::Passed, None),
    )
    .await;
    // ...and a failing assertion still fails.
    check(
        Script::new().send("ok\r\n"),
        |p| {
            on(p)
                .should_fail(true)
                .read(ReadUntil::Any)
                .assert(response_data().contains("nope"))
        },
        (Status::Failed, Some(ErrorKind::AssertionFailed)),
    )
    .await;
    // A dialog failure is not a connection failure: it still fails.
    check(
        Script::new().close(),
        |p| on(p).should_fail(true).expect("ok"),
        (Status::Failed, Some(ErrorKind::ClosedEarly)),
    )
    .await;
}

/// Runs a refused check under `strategy` with a recording clock; returns the attempts and
/// the recorded waits in seconds.
async fn retries(strategy: RetryStrategy) -> (usize, Vec<u64>) {
    let clock = RecordingClock::default();
    let engine = Engine::new().with_clock(clock.clone());
    let port = refusing_port().unwrap();
    let r = run_with(&engine, on(port).retry(strategy)).await;
    assert_eq!(r.status, Status::Failed);
    assert!(r.attempts.iter().all(|a| a.status == Status::Failed));
    let waits = clock
        .waits
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.as_secs())
        .collect();
    (r.attempts.len(), waits)
}

fn backoff(base: u32, max_retries: u32, max_duration: u32) -> Backoff {
    Backoff {
        base_backoff_seconds: base,
        max_retries,
        max_duration_seconds: max_duration,
        same_region: true,
    }
}

#[tokio::test]
async fn retry_strategies_record_every_attempt() {
    assert_eq!(retries(RetryStrategy::None).await, (1, vec![]));
    assert_eq!(
        retries(RetryStrategy::SingleRetry {
            base_backoff_seconds: 7,
            same_region: true
        })
        .await,
        (2, vec![7])
    );
    assert_eq!(
        retries(RetryStrategy::Fixed(backoff(5, 3, 600))).await,
        (4, vec![5, 5, 5])
    );
    assert_eq!(
        retries(RetryStrategy::Linear(backoff(5, 3, 600))).await,
        (4, vec![5, 10, 15])
    );
    assert_eq!(
        retries(RetryStrategy::Exponential(backoff(5, 3, 600))).await,
        (4, vec![5, 25, 125])
    );
    // The duration budget stops retries whose wait would not fit: 5 + 25 fits in 40, 125 not.
    assert_eq!(
        retries(RetryStrategy::Exponential(backoff(5, 5, 40))).await,
        (3, vec![5, 25])
    );
}

/// A clock that records, for each retry wait, how many admissions were held meanwhile.
#[derive(Clone, Default)]
struct HeldClock {
    held: Arc<AtomicUsize>,
    waits: Arc<Mutex<Vec<usize>>>,
}

impl monitor_core::Clock for HeldClock {
    fn now(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
    fn wall(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
    fn sleep(&self, _: Duration) -> monitor_core::engine::BoxFuture<'static, ()> {
        self.waits
            .lock()
            .unwrap()
            .push(self.held.load(Ordering::SeqCst));
        Box::pin(std::future::ready(()))
    }
}

/// Held while an attempt runs: counts itself in `HeldClock::held`.
struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn an_attempt_holds_its_admission_and_a_backoff_holds_none() {
    let clock = HeldClock::default();
    let engine = Engine::new().with_clock(clock.clone());
    let port = refusing_port().unwrap();
    let monitor = on(port)
        .retry(RetryStrategy::Fixed(backoff(5, 2, 600)))
        .into_valid()
        .unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let admit = |stop_at: Option<u32>| {
        let (held, asked) = (clock.held.clone(), asked.clone());
        move |retry: u32| {
            asked.lock().unwrap().push(retry);
            let held = held.clone();
            async move {
                if Some(retry) == stop_at {
                    return None;
                }
                held.fetch_add(1, Ordering::SeqCst);
                Some(Admission(held))
            }
        }
    };
    let r = engine.check_admitted(&monitor, admit(None)).await.unwrap();
    assert_eq!(r.attempts.len(), 3);
    assert_eq!(*asked.lock().unwrap(), [0, 1, 2]);
    // Two backoffs, each with nothing held; nothing held after the check.
    assert_eq!(*clock.waits.lock().unwrap(), [0, 0]);
    assert_eq!(clock.held.load(Ordering::SeqCst), 0);

    // A retry not admitted ends the check with the attempts so far; a first attempt not
    // admitted gives no result.
    asked.lock().unwrap().clear();
    let r = engine
        .check_admitted(&monitor, admit(Some(1)))
        .await
        .unwrap();
    assert_eq!((r.status, r.attempts.len()), (Status::Failed, 1));
    assert!(
        engine
            .check_admitted(&monitor, admit(Some(0)))
            .await
            .is_none()
    );
    assert_eq!(*asked.lock().unwrap(), [0, 1, 0]);
}

#[tokio::test]
async fn retry_stops_once_an_attempt_passes() {
    // The server refuses nothing, so the first attempt passes and nothing is retried.
    let clock = RecordingClock::default();
    let engine = Engine::new().with_clock(clock.clone());
    let server = ScriptedServer::start(Script::new().send("ok\r\n"))
        .await
        .unwrap();
    let r = run_with(
        &engine,
        on(server.port())
            .expect("ok")
            .retry(RetryStrategy::Fixed(backoff(1, 3, 600))),
    )
    .await;
    assert_eq!((r.status, r.attempts.len()), (Status::Passed, 1));
    assert!(clock.waits.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_bounds_concurrency_and_keeps_order() {
    let server = ScriptedServer::start(Script::new().sleep(ms_f(100)).send("ok\r\n"))
        .await
        .unwrap();
    let refused = refusing_port().unwrap();
    let monitors: Vec<ValidMonitor> = (0..12)
        .map(|i| {
            let port = if i % 3 == 0 { refused } else { server.port() };
            TcpMonitor::new(format!("m{i}"), "127.0.0.1", port)
                .expect("ok")
                .validate()
                .unwrap()
        })
        .collect();
    let started = std::time::Instant::now();
    let results = run_all(&Engine::new(), &monitors, 4).await;
    let ids: Vec<&str> = results.iter().map(|r| &*r.id).collect();
    let expected: Vec<String> = (0..12).map(|i| format!("m{i}")).collect();
    assert_eq!(ids, expected);
    for (i, r) in results.iter().enumerate() {
        let want = if i % 3 == 0 {
            Status::Failed
        } else {
            Status::Passed
        };
        assert_eq!(r.status, want, "{}", r.to_json());
    }
    // 8 checks of 100 ms with 4 at once take at least two rounds.
    assert!(started.elapsed() >= ms_f(200));
    assert_eq!(server.connections(), 8);
}

#[tokio::test]
async fn result_json_has_the_documented_names() {
    let port = refusing_port().unwrap();
    let r = run(on(port)).await;
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    let mut expected = [
        "id",
        "name",
        "target",
        "status",
        "error",
        "timings",
        "address",
        "attempts",
        "assertions",
        "response_excerpt",
        "started_at",
        "tls",
    ];
    keys.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"]["kind"], "refused");
    assert!(v["error"]["hints"].as_array().unwrap().len() >= 3);
    let timings: Vec<&str> = v["timings"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        timings,
        [
            "connect_ms",
            "dns_ms",
            "first_byte_ms",
            "tls_ms",
            "total_ms"
        ]
    );
    assert!(v["timings"]["total_ms"].is_f64());
    let started = v["started_at"].as_str().unwrap();
    time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339).unwrap();
    let back: CheckResult = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(back, r);
}

mod random_servers {
    //! Random server bytes against random dialogs: the engine never panics and always
    //! gives a well-formed verdict.

    use proptest::prelude::*;

    use super::*;

    fn ending() -> impl Strategy<Value = u8> {
        0u8..3
    }

    fn dialog() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            "[a-z+\\-]{1,6}".prop_map(|s| Step::Expect(Expect::Contains(s))),
            "[a-z.*+?]{1,6}".prop_map(|s| Step::Expect(Expect::Regex(s))),
            proptest::collection::vec(any::<u8>(), 1..4).prop_map(|b| Step::Expect(Expect::Exact(
                Payload::Hex(monitor_core::escape::to_hex(&b))
            ))),
            (1u32..64).prop_map(|n| Step::Read(ReadUntil::Bytes(n))),
            Just(Step::Read(ReadUntil::Any)),
            Just(Step::Read(ReadUntil::Close)),
            Just(Step::Read(ReadUntil::Delimiter("\\n".into()))),
            "[ -~]{1,8}".prop_map(|s| Step::Send(Payload::Text(s.replace('\\', "/")))),
        ];
        proptest::collection::vec(step, 0..5)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn never_panics_on_random_server_bytes(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            end in ending(),
            steps in dialog(),
            cap in 1u32..1024,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let outcome: Result<(), TestCaseError> = rt.block_on(async {
                let script = Script::new().send(&bytes);
                let script = match end {
                    0 => script.close(),
                    1 => script.reset(),
                    _ => script,
                };
                let server = ScriptedServer::start(script).await.unwrap();
                let mut spec = on(server.port())
                    .timeouts(300, 200, 400)
                    .thresholds(400, 400)
                    .max_response_bytes(cap);
                spec.steps = steps;
                let Ok(monitor) = spec.validate() else {
                    return Ok(());
                };
                let r = Engine::new().check(&monitor).await;
                match r.status {
                    Status::Passed => {
                        prop_assert!(r.error.is_none());
                    }
                    _ => {
                        let e = r.error.as_ref().unwrap();
                        prop_assert!(!e.message.is_empty());
                        prop_assert!(!e.hints.is_empty());
                    }
                }
                prop_assert!(r.response_excerpt.len() <= 256 * 4 + 3);
                prop_assert!(serde_json::from_str::<CheckResult>(&r.to_json()).is_ok());
                Ok(())
            });
            outcome?;
        }
    }
}
