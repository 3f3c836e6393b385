//! Ad-hoc maintenance windows on PostgreSQL, as in SQLite: stored as JSON with their end
//! (unix microseconds), so that every replica sees them; read by end, ended early, and
//! pruned [`AD_HOC_KEPT_US`] after they end.

use deadpool_postgres::Transaction;
use monitor_spec::maintenance::MaintenanceWindow;

use super::ensure_project;
use crate::maintenance::{end_us, ended, of_json, sort, to_json};
use crate::store::{AD_HOC_KEPT_US, MAX_AD_HOC_READ, StoreError};

/// Migration 4: the current version's declared windows (canonical JSON array, NULL when
/// none), whether a result started in a window (left out of uptime, rollups and the run of
/// failures), and the ad-hoc windows.
pub(super) const SCHEMA: &str = r#"
ALTER TABLE projects ADD COLUMN maintenance text;
ALTER TABLE results ADD COLUMN maintenance boolean NOT NULL DEFAULT false;
ALTER TABLE latest_results ADD COLUMN maintenance boolean NOT NULL DEFAULT false;
CREATE TABLE ad_hoc_windows (
    project text COLLATE "C" NOT NULL REFERENCES projects(name),
    id text COLLATE "C" NOT NULL,
    ends bigint NOT NULL,
    spec text NOT NULL,
    PRIMARY KEY (project, id)
);
CREATE INDEX ad_hoc_windows_by_end ON ad_hoc_windows (project, ends);
CREATE INDEX ad_hoc_windows_ended ON ad_hoc_windows (ends);
"#;

/// Windows deleted per step of upkeep.
const PRUNE_PER_STEP: i64 = 500;

/// Stores a window unless `max_open` of the project's windows end after `now_us`; the
/// project's row is locked first, so that two replicas cannot both pass the count.
pub(super) async fn open(
    tx: &Transaction<'_>,
    project: &str,
    window: &MaintenanceWindow,
    now_us: i64,
    max_open: usize,
) -> Result<bool, StoreError> {
    ensure_project(tx, project).await?;
    tx.execute(
        "SELECT 1 FROM projects WHERE name = $1 FOR UPDATE",
        &[&project],
    )
    .await?;
    let open: i64 = tx
        .query_one(
            "SELECT count(*) FROM ad_hoc_windows WHERE project = $1 AND ends > $2",
            &[&project, &now_us],
        )
        .await?
        .get(0);
    if usize::try_from(open).unwrap_or(usize::MAX) >= max_open {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO ad_hoc_windows (project, id, ends, spec) VALUES ($1, $2, $3, $4)
         ON CONFLICT (project, id) DO UPDATE SET ends = excluded.ends, spec = excluded.spec",
        &[&project, &window.id, &end_us(window), &to_json(window)?],
    )
    .await?;
    Ok(true)
}

/// The windows of a project ending after `after_us`, by start then id.
pub(super) async fn list(
    tx: &Transaction<'_>,
    project: &str,
    after_us: i64,
) -> Result<Vec<MaintenanceWindow>, StoreError> {
    let rows = tx
        .query(
            "SELECT id, spec FROM ad_hoc_windows WHERE project = $1 AND ends > $2
             ORDER BY ends LIMIT $3",
            &[&project, &after_us, &(MAX_AD_HOC_READ as i64)],
        )
        .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(of_json(r.get(0), r.get(1))?);
    }
    sort(&mut out);
    Ok(out)
}

/// Ends a window at `now_us` when it ends later; the window as it now is.
pub(super) async fn end(
    tx: &Transaction<'_>,
    project: &str,
    id: &str,
    now_us: i64,
) -> Result<Option<MaintenanceWindow>, StoreError> {
    let row = tx
        .query_opt(
            "SELECT spec FROM ad_hoc_windows WHERE project = $1 AND id = $2 FOR UPDATE",
            &[&project, &id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut window = of_json(id, row.get(0))?;
    if !ended(&mut window, now_us) {
        return Ok(Some(window));
    }
    tx.execute(
        "UPDATE ad_hoc_windows SET ends = $3, spec = $4 WHERE project = $1 AND id = $2",
        &[&project, &id, &end_us(&window), &to_json(&window)?],
    )
    .await?;
    Ok(Some(window))
}

/// Deletes up to [`PRUNE_PER_STEP`] windows that ended [`AD_HOC_KEPT_US`] before `now_us`.
pub(super) async fn prune(
    tx: &tokio_postgres::Transaction<'_>,
    now_us: i64,
) -> Result<u64, StoreError> {
    Ok(tx
        .execute(
            "DELETE FROM ad_hoc_windows WHERE (project, id) IN (
                 SELECT project, id FROM ad_hoc_windows WHERE ends < $1 LIMIT $2)",
            &[&now_us.saturating_sub(AD_HOC_KEPT_US), &PRUNE_PER_STEP],
        )
        .await?)
}
