//! Uptime and upkeep of the results on PostgreSQL: the uptime of each series (cached per
//! hour, counted exactly when the cache cannot answer), and the bounded steps that roll up
//! closed hours and days, drop raw partitions past the retention and prune rollups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::results::{
    DAYS_AHEAD, PARTITION_LOCK, PRUNE_BATCH, ROLLUP_BATCH, day_of, ensure_partitions, hour_index,
    micros_i32, rollup_of,
};
use crate::results::{
    DAY_US, HOUR_US, daily_rollup, days_left, duration_us, percentile, window_starts,
};
use crate::store::{Maintenance, Retention, Rollup, SeriesUptime, StoreError};

/// The checks and failures of every series of a project over the uptime windows ending at
/// `now_us`, sorted by monitor and location: the rolled-up part as [`maintain`] cached it
/// (counted at the hour of its last upkeep: within a minute, or an hour for a series with
/// nothing new) plus the hours waiting to be rolled up, counted as results arrive.
pub(super) async fn uptime(
    tx: &Transaction<'_>,
    project: &str,
    now_us: i64,
) -> Result<Vec<SeriesUptime>, StoreError> {
    let starts = window_starts(now_us).map(hour_index);
    let first = starts.iter().copied().min().unwrap_or(0);
    let rows = tx
        .query(
            "SELECT s.id, s.monitor, s.location, u.checks, u.failures
             FROM series s LEFT JOIN uptime u ON u.series = s.id
             WHERE s.project = $1
             ORDER BY s.monitor, s.location",
            &[&project],
        )
        .await?;
    let pending = tx
        .query(
            "SELECT p.series, p.hour, p.checks, p.failures
             FROM rollup_pending p JOIN series s ON s.id = p.series
             WHERE s.project = $1 AND p.hour >= $2",
            &[&project, &first],
        )
        .await?;
    let mut index = HashMap::with_capacity(rows.len());
    let mut out = Vec::with_capacity(rows.len());
    let mut uncached = Vec::new();
    for r in &rows {
        let id: i32 = r.get(0);
        let mut u = SeriesUptime {
            monitor: r.get(1),
            location: r.get(2),
            checks: [0; 4],
            failures: [0; 4],
        };
        match (
            r.get::<_, Option<Vec<i64>>>(3),
            r.get::<_, Option<Vec<i64>>>(4),
        ) {
            (Some(checks), Some(failures)) => {
                for w in 0..4 {
                    u.checks[w] = count(checks.get(w));
                    u.failures[w] = count(failures.get(w));
                }
            }
            _ => uncached.push(id),
        }
        index.insert(id, out.len());
        out.push(u);
    }
    // A series rolled up since the last refresh of the cache (rare: upkeep refreshes the
    // series it rolls up) is counted from its rollups now.
    if !uncached.is_empty() {
        for (id, (checks, failures)) in count_rolled(tx, &uncached, now_us).await? {
            if let Some(&i) = index.get(&id) {
                out[i].checks = checks;
                out[i].failures = failures;
            }
        }
    }
    for r in &pending {
        let (id, hour): (i32, i32) = (r.get(0), r.get(1));
        let (checks, failures) = (
            u64::try_from(r.get::<_, i32>(2)).unwrap_or(0),
            u64::try_from(r.get::<_, i32>(3)).unwrap_or(0),
        );
        let Some(&i) = index.get(&id) else { continue };
        for (w, &start) in starts.iter().enumerate() {
            if hour >= start {
                out[i].checks[w] += checks;
                out[i].failures[w] += failures;
            }
        }
    }
    Ok(out)
}

fn count(n: Option<&i64>) -> u64 {
    n.map_or(0, |n| u64::try_from(*n).unwrap_or(0))
}

/// The rolled-up part of the uptime of `series` at `now_us`: per window, the daily rollup
/// of each whole day inside it (unless the day waits to be rolled up again) and the hourly
/// rollups of its other hours. Hours waiting to be rolled up are not in it.
async fn count_rolled(
    tx: &Transaction<'_>,
    series: &[i32],
    now_us: i64,
) -> Result<HashMap<i32, ([u64; 4], [u64; 4])>, StoreError> {
    let starts = window_starts(now_us).map(hour_index);
    let first_hour = starts.iter().copied().min().unwrap_or(0);
    let first_day = first_hour.div_euclid(24);
    let stale_days: BTreeSet<(i32, i32)> = tx
        .query(
            "SELECT series, day FROM daily_pending WHERE series = ANY($1) AND day >= $2",
            &[&series, &first_day],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let counts = |r: &tokio_postgres::Row| {
        let n = |i: usize| u64::try_from(r.get::<_, i32>(i)).unwrap_or(0);
        ((r.get::<_, i32>(0), r.get::<_, i32>(1)), (n(2), n(3)))
    };
    let daily: HashMap<(i32, i32), (u64, u64)> = tx
        .query(
            "SELECT series, day, checks, failures FROM daily
             WHERE series = ANY($1) AND day >= $2",
            &[&series, &first_day],
        )
        .await?
        .iter()
        .map(counts)
        .collect();
    let hourly: Vec<((i32, i32), (u64, u64))> = tx
        .query(
            "SELECT series, hour, checks, failures FROM hourly
             WHERE series = ANY($1) AND hour >= $2",
            &[&series, &first_hour],
        )
        .await?
        .iter()
        .map(counts)
        .collect();
    // A day counts whole when it is inside the window and its rollup is current.
    let whole_day = |s: i32, day: i32, start: i32| {
        day * 24 >= start && !stale_days.contains(&(s, day)) && daily.contains_key(&(s, day))
    };
    let mut out: HashMap<i32, ([u64; 4], [u64; 4])> =
        series.iter().map(|s| (*s, ([0; 4], [0; 4]))).collect();
    let mut add = |s: i32, w: usize, (c, f): (u64, u64)| {
        if let Some(e) = out.get_mut(&s) {
            e.0[w] += c;
            e.1[w] += f;
        }
    };
    for (w, &start) in starts.iter().enumerate() {
        for (&(s, day), &n) in &daily {
            if whole_day(s, day, start) {
                add(s, w, n);
            }
        }
        for &((s, h), n) in &hourly {
            if h >= start && !whole_day(s, h.div_euclid(24), start) {
                add(s, w, n);
            }
        }
    }
    Ok(out)
}

/// One bounded step of upkeep: partitions ahead, closed hours and days rolled up, the
/// cached uptime of the series rolled up (or not yet counted this hour) refreshed, the
/// latest results past the raw retention dropped, whole raw partitions dropped past it
/// once their hours are rolled up, and rollups pruned in batches.
pub(super) async fn maintain(
    tx: &Transaction<'_>,
    now_us: i64,
    retention: &Retention,
) -> Result<Maintenance, StoreError> {
    let mut done = Maintenance::default();
    super::windows::prune(tx, now_us).await?;
    let today = day_of(now_us);
    ensure_partitions(tx, &(today..=today + DAYS_AHEAD).collect()).await?;
    let current_hour = hour_index(now_us);

    // Closed hours, exact from the raw results.
    let claimed = tx
        .query(
            "DELETE FROM rollup_pending WHERE (series, hour) IN (
                 SELECT series, hour FROM rollup_pending WHERE hour < $1
                 ORDER BY hour, series LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING series, hour",
            &[&current_hour, &ROLLUP_BATCH],
        )
        .await?;
    done.more |= claimed.len() as i64 >= ROLLUP_BATCH;
    let claimed: Vec<(i32, i32)> = claimed.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut touched: BTreeSet<i32> = BTreeSet::new();
    if !claimed.is_empty() {
        let (series, hours): (Vec<i32>, Vec<i32>) = claimed.iter().copied().unzip();
        let raw = tx
            .query(
                "SELECT p.series, p.hour, r.status, r.total_us, r.cert_expiry_s, r.started_us
                 FROM unnest($1::int4[], $2::int4[]) AS p(series, hour)
                 JOIN results r ON r.series = p.series
                   AND r.started_us >= p.hour::int8 * 3600000000
                   AND r.started_us < (p.hour::int8 + 1) * 3600000000
                   AND NOT r.maintenance
                 ORDER BY p.series, p.hour, r.total_us",
                &[&series, &hours],
            )
            .await?;
        let mut buckets: BTreeMap<(i32, i32), Bucket> = BTreeMap::new();
        for r in &raw {
            let b = buckets.entry((r.get(0), r.get(1))).or_default();
            let status: i16 = r.get(2);
            b.totals.push(i64::from(r.get::<_, i32>(3)));
            b.failures += u64::from(status == 2);
            b.degraded += u64::from(status == 1);
            if let Some(left) = r
                .get::<_, Option<i64>>(4)
                .and_then(|expiry| days_left(expiry, r.get(5)))
            {
                b.min_days_left = Some(b.min_days_left.map_or(left, |m: i64| m.min(left)));
            }
        }
        // Hours of days whose partition was dropped: their earlier results are gone, so the
        // results that came later are added to the hour's rollup, then deleted.
        let days: Vec<i32> = claimed.iter().map(|c| c.1.div_euclid(24)).collect();
        let pruned: BTreeSet<i32> = tx
            .query(
                "SELECT day FROM raw_pruned_days WHERE day = ANY($1)",
                &[&days],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let merged: Vec<(i32, i32)> = buckets
            .keys()
            .filter(|(_, h)| pruned.contains(&h.div_euclid(24)))
            .copied()
            .collect();
        let mut earlier: HashMap<(i32, i32), Rollup> = HashMap::new();
        if !merged.is_empty() {
            let (ms, mh): (Vec<i32>, Vec<i32>) = merged.iter().copied().unzip();
            for r in &tx
                .query(
                    "SELECT h.series, h.hour, h.checks, h.failures, h.degraded, h.p50_us,
                            h.p95_us, h.max_us, h.min_days_left
                     FROM unnest($1::int4[], $2::int4[]) AS p(series, hour)
                     JOIN hourly h ON h.series = p.series AND h.hour = p.hour",
                    &[&ms, &mh],
                )
                .await?
            {
                let hour: i32 = r.get(1);
                earlier.insert((r.get(0), hour), rollup_of(r, 2, i64::from(hour) * HOUR_US));
            }
            done.raw_pruned += tx
                .execute(
                    "DELETE FROM results r USING unnest($1::int4[], $2::int4[]) AS p(series, hour)
                     WHERE r.series = p.series
                       AND r.started_us >= p.hour::int8 * 3600000000
                       AND r.started_us < (p.hour::int8 + 1) * 3600000000",
                    &[&ms, &mh],
                )
                .await?;
        }
        let rows: Vec<(i32, i32, Rollup)> = buckets
            .iter()
            .filter_map(|(&(s, h), b)| {
                let new = b.rollup(h);
                match earlier.get(&(s, h)) {
                    Some(before) => {
                        daily_rollup("", new.start_us, &[before.clone(), new]).map(|r| (s, h, r))
                    }
                    None => Some((s, h, new)),
                }
            })
            .collect();
        touched.extend(claimed.iter().map(|c| c.0));
        upsert_rollups(tx, "hourly", "hour", &rows).await?;
        done.hours_rolled = rows.len() as u64;
        let days: BTreeSet<(i32, i32)> = claimed
            .iter()
            .map(|&(s, h)| (s, h.div_euclid(24)))
            .collect();
        let (ds, dd): (Vec<i32>, Vec<i32>) = days.into_iter().unzip();
        tx.execute(
            "INSERT INTO daily_pending (series, day)
             SELECT * FROM unnest($1::int4[], $2::int4[]) ON CONFLICT DO NOTHING",
            &[&ds, &dd],
        )
        .await?;
    }

    // Closed days whose hours are all rolled up, from their hourly rollups.
    let current_day = i32::try_from(today).unwrap_or(i32::MAX);
    let days = tx
        .query(
            "DELETE FROM daily_pending d WHERE (series, day) IN (
                 SELECT series, day FROM daily_pending p WHERE day < $1
                   AND NOT EXISTS (SELECT 1 FROM rollup_pending h WHERE h.series = p.series
                       AND h.hour >= p.day * 24 AND h.hour < (p.day + 1) * 24)
                 ORDER BY day, series LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING series, day",
            &[&current_day, &ROLLUP_BATCH],
        )
        .await?;
    done.more |= days.len() as i64 >= ROLLUP_BATCH;
    if !days.is_empty() {
        let (series, day): (Vec<i32>, Vec<i32>) = days
            .iter()
            .map(|r| (r.get::<_, i32>(0), r.get::<_, i32>(1)))
            .unzip();
        let hourly = tx
            .query(
                "SELECT p.series, p.day, h.checks, h.failures, h.degraded, h.p50_us, h.p95_us,
                        h.max_us, h.min_days_left
                 FROM unnest($1::int4[], $2::int4[]) AS p(series, day)
                 JOIN hourly h ON h.series = p.series AND h.hour >= p.day * 24
                   AND h.hour < (p.day + 1) * 24
                 ORDER BY p.series, p.day, h.hour",
                &[&series, &day],
            )
            .await?;
        let mut groups: BTreeMap<(i32, i32), Vec<Rollup>> = BTreeMap::new();
        for r in &hourly {
            groups
                .entry((r.get(0), r.get(1)))
                .or_default()
                .push(rollup_of(r, 2, 0));
        }
        let rows: Vec<(i32, i32, Rollup)> = groups
            .iter()
            .filter_map(|(&(s, d), hours)| {
                daily_rollup("", i64::from(d) * DAY_US, hours).map(|r| (s, d, r))
            })
            .collect();
        touched.extend(series.iter().copied());
        upsert_rollups(tx, "daily", "day", &rows).await?;
        done.days_rolled = rows.len() as u64;
    }

    // The cached uptime: of the series rolled up now, and of those not counted this hour.
    let stale: Vec<i32> = tx
        .query(
            "SELECT s.id FROM series s LEFT JOIN uptime u ON u.series = s.id
             WHERE u.series IS NULL OR u.anchor_hour < $1
             ORDER BY s.id LIMIT $2",
            &[&current_hour, &ROLLUP_BATCH],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    done.more |= stale.len() as i64 >= ROLLUP_BATCH;
    touched.extend(stale);
    if !touched.is_empty() {
        let ids: Vec<i32> = touched.into_iter().collect();
        let counted = count_rolled(tx, &ids, now_us).await?;
        let (mut s, mut c, mut f) = (Vec::new(), Vec::new(), Vec::new());
        for (id, (checks, failures)) in counted {
            s.push(id);
            c.push(array_text(&checks));
            f.push(array_text(&failures));
        }
        tx.execute(
            "INSERT INTO uptime (series, anchor_hour, checks, failures)
             SELECT s, $2, c::int8[], f::int8[]
             FROM unnest($1::int4[], $3::text[], $4::text[]) AS t(s, c, f)
             ON CONFLICT (series) DO UPDATE SET anchor_hour = excluded.anchor_hour,
                 checks = excluded.checks, failures = excluded.failures",
            &[&s, &current_hour, &c, &f],
        )
        .await?;
    }

    // Retention: the latest results, whole raw partitions once their hours are rolled up,
    // rollups in batches.
    let raw_cut = now_us.saturating_sub(duration_us(retention.raw));
    tx.execute(
        "DELETE FROM latest_results WHERE started_us < $1",
        &[&raw_cut],
    )
    .await?;
    let partitions = tx
        .query(
            "SELECT c.relname FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             JOIN pg_namespace n ON n.oid = p.relnamespace
             WHERE p.relname = 'results' AND n.nspname = current_schema()
             ORDER BY c.relname",
            &[],
        )
        .await?;
    for p in &partitions {
        let name: String = p.get(0);
        let Some(day) = day_of_partition(&name) else {
            continue;
        };
        if (day + 1) * DAY_US > raw_cut {
            continue;
        }
        let (first, last) = (
            i32::try_from(day * 24).unwrap_or(i32::MAX),
            i32::try_from(day * 24 + 23).unwrap_or(i32::MAX),
        );
        let waiting: i64 = tx
            .query_one(
                "SELECT count(*) FROM rollup_pending WHERE hour BETWEEN $1 AND $2",
                &[&first, &last],
            )
            .await?
            .get(0);
        if waiting > 0 {
            done.more = true;
            continue;
        }
        let rows: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await?
            .get(0);
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await?;
        tx.batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
            .await?;
        let day = i32::try_from(day).unwrap_or(i32::MAX);
        tx.execute(
            "INSERT INTO raw_pruned_days (day) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&day],
        )
        .await?;
        done.raw_pruned += u64::try_from(rows).unwrap_or(0);
    }
    for (table, column, keep, width) in [
        ("hourly", "hour", retention.hourly, HOUR_US),
        ("daily", "day", retention.daily, DAY_US),
    ] {
        let cut = now_us.saturating_sub(duration_us(keep)).div_euclid(width);
        let cut = i32::try_from(cut.max(0)).unwrap_or(i32::MAX);
        let n = tx
            .execute(
                &format!(
                    "DELETE FROM {table} WHERE ctid IN (
                         SELECT ctid FROM {table} WHERE {column} < $1 LIMIT $2)"
                ),
                &[&cut, &PRUNE_BATCH],
            )
            .await?;
        done.rollups_pruned += n;
        done.more |= n as i64 >= PRUNE_BATCH;
    }
    Ok(done)
}

fn day_of_partition(name: &str) -> Option<i64> {
    let digits = name.strip_prefix("results_")?;
    if digits.len() != 8 {
        return None;
    }
    let year: i32 = digits[..4].parse().ok()?;
    let month: u8 = digits[4..6].parse().ok()?;
    let day: u8 = digits[6..].parse().ok()?;
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()?;
    Some(
        date.midnight()
            .assume_utc()
            .unix_timestamp()
            .div_euclid(86_400),
    )
}

/// The raw results of one series in one hour, their totals sorted.
#[derive(Default)]
struct Bucket {
    totals: Vec<i64>,
    failures: u64,
    degraded: u64,
    min_days_left: Option<i64>,
}

impl Bucket {
    fn rollup(&self, hour: i32) -> Rollup {
        Rollup {
            location: String::new(),
            start_us: i64::from(hour) * HOUR_US,
            checks: self.totals.len() as u64,
            failures: self.failures,
            degraded: self.degraded,
            p50_us: percentile(&self.totals, 0.50),
            p95_us: percentile(&self.totals, 0.95),
            max_us: self.totals.last().copied().unwrap_or(0),
            min_days_left: self.min_days_left,
        }
    }
}

async fn upsert_rollups(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    rows: &[(i32, i32, Rollup)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let clamp = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
    let series: Vec<i32> = rows.iter().map(|r| r.0).collect();
    let bucket: Vec<i32> = rows.iter().map(|r| r.1).collect();
    let checks: Vec<i32> = rows.iter().map(|r| clamp(r.2.checks)).collect();
    let failures: Vec<i32> = rows.iter().map(|r| clamp(r.2.failures)).collect();
    let degraded: Vec<i32> = rows.iter().map(|r| clamp(r.2.degraded)).collect();
    let p50: Vec<i32> = rows.iter().map(|r| micros_i32(r.2.p50_us)).collect();
    let p95: Vec<i32> = rows.iter().map(|r| micros_i32(r.2.p95_us)).collect();
    let max: Vec<i32> = rows.iter().map(|r| micros_i32(r.2.max_us)).collect();
    let days: Vec<Option<i32>> = rows
        .iter()
        .map(|r| {
            r.2.min_days_left
                .map(|d| i32::try_from(d).unwrap_or(if d < 0 { i32::MIN } else { i32::MAX }))
        })
        .collect();
    let params: [&(dyn ToSql + Sync); 9] = [
        &series, &bucket, &checks, &failures, &degraded, &p50, &p95, &max, &days,
    ];
    let mut sql = String::new();
    let _ = write!(
        sql,
        "INSERT INTO {table} (series, {column}, checks, failures, degraded, p50_us, p95_us,
             max_us, min_days_left)
         SELECT * FROM unnest($1::int4[], $2::int4[], $3::int4[], $4::int4[], $5::int4[],
             $6::int4[], $7::int4[], $8::int4[], $9::int4[])
         ON CONFLICT (series, {column}) DO UPDATE SET checks = excluded.checks,
             failures = excluded.failures, degraded = excluded.degraded,
             p50_us = excluded.p50_us, p95_us = excluded.p95_us, max_us = excluded.max_us,
             min_days_left = excluded.min_days_left"
    );
    tx.execute(&sql, &params).await?;
    Ok(())
}

fn array_text(values: &[u64; 4]) -> String {
    format!(
        "{{{},{},{},{}}}",
        values[0], values[1], values[2], values[3]
    )
}
