//! The agent's clock against the control plane's: the offset taken from the `Date` header
//! of each quick response, a warning when it is over [`CLOCK_WARN`] (results are dated
//! by the agent's clock, and a control plane refuses results from the future), and the
//! gauge `monitors_agent_clock_offset_seconds`.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use tracing::{info, warn};

/// An offset over this is logged as a warning: 2 minutes, the skew a control plane
/// allows by default.
pub const CLOCK_WARN: Duration = Duration::from_secs(120);

/// Responses slower than this are not used: a long poll's `Date` is written when it ends,
/// and the uncertainty of a sample is half its round trip.
pub const MAX_SAMPLE_ROUND_TRIP: Duration = Duration::from_secs(5);

/// Reads an HTTP date in the IMF-fixdate form every current server sends
/// (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 section 5.6.7).
pub fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let mut parts = text.trim().split(' ');
    let (_weekday, day, month, year, hms, zone) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if parts.next().is_some() || zone != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)?;
    let month = Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let mut hms = hms.split(':').map(str::parse::<u8>);
    let (h, m, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if hms.next().is_some() {
        return None;
    }
    let date = Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let time = Time::from_hms(h, m, s).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// The control plane's clock minus this machine's, in seconds, from the `Date` of a
/// response to a request sent at `sent` and answered at `received` (local clock): the
/// server's second taken at its middle (`Date` + 0.5 s) against the request's midpoint.
/// `None` when the date cannot be read or the round trip is over
/// [`MAX_SAMPLE_ROUND_TRIP`].
pub fn clock_offset(date: &str, sent: SystemTime, received: SystemTime) -> Option<f64> {
    let server = parse_http_date(date)?;
    let round_trip = received.duration_since(sent).ok()?;
    if round_trip > MAX_SAMPLE_ROUND_TRIP {
        return None;
    }
    let midpoint = sent + round_trip / 2;
    let local = midpoint.duration_since(UNIX_EPOCH).ok()?.as_secs_f64();
    let server = server.unix_timestamp() as f64 + 0.5;
    Some(server - local)
}

/// The latest offset, and whether it is being warned about.
#[derive(Debug)]
pub(crate) struct ClockWatch {
    /// Milliseconds; [`i64::MIN`] before the first sample.
    offset_ms: AtomicI64,
    warned: AtomicBool,
}

impl Default for ClockWatch {
    fn default() -> Self {
        ClockWatch {
            offset_ms: AtomicI64::new(i64::MIN),
            warned: AtomicBool::new(false),
        }
    }
}

impl ClockWatch {
    /// Takes a sample from a response; logs when the offset crosses [`CLOCK_WARN`] (a
    /// line each time it goes over or comes back, not one per response).
    pub(crate) fn observe(&self, date: Option<&str>, sent: SystemTime, received: SystemTime) {
        let Some(offset) = date.and_then(|d| clock_offset(d, sent, received)) else {
            return;
        };
        let ms = (offset * 1000.0).round() as i64;
        let first = self.offset_ms.swap(ms, Ordering::Relaxed) == i64::MIN;
        let over = offset.abs() > CLOCK_WARN.as_secs_f64();
        if over && !self.warned.swap(true, Ordering::Relaxed) {
            warn!(
                "this machine's clock is {:.1} s {} the control plane's (more than {} s): results are dated by this clock; synchronise it (NTP)",
                offset.abs(),
                if offset > 0.0 { "behind" } else { "ahead of" },
                CLOCK_WARN.as_secs()
            );
        } else if !over && self.warned.swap(false, Ordering::Relaxed) {
            info!("this machine's clock is within {offset:.1} s of the control plane's again");
        } else if first {
            info!("clock offset to the control plane: {offset:.1} s");
        }
    }

    /// The latest offset in seconds (the control plane's clock minus this machine's).
    pub(crate) fn offset(&self) -> Option<f64> {
        match self.offset_ms.load(Ordering::Relaxed) {
            i64::MIN => None,
            ms => Some(ms as f64 / 1000.0),
        }
    }

    /// The latest offset in milliseconds.
    pub(crate) fn offset_ms(&self) -> Option<i64> {
        Some(self.offset_ms.load(Ordering::Relaxed)).filter(|&ms| ms != i64::MIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix: u64, ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix) + Duration::from_millis(ms)
    }

    #[test]
    fn http_dates_read_as_imf_fixdate() {
        let d = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(d.unix_timestamp(), 784_111_777);
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37:01 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn offsets_use_the_request_midpoint() {
        // The server said 08:49:37 (784111777); sent at .000 - 10 min, answered 1 s later:
        // the midpoint is 600 s + 0.5 s before the server's second, plus its half second.
        let server = 784_111_777;
        let check = |sent: SystemTime, received: SystemTime, want: Option<f64>| {
            let got = clock_offset("Sun, 06 Nov 1994 08:49:37 GMT", sent, received);
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "{g} != {w}"),
                _ => assert_eq!(got, want),
            }
        };
        check(at(server - 600, 0), at(server - 599, 0), Some(600.0));
        check(at(server + 600, 0), at(server + 600, 200), Some(-599.6));
        check(at(server, 0), at(server, 400), Some(0.3));
        // A long poll's answer tells nothing useful; a clock going backwards neither.
        check(at(server, 0), at(server + 20, 0), None);
        check(at(server, 500), at(server, 0), None);
    }

    #[test]
    fn the_watch_keeps_the_latest_sample() {
        let watch = ClockWatch::default();
        assert_eq!(watch.offset(), None);
        let now = SystemTime::now();
        let server = OffsetDateTime::from(now + Duration::from_secs(300));
        let date = format!(
            "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
            &server.weekday().to_string()[..3],
            server.day(),
            &server.month().to_string()[..3],
            server.year(),
            server.hour(),
            server.minute(),
            server.second()
        );
        watch.observe(Some(&date), now, now);
        let offset = watch.offset().unwrap();
        assert!((offset - 300.0).abs() <= 1.0, "{offset}");
        assert!(watch.warned.load(Ordering::Relaxed));
        watch.observe(Some("not a date"), now, now);
        assert_eq!(watch.offset_ms(), Some((offset * 1000.0).round() as i64));
    }
}
