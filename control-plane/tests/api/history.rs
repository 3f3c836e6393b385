//! The routes of issue 16 over HTTP against the real binary: `/history` (raw results,
//! hourly and daily rollups, its bounds and bad queries), uptime in `status`, passed
//! results rebuilt from their typed columns in `/results`, and the retention flags.

use time::OffsetDateTime;

use super::agents::{Agent, check_result, now, rfc3339};
use super::*;

/// The start of the hour holding `t`.
fn hour_of(t: OffsetDateTime) -> OffsetDateTime {
    let s = t.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(s - s.rem_euclid(3600)).unwrap()
}

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

/// `(location, start, checks, failures, degraded)` of each point.
fn points(body: &Value) -> Vec<(String, String, u64, u64, u64)> {
    body["points"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|p| {
            (
                p["location"].as_str().unwrap().to_owned(),
                p["start"].as_str().unwrap().to_owned(),
                p["checks"].as_u64().unwrap(),
                p["failures"].as_u64().unwrap(),
                p["degraded"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn uptime(v: &Value) -> [Option<f64>; 4] {
    ["24h", "7d", "30d", "90d"].map(|w| v["uptime"][w].as_f64())
}

#[test]
fn history_serves_raw_results_then_rollups_and_status_has_uptime() {
    let dir = TempDir::new("series");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache()]), "");
    // Every result in an hour that is over, however the clock turns during the test.
    let h = hour_of(now());
    let eu = Agent::new(&server, &agent, "e1", "eu");
    let us = Agent::new(&server, &agent, "u1", "us");
    eu.ok_post(
        &[
            eu.result("cache", 1, "passed", h - minutes(115)),
            eu.result("cache", 2, "failed", h - minutes(114)),
            eu.result("cache", 3, "passed", h - minutes(55)),
        ],
        3,
        0,
    );
    us.ok_post(&[us.result("cache", 1, "degraded", h - minutes(50))], 1, 0);

    // Raw results: one point each, oldest first.
    let raw = api.ok_get("/monitors/cache/history");
    assert_eq!(raw["monitor"], "cache");
    assert_eq!(raw["step"], "raw");
    let got = points(&raw);
    assert_eq!(
        got.iter()
            .map(|p| (p.0.as_str(), p.2, p.3, p.4))
            .collect::<Vec<_>>(),
        [
            ("eu", 1, 0, 0),
            ("eu", 1, 1, 0),
            ("eu", 1, 0, 0),
            ("us", 1, 0, 1)
        ]
    );
    let failed = &raw["points"][1];
    assert_eq!(failed["id"], "cache/eu/2");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"], "refused");
    assert_eq!(failed["p50_ms"], 12.75);
    assert_eq!(failed["max_ms"], 12.75);
    assert_eq!(got[1].1, rfc3339(h - minutes(114)));
    assert_eq!(
        points(&api.ok_get("/monitors/cache/history?location=us")).len(),
        1
    );
    let from = rfc3339(h - minutes(114));
    let to = rfc3339(h - minutes(55));
    let window = api.ok_get(&format!("/monitors/cache/history?from={from}&to={to}"));
    assert_eq!(window["from"], from);
    assert_eq!(points(&window).len(), 1, "from is exclusive, to inclusive");

    // A restart maintains the results at once: the closed hours are rolled up.
    drop(server);
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    let hourly = api.ok_get("/monitors/cache/history?step=1h");
    assert_eq!(hourly["step"], "1h");
    let (two, one) = (rfc3339(h - minutes(120)), rfc3339(h - minutes(60)));
    assert_eq!(
        points(&hourly),
        [
            ("eu".to_owned(), two, 2, 1, 0),
            ("eu".to_owned(), one.clone(), 1, 0, 0),
            ("us".to_owned(), one, 1, 0, 1)
        ]
    );
    let point = &hourly["points"][0];
    assert_eq!(
        (&point["p50_ms"], &point["p95_ms"]),
        (&json!(12.75), &json!(12.75))
    );
    assert!(point.get("id").is_none(), "{point}");
    // Daily rollups exist for whole days only; every point starts at midnight.
    let daily = api.ok_get("/monitors/cache/history?step=1d");
    assert_eq!(daily["step"], "1d");
    for (_, start, ..) in points(&daily) {
        assert!(start.ends_with("T00:00:00Z"), "{start}");
    }
    // Uptime: 4 checks, 1 failure; degraded counts as up.
    let status = api.ok_get("/status");
    let monitor = &status["monitors"][0];
    assert_eq!(uptime(monitor), [Some(75.0); 4]);
    let eu_up = uptime(&monitor["locations"][0])[0].unwrap();
    assert!((eu_up - 200.0 / 3.0).abs() < 1e-9, "{eu_up}");
    assert_eq!(uptime(&monitor["locations"][1]), [Some(100.0); 4]);

    // A passed result's entry in /results is rebuilt from its columns; a failed one is
    // as sent.
    let results = api.ok_get("/monitors/cache/results?location=eu");
    let passed = &results["results"][0]["result"];
    assert_eq!(passed["status"], "passed");
    assert_eq!(passed["name"], "Redis cache answers PING");
    assert_eq!(passed["target"], "cache.internal:6379");
    assert_eq!(passed["timings"]["total_ms"], 12.75);
    assert_eq!(passed["timings"]["dns_ms"], 1.25);
    assert_eq!(passed["address"], "10.0.0.1:1");
    assert_eq!(passed["started_at"], rfc3339(h - minutes(115)));
    let sent = check_result("cache", "failed", h - minutes(114));
    assert_eq!(results["results"][1]["result"], sent);
}

#[test]
fn bad_history_queries_are_refused_and_change_nothing() {
    let dir = TempDir::new("series-errors");
    let deploy = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &["--raw-retention", "2h"], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache()]), "");
    let eu = Agent::new(&server, &agent, "e1", "eu");
    eu.ok_post(&[eu.result("cache", 1, "passed", now() - minutes(5))], 1, 0);
    let before = (
        api.snapshot(),
        api.ok_get("/monitors/cache/history")["points"].clone(),
        api.ok_get("/monitors/cache/results"),
    );
    let ago = |days: i64| rfc3339(now() - time::Duration::days(days));
    let cases = [
        ("?step=5m".to_owned(), "step `5m` is not one of raw, 1h, 1d"),
        (
            "?from=yesterday".to_owned(),
            "from `yesterday` is not an RFC 3339 time",
        ),
        (
            "?to=2025-13-01T00:00:00Z".to_owned(),
            "to `2025-13-01T00:00:00Z`",
        ),
        (
            format!("?from={}&to={}", ago(1), ago(2)),
            "is not before to",
        ),
        ("?location=a%20b".to_owned(), "location"),
        ("?since=2025-01-01T00:00:00Z".to_owned(), "since"),
        ("?step=raw&step=1h".to_owned(), "step"),
        (
            format!("?from={}", ago(1)),
            "step=raw reaches back 2h (--raw-retention)",
        ),
        (
            format!("?step=1h&from={}", ago(91)),
            "step=1h reaches back 90d (--hourly-retention)",
        ),
        (
            format!("?step=1d&from={}", ago(10_001)),
            "buckets of 1d, more than 10000",
        ),
    ];
    for (query, needle) in &cases {
        let body = expect_error(
            api.get(&format!("/monitors/cache/history{query}")),
            StatusCode::BAD_REQUEST,
        );
        let message = body["error"].as_str().unwrap();
        assert!(message.starts_with("bad query"), "{query}: {message}");
        assert!(message.contains(needle), "{query}: {message}");
    }
    // The suggestion of a wider step holds.
    let hourly = api.ok_get(&format!("/monitors/cache/history?step=1h&from={}", ago(1)));
    assert_eq!(hourly["step"], "1h");
    let after = (
        api.snapshot(),
        api.ok_get("/monitors/cache/history")["points"].clone(),
        api.ok_get("/monitors/cache/results"),
    );
    assert_eq!(after, before);
    // Another project's token reaches nothing.
    let other = create_token(&dir.db(), "other");
    let stranger = Api::new(&server, "shop", &other);
    assert_eq!(
        stranger.get("/monitors/cache/history").0,
        StatusCode::FORBIDDEN
    );
}

#[test]
fn retention_flags_take_variables_and_refuse_bad_values() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .env_clear()
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--raw-retention", "CONTROL_PLANE_RAW_RETENTION"),
        ("--retention", "CONTROL_PLANE_RETENTION"),
        ("--hourly-retention", "CONTROL_PLANE_HOURLY_RETENTION"),
        ("--daily-retention", "CONTROL_PLANE_DAILY_RETENTION"),
    ] {
        let at = help
            .find(&format!("{flag} <"))
            .unwrap_or_else(|| panic!("{flag}: {help}"));
        let next = help[at + 2..]
            .find("\n  -")
            .map_or(help.len(), |n| at + 2 + n);
        assert!(help[at..next].contains(&format!("[env: {env}=]")), "{flag}");
    }
    let dir = TempDir::new("retention-flags");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.db())
        .env("CONTROL_PLANE_HOURLY_RETENTION", "ninety days")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--hourly-retention"), "{err}");
}
