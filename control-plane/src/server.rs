//! The HTTP/1.1 server under the API: an accept loop over hyper that bounds what one
//! client can hold. At most [`Limits::max_connections`] connections are open at once (the
//! next one is answered 503 and closed at once, never queued); a request's head must
//! arrive within [`Limits::header_timeout`] of its first byte, its body within
//! [`Limits::body_timeout`] of its head; a connection with no request in flight for
//! [`Limits::idle_timeout`], or whose client has read nothing of a response for as long,
//! is closed. On shutdown it stops accepting and lets the requests in flight finish.
//! [`serve_with`] first passes each connection through a [`Handshake`] (the control
//! plane's TLS), bounded by the header timeout; [`serve`] speaks plain HTTP.
//!
//! [`Pieces`] is a response body rendered a piece at a time, as the client reads it;
//! [`metrics_response`] sends such a body as `/metrics`, gzip-compressed a piece at a time
//! when the request accepts gzip.
//!
//! `monitor-core` compiles this same file (by `#[path]`, as `runner::http`) for `watch`'s
//! `/metrics` with 64 connections: the two crates share no crate that may do I/O, so one
//! file serves both instead of two copies. It uses only tokio, hyper, hyper-util,
//! http-body, axum's body type, flate2 and tracing, which both crates depend on.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use std::io::Write as _;

use axum::body::{Body, Bytes};
use axum::http::header::{ACCEPT_ENCODING, CONNECTION, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse as _, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The default bound on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// The default time a request's head may take from its first byte: 10 s.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default time a connection may stay without a request in flight: 60 s.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The default time a request's body may take from its head: 60 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// What one connection may hold, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once; the next one is answered 503 and closed.
    pub max_connections: usize,
    /// From the first byte of a request to the end of its head.
    pub header_timeout: Duration,
    /// Without a request in flight (between requests, or before the first), or with a
    /// response the client does not read.
    pub idle_timeout: Duration,
    /// From the head of a request to the end of its body.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// What a connection over the limit reads before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\ncontent-length: 43\r\n\r\n{\"error\":\"too many connections; retry later\"}";

/// The listen backlog [`bind`] asks for (the kernel caps it at `net.core.somaxconn`):
/// with std's and tokio's 128, a burst of connections (agents reconnecting at once)
/// overflows the accept queue and the kernel drops or syncookies the excess; a client
/// that connected and waits to be spoken to can then hang on a connection the server
/// never saw.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener on the first address of `addr` that binds, with [`LISTEN_BACKLOG`]
/// and `SO_REUSEADDR` (as std sets it on Unix).
pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = match addr {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let bound = socket.and_then(|socket| {
            #[cfg(unix)]
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(LISTEN_BACKLOG)
        });
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolved to nothing",
        )
    }))
}

/// What a connection goes through before HTTP, such as a TLS handshake: it runs on the
/// connection's own task, within [`Limits::header_timeout`], and a connection whose
/// handshake fails or runs out of time is closed.
pub trait Handshake: Clone + Send + Sync + 'static {
    /// The stream HTTP is spoken over once the handshake is done.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Wraps a connection just accepted.
    fn handshake(
        &self,
        stream: TcpStream,
    ) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

/// No handshake: plain HTTP over the TCP connection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Handshake for Plain {
    type Stream = TcpStream;

    async fn handshake(&self, stream: TcpStream) -> std::io::Result<TcpStream> {
        Ok(stream)
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then stops
/// accepting and waits for the connections to finish their requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, router, limits, Plain, shutdown).await;
}

/// [`serve`], each connection first going through `handshake`.
pub async fn serve_with<H: Handshake>(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    handshake: H,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to close.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                max = limits.max_connections,
                "too many connections: answered 503 and closed"
            );
            refuse(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = stop_rx.clone();
        let handshake = handshake.clone();
        connections.spawn(async move {
            let shake = tokio::time::timeout(limits.header_timeout, handshake.handshake(stream));
            let shaken = tokio::select! {
                shaken = shake => shaken,
                _ = stop.changed() => return,
            };
            match shaken {
                Ok(Ok(stream)) => connection(stream, router, limits, stop).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "a handshake failed"),
                Err(_) => tracing::debug!("closing a connection: handshake timeout"),
            }
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// Answers 503 without waiting: what fits in the socket buffer now (all of it on a new
/// connection), then closes.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(BUSY);
    let std = stream.into_std();
    if let Ok(std) = std {
        let _ = std.shutdown(std::net::Shutdown::Write);
    }
}

/// Serves one connection until it ends, a limit closes it, or shutdown lets its request
/// in flight finish.
async fn connection<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    router: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let activity = Arc::new(Mutex::new(Activity::new(Instant::now())));
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = TowerToHyperService::new(router);
    let tracker = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(&tracker);
        let whole = hyper::body::Body::is_end_stream(req.body());
        let body = (!whole).then(|| BodyGuard::start(&tracker, limits.body_timeout));
        let ended = Arc::new(AtomicBool::new(whole));
        let req = req.map(|inner| {
            Body::new(Arriving {
                inner,
                guard: body,
                ended: Arc::clone(&ended),
            })
        });
        let answer = hyper::service::Service::call(&service, req);
        async move {
            let mut response = answer.await?;
            // Answered before the body arrived whole (a refused token, a body over the
            // limit): hyper closes the connection after the response, so say so, or a
            // client would send its next request on a connection about to close.
            if !ended.load(Ordering::Acquire) {
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response.map(|inner| Sending {
                inner,
                _in_flight: in_flight,
            }))
        }
    });
    // The header timeout is measured here from the request's first byte: hyper's own
    // starts as soon as a connection waits for a request, idle or not.
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let check = Instant::now() + limits.shortest();
        let wake = lock(&activity)
            .deadline(&limits)
            .map_or(check, |d| d.min(check));
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(wake) => {
                if let Some(why) = lock(&activity).expired(Instant::now(), &limits) {
                    tracing::debug!(why, "closing a connection");
                    return;
                }
            }
        }
    }
}

impl Limits {
    /// The shortest timeout: how often a connection's deadlines are looked at again at
    /// the least.
    fn shortest(&self) -> Duration {
        self.header_timeout
            .min(self.idle_timeout)
            .min(self.body_timeout)
            .max(Duration::from_millis(10))
    }
}

/// What a connection is doing, for its timeouts.
#[derive(Debug)]
struct Activity {
    /// Requests whose response is not sent whole yet.
    in_flight: usize,
    /// When the last request in flight ended (or the connection was accepted).
    idle_since: Instant,
    /// When the first byte of the next request arrived, while none was in flight.
    head_since: Option<Instant>,
    /// When the request body still arriving must be complete.
    body_deadline: Option<Instant>,
    /// Since when a write waits for the client to read.
    blocked_since: Option<Instant>,
}

impl Activity {
    fn new(now: Instant) -> Activity {
        Activity {
            in_flight: 0,
            idle_since: now,
            head_since: None,
            body_deadline: None,
            blocked_since: None,
        }
    }

    /// The earliest time a limit may close the connection.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let idle = (self.in_flight == 0).then(|| match self.head_since {
            Some(t) => t + limits.header_timeout,
            None => self.idle_since + limits.idle_timeout,
        });
        let blocked = self.blocked_since.map(|t| t + limits.idle_timeout);
        [idle, blocked, self.body_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Why a limit closes the connection at `now`, if one does.
    fn expired(&self, now: Instant, limits: &Limits) -> Option<&'static str> {
        let past = |t: Instant, d: Duration| now >= t + d;
        if self.in_flight == 0 {
            match self.head_since {
                Some(t) if past(t, limits.header_timeout) => return Some("header timeout"),
                None if past(self.idle_since, limits.idle_timeout) => {
                    return Some("idle timeout");
                }
                _ => {}
            }
        }
        if self
            .blocked_since
            .is_some_and(|t| past(t, limits.idle_timeout))
        {
            return Some("the client reads nothing of its response");
        }
        if self.body_deadline.is_some_and(|t| now >= t) {
            return Some("body timeout");
        }
        None
    }
}

fn lock(activity: &Mutex<Activity>) -> MutexGuard<'_, Activity> {
    activity.lock().unwrap_or_else(|e| e.into_inner())
}

/// The socket (or the TLS stream over it), noting when bytes arrive and when writes wait.
struct Tracked<S> {
    inner: S,
    activity: Arc<Mutex<Activity>>,
}

impl<S> Tracked<S> {
    fn wrote<T>(&self, poll: &Poll<std::io::Result<T>>) {
        let mut a = lock(&self.activity);
        match poll {
            Poll::Pending => {
                a.blocked_since.get_or_insert_with(Instant::now);
            }
            Poll::Ready(_) => a.blocked_since = None,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let mut a = lock(&this.activity);
            if a.in_flight == 0 && a.head_since.is_none() {
                a.head_since = Some(Instant::now());
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(&poll);
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.wrote(&poll);
        poll
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request in flight, from its head to the end of its response (or until hyper drops
/// it).
struct InFlight(Arc<Mutex<Activity>>);

impl InFlight {
    fn start(activity: &Arc<Mutex<Activity>>) -> InFlight {
        let mut a = lock(activity);
        a.in_flight += 1;
        a.head_since = None;
        InFlight(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut a = lock(&self.0);
        a.in_flight = a.in_flight.saturating_sub(1);
        if a.in_flight == 0 {
            a.idle_since = Instant::now();
        }
    }
}

/// A request body still arriving: its deadline holds until the body ends or is dropped.
struct BodyGuard(Arc<Mutex<Activity>>);

impl BodyGuard {
    fn start(activity: &Arc<Mutex<Activity>>, timeout: Duration) -> BodyGuard {
        lock(activity).body_deadline = Some(Instant::now() + timeout);
        BodyGuard(Arc::clone(activity))
    }
}

impl Drop for BodyGuard {
    fn drop(&mut self) {
        lock(&self.0).body_deadline = None;
    }
}

/// A request body, its deadline lifted once it has arrived whole.
struct Arriving {
    inner: Incoming,
    guard: Option<BodyGuard>,
    /// Set once the body has arrived whole.
    ended: Arc<AtomicBool>,
}

impl http_body::Body for Arriving {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(poll, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.guard = None;
            this.ended.store(true, Ordering::Release);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body; the request stays in flight until hyper is done with it.
struct Sending {
    inner: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Sending {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body rendered a piece at a time: `next` is called for the next piece only
/// when hyper has room for it (it buffers a few hundred KiB per connection), so a slow
/// reader holds one piece and whatever `next` keeps, not the whole text.
pub struct Pieces<F>(Option<F>);

impl<F: FnMut() -> Option<String> + Send + Unpin + 'static> Pieces<F> {
    /// The body of the pieces `next` renders until it returns `None`.
    pub fn body(next: F) -> Body {
        Body::new(Pieces(Some(next)))
    }

    /// The body of the pieces `next` renders, gzip-compressed as they come: each piece
    /// goes through one streaming encoder, which holds its deflate state (about 256 KiB)
    /// and the compressed bytes of one piece at most, never the whole text.
    pub fn gzip(mut next: F) -> Body {
        let mut encoder = Some(GzEncoder::new(Vec::new(), Compression::default()));
        Body::new(Pieces(Some(move || {
            let piece = next();
            let enc = encoder.as_mut()?;
            match piece {
                // Writing into a Vec cannot fail.
                Some(piece) => {
                    let _ = enc.write_all(piece.as_bytes());
                    Some(std::mem::take(enc.get_mut()))
                }
                None => encoder.take()?.finish().ok(),
            }
        })))
    }
}

impl<F: FnMut() -> Option<B> + Unpin, B: Into<Bytes>> http_body::Body for Pieces<F> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        while let Some(next) = this.0.as_mut() {
            match next().map(Into::into) {
                Some(piece) if piece.is_empty() => continue,
                Some(piece) => return Poll::Ready(Some(Ok(Frame::data(piece)))),
                None => this.0 = None,
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }
}

/// The content type of the Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A `/metrics` answer of the pieces `next` renders: gzip-compressed a piece at a time
/// (`content-encoding: gzip`) when the request's `Accept-Encoding` accepts gzip, plain
/// otherwise; either way with `vary: accept-encoding`.
pub fn metrics_response<F>(request: &HeaderMap, next: F) -> Response
where
    F: FnMut() -> Option<String> + Send + Unpin + 'static,
{
    let vary = (VARY, HeaderValue::from_static("accept-encoding"));
    let kind = (CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    if accepts_gzip(request) {
        let gzip = (CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        ([kind, vary, gzip], Pieces::gzip(next)).into_response()
    } else {
        ([kind, vary], Pieces::body(next)).into_response()
    }
}

/// Whether `Accept-Encoding` accepts gzip: `gzip`, `x-gzip` or `*` with a quality above
/// zero (`gzip;q=0` refuses it). At most 64 entries of each header are read.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let entries = request
        .get_all(ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').take(64));
    let mut star = false;
    for entry in entries {
        let mut parts = entry.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .map_or(Some(1.0), |q| q.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => return quality > 0.0,
            "*" => star = quality > 0.0,
            _ => {}
        }
    }
    star
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 1,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
        }
    }

    fn check(a: &Activity, after: u64, expected: Option<&str>) {
        let now = a.idle_since + Duration::from_secs(after);
        assert_eq!(a.expired(now, &limits()), expected, "after {after} s");
    }

    #[test]
    fn gzip_is_accepted_as_asked() {
        let check = |values: &[&str], expected: bool| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            }
            assert_eq!(accepts_gzip(&headers), expected, "{values:?}");
        };
        check(&[], false);
        check(&["gzip"], true);
        check(&["deflate, GZIP;q=0.5"], true);
        check(&["br", "x-gzip"], true);
        check(&["gzip;q=0"], false);
        check(&["gzip; q=0.0, *"], false);
        check(&["*"], true);
        check(&["*;q=0"], false);
        check(&["identity"], false);
        check(&["gzip;q=abc"], false);
    }

    #[test]
    fn timeouts_by_phase() {
        let t0 = Instant::now();
        let mut a = Activity::new(t0);
        check(&a, 59, None);
        check(&a, 60, Some("idle timeout"));
        assert_eq!(a.deadline(&limits()), Some(t0 + Duration::from_secs(60)));
        a.head_since = Some(t0 + Duration::from_secs(5));
        check(&a, 14, None);
        check(&a, 15, Some("header timeout"));
        a.in_flight = 1;
        a.head_since = None;
        check(&a, 1000, None);
        assert_eq!(a.deadline(&limits()), None);
        a.body_deadline = Some(t0 + Duration::from_secs(30));
        check(&a, 29, None);
        check(&a, 30, Some("body timeout"));
        a.body_deadline = None;
        a.blocked_since = Some(t0);
        check(&a, 59, None);
        check(&a, 60, Some("the client reads nothing of its response"));
    }
}
