//! Unit tests of what only the SQLite store has: its migrations of old files. What every
//! backend does (deploys, versions, tokens, agent ids, results) is in the store suite,
//! `control-plane/tests/store.rs`.
use monitor_spec::Status;
use time::OffsetDateTime;

use super::schema::MIGRATIONS;
use super::*;

fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "control-plane-unit-{}-{name}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("db.sqlite")
}

#[test]
fn migrations_apply_once_and_reopen() {
    let path = temp_db("migrate");
    let store = SqliteStore::open(&path).unwrap();
    let latest = MIGRATIONS.last().unwrap().0;
    assert_eq!(store.schema_version().unwrap(), latest);
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), latest);
    let rows: i64 = store
        .writer()
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, latest);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn tokens_from_before_roles_are_deploy_tokens() {
    let path = temp_db("roles");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 'then');
             INSERT INTO projects (name, created_at) VALUES ('p', 'then');",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tokens (hash, project, created_at) VALUES (?1, 'p', 'then')",
            [TokenHash::of("old").to_hex()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.token_owner(&TokenHash::of("old")).unwrap(),
        Some(TokenOwner {
            project: "p".into(),
            role: Role::Deploy
        })
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

fn old_result(status: &str, started_at: &str, error: Option<&str>) -> String {
    serde_json::json!({
        "id": "a", "name": "A", "target": "a.example:443", "status": status,
        "error": error.map(|kind| serde_json::json!({"kind": kind, "message": "m", "hints": []})),
        "timings": {"dns_ms": 1.5, "connect_ms": 2.0, "tls_ms": null, "first_byte_ms": null,
                    "total_ms": 12.25},
        "address": "192.0.2.1:443", "attempts": [], "assertions": [],
        "response_excerpt": "", "started_at": started_at,
        "tls": {"version": "TLSv1.3", "cipher": null, "alpn": null, "server_name": "a.example",
                "verified": true, "problems": [],
                "chain": [{"subject": "CN=a", "issuer": "CN=ca", "sans": [], "serial": "01",
                           "not_before": "2025-01-01T00:00:00Z",
                           "not_after": "2026-01-01T00:00:00Z", "days_left": 30, "sha256": "00",
                           "key_type": "EC", "key_bits": 256, "signature_algorithm": "x",
                           "self_issued": false}],
                "earliest_expiry": "2026-01-01T00:00:00Z", "days_left": 30,
                "earliest_expiry_subject": "CN=a", "legacy": null}
    })
    .to_string()
}

#[test]
fn results_of_an_old_database_move_to_typed_columns() {
    let path = temp_db("old-results");
    let passed = old_result("passed", "2025-12-01T00:00:00Z", None);
    let failed = old_result("failed", "2025-12-01T00:01:00Z", Some("refused"));
    {
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY NOT NULL, applied_at TEXT NOT NULL);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        for (version, sql) in &MIGRATIONS[..4] {
            tx.execute_batch(sql).unwrap();
            tx.execute(
                "INSERT INTO schema_migrations VALUES (?1, 'then')",
                [version],
            )
            .unwrap();
        }
        tx.execute_batch("INSERT INTO projects (name, created_at) VALUES ('p', 'then');")
            .unwrap();
        let start = 1_764_547_200_000_000_i64; // 2025-12-01T00:00:00Z
        for (tick, status, started, json) in [
            (1, "passed", start, &passed),
            (2, "failed", start + 60_000_000, &failed),
        ] {
            tx.execute(
                "INSERT INTO results (project, id, monitor, location, agent, tick, status,
                    started_at, received_at, result)
                 VALUES ('p', ?1, 'a', 'eu', 'agent-1', ?2, ?3, ?4, ?5, ?6)",
                params![
                    format!("a/eu/{tick}"),
                    tick,
                    status,
                    started,
                    started + 5,
                    json
                ],
            )
            .unwrap();
        }
        tx.execute(
            "INSERT INTO latest_results VALUES ('p', 'a', 'eu', 'a/eu/2', ?1, 1)",
            [start + 60_000_000],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let latest = store.latest_results("p").unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        (latest[0].consecutive_failures, latest[0].json.as_ref()),
        (1, Some(&failed))
    );
    let rows = store
        .results(
            "p",
            &ResultQuery {
                monitor: "a".into(),
                location: None,
                from_us: None,
                to_us: None,
                limit: 10,
            },
        )
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, "a/eu/1");
    assert_eq!(rows[0].json, None);
    assert_eq!(rows[0].received_us, rows[0].started_us + 5);
    assert_eq!(rows[0].facts.total_us, 12_250);
    assert_eq!(rows[0].facts.dns_us, Some(1_500));
    assert_eq!(rows[0].facts.address.as_deref(), Some("192.0.2.1:443"));
    assert_eq!(rows[0].facts.tls_version.as_deref(), Some("TLSv1.3"));
    assert_eq!(rows[0].facts.cert_expiry_s, Some(1_767_225_600));
    assert_eq!(rows[1].status, Status::Failed);
    assert_eq!(rows[1].facts.error, Some(monitor_spec::ErrorKind::Refused));
    assert_eq!(rows[1].json.as_deref(), Some(failed.as_str()));
    let old_tables: i64 = store
        .writer()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('results', 'latest_results')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old_tables, 0);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
