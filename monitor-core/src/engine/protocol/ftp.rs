//! FTP (RFC 959): the STARTTLS upgrade (`AUTH TLS`, RFC 4217) and the recipe (banner, QUIT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{Context, Learned, Outcome, goodbye, mismatch, unavailable};
use super::super::upgrade::{StartTlsError, Upgrade};
use super::reply::coded_greeting;

/// FTP (RFC 4217): greeting, AUTH TLS.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
) -> Result<Option<String>, StartTlsError> {
    let greeting = conn.code_greeting(false).await?;

    // 530 "please login": a server that knows no AUTH before login (vsftpd without
    // ssl_enable) has no TLS to offer.
    conn.code_upgrade("AUTH TLS", false, 234, &[500, 502, 504, 530])
        .await?;
    Ok(Some(greeting))
}

/// The FTP recipe: the 220 banner (or the one STARTTLS read), then QUIT.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    let greeting = coded_greeting(s, cx, "an FTP greeting", "auth_tls", learned).await?;
    if let Some((code, lines)) = greeting.filter(|(code, _)| *code != 220) {
        let text = format!("{code} {}", lines.join(" "));
        return Err(match code {
            120 | 421 => unavailable(
                cx,
                "FTP",
                &text,
                vec![
                    "the server is busy or starting: check its connection limits and logs"
                        .to_owned(),
                ],
            ),
            _ => mismatch(cx, "an FTP greeting (220)", &text),
        });
    }
    goodbye(s, cx, b"QUIT\r\n").await
}
