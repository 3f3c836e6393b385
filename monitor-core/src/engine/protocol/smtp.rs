//! SMTP (RFC 5321): the STARTTLS upgrade (RFC 3207) and the recipe (banner, EHLO, QUIT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{Context, Learned, Outcome, goodbye, unavailable, yes_no};
use super::super::upgrade::{Stage, StartTlsError, Upgrade};
use super::bytes::first_word_is;
use super::reply::{coded_greeting, coded_reply};

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

/// The SMTP recipe: the 220 banner (or the one STARTTLS read), EHLO, QUIT.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    helo: &str,
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
