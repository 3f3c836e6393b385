//! Unit tests of the SQLite store: migrations, deploys, versions, tokens and results.
use monitor_spec::api::Git;
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

fn set(ids: &[(&str, u16)]) -> MonitorSet {
    let bundle = monitor_spec::bundle::Bundle::new(
        ids.iter()
            .map(|(id, port)| monitor_spec::TcpMonitor::new(*id, "h.internal", *port))
            .collect(),
    );
    MonitorSet::from_bundle(&bundle).unwrap()
}

fn deploy(store: &SqliteStore, monitors: MonitorSet, prune: bool) -> DeployOutcome {
    store
        .deploy(
            "p",
            DeployInput {
                monitors,
                prune,
                dry_run: false,
                git: Git::default(),
            },
        )
        .unwrap()
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
fn deploy_rollback_destroy() {
    let path = temp_db("flow");
    let store = SqliteStore::open(&path).unwrap();
    store
        .create_token("p", &TokenHash::of("t"), Role::Deploy)
        .unwrap();
    store
        .create_token("p", &TokenHash::of("a"), Role::Agent)
        .unwrap();
    let owner = |t: &str| store.token_owner(&TokenHash::of(t)).unwrap();
    assert_eq!(
        owner("t"),
        Some(TokenOwner {
            project: "p".into(),
            role: Role::Deploy
        })
    );
    assert_eq!(owner("a").unwrap().role, Role::Agent);
    assert_eq!(owner("u"), None);

    let v1 = set(&[("a", 1), ("b", 2)]);
    let first = deploy(&store, v1.clone(), false);
    assert!(first.applied);
    assert_eq!(first.version, Some(1));
    assert_eq!(store.monitors("p").unwrap(), v1);
    let again = deploy(&store, v1.clone(), true);
    assert!(!again.applied);
    assert_eq!(again.version, Some(1));

    let v2 = set(&[("a", 3)]);
    let second = deploy(&store, v2.clone(), true);
    assert_eq!(second.version, Some(2));
    assert_eq!(second.diff.deleted, ["b"]);
    assert_eq!(store.monitors("p").unwrap(), v2);

    let back = store.rollback("p", 1).unwrap();
    assert_eq!(back.version, Some(3));
    assert_eq!(store.monitors("p").unwrap(), v1);
    let versions = store.versions("p").unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(versions[0].rollback_of, Some(1));
    assert_eq!(versions[0].hash, versions[2].hash);
    assert_eq!(versions[0].hash, v1.hash());
    let stored = store.version("p", 2).unwrap().unwrap();
    assert_eq!(stored.bundle_json, v2.bundle_json());
    assert!(matches!(
        store.rollback("p", 9),
        Err(StoreError::UnknownVersion(9))
    ));
    assert!(!store.rollback("p", 3).unwrap().applied);

    assert_eq!(store.destroy("p").unwrap(), 2);
    assert!(store.monitors("p").unwrap().is_empty());
    let after = deploy(&store, MonitorSet::new(), true);
    assert_eq!((after.applied, after.version), (false, None));
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

#[test]
fn agent_ids_bind_to_one_token_up_to_the_limit_and_expire() {
    use crate::store::{AgentBinding, AgentClaim};
    let path = temp_db("agent-ids");
    let store = SqliteStore::open(&path).unwrap();
    let (a, b) = (TokenHash::of("a"), TokenHash::of("b"));
    store.create_token("p", &a, Role::Agent).unwrap();
    store.create_token("p", &b, Role::Agent).unwrap();
    let check = |agent: &str, token: &TokenHash, now_us: i64, expected: AgentBinding| {
        let claim = AgentClaim {
            project: "p",
            agent,
            token,
            now_us,
            ttl_us: 100,
            max_per_token: 2,
        };
        assert_eq!(
            store.bind_agent(&claim).unwrap(),
            expected,
            "{agent} at {now_us}"
        );
    };
    check("x", &a, 0, AgentBinding::Bound);
    check("x", &a, 50, AgentBinding::Bound);
    check("x", &b, 60, AgentBinding::Taken);
    check("y", &a, 60, AgentBinding::Bound);
    check("z", &a, 70, AgentBinding::Full(2));
    check("z", &b, 70, AgentBinding::Bound);
    // x was last used at 50: at 151 it is released, and a has room again.
    check("x", &b, 140, AgentBinding::Taken);
    check("x", &b, 151, AgentBinding::Bound);
    check("w", &a, 155, AgentBinding::Bound);
    let listed: Vec<(String, Vec<String>)> = store
        .tokens()
        .unwrap()
        .into_iter()
        .map(|t| (t.id, t.agents))
        .collect();
    let id = |t: &TokenHash| t.to_hex()[..12].to_owned();
    let mut expected = vec![
        (id(&a), vec!["w".to_owned(), "y".to_owned()]),
        (id(&b), vec!["x".to_owned(), "z".to_owned()]),
    ];
    expected.sort();
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, expected);
    // Revoking releases the ids.
    let revoked = store.revoke_token(&id(&a)).unwrap().unwrap();
    assert_eq!(revoked.agents, ["w", "y"]);
    assert_eq!(store.token_owner(&a).unwrap(), None);
    assert_eq!(store.revoke_token(&id(&a)).unwrap(), None);
    check("y", &b, 156, AgentBinding::Full(2));
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
