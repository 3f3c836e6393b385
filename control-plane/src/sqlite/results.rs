//! Check results in SQLite: storing a batch in typed columns (duplicates ignored) while
//! keeping the latest result per monitor and location with its run of failures, and
//! reading a monitor's raw history and rollups. Uptime and the upkeep are in
//! [`super::upkeep`].

use monitor_spec::Status;
use rusqlite::{OptionalExtension, Transaction, params};

use super::rows::{ensure_project, to_u64};
use crate::results::{error_kind_of, hour_of, keeps_json, status_code, status_of_code};
use crate::store::{
    InsertOutcome, LatestResult, NewResult, RecentResult, ResultFacts, ResultQuery, Rollup,
    RollupQuery, Step, StoreError, StoredResult,
};

/// Series rolled up (or pruned) per step of [`maintain`], so that a step holds the writer
/// for a bounded time.
pub(super) const SERIES_PER_STEP: i64 = 200;
/// Marked buckets rolled up again per step of [`maintain`].
pub(super) const DIRTY_PER_STEP: i64 = 500;

/// `rollup_progress.step` of hours and days, and of the pruning sweep (`start` is when
/// the last sweep began).
pub(super) const HOURS: i64 = 0;
pub(super) const DAYS: i64 = 1;
pub(super) const PRUNING: i64 = 2;
/// `rollup_progress.step` whose `start` is the latest cutoff a sweep pruned raw results,
/// and hourly rollups, before.
pub(super) const RAW_PRUNED: i64 = 3;
pub(super) const HOURLY_PRUNED: i64 = 4;
/// How long after a pruning sweep began the next one may begin, microseconds.
pub(super) const SWEEP_EVERY_US: i64 = 5 * 60 * 1_000_000;

/// The id of a series, created when missing.
pub(super) fn series_id(
    tx: &Transaction<'_>,
    project: &str,
    monitor: &str,
    location: &str,
) -> Result<i64, StoreError> {
    let mut find = tx.prepare_cached(
        "SELECT id FROM series WHERE project = ?1 AND monitor = ?2 AND location = ?3",
    )?;
    if let Some(id) = find
        .query_row(params![project, monitor, location], |r| r.get(0))
        .optional()?
    {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO series (project, monitor, location) VALUES (?1, ?2, ?3)")?
        .execute(params![project, monitor, location])?;
    Ok(tx.last_insert_rowid())
}

/// The id of an interned name, created when missing.
pub(super) fn intern(tx: &Transaction<'_>, name: &str) -> Result<i64, StoreError> {
    let mut find = tx.prepare_cached("SELECT id FROM names WHERE name = ?1")?;
    if let Some(id) = find.query_row([name], |r| r.get(0)).optional()? {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO names (name) VALUES (?1)")?
        .execute([name])?;
    Ok(tx.last_insert_rowid())
}

fn intern_opt(tx: &Transaction<'_>, name: Option<&str>) -> Result<Option<i64>, StoreError> {
    name.map(|n| intern(tx, n)).transpose()
}

/// How far rolling up went: `(start, next_series)` of [`HOURS`] or [`DAYS`].
pub(super) fn progress(tx: &Transaction<'_>, step: i64) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT start, next_series FROM rollup_progress WHERE step = ?1")?
        .query_row([step], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub(super) fn set_progress(
    tx: &Transaction<'_>,
    step: i64,
    start: i64,
    next: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO rollup_progress (step, start, next_series) VALUES (?1, ?2, ?3)
         ON CONFLICT (step) DO UPDATE SET start = excluded.start,
             next_series = excluded.next_series",
    )?
    .execute(params![step, start, next])?;
    Ok(())
}

/// Whether the bucket starting at `start` is rolled up for `series` already.
pub(super) fn rolled(progress: Option<(i64, i64)>, series: i64, start: i64) -> bool {
    progress.is_some_and(|(at, next)| start < at || (start == at && series < next))
}

pub(super) fn mark_dirty(
    tx: &Transaction<'_>,
    step: i64,
    start: i64,
    series: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO rollup_dirty (step, start, series) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![step, start, series])?;
    Ok(())
}

/// Stores a batch, ignoring results whose (monitor, location, tick) the project holds.
pub(super) fn insert(
    tx: &Transaction<'_>,
    project: &str,
    results: &[NewResult],
) -> Result<InsertOutcome, StoreError> {
    ensure_project(tx, project)?;
    let hours = progress(tx, HOURS)?;
    let mut outcome = InsertOutcome::default();
    for r in results {
        let series = series_id(tx, project, &r.monitor, &r.location)?;
        let stored = insert_row(tx, series, r)?;
        if !stored {
            outcome.duplicates += 1;
            continue;
        }
        outcome.accepted += 1;
        update_latest(tx, series, r)?;
        if !r.in_maintenance {
            tx.prepare_cached(
                "INSERT INTO live_counts (series, hour, checks, failures) VALUES (?1, ?2, 1, ?3)
             ON CONFLICT (series, hour) DO UPDATE SET checks = checks + 1,
                 failures = failures + excluded.failures",
            )?
            .execute(params![
                series,
                hour_of(r.started_us),
                i64::from(r.status == Status::Failed)
            ])?;
        }
        let hour = hour_of(r.started_us);
        if rolled(hours, series, hour) {
            mark_dirty(tx, HOURS, hour, series)?;
        }
    }
    Ok(outcome)
}

/// Inserts one result; false when its series and tick were stored already.
pub(super) fn insert_row(
    tx: &Transaction<'_>,
    series: i64,
    r: &NewResult,
) -> Result<bool, StoreError> {
    let f = &r.facts;
    let agent = intern(tx, &r.agent)?;
    let error = intern_opt(tx, f.error.map(|e| e.as_str()))?;
    let address = intern_opt(tx, f.address.as_deref())?;
    let tls_version = intern_opt(tx, f.tls_version.as_deref())?;
    let json = keeps_json(r.status).then_some(r.json.as_str());
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO raw_results (series, tick, started, received, status, total,
                error, dns, connect, tls, first_byte, agent, address, tls_version, cert_expiry,
                json, maintenance)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                ?17)",
        )?
        .execute(params![
            series,
            r.tick,
            r.started_us,
            r.received_us.saturating_sub(r.started_us),
            status_code(r.status),
            f.total_us,
            error,
            f.dns_us,
            f.connect_us,
            f.tls_us,
            f.first_byte_us,
            agent,
            address,
            tls_version,
            f.cert_expiry_s,
            json,
            r.in_maintenance
        ])?;
    Ok(n > 0)
}

/// Makes a newly stored result the latest of its series when it is newer than the one
/// recorded, counting the run of failures on (a failure in a maintenance window leaves
/// the run as it was); a result arriving late, older than the latest, may fall inside that
/// run, which is then counted again from the results.
fn update_latest(tx: &Transaction<'_>, series: i64, r: &NewResult) -> Result<(), StoreError> {
    let failed = r.status == Status::Failed;
    let latest: Option<(i64, i64)> = tx
        .prepare_cached("SELECT started, consecutive_failures FROM latest WHERE series = ?1")?
        .query_row([series], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match latest {
        Some((started, _)) if r.started_us <= started => {
            let failures = failures_since_last_success(tx, series)?;
            tx.prepare_cached("UPDATE latest SET consecutive_failures = ?2 WHERE series = ?1")?
                .execute(params![series, failures])?;
        }
        previous => {
            let failures = match previous {
                Some((_, before)) if failed && r.in_maintenance => before,
                Some((_, before)) if failed => before.saturating_add(1),
                None if failed && !r.in_maintenance => 1,
                _ => 0,
            };
            let agent = intern(tx, &r.agent)?;
            tx.prepare_cached(
                "INSERT INTO latest (series, tick, started, agent, consecutive_failures, json,
                     maintenance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (series) DO UPDATE SET
                   tick = excluded.tick, started = excluded.started, agent = excluded.agent,
                   consecutive_failures = excluded.consecutive_failures, json = excluded.json,
                   maintenance = excluded.maintenance",
            )?
            .execute(params![
                series,
                r.tick,
                r.started_us,
                agent,
                failures,
                r.json,
                r.in_maintenance
            ])?;
        }
    }
    Ok(())
}

/// How many results of a series out of maintenance windows failed after its latest
/// result that did not.
fn failures_since_last_success(tx: &Transaction<'_>, series: i64) -> Result<i64, StoreError> {
    let last_success: Option<i64> = tx
        .prepare_cached(
            "SELECT started FROM raw_results WHERE series = ?1 AND status != 2
             ORDER BY started DESC LIMIT 1",
        )?
        .query_row([series], |row| row.get(0))
        .optional()?;
    Ok(tx
        .prepare_cached(
            "SELECT COUNT(*) FROM raw_results
             WHERE series = ?1 AND status = 2 AND maintenance = 0 AND started > ?2",
        )?
        .query_row(params![series, last_success.unwrap_or(i64::MIN)], |row| {
            row.get(0)
        })?)
}

/// The latest result of each monitor in each location, sorted by monitor and location.
pub(super) fn latest(
    tx: &Transaction<'_>,
    project: &str,
    full: bool,
) -> Result<Vec<LatestResult>, StoreError> {
    // The facts from the raw row; the JSON only of a result that did not pass (or whose
    // raw row is gone), unless `full`.
    let mut stmt = tx.prepare_cached(
        "SELECT s.monitor, s.location, n.name, l.consecutive_failures,
                CASE WHEN ?2 OR r.status IS NULL OR r.status != 0 THEN l.json END,
                COALESCE(r.status, 2), l.started, r.dns, r.connect, r.tls, r.first_byte,
                COALESCE(r.total, 0), e.name, a.name, v.name, r.cert_expiry, l.maintenance
         FROM series s
         JOIN latest l ON l.series = s.id
         JOIN names n ON n.id = l.agent
         LEFT JOIN raw_results r ON r.series = l.series AND r.tick = l.tick
         LEFT JOIN names e ON e.id = r.error
         LEFT JOIN names a ON a.id = r.address
         LEFT JOIN names v ON v.id = r.tls_version
         WHERE s.project = ?1
         ORDER BY s.monitor, s.location",
    )?;
    let rows = stmt.query_map(params![project, full], |r| {
        let failures: i64 = r.get(3)?;
        let status: i64 = r.get(5)?;
        let error: Option<String> = r.get(12)?;
        Ok((
            LatestResult {
                monitor: r.get(0)?,
                location: r.get(1)?,
                agent: r.get(2)?,
                consecutive_failures: 0,
                status: status_of_code(status).unwrap_or(Status::Failed),
                started_us: r.get(6)?,
                facts: ResultFacts {
                    error: error.as_deref().and_then(error_kind_of),
                    dns_us: r.get(7)?,
                    connect_us: r.get(8)?,
                    tls_us: r.get(9)?,
                    first_byte_us: r.get(10)?,
                    total_us: r.get(11)?,
                    address: r.get(13)?,
                    tls_version: r.get(14)?,
                    cert_expiry_s: r.get(15)?,
                },
                json: r.get(4)?,
                in_maintenance: r.get(16)?,
            },
            failures,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mut latest, failures) = row?;
        latest.consecutive_failures = to_u64(failures)?;
        out.push(latest);
    }
    Ok(out)
}

/// A monitor's raw results, oldest first by start time (then location and tick).
pub(super) fn history(
    tx: &Transaction<'_>,
    project: &str,
    query: &ResultQuery,
) -> Result<Vec<StoredResult>, StoreError> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare_cached(
        "SELECT s.location, r.tick, r.started, r.received, r.status, r.total, e.name, r.dns,
            r.connect, r.tls, r.first_byte, a.name, ad.name, tv.name, r.cert_expiry,
            COALESCE(r.json, CASE WHEN l.tick = r.tick THEN l.json END), r.maintenance
         FROM series s
         JOIN raw_results r ON r.series = s.id
         LEFT JOIN latest l ON l.series = s.id
         LEFT JOIN names e ON e.id = r.error
         LEFT JOIN names a ON a.id = r.agent
         LEFT JOIN names ad ON ad.id = r.address
         LEFT JOIN names tv ON tv.id = r.tls_version
         WHERE s.project = ?1 AND s.monitor = ?2 AND (?3 IS NULL OR s.location = ?3)
           AND r.started > ?4 AND r.started <= ?5
         ORDER BY r.started, s.location, r.tick
         LIMIT ?6",
    )?;
    let rows = stmt.query_map(
        params![
            project,
            query.monitor,
            query.location,
            query.from_us.unwrap_or(i64::MIN),
            query.to_us.unwrap_or(i64::MAX),
            limit
        ],
        |r| {
            Ok((
                (
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ),
                (
                    r.get::<_, Option<i64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                    r.get::<_, Option<i64>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<String>>(12)?,
                    r.get::<_, Option<String>>(13)?,
                    r.get::<_, Option<i64>>(14)?,
                    r.get::<_, Option<String>>(15)?,
                    r.get::<_, bool>(16)?,
                ),
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (
            (location, tick, started, received, status, total, error),
            (
                dns,
                connect,
                tls,
                first_byte,
                agent,
                address,
                tls_version,
                cert_expiry,
                json,
                in_maintenance,
            ),
        ) = row?;
        let id = format!("{}/{location}/{tick}", query.monitor);
        let corrupt = |what: String| StoreError::Corrupt(format!("result `{id}`: {what}"));
        let status = status_of_code(status).ok_or_else(|| corrupt(format!("status {status}")))?;
        let error = error
            .map(|name| error_kind_of(&name).ok_or_else(|| corrupt(format!("error `{name}`"))))
            .transpose()?;
        out.push(StoredResult {
            location,
            agent: agent.ok_or_else(|| corrupt("no agent".to_owned()))?,
            tick,
            status,
            started_us: started,
            received_us: started.saturating_add(received),
            facts: ResultFacts {
                error,
                dns_us: dns,
                connect_us: connect,
                tls_us: tls,
                first_byte_us: first_byte,
                total_us: total,
                address,
                tls_version,
                cert_expiry_s: cert_expiry,
            },
            json,
            id,
            in_maintenance,
        });
    }
    Ok(out)
}

pub(super) fn rollup_table(step: Step) -> &'static str {
    match step {
        Step::Hour => "rollups_hourly",
        Step::Day => "rollups_daily",
    }
}

pub(super) fn rollup_of_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, i64, [i64; 6], Option<i64>)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        [
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        ],
        r.get(8)?,
    ))
}

pub(super) fn to_rollup(
    (location, start_us, v, min_days_left): (String, i64, [i64; 6], Option<i64>),
) -> Result<Rollup, StoreError> {
    Ok(Rollup {
        location,
        start_us,
        checks: to_u64(v[0])?,
        failures: to_u64(v[1])?,
        degraded: to_u64(v[2])?,
        p50_us: v[3],
        p95_us: v[4],
        max_us: v[5],
        min_days_left,
    })
}

/// A monitor's rollups, oldest first, then by location.
pub(super) fn rollups(
    tx: &Transaction<'_>,
    project: &str,
    query: &RollupQuery,
) -> Result<Vec<Rollup>, StoreError> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT s.location, h.start, h.checks, h.failures, h.degraded, h.p50, h.p95, h.max,
            h.min_days_left
         FROM series s JOIN {} h ON h.series = s.id
         WHERE s.project = ?1 AND s.monitor = ?2 AND (?3 IS NULL OR s.location = ?3)
           AND h.start >= ?4 AND h.start < ?5
         ORDER BY h.start, s.location
         LIMIT ?6",
        rollup_table(query.step)
    ))?;
    let rows = stmt.query_map(
        params![
            project,
            query.monitor,
            query.location,
            query.from_us,
            query.to_us,
            limit
        ],
        rollup_of_row,
    )?;
    rows.map(|r| to_rollup(r?)).collect()
}

/// The last `per_series` results of each series of `project`, sorted by monitor, location
/// and start: one indexed read per series.
pub(super) fn recent(
    tx: &Transaction<'_>,
    project: &str,
    per_series: u32,
) -> Result<Vec<RecentResult>, StoreError> {
    let series: Vec<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT id, monitor, location FROM series WHERE project = ?1
             ORDER BY monitor, location",
        )?
        .query_map([project], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut stmt = tx.prepare_cached(
        "SELECT r.started, r.status, r.total, e.name, r.json, r.maintenance
         FROM raw_results r LEFT JOIN names e ON e.id = r.error
         WHERE r.series = ?1 ORDER BY r.started DESC LIMIT ?2",
    )?;
    let mut out = Vec::new();
    for (id, monitor, location) in series {
        let start = out.len();
        let rows = stmt.query_map(params![id, per_series], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, bool>(5)?,
            ))
        })?;
        for row in rows {
            let (started_us, status, total_us, error, json, in_maintenance) = row?;
            out.push(RecentResult {
                monitor: monitor.clone(),
                location: location.clone(),
                started_us,
                status: status_of_code(status).unwrap_or(Status::Failed),
                total_us,
                error: error.as_deref().and_then(error_kind_of),
                json,
                in_maintenance,
            });
        }
        out[start..].reverse();
    }
    Ok(out)
}
