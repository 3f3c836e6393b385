//! Triggered runs over HTTP against the real binary (issue 21): `POST
//! /v1/projects/{project}/trigger` with its filters and bounds, the runs handed through
//! the retries poll to agents that ask for them (`triggers=true`), their results posted
//! with `trigger` kept beside the trigger (never stored as scheduled results), and
//! `GET /v1/projects/{project}/triggers/{id}?wait=` long polling them.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

fn post_trigger(server: &Server, token: &str, body: &Value) -> (StatusCode, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(server.url("/v1/projects/shop/trigger"))
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    let status = resp.status();
    (status, resp.json().unwrap_or(Value::Null))
}

fn get_json(server: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    let resp = reqwest::blocking::Client::new()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status();
    (status, resp.json().unwrap_or(Value::Null))
}

/// A triggered result of `monitor` from `location` for trigger `id`.
fn triggered(monitor: &str, location: &str, id: &str) -> Value {
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    let timings = json!({"total_ms": 1.0});
    json!({
        "id": format!("{monitor}/{location}/trigger/{id}"), "monitor": monitor, "tick": 0,
        "trigger": id,
        "result": {
            "id": monitor, "name": monitor, "target": "127.0.0.1:9", "status": "passed",
            "error": null, "timings": timings, "address": null,
            "attempts": [{"status": "passed", "error": null, "timings": timings,
                          "address": null, "started_at": now, "location": location}],
            "assertions": [], "response_excerpt": "", "tls": null, "started_at": now
        }
    })
}

fn post_results(
    server: &Server,
    token: &str,
    location: &str,
    results: &[Value],
) -> (StatusCode, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(server.url("/v1/agent/results"))
        .bearer_auth(token)
        .json(&json!({"agent": "a", "location": location, "results": results}))
        .send()
        .unwrap();
    let status = resp.status();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn triggered_runs_go_to_agents_that_take_them_and_their_results_come_back() {
    let dir = TempDir::new("trigger");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let web = TcpMonitor::new("web", "127.0.0.1", 9).tag("web");
    api.ok_deploy(&bundle(vec![cache(), web]), "");

    // Nobody takes triggered runs yet.
    let (status, body) = post_trigger(&server, &deploy, &json!({}));
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // `a` (eu) asks for them; `b` (us) is an older agent that does not.
    let (status, taken) = get_json(
        &server,
        &agent,
        "/v1/agent/retries?agent=a&location=eu&wait=0&triggers=true",
    );
    assert_eq!(status, StatusCode::OK, "{taken}");
    assert_eq!(taken, json!({"retries": []}));
    let (status, _) = get_json(
        &server,
        &agent,
        "/v1/agent/retries?agent=b&location=us&wait=0",
    );
    assert_eq!(status, StatusCode::OK);

    // Filters and bounds.
    for (request, path) in [
        (json!({"grep": "("}), "grep"),
        (json!({"grep": "x".repeat(1001)}), "grep"),
        (json!({"tags": ["bad,tag"]}), "tags[0]"),
        (json!({"locations": vec!["eu"; 101]}), "locations"),
    ] {
        let (status, body) = post_trigger(&server, &deploy, &request);
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{request}: {body}"
        );
        assert_eq!(body["problems"][0]["path"], path, "{body}");
    }
    let (status, body) = post_trigger(&server, &deploy, &json!({"grep": "^nothing$"}));
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("no deployed monitor"), "{body}");
    let (status, _) = post_trigger(&server, &deploy, &json!({"colour": "red"}));
    assert!(status.is_client_error(), "{status}");
    let (status, body) = post_trigger(&server, &deploy, &json!({"locations": ["us"]}));
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // An agent token cannot trigger.
    let (status, _) = post_trigger(&server, &agent, &json!({}));
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = post_trigger(&server, &deploy, &json!({"tags": ["web"]}));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["runs"], json!([{"monitor": "web", "location": "eu"}]));
    // Taken by the eu agent only, once.
    let (_, taken) = get_json(
        &server,
        &agent,
        "/v1/agent/retries?agent=a&location=eu&wait=5&triggers=true",
    );
    let web_trigger = body["trigger"].as_str().unwrap().to_owned();
    assert_eq!(taken["triggered"][0]["trigger"], web_trigger, "{taken}");

    // Everything: both monitors in eu, the only location taking triggered runs.
    let (status, body) = post_trigger(&server, &deploy, &json!({}));
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["trigger"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16, "{body}");
    assert_eq!(
        body["runs"],
        json!([{"monitor": "cache", "location": "eu"}, {"monitor": "web", "location": "eu"}])
    );
    let (_, taken) = get_json(
        &server,
        &agent,
        "/v1/agent/retries?agent=b&location=us&wait=0",
    );
    assert!(taken.get("triggered").is_none(), "{taken}");
    let (_, taken) = get_json(
        &server,
        &agent,
        "/v1/agent/retries?agent=a&location=eu&wait=5&triggers=true",
    );
    let runs = taken["triggered"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{taken}");
    assert!(runs.iter().all(|r| r["trigger"] == id.as_str()), "{taken}");
    assert_eq!(runs[0]["monitor"]["id"], "cache");

    let status_path = format!("/v1/projects/shop/triggers/{id}");
    let (status, body) = get_json(&server, &deploy, &status_path);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["results"], json!([]));
    assert_eq!(body["missing"].as_array().unwrap().len(), 2);

    // A result with a scheduled id, or another tick, is refused.
    let mut wrong = triggered("cache", "eu", &id);
    wrong["id"] = json!("cache/eu/0");
    assert_eq!(
        post_results(&server, &agent, "eu", &[wrong]).0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut wrong = triggered("cache", "eu", &id);
    wrong["tick"] = json!(3);
    assert_eq!(
        post_results(&server, &agent, "eu", &[wrong]).0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, body) = post_results(&server, &agent, "eu", &[triggered("cache", "eu", &id)]);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"accepted": 1, "duplicates": 0}));
    let (_, body) = post_results(&server, &agent, "eu", &[triggered("cache", "eu", &id)]);
    assert_eq!(body, json!({"accepted": 0, "duplicates": 1}));

    // The long poll answers as soon as the last result comes.
    let url = server.url("/v1/agent/results");
    let (agent2, id2) = (agent.clone(), id.clone());
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        reqwest::blocking::Client::new()
            .post(url)
            .bearer_auth(agent2)
            .json(
                &json!({"agent": "a", "location": "eu", "results": [triggered("web", "eu", &id2)]}),
            )
            .send()
            .unwrap()
            .status()
    });
    let started = Instant::now();
    let (status, body) = get_json(&server, &deploy, &format!("{status_path}?wait=20"));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(started.elapsed() < Duration::from_secs(10), "{body}");
    assert_eq!(late.join().unwrap(), StatusCode::OK);
    assert_eq!(body["missing"], json!([]), "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{body}");
    assert_eq!(
        (
            results[0]["monitor"].as_str(),
            results[0]["location"].as_str(),
            results[0]["agent"].as_str()
        ),
        (Some("cache"), Some("eu"), Some("a"))
    );
    assert_eq!(results[0]["result"]["status"], "passed");

    // Never stored as scheduled results.
    let (_, stored) = get_json(&server, &deploy, "/v1/projects/shop/monitors/cache/results");
    assert_eq!(stored["results"], json!([]), "{stored}");

    // An unknown trigger; a wait over the bound.
    let (status, _) = get_json(
        &server,
        &deploy,
        "/v1/projects/shop/triggers/0123456789abcdef",
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get_json(&server, &deploy, &format!("{status_path}?wait=61"));
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
