//! The agent's side of the control plane's `/v1/agent/*` routes (control-plane/API.md,
//! "Agents, results, status"), over a list of control-plane replicas: the agent talks to
//! one at a time and moves to the next (and back around the list) when a request to it
//! fails in a way another replica may not: no connection, a timeout, a broken answer or a
//! 5xx ([`fails_over`]).

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use monitor_spec::api::{
    AgentLoad, ErrorBody, LOAD_HEADER, ResultsRequest, ResultsResponse, Retries, RetryAccepted,
    RetryRequest,
};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderValue};
use serde_json::value::RawValue;

use super::clock::ClockWatch;

/// Bodies at least this large are sent gzip-compressed.
const GZIP_FROM_BYTES: usize = 16 * 1024;

/// The largest assignment the agent reads (after gzip decoding): about 700 bytes a monitor,
/// so several hundred thousand monitors; a larger one is a failed poll, retried.
pub(crate) const MAX_ASSIGNMENT_BYTES: usize = 512 * 1024 * 1024;

/// The largest answer to a results post, or error body, the agent reads.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Reads at most `max` bytes of `response`'s body as text (lossy UTF-8); a longer body is
/// a failure naming the bound, and the rest is never read.
async fn bounded_text(mut response: reqwest::Response, max: usize) -> Result<String, Failure> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::request(&e))? {
        if body.len() + chunk.len() > max {
            return Err(Failure {
                kind: "bad response".to_owned(),
                detail: format!("bad response: the body is larger than {max} bytes"),
                moved: false,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The most control-plane URLs an agent takes (`--control-plane A,B,...`).
pub const MAX_CONTROL_PLANES: usize = 16;

/// The URLs of a `--control-plane` list: comma-separated, each `http://` or `https://`,
/// none empty or given twice, at most [`MAX_CONTROL_PLANES`]; a clear error naming the
/// entry otherwise.
pub fn control_planes(list: &str) -> Result<Vec<String>, String> {
    let mut urls: Vec<String> = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(format!(
                "the control plane list `{list}` has an empty entry (number {}); separate URLs with single commas",
                i + 1
            ));
        }
        let url = reqwest::Url::parse(entry)
            .map_err(|e| format!("control plane URL `{entry}` is not valid: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "control plane URL `{entry}` must start with http:// or https://"
            ));
        }
        let base = entry.trim_end_matches('/').to_owned();
        if urls.contains(&base) {
            return Err(format!(
                "control plane URL `{entry}` is listed twice in `{list}`"
            ));
        }
        urls.push(base);
    }
    if urls.len() > MAX_CONTROL_PLANES {
        return Err(format!(
            "the control plane list has {} URLs; at most {MAX_CONTROL_PLANES} are allowed",
            urls.len()
        ));
    }
    Ok(urls)
}

/// Whether a request failing so should move the agent to the next control plane: no
/// connection, a timeout, a request or answer broken off, or a 5xx. A 4xx is the request's
/// (or the token's) fault, and every replica would answer the same.
pub(crate) fn fails_over(failure: &Failure) -> bool {
    match failure.kind.strip_prefix("http ") {
        Some(code) => code.starts_with('5'),
        None => matches!(
            failure.kind.as_str(),
            "cannot connect" | "timed out" | "request failed" | "bad response"
        ),
    }
}

/// Which of the control planes the agent talks to: one at a time, the next after a
/// failure (see [`fails_over`]), back around the list.
#[derive(Debug)]
pub(crate) struct Rotation {
    len: usize,
    current: AtomicUsize,
}

impl Rotation {
    pub(crate) fn new(len: usize) -> Rotation {
        Rotation {
            len: len.max(1),
            current: AtomicUsize::new(0),
        }
    }

    /// The control plane talked to now.
    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// After a request to `used` failed over: moves to the one after `used` unless
    /// another request already moved on from it. `Some(next)` when this call moved.
    pub(crate) fn advance(&self, used: usize) -> Option<usize> {
        if self.len < 2 {
            return None;
        }
        let next = (used + 1) % self.len;
        self.current
            .compare_exchange(used, next, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| next)
    }
}

/// Why a request did not get an answer the agent can use; `kind` tells states apart so
/// the agent logs a line when it changes, not on every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// `cannot connect`, `timed out`, `http 503`, ...
    pub(crate) kind: String,
    /// The whole story, for the log.
    pub(crate) detail: String,
    /// Whether the agent moved to another control plane after it: try again at once.
    pub(crate) moved: bool,
}

impl Failure {
    fn status(status: StatusCode, body: &str) -> Failure {
        Failure {
            kind: format!("http {}", status.as_u16()),
            detail: format!("http {}: {}", status.as_u16(), error_message(body)),
            moved: false,
        }
    }

    fn request(e: &reqwest::Error) -> Failure {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else if e.is_decode() || e.is_body() {
            "bad response"
        } else {
            "request failed"
        };
        // The innermost cause says what happened (refused, reset, no such host); the
        // outer errors only that a request failed.
        let mut cause: &dyn std::error::Error = e;
        while let Some(inner) = cause.source() {
            cause = inner;
        }
        let cause = cause.to_string();
        let mut chars = cause.chars();
        let cause: String = match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => String::new(),
        };
        let detail = if cause.is_empty() || cause == kind {
            kind.to_owned()
        } else {
            format!("{kind}: {cause}")
        };
        Failure {
            kind: kind.to_owned(),
            detail,
            moved: false,
        }
    }
}

/// The `error` of a JSON error body, or the start of the body.
fn error_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => e.error,
        Err(_) => {
            let body = body.trim();
            if body.is_empty() {
                "no message".to_owned()
            } else {
                body.chars().take(200).collect()
            }
        }
    }
}

/// The answer to an assignment poll.
#[derive(Debug)]
pub(crate) enum Poll {
    /// A (possibly) new assignment: its ETag (without quotes) and body.
    Changed { etag: Option<String>, body: String },
    /// 304: still the one the agent has.
    NotModified,
}

/// The answer to a batch of results.
#[derive(Debug)]
pub(crate) enum Post {
    /// 200.
    Accepted { accepted: u64, duplicates: u64 },
    /// 413: the batch is over the body limit.
    TooLarge,
    /// A 4xx that retrying will not change (400, 422, ...): the batch is given up.
    Rejected { detail: String },
    /// Anything else: try again later.
    Retry(Failure),
}

/// One control plane's routes.
#[derive(Debug)]
struct Routes {
    base: String,
    assignments: String,
    results: String,
    retries: String,
}

/// A client of the agent routes for one agent, over one or more control planes.
#[derive(Debug)]
pub(crate) struct Api {
    client: reqwest::Client,
    routes: Vec<Routes>,
    rotation: Rotation,
    auth: HeaderValue,
    agent: String,
    location: String,
    gzip: AtomicBool,
    /// Whether the retries poll asks for triggered runs (`triggers=true`): until a
    /// control plane refuses the parameter (older ones answer 400).
    triggers: AtomicBool,
    /// The scheduler's last load, sent with every poll and post ([`LOAD_HEADER`]).
    load: Mutex<Option<HeaderValue>>,
    /// The control plane's clock against this machine's, from its responses.
    pub(crate) clock: ClockWatch,
}

/// An ETag as sent: quoted.
fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// An ETag header's value without `W/` and quotes.
pub(crate) fn unquoted(etag: &str) -> &str {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.strip_prefix('"')
        .and_then(|e| e.strip_suffix('"'))
        .unwrap_or(etag)
}

impl Api {
    /// A client of the control planes of `list` (see [`control_planes`]).
    pub(crate) fn new(list: &str, token: &str, agent: &str, location: &str) -> Result<Api, String> {
        let routes: Vec<Routes> = control_planes(list)?
            .into_iter()
            .map(|base| Routes {
                assignments: format!("{base}/v1/agent/assignments"),
                results: format!("{base}/v1/agent/results"),
                retries: format!("{base}/v1/agent/retries"),
                base,
            })
            .collect();
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the agent token holds characters a header cannot carry".to_owned())?;
        auth.set_sensitive(true);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("monitors-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Api {
            client,
            rotation: Rotation::new(routes.len()),
            routes,
            auth,
            agent: agent.to_owned(),
            location: location.to_owned(),
            gzip: AtomicBool::new(true),
            triggers: AtomicBool::new(true),
            load: Mutex::new(None),
            clock: ClockWatch::default(),
        })
    }

    /// Records the scheduler's load, for the control plane to show (sent from the next
    /// request on).
    pub(crate) fn set_load(&self, load: &crate::runner::process_metrics::Load) {
        let load = AgentLoad {
            due_per_second: load.due_per_second,
            started_per_second: load.started_per_second,
            deficit_per_second: load.deficit_per_second,
            waiting: load.waiting,
            overloaded: load.overloaded,
        };
        let value = HeaderValue::from_str(&load.header_value()).ok();
        *self.load.lock().unwrap_or_else(|e| e.into_inner()) = value;
    }

    /// `request` with the load header, once the scheduler reported a load.
    fn with_load(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.load.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            Some(value) => request.header(LOAD_HEADER, value),
            None => request,
        }
    }

    /// After a request to control plane `used` failed: moves to the next one when the
    /// failure calls for it ([`fails_over`]), logging the switch; the failure, marked
    /// when the agent moved.
    fn failed(&self, used: usize, mut failure: Failure, what: &str) -> Failure {
        if fails_over(&failure)
            && let Some(next) = self.rotation.advance(used)
        {
            tracing::warn!(
                "control plane {} failed ({what}: {}); switching to {}",
                self.routes[used].base,
                failure.detail,
                self.routes[next].base
            );
            failure.moved = true;
        }
        failure
    }

    /// The agent's id.
    pub(crate) fn agent(&self) -> &str {
        &self.agent
    }

    /// How many control planes the agent may talk to.
    pub(crate) fn control_planes(&self) -> usize {
        self.routes.len()
    }

    /// The control plane talked to now: its index and routes.
    fn routes(&self) -> (usize, &Routes) {
        let i = self.rotation.current().min(self.routes.len() - 1);
        (i, &self.routes[i])
    }

    /// `GET /v1/agent/assignments`: long polls up to `wait` for an assignment other than
    /// `etag`, from the control plane talked to now.
    pub(crate) async fn poll(&self, etag: Option<&str>, wait: Duration) -> Result<Poll, Failure> {
        let (used, _) = self.routes();
        self.poll_once(used, etag, wait)
            .await
            .map_err(|f| self.failed(used, f, "assignment poll"))
    }

    async fn poll_once(
        &self,
        used: usize,
        etag: Option<&str>,
        wait: Duration,
    ) -> Result<Poll, Failure> {
        let mut request = self
            .client
            .get(&self.routes[used].assignments)
            .query(&[
                ("agent", self.agent.as_str()),
                ("location", self.location.as_str()),
                ("wait", &wait.as_secs().to_string()),
            ])
            .header(header::AUTHORIZATION, self.auth.clone())
            .timeout(wait + Duration::from_secs(15));
        request = self.with_load(request);
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, quoted(etag));
        }
        let sent = SystemTime::now();
        let response = request.send().await.map_err(|e| Failure::request(&e))?;
        self.observe(&response, sent);
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Poll::NotModified);
        }
        let etag = response
            .headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(|v| unquoted(v).to_owned());
        let max = if status == StatusCode::OK {
            MAX_ASSIGNMENT_BYTES
        } else {
            MAX_ANSWER_BYTES
        };
        let body = bounded_text(response, max).await?;
        if status == StatusCode::OK {
            Ok(Poll::Changed { etag, body })
        } else {
            Err(Failure::status(status, &body))
        }
    }

    /// `POST /v1/agent/results` with `lines`, each one JSON `ResultIn`, to the control
    /// plane talked to now. Posting a batch again (to another control plane after a
    /// failure) stores nothing twice: the control plane ignores the ids it holds.
    pub(crate) async fn post(&self, lines: &[String]) -> Post {
        let (used, _) = self.routes();
        match self.post_once(used, lines).await {
            Post::Retry(f) => Post::Retry(self.failed(used, f, "results upload")),
            other => other,
        }
    }

    async fn post_once(&self, used: usize, lines: &[String]) -> Post {
        // Each line is one `ResultIn` as buffered, sent as it is.
        let results = match lines
            .iter()
            .map(|line| serde_json::from_str::<&RawValue>(line))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(results) => results,
            Err(e) => {
                return Post::Rejected {
                    detail: format!("a buffered result is not JSON: {e}"),
                };
            }
        };
        let batch = ResultsRequest {
            agent: self.agent.clone(),
            location: self.location.clone(),
            results,
        };
        let body = match serde_json::to_string(&batch) {
            Ok(body) => body,
            Err(e) => {
                return Post::Rejected {
                    detail: format!("cannot write the batch: {e}"),
                };
            }
        };
        loop {
            let gzip = self.gzip.load(Ordering::Relaxed) && body.len() >= GZIP_FROM_BYTES;
            let mut request = self
                .client
                .post(&self.routes[used].results)
                .header(header::AUTHORIZATION, self.auth.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .timeout(Duration::from_secs(60));
            request = self.with_load(request);
            request = match gzip.then(|| compress(body.as_bytes())).flatten() {
                Some(compressed) => request
                    .header(header::CONTENT_ENCODING, "gzip")
                    .body(compressed),
                None => request.body(body.clone()),
            };
            let sent = SystemTime::now();
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return Post::Retry(Failure::request(&e)),
            };
            self.observe(&response, sent);
            let status = response.status();
            let text = bounded_text(response, MAX_ANSWER_BYTES)
                .await
                .unwrap_or_default();
            return match status.as_u16() {
                200 => {
                    let counts: ResultsResponse = serde_json::from_str(&text).unwrap_or_default();
                    Post::Accepted {
                        accepted: counts.accepted,
                        duplicates: counts.duplicates,
                    }
                }
                413 => Post::TooLarge,
                415 if gzip => {
                    // This control plane takes no gzip: send plain bodies from now on.
                    self.gzip.store(false, Ordering::Relaxed);
                    continue;
                }
                // Not the batch's fault: the token, the route, or the load. Retrying
                // (with backoff) may succeed; dropping would lose every result.
                401 | 403 | 404 | 408 | 429 => Post::Retry(Failure::status(status, &text)),
                400..=499 => Post::Rejected {
                    detail: format!("http {}: {}", status.as_u16(), error_message(&text)),
                },
                _ => Post::Retry(Failure::status(status, &text)),
            };
        }
    }

    /// `POST /v1/agent/retries`: hands a check whose first attempt failed to another
    /// location; the location that takes it.
    pub(crate) async fn hand_retry(&self, retry: &RetryRequest) -> Result<String, Failure> {
        let (used, routes) = self.routes();
        let request = self
            .client
            .post(&routes.retries)
            .header(header::AUTHORIZATION, self.auth.clone())
            .json(retry)
            .timeout(Duration::from_secs(30));
        self.json_answer::<RetryAccepted>(request, MAX_ANSWER_BYTES)
            .await
            .map(|a| a.location)
            .map_err(|f| self.failed(used, f, "retry handoff"))
    }

    /// `GET /v1/agent/retries`: long polls up to `wait` for the checks handed to this
    /// agent's location (each monitor still JSON, read one by one).
    /// With `triggers=true` it also takes the triggered runs of the location; a control
    /// plane that refuses the parameter (400, older) is asked without it from then on.
    pub(crate) async fn take_retries(
        &self,
        wait: Duration,
    ) -> Result<Retries<serde_json::Value>, Failure> {
        let (used, routes) = self.routes();
        let triggers = self.triggers.load(Ordering::Relaxed);
        let mut query = vec![
            ("agent", self.agent.clone()),
            ("location", self.location.clone()),
            ("wait", wait.as_secs().to_string()),
        ];
        if triggers {
            query.push(("triggers", "true".to_owned()));
        }
        let request = self
            .client
            .get(&routes.retries)
            .query(&query)
            .header(header::AUTHORIZATION, self.auth.clone())
            .timeout(wait + Duration::from_secs(15));
        match self
            .json_answer::<Retries<serde_json::Value>>(request, MAX_ASSIGNMENT_BYTES)
            .await
        {
            Err(f) if triggers && f.kind == "http 400" => {
                tracing::info!(
                    "the control plane refused `triggers=true` on the retries poll ({}); not taking triggered runs",
                    f.detail
                );
                self.triggers.store(false, Ordering::Relaxed);
                // Asked again at once, without the parameter.
                Err(Failure { moved: true, ..f })
            }
            answer => answer.map_err(|f| self.failed(used, f, "retries poll")),
        }
    }

    /// Sends `request` (with the agent's load) and reads a 200 answer of at most `max`
    /// bytes as JSON `T`; another status is a failure with the error body (at most
    /// [`MAX_ANSWER_BYTES`] read), and so is an answer that is not a `T`.
    async fn json_answer<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        max: usize,
    ) -> Result<T, Failure> {
        let response = self
            .with_load(request)
            .send()
            .await
            .map_err(|e| Failure::request(&e))?;
        let status = response.status();
        let max = if status == StatusCode::OK {
            max
        } else {
            MAX_ANSWER_BYTES
        };
        let text = bounded_text(response, max).await?;
        if status != StatusCode::OK {
            return Err(Failure::status(status, &text));
        }
        serde_json::from_str::<T>(&text).map_err(|e| Failure {
            kind: "bad response".to_owned(),
            detail: format!("bad response: {e}"),
            moved: false,
        })
    }

    /// Takes a clock sample from the `Date` of a response to a request sent at `sent`.
    fn observe(&self, response: &reqwest::Response, sent: SystemTime) {
        let date = response
            .headers()
            .get(header::DATE)
            .and_then(|v| v.to_str().ok());
        self.clock.observe(date, sent, SystemTime::now());
    }
}

fn compress(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weakness() {
        assert_eq!(unquoted("\"abc\""), "abc");
        assert_eq!(unquoted("W/\"abc\""), "abc");
        assert_eq!(unquoted("abc"), "abc");
        assert_eq!(quoted("abc"), "\"abc\"");
    }

    #[test]
    fn control_plane_lists_are_checked_entry_by_entry() {
        assert_eq!(
            control_planes("http://a:1").unwrap(),
            vec!["http://a:1".to_owned()]
        );
        assert_eq!(
            control_planes(" http://a:1/ , https://b.example.com").unwrap(),
            vec!["http://a:1".to_owned(), "https://b.example.com".to_owned()]
        );
        let error = |list: &str| control_planes(list).unwrap_err();
        assert!(
            error("").contains("empty entry (number 1)"),
            "{}",
            error("")
        );
        assert!(error("http://a:1,,http://b:2").contains("empty entry (number 2)"));
        assert!(error("http://a:1,").contains("empty entry (number 2)"));
        assert!(error("http://a:1,ftp://b").contains("`ftp://b` must start with http://"));
        assert!(error("http://a:1,nonsense").contains("`nonsense` is not valid"));
        assert!(error("http://a:1,http://a:1/").contains("listed twice"));
        let many: Vec<String> = (0..=MAX_CONTROL_PLANES)
            .map(|i| format!("http://h{i}:1"))
            .collect();
        assert!(error(&many.join(",")).contains("at most 16"));
        assert_eq!(control_planes(&many[..16].join(",")).unwrap().len(), 16);
    }

    fn failure(kind: &str) -> Failure {
        Failure {
            kind: kind.to_owned(),
            detail: kind.to_owned(),
            moved: false,
        }
    }

    #[test]
    fn unreachable_or_failing_control_planes_are_left_and_4xx_are_not() {
        for kind in [
            "cannot connect",
            "timed out",
            "request failed",
            "bad response",
            "http 500",
            "http 502",
            "http 503",
        ] {
            assert!(fails_over(&failure(kind)), "{kind}");
        }
        for kind in [
            "http 400",
            "http 401",
            "http 404",
            "http 429",
            "bad assignment",
        ] {
            assert!(!fails_over(&failure(kind)), "{kind}");
        }
    }

    #[test]
    fn the_rotation_moves_once_per_failure_and_comes_back_around() {
        let one = Rotation::new(1);
        assert_eq!(one.advance(0), None);
        assert_eq!(one.current(), 0);
        let three = Rotation::new(3);
        assert_eq!(three.current(), 0);
        assert_eq!(three.advance(0), Some(1));
        // The upload failed against 0 too, after the poll had moved on: no second move.
        assert_eq!(three.advance(0), None);
        assert_eq!(three.current(), 1);
        assert_eq!(three.advance(1), Some(2));
        assert_eq!(three.advance(2), Some(0));
        assert_eq!(three.current(), 0);
    }

    /// Answers every request on a loopback port with `head` (and no body), until dropped.
    async fn answering(head: &'static str) -> (String, tokio::task::JoinHandle<()>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let _ = socket.write_all(head.as_bytes()).await;
                });
            }
        });
        (format!("http://{addr}"), task)
    }

    /// A loopback URL nothing listens on.
    fn refused() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn polls_and_uploads_move_to_the_next_control_plane_on_failure() {
        let down = refused();
        let (failing, _a) =
            answering("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n").await;
        let (good, _b) = answering("HTTP/1.1 304 Not Modified\r\ncontent-length: 0\r\n\r\n").await;
        let api = Api::new(&format!("{down},{failing},{good}"), "t", "a1", "eu").unwrap();
        assert_eq!(api.control_planes(), 3);
        let first = api.poll(None, Duration::ZERO).await.unwrap_err();
        assert_eq!(first.kind, "cannot connect");
        assert!(first.moved);
        let second = api.poll(None, Duration::ZERO).await.unwrap_err();
        assert_eq!(second.kind, "http 503");
        assert!(second.moved);
        assert!(matches!(
            api.poll(None, Duration::ZERO).await,
            Ok(Poll::NotModified)
        ));
        assert_eq!(api.routes().1.base, good);

        // A 4xx stays: every replica would answer it.
        let (refusing, _c) =
            answering("HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n").await;
        let api = Api::new(&format!("{refusing},{good}"), "t", "a1", "eu").unwrap();
        let Post::Retry(f) = api.post(&["{}".to_owned()]).await else {
            panic!("a 401 is retried")
        };
        assert!(!f.moved);
        assert_eq!(api.routes().1.base, refusing);

        // Uploads move like polls, and back around the list.
        let api = Api::new(&format!("{good},{down}"), "t", "a1", "eu").unwrap();
        api.rotation.advance(0);
        let Post::Retry(f) = api.post(&["{}".to_owned()]).await else {
            panic!("nothing listens")
        };
        assert!(f.moved);
        assert_eq!(api.routes().1.base, good);
    }

    #[tokio::test]
    async fn an_older_control_plane_refusing_triggers_is_polled_without_them() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // Refuses the parameter as an older control plane does (400), else no retries.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let answer = if head.contains("triggers=true") {
                        "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"
                    } else {
                        "HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n{\"retries\": []}"
                    };
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        let api = Api::new(&format!("http://{addr}"), "t", "a1", "eu").unwrap();
        let refused = api.take_retries(Duration::ZERO).await.unwrap_err();
        assert_eq!(refused.kind, "http 400");
        assert!(refused.moved, "asked again at once");
        let answer = api.take_retries(Duration::ZERO).await.unwrap();
        assert!(answer.retries.is_empty() && answer.triggered.is_empty());
    }

    #[test]
    fn error_messages_come_from_json_or_the_body() {
        assert_eq!(error_message("{\"error\": \"bad token\"}"), "bad token");
        assert_eq!(error_message(""), "no message");
        assert_eq!(error_message("oops"), "oops");
    }

    /// Serves one answer with a body of `len` bytes and reads it with a bound of `max`.
    async fn read_body(len: usize, max: usize) -> Result<String, Failure> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = [0u8; 1024];
            let _ = socket.read(&mut head).await;
            let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {len}\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.write_all(&vec![b'x'; len]).await;
        });
        let response = reqwest::get(format!("http://{addr}/")).await.unwrap();
        bounded_text(response, max).await
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_their_bound() {
        assert_eq!(read_body(1000, 1000).await.unwrap().len(), 1000);
        let too_long = read_body(1001, 1000).await.unwrap_err();
        assert_eq!(too_long.kind, "bad response");
        assert!(
            too_long.detail.contains("larger than 1000 bytes"),
            "{too_long:?}"
        );
    }
}
