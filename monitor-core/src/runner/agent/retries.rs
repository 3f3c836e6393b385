//! Retries in another location (`retry.same_region = false`, control-plane/API.md
//! "Retries in another location"): a failed first attempt of a monitor the assignment
//! marks `retry_elsewhere` is handed to the control plane, which gives it to an agent of
//! the next location of the monitor's rotation; that agent runs the remaining attempts and
//! uploads the one result of the tick, from its own location. When the handoff fails (the
//! control plane is unreachable, older, full, or no other location takes retries), the
//! agent retries the check itself, logging why once per monitor, so no check is lost.
//!
//! Each attempt says where it ran (`Attempt::location`). The attempts of checks handed to
//! this agent take the scheduler's permits like its own retries, due when their backoff
//! ends.
//!
//! The same poll (with `triggers=true`) brings triggered runs (`cargo xtask trigger`):
//! each runs once at once, with its retries and the scheduler's permits but outside the
//! schedule (its ticks are untouched), and its result is uploaded with its trigger and
//! the id `{monitor}/{location}/trigger/{trigger}`, tick 0.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monitor_spec::api::{PendingRetry, RetryRequest, TriggeredRun};
use monitor_spec::result::CheckResult;
use monitor_spec::spec::TcpMonitor;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch as signal};
use tracing::instrument::WithSubscriber;
use tracing::{debug, info, warn};

use super::shared::{Backoff, Shared};
use crate::runner::schedule::{Permits, is_slow};
use crate::{Engine, ValidMonitor};
use monitor_spec::api::ResultIn;

/// The most monitors whose fallback (retrying here) is logged; past it, no more lines.
const MAX_LOGGED: usize = 10_000;

/// Milliseconds since the unix epoch, now.
fn now_ms() -> u64 {
    u64::try_from((OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).max(0))
        .unwrap_or(u64::MAX)
}

/// Hands failed first attempts over, and runs the checks handed to this agent.
pub(super) struct Retrying {
    pub(super) engine: Engine,
    pub(super) location: String,
    pub(super) lines: mpsc::UnboundedSender<String>,
    pub(super) shared: Arc<Shared>,
    /// The monitors whose fallback was logged (at most [`MAX_LOGGED`]).
    logged: Mutex<HashSet<String>>,
    /// The scheduler's permits, which every attempt run here takes.
    permits: Permits,
}

impl Retrying {
    pub(super) fn new(
        engine: Engine,
        location: String,
        lines: mpsc::UnboundedSender<String>,
        shared: Arc<Shared>,
        permits: Permits,
    ) -> Retrying {
        Retrying {
            engine,
            location,
            lines,
            shared,
            logged: Mutex::new(HashSet::new()),
            permits,
        }
    }

    /// Marks the attempts without a location as run here.
    pub(super) fn locate(&self, result: &mut CheckResult) {
        for a in &mut result.attempts {
            if a.location.is_none() {
                a.location = Some(self.location.clone());
            }
        }
    }

    /// Buffers the result of `tick` for upload, from this location.
    pub(super) fn buffer(&self, tick: u64, mut result: CheckResult) {
        self.locate(&mut result);
        let monitor = result.id.to_string();
        let line = ResultIn {
            id: format!("{monitor}/{}/{tick}", self.location),
            monitor,
            tick,
            result,
            trigger: None,
        };
        if let Ok(line) = serde_json::to_string(&line) {
            let _ = self.lines.send(line);
        }
    }

    /// Runs a triggered check once (with its retries, taking the scheduler's permits)
    /// and buffers its result for the trigger.
    pub(super) async fn triggered(&self, monitor: &ValidMonitor, trigger: String) {
        let _task = self.permits.task();
        let slow = is_slow(monitor);
        let permits = self.permits.clone();
        let result = self
            .engine
            .check_admitted(monitor, |_| {
                let permits = permits.clone();
                async move { permits.acquire(tokio::time::Instant::now(), slow).await }
            })
            .await;
        // `None`: the agent is stopping.
        let Some(mut result) = result else { return };
        self.locate(&mut result);
        let monitor = result.id.to_string();
        let line = ResultIn {
            id: format!("{monitor}/{}/trigger/{trigger}", self.location),
            monitor,
            tick: 0,
            result,
            trigger: Some(trigger),
        };
        if let Ok(line) = serde_json::to_string(&line) {
            let _ = self.lines.send(line);
        }
    }

    /// A check whose first attempt failed with retries left: handed to another location,
    /// or retried here when that fails.
    pub(super) fn handoff(
        self: &Arc<Self>,
        tick: u64,
        monitor: ValidMonitor,
        mut result: CheckResult,
    ) {
        self.locate(&mut result);
        let this = Arc::clone(self);
        let task = async move {
            let backoff = monitor.spec().retry.backoff_seconds(1);
            let not_before_ms = now_ms().saturating_add(backoff.saturating_mul(1000));
            let request = RetryRequest {
                agent: this.shared.api.agent().to_owned(),
                location: this.location.clone(),
                monitor: result.id.to_string(),
                tick,
                not_before_ms,
                result,
            };
            match this.shared.api.hand_retry(&request).await {
                Ok(to) => {
                    debug!(monitor = %request.monitor, tick, %to, "retry handed to another location")
                }
                Err(why) => {
                    let id = &request.monitor;
                    let first = {
                        let mut logged = this.logged.lock().unwrap_or_else(|e| e.into_inner());
                        logged.len() < MAX_LOGGED && logged.insert(id.clone())
                    };
                    if first {
                        info!(
                            "monitor {id}: retrying here, in {}: the control plane did not take the retry for another location ({}); said once per monitor",
                            this.location, why.detail
                        );
                    }
                    this.finish(&monitor, tick, request.result, not_before_ms)
                        .await;
                }
            }
        };
        tokio::spawn(task.with_current_subscriber());
    }

    /// Runs the remaining attempts of `so_far` (from `not_before_ms` on, as its strategy
    /// allows) and buffers one result of `tick` with every attempt, the received first.
    pub(super) async fn finish(
        &self,
        monitor: &ValidMonitor,
        tick: u64,
        so_far: CheckResult,
        not_before_ms: u64,
    ) {
        // A stop waits for this check as for the scheduled ones.
        let _task = self.permits.task();
        let wait = not_before_ms.saturating_sub(now_ms());
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let strategy = monitor.spec().retry;
        let slow = is_slow(monitor);
        let done = u32::try_from(so_far.attempts.len()).unwrap_or(u32::MAX);
        let left = (strategy.max_retries() + 1).saturating_sub(done);
        let budget = strategy
            .max_duration_seconds()
            .map(|s| so_far.started_at + Duration::from_secs(s));
        let more = if left == 0 {
            None
        } else {
            self.engine
                .check_admitted(monitor, |retry| {
                    // The engine waits its own backoff before retry `retry`; the strategy
                    // wants that of retry `done + retry` of the whole check.
                    let extra = if retry == 0 {
                        0
                    } else {
                        strategy
                            .backoff_seconds(done + retry)
                            .saturating_sub(strategy.backoff_seconds(retry))
                    };
                    let permits = self.permits.clone();
                    async move {
                        if retry >= left {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_secs(extra)).await;
                        match budget {
                            Some(end) if retry > 0 && OffsetDateTime::now_utc() > end => None,
                            _ => permits.acquire(tokio::time::Instant::now(), slow).await,
                        }
                    }
                })
                .await
        };
        self.buffer(tick, combine(so_far, more, &self.location));
    }
}

/// The one result of a check continued here: the attempts of `so_far` (where they ran),
/// then those of `more` (here, in `location`), with the verdict and facts of the last and
/// the start of the first; `so_far` alone when nothing more ran.
fn combine(so_far: CheckResult, more: Option<CheckResult>, location: &str) -> CheckResult {
    let Some(mut result) = more else {
        return so_far;
    };
    for a in &mut result.attempts {
        a.location.get_or_insert_with(|| location.to_owned());
    }
    let mut attempts = so_far.attempts;
    attempts.append(&mut result.attempts);
    result.attempts = attempts;
    result.started_at = so_far.started_at;
    result
}

/// Long polls the checks handed to this agent's location and runs each one
/// ([`Retrying::finish`]) until `stop`. A control plane without the route (older) is
/// asked again after the longest backoff; failures are logged when their kind changes.
pub(super) async fn retry_loop(
    this: Arc<Retrying>,
    wait: Duration,
    mut stop: signal::Receiver<bool>,
) {
    let mut backoff = Backoff::new(this.shared.backoff_max);
    let mut failing: Option<String> = None;
    loop {
        let answer = tokio::select! {
            answer = this.shared.api.take_retries(wait) => answer,
            _ = stop.changed() => return,
        };
        match answer {
            Ok(answer) => {
                if failing.take().is_some() {
                    info!("the retries poll works again");
                }
                backoff.reset();
                for retry in answer.retries {
                    run_handed(&this, retry);
                }
                for run in answer.triggered {
                    run_triggered(&this, run);
                }
            }
            Err(failure) => {
                if failing.as_deref() != Some(failure.kind.as_str()) {
                    warn!(
                        "retries poll failed ({}); checks of other locations are not retried here meanwhile",
                        failure.detail
                    );
                    failing = Some(failure.kind.clone());
                }
                let pause = if failure.kind == "http 404" {
                    backoff.max
                } else if failure.moved {
                    Duration::ZERO
                } else {
                    backoff.next()
                };
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}

/// Starts a triggered run; one this build cannot read is logged and skipped (the trigger
/// shows it missing).
fn run_triggered(this: &Arc<Retrying>, run: TriggeredRun<serde_json::Value>) {
    let TriggeredRun { monitor, trigger } = run;
    let valid = serde_json::from_value::<TcpMonitor>(monitor)
        .map_err(|e| e.to_string())
        .and_then(|spec| spec.into_valid().map_err(|e| e.to_string()));
    match valid {
        Ok(monitor) => {
            info!(monitor = %monitor.spec().id, %trigger, "running a triggered check");
            let this = Arc::clone(this);
            let task = async move { this.triggered(&monitor, trigger).await };
            tokio::spawn(task.with_current_subscriber());
        }
        Err(why) => warn!("cannot run a check of trigger {trigger} here ({why})"),
    }
}

/// Starts a handed check; one this build cannot read is logged and its first attempt
/// uploaded as the result.
fn run_handed(this: &Arc<Retrying>, retry: PendingRetry<serde_json::Value>) {
    let PendingRetry {
        monitor,
        tick,
        from,
        not_before_ms,
        result,
    } = retry;
    let valid = serde_json::from_value::<TcpMonitor>(monitor)
        .map_err(|e| e.to_string())
        .and_then(|spec| spec.into_valid().map_err(|e| e.to_string()));
    match valid {
        Ok(monitor) => {
            debug!(monitor = %monitor.spec().id, tick, %from, "retrying a check of another location");
            let this = Arc::clone(this);
            let task = async move { this.finish(&monitor, tick, result, not_before_ms).await };
            tokio::spawn(task.with_current_subscriber());
        }
        Err(why) => {
            warn!(
                "cannot retry monitor {} of {from} here ({why}); uploading its first attempt",
                result.id
            );
            this.buffer(tick, result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_spec::result::Status;

    fn result(status: &str, started_at: &str, locations: &[Option<&str>]) -> CheckResult {
        let attempts: Vec<serde_json::Value> = locations
            .iter()
            .map(|l| {
                serde_json::json!({
                    "status": status, "error": null, "timings": {"total_ms": 1.0},
                    "address": null, "started_at": started_at, "location": l
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "id": "m", "name": "m", "target": "127.0.0.1:1", "status": status,
            "error": null, "timings": {"total_ms": 1.0}, "address": null,
            "attempts": attempts, "assertions": [], "response_excerpt": "", "tls": null,
            "started_at": started_at
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_continued_check_keeps_the_first_attempts_and_takes_the_last_verdict() {
        let first = result("failed", "2026-01-01T00:00:00Z", &[Some("eu")]);
        let retried = result("passed", "2026-01-01T00:00:02Z", &[None]);
        let whole = combine(first.clone(), Some(retried), "us");
        assert_eq!(whole.status, Status::Passed);
        assert_eq!(whole.started_at, first.started_at);
        let places: Vec<Option<&str>> = whole
            .attempts
            .iter()
            .map(|a| a.location.as_deref())
            .collect();
        assert_eq!(places, [Some("eu"), Some("us")]);
        assert_eq!(combine(first.clone(), None, "us"), first);
    }
}
