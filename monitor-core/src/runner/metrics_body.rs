//! A `/metrics` answer rendered off the runtime's workers: one thread per scrape, at the
//! lowest priority (nice 19, so the checks' workers come first), renders the text a piece
//! at a time (gzip-compressing it when the request accepts gzip) and hands each piece to the response body through a channel of
//! [`PIECES_AHEAD`] pieces, so that a large exposition neither stalls the checks the
//! workers run nor sits whole in memory. `watch` and the agent both answer so.

use std::convert::Infallible;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse as _, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body::Frame;
use tokio::sync::mpsc;

use super::http::{METRICS_CONTENT_TYPE, accepts_gzip};

/// How many rendered pieces wait for the client at most: with pieces of 64 KiB or so, a
/// slow reader holds about a quarter of a megabyte per scrape, plus what hyper buffers.
pub const PIECES_AHEAD: usize = 2;

/// A `/metrics` answer of the pieces `next` renders until it returns `None`, rendered on
/// a thread of its own (at most one per connection, which the server bounds; 503 when
/// no thread can be started): gzip-compressed (`content-encoding: gzip`) when the request's
/// `Accept-Encoding` accepts gzip, plain otherwise; either way with
/// `vary: accept-encoding`. The thread stops when the client goes away.
pub fn response<F>(request: &HeaderMap, mut next: F) -> Response
where
    F: FnMut() -> Option<String> + Send + 'static,
{
    let vary = (VARY, HeaderValue::from_static("accept-encoding"));
    let kind = (CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    let gzip = accepts_gzip(request);
    let (tx, rx) = mpsc::channel::<Bytes>(PIECES_AHEAD);
    // A thread of its own rather than the blocking pool's: its priority is lowered for
    // good, and the pool also resolves names for the checks.
    let render = move || {
        // Where the nice value cannot be set the text is rendered all the same.
        let _ = monitor_sys::lower_thread_priority();
        let mut encoder = gzip.then(|| GzEncoder::new(Vec::new(), Compression::default()));
        while let Some(piece) = next() {
            let bytes = match encoder.as_mut() {
                // Writing into a Vec cannot fail.
                Some(enc) => {
                    let _ = enc.write_all(piece.as_bytes());
                    std::mem::take(enc.get_mut())
                }
                None => piece.into_bytes(),
            };
            if !bytes.is_empty() && tx.blocking_send(bytes.into()).is_err() {
                return;
            }
        }
        if let Some(rest) = encoder.and_then(|e| e.finish().ok()) {
            let _ = tx.blocking_send(rest.into());
        }
    };
    let spawned = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(render);
    if spawned.is_err() {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let body = Body::new(Received(rx));
    if gzip {
        let gzip = (CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        ([kind, vary, gzip], body).into_response()
    } else {
        ([kind, vary], body).into_response()
    }
}

/// A response body of the pieces a channel receives, until its sender is gone.
struct Received(mpsc::Receiver<Bytes>);

impl http_body::Body for Received {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|piece| piece.map(|p| Ok(Frame::data(p))))
    }
}
