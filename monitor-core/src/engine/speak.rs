//! What every recipe shares: the [`Context`] it speaks in, the failures it understands
//! (another protocol, a service turning us away), and saying goodbye.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::classify::error;
use super::conn::Conn;
use super::dialog::DialogError;
use super::place::place;
use super::upgrade::Negotiated;
use monitor_spec::result::ErrorKind;
use monitor_spec::spec::TcpMonitor;

/// What a recipe learned, by name: `server_version`, `software`, `capabilities`, ...
pub type Learned = BTreeMap<String, String>;

/// How long a goodbye (QUIT, LOGOUT) waits for the server to close.
pub(crate) const GOODBYE: Duration = Duration::from_millis(500);

/// The most lines read while looking for one reply (a greeting, a capability list).
pub(crate) const MAX_LINES: usize = 256;

/// What a recipe needs besides the connection.
pub(crate) struct Context<'a> {
    pub spec: &'a TcpMonitor,
    /// The recipe's password, or the name of the unset variable that should hold it.
    pub secret: Option<&'a Result<String, String>>,
    /// The plaintext dialog STARTTLS already ran (greeting and capabilities included).
    pub upgraded: Option<&'a Negotiated>,
    /// Whether steps follow; without them the recipe says goodbye.
    pub steps_follow: bool,
    /// Where the connection goes, for messages.
    pub addr: std::net::SocketAddr,
    /// The server's certificate (DER) over TLS, for channel binding.
    pub server_cert: Option<&'a [u8]>,
}

pub(crate) type Outcome = Result<(), DialogError>;

/// A failure a recipe understood.
pub(crate) fn said(
    cx: &Context<'_>,
    kind: ErrorKind,
    message: String,
    hints: Vec<String>,
) -> DialogError {
    DialogError::Said(error(kind, message, hints, cx.spec))
}

/// The server answered in another protocol.
pub(crate) fn mismatch(cx: &Context<'_>, protocol: &str, got: &str) -> DialogError {
    let target = place(cx.spec, Some(cx.addr));
    said(
        cx,
        ErrorKind::ProtocolMismatch,
        format!(
            "{target} answered `{}`, which is not {protocol}",
            got.escape_debug()
                .to_string()
                .chars()
                .take(120)
                .collect::<String>()
        ),
        vec![
            format!(
                "another service may listen on port {}: check which process owns it",
                cx.spec.target.port
            ),
            if cx.spec.tls.mode == monitor_spec::spec::TlsMode::None {
                "the service may expect TLS on this port: set tls.mode to direct".to_owned()
            } else {
                "the service may not expect TLS on this port: check tls.mode".to_owned()
            },
        ],
    )
}

/// The server speaks the protocol but turned us away for now.
pub(crate) fn unavailable(
    cx: &Context<'_>,
    protocol: &str,
    text: &str,
    hints: Vec<String>,
) -> DialogError {
    let target = place(cx.spec, Some(cx.addr));
    said(
        cx,
        ErrorKind::ServiceUnavailable,
        format!("{protocol} at {target} is not serving: {text}"),
        hints,
    )
}

pub(crate) fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// Says goodbye when no steps follow; the answer is not judged.
pub(crate) async fn goodbye<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    bytes: &[u8],
) -> Outcome {
    if !cx.steps_follow {
        // A server that already closed has nothing left to say; that is not a failure.
        if s.send(bytes, "sending the goodbye").await.is_ok() {
            s.drain(GOODBYE).await;
        }
    }
    Ok(())
}

/// The server's greeting line: the one STARTTLS already read, or the next line.
pub(crate) async fn greeting_line<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut Conn<'_, S>,
    cx: &Context<'_>,
    what: &str,
) -> Result<String, DialogError> {
    match cx.upgraded {
        Some(pre) => Ok(pre.greeting.clone().unwrap_or_default()),
        None => s.line(what).await,
    }
}

/// The server greeted by turning the session away (IMAP `BYE`, POP3 `-ERR`).
pub(crate) fn turned_away(cx: &Context<'_>, protocol: &str, text: &str) -> DialogError {
    unavailable(
        cx,
        protocol,
        text.trim(),
        vec!["the server turned the session away: check its connection limits and logs".to_owned()],
    )
}
