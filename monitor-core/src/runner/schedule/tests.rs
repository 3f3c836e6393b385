//! The schedule on the paused tokio clock, with scripted checks: fair permits between
//! attempts, lateness counted from the due time to the permit, overruns and the load
//! report. (The engine's side of admission, no permit held in a backoff, is tested with
//! its injected clock in `tests/it/engine.rs`.)

use std::collections::HashMap;
use std::sync::Mutex;

use monitor_spec::schedule::{Backoff, Frequency, RetryStrategy};
use monitor_spec::spec::TcpMonitor;

use super::*;

/// How a scripted monitor's attempts go: each holds its permit `attempt` long and fails
/// when `fails`.
#[derive(Debug, Clone, Copy)]
struct Plan {
    attempt: Duration,
    fails: bool,
}

/// An attempt as it started: which monitor, which retry, when.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    retry: u32,
    at: Instant,
}

/// Checks that follow their [`Plan`] on the tokio clock, retrying as the spec says.
#[derive(Clone)]
struct Script {
    plans: Arc<HashMap<String, Plan>>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Checker for Script {
    fn check<P, F, Fut>(
        &self,
        monitor: &ValidMonitor,
        mut admit: F,
    ) -> impl Future<Output = Option<CheckResult>> + Send
    where
        P: Send,
        F: FnMut(u32) -> Fut + Send,
        Fut: Future<Output = Option<P>> + Send,
    {
        let id = monitor.spec().id.clone();
        let plan = self.plans[&id];
        let strategy = monitor.spec().retry;
        let events = self.events.clone();
        async move {
            let mut retry = 0;
            loop {
                let Some(permit) = admit(retry).await else {
                    if retry == 0 {
                        return None;
                    }
                    break;
                };
                events.lock().unwrap().push(Event {
                    id: id.clone(),
                    retry,
                    at: Instant::now(),
                });
                tokio::time::sleep(plan.attempt).await;
                drop(permit);
                if !plan.fails || retry >= strategy.max_retries() {
                    break;
                }
                retry += 1;
                tokio::time::sleep(Duration::from_secs(strategy.backoff_seconds(retry))).await;
            }
            Some(outcome(&id, plan.fails))
        }
    }
}

fn outcome(id: &str, failed: bool) -> CheckResult {
    let status = if failed {
        Status::Failed
    } else {
        Status::Passed
    };
    crate::runner::result_of(id, status)
}

/// What the outlet heard.
#[derive(Default)]
struct Heard {
    late: Mutex<Vec<f64>>,
    overruns: Mutex<HashMap<String, u64>>,
    loads: Mutex<Vec<Load>>,
    results: Mutex<Vec<(String, Status)>>,
    handoffs: Mutex<Vec<String>>,
}

impl Outlet for Heard {
    fn late(&self, seconds: f64) {
        self.late.lock().unwrap().push(seconds);
    }
    fn overrun(&self, monitor: &str) {
        *self
            .overruns
            .lock()
            .unwrap()
            .entry(monitor.to_owned())
            .or_default() += 1;
    }
    fn load(&self, load: &Load) {
        self.loads.lock().unwrap().push(*load);
    }
    fn result(&self, _tick: u64, result: CheckResult) {
        self.results
            .lock()
            .unwrap()
            .push((result.id.to_string(), result.status));
    }
    fn handoff(&self, _tick: u64, monitor: &ValidMonitor, _result: CheckResult) {
        self.handoffs
            .lock()
            .unwrap()
            .push(monitor.spec().id.clone());
    }
}

/// A monitor every 10 s, retrying as `retry` says.
fn monitor(id: &str, retry: RetryStrategy) -> ValidMonitor {
    let mut spec = TcpMonitor::new(id, "127.0.0.1", 1);
    spec.frequency = Frequency::S10;
    spec.retry = retry;
    spec.into_valid().expect("a valid monitor")
}

fn fixed(backoff: u32, retries: u32, same_region: bool) -> RetryStrategy {
    RetryStrategy::Fixed(Backoff {
        base_backoff_seconds: backoff,
        max_retries: retries,
        max_duration_seconds: 600,
        same_region,
    })
}

/// A schedule run for `run` on the paused clock.
struct Run {
    start: Instant,
    events: Vec<Event>,
    heard: Arc<Heard>,
}

impl Run {
    /// How late an attempt that started at `at` was against the ticks of `id`.
    fn lateness(&self, id: &str, at: Instant) -> Duration {
        let every = Duration::from_secs(10);
        let first = self.start + start_offset(id, every);
        let since = at.saturating_duration_since(first);
        Duration::from_nanos(u64::try_from(since.as_nanos() % every.as_nanos()).unwrap())
    }

    fn attempts(&self, id: &str, retry: u32) -> Vec<Instant> {
        self.events
            .iter()
            .filter(|e| e.id == id && e.retry == retry)
            .map(|e| e.at)
            .collect()
    }
}

/// Schedules `monitors` (each with its plan) with `concurrency` permits for `run`.
async fn run(monitors: &[(ValidMonitor, Plan, bool)], concurrency: usize, run: Duration) -> Run {
    let script = Script {
        plans: Arc::new(
            monitors
                .iter()
                .map(|(m, p, _)| (m.spec().id.clone(), *p))
                .collect(),
        ),
        events: Arc::default(),
    };
    // Held as `watch` holds them: shelved, each rebuilt when its check starts.
    let (held, _) = held::shelve(monitors.iter().map(|(m, _, _)| m.clone()).collect());
    assert!(held.iter().all(|h| matches!(h, Held::Shelved { .. })));
    let jobs = held
        .into_iter()
        .zip(monitors)
        .map(|(monitor, (_, _, elsewhere))| Job {
            monitor,
            cadence: Cadence::Spread,
            retry_elsewhere: *elsewhere,
        })
        .collect();
    let heard = Arc::new(Heard::default());
    let (stop_tx, stop_rx) = signal::channel(false);
    let start = Instant::now();
    let permits = Permits::new(concurrency);
    let task = tokio::spawn(schedule(
        jobs,
        None,
        script.clone(),
        permits.clone(),
        heard.clone(),
        stop_rx,
    ));
    tokio::time::sleep(run).await;
    let _ = stop_tx.send(true);
    task.await.unwrap();
    assert!(permits.drain(Duration::from_secs(600)).await);
    let events = script.events.lock().unwrap().clone();
    Run {
        start,
        events,
        heard,
    }
}

const PASS: Plan = Plan {
    attempt: Duration::from_millis(50),
    fails: false,
};

#[tokio::test(start_paused = true)]
async fn a_monitor_in_backoff_does_not_delay_the_others() {
    let failing = Plan {
        attempt: Duration::from_millis(100),
        fails: true,
    };
    let r = run(
        &[
            (monitor("down", fixed(8, 2, true)), failing, false),
            (monitor("up-a", RetryStrategy::None), PASS, false),
            (monitor("up-b", RetryStrategy::None), PASS, false),
        ],
        1,
        Duration::from_secs(120),
    )
    .await;
    assert!(r.attempts("down", 2).len() >= 2, "{:?}", r.events);
    for id in ["up-a", "up-b"] {
        let starts = r.attempts(id, 0);
        assert!(starts.len() >= 11, "{id}: {starts:?}");
        for at in starts {
            // At worst behind one attempt of `down` (100 ms) and one of the other (50 ms).
            let late = r.lateness(id, at);
            assert!(
                late <= Duration::from_millis(150),
                "{id} started {late:?} late"
            );
        }
    }
    // The healthy monitors ran while `down` waited between its attempts.
    let backoffs: Vec<(Instant, Instant)> = r
        .events
        .iter()
        .filter(|e| e.id == "down" && e.retry < 2)
        .map(|e| (e.at, e.at + Duration::from_secs(8)))
        .collect();
    let inside = r
        .events
        .iter()
        .filter(|e| e.id != "down")
        .filter(|e| backoffs.iter().any(|(a, b)| e.at > *a && e.at < *b))
        .count();
    assert!(inside > 0, "no healthy check ran during a backoff");
    assert!(r.heard.loads.lock().unwrap().iter().all(|l| !l.overloaded));
}

#[tokio::test(start_paused = true)]
async fn lateness_counts_the_wait_for_a_permit() {
    let hog = Plan {
        attempt: Duration::from_secs(9),
        fails: false,
    };
    // A monitor due while `hog` holds the only permit: its offset in the interval is
    // well inside `hog`'s attempt.
    let every = Duration::from_secs(10);
    let hog_at = start_offset("hog", every);
    let quick = (0..100)
        .map(|i| format!("quick-{i}"))
        .find(|id| {
            let at = start_offset(id, every);
            at > hog_at + Duration::from_secs(1) && at < hog_at + Duration::from_secs(8)
        })
        .expect("an id due inside hog's attempt");
    let r = run(
        &[
            (monitor("hog", RetryStrategy::None), hog, false),
            (monitor(&quick, RetryStrategy::None), PASS, false),
        ],
        1,
        Duration::from_secs(60),
    )
    .await;
    let late = r.heard.late.lock().unwrap().clone();
    let firsts: Vec<&Event> = r.events.iter().filter(|e| e.retry == 0).collect();
    assert_eq!(late.len(), firsts.len());
    for (seconds, event) in late.iter().zip(&firsts) {
        let expected = r.lateness(&event.id, event.at).as_secs_f64();
        assert!(
            (seconds - expected).abs() < 1e-6,
            "{}: reported {seconds} s late, started {expected} s late",
            event.id
        );
    }
    // The quick monitor fell due while `hog` held the only permit, and said so.
    let waited = r
        .attempts(&quick, 0)
        .into_iter()
        .map(|at| r.lateness(&quick, at))
        .max()
        .unwrap();
    assert!(waited > Duration::from_secs(1), "{waited:?}");
    assert!(late.iter().any(|s| *s > 1.0), "{late:?}");
}

#[tokio::test(start_paused = true)]
async fn a_check_running_past_its_next_tick_is_counted_not_overlapped() {
    let slow = Plan {
        attempt: Duration::from_secs(25),
        fails: false,
    };
    let window = Duration::from_secs(65);
    let r = run(
        &[
            (monitor("slow", RetryStrategy::None), slow, false),
            (monitor("fast", RetryStrategy::None), PASS, false),
        ],
        4,
        window,
    )
    .await;
    let starts = r.attempts("slow", 0);
    for pair in starts.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_secs(30), "{starts:?}");
    }
    // Ticks every 10 s from the offset; each check covers its tick and the next two.
    let offset = start_offset("slow", Duration::from_secs(10));
    let ticks = (0..)
        .map(|k| offset + Duration::from_secs(10 * k))
        .take_while(|t| *t < window)
        .count() as u64;
    let checks = starts.len() as u64;
    let overruns = r.heard.overruns.lock().unwrap().clone();
    assert_eq!(
        overruns.get("slow"),
        Some(&(ticks - checks)),
        "{overruns:?}"
    );
    assert_eq!(overruns.get("fast"), None);
}

#[tokio::test(start_paused = true)]
async fn falling_behind_is_reported_with_the_deficit() {
    let busy = Plan {
        attempt: Duration::from_secs(5),
        fails: false,
    };
    // Three checks of 5 s every 10 s on one permit: 0.3 checks/s due, 0.2 possible.
    let r = run(
        &[
            (monitor("a", RetryStrategy::None), busy, false),
            (monitor("b", RetryStrategy::None), busy, false),
            (monitor("c", RetryStrategy::None), busy, false),
        ],
        1,
        LOAD_WINDOW * 3 + Duration::from_secs(1),
    )
    .await;
    let loads = r.heard.loads.lock().unwrap().clone();
    assert_eq!(loads.len(), 3, "{loads:?}");
    for load in &loads[1..] {
        assert!(load.overloaded, "{load:?}");
        assert!((load.due_per_second - 0.3).abs() < 0.02, "{load:?}");
        assert!((load.started_per_second - 0.2).abs() < 0.02, "{load:?}");
        assert!((load.deficit_per_second - 0.1).abs() < 0.03, "{load:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_elsewhere_ends_the_check_after_the_first_attempt() {
    let failing = Plan {
        attempt: Duration::from_millis(10),
        fails: true,
    };
    let r = run(
        &[
            (monitor("away", fixed(1, 2, false)), failing, true),
            (monitor("home", fixed(1, 2, true)), failing, false),
        ],
        2,
        Duration::from_secs(15),
    )
    .await;
    assert!(r.attempts("away", 1).is_empty(), "{:?}", r.events);
    assert!(!r.attempts("home", 2).is_empty(), "{:?}", r.events);
    let handoffs = r.heard.handoffs.lock().unwrap().clone();
    assert!(!handoffs.is_empty() && handoffs.iter().all(|id| id == "away"));
    let results = r.heard.results.lock().unwrap().clone();
    assert!(results.iter().all(|(id, _)| id == "home"), "{results:?}");
}

/// An agent's set of monitors `ids` every 10 s, shelved as an assignment's are.
fn assigned(ids: &[&str], retry_elsewhere: bool) -> Vec<Job> {
    let monitors = ids
        .iter()
        .map(|id| monitor(id, fixed(1, 1, true)))
        .collect();
    let (held, _) = held::shelve(monitors);
    held.into_iter()
        .map(|monitor| Job {
            monitor,
            cadence: Cadence::WallClock {
                every: 1,
                index: 0,
                phase_ms: 0,
            },
            retry_elsewhere,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_new_assignment_of_the_same_monitors_keeps_their_schedule_on_its_own_shelf() {
    let (start, mut due, mut slots) = (Instant::now(), BinaryHeap::new(), Slots::new());
    let first = assigned(&["a", "b"], false);
    let Held::Shelved { shelf, .. } = &first[0].monitor else {
        panic!("a plain monitor is shelved");
    };
    let old = Arc::downgrade(shelf);
    assert_eq!(slots.replace(first, start, &mut due), 0);
    let queued = due.len();

    // The same monitors, the flag changed: no check is cancelled or queued again, the
    // slots take the new flag and the new shelf, and the old shelf is gone.
    assert_eq!(
        slots.replace(assigned(&["a", "b"], true), start, &mut due),
        0
    );
    assert_eq!(due.len(), queued);
    assert!(
        old.upgrade().is_none(),
        "the first assignment's shelf is still held"
    );
    let kept: Vec<(&str, bool)> = slots
        .slots
        .iter()
        .flatten()
        .map(|s| (s.job.monitor.id(), s.job.retry_elsewhere))
        .collect();
    assert_eq!(kept, [("a", true), ("b", true)]);

    // One monitor dropped, one added: only the new one is queued.
    assert_eq!(
        slots.replace(assigned(&["b", "c"], true), start, &mut due),
        0
    );
    assert_eq!(due.len(), queued + 1);
    let ids: Vec<&str> = slots
        .slots
        .iter()
        .flatten()
        .map(|s| s.job.monitor.id())
        .collect();
    assert_eq!(ids, ["b", "c"]);
}
