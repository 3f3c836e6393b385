//! The database schema: numbered migrations applied in order at open.

use rusqlite::{Connection, TransactionBehavior, params};

use super::rows::now;
use crate::store::StoreError;

/// The schema, one numbered migration per change; applied in order at open, each in its own
/// transaction, and recorded in `schema_migrations`. Never edit a released migration: add one.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE projects (
        name TEXT PRIMARY KEY NOT NULL,
        created_at TEXT NOT NULL,
        current_version INTEGER
    );
    CREATE TABLE tokens (
        hash TEXT PRIMARY KEY NOT NULL,
        project TEXT NOT NULL REFERENCES projects(name),
        created_at TEXT NOT NULL
    );
    CREATE TABLE monitors (
        project TEXT NOT NULL REFERENCES projects(name),
        id TEXT NOT NULL,
        spec TEXT NOT NULL,
        PRIMARY KEY (project, id)
    ) WITHOUT ROWID;
    CREATE TABLE versions (
        project TEXT NOT NULL REFERENCES projects(name),
        number INTEGER NOT NULL,
        hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        git TEXT NOT NULL,
        bundle TEXT NOT NULL,
        monitors INTEGER NOT NULL,
        rollback_of INTEGER,
        PRIMARY KEY (project, number)
    );",
    ),
    (
        2,
        "ALTER TABLE tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'deploy'
            CHECK (role IN ('deploy', 'agent'));",
    ),
    (
        3,
        // Times are unix microseconds, so that they compare and sort as instants.
        "CREATE TABLE results (
            project TEXT NOT NULL REFERENCES projects(name),
            id TEXT NOT NULL,
            monitor TEXT NOT NULL,
            location TEXT NOT NULL,
            agent TEXT NOT NULL,
            tick INTEGER NOT NULL,
            status TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            received_at INTEGER NOT NULL,
            result TEXT NOT NULL,
            UNIQUE (project, id)
        );
        CREATE INDEX results_by_monitor ON results (project, monitor, started_at);
        CREATE INDEX results_by_start ON results (project, started_at);
        CREATE TABLE latest_results (
            project TEXT NOT NULL REFERENCES projects(name),
            monitor TEXT NOT NULL,
            location TEXT NOT NULL,
            result_id TEXT NOT NULL,
            started_at INTEGER NOT NULL,
            consecutive_failures INTEGER NOT NULL,
            PRIMARY KEY (project, monitor, location)
        ) WITHOUT ROWID;",
    ),
    (
        4,
        // Tokens gain the role `read` (a CHECK cannot be altered: the table is rebuilt) and
        // the time of their last use; agent ids are bound to the token that first used them.
        "CREATE TABLE tokens_v4 (
            hash TEXT PRIMARY KEY NOT NULL,
            project TEXT NOT NULL REFERENCES projects(name),
            created_at TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'deploy' CHECK (role IN ('deploy', 'agent', 'read')),
            last_used_at TEXT
        );
        INSERT INTO tokens_v4 (hash, project, created_at, role)
            SELECT hash, project, created_at, role FROM tokens;
        DROP TABLE tokens;
        ALTER TABLE tokens_v4 RENAME TO tokens;
        CREATE TABLE agent_ids (
            project TEXT NOT NULL REFERENCES projects(name),
            agent TEXT NOT NULL,
            token TEXT NOT NULL,
            first_seen INTEGER NOT NULL,
            last_seen INTEGER NOT NULL,
            PRIMARY KEY (project, agent)
        ) WITHOUT ROWID;
        CREATE INDEX agent_ids_by_token ON agent_ids (token);",
    ),
    (
        5,
        // Results in typed columns, keyed by an interned series (project, monitor,
        // location) and the tick: times in unix microseconds (the receipt as a delta from
        // the start), status 0 passed, 1 degraded, 2 failed, agent, address, TLS version and
        // error kind interned in `names`, the certificate's earliest expiry in unix seconds.
        // The full JSON only for results that did not pass, and in `latest`. Hourly and
        // daily rollups per series, and `live_counts` of checks and failures per series
        // and hour not rolled up yet (for uptime); `rollup_progress` says how far rolling
        // went (step 0 hours, 1 days: buckets before `start` are rolled for every series,
        // `start` for the series below `next_series`); `rollup_dirty` lists the buckets to
        // roll again. The rows of migration 3's tables are moved by
        // `results::move_results`.
        "CREATE TABLE series (
            id INTEGER PRIMARY KEY,
            project TEXT NOT NULL REFERENCES projects(name),
            monitor TEXT NOT NULL,
            location TEXT NOT NULL,
            UNIQUE (project, monitor, location)
        );
        CREATE TABLE names (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE
        );
        CREATE TABLE raw_results (
            series INTEGER NOT NULL,
            tick INTEGER NOT NULL,
            started INTEGER NOT NULL,
            received INTEGER NOT NULL,
            status INTEGER NOT NULL,
            total INTEGER NOT NULL,
            error INTEGER,
            dns INTEGER,
            connect INTEGER,
            tls INTEGER,
            first_byte INTEGER,
            agent INTEGER NOT NULL,
            address INTEGER,
            tls_version INTEGER,
            cert_expiry INTEGER,
            json TEXT,
            PRIMARY KEY (series, tick)
        ) WITHOUT ROWID;
        CREATE INDEX raw_results_by_start ON raw_results (series, started);
        CREATE TABLE latest (
            series INTEGER PRIMARY KEY NOT NULL,
            tick INTEGER NOT NULL,
            started INTEGER NOT NULL,
            agent INTEGER NOT NULL,
            consecutive_failures INTEGER NOT NULL,
            json TEXT NOT NULL
        );
        CREATE TABLE rollups_hourly (
            series INTEGER NOT NULL,
            start INTEGER NOT NULL,
            checks INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            degraded INTEGER NOT NULL,
            p50 INTEGER NOT NULL,
            p95 INTEGER NOT NULL,
            max INTEGER NOT NULL,
            min_days_left INTEGER,
            PRIMARY KEY (series, start)
        ) WITHOUT ROWID;
        CREATE TABLE rollups_daily (
            series INTEGER NOT NULL,
            start INTEGER NOT NULL,
            checks INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            degraded INTEGER NOT NULL,
            p50 INTEGER NOT NULL,
            p95 INTEGER NOT NULL,
            max INTEGER NOT NULL,
            min_days_left INTEGER,
            PRIMARY KEY (series, start)
        ) WITHOUT ROWID;
        CREATE TABLE live_counts (
            series INTEGER NOT NULL,
            hour INTEGER NOT NULL,
            checks INTEGER NOT NULL,
            failures INTEGER NOT NULL,
            PRIMARY KEY (series, hour)
        ) WITHOUT ROWID;
        CREATE TABLE rollup_progress (
            step INTEGER PRIMARY KEY NOT NULL,
            start INTEGER NOT NULL,
            next_series INTEGER NOT NULL
        );
        CREATE TABLE rollup_dirty (
            step INTEGER NOT NULL,
            start INTEGER NOT NULL,
            series INTEGER NOT NULL,
            PRIMARY KEY (step, start, series)
        ) WITHOUT ROWID;",
    ),
    (
        6,
        // Maintenance windows (issue 21): the current version's declared windows (canonical
        // JSON array, NULL when none), whether a result started in a window (left out of
        // uptime, rollups and the run of failures), and the ad-hoc windows (their JSON and
        // their end in unix microseconds, kept a while after it).
        "ALTER TABLE projects ADD COLUMN maintenance TEXT;
        ALTER TABLE raw_results ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE latest ADD COLUMN maintenance INTEGER NOT NULL DEFAULT 0;
        CREATE TABLE ad_hoc_windows (
            project TEXT NOT NULL REFERENCES projects(name),
            id TEXT NOT NULL,
            ends INTEGER NOT NULL,
            spec TEXT NOT NULL,
            PRIMARY KEY (project, id)
        ) WITHOUT ROWID;
        CREATE INDEX ad_hoc_windows_by_end ON ad_hoc_windows (project, ends);
        CREATE INDEX ad_hoc_windows_ended ON ad_hoc_windows (ends);",
    ),
];

/// Applies the migrations the database does not have yet, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            applied_at TEXT NOT NULL
        )",
    )?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            params![version, now()],
        )?;
        tracing::info!(version, "applied schema migration");
    }
    // Migration 5's move of the results, once the tables have every later column too.
    if found < 5 && known >= 5 {
        super::upkeep::move_results(&tx)?;
    }
    tx.commit()?;
    Ok(())
}
