//! Agents end to end: a deploy, two real `monitors agent` processes in one location and
//! one in another, results arriving from the right places at the right rate, an agent's
//! work taken over when it stops, and every result buffered while the control plane was
//! down arriving after it returns, none twice.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_core::Bundle;
use monitor_core::prelude::*;
use serde_json::{Value, json};

use super::{Server, TempDir, cargo, create_token_for};

/// The `monitors` binary, built once by cargo next to this test.
pub(super) fn monitors_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = cargo()
                .args(["build", "--quiet", "--package", "monitors"])
                .stdin(Stdio::null())
                .output()
                .expect("cannot run cargo build");
            assert!(
                out.status.success(),
                "cargo build -p monitors failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let exe = std::env::current_exe().expect("the test's own path");
            // target/debug/deps/e2e-HASH → target/debug/monitors
            let debug = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("the test runs from target/<profile>/deps");
            debug.join("monitors")
        })
        .clone()
}

/// A real agent process, killed on drop.
pub(super) struct Agent {
    pub(super) id: String,
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(server: &Server, token: &str, id: &str, location: &str, dir: &TempDir) -> Agent {
        Agent::spawn(&server.url, token, id, location, 1, &dir.0)
    }

    /// `monitors agent` for the control planes `control_planes` (one URL, or a
    /// comma-separated list), long-polling for `poll_wait` seconds, logging into `dir`.
    pub(super) fn spawn(
        control_planes: &str,
        token: &str,
        id: &str,
        location: &str,
        poll_wait: u64,
        dir: &Path,
    ) -> Agent {
        let log = dir.join(format!("{id}.log"));
        let file = std::fs::File::create(&log).expect("agent log");
        let child = Command::new(monitors_binary())
            .args(["agent", "--control-plane", control_planes])
            .args(["--location", location, "--id", id])
            .args(["--poll-wait", &poll_wait.to_string(), "--buffer-dir"])
            .arg(dir.join(format!("{id}-buffer")))
            .env("MONITORS_AGENT_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log"))
            .stderr(file)
            .spawn()
            .expect("cannot start monitors agent");
        Agent {
            id: id.to_owned(),
            child,
            log,
        }
    }

    pub(super) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many assignments it received.
    pub(super) fn assignments(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("assignment ") && l.contains(" monitors ("))
            .count()
    }

    /// SIGTERM, then waits: the agent finishes its checks and uploads what it buffered.
    pub(super) fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Stops the agent the hard way, as a crash or a lost machine would.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TLS service of a throwaway test PKI greeting with `hello over tls`, and the runtime it
/// runs on: what the TLS monitors of the end-to-end tests watch.
pub(super) struct HelloTls {
    server: monitor_testing::ScriptedServer,
    root: String,
    /// The runtime the server runs on, for checks run here too; dropped last.
    pub(super) runtime: tokio::runtime::Runtime,
}

impl HelloTls {
    /// Starts it with a full chain whose leaf, for `monitor.test`, is valid for `days`.
    pub(super) fn start(days: i64) -> HelloTls {
        use monitor_testing::{Script, ScriptedServer, TestPki, TlsServer};
        let runtime = tokio::runtime::Runtime::new().expect("a runtime for the TLS server");
        let pki = TestPki::new().expect("a test PKI");
        let leaf = pki.leaf_for(&["monitor.test"], days).expect("a leaf");
        let server = runtime
            .block_on(ScriptedServer::start_tls(
                Script::new().send("hello over tls\r\n"),
                TlsServer::direct(leaf.server_config(true).expect("a TLS config")),
            ))
            .expect("a TLS server");
        HelloTls {
            server,
            root: pki.root_pem(),
            runtime,
        }
    }

    /// A monitor `id` of it, checked every 10 s, trusting the test root for
    /// `monitor.test` and expecting the greeting.
    pub(super) fn monitor(&self, id: &str) -> TcpMonitor {
        let root = self.root.clone();
        TcpMonitor::new(id, "127.0.0.1", self.server.port())
            .frequency(Frequency::S10)
            .tls_direct()
            .tls_with(|t| {
                t.ca = Some(PemSource::Pem(root));
                t.server_name = Some("monitor.test".into());
            })
            .expect("hello over tls")
            .timeouts(2_000, 2_000, 5_000)
    }
}

/// A TCP port that accepts every connection: what the monitors watch.
pub(super) fn listening_service() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    port
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

pub(super) fn deploy(server: &Server, token: &str, bundle: &Bundle) {
    let body = json!({ "bundle": serde_json::from_str::<Value>(&bundle.to_json()).unwrap() });
    let response = http()
        .post(format!("{}/v1/projects/shop/deploy?prune=true", server.url))
        .bearer_auth(token)
        .json(&body)
        .send()
        .expect("deploy");
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text());
}

/// One stored result: where, by whom, which tick, and when it started.
#[derive(Debug, Clone)]
struct Seen {
    location: String,
    agent: String,
    tick: i64,
    status: String,
}

/// The control plane's log, then each agent's, under headers naming them: what a failed
/// wait prints.
pub(super) fn logs_of(server: &Server, agents: &[&Agent]) -> String {
    let mut out = format!("--- control plane\n{}", server.log());
    for agent in agents {
        out.push_str(&format!("\n--- {}\n{}", agent.id, agent.log()));
    }
    out
}

/// Every stored result of `monitor` of project `shop` as the control plane at `url`
/// answers them (up to 10,000, oldest first); `None` when it does not answer with JSON.
pub(super) fn stored_results(url: &str, token: &str, monitor: &str) -> Option<Vec<Value>> {
    let body: Value = http()
        .get(format!(
            "{url}/v1/projects/shop/monitors/{monitor}/results?limit=10000"
        ))
        .bearer_auth(token)
        .send()
        .ok()?
        .json()
        .ok()?;
    Some(body["results"].as_array().cloned().unwrap_or_default())
}

/// Every stored result of `monitor`, oldest first.
fn history(server: &Server, token: &str, monitor: &str) -> Vec<Seen> {
    stored_results(&server.url, token, monitor)
        .unwrap_or_default()
        .iter()
        .map(|r| Seen {
            location: r["location"].as_str().unwrap_or_default().to_owned(),
            agent: r["agent"].as_str().unwrap_or_default().to_owned(),
            tick: r["tick"].as_i64().unwrap_or(-1),
            status: r["result"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

/// Waits until `done` holds, polling every half second; panics with `what` and the logs
/// after `limit`.
pub(super) fn wait_for(
    limit: Duration,
    what: &str,
    logs: &dyn Fn() -> String,
    mut done: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The ticks of `seen` in `location`.
fn ticks(seen: &[Seen], location: &str) -> Vec<i64> {
    seen.iter()
        .filter(|s| s.location == location)
        .map(|s| s.tick)
        .collect()
}

/// Asserts `ticks` are consecutive multiples of `step` (once per tick it owns, none
/// missing, none twice).
fn assert_every(ticks: &[i64], step: i64, what: &str) {
    let set: BTreeSet<i64> = ticks.iter().copied().collect();
    assert_eq!(set.len(), ticks.len(), "{what}: a tick twice: {ticks:?}");
    let sorted: Vec<i64> = set.into_iter().collect();
    for pair in sorted.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            step,
            "{what}: ticks {sorted:?} skip or crowd"
        );
    }
}

/// The current tick of the 10 s monitor `id`: whole intervals since the epoch, shifted
/// by its phase (FNV-1a 64 of the id, modulo the interval), as the contract defines them.
fn tick_now(id: &str) -> i64 {
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let phase = i64::try_from(hash % 10_000).expect("below 10 000");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    (i64::try_from(now.as_millis()).expect("ms fit") - phase).div_euclid(10_000)
}

#[test]
fn agents_share_work_take_over_and_deliver_buffered_results() {
    let (mut server, tokens) = Server::start_with(&["shop"], &["--agent-timeout", "3s"]);
    let token = &tokens[0];
    let agent_token = create_token_for(&server.db(), "shop", "agent");
    let service = listening_service();
    let monitor = |id: &str| {
        TcpMonitor::new(id, "127.0.0.1", service)
            .frequency(Frequency::S10)
            .timeouts(2_000, 2_000, 5_000)
    };
    let mut everywhere_parallel = monitor("parallel");
    everywhere_parallel.run_parallel = true;
    let mut monitors = vec![monitor("round-robin"), everywhere_parallel];
    let eu_only: Vec<String> = (0..6).map(|i| format!("eu-{i}")).collect();
    for id in &eu_only {
        let mut m = monitor(id);
        m.locations = vec!["eu".into()];
        monitors.push(m);
    }
    let mut off = monitor("deactivated");
    off.activated = false;
    monitors.push(off);
    deploy(&server, token, &Bundle::new(monitors));

    let dir = TempDir::new();
    let mut eu_a = Agent::start(&server, &agent_token, "eu-a", "eu", &dir);
    let mut eu_b = Agent::start(&server, &agent_token, "eu-b", "eu", &dir);
    let us_a = Agent::start(&server, &agent_token, "us-a", "us", &dir);
    let logs = || {
        format!(
            "--- control plane\n{}\n--- eu-a\n{}\n--- eu-b\n{}\n--- us-a\n{}",
            server.log(),
            eu_a.log(),
            eu_b.log(),
            us_a.log()
        )
    };
    let _ = &logs;

    // Phase 1: three intervals of results from the right places at the right rate.
    let first = tick_now("parallel");
    wait_for(
        Duration::from_secs(60),
        "three ticks of results from both locations",
        &|| String::new(),
        || {
            let seen = history(&server, token, "parallel");
            ticks(&seen, "eu").iter().filter(|t| **t > first).count() >= 3
                && ticks(&seen, "us").iter().filter(|t| **t > first).count() >= 3
        },
    );
    let parallel = history(&server, token, "parallel");
    for location in ["eu", "us"] {
        assert_every(
            &ticks(&parallel, location),
            1,
            &format!("parallel in {location}"),
        );
    }
    assert!(
        parallel.iter().all(|s| s.status == "passed"),
        "{parallel:?}"
    );
    let round_robin = history(&server, token, "round-robin");
    assert!(round_robin.len() >= 2, "{round_robin:?}");
    for s in &round_robin {
        // Locations sorted: eu (index 0) takes the even ticks, us the odd ones.
        let expected = if s.tick % 2 == 0 { "eu" } else { "us" };
        assert_eq!(s.location, expected, "round robin: {round_robin:?}");
    }
    assert_every(
        &round_robin.iter().map(|s| s.tick).collect::<Vec<_>>(),
        1,
        "round robin",
    );
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    for id in &eu_only {
        let seen = history(&server, token, id);
        assert!(!seen.is_empty(), "{id} never ran\n{}", logs());
        assert!(
            seen.iter().all(|s| s.location == "eu"),
            "{id} ran outside eu: {seen:?}"
        );
        assert_every(&ticks(&seen, "eu"), 1, id);
        owner.insert(
            id.clone(),
            seen.last().map(|s| s.agent.clone()).unwrap_or_default(),
        );
    }
    assert!(
        history(&server, token, "deactivated").is_empty(),
        "a deactivated monitor ran"
    );

    // Phase 2: the eu agent with work stops; the other takes its monitors within two
    // intervals.
    let (victim, survivor) = if owner.values().any(|a| a == "eu-a") {
        (&mut eu_a, "eu-b")
    } else {
        (&mut eu_b, "eu-a")
    };
    let victim_id = victim.id.clone();
    let orphaned: Vec<String> = owner
        .iter()
        .filter(|(_, a)| **a == victim_id)
        .map(|(m, _)| m.clone())
        .collect();
    assert!(!orphaned.is_empty());
    victim.kill();
    let killed_at: BTreeMap<String, i64> = orphaned
        .iter()
        .map(|id| (id.clone(), tick_now(id)))
        .collect();
    wait_for(
        Duration::from_secs(45),
        "the surviving agent taking over",
        &|| String::new(),
        || {
            orphaned.iter().all(|id| {
                history(&server, token, id)
                    .iter()
                    .any(|s| s.agent == survivor && s.tick > killed_at[id])
            })
        },
    );
    for id in &orphaned {
        let seen = history(&server, token, id);
        let taken = seen
            .iter()
            .filter(|s| s.agent == survivor)
            .map(|s| s.tick)
            .min()
            .expect("taken over");
        let stopped = killed_at[id];
        assert!(
            taken <= stopped + 2,
            "{id}: taken over at tick {taken}, stopped at {stopped}: more than two intervals"
        );
        // A tick may be lost with the agent that stopped, but none runs twice.
        let all = ticks(&seen, "eu");
        let distinct: BTreeSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "{id}: a tick twice: {all:?}");
    }

    // Phase 3: the control plane goes away for more than an interval; the agents keep
    // checking and buffer; after the restart every tick arrives, none twice.
    let before = history(&server, token, "parallel").len();
    server.kill();
    let down_from = tick_now("parallel");
    std::thread::sleep(Duration::from_secs(15));
    let down_until = tick_now("parallel");
    server.restart();
    wait_for(
        Duration::from_secs(60),
        "the buffered results arriving after the restart",
        &|| String::new(),
        || {
            let seen = history(&server, token, "parallel");
            ["eu", "us"]
                .iter()
                .all(|l| ticks(&seen, l).iter().any(|t| *t > down_until))
        },
    );
    let parallel = history(&server, token, "parallel");
    assert!(parallel.len() > before);
    for location in ["eu", "us"] {
        // From just before the outage on (an eu tick may have gone with the stopped agent).
        let t: Vec<i64> = ticks(&parallel, location)
            .into_iter()
            .filter(|t| *t >= down_from - 1)
            .collect();
        assert_every(&t, 1, &format!("parallel in {location} across the outage"));
        for tick in down_from + 1..down_until {
            assert!(
                t.contains(&tick),
                "tick {tick} in {location}, checked while the control plane was down, was lost: {t:?}"
            );
        }
    }
    let log = server.log();
    assert!(
        !log.contains(&agent_token),
        "the control plane logged the agent token"
    );
    assert!(!eu_b.log().contains(&agent_token) && !us_a.log().contains(&agent_token));
}
