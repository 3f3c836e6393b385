//! The agent's loops: results written to the buffer as they come, uploaded in batches
//! with backoff, the assignment long-polled and handed to the schedule, and the metrics
//! file written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch as signal};
use tokio::time::{Instant, sleep, sleep_until};
use tracing::{info, warn};

use super::api::{Failure, Poll, Post};
use super::assignment::read_assignment;
use super::buffer;
use super::shared::{Backoff, Shared};
use crate::runner::schedule::Job;

/// Writes results to the buffer as they come, many per sync; after a stop, writes what
/// is queued and ends.
pub(super) async fn write_loop(
    shared: Arc<Shared>,
    mut lines: mpsc::UnboundedReceiver<String>,
    mut stop: signal::Receiver<bool>,
) {
    let mut drops = DropLog::default();
    loop {
        let first = tokio::select! {
            line = lines.recv() => line,
            _ = stop.changed() => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < 10_000 {
            match lines.try_recv() {
                Ok(line) => batch.push(line),
                Err(_) => break,
            }
        }
        write(&shared, batch, &mut drops).await;
    }
    let mut rest = Vec::new();
    while let Ok(line) = lines.try_recv() {
        rest.push(line);
    }
    if !rest.is_empty() {
        write(&shared, rest, &mut drops).await;
    }
    drops.flush(&shared, true);
}

/// Drops are logged at once, then at most every 10 s, so a full buffer under load does
/// not flood the log.
#[derive(Default)]
struct DropLog {
    unlogged: u64,
    last: Option<Instant>,
}

impl DropLog {
    fn add(&mut self, shared: &Shared, n: u64) {
        self.unlogged += n;
        self.flush(shared, false);
    }

    fn flush(&mut self, shared: &Shared, now: bool) {
        if self.unlogged == 0
            || !now
                && self
                    .last
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        let (max, total) = {
            let b = shared.buffer();
            (b.max(), b.dropped)
        };
        warn!(
            "dropped {} oldest buffered results (buffer full at {max}; {total} dropped in all)",
            self.unlogged
        );
        self.unlogged = 0;
        self.last = Some(Instant::now());
    }
}

async fn write(shared: &Arc<Shared>, batch: Vec<String>, drops: &mut DropLog) {
    let n = batch.len() as u64;
    match shared.with_buffer(move |b| b.append(&batch)).await {
        Ok(dropped) => {
            shared.appended.notify_one();
            if dropped > 0 {
                drops.add(shared, dropped);
            }
        }
        Err(e) => {
            shared.lost.fetch_add(n, Ordering::Relaxed);
            warn!(
                "cannot write {n} results to the buffer {}: {e}; they are lost",
                shared.dir.display()
            );
        }
    }
}

/// What one upload attempt did.
enum Step {
    /// Nothing waits.
    Empty,
    /// A batch left the buffer (accepted, or refused for good).
    Sent,
    /// The batch was too large; the next is smaller.
    Smaller,
    /// The control plane did not take it; try again later.
    Failed(Failure),
    /// The buffer could not be read.
    Unreadable(String),
}

/// Uploads one batch from the head of the buffer.
async fn upload_once(shared: &Arc<Shared>) -> Step {
    let size = shared.batch.load(Ordering::Relaxed);
    let batch = match shared.with_buffer(move |b| b.peek(size)).await {
        Ok(b) => b,
        Err(e) => return Step::Unreadable(e.to_string()),
    };
    if batch.lines.is_empty() {
        return Step::Empty;
    }
    let n = batch.lines.len() as u64;
    let outcome = shared.api.post(&batch.lines).await;
    let end = batch.end;
    match outcome {
        Post::Accepted {
            accepted,
            duplicates,
        } => {
            shared.with_buffer(move |b| b.acknowledge(end)).await;
            shared
                .uploaded
                .fetch_add(accepted.max(n), Ordering::Relaxed);
            shared.duplicates.fetch_add(duplicates, Ordering::Relaxed);
            Step::Sent
        }
        Post::TooLarge if n > 1 => {
            let smaller = usize::try_from(n / 2).unwrap_or(1).max(1);
            shared.batch.store(smaller, Ordering::Relaxed);
            warn!(
                "the control plane refused a batch of {n} results as too large (http 413); sending {smaller} at most from now on"
            );
            Step::Smaller
        }
        Post::TooLarge => {
            shared.with_buffer(move |b| b.acknowledge(end)).await;
            shared.rejected.fetch_add(n, Ordering::Relaxed);
            warn!("the control plane refused a single result as too large (http 413); dropping it",);
            Step::Sent
        }
        Post::Rejected { detail } => {
            shared.with_buffer(move |b| b.acknowledge(end)).await;
            shared.rejected.fetch_add(n, Ordering::Relaxed);
            warn!(
                "the control plane rejected a batch of {n} results ({detail}); dropping the batch"
            );
            Step::Sent
        }
        Post::Retry(f) => Step::Failed(f),
    }
}

/// Uploads while results wait, retrying with backoff, until stopped.
pub(super) async fn upload_loop(shared: Arc<Shared>, mut stop: signal::Receiver<bool>) {
    let mut backoff = Backoff::new(shared.backoff_max);
    let mut failing: Option<String> = None;
    let mut hops = Hops::default();
    loop {
        let step = tokio::select! {
            step = upload_once(&shared) => step,
            _ = stop.changed() => return,
        };
        let wait = match step {
            Step::Empty => {
                tokio::select! {
                    _ = shared.appended.notified() => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
            Step::Sent | Step::Smaller => {
                if failing.take().is_some() {
                    let waiting = shared.buffer().len();
                    info!("uploading results again ({waiting} still buffered)");
                }
                backoff.reset();
                hops.reset();
                continue;
            }
            Step::Failed(f) if hops.again(&f, shared.api.control_planes()) => continue,
            Step::Failed(f) => {
                if failing.as_deref() != Some(f.kind.as_str()) {
                    let waiting = shared.buffer().len();
                    warn!(
                        "cannot upload results ({}); {waiting} buffered, retrying with backoff up to {} s",
                        f.detail,
                        shared.backoff_max.as_secs()
                    );
                    failing = Some(f.kind);
                }
                backoff.next()
            }
            Step::Unreadable(e) => {
                let kind = format!("unreadable: {e}");
                if failing.as_deref() != Some(kind.as_str()) {
                    warn!(
                        "cannot read the buffer {}: {e}; retrying",
                        shared.dir.display()
                    );
                    failing = Some(kind);
                }
                backoff.next()
            }
        };
        tokio::select! {
            _ = sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Moves to other control planes since the last success: after a failure that moved the
/// agent to the next control plane, it tries that one at once, until it has tried every
/// one of the list; then it backs off as with one.
#[derive(Debug, Default)]
pub(super) struct Hops(usize);

impl Hops {
    /// Whether to try again at once after `failure`, with `control_planes` in the list.
    pub(super) fn again(&mut self, failure: &Failure, control_planes: usize) -> bool {
        if failure.moved && self.0 + 1 < control_planes {
            self.0 += 1;
            true
        } else {
            false
        }
    }

    /// A request succeeded.
    pub(super) fn reset(&mut self) {
        self.0 = 0;
    }
}

/// The last upload at a stop: batches until the buffer is empty or one fails.
pub(super) async fn upload_all(shared: &Arc<Shared>) {
    let mut hops = Hops::default();
    loop {
        match upload_once(shared).await {
            Step::Empty => return,
            Step::Sent | Step::Smaller => hops.reset(),
            Step::Failed(f) if hops.again(&f, shared.api.control_planes()) => {}
            Step::Failed(f) => {
                warn!(
                    "the last upload failed ({}); the results stay buffered",
                    f.detail
                );
                return;
            }
            Step::Unreadable(e) => {
                warn!("cannot read the buffer: {e}");
                return;
            }
        }
    }
}

/// How often the metrics file is written.
const METRICS_EVERY: Duration = Duration::from_secs(10);

/// The agent's metrics in the Prometheus text format: the process's families, then the
/// agent's own.
pub(super) fn metrics(shared: &Shared) -> String {
    use crate::report::{family, number};
    let (buffered, dropped) = {
        let buffer = shared.buffer();
        (buffer.len(), buffer.dropped)
    };
    let mut text = shared.process.render();
    let mut one = |name: &str, kind: &str, help: &str, value: Option<String>| {
        let samples = value.map(|v| (String::new(), v)).into_iter().collect();
        family(&mut text, name, kind, help, samples);
    };
    one(
        "monitors_agent_clock_offset_seconds",
        "gauge",
        "The control plane's clock minus this machine's, from the Date header of its last quick response.",
        shared.api.clock.offset().map(number),
    );
    let counters = [
        (
            "monitors_agent_results_uploaded_total",
            "counter",
            "Results the control plane accepted.",
            shared.uploaded.load(Ordering::Relaxed),
        ),
        (
            "monitors_agent_results_rejected_total",
            "counter",
            "Results in batches the control plane refused for good.",
            shared.rejected.load(Ordering::Relaxed),
        ),
        (
            "monitors_agent_results_dropped_total",
            "counter",
            "Results dropped because the buffer was full.",
            dropped,
        ),
        (
            "monitors_agent_results_lost_total",
            "counter",
            "Results that could not be written to the buffer.",
            shared.lost.load(Ordering::Relaxed),
        ),
        (
            "monitors_agent_results_buffered",
            "gauge",
            "Results waiting in the buffer.",
            buffered,
        ),
    ];
    for (name, kind, help, value) in counters {
        one(name, kind, help, Some(value.to_string()));
    }
    text
}

/// Writes the metrics to `path` (atomically), logging a failure once per kind.
pub(super) async fn write_metrics(shared: &Arc<Shared>, path: &Path) -> Result<(), String> {
    let text = metrics(shared);
    let path = path.to_owned();
    match tokio::task::spawn_blocking(move || buffer::write_atomically(&path, text.as_bytes()))
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes the metrics file every [`METRICS_EVERY`] until stopped.
pub(super) async fn metrics_loop(
    shared: Arc<Shared>,
    path: PathBuf,
    mut stop: signal::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        match write_metrics(&shared, &path).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                warn!("cannot write the metrics file {}: {e}", path.display());
                failing = true;
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = sleep(METRICS_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Long polls the assignment and hands each new one to the scheduler, saving it first.
pub(super) async fn poll_loop(
    shared: Arc<Shared>,
    mut etag: Option<String>,
    wait: Duration,
    jobs: mpsc::UnboundedSender<Vec<Job>>,
    location: String,
    mut stop: signal::Receiver<bool>,
) {
    let mut backoff = Backoff::new(shared.backoff_max);
    // `None` before the first answer; then whether the last poll failed and how.
    let mut state: Option<Option<String>> = None;
    let mut hops = Hops::default();
    loop {
        let started = Instant::now();
        let outcome = tokio::select! {
            o = shared.api.poll(etag.as_deref(), wait) => o,
            _ = stop.changed() => return,
        };
        let outcome = outcome.and_then(|poll| match poll {
            Poll::NotModified => Ok(None),
            Poll::Changed { etag: header, body } => {
                let (tag, list, agents) = read_assignment(&body).map_err(|e| Failure {
                    kind: "bad assignment".to_owned(),
                    detail: e,
                    moved: false,
                })?;
                let tag = header.unwrap_or(tag);
                Ok(Some((tag, list, agents, body)))
            }
        });
        match outcome {
            Ok(answer) => {
                match &state {
                    None => info!("control plane reachable"),
                    Some(Some(_)) => info!("control plane reachable again"),
                    Some(None) => {}
                }
                state = Some(None);
                backoff.reset();
                hops.reset();
                if let Some((tag, list, agents, body)) = answer
                    && etag.as_deref() != Some(tag.as_str())
                {
                    let path = shared.dir.join("assignment.json");
                    let saved = tokio::task::spawn_blocking(move || {
                        buffer::write_atomically(&path, body.as_bytes())
                    })
                    .await;
                    if let Ok(Err(e)) = saved {
                        warn!("cannot save the assignment: {e}");
                    }
                    info!(
                        "assignment {tag}: {} monitors ({agents} agents in {location})",
                        list.len()
                    );
                    shared.loaded(&list);
                    let _ = jobs.send(list);
                    etag = Some(tag);
                    // Poll again at once, for changes after this one.
                    continue;
                }
                // Never poll faster than once a second, whatever the server does with
                // `wait`.
                tokio::select! {
                    _ = sleep_until(started + Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
            Err(f) if hops.again(&f, shared.api.control_planes()) => {}
            Err(f) => {
                if state.as_ref().and_then(|s| s.as_deref()) != Some(f.kind.as_str()) {
                    let saved = if etag.is_some() {
                        "running the last assignment"
                    } else {
                        "no assignment yet"
                    };
                    warn!(
                        "cannot get the assignment ({}); {saved}, retrying with backoff up to {} s",
                        f.detail,
                        shared.backoff_max.as_secs()
                    );
                    state = Some(Some(f.kind));
                }
                tokio::select! {
                    _ = sleep(backoff.next()) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(moved: bool) -> Failure {
        Failure {
            kind: "cannot connect".to_owned(),
            detail: "cannot connect".to_owned(),
            moved,
        }
    }

    #[test]
    fn each_control_plane_is_tried_at_once_then_the_backoff_applies() {
        let mut hops = Hops::default();
        // Three control planes: two moves at once, then back off.
        assert!(hops.again(&failure(true), 3));
        assert!(hops.again(&failure(true), 3));
        assert!(!hops.again(&failure(true), 3));
        hops.reset();
        assert!(hops.again(&failure(true), 3));
        // A failure that did not move, or a single control plane: back off.
        assert!(!Hops::default().again(&failure(false), 3));
        assert!(!Hops::default().again(&failure(true), 1));
    }
}
