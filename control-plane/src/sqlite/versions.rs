//! Monitor sets and versions in SQLite: the current set, applying a plan as a new version,
//! and reading versions back.

use monitor_spec::api::{Git, VersionInfo};
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::value::RawValue;

use super::rows::{ensure_project, now, to_i64, to_u64};
use crate::diff;
use crate::monitor_set::MonitorSet;
use crate::store::{DeployOutcome, StoreError, StoredVersion};

/// The current monitors of a project.
pub(super) fn load_set(tx: &Transaction<'_>, project: &str) -> Result<MonitorSet, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT id, spec FROM monitors WHERE project = ?1")?;
    let rows = stmt.query_map([project], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut set = MonitorSet::new();
    for row in rows {
        let (id, spec): (String, String) = row?;
        let spec = RawValue::from_string(spec)
            .map_err(|e| StoreError::Corrupt(format!("monitor `{id}`: {e}")))?;
        set.insert(id, spec);
    }
    let windows: Option<Option<String>> = tx
        .prepare_cached(
            "SELECT maintenance FROM projects WHERE name = ?1 AND current_version IS NOT NULL",
        )?
        .query_row([project], |r| r.get(0))
        .optional()?;
    set.set_maintenance_json(windows.flatten())
        .map_err(|e| StoreError::Corrupt(format!("maintenance windows: {e}")))?;
    Ok(set)
}

/// The version now current, `None` when the project has none.
pub(super) fn current_version(
    tx: &Transaction<'_>,
    project: &str,
) -> Result<Option<u64>, StoreError> {
    let v: Option<Option<i64>> = tx
        .query_row(
            "SELECT current_version FROM projects WHERE name = ?1",
            [project],
            |r| r.get(0),
        )
        .optional()?;
    v.flatten().map(to_u64).transpose()
}

/// Applies a plan and records it as a new version; returns its number.
fn apply(
    tx: &Transaction<'_>,
    project: &str,
    current: &MonitorSet,
    plan: &diff::Plan,
    git: &Git,
    rollback_of: Option<u64>,
) -> Result<u64, StoreError> {
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO monitors (project, id, spec) VALUES (?1, ?2, ?3)
             ON CONFLICT (project, id) DO UPDATE SET spec = excluded.spec",
        )?;
        for (id, spec) in plan.result.iter() {
            if current.get(id) != Some(spec) {
                upsert.execute(params![project, id, spec])?;
            }
        }
        let mut delete =
            tx.prepare_cached("DELETE FROM monitors WHERE project = ?1 AND id = ?2")?;
        for id in &plan.diff.deleted {
            delete.execute(params![project, id])?;
        }
    }
    let last: i64 = tx.query_row(
        "SELECT COALESCE(MAX(number), 0) FROM versions WHERE project = ?1",
        [project],
        |r| r.get(0),
    )?;
    let number = last + 1;
    let git_json = serde_json::to_string(git).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let bundle = plan.result.bundle_json();
    let hash = crate::hash::sha256_hex(bundle.as_bytes());
    let count = i64::try_from(plan.result.len()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO versions (project, number, hash, created_at, git, bundle, monitors, rollback_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            project,
            number,
            hash,
            now(),
            git_json,
            bundle,
            count,
            rollback_of.and_then(to_i64)
        ],
    )?;
    tx.execute(
        "UPDATE projects SET current_version = ?2, maintenance = ?3 WHERE name = ?1",
        params![project, number, plan.result.maintenance_json()],
    )?;
    to_u64(number)
}

/// Plans `incoming` against the stored set and applies it unless nothing changes.
pub(super) fn deploy_in(
    tx: &Transaction<'_>,
    project: &str,
    incoming: &MonitorSet,
    prune: bool,
    git: &Git,
    rollback_of: Option<u64>,
) -> Result<(DeployOutcome, bool), StoreError> {
    ensure_project(tx, project)?;
    let current = load_set(tx, project)?;
    let plan = diff::plan(&current, incoming, prune);
    if plan.result == current {
        let version = current_version(tx, project)?;
        let outcome = DeployOutcome {
            applied: false,
            version,
            diff: plan.diff,
        };
        return Ok((outcome, false));
    }
    let version = apply(tx, project, &current, &plan, git, rollback_of)?;
    let outcome = DeployOutcome {
        applied: true,
        version: Some(version),
        diff: plan.diff,
    };
    Ok((outcome, true))
}

const VERSION_COLUMNS: &str = "number, hash, created_at, git, monitors, rollback_of";

fn version_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, String, i64, Option<i64>)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn version_info(
    (number, hash, created_at, git, monitors, rollback_of): (
        i64,
        String,
        String,
        String,
        i64,
        Option<i64>,
    ),
) -> Result<VersionInfo, StoreError> {
    Ok(VersionInfo {
        version: to_u64(number)?,
        hash,
        created_at,
        git: serde_json::from_str(&git)
            .map_err(|e| StoreError::Corrupt(format!("git json: {e}")))?,
        monitors: to_u64(monitors)?,
        rollback_of: rollback_of.map(to_u64).transpose()?,
    })
}

/// Every version of a project, newest first.
pub(super) fn list(tx: &Transaction<'_>, project: &str) -> Result<Vec<VersionInfo>, StoreError> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM versions WHERE project = ?1 ORDER BY number DESC"
    ))?;
    let rows = stmt.query_map([project], version_row)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(version_info(row?)?);
    }
    Ok(out)
}

/// One version with its bundle, `None` when it does not exist.
pub(super) fn read(
    tx: &Transaction<'_>,
    project: &str,
    number: i64,
) -> Result<Option<StoredVersion>, StoreError> {
    let row = tx
        .query_row(
            &format!(
                "SELECT {VERSION_COLUMNS}, bundle FROM versions WHERE project = ?1 AND number = ?2"
            ),
            params![project, number],
            |r| Ok((version_row(r)?, r.get::<_, String>(6)?)),
        )
        .optional()?;
    row.map(|(info, bundle_json)| {
        Ok(StoredVersion {
            info: version_info(info)?,
            bundle_json,
        })
    })
    .transpose()
}

/// Makes version `number`'s set current again as a new version, unless it already is.
pub(super) fn rollback(
    tx: &Transaction<'_>,
    project: &str,
    number: u64,
) -> Result<(DeployOutcome, bool), StoreError> {
    let n = to_i64(number).ok_or(StoreError::UnknownVersion(number))?;
    let bundle: Option<String> = tx
        .query_row(
            "SELECT bundle FROM versions WHERE project = ?1 AND number = ?2",
            params![project, n],
            |r| r.get(0),
        )
        .optional()?;
    let bundle = bundle.ok_or(StoreError::UnknownVersion(number))?;
    let target = MonitorSet::from_bundle_json(&bundle)
        .map_err(|e| StoreError::Corrupt(format!("version {number}'s bundle: {e}")))?;
    deploy_in(tx, project, &target, true, &Git::default(), Some(number))
}
