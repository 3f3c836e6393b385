//! Issue 20 over HTTP against the real binary: agents report their load (the
//! `monitors-agent-load` header) and the control plane shows an overloaded one in its
//! status, `/metrics` and the overview; failed first attempts handed to another location
//! (`/v1/agent/retries`).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::agents::get_text;
use super::*;

/// A poll of `agent` in `location` with the token, and the load header if any.
fn poll_with_load(server: &Server, token: &str, agent: &str, location: &str, load: Option<&str>) {
    let mut req = reqwest::blocking::Client::new()
        .get(server.url(&format!(
            "/v1/agent/assignments?agent={agent}&location={location}"
        )))
        .bearer_auth(token);
    if let Some(load) = load {
        req = req.header("monitors-agent-load", load);
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn an_overloaded_agent_is_shown_in_the_status_the_metrics_and_the_overview() {
    let dir = TempDir::new("overload");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache()]), "");
    let overloaded = "due=10, started=7, deficit=3, waiting=12, overloaded=1";
    poll_with_load(&server, &agent, "a", "eu", Some(overloaded));
    // An older agent sends no load; a value that does not parse is ignored.
    poll_with_load(&server, &agent, "b", "us", None);
    poll_with_load(&server, &agent, "c", "us", Some("deficit=lots"));

    let (code, _, status) = get_text(&server, "/v1/projects/shop/status", &deploy);
    assert_eq!(code, StatusCode::OK);
    let status: Value = serde_json::from_str(&status).unwrap();
    let agents = status["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3, "{status}");
    assert_eq!(agents[0]["agent"], "a");
    assert_eq!(agents[0]["note"], "overloaded: short by 3.00 checks/s");
    assert_eq!(agents[0]["load"]["deficit_per_second"], 3.0);
    assert_eq!(agents[0]["load"]["waiting"], 12);
    for other in &agents[1..] {
        assert!(
            other["load"].is_null() && other["note"].is_null(),
            "{other}"
        );
    }

    let (_, _, metrics) = get_text(&server, "/metrics", &deploy);
    let a = "{project=\"shop\",agent=\"a\",location=\"eu\"}";
    assert!(
        metrics.contains(&format!("monitors_agent_overloaded{a} 1\n")),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("monitors_agent_deficit_checks_per_second{a} 3\n")),
        "{metrics}"
    );
    assert!(metrics.contains("# agent a in eu overloaded: short by 3.00 checks/s"));
    assert!(!metrics.contains("agent=\"b\""), "{metrics}");

    let (code, _, page) = get_text(&server, "/", &deploy);
    assert_eq!(code, StatusCode::OK);
    assert!(
        page.contains(
            "data-overloaded-agent=\"a\">agent a in eu overloaded: short by 3.00 checks/s"
        ),
        "{page}"
    );

    // Caught up: the mark goes.
    poll_with_load(
        &server,
        &agent,
        "a",
        "eu",
        Some("due=10, started=10, deficit=0, waiting=0, overloaded=0"),
    );
    let (_, _, metrics) = get_text(&server, "/metrics", &deploy);
    assert!(
        metrics.contains(&format!("monitors_agent_overloaded{a} 0\n")),
        "{metrics}"
    );
    assert!(!metrics.contains("overloaded: short by"), "{metrics}");
}

/// A monitor of a closed port retried once, 1 s later, in another location.
fn retried_elsewhere() -> TcpMonitor {
    let mut m = TcpMonitor::new("flaky", "127.0.0.1", 9);
    m.retry = monitor_core::RetryStrategy::SingleRetry {
        base_backoff_seconds: 1,
        same_region: false,
    };
    m
}

/// The first attempt of `flaky` at `tick`, failed in `location`.
fn first_attempt(agent: &str, location: &str, tick: u64) -> Value {
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    let error = json!({"kind": "refused", "message": "connection refused", "hints": []});
    let timings = json!({"total_ms": 1.0});
    json!({
        "agent": agent, "location": location, "monitor": "flaky", "tick": tick,
        "not_before_ms": 0,
        "result": {
            "id": "flaky", "name": "flaky", "target": "127.0.0.1:9", "status": "failed",
            "error": error, "timings": timings, "address": null,
            "attempts": [{"status": "failed", "error": error, "timings": timings,
                          "address": null, "started_at": now, "location": location}],
            "assertions": [], "response_excerpt": "", "tls": null, "started_at": now
        }
    })
}

fn hand(server: &Server, token: &str, body: &Value) -> (StatusCode, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(server.url("/v1/agent/retries"))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    let status = resp.status();
    (status, resp.json().unwrap_or(Value::Null))
}

fn take(server: &Server, token: &str, agent: &str, location: &str, wait: u64) -> Value {
    let resp = reqwest::blocking::Client::new()
        .get(server.url(&format!(
            "/v1/agent/retries?agent={agent}&location={location}&wait={wait}"
        )))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().unwrap()
}

#[test]
fn a_failed_first_attempt_goes_to_the_next_location_that_takes_retries() {
    let dir = TempDir::new("retries");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![retried_elsewhere(), cache()]), "");
    poll_with_load(&server, &agent, "a", "eu", None);

    // One location: the assignment retries where it runs, and a handoff has nowhere to go.
    let (_, _, body) = get_text(&server, "/v1/agent/assignments?agent=a&location=eu", &agent);
    assert!(!body.contains("retry_elsewhere"), "{body}");
    let (status, answer) = hand(&server, &agent, &first_attempt("a", "eu", 7));
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");

    // Another location whose agent polls retries: it gets the check, once.
    poll_with_load(&server, &agent, "b", "us", None);
    let (_, _, body) = get_text(&server, "/v1/agent/assignments?agent=a&location=eu", &agent);
    let assignment: Value = serde_json::from_str(&body).unwrap();
    let flaky = assignment["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["monitor"]["id"] == "flaky")
        .unwrap();
    assert_eq!(flaky["retry_elsewhere"], true, "{body}");
    assert_eq!(take(&server, &agent, "b", "us", 0)["retries"], json!([]));
    let (status, answer) = hand(&server, &agent, &first_attempt("a", "eu", 7));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"location": "us"}));
    let taken = take(&server, &agent, "b", "us", 5);
    let retries = taken["retries"].as_array().unwrap();
    assert_eq!(retries.len(), 1, "{taken}");
    assert_eq!(retries[0]["monitor"]["id"], "flaky");
    assert_eq!(
        (retries[0]["tick"].as_u64(), retries[0]["from"].as_str()),
        (Some(7), Some("eu"))
    );
    assert_eq!(retries[0]["result"]["attempts"][0]["location"], "eu");
    assert_eq!(take(&server, &agent, "b", "us", 0)["retries"], json!([]));

    // A monitor that retries where it ran is not handed; nor is a malformed one.
    let mut same = first_attempt("a", "eu", 8);
    same["monitor"] = json!("cache");
    same["result"]["id"] = json!("cache");
    assert_eq!(hand(&server, &agent, &same).0, StatusCode::CONFLICT);
    let mut wrong = first_attempt("a", "eu", 8);
    wrong["result"]["id"] = json!("other");
    assert_eq!(
        hand(&server, &agent, &wrong).0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}
