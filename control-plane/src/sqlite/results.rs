//! Check results in SQLite: storing a batch (duplicates ignored) while keeping the latest
//! result per monitor and location with its run of failures, reading a monitor's history,
//! and pruning.

use monitor_spec::Status;
use rusqlite::{OptionalExtension, Transaction, params};

use super::rows::{ensure_project, to_u64};
use crate::store::{InsertOutcome, LatestResult, NewResult, ResultQuery, StoreError, StoredResult};

/// Rows deleted per transaction when pruning, so that a large prune never holds the writer
/// for long.
pub(super) const PRUNE_BATCH: i64 = 5_000;

/// Stores a batch, ignoring ids the project already holds.
pub(super) fn insert(
    tx: &Transaction<'_>,
    project: &str,
    results: &[NewResult],
) -> Result<InsertOutcome, StoreError> {
    ensure_project(tx, project)?;
    let mut outcome = InsertOutcome::default();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO results
         (project, id, monitor, location, agent, tick, status, started_at, received_at, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for r in results {
        let stored = insert.execute(params![
            project,
            r.id,
            r.monitor,
            r.location,
            r.agent,
            r.tick,
            status_name(r.status),
            r.started_us,
            r.received_us,
            r.json
        ])?;
        if stored == 0 {
            outcome.duplicates += 1;
        } else {
            outcome.accepted += 1;
            update_latest(tx, project, r)?;
        }
    }
    Ok(outcome)
}

/// The latest result of each monitor in each location, sorted by monitor and location.
pub(super) fn latest(tx: &Transaction<'_>, project: &str) -> Result<Vec<LatestResult>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT l.monitor, l.location, r.agent, l.consecutive_failures, r.result
         FROM latest_results l
         JOIN results r ON r.project = l.project AND r.id = l.result_id
         WHERE l.project = ?1
         ORDER BY l.monitor, l.location",
    )?;
    let rows = stmt.query_map([project], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (monitor, location, agent, failures, json) = row?;
        out.push(LatestResult {
            monitor,
            location,
            agent,
            consecutive_failures: to_u64(failures)?,
            json,
        });
    }
    Ok(out)
}

/// A monitor's results, oldest first by start time.
pub(super) fn history(
    tx: &Transaction<'_>,
    project: &str,
    query: &ResultQuery,
) -> Result<Vec<StoredResult>, StoreError> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare_cached(
        "SELECT id, location, agent, tick, received_at, result FROM results
         WHERE project = ?1 AND monitor = ?2 AND started_at > ?3
           AND (?4 IS NULL OR location = ?4)
         ORDER BY started_at, id
         LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            project,
            query.monitor,
            query.from_us.unwrap_or(i64::MIN),
            query.location,
            limit
        ],
        |r| {
            Ok(StoredResult {
                id: r.get(0)?,
                location: r.get(1)?,
                agent: r.get(2)?,
                tick: r.get(3)?,
                status: monitor_spec::Status::Passed,
                started_us: 0,
                received_us: r.get(4)?,
                facts: Default::default(),
                json: r.get(5)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes up to [`PRUNE_BATCH`] results of a project that started before `before_us`, and
/// the latest entries as old; returns how many results.
pub(super) fn prune_batch(
    tx: &Transaction<'_>,
    project: &str,
    before_us: i64,
) -> Result<usize, StoreError> {
    let n = tx.execute(
        "DELETE FROM results WHERE rowid IN (
            SELECT rowid FROM results
            WHERE project = ?1 AND started_at < ?2 LIMIT ?3)",
        params![project, before_us, PRUNE_BATCH],
    )?;
    tx.execute(
        "DELETE FROM latest_results WHERE project = ?1 AND started_at < ?2",
        params![project, before_us],
    )?;
    Ok(n)
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Passed => "passed",
        Status::Degraded => "degraded",
        Status::Failed => "failed",
    }
}

/// Makes a newly stored result the latest of its monitor and location when it is newer than
/// the one recorded, counting the run of failures on; a result arriving late, older than
/// the latest, may fall inside that run, which is then counted again from the results.
fn update_latest(tx: &Transaction<'_>, project: &str, r: &NewResult) -> Result<(), StoreError> {
    let failed = r.status == Status::Failed;
    let latest: Option<(i64, i64)> = tx
        .query_row(
            "SELECT started_at, consecutive_failures FROM latest_results
             WHERE project = ?1 AND monitor = ?2 AND location = ?3",
            params![project, r.monitor, r.location],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    match latest {
        Some((started, _)) if r.started_us <= started => {
            let failures = failures_since_last_success(tx, project, &r.monitor, &r.location)?;
            tx.execute(
                "UPDATE latest_results SET consecutive_failures = ?4
                 WHERE project = ?1 AND monitor = ?2 AND location = ?3",
                params![project, r.monitor, r.location, failures],
            )?;
        }
        previous => {
            let failures = match previous {
                Some((_, before)) if failed => before.saturating_add(1),
                None if failed => 1,
                _ => 0,
            };
            tx.execute(
                "INSERT INTO latest_results
                 (project, monitor, location, result_id, started_at, consecutive_failures)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (project, monitor, location) DO UPDATE SET
                   result_id = excluded.result_id,
                   started_at = excluded.started_at,
                   consecutive_failures = excluded.consecutive_failures",
                params![project, r.monitor, r.location, r.id, r.started_us, failures],
            )?;
        }
    }
    Ok(())
}

/// How many results of a monitor in a location failed after its latest result that did not.
fn failures_since_last_success(
    tx: &Transaction<'_>,
    project: &str,
    monitor: &str,
    location: &str,
) -> Result<i64, StoreError> {
    let last_success: Option<i64> = tx
        .query_row(
            "SELECT started_at FROM results
             WHERE project = ?1 AND monitor = ?2 AND location = ?3 AND status != 'failed'
             ORDER BY started_at DESC LIMIT 1",
            params![project, monitor, location],
            |row| row.get(0),
        )
        .optional()?;
    Ok(tx.query_row(
        "SELECT COUNT(*) FROM results
         WHERE project = ?1 AND monitor = ?2 AND location = ?3 AND status = 'failed'
           AND started_at > ?4",
        params![project, monitor, location, last_success.unwrap_or(i64::MIN)],
        |row| row.get(0),
    )?)
}
