//! Git metadata of a deploy end to end (issue 21): `cargo xtask deploy` run in CI's
//! conditions, a repository checked out on a detached HEAD with an untracked file, records
//! the branch from `GITHUB_HEAD_REF`, the variables `MONITORS_REPO_*` over what git says,
//! the repository URL without its credentials, and the tree as dirty; and a control plane
//! refuses git metadata over its bounds with a 422 naming the field.

use std::path::Path;
use std::process::Command;

use monitor_core::prelude::*;

use super::{Server, TempDir, abc};

/// Runs git in `dir` with a fixed author; panics with git's output when it fails.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Ada Author")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada Author")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .expect("cannot run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_deploy_on_a_detached_head_records_git_metadata_from_the_environment() {
    let (server, tokens) = Server::start(&["shop"]);
    let client = server.client("shop", &tokens[0]);
    // A repository as CI checks it out: a pull request's commit on a detached HEAD, with
    // a file the build left behind.
    let repo = TempDir::new();
    git(&repo.0, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(repo.0.join("monitors.rs"), "// monitors\n").unwrap();
    git(&repo.0, &["add", "monitors.rs"]);
    git(
        &repo.0,
        &["commit", "--quiet", "-m", "monitors: cache\n\nbody"],
    );
    let head = git(&repo.0, &["rev-parse", "HEAD"]);
    git(&repo.0, &["checkout", "--quiet", "--detach"]);
    git(
        &repo.0,
        &[
            "remote",
            "add",
            "origin",
            "https://ci-token:s3cret@git.example.com/acme/monitors.git",
        ],
    );
    std::fs::write(repo.0.join("left-behind.txt"), "x").unwrap();
    let git_dir = repo.0.join(".git");
    let file = server.bundle_file("git", &abc());
    let run = client.xtask_with(
        &["deploy", "--bundle", file.to_str().unwrap()],
        &[
            // git reads the repository from these, as any git command would.
            ("GIT_DIR", git_dir.to_str().unwrap()),
            ("GIT_WORK_TREE", repo.0.to_str().unwrap()),
            ("GITHUB_HEAD_REF", "feature/cache"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("MONITORS_REPO_COMMIT_MESSAGE", "cache: from the pipeline"),
        ],
    );
    assert_eq!(run.code, Some(0), "{run}");
    let versions = client.versions();
    let git_meta = &versions[0]["git"];
    assert_eq!(git_meta["branch"], "feature/cache", "{git_meta}");
    assert_eq!(git_meta["commit"], head.as_str(), "{git_meta}");
    assert_eq!(
        git_meta["author"], "Ada Author <ada@example.com>",
        "{git_meta}"
    );
    assert_eq!(
        git_meta["message"], "cache: from the pipeline",
        "{git_meta}"
    );
    assert_eq!(
        git_meta["repository"], "https://git.example.com/acme/monitors.git",
        "{git_meta}"
    );
    assert_eq!(git_meta["dirty"], true, "{git_meta}");
    assert!(
        !versions[0].to_string().contains("s3cret"),
        "{}",
        versions[0]
    );

    // The variables win over git, the tree clean now; a branch over the bound is refused
    // with the field named, and nothing is deployed.
    std::fs::remove_file(repo.0.join("left-behind.txt")).unwrap();
    let mut second = abc();
    second.monitors[0] = second.monitors[0].clone().frequency(Frequency::M5);
    let file = server.bundle_file("git-2", &second);
    let long = "b".repeat(2000);
    let refused = client.xtask_with(
        &["deploy", "--bundle", file.to_str().unwrap()],
        &[
            ("GIT_DIR", git_dir.to_str().unwrap()),
            ("GIT_WORK_TREE", repo.0.to_str().unwrap()),
            ("MONITORS_REPO_BRANCH", &long),
        ],
    );
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains("git.branch") && refused.stderr.contains("2000 bytes"),
        "{refused}"
    );
    assert_eq!(client.versions().len(), 1);
    let run = client.xtask_with(
        &["deploy", "--bundle", file.to_str().unwrap()],
        &[
            ("GIT_DIR", git_dir.to_str().unwrap()),
            ("GIT_WORK_TREE", repo.0.to_str().unwrap()),
            ("GITHUB_HEAD_REF", "feature/cache"),
            ("MONITORS_REPO_BRANCH", "release/2026-12"),
            (
                "MONITORS_REPO_SHA",
                "0123456789abcdef0123456789abcdef01234567",
            ),
            ("MONITORS_REPO_URL", "https://github.com/acme/monitors"),
            ("MONITORS_REPO_COMMIT_AUTHOR", "Release Bot"),
        ],
    );
    assert_eq!(run.code, Some(0), "{run}");
    let versions = client.versions();
    let latest = versions
        .iter()
        .max_by_key(|v| v["version"].as_u64())
        .expect("a version");
    let git_meta = &latest["git"];
    assert_eq!(git_meta["branch"], "release/2026-12", "{git_meta}");
    assert_eq!(
        git_meta["commit"], "0123456789abcdef0123456789abcdef01234567",
        "{git_meta}"
    );
    assert_eq!(git_meta["repository"], "https://github.com/acme/monitors");
    assert_eq!(git_meta["author"], "Release Bot");
    assert_eq!(git_meta["message"], "monitors: cache", "{git_meta}");
    assert_eq!(git_meta["dirty"], false, "{git_meta}");
}
