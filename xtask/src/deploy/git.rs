//! The git metadata a deploy records with its version: the `MONITORS_REPO_*` variables
//! when set, else the local repository, else (on a detached HEAD, or without git) the CI
//! system's own variables; plus the repository's URL without credentials and whether the
//! working tree was dirty.

use std::path::Path;
use std::process::{Command, Stdio};

use monitor_spec::api::Git;

/// CI variables naming the branch, in order, read when HEAD is detached (as CI systems
/// check out): GitHub Actions (a pull request's source branch, then the pushed branch),
/// GitLab, CircleCI, Buildkite, Bitbucket, Jenkins, Travis CI (pull request, then push).
const CI_BRANCH: [&str; 9] = [
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",
    "CIRCLE_BRANCH",
    "BUILDKITE_BRANCH",
    "BITBUCKET_BRANCH",
    "BRANCH_NAME",
    "TRAVIS_PULL_REQUEST_BRANCH",
    "TRAVIS_BRANCH",
];

/// CI variables naming the commit, read without git: GitHub Actions, GitLab, CircleCI,
/// Buildkite, Bitbucket, Jenkins, Travis CI.
const CI_COMMIT: [&str; 7] = [
    "GITHUB_SHA",
    "CI_COMMIT_SHA",
    "CIRCLE_SHA1",
    "BUILDKITE_COMMIT",
    "BITBUCKET_COMMIT",
    "GIT_COMMIT",
    "TRAVIS_COMMIT",
];

/// The metadata of the repository at `root`, each field taken from, in order: its
/// variable (as Checkly's `CHECKLY_REPO_*`: `MONITORS_REPO_BRANCH`, `_SHA`, `_URL`,
/// `_COMMIT_AUTHOR`, `_COMMIT_MESSAGE`); git (`rev-parse`, the branch unless HEAD is
/// detached, `log -1`, `remote get-url origin`); the CI's variables (branch and commit,
/// and GitHub's or GitLab's repository URL). `dirty` is whether `git status --porcelain`
/// lists anything, null without git. Credentials in a URL are dropped; texts are
/// trimmed to their first line. `env` reads a variable (empty counts as unset).
pub fn metadata(root: &Path, env: &dyn Fn(&str) -> Option<String>) -> Git {
    let var = |name: &str| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let first_of = |names: &[&str]| names.iter().find_map(|n| var(n));
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(root)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let in_repository = git(&["rev-parse", "--git-dir"]).is_some();
    let local = |args: &[&str]| in_repository.then(|| git(args)).flatten();
    let branch = var("MONITORS_REPO_BRANCH")
        .or_else(|| local(&["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD"))
        .or_else(|| first_of(&CI_BRANCH));
    let commit = var("MONITORS_REPO_SHA")
        .or_else(|| local(&["rev-parse", "HEAD"]))
        .or_else(|| first_of(&CI_COMMIT));
    let repository = var("MONITORS_REPO_URL")
        .or_else(|| local(&["remote", "get-url", "origin"]))
        .or_else(ci_repository(&var))
        .map(|url| without_credentials(&url));
    let author =
        var("MONITORS_REPO_COMMIT_AUTHOR").or_else(|| local(&["log", "-1", "--format=%an <%ae>"]));
    let message =
        var("MONITORS_REPO_COMMIT_MESSAGE").or_else(|| local(&["log", "-1", "--format=%s"]));
    // `git status` prints nothing for a clean tree, so its output is read directly.
    let dirty = in_repository
        .then(|| {
            let out = Command::new("git")
                .args(["status", "--porcelain", "--untracked-files=normal"])
                .current_dir(root)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output()
                .ok()?;
            out.status.success().then_some(!out.stdout.is_empty())
        })
        .flatten();
    let line =
        |text: Option<String>| text.map(|t| t.lines().next().unwrap_or_default().trim().to_owned());
    Git {
        commit: line(commit),
        branch: line(branch),
        author: line(author),
        message: line(message),
        repository: line(repository),
        dirty,
    }
}

/// GitHub Actions' `GITHUB_SERVER_URL/GITHUB_REPOSITORY`, or GitLab's `CI_PROJECT_URL`.
fn ci_repository(var: &dyn Fn(&str) -> Option<String>) -> impl FnOnce() -> Option<String> + '_ {
    move || match (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
        (Some(server), Some(repository)) => {
            Some(format!("{}/{repository}", server.trim_end_matches('/')))
        }
        _ => var("CI_PROJECT_URL"),
    }
}

/// `url` without the user and password a CI puts in a clone URL
/// (`https://gitlab-ci-token:TOKEN@host/x.git` → `https://host/x.git`); scp-like
/// (`git@host:x.git`) and other URLs stay as they are.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}
