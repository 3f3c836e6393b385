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
    tx.commit()?;
    Ok(())
}
