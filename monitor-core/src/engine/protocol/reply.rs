//! Replies with three-digit codes (SMTP, FTP; RFC 5321 section 4.2, RFC 959 section 4.2):
//! the one parser of `NNN-` and `NNN ` lines, and reading a whole reply for STARTTLS and
//! for recipes.

use tokio::io::{AsyncRead, AsyncWrite};

use super::super::conn::Conn;
use super::super::dialog::DialogError;
use super::super::speak::{Context, Learned, MAX_LINES, mismatch, yes_no};
use super::super::upgrade::{Stage, StartTlsError, Upgrade};
use super::bytes::lossy;

/// The code of a reply line and whether more lines follow (`-` after the code).
pub(crate) fn code_line(line: &[u8]) -> Option<(u16, bool)> {
    let digits = line.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || !(b'1'..=b'5').contains(digits.first()?) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    match line.get(3) {
        None | Some(b' ') => Some((code, false)),
        Some(b'-') => Some((code, true)),
        Some(_) => None,
    }
}

/// Whether an unfinished line can still become a reply line.
pub(crate) fn could_be_code_line(partial: &[u8]) -> bool {
    partial.iter().take(3).all(u8::is_ascii_digit)
        && partial
            .get(3)
            .is_none_or(|b| matches!(b, b' ' | b'-' | b'\r'))
}

/// A numbered reply, read line by line.
pub(crate) struct CodedReply {
    pub code: u16,
    /// Every line, the first included, as received.
    pub lines: Vec<Vec<u8>>,
    more: bool,
}

impl CodedReply {
    /// A reply from its first line; `None` when that is not a reply line.
    pub fn start(first: Vec<u8>) -> Option<Self> {
        let (code, more) = code_line(&first)?;
        Some(CodedReply {
            code,
            lines: vec![first],
            more,
        })
    }

    /// Whether the last line came.
    pub fn done(&self) -> bool {
        !self.more
    }

    /// Adds the next line. `strict` (SMTP) requires every line to carry the code;
    /// otherwise (FTP) lines between the first and the last may be any text. `Err` when a
    /// strict reply has a line of another shape.
    pub fn push(&mut self, line: Vec<u8>, strict: bool) -> Result<(), ()> {
        match code_line(&line) {
            Some((c, m)) if c == self.code => self.more = m,
            _ if !strict => {}
            _ => return Err(()),
        }
        self.lines.push(line);
        Ok(())
    }
}

/// A reply line without its code: `220-mx ready` gives `mx ready`.
pub(crate) fn strip_code(line: &[u8]) -> String {
    let text = lossy(line.get(3..).unwrap_or_default());
    text.trim_start_matches(['-', ' ']).to_owned()
}

impl<S: AsyncRead + AsyncWrite + Unpin> Upgrade<S> {
    /// Reads one numbered reply. `strict` (SMTP) requires every line to carry the code;
    /// otherwise (FTP) lines between the first and the last may be any text.
    pub async fn code_reply(
        &mut self,
        stage: Stage,
        strict: bool,
        expected: &str,
    ) -> Result<CodedReply, StartTlsError> {
        self.begin();
        let first = self.line(stage, could_be_code_line, expected).await?;
        let Some(mut reply) = CodedReply::start(first) else {
            return Err(self.unexpected(expected));
        };
        while !reply.done() {
            let line = if strict {
                self.line(stage, could_be_code_line, expected).await?
            } else {
                self.line(stage, |_| true, expected).await?
            };
            if reply.push(line, strict).is_err() {
                return Err(self.unexpected(expected));
            }
        }
        Ok(reply)
    }

    /// Reads an SMTP or FTP greeting: 220 (FTP may first send 120, "ready in a while").
    pub async fn code_greeting(&mut self, strict: bool) -> Result<String, StartTlsError> {
        loop {
            let reply = self
                .code_reply(Stage::Greeting, strict, "a 220 greeting")
                .await?;
            match reply.code {
                220 => return Ok(lossy(&reply.lines[0])),
                120 if !strict => continue,
                400..=599 => {
                    return Err(self.turned_away(format!(
                        "it greeted with {} instead of 220, turning the connection away",
                        reply.code
                    )));
                }
                _ => return Err(self.unexpected("a 220 greeting")),
            }
        }
    }
}

/// The greeting of a recipe with coded replies, with the banner recorded: read here (the
/// code and each line's text), or `None` when STARTTLS read it, which also sets the fact
/// `upgraded_fact` to yes (the upgrade was offered).
pub(crate) async fn coded_greeting<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    protocol: &str,
    upgraded_fact: &str,
    learned: &mut Learned,
) -> Result<Option<(u16, Vec<String>)>, DialogError> {
    if let Some(pre) = cx.upgraded {
        let banner = pre.greeting.as_deref().unwrap_or_default();
        learned.insert("banner".into(), strip_code(banner.as_bytes()));
        learned.insert(upgraded_fact.into(), yes_no(true));
        return Ok(None);
    }
    let what = format!("the {}", protocol.trim_start_matches("an "));
    let (code, lines) = coded_reply(s, cx, protocol, &what).await?;
    learned.insert("banner".into(), lines[0].clone());
    Ok(Some((code, lines)))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Upgrade<S> {
    /// Sends the upgrade command `command` (such as `STARTTLS`) and reads its answer: `ok`
    /// agrees, a code in `not_offered` says the server has no TLS to offer, another 4xx or
    /// 5xx refuses; nothing may follow the answer.
    pub async fn code_upgrade(
        &mut self,
        command: &str,
        strict: bool,
        ok: u16,
        not_offered: &[u16],
    ) -> Result<(), StartTlsError> {
        self.send(Stage::Upgrade, format!("{command}\r\n").as_bytes())
            .await?;
        let expected = format!("a {ok} reply to {command}");
        let reply = self.code_reply(Stage::Upgrade, strict, &expected).await?;
        let answered = format!("it answered {} to {command}", reply.code);
        match reply.code {
            code if code == ok => {}
            code if not_offered.contains(&code) => return Err(self.not_offered(answered)),
            400..=599 => return Err(self.refused(answered)),
            _ => return Err(self.unexpected(expected)),
        }
        self.drained(&format!("the {ok} reply to {command}"))
    }
}

/// One reply of a recipe's dialog, multi-line replies joined: the code and each line's
/// text (without the code where the line carries it).
pub(crate) async fn coded_reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    protocol: &str,
    what: &str,
) -> Result<(u16, Vec<String>), DialogError> {
    let first = s.line(what).await?;
    let mut reply = CodedReply::start(first.clone().into_bytes())
        .ok_or_else(|| mismatch(cx, protocol, &first))?;
    while !reply.done() {
        let line = s.line(what).await?;
        let _lenient = reply.push(line.into_bytes(), false);
        if reply.done() {
            break;
        }
        if reply.lines.len() > MAX_LINES {
            return Err(mismatch(cx, protocol, "a reply of too many lines"));
        }
    }
    let bare = reply.code.to_string();
    let lines = reply
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            if i == 0 || line.starts_with(bare.as_bytes()) {
                strip_code(line)
            } else {
                lossy(line)
            }
        })
        .collect();
    Ok((reply.code, lines))
}
