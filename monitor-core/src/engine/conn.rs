//! The one buffered connection the engine reads through: the dialog's steps, STARTTLS and
//! recipes keep every received byte in one buffer, read into its spare capacity (no
//! zero-fill, no copy) within a byte cap, and consume it with a cursor.

use std::io;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout_at;

use super::clock::Clock;

/// The most bytes read from the socket in one call.
const CHUNK: usize = 16 * 1024;

/// The buffer of a connection's first read: most replies (banners, PONGs, handshakes)
/// fit, and a buffer this small stays in the allocator's small bins, where a larger one
/// would make it sort its free lists first; a longer reply doubles it read by read.
const FIRST_READ: usize = 512;

/// Why reading or writing stopped, before the caller says what it waited for.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    /// The step's time ran out.
    #[error("the time ran out")]
    Timeout,
    /// The server closed the connection while more was needed.
    #[error("the server closed the connection")]
    Closed,
    /// The server sent more than the cap.
    #[error("the server sent more than the cap")]
    TooLarge,
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(io::Error),
}

/// The time a dialog step may take: the read timeout, within the total deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub read_timeout: Duration,
    pub deadline: tokio::time::Instant,
}

/// One connection: every byte received so far, how much of it was consumed, and where
/// the reply being read began.
pub(crate) struct Conn<'c, S> {
    stream: S,
    buf: Vec<u8>,
    /// How far replies and steps consumed `buf`.
    pub pos: usize,
    /// Where the reply being read began (for excerpts).
    mark: usize,
    cap: usize,
    /// Whether a read may go one byte past the cap, so that a server sending too much is
    /// noticed at once rather than when more is needed.
    overread: bool,
    timing: Option<Timing>,
    clock: Option<&'c dyn Clock>,
    /// When the first byte arrived (with a clock).
    pub first_byte: Option<Instant>,
}

impl<'c, S: AsyncRead + AsyncWrite + Unpin> Conn<'c, S> {
    /// A connection that keeps at most `cap` received bytes. Without [`Conn::timed`] no
    /// read or write times out: the caller wraps the whole exchange in a timeout.
    pub fn new(stream: S, cap: usize) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
            pos: 0,
            mark: 0,
            cap,
            overread: false,
            timing: None,
            clock: None,
            first_byte: None,
        }
    }

    /// The same connection with a per-step timeout within a deadline, noting the first
    /// byte's arrival on `clock`; reads go one byte past the cap to notice too much.
    pub fn timed(mut self, timing: Timing, clock: &'c dyn Clock) -> Self {
        self.timing = Some(timing);
        self.clock = Some(clock);
        self.overread = true;
        self
    }

    /// The deadline of a step starting now, and whether it is the total deadline.
    pub fn step_deadline(&self) -> (Option<tokio::time::Instant>, bool) {
        match self.timing {
            None => (None, false),
            Some(Timing {
                read_timeout,
                deadline,
            }) => {
                let step = tokio::time::Instant::now() + read_timeout;
                if step < deadline {
                    (Some(step), false)
                } else {
                    (Some(deadline), true)
                }
            }
        }
    }

    /// The total deadline, if there is one.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.timing.map(|t| t.deadline)
    }

    /// Every byte received.
    pub fn received(&self) -> &[u8] {
        &self.buf
    }

    /// Every byte received, giving the connection up.
    pub fn into_received(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes received and not yet consumed.
    pub fn unread(&self) -> &[u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Consumes everything received.
    pub fn consume_all(&mut self) {
        self.pos = self.buf.len();
    }

    /// Starts a new reply.
    pub fn begin(&mut self) {
        self.mark = self.pos;
    }

    /// The reply being read, from its start to what has been consumed (`whole`: received).
    pub fn reply(&self, whole: bool) -> &[u8] {
        let end = if whole { self.buf.len() } else { self.pos };
        self.buf.get(self.mark..end).unwrap_or_default()
    }

    /// The next complete line, consumed, without its line ending (LF or CRLF).
    pub fn next_line(&mut self) -> Option<&[u8]> {
        let start = self.pos;
        let at = memchr::memchr(b'\n', self.buf.get(start..)?)?;
        self.pos = start + at + 1;
        let line = self.buf.get(start..start + at)?;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// Consumes the next `n` bytes, which must have been received.
    pub fn advance(&mut self, n: usize) -> &[u8] {
        let start = self.pos;
        self.pos = (start + n).min(self.buf.len());
        &self.buf[start..self.pos]
    }

    /// Writes all of `bytes` by `until`.
    pub async fn write(
        &mut self,
        bytes: &[u8],
        until: Option<tokio::time::Instant>,
    ) -> Result<(), Fault> {
        let written = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match within(until, written).await? {
            Ok(()) => Ok(()),
            Err(e) => Err(Fault::Io(e)),
        }
    }

    /// Reads once more by `until`: `Ok(true)` with data, `Ok(false)` when the server
    /// closed the connection.
    pub async fn read(&mut self, until: Option<tokio::time::Instant>) -> Result<bool, Fault> {
        let room = (self.cap + usize::from(self.overread))
            .saturating_sub(self.buf.len())
            .min(CHUNK);
        if room == 0 {
            return Err(Fault::TooLarge);
        }
        // Read into spare capacity, never zero-filling a buffer first; the buffer grows
        // with what was received (doubling), not to CHUNK at once.
        let want = room.min(self.buf.len().max(FIRST_READ));
        if self.buf.capacity() - self.buf.len() < want.div_ceil(2) {
            self.buf.reserve(want);
        }
        let read = async {
            loop {
                let limited = (&mut self.stream).take(room as u64);
                match read_into(limited, &mut self.buf).await {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            }
        };
        let n = within(until, read).await?.map_err(Fault::Io)?;
        if n == 0 {
            return Ok(false);
        }
        if let (None, Some(clock)) = (self.first_byte, self.clock) {
            self.first_byte = Some(clock.now());
        }
        if self.buf.len() > self.cap {
            self.buf.truncate(self.cap);
            return Err(Fault::TooLarge);
        }
        Ok(true)
    }

    /// Reads at least one more byte by `until`; the server closing is a fault here.
    pub async fn fill(&mut self, until: Option<tokio::time::Instant>) -> Result<(), Fault> {
        match self.read(until).await? {
            true => Ok(()),
            false => Err(Fault::Closed),
        }
    }
}

/// `work`, bounded by `until` when there is one.
async fn within<F: Future>(
    until: Option<tokio::time::Instant>,
    work: F,
) -> Result<F::Output, Fault> {
    match until {
        Some(until) => timeout_at(until, work).await.map_err(|_| Fault::Timeout),
        None => Ok(work.await),
    }
}

/// Reads once from `reader` into the spare capacity of `buf`.
async fn read_into<R: AsyncRead + Unpin>(mut reader: R, buf: &mut Vec<u8>) -> io::Result<usize> {
    reader.read_buf(buf).await
}
