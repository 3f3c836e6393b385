//! The overview, certificates page and badges of issue 17 over HTTP against the real
//! binary: status codes, content types, gzip, caching headers, filters and escaping, and
//! what the pages show compared with the API's status.

use std::io::Read as _;

use reqwest::blocking::Response;
use reqwest::header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH};

use super::agents::{Agent, now, with_tls};
use super::*;

/// A server with project `shop`: `cache` (muted, an HTML-looking name, group `edge`,
/// failed in eu), `db` (passed in eu, degraded in us) and `mail` (passed over TLS in eu,
/// its certificate 40 days from expiry).
struct Shop {
    server: Server,
    _dir: TempDir,
    token: String,
    api: Api,
}

fn shop(name: &str) -> Shop {
    let dir = TempDir::new(name);
    let token = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    let mut evil = cache().name("<script>alert(1)</script>");
    evil.muted = true;
    evil.group = Some("edge".into());
    api.ok_deploy(&bundle(vec![evil, db(), mail()]), "");
    let eu = Agent::new(&server, &agent, "e1", "eu");
    let us = Agent::new(&server, &agent, "u1", "us");
    let t = now() - time::Duration::seconds(20);
    eu.ok_post(
        &[
            eu.result("cache", 1, "failed", t),
            eu.result("db", 1, "passed", t),
            with_tls(
                eu.result("mail", 1, "passed", t),
                now() + time::Duration::days(40) + time::Duration::hours(1),
                40,
            ),
        ],
        3,
        0,
    );
    us.ok_post(&[us.result("db", 1, "degraded", t)], 1, 0);
    Shop {
        server,
        _dir: dir,
        token,
        api,
    }
}

/// A client that leaves gzip to the test.
fn raw_client() -> Client {
    Client::builder()
        .no_gzip()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn get(s: &Shop, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = raw_client().get(s.server.url(path)).bearer_auth(&s.token);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().unwrap()
}

fn header(resp: &Response, name: impl reqwest::header::AsHeaderName) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The page at `path`, asked for plain and gzipped: both the same HTML, `no-store`.
fn page(s: &Shop, path: &str) -> String {
    let plain = get(s, path, &[]);
    assert_eq!(plain.status(), StatusCode::OK, "{path}");
    assert_eq!(header(&plain, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&plain, CACHE_CONTROL), "no-store");
    assert_eq!(header(&plain, CONTENT_ENCODING), "");
    let plain = plain.text().unwrap();
    let zipped = get(s, path, &[("accept-encoding", "gzip, br")]);
    assert_eq!(header(&zipped, CONTENT_ENCODING), "gzip");
    assert_eq!(header(&zipped, "vary"), "accept-encoding");
    let bytes = zipped.bytes().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        bytes.len() < plain.len(),
        "{} of {}",
        bytes.len(),
        plain.len()
    );
    assert_eq!(without_time(&text), without_time(&plain), "{path}");
    plain
}

/// A page without the time it was generated at.
fn without_time(page: &str) -> String {
    match page.split_once("<time data-generated>") {
        Some((head, tail)) => format!("{head}{}", tail.split_once("</time>").map_or("", |t| t.1)),
        None => page.to_owned(),
    }
}

/// An uptime as the pages show it: rounded down to two decimals.
fn uptime(value: &Value) -> String {
    format!("{:.2}", (value.as_f64().unwrap() * 100.0).floor() / 100.0)
}

/// The text from `<tr data-monitor="id"` to its `</tr>`.
fn row<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<tr data-monitor=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let end = page[start..].find("</tr>").unwrap();
    &page[start..start + end]
}

/// The monitor ids of the rows, in page order.
fn rows(page: &str) -> Vec<&str> {
    page.split("<tr data-monitor=\"")
        .skip(1)
        .map(|r| r.split('"').next().unwrap())
        .collect()
}

#[test]
fn the_overview_shows_what_the_status_says_escaped_and_gzipped() {
    let s = shop("overview");
    let page = page(&s, "/");
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
    assert!(page.contains("<meta name=\"viewport\""));
    // No script, no external assets.
    assert!(!page.contains("<script"), "{page}");
    for external in ["src=", "http://", "https://", "@import", "url("] {
        assert!(!page.contains(external), "{external}");
    }
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("refused &lt;b&gt;the&lt;/b&gt; connection &amp; more"));
    // Groups by name, no group last ("Other"), by name within a group.
    assert_eq!(rows(&page), ["cache", "db", "mail"]);
    assert!(page.contains("<tbody data-group=\"edge\">"));
    assert!(page.contains("<tbody data-group=\"Other\">"));

    let status = s.api.ok_get("/status");
    for m in status["monitors"].as_array().unwrap() {
        let id = m["id"].as_str().unwrap();
        let row = row(&page, id);
        assert_eq!(
            row.contains("data-muted=\"true\""),
            m["muted"] == true,
            "{row}"
        );
        let locations = m["locations"].as_array().unwrap();
        assert_eq!(
            row.matches("data-location=").count(),
            locations.len(),
            "{row}"
        );
        for l in locations {
            let cell = format!(
                "data-monitor=\"{id}\" data-location=\"{}\" data-status=\"{}\"",
                l["location"].as_str().unwrap(),
                l["status"].as_str().unwrap()
            );
            assert!(row.contains(&cell), "{cell} not in {row}");
        }
        for window in ["24h", "7d", "30d"] {
            let shown = format!("data-uptime-{window}=\"{}\"", uptime(&m["uptime"][window]));
            assert!(row.contains(&shown), "{shown} not in {row}");
        }
        assert!(
            row.contains(&format!("data-results=\"{}\"", locations.len())),
            "{row}"
        );
        assert!(
            row.contains(&format!("<a href=\"/monitors/{id}?project=shop\">")),
            "{row}"
        );
    }
    assert!(row(&page, "db").contains("data-total-ms=\"12.8\">12.8 ms"));
    assert!(row(&page, "mail").contains("data-days-left=\"40\""));
    let cache = row(&page, "cache");
    assert!(cache.contains("title=\"refused: "), "{cache}");
    assert!(cache.contains(">muted<"), "{cache}");
}

#[test]
fn overview_filters_narrow_the_rows_and_bad_values_are_a_400_page() {
    let s = shop("filters");
    for (query, expected) in [
        ("tag=prod", &["cache"][..]),
        ("tag=db", &["db"]),
        ("tag=", &["cache", "db", "mail"]),
        ("status=failed", &["cache"]),
        ("status=degraded", &["db"]),
        ("status=passed", &["db", "mail"]),
        ("location=us", &["db"]),
        ("location=us&status=passed", &[]),
        (
            "project=shop&tag=&location=eu&status=",
            &["cache", "db", "mail"],
        ),
    ] {
        let page = page(&s, &format!("/?{query}"));
        assert_eq!(rows(&page), expected, "{query}");
        assert!(page.contains("<a href=\"/?project=shop\">clear</a>"));
    }
    let page = page(&s, "/?status=failed&tag=prod");
    assert!(page.contains("<option selected>failed</option>"), "{page}");
    assert!(page.contains("<option selected>prod</option>"), "{page}");
    for (query, needle) in [
        (
            "status=red",
            "status `red` is not passed, degraded or failed",
        ),
        ("location=a%20b", "location: invalid location"),
        ("sort=name", "unknown parameter `sort`"),
        ("tag=a&tag=b", "`tag` is given twice"),
    ] {
        let resp = get(&s, &format!("/?{query}"), &[]);
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(header(&resp, CONTENT_TYPE), "text/html; charset=utf-8");
        let text = resp.text().unwrap();
        assert!(text.contains(needle), "{query}: {text}");
    }
}

#[test]
fn the_certificates_page_lists_the_chain_with_days_left() {
    let s = shop("certificates");
    let page = page(&s, "/certificates");
    assert_eq!(page.matches("<tr data-sha256=").count(), 1, "{page}");
    let status = s.api.ok_get("/status");
    let mail = status["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "mail")
        .unwrap();
    let days = mail["locations"][0]["days_left"].as_i64().unwrap();
    assert!(
        page.contains(&format!(
            "<tr data-sha256=\"AA:BB\" data-days-left=\"{days}\">"
        )),
        "{page}"
    );
    assert!(
        page.contains("<td>CN=mail.internal</td><td>CN=ca</td><td>EC 256</td>"),
        "{page}"
    );
    assert!(page.contains("<li data-monitor=\"mail\"><a href=\"/monitors/mail?project=shop\">"));
    assert!(page.contains("<small>eu</small>"));
    // A read token sees it too; no token does not.
    let read = create_token_with_role(&s._dir.db(), "shop", "read");
    let resp = raw_client()
        .get(s.server.url("/certificates"))
        .bearer_auth(read)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = raw_client()
        .get(s.server.url("/certificates"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

/// The `<title>` of a badge.
fn badge_title(svg: &str) -> &str {
    svg.split("<title>")
        .nth(1)
        .unwrap()
        .split("</title>")
        .next()
        .unwrap()
}

#[test]
fn badges_are_svg_cacheable_with_etags_and_404_for_unknown_monitors() {
    let s = shop("badges");
    let status = s.api.ok_get("/status");
    let db = &status["monitors"][1];
    assert_eq!(db["id"], "db");
    let week = format!("uptime 7d: {}%", uptime(&db["uptime"]["7d"]));
    let day = format!("uptime 24h: {}%", uptime(&db["uptime"]["24h"]));
    for (path, title) in [
        ("/badge/shop/db/status.svg", "status: degraded"),
        ("/badge/shop/cache/status.svg", "status: muted"),
        ("/badge/shop/db/uptime.svg", week.as_str()),
        ("/badge/shop/db/uptime.svg?range=24h", day.as_str()),
        ("/badge/shop/mail/certificate.svg", "certificate: 40 days"),
        ("/badge/shop/db/certificate.svg", "certificate: none"),
    ] {
        let resp = get(&s, path, &[]);
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        assert_eq!(header(&resp, CONTENT_TYPE), "image/svg+xml");
        assert_eq!(header(&resp, CACHE_CONTROL), "private, max-age=60");
        let etag = header(&resp, ETAG);
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        let svg = resp.text().unwrap();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert_eq!(badge_title(&svg), title, "{path}");
        // The same badge again with its tag: 304, no body.
        let again = get(&s, path, &[(IF_NONE_MATCH.as_str(), &etag)]);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(header(&again, ETAG), etag);
        assert!(again.bytes().unwrap().is_empty());
        let other = get(&s, path, &[(IF_NONE_MATCH.as_str(), "\"other\"")]);
        assert_eq!(other.status(), StatusCode::OK, "{path}");
    }
    for path in ["/badge/shop/nope/status.svg", "/badge/shop/db/size.svg"] {
        let resp = get(&s, path, &[]);
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&resp, CONTENT_TYPE), "image/svg+xml");
        assert_eq!(badge_title(&resp.text().unwrap()), "badge: not found");
    }
    let resp = get(&s, "/badge/shop/db/uptime.svg?range=1y", &[]);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.text()
            .unwrap()
            .contains("range `1y` is not one of 24h, 7d, 30d, 90d")
    );
    let resp = raw_client()
        .get(s.server.url("/badge/shop/db/status.svg"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_public_project_has_public_badges_and_an_overview_without_errors() {
    let dir = TempDir::new("public-pages");
    let token = create_token(&dir.db(), "shop");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(&dir.db(), &["--public-status", "shop"], &[]);
    Api::new(&server, "shop", &token).ok_deploy(&bundle(vec![cache(), db()]), "");
    let eu = Agent::new(&server, &agent, "e1", "eu");
    let t = now() - time::Duration::seconds(20);
    eu.ok_post(
        &[
            eu.result("cache", 1, "failed", t),
            eu.result("db", 1, "passed", t),
        ],
        2,
        0,
    );
    let resp = raw_client()
        .get(server.url("/badge/shop/cache/status.svg"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, CACHE_CONTROL), "public, max-age=60");
    assert_eq!(badge_title(&resp.text().unwrap()), "status: failed");
    let resp = raw_client()
        .get(server.url("/?project=shop"))
        .header("accept-encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, CONTENT_ENCODING), "gzip");
    let mut page = String::new();
    flate2::read::GzDecoder::new(&resp.bytes().unwrap()[..])
        .read_to_string(&mut page)
        .unwrap();
    assert!(
        page.contains("data-monitor=\"cache\" data-location=\"eu\" data-status=\"failed\""),
        "{page}"
    );
    for secret in [
        "refused",
        "cache.internal",
        "10.0.0.1",
        "is it running",
        "/monitors/",
        "/certificates",
        "Log out",
    ] {
        assert!(
            !page.contains(secret),
            "{secret} in the public overview: {page}"
        );
    }
}
