//! POP3 (RFC 1939): the STARTTLS upgrade (`STLS`, RFC 2595) and the recipe (greeting,
//! CAPA, with a login USER/PASS and STAT, QUIT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::speak::{
    Context, Learned, MAX_LINES, Outcome, goodbye, greeting_line, mismatch, turned_away, yes_no,
};
use super::super::upgrade::{Stage, StartTlsError, Upgrade};
use super::bytes::{could_start_with, first_word_is, lossy, starts_with_ci};
use super::mail_login::{Credentials, busy, credentials, refused, response_code};
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;

/// `Some(true)` for `+OK`, `Some(false)` for `-ERR`, `None` for anything else.
fn pop3_status(line: &[u8]) -> Option<bool> {
    let ends_word = |n: usize| line.get(n).is_none_or(|b| *b == b' ');
    if starts_with_ci(line, b"+OK") && ends_word(3) {
        Some(true)
    } else if starts_with_ci(line, b"-ERR") && ends_word(4) {
        Some(false)
    } else {
        None
    }
}

fn could_be_pop3_status(partial: &[u8]) -> bool {
    could_start_with(partial, &[b"+OK", b"-ERR"])
}

/// Reads the next reply line, which must be `+OK`: `-ERR` fails with `err` (refused, or
/// not offered in the capability query).
async fn ok_line<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
    stage: Stage,
    expected: &str,
    err: &str,
) -> Result<Vec<u8>, StartTlsError> {
    conn.begin();
    let line = conn.line(stage, could_be_pop3_status, expected).await?;
    match pop3_status(&line) {
        Some(true) => Ok(line),
        Some(false) if stage == Stage::Capabilities => Err(conn.not_offered(err)),
        Some(false) if stage == Stage::Greeting => Err(conn.turned_away(err)),
        Some(false) => Err(conn.refused(err)),
        None => Err(conn.unexpected(expected)),
    }
}

/// POP3 (RFC 2449, RFC 2595): greeting, CAPA, STLS.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
) -> Result<Option<String>, StartTlsError> {
    let line = ok_line(
        conn,
        Stage::Greeting,
        "a +OK greeting",
        "it greeted with -ERR, turning the connection away",
    )
    .await?;
    let greeting = lossy(&line);

    conn.send(Stage::Capabilities, b"CAPA\r\n").await?;
    ok_line(
        conn,
        Stage::Capabilities,
        "a +OK or -ERR reply to CAPA",
        "it answered -ERR to CAPA, so it lists no STLS",
    )
    .await?;
    let mut offered = false;
    loop {
        let line = conn
            .line(Stage::Capabilities, |_| true, "a CAPA list ending with .")
            .await?;
        if line == b"." {
            break;
        }
        offered |= first_word_is(&line, b"STLS");
    }
    if !offered {
        return Err(conn.not_offered("its CAPA list has no STLS"));
    }

    conn.send(Stage::Upgrade, b"STLS\r\n").await?;
    ok_line(
        conn,
        Stage::Upgrade,
        "a +OK reply to STLS",
        "it answered -ERR to STLS",
    )
    .await?;
    conn.drained("the +OK reply to STLS")?;
    Ok(Some(greeting))
}

/// The POP3 recipe: the `+OK` greeting, CAPA, with a login [`session`], QUIT.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: Option<&Login>,
    learned: &mut Learned,
) -> Outcome {
    let greeting = greeting_line(s, cx, "the POP3 greeting").await?;
    if let Some(text) = greeting.strip_prefix("-ERR") {
        return Err(turned_away(cx, "POP3", text));
    }
    let Some(text) = greeting.strip_prefix("+OK") else {
        return Err(mismatch(cx, "a POP3 greeting (`+OK`)", &greeting));
    };
    learned.insert("greeting".into(), text.trim().to_owned());
    s.send(b"CAPA\r\n", "sending CAPA").await?;
    let status = s.line("the reply to CAPA").await?;
    if status.starts_with("+OK") {
        let mut caps = Vec::new();
        for _ in 0..MAX_LINES {
            let line = s.line("the capability list").await?;
            if line == "." {
                break;
            }
            caps.push(line);
        }
        if cx.upgraded.is_none() {
            let offered = caps.iter().any(|c| c.eq_ignore_ascii_case("STLS"));
            learned.insert("starttls_offered".into(), yes_no(offered));
        } else {
            learned.insert("starttls_offered".into(), yes_no(true));
        }
        learned.insert("capabilities".into(), caps.join(" "));
    } else if !status.starts_with("-ERR") {
        return Err(mismatch(cx, "a POP3 answer to CAPA", &status));
    }
    if let Some(login) = login {
        session(s, cx, login, learned).await?;
    }
    goodbye(s, cx, b"QUIT\r\n").await
}

/// What a `-ERR` to USER or PASS means: `[IN-USE]` (the maildrop is locked by another
/// session), `[SYS/TEMP]` and `[LOGIN-DELAY]` are `service_unavailable`, anything else
/// (`[AUTH]`, `[SYS/PERM]`, no code) `authentication_failed`.
fn judge_err(cx: &Context<'_>, creds: &Credentials<'_>, text: &str) -> DialogError {
    match response_code(text).as_deref() {
        Some("IN-USE" | "SYS/TEMP" | "LOGIN-DELAY") => busy(cx, "POP3", creds, text),
        _ => refused(
            cx,
            "POP3",
            creds,
            &format!("-ERR {}", text.trim()),
            "check the user and the password (rotated?) and the server's authentication log",
        ),
    }
}

/// Logs in with USER and PASS, then STAT: facts `entry_count` (messages in the maildrop)
/// and `maildrop_bytes` (their size). Nothing is retrieved or deleted.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: &Login,
    learned: &mut Learned,
) -> Outcome {
    let creds = credentials(cx, login, "POP3")?;
    for (line, sending, what) in [
        (
            format!("USER {}\r\n", creds.user),
            "sending USER",
            "the reply to USER",
        ),
        (
            format!("PASS {}\r\n", creds.password),
            "sending PASS",
            "the reply to PASS",
        ),
    ] {
        s.send(line.as_bytes(), sending).await?;
        let reply = s.line(what).await?;
        match pop3_status(reply.as_bytes()) {
            Some(true) => {}
            Some(false) => {
                return Err(judge_err(cx, &creds, reply.get(4..).unwrap_or_default()));
            }
            None => {
                return Err(mismatch(
                    cx,
                    "a POP3 answer to the login",
                    &creds.scrub(&reply),
                ));
            }
        }
    }
    learned.insert("auth_method".into(), "user".into());
    s.send(b"STAT\r\n", "sending STAT").await?;
    let reply = s.line("the reply to STAT").await?;
    let mut words = reply.split(' ');
    let counts = match (words.next(), words.next(), words.next()) {
        (Some(ok), Some(n), Some(bytes)) if ok.eq_ignore_ascii_case("+OK") => {
            n.parse::<u64>().ok().zip(bytes.trim().parse::<u64>().ok())
        }
        _ => None,
    };
    let Some((messages, bytes)) = counts else {
        if pop3_status(reply.as_bytes()) == Some(false) {
            return Err(super::super::speak::said(
                cx,
                ErrorKind::QueryFailed,
                format!(
                    "POP3 let user {} in but refused STAT: {}",
                    creds.user,
                    creds.scrub(&reply)
                ),
                vec!["check the maildrop's permissions and the server's log".to_owned()],
            ));
        }
        return Err(mismatch(
            cx,
            "a POP3 answer to STAT (+OK n size)",
            &creds.scrub(&reply),
        ));
    };
    learned.insert("entry_count".into(), messages.to_string());
    learned.insert("maildrop_bytes".into(), bytes.to_string());
    Ok(())
}
