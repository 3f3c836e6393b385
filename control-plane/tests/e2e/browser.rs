//! The status page in a real browser: headless Chromium (Debian's `chromium`) loads `/`
//! from the real control plane, and the rows and verdicts it renders are compared with
//! what the API's `/status` says.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use monitor_core::Bundle;
use monitor_core::prelude::*;
use serde_json::{Value, json};

use super::{Server, TempDir, create_token_for};

/// The page as Chromium's DOM holds it after loading `url`.
fn rendered(url: &str, profile: &Path) -> String {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("chromium is not installed: the browser test needs the Debian package chromium (`cargo xtask test` installs it as root, or skips this test and names it)")
        });
    let out = Command::new("timeout")
        .args(["-k", "5", "60", chromium])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of attribute `name` in the tag text `tag`.
fn attribute<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    tag[at..].split('"').next()
}

/// Every `(monitor, location, status)` cell of the rendered page, and the muted monitors.
fn cells(dom: &str) -> (BTreeSet<(String, String, String)>, BTreeSet<String>) {
    let mut out = BTreeSet::new();
    let mut muted = BTreeSet::new();
    for row in dom.split("<tr").skip(1) {
        let row = row.split("</tr>").next().unwrap_or_default();
        let tag = row.split('>').next().unwrap_or_default();
        let Some(monitor) = attribute(tag, "data-monitor") else {
            continue;
        };
        if attribute(tag, "data-muted") == Some("true") {
            muted.insert(monitor.to_owned());
        }
        for cell in row.split("<td").skip(1) {
            let tag = cell.split('>').next().unwrap_or_default();
            if let (Some(location), Some(status)) = (
                attribute(tag, "data-location"),
                attribute(tag, "data-status"),
            ) {
                out.insert((monitor.to_owned(), location.to_owned(), status.to_owned()));
            }
        }
    }
    (out, muted)
}

/// Checks `spec` here with the real engine.
fn checked(spec: TcpMonitor) -> CheckResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(monitor_testing::check(spec))
}

#[test]
fn the_status_page_shows_what_the_api_says() {
    let (server, tokens) = Server::start(&["shop"]);
    let token = &tokens[0];
    let agent_token = create_token_for(&server.db(), "shop", "agent");
    let open = TcpListener::bind("127.0.0.1:0").expect("bind");
    let open_port = open.local_addr().expect("addr").port();
    let closed_port = monitor_testing::refusing_port().expect("a refusing port");

    let up =
        TcpMonitor::new("cache", "127.0.0.1", open_port).name("Cache <script>alert(1)</script>");
    let down = TcpMonitor::new("db", "127.0.0.1", closed_port).name("Database");
    let mut quiet = TcpMonitor::new("mail", "127.0.0.1", open_port).name("Mail");
    quiet.muted = true;
    quiet.alert_channels = vec!["oncall".into()];
    let bundle = Bundle::new(vec![up.clone(), down.clone(), quiet.clone()]);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let deployed = http
        .post(format!("{}/v1/projects/shop/deploy?prune=true", server.url))
        .bearer_auth(token)
        .json(&json!({ "bundle": serde_json::from_str::<Value>(&bundle.to_json()).unwrap() }))
        .send()
        .expect("deploy");
    assert_eq!(deployed.status().as_u16(), 200);

    // Results as agents in two locations would post them, checked for real.
    let post = |location: &str, tick: i64, result: &CheckResult| {
        let body = json!({
            "agent": format!("{location}-1"),
            "location": location,
            "results": [{
                "id": format!("{}/{location}/{tick}", result.id),
                "monitor": result.id,
                "tick": tick,
                "result": serde_json::from_str::<Value>(&result.to_json()).unwrap(),
            }],
        });
        let r = http
            .post(format!("{}/v1/agent/results", server.url))
            .bearer_auth(&agent_token)
            .json(&body)
            .send()
            .expect("post results");
        assert_eq!(r.status().as_u16(), 200, "{:?}", r.text());
    };
    let up_result = checked(up);
    assert_eq!(up_result.status, Status::Passed);
    let down_result = checked(down);
    assert_eq!(down_result.status, Status::Failed);
    post("eu", 1, &up_result);
    post("us", 1, &up_result);
    post("eu", 1, &down_result);
    post("us", 1, &checked(quiet));
    drop(open);

    let status: Value = http
        .get(format!("{}/v1/projects/shop/status", server.url))
        .bearer_auth(token)
        .send()
        .expect("status")
        .json()
        .expect("status JSON");
    let mut expected = BTreeSet::new();
    let mut expected_muted = BTreeSet::new();
    for monitor in status["monitors"].as_array().expect("monitors") {
        let id = monitor["id"].as_str().expect("id").to_owned();
        if monitor["muted"] == json!(true) {
            expected_muted.insert(id.clone());
        }
        for cell in monitor["locations"].as_array().expect("locations") {
            expected.insert((
                id.clone(),
                cell["location"].as_str().expect("location").to_owned(),
                cell["status"].as_str().expect("status").to_owned(),
            ));
        }
    }
    assert_eq!(expected.len(), 4, "{status}");

    let profile = TempDir::new();
    let dom = rendered(&format!("{}/", server.url), &profile.0);
    let (shown, muted) = cells(&dom);
    assert_eq!(shown, expected, "the page and the API disagree:\n{dom}");
    assert_eq!(muted, expected_muted);
    assert!(expected.contains(&("db".into(), "eu".into(), "failed".into())));
    // It refreshes itself, uses nothing from elsewhere, and shows user text as text.
    assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
    assert!(
        !dom.contains("src=\"http") && !dom.contains("href=\"http"),
        "{dom}"
    );
    assert!(!dom.contains("<script>alert(1)</script>"), "{dom}");
    assert!(dom.contains("Cache &lt;script&gt;"), "{dom}");
}
