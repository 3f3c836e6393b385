//! `monitors agent` in process against a fake control plane implementing the two agent
//! routes of control-plane/API.md: assignments by long poll, results in batches, the disk
//! buffer through outages and restarts, and its bound.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use monitor_core::prelude::*;
use monitor_core::runner::agent::{self, AssignedMonitor, Assignment, Options, ResultIn, Summary};
use monitor_testing::{Script, ScriptedServer};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub(crate) const TOKEN: &str = "agent-test-token";
const LOCATION: &str = "test-loc";
const INTERVAL_MS: u64 = 10_000;

/// What the fake control plane does and saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// Assignment polls answered (any status).
    polls: AtomicUsize,
    /// Query strings of the polls.
    queries: Mutex<Vec<String>>,
    /// Every result posted in an accepted batch, in order, duplicates included.
    posted: Mutex<Vec<ResultIn>>,
    /// Stored results by id.
    stored: Mutex<BTreeMap<String, ResultIn>>,
    /// Agent and location of the posts.
    posters: Mutex<BTreeSet<(String, String)>>,
    /// 503 on every route.
    down: AtomicBool,
    /// 503 on the results route only.
    results_down: AtomicBool,
    /// Answer the next this many result batches with 422.
    reject_next: AtomicUsize,
    /// Seconds the `Date` of every response is ahead of this machine's clock.
    pub(crate) date_skew: AtomicI64,
}

pub(crate) struct Fake {
    addr: SocketAddr,
    seen: Arc<Seen>,
    assignment: Arc<watch::Sender<Assignment>>,
    server: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Fake {
    pub(crate) async fn start(assignment: Assignment) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut fake = Fake {
            addr: listener.local_addr().unwrap(),
            seen: Arc::new(Seen::default()),
            assignment: Arc::new(watch::channel(assignment).0),
            server: None,
        };
        fake.serve(listener);
        fake
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (seen, assignment) = (self.seen.clone(), self.assignment.clone());
        let seen2 = seen.clone();
        let app = axum::Router::new()
            .route(
                "/v1/agent/assignments",
                get(move |uri: Uri, headers: HeaderMap| {
                    let (seen, assignment) = (seen.clone(), assignment.clone());
                    async move {
                        let skew = seen.date_skew.load(Ordering::SeqCst);
                        dated(skew, assignments(seen, assignment, uri, headers).await)
                    }
                }),
            )
            .route(
                "/v1/agent/results",
                post(move |headers: HeaderMap, body: Bytes| {
                    let seen = seen2.clone();
                    async move {
                        let skew = seen.date_skew.load(Ordering::SeqCst);
                        dated(skew, results(seen, headers, body).await)
                    }
                }),
            );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        self.server = Some((tx, task));
    }

    /// Stops listening: connections are refused until [`Fake::restart`].
    async fn stop(&mut self) {
        if let Some((tx, task)) = self.server.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
    }

    /// Listens again on the same port with the same state.
    async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    pub(crate) fn set(&self, assignment: Assignment) {
        self.assignment.send_replace(assignment);
    }

    fn stored(&self) -> BTreeMap<String, ResultIn> {
        self.seen.stored.lock().unwrap().clone()
    }

    pub(crate) fn stored_of(&self, monitor: &str) -> Vec<ResultIn> {
        self.stored()
            .into_values()
            .filter(|r| r.monitor == monitor)
            .collect()
    }

    fn polls(&self) -> usize {
        self.seen.polls.load(Ordering::SeqCst)
    }
}

/// An HTTP date (IMF-fixdate) `skew` seconds from now.
fn http_date(skew: i64) -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::seconds(skew);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        &t.weekday().to_string()[..3],
        t.day(),
        &t.month().to_string()[..3],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The response with a `Date` `skew` seconds off when it is not 0.
fn dated(skew: i64, mut response: Response) -> Response {
    if skew != 0 {
        response
            .headers_mut()
            .insert("date", http_date(skew).parse().unwrap());
    }
    response
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn assignments(
    seen: Arc<Seen>,
    assignment: Arc<watch::Sender<Assignment>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    seen.polls.fetch_add(1, Ordering::SeqCst);
    let query = uri.query().unwrap_or_default().to_owned();
    seen.queries.lock().unwrap().push(query.clone());
    if !authorized(&headers) {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "bad token"}),
        );
    }
    if seen.down.load(Ordering::SeqCst) {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "down"}),
        );
    }
    let wait: u64 = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("wait="))
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let mut rx = assignment.subscribe();
    let given = headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let tag = |a: &Assignment| format!("\"{}\"", a.etag);
    if given.as_deref() == Some(tag(&rx.borrow_and_update()).as_str()) {
        // Long poll: answer at once on a change, else 304 after `wait`.
        let changed = tokio::time::timeout(Duration::from_secs(wait), async {
            loop {
                if rx.changed().await.is_err() {
                    return false;
                }
                if given.as_deref() != Some(tag(&rx.borrow_and_update()).as_str()) {
                    return true;
                }
            }
        })
        .await;
        if !matches!(changed, Ok(true)) {
            return StatusCode::NOT_MODIFIED.into_response();
        }
    }
    let current = rx.borrow().clone();
    let mut response = json(StatusCode::OK, serde_json::to_value(&current).unwrap());
    response
        .headers_mut()
        .insert("etag", tag(&current).parse().unwrap());
    response
}

async fn results(seen: Arc<Seen>, headers: HeaderMap, body: Bytes) -> Response {
    if !authorized(&headers) {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "bad token"}),
        );
    }
    if seen.down.load(Ordering::SeqCst) || seen.results_down.load(Ordering::SeqCst) {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "down"}),
        );
    }
    let body = if headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip")
    {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .unwrap();
        out
    } else {
        body.to_vec()
    };
    #[derive(serde::Deserialize)]
    struct Batch {
        agent: String,
        location: String,
        results: Vec<ResultIn>,
    }
    let batch: Batch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": e.to_string()}),
            );
        }
    };
    if seen
        .reject_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return json(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({"error": "result id differs from monitor"}),
        );
    }
    seen.posters
        .lock()
        .unwrap()
        .insert((batch.agent, batch.location));
    let mut stored = seen.stored.lock().unwrap();
    let mut duplicates = 0;
    for r in &batch.results {
        if stored.insert(r.id.clone(), r.clone()).is_some() {
            duplicates += 1;
        }
    }
    seen.posted
        .lock()
        .unwrap()
        .extend(batch.results.iter().cloned());
    json(
        StatusCode::OK,
        serde_json::json!({"accepted": batch.results.len() - duplicates, "duplicates": duplicates}),
    )
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// A phase that puts the next tick about `ahead` from now.
pub(crate) fn phase_in(ahead: Duration) -> u64 {
    (now_ms() + u64::try_from(ahead.as_millis()).unwrap()) % INTERVAL_MS
}

/// A connect-only monitor of a target, every 10 s.
pub(crate) fn monitor(id: &str, target: &ScriptedServer) -> TcpMonitor {
    TcpMonitor::new(id, "127.0.0.1", target.port()).frequency(Frequency::S10)
}

pub(crate) fn assignment(etag: &str, monitors: &[(TcpMonitor, u64, u64, u64)]) -> Assignment {
    Assignment {
        agent: "ignored".to_owned(),
        location: LOCATION.to_owned(),
        etag: etag.to_owned(),
        agents_in_location: 1,
        monitors: monitors
            .iter()
            .map(|(monitor, every, index, phase_ms)| AssignedMonitor {
                monitor: monitor.clone(),
                every: *every,
                index: *index,
                phase_ms: *phase_ms,
                retry_elsewhere: false,
            })
            .collect(),
    }
}

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "monitors-agent-{name}-{}-{}",
        std::process::id(),
        now_ms()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The log lines of an agent, also echoed for failing tests.
#[derive(Clone, Default)]
pub(crate) struct Lines(Arc<Mutex<Vec<String>>>);

/// Where one agent's formatted events go: its lines, echoed to standard error.
struct Collect {
    who: &'static str,
    lines: Arc<Mutex<Vec<String>>>,
}

impl std::io::Write for Collect {
    #[allow(clippy::print_stderr)]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf).trim_end().to_owned();
        eprintln!("[{}] {line}", self.who);
        self.lines.lock().unwrap().push(line);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Lines {
    /// A subscriber for one agent's events, collecting them here.
    pub(crate) fn logger(&self, who: &'static str) -> tracing::Dispatch {
        let lines = self.0.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Collect {
                who,
                lines: lines.clone(),
            })
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_level(false)
            .finish();
        tracing::Dispatch::new(subscriber)
    }
    pub(crate) fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub(crate) fn any(&self, needle: &str) -> bool {
        self.all().iter().any(|l| l.contains(needle))
    }
}

pub(crate) struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Summary, agent::AgentError>>,
}

impl Running {
    pub(crate) async fn stop(self) -> Summary {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the agent stops")
            .unwrap()
            .expect("the agent ran")
    }
}

pub(crate) fn options(url: &str, dir: &Path, log: tracing::Dispatch) -> Options {
    let mut o = Options::new(url, LOCATION, TOKEN);
    o.id = "agent-1".to_owned();
    o.buffer_dir = dir.to_owned();
    o.poll_wait = Duration::from_secs(2);
    o.backoff_max = Duration::from_secs(2);
    o.drain_timeout = Duration::from_secs(10);
    o.final_upload_timeout = Duration::from_secs(2);
    o.logs = Some(log);
    o
}

pub(crate) fn start(options: Options) -> Running {
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(agent::run(options, async move {
        let _ = rx.await;
    }));
    Running { stop: tx, task }
}

/// Waits until `ok` holds, failing after `limit`.
pub(crate) async fn until(limit: Duration, what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The instant of a tick, unix milliseconds.
fn instant_of(tick: u64, phase_ms: u64) -> u64 {
    tick * INTERVAL_MS + phase_ms
}

fn started_ms(r: &ResultIn) -> u64 {
    u64::try_from(r.result.started_at.unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// The ticks of a monitor's results, sorted.
fn ticks(results: &[ResultIn]) -> Vec<u64> {
    let mut t: Vec<u64> = results.iter().map(|r| r.tick).collect();
    t.sort_unstable();
    t
}

fn assert_no_duplicates_posted(fake: &Fake) {
    let posted = fake.seen.posted.lock().unwrap();
    let unique: BTreeSet<&str> = posted.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), posted.len(), "a result was posted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_uploads_results_of_assigned_monitors_with_ids_and_ticks() {
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    let fake = Fake::start(assignment(
        "e1",
        &[
            (monitor("alpha", &target), 1, 0, phase),
            (monitor("beta", &target), 1, 0, phase),
        ],
    ))
    .await;
    let dir = temp_dir("ids");
    let lines = Lines::default();
    let agent = start(options(&fake.url(), &dir, lines.logger("ids")));
    until(Duration::from_secs(40), "two rounds arrive", || {
        fake.stored_of("alpha").len() >= 2 && fake.stored_of("beta").len() >= 2
    })
    .await;
    let summary = agent.stop().await;
    assert_eq!(summary.buffered, 0, "{summary:?}");
    let stored = fake.stored();
    for r in stored.values() {
        assert!(r.monitor == "alpha" || r.monitor == "beta", "{}", r.id);
        assert_eq!(r.id, format!("{}/{LOCATION}/{}", r.monitor, r.tick));
        assert_eq!(*r.result.id, *r.monitor);
        assert_eq!(r.result.status, Status::Passed, "{:?}", r.result.error);
        // The check ran for its instant: not before it, and not a round later.
        let at = instant_of(r.tick, phase);
        let started = started_ms(r);
        assert!(
            started + 50 >= at && started < at + INTERVAL_MS,
            "tick {} at {at} started at {started}",
            r.tick
        );
    }
    for m in ["alpha", "beta"] {
        let t = ticks(&fake.stored_of(m));
        assert!(t.windows(2).all(|w| w[1] == w[0] + 1), "{m}: {t:?}");
    }
    assert_no_duplicates_posted(&fake);
    assert_eq!(
        *fake.seen.posters.lock().unwrap(),
        BTreeSet::from([("agent-1".to_owned(), LOCATION.to_owned())])
    );
    let queries = fake.seen.queries.lock().unwrap().clone();
    assert!(!queries.is_empty());
    for q in &queries {
        assert!(q.contains("agent=agent-1"), "{q}");
        assert!(q.contains(&format!("location={LOCATION}")), "{q}");
        assert!(q.contains("wait=2"), "{q}");
    }
    assert!(lines.any("assignment e1: 2 monitors"), "{:?}", lines.all());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ticks_obey_every_and_index() {
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    let fake = Fake::start(assignment(
        "e1",
        &[
            (monitor("even", &target), 2, 0, phase),
            (monitor("odd", &target), 2, 1, phase),
            (monitor("third", &target), 3, 2, phase),
        ],
    ))
    .await;
    let dir = temp_dir("every");
    let agent = start(options(&fake.url(), &dir, Lines::default().logger("every")));
    until(
        Duration::from_secs(60),
        "two results of even and odd",
        || fake.stored_of("even").len() >= 2 && fake.stored_of("odd").len() >= 2,
    )
    .await;
    agent.stop().await;
    for (m, every, index) in [("even", 2, 0), ("odd", 2, 1), ("third", 3, 2)] {
        let results = fake.stored_of(m);
        let t = ticks(&results);
        assert!(t.iter().all(|k| k % every == index), "{m}: {t:?}");
        assert!(t.windows(2).all(|w| w[1] == w[0] + every), "{m}: {t:?}");
        for r in &results {
            assert!(started_ms(r) + 50 >= instant_of(r.tick, phase), "{}", r.id);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_long_polls_and_applies_a_new_assignment() {
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    let fake = Fake::start(assignment("e1", &[(monitor("old", &target), 1, 0, phase)])).await;
    let dir = temp_dir("poll");
    let lines = Lines::default();
    let agent = start(options(&fake.url(), &dir, lines.logger("poll")));
    until(Duration::from_secs(20), "a result of old", || {
        !fake.stored_of("old").is_empty()
    })
    .await;
    // Long polls of 2 s: a handful of requests over 5 s, not a tight loop.
    let before = fake.polls();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = fake.polls() - before;
    assert!((1..=6).contains(&during), "{during} polls in 5 s");

    let phase2 = phase_in(Duration::from_millis(1500));
    let changed_at = now_ms();
    fake.set(assignment("e2", &[(monitor("new", &target), 1, 0, phase2)]));
    until(
        Duration::from_secs(5),
        "the agent takes the new assignment",
        || lines.any("assignment e2: 1 monitors"),
    )
    .await;
    until(Duration::from_secs(30), "two results of new", || {
        fake.stored_of("new").len() >= 2
    })
    .await;
    let summary = agent.stop().await;
    assert_eq!(summary.buffered, 0);
    // `old` left: no check of it for an instant after the change (one in flight at the
    // change may finish).
    for r in fake.stored_of("old") {
        assert!(
            instant_of(r.tick, phase) <= changed_at + 500,
            "old ran for tick {} after the change",
            r.tick
        );
    }
    assert_no_duplicates_posted(&fake);
    // The new assignment was saved for a restart.
    let saved: Assignment =
        serde_json::from_str(&std::fs::read_to_string(dir.join("assignment.json")).unwrap())
            .unwrap();
    assert_eq!(saved.etag, "e2");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_buffers_while_the_control_plane_is_down_and_delivers_once_back() {
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    let mut fake = Fake::start(assignment(
        "e1",
        &[
            (monitor("alpha", &target), 1, 0, phase),
            (monitor("beta", &target), 1, 0, phase),
        ],
    ))
    .await;
    let dir = temp_dir("down");
    let lines = Lines::default();
    let agent = start(options(&fake.url(), &dir, lines.logger("down")));
    until(Duration::from_secs(20), "a first round arrives", || {
        fake.stored().len() >= 2
    })
    .await;
    let delivered_before = fake.stored().len();
    fake.stop().await;
    until(Duration::from_secs(25), "a round waits on disk", || {
        agent::buffered_results(&dir).unwrap().len() >= 2
    })
    .await;
    let waiting: BTreeSet<String> = agent::buffered_results(&dir)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(fake.stored().len(), delivered_before);
    assert!(lines.any("cannot upload results"), "{:?}", lines.all());
    fake.restart().await;
    until(
        Duration::from_secs(30),
        "the buffered results arrive",
        || {
            let stored = fake.stored();
            waiting.iter().all(|id| stored.contains_key(id))
        },
    )
    .await;
    until(Duration::from_secs(10), "both loops recover", || {
        lines.any("uploading results again") && lines.any("control plane reachable again")
    })
    .await;
    let summary = agent.stop().await;
    assert_eq!(summary.buffered, 0, "{summary:?}");
    assert_eq!(summary.dropped, 0);
    assert!(agent::buffered_results(&dir).unwrap().is_empty());
    assert_no_duplicates_posted(&fake);
    // None missing: every tick from the first to the last, for both monitors.
    for m in ["alpha", "beta"] {
        let t = ticks(&fake.stored_of(m));
        assert!(t.len() >= 2, "{m}: {t:?}");
        assert!(t.windows(2).all(|w| w[1] == w[0] + 1), "{m}: {t:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_restart_delivers_the_buffer_and_runs_the_saved_assignment() {
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    let fake = Fake::start(assignment(
        "e1",
        &[(monitor("alpha", &target), 1, 0, phase)],
    ))
    .await;
    let dir = temp_dir("restart");
    let first = start(options(&fake.url(), &dir, Lines::default().logger("first")));
    until(Duration::from_secs(20), "a first result arrives", || {
        !fake.stored().is_empty()
    })
    .await;
    fake.seen.down.store(true, Ordering::SeqCst);
    // A later tick than those delivered: the delivered one may still be on disk for the
    // moment between the control plane storing it and the agent hearing its 200.
    let delivered = fake.stored().values().map(|r| r.tick).max().unwrap();
    until(Duration::from_secs(25), "a result waits on disk", || {
        agent::buffered_results(&dir)
            .unwrap()
            .iter()
            .any(|r| r.tick > delivered)
    })
    .await;
    let summary = first.stop().await;
    assert!(summary.buffered >= 1, "{summary:?}");
    let from_first: Vec<ResultIn> = agent::buffered_results(&dir).unwrap();
    assert_eq!(from_first.len() as u64, summary.buffered);
    let last_tick = from_first.iter().map(|r| r.tick).max().unwrap();
    // A crash tore the last line of the newest segment.
    let newest = std::fs::read_dir(dir.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .max()
        .unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&newest)
        .unwrap()
        .write_all(b"{\"id\":\"alpha/test-loc/1\",\"mon")
        .unwrap();

    // The control plane is still down: the new agent runs the saved assignment.
    let lines = Lines::default();
    let second = start(options(&fake.url(), &dir, lines.logger("second")));
    until(Duration::from_secs(25), "the saved assignment runs", || {
        agent::buffered_results(&dir)
            .unwrap()
            .iter()
            .any(|r| r.tick > last_tick)
    })
    .await;
    assert!(
        lines.any("running the saved assignment e1 (1 monitors)"),
        "{:?}",
        lines.all()
    );
    assert!(
        lines.any("skipped 1 torn or unreadable lines"),
        "{:?}",
        lines.all()
    );
    let from_second: Vec<ResultIn> = agent::buffered_results(&dir).unwrap();
    fake.seen.down.store(false, Ordering::SeqCst);
    until(
        Duration::from_secs(30),
        "everything buffered arrives",
        || {
            let stored = fake.stored();
            from_first
                .iter()
                .chain(&from_second)
                .all(|r| stored.contains_key(&r.id))
        },
    )
    .await;
    let summary = second.stop().await;
    assert_eq!(summary.buffered, 0, "{summary:?}");
    assert_no_duplicates_posted(&fake);
    assert!(fake.stored().values().all(|r| r.monitor == "alpha"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_drops_the_oldest_results_when_the_buffer_is_full() {
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    let monitors: Vec<(TcpMonitor, u64, u64, u64)> = (0..5)
        .map(|i| (monitor(&format!("m{i}"), &target), 1, 0, phase))
        .collect();
    let fake = Fake::start(assignment("e1", &monitors)).await;
    fake.seen.results_down.store(true, Ordering::SeqCst);
    let dir = temp_dir("bound");
    let lines = Lines::default();
    let mut o = options(&fake.url(), &dir, lines.logger("bound"));
    o.buffer_max = 3;
    let agent = start(o);
    until(Duration::from_secs(25), "the buffer overflows", || {
        lines.any("oldest buffered results (buffer full at 3;")
    })
    .await;
    // Let the round finish writing.
    until(Duration::from_secs(10), "three wait", || {
        agent::buffered_results(&dir).unwrap().len() == 3
    })
    .await;
    let summary = agent.stop().await;
    assert_eq!(summary.buffered, 3, "{summary:?}");
    assert_eq!(summary.dropped, 2, "{summary:?}");
    let drops: Vec<String> = lines
        .all()
        .into_iter()
        .filter(|l| l.starts_with("dropped "))
        .collect();
    assert!(
        drops
            .last()
            .is_some_and(|l| l.ends_with("2 dropped in all)")),
        "{drops:?}"
    );
    let kept: BTreeSet<String> = agent::buffered_results(&dir)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(kept.len(), 3);
    // Back up: the three kept arrive, and only they.
    fake.seen.results_down.store(false, Ordering::SeqCst);
    let mut o = options(&fake.url(), &dir, lines.logger("bound-2"));
    o.buffer_max = 3;
    let agent = start(o);
    until(Duration::from_secs(20), "the kept results arrive", || {
        kept.iter().all(|id| fake.stored().contains_key(id))
    })
    .await;
    agent.stop().await;
    let tick = fake.stored().values().map(|r| r.tick).min().unwrap();
    let first_round: BTreeSet<String> = fake
        .stored()
        .into_values()
        .filter(|r| r.tick == tick)
        .map(|r| r.id)
        .collect();
    assert_eq!(first_round, kept);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_drops_a_rejected_batch_and_keeps_uploading() {
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let phase = phase_in(Duration::from_millis(1500));
    let fake = Fake::start(assignment(
        "e1",
        &[(monitor("alpha", &target), 1, 0, phase)],
    ))
    .await;
    fake.seen.reject_next.store(1, Ordering::SeqCst);
    let dir = temp_dir("reject");
    let lines = Lines::default();
    let agent = start(options(&fake.url(), &dir, lines.logger("reject")));
    until(Duration::from_secs(30), "a later result arrives", || {
        !fake.stored().is_empty()
    })
    .await;
    let summary = agent.stop().await;
    assert_eq!(summary.rejected, 1, "{summary:?}");
    assert_eq!(summary.buffered, 0, "{summary:?}");
    assert!(
        lines.any("rejected a batch of 1 results (http 422: result id differs from monitor)"),
        "{:?}",
        lines.all()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_refuses_a_buffer_dir_in_use_and_bad_options() {
    let dir = temp_dir("lock");
    let fake = Fake::start(assignment("e1", &[])).await;
    let first = start(options(&fake.url(), &dir, Lines::default().logger("lock")));
    until(Duration::from_secs(10), "the first agent polls", || {
        fake.polls() > 0
    })
    .await;
    let second = agent::run(
        options(&fake.url(), &dir, Lines::default().logger("lock-2")),
        std::future::pending(),
    )
    .await;
    let e = second.expect_err("the buffer dir is in use");
    assert!(e.to_string().contains("another agent is using"), "{e}");
    first.stop().await;
    let mut bad = options(&fake.url(), &dir, Lines::default().logger("bad"));
    bad.location = "no spaces".to_owned();
    let e = agent::run(bad, std::future::pending())
        .await
        .expect_err("invalid location");
    assert!(
        e.to_string().contains("location `no spaces` is not valid"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reports_its_clock_offset_from_the_date_header() {
    // Issue 14, "time is checked": the control plane's clock is 10 minutes ahead.
    let target = ScriptedServer::start(Script::new()).await.unwrap();
    let fake = Fake::start(assignment(
        "e1",
        &[(
            monitor("alpha", &target),
            1,
            0,
            phase_in(Duration::from_millis(1500)),
        )],
    ))
    .await;
    fake.seen.date_skew.store(600, Ordering::SeqCst);
    let dir = temp_dir("clock");
    let lines = Lines::default();
    let mut o = options(&fake.url(), &dir, lines.logger("clock"));
    let metrics = dir.with_extension("prom");
    o.metrics_file = Some(metrics.clone());
    let agent = start(o);
    until(Duration::from_secs(30), "a result is uploaded", || {
        !fake.stored_of("alpha").is_empty()
    })
    .await;
    let summary = agent.stop().await;
    let offset = summary.clock_offset_ms.expect("an offset");
    assert!((598_000..=602_000).contains(&offset), "{offset} ms");
    assert!(
        lines.any("s behind the control plane's (more than 120 s)"),
        "{:?}",
        lines.all()
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    let gauge: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("monitors_agent_clock_offset_seconds "))
        .expect("the gauge")
        .parse()
        .unwrap();
    assert!((598.0..=602.0).contains(&gauge), "{text}");
    assert!(
        text.contains("monitors_agent_results_uploaded_total "),
        "{text}"
    );
    let _ = std::fs::remove_file(&metrics);
    let _ = std::fs::remove_dir_all(&dir);
}
