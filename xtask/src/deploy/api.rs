//! The HTTP side of deploys: requests to the control plane (control-plane/API.md) and its
//! errors turned into messages that say what to do, never showing the token. What the
//! server says is read with a size bound and shown only through [`shown`]: hidden
//! characters escaped, each string capped, so a hostile or broken server cannot drive the
//! terminal (escape sequences, U+202E) or flood it.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use monitor_spec::api::{
    DeployResponse, DestroyResponse, ErrorBody, TriggerRequest, TriggerResponse, TriggerStatus,
};
use monitor_spec::maintenance::{AdHocRequest, ListedWindow};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::Failure;
use super::config::{TOKEN_VAR, Target, Token};

/// Request bodies larger than this are sent gzip-compressed.
pub(crate) const GZIP_ABOVE: usize = 64 * 1024;
/// The most bytes of an error answer read (1 MiB); the rest is never read.
pub(crate) const MAX_ERROR_BODY: usize = 1024 * 1024;
/// The most bytes of a successful answer read (64 MiB: the diff of a very large project).
pub(crate) const MAX_ANSWER_BODY: usize = 64 * 1024 * 1024;
/// The most bytes shown of one string the server sent (an error, a problem, an id).
pub(crate) const MAX_SHOWN_BYTES: usize = 4096;
/// The most problems of an error answer listed; the rest are counted.
pub(crate) const MAX_PROBLEMS: usize = 100;

/// A string from the server as it may reach the terminal: hidden characters (controls,
/// escape sequences, bidi and zero-width characters) escaped, at most
/// [`MAX_SHOWN_BYTES`] kept.
pub(crate) fn shown(text: &str) -> String {
    monitor_spec::escape::printable(text, MAX_SHOWN_BYTES)
}

/// Reads at most `limit` bytes of `response`, as text (invalid UTF-8 replaced), and
/// whether there was more.
fn read_bounded(response: impl Read, limit: usize) -> std::io::Result<(String, bool)> {
    let mut bytes = Vec::new();
    response
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)?;
    let cut = bytes.len() > limit;
    bytes.truncate(limit);
    Ok((String::from_utf8_lossy(&bytes).into_owned(), cut))
}

/// A request body, compressed when large.
#[derive(Debug, Clone)]
pub(crate) struct Body {
    /// The bytes sent.
    pub bytes: Vec<u8>,
    /// Whether `bytes` is gzip.
    pub gzip: bool,
    /// The size before compression.
    pub plain_len: usize,
}

impl Body {
    /// `json` as a body: gzip-compressed when larger than [`GZIP_ABOVE`].
    pub(crate) fn new(json: Vec<u8>) -> Result<Body> {
        let plain_len = json.len();
        if plain_len <= GZIP_ABOVE {
            return Ok(Body {
                bytes: json,
                gzip: false,
                plain_len,
            });
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain_len / 8),
            flate2::Compression::default(),
        );
        encoder
            .write_all(&json)
            .context("cannot gzip the request body")?;
        let bytes = encoder.finish().context("cannot gzip the request body")?;
        Ok(Body {
            bytes,
            gzip: true,
            plain_len,
        })
    }
}

/// What a request is for, so errors can say it in the user's terms.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Action {
    /// A dry run of a deploy.
    Preview,
    /// Applying a deploy.
    Deploy,
    /// `rollback N`.
    Rollback(u64),
    /// Removing every monitor.
    Destroy,
    /// Reading the current monitors.
    Read,
    /// Listing the versions.
    Versions,
    /// Reading version N.
    Version(u64),
    /// `trigger`: queuing the runs.
    Trigger,
    /// `trigger --wait`: reading the results.
    TriggerStatus,
    /// `maintenance start`: opening an ad-hoc window.
    MaintenanceStart,
    /// `maintenance list`.
    MaintenanceList,
    /// `maintenance end ID`.
    MaintenanceEnd,
}

/// The monitors of `GET .../monitors`, counted but not read.
#[derive(Debug, Deserialize)]
pub(crate) struct MonitorCount {
    /// One entry per monitor.
    monitors: Vec<IgnoredAny>,
}

impl MonitorCount {
    /// How many monitors the project has.
    pub(crate) fn len(&self) -> usize {
        self.monitors.len()
    }
}

/// A client of one project on one control plane.
pub(crate) struct Api {
    client: Client,
    target: Target,
    auth: HeaderValue,
}

impl Api {
    /// A client for `target` that authenticates with `token`.
    pub(crate) fn new(target: Target, token: &Token) -> Result<Api> {
        let client = Client::builder()
            .user_agent(concat!("monitors-deploy/", env!("CARGO_PKG_VERSION")))
            // A redirect would resend the body, and possibly the token, somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(300))
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Api {
            client,
            target,
            auth: token.header()?,
        })
    }

    /// The project.
    pub(crate) fn project(&self) -> &str {
        &self.target.project
    }

    /// The control plane's base URL, for messages.
    pub(crate) fn base(&self) -> &str {
        self.target.url.as_str().trim_end_matches('/')
    }

    /// `{base}/v1/projects/{project}/{tail...}`, each segment percent-encoded.
    pub(crate) fn url(&self, tail: &[&str]) -> Url {
        let mut url = self.target.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["v1", "projects", &self.target.project])
                .extend(tail);
        }
        url
    }

    /// `POST .../deploy?dry_run=..&prune=..` with `body` (a `DeployRequest`).
    pub(crate) fn deploy(
        &self,
        body: &Body,
        dry_run: bool,
        prune: bool,
    ) -> Result<DeployResponse, Failure> {
        let mut url = self.url(&["deploy"]);
        url.query_pairs_mut()
            .append_pair("dry_run", if dry_run { "true" } else { "false" })
            .append_pair("prune", if prune { "true" } else { "false" });
        let mut request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.bytes.clone());
        if body.gzip {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        let action = if dry_run {
            Action::Preview
        } else {
            Action::Deploy
        };
        self.send(request, action, Some(body))
    }

    /// `POST .../rollback/{n}`.
    pub(crate) fn rollback(&self, n: u64) -> Result<DeployResponse, Failure> {
        let request = self.client.post(self.url(&["rollback", &n.to_string()]));
        self.send(request, Action::Rollback(n), None)
    }

    /// `DELETE /v1/projects/{project}`.
    pub(crate) fn destroy(&self) -> Result<DestroyResponse, Failure> {
        let request = self.client.delete(self.url(&[]));
        self.send(request, Action::Destroy, None)
    }

    /// `GET .../monitors`.
    /// `POST /v1/projects/{project}/trigger`.
    pub(crate) fn trigger(&self, request: &TriggerRequest) -> Result<TriggerResponse, Failure> {
        let json = serde_json::to_vec(request)
            .map_err(|e| Failure::local(anyhow!(e).context("cannot write the trigger")))?;
        let request = self
            .client
            .post(self.url(&["trigger"]))
            .header(CONTENT_TYPE, "application/json")
            .body(json);
        self.send(request, Action::Trigger, None)
    }

    /// `GET /v1/projects/{project}/triggers/{id}?wait=SECS`.
    pub(crate) fn trigger_status(&self, id: &str, wait: u64) -> Result<TriggerStatus, Failure> {
        let mut url = self.url(&["triggers", id]);
        url.query_pairs_mut().append_pair("wait", &wait.to_string());
        let request = self.client.get(url);
        self.send(request, Action::TriggerStatus, None)
    }

    /// `POST /v1/projects/{project}/maintenance`: opens an ad-hoc window.
    pub(crate) fn start_maintenance(
        &self,
        request: &AdHocRequest,
    ) -> Result<ListedWindow, Failure> {
        let json = serde_json::to_vec(request)
            .map_err(|e| Failure::local(anyhow!(e).context("cannot write the window")))?;
        let request = self
            .client
            .post(self.url(&["maintenance"]))
            .header(CONTENT_TYPE, "application/json")
            .body(json);
        self.send(request, Action::MaintenanceStart, None)
    }

    /// `DELETE /v1/projects/{project}/maintenance/{id}`: ends an ad-hoc window; the
    /// ended window, or `None` when the answer is `204 No Content`.
    pub(crate) fn end_maintenance(&self, id: &str) -> Result<Option<ListedWindow>, Failure> {
        let request = self.client.delete(self.url(&["maintenance", id]));
        self.send(request, Action::MaintenanceEnd, None)
    }

    pub(crate) fn monitors(&self) -> Result<MonitorCount, Failure> {
        let request = self.client.get(self.url(&["monitors"]));
        self.send(request, Action::Read, None)
    }

    /// `GET /v1/projects/{project}/TAIL...` read as a `T` (`versions`, `versions/N`,
    /// `monitors`).
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        tail: &[&str],
        action: Action,
    ) -> Result<T, Failure> {
        let request = self.client.get(self.url(tail));
        self.send(request, action, None)
    }

    /// Sends `request` and reads the answer as a `T`; errors say what to do.
    fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        action: Action,
        body: Option<&Body>,
    ) -> Result<T, Failure> {
        let response = request
            .header(AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            // reqwest's messages carry the URL and the cause, never the headers.
            .map_err(|e| {
                Failure::remote(anyhow!(e).context(format!(
                    "cannot reach the control plane at {} (is it running, and is the URL right?)",
                    self.base()
                )))
            })?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere")
                .to_owned();
            return Err(Failure::remote(anyhow!(
                "the control plane at {} redirects to {} ({status}); put the address it redirects to in --url or {} (redirects are not followed, so the token goes nowhere else)",
                self.base(),
                shown(&location),
                super::config::URL_VAR
            )));
        }
        let limit = if status.is_success() {
            MAX_ANSWER_BODY
        } else {
            MAX_ERROR_BODY
        };
        let (text, cut) = read_bounded(response, limit).map_err(|e| {
            Failure::remote(anyhow!(e).context(format!(
                "the control plane at {} broke off its answer ({status})",
                self.base()
            )))
        })?;
        if !status.is_success() {
            // A cut error body is described from its start: an excerpt, not JSON.
            return Err(Failure::remote(describe(
                status,
                &text,
                action,
                &self.target.project,
                body,
            )));
        }
        if cut {
            return Err(Failure::remote(anyhow!(
                "the control plane at {} answered {status} with more than {} MiB; is the URL the control plane's?",
                self.base(),
                MAX_ANSWER_BODY >> 20
            )));
        }
        // No content reads as `null`: an `Option` answer is `None`.
        let text = if status == StatusCode::NO_CONTENT && text.trim().is_empty() {
            "null".to_owned()
        } else {
            text
        };
        serde_json::from_str(&text).map_err(|e| {
            Failure::remote(anyhow!(
                "the control plane at {} answered {status} with something that is not the API's JSON ({}): {}; is the URL the control plane's?",
                self.base(),
                shown(&e.to_string()),
                excerpt(&text)
            ))
        })
    }
}

/// The first 300 characters of `text` on one line, every hidden character a space.
fn excerpt(text: &str) -> String {
    let one_line: String = text
        .chars()
        .take(301)
        .map(|c| {
            if monitor_spec::escape::is_hidden(c) {
                ' '
            } else {
                c
            }
        })
        .collect();
    let trimmed = one_line.trim();
    match trimmed.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &trimmed[..i]),
        None if text.chars().nth(301).is_some() => format!("{trimmed}…"),
        None => trimmed.to_owned(),
    }
}

/// The message for an error answer: the server's `{"error", "problems"}` when it sent one,
/// with what to do about it.
pub(crate) fn describe(
    status: StatusCode,
    text: &str,
    action: Action,
    project: &str,
    body: Option<&Body>,
) -> anyhow::Error {
    let parsed: Option<ErrorBody> = serde_json::from_str(text).ok();
    let agent_token = parsed
        .as_ref()
        .is_some_and(|body| body.error.to_lowercase().contains("agent token"));
    let error = match &parsed {
        Some(body) => shown(&body.error),
        None if text.trim().is_empty() => status
            .canonical_reason()
            .unwrap_or("no message")
            .to_lowercase(),
        None => excerpt(text),
    };
    let all = parsed.map(|body| body.problems).unwrap_or_default();
    let count = all.len();
    let mut problems: Vec<String> = all
        .into_iter()
        .take(MAX_PROBLEMS)
        .map(|p| {
            if p.path.is_empty() {
                format!("  {}", shown(&p.message))
            } else {
                format!("  {}: {}", shown(&p.path), shown(&p.message))
            }
        })
        .collect();
    if count > MAX_PROBLEMS {
        problems.push(format!("  … ({} more)", count - MAX_PROBLEMS));
    }
    let code = status.as_u16();
    let what = match action {
        Action::Preview => "the deploy preview".to_owned(),
        Action::Deploy => "the deploy".to_owned(),
        Action::Rollback(n) => format!("the rollback to version {n}"),
        Action::Destroy => "the destroy".to_owned(),
        Action::Read => "reading the monitors".to_owned(),
        Action::Versions => "listing the versions".to_owned(),
        Action::Version(n) => format!("reading version {n}"),
        Action::Trigger => "the trigger".to_owned(),
        Action::TriggerStatus => "reading the trigger's results".to_owned(),
        Action::MaintenanceStart => "opening the maintenance window".to_owned(),
        Action::MaintenanceList => "listing the maintenance windows".to_owned(),
        Action::MaintenanceEnd => "ending the maintenance window".to_owned(),
    };
    let mut message = match status {
        StatusCode::UNAUTHORIZED => format!(
            "the control plane refused the token ({code}: {error}): {TOKEN_VAR} is missing, mistyped or unknown to this control plane; create one with `control-plane token create --project {project} --db PATH`"
        ),
        StatusCode::FORBIDDEN if agent_token => format!(
            "the token in {TOKEN_VAR} is an agent token, which cannot deploy, roll back or destroy ({code}: {error}); use a deploy token of project `{project}` (`control-plane token create --project {project} --role deploy --db PATH`)"
        ),
        StatusCode::FORBIDDEN => format!(
            "the token in {TOKEN_VAR} is for another project, not `{project}` ({code}: {error}); use the project's own token or fix --project/MONITORS_PROJECT"
        ),
        StatusCode::CONFLICT if matches!(action, Action::MaintenanceEnd) => format!(
            "the window is deployed, not opened ad hoc ({code}: {error}); it ends when a deploy no longer declares it (remove its `maintenance!`)"
        ),
        StatusCode::NOT_FOUND if matches!(action, Action::MaintenanceEnd) => format!(
            "project `{project}` has no such maintenance window ({code}: {error}); `cargo xtask maintenance list` shows the open ones"
        ),
        StatusCode::UNPROCESSABLE_ENTITY if matches!(action, Action::MaintenanceStart) => {
            format!(
                "the control plane rejected the window ({code}: {error}){}",
                match count {
                    0 => String::new(),
                    1 => "; 1 problem:".to_owned(),
                    n => format!("; {n} problems:"),
                }
            )
        }
        StatusCode::CONFLICT if matches!(action, Action::Trigger) => {
            format!("nothing to run ({code}: {error})")
        }
        StatusCode::UNPROCESSABLE_ENTITY if matches!(action, Action::Trigger) => {
            format!("the control plane rejected the trigger ({code}: {error})")
        }
        StatusCode::CONFLICT => format!(
            "another deploy to project `{project}` is running ({code}: {error}); retry when it has finished"
        ),
        StatusCode::UNPROCESSABLE_ENTITY => {
            let n = count;
            format!(
                "the control plane rejected the bundle ({code}: {error}){}",
                match n {
                    0 => String::new(),
                    1 => "; 1 problem:".to_owned(),
                    n => format!("; {n} problems:"),
                }
            )
        }
        StatusCode::NOT_FOUND => match action {
            Action::Rollback(n) | Action::Version(n) => {
                format!("project `{project}` has no version {n} ({code}: {error})")
            }
            _ => format!(
                "{what} found nothing at that address ({code}: {error}); is the URL the control plane's?"
            ),
        },
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "the bundle is larger than the control plane accepts ({code}: {error}; {} bytes of JSON); raise the server's --max-body-bytes",
            body.map_or(0, |b| b.plain_len)
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => format!(
            "the control plane does not accept this body ({code}: {error}){}",
            if body.is_some_and(|b| b.gzip) {
                "; it was gzip-compressed because it is larger than 64 KiB"
            } else {
                ""
            }
        ),
        StatusCode::BAD_REQUEST => format!("the control plane rejected {what} ({code}: {error})"),
        s if s.is_server_error() => format!(
            "the control plane failed during {what} ({code}: {error}); nothing was changed, retry or look at its log"
        ),
        _ => format!("the control plane answered {what} with {code}: {error}"),
    };
    if !problems.is_empty() {
        if status != StatusCode::UNPROCESSABLE_ENTITY {
            message.push(':');
        }
        for p in problems {
            message.push('\n');
            message.push_str(&p);
        }
    }
    anyhow!(message)
}
