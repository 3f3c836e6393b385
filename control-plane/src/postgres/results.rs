//! Check results on PostgreSQL: their tables (a migration of [`super::schema`]) and the
//! queries behind the results methods of the store. (Placeholders until the lead's
//! implementation replaces this file: each answers that results are not stored yet.)

use tokio_postgres::Transaction;

use crate::store::{
    InsertOutcome, LatestResult, Maintenance, NewResult, ResultQuery, Retention, Rollup,
    RollupQuery, SeriesUptime, StoreError, StoredResult,
};

pub(super) const SCHEMA: &str = "";

fn not_yet<T>() -> Result<T, StoreError> {
    Err(StoreError::Corrupt(
        "results are not stored on postgres yet".to_owned(),
    ))
}

pub(super) async fn insert(
    _tx: &Transaction<'_>,
    _project: &str,
    _rows: &[NewResult],
) -> Result<InsertOutcome, StoreError> {
    not_yet()
}

pub(super) async fn latest(
    _tx: &Transaction<'_>,
    _project: &str,
) -> Result<Vec<LatestResult>, StoreError> {
    not_yet()
}

pub(super) async fn history(
    _tx: &Transaction<'_>,
    _project: &str,
    _query: &ResultQuery,
) -> Result<Vec<StoredResult>, StoreError> {
    not_yet()
}

pub(super) async fn rollups(
    _tx: &Transaction<'_>,
    _project: &str,
    _query: &RollupQuery,
) -> Result<Vec<Rollup>, StoreError> {
    not_yet()
}

pub(super) async fn uptime(
    _tx: &Transaction<'_>,
    _project: &str,
    _now_us: i64,
) -> Result<Vec<SeriesUptime>, StoreError> {
    not_yet()
}

pub(super) async fn maintain(
    _tx: &Transaction<'_>,
    _now_us: i64,
    _retention: &Retention,
) -> Result<Maintenance, StoreError> {
    not_yet()
}
