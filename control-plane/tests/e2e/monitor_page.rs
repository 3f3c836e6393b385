//! The monitor page in headless Chromium against a control plane fed by real agents in two
//! locations (a TLS monitor against a test TLS server, one against a refusing port): the
//! chart's point counts, the certificate shown, the failures and the verdicts are compared
//! with what the API answers for the same question, and screenshots are taken. Before the
//! agents start, the TLS monitor's last 40 hours are filled in (copies of a real check,
//! posted as those agents would have), so that the rollup ranges have points to compare.

mod browser {
    use std::collections::BTreeMap;
    use std::io::Read as _;
    use std::time::Duration;

    use monitor_core::prelude::*;
    use monitor_core::{Bundle, ProbeError};
    use monitor_testing::browser::{Browser, non_blank, screenshot_dir};
    use monitor_testing::refusing_port;
    use serde_json::{Value, json};

    use crate::agents::{Agent, HelloTls, deploy, wait_for};
    use crate::browser::login;
    use crate::{Server, TempDir, create_token_for};

    fn http() -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_gzip()
            .build()
            .expect("http client")
    }

    /// The JSON answer of a GET of `path` with `token`.
    fn api(server: &Server, token: &str, path: &str) -> Value {
        let response = http()
            .get(format!("{}{path}", server.url))
            .bearer_auth(token)
            .send()
            .expect("an API answer");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        response.json().expect("JSON")
    }

    /// Every stored result of `monitor`, oldest first.
    fn results(server: &Server, token: &str, monitor: &str) -> Vec<Value> {
        let path = format!("/v1/projects/shop/monitors/{monitor}/results?limit=10000");
        api(server, token, &path)["results"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Results per location of `results`.
    fn per_location(results: &[Value]) -> BTreeMap<String, Vec<&Value>> {
        let mut out: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for r in results {
            let location = r["location"].as_str().unwrap_or_default().to_owned();
            out.entry(location).or_default().push(r);
        }
        out
    }

    /// Posts, as agents `eu-1` and `us-1` of `agent_token`, a result of `sample` every 20
    /// minutes over the last 40 hours (times varying, one in 23 failed), as if the agents
    /// had run then.
    fn backfill(server: &Server, agent_token: &str, sample: &CheckResult) {
        let now = time::OffsetDateTime::now_utc();
        for (i, location) in ["eu", "us"].into_iter().enumerate() {
            let mut results = Vec::new();
            for k in 1..=120i64 {
                let started = now - time::Duration::minutes(20 * k + 7 * i as i64);
                let mut r = sample.clone();
                r.started_at = started;
                for a in &mut r.attempts {
                    a.started_at = started;
                }
                r.timings.total_ms = 4.0 + ((k * k * 31 + i as i64 * 17) % 23) as f64 / 3.0;
                if k % 23 == 0 {
                    r.status = Status::Failed;
                    r.error = Some(ProbeError {
                        kind: ErrorKind::ReadTimeout,
                        message: "no answer within 5000 ms".into(),
                        hints: vec!["is the service overloaded?".into()],
                    });
                }
                let tick = started.unix_timestamp() / 10;
                results.push(json!({
                    "id": format!("web/{location}/{tick}"),
                    "monitor": "web",
                    "tick": tick,
                    "result": serde_json::from_str::<Value>(&r.to_json()).unwrap(),
                }));
            }
            results.reverse();
            for batch in results.chunks(30) {
                let response = http()
                    .post(format!("{}/v1/agent/results", server.url))
                    .bearer_auth(agent_token)
                    .json(&json!({
                        "agent": format!("{location}-1"),
                        "location": location,
                        "results": batch,
                    }))
                    .send()
                    .expect("post results");
                assert_eq!(response.status().as_u16(), 200, "{:?}", response.text());
            }
        }
    }

    /// The chart of the open page: its range, step and point counts.
    const CHART: &str = "(() => { const s = document.querySelector('svg.ch'); \
        if (!s) return null; \
        return { from: s.dataset.from, to: s.dataset.to, step: s.dataset.step, \
          points: Number(s.dataset.points), \
          series: Object.fromEntries([...s.querySelectorAll('g[data-series]')] \
            .map(g => [g.dataset.series, Number(g.dataset.points)])) }; })()";

    #[test]
    fn the_monitor_page_shows_what_the_api_says() {
        let tls = HelloTls::start(60);
        let web = tls.monitor("web").name("Web <i>front</i>");
        let db = TcpMonitor::new("db", "127.0.0.1", refusing_port().expect("a port"))
            .name("Database")
            .frequency(Frequency::S10)
            .timeouts(2_000, 2_000, 5_000);
        let (server, tokens) = Server::start(&["shop"]);
        let token = &tokens[0];
        deploy(&server, token, &Bundle::new(vec![web.clone(), db]));
        let agent_token = create_token_for(&server.db(), "shop", "agent");
        let read_token = create_token_for(&server.db(), "shop", "read");
        let sample = tls.runtime.block_on(monitor_testing::check(web.clone()));
        assert_eq!(sample.status, Status::Passed, "{sample:?}");
        backfill(&server, &agent_token, &sample);
        // The closed hours are rolled up (every 30 seconds).
        wait_for(
            Duration::from_secs(90),
            "the hourly and daily rollups of the filled-in hours",
            &|| server.log(),
            || {
                let count = |step: &str| {
                    let path =
                        format!("/v1/projects/shop/monitors/web/history?step={step}&location=eu");
                    api(&server, token, &path)["points"]
                        .as_array()
                        .map_or(0, Vec::len)
                };
                count("1h") >= 38 && count("1d") >= 1
            },
        );
        let dir = TempDir::new();
        let mut agents = [
            Agent::spawn(&server.url, &agent_token, "eu-1", "eu", 1, &dir.0),
            Agent::spawn(&server.url, &agent_token, "us-1", "us", 1, &dir.0),
        ];
        let logs = || {
            format!(
                "--- control plane\n{}\n--- eu\n{}\n--- us\n{}",
                server.log(),
                agents[0].log(),
                agents[1].log()
            )
        };
        // Two results of each monitor from each location, then the agents stop, so that
        // the page and the API read the same results.
        wait_for(
            Duration::from_secs(90),
            "two results of each monitor from each location",
            &logs,
            || {
                ["web", "db"].iter().all(|m| {
                    let seen = results(&server, token, m);
                    let by = per_location(&seen);
                    by.len() == 2 && by.values().all(|r| r.len() >= 2)
                })
            },
        );
        for agent in &mut agents {
            agent.stop();
        }
        let status = api(&server, token, "/v1/projects/shop/status");

        let mut b = Browser::launch().expect("chromium");
        // Without a login the browser lands on the login form.
        let nav = b
            .open(&format!("{}/monitors/web", server.url), 1280)
            .expect("open");
        assert!(nav.url.contains("/login"), "{nav:?}");
        login(&mut b, &server.url, &read_token);

        // Each range plots exactly the points the API's /history answers.
        for range in ["24h", "7d", "30d", "90d"] {
            let url = format!("{}/monitors/web?range={range}", server.url);
            let nav = b.open(&url, 1280).expect("open the monitor page");
            assert_eq!(nav.status, 200, "{range}: {nav:?}");
            let chart = b.eval(CHART).expect("the chart");
            if range == "7d" {
                let shot = screenshot_dir().join("monitor-7d-1280.png");
                b.screenshot(&shot).expect("shot");
                non_blank(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
            }
            let step = chart["step"].as_str().expect("data-step");
            let expected_step = if range == "24h" {
                "raw"
            } else if range == "90d" {
                "1d"
            } else {
                "1h"
            };
            assert_eq!(step, expected_step, "{range}: {chart}");
            let history = http()
                .get(format!(
                    "{}/v1/projects/shop/monitors/web/history",
                    server.url
                ))
                .query(&[
                    ("from", chart["from"].as_str().expect("data-from")),
                    ("to", chart["to"].as_str().expect("data-to")),
                    ("step", step),
                ])
                .bearer_auth(token)
                .send()
                .expect("history");
            assert_eq!(history.status().as_u16(), 200, "{range}");
            let history: Value = history.json().expect("history JSON");
            let points = history["points"].as_array().expect("points");
            assert_eq!(
                chart["points"].as_u64(),
                Some(points.len() as u64),
                "{range}: the chart {chart} and the API {history}"
            );
            let mut api_series: BTreeMap<String, u64> = BTreeMap::new();
            for p in points {
                *api_series
                    .entry(p["location"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
            let shown: BTreeMap<String, u64> =
                serde_json::from_value(chart["series"].clone()).expect("series");
            assert_eq!(shown, api_series, "{range}");
            // Filled in: 72 raw results a day per location over 40 hours: 2 days.
            let least = match range {
                "24h" => 70,
                "90d" => 1,
                _ => 38,
            };
            assert!(
                shown.len() == 2 && shown.values().all(|n| *n >= least),
                "{range}: {chart}"
            );
        }

        // The current verdicts are the status's.
        for monitor in status["monitors"].as_array().expect("monitors") {
            let id = monitor["id"].as_str().expect("id");
            b.open(&format!("{}/monitors/{id}", server.url), 1280)
                .expect("open");
            let shown = b
                .eval(
                    "Object.fromEntries([...document.querySelectorAll('td[data-status]')] \
                     .map(td => [td.dataset.location, td.dataset.status]))",
                )
                .expect("verdicts");
            let expected: serde_json::Map<String, Value> = monitor["locations"]
                .as_array()
                .expect("locations")
                .iter()
                .map(|l| {
                    (
                        l["location"].as_str().unwrap().to_owned(),
                        l["status"].clone(),
                    )
                })
                .collect();
            assert_eq!(shown, Value::Object(expected), "{id}");
        }
        assert!(
            status.to_string().contains("\"failed\""),
            "the refusing monitor fails: {status}"
        );

        // The certificate chain is the latest result's, the same from both locations.
        b.open(&format!("{}/monitors/web", server.url), 1280)
            .expect("open");
        let chains = b
            .eval(
                "[...document.querySelectorAll('table[data-chain]')].map(t => [t.dataset.chain, \
                 [...t.querySelectorAll('tr[data-sha256]')].map(r => [r.dataset.sha256, \
                 Number(r.querySelector('[data-days-left]').dataset.daysLeft)])])",
            )
            .expect("chains");
        let web_results = results(&server, token, "web");
        let latest = per_location(&web_results);
        let chain_of = |r: &Value| -> Value {
            r["result"]["tls"]["chain"]
                .as_array()
                .expect("a TLS chain")
                .iter()
                .map(|c| json!([c["sha256"], c["days_left"]]))
                .collect()
        };
        let eu = chain_of(latest["eu"].last().expect("eu"));
        assert_eq!(eu, chain_of(latest["us"].last().expect("us")));
        assert_eq!(chains, json!([["eu us", eu]]), "the page's chains");
        assert!(
            eu.as_array().is_some_and(|c| c.len() == 2) && eu[0][1].as_i64() >= Some(59),
            "a leaf valid for 60 days and its intermediate: {eu}"
        );
        // The name is escaped.
        let html = b.html().expect("html");
        assert!(!html.contains("<i>front</i>"), "{html}");
        assert!(html.contains("Web &lt;i&gt;front&lt;/i&gt;"), "{html}");

        // Screenshots, wide, narrow and dark; at 375 px only the chart scrolls.
        let shots = screenshot_dir();
        std::fs::create_dir_all(&shots).expect("the screenshot directory");
        b.screenshot(&shots.join("monitor-1280.png")).expect("shot");
        b.open(&format!("{}/monitors/web", server.url), 375)
            .expect("open");
        let width = b
            .eval("document.documentElement.scrollWidth")
            .expect("width");
        assert!(
            width.as_u64() <= Some(375),
            "the page is {width} px wide at 375"
        );
        b.screenshot(&shots.join("monitor-375.png")).expect("shot");
        b.prefers_dark(true).expect("dark");
        b.open(&format!("{}/monitors/db", server.url), 1280)
            .expect("open");
        b.screenshot(&shots.join("monitor-1280-dark.png"))
            .expect("shot");
        b.prefers_dark(false).expect("light");
        for name in [
            "monitor-1280.png",
            "monitor-375.png",
            "monitor-1280-dark.png",
        ] {
            non_blank(&shots.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }

        // The failures are the API's failed results, newest first.
        b.open(&format!("{}/monitors/db", server.url), 1280)
            .expect("open");
        let shown = b
            .eval("[...document.querySelectorAll('[data-result]')].map(e => e.dataset.result)")
            .expect("failures");
        let db_results = results(&server, token, "db");
        let mut failed: Vec<&Value> = db_results
            .iter()
            .filter(|r| r["result"]["status"] != json!("passed"))
            .collect();
        failed.sort_by_key(|r| {
            r["result"]["started_at"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        });
        let expected: Vec<Value> = failed
            .iter()
            .rev()
            .take(20)
            .map(|r| r["id"].clone())
            .collect();
        assert!(expected.len() >= 4, "{db_results:?}");
        assert_eq!(shown, Value::Array(expected));
        let newest = failed.last().expect("a failure");
        let text = b
            .eval("document.querySelector('[data-result]').innerText")
            .expect("text");
        let message = newest["result"]["error"]["message"]
            .as_str()
            .expect("a message");
        assert!(
            text.as_str()
                .is_some_and(|t| t.contains(message) && t.contains("refused")),
            "{text} lacks {message}"
        );

        // An unknown monitor and a bad range are pages that say so.
        let nav = b
            .open(&format!("{}/monitors/nope", server.url), 1280)
            .expect("open");
        assert_eq!(nav.status, 404);
        let text = b.eval("document.body.innerText").expect("text");
        assert!(
            text.as_str()
                .is_some_and(|t| t.contains("no monitor `nope`")),
            "{text}"
        );
        let nav = b
            .open(&format!("{}/monitors/web?range=1y", server.url), 1280)
            .expect("open");
        assert_eq!(nav.status, 400);
        let text = b.eval("document.body.innerText").expect("text");
        assert!(
            text.as_str()
                .is_some_and(|t| t.contains("`1y`") && t.contains("24h, 7d, 30d, 90d")),
            "{text}"
        );

        // Sent gzip-compressed and never stored; its sizes.
        let response = http()
            .get(format!("{}/monitors/web?range=24h", server.url))
            .bearer_auth(token)
            .header("accept-encoding", "gzip")
            .send()
            .expect("the page");
        assert_eq!(response.status().as_u16(), 200);
        let headers = response.headers().clone();
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(headers["cache-control"], "no-store");
        let gzip = response.bytes().expect("body");
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_string(&mut plain)
            .expect("gzip");
        assert!(plain.contains("<svg class=\"ch\""), "{plain}");
        // Measured: about 15 000 bytes, 4 800 gzip.
        assert!(
            gzip.len() < 100 * 1024 && plain.len() < 100 * 1024,
            "{} bytes, {} gzip",
            plain.len(),
            gzip.len()
        );
        drop(tls);
    }
}
