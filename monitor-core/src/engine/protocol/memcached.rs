//! Memcached (text protocol): the recipe (`version`, with a key a `set`/`get`/`delete`
//! round trip of a fresh value, `quit`).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::place::place;
use super::super::speak::{Context, Learned, Outcome, goodbye, mismatch, said, unavailable};
use monitor_spec::escape::escape_excerpt;
use monitor_spec::result::ErrorKind;

/// How long the round trip's value lives on the server, in seconds, should `delete` not
/// run.
pub const ROUNDTRIP_TTL_SECONDS: u32 = 60;

/// The most bytes of an unexpected answer shown in a message.
const SHOWN_BYTES: usize = 120;

/// The memcached recipe: `version` answered by `VERSION x.y.z`; with `key`, the round trip
/// ([`roundtrip`]); then `quit`.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    key: Option<&str>,
    learned: &mut Learned,
) -> Outcome {
    s.send(b"version\r\n", "sending `version`").await?;
    let reply = s.line("the reply to `version`").await?;
    if let Some(version) = reply.strip_prefix("VERSION ") {
        learned.insert("server_version".into(), version.trim().to_owned());
        if let Some(key) = key {
            roundtrip(s, cx, key).await?;
            learned.insert("roundtrip".into(), "ok".into());
        }
        return goodbye(s, cx, b"quit\r\n").await;
    }
    if reply.starts_with("SERVER_ERROR") || reply == "ERROR" {
        return Err(unavailable(
            cx,
            "memcached",
            &reply,
            vec!["check the server's logs and memory limits".to_owned()],
        ));
    }
    Err(mismatch(cx, "a memcached reply", &reply))
}

/// A value no other check sends: the time in nanoseconds, the process and a counter.
fn fresh_value() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("monitors-{nanos}-{}-{n}", std::process::id())
}

/// The failure of a command memcached answered with `reply`: `SERVER_ERROR` (out of
/// memory) and `NOT_STORED` are `service_unavailable`, anything else (`CLIENT_ERROR`,
/// `ERROR`, another answer) `unexpected_response`.
fn refused(cx: &Context<'_>, command: &str, reply: &str) -> DialogError {
    let shown = escape_excerpt(reply.as_bytes(), SHOWN_BYTES);
    if reply.starts_with("SERVER_ERROR") || reply == "NOT_STORED" {
        return unavailable(
            cx,
            "memcached",
            &format!("{command} answered {shown}"),
            vec![
                "the server cannot store: check its memory limit (-m) and evictions (stats)"
                    .to_owned(),
            ],
        );
    }
    let target = place(cx.spec, Some(cx.addr));
    said(
        cx,
        ErrorKind::UnexpectedResponse,
        format!("memcached at {target} answered {command} with `{shown}`"),
        vec!["check recipe.key is a key the server accepts".to_owned()],
    )
}

/// `set key 0 60 N` with a fresh value, `STORED`; `get key` answered by the same value;
/// `delete key` (its answer not judged: the value expires anyway).
async fn roundtrip<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    key: &str,
) -> Outcome {
    let value = fresh_value();
    let set = format!(
        "set {key} 0 {ROUNDTRIP_TTL_SECONDS} {}\r\n{value}\r\n",
        value.len()
    );
    s.send(set.as_bytes(), "sending `set`").await?;
    let reply = s.line("the reply to `set`").await?;
    if reply != "STORED" {
        return Err(refused(cx, "`set`", &reply));
    }
    s.send(format!("get {key}\r\n").as_bytes(), "sending `get`")
        .await?;
    let header = s.line("the reply to `get`").await?;
    let Some(fields) = header.strip_prefix("VALUE ") else {
        if header == "END" {
            let target = place(cx.spec, Some(cx.addr));
            return Err(said(
                cx,
                ErrorKind::UnexpectedResponse,
                format!("memcached at {target} stored key {key} but `get` found nothing"),
                vec![
                    "the value was evicted or another client deleted it: check the server's memory and who uses the key".to_owned(),
                ],
            ));
        }
        return Err(refused(cx, "`get`", &header));
    };
    let bytes = fields
        .split(' ')
        .nth(2)
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| mismatch(cx, "a memcached VALUE line", &header))?;
    // A length near usize::MAX asks for more than the connection's cap allows.
    let data = s
        .take(bytes.saturating_add(2), "the value `get` returned")
        .await?;
    let data = data.get(..bytes).unwrap_or_default();
    let end = s.line("the END after the value").await?;
    if data != value.as_bytes() {
        let target = place(cx.spec, Some(cx.addr));
        return Err(said(
            cx,
            ErrorKind::UnexpectedResponse,
            format!(
                "memcached at {target} returned `{}` for key {key}, not the value just stored",
                escape_excerpt(data, SHOWN_BYTES)
            ),
            vec![
                "another client writes the key at the same time, or the server answers for another: use a key only the monitor writes".to_owned(),
            ],
        ));
    }
    if end != "END" {
        return Err(mismatch(cx, "END after a memcached value", &end));
    }
    s.send(format!("delete {key}\r\n").as_bytes(), "sending `delete`")
        .await?;
    s.line("the reply to `delete`").await?;
    Ok(())
}
