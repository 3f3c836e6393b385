//! STARTTLS: the plaintext dialog of each protocol that asks a server to switch the
//! connection to TLS, read within a byte cap and checked so that no stray byte is left to
//! corrupt the TLS handshake that follows.
//!
//! [`negotiate`] runs the dialog of one [`StartTls`] protocol on a connected stream and
//! returns once the server has agreed to start TLS: the next bytes on the stream are the
//! client's TLS ClientHello. It has no timeout of its own; the caller wraps it in one.

use std::fmt;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::escape::escape_excerpt;
use crate::spec::StartTls;

/// The most bytes a server may send in plaintext before the upgrade (16 KiB).
pub const MAX_PLAINTEXT_BYTES: usize = 16 * 1024;

/// How many received bytes an error shows.
pub const MAX_EXCERPT_BYTES: usize = 200;

/// What the server sent before agreeing to the upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Every byte the server sent in plaintext before the upgrade.
    pub transcript: Vec<u8>,
    /// What the server said about itself where the protocol tells it: the SMTP/FTP/IMAP/POP3
    /// greeting line (without CRLF; the first line of a multi-line greeting), the MySQL
    /// server version string; `None` for PostgreSQL and LDAP.
    pub greeting: Option<String>,
}

/// The part of the plaintext dialog where a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Waiting for the server's greeting (SMTP, FTP, IMAP, POP3 banner; MySQL handshake).
    Greeting,
    /// Asking for the capabilities (EHLO, CAPABILITY, CAPA).
    Capabilities,
    /// Sending the upgrade command and reading its answer (STARTTLS, STLS, AUTH TLS,
    /// SSLRequest, MySQL SSL request, LDAP StartTLS extended request).
    Upgrade,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Greeting => "greeting",
            Stage::Capabilities => "capability query",
            Stage::Upgrade => "upgrade command",
        })
    }
}

/// The class of a [`StartTlsError`], for callers that map failures to their own kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartTlsFailure {
    /// The server does not offer the upgrade.
    NotOffered,
    /// The server refused the upgrade (or turned the connection away).
    Refused,
    /// The server's reply is not the protocol's.
    UnexpectedReply,
    /// The server closed the connection.
    Closed,
    /// The server sent more than [`MAX_PLAINTEXT_BYTES`].
    TooLarge,
    /// Reading or writing failed.
    Io,
}

/// Why the plaintext dialog did not end with the server ready for TLS.
///
/// Every variant names the protocol and carries an escaped excerpt (at most
/// [`MAX_EXCERPT_BYTES`] bytes, see [`escape_excerpt`]) of what the server sent in the reply
/// at fault.
#[derive(Debug, thiserror::Error)]
pub enum StartTlsError {
    /// The server does not offer the upgrade: the capability is missing from EHLO,
    /// CAPABILITY or CAPA, the MySQL handshake lacks `CLIENT_SSL`, PostgreSQL answered `N`,
    /// FTP answered 500, 502 or 504 to `AUTH TLS`, or LDAP answered protocolError, referral
    /// or unavailable.
    #[error("{} server does not offer STARTTLS: {detail} (received {})", .protocol.openssl_name(), shown(.received))]
    NotOffered {
        /// The protocol.
        protocol: StartTls,
        /// What showed it, starting with "it" or "its".
        detail: String,
        /// Escaped excerpt of the reply at fault.
        received: String,
    },
    /// The server refused: it turned the connection away in its greeting (SMTP or FTP 4xx
    /// or 5xx, IMAP `BYE`, POP3 `-ERR`, a MySQL error packet), or refused the upgrade
    /// command (SMTP 454, IMAP `NO`/`BAD`, POP3 `-ERR`, another FTP 4xx or 5xx, another
    /// LDAP result code).
    #[error("{} server refused STARTTLS: {detail} (received {})", .protocol.openssl_name(), shown(.received))]
    Refused {
        /// The protocol.
        protocol: StartTls,
        /// What it answered, starting with "it".
        detail: String,
        /// Escaped excerpt of the reply at fault.
        received: String,
    },
    /// The server's reply is not the protocol's: another service, a TLS server, or bytes
    /// left after the upgrade reply that would corrupt the TLS handshake.
    #[error("{} server sent an unexpected reply: expected {expected} (received {})", .protocol.openssl_name(), shown(.received))]
    UnexpectedReply {
        /// The protocol.
        protocol: StartTls,
        /// What the protocol called for.
        expected: String,
        /// Escaped excerpt of what came instead.
        received: String,
    },
    /// The server closed the connection before the dialog ended.
    #[error("{} server closed the connection during the {stage} (received {})", .protocol.openssl_name(), shown(.received))]
    Closed {
        /// The protocol.
        protocol: StartTls,
        /// Where the dialog was.
        stage: Stage,
        /// Escaped excerpt of the unfinished reply.
        received: String,
    },
    /// The server sent more than [`MAX_PLAINTEXT_BYTES`] before the upgrade.
    #[error("{} server sent more than {limit} bytes in plaintext during the {stage} (received {})", .protocol.openssl_name(), shown(.received))]
    TooLarge {
        /// The protocol.
        protocol: StartTls,
        /// Where the dialog was.
        stage: Stage,
        /// The cap, [`MAX_PLAINTEXT_BYTES`].
        limit: usize,
        /// Escaped excerpt of the reply that did not end.
        received: String,
    },
    /// Reading from or writing to the connection failed.
    #[error("i/o error with the {} server during the {stage}: {error} (received {})", .protocol.openssl_name(), shown(.received))]
    Io {
        /// The protocol.
        protocol: StartTls,
        /// Where the dialog was.
        stage: Stage,
        /// The error; its kind tells a reset from other failures. Its text is part of
        /// the message, so it is not also given as the error's source.
        error: io::Error,
        /// Escaped excerpt of the last reply, finished or not.
        received: String,
    },
}

impl StartTlsError {
    /// The class of the failure.
    pub fn kind(&self) -> StartTlsFailure {
        match self {
            StartTlsError::NotOffered { .. } => StartTlsFailure::NotOffered,
            StartTlsError::Refused { .. } => StartTlsFailure::Refused,
            StartTlsError::UnexpectedReply { .. } => StartTlsFailure::UnexpectedReply,
            StartTlsError::Closed { .. } => StartTlsFailure::Closed,
            StartTlsError::TooLarge { .. } => StartTlsFailure::TooLarge,
            StartTlsError::Io { .. } => StartTlsFailure::Io,
        }
    }

    /// The protocol whose dialog failed.
    pub fn protocol(&self) -> StartTls {
        match self {
            StartTlsError::NotOffered { protocol, .. }
            | StartTlsError::Refused { protocol, .. }
            | StartTlsError::UnexpectedReply { protocol, .. }
            | StartTlsError::Closed { protocol, .. }
            | StartTlsError::TooLarge { protocol, .. }
            | StartTlsError::Io { protocol, .. } => *protocol,
        }
    }

    /// The escaped excerpt of what the server sent in the reply at fault.
    pub fn received(&self) -> &str {
        match self {
            StartTlsError::NotOffered { received, .. }
            | StartTlsError::Refused { received, .. }
            | StartTlsError::UnexpectedReply { received, .. }
            | StartTlsError::Closed { received, .. }
            | StartTlsError::TooLarge { received, .. }
            | StartTlsError::Io { received, .. } => received,
        }
    }
}

/// An excerpt in quotes, or `nothing`.
fn shown(received: &str) -> String {
    if received.is_empty() {
        "nothing".to_owned()
    } else {
        format!("\"{received}\"")
    }
}

/// Runs the plaintext dialog of `protocol` on `stream` until the server has agreed to
/// start TLS; the caller then starts the TLS handshake on the same stream.
///
/// `client_name` is the name sent in SMTP `EHLO`; characters other than printable ASCII
/// (spaces, control characters, non-ASCII) are left out, and an empty name becomes
/// `localhost`. The other protocols do not send it.
///
/// The server's bytes are read in chunks and parsed line by line (or by exact lengths);
/// if a chunk holds anything after the answer to the upgrade command, that is an
/// unexpected reply, since TLS would take those bytes for its handshake. For MySQL the
/// upgrade is the client's SSL Request, which has no answer: this returns once it is
/// written. No more than [`MAX_PLAINTEXT_BYTES`] are read in all. There is no timeout
/// here: wrap the call in one.
pub async fn negotiate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    protocol: StartTls,
    client_name: &str,
) -> Result<Negotiated, StartTlsError> {
    let mut conn = Conn {
        stream,
        protocol,
        buf: Vec::new(),
        pos: 0,
        mark: 0,
    };
    let greeting = match protocol {
        StartTls::Smtp => smtp(&mut conn, client_name).await?,
        StartTls::Imap => imap(&mut conn).await?,
        StartTls::Pop3 => pop3(&mut conn).await?,
        StartTls::Ftp => ftp(&mut conn).await?,
        StartTls::Postgres => postgres(&mut conn).await?,
        StartTls::Mysql => mysql(&mut conn).await?,
        StartTls::Ldap => ldap(&mut conn).await?,
    };
    Ok(Negotiated {
        transcript: conn.buf,
        greeting,
    })
}

/// One connection's plaintext phase: every byte received, how far replies consumed it, and
/// where the reply being read began.
struct Conn<'s, S> {
    stream: &'s mut S,
    protocol: StartTls,
    buf: Vec<u8>,
    pos: usize,
    mark: usize,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    /// Bytes received and not yet consumed.
    fn unread(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// The reply being read, from its start to what has been consumed or received.
    fn reply(&self, whole: bool) -> &[u8] {
        let end = if whole { self.buf.len() } else { self.pos };
        self.buf.get(self.mark..end).unwrap_or_default()
    }

    /// Starts a new reply.
    fn begin(&mut self) {
        self.mark = self.pos;
    }

    /// Everything received since the reply began, escaped.
    fn excerpt(&self) -> String {
        escape_excerpt(self.reply(true), MAX_EXCERPT_BYTES)
    }

    /// The reply as far as it was parsed, escaped.
    fn parsed_excerpt(&self) -> String {
        escape_excerpt(self.reply(false), MAX_EXCERPT_BYTES)
    }

    fn not_offered(&self, detail: impl Into<String>) -> StartTlsError {
        StartTlsError::NotOffered {
            protocol: self.protocol,
            detail: detail.into(),
            received: self.parsed_excerpt(),
        }
    }

    fn refused(&self, detail: impl Into<String>) -> StartTlsError {
        StartTlsError::Refused {
            protocol: self.protocol,
            detail: detail.into(),
            received: self.parsed_excerpt(),
        }
    }

    fn unexpected(&self, expected: impl Into<String>) -> StartTlsError {
        StartTlsError::UnexpectedReply {
            protocol: self.protocol,
            expected: expected.into(),
            received: self.excerpt(),
        }
    }

    fn io(&self, stage: Stage, error: io::Error) -> StartTlsError {
        StartTlsError::Io {
            protocol: self.protocol,
            stage,
            error,
            received: self.excerpt(),
        }
    }

    /// Writes a whole command.
    async fn send(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), StartTlsError> {
        let written = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        }
        .await;
        written.map_err(|e| self.io(stage, e))
    }

    /// Reads once more from the stream, within the cap.
    async fn fill(&mut self, stage: Stage) -> Result<(), StartTlsError> {
        let room = MAX_PLAINTEXT_BYTES.saturating_sub(self.buf.len());
        if room == 0 {
            return Err(StartTlsError::TooLarge {
                protocol: self.protocol,
                stage,
                limit: MAX_PLAINTEXT_BYTES,
                received: self.excerpt(),
            });
        }
        let mut chunk = [0u8; 4096];
        let want = room.min(chunk.len());
        let read = loop {
            match self.stream.read(&mut chunk[..want]).await {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(0) => Err(StartTlsError::Closed {
                protocol: self.protocol,
                stage,
                received: self.excerpt(),
            }),
            Ok(n) => {
                self.buf
                    .extend_from_slice(chunk.get(..n).unwrap_or_default());
                Ok(())
            }
            Err(e) => Err(self.io(stage, e)),
        }
    }

    /// Reads the next line of the current reply and returns it without its CRLF (or bare
    /// LF). While the line is unfinished, `plausible` says whether it can still become
    /// what the protocol calls for; if not, the reply is unexpected without waiting for
    /// more.
    async fn line(
        &mut self,
        stage: Stage,
        plausible: impl Fn(&[u8]) -> bool,
        expected: &str,
    ) -> Result<Vec<u8>, StartTlsError> {
        loop {
            let unread = self.unread();
            if let Some(at) = memchr::memchr(b'\n', unread) {
                let line = unread.get(..at).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
                self.pos += at + 1;
                return Ok(line);
            }
            if !plausible(unread) {
                return Err(self.unexpected(expected));
            }
            self.fill(stage).await?;
        }
    }

    /// Reads exactly `n` more bytes of the current reply.
    async fn exact(&mut self, stage: Stage, n: usize) -> Result<Vec<u8>, StartTlsError> {
        while self.unread().len() < n {
            self.fill(stage).await?;
        }
        let bytes = self.unread().get(..n).unwrap_or_default().to_vec();
        self.pos += bytes.len();
        Ok(bytes)
    }

    /// Fails if the server sent anything after the answer to the upgrade command.
    fn drained(&mut self, answer: &str) -> Result<(), StartTlsError> {
        if self.unread().is_empty() {
            return Ok(());
        }
        self.begin();
        Err(self.unexpected(format!("nothing after {answer} until the TLS handshake")))
    }
}

// ---------------------------------------------------------------------------------------
// Line helpers

/// Whether `line` starts with `prefix`, ignoring ASCII case.
fn starts_with_ci(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Whether an unfinished line can still start with one of `prefixes` (ASCII case ignored).
fn could_start_with(partial: &[u8], prefixes: &[&[u8]]) -> bool {
    prefixes.iter().any(|prefix| {
        let n = partial.len().min(prefix.len());
        match (partial.get(..n), prefix.get(..n)) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    })
}

/// The space-separated words of a line.
fn words(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ').filter(|w| !w.is_empty())
}

/// Whether the first word of `line` is `keyword` (ASCII case ignored).
fn first_word_is(line: &[u8], keyword: &[u8]) -> bool {
    words(line)
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(keyword))
}

/// A big-endian u32 from exactly four bytes.
fn be32(bytes: &[u8]) -> Option<u32> {
    bytes.try_into().ok().map(u32::from_be_bytes)
}

/// A little-endian u16 from exactly two bytes.
fn le16(bytes: &[u8]) -> Option<u16> {
    bytes.try_into().ok().map(u16::from_le_bytes)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------
// SMTP and FTP: replies with three-digit codes

/// A numbered reply (RFC 5321 section 4.2, RFC 959 section 4.2).
struct CodeReply {
    code: u16,
    first_line: Vec<u8>,
    lines: Vec<Vec<u8>>,
}

/// The code of a reply line and whether more lines follow (`-` after the code).
fn parse_code_line(line: &[u8]) -> Option<(u16, bool)> {
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
fn could_be_code_line(partial: &[u8]) -> bool {
    partial.iter().take(3).all(u8::is_ascii_digit)
        && partial
            .get(3)
            .is_none_or(|b| matches!(b, b' ' | b'-' | b'\r'))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    /// Reads one numbered reply. `strict` (SMTP) requires every line to carry the code;
    /// otherwise (FTP) lines between the first and the last may be any text.
    async fn code_reply(
        &mut self,
        stage: Stage,
        strict: bool,
        expected: &str,
    ) -> Result<CodeReply, StartTlsError> {
        self.begin();
        let first_line = self.line(stage, could_be_code_line, expected).await?;
        let Some((code, mut more)) = parse_code_line(&first_line) else {
            return Err(self.unexpected(expected));
        };
        let mut lines = Vec::new();
        while more {
            let line = if strict {
                self.line(stage, could_be_code_line, expected).await?
            } else {
                self.line(stage, |_| true, expected).await?
            };
            match parse_code_line(&line) {
                Some((c, m)) if c == code => more = m,
                _ if !strict => {}
                _ => return Err(self.unexpected(expected)),
            }
            lines.push(line);
        }
        Ok(CodeReply {
            code,
            first_line,
            lines,
        })
    }

    /// Reads an SMTP or FTP greeting: 220 (FTP may first send 120, "ready in a while").
    async fn code_greeting(&mut self, strict: bool) -> Result<String, StartTlsError> {
        loop {
            let reply = self
                .code_reply(Stage::Greeting, strict, "a 220 greeting")
                .await?;
            match reply.code {
                220 => return Ok(lossy(&reply.first_line)),
                120 if !strict => continue,
                400..=599 => {
                    return Err(self.refused(format!(
                        "it greeted with {} instead of 220, turning the connection away",
                        reply.code
                    )));
                }
                _ => return Err(self.unexpected("a 220 greeting")),
            }
        }
    }
}

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
async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<'_, S>,
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
        .any(|line| first_word_is(line.get(4..).unwrap_or_default(), b"STARTTLS"));
    if !offered {
        return Err(conn.not_offered("its EHLO reply lists no STARTTLS"));
    }

    conn.send(Stage::Upgrade, b"STARTTLS\r\n").await?;
    let expected = "a 220 reply to STARTTLS";
    let reply = conn.code_reply(Stage::Upgrade, true, expected).await?;
    match reply.code {
        220 => {}
        400..=599 => {
            return Err(conn.refused(format!("it answered {} to STARTTLS", reply.code)));
        }
        _ => return Err(conn.unexpected(expected)),
    }
    conn.drained("the 220 reply to STARTTLS")?;
    Ok(Some(greeting))
}

/// FTP (RFC 4217): greeting, AUTH TLS.
async fn ftp<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<'_, S>,
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

// ---------------------------------------------------------------------------------------
// IMAP

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

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
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
async fn imap<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<'_, S>,
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
            return Err(conn.refused("it greeted with BYE, turning the connection away"));
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

// ---------------------------------------------------------------------------------------
// POP3

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

/// POP3 (RFC 2449, RFC 2595): greeting, CAPA, STLS.
async fn pop3<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<'_, S>,
) -> Result<Option<String>, StartTlsError> {
    conn.begin();
    let expected = "a +OK greeting";
    let line = conn
        .line(Stage::Greeting, could_be_pop3_status, expected)
        .await?;
    match pop3_status(&line) {
        Some(true) => {}
        Some(false) => {
            return Err(conn.refused("it greeted with -ERR, turning the connection away"));
        }
        None => return Err(conn.unexpected(expected)),
    }
    let greeting = lossy(&line);

    conn.send(Stage::Capabilities, b"CAPA\r\n").await?;
    conn.begin();
    let expected = "a +OK or -ERR reply to CAPA";
    let line = conn
        .line(Stage::Capabilities, could_be_pop3_status, expected)
        .await?;
    match pop3_status(&line) {
        Some(true) => {}
        Some(false) => {
            return Err(conn.not_offered("it answered -ERR to CAPA, so it lists no STLS"));
        }
        None => return Err(conn.unexpected(expected)),
    }
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
    conn.begin();
    let expected = "a +OK reply to STLS";
    let line = conn
        .line(Stage::Upgrade, could_be_pop3_status, expected)
        .await?;
    match pop3_status(&line) {
        Some(true) => {}
        Some(false) => return Err(conn.refused("it answered -ERR to STLS")),
        None => return Err(conn.unexpected(expected)),
    }
    conn.drained("the +OK reply to STLS")?;
    Ok(Some(greeting))
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// SSLRequest: length 8, then the code 1234 5679.
const PG_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// How much of an ErrorResponse is read to show it.
const PG_ERROR_BYTES: usize = 1024;

/// The `M` (message) field of an ErrorResponse body, if it has one.
fn pg_error_message(body: &[u8]) -> Option<&[u8]> {
    let mut rest = body;
    loop {
        let (&kind, tail) = rest.split_first()?;
        if kind == 0 {
            return None;
        }
        let end = memchr::memchr(0, tail)?;
        let value = tail.get(..end)?;
        if kind == b'M' {
            return Some(value);
        }
        rest = tail.get(end + 1..)?;
    }
}

/// PostgreSQL: SSLRequest, answered by one byte.
async fn postgres<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<'_, S>,
) -> Result<Option<String>, StartTlsError> {
    conn.send(Stage::Upgrade, &PG_SSL_REQUEST).await?;
    conn.begin();
    let answer = conn.exact(Stage::Upgrade, 1).await?;
    match answer.first() {
        Some(b'S') => {
            conn.drained("the S answer to SSLRequest")?;
            Ok(None)
        }
        Some(b'N') => Err(conn.not_offered("it answered N to SSLRequest")),
        Some(b'E') => {
            // An ErrorResponse: Int32 length, then fields. Read what there is to show it;
            // the server closes after sending it, so a failed read ends the attempt.
            loop {
                let unread = conn.unread();
                let want = unread
                    .get(..4)
                    .and_then(be32)
                    .map_or(4, |len| usize::try_from(len).unwrap_or(usize::MAX))
                    .clamp(4, PG_ERROR_BYTES);
                if unread.len() >= want || conn.fill(Stage::Upgrade).await.is_err() {
                    break;
                }
            }
            let message = conn
                .unread()
                .get(4..)
                .and_then(pg_error_message)
                .map(|m| escape_excerpt(m, MAX_EXCERPT_BYTES));
            Err(conn.unexpected(match message {
                Some(m) => format!("S or N in answer to SSLRequest, not the error \"{m}\""),
                None => "S or N in answer to SSLRequest, not an error message".to_owned(),
            }))
        }
        _ => Err(conn.unexpected("S or N in answer to SSLRequest")),
    }
}

// ---------------------------------------------------------------------------------------
// MySQL and MariaDB

const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
const CLIENT_SSL: u32 = 0x0000_0800;
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
/// utf8_general_ci, known to every server version.
const MYSQL_CHARSET_UTF8: u8 = 0x21;
const MYSQL_MAX_PACKET: u32 = 16 * 1024 * 1024;

/// The SSL Request packet: header (length 32, sequence 1), then the payload.
fn mysql_ssl_request() -> Vec<u8> {
    let flags = CLIENT_SSL
        | CLIENT_PROTOCOL_41
        | CLIENT_SECURE_CONNECTION
        | CLIENT_LONG_PASSWORD
        | CLIENT_PLUGIN_AUTH;
    let mut packet = vec![32, 0, 0, 1];
    packet.extend_from_slice(&flags.to_le_bytes());
    packet.extend_from_slice(&MYSQL_MAX_PACKET.to_le_bytes());
    packet.push(MYSQL_CHARSET_UTF8);
    packet.extend_from_slice(&[0; 23]);
    packet
}

/// What the initial handshake packet (protocol 10) tells: version and capability flags.
fn mysql_handshake(payload: &[u8]) -> Option<(&[u8], u32)> {
    let rest = payload.strip_prefix(&[10])?;
    let nul = memchr::memchr(0, rest)?;
    let version = rest.get(..nul)?;
    // Connection id (4), auth-plugin-data part 1 (8), filler (1), capabilities low (2).
    let after = rest.get(nul + 1..)?;
    let mut caps = u32::from(le16(after.get(13..15)?)?);
    // Then charset (1), status (2), capabilities high (2), if the packet goes on.
    if let Some(high) = after.get(18..20).and_then(le16) {
        caps |= u32::from(high) << 16;
    }
    Some((version, caps))
}

/// MySQL and MariaDB: the server's handshake, then the client's SSL Request.
async fn mysql<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<'_, S>,
) -> Result<Option<String>, StartTlsError> {
    conn.begin();
    let expected = "a MySQL handshake packet";
    let header = conn.exact(Stage::Greeting, 4).await?;
    let &[l0, l1, l2, sequence] = header.as_slice() else {
        return Err(conn.unexpected(expected));
    };
    let len = usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16;
    if sequence != 0 || len == 0 {
        return Err(conn.unexpected(expected));
    }
    if len > MAX_PLAINTEXT_BYTES.saturating_sub(conn.pos) {
        return Err(StartTlsError::TooLarge {
            protocol: conn.protocol,
            stage: Stage::Greeting,
            limit: MAX_PLAINTEXT_BYTES,
            received: conn.excerpt(),
        });
    }
    let payload = conn.exact(Stage::Greeting, len).await?;
    match payload.first() {
        Some(0xff) => {
            // ERR packet: code (2), optional "#" and SQL state (5), message.
            let code = payload.get(1..3).and_then(le16).unwrap_or(0);
            let text = payload.get(3..).unwrap_or_default();
            let text = match text.strip_prefix(b"#") {
                Some(after) if after.len() >= 5 => after.get(5..).unwrap_or_default(),
                _ => text,
            };
            return Err(conn.refused(format!(
                "it sent error {code} instead of a handshake: {}",
                escape_excerpt(text, MAX_EXCERPT_BYTES)
            )));
        }
        Some(10) => {}
        _ => return Err(conn.unexpected("a MySQL handshake packet of protocol version 10")),
    }
    let Some((version, caps)) = mysql_handshake(&payload) else {
        return Err(conn.unexpected("a complete MySQL handshake packet"));
    };
    if caps & CLIENT_SSL == 0 {
        return Err(conn.not_offered("its handshake lacks the CLIENT_SSL capability flag"));
    }
    let version = lossy(version);
    conn.drained("the handshake packet")?;
    conn.send(Stage::Upgrade, &mysql_ssl_request()).await?;
    Ok(Some(version))
}

// ---------------------------------------------------------------------------------------
// LDAP

/// The StartTLS OID (RFC 4511 section 4.14.1).
const LDAP_STARTTLS_OID: &[u8; 22] = b"1.3.6.1.4.1.1466.20037";

/// LDAPMessage { messageID 1, ExtendedRequest { requestName [0] the OID } }.
fn ldap_starttls_request() -> Vec<u8> {
    let mut request = vec![0x30, 0x1d, 0x02, 0x01, 0x01, 0x77, 0x18, 0x80, 0x16];
    request.extend_from_slice(LDAP_STARTTLS_OID);
    request
}

/// One BER element: tag, contents, and what follows it. Definite lengths only (as LDAP
/// requires), of at most four length bytes.
fn ber_element(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = rest.get(..n)?;
        let len = bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b));
        (len, rest.get(n..)?)
    };
    Some((tag, rest.get(..len)?, rest.get(len..)?))
}

/// A BER INTEGER or ENUMERATED of one to four bytes.
fn ber_int(value: &[u8]) -> Option<i64> {
    if value.is_empty() || value.len() > 4 {
        return None;
    }
    let negative = value.first().is_some_and(|b| b & 0x80 != 0);
    let start = if negative { -1i64 } else { 0 };
    Some(value.iter().fold(start, |n, b| n << 8 | i64::from(*b)))
}

/// The name of an LDAP result code (RFC 4511 appendix A).
fn ldap_result_name(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        48 => "inappropriateAuthentication",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        80 => "other",
        _ => return None,
    })
}

/// The parts of an LDAP ExtendedResponse that matter here.
struct LdapResponse<'a> {
    message_id: i64,
    result_code: i64,
    diagnostic: &'a [u8],
}

/// Parses the contents of an LDAPMessage holding an ExtendedResponse.
fn ldap_extended_response(body: &[u8]) -> Result<LdapResponse<'_>, &'static str> {
    let malformed = "a well-formed LDAP ExtendedResponse";
    let (tag, id, rest) = ber_element(body).ok_or(malformed)?;
    if tag != 0x02 {
        return Err(malformed);
    }
    let message_id = ber_int(id).ok_or(malformed)?;
    let (tag, op, _controls) = ber_element(rest).ok_or(malformed)?;
    if tag != 0x78 {
        return Err("an ExtendedResponse (BER tag 0x78) to the StartTLS request");
    }
    let (tag, code, rest) = ber_element(op).ok_or(malformed)?;
    if tag != 0x0a {
        return Err(malformed);
    }
    let result_code = ber_int(code).ok_or(malformed)?;
    // matchedDN, then diagnosticMessage; both may be absent in a careless server's reply.
    let diagnostic = ber_element(rest)
        .and_then(|(_, _, rest)| ber_element(rest))
        .filter(|(tag, _, _)| *tag == 0x04)
        .map_or(&[][..], |(_, value, _)| value);
    Ok(LdapResponse {
        message_id,
        result_code,
        diagnostic,
    })
}

/// LDAP (RFC 4511, RFC 4513): the StartTLS extended operation.
async fn ldap<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<'_, S>,
) -> Result<Option<String>, StartTlsError> {
    conn.send(Stage::Upgrade, &ldap_starttls_request()).await?;
    conn.begin();
    let expected = "an LDAPMessage (a BER SEQUENCE)";
    let head = conn.exact(Stage::Upgrade, 2).await?;
    let &[tag, first] = head.as_slice() else {
        return Err(conn.unexpected(expected));
    };
    if tag != 0x30 {
        return Err(conn.unexpected(expected));
    }
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(conn.unexpected(expected));
        }
        let bytes = conn.exact(Stage::Upgrade, n).await?;
        bytes.iter().fold(0usize, |l, b| l << 8 | usize::from(*b))
    };
    if len > MAX_PLAINTEXT_BYTES.saturating_sub(conn.pos) {
        return Err(StartTlsError::TooLarge {
            protocol: conn.protocol,
            stage: Stage::Upgrade,
            limit: MAX_PLAINTEXT_BYTES,
            received: conn.excerpt(),
        });
    }
    let body = conn.exact(Stage::Upgrade, len).await?;
    let response = match ldap_extended_response(&body) {
        Ok(response) => response,
        Err(expected) => return Err(conn.unexpected(expected)),
    };
    let notice = match response.message_id {
        1 => false,
        // An unsolicited notification, such as a notice of disconnection.
        0 => true,
        _ => return Err(conn.unexpected("an LDAP reply with messageID 1")),
    };
    let code = response.result_code;
    if code != 0 || notice {
        let name = ldap_result_name(code).map_or_else(String::new, |n| format!(" ({n})"));
        let diagnostic = if response.diagnostic.is_empty() {
            String::new()
        } else {
            format!(
                ": \"{}\"",
                escape_excerpt(response.diagnostic, MAX_EXCERPT_BYTES)
            )
        };
        let answered = if notice {
            "it sent a notice of disconnection"
        } else {
            "it answered the StartTLS extended request"
        };
        let detail = format!("{answered} with resultCode {code}{name}{diagnostic}");
        return Err(match code {
            // protocolError: StartTLS not supported; referral: ask another server;
            // unavailable: TLS not set up (or broken) on this server.
            2 | 10 | 52 => conn.not_offered(detail),
            _ => conn.refused(detail),
        });
    }
    conn.drained("the StartTLS extended response")?;
    Ok(None)
}
