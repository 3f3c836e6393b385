//! Issue 20 over HTTP against the real binary: agents report their load (the
//! `monitors-agent-load` header) and the control plane shows an overloaded one in its
//! status, `/metrics` and the overview; failed first attempts handed to another location
//! (`/v1/agent/retries`).

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
