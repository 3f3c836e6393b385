//! The hardening of issue 14 over HTTP against the real binary: fake agent ids take no
//! work (finding 2), results dated in the future are refused (3), results over the bounds
//! (and unknown fields in them) are refused (6), deploys naming secrets the agents do not
//! hand out are refused (1), and the small items of finding 8: content type, byte order
//! mark, `Content-Length` over the limit, unknown fields, a full database.

use std::sync::atomic::AtomicBool;

use monitor_spec::{PemSource, Recipe, TlsMode};
use time::OffsetDateTime;

use super::agents::{Agent, assigned_ids, check_result, get_text, now};
use super::*;

/// `n` ten-second monitors with a one-second timeout: a result within 11 s of a tick, so
/// that an agent holding them has a grace of 22 s.
fn fast_monitors(n: usize) -> Vec<TcpMonitor> {
    (0..n)
        .map(|i| {
            TcpMonitor::new(format!("svc{i:02}"), "svc.internal", 80)
                .frequency(monitor_spec::Frequency::S10)
                .timeouts(500, 500, 1000)
                .thresholds(200, 1000)
        })
        .collect()
}

#[test]
fn fake_agent_ids_take_no_work_from_the_real_agent() {
    let dir = TempDir::new("fakes");
    let deploy = create_token(&dir.db(), "shop");
    let token = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &["--agent-timeout", "2s"], &[]);
    Api::new(&server, "shop", &deploy).ok_deploy(&bundle(fast_monitors(30)), "");
    let real = Agent::new(&server, &token, "real", "lab");
    assert_eq!(assigned_ids(&real.assignment()).len(), 30);

    // The finding: 200 polls with fake ids and the same token. Past the 8 ids a token may
    // hold (the real one included), each is refused naming the flag.
    let mut accepted = Vec::new();
    for i in 0..200 {
        let fake = Agent::new(&server, &token, &format!("fake{i}"), "lab");
        let resp = fake.poll(None, 0);
        match resp.status() {
            StatusCode::OK => accepted.push(i),
            StatusCode::FORBIDDEN => {
                let body: Value = resp.json().unwrap();
                let message = body["error"].as_str().unwrap();
                assert!(message.contains("--max-agents-per-token"), "{message}");
            }
            other => panic!("fake{i}: {other}"),
        }
    }
    assert_eq!(accepted, (0..7).collect::<Vec<_>>());
    // New agents get work at once (scaling up works); the real one keeps a share.
    let shared = real.assignment();
    assert_eq!(shared["agents_in_location"], 8);
    let kept = assigned_ids(&shared).len();
    assert!((1..30).contains(&kept), "{kept}");

    // The fakes keep polling and never post; the real agent posts results. Once the
    // fakes held monitors for their grace without a result, the real agent has them all.
    let stop = Arc::new(AtomicBool::new(false));
    let fakes: Vec<_> = accepted
        .iter()
        .map(|i| {
            let fake = Agent::new(&server, &token, &format!("fake{i}"), "lab");
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(fake.poll(None, 0).status(), StatusCode::OK);
                    std::thread::sleep(Duration::from_millis(300));
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut tick = 0;
    let mut etag = shared["etag"].as_str().unwrap().to_owned();
    let everything = loop {
        tick += 1;
        real.ok_post(&[real.result("svc00", tick, "passed", now())], 1, 0);
        let resp = real.poll(Some(&etag), 1);
        if resp.status() == StatusCode::OK {
            let assignment: Value = resp.json().unwrap();
            etag = assignment["etag"].as_str().unwrap().to_owned();
            if assigned_ids(&assignment).len() == 30 {
                break assignment;
            }
        }
        assert!(Instant::now() < deadline, "the fakes kept their monitors");
    };
    assert_eq!(
        everything["agents_in_location"], 8,
        "the fakes are still live"
    );
    stop.store(true, Ordering::Relaxed);
    for fake in fakes {
        fake.join().unwrap();
    }
    for i in &accepted {
        let fake = Agent::new(&server, &token, &format!("fake{i}"), "lab");
        assert_eq!(
            assigned_ids(&fake.assignment()),
            Vec::<String>::new(),
            "fake{i}"
        );
    }
    assert!(server.log().contains("without posting a result"));
}

#[test]
fn results_dated_in_the_future_are_refused_and_real_failures_show() {
    let dir = TempDir::new("future");
    let deploy = create_token(&dir.db(), "shop");
    let token = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache()]), "");
    let a = Agent::new(&server, &token, "a", "eu");
    let year_2099 = OffsetDateTime::from_unix_timestamp(4_070_908_800).unwrap();
    let check = |results: Vec<Value>, path: &str| {
        let body = expect_error(a.post(&results), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["problems"][0]["path"], path, "{body}");
        assert!(
            body["problems"][0]["message"]
                .as_str()
                .unwrap()
                .contains("--max-clock-skew"),
            "{body}"
        );
        assert_eq!(api.ok_get("/monitors/cache/results")["results"], json!([]));
    };
    // The finding's result, alone or with a good one: nothing of the batch is stored.
    check(
        vec![a.result("cache", 1, "passed", year_2099)],
        "results[0].result.started_at",
    );
    check(
        vec![
            a.result("cache", 1, "failed", now()),
            a.result("cache", 2, "passed", year_2099),
        ],
        "results[1].result.started_at",
    );
    // An attempt's start counts too; three minutes ahead is over the default 2 min.
    let mut attempt = a.result("cache", 3, "passed", now());
    attempt["result"]["attempts"] = json!([{
        "status": "passed", "error": null, "address": null,
        "timings": {"dns_ms": null, "connect_ms": null, "tls_ms": null, "first_byte_ms": null, "total_ms": 1.0},
        "started_at": super::agents::rfc3339(now() + time::Duration::minutes(3)),
    }]);
    check(vec![attempt], "results[0].result.attempts[0].started_at");

    // Within the skew, and the real failure: status and metrics show it.
    a.ok_post(
        &[a.result("cache", 4, "failed", now() + time::Duration::seconds(60))],
        1,
        0,
    );
    let status = api.ok_get("/status");
    assert_eq!(status["monitors"][0]["locations"][0]["status"], "failed");
    let (_, _, metrics) = get_text(&server, "/metrics", &deploy);
    assert!(
        metrics.lines().any(|l| l.starts_with("probe_success{")
            && l.contains("monitor=\"cache\"")
            && l.ends_with(" 0")),
        "{metrics}"
    );
}

#[test]
fn results_over_the_bounds_are_refused_naming_the_field() {
    let dir = TempDir::new("bounds");
    let deploy = create_token(&dir.db(), "shop");
    let token = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    Api::new(&server, "shop", &deploy).ok_deploy(&bundle(vec![cache()]), "");
    let a = Agent::new(&server, &token, "a", "eu");
    let with_message = |tick: u64, bytes: usize| {
        let mut r = a.result("cache", tick, "failed", now());
        r["result"]["error"]["message"] = json!("m".repeat(bytes));
        r
    };
    let body = expect_error(
        a.post(&[with_message(1, 5000)]),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(
        body["problems"][0]["path"],
        "results[0].result.error.message"
    );
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 4096"),
        "{body}"
    );
    let mut hints = a.result("cache", 2, "failed", now());
    hints["result"]["error"]["hints"] = json!(vec!["h"; 17]);
    let body = expect_error(a.post(&[hints]), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["problems"][0]["path"], "results[0].result.error.hints");
    let mut excerpt = a.result("cache", 3, "passed", now());
    excerpt["result"]["response_excerpt"] = json!("x".repeat(4097));
    let body = expect_error(a.post(&[excerpt]), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body["problems"][0]["path"],
        "results[0].result.response_excerpt"
    );
    // Unknown fields are refused in results too, at any depth.
    for (field, mut result) in [
        ("version", a.result("cache", 5, "failed", now())),
        ("extra", a.result("cache", 5, "failed", now())),
    ] {
        if field == "version" {
            result["result"]["version"] = json!(2);
        } else {
            result["result"]["error"]["extra"] = json!(true);
        }
        let body = expect_error(a.post(&[result]), StatusCode::BAD_REQUEST);
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains(&format!("unknown field `{field}`")),
            "{message}"
        );
        assert!(message.contains("results[0].result"), "{message}");
    }
    // At the limit: accepted.
    a.ok_post(&[with_message(4, 4096)], 1, 0);
}

#[test]
fn deploys_naming_secrets_the_agents_do_not_hand_out_are_refused() {
    let dir = TempDir::new("secrets");
    let token = create_token(&dir.db(), "shop");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    api.ok_deploy(&bundle(vec![db()]), "");
    let before = api.snapshot();
    let redis = |var: &str| {
        TcpMonitor::new("cache", "cache.internal", 6379).recipe(Recipe::redis_auth(var))
    };
    let ca = |id: &str, path: &str| {
        TcpMonitor::new(id, "tls.internal", 443).tls_with(|t| {
            t.mode = TlsMode::Direct;
            t.ca = Some(PemSource::Path(path.to_owned()));
        })
    };
    let check = |monitors: Vec<TcpMonitor>, problems: &[(&str, &str)]| {
        let body = expect_error(
            api.deploy(&bundle(monitors), "?dry_run=true"),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        let got: Vec<(String, String)> = body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["path"].as_str().unwrap().to_owned(),
                    p["message"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got.len(), problems.len(), "{got:?}");
        for ((path, message), (want_path, want)) in got.iter().zip(problems) {
            assert_eq!(path, want_path);
            assert!(message.contains(want), "{message}");
        }
        assert_eq!(api.snapshot(), before);
    };
    check(
        vec![redis("MONITORS_AGENT_TOKEN")],
        &[(
            "monitors[0].recipe.password_env",
            "never handed to a monitor",
        )],
    );
    check(
        vec![db(), redis("HOME")],
        &[(
            "monitors[0].recipe.password_env",
            "starting with `MONITORS_SECRET_`",
        )],
    );
    check(
        vec![ca("tls", "/etc/shadow"), ca("tls2", "../../etc/shadow")],
        &[
            ("monitors[0].tls.ca", "not an absolute path"),
            ("monitors[1].tls.ca", "without `..`"),
        ],
    );
    // Names the agents hand out deploy.
    api.ok_deploy(
        &bundle(vec![
            redis("MONITORS_SECRET_REDIS"),
            ca("tls", "certs/ca.pem"),
        ]),
        "",
    );

    // Another prefix, as the agents' --secret-env-prefix says.
    drop(server);
    let server = Server::start(&dir.db(), &["--secret-env-prefix", "TEAM_"], &[]);
    let api = Api::new(&server, "shop", &token);
    let body = expect_error(
        api.deploy(&bundle(vec![redis("MONITORS_SECRET_REDIS")]), ""),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("TEAM_")
    );
    api.ok_deploy(&bundle(vec![redis("TEAM_REDIS")]), "");
}

/// Sends `head` (the request line and headers, without the blank line) over a raw socket
/// and no body; returns the response's status line.
fn status_line_without_body(addr: &str, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn bodies_need_json_may_start_with_a_bom_and_declare_a_length_within_the_limit() {
    let dir = TempDir::new("bodies");
    let token = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    let body = serde_json::to_vec(&json!({"bundle": bundle(vec![db()])})).unwrap();
    let send = |content_type: Option<&str>, body: Vec<u8>, encoding: Option<&str>| {
        let mut req = api.client.post(api.url("/deploy?dry_run=true")).body(body);
        if let Some(t) = content_type {
            req = req.header("content-type", t);
        }
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        api.send(req)
    };
    // 415 unless the content type is JSON, with or without a charset.
    for bad in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let refused = expect_error(
            send(bad, body.clone(), None),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        );
        assert!(
            refused["error"]
                .as_str()
                .unwrap()
                .contains("application/json"),
            "{refused}"
        );
    }
    for good in ["application/json", "application/json; charset=utf-8"] {
        assert_eq!(send(Some(good), body.clone(), None).0, StatusCode::OK);
    }
    // gzip still works; a UTF-8 byte order mark is skipped, gzipped or not.
    let with_bom = [b"\xEF\xBB\xBF".as_slice(), &body].concat();
    for (bytes, encoding) in [
        (gzip(&body), Some("gzip")),
        (with_bom.clone(), None),
        (gzip(&with_bom), Some("gzip")),
    ] {
        let (status, answer) = send(Some("application/json"), bytes, encoding);
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // Unknown fields are refused, in the git metadata too.
    let mut unknown = json!({"bundle": bundle(vec![db()]), "git": {"comit": "abc"}});
    let refused = expect_error(
        api.deploy_raw(serde_json::to_vec(&unknown).unwrap(), None, ""),
        StatusCode::BAD_REQUEST,
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `comit`"),
        "{refused}"
    );
    unknown["git"] = json!({"commit": "abc"});
    unknown["extra"] = json!(1);
    expect_error(
        api.deploy_raw(serde_json::to_vec(&unknown).unwrap(), None, ""),
        StatusCode::BAD_REQUEST,
    );

    // A Content-Length of 2^63 is refused with 413 before any of the body is sent.
    for (path, token) in [
        ("/v1/projects/shop/deploy", &token),
        ("/v1/agent/results", &agent),
    ] {
        let line = status_line_without_body(
            server.addr(),
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 9223372036854775808"
            ),
        );
        assert!(line.starts_with("HTTP/1.1 413"), "{path}: {line}");
    }
    assert_eq!(api.ok_get("/versions"), json!([]));
}

#[test]
fn a_full_database_answers_507_naming_the_cause() {
    let dir = TempDir::new("full");
    let token = create_token(&dir.sqlite(), "shop");
    let agent = create_token_with_role(&dir.sqlite(), "shop", "agent");
    let server = Server::start(
        &dir.sqlite(),
        &[],
        &[("CONTROL_PLANE_TEST_SPARE_PAGES", "40")],
    );
    let api = Api::new(&server, "shop", &token);
    api.ok_deploy(&bundle(vec![db()]), "");
    let a = Agent::new(&server, &agent, "a", "eu");
    a.ok_post(&[a.result("db", 1, "passed", now())], 1, 0);
    let before = api.snapshot();
    // Far more than 40 pages of 4 KiB.
    let body = expect_error(
        api.deploy_raw(large_body(2000, 9000), None, ""),
        StatusCode::INSUFFICIENT_STORAGE,
    );
    let message = body["error"].as_str().unwrap();
    assert!(message.starts_with("the database is full"), "{message}");
    assert!(message.contains("free space"), "{message}");
    assert_eq!(api.snapshot(), before);
    let mut big = check_result("db", "failed", now());
    big["error"]["message"] = json!("x".repeat(4000));
    let results: Vec<Value> = (2..100)
        .map(|tick| json!({"id": format!("db/eu/{tick}"), "monitor": "db", "tick": tick, "result": big}))
        .collect();
    let (status, body) = a.post(&results);
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(
        api.ok_get("/monitors/db/results")["results"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(server.log().contains("the database is full"));
}
