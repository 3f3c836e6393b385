//! Unit tests of the deploy client's parts that need no control plane: arguments,
//! configuration, the token's hygiene, compression, error messages and diffs.

use std::io::Read;
use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::json;

use super::api::{Action, Api, Body, GZIP_ABOVE, describe};
use super::config::{self, Args, FileConfig, Target, Token};
use super::diff::DiffText;
use monitor_spec::api::{DeployResponse, Diff};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "xtask-deploy-{}-{name}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn parses_each_commands_flags() {
    let a = config::parse_args(
        "deploy",
        &args(&[
            "--preview",
            "--force",
            "--bundle",
            "b.json",
            "--url=http://x",
            "--project",
            "shop",
        ]),
    )
    .unwrap();
    assert_eq!(
        a,
        Args {
            preview: true,
            force: true,
            bundle: Some(PathBuf::from("b.json")),
            url: Some("http://x".into()),
            project: Some("shop".into()),
            ..Args::default()
        }
    );
    let j = config::parse_args("deploy", &args(&["--preview", "--format", "json"])).unwrap();
    assert_eq!(j.format, config::Format::Json);
    let v = config::parse_args("versions", &args(&["show", "4", "--format=json"])).unwrap();
    assert_eq!(v.positional, vec!["show".to_owned(), "4".to_owned()]);
    assert_eq!(v.format, config::Format::Json);
    assert!(config::parse_args("versions", &args(&["--force"])).is_err());
    assert!(config::parse_args("deploy", &args(&["--format", "yaml"])).is_err());
    let r = config::parse_args("rollback", &args(&["3", "--project", "p"])).unwrap();
    assert_eq!(r.positional, vec!["3".to_owned()]);
    assert!(
        config::parse_args("destroy", &args(&["--force"]))
            .unwrap()
            .force
    );
}

#[test]
fn rejects_flags_of_other_commands_and_missing_values() {
    let e = config::parse_args("rollback", &args(&["1", "--force"])).unwrap_err();
    assert!(
        e.to_string().contains("`rollback` does not take `--force`"),
        "{e}"
    );
    let e = config::parse_args("destroy", &args(&["--preview"])).unwrap_err();
    assert!(e.to_string().contains("does not take `--preview`"), "{e}");
    let e = config::parse_args("deploy", &args(&["--bundle"])).unwrap_err();
    assert!(e.to_string().contains("`--bundle` needs a value"), "{e}");
    let e = config::parse_args("deploy", &args(&["--url="])).unwrap_err();
    assert!(e.to_string().contains("`--url` needs a value"), "{e}");
    let e = config::parse_args("deploy", &args(&["--force=yes"])).unwrap_err();
    assert!(e.to_string().contains("takes no value"), "{e}");
    let e = config::parse_args("deploy", &args(&["--quux"])).unwrap_err();
    assert!(e.to_string().contains("`--quux`"), "{e}");
    assert!(!e.to_string().contains("tip:"), "nothing close: {e}");
    let e = config::parse_args("destroy", &args(&["--forse"])).unwrap_err();
    assert!(
        e.to_string().ends_with(
            "`destroy` does not take `--forse`\n\n  tip: a similar flag exists: `--force`"
        ),
        "{e}"
    );
}

#[test]
fn reads_the_deploy_file() {
    let text =
        "# where deploys go\n\nurl = \"https://cp.example.com\"  # production\nproject = 'shop'\n";
    assert_eq!(
        config::parse_file("monitors.deploy.toml", text).unwrap(),
        FileConfig {
            url: Some("https://cp.example.com".into()),
            project: Some("shop".into()),
        }
    );
}

#[test]
fn deploy_file_errors_name_the_line_and_never_echo_a_token() {
    let e = config::parse_file("f", "url = \"x\"\ncolour = \"red\"\n").unwrap_err();
    assert!(
        e.to_string().starts_with("f:2: unknown key `colour`"),
        "{e}"
    );
    let e = config::parse_file("f", "token = \"s3cr3t-value\"\n").unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("MONITORS_API_TOKEN"), "{text}");
    assert!(!text.contains("s3cr3t-value"), "{text}");
    let e = config::parse_file("f", "url = https://x\n").unwrap_err();
    assert!(e.to_string().contains("quoted string"), "{e}");
    let e = config::parse_file("f", "url = \"https://x\n").unwrap_err();
    assert!(e.to_string().contains("no closing quote"), "{e}");
    let e = config::parse_file("f", "url = \"a\"\nurl = \"b\"\n").unwrap_err();
    assert!(e.to_string().contains("f:2: `url` is set twice"), "{e}");
    let e = config::parse_file("f", "just words\n").unwrap_err();
    assert!(e.to_string().contains("f:1: expected"), "{e}");
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = TempDir::new("resolve");
    std::fs::write(
        dir.0.join(config::CONFIG_FILE),
        "url = \"http://file.example:1\"\nproject = \"from-file\"\n",
    )
    .unwrap();
    let none = env_of(&[]);
    let t = config::resolve(&Args::default(), &none, &dir.0).unwrap();
    assert_eq!(t.url.as_str(), "http://file.example:1/");
    assert_eq!(t.project, "from-file");

    let env = env_of(&[
        ("MONITORS_API_URL", "http://env.example:2"),
        ("MONITORS_PROJECT", "from-env"),
    ]);
    let t = config::resolve(&Args::default(), &env, &dir.0).unwrap();
    assert_eq!(
        (t.url.as_str(), t.project.as_str()),
        ("http://env.example:2/", "from-env")
    );

    let flags = Args {
        url: Some("https://flag.example".into()),
        project: Some("from-flag".into()),
        ..Args::default()
    };
    let t = config::resolve(&flags, &env, &dir.0).unwrap();
    assert_eq!(
        (t.url.as_str(), t.project.as_str()),
        ("https://flag.example/", "from-flag")
    );

    // Mixed: the URL from the environment, the project from the file.
    let only_url = env_of(&[("MONITORS_API_URL", "http://env.example:2")]);
    let t = config::resolve(&Args::default(), &only_url, &dir.0).unwrap();
    assert_eq!(
        (t.url.as_str(), t.project.as_str()),
        ("http://env.example:2/", "from-file")
    );
}

#[test]
fn missing_or_bad_settings_say_where_to_put_them() {
    let dir = TempDir::new("missing");
    let e = config::resolve(&Args::default(), &env_of(&[]), &dir.0).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("--url")
            && text.contains("MONITORS_API_URL")
            && text.contains("monitors.deploy.toml"),
        "{text}"
    );
    let e = config::resolve(
        &Args::default(),
        &env_of(&[("MONITORS_API_URL", "http://x")]),
        &dir.0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("MONITORS_PROJECT"), "{e}");
    for bad in [
        "ftp://x",
        "localhost:8080",
        "http://user:pw@x",
        "http://x/?a=b",
    ] {
        let a = Args {
            url: Some(bad.into()),
            project: Some("p".into()),
            ..Args::default()
        };
        let e = config::resolve(&a, &env_of(&[]), &dir.0).unwrap_err();
        assert!(!format!("{e:#}").contains("pw@"), "{e:#}");
    }
}

#[test]
fn the_token_stays_hidden() {
    let e = Token::from_env(&env_of(&[("MONITORS_API_TOKEN", "  ")])).unwrap_err();
    assert!(
        e.to_string().contains("MONITORS_API_TOKEN is not set"),
        "{e}"
    );
    let token = Token::from_env(&env_of(&[("MONITORS_API_TOKEN", "tok-123456\n")])).unwrap();
    assert!(!format!("{token:?}").contains("tok-123456"));
    let header = token.header().unwrap();
    assert!(header.is_sensitive());
    assert_eq!(header.to_str().unwrap(), "Bearer tok-123456");
    assert!(!format!("{header:?}").contains("tok-123456"));
    assert_eq!(
        token.redact("sent tok-123456 twice: tok-123456"),
        "sent <redacted> twice: <redacted>"
    );
    let bad = Token::from_env(&env_of(&[("MONITORS_API_TOKEN", "tok\u{7f}secret")])).unwrap();
    let e = bad.header().unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[test]
fn large_bodies_are_gzipped() {
    let small = Body::new(b"{\"a\":1}".to_vec()).unwrap();
    assert!(!small.gzip);
    assert_eq!(small.bytes, b"{\"a\":1}");
    let json = format!("{{\"pad\":\"{}\"}}", "x".repeat(GZIP_ABOVE)).into_bytes();
    let large = Body::new(json.clone()).unwrap();
    assert!(large.gzip);
    assert_eq!(large.plain_len, json.len());
    assert!(large.bytes.len() < json.len() / 10);
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(large.bytes.as_slice())
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, json);
}

#[test]
fn urls_encode_the_project_and_keep_a_path_prefix() {
    let token = Token::from_env(&env_of(&[("MONITORS_API_TOKEN", "abcdefgh")])).unwrap();
    let api = Api::new(
        Target {
            url: "https://cp.example.com/api/".parse().unwrap(),
            project: "team a/b".into(),
        },
        &token,
    )
    .unwrap();
    assert_eq!(
        api.url(&["rollback", "3"]).as_str(),
        "https://cp.example.com/api/v1/projects/team%20a%2Fb/rollback/3"
    );
    assert_eq!(api.base(), "https://cp.example.com/api");
}

#[test]
fn invalid_bundles_list_every_problem_with_its_path() {
    let body = json!({"error": "invalid bundle", "problems": [
        {"path": "monitors[0].target.port", "message": "must be 1-65535"},
        {"path": "monitors[2].frequency", "message": "unknown frequency `7s`"},
    ]})
    .to_string();
    let e = describe(
        StatusCode::UNPROCESSABLE_ENTITY,
        &body,
        Action::Preview,
        "shop",
        None,
    );
    let text = e.to_string();
    assert!(
        text.contains("rejected the bundle (422: invalid bundle); 2 problems:"),
        "{text}"
    );
    assert!(
        text.contains("\n  monitors[0].target.port: must be 1-65535"),
        "{text}"
    );
    assert!(
        text.contains("\n  monitors[2].frequency: unknown frequency `7s`"),
        "{text}"
    );
}

#[test]
fn auth_and_conflict_errors_say_what_to_do() {
    let err = |status: u16, action| {
        describe(
            StatusCode::from_u16(status).unwrap(),
            r#"{"error": "nope", "problems": []}"#,
            action,
            "shop",
            None,
        )
        .to_string()
    };
    let e = err(401, Action::Deploy);
    assert!(
        e.contains("MONITORS_API_TOKEN is missing, mistyped or unknown"),
        "{e}"
    );
    assert!(e.contains("token create --project shop"), "{e}");
    let e = err(403, Action::Deploy);
    assert!(e.contains("another project, not `shop`"), "{e}");
    let e = err(409, Action::Deploy);
    assert!(
        e.contains("another deploy to project `shop` is running") && e.contains("retry"),
        "{e}"
    );
    let e = err(404, Action::Rollback(7));
    assert!(e.contains("project `shop` has no version 7"), "{e}");
    let e = err(500, Action::Destroy);
    assert!(e.contains("failed during the destroy (500: nope)"), "{e}");
    // Not JSON: an excerpt of the body, on one line.
    let e = describe(
        StatusCode::BAD_GATEWAY,
        "<html>\n<b>bad gateway</b></html>",
        Action::Deploy,
        "shop",
        None,
    )
    .to_string();
    assert!(e.contains("(502: <html> <b>bad gateway</b></html>)"), "{e}");
}

#[test]
fn diffs_read_and_render() {
    let v = json!({
        "project": "shop", "dry_run": true, "applied": false, "version": 2,
        "diff": {
            "created": ["new"],
            "updated": [{"id": "smtp", "fields": ["target.port", "tls.expiry_warn_days"]}],
            "deleted": ["old"],
            "kept": [],
            "unchanged": ["a", "b", "c"]
        }
    });
    let r: DeployResponse = serde_json::from_value(v).unwrap();
    assert_eq!(r.version, Some(2));
    assert!(!r.applied);
    assert!(!r.diff.is_noop());
    let text = r.diff.render(false);
    assert!(text.contains("+ create  new\n"), "{text}");
    assert!(
        text.contains("~ update  smtp  target.port, tls.expiry_warn_days\n"),
        "{text}"
    );
    assert!(text.contains("- delete  old\n"), "{text}");
    assert!(
        text.contains("1 to create, 1 to update, 1 to delete, 3 unchanged"),
        "{text}"
    );
    let done = r.diff.render(true);
    assert!(
        done.contains("1 created, 1 updated, 1 deleted, 3 unchanged"),
        "{done}"
    );

    let kept = Diff {
        kept: vec!["old".into()],
        unchanged: vec!["a".into()],
        ..Diff::default()
    };
    assert!(kept.is_noop());
    assert!(
        kept.render(true)
            .contains("= kept    old  (not in the bundle; left in place)")
    );
    assert!(serde_json::from_value::<DeployResponse>(json!({"version": null})).is_err());
}

#[test]
fn git_metadata_outside_a_repository_is_null() {
    let dir = TempDir::new("nogit");
    let git = serde_json::to_value(super::git::metadata(&dir.0, &|_| None)).unwrap();
    // A temporary directory inside some repository would still answer; only check the shape.
    for key in ["commit", "branch", "author", "message"] {
        assert!(git[key].is_null() || git[key].is_string(), "{git}");
    }
    if std::process::Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .current_dir(&dir.0)
        .output()
        .is_ok_and(|o| !o.status.success())
    {
        assert_eq!(
            git,
            json!({"commit": null, "branch": null, "author": null, "message": null})
        );
        // Without git, the CI's variables name the branch, commit and repository.
        let ci = |name: &str| {
            match name {
                "GITHUB_HEAD_REF" => Some(""),
                "GITHUB_REF_NAME" => Some("main"),
                "GITHUB_SHA" => Some("abc123"),
                "GITHUB_SERVER_URL" => Some("https://github.com/"),
                "GITHUB_REPOSITORY" => Some("acme/monitors"),
                "MONITORS_REPO_COMMIT_MESSAGE" => Some("first line\nsecond line"),
                _ => None,
            }
            .map(str::to_owned)
        };
        let git = serde_json::to_value(super::git::metadata(&dir.0, &ci)).unwrap();
        assert_eq!(
            git,
            json!({
                "commit": "abc123",
                "branch": "main",
                "author": null,
                "message": "first line",
                "repository": "https://github.com/acme/monitors",
            })
        );
    }
}

#[test]
fn repository_urls_lose_their_credentials() {
    fn check(url: &str, expected: &str) {
        assert_eq!(super::git::without_credentials(url), expected, "{url}");
    }
    check(
        "https://gitlab-ci-token:secret@gitlab.com/acme/monitors.git",
        "https://gitlab.com/acme/monitors.git",
    );
    check("https://user@host/x", "https://host/x");
    check("https://a:b@c@host:8443/x@y", "https://host:8443/x@y");
    check(
        "https://github.com/acme/monitors",
        "https://github.com/acme/monitors",
    );
    check(
        "git@github.com:acme/monitors.git",
        "git@github.com:acme/monitors.git",
    );
    check("ssh://git@host/x.git", "ssh://host/x.git");
}

#[test]
fn git_fields_over_their_bound_or_with_line_breaks_are_problems() {
    use monitor_spec::api::{Git, MAX_GIT_FIELD_BYTES};
    let git = Git {
        branch: Some("b".repeat(MAX_GIT_FIELD_BYTES + 1)),
        message: Some("two\nlines".to_owned()),
        commit: Some("c".repeat(MAX_GIT_FIELD_BYTES)),
        ..Git::default()
    };
    let problems = git.problems();
    assert_eq!(
        problems.iter().map(|(f, _)| *f).collect::<Vec<_>>(),
        ["branch", "message"]
    );
    assert!(problems[0].1.contains("1025 bytes"), "{problems:?}");
    assert!(Git::default().problems().is_empty());
}

/// A one-request HTTP server on loopback: answers `status` with `body` and hands back the
/// raw request (head and body).
pub(super) fn one_shot(
    status: &'static str,
    body: &'static str,
) -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let request = read_request(&mut stream);
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        request
    });
    (url, handle)
}

/// Reads one HTTP request, head and body, from `stream`.
fn read_request(stream: &mut std::net::TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the client closed early");
        request.extend_from_slice(&buf[..n]);
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            break (end + 4, length);
        }
    };
    while request.len() < head_end + length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the client closed early");
        request.extend_from_slice(&buf[..n]);
    }
    request
}

pub(super) fn api_at(url: &str, token: &str) -> Api {
    let token = Token::from_env(&|_: &str| Some(token.to_owned())).unwrap();
    Api::new(
        Target {
            url: url.parse().unwrap(),
            project: "shop".into(),
        },
        &token,
    )
    .unwrap()
}

pub(super) fn split_request(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..end]).to_lowercase(),
        raw[end + 4..].to_vec(),
    )
}

#[test]
fn large_deploys_are_sent_gzipped_with_the_token_in_the_header_only() {
    let answer = r#"{"project":"shop","dry_run":true,"applied":false,"version":null,"diff":{"created":["a"],"updated":[],"deleted":[],"kept":[],"unchanged":[]}}"#;
    let (url, server) = one_shot("200 OK", answer);
    let api = api_at(&url, "tok-abcdef123456");
    let json = format!(
        "{{\"bundle\":{{\"schema_version\":1,\"monitors\":[]}},\"pad\":\"{}\"}}",
        "y".repeat(GZIP_ABOVE)
    );
    let body = Body::new(json.clone().into_bytes()).unwrap();
    let r = api.deploy(&body, true, true).unwrap();
    assert_eq!(r.diff.created, vec!["a".to_owned()]);

    let (head, sent) = split_request(&server.join().unwrap());
    assert!(
        head.starts_with("post /v1/projects/shop/deploy?dry_run=true&prune=true http/1.1"),
        "{head}"
    );
    assert!(head.contains("\r\ncontent-encoding: gzip"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/json"),
        "{head}"
    );
    assert!(
        head.contains("\r\nauthorization: bearer tok-abcdef123456"),
        "{head}"
    );
    assert!(!head.contains("tok-abcdef123456\r\n\r\n"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(sent.as_slice())
        .read_to_string(&mut plain)
        .unwrap();
    assert_eq!(plain, json);
}

#[test]
fn small_deploys_go_plain_and_a_conflict_exits_1_saying_retry() {
    let (url, server) = one_shot(
        "409 Conflict",
        r#"{"error":"another deploy is in progress","problems":[]}"#,
    );
    let api = api_at(&url, "tok-abcdef123456");
    let body = Body::new(br#"{"bundle":{"schema_version":1,"monitors":[]}}"#.to_vec()).unwrap();
    let failure = api.deploy(&body, false, false).unwrap_err();
    assert_eq!(failure.code, super::EXIT_REMOTE);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains("another deploy to project `shop` is running"),
        "{text}"
    );
    assert!(text.contains("retry"), "{text}");
    assert!(!text.contains("tok-abcdef123456"), "{text}");
    let (head, sent) = split_request(&server.join().unwrap());
    assert!(head.contains("dry_run=false&prune=false"), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(sent, body.bytes);
}

#[test]
fn an_unreachable_control_plane_exits_1_without_the_token() {
    // A port that was free a moment ago refuses the connection.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = api_at(&format!("http://127.0.0.1:{port}"), "tok-abcdef123456");
    let failure = api.monitors().unwrap_err();
    assert_eq!(failure.code, super::EXIT_REMOTE);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains("cannot reach the control plane at http://127.0.0.1:"),
        "{text}"
    );
    assert!(!text.contains("tok-abcdef123456"), "{text}");
}

/// What a hostile or broken control plane says must not drive the terminal: escape
/// sequences, bell, U+202E and zero-width characters reach it escaped, in the error, the
/// problems and the excerpt of a body that is not JSON (issue 14, finding 8).
#[test]
fn escape_sequences_from_the_server_are_never_printed_raw() {
    let hostile = "\u{1b}[2J\u{1b}]0;pwned\u{7} ok\u{202e}lanif\u{200b}";
    let body = json!({"error": hostile, "problems": [
        {"path": format!("monitors[0]{hostile}"), "message": hostile},
    ]})
    .to_string();
    let raw = |text: &str| text.contains(['\u{1b}', '\u{7}', '\u{202e}', '\u{200b}']);
    for status in [400, 403, 422, 500, 502] {
        let text = describe(
            StatusCode::from_u16(status).unwrap(),
            &body,
            Action::Deploy,
            "shop",
            None,
        )
        .to_string();
        assert!(!raw(&text), "{status}: {text:?}");
        assert!(
            text.contains("\\u{1b}[2J\\u{1b}]0;pwned\\u{7} ok\\u{202e}lanif\\u{200b}"),
            "{status}: {text:?}"
        );
    }
    let not_json = describe(
        StatusCode::BAD_GATEWAY,
        &format!("<html>{hostile}</html>"),
        Action::Deploy,
        "shop",
        None,
    )
    .to_string();
    assert!(!raw(&not_json), "{not_json:?}");

    let diff = Diff {
        created: vec![format!("a{hostile}")],
        updated: vec![monitor_spec::api::Updated {
            id: hostile.into(),
            fields: vec![hostile.into()],
        }],
        deleted: vec![hostile.into()],
        kept: vec![hostile.into()],
        unchanged: Vec::new(),
        maintenance: monitor_spec::api::WindowsDiff {
            created: vec![hostile.into()],
            updated: Vec::new(),
            deleted: vec![hostile.into()],
        },
    };
    for done in [false, true] {
        let text = diff.render(done);
        assert!(!raw(&text), "{text:?}");
        assert!(text.contains("+ create  a\\u{1b}[2J") || done, "{text:?}");
    }
}

#[test]
fn long_strings_and_many_problems_are_capped() {
    let problems: Vec<_> = (0..1000)
        .map(|i| json!({"path": format!("monitors[{i}].id"), "message": "x".repeat(10_000)}))
        .collect();
    let body = json!({"error": "e".repeat(500_000), "problems": problems}).to_string();
    let text = describe(
        StatusCode::UNPROCESSABLE_ENTITY,
        &body,
        Action::Deploy,
        "shop",
        None,
    )
    .to_string();
    assert!(text.contains("; 1000 problems:"), "{}", &text[..200]);
    assert!(text.contains(&format!("{}… (495904 more bytes)", "e".repeat(10))));
    assert!(text.contains("\n  monitors[99].id: x"));
    assert!(!text.contains("monitors[100].id"));
    assert!(
        text.ends_with("\n  … (900 more)"),
        "{}",
        &text[text.len() - 100..]
    );
    // 4 KiB of the error and of each of 100 problems, and some words around them.
    assert!(text.len() < 101 * 4200, "{}", text.len());
}

/// A server that answers `status` with a body of `size` bytes of `fill`, written until
/// the client stops reading; hands back how many bytes it could write.
fn endless(status: &'static str, size: u64, fill: u8) -> (String, std::thread::JoinHandle<u64>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_request(&mut stream);
        write!(
            stream,
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let chunk = [fill; 64 * 1024];
        let mut sent = 0;
        while sent < size {
            match stream.write(&chunk) {
                Ok(n) if n > 0 => sent += n as u64,
                _ => break,
            }
        }
        sent
    });
    (url, handle)
}

/// A 200 MB error body is not read whole (finding 8): the client reads 1 MiB at most,
/// shows 300 characters of it, and hangs up.
#[test]
fn a_huge_error_body_is_read_only_in_part() {
    let size = 200 * 1024 * 1024;
    let (url, server) = endless("500 Internal Server Error", size, b'z');
    let failure = api_at(&url, "tok-abcdef123456").monitors().unwrap_err();
    assert_eq!(failure.code, super::EXIT_REMOTE);
    let text = format!("{:#}", failure.error);
    assert!(
        text.contains(&format!("(500: {}…)", "z".repeat(300))),
        "{}",
        &text[..text.len().min(500)]
    );
    assert!(text.len() < 1000, "{}", text.len());
    let sent = server.join().unwrap();
    assert!(sent < size, "the whole body was read");
}

#[test]
fn an_agent_token_is_told_it_cannot_deploy() {
    let body = r#"{"error":"an agent token reaches only the /v1/agent/* routes; use a deploy token","problems":[]}"#;
    for action in [
        Action::Deploy,
        Action::Preview,
        Action::Destroy,
        Action::Rollback(2),
    ] {
        let text = describe(StatusCode::FORBIDDEN, body, action, "shop", None).to_string();
        assert!(
            text.starts_with("the token in MONITORS_API_TOKEN is an agent token, which cannot deploy, roll back or destroy (403: an agent token reaches only"),
            "{text}"
        );
        assert!(
            text.contains("use a deploy token of project `shop`"),
            "{text}"
        );
        assert!(!text.contains("another project"), "{text}");
    }
    // A token of another project is still called so.
    let text = describe(
        StatusCode::FORBIDDEN,
        r#"{"error":"the token does not grant access to project `shop`","problems":[]}"#,
        Action::Deploy,
        "shop",
        None,
    )
    .to_string();
    assert!(
        text.contains("is for another project, not `shop`"),
        "{text}"
    );
}

/// A bundle file an editor saved with a byte order mark deploys as without one.
#[test]
fn a_bundle_with_a_byte_order_mark_is_sent_without_it() {
    let bundle = r#"{"schema_version":1,"monitors":[{"id":"a"}]}"#;
    let git = monitor_spec::api::Git::default();
    let (count, body) =
        super::deploy_body(&format!("\u{feff}{bundle}\n"), "b.json", git.clone()).unwrap();
    assert_eq!(count, 1);
    let sent = String::from_utf8(body.bytes).unwrap();
    assert!(
        sent.starts_with(&format!("{{\"bundle\":{bundle},")),
        "{sent}"
    );
    let (_, plain) = super::deploy_body(bundle, "b.json", git.clone()).unwrap();
    assert_eq!(sent.as_bytes(), plain.bytes);
    let e = super::deploy_body(&format!("{{\u{feff}{bundle}"), "b.json", git).unwrap_err();
    assert!(
        format!("{:#}", e.error).contains("b.json is not JSON"),
        "{:#}",
        e.error
    );
}
