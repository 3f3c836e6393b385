//! The agent's side of the control plane's `/v1/agent/*` routes (control-plane/API.md,
//! "Agents, results, status").

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use monitor_spec::api::{ErrorBody, ResultsRequest, ResultsResponse};
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
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Why a request did not get an answer the agent can use; `kind` tells states apart so
/// the agent logs a line when it changes, not on every retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// `cannot connect`, `timed out`, `http 503`, ...
    pub(crate) kind: String,
    /// The whole story, for the log.
    pub(crate) detail: String,
}

impl Failure {
    fn status(status: StatusCode, body: &str) -> Failure {
        Failure {
            kind: format!("http {}", status.as_u16()),
            detail: format!("http {}: {}", status.as_u16(), error_message(body)),
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

/// A client of the agent routes for one agent.
#[derive(Debug)]
pub(crate) struct Api {
    client: reqwest::Client,
    assignments: String,
    results: String,
    auth: HeaderValue,
    agent: String,
    location: String,
    gzip: AtomicBool,
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
    pub(crate) fn new(base: &str, token: &str, agent: &str, location: &str) -> Result<Api, String> {
        let url = reqwest::Url::parse(base)
            .map_err(|e| format!("control plane URL `{base}` is not valid: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "control plane URL `{base}` must start with http:// or https://"
            ));
        }
        let base = base.trim_end_matches('/');
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
            assignments: format!("{base}/v1/agent/assignments"),
            results: format!("{base}/v1/agent/results"),
            auth,
            agent: agent.to_owned(),
            location: location.to_owned(),
            gzip: AtomicBool::new(true),
            clock: ClockWatch::default(),
        })
    }

    /// `GET /v1/agent/assignments`: long polls up to `wait` for an assignment other than
    /// `etag`.
    pub(crate) async fn poll(&self, etag: Option<&str>, wait: Duration) -> Result<Poll, Failure> {
        let mut request = self
            .client
            .get(&self.assignments)
            .query(&[
                ("agent", self.agent.as_str()),
                ("location", self.location.as_str()),
                ("wait", &wait.as_secs().to_string()),
            ])
            .header(header::AUTHORIZATION, self.auth.clone())
            .timeout(wait + Duration::from_secs(15));
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

    /// `POST /v1/agent/results` with `lines`, each one JSON `ResultIn`.
    pub(crate) async fn post(&self, lines: &[String]) -> Post {
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
                .post(&self.results)
                .header(header::AUTHORIZATION, self.auth.clone())
                .header(header::CONTENT_TYPE, "application/json")
                .timeout(Duration::from_secs(60));
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
