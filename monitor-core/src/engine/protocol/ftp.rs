//! FTP (RFC 959): the STARTTLS upgrade (`AUTH TLS`, RFC 4217) and the recipe (banner, QUIT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{Context, Learned, Outcome, goodbye, mismatch, unavailable, yes_no};
use super::super::upgrade::{Stage, StartTlsError, Upgrade};
use super::reply::{coded_reply, strip_code};

/// FTP (RFC 4217): greeting, AUTH TLS.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
) -> Result<Option<String>, StartTlsError> {
    let greeting = conn.code_greeting(false).await?;

    conn.send(Stage::Upgrade, b"AUTH TLS\r\n").await?;
    let expected = "a 234 reply to AUTH TLS";
    let reply = conn.code_reply(Stage::Upgrade, false, expected).await?;
    match reply.code {
        234 => {}
        // 530 "please login": a server that knows no AUTH before login (vsftpd without
        // ssl_enable) has no TLS to offer.
        500 | 502 | 504 | 530 => {
            return Err(conn.not_offered(format!("it answered {} to AUTH TLS", reply.code)));
        }
        400..=599 => {
            return Err(conn.refused(format!("it answered {} to AUTH TLS", reply.code)));
        }
        _ => return Err(conn.unexpected(expected)),
    }
    conn.drained("the 234 reply to AUTH TLS")?;
    Ok(Some(greeting))
}

pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    learned: &mut Learned,
) -> Outcome {
    match cx.upgraded {
        Some(pre) => {
            learned.insert(
                "banner".into(),
                strip_code(pre.greeting.as_deref().unwrap_or_default().as_bytes()),
            );
            learned.insert("auth_tls".into(), yes_no(true));
        }
        None => {
            let (code, lines) = coded_reply(s, cx, "an FTP greeting", "the FTP greeting").await?;
            learned.insert("banner".into(), lines[0].clone());
            match code {
                220 => {}
                120 | 421 => {
                    return Err(unavailable(
                        cx,
                        "FTP",
                        &format!("{code} {}", lines.join(" ")),
                        vec![
                            "the server is busy or starting: check its connection limits and logs"
                                .to_owned(),
                        ],
                    ));
                }
                _ => {
                    return Err(mismatch(
                        cx,
                        "an FTP greeting (220)",
                        &format!("{code} {}", lines.join(" ")),
                    ));
                }
            }
        }
    }
    goodbye(s, cx, b"QUIT\r\n").await
}
