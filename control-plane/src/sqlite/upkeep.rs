//! Uptime and upkeep of the results in SQLite: the uptime of each series over its windows
//! (rolled-up part cached by the store), and the bounded steps that roll up hours and days
//! and prune past the retentions.

use std::collections::HashMap;

use monitor_spec::Status;
use rusqlite::{Transaction, params};

use super::results::{
    DAYS, DIRTY_PER_STEP, HOURLY_PRUNED, HOURS, PRUNING, RAW_PRUNED, SERIES_PER_STEP,
    SWEEP_EVERY_US, insert_row, intern, mark_dirty, progress, rolled, rollup_of_row, rollup_table,
    series_id, set_progress, to_rollup,
};
use super::rows::to_u64;
use crate::results::{
    self, DAY_US, HOUR_US, Sample, day_of, duration_us, hour_of, status_of_code, window_starts,
};
use crate::store::{Maintenance, NewResult, Retention, Rollup, SeriesUptime, Step, StoreError};

/// Disjoint, sorted ranges `[from, to)` covering those given (empty ones dropped).
fn union(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.retain(|r| r.0 < r.1);
    ranges.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (from, to) in ranges {
        match out.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

/// Checks and failures per window, by series id.
pub(super) type Counts = HashMap<i64, ([u64; 4], [u64; 4])>;

/// What the rolled-up part of an uptime depends on: the hour of `now`, how far hours and
/// days are rolled up, and [`crate::sqlite::SqliteStore`]'s count of maintenance steps
/// that changed rollups.
pub(super) type UptimeKey = (i64, i64, i64, u64);

/// How far hours and days are rolled up for every series (`i64::MIN` before any).
fn rolled_up_to(tx: &Transaction<'_>) -> Result<(i64, i64), StoreError> {
    let hours = progress(tx, HOURS)?.map_or(i64::MIN, |p| p.0);
    let days = progress(tx, DAYS)?.map_or(i64::MIN, |p| p.0).min(hours);
    Ok((hours, days))
}

/// The key of the rolled-up part of an uptime at `now_us` for `generation`.
pub(super) fn uptime_key(
    tx: &Transaction<'_>,
    now_us: i64,
    generation: u64,
) -> Result<UptimeKey, StoreError> {
    let (hours, days) = rolled_up_to(tx)?;
    Ok((hour_of(now_us), hours, days, generation))
}

fn add(
    counts: &mut Counts,
    id: i64,
    w: usize,
    checks: i64,
    failures: i64,
) -> Result<(), StoreError> {
    let entry = counts.entry(id).or_default();
    entry.0[w] += to_u64(checks)?;
    entry.1[w] += to_u64(failures)?;
    Ok(())
}

/// The rolled-up part of the uptimes of a project's series at `now_us`: per window, the
/// daily rollups of the whole days rolled up in it and the hourly rollups of its other
/// hours rolled up.
pub(super) fn rolled_uptime(
    tx: &Transaction<'_>,
    project: &str,
    now_us: i64,
) -> Result<Counts, StoreError> {
    let (hours, days) = rolled_up_to(tx)?;
    let starts = window_starts(now_us);
    let mut counts = Counts::new();
    // Per window: whole days [a, e) from the daily rollups, hours [start, min(a, hours))
    // and [e, hours) from the hourly ones.
    let day_ranges: Vec<(i64, i64)> = starts
        .iter()
        .map(|&s| {
            let a = day_of(s.saturating_add(DAY_US - 1));
            (a, a.max(days))
        })
        .collect();
    let ranged =
        |table: &str, from: i64, to: i64| -> Result<Vec<(i64, i64, i64, i64)>, StoreError> {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT h.series, h.start, h.checks, h.failures FROM series s
             JOIN {table} h ON h.series = s.id AND h.start >= ?2 AND h.start < ?3
             WHERE s.project = ?1"
            ))?;
            let rows = stmt.query_map(params![project, from, to], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
    for (from, to) in union(day_ranges.clone()) {
        for (id, start, checks, failures) in ranged("rollups_daily", from, to)? {
            for (w, &(a, e)) in day_ranges.iter().enumerate() {
                if (a..e).contains(&start) {
                    add(&mut counts, id, w, checks, failures)?;
                }
            }
        }
    }
    let hour_ranges: Vec<[(i64, i64); 2]> = starts
        .iter()
        .zip(&day_ranges)
        .map(|(&s, &(a, e))| [(s, a.min(hours)), (e.max(s), hours)])
        .collect();
    for (from, to) in union(hour_ranges.iter().flatten().copied().collect()) {
        for (id, start, checks, failures) in ranged("rollups_hourly", from, to)? {
            for (w, ranges) in hour_ranges.iter().enumerate() {
                if ranges.iter().any(|r| (r.0..r.1).contains(&start)) {
                    add(&mut counts, id, w, checks, failures)?;
                }
            }
        }
    }
    Ok(counts)
}

/// The uptimes of every series of a project at `now_us`: `rolled` (from
/// [`rolled_uptime`] with the same key) plus the live counts of the hours not rolled up.
pub(super) fn uptime(
    tx: &Transaction<'_>,
    project: &str,
    now_us: i64,
    rolled: &Counts,
) -> Result<Vec<SeriesUptime>, StoreError> {
    let (hours, _) = rolled_up_to(tx)?;
    let live_from: Vec<i64> = window_starts(now_us)
        .iter()
        .map(|&s| s.max(hours))
        .collect();
    let oldest = live_from.iter().copied().min().unwrap_or(hours);
    let mut live = Counts::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT l.series, l.hour, l.checks, l.failures FROM series s
             JOIN live_counts l ON l.series = s.id AND l.hour >= ?2
             WHERE s.project = ?1",
        )?;
        let rows = stmt.query_map(params![project, oldest], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get(2)?,
                r.get(3)?,
            ))
        })?;
        for row in rows {
            let (id, hour, checks, failures) = row?;
            for (w, &from) in live_from.iter().enumerate() {
                if hour >= from {
                    add(&mut live, id, w, checks, failures)?;
                }
            }
        }
    }
    let mut stmt = tx.prepare_cached(
        "SELECT id, monitor, location FROM series WHERE project = ?1
         ORDER BY monitor, location",
    )?;
    let rows = stmt.query_map([project], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, monitor, location) = row?;
        let mut u = SeriesUptime {
            monitor,
            location,
            checks: [0; 4],
            failures: [0; 4],
        };
        for part in [rolled.get(&id), live.get(&id)].into_iter().flatten() {
            for w in 0..4 {
                u.checks[w] += part.0[w];
                u.failures[w] += part.1[w];
            }
        }
        out.push(u);
    }
    Ok(out)
}

/// The samples of a series that started in `[from, to)`, out of maintenance windows.
fn samples(
    tx: &Transaction<'_>,
    series: i64,
    from: i64,
    to: i64,
) -> Result<Vec<Sample>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT status, started, total, cert_expiry FROM raw_results
         WHERE series = ?1 AND started >= ?2 AND started < ?3 AND maintenance = 0",
    )?;
    let rows = stmt.query_map(params![series, from, to], |r| {
        Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (status, started_us, total_us, cert_expiry_s) = row?;
        let status = status_of_code(status)
            .ok_or_else(|| StoreError::Corrupt(format!("result status {status}")))?;
        out.push(Sample {
            status,
            started_us,
            total_us,
            cert_expiry_s,
        });
    }
    Ok(out)
}

/// Writes (or, when `rollup` is `None`, deletes) the rollup of a series in a bucket.
fn put_rollup(
    tx: &Transaction<'_>,
    step: Step,
    series: i64,
    start: i64,
    rollup: Option<&Rollup>,
) -> Result<(), StoreError> {
    let table = rollup_table(step);
    let Some(r) = rollup else {
        tx.prepare_cached(&format!(
            "DELETE FROM {table} WHERE series = ?1 AND start = ?2"
        ))?
        .execute(params![series, start])?;
        return Ok(());
    };
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table}
         (series, start, checks, failures, degraded, p50, p95, max, min_days_left)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?
    .execute(params![
        series,
        start,
        n(r.checks),
        n(r.failures),
        n(r.degraded),
        r.p50_us,
        r.p95_us,
        r.max_us,
        r.min_days_left
    ])?;
    Ok(())
}

/// Rolls up one hour of one series from its raw results; whether a rollup was written.
fn roll_hour(tx: &Transaction<'_>, series: i64, start: i64) -> Result<bool, StoreError> {
    let samples = samples(tx, series, start, start + HOUR_US)?;
    let rollup = results::hourly_rollup("", start, &samples);
    put_rollup(tx, Step::Hour, series, start, rollup.as_ref())?;
    Ok(rollup.is_some())
}

/// The latest cutoff of a kind of pruning ([`RAW_PRUNED`], [`HOURLY_PRUNED`]).
fn watermark(tx: &Transaction<'_>, step: i64) -> Result<i64, StoreError> {
    Ok(progress(tx, step)?.map_or(i64::MIN, |p| p.0))
}

fn raise_watermark(tx: &Transaction<'_>, step: i64, cutoff: i64) -> Result<(), StoreError> {
    if cutoff > watermark(tx, step)? {
        set_progress(tx, step, cutoff, 0)?;
    }
    Ok(())
}

/// Deletes the raw results of a series in the hour starting at `start`.
fn delete_hour(tx: &Transaction<'_>, series: i64, start: i64) -> Result<u64, StoreError> {
    Ok(tx
        .prepare_cached(
            "DELETE FROM raw_results WHERE series = ?1 AND started >= ?2 AND started < ?3",
        )?
        .execute(params![series, start, start + HOUR_US])? as u64)
}

/// Adds the raw results of a series in an hour whose results were pruned (so those left
/// arrived since) to its rollup, then deletes them. The percentiles of the sum are the
/// checks-weighted ones of the parts, as for a day.
fn merge_hour(tx: &Transaction<'_>, series: i64, start: i64) -> Result<u64, StoreError> {
    let samples = samples(tx, series, start, start + HOUR_US)?;
    let Some(new) = results::hourly_rollup("", start, &samples) else {
        return Ok(0);
    };
    let mut stmt = tx.prepare_cached(
        "SELECT '', start, checks, failures, degraded, p50, p95, max, min_days_left
         FROM rollups_hourly WHERE series = ?1 AND start = ?2",
    )?;
    let mut parts = stmt
        .query_map(params![series, start], rollup_of_row)?
        .map(|r| to_rollup(r?))
        .collect::<Result<Vec<_>, _>>()?;
    parts.push(new);
    let merged = results::daily_rollup("", start, &parts);
    put_rollup(tx, Step::Hour, series, start, merged.as_ref())?;
    delete_hour(tx, series, start)
}

/// Rolls up one day of one series from its hourly rollups; whether a rollup was written.
fn roll_day(tx: &Transaction<'_>, series: i64, start: i64) -> Result<bool, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT '', start, checks, failures, degraded, p50, p95, max, min_days_left
         FROM rollups_hourly WHERE series = ?1 AND start >= ?2 AND start < ?3",
    )?;
    let hours = stmt
        .query_map(params![series, start, start + DAY_US], rollup_of_row)?
        .map(|r| to_rollup(r?))
        .collect::<Result<Vec<_>, _>>()?;
    let rollup = results::daily_rollup("", start, &hours);
    put_rollup(tx, Step::Day, series, start, rollup.as_ref())?;
    Ok(rollup.is_some())
}

/// The first bucket at or after `from` in which some series has rows of `table` (seeking
/// per series), `None` when none has.
fn next_data(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    from: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .prepare_cached(&format!(
            "SELECT MIN((SELECT {column} FROM {table} t WHERE t.series = s.id AND t.{column} >= ?1
                ORDER BY t.{column} LIMIT 1)) FROM series s"
        ))?
        .query_row([from], |r| r.get(0))?)
}

/// What a pruning sweep deletes: what started before these instants (unix microseconds).
struct Cutoffs {
    raw: i64,
    hourly: i64,
    daily: i64,
}

/// The next series of the pruning sweep in progress, or 0 when a new sweep is due (and
/// is then recorded as begun now); `None` when none is.
fn sweep_due(tx: &Transaction<'_>, now_us: i64) -> Result<Option<i64>, StoreError> {
    match progress(tx, PRUNING)? {
        Some((_, next)) if next > 0 => Ok(Some(next)),
        Some((started, _)) if now_us < started.saturating_add(SWEEP_EVERY_US) => Ok(None),
        _ => {
            set_progress(tx, PRUNING, now_us, 0)?;
            Ok(Some(0))
        }
    }
}

/// Makes a pruning sweep due at the first step of maintenance after the database is
/// opened (unless one is in progress), so that a restart prunes at once.
pub(super) fn on_open(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM rollup_progress WHERE step = ?1 AND next_series = 0",
        [PRUNING],
    )?;
    Ok(())
}

/// Whether a pruning sweep is in progress or due.
fn sweep_wanted(tx: &Transaction<'_>, now_us: i64) -> Result<bool, StoreError> {
    Ok(match progress(tx, PRUNING)? {
        Some((started, next)) => next > 0 || now_us >= started.saturating_add(SWEEP_EVERY_US),
        None => true,
    })
}

/// Deletes a series' raw results, latest result and rollups past the cutoffs.
fn prune_series(
    tx: &Transaction<'_>,
    series: i64,
    cutoffs: &Cutoffs,
    done: &mut Maintenance,
) -> Result<(), StoreError> {
    let delete = |sql: &str, before: i64| -> Result<u64, StoreError> {
        Ok(tx.prepare_cached(sql)?.execute(params![series, before])? as u64)
    };
    done.raw_pruned += delete(
        "DELETE FROM raw_results WHERE series = ?1 AND started < ?2",
        cutoffs.raw,
    )?;
    delete(
        "DELETE FROM latest WHERE series = ?1 AND started < ?2",
        cutoffs.raw,
    )?;
    done.rollups_pruned += delete(
        "DELETE FROM rollups_hourly WHERE series = ?1 AND start < ?2",
        cutoffs.hourly,
    )?;
    done.rollups_pruned += delete(
        "DELETE FROM rollups_daily WHERE series = ?1 AND start < ?2",
        cutoffs.daily,
    )?;
    Ok(())
}

/// One bounded step of upkeep, in one write transaction (see [`crate::Store::maintain`]):
/// rolls up at most [`DIRTY_PER_STEP`] marked buckets, or the next closed hour or day
/// for at most [`SERIES_PER_STEP`] series; with nothing to roll up, prunes at most
/// [`SERIES_PER_STEP`] series past the retentions (a sweep over every series begins at
/// most every 5 minutes). Raw results are pruned only once their hour is rolled up, and
/// hourly rollups once their day is.
pub(super) fn maintain(
    tx: &Transaction<'_>,
    now_us: i64,
    retention: &Retention,
) -> Result<Maintenance, StoreError> {
    let mut done = Maintenance::default();
    let mut sweeping = false;
    super::windows::prune(tx, now_us)?;
    let raw_cutoff = now_us.saturating_sub(duration_us(retention.raw));
    let max_series: i64 =
        tx.query_row("SELECT COALESCE(MAX(id), 0) FROM series", [], |r| r.get(0))?;
    let (mut hour, mut hour_next) = match progress(tx, HOURS)? {
        Some(p) => p,
        None => {
            let first = next_data(tx, "raw_results", "started", i64::MIN)?;
            let start = hour_of(first.unwrap_or(now_us).min(now_us));
            set_progress(tx, HOURS, start, 0)?;
            set_progress(tx, DAYS, day_of(start), 0)?;
            (start, 0)
        }
    };
    let (mut day, mut day_next) = progress(tx, DAYS)?.unwrap_or((day_of(hour), 0));

    // Marked hours first, then marked days: late results.
    let dirty = |step: i64| -> Result<Vec<(i64, i64)>, StoreError> {
        let mut stmt = tx.prepare_cached(
            "SELECT start, series FROM rollup_dirty WHERE step = ?1
             ORDER BY start, series LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![step, DIRTY_PER_STEP], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let unmark = |step: i64, start: i64, series: i64| -> Result<(), StoreError> {
        tx.prepare_cached(
            "DELETE FROM rollup_dirty WHERE step = ?1 AND start = ?2 AND series = ?3",
        )?
        .execute(params![step, start, series])?;
        Ok(())
    };
    let marked_hours = dirty(HOURS)?;
    let marked_days = if marked_hours.is_empty() {
        dirty(DAYS)?
    } else {
        Vec::new()
    };
    if !marked_hours.is_empty() {
        for &(start, series) in &marked_hours {
            if start + HOUR_US <= watermark(tx, HOURLY_PRUNED)? {
                // Its day's hours are pruned: the result is past every rollup but the
                // day's, which stays as it was.
                done.raw_pruned += delete_hour(tx, series, start)?;
            } else {
                if start + HOUR_US <= watermark(tx, RAW_PRUNED)? {
                    // Some of its results may be pruned: the new ones are added to the
                    // rollup, then pruned too.
                    done.raw_pruned += merge_hour(tx, series, start)?;
                } else {
                    roll_hour(tx, series, start)?;
                }
                done.hours_rolled += 1;
                if rolled(Some((day, day_next)), series, day_of(start)) {
                    mark_dirty(tx, DAYS, day_of(start), series)?;
                }
            }
            unmark(HOURS, start, series)?;
        }
    } else if !marked_days.is_empty() {
        for &(start, series) in &marked_days {
            roll_day(tx, series, start)?;
            done.days_rolled += 1;
            unmark(DAYS, start, series)?;
        }
    } else if hour + HOUR_US <= now_us {
        // The next closed hour, for the next series.
        if hour_next == 0 {
            match next_data(tx, "raw_results", "started", hour)? {
                Some(first) => hour = hour.max(hour_of(first).min(hour_of(now_us))),
                None => hour = hour_of(now_us),
            }
        }
        if hour + HOUR_US <= now_us {
            let last = (hour_next + SERIES_PER_STEP).min(max_series + 1);
            for series in hour_next..last {
                if roll_hour(tx, series, hour)? {
                    done.hours_rolled += 1;
                }
                tx.prepare_cached("DELETE FROM live_counts WHERE series = ?1 AND hour <= ?2")?
                    .execute(params![series, hour])?;
            }
            if last > max_series {
                hour += HOUR_US;
                hour_next = 0;
            } else {
                hour_next = last;
            }
        }
        set_progress(tx, HOURS, hour, hour_next)?;
    } else if day + DAY_US <= hour {
        // The next day whose hours are all rolled up, for the next series.
        if day_next == 0 {
            match next_data(tx, "rollups_hourly", "start", day)? {
                Some(first) => day = day.max(day_of(first).min(day_of(hour))),
                None => day = day_of(hour),
            }
        }
        if day + DAY_US <= hour {
            let last = (day_next + SERIES_PER_STEP).min(max_series + 1);
            for series in day_next..last {
                if roll_day(tx, series, day)? {
                    done.days_rolled += 1;
                }
            }
            if last > max_series {
                day += DAY_US;
                day_next = 0;
            } else {
                day_next = last;
            }
        }
        set_progress(tx, DAYS, day, day_next)?;
    } else if let Some(next) = sweep_due(tx, now_us)? {
        // Nothing to roll up: the next series of a pruning sweep.
        let last = (next + SERIES_PER_STEP).min(max_series + 1);
        let cutoffs = Cutoffs {
            raw: raw_cutoff.min(hour),
            hourly: now_us
                .saturating_sub(duration_us(retention.hourly))
                .min(day),
            daily: now_us.saturating_sub(duration_us(retention.daily)),
        };
        raise_watermark(tx, RAW_PRUNED, cutoffs.raw)?;
        raise_watermark(tx, HOURLY_PRUNED, cutoffs.hourly)?;
        for series in next..last {
            prune_series(tx, series, &cutoffs, &mut done)?;
        }
        let (started, _) = progress(tx, PRUNING)?.unwrap_or((now_us, 0));
        sweeping = last <= max_series;
        set_progress(tx, PRUNING, started, if sweeping { last } else { 0 })?;
    }
    let pending: i64 = tx.query_row(
        "SELECT COUNT(*) FROM (SELECT 1 FROM rollup_dirty LIMIT 1)",
        [],
        |r| r.get(0),
    )?;
    done.more = pending > 0
        || hour + HOUR_US <= now_us
        || day + DAY_US <= hour
        || sweeping
        || sweep_wanted(tx, now_us)?;
    Ok(done)
}

/// Moves the results of migration 3's tables into migration 5's (the typed columns from
/// each stored `CheckResult`), then drops the old tables. Part of migration 5.
pub(super) fn move_results(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let old: i64 = tx.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'results'",
        [],
        |r| r.get(0),
    )?;
    if old == 0 {
        return Ok(());
    }
    {
        let mut stmt = tx.prepare(
            "SELECT r.project, r.monitor, r.location, r.agent, r.tick, r.status, r.started_at,
                r.received_at, r.result,
                l.result_id IS NOT NULL, l.consecutive_failures
             FROM results r
             LEFT JOIN latest_results l ON l.project = r.project AND l.result_id = r.id
             ORDER BY r.started_at",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let project: String = row.get(0)?;
            let status: String = row.get(5)?;
            let status = match status.as_str() {
                "passed" => Status::Passed,
                "degraded" => Status::Degraded,
                _ => Status::Failed,
            };
            let json: String = row.get(8)?;
            let facts = serde_json::from_str::<monitor_spec::CheckResult>(&json)
                .map(|r| results::facts_of(&r))
                .unwrap_or_default();
            let r = NewResult {
                id: String::new(),
                monitor: row.get(1)?,
                location: row.get(2)?,
                agent: row.get(3)?,
                tick: row.get(4)?,
                status,
                started_us: row.get(6)?,
                received_us: row.get(7)?,
                facts,
                json,
                in_maintenance: false,
            };
            let series = series_id(tx, &project, &r.monitor, &r.location)?;
            insert_row(tx, series, &r)?;
            if row.get::<_, bool>(9)? {
                let failures: i64 = row.get(10)?;
                let agent = intern(tx, &r.agent)?;
                tx.execute(
                    "INSERT OR REPLACE INTO latest
                     (series, tick, started, agent, consecutive_failures, json)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![series, r.tick, r.started_us, agent, failures, r.json],
                )?;
            }
        }
    }
    tx.execute_batch(
        "INSERT INTO live_counts (series, hour, checks, failures)
             SELECT series, started - (started % 3600000000), COUNT(*), SUM(status = 2)
             FROM raw_results GROUP BY 1, 2;
         DROP TABLE latest_results;
         DROP TABLE results;",
    )?;
    Ok(())
}
