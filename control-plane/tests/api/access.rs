//! Private by default (issue 17): without a token every page and read answers 401, or
//! sends a browser to the login form; a token reads only its own project; the login form
//! trades a token for a cookie that only reads, refusing other sites; `--public-status`
//! opens one project's overview and badges and nothing that names an error, an address or
//! a hint; and what looks like HTML is escaped on every page.

use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::redirect::Policy;

use super::agents::{Agent, now, with_tls};
use super::*;

/// A client that shows redirects rather than following them.
fn client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Every route that reads a project, as `shop` would.
const READS: &[&str] = &[
    "/",
    "/?project=shop",
    "/monitors/cache",
    "/certificates",
    "/metrics",
    "/badge/shop/cache/status.svg",
    "/badge/shop/cache/uptime.svg?range=7d",
    "/badge/shop/cache/certificate.svg",
    "/v1/projects/shop/status",
    "/v1/projects/shop/monitors",
    "/v1/projects/shop/versions",
    "/v1/projects/shop/monitors/cache/results",
    "/v1/projects/shop/monitors/cache/history",
];

/// The pages a browser is sent to the login form from.
const PAGES: &[&str] = &["/", "/?project=shop", "/monitors/cache", "/certificates"];

/// A server with project `shop` (deploy, read and agent tokens) and `other` (a read
/// token), `cache` and `mail` deployed and results of both in `eu`: `cache` failed with an
/// error that names an address and has a hint, `mail` passed over TLS.
struct Setup {
    server: Server,
    _dir: TempDir,
    deploy: String,
    read: String,
    agent: String,
    other: String,
}

fn setup(name: &str, args: &[&str]) -> Setup {
    let dir = TempDir::new(name);
    let deploy = create_token(&dir.db(), "shop");
    let read = create_token_with_role(&dir.db(), "shop", "read");
    let agent = create_token_with_role(&dir.db(), "shop", "agent");
    let other = create_token_with_role(&dir.db(), "other", "read");
    let other_deploy = create_token(&dir.db(), "other");
    let server = Server::start(&dir.db(), args, &[]);
    let mut evil = cache();
    evil.name = "Cache <script>alert(1)</script>".into();
    evil.group = Some("<i>edge</i>".into());
    Api::new(&server, "shop", &deploy).ok_deploy(&bundle(vec![evil, mail()]), "");
    Api::new(&server, "other", &other_deploy).ok_deploy(&bundle(vec![db()]), "");
    let eu = Agent::new(&server, &agent, "e1", "eu");
    eu.assignment();
    let t = now() - time::Duration::seconds(20);
    eu.ok_post(
        &[
            eu.result("cache", 1, "failed", t),
            with_tls(
                eu.result("mail", 1, "passed", t),
                now() + time::Duration::days(40),
                40,
            ),
        ],
        2,
        0,
    );
    Setup {
        server,
        _dir: dir,
        deploy,
        read,
        agent,
        other,
    }
}

fn get(setup: &Setup, path: &str, auth: Option<&str>, accept: &str) -> Response {
    let mut request = client().get(setup.server.url(path)).header(ACCEPT, accept);
    if let Some(token) = auth {
        request = request.bearer_auth(token);
    }
    request.send().unwrap()
}

/// The text of `path` read with `token`, once it answers 200.
fn read_ok(setup: &Setup, path: &str, token: &str) -> String {
    let resp = get(setup, path, Some(token), "*/*");
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.text().unwrap()
}

#[test]
fn without_a_token_nothing_is_read_and_browsers_go_to_the_login_form() {
    let s = setup("private", &[]);
    for path in READS {
        let resp = get(&s, path, None, "application/json");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body = resp.text().unwrap();
        for secret in [
            "Cache",
            "refused",
            "10.0.0.1",
            "probe_success",
            "mail.internal",
        ] {
            assert!(!body.contains(secret), "{path} shows {secret}: {body}");
        }
    }
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for path in PAGES {
        let resp = get(&s, path, None, browser);
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{path}");
        let to = resp.headers()[LOCATION].to_str().unwrap().to_owned();
        let next = percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC);
        assert_eq!(to, format!("/login?next={next}"), "{path}");
    }
    // An agent token is no key to the pages, nor an unknown token.
    for token in [s.agent.as_str(), "cp_unknown"] {
        for path in ["/", "/monitors/cache", "/certificates", "/metrics"] {
            let status = get(&s, path, Some(token), "*/*").status();
            assert!(
                status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
                "{path}: {status}"
            );
        }
    }
}

#[test]
fn a_token_reads_its_own_project_only() {
    let s = setup("scoped", &[]);
    for token in [&s.read, &s.deploy] {
        assert!(read_ok(&s, "/v1/projects/shop/status", token).contains("cache"));
        let metrics = read_ok(&s, "/metrics", token);
        assert!(metrics.contains("project=\"shop\""), "{metrics}");
        assert!(!metrics.contains("project=\"other\""), "{metrics}");
    }
    // `other`'s token sees its own metrics, not shop's.
    let metrics = read_ok(&s, "/metrics", &s.other);
    assert!(!metrics.contains("project=\"shop\""), "{metrics}");
    for path in [
        "/v1/projects/shop/status",
        "/v1/projects/shop/monitors/cache/history",
        "/v1/projects/shop/monitors/cache/results",
        "/?project=shop",
        "/monitors/cache?project=shop",
        "/certificates?project=shop",
        "/badge/shop/cache/status.svg",
    ] {
        let resp = get(&s, path, Some(&s.other), "*/*");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
        let body = resp.text().unwrap();
        assert!(!body.contains("refused"), "{path}: {body}");
    }
    // HTTP basic, as Prometheus sends it: the token is the password.
    let resp = client()
        .get(s.server.url("/metrics"))
        .basic_auth("prometheus", Some(&s.read))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.text()
            .unwrap()
            .contains("probe_success{project=\"shop\"")
    );
}

/// Posts the login form with `token`, from `origin` when given.
fn login(s: &Setup, token: &str, next: &str, origin: Option<&str>) -> Response {
    let body = format!(
        "token={}&next={}",
        percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC),
        percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
    );
    let mut request = client()
        .post(s.server.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    request.send().unwrap()
}

#[test]
fn the_login_form_trades_a_token_for_a_cookie_that_only_reads() {
    let s = setup("login", &[]);
    let form = client()
        .get(s.server.url("/login?next=/certificates"))
        .send()
        .unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let page = form.text().unwrap();
    assert!(page.contains("<form class=\"login\" method=\"post\" action=\"/login\">"));
    assert!(page.contains("value=\"/certificates\""), "{page}");
    assert!(!page.contains("<script"), "{page}");

    let origin = format!("http://{}", s.server.addr());
    // Refused: an unknown token, an agent token, an empty one, another site's form.
    for (token, status, said) in [
        ("cp_nope", StatusCode::UNAUTHORIZED, "unknown token"),
        (
            s.agent.as_str(),
            StatusCode::UNAUTHORIZED,
            "an agent token cannot log in",
        ),
        ("", StatusCode::BAD_REQUEST, "paste a token"),
    ] {
        let resp = login(&s, token, "/", Some(&origin));
        assert_eq!(resp.status(), status, "{token}");
        assert!(resp.headers().get(SET_COOKIE).is_none());
        assert!(resp.text().unwrap().contains(said));
    }
    let resp = login(&s, &s.read, "/", Some("http://evil.example"));
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.headers().get(SET_COOKIE).is_none());

    // A read token: a cookie for reads, and back to where the browser was going; never
    // to another site.
    let resp = login(&s, &s.read, "/certificates", Some(&origin));
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[LOCATION], "/certificates");
    let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for part in [
        "cp_session=",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let resp = login(&s, &s.read, "//evil.example/x", None);
    assert_eq!(resp.headers()[LOCATION], "/");

    let with_cookie = |path: &str| {
        client()
            .get(s.server.url(path))
            .header(COOKIE, &cookie)
            .send()
            .unwrap()
    };
    assert_eq!(
        with_cookie("/v1/projects/shop/status").status(),
        StatusCode::OK
    );
    assert_eq!(with_cookie("/metrics").status(), StatusCode::OK);
    assert_eq!(
        with_cookie("/v1/projects/other/status").status(),
        StatusCode::FORBIDDEN
    );
    // A cookie of a deploy token still only reads: another site's form cannot deploy.
    let resp = login(&s, &s.deploy, "/", Some(&origin));
    let deploy_cookie = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let deploy_cookie = deploy_cookie.split(';').next().unwrap();
    let resp = client()
        .post(s.server.url("/v1/projects/shop/deploy"))
        .header(COOKIE, deploy_cookie)
        .json(&json!({"bundle": bundle(vec![db()])}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(resp.text().unwrap().contains("a login cookie only reads"));
    assert!(read_ok(&s, "/v1/projects/shop/monitors", &s.read).contains("\"cache\""));

    // Logging out clears the cookie; from another site it is refused.
    let out = client()
        .post(s.server.url("/logout"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, "http://evil.example")
        .send()
        .unwrap();
    assert_eq!(out.status(), StatusCode::FORBIDDEN);
    let out = client()
        .post(s.server.url("/logout"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, &origin)
        .send()
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // A revoked token's cookie stops working at once.
    let id = &control_plane::hash::sha256_hex(s.read.as_bytes())[..12];
    let revoked = Command::new(BIN)
        .args(["token", "revoke", id, "--database", &s._dir.db()])
        .output()
        .unwrap();
    assert!(revoked.status.success(), "{revoked:?}");
    assert_eq!(
        with_cookie("/v1/projects/shop/status").status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn a_public_status_shows_verdicts_and_never_errors_addresses_or_hints() {
    let s = setup("public", &["--public-status", "shop"]);
    for path in ["/", "/?project=shop"] {
        let resp = get(&s, path, None, "text/html");
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let page = resp.text().unwrap();
        assert!(page.contains("data-status=\"failed\""), "{page}");
        assert!(page.contains("Cache &lt;script&gt;"), "{page}");
        for secret in [
            "refused",
            "the</b> connection",
            "the&lt;/b&gt; connection",
            "10.0.0.1",
            "cache.internal",
            "is it running",
            "/monitors/cache",
            "/certificates",
        ] {
            assert!(
                !page.contains(secret),
                "the public page shows {secret}: {page}"
            );
        }
    }
    for badge in ["status.svg", "uptime.svg?range=24h", "certificate.svg"] {
        let resp = get(&s, &format!("/badge/shop/mail/{badge}"), None, "*/*");
        assert_eq!(resp.status(), StatusCode::OK, "{badge}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("image/svg+xml")
        );
    }
    // Public is the overview and the badges of shop, nothing else.
    for path in [
        "/monitors/cache",
        "/certificates",
        "/metrics",
        "/v1/projects/shop/status",
        "/?project=other",
        "/badge/other/db/status.svg",
    ] {
        let status = get(&s, path, None, "application/json").status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Logged in, shop's own token sees the errors.
    let page = read_ok(&s, "/", &s.read);
    assert!(page.contains("refused"), "{page}");
}

#[test]
fn what_looks_like_html_is_escaped_on_every_page() {
    let s = setup("escaped", &[]);
    for path in [
        "/",
        "/monitors/cache",
        "/monitors/mail",
        "/certificates",
        "/badge/shop/cache/status.svg",
        "/login?next=/%22%3E%3Cscript%3E",
    ] {
        let page = read_ok(&s, path, &s.read);
        for raw in ["<script", "<b>", "<i>edge"] {
            assert!(!page.contains(raw), "{path} shows {raw} unescaped: {page}");
        }
    }
    let overview = read_ok(&s, "/", &s.read);
    for escaped in [
        "Cache &lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;i&gt;edge&lt;/i&gt;",
    ] {
        assert!(overview.contains(escaped), "{escaped}: {overview}");
    }
}
