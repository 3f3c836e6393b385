//! SMTP (RFC 5321): the STARTTLS upgrade (RFC 3207) and the recipe (banner, EHLO, with a
//! login AUTH PLAIN or LOGIN (RFC 4954), QUIT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{Context, Learned, Outcome, goodbye, unavailable, yes_no};
use super::super::upgrade::{Stage, StartTlsError, Upgrade};
use super::bytes::first_word_is;
use super::mail_login::{Credentials, busy, credentials, refused};
use super::reply::{coded_greeting, coded_reply};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;

/// The EHLO argument: printable ASCII without spaces, `localhost` if nothing is left.
fn ehlo_name(client_name: &str) -> String {
    let name: String = client_name
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

/// SMTP (RFC 5321, RFC 3207): greeting, EHLO, STARTTLS.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
    client_name: &str,
) -> Result<Option<String>, StartTlsError> {
    let greeting = conn.code_greeting(true).await?;

    let ehlo = format!("EHLO {}\r\n", ehlo_name(client_name));
    conn.send(Stage::Capabilities, ehlo.as_bytes()).await?;
    let expected = "a 250 reply to EHLO";
    let reply = conn.code_reply(Stage::Capabilities, true, expected).await?;
    if reply.code != 250 {
        return Err(conn.unexpected(expected));
    }
    // The first line is the server's name; the keywords follow the code on later lines.
    let offered = reply
        .lines
        .iter()
        .skip(1)
        .any(|line| first_word_is(line.get(4..).unwrap_or_default(), b"STARTTLS"));
    if !offered {
        return Err(conn.not_offered("its EHLO reply lists no STARTTLS"));
    }

    conn.code_upgrade("STARTTLS", true, 220, &[]).await?;
    Ok(Some(greeting))
}

/// The SMTP recipe: the 220 banner (or the one STARTTLS read), EHLO, with a login AUTH
/// ([`authenticate`]), QUIT.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    helo: &str,
    login: Option<&Login>,
    learned: &mut Learned,
) -> Outcome {
    let greeting = coded_greeting(s, cx, "an SMTP greeting", "starttls_offered", learned).await?;
    if let Some((code, lines)) = greeting.filter(|(code, _)| *code != 220) {
        return Err(unavailable(
            cx,
            "SMTP",
            &format!("{code} {}", lines.join(" ")),
            vec!["the server refuses mail sessions now (421 busy, 554 not accepting): check its logs and limits".to_owned()],
        ));
    }
    s.send(format!("EHLO {helo}\r\n").as_bytes(), "sending EHLO")
        .await?;
    let (code, lines) = coded_reply(s, cx, "an SMTP reply", "the reply to EHLO").await?;
    if code == 250 {
        let extensions: Vec<String> = lines[1..]
            .iter()
            .filter_map(|l| l.split(' ').next())
            .map(str::to_ascii_uppercase)
            .collect();
        if cx.upgraded.is_none() {
            learned.insert(
                "starttls_offered".into(),
                yes_no(extensions.iter().any(|e| e == "STARTTLS")),
            );
        }
        learned.insert("extensions".into(), extensions.join(" "));
        if let Some(login) = login {
            let mechanisms = auth_mechanisms(&lines[1..]);
            authenticate(s, cx, login, &mechanisms, learned).await?;
        }
    } else {
        return Err(unavailable(
            cx,
            "SMTP",
            &format!("EHLO answered {code} {}", lines.join(" ")),
            vec![format!(
                "check that the server accepts EHLO {helo} from this address"
            )],
        ));
    }
    goodbye(s, cx, b"QUIT\r\n").await
}

/// The SASL mechanisms of an EHLO reply's `AUTH` line (or the old `AUTH=` form),
/// upper-cased; empty when the server offers no AUTH.
fn auth_mechanisms(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|line| {
            let head = line.get(..5)?;
            (head.eq_ignore_ascii_case("AUTH ") || head.eq_ignore_ascii_case("AUTH="))
                .then(|| line.get(5..).unwrap_or_default())
        })
        .flat_map(|rest| rest.split([' ', '=']))
        .filter(|m| !m.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

/// Logs in with AUTH PLAIN when offered, else AUTH LOGIN; 235 passes and records the
/// mechanism as `auth_method` (`plain`, `login`). 535 (and any other refusal) is
/// `authentication_failed` with the server's text, 534/538 too with a hint on the
/// mechanism or TLS the server wants, 454/421 `service_unavailable`.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: &Login,
    mechanisms: &[String],
    learned: &mut Learned,
) -> Outcome {
    let creds = credentials(cx, login, "SMTP")?;
    let offers = |m: &str| mechanisms.iter().any(|o| o == m);
    let what = "the reply to AUTH";
    let (method, (code, lines)) = if offers("PLAIN") {
        let command = format!("AUTH PLAIN {}\r\n", creds.plain());
        s.send(command.as_bytes(), "sending AUTH PLAIN").await?;
        ("plain", coded_reply(s, cx, "an SMTP reply", what).await?)
    } else if offers("LOGIN") {
        s.send(b"AUTH LOGIN\r\n", "sending AUTH LOGIN").await?;
        let mut reply = coded_reply(s, cx, "an SMTP reply", what).await?;
        for (answer, sending) in [
            (creds.user, "sending the AUTH LOGIN user"),
            (creds.password, "sending the AUTH LOGIN password"),
        ] {
            if reply.0 != 334 {
                break;
            }
            let line = format!("{}\r\n", STANDARD.encode(answer));
            s.send(line.as_bytes(), sending).await?;
            reply = coded_reply(s, cx, "an SMTP reply", what).await?;
        }
        ("login", reply)
    } else {
        let (message, hint) = if mechanisms.is_empty() {
            (
                "the server offers no AUTH here".to_owned(),
                "many servers only offer AUTH after STARTTLS: set tls.mode to starttls, or check that AUTH is enabled for this port and address",
            )
        } else {
            (
                format!(
                    "the server offers AUTH {}, not PLAIN or LOGIN",
                    mechanisms.join(" ")
                ),
                "enable PLAIN or LOGIN on the server for this port (over TLS)",
            )
        };
        return Err(refused(cx, "SMTP", &creds, &message, hint));
    };
    learned.insert("auth_method".into(), method.into());
    judge_auth(cx, &creds, code, &lines.join(" "))
}

/// What the final reply to AUTH means.
fn judge_auth(cx: &Context<'_>, creds: &Credentials<'_>, code: u16, text: &str) -> Outcome {
    let said_text = format!("{code} {text}");
    match code {
        235 => Ok(()),
        454 | 421 => Err(busy(cx, "SMTP", creds, &said_text)),
        534 | 538 => Err(refused(
            cx,
            "SMTP",
            creds,
            &said_text,
            "the server wants a stronger mechanism or encryption for this login: use tls.mode starttls or direct",
        )),
        _ if (400..600).contains(&code) => Err(refused(
            cx,
            "SMTP",
            creds,
            &said_text,
            "check the user and the password (rotated?) and the server's authentication log",
        )),
        _ => Err(super::super::speak::said(
            cx,
            ErrorKind::UnexpectedResponse,
            format!("SMTP answered AUTH with {}", creds.scrub(&said_text)),
            vec!["a finished AUTH is answered 235, or 4xx/5xx when refused".to_owned()],
        )),
    }
}
