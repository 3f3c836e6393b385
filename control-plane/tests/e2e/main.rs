//! End to end: the real `control-plane` binary serving a temporary database (a SQLite file,
//! or a database of a throwaway PostgreSQL server when `CONTROL_PLANE_TEST_DATABASE=postgres`),
//! driven by the
//! real client (`cargo xtask deploy | destroy | rollback`, run through cargo without a
//! terminal), with the monitors read back over the API compared field for field; real
//! `monitors agent` processes in two locations (`agents`); the overview, certificates page,
//! badges and login form (`browser`) and the monitor page (`monitor_page`) in headless
//! Chromium; promtool on the scrapes, and the dashboard and rules against
//! them (`dashboards`); two replicas over one PostgreSQL, agents failing over between them
//! when one is killed (`replicas`); HTTPS with its certificate reloaded on SIGHUP (`tls`);
//! retries in another location (`region`).

mod agents;
mod browser;
mod dashboards;
mod git;
mod maintenance;
mod monitor_page;
mod region;
mod replicas;
mod tls;
mod trigger;
mod workflow;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use monitor_core::Bundle;
use monitor_core::prelude::*;
use serde_json::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_control-plane");

/// The workspace root, where `cargo xtask` runs.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives in the workspace")
        .to_path_buf()
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "control-plane-e2e-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("cannot create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `control-plane serve` on a temporary database, stopped on drop (and its
/// PostgreSQL database dropped).
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
    dir: TempDir,
    /// The PostgreSQL database's name; `None` on SQLite.
    database: Option<String>,
    extra: Vec<String>,
}

/// Whether the suite runs on PostgreSQL (`CONTROL_PLANE_TEST_DATABASE=postgres`) rather
/// than SQLite.
fn on_postgres() -> bool {
    match std::env::var("CONTROL_PLANE_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("CONTROL_PLANE_TEST_DATABASE is sqlite or postgres, not `{other}`"),
    }
}

/// Starts `control-plane serve` on `listen` and waits for its `listening on ADDR` line;
/// returns the process, `http://ADDR` and the log it keeps writing to.
fn spawn_server(db: &str, listen: &str, extra: &[&str]) -> (Child, String, Arc<Mutex<String>>) {
    let mut child = Command::new(SERVER)
        .args(["serve", "--listen", listen, "--database", db])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start control-plane serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        // Reads every line, so the server never blocks on a full pipe.
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("listening on ").nth(1) {
                let _ = tx.send(addr.trim().to_owned());
            }
            let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(addr) => (child, format!("http://{addr}"), log),
        Err(_) => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "control-plane serve printed no `listening on ADDR` ({status:?}); its stderr:\n{}",
                log.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    }
}

impl Server {
    /// Starts a server whose database already holds a token for each of `projects`;
    /// returns it with the tokens, in order.
    fn start(projects: &[&str]) -> (Server, Vec<String>) {
        Self::start_with(projects, &[])
    }

    /// [`Server::start`] with more `serve` arguments (`--agent-timeout 2s`).
    fn start_with(projects: &[&str], extra: &[&str]) -> (Server, Vec<String>) {
        let dir = TempDir::new();
        let database = on_postgres().then(|| {
            monitor_testing::postgres::shared()
                .create_database()
                .expect("cannot create a PostgreSQL database")
        });
        let db = Self::db_of(&dir, database.as_deref());
        let tokens = projects.iter().map(|p| create_token(&db, p)).collect();
        let (child, url, log) = spawn_server(&db, "127.0.0.1:0", extra);
        let server = Server {
            child,
            url,
            log,
            dir,
            database,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        (server, tokens)
    }

    fn db_of(dir: &TempDir, database: Option<&str>) -> String {
        match database {
            Some(name) => monitor_testing::postgres::shared().url(name),
            None => dir.0.join("control-plane.db").display().to_string(),
        }
    }

    /// The database as `--database` takes it: the SQLite file's path or the PostgreSQL
    /// database's URL.
    fn db(&self) -> String {
        Self::db_of(&self.dir, self.database.as_deref())
    }

    /// Kills the server (SIGKILL): nothing answers on its address until [`Server::restart`].
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same address and database.
    fn restart(&mut self) {
        self.kill();
        let addr = self.url.trim_start_matches("http://").to_owned();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let (child, url, log) = spawn_server(&self.db(), &addr, &extra);
        assert_eq!(url, self.url, "restarted on another address");
        self.child = child;
        let mut old = self.log.lock().unwrap_or_else(|e| e.into_inner());
        old.push_str("--- restarted\n");
        old.push_str(&log.lock().unwrap_or_else(|e| e.into_inner()));
        drop(old);
        self.log = log;
    }

    /// What the server wrote on stderr so far.
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A client of `project` on this server, authenticated with `token`.
    fn client(&self, project: &str, token: &str) -> Client<'_> {
        Client {
            server: self,
            project: project.to_owned(),
            token: token.to_owned(),
        }
    }

    /// Writes `bundle` to a file in the server's temporary directory and returns its path.
    fn bundle_file(&self, name: &str, bundle: &Bundle) -> PathBuf {
        let path = self.dir.0.join(format!("{name}.json"));
        std::fs::write(&path, bundle.to_json()).expect("cannot write the bundle");
        path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(database) = &self.database {
            let _ = monitor_testing::postgres::shared().drop_database(database);
        }
    }
}

/// `control-plane token create --project P --database DB`: the token alone on one line.
fn create_token(db: &str, project: &str) -> String {
    create_token_for(db, project, "deploy")
}

/// `control-plane token create --project P --database DB --role ROLE`.
fn create_token_for(db: &str, project: &str, role: &str) -> String {
    let out = Command::new(SERVER)
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
        .stdin(Stdio::null())
        .output()
        .expect("cannot run control-plane token create");
    assert!(
        out.status.success(),
        "token create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("the token is UTF-8");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "token create prints the token alone: {stdout:?}"
    );
    let token = lines[0].trim().to_owned();
    assert!(
        token.len() >= 16,
        "a token that short is guessable: {token:?}"
    );
    token
}

/// `cargo` run from the workspace root without the variables cargo set for this test:
/// build scripts (ring's) watch some of them, so passing them on would make the inner
/// cargo rebuild on every run.
fn cargo() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    // The variables cargo sets for this test: build scripts (ring's) watch some of
    // them, so passing them on would make the inner cargo rebuild on every run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
            || matches!(
                name.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "OUT_DIR"
            )
        {
            command.env_remove(name.as_ref());
        }
    }
    command.current_dir(workspace());
    command
}

/// What a run of the client did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The real client for one project, and the API read back with the same token.
struct Client<'a> {
    server: &'a Server,
    project: String,
    token: String,
}

impl Client<'_> {
    /// Runs `cargo xtask ARGS` from the workspace root, without a terminal, with the
    /// URL, project and token in the environment plus `env`; checks that the token
    /// appears in neither output.
    fn xtask_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = cargo();
        let out: Output = command
            .args(["run", "--quiet", "--package", "xtask", "--"])
            .args(args)
            .current_dir(workspace())
            .env("MONITORS_API_URL", &self.server.url)
            .env("MONITORS_PROJECT", &self.project)
            .env("MONITORS_API_TOKEN", &self.token)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("cannot run cargo xtask");
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(&self.token) && !run.stderr.contains(&self.token),
            "the token leaked into the client's output"
        );
        run
    }

    fn xtask(&self, args: &[&str]) -> Run {
        self.xtask_with(args, &[])
    }

    /// `cargo xtask deploy --bundle FILE EXTRA...` with `bundle` written to a file.
    fn deploy(&self, bundle: &Bundle, extra: &[&str]) -> Run {
        let file = self
            .server
            .bundle_file(&format!("{}-{}", self.project, bundle_hash(bundle)), bundle);
        let mut args = vec!["deploy", "--bundle", file.to_str().expect("UTF-8 path")];
        args.extend_from_slice(extra);
        self.xtask(&args)
    }

    /// `GET /v1/projects/{project}/{tail}` with the token: the status and the JSON.
    fn get(&self, tail: &str) -> (u16, Value) {
        let url = format!("{}/v1/projects/{}/{tail}", self.server.url, self.project);
        let response = reqwest::blocking::Client::new()
            .get(url)
            .bearer_auth(&self.token)
            .send()
            .expect("the control plane answers");
        let status = response.status().as_u16();
        let text = response.text().expect("a body");
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {tail} answered {status} with non-JSON ({e}): {text}"));
        (status, value)
    }

    /// The current monitors, as JSON.
    fn monitors(&self) -> Value {
        let (status, body) = self.get("monitors");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The versions, newest first.
    fn versions(&self) -> Vec<Value> {
        let (status, body) = self.get("versions");
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().expect("an array of versions")
    }

    /// Asserts the project's monitors equal `bundle` field for field.
    fn assert_holds(&self, bundle: &Bundle) {
        assert_eq!(self.monitors(), json_of(bundle));
    }
}

/// A short stable name for a bundle's file.
fn bundle_hash(bundle: &Bundle) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bundle.to_json().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn json_of(bundle: &Bundle) -> Value {
    serde_json::from_str(&bundle.to_json()).expect("a bundle is JSON")
}

/// A monitor of a Redis-like service, distinct per id.
fn redis(id: &str, port: u16) -> TcpMonitor {
    TcpMonitor::new(id, "cache.internal", port)
        .name(format!("{id} answers PING"))
        .tag("cache")
        .send("PING\\r\\n")
        .expect("+PONG")
        .assert(response_time().less_than(ms(100)))
        .thresholds(200, 1000)
}

/// Three monitors: `a`, `b` and `c`.
fn abc() -> Bundle {
    Bundle::new(vec![redis("a", 6379), redis("b", 6380), redis("c", 6381)])
}

fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn first_deploy_creates_all_and_a_redeploy_is_a_noop() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let bundle = abc();

    let first = client.deploy(&bundle, &[]);
    assert_eq!(first.code, Some(0), "{first}");
    for id in ["a", "b", "c"] {
        assert_eq!(
            lines_with(&first.stdout, &format!("+ create  {id}")).len(),
            1,
            "{first}"
        );
    }
    assert!(
        first
            .stdout
            .contains("3 to create, 0 to update, 0 to delete, 0 unchanged"),
        "{first}"
    );
    assert!(
        first
            .stdout
            .contains("deployed version 1 to project `shop`"),
        "{first}"
    );
    client.assert_holds(&bundle);

    let versions = client.versions();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(versions[0]["monitors"], 3);
    // The git metadata of the workspace went along (null where git cannot tell).
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(workspace())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(commit) => {
            assert_eq!(
                versions[0]["git"]["commit"],
                commit.as_str(),
                "{}",
                versions[0]
            );
            assert!(versions[0]["git"]["author"].is_string(), "{}", versions[0]);
            assert!(versions[0]["git"]["message"].is_string(), "{}", versions[0]);
        }
        None => assert!(versions[0]["git"]["commit"].is_null(), "{}", versions[0]),
    }

    let again = client.deploy(&bundle, &[]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(
        again
            .stdout
            .contains("0 to create, 0 to update, 0 to delete, 3 unchanged"),
        "{again}"
    );
    assert!(
        again
            .stdout
            .contains("nothing to deploy: project `shop` already has these monitors (version 1)"),
        "{again}"
    );
    assert_eq!(
        client.versions().len(),
        1,
        "a no-op deploy creates no version"
    );
    client.assert_holds(&bundle);
    assert!(
        !server.log().contains(&tokens[0]),
        "the server logged the token"
    );
}

#[test]
fn a_changed_monitor_is_an_update_naming_the_field() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let deployed = client.deploy(&abc(), &[]);
    assert_eq!(deployed.code, Some(0), "{deployed}");

    let changed = Bundle::new(vec![
        redis("a", 6379),
        redis("b", 7000),
        redis("c", 6381).frequency(Frequency::M1),
    ]);
    let run = client.deploy(&changed, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let b = lines_with(&run.stdout, "~ update  b");
    assert_eq!(b.len(), 1, "{run}");
    assert!(b[0].contains("target.port"), "{run}");
    let c = lines_with(&run.stdout, "~ update  c");
    assert_eq!(c.len(), 1, "{run}");
    assert!(c[0].contains("frequency"), "{run}");
    assert!(lines_with(&run.stdout, "update  a").is_empty(), "{run}");
    assert!(
        run.stdout
            .contains("0 to create, 2 to update, 0 to delete, 1 unchanged"),
        "{run}"
    );
    assert!(run.stdout.contains("deployed version 2"), "{run}");
    client.assert_holds(&changed);
    assert_eq!(client.versions().len(), 2);
}

#[test]
fn deletions_need_force_without_a_terminal() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let all = abc();
    assert_eq!(client.deploy(&all, &[]).code, Some(0));

    let fewer = Bundle::new(vec![redis("a", 6379), redis("c", 6381)]);
    let refused = client.deploy(&fewer, &[]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(refused.stdout.contains("- delete  b"), "{refused}");
    assert!(
        refused.stderr.contains("would delete 1 monitor (b)"),
        "{refused}"
    );
    assert!(refused.stderr.contains("--force"), "{refused}");
    client.assert_holds(&all);
    assert_eq!(
        client.versions().len(),
        1,
        "a refused deploy stores nothing"
    );

    let forced = client.deploy(&fewer, &["--force"]);
    assert_eq!(forced.code, Some(0), "{forced}");
    assert!(forced.stdout.contains("- delete  b"), "{forced}");
    assert!(forced.stdout.contains("deployed version 2"), "{forced}");
    assert!(
        forced
            .stdout
            .contains("0 created, 0 updated, 1 deleted, 2 unchanged"),
        "{forced}"
    );
    client.assert_holds(&fewer);
}

#[test]
fn preview_changes_nothing() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);

    // On an empty project.
    let first = client.deploy(&abc(), &["--preview"]);
    assert_eq!(first.code, Some(0), "{first}");
    assert!(first.stdout.contains("3 to create"), "{first}");
    assert!(
        first.stdout.contains("preview only: nothing was applied"),
        "{first}"
    );
    assert!(client.versions().is_empty());
    assert_eq!(client.monitors()["monitors"], serde_json::json!([]));

    // With creations, updates and deletions pending (deletions need no --force to preview).
    assert_eq!(client.deploy(&abc(), &[]).code, Some(0));
    let next = Bundle::new(vec![redis("a", 6390), redis("d", 6382)]);
    let preview = client.deploy(&next, &["--preview"]);
    assert_eq!(preview.code, Some(0), "{preview}");
    assert!(preview.stdout.contains("+ create  d"), "{preview}");
    assert!(preview.stdout.contains("~ update  a"), "{preview}");
    assert!(preview.stdout.contains("- delete  b"), "{preview}");
    assert!(preview.stdout.contains("- delete  c"), "{preview}");
    assert!(
        preview
            .stdout
            .contains("1 to create, 1 to update, 2 to delete, 0 unchanged"),
        "{preview}"
    );
    client.assert_holds(&abc());
    assert_eq!(client.versions().len(), 1);
}

#[test]
fn rollback_restores_an_earlier_set_exactly() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let v1 = abc();
    let v2 = Bundle::new(vec![redis("a", 7000), redis("d", 6382)]);
    assert_eq!(client.deploy(&v1, &[]).code, Some(0));
    let second = client.deploy(&v2, &["--force"]);
    assert_eq!(second.code, Some(0), "{second}");
    client.assert_holds(&v2);

    let back = client.xtask(&["rollback", "1"]);
    assert_eq!(back.code, Some(0), "{back}");
    assert!(back.stdout.contains("~ updated a"), "{back}");
    assert!(back.stdout.contains("+ created b"), "{back}");
    assert!(back.stdout.contains("- deleted d"), "{back}");
    assert!(
        back.stdout
            .contains("version 3 is now current, with the monitors of version 1"),
        "{back}"
    );
    client.assert_holds(&v1);
    let versions = client.versions();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["version"], 3);
    assert_eq!(versions[0]["rollback_of"], 1);
    assert_eq!(
        versions[0]["hash"], versions[2]["hash"],
        "the same set, the same hash"
    );

    let again = client.xtask(&["rollback", "1"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("nothing changed"), "{again}");
    assert_eq!(client.versions().len(), 3);

    let unknown = client.xtask(&["rollback", "99"]);
    assert_eq!(unknown.code, Some(1), "{unknown}");
    assert!(
        unknown.stderr.contains("project `shop` has no version 99"),
        "{unknown}"
    );
    client.assert_holds(&v1);

    let usage = client.xtask(&["rollback", "latest"]);
    assert_eq!(usage.code, Some(2), "{usage}");
}

#[test]
fn destroy_empties_the_project_only_with_force() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let bundle = abc();
    assert_eq!(client.deploy(&bundle, &[]).code, Some(0));

    let refused = client.xtask(&["destroy"]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert!(refused.stderr.contains("--force"), "{refused}");
    client.assert_holds(&bundle);

    let destroyed = client.xtask(&["destroy", "--force"]);
    assert_eq!(destroyed.code, Some(0), "{destroyed}");
    assert!(
        destroyed
            .stdout
            .contains("removed 3 monitors from project `shop`"),
        "{destroyed}"
    );
    assert_eq!(client.monitors()["monitors"], serde_json::json!([]));
    assert_eq!(client.versions().len(), 1, "the history stays");

    // A later deploy starts over: everything is created again.
    let redeploy = client.deploy(&bundle, &[]);
    assert_eq!(redeploy.code, Some(0), "{redeploy}");
    assert!(redeploy.stdout.contains("3 to create"), "{redeploy}");
    client.assert_holds(&bundle);
}

#[test]
fn the_workspaces_monitors_deploy_equal_to_their_export() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);

    let deployed = client.xtask(&["deploy"]);
    assert_eq!(deployed.code, Some(0), "{deployed}");
    assert!(deployed.stderr.contains("monitors valid"), "{deployed}");
    assert!(deployed.stdout.contains("deployed version 1"), "{deployed}");

    // `monitors export` of the binary the deploy built (run directly, not rebuilt).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    let binary = workspace()
        .join(target)
        .join("debug")
        .join(format!("monitors{}", std::env::consts::EXE_SUFFIX));
    let export = Command::new(&binary)
        .arg("export")
        .current_dir(workspace())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    assert!(export.status.success(), "{export:?}");
    let text = String::from_utf8(export.stdout).expect("export writes UTF-8");
    let exported: Value = serde_json::from_str(&text).expect("export writes JSON");
    assert!(
        exported["monitors"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{exported}"
    );
    assert_eq!(client.monitors(), exported);

    // Deploying the export again changes nothing.
    let file = server.dir.0.join("export.json");
    std::fs::write(&file, &text).expect("write");
    let again = client.xtask(&["deploy", "--bundle", file.to_str().expect("UTF-8")]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("nothing to deploy"), "{again}");
    assert_eq!(client.versions().len(), 1);
}

#[test]
fn invalid_monitors_exit_2_naming_file_and_line_and_send_nothing() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let run = client.xtask_with(&["deploy"], &[("REDIS_ADDR", "no-port")]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("declared at monitors/src/services.rs:"),
        "{run}"
    );
    assert!(run.stderr.contains("nothing was sent"), "{run}");
    assert!(client.versions().is_empty());
}

#[test]
fn refusals_exit_1_with_what_to_do() {
    let (server, tokens) = Server::start(&["shop", "other"]);
    let client = server.client("shop", &tokens[0]);

    // 422: every problem with its path.
    let mut bad = serde_json::to_value(abc()).expect("JSON");
    bad["monitors"][0]["target"]["port"] = 0.into();
    bad["monitors"][2]["degraded_response_time_ms"] = 9000.into();
    let file = server.dir.0.join("bad.json");
    std::fs::write(&file, bad.to_string()).expect("write");
    let invalid = client.xtask(&["deploy", "--bundle", file.to_str().expect("UTF-8")]);
    assert_eq!(invalid.code, Some(1), "{invalid}");
    assert!(
        invalid.stderr.contains("rejected the bundle (422"),
        "{invalid}"
    );
    assert!(
        invalid.stderr.contains("monitors[0].target.port"),
        "{invalid}"
    );
    assert!(
        invalid
            .stderr
            .contains("monitors[2].degraded_response_time_ms"),
        "{invalid}"
    );
    assert!(client.versions().is_empty());

    // A bundle that is not JSON is a local problem.
    let garbage = server.dir.0.join("garbage.json");
    std::fs::write(&garbage, "{\"monitors\": [").expect("write");
    let local = client.xtask(&["deploy", "--bundle", garbage.to_str().expect("UTF-8")]);
    assert_eq!(local.code, Some(2), "{local}");
    assert!(local.stderr.contains("is not JSON"), "{local}");

    // 401: an unknown token, not shown.
    let forged = server.client("shop", "forged-token-0123456789abcdef");
    let unknown = forged.deploy(&abc(), &[]);
    assert_eq!(unknown.code, Some(1), "{unknown}");
    assert!(
        unknown.stderr.contains("refused the token (401"),
        "{unknown}"
    );

    // 403: the token of another project.
    let wrong = server.client("shop", &tokens[1]);
    let forbidden = wrong.deploy(&abc(), &[]);
    assert_eq!(forbidden.code, Some(1), "{forbidden}");
    assert!(
        forbidden.stderr.contains("for another project, not `shop`"),
        "{forbidden}"
    );
    assert!(client.versions().is_empty());

    // No token at all: a local problem, said before anything is sent.
    let missing = client.xtask_with(&["deploy", "--preview"], &[("MONITORS_API_TOKEN", "")]);
    assert_eq!(missing.code, Some(2), "{missing}");
    assert!(
        missing.stderr.contains("MONITORS_API_TOKEN is not set"),
        "{missing}"
    );

    let log = server.log();
    for token in &tokens {
        assert!(!log.contains(token.as_str()), "the server logged a token");
    }
}

#[test]
fn large_bundles_go_gzipped_and_arrive_whole() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    let bundle = Bundle::new(
        (0..400)
            .map(|i| {
                redis(&format!("cache-{i:03}"), 6000 + i)
                    .description(format!("shard {i} of the session cache"))
            })
            .collect(),
    );
    assert!(
        bundle.to_json().len() > 256 * 1024,
        "big enough to be compressed"
    );
    let run = client.deploy(&bundle, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("400 to create"), "{run}");
    client.assert_holds(&bundle);
}
