//! Helpers every part of the SQLite store shares: the time stored with rows, creating a
//! project on first use, and integer conversions.

use rusqlite::{Transaction, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::StoreError;

/// The current time, RFC 3339, as rows record it.
pub(super) fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Creates the project if it does not exist.
pub(super) fn ensure_project(tx: &Transaction<'_>, project: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO projects (name, created_at) VALUES (?1, ?2)",
        params![project, now()],
    )?;
    Ok(())
}

/// A stored integer that must not be negative.
pub(super) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative number {v}")))
}

/// A number as SQLite stores it, `None` above `i64::MAX`.
pub(super) fn to_i64(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}
