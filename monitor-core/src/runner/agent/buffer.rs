//! The agent's disk buffer: every result is appended here before any upload attempt and
//! removed only once the control plane accepted it.
//!
//! Layout under `<buffer-dir>/results/`:
//! - segment files `NNNNNNNNNNNNNNNNNNNN.jsonl` (a sequence number, 20 digits, so names
//!   sort in order), each up to [`SEGMENT_RECORDS`] results, one JSON `ResultIn` per line
//!   (`{"id", "monitor", "tick", "result"}`). A segment is only ever appended to by the
//!   process that created it, and each write is synced (`fdatasync`) before it counts as
//!   buffered. A restarted agent never appends to an old segment, so a line torn by a
//!   crash stays the last line of its segment and is skipped on reading.
//! - `cursor`: `SEQ INDEX`, the first result not yet delivered (or dropped): the INDEX-th
//!   complete line of segment SEQ. Replaced atomically (write, sync, rename). Segments
//!   wholly before it are deleted.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// How many results a segment holds before the next one starts.
pub const SEGMENT_RECORDS: u64 = 1000;

/// Where a result sits: segment number and index of its line among the segment's
/// complete lines.
pub(crate) type Position = (u64, u64);

/// A segment's bookkeeping.
#[derive(Debug)]
struct Segment {
    /// Complete lines.
    count: u64,
    /// Written by this process, so every line is known complete JSON.
    clean: bool,
}

/// The results waiting for upload, on disk, with their count in memory.
#[derive(Debug)]
pub(crate) struct Buffer {
    dir: PathBuf,
    segments: BTreeMap<u64, Segment>,
    /// The first result not yet delivered.
    head: Position,
    /// Results from `head` to the end.
    len: u64,
    /// The segment this process appends to.
    active: Option<(u64, File)>,
    next_seq: u64,
    max: u64,
    /// Results dropped because the buffer was full, since the start.
    pub(crate) dropped: u64,
    /// A problem to log that did not stop anything.
    pub(crate) warning: Option<String>,
}

/// What opening a buffer found.
#[derive(Debug, Default)]
pub(crate) struct Opened {
    /// Lines skipped as torn or unreadable.
    pub(crate) skipped: u64,
    /// Results dropped at once because more than the maximum were buffered.
    pub(crate) dropped: u64,
}

/// A batch read from the head of the buffer.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The results, each one JSON `ResultIn`.
    pub(crate) lines: Vec<String>,
    /// Just after the last of them: acknowledging the batch moves the head here.
    pub(crate) end: Position,
}

fn segment_name(seq: u64) -> String {
    format!("{seq:020}.jsonl")
}

/// The complete lines of a segment's text that are JSON (a torn last line, or anything
/// unreadable, is left out).
fn records(text: &str, clean: bool) -> impl Iterator<Item = &str> {
    // A last line without its newline was torn by a crash while being written.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .split_terminator('\n')
        .filter(move |line| clean || is_json(line))
}

fn is_json(line: &str) -> bool {
    !line.trim().is_empty() && serde_json::from_str::<serde::de::IgnoredAny>(line).is_ok()
}

/// Syncs a directory so that entries created, renamed or removed in it persist.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Buffer {
    /// Opens (creating if needed) the buffer in `dir`, holding at most `max` results.
    pub(crate) fn open(dir: &Path, max: u64) -> io::Result<(Buffer, Opened)> {
        fs::create_dir_all(dir)?;
        let mut seqs: Vec<u64> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".jsonl")
                && stem.len() == 20
                && let Ok(seq) = stem.parse::<u64>()
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let cursor = read_cursor(dir);
        let mut opened = Opened::default();
        let mut segments = BTreeMap::new();
        for seq in &seqs {
            let path = dir.join(segment_name(*seq));
            if cursor.is_some_and(|(c, _)| *seq < c) {
                // Delivered; its removal was interrupted.
                let _ = fs::remove_file(&path);
                continue;
            }
            let bytes = fs::read(&path)?;
            let text = String::from_utf8_lossy(&bytes);
            let lines = text.split_terminator('\n').count() as u64;
            let count = records(&text, false).count() as u64;
            opened.skipped += lines - count;
            if count == 0 {
                let _ = fs::remove_file(&path);
                continue;
            }
            segments.insert(
                *seq,
                Segment {
                    count,
                    clean: false,
                },
            );
        }
        let next_seq = seqs.last().map_or(1, |s| s + 1);
        let head = match (cursor, segments.keys().next()) {
            (Some((c, i)), Some(&first)) if c == first => (c, i.min(segments[&c].count)),
            (_, Some(&first)) => (first, 0),
            (_, None) => (next_seq, 0),
        };
        let len = segments
            .iter()
            .map(|(seq, s)| {
                if *seq == head.0 {
                    s.count - head.1
                } else {
                    s.count
                }
            })
            .sum();
        let mut buffer = Buffer {
            dir: dir.to_owned(),
            segments,
            head,
            len,
            active: None,
            next_seq,
            max: max.max(1),
            dropped: 0,
            warning: None,
        };
        opened.dropped = buffer.enforce_bound();
        Ok((buffer, opened))
    }

    /// Results waiting.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The maximum.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// Appends results (each one line of JSON without a newline) and syncs them to disk;
    /// then drops the oldest while more than the maximum are buffered. Returns how many
    /// were dropped.
    pub(crate) fn append(&mut self, lines: &[String]) -> io::Result<u64> {
        let mut rest = lines;
        while !rest.is_empty() {
            let (seq, room) = match &self.active {
                Some((seq, _)) => {
                    let count = self.segments.get(seq).map_or(0, |s| s.count);
                    (*seq, SEGMENT_RECORDS.saturating_sub(count))
                }
                None => (0, 0),
            };
            if room == 0 {
                self.start_segment()?;
                continue;
            }
            let take = rest.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            let (now, later) = rest.split_at(take);
            let mut text = String::with_capacity(now.iter().map(|l| l.len() + 1).sum());
            for line in now {
                text.push_str(line);
                text.push('\n');
            }
            let Some((_, file)) = self.active.as_mut() else {
                continue;
            };
            let before = file.metadata()?.len();
            let written = file
                .write_all(text.as_bytes())
                .and_then(|()| file.sync_data());
            if let Err(e) = written {
                // Leave no partial line behind; the next write starts a new segment.
                let _ = file.set_len(before);
                self.active = None;
                return Err(e);
            }
            if let Some(s) = self.segments.get_mut(&seq) {
                s.count += take as u64;
            }
            self.len += take as u64;
            rest = later;
        }
        Ok(self.enforce_bound())
    }

    fn start_segment(&mut self) -> io::Result<()> {
        let seq = self.next_seq;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(self.dir.join(segment_name(seq)))?;
        sync_dir(&self.dir);
        self.next_seq += 1;
        if self.segments.is_empty() {
            self.head = (seq, 0);
        }
        self.segments.insert(
            seq,
            Segment {
                count: 0,
                clean: true,
            },
        );
        self.active = Some((seq, file));
        Ok(())
    }

    /// Drops the oldest results beyond the maximum; returns how many.
    fn enforce_bound(&mut self) -> u64 {
        if self.len <= self.max {
            return 0;
        }
        let n = self.len - self.max;
        let to = self.position_after(n);
        let removed = self.advance(to);
        self.dropped += removed;
        removed
    }

    /// The position `n` results after the head (or the end).
    fn position_after(&self, mut n: u64) -> Position {
        let mut end = self.head;
        for (&seq, s) in self.segments.range(self.head.0..) {
            let from = if seq == self.head.0 { self.head.1 } else { 0 };
            let here = s.count - from;
            if n <= here {
                return (seq, from + n);
            }
            n -= here;
            end = (seq, s.count);
        }
        end
    }

    /// Reads up to `max` results from the head.
    pub(crate) fn peek(&self, max: usize) -> io::Result<Batch> {
        let mut lines = Vec::new();
        let mut end = self.head;
        for (&seq, s) in self.segments.range(self.head.0..) {
            if lines.len() >= max {
                break;
            }
            let from = if seq == self.head.0 { self.head.1 } else { 0 };
            if from >= s.count {
                continue;
            }
            let bytes = fs::read(self.dir.join(segment_name(seq)))?;
            let text = String::from_utf8_lossy(&bytes);
            let want = (max - lines.len()) as u64;
            let taken: Vec<String> = records(&text, s.clean)
                .take(usize::try_from(s.count).unwrap_or(usize::MAX))
                .skip(usize::try_from(from).unwrap_or(usize::MAX))
                .take(usize::try_from(want).unwrap_or(usize::MAX))
                .map(str::to_owned)
                .collect();
            end = (seq, from + taken.len() as u64);
            lines.extend(taken);
        }
        Ok(Batch { lines, end })
    }

    /// The results have been delivered (or are given up): moves the head past them.
    /// Returns how many left the buffer (fewer when some were dropped meanwhile).
    pub(crate) fn acknowledge(&mut self, end: Position) -> u64 {
        self.advance(end)
    }

    /// Moves the head forward to `to` (never back), persists it, and deletes the
    /// segments wholly before it. Returns how many results left the buffer.
    fn advance(&mut self, to: Position) -> u64 {
        if to <= self.head {
            return 0;
        }
        let mut removed = 0;
        let mut done = Vec::new();
        let mut head = self.head;
        for (&seq, s) in self.segments.range(self.head.0..) {
            if seq > to.0 {
                break;
            }
            let from = if seq == head.0 { head.1 } else { 0 };
            let until = if seq == to.0 {
                to.1.min(s.count)
            } else {
                s.count
            };
            removed += until.saturating_sub(from);
            head = (seq, until);
            if until >= s.count {
                done.push(seq);
            }
        }
        for seq in &done {
            self.segments.remove(seq);
            if self.active.as_ref().is_some_and(|(a, _)| a == seq) {
                self.active = None;
            }
        }
        self.head = match self.segments.keys().next() {
            Some(&first) if first == head.0 => head,
            Some(&first) => (first, 0),
            None => (self.next_seq, 0),
        };
        self.len -= removed.min(self.len);
        if let Err(e) = write_cursor(&self.dir, self.head) {
            // Harmless but worth a line: delivered results may be sent again after a
            // restart, and the control plane ignores duplicates.
            self.warning = Some(format!("cannot write the buffer cursor: {e}"));
        }
        for seq in done {
            let _ = fs::remove_file(self.dir.join(segment_name(seq)));
        }
        sync_dir(&self.dir);
        removed
    }
}

fn read_cursor(dir: &Path) -> Option<Position> {
    let text = fs::read_to_string(dir.join("cursor")).ok()?;
    let mut parts = text.split_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let index = parts.next()?.parse().ok()?;
    Some((seq, index))
}

fn write_cursor(dir: &Path, (seq, index): Position) -> io::Result<()> {
    write_atomically(&dir.join("cursor"), format!("{seq} {index}\n").as_bytes())
}

/// Writes a file so that a crash leaves either the old or the new content: a temporary
/// file written and synced, then renamed over.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Reads every result waiting in the buffer directory `dir` (the `results` directory
/// inside an agent's buffer dir), oldest first, without changing anything.
pub(crate) fn read_all(dir: &Path) -> io::Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut seqs: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            let stem = name.to_str()?.strip_suffix(".jsonl")?.to_owned();
            (stem.len() == 20).then(|| stem.parse().ok()).flatten()
        })
        .collect();
    seqs.sort_unstable();
    let cursor = read_cursor(dir);
    let mut out = Vec::new();
    for seq in seqs {
        let skip = match cursor {
            Some((c, _)) if seq < c => continue,
            Some((c, i)) if seq == c => i,
            _ => 0,
        };
        let bytes = match fs::read(dir.join(segment_name(seq))) {
            Ok(b) => b,
            // Deleted meanwhile by a running agent.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let text = String::from_utf8_lossy(&bytes);
        out.extend(
            records(&text, false)
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .map(str::to_owned),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "monitors-buffer-{name}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn lines(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("{{\"n\":{i}}}")).collect()
    }

    #[test]
    fn appends_peeks_acknowledges_and_reopens() {
        let dir = temp("basic");
        let (mut b, _) = Buffer::open(&dir, 10_000).unwrap();
        assert_eq!(b.append(&lines(0..2500)).unwrap(), 0);
        assert_eq!(b.len(), 2500);
        let batch = b.peek(1200).unwrap();
        assert_eq!(batch.lines.len(), 1200);
        assert_eq!(batch.lines[0], "{\"n\":0}");
        assert_eq!(batch.lines[1199], "{\"n\":1199}");
        assert_eq!(b.acknowledge(batch.end), 1200);
        assert_eq!(b.len(), 1300);
        drop(b);
        let (mut b, opened) = Buffer::open(&dir, 10_000).unwrap();
        assert_eq!(opened.skipped, 0);
        assert_eq!(b.len(), 1300);
        let batch = b.peek(5000).unwrap();
        assert_eq!(batch.lines.first().unwrap(), "{\"n\":1200}");
        assert_eq!(batch.lines.last().unwrap(), "{\"n\":2499}");
        b.acknowledge(batch.end);
        assert_eq!(b.len(), 0);
        // Appending after everything was delivered starts afresh.
        b.append(&lines(7..8)).unwrap();
        assert_eq!(b.peek(10).unwrap().lines, lines(7..8));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn skips_a_torn_last_line_and_never_appends_after_it() {
        let dir = temp("torn");
        let (mut b, _) = Buffer::open(&dir, 100).unwrap();
        b.append(&lines(0..3)).unwrap();
        drop(b);
        let seg = dir.join(segment_name(1));
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"n\":3, \"tor").unwrap();
        drop(f);
        let (mut b, opened) = Buffer::open(&dir, 100).unwrap();
        assert_eq!(opened.skipped, 1);
        assert_eq!(b.len(), 3);
        b.append(&lines(4..5)).unwrap();
        let all = b.peek(100).unwrap().lines;
        assert_eq!(all, [lines(0..3), lines(4..5)].concat());
        assert_eq!(read_all(&dir).unwrap(), all);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn drops_the_oldest_beyond_the_maximum() {
        let dir = temp("bound");
        let (mut b, _) = Buffer::open(&dir, 5).unwrap();
        assert_eq!(b.append(&lines(0..3)).unwrap(), 0);
        assert_eq!(b.append(&lines(3..8)).unwrap(), 3);
        assert_eq!(b.len(), 5);
        assert_eq!(b.dropped, 3);
        // A batch read before a drop acknowledges only what is still there.
        let batch = b.peek(2).unwrap();
        assert_eq!(batch.lines, lines(3..5));
        assert_eq!(b.append(&lines(8..9)).unwrap(), 1);
        assert_eq!(b.acknowledge(batch.end), 1);
        assert_eq!(b.peek(10).unwrap().lines, lines(5..9));
        drop(b);
        let (b, _) = Buffer::open(&dir, 2).unwrap();
        assert_eq!(b.dropped, 2);
        assert_eq!(b.peek(10).unwrap().lines, lines(7..9));
        fs::remove_dir_all(&dir).unwrap();
    }
}
