//! The PostgreSQL schema: numbered migrations, applied in order at open under an advisory
//! lock (so that replicas starting at once apply each exactly once) and recorded in
//! `schema_migrations`.

use deadpool_postgres::Client;

use super::now;
use crate::store::StoreError;

/// The advisory lock key (`pg_advisory_xact_lock`) that serialises migrations.
const MIGRATION_LOCK: i64 = 0x636f_6e74_726f_6c01; // "control" + 1

/// The schema, one numbered migration per change, each applied in the transaction that
/// records it. Text keys use the "C" collation so that they sort bytewise, as on SQLite.
/// An empty migration is recorded as applied. Never edit a released migration: add one.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"CREATE TABLE projects (
            name TEXT COLLATE "C" PRIMARY KEY,
            created_at TEXT NOT NULL,
            current_version BIGINT
        );
        CREATE TABLE tokens (
            hash TEXT COLLATE "C" PRIMARY KEY,
            project TEXT COLLATE "C" NOT NULL REFERENCES projects(name),
            created_at TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('deploy', 'agent', 'read')),
            last_used_at TEXT
        );
        CREATE INDEX tokens_by_project ON tokens (project, created_at);
        CREATE TABLE monitors (
            project TEXT COLLATE "C" NOT NULL REFERENCES projects(name),
            id TEXT COLLATE "C" NOT NULL,
            spec TEXT NOT NULL,
            PRIMARY KEY (project, id)
        );
        CREATE TABLE versions (
            project TEXT COLLATE "C" NOT NULL REFERENCES projects(name),
            number BIGINT NOT NULL,
            hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            git TEXT NOT NULL,
            bundle TEXT NOT NULL,
            monitors BIGINT NOT NULL,
            rollback_of BIGINT,
            PRIMARY KEY (project, number)
        );
        CREATE TABLE agent_ids (
            project TEXT COLLATE "C" NOT NULL REFERENCES projects(name),
            agent TEXT COLLATE "C" NOT NULL,
            token TEXT COLLATE "C" NOT NULL,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            PRIMARY KEY (project, agent)
        );
        CREATE INDEX agent_ids_by_token ON agent_ids (token);"#,
    ),
    (2, super::results::SCHEMA),
    (3, super::replica::SCHEMA),
    (4, super::windows::SCHEMA),
];

/// Applies the migrations the database does not have yet, in one transaction that first
/// takes the migration lock: a second replica opening at once waits, then finds them
/// applied. [`StoreError::SchemaTooNew`] when the database has migrations this build
/// does not know.
pub(super) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )
    .await?;
    let found: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        if !sql.trim().is_empty() {
            tx.batch_execute(sql).await?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &now()],
        )
        .await?;
        tracing::info!(version, "applied postgres schema migration");
    }
    tx.commit().await?;
    Ok(())
}

/// The highest migration applied.
pub(super) async fn version(client: &Client) -> Result<i64, StoreError> {
    Ok(client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .await?
        .get(0))
}
