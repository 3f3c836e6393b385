//! The kernel's view of a check's connection (`TCP_INFO`, Linux): read right after
//! connect and once more when the check is done with the connection, right before it
//! closes, by the stream itself ([`Watched`]), so the reading works whatever wraps the
//! stream by then.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use monitor_spec::result::{ProbeError, TcpReport, TcpSample};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Reads `TCP_INFO` of one connection: after connect at [`Watch::start`], at close when
/// the [`Watched`] stream drops. Two system calls per check, both `getsockopt`.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    after_connect: Option<TcpSample>,
    at_close: OnceLock<TcpSample>,
}

impl Watch {
    /// Reads `TCP_INFO` once, right after connect.
    pub fn start(stream: &TcpStream) -> Self {
        Watch {
            after_connect: sample(stream),
            at_close: OnceLock::new(),
        }
    }

    /// The reading right after connect.
    pub fn after_connect(&self) -> Option<TcpSample> {
        self.after_connect
    }

    /// `stream`, which reads `TCP_INFO` into this watch when it drops, before it closes.
    pub fn watched(&self, stream: TcpStream) -> Watched<'_> {
        Watched {
            stream,
            at_close: &self.at_close,
        }
    }

    /// Both readings, once the watched stream is gone.
    pub fn finish(self) -> Option<TcpReport> {
        let at_close = self.at_close.into_inner();
        (self.after_connect.is_some() || at_close.is_some()).then_some(TcpReport {
            after_connect: self.after_connect,
            at_close,
        })
    }
}

/// A check's connection: reads `TCP_INFO` a last time when dropped, right before the
/// connection closes.
#[derive(Debug)]
pub(crate) struct Watched<'w> {
    stream: TcpStream,
    at_close: &'w OnceLock<TcpSample>,
}

impl Drop for Watched<'_> {
    fn drop(&mut self) {
        if let Some(seen) = sample(&self.stream) {
            let _ = self.at_close.set(seen);
        }
    }
}

impl std::ops::Deref for Watched<'_> {
    type Target = TcpStream;
    fn deref(&self) -> &TcpStream {
        &self.stream
    }
}

impl std::ops::DerefMut for Watched<'_> {
    fn deref_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }
}

impl AsyncRead for Watched<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(not(target_os = "linux"))]
fn sample(_: &TcpStream) -> Option<TcpSample> {
    None
}

#[cfg(target_os = "linux")]
fn sample(stream: &TcpStream) -> Option<TcpSample> {
    use std::os::fd::AsFd;
    let info = monitor_sys::tcp_info(stream.as_fd())?;
    let ms = |us: u32| f64::from(us) / 1000.0;
    Some(TcpSample {
        rtt_ms: ms(info.rtt_us),
        rtt_var_ms: ms(info.rtt_var_us),
        retransmits: info.total_retrans,
        lost: info.lost,
    })
}

/// The latest reading: at close, else after connect.
pub(crate) fn latest(report: &TcpReport) -> Option<TcpSample> {
    report.at_close.or(report.after_connect)
}

/// Puts first among the hints of a check that saw retransmissions how many there were:
/// the loss a slow or failed check may owe to the path, measured.
/// Only errors the path may cause get it: timeouts, resets, closes, slow checks.
pub(crate) fn loss_hint(error: &mut ProbeError, report: &TcpReport) {
    use monitor_spec::result::ErrorKind as K;
    let path_matters = matches!(
        error.kind,
        K::ReadTimeout
            | K::Reset
            | K::ClosedEarly
            | K::Io
            | K::HandshakeFailure
            | K::DegradedResponseTime
            | K::MaxResponseTime
    );
    let Some(seen) = latest(report).filter(|_| path_matters) else {
        return;
    };
    if seen.retransmits == 0 {
        return;
    }
    let n = seen.retransmits;
    let segments = if n == 1 { "segment" } else { "segments" };
    let lost = match seen.lost {
        0 => String::new(),
        l => format!(", {l} still counted as lost"),
    };
    error.hints.insert(
        0,
        format!(
            "{n} {segments} retransmitted{lost}: packet loss on the path (round trip {:.1} ms)",
            seen.rtt_ms
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor_spec::result::ErrorKind;

    fn error() -> ProbeError {
        ProbeError {
            kind: ErrorKind::ReadTimeout,
            message: "m".to_owned(),
            hints: vec!["other".to_owned()],
        }
    }

    #[test]
    fn retransmissions_lead_the_hints() {
        let sample = |retransmits, lost| TcpSample {
            rtt_ms: 40.2,
            rtt_var_ms: 20.0,
            retransmits,
            lost,
        };
        let mut e = error();
        let report = TcpReport {
            after_connect: Some(sample(0, 0)),
            at_close: Some(sample(3, 0)),
        };
        loss_hint(&mut e, &report);
        assert_eq!(
            e.hints,
            [
                "3 segments retransmitted: packet loss on the path (round trip 40.2 ms)",
                "other"
            ]
        );
        let mut e = error();
        let report = TcpReport {
            after_connect: Some(sample(1, 1)),
            at_close: None,
        };
        loss_hint(&mut e, &report);
        assert_eq!(
            e.hints[0],
            "1 segment retransmitted, 1 still counted as lost: packet loss on the path (round trip 40.2 ms)"
        );
        let mut e = error();
        loss_hint(
            &mut e,
            &TcpReport {
                after_connect: Some(sample(0, 0)),
                at_close: Some(sample(0, 0)),
            },
        );
        assert_eq!(e.hints, ["other"]);
    }
}
