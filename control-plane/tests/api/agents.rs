//! The routes of "Agents, results, status" in `control-plane/API.md`, over HTTP against the
//! real binary: token roles, long-polled assignments, results, status, history, retention,
//! and metrics (the pages are tested in `pages`).

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

/// An agent of one project: an id, a location and a token (of either role).
pub(super) struct Agent {
    client: Client,
    base: String,
    token: String,
    id: String,
    location: String,
}

impl Agent {
    pub(super) fn new(server: &Server, token: &str, id: &str, location: &str) -> Agent {
        Agent {
            client: Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .unwrap(),
            base: server.base.clone(),
            token: token.to_owned(),
            id: id.to_owned(),
            location: location.to_owned(),
        }
    }

    pub(super) fn poll_query(
        &self,
        query: &str,
        etag: Option<&str>,
    ) -> reqwest::blocking::Response {
        let mut req = self
            .client
            .get(format!("{}/v1/agent/assignments?{query}", self.base))
            .bearer_auth(&self.token);
        if let Some(etag) = etag {
            req = req.header("if-none-match", format!("\"{etag}\""));
        }
        req.send().unwrap()
    }

    /// Polls, holding `etag`, for up to `wait` seconds.
    pub(super) fn poll(&self, etag: Option<&str>, wait: u64) -> reqwest::blocking::Response {
        let query = format!("agent={}&location={}&wait={wait}", self.id, self.location);
        self.poll_query(&query, etag)
    }

    /// The current assignment (a poll without an etag), its ETag header checked.
    pub(super) fn assignment(&self) -> Value {
        let resp = self.poll(None, 0);
        assert_eq!(resp.status(), StatusCode::OK);
        let header = resp.headers()["etag"].to_str().unwrap().to_owned();
        let body: Value = resp.json().unwrap();
        assert_eq!(header, format!("\"{}\"", body["etag"].as_str().unwrap()));
        assert_eq!(body["agent"], self.id.as_str());
        assert_eq!(body["location"], self.location.as_str());
        body
    }

    pub(super) fn post_raw(&self, body: Vec<u8>, encoding: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(format!("{}/v1/agent/results", self.base))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body);
        if let Some(encoding) = encoding {
            req = req.header("content-encoding", encoding);
        }
        let resp = req.send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"));
        (status, value)
    }

    pub(super) fn post(&self, results: &[Value]) -> (StatusCode, Value) {
        let body = json!({"agent": self.id, "location": self.location, "results": results});
        self.post_raw(serde_json::to_vec(&body).unwrap(), None)
    }

    /// Posts and expects 200 with these counts.
    pub(super) fn ok_post(&self, results: &[Value], accepted: u64, duplicates: u64) {
        let (status, body) = self.post(results);
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"accepted": accepted, "duplicates": duplicates})
        );
    }

    /// A result of this agent for `monitor` at `tick`.
    pub(super) fn result(
        &self,
        monitor: &str,
        tick: u64,
        status: &str,
        started_at: OffsetDateTime,
    ) -> Value {
        json!({
            "id": format!("{monitor}/{}/{tick}", self.location),
            "monitor": monitor,
            "tick": tick,
            "result": check_result(monitor, status, started_at),
        })
    }
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// A `CheckResult` as an agent sends it.
pub(super) fn check_result(monitor: &str, status: &str, started_at: OffsetDateTime) -> Value {
    let error = match status {
        "passed" => Value::Null,
        "degraded" => json!({
            "kind": "degraded_response_time",
            "message": "slower than 200 ms",
            "hints": []
        }),
        _ => json!({
            "kind": "refused",
            "message": format!("{monitor}.internal:1 refused <b>the</b> connection & more"),
            "hints": ["is it running?"]
        }),
    };
    json!({
        "id": monitor,
        "name": monitor,
        "target": format!("{monitor}.internal:1"),
        "status": status,
        "error": error,
        "timings": {"dns_ms": 1.25, "connect_ms": 2.5, "tls_ms": null, "first_byte_ms": null, "total_ms": 12.75},
        "address": "10.0.0.1:1",
        "attempts": [],
        "assertions": [],
        "response_excerpt": "",
        "tls": null,
        "started_at": rfc3339(started_at),
    })
}

/// Adds a TLS report whose one certificate expires at `expiry`.
pub(super) fn with_tls(mut result: Value, expiry: OffsetDateTime, days_left: i64) -> Value {
    result["result"]["tls"] = json!({
        "version": "TLSv1.3",
        "cipher": "TLS13_AES_256_GCM_SHA384",
        "alpn": null,
        "server_name": "mail.internal",
        "verified": true,
        "problems": [],
        "chain": [{
            "subject": "CN=mail.internal",
            "issuer": "CN=ca",
            "sans": ["mail.internal"],
            "serial": "01",
            "not_before": "2025-01-01T00:00:00Z",
            "not_after": rfc3339(expiry),
            "days_left": days_left,
            "sha256": "AA:BB",
            "key_type": "EC",
            "key_bits": 256,
            "signature_algorithm": "ecdsa-with-SHA256",
            "self_issued": false
        }],
        "earliest_expiry": rfc3339(expiry),
        "days_left": days_left,
        "earliest_expiry_subject": "CN=mail.internal",
        "legacy": null
    });
    result
}

/// `(monitor id, every, index)` of each assigned monitor, in order.
fn assigned(assignment: &Value) -> Vec<(String, u64, u64)> {
    assignment["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["monitor"]["id"].as_str().unwrap().to_owned(),
                m["every"].as_u64().unwrap(),
                m["index"].as_u64().unwrap(),
            )
        })
        .collect()
}

pub(super) fn assigned_ids(assignment: &Value) -> Vec<String> {
    assigned(assignment).into_iter().map(|m| m.0).collect()
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(super) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn seconds_ago(s: i64) -> OffsetDateTime {
    now() - time::Duration::seconds(s)
}

/// GETs `path` with `token` as a bearer token: its status, content type and text.
pub(super) fn get_text(server: &Server, path: &str, token: &str) -> (StatusCode, String, String) {
    let resp = reqwest::blocking::Client::new()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, resp.text().unwrap())
}

#[test]
fn agent_tokens_reach_only_the_agent_routes() {
    let dir = TempDir::new("roles");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let other_agent = create_token_with_role(&dir.db(), "other", "agent");
    let bad = Command::new(BIN)
        .args([
            "token",
            "create",
            "--project",
            "shop",
            "--role",
            "admin",
            "--database",
        ])
        .arg(dir.db())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());

    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache(), db()]), "");
    let before = api.snapshot();

    // An agent token gets 403 on every project route, saying why, and changes nothing.
    let as_agent = Api::new(&server, "shop", &agent);
    let refusals = [
        as_agent.get("/monitors"),
        as_agent.get("/versions"),
        as_agent.get("/versions/1"),
        as_agent.get("/status"),
        as_agent.get("/monitors/cache/results"),
        as_agent.deploy(&bundle(vec![mail()]), "?prune=true"),
        as_agent.rollback(1),
        as_agent.destroy(),
    ];
    for refusal in refusals {
        let body = expect_error(refusal, StatusCode::FORBIDDEN);
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("agent token"), "{message}");
    }
    assert_eq!(api.snapshot(), before);

    // The agent routes take either role, for the token's own project.
    let a1 = Agent::new(&server, &agent, "a1", "eu");
    assert_eq!(assigned_ids(&a1.assignment()), ["cache", "db"]);
    let d1 = Agent::new(&server, &deploy, "d1", "us");
    assert_eq!(d1.assignment()["agents_in_location"], 1);
    let o1 = Agent::new(&server, &other_agent, "o1", "eu");
    let theirs = o1.assignment();
    assert_eq!(theirs["monitors"], json!([]));
    assert_eq!(theirs["agents_in_location"], 1);
    o1.ok_post(&[o1.result("cache", 1, "passed", now())], 1, 0);
    d1.ok_post(&[d1.result("cache", 1, "passed", now())], 1, 0);
    let history = api.ok_get("/monitors/cache/results");
    assert_eq!(history["results"].as_array().unwrap().len(), 1);
    assert_eq!(history["results"][0]["agent"], "d1");

    // Without a known token: 401.
    let stranger = Agent::new(&server, "mon_0000", "a1", "eu");
    assert_eq!(stranger.poll(None, 0).status(), StatusCode::UNAUTHORIZED);
    assert_eq!(stranger.post(&[]).0, StatusCode::UNAUTHORIZED);
    let anonymous =
        reqwest::blocking::get(server.url("/v1/agent/assignments?agent=a&location=b")).unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn assignments_follow_locations_parallelism_and_rendezvous() {
    let dir = TempDir::new("assign");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);

    let plain: Vec<String> = (0..12).map(|i| format!("m{i:02}")).collect();
    let mut monitors: Vec<TcpMonitor> = plain
        .iter()
        .map(|id| TcpMonitor::new(id, "svc.internal", 80))
        .collect();
    let mut par = TcpMonitor::new("par", "svc.internal", 81);
    par.run_parallel = true;
    let mut us_only = TcpMonitor::new("us-only", "svc.internal", 82);
    us_only.locations = vec!["us".into()];
    let mut mixed = TcpMonitor::new("mixed", "svc.internal", 83);
    mixed.locations = vec!["us".into()];
    mixed.private_locations = vec!["eu".into()];
    let mut private = TcpMonitor::new("private", "svc.internal", 84);
    private.private_locations = vec!["dc1".into()];
    let mut off = TcpMonitor::new("off", "svc.internal", 85);
    off.activated = false;
    let mut test = TcpMonitor::new("test", "svc.internal", 86);
    test.test_only = true;
    let mut quiet = TcpMonitor::new("quiet", "svc.internal", 87);
    quiet.muted = true;
    monitors.extend([par, us_only, mixed, private, off, test, quiet]);
    api.ok_deploy(&bundle(monitors), "");

    // One location, two agents: each monitor that runs there goes to exactly one of them.
    let e1 = Agent::new(&server, &agent, "e1", "eu");
    let e2 = Agent::new(&server, &agent, "e2", "eu");
    e1.assignment();
    e2.assignment();
    let (a1, a2) = (e1.assignment(), e2.assignment());
    assert_eq!(a1["agents_in_location"], 2);
    assert_eq!(a2["agents_in_location"], 2);
    let (s1, s2) = (assigned_ids(&a1), assigned_ids(&a2));
    assert!(!s1.is_empty() && !s2.is_empty(), "{s1:?} {s2:?}");
    let one: BTreeSet<&String> = s1.iter().collect();
    let two: BTreeSet<&String> = s2.iter().collect();
    assert!(one.is_disjoint(&two), "{s1:?} {s2:?}");
    let mut union: Vec<&str> = s1.iter().chain(&s2).map(String::as_str).collect();
    union.sort();
    let mut expected: Vec<&str> = plain.iter().map(String::as_str).collect();
    expected.extend(["mixed", "par", "quiet"]);
    expected.sort();
    assert_eq!(union, expected);
    // Sorted by id, with the phase of the contract; alone in its location, every tick.
    for a in [&a1, &a2] {
        let ids = assigned_ids(a);
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        for m in a["monitors"].as_array().unwrap() {
            let id = m["monitor"]["id"].as_str().unwrap();
            assert_eq!(m["phase_ms"], fnv1a64(id.as_bytes()) % 600_000, "{id}");
            assert_eq!(
                (m["every"].clone(), m["index"].clone()),
                (json!(1), json!(0))
            );
            // The monitor comes whole, as deployed.
            let typed: TcpMonitor = serde_json::from_value(m["monitor"].clone()).unwrap();
            assert_eq!(typed.id, id);
        }
    }

    // A second location: round robin over [eu, us] unless parallel; `locations` and
    // `private_locations` both count; deactivated, test-only and dc1-only run nowhere.
    let u1 = Agent::new(&server, &agent, "u1", "us");
    let us = assigned(&u1.assignment());
    let mut eu = assigned(&e1.assignment());
    eu.extend(assigned(&e2.assignment()));
    eu.sort();
    let mut want_eu: Vec<(String, u64, u64)> = plain.iter().map(|id| (id.clone(), 2, 0)).collect();
    want_eu.extend([
        ("mixed".into(), 2, 0),
        ("par".into(), 1, 0),
        ("quiet".into(), 2, 0),
    ]);
    want_eu.sort();
    assert_eq!(eu, want_eu);
    let mut want_us: Vec<(String, u64, u64)> = plain.iter().map(|id| (id.clone(), 2, 1)).collect();
    want_us.extend([
        ("mixed".into(), 2, 1),
        ("par".into(), 1, 0),
        ("quiet".into(), 2, 1),
        ("us-only".into(), 1, 0),
    ]);
    want_us.sort();
    assert_eq!(us, want_us);

    // An agent moving to another location is heard there.
    let moved = Agent::new(&server, &agent, "e2", "us");
    assert_eq!(moved.assignment()["agents_in_location"], 2);
    assert_eq!(e1.assignment()["agents_in_location"], 1);
}

#[test]
fn a_silent_agent_is_dropped_and_its_monitors_move() {
    let dir = TempDir::new("expiry");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let deploy = create_token(&dir.db(), "shop");
    let server = Server::start(&dir.db(), &["--agent-timeout", "1s"], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let all: Vec<String> = (0..20).map(|i| format!("svc{i:02}")).collect();
    api.ok_deploy(
        &bundle(
            all.iter()
                .map(|id| TcpMonitor::new(id, "svc.internal", 80))
                .collect(),
        ),
        "",
    );
    let a = Agent::new(&server, &agent, "a", "eu");
    let b = Agent::new(&server, &agent, "b", "eu");
    a.assignment();
    let theirs = assigned_ids(&b.assignment());
    let mine = a.assignment();
    assert_eq!(mine["agents_in_location"], 2);
    assert!(!theirs.is_empty());
    assert_eq!(assigned_ids(&mine).len() + theirs.len(), all.len());

    // b falls silent; a's long poll comes back once b is gone, with every monitor.
    let started = Instant::now();
    let resp = a.poll(mine["etag"].as_str(), 30);
    let waited = started.elapsed();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(waited > Duration::from_millis(300), "{waited:?}");
    let now_mine: Value = resp.json().unwrap();
    assert_eq!(assigned_ids(&now_mine), all);
    assert_eq!(now_mine["agents_in_location"], 1);

    // An agent waiting in a long poll longer than the timeout is not dropped meanwhile.
    let etag = now_mine["etag"].as_str().unwrap().to_owned();
    let poller = {
        let a = Agent::new(&server, &agent, "a", "eu");
        std::thread::spawn(move || a.poll(Some(&etag), 3).status())
    };
    std::thread::sleep(Duration::from_millis(2000));
    let (_, _, metrics) = get_text(&server, "/metrics", &deploy);
    assert!(
        metrics.contains("control_plane_agents{project=\"shop\",location=\"eu\"} 1"),
        "{metrics}"
    );
    assert_eq!(poller.join().unwrap(), StatusCode::NOT_MODIFIED);
    // b comes back and takes its share again.
    assert_eq!(assigned_ids(&b.assignment()), theirs);
}

#[test]
fn a_long_poll_answers_304_after_wait_and_at_once_on_a_change() {
    let dir = TempDir::new("longpoll");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Arc::new(Api::new(&server, "shop", &deploy));
    api.ok_deploy(&bundle(vec![cache()]), "");
    let a = Arc::new(Agent::new(&server, &agent, "a", "eu"));
    let first = a.assignment();
    let etag = first["etag"].as_str().unwrap().to_owned();
    assert_eq!(etag.len(), 64);

    // Unchanged: 304 with the ETag and no body, after `wait`.
    let started = Instant::now();
    let resp = a.poll(Some(&etag), 1);
    let waited = started.elapsed();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(resp.headers()["etag"], format!("\"{etag}\"").as_str());
    assert!(resp.text().unwrap().is_empty());
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
    let started = Instant::now();
    assert_eq!(a.poll(Some(&etag), 0).status(), StatusCode::NOT_MODIFIED);
    assert!(started.elapsed() < Duration::from_millis(900));
    // Another etag, or none: the assignment at once.
    let started = Instant::now();
    assert_eq!(a.poll(Some("stale"), 30).status(), StatusCode::OK);
    assert_eq!(a.poll(None, 30).status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(5));

    // A deploy that changes the assignment answers a waiting poll at once.
    let spawn_poll = |etag: String| {
        let a = Arc::clone(&a);
        std::thread::spawn(move || {
            let started = Instant::now();
            let resp = a.poll(Some(&etag), 30);
            let status = resp.status();
            let body: Value = if status == StatusCode::OK {
                resp.json().unwrap()
            } else {
                Value::Null
            };
            (status, body, started.elapsed())
        })
    };
    let waiting = spawn_poll(etag.clone());
    std::thread::sleep(Duration::from_millis(500));
    api.ok_deploy(&bundle(vec![cache(), db()]), "");
    let (status, second, waited) = waiting.join().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(assigned_ids(&second), ["cache", "db"]);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_ne!(second["etag"], first["etag"]);

    // So do a rollback and a destroy.
    let waiting = spawn_poll(second["etag"].as_str().unwrap().to_owned());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.rollback(1).0, StatusCode::OK);
    let (status, third, waited) = waiting.join().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(assigned_ids(&third), ["cache"]);
    assert_eq!(third["etag"], first["etag"]);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let waiting = spawn_poll(etag.clone());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(api.destroy().0, StatusCode::OK);
    let (status, fourth, waited) = waiting.join().unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fourth["monitors"], json!([]));
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    // Bad queries: 400 saying what is wrong.
    for query in [
        "agent=a&location=eu&wait=61",
        "agent=a&location=eu&wait=-1",
        "agent=a&location=eu&wait=soon",
        "agent=a",
        "location=eu",
        "agent=a%20b&location=eu",
        "agent=a&location=",
        "agent=a&location=eu&color=red",
    ] {
        let resp = a.poll_query(query, None);
        let status = resp.status();
        let body: Value = resp.json().unwrap();
        let body = expect_error((status, body), StatusCode::BAD_REQUEST);
        assert!(
            body["error"].as_str().unwrap().starts_with("bad query"),
            "{query}: {body}"
        );
    }
}

#[test]
fn results_are_stored_once_whatever_the_retries() {
    let dir = TempDir::new("dedup");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache(), db()]), "");
    let a = Agent::new(&server, &agent, "a", "eu");
    let t = seconds_ago(60);
    let batch = [
        a.result("cache", 1, "passed", t),
        a.result("cache", 2, "failed", t + time::Duration::seconds(10)),
        a.result("db", 1, "passed", t),
    ];
    a.ok_post(&batch, 3, 0);
    a.ok_post(&batch, 0, 3);
    // Within one batch too, and gzip.
    let retry = json!({
        "agent": "a",
        "location": "eu",
        "results": [batch[0], a.result("cache", 3, "passed", t + time::Duration::seconds(20)), batch[0]],
    });
    let (status, body) = a.post_raw(gzip(&serde_json::to_vec(&retry).unwrap()), Some("gzip"));
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"accepted": 1, "duplicates": 2}));
    a.ok_post(&[], 0, 0);
    let history = api.ok_get("/monitors/cache/results");
    let ticks: Vec<u64> = history["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tick"].as_u64().unwrap())
        .collect();
    assert_eq!(ticks, [1, 2, 3]);

    // Results of a monitor no longer deployed are stored all the same, and kept out of
    // the status.
    a.ok_post(&[a.result("gone", 7, "passed", t)], 1, 0);
    let gone = api.ok_get("/monitors/gone/results");
    assert_eq!(gone["monitor"], "gone");
    assert_eq!(gone["results"][0]["id"], "gone/eu/7");
    let status = api.ok_get("/status");
    let ids: Vec<&str> = status["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cache", "db"]);

    // Posting results is a heartbeat.
    let (_, _, metrics) = get_text(&server, "/metrics", &deploy);
    assert!(
        metrics.contains("control_plane_agents{project=\"shop\",location=\"eu\"} 1"),
        "{metrics}"
    );
}

#[test]
fn bad_results_are_refused_with_paths_and_store_nothing() {
    let dir = TempDir::new("bad-results");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let limit = 64 * 1024;
    let server = Server::start(&dir.db(), &["--max-body-bytes", &limit.to_string()], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache(), db()]), "");
    let a = Agent::new(&server, &agent, "a", "eu");
    let t = seconds_ago(30);
    a.ok_post(&[a.result("cache", 1, "passed", t)], 1, 0);
    let snapshot = || {
        let mut status = api.ok_get("/status");
        status["generated_at"] = Value::Null;
        (
            api.ok_get("/monitors/cache/results"),
            api.ok_get("/monitors/db/results"),
            status,
        )
    };
    let before = snapshot();
    let check = |response: (StatusCode, Value), expected: StatusCode, path: Option<&str>| {
        let body = expect_error(response, expected);
        if let Some(path) = path {
            assert_eq!(body["problems"][0]["path"], path, "{body}");
        }
        assert_eq!(snapshot(), before, "after {body}");
        body
    };
    let good = a.result("cache", 2, "passed", t);
    let body_with =
        |results: Vec<Value>| json!({"agent": "a", "location": "eu", "results": results});
    let send = |body: &Value| a.post_raw(serde_json::to_vec(body).unwrap(), None);

    // 400: malformed, naming the path.
    check(
        a.post_raw(b"{".to_vec(), None),
        StatusCode::BAD_REQUEST,
        None,
    );
    check(a.post_raw(vec![0xff], None), StatusCode::BAD_REQUEST, None);
    let mut bad_status = a.result("db", 1, "passed", t);
    bad_status["result"]["status"] = json!("fine");
    let body = check(
        send(&body_with(vec![good.clone(), bad_status])),
        StatusCode::BAD_REQUEST,
        Some("results[1].result.status"),
    );
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("results[1].result.status"),
        "{body}"
    );
    let mut bad_tick = good.clone();
    bad_tick["tick"] = json!(-1);
    check(
        send(&body_with(vec![bad_tick])),
        StatusCode::BAD_REQUEST,
        Some("results[0].tick"),
    );
    let mut unknown = body_with(vec![good.clone()]);
    unknown["version"] = json!(2);
    check(send(&unknown), StatusCode::BAD_REQUEST, None);
    check(
        send(&json!({"agent": "a", "results": []})),
        StatusCode::BAD_REQUEST,
        None,
    );

    // 422: a result for another monitor than it says, a wrong id, a bad agent name; the
    // whole batch is refused.
    let mut other = a.result("db", 1, "passed", t);
    other["result"]["id"] = json!("cache");
    check(
        send(&body_with(vec![good.clone(), other])),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("results[1].result.id"),
    );
    let mut wrong_id = good.clone();
    wrong_id["id"] = json!("cache/us/2");
    check(
        send(&body_with(vec![wrong_id])),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("results[0].id"),
    );
    check(
        send(&json!({"agent": "a b", "location": "eu", "results": [good]})),
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("agent"),
    );

    // 413, 415, bad gzip.
    let mut big = good.clone();
    big["result"]["response_excerpt"] = json!("x".repeat(limit));
    check(
        send(&body_with(vec![big.clone()])),
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
    );
    let bomb = gzip(&serde_json::to_vec(&body_with(vec![big])).unwrap());
    check(
        a.post_raw(bomb, Some("gzip")),
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
    );
    let valid = serde_json::to_vec(&body_with(vec![good.clone()])).unwrap();
    check(
        a.post_raw(valid.clone(), Some("br")),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        None,
    );
    check(
        a.post_raw(b"not gzip".to_vec(), Some("gzip")),
        StatusCode::BAD_REQUEST,
        None,
    );

    // After all that, the same batch goes through.
    let (status, body) = a.post_raw(valid, None);
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 1);
}

#[test]
fn status_has_the_latest_result_per_location_with_failure_runs() {
    let dir = TempDir::new("status");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let mut quiet = cache();
    quiet.muted = true;
    quiet.alert_channels = vec!["oncall".into(), "pager".into()];
    api.ok_deploy(&bundle(vec![quiet, db(), mail()]), "");
    let empty = api.ok_get("/status");
    assert_eq!(empty["project"], "shop");
    assert!(OffsetDateTime::parse(empty["generated_at"].as_str().unwrap(), &Rfc3339).is_ok());
    assert_eq!(empty["monitors"][0]["locations"], json!([]));

    let eu = Agent::new(&server, &agent, "e1", "eu");
    let us = Agent::new(&server, &agent, "u1", "us");
    let t = seconds_ago(120);
    let at = |s: i64| t + time::Duration::seconds(s);
    let expiry = now() + time::Duration::days(30);
    eu.ok_post(
        &[
            eu.result("cache", 1, "passed", at(0)),
            eu.result("cache", 2, "failed", at(10)),
            eu.result("cache", 3, "failed", at(20)),
            eu.result("db", 1, "degraded", at(0)),
            // Started 2 minutes ago, expiring 30 days from now: 30 whole days left then.
            with_tls(eu.result("mail", 1, "passed", at(0)), expiry, 30),
        ],
        5,
        0,
    );
    us.ok_post(
        &[
            us.result("cache", 2, "passed", at(15)),
            us.result("cache", 1, "failed", at(5)),
        ],
        2,
        0,
    );
    let status = api.ok_get("/status");
    let monitors = status["monitors"].as_array().unwrap();
    let ids: Vec<&str> = monitors.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["cache", "db", "mail"]);
    let c = &monitors[0];
    assert_eq!(c["name"], "Redis cache answers PING");
    assert_eq!(c["muted"], true);
    assert_eq!(c["activated"], true);
    assert_eq!(c["run_parallel"], false);
    assert_eq!(c["frequency"], "10m");
    assert_eq!(c["alert_channels"], json!(["oncall", "pager"]));
    let locations = c["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 2);
    let e = &locations[0];
    assert_eq!(e["location"], "eu");
    assert_eq!(e["agent"], "e1");
    assert_eq!(e["status"], "failed");
    assert_eq!(e["consecutive_failures"], 2);
    assert_eq!(e["error"]["kind"], "refused");
    assert_eq!(e["timings"]["total_ms"], 12.75);
    assert_eq!(e["timings"]["connect_ms"], 2.5);
    assert_eq!(e["days_left"], Value::Null);
    let started = OffsetDateTime::parse(e["started_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(started, at(20));
    let u = &locations[1];
    assert_eq!(u["location"], "us");
    assert_eq!(u["status"], "passed");
    assert_eq!(u["consecutive_failures"], 0);
    assert_eq!(u["error"], Value::Null);
    assert_eq!(monitors[1]["locations"][0]["status"], "degraded");
    assert_eq!(monitors[1]["locations"][0]["consecutive_failures"], 0);
    assert_eq!(monitors[2]["locations"][0]["days_left"], 30);

    // A later pass ends the run; a late failure inside it counts again.
    eu.ok_post(&[eu.result("cache", 5, "passed", at(40))], 1, 0);
    eu.ok_post(&[eu.result("cache", 4, "failed", at(30))], 1, 0);
    let e = &api.ok_get("/status")["monitors"][0]["locations"][0];
    assert_eq!(
        (e["status"].clone(), e["consecutive_failures"].clone()),
        (json!("passed"), json!(0))
    );
    eu.ok_post(&[eu.result("cache", 6, "failed", at(50))], 1, 0);
    let e = &api.ok_get("/status")["monitors"][0]["locations"][0];
    assert_eq!(
        (e["status"].clone(), e["consecutive_failures"].clone()),
        (json!("failed"), json!(1))
    );
}

#[test]
fn history_pages_by_since_location_and_limit() {
    let dir = TempDir::new("history");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let slashed = TcpMonitor::new("svc/api", "api.internal", 443);
    api.ok_deploy(&bundle(vec![cache(), slashed]), "");
    let eu = Agent::new(&server, &agent, "e1", "eu");
    let us = Agent::new(&server, &agent, "u1", "us");
    let t0 = seconds_ago(3600).replace_nanosecond(0).unwrap();
    let at = |ms: i64| t0 + time::Duration::milliseconds(ms);
    eu.ok_post(
        &(0..5)
            .map(|i| eu.result("cache", i, "passed", at(i as i64 * 1000)))
            .collect::<Vec<_>>(),
        5,
        0,
    );
    us.ok_post(
        &[
            us.result("cache", 1, "failed", at(1500)),
            us.result("cache", 3, "passed", at(3500)),
        ],
        2,
        0,
    );
    let ids = |query: &str| -> Vec<String> {
        let body = api.ok_get(&format!("/monitors/cache/results{query}"));
        assert_eq!(body["monitor"], "cache");
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(""),
        [
            "cache/eu/0",
            "cache/eu/1",
            "cache/us/1",
            "cache/eu/2",
            "cache/eu/3",
            "cache/us/3",
            "cache/eu/4"
        ]
    );
    assert_eq!(ids("?location=us"), ["cache/us/1", "cache/us/3"]);
    assert_eq!(ids("?limit=2"), ["cache/eu/0", "cache/eu/1"]);
    // `since` is exclusive, in any offset, encoded or not.
    let since = rfc3339(at(1000));
    assert_eq!(
        ids(&format!("?since={since}")),
        [
            "cache/us/1",
            "cache/eu/2",
            "cache/eu/3",
            "cache/us/3",
            "cache/eu/4"
        ]
    );
    let shifted = at(1000)
        .to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap())
        .format(&Rfc3339)
        .unwrap();
    assert!(shifted.contains("+02:00"), "{shifted}");
    let encoded = shifted.replace('+', "%2B");
    assert_eq!(
        ids(&format!("?since={encoded}&location=eu&limit=2")),
        ["cache/eu/2", "cache/eu/3"]
    );
    assert_eq!(
        ids(&format!("?since={shifted}&location=eu&limit=2")),
        ["cache/eu/2", "cache/eu/3"]
    );
    assert_eq!(
        ids(&format!("?since={}", rfc3339(at(4000)))),
        Vec::<String>::new()
    );

    // Each entry: id, location, agent, tick, received_at and the result as sent.
    let body = api.ok_get("/monitors/cache/results?location=us&limit=1");
    let r = &body["results"][0];
    assert_eq!(r["location"], "us");
    assert_eq!(r["agent"], "u1");
    assert_eq!(r["tick"], 1);
    assert_eq!(r["result"]["status"], "failed");
    assert_eq!(r["result"]["id"], "cache");
    let received = OffsetDateTime::parse(r["received_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!((now() - received).whole_seconds().abs() < 60);

    // Ids with a slash travel percent-encoded.
    eu.ok_post(&[eu.result("svc/api", 9, "passed", at(0))], 1, 0);
    let body = api.ok_get("/monitors/svc%2Fapi/results");
    assert_eq!(body["monitor"], "svc/api");
    assert_eq!(body["results"][0]["id"], "svc/api/eu/9");
    assert_eq!(
        api.ok_get("/monitors/nothing/results")["results"],
        json!([])
    );

    // 400 on a bad since, limit or location.
    for query in [
        "?since=yesterday",
        "?since=2025-13-01T00:00:00Z",
        "?limit=0",
        "?limit=10001",
        "?limit=many",
        "?location=a%20b",
        "?sort=desc",
    ] {
        let body = expect_error(
            api.get(&format!("/monitors/cache/results{query}")),
            StatusCode::BAD_REQUEST,
        );
        assert!(
            body["error"].as_str().unwrap().starts_with("bad query"),
            "{query}: {body}"
        );
    }
    assert_eq!(ids("?limit=10000").len(), 7);
}

#[test]
fn results_past_the_retention_are_pruned_at_start() {
    let dir = TempDir::new("retention");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &["--retention", "1h"], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache()]), "");
    let eu = Agent::new(&server, &agent, "e1", "eu");
    let us = Agent::new(&server, &agent, "u1", "us");
    eu.ok_post(
        &[
            eu.result("cache", 1, "failed", seconds_ago(7200)),
            eu.result("cache", 2, "passed", seconds_ago(60)),
        ],
        2,
        0,
    );
    us.ok_post(&[us.result("cache", 1, "passed", seconds_ago(7200))], 1, 0);
    // Stored (all three count), but the history never serves results past the retention.
    assert_eq!(
        api.ok_get("/monitors/cache/results")["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.ok_get("/status")["monitors"][0]["locations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    drop(server);

    // The old results are gone by the first request after a restart: from the history,
    // and the location whose latest result they were from the status.
    let server = Server::start(&dir.db(), &["--retention", "1h"], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let history = api.ok_get("/monitors/cache/results");
    let ids: Vec<&str> = history["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["cache/eu/2"]);
    let status = api.ok_get("/status");
    let locations = status["monitors"][0]["locations"].as_array().unwrap();
    assert_eq!(locations.len(), 1);
    assert_eq!(locations[0]["location"], "eu");
    // SQLite deletes them; PostgreSQL drops them with their day's partition, once the
    // whole day is past the retention.
    if !crate::on_postgres() {
        assert!(server.log().contains("pruned results"), "{}", server.log());
    }

    // A bad retention is refused at start.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--retention",
            "7 days",
            "--database",
        ])
        .arg(dir.db())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a duration"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn gauge(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("unexpected {other:?}"),
    }
}

/// A sample line read strictly: name, labels (quoted values with `\\`, `\"` and `\n`
/// escapes) and value. prometheus-parse splits label pairs at every comma, so it cannot
/// read a value holding one, such as `alert_channels=",oncall,pager,"`; this can.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn series(line: &str) -> Series {
    fn bad<T>(line: &str) -> T {
        panic!("not a sample line: {line:?}")
    }
    let open = line.find('{').unwrap_or_else(|| bad(line));
    let name = line[..open].to_owned();
    assert!(
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':'),
        "{line}"
    );
    let mut labels = BTreeMap::new();
    let mut rest = &line[open + 1..];
    loop {
        let eq = rest.find("=\"").unwrap_or_else(|| bad(line));
        let key = rest[..eq].to_owned();
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let end = loop {
            match chars.next().unwrap_or_else(|| bad(line)) {
                (i, '"') => break eq + 2 + i,
                (_, '\\') => match chars.next().unwrap_or_else(|| bad(line)).1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    _ => bad(line),
                },
                (_, '\n') => bad(line),
                (_, c) => value.push(c),
            }
        };
        assert!(labels.insert(key, value).is_none(), "{line}");
        rest = &rest[end + 1..];
        if let Some(next) = rest.strip_prefix(',') {
            rest = next;
        } else if let Some(value) = rest.strip_prefix("} ") {
            return Series {
                name,
                labels,
                value: value.parse().unwrap_or_else(|_| bad(line)),
            };
        } else {
            bad::<()>(line);
        }
    }
}

#[test]
fn metrics_parse_and_carry_project_monitor_location_channels_and_muted() {
    let dir = TempDir::new("metrics");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let mut quiet = cache();
    quiet.muted = true;
    quiet.alert_channels = vec!["oncall".into(), "pager".into()];
    api.ok_deploy(&bundle(vec![quiet, db(), mail()]), "");
    let eu = Agent::new(&server, &agent, "e1", "eu");
    eu.assignment();
    Agent::new(&server, &agent, "e2", "eu").assignment();
    Agent::new(&server, &agent, "u1", "us").assignment();
    let started = seconds_ago(30).replace_nanosecond(250_000_000).unwrap();
    let expiry = OffsetDateTime::parse("2030-06-01T00:00:00Z", &Rfc3339).unwrap();
    eu.ok_post(
        &[
            eu.result("cache", 1, "failed", started - time::Duration::seconds(10)),
            eu.result("cache", 2, "failed", started),
            with_tls(eu.result("mail", 1, "degraded", started), expiry, 1000),
        ],
        3,
        0,
    );

    let (status, kind, text) = get_text(&server, "/metrics", &deploy);
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    // prometheus-parse reads every sample, with the values our strict reading finds.
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let all: Vec<Series> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(series)
        .collect();
    assert_eq!(scrape.samples.len(), all.len(), "{text}");
    for (parsed, strict) in scrape.samples.iter().zip(&all) {
        assert_eq!(parsed.metric, strict.name);
        assert_eq!(gauge(parsed), strict.value);
    }
    for name in all.iter().map(|s| &s.name) {
        assert!(text.contains(&format!("# TYPE {name} gauge\n")), "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
    }
    let find = |metric: &str, monitor: &str| {
        let found: Vec<&Series> = all
            .iter()
            .filter(|s| {
                s.name == metric && s.labels.get("monitor").map(String::as_str) == Some(monitor)
            })
            .collect();
        assert!(found.len() <= 1, "{metric} {monitor}: {found:?}");
        found.first().copied()
    };
    let value = |metric: &str, monitor: &str| {
        find(metric, monitor)
            .unwrap_or_else(|| panic!("no {metric} for {monitor}\n{text}"))
            .value
    };

    // Every series of a result carries the six labels.
    let per_result = |s: &&Series| {
        !["control_plane_agents", "monitor_in_maintenance"].contains(&s.name.as_str())
    };
    for s in all.iter().filter(per_result) {
        let names: Vec<&str> = s.labels.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "alert_channels",
                "in_maintenance",
                "location",
                "monitor",
                "muted",
                "project"
            ],
            "{s:?}"
        );
        assert_eq!(s.labels["in_maintenance"], "false");
        assert_eq!(s.labels["project"], "shop");
        assert_eq!(s.labels["location"], "eu");
    }
    let c = find("probe_success", "cache").unwrap();
    assert_eq!(c.labels["alert_channels"], ",oncall,pager,");
    assert!(c.labels["alert_channels"].contains(",oncall,"));
    assert_eq!(c.labels["muted"], "true");
    let m = find("probe_success", "mail").unwrap();
    assert_eq!(m.labels["alert_channels"], "");
    assert_eq!(m.labels["muted"], "false");

    assert_eq!(value("probe_success", "cache"), 0.0);
    assert_eq!(value("probe_success", "mail"), 1.0);
    assert_eq!(value("monitor_degraded", "cache"), 0.0);
    assert_eq!(value("monitor_degraded", "mail"), 1.0);
    assert_eq!(value("monitor_consecutive_failures", "cache"), 2.0);
    assert_eq!(value("monitor_consecutive_failures", "mail"), 0.0);
    assert_eq!(value("probe_duration_seconds", "cache"), 0.01275);
    assert_eq!(value("probe_dns_lookup_time_seconds", "cache"), 0.00125);
    assert_eq!(
        value("probe_ssl_earliest_cert_expiry", "mail"),
        expiry.unix_timestamp() as f64
    );
    assert!(find("probe_ssl_earliest_cert_expiry", "cache").is_none());
    let last = value("monitor_last_check_timestamp_seconds", "cache");
    assert!(
        (last - started.unix_timestamp() as f64 - 0.25).abs() < 1e-3,
        "{last}"
    );
    // A monitor without results has no series, but whether it is in a window.
    assert!(find("probe_success", "db").is_none());
    assert_eq!(value("monitor_in_maintenance", "db"), 0.0);

    let agents: Vec<(&str, &str, f64)> = all
        .iter()
        .filter(|s| s.name == "control_plane_agents")
        .map(|s| {
            (
                s.labels["project"].as_str(),
                s.labels["location"].as_str(),
                s.value,
            )
        })
        .collect();
    assert_eq!(agents, [("shop", "eu", 2.0), ("shop", "us", 1.0)]);
}
