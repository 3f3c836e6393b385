//! FTP (RFC 959): the STARTTLS upgrade (`AUTH TLS`, RFC 4217) and the recipe (banner,
//! with a login USER/PASS and PWD, QUIT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::speak::{Context, Learned, Outcome, goodbye, mismatch, unavailable};
use super::super::upgrade::{StartTlsError, Upgrade};
use super::mail_login::{Credentials, busy, credentials, refused};
use super::reply::{coded_greeting, coded_reply};
use monitor_spec::login::Login;

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

/// The FTP recipe: the 220 banner (or the one STARTTLS read), with a login [`session`],
/// then QUIT.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: Option<&Login>,
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
    if let Some(login) = login {
        session(s, cx, login, learned).await?;
    }
    goodbye(s, cx, b"QUIT\r\n").await
}

/// What a reply to USER or PASS other than 230/331 means: 421 (and other 4xx: too many
/// connections, shutting down) `service_unavailable`, 530 (and other 5xx, 332 "need an
/// account") `authentication_failed`.
fn judge(cx: &Context<'_>, creds: &Credentials<'_>, code: u16, text: &str) -> DialogError {
    let said_text = format!("{code} {text}");
    match code {
        400..=499 => busy(cx, "FTP", creds, &said_text),
        332 => refused(
            cx,
            "FTP",
            creds,
            &said_text,
            "the server asks for an account (ACCT), which the monitor does not send",
        ),
        500..=599 => refused(
            cx,
            "FTP",
            creds,
            &said_text,
            "check the user and the password (rotated?), that the user may log in over FTP, and the server's log",
        ),
        _ => mismatch(cx, "an FTP answer to the login", &creds.scrub(&said_text)),
    }
}

/// Logs in with USER and PASS (a 230 to USER needs no password), then PWD: fact
/// `directory`, the user's working directory. Over `AUTH TLS` only the control channel
/// is encrypted; no data channel is opened, so PBSZ and PROT are not needed.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: &Login,
    learned: &mut Learned,
) -> Outcome {
    let creds = credentials(cx, login, "FTP")?;
    s.send(
        format!("USER {}\r\n", creds.user).as_bytes(),
        "sending USER",
    )
    .await?;
    let (mut code, mut lines) = coded_reply(s, cx, "an FTP reply", "the reply to USER").await?;
    if code == 331 {
        s.send(
            format!("PASS {}\r\n", creds.password).as_bytes(),
            "sending PASS",
        )
        .await?;
        (code, lines) = coded_reply(s, cx, "an FTP reply", "the reply to PASS").await?;
    }
    if !matches!(code, 230 | 202) {
        return Err(judge(cx, &creds, code, &lines.join(" ")));
    }
    s.send(b"PWD\r\n", "sending PWD").await?;
    let (code, lines) = coded_reply(s, cx, "an FTP reply", "the reply to PWD").await?;
    let directory = (code == 257)
        .then(|| lines.first().and_then(|l| quoted_path(l)))
        .flatten();
    let Some(directory) = directory else {
        return Err(mismatch(
            cx,
            "an FTP answer to PWD (257 \"/path\")",
            &creds.scrub(&format!("{code} {}", lines.join(" "))),
        ));
    };
    learned.insert("directory".into(), directory);
    Ok(())
}

/// The path of a 257 reply: the first quoted string, `""` inside it an escaped quote
/// (RFC 959 appendix II).
fn quoted_path(text: &str) -> Option<String> {
    let rest = text.get(text.find('"')? + 1..)?;
    let mut path = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                path.push('"');
            } else {
                return Some(path);
            }
        } else {
            path.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::quoted_path;

    #[test]
    fn pwd_paths_unquote() {
        assert_eq!(
            quoted_path(r#"257 "/home/u" is the current directory"#).as_deref(),
            Some("/home/u")
        );
        assert_eq!(quoted_path(r#""/a ""b""" x"#).as_deref(), Some(r#"/a "b""#));
        assert_eq!(quoted_path("no quote"), None);
        assert_eq!(quoted_path(r#""unterminated"#), None);
    }
}
