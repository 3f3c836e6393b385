//! The bytes of a bundle's stream as the reader takes them: a buffered reader without a
//! leading byte order mark, the bytes since the last monitor with the line and column
//! where they start, and the scan that finds where a JSON value ends.

use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read};

/// How much of the stream is read at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// The UTF-8 byte order mark.
pub(super) const BOM: &[u8] = "\u{feff}".as_bytes();

/// The stream, without a leading byte order mark, and what was read of it since the last
/// mark (the end of a monitor), with where the mark is in the text.
pub(super) struct Source<'i> {
    /// The stream, read a chunk at a time.
    inner: BufReader<Box<dyn Read + 'i>>,
    /// The bytes since the mark.
    pub(super) since: Vec<u8>,
    /// The mark's line, from 1.
    pub(super) line: usize,
    /// The bytes before the mark on its line.
    pub(super) column: usize,
    /// The error of a failed read, which serde_json reports without its kind.
    pub(super) failed: Option<io::Error>,
}

/// The line and the bytes before on it of the place `bytes` after (`line`, `column`).
pub(super) fn advance((line, column): (usize, usize), bytes: &[u8]) -> (usize, usize) {
    match memchr::memrchr(b'\n', bytes) {
        Some(last) => (
            line + memchr::memchr_iter(b'\n', bytes).count(),
            bytes.len() - last - 1,
        ),
        None => (line, column + bytes.len()),
    }
}

/// Whether `b` is JSON's whitespace.
fn blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'i> Source<'i> {
    /// `input` from its start, a byte order mark there dropped.
    pub(super) fn new(mut input: Box<dyn Read + 'i>) -> io::Result<Self> {
        // Reading the whole text dropped two marks (one, then one more while parsing).
        let mut first = [0; 6];
        let mut got = 0;
        while got < first.len() {
            match input.read(&mut first[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut start = 0;
        for _ in 0..2 {
            if first[start..got].starts_with(BOM) {
                start += BOM.len();
            }
        }
        let ahead = io::Cursor::new(first[start..got].to_vec());
        Ok(Source {
            inner: BufReader::with_capacity(CHUNK_BYTES, Box::new(ahead.chain(input))),
            since: Vec::new(),
            line: 1,
            column: 0,
            failed: None,
        })
    }

    /// Keeps a failed read's error for the caller, and gives serde_json its like.
    fn fail(&mut self, e: io::Error) -> io::Error {
        let told = io::Error::new(e.kind(), e.to_string());
        self.failed = Some(e);
        told
    }

    /// The buffered bytes, read more when there are none; empty at the end.
    fn buffered(&mut self) -> io::Result<&[u8]> {
        loop {
            match self.inner.fill_buf() {
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(self.inner.buffer())
    }

    /// Takes `n` buffered bytes into `since`.
    pub(super) fn take(&mut self, n: usize) {
        self.since
            .extend_from_slice(self.inner.buffer().get(..n).unwrap_or_default());
        self.inner.consume(n);
    }

    /// The next byte, not taken.
    pub(super) fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.buffered()?.first().copied())
    }

    /// Takes the blanks that come next.
    pub(super) fn skip_blanks(&mut self) -> io::Result<()> {
        loop {
            let buffered = self.buffered()?;
            let n = buffered.iter().take_while(|b| blank(**b)).count();
            let all = n == buffered.len();
            self.take(n);
            if !all || n == 0 {
                return Ok(());
            }
        }
    }

    /// Takes the JSON value that starts here as far as its brackets, quotes or (for a
    /// scalar) the next delimiter say: whether it ended before the stream did. Its syntax
    /// is checked by whoever reads it.
    pub(super) fn take_value(&mut self) -> io::Result<bool> {
        let mut scan = Scan::default();
        loop {
            let buffered = self.buffered()?;
            if buffered.is_empty() {
                return Ok(scan.scalar && scan.started);
            }
            match scan.feed(buffered) {
                Some(n) => {
                    self.take(n);
                    return Ok(true);
                }
                None => {
                    let n = buffered.len();
                    self.take(n);
                }
            }
        }
    }

    /// Moves the mark to the end of what was read.
    pub(super) fn mark(&mut self) {
        (self.line, self.column) = advance((self.line, self.column), &self.since);
        self.since.clear();
    }
}

/// Where a value being taken stands.
#[derive(Debug, Default)]
struct Scan {
    started: bool,
    /// A number or a literal, which ends at a delimiter.
    scalar: bool,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl Scan {
    /// Reads on through `bytes`: how many of them the value takes, if it ends there.
    fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Most of a monitor's bytes are in its strings: on to the next quote or
                // escape at once.
                let at = i + memchr::memchr2(b'"', b'\\', bytes.get(i..)?)?;
                if bytes.get(at) == Some(&b'\\') {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                    if self.depth == 0 {
                        return Some(at + 1);
                    }
                }
                i = at + 1;
                continue;
            }
            i += 1;
            if !self.started {
                self.started = true;
                match b {
                    b'{' | b'[' => self.depth = 1,
                    b'"' => self.in_string = true,
                    _ => self.scalar = true,
                }
                continue;
            }
            if self.scalar {
                if blank(b) || matches!(b, b',' | b']' | b'}') {
                    return Some(i - 1);
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// The reader serde_json reads the top level through: what it is given goes into
/// [`Source::since`] too.
pub(super) struct Tracked<'s, 'i>(pub(super) &'s RefCell<Source<'i>>);

impl Read for Tracked<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut source = self.0.borrow_mut();
        match source.inner.read(out) {
            Ok(n) => {
                let given = out.get(..n).unwrap_or_default();
                source.since.extend_from_slice(given);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(source.fail(e)),
        }
    }
}
