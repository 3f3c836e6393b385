//! What the agent's loops share: the control plane client, the buffer, the counters,
//! the process's metrics, and the backoff between retries.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::warn;

use super::api::Api;
use super::buffer::Buffer;
use crate::runner::process_metrics::ProcessMetrics;
use crate::runner::schedule::{Cadence, Job};

/// Backoff between retries: 1 s, doubling, up to a maximum.
pub(super) struct Backoff {
    pub(super) next: Duration,
    pub(super) max: Duration,
}

impl Backoff {
    pub(super) fn new(max: Duration) -> Self {
        Backoff {
            next: Duration::from_secs(1).min(max),
            max,
        }
    }
    pub(super) fn reset(&mut self) {
        self.next = Duration::from_secs(1).min(self.max);
    }
    pub(super) fn next(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(self.max);
        now
    }
}

/// What the agent's tasks share.
pub(super) struct Shared {
    pub(super) api: Api,
    pub(super) buffer: Mutex<Buffer>,
    /// Results were appended.
    pub(super) appended: Notify,
    pub(super) dir: PathBuf,
    pub(super) batch: AtomicUsize,
    pub(super) backoff_max: Duration,
    pub(super) uploaded: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) lost: AtomicU64,
    /// What is assigned and how late checks start.
    pub(super) process: ProcessMetrics,
}

impl Shared {
    /// Records the assigned monitors: how many, and their checks due per second on this
    /// agent (one tick in `every` of each one's interval).
    pub(super) fn loaded(&self, jobs: &[Job]) {
        let due = jobs
            .iter()
            .map(|job| {
                let every = match job.cadence {
                    Cadence::WallClock { every, .. } => every.max(1),
                    Cadence::Spread => 1,
                };
                1.0 / (job.monitor.frequency().as_secs().max(1) * every) as f64
            })
            .sum();
        self.process.set_loaded(jobs.len(), due);
    }

    pub(super) fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the buffer off the async workers (it reads, writes and syncs files).
    pub(super) async fn with_buffer<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Buffer) -> T + Send + 'static,
    ) -> T {
        let this = self.clone();
        // The blocking thread logs to the subscriber of the task that asked.
        let logs = tracing::dispatcher::get_default(Clone::clone);
        let run = move || {
            let mut buffer = this.buffer();
            let out = f(&mut buffer);
            let warning = buffer.warning.take();
            drop(buffer);
            if let Some(w) = warning {
                tracing::dispatcher::with_default(&logs, || warn!("{w}"));
            }
            out
        };
        match tokio::task::spawn_blocking(run).await {
            Ok(out) => out,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}
