//! Tokens, deploys, versions, rollbacks, destroys and agent ids in the store, on each
//! backend; then what only PostgreSQL has: replicas deploying at once, migrations applied
//! once by replicas opening at once, and TLS to the database.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use control_plane::store::{AgentBinding, AgentClaim, DeployInput, DeployOutcome};
use control_plane::token::TokenHash;
use control_plane::{MonitorSet, PgStore, Role, Store, StoreError, TokenOwner};
use monitor_spec::api::Git;

use crate::{Db, server};

fn set(ids: &[(&str, u16)]) -> MonitorSet {
    let bundle = monitor_spec::bundle::Bundle::new(
        ids.iter()
            .map(|(id, port)| monitor_spec::TcpMonitor::new(*id, "h.internal", *port))
            .collect(),
    );
    MonitorSet::from_bundle(&bundle).unwrap()
}

fn input(monitors: MonitorSet, prune: bool, dry_run: bool) -> DeployInput {
    DeployInput {
        monitors,
        prune,
        dry_run,
        git: Git::default(),
    }
}

fn deploy(store: &dyn Store, monitors: MonitorSet, prune: bool) -> DeployOutcome {
    store.deploy("p", input(monitors, prune, false)).unwrap()
}

fn tokens_name_their_project_and_role(store: &dyn Store) {
    store
        .create_token("p", &TokenHash::of("t"), Role::Deploy)
        .unwrap();
    store
        .create_token("p", &TokenHash::of("a"), Role::Agent)
        .unwrap();
    store
        .create_token("q", &TokenHash::of("r"), Role::Read)
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
    assert_eq!(owner("r").unwrap().project, "q");
    assert_eq!(owner("u"), None);
    assert_eq!(store.projects().unwrap(), ["p", "q"]);
    // The same token twice is refused.
    assert!(
        store
            .create_token("p", &TokenHash::of("t"), Role::Read)
            .is_err()
    );
}

fn tokens_are_listed_touched_and_revoked(store: &dyn Store) {
    let (a, b) = (TokenHash::of("a"), TokenHash::of("b"));
    store.create_token("p", &a, Role::Deploy).unwrap();
    store.create_token("p", &b, Role::Read).unwrap();
    store.touch_token(&a, "2026-01-02T03:04:00Z").unwrap();
    let listed = store.tokens().unwrap();
    assert_eq!(listed.len(), 2);
    let find = |t: &TokenHash| {
        let id = &t.to_hex()[..12];
        listed.iter().find(|i| i.id == id).unwrap().clone()
    };
    assert_eq!(
        find(&a).last_used_at.as_deref(),
        Some("2026-01-02T03:04:00Z")
    );
    assert_eq!(find(&b).last_used_at, None);
    assert_eq!(find(&b).role, Role::Read);
    assert!(find(&a).agents.is_empty());
    // Ids are 12 hex digits, any case; anything else revokes nothing.
    let id = a.to_hex()[..12].to_ascii_uppercase();
    for bad in ["", "xyz", &a.to_hex()[..11], &a.to_hex()] {
        assert_eq!(store.revoke_token(bad).unwrap(), None, "{bad}");
    }
    let revoked = store.revoke_token(&id).unwrap().unwrap();
    assert_eq!(revoked.project, "p");
    assert_eq!(store.token_owner(&a).unwrap(), None);
    assert_eq!(store.tokens().unwrap().len(), 1);
}

fn deploy_rollback_destroy(store: &dyn Store) {
    let v1 = set(&[("a", 1), ("b", 2)]);
    let first = deploy(store, v1.clone(), false);
    assert!(first.applied);
    assert_eq!(first.version, Some(1));
    assert_eq!(first.diff.created, ["a", "b"]);
    assert_eq!(store.monitors("p").unwrap(), v1);
    let again = deploy(store, v1.clone(), true);
    assert!(!again.applied);
    assert_eq!(again.version, Some(1));

    let v2 = set(&[("a", 3)]);
    let second = deploy(store, v2.clone(), true);
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
    assert_eq!(versions[0].monitors, 2);
    assert_eq!(versions[0].hash, versions[2].hash);
    assert_eq!(versions[0].hash, v1.hash());
    let stored = store.version("p", 2).unwrap().unwrap();
    assert_eq!(stored.bundle_json, v2.bundle_json());
    assert_eq!(stored.info.version, 2);
    assert_eq!(store.version("p", 9).unwrap(), None);
    assert_eq!(store.version("p", u64::MAX).unwrap(), None);
    assert!(matches!(
        store.rollback("p", 9),
        Err(StoreError::UnknownVersion(9))
    ));
    assert!(matches!(
        store.rollback("p", u64::MAX),
        Err(StoreError::UnknownVersion(u64::MAX))
    ));
    assert!(!store.rollback("p", 3).unwrap().applied);

    assert_eq!(store.destroy("p").unwrap(), 2);
    assert!(store.monitors("p").unwrap().is_empty());
    assert_eq!(store.current_version("p").unwrap(), None);
    assert_eq!(store.versions("p").unwrap().len(), 3, "history stays");
    let after = deploy(store, MonitorSet::new(), true);
    assert_eq!((after.applied, after.version), (false, None));
    assert_eq!(store.destroy("nothing").unwrap(), 0);
}

fn dry_runs_and_keeps_change_nothing(store: &dyn Store) {
    let v1 = set(&[("a", 1), ("b", 2)]);
    let dry = store.deploy("p", input(v1.clone(), false, true)).unwrap();
    assert!(!dry.applied);
    assert_eq!(dry.version, None);
    assert_eq!(dry.diff.created, ["a", "b"]);
    assert!(store.monitors("p").unwrap().is_empty());
    deploy(store, v1.clone(), false);
    // Without prune, monitors the bundle lacks are kept.
    let kept = deploy(store, set(&[("c", 3)]), false);
    assert_eq!(kept.diff.kept, ["a", "b"]);
    assert_eq!(store.monitors("p").unwrap().len(), 3);
    let (version, monitors) = store.current_set("p").unwrap();
    assert_eq!(version, Some(2));
    assert_eq!(monitors.len(), 3);
    let dry = store
        .deploy("p", input(set(&[("a", 9)]), true, true))
        .unwrap();
    assert_eq!(dry.version, Some(2));
    assert_eq!(dry.diff.deleted, ["b", "c"]);
    assert_eq!(dry.diff.updated.len(), 1);
    assert_eq!(store.current_version("p").unwrap(), Some(2));
    // Projects do not see each other's monitors.
    assert!(store.monitors("other").unwrap().is_empty());
    assert_eq!(
        store.current_set("other").unwrap(),
        (None, MonitorSet::new())
    );
}

fn agent_ids_bind_to_one_token_up_to_the_limit_and_expire(store: &dyn Store) {
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
    let mut listed: Vec<(String, Vec<String>)> = store
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
    listed.sort();
    assert_eq!(listed, expected);
    // Revoking releases the ids.
    let revoked = store.revoke_token(&id(&a)).unwrap().unwrap();
    assert_eq!(revoked.agents, ["w", "y"]);
    assert_eq!(store.token_owner(&a).unwrap(), None);
    assert_eq!(store.revoke_token(&id(&a)).unwrap(), None);
    check("y", &b, 156, AgentBinding::Full(2));
}

fn names_sort_bytewise(store: &dyn Store) {
    for project in ["b", "B", "a-1", "a", "_x"] {
        store
            .create_token(project, &TokenHash::of(project), Role::Read)
            .unwrap();
    }
    assert_eq!(store.projects().unwrap(), ["B", "_x", "a", "a-1", "b"]);
    let ids = ["b", "B", "a.x", "a"];
    let monitors = set(&ids.iter().map(|id| (*id, 1)).collect::<Vec<_>>());
    deploy(store, monitors, true);
    let stored: Vec<String> = store
        .monitors("p")
        .unwrap()
        .iter()
        .map(|(id, _)| id.to_owned())
        .collect();
    assert_eq!(stored, ["B", "a", "a.x", "b"]);
}

crate::store_cases!(
    tokens_name_their_project_and_role,
    tokens_are_listed_touched_and_revoked,
    deploy_rollback_destroy,
    dry_runs_and_keeps_change_nothing,
    agent_ids_bind_to_one_token_up_to_the_limit_and_expire,
    names_sort_bytewise,
);

/// Runs `sql` on the database of `db` as the superuser; psql's output, trimmed.
fn psql(db: &Db, sql: &str) -> String {
    let url = db.url().unwrap();
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    server().psql(name, sql).unwrap().trim().to_owned()
}

#[test]
fn postgres_replicas_deploying_at_once_one_gets_a_conflict() {
    let db = Db::postgres();
    let one = Arc::new(PgStore::open(&db.url().unwrap()).unwrap());
    let two = PgStore::open(&db.url().unwrap()).unwrap();
    one.hold_lock(Duration::from_secs(2));
    let first = thread::spawn({
        let one = Arc::clone(&one);
        move || one.deploy("p", input(set(&[("a", 1)]), true, false))
    });
    // Wait until the first holds the project's lock inside its transaction.
    let held = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted";
    while psql(&db, held) != "1" {
        assert!(
            !first.is_finished(),
            "the first deploy ended before it was seen"
        );
        thread::sleep(Duration::from_millis(10));
    }
    match two.deploy("p", input(set(&[("b", 2)]), true, false)) {
        Err(StoreError::Conflict(project)) => assert_eq!(project, "p"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(two.rollback("p", 1), Err(StoreError::Conflict(_))));
    assert!(matches!(two.destroy("p"), Err(StoreError::Conflict(_))));
    // Another project is not held up; dry runs take no lock.
    assert!(
        two.deploy("q", input(set(&[("b", 2)]), true, false))
            .unwrap()
            .applied
    );
    assert!(
        !two.deploy("p", input(set(&[("b", 2)]), true, true))
            .unwrap()
            .applied
    );
    let outcome = first.join().unwrap().unwrap();
    assert_eq!((outcome.applied, outcome.version), (true, Some(1)));
    // Once it is done, the second replica deploys.
    let outcome = two
        .deploy("p", input(set(&[("b", 2)]), true, false))
        .unwrap();
    assert_eq!(outcome.version, Some(2));
    assert_eq!(one.monitors("p").unwrap(), set(&[("b", 2)]));
}

#[test]
fn postgres_migrations_apply_once_when_replicas_open_at_once() {
    let db = Db::postgres();
    // `Db::postgres` applied them: start again from an empty database.
    psql(&db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    let url = db.url().unwrap();
    let barrier = Arc::new(Barrier::new(4));
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let (url, barrier) = (url.clone(), Arc::clone(&barrier));
            thread::spawn(move || {
                barrier.wait();
                PgStore::open(&url).map(|s| s.schema_version())
            })
        })
        .collect();
    let versions: Vec<i64> = openers
        .into_iter()
        .map(|t| t.join().unwrap().unwrap().unwrap())
        .collect();
    assert!(
        versions.iter().all(|v| *v == versions[0] && *v > 0),
        "{versions:?}"
    );
    let rows = psql(&db, "SELECT COUNT(*) FROM schema_migrations");
    assert_eq!(rows, versions[0].to_string());
    // A database a newer build migrated is refused.
    psql(
        &db,
        "INSERT INTO schema_migrations (version, applied_at) VALUES (999, 'later')",
    );
    match PgStore::open(&url) {
        Err(StoreError::SchemaTooNew { found: 999, known }) => assert_eq!(known, versions[0]),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn postgres_tls_verify_full_checks_the_root() {
    let db = Db::postgres();
    let url = db.url().unwrap();
    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let password = Some(monitor_testing::postgres::PASSWORD);
    let root = server().root_cert().display().to_string();
    for host in ["localhost", "127.0.0.1"] {
        let tls = server().url_without_password(
            host,
            name,
            &format!("sslmode=verify-full&sslrootcert={root}"),
        );
        let store = PgStore::open_with_password(&tls, password).unwrap();
        store
            .create_token("p", &TokenHash::of(host), Role::Read)
            .unwrap();
        assert!(store.token_owner(&TokenHash::of(host)).unwrap().is_some());
        // Its connection is encrypted.
        let encrypted = psql(
            &db,
            "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE s.ssl AND a.application_name = 'control-plane'",
        );
        assert_ne!(encrypted, "0");
    }

    // A root that did not issue the server's certificate fails, saying why.
    let other = monitor_testing::TestPki::new().unwrap();
    let dir = std::env::temp_dir().join(format!("store-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong-root.pem");
    std::fs::write(&wrong, other.root_pem()).unwrap();
    let tls = server().url_without_password(
        "localhost",
        name,
        &format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
    );
    let e = PgStore::open_with_password(&tls, password).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, StoreError::Postgres(_)), "{e:?}");
    assert!(
        text.contains("TLS") && text.contains("UnknownIssuer"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // `require` encrypts without checking; a wrong password is refused, saying so.
    let require = server().url_without_password("127.0.0.1", name, "sslmode=require");
    assert!(PgStore::open_with_password(&require, password).is_ok());
    let text = PgStore::open_with_password(&require, Some("wrong"))
        .unwrap_err()
        .to_string();
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("wrong"), "{text}");
}
