//! The dialog over an established connection: sends, expects and reads, with the read
//! timeout per step, the total deadline, and the response size cap.

use std::io;
use std::time::{Duration, Instant};

use memchr::memmem;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout_at;

use super::Clock;
use crate::escape::escape_excerpt;
use crate::validate::{Compiled, Op};

/// The most bytes read from the socket in one call.
const CHUNK: usize = 16 * 1024;

/// Why a dialog stopped before its last step.
#[derive(Debug)]
pub(crate) enum DialogError {
    /// A step waited longer than the read timeout (or the total deadline came first).
    Timeout {
        waiting_for: String,
        sending: bool,
        total: bool,
    },
    /// The server closed the connection before a step was satisfied.
    Closed { waiting_for: String },
    /// The server sent more than the size cap.
    TooLarge { waiting_for: String },
    /// An exact expectation saw other bytes.
    Unexpected { expected: Vec<u8>, got: Vec<u8> },
    /// The socket failed.
    Io {
        error: io::Error,
        sending: bool,
        waiting_for: String,
    },
    /// A recipe understood the server's answer and it says the check fails.
    Said(crate::result::ProbeError),
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

/// One connection's dialog state: every byte received so far and how much of it earlier
/// steps consumed.
pub(crate) struct Session<'a, S> {
    stream: S,
    buf: Vec<u8>,
    cursor: usize,
    cap: usize,
    read_timeout: Duration,
    deadline: tokio::time::Instant,
    clock: &'a dyn Clock,
    /// When the first byte arrived.
    pub first_byte: Option<Instant>,
}

enum Read {
    Data,
    Eof,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Session<'a, S> {
    pub fn new(
        stream: S,
        plan: &Compiled,
        deadline: tokio::time::Instant,
        clock: &'a dyn Clock,
    ) -> Self {
        Session {
            stream,
            buf: Vec::new(),
            cursor: 0,
            cap: plan.spec.max_response_bytes as usize,
            read_timeout: plan.read_timeout,
            deadline,
            clock,
            first_byte: None,
        }
    }

    /// Every byte received.
    pub fn into_response(self) -> Vec<u8> {
        self.buf
    }

    /// Waits up to `limit` for anything the server sends unasked (a TLS alert after the
    /// handshake, or an early banner, which is kept for the steps).
    pub async fn settle(&mut self, limit: Duration) -> Result<(), DialogError> {
        let until = (tokio::time::Instant::now() + limit).min(self.deadline);
        match self.read(&Op::Any, until, false).await {
            Ok(_) | Err(DialogError::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends `bytes`.
    pub async fn send(&mut self, bytes: &[u8], what: &str) -> Result<(), DialogError> {
        self.step(&Op::Send(bytes.to_vec()))
            .await
            .map_err(|e| e.about(what))
    }

    /// The next line, without its line ending (LF or CRLF).
    pub async fn line(&mut self, what: &str) -> Result<String, DialogError> {
        let start = self.cursor;
        self.step(&Op::Delimiter(b"\n".to_vec()))
            .await
            .map_err(|e| e.about(what))?;
        let line = &self.buf[start..self.cursor - 1];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        Ok(String::from_utf8_lossy(line).into_owned())
    }

    /// The next `n` bytes.
    pub async fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>, DialogError> {
        let start = self.cursor;
        self.step(&Op::Bytes(n)).await.map_err(|e| e.about(what))?;
        Ok(self.buf[start..self.cursor].to_vec())
    }

    /// Reads until the server closes the connection or `limit` passes, whichever is
    /// first; a server that is done may close or just wait.
    pub async fn drain(&mut self, limit: Duration) {
        let until = (tokio::time::Instant::now() + limit).min(self.deadline);
        while let Ok(Read::Data) = self.read(&Op::Close, until, false).await {}
        self.cursor = self.buf.len();
    }

    /// Runs every step in order.
    pub async fn run(&mut self, ops: &[Op]) -> Result<(), DialogError> {
        for op in ops {
            self.step(op).await?;
        }
        Ok(())
    }

    fn step_deadline(&self) -> (tokio::time::Instant, bool) {
        let step = tokio::time::Instant::now() + self.read_timeout;
        if step < self.deadline {
            (step, false)
        } else {
            (self.deadline, true)
        }
    }

    async fn step(&mut self, op: &Op) -> Result<(), DialogError> {
        let (until, total) = self.step_deadline();
        match op {
            Op::Send(bytes) => {
                let fail = |sending_err: Option<io::Error>| match sending_err {
                    Some(error) => DialogError::Io {
                        error,
                        sending: true,
                        waiting_for: describe(op),
                    },
                    None => DialogError::Timeout {
                        waiting_for: describe(op),
                        sending: true,
                        total,
                    },
                };
                match timeout_at(until, self.stream.write_all(bytes)).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(fail(Some(e))),
                    Err(_) => Err(fail(None)),
                }
            }
            Op::Contains(needle) | Op::Delimiter(needle) => {
                let finder = memmem::Finder::new(needle);
                let mut from = self.cursor;
                loop {
                    if let Some(at) = finder.find(&self.buf[from..]) {
                        self.cursor = from + at + needle.len();
                        return Ok(());
                    }
                    // Only the tail that could still start a match needs searching again.
                    from = self
                        .buf
                        .len()
                        .saturating_sub(needle.len() - 1)
                        .max(self.cursor);
                    self.fill(op, until, total).await?;
                }
            }
            Op::Regex(re) => loop {
                if let Some(m) = re.find(&self.buf[self.cursor..]) {
                    self.cursor += m.end();
                    return Ok(());
                }
                self.fill(op, until, total).await?;
            },
            Op::Exact(expected) => loop {
                let unread = &self.buf[self.cursor..];
                let n = unread.len().min(expected.len());
                if unread[..n] != expected[..n] {
                    return Err(DialogError::Unexpected {
                        expected: expected.clone(),
                        got: unread[..n].to_vec(),
                    });
                }
                if n == expected.len() {
                    self.cursor += n;
                    return Ok(());
                }
                self.fill(op, until, total).await?;
            },
            Op::Bytes(n) => {
                while self.buf.len() - self.cursor < *n {
                    self.fill(op, until, total).await?;
                }
                self.cursor += n;
                Ok(())
            }
            Op::Any => {
                if self.buf.len() == self.cursor {
                    self.fill(op, until, total).await?;
                }
                self.cursor = self.buf.len();
                Ok(())
            }
            Op::Close => loop {
                match self.read(op, until, total).await? {
                    Read::Eof => {
                        self.cursor = self.buf.len();
                        return Ok(());
                    }
                    Read::Data => {}
                }
            },
        }
    }

    /// Reads at least one more byte; the server closing is an error here.
    async fn fill(
        &mut self,
        op: &Op,
        until: tokio::time::Instant,
        total: bool,
    ) -> Result<(), DialogError> {
        match self.read(op, until, total).await? {
            Read::Data => Ok(()),
            Read::Eof => Err(DialogError::Closed {
                waiting_for: describe(op),
            }),
        }
    }

    async fn read(
        &mut self,
        op: &Op,
        until: tokio::time::Instant,
        total: bool,
    ) -> Result<Read, DialogError> {
        // Read one byte past the cap, so that a server sending too much is noticed; read
        // into spare capacity, never zero-filling a buffer first.
        let room = (self.cap + 1 - self.buf.len()).min(CHUNK);
        self.buf.reserve(room);
        let limited = (&mut self.stream).take(room as u64);
        let read = timeout_at(until, read_into(limited, &mut self.buf)).await;
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(error)) => {
                return Err(DialogError::Io {
                    error,
                    sending: false,
                    waiting_for: describe(op),
                });
            }
            Err(_) => {
                return Err(DialogError::Timeout {
                    waiting_for: describe(op),
                    sending: false,
                    total,
                });
            }
        };
        if n == 0 {
            return Ok(Read::Eof);
        }
        if self.first_byte.is_none() {
            self.first_byte = Some(self.clock.now());
        }
        if self.buf.len() > self.cap {
            self.buf.truncate(self.cap);
            return Err(DialogError::TooLarge {
                waiting_for: describe(op),
            });
        }
        Ok(Read::Data)
    }
}

/// Reads once from `reader` into the spare capacity of `buf`.
async fn read_into<R: AsyncRead + Unpin>(
    mut reader: R,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    reader.read_buf(buf).await
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
