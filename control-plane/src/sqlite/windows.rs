//! Ad-hoc maintenance windows in SQLite: stored as JSON with their end (unix
//! microseconds), read by end, ended early, and pruned [`AD_HOC_KEPT_US`] after they end.

use monitor_spec::maintenance::MaintenanceWindow;
use rusqlite::{OptionalExtension, Transaction, params};

use super::rows::ensure_project;
use crate::maintenance::{end_us, ended, of_json, sort, to_json};
use crate::store::{AD_HOC_KEPT_US, MAX_AD_HOC_READ, StoreError};

/// Windows deleted per step of upkeep.
const PRUNE_PER_STEP: i64 = 500;

/// Stores a window unless `max_open` of the project's windows end after `now_us`.
pub(super) fn open(
    tx: &Transaction<'_>,
    project: &str,
    window: &MaintenanceWindow,
    now_us: i64,
    max_open: usize,
) -> Result<bool, StoreError> {
    ensure_project(tx, project)?;
    let open: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM ad_hoc_windows WHERE project = ?1 AND ends > ?2")?
        .query_row(params![project, now_us], |r| r.get(0))?;
    if usize::try_from(open).unwrap_or(usize::MAX) >= max_open {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO ad_hoc_windows (project, id, ends, spec) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        project,
        window.id,
        end_us(window),
        to_json(window)?
    ])?;
    Ok(true)
}

/// The windows of a project ending after `after_us`, by start then id.
pub(super) fn list(
    tx: &Transaction<'_>,
    project: &str,
    after_us: i64,
) -> Result<Vec<MaintenanceWindow>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, spec FROM ad_hoc_windows WHERE project = ?1 AND ends > ?2
         ORDER BY ends LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![project, after_us, MAX_AD_HOC_READ as i64], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, text) = row?;
        out.push(of_json(&id, &text)?);
    }
    sort(&mut out);
    Ok(out)
}

/// Ends a window at `now_us` when it ends later; the window as it now is.
pub(super) fn end(
    tx: &Transaction<'_>,
    project: &str,
    id: &str,
    now_us: i64,
) -> Result<Option<MaintenanceWindow>, StoreError> {
    let text: Option<String> = tx
        .prepare_cached("SELECT spec FROM ad_hoc_windows WHERE project = ?1 AND id = ?2")?
        .query_row(params![project, id], |r| r.get(0))
        .optional()?;
    let Some(text) = text else {
        return Ok(None);
    };
    let mut window = of_json(id, &text)?;
    if !ended(&mut window, now_us) {
        return Ok(Some(window));
    }
    tx.prepare_cached(
        "UPDATE ad_hoc_windows SET ends = ?3, spec = ?4 WHERE project = ?1 AND id = ?2",
    )?
    .execute(params![project, id, end_us(&window), to_json(&window)?])?;
    Ok(Some(window))
}

/// Deletes up to [`PRUNE_PER_STEP`] windows that ended [`AD_HOC_KEPT_US`] before `now_us`.
pub(super) fn prune(tx: &Transaction<'_>, now_us: i64) -> Result<u64, StoreError> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM ad_hoc_windows WHERE (project, id) IN (
                 SELECT project, id FROM ad_hoc_windows WHERE ends < ?1 LIMIT ?2)",
        )?
        .execute(params![
            now_us.saturating_sub(AD_HOC_KEPT_US),
            PRUNE_PER_STEP
        ])? as u64)
}
