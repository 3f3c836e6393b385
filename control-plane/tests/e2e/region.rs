//! Retries in another location end to end (issue 20): two real agents in two locations,
//! a monitor of a closed loopback port with `single_retry(backoff 1 s, same_region =
//! false)` whose stored results have their first attempt in one location and the retry
//! in the other, and the same monitor with `same_region = true` whose attempts all run
//! where the result comes from.

use std::net::TcpListener;
use std::time::Duration;

use monitor_core::Bundle;
use monitor_core::prelude::*;

use super::agents::{Agent, deploy, logs_of, stored_results, wait_for};
use super::{Server, TempDir, create_token_for};

/// A loopback port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Every stored result of `monitor`: its location and its attempts' locations.
fn located(server: &Server, token: &str, monitor: &str) -> Vec<(String, Vec<String>)> {
    stored_results(&server.url, token, monitor)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let attempts = r["result"]["attempts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|a| a["location"].as_str().unwrap_or("?").to_owned())
                .collect();
            (r["location"].as_str().unwrap_or("?").to_owned(), attempts)
        })
        .collect()
}

#[test]
fn retries_run_in_another_location_unless_same_region() {
    let (server, tokens) = Server::start_with(&["shop"], &["--agent-timeout", "3s"]);
    let token = &tokens[0];
    let agent_token = create_token_for(&server.db(), "shop", "agent");
    let port = closed_port();
    let monitor = |id: &str, same_region: bool| {
        TcpMonitor::new(id, "127.0.0.1", port)
            .frequency(Frequency::S10)
            .timeouts(1_000, 1_000, 5_000)
            .retry(RetryStrategy::SingleRetry {
                base_backoff_seconds: 1,
                same_region,
            })
    };
    deploy(
        &server,
        token,
        &Bundle::new(vec![monitor("elsewhere", false), monitor("here", true)]),
    );
    let dir = TempDir::new();
    let eu = Agent::spawn(&server.url, &agent_token, "eu-a", "eu", 1, &dir.0);
    let us = Agent::spawn(&server.url, &agent_token, "us-a", "us", 1, &dir.0);
    let logs = || logs_of(&server, &[&eu, &us]);
    // Before both agents are live a monitor runs in one location and retries there; once
    // both are, the retry of `elsewhere` runs in the location after the first attempt's,
    // which uploads the result.
    wait_for(
        Duration::from_secs(90),
        "a result of `elsewhere` retried in the other location",
        &logs,
        || {
            located(&server, token, "elsewhere")
                .iter()
                .any(|(location, attempts)| {
                    attempts.len() == 2
                        && attempts[0] != attempts[1]
                        && attempts[1] == *location
                        && attempts.iter().all(|a| a == "eu" || a == "us")
                })
        },
    );
    wait_for(
        Duration::from_secs(60),
        "results of `here` from both locations",
        &logs,
        || {
            let seen = located(&server, token, "here");
            ["eu", "us"]
                .iter()
                .all(|l| seen.iter().any(|(location, _)| location == l))
        },
    );
    for (location, attempts) in located(&server, token, "here") {
        assert_eq!(attempts.len(), 2, "{location}: {attempts:?}\n{}", logs());
        assert!(
            attempts.iter().all(|a| *a == location),
            "same_region: every attempt where the result comes from ({location}): {attempts:?}"
        );
    }
    // Every result of `elsewhere` has both attempts, none lost on the way.
    for (location, attempts) in located(&server, token, "elsewhere") {
        assert_eq!(attempts.len(), 2, "{location}: {attempts:?}\n{}", logs());
    }
}
