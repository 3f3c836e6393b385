//! The IMAP login (RFC 3501, RFC 4616, RFC 4959): LOGIN with quoted strings (literals for
//! what cannot be quoted), or AUTHENTICATE PLAIN when the server says `LOGINDISABLED`;
//! then EXAMINE of the login's mailbox for its message count, and the server's refusals
//! sorted into the kinds a pager acts on.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::place::place;
use super::super::speak::{Context, Learned, MAX_LINES, mismatch, said};
use super::mail_login::{Credentials, busy, credentials, refused, response_code};
use monitor_spec::login::Login;
use monitor_spec::result::ErrorKind;

/// The mailbox a login examines when it names none.
pub const DEFAULT_MAILBOX: &str = "INBOX";

const LOGIN_TAG: &str = "m2";
const EXAMINE_TAG: &str = "m3";

/// Whether `s` can travel as an IMAP quoted string (printable ASCII and spaces).
fn quotable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// `s` as an IMAP quoted string: `"` and `\` escaped.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether `line` starts with `prefix`, ignoring ASCII case; the rest when it does.
fn strip_ci<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| line.get(prefix.len()..).unwrap_or_default())
}

/// Sends `tag verb args...`, each argument quoted, or as a synchronizing literal (`{n}`,
/// its bytes sent after the server's `+`) when it cannot be quoted. `Some(line)` when the
/// server answered a literal with something other than `+` (its refusal, read on by
/// [`tagged`]).
async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    tag: &str,
    verb: &str,
    args: &[&str],
    sending: &str,
) -> Result<Option<String>, DialogError> {
    let mut pending = format!("{tag} {verb}").into_bytes();
    for arg in args {
        pending.push(b' ');
        if quotable(arg) {
            pending.extend_from_slice(quoted(arg).as_bytes());
            continue;
        }
        pending.extend_from_slice(format!("{{{}}}\r\n", arg.len()).as_bytes());
        s.send(&pending, sending).await?;
        pending.clear();
        let mut line = s.line("the server's + for a literal").await?;
        for _ in 0..MAX_LINES {
            if !line.starts_with("* ") || strip_ci(&line, "* BYE").is_some() {
                break;
            }
            line = s.line("the server's + for a literal").await?;
        }
        if !line.starts_with('+') {
            return Ok(Some(line));
        }
        pending.extend_from_slice(arg.as_bytes());
    }
    pending.extend_from_slice(b"\r\n");
    s.send(&pending, sending).await?;
    Ok(None)
}

/// Reads up to the tagged reply to `tag` (`first` a line already read): the untagged
/// lines and the words after the tag (`OK ...`, `NO [CODE] ...`). An untagged `BYE`
/// fails as `service_unavailable`.
async fn tagged<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    creds: &Credentials<'_>,
    tag: &str,
    what: &str,
    mut first: Option<String>,
) -> Result<(Vec<String>, String), DialogError> {
    let mut untagged = Vec::new();
    for _ in 0..MAX_LINES {
        let line = match first.take() {
            Some(line) => line,
            None => s.line(what).await?,
        };
        if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
            return Ok((untagged, rest.to_owned()));
        }
        if let Some(text) = strip_ci(&line, "* BYE") {
            return Err(busy(cx, "IMAP", creds, text));
        }
        if !line.starts_with('*') {
            return Err(mismatch(cx, what, &creds.scrub(&line)));
        }
        untagged.push(line);
    }
    Err(mismatch(cx, what, "too many lines"))
}

/// The status word of a tagged reply's words (`OK`, `NO`, `BAD`) and the rest.
fn status(reply: &str) -> (String, &str) {
    let (word, rest) = reply.split_once(' ').unwrap_or((reply, ""));
    (word.to_ascii_uppercase(), rest)
}

/// Logs in (LOGIN, or AUTHENTICATE PLAIN when `caps` has `LOGINDISABLED`; nothing after a
/// `PREAUTH` greeting) and examines the login's mailbox: facts `auth_method` (`login`,
/// `plain`, `preauth`), `mailbox` and `entry_count` (its EXISTS).
///
/// EXAMINE is the read-only SELECT (RFC 3501 section 6.3.2): the check never changes a
/// message's flags (`\Recent`, `\Seen`), however often it runs.
pub(crate) async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    login: &Login,
    preauth: bool,
    caps: Option<&str>,
    learned: &mut Learned,
) -> Result<(), DialogError> {
    let creds = credentials(cx, login, "IMAP")?;
    let mailbox = login.query_or(DEFAULT_MAILBOX);
    if mailbox.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(said(
            cx,
            ErrorKind::Config,
            "the IMAP mailbox (recipe.login.query) holds a line break or NUL".to_owned(),
            vec!["name the mailbox as the server lists it".to_owned()],
        ));
    }
    let caps: Vec<String> = caps
        .unwrap_or_default()
        .split(' ')
        .map(str::to_ascii_uppercase)
        .collect();
    let has = |c: &str| caps.iter().any(|o| o == c);
    let what = "the reply to the login";
    let method = if preauth {
        "preauth"
    } else if !has("LOGINDISABLED") {
        let first = command(
            s,
            LOGIN_TAG,
            "LOGIN",
            &[creds.user, creds.password],
            "sending LOGIN",
        )
        .await?;
        judge_login(s, cx, &creds, what, first).await?;
        "login"
    } else if has("AUTH=PLAIN") {
        let plain = creds.plain();
        let first = if has("SASL-IR") {
            let line = format!("{LOGIN_TAG} AUTHENTICATE PLAIN {plain}\r\n");
            s.send(line.as_bytes(), "sending AUTHENTICATE PLAIN")
                .await?;
            None
        } else {
            let line = format!("{LOGIN_TAG} AUTHENTICATE PLAIN\r\n");
            s.send(line.as_bytes(), "sending AUTHENTICATE PLAIN")
                .await?;
            let answer = s.line(what).await?;
            if answer.starts_with('+') {
                s.send(format!("{plain}\r\n").as_bytes(), "sending the credentials")
                    .await?;
                None
            } else {
                Some(answer)
            }
        };
        judge_login(s, cx, &creds, what, first).await?;
        "plain"
    } else {
        return Err(refused(
            cx,
            "IMAP",
            &creds,
            "the server disables LOGIN here (LOGINDISABLED) and offers no AUTH=PLAIN",
            "servers disable LOGIN until the session is encrypted: set tls.mode to starttls or direct",
        ));
    };
    learned.insert("auth_method".into(), method.into());

    let first = command(s, EXAMINE_TAG, "EXAMINE", &[mailbox], "sending EXAMINE").await?;
    let (untagged, reply) =
        tagged(s, cx, &creds, EXAMINE_TAG, "the reply to EXAMINE", first).await?;
    let (word, text) = status(&reply);
    if word != "OK" {
        if matches!(
            response_code(text).as_deref(),
            Some("UNAVAILABLE" | "LIMIT")
        ) {
            return Err(busy(cx, "IMAP", &creds, text));
        }
        let target = place(cx.spec, Some(cx.addr));
        return Err(said(
            cx,
            ErrorKind::AccessDenied,
            format!(
                "IMAP at {target} let user {} in but not into mailbox {mailbox}: {word} {}",
                creds.user,
                creds.scrub(text)
            ),
            vec!["check the mailbox name (recipe.login.query, INBOX by default) and the user's rights on it".to_owned()],
        ));
    }
    let exists = untagged.iter().find_map(|line| {
        let rest = line.strip_prefix("* ")?;
        let (count, word) = rest.split_once(' ')?;
        word.trim()
            .eq_ignore_ascii_case("EXISTS")
            .then(|| count.parse::<u64>().ok())
            .flatten()
    });
    let Some(exists) = exists else {
        return Err(mismatch(
            cx,
            "an EXAMINE reply with an EXISTS count",
            &creds.scrub(&reply),
        ));
    };
    learned.insert("mailbox".into(), mailbox.to_owned());
    learned.insert("entry_count".into(), exists.to_string());
    Ok(())
}

/// The tagged reply to LOGIN or AUTHENTICATE: OK passes; `[UNAVAILABLE]`, `[LIMIT]` (or a
/// BYE) are `service_unavailable`; any other NO or BAD `authentication_failed`.
async fn judge_login<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    creds: &Credentials<'_>,
    what: &str,
    first: Option<String>,
) -> Result<(), DialogError> {
    let (_, reply) = tagged(s, cx, creds, LOGIN_TAG, what, first).await?;
    let (word, text) = status(&reply);
    if word == "OK" {
        return Ok(());
    }
    if matches!(
        response_code(text).as_deref(),
        Some("UNAVAILABLE" | "LIMIT")
    ) {
        return Err(busy(cx, "IMAP", creds, text));
    }
    Err(refused(
        cx,
        "IMAP",
        creds,
        &format!("{word} {text}"),
        "check the user and the password (rotated?) and the server's authentication log",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_or_left_to_literals() {
        assert!(quotable("pa ss\"\\"));
        assert!(!quotable("pässword"));
        assert!(!quotable("a\tb"));
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted(""), "\"\"");
    }

    #[test]
    fn statuses_split() {
        assert_eq!(status("OK done"), ("OK".to_owned(), "done"));
        assert_eq!(status("no [LIMIT] x"), ("NO".to_owned(), "[LIMIT] x"));
        assert_eq!(status("BAD"), ("BAD".to_owned(), ""));
        assert_eq!(strip_ci("* bye now", "* BYE"), Some(" now"));
        assert_eq!(strip_ci("*", "* BYE"), None);
    }
}
