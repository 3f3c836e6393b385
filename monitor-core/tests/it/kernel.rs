//! The kernel's view of a check's connection and the engine's own lateness: `TCP_INFO`
//! after connect and at close (its round trip against a delay injected between two network
//! namespaces, its retransmissions when the path drops segments, with the hint and the
//! metrics), and the scheduling delay measured and left out of the phases.
//!
//! The namespace tests need root and `ip` (iproute2): see `monitor_testing::netns`.

use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::pin::pin;
use std::sync::mpsc;
use std::time::Duration;

use monitor_core::prelude::*;
use monitor_testing::netns::{self, DelayedPath, PathConfig, SERVER_IP};

/// The delay the relay holds each frame for, each way.
const DELAY: Duration = Duration::from_millis(20);

/// Serves `connections` connections on `ip`, one after another: reads a line, answers
/// `PONG`, then waits for the client to close. Sends its port on `port` first.
fn pong_server(ip: Ipv4Addr, connections: usize, port: mpsc::Sender<u16>) {
    let listener = TcpListener::bind((ip, 0)).expect("bind");
    port.send(listener.local_addr().expect("address").port())
        .expect("port sent");
    for _ in 0..connections {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let mut stream = reader.into_inner();
        let _ = stream.write_all(b"PONG\r\n");
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    }
}

/// A monitor that sends `PING` and expects `PONG` from `ip:port`.
fn ping(ip: Ipv4Addr, port: u16) -> TcpMonitor {
    TcpMonitor::new("path", ip.to_string(), port)
        .send("PING\\r\\n")
        .expect("PONG")
        .timeouts(3_000, 5_000, 8_000)
}

/// Checks `monitor` from the client namespace of `path` against a server in its server
/// namespace.
fn check_across(path: &DelayedPath, monitor: impl FnOnce(u16) -> TcpMonitor) -> CheckResult {
    assert!(
        netns::available(),
        "this test needs root and ip (Debian package iproute2) to make network namespaces"
    );
    let (tx, rx) = mpsc::channel();
    let server = path.in_server(move || pong_server(SERVER_IP, 1, tx));
    let port = rx.recv().expect("the server's port");
    let monitor = monitor(port).validate().expect("valid monitor");
    let client = path.in_client(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(Engine::new().check(&monitor))
    });
    let result = client
        .join()
        .expect("client thread")
        .expect("client namespace");
    server
        .join()
        .expect("server thread")
        .expect("server namespace");
    result
}

#[test]
fn namespaces_the_kernel_round_trip_matches_an_injected_delay() {
    let path = DelayedPath::new(PathConfig {
        delay: DELAY,
        drop_client_data: 0,
    })
    .expect("namespaces and relay");
    let r = check_across(&path, |port| ping(SERVER_IP, port));
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let tcp = r.tcp.expect("TCP_INFO read");
    let after = tcp.after_connect.expect("read after connect");
    let twice = 2.0 * DELAY.as_secs_f64() * 1000.0;
    // The SYN's round trip: twice the relay's delay, plus the veths' and the relay's own
    // handling, well under a millisecond.
    assert!(
        after.rtt_ms >= twice && after.rtt_ms < twice + 1.0,
        "rtt {} ms for a delay of {twice} ms",
        after.rtt_ms
    );
    assert_eq!(after.retransmits, 0);
    let connect = r.timings.connect_ms.expect("connect time");
    assert!(
        connect >= after.rtt_ms && connect < twice + 10.0,
        "connect {connect} ms, kernel rtt {} ms",
        after.rtt_ms
    );
    let close = tcp.at_close.expect("read at close");
    assert!(close.rtt_ms >= twice, "{close:?}");
    assert_eq!((close.retransmits, close.lost), (0, 0));
    assert_eq!(path.dropped(), 0);
}

#[test]
fn namespaces_segments_the_path_drops_are_retransmissions_with_a_hint() {
    let path = DelayedPath::new(PathConfig {
        delay: DELAY,
        drop_client_data: 2,
    })
    .expect("namespaces and relay");
    // The two retransmission timeouts (200 ms, then 400 ms) make the check slow.
    let r = check_across(&path, |port| ping(SERVER_IP, port).thresholds(150, 8_000));
    assert_eq!(path.dropped(), 2);
    assert_eq!(r.status, Status::Degraded, "{}", r.to_json());
    let close = r.tcp.and_then(|t| t.at_close).expect("read at close");
    assert!(close.retransmits >= 2, "{close:?}");
    let error = r.error.as_ref().expect("degraded with an error");
    assert_eq!(error.kind, ErrorKind::DegradedResponseTime);
    let hint = &error.hints[0];
    assert!(
        hint.starts_with(&format!(
            "{} segments retransmitted: packet loss on the path (round trip ",
            close.retransmits
        )),
        "{hint}"
    );
    let text = monitor_core::report::prometheus(&[&r], &[]);
    let line = format!(
        "monitor_tcp_retransmitted_segments{{monitor=\"path\"}} {}",
        close.retransmits
    );
    assert!(text.contains(&line), "{line} not in\n{text}");
    assert!(
        text.contains("monitor_tcp_rtt_seconds{monitor=\"path\"} 0.0"),
        "{text}"
    );
}

#[tokio::test]
async fn a_loopback_check_reads_tcp_info_and_exposes_it() {
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || pong_server(Ipv4Addr::LOCALHOST, 1, tx));
    let port = rx.recv().expect("port");
    let r = Engine::new()
        .check(&ping(Ipv4Addr::LOCALHOST, port).validate().unwrap())
        .await;
    server.join().expect("server");
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let tcp = r.tcp.expect("TCP_INFO read");
    let (after, close) = (tcp.after_connect.unwrap(), tcp.at_close.unwrap());
    assert!(after.rtt_ms > 0.0 && close.rtt_ms > 0.0, "{tcp:?}");
    assert_eq!((close.retransmits, close.lost), (0, 0));
    let text = monitor_core::report::prometheus(&[&r], &[]);
    for family in [
        "monitor_tcp_rtt_seconds",
        "monitor_tcp_rtt_variance_seconds",
        "monitor_tcp_retransmitted_segments",
        "monitor_tcp_lost_packets",
    ] {
        assert!(
            text.contains(&format!(
                "# TYPE {family} gauge\n{family}{{monitor=\"path\"}} "
            )),
            "{family} missing from\n{text}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(json["tcp"]["at_close"]["retransmits"], 0);
}

/// How long the runtime is kept busy after the check's first wake.
const HOG: Duration = Duration::from_millis(150);

#[tokio::test]
async fn a_check_polled_late_reports_the_delay_and_leaves_it_out_of_its_phases() {
    let (tx, rx) = mpsc::channel();
    let server = std::thread::spawn(move || pong_server(Ipv4Addr::LOCALHOST, 1, tx));
    let port = rx.recv().expect("port");
    let monitor = ping(Ipv4Addr::LOCALHOST, port).validate().unwrap();
    let engine = Engine::new();
    let mut check = pin!(engine.check(&monitor));
    // The first poll starts the check; the task is woken next by the check's own events
    // (its connection becoming ready), and then the runtime is busy elsewhere before it
    // polls the check again: a blocking hog of known length, as another check's CPU work.
    let mut polls = 0;
    let r = std::future::poll_fn(|cx| {
        polls += 1;
        if polls == 2 {
            std::thread::sleep(HOG);
        }
        check.as_mut().poll(cx)
    })
    .await;
    server.join().expect("server");
    assert_eq!(r.status, Status::Passed, "{}", r.to_json());
    let hog = HOG.as_secs_f64() * 1000.0;
    let delay = r.timings.scheduling_delay_ms.expect("a scheduling delay");
    assert!(delay >= hog, "delay {delay} ms, hog {hog} ms");
    let connect = r.timings.connect_ms.unwrap();
    let first_byte = r.timings.first_byte_ms.unwrap();
    assert!(
        connect < hog && first_byte < hog && r.timings.total_ms < hog,
        "{:?}",
        r.timings
    );
    // The kernel's view agrees: the connection's round trip was short.
    let rtt = r.tcp.and_then(|t| t.after_connect).unwrap().rtt_ms;
    assert!(
        rtt < hog && connect >= rtt,
        "rtt {rtt} ms, connect {connect} ms"
    );
    let text = monitor_core::report::prometheus(&[&r], &[]);
    assert!(
        text.contains("monitor_scheduling_delay_seconds{monitor=\"path\"} "),
        "{text}"
    );
}

/// How many checks start at once in the crowd test (the 55).
const CROWD: usize = 55;

#[tokio::test]
async fn checks_started_together_on_one_thread_report_how_late_each_was_polled() {
    // A server answering at once on its own thread: the checks' only wait is the runtime.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..CROWD {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.write_all(b"PONG\r\n");
        }
    });
    let monitors: Vec<ValidMonitor> = (0..CROWD)
        .map(|i| {
            TcpMonitor::new(format!("crowd-{i}"), "127.0.0.1", port)
                .expect("PONG")
                .validate()
                .unwrap()
        })
        .collect();
    let results = monitor_core::engine::run_all(&Engine::new(), &monitors, CROWD).await;
    server.join().expect("server");
    assert!(results.iter().all(|r| r.status == Status::Passed));
    let late: Vec<f64> = results
        .iter()
        .filter_map(|r| r.timings.scheduling_delay_ms)
        .collect();
    // One thread polls 55 checks woken together: all but the first few wait their turn.
    assert!(!late.is_empty(), "no check reported a scheduling delay");
    for r in &results {
        let t = &r.timings;
        let rtt = r.tcp.and_then(|t| t.after_connect).unwrap().rtt_ms;
        let connect = t.connect_ms.unwrap();
        assert!(
            connect >= rtt,
            "connect {connect} ms under the kernel's {rtt} ms"
        );
        let phases = t.dns_ms.unwrap_or(0.0) + connect + t.first_byte_ms.unwrap_or(0.0);
        assert!(phases <= t.total_ms + 0.01, "{t:?}");
    }
}
