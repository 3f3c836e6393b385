//! What replicas share through the store: the agents' leases and change notices. A
//! shared store (PostgreSQL) keeps and returns leases and delivers notices to every
//! subscriber, other stores on the database included; SQLite, owned by one process,
//! stores none and has no notices, and says so with `shared() == false`.

use std::time::{Duration, Instant};

use control_plane::Store;
use control_plane::postgres::PgStore;
use control_plane::store::{AgentLease, LEASE_KEEP_US};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::TryRecvError;

fn lease(agent: &str, location: &str, seen_us: i64) -> AgentLease {
    AgentLease {
        agent: agent.to_owned(),
        location: location.to_owned(),
        seen_us,
        work_since_us: None,
        last_result_us: None,
    }
}

/// The next notice within `limit`, skipping the empty "re-read everything" ones.
fn next_notice(rx: &mut Receiver<String>, limit: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < limit {
        match rx.try_recv() {
            Ok(project) if !project.is_empty() => return Some(project),
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(20)),
            Err(TryRecvError::Closed) => return None,
        }
    }
    None
}

/// Waits for the listener's first "listening" signal (an empty name).
fn listening(rx: &mut Receiver<String>) {
    let start = Instant::now();
    loop {
        match rx.try_recv() {
            Ok(p) if p.is_empty() => return,
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "the store never listened"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(TryRecvError::Closed) => panic!("the notices closed"),
        }
    }
}

/// What a store not shared promises instead: it keeps no lease (one process owns it and
/// keeps its agents in memory).
fn keeps_nothing(store: &dyn Store) {
    assert!(!store.shared());
    store
        .renew_leases("p", &[lease("a", "eu", 100), lease("a", "us", 200)])
        .unwrap();
    assert!(store.leases("p", 0).unwrap().is_empty());
}

fn leases_are_kept_by_shared_stores_only(store: &dyn Store) {
    let written = vec![lease("b", "us", 2_000), lease("a", "eu", 1_000)];
    store.renew_leases("p", &written).unwrap();
    store.notify("p").unwrap();
    let read = store.leases("p", 0).unwrap();
    if !store.shared() {
        assert!(read.is_empty(), "{read:?}");
        assert!(store.subscribe().is_none());
        return;
    }
    // Sorted by agent, per project, filtered by when they were seen.
    assert_eq!(read, vec![lease("a", "eu", 1_000), lease("b", "us", 2_000)]);
    assert_eq!(
        store.leases("p", 1_500).unwrap(),
        vec![lease("b", "us", 2_000)]
    );
    assert_eq!(store.leases("p", 1_000).unwrap().len(), 2, "inclusive");
    assert!(store.leases("other", 0).unwrap().is_empty());
    assert!(store.renew_leases("p", &[]).is_ok());
}

fn the_later_write_of_a_lease_wins_and_times_only_move_forward(store: &dyn Store) {
    if !store.shared() {
        return keeps_nothing(store);
    }
    let first = AgentLease {
        work_since_us: Some(50),
        last_result_us: Some(90),
        ..lease("a", "eu", 100)
    };
    store
        .renew_leases("p", std::slice::from_ref(&first))
        .unwrap();
    // A replica that last saw the agent earlier: only its later result counts.
    let stale = AgentLease {
        work_since_us: None,
        last_result_us: Some(95),
        ..lease("a", "us", 80)
    };
    store.renew_leases("p", &[stale]).unwrap();
    assert_eq!(
        store.leases("p", 0).unwrap(),
        vec![AgentLease {
            last_result_us: Some(95),
            ..first.clone()
        }]
    );
    // A later one sets the location and the work; an older result does not go back.
    let fresh = AgentLease {
        work_since_us: None,
        last_result_us: Some(10),
        ..lease("a", "us", 200)
    };
    store.renew_leases("p", &[fresh]).unwrap();
    assert_eq!(
        store.leases("p", 0).unwrap(),
        vec![AgentLease {
            last_result_us: Some(95),
            ..lease("a", "us", 200)
        }]
    );
    // One batch naming an agent twice keeps the later of the two.
    store
        .renew_leases("p", &[lease("b", "eu", 300), lease("b", "us", 400)])
        .unwrap();
    assert_eq!(store.leases("p", 300).unwrap(), vec![lease("b", "us", 400)]);
}

fn leases_unseen_for_a_day_are_deleted(store: &dyn Store) {
    if !store.shared() {
        return keeps_nothing(store);
    }
    store
        .renew_leases(
            "p",
            &[lease("old", "eu", 1_000), lease("kept", "eu", 2_000)],
        )
        .unwrap();
    store
        .renew_leases("q", &[lease("other", "eu", 1_000)])
        .unwrap();
    store
        .renew_leases("p", &[lease("new", "eu", 1_500 + LEASE_KEEP_US)])
        .unwrap();
    let agents: Vec<String> = store
        .leases("p", 0)
        .unwrap()
        .into_iter()
        .map(|l| l.agent)
        .collect();
    assert_eq!(agents, ["kept", "new"]);
    assert_eq!(
        store.leases("q", 0).unwrap().len(),
        1,
        "another project's stay"
    );
}

fn notices_reach_the_store_itself(store: &dyn Store) {
    let Some(mut rx) = store.subscribe() else {
        assert!(!store.shared());
        return;
    };
    listening(&mut rx);
    store.notify("shop").unwrap();
    assert_eq!(
        next_notice(&mut rx, Duration::from_secs(30)).as_deref(),
        Some("shop")
    );
}

crate::store_cases!(
    leases_are_kept_by_shared_stores_only,
    the_later_write_of_a_lease_wins_and_times_only_move_forward,
    leases_unseen_for_a_day_are_deleted,
    notices_reach_the_store_itself,
);

/// Two stores on one database, as two replicas: each sees the other's leases and
/// notices.
#[test]
fn postgres_replicas_share_leases_and_notices() {
    let db = crate::Db::postgres();
    let url = db.url().expect("a postgres database");
    let other = PgStore::open(&url).unwrap();
    let mut mine = db.store.subscribe().expect("postgres has notices");
    let mut theirs = other.subscribe().expect("postgres has notices");
    listening(&mut mine);
    listening(&mut theirs);
    db.store
        .renew_leases("shop", &[lease("a", "eu", 1_000)])
        .unwrap();
    other.notify("shop").unwrap();
    for rx in [&mut mine, &mut theirs] {
        assert_eq!(
            next_notice(rx, Duration::from_secs(30)).as_deref(),
            Some("shop")
        );
    }
    assert_eq!(
        other.leases("shop", 0).unwrap(),
        vec![lease("a", "eu", 1_000)]
    );
}

/// The agents' registries of two replicas (as `control-plane serve` builds them over a
/// shared store): an agent heard of by one is live on the other, whose long polls are
/// woken; a change announced by one wakes the other's long polls through a notice alone
/// (no version changed, no agent came or went).
#[test]
fn postgres_registries_of_two_replicas_share_agents_and_wake_each_other() {
    use std::sync::Arc;

    use control_plane::agents::Registry;

    let db = crate::Db::postgres();
    let other: Arc<dyn Store> = Arc::new(PgStore::open(&db.url().expect("postgres")).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let limit = Duration::from_secs(20);
        let one = Registry::for_store(Duration::from_secs(15), &db.store);
        let two = Registry::for_store(Duration::from_secs(15), &other);
        let mut changes = two.subscribe("shop");
        assert!(two.live("shop", Instant::now()).is_empty());
        one.heard("shop", "a", "eu", Instant::now());
        tokio::time::timeout(limit, async {
            loop {
                changes.changed().await.expect("the registry lives");
                if two.live("shop", Instant::now()).iter().any(|l| l.id == "a") {
                    break;
                }
            }
        })
        .await
        .expect("the second replica never saw the first one's agent");
        let live = two.live("shop", Instant::now());
        assert_eq!(live.len(), 1, "{live:?}");
        assert_eq!(live[0].location, "eu");

        // Let the first ticks pass, then a bare notice from one must wake two.
        tokio::time::sleep(Duration::from_secs(2)).await;
        changes.borrow_and_update();
        one.notify("shop");
        tokio::time::timeout(limit, changes.changed())
            .await
            .expect("the notice never woke the second replica")
            .expect("the registry lives");
    });
}
