//! `cargo xtask bench`: builds the bench binary (`monitor-core/benches/engine.rs`) and the
//! `monitors` binary in release, runs every measurement as subprocesses, prints a Markdown
//! table and writes `target/bench/results.json` (every figure with its samples and median).
//!
//! 1. plain TCP and 2. TLS checks per second and CPU per check, engine against a raw tokio
//!    loop, and 3. against blackbox_exporter (installed with apt-get when missing and run
//!    as root): the bench binary's `throughput` command.
//! 4. scheduler scale: `monitors watch` on a generated bundle of many monitors at mixed
//!    frequencies against loopback PING servers (the bench binary's `serve`): resident
//!    memory, CPU, schedule lateness and `/metrics` scrapes over a bounded window.
//! 5. a million monitors (`--only million`; `--quick` skips it unless named): the same
//!    `monitors watch` with 1,000,000 monitors in the same frequency mix (about 12,300
//!    checks/s), scraped every 15 s over the window (`--window`, 60 s by default),
//!    against its targets: resident memory under 1 GB, lateness p99 under 10 ms,
//!    start-up under 10 s, one scrape's peak extra memory under 50 MB; with CPU and checks
//!    per second run against scheduled.
//! 6. `validate` and `export` of 10,000 generated monitors in process, and the build time
//!    of a generated crate of 1,000 `#[tcp_monitor]` definitions, clean and after touching
//!    one file, with its `validate` and `export` commands timed end to end.

mod build;
mod control_plane;
mod deploy;
mod watch;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A part of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Part {
    /// Plain TCP and TLS checks per second, against raw loops and blackbox_exporter.
    Throughput,
    /// `monitors watch` with many monitors: memory, CPU, lateness, scrapes.
    Watch,
    /// `monitors watch` with a million monitors against its targets (not in --quick
    /// unless named).
    Million,
    /// `validate` and `export` of 10,000 monitors.
    Validate,
    /// Build times of a crate of 1,000 monitors.
    Build,
    /// Deploys of 10,000 monitors to the control plane.
    Deploy,
    /// The control plane on SQLite and PostgreSQL: ingestion, storage, reads, deploys.
    ControlPlane,
}

/// The flags of `cargo xtask bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Writes target/bench/results.json and prints the table (Markdown) on standard output."
)]
pub(crate) struct BenchArgs {
    /// Fewer runs and smaller counts (about a minute), for trying it out.
    #[arg(long)]
    quick: bool,
    /// Comma-separated parts to run (default: all).
    #[arg(long, value_name = "LIST", value_enum, value_delimiter = ',')]
    only: Vec<Part>,
    /// Skip the blackbox_exporter comparison.
    #[arg(long)]
    no_blackbox: bool,
    /// Monitors loaded into watch (default 100000; --quick 20000).
    #[arg(long, value_name = "N")]
    monitors: Option<usize>,
    /// How long watch is measured, in seconds (default 60; --quick 20).
    #[arg(long, value_name = "SECS")]
    window: Option<u64>,
    /// How often /metrics is scraped during the window, as Prometheus would (default 15;
    /// --quick 10; 0: only at the window's start and end).
    #[arg(long, value_name = "SECS")]
    scrape_every: Option<u64>,
}

/// What a bench run does.
pub(crate) struct Plan {
    quick: bool,
    parts: Vec<Part>,
    blackbox: bool,
    monitors: usize,
    window: u64,
    scrape_every: u64,
}

/// Paths and binaries every part uses.
pub(crate) struct Env {
    root: PathBuf,
    out: PathBuf,
    cargo: std::ffi::OsString,
    engine: PathBuf,
    monitors: PathBuf,
}

/// Runs the benchmarks.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    let plan = Plan::from(args);
    let started = Instant::now();
    let load_at_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let root = crate::workspace_root();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let out = target.join("bench");
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the bench binary and monitors (release)...");
    let engine = build_bench_binary(&cargo, &root)?;
    let monitors = build_release_monitors(&cargo, &root, &target)?;
    let env = Env {
        root,
        out,
        cargo,
        engine,
        monitors,
    };

    let mut rows: Vec<Row> = Vec::new();
    let mut sections = serde_json::Map::new();
    if plan.wants(Part::Throughput) {
        let blackbox = if plan.blackbox {
            blackbox_binary()
        } else {
            None
        };
        if plan.blackbox && blackbox.is_none() {
            eprintln!(
                "warning: prometheus-blackbox-exporter is not installed and could not be \
                 (run `apt-get install -y prometheus-blackbox-exporter` as root); its rows are skipped"
            );
        }
        let file = env.out.join("throughput.json");
        let mut command = Command::new(&env.engine);
        command
            .arg("throughput")
            .arg("--workdir")
            .arg(&env.out)
            .arg("--out")
            .arg(&file);
        if plan.quick {
            command.arg("--quick");
        }
        if let Some(bin) = &blackbox {
            command.arg("--blackbox").arg(bin);
        }
        eprintln!("throughput: engine vs raw loops vs blackbox_exporter...");
        run_checked(&mut command, "the throughput bench")?;
        let value = read_json(&file)?;
        let typed: ThroughputRows = serde_json::from_value(value.clone())
            .with_context(|| format!("{} has no rows of the bench's shape", file.display()))?;
        rows.extend(typed.rows);
        if let Some(bin) = &blackbox {
            sections.insert("blackbox_exporter".into(), json!(blackbox_version(bin)));
        }
        sections.insert("throughput".into(), value);
    }
    if plan.wants(Part::Watch) {
        let (watch_rows, detail) = watch::run(&env, &plan)?;
        rows.extend(watch_rows);
        sections.insert("watch".into(), detail);
    }
    if plan.wants(Part::Million) {
        let (million_rows, detail) = watch::million(&env, &plan)?;
        rows.extend(million_rows);
        sections.insert("million".into(), detail);
    }
    if plan.wants(Part::Validate) {
        let (validate_rows, detail) = validate_export(&env, &plan)?;
        rows.extend(validate_rows);
        sections.insert("validate_export".into(), detail);
    }
    if plan.wants(Part::Build) {
        let (build_rows, detail) = build::run(&env, &plan)?;
        rows.extend(build_rows);
        sections.insert("build".into(), detail);
    }
    if plan.wants(Part::Deploy) {
        let (deploy_rows, detail) = deploy::run(&env, &plan)?;
        rows.extend(deploy_rows);
        sections.insert("deploy".into(), detail);
    }
    if plan.wants(Part::ControlPlane) {
        let (cp_rows, detail) = control_plane::run(&env, &plan)?;
        rows.extend(cp_rows);
        sections.insert("control_plane".into(), detail);
    }

    let command = std::iter::once("cargo xtask".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let table = table(&rows);
    let results = json!({
        "command": command,
        "machine": machine(),
        "load_average_at_start": load_at_start.trim(),
        "duration_s": started.elapsed().as_secs_f64(),
        "rows": rows,
        "details": sections,
    });
    let file = env.out.join("results.json");
    std::fs::write(&file, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("cannot write {}", file.display()))?;
    std::fs::write(env.out.join("table.md"), &table)
        .with_context(|| format!("cannot write {}", env.out.join("table.md").display()))?;
    println!("{table}");
    eprintln!(
        "wrote {} and table.md beside it ({:.0} s)",
        file.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

impl From<&BenchArgs> for Plan {
    fn from(args: &BenchArgs) -> Plan {
        let quick = args.quick;
        let parts = if args.only.is_empty() {
            let mut all = vec![
                Part::Throughput,
                Part::Watch,
                Part::Million,
                Part::Validate,
                Part::Build,
                Part::Deploy,
                Part::ControlPlane,
            ];
            // A million monitors take minutes and gigabytes to set up.
            if quick {
                all.retain(|p| *p != Part::Million);
            }
            all
        } else {
            args.only.clone()
        };
        Plan {
            quick,
            parts,
            blackbox: !args.no_blackbox,
            monitors: args
                .monitors
                .unwrap_or(if quick { 20_000 } else { 100_000 }),
            window: args.window.unwrap_or(if quick { 20 } else { 60 }),
            scrape_every: args.scrape_every.unwrap_or(if quick { 10 } else { 15 }),
        }
    }
}

impl Plan {
    fn wants(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

/// Builds `monitor-core/benches/engine.rs` with the bench profile; returns its path.
fn build_bench_binary(cargo: &std::ffi::OsStr, root: &Path) -> Result<PathBuf> {
    let output = Command::new(cargo)
        .current_dir(root)
        .args([
            "bench",
            "-p",
            "monitor-core",
            "--bench",
            "engine",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run cargo bench")?;
    if !output.status.success() {
        bail!("building the bench binary failed; the compiler's errors are above");
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<CargoMessage>(line).ok())
        .filter(|m| m.reason == "compiler-artifact" && m.target.name == "engine")
        .find_map(|m| m.executable)
        .context("cargo bench --no-run named no executable for the `engine` bench")
}

/// A line of cargo's `--message-format=json`, as far as it is needed here.
#[derive(Deserialize)]
struct CargoMessage {
    reason: String,
    target: CargoTarget,
    #[serde(default)]
    executable: Option<PathBuf>,
}

/// The target a cargo message is about.
#[derive(Deserialize)]
struct CargoTarget {
    name: String,
}

/// Builds the workspace's `monitors` binary in release; returns its path.
fn build_release_monitors(cargo: &std::ffi::OsStr, root: &Path, target: &Path) -> Result<PathBuf> {
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "monitors",
            "--bin",
            "monitors",
        ])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("building monitors failed; the compiler's errors are above");
    }
    let binary = target.join("release").join("monitors");
    if !binary.exists() {
        bail!("the build left no binary at {}", binary.display());
    }
    Ok(binary)
}

/// `prometheus-blackbox-exporter` on the PATH, installed with apt-get when missing and
/// this runs as root.
fn blackbox_binary() -> Option<PathBuf> {
    const NAME: &str = "prometheus-blackbox-exporter";
    let find = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(NAME))
                .find(|p| p.is_file())
        })
    };
    if let Some(found) = find() {
        return Some(found);
    }
    let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    });
    if !root {
        return None;
    }
    eprintln!("installing {NAME} with apt-get...");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", NAME])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get")
            .args(["update", "-q"])
            .stdout(Stdio::null())
            .status();
        install();
    }
    find()
}

fn blackbox_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().unwrap_or_default().trim().to_owned()
        })
        .unwrap_or_default()
}

/// Runs a command to completion; its standard error passes through.
pub(crate) fn run_checked(command: &mut Command, what: &str) -> Result<()> {
    let status = command
        .stderr(Stdio::inherit())
        .status()
        .with_context(|| format!("cannot start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// 5, in process: parse and validate, and export, of 10,000 generated monitors.
fn validate_export(env: &Env, plan: &Plan) -> Result<(Vec<Row>, Value)> {
    let file = env.out.join("validate-export.json");
    let count = 10_000;
    eprintln!("validate and export of {count} generated monitors...");
    run_checked(
        Command::new(&env.engine)
            .arg("validate-export")
            .args(["--count", &count.to_string()])
            .args(["--runs", if plan.quick { "3" } else { "5" }])
            .arg("--out")
            .arg(&file),
        "the validate/export bench",
    )?;
    let value = read_json(&file)?;
    let figures: ValidateExport = serde_json::from_value(value.clone())
        .with_context(|| format!("{} is not of the bench's shape", file.display()))?;
    let mb = figures.bundle_bytes / 1e6;
    let load = figures.load_s.samples;
    let rows = vec![
        row(
            "validate_10k",
            "validate 10,000 monitors (bundle JSON parsed and validated in process, as `run --bundle` loads)",
            "s",
            ("parse + validate", load.clone()),
            None,
            Some(("< 1 s", median(&load) < 1.0)),
            format!(
                "{mb:.1} MB bundle: parse {} s, validate {} s (medians)",
                fmt3(median(&figures.parse_s.samples)),
                fmt3(median(&figures.validate_s.samples))
            ),
        ),
        row(
            "export_10k",
            "export 10,000 monitors (validate each, then the bundle JSON, in process, as `export` does)",
            "s",
            ("validate + to_json", figures.export_s.samples),
            None,
            None,
            String::new(),
        ),
    ];
    Ok((rows, value))
}

/// What the bench binary's `validate-export` writes, as far as it is read here.
#[derive(Deserialize)]
struct ValidateExport {
    bundle_bytes: f64,
    load_s: Samples,
    parse_s: Samples,
    validate_s: Samples,
    export_s: Samples,
}

/// A figure's samples.
#[derive(Deserialize)]
struct Samples {
    samples: Vec<f64>,
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

pub(crate) fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// A figure's value where it is a number: JSON has no NaN or infinity, which it writes as
/// `null`.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// One side of a row: what was measured, each run's sample and their median.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Side {
    #[serde(default)]
    label: String,
    median: Option<f64>,
    samples: Vec<Option<f64>>,
}

impl Side {
    fn new(label: &str, samples: &[f64]) -> Side {
        Side {
            label: label.to_owned(),
            median: finite(median(samples)),
            samples: samples.iter().copied().map(finite).collect(),
        }
    }
}

/// The ratio of our figure to the baseline, run by run, and its median.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ratio {
    median: Option<f64>,
    samples: Vec<Option<f64>>,
}

/// A row of the results, in the shape the bench binary writes too.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Row {
    id: String,
    figure: String,
    unit: String,
    ours: Side,
    baseline: Option<Side>,
    ratio: Option<Ratio>,
    target: Option<String>,
    met: Option<bool>,
    #[serde(default)]
    note: String,
}

/// The part of the bench binary's `throughput.json` read here: its rows.
#[derive(Deserialize)]
struct ThroughputRows {
    rows: Vec<Row>,
}

/// A row of the results.
pub(crate) fn row(
    id: &str,
    figure: &str,
    unit: &str,
    ours: (&str, Vec<f64>),
    baseline: Option<(&str, Vec<f64>)>,
    target: Option<(&str, bool)>,
    note: String,
) -> Row {
    let ratio = baseline.as_ref().map(|(_, base)| {
        let pairs: Vec<f64> = ours.1.iter().zip(base).map(|(o, b)| o / b).collect();
        Ratio {
            median: finite(median(&pairs)),
            samples: pairs.into_iter().map(finite).collect(),
        }
    });
    Row {
        id: id.to_owned(),
        figure: figure.to_owned(),
        unit: unit.to_owned(),
        ours: Side::new(ours.0, &ours.1),
        baseline: baseline.map(|(label, samples)| Side::new(label, &samples)),
        ratio,
        target: target.map(|t| t.0.to_owned()),
        met: target.map(|t| t.1),
        note,
    }
}

fn fmt3(x: f64) -> String {
    format!("{x:.3}")
}

/// A number with thousands separators and sensible precision for its size.
fn number(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    if x.abs() >= 1000.0 {
        let digits = format!("{:.0}", x.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        return if x < 0.0 { format!("-{out}") } else { out };
    }
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn value_text(side: &Side, unit: &str) -> String {
    match side.median {
        None => "—".to_owned(),
        Some(v) => {
            let shown = match unit {
                "checks/s" => format!("{}/s", number(v)),
                "s" => format!("{} s", number(v)),
                "ms" => format!("{} ms", number(v)),
                "MB" => format!("{} MB", number(v)),
                "cores" => format!("{} cores", number(v)),
                "CPU s/1000" => format!("{} CPU s/1k", number(v)),
                other => format!("{} {other}", number(v)),
            };
            if side.label.is_empty() {
                shown
            } else {
                format!("{shown} ({})", side.label)
            }
        }
    }
}

/// The Markdown table: figure, ours, baseline, ratio, target, met.
pub(crate) fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| figure | ours | baseline | ratio | target | met? |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let ratio = r
            .ratio
            .as_ref()
            .and_then(|r| r.median)
            .map_or("—".to_owned(), |x| format!("{x:.2}×"));
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        let baseline = r
            .baseline
            .as_ref()
            .map_or("—".to_owned(), |b| value_text(b, &r.unit));
        let figure = if r.note.is_empty() {
            r.figure.clone()
        } else {
            format!("{}; {}", r.figure, r.note)
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            figure.replace('|', "\\|"),
            value_text(&r.ours, &r.unit),
            baseline,
            ratio,
            r.target.as_deref().unwrap_or("—"),
            met
        ));
    }
    out
}

/// What machine ran the bench.
fn machine() -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split(':').nth(1))
        })
        .unwrap_or_default()
        .trim()
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_kb = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| {
            v.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpu": model, "cores": cores, "memory_gib": memory_kb / (1024 * 1024),
        "kernel": read("/proc/sys/kernel/osrelease").trim(), "rustc": rustc,
        "load_average_at_end": read("/proc/loadavg").trim(),
    })
}

// ---------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------

/// Clock ticks per second of `/proc/PID/stat` times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU seconds (user + system) process `pid` has used.
pub(crate) fn cpu_seconds(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let after = stat.rsplit_once(')').context("malformed /proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .context("malformed /proc stat")
    };
    Ok((ticks(11)? + ticks(12)?) / clock_ticks())
}

/// Resident and peak resident memory of process `pid`, in MB.
pub(crate) fn memory_mb(pid: u32) -> Result<(f64, f64)> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0))
}

/// GETs `path` from `addr` over HTTP/1.0; returns the time it took and the body.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> Result<(Duration, String)> {
    let t0 = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("cannot read http://{addr}{path}"))?;
    let elapsed = t0.elapsed();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("http://{addr}{path} sent no HTTP response"))?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!(
            "http://{addr}{path} answered {}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok((elapsed, body.to_owned()))
}

/// Sends SIGTERM to `pid` (with the `kill` command; this crate has no unsafe code).
pub(crate) fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_render_and_read_back() {
        let ours = row(
            "tcp",
            "plain TCP checks",
            "checks/s",
            ("engine", vec![2000.0, 3000.0]),
            Some(("raw loop", vec![1000.0, 1000.0])),
            Some(("≥ 1.5×", true)),
            "note | here".to_owned(),
        );
        let text = table(std::slice::from_ref(&ours));
        assert!(
            text.contains("| plain TCP checks; note \\| here | 2,500/s (engine) | 1,000/s (raw loop) | 2.50× | ≥ 1.5× | yes |"),
            "{text}"
        );
        // The bench binary's rows: no baseline, NaN medians written as null.
        let json = r#"{"id": "x", "figure": "f", "unit": "s", "note": "",
            "ours": {"label": "", "samples": [], "median": null},
            "baseline": null, "ratio": null, "target": null, "met": null}"#;
        let read: Row = serde_json::from_str(json).unwrap();
        assert!(table(&[read]).contains("| f | — | — | — | — | — |"));
        let empty = row("e", "empty", "s", ("", vec![]), None, None, String::new());
        let back: Row = serde_json::from_str(&serde_json::to_string(&empty).unwrap()).unwrap();
        assert_eq!(back.ours.median, None);
    }

    #[test]
    fn quick_runs_skip_the_million_unless_named() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let plan = |args: &[&str]| {
            let cli =
                Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).unwrap();
            Plan::from(&cli.bench)
        };
        assert!(plan(&[]).wants(Part::Million));
        assert!(!plan(&["--quick"]).wants(Part::Million));
        assert!(plan(&["--quick"]).wants(Part::Watch));
        let named = plan(&["--quick", "--only", "million"]);
        assert_eq!(named.parts, [Part::Million]);
        let both = plan(&["--only", "watch,million", "--window", "30"]);
        assert_eq!(both.parts, [Part::Watch, Part::Million]);
        assert_eq!(both.window, 30);
    }
}
