//! End-to-end tests of the `control-plane` binary: each test starts the real server on
//! 127.0.0.1:0 with a fresh database (a SQLite file; a database of a throwaway PostgreSQL
//! server when `CONTROL_PLANE_TEST_DATABASE=postgres`, see [`TempDir::db`]; the tests of
//! what only SQLite has use a SQLite file either way), creates tokens with `token create`,
//! and drives the
//! API of `control-plane/API.md` over HTTP. The agent, results and status routes are tested
//! in [`agents`]; the hardening of issue 14 (bodies, time, bounds, secrets, agent ids) in
//! [`hardening`], the token commands and roles in [`tokens`], connections and streamed
//! responses in [`serving`], `--version` and the environment variables in
//! [`conventions`], history, uptime and the retentions of issue 16 in [`history`], and who may read what
//! (tokens, the login cookie, `--public-status`) in [`access`], and the overview,
//! certificates page and badges in [`pages`].

#[path = "api/access.rs"]
mod access;
#[path = "api/agents.rs"]
mod agents;
#[path = "api/conventions.rs"]
mod conventions;
#[path = "api/hardening.rs"]
mod hardening;
#[path = "api/history.rs"]
mod history;
#[path = "api/maintenance.rs"]
mod maintenance;
#[path = "api/pages.rs"]
mod pages;
#[path = "api/region.rs"]
mod region;
#[path = "api/serving.rs"]
mod serving;
#[path = "api/tokens.rs"]
mod tokens;
#[path = "api/trigger.rs"]
mod trigger;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use control_plane::MonitorSet;
use monitor_core::Bundle;
use monitor_core::{StartTls, TcpMonitor};
use monitor_testing::postgres;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_control-plane");

/// Whether the suite runs on PostgreSQL (`CONTROL_PLANE_TEST_DATABASE=postgres`) rather
/// than SQLite.
fn on_postgres() -> bool {
    match std::env::var("CONTROL_PLANE_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("CONTROL_PLANE_TEST_DATABASE is sqlite or postgres, not `{other}`"),
    }
}

/// A directory under the target's temporary directory, and on PostgreSQL a fresh database;
/// both removed on drop.
struct TempDir(PathBuf, Option<String>);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "control-plane-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database = on_postgres().then(|| postgres::shared().create_database().unwrap());
        TempDir(dir, database)
    }

    /// Like [`TempDir::new`], with a PostgreSQL database whatever the suite's backend: for
    /// the tests of what only PostgreSQL has (replicas).
    fn on_postgres(name: &str) -> TempDir {
        let mut dir = TempDir::new(name);
        if dir.1.is_none() {
            dir.1 = Some(postgres::shared().create_database().unwrap());
        }
        dir
    }

    /// The test's database as `--database` takes it: the URL of its PostgreSQL database,
    /// or the path of its SQLite file.
    fn db(&self) -> String {
        match &self.1 {
            Some(database) => postgres::shared().url(database),
            None => self.sqlite(),
        }
    }

    /// The path of a SQLite file in the directory: for the tests of what only SQLite has
    /// (file modes, a full disk, the `--db` flag), whatever the suite's backend.
    fn sqlite(&self) -> String {
        self.0.join("control-plane.db").to_str().unwrap().to_owned()
    }

    /// Every row of every table of the test's database, as text, sorted: to compare a
    /// database before and after, or to search it.
    fn fingerprint(&self) -> Vec<String> {
        if let Some(database) = &self.1 {
            return postgres::shared().dump(database).unwrap();
        }
        let conn = rusqlite::Connection::open(self.sqlite()).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut out = Vec::new();
        for table in &tables {
            let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let mut line = format!("{table}:");
                for i in 0..columns {
                    let cell = match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        other => format!("{other:?}"),
                    };
                    line.push_str(" | ");
                    line.push_str(&cell);
                }
                out.push(line);
            }
        }
        out.sort();
        out
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        if let Some(database) = &self.1 {
            let _ = postgres::shared().drop_database(database);
        }
    }
}

/// The real binary serving on a free loopback port; SIGKILLed on drop.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Serves database `db` (as [`TempDir::db`] gives it) with more flags and variables.
    fn start(db: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", db])
            .args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Server::spawn(cmd)
    }

    /// Runs `cmd`, a `serve` command line, until its `listening on` line.
    fn spawn(mut cmd: Command) -> Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting control-plane");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = Arc::clone(&log);
        // Drains stderr for the server's whole life so that logging never blocks it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("no `listening on` line; stderr: {:?}", log.lock().unwrap());
            }
        };
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn log_lines(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Waits for a log line after the first `from` lines that contains every needle.
    fn wait_for_log(&self, from: usize, needles: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            {
                let log = self.log.lock().unwrap();
                if log
                    .iter()
                    .skip(from)
                    .any(|line| needles.iter().all(|n| line.contains(n)))
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no log line with {needles:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// SIGKILL, no chance to clean up.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `control-plane token create` and returns the token it prints.
fn create_token(db: &str, project: &str) -> String {
    create_token_with_role(db, project, "deploy")
}

/// Runs `control-plane token create --role ROLE` and returns the token it prints.
fn create_token_with_role(db: &str, project: &str, role: &str) -> String {
    let out = Command::new(BIN)
        .args([
            "token",
            "create",
            "--project",
            project,
            "--role",
            role,
            "--database",
            db,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout:?}");
    assert!(lines[0].starts_with("mon_"), "{stdout:?}");
    lines[0].to_owned()
}

/// A client of one project with one token.
struct Api {
    client: Client,
    base: String,
    project: String,
    token: String,
}

impl Api {
    fn new(server: &Server, project: &str, token: &str) -> Api {
        Api {
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: server.base.clone(),
            project: project.to_owned(),
            token: token.to_owned(),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v1/projects/{}{rest}", self.base, self.project)
    }

    fn send(&self, req: reqwest::blocking::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.bearer_auth(&self.token).send().unwrap();
        let status = resp.status();
        let text = resp.text().unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"));
        (status, value)
    }

    fn deploy(&self, bundle: &Value, query: &str) -> (StatusCode, Value) {
        self.deploy_with_git(bundle, None, query)
    }

    fn deploy_with_git(
        &self,
        bundle: &Value,
        git: Option<Value>,
        query: &str,
    ) -> (StatusCode, Value) {
        let mut body = json!({ "bundle": bundle });
        if let Some(git) = git {
            body["git"] = git;
        }
        self.deploy_raw(serde_json::to_vec(&body).unwrap(), None, query)
    }

    fn deploy_raw(
        &self,
        body: Vec<u8>,
        encoding: Option<&str>,
        query: &str,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url(&format!("/deploy{query}")))
            .header("content-type", "application/json")
            .body(body);
        if let Some(enc) = encoding {
            req = req.header("content-encoding", enc);
        }
        self.send(req)
    }

    /// Deploys and expects 200.
    fn ok_deploy(&self, bundle: &Value, query: &str) -> Value {
        let (status, body) = self.deploy(bundle, query);
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn get(&self, rest: &str) -> (StatusCode, Value) {
        self.send(self.client.get(self.url(rest)))
    }

    fn ok_get(&self, rest: &str) -> Value {
        let (status, body) = self.get(rest);
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    fn rollback(&self, n: u64) -> (StatusCode, Value) {
        self.send(self.client.post(self.url(&format!("/rollback/{n}"))))
    }

    fn destroy(&self) -> (StatusCode, Value) {
        self.send(self.client.delete(self.url("")))
    }

    /// The current monitors and the version list: what no failed request may change.
    fn snapshot(&self) -> (Value, Value) {
        (self.ok_get("/monitors"), self.ok_get("/versions"))
    }
}

fn bundle(monitors: Vec<TcpMonitor>) -> Value {
    serde_json::to_value(Bundle::new(monitors)).unwrap()
}

fn cache() -> TcpMonitor {
    TcpMonitor::new("cache", "cache.internal", 6379)
        .name("Redis cache answers PING")
        .description("The session cache.")
        .tag("cache")
        .tag("prod")
        .send("PING\\r\\n")
        .expect("+PONG")
        .thresholds(200, 1000)
}

fn mail() -> TcpMonitor {
    TcpMonitor::new("mail", "mail.internal", 25)
        .starttls(StartTls::Smtp)
        .tls_with(|t| t.expiry_warn_days = 21)
}

fn db() -> TcpMonitor {
    TcpMonitor::new("db", "db.internal", 5432).tag("db")
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect()
}

fn version_numbers(versions: &Value) -> Vec<u64> {
    versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect()
}

fn hash_of(bundle: &Value) -> String {
    let typed: Bundle = serde_json::from_value(bundle.clone()).unwrap();
    MonitorSet::from_bundle(&typed).unwrap().hash()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn deploy_diff_versions_rollback_destroy() {
    let dir = TempDir::new("lifecycle");
    let token = create_token(&dir.db(), "shop");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    let health = reqwest::blocking::get(server.url("/healthz")).unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().unwrap(), "ok");

    // An empty project.
    assert_eq!(
        api.ok_get("/monitors"),
        json!({"schema_version": 1, "monitors": []})
    );
    assert_eq!(api.ok_get("/versions"), json!([]));

    // First deploy creates everything, with git metadata.
    let v1 = bundle(vec![cache(), mail(), db()]);
    let git =
        json!({"commit": "abc123", "branch": "main", "author": "Ada", "message": "add monitors"});
    let (status, first) = api.deploy_with_git(&v1, Some(git.clone()), "");
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        first,
        json!({
            "project": "shop", "dry_run": false, "applied": true, "version": 1,
            "diff": {"created": ["cache", "db", "mail"], "updated": [], "deleted": [], "kept": [], "unchanged": []}
        })
    );
    // What was deployed comes back field for field.
    assert_eq!(api.ok_get("/monitors"), v1);

    // The same bundle again changes nothing and makes no version.
    let again = api.ok_deploy(&v1, "?prune=true");
    assert_eq!(again["applied"], false);
    assert_eq!(again["version"], 1);
    assert_eq!(ids(&again["diff"]["unchanged"]), ["cache", "db", "mail"]);
    assert_eq!(version_numbers(&api.ok_get("/versions")), [1]);

    // A change is an update naming the fields.
    let mut db2 = db().tag("primary");
    db2.target.port = 5433;
    let mut mail2 = mail();
    mail2.tls.expiry_warn_days = 14;
    let v2 = bundle(vec![cache().send("INFO\\r\\n"), mail2, db2.clone()]);
    let second = api.ok_deploy(&v2, "");
    assert_eq!(second["applied"], true);
    assert_eq!(second["version"], 2);
    assert_eq!(
        second["diff"]["updated"],
        json!([
            {"id": "cache", "fields": ["steps"]},
            {"id": "db", "fields": ["tags", "target.port"]},
            {"id": "mail", "fields": ["tls.expiry_warn_days"]},
        ])
    );
    assert_eq!(api.ok_get("/monitors"), v2);

    // A monitor absent from the bundle is kept without prune (nothing changes), deleted
    // with it.
    let v3 = bundle(vec![db2.clone()]);
    let kept = api.ok_deploy(&v3, "");
    assert_eq!(kept["applied"], false);
    assert_eq!(ids(&kept["diff"]["kept"]), ["cache", "mail"]);
    assert_eq!(kept["diff"]["deleted"], json!([]));
    assert_eq!(api.ok_get("/monitors"), v2);
    let pruned = api.ok_deploy(&v3, "?prune=true");
    assert_eq!(pruned["applied"], true);
    assert_eq!(pruned["version"], 3);
    assert_eq!(ids(&pruned["diff"]["deleted"]), ["cache", "mail"]);
    assert_eq!(pruned["diff"]["kept"], json!([]));
    assert_eq!(api.ok_get("/monitors"), v3);

    // A dry run shows the diff and changes nothing.
    let before = api.snapshot();
    let dry = api.ok_deploy(&v1, "?dry_run=true&prune=true");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["applied"], false);
    assert_eq!(dry["version"], 3);
    assert_eq!(ids(&dry["diff"]["created"]), ["cache", "mail"]);
    assert_eq!(dry["diff"]["updated"][0]["id"], "db");
    assert_eq!(api.snapshot(), before);

    // Versions: newest first, hashes of the sets, git as sent.
    let versions = api.ok_get("/versions");
    assert_eq!(version_numbers(&versions), [3, 2, 1]);
    assert_eq!(versions[2]["git"], git);
    assert_eq!(
        versions[1]["git"],
        json!({"commit": null, "branch": null, "author": null, "message": null})
    );
    assert_eq!(versions[2]["hash"], hash_of(&v1));
    assert_eq!(versions[0]["hash"], hash_of(&v3));
    assert_eq!(versions[0]["monitors"], 1);
    assert_eq!(versions[2]["monitors"], 3);
    assert_eq!(versions[0]["rollback_of"], Value::Null);
    assert!(
        time::OffsetDateTime::parse(
            versions[0]["created_at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    let got = api.ok_get("/versions/2");
    assert_eq!(got["info"], versions[1]);
    assert_eq!(got["bundle"], v2);
    let (status, missing) = api.get("/versions/99");
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");

    // Rollback restores the earlier set exactly, as a new version.
    let (status, back) = api.rollback(1);
    assert_eq!(status, StatusCode::OK, "{back}");
    assert_eq!(back["applied"], true);
    assert_eq!(back["version"], 4);
    assert_eq!(ids(&back["diff"]["created"]), ["cache", "mail"]);
    assert_eq!(api.ok_get("/monitors"), v1);
    let versions = api.ok_get("/versions");
    assert_eq!(versions[0]["rollback_of"], 1);
    assert_eq!(versions[0]["hash"], versions[3]["hash"]);
    // Already current: no new version.
    let (status, same) = api.rollback(1);
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(
        (same["applied"].clone(), same["version"].clone()),
        (json!(false), json!(4))
    );
    assert_eq!(version_numbers(&api.ok_get("/versions")), [4, 3, 2, 1]);

    // A gzip body.
    let body = serde_json::to_vec(&json!({"bundle": v2})).unwrap();
    let (status, zipped) = api.deploy_raw(gzip(&body), Some("gzip"), "?prune=true");
    assert_eq!(status, StatusCode::OK, "{zipped}");
    assert_eq!(zipped["version"], 5);
    assert_eq!(api.ok_get("/monitors"), v2);

    // Destroy empties the project; history stays; a later deploy is a new version.
    let (status, destroyed) = api.destroy();
    assert_eq!(status, StatusCode::OK, "{destroyed}");
    assert_eq!(destroyed, json!({"project": "shop", "deleted": 3}));
    assert_eq!(api.ok_get("/monitors")["monitors"], json!([]));
    assert_eq!(version_numbers(&api.ok_get("/versions")), [5, 4, 3, 2, 1]);
    let empty = api.ok_deploy(&bundle(vec![]), "?prune=true");
    assert_eq!(
        (empty["applied"].clone(), empty["version"].clone()),
        (json!(false), Value::Null)
    );
    let redeployed = api.ok_deploy(&v2, "");
    assert_eq!(redeployed["version"], 6);
    assert_eq!(ids(&redeployed["diff"]["created"]), ["cache", "db", "mail"]);
    assert_eq!(api.ok_get("/monitors"), v2);

    // The token never reaches the log.
    let log = server.log();
    assert!(log.contains("deploy"), "{log}");
    assert!(!log.contains(&token), "{log}");
}

/// Asserts an error status and the shape of the error body; returns the body.
fn expect_error((status, body): (StatusCode, Value), expected: StatusCode) -> Value {
    assert_eq!(status, expected, "{body}");
    let message = body["error"].as_str().unwrap_or_else(|| panic!("{body}"));
    assert!(
        message.chars().next().is_some_and(char::is_lowercase),
        "error messages are lower-case: {message:?}"
    );
    assert!(body["problems"].is_array(), "{body}");
    body
}

#[test]
fn every_error_leaves_the_database_unchanged() {
    let dir = TempDir::new("errors");
    let token = create_token(&dir.db(), "shop");
    let other = create_token(&dir.db(), "other");
    let limit = 64 * 1024;
    let server = Server::start(&dir.db(), &["--max-body-bytes", &limit.to_string()], &[]);
    let api = Api::new(&server, "shop", &token);
    api.ok_deploy(&bundle(vec![cache(), db()]), "");
    let before = api.snapshot();
    let unchanged = |what: &str| assert_eq!(api.snapshot(), before, "after {what}");
    // Every error answer is checked, then the database is checked unchanged.
    let check = |response: (StatusCode, Value), expected: StatusCode| {
        let body = expect_error(response, expected);
        unchanged(&format!("{expected}: {body}"));
        body
    };
    let valid = serde_json::to_vec(&json!({"bundle": bundle(vec![mail()])})).unwrap();

    // 400: malformed JSON names line, column and path.
    let broken = b"{\"bundle\": {\n  \"schema_version\": 1,\n  \"monitors\": [,]\n}}".to_vec();
    let body = check(api.deploy_raw(broken, None, ""), StatusCode::BAD_REQUEST);
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("line 3, column"), "{message}");
    assert!(message.contains("bundle.monitors"), "{message}");
    let mut wrong_type = json!({"bundle": bundle(vec![cache(), db()])});
    wrong_type["bundle"]["monitors"][1]["target"]["port"] = json!("5432");
    let text = serde_json::to_string_pretty(&wrong_type).unwrap();
    // A monitor of the wrong shape is one of the bundle's problems (422, all listed),
    // with its path in the bundle and its place in the text.
    let body = check(
        api.deploy_raw(text.into_bytes(), None, ""),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(body["problems"][0]["path"], "monitors[1].target.port");
    let message = body["problems"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("line ") && message.contains("column "),
        "{message}"
    );
    let mut unknown = json!({"bundle": bundle(vec![db()])});
    unknown["bundle"]["monitors"][0]["prot"] = json!(1);
    let body = check(
        api.deploy_raw(serde_json::to_vec(&unknown).unwrap(), None, ""),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(body["problems"][0]["path"], "monitors[0].prot", "{body}");
    assert!(
        body["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `prot`"),
        "{body}"
    );
    check(
        api.deploy_raw(Vec::new(), None, ""),
        StatusCode::BAD_REQUEST,
    );
    check(
        api.deploy_raw(vec![0xff, 0xfe], None, ""),
        StatusCode::BAD_REQUEST,
    );

    // 400: bad query and paths.
    for query in ["?dry_run=yes", "?dryrun=true", "?prune=1"] {
        let body = check(
            api.deploy_raw(valid.clone(), None, query),
            StatusCode::BAD_REQUEST,
        );
        assert!(
            body["error"].as_str().unwrap().starts_with("bad query"),
            "{body}"
        );
    }
    check(api.get("/versions/abc"), StatusCode::BAD_REQUEST);
    check(api.get("/versions/-1"), StatusCode::BAD_REQUEST);
    let bad_project = api.send(
        api.client
            .get(format!("{}/v1/projects/bad%20name/monitors", api.base)),
    );
    check(bad_project, StatusCode::BAD_REQUEST);
    let bad_utf8 = api.send(
        api.client
            .get(format!("{}/v1/projects/%FF/monitors", api.base)),
    );
    check(bad_utf8, StatusCode::BAD_REQUEST);

    // 401: missing, unknown, malformed tokens.
    let no_token = api
        .client
        .post(api.url("/deploy"))
        .body(valid.clone())
        .send()
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(no_token.headers()["www-authenticate"], "Bearer");
    let body: Value = no_token.json().unwrap();
    assert_eq!(body["error"], "missing bearer token");
    let stranger = Api::new(&server, "shop", "mon_0000");
    let body = check(
        stranger.deploy_raw(valid.clone(), None, ""),
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(body["error"], "unknown token");
    check(stranger.get("/monitors"), StatusCode::UNAUTHORIZED);
    let basic = api
        .client
        .get(api.url("/monitors"))
        .header("authorization", "Basic abc")
        .send()
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    unchanged("401s");

    // 403: a token of another project, checked before the body is read (an oversized
    // body still gets 403, not 413).
    let intruder = Api::new(&server, "shop", &other);
    check(
        intruder.deploy_raw(valid.clone(), None, ""),
        StatusCode::FORBIDDEN,
    );
    check(
        intruder.deploy_raw(vec![b' '; limit + 10], None, ""),
        StatusCode::FORBIDDEN,
    );
    check(intruder.get("/monitors"), StatusCode::FORBIDDEN);
    check(intruder.get("/versions/1"), StatusCode::FORBIDDEN);
    check(intruder.rollback(1), StatusCode::FORBIDDEN);
    check(intruder.destroy(), StatusCode::FORBIDDEN);

    // 404: unknown version, rollback target, route; 405: wrong method.
    check(api.get("/versions/99"), StatusCode::NOT_FOUND);
    check(api.rollback(99), StatusCode::NOT_FOUND);
    let nowhere = api.send(api.client.get(format!("{}/v2/nothing", api.base)));
    check(nowhere, StatusCode::NOT_FOUND);
    let wrong_method = api.send(api.client.get(api.url("/deploy")));
    check(wrong_method, StatusCode::METHOD_NOT_ALLOWED);

    // 413: over the limit as sent, and a gzip bomb: small as sent, over the limit decoded.
    let mut big = json!({"bundle": bundle(vec![cache()])});
    big["git"] = json!({"message": "x".repeat(limit)});
    let big = serde_json::to_vec(&big).unwrap();
    check(
        api.deploy_raw(big.clone(), None, ""),
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    let bomb = gzip(&big);
    assert!(bomb.len() < limit / 10);
    check(
        api.deploy_raw(bomb, Some("gzip"), ""),
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    let mut spaces = vec![b' '; 8 * 1024 * 1024];
    spaces.extend_from_slice(&valid);
    let bomb = gzip(&spaces);
    assert!(bomb.len() < limit);
    check(
        api.deploy_raw(bomb, Some("gzip"), ""),
        StatusCode::PAYLOAD_TOO_LARGE,
    );
    check(
        api.deploy_raw(b"not gzip".to_vec(), Some("gzip"), ""),
        StatusCode::BAD_REQUEST,
    );

    // 415: other encodings.
    for encoding in ["br", "deflate", "gzip, br"] {
        check(
            api.deploy_raw(valid.clone(), Some(encoding), ""),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        );
    }

    // 422: every problem with its path inside the bundle.
    let mut invalid = bundle(vec![cache(), db(), mail()]);
    invalid["monitors"][1]["target"]["port"] = json!(0);
    invalid["monitors"][1]["timeouts"]["total_ms"] = json!(0);
    invalid["monitors"][2]["target"]["host"] = json!("bad host!");
    let body = check(api.deploy(&invalid, ""), StatusCode::UNPROCESSABLE_ENTITY);
    let paths: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for expected in [
        "monitors[1].target.port",
        "monitors[1].timeouts.total_ms",
        "monitors[2].target.host",
    ] {
        assert!(
            paths.contains(&expected),
            "{expected} missing from {paths:?}"
        );
    }
    assert!(
        body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["message"].is_string())
    );
    // Even as a dry run.
    check(
        api.deploy(&invalid, "?dry_run=true"),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let duplicate = bundle(vec![db(), db()]);
    let body = check(api.deploy(&duplicate, ""), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["problems"][0]["path"], "monitors[1].id");
    let mut future = bundle(vec![db()]);
    future["schema_version"] = json!(2);
    let body = check(api.deploy(&future, ""), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["problems"][0]["path"], "schema_version");
}

#[test]
fn a_concurrent_deploy_gets_409() {
    // CONTROL_PLANE_TEST_HOLD_LOCK_MS makes every deploy, rollback and destroy hold its
    // project's lock that long before it starts, so two deploys sent 200 ms apart surely
    // overlap: whichever takes the lock first wins, the other gets 409.
    let dir = TempDir::new("conflict");
    let token = create_token(&dir.db(), "shop");
    let other_token = create_token(&dir.db(), "other");
    let server = Server::start(
        &dir.db(),
        &[],
        &[("CONTROL_PLANE_TEST_HOLD_LOCK_MS", "2000")],
    );
    let api = Arc::new(Api::new(&server, "shop", &token));
    let other = Api::new(&server, "other", &other_token);
    let v1 = bundle(vec![cache(), db()]);
    let v2 = bundle(vec![mail()]);

    let started = Instant::now();
    let spawn = |bundle: &Value, query: &'static str| {
        let api = Arc::clone(&api);
        let bundle = bundle.clone();
        std::thread::spawn(move || api.deploy(&bundle, query))
    };
    let first = spawn(&v1, "");
    std::thread::sleep(Duration::from_millis(200));
    let second = spawn(&v2, "?prune=true");
    std::thread::sleep(Duration::from_millis(200));
    // While the lock is held: rollback and destroy are refused too; reads, dry runs and
    // other projects answer.
    assert_eq!(api.rollback(1).0, StatusCode::CONFLICT);
    assert_eq!(api.destroy().0, StatusCode::CONFLICT);
    assert_eq!(api.ok_get("/monitors")["monitors"], json!([]));
    assert_eq!(api.ok_deploy(&v2, "?dry_run=true")["dry_run"], true);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "too slow to overlap"
    );

    let results = [first.join().unwrap(), second.join().unwrap()];
    let statuses: Vec<StatusCode> = results.iter().map(|r| r.0).collect();
    let (winner, loser) = match statuses.as_slice() {
        [StatusCode::OK, StatusCode::CONFLICT] => (&results[0], &results[1]),
        [StatusCode::CONFLICT, StatusCode::OK] => (&results[1], &results[0]),
        _ => panic!("expected one 200 and one 409: {results:?}"),
    };
    let message = loser.1["error"].as_str().unwrap();
    assert!(
        message.contains("shop") && message.contains("running"),
        "{message}"
    );
    assert_eq!(winner.1["applied"], true);
    let expected = if std::ptr::eq(winner, &results[0]) {
        &v1
    } else {
        &v2
    };
    let (monitors, versions) = api.snapshot();
    assert_eq!(&monitors, expected);
    assert_eq!(version_numbers(&versions), [1]);

    // Other projects were never blocked, and once the lock is free the next deploy of this
    // one goes through.
    assert_eq!(other.ok_deploy(&v2, "")["applied"], true);
    let third = bundle(vec![db()]);
    assert_eq!(api.ok_deploy(&third, "?prune=true")["version"], 2);
    assert_eq!(api.ok_get("/monitors"), third);
}

/// Two replicas on one PostgreSQL database: while a deploy in one holds the project's lock
/// (inside its transaction), the other answers 409 as a single process does. Always on
/// PostgreSQL; `cargo xtask test` skips it without the postgresql package.
#[test]
fn postgres_replicas_share_the_deploy_lock() {
    let dir = TempDir::on_postgres("replicas");
    let database = dir.1.clone().unwrap();
    let token = create_token(&dir.db(), "shop");
    let one = Server::start(
        &dir.db(),
        &[],
        &[("CONTROL_PLANE_TEST_HOLD_LOCK_MS", "3000")],
    );
    let two = Server::start(&dir.db(), &[], &[]);
    let first = {
        let api = Api::new(&one, "shop", &token);
        std::thread::spawn(move || api.deploy(&bundle(vec![cache()]), ""))
    };
    let other = Api::new(&two, "shop", &token);
    // Wait until the first replica holds the project's lock.
    let held = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted";
    while postgres::shared().psql(&database, held).unwrap().trim() != "1" {
        assert!(
            !first.is_finished(),
            "the first deploy ended before it was seen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, body) = other.deploy(&bundle(vec![mail()]), "");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"],
        "another deploy, rollback or destroy of project `shop` is running; retry when it is done"
    );
    assert_eq!(other.destroy().0, StatusCode::CONFLICT);
    let (status, body) = first.join().unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    // The other replica reads what the first wrote, and deploys once the lock is free.
    assert_eq!(other.ok_get("/monitors"), bundle(vec![cache()]));
    assert_eq!(
        other.ok_deploy(&bundle(vec![mail()]), "?prune=true")["version"],
        2
    );
    // The log names the database without its password.
    let log = one.log();
    assert!(log.contains("opened the database"), "{log}");
    assert!(log.contains("postgres:***@127.0.0.1"), "{log}");
    assert!(!log.contains(postgres::PASSWORD), "{log}");
}

#[test]
fn tokens_are_stored_hashed() {
    let dir = TempDir::new("tokens");
    let first = create_token(&dir.db(), "shop");
    let second = create_token(&dir.db(), "shop");
    assert_ne!(first, second);
    let bad = Command::new(BIN)
        .args(["token", "create", "--project", "no spaces", "--database"])
        .arg(dir.db())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());

    let rows = dir.fingerprint();
    for table in ["tokens", "schema_migrations"] {
        assert!(
            rows.iter().any(|r| r.starts_with(&format!("{table}:"))
                || r.starts_with(&format!("INSERT INTO public.{table} "))),
            "no row of {table}: {rows:?}"
        );
    }
    for token in [&first, &second] {
        let secret = token.trim_start_matches("mon_");
        assert!(
            rows.iter().all(|c| !c.contains(secret)),
            "the token is stored in clear"
        );
        let hash = control_plane::hash::sha256_hex(token.as_bytes());
        assert!(
            rows.iter().any(|r| r.contains(&hash)),
            "the token's hash is not stored"
        );
    }

    // Both tokens work.
    let server = Server::start(&dir.db(), &[], &[]);
    for token in [&first, &second] {
        assert_eq!(
            Api::new(&server, "shop", token).get("/versions").0,
            StatusCode::OK
        );
    }
}

/// Sends a deploy over a raw socket and returns once the whole request is written.
fn send_deploy(addr: &str, token: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /v1/projects/shop/deploy?prune=true HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream
}

/// The description of the monitors of the large sets, to give them some weight.
const BULK_DESCRIPTION: &str = "One of many: the bulk service answers on its port, checked every ten minutes from every location we run in.";

/// A monitor of the large sets.
fn bulk(id: &str, port: u16) -> TcpMonitor {
    TcpMonitor::new(id, "svc.internal", port)
        .description(BULK_DESCRIPTION)
        .tag("bulk")
}

fn bulk_id(port: u16, i: usize) -> String {
    format!("p{port}-m{i:05}")
}

/// `n` monitors on `port`, with ids naming the port, so each port's set replaces the last.
fn large(n: usize, port: u16) -> Vec<TcpMonitor> {
    (0..n).map(|i| bulk(&bulk_id(port, i), port)).collect()
}

/// The request body of [`large`], written compactly: only the fields that differ from the
/// defaults, which the server fills in.
fn large_body(n: usize, port: u16) -> Vec<u8> {
    let monitors: Vec<String> = (0..n)
        .map(|i| {
            let id = bulk_id(port, i);
            format!(
                r#"{{"schema_version":1,"id":"{id}","name":"{id}","description":"{BULK_DESCRIPTION}","tags":["bulk"],"target":{{"host":"svc.internal","port":{port}}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"bundle":{{"schema_version":1,"monitors":[{}]}}}}"#,
        monitors.join(",")
    )
    .into_bytes()
}

/// The canonical bundle JSON of [`large`]: the exact text `GET monitors` answers, whose
/// SHA-256 is the version hash. Built from one monitor's canonical JSON, as serializing
/// thousands is slow in a debug build.
fn large_canonical(n: usize, port: u16) -> String {
    let one = MonitorSet::from_bundle(&Bundle::new(vec![bulk("@ID@", port)])).unwrap();
    let template = one.get("@ID@").unwrap();
    let mut set = MonitorSet::new();
    for i in 0..n {
        let id = bulk_id(port, i);
        let json = serde_json::value::RawValue::from_string(template.replace("@ID@", &id));
        set.insert(id.clone(), json.unwrap());
    }
    set.bundle_json()
}

fn monitors_text(api: &Api) -> String {
    let resp = api
        .client
        .get(api.url("/monitors"))
        .bearer_auth(&api.token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().unwrap()
}

#[test]
fn a_crash_during_a_large_deploy_keeps_the_old_set_or_the_new_one() {
    const N: usize = 20_000;
    let dir = TempDir::new("crash");
    let token = create_token(&dir.db(), "shop");
    let mut server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &token);
    api.ok_deploy(&bundle(vec![cache(), db()]), "");

    // Two complete large deploys first: the first lands field for field; the second
    // replaces it, and times such a transaction (from the "applying" log line to the
    // answer).
    let body = large_body(N, 1000);
    assert!(body.len() > 2_000_000, "{}", body.len());
    let mut stream = send_deploy(server.addr(), &token, &body);
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{}",
        &response[..response.len().min(300)]
    );
    assert_eq!(api.ok_get("/monitors"), bundle(large(N, 1000)));
    assert_eq!(monitors_text(&api), large_canonical(N, 1000));
    let from = server.log_lines();
    let mut stream = send_deploy(server.addr(), &token, &large_body(N, 1001));
    server.wait_for_log(from, &["applying", "action=deploy"]);
    let applying = Instant::now();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let transaction = applying.elapsed();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "{}",
        &response[..response.len().min(300)]
    );
    let mut current = large_canonical(N, 1001);
    assert_eq!(monitors_text(&api), current);
    let mut versions = 3u64;

    // Then SIGKILL the server at moments spread over such a transaction, restart it on the
    // same file, and check that the set is the old one or the new one, never a mix, and
    // that the versions agree with it.
    let seed = u64::from(applying.elapsed().subsec_nanos());
    let mut outcomes = Vec::new();
    let fractions = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5];
    for (round, fraction) in fractions.into_iter().enumerate() {
        let port = 2000 + round as u16;
        let body = large_body(N, port);
        let wanted = large_canonical(N, port);
        let jitter = (seed.wrapping_mul(round as u64 * 2 + 7) % 50) as f64 / 1000.0;
        let delay = transaction.mul_f64(fraction + jitter);
        let from = server.log_lines();
        let stream = send_deploy(server.addr(), &token, &body);
        server.wait_for_log(from, &["applying", "action=deploy"]);
        std::thread::sleep(delay);
        server.kill();
        drop(stream);

        server = Server::start(&dir.db(), &[], &[]);
        let api = Api::new(&server, "shop", &token);
        let now = monitors_text(&api);
        if now == wanted {
            versions += 1;
            current = wanted;
            outcomes.push("new");
        } else {
            assert!(
                now == current,
                "round {round}: neither the old nor the new set"
            );
            outcomes.push("old");
        }
        let list = api.ok_get("/versions");
        assert_eq!(
            version_numbers(&list),
            (1..=versions).rev().collect::<Vec<_>>(),
            "round {round}"
        );
        assert_eq!(
            list[0]["hash"],
            control_plane::hash::sha256_hex(current.as_bytes()),
            "round {round}"
        );
        assert_eq!(list[0]["monitors"], N, "round {round}");
    }
    // A kill right after the transaction began must have undone it.
    assert_eq!(outcomes[0], "old", "{outcomes:?}");
    server.kill();
    if !on_postgres() {
        let conn = rusqlite::Connection::open(dir.sqlite()).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
}
