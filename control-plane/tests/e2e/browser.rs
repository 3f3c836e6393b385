//! The overview, certificates page and badges in a real browser: headless Chromium
//! (Debian's `chromium`, driven by `monitor_testing::browser`) logs in and loads them from
//! a control plane fed by real `monitors agent` processes in two locations; what the pages
//! show (verdicts, uptime, certificate days) is compared with the API's `/status`, and
//! screenshots at 1280 and 375 px go to `target/screenshots/`, each checked non-blank.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use monitor_core::Bundle;
use monitor_core::prelude::*;
use monitor_testing::browser::{Browser, non_blank, screenshot_dir};
use monitor_testing::refusing_port;
use serde_json::{Value, json};

use super::agents::{Agent, HelloTls, listening_service};
use super::{Server, TempDir, create_token_for};

/// Logs `browser` in to the control plane at `url` with `token` through the login form,
/// as a user would, and checks it comes back to the page it asked for.
pub(super) fn login(browser: &mut Browser, url: &str, token: &str) {
    let nav = browser
        .open(&format!("{url}/login?next=%2Fhealthz"), 1280)
        .expect("the login form");
    assert_eq!(nav.status, 200, "{nav:?}");
    let nav = browser
        .submit_form(&[("token", token)])
        .expect("logging in");
    assert_eq!(nav.status, 200, "{nav:?}");
    assert!(
        nav.url.ends_with("/healthz"),
        "the login went to {nav:?}, not back to /healthz"
    );
}

/// Evaluates `script`, which returns `JSON.stringify(...)`, and reads its JSON.
fn eval_json(browser: &mut Browser, script: &str) -> Value {
    let text = browser.eval(script).expect("a script");
    let text = text.as_str().unwrap_or_else(|| panic!("{script}: {text}"));
    serde_json::from_str(text).expect("JSON")
}

/// Saves a full-page screenshot named `name` and checks it is not blank.
fn shot(browser: &mut Browser, name: &str) {
    let path = screenshot_dir().join(name);
    browser.screenshot(&path).expect("a screenshot");
    non_blank(&path).unwrap_or_else(|e| panic!("{e}"));
}

/// An uptime as the pages show it: rounded down to two decimals, with `%`.
fn uptime(value: &Value) -> String {
    match value.as_f64() {
        Some(v) => format!("{:.2}%", (v * 100.0).floor() / 100.0),
        None => "–".to_owned(),
    }
}

/// GETs `/v1/projects/shop/status` with `token`.
fn status(server: &Server, token: &str) -> Value {
    reqwest::blocking::Client::new()
        .get(format!("{}/v1/projects/shop/status", server.url))
        .bearer_auth(token)
        .send()
        .expect("status")
        .json()
        .expect("status JSON")
}

/// Waits until every monitor of the status has a result in each of `locations`.
fn until_results(server: &Server, token: &str, locations: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let status = status(server, token);
        let monitors = status["monitors"].as_array().expect("monitors");
        if monitors
            .iter()
            .all(|m| m["locations"].as_array().map_or(0, Vec::len) == locations)
        {
            return status;
        }
        assert!(Instant::now() < deadline, "no results in time: {status}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_pages_in_chromium_show_what_the_api_says() {
    let tls = HelloTls::start(60);
    let monitors = vec![
        TcpMonitor::new("cache", "127.0.0.1", listening_service())
            .name("Cache <script>alert(1)</script>")
            .group("edge <b>")
            .tag("prod")
            .frequency(Frequency::S10)
            .timeouts(2_000, 2_000, 5_000),
        TcpMonitor::new("db", "127.0.0.1", refusing_port().expect("a port"))
            .name("Database")
            .group("edge <b>")
            .frequency(Frequency::S10)
            .timeouts(2_000, 2_000, 5_000),
        tls.monitor("web").name("Web over TLS"),
    ];
    let bundle = Bundle::new(monitors);
    let (server, tokens) = Server::start(&["shop"]);
    let deployed = reqwest::blocking::Client::new()
        .post(format!("{}/v1/projects/shop/deploy?prune=true", server.url))
        .bearer_auth(&tokens[0])
        .json(&json!({ "bundle": serde_json::from_str::<Value>(&bundle.to_json()).unwrap() }))
        .send()
        .expect("deploy");
    assert_eq!(deployed.status().as_u16(), 200);
    let agent_token = create_token_for(&server.db(), "shop", "agent");
    let read_token = create_token_for(&server.db(), "shop", "read");
    let dir = TempDir::new();
    let mut agents = [
        Agent::spawn(&server.url, &agent_token, "eu-1", "eu", 1, &dir.0),
        Agent::spawn(&server.url, &agent_token, "us-1", "us", 1, &dir.0),
    ];
    until_results(&server, &read_token, 2);
    // Stopped, so that what the API says and what the pages show are of the same results.
    for agent in &mut agents {
        agent.stop();
    }
    let api = status(&server, &read_token);
    let monitors = api["monitors"].as_array().expect("monitors");

    let mut browser = Browser::launch().unwrap_or_else(|e| panic!("{e}"));
    login(&mut browser, &server.url, &read_token);

    // The overview: a verdict per monitor and location, uptime and days as the API says.
    let nav = browser
        .open(&format!("{}/?project=shop", server.url), 1280)
        .expect("the overview");
    assert_eq!(nav.status, 200, "{nav:?}");
    let cells = eval_json(
        &mut browser,
        "JSON.stringify([...document.querySelectorAll('td[data-status]')]\
         .map(td => [td.dataset.monitor, td.dataset.location, td.dataset.status]))",
    );
    let shown: BTreeSet<(String, String, String)> = serde_json::from_value(cells).expect("cells");
    let expected: BTreeSet<(String, String, String)> = monitors
        .iter()
        .flat_map(|m| {
            m["locations"].as_array().unwrap().iter().map(move |l| {
                (
                    m["id"].as_str().unwrap().to_owned(),
                    l["location"].as_str().unwrap().to_owned(),
                    l["status"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    assert_eq!(shown, expected);
    assert_eq!(shown.len(), 6);
    assert!(shown.contains(&("db".into(), "eu".into(), "failed".into())));
    assert!(shown.contains(&("web".into(), "us".into(), "passed".into())));
    let rows = eval_json(
        &mut browser,
        "JSON.stringify([...document.querySelectorAll('tr[data-monitor]')].map(tr => [\
           tr.dataset.monitor,\
           tr.querySelector('th a').textContent,\
           tr.querySelector('.u1').textContent,\
           tr.querySelector('.u2').textContent,\
           tr.querySelector('.u3').textContent,\
           tr.querySelector('.cd').textContent,\
           tr.querySelector('.bar').dataset.results]))",
    );
    let rows = rows.as_array().expect("rows");
    let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    // Group "edge <b>" first, sorted by name; no group ("Other") last.
    assert_eq!(ids, ["cache", "db", "web"]);
    for (row, m) in rows.iter().zip(["cache", "db", "web"]) {
        let m = monitors.iter().find(|x| x["id"] == m).unwrap();
        assert_eq!(row[1], m["name"], "the name as text, not markup");
        assert_eq!(row[2], uptime(&m["uptime"]["24h"]), "{row}");
        assert_eq!(row[3], uptime(&m["uptime"]["7d"]), "{row}");
        assert_eq!(row[4], uptime(&m["uptime"]["30d"]), "{row}");
        let days = m["locations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["days_left"].as_i64())
            .min();
        let days_text = days.map_or("–".to_owned(), |d| format!("{d} d"));
        assert_eq!(row[5], days_text.as_str(), "{row}");
        let results: usize = row[6].as_str().unwrap().parse().unwrap();
        assert!(results >= 2, "{row}");
    }
    let db = monitors.iter().find(|m| m["id"] == "db").unwrap();
    assert_eq!(uptime(&db["uptime"]["24h"]), "0.00%");
    let facts = eval_json(
        &mut browser,
        "JSON.stringify([document.scripts.length,\
           document.querySelector('tbody[data-group]').dataset.group,\
           document.querySelector('td[data-monitor=db][data-location=eu]').title])",
    );
    assert_eq!(facts[0], 0, "no script runs");
    assert_eq!(facts[1], "edge <b>");
    assert!(
        facts[2].as_str().unwrap().starts_with("refused: "),
        "{facts}"
    );
    shot(&mut browser, "overview-1280.png");
    browser
        .open(&format!("{}/?project=shop", server.url), 375)
        .expect("the overview");
    shot(&mut browser, "overview-375.png");
    browser.prefers_dark(true).expect("dark mode");
    shot(&mut browser, "overview-375-dark.png");
    browser.prefers_dark(false).expect("light mode");

    // The certificates page: the leaf first, with the days the API gives.
    let nav = browser
        .open(&format!("{}/certificates?project=shop", server.url), 1280)
        .expect("the certificates page");
    assert_eq!(nav.status, 200, "{nav:?}");
    let certs = eval_json(
        &mut browser,
        "JSON.stringify([...document.querySelectorAll('tr[data-sha256]')].map(tr => [\
           tr.dataset.daysLeft, tr.cells[1].textContent,\
           [...tr.querySelectorAll('li[data-monitor]')].map(li => li.textContent)]))",
    );
    let certs = certs.as_array().expect("certificates");
    assert_eq!(certs.len(), 2, "leaf and intermediate: {certs:?}");
    let web = monitors.iter().find(|m| m["id"] == "web").unwrap();
    let days = web["locations"][0]["days_left"].as_i64().unwrap();
    assert_eq!(certs[0][0], days.to_string().as_str(), "{certs:?}");
    assert!(
        certs[0][1].as_str().unwrap().contains("monitor.test"),
        "{certs:?}"
    );
    assert_eq!(certs[0][2], json!(["Web over TLS eu, us"]), "{certs:?}");
    shot(&mut browser, "certificates-1280.png");
    browser
        .open(&format!("{}/certificates?project=shop", server.url), 375)
        .expect("the certificates page");
    shot(&mut browser, "certificates-375.png");

    // Badges, as a README would show them.
    for (kind, name, title) in [
        (
            "status.svg",
            "badge-status.png",
            "status: failed".to_owned(),
        ),
        (
            "certificate.svg",
            "badge-certificate.png",
            format!("certificate: {days} days"),
        ),
    ] {
        let monitor = if kind == "status.svg" { "db" } else { "web" };
        let nav = browser
            .open(&format!("{}/badge/shop/{monitor}/{kind}", server.url), 160)
            .expect("a badge");
        assert_eq!(nav.status, 200, "{nav:?}");
        let shown = browser
            .eval("document.querySelector('title').textContent")
            .expect("the badge's title");
        assert_eq!(shown, title.as_str());
        shot(&mut browser, name);
    }
    drop(tls);
}

/// The README's screenshots are copies of what the browser tests save
/// (`target/screenshots/overview-1280.png` and `monitor-1280.png`): PNGs 1280 px wide, not
/// blank, and shown by the README.
#[test]
fn the_readme_shows_screenshots_the_browser_tests_take() {
    let readme = std::fs::read_to_string(super::workspace().join("README.md")).expect("README");
    for name in ["overview.png", "monitor.png"] {
        let path = super::workspace().join("docs/screenshots").join(name);
        non_blank(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let bytes = std::fs::read(&path).expect("the screenshot");
        // The IHDR chunk follows the 8-byte signature: length, type, then the width.
        assert_eq!(&bytes[12..16], b"IHDR", "{name}");
        let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        assert_eq!(width, 1280, "{name}");
        assert!(
            readme.contains(&format!("](docs/screenshots/{name})")),
            "the README does not show {name}"
        );
    }
}
