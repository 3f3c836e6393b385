//! The deploy figures: 10,000 monitors deployed to a real `control-plane` (release build,
//! fresh SQLite file) first, then again unchanged, then with one monitor changed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use monitor_spec::api::{DeployRequest, DeployResponse};
use serde_json::Value;

use super::{Env, Plan, Row, row, run_checked};

/// A control plane killed when dropped.
pub(super) struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Deploys a 10,000-monitor bundle three ways, timing each request end to end.
pub(crate) fn run(env: &Env, plan: &Plan) -> Result<(Vec<Row>, Value)> {
    let count = 10_000;
    let runs = if plan.quick { 2 } else { 3 };
    eprintln!("deploy of {count} monitors to the control plane...");
    let binary = build_control_plane(env)?;
    let bundle_file = env.out.join("deploy-bundle.json");
    run_checked(
        Command::new(&env.engine)
            .arg("gen-bundle")
            .args(["--count", &count.to_string(), "--ports", "7001,7002"])
            .arg("--out")
            .arg(&bundle_file),
        "generating the deploy bundle",
    )?;
    let bundle: Value = serde_json::from_str(
        &std::fs::read_to_string(&bundle_file)
            .with_context(|| format!("cannot read {}", bundle_file.display()))?,
    )
    .context("the generated bundle is not JSON")?;
    let mut changed = bundle.clone();
    changed["monitors"][0]["name"] = Value::from("changed by the deploy bench");
    let body = |b: &Value| {
        serde_json::to_string(&DeployRequest {
            bundle: b,
            git: None,
        })
    };
    let (first_body, changed_body) = (body(&bundle)?, body(&changed)?);

    let (mut first, mut same, mut one) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let db = env.out.join(format!("deploy-{run}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let database = ["--db".to_owned(), db.display().to_string()];
        let token = create_token(&binary, &database, "deploy")?;
        let (server, addr) = start(&binary, &database)?;
        let url = format!("http://{addr}/v1/projects/bench/deploy?dry_run=false&prune=true");
        let client = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        let timed = |text: &str, expect_applied: bool| -> Result<f64> {
            let t0 = Instant::now();
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(text.to_owned())
                .send()
                .context("the deploy request failed")?;
            let status = response.status();
            let text = response.text().context("the deploy answer broke off")?;
            let elapsed = t0.elapsed().as_secs_f64();
            let answer = serde_json::from_str::<DeployResponse>(&text);
            if !status.is_success() || answer.map_or(true, |a| a.applied != expect_applied) {
                bail!("unexpected deploy answer ({status}): {text}");
            }
            Ok(elapsed)
        };
        first.push(timed(&first_body, true)?);
        same.push(timed(&first_body, false)?);
        one.push(timed(&changed_body, true)?);
        drop(server);
    }
    let mb = first_body.len() as f64 / 1e6;
    let note = format!("{mb:.1} MB request, release build, fresh SQLite file, over loopback HTTP");
    let target = |limit: f64, samples: &[f64]| super::median(samples) < limit;
    let rows = vec![
        row(
            "deploy_first_10k",
            "deploy of 10,000 monitors, first apply (validate, diff, one transaction, version)",
            "s",
            ("control plane", first.clone()),
            None,
            Some(("< 2 s", target(2.0, &first))),
            note.clone(),
        ),
        row(
            "deploy_same_10k",
            "deploy of the same 10,000 monitors again (no change, no version)",
            "s",
            ("control plane", same.clone()),
            None,
            Some(("< 0.5 s", target(0.5, &same))),
            note.clone(),
        ),
        row(
            "deploy_one_change_10k",
            "deploy of 10,000 monitors with one changed (one update, a new version)",
            "s",
            ("control plane", one.clone()),
            None,
            Some(("< 0.5 s", target(0.5, &one))),
            note,
        ),
    ];
    let detail = serde_json::json!({ "count": count, "first_s": first, "same_s": same, "one_change_s": one });
    Ok((rows, detail))
}

/// Builds the release `control-plane`; its path.
pub(super) fn build_control_plane(env: &Env) -> Result<PathBuf> {
    run_checked(
        Command::new(&env.cargo).current_dir(&env.root).args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "control-plane",
        ]),
        "building the control plane",
    )?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| env.root.join("target"), PathBuf::from);
    Ok(target.join("release").join("control-plane"))
}

/// Creates a token of `role` for the project `bench` in the database `database` names
/// (`--db PATH` or `--database URL`); the secret.
pub(super) fn create_token(binary: &Path, database: &[String], role: &str) -> Result<String> {
    let output = Command::new(binary)
        .args(["token", "create", "--project", "bench", "--role", role])
        .args(database)
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "token create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Starts `serve` on a free loopback port over `database` and waits for its
/// `listening on ADDR` line.
pub(super) fn start(binary: &Path, database: &[String]) -> Result<(Server, String)> {
    let mut child = Command::new(binary)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(database)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let server = Server(child);
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.context("cannot read the control plane's stderr")?;
        if let Some(addr) = line.split("listening on ").nth(1) {
            let addr = addr.trim().to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Ok((server, addr));
        }
    }
    bail!("the control plane exited without printing `listening on ADDR`")
}
