//! IMAP (RFC 3501): the STARTTLS upgrade (RFC 2595) and the recipe (greeting,
//! CAPABILITY, with a login LOGIN or AUTHENTICATE PLAIN and EXAMINE of a mailbox
//! ([`super::imap_login`]), LOGOUT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::speak::{
    Context, Learned, MAX_LINES, Outcome, goodbye, greeting_line, mismatch, turned_away, yes_no,
};
use super::super::upgrade::{Stage, StartTlsError, Upgrade};
use super::bytes::{could_start_with, lossy, words};
use super::imap_login;
use monitor_spec::login::Login;

const IMAP_CAPABILITY_TAG: &str = "a001";
const IMAP_STARTTLS_TAG: &str = "a002";

/// Whether an IMAP capability list (words) has STARTTLS.
fn lists_starttls<'a>(mut caps: impl Iterator<Item = &'a [u8]>) -> bool {
    caps.any(|w| w.eq_ignore_ascii_case(b"STARTTLS"))
}

/// The capabilities in a greeting's `[CAPABILITY ...]` response code, if it has one.
fn greeting_capabilities(line: &[u8]) -> Option<Vec<&[u8]>> {
    // "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready": the code follows the status word.
    let mut rest = line;
    for _ in 0..2 {
        let at = memchr::memchr(b' ', rest)?;
        rest = rest.get(at + 1..)?;
    }
    let inner = rest.strip_prefix(b"[")?;
    let end = memchr::memchr(b']', inner)?;
    let mut caps = words(inner.get(..end)?);
    if !caps.next()?.eq_ignore_ascii_case(b"CAPABILITY") {
        return None;
    }
    Some(caps.collect())
}

/// The status word of a tagged reply: `OK`, `NO`, `BAD`, upper-cased.
fn tagged_status(line: &[u8], tag: &str) -> Option<Vec<u8>> {
    let mut w = words(line);
    if !w.next()?.eq_ignore_ascii_case(tag.as_bytes()) {
        return None;
    }
    Some(w.next().unwrap_or_default().to_ascii_uppercase())
}

impl<S: AsyncRead + AsyncWrite + Unpin> Upgrade<S> {
    /// Sends a tagged command and reads untagged lines up to the tagged reply; returns the
    /// untagged lines and the tagged status word.
    async fn imap_command(
        &mut self,
        stage: Stage,
        tag: &str,
        command: &str,
    ) -> Result<(Vec<Vec<u8>>, Vec<u8>), StartTlsError> {
        self.send(stage, format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.begin();
        let expected = format!("untagged lines and a tagged {tag} reply to {command}");
        let tagged = format!("{tag} ");
        let plausible = |partial: &[u8]| could_start_with(partial, &[b"* ", tagged.as_bytes()]);
        let mut untagged = Vec::new();
        loop {
            let line = self.line(stage, plausible, &expected).await?;
            if line.starts_with(b"* ") {
                untagged.push(line);
            } else if let Some(status) = tagged_status(&line, tag) {
                return Ok((untagged, status));
            } else {
                return Err(self.unexpected(expected));
            }
        }
    }
}

/// IMAP (RFC 3501, RFC 2595): greeting, CAPABILITY unless the greeting lists STARTTLS,
/// STARTTLS.
pub(crate) async fn starttls<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Upgrade<S>,
) -> Result<Option<String>, StartTlsError> {
    conn.begin();
    let expected = "an IMAP greeting (* OK)";
    let line = conn
        .line(Stage::Greeting, |p| could_start_with(p, &[b"* "]), expected)
        .await?;
    let status = words(&line).nth(1).unwrap_or_default().to_ascii_uppercase();
    if !line.starts_with(b"* ") {
        return Err(conn.unexpected(expected));
    }
    match status.as_slice() {
        b"OK" | b"PREAUTH" => {}
        b"BYE" => {
            return Err(conn.turned_away("it greeted with BYE, turning the connection away"));
        }
        _ => return Err(conn.unexpected(expected)),
    }
    let greeting = lossy(&line);

    let in_greeting =
        greeting_capabilities(&line).is_some_and(|caps| lists_starttls(caps.into_iter()));
    if !in_greeting {
        let (untagged, status) = conn
            .imap_command(Stage::Capabilities, IMAP_CAPABILITY_TAG, "CAPABILITY")
            .await?;
        if status != b"OK" {
            return Err(conn.unexpected("a tagged OK reply to CAPABILITY"));
        }
        let offered = untagged.iter().any(|line| {
            let mut w = words(line).skip(1);
            w.next()
                .is_some_and(|k| k.eq_ignore_ascii_case(b"CAPABILITY"))
                && lists_starttls(w)
        });
        if !offered {
            return Err(conn.not_offered("its CAPABILITY response lists no STARTTLS"));
        }
    }

    let (_, status) = conn
        .imap_command(Stage::Upgrade, IMAP_STARTTLS_TAG, "STARTTLS")
        .await?;
    match status.as_slice() {
        b"OK" => {}
        b"NO" | b"BAD" => {
            return Err(conn.refused(format!("it answered {} to STARTTLS", lossy(&status))));
        }
        _ => return Err(conn.unexpected("a tagged OK reply to STARTTLS")),
    }
    conn.drained("the tagged OK reply to STARTTLS")?;
    Ok(Some(greeting))
}

/// The IMAP recipe: the `* OK` greeting, CAPABILITY, with a login the login and EXAMINE
/// ([`imap_login::session`]), LOGOUT.
pub(crate) async fn recipe<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: Option<&Login>,
    learned: &mut Learned,
) -> Outcome {
    let greeting = greeting_line(s, cx, "the IMAP greeting").await?;
    learned.insert(
        "greeting".into(),
        greeting.trim_start_matches("* ").to_owned(),
    );
    if let Some(text) = greeting.strip_prefix("* BYE") {
        return Err(turned_away(cx, "IMAP", text));
    }
    if !(greeting.starts_with("* OK") || greeting.starts_with("* PREAUTH")) {
        return Err(mismatch(cx, "an IMAP greeting (`* OK`)", &greeting));
    }
    s.send(b"m1 CAPABILITY\r\n", "sending CAPABILITY").await?;
    let mut caps_seen: Option<String> = None;
    for _ in 0..MAX_LINES {
        let line = s.line("the reply to CAPABILITY").await?;
        if let Some(caps) = line.strip_prefix("* CAPABILITY ") {
            caps_seen = Some(caps.to_owned());
            learned.insert("capabilities".into(), caps.to_owned());
            if cx.upgraded.is_none() {
                let offered = caps.split(' ').any(|c| c.eq_ignore_ascii_case("STARTTLS"));
                learned.insert("starttls_offered".into(), yes_no(offered));
            }
        } else if line.starts_with("m1 ") {
            if !line.starts_with("m1 OK") {
                return Err(mismatch(cx, "an IMAP answer to CAPABILITY", &line));
            }
            if cx.upgraded.is_some() {
                learned.insert("starttls_offered".into(), yes_no(true));
            }
            let Some(login) = login else {
                return goodbye(s, cx, b"m2 LOGOUT\r\n").await;
            };
            let preauth = greeting.starts_with("* PREAUTH");
            imap_login::session(s, cx, login, preauth, caps_seen.as_deref(), learned).await?;
            return goodbye(s, cx, b"m4 LOGOUT\r\n").await;
        }
    }
    Err(mismatch(
        cx,
        "an IMAP answer to CAPABILITY",
        "too many lines",
    ))
}
