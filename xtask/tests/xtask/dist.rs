//! `cargo xtask dist` end to end: the archive, unpacked into a temporary root with
//! `tar -xzf`, holds the binaries, units, example files, completions, man pages and
//! documents, in a reproducible order and with fixed owners, modes and times; the units
//! pass `systemd-analyze verify` (Debian's systemd package) and a broken copy does not;
//! the binaries answer `--version`, `--help` and `generate`; and, installed as the README
//! says, an agent reads its token from a credentials file and reaches the control plane.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::xtask;

/// Every file the archive holds under its top directory, sorted (man pages apart).
const FILES: &[&str] = &[
    "CHANGELOG.md",
    "LICENSE",
    "README.md",
    "bin/control-plane",
    "bin/monitors",
    "etc/monitors/agent.env.example",
    "etc/monitors/control-plane.env.example",
    "lib/systemd/system/monitors-agent.service",
    "lib/systemd/system/monitors-agent@.service",
    "lib/systemd/system/monitors-control-plane.service",
    "share/bash-completion/completions/control-plane",
    "share/bash-completion/completions/monitors",
    "share/fish/vendor_completions.d/control-plane.fish",
    "share/fish/vendor_completions.d/monitors.fish",
    "share/zsh/site-functions/_control-plane",
    "share/zsh/site-functions/_monitors",
];

/// The man pages that must be there (one per command and subcommand; more may be).
const MAN_PAGES: &[&str] = &[
    "control-plane.1",
    "control-plane-serve.1",
    "control-plane-token-create.1",
    "monitors.1",
    "monitors-agent.1",
    "monitors-run.1",
    "monitors-watch.1",
];

/// The time stamp the archive is made with (`SOURCE_DATE_EPOCH`): every entry has it.
const EPOCH: &str = "1700000000";

/// The archive `cargo xtask dist --out-dir` wrote (built once for every test here) and
/// the top directory it unpacked to.
struct Dist {
    archive: PathBuf,
    top: PathBuf,
    /// A directory for the tests' own files.
    scratch: PathBuf,
}

fn dist() -> &'static Dist {
    static DIST: OnceLock<Dist> = OnceLock::new();
    DIST.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("xtask-dist");
        let _ = std::fs::remove_dir_all(&dir);
        let out_dir = dir.join("out");
        let o = xtask(
            // The dev profile: the binaries the workspace's tests built already, so the
            // test checks the archive without a second, release, build of both binaries
            // (about 6 minutes of CI on 2 cores). `dist` builds release by default.
            &[
                "dist",
                "--profile",
                "dev",
                "--out-dir",
                out_dir.to_str().unwrap(),
            ],
            &[("SOURCE_DATE_EPOCH", EPOCH)],
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "cargo xtask dist failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // `PATH (N bytes, X MiB)`
        let printed = stdout.lines().last().unwrap_or_default();
        let (path, size) = printed.split_once(" (").expect("path and size printed");
        let archive = PathBuf::from(path);
        let bytes = std::fs::metadata(&archive)
            .expect("the printed archive")
            .len();
        assert!(size.starts_with(&format!("{bytes} bytes")), "{printed}");
        let name = archive.file_name().unwrap().to_str().unwrap();
        let top_name = name.strip_suffix(".tar.gz").expect("a .tar.gz").to_owned();
        assert_eq!(archive.parent(), Some(out_dir.as_path()));
        assert_eq!(
            top_name,
            format!("monitors-{}-{}", env!("CARGO_PKG_VERSION"), host()),
        );
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        run_ok(
            Command::new("tar")
                .arg("-xzf")
                .arg(&archive)
                .arg("-C")
                .arg(&root),
        );
        let entries: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
        assert_eq!(entries.len(), 1, "one top directory: {entries:?}");
        Dist {
            archive,
            top: root.join(&top_name),
            scratch: dir,
        }
    })
}

/// The host triple, as `rustc -vV` prints it.
fn host() -> String {
    let o = run_ok(Command::new("rustc").arg("-vV"));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("a host line")
        .to_owned()
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn run_ok(command: &mut Command) -> Output {
    let o = run(command);
    assert!(
        o.status.success(),
        "{command:?}: {}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn dist_archive_holds_what_an_operator_installs_in_a_fixed_order() {
    use std::os::unix::fs::PermissionsExt;
    let dist = dist();
    for file in FILES {
        let path = dist.top.join(file);
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(meta.len() > 0, "{file} is empty");
        let executable = meta.permissions().mode() & 0o111 != 0;
        assert_eq!(executable, file.starts_with("bin/"), "{file}: mode");
    }
    let man = dist.top.join("share/man/man1");
    for page in MAN_PAGES {
        let text =
            std::fs::read_to_string(man.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH "), "{page} is no man page");
    }
    // The hidden command documents nothing.
    assert!(!man.join("monitors-generate.1").exists());
    let readme = std::fs::read_to_string(dist.top.join("README.md")).unwrap();
    assert!(readme.contains("## Install on a server"));
    let licence = std::fs::read_to_string(dist.top.join("LICENSE")).unwrap();
    assert!(licence.contains("Apache License") && licence.contains("Version 2.0"));

    // Entries in path order, directories first, owner 0, time SOURCE_DATE_EPOCH, modes
    // 0755 for directories and binaries and 0644 for the rest.
    let file = std::fs::File::open(&dist.archive).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut paths = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let dir = h.entry_type().is_dir();
        let bin = path.contains("/bin/") && !dir;
        let mode = if dir || bin { 0o755 } else { 0o644 };
        assert_eq!(h.mode().unwrap(), mode, "{path}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{path}");
        assert_eq!(h.mtime().unwrap().to_string(), EPOCH, "{path}");
        paths.push((path.trim_end_matches('/').to_owned(), dir));
    }
    // The directories first, then the files, each in path order.
    let (dirs, files): (Vec<_>, Vec<_>) = paths.iter().partition(|(_, dir)| *dir);
    assert!(paths[..dirs.len()].iter().all(|(_, dir)| *dir), "{paths:?}");
    for list in [&dirs, &files] {
        assert!(list.is_sorted(), "{list:?}");
    }
    let top = format!("{}/", dist.top.file_name().unwrap().to_string_lossy());
    let shipped: Vec<_> = files
        .iter()
        .filter_map(|(p, _)| p.strip_prefix(&top))
        .filter(|p| !p.starts_with("share/man/"))
        .collect();
    assert_eq!(shipped, FILES);
}

/// A copy of `unit` whose ExecStart runs the unpacked binaries, in `dir`.
fn unit_copy(
    dist: &Dist,
    unit: &str,
    as_name: &str,
    dir: &Path,
    edit: impl Fn(String) -> String,
) -> PathBuf {
    let text = std::fs::read_to_string(dist.top.join("lib/systemd/system").join(unit)).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/"), "{unit}");
    let bin = format!("{}/", dist.top.join("bin").display());
    let path = dir.join(as_name);
    std::fs::write(&path, edit(text.replace("/usr/local/bin/", &bin))).unwrap();
    path
}

/// `systemd-analyze verify` of `unit`: its exit code and the lines it printed about it.
fn verify(unit: &Path) -> (Option<i32>, String) {
    let o = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(unit));
    let name = unit.file_name().unwrap().to_string_lossy().into_owned();
    let about: Vec<_> = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.contains(&name))
        .map(str::to_owned)
        .collect();
    (o.status.code(), about.join("\n"))
}

#[test]
fn units_verify_and_are_hardened_and_a_broken_unit_fails_verify() {
    let dist = dist();
    let dir = dist.scratch.join("units");
    std::fs::create_dir_all(&dir).unwrap();
    let available = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        available.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: install the Debian package systemd (apt-get install systemd)"
    );
    let units = [
        (
            "monitors-control-plane.service",
            "monitors-control-plane.service",
        ),
        ("monitors-agent.service", "monitors-agent.service"),
        // The template, as the instance `systemctl enable monitors-agent@eu-west-1` makes.
        (
            "monitors-agent@.service",
            "monitors-agent@eu-west-1.service",
        ),
    ];
    for (unit, name) in units {
        let copy = unit_copy(dist, unit, name, &dir, |t| t);
        assert_eq!(verify(&copy), (Some(0), String::new()), "{unit}");
        // systemd's own exposure score, 0 (locked down) to 10 (unsafe): at most 2.
        let o = run(Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(&copy));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{unit}: exposure over 2.0:\n{text}");
        let score = text.lines().find(|l| l.contains("Overall exposure level"));
        assert!(score.is_some(), "{text}");
    }
    for key in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        for (unit, _) in units {
            let text =
                std::fs::read_to_string(dist.top.join("lib/systemd/system").join(unit)).unwrap();
            assert!(text.contains(key), "{unit} lacks {key:?}");
        }
    }
    let agent = std::fs::read_to_string(dist.top.join("lib/systemd/system/monitors-agent.service"))
        .unwrap();
    assert!(agent.contains("LoadCredential=agent-token:/etc/monitors/agent-token"));
    assert!(agent.contains("--token-file %d/agent-token"));
    assert!(
        !agent.contains("MONITORS_AGENT_TOKEN"),
        "no token in the unit's environment"
    );

    // The check catches what is wrong: an unknown directive (reported) and a command
    // that is not an absolute path (exit code 1).
    let unknown = unit_copy(
        dist,
        "monitors-agent.service",
        "broken-key.service",
        &dir,
        |t| t.replace("NoNewPrivileges=yes", "NoNewPrivileges=yes\nFrobnicate=yes"),
    );
    let (code, about) = verify(&unknown);
    assert!(
        about.contains("Unknown key") && about.contains("Frobnicate"),
        "{code:?} {about}"
    );
    let relative = unit_copy(
        dist,
        "monitors-control-plane.service",
        "broken-exec.service",
        &dir,
        |t| {
            let bin = format!("{}/", dist.top.join("bin").display());
            t.replace(&format!("ExecStart={bin}"), "ExecStart=")
        },
    );
    let (code, about) = verify(&relative);
    assert_ne!(code, Some(0), "{about}");
    assert!(about.contains("is not executable"), "{about}");
}

#[test]
fn binaries_answer_version_help_and_generate() {
    let dist = dist();
    for bin in ["monitors", "control-plane"] {
        let exe = dist.top.join("bin").join(bin);
        let out = |args: &[&str]| {
            let o = run_ok(Command::new(&exe).args(args));
            String::from_utf8(o.stdout).unwrap()
        };
        let version = out(&["--version"]);
        assert!(
            version.starts_with(&format!("{bin} ")),
            "{bin} --version: {version}"
        );
        assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
        let help = out(&["--help"]);
        assert!(help.contains("Usage:"), "{bin} --help: {help}");
        assert!(
            !help.contains("generate"),
            "the generate command is hidden: {help}"
        );
        for (shell, mark) in [
            ("bash", "complete -F"),
            ("zsh", "#compdef"),
            ("fish", "complete -c"),
        ] {
            let script = out(&["generate", "completions", shell]);
            assert!(
                script.contains(mark) && script.contains(bin),
                "{bin} {shell}: {script}"
            );
            assert!(
                !script.contains("generate"),
                "{bin} {shell} offers the hidden command"
            );
            // What the archive ships is what the binary makes.
            let shipped = match shell {
                "bash" => format!("share/bash-completion/completions/{bin}"),
                "zsh" => format!("share/zsh/site-functions/_{bin}"),
                _ => format!("share/fish/vendor_completions.d/{bin}.fish"),
            };
            assert_eq!(
                std::fs::read_to_string(dist.top.join(shipped)).unwrap(),
                script
            );
        }
        let bad = run(Command::new(&exe).args(["generate", "completions", "tcsh"]));
        assert_eq!(
            bad.status.code(),
            Some(2),
            "an unknown shell is a usage error"
        );
    }
}

/// A process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_agent_installed_as_the_readme_says_reads_its_token_file_and_reaches_the_control_plane() {
    let dist = dist();
    let dir = dist.scratch.join("install");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = |name: &str| dist.top.join("bin").join(name);
    let db = dir.join("control-plane.db");
    let mut server = Running(
        Command::new(bin("control-plane"))
            .args(["serve", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    let addr = lines
        .find_map(|l| l.ok()?.strip_prefix("listening on ").map(str::to_owned))
        .expect("the control plane prints its address");
    std::thread::spawn(move || lines.for_each(drop));

    // A token of `role` for project shop, as `token create` prints it.
    let token = |role: &str| {
        run_ok(
            Command::new(bin("control-plane"))
                .args([
                    "token",
                    "create",
                    "--project",
                    "shop",
                    "--role",
                    role,
                    "--db",
                ])
                .arg(&db),
        )
        .stdout
    };
    let token_file = dir.join("agent-token");
    std::fs::write(&token_file, token("agent")).unwrap();
    // `/metrics` is the project's: read with a read token, as the README says.
    let read = String::from_utf8_lossy(&token("read")).trim().to_owned();
    let _agent = Running(
        Command::new(bin("monitors"))
            .args(["agent", "--control-plane", &format!("http://{addr}")])
            .args([
                "--location",
                "eu-west-1",
                "--id",
                "web-1",
                "--poll-wait",
                "1",
            ])
            .arg("--buffer-dir")
            .arg(dir.join("buffer"))
            .arg("--token-file")
            .arg(&token_file)
            .env_remove("MONITORS_AGENT_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The agent's first poll binds its id to the token and makes it live: `token list`
    // and `/metrics` show it, as the README's checks say.
    let started = Instant::now();
    let live = r#"control_plane_agents{project="shop",location="eu-west-1"} 1"#;
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    loop {
        let list = run_ok(
            Command::new(bin("control-plane"))
                .args(["token", "list", "--db"])
                .arg(&db),
        );
        let list = String::from_utf8_lossy(&list.stdout).into_owned();
        let metrics = http
            .get(format!("http://{addr}/metrics"))
            .bearer_auth(&read)
            .send()
            .and_then(reqwest::blocking::Response::text)
            .unwrap_or_default();
        if list.contains("agents=web-1") && metrics.contains(live) {
            assert!(list.contains("role=agent"), "{list}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the agent never polled: {list}\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Without a readable token file the agent refuses to start, naming the file.
    let missing = run(Command::new(bin("monitors"))
        .args([
            "agent",
            "--control-plane",
            &format!("http://{addr}"),
            "--location",
            "eu-west-1",
        ])
        .arg("--token-file")
        .arg(dir.join("no-such-token"))
        .env("MONITORS_AGENT_TOKEN", "ignored-when-a-file-is-given"));
    assert_ne!(missing.status.code(), Some(0));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("cannot read the token file") && err.contains("no-such-token"),
        "{err}"
    );
}
