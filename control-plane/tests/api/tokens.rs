//! Tokens and who holds what (issue 14, findings 2 and 8): `token list` and `token revoke`,
//! the `read` role, agent ids bound to the token that used them first, and the database
//! file readable by its owner only.

use std::os::unix::fs::PermissionsExt;

use super::agents::{Agent, assigned_ids, now};
use super::*;

/// Runs `control-plane token ARGS --database DB`; (success, stdout, stderr).
fn token_command(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .arg("token")
        .args(args)
        .arg("--database")
        .arg(db)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The line of `token list` for `token`, found by its id: the first 12 hex digits of its
/// hash.
fn listed(db: &str, token: &str) -> String {
    let (ok, out, err) = token_command(db, &["list"]);
    assert!(ok, "{err}");
    let id = &control_plane::hash::sha256_hex(token.as_bytes())[..12];
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with(id)).collect();
    assert_eq!(lines.len(), 1, "{out}");
    lines[0].to_owned()
}

#[test]
fn tokens_are_listed_without_secrets_and_revoked_at_once() {
    let dir = TempDir::new("token-list");
    let deploy = create_token(&dir.db(), "shop");
    let a = create_token_with_role(&dir.db(), "shop", "agent");
    let b = create_token_with_role(&dir.db(), "shop", "agent");
    let read = create_token_with_role(&dir.db(), "shop", "read");
    let server = Server::start(&dir.db(), &[], &[]);
    Api::new(&server, "shop", &deploy).ok_deploy(&bundle(vec![cache(), db()]), "");
    let agent_a = Agent::new(&server, &a, "a1", "eu");
    assert_eq!(assigned_ids(&agent_a.assignment()), ["cache", "db"]);

    // One line per token: id, project, role, created, last used, agent ids; no secret.
    let (ok, out, _) = token_command(&dir.db(), &["list"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 4, "{out}");
    for token in [&deploy, &a, &b, &read] {
        assert!(!out.contains(token.trim_start_matches("mon_")), "{out}");
        let hash = control_plane::hash::sha256_hex(token.as_bytes());
        assert!(!out.contains(&hash), "the whole hash is listed: {out}");
    }
    let line = listed(&dir.db(), &a);
    for part in ["project=shop", "role=agent", "created=", "agents=a1"] {
        assert!(line.contains(part), "{line}");
    }
    assert!(listed(&dir.db(), &read).contains("role=read"));
    assert!(listed(&dir.db(), &b).contains("last_used=never  agents=-"));
    // The use is recorded in the background, at most once a minute.
    let deadline = Instant::now() + Duration::from_secs(20);
    while listed(&dir.db(), &a).contains("last_used=never") {
        assert!(Instant::now() < deadline, "{}", listed(&dir.db(), &a));
        std::thread::sleep(Duration::from_millis(50));
    }

    // Revoked by its id: refused at once, and its agent ids are released.
    let id = &control_plane::hash::sha256_hex(a.as_bytes())[..12];
    let (ok, out, err) = token_command(&dir.db(), &["revoke", id]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked token") && out.contains(id), "{out}");
    assert_eq!(agent_a.poll(None, 0).status(), StatusCode::UNAUTHORIZED);
    assert_eq!(agent_a.post(&[]).0, StatusCode::UNAUTHORIZED);
    let (_, out, _) = token_command(&dir.db(), &["list"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let taken_over = Agent::new(&server, &b, "a1", "eu");
    assert_eq!(taken_over.poll(None, 0).status(), StatusCode::OK);

    // Unknown or malformed ids change nothing.
    for bad in [id, "0123", "zzzzzzzzzzzz"] {
        let (ok, out, err) = token_command(&dir.db(), &["revoke", bad]);
        assert!(!ok, "{out}");
        assert!(err.contains("no token has the id"), "{err}");
    }
    let (_, out, _) = token_command(&dir.db(), &["list"]);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn an_agent_id_belongs_to_the_token_that_used_it_first() {
    let dir = TempDir::new("agent-ids");
    let deploy = create_token(&dir.db(), "shop");
    let a = create_token_with_role(&dir.db(), "shop", "agent");
    let b = create_token_with_role(&dir.db(), "shop", "agent");
    let elsewhere = create_token_with_role(&dir.db(), "other", "agent");
    let server = Server::start(&dir.db(), &[], &[]);
    Api::new(&server, "shop", &deploy).ok_deploy(&bundle(vec![cache(), db()]), "");
    let mine = Agent::new(&server, &a, "edge-1", "eu");
    assert_eq!(assigned_ids(&mine.assignment()), ["cache", "db"]);

    // Token B may neither poll nor post as edge-1, and takes none of its work.
    let thief = Agent::new(&server, &b, "edge-1", "eu");
    let refused = thief.poll(None, 0);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body: Value = refused.json().unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("`edge-1` belongs to another token"),
        "{message}"
    );
    let (status, body) = thief.post(&[thief.result("cache", 1, "failed", now())]);
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let api = Api::new(&server, "shop", &deploy);
    assert_eq!(api.ok_get("/monitors/cache/results")["results"], json!([]));
    assert_eq!(assigned_ids(&mine.assignment()), ["cache", "db"]);
    assert_eq!(mine.assignment()["agents_in_location"], 1);
    // Token A keeps using it, posting included; ids are per project.
    mine.ok_post(&[mine.result("cache", 1, "passed", now())], 1, 0);
    let other = Agent::new(&server, &elsewhere, "edge-1", "eu");
    assert_eq!(other.poll(None, 0).status(), StatusCode::OK);
    // The binding is stored: it holds after a restart.
    drop(server);
    let server = Server::start(&dir.db(), &[], &[]);
    let thief = Agent::new(&server, &b, "edge-1", "eu");
    assert_eq!(thief.poll(None, 0).status(), StatusCode::FORBIDDEN);
    let mine = Agent::new(&server, &a, "edge-1", "eu");
    assert_eq!(mine.poll(None, 0).status(), StatusCode::OK);
}

#[test]
fn agent_ids_unused_for_the_ttl_are_released() {
    let dir = TempDir::new("agent-ttl");
    let a = create_token_with_role(&dir.db(), "shop", "agent");
    let b = create_token_with_role(&dir.db(), "shop", "agent");
    let server = Server::start(
        &dir.db(),
        &["--agent-id-ttl", "1s", "--max-agents-per-token", "2"],
        &[],
    );
    for id in ["x1", "x2"] {
        assert_eq!(
            Agent::new(&server, &a, id, "eu").poll(None, 0).status(),
            StatusCode::OK
        );
    }
    // A third id is over the limit, and the answer names the flag.
    let third = Agent::new(&server, &a, "x3", "eu").poll(None, 0);
    assert_eq!(third.status(), StatusCode::FORBIDDEN);
    let body: Value = third.json().unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("--max-agents-per-token"),
        "{body}"
    );
    assert_eq!(
        Agent::new(&server, &b, "x1", "eu").poll(None, 0).status(),
        StatusCode::FORBIDDEN
    );
    // Once unused for the TTL, the ids are free for any token.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        Agent::new(&server, &b, "x1", "eu").poll(None, 0).status(),
        StatusCode::OK
    );
    assert_eq!(
        Agent::new(&server, &a, "x3", "eu").poll(None, 0).status(),
        StatusCode::OK
    );
}

#[test]
fn a_read_token_reads_the_project_and_nothing_else() {
    let dir = TempDir::new("read-role");
    let deploy = create_token(&dir.db(), "shop");
    let read = create_token_with_role(&dir.db(), "shop", "read");
    let server = Server::start(&dir.db(), &[], &[]);
    let api = Api::new(&server, "shop", &deploy);
    api.ok_deploy(&bundle(vec![cache(), db()]), "");
    let before = api.snapshot();

    let reader = Api::new(&server, "shop", &read);
    assert_eq!(reader.ok_get("/monitors"), before.0);
    assert_eq!(reader.ok_get("/versions"), before.1);
    assert_eq!(reader.ok_get("/versions/1")["info"]["version"], 1);
    assert_eq!(reader.ok_get("/status")["monitors"][0]["id"], "cache");
    assert_eq!(reader.ok_get("/monitors/cache/results")["monitor"], "cache");

    let refusals = [
        reader.deploy(&bundle(vec![mail()]), "?prune=true"),
        reader.deploy(&bundle(vec![mail()]), "?dry_run=true"),
        reader.rollback(1),
        reader.destroy(),
    ];
    for refusal in refusals {
        let body = expect_error(refusal, StatusCode::FORBIDDEN);
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("a read token only reads"), "{message}");
    }
    let agent = Agent::new(&server, &read, "r1", "eu");
    let poll = agent.poll(None, 0);
    assert_eq!(poll.status(), StatusCode::FORBIDDEN);
    let (status, body) = agent.post(&[]);
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"].as_str().unwrap().contains("a read token"),
        "{body}"
    );
    // Its own project only.
    let (status, _) = Api::new(&server, "other", &read).get("/status");
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(api.snapshot(), before);
}

#[test]
fn the_database_and_its_journal_are_readable_by_their_owner_only() {
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = TempDir::new("db-mode");
    let token = create_token(&dir.sqlite(), "shop");
    assert_eq!(mode(dir.sqlite().as_ref()), 0o600);
    let server = Server::start(&dir.sqlite(), &[], &[]);
    Api::new(&server, "shop", &token).ok_deploy(&bundle(vec![cache()]), "");
    for suffix in ["-wal", "-shm"] {
        let mut side = std::ffi::OsString::from(dir.sqlite());
        side.push(suffix);
        let side = PathBuf::from(side);
        assert!(side.exists(), "{}", side.display());
        assert_eq!(mode(&side), 0o600, "{}", side.display());
    }
    drop(server);
    // A database an older build left readable by others is made private when opened.
    std::fs::set_permissions(dir.sqlite(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = token_command(&dir.sqlite(), &["list"]);
    assert!(ok, "{err}");
    assert_eq!(mode(dir.sqlite().as_ref()), 0o600);
}
