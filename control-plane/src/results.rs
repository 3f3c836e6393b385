//! Backend-independent logic of stored results: the typed facts of a `CheckResult`, the
//! result rebuilt from a compact row, percentiles, rollup combination and time buckets.
//! Both the SQLite and the PostgreSQL backends use it; it holds no SQL.

use monitor_spec::CheckResult;

use crate::store::ResultFacts;

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
        address: result.address.clone(),
        tls_version: result.tls.as_ref().and_then(|t| t.version.clone()),
        cert_expiry_s: result
            .tls
            .as_ref()
            .and_then(|t| t.first_expiry())
            .map(|e| e.unix_timestamp()),
    }
}
