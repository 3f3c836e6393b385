//! What every STARTTLS dialog shares: the stages, the errors and the result, and
//! [`Upgrade`], the plaintext phase of a [`Conn`] that reads replies within the byte cap
//! and names the protocol in every error.

use std::fmt;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};

use super::conn::{Conn, Fault};
use monitor_spec::escape::escape_excerpt;
use monitor_spec::spec::StartTls;

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
    /// The server refused the upgrade.
    Refused,
    /// The server turned the connection away in its greeting, before any upgrade.
    TurnedAway,
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
    /// The server turned the connection away in its greeting (SMTP or FTP 4xx or 5xx, IMAP
    /// `BYE`, POP3 `-ERR`, a MySQL error packet): it serves no one now, TLS or not.
    #[error("{} server turned the connection away before STARTTLS: {detail} (received {})", .protocol.openssl_name(), shown(.received))]
    TurnedAway {
        /// The protocol.
        protocol: StartTls,
        /// What it answered, starting with "it".
        detail: String,
        /// Escaped excerpt of the reply at fault.
        received: String,
    },
    /// The server refused the upgrade command (SMTP 454, IMAP `NO`/`BAD`, POP3 `-ERR`,
    /// another FTP 4xx or 5xx, another LDAP result code).
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
            StartTlsError::TurnedAway { .. } => StartTlsFailure::TurnedAway,
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
            | StartTlsError::TurnedAway { protocol, .. }
            | StartTlsError::UnexpectedReply { protocol, .. }
            | StartTlsError::Closed { protocol, .. }
            | StartTlsError::TooLarge { protocol, .. }
            | StartTlsError::Io { protocol, .. } => *protocol,
        }
    }

    /// Whether the server sent nothing at all before the failure: no greeting from a
    /// protocol whose server speaks first, no answer to the upgrade request of one whose
    /// client does (PostgreSQL, LDAP).
    pub fn before_any_byte(&self) -> bool {
        let stage = match self {
            StartTlsError::Closed { stage, .. }
            | StartTlsError::TooLarge { stage, .. }
            | StartTlsError::Io { stage, .. } => *stage,
            _ => return false,
        };
        let client_first = matches!(self.protocol(), StartTls::Postgres | StartTls::Ldap);
        self.received().is_empty()
            && (stage == Stage::Greeting || (client_first && stage == Stage::Upgrade))
    }

    /// The escaped excerpt of what the server sent in the reply at fault.
    pub fn received(&self) -> &str {
        match self {
            StartTlsError::NotOffered { received, .. }
            | StartTlsError::Refused { received, .. }
            | StartTlsError::TurnedAway { received, .. }
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

/// One connection's plaintext phase: the [`Conn`] and the protocol spoken on it.
pub(crate) struct Upgrade<S> {
    conn: Conn<'static, S>,
    pub protocol: StartTls,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Upgrade<S> {
    /// The plaintext phase of `protocol` on `stream`, within [`MAX_PLAINTEXT_BYTES`].
    pub fn new(stream: S, protocol: StartTls) -> Self {
        Upgrade {
            conn: Conn::new(stream, MAX_PLAINTEXT_BYTES),
            protocol,
        }
    }

    /// What the server said, once it agreed to the upgrade.
    pub fn negotiated(self, greeting: Option<String>) -> Negotiated {
        Negotiated {
            transcript: self.conn.into_received(),
            greeting,
        }
    }

    /// How many bytes replies consumed so far.
    pub fn pos(&self) -> usize {
        self.conn.pos
    }

    /// Bytes received and not yet consumed.
    pub fn unread(&self) -> &[u8] {
        self.conn.unread()
    }

    /// Starts a new reply.
    pub fn begin(&mut self) {
        self.conn.begin();
    }

    /// Everything received since the reply began, escaped.
    pub fn excerpt(&self) -> String {
        escape_excerpt(self.conn.reply(true), MAX_EXCERPT_BYTES)
    }

    /// The reply as far as it was parsed, escaped.
    fn parsed_excerpt(&self) -> String {
        escape_excerpt(self.conn.reply(false), MAX_EXCERPT_BYTES)
    }

    pub fn not_offered(&self, detail: impl Into<String>) -> StartTlsError {
        StartTlsError::NotOffered {
            protocol: self.protocol,
            detail: detail.into(),
            received: self.parsed_excerpt(),
        }
    }

    pub fn refused(&self, detail: impl Into<String>) -> StartTlsError {
        StartTlsError::Refused {
            protocol: self.protocol,
            detail: detail.into(),
            received: self.parsed_excerpt(),
        }
    }

    /// The greeting turned the connection away.
    pub fn turned_away(&self, detail: impl Into<String>) -> StartTlsError {
        StartTlsError::TurnedAway {
            protocol: self.protocol,
            detail: detail.into(),
            received: self.parsed_excerpt(),
        }
    }

    pub fn unexpected(&self, expected: impl Into<String>) -> StartTlsError {
        StartTlsError::UnexpectedReply {
            protocol: self.protocol,
            expected: expected.into(),
            received: self.excerpt(),
        }
    }

    /// The server sent more than [`MAX_PLAINTEXT_BYTES`].
    pub fn too_large(&self, stage: Stage) -> StartTlsError {
        StartTlsError::TooLarge {
            protocol: self.protocol,
            stage,
            limit: MAX_PLAINTEXT_BYTES,
            received: self.excerpt(),
        }
    }

    fn fault(&self, stage: Stage, fault: Fault) -> StartTlsError {
        let error = match fault {
            Fault::TooLarge => return self.too_large(stage),
            Fault::Closed => {
                return StartTlsError::Closed {
                    protocol: self.protocol,
                    stage,
                    received: self.excerpt(),
                };
            }
            Fault::Io(error) => error,
            // Nothing here has a timeout of its own; the caller's ends the attempt.
            Fault::Timeout => io::Error::from(io::ErrorKind::TimedOut),
        };
        StartTlsError::Io {
            protocol: self.protocol,
            stage,
            error,
            received: self.excerpt(),
        }
    }

    /// Writes a whole command.
    pub async fn send(&mut self, stage: Stage, bytes: &[u8]) -> Result<(), StartTlsError> {
        let written = self.conn.write(bytes, None).await;
        written.map_err(|f| self.fault(stage, f))
    }

    /// Reads once more from the stream, within the cap.
    pub async fn fill(&mut self, stage: Stage) -> Result<(), StartTlsError> {
        let filled = self.conn.fill(None).await;
        filled.map_err(|f| self.fault(stage, f))
    }

    /// Reads the next line of the current reply and returns it without its CRLF (or bare
    /// LF). While the line is unfinished, `plausible` says whether it can still become
    /// what the protocol calls for; if not, the reply is unexpected without waiting for
    /// more.
    pub async fn line(
        &mut self,
        stage: Stage,
        plausible: impl Fn(&[u8]) -> bool,
        expected: &str,
    ) -> Result<Vec<u8>, StartTlsError> {
        loop {
            if let Some(line) = self.conn.next_line() {
                return Ok(line.to_vec());
            }
            if !plausible(self.unread()) {
                return Err(self.unexpected(expected));
            }
            self.fill(stage).await?;
        }
    }

    /// Reads exactly `n` more bytes of the current reply.
    pub async fn exact(&mut self, stage: Stage, n: usize) -> Result<Vec<u8>, StartTlsError> {
        while self.unread().len() < n {
            self.fill(stage).await?;
        }
        Ok(self.conn.advance(n).to_vec())
    }

    /// Fails if the server sent anything after the answer to the upgrade command.
    pub fn drained(&mut self, answer: &str) -> Result<(), StartTlsError> {
        if self.unread().is_empty() {
            return Ok(());
        }
        self.begin();
        Err(self.unexpected(format!("nothing after {answer} until the TLS handshake")))
    }
}
