//! Memcached (text protocol): the recipe (`version`, `quit`).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{Context, Learned, Outcome, goodbye, mismatch, unavailable};

/// The memcached recipe: `version` answered by `VERSION x.y.z`, then `quit`.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    s.send(b"version\r\n", "sending `version`").await?;
    let reply = s.line("the reply to `version`").await?;
    if let Some(version) = reply.strip_prefix("VERSION ") {
        learned.insert("server_version".into(), version.trim().to_owned());
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
