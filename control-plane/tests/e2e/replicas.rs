//! Replicas end to end, several machines on one: one PostgreSQL, two `control-plane serve`
//! replicas on different loopback ports over it, and four real `monitors agent` processes
//! given both (`--control-plane A,B` for two of them, `B,A` for the others) with long
//! polls of a minute. A deploy through replica A reaches the agents polling replica B at
//! once (their long polls are woken across replicas, not timed out), and both replicas give
//! each agent the same assignment. Then replica A is killed (SIGKILL) mid-traffic: the
//! agents carry on through B, and every tick of every monitor in the window is stored
//! exactly once, read back through B.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monitor_core::Bundle;
use monitor_core::prelude::*;
use serde_json::{Value, json};

use super::agents::{Agent, listening_service, stored_results, wait_for};
use super::{SERVER, TempDir, spawn_server};

/// The agents: id, and whether they list replica A first.
const AGENTS: [(&str, bool); 4] = [
    ("eu-1", true),
    ("eu-2", false),
    ("eu-3", true),
    ("eu-4", false),
];

/// The monitors' interval, in seconds.
const EVERY_S: i64 = 10;

/// A `control-plane serve` replica over the database, killed on drop.
struct Replica {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Replica {
    fn start(database: &str) -> Replica {
        let (child, url, log) = spawn_server(database, "127.0.0.1:0", &["--agent-timeout", "3s"]);
        Replica { child, url, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// SIGKILL: the replica dies mid-request, as with a lost machine.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `control-plane token create --project shop --role ROLE --database URL`.
fn token(database: &str, role: &str) -> String {
    let out = Command::new(SERVER)
        .args(["token", "create", "--project", "shop", "--role", role])
        .args(["--database", database])
        .stdin(Stdio::null())
        .output()
        .expect("cannot run control-plane token create");
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("the token is UTF-8")
        .trim()
        .to_owned()
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

fn deploy(replica: &Replica, token: &str, bundle: &Bundle) {
    let body = json!({ "bundle": serde_json::from_str::<Value>(&bundle.to_json()).unwrap() });
    let response = http()
        .post(format!(
            "{}/v1/projects/shop/deploy?prune=true",
            replica.url
        ))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("deploy");
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text());
}

/// The (tick, agent) of every stored result of `monitor`, read through `replica`.
fn stored(replica: &Replica, token: &str, monitor: &str) -> Vec<(i64, String)> {
    stored_results(&replica.url, token, monitor)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["tick"].as_i64().unwrap_or(-1),
                r["agent"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The ETag of the assignment `replica` gives agent `id` (asked as it, without waiting).
fn etag(replica: &Replica, token: &str, id: &str) -> String {
    let response = http()
        .get(format!(
            "{}/v1/agent/assignments?agent={id}&location=eu&wait=0",
            replica.url
        ))
        .bearer_auth(token)
        .send()
        .expect("assignment");
    assert_eq!(response.status().as_u16(), 200);
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The current tick of the 10 s monitor `id` (see `agents::tick_now`).
fn tick_now(id: &str) -> i64 {
    let phase = i64::try_from(control_plane::agents::fnv1a64(id.as_bytes()) % 10_000)
        .expect("below 10 000");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    (i64::try_from(now.as_millis()).expect("ms fit") - phase).div_euclid(EVERY_S * 1000)
}

/// Monitor ids such that every agent owns two of them (rendezvous hashing over the four
/// agents, as both replicas compute it).
fn monitor_ids() -> Vec<String> {
    let agents: Vec<&str> = AGENTS.iter().map(|(id, _)| *id).collect();
    let mut owned = vec![0usize; agents.len()];
    let mut ids = Vec::new();
    for i in 0..1000 {
        if owned.iter().all(|n| *n >= 2) {
            break;
        }
        let id = format!("m-{i}");
        let owner = control_plane::agents::owner(&agents, &id).expect("agents");
        let k = agents
            .iter()
            .position(|a| *a == owner)
            .expect("one of them");
        if owned[k] < 2 {
            owned[k] += 1;
            ids.push(id);
        }
    }
    assert_eq!(ids.len(), 2 * agents.len());
    ids
}

fn bundle(ids: &[String], total_ms: u32, service: u16) -> Bundle {
    Bundle::new(
        ids.iter()
            .map(|id| {
                TcpMonitor::new(id.as_str(), "127.0.0.1", service)
                    .frequency(Frequency::S10)
                    .timeouts(2_000, 2_000, total_ms)
            })
            .collect(),
    )
}

#[test]
fn replicas_share_agents_and_survive_one_killed() {
    let postgres = monitor_testing::postgres::shared();
    let database = postgres.url(&postgres.create_database().expect("a database"));
    let deploy_token = token(&database, "deploy");
    let agent_token = token(&database, "agent");
    let mut a = Replica::start(&database);
    let b = Replica::start(&database);
    let service = listening_service();
    let ids = monitor_ids();
    deploy(&a, &deploy_token, &bundle(&ids, 5_000, service));

    let dir = TempDir::new();
    let mut agents: Vec<Agent> = AGENTS
        .iter()
        .map(|(id, a_first)| {
            let list = if *a_first {
                format!("{},{}", a.url, b.url)
            } else {
                format!("{},{}", b.url, a.url)
            };
            Agent::spawn(&list, &agent_token, id, "eu", 60, &dir.0)
        })
        .collect();
    let logs = |a: &Replica, agents: &[Agent]| {
        let mut text = format!("--- replica A\n{}\n--- replica B\n{}", a.log(), b.log());
        for agent in agents {
            text.push_str(&format!("\n--- {}\n{}", agent.id, agent.log()));
        }
        text
    };

    // Every monitor runs, each on the agent both replicas hand it to.
    wait_for(
        Duration::from_secs(60),
        "results of every monitor",
        &|| logs(&a, &agents),
        || {
            ids.iter()
                .all(|id| !stored(&b, &deploy_token, id).is_empty())
        },
    );
    for (id, _) in AGENTS {
        assert_eq!(
            etag(&a, &agent_token, id),
            etag(&b, &agent_token, id),
            "replicas A and B assign {id} differently\n{}",
            logs(&a, &agents)
        );
    }

    // A deploy through A changes every agent's assignment; those polling B get theirs
    // though their polls would otherwise wait a minute.
    let before: Vec<usize> = agents.iter().map(Agent::assignments).collect();
    deploy(&a, &deploy_token, &bundle(&ids, 6_000, service));
    wait_for(
        Duration::from_secs(20),
        "the new assignment reaching every agent (a poll waits 60 s)",
        &|| logs(&a, &agents),
        || {
            agents
                .iter()
                .zip(&before)
                .all(|(agent, n)| agent.assignments() > *n)
        },
    );
    for (id, _) in AGENTS {
        assert_eq!(etag(&a, &agent_token, id), etag(&b, &agent_token, id));
    }
    // The window: from the next tick of each monitor, under the new assignment.
    let first: Vec<i64> = ids.iter().map(|id| tick_now(id) + 1).collect();

    // Traffic through both, then A dies mid-traffic; the agents carry on through B.
    std::thread::sleep(Duration::from_secs(12));
    a.kill();
    std::thread::sleep(Duration::from_secs(25));
    let last: Vec<i64> = ids.iter().map(|id| tick_now(id) - 1).collect();
    for agent in &mut agents {
        agent.stop();
    }
    let expected = |k: usize| (first[k]..=last[k]).collect::<BTreeSet<i64>>();
    wait_for(
        Duration::from_secs(30),
        "every tick of the window stored",
        &|| logs(&a, &agents),
        || {
            ids.iter().enumerate().all(|(k, id)| {
                let ticks: BTreeSet<i64> =
                    stored(&b, &deploy_token, id).iter().map(|r| r.0).collect();
                ticks.is_superset(&expected(k))
            })
        },
    );
    for (k, id) in ids.iter().enumerate() {
        let results = stored(&b, &deploy_token, id);
        let ticks: Vec<i64> = results.iter().map(|r| r.0).collect();
        let distinct: BTreeSet<i64> = ticks.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            ticks.len(),
            "{id}: a tick stored twice: {ticks:?}"
        );
        let missing: Vec<i64> = expected(k).difference(&distinct).copied().collect();
        assert!(missing.is_empty(), "{id}: ticks {missing:?} lost");
        // One owner throughout: both replicas handed the monitor to the same agent.
        let owners: BTreeSet<&str> = results
            .iter()
            .filter(|r| expected(k).contains(&r.0))
            .map(|r| r.1.as_str())
            .collect();
        assert_eq!(owners.len(), 1, "{id} ran on {owners:?}");
    }
    for agent in &agents {
        let log = agent.log();
        assert!(
            log.contains(" 0 still buffered"),
            "{} kept results buffered:\n{log}",
            agent.id
        );
    }
    // The agents that started on A logged their move to B.
    for (agent, (_, a_first)) in agents.iter().zip(AGENTS) {
        if a_first {
            let log = agent.log();
            assert!(
                log.contains(&format!("control plane {} failed", a.url))
                    && log.contains(&format!("switching to {}", b.url)),
                "{} did not move to B:\n{log}",
                agent.id
            );
        }
    }
}
