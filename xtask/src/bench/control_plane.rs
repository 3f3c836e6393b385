//! The control plane's figures, on SQLite and on PostgreSQL in the same run: results
//! ingested per second by one replica from 8 agents posting batches (with the p99 batch
//! latency), bytes per stored result and the projected disk use at the default retentions,
//! `status` of 10,000 monitors and a 30-day hourly `history` read while ingestion runs, and
//! the deploy of 10,000 monitors.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use monitor_spec::api::{DeployRequest, DeployResponse};
use serde_json::{Value, json};

use super::deploy::{build_control_plane, create_token, start};
use super::{Env, Plan, Row, row, run_checked};

/// Agents posting at once.
const POSTERS: usize = 8;
/// Results per posted batch.
const BATCH: usize = 500;
/// Monitors deployed and posted for.
const MONITORS: usize = 10_000;
/// The location of the history posted before ingestion.
const HISTORY_LOCATION: &str = "history";
/// Days of history posted, one result an hour.
const HISTORY_DAYS: i64 = 30;
/// Monitors with a history (the first is the one whose history is read).
const HISTORY_MONITORS: usize = 200;

/// A database one backend's run uses, and how `control-plane` names it.
struct Database {
    name: &'static str,
    url: String,
    /// The bench binary's `postgres` command keeping the PostgreSQL server; closing its
    /// standard input stops the server.
    _keep: Option<Keeper>,
}

/// A child process stopped by closing its standard input, then waited for.
struct Keeper(Child);

impl Drop for Keeper {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// Starts a throwaway PostgreSQL through the bench binary; its database's URL.
fn start_postgres(engine: &Path) -> Result<(Keeper, String)> {
    let mut child = Command::new(engine)
        .arg("postgres")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", engine.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let keeper = Keeper(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the PostgreSQL url")?;
    let url = line
        .trim()
        .strip_prefix("url ")
        .context("PostgreSQL did not start (see above)")?
        .to_owned();
    Ok((keeper, url))
}

/// Runs every figure on SQLite, then on PostgreSQL when it is installed.
pub(crate) fn run(env: &Env, plan: &Plan) -> Result<(Vec<Row>, Value)> {
    let binary = build_control_plane(env)?;
    let bundle_file = env.out.join("control-plane-bundle.json");
    run_checked(
        Command::new(&env.engine)
            .arg("gen-bundle")
            .args(["--count", &MONITORS.to_string(), "--ports", "7001,7002"])
            .arg("--out")
            .arg(&bundle_file),
        "generating the bundle",
    )?;
    let bundle: Value = serde_json::from_str(
        &std::fs::read_to_string(&bundle_file)
            .with_context(|| format!("cannot read {}", bundle_file.display()))?,
    )
    .context("the generated bundle is not JSON")?;
    let ids: Vec<String> = bundle["monitors"]
        .as_array()
        .context("the bundle has no monitors")?
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    let per_poster = if plan.quick { 10_000 } else { 40_000 };

    let sqlite = env.out.join("control-plane-bench.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
    }
    let mut databases = vec![Database {
        name: "SQLite",
        url: format!("sqlite:{}", sqlite.display()),
        _keep: None,
    }];
    match start_postgres(&env.engine) {
        Ok((keeper, url)) => databases.push(Database {
            name: "PostgreSQL",
            url,
            _keep: Some(keeper),
        }),
        Err(why) => eprintln!("warning: the PostgreSQL rows are skipped: {why:#}"),
    }

    let mut rows = Vec::new();
    let mut details = serde_json::Map::new();
    let mut deploy_seconds = Vec::new();
    for db in &databases {
        eprintln!("control plane on {}...", db.name);
        let figures = measure(&binary, db, &bundle, &ids, per_poster)?;
        deploy_seconds.push((db.name, figures.deploy_s));
        rows.extend(figures.rows(db.name));
        details.insert(db.name.to_owned(), figures.detail());
    }
    if let [(_, sqlite), (_, pg)] = deploy_seconds[..] {
        rows.push(row(
            "cp_deploy_10k_postgres_vs_sqlite",
            "deploy of 10,000 monitors (first apply): PostgreSQL against SQLite",
            "s",
            ("PostgreSQL", vec![pg]),
            Some(("SQLite", vec![sqlite])),
            None,
            "release build, fresh database, over loopback HTTP".to_owned(),
        ));
    }
    Ok((rows, Value::Object(details)))
}

/// What one backend's run measured.
struct Figures {
    deploy_s: f64,
    ingested: u64,
    ingest_s: f64,
    batch_ms: Vec<f64>,
    status_ms: Vec<f64>,
    history_ms: Vec<f64>,
    history_points: usize,
    storage: Storage,
}

/// Bytes on disk, as the database reports them.
#[derive(Debug, Clone, Copy, Default)]
struct Storage {
    raw_bytes_per_result: f64,
    hourly_bytes_per_row: f64,
    daily_bytes_per_row: f64,
}

impl Storage {
    /// Projected bytes for 10,000 monitors checked every minute from one location at the
    /// default retentions: raw 48 h, hourly 90 days, daily 2 years.
    fn projected(&self) -> f64 {
        let series = 10_000.0;
        let raw = series * 1440.0 * 2.0 * self.raw_bytes_per_result;
        let hourly = series * 24.0 * 90.0 * self.hourly_bytes_per_row;
        let daily = series * 730.0 * self.daily_bytes_per_row;
        raw + hourly + daily
    }
}

impl Figures {
    fn rows(&self, backend: &str) -> Vec<Row> {
        let key = backend.to_lowercase();
        let rate = self.ingested as f64 / self.ingest_s;
        let goal = if key == "postgresql" {
            20_000.0
        } else {
            10_000.0
        };
        let p99 = |s: &[f64]| percentile(s, 0.99);
        let note = format!(
            "{POSTERS} agents posting batches of {BATCH} at once to one release replica; \
             {} results in {:.1} s; p99 batch {:.0} ms",
            self.ingested,
            self.ingest_s,
            p99(&self.batch_ms)
        );
        let projected_gb = self.storage.projected() / 1e9;
        vec![
            row(
                &format!("cp_ingest_{key}"),
                &format!("results ingested per second, {backend}"),
                "results/s",
                (backend, vec![rate]),
                None,
                Some((&format!(">= {goal:.0}/s"), rate >= goal)),
                note,
            ),
            row(
                &format!("cp_batch_p99_{key}"),
                &format!("p99 latency of a batch of {BATCH} results, {backend}"),
                "ms",
                (backend, vec![p99(&self.batch_ms)]),
                None,
                None,
                format!("{} batches", self.batch_ms.len()),
            ),
            row(
                &format!("cp_bytes_per_result_{key}"),
                &format!("bytes per stored passed result, indexes included, {backend}"),
                "B",
                (backend, vec![self.storage.raw_bytes_per_result]),
                None,
                Some(("<= 150 B", self.storage.raw_bytes_per_result <= 150.0)),
                format!(
                    "hourly rollup row {:.0} B, daily {:.0} B",
                    self.storage.hourly_bytes_per_row, self.storage.daily_bytes_per_row
                ),
            ),
            row(
                &format!("cp_projected_disk_{key}"),
                &format!(
                    "disk for 10,000 monitors every minute, one location, default retentions, {backend}"
                ),
                "GB",
                (backend, vec![projected_gb]),
                None,
                Some(("<= 8 GB", projected_gb <= 8.0)),
                "raw 48 h + hourly 90 d + daily 2 y, from the measured bytes per row".to_owned(),
            ),
            row(
                &format!("cp_status_p99_{key}"),
                &format!("p99 of `status` for 10,000 monitors during ingestion, {backend}"),
                "ms",
                (backend, vec![p99(&self.status_ms)]),
                None,
                Some(("< 50 ms", p99(&self.status_ms) < 50.0)),
                format!("{} reads", self.status_ms.len()),
            ),
            row(
                &format!("cp_history_p99_{key}"),
                &format!(
                    "p99 of a 30-day hourly `history` of one monitor during ingestion, {backend}"
                ),
                "ms",
                (backend, vec![p99(&self.history_ms)]),
                None,
                Some(("< 50 ms", p99(&self.history_ms) < 50.0)),
                format!(
                    "{} reads of {} points",
                    self.history_ms.len(),
                    self.history_points
                ),
            ),
        ]
    }

    fn detail(&self) -> Value {
        json!({
            "deploy_s": self.deploy_s,
            "ingested": self.ingested,
            "ingest_s": self.ingest_s,
            "batch_ms_p50": percentile(&self.batch_ms, 0.5),
            "batch_ms_p99": percentile(&self.batch_ms, 0.99),
            "status_ms_p50": percentile(&self.status_ms, 0.5),
            "status_ms_p99": percentile(&self.status_ms, 0.99),
            "history_ms_p50": percentile(&self.history_ms, 0.5),
            "history_ms_p99": percentile(&self.history_ms, 0.99),
            "history_points": self.history_points,
            "raw_bytes_per_result": self.storage.raw_bytes_per_result,
            "hourly_bytes_per_row": self.storage.hourly_bytes_per_row,
            "daily_bytes_per_row": self.storage.daily_bytes_per_row,
            "projected_bytes": self.storage.projected(),
        })
    }
}

/// The `p`-quantile (nearest rank) of `samples`; NaN when empty.
fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

fn measure(
    binary: &Path,
    db: &Database,
    bundle: &Value,
    ids: &[String],
    per_poster: usize,
) -> Result<Figures> {
    let database = ["--database".to_owned(), db.url.clone()];
    let deploy_token = create_token(binary, &database, "deploy")?;
    let agent_token = create_token(binary, &database, "agent")?;
    let read_token = create_token(binary, &database, "read")?;
    // One agent token for the 8 posters and the history's agent.
    let serve_args = [
        &database[..],
        &["--max-agents-per-token".to_owned(), "16".to_owned()],
    ]
    .concat();
    let (server, addr) = start(binary, &serve_args)?;
    let root = format!("http://{addr}");
    let base = format!("{root}/v1/projects/bench");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .context("cannot build the HTTP client")?;

    // The deploy of 10,000 monitors.
    let body = serde_json::to_string(&DeployRequest { bundle, git: None })?;
    let t0 = Instant::now();
    let response = client
        .post(format!("{base}/deploy?dry_run=false&prune=true"))
        .bearer_auth(&deploy_token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .context("the deploy request failed")?;
    let status = response.status();
    let text = response.text().context("the deploy answer broke off")?;
    let deploy_s = t0.elapsed().as_secs_f64();
    if !status.is_success() || serde_json::from_str::<DeployResponse>(&text).is_err() {
        bail!("unexpected deploy answer ({status}): {text}");
    }

    // 30 days of hourly history of the first HISTORY_MONITORS monitors, rolled up by the
    // server's upkeep: the rollups' bytes per row, and the history read below.
    let now = time::OffsetDateTime::now_utc();
    let history_monitor = ids.first().context("no monitors")?.clone();
    let hours = HISTORY_DAYS * 24;
    let first_hour = now.unix_timestamp() / 3600 - hours;
    let history: Vec<(&str, u64, i64)> = ids
        .iter()
        .take(HISTORY_MONITORS)
        .flat_map(|m| {
            (0..hours).map(move |k| {
                let start = (first_hour + k) * 3600 + 60;
                (m.as_str(), u64::try_from(start / 3600).unwrap_or(0), start)
            })
        })
        .collect();
    for chunk in history.chunks(BATCH) {
        post(
            &client,
            &root,
            &agent_token,
            "history-agent",
            HISTORY_LOCATION,
            chunk,
        )?;
    }
    // Wait for the upkeep (every 30 s, then in steps until done) to roll every closed hour
    // and day up.
    let (want_hours, want_days) = (
        (HISTORY_MONITORS as u64) * (hours as u64 - 1),
        (HISTORY_MONITORS as u64) * (HISTORY_DAYS as u64 - 1),
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let sizes = storage_bytes(binary, &database)?;
        if sizes.hourly_rows >= want_hours && sizes.daily_rows >= want_days {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the history was not rolled up within 10 minutes: {} of {want_hours} hours, {} of {want_days} days",
                sizes.hourly_rows,
                sizes.daily_rows
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    let from = rfc3339(now.unix_timestamp() - HISTORY_DAYS * 86_400);
    let history_url = format!(
        "{base}/monitors/{history_monitor}/history?step=1h&location={HISTORY_LOCATION}&from={from}"
    );
    let history_points = history_points(&client, &history_url, &read_token)?;
    let before = storage_bytes(binary, &database)?;

    // Ingestion by 8 agents, with readers of status and history running beside it.
    let batches: Vec<Vec<String>> = (0..POSTERS)
        .map(|p| batches_for(p, ids, per_poster, now.unix_timestamp()))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let status_ms = Arc::new(Mutex::new(Vec::new()));
    let history_ms = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let (client, done, status_ms, history_ms) = (
            client.clone(),
            Arc::clone(&done),
            Arc::clone(&status_ms),
            Arc::clone(&history_ms),
        );
        let (status_url, history_url, token) = (
            format!("{base}/status"),
            history_url.clone(),
            read_token.clone(),
        );
        std::thread::spawn(move || -> Result<()> {
            while !done.load(Ordering::Relaxed) {
                for (url, into) in [(&status_url, &status_ms), (&history_url, &history_ms)] {
                    let t0 = Instant::now();
                    let response = client.get(url).bearer_auth(&token).send()?;
                    let ok = response.status().is_success();
                    let _ = response.bytes()?;
                    if !ok {
                        bail!("GET {url} failed");
                    }
                    into.lock().unwrap().push(t0.elapsed().as_secs_f64() * 1e3);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        })
    };
    let t0 = Instant::now();
    let posters: Vec<_> = batches
        .into_iter()
        .enumerate()
        .map(|(p, bodies)| {
            let (client, root, token) = (client.clone(), root.clone(), agent_token.clone());
            std::thread::spawn(move || -> Result<(u64, Vec<f64>)> {
                let mut accepted = 0;
                let mut latencies = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let t = Instant::now();
                    accepted += post_body(&client, &root, &token, body)
                        .with_context(|| format!("agent {p}"))?;
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
                Ok((accepted, latencies))
            })
        })
        .collect();
    let mut ingested = 0;
    let mut batch_ms = Vec::new();
    for poster in posters {
        let (n, lat) = poster
            .join()
            .map_err(|_| anyhow::anyhow!("a poster panicked"))??;
        ingested += n;
        batch_ms.extend(lat);
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"))??;
    drop(server);
    let after = storage_bytes(binary, &database)?;
    let raw = after.raw.saturating_sub(before.raw) as f64 / ingested.max(1) as f64;
    let storage = Storage {
        raw_bytes_per_result: raw,
        hourly_bytes_per_row: after.hourly_per_row,
        daily_bytes_per_row: after.daily_per_row,
    };
    let status_ms = std::mem::take(&mut *status_ms.lock().unwrap());
    let history_ms = std::mem::take(&mut *history_ms.lock().unwrap());
    Ok(Figures {
        deploy_s,
        ingested,
        ingest_s,
        batch_ms,
        status_ms,
        history_ms,
        history_points,
        storage,
    })
}

/// The bodies one agent posts: `per_poster` passed results of its share of the monitors,
/// every monitor's ticks one minute apart, all in the last hour.
fn batches_for(poster: usize, ids: &[String], per_poster: usize, now_s: i64) -> Vec<String> {
    let mine: Vec<&str> = ids
        .iter()
        .skip(poster)
        .step_by(POSTERS)
        .map(String::as_str)
        .collect();
    let rounds = per_poster.div_ceil(mine.len().max(1)) as i64;
    let first = now_s - 60 * (rounds + 1);
    let items: Vec<(&str, u64, i64)> = (0..per_poster)
        .map(|j| {
            let monitor = mine[j % mine.len()];
            let round = (j / mine.len()) as i64;
            let start = first + 60 * round;
            (monitor, u64::try_from(start / 60).unwrap_or(0), start)
        })
        .collect();
    items
        .chunks(BATCH)
        .map(|chunk| body(&format!("agent-{poster}"), &format!("loc-{poster}"), chunk))
        .collect()
}

/// A results request of passed results for `(monitor, tick, start seconds)`.
fn body(agent: &str, location: &str, items: &[(&str, u64, i64)]) -> String {
    let results: Vec<Value> = items
        .iter()
        .enumerate()
        .map(|(i, (monitor, tick, start))| {
            let started = rfc3339(*start);
            let total = 1.0 + (i % 17) as f64 * 0.25;
            let timings = json!({
                "dns_ms": 0.05, "connect_ms": 0.3, "tls_ms": null,
                "first_byte_ms": total - 0.4, "total_ms": total
            });
            json!({
                "id": format!("{monitor}/{location}/{tick}"),
                "monitor": monitor,
                "tick": tick,
                "result": {
                    "id": monitor,
                    "name": monitor,
                    "target": "127.0.0.1:7001",
                    "status": "passed",
                    "error": null,
                    "timings": timings,
                    "address": "127.0.0.1:7001",
                    "attempts": [{
                        "status": "passed", "error": null, "timings": timings,
                        "address": "127.0.0.1:7001", "started_at": started
                    }],
                    "assertions": [],
                    "response_excerpt": "+PONG\\r\\n",
                    "tls": null,
                    "started_at": started
                }
            })
        })
        .collect();
    json!({ "agent": agent, "location": location, "results": results }).to_string()
}

fn rfc3339(unix_s: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_s)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn post(
    client: &reqwest::blocking::Client,
    root: &str,
    token: &str,
    agent: &str,
    location: &str,
    items: &[(&str, u64, i64)],
) -> Result<u64> {
    post_body(client, root, token, body(agent, location, items))
}

/// Posts one batch to the control plane at `root` (`http://ADDR`); how many results it
/// accepted.
fn post_body(
    client: &reqwest::blocking::Client,
    root: &str,
    token: &str,
    body: String,
) -> Result<u64> {
    let response = client
        .post(format!("{root}/v1/agent/results"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .context("posting results failed")?;
    let status = response.status();
    let text = response.text().context("the results answer broke off")?;
    if !status.is_success() {
        bail!("results refused ({status}): {text}");
    }
    let answer: Value = serde_json::from_str(&text).context("the results answer")?;
    Ok(answer["accepted"].as_u64().unwrap_or(0))
}

/// How many points a history answer holds.
fn history_points(client: &reqwest::blocking::Client, url: &str, token: &str) -> Result<usize> {
    let response = client.get(url).bearer_auth(token).send()?;
    let status = response.status();
    let text = response.text()?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {text}");
    }
    let answer: Value = serde_json::from_str(&text).context("the history answer")?;
    Ok(answer["points"].as_array().map_or(0, Vec::len))
}

/// What the database says it uses: the raw results' bytes, and the bytes per row of the
/// hourly and daily rollups.
#[derive(Debug, Clone, Copy, Default)]
struct Sizes {
    raw: u64,
    hourly_rows: u64,
    hourly_per_row: f64,
    daily_rows: u64,
    daily_per_row: f64,
}

/// What `control-plane usage` reports: the raw results' bytes, and the bytes per row of
/// the hourly and daily rollups.
fn storage_bytes(binary: &Path, database: &[String]) -> Result<Sizes> {
    let output = Command::new(binary)
        .arg("usage")
        .args(database)
        .arg("--json")
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!(
            "control-plane usage failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tables: Vec<Value> =
        serde_json::from_slice(&output.stdout).context("control-plane usage wrote no JSON")?;
    let sum = |holds: &str| {
        tables
            .iter()
            .filter(|t| t["holds"] == holds)
            .fold((0, 0), |(rows, bytes), t| {
                (
                    rows + t["rows"].as_u64().unwrap_or(0),
                    bytes + t["bytes"].as_u64().unwrap_or(0),
                )
            })
    };
    let per_row = |(rows, bytes): (u64, u64)| bytes as f64 / rows.max(1) as f64;
    let (hourly, daily) = (sum("hourly_rollups"), sum("daily_rollups"));
    Ok(Sizes {
        raw: sum("raw_results").1,
        hourly_rows: hourly.0,
        hourly_per_row: per_row(hourly),
        daily_rows: daily.0,
        daily_per_row: per_row(daily),
    })
}
