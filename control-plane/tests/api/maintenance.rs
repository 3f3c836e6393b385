//! Maintenance windows over HTTP (issue 21): windows in deployed bundles are checked (each
//! problem by path), stored with the version and applied: results of covered monitors are
//! marked, left out of uptime, shown in the status, history and metrics; ad-hoc windows are
//! opened, listed and ended through `/v1/projects/{project}/maintenance`, within a bound
//! and by role, and survive a restart.

use time::OffsetDateTime;

use super::agents::{Agent, get_text, now, rfc3339};
use super::*;

fn weekly(id: &str, tags: Value) -> Value {
    json!({"id": id, "tags": tags,
        "schedule": {"weekly": {"days": ["sunday"], "start": "02:00", "end": "03:00"}}})
}

/// A one-off window over `tags` open from an hour ago to an hour from now.
fn open_now(id: &str, tags: Value) -> Value {
    let hour = time::Duration::hours(1);
    json!({"id": id, "name": "Upgrade", "tags": tags,
        "schedule": {"once": {"start": rfc3339(now() - hour), "end": rfc3339(now() + hour)}}})
}

/// The `(path, message)` of each problem of a 422 answer.
fn problems(body: &Value) -> Vec<(String, String)> {
    body["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn ago(minutes: i64) -> OffsetDateTime {
    now() - time::Duration::minutes(minutes)
}

/// The ids (and whether ad hoc and open) of the windows `GET maintenance` lists.
fn listed(api: &Api) -> Vec<(String, bool, bool)> {
    api.ok_get("/maintenance")["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["window"]["id"].as_str().unwrap().to_owned(),
                w["ad_hoc"].as_bool().unwrap(),
                w["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The value of the one metrics line starting with `prefix`.
fn metric(text: &str, prefix: &str) -> String {
    let found: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
    assert_eq!(found.len(), 1, "{prefix}\n{text}");
    found[0].rsplit(' ').next().unwrap().to_owned()
}

#[test]
fn invalid_windows_are_refused_with_every_problem() {
    let dir = TempDir::new("maintenance");
    let token = create_token(&dir.db(), "shop");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    api.ok_deploy(&bundle(vec![db()]), "");
    let before = api.snapshot();

    let mut invalid = bundle(vec![db()]);
    invalid["maintenance"] = json!([weekly("backup", json!([])), weekly("backup", json!(["db"]))]);
    let body = expect_error(api.deploy(&invalid, ""), StatusCode::UNPROCESSABLE_ENTITY);
    let got = problems(&body);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "maintenance[0].tags");
    assert!(
        got[0].1.contains("at least one tag or monitor id"),
        "{got:?}"
    );
    assert_eq!(got[1].0, "maintenance[1].id");
    assert!(got[1].1.contains("duplicate id `backup`"), "{got:?}");
    assert_eq!(api.snapshot(), before);
}

#[test]
fn declared_windows_mark_results_and_come_back_on_rollback() {
    let dir = TempDir::new("maintenance-declared");
    let token = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    let mut with_window = bundle(vec![cache(), db()]);
    with_window["maintenance"] = json!([open_now("upgrade", json!(["cache"]))]);
    let first = api.ok_deploy(&with_window, "");
    assert_eq!(first["version"], 1);
    // The window is stored with the monitors: `GET monitors` gives it back.
    assert_eq!(
        api.ok_get("/monitors")["maintenance"][0]["id"],
        "upgrade",
        "{}",
        api.ok_get("/monitors")
    );

    let eu = Agent::new(&server, &agent, "e1", "eu");
    eu.ok_post(
        &[
            // In the window: stored, marked, left out.
            eu.result("cache", 2, "failed", ago(30)),
            eu.result("cache", 3, "failed", ago(0)),
            // Not covered.
            eu.result("db", 1, "failed", ago(0)),
        ],
        3,
        0,
    );
    let status = api.ok_get("/status");
    let (c, d) = (&status["monitors"][0], &status["monitors"][1]);
    assert_eq!(
        (c["id"].as_str(), d["id"].as_str()),
        (Some("cache"), Some("db"))
    );
    let cl = &c["locations"][0];
    assert_eq!(cl["status"], "failed");
    assert_eq!(cl["in_maintenance"], true, "{cl}");
    assert_eq!(cl["consecutive_failures"], 0);
    // No result that counts: no uptime (the uncovered monitor's failure counts).
    assert_eq!(c["uptime"]["24h"], Value::Null, "{c}");
    assert_eq!(cl["uptime"]["24h"], Value::Null, "{c}");
    assert_eq!(c["maintenance"]["id"], "upgrade");
    assert_eq!(c["maintenance"]["name"], "Upgrade");
    assert_eq!(c["maintenance"]["ad_hoc"], false);
    let dl = &d["locations"][0];
    assert_eq!(dl.get("in_maintenance"), None, "{dl}");
    assert_eq!(dl["consecutive_failures"], 1);
    assert_eq!(d["uptime"]["24h"], 0.0);
    assert_eq!(d.get("maintenance"), None);

    let history = api.ok_get("/monitors/cache/results");
    let marks: Vec<bool> = history["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["in_maintenance"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(marks, [true, true]);

    let (_, _, text) = get_text(&server, "/metrics", &token);
    let series = |m: &str, mark: &str| {
        format!(
            "probe_success{{project=\"shop\",monitor=\"{m}\",location=\"eu\",alert_channels=\"\",muted=\"false\",in_maintenance=\"{mark}\"}}"
        )
    };
    assert_eq!(metric(&text, &series("cache", "true")), "0");
    assert_eq!(metric(&text, &series("db", "false")), "0");
    let gauge = |m: &str| format!("monitor_in_maintenance{{project=\"shop\",monitor=\"{m}\"}}");
    assert_eq!(metric(&text, &gauge("cache")), "1");
    assert_eq!(metric(&text, &gauge("db")), "0");

    // The pages show it: the overview lists the window and the monitor's results in it.
    let (code, _, overview) = get_text(&server, "/?project=shop", &token);
    assert_eq!(code, StatusCode::OK);
    assert!(
        overview.contains("data-window=\"upgrade\" data-active=\"true\">Upgrade until"),
        "{overview}"
    );
    assert!(
        overview.contains("data-count-maintenance=\"1\""),
        "{overview}"
    );
    let (code, _, monitor) = get_text(&server, "/monitors/cache?project=shop", &token);
    assert_eq!(code, StatusCode::OK);
    assert!(
        monitor.contains("data-maintenance=\"upgrade\""),
        "{monitor}"
    );
    assert!(monitor.contains("data-in-maintenance"), "{monitor}");

    assert_eq!(listed(&api), [("upgrade".to_owned(), false, true)]);
    // A declared window ends by deploying without it.
    let (code, body) = api.send(api.client.delete(api.url("/maintenance/upgrade")));
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let second = api.ok_deploy(&bundle(vec![cache(), db()]), "");
    assert_eq!(second["version"], 2);
    assert!(listed(&api).is_empty());
    assert_eq!(
        api.ok_get("/status")["monitors"][0].get("maintenance"),
        None
    );
    eu.ok_post(&[eu.result("cache", 4, "failed", ago(0))], 1, 0);
    let c = &api.ok_get("/status")["monitors"][0];
    let cl = &c["locations"][0];
    assert_eq!(
        (cl.get("in_maintenance"), &cl["consecutive_failures"]),
        (None, &json!(1))
    );
    assert_eq!(c["uptime"]["24h"], 0.0, "{c}");
    let history = api.ok_get("/monitors/cache/results");
    assert_eq!(
        history["results"][2].get("in_maintenance"),
        None,
        "{history}"
    );

    // A rollback brings version 1's window back.
    let (code, body) = api.rollback(1);
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(listed(&api), [("upgrade".to_owned(), false, true)]);
    assert_eq!(
        api.ok_get("/status")["monitors"][0]["maintenance"]["id"],
        "upgrade"
    );
    assert_eq!(
        api.ok_get("/versions/1")["bundle"]["maintenance"][0]["id"],
        "upgrade"
    );
}

#[test]
fn ad_hoc_windows_open_list_end_and_survive_a_restart() {
    let dir = TempDir::new("maintenance-ad-hoc");
    let token = create_token(&dir.db(), "shop");
    let reader = create_token_with_role(&dir.db(), "shop", "read");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    api.ok_deploy(&bundle(vec![cache(), db()]), "");
    let post =
        |api: &Api, body: Value| api.send(api.client.post(api.url("/maintenance")).json(&body));

    // Every problem at once.
    let (code, body) = post(
        &api,
        json!({"name": " x", "tags": ["db", "db"], "minutes": 0}),
    );
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<String> = problems(&body).into_iter().map(|p| p.0).collect();
    assert_eq!(paths, ["name", "tags[1]", "minutes"], "{body}");
    let (code, body) = post(&api, json!({"minutes": 20000}));
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let paths: Vec<String> = problems(&body).into_iter().map(|p| p.0).collect();
    assert_eq!(paths, ["tags", "minutes"], "{body}");
    // Roles: a read token lists but may not open or end; an agent token does neither.
    let read = Api::new(&server, "shop", &reader);
    let (code, _) = post(&read, json!({"tags": ["db"], "minutes": 5}));
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = post(
        &Api::new(&server, "shop", &agent),
        json!({"tags": ["db"], "minutes": 5}),
    );
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = read.send(read.client.get(read.url("/maintenance")));
    assert_eq!(code, StatusCode::OK);

    let (code, opened) = post(
        &api,
        json!({"name": "Reboot", "tags": ["db"], "minutes": 30}),
    );
    assert_eq!(code, StatusCode::CREATED, "{opened}");
    assert_eq!(
        (opened["ad_hoc"].as_bool(), opened["active"].as_bool()),
        (Some(true), Some(true))
    );
    let id = opened["window"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("adhoc-"), "{id}");
    // A window over no deployed monitor is accepted too.
    let (code, spare) = post(&api, json!({"monitors": ["later"], "minutes": 60}));
    assert_eq!(code, StatusCode::CREATED, "{spare}");
    let spare = spare["window"]["id"].as_str().unwrap().to_owned();

    let eu = Agent::new(&server, &agent, "e1", "eu");
    eu.ok_post(
        &[
            eu.result("db", 1, "failed", now()),
            eu.result("cache", 1, "failed", now()),
        ],
        2,
        0,
    );
    let status = api.ok_get("/status");
    assert_eq!(
        status["monitors"][0]["locations"][0].get("in_maintenance"),
        None
    );
    assert_eq!(
        status["monitors"][1]["locations"][0]["in_maintenance"],
        true
    );
    assert_eq!(status["monitors"][1]["maintenance"]["id"], id.as_str());
    assert_eq!(status["monitors"][1]["maintenance"]["ad_hoc"], true);

    // Stored: a restarted server still has them.
    drop(server);
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    let read = Api::new(&server, "shop", &reader);
    let mut got = listed(&api);
    got.sort();
    let mut expected = vec![(id.clone(), true, true), (spare.clone(), true, true)];
    expected.sort();
    assert_eq!(got, expected);

    let delete = |id: &str| api.send(api.client.delete(api.url(&format!("/maintenance/{id}"))));
    let (code, body) = delete("adhoc-nope");
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    let (code, read_delete) =
        read.send(read.client.delete(read.url(&format!("/maintenance/{id}"))));
    assert_eq!(code, StatusCode::FORBIDDEN, "{read_delete}");
    let (code, ended) = delete(&id);
    assert_eq!(code, StatusCode::OK, "{ended}");
    assert_eq!(ended["active"], false);
    assert_eq!(listed(&api), [(spare.clone(), true, true)]);
    assert_eq!(
        api.ok_get("/status")["monitors"][1].get("maintenance"),
        None
    );

    // At most 64 open at once.
    for _ in 1..64 {
        let (code, body) = post(&api, json!({"tags": ["cache"], "minutes": 5}));
        assert_eq!(code, StatusCode::CREATED, "{body}");
    }
    let (code, body) = post(&api, json!({"tags": ["cache"], "minutes": 5}));
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        problems(&body)[0].1.contains("64 ad-hoc windows open"),
        "{body}"
    );
    assert_eq!(listed(&api).len(), 64);
}
