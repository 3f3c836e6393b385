//! Maintenance windows end to end (issue 21): a window deployed with the bundle and one
//! opened with `cargo xtask maintenance start` mark the results a real agent uploads for
//! the monitors they cover; marked results stay out of the uptime and carry
//! `in_maintenance="true"` in the control plane's metrics, `maintenance list` shows both
//! windows, `maintenance end` closes the ad-hoc one, and monitors outside a window are
//! untouched.

use std::net::TcpListener;
use std::time::Duration;

use monitor_core::Bundle;
use monitor_core::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::agents::{Agent, deploy, logs_of, stored_results, wait_for};
use super::{Client, Server, TempDir, create_token_for};

/// `(started_at, in_maintenance)` of each stored result of `monitor`, oldest first.
fn marks(server: &Server, token: &str, monitor: &str) -> Vec<(OffsetDateTime, bool)> {
    stored_results(&server.url, token, monitor)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let started = r["result"]["started_at"].as_str().unwrap_or_default();
            (
                OffsetDateTime::parse(started, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH),
                r["in_maintenance"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

/// The status of `monitor` in `status`.
fn monitor_status<'a>(status: &'a Value, monitor: &str) -> &'a Value {
    status["monitors"]
        .as_array()
        .and_then(|all| all.iter().find(|m| m["id"] == monitor))
        .unwrap_or_else(|| panic!("no {monitor} in {status}"))
}

/// The sample lines of the control plane's `/metrics` for `family` and `monitor`.
fn samples(text: &str, family: &str, monitor: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{family}{{")))
        .filter(|l| l.contains(&format!("monitor=\"{monitor}\"")))
        .map(str::to_owned)
        .collect()
}

fn metrics(server: &Server, token: &str) -> String {
    reqwest::blocking::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(token)
        .send()
        .and_then(reqwest::blocking::Response::text)
        .expect("metrics")
}

#[test]
fn declared_and_ad_hoc_windows_mark_results_keep_them_out_of_uptime_and_label_metrics() {
    let (server, tokens) = Server::start_with(&["shop"], &["--agent-timeout", "3s"]);
    let token = &tokens[0];
    let agent_token = create_token_for(&server.db(), "shop", "agent");
    // `web` is served (kept open: connections complete in the backlog); `db` is refused.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let web_port = listener.local_addr().expect("addr").port();
    let db_port = {
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        closed.local_addr().expect("addr").port()
    };
    let monitor = |id: &str, port: u16, tag: &str| {
        TcpMonitor::new(id, "127.0.0.1", port)
            .frequency(Frequency::S10)
            .timeouts(1_000, 1_000, 5_000)
            .tag(tag)
    };
    let now = OffsetDateTime::now_utc();
    let mut bundle = Bundle::new(vec![
        monitor("db", db_port, "db"),
        monitor("web", web_port, "web"),
    ]);
    bundle.maintenance = vec![
        serde_json::from_value(json!({
            "id": "db-restart",
            "name": "Database restart",
            "tags": ["db"],
            "schedule": {"once": {
                "start": (now - time::Duration::minutes(5)).format(&Rfc3339).expect("time"),
                "end": (now + time::Duration::hours(1)).format(&Rfc3339).expect("time"),
            }}
        }))
        .expect("a window"),
    ];
    deploy(&server, token, &bundle);
    let dir = TempDir::new();
    let agent = Agent::spawn(&server.url, &agent_token, "eu-a", "eu", 1, &dir.0);
    let logs = || logs_of(&server, &[&agent]);
    wait_for(
        Duration::from_secs(60),
        "results of both monitors",
        &logs,
        || !marks(&server, token, "db").is_empty() && !marks(&server, token, "web").is_empty(),
    );

    // The declared window: every result of `db` marked, none of `web`.
    assert!(
        marks(&server, token, "db").iter().all(|(_, m)| *m),
        "{}",
        logs()
    );
    assert!(
        marks(&server, token, "web").iter().all(|(_, m)| !*m),
        "{}",
        logs()
    );
    let client = Client {
        server: &server,
        project: "shop".to_owned(),
        token: token.clone(),
    };
    let (code, status) = client.get("status");
    assert_eq!(code, 200, "{status}");
    let db = monitor_status(&status, "db");
    assert_eq!(db["maintenance"]["id"], "db-restart", "{db}");
    assert_eq!(db["locations"][0]["status"], "failed", "{db}");
    assert_eq!(db["locations"][0]["in_maintenance"], true, "{db}");
    // Its failures in the window count neither against the uptime nor as a streak.
    assert_eq!(db["uptime"]["24h"], Value::Null, "{db}");
    assert_eq!(db["locations"][0]["consecutive_failures"], 0, "{db}");
    let web = monitor_status(&status, "web");
    assert_eq!(web["uptime"]["24h"], 100.0, "{web}");
    assert!(web.get("maintenance").is_none(), "{web}");
    let text = metrics(&server, token);
    let db_success = samples(&text, "probe_success", "db");
    assert!(
        !db_success.is_empty()
            && db_success
                .iter()
                .all(|l| l.contains("in_maintenance=\"true\"")),
        "{text}"
    );
    assert!(
        samples(&text, "probe_success", "web")
            .iter()
            .all(|l| l.contains("in_maintenance=\"false\"")),
        "{text}"
    );
    let open = |monitor: &str| samples(&text, "monitor_in_maintenance", monitor);
    assert!(open("db").iter().any(|l| l.ends_with(" 1")), "{text}");
    assert!(open("web").iter().any(|l| l.ends_with(" 0")), "{text}");

    // An ad-hoc window over `web`, opened by the real client.
    let start = client.xtask(&[
        "maintenance",
        "start",
        "--tag",
        "web",
        "--for",
        "30m",
        "--name",
        "web restart",
    ]);
    assert_eq!(start.code, Some(0), "{start}");
    let opened = OffsetDateTime::now_utc();
    let id = start
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("adhoc-"))
        .unwrap_or_else(|| panic!("no ad-hoc id printed: {start}"))
        .to_owned();
    let list = client.xtask(&["maintenance", "list"]);
    assert_eq!(list.code, Some(0), "{list}");
    assert!(
        list.stdout.contains("db-restart") && list.stdout.contains(&id),
        "{list}"
    );
    wait_for(
        Duration::from_secs(40),
        "a marked result of web",
        &logs,
        || {
            marks(&server, token, "web")
                .iter()
                .any(|(at, m)| *at > opened && *m)
        },
    );
    let text = metrics(&server, token);
    assert!(
        samples(&text, "probe_success", "web")
            .iter()
            .all(|l| l.contains("in_maintenance=\"true\"")),
        "{text}"
    );

    // Ended: later results are not marked; a deployed window is not ended by hand.
    let end = client.xtask(&["maintenance", "end", &id]);
    assert_eq!(end.code, Some(0), "{end}");
    let ended = OffsetDateTime::now_utc();
    wait_for(
        Duration::from_secs(40),
        "an unmarked result of web",
        &logs,
        || {
            marks(&server, token, "web")
                .iter()
                .any(|(at, m)| *at > ended && !*m)
        },
    );
    let deployed = client.xtask(&["maintenance", "end", "db-restart"]);
    assert_eq!(deployed.code, Some(1), "{deployed}");
    assert!(deployed.stderr.contains("deploy"), "{deployed}");
    drop(listener);
}
