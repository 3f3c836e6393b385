//! What one client can hold of the server (issue 14, findings 5 and 6), against the real
//! binary: slowloris, idle and slow-body connections are closed after `--header-timeout`,
//! `--idle-timeout` and `--body-timeout` while real requests are served; a connection over
//! `--max-connections` is answered 503 and closed at once; SIGTERM lets a request in
//! flight finish; and slow readers of a large status page and `/metrics` share one
//! snapshot instead of holding a copy each.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A runtime for the raw connections of a test.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn socket_addr(server: &Server) -> SocketAddr {
    server.addr().parse().unwrap()
}

/// `GET path` on a new connection: the status code and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    let status = text
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

/// Reads until the server closes the connection (end of stream or reset); what it read.
async fn until_closed(s: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// Bounds a wait that would hang if the server kept the connection open.
const PATIENCE: Duration = Duration::from_secs(30);

/// Sends a request head that never ends, a byte every 100 ms; returns how long after
/// starting to connect the server closed the connection. (Once its first byte has
/// arrived, only the head timeout can close it.)
async fn slowloris(addr: SocketAddr) -> Duration {
    // Before connecting, so before the server accepts or sees a byte.
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            read = s.read(&mut buf) => match read {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(n) => panic!("the server answered a head it has not seen whole: {:?}", &buf[..n]),
            },
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if s.write_all(b"x").await.is_err() {
                    let _ = until_closed(&mut s).await;
                    return start.elapsed();
                }
            }
        }
    }
}

/// Connects and sends nothing; returns how long after starting to connect the server
/// closed it.
async fn idle(addr: SocketAddr) -> Duration {
    // Before connecting, so before the server accepts.
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let seen = until_closed(&mut s).await;
    assert!(seen.is_empty(), "{:?}", String::from_utf8_lossy(&seen));
    start.elapsed()
}

#[test]
fn slowloris_and_idle_connections_are_closed_while_real_requests_are_served() {
    let dir = TempDir::new("slowloris");
    let server = Server::start(
        &dir.db(),
        &[
            "--max-connections",
            "1000",
            "--header-timeout",
            "1s",
            "--idle-timeout",
            "1s",
        ],
        &[],
    );
    let addr = socket_addr(&server);
    runtime().block_on(async {
        let slow: Vec<_> = (0..300).map(|_| tokio::spawn(slowloris(addr))).collect();
        let idle: Vec<_> = (0..300).map(|_| tokio::spawn(idle(addr))).collect();
        // Served while the 600 connections are open.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(get(addr, "/healthz").await, (200, "ok".to_owned()));
        for (kind, tasks, timeout) in [("slowloris", slow, "1s"), ("idle", idle, "1s")] {
            for task in tasks {
                let closed_after = tokio::time::timeout(PATIENCE, task)
                    .await
                    .unwrap_or_else(|_| panic!("a {kind} connection is open after {PATIENCE:?}"))
                    .unwrap();
                // Closed by the timeout, not before.
                assert!(
                    closed_after >= Duration::from_secs(1),
                    "a {kind} connection closed after {closed_after:?}, before its {timeout}"
                );
            }
        }
        assert_eq!(get(addr, "/healthz").await, (200, "ok".to_owned()));
    });
}

#[test]
fn a_body_that_does_not_arrive_in_time_closes_the_connection() {
    let dir = TempDir::new("slow-body");
    let token = create_token(&dir.db(), "shop");
    let server = Server::start(&dir.db(), &["--body-timeout", "1s"], &[]);
    let addr = socket_addr(&server);
    runtime().block_on(async {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/projects/shop/deploy HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{\"bundle\":"
        );
        // Before the head leaves, so before the body's time starts.
        let start = Instant::now();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = [0u8; 1024];
        let answered = loop {
            tokio::select! {
                read = s.read(&mut buf) => break match read {
                    Ok(0) | Err(_) => Vec::new(),
                    Ok(n) => buf[..n].to_vec(),
                },
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    assert!(start.elapsed() < PATIENCE, "the slow body is still read");
                    if s.write_all(b" ").await.is_err() {
                        break Vec::new();
                    }
                }
            }
        };
        assert!(
            answered.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&answered)
        );
        assert!(start.elapsed() >= Duration::from_secs(1));
        assert_eq!(get(addr, "/healthz").await, (200, "ok".to_owned()));
    });
    // Nothing was deployed.
    let api = Api::new(&server, "shop", &token);
    assert_eq!(api.ok_get("/versions"), json!([]));
}

#[test]
fn a_connection_over_the_limit_is_answered_503_at_once() {
    let dir = TempDir::new("limit");
    let server = Server::start(
        &dir.db(),
        &["--max-connections", "20", "--idle-timeout", "2s"],
        &[],
    );
    let addr = socket_addr(&server);
    runtime().block_on(async {
        let mut held = Vec::new();
        for _ in 0..20 {
            held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // The 21st: answered and closed without waiting for a request.
        let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
        let seen = tokio::time::timeout(Duration::from_secs(1), until_closed(&mut over))
            .await
            .expect("the connection over the limit is closed in under a second");
        let text = String::from_utf8_lossy(&seen);
        assert!(
            text.starts_with("HTTP/1.1 503 ")
                && text.ends_with("too many connections; retry later\"}"),
            "{text}"
        );
        // The held connections go idle and are closed; then requests are served again.
        for mut s in held {
            let seen = tokio::time::timeout(PATIENCE, until_closed(&mut s))
                .await
                .expect("an idle connection is closed");
            assert!(seen.is_empty());
        }
        assert_eq!(get(addr, "/healthz").await, (200, "ok".to_owned()));
    });
}

#[test]
fn sigterm_lets_a_request_in_flight_finish() {
    let dir = TempDir::new("sigterm");
    let token = create_token_with_role(&dir.db(), "shop", "agent");
    let mut server = Server::start(&dir.db(), &[], &[]);
    let url = server.url("/v1/agent/assignments?agent=a1&location=lab");
    let client = Client::new();
    let first = client.get(&url).bearer_auth(&token).send().unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let poll = std::thread::spawn(move || {
        client
            .get(format!("{url}&wait=3"))
            .bearer_auth(&token)
            .header("if-none-match", etag)
            .send()
            .unwrap()
            .status()
    });
    let from = server.log_lines();
    // The long poll is in flight once its connection is accepted; give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    server.wait_for_log(from, &["shutting down"]);
    assert_eq!(poll.join().unwrap(), StatusCode::NOT_MODIFIED);
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}: {}", server.log());
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/PID/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kb * 1024
}

/// A failed result of `monitor` in location `lab` whose message is `size` bytes.
fn failed_result(monitor: &str, size: usize) -> Value {
    let message: String = format!("{monitor} refused the connection: ")
        .chars()
        .cycle()
        .take(size)
        .collect();
    json!({
        "id": format!("{monitor}/lab/1"),
        "monitor": monitor,
        "tick": 1,
        "result": {
            "id": monitor,
            "name": monitor,
            "target": "svc.internal:7001",
            "status": "failed",
            "error": {"kind": "refused", "message": message, "hints": []},
            "timings": {"dns_ms": 1.25, "connect_ms": 2.5, "tls_ms": null, "first_byte_ms": null, "total_ms": 12.75},
            "address": "10.0.0.1:7001",
            "attempts": [],
            "assertions": [],
            "response_excerpt": "",
            "tls": null,
            "started_at": rfc3339_now(),
        },
    })
}

fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Sends `GET path` with `token` on each of `n` new connections, then reads the first
/// 4 KiB of each answer and stops reading; the connections stay open.
fn slow_readers(addr: &str, path: &str, token: &str, n: usize) -> Vec<TcpStream> {
    let mut streams: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            let head = format!(
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    for s in &mut streams {
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut first = [0u8; 4096];
        s.read_exact(&mut first).unwrap();
        assert!(first.starts_with(b"HTTP/1.1 200 "));
    }
    streams
}

/// The largest resident memory of `pid` over two seconds.
fn peak_rss(pid: u32) -> u64 {
    (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            rss(pid)
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn slow_readers_of_a_large_page_and_metrics_share_one_snapshot() {
    const MONITORS: usize = 4000;
    const READERS: usize = 50;
    let dir = TempDir::new("slow-readers");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let (status, body) = api.deploy_raw(large_body(MONITORS, 7001), None, "");
    assert_eq!(status, StatusCode::OK, "{body}");
    // Every monitor failed with a message near the bound of a result's message: the
    // overview shows it twice (the verdict's and the bar's tooltip).
    let client = Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let poll = client
        .get(server.url("/v1/agent/assignments?agent=a1&location=lab"))
        .bearer_auth(&agent)
        .send()
        .unwrap();
    assert_eq!(poll.status(), StatusCode::OK);
    for batch in (0..MONITORS).collect::<Vec<_>>().chunks(500) {
        let results: Vec<Value> = batch
            .iter()
            .map(|&i| failed_result(&bulk_id(7001, i), 4000))
            .collect();
        let resp = client
            .post(server.url("/v1/agent/results"))
            .bearer_auth(&agent)
            .json(&json!({"agent": "a1", "location": "lab", "results": results}))
            .send()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let page = client
        .get(server.url("/"))
        .bearer_auth(&deploy)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(page.matches("<tr data-monitor=").count(), MONITORS);
    assert!(page.ends_with("</html>"));
    let metrics = client
        .get(server.url("/metrics"))
        .bearer_auth(&deploy)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(metrics.matches("probe_success{").count(), MONITORS);
    let pid = server.child.id();
    let before = peak_rss(pid);
    let pages = slow_readers(server.addr(), "/", &deploy, READERS);
    let scrapes = slow_readers(server.addr(), "/metrics", &deploy, READERS);
    let during = peak_rss(pid);
    let grown = during.saturating_sub(before);
    let (page_size, metrics_size) = (page.len() as u64, metrics.len() as u64);
    let _ = writeln!(
        std::io::stderr(),
        "page {page_size} B, metrics {metrics_size} B; resident {before} B before, {during} B with {READERS} slow readers of each: {grown} B more"
    );
    // Whole copies would cost READERS × (page + metrics); one shared snapshot and a piece
    // per reader cost a small part of it. (The overview clips error messages, so its page
    // is a few MB here: what each connection buffers weighs more next to it.)
    let whole = READERS as u64 * (page_size + metrics_size);
    assert!(
        grown < whole / 4,
        "{grown} B more with slow readers, whole copies would be {whole} B"
    );
    drop((pages, scrapes));
}

/// An answer sent before the request's body arrived whole (a refused token, a length over
/// the limit) says `connection: close`, since the server closes the connection after it:
/// a client must not send its next request on that connection. An answer after the whole
/// body keeps the connection open.
#[test]
fn answers_before_the_whole_body_close_the_connection_and_say_so() {
    let dir = TempDir::new("early-answer");
    let token = create_token(&dir.db(), "shop");
    let server = Server::start(&dir.db(), &["--max-body-bytes", "1000"], &[]);
    let addr = socket_addr(&server);
    let post = |auth: &str, length: usize, body: &str| {
        format!(
            "POST /v1/projects/shop/deploy?dry_run=true HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {auth}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n{body}"
        )
    };
    let bundle = r#"{"bundle":{"schema_version":1,"monitors":[]}}"#;
    let check = |request: String, status: &str, closes: bool| {
        runtime().block_on(async {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(request.as_bytes()).await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then (for a connection kept open) nothing more within a second.
            loop {
                match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        assert!(closes, "closed: {}", String::from_utf8_lossy(&seen));
                        break;
                    }
                    Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
                    Err(_) => {
                        assert!(!closes, "kept open: {}", String::from_utf8_lossy(&seen));
                        break;
                    }
                }
            }
            let text = String::from_utf8_lossy(&seen).to_lowercase();
            assert!(text.starts_with(&format!("http/1.1 {status}")), "{text}");
            assert_eq!(text.contains("connection: close"), closes, "{text}");
        });
    };
    // A refused token, the body not sent yet.
    check(post("mon_wrong", bundle.len(), ""), "401", true);
    // A length over the limit, refused before the body.
    check(post(&token, 5000, ""), "413", true);
    // A whole body: the connection stays open for the next request.
    check(post(&token, bundle.len(), bundle), "200", false);
}
