//! The kernel's view of a check's connection (`TCP_INFO`, Linux): read right after
//! connect and once more when the check is done with the connection, through a duplicate
//! of the socket's descriptor, so the reading works whatever wraps the stream by then.

use monitor_spec::result::{ProbeError, TcpReport, TcpSample};
use tokio::net::TcpStream;

/// Reads `TCP_INFO` of one connection: after connect at [`Watch::start`], at close at
/// [`Watch::finish`]. Four system calls per check: the duplicate, two readings, its close.
pub(crate) struct Watch {
    #[cfg(target_os = "linux")]
    fd: Option<std::os::fd::OwnedFd>,
    after_connect: Option<TcpSample>,
}

impl Watch {
    /// Keeps a duplicate of the connection's descriptor and reads `TCP_INFO` once.
    pub fn start(stream: &TcpStream) -> Self {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            let fd = stream.as_fd().try_clone_to_owned().ok();
            let after_connect = fd.as_ref().and_then(|fd| sample(fd.as_fd()));
            Watch { fd, after_connect }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = stream;
            Watch {
                after_connect: None,
            }
        }
    }

    /// The reading right after connect.
    pub fn after_connect(&self) -> Option<TcpSample> {
        self.after_connect
    }

    /// Reads `TCP_INFO` a last time and lets the duplicate go: the connection closes
    /// now if the check already dropped its stream.
    pub fn finish(self) -> Option<TcpReport> {
        #[cfg(target_os = "linux")]
        let at_close = {
            use std::os::fd::AsFd;
            self.fd.as_ref().and_then(|fd| sample(fd.as_fd()))
        };
        #[cfg(not(target_os = "linux"))]
        let at_close = None;
        (self.after_connect.is_some() || at_close.is_some()).then_some(TcpReport {
            after_connect: self.after_connect,
            at_close,
        })
    }
}

#[cfg(target_os = "linux")]
fn sample(fd: std::os::fd::BorrowedFd<'_>) -> Option<TcpSample> {
    let info = monitor_sys::tcp_info(fd)?;
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
