//! Monitor sets and versions on PostgreSQL: the current set, applying a plan as a new
//! version, reading versions back, rollback and destroy; the same semantics as SQLite's.

use deadpool_postgres::Transaction;
use monitor_spec::api::{Git, VersionInfo};
use serde_json::value::RawValue;
use tokio_postgres::Row;

use super::{ensure_project, now, to_i64, to_u64};
use crate::diff;
use crate::monitor_set::MonitorSet;
use crate::store::{DeployOutcome, StoreError, StoredVersion};

/// The current monitors of a project.
pub(super) async fn load_set(
    tx: &Transaction<'_>,
    project: &str,
) -> Result<MonitorSet, StoreError> {
    let stmt = tx
        .prepare_cached("SELECT id, spec FROM monitors WHERE project = $1")
        .await?;
    let mut set = MonitorSet::new();
    for row in tx.query(&stmt, &[&project]).await? {
        let id: String = row.get(0);
        let spec: String = row.get(1);
        let spec = RawValue::from_string(spec)
            .map_err(|e| StoreError::Corrupt(format!("monitor `{id}`: {e}")))?;
        set.insert(id, spec);
    }
    let stmt = tx
        .prepare_cached(
            "SELECT maintenance FROM projects WHERE name = $1 AND current_version IS NOT NULL",
        )
        .await?;
    let windows: Option<Option<String>> = tx.query_opt(&stmt, &[&project]).await?.map(|r| r.get(0));
    set.set_maintenance_json(windows.flatten())
        .map_err(|e| StoreError::Corrupt(format!("maintenance windows: {e}")))?;
    Ok(set)
}

/// The version now current, `None` when the project has none.
pub(super) async fn current_version(
    tx: &Transaction<'_>,
    project: &str,
) -> Result<Option<u64>, StoreError> {
    let stmt = tx
        .prepare_cached("SELECT current_version FROM projects WHERE name = $1")
        .await?;
    let v: Option<Option<i64>> = tx.query_opt(&stmt, &[&project]).await?.map(|r| r.get(0));
    v.flatten().map(to_u64).transpose()
}

/// Applies a plan and records it as a new version; returns its number.
async fn apply(
    tx: &Transaction<'_>,
    project: &str,
    current: &MonitorSet,
    plan: &diff::Plan,
    git: &Git,
    rollback_of: Option<u64>,
) -> Result<u64, StoreError> {
    // The changed monitors in one statement: a deploy is a few round trips, whatever its
    // size.
    let (ids, specs): (Vec<&str>, Vec<&str>) = plan
        .result
        .iter()
        .filter(|(id, spec)| current.get(id) != Some(*spec))
        .unzip();
    if !ids.is_empty() {
        tx.execute(
            "INSERT INTO monitors (project, id, spec)
             SELECT $1, u.id, u.spec FROM UNNEST($2::text[], $3::text[]) AS u (id, spec)
             ON CONFLICT (project, id) DO UPDATE SET spec = excluded.spec",
            &[&project, &ids, &specs],
        )
        .await?;
    }
    if !plan.diff.deleted.is_empty() {
        tx.execute(
            "DELETE FROM monitors WHERE project = $1 AND id = ANY($2)",
            &[&project, &plan.diff.deleted],
        )
        .await?;
    }
    let last: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(number), 0)::BIGINT FROM versions WHERE project = $1",
            &[&project],
        )
        .await?
        .get(0);
    let number = last + 1;
    let git_json = serde_json::to_string(git).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let bundle = plan.result.bundle_json();
    let hash = crate::hash::sha256_hex(bundle.as_bytes());
    let count = i64::try_from(plan.result.len()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO versions (project, number, hash, created_at, git, bundle, monitors, rollback_of)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &project,
            &number,
            &hash,
            &now(),
            &git_json,
            &bundle,
            &count,
            &rollback_of.and_then(to_i64),
        ],
    )
    .await?;
    tx.execute(
        "UPDATE projects SET current_version = $2, maintenance = $3 WHERE name = $1",
        &[&project, &number, &plan.result.maintenance_json()],
    )
    .await?;
    to_u64(number)
}

/// Plans `incoming` against the stored set and applies it unless nothing changes; whether
/// to commit.
pub(super) async fn deploy_in(
    tx: &Transaction<'_>,
    project: &str,
    incoming: &MonitorSet,
    prune: bool,
    git: &Git,
    rollback_of: Option<u64>,
) -> Result<(DeployOutcome, bool), StoreError> {
    ensure_project(tx, project).await?;
    let current = load_set(tx, project).await?;
    let plan = diff::plan(&current, incoming, prune);
    if plan.result == current {
        let outcome = DeployOutcome {
            applied: false,
            version: current_version(tx, project).await?,
            diff: plan.diff,
        };
        return Ok((outcome, false));
    }
    let version = apply(tx, project, &current, &plan, git, rollback_of).await?;
    let outcome = DeployOutcome {
        applied: true,
        version: Some(version),
        diff: plan.diff,
    };
    Ok((outcome, true))
}

const VERSION_COLUMNS: &str = "number, hash, created_at, git, monitors, rollback_of";

fn version_info(row: &Row) -> Result<VersionInfo, StoreError> {
    let git: String = row.get(3);
    Ok(VersionInfo {
        version: to_u64(row.get(0))?,
        hash: row.get(1),
        created_at: row.get(2),
        git: serde_json::from_str(&git)
            .map_err(|e| StoreError::Corrupt(format!("git json: {e}")))?,
        monitors: to_u64(row.get(4))?,
        rollback_of: row.get::<_, Option<i64>>(5).map(to_u64).transpose()?,
    })
}

/// Every version of a project, newest first.
pub(super) async fn list(
    tx: &Transaction<'_>,
    project: &str,
) -> Result<Vec<VersionInfo>, StoreError> {
    let rows = tx
        .query(
            &format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE project = $1 ORDER BY number DESC"
            ),
            &[&project],
        )
        .await?;
    rows.iter().map(version_info).collect()
}

/// One version with its bundle, `None` when it does not exist.
pub(super) async fn read(
    tx: &Transaction<'_>,
    project: &str,
    number: i64,
) -> Result<Option<StoredVersion>, StoreError> {
    let row = tx
        .query_opt(
            &format!(
                "SELECT {VERSION_COLUMNS}, bundle FROM versions WHERE project = $1 AND number = $2"
            ),
            &[&project, &number],
        )
        .await?;
    row.map(|row| {
        Ok(StoredVersion {
            info: version_info(&row)?,
            bundle_json: row.get(6),
        })
    })
    .transpose()
}

/// Makes version `number`'s set current again as a new version, unless it already is.
pub(super) async fn rollback(
    tx: &Transaction<'_>,
    project: &str,
    number: u64,
) -> Result<(DeployOutcome, bool), StoreError> {
    let n = to_i64(number).ok_or(StoreError::UnknownVersion(number))?;
    let bundle: String = tx
        .query_opt(
            "SELECT bundle FROM versions WHERE project = $1 AND number = $2",
            &[&project, &n],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or(StoreError::UnknownVersion(number))?;
    let target = MonitorSet::from_bundle_json(&bundle)
        .map_err(|e| StoreError::Corrupt(format!("version {number}'s bundle: {e}")))?;
    deploy_in(tx, project, &target, true, &Git::default(), Some(number)).await
}

/// Removes every monitor of a project; how many.
pub(super) async fn destroy(tx: &Transaction<'_>, project: &str) -> Result<u64, StoreError> {
    let deleted = tx
        .execute("DELETE FROM monitors WHERE project = $1", &[&project])
        .await?;
    tx.execute(
        "UPDATE projects SET current_version = NULL, maintenance = NULL WHERE name = $1",
        &[&project],
    )
    .await?;
    Ok(deleted)
}
