//! Backend-independent logic of stored results: the typed facts of a `CheckResult`, the
//! result rebuilt from a compact row, percentiles, rollup combination and time buckets.
//! Both the SQLite and the PostgreSQL backends use it; it holds no SQL.

use monitor_spec::{CheckResult, ErrorKind, ProbeError, Status, Timings, TlsReport};
use time::OffsetDateTime;

use crate::store::{ResultFacts, Rollup, Step, UPTIME_WINDOWS};

/// Microseconds of fractional milliseconds, rounded to the nearest.
fn ms_to_us(ms: f64) -> i64 {
    let us = (ms * 1000.0).round();
    if us.is_finite() {
        // `as` saturates at the bounds of i64.
        us as i64
    } else {
        0
    }
}

/// The typed facts of a result.
pub fn facts_of(result: &CheckResult) -> ResultFacts {
    let t = &result.timings;
    ResultFacts {
        error: result.error.as_ref().map(|e| e.kind),
        dns_us: t.dns_ms.map(ms_to_us),
        connect_us: t.connect_ms.map(ms_to_us),
        tls_us: t.tls_ms.map(ms_to_us),
        first_byte_us: t.first_byte_ms.map(ms_to_us),
        total_us: ms_to_us(t.total_ms),
        address: result.address.as_deref().map(str::to_owned),
        tls_version: result.tls.as_ref().and_then(|t| t.version.clone()),
        cert_expiry_s: result
            .tls
            .as_ref()
            .and_then(|t| t.first_expiry())
            .map(|e| e.unix_timestamp()),
    }
}

/// One hour in microseconds.
pub const HOUR_US: i64 = 3_600_000_000;
/// One day in microseconds.
pub const DAY_US: i64 = 86_400_000_000;

/// The start of the hour (UTC) holding `us`.
pub fn hour_of(us: i64) -> i64 {
    us.saturating_sub(us.rem_euclid(HOUR_US))
}

/// The start of the day (UTC) holding `us`.
pub fn day_of(us: i64) -> i64 {
    us.saturating_sub(us.rem_euclid(DAY_US))
}

/// The start of the bucket of width `step` holding `us`.
pub fn bucket_of(step: Step, us: i64) -> i64 {
    match step {
        Step::Hour => hour_of(us),
        Step::Day => day_of(us),
    }
}

/// Microseconds of a duration, saturating.
pub fn duration_us(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The number stored for a status: 0 passed, 1 degraded, 2 failed.
pub fn status_code(status: Status) -> i64 {
    match status {
        Status::Passed => 0,
        Status::Degraded => 1,
        Status::Failed => 2,
    }
}

/// The status of a number [`status_code`] wrote.
pub fn status_of_code(code: i64) -> Option<Status> {
    match code {
        0 => Some(Status::Passed),
        1 => Some(Status::Degraded),
        2 => Some(Status::Failed),
        _ => None,
    }
}

/// The error kind of its snake_case name ([`ErrorKind::as_str`]).
pub fn error_kind_of(name: &str) -> Option<ErrorKind> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// Whether the full JSON of a result is kept beside its typed columns: only for the
/// results that did not pass.
pub fn keeps_json(status: Status) -> bool {
    status != Status::Passed
}

/// The value at quantile `q` (0 to 1) of a sorted slice, nearest rank; 0 when empty.
pub fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whole days a certificate expiring at `expiry_s` (unix seconds) had left when a check
/// started at `started_us`: [`monitor_spec::result::days_until`].
pub fn days_left(expiry_s: i64, started_us: i64) -> Option<i64> {
    let expiry = OffsetDateTime::from_unix_timestamp(expiry_s).ok()?;
    let started = OffsetDateTime::from_unix_timestamp_nanos(i128::from(started_us) * 1000).ok()?;
    Some(monitor_spec::result::days_until(expiry, started))
}

/// One raw result as a rollup reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Its verdict.
    pub status: Status,
    /// When it started, unix microseconds.
    pub started_us: i64,
    /// Its total time, microseconds.
    pub total_us: i64,
    /// Its certificate's earliest expiry, unix seconds.
    pub cert_expiry_s: Option<i64>,
}

/// The rollup of a series over one hour, exact, from its raw results; `None` without any.
pub fn hourly_rollup(location: &str, start_us: i64, samples: &[Sample]) -> Option<Rollup> {
    if samples.is_empty() {
        return None;
    }
    let mut totals: Vec<i64> = samples.iter().map(|s| s.total_us).collect();
    totals.sort_unstable();
    let count = |status| samples.iter().filter(|s| s.status == status).count() as u64;
    Some(Rollup {
        location: location.to_owned(),
        start_us,
        checks: samples.len() as u64,
        failures: count(Status::Failed),
        degraded: count(Status::Degraded),
        p50_us: percentile(&totals, 0.50),
        p95_us: percentile(&totals, 0.95),
        max_us: totals.last().copied().unwrap_or(0),
        min_days_left: samples
            .iter()
            .filter_map(|s| days_left(s.cert_expiry_s?, s.started_us))
            .min(),
    })
}

/// The checks-weighted quantile `q` of per-hour values: the value of the hour holding the
/// rank `q` of all checks when the hours are sorted by that value.
fn weighted(values: &mut [(i64, u64)], q: f64) -> i64 {
    values.sort_unstable();
    let total: u64 = values.iter().map(|v| v.1).sum();
    if total == 0 {
        return 0;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for &(value, weight) in values.iter() {
        seen += weight;
        if seen >= rank {
            return value;
        }
    }
    values.last().map_or(0, |v| v.0)
}

/// The rollup of a series over one day from its hourly rollups: sums, the max of the
/// maxima, the least days left, and p50/p95 as the checks-weighted median and 95th
/// percentile of the hourly values (an approximation of the day's true percentiles);
/// `None` without any hour.
pub fn daily_rollup(location: &str, start_us: i64, hours: &[Rollup]) -> Option<Rollup> {
    if hours.is_empty() {
        return None;
    }
    let mut p50: Vec<(i64, u64)> = hours.iter().map(|h| (h.p50_us, h.checks)).collect();
    let mut p95: Vec<(i64, u64)> = hours.iter().map(|h| (h.p95_us, h.checks)).collect();
    Some(Rollup {
        location: location.to_owned(),
        start_us,
        checks: hours.iter().map(|h| h.checks).sum(),
        failures: hours.iter().map(|h| h.failures).sum(),
        degraded: hours.iter().map(|h| h.degraded).sum(),
        p50_us: weighted(&mut p50, 0.50),
        p95_us: weighted(&mut p95, 0.95),
        max_us: hours.iter().map(|h| h.max_us).max().unwrap_or(0),
        min_days_left: hours.iter().filter_map(|h| h.min_days_left).min(),
    })
}

/// Where the windows of [`UPTIME_WINDOWS`] start at `now_us`: each is whole hours, the
/// current one and those before it, so the 24 h window starts 23 hours before the start
/// of the current hour.
pub fn window_starts(now_us: i64) -> [i64; 4] {
    UPTIME_WINDOWS.map(|(_, seconds)| hour_of(now_us) + HOUR_US - seconds * 1_000_000)
}

/// Uptime in percent of `checks` with `failures`, `None` without checks.
pub fn uptime_percent(checks: u64, failures: u64) -> Option<f64> {
    (checks > 0).then(|| (checks - failures.min(checks)) as f64 * 100.0 / checks as f64)
}

/// The `CheckResult` of a stored row whose full JSON was not kept (a passed result),
/// rebuilt from its typed facts: id, status, timings, address, the TLS version and
/// earliest expiry (with days left) and the start time; `name` and `target` as given (the
/// deployed monitor's, empty when unknown); no attempts, assertions, excerpt or chain.
pub fn rebuild(
    monitor: &str,
    name: &str,
    target: &str,
    status: Status,
    started_us: i64,
    facts: &ResultFacts,
) -> CheckResult {
    let ms = |us: i64| us as f64 / 1000.0;
    let started_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(started_us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let expiry = facts
        .cert_expiry_s
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    let tls = (facts.tls_version.is_some() || expiry.is_some()).then(|| TlsReport {
        version: facts.tls_version.clone(),
        cipher: None,
        alpn: None,
        server_name: String::new(),
        verified: status == Status::Passed,
        problems: Vec::new(),
        chain: Vec::new(),
        earliest_expiry: expiry,
        days_left: expiry.map(|e| monitor_spec::result::days_until(e, started_at)),
        earliest_expiry_subject: None,
        legacy: None,
        ocsp: None,
        policy: None,
    });
    CheckResult {
        id: monitor.into(),
        name: name.into(),
        target: target.into(),
        status,
        error: facts.error.map(|kind| ProbeError {
            kind,
            message: String::new(),
            hints: Vec::new(),
        }),
        timings: Timings {
            dns_ms: facts.dns_us.map(ms),
            connect_ms: facts.connect_us.map(ms),
            tls_ms: facts.tls_us.map(ms),
            first_byte_ms: facts.first_byte_us.map(ms),
            total_ms: ms(facts.total_us),
            client_cert_wait_ms: None,
            scheduling_delay_ms: None,
        },
        address: facts.address.as_deref().map(Into::into),
        attempts: Vec::new(),
        assertions: Vec::new(),
        response_excerpt: String::new(),
        tls: tls.map(Box::new),
        facts: Default::default(),
        tcp: None,
        started_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.95), 95);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.95), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn buckets() {
        assert_eq!(hour_of(HOUR_US + 5), HOUR_US);
        assert_eq!(hour_of(-1), -HOUR_US);
        assert_eq!(day_of(DAY_US * 3 + HOUR_US * 5), DAY_US * 3);
        let now = DAY_US * 100 + HOUR_US * 5 + 7;
        assert_eq!(window_starts(now)[0], DAY_US * 99 + HOUR_US * 6);
    }

    #[test]
    fn weighted_percentiles_follow_the_checks() {
        let hour = |p50_us, checks| Rollup {
            location: "eu".into(),
            start_us: 0,
            checks,
            failures: 0,
            degraded: 0,
            p50_us,
            p95_us: p50_us,
            max_us: p50_us,
            min_days_left: None,
        };
        let day = daily_rollup("eu", 0, &[hour(10, 1), hour(30, 10), hour(20, 1)]).unwrap();
        assert_eq!((day.checks, day.p50_us, day.max_us), (12, 30, 30));
        let day = daily_rollup("eu", 0, &[hour(10, 10), hour(30, 1)]).unwrap();
        assert_eq!((day.p50_us, day.p95_us), (10, 30));
    }

    #[test]
    fn uptime_counts_degraded_as_up() {
        assert_eq!(uptime_percent(4, 1), Some(75.0));
        assert_eq!(uptime_percent(0, 0), None);
    }
}
