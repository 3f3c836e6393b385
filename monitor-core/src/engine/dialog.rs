//! The dialog over an established connection: the monitor's steps (sends, expects, reads)
//! and the reads recipes make, on a [`Conn`] with the read timeout per step, the total
//! deadline and the response size cap, and why a dialog stopped.

use std::io;
use std::time::Duration;

use memchr::memmem;
use tokio::io::{AsyncRead, AsyncWrite};

use super::clock::Clock;
use super::conn::{Conn, Fault, Timing};
use monitor_spec::escape::escape_excerpt;
use monitor_spec::validate::{Compiled, Op};

/// Why a dialog stopped before its last step.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialogError {
    /// A step waited longer than the read timeout (or the total deadline came first).
    #[error("timed out while {}{waiting_for}", if *.sending { "" } else { "waiting for " })]
    Timeout {
        waiting_for: String,
        sending: bool,
        total: bool,
    },
    /// The server closed the connection before a step was satisfied.
    #[error("the server closed the connection before sending {waiting_for}")]
    Closed { waiting_for: String },
    /// The server sent more than the size cap.
    #[error("the server sent more than the size cap while we waited for {waiting_for}")]
    TooLarge { waiting_for: String },
    /// An exact expectation saw other bytes.
    #[error("exactly `{}` was expected, not `{}`", escape_excerpt(.expected, 64), escape_excerpt(.got, 64))]
    Unexpected { expected: Vec<u8>, got: Vec<u8> },
    /// The socket failed.
    #[error("i/o error while {}{waiting_for}: {error}", if *.sending { "" } else { "waiting for " })]
    Io {
        error: io::Error,
        sending: bool,
        waiting_for: String,
    },
    /// A recipe understood the server's answer and it says the check fails.
    #[error("{}", .0.message)]
    Said(monitor_spec::result::ProbeError),
}

impl DialogError {
    /// The same error, saying in words what the step waited for.
    pub fn about(mut self, what: &str) -> Self {
        match &mut self {
            DialogError::Timeout { waiting_for, .. }
            | DialogError::Closed { waiting_for }
            | DialogError::TooLarge { waiting_for }
            | DialogError::Io { waiting_for, .. } => *waiting_for = what.to_owned(),
            DialogError::Unexpected { .. } | DialogError::Said(_) => {}
        }
        self
    }
}

/// Makes a dialog's connection: the monitor's response cap, its read timeout per step
/// within the total deadline.
pub(crate) fn open<'a, S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    plan: &Compiled,
    deadline: tokio::time::Instant,
    clock: &'a dyn Clock,
) -> Conn<'a, S> {
    let timing = Timing {
        read_timeout: plan.read_timeout,
        deadline,
    };
    Conn::new(stream, plan.spec.max_response_bytes as usize).timed(timing, clock)
}

/// The dialog error for a fault while a step waited for `op`.
fn fault(f: Fault, op: &Op, sending: bool, total: bool) -> DialogError {
    match f {
        Fault::Timeout => DialogError::Timeout {
            waiting_for: describe(op),
            sending,
            total,
        },
        Fault::Closed => DialogError::Closed {
            waiting_for: describe(op),
        },
        Fault::TooLarge => DialogError::TooLarge {
            waiting_for: describe(op),
        },
        Fault::Io(error) => DialogError::Io {
            error,
            sending,
            waiting_for: describe(op),
        },
    }
}

/// The dialog's steps, and the reads and writes recipes make, on a connection.
impl<S: AsyncRead + AsyncWrite + Unpin> Conn<'_, S> {
    /// Waits up to `limit` for anything the server sends unasked (a TLS alert after the
    /// handshake, or an early banner, which is kept for the steps).
    pub async fn settle(&mut self, limit: Duration) -> Result<(), DialogError> {
        let until = self.until(limit);
        match self.read(until).await {
            Ok(_) | Err(Fault::Timeout) => Ok(()),
            Err(f) => Err(fault(f, &Op::Any, false, false)),
        }
    }

    /// Sends `bytes`.
    pub async fn send(&mut self, bytes: &[u8], what: &str) -> Result<(), DialogError> {
        let (until, total) = self.step_deadline();
        self.write(bytes, until).await.map_err(|f| match f {
            Fault::Io(error) => DialogError::Io {
                error,
                sending: true,
                waiting_for: what.to_owned(),
            },
            _ => DialogError::Timeout {
                waiting_for: what.to_owned(),
                sending: true,
                total,
            },
        })
    }

    /// The next line, without its line ending (LF or CRLF).
    pub async fn line(&mut self, what: &str) -> Result<String, DialogError> {
        let start = self.pos;
        self.step(&Op::Delimiter(b"\n".to_vec()))
            .await
            .map_err(|e| e.about(what))?;
        let line = &self.received()[start..self.pos - 1];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Ok(String::from_utf8_lossy(line).into_owned())
    }

    /// The next `n` bytes.
    pub async fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>, DialogError> {
        let start = self.pos;
        self.step(&Op::Bytes(n)).await.map_err(|e| e.about(what))?;
        Ok(self.received()[start..self.pos].to_vec())
    }

    /// Reads until the server closes the connection or `limit` passes, whichever is
    /// first; a server that is done may close or just wait.
    pub async fn drain(&mut self, limit: Duration) {
        let until = self.until(limit);
        while let Ok(true) = self.read(until).await {}
        self.consume_all();
    }

    /// Runs every step in order.
    pub async fn run(&mut self, ops: &[Op]) -> Result<(), DialogError> {
        for op in ops {
            self.step(op).await?;
        }
        Ok(())
    }

    /// `limit` from now, within the total deadline.
    fn until(&self, limit: Duration) -> Option<tokio::time::Instant> {
        let until = tokio::time::Instant::now() + limit;
        Some(self.deadline().map_or(until, |d| until.min(d)))
    }

    async fn step(&mut self, op: &Op) -> Result<(), DialogError> {
        let (until, total) = self.step_deadline();
        let fill = |f| fault(f, op, false, total);
        match op {
            Op::Send(bytes) => self
                .write(bytes, until)
                .await
                .map_err(|f| fault(f, op, true, total)),
            Op::Contains(needle) | Op::Delimiter(needle) => {
                let mut finder = None;
                let mut from = self.pos;
                loop {
                    if let Some(at) = find(&mut finder, &self.received()[from..], needle) {
                        self.pos = from + at + needle.len();
                        return Ok(());
                    }
                    // Only the tail that could still start a match needs searching again.
                    from = self
                        .received()
                        .len()
                        .saturating_sub(needle.len() - 1)
                        .max(self.pos);
                    self.fill(until).await.map_err(fill)?;
                }
            }
            Op::Regex(re) => loop {
                if let Some(m) = re.find(self.unread()) {
                    self.pos += m.end();
                    return Ok(());
                }
                self.fill(until).await.map_err(fill)?;
            },
            Op::Exact(expected) => loop {
                let unread = self.unread();
                let n = unread.len().min(expected.len());
                if unread[..n] != expected[..n] {
                    return Err(DialogError::Unexpected {
                        expected: expected.clone(),
                        got: unread[..n].to_vec(),
                    });
                }
                if n == expected.len() {
                    self.pos += n;
                    return Ok(());
                }
                self.fill(until).await.map_err(fill)?;
            },
            Op::Bytes(n) => {
                while self.unread().len() < *n {
                    self.fill(until).await.map_err(fill)?;
                }
                self.pos += n;
                Ok(())
            }
            Op::Any => {
                if self.unread().is_empty() {
                    self.fill(until).await.map_err(fill)?;
                }
                self.consume_all();
                Ok(())
            }
            Op::Close => {
                while self.read(until).await.map_err(fill)? {}
                self.consume_all();
                Ok(())
            }
        }
    }
}

/// Where `needle` first occurs in `haystack`: a plain scan over the short replies most
/// steps see, memchr's searcher (built once per step, on first need) past that.
fn find<'n>(
    finder: &mut Option<memmem::Finder<'n>>,
    haystack: &[u8],
    needle: &'n [u8],
) -> Option<usize> {
    const SCANNED: usize = 64;
    if needle.is_empty() {
        return Some(0);
    }
    if haystack.len() <= SCANNED && finder.is_none() {
        return haystack.windows(needle.len()).position(|w| w == needle);
    }
    finder
        .get_or_insert_with(|| memmem::Finder::new(needle))
        .find(haystack)
}

/// What a step waits for, in words.
pub(crate) fn describe(op: &Op) -> String {
    match op {
        Op::Send(bytes) => format!("sending `{}`", escape_excerpt(bytes, 64)),
        Op::Contains(bytes) => format!("`{}`", escape_excerpt(bytes, 64)),
        Op::Regex(re) => format!("a match of regex `{}`", re.as_str()),
        Op::Exact(bytes) => format!("exactly `{}`", escape_excerpt(bytes, 64)),
        Op::Delimiter(bytes) => format!("delimiter `{}`", escape_excerpt(bytes, 64)),
        Op::Bytes(n) => format!("{n} more bytes"),
        Op::Close => "the server to close the connection".to_owned(),
        Op::Any => "any response".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn a_short_reply_is_scanned_as_memchr_searches() {
        let long = [b"x".repeat(100), b"+PONG".to_vec()].concat();
        for (haystack, needle) in [
            (&b"+PONG\r\n"[..], &b"+PONG"[..]),
            (b"+PON", b"+PONG"),
            (b"", b"\n"),
            (b"abc", b""),
            (b"aab", b"ab"),
            (&long[..], b"+PONG"),
            (&long[..], b"+PONGS"),
        ] {
            let mut finder = None;
            assert_eq!(
                find(&mut finder, haystack, needle),
                memchr::memmem::find(haystack, needle),
                "{haystack:?} {needle:?}"
            );
        }
    }
}
