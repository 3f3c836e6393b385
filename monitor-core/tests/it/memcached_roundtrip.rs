//! The Memcached recipe with a key: the `set`/`get`/`delete` round trip of a fresh value
//! against the real Debian memcached, and a scripted server that answers the `set` or the
//! `get` wrongly (another value, nothing, `SERVER_ERROR`, `NOT_STORED`, `CLIENT_ERROR`).

use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader, Lines};
use tokio::net::TcpListener;
use tokio::net::tcp::OwnedReadHalf;

use monitor_core::{CheckResult, Engine, ErrorKind, Recipe, TcpMonitor};

use crate::live::data::memcached;

fn monitor(port: u16, key: &str) -> TcpMonitor {
    TcpMonitor::new("memcached-roundtrip", "127.0.0.1", port)
        .recipe(Recipe::Memcached {
            key: Some(key.to_owned()),
        })
        .timeouts(2_000, 2_000, 5_000)
        .thresholds(4_000, 5_000)
}

async fn check(spec: TcpMonitor) -> CheckResult {
    Engine::new().check(&spec.validate().expect("valid")).await
}

/// `command` sent to memcached at `port` over a plain socket; the answer up to `END`
/// or the first line that is not a `VALUE` block.
fn ask(port: u16, command: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(command.as_bytes()).unwrap();
    let mut reader = BufReader::new(s);
    let mut answer = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        answer.push_str(&line);
        if line.is_empty() || line == "END\r\n" || !answer.starts_with("VALUE ") {
            break;
        }
    }
    answer
}

#[tokio::test]
async fn the_real_memcached_stores_returns_and_deletes_a_fresh_value() {
    let live = memcached();
    // A stale value under the key is overwritten, not read back as if fresh.
    let stored = ask(live.port, "set monitors:probe 0 60 5\r\nstale\r\n");
    assert_eq!(stored, "STORED\r\n");
    for _ in 0..2 {
        let r = check(monitor(live.port, "monitors:probe")).await;
        assert!(r.error.is_none(), "{}\n{}", r.to_json(), live.log());
        assert_eq!(r.facts["roundtrip"], "ok");
        assert!(r.facts.contains_key("server_version"));
    }
    // The round trip deleted its key.
    assert_eq!(ask(live.port, "get monitors:probe\r\n"), "END\r\n");
    let mut s = TcpStream::connect(("127.0.0.1", live.port)).unwrap();
    s.write_all(b"quit\r\n").unwrap();
    let _ = s.read_to_end(&mut Vec::new());
}

/// What the scripted server answers.
#[derive(Clone, Copy)]
enum Script {
    /// `set` answered by this line.
    Set(&'static str),
    /// `set` stored; `get` answered by these bytes.
    Get(&'static str),
    /// `set` stored; `get` answered by the value sent, then `delete` and `quit`.
    Honest,
}

/// The next line the client sent, without its line ending; empty at the end.
async fn next(lines: &mut Lines<AsyncBufReader<OwnedReadHalf>>) -> String {
    lines.next_line().await.ok().flatten().unwrap_or_default()
}

/// A memcached that answers `version`, then follows `script`.
async fn scripted(script: Script) -> CheckResult {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (read, mut write) = s.into_split();
        let mut lines = AsyncBufReader::new(read).lines();
        assert_eq!(next(&mut lines).await, "version");
        write.write_all(b"VERSION 1.6.99\r\n").await.unwrap();
        let set = next(&mut lines).await;
        assert!(set.starts_with("set monitors:probe 0 60 "), "{set}");
        let value = next(&mut lines).await;
        assert_eq!(
            set.rsplit(' ').next(),
            Some(value.len().to_string().as_str())
        );
        let reply = match script {
            Script::Set(line) => format!("{line}\r\n"),
            Script::Get(_) | Script::Honest => "STORED\r\n".to_owned(),
        };
        write.write_all(reply.as_bytes()).await.unwrap();
        if let Script::Set(_) = script {
            return value;
        }
        assert_eq!(next(&mut lines).await, "get monitors:probe");
        let reply = match script {
            Script::Get(bytes) => bytes.to_owned(),
            _ => format!(
                "VALUE monitors:probe 0 {}\r\n{value}\r\nEND\r\n",
                value.len()
            ),
        };
        write.write_all(reply.as_bytes()).await.unwrap();
        if let Script::Honest = script {
            assert_eq!(next(&mut lines).await, "delete monitors:probe");
            write.write_all(b"DELETED\r\n").await.unwrap();
            assert_eq!(next(&mut lines).await, "quit");
        }
        value
    });
    let r = check(monitor(port, "monitors:probe")).await;
    let value = server.await.unwrap();
    assert!(value.starts_with("monitors-"), "{value}");
    r
}

#[tokio::test]
async fn a_scripted_server_that_returns_the_value_passes() {
    let r = scripted(Script::Honest).await;
    assert!(r.error.is_none(), "{}", r.to_json());
    assert_eq!(r.facts["roundtrip"], "ok");
}

#[tokio::test]
async fn another_value_back_is_an_unexpected_response_naming_it() {
    let r = scripted(Script::Get("VALUE monitors:probe 0 5\r\nother\r\nEND\r\n")).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::UnexpectedResponse, "{}", r.to_json());
    assert!(e.message.contains("`other`"), "{}", e.message);
    assert!(!r.facts.contains_key("roundtrip"));
    // Nothing back.
    let r = scripted(Script::Get("END\r\n")).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::UnexpectedResponse, "{}", r.to_json());
    assert!(e.message.contains("found nothing"), "{}", e.message);
    // A length past what was sent is bounded by the connection, not trusted.
    let r = scripted(Script::Get(
        "VALUE monitors:probe 0 18446744073709551615\r\nx",
    ))
    .await;
    assert!(r.error.is_some(), "{}", r.to_json());
}

#[tokio::test]
async fn a_server_that_cannot_store_is_unavailable_and_a_client_error_unexpected() {
    for line in ["SERVER_ERROR out of memory storing object", "NOT_STORED"] {
        let r = scripted(Script::Set(line)).await;
        let e = r.error.as_ref().expect("an error");
        assert_eq!(e.kind, ErrorKind::ServiceUnavailable, "{}", r.to_json());
        assert!(e.message.contains(line), "{}", e.message);
    }
    let r = scripted(Script::Get("SERVER_ERROR out of memory\r\n")).await;
    assert_eq!(r.error.unwrap().kind, ErrorKind::ServiceUnavailable);
    let r = scripted(Script::Set("CLIENT_ERROR bad data chunk")).await;
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.kind, ErrorKind::UnexpectedResponse, "{}", r.to_json());
    assert!(
        e.message.contains("CLIENT_ERROR bad data chunk"),
        "{}",
        e.message
    );
}
