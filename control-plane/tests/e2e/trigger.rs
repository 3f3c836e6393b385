//! `cargo xtask trigger --wait` end to end (issue 21): two real agents in two locations
//! take the triggered runs through their retries long poll, run them at once outside the
//! schedule of an hourly monitor, and the real client prints a result from each location
//! within seconds; the monitor's stored (scheduled) results are the same before and after.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use monitor_core::Bundle;
use monitor_core::prelude::*;

use super::agents::{Agent, deploy, logs_of, stored_results, wait_for};
use super::{Client, Server, TempDir, create_token_for};

/// The ids and ticks of the stored results of `monitor`.
fn stored(server: &Server, token: &str, monitor: &str) -> BTreeSet<(String, u64)> {
    stored_results(&server.url, token, monitor)
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or("?").to_owned(),
                r["tick"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[test]
fn trigger_wait_prints_results_from_two_locations_without_touching_the_schedule() {
    let (server, tokens) = Server::start_with(&["shop"], &["--agent-timeout", "3s"]);
    let token = &tokens[0];
    let agent_token = create_token_for(&server.db(), "shop", "agent");
    // Kept open: connections complete in the kernel's backlog.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let monitor = |id: &str, tag: &str| {
        TcpMonitor::new(id, "127.0.0.1", port)
            .frequency(Frequency::H1)
            .timeouts(1_000, 1_000, 5_000)
            .tag(tag)
    };
    deploy(
        &server,
        token,
        &Bundle::new(vec![monitor("web", "smoke"), monitor("other", "slow")]),
    );
    let dir = TempDir::new();
    let eu = Agent::spawn(&server.url, &agent_token, "eu-a", "eu", 1, &dir.0);
    let us = Agent::spawn(&server.url, &agent_token, "us-a", "us", 1, &dir.0);
    let logs = || logs_of(&server, &[&eu, &us]);
    wait_for(
        Duration::from_secs(60),
        "both agents assigned",
        &logs,
        || eu.assignments() > 0 && us.assignments() > 0,
    );
    // Both poll their retries (every second) by now; give them one round.
    std::thread::sleep(Duration::from_secs(2));
    let before = stored(&server, token, "web");

    let client = Client {
        server: &server,
        project: "shop".to_owned(),
        token: token.clone(),
    };
    let started = Instant::now();
    let run = client.xtask(&["trigger", "--tag", "smoke", "--wait", "--timeout", "30"]);
    let took = started.elapsed();
    assert_eq!(run.code, Some(0), "{run}\n{}", logs());
    for location in ["eu", "us"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("passed") && l.contains(&format!("web in {location}"))),
            "no passed result of web in {location}: {run}"
        );
    }
    assert!(
        !run.stdout.contains("other"),
        "--tag smoke ran `other`: {run}"
    );
    assert!(
        run.stdout
            .contains("2 results: 2 passed, 0 degraded, 0 failed"),
        "{run}"
    );
    // The time includes `cargo run` of the client, already built by the tests before.
    assert!(took < Duration::from_secs(30), "took {took:?}: {run}");

    // The same through the reporters of `monitors run`: one JUnit test case per location.
    let junit = dir.0.join("trigger-junit.xml");
    let junit_arg = format!("junit={}", junit.display());
    let reported = client.xtask(&[
        "trigger",
        "--tag",
        "smoke",
        "--wait",
        "--timeout",
        "30",
        "-r",
        &junit_arg,
    ]);
    assert_eq!(reported.code, Some(0), "{reported}\n{}", logs());
    let xml = std::fs::read_to_string(&junit).unwrap_or_else(|e| panic!("{e}: {reported}"));
    for location in ["eu", "us"] {
        assert!(
            xml.contains(&format!("name=\"web: web @ {location}\"")),
            "{xml}"
        );
    }
    assert!(
        reported.stderr.contains("2 results: 2 passed"),
        "{reported}"
    );

    // Triggered results are kept beside the trigger, never stored as scheduled ones: the
    // hourly monitor's stored results (and so its ticks) are what they were.
    std::thread::sleep(Duration::from_secs(2));
    let after = stored(&server, token, "web");
    assert_eq!(before, after, "{}", logs());
    assert!(after.iter().all(|(id, _)| !id.contains("/trigger/")));
    for agent in [&eu, &us] {
        assert!(
            agent.log().contains("running a triggered check"),
            "{}",
            logs()
        );
    }

    // Filters that match nothing are refused, with exit 1 and the server's reason.
    let none = client.xtask(&["trigger", "--grep", "^nothing$"]);
    assert_eq!(none.code, Some(1), "{none}");
    assert!(none.stderr.contains("no deployed monitor"), "{none}");
    let nowhere = client.xtask(&["trigger", "--location", "ap"]);
    assert_eq!(nowhere.code, Some(1), "{nowhere}");
    assert!(nowhere.stderr.contains("nothing to run"), "{nowhere}");
    drop(listener);
}
